//! What can go wrong talking to Exchange, as errors that say what to do, and the
//! action each one asks of the caller.

use std::time::Duration;

use crate::ews::response::{EwsAction, EwsError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no access token from {token_url} for app {client_id:?}: {reason}; check the tenant, the client id and secret, and that the app has full_access_as_app"
    )]
    Token {
        token_url: String,
        client_id: String,
        reason: String,
    },
    #[error("the EWS URL {url:?} is not usable: {reason}")]
    Config { url: String, reason: String },
    #[error(
        "the server name {host:?} in {url} does not resolve (DNS: {reason}): check the spelling of the EWS URL, and that this machine's DNS server knows the name"
    )]
    Dns {
        url: String,
        host: String,
        reason: String,
    },
    #[error(
        "cannot reach {url}: {reason}; check the port, that Exchange is running, and firewalls or proxies on the way"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the TLS connection to {url} failed: {reason}; if Exchange's certificate comes from a private CA or is self-signed, give that CA certificate as a PEM file (calvert check --ca-bundle FILE), otherwise check the certificate's name and expiry"
    )]
    Tls { url: String, reason: String },
    #[error(
        "{url} refused the service account {user:?} (HTTP 401): check the user name and password (or the app's permission)"
    )]
    Unauthorized { url: String, user: String },
    #[error(
        "{url} does not offer {configured} sign-in (it offers: {offered}): choose one it offers (calvert check --auth basic|ntlm), or enable {configured} authentication on the EWS virtual directory"
    )]
    SchemeNotOffered {
        url: String,
        configured: &'static str,
        offered: String,
    },
    #[error(
        "{url} refused the NTLM sign-in of {user:?} (HTTP 401 to the Authenticate message): check the password, the user name (DOMAIN\\user or user@domain), and that the account is neither locked nor expired"
    )]
    NtlmRefused { url: String, user: String },
    #[error(
        "the NTLM handshake with {url} for {user:?} failed: {reason}; check that Windows Authentication (NTLM) is enabled on the EWS virtual directory and that no proxy between Calvert and Exchange breaks keep-alive connections"
    )]
    NtlmHandshake {
        url: String,
        user: String,
        reason: String,
    },
    #[error(
        "{url} answered HTTP {status} with no EWS reply; Exchange is busy or down: Calvert retries later"
    )]
    Unavailable { url: String, status: u16 },
    #[error(
        "{url} answered HTTP {status} without SOAP: check the EWS URL (it should end in /EWS/Exchange.asmx)"
    )]
    Http { url: String, status: u16 },
    #[error("{url}: {error}")]
    Ews { url: String, error: EwsError },
    /// A reply without a declared length went past the size cap while it was read.
    #[error("{url}: {reason}")]
    Oversized { url: String, reason: String },
    #[error(
        "the streaming connection to {url} sent neither events nor a keep-alive for {waited:?}: Calvert reconnects and resyncs (check proxies or load balancers that cut idle connections)"
    )]
    StreamStalled { url: String, waited: Duration },
    #[error(
        "the streaming connection to {url} ended in the middle of a message: Calvert reconnects and resyncs"
    )]
    StreamDropped { url: String },
}

/// Why a streaming connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server closed it (its ConnectionTimeout): open a new one.
    Closed,
    /// The access token is due for renewal: reconnect (a new token is fetched).
    TokenRefresh,
}

impl ClientError {
    /// Whether the server certainly did not act on the request (busy, unavailable,
    /// unauthorized, unreachable before sending).
    pub(super) fn not_processed(&self) -> bool {
        match self {
            ClientError::Ews { error, .. } => error.code() == Some("ErrorServerBusy"),
            ClientError::Unavailable { .. }
            | ClientError::Unauthorized { .. }
            | ClientError::SchemeNotOffered { .. }
            | ClientError::NtlmRefused { .. } => true,
            _ => false,
        }
    }

    /// The EWS response code and its action, when Exchange gave one.
    pub fn code_action(&self) -> Option<(&str, EwsAction)> {
        match self {
            ClientError::Ews { error, .. } => error.code().map(|code| (code, error.action())),
            _ => None,
        }
    }

    /// How long Exchange asked Calvert to wait (`BackOffMilliseconds`), if it did.
    pub fn back_off(&self) -> Option<Duration> {
        match self {
            ClientError::Ews { error, .. } => error.back_off(),
            _ => None,
        }
    }

    /// What to do about it.
    pub fn action(&self) -> EwsAction {
        match self {
            ClientError::Ews { error, .. } => error.action(),
            ClientError::Dns { .. }
            | ClientError::Unreachable { .. }
            | ClientError::Unavailable { .. }
            | ClientError::Oversized { .. } => EwsAction::RetryLater,
            ClientError::StreamStalled { .. } | ClientError::StreamDropped { .. } => {
                EwsAction::Resubscribe
            }
            ClientError::Config { .. }
            | ClientError::Token { .. }
            | ClientError::Tls { .. }
            | ClientError::Unauthorized { .. }
            | ClientError::SchemeNotOffered { .. }
            | ClientError::NtlmRefused { .. }
            | ClientError::NtlmHandshake { .. }
            | ClientError::Http { .. } => EwsAction::Fail,
        }
    }

    /// A failed HTTP exchange with `url`: the name does not resolve, TLS failed, or
    /// the server cannot be reached, told apart by the error's text and its causes.
    pub(super) fn transport(url: &str, error: &reqwest::Error) -> ClientError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
        ClientError::from_transport_reason(url, reason)
    }

    /// [`ClientError::transport`] once the reason is text.
    fn from_transport_reason(url: &str, reason: String) -> ClientError {
        let url = url.to_string();
        let lower = reason.to_ascii_lowercase();
        if lower.contains("dns error") || lower.contains("failed to lookup address") {
            let host = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            ClientError::Dns { url, host, reason }
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            ClientError::Tls { url, reason }
        } else {
            ClientError::Unreachable { url, reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://mail1.flexi.se/EWS/Exchange.asmx";

    fn busy(back_off: Option<Duration>) -> ClientError {
        ClientError::Ews {
            url: URL.into(),
            error: EwsError::Response {
                code: "ErrorServerBusy".into(),
                text: "busy".into(),
                back_off,
            },
        }
    }

    #[test]
    fn transport_failures_are_told_apart_by_their_text() {
        let dns = ClientError::from_transport_reason(
            URL,
            "error sending request: dns error: failed to lookup address information".into(),
        );
        assert!(
            matches!(&dns, ClientError::Dns { host, .. } if host == "mail1.flexi.se"),
            "{dns:?}"
        );
        let tls = ClientError::from_transport_reason(
            URL,
            "error sending request: invalid peer certificate: UnknownIssuer".into(),
        );
        assert!(matches!(tls, ClientError::Tls { .. }), "{tls:?}");
        let refused = ClientError::from_transport_reason(
            URL,
            "error sending request: tcp connect error: Connection refused".into(),
        );
        assert!(
            matches!(refused, ClientError::Unreachable { .. }),
            "{refused:?}"
        );
        assert_eq!(dns.action(), EwsAction::RetryLater);
        assert_eq!(refused.action(), EwsAction::RetryLater);
        assert_eq!(tls.action(), EwsAction::Fail);
    }

    #[test]
    fn only_refusals_before_any_work_count_as_not_processed() {
        let url = || URL.to_string();
        for (error, not_processed) in [
            (busy(None), true),
            (
                ClientError::Unavailable {
                    url: url(),
                    status: 503,
                },
                true,
            ),
            (
                ClientError::Unauthorized {
                    url: url(),
                    user: "svc".into(),
                },
                true,
            ),
            (
                ClientError::NtlmRefused {
                    url: url(),
                    user: "svc".into(),
                },
                true,
            ),
            // The request may have reached the server before the connection broke.
            (
                ClientError::Unreachable {
                    url: url(),
                    reason: "connection reset".into(),
                },
                false,
            ),
            (
                ClientError::Ews {
                    url: url(),
                    error: EwsError::Unexpected {
                        expected: "a response message",
                    },
                },
                false,
            ),
            (ClientError::StreamDropped { url: url() }, false),
        ] {
            assert_eq!(error.not_processed(), not_processed, "{error:?}");
        }
    }

    #[test]
    fn the_servers_back_off_and_code_are_read_from_ews_errors_only() {
        let asked = Duration::from_millis(1500);
        assert_eq!(busy(Some(asked)).back_off(), Some(asked));
        assert_eq!(
            busy(None).code_action(),
            Some(("ErrorServerBusy", EwsAction::RetryLater))
        );
        let http = ClientError::Http {
            url: URL.into(),
            status: 404,
        };
        assert_eq!(http.back_off(), None);
        assert_eq!(http.code_action(), None);
    }
}
