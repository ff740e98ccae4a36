//! Subscriptions and notifications: Subscribe replies, the events of GetEvents,
//! GetStreamingEvents and push `SendNotification`, the push answer, and the splitter
//! for a streaming connection's concatenated envelopes (brief §3).

use jiff::Timestamp;

use super::response::{EwsError, ResponseClass, body, response_messages};
use super::xml::{self, Element};
use super::{MESSAGES_NS, TYPES_NS};

pub use super::stream_split::StreamSplitter;

/// A new subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub subscription_id: String,
    /// Pull and push subscriptions start with a watermark; streaming ones do not.
    pub watermark: Option<String>,
}

/// Read a Subscribe reply.
pub fn parse_subscribe(reply: &str) -> Result<Subscribed, EwsError> {
    let root = xml::parse(reply)?;
    let message = response_messages(body(&root)?)?
        .into_iter()
        .next()
        .ok_or(EwsError::Unexpected {
            expected: "SubscribeResponseMessage",
        })?
        .into_result()?;
    let subscription_id = message
        .element
        .child_text(MESSAGES_NS, "SubscriptionId")
        .filter(|id| !id.is_empty())
        .ok_or(EwsError::Unexpected {
            expected: "SubscriptionId",
        })?
        .to_string();
    let watermark = message
        .element
        .child_text(MESSAGES_NS, "Watermark")
        .map(str::to_string);
    Ok(Subscribed {
        subscription_id,
        watermark,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Deleted,
    Modified,
    Moved,
    Copied,
    NewMail,
    FreeBusyChanged,
    /// A heartbeat: nothing changed, the watermark moves on.
    Status,
}

/// One event of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub watermark: Option<String>,
    pub at: Option<i64>,
    pub item_id: Option<String>,
    /// For moves and copies: the id the item had before.
    pub old_item_id: Option<String>,
}

/// One subscription's notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subscription_id: String,
    pub previous_watermark: Option<String>,
    pub more_events: bool,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Open,
    /// The server ends the streaming connection: open a new one.
    Closed,
}

/// What a GetEvents, GetStreamingEvents or push SendNotification message carried.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsReply {
    pub notifications: Vec<Notification>,
    pub connection: Option<ConnectionStatus>,
    /// Subscriptions the server reports as failed (not found, expired, missed events…),
    /// each with its error; they need a new subscription and a resync, even when the
    /// connection itself stays open.
    pub failed: Vec<(Vec<String>, EwsError)>,
}

fn event_kind(name: &str) -> Option<EventKind> {
    Some(match name {
        "CreatedEvent" => EventKind::Created,
        "DeletedEvent" => EventKind::Deleted,
        "ModifiedEvent" => EventKind::Modified,
        "MovedEvent" => EventKind::Moved,
        "CopiedEvent" => EventKind::Copied,
        "NewMailEvent" => EventKind::NewMail,
        "FreeBusyChangedEvent" => EventKind::FreeBusyChanged,
        "StatusEvent" => EventKind::Status,
        _ => return None,
    })
}

fn notification(element: &Element) -> Notification {
    let events = element
        .children
        .iter()
        .filter(|c| c.ns == TYPES_NS)
        .filter_map(|c| {
            let kind = event_kind(&c.name)?;
            Some(Event {
                kind,
                watermark: c.child_text(TYPES_NS, "Watermark").map(str::to_string),
                at: c
                    .child_text(TYPES_NS, "TimeStamp")
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .map(|t| t.as_second()),
                item_id: c
                    .child(TYPES_NS, "ItemId")
                    .and_then(|i| i.attr("Id"))
                    .map(str::to_string),
                old_item_id: c
                    .child(TYPES_NS, "OldItemId")
                    .and_then(|i| i.attr("Id"))
                    .map(str::to_string),
            })
        })
        .collect();
    Notification {
        subscription_id: element
            .child_text(TYPES_NS, "SubscriptionId")
            .unwrap_or("")
            .to_string(),
        previous_watermark: element
            .child_text(TYPES_NS, "PreviousWatermark")
            .map(str::to_string),
        more_events: element.child_text(TYPES_NS, "MoreEvents") == Some("true"),
        events,
    }
}

/// Read one GetEvents / GetStreamingEvents reply, or the body of a push
/// `SendNotification` request.
pub fn parse_events(reply: &str) -> Result<EventsReply, EwsError> {
    let root = xml::parse(reply)?;
    events_in(&root)
}

fn events_in(root: &Element) -> Result<EventsReply, EwsError> {
    let mut out = EventsReply {
        notifications: Vec::new(),
        connection: None,
        failed: Vec::new(),
    };
    for message in response_messages(body(root)?)? {
        if let Some(status) = message.element.child_text(MESSAGES_NS, "ConnectionStatus") {
            out.connection = Some(if status == "Closed" {
                ConnectionStatus::Closed
            } else {
                ConnectionStatus::Open
            });
        }
        let notifications = message
            .element
            .child(MESSAGES_NS, "Notifications")
            .map(|n| {
                n.children_named(MESSAGES_NS, "Notification")
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| {
                message
                    .element
                    .children_named(MESSAGES_NS, "Notification")
                    .collect()
            });
        out.notifications
            .extend(notifications.into_iter().map(notification));
        if message.class == ResponseClass::Error {
            let ids = message
                .element
                .child(MESSAGES_NS, "ErrorSubscriptionIds")
                .map(|ids| {
                    ids.children
                        .iter()
                        .map(|i| i.text.trim().to_string())
                        .collect()
                })
                .unwrap_or_default();
            if let Err(error) = message.into_result() {
                out.failed.push((ids, error));
            }
        }
    }
    Ok(out)
}

/// The answer to a push notification: keep the subscription, or end it.
pub fn send_notification_result(keep: bool) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="{MESSAGES_NS}"><soap:Body><m:SendNotificationResult><m:SubscriptionStatus>{}</m:SubscriptionStatus></m:SendNotificationResult></soap:Body></soap:Envelope>"#,
        if keep { "OK" } else { "Unsubscribe" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::XmlError;

    const ENVELOPE: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#;

    #[test]
    fn splits_concatenated_envelopes_across_chunk_boundaries() {
        let stream = format!("{ENVELOPE}{ENVELOPE}\r\n{ENVELOPE}");
        for chunk_size in [1, 7, 64, stream.len()] {
            let mut splitter = StreamSplitter::new(1 << 20);
            let mut seen = Vec::new();
            let bytes: Vec<char> = stream.chars().collect();
            for chunk in bytes.chunks(chunk_size) {
                seen.extend(splitter.push(&chunk.iter().collect::<String>()).unwrap());
            }
            assert_eq!(seen.len(), 3, "chunks of {chunk_size}");
            for envelope in &seen {
                assert_eq!(
                    parse_events(envelope).unwrap().connection,
                    Some(ConnectionStatus::Open)
                );
            }
            assert_eq!(splitter.pending(), 0);
        }
    }

    #[test]
    fn a_stream_that_never_completes_an_envelope_is_cut_off() {
        let mut splitter = StreamSplitter::new(100);
        assert!(splitter.push(&ENVELOPE[..90]).unwrap().is_empty());
        assert!(matches!(
            splitter.push(&ENVELOPE[90..200]),
            Err(XmlError::TooLarge { .. })
        ));
    }

    #[test]
    fn multi_byte_names_and_text_are_cut_only_between_characters() {
        let envelope = r#"<ä:Envelope xmlns:ä="urn:x">Möte – 5 €</ä:Envelope>"#;
        let stream = format!("<!-- Göteborg € -->{envelope}\r\n{envelope}");
        let boundaries: Vec<usize> = (0..=stream.len())
            .filter(|&at| stream.is_char_boundary(at))
            .collect();
        for &cut in &boundaries {
            let mut splitter = StreamSplitter::new(1 << 10);
            let (head, tail) = (&stream[..cut], &stream[cut..]);
            let mut seen = splitter.push(head).unwrap();
            seen.extend(splitter.push(tail).unwrap());
            assert_eq!(seen, [envelope, envelope], "cut at byte {cut}");
            assert_eq!(splitter.pending(), 0);
        }
    }
}
