//! Streaming notifications: GetStreamingEvents holds its connection open and writes
//! one envelope after another: `ConnectionStatus` OK at once, the events of its
//! subscriptions as they come, a keep-alive every heartbeat interval while idle, an
//! error envelope for an expired subscription, and `ConnectionStatus` Closed at the
//! end of its lifetime.

use std::fmt::Write as _;
use std::sync::MutexGuard;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;

use crate::directory::{Directory, StreamTiming};
use crate::exchange::Exchange;
use crate::wire::{MESSAGES, Parsed, TYPES, envelope, event_xml, xml_reply};

/// A chunk of the held reply.
type Chunk = Result<String, std::convert::Infallible>;

/// GetStreamingEvents: the held connection, or ErrorSubscriptionNotFound when a
/// subscription named is unknown (or none is named). With `drop_stream` the
/// connection ends in the middle of its first envelope.
pub(crate) fn get_streaming_events(
    exchange: &Exchange,
    directory: MutexGuard<'_, Directory>,
    parsed: &Parsed,
    drop_stream: bool,
) -> Response {
    let ids = parsed.subscription_ids.clone();
    let unknown = ids
        .iter()
        .any(|id| !directory.subscriptions.contains_key(id));
    if unknown || ids.is_empty() {
        return xml_reply(
            StatusCode::OK,
            streaming_error("ErrorSubscriptionNotFound", &ids),
        );
    }
    let timing = directory.stream_timing;
    let marks: Vec<u64> = ids.iter().map(|_| directory.next_watermark).collect();
    drop(directory);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Chunk>(16);
    let stream = Stream {
        exchange: exchange.clone(),
        ids,
        marks,
        timing,
    };
    tokio::spawn(stream.write(sender, drop_stream));
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn streaming_envelope(inner: &str) -> String {
    envelope(&format!(
        r#"<m:GetStreamingEventsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{inner}</m:ResponseMessages></m:GetStreamingEventsResponse>"#
    ))
}

fn streaming_error(code: &str, ids: &[String]) -> String {
    let ids: String = ids
        .iter()
        .map(|id| format!("<m:SubscriptionId>{}</m:SubscriptionId>", escape(id)))
        .collect();
    streaming_envelope(&format!(
        r#"<m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText>{code}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ErrorSubscriptionIds>{ids}</m:ErrorSubscriptionIds><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage>"#
    ))
}

/// A successful envelope with `inner` in its response message.
fn streaming_ok(inner: &str) -> String {
    streaming_envelope(&format!(
        r#"<m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:GetStreamingEventsResponseMessage>"#
    ))
}

/// One held connection: its subscriptions and the newest event sent of each.
struct Stream {
    exchange: Exchange,
    ids: Vec<String>,
    marks: Vec<u64>,
    timing: StreamTiming,
}

impl Stream {
    /// Write envelopes to `sender` until the lifetime ends or the client goes.
    async fn write(mut self, sender: Sender<Chunk>, drop_stream: bool) {
        let deadline = Instant::now() + self.timing.lifetime;
        let keep_alive = streaming_ok("<m:ConnectionStatus>OK</m:ConnectionStatus>");
        if drop_stream {
            let half = keep_alive.get(..keep_alive.len() / 2).unwrap_or_default();
            let _ = sender.send(Ok(half.to_string())).await;
            return;
        }
        if sender.send(Ok(keep_alive.clone())).await.is_err() {
            return;
        }
        let mut last_sent = Instant::now();
        let mut reported_expired = vec![false; self.ids.len()];
        while Instant::now() < deadline {
            let (notifications, expired) = self.fresh(&mut reported_expired);
            let envelope = if !expired.is_empty() {
                Some(streaming_error("ErrorExpiredSubscription", &expired))
            } else if !notifications.is_empty() {
                Some(streaming_ok(&format!(
                    "<m:Notifications>{notifications}</m:Notifications>"
                )))
            } else if last_sent.elapsed() >= self.timing.heartbeat {
                Some(keep_alive.clone())
            } else {
                None
            };
            if let Some(envelope) = envelope {
                if sender.send(Ok(envelope)).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
            tokio::time::sleep(
                self.timing
                    .tick
                    .min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        let _ = sender
            .send(Ok(streaming_ok(
                "<m:ConnectionStatus>Closed</m:ConnectionStatus>",
            )))
            .await;
    }

    /// The Notification elements of the events not sent yet, and the subscriptions
    /// that expired since the last look (each reported once).
    fn fresh(&mut self, reported_expired: &mut [bool]) -> (String, Vec<String>) {
        let mut notifications = String::new();
        let mut expired = Vec::new();
        let directory = self.exchange.lock();
        for ((id, mark), reported) in self
            .ids
            .iter()
            .zip(self.marks.iter_mut())
            .zip(reported_expired.iter_mut())
        {
            let Some(subscription) = directory.subscriptions.get(id) else {
                continue;
            };
            if subscription.expired {
                if !*reported {
                    *reported = true;
                    expired.push(id.clone());
                }
                continue;
            }
            // Events are in number order: skip what was sent without a scan.
            let start = subscription.events.partition_point(|(n, _, _)| *n <= *mark);
            let fresh = subscription.events.get(start..).unwrap_or_default();
            if fresh.is_empty() {
                continue;
            }
            let _ = write!(
                notifications,
                "<m:Notification><t:SubscriptionId>{}</t:SubscriptionId>",
                escape(id)
            );
            for (n, kind, item) in fresh {
                *mark = *n;
                notifications.push_str(&event_xml(*n, kind, item));
            }
            notifications.push_str("</m:Notification>");
        }
        (notifications, expired)
    }
}
