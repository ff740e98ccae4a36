//! An Exchange Web Services simulator, for Calvert's tests and demo.
//!
//! It serves `POST /EWS/Exchange.asmx` on loopback, over HTTP ([`start`]) or HTTPS
//! with a self-signed certificate made at start ([`start_https`]), with mailboxes in
//! memory, Basic and NTLM (NTLMv2, the challenge tied to its TCP connection)
//! authentication of service accounts, OAuth client credentials, impersonation
//! rights per account, and faults injected by the test. Its replies follow the shapes of the
//! documented and genuine samples in `../shared/ews/` and are written here,
//! independently of Calvert's own EWS code, so the two check each other.
//!
//! Operations so far: FindItem with a CalendarView (honouring MaxEntriesReturned and
//! setting IncludesLastItemInRange), GetItem, Subscribe (pull) and GetEvents with
//! watermarks (created, modified and deleted items become events; subscriptions can
//! be expired by the test), streaming Subscribe and GetStreamingEvents (a held
//! connection writing one envelope after another, a keep-alive every heartbeat
//! interval while idle, Closed at the end),
//! SyncFolderItems with sync states (paged by MaxChangesReturned; a corrupt state is
//! ErrorInvalidSyncStateData), CreateItem, UpdateItem (SetItemField,
//! AppendToItemField, DeleteItemField; a stale change key is
//! ErrorIrresolvableConflict) and DeleteItem, push subscriptions (events POSTed to
//! the subscriber's URL as SendNotification; an Unsubscribe answer ends them),
//! Unsubscribe, and GetFolder, FindFolder and CreateFolder (root, msgfolderroot,
//! calendar, inbox and deleted items, and folders made under them).
//! Anything else answers `ErrorInvalidRequest`.
//!
//! It keeps what it is given: text exactly (entity references resolved, white space
//! kept), every field of a CreateItem (body, attendees with resources, UID, zones,
//! reminder, extended properties, a recurrence pattern, which makes a
//! RecurringMaster), and item ids, change keys and subscription ids never handed
//! out twice in its life. Replies carry what the request's ItemShape asks for.
//! Limits, on purpose: recurring masters are kept but not expanded into
//! occurrences (a test puts the occurrences it needs), subscriptions watch the
//! calendar folder, and FindFolder takes no restriction.
//!
//! Where things are:
//! - `exchange.rs`: [`Exchange`], the shared state's handle and the test's control API;
//!   `directory.rs`: the state itself (mailboxes, [`SimItem`]s, accounts, apps,
//!   subscriptions, the change log); `faults.rs`: [`Fault`] and what each does.
//! - `server.rs`: [`start`], [`start_https`], the routes, [`Server`]; `tls.rs`: the
//!   certificate and [`TlsListener`].
//! - `ews.rs`: the EWS endpoint and the dispatch to operations; `wire.rs`: reading
//!   requests, the envelope, faults and watermarks of replies; `xml_tree.rs`: a
//!   request as a tree with exact text.
//! - Items: `item_fields.rs` (a CalendarItem's fields → [`SimItem`]),
//!   `item_xml.rs` ([`SimItem`] → XML in the ItemShape asked for).
//! - `sign_in.rs`: Basic, NTLM and OAuth (with the token endpoint); [`ntlm`]: the
//!   NTLM messages.
//! - Operations: `calendar.rs` (FindItem, GetItem), `edit.rs` (CreateItem,
//!   UpdateItem, DeleteItem), `folders.rs` (GetFolder, FindFolder, CreateFolder),
//!   `subscriptions.rs` (Subscribe, GetEvents, Unsubscribe), `sync.rs`
//!   (SyncFolderItems), `streaming.rs` (GetStreamingEvents), `push.rs` (push
//!   notifications), `autodiscover.rs` (GetUserSettings).

mod autodiscover;
mod calendar;
mod directory;
mod edit;
mod ews;
mod exchange;
mod faults;
mod folders;
mod item_fields;
mod item_xml;
pub mod ntlm;
mod push;
mod server;
mod sign_in;
mod streaming;
mod subscriptions;
mod sync;
mod tls;
mod wire;
mod xml_tree;

pub use directory::{
    AttendeeList, CALENDAR_FOLDER, DEFAULT_HEARTBEAT, SimAttendee, SimExtended, SimItem,
};
pub use exchange::Exchange;
pub use faults::Fault;
pub use server::{Peer, Server, start, start_https, start_https_on, start_on};
pub use tls::TlsListener;
