//! Push notifications: a push subscription's events POSTed to its URL as a
//! `SendNotification`, a StatusEvent when nothing else was sent for the status
//! interval; an answer of `Unsubscribe` (or a URL that keeps failing) ends the
//! subscription.

use std::time::Duration;

use axum::http::header;
use quick_xml::escape::escape;
use tokio::time::Instant;

use crate::exchange::Exchange;
use crate::wire::{MESSAGES, SOAP, TYPES, event_xml, watermark};

/// An event of a subscription: (watermark number, event name, item id).
type Event = (u64, &'static str, String);

/// Deliver subscription `id`'s events after watermark `mark` to `url`, looking for
/// new ones every `tick`, for as long as the subscription lives.
pub(crate) async fn push_notifications(
    exchange: Exchange,
    id: String,
    url: String,
    mut mark: u64,
    tick: Duration,
) {
    let http = reqwest::Client::new();
    let mut failures = 0;
    let mut last_sent = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let Some((events, status_every)) = fresh_events(&exchange, &id, mark) else {
            return;
        };
        // StatusFrequency: a StatusEvent when nothing else was sent for a while.
        if events.is_empty() && last_sent.elapsed() < status_every {
            continue;
        }
        let answer = http
            .post(&url)
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(notification(&id, mark, &events))
            .send()
            .await;
        let text = match answer {
            Ok(response) if response.status().is_success() => {
                response.text().await.unwrap_or_default()
            }
            _ => {
                failures += 1;
                if failures >= 3 {
                    exchange.lock().subscriptions.remove(&id);
                    return;
                }
                continue;
            }
        };
        failures = 0;
        last_sent = Instant::now();
        mark = events.last().map(|e| e.0).unwrap_or(mark);
        if text.contains(">Unsubscribe<") {
            exchange.lock().subscriptions.remove(&id);
            return;
        }
    }
}

/// The subscription's events after `mark` and the status interval; `None` when the
/// subscription is gone or expired (an expired push subscription goes quiet, as
/// Exchange's do).
fn fresh_events(exchange: &Exchange, id: &str, mark: u64) -> Option<(Vec<Event>, Duration)> {
    let directory = exchange.lock();
    let subscription = directory.subscriptions.get(id)?;
    if subscription.expired {
        return None;
    }
    let start = subscription.events.partition_point(|(n, _, _)| *n <= mark);
    let fresh = subscription
        .events
        .get(start..)
        .unwrap_or_default()
        .to_vec();
    Some((fresh, directory.stream_timing.heartbeat))
}

/// The SendNotification request for `events` after watermark `previous` (a
/// StatusEvent when there are none).
fn notification(id: &str, previous: u64, events: &[Event]) -> String {
    let mut body = String::new();
    if events.is_empty() {
        body = format!(
            "<t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>",
            watermark(previous)
        );
    }
    for (n, kind, item) in events {
        body.push_str(&event_xml(*n, kind, item));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header><t:RequestServerVersion xmlns:t="{TYPES}" Version="Exchange2016"/></s:Header><s:Body><m:SendNotification xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>{body}</m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></s:Body></s:Envelope>"#,
        escape(id),
        watermark(previous)
    )
}
