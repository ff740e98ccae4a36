//! Bulk activation from a spreadsheet: the page `/users/import` (a file, a dry run,
//! then the import) and `POST /api/users/import` for scripts. Both run
//! [`Service::import`]: a dry run lists every row's problem and changes nothing; an
//! import applies all rows or, when any row has a problem, none.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Json;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::Principal;
use super::pages::{Who, html};
use crate::import::rows::RowProblem;
use crate::service::import::{ImportError, ImportReport, RowAction};
use crate::service::reconfigure::ReconfigureError;
use crate::service::state::Service;

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    who: Who,
    section: &'static str,
    result: Option<ResultView>,
}

/// The answer to a dry run or an import, as the page shows it.
#[derive(Template)]
#[template(path = "import_result.html")]
struct ResultView {
    dry_run: bool,
    applied: bool,
    rows: Vec<(usize, String, &'static str)>,
    problems: Vec<String>,
}

impl ResultView {
    fn of(dry_run: bool, outcome: Result<ImportReport, ImportError>) -> Self {
        match outcome {
            Ok(report) => ResultView {
                dry_run,
                applied: report.applied,
                rows: report
                    .rows
                    .into_iter()
                    .map(|r| (r.row, r.address, action_text(r.action)))
                    .collect(),
                problems: report.problems.into_iter().map(|p| p.message).collect(),
            },
            Err(error) => ResultView {
                dry_run,
                applied: false,
                rows: Vec::new(),
                problems: vec![error.to_string()],
            },
        }
    }
}

fn action_text(action: RowAction) -> &'static str {
    match action {
        RowAction::Add => "added and activated",
        RowAction::Activate => "activated",
        RowAction::Update => "active: its cells are set",
        RowAction::StaysInError => "in error: its cells are set; restart it afterwards",
    }
}

/// `GET /users/import`
pub async fn page(Extension(principal): Extension<Principal>) -> Response {
    html(
        StatusCode::OK,
        ImportPage {
            who: Who::from(&principal),
            section: "users",
            result: None,
        },
    )
}

/// The form's file and whether it asks for the import (not only the dry run).
async fn read_form(mut form: Multipart) -> Result<(Vec<u8>, bool), String> {
    let (mut sheet, mut apply) = (None, false);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("sheet") => {
                    let bytes = field.bytes().await.map_err(|e| e.body_text())?;
                    sheet = Some(bytes.to_vec());
                }
                Some("mode") => apply = field.text().await.map_err(|e| e.body_text())? == "apply",
                _ => {}
            },
            Ok(None) => break,
            Err(error) => return Err(error.body_text()),
        }
    }
    match sheet {
        Some(bytes) if !bytes.is_empty() => Ok((bytes, apply)),
        _ => Err("choose a CSV or XLSX file first".into()),
    }
}

/// `POST /users/import`: a multipart form with `csrf`, `sheet` (the file) and
/// `mode` (`dry-run` or `apply`). With htmx, the answer is the result alone
/// (200, problems or not); without, the page (400 when there are problems).
pub async fn submit(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let result = match read_form(form).await {
        Ok((bytes, apply)) => {
            ResultView::of(!apply, service.import(&bytes, apply, &principal.name).await)
        }
        Err(problem) => ResultView {
            dry_run: true,
            applied: false,
            rows: Vec::new(),
            problems: vec![problem],
        },
    };
    let status = if result.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    if headers.contains_key("hx-request") {
        // htmx swaps only a 2xx answer in; the result itself says what was wrong.
        return html(StatusCode::OK, result);
    }
    html(
        status,
        ImportPage {
            who: Who::from(&principal),
            section: "users",
            result: Some(result),
        },
    )
}

#[derive(serde::Deserialize)]
pub struct ImportQuery {
    mode: Option<String>,
}

/// `POST /api/users/import?mode=dry-run|apply`: the body is the file itself.
/// 200 with the report when it has no problem (applied when asked), 400 with it
/// when it has (nothing changed), 503 when the store failed.
pub async fn api(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<ImportQuery>,
    body: axum::body::Bytes,
) -> Response {
    let apply = match query.mode.as_deref() {
        None | Some("dry-run") => false,
        Some("apply") => true,
        Some(other) => {
            return problems_reply(
                StatusCode::BAD_REQUEST,
                format!("mode {other:?}: use dry-run or apply"),
            );
        }
    };
    match service.import(&body, apply, &principal.name).await {
        Ok(report) if report.problems.is_empty() => Json(report).into_response(),
        Ok(report) => (StatusCode::BAD_REQUEST, Json(report)).into_response(),
        Err(ImportError::Edit(ReconfigureError::Store(e))) => {
            problems_reply(StatusCode::SERVICE_UNAVAILABLE, e)
        }
        Err(error) => problems_reply(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

fn problems_reply(status: StatusCode, message: String) -> Response {
    let report = ImportReport {
        rows: Vec::new(),
        problems: vec![RowProblem { row: 0, message }],
        applied: false,
    };
    (status, Json(report)).into_response()
}
