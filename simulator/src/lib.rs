//! An Exchange Web Services simulator, for Calvert's tests and demo.
//!
//! It serves `POST /EWS/Exchange.asmx` on loopback, over HTTP ([`start`]) or HTTPS
//! with a self-signed certificate made at start ([`start_https`]), with mailboxes in
//! memory, Basic and NTLM (NTLMv2, the challenge tied to its TCP connection)
//! authentication of service accounts, OAuth client credentials, impersonation
//! rights per account, and faults injected by the test. Its replies follow the shapes of the
//! documented and genuine samples in `../shared/ews/` and are written here,
//! independently of Calvert's own EWS code, so the two check each other.
//!
//! Operations so far: FindItem with a CalendarView (honouring MaxEntriesReturned and
//! setting IncludesLastItemInRange), GetItem, Subscribe (pull) and GetEvents with
//! watermarks (created, modified and deleted items become events; subscriptions can
//! be expired by the test), streaming Subscribe and GetStreamingEvents (a held
//! connection writing one envelope after another, a keep-alive every heartbeat
//! interval while idle, Closed at the end),
//! SyncFolderItems with sync states (paged by MaxChangesReturned; a corrupt state is
//! ErrorInvalidSyncStateData), CreateItem, UpdateItem (a stale change key is
//! ErrorIrresolvableConflict) and DeleteItem, and push subscriptions (events POSTed
//! to the subscriber's URL as SendNotification; an Unsubscribe answer ends them).
//! Anything else answers `ErrorInvalidRequest`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

pub mod ntlm;

/// A calendar item as the simulator stores it (EWS's own words for the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimItem {
    pub id: String,
    pub change_key: String,
    pub subject: String,
    pub location: String,
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    /// Free, Tentative, Busy, OOF, WorkingElsewhere, NoData.
    pub free_busy: String,
    /// Unknown, Organizer, Tentative, Accept, Decline, NoResponseReceived.
    pub my_response: String,
    pub is_meeting: bool,
    /// Single, Occurrence, Exception (RecurringMaster never appears in a CalendarView).
    pub item_type: String,
    pub sensitivity: String,
}

impl SimItem {
    /// A busy appointment the mailbox owner organizes.
    pub fn appointment(id: &str, subject: &str, start: i64, end: i64) -> Self {
        SimItem {
            id: id.into(),
            change_key: format!("CK-{id}-1"),
            subject: subject.into(),
            location: String::new(),
            start,
            end,
            all_day: false,
            free_busy: "Busy".into(),
            my_response: "Organizer".into(),
            is_meeting: false,
            item_type: "Single".into(),
            sensitivity: "Normal".into(),
        }
    }
}

/// A fault for the next request(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP status with an empty body (503, 401, …).
    Status(u16),
    /// HTTP 500 with an ErrorServerBusy SOAP fault carrying BackOffMilliseconds.
    ServerBusy { back_off_ms: u64 },
    /// HTTP 200 with an HTML page, as a proxy's login page.
    HtmlPage,
    /// HTTP 200 with the reply cut in half.
    Truncated,
    /// Answer after a delay.
    Slow(Duration),
    /// A streaming connection ends in the middle of an envelope.
    DropStream,
}

#[derive(Debug, Default)]
struct Mailbox {
    items: BTreeMap<String, SimItem>,
}

#[derive(Debug, Default)]
struct Account {
    password: String,
    /// Mailboxes it may impersonate; `None` is every mailbox.
    may_impersonate: Option<BTreeSet<String>>,
}

/// A pull subscription: the events of one mailbox's calendar after its creation.
#[derive(Debug)]
struct Subscription {
    mailbox: String,
    /// (watermark number, event name, item id), oldest first.
    events: Vec<(u64, &'static str, String)>,
    expired: bool,
}

/// How long a GetStreamingEvents connection stays open (Exchange: ConnectionTimeout
/// minutes; the tests want it short), how often it looks for new events, and how
/// long it may stay silent before it sends a keep-alive.
#[derive(Debug, Clone, Copy)]
struct StreamTiming {
    lifetime: Duration,
    tick: Duration,
    heartbeat: Duration,
}

/// The keep-alive interval of an idle streaming connection. Exchange sends a
/// GetStreamingEventsResponseMessage with ConnectionStatus OK and no Notifications
/// while nothing happens; the EWS Managed API expects one at least every 45 s (its
/// heartbeat) and gives up after twice that (brief §3.3).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(45);

impl Default for StreamTiming {
    fn default() -> Self {
        StreamTiming {
            lifetime: Duration::from_secs(60),
            tick: Duration::from_millis(50),
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// Where a TCP connection's NTLM sign-in stands.
#[derive(Debug, Clone)]
enum NtlmConnection {
    /// A Challenge was sent on it; the Authenticate must come on it too.
    Challenged([u8; 8]),
    /// Signed in as this account (the connection stays signed in).
    SignedIn(String),
}

/// The sign-in schemes the server offers.
#[derive(Debug, Clone, Copy)]
struct Offered {
    basic: bool,
    ntlm: bool,
}

impl Default for Offered {
    fn default() -> Self {
        Offered {
            basic: true,
            ntlm: true,
        }
    }
}

/// The peer address of a request's TCP connection (what ties an NTLM challenge to
/// its connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// An app registered for OAuth client credentials.
#[derive(Debug)]
struct App {
    secret: String,
    may_impersonate: Option<BTreeSet<String>>,
    token_lifetime: Duration,
}

#[derive(Debug, Default)]
struct Directory {
    /// Autodiscover: addresses answered with RedirectAddress to another address.
    redirects: BTreeMap<String, String>,
    autodiscover_requests: usize,
    apps: BTreeMap<String, App>,
    /// Issued access tokens: token → (app, expiry).
    tokens: BTreeMap<String, (String, tokio::time::Instant)>,
    tokens_issued: usize,
    stream_timing: StreamTiming,
    offered: Offered,
    ntlm_connections: BTreeMap<SocketAddr, NtlmConnection>,
    /// Negotiate messages received (one per handshake).
    ntlm_handshakes: usize,
    /// Why NTLM sign-ins were refused.
    ntlm_refusals: Vec<String>,
    /// Every change to every mailbox, for SyncFolderItems: (number, mailbox, item, kind).
    changes: Vec<(u64, String, String, &'static str)>,
    mailboxes: BTreeMap<String, Mailbox>,
    accounts: BTreeMap<String, Account>,
    subscriptions: BTreeMap<String, Subscription>,
    next_watermark: u64,
    faults: VecDeque<Fault>,
    requests: Vec<String>,
    /// Per request: (operation, the X-BackEndOverrideCookie it carried).
    affinity: Vec<(String, Option<String>)>,
}

impl Directory {
    /// A new subscription to `mailbox`'s calendar: its id and starting watermark.
    fn subscribe(&mut self, mailbox: &str) -> (String, u64) {
        let id = format!("sub-{}-{}", mailbox, self.subscriptions.len() + 1);
        self.next_watermark += 1;
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                mailbox: mailbox.to_string(),
                events: Vec::new(),
                expired: false,
            },
        );
        (id, self.next_watermark)
    }

    fn notify(&mut self, mailbox: &str, event: &'static str, item: &str) {
        self.next_watermark += 1;
        let number = self.next_watermark;
        self.changes
            .push((number, mailbox.to_string(), item.to_string(), event));
        for subscription in self
            .subscriptions
            .values_mut()
            .filter(|s| s.mailbox == mailbox)
        {
            self.next_watermark += 1;
            subscription
                .events
                .push((self.next_watermark, event, item.to_string()));
        }
    }
}

fn watermark(n: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("wm-{n}"))
}

fn watermark_number(text: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("wm-")?
        .parse()
        .ok()
}

/// The simulator's state, shared with the server; the test's control API.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    inner: Arc<Mutex<Directory>>,
}

impl Exchange {
    fn lock(&self) -> MutexGuard<'_, Directory> {
        // A panicking test thread must not take the simulator down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_mailbox(&self, address: &str) {
        self.lock()
            .mailboxes
            .entry(address.to_ascii_lowercase())
            .or_default();
    }

    /// A service account; `may_impersonate` `None` means every mailbox.
    pub fn add_account(&self, user: &str, password: &str, may_impersonate: Option<&[&str]>) {
        let may = may_impersonate.map(|list| list.iter().map(|a| a.to_ascii_lowercase()).collect());
        self.lock().accounts.insert(
            user.to_string(),
            Account {
                password: password.to_string(),
                may_impersonate: may,
            },
        );
    }

    /// Create or replace an item (a move or resize bumps the change key), and tell
    /// the mailbox's subscriptions.
    pub fn put_item(&self, mailbox: &str, mut item: SimItem) {
        let mailbox = mailbox.to_ascii_lowercase();
        let mut directory = self.lock();
        let items = &mut directory
            .mailboxes
            .entry(mailbox.clone())
            .or_default()
            .items;
        let event = match items.get(&item.id) {
            Some(old) => {
                let version = old
                    .change_key
                    .rsplit('-')
                    .next()
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(1);
                item.change_key = format!("CK-{}-{}", item.id, version + 1);
                "ModifiedEvent"
            }
            None => "CreatedEvent",
        };
        let id = item.id.clone();
        items.insert(id.clone(), item);
        directory.notify(&mailbox, event, &id);
    }

    pub fn delete_item(&self, mailbox: &str, id: &str) {
        let mailbox = mailbox.to_ascii_lowercase();
        let mut directory = self.lock();
        let removed = directory
            .mailboxes
            .get_mut(&mailbox)
            .and_then(|m| m.items.remove(id))
            .is_some();
        if removed {
            directory.notify(&mailbox, "DeletedEvent", id);
        }
    }

    /// Make every subscription of `mailbox` expire (the next GetEvents says so).
    pub fn expire_subscriptions(&self, mailbox: &str) {
        let mailbox = mailbox.to_ascii_lowercase();
        for subscription in self
            .lock()
            .subscriptions
            .values_mut()
            .filter(|s| s.mailbox == mailbox)
        {
            subscription.expired = true;
        }
    }

    /// An app for OAuth client credentials (`POST /oauth2/token`), whose tokens live
    /// `token_lifetime`.
    pub fn add_app(
        &self,
        client_id: &str,
        secret: &str,
        may_impersonate: Option<&[&str]>,
        token_lifetime: Duration,
    ) {
        let may = may_impersonate.map(|list| list.iter().map(|a| a.to_ascii_lowercase()).collect());
        self.lock().apps.insert(
            client_id.to_string(),
            App {
                secret: secret.to_string(),
                may_impersonate: may,
                token_lifetime,
            },
        );
    }

    /// Autodiscover answers `from` with a RedirectAddress to `to`.
    pub fn redirect_address(&self, from: &str, to: &str) {
        self.lock()
            .redirects
            .insert(from.to_ascii_lowercase(), to.to_ascii_lowercase());
    }

    /// How many Autodiscover requests arrived.
    pub fn autodiscover_requests(&self) -> usize {
        self.lock().autodiscover_requests
    }

    /// Revoke every issued token (the next EWS call with one gets 401).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// How many tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// The token endpoint's URL.
    pub fn token_path() -> &'static str {
        "/oauth2/token"
    }

    /// How long streaming connections stay open before the server closes them.
    pub fn set_stream_lifetime(&self, lifetime: Duration) {
        self.lock().stream_timing.lifetime = lifetime;
    }

    /// Keep-alive interval of idle streaming connections (default
    /// [`DEFAULT_HEARTBEAT`]); a very long one makes a silent stream.
    /// (Also the StatusFrequency of push subscriptions: a StatusEvent is posted when
    /// nothing else was for this long.)
    pub fn set_heartbeat(&self, interval: Duration) {
        self.lock().stream_timing.heartbeat = interval;
    }

    /// Which sign-in schemes the server offers (both by default); OAuth bearer
    /// tokens are always taken.
    pub fn offer_auth(&self, basic: bool, ntlm: bool) {
        self.lock().offered = Offered { basic, ntlm };
    }

    /// How many NTLM handshakes (Negotiate messages) arrived.
    pub fn ntlm_handshakes(&self) -> usize {
        self.lock().ntlm_handshakes
    }

    /// Why NTLM sign-ins were refused, oldest first.
    pub fn ntlm_refusals(&self) -> Vec<String> {
        self.lock().ntlm_refusals.clone()
    }

    /// Queue a fault for the next request.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Per request: the operation and the X-BackEndOverrideCookie it carried.
    pub fn affinity(&self) -> Vec<(String, Option<String>)> {
        self.lock().affinity.clone()
    }

    /// The operation names received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }
}

/// A running simulator.
pub struct Server {
    pub exchange: Exchange,
    pub addr: SocketAddr,
    scheme: &'static str,
    /// The self-signed certificate (PEM) of an HTTPS simulator.
    certificate_pem: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The EWS URL to give Calvert (https for [`start_https`], with the host name
    /// `localhost` its certificate is made for).
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.base_url())
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), Exchange::token_path())
    }

    /// The SOAP Autodiscover endpoint.
    pub fn autodiscover_url(&self) -> String {
        format!("{}/autodiscover/autodiscover.svc", self.base_url())
    }

    fn base_url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// The PEM certificate an HTTPS simulator serves (self-signed, so it is its own
    /// CA): what a client must trust. `None` for plain HTTP.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL scheme a router serves under (for the URLs Autodiscover hands out).
#[derive(Debug, Clone, Copy)]
struct Scheme(&'static str);

fn router(exchange: &Exchange, scheme: &'static str) -> Router {
    Router::new()
        .route("/EWS/Exchange.asmx", post(ews))
        .route("/autodiscover/autodiscover.svc", post(autodiscover))
        .route(Exchange::token_path(), post(token))
        .layer(axum::Extension(Scheme(scheme)))
        .with_state(exchange.clone())
}

/// Start a simulator on a free loopback port, over plain HTTP.
pub async fn start(exchange: Exchange) -> std::io::Result<Server> {
    start_on(exchange, "127.0.0.1:0".parse().expect("a loopback address")).await
}

pub async fn start_on(exchange: Exchange, addr: SocketAddr) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(&exchange, "http").into_make_service_with_connect_info::<Peer>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server {
        exchange,
        addr,
        scheme: "http",
        certificate_pem: None,
        task,
    })
}

/// Start a simulator on a free loopback port over HTTPS, with a self-signed
/// certificate for `localhost` and `127.0.0.1` made now
/// ([`Server::certificate_pem`]).
pub async fn start_https(exchange: Exchange) -> std::io::Result<Server> {
    start_https_on(exchange, "127.0.0.1:0".parse().expect("a loopback address")).await
}

pub async fn start_https_on(exchange: Exchange, addr: SocketAddr) -> std::io::Result<Server> {
    use tokio_rustls::rustls;
    let failed =
        |what: &str, e: &dyn std::fmt::Display| std::io::Error::other(format!("{what}: {e}"));
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| failed("cannot make the certificate", &e))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| failed("no TLS versions", &e))?
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .map_err(|e| failed("the certificate is not usable", &e))?;
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let addr = tcp.local_addr()?;
    let listener = TlsListener::new(tcp, tokio_rustls::TlsAcceptor::from(Arc::new(config)), addr);
    let app = router(&exchange, "https").into_make_service_with_connect_info::<Peer>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server {
        exchange,
        addr,
        scheme: "https",
        certificate_pem: Some(certified.cert.pem()),
        task,
    })
}

/// TLS connections, handshaken in their own tasks (a client that never finishes its
/// handshake holds up nobody), handed to axum as they are ready.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(
        tcp: tokio::net::TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
        local: SocketAddr,
    ) -> Self {
        let (sender, ready) = tokio::sync::mpsc::channel(16);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    // A failed handshake (an untrusting client) just ends that connection.
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
                    {
                        let _ = sender.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener {
            ready,
            local,
            accepting,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task is gone: no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";

/// What the simulator reads from a request.
#[derive(Debug, Default)]
struct Parsed {
    operation: String,
    impersonated: Option<String>,
    view: Option<(i64, i64, usize)>,
    item_ids: Vec<String>,
    /// Subscribe: which kind; GetEvents: the subscription and watermark.
    subscription_kind: Option<String>,
    subscription_id: Option<String>,
    subscription_ids: Vec<String>,
    watermark: Option<String>,
    /// UpdateItem / DeleteItem: the ids and change keys named.
    item_keys: Vec<(String, Option<String>)>,
    /// CreateItem / UpdateItem: the calendar item fields given, by element name.
    fields: BTreeMap<String, String>,
    sync_state: Option<String>,
    max_changes: Option<usize>,
    push_url: Option<String>,
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn instant(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

fn parse_request(body: &str) -> Result<Parsed, String> {
    let mut reader = Reader::from_str(body);
    let mut parsed = Parsed::default();
    let mut in_body = false;
    let mut in_smtp = false;
    let mut text_of: Option<String> = None;
    let mut in_item = false;
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name();
                let name = String::from_utf8_lossy(name.as_ref()).into_owned();
                if in_body && parsed.operation.is_empty() {
                    parsed.operation = name.clone();
                }
                match name.as_str() {
                    "Body" => in_body = true,
                    "PrimarySmtpAddress" => in_smtp = true,
                    "CalendarView" => {
                        let start = attr(&e, b"StartDate")
                            .and_then(|t| instant(&t))
                            .ok_or("bad StartDate")?;
                        let end = attr(&e, b"EndDate")
                            .and_then(|t| instant(&t))
                            .ok_or("bad EndDate")?;
                        let max = attr(&e, b"MaxEntriesReturned")
                            .and_then(|m| m.parse().ok())
                            .unwrap_or(1000);
                        parsed.view = Some((start, end, max));
                    }
                    "ItemId" if parsed.operation == "GetItem" => {
                        parsed.item_ids.extend(attr(&e, b"Id"))
                    }
                    "PullSubscriptionRequest"
                    | "PushSubscriptionRequest"
                    | "StreamingSubscriptionRequest" => {
                        parsed.subscription_kind = Some(name.clone())
                    }
                    "SubscriptionId" | "Watermark" | "SyncState" | "MaxChangesReturned" | "URL" => {
                        text_of = Some(name.clone())
                    }
                    "ItemId"
                        if matches!(parsed.operation.as_str(), "UpdateItem" | "DeleteItem") =>
                    {
                        parsed
                            .item_keys
                            .extend(attr(&e, b"Id").map(|id| (id, attr(&e, b"ChangeKey"))))
                    }
                    "CalendarItem" => in_item = true,
                    _ if in_item => text_of = Some(name.clone()),
                    _ => {}
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"CalendarItem" => in_item = false,
            Event::Text(t) if text_of.is_some() => {
                let value = t
                    .xml_content()
                    .map_err(|e| e.to_string())?
                    .trim()
                    .to_string();
                match text_of.take().as_deref() {
                    Some("SubscriptionId") => {
                        parsed.subscription_ids.push(value.clone());
                        parsed.subscription_id = Some(value);
                    }
                    Some("Watermark") => parsed.watermark = Some(value),
                    Some("SyncState") => parsed.sync_state = Some(value),
                    Some("MaxChangesReturned") => parsed.max_changes = value.parse().ok(),
                    Some("URL") => parsed.push_url = Some(value),
                    Some(field) => {
                        parsed.fields.insert(field.to_string(), value);
                    }
                    None => {}
                }
            }
            Event::Text(t) if in_smtp => {
                parsed.impersonated = Some(
                    t.xml_content()
                        .map_err(|e| e.to_string())?
                        .trim()
                        .to_ascii_lowercase(),
                );
                in_smtp = false;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(parsed)
}

/// One notification event in EWS XML.
fn event_xml(number: u64, kind: &str, item: &str) -> String {
    format!(
        r#"<t:{kind}><t:Watermark>{}</t:Watermark><t:TimeStamp>2026-11-25T09:00:00Z</t:TimeStamp><t:ItemId Id="{}" ChangeKey="x"/><t:ParentFolderId Id="calendar" ChangeKey="x"/></t:{kind}>"#,
        watermark(number),
        escape(item)
    )
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2018_01_08" xmlns:h="{TYPES}"/></s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</s:Body></s:Envelope>"#
    )
}

fn fault(code: &str, message: &str, back_off_ms: Option<u64>) -> String {
    let back_off = back_off_ms
        .map(|ms| format!(r#"<t:MessageXml xmlns:t="{TYPES}"><t:Value Name="BackOffMilliseconds">{ms}</t:Value></t:MessageXml>"#))
        .unwrap_or_default();
    envelope(&format!(
        r#"<s:Fault><faultcode xmlns:a="{TYPES}">a:{code}</faultcode><faultstring xml:lang="en-US">{msg}</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{code}</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{msg}</e:Message>{back_off}</detail></s:Fault>"#,
        msg = escape(message)
    ))
}

fn time(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn item_xml(item: &SimItem) -> String {
    format!(
        r#"<t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/><t:Subject>{}</t:Subject><t:Sensitivity>{}</t:Sensitivity><t:Start>{}</t:Start><t:End>{}</t:End><t:IsAllDayEvent>{}</t:IsAllDayEvent><t:LegacyFreeBusyStatus>{}</t:LegacyFreeBusyStatus><t:Location>{}</t:Location><t:IsMeeting>{}</t:IsMeeting><t:IsCancelled>false</t:IsCancelled><t:CalendarItemType>{}</t:CalendarItemType><t:MyResponseType>{}</t:MyResponseType></t:CalendarItem>"#,
        escape(&item.id),
        escape(&item.change_key),
        escape(&item.subject),
        item.sensitivity,
        time(item.start),
        time(item.end),
        item.all_day,
        item.free_busy,
        escape(&item.location),
        item.is_meeting,
        item.item_type,
        item.my_response
    )
}

/// `POST /autodiscover/autodiscover.svc`: SOAP GetUserSettings for one mailbox. A
/// known mailbox gets this server's EWS URL; a redirected one a RedirectAddress; an
/// unknown one InvalidUser.
async fn autodiscover(
    State(exchange): State<Exchange>,
    axum::Extension(Scheme(scheme)): axum::Extension<Scheme>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    let mailbox = text
        .split("Mailbox>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let mut directory = exchange.lock();
    directory.autodiscover_requests += 1;
    const NS: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
    let user = if let Some(target) = directory.redirects.get(&mailbox) {
        format!(
            "<ErrorCode>RedirectAddress</ErrorCode><ErrorMessage>Redirection address.</ErrorMessage><RedirectTarget>{}</RedirectTarget><UserSettingErrors/><UserSettings/>",
            escape(target)
        )
    } else if directory.mailboxes.contains_key(&mailbox) {
        format!(
            "<ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><UserSettingErrors/><UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>{scheme}://{host}/EWS/Exchange.asmx</Value></UserSetting><UserSetting><Name>GroupingInformation</Name><Value>SIM-GROUP-1</Value></UserSetting></UserSettings>"
        )
    } else {
        "<ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user.</ErrorMessage><UserSettingErrors/><UserSettings/>".to_string()
    };
    xml_reply(
        StatusCode::OK,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body><GetUserSettingsResponseMessage xmlns="{NS}"><Response><ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses><UserResponse>{user}</UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#
        ),
    )
}

/// `POST /oauth2/token`: the client credentials grant.
async fn token(State(exchange): State<Exchange>, body: Bytes) -> Response {
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

fn xml_reply(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn ews(
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
    match fault_now {
        None | Some(Fault::Slow(_)) | Some(Fault::DropStream) => reply,
        Some(Fault::Status(code)) => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response(),
        Some(Fault::ServerBusy { back_off_ms }) => xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault("ErrorServerBusy", "The server cannot service this request right now. Try again later.", Some(back_off_ms)),
        ),
        Some(Fault::HtmlPage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy login</body></html>",
        )
            .into_response(),
        Some(Fault::Truncated) => {
            let full = envelope("<m:FindItemResponse/>");
            xml_reply(StatusCode::OK, full[..full.len() / 2].to_string())
        }
    }
}

fn streaming_envelope(inner: &str) -> String {
    envelope(&format!(
        r#"<m:GetStreamingEventsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{inner}</m:ResponseMessages></m:GetStreamingEventsResponse>"#
    ))
}

fn streaming_error(code: &str, ids: &[String]) -> String {
    let ids: String = ids
        .iter()
        .map(|id| format!("<m:SubscriptionId>{}</m:SubscriptionId>", escape(id)))
        .collect();
    streaming_envelope(&format!(
        r#"<m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText>{code}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ErrorSubscriptionIds>{ids}</m:ErrorSubscriptionIds><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage>"#
    ))
}

/// A held GetStreamingEvents connection: a first `ConnectionStatus` OK at once, one
/// envelope per batch of events, a keep-alive (OK, no Notifications) after each
/// heartbeat interval without anything to send, an error envelope for an expired
/// subscription (the connection stays open), and `ConnectionStatus` Closed at the
/// end of its lifetime.
fn streaming_response(
    exchange: Exchange,
    ids: Vec<String>,
    mut marks: Vec<u64>,
    timing: StreamTiming,
    drop_stream: bool,
) -> Response {
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<String, std::convert::Infallible>>(16);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timing.lifetime;
        let ok = |inner: &str| {
            streaming_envelope(&format!(
                r#"<m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:GetStreamingEventsResponseMessage>"#
            ))
        };
        if drop_stream {
            let first = ok("<m:ConnectionStatus>OK</m:ConnectionStatus>");
            let _ = sender.send(Ok(first[..first.len() / 2].to_string())).await;
            return;
        }
        let keep_alive = ok("<m:ConnectionStatus>OK</m:ConnectionStatus>");
        if sender.send(Ok(keep_alive.clone())).await.is_err() {
            return;
        }
        let mut last_sent = tokio::time::Instant::now();
        let mut reported_expired = vec![false; ids.len()];
        while tokio::time::Instant::now() < deadline {
            let mut notifications = String::new();
            let mut expired = Vec::new();
            {
                let directory = exchange.lock();
                for (i, id) in ids.iter().enumerate() {
                    let Some(subscription) = directory.subscriptions.get(id) else {
                        continue;
                    };
                    if subscription.expired {
                        if !reported_expired[i] {
                            reported_expired[i] = true;
                            expired.push(id.clone());
                        }
                        continue;
                    }
                    // Events are in number order: skip what was sent without a scan.
                    let start = subscription
                        .events
                        .partition_point(|(n, _, _)| *n <= marks[i]);
                    let fresh = &subscription.events[start..];
                    if fresh.is_empty() {
                        continue;
                    }
                    let _ = write!(
                        notifications,
                        "<m:Notification><t:SubscriptionId>{}</t:SubscriptionId>",
                        escape(id)
                    );
                    for (n, kind, item) in fresh {
                        marks[i] = *n;
                        notifications.push_str(&event_xml(*n, kind, item));
                    }
                    notifications.push_str("</m:Notification>");
                }
            }
            let envelope = if !expired.is_empty() {
                Some(streaming_error("ErrorExpiredSubscription", &expired))
            } else if !notifications.is_empty() {
                Some(ok(&format!(
                    "<m:Notifications>{notifications}</m:Notifications>"
                )))
            } else if last_sent.elapsed() >= timing.heartbeat {
                Some(keep_alive.clone())
            } else {
                None
            };
            if let Some(envelope) = envelope {
                if sender.send(Ok(envelope)).await.is_err() {
                    return;
                }
                last_sent = tokio::time::Instant::now();
            }
            tokio::time::sleep(
                timing
                    .tick
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
        let _ = sender
            .send(Ok(ok("<m:ConnectionStatus>Closed</m:ConnectionStatus>")))
            .await;
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Push: POST each batch of a subscription's events to its URL as a
/// `SendNotification`; an answer of `Unsubscribe` (or a URL that keeps failing) ends
/// the subscription.
async fn push_notifications(
    exchange: Exchange,
    id: String,
    url: String,
    mut mark: u64,
    tick: Duration,
) {
    let http = reqwest::Client::new();
    let mut failures = 0;
    let mut last_sent = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let (events, previous, status_every) = {
            let directory = exchange.lock();
            let Some(subscription) = directory.subscriptions.get(&id) else {
                return;
            };
            // An expired push subscription goes quiet, as Exchange's do.
            if subscription.expired {
                return;
            }
            let start = subscription.events.partition_point(|(n, _, _)| *n <= mark);
            let fresh: Vec<(u64, &'static str, String)> = subscription.events[start..].to_vec();
            (fresh, mark, directory.stream_timing.heartbeat)
        };
        let mut body = String::new();
        if events.is_empty() {
            // StatusFrequency: a StatusEvent when nothing else was sent for a while.
            if last_sent.elapsed() < status_every {
                continue;
            }
            body = format!(
                "<t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>",
                watermark(mark)
            );
        }
        for (n, kind, item) in &events {
            body.push_str(&event_xml(*n, kind, item));
        }
        let notification = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header><t:RequestServerVersion xmlns:t="{TYPES}" Version="Exchange2016"/></s:Header><s:Body><m:SendNotification xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>{body}</m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></s:Body></s:Envelope>"#,
            escape(&id),
            watermark(previous)
        );
        let answer = http
            .post(&url)
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(notification)
            .send()
            .await;
        let text = match answer {
            Ok(response) if response.status().is_success() => {
                response.text().await.unwrap_or_default()
            }
            _ => {
                failures += 1;
                if failures >= 3 {
                    exchange.lock().subscriptions.remove(&id);
                    return;
                }
                continue;
            }
        };
        failures = 0;
        last_sent = tokio::time::Instant::now();
        mark = events.last().map(|e| e.0).unwrap_or(mark);
        if text.contains(">Unsubscribe<") {
            exchange.lock().subscriptions.remove(&id);
            return;
        }
    }
}

impl Exchange {
    /// Whether a subscription still exists (push subscriptions end when the listener
    /// answers Unsubscribe).
    pub fn has_subscription(&self, id: &str) -> bool {
        self.lock().subscriptions.contains_key(id)
    }
}

/// A 401: offering the server's schemes, or carrying an NTLM challenge.
#[derive(Debug)]
enum Refusal {
    Unauthorized {
        offered: Offered,
        bearer: bool,
    },
    /// `WWW-Authenticate: <scheme> <Type 2 message>`.
    Challenge(String),
}

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
fn sign_in(
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
        Some(1) => {
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
            Err(Refusal::Challenge(format!("{scheme} {type2}")))
        }
        Some(3) => {
            let refuse = |directory: &mut Directory, why: String| {
                directory.ntlm_refusals.push(format!("{peer}: {why}"));
                Err(unauthorized(directory))
            };
            let Some(NtlmConnection::Challenged(challenge)) =
                directory.ntlm_connections.remove(&peer)
            else {
                return refuse(
                    directory,
                    "an Authenticate message on a connection that was sent no challenge".into(),
                );
            };
            let answer = match ntlm::parse_authenticate(&message) {
                Ok(answer) => answer,
                Err(e) => {
                    return refuse(
                        directory,
                        format!("an unreadable Authenticate message: {e}"),
                    );
                }
            };
            let account = directory
                .accounts
                .iter()
                .find(|(name, _)| {
                    let full = format!("{}\\{}", answer.domain, answer.user);
                    (!answer.domain.is_empty() && name.eq_ignore_ascii_case(&full))
                        || (answer.domain.is_empty() && name.eq_ignore_ascii_case(&answer.user))
                })
                .map(|(name, account)| (name.clone(), account));
            let Some((name, account)) = account else {
                return refuse(
                    directory,
                    format!("no account {}\\{}", answer.domain, answer.user),
                );
            };
            if !ntlm::verify_ntlmv2(
                &account.password,
                &answer.user,
                &answer.domain,
                challenge,
                &answer.nt_response,
            ) {
                return refuse(
                    directory,
                    format!("the NTLMv2 response of {name} does not verify"),
                );
            }
            let may = account.may_impersonate.clone();
            directory
                .ntlm_connections
                .insert(peer, NtlmConnection::SignedIn(name));
            Ok(may)
        }
        _ => Err(unauthorized(directory)),
    }
}

/// An 8-byte server challenge, different for every handshake.
fn fresh_challenge(peer: SocketAddr, handshake: usize) -> [u8; 8] {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new()
        .hash_one((peer, handshake))
        .to_le_bytes()
}

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
    let Some(mailbox) = parsed.impersonated.clone() else {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault("ErrorInvalidRequest", "No mailbox: impersonate one.", None),
        );
    };
    if may_impersonate
        .as_ref()
        .is_some_and(|set| !set.contains(&mailbox))
    {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
                None,
            ),
        );
    }
    let anchor = headers
        .get("X-AnchorMailbox")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if anchor.as_deref() != Some(mailbox.as_str()) {
        return xml_reply(StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    let Some(store) = directory.mailboxes.get(&mailbox) else {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorNonExistentMailbox",
                &format!("The SMTP address has no mailbox associated with it: {mailbox}"),
                None,
            ),
        );
    };
    match (parsed.operation.as_str(), parsed.view) {
        ("FindItem", Some((start, end, max))) => {
            let mut matching: Vec<&SimItem> = store
                .items
                .values()
                .filter(|i| i.start < end && i.end > start)
                .collect();
            matching.sort_by_key(|i| (i.start, i.id.clone()));
            let total = matching.len();
            let page: String = matching.iter().take(max).map(|i| item_xml(i)).collect();
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:FindItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="{total}" IncludesLastItemInRange="{}"><t:Items>{page}</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#,
                    total <= max
                )),
            )
        }
        ("GetItem", _) => {
            let mut messages = String::new();
            for id in &parsed.item_ids {
                match store.items.get(id) {
                    Some(item) => {
                        let _ = write!(
                            messages,
                            r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{}</m:Items></m:GetItemResponseMessage>"#,
                            item_xml(item)
                        );
                    }
                    None => {
                        let _ = write!(
                            messages,
                            r#"<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:GetItemResponseMessage>"#
                        );
                    }
                }
            }
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:GetItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{messages}</m:ResponseMessages></m:GetItemResponse>"#
                )),
            )
        }
        ("Subscribe", _)
            if parsed.subscription_kind.as_deref() == Some("PushSubscriptionRequest") =>
        {
            let Some(url) = parsed.push_url.clone() else {
                return xml_reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    fault(
                        "ErrorInvalidPushSubscriptionUrl",
                        "The URL is missing.",
                        None,
                    ),
                );
            };
            let (id, start) = directory.subscribe(&mailbox);
            let tick = directory.stream_timing.tick;
            drop(directory);
            tokio::spawn(push_notifications(
                exchange.clone(),
                id.clone(),
                url,
                start,
                tick,
            ));
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:SubscribeResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>{}</m:SubscriptionId><m:Watermark>{}</m:Watermark></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse>"#,
                    escape(&id),
                    watermark(start)
                )),
            )
        }
        ("Subscribe", _)
            if matches!(
                parsed.subscription_kind.as_deref(),
                Some("PullSubscriptionRequest" | "StreamingSubscriptionRequest")
            ) =>
        {
            let streaming =
                parsed.subscription_kind.as_deref() == Some("StreamingSubscriptionRequest");
            // The simulator keeps no history: a subscription sees what happens after it.
            let (id, start) = directory.subscribe(&mailbox);
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:SubscribeResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>{}</m:SubscriptionId>{}</m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse>"#,
                    escape(&id),
                    if streaming {
                        String::new()
                    } else {
                        format!("<m:Watermark>{}</m:Watermark>", watermark(start))
                    }
                )),
            )
        }
        ("GetEvents", _) => {
            let id = parsed.subscription_id.clone().unwrap_or_default();
            let after = parsed
                .watermark
                .as_deref()
                .and_then(watermark_number)
                .unwrap_or(0);
            let error = |code: &str, text: &str| {
                xml_reply(
                    StatusCode::OK,
                    envelope(&format!(
                        r#"<m:GetEventsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>"#
                    )),
                )
            };
            let Some(subscription) = directory
                .subscriptions
                .get(&id)
                .filter(|s| s.mailbox == mailbox)
            else {
                return error(
                    "ErrorSubscriptionNotFound",
                    "The specified subscription was not found.",
                );
            };
            if subscription.expired {
                return error("ErrorExpiredSubscription", "The subscription has expired.");
            }
            let mut events = String::new();
            let mut last = after;
            for (n, kind, item) in subscription.events.iter().filter(|(n, _, _)| *n > after) {
                last = *n;
                events.push_str(&event_xml(*n, kind, item));
            }
            if events.is_empty() {
                let _ = write!(
                    events,
                    "<t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>",
                    watermark(last)
                );
            }
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:GetEventsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>{events}</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>"#,
                    escape(&id),
                    watermark(after)
                )),
            )
        }
        ("GetStreamingEvents", _) => {
            let ids = parsed.subscription_ids.clone();
            let unknown: Vec<&String> = ids
                .iter()
                .filter(|id| !directory.subscriptions.contains_key(*id))
                .collect();
            if !unknown.is_empty() || ids.is_empty() {
                return xml_reply(
                    StatusCode::OK,
                    streaming_error("ErrorSubscriptionNotFound", &ids),
                );
            }
            let timing = directory.stream_timing;
            let marks: Vec<u64> = ids.iter().map(|_| directory.next_watermark).collect();
            drop(directory);
            streaming_response(exchange.clone(), ids, marks, timing, drop_stream)
        }
        ("SyncFolderItems", _) => {
            let state_number = |text: &str| -> Option<u64> {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .ok()?;
                String::from_utf8(raw)
                    .ok()?
                    .strip_prefix("ss-")?
                    .parse()
                    .ok()
            };
            let after = match parsed.sync_state.as_deref() {
                None => 0,
                Some(text) => match state_number(text) {
                    Some(n) => n,
                    None => {
                        return xml_reply(
                            StatusCode::OK,
                            envelope(&format!(
                                r#"<m:SyncFolderItemsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>Synchronization state data is corrupt or otherwise invalid.</m:MessageText><m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#
                            )),
                        );
                    }
                },
            };
            let max = parsed.max_changes.unwrap_or(512).clamp(1, 512);
            // The latest change per item after the state, oldest first.
            let mut latest: BTreeMap<&str, (u64, &'static str)> = BTreeMap::new();
            let mut existed_before: BTreeSet<&str> = BTreeSet::new();
            for (n, m, item, kind) in &directory.changes {
                if m != &mailbox {
                    continue;
                }
                if *n <= after {
                    existed_before.insert(item);
                    if *kind == "DeletedEvent" {
                        existed_before.remove(item.as_str());
                    }
                } else {
                    latest.insert(item, (*n, kind));
                }
            }
            let mut ordered: Vec<(u64, &str, &'static str)> = latest
                .into_iter()
                .filter_map(
                    |(item, (n, kind))| match (kind, existed_before.contains(item)) {
                        ("DeletedEvent", false) => None,
                        ("DeletedEvent", true) => Some((n, item, "Delete")),
                        (_, true) => Some((n, item, "Update")),
                        (_, false) => Some((n, item, "Create")),
                    },
                )
                .collect();
            ordered.sort();
            let complete = ordered.len() <= max;
            ordered.truncate(max);
            let state = if complete {
                directory.next_watermark
            } else {
                ordered.last().map(|c| c.0).unwrap_or(after)
            };
            let mut changes = String::new();
            for (_, item, kind) in &ordered {
                match (*kind, store.items.get(*item)) {
                    ("Delete", _) | (_, None) => {
                        let _ = write!(
                            changes,
                            r#"<t:Delete><t:ItemId Id="{}" ChangeKey="x"/></t:Delete>"#,
                            escape(*item)
                        );
                    }
                    (kind, Some(found)) => {
                        let _ = write!(
                            changes,
                            r#"<t:{kind}><t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/></t:CalendarItem></t:{kind}>"#,
                            escape(&found.id),
                            escape(&found.change_key)
                        );
                    }
                }
            }
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:SyncFolderItemsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>{}</m:SyncState><m:IncludesLastItemInRange>{complete}</m:IncludesLastItemInRange><m:Changes>{changes}</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#,
                    base64::engine::general_purpose::STANDARD.encode(format!("ss-{state}"))
                )),
            )
        }
        ("CreateItem", _) | ("UpdateItem", _) | ("DeleteItem", _) => {
            let operation = parsed.operation.clone();
            // The schema wants an (empty) Items in a failed create or update reply.
            let items = if operation == "DeleteItem" {
                ""
            } else {
                "<m:Items/>"
            };
            let error = |code: &str, text: &str| {
                xml_reply(
                    StatusCode::OK,
                    envelope(&format!(
                        r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{items}</m:{operation}ResponseMessage></m:ResponseMessages></m:{operation}Response>"#
                    )),
                )
            };
            let target = parsed.item_keys.first().cloned();
            let current = target
                .as_ref()
                .and_then(|(id, _)| store.items.get(id))
                .cloned();
            if operation != "CreateItem" {
                let Some(current) = &current else {
                    return error(
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    );
                };
                if let Some((_, Some(key))) = &target
                    && key != &current.change_key
                {
                    return error(
                        "ErrorIrresolvableConflict",
                        "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
                    );
                }
            }
            let mut item = match (&operation[..], current) {
                ("CreateItem", _) | (_, None) => {
                    let number = directory.changes.len() + directory.subscriptions.len() + 1;
                    SimItem::appointment(&format!("sim-{number}"), "", 0, 0)
                }
                (_, Some(current)) => current,
            };
            let f = &parsed.fields;
            if let Some(v) = f.get("Subject") {
                item.subject = v.clone();
            }
            if let Some(v) = f.get("Location") {
                item.location = v.clone();
            }
            if let Some(v) = f.get("Sensitivity") {
                item.sensitivity = v.clone();
            }
            if let Some(v) = f.get("LegacyFreeBusyStatus") {
                item.free_busy = v.clone();
            }
            if let Some(v) = f.get("IsAllDayEvent") {
                item.all_day = v == "true";
            }
            if let Some(v) = f.get("Start").and_then(|t| instant(t)) {
                item.start = v;
            }
            if let Some(v) = f.get("End").and_then(|t| instant(t)) {
                item.end = v;
            }
            let id = item.id.clone();
            drop(directory);
            if operation == "DeleteItem" {
                exchange.delete_item(&mailbox, &id);
                return xml_reply(
                    StatusCode::OK,
                    envelope(&format!(
                        r#"<m:DeleteItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:DeleteItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage></m:ResponseMessages></m:DeleteItemResponse>"#
                    )),
                );
            }
            exchange.put_item(&mailbox, item);
            let key = exchange
                .lock()
                .mailboxes
                .get(&mailbox)
                .and_then(|m| m.items.get(&id))
                .map(|i| i.change_key.clone())
                .unwrap_or_default();
            xml_reply(
                StatusCode::OK,
                envelope(&format!(
                    r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/></t:CalendarItem></m:Items></m:{operation}ResponseMessage></m:ResponseMessages></m:{operation}Response>"#,
                    escape(&id),
                    escape(&key)
                )),
            )
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
