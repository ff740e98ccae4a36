//! The Servers page's edits: an Exchange server or a telephony target added,
//! changed or removed (`POST /servers/{what}` with the fields of
//! `POST /api/config/{what}`), made live by [`Service::reconfigure`]. A password
//! field is always empty on the page: left empty, the password set stays.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::access::Principal;
use super::config_api::{edit_from, fields, problems_of};
use super::pages::html;
use super::servers::page_of;
use crate::config::TelephonyKind;
use crate::service::state::Service;

/// A telephony target as listed: its header names, never their values.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub name: String,
    pub kind: &'static str,
    pub url: Option<String>,
    pub reads_back: bool,
    pub headers: Vec<String>,
    pub timeout_ms: u128,
}

/// Every configured telephony target, by name.
pub fn targets(service: &Service) -> Vec<TargetView> {
    let mut list: Vec<TargetView> = service
        .config()
        .telephony
        .iter()
        .map(|t| {
            let (kind, url, reads_back, headers) = match &t.kind {
                TelephonyKind::Log => ("log", None, false, Vec::new()),
                TelephonyKind::Http {
                    url,
                    headers,
                    reads_back,
                } => (
                    "http",
                    Some(url.clone()),
                    *reads_back,
                    headers.iter().map(|(name, _)| name.clone()).collect(),
                ),
            };
            TargetView {
                name: t.name.clone(),
                kind,
                url,
                reads_back,
                headers,
                timeout_ms: t.timeout.as_millis(),
            }
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// `POST /servers/{what}`: `server`, `server-remove`, `target`, `target-remove`.
/// The page as it now is, or with the problems beside the forms (nothing changed).
pub async fn edit(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(what): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !matches!(
        what.as_str(),
        "server" | "server-remove" | "target" | "target-remove"
    ) {
        return (
            StatusCode::NOT_FOUND,
            "edits here: server, server-remove, target, target-remove\n",
        )
            .into_response();
    }
    let edit = fields(&headers, &body)
        .map_err(|p| vec![p])
        .and_then(|f| edit_from(&what, &f));
    let outcome = match edit {
        Ok(edit) => service
            .reconfigure(&edit, &principal.name)
            .await
            .map(|_| ())
            .map_err(|e| problems_of(&e)),
        Err(problems) => Err(problems),
    };
    match outcome {
        Ok(()) => html(StatusCode::OK, page_of(&service, &principal)),
        Err(problems) => {
            let mut page = page_of(&service, &principal);
            page.problems = problems;
            html(StatusCode::BAD_REQUEST, page)
        }
    }
}
