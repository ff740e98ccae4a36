//! The admin port: `/health`, `/metrics`, and the administrator's view of users.
//!
//! - `GET /health` → `{"status":"ok","mailboxes":{…by status},"outbox":n,
//!   "tasks":{"restarting":[addresses],"panics":n}}`; `"degraded"` while a mailbox's
//!   task that panicked waits to be restarted
//! - `GET /metrics` → Prometheus text
//! - `GET /users?q=kim` → users whose address contains `q`, with status, reason,
//!   the live connection (subscription, watermark, last sync) and the diversion last
//!   applied (never a subject)
//! - `POST /users/{address}/restart|activate|passivate` → the new status, or 409
//!   with the reason the state machine refuses (semantics §8)
//!
//! `/users` and the POSTs need the admin token and a `Host` of this port
//! ([`super::admin_access`]); every connection is bounded by the listener's limits
//! ([`crate::listener`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::ServiceError;
use super::admin_access;
use super::state::Service;
use super::status_text;
use crate::component::wit::StatusEvent;
use crate::store::Status;

pub(super) async fn serve(service: Arc<Service>, listener: tokio::net::TcpListener) {
    let mut stop = service.shutdown.subscribe();
    let guarded = axum::Router::new()
        .route("/users", get(users))
        .route("/users/{address}/{action}", post(act))
        .route_layer(axum::middleware::from_fn_with_state(
            service.clone(),
            admin_access::guard,
        ));
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(guarded)
        .with_state(service.clone());
    let limits = service.config.listener_limits;
    let refused = service.metrics.refused_connections("admin");
    crate::listener::serve(
        listener,
        app,
        limits,
        refused,
        async move { stop.recv().await },
    )
    .await;
}

async fn health(State(service): State<Arc<Service>>) -> Response {
    service.refresh_gauges();
    // The statuses users have (none listed at zero).
    let by_status: serde_json::Map<String, serde_json::Value> = service
        .users_by_status()
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(status, count)| (status.to_string(), serde_json::Value::from(count)))
        .collect();
    let restarting: Vec<&str> = service
        .mailboxes
        .values()
        .filter(|m| m.restarting.load(Ordering::Relaxed))
        .map(|m| m.user.address.as_str())
        .collect();
    let panics: u64 = service
        .mailboxes
        .values()
        .map(|m| u64::from(m.panics.load(Ordering::Relaxed)))
        .sum();
    match service.adapters.store.outbox_depth() {
        Ok(depth) => Json(serde_json::json!({
            "status": if restarting.is_empty() { "ok" } else { "degraded" },
            "mailboxes": by_status,
            "outbox": depth,
            "tasks": {"restarting": restarting, "panics": panics},
        }))
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "failing", "reason": error.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    service.refresh_gauges();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        service.metrics.render(),
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

async fn users(State(service): State<Arc<Service>>, Query(search): Query<Search>) -> Response {
    let needle = search.q.unwrap_or_default().to_ascii_lowercase();
    let mut found = Vec::new();
    for (address, mailbox) in &service.mailboxes {
        if !address.contains(&needle) {
            continue;
        }
        // A record that cannot be read shows as in error, with the store's sentence.
        let record = match service.adapters.store.user(address) {
            Ok(record) => record.unwrap_or_default(),
            Err(error) => crate::store::UserRecord {
                status: Status::Error(error.to_string()),
                ..Default::default()
            },
        };
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
            pending_calls: service
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
    State(service): State<Arc<Service>>,
    Path((address, action)): Path<(String, String)>,
) -> Response {
    let event = match action.as_str() {
        "restart" => StatusEvent::Restart,
        "passivate" => StatusEvent::Passivate,
        "activate" => {
            let id = service
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
    match administer(&service, &address, event) {
        Ok(status) => Json(serde_json::json!({
            "address": address,
            "status": status_text(&status),
        }))
        .into_response(),
        Err(error @ AdminError::UnknownUser { .. }) => {
            (StatusCode::NOT_FOUND, format!("{error}\n")).into_response()
        }
        Err(error) => (StatusCode::CONFLICT, format!("{error}\n")).into_response(),
    }
}

/// Why an administrator's action was not applied.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unknown user {address}: add it to calvert.toml first")]
    UnknownUser { address: String },
    /// The state machine refuses the action (semantics §8), or the store failed.
    #[error("{0}")]
    Refused(#[from] ServiceError),
}

/// Apply an administrator's action and wake the user's tasks.
pub(super) fn administer(
    service: &Service,
    address: &str,
    event: StatusEvent,
) -> Result<Status, AdminError> {
    let Some(mailbox) = service.mailboxes.get(&address.to_ascii_lowercase()) else {
        return Err(AdminError::UnknownUser {
            address: address.to_string(),
        });
    };
    let status = service.status_event(address, event)?;
    tracing::info!(mailbox = %address, status = status.name(), "administrator changed the status");
    mailbox.wake.notify_one();
    mailbox.deliver.notify_one();
    Ok(status)
}
