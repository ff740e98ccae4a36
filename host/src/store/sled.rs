//! [`SledStore`]: the service's store, on sled, with group commit so that many
//! mailboxes changing at once share disk flushes.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::keys::KeyRepair;
use super::ledger::KeyLedger;
use super::sled_admin::AdminTrees;
use super::{
    Account, AuditEntry, DiversionCall, OutboxEntry, Store, StoreError, StoredConfig, UserRecord,
    recovery, user_key,
};
use crate::lock::lock;

/// The service's store: sled 0.34 with a bounded page cache. Every change is
/// flushed before the method returns. sled takes a lock on the directory, so a
/// second Calvert on the same state directory fails to open it (with a sentence).
pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
    outbox: sled::Tree,
    admin: AdminTrees,
    commit: GroupCommit,
    /// Counts the sequence numbers handed out, durably before a key is sent.
    ledger: KeyLedger,
    /// The sum of every user's next sequence number: what the ledger must say.
    issued: AtomicU64,
    /// Where a user never seen starts counting (above keys lost with a damaged log).
    floor: u64,
    /// What the check at open repaired.
    repairs: Vec<KeyRepair>,
}

/// Group commit: a caller that needs its write durable takes a ticket; one caller at
/// a time flushes, and its flush covers every ticket taken before it began, so callers
/// waiting meanwhile return without a disk write of their own. Ten thousand mailboxes
/// due at the same second cost a few flushes, not ten thousand in a row.
#[derive(Default)]
struct GroupCommit {
    state: Mutex<CommitState>,
    flushed: std::sync::Condvar,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out (each after its caller's write).
    requested: u64,
    /// Every ticket up to here is durable.
    durable: u64,
    flushing: bool,
    flushes: u64,
}

impl SledStore {
    /// Open (or create) the database in `path`, with a page cache of `cache_bytes`.
    ///
    /// Then check every idempotency-key counter (`recovery.rs`): counters move up
    /// past every key the store or the key ledger knows of, a record that cannot be
    /// read is set aside and its user put in Error; each repair is logged (warn).
    /// Damaged data gives [`StoreError::Damaged`], with what to do.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let at_open = |e| StoreError::at_open(path, e);
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(at_open)?;
        let users = db.open_tree("users").map_err(at_open)?;
        let outbox = db.open_tree("outbox").map_err(at_open)?;
        let admin = AdminTrees::open(&db).map_err(at_open)?;
        let (ledger, ledger_read) = KeyLedger::open(path)?;
        let recovered = recovery::recover(&db, &users, &outbox, &ledger_read)
            .and_then(|recovered| {
                db.flush()?;
                Ok(recovered)
            })
            .map_err(|e| in_dir(e, path))?;
        ledger.reset(recovered.issued)?;
        Ok(SledStore {
            db,
            users,
            outbox,
            admin,
            commit: GroupCommit::default(),
            ledger,
            issued: AtomicU64::new(recovered.issued),
            floor: recovered.floor,
            repairs: recovered.repairs,
        })
    }

    /// The counters the check at open moved, and why (each also logged).
    pub fn repairs(&self) -> &[KeyRepair] {
        &self.repairs
    }

    /// Read, change and write one user's record in a transaction (not flushed).
    fn change_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<UserRecord, StoreError> {
        let key = user_key(address);
        let change = std::cell::RefCell::new(change);
        let (record, counted) = self
            .users
            .transaction(|users| {
                let (mut record, counted) = stored_record(users, &key, self.floor)?;
                let next_seq = record.next_seq;
                (change.borrow_mut())(&mut record);
                record.next_seq = record.next_seq.max(next_seq);
                users.insert(key.as_bytes(), encode(&record))?;
                Ok((record, counted))
            })
            .map_err(transaction_error)?;
        self.count(record.next_seq, counted);
        Ok(record)
    }

    /// A record's counter went from `counted` to `next_seq`: the ledger must say so.
    fn count(&self, next_seq: u64, counted: u64) {
        let added = next_seq.saturating_sub(counted);
        if added > 0 {
            self.issued.fetch_add(added, Ordering::SeqCst);
        }
    }

    /// Make every write this thread has done durable (see [`GroupCommit`]).
    fn flush(&self) -> Result<(), StoreError> {
        let mut state = lock(&self.commit.state);
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if state.flushing {
                state = self
                    .commit
                    .flushed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.flushing = true;
            let covers = state.requested;
            drop(state);
            // Read before the flush: every number counted here was written before,
            // so the flush makes it durable before the ledger counts it.
            let issued = self.issued.load(Ordering::SeqCst);
            let result = self
                .db
                .flush()
                .map_err(StoreError::from)
                .and_then(|_| self.ledger.record(issued));
            state = lock(&self.commit.state);
            state.flushing = false;
            state.flushes += 1;
            if result.is_ok() {
                state.durable = state.durable.max(covers);
            }
            self.commit.flushed.notify_all();
            // On failure the waiting callers try the flush again themselves.
            result?;
        }
    }

    /// Disk flushes so far (for the benchmark).
    pub fn flushes(&self) -> u64 {
        lock(&self.commit.state).flushes
    }
}

pub(super) fn outbox_key(address: &str, seq: u64) -> Vec<u8> {
    let mut key = user_key(address).into_bytes();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A damaged-data error names the directory it was found in.
fn in_dir(error: StoreError, path: &Path) -> StoreError {
    match error {
        StoreError::Damaged { detail, .. } => StoreError::Damaged {
            path: path.display().to_string(),
            detail,
        },
        other => other,
    }
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A user's record as a transaction sees it (when never written: the default,
/// counting from `floor`), and the counter the ledger already counts for it.
fn stored_record(
    users: &sled::transaction::TransactionalTree,
    key: &str,
    floor: u64,
) -> Result<(UserRecord, u64), sled::transaction::ConflictableTransactionError<StoreError>> {
    match users.get(key.as_bytes())? {
        Some(bytes) => {
            let record: UserRecord = decode(key.as_bytes(), &bytes).map_err(abort)?;
            let counted = record.next_seq;
            Ok((record, counted))
        }
        None => Ok((
            UserRecord {
                next_seq: floor,
                ..UserRecord::default()
            },
            0,
        )),
    }
}

/// A failure inside a sled transaction: sled's own, or a record we cannot read.
fn abort(e: StoreError) -> sled::transaction::ConflictableTransactionError<StoreError> {
    sled::transaction::ConflictableTransactionError::Abort(e)
}

fn transaction_error(e: sled::transaction::TransactionError<StoreError>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
    }
}

impl Store for SledStore {
    fn user(&self, address: &str) -> Result<Option<UserRecord>, StoreError> {
        let key = user_key(address);
        match self.users.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    fn update_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<UserRecord, StoreError> {
        let record = self.change_user(address, change)?;
        self.flush()?;
        Ok(record)
    }

    fn note_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<(), StoreError> {
        self.change_user(address, change).map(|_| ())
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, StoreError> {
        self.users
            .iter()
            .map(|kv| {
                let (key, value) = kv?;
                Ok((
                    String::from_utf8_lossy(&key).into_owned(),
                    decode(&key, &value)?,
                ))
            })
            .collect()
    }

    fn enqueue(
        &self,
        address: &str,
        call: DiversionCall,
        decided_at: i64,
    ) -> Result<OutboxEntry, StoreError> {
        use sled::Transactional;
        let key = user_key(address);
        let (entry, counted) = (&self.users, &self.outbox)
            .transaction(|(users, outbox)| {
                let (mut record, counted) = stored_record(users, &key, self.floor)?;
                let entry = OutboxEntry {
                    address: key.clone(),
                    seq: record.next_seq,
                    call: call.clone(),
                    decided_at,
                };
                record.next_seq += 1;
                users.insert(key.as_bytes(), encode(&record))?;
                outbox.insert(outbox_key(&key, entry.seq), encode(&entry))?;
                Ok((entry, counted))
            })
            .map_err(transaction_error)?;
        self.count(entry.seq.saturating_add(1), counted);
        self.flush()?;
        Ok(entry)
    }

    fn outbox(&self, address: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut prefix = user_key(address).into_bytes();
        prefix.push(0);
        self.outbox
            .scan_prefix(prefix)
            .map(|kv| {
                let (key, value) = kv?;
                decode(&key, &value)
            })
            .collect()
    }

    fn complete(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        use sled::Transactional;
        let key = user_key(&entry.address);
        let counted = (&self.users, &self.outbox)
            .transaction(|(users, outbox)| {
                if outbox.remove(outbox_key(&key, entry.seq))?.is_none() {
                    return Ok(None);
                }
                let (mut record, counted) = stored_record(users, &key, self.floor)?;
                record.last_applied = entry.call.applied();
                record.last_applied_seq = Some(entry.seq);
                users.insert(key.as_bytes(), encode(&record))?;
                Ok(Some((record.next_seq, counted)))
            })
            .map_err(transaction_error)?;
        if let Some((next_seq, counted)) = counted {
            self.count(next_seq, counted);
        }
        self.flush()
    }

    fn pending_users(&self) -> Result<Vec<String>, StoreError> {
        let mut users = Vec::new();
        for kv in self.outbox.iter() {
            let (key, _) = kv?;
            let address = key.split(|b| *b == 0).next().unwrap_or_default();
            let address = String::from_utf8_lossy(address).into_owned();
            if users.last() != Some(&address) {
                users.push(address);
            }
        }
        Ok(users)
    }

    fn outbox_depth(&self) -> Result<usize, StoreError> {
        Ok(self.outbox.len())
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.admin.account(name)
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.admin.accounts()
    }

    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        self.admin.put_account(account)?;
        self.flush()
    }

    fn audit(&self, at: i64, who: &str, what: &str) -> Result<AuditEntry, StoreError> {
        let entry = self.admin.append(at, who, what)?;
        self.flush()?;
        Ok(entry)
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.admin.newest(limit)
    }

    fn stored_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        self.admin.stored_config()
    }

    fn put_config(&self, config: &StoredConfig) -> Result<(), StoreError> {
        self.admin.put_config(config)?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Status;
    use crate::store::suite::{TempDir, temp_dir, when_unlocked};

    fn reopen(dir: &Path) -> SledStore {
        when_unlocked(|| SledStore::open(dir, 1 << 20))
    }

    #[test]
    fn concurrent_writers_are_all_durable_through_the_group_commit() {
        let dir = TempDir(temp_dir("group"));
        let calls = 16 * 25;
        {
            let store = std::sync::Arc::new(SledStore::open(&dir.0, 1 << 20).unwrap());
            let writers: Vec<_> = (0..16)
                .map(|w| {
                    let store = store.clone();
                    std::thread::spawn(move || {
                        for i in 0..25 {
                            let address = format!("user{w}@flexi.se");
                            let entry = store.enqueue(&address, DiversionCall::Clear, i).unwrap();
                            assert_eq!(entry.seq, i as u64);
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            assert!(store.flushes() >= 1 && store.flushes() <= calls);
        }
        let store = reopen(&dir.0);
        assert_eq!(store.outbox_depth().unwrap(), calls as usize);
        for w in 0..16 {
            let seqs: Vec<u64> = store
                .outbox(&format!("user{w}@flexi.se"))
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect();
            assert_eq!(seqs, (0..25).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn sled_keeps_everything_across_a_reopen() {
        let dir = TempDir(temp_dir("reopen"));
        let account = Account {
            name: "ada".into(),
            role: super::super::Role::Administrator,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created: 7,
        };
        let stored = StoredConfig {
            text: "[service]\n# edited\n".into(),
            file_text: "[service]\n".into(),
        };
        let (entry, audited) = {
            let store = SledStore::open(&dir.0, 1 << 20).unwrap();
            store
                .update_user("kim@flexi.se", &mut |r| r.status = Status::Active)
                .unwrap();
            store.put_account(&account).unwrap();
            let audited = store.audit(8, "ada", "made the account ada").unwrap();
            store.put_config(&stored).unwrap();
            let entry = store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 5)
                .unwrap();
            (entry, audited)
        };
        let store = reopen(&dir.0);
        assert_eq!(store.account("ADA").unwrap(), Some(account));
        // The log goes on numbering after a reopen.
        let next = store.audit(9, "ada", "passivated kim@flexi.se").unwrap();
        assert_eq!(store.audit_log(5).unwrap(), vec![next.clone(), audited]);
        assert_eq!(next.seq, 2);
        assert_eq!(store.stored_config().unwrap(), Some(stored));
        assert_eq!(store.outbox("kim@flexi.se").unwrap(), vec![entry]);
        assert_eq!(
            store.user("kim@flexi.se").unwrap().unwrap().status,
            Status::Active
        );
        assert_eq!(store.user("kim@flexi.se").unwrap().unwrap().next_seq, 1);
    }
}
