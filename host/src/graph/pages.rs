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
//! Every reply is read with a size cap ([`MAX_PAGE_BYTES`]); serde_json refuses
//! nesting deeper than 128 levels, so no reply can exhaust the stack.

use serde::Deserialize;

use super::event::{GraphEvent, calendar_item};
use crate::component::wit::CalendarItem;
use crate::ews::calendar::ItemError;

/// The Prefer header of every read: UTC times, text bodies, immutable ids.
pub const READ_PREFER: &str =
    r#"outlook.timezone="UTC", outlook.body-content-type="text", IdType="ImmutableId""#;

/// The largest page read: 1000 events of a few kilobytes each, with room to spare.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// Why a Graph reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("the Graph reply is {size} bytes, more than the {MAX_PAGE_BYTES} Calvert reads")]
    TooLarge { size: usize },
    #[error("the Graph reply is not the JSON Calvert expects: {detail}")]
    NotJson { detail: String },
    #[error("Graph answered {code}: {message}")]
    Service { code: String, message: String },
}

impl PageError {
    /// Whether the delta state is gone and a full round must start again.
    pub fn restarts_delta(&self) -> bool {
        matches!(self, PageError::Service { code, .. } if code == "syncStateNotFound" || code == "resyncRequired")
    }
}

/// The calendarView URL for `address`'s default calendar over [start, end)
/// (seconds since 1970), `top` events a page (1..=1000).
pub fn calendar_view_url(base: &str, address: &str, start: i64, end: i64, top: u32) -> String {
    let time = |at: i64| {
        jiff::Timestamp::from_second(at)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    };
    let mut url = format!(
        "{}/users/{}/calendarView?",
        base.trim_end_matches('/'),
        form_urlencoded::byte_serialize(address.as_bytes()).collect::<String>()
    );
    url.push_str(
        &form_urlencoded::Serializer::new(String::new())
            .append_pair("startDateTime", &time(start))
            .append_pair("endDateTime", &time(end))
            .append_pair("$top", &top.clamp(1, 1000).to_string())
            .finish(),
    );
    url
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
    value: Vec<GraphEvent>,
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

/// Read one calendarView or delta page (or the error Graph sent instead).
pub fn parse_page(reply: &str) -> Result<Page, PageError> {
    if reply.len() > MAX_PAGE_BYTES {
        return Err(PageError::TooLarge { size: reply.len() });
    }
    let raw: RawPage = serde_json::from_str(reply).map_err(|e| PageError::NotJson {
        detail: e.to_string(),
    })?;
    if let Some(error) = raw.error {
        return Err(PageError::Service {
            code: error.code,
            message: error.message,
        });
    }
    let mut page = Page {
        next_link: raw.next_link,
        delta_link: raw.delta_link,
        ..Page::default()
    };
    for event in &raw.value {
        match (&event.removed, &event.id) {
            (Some(_), Some(id)) => page.removed.push(id.clone()),
            (Some(_), None) => {}
            (None, _) => match calendar_item(event) {
                Ok(item) => page.items.push(item),
                Err(problem) => page.unreadable.push(problem),
            },
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_url_is_encoded() {
        let url = calendar_view_url(
            "https://graph.microsoft.com/v1.0/",
            "kim+test@flexi.se",
            1_796_083_200,
            1_796_169_600,
            5000,
        );
        assert_eq!(
            url,
            "https://graph.microsoft.com/v1.0/users/kim%2Btest%40flexi.se/calendarView?startDateTime=2026-12-01T00%3A00%3A00Z&endDateTime=2026-12-02T00%3A00%3A00Z&%24top=1000"
        );
    }

    #[test]
    fn errors_and_hostile_replies_are_refused_with_the_reason() {
        let gone = parse_page(r#"{"error":{"code":"syncStateNotFound","message":"expired"}}"#)
            .unwrap_err();
        assert!(gone.restarts_delta(), "{gone}");
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(matches!(parse_page(&deep), Err(PageError::NotJson { .. })));
        let huge = " ".repeat(MAX_PAGE_BYTES + 1);
        assert!(matches!(parse_page(&huge), Err(PageError::TooLarge { .. })));
        assert!(matches!(
            parse_page(r#"{"value":7}"#),
            Err(PageError::NotJson { .. })
        ));
    }
}
