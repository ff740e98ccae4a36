//! `calvert serve`: phones follow calendars, live, through restarts and outages.
//!
//! Each configured user gets two small tasks:
//!
//! - the **mailbox task** ([`mailbox`]) runs the core's loop: read the calendar
//!   window → `decide` → `reconcile` with what was last set (and what the phone shows,
//!   when the target can tell) → put the resulting call in the outbox → sleep until the
//!   decision's `next_change`, the next notification (debounced), or the periodic
//!   resync. The host's own decisions in that loop are pure functions in [`plan`];
//! - the **delivery task** ([`delivery`]) sends the user's outbox to the telephony
//!   target, oldest first, one at a time, retrying with back-off and jitter while the
//!   target is unavailable, and records each confirmed call.
//!
//! Calendar sources ([`source`]) watch their mailboxes and report changes; the
//! dispatcher ([`dispatch`]) wakes the mailbox concerned. The core runs as the
//! WebAssembly component; the host owns time ([`Clock`]), I/O, storage and retries.
//! [`state`] holds what the tasks share, [`adapters`] makes the adapters from
//! `calvert.toml`, [`serve`] is the command, [`admin`] the admin port.
//!
//! Shutdown ([`shutdown`]): [`ServiceHandle::shutdown`] (Ctrl-C or SIGTERM in
//! `calvert serve`) stops the watchers and wakes every task; a task finishes the call
//! it is making (bounded by the target's timeout) and ends. Everything a task decided
//! is already durable in the store, so a restart continues where the service stopped;
//! a call cut off mid-flight is sent again with the same idempotency key.

pub mod adapters;
pub mod admin;
pub mod clock;
pub mod config_start;
mod delivery;
mod dispatch;
mod gauges;
mod import;
mod mailbox;
pub mod metrics;
pub mod plan;
mod reconfigure;
mod roster;
pub mod serve;
pub mod shutdown;
pub mod source;
mod state;
mod supervise;
mod watchers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

pub use crate::backoff::Backoff;
use crate::component::wit::StatusEvent;
use crate::component::{CoreError, DecisionCore};
use crate::config::ServiceConfig;
use crate::store::{Status, StoreError};
pub use adapters::Adapters;
pub use admin::AdminError;
pub use clock::{Clock, ScaledClock, SystemClock};
use metrics::Metrics;
pub use serve::{init_logging, serve};
use shutdown::ShutdownSwitch;
pub use source::{CalendarSource, Change, EwsSource, SourceError};
use state::Service;

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
    #[error(transparent)]
    Config(#[from] config_start::ConfigStartError),
    #[error("cannot make the first administrator account: {0}")]
    Accounts(String),
    #[error(
        "cannot listen on {addr} for /health and /metrics: {source}; choose another service.admin_listen"
    )]
    Admin {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A running service.
pub struct ServiceHandle {
    service: Arc<Service>,
    tasks: tokio::task::JoinSet<()>,
    /// The admin listener's address, when it listens.
    pub admin_addr: Option<std::net::SocketAddr>,
    /// The first start of an empty store made the account `admin` with this
    /// (name, password): show it once to whoever started the service.
    pub first_login: Option<(String, String)>,
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
        let config = config_start::configuration_in_force(
            config,
            adapters.store.as_ref(),
            &mut core.instance(),
        )?;
        let mailboxes = roster::Roster::new(&config.users);
        let admin_listen = config.admin_listen;
        let (changes, receiver) = mpsc::unbounded_channel();
        let service = Arc::new(Service {
            live_config: std::sync::RwLock::new(Arc::new(config)),
            core,
            idle_cores: Mutex::new(Vec::new()),
            adapters,
            metrics: Metrics::default(),
            mailboxes,
            mailbox_tasks: Mutex::new(tokio::task::JoinSet::new()),
            shutdown: ShutdownSwitch::default(),
            delivery_backoff,
            admin: admin::AdminState::default(),
            changes,
            watchers: tokio::sync::Mutex::new(watchers::Watchers::default()),
            reconfiguring: tokio::sync::Mutex::new(()),
        });
        warn_of_orphans(&service)?;
        let first_login = admin::accounts::ensure_first_account(
            service.adapters.store.as_ref(),
            clock::wall_clock(),
        )
        .map_err(|e| ServiceError::Accounts(e.to_string()))?;
        let mut tasks = tokio::task::JoinSet::new();
        let admin_addr = match admin_listen {
            Some(addr) => Some(listen_admin(&service, addr, &mut tasks).await?),
            None => None,
        };
        spawn_tasks(&service, &mut tasks, receiver).await;
        Ok(ServiceHandle {
            service,
            tasks,
            admin_addr,
            first_login,
        })
    }

    /// The metrics as `/metrics` shows them.
    pub fn metrics(&self) -> String {
        self.service.refresh_gauges();
        self.service.metrics.render()
    }

    /// A user's status, as the store has it.
    pub fn status(&self, address: &str) -> Option<Status> {
        self.user(address).map(|r| r.status)
    }

    /// Everything the store holds about a user.
    pub fn user(&self, address: &str) -> Option<crate::store::UserRecord> {
        self.service.adapters.store.user(address).ok().flatten()
    }

    /// The newest `limit` entries of the audit log.
    pub fn audit_log(&self, limit: usize) -> Vec<crate::store::AuditEntry> {
        self.service
            .adapters
            .store
            .audit_log(limit)
            .unwrap_or_default()
    }

    /// An administrator's action on a user (restart, activate, passivate).
    pub fn administer(&self, address: &str, event: StatusEvent) -> Result<Status, AdminError> {
        admin::administer(&self.service, address, event)
    }

    /// Stop: end the watchers and tasks, wait up to `grace` for calls in flight.
    pub async fn shutdown(mut self, grace: Duration) {
        self.service.shutdown.turn();
        self.service.stop_watchers().await;
        let deadline = tokio::time::Instant::now() + grace;
        // No mailbox starts after the switch turned (an import checks it under the lock).
        let mut mailbox_tasks =
            std::mem::take(&mut *crate::lock::lock(&self.service.mailbox_tasks));
        wait_for(&mut mailbox_tasks, deadline).await;
        wait_for(&mut self.tasks, deadline).await;
    }
}

/// Wait for `tasks` to end until `deadline`, then abort what is left.
async fn wait_for(tasks: &mut tokio::task::JoinSet<()>, deadline: tokio::time::Instant) {
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(left = tasks.len(), "shutdown grace over; abandoning tasks");
                tasks.abort_all();
                break;
            }
        }
    }
}

/// Calls queued for users no longer configured are kept, not sent: say so.
fn warn_of_orphans(service: &Service) -> Result<(), ServiceError> {
    let orphans: Vec<String> = service
        .adapters
        .store
        .pending_users()?
        .into_iter()
        .filter(|a| !service.mailboxes.contains(a))
        .collect();
    if !orphans.is_empty() {
        tracing::warn!(users = ?orphans, "diversion calls are queued for users no longer in the configuration; add them back to deliver them");
    }
    Ok(())
}

async fn listen_admin(
    service: &Arc<Service>,
    addr: std::net::SocketAddr,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<std::net::SocketAddr, ServiceError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Admin { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServiceError::Admin { addr, source })?;
    tasks.spawn(admin::serve(service.clone(), listener));
    Ok(local)
}

/// The dispatcher, a mailbox and a delivery task per user, a watcher per server.
async fn spawn_tasks(
    service: &Arc<Service>,
    tasks: &mut tokio::task::JoinSet<()>,
    changes: mpsc::UnboundedReceiver<source::Change>,
) {
    tasks.spawn(service.clone().dispatch(changes));
    for mailbox in service.mailboxes.all() {
        service.start_mailbox(&mailbox);
    }
    service.restart_watchers().await;
}

/// A status as messages show it.
pub fn status_text(status: &Status) -> String {
    match status {
        Status::Error(reason) => format!("error ({reason})"),
        other => other.name().to_string(),
    }
}
