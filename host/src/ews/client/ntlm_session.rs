//! NTLM sign-in over HTTP: the Negotiate → Challenge → Authenticate exchange on one
//! keep-alive connection (the messages themselves are [`crate::ews::ntlm`]).

use super::sign_in::{Sent, scheme_names, www_authenticate};
use super::{ClientError, EwsClient};
use crate::ews::ntlm::{self, Challenge, NtlmAccount};
use crate::http_body::read_capped;

/// The largest 401 body read during the handshake (IIS sends a short HTML page); a
/// longer one ends the sign-in with an error instead of being buffered.
const MAX_CHALLENGE_BODY_BYTES: usize = 1024 * 1024;

/// NTLM sign-in state of an [`EwsClient`].
///
/// NTLM signs in a *connection*, not a request: the Negotiate (Type 1) → 401
/// Challenge (Type 2) → Authenticate (Type 3) exchange must travel on one keep-alive
/// HTTP/1.1 connection, which then stays signed in (IIS: `Persistent-Auth: true`).
/// reqwest chooses connections from its pool, so the client is built so that the
/// pool can only ever offer the right one:
///
/// - an NTLM client has its own reqwest client (one per server: one `EwsClient`),
///   HTTP/1.1 only (no multiplexing), keeping at most one idle connection;
/// - the whole handshake runs under this mutex, so no other request of the client
///   can take that idle connection between Type 1 and Type 3, nor start a second
///   handshake; ordinary calls hold it until their reply is read, so they reuse the
///   signed-in connection one after another;
/// - each 401 body is read to its end before the next message is sent, so hyper
///   returns the connection to the pool (an unread body would close it), and the
///   Type 3 request checks out exactly the connection the challenge came on.
///
/// A streaming connection keeps its (signed-in) connection for itself after its
/// headers arrive and releases the mutex; a call meanwhile opens a second
/// connection and signs that in the same way. When a signed-in connection was
/// closed, the server's 401 on the new one starts a new handshake.
#[derive(Debug, Default)]
pub(super) struct NtlmSession {
    /// The scheme the server takes NTLM tokens in (`NTLM`, else `Negotiate`),
    /// learnt from its first `WWW-Authenticate`.
    scheme: Option<&'static str>,
    /// Whether the pooled connection is signed in.
    signed_in: bool,
}

/// The scheme to send NTLM tokens in: the one learnt before, else the one the
/// server's `WWW-Authenticate` values offer (`NTLM`, else `Negotiate`).
fn ntlm_scheme(learnt: Option<&'static str>, offered: &[String]) -> Option<&'static str> {
    learnt.or_else(|| {
        let headers: Vec<&str> = offered.iter().map(String::as_str).collect();
        ntlm::offered(&headers).map(|(scheme, _)| scheme)
    })
}

/// The server's Challenge (Type 2) token in the `WWW-Authenticate` values of the
/// 401 answering the Negotiate message.
fn challenge_token(values: &[String]) -> Option<String> {
    let headers: Vec<&str> = values.iter().map(String::as_str).collect();
    ntlm::offered(&headers).and_then(|(_, token)| token)
}

/// How the Negotiate → Challenge → Authenticate exchange ended.
enum Handshake {
    /// The server answered the Negotiate message without asking for more (it took
    /// the request without sign-in): that is the reply.
    Answered(reqwest::Response),
    /// The connection is signed in; the reply to the Authenticate message.
    SignedIn(reqwest::Response),
}

impl EwsClient {
    /// Send a request over an NTLM-signed-in connection, signing one in first when
    /// needed (see [`NtlmSession`]).
    pub(super) async fn send_ntlm(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Sent, ClientError> {
        let url = &self.config.url;
        let Some(account) = &self.ntlm_account else {
            return Err(ClientError::Config {
                url: url.clone(),
                reason: "NTLM sign-in without an NTLM account".into(),
            });
        };
        let mut session = self.ntlm.clone().lock_owned().await;
        let mut offered = Vec::new();
        if session.signed_in || session.scheme.is_none() {
            let response = self.send_copy(&request, None).await?;
            if response.status().as_u16() != 401 {
                return Ok(Sent {
                    response,
                    _session: Some(session),
                });
            }
            // The connection was closed (or never signed in): sign in a new one.
            session.signed_in = false;
            offered = www_authenticate(&response);
            self.drain(response).await?;
        }
        let Some(scheme) = ntlm_scheme(session.scheme, &offered) else {
            return Err(ClientError::SchemeNotOffered {
                url: url.clone(),
                configured: "NTLM",
                offered: scheme_names(&offered),
            });
        };
        session.scheme = Some(scheme);
        let response = match self.handshake(&request, account, scheme).await? {
            Handshake::Answered(response) => response,
            Handshake::SignedIn(response) => {
                session.signed_in = true;
                response
            }
        };
        Ok(Sent {
            response,
            _session: Some(session),
        })
    }

    /// Negotiate, read the challenge, answer it, all with copies of `request` on
    /// the one pooled connection (the caller holds the session).
    async fn handshake(
        &self,
        request: &reqwest::RequestBuilder,
        account: &NtlmAccount,
        scheme: &'static str,
    ) -> Result<Handshake, ClientError> {
        let failed = |reason: String| ClientError::NtlmHandshake {
            url: self.config.url.clone(),
            user: self.config.credentials.who().to_string(),
            reason,
        };
        let negotiate = ntlm::negotiate().map_err(|e| failed(e.to_string()))?;
        let response = self
            .send_copy(request, Some(format!("{scheme} {negotiate}")))
            .await?;
        if response.status().as_u16() != 401 {
            return Ok(Handshake::Answered(response));
        }
        let challenge = www_authenticate(&response);
        self.drain(response).await?;
        let Some(token) = challenge_token(&challenge) else {
            return Err(failed(format!(
                "the server answered the Negotiate message without a challenge (WWW-Authenticate: {})",
                scheme_names(&challenge)
            )));
        };
        let authenticate = Challenge::from_base64(&token)
            .and_then(|challenge| challenge.authenticate(account))
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .send_copy(request, Some(format!("{scheme} {authenticate}")))
            .await?;
        if response.status().as_u16() == 401 {
            self.drain(response).await?;
            return Err(ClientError::NtlmRefused {
                url: self.config.url.clone(),
                user: self.config.credentials.who().to_string(),
            });
        }
        Ok(Handshake::SignedIn(response))
    }

    /// Send a copy of `request`, with `authorization` when given.
    async fn send_copy(
        &self,
        request: &reqwest::RequestBuilder,
        authorization: Option<String>,
    ) -> Result<reqwest::Response, ClientError> {
        let Some(mut copy) = request.try_clone() else {
            return Err(ClientError::Config {
                url: self.config.url.clone(),
                reason: "the request body cannot be sent twice".into(),
            });
        };
        if let Some(value) = authorization {
            copy = copy.header(reqwest::header::AUTHORIZATION, value);
        }
        copy.send()
            .await
            .map_err(|e| ClientError::transport(&self.config.url, &e))
    }

    /// Read a 401's body to its end (up to [`MAX_CHALLENGE_BODY_BYTES`]), so that
    /// the connection goes back to the pool for the next message of the handshake.
    async fn drain(&self, response: reqwest::Response) -> Result<(), ClientError> {
        read_capped(response, MAX_CHALLENGE_BODY_BYTES)
            .await
            .map(|_| ())
            .map_err(|error| self.body_error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(list: &[&str]) -> Vec<String> {
        list.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn ntlm_is_preferred_then_negotiate_and_a_learnt_scheme_is_kept() {
        assert_eq!(
            ntlm_scheme(None, &values(&["Negotiate", "NTLM", "Basic realm=\"x\""])),
            Some("NTLM")
        );
        assert_eq!(
            ntlm_scheme(None, &values(&["negotiate", "Basic"])),
            Some("Negotiate"),
            "IIS takes a bare NTLM token under Negotiate"
        );
        assert_eq!(ntlm_scheme(None, &values(&["Basic realm=\"x\""])), None);
        assert_eq!(ntlm_scheme(None, &[]), None);
        assert_eq!(
            ntlm_scheme(Some("Negotiate"), &values(&["NTLM"])),
            Some("Negotiate"),
            "the scheme learnt from the first 401 stays"
        );
    }

    #[test]
    fn the_challenge_is_the_token_of_the_ntlm_header() {
        assert_eq!(
            challenge_token(&values(&["Negotiate", "NTLM TlRMTVNTUAACAAAA"])),
            Some("TlRMTVNTUAACAAAA".to_string())
        );
        assert_eq!(
            challenge_token(&values(&["NTLM"])),
            None,
            "a bare scheme is no challenge"
        );
    }
}
