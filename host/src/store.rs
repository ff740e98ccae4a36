//! What Calvert remembers across restarts, behind the [`Store`] trait.
//!
//! Per user: the status (semantics §8), the diversion last applied (confirmed by the
//! telephony system), the last successful sync, EWS sync state, subscription and
//! watermark, the count of consecutive failures — and the **outbox**: the diversion
//! calls the core decided but the telephony system has not yet confirmed, in order.
//!
//! Delivery is exactly-once in effect: an entry gets a sequence number that is never
//! reused, and is durable (flushed) before it is sent; its idempotency key
//! (`address#seq`) goes with every attempt, so a call repeated after a crash or a lost
//! reply is recognised by the receiver. [`Store::complete`] removes the entry and
//! records `last_applied` in one atomic step.
//!
//! Two stores implement it: [`SledStore`] (the service's) and [`MemoryStore`] (tests,
//! benchmarks, the demo). One test suite runs against both (`store_suite!`).

use crate::lock::lock;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A user's state in the administrator's view (semantics §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Status {
    #[default]
    NotInUse,
    Active,
    Passive,
    Error(String),
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::NotInUse => "not-in-use",
            Status::Active => "active",
            Status::Passive => "passive",
            Status::Error(_) => "error",
        }
    }
}

/// A diversion as the telephony system holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub reason: String,
    pub until: i64,
}

/// Everything remembered about one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserRecord {
    pub status: Status,
    pub last_applied: Option<Applied>,
    /// When the calendar was last read successfully (seconds since the epoch).
    pub last_sync: Option<i64>,
    pub sync_state: Option<String>,
    pub subscription_id: Option<String>,
    pub watermark: Option<String>,
    pub consecutive_failures: u32,
    /// The next outbox sequence number: never reused.
    pub next_seq: u64,
}

/// One diversion call to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum DiversionCall {
    Set {
        reason: String,
        until: i64,
        until_local: String,
    },
    Clear,
}

impl DiversionCall {
    /// What the phone shows once this call is confirmed.
    pub fn applied(&self) -> Option<Applied> {
        match self {
            DiversionCall::Set { reason, until, .. } => Some(Applied {
                reason: reason.clone(),
                until: *until,
            }),
            DiversionCall::Clear => None,
        }
    }
}

/// A call in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub address: String,
    pub seq: u64,
    pub call: DiversionCall,
    /// When the core decided it (seconds since the epoch, the host's clock).
    pub decided_at: i64,
}

impl OutboxEntry {
    /// Sent with every attempt, so the receiver can drop repeats.
    pub fn idempotency_key(&self) -> String {
        format!("{}#{}", self.address, self.seq)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state database at {path}: {source}; check that the directory is writable and that no other Calvert runs on it"
    )]
    Open { path: String, source: sled::Error },
    #[error("the state database failed: {0}; check the disk (space, permissions) and restart")]
    Database(#[from] sled::Error),
    #[error("a state database task stopped before it finished: {0}; the change is retried")]
    Task(String),
    #[error(
        "the state database holds a record Calvert cannot read ({key}): {detail}; restore a backup or remove the state directory to start afresh"
    )]
    Corrupt { key: String, detail: String },
}

/// Calvert's memory. Every method that changes something is durable when it returns.
pub trait Store: Send + Sync {
    /// The record of one user (None: never seen).
    fn user(&self, address: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Change a user's record atomically (read, `change`, write; `change` may run
    /// more than once) and return the new record. `next_seq` cannot go back.
    fn update_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<UserRecord, StoreError>;
    /// Change bookkeeping in a user's record (last sync, failure count, subscription,
    /// watermark): written but not flushed on its own — the next durable change carries
    /// it. A crash can lose only this bookkeeping, never a diversion or a status.
    fn note_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<(), StoreError>;
    /// Every user with a record.
    fn users(&self) -> Result<Vec<(String, UserRecord)>, StoreError>;
    /// Append a call to the user's outbox under a fresh sequence number.
    fn enqueue(
        &self,
        address: &str,
        call: DiversionCall,
        decided_at: i64,
    ) -> Result<OutboxEntry, StoreError>;
    /// The user's pending calls, oldest first.
    fn outbox(&self, address: &str) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The telephony system confirmed `entry`: remove it and record what the phone
    /// now shows, atomically.
    fn complete(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// Addresses with pending calls.
    fn pending_users(&self) -> Result<Vec<String>, StoreError>;
    /// Pending calls in all.
    fn outbox_depth(&self) -> Result<usize, StoreError>;
}

fn user_key(address: &str) -> String {
    address.to_ascii_lowercase()
}

// ------------------------------------------------------------------------------
// In memory
// ------------------------------------------------------------------------------

/// A store that forgets everything when dropped.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    users: BTreeMap<String, UserRecord>,
    outbox: BTreeMap<(String, u64), OutboxEntry>,
}

impl MemoryStore {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock leaves consistent data (every change is
        // one insert or remove), so a poisoned lock is still usable.
        lock(&self.state)
    }
}

impl Store for MemoryStore {
    fn user(&self, address: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().users.get(&user_key(address)).cloned())
    }

    fn update_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<UserRecord, StoreError> {
        let mut state = self.state();
        let record = state.users.entry(user_key(address)).or_default();
        let next_seq = record.next_seq;
        change(record);
        record.next_seq = record.next_seq.max(next_seq);
        Ok(record.clone())
    }

    fn note_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<(), StoreError> {
        self.update_user(address, change).map(|_| ())
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, StoreError> {
        Ok(self
            .state()
            .users
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn enqueue(
        &self,
        address: &str,
        call: DiversionCall,
        decided_at: i64,
    ) -> Result<OutboxEntry, StoreError> {
        let mut state = self.state();
        let key = user_key(address);
        let record = state.users.entry(key.clone()).or_default();
        let seq = record.next_seq;
        record.next_seq += 1;
        let entry = OutboxEntry {
            address: key.clone(),
            seq,
            call,
            decided_at,
        };
        state.outbox.insert((key, seq), entry.clone());
        Ok(entry)
    }

    fn outbox(&self, address: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let key = user_key(address);
        Ok(self
            .state()
            .outbox
            .range((key.clone(), 0)..=(key, u64::MAX))
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn complete(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = user_key(&entry.address);
        if state.outbox.remove(&(key.clone(), entry.seq)).is_some() {
            state.users.entry(key).or_default().last_applied = entry.call.applied();
        }
        Ok(())
    }

    fn pending_users(&self) -> Result<Vec<String>, StoreError> {
        let mut users: Vec<String> = self.state().outbox.keys().map(|(a, _)| a.clone()).collect();
        users.dedup();
        Ok(users)
    }

    fn outbox_depth(&self) -> Result<usize, StoreError> {
        Ok(self.state().outbox.len())
    }
}

// ------------------------------------------------------------------------------
// sled
// ------------------------------------------------------------------------------

/// The service's store: sled 0.34 with a bounded page cache. Every change is
/// flushed before the method returns. sled takes a lock on the directory, so a
/// second Calvert on the same state directory fails to open it (with a sentence).
pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
    outbox: sled::Tree,
    commit: GroupCommit,
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
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        let users = db.open_tree("users")?;
        let outbox = db.open_tree("outbox")?;
        Ok(SledStore {
            db,
            users,
            outbox,
            commit: GroupCommit::default(),
        })
    }

    /// Read, change and write one user's record in a transaction (not flushed).
    fn change_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<UserRecord, StoreError> {
        let key = user_key(address);
        let change = std::cell::RefCell::new(change);
        self.users
            .transaction(|users| {
                let mut record: UserRecord = match users.get(key.as_bytes())? {
                    Some(bytes) => decode(key.as_bytes(), &bytes).map_err(abort)?,
                    None => UserRecord::default(),
                };
                let next_seq = record.next_seq;
                (change.borrow_mut())(&mut record);
                record.next_seq = record.next_seq.max(next_seq);
                users.insert(key.as_bytes(), encode(&record))?;
                Ok(record)
            })
            .map_err(transaction_error)
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
            let result = self.db.flush();
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

fn outbox_key(address: &str, seq: u64) -> Vec<u8> {
    let mut key = user_key(address).into_bytes();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A failure inside a sled transaction: sled's own, or a record we cannot read.
fn abort(e: StoreError) -> sled::transaction::ConflictableTransactionError<StoreError> {
    sled::transaction::ConflictableTransactionError::Abort(e)
}

fn transaction_error(e: sled::transaction::TransactionError<StoreError>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => StoreError::Database(e),
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
        let entry = (&self.users, &self.outbox)
            .transaction(|(users, outbox)| {
                let mut record: UserRecord = match users.get(key.as_bytes())? {
                    Some(bytes) => decode(key.as_bytes(), &bytes).map_err(abort)?,
                    None => UserRecord::default(),
                };
                let entry = OutboxEntry {
                    address: key.clone(),
                    seq: record.next_seq,
                    call: call.clone(),
                    decided_at,
                };
                record.next_seq += 1;
                users.insert(key.as_bytes(), encode(&record))?;
                outbox.insert(outbox_key(&key, entry.seq), encode(&entry))?;
                Ok(entry)
            })
            .map_err(transaction_error)?;
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
        (&self.users, &self.outbox)
            .transaction(|(users, outbox)| {
                if outbox.remove(outbox_key(&key, entry.seq))?.is_none() {
                    return Ok(());
                }
                let mut record: UserRecord = match users.get(key.as_bytes())? {
                    Some(bytes) => decode(key.as_bytes(), &bytes).map_err(abort)?,
                    None => UserRecord::default(),
                };
                record.last_applied = entry.call.applied();
                users.insert(key.as_bytes(), encode(&record))?;
                Ok(())
            })
            .map_err(transaction_error)?;
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
}

/// One suite, run against every store (as Stalwart runs its storage tests against
/// every backend).
#[cfg(test)]
macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            fn set(reason: &str, until: i64) -> DiversionCall {
                DiversionCall::Set {
                    reason: reason.into(),
                    until,
                    until_local: String::new(),
                }
            }

            #[test]
            fn a_user_record_round_trips_and_addresses_ignore_case() {
                let (store, _dir) = $make;
                assert_eq!(store.user("kim@flexi.se").unwrap(), None);
                let record = UserRecord {
                    status: Status::Error("no route".into()),
                    last_sync: Some(1_700_000_000),
                    watermark: Some("AQAAAA==".into()),
                    ..UserRecord::default()
                };
                let written = store
                    .update_user("Kim@Flexi.se", &mut |r| *r = record.clone())
                    .unwrap();
                assert_eq!(written, record);
                assert_eq!(store.user("kim@flexi.se").unwrap(), Some(record));
                assert_eq!(store.users().unwrap().len(), 1);
                store
                    .update_user("kim@flexi.se", &mut |r| r.consecutive_failures = 3)
                    .unwrap();
                store
                    .note_user("kim@flexi.se", &mut |r| {
                        r.last_sync = Some(1_800_000_000);
                        r.consecutive_failures = 0;
                    })
                    .unwrap();
                let synced = store.user("kim@flexi.se").unwrap().unwrap();
                assert_eq!(
                    (synced.last_sync, synced.consecutive_failures),
                    (Some(1_800_000_000), 0)
                );
                assert_eq!(synced.status, Status::Error("no route".into()));
            }

            #[test]
            fn the_outbox_keeps_order_per_user_and_never_reuses_a_number() {
                let (store, _dir) = $make;
                let a = store.enqueue("kim@flexi.se", set("LUNCH", 10), 1).unwrap();
                let b = store
                    .enqueue("kim@flexi.se", DiversionCall::Clear, 2)
                    .unwrap();
                let c = store
                    .enqueue("eva@flexi.se", set("MEETING", 20), 3)
                    .unwrap();
                assert_eq!((a.seq, b.seq, c.seq), (0, 1, 0));
                assert_eq!(
                    store.outbox("kim@flexi.se").unwrap(),
                    vec![a.clone(), b.clone()]
                );
                assert_eq!(store.outbox_depth().unwrap(), 3);
                assert_eq!(
                    store.pending_users().unwrap(),
                    vec!["eva@flexi.se".to_string(), "kim@flexi.se".to_string()]
                );

                store.complete(&a).unwrap();
                assert_eq!(
                    store.user("kim@flexi.se").unwrap().unwrap().last_applied,
                    Some(Applied {
                        reason: "LUNCH".into(),
                        until: 10
                    })
                );
                // Completing twice changes nothing.
                store.complete(&a).unwrap();
                store.complete(&b).unwrap();
                assert_eq!(
                    store.user("kim@flexi.se").unwrap().unwrap().last_applied,
                    None
                );
                assert!(store.outbox("kim@flexi.se").unwrap().is_empty());

                // A record written from an old copy cannot roll the sequence back.
                store
                    .update_user("kim@flexi.se", &mut |r| *r = UserRecord::default())
                    .unwrap();
                let d = store
                    .enqueue("kim@flexi.se", DiversionCall::Clear, 4)
                    .unwrap();
                assert_eq!(d.seq, 2);
                assert_ne!(d.idempotency_key(), a.idempotency_key());
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "calvert-store-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Removes the directory when the test ends.
    pub(super) struct TempDir(pub std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    store_suite!(memory, (MemoryStore::default(), ()));
    store_suite!(sled_store, {
        let dir = super::tests::temp_dir("suite");
        (
            SledStore::open(&dir, 1 << 20).unwrap(),
            super::tests::TempDir(dir),
        )
    });

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
        let store = SledStore::open(&dir.0, 1 << 20).unwrap();
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
        let entry = {
            let store = SledStore::open(&dir.0, 1 << 20).unwrap();
            store
                .update_user("kim@flexi.se", &mut |r| r.status = Status::Active)
                .unwrap();
            store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 5)
                .unwrap()
        };
        let store = SledStore::open(&dir.0, 1 << 20).unwrap();
        assert_eq!(store.outbox("kim@flexi.se").unwrap(), vec![entry]);
        assert_eq!(
            store.user("kim@flexi.se").unwrap().unwrap().status,
            Status::Active
        );
        assert_eq!(store.user("kim@flexi.se").unwrap().unwrap().next_seq, 1);
    }
}
