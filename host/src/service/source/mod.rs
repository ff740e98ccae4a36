//! Calendar sources: where calendars are read and changes come from, behind traits
//! so another calendar system (Microsoft Graph, the two-way sync's Exchange side)
//! is a new file, not a branch in the mailbox loop.
//!
//! - [`CalendarSource`]: read a mailbox's calendar window, and watch mailboxes for
//!   changes. The service reads through it and wakes mailboxes on its [`Change`]s.
//! - [`CalendarWriter`]: create, update and delete calendar items, with typed
//!   results ([`ItemVersion`], [`WriteError`]).
//!
//! Failures come in the three classes the service treats apart ([`SourceError`]),
//! each keeping the error underneath ([`Cause`]).
//!
//! [`EwsSource`] is the Exchange Web Services implementation (`ews.rs`), which
//! follows mailboxes by streaming subscriptions (`streaming.rs`) or push
//! notifications (`push.rs`), both subscribing and keeping their subscriptions
//! the same way (`subscriptions.rs`). A new backend is a new file here that
//! implements the traits.

mod ews;
mod push;
mod streaming;
mod subscriptions;

use std::time::Duration;

use async_trait::async_trait;

pub(crate) use crate::lock::lock;
use tokio::sync::mpsc;

use crate::service::shutdown::Shutdown;

use crate::component::wit::CalendarItem;
use crate::ews::client::ClientError;
use crate::ews::discovery::DiscoveryError;
pub use ews::{EwsSource, GROUP_SIZE};

/// Something happened to a mailbox's calendar or its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A notification: the calendar changed; `watermark` is the newest event's (an
    /// opaque position in the source's change feed, recorded for the mailbox).
    Calendar {
        address: String,
        watermark: Option<String>,
    },
    /// A new subscription: events before it may have been missed, so read again.
    Subscribed {
        address: String,
        subscription_id: String,
    },
    /// No subscription (subscribing failed): read again, and again at each resync.
    Unsubscribed(String),
}

impl Change {
    /// The mailbox it concerns.
    pub fn address(&self) -> &str {
        match self {
            Change::Calendar { address, .. }
            | Change::Subscribed { address, .. }
            | Change::Unsubscribed(address) => address,
        }
    }
}

/// Why a source could not read or write, in the three classes the service treats
/// apart; the message is the underlying error's, with where it happened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// This mailbox cannot be read until an administrator acts: the user goes to Error.
    #[error("{0}")]
    Mailbox(#[source] Box<Cause>),
    /// The server refuses Calvert itself (sign-in, TLS, URL): retried with back-off,
    /// and no user is put in Error for it — fixing the server's settings heals all.
    #[error("{0}")]
    Server(#[source] Box<Cause>),
    /// Try again later, not before `retry_after` when the server asked for a wait.
    #[error("{cause}")]
    Transient {
        #[source]
        cause: Box<Cause>,
        retry_after: Option<Duration>,
    },
}

impl SourceError {
    /// The mailbox is refused for `cause`.
    pub fn mailbox(cause: Cause) -> Self {
        SourceError::Mailbox(Box::new(cause))
    }

    /// The server refuses Calvert for `cause`.
    pub fn server(cause: Cause) -> Self {
        SourceError::Server(Box::new(cause))
    }

    /// Try again later (not before `retry_after`) after `cause`.
    pub fn transient(cause: Cause, retry_after: Option<Duration>) -> Self {
        SourceError::Transient {
            cause: Box::new(cause),
            retry_after,
        }
    }

    /// What failed underneath.
    pub fn cause(&self) -> &Cause {
        match self {
            SourceError::Mailbox(cause)
            | SourceError::Server(cause)
            | SourceError::Transient { cause, .. } => cause,
        }
    }

    /// The EWS client's error, when an EWS call (or building the client) failed.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self.cause() {
            Cause::Call(error) | Cause::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What failed underneath a [`SourceError`], and where. A new backend adds its own
/// variant holding its client's error.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// An EWS call for the mailbox failed.
    #[error("{0}")]
    Call(#[source] ClientError),
    /// The server as a whole: its client cannot be built from the settings, or it
    /// refuses Calvert's sign-in, TLS or URL.
    #[error("server {server}: {error}")]
    Server {
        server: String,
        #[source]
        error: ClientError,
    },
    /// Autodiscover found no EWS URL for the mailbox.
    #[error("Autodiscover for {mailbox}: {error}")]
    Autodiscover {
        mailbox: String,
        #[source]
        error: DiscoveryError,
    },
    /// Autodiscover cannot start for the server.
    #[error("server {server}: {error}")]
    Discoverer {
        server: String,
        #[source]
        error: DiscoveryError,
    },
    /// The server is set up for Autodiscover with a sign-in Autodiscover cannot use.
    #[error("server {server}: Autodiscover needs Basic sign-in here; give the EWS url")]
    AutodiscoverNeedsBasic { server: String },
}

/// Reads mailboxes' calendars and reports their changes, for the service.
///
/// A backend (one per configured server) must:
///
/// - [`calendar`](CalendarSource::calendar): return every concrete item (recurrences
///   expanded into occurrences) overlapping the window, with the fields the core
///   reads, or a [`SourceError`] in the right class: [`SourceError::Mailbox`] only
///   when an administrator must act for this mailbox, [`SourceError::Server`] when
///   the server refuses Calvert as a whole, [`SourceError::Transient`] otherwise;
/// - [`watch`](CalendarSource::watch): until `stop` turns true (or nobody receives
///   `changes` any more), follow every address: send [`Change::Subscribed`] when it
///   starts following one, and again after any gap in which changes may have been
///   missed, or [`Change::Unsubscribed`] when it cannot (the service then reads the
///   calendar at every resync); send [`Change::Calendar`] for each change, with the
///   backend's watermark. It retries by itself, with [`crate::backoff::Backoff`];
/// - [`subscriptions`](CalendarSource::subscriptions): count what it follows live.
#[async_trait]
pub trait CalendarSource: Send + Sync {
    /// Every item of `address`'s calendar overlapping [start, end).
    async fn calendar(
        &self,
        address: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError>;

    /// Report changes to `addresses` on `changes` until `stop` turns true.
    async fn watch(
        &self,
        addresses: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        stop: Shutdown,
    );

    /// Live subscriptions, for /metrics.
    fn subscriptions(&self) -> usize;

    /// The connection `address` is watched on (streaming connection, push), for the
    /// administration's Active connections; None when the backend does not say.
    fn connection_group(&self, _address: &str) -> Option<String> {
        None
    }

    /// Connections the source's own listener (push) refused at its limit, for /metrics.
    fn refused_connections(&self) -> u64 {
        0
    }
}

/// A calendar item as its source holds it now: its id, and the version a write
/// must match (EWS: the change key; Graph: the ETag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemVersion {
    pub id: String,
    pub change_key: String,
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The item changed since its version was read: read it again and re-apply.
    #[error("the calendar item changed meanwhile ({0}): read it again and re-apply the change")]
    Changed(#[source] Cause),
    /// The item no longer exists: treat it as deleted.
    #[error("the calendar item no longer exists ({0})")]
    Gone(#[source] Cause),
    /// Anything else, in the classes reads use.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Writes calendar items of mailboxes (the two-way sync's side of a source).
///
/// A backend must never write twice for one call: a create whose reply was lost
/// is not repeated; an update or delete names the version it expects, so a repeat
/// meets a newer version ([`WriteError::Changed`]) or no item ([`WriteError::Gone`]).
#[async_trait]
pub trait CalendarWriter: Send + Sync {
    /// Create `item` in `address`'s calendar (nobody invited); where it now is.
    async fn create(&self, address: &str, item: &CalendarItem) -> Result<ItemVersion, WriteError>;

    /// Write `item` over the item at `version`, if it is still at that version; its
    /// new version.
    async fn update(
        &self,
        address: &str,
        version: &ItemVersion,
        item: &CalendarItem,
    ) -> Result<ItemVersion, WriteError>;

    /// Delete the item at `version` (to Deleted Items, cancelling nothing).
    async fn delete(&self, address: &str, version: &ItemVersion) -> Result<(), WriteError>;
}
