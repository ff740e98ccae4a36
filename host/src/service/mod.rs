//! `calvert serve`: phones follow calendars, live, through restarts and outages.
//!
//! Each configured user gets two small tasks:
//!
//! - the **mailbox task** runs the core's loop (README, "The core's loop"): read the
//!   calendar window → `decide` → `reconcile` with what was last set (and what the
//!   phone shows, when the target can tell) → put the resulting call in the outbox →
//!   sleep until the decision's `next_change`, the next notification (debounced), or
//!   the periodic resync, whichever comes first;
//! - the **delivery task** sends the user's outbox to the telephony target, oldest
//!   first, one at a time, retrying with back-off and jitter while the target is
//!   unavailable, and records each confirmed call ([`Store::complete`]).
//!
//! Calendar sources watch their mailboxes (EWS streaming) and report changes; a
//! dispatcher wakes the mailbox concerned. The core runs as the WebAssembly
//! component; the host owns time ([`Clock`]), I/O, storage and retries.
//!
//! Shutdown: [`ServiceHandle::shutdown`] (Ctrl-C or SIGTERM in `calvert serve`)
//! stops the watchers and wakes every task; a task finishes the call it is making
//! (bounded by the target's timeout) and ends. Everything a task decided is already
//! durable in the store, so a restart continues where the service stopped; a call
//! cut off mid-flight is sent again with the same idempotency key.

pub mod admin;
pub mod clock;
pub mod metrics;
pub mod source;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

pub use crate::backoff::Backoff;
use crate::component::wit::{
    self, Observation, PhoneDiversion, ReconcileAction, StatusEvent, UserStatus,
};
use crate::component::{CoreError, CoreInstance, DecisionCore};
use crate::config::{ServiceConfig, TelephonyKind, User};
use crate::diversion::{DiversionTarget, HttpTarget, LogTarget, Phone, TargetError};
use crate::store::{Applied, DiversionCall, Status, Store, StoreError};
pub use clock::{Clock, ScaledClock, SystemClock};
use metrics::{ActionLabel, Metrics, Outcome, StatusLabel};
pub use source::{CalendarSource, Change, EwsSource, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Exchange server {server}: {message}")]
    Source { server: String, message: String },
    #[error(transparent)]
    Target(#[from] crate::diversion::HttpTargetError),
    #[error(
        "cannot listen on {addr} for /health and /metrics: {source}; choose another service.admin_listen"
    )]
    Admin {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The adapters the service runs with: vendors swap any of them.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    /// Calendar sources by Exchange server name.
    pub sources: HashMap<String, Arc<dyn CalendarSource>>,
    /// Diversion targets by telephony target name.
    pub targets: HashMap<String, Arc<dyn DiversionTarget>>,
    pub clock: Arc<dyn Clock>,
}

impl Adapters {
    /// The adapters `calvert.toml` names: EWS sources, http or log targets, sled.
    pub fn from_config(
        config: &ServiceConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServiceError> {
        let mut sources: HashMap<String, Arc<dyn CalendarSource>> = HashMap::new();
        for server in &config.exchange {
            let source = EwsSource::new(
                &server.name,
                server.url.clone(),
                server.credentials.clone(),
                server.ca_bundle.clone(),
                server.timeout,
            )
            .map_err(|e| ServiceError::Source {
                server: server.name.clone(),
                message: e.to_string(),
            })?
            .with_push(server.push.clone());
            sources.insert(server.name.clone(), Arc::new(source));
        }
        let mut targets: HashMap<String, Arc<dyn DiversionTarget>> = HashMap::new();
        for target in &config.telephony {
            let adapter: Arc<dyn DiversionTarget> = match &target.kind {
                TelephonyKind::Log => Arc::new(LogTarget::stdout(&target.name)),
                TelephonyKind::Http {
                    url,
                    headers,
                    reads_back,
                } => Arc::new(HttpTarget::new(
                    &target.name,
                    url,
                    headers,
                    *reads_back,
                    target.timeout,
                )?),
            };
            targets.insert(target.name.clone(), adapter);
        }
        Ok(Adapters {
            store,
            sources,
            targets,
            clock: Arc::new(SystemClock),
        })
    }
}

/// How long (service-clock seconds) a calendar read may be re-used at boundaries;
/// far inside the window read (at least a day ahead).
const CACHE_LIFETIME: i64 = 3600;

/// One configured user at run time.
struct Mailbox {
    user: User,
    phone: Phone,
    /// Wakes the mailbox task (a change, an administrator's action).
    wake: Notify,
    /// Wakes the delivery task (a new call in the outbox, a restart).
    deliver: Notify,
    /// When the oldest change not yet handled arrived.
    changed_at: Mutex<Option<Instant>>,
    /// The change each queued call answers, for the latency histogram.
    call_started: Mutex<BTreeMap<u64, Instant>>,
    /// The calendar as last read, and when (the service clock). A boundary
    /// (`next_change`) re-decides on it without reading Exchange again: nothing
    /// changed, or a notification would have said so.
    cached: Mutex<Option<(i64, Vec<wit::CalendarItem>)>>,
    /// Reads refused by the server itself in a row (the back-off; no status change).
    server_failures: AtomicU32,
}

struct Inner {
    config: ServiceConfig,
    core: DecisionCore,
    idle_cores: Mutex<Vec<CoreInstance>>,
    adapters: Adapters,
    metrics: Metrics,
    mailboxes: BTreeMap<String, Arc<Mailbox>>,
    stop: watch::Sender<bool>,
    /// Retries of diversion calls while the target is unavailable.
    delivery_backoff: Backoff,
}

/// A running service.
pub struct ServiceHandle {
    inner: Arc<Inner>,
    tasks: tokio::task::JoinSet<()>,
    /// The admin listener's address, when it listens.
    pub admin_addr: Option<std::net::SocketAddr>,
}

/// What one mailbox step leads to.
enum Next {
    /// Wait for `next_change` (or a notification, or the resync).
    At(Option<i64>),
    /// A transient failure: try again after this long (real time).
    Retry(Duration),
    /// The user is not active: wait for an administrator.
    Idle,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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

fn phone_diversion(applied: &Applied) -> PhoneDiversion {
    PhoneDiversion {
        reason: applied.reason.clone(),
        until: applied.until,
    }
}

impl Inner {
    /// Run `f` on an idle core instance (one per concurrent caller, reused).
    fn with_core<T>(
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
    async fn durably<T: Send + 'static>(
        &self,
        change: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.adapters.store.clone();
        tokio::task::spawn_blocking(move || change(store.as_ref()))
            .await
            .unwrap_or_else(|e| Err(StoreError::Task(e.to_string())))
    }

    /// Apply a status event through the core's state machine (semantics §8).
    fn status_event(&self, address: &str, event: StatusEvent) -> Result<Status, ServiceError> {
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

    fn fail(&self, address: &str, reason: String) -> Next {
        tracing::warn!(mailbox = %address, reason = %reason, "user goes to error");
        if let Err(error) = self.status_event(address, StatusEvent::Fail(reason)) {
            tracing::error!(mailbox = %address, %error, "cannot record the error status");
        }
        Next::Idle
    }

    /// One turn of the core's loop for one mailbox. `reuse`: decide on the cached
    /// calendar when it covers `now` (a boundary passed, nothing changed).
    async fn step(&self, mailbox: &Mailbox, reuse: bool) -> Next {
        let user = &mailbox.user;
        let address = user.address.as_str();
        let store = &self.adapters.store;
        let record = match store.user(address) {
            Ok(record) => record.unwrap_or_default(),
            Err(error) => {
                tracing::error!(mailbox = %address, %error, "state database");
                return Next::Retry(Duration::from_secs(5));
            }
        };
        // The configuration turns users on and off; the store keeps what happened since.
        let status = if !user.enabled {
            if record.status != Status::Passive {
                let _ = self.status_event(address, StatusEvent::Passivate);
            }
            Status::Passive
        } else if record.status == Status::NotInUse {
            match self.status_event(address, StatusEvent::Activate(user.integration_id.clone())) {
                Ok(status) => status,
                Err(error) => return self.fail(address, error.to_string()),
            }
        } else {
            record.status.clone()
        };
        if status != Status::Active {
            return Next::Idle;
        }
        let Some(server) = &user.exchange else {
            return self.fail(
                address,
                "no route: no [[rule]] matches this address; add one and restart the user".into(),
            );
        };
        let (Some(source), Some(target)) = (
            self.adapters.sources.get(server),
            user.telephony
                .as_ref()
                .and_then(|t| self.adapters.targets.get(t)),
        ) else {
            return self.fail(
                address,
                "no telephony route: no [[telephony_rule]] matches this address; add one and restart the user".into(),
            );
        };

        let started = Instant::now();
        let now = self.adapters.clock.now();
        let window = self.config.window.as_secs() as i64;
        // A boundary re-decides on the calendar as last read when that read is recent
        // (the resync reads it afresh every `resync` anyway); anything else reads it.
        let cached = if reuse {
            lock(&mailbox.cached)
                .as_ref()
                .filter(|(read_at, _)| (0..CACHE_LIFETIME).contains(&(now - read_at)))
                .map(|(_, items)| items.clone())
        } else {
            None
        };
        let read = match cached {
            Some(items) => Ok(items),
            None => {
                *lock(&mailbox.cached) = None;
                let read = source.calendar(address, now - 86_400, now + window).await;
                if let Ok(items) = &read {
                    self.metrics
                        .calendar_reads
                        .get_or_create(&Outcome { outcome: "ok" })
                        .inc();
                    *lock(&mailbox.cached) = Some((now, items.clone()));
                }
                read
            }
        };
        let items = match read {
            Ok(items) => {
                mailbox.server_failures.store(0, Ordering::Relaxed);
                items
            }
            Err(SourceError::Mailbox(reason)) => {
                self.metrics
                    .calendar_reads
                    .get_or_create(&Outcome { outcome: "refused" })
                    .inc();
                return self.fail(address, reason.to_string());
            }
            Err(SourceError::Server(message)) => {
                self.metrics
                    .calendar_reads
                    .get_or_create(&Outcome {
                        outcome: "server-failed",
                    })
                    .inc();
                let failures = mailbox.server_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(mailbox = %address, failures, reason = %message, "the Exchange server refuses Calvert; retrying");
                return Next::Retry(Backoff::default().wait(failures));
            }
            Err(SourceError::Transient {
                cause: message,
                retry_after,
            }) => {
                self.metrics
                    .calendar_reads
                    .get_or_create(&Outcome { outcome: "failed" })
                    .inc();
                let failures = store
                    .update_user(address, &mut |r| {
                        r.consecutive_failures = r.consecutive_failures.saturating_add(1)
                    })
                    .map(|r| r.consecutive_failures)
                    .unwrap_or(u32::MAX);
                if failures >= self.config.failures_before_error {
                    return self.fail(address, format!("{failures} failures in a row: {message}"));
                }
                tracing::info!(mailbox = %address, failures, reason = %message, "calendar read failed; retrying");
                let wait = Backoff::default().wait(failures);
                return Next::Retry(retry_after.map_or(wait, |r| r.max(wait)));
            }
        };

        let decision = match self.with_core(|core| {
            core.decide(
                &items,
                &self.config.policy,
                &self.config.triggers,
                &user.zone,
                now,
            )
        }) {
            Ok(decision) => decision,
            Err(error) => return self.fail(address, error.to_string()),
        };
        let desired = decision.diversion.as_ref().map(|d| PhoneDiversion {
            reason: d.reason.clone(),
            until: d.until,
        });
        let pending = match store.outbox(address) {
            Ok(pending) => pending,
            Err(error) => {
                tracing::error!(mailbox = %address, %error, "state database");
                return Next::Retry(Duration::from_secs(5));
            }
        };
        // What the phone will show once the queue is through.
        let intended = match pending.last() {
            Some(last) => last.call.applied(),
            None => record.last_applied.clone(),
        };
        let observed = if pending.is_empty() {
            match target.observe(&mailbox.phone).await {
                Ok(None) => Observation::Unknown,
                Ok(Some(None)) => Observation::None,
                Ok(Some(Some(shown))) => Observation::Present(phone_diversion(&shown)),
                Err(error) => {
                    tracing::info!(mailbox = %address, %error, "cannot read the diversion back");
                    Observation::Unknown
                }
            }
        } else {
            Observation::Unknown
        };
        let intended_wit = intended.as_ref().map(phone_diversion);
        let action = match self
            .with_core(|core| core.reconcile(desired.as_ref(), intended_wit.as_ref(), &observed))
        {
            Ok(action) => action,
            Err(error) => return self.fail(address, error.to_string()),
        };
        let label = match &action {
            ReconcileAction::Set(_) => "set",
            ReconcileAction::Clear => "clear",
            ReconcileAction::HoldManual => "hold-manual",
            ReconcileAction::Adopt(_) => "adopt",
            ReconcileAction::Forget => "forget",
            ReconcileAction::InSync => "in-sync",
        };
        self.metrics
            .decisions
            .get_or_create(&ActionLabel { action: label })
            .inc();
        let call = match action {
            ReconcileAction::Set(want) => Some(DiversionCall::Set {
                reason: want.reason,
                until: want.until,
                until_local: decision
                    .diversion
                    .as_ref()
                    .map(|d| d.until_local.clone())
                    .unwrap_or_default(),
            }),
            ReconcileAction::Clear => Some(DiversionCall::Clear),
            ReconcileAction::Adopt(shown) => {
                let _ = store.update_user(address, &mut |r| {
                    r.last_applied = Some(Applied {
                        reason: shown.reason.clone(),
                        until: shown.until,
                    })
                });
                None
            }
            ReconcileAction::Forget => {
                let _ = store.update_user(address, &mut |r| r.last_applied = None);
                None
            }
            ReconcileAction::HoldManual => {
                tracing::info!(mailbox = %address, "a manual diversion is on the phone: holding");
                None
            }
            ReconcileAction::InSync => None,
        };
        let changed_at = lock(&mailbox.changed_at).take();
        if let Some(call) = call {
            let owner = address.to_string();
            match self
                .durably(move |store| store.enqueue(&owner, call, now))
                .await
            {
                Ok(entry) => {
                    lock(&mailbox.call_started).insert(entry.seq, changed_at.unwrap_or(started));
                    self.metrics.outbox_depth.inc();
                    mailbox.deliver.notify_one();
                }
                Err(error) => {
                    tracing::error!(mailbox = %address, %error, "cannot queue the diversion call");
                    return Next::Retry(Duration::from_secs(5));
                }
            }
        }
        let synced = store.note_user(address, &mut |r| {
            r.last_sync = Some(now);
            r.consecutive_failures = 0;
        });
        if let Err(error) = synced {
            tracing::warn!(mailbox = %address, %error, "cannot record the sync time");
        }
        self.metrics
            .step_seconds
            .observe(started.elapsed().as_secs_f64());
        Next::At(decision.next_change)
    }

    /// The mailbox task.
    async fn run_mailbox(self: Arc<Self>, mailbox: Arc<Mailbox>) {
        let mut stop = self.stop.subscribe();
        let mut boundary = false;
        loop {
            if *stop.borrow() {
                return;
            }
            // Boxed so the idle task stays small: the step's state exists only while it runs.
            let next = Box::pin(self.step(&mailbox, boundary)).await;
            boundary = false;
            let clock = &self.adapters.clock;
            let resync = clock.real(self.config.resync);
            let wait = match next {
                Next::At(Some(at)) => {
                    // Wake just after the boundary, so `now` has reached it.
                    let until_boundary = clock.real_delay_until(at) + Duration::from_millis(5);
                    boundary = until_boundary < resync;
                    until_boundary.min(resync)
                }
                Next::At(None) => resync,
                Next::Retry(after) => after,
                Next::Idle => Duration::from_secs(365 * 86_400),
            };
            tokio::select! {
                _ = mailbox.wake.notified() => {
                    boundary = false;
                    // Debounce: let a burst of notifications settle into one read.
                    tokio::time::sleep(clock.real(self.config.debounce)).await;
                }
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// The delivery task: the user's outbox, oldest first, one call at a time.
    async fn run_delivery(self: Arc<Self>, mailbox: Arc<Mailbox>) {
        let mut stop = self.stop.subscribe();
        let address = mailbox.user.address.as_str();
        let target = mailbox
            .user
            .telephony
            .as_ref()
            .and_then(|t| self.adapters.targets.get(t))
            .cloned();
        let mut attempt = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            let head = self
                .adapters
                .store
                .outbox(address)
                .map(|entries| entries.into_iter().next());
            let active = matches!(
                self.adapters.store.user(address),
                Ok(Some(ref r)) if r.status == Status::Active
            );
            let (Some(target), Ok(Some(entry)), true) = (&target, head, active) else {
                tokio::select! {
                    _ = mailbox.deliver.notified() => continue,
                    _ = stop.changed() => return,
                }
            };
            let result = Box::pin(target.apply(&mailbox.phone, &entry)).await;
            match result {
                Ok(()) => {
                    attempt = 0;
                    let confirmed = entry.clone();
                    if let Err(error) = self.durably(move |store| store.complete(&confirmed)).await
                    {
                        tracing::error!(mailbox = %address, %error, "cannot record a confirmed call; it will be sent again with the same key");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    self.metrics.outbox_depth.dec();
                    self.metrics
                        .diversion_calls
                        .get_or_create(&Outcome { outcome: "ok" })
                        .inc();
                    if let Some(started) = lock(&mailbox.call_started).remove(&entry.seq) {
                        self.metrics
                            .change_to_call_seconds
                            .observe(started.elapsed().as_secs_f64());
                    }
                    tracing::info!(mailbox = %address, key = %entry.idempotency_key(), call = match entry.call { DiversionCall::Set { .. } => "set", DiversionCall::Clear => "clear" }, "diversion call confirmed");
                }
                Err(TargetError::Unavailable { target, detail }) => {
                    self.metrics
                        .diversion_calls
                        .get_or_create(&Outcome {
                            outcome: "unavailable",
                        })
                        .inc();
                    let wait = self.delivery_backoff.wait(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(mailbox = %address, %target, %detail, attempt, wait_ms = wait.as_millis() as u64, "telephony target unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(refused @ TargetError::Rejected { .. }) => {
                    self.metrics
                        .diversion_calls
                        .get_or_create(&Outcome { outcome: "refused" })
                        .inc();
                    // The call stays queued; a restart of the user sends it again.
                    self.fail(address, refused.to_string());
                }
            }
        }
    }

    /// Route each change to its mailbox.
    async fn dispatch(self: Arc<Self>, mut changes: mpsc::UnboundedReceiver<Change>) {
        while let Some(change) = changes.recv().await {
            // The live connection's state, for the administrator's view.
            let address = change.address().to_string();
            let noted = match &change {
                Change::Calendar { watermark, .. } => {
                    self.metrics.notifications.inc();
                    match watermark {
                        Some(w) => self
                            .adapters
                            .store
                            .note_user(&address, &mut |r| r.watermark = Some(w.clone())),
                        None => Ok(()),
                    }
                }
                Change::Subscribed {
                    subscription_id, ..
                } => self.adapters.store.note_user(&address, &mut |r| {
                    r.subscription_id = Some(subscription_id.clone());
                    // A streaming subscription starts without a watermark.
                    r.watermark = None;
                }),
                Change::Unsubscribed(_) => self.adapters.store.note_user(&address, &mut |r| {
                    r.subscription_id = None;
                    r.watermark = None;
                }),
            };
            if let Err(error) = noted {
                tracing::warn!(mailbox = %address, %error, "cannot record the subscription state");
            }
            if let Some(mailbox) = self.mailboxes.get(&change.address().to_ascii_lowercase()) {
                lock(&mailbox.changed_at).get_or_insert_with(Instant::now);
                mailbox.wake.notify_one();
            }
        }
    }

    fn refresh_gauges(&self) {
        let mut counts: BTreeMap<&'static str, i64> = [
            ("active", 0),
            ("passive", 0),
            ("error", 0),
            ("not-in-use", 0),
        ]
        .into_iter()
        .collect();
        for address in self.mailboxes.keys() {
            let status = self
                .adapters
                .store
                .user(address)
                .ok()
                .flatten()
                .map(|r| r.status)
                .unwrap_or_default();
            *counts.entry(status.name()).or_default() += 1;
        }
        for (status, count) in counts {
            self.metrics
                .mailboxes
                .get_or_create(&StatusLabel { status })
                .set(count);
        }
        let subscriptions: usize = self
            .adapters
            .sources
            .values()
            .map(|s| s.subscriptions())
            .sum();
        self.metrics.subscriptions.set(subscriptions as i64);
        if let Ok(depth) = self.adapters.store.outbox_depth() {
            self.metrics.outbox_depth.set(depth as i64);
        }
    }
}

impl ServiceHandle {
    /// Start the service: one mailbox and one delivery task per user, a watcher per
    /// Exchange server, the admin listener.
    pub async fn start(
        config: ServiceConfig,
        core: DecisionCore,
        adapters: Adapters,
        delivery_backoff: Backoff,
    ) -> Result<Self, ServiceError> {
        let (stop, _) = watch::channel(false);
        let mut mailboxes = BTreeMap::new();
        for user in &config.users {
            mailboxes.insert(
                user.address.to_ascii_lowercase(),
                Arc::new(Mailbox {
                    phone: Phone {
                        address: user.address.clone(),
                        telephony_id: user.telephony_id.clone(),
                    },
                    user: user.clone(),
                    wake: Notify::new(),
                    deliver: Notify::new(),
                    changed_at: Mutex::new(None),
                    call_started: Mutex::new(BTreeMap::new()),
                    cached: Mutex::new(None),
                    server_failures: AtomicU32::new(0),
                }),
            );
        }
        let admin_listen = config.admin_listen;
        let inner = Arc::new(Inner {
            config,
            core,
            idle_cores: Mutex::new(Vec::new()),
            adapters,
            metrics: Metrics::default(),
            mailboxes,
            stop,
            delivery_backoff,
        });
        // Calls queued for users no longer configured are kept, not sent: say so.
        let orphans: Vec<String> = inner
            .adapters
            .store
            .pending_users()?
            .into_iter()
            .filter(|a| !inner.mailboxes.contains_key(a))
            .collect();
        if !orphans.is_empty() {
            tracing::warn!(users = ?orphans, "diversion calls are queued for users no longer in the configuration; add them back to deliver them");
        }
        let mut tasks = tokio::task::JoinSet::new();
        let admin_addr = match admin_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServiceError::Admin { addr, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| ServiceError::Admin { addr, source })?;
                tasks.spawn(admin::serve(inner.clone(), listener));
                Some(local)
            }
            None => None,
        };
        let (changes, receiver) = mpsc::unbounded_channel();
        tasks.spawn(inner.clone().dispatch(receiver));
        let mut by_server: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for mailbox in inner.mailboxes.values() {
            if mailbox.user.enabled
                && let Some(server) = &mailbox.user.exchange
            {
                by_server
                    .entry(server.clone())
                    .or_default()
                    .push(mailbox.user.address.clone());
            }
            tasks.spawn(inner.clone().run_mailbox(mailbox.clone()));
            tasks.spawn(inner.clone().run_delivery(mailbox.clone()));
        }
        for (server, addresses) in by_server {
            if let Some(source) = inner.adapters.sources.get(&server).cloned() {
                let changes = changes.clone();
                let stop = inner.stop.subscribe();
                tasks.spawn(async move { source.watch(addresses, changes, stop).await });
            }
        }
        // The dispatcher ends when every watcher has dropped its sender.
        drop(changes);
        Ok(ServiceHandle {
            inner,
            tasks,
            admin_addr,
        })
    }

    /// The metrics as `/metrics` shows them.
    pub fn metrics(&self) -> String {
        self.inner.refresh_gauges();
        self.inner.metrics.render()
    }

    /// A user's status, as the store has it.
    pub fn status(&self, address: &str) -> Option<Status> {
        self.inner
            .adapters
            .store
            .user(address)
            .ok()
            .flatten()
            .map(|r| r.status)
    }

    /// Everything the store holds about a user.
    pub fn user(&self, address: &str) -> Option<crate::store::UserRecord> {
        self.inner.adapters.store.user(address).ok().flatten()
    }

    /// An administrator's action on a user (restart, activate, passivate).
    pub fn administer(&self, address: &str, event: StatusEvent) -> Result<Status, String> {
        admin::administer(&self.inner, address, event)
    }

    /// Wake every mailbox now (a manual resync).
    pub fn resync_all(&self) {
        for mailbox in self.inner.mailboxes.values() {
            mailbox.wake.notify_one();
        }
    }

    /// Stop: end the watchers and tasks, wait up to `grace` for calls in flight.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.inner.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        left = self.tasks.len(),
                        "shutdown grace over; abandoning tasks"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

/// Names for a wit status, for messages.
pub fn status_text(status: &Status) -> String {
    match status {
        Status::Error(reason) => format!("error ({reason})"),
        other => other.name().to_string(),
    }
}

/// Start logging: human-readable lines, or JSON when `CALVERT_LOG=json`; the level
/// from `RUST_LOG` (default `info`). Logs name mailboxes, never a subject, location
/// or body.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("CALVERT_LOG").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// `calvert serve`: load and check the configuration, open the store, run until
/// Ctrl-C or SIGTERM, then shut down gracefully (calls in flight finish, up to 10 s).
pub fn serve(
    path: &std::path::Path,
    check_only: bool,
    core: DecisionCore,
) -> Result<std::process::ExitCode, String> {
    let config = crate::config::ServiceConfig::load(path, &mut core.instance())
        .map_err(|e| e.to_string())?;
    if check_only {
        println!(
            "{}: configuration OK: {} Exchange server(s), {} telephony target(s), {} user(s), {} trigger word(s)",
            path.display(),
            config.exchange.len(),
            config.telephony.len(),
            config.users.len(),
            config.triggers.len()
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    init_logging();
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let store = crate::store::SledStore::open(&config.state_dir, config.cache_bytes)
            .map_err(|e| e.to_string())?;
        let adapters =
            Adapters::from_config(&config, Arc::new(store)).map_err(|e| e.to_string())?;
        let users = config.users.len();
        let service = ServiceHandle::start(config, core, adapters, Backoff::default())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(users, admin = ?service.admin_addr, "calvert is serving");
        shutdown_signal().await;
        tracing::info!("shutting down: finishing calls in flight");
        service.shutdown(Duration::from_secs(10)).await;
        tracing::info!("stopped");
        Ok(std::process::ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
