//! A Microsoft Graph event (JSON) → the core's normalized calendar item
//! (semantics.md §1), with the fidelity of the EWS mapping (`ews/calendar.rs`).
//!
//! Mapping: `showAs` → free-busy (`unknown` → no-data); `responseStatus.response` →
//! response (`none` → unknown, `tentativelyAccepted` → tentative, `notResponded` →
//! no-response); `type` → kind; `sensitivity`; `isAllDay`, with the zone the event
//! was made in from `originalStartTimeZone` (`tzone://Microsoft/Custom` is no zone);
//! `reminderMinutesBeforeStart` only when `isReminderOn`; `createdDateTime`,
//! `lastModifiedDateTime`; attendees by `type` (required, optional, resource);
//! `location.displayName`; `body.content` (asked for as text). A meeting is an event
//! with attendees, or one the calendar's owner did not organize.
//!
//! Times: Calvert asks for `Prefer: outlook.timezone="UTC"`, so `start`/`end` are
//! UTC wall-clock times without an offset (`2017-08-14T21:00:00.0000000`). An event
//! in any other zone, without a zone, with an offset in its `dateTime`, or without a
//! readable start or end, is reported unreadable (per event), never guessed.
//!
//! All-day events: Graph gives them as midnight to midnight in the zone asked for
//! (by design), not at the instants the event's own zone would give. So an all-day
//! event's zone is UTC here: the core then reads its days as the dates Graph gave
//! and lays them in the user's zone, as it does for EWS items.
//!
//! Bodies: calendarView honours `outlook.body-content-type="text"`; a body that
//! still comes as HTML (delta pages may) is kept as Graph sent it.

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde::Deserialize;

use crate::component::wit::{
    Attendee, AttendeeRole, CalendarItem, FreeBusy, ItemKind, Response, Sensitivity,
};
use crate::ews::calendar::ItemError;

/// An event as Graph sends it: only the properties Calvert maps. Every one may be
/// missing or null (delta pages and `$select` leave properties out).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphEvent {
    pub id: Option<String>,
    pub change_key: Option<String>,
    pub subject: Option<String>,
    pub body: Option<Body>,
    pub location: Option<Location>,
    pub start: Option<ZonedTime>,
    pub end: Option<ZonedTime>,
    pub is_all_day: Option<bool>,
    pub original_start_time_zone: Option<String>,
    pub show_as: Option<String>,
    pub response_status: Option<ResponseStatus>,
    pub is_organizer: Option<bool>,
    pub is_cancelled: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub sensitivity: Option<String>,
    pub is_reminder_on: Option<bool>,
    pub reminder_minutes_before_start: Option<i64>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub attendees: Option<Vec<GraphAttendee>>,
    /// Set on delta pages for an event that is gone (`{"reason":"deleted"}`).
    #[serde(rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Body {
    pub content_type: Option<String>,
    pub content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Location {
    pub display_name: Option<String>,
}

/// Graph's dateTimeTimeZone.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ZonedTime {
    pub date_time: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResponseStatus {
    pub response: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphAttendee {
    #[serde(rename = "type")]
    pub role: Option<String>,
    pub email_address: Option<EmailAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailAddress {
    pub address: Option<String>,
}

fn problem(id: &str, problem: impl Into<String>) -> ItemError {
    ItemError {
        id: id.to_string(),
        problem: problem.into(),
    }
}

/// A UTC dateTimeTimeZone as seconds since 1970.
fn utc_instant(time: Option<&ZonedTime>, name: &str, id: &str) -> Result<i64, ItemError> {
    let time = time.ok_or_else(|| problem(id, format!("it has no {name}")))?;
    let zone = time.time_zone.as_deref().unwrap_or("(none)");
    if !matches!(zone, "UTC" | "tzone://Microsoft/Utc") {
        return Err(problem(
            id,
            format!(
                "{name} is in {zone:?}: Calvert asks for UTC (Prefer: outlook.timezone=\"UTC\"), so a proxy or the tenant changed the reply"
            ),
        ));
    }
    let text = time.date_time.as_deref().unwrap_or("");
    if !is_wall_clock(text) {
        return Err(problem(
            id,
            format!("{name} {text:?} is not a date and time of day without an offset"),
        ));
    }
    let civil: DateTime = text
        .parse()
        .map_err(|e| problem(id, format!("{name} {text:?} is not an ISO 8601 time: {e}")))?;
    jiff::tz::TimeZone::UTC
        .to_timestamp(civil)
        .map(|t| t.as_second())
        .map_err(|e| problem(id, format!("{name} {text:?} is out of range: {e}")))
}

/// `YYYY-MM-DDTHH:MM[:SS[.fraction]]` and nothing else (no offset, no zone, not a
/// date alone): jiff's civil parser would quietly drop an offset.
fn is_wall_clock(text: &str) -> bool {
    let Some((date, time)) = text.split_once('T') else {
        return false;
    };
    date.len() == 10
        && time.len() >= 5
        && date.chars().all(|c| c.is_ascii_digit() || c == '-')
        && time
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
}

/// An ISO 8601 UTC time (createdDateTime, lastModifiedDateTime), if readable.
fn timestamp(text: Option<&str>, name: &str, id: &str) -> Result<Option<i64>, ItemError> {
    let Some(text) = text else { return Ok(None) };
    text.parse::<Timestamp>()
        .map(|t| Some(t.as_second()))
        .map_err(|e| problem(id, format!("{name} {text:?} is not an ISO 8601 time: {e}")))
}

fn free_busy(show_as: Option<&str>) -> FreeBusy {
    match show_as {
        Some("free") => FreeBusy::Free,
        Some("tentative") => FreeBusy::Tentative,
        Some("oof") => FreeBusy::Oof,
        Some("workingElsewhere") => FreeBusy::WorkingElsewhere,
        Some("unknown") => FreeBusy::NoData,
        _ => FreeBusy::Busy,
    }
}

fn response(status: Option<&ResponseStatus>) -> Response {
    match status.and_then(|s| s.response.as_deref()) {
        Some("organizer") => Response::Organizer,
        Some("tentativelyAccepted") => Response::Tentative,
        Some("accepted") => Response::Accept,
        Some("declined") => Response::Decline,
        Some("notResponded") => Response::NoResponse,
        _ => Response::Unknown,
    }
}

fn kind(kind: Option<&str>) -> ItemKind {
    match kind {
        Some("occurrence") => ItemKind::Occurrence,
        Some("exception") => ItemKind::Exception,
        Some("seriesMaster") => ItemKind::RecurringMaster,
        _ => ItemKind::Single,
    }
}

fn sensitivity(sensitivity: Option<&str>) -> Sensitivity {
    match sensitivity {
        Some("personal") => Sensitivity::Personal,
        Some("private") => Sensitivity::Private,
        Some("confidential") => Sensitivity::Confidential,
        _ => Sensitivity::Normal,
    }
}

/// The zone the event was made in (normally a Windows zone id, as from EWS).
fn zone(original: Option<&str>) -> Option<String> {
    match original.map(str::trim) {
        None | Some("") | Some("tzone://Microsoft/Custom") | Some("Customized Time Zone") => None,
        Some("tzone://Microsoft/Utc") => Some("UTC".into()),
        Some(zone) => Some(zone.to_string()),
    }
}

/// Attendees with an address, by their `type` (an unknown type counts as required).
fn attendees(list: Option<&[GraphAttendee]>) -> Vec<Attendee> {
    list.unwrap_or_default()
        .iter()
        .filter_map(|a| {
            let address = a.email_address.as_ref()?.address.as_deref()?.trim();
            let role = match a.role.as_deref() {
                Some("optional") => AttendeeRole::Optional,
                Some("resource") => AttendeeRole::Resource,
                _ => AttendeeRole::Required,
            };
            (!address.is_empty()).then(|| Attendee {
                address: address.to_string(),
                role,
            })
        })
        .collect()
}

/// `reminderMinutesBeforeStart` when the reminder is on (a negative or huge value
/// is no reminder).
fn reminder(event: &GraphEvent) -> Option<u32> {
    if event.is_reminder_on == Some(false) {
        return None;
    }
    event
        .reminder_minutes_before_start
        .and_then(|m| u32::try_from(m).ok())
}

/// Map one event (not a removed one: see [`GraphEvent::removed`]).
pub fn calendar_item(event: &GraphEvent) -> Result<CalendarItem, ItemError> {
    let id = event.id.clone().unwrap_or_default();
    if id.is_empty() {
        return Err(problem(&id, "it has no id"));
    }
    let start = utc_instant(event.start.as_ref(), "start", &id)?;
    let end = utc_instant(event.end.as_ref(), "end", &id)?;
    let attendees = attendees(event.attendees.as_deref());
    let is_all_day = event.is_all_day.unwrap_or(false);
    Ok(CalendarItem {
        change_key: event.change_key.clone().unwrap_or_default(),
        subject: event.subject.clone().unwrap_or_default(),
        location: event
            .location
            .as_ref()
            .and_then(|l| l.display_name.clone())
            .unwrap_or_default(),
        body: event
            .body
            .as_ref()
            .and_then(|b| b.content.clone())
            .unwrap_or_default(),
        start,
        end,
        is_all_day,
        zone: if is_all_day {
            Some("UTC".into())
        } else {
            zone(event.original_start_time_zone.as_deref())
        },
        free_busy: free_busy(event.show_as.as_deref()),
        response: response(event.response_status.as_ref()),
        is_meeting: !attendees.is_empty() || event.is_organizer == Some(false),
        is_cancelled: event.is_cancelled.unwrap_or(false),
        kind: kind(event.kind.as_deref()),
        sensitivity: sensitivity(event.sensitivity.as_deref()),
        reminder_minutes: reminder(event),
        created: timestamp(event.created_date_time.as_deref(), "createdDateTime", &id)?,
        modified: timestamp(
            event.last_modified_date_time.as_deref(),
            "lastModifiedDateTime",
            &id,
        )?,
        attendees,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> GraphEvent {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_full_event_maps_every_field() {
        let item = calendar_item(&event(
            r#"{"id":"AAMk=","changeKey":"ck","subject":" Lunch & möte ","body":{"contentType":"text","content":"a\r\nb"},
                "location":{"displayName":"Rum 1"},"start":{"dateTime":"2026-12-03T11:00:00.0000000","timeZone":"UTC"},
                "end":{"dateTime":"2026-12-03T12:00:00.0000000","timeZone":"UTC"},"isAllDay":false,
                "originalStartTimeZone":"W. Europe Standard Time","showAs":"oof","responseStatus":{"response":"tentativelyAccepted"},
                "isOrganizer":false,"isCancelled":true,"type":"exception","sensitivity":"private","isReminderOn":true,
                "reminderMinutesBeforeStart":15,"createdDateTime":"2026-12-01T08:00:00.1234567Z",
                "lastModifiedDateTime":"2026-12-01T08:30:00Z",
                "attendees":[{"type":"required","emailAddress":{"address":"kim@flexi.se"}},
                             {"type":"resource","emailAddress":{"address":" rum-1@flexi.se "}},
                             {"type":"optional","emailAddress":{"address":""}}]}"#,
        ))
        .unwrap();
        assert_eq!(item.subject, " Lunch & möte ");
        assert_eq!((item.start, item.end), (1_796_295_600, 1_796_299_200));
        assert_eq!(item.zone.as_deref(), Some("W. Europe Standard Time"));
        assert_eq!(item.free_busy, FreeBusy::Oof);
        assert_eq!(item.response, Response::Tentative);
        assert!(item.is_meeting && item.is_cancelled);
        assert_eq!(item.kind, ItemKind::Exception);
        assert_eq!(item.sensitivity, Sensitivity::Private);
        assert_eq!(item.reminder_minutes, Some(15));
        assert_eq!(
            (item.created, item.modified),
            (Some(1_796_112_000), Some(1_796_113_800))
        );
        assert_eq!(item.attendees.len(), 2);
        assert_eq!(item.attendees[1].role, AttendeeRole::Resource);
        assert_eq!(item.attendees[1].address, "rum-1@flexi.se");
    }

    #[test]
    fn missing_fields_take_the_neutral_values() {
        let item = calendar_item(&event(
            r#"{"id":"x","start":{"dateTime":"2026-12-03T11:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-03T12:00:00","timeZone":"UTC"},"subject":null,"isReminderOn":false,"reminderMinutesBeforeStart":15}"#,
        ))
        .unwrap();
        assert_eq!(item.free_busy, FreeBusy::Busy);
        assert_eq!(item.response, Response::Unknown);
        assert_eq!(item.subject, "");
        assert_eq!(item.reminder_minutes, None);
        assert!(!item.is_meeting);
    }

    #[test]
    fn an_all_day_event_keeps_the_dates_graph_gave() {
        // Made in Pacific time, read in UTC: Graph says midnight to midnight UTC.
        let item = calendar_item(&event(
            r#"{"id":"x","isAllDay":true,"originalStartTimeZone":"Pacific Standard Time",
                "start":{"dateTime":"2026-12-24T00:00:00.0000000","timeZone":"UTC"},
                "end":{"dateTime":"2026-12-26T00:00:00.0000000","timeZone":"UTC"}}"#,
        ))
        .unwrap();
        assert!(item.is_all_day);
        assert_eq!(item.zone.as_deref(), Some("UTC"));
        assert_eq!((item.start, item.end), (1_798_070_400, 1_798_243_200));
    }

    #[test]
    fn an_event_that_cannot_be_read_says_why() {
        let end = r#""end":{"dateTime":"2026-12-03T12:00:00","timeZone":"UTC"}"#;
        for (start, why) in [
            (r#""id":"x""#, "no start"),
            (
                r#""id":"x","start":{"dateTime":"2026-12-03T11:00:00","timeZone":"Pacific Standard Time"}"#,
                "asks for UTC",
            ),
            (
                r#""id":"x","start":{"dateTime":"2026-12-03T11:00:00"}"#,
                "asks for UTC",
            ),
            (
                r#""id":"x","start":{"dateTime":"2026-12-03T11:00:00+05:00","timeZone":"UTC"}"#,
                "without an offset",
            ),
            (
                r#""id":"x","start":{"dateTime":"2026-12-03","timeZone":"UTC"}"#,
                "without an offset",
            ),
            (
                r#""id":"x","start":{"dateTime":"2026-13-03T11:00:00","timeZone":"UTC"}"#,
                "not an ISO 8601 time",
            ),
            (
                r#""start":{"dateTime":"2026-12-03T11:00:00","timeZone":"UTC"}"#,
                "no id",
            ),
        ] {
            let json = format!("{{{start},{end}}}");
            let error = calendar_item(&event(&json)).unwrap_err();
            assert!(error.to_string().contains(why), "{json}: {error}");
        }
    }
}
