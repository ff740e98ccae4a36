//! The wire: reading an EWS request into [`Parsed`], and the pieces every reply is
//! written with (the SOAP envelope, SOAP faults, watermarks, notification events).

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};

pub(crate) const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub(crate) const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";

/// What the simulator reads from a request.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) operation: String,
    pub(crate) impersonated: Option<String>,
    pub(crate) view: Option<(i64, i64, usize)>,
    pub(crate) item_ids: Vec<String>,
    /// Subscribe: which kind; GetEvents: the subscription and watermark.
    pub(crate) subscription_kind: Option<String>,
    pub(crate) subscription_id: Option<String>,
    pub(crate) subscription_ids: Vec<String>,
    pub(crate) watermark: Option<String>,
    /// UpdateItem / DeleteItem: the ids and change keys named.
    pub(crate) item_keys: Vec<(String, Option<String>)>,
    /// CreateItem / UpdateItem: the calendar item fields given, by element name.
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) sync_state: Option<String>,
    pub(crate) max_changes: Option<usize>,
    pub(crate) push_url: Option<String>,
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// An xs:dateTime as seconds since 1970.
pub(crate) fn instant(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Read an EWS request; the error says why it is not one.
pub(crate) fn parse_request(body: &str) -> Result<Parsed, String> {
    let mut reader = Reader::from_str(body);
    let mut reading = Reading::default();
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) | Event::Empty(e) => reading.element(&e)?,
            Event::End(e) if e.local_name().as_ref() == b"CalendarItem" => reading.in_item = false,
            Event::Text(t) if reading.text_of.is_some() => {
                let value = t
                    .xml10_content()
                    .map_err(|e| e.to_string())?
                    .trim()
                    .to_string();
                reading.text(value);
            }
            Event::Text(t) if reading.in_smtp => {
                reading.parsed.impersonated = Some(
                    t.xml10_content()
                        .map_err(|e| e.to_string())?
                        .trim()
                        .to_ascii_lowercase(),
                );
                reading.in_smtp = false;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(reading.parsed)
}

/// Where [`parse_request`] is in the request.
#[derive(Debug, Default)]
struct Reading {
    parsed: Parsed,
    in_body: bool,
    in_smtp: bool,
    /// The element whose text comes next, when that text is wanted.
    text_of: Option<String>,
    in_item: bool,
}

impl Reading {
    /// An element starts: the first one in the Body names the operation.
    fn element(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        let name = e.local_name();
        let name = String::from_utf8_lossy(name.as_ref()).into_owned();
        let parsed = &mut self.parsed;
        if self.in_body && parsed.operation.is_empty() {
            parsed.operation = name.clone();
        }
        match name.as_str() {
            "Body" => self.in_body = true,
            "PrimarySmtpAddress" => self.in_smtp = true,
            "CalendarView" => parsed.view = Some(calendar_view(e)?),
            "ItemId" if parsed.operation == "GetItem" => parsed.item_ids.extend(attr(e, b"Id")),
            "PullSubscriptionRequest"
            | "PushSubscriptionRequest"
            | "StreamingSubscriptionRequest" => parsed.subscription_kind = Some(name.clone()),
            "SubscriptionId" | "Watermark" | "SyncState" | "MaxChangesReturned" | "URL" => {
                self.text_of = Some(name.clone())
            }
            "ItemId" if matches!(parsed.operation.as_str(), "UpdateItem" | "DeleteItem") => parsed
                .item_keys
                .extend(attr(e, b"Id").map(|id| (id, attr(e, b"ChangeKey")))),
            "CalendarItem" => self.in_item = true,
            _ if self.in_item => self.text_of = Some(name.clone()),
            _ => {}
        }
        Ok(())
    }

    /// The text of the element [`Reading::text_of`] names.
    fn text(&mut self, value: String) {
        let parsed = &mut self.parsed;
        match self.text_of.take().as_deref() {
            Some("SubscriptionId") => {
                parsed.subscription_ids.push(value.clone());
                parsed.subscription_id = Some(value);
            }
            Some("Watermark") => parsed.watermark = Some(value),
            Some("SyncState") => parsed.sync_state = Some(value),
            Some("MaxChangesReturned") => parsed.max_changes = value.parse().ok(),
            Some("URL") => parsed.push_url = Some(value),
            Some(field) => {
                parsed.fields.insert(field.to_string(), value);
            }
            None => {}
        }
    }
}

/// A CalendarView's start, end and MaxEntriesReturned (1000 when not given).
fn calendar_view(e: &BytesStart<'_>) -> Result<(i64, i64, usize), String> {
    let start = attr(e, b"StartDate")
        .and_then(|t| instant(&t))
        .ok_or("bad StartDate")?;
    let end = attr(e, b"EndDate")
        .and_then(|t| instant(&t))
        .ok_or("bad EndDate")?;
    let max = attr(e, b"MaxEntriesReturned")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000);
    Ok((start, end, max))
}

/// A watermark as EWS carries it (base64 of `wm-<number>`).
pub(crate) fn watermark(n: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("wm-{n}"))
}

/// The number in a watermark this simulator gave out.
pub(crate) fn watermark_number(text: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("wm-")?
        .parse()
        .ok()
}

/// One notification event in EWS XML.
pub(crate) fn event_xml(number: u64, kind: &str, item: &str) -> String {
    format!(
        r#"<t:{kind}><t:Watermark>{}</t:Watermark><t:TimeStamp>2026-11-25T09:00:00Z</t:TimeStamp><t:ItemId Id="{}" ChangeKey="x"/><t:ParentFolderId Id="calendar" ChangeKey="x"/></t:{kind}>"#,
        watermark(number),
        escape(item)
    )
}

/// A SOAP envelope around `body`, with Exchange 2019's ServerVersionInfo.
pub(crate) fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2018_01_08" xmlns:h="{TYPES}"/></s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</s:Body></s:Envelope>"#
    )
}

/// A SOAP fault with an EWS response code (and BackOffMilliseconds, if given).
pub(crate) fn fault(code: &str, message: &str, back_off_ms: Option<u64>) -> String {
    let back_off = back_off_ms
        .map(|ms| format!(r#"<t:MessageXml xmlns:t="{TYPES}"><t:Value Name="BackOffMilliseconds">{ms}</t:Value></t:MessageXml>"#))
        .unwrap_or_default();
    envelope(&format!(
        r#"<s:Fault><faultcode xmlns:a="{TYPES}">a:{code}</faultcode><faultstring xml:lang="en-US">{msg}</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{code}</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{msg}</e:Message>{back_off}</detail></s:Fault>"#,
        msg = escape(message)
    ))
}

/// An HTTP reply with an XML body.
pub(crate) fn xml_reply(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}
