//! Subscriptions: Subscribe (pull, streaming and push; the simulator keeps no
//! history, so a subscription sees what happens after it) and GetEvents, which
//! hands a pull subscription its events after a watermark.

use std::fmt::Write as _;
use std::sync::MutexGuard;

use axum::http::StatusCode;
use axum::response::Response;
use quick_xml::escape::escape;

use crate::directory::Directory;
use crate::exchange::Exchange;
use crate::push::push_notifications;
use crate::wire::{
    MESSAGES, Parsed, TYPES, envelope, event_xml, fault, watermark, watermark_number, xml_reply,
};

/// A SubscribeResponse with the new subscription's id (and its watermark, if the
/// kind of subscription has one).
fn subscribed(id: &str, start: Option<u64>) -> Response {
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:SubscribeResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>{}</m:SubscriptionId>{}</m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse>"#,
            escape(id),
            match start {
                None => String::new(),
                Some(start) => format!("<m:Watermark>{}</m:Watermark>", watermark(start)),
            }
        )),
    )
}

/// Subscribe with a PushSubscriptionRequest: the events go to its URL from a task
/// of their own.
pub(crate) fn subscribe_push(
    exchange: &Exchange,
    mut directory: MutexGuard<'_, Directory>,
    mailbox: &str,
    parsed: &Parsed,
) -> Response {
    let Some(url) = parsed.push_url.clone() else {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorInvalidPushSubscriptionUrl",
                "The URL is missing.",
                None,
            ),
        );
    };
    let (id, start) = directory.subscribe(mailbox);
    let tick = directory.stream_timing.tick;
    drop(directory);
    tokio::spawn(push_notifications(
        exchange.clone(),
        id.clone(),
        url,
        start,
        tick,
    ));
    subscribed(&id, Some(start))
}

/// Subscribe with a pull or streaming request (a streaming one has no watermark).
pub(crate) fn subscribe(directory: &mut Directory, mailbox: &str, streaming: bool) -> Response {
    let (id, start) = directory.subscribe(mailbox);
    subscribed(&id, (!streaming).then_some(start))
}

/// A GetEventsResponse that failed with `code`.
fn events_error(code: &str, text: &str) -> Response {
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:GetEventsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>"#
        )),
    )
}

/// GetEvents: the events of `mailbox`'s subscription after the watermark given, or a
/// StatusEvent when there are none.
pub(crate) fn get_events(directory: &Directory, mailbox: &str, parsed: &Parsed) -> Response {
    let id = parsed.subscription_id.clone().unwrap_or_default();
    let after = parsed
        .watermark
        .as_deref()
        .and_then(watermark_number)
        .unwrap_or(0);
    let Some(subscription) = directory
        .subscriptions
        .get(&id)
        .filter(|s| s.mailbox == mailbox)
    else {
        return events_error(
            "ErrorSubscriptionNotFound",
            "The specified subscription was not found.",
        );
    };
    if subscription.expired {
        return events_error("ErrorExpiredSubscription", "The subscription has expired.");
    }
    let mut events = String::new();
    let mut last = after;
    for (n, kind, item) in subscription.events.iter().filter(|(n, _, _)| *n > after) {
        last = *n;
        events.push_str(&event_xml(*n, kind, item));
    }
    if events.is_empty() {
        let _ = write!(
            events,
            "<t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>",
            watermark(last)
        );
    }
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:GetEventsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>{events}</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>"#,
            escape(&id),
            watermark(after)
        )),
    )
}

/// Unsubscribe: the pull or push subscription named ends (another mailbox's, or
/// none, is ErrorSubscriptionNotFound).
pub(crate) fn unsubscribe(directory: &mut Directory, mailbox: &str, parsed: &Parsed) -> Response {
    let id = parsed.subscription_id.clone().unwrap_or_default();
    let known = directory
        .subscriptions
        .get(&id)
        .is_some_and(|s| s.mailbox == mailbox);
    let message = if known {
        directory.subscriptions.remove(&id);
        r#"<m:UnsubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:UnsubscribeResponseMessage>"#.to_string()
    } else {
        r#"<m:UnsubscribeResponseMessage ResponseClass="Error"><m:MessageText>The specified subscription was not found.</m:MessageText><m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:UnsubscribeResponseMessage>"#.to_string()
    };
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:UnsubscribeResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{message}</m:ResponseMessages></m:UnsubscribeResponse>"#
        )),
    )
}
