//! Accounts while the service runs: `GET /accounts` (the page), `POST /accounts`
//! (its form) and `GET|POST /api/accounts` (the same for scripts). Only an
//! administrator may add one; a changed account's sessions end.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::access::Principal;
use super::accounts::{self, AccountError};
use crate::service::clock::wall_clock;
use crate::service::state::Service;
use crate::store::Role;

#[derive(Deserialize)]
pub struct NewAccount {
    name: String,
    role: String,
    password: String,
    #[serde(default)]
    replace: Option<String>,
}

#[derive(Serialize)]
struct AccountView {
    name: String,
    role: &'static str,
    created: String,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    who: super::pages::Who,
    section: &'static str,
    accounts: Vec<AccountView>,
    message: Option<String>,
    error: Option<String>,
}

fn views(service: &Service) -> Result<Vec<AccountView>, String> {
    let accounts = service
        .adapters
        .store
        .accounts()
        .map_err(|e| e.to_string())?;
    Ok(accounts
        .into_iter()
        .map(|a| AccountView {
            name: a.name,
            role: a.role.name(),
            created: crate::diversion::utc(a.created),
        })
        .collect())
}

/// Check, hash (off the async workers), store and audit a new account.
async fn add(
    service: &Service,
    principal: &Principal,
    new: NewAccount,
) -> Result<String, AccountError> {
    let role: Role = new.role.parse().map_err(|_| AccountError::BadRole {
        role: new.role.clone(),
    })?;
    let replace = new.replace.is_some_and(|r| r == "on" || r == "true");
    if !replace && service.adapters.store.account(&new.name)?.is_some() {
        return Err(AccountError::Exists { name: new.name });
    }
    let (name, password, now) = (new.name, new.password, wall_clock());
    let account = tokio::task::spawn_blocking(move || accounts::make(&name, role, &password, now))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))??;
    service.adapters.store.put_account(&account)?;
    service.admin.sessions.close_all_of(&account.name);
    let what = format!(
        "{} the account {} ({})",
        if replace { "replaced" } else { "made" },
        account.name,
        account.role.name()
    );
    service.adapters.store.audit(now, &principal.name, &what)?;
    Ok(what)
}

/// `GET /accounts`
pub async fn page(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    render(&service, &principal, StatusCode::OK, None, None)
}

/// `POST /accounts` (the page's form)
pub async fn submit(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    axum::Form(new): axum::Form<NewAccount>,
) -> Response {
    match add(&service, &principal, new).await {
        Ok(what) => render(&service, &principal, StatusCode::OK, Some(what), None),
        Err(error) => render(
            &service,
            &principal,
            StatusCode::BAD_REQUEST,
            None,
            Some(error.to_string()),
        ),
    }
}

fn render(
    service: &Service,
    principal: &Principal,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let (accounts, error) = match views(service) {
        Ok(list) => (list, error),
        Err(e) => (Vec::new(), Some(e)),
    };
    let page = AccountsPage {
        who: super::pages::Who::from(principal),
        section: "accounts",
        accounts,
        message,
        error,
    };
    match page.render() {
        Ok(text) => (status, Html(text)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /api/accounts`: names, roles, when made (never a hash).
pub async fn list(State(service): State<Arc<Service>>) -> Response {
    match views(&service) {
        Ok(list) => Json(list).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// `POST /api/accounts` with `name`, `role`, `password` (JSON or a form).
pub async fn create(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let parsed: Result<NewAccount, String> = if json {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    } else {
        serde_urlencoded_form(&body)
    };
    let new = match parsed {
        Ok(new) => new,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("send name, role and password: {e}\n"),
            )
                .into_response();
        }
    };
    match add(&service, &principal, new).await {
        Ok(what) => Json(serde_json::json!({"done": what})).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
    }
}

fn serde_urlencoded_form(body: &[u8]) -> Result<NewAccount, String> {
    let field = |name: &str| {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let required = |name: &str| field(name).ok_or_else(|| format!("{name} is missing"));
    Ok(NewAccount {
        name: required("name")?,
        role: required("role")?,
        password: required("password")?,
        replace: field("replace"),
    })
}
