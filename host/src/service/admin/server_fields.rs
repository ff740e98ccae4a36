//! The fields of a server or telephony-target edit (the Servers page's forms and
//! `POST /api/config/server|target`) → the edit. A secret field left empty keeps the
//! secret set: the pages never fill one in, so saving a form without typing a
//! password changes nothing about it.

use super::config_api::{Fields, Problem};
use crate::config::server_edit::{ServerEdit, TargetEdit};

fn text(fields: &Fields, key: &str) -> String {
    fields
        .get(key)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A checkbox or a JSON boolean.
fn flag(fields: &Fields, key: &str) -> bool {
    matches!(text(fields, key).as_str(), "true" | "on" | "yes" | "1")
}

/// A secret typed, or None when left empty (keep the one set).
fn secret(fields: &Fields, key: &str) -> Option<String> {
    fields.get(key).filter(|v| !v.is_empty()).cloned()
}

fn named(fields: &Fields, problems: &mut Vec<Problem>) -> String {
    let name = text(fields, "name");
    if name.is_empty() {
        problems.push(Problem {
            key: "name".into(),
            message: "this field is required".into(),
        });
    }
    name
}

pub fn server_from(fields: &Fields, problems: &mut Vec<Problem>) -> ServerEdit {
    let auth = match text(fields, "auth").to_ascii_lowercase().as_str() {
        "" => "basic".to_string(),
        other => other.to_string(),
    };
    ServerEdit {
        name: named(fields, problems),
        address: text(fields, "address"),
        autodiscover: flag(fields, "autodiscover"),
        ssl: flag(fields, "ssl"),
        auth,
        user: text(fields, "user"),
        domain: text(fields, "domain"),
        password: secret(fields, "password"),
        client_id: text(fields, "client_id"),
        token_url: text(fields, "token_url"),
        client_secret: secret(fields, "client_secret"),
        push_address: text(fields, "push_address"),
        push_ssl: flag(fields, "push_ssl"),
    }
}

pub fn target_from(fields: &Fields, problems: &mut Vec<Problem>) -> TargetEdit {
    TargetEdit {
        name: named(fields, problems),
        kind: match text(fields, "kind").as_str() {
            "" => "http".to_string(),
            other => other.to_string(),
        },
        url: text(fields, "url"),
        reads_back: flag(fields, "reads_back"),
        header: text(fields, "header"),
        header_value: secret(fields, "header_value"),
    }
}

/// The name a remove names.
pub fn name_of(fields: &Fields, problems: &mut Vec<Problem>) -> String {
    named(fields, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_empty_password_keeps_the_one_set_and_a_typed_one_replaces_it() {
        let mut problems = Vec::new();
        let kept = server_from(
            &fields(&[
                ("name", "ews2"),
                ("address", "mail.flexi.se"),
                ("password", ""),
            ]),
            &mut problems,
        );
        assert_eq!(
            (kept.password, kept.auth.as_str(), kept.ssl),
            (None, "basic", false)
        );
        let typed = server_from(
            &fields(&[("name", "ews2"), ("password", " new pass "), ("ssl", "on")]),
            &mut problems,
        );
        assert_eq!(
            typed.password.as_deref(),
            Some(" new pass "),
            "a password is kept as typed"
        );
        assert!(typed.ssl);
        assert!(problems.is_empty());
        server_from(&fields(&[("name", " ")]), &mut problems);
        assert_eq!(problems[0].key, "name");
    }

    #[test]
    fn a_target_is_http_unless_said_and_its_header_value_is_write_only() {
        let mut problems = Vec::new();
        let target = target_from(
            &fields(&[
                ("name", "pbx2"),
                ("url", "http://pbx"),
                ("header", "Authorization"),
            ]),
            &mut problems,
        );
        assert_eq!((target.kind.as_str(), target.header_value), ("http", None));
    }
}
