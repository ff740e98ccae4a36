//! Push notifications: a `SendNotification` body as the push listener reads it
//! (bytes made text with invalid UTF-8 replaced, then `parse_events`).
//!
//! Oracles: reading fails exactly when the tree fails, with the tree's error; what
//! was read, written out again as a `SendNotification` (notifications, events,
//! failed subscriptions, connection status), reads back identically; the listener's
//! answers are EWS XML that say what they mean.
#![no_main]

#[path = "common/xml_render.rs"]
mod xml_render;

use calvert::ews::notification::{
    ConnectionStatus, Event, EventKind, EventsReply, Notification, parse_events,
    send_notification_result,
};
use calvert::ews::response::EwsError;
use calvert::ews::xml;
use calvert::ews::{MESSAGES_NS, SOAP_NS};
use libfuzzer_sys::fuzz_target;
use xml_render::{escape_attr, escape_text};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let read = parse_events(&text);
    match (xml::parse(&text), &read) {
        (Err(tree_error), Err(error)) => assert_eq!(*error, EwsError::Xml(tree_error)),
        (Err(tree_error), Ok(_)) => panic!("read a notification the tree refused: {tree_error}"),
        (Ok(_), Err(error)) => assert!(!error.to_string().trim().is_empty()),
        (Ok(_), Ok(reply)) => {
            let document = render(reply);
            match parse_events(&document) {
                Ok(again) => assert_eq!(&again, reply, "changed when written out:\n{document}"),
                Err(error) => panic!("written out, it does not read ({error}):\n{document}"),
            }
        }
    }
    for keep in [true, false] {
        let answer = send_notification_result(keep);
        let root = xml::parse(&answer).expect("the push answer is XML");
        let status = root
            .child(SOAP_NS, "Body")
            .and_then(|b| b.find(MESSAGES_NS, "SubscriptionStatus"));
        let expected = if keep { "OK" } else { "Unsubscribe" };
        assert_eq!(status.map(|s| s.text.as_str()), Some(expected));
    }
});

fn element(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("<{name}>"));
    escape_text(value, out);
    out.push_str(&format!("</{name}>"));
}

fn id_element(out: &mut String, name: &str, id: &str) {
    out.push_str(&format!("<t:{name} Id=\""));
    escape_attr(id, out);
    out.push_str("\"/>");
}

fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Created => "CreatedEvent",
        EventKind::Deleted => "DeletedEvent",
        EventKind::Modified => "ModifiedEvent",
        EventKind::Moved => "MovedEvent",
        EventKind::Copied => "CopiedEvent",
        EventKind::NewMail => "NewMailEvent",
        EventKind::FreeBusyChanged => "FreeBusyChangedEvent",
        EventKind::Status => "StatusEvent",
    }
}

fn render_event(out: &mut String, event: &Event) {
    let name = kind_name(event.kind);
    out.push_str(&format!("<t:{name}>"));
    if let Some(mark) = &event.watermark {
        element(out, "t:Watermark", mark);
    }
    if let Some(at) = event.at {
        let stamp = jiff::Timestamp::from_second(at).expect("read from a valid time");
        element(out, "t:TimeStamp", &stamp.to_string());
    }
    if let Some(id) = &event.item_id {
        id_element(out, "ItemId", id);
    }
    if let Some(id) = &event.old_item_id {
        id_element(out, "OldItemId", id);
    }
    out.push_str(&format!("</t:{name}>"));
}

fn render_notification(out: &mut String, notification: &Notification) {
    out.push_str("<m:Notification>");
    element(out, "t:SubscriptionId", &notification.subscription_id);
    if let Some(mark) = &notification.previous_watermark {
        element(out, "t:PreviousWatermark", mark);
    }
    element(
        out,
        "t:MoreEvents",
        if notification.more_events {
            "true"
        } else {
            "false"
        },
    );
    for event in &notification.events {
        render_event(out, event);
    }
    out.push_str("</m:Notification>");
}

fn render_failure(out: &mut String, ids: &[String], error: &EwsError) {
    let EwsError::Response {
        code,
        text,
        back_off,
    } = error
    else {
        panic!("a failed subscription's error is a response message: {error:?}");
    };
    out.push_str(r#"<m:SendNotificationResponseMessage ResponseClass="Error">"#);
    element(out, "m:MessageText", text);
    element(out, "m:ResponseCode", code);
    if let Some(wait) = back_off {
        let ms = wait.as_millis().to_string();
        out.push_str(r#"<m:MessageXml><t:Value Name="BackOffMilliseconds">"#);
        out.push_str(&ms);
        out.push_str("</t:Value></m:MessageXml>");
    }
    out.push_str("<m:ErrorSubscriptionIds>");
    for id in ids {
        element(out, "t:SubscriptionId", id);
    }
    out.push_str("</m:ErrorSubscriptionIds></m:SendNotificationResponseMessage>");
}

/// `reply` as one SendNotification: a success message with every notification and
/// the connection status, then one error message per failed group.
fn render(reply: &EventsReply) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Body><m:SendNotification><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>"#,
    );
    match reply.connection {
        Some(ConnectionStatus::Open) => element(&mut out, "m:ConnectionStatus", "OK"),
        Some(ConnectionStatus::Closed) => element(&mut out, "m:ConnectionStatus", "Closed"),
        None => {}
    }
    out.push_str("<m:Notifications>");
    for notification in &reply.notifications {
        render_notification(&mut out, notification);
    }
    out.push_str("</m:Notifications></m:SendNotificationResponseMessage>");
    for (ids, error) in &reply.failed {
        render_failure(&mut out, ids, error);
    }
    out.push_str("</m:ResponseMessages></m:SendNotification></soap:Body></soap:Envelope>");
    out
}
