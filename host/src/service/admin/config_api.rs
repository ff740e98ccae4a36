//! Live configuration edits through the JSON API (docs/admin-api.md): trigger words,
//! the policy, rules, integration ids, and the export of the configuration in
//! force. A body is a form (`word=Lunch&reason=LUNCH`) or a JSON object of the same
//! fields. Each edit is made by [`Service::reconfigure`]: checked as the file is,
//! saved, audited and applied without a restart; a refused edit changes nothing and
//! answers 400 with its problems by key.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::access::Principal;
use super::server_fields;
use crate::config::edit::{ConfigEdit, RuleKind};
use crate::service::reconfigure::ReconfigureError;
use crate::service::state::Service;

/// The fields of an edit as sent, by name (the form's `csrf` left out).
pub type Fields = BTreeMap<String, String>;

/// The most fields an edit has (a divert-on list included).
const MAX_FIELDS: usize = 32;

/// One problem with an edit, by the field or configuration key it concerns.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

fn problem(key: &str, message: impl Into<String>) -> Problem {
    Problem {
        key: key.to_string(),
        message: message.into(),
    }
}

/// A form or JSON body's fields; repeated fields (`divert_on`) are joined by commas.
pub fn fields(headers: &HeaderMap, body: &[u8]) -> Result<Fields, Problem> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut fields = Fields::new();
    if json {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
            .map_err(|e| problem("", format!("the body is not a JSON object: {e}")))?;
        for (key, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            fields.insert(key, text);
        }
    } else {
        for (key, value) in form_urlencoded::parse(body) {
            if key == "csrf" {
                continue;
            }
            fields
                .entry(key.into_owned())
                .and_modify(|v: &mut String| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
    }
    if fields.len() > MAX_FIELDS {
        return Err(problem(
            "",
            format!("an edit has at most {MAX_FIELDS} fields"),
        ));
    }
    Ok(fields)
}

fn required(fields: &Fields, key: &str, problems: &mut Vec<Problem>) -> String {
    let value = fields
        .get(key)
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    if value.is_empty() {
        problems.push(problem(key, "this field is required"));
    }
    value
}

/// The edit `what` names (`trigger`, `trigger-remove`, `policy`, `rule`,
/// `rule-remove`, `default-event-type`, `server`, `server-remove`, `target`,
/// `target-remove`), made from its fields; every problem with
/// them at once.
pub fn edit_from(what: &str, fields: &Fields) -> Result<ConfigEdit, Vec<Problem>> {
    let mut problems = Vec::new();
    let edit = match what {
        "trigger" => ConfigEdit::AddTrigger {
            word: required(fields, "word", &mut problems),
            reason: required(fields, "reason", &mut problems),
        },
        "trigger-remove" => ConfigEdit::RemoveTrigger {
            word: fields.get("word").cloned().unwrap_or_default(),
        },
        "policy" => policy_from(fields, &mut problems),
        "default-event-type" => ConfigEdit::SetDefaultEventType {
            event_type: fields.get("default_event_type").cloned(),
        },
        "rule" => rule_from(fields, &mut problems),
        "rule-remove" => {
            let kind = kind_from(fields, &mut problems);
            let index = match fields.get("index").map(|v| v.trim().parse::<usize>()) {
                Some(Ok(index)) => index,
                _ => {
                    problems.push(problem("index", "the rule's place in its list, from 0"));
                    0
                }
            };
            ConfigEdit::RemoveRule { kind, index }
        }
        "server" => ConfigEdit::SetServer(server_fields::server_from(fields, &mut problems)),
        "server-remove" => ConfigEdit::RemoveServer {
            name: server_fields::name_of(fields, &mut problems),
        },
        "target" => ConfigEdit::SetTarget(server_fields::target_from(fields, &mut problems)),
        "target-remove" => ConfigEdit::RemoveTarget {
            name: server_fields::name_of(fields, &mut problems),
        },
        other => return Err(vec![problem("", format!("unknown edit {other:?}"))]),
    };
    if problems.is_empty() {
        Ok(edit)
    } else {
        Err(problems)
    }
}

fn kind_from(fields: &Fields, problems: &mut Vec<Problem>) -> RuleKind {
    let text = fields.get("kind").map(|k| k.trim()).unwrap_or("exchange");
    RuleKind::parse(text).unwrap_or_else(|| {
        problems.push(problem(
            "kind",
            format!("{text:?}: use exchange or telephony"),
        ));
        RuleKind::Exchange
    })
}

fn rule_from(fields: &Fields, problems: &mut Vec<Problem>) -> ConfigEdit {
    let kind = kind_from(fields, problems);
    let destination_key = match kind {
        RuleKind::Exchange => "server",
        RuleKind::Telephony => "target",
    };
    // The pages name both `server`; scripts may use the file's own key.
    let destination = fields
        .get(destination_key)
        .or_else(|| fields.get("server"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    if destination.is_empty() {
        problems.push(problem("server", "name the server the rule routes to"));
    }
    let pattern = required(fields, "pattern", problems);
    let priority = match fields.get("priority").map(|p| p.trim()) {
        None | Some("") => 0,
        Some(text) => text.parse::<i32>().unwrap_or_else(|_| {
            problems.push(problem(
                "priority",
                format!("{text:?} is not a whole number"),
            ));
            0
        }),
    };
    ConfigEdit::AddRule {
        kind,
        destination,
        pattern,
        priority,
    }
}

fn policy_from(fields: &Fields, problems: &mut Vec<Problem>) -> ConfigEdit {
    let default_reason = required(fields, "default_reason", problems);
    let oof_reason = fields
        .get("oof_reason")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let divert_on: Vec<String> = fields
        .get("divert_on")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if divert_on.is_empty() {
        problems.push(problem(
            "divert_on",
            "choose at least one state that diverts",
        ));
    }
    let count_tentative = matches!(
        fields.get("count_tentative").map(|v| v.trim()),
        Some("true" | "on" | "yes" | "1")
    );
    ConfigEdit::SetPolicy {
        default_reason,
        oof_reason,
        divert_on,
        count_tentative,
    }
}

/// The problems a refused edit shows, by key.
pub fn problems_of(error: &ReconfigureError) -> Vec<Problem> {
    error
        .problems()
        .into_iter()
        .map(|(key, message)| Problem { key, message })
        .collect()
}

fn status_of(error: &ReconfigureError) -> StatusCode {
    match error {
        ReconfigureError::Edit(_) | ReconfigureError::Invalid(_) | ReconfigureError::Adapter(_) => {
            StatusCode::BAD_REQUEST
        }
        ReconfigureError::Fixed(_) => StatusCode::CONFLICT,
        ReconfigureError::Store(_) | ReconfigureError::Core(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn refused(status: StatusCode, problems: Vec<Problem>) -> Response {
    (status, Json(serde_json::json!({ "problems": problems }))).into_response()
}

/// Make `edit` for `principal`: the JSON answer.
async fn make(service: &Arc<Service>, principal: &Principal, edit: ConfigEdit) -> Response {
    match service.reconfigure(&edit, &principal.name).await {
        Ok(_) => Json(serde_json::json!({ "done": edit.describe() })).into_response(),
        Err(error) => refused(status_of(&error), problems_of(&error)),
    }
}

/// `POST /api/config/{what}`: `trigger`, `trigger-remove`, `policy`, `rule`,
/// `rule-remove`, `default-event-type`, `server`, `server-remove`, `target`,
/// `target-remove`.
pub async fn edit(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(what): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let edit = fields(&headers, &body)
        .map_err(|p| vec![p])
        .and_then(|f| edit_from(&what, &f));
    match edit {
        Ok(edit) => make(&service, &principal, edit).await,
        Err(problems) => refused(StatusCode::BAD_REQUEST, problems),
    }
}

/// `POST /api/users/{address}/integration-id` with `integration_id=…` (empty: none).
pub async fn integration_id(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match fields(&headers, &body) {
        Ok(fields) => {
            let edit = ConfigEdit::SetIntegrationId {
                address,
                integration_id: fields.get("integration_id").cloned(),
            };
            make(&service, &principal, edit).await
        }
        Err(problem) => refused(StatusCode::BAD_REQUEST, vec![problem]),
    }
}

/// `POST /api/users/{address}/edit` with `name`, `company`, `integration_id`,
/// `telephony_id`, `zone` (each empty or left out: removed).
pub async fn edit_user(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match fields(&headers, &body) {
        Ok(fields) => {
            let edit = super::config_pages::user_edit(&address, &fields);
            make(&service, &principal, edit).await
        }
        Err(problem) => refused(StatusCode::BAD_REQUEST, vec![problem]),
    }
}

/// `GET /api/config/export`: the configuration in force as TOML (comments kept),
/// every secret written in it redacted.
pub async fn export(State(service): State<Arc<Service>>) -> Response {
    match crate::config::edit::redacted(&service.config().source.text) {
        Ok(text) => (
            [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Fields {
        fields(&HeaderMap::new(), text.as_bytes()).unwrap()
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let problems = edit_from("rule", &form("kind=exchange&priority=high&csrf=x")).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["server", "pattern", "priority"]);
        assert_eq!(
            edit_from("trigger", &form("word=+&reason="))
                .unwrap_err()
                .len(),
            2
        );
        assert!(edit_from("servers", &Fields::new()).is_err());
    }

    #[test]
    fn forms_and_json_make_the_same_edit() {
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let from_json = fields(
            &json,
            br#"{"default_reason":"BACK","divert_on":["busy","oof"],"count_tentative":true}"#,
        )
        .unwrap();
        let from_form = form("default_reason=BACK&divert_on=busy&divert_on=oof&count_tentative=on");
        let expected = ConfigEdit::SetPolicy {
            default_reason: "BACK".into(),
            oof_reason: None,
            divert_on: vec!["busy".into(), "oof".into()],
            count_tentative: true,
        };
        assert_eq!(edit_from("policy", &from_json), Ok(expected.clone()));
        assert_eq!(edit_from("policy", &from_form), Ok(expected));
        assert!(fields(&json, b"[1]").is_err());
    }

    #[test]
    fn a_telephony_rule_takes_its_target() {
        assert_eq!(
            edit_from(
                "rule",
                &form("kind=telephony&target=pbx&pattern=*&priority=-1")
            ),
            Ok(ConfigEdit::AddRule {
                kind: RuleKind::Telephony,
                destination: "pbx".into(),
                pattern: "*".into(),
                priority: -1
            })
        );
        assert_eq!(
            edit_from("rule-remove", &form("kind=telephony&index=x")).unwrap_err()[0].key,
            "index"
        );
    }
}
