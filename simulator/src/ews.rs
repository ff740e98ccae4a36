//! `POST /EWS/Exchange.asmx`: sign in, take the next queued fault, check the
//! request's mailbox (impersonation rights, X-AnchorMailbox, existence), and hand
//! the operation to the module that serves it.

use std::collections::BTreeSet;
use std::sync::MutexGuard;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::directory::Directory;
use crate::exchange::Exchange;
use crate::faults::{self, Fault};
use crate::item_xml::Shape;
use crate::server::Peer;
use crate::sign_in::sign_in;
use crate::wire::{Parsed, fault, parse_request, xml_reply};
use crate::{calendar, edit, folders, streaming, subscriptions, sync};

/// The EWS endpoint.
pub(crate) async fn ews(
    State(exchange): State<Exchange>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Signing in comes first: handshake replies do not use up injected faults.
    let may_impersonate = match sign_in(&mut exchange.lock(), peer, &headers) {
        Ok(may) => may,
        Err(refusal) => return refusal.into_response(),
    };
    let fault_now = exchange.lock().faults.pop_front();
    if let Some(Fault::Slow(delay)) = &fault_now {
        tokio::time::sleep(*delay).await;
    }
    let drop_stream = fault_now == Some(Fault::DropStream);
    let mut reply = answer(&exchange, may_impersonate, &headers, &body, drop_stream);
    // The first subscribe of a group that asks for affinity gets the back-end cookie.
    let first_subscribe = {
        let directory = exchange.lock();
        matches!(directory.affinity.last(), Some((op, None)) if op == "Subscribe")
    };
    if first_subscribe
        && headers
            .get("X-PreferServerAffinity")
            .is_some_and(|v| v == "true")
    {
        reply.headers_mut().insert(
            header::SET_COOKIE,
            header::HeaderValue::from_static(
                "X-BackEndOverrideCookie=SIMBE01.flexi.local~1941996295; path=/",
            ),
        );
    }
    faults::spoil(fault_now, reply)
}

/// The reply to one signed-in EWS request.
fn answer(
    exchange: &Exchange,
    may_impersonate: Option<BTreeSet<String>>,
    headers: &HeaderMap,
    body: &[u8],
    drop_stream: bool,
) -> Response {
    let mut directory = exchange.lock();
    let text = String::from_utf8_lossy(body);
    let parsed = match parse_request(&text) {
        Ok(p) => p,
        Err(e) => {
            return xml_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                fault("ErrorSchemaValidation", &e, None),
            );
        }
    };
    record(&mut directory, &parsed, headers);
    let mailbox = match admitted_mailbox(&parsed, may_impersonate.as_ref(), headers) {
        Ok(mailbox) => mailbox,
        Err(refusal) => return refusal.into_response(),
    };
    serve(exchange, directory, &mailbox, &parsed, drop_stream)
}

/// Hand the request to the operation that serves it on `mailbox`
/// (ErrorNonExistentMailbox when there is no such mailbox).
fn serve(
    exchange: &Exchange,
    mut directory: MutexGuard<'_, Directory>,
    mailbox: &str,
    parsed: &Parsed,
    drop_stream: bool,
) -> Response {
    let Some(store) = directory.mailboxes.get(mailbox) else {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorNonExistentMailbox",
                &format!("The SMTP address has no mailbox associated with it: {mailbox}"),
                None,
            ),
        );
    };
    let kind = parsed.subscription_kind.as_deref();
    let request = &parsed.request;
    let shape = Shape::of(request);
    match (parsed.operation.as_str(), parsed.view) {
        ("FindItem", Some(view)) => match folders::resolve(store, request, "ParentFolderIds") {
            Some(folder) => calendar::find_item(store, &folder, view, &shape),
            None => folders::not_found("FindItem"),
        },
        ("GetItem", _) => calendar::get_item(store, &parsed.item_ids, &shape),
        ("GetFolder", _) => folders::get_folder(store, request),
        ("FindFolder", _) => folders::find_folder(store, request),
        ("CreateFolder", _) => folders::create_folder(&mut directory, mailbox, request),
        ("Subscribe", _) if kind == Some("PushSubscriptionRequest") => {
            subscriptions::subscribe_push(exchange, directory, mailbox, parsed)
        }
        ("Subscribe", _) if kind == Some("PullSubscriptionRequest") => {
            subscriptions::subscribe(&mut directory, mailbox, false)
        }
        ("Subscribe", _) if kind == Some("StreamingSubscriptionRequest") => {
            subscriptions::subscribe(&mut directory, mailbox, true)
        }
        ("GetEvents", _) => subscriptions::get_events(&directory, mailbox, parsed),
        ("Unsubscribe", _) => subscriptions::unsubscribe(&mut directory, mailbox, parsed),
        ("GetStreamingEvents", _) => {
            streaming::get_streaming_events(exchange, directory, parsed, drop_stream)
        }
        ("SyncFolderItems", _) => match folders::resolve(store, request, "SyncFolderId") {
            Some(folder) => sync::sync_folder_items(&directory, mailbox, &folder, parsed, &shape),
            None => folders::not_found("SyncFolderItems"),
        },
        ("CreateItem" | "UpdateItem" | "DeleteItem", _) => {
            edit::edit(&mut directory, mailbox, parsed)
        }
        (operation, _) => xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorInvalidRequest",
                &format!("The simulator does not serve {operation} yet."),
                None,
            ),
        ),
    }
}

/// Note the request's operation, and the X-BackEndOverrideCookie it carried.
fn record(directory: &mut Directory, parsed: &Parsed, headers: &HeaderMap) {
    directory.requests.push(parsed.operation.clone());
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix("X-BackEndOverrideCookie="))
        })
        .map(str::to_string);
    directory.affinity.push((parsed.operation.clone(), cookie));
}

/// Why a request may not use the mailbox it names.
#[derive(Debug, Clone, Copy)]
enum MailboxRefusal {
    /// The request impersonates nobody.
    NoMailbox,
    /// The account may not impersonate that mailbox.
    ImpersonationDenied,
    /// X-AnchorMailbox names another mailbox (or none): Exchange's front end
    /// cannot route it.
    Unrouted,
}

impl IntoResponse for MailboxRefusal {
    fn into_response(self) -> Response {
        let (code, text) = match self {
            MailboxRefusal::NoMailbox => ("ErrorInvalidRequest", "No mailbox: impersonate one."),
            MailboxRefusal::ImpersonationDenied => (
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
            ),
            MailboxRefusal::Unrouted => {
                return xml_reply(StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
        };
        xml_reply(StatusCode::INTERNAL_SERVER_ERROR, fault(code, text, None))
    }
}

/// The mailbox the request impersonates, if the account may and X-AnchorMailbox
/// names it too.
fn admitted_mailbox(
    parsed: &Parsed,
    may_impersonate: Option<&BTreeSet<String>>,
    headers: &HeaderMap,
) -> Result<String, MailboxRefusal> {
    let Some(mailbox) = parsed.impersonated.clone() else {
        return Err(MailboxRefusal::NoMailbox);
    };
    if may_impersonate.is_some_and(|set| !set.contains(&mailbox)) {
        return Err(MailboxRefusal::ImpersonationDenied);
    }
    let anchor = headers
        .get("X-AnchorMailbox")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if anchor.as_deref() != Some(mailbox.as_str()) {
        return Err(MailboxRefusal::Unrouted);
    }
    Ok(mailbox)
}
