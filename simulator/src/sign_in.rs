//! Signing in: Basic and NTLM (NTLMv2, the challenge tied to its TCP connection;
//! the messages themselves are [`ntlm`]'s) for service accounts, and OAuth client
//! credentials (the token endpoint and the bearer tokens it issues).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::directory::{Directory, NtlmConnection, Offered};
use crate::exchange::Exchange;
use crate::ntlm;

/// `POST /oauth2/token`: the client credentials grant.
pub(crate) async fn token(State(exchange): State<Exchange>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let json = |status: StatusCode, body: String| {
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type","error_description":"only client_credentials"}"#
                .into(),
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let mut directory = exchange.lock();
    let lifetime = match directory.apps.get(&client_id) {
        Some(app) if Some(&app.secret) == form.get("client_secret") => app.token_lifetime,
        _ => {
            return json(
                StatusCode::UNAUTHORIZED,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.into(),
            );
        }
    };
    directory.tokens_issued += 1;
    let access = format!("token-{}-{}", client_id, directory.tokens_issued);
    directory.tokens.insert(
        access.clone(),
        (client_id, tokio::time::Instant::now() + lifetime),
    );
    json(
        StatusCode::OK,
        format!(
            r#"{{"token_type":"Bearer","expires_in":{},"access_token":"{access}"}}"#,
            lifetime.as_secs().max(1)
        ),
    )
}

/// The bearer token's app, if the token is current.
fn bearer_app(directory: &Directory, headers: &HeaderMap) -> Option<Option<BTreeSet<String>>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    let (app, expires) = directory.tokens.get(token)?;
    if tokio::time::Instant::now() >= *expires {
        return None;
    }
    Some(directory.apps.get(app)?.may_impersonate.clone())
}

/// The user and password of a Basic Authorization header.
fn basic_user(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A 401: offering the server's schemes, or carrying an NTLM challenge.
#[derive(Debug)]
pub(crate) enum Refusal {
    Unauthorized {
        offered: Offered,
        bearer: bool,
    },
    /// `WWW-Authenticate: <scheme> <Type 2 message>`.
    Challenge(String),
}

/// The 401 offering what the server takes now.
fn unauthorized(directory: &Directory) -> Refusal {
    Refusal::Unauthorized {
        offered: directory.offered,
        bearer: !directory.apps.is_empty(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        let headers = response.headers_mut();
        let mut offer = |value: &str| {
            if let Ok(value) = header::HeaderValue::from_str(value) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        };
        match self {
            Refusal::Challenge(value) => offer(&value),
            Refusal::Unauthorized { offered, bearer } => {
                if offered.ntlm {
                    offer("NTLM");
                    offer("Negotiate");
                }
                if offered.basic {
                    offer("Basic realm=\"exchange\"");
                }
                if bearer {
                    offer("Bearer");
                }
            }
        }
        response
    }
}

/// Who the request signs in as: the mailboxes it may impersonate (`None`: all), or
/// the 401 (or NTLM challenge) to answer with.
pub(crate) fn sign_in(
    directory: &mut Directory,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Option<BTreeSet<String>>, Refusal> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let Some(authorization) = authorization else {
        // A connection signed in with NTLM stays signed in.
        if let Some(NtlmConnection::SignedIn(user)) = directory.ntlm_connections.get(&peer) {
            let may = directory
                .accounts
                .get(user)
                .map(|a| a.may_impersonate.clone());
            return may.ok_or_else(|| unauthorized(directory));
        }
        return Err(unauthorized(directory));
    };
    let (scheme, token) = authorization.split_once(' ').unwrap_or((authorization, ""));
    if scheme.eq_ignore_ascii_case("NTLM") || scheme.eq_ignore_ascii_case("Negotiate") {
        if !directory.offered.ntlm {
            return Err(unauthorized(directory));
        }
        return ntlm_step(directory, peer, scheme, token.trim());
    }
    if let Some((user, password)) = basic_user(headers) {
        return match directory
            .accounts
            .get(&user)
            .filter(|a| directory.offered.basic && a.password == password)
        {
            Some(account) => Ok(account.may_impersonate.clone()),
            None => Err(unauthorized(directory)),
        };
    }
    bearer_app(directory, headers).ok_or_else(|| unauthorized(directory))
}

/// One NTLM message on connection `peer`: a Negotiate gets a Challenge tied to the
/// connection; an Authenticate must come on the connection its challenge went to and
/// verify against the account's password.
fn ntlm_step(
    directory: &mut Directory,
    peer: SocketAddr,
    scheme: &str,
    token: &str,
) -> Result<Option<BTreeSet<String>>, Refusal> {
    let message = base64::engine::general_purpose::STANDARD
        .decode(token)
        .unwrap_or_default();
    match ntlm::message_type(&message) {
        Some(1) => Err(ntlm_challenge(directory, peer, scheme)),
        Some(3) => match ntlm_verified(directory, peer, &message) {
            Ok((name, may)) => {
                directory
                    .ntlm_connections
                    .insert(peer, NtlmConnection::SignedIn(name));
                Ok(may)
            }
            Err(why) => {
                directory.ntlm_refusals.push(format!("{peer}: {why}"));
                Err(unauthorized(directory))
            }
        },
        _ => Err(unauthorized(directory)),
    }
}

/// A Negotiate: the Challenge to answer with, remembered for the connection.
fn ntlm_challenge(directory: &mut Directory, peer: SocketAddr, scheme: &str) -> Refusal {
    directory.ntlm_handshakes += 1;
    let challenge = fresh_challenge(peer, directory.ntlm_handshakes);
    directory
        .ntlm_connections
        .insert(peer, NtlmConnection::Challenged(challenge));
    let filetime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() + 11_644_473_600) * 10_000_000)
        .unwrap_or(0);
    let type2 = base64::engine::general_purpose::STANDARD
        .encode(ntlm::challenge_message(challenge, filetime));
    Refusal::Challenge(format!("{scheme} {type2}"))
}

/// An Authenticate: the account it signs in (name and impersonation rights), or why
/// it is refused. The connection's challenge is used up either way.
fn ntlm_verified(
    directory: &mut Directory,
    peer: SocketAddr,
    message: &[u8],
) -> Result<(String, Option<BTreeSet<String>>), String> {
    let Some(NtlmConnection::Challenged(challenge)) = directory.ntlm_connections.remove(&peer)
    else {
        return Err("an Authenticate message on a connection that was sent no challenge".into());
    };
    let answer = ntlm::parse_authenticate(message)
        .map_err(|e| format!("an unreadable Authenticate message: {e}"))?;
    let full = format!("{}\\{}", answer.domain, answer.user);
    let (name, account) = directory
        .accounts
        .iter()
        .find(|(name, _)| {
            (!answer.domain.is_empty() && name.eq_ignore_ascii_case(&full))
                || (answer.domain.is_empty() && name.eq_ignore_ascii_case(&answer.user))
        })
        .ok_or_else(|| format!("no account {}\\{}", answer.domain, answer.user))?;
    if !ntlm::verify_ntlmv2(
        &account.password,
        &answer.user,
        &answer.domain,
        challenge,
        &answer.nt_response,
    ) {
        return Err(format!("the NTLMv2 response of {name} does not verify"));
    }
    Ok((name.clone(), account.may_impersonate.clone()))
}

/// An 8-byte server challenge, different for every handshake.
fn fresh_challenge(peer: SocketAddr, handshake: usize) -> [u8; 8] {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new()
        .hash_one((peer, handshake))
        .to_le_bytes()
}
