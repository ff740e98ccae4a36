//! The check at open of a [`super::SledStore`]: read every user's keys, the queued
//! calls and the key ledger, let [`keys::check`] decide, then write the repairs in
//! one atomic step — a record that cannot be read is moved to the `damaged` tree and
//! replaced by one that puts its user in Error. Every repair is one warn line.

use std::collections::BTreeMap;

use sled::Transactional;

use super::keys::{self, CheckedKeys, KeyRepair, KeysRead};
use super::ledger::LedgerRead;
use super::sled::{decode, encode};
use super::{Status, StoreError, UserRecord};

/// Where the floor for users never seen is kept (in the `meta` tree).
const FLOOR_KEY: &[u8] = b"seq-floor";

/// What the check at open leaves.
pub(super) struct Recovered {
    /// The sum of every counter: the key ledger's new count.
    pub issued: u64,
    pub floor: u64,
    pub repairs: Vec<KeyRepair>,
}

/// A user record whose bytes are not a record.
struct Unreadable {
    key: sled::IVec,
    bytes: sled::IVec,
    detail: String,
}

/// Check and repair the counters of `users` against `outbox` and the ledger.
pub(super) fn recover(
    db: &sled::Db,
    users: &sled::Tree,
    outbox: &sled::Tree,
    ledger: &LedgerRead,
) -> Result<Recovered, StoreError> {
    let meta = db.open_tree("meta")?;
    let damaged = db.open_tree("damaged")?;
    let found = read(users, outbox, &meta, ledger)?;
    let checked = keys::check(&found.keys);
    for repair in &checked.repairs {
        tracing::warn!(mailbox = %repair.address, from = ?repair.from, to = repair.to, why = %repair.why, "idempotency-key counter repaired: no key is used twice");
    }
    let writes = repaired_records(&checked, &found);
    if !writes.is_empty() || checked.floor != found.keys.floor {
        (users, &meta, &damaged)
            .transaction(|(users, meta, damaged)| {
                for (address, record) in &writes {
                    users.insert(address.as_bytes(), encode(record))?;
                }
                for record in &found.unreadable {
                    damaged.insert(record.key.clone(), record.bytes.clone())?;
                }
                meta.insert(FLOOR_KEY, checked.floor.to_be_bytes().to_vec())?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Task("the repair at open was abandoned".into())
                }
            })?;
    }
    Ok(Recovered {
        issued: checked.issued,
        floor: checked.floor,
        repairs: checked.repairs,
    })
}

/// What open found: the keys for the check, the records read, those unreadable.
struct Found {
    keys: KeysRead,
    records: BTreeMap<String, UserRecord>,
    unreadable: Vec<Unreadable>,
}

fn read(
    users: &sled::Tree,
    outbox: &sled::Tree,
    meta: &sled::Tree,
    ledger: &LedgerRead,
) -> Result<Found, StoreError> {
    let mut found = Found {
        keys: KeysRead {
            floor: meta
                .get(FLOOR_KEY)?
                .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
                .map_or(0, u64::from_be_bytes),
            issued: match ledger {
                LedgerRead::Issued(issued) => Some(*issued),
                LedgerRead::Missing => None,
                LedgerRead::Unreadable(why) => {
                    tracing::warn!(%why, "the key ledger cannot be read: counters are checked against the database alone, and the ledger is written anew");
                    None
                }
            },
            ..KeysRead::default()
        },
        records: BTreeMap::new(),
        unreadable: Vec::new(),
    };
    for kv in users.iter() {
        let (key, bytes) = kv?;
        let address = String::from_utf8_lossy(&key).into_owned();
        let keys = found.keys.users.entry(address.clone()).or_default();
        match decode::<UserRecord>(&key, &bytes) {
            Ok(record) => {
                keys.next_seq = Some(record.next_seq);
                keys.last_applied_seq = record.last_applied_seq;
                found.records.insert(address, record);
            }
            Err(error) => found.unreadable.push(Unreadable {
                key,
                bytes,
                detail: error.to_string(),
            }),
        }
    }
    for kv in outbox.iter() {
        let (key, _) = kv?;
        // address, 0, the sequence number (8 bytes, big-endian)
        let Some((address, seq)) = key.split_last_chunk::<8>().and_then(|(head, seq)| {
            let address = head.strip_suffix(&[0])?;
            Some((String::from_utf8_lossy(address).into_owned(), *seq))
        }) else {
            continue;
        };
        let keys = found.keys.users.entry(address).or_default();
        keys.pending.push(u64::from_be_bytes(seq));
    }
    Ok(found)
}

/// The records to write: each repaired counter, and for each unreadable record a
/// fresh one that puts its user in Error.
fn repaired_records(checked: &CheckedKeys, found: &Found) -> Vec<(String, UserRecord)> {
    let mut writes = Vec::new();
    for repair in &checked.repairs {
        let record = match found.records.get(&repair.address) {
            Some(record) => record.clone(),
            // Set aside below, with its counter.
            None if found
                .unreadable
                .iter()
                .any(|u| *u.key == *repair.address.as_bytes()) =>
            {
                continue;
            }
            // Only queued calls: a record keeps the counter.
            None => UserRecord::default(),
        };
        writes.push((
            repair.address.clone(),
            UserRecord {
                next_seq: repair.to,
                ..record
            },
        ));
    }
    for record in &found.unreadable {
        let address = String::from_utf8_lossy(&record.key).into_owned();
        tracing::warn!(mailbox = %address, detail = %record.detail, "a user record cannot be read: set aside in the damaged tree, the user is in error");
        writes.push((
            address.clone(),
            UserRecord {
                status: Status::Error(format!(
                    "the stored record could not be read ({}) and was set aside; restart the user to divert again: Calvert then reads the calendar and the phone afresh",
                    record.detail
                )),
                next_seq: checked
                    .next_seq
                    .get(&address)
                    .copied()
                    .unwrap_or(checked.floor),
                ..UserRecord::default()
            },
        ));
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::super::suite::{TempDir, temp_dir, when_unlocked};
    use super::super::{DiversionCall, LEDGER_FILE, SledStore, Store};
    use super::*;

    fn open(dir: &std::path::Path) -> SledStore {
        when_unlocked(|| SledStore::open(dir, 1 << 20))
    }

    /// The raw database, to write what a damaged one holds.
    fn raw(dir: &std::path::Path) -> sled::Db {
        when_unlocked(|| sled::open(dir).map_err(|e| StoreError::at_open(dir, e)))
    }

    #[test]
    fn keys_the_ledger_counts_but_the_database_lost_are_never_handed_out_again() {
        let dir = TempDir(temp_dir("lost"));
        {
            let store = open(&dir.0);
            for at in 0..3 {
                store
                    .enqueue("kim@flexi.se", DiversionCall::Clear, at)
                    .unwrap();
            }
            store
                .enqueue("eva@flexi.se", DiversionCall::Clear, 9)
                .unwrap();
            assert!(store.repairs().is_empty());
        }
        // As if kim's last two enqueues (#3, #4) were lost with the log's tail.
        std::fs::write(dir.0.join(LEDGER_FILE), format!("{:020}\n", 6)).unwrap();
        let store = open(&dir.0);
        let mut repaired: Vec<_> = store
            .repairs()
            .iter()
            .map(|r| (r.address.as_str(), r.from, r.to))
            .collect();
        repaired.sort();
        assert_eq!(
            repaired,
            vec![("eva@flexi.se", Some(1), 3), ("kim@flexi.se", Some(3), 5)]
        );
        assert_eq!(
            store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 1)
                .unwrap()
                .seq,
            5
        );
        // A user never seen starts above every lost key too.
        assert_eq!(
            store
                .enqueue("ola@flexi.se", DiversionCall::Clear, 1)
                .unwrap()
                .seq,
            2
        );
        drop(store);
        // Repaired once: the next open finds nothing to repair.
        let store = open(&dir.0);
        assert!(store.repairs().is_empty(), "{:?}", store.repairs());
        assert_eq!(
            store
                .enqueue("eva@flexi.se", DiversionCall::Clear, 1)
                .unwrap()
                .seq,
            3
        );
    }

    #[test]
    fn a_counter_below_a_queued_call_moves_above_it() {
        let dir = TempDir(temp_dir("below"));
        {
            let store = open(&dir.0);
            for at in 0..3 {
                store
                    .enqueue("kim@flexi.se", DiversionCall::Clear, at)
                    .unwrap();
            }
        }
        {
            // The record rolled back to an older copy; the queue kept #2.
            let db = raw(&dir.0);
            let users = db.open_tree("users").unwrap();
            let mut record: UserRecord =
                decode(b"kim", &users.get("kim@flexi.se").unwrap().unwrap()).unwrap();
            record.next_seq = 1;
            users.insert("kim@flexi.se", encode(&record)).unwrap();
            db.flush().unwrap();
        }
        std::fs::remove_file(dir.0.join(LEDGER_FILE)).unwrap();
        let store = open(&dir.0);
        assert_eq!(store.repairs().len(), 1);
        assert!(
            store.repairs()[0].why.contains("a queued call has #2"),
            "{:?}",
            store.repairs()
        );
        assert_eq!(
            store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 1)
                .unwrap()
                .seq,
            3
        );
    }

    #[test]
    fn an_unreadable_record_is_set_aside_and_its_user_put_in_error() {
        let dir = TempDir(temp_dir("unreadable"));
        {
            let store = open(&dir.0);
            store
                .update_user("eva@flexi.se", &mut |r| r.status = Status::Active)
                .unwrap();
            store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 1)
                .unwrap();
        }
        {
            let db = raw(&dir.0);
            db.open_tree("users")
                .unwrap()
                .insert("kim@flexi.se", &b"{\"status\":{\"sta"[..])
                .unwrap();
            db.flush().unwrap();
        }
        let store = open(&dir.0);
        let kim = store.user("kim@flexi.se").unwrap().unwrap();
        let Status::Error(reason) = &kim.status else {
            panic!("{kim:?}")
        };
        assert!(reason.contains("could not be read"), "{reason}");
        assert!(kim.next_seq >= 1, "{kim:?}");
        assert_eq!(
            store.user("eva@flexi.se").unwrap().unwrap().status,
            Status::Active
        );
        assert_eq!(store.outbox("kim@flexi.se").unwrap().len(), 1);
        assert_eq!(
            store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 2)
                .unwrap()
                .seq,
            1
        );
        drop(store);
        let db = raw(&dir.0);
        let kept = db
            .open_tree("damaged")
            .unwrap()
            .get("kim@flexi.se")
            .unwrap();
        assert_eq!(kept.as_deref(), Some(&b"{\"status\":{\"sta"[..]));
    }
}
