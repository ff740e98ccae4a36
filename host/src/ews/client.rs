//! The EWS transport: HTTP(S) to one Exchange server with a service account, and the
//! calendar reads built on it.
//!
//! - TLS is rustls (https by default; plain http only when the server is configured
//!   without SSL); an optional CA bundle is added to the trusted roots.
//! - Every mailbox call impersonates the mailbox and sends `X-AnchorMailbox`.
//! - HTTP 401, 503 and unreadable replies become [`ClientError`]s that say what to do;
//!   a SOAP body is read whatever the status (Exchange sends faults with 500).
//! - Reads are capped at [`MAX_REPLY_BYTES`].
//!
//! Sign-in is Basic, NTLM (on-premises Windows authentication; see [`NtlmSession`]
//! for how the handshake stays on one connection) or OAuth client credentials.

use std::time::Duration;

use crate::backoff::Backoff;

use super::calendar::{
    CalendarPage, SyncRound, parse_find_item, parse_get_item, parse_saved_items,
    parse_sync_folder_items,
};
use super::notification::{
    ConnectionStatus, EventsReply, StreamSplitter, Subscribed, parse_events, parse_subscribe,
};
use super::ntlm::{self, Challenge, NtlmAccount};
use super::request::{Mailbox, Request, ServerVersion};
use super::response::{EwsAction, EwsError};
use super::xml::{MAX_REPLY_BYTES, XmlError};
use crate::component::wit::CalendarItem;

/// Items fetched per GetItem call.
pub const GET_ITEM_BATCH: usize = 50;
/// How often a window is split in two when a page does not hold all its items.
const MAX_SPLITS: u32 = 8;

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

/// How transient failures are retried: exponential back-off with jitter, or the
/// server's own `BackOffMilliseconds` when it gives one.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    /// The longest wait; a server asking for longer is not waited for here (the caller
    /// reschedules the mailbox).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry `attempt` (0-based): the host's [`Backoff`] rule.
    fn delay(&self, attempt: u32) -> Duration {
        Backoff {
            base: self.base,
            max: self.max,
        }
        .wait(attempt)
    }
}

/// The first saved item of a CreateItem/UpdateItem reply.
fn first_saved(reply: &str) -> Result<(String, String), EwsError> {
    parse_saved_items(reply)?
        .into_iter()
        .next()
        .unwrap_or(Err(EwsError::Unexpected {
            expected: "a response message",
        }))
}

/// Whether an operation may be repeated after an error that left it unclear whether
/// the server acted (a lost or cut reply): reads may, creating an item may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Always,
    OnlyIfNotProcessed,
    /// A subscription call: repeatable, and sent with the group's server affinity.
    Affine,
}

/// How the service account signs in.
#[derive(Clone)]
pub enum Credentials {
    /// On-premises Exchange: a service account with the ApplicationImpersonation role.
    Basic { user: String, password: String },
    /// On-premises Exchange with Windows authentication (IIS "Windows Integrated",
    /// NTLMv2): the same service account, `DOMAIN\\user` or `user@domain`.
    Ntlm { user: String, password: String },
    /// Exchange Online (while EWS lasts there, until 2027-04-01): OAuth 2.0 client
    /// credentials of an app with `full_access_as_app`.
    OAuth {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: String,
    },
}

impl Credentials {
    /// Who signs in, for messages (never the secret).
    pub fn who(&self) -> &str {
        match self {
            Credentials::Basic { user, .. } | Credentials::Ntlm { user, .. } => user,
            Credentials::OAuth { client_id, .. } => client_id,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: <hidden> }}")
            }
            Credentials::Ntlm { user, .. } => {
                write!(f, "Ntlm {{ user: {user:?}, password: <hidden> }}")
            }
            Credentials::OAuth {
                token_url,
                client_id,
                scope,
                ..
            } => write!(
                f,
                "OAuth {{ token_url: {token_url:?}, client_id: {client_id:?}, scope: {scope:?}, client_secret: <hidden> }}"
            ),
        }
    }
}

/// A cached access token.
#[derive(Debug, Clone)]
struct Token {
    access: String,
    /// When to fetch a new one: some time before it expires.
    refresh_at: tokio::time::Instant,
}

/// How long before expiry a token is replaced: a tenth of its life, at most 5 minutes.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

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
    /// The caller stopped reading.
    Stopped,
    /// The access token is due for renewal: reconnect (a new token is fetched).
    TokenRefresh,
}

impl ClientError {
    /// Whether the server certainly did not act on the request (busy, unavailable,
    /// unauthorized, unreachable before sending).
    fn not_processed(&self) -> bool {
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

    /// What to do about it.
    pub fn action(&self) -> EwsAction {
        match self {
            ClientError::Ews { error, .. } => error.action(),
            ClientError::Dns { .. }
            | ClientError::Unreachable { .. }
            | ClientError::Unavailable { .. } => EwsAction::RetryLater,
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
}

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
struct NtlmSession {
    /// The scheme the server takes NTLM tokens in (`NTLM`, else `Negotiate`),
    /// learnt from its first `WWW-Authenticate`.
    scheme: Option<&'static str>,
    /// Whether the pooled connection is signed in.
    signed_in: bool,
}

/// A reply, and the NTLM session held while it is read.
struct Sent {
    response: reqwest::Response,
    _session: Option<tokio::sync::OwnedMutexGuard<NtlmSession>>,
}

/// The `WWW-Authenticate` values of a reply.
fn www_authenticate(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// The scheme names in `WWW-Authenticate` values, for messages.
fn scheme_names(values: &[String]) -> String {
    let names: Vec<&str> = values
        .iter()
        .filter_map(|v| v.split_whitespace().next())
        .collect();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

/// One Exchange server, reached with one service account.
#[derive(Debug, Clone)]
pub struct EwsClient {
    http: reqwest::Client,
    /// The NTLM account (validated), for NTLM credentials.
    ntlm_account: Option<NtlmAccount>,
    ntlm: std::sync::Arc<tokio::sync::Mutex<NtlmSession>>,
    config: ServerConfig,
    /// The version to request: `config.version` until a reply's ServerVersionInfo says.
    version: std::sync::Arc<std::sync::Mutex<ServerVersion>>,
    token: std::sync::Arc<tokio::sync::Mutex<Option<Token>>>,
    /// The `X-BackEndOverrideCookie` of this client's subscription group (brief §1.2):
    /// returned by the first subscribe, sent on every later subscription call.
    affinity: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// MajorVersion/MinorVersion of a reply's `ServerVersionInfo`, read from its head
/// without parsing the whole reply.
fn server_version_in(reply: &str) -> Option<ServerVersion> {
    let head = &reply[..reply.len().min(4096)];
    let info = &head[head.find("ServerVersionInfo")?..];
    let number = |name: &str| -> Option<u32> {
        let at = info.find(&format!("{name}=\""))? + name.len() + 2;
        info[at..].split('"').next()?.parse().ok()
    };
    Some(ServerVersion::from_server(
        number("MajorVersion")?,
        number("MinorVersion")?,
    ))
}

impl EwsClient {
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
        let version = std::sync::Arc::new(std::sync::Mutex::new(config.version));
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

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The RequestServerVersion used now.
    pub fn server_version(&self) -> ServerVersion {
        *self
            .version
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn request<'a>(&self, mailbox: Option<&'a Mailbox>) -> Request<'a> {
        Request {
            version: self.server_version(),
            mailbox,
        }
    }

    /// POST one SOAP request; the reply text when it is XML to read.
    pub async fn call(
        &self,
        mailbox: Option<&Mailbox>,
        envelope: String,
    ) -> Result<String, ClientError> {
        self.call_with(mailbox, envelope, false).await
    }

    /// The back-end cookie of this client's subscription group, once known.
    pub fn affinity_cookie(&self) -> Option<String> {
        self.affinity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Subscription calls of one group ask for server affinity and carry the group's
    /// back-end cookie; the first one's reply sets it.
    fn with_affinity(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request = request.header("X-PreferServerAffinity", "true");
        if let Some(cookie) = self.affinity_cookie() {
            request = request.header(
                reqwest::header::COOKIE,
                format!("X-BackEndOverrideCookie={cookie}"),
            );
        }
        request
    }

    fn remember_affinity(&self, response: &reqwest::Response) {
        let cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("X-BackEndOverrideCookie="))
            .map(|v| v.split(';').next().unwrap_or(v).to_string());
        if let Some(cookie) = cookie {
            *self
                .affinity
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cookie);
        }
    }

    async fn call_with(
        &self,
        mailbox: Option<&Mailbox>,
        envelope: String,
        affinity: bool,
    ) -> Result<String, ClientError> {
        let url = &self.config.url;
        let mut attempt = 0;
        let response = loop {
            let mut request = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(envelope.clone());
            if let Some(mailbox) = mailbox {
                request = request.header("X-AnchorMailbox", mailbox.anchor());
            }
            if affinity {
                request = self.with_affinity(request);
            }
            let sent = self.send(request).await?;
            if sent.response.status().as_u16() != 401 {
                break sent;
            }
            // A token can be revoked or expire early: one retry with a fresh one.
            if attempt == 0 && matches!(self.config.credentials, Credentials::OAuth { .. }) {
                attempt += 1;
                *self.token.lock().await = None;
                continue;
            }
            return Err(self.refused(&sent.response));
        };
        // The NTLM session (if any) is held until the reply is read.
        let Sent {
            response,
            _session: _held,
        } = response;
        if affinity {
            self.remember_affinity(&response);
        }
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
        {
            return Err(self.ews(
                XmlError::TooLarge {
                    bytes: response.content_length().unwrap_or(0) as usize,
                    limit: MAX_REPLY_BYTES,
                }
                .into(),
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if body.len() > MAX_REPLY_BYTES {
            return Err(self.ews(
                XmlError::TooLarge {
                    bytes: body.len(),
                    limit: MAX_REPLY_BYTES,
                }
                .into(),
            ));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if let Some(version) = server_version_in(&text) {
            *self
                .version
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = version;
        }
        let looks_soap = text.contains("Envelope");
        match status {
            // A 200 goes to the reader, which says what it is (HTML, empty, cut off);
            // a 500 is read only when it carries a SOAP fault.
            200 => Ok(text),
            500 if looks_soap => Ok(text),
            502..=504 => Err(ClientError::Unavailable {
                url: url.clone(),
                status,
            }),
            _ => Err(ClientError::Http {
                url: url.clone(),
                status,
            }),
        }
    }

    fn ews(&self, error: EwsError) -> ClientError {
        ClientError::Ews {
            url: self.config.url.clone(),
            error,
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> ClientError {
        let url = self.config.url.clone();
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
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

    /// Every concrete item overlapping [start, end), with the fields only GetItem
    /// returns. A window whose page is not complete is split in two (CalendarView
    /// has no paging), at most [`MAX_SPLITS`] times deep; items are de-duplicated by id.
    pub async fn calendar(
        &self,
        mailbox: &Mailbox,
        start: i64,
        end: i64,
        page_size: u32,
    ) -> Result<Vec<CalendarItem>, ClientError> {
        let mut windows = vec![(start, end, 0u32)];
        let mut found: std::collections::BTreeMap<String, CalendarItem> =
            std::collections::BTreeMap::new();
        while let Some((from, to, depth)) = windows.pop() {
            let page = self.find_page(mailbox, from, to, page_size).await?;
            if !page.includes_last_item_in_range && depth < MAX_SPLITS && to - from > 60 {
                let middle = from + (to - from) / 2;
                windows.push((middle, to, depth + 1));
                windows.push((from, middle, depth + 1));
                continue;
            }
            if !page.includes_last_item_in_range {
                return Err(self.ews(EwsError::Response {
                    code: "ErrorExceededFindCountLimit".into(),
                    text: format!("more than {page_size} items in one minute of the calendar"),
                    back_off: None,
                }));
            }
            for item in page.items {
                found.insert(item.id.clone(), item);
            }
        }
        let ids: Vec<String> = found.keys().cloned().collect();
        let mut items = Vec::with_capacity(ids.len());
        for batch in ids.chunks(GET_ITEM_BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let envelope = self.request(Some(mailbox)).get_items(&refs);
            for result in self
                .exchange(Repeat::Always, mailbox, &envelope, parse_get_item)
                .await?
            {
                match result {
                    Ok(item) => items.push(item),
                    // Deleted between FindItem and GetItem: gone, as the next read shows.
                    Err(error) if error.action() == EwsAction::TreatAsDeleted => {}
                    Err(error) => return Err(self.ews(error)),
                }
            }
        }
        Ok(items)
    }

    /// Hold a GetStreamingEvents connection for `subscription_ids` (one group, at most
    /// 200, impersonating the group's anchor `mailbox`) and hand each envelope to
    /// `on_reply` as it arrives; `on_reply` returns false to stop. Failed subscriptions
    /// arrive in `EventsReply::failed` while the connection stays open. A connection
    /// silent for longer than `read_timeout` (keep-alives included) is given up.
    pub async fn stream_events(
        &self,
        mailbox: &Mailbox,
        subscription_ids: &[&str],
        timeout_minutes: u32,
        read_timeout: Duration,
        mut on_reply: impl FnMut(EventsReply) -> bool,
    ) -> Result<StreamEnd, ClientError> {
        let url = &self.config.url;
        let envelope = self
            .request(Some(mailbox))
            .get_streaming_events(subscription_ids, timeout_minutes);
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("X-AnchorMailbox", mailbox.anchor())
            .timeout(Duration::from_secs(
                u64::from(timeout_minutes.clamp(1, 30)) * 60 + 60,
            ))
            .body(envelope);
        let request = self.with_affinity(request);
        let refresh_at = self.token_refresh_at().await?;
        // The connection is this stream's from here: the NTLM session is released
        // for other calls as soon as the headers are in.
        let mut response = self.send(request).await?.response;
        match response.status().as_u16() {
            200 => {}
            401 => return Err(self.refused(&response)),
            502..=504 => {
                return Err(ClientError::Unavailable {
                    url: url.clone(),
                    status: response.status().as_u16(),
                });
            }
            500 => {
                let text = response.text().await.map_err(|e| self.transport_error(e))?;
                return Err(
                    self.ews(parse_events(&text).err().unwrap_or(EwsError::Unexpected {
                        expected: "a streaming reply",
                    })),
                );
            }
            status => {
                return Err(ClientError::Http {
                    url: url.clone(),
                    status,
                });
            }
        }
        let mut splitter = StreamSplitter::new(MAX_REPLY_BYTES);
        let mut carry: Vec<u8> = Vec::new();
        loop {
            if refresh_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                // The token this connection was opened with is about to expire:
                // end it so the caller reconnects with a fresh one.
                return Ok(StreamEnd::TokenRefresh);
            }
            let wait = match refresh_at {
                Some(at) => {
                    read_timeout.min(at.saturating_duration_since(tokio::time::Instant::now()))
                }
                None => read_timeout,
            };
            let Ok(next) = tokio::time::timeout(wait, response.chunk()).await else {
                if refresh_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                    return Ok(StreamEnd::TokenRefresh);
                }
                return Err(ClientError::StreamStalled {
                    url: url.clone(),
                    waited: read_timeout,
                });
            };
            let chunk = next.map_err(|e| self.transport_error(e))?;
            let Some(chunk) = chunk else {
                return if splitter.pending() == 0 && carry.is_empty() {
                    Ok(StreamEnd::Closed)
                } else {
                    Err(ClientError::StreamDropped { url: url.clone() })
                };
            };
            // A chunk may end inside a UTF-8 character: keep the tail for the next one.
            carry.extend_from_slice(&chunk);
            let valid = match std::str::from_utf8(&carry) {
                Ok(text) => text.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => {
                    return Err(self.ews(
                        XmlError::Malformed {
                            detail: "the stream is not UTF-8".into(),
                            position: 0,
                        }
                        .into(),
                    ));
                }
            };
            let text = std::str::from_utf8(&carry[..valid])
                .map_err(|_| ClientError::StreamDropped { url: url.clone() })?
                .to_string();
            carry.drain(..valid);
            for envelope in splitter.push(&text).map_err(|e| self.ews(e.into()))? {
                let reply = parse_events(&envelope).map_err(|e| self.ews(e))?;
                let closed = reply.connection == Some(ConnectionStatus::Closed);
                if !on_reply(reply) {
                    return Ok(StreamEnd::Stopped);
                }
                if closed {
                    return Ok(StreamEnd::Closed);
                }
            }
        }
    }

    /// Send a request signed in: Basic, a bearer token fetched (and cached) when
    /// needed, or on an NTLM-signed-in connection.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Sent, ClientError> {
        let request = match &self.config.credentials {
            Credentials::Basic { user, password } => request.basic_auth(user, Some(password)),
            Credentials::OAuth { .. } => request.bearer_auth(self.access_token().await?),
            Credentials::Ntlm { .. } => return self.send_ntlm(request).await,
        };
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        Ok(Sent {
            response,
            _session: None,
        })
    }

    /// The error for a final 401: the credentials were refused, or the server does
    /// not take the configured scheme at all.
    fn refused(&self, response: &reqwest::Response) -> ClientError {
        let offered = www_authenticate(response);
        let url = self.config.url.clone();
        let takes = |scheme: &str| {
            offered.is_empty()
                || offered.iter().any(|v| {
                    v.split_whitespace()
                        .next()
                        .is_some_and(|name| name.eq_ignore_ascii_case(scheme))
                })
        };
        match &self.config.credentials {
            Credentials::Basic { .. } if !takes("Basic") => ClientError::SchemeNotOffered {
                url,
                configured: "Basic",
                offered: scheme_names(&offered),
            },
            Credentials::OAuth { .. } if !takes("Bearer") => ClientError::SchemeNotOffered {
                url,
                configured: "OAuth (Bearer)",
                offered: scheme_names(&offered),
            },
            Credentials::Ntlm { user, .. } => ClientError::NtlmRefused {
                url,
                user: user.clone(),
            },
            credentials => ClientError::Unauthorized {
                url,
                user: credentials.who().to_string(),
            },
        }
    }

    /// Send a request over an NTLM-signed-in connection, signing one in first when
    /// needed (see [`NtlmSession`]).
    async fn send_ntlm(&self, request: reqwest::RequestBuilder) -> Result<Sent, ClientError> {
        let url = &self.config.url;
        let Some(account) = &self.ntlm_account else {
            return Err(ClientError::Config {
                url: url.clone(),
                reason: "NTLM sign-in without an NTLM account".into(),
            });
        };
        let handshake = |reason: String| ClientError::NtlmHandshake {
            url: url.clone(),
            user: self.config.credentials.who().to_string(),
            reason,
        };
        let mut session = self.ntlm.clone().lock_owned().await;
        let send = |authorization: Option<String>| {
            let copy = request.try_clone();
            async move {
                let Some(mut copy) = copy else {
                    return Err(ClientError::Config {
                        url: url.clone(),
                        reason: "the request body cannot be sent twice".into(),
                    });
                };
                if let Some(value) = authorization {
                    copy = copy.header(reqwest::header::AUTHORIZATION, value);
                }
                copy.send().await.map_err(|e| self.transport_error(e))
            }
        };
        // The 401's body is read to its end so that the connection goes back to the
        // pool for the next message of the handshake.
        let drain = |response: reqwest::Response| async move {
            response
                .bytes()
                .await
                .map(|_| ())
                .map_err(|e| self.transport_error(e))
        };
        let mut offered = Vec::new();
        if session.signed_in || session.scheme.is_none() {
            let response = send(None).await?;
            if response.status().as_u16() != 401 {
                return Ok(Sent {
                    response,
                    _session: Some(session),
                });
            }
            // The connection was closed (or never signed in): sign in a new one.
            session.signed_in = false;
            offered = www_authenticate(&response);
            drain(response).await?;
        }
        let scheme = match session.scheme {
            Some(scheme) => scheme,
            None => {
                let headers: Vec<&str> = offered.iter().map(String::as_str).collect();
                match ntlm::offered(&headers) {
                    Some((scheme, _)) => scheme,
                    None => {
                        return Err(ClientError::SchemeNotOffered {
                            url: url.clone(),
                            configured: "NTLM",
                            offered: scheme_names(&offered),
                        });
                    }
                }
            }
        };
        session.scheme = Some(scheme);
        let negotiate = ntlm::negotiate().map_err(|e| handshake(e.to_string()))?;
        let response = send(Some(format!("{scheme} {negotiate}"))).await?;
        if response.status().as_u16() != 401 {
            // The server answered without asking for more (it took the request
            // without sign-in): that is the reply.
            return Ok(Sent {
                response,
                _session: Some(session),
            });
        }
        let challenge = www_authenticate(&response);
        drain(response).await?;
        let headers: Vec<&str> = challenge.iter().map(String::as_str).collect();
        let Some((_, Some(token))) = ntlm::offered(&headers) else {
            return Err(handshake(format!(
                "the server answered the Negotiate message without a challenge (WWW-Authenticate: {})",
                scheme_names(&challenge)
            )));
        };
        let authenticate = Challenge::from_base64(&token)
            .and_then(|challenge| challenge.authenticate(account))
            .map_err(|e| handshake(e.to_string()))?;
        let response = send(Some(format!("{scheme} {authenticate}"))).await?;
        if response.status().as_u16() == 401 {
            drain(response).await?;
            return Err(ClientError::NtlmRefused {
                url: url.clone(),
                user: self.config.credentials.who().to_string(),
            });
        }
        session.signed_in = true;
        Ok(Sent {
            response,
            _session: Some(session),
        })
    }

    /// When the current token must be replaced (None for Basic and NTLM).
    async fn token_refresh_at(&self) -> Result<Option<tokio::time::Instant>, ClientError> {
        match &self.config.credentials {
            Credentials::Basic { .. } | Credentials::Ntlm { .. } => Ok(None),
            Credentials::OAuth { .. } => {
                self.access_token().await?;
                Ok(self.token.lock().await.as_ref().map(|t| t.refresh_at))
            }
        }
    }

    /// The cached access token, or a new one from the token endpoint (client
    /// credentials grant) when there is none or it is due for renewal.
    pub async fn access_token(&self) -> Result<String, ClientError> {
        let Credentials::OAuth {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.config.credentials
        else {
            return Err(ClientError::Config {
                url: self.config.url.clone(),
                reason: "Basic credentials have no token".into(),
            });
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && tokio::time::Instant::now() < token.refresh_at
        {
            return Ok(token.access.clone());
        }
        let failed = |reason: String| ClientError::Token {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            reason,
        };
        let response = self
            .http
            .post(token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| failed(format!("HTTP {status}, not JSON: {e}")))?;
        if !status.is_success() {
            let description = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no reason given");
            return Err(failed(format!("HTTP {status}: {description}")));
        }
        let access = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("the reply has no access_token".into()))?;
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        let token = Token {
            access: access.to_string(),
            refresh_at: tokio::time::Instant::now() + lifetime - refresh_margin(lifetime),
        };
        *cached = Some(token);
        Ok(access.to_string())
    }

    /// Run `operation`, retrying transient failures by the policy: the server's
    /// back-off when it gives one (unless longer than the policy's max), else
    /// exponential back-off with jitter. A 401 is retried once (Exchange sometimes
    /// answers 401 when it wants the client to slow down).
    async fn retrying<T, F, Fut>(&self, repeat: Repeat, mut operation: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let policy = self.config.retry;
        let mut unauthorized_seen = false;
        let mut attempt = 0;
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let transient = match &error {
                ClientError::Unauthorized { .. } => {
                    !std::mem::replace(&mut unauthorized_seen, true)
                }
                other => other.action() == EwsAction::RetryLater,
            };
            let allowed = repeat != Repeat::OnlyIfNotProcessed || error.not_processed();
            if !transient || !allowed || attempt + 1 >= policy.attempts {
                return Err(error);
            }
            let wait = match &error {
                ClientError::Ews { error: ews, .. } => ews.back_off(),
                _ => None,
            };
            let wait = match wait {
                Some(asked) if asked > policy.max => return Err(error),
                Some(asked) => asked,
                None => policy.delay(attempt),
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One request and its reply, read by `parse`, with retries by the policy.
    async fn exchange<T>(
        &self,
        repeat: Repeat,
        mailbox: &Mailbox,
        envelope: &str,
        parse: impl Fn(&str) -> Result<T, EwsError>,
    ) -> Result<T, ClientError> {
        self.retrying(repeat, || async {
            let affinity = repeat == Repeat::Affine;
            let text = self
                .call_with(Some(mailbox), envelope.to_string(), affinity)
                .await?;
            parse(&text).map_err(|e| self.ews(e))
        })
        .await
    }

    /// One CalendarView page of [start, end).
    pub async fn find_page(
        &self,
        mailbox: &Mailbox,
        start: i64,
        end: i64,
        max: u32,
    ) -> Result<CalendarPage, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .find_calendar_view(start, end, max);
        self.exchange(Repeat::Always, mailbox, &envelope, |text| {
            parse_find_item(text).map(|(page, _)| page)
        })
        .await
    }

    /// A pull subscription to the mailbox's calendar, resuming from `from` if given.
    pub async fn subscribe_pull(
        &self,
        mailbox: &Mailbox,
        from: Option<&str>,
        timeout_minutes: u32,
    ) -> Result<Subscribed, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .subscribe_pull(from, timeout_minutes);
        self.exchange(Repeat::Affine, mailbox, &envelope, parse_subscribe)
            .await
    }

    /// The events of a pull subscription after `from`. A failed subscription (not
    /// found, expired, …) is an error whose action is to resubscribe and resync.
    pub async fn get_events(
        &self,
        mailbox: &Mailbox,
        subscription_id: &str,
        from: &str,
    ) -> Result<EventsReply, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .get_events(subscription_id, from);
        let mut reply = self
            .exchange(Repeat::Affine, mailbox, &envelope, parse_events)
            .await?;
        if let Some((_, error)) = reply.failed.pop() {
            return Err(self.ews(error));
        }
        Ok(reply)
    }

    /// A streaming subscription to the mailbox's calendar.
    pub async fn subscribe_streaming(&self, mailbox: &Mailbox) -> Result<Subscribed, ClientError> {
        let envelope = self.request(Some(mailbox)).subscribe_streaming();
        self.exchange(Repeat::Affine, mailbox, &envelope, parse_subscribe)
            .await
    }

    /// One SyncFolderItems round on the mailbox's calendar. Persist `sync_state` only
    /// after the changes are applied; loop while `includes_last_item_in_range` is false.
    pub async fn sync_folder_items(
        &self,
        mailbox: &Mailbox,
        sync_state: Option<&str>,
        max_changes: u32,
    ) -> Result<SyncRound, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .sync_folder_items(sync_state, max_changes);
        self.exchange(Repeat::Always, mailbox, &envelope, parse_sync_folder_items)
            .await
    }

    /// Create `item` in the mailbox's calendar (nobody invited); its new id and change
    /// key. Repeated only when the server certainly did not act, so a lost reply
    /// never makes a duplicate.
    pub async fn create_item(
        &self,
        mailbox: &Mailbox,
        item: &CalendarItem,
    ) -> Result<(String, String), ClientError> {
        let envelope = self.request(Some(mailbox)).create_item(item);
        self.exchange(Repeat::OnlyIfNotProcessed, mailbox, &envelope, first_saved)
            .await
    }

    /// Write the basic fields of `item` over the item `id`, if it still has `change_key`;
    /// the new change key. (A repeat after a lost reply meets a new change key and
    /// fails as a conflict instead of writing twice.)
    pub async fn update_item(
        &self,
        mailbox: &Mailbox,
        id: &str,
        change_key: &str,
        item: &CalendarItem,
    ) -> Result<String, ClientError> {
        let envelope = self
            .request(Some(mailbox))
            .update_item(id, change_key, item);
        self.exchange(Repeat::Always, mailbox, &envelope, |text| {
            first_saved(text).map(|(_, key)| key)
        })
        .await
    }

    /// Delete the item `id` (to Deleted Items, cancelling nothing).
    pub async fn delete_item(
        &self,
        mailbox: &Mailbox,
        id: &str,
        change_key: Option<&str>,
    ) -> Result<(), ClientError> {
        let envelope = self.request(Some(mailbox)).delete_item(id, change_key);
        self.exchange(Repeat::Always, mailbox, &envelope, |text| {
            let root = super::xml::parse(text)?;
            for message in super::response::response_messages(super::response::body(&root)?)? {
                message.into_result()?;
            }
            Ok(())
        })
        .await
    }

    /// A push subscription: Exchange POSTs the calendar's events to `url` (the push
    /// listener), at least every `status_frequency_minutes`.
    pub async fn subscribe_push(
        &self,
        mailbox: &Mailbox,
        url: &str,
        from: Option<&str>,
        status_frequency_minutes: u32,
    ) -> Result<Subscribed, ClientError> {
        let envelope =
            self.request(Some(mailbox))
                .subscribe_push(url, from, status_frequency_minutes);
        self.exchange(Repeat::Affine, mailbox, &envelope, parse_subscribe)
            .await
    }
}
