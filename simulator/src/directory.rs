//! The simulator's state: mailboxes and their calendar items, service accounts and
//! OAuth apps, subscriptions and their events, the change log SyncFolderItems reads,
//! NTLM connections, queued faults and what the tests may ask about afterwards.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::Fault;

/// A calendar item as the simulator stores it (EWS's own words for the values).
/// Text fields hold exactly what was given: entity references resolved, white space
/// kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimItem {
    pub id: String,
    pub change_key: String,
    /// The folder the item is in ([`CALENDAR_FOLDER`] unless created elsewhere).
    pub folder: String,
    pub subject: String,
    pub location: String,
    pub body: String,
    /// Text or HTML.
    pub body_type: String,
    /// The iCalendar UID (made up at creation when not given).
    pub uid: String,
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    /// StartTimeZone / EndTimeZone ids (normally Windows zone ids), where given.
    pub start_zone: Option<String>,
    pub end_zone: Option<String>,
    /// Free, Tentative, Busy, OOF, WorkingElsewhere, NoData.
    pub free_busy: String,
    /// Unknown, Organizer, Tentative, Accept, Decline, NoResponseReceived.
    pub my_response: String,
    pub is_meeting: bool,
    pub is_cancelled: bool,
    /// Single, Occurrence, Exception, RecurringMaster (a master never appears in a
    /// CalendarView).
    pub item_type: String,
    /// A recurring item's Recurrence element as given (kept, not expanded).
    pub recurrence: Option<String>,
    pub sensitivity: String,
    pub reminder_is_set: bool,
    pub reminder_minutes: u32,
    pub attendees: Vec<SimAttendee>,
    pub extended: Vec<SimExtended>,
    /// Set by the simulator: at creation, and at every change.
    pub created: i64,
    pub modified: i64,
}

/// Which attendee list a person is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttendeeList {
    Required,
    Optional,
    Resources,
}

impl AttendeeList {
    /// The element EWS writes the list as (and its FieldURI after `calendar:`).
    pub fn element(self) -> &'static str {
        match self {
            AttendeeList::Required => "RequiredAttendees",
            AttendeeList::Optional => "OptionalAttendees",
            AttendeeList::Resources => "Resources",
        }
    }

    pub const ALL: [AttendeeList; 3] = [
        AttendeeList::Required,
        AttendeeList::Optional,
        AttendeeList::Resources,
    ];
}

/// One attendee of a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAttendee {
    pub list: AttendeeList,
    pub name: String,
    pub address: String,
    /// Unknown, Organizer, Tentative, Accept, Decline, NoResponseReceived; empty when
    /// not given.
    pub response: String,
}

/// One extended (MAPI) property: its ExtendedFieldURI attributes, sorted by name, and
/// its value (several for a multi-valued one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimExtended {
    pub uri: Vec<(String, String)>,
    pub values: Vec<String>,
    pub multi_valued: bool,
}

/// The id of every mailbox's calendar folder (DistinguishedFolderId `calendar`).
pub const CALENDAR_FOLDER: &str = "folder-calendar";

impl SimItem {
    /// A busy appointment the mailbox owner organizes.
    pub fn appointment(id: &str, subject: &str, start: i64, end: i64) -> Self {
        SimItem {
            id: id.into(),
            change_key: format!("CK-{id}-1"),
            folder: CALENDAR_FOLDER.into(),
            subject: subject.into(),
            location: String::new(),
            body: String::new(),
            body_type: "Text".into(),
            uid: format!("sim-uid-{id}"),
            start,
            end,
            all_day: false,
            start_zone: None,
            end_zone: None,
            free_busy: "Busy".into(),
            my_response: "Organizer".into(),
            is_meeting: false,
            is_cancelled: false,
            item_type: "Single".into(),
            recurrence: None,
            sensitivity: "Normal".into(),
            reminder_is_set: false,
            reminder_minutes: 15,
            attendees: Vec::new(),
            extended: Vec::new(),
            created: start,
            modified: start,
        }
    }
}

/// One mailbox: its folders and the items in them.
#[derive(Debug)]
pub(crate) struct Mailbox {
    pub(crate) items: BTreeMap<String, SimItem>,
    pub(crate) folders: Vec<SimFolder>,
}

/// A folder of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimFolder {
    pub(crate) id: String,
    pub(crate) change_key: String,
    /// None for the root.
    pub(crate) parent: Option<String>,
    /// The DistinguishedFolderId that names it, for the standard folders.
    pub(crate) distinguished: Option<&'static str>,
    /// IPF.Appointment for calendars, IPF.Note for mail; empty for the root folders.
    pub(crate) class: String,
    pub(crate) name: String,
}

impl Default for Mailbox {
    /// A new mailbox has the standard folders: root, its top of information store
    /// (msgfolderroot), and under that the calendar, inbox and deleted items.
    fn default() -> Self {
        let folder =
            |name: &'static str, parent: Option<&str>, class: &str, display: &str| SimFolder {
                id: format!("folder-{name}"),
                change_key: format!("FK-{name}-1"),
                parent: parent.map(|p| format!("folder-{p}")),
                distinguished: Some(name),
                class: class.into(),
                name: display.into(),
            };
        Mailbox {
            items: BTreeMap::new(),
            folders: vec![
                folder("root", None, "", ""),
                folder(
                    "msgfolderroot",
                    Some("root"),
                    "",
                    "Top of Information Store",
                ),
                folder(
                    "calendar",
                    Some("msgfolderroot"),
                    "IPF.Appointment",
                    "Calendar",
                ),
                folder("inbox", Some("msgfolderroot"), "IPF.Note", "Inbox"),
                folder(
                    "deleteditems",
                    Some("msgfolderroot"),
                    "IPF.Note",
                    "Deleted Items",
                ),
            ],
        }
    }
}

impl Mailbox {
    /// The folder a FolderId or DistinguishedFolderId names.
    pub(crate) fn folder(&self, id: &FolderRef) -> Option<&SimFolder> {
        self.folders.iter().find(|f| match id {
            FolderRef::Distinguished(name) => f.distinguished == Some(name.as_str()),
            FolderRef::Id(id) => &f.id == id,
        })
    }
}

/// How a request names a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FolderRef {
    Distinguished(String),
    Id(String),
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
    /// The folder it watches (the calendar).
    pub(crate) folder: String,
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
    /// Every change to every mailbox, for SyncFolderItems.
    pub(crate) changes: Vec<Change>,
    /// Every item id ever given out or stored, so none is given out again.
    pub(crate) used_ids: BTreeSet<String>,
    /// The number in the last item or folder id made up, and in the last change key.
    pub(crate) last_id: u64,
    pub(crate) last_change_key: u64,
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
        let id = format!("sub-{}-{}", mailbox, self.new_number());
        self.next_watermark += 1;
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                mailbox: mailbox.to_string(),
                folder: CALENDAR_FOLDER.to_string(),
                events: Vec::new(),
                expired: false,
            },
        );
        (id, self.next_watermark)
    }

    /// A number never handed out before (for ids of items, folders, subscriptions).
    pub(crate) fn new_number(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// An item id never used before in any mailbox.
    pub(crate) fn new_item_id(&mut self) -> String {
        loop {
            let id = format!("sim-{}", self.new_number());
            if self.used_ids.insert(id.clone()) {
                return id;
            }
        }
    }

    /// A change key never given out before, for item `id`.
    pub(crate) fn new_change_key(&mut self, id: &str) -> String {
        self.last_change_key += 1;
        format!("CK-{id}-{}", self.last_change_key)
    }

    /// Store an item in `mailbox` (lower case) with a change key never given out
    /// before, and tell the subscriptions to its folder; the new change key.
    pub(crate) fn put(&mut self, mailbox: &str, mut item: SimItem) -> String {
        if item.folder.is_empty() {
            item.folder = CALENDAR_FOLDER.into();
        }
        self.used_ids.insert(item.id.clone());
        item.change_key = self.new_change_key(&item.id);
        let store = self.mailboxes.entry(mailbox.to_string()).or_default();
        let event = if store.items.contains_key(&item.id) {
            "ModifiedEvent"
        } else {
            "CreatedEvent"
        };
        let (id, folder, key) = (
            item.id.clone(),
            item.folder.clone(),
            item.change_key.clone(),
        );
        store.items.insert(id.clone(), item);
        self.notify(mailbox, &folder, event, &id);
        key
    }

    /// Delete item `id` of `mailbox` (lower case) and tell the subscriptions to its
    /// folder; whether it was there.
    pub(crate) fn remove(&mut self, mailbox: &str, id: &str) -> bool {
        let removed = self
            .mailboxes
            .get_mut(mailbox)
            .and_then(|m| m.items.remove(id));
        match removed {
            Some(item) => {
                self.notify(mailbox, &item.folder, "DeletedEvent", id);
                true
            }
            None => false,
        }
    }

    /// Record a change to an item of `mailbox` in `folder` (for SyncFolderItems) and
    /// give each subscription to that folder its event.
    pub(crate) fn notify(&mut self, mailbox: &str, folder: &str, event: &'static str, item: &str) {
        self.next_watermark += 1;
        let number = self.next_watermark;
        self.changes.push(Change {
            number,
            mailbox: mailbox.to_string(),
            folder: folder.to_string(),
            item: item.to_string(),
            event,
        });
        for subscription in self
            .subscriptions
            .values_mut()
            .filter(|s| s.mailbox == mailbox && s.folder == folder)
        {
            self.next_watermark += 1;
            subscription
                .events
                .push((self.next_watermark, event, item.to_string()));
        }
    }
}

/// One change to an item, as SyncFolderItems reads the log.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) number: u64,
    pub(crate) mailbox: String,
    pub(crate) folder: String,
    pub(crate) item: String,
    /// CreatedEvent, ModifiedEvent or DeletedEvent.
    pub(crate) event: &'static str,
}
