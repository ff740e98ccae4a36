//! Reading a user's calendar over Graph: the calendarView request for a window, and
//! the pages it (and calendarView/delta) answers with.
//!
//! - `GET {base}/users/{address}/calendarView?startDateTime=…&endDateTime=…&$top=…`
//!   with [`READ_PREFER`] (UTC times, text bodies, immutable ids). No `$select`:
//!   `createdDateTime` and `lastModifiedDateTime` cannot be selected, and the
//!   two-way sync needs them.
//! - A page is `{"value":[events…], "@odata.nextLink"?, "@odata.deltaLink"?}`;
//!   follow the whole nextLink until it is absent (never rebuild it). A delta page
//!   marks a gone event with `@removed`.
//! - An error reply is `{"error":{"code","message"}}`; `syncStateNotFound` and
//!   `resyncRequired` (and HTTP 410) mean "start the delta again".
//!
//! Every reply is read with a size cap ([`MAX_PAGE_BYTES`]) and at most
//! [`MAX_PAGE_EVENTS`] events; serde_json refuses nesting deeper than 128 levels, so
//! no reply can exhaust the stack. The links are followed by the client, which must
//! keep them on the configured Graph base URL (they carry the bearer token).

use serde::Deserialize;

use super::event::{GraphEvent, calendar_item};
use crate::component::wit::CalendarItem;
use crate::ews::calendar::ItemError;

/// The Prefer header of every read: UTC times, text bodies, immutable ids.
pub const READ_PREFER: &str =
    r#"outlook.timezone="UTC", outlook.body-content-type="text", IdType="ImmutableId""#;

/// The largest page read: 1000 events of a few kilobytes each, with room to spare.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// The most events one page may hold (Graph's `$top` is at most 1000).
pub const MAX_PAGE_EVENTS: usize = 5000;

/// Why a Graph reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("the Graph reply is {size} bytes, more than the {MAX_PAGE_BYTES} Calvert reads")]
    TooLarge { size: usize },
    #[error("the Graph reply is not the JSON Calvert expects: {detail}")]
    NotJson { detail: String },
    #[error("the Graph page holds {count} events, more than the {MAX_PAGE_EVENTS} Calvert reads")]
    TooManyEvents { count: usize },
    #[error("no calendarView window for {0}: {1}")]
    Window(String, String),
    #[error("Graph answered {code}: {message}")]
    Service { code: String, message: String },
}

impl PageError {
    /// Whether the delta state is gone and a full round must start again.
    pub fn restarts_delta(&self) -> bool {
        matches!(self, PageError::Service { code, .. }
            if code.eq_ignore_ascii_case("syncStateNotFound")
                || code.eq_ignore_ascii_case("resyncRequired"))
    }
}

/// The calendarView URL for `address`'s default calendar over [start, end)
/// (seconds since 1970), `top` events a page (1..=1000). The address is one path
/// segment, percent-encoded; one that starts with `$` is written `users('…')`, as
/// Graph asks.
pub fn calendar_view_url(
    base: &str,
    address: &str,
    start: i64,
    end: i64,
    top: u32,
) -> Result<String, PageError> {
    let time = |at: i64| {
        jiff::Timestamp::from_second(at)
            .map(|t| t.to_string())
            .map_err(|e| PageError::Window(address.to_string(), e.to_string()))
    };
    if start >= end {
        return Err(PageError::Window(
            address.to_string(),
            "the window ends before it starts".into(),
        ));
    }
    let user = if address.starts_with('$') {
        format!("('{}')", encode(&address.replace('\'', "''")))
    } else {
        format!("/{}", encode(address))
    };
    Ok(format!(
        "{}/users{user}/calendarView?startDateTime={}&endDateTime={}&$top={}",
        base.trim_end_matches('/'),
        encode(&time(start)?),
        encode(&time(end)?),
        top.clamp(1, 1000)
    ))
}

/// Percent-encode everything but RFC 3986's unreserved characters and `@` (allowed
/// in a path segment, and how Graph's own URLs write addresses).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One page: the events read, those that could not be read (with why), the ids a
/// delta page says are gone, and the link to follow.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<CalendarItem>,
    pub unreadable: Vec<ItemError>,
    pub removed: Vec<String>,
    /// The next page of this round.
    pub next_link: Option<String>,
    /// A delta round's end: the link for the next round.
    pub delta_link: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn not_json(detail: impl ToString) -> PageError {
    PageError::NotJson {
        detail: detail.to_string(),
    }
}

/// Read one calendarView or delta page (or the error Graph sent instead). One event
/// that cannot be read (a wrong type in it, say) is reported with its reason; the
/// rest of the page is still read.
pub fn parse_page(reply: &str) -> Result<Page, PageError> {
    if reply.len() > MAX_PAGE_BYTES {
        return Err(PageError::TooLarge { size: reply.len() });
    }
    let value: serde_json::Value = serde_json::from_str(reply).map_err(not_json)?;
    if !value.is_object() {
        return Err(not_json("a page is a JSON object"));
    }
    let raw: RawPage = serde_json::from_value(value).map_err(not_json)?;
    if let Some(error) = raw.error {
        return Err(PageError::Service {
            code: error.code,
            message: error.message,
        });
    }
    if raw.value.len() > MAX_PAGE_EVENTS {
        return Err(PageError::TooManyEvents {
            count: raw.value.len(),
        });
    }
    let mut page = Page {
        next_link: raw.next_link,
        delta_link: raw.delta_link,
        ..Page::default()
    };
    for entry in raw.value {
        read_entry(entry, &mut page);
    }
    Ok(page)
}

/// One entry of `value`: an item, a removal, or an event that cannot be read.
fn read_entry(entry: serde_json::Value, page: &mut Page) {
    let id = entry["id"].as_str().unwrap_or("").to_string();
    if entry.get("@removed").is_some() {
        if id.is_empty() {
            page.unreadable.push(ItemError {
                id,
                problem: "a removal without the id of what was removed".into(),
            });
        } else {
            page.removed.push(id);
        }
        return;
    }
    let event: GraphEvent = match serde_json::from_value(entry) {
        Ok(event) => event,
        Err(e) => {
            page.unreadable.push(ItemError {
                id,
                problem: format!("it is not an event as Graph writes one: {e}"),
            });
            return;
        }
    };
    match calendar_item(&event) {
        Ok(item) => page.items.push(item),
        Err(problem) => page.unreadable.push(problem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_url_is_encoded() {
        let url = calendar_view_url(
            "https://graph.microsoft.com/v1.0/",
            "kim+test user#EXT#@flexi.se",
            1_796_083_200,
            1_796_169_600,
            5000,
        )
        .unwrap();
        assert_eq!(
            url,
            "https://graph.microsoft.com/v1.0/users/kim%2Btest%20user%23EXT%23@flexi.se/calendarView?startDateTime=2026-12-01T00%3A00%3A00Z&endDateTime=2026-12-02T00%3A00%3A00Z&$top=1000"
        );
        let dollar = calendar_view_url("https://g/v1.0", "$kim'o@flexi.se", 0, 60, 10).unwrap();
        assert!(
            dollar.starts_with("https://g/v1.0/users('%24kim%27%27o@flexi.se')/calendarView?"),
            "{dollar}"
        );
        assert!(calendar_view_url("https://g", "kim@flexi.se", 60, 60, 10).is_err());
        assert!(calendar_view_url("https://g", "kim@flexi.se", 0, i64::MAX, 10).is_err());
    }

    #[test]
    fn one_bad_event_does_not_sink_the_page() {
        let page = parse_page(
            r#"{"value":[{"id":"a","subject":5},{"id":"b","start":{"dateTime":"2026-12-03T11:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-03T12:00:00","timeZone":"UTC"}},null,{"@removed":{"reason":"deleted"}},{"id":"c","@removed":{}}]}"#,
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.removed, ["c"]);
        let why: Vec<_> = page.unreadable.iter().map(|e| e.problem.as_str()).collect();
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].contains("not an event") && why[2].contains("removal without"));
    }

    #[test]
    fn errors_and_hostile_replies_are_refused_with_the_reason() {
        let gone = parse_page(r#"{"error":{"code":"SyncStateNotFound","message":"expired"}}"#)
            .unwrap_err();
        assert!(gone.restarts_delta(), "{gone}");
        let deep = format!(
            r#"{{"value":[{{"@removed":{}}}]}}"#,
            "[".repeat(10_000) + &"]".repeat(10_000)
        );
        assert!(matches!(parse_page(&deep), Err(PageError::NotJson { .. })));
        let huge = " ".repeat(MAX_PAGE_BYTES + 1);
        assert!(matches!(parse_page(&huge), Err(PageError::TooLarge { .. })));
        let many = format!(r#"{{"value":[{}{{}}]}}"#, "{},".repeat(MAX_PAGE_EVENTS));
        assert!(matches!(
            parse_page(&many),
            Err(PageError::TooManyEvents { .. })
        ));
        assert!(matches!(
            parse_page(r#"{"value":7}"#),
            Err(PageError::NotJson { .. })
        ));
        assert!(matches!(
            parse_page(r#"[[{}],null,null,null]"#),
            Err(PageError::NotJson { .. })
        ));
    }
}
