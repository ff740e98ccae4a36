//! Calendar sources: where calendars are read and changes come from, behind one trait
//! so a vendor can swap in another calendar system.
//!
//! [`EwsSource`] reads one Exchange server: CalendarView + GetItem for the window, and
//! streaming subscriptions (brief §3.3) in groups of at most 200 mailboxes per
//! connection (§3.4), each group anchored on its first mailbox. A subscription the
//! server reports as failed, a dropped or stalled stream, or a reconnect all end in a
//! [`Change::Subscribed`] (or [`Change::Unsubscribed`]) for the mailboxes concerned: events may have been missed, so
//! their calendars are read again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::component::wit::CalendarItem;
use crate::config::PushSettings;
use crate::ews::client::{
    ClientError, Credentials, EwsClient, RetryPolicy, ServerConfig, StreamEnd, Streamed,
};
use crate::ews::discovery::Discoverer;
use crate::ews::notification::EventKind;
use crate::ews::request::{Mailbox, ServerVersion};
use crate::ews::response::EwsAction;

/// Something happened to a mailbox's calendar or its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A notification: the calendar changed; `watermark` is the newest event's.
    Calendar {
        address: String,
        watermark: Option<String>,
    },
    /// A new subscription: events before it may have been missed, so read again.
    Subscribed {
        address: String,
        subscription_id: String,
    },
    /// No subscription (subscribing failed): read again, and again at each resync.
    Unsubscribed(String),
}

impl Change {
    pub fn address(&self) -> &str {
        match self {
            Change::Calendar { address, .. }
            | Change::Subscribed { address, .. }
            | Change::Unsubscribed(address) => address,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// This mailbox cannot be read until an administrator acts.
    #[error("{0}")]
    Mailbox(String),
    /// The server refuses Calvert itself (sign-in, TLS, URL): retried with back-off,
    /// and no user is put in Error for it — fixing the server's settings heals all.
    #[error("{0}")]
    Server(String),
    /// Try again later.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

#[async_trait]
pub trait CalendarSource: Send + Sync {
    /// Every item of `address`'s calendar overlapping [start, end).
    async fn calendar(
        &self,
        address: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError>;

    /// Report changes to `addresses` on `changes` until `stop` turns true.
    async fn watch(
        &self,
        addresses: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        stop: watch::Receiver<bool>,
    );

    /// Live subscriptions, for /metrics.
    fn subscriptions(&self) -> usize;
}

/// Mailboxes per streaming connection (brief §3.4).
pub const GROUP_SIZE: usize = 200;

/// One Exchange server as a calendar source.
pub struct EwsSource {
    name: String,
    /// The configured URL, or None: Autodiscover per mailbox.
    fixed_url: Option<String>,
    credentials: Credentials,
    ca_bundle: Option<std::path::PathBuf>,
    timeout: Duration,
    discoverer: Option<Discoverer>,
    clients: std::sync::Mutex<HashMap<String, EwsClient>>,
    urls: std::sync::Mutex<HashMap<String, String>>,
    subscriptions: AtomicUsize,
    /// A stream silent for this long (heartbeats included) is reconnected.
    pub read_timeout: Duration,
    /// Minutes a streaming connection is asked to stay open.
    pub stream_minutes: u32,
    /// Push instead of streaming: Exchange posts to Calvert's listener.
    push: Option<PushSettings>,
    /// A push subscription silent this long (no event, no StatusEvent, which Exchange
    /// sends every StatusFrequency minute) is taken as lost and made again.
    pub push_silence: Duration,
}

impl EwsSource {
    pub fn new(
        name: &str,
        url: Option<String>,
        credentials: Credentials,
        ca_bundle: Option<std::path::PathBuf>,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let discoverer = match (&url, &credentials) {
            (Some(_), _) => None,
            (None, Credentials::Basic { user, password }) => Some(
                Discoverer::new(user, password, timeout)
                    .map_err(|e| SourceError::Mailbox(format!("server {name}: {e}")))?,
            ),
            (None, _) => {
                return Err(SourceError::Mailbox(format!(
                    "server {name}: Autodiscover needs Basic sign-in here; give the EWS url"
                )));
            }
        };
        Ok(EwsSource {
            name: name.into(),
            fixed_url: url,
            credentials,
            ca_bundle,
            timeout,
            discoverer,
            clients: std::sync::Mutex::new(HashMap::new()),
            urls: std::sync::Mutex::new(HashMap::new()),
            subscriptions: AtomicUsize::new(0),
            read_timeout: Duration::from_secs(150),
            stream_minutes: 30,
            push: None,
            push_silence: Duration::from_secs(3 * 60),
        })
    }

    /// Use push notifications to `settings.url`, listening on `settings.listen`.
    pub fn with_push(mut self, settings: Option<PushSettings>) -> Self {
        self.push = settings;
        self
    }

    /// The client for `address`'s EWS URL (discovered once and cached).
    async fn client(&self, address: &str) -> Result<EwsClient, SourceError> {
        let url = match &self.fixed_url {
            Some(url) => url.clone(),
            None => {
                let known = lock(&self.urls).get(address).cloned();
                match known {
                    Some(url) => url,
                    None => {
                        let Some(discoverer) = &self.discoverer else {
                            return Err(SourceError::Mailbox(format!(
                                "server {}: no EWS URL",
                                self.name
                            )));
                        };
                        let settings = discoverer.discover(address).await.map_err(|e| {
                            SourceError::Transient {
                                message: format!("Autodiscover for {address}: {e}"),
                                retry_after: None,
                            }
                        })?;
                        lock(&self.urls).insert(address.into(), settings.ews_url.clone());
                        settings.ews_url
                    }
                }
            }
        };
        if let Some(client) = lock(&self.clients).get(&url) {
            return Ok(client.clone());
        }
        let client = EwsClient::new(ServerConfig {
            url: url.clone(),
            credentials: self.credentials.clone(),
            ca_bundle: self.ca_bundle.clone(),
            timeout: self.timeout,
            version: ServerVersion::Exchange2010Sp2,
            retry: RetryPolicy::default(),
        })
        .map_err(|e| SourceError::Mailbox(format!("server {}: {e}", self.name)))?;
        lock(&self.clients).insert(url, client.clone());
        Ok(client)
    }

    fn classify(&self, address: &str, error: ClientError) -> SourceError {
        match error.action() {
            // Sign-in, TLS, the URL: the server or Calvert's account for it, not this
            // mailbox. Every mailbox on the server fails alike; none is to blame.
            EwsAction::Fail if !matches!(error, ClientError::Ews { .. }) => {
                SourceError::Server(format!("server {}: {error}", self.name))
            }
            EwsAction::MailboxNotAllowed | EwsAction::Fail | EwsAction::CalvertBug => {
                SourceError::Mailbox(error.to_string())
            }
            EwsAction::Rediscover => {
                lock(&self.urls).remove(address);
                if let Some(d) = &self.discoverer {
                    d.forget(address);
                }
                if self.fixed_url.is_some() {
                    SourceError::Mailbox(error.to_string())
                } else {
                    SourceError::Transient {
                        message: error.to_string(),
                        retry_after: None,
                    }
                }
            }
            _ => SourceError::Transient {
                retry_after: match &error {
                    ClientError::Ews { error, .. } => error.back_off(),
                    _ => None,
                },
                message: error.to_string(),
            },
        }
    }

    /// One group's streaming loop: subscribe, stream, resubscribe what failed.
    async fn watch_group(
        &self,
        group: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut subscribed: HashMap<String, String> = HashMap::new(); // id → address
        let mut backoff = Duration::from_secs(1);
        while !*stop.borrow() {
            // (Re)subscribe every mailbox of the group that has no subscription.
            let missing: Vec<String> = group
                .iter()
                .filter(|a| !subscribed.values().any(|s| s == *a))
                .cloned()
                .collect();
            for address in missing {
                let result = match self.client(&address).await {
                    Ok(client) => client
                        .subscribe_streaming(&mailbox(&address))
                        .await
                        .map_err(|e| self.classify(&address, e)),
                    Err(e) => Err(e),
                };
                let change = match result {
                    Ok(subscription) => {
                        self.subscriptions.fetch_add(1, Ordering::Relaxed);
                        subscribed.insert(subscription.subscription_id.clone(), address.clone());
                        Change::Subscribed {
                            address,
                            subscription_id: subscription.subscription_id,
                        }
                    }
                    Err(error) => {
                        tracing::warn!(server = %self.name, mailbox = %address, %error, "subscribe failed");
                        Change::Unsubscribed(address)
                    }
                };
                // New subscription or not, events may have been missed.
                if changes.send(change).is_err() {
                    return;
                }
            }
            let Some(anchor) = subscribed.values().next().cloned() else {
                // Nothing subscribed: wait and try again.
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(300));
                continue;
            };
            let client = match self.client(&anchor).await {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!(server = %self.name, mailbox = %anchor, %error, "no EWS client for the group's anchor");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                    continue;
                }
            };
            let ids: Vec<String> = subscribed.keys().cloned().collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut failed: Vec<String> = Vec::new();
            let anchor = mailbox(&anchor);
            let stream = async {
                let mut stream = client
                    .stream_events(&anchor, &refs, self.stream_minutes, self.read_timeout)
                    .await?;
                loop {
                    let reply = match stream.next().await? {
                        Streamed::Reply(reply) => reply,
                        Streamed::End(end) => return Ok::<_, ClientError>(end),
                    };
                    for notification in &reply.notifications {
                        let real = notification
                            .events
                            .iter()
                            .any(|e| e.kind != EventKind::Status);
                        if real && let Some(address) = subscribed.get(&notification.subscription_id)
                        {
                            let _ = changes.send(Change::Calendar {
                                address: address.clone(),
                                watermark: notification
                                    .events
                                    .iter()
                                    .rev()
                                    .find_map(|e| e.watermark.clone()),
                            });
                        }
                    }
                    for (ids, _error) in &reply.failed {
                        failed.extend(ids.iter().cloned());
                    }
                    // Stop to resubscribe what failed (an empty id list: all of them).
                    if !reply.failed.is_empty() {
                        return Ok(StreamEnd::Closed);
                    }
                }
            };
            let outcome = tokio::select! {
                outcome = stream => Some(outcome),
                _ = stop.changed() => None,
            };
            let Some(outcome) = outcome else { break };
            match outcome {
                Ok(_) => backoff = Duration::from_secs(1),
                Err(error) => {
                    tracing::warn!(server = %self.name, %error, "streaming connection failed");
                    failed = subscribed.keys().cloned().collect();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
            if failed.iter().any(String::is_empty) {
                failed = subscribed.keys().cloned().collect();
            }
            for id in failed {
                if subscribed.remove(&id).is_some() {
                    self.subscriptions.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        self.subscriptions
            .fetch_sub(subscribed.len(), Ordering::Relaxed);
    }
}

impl EwsSource {
    /// Push: one listener for the server's mailboxes, a push subscription each
    /// (StatusFrequency one minute). A subscription that falls silent, or whose
    /// subscribe failed, is made again at the next check.
    async fn watch_push(
        &self,
        settings: PushSettings,
        addresses: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Subscription id → (mailbox, last heard of).
        let live: Arc<std::sync::Mutex<HashMap<String, (String, tokio::time::Instant)>>> =
            Arc::default();
        let keep = {
            let live = live.clone();
            Arc::new(move |id: &str| lock(&live).contains_key(id))
        };
        let mut listener = match crate::ews::push::listen(settings.listen, keep).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(server = %self.name, listen = %settings.listen, %error, "cannot listen for push notifications; check push_listen (is the port free?)");
                return;
            }
        };
        let mut missing = addresses;
        let mut check = tokio::time::interval(self.push_silence / 3);
        // Subscribing (again) happens at the start and at each check, not per
        // notification: failing mailboxes are retried at the check's pace.
        let mut subscribe_now = true;
        loop {
            let mut failed = Vec::new();
            let due = if subscribe_now {
                std::mem::take(&mut missing)
            } else {
                Vec::new()
            };
            subscribe_now = false;
            for address in due {
                let subscribed = match self.client(&address).await {
                    Ok(client) => client
                        .subscribe_push(&mailbox(&address), &settings.url, None, 1)
                        .await
                        .map_err(|e| self.classify(&address, e)),
                    Err(e) => Err(e),
                };
                let change = match subscribed {
                    Ok(subscription) => {
                        self.subscriptions.fetch_add(1, Ordering::Relaxed);
                        lock(&live).insert(
                            subscription.subscription_id.clone(),
                            (address.clone(), tokio::time::Instant::now()),
                        );
                        Change::Subscribed {
                            address,
                            subscription_id: subscription.subscription_id,
                        }
                    }
                    Err(error) => {
                        tracing::warn!(server = %self.name, mailbox = %address, %error, "push subscribe failed");
                        failed.push(address.clone());
                        Change::Unsubscribed(address)
                    }
                };
                if changes.send(change).is_err() {
                    return;
                }
            }
            missing.extend(failed);
            tokio::select! {
                notification = listener.notifications.recv() => {
                    let Some(notification) = notification else { return };
                    let address = lock(&live).get_mut(&notification.subscription_id).map(|(address, heard)| {
                        *heard = tokio::time::Instant::now();
                        address.clone()
                    });
                    let real = notification.events.iter().any(|e| e.kind != EventKind::Status);
                    if let (Some(address), true) = (address, real) {
                        let watermark = notification.events.iter().rev().find_map(|e| e.watermark.clone());
                        let _ = changes.send(Change::Calendar { address, watermark });
                    }
                }
                _ = check.tick() => {
                    subscribe_now = true;
                    let silent: Vec<(String, String)> = lock(&live)
                        .iter()
                        .filter(|(_, (_, heard))| heard.elapsed() > self.push_silence)
                        .map(|(id, (address, _))| (id.clone(), address.clone()))
                        .collect();
                    for (id, address) in silent {
                        tracing::warn!(server = %self.name, mailbox = %address, "push subscription fell silent; subscribing again");
                        lock(&live).remove(&id);
                        self.subscriptions.fetch_sub(1, Ordering::Relaxed);
                        missing.push(address);
                    }
                }
                _ = stop.changed() => break,
            }
        }
        let left = lock(&live).len();
        self.subscriptions.fetch_sub(left, Ordering::Relaxed);
    }
}

fn mailbox(address: &str) -> Mailbox {
    Mailbox {
        primary_smtp: address.to_string(),
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl CalendarSource for EwsSource {
    async fn calendar(
        &self,
        address: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError> {
        let client = self.client(address).await?;
        client
            .calendar(&mailbox(address), start, end, 1000)
            .await
            .map_err(|e| self.classify(address, e))
    }

    async fn watch(
        &self,
        addresses: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        stop: watch::Receiver<bool>,
    ) {
        if let Some(settings) = self.push.clone() {
            return self.watch_push(settings, addresses, changes, stop).await;
        }
        let groups = addresses.chunks(GROUP_SIZE).map(<[String]>::to_vec);
        let watches = groups.map(|group| self.watch_group(group, changes.clone(), stop.clone()));
        futures_util::future::join_all(watches).await;
    }

    fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }
}

/// A shared source.
pub type SharedSource = Arc<dyn CalendarSource>;
