//! The edits of `edit.rs`, on a small calvert.toml with comments.
use super::*;

const TEXT: &str = r#"# Calvert at Flexi
[service]
zone = "Europe/Stockholm"

[[rule]]
server = "sim" # the only one
pattern = "flexi.se"

[[trigger]]
word = "Lunch"
reason = "LUNCH"

[[user]]
address = "Kim@flexi.se"
integration_id = "1"
"#;

#[test]
fn an_edit_keeps_comments_and_everything_else_as_written() {
    let added = apply(
        TEXT,
        &ConfigEdit::AddTrigger {
            word: "Möte".into(),
            reason: "MEETING".into(),
        },
    )
    .unwrap();
    assert!(
        added.starts_with("# Calvert at Flexi\n[service]"),
        "{added}"
    );
    assert!(added.contains("server = \"sim\" # the only one"), "{added}");
    let at = |needle: &str| added.find(needle).unwrap_or(usize::MAX);
    assert!(
        at("LUNCH") < at("MEETING") && at("MEETING") < at("[[user]]"),
        "beside the other triggers: {added}"
    );
    assert!(
        added.contains("[[trigger]]\nword = \"Möte\"\nreason = \"MEETING\""),
        "{added}"
    );
    let removed = apply(
        &added,
        &ConfigEdit::RemoveTrigger {
            word: "Lunch".into(),
        },
    )
    .unwrap();
    assert!(
        !removed.contains("LUNCH") && removed.contains("MEETING"),
        "{removed}"
    );
    assert!(removed.contains("# the only one"));
    assert_eq!(
        apply(
            TEXT,
            &ConfigEdit::RemoveTrigger {
                word: "lunch".into()
            }
        ),
        Err(EditError::NoTrigger {
            word: "lunch".into()
        }),
        "trigger words are removed as written"
    );
}

#[test]
fn rules_are_added_with_their_destination_key_and_removed_by_place() {
    let text = apply(
        TEXT,
        &ConfigEdit::AddRule {
            kind: RuleKind::Telephony,
            destination: "pbx".into(),
            pattern: "*".into(),
            priority: -1,
        },
    )
    .unwrap();
    assert!(
        text.contains("[[telephony_rule]]\ntarget = \"pbx\"\npattern = \"*\"\npriority = -1"),
        "{text}"
    );
    let text = apply(
        &text,
        &ConfigEdit::RemoveRule {
            kind: RuleKind::Exchange,
            index: 0,
        },
    )
    .unwrap();
    assert!(!text.contains("flexi.se\"\n\n[[trigger"), "{text}");
    assert_eq!(
        apply(
            &text,
            &ConfigEdit::RemoveRule {
                kind: RuleKind::Exchange,
                index: 0
            }
        ),
        Err(EditError::NoRule {
            section: "rule",
            index: 0
        })
    );
}

#[test]
fn secrets_are_redacted_and_the_rest_kept() {
    let text = r#"# site
[[exchange]]
name = "ews"
password = "hunter2hunter2" # inline
password_env = "EWS_PASSWORD"
[[exchange]]
name = "cloud"
client_secret = "s3cr3t"
[[telephony]]
name = "pbx"
headers = { Authorization = "Bearer abc", "X-Site" = "flexi" }
"#;
    let shown = redacted(text).unwrap();
    for secret in ["hunter2hunter2", "s3cr3t", "Bearer abc", "flexi\""] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(
        shown.contains("# site") && shown.contains("password_env = \"EWS_PASSWORD\""),
        "{shown}"
    );
    assert_eq!(shown.matches(REDACTED).count(), 4, "{shown}");
}

#[test]
fn integration_ids_and_reasons_are_set_in_place() {
    let text = apply(
        TEXT,
        &ConfigEdit::SetIntegrationId {
            address: "kim@FLEXI.se".into(),
            integration_id: Some(" VF-17 ".into()),
        },
    )
    .unwrap();
    assert!(
        text.contains("address = \"Kim@flexi.se\"\nintegration_id = \"VF-17\""),
        "{text}"
    );
    let cleared = apply(
        &text,
        &ConfigEdit::SetIntegrationId {
            address: "kim@flexi.se".into(),
            integration_id: Some("".into()),
        },
    )
    .unwrap();
    assert!(!cleared.contains("integration_id"), "{cleared}");
    assert_eq!(
        apply(
            TEXT,
            &ConfigEdit::SetIntegrationId {
                address: "eva@flexi.se".into(),
                integration_id: None
            }
        ),
        Err(EditError::NoUser {
            address: "eva@flexi.se".into()
        })
    );
    let reasons = apply(
        TEXT,
        &ConfigEdit::SetPolicy {
            default_reason: "BACK".into(),
            oof_reason: Some("AWAY".into()),
            divert_on: vec!["busy".into(), "oof".into()],
            count_tentative: true,
        },
    )
    .unwrap();
    assert!(
        reasons.contains("[policy]\ndefault_reason = \"BACK\"\ndivert_on = [\"busy\", \"oof\"]\ncount_tentative = true\noof_reason = \"AWAY\""),
        "{reasons}"
    );
    let none = apply(
        &reasons,
        &ConfigEdit::SetPolicy {
            default_reason: "BACK".into(),
            oof_reason: None,
            divert_on: vec!["busy".into()],
            count_tentative: false,
        },
    )
    .unwrap();
    assert!(!none.contains("AWAY"), "{none}");
    assert!(matches!(
        apply("[x", &ConfigEdit::RemoveTrigger { word: "a".into() }),
        Err(EditError::Unreadable(_))
    ));
    let typed = apply(
        TEXT,
        &ConfigEdit::SetDefaultEventType {
            event_type: Some(" Möte ".into()),
        },
    )
    .unwrap();
    assert!(
        typed.contains("[sync]\ndefault_event_type = \"Möte\""),
        "{typed}"
    );
    let none = apply(
        &typed,
        &ConfigEdit::SetDefaultEventType { event_type: None },
    )
    .unwrap();
    assert!(!none.contains("default_event_type"), "{none}");
}

#[test]
fn an_import_adds_new_users_in_row_order_and_enables_listed_ones() {
    let text = TEXT.replace(
        "integration_id = \"1\"\n",
        "integration_id = \"1\"\nenabled = false # on leave\n",
    );
    let row = |row: usize, address: &str, id: &str| ImportedUser {
        row,
        address: address.into(),
        integration_id: Some(id.into()),
        ..ImportedUser::default()
    };
    let edit = ConfigEdit::ImportUsers {
        users: vec![
            row(2, "al@flexi.se", "2"),
            ImportedUser {
                name: Some("Kim Berg".into()),
                ..row(3, "KIM@flexi.se", "11")
            },
            row(4, "bo@flexi.se", "3"),
        ],
    };
    let out = apply(&text, &edit).unwrap();
    // Kim is edited where it stands (its comment kept), the others appended in order.
    assert!(
        out.contains(
            "address = \"Kim@flexi.se\"\nintegration_id = \"11\"\nenabled = true # on leave\nname = \"Kim Berg\""
        ),
        "{out}"
    );
    let at = |needle: &str| out.find(needle).unwrap_or(usize::MAX);
    assert!(at("Kim@flexi.se") < at("al@flexi.se") && at("al@flexi.se") < at("bo@flexi.se"));
    assert!(
        out.contains("[[user]]\naddress = \"al@flexi.se\"\nintegration_id = \"2\"\n"),
        "{out}"
    );
    assert_eq!(
        edit.describe(),
        "imported 3 user(s) from a spreadsheet: al@flexi.se, KIM@flexi.se, bo@flexi.se"
    );
}
