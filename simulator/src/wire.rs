//! The wire: reading an EWS request into [`Parsed`], and the pieces every reply is
//! written with (the SOAP envelope, SOAP faults, watermarks, notification events).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use quick_xml::escape::escape;

use crate::xml_tree::{self, Node};

pub(crate) const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub(crate) const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";

/// What the simulator reads from a request.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) operation: String,
    /// The operation's element (the Body's child), for what only one operation reads.
    pub(crate) request: Node,
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
    pub(crate) sync_state: Option<String>,
    pub(crate) max_changes: Option<usize>,
    pub(crate) push_url: Option<String>,
}

/// An xs:dateTime as seconds since 1970.
pub(crate) fn instant(text: &str) -> Option<i64> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Read an EWS request; the error says why it is not one.
pub(crate) fn parse_request(body: &str) -> Result<Parsed, String> {
    let envelope = xml_tree::parse(body)?;
    let request = envelope
        .child("Body")
        .and_then(|b| b.children.first())
        .cloned()
        .ok_or("the SOAP Body names no operation")?;
    let impersonated = envelope
        .child("Header")
        .and_then(|h| h.find("PrimarySmtpAddress"))
        .map(|a| a.text.trim().to_ascii_lowercase());
    let view = request
        .child("CalendarView")
        .map(calendar_view)
        .transpose()?;
    let mut parsed = Parsed {
        operation: request.name.clone(),
        impersonated,
        view,
        subscription_kind: request.children.first().map(|c| c.name.clone()),
        watermark: deep_text(&request, "Watermark"),
        sync_state: deep_text(&request, "SyncState"),
        max_changes: deep_text(&request, "MaxChangesReturned").and_then(|m| m.parse().ok()),
        push_url: deep_text(&request, "URL"),
        ..Parsed::default()
    };
    let mut ids = Vec::new();
    request.find_all("SubscriptionId", &mut ids);
    parsed.subscription_ids = ids.iter().map(|n| n.text.trim().to_string()).collect();
    parsed.subscription_id = parsed.subscription_ids.last().cloned();
    let mut item_ids = Vec::new();
    request.find_all("ItemId", &mut item_ids);
    let keys = item_ids.iter().filter_map(|n| {
        Some((
            n.attr("Id")?.to_string(),
            n.attr("ChangeKey").map(str::to_string),
        ))
    });
    match parsed.operation.as_str() {
        "GetItem" => parsed.item_ids = keys.map(|(id, _)| id).collect(),
        "UpdateItem" | "DeleteItem" => parsed.item_keys = keys.collect(),
        _ => {}
    }
    parsed.request = request;
    Ok(parsed)
}

/// The trimmed text of the first `name` anywhere in `node`.
fn deep_text(node: &Node, name: &str) -> Option<String> {
    node.find(name).map(|n| n.text.trim().to_string())
}

/// A CalendarView's start, end and MaxEntriesReturned (1000 when not given).
fn calendar_view(view: &Node) -> Result<(i64, i64, usize), String> {
    let start = view
        .attr("StartDate")
        .and_then(instant)
        .ok_or("bad StartDate")?;
    let end = view
        .attr("EndDate")
        .and_then(instant)
        .ok_or("bad EndDate")?;
    let max = view
        .attr("MaxEntriesReturned")
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
