//! An Exchange Web Services simulator, for Calvert's tests and demo.
//!
//! It serves `POST /EWS/Exchange.asmx` over HTTP on loopback, with mailboxes in
//! memory, Basic authentication of service accounts, impersonation rights per
//! account, and faults injected by the test. Its replies follow the shapes of the
//! documented and genuine samples in `../shared/ews/` and are written here,
//! independently of Calvert's own EWS code, so the two check each other.
//!
//! Operations so far: FindItem with a CalendarView (honouring MaxEntriesReturned and
//! setting IncludesLastItemInRange), GetItem, Subscribe (pull) and GetEvents with
//! watermarks (created, modified and deleted items become events; subscriptions can
//! be expired by the test), streaming Subscribe and GetStreamingEvents (a held
//! connection writing one envelope after another, keep-alives, Closed at the end),
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
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

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
/// minutes; the tests want it short), and how often it sends a keep-alive.
#[derive(Debug, Clone, Copy)]
struct StreamTiming {
    lifetime: Duration,
    tick: Duration,
}

impl Default for StreamTiming {
    fn default() -> Self {
        StreamTiming {
            lifetime: Duration::from_secs(60),
            tick: Duration::from_millis(50),
        }
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
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The EWS URL to give Calvert.
    pub fn ews_url(&self) -> String {
        format!("http://{}/EWS/Exchange.asmx", self.addr)
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}{}", self.addr, Exchange::token_path())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a simulator on a free loopback port.
pub async fn start(exchange: Exchange) -> std::io::Result<Server> {
    start_on(exchange, "127.0.0.1:0".parse().expect("a loopback address")).await
}

pub async fn start_on(exchange: Exchange, addr: SocketAddr) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/EWS/Exchange.asmx", post(ews))
        .route("/autodiscover/autodiscover.svc", post(autodiscover))
        .route(Exchange::token_path(), post(token))
        .with_state(exchange.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server {
        exchange,
        addr,
        task,
    })
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
            "<ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><UserSettingErrors/><UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>http://{host}/EWS/Exchange.asmx</Value></UserSetting><UserSetting><Name>GroupingInformation</Name><Value>SIM-GROUP-1</Value></UserSetting></UserSettings>"
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

async fn ews(State(exchange): State<Exchange>, headers: HeaderMap, body: Bytes) -> Response {
    let fault_now = exchange.lock().faults.pop_front();
    if let Some(Fault::Slow(delay)) = &fault_now {
        tokio::time::sleep(*delay).await;
    }
    let drop_stream = fault_now == Some(Fault::DropStream);
    let mut reply = answer(&exchange, &headers, &body, drop_stream);
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

/// A held GetStreamingEvents connection: one envelope per batch of events, a
/// keep-alive when idle, an error envelope for an expired subscription (the
/// connection stays open), and `ConnectionStatus` Closed at the end of its lifetime.
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
                    let fresh: Vec<_> = subscription
                        .events
                        .iter()
                        .filter(|(n, _, _)| *n > marks[i])
                        .collect();
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
                streaming_error("ErrorExpiredSubscription", &expired)
            } else if notifications.is_empty() {
                ok("<m:ConnectionStatus>OK</m:ConnectionStatus>")
            } else {
                ok(&format!(
                    "<m:Notifications>{notifications}</m:Notifications>"
                ))
            };
            if sender.send(Ok(envelope)).await.is_err() {
                return;
            }
            tokio::time::sleep(timing.tick).await;
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
    loop {
        tokio::time::sleep(tick).await;
        let (events, previous) = {
            let directory = exchange.lock();
            let Some(subscription) = directory.subscriptions.get(&id) else {
                return;
            };
            let fresh: Vec<(u64, &'static str, String)> = subscription
                .events
                .iter()
                .filter(|(n, _, _)| *n > mark)
                .cloned()
                .collect();
            (fresh, mark)
        };
        if events.is_empty() {
            continue;
        }
        let mut body = String::new();
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

fn answer(exchange: &Exchange, headers: &HeaderMap, body: &[u8], drop_stream: bool) -> Response {
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"exchange\"")],
        )
            .into_response()
    };
    let mut directory = exchange.lock();
    let may_impersonate = match basic_user(headers) {
        Some((user, password)) => {
            match directory
                .accounts
                .get(&user)
                .filter(|a| a.password == password)
            {
                Some(account) => account.may_impersonate.clone(),
                None => return unauthorized(),
            }
        }
        None => match bearer_app(&directory, headers) {
            Some(may) => may,
            None => return unauthorized(),
        },
    };
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
