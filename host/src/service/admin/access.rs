//! Who may use the administration: every route but `/health`, `/metrics`, `/login`
//! and `/assets` needs a `Host` naming this port, no foreign `Origin`, and a
//! [`Principal`]: a logged-in session (its cookie) or the admin bearer token.
//!
//! - `Host` (DNS rebinding: a page whose name resolves to 127.0.0.1): the name must
//!   be a loopback name or address, the address the client connected to, or one of
//!   `service.admin_hosts`; else 421. The port is not compared.
//! - `Origin`, when a browser sends one: `http(s)://` and the request's own `Host`;
//!   else 403 (a cross-site form or `fetch`).
//! - `Authorization: Bearer <token>`, compared in constant time, for scripts; wrong →
//!   401; sent to a port with no token configured → 403, with how to configure one.
//! - Otherwise the session cookie ([`super::sessions`]); none or ended → a page
//!   redirects to `/login`, `/api/…` answers 401.
//! - A change (any method but GET and HEAD) needs the administrator role (a viewer
//!   gets 403) and, from a session, its CSRF token as header `X-CSRF-Token` or form
//!   field `csrf`, in a urlencoded or a multipart form (a spreadsheet upload), else
//!   403. The token is not needed with the bearer token: no
//!   browser sends that on its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::sessions;
use crate::config::AdminToken;
use crate::listener::Connection;
use crate::service::state::Service;
use crate::store::Role;

/// The largest form body searched for the CSRF token.
const MAX_FORM: usize = 1 << 20;
/// The largest multipart form read (a spreadsheet and the form's few fields).
pub const MAX_UPLOAD: usize = crate::import::sheet::MAX_BYTES + (64 << 10);

/// Why a request to a guarded route was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error(
        "Host {host:?} is not a name of this admin port: use its address (e.g. http://127.0.0.1:9185/), or add the name to service.admin_hosts"
    )]
    ForeignHost { host: String },
    #[error(
        "a request from the web page at {origin} is refused: the admin port answers only its own origin"
    )]
    ForeignOrigin { origin: String },
    #[error(
        "this admin port has no token, so a bearer token is refused: name one with service.admin_token_env (an environment variable) or service.admin_token_file in calvert.toml and restart, or log in at /login"
    )]
    NoTokenConfigured,
    #[error(
        "log in at /login, or send the admin token as `Authorization: Bearer <token>` (service.admin_token_env or service.admin_token_file names it)"
    )]
    NotLoggedIn,
    #[error(
        "the admin token sent is not this service's: send the one service.admin_token_env or service.admin_token_file names"
    )]
    WrongToken,
    #[error("{account} is a viewer: viewers may look, not change; ask an administrator")]
    Viewer { account: String },
    #[error(
        "this change came without the page's CSRF token (X-CSRF-Token or the form's csrf field): reload the page and try again"
    )]
    MissingCsrf,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::ForeignHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            Refusal::ForeignOrigin { .. }
            | Refusal::NoTokenConfigured
            | Refusal::Viewer { .. }
            | Refusal::MissingCsrf => StatusCode::FORBIDDEN,
            Refusal::NotLoggedIn | Refusal::WrongToken => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let text = format!("{self}\n");
        match self.status() {
            StatusCode::UNAUTHORIZED => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                text,
            )
                .into_response(),
            status => (status, text).into_response(),
        }
    }
}

/// Who a request comes from, once admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account name, or "token" for the bearer token.
    pub name: String,
    pub role: Role,
    /// The session's CSRF token (None for the bearer token).
    pub csrf: Option<String>,
}

/// What the checks compare a request with.
pub struct Access<'a> {
    pub token: Option<&'a AdminToken>,
    /// `service.admin_hosts`, lower-cased.
    pub hosts: &'a [String],
    /// The address the client connected to.
    pub local: SocketAddr,
}

/// The middleware on the guarded routes.
pub(in crate::service) async fn guard(
    State(service): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    let local = match request.extensions().get::<Connection>() {
        Some(connection) => connection.local,
        // Only the listener's accept loop serves these routes; without its note
        // nothing but loopback names match.
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let config = service.config();
    let access = Access {
        token: config.admin_token.as_ref(),
        hosts: &config.admin_hosts,
        local,
    };
    let path = request.uri().path().to_string();
    let admitted = match admit(&access, request.headers()) {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => session(&service, request.headers()).ok_or(Refusal::NotLoggedIn),
        Err(refusal) => Err(refusal),
    };
    let principal = match admitted {
        Ok(principal) => principal,
        Err(Refusal::NotLoggedIn) if is_page(&request) => {
            return Redirect::to(&format!("/login?next={}", next_param(&request))).into_response();
        }
        Err(refusal) => {
            tracing::warn!(path = %path, reason = %refusal, "an admin request was refused");
            return refusal.into_response();
        }
    };
    let mut request = match allowed_change(&principal, request).await {
        Ok(request) => request,
        Err(refusal) => {
            tracing::warn!(path = %path, account = %principal.name, reason = %refusal, "an admin change was refused");
            return refusal.into_response();
        }
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// A page (not the API) asked for by a browser: sent to the login page.
fn is_page(request: &Request) -> bool {
    request.method() == Method::GET && !request.uri().path().starts_with("/api/")
}

/// Where the login page sends the browser back to (a path on this port only).
fn next_param(request: &Request) -> String {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    form_urlencoded::byte_serialize(target.as_bytes()).collect()
}

/// The session the request's cookie names, if alive.
fn session(service: &Service, headers: &HeaderMap) -> Option<Principal> {
    let id = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(sessions::from_cookie_header)?;
    let found = service
        .admin
        .sessions
        .find(&id, crate::service::clock::wall_clock())?;
    Some(Principal {
        name: found.account,
        role: found.role,
        csrf: Some(found.csrf),
    })
}

/// A GET passes; a change needs the administrator role and, from a session, the
/// CSRF token. A form body is read (capped) to find it and handed on unchanged.
async fn allowed_change(principal: &Principal, request: Request) -> Result<Request, Refusal> {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(request);
    }
    if !principal.role.may_change() {
        return Err(Refusal::Viewer {
            account: principal.name.clone(),
        });
    }
    let Some(expected) = &principal.csrf else {
        return Ok(request);
    };
    let header = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok());
    if header.is_some_and(|sent| same(sent, expected)) {
        return Ok(request);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let multipart = content_type.starts_with("multipart/form-data");
    if !multipart && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(Refusal::MissingCsrf);
    }
    let (parts, body) = request.into_parts();
    let cap = if multipart { MAX_UPLOAD } else { MAX_FORM };
    let bytes = axum::body::to_bytes(body, cap)
        .await
        .map_err(|_| Refusal::MissingCsrf)?;
    let found = if multipart {
        multipart_csrf(&parts, &bytes)
            .await
            .is_some_and(|v| same(&v, expected))
    } else {
        form_urlencoded::parse(&bytes).any(|(k, v)| k == "csrf" && same(&v, expected))
    };
    if !found {
        return Err(Refusal::MissingCsrf);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The `csrf` field of a multipart form, if it comes before the first file (the
/// pages put it first, so a large upload is not read twice for it).
async fn multipart_csrf(
    parts: &axum::http::request::Parts,
    bytes: &axum::body::Bytes,
) -> Option<String> {
    use axum::extract::FromRequest;
    let request = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let mut form = axum::extract::Multipart::from_request(request, &())
        .await
        .ok()?;
    while let Ok(Some(field)) = form.next_field().await {
        if field.file_name().is_some() {
            return None;
        }
        if field.name() == Some("csrf") {
            return field.text().await.ok();
        }
    }
    None
}

fn same(sent: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    sent.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Host, then Origin, then the bearer token if one is sent: `Ok(None)` when none
/// is (the session decides).
pub fn admit(access: &Access<'_>, headers: &HeaderMap) -> Result<Option<Principal>, Refusal> {
    check_site(access, headers)?;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return Err(Refusal::NotLoggedIn);
    };
    let Some(token) = access.token else {
        return Err(Refusal::NoTokenConfigured);
    };
    if token.matches(presented) {
        Ok(Some(Principal {
            name: "token".into(),
            role: Role::Administrator,
            csrf: None,
        }))
    } else {
        Err(Refusal::WrongToken)
    }
}

/// The `Host` and `Origin` checks alone (the login page needs them too).
pub fn check_site(access: &Access<'_>, headers: &HeaderMap) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default();
    if !host_is_ours(&host, access) {
        return Err(Refusal::ForeignHost { host });
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !authority.is_some_and(|a| a.eq_ignore_ascii_case(&host)) {
            return Err(Refusal::ForeignOrigin { origin });
        }
    }
    Ok(())
}

/// Whether the name in `Host` (without its port) is this port's.
fn host_is_ours(host: &str, access: &Access<'_>) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6] or [v6]:port
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => v6,
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.to_ascii_lowercase();
    if name == "localhost" || access.hosts.contains(&name) {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == access.local.ip(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn check(token: Option<&AdminToken>, pairs: &[(&'static str, &str)]) -> Result<(), Refusal> {
        match checked(token, pairs)? {
            Some(_) => Ok(()),
            None => Err(Refusal::NotLoggedIn),
        }
    }

    fn checked(
        token: Option<&AdminToken>,
        pairs: &[(&'static str, &str)],
    ) -> Result<Option<Principal>, Refusal> {
        let hosts = ["calvert.flexi.se".to_string()];
        let access = Access {
            token,
            hosts: &hosts,
            local: "10.0.0.5:9185".parse().unwrap(),
        };
        admit(&access, &headers(pairs))
    }

    #[test]
    fn host_origin_and_token_are_each_required() {
        let token = AdminToken::new("0123456789abcdef");
        let token = Some(&token);
        let bearer = ("authorization", "Bearer 0123456789abcdef");
        for host in [
            "127.0.0.1:9185",
            "localhost:9185",
            "LOCALHOST",
            "[::1]:9185",
            "10.0.0.5:9185",
            "calvert.flexi.se",
            "127.0.0.2",
        ] {
            assert_eq!(check(token, &[("host", host), bearer]), Ok(()), "{host}");
        }
        for host in [
            "evil.example:9185",
            "10.0.0.6:9185",
            "",
            "127.0.0.1:x",
            "[::1",
        ] {
            assert!(
                matches!(
                    check(token, &[("host", host), bearer]),
                    Err(Refusal::ForeignHost { .. })
                ),
                "{host}"
            );
        }
        let host = ("host", "127.0.0.1:9185");
        assert_eq!(
            check(token, &[host, ("origin", "http://127.0.0.1:9185"), bearer]),
            Ok(())
        );
        for origin in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:9186",
            "file://",
        ] {
            assert!(
                matches!(
                    check(token, &[host, ("origin", origin), bearer]),
                    Err(Refusal::ForeignOrigin { .. })
                ),
                "{origin}"
            );
        }
        assert_eq!(checked(token, &[host]), Ok(None), "the session decides");
        assert_eq!(
            check(token, &[host, ("authorization", "Basic 0123456789abcdef")]),
            Err(Refusal::NotLoggedIn)
        );
        assert_eq!(
            check(token, &[host, ("authorization", "Bearer 0123456789abcdeF")]),
            Err(Refusal::WrongToken)
        );
        assert_eq!(
            check(None, &[host, bearer]),
            Err(Refusal::NoTokenConfigured)
        );
    }
}
