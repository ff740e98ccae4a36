//! The push-notification listener: the "local web service address" of seed 000,
//! where Exchange POSTs `SendNotification` for push subscriptions. Each notification
//! goes to a channel; the answer says whether to keep the subscription.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc;

use super::notification::{Notification, parse_events, send_notification_result};

/// Decides, per subscription id, whether Calvert still wants its notifications.
pub type KeepSubscription = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
struct Listener {
    notifications: mpsc::Sender<Notification>,
    keep: KeepSubscription,
}

/// A running listener.
pub struct PushListener {
    pub addr: SocketAddr,
    /// The notifications as they arrive.
    pub notifications: mpsc::Receiver<Notification>,
    task: tokio::task::JoinHandle<()>,
}

impl PushListener {
    /// The URL to give Exchange in the push subscription.
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/ews/push", self.addr.port())
    }
}

impl Drop for PushListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listen on `addr` (`0.0.0.0:port` to be reachable by Exchange; TLS belongs to a
/// reverse proxy in front, as the "local web service SSL" setting says).
pub async fn listen(addr: SocketAddr, keep: KeepSubscription) -> std::io::Result<PushListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (sender, receiver) = mpsc::channel(1024);
    let app = Router::new()
        .route("/ews/push", post(notification))
        .with_state(Listener {
            notifications: sender,
            keep,
        });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(PushListener {
        addr,
        notifications: receiver,
        task,
    })
}

async fn notification(State(listener): State<Listener>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let reply = match parse_events(&text) {
        Ok(reply) => reply,
        // Not a notification Calvert can read: say so, keep nothing.
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut keep = true;
    for notification in reply.notifications {
        keep &= (listener.keep)(&notification.subscription_id);
        if listener.notifications.send(notification).await.is_err() {
            keep = false;
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        send_notification_result(keep),
    )
        .into_response()
}
