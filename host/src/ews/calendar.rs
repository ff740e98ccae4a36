//! EWS calendar items → the core's normalized calendar item (semantics.md §1).
//!
//! Mapping: `LegacyFreeBusyStatus` → free-busy; `MyResponseType` → response
//! (`NoResponseReceived` → no-response); `CalendarItemType` → kind (`RecurringMaster`,
//! `Occurrence`, `Exception`, else single); `Sensitivity`; `IsAllDayEvent`, with the
//! zone the item was made in from `StartTimeZoneId` (2013+) or `StartTimeZone/@Id`
//! (2010+; `TimeZone` is a display string and is not read);
//! `ReminderMinutesBeforeStart` only when `ReminderIsSet` is not false;
//! `DateTimeCreated`, `LastModifiedTime`; attendees from `RequiredAttendees`,
//! `OptionalAttendees` and `Resources`. Subject, location and body are taken exactly,
//! white space included (the two-way sync compares them); enumerations, flags and
//! times are read trimmed. A field Exchange did not send takes the
//! core's neutral value (empty text, unknown response, busy); times that are missing
//! or not RFC 3339 make the item unreadable, reported per item.

use jiff::Timestamp;

use super::response::{EwsError, body, response_messages};
use super::xml::{self, Element};
use super::{MESSAGES_NS, TYPES_NS};
use crate::component::wit::{
    Attendee, AttendeeRole, CalendarItem, FreeBusy, ItemKind, Response, Sensitivity,
};

/// One page of a FindItem CalendarView reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPage {
    pub items: Vec<CalendarItem>,
    pub includes_last_item_in_range: bool,
    pub total_items_in_view: Option<u32>,
}

/// Why one item of a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calendar item {id:?}: {problem}")]
pub struct ItemError {
    pub id: String,
    pub problem: String,
}

fn instant(item: &Element, name: &str, id: &str) -> Result<Option<i64>, ItemError> {
    let Some(text) = item.child_text(TYPES_NS, name) else {
        return Ok(None);
    };
    text.parse::<Timestamp>()
        .map(|t| Some(t.as_second()))
        .map_err(|e| ItemError {
            id: id.to_string(),
            problem: format!("{name} {text:?} is not an RFC 3339 time: {e}"),
        })
}

fn flag(item: &Element, name: &str) -> Option<bool> {
    item.child_text(TYPES_NS, name)
        .map(|t| t.eq_ignore_ascii_case("true") || t == "1")
}

fn attendees(item: &Element, list: &str, role: AttendeeRole, out: &mut Vec<Attendee>) {
    if let Some(group) = item.child(TYPES_NS, list) {
        for attendee in group.children_named(TYPES_NS, "Attendee") {
            if let Some(address) = attendee
                .child(TYPES_NS, "Mailbox")
                .and_then(|m| m.child_text(TYPES_NS, "EmailAddress"))
                && !address.is_empty()
            {
                out.push(Attendee {
                    address: address.to_string(),
                    role,
                });
            }
        }
    }
}

/// Required attendees, then optional ones, then resources.
fn people(item: &Element) -> Vec<Attendee> {
    let mut people = Vec::new();
    for (list, role) in [
        ("RequiredAttendees", AttendeeRole::Required),
        ("OptionalAttendees", AttendeeRole::Optional),
        ("Resources", AttendeeRole::Resource),
    ] {
        attendees(item, list, role, &mut people);
    }
    people
}

/// The exact text of a child (white space kept: the two-way sync compares it),
/// empty when Exchange did not send it.
fn text_of(item: &Element, name: &str) -> String {
    item.child(TYPES_NS, name)
        .map(|c| c.text.clone())
        .unwrap_or_default()
}

fn free_busy(item: &Element) -> FreeBusy {
    match item.child_text(TYPES_NS, "LegacyFreeBusyStatus") {
        Some("Free") => FreeBusy::Free,
        Some("Tentative") => FreeBusy::Tentative,
        Some("OOF") => FreeBusy::Oof,
        Some("WorkingElsewhere") => FreeBusy::WorkingElsewhere,
        Some("NoData") => FreeBusy::NoData,
        _ => FreeBusy::Busy,
    }
}

fn response(item: &Element) -> Response {
    match item.child_text(TYPES_NS, "MyResponseType") {
        Some("Organizer") => Response::Organizer,
        Some("Tentative") => Response::Tentative,
        Some("Accept") => Response::Accept,
        Some("Decline") => Response::Decline,
        Some("NoResponseReceived") => Response::NoResponse,
        _ => Response::Unknown,
    }
}

fn kind(item: &Element) -> ItemKind {
    match item.child_text(TYPES_NS, "CalendarItemType") {
        Some("RecurringMaster") => ItemKind::RecurringMaster,
        Some("Occurrence") => ItemKind::Occurrence,
        Some("Exception") => ItemKind::Exception,
        _ => ItemKind::Single,
    }
}

fn sensitivity(item: &Element) -> Sensitivity {
    match item.child_text(TYPES_NS, "Sensitivity") {
        Some("Personal") => Sensitivity::Personal,
        Some("Private") => Sensitivity::Private,
        Some("Confidential") => Sensitivity::Confidential,
        _ => Sensitivity::Normal,
    }
}

/// The zone the item was made in: `StartTimeZoneId` (2013+) or `StartTimeZone/@Id`
/// (2010+), normally a Windows id. `TimeZone` is a display string ("(UTC+01:00)
/// Amsterdam…") and never read as an id.
fn zone(item: &Element) -> Option<String> {
    item.child_text(TYPES_NS, "StartTimeZoneId")
        .or_else(|| {
            item.child(TYPES_NS, "StartTimeZone")
                .and_then(|z| z.attr("Id"))
        })
        .map(|z| {
            if z == "tzone://Microsoft/Utc" {
                "UTC"
            } else {
                z
            }
        })
        .filter(|z| !z.is_empty() && *z != "Customized Time Zone")
        .map(str::to_string)
}

/// `ReminderMinutesBeforeStart`, unless `ReminderIsSet` says there is no reminder.
fn reminder_minutes(item: &Element) -> Option<u32> {
    match flag(item, "ReminderIsSet") {
        Some(false) => None,
        _ => item
            .child_text(TYPES_NS, "ReminderMinutesBeforeStart")
            .and_then(|m| m.parse::<u32>().ok()),
    }
}

/// A time the item must have: missing or not RFC 3339 makes the item unreadable.
fn required_instant(item: &Element, name: &str, id: &str) -> Result<i64, ItemError> {
    instant(item, name, id)?.ok_or_else(|| ItemError {
        id: id.to_string(),
        problem: format!("it has no {name}: request it in the item shape"),
    })
}

/// Map one `t:CalendarItem` element.
pub fn calendar_item(item: &Element) -> Result<CalendarItem, ItemError> {
    let item_id = item.child(TYPES_NS, "ItemId");
    let id = item_id.and_then(|i| i.attr("Id")).unwrap_or("").to_string();
    if id.is_empty() {
        return Err(ItemError {
            id,
            problem: "it has no ItemId".into(),
        });
    }
    let start = required_instant(item, "Start", &id)?;
    let end = required_instant(item, "End", &id)?;
    Ok(CalendarItem {
        change_key: item_id
            .and_then(|i| i.attr("ChangeKey"))
            .unwrap_or("")
            .to_string(),
        subject: text_of(item, "Subject"),
        location: text_of(item, "Location"),
        body: text_of(item, "Body"),
        start,
        end,
        is_all_day: flag(item, "IsAllDayEvent").unwrap_or(false),
        zone: zone(item),
        free_busy: free_busy(item),
        response: response(item),
        is_meeting: flag(item, "IsMeeting").unwrap_or(false),
        is_cancelled: flag(item, "IsCancelled").unwrap_or(false),
        kind: kind(item),
        sensitivity: sensitivity(item),
        reminder_minutes: reminder_minutes(item),
        created: instant(item, "DateTimeCreated", &id)?,
        modified: instant(item, "LastModifiedTime", &id)?,
        attendees: people(item),
        id,
    })
}

/// Read a FindItem (CalendarView) reply: one page of items.
pub fn parse_find_item(reply: &str) -> Result<(CalendarPage, Vec<ItemError>), EwsError> {
    let root = xml::parse(reply)?;
    let body = body(&root)?;
    let message = response_messages(body)?
        .into_iter()
        .next()
        .ok_or(EwsError::Unexpected {
            expected: "FindItemResponseMessage",
        })?
        .into_result()?;
    let folder = message
        .element
        .child(MESSAGES_NS, "RootFolder")
        .ok_or(EwsError::Unexpected {
            expected: "RootFolder",
        })?;
    let mut items = Vec::new();
    let mut problems = Vec::new();
    if let Some(list) = folder.child(TYPES_NS, "Items") {
        for element in list.children_named(TYPES_NS, "CalendarItem") {
            match calendar_item(element) {
                Ok(item) => items.push(item),
                Err(problem) => problems.push(problem),
            }
        }
    }
    let page = CalendarPage {
        items,
        includes_last_item_in_range: folder.attr("IncludesLastItemInRange") != Some("false"),
        total_items_in_view: folder.attr("TotalItemsInView").and_then(|t| t.parse().ok()),
    };
    Ok((page, problems))
}

/// Read a GetItem reply: one result per requested id, in request order (a batch can
/// fail for some items and not others).
pub fn parse_get_item(reply: &str) -> Result<Vec<Result<CalendarItem, EwsError>>, EwsError> {
    let root = xml::parse(reply)?;
    let body = body(&root)?;
    let mut results = Vec::new();
    for message in response_messages(body)? {
        match message.into_result() {
            Err(error) => results.push(Err(error)),
            Ok(message) => {
                let items = message.element.child(MESSAGES_NS, "Items");
                for element in items
                    .into_iter()
                    .flat_map(|i| i.children_named(TYPES_NS, "CalendarItem"))
                {
                    results.push(calendar_item(element).map_err(EwsError::from));
                }
            }
        }
    }
    Ok(results)
}

/// One change a SyncFolderItems reply reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Created or updated: read the item (GetItem) for its fields.
    Upserted {
        id: String,
        change_key: String,
    },
    Deleted {
        id: String,
    },
}

/// One SyncFolderItems round: the changes, the state to persist once they are
/// applied, and whether more rounds follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRound {
    pub changes: Vec<Change>,
    pub sync_state: String,
    pub includes_last_item_in_range: bool,
}

/// Read a SyncFolderItems reply. `ErrorInvalidSyncStateData` comes back as an error
/// whose action is a full resync.
pub fn parse_sync_folder_items(reply: &str) -> Result<SyncRound, EwsError> {
    let root = xml::parse(reply)?;
    let message = response_messages(body(&root)?)?
        .into_iter()
        .next()
        .ok_or(EwsError::Unexpected {
            expected: "SyncFolderItemsResponseMessage",
        })?
        .into_result()?;
    let element = message.element;
    let sync_state = element
        .child_text(MESSAGES_NS, "SyncState")
        .ok_or(EwsError::Unexpected {
            expected: "SyncState",
        })?
        .to_string();
    let mut changes = Vec::new();
    for change in element
        .child(MESSAGES_NS, "Changes")
        .into_iter()
        .flat_map(|c| c.children.iter())
    {
        // Create/Update wrap the item (any item type); Delete carries the ItemId itself.
        let id_element = change.child(TYPES_NS, "ItemId").or_else(|| {
            change
                .children
                .iter()
                .find_map(|item| item.child(TYPES_NS, "ItemId"))
        });
        let Some(id_element) = id_element else {
            continue;
        };
        let id = id_element.attr("Id").unwrap_or("").to_string();
        match change.name.as_str() {
            "Create" | "Update" => changes.push(Change::Upserted {
                id,
                change_key: id_element.attr("ChangeKey").unwrap_or("").to_string(),
            }),
            "Delete" => changes.push(Change::Deleted { id }),
            _ => {}
        }
    }
    Ok(SyncRound {
        changes,
        sync_state,
        includes_last_item_in_range: element.child_text(MESSAGES_NS, "IncludesLastItemInRange")
            != Some("false"),
    })
}

/// An item's id and change key, as a write returns them.
pub type SavedItem = (String, String);

/// The ids and change keys a CreateItem or UpdateItem reply gives, one per message.
pub fn parse_saved_items(reply: &str) -> Result<Vec<Result<SavedItem, EwsError>>, EwsError> {
    let root = xml::parse(reply)?;
    let mut results = Vec::new();
    for message in response_messages(body(&root)?)? {
        results.push(message.into_result().and_then(|m| {
            m.element
                .child(MESSAGES_NS, "Items")
                .and_then(|items| items.children.first())
                .and_then(|item| item.child(TYPES_NS, "ItemId"))
                .and_then(|id| {
                    Some((
                        id.attr("Id")?.to_string(),
                        id.attr("ChangeKey").unwrap_or("").to_string(),
                    ))
                })
                .ok_or(EwsError::Unexpected {
                    expected: "the saved item's ItemId",
                })
        }));
    }
    Ok(results)
}
