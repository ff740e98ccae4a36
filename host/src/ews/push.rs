//! The push-notification listener: the "local web service address" of seed 000,
//! where Exchange POSTs `SendNotification` for push subscriptions.
//!
//! Anyone who reaches the port could post, so every subscription is made with a
//! secret in its URL (`…/ews/push/<token>`, 128 random bits), and a POST is judged
//! before any work is done: an unknown token is refused without reading the XML;
//! a notification whose subscription is not the token's is refused and nothing of
//! the POST is passed on; a subscription Calvert no longer follows is answered
//! `Unsubscribe` and dropped. Only the rest reaches the channel.
//!
//! Connections are bounded by [`crate::listener`]: a limit, a header deadline, a
//! request deadline.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use super::notification::{Notification, parse_events, send_notification_result};
use crate::listener::Limits;

/// What to do with one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A live subscription of this token: pass it on, answer OK.
    Forward,
    /// The token is Calvert's but the subscription is no longer followed: drop it,
    /// answer Unsubscribe.
    Unsubscribe,
    /// The subscription belongs to another token (or none): refuse the whole POST.
    Forged,
}

/// The subscriptions a listener serves, and the secrets in their URLs.
pub trait PushSubscribers: Send + Sync {
    /// Whether `token` is one Calvert put in a push URL (checked before the body is read).
    fn knows(&self, token: &str) -> bool;
    /// What to do with a notification for `subscription_id` posted with `token`.
    fn verdict(&self, token: &str, subscription_id: &str) -> Verdict;
}

/// A fresh secret for a push URL: 128 random bits, as 32 hex digits.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Clone)]
struct Listener {
    notifications: mpsc::Sender<Notification>,
    subscribers: Arc<dyn PushSubscribers>,
}

/// A running listener.
pub struct PushListener {
    pub addr: SocketAddr,
    /// The notifications as they arrive.
    pub notifications: mpsc::Receiver<Notification>,
    task: tokio::task::JoinHandle<()>,
}

impl PushListener {
    /// The URL to give Exchange in a push subscription with secret `token`.
    pub fn url(&self, host: &str, token: &str) -> String {
        format!("http://{host}:{}/ews/push/{token}", self.addr.port())
    }
}

impl Drop for PushListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listen on `addr` (`0.0.0.0:port` to be reachable by Exchange; TLS belongs to a
/// reverse proxy in front, as the "local web service SSL" setting says), within the
/// default [`Limits`].
pub async fn listen(
    addr: SocketAddr,
    subscribers: Arc<dyn PushSubscribers>,
) -> std::io::Result<PushListener> {
    listen_within(addr, subscribers, Limits::default(), Counter::default()).await
}

/// [`listen`] within `limits`; connections refused at the limit are counted in
/// `refused`.
pub async fn listen_within(
    addr: SocketAddr,
    subscribers: Arc<dyn PushSubscribers>,
    limits: Limits,
    refused: Counter,
) -> std::io::Result<PushListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (sender, receiver) = mpsc::channel(1024);
    let app = Router::new()
        .route("/ews/push/{token}", post(notification))
        .with_state(Listener {
            notifications: sender,
            subscribers,
        });
    // Dropping the listener aborts the task, and with it every connection's task.
    let task = tokio::spawn(crate::listener::serve(
        listener,
        app,
        limits,
        refused,
        None,
        std::future::pending(),
    ));
    Ok(PushListener {
        addr,
        notifications: receiver,
        task,
    })
}

async fn notification(
    State(listener): State<Listener>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    if !listener.subscribers.knows(&token) {
        return (StatusCode::FORBIDDEN, "unknown push address\n").into_response();
    }
    let text = String::from_utf8_lossy(&body);
    let reply = match parse_events(&text) {
        Ok(reply) => reply,
        // Not a notification Calvert can read: say so, keep nothing.
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let verdicts: Vec<Verdict> = reply
        .notifications
        .iter()
        .map(|n| listener.subscribers.verdict(&token, &n.subscription_id))
        .collect();
    if verdicts.contains(&Verdict::Forged) {
        tracing::warn!("a push notification for another subscription was refused");
        return (StatusCode::FORBIDDEN, "not this address's subscription\n").into_response();
    }
    let mut keep = true;
    for (notification, verdict) in reply.notifications.into_iter().zip(verdicts) {
        let passed_on =
            verdict == Verdict::Forward && listener.notifications.send(notification).await.is_ok();
        keep &= passed_on;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        send_notification_result(keep),
    )
        .into_response()
}
