//! The admin port: the administration's pages and its JSON API, `/health` and
//! `/metrics`. Open: `/health`, `/metrics`, `/login`, `/assets/…`; everything else
//! behind [`access::guard`] (a session or the admin token; docs/admin-api.md).
//!
//! One file per job: [`access`] (who may), [`sessions`] and [`login_limit`] (logins),
//! [`accounts`] (passwords), `account_pages` (accounts while running), [`login`] (the login page), [`pages`] (the HTML),
//! [`api`] (the JSON), [`users`] (the user list), [`why`] (the decision record and
//! the diversions to come), [`route_tester`] (which server serves an address),
//! [`servers`] (the servers and Test connection), `config_api` and `config_pages` (live edits of trigger words, the policy, rules
//! and integration ids), `import_pages` (bulk activation from a spreadsheet).
//! Every connection is bounded by the listener's limits ([`crate::listener`]).

pub mod access;
mod account_pages;
pub mod accounts;
mod api;
mod config_api;
mod config_pages;
mod import_pages;
mod login;
pub mod login_limit;
mod pages;
pub mod route_tester;
mod server_fields;
mod server_pages;
mod servers;
pub mod sessions;
mod users;
mod why;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ServiceError;
use super::state::Service;
use crate::component::wit::StatusEvent;
use crate::store::{Role, Status};
use access::Principal;

/// What the administration keeps in memory: who is logged in, who failed to.
#[derive(Default)]
pub struct AdminState {
    pub sessions: sessions::Sessions,
    pub logins: Mutex<login_limit::LoginLimit>,
}

pub(super) async fn serve(service: Arc<Service>, listener: tokio::net::TcpListener) {
    let mut stop = service.shutdown.subscribe();
    let app = router(service.clone());
    let limits = service.config().listener_limits;
    let tls = service
        .config()
        .admin_tls
        .as_ref()
        .map(|t| t.acceptor().clone());
    let refused = service.metrics.refused_connections("admin");
    crate::listener::serve(listener, app, limits, refused, tls, async move {
        stop.recv().await
    })
    .await;
}

fn router(service: Arc<Service>) -> axum::Router {
    let guarded = axum::Router::new()
        .route("/", get(pages::home))
        .route("/users", get(pages::users))
        .route(
            "/users/import",
            get(import_pages::page)
                .post(import_pages::submit)
                .layer(DefaultBodyLimit::max(access::MAX_UPLOAD)),
        )
        .route(
            "/api/users/import",
            post(import_pages::api).layer(DefaultBodyLimit::max(access::MAX_UPLOAD)),
        )
        .route("/users/{address}", get(pages::user))
        .route("/users/{address}/{action}", post(pages::act))
        .route("/restart", post(pages::restart_many))
        .route("/rules", get(pages::rules))
        .route("/rules/{what}", post(config_pages::edit_rules))
        .route("/servers", get(servers::page))
        .route("/servers/{name}/test", post(servers::test_page))
        .route("/servers/{what}", post(server_pages::edit))
        .route("/api/servers", get(servers::list))
        .route("/api/servers/{name}/test", post(servers::test_api))
        .route("/triggers", get(config_pages::triggers))
        .route("/triggers/{what}", post(config_pages::edit_triggers))
        .route(
            "/users/{address}/integration-id",
            post(config_pages::integration_id),
        )
        .route("/users/{address}/edit", post(config_pages::edit_user))
        .route("/api/users/{address}/edit", post(config_api::edit_user))
        .route("/connections", get(pages::connections))
        .route("/audit", get(pages::audit))
        .route(
            "/accounts",
            get(account_pages::page).post(account_pages::submit),
        )
        .route(
            "/api/accounts",
            get(account_pages::list).post(account_pages::create),
        )
        .route("/logout", post(login::logout))
        .route("/api/me", get(api::me))
        .route("/api/users", get(api::users))
        .route("/api/users/restart", post(api::restart_many))
        .route("/api/users/{address}/why", get(api::user_why))
        .route("/api/users/{address}/upcoming", get(api::user_upcoming))
        .route("/api/users/{address}/{action}", post(api::act))
        .route(
            "/api/users/{address}/integration-id",
            post(config_api::integration_id),
        )
        .route("/api/config/export", get(config_api::export))
        .route("/api/config/{what}", post(config_api::edit))
        .route("/api/route", get(api::route))
        .route("/api/connections", get(api::connections))
        .route("/api/audit", get(api::audit))
        .route_layer(axum::middleware::from_fn_with_state(
            service.clone(),
            access::guard,
        ));
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/login", get(login::page).post(login::submit))
        .route("/assets/htmx.min.js", get(pages::htmx))
        .route("/assets/calvert.css", get(pages::css))
        .merge(guarded)
        .with_state(service)
}

async fn health(axum::extract::State(service): axum::extract::State<Arc<Service>>) -> Response {
    service.refresh_gauges();
    // The statuses users have (none listed at zero).
    let by_status: serde_json::Map<String, serde_json::Value> = service
        .users_by_status()
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(status, count)| (status.to_string(), serde_json::Value::from(count)))
        .collect();
    let mailboxes = service.mailboxes.all();
    let restarting: Vec<&str> = mailboxes
        .iter()
        .filter(|m| m.restarting.load(Ordering::Relaxed))
        .map(|m| m.address.as_str())
        .collect();
    let panics: u64 = mailboxes
        .iter()
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

async fn metrics(axum::extract::State(service): axum::extract::State<Arc<Service>>) -> Response {
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

/// What an administrator does to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    Activate,
    Passivate,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "restart" => Some(Action::Restart),
            "activate" => Some(Action::Activate),
            "passivate" => Some(Action::Passivate),
            _ => None,
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Restart => "restarted",
            Action::Activate => "activated",
            Action::Passivate => "passivated",
        }
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

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::UnknownUser { .. } => StatusCode::NOT_FOUND,
            AdminError::Refused(ServiceError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Refused(_) => StatusCode::CONFLICT,
        };
        (status, format!("{self}\n")).into_response()
    }
}

/// Apply an administrator's action (as the service itself) and wake the user's tasks.
pub(super) fn administer(
    service: &Service,
    address: &str,
    event: StatusEvent,
) -> Result<Status, AdminError> {
    let mailbox = find(service, address)?;
    let status = service.status_event(address, event)?;
    tracing::info!(mailbox = %address, status = status.name(), "administrator changed the status");
    mailbox.wake.notify_one();
    mailbox.deliver.notify_one();
    Ok(status)
}

/// Apply `action` for `principal`, and write it to the audit log.
pub(super) fn administer_as(
    service: &Service,
    principal: &Principal,
    address: &str,
    action: Action,
) -> Result<Status, AdminError> {
    let mailbox = find(service, address)?;
    let event = match action {
        Action::Restart => StatusEvent::Restart,
        Action::Passivate => StatusEvent::Passivate,
        Action::Activate => StatusEvent::Activate(mailbox.user().integration_id.clone()),
    };
    let status = administer(service, address, event)?;
    let what = format!("{} {}", action.done(), mailbox.address);
    service
        .adapters
        .store
        .audit(super::clock::wall_clock(), &principal.name, &what)
        .map_err(ServiceError::from)?;
    Ok(status)
}

fn find(service: &Service, address: &str) -> Result<Arc<super::state::Mailbox>, AdminError> {
    service
        .mailboxes
        .get(address)
        .ok_or_else(|| AdminError::UnknownUser {
            address: address.to_string(),
        })
}

/// The service itself, as a principal (first-start account, actions from the API of
/// [`super::ServiceHandle`]).
pub fn service_principal() -> Principal {
    Principal {
        name: "calvert".into(),
        role: Role::Administrator,
        csrf: None,
    }
}
