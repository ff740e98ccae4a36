//! The EWS transport: HTTP(S) to one Exchange server with a service account, and the
//! calendar reads built on it.
//!
//! - TLS is rustls (https by default; plain http only when the server is configured
//!   without SSL); an optional CA bundle is added to the trusted roots.
//! - Every mailbox call impersonates the mailbox and sends `X-AnchorMailbox`.
//! - HTTP 401, 503 and unreadable replies become [`ClientError`]s that say what to do;
//!   a SOAP body is read whatever the status (Exchange sends faults with 500).
//! - Reads are capped at [`MAX_REPLY_BYTES`](crate::ews::xml::MAX_REPLY_BYTES).
//!
//! Sign-in is Basic, NTLM (on-premises Windows authentication; `ntlm_session.rs`
//! says how the handshake stays on one connection) or OAuth client credentials
//! (`token.rs`).
//!
//! Where things are: `transport.rs` sends one request, `retry.rs` decides what is
//! tried again, `sign_in.rs` signs requests in, `stream.rs` reads a streaming
//! connection ([`EventStream`]), `operations.rs` holds every EWS operation,
//! `error.rs` what can fail.

mod error;
mod ntlm_session;
mod operations;
mod retry;
mod sign_in;
mod stream;
mod token;
mod transport;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::{ClientError, StreamEnd};
pub use operations::GET_ITEM_BATCH;
pub use retry::RetryPolicy;
pub use sign_in::Credentials;
pub use stream::{EnvelopeSplitter, EventStream, Streamed};
pub use token::MAX_TOKEN_REPLY_BYTES;

use super::ntlm::NtlmAccount;
use super::request::{Mailbox, Request, ServerVersion};
use super::response::EwsError;
pub(crate) use crate::lock::lock;
use ntlm_session::NtlmSession;
use token::Token;

/// One Exchange server and how to reach it.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The EWS URL, e.g. `https://mail1.flexi.se/EWS/Exchange.asmx`.
    pub url: String,
    pub credentials: Credentials,
    /// PEM file of extra CA certificates to trust.
    pub ca_bundle: Option<std::path::PathBuf>,
    pub timeout: Duration,
    pub version: ServerVersion,
    pub retry: RetryPolicy,
}

/// One Exchange server, reached with one service account.
#[derive(Debug, Clone)]
pub struct EwsClient {
    http: reqwest::Client,
    /// The NTLM account (validated), for NTLM credentials.
    ntlm_account: Option<NtlmAccount>,
    ntlm: Arc<tokio::sync::Mutex<NtlmSession>>,
    config: ServerConfig,
    /// The version to request: `config.version` until a reply's ServerVersionInfo says.
    version: Arc<Mutex<ServerVersion>>,
    token: Arc<tokio::sync::Mutex<Option<Token>>>,
    /// The `X-BackEndOverrideCookie` of this client's subscription group (brief §1.2):
    /// returned by the first subscribe, sent on every later subscription call.
    affinity: Arc<Mutex<Option<String>>>,
}

impl EwsClient {
    /// A client for `config`; fails when the URL, the CA bundle or the NTLM user
    /// cannot be used (nothing is sent yet).
    pub fn new(config: ServerConfig) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::Config {
            url: config.url.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&config.url).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad(
                "use https:// (or http:// for a server configured without SSL)".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        let ntlm_account = match &config.credentials {
            Credentials::Ntlm { user, password } => {
                // See NtlmSession: one HTTP/1.1 connection at a time for the handshake.
                builder = builder.http1_only().pool_max_idle_per_host(1);
                Some(NtlmAccount::new(user, password).map_err(|e| bad(e.to_string()))?)
            }
            _ => None,
        };
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| {
                bad(format!(
                    "the CA bundle {} cannot be read: {e}",
                    path.display()
                ))
            })?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("the CA bundle {} is not PEM: {e}", path.display())))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| bad(e.to_string()))?;
        let version = Arc::new(Mutex::new(config.version));
        Ok(EwsClient {
            http,
            ntlm_account,
            ntlm: Default::default(),
            config,
            version,
            token: Default::default(),
            affinity: Default::default(),
        })
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The RequestServerVersion used now.
    pub fn server_version(&self) -> ServerVersion {
        *lock(&self.version)
    }

    /// The back-end cookie of this client's subscription group, once known.
    pub fn affinity_cookie(&self) -> Option<String> {
        lock(&self.affinity).clone()
    }

    fn request<'a>(&self, mailbox: Option<&'a Mailbox>) -> Request<'a> {
        Request {
            version: self.server_version(),
            mailbox,
        }
    }

    fn ews(&self, error: EwsError) -> ClientError {
        ClientError::Ews {
            url: self.config.url.clone(),
            error,
        }
    }
}
