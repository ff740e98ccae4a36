//! The pages that edit the configuration live: trigger words and the policy
//! (`/triggers`), adding and removing rules (`/rules`), and the integration id
//! edited in place on `/users`. Each form posts the same fields as the JSON API
//! ([`super::config_api`]); a refused edit shows its problems beside the form and
//! changes nothing; a made one shows the page as it now is.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::AdminError;
use super::access::Principal;
use super::config_api::{Fields, Problem, edit_from, fields, problems_of};
use super::pages::{RowPartial, RowView, Who, html, rules_page};
use super::users::row;
use crate::component::wit::{FreeBusy, Trigger};
use crate::config::edit::ConfigEdit;
use crate::config::user_edit::UserEdit;
use crate::service::state::Service;

/// The free/busy states a policy may divert on, as the file names them.
const STATES: [(&str, FreeBusy); 5] = [
    ("busy", FreeBusy::Busy),
    ("oof", FreeBusy::Oof),
    ("tentative", FreeBusy::Tentative),
    ("working-elsewhere", FreeBusy::WorkingElsewhere),
    ("free", FreeBusy::Free),
];

#[derive(Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    who: Who,
    section: &'static str,
    triggers: Vec<Trigger>,
    default_reason: String,
    oof_reason: String,
    states: Vec<(&'static str, bool)>,
    count_tentative: bool,
    default_event_type: String,
    /// Which form the problems are for (`trigger` or `policy`) and the fields typed.
    form: String,
    typed: Fields,
    problems: Vec<Problem>,
}

impl TriggersPage {
    fn typed(&self, key: &str) -> String {
        self.typed.get(key).cloned().unwrap_or_default()
    }
}

fn triggers_page(service: &Service, principal: &Principal) -> TriggersPage {
    let config = service.config();
    let policy = &config.policy;
    TriggersPage {
        who: Who::from(principal),
        section: "triggers",
        triggers: config.triggers.clone(),
        default_reason: policy.default_reason.clone(),
        oof_reason: policy.oof_reason.clone().unwrap_or_default(),
        states: STATES
            .iter()
            .map(|(name, state)| (*name, policy.divert_on.contains(state)))
            .collect(),
        count_tentative: policy.count_tentative_response,
        default_event_type: config.default_event_type.clone().unwrap_or_default(),
        form: String::new(),
        typed: Fields::new(),
        problems: Vec::new(),
    }
}

/// `GET /triggers`
pub async fn triggers(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    html(StatusCode::OK, triggers_page(&service, &principal))
}

/// An edit from a page's form, made; the problems when refused.
async fn make(
    service: &Arc<Service>,
    principal: &Principal,
    what: &str,
    fields: &Fields,
) -> Result<(), Vec<Problem>> {
    let edit = edit_from(what, fields)?;
    service
        .reconfigure(&edit, &principal.name)
        .await
        .map(|_| ())
        .map_err(|e| problems_of(&e))
}

fn form_fields(headers: &HeaderMap, body: &[u8]) -> Result<Fields, Vec<Problem>> {
    fields(headers, body).map_err(|p| vec![p])
}

/// A page form's edit `what`, made: the fields as typed (to show them again) and
/// whether it was made.
async fn make_from_form(
    service: &Arc<Service>,
    principal: &Principal,
    what: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Fields, Result<(), Vec<Problem>>) {
    match form_fields(headers, body) {
        Ok(fields) => {
            let outcome = make(service, principal, what, &fields).await;
            (fields, outcome)
        }
        Err(problems) => (Fields::new(), Err(problems)),
    }
}

/// `POST /triggers/{what}`: `trigger`, `trigger-remove`, `policy`,
/// `default-event-type`.
pub async fn edit_triggers(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(what): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !matches!(
        what.as_str(),
        "trigger" | "trigger-remove" | "policy" | "default-event-type"
    ) {
        return (
            StatusCode::NOT_FOUND,
            "edits here: trigger, trigger-remove, policy, default-event-type\n",
        )
            .into_response();
    }
    let (typed, outcome) = make_from_form(&service, &principal, &what, &headers, &body).await;
    match outcome {
        Ok(()) => Redirect::to("/triggers").into_response(),
        Err(problems) => {
            let mut page = triggers_page(&service, &principal);
            page.form = what;
            page.typed = typed;
            page.problems = problems;
            html(StatusCode::BAD_REQUEST, page)
        }
    }
}

/// `POST /rules/{what}`: `rule`, `rule-remove`.
pub async fn edit_rules(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(what): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !matches!(what.as_str(), "rule" | "rule-remove") {
        return (StatusCode::NOT_FOUND, "edits here: rule, rule-remove\n").into_response();
    }
    let (typed, outcome) = make_from_form(&service, &principal, &what, &headers, &body).await;
    match outcome {
        Ok(()) => Redirect::to("/rules").into_response(),
        Err(problems) => {
            let mut page = rules_page(&service, &principal, None);
            page.adding = typed;
            page.problems = problems;
            html(StatusCode::BAD_REQUEST, page)
        }
    }
}

/// `POST /users/{address}/integration-id`: the row again (with htmx), showing the
/// problem in the cell when refused; without htmx, the list.
pub async fn integration_id(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(mailbox) = service.mailboxes.get(&address) else {
        return AdminError::UnknownUser { address }.into_response();
    };
    let typed = form_fields(&headers, &body).unwrap_or_default();
    let edit = ConfigEdit::SetIntegrationId {
        address: mailbox.address.clone(),
        integration_id: typed.get("integration_id").cloned(),
    };
    let problem = match service.reconfigure(&edit, &principal.name).await {
        Ok(_) => None,
        Err(error) => Some(
            problems_of(&error)
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    if headers.get("hx-request").is_none() {
        return match problem {
            None => Redirect::to("/users").into_response(),
            Some(problem) => (StatusCode::BAD_REQUEST, format!("{problem}\n")).into_response(),
        };
    }
    let mut view = RowView::from(row(&service, &mailbox));
    if let Some(problem) = problem {
        view.id_typed = typed.get("integration_id").cloned();
        view.id_problem = Some(problem);
    }
    html(
        StatusCode::OK,
        RowPartial {
            who: Who::from(&principal),
            row: view,
        },
    )
}

/// The row's form: its cells as typed (empty removes the key).
pub fn user_edit(address: &str, fields: &Fields) -> ConfigEdit {
    let text = |key: &str| {
        fields
            .get(key)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    ConfigEdit::EditUser(UserEdit {
        address: address.to_string(),
        name: text("name"),
        company: text("company"),
        integration_id: text("integration_id"),
        telephony_id: text("telephony_id"),
        zone: text("zone"),
    })
}

/// `POST /users/{address}/edit`: the row's form; the user's page again, with the
/// problems by key when refused (nothing changed).
pub async fn edit_user(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(mailbox) = service.mailboxes.get(&address) else {
        return AdminError::UnknownUser { address }.into_response();
    };
    let problems = match form_fields(&headers, &body) {
        Ok(fields) => {
            let edit = user_edit(&mailbox.address, &fields);
            match service.reconfigure(&edit, &principal.name).await {
                Ok(_) => Vec::new(),
                Err(error) => problems_of(&error),
            }
        }
        Err(problems) => problems,
    };
    super::pages::user_page(&service, &principal, mailbox.address.clone(), problems)
}
