//! The running service's shared state: the configuration, the core, the adapters,
//! the metrics and one [`Mailbox`] per configured user; and the few operations every
//! task shares (run the core, change the store durably, move a user's status).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use super::adapters::Adapters;
use super::metrics::Metrics;
use super::shutdown::ShutdownSwitch;
use super::{Backoff, ServiceError};
use crate::component::wit::{self, StatusEvent, UserStatus};
use crate::component::{CoreError, CoreInstance, DecisionCore};
use crate::config::{ServiceConfig, User};
use crate::diversion::Phone;
use crate::lock::lock;
use crate::store::{Status, Store, StoreError};

/// One configured user at run time.
pub(super) struct Mailbox {
    /// The address as configured (it never changes while the service runs).
    pub address: String,
    /// The user's settings and routes, replaced when the configuration is edited live.
    user: std::sync::RwLock<User>,
    /// Wakes the mailbox task (a change, an administrator's action).
    pub wake: Notify,
    /// Wakes the delivery task (a new call in the outbox, a restart).
    pub deliver: Notify,
    /// When (the service clock, seconds) the newest change notification arrived, for
    /// Active connections ("last event"); not kept across a restart.
    pub last_event: Mutex<Option<i64>>,
    /// When the oldest change not yet handled arrived.
    pub changed_at: Mutex<Option<Instant>>,
    /// The change each queued call answers, for the latency histogram.
    pub call_started: Mutex<BTreeMap<u64, Instant>>,
    /// The calendar as last read, and when (the service clock). A boundary
    /// (`next_change`) re-decides on it without reading Exchange again: nothing
    /// changed, or a notification would have said so.
    pub cached: Mutex<Option<(i64, Vec<wit::CalendarItem>)>>,
    /// Reads refused by the server itself in a row (the back-off; no status change).
    pub server_failures: AtomicU32,
    /// A task of this mailbox panicked and waits to be restarted ([`super::supervise`]).
    pub restarting: AtomicBool,
    /// Panics of this mailbox's tasks since the start.
    pub panics: AtomicU32,
}

impl Mailbox {
    /// The user's settings now.
    pub fn user(&self) -> User {
        crate::lock::read(&self.user).clone()
    }

    /// The phone the user's diversions go to (its telephony id may change live).
    pub fn phone(&self) -> Phone {
        let user = crate::lock::read(&self.user);
        Phone {
            address: user.address.clone(),
            telephony_id: user.telephony_id.clone(),
        }
    }

    /// New settings from an edited configuration.
    pub fn set_user(&self, user: &User) {
        *crate::lock::write(&self.user) = user.clone();
    }

    pub fn new(user: &User) -> Self {
        Mailbox {
            address: user.address.clone(),
            user: std::sync::RwLock::new(user.clone()),
            wake: Notify::new(),
            deliver: Notify::new(),
            last_event: Mutex::new(None),
            changed_at: Mutex::new(None),
            call_started: Mutex::new(BTreeMap::new()),
            cached: Mutex::new(None),
            server_failures: AtomicU32::new(0),
            restarting: AtomicBool::new(false),
            panics: AtomicU32::new(0),
        }
    }
}

/// Everything the service's tasks share.
pub(super) struct Service {
    /// The configuration now: replaced whole by a live edit ([`Service::config`]).
    pub live_config: std::sync::RwLock<Arc<ServiceConfig>>,
    pub core: DecisionCore,
    pub idle_cores: Mutex<Vec<CoreInstance>>,
    pub adapters: Adapters,
    pub metrics: Metrics,
    /// Every user's mailbox.
    pub mailboxes: super::roster::Roster,
    /// The mailboxes' tasks ([`Service::start_mailbox`]).
    pub mailbox_tasks: Mutex<tokio::task::JoinSet<()>>,
    pub shutdown: ShutdownSwitch,
    /// Retries of diversion calls while the target is unavailable.
    pub delivery_backoff: Backoff,
    /// Sessions and login limits of the administration.
    pub admin: super::admin::AdminState,
    /// Where watchers report changes (to the dispatcher).
    pub changes: tokio::sync::mpsc::UnboundedSender<super::source::Change>,
    /// The watchers running now ([`super::watchers`]).
    pub watchers: tokio::sync::Mutex<super::watchers::Watchers>,
    /// One live edit at a time ([`super::reconfigure`]).
    pub reconfiguring: tokio::sync::Mutex<()>,
}

impl Service {
    /// The configuration now (a live edit replaces it; a caller keeps the one it got).
    pub fn config(&self) -> Arc<ServiceConfig> {
        crate::lock::read(&self.live_config).clone()
    }

    /// Run `f` on an idle core instance (one per concurrent caller, reused).
    pub fn with_core<T>(
        &self,
        f: impl FnOnce(&mut CoreInstance) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let mut core = lock(&self.idle_cores)
            .pop()
            .unwrap_or_else(|| self.core.instance());
        let result = f(&mut core);
        lock(&self.idle_cores).push(core);
        result
    }

    /// A store change that flushes, off the async workers: a flush waits for the disk,
    /// and concurrent flushes share one write (sled makes everything up to the newest
    /// change durable), so many mailboxes due at once cost a few disk writes, not one
    /// each in a row.
    pub async fn durably<T: Send + 'static>(
        &self,
        change: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.adapters.store.clone();
        tokio::task::spawn_blocking(move || change(store.as_ref()))
            .await
            .unwrap_or_else(|e| Err(StoreError::Task(e.to_string())))
    }

    /// Apply a status event through the core's state machine (semantics §8).
    pub fn status_event(&self, address: &str, event: StatusEvent) -> Result<Status, ServiceError> {
        let mut outcome: Result<(), CoreError> = Ok(());
        let record = self
            .adapters
            .store
            .update_user(address, &mut |record| match self
                .with_core(|core| core.next_status(&to_wit(&record.status), &event))
            {
                Ok(next) => {
                    let next = from_wit(next);
                    if next == Status::Active {
                        record.consecutive_failures = 0;
                    }
                    record.status = next;
                    outcome = Ok(());
                }
                Err(e) => outcome = Err(e),
            })?;
        outcome?;
        Ok(record.status)
    }

    /// Put a user in Error with `reason` (logged; the user waits for an administrator).
    pub fn fail(&self, address: &str, reason: String) {
        tracing::warn!(mailbox = %address, reason = %reason, "user goes to error");
        if let Err(error) = self.status_event(address, StatusEvent::Fail(reason)) {
            tracing::error!(mailbox = %address, %error, "cannot record the error status");
        }
    }
}

fn to_wit(status: &Status) -> UserStatus {
    match status {
        Status::NotInUse => UserStatus::NotInUse,
        Status::Active => UserStatus::Active,
        Status::Passive => UserStatus::Passive,
        Status::Error(reason) => UserStatus::Error(reason.clone()),
    }
}

fn from_wit(status: UserStatus) -> Status {
    match status {
        UserStatus::NotInUse => Status::NotInUse,
        UserStatus::Active => Status::Active,
        UserStatus::Passive => Status::Passive,
        UserStatus::Error(reason) => Status::Error(reason),
    }
}
