//! The mailbox task: one per user, the core's loop as read → core → plan → commit.
//! The decisions between the I/O are [`super::plan`]'s pure functions; this file
//! only does the I/O around them, in the order ARCHITECTURE.md numbers them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Backoff;
use super::metrics::{ActionLabel, Outcome};
use super::plan::{self, Admission, Next, Plan, ReadFailure};
use super::source::{CalendarSource, SourceError};
use super::state::{Mailbox, Service};
use crate::component::wit::{self, Observation, StatusEvent};
use crate::diversion::DiversionTarget;
use crate::lock::lock;
use crate::store::{Status, StoreError, UserRecord};

/// How long (service-clock seconds) a calendar read may be re-used at boundaries;
/// far inside the window read (at least a day ahead).
const CACHE_LIFETIME: i64 = 3600;

/// How long an idle user sleeps when nothing wakes it (an administrator's action does).
const IDLE: Duration = Duration::from_secs(365 * 86_400);

/// Where a store read or write failed, retry after this long.
const STORE_RETRY: Duration = Duration::from_secs(5);

impl Service {
    /// The mailbox task: step, then sleep until the step's next wake, a notification
    /// (debounced) or the shutdown.
    pub(super) async fn run_mailbox(self: Arc<Self>, mailbox: Arc<Mailbox>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut boundary = false;
        while !shutdown.is_shutdown() {
            // Boxed so the idle task stays small: the step's state exists only while it runs.
            let next = Box::pin(self.step(&mailbox, boundary)).await;
            let wait;
            (wait, boundary) = self.wait_for(next);
            tokio::select! {
                _ = mailbox.wake.notified() => {
                    boundary = false;
                    // Debounce: let a burst of notifications settle into one read.
                    tokio::time::sleep(self.adapters.clock.real(self.config().debounce)).await;
                }
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.recv() => return,
            }
        }
    }

    /// The real time to sleep for `next`, and whether waking is a boundary.
    fn wait_for(&self, next: Next) -> (Duration, bool) {
        let clock = &self.adapters.clock;
        let resync = clock.real(self.config().resync);
        match next {
            Next::At(at) => plan::boundary_wake(at.map(|at| clock.real_delay_until(at)), resync),
            Next::Retry(after) => (after, false),
            Next::Backoff { attempt, at_least } => {
                let wait = Backoff::default().wait(attempt);
                (at_least.map_or(wait, |least| least.max(wait)), false)
            }
            Next::Fail(_) | Next::Idle => (IDLE, false),
        }
    }

    /// One turn of the core's loop for one mailbox. `reuse`: decide on the cached
    /// calendar when it covers `now` (a boundary passed, nothing changed).
    async fn step(&self, mailbox: &Mailbox, reuse: bool) -> Next {
        let address = mailbox.address.as_str();
        let next = self.turn(mailbox, reuse).await;
        if let Next::Fail(reason) = &next {
            self.fail(address, reason.clone());
        }
        next
    }

    async fn turn(&self, mailbox: &Mailbox, reuse: bool) -> Next {
        let address = mailbox.address.as_str();
        let store = &self.adapters.store;
        // 1. admission
        let record = match store.user(address) {
            Ok(record) => record.unwrap_or_default(),
            Err(error) => return store_failed(address, error),
        };
        if let Some(next) = self.admit(mailbox, &record) {
            return next;
        }
        let (source, target) = match self.route(mailbox) {
            Ok(route) => route,
            Err(next) => return next,
        };
        // 2. read
        let started = Instant::now();
        let now = self.adapters.clock.now();
        let items = match self.read(mailbox, source.as_ref(), now, reuse).await {
            Ok(items) => items,
            Err(next) => return next,
        };
        // 3. decide
        let user = mailbox.user();
        let decided = self.with_core(|core| {
            let policy = &self.config().policy;
            core.decide(&items, policy, &self.config().triggers, &user.zone, now)
        });
        let decision = match decided {
            Ok(decision) => decision,
            Err(error) => return Next::Fail(error.to_string()),
        };
        // 4. expect from one snapshot, and read the phone back when nothing is queued
        let before = match store.snapshot(address) {
            Ok(snapshot) => snapshot,
            Err(error) => return store_failed(address, error),
        };
        let (observed, after) = if plan::expect(&before).read_phone {
            let observed = self.observe(mailbox, target.as_ref()).await;
            match store.snapshot(address) {
                Ok(after) => (observed, after),
                Err(error) => return store_failed(address, error),
            }
        } else {
            (Observation::Unknown, before.clone())
        };
        let compared = plan::compare(&before, observed, &after);
        // 5. reconcile
        let desired = plan::desired(&decision);
        let intended = compared.intended.as_ref().map(plan::phone_diversion);
        let reconciled = self.with_core(|core| {
            core.reconcile(desired.as_ref(), intended.as_ref(), &compared.observed)
        });
        let action = match reconciled {
            Ok(action) => action,
            Err(error) => return Next::Fail(error.to_string()),
        };
        // 6. plan, 7. commit
        self.commit(mailbox, plan::plan(action, &decision), now, started)
            .await
    }

    /// Step 1: `None` when the step may go on, else the wake that stops it here.
    fn admit(&self, mailbox: &Mailbox, record: &UserRecord) -> Option<Next> {
        let user = mailbox.user();
        let address = user.address.as_str();
        match plan::admission(user.enabled, &record.status) {
            Admission::Run => None,
            Admission::Idle => Some(Next::Idle),
            Admission::Passivate => {
                let _ = self.status_event(address, StatusEvent::Passivate);
                Some(Next::Idle)
            }
            Admission::Activate => {
                let event = StatusEvent::Activate(user.integration_id.clone());
                match self.status_event(address, event) {
                    Ok(Status::Active) => None,
                    Ok(_) => Some(Next::Idle),
                    Err(error) => Some(Next::Fail(error.to_string())),
                }
            }
        }
    }

    /// The calendar source and the diversion target the rules chose for this user.
    #[allow(clippy::type_complexity)]
    fn route(
        &self,
        mailbox: &Mailbox,
    ) -> Result<(Arc<dyn CalendarSource>, Arc<dyn DiversionTarget>), Next> {
        let user = mailbox.user();
        let Some(server) = &user.exchange else {
            return Err(Next::Fail(
                "no route: no [[rule]] matches this address; add one and restart the user".into(),
            ));
        };
        let source = self.adapters.sources.get(server);
        let target = user
            .telephony
            .as_ref()
            .and_then(|t| self.adapters.targets.get(t));
        match (source, target) {
            (Some(source), Some(target)) => Ok((source, target)),
            _ => Err(Next::Fail(
                "no telephony route: no [[telephony_rule]] matches this address; add one and restart the user".into(),
            )),
        }
    }

    /// Step 2: the calendar window — the cached read at a boundary when it is recent
    /// (the resync reads afresh every `resync` anyway), else from the source.
    async fn read(
        &self,
        mailbox: &Mailbox,
        source: &dyn CalendarSource,
        now: i64,
        reuse: bool,
    ) -> Result<Vec<wit::CalendarItem>, Next> {
        let address = mailbox.address.as_str();
        if reuse
            && let Some((_, items)) = lock(&mailbox.cached)
                .as_ref()
                .filter(|(read_at, _)| (0..CACHE_LIFETIME).contains(&(now - read_at)))
        {
            mailbox.server_failures.store(0, Ordering::Relaxed);
            return Ok(items.clone());
        }
        *lock(&mailbox.cached) = None;
        let window = self.config().window.as_secs() as i64;
        match source.calendar(address, now - 86_400, now + window).await {
            Ok(items) => {
                self.count_read("ok");
                *lock(&mailbox.cached) = Some((now, items.clone()));
                mailbox.server_failures.store(0, Ordering::Relaxed);
                Ok(items)
            }
            Err(error) => Err(self.read_failed(mailbox, error)),
        }
    }

    /// A failed read: count it, log it, and let the plan choose the wake.
    fn read_failed(&self, mailbox: &Mailbox, error: SourceError) -> Next {
        let address = mailbox.address.as_str();
        let failure = match error {
            SourceError::Mailbox(reason) => {
                self.count_read("refused");
                ReadFailure::Mailbox(reason.to_string())
            }
            SourceError::Server(message) => {
                self.count_read("server-failed");
                let failures = mailbox.server_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(mailbox = %address, failures, reason = %message, "the Exchange server refuses Calvert; retrying");
                ReadFailure::Server { failures }
            }
            SourceError::Transient { cause, retry_after } => {
                let message = cause.to_string();
                self.count_read("failed");
                let failures = self
                    .adapters
                    .store
                    .update_user(address, &mut |r| {
                        r.consecutive_failures = r.consecutive_failures.saturating_add(1)
                    })
                    .map(|r| r.consecutive_failures)
                    .unwrap_or(u32::MAX);
                if failures < self.config().failures_before_error {
                    tracing::info!(mailbox = %address, failures, reason = %message, "calendar read failed; retrying");
                }
                ReadFailure::Transient {
                    message,
                    failures,
                    retry_after,
                }
            }
        };
        plan::after_read_failure(failure, self.config().failures_before_error)
    }

    fn count_read(&self, outcome: &'static str) {
        self.metrics
            .calendar_reads
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// Step 4: what the phone shows, when the target can tell.
    async fn observe(&self, mailbox: &Mailbox, target: &dyn DiversionTarget) -> Observation {
        let read = target.observe(&mailbox.phone()).await;
        if let Err(error) = &read {
            tracing::info!(mailbox = %mailbox.address, %error, "cannot read the diversion back");
        }
        plan::observation(&read)
    }

    /// Step 7: queue the call durably and wake delivery, edit the record, note the sync.
    async fn commit(&self, mailbox: &Mailbox, plan: Plan, now: i64, started: Instant) -> Next {
        let address = mailbox.address.as_str();
        let store = &self.adapters.store;
        self.metrics
            .decisions
            .get_or_create(&ActionLabel {
                action: plan.action,
            })
            .inc();
        if let Some(last_applied) = plan.last_applied {
            let _ = store.update_user(address, &mut |r| r.last_applied = last_applied.clone());
        }
        if plan.holds_manual {
            tracing::info!(mailbox = %address, "a manual diversion is on the phone: holding");
        }
        let changed_at = lock(&mailbox.changed_at).take();
        if let Some(call) = plan.call {
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
                    return Next::Retry(STORE_RETRY);
                }
            }
        }
        self.note_sync(address, now);
        self.metrics
            .step_seconds
            .observe(started.elapsed().as_secs_f64());
        plan.next
    }

    /// Bookkeeping: the read succeeded now (unflushed; the next durable change carries it).
    fn note_sync(&self, address: &str, now: i64) {
        let synced = self.adapters.store.note_user(address, &mut |r| {
            r.last_sync = Some(now);
            r.consecutive_failures = 0;
        });
        if let Err(error) = synced {
            tracing::warn!(mailbox = %address, %error, "cannot record the sync time");
        }
    }
}

/// A store read failed: damaged data puts the user in Error (retrying cannot help;
/// the other users go on), anything else is retried.
fn store_failed(address: &str, error: StoreError) -> Next {
    if error.is_damage() {
        return Next::Fail(error.to_string());
    }
    tracing::error!(mailbox = %address, %error, "state database");
    Next::Retry(STORE_RETRY)
}
