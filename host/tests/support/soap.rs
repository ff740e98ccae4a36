//! A small independent EWS client for the simulator's tests: raw SOAP written here
//! (not by Calvert's request code), sent with Calvert's transport, replies read as
//! plain XML trees.

// Shared by several test crates; each uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use calvert::ews::client::{Credentials, EwsClient, RetryPolicy, ServerConfig};
use calvert::ews::request::{Mailbox, ServerVersion};
use calvert::ews::xml::{self, Element};
use calvert::ews::{MESSAGES_NS, TYPES_NS};
use calvert_exchange_sim::{Exchange, Server, start};

pub const KIM: &str = "kim@flexi.se";

/// A simulator with Kim's mailbox and a client signed in as a service account that
/// may impersonate her.
pub async fn simulator() -> (Server, EwsClient) {
    let exchange = Exchange::default();
    exchange.add_account("calvert", "secret", None);
    exchange.add_mailbox(KIM);
    let server = start(exchange).await.expect("the simulator starts");
    let client = EwsClient::new(ServerConfig {
        url: server.ews_url(),
        credentials: Credentials::Basic {
            user: "calvert".into(),
            password: "secret".into(),
        },
        ca_bundle: None,
        timeout: Duration::from_secs(5),
        version: ServerVersion::Exchange2016,
        retry: RetryPolicy::none(),
    })
    .expect("a client");
    (server, client)
}

/// A request envelope impersonating Kim, with `body` as the SOAP body's content.
pub fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="{TYPES_NS}" xmlns:m="{MESSAGES_NS}"><soap:Header><t:RequestServerVersion Version="Exchange2013"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{KIM}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// Send `body` (the operation element) and read the reply as a tree.
pub async fn call(client: &EwsClient, body: &str) -> (String, Element) {
    let kim = Mailbox {
        primary_smtp: KIM.into(),
    };
    let reply = client
        .call(Some(&kim), envelope(body))
        .await
        .unwrap_or_else(|e| panic!("the simulator refused {body}: {e}"));
    let tree = xml::parse(&reply).expect("the reply is XML");
    (reply, tree)
}

/// Every element named `name` (types or messages namespace) below `root`.
pub fn all<'a>(root: &'a Element, name: &str) -> Vec<&'a Element> {
    let mut out = Vec::new();
    let mut next = vec![root];
    while let Some(element) = next.pop() {
        for child in element.children.iter().rev() {
            if child.name == name {
                out.push(child);
            }
        }
        next.extend(element.children.iter().rev());
    }
    out
}

/// The first element named `name` below `root`.
pub fn first<'a>(root: &'a Element, name: &str) -> &'a Element {
    all(root, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {name} in the reply"))
}

/// The ResponseCode of every response message, in order.
pub fn codes(root: &Element) -> Vec<String> {
    all(root, "ResponseCode")
        .into_iter()
        .map(|c| c.text.clone())
        .collect()
}

/// The (Id, ChangeKey) of the first ItemId below `root`.
pub fn item_id(root: &Element) -> (String, String) {
    let id = first(root, "ItemId");
    (
        id.attr("Id").unwrap_or("").to_string(),
        id.attr("ChangeKey").unwrap_or("").to_string(),
    )
}

/// The body element of a reply envelope as its own document (it declares its
/// namespaces), for schema validation.
pub fn body_element(reply: &str) -> String {
    let open = reply.find("<s:Body").expect("a SOAP body");
    let start = reply[open..].find('>').expect("the body tag ends") + open + 1;
    let end = reply.rfind("</s:Body>").expect("the body closes");
    reply[start..end].to_string()
}

/// The operation element of a request envelope, with the namespaces declared on
/// it, for schema validation.
pub fn request_element(body: &str) -> String {
    let name_end = body.find([' ', '>', '/']).expect("an element");
    format!(
        r#"{} xmlns:t="{TYPES_NS}" xmlns:m="{MESSAGES_NS}"{}"#,
        &body[..name_end],
        &body[name_end..]
    )
}
