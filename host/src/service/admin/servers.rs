//! The Exchange servers as the administration shows them, and **Test connection**:
//! what `calvert check` does (sign in, read a mailbox's calendar window, decide),
//! said as one sentence. A password or secret is never shown or returned; one may be
//! typed to try it (it is used for that test only and never saved). The sentence
//! never holds a subject: it counts items and names the reason code.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::access::Principal;
use super::config_api::fields;
use super::pages::{Who, html};
use crate::check::{Discovery, ews_url};
use crate::config::ExchangeServer;
use crate::ews::client::{Credentials, EwsClient, RetryPolicy, ServerConfig};
use crate::service::clock::wall_clock;
use crate::service::state::Service;

/// A server as listed (no secret).
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    pub name: String,
    /// The sign-in kind as the file writes it (`basic`, `ntlm`, `oauth`).
    pub auth: &'static str,
    /// Autodiscover finds the EWS URL per mailbox.
    pub autodiscover: bool,
    /// OAuth: the app and its token endpoint (no secret).
    pub client_id: Option<String>,
    pub token_url: Option<String>,
    /// The EWS URL, or None when Autodiscover finds it per mailbox.
    pub url: Option<String>,
    pub ssl: bool,
    pub sign_in: &'static str,
    pub account: String,
    /// The local web service address Exchange pushes to, when push is configured.
    pub push: Option<String>,
    /// Whether that address is https (`push_ssl`).
    pub push_ssl: bool,
    pub timeout_ms: u128,
    /// How many configured users the rules route here.
    pub mailboxes: usize,
    /// The first of them, the mailbox a test reads unless told another.
    pub first_mailbox: Option<String>,
}

fn view(service: &Service, server: &ExchangeServer) -> ServerView {
    let routed: Vec<String> = service
        .mailboxes
        .all()
        .iter()
        .filter(|m| m.user().exchange.as_deref() == Some(server.name.as_str()))
        .map(|m| m.address.clone())
        .collect();
    let (sign_in, auth) = match server.credentials {
        Credentials::Basic { .. } => ("Basic", "basic"),
        Credentials::Ntlm { .. } => ("NTLM", "ntlm"),
        Credentials::OAuth { .. } => ("OAuth", "oauth"),
    };
    let (client_id, token_url) = match &server.credentials {
        Credentials::OAuth {
            client_id,
            token_url,
            ..
        } => (Some(client_id.clone()), Some(token_url.clone())),
        _ => (None, None),
    };
    ServerView {
        name: server.name.clone(),
        auth,
        autodiscover: server.url.is_none(),
        client_id,
        token_url,
        ssl: server
            .url
            .as_deref()
            .is_none_or(|u| u.starts_with("https://")),
        url: server.url.clone(),
        sign_in,
        account: server.credentials.who().to_string(),
        push: server.push.as_ref().map(|p| p.url.clone()),
        push_ssl: server
            .push
            .as_ref()
            .is_some_and(|p| p.url.starts_with("https://")),
        timeout_ms: server.timeout.as_millis(),
        mailboxes: routed.len(),
        first_mailbox: routed.into_iter().min(),
    }
}

/// Every configured server, by name.
pub fn views(service: &Service) -> Vec<ServerView> {
    let config = service.config();
    let mut list: Vec<ServerView> = config.exchange.iter().map(|s| view(service, s)).collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// A test's outcome: whether it worked, and the sentence that says so.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TestOutcome {
    pub server: String,
    pub mailbox: String,
    pub ok: bool,
    pub sentence: String,
}

/// The server's credentials with `password` (when typed) in place of the secret.
fn trying(credentials: &Credentials, password: Option<&str>) -> Credentials {
    let Some(typed) = password.filter(|p| !p.is_empty()) else {
        return credentials.clone();
    };
    match credentials {
        Credentials::Basic { user, .. } => Credentials::Basic {
            user: user.clone(),
            password: typed.to_string(),
        },
        Credentials::Ntlm { user, .. } => Credentials::Ntlm {
            user: user.clone(),
            password: typed.to_string(),
        },
        Credentials::OAuth {
            token_url,
            client_id,
            scope,
            ..
        } => Credentials::OAuth {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            client_secret: typed.to_string(),
            scope: scope.clone(),
        },
    }
}

/// Test `server` by reading `mailbox`, signing in with `password` if typed.
pub async fn test(
    service: &Arc<Service>,
    server: &ExchangeServer,
    mailbox: &str,
    password: Option<&str>,
) -> TestOutcome {
    let outcome = |ok, sentence: String| TestOutcome {
        server: server.name.clone(),
        mailbox: mailbox.to_string(),
        ok,
        sentence,
    };
    let credentials = trying(&server.credentials, password);
    let discovery = Discovery {
        ca_bundle: server.ca_bundle.as_deref(),
        autodiscover_hosts: &server.autodiscover_hosts,
        plain_http_hosts: &server.plain_http_hosts,
        endpoint: None,
    };
    let url = match ews_url(
        server.url.as_deref(),
        &credentials,
        &discovery,
        mailbox,
        server.timeout,
    )
    .await
    {
        Ok(url) => url,
        Err(sentence) => return outcome(false, sentence),
    };
    let client = match EwsClient::new(ServerConfig {
        url: url.clone(),
        credentials,
        ca_bundle: server.ca_bundle.clone(),
        timeout: server.timeout,
        version: crate::ews::request::ServerVersion::Exchange2010Sp2,
        retry: RetryPolicy::default(),
    }) {
        Ok(client) => client,
        Err(error) => return outcome(false, error.to_string()),
    };
    let config = service.config();
    let zone = config
        .user(mailbox)
        .map_or(config.default_zone.clone(), |u| u.zone.clone());
    let now = service.adapters.clock.now();
    let mut core = service.core.instance();
    match crate::check::run(&client, &mut core, mailbox, &zone, &config.triggers, now).await {
        Ok(report) => {
            let now_says = match &report.decision.diversion {
                Some(d) => format!("diverted now with {} until {}", d.reason, d.until_local),
                None => "not diverted now".to_string(),
            };
            outcome(
                true,
                format!(
                    "Connected to {url} as {} and read {mailbox}: {} calendar items in the window; {now_says}",
                    server.credentials.who(),
                    report.items.len()
                ),
            )
        }
        Err(error) => outcome(false, error.to_string()),
    }
}

/// The server named, and the mailbox to read (asked, else its first user).
fn asked(
    service: &Service,
    name: &str,
    fields: &super::config_api::Fields,
) -> Result<(ExchangeServer, String), String> {
    let config = service.config();
    let server = config
        .exchange
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(|| format!("there is no Exchange server {name:?}"))?;
    let typed = fields
        .get("mailbox")
        .map(|m| m.trim())
        .filter(|m| !m.is_empty());
    let mailbox = match typed {
        Some(mailbox) => mailbox.to_string(),
        None => view(service, &server).first_mailbox.ok_or_else(|| {
            "name a mailbox to read: no configured user is routed to this server".to_string()
        })?,
    };
    Ok((server, mailbox))
}

/// Run a test for `principal` and write it to the audit log (a typed password is
/// said to have been used, never shown).
async fn audited_test(
    service: &Arc<Service>,
    principal: &Principal,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TestOutcome, String> {
    let fields = fields(headers, body).map_err(|p| p.message)?;
    let (server, mailbox) = asked(service, name, &fields)?;
    let password = fields.get("password").map(String::as_str);
    let result = test(service, &server, &mailbox, password).await;
    let what = format!(
        "tested the connection to {} with {mailbox}{}: {}",
        server.name,
        if password.is_some_and(|p| !p.is_empty()) {
            " and a typed password"
        } else {
            ""
        },
        if result.ok { "connected" } else { "failed" }
    );
    let who = principal.name.clone();
    let _ = service
        .durably(move |store| store.audit(wall_clock(), &who, &what).map(|_| ()))
        .await;
    Ok(result)
}

/// `GET /api/servers`
pub async fn list(State(service): State<Arc<Service>>) -> Response {
    Json(views(&service)).into_response()
}

/// `POST /api/servers/{name}/test` with `mailbox` (optional) and `password`
/// (optional, to try instead of the configured one; never saved).
pub async fn test_api(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match audited_test(&service, &principal, &name, &headers, &body).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(sentence) => (StatusCode::BAD_REQUEST, format!("{sentence}\n")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "servers.html")]
pub(super) struct ServersPage {
    who: Who,
    section: &'static str,
    servers: Vec<ServerView>,
    targets: Vec<super::server_pages::TargetView>,
    outcome: Option<TestOutcome>,
    problem: Option<String>,
    /// Why an edit was refused.
    pub problems: Vec<super::config_api::Problem>,
}

/// `GET /servers`
pub async fn page(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    servers_page(&service, &principal, Ok(None))
}

/// `POST /servers/{name}/test`: the page with the test's sentence.
pub async fn test_page(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let tested = audited_test(&service, &principal, &name, &headers, &body).await;
    servers_page(&service, &principal, tested.map(Some))
}

/// The page, with a test's outcome or the problem with what was asked.
fn servers_page(
    service: &Service,
    principal: &Principal,
    tested: Result<Option<TestOutcome>, String>,
) -> Response {
    let (outcome, problem) = match tested {
        Ok(outcome) => (outcome, None),
        Err(sentence) => (None, Some(sentence)),
    };
    let page = ServersPage {
        outcome,
        problem,
        ..page_of(service, principal)
    };
    html(StatusCode::OK, page)
}

/// The page as the configuration now is.
pub(super) fn page_of(service: &Service, principal: &Principal) -> ServersPage {
    ServersPage {
        who: Who::from(principal),
        section: "servers",
        servers: views(service),
        targets: super::server_pages::targets(service),
        outcome: None,
        problem: None,
        problems: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_password_replaces_only_the_secret() {
        let basic = Credentials::Basic {
            user: "calvert".into(),
            password: "right".into(),
        };
        let Credentials::Basic { user, password } = trying(&basic, Some("typed")) else {
            panic!("still Basic");
        };
        assert_eq!((user.as_str(), password.as_str()), ("calvert", "typed"));
        let Credentials::Basic { password, .. } = trying(&basic, Some("")) else {
            panic!("still Basic");
        };
        assert_eq!(password, "right", "an empty field keeps the configured one");
        let oauth = Credentials::OAuth {
            token_url: "https://login.example/token".into(),
            client_id: "app".into(),
            client_secret: "s".into(),
            scope: "x".into(),
        };
        let Credentials::OAuth {
            client_secret,
            client_id,
            ..
        } = trying(&oauth, Some("t"))
        else {
            panic!("still OAuth");
        };
        assert_eq!((client_id.as_str(), client_secret.as_str()), ("app", "t"));
    }
}
