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
//! At open, [`SledStore`] checks every counter against the queued calls, the calls
//! last applied and the key ledger, and moves counters up where the database lost
//! its newest writes (`keys.rs`, `ledger.rs`, `recovery.rs`); a user record it cannot
//! read is set aside and the user put in Error.
//!
//! Two stores implement it: [`SledStore`] (the service's) and [`MemoryStore`] (tests,
//! benchmarks, the demo), each in its own file. One test suite runs against both
//! (`store_suite!` in `suite.rs`).

mod admin_records;
mod keys;
mod ledger;
mod memory;
mod recovery;
mod sled;
mod sled_admin;
#[cfg(test)]
mod suite;

use serde::{Deserialize, Serialize};

use admin_records::account_key;
pub use admin_records::{Account, AuditEntry, Role};
pub use keys::KeyRepair;
pub use ledger::LEDGER_FILE;
pub use memory::MemoryStore;
pub use sled::SledStore;

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
    /// The sequence number of the call last applied (its idempotency key's number).
    #[serde(default)]
    pub last_applied_seq: Option<u64>,
    /// When the calendar was last read successfully (seconds since the epoch).
    pub last_sync: Option<i64>,
    /// EWS `SyncFolderItems` state. Nothing sets it yet: kept for the two-way
    /// calendar sync (a coming issue), which resumes from it.
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

/// A user's record and queued calls as they were at one moment: a call confirmed
/// in between shows either as queued or as applied, never as neither.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub record: UserRecord,
    pub pending: Vec<OutboxEntry>,
}

/// What to do with a damaged state directory, and what it costs.
const DAMAGED_ADVICE: &str = "restore the state directory from a backup; or stop Calvert, move the directory aside and start it again: Calvert then rebuilds its state from Exchange and the phones (every configured user starts again, administrators' passivations and queued calls are lost and re-decided from the calendars, and idempotency keys start again from #0, so a telephony system that remembers keys must forget Calvert's)";

/// Why the store could not answer or keep a change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be opened: permissions, the disk, another Calvert.
    #[error(
        "cannot open the state database at {path}: {source}; check that the directory is writable and that no other Calvert runs on it"
    )]
    Open { path: String, source: ::sled::Error },
    /// sled found damaged data (at open or in a read).
    #[error(
        "the state database in {path} is damaged ({detail}); {}",
        DAMAGED_ADVICE
    )]
    Damaged { path: String, detail: String },
    #[error("the state database failed: {0}; check the disk (space, permissions) and restart")]
    Database(::sled::Error),
    #[error("a state database task stopped before it finished: {0}; the change is retried")]
    Task(String),
    /// One record's bytes are not a record (sled's checksums passed).
    #[error(
        "the stored record {key} cannot be read ({detail}); restart Calvert to set it aside and put that user in error, or restore the state directory from a backup"
    )]
    Corrupt { key: String, detail: String },
    /// The key ledger (see `ledger.rs`) cannot be read or written.
    #[error(
        "cannot write the key ledger {path}: {source}; check the disk (space, permissions): no diversion call is sent until it is written"
    )]
    Ledger {
        path: String,
        source: std::io::Error,
    },
}

impl From<::sled::Error> for StoreError {
    /// sled's corruption is damage to the data, with its own advice; every other
    /// failure is the disk's or the system's.
    fn from(error: ::sled::Error) -> Self {
        match error {
            ::sled::Error::Corruption { .. } => StoreError::Damaged {
                path: "service.state_dir".into(),
                detail: error.to_string(),
            },
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// An error at open of the database in `path`: damaged data apart from the
    /// directory's own troubles (permissions, the disk, a second Calvert).
    pub fn at_open(path: &std::path::Path, error: ::sled::Error) -> Self {
        let path = path.display().to_string();
        match error {
            ::sled::Error::Corruption { .. } | ::sled::Error::ReportableBug(_) => {
                StoreError::Damaged {
                    path,
                    detail: error.to_string(),
                }
            }
            ::sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::InvalidData => {
                StoreError::Damaged {
                    path,
                    detail: error.to_string(),
                }
            }
            source => StoreError::Open { path, source },
        }
    }

    /// The stored data itself is bad (not the disk, not a task): retrying cannot help.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Damaged { .. } | StoreError::Corrupt { .. }
        )
    }
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
    /// The user's record (the default when never seen) and pending calls, as one
    /// moment saw them. The default reads the queue, the record, and the queue again
    /// until the two queues agree (nothing moved meanwhile); should they keep moving,
    /// the first queue with the record, in which a call confirmed in between is both
    /// queued and applied, never neither.
    fn snapshot(&self, address: &str) -> Result<Snapshot, StoreError> {
        let mut pending = self.outbox(address)?;
        for _ in 0..3 {
            let record = self.user(address)?.unwrap_or_default();
            let again = self.outbox(address)?;
            if again == pending {
                return Ok(Snapshot { record, pending });
            }
            pending = again;
        }
        let record = self.user(address)?.unwrap_or_default();
        Ok(Snapshot { record, pending })
    }
    /// The telephony system confirmed `entry`: remove it and record what the phone
    /// now shows (and `entry.seq` as the last applied number), atomically.
    fn complete(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// Addresses with pending calls.
    fn pending_users(&self) -> Result<Vec<String>, StoreError>;
    /// Pending calls in all.
    fn outbox_depth(&self) -> Result<usize, StoreError>;
    /// The account named `name` (any case).
    fn account(&self, name: &str) -> Result<Option<Account>, StoreError>;
    /// Every account, by name.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Add or replace an account (durable when it returns).
    fn put_account(&self, account: &Account) -> Result<(), StoreError>;
    /// Append to the audit log under the next number, durably; returns the entry as kept.
    fn audit(&self, at: i64, who: &str, what: &str) -> Result<AuditEntry, StoreError>;
    /// The newest `limit` audit entries, newest first.
    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
    /// The configuration as last saved; None: never saved (the first start seeds it
    /// from calvert.toml).
    fn stored_config(&self) -> Result<Option<StoredConfig>, StoreError>;
    /// Save the configuration, both texts at once (durable when it returns).
    fn put_config(&self, config: &StoredConfig) -> Result<(), StoreError>;
}

/// The configuration in the store: the TOML text in force (calvert.toml's text with
/// the administration's live edits) and the text of calvert.toml it started from, so
/// a start can tell "the file changed" from "the administration changed it".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    pub text: String,
    pub file_text: String,
}

/// Records are kept under the lower-cased address: addresses ignore case.
fn user_key(address: &str) -> String {
    address.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_data_is_told_apart_from_the_directorys_own_troubles() {
        let path = std::path::Path::new("/var/lib/calvert");
        let corrupt = StoreError::at_open(path, ::sled::Error::Corruption { at: None, bt: () });
        let sentence = corrupt.to_string();
        assert!(corrupt.is_damage());
        assert!(
            sentence.contains("/var/lib/calvert is damaged"),
            "{sentence}"
        );
        assert!(sentence.contains("backup"), "{sentence}");
        assert!(sentence.contains("move the directory aside"), "{sentence}");
        assert!(
            sentence.contains("rebuilds its state from Exchange"),
            "{sentence}"
        );
        assert!(!sentence.contains("writable"), "{sentence}");

        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let denied = StoreError::at_open(path, ::sled::Error::Io(denied));
        assert!(!denied.is_damage());
        assert!(denied.to_string().contains("writable"), "{denied}");

        // The same damage found in a read while running.
        let read = StoreError::from(::sled::Error::Corruption { at: None, bt: () });
        assert!(read.is_damage());
        assert!(read.to_string().contains("backup"), "{read}");
        let io = StoreError::from(::sled::Error::Io(std::io::Error::other("disk full")));
        assert!(!io.is_damage());
    }
}
