//! The simulator's state: mailboxes and their calendar items, service accounts and
//! OAuth apps, subscriptions and their events, the change log SyncFolderItems reads,
//! NTLM connections, queued faults and what the tests may ask about afterwards.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::Fault;

/// A calendar item as the simulator stores it (EWS's own words for the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimItem {
    pub id: String,
    pub change_key: String,
    pub subject: String,
    pub location: String,
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    /// Free, Tentative, Busy, OOF, WorkingElsewhere, NoData.
    pub free_busy: String,
    /// Unknown, Organizer, Tentative, Accept, Decline, NoResponseReceived.
    pub my_response: String,
    pub is_meeting: bool,
    /// Single, Occurrence, Exception (RecurringMaster never appears in a CalendarView).
    pub item_type: String,
    pub sensitivity: String,
}

impl SimItem {
    /// A busy appointment the mailbox owner organizes.
    pub fn appointment(id: &str, subject: &str, start: i64, end: i64) -> Self {
        SimItem {
            id: id.into(),
            change_key: format!("CK-{id}-1"),
            subject: subject.into(),
            location: String::new(),
            start,
            end,
            all_day: false,
            free_busy: "Busy".into(),
            my_response: "Organizer".into(),
            is_meeting: false,
            item_type: "Single".into(),
            sensitivity: "Normal".into(),
        }
    }
}

/// One mailbox's calendar.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    pub(crate) items: BTreeMap<String, SimItem>,
}

/// A service account that signs in with Basic or NTLM.
#[derive(Debug, Default)]
pub(crate) struct Account {
    pub(crate) password: String,
    /// Mailboxes it may impersonate; `None` is every mailbox.
    pub(crate) may_impersonate: Option<BTreeSet<String>>,
}

/// A subscription (pull, streaming or push): the events of one mailbox's calendar
/// after its creation.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) mailbox: String,
    /// (watermark number, event name, item id), oldest first.
    pub(crate) events: Vec<(u64, &'static str, String)>,
    pub(crate) expired: bool,
}

/// How long a GetStreamingEvents connection stays open (Exchange: ConnectionTimeout
/// minutes; the tests want it short), how often it looks for new events, and how
/// long it may stay silent before it sends a keep-alive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamTiming {
    pub(crate) lifetime: Duration,
    pub(crate) tick: Duration,
    pub(crate) heartbeat: Duration,
}

/// The keep-alive interval of an idle streaming connection. Exchange sends a
/// GetStreamingEventsResponseMessage with ConnectionStatus OK and no Notifications
/// while nothing happens; the EWS Managed API expects one at least every 45 s (its
/// heartbeat) and gives up after twice that (brief §3.3).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(45);

impl Default for StreamTiming {
    fn default() -> Self {
        StreamTiming {
            lifetime: Duration::from_secs(60),
            tick: Duration::from_millis(50),
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// Where a TCP connection's NTLM sign-in stands.
#[derive(Debug, Clone)]
pub(crate) enum NtlmConnection {
    /// A Challenge was sent on it; the Authenticate must come on it too.
    Challenged([u8; 8]),
    /// Signed in as this account (the connection stays signed in).
    SignedIn(String),
}

/// The sign-in schemes the server offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offered {
    pub(crate) basic: bool,
    pub(crate) ntlm: bool,
}

impl Default for Offered {
    fn default() -> Self {
        Offered {
            basic: true,
            ntlm: true,
        }
    }
}

/// An app registered for OAuth client credentials.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) secret: String,
    pub(crate) may_impersonate: Option<BTreeSet<String>>,
    pub(crate) token_lifetime: Duration,
}

/// Everything the simulator holds, behind [`Exchange`](crate::Exchange)'s mutex.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    /// Autodiscover: addresses answered with RedirectAddress to another address.
    pub(crate) redirects: BTreeMap<String, String>,
    pub(crate) autodiscover_requests: usize,
    pub(crate) apps: BTreeMap<String, App>,
    /// Issued access tokens: token → (app, expiry).
    pub(crate) tokens: BTreeMap<String, (String, tokio::time::Instant)>,
    pub(crate) tokens_issued: usize,
    pub(crate) stream_timing: StreamTiming,
    pub(crate) offered: Offered,
    pub(crate) ntlm_connections: BTreeMap<SocketAddr, NtlmConnection>,
    /// Negotiate messages received (one per handshake).
    pub(crate) ntlm_handshakes: usize,
    /// Why NTLM sign-ins were refused.
    pub(crate) ntlm_refusals: Vec<String>,
    /// Every change to every mailbox, for SyncFolderItems: (number, mailbox, item, kind).
    pub(crate) changes: Vec<(u64, String, String, &'static str)>,
    pub(crate) mailboxes: BTreeMap<String, Mailbox>,
    pub(crate) accounts: BTreeMap<String, Account>,
    pub(crate) subscriptions: BTreeMap<String, Subscription>,
    pub(crate) next_watermark: u64,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) requests: Vec<String>,
    /// Per request: (operation, the X-BackEndOverrideCookie it carried).
    pub(crate) affinity: Vec<(String, Option<String>)>,
}

impl Directory {
    /// A new subscription to `mailbox`'s calendar: its id and starting watermark.
    pub(crate) fn subscribe(&mut self, mailbox: &str) -> (String, u64) {
        let id = format!("sub-{}-{}", mailbox, self.subscriptions.len() + 1);
        self.next_watermark += 1;
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                mailbox: mailbox.to_string(),
                events: Vec::new(),
                expired: false,
            },
        );
        (id, self.next_watermark)
    }

    /// Record a change to an item of `mailbox` (for SyncFolderItems) and give each of
    /// the mailbox's subscriptions its event.
    pub(crate) fn notify(&mut self, mailbox: &str, event: &'static str, item: &str) {
        self.next_watermark += 1;
        let number = self.next_watermark;
        self.changes
            .push((number, mailbox.to_string(), item.to_string(), event));
        for subscription in self
            .subscriptions
            .values_mut()
            .filter(|s| s.mailbox == mailbox)
        {
            self.next_watermark += 1;
            subscription
                .events
                .push((self.next_watermark, event, item.to_string()));
        }
    }
}
