//! The admin port: `/health`, `/metrics`, and the administrator's view of users.
//!
//! - `GET /health` → `{"status":"ok","mailboxes":{…by status},"outbox":n}`
//! - `GET /metrics` → Prometheus text
//! - `GET /users?q=kim` → users whose address contains `q`, with status, reason,
//!   the live connection (subscription, watermark, last sync) and the diversion last
//!   applied (never a subject)
//! - `POST /users/{address}/restart|activate|passivate` → the new status, or 409
//!   with the reason the state machine refuses (semantics §8)

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::{Inner, status_text};
use crate::component::wit::StatusEvent;
use crate::store::Status;

pub(super) async fn serve(inner: Arc<Inner>, listener: tokio::net::TcpListener) {
    let mut stop = inner.stop.subscribe();
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/users", get(users))
        .route("/users/{address}/{action}", post(act))
        .with_state(inner);
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "admin listener failed");
    }
}

async fn health(State(inner): State<Arc<Inner>>) -> Response {
    inner.refresh_gauges();
    let mut by_status = serde_json::Map::new();
    for address in inner.mailboxes.keys() {
        let status = inner
            .adapters
            .store
            .user(address)
            .ok()
            .flatten()
            .map(|r| r.status)
            .unwrap_or_default();
        let count = by_status
            .entry(status.name())
            .or_insert(serde_json::Value::from(0u64));
        *count = serde_json::Value::from(count.as_u64().unwrap_or(0) + 1);
    }
    match inner.adapters.store.outbox_depth() {
        Ok(depth) => Json(serde_json::json!({
            "status": "ok",
            "mailboxes": by_status,
            "outbox": depth,
        }))
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "failing", "reason": error.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(inner): State<Arc<Inner>>) -> Response {
    inner.refresh_gauges();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        inner.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

#[derive(Serialize)]
struct UserView {
    address: String,
    status: &'static str,
    reason: Option<String>,
    last_sync: Option<String>,
    subscription: Option<String>,
    watermark: Option<String>,
    diversion: Option<String>,
    pending_calls: usize,
    exchange: Option<String>,
    telephony: Option<String>,
}

async fn users(State(inner): State<Arc<Inner>>, Query(search): Query<Search>) -> Response {
    let needle = search.q.unwrap_or_default().to_ascii_lowercase();
    let mut found = Vec::new();
    for (address, mailbox) in &inner.mailboxes {
        if !address.contains(&needle) {
            continue;
        }
        let record = inner
            .adapters
            .store
            .user(address)
            .ok()
            .flatten()
            .unwrap_or_default();
        found.push(UserView {
            address: mailbox.user.address.clone(),
            status: record.status.name(),
            reason: match &record.status {
                Status::Error(reason) => Some(reason.clone()),
                _ => None,
            },
            last_sync: record.last_sync.map(crate::diversion::utc),
            subscription: record.subscription_id,
            watermark: record.watermark,
            diversion: record
                .last_applied
                .map(|a| format!("{} until {}", a.reason, crate::diversion::utc(a.until))),
            pending_calls: inner
                .adapters
                .store
                .outbox(address)
                .map(|o| o.len())
                .unwrap_or(0),
            exchange: mailbox.user.exchange.clone(),
            telephony: mailbox.user.telephony.clone(),
        });
    }
    Json(found).into_response()
}

async fn act(
    State(inner): State<Arc<Inner>>,
    Path((address, action)): Path<(String, String)>,
) -> Response {
    let event = match action.as_str() {
        "restart" => StatusEvent::Restart,
        "passivate" => StatusEvent::Passivate,
        "activate" => {
            let id = inner
                .mailboxes
                .get(&address.to_ascii_lowercase())
                .and_then(|m| m.user.integration_id.clone());
            StatusEvent::Activate(id)
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "actions: restart, activate, passivate\n",
            )
                .into_response();
        }
    };
    match administer(&inner, &address, event) {
        Ok(status) => Json(serde_json::json!({
            "address": address,
            "status": status_text(&status),
        }))
        .into_response(),
        Err(reason) if reason.starts_with("unknown user") => {
            (StatusCode::NOT_FOUND, reason + "\n").into_response()
        }
        Err(reason) => (StatusCode::CONFLICT, reason + "\n").into_response(),
    }
}

/// Apply an administrator's action and wake the user's tasks.
pub(super) fn administer(
    inner: &Inner,
    address: &str,
    event: StatusEvent,
) -> Result<Status, String> {
    let Some(mailbox) = inner.mailboxes.get(&address.to_ascii_lowercase()) else {
        return Err(format!(
            "unknown user {address}: add it to calvert.toml first"
        ));
    };
    let status = inner
        .status_event(address, event)
        .map_err(|e| e.to_string())?;
    tracing::info!(mailbox = %address, status = status.name(), "administrator changed the status");
    mailbox.wake.notify_one();
    mailbox.deliver.notify_one();
    Ok(status)
}
