//! The administration's pages, rendered on the server (askama templates in
//! `host/templates/`, htmx from `host/assets/` for in-place updates). Every page works
//! without JavaScript: forms post and the answer is a page; with htmx, a row
//! updates in place.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::access::Principal;
use super::api::{RouteQuestion, question_rules, restart_all};
use super::config_api::{Fields, Problem};
use super::route_tester::{RouteAnswer, RuleView, explain};
use super::users::{STATUSES, UserFilter, UserRow, row, rows};
use super::why::{Upcoming, Why, upcoming, why};
use super::{Action, AdminError, administer_as};
use crate::service::ServiceError;
use crate::service::state::Service;
use crate::store::AuditEntry;

/// The htmx build the pages load (vendored: no node build step; 0BSD licence).
static HTMX: &str = include_str!("../../../assets/htmx-2.0.11.min.js");
static CSS: &str = include_str!("../../../assets/calvert.css");

/// Who is looking, as every page shows it.
pub(super) struct Who {
    pub name: String,
    pub role: &'static str,
    pub csrf: String,
    pub may_change: bool,
}

impl From<&Principal> for Who {
    fn from(p: &Principal) -> Self {
        Who {
            name: p.name.clone(),
            role: p.role.name(),
            csrf: p.csrf.clone().unwrap_or_default(),
            may_change: p.role.may_change(),
        }
    }
}

/// A user's row with what may be done to it.
pub(super) struct RowView {
    user: UserRow,
    /// Unique in the page (the address in hex).
    dom_id: String,
    actions: Vec<&'static str>,
    /// An integration id typed and refused, and why.
    pub id_typed: Option<String>,
    pub id_problem: Option<String>,
}

impl From<UserRow> for RowView {
    fn from(user: UserRow) -> Self {
        let actions = match user.status {
            "active" => vec!["passivate"],
            "error" => vec!["restart", "passivate"],
            _ => vec!["activate"],
        };
        RowView {
            dom_id: user.address.bytes().map(|b| format!("{b:02x}")).collect(),
            user,
            actions,
            id_typed: None,
            id_problem: None,
        }
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    who: Who,
    section: &'static str,
    filter: UserFilter,
    statuses: Vec<(&'static str, bool)>,
    rows: Vec<RowView>,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "user_row.html")]
pub(super) struct RowPartial {
    pub who: Who,
    pub row: RowView,
}

impl RowView {
    /// What the integration id field shows: what was typed when refused.
    fn id_value(&self) -> String {
        self.id_typed
            .clone()
            .or_else(|| self.user.integration_id.clone())
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    who: Who,
    section: &'static str,
    user: UserRow,
    why: Why,
    upcoming: Vec<Upcoming>,
    /// Why an edit of the row was refused.
    problems: Vec<Problem>,
}

/// The tester's fields as typed, to show them again.
#[derive(Default)]
struct QuestionView {
    address: String,
    kind: String,
    server: String,
    pattern: String,
    priority: String,
}

#[derive(Template)]
#[template(path = "rules.html")]
pub(super) struct RulesPage {
    who: Who,
    section: &'static str,
    question: QuestionView,
    answer: Option<RouteAnswer>,
    problem: Option<String>,
    tables: Vec<RuleTable>,
    /// A rule being added and refused: the fields typed, and the problems.
    pub adding: Fields,
    pub problems: Vec<Problem>,
}

impl RulesPage {
    fn adding(&self, key: &str) -> String {
        self.adding.get(key).cloned().unwrap_or_default()
    }

    /// Whether the refused rule was of this kind.
    fn adding_kind(&self, kind: &str) -> bool {
        !self.problems.is_empty() && self.adding.get("kind").map(String::as_str) == Some(kind)
    }
}

/// One kind of rules as listed, with where they may lead.
struct RuleTable {
    title: &'static str,
    kind: &'static str,
    rules: Vec<RuleView>,
    destinations: Vec<String>,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    who: Who,
    section: &'static str,
    groups: Vec<(String, Vec<UserRow>)>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    who: Who,
    section: &'static str,
    entries: Vec<(AuditEntry, String)>,
}

pub(super) fn html(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(text) => (status, Html(text)).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be made: {error}\n"),
        )
            .into_response(),
    }
}

pub async fn htmx() -> Response {
    asset("text/javascript; charset=utf-8", HTMX)
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub async fn home() -> Redirect {
    Redirect::to("/users")
}

/// `GET /users`
pub async fn users(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = UserFilter::from_query(query.as_deref());
    html(
        StatusCode::OK,
        users_page(&service, &principal, filter, None),
    )
}

fn users_page(
    service: &Service,
    principal: &Principal,
    filter: UserFilter,
    message: Option<String>,
) -> UsersPage {
    let shown = filter.shown();
    UsersPage {
        who: Who::from(principal),
        section: "users",
        statuses: STATUSES.iter().map(|s| (*s, shown.contains(*s))).collect(),
        rows: rows(service, &filter)
            .into_iter()
            .map(RowView::from)
            .collect(),
        filter,
        message,
    }
}

/// `POST /users/{address}/{action}`: with htmx the new row, else back to the list.
pub async fn act(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path((address, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return (
            StatusCode::NOT_FOUND,
            "actions: restart, activate, passivate\n",
        )
            .into_response();
    };
    if let Err(error) = administer_as(&service, &principal, &address, action) {
        return error.into_response();
    }
    if headers.get("hx-request").is_none() {
        return Redirect::to("/users").into_response();
    }
    let Some(mailbox) = service.mailboxes.get(&address) else {
        return AdminError::UnknownUser { address }.into_response();
    };
    let partial = RowPartial {
        who: Who::from(&principal),
        row: RowView::from(row(&service, &mailbox)),
    };
    html(StatusCode::OK, partial)
}

/// `POST /restart` with the selected users.
pub async fn restart_many(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Response {
    let addresses: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "address")
        .map(|(_, v)| v.into_owned())
        .collect();
    let outcomes = restart_all(&service, &principal, &addresses);
    let message = if outcomes.is_empty() {
        "Select the users to restart first.".to_string()
    } else {
        outcomes
            .iter()
            .map(|o| match &o.error {
                None => format!("{}: restarted", o.address),
                Some(error) => format!("{}: {error}", o.address),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let filter = UserFilter {
        statuses: ["active", "error"].iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    html(
        StatusCode::OK,
        users_page(&service, &principal, filter, Some(message)),
    )
}

/// `GET /users/{address}`
pub async fn user(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(address): Path<String>,
) -> Response {
    user_page(&service, &principal, address, Vec::new())
}

/// A user's page, with the problems of a refused edit of its row (400) if any.
pub(super) fn user_page(
    service: &Service,
    principal: &Principal,
    address: String,
    problems: Vec<Problem>,
) -> Response {
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let Some(mailbox) = service.mailboxes.get(&address) else {
        return AdminError::UnknownUser { address }.into_response();
    };
    let now = service.adapters.clock.now();
    let record =
        why(service, &mailbox, now).and_then(|w| Ok((w, upcoming(service, &mailbox, now, 7)?)));
    match record {
        Ok((why, upcoming)) => html(
            status,
            UserPage {
                who: Who::from(principal),
                section: "users",
                user: row(service, &mailbox),
                why,
                upcoming,
                problems,
            },
        ),
        Err(error) => AdminError::from(ServiceError::from(error)).into_response(),
    }
}

/// `GET /rules[?address=…]`: the rules, and the tester's answer when asked.
pub async fn rules(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Response {
    html(
        StatusCode::OK,
        rules_page(&service, &principal, query.as_deref()),
    )
}

/// The rules page, answering the tester's `query` when it asks.
pub(super) fn rules_page(
    service: &Service,
    principal: &Principal,
    query: Option<&str>,
) -> RulesPage {
    let fields: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let question = QuestionView {
        address: field("address"),
        kind: fields
            .get("kind")
            .cloned()
            .unwrap_or_else(|| "exchange".into()),
        server: field("server"),
        pattern: field("pattern"),
        priority: field("priority"),
    };
    let (answer, problem) = test_route(service, &question);
    let config = service.config();
    let view = |rules: &[crate::component::wit::Rule]| rules.iter().map(RuleView::from).collect();
    RulesPage {
        who: Who::from(principal),
        section: "rules",
        question,
        answer,
        problem,
        tables: vec![
            RuleTable {
                title: "Exchange rules",
                kind: "exchange",
                rules: view(&config.rules),
                destinations: config.exchange.iter().map(|s| s.name.clone()).collect(),
            },
            RuleTable {
                title: "Telephony rules",
                kind: "telephony",
                rules: view(&config.telephony_rules),
                destinations: config.telephony.iter().map(|t| t.name.clone()).collect(),
            },
        ],
        adding: Fields::new(),
        problems: Vec::new(),
    }
}

/// The tester's answer, or the problem with its question (nothing asked: neither).
fn test_route(service: &Service, question: &QuestionView) -> (Option<RouteAnswer>, Option<String>) {
    if question.address.trim().is_empty() {
        return (None, None);
    }
    let asked = RouteQuestion {
        address: question.address.clone(),
        kind: Some(question.kind.clone()),
        server: Some(question.server.clone()),
        pattern: Some(question.pattern.clone()),
        priority: Some(question.priority.clone()),
    };
    match question_rules(service, &asked) {
        Ok(rules) => match service.with_core(|core| explain(core, asked.address.trim(), &rules)) {
            Ok(found) => (Some(found), None),
            Err(error) => (None, Some(error.to_string())),
        },
        Err(bad) => (None, Some(bad)),
    }
}

/// `GET /connections`: by Exchange server.
pub async fn connections(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    let mut groups: BTreeMap<String, Vec<UserRow>> = BTreeMap::new();
    for mailbox in &service.mailboxes.all() {
        let user = row(&service, mailbox);
        let server = user.exchange.clone().unwrap_or_else(|| "no route".into());
        groups.entry(server).or_default().push(user);
    }
    let page = ConnectionsPage {
        who: Who::from(&principal),
        section: "connections",
        groups: groups.into_iter().collect(),
    };
    html(StatusCode::OK, page)
}

/// `GET /audit`: the newest 500 entries.
pub async fn audit(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    match service.adapters.store.audit_log(500) {
        Ok(entries) => {
            let entries = entries
                .into_iter()
                .map(|e| {
                    let at = crate::diversion::utc(e.at);
                    (e, at)
                })
                .collect();
            let page = AuditPage {
                who: Who::from(&principal),
                section: "audit",
                entries,
            };
            html(StatusCode::OK, page)
        }
        Err(error) => AdminError::from(ServiceError::from(error)).into_response(),
    }
}
