//! Golden tests: Calvert's EWS reader over the genuine and documented samples in
//! `../shared/ews/` (present beside the repository in CI).

use std::path::PathBuf;
use std::time::Duration;

use calvert::component::wit::{AttendeeRole, FreeBusy, ItemKind, Response, Sensitivity};
use calvert::ews::calendar::{parse_find_item, parse_get_item};
use calvert::ews::response::{EwsAction, EwsError, body, response_messages};
use calvert::ews::xml::{self, XmlError};

fn samples() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ews");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} not found: the EWS samples are skipped", dir.display());
        None
    }
}

fn read(path: &str) -> Option<String> {
    let file = samples()?.join(path);
    Some(std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
}

fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .expect("a test time")
        .as_second()
}

/// Documentation samples that are not well-formed XML (the docs lost an end tag or
/// the envelope; `../shared/ews/README.md`): Calvert must refuse them, as it would a
/// truncated reply.
const MALFORMED_SAMPLES: &[&str] = &[
    // A Header and a Body with no Envelope around them: two roots.
    "getstreamingevents-operation.02.Successful-GetStreamingEvents-response-example.xml",
    // An end tag missing in the middle.
    "getstreamingevents-operation.03.GetStreamingEvents-error-response-example.xml",
    // Opens <GetEventsResponseType>, closes </GetEventsResponse>.
    "how-to-pull-notifications-about-mailbox-events-by-using-ews-in-exchange.04.Get-pull-notifications-by-using-EWS.xml",
    // The Envelope is never closed.
    "how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange.04.Get-streaming-events-by-using-EWS.xml",
];

#[test]
fn every_sample_is_read_or_refused_with_a_reason() {
    let Some(dir) = samples() else { return };
    let mut read_ok = 0;
    let mut refused = Vec::new();
    for folder in ["doc-samples", "lib-test-samples"] {
        for entry in std::fs::read_dir(dir.join(folder)).expect("sample folder") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("xml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("utf-8 sample");
            match xml::parse(&text) {
                Ok(root) => {
                    read_ok += 1;
                    // A reply either yields its body or a typed error; never a panic.
                    let _ = body(&root).map(|b| response_messages(b).map(|m| m.len()));
                }
                Err(XmlError::Malformed { .. }) => {
                    refused.push(
                        path.file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or("")
                            .to_string(),
                    );
                }
                // Some samples are whole HTTP exchanges (request line and headers
                // first): not a reply body, refused as such.
                Err(XmlError::NotXml {
                    kind: "plain text", ..
                }) if text.starts_with("POST ") || text.starts_with("HTTP/") => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    assert!(read_ok >= 40, "only {read_ok} samples read");
    refused.sort();
    assert_eq!(refused, MALFORMED_SAMPLES, "samples refused as malformed");
}

#[test]
fn find_item_calendar_view_page() {
    // The documentation's sample uses the wrong https:// SOAP namespace; it is read.
    let Some(text) = read(
        "doc-samples/how-to-get-appointments-and-meetings-by-using-ews-in-exchange.04.Get-appointments-by-using-EWS.xml",
    ) else {
        return;
    };
    let (page, problems) = parse_find_item(&text).expect("a FindItem page");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(page.items.len(), 5);
    assert!(
        !page.includes_last_item_in_range,
        "33 in view, 5 returned: more pages follow"
    );
    assert_eq!(page.total_items_in_view, Some(33));
    let first = &page.items[0];
    assert_eq!(
        (first.id.as_str(), first.change_key.as_str()),
        ("AAMk", "DwAA")
    );
    assert_eq!(first.subject, "Contoso devs team meeting");
    assert_eq!(
        (first.start, first.end),
        (at("2013-08-21T19:30:00Z"), at("2013-08-21T20:00:00Z"))
    );
    // Fields Exchange did not send take the core's neutral values.
    assert_eq!(
        (first.free_busy, first.response, first.kind),
        (FreeBusy::Busy, Response::Unknown, ItemKind::Single)
    );
}

#[test]
fn get_item_full_calendar_item() {
    let Some(text) =
        read("doc-samples/getitem-operation-calendar-item.04.Successful-GetItem-Response.xml")
    else {
        return;
    };
    let results = parse_get_item(&text).expect("a GetItem reply");
    let item = results[0].as_ref().expect("the item reads");
    assert_eq!(item.id, "ASUAdT");
    assert_eq!(item.change_key, "otlIqB==");
    assert_eq!(
        (item.start, item.end),
        (at("2006-06-16T00:30:00Z"), at("2006-06-16T01:00:00Z"))
    );
    assert_eq!(item.created, Some(at("2006-06-16T00:12:41Z")));
    assert_eq!(item.reminder_minutes, Some(15));
    assert_eq!(item.free_busy, FreeBusy::Busy);
    assert_eq!(item.response, Response::Organizer);
    assert_eq!(item.sensitivity, Sensitivity::Normal);
    assert_eq!(item.kind, ItemKind::Single);
    assert!(!item.is_all_day && !item.is_meeting && !item.is_cancelled);
    assert_eq!(
        item.zone, None,
        "TimeZone is a display string, never read as a zone id"
    );
}

#[test]
fn get_item_with_only_an_id_is_an_unreadable_item_not_a_crash() {
    let Some(text) =
        read("doc-samples/getitem-operation-calendar-item.02.Successful-GetItem-Response.xml")
    else {
        return;
    };
    let results = parse_get_item(&text).expect("a GetItem reply");
    match &results[0] {
        Err(EwsError::Item(problem)) => {
            assert_eq!(problem.id, "ASUAd");
            assert!(problem.problem.contains("no Start"), "{problem}");
        }
        other => panic!("expected an unreadable item, got {other:?}"),
    }
}

#[test]
fn server_busy_fault_carries_its_back_off() {
    let Some(text) =
        read("lib-test-samples/exchangelib.soapfault.ErrorServerBusy.BackOffMilliseconds.xml")
    else {
        return;
    };
    let err = parse_find_item(&text).unwrap_err();
    assert_eq!(err.code(), Some("ErrorServerBusy"));
    assert_eq!(err.back_off(), Some(Duration::from_millis(297_749)));
    assert_eq!(err.action(), EwsAction::RetryLater);
}

#[test]
fn server_busy_response_message_carries_its_back_off() {
    let Some(text) =
        read("lib-test-samples/ews-rs.SyncFolderItems.ResponseMessage.ErrorServerBusy.xml")
    else {
        return;
    };
    let root = xml::parse(&text).unwrap();
    let message = response_messages(body(&root).unwrap()).unwrap().remove(0);
    let err = message.into_result().unwrap_err();
    assert_eq!(err.code(), Some("ErrorServerBusy"));
    assert_eq!(err.back_off(), Some(Duration::from_millis(5000)));
}

#[test]
fn fault_codes_map_to_actions() {
    for (file, code, action) in [
        (
            "lib-test-samples/exchangelib.soapfault.ErrorSchemaValidation.xml",
            "ErrorSchemaValidation",
            EwsAction::CalvertBug,
        ),
        (
            "lib-test-samples/ews-rs.soapfault.ErrorSchemaValidation.xml",
            "ErrorSchemaValidation",
            EwsAction::CalvertBug,
        ),
        (
            "lib-test-samples/ews-rs.soapfault.ErrorExceededConnectionCount.MaxConcurrency27.xml",
            "ErrorExceededConnectionCount",
            EwsAction::RetryLater,
        ),
    ] {
        let Some(text) = read(file) else { return };
        let err = parse_find_item(&text).unwrap_err();
        assert_eq!(
            (err.code(), err.action()),
            (Some(code), action),
            "{file}: {err}"
        );
    }
}

#[test]
fn response_message_errors_map_to_actions() {
    for (file, code, action) in [
        (
            "doc-samples/syncfolderitems-operation.03.SyncFolderItems-error-response.xml",
            "ErrorInvalidSyncStateData",
            EwsAction::FullResync,
        ),
        (
            "doc-samples/getevents-operation.03.GetEvents-Error-response-example.xml",
            "ErrorSubscriptionAccessDenied",
            EwsAction::Resubscribe,
        ),
        (
            "doc-samples/unsubscribe-operation.03.Unsubscribe-Error-response-example.xml",
            "ErrorSubscriptionNotFound",
            EwsAction::Resubscribe,
        ),
        (
            "lib-test-samples/exchangelib.FindFolder.ErrorTooManyObjectsOpened.xml",
            "ErrorTooManyObjectsOpened",
            EwsAction::RetryLater,
        ),
    ] {
        let Some(text) = read(file) else { return };
        let root = xml::parse(&text).unwrap();
        let messages = response_messages(body(&root).unwrap()).unwrap();
        let err = messages
            .into_iter()
            .find_map(|m| m.into_result().err())
            .expect("an error message");
        assert_eq!(
            (err.code(), err.action()),
            (Some(code), action),
            "{file}: {err}"
        );
    }
}

#[test]
fn html_and_truncated_replies_are_clear_errors() {
    let html =
        "<!DOCTYPE html>\n<html><head><title>Outlook</title></head><body>Sign in</body></html>";
    let err = parse_find_item(html).unwrap_err();
    assert!(
        matches!(err, EwsError::Xml(XmlError::NotXml { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTML"), "{err}");
    assert_eq!(err.action(), EwsAction::RetryLater);
    let Some(text) =
        read("doc-samples/getitem-operation-calendar-item.04.Successful-GetItem-Response.xml")
    else {
        return;
    };
    let cut = &text[..text.len() / 2];
    let err = parse_get_item(cut).unwrap_err();
    assert!(
        err.to_string().contains("cut off") || err.to_string().contains("well-formed"),
        "{err}"
    );
}

#[test]
fn attendees_and_resources_are_mapped() {
    let reply = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
      <m:ResponseMessages><m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>
        <t:CalendarItem><t:ItemId Id="M1" ChangeKey="C1"/><t:Subject>Möte &amp; lunch</t:Subject>
          <t:Sensitivity>Private</t:Sensitivity><t:ReminderIsSet>false</t:ReminderIsSet><t:ReminderMinutesBeforeStart>15</t:ReminderMinutesBeforeStart>
          <t:Start>2026-11-25T10:00:00Z</t:Start><t:End>2026-11-25T11:00:00Z</t:End><t:IsAllDayEvent>true</t:IsAllDayEvent>
          <t:LegacyFreeBusyStatus>OOF</t:LegacyFreeBusyStatus><t:IsMeeting>true</t:IsMeeting><t:CalendarItemType>Occurrence</t:CalendarItemType>
          <t:MyResponseType>NoResponseReceived</t:MyResponseType>
          <t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>kim@flexi.se</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>
          <t:OptionalAttendees><t:Attendee><t:Mailbox><t:EmailAddress>eva@flexi.se</t:EmailAddress></t:Mailbox></t:Attendee></t:OptionalAttendees>
          <t:Resources><t:Attendee><t:Mailbox><t:EmailAddress>rum4@flexi.se</t:EmailAddress></t:Mailbox></t:Attendee></t:Resources>
          <t:StartTimeZone Id="W. Europe Standard Time" Name="(UTC+01:00) Amsterdam"/>
        </t:CalendarItem></m:Items></m:GetItemResponseMessage>
        <m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode></m:GetItemResponseMessage>
      </m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>"#;
    let results = parse_get_item(reply).unwrap();
    let item = results[0].as_ref().unwrap();
    assert_eq!(item.subject, "Möte & lunch");
    assert_eq!(
        (item.free_busy, item.response, item.kind),
        (FreeBusy::Oof, Response::NoResponse, ItemKind::Occurrence)
    );
    assert_eq!(item.sensitivity, Sensitivity::Private);
    assert_eq!(item.reminder_minutes, None, "ReminderIsSet false");
    assert!(item.is_all_day && item.is_meeting);
    assert_eq!(item.zone.as_deref(), Some("W. Europe Standard Time"));
    let roles: Vec<_> = item
        .attendees
        .iter()
        .map(|a| (a.address.as_str(), a.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("kim@flexi.se", AttendeeRole::Required),
            ("eva@flexi.se", AttendeeRole::Optional),
            ("rum4@flexi.se", AttendeeRole::Resource)
        ]
    );
    let missing = results[1].as_ref().unwrap_err();
    assert_eq!(missing.action(), EwsAction::TreatAsDeleted);
}

mod notifications {
    use super::*;
    use calvert::ews::calendar::{Change, parse_sync_folder_items};
    use calvert::ews::notification::{ConnectionStatus, EventKind, parse_events, parse_subscribe};

    #[test]
    fn pull_subscribe_reply() {
        let Some(text) = read(
            "doc-samples/subscribe-operation.02.Successful-Pull-Subscription-Subscribe-response-ex.xml",
        ) else {
            return;
        };
        let subscribed = parse_subscribe(&text).unwrap();
        assert_eq!(
            subscribed.subscription_id,
            "39ea5d0f-f062-455e-a1e9-89c0304390f4"
        );
        assert_eq!(
            subscribed.watermark.as_deref(),
            Some("AAAAAHgGAAAAAAAAAQ==")
        );
    }

    #[test]
    fn get_events_reply() {
        let Some(text) =
            read("doc-samples/getevents-operation.02.Successful-GetEvents-response-example.xml")
        else {
            return;
        };
        let reply = parse_events(&text).unwrap();
        assert!(reply.failed.is_empty());
        let n = &reply.notifications[0];
        assert_eq!(n.subscription_id, "f6bc657d-dde1-4f94-952d-143b95d6483d");
        assert_eq!(
            n.previous_watermark.as_deref(),
            Some("AAAAAMAGAAAAAAAAAQ==")
        );
        assert!(!n.more_events);
        let kinds: Vec<_> = n
            .events
            .iter()
            .map(|e| (e.kind, e.watermark.as_deref(), e.item_id.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    EventKind::NewMail,
                    Some("AAAAAM4GAAAAAAAAAQ=="),
                    Some("AQApAHR")
                ),
                (
                    EventKind::NewMail,
                    Some("AAAAAOQGAAAAAAAAAQ=="),
                    Some("AQApAHRw")
                )
            ]
        );
        assert_eq!(n.events[0].at, Some(at("2006-08-22T00:36:29Z")));
    }

    #[test]
    fn push_status_event_and_streaming_close() {
        let Some(text) = read("lib-test-samples/exchangelib.push.SendNotification.StatusEvent.xml")
        else {
            return;
        };
        let reply = parse_events(&text).unwrap();
        assert_eq!(reply.notifications[0].events[0].kind, EventKind::Status);
        assert_eq!(
            reply.notifications[0].events[0].watermark.as_deref(),
            Some("BBBBB=")
        );
        let Some(text) =
            read("lib-test-samples/exchangelib.GetStreamingEvents.ConnectionStatusClosed.xml")
        else {
            return;
        };
        assert_eq!(
            parse_events(&text).unwrap().connection,
            Some(ConnectionStatus::Closed)
        );
    }

    #[test]
    fn subscription_errors_on_an_open_stream_still_resubscribe() {
        let reply = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
          <m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
          <m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Error">
            <m:MessageText>Subscription not found.</m:MessageText><m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode>
            <m:ErrorSubscriptionIds><m:SubscriptionId>JwBkYj</m:SubscriptionId></m:ErrorSubscriptionIds>
            <m:ConnectionStatus>OK</m:ConnectionStatus>
          </m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#;
        let reply = parse_events(reply).unwrap();
        assert_eq!(reply.connection, Some(ConnectionStatus::Open));
        let (ids, error) = &reply.failed[0];
        assert_eq!(ids, &["JwBkYj".to_string()]);
        assert_eq!(error.action(), EwsAction::Resubscribe);
    }

    #[test]
    fn sync_folder_items_changes_and_invalid_state() {
        let Some(text) = read(
            "doc-samples/syncfolderitems-operation.02.Successful-SyncFolderItems-Response.xml",
        ) else {
            return;
        };
        let round = parse_sync_folder_items(&text).unwrap();
        assert_eq!(round.sync_state, "H4sIAAAAA=");
        assert!(round.includes_last_item_in_range);
        assert_eq!(
            round.changes,
            [Change::Upserted {
                id: "AQApAHRwA==".into(),
                change_key: "CwAAABYA".into()
            }]
        );
        let Some(text) =
            read("doc-samples/syncfolderitems-operation.03.SyncFolderItems-error-response.xml")
        else {
            return;
        };
        assert_eq!(
            parse_sync_folder_items(&text).unwrap_err().action(),
            EwsAction::FullResync
        );
    }
}

mod autodiscover {
    use super::*;
    use calvert::ews::autodiscover::{
        AutodiscoverError, Discovery, get_user_settings_request, parse_get_user_settings, parse_pox,
    };

    #[test]
    fn get_user_settings_reply_without_an_ews_url_says_so() {
        // The documented reply lists settings but no EWS URL (it was not requested).
        let Some(text) = read(
            "doc-samples/getusersettings-operation-soap.02.GetUserSettings-response-example.xml",
        ) else {
            return;
        };
        assert_eq!(
            parse_get_user_settings(&text),
            Err(AutodiscoverError::NoEwsUrl)
        );
        let with_url = text.replace(
            "<Name>CasVersion</Name>",
            "<Name>ExternalEwsUrl</Name><Value>https://mail.contoso.com/EWS/Exchange.asmx</Value></UserSetting><UserSetting><Name>CasVersion</Name>",
        );
        let Ok(Discovery::Found(settings)) = parse_get_user_settings(&with_url) else {
            panic!("settings")
        };
        assert_eq!(
            settings.ews_url,
            "https://mail.contoso.com/EWS/Exchange.asmx"
        );
        assert_eq!(settings.display_name.as_deref(), Some("UserDisplayName"));
    }

    #[test]
    fn redirects_in_soap_and_pox() {
        let Some(text) =
            read("doc-samples/handling-autodiscover-error-messages.01.Autodiscover-errors.xml")
        else {
            return;
        };
        assert_eq!(
            parse_get_user_settings(&text),
            Ok(Discovery::RedirectAddress("elvin@mail.contoso.com".into()))
        );
        let Some(text) =
            read("doc-samples/handling-autodiscover-error-messages.02.Autodiscover-errors.xml")
        else {
            return;
        };
        assert_eq!(
            parse_pox(&text),
            Ok(Discovery::RedirectAddress("elvin@mail.contoso.com".into()))
        );
    }

    #[test]
    fn the_request_is_well_formed_and_escaped() {
        let request = get_user_settings_request(
            "kim&co@flexi.se",
            "https://flexi.se/autodiscover/autodiscover.svc",
        );
        let root = xml::parse(&request).unwrap();
        assert!(request.contains("kim&amp;co@flexi.se"));
        assert!(
            root.find(
                calvert::ews::autodiscover::AUTODISCOVER_NS,
                "GetUserSettingsRequestMessage"
            )
            .is_some()
        );
    }
}
