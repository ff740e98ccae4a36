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
//! benchmarks, the demo), each in its own file. One test suite runs against both
//! (`store_suite!` in `suite.rs`).

mod memory;
mod sled;
#[cfg(test)]
mod suite;

use serde::{Deserialize, Serialize};

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

/// Why the store could not answer or keep a change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state database at {path}: {source}; check that the directory is writable and that no other Calvert runs on it"
    )]
    Open { path: String, source: ::sled::Error },
    #[error("the state database failed: {0}; check the disk (space, permissions) and restart")]
    Database(#[from] ::sled::Error),
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
    /// Every user with a record. Only the store's tests call it today: kept for the
    /// administration UI (a coming issue), which lists every user.
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

/// Records are kept under the lower-cased address: addresses ignore case.
fn user_key(address: &str) -> String {
    address.to_ascii_lowercase()
}
