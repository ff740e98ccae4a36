//! Every request Calvert sends validates against Microsoft's EWS schema
//! (`../shared/ews/xsd/messages.xsd` and `types.xsd`), with xmllint (Debian's
//! libxml2-utils, installed by scripts/test-all).

#[path = "support/xsd.rs"]
mod xsd;

use xsd::{part, validate};

use calvert::component::wit::{Attendee, AttendeeRole, CalendarItem, FreeBusy, Sensitivity};
use calvert::ews::SOAP_NS;
use calvert::ews::request::{Mailbox, Request, ServerVersion};
use calvert::ews::xml;

/// Split an envelope into its parts: the version header and the impersonation header
/// (types.xsd) and the body (messages.xsd), each a standalone document.
fn parts(
    envelope: &str,
    what: &str,
    types: &mut Vec<(String, String)>,
    messages: &mut Vec<(String, String)>,
) {
    let root = xml::parse(envelope).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(root.is(SOAP_NS, "Envelope"), "{what}");
    let version_start = envelope
        .find("<t:RequestServerVersion")
        .expect("every request names its version");
    let version_end = envelope[version_start..]
        .find("/>")
        .expect("an empty element")
        + version_start
        + 2;
    let version = format!("<x>{}</x>", &envelope[version_start..version_end]);
    types.push((format!("{what}-version"), part(&version, "<x>", "</x>")));
    if envelope.contains("<t:ExchangeImpersonation>") {
        let sid = envelope.find("<t:ConnectingSID>").expect("sid");
        let end = envelope.find("</t:ExchangeImpersonation>").expect("end");
        let impersonation = format!(
            "<x><t:ExchangeImpersonation>{}</t:ExchangeImpersonation></x>",
            &envelope[sid..end]
        );
        types.push((
            format!("{what}-impersonation"),
            part(&impersonation, "<x>", "</x>"),
        ));
    }
    messages.push((
        what.to_string(),
        part(envelope, "<soap:Body>", "</soap:Body>"),
    ));
}

fn item() -> CalendarItem {
    CalendarItem {
        subject: "Kundmöte <Ab Oy> & lunch".into(),
        location: "Rum 4".into(),
        body: "Agenda:\n1. budget".into(),
        sensitivity: Sensitivity::Private,
        free_busy: FreeBusy::Busy,
        reminder_minutes: Some(15),
        attendees: vec![
            Attendee {
                address: "kim@flexi.se".into(),
                role: AttendeeRole::Required,
            },
            Attendee {
                address: "eva@flexi.se".into(),
                role: AttendeeRole::Optional,
            },
            Attendee {
                address: "rum4@flexi.se".into(),
                role: AttendeeRole::Resource,
            },
        ],
        ..CalendarItem::appointment("AAMk1", 1_795_597_200, 1_795_600_800)
    }
}

#[test]
fn every_request_validates_against_the_ews_schema() {
    let mailbox = Mailbox {
        primary_smtp: "kim@flexi.se".into(),
    };
    let (mut types, mut messages) = (Vec::new(), Vec::new());
    for version in [ServerVersion::Exchange2010Sp2, ServerVersion::Exchange2016] {
        let on_mailbox = Request {
            version,
            mailbox: Some(&mailbox),
        };
        let service = Request {
            version,
            mailbox: None,
        };
        let requests = [
            (
                "find-item",
                on_mailbox.find_calendar_view(1_795_500_000, 1_796_700_000, 1000),
            ),
            ("get-item", on_mailbox.get_items(&["AAMk1", "AAMk2"])),
            ("sync-first", on_mailbox.sync_folder_items(None, 512)),
            (
                "sync-next",
                on_mailbox.sync_folder_items(Some("H4sIAAA="), 100),
            ),
            ("subscribe-streaming", on_mailbox.subscribe_streaming()),
            (
                "subscribe-pull",
                on_mailbox.subscribe_pull(Some("AQAAAA=="), 30),
            ),
            (
                "subscribe-push",
                on_mailbox.subscribe_push("https://calvert.flexi.se/ews/push", None, 5),
            ),
            ("get-events", on_mailbox.get_events("JwBkYj", "AQAAAA==")),
            (
                "get-streaming-events",
                service.get_streaming_events(&["JwBkYj", "JwBkYk"], 30),
            ),
            ("unsubscribe", on_mailbox.unsubscribe("JwBkYj")),
            ("create-item", on_mailbox.create_item(&item())),
            (
                "update-item",
                on_mailbox.update_item("AAMk1", "DwAAAB", &item()),
            ),
            (
                "delete-item",
                on_mailbox.delete_item("AAMk1", Some("DwAAAB")),
            ),
        ];
        for (what, envelope) in requests {
            parts(
                &envelope,
                &format!("{what}-{}", version.as_str()),
                &mut types,
                &mut messages,
            );
        }
    }
    for (what, keep) in [("push-result-ok", true), ("push-result-unsubscribe", false)] {
        let answer = calvert::ews::notification::send_notification_result(keep);
        assert!(xml::parse(&answer).is_ok());
        messages.push((
            what.to_string(),
            part(&answer, "<soap:Body>", "</soap:Body>"),
        ));
    }
    assert_eq!(messages.len(), 28);
    validate("types.xsd", &types);
    validate("messages.xsd", &messages);
}

#[test]
fn the_server_version_comes_from_the_reply_header() {
    let reply = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>
        <h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2018_01_08"
          xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body/></s:Envelope>"#;
    let root = xml::parse(reply).unwrap();
    // V2018_01_08 is not a request version: the major/minor numbers decide.
    assert_eq!(
        ServerVersion::from_reply(&root),
        Some(ServerVersion::Exchange2016)
    );
}
