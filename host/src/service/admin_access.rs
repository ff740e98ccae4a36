//! Who may use the admin port's users: `GET /users` and every POST need the admin
//! bearer token, a `Host` naming this port, and no foreign `Origin`.
//!
//! - `Host` (DNS rebinding: a page whose name resolves to 127.0.0.1): the name must
//!   be a loopback name or address, the address the client connected to, or one of
//!   `service.admin_hosts`; else 421. The port is not compared.
//! - `Origin`, when a browser sends one: `http(s)://` and the request's own `Host`;
//!   else 403 (a cross-site form or `fetch`).
//! - `Authorization: Bearer <token>`, compared in constant time; missing or wrong →
//!   401; no token configured → 403, with how to configure one.
//!
//! `/health` and `/metrics` stay open for monitoring and show neither secrets nor
//! subscription ids.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::Service;
use crate::config::AdminToken;
use crate::listener::Connection;

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
        "this admin port has no token, so it answers /users and actions to nobody: name one with service.admin_token_env (an environment variable) or service.admin_token_file in calvert.toml, restart, and send it as `Authorization: Bearer <token>`"
    )]
    NoTokenConfigured,
    #[error(
        "send the admin token as `Authorization: Bearer <token>` (service.admin_token_env or service.admin_token_file names it)"
    )]
    MissingToken,
    #[error(
        "the admin token sent is not this service's: send the one service.admin_token_env or service.admin_token_file names"
    )]
    WrongToken,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::ForeignHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            Refusal::ForeignOrigin { .. } | Refusal::NoTokenConfigured => StatusCode::FORBIDDEN,
            Refusal::MissingToken | Refusal::WrongToken => StatusCode::UNAUTHORIZED,
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

/// What the checks compare a request with.
pub struct Access<'a> {
    pub token: Option<&'a AdminToken>,
    /// `service.admin_hosts`, lower-cased.
    pub hosts: &'a [String],
    /// The address the client connected to.
    pub local: SocketAddr,
}

/// The middleware on the guarded routes.
pub(super) async fn guard(
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
    let access = Access {
        token: service.config.admin_token.as_ref(),
        hosts: &service.config.admin_hosts,
        local,
    };
    if let Err(refusal) = admit(&access, request.headers()) {
        tracing::warn!(path = %request.uri().path(), reason = %refusal, "an admin request was refused");
        return refusal.into_response();
    }
    next.run(request).await
}

/// Host, then Origin, then the token.
pub fn admit(access: &Access<'_>, headers: &HeaderMap) -> Result<(), Refusal> {
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
    let Some(token) = access.token else {
        return Err(Refusal::NoTokenConfigured);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        None => Err(Refusal::MissingToken),
        Some(presented) if token.matches(presented) => Ok(()),
        Some(_) => Err(Refusal::WrongToken),
    }
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
        assert_eq!(check(token, &[host]), Err(Refusal::MissingToken));
        assert_eq!(
            check(token, &[host, ("authorization", "Basic 0123456789abcdef")]),
            Err(Refusal::MissingToken)
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
