//! The JSON API under the pages, the same one scripts use (docs/admin-api.md). Every
//! route here is behind [`super::access::guard`].

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::access::Principal;
use super::route_tester::explain;
use super::users::{UserFilter, rows};
use super::{Action, AdminError, administer_as, why};
use crate::component::wit::Rule;
use crate::service::state::Service;
use crate::service::status_text;

/// `GET /api/me`: who is asking.
pub async fn me(Extension(principal): Extension<Principal>) -> Response {
    Json(serde_json::json!({"name": principal.name, "role": principal.role.name()})).into_response()
}

/// `GET /api/users?q=…&status=…`
pub async fn users(State(service): State<Arc<Service>>, RawQuery(query): RawQuery) -> Response {
    Json(rows(&service, &UserFilter::from_query(query.as_deref()))).into_response()
}

/// `POST /api/users/{address}/{action}`: restart, activate, passivate.
pub async fn act(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path((address, action)): Path<(String, String)>,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return (
            StatusCode::NOT_FOUND,
            "actions: restart, activate, passivate\n",
        )
            .into_response();
    };
    match administer_as(&service, &principal, &address, action) {
        Ok(status) => Json(serde_json::json!({
            "address": address,
            "status": status_text(&status),
        }))
        .into_response(),
        Err(error) => error.into_response(),
    }
}

/// `POST /api/users/restart` with `address=…&address=…`: many at once.
pub async fn restart_many(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Response {
    let addresses: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "address")
        .map(|(_, v)| v.into_owned())
        .collect();
    if addresses.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "name the users to restart: address=kim@flexi.se&address=…\n",
        )
            .into_response();
    }
    Json(restart_all(&service, &principal, &addresses)).into_response()
}

/// One restart's outcome.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub address: String,
    pub status: Option<String>,
    pub error: Option<String>,
}

pub fn restart_all(service: &Service, principal: &Principal, addresses: &[String]) -> Vec<Outcome> {
    addresses
        .iter()
        .map(
            |address| match administer_as(service, principal, address, Action::Restart) {
                Ok(status) => Outcome {
                    address: address.clone(),
                    status: Some(status_text(&status)),
                    error: None,
                },
                Err(error) => Outcome {
                    address: address.clone(),
                    status: None,
                    error: Some(error.to_string()),
                },
            },
        )
        .collect()
}

/// `GET /api/users/{address}/why`
pub async fn user_why(
    State(service): State<Arc<Service>>,
    Path(address): Path<String>,
) -> Response {
    let Some(mailbox) = service.mailboxes.get(&address) else {
        return AdminError::UnknownUser { address }.into_response();
    };
    let now = service.adapters.clock.now();
    match why::why(&service, &mailbox, now) {
        Ok(record) => Json(record).into_response(),
        Err(error) => AdminError::from(crate::service::ServiceError::from(error)).into_response(),
    }
}

#[derive(Deserialize)]
pub struct Days {
    days: Option<i64>,
}

/// `GET /api/users/{address}/upcoming?days=7`
pub async fn user_upcoming(
    State(service): State<Arc<Service>>,
    Path(address): Path<String>,
    axum::extract::Query(days): axum::extract::Query<Days>,
) -> Response {
    let Some(mailbox) = service.mailboxes.get(&address) else {
        return AdminError::UnknownUser { address }.into_response();
    };
    let days = days.days.unwrap_or(7).clamp(1, 31);
    let now = service.adapters.clock.now();
    match why::upcoming(&service, &mailbox, now, days) {
        Ok(list) => Json(list).into_response(),
        Err(error) => AdminError::from(crate::service::ServiceError::from(error)).into_response(),
    }
}

/// What the route tester is asked: an address, which rules (exchange or telephony),
/// and optionally a rule to try as if it were added.
#[derive(Debug, Deserialize)]
pub struct RouteQuestion {
    pub address: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
}

/// The rules a question is answered with, or a sentence naming the bad field.
pub fn question_rules(service: &Service, q: &RouteQuestion) -> Result<Vec<Rule>, String> {
    let mut rules = match q.kind.as_deref().unwrap_or("exchange") {
        "exchange" => service.config().rules.clone(),
        "telephony" => service.config().telephony_rules.clone(),
        other => return Err(format!("kind {other:?}: use exchange or telephony")),
    };
    let pattern = q.pattern.as_deref().map(str::trim).unwrap_or("");
    if !pattern.is_empty() {
        let server = q.server.as_deref().map(str::trim).unwrap_or("");
        if server.is_empty() {
            return Err("server: name the server the rule to try routes to".into());
        }
        let priority = match q.priority.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i32>()
                .map_err(|_| format!("priority: {text:?} is not a whole number"))?,
        };
        rules.push(Rule {
            server: server.to_string(),
            pattern: pattern.to_string(),
            priority,
        });
    }
    Ok(rules)
}

/// `GET /api/route?address=…[&kind=telephony][&server=…&pattern=…&priority=…]`
pub async fn route(
    State(service): State<Arc<Service>>,
    axum::extract::Query(q): axum::extract::Query<RouteQuestion>,
) -> Response {
    let rules = match question_rules(&service, &q) {
        Ok(rules) => rules,
        Err(problem) => return (StatusCode::BAD_REQUEST, format!("{problem}\n")).into_response(),
    };
    match service.with_core(|core| explain(core, q.address.trim(), &rules)) {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => AdminError::from(crate::service::ServiceError::from(error)).into_response(),
    }
}

/// `GET /api/connections`: per user, the live connection.
pub async fn connections(State(service): State<Arc<Service>>) -> Response {
    let all = UserFilter {
        statuses: super::users::STATUSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    };
    Json(rows(&service, &all)).into_response()
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<usize>,
}

/// `GET /api/audit?limit=100`: newest first.
pub async fn audit(
    State(service): State<Arc<Service>>,
    axum::extract::Query(limit): axum::extract::Query<Limit>,
) -> Response {
    match service
        .adapters
        .store
        .audit_log(limit.limit.unwrap_or(100).min(10_000))
    {
        Ok(entries) => Json(entries).into_response(),
        Err(error) => AdminError::from(crate::service::ServiceError::from(error)).into_response(),
    }
}
