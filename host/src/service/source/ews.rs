//! [`EwsSource`]: one Exchange server as a calendar source and writer. Reads are
//! CalendarView + GetItem for the window; changes come from streaming
//! subscriptions ([`super::streaming`]) or, with push settings, push notifications
//! ([`super::push`]). Client errors are sorted into the service's three classes here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::service::shutdown::Shutdown;

use super::{
    CalendarSource, CalendarWriter, Cause, Change, ItemVersion, SourceError, WriteError, lock,
};
use crate::component::wit::CalendarItem;
use crate::config::PushSettings;
use crate::ews::client::{ClientError, Credentials, EwsClient, RetryPolicy, ServerConfig};
use crate::ews::discovery::Discoverer;
use crate::ews::request::{Mailbox, ServerVersion};
use crate::ews::response::EwsAction;

/// Mailboxes per streaming connection (brief §3.4).
pub const GROUP_SIZE: usize = 200;

/// Items a CalendarView page asks for before the window is split.
const PAGE_SIZE: u32 = 1000;

/// How a mailbox's EWS URL is found.
enum Route {
    /// The configured URL, for every mailbox.
    Fixed(String),
    /// Autodiscover per mailbox, each answer kept (mailbox → EWS URL).
    Autodiscover {
        discoverer: Box<Discoverer>,
        urls: Mutex<HashMap<String, String>>,
    },
}

/// One Exchange server as a calendar source.
pub struct EwsSource {
    pub(super) name: String,
    route: Route,
    credentials: Credentials,
    ca_bundle: Option<std::path::PathBuf>,
    timeout: Duration,
    /// A client per EWS URL.
    clients: Mutex<HashMap<String, EwsClient>>,
    /// Live subscriptions, for /metrics.
    pub(super) subscriptions: AtomicUsize,
    /// A stream silent for this long (heartbeats included) is reconnected.
    pub read_timeout: Duration,
    /// Minutes a streaming connection is asked to stay open.
    pub stream_minutes: u32,
    /// Push instead of streaming: Exchange posts to Calvert's listener.
    push: Option<PushSettings>,
    /// A push subscription silent this long (no event, no StatusEvent, which Exchange
    /// sends every StatusFrequency minute) is taken as lost and made again.
    pub push_silence: Duration,
    /// The push listener's connection limit and timeouts.
    pub listener_limits: crate::listener::Limits,
    /// Connections the push listener refused at its limit, for /metrics.
    pub(super) refused_connections: prometheus_client::metrics::counter::Counter,
    /// Each watched mailbox's connection group, as the administration shows it.
    groups: Mutex<HashMap<String, String>>,
}

/// The name of each group `addresses` are watched in: streaming connection k of n
/// (at most [`GROUP_SIZE`] mailboxes each), or the push listener.
fn group_names(server: &str, push: bool, addresses: &[String]) -> Vec<(String, String)> {
    if push {
        let name = format!("{server}: push ({} mailboxes)", addresses.len());
        return addresses
            .iter()
            .map(|a| (a.to_ascii_lowercase(), name.clone()))
            .collect();
    }
    let groups = addresses.len().div_ceil(GROUP_SIZE);
    addresses
        .chunks(GROUP_SIZE)
        .enumerate()
        .flat_map(|(k, chunk)| {
            let name = format!(
                "{server}: streaming connection {} of {groups} ({} mailboxes)",
                k + 1,
                chunk.len()
            );
            chunk
                .iter()
                .map(move |a| (a.to_ascii_lowercase(), name.clone()))
        })
        .collect()
}

/// The EWS mailbox of `address`.
pub(super) fn mailbox(address: &str) -> Mailbox {
    Mailbox {
        primary_smtp: address.to_string(),
    }
}

impl EwsSource {
    /// Record which group each of `addresses` is watched in (a new watch replaces
    /// the last one's groups).
    fn name_groups(&self, addresses: &[String]) {
        let names = group_names(&self.name, self.push.is_some(), addresses);
        *crate::lock::lock(&self.groups) = names.into_iter().collect();
    }

    /// The server `name` at `url`, or found per mailbox by Autodiscover when `url`
    /// is None (which needs Basic sign-in).
    pub fn new(
        name: &str,
        url: Option<String>,
        credentials: Credentials,
        ca_bundle: Option<std::path::PathBuf>,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let route = match (url, &credentials) {
            (Some(url), _) => Route::Fixed(url),
            (None, Credentials::Basic { user, password }) => Route::Autodiscover {
                discoverer: Box::new(Discoverer::new(user, password, timeout).map_err(
                    |error| {
                        SourceError::mailbox(Cause::Discoverer {
                            server: name.into(),
                            error,
                        })
                    },
                )?),
                urls: Mutex::new(HashMap::new()),
            },
            (None, _) => {
                return Err(SourceError::mailbox(Cause::AutodiscoverNeedsBasic {
                    server: name.into(),
                }));
            }
        };
        Ok(EwsSource {
            name: name.into(),
            route,
            credentials,
            ca_bundle,
            timeout,
            clients: Mutex::new(HashMap::new()),
            subscriptions: AtomicUsize::new(0),
            read_timeout: Duration::from_secs(150),
            stream_minutes: 30,
            push: None,
            push_silence: Duration::from_secs(3 * 60),
            listener_limits: crate::listener::Limits::default(),
            refused_connections: Default::default(),
            groups: Mutex::new(HashMap::new()),
        })
    }

    /// Let Autodiscover follow redirects and SRV records to `hosts` outside a
    /// mailbox's domain, and use plain http with `plain_http` of them (the server's
    /// `autodiscover_hosts` and `ssl = false`). No effect with a configured URL.
    pub fn with_autodiscover_hosts(mut self, hosts: &[String], plain_http: &[String]) -> Self {
        if let Route::Autodiscover { discoverer, urls } = self.route {
            self.route = Route::Autodiscover {
                discoverer: Box::new(
                    discoverer
                        .with_autodiscover_hosts(hosts)
                        .with_plain_http(plain_http),
                ),
                urls,
            };
        }
        self
    }

    /// Use push notifications to `settings.url`, listening on `settings.listen`.
    pub fn with_push(mut self, settings: Option<PushSettings>) -> Self {
        self.push = settings;
        self
    }

    /// `address`'s EWS URL: the configured one, or discovered once and kept.
    async fn url(&self, address: &str) -> Result<String, SourceError> {
        let (discoverer, urls) = match &self.route {
            Route::Fixed(url) => return Ok(url.clone()),
            Route::Autodiscover { discoverer, urls } => (discoverer, urls),
        };
        if let Some(url) = lock(urls).get(address).cloned() {
            return Ok(url);
        }
        let settings = discoverer.discover(address).await.map_err(|error| {
            let mailbox = address.into();
            SourceError::transient(Cause::Autodiscover { mailbox, error }, None)
        })?;
        lock(urls).insert(address.into(), settings.ews_url.clone());
        Ok(settings.ews_url)
    }

    /// The client for `address`'s EWS URL (one per URL, kept).
    pub(super) async fn client(&self, address: &str) -> Result<EwsClient, SourceError> {
        let url = self.url(address).await?;
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
        .map_err(|error| {
            SourceError::mailbox(Cause::Server {
                server: self.name.clone(),
                error,
            })
        })?;
        lock(&self.clients).insert(url, client.clone());
        Ok(client)
    }

    /// The service's class for a failed call for `address`. A mailbox Exchange says
    /// is not on this server is looked up again (with Autodiscover).
    pub(super) fn classify(&self, address: &str, error: ClientError) -> SourceError {
        match error.action() {
            // Sign-in, TLS, the URL: the server or Calvert's account for it, not this
            // mailbox. Every mailbox on the server fails alike; none is to blame.
            EwsAction::Fail if !matches!(error, ClientError::Ews { .. }) => {
                SourceError::server(Cause::Server {
                    server: self.name.clone(),
                    error,
                })
            }
            EwsAction::MailboxNotAllowed | EwsAction::Fail | EwsAction::CalvertBug => {
                SourceError::mailbox(Cause::Call(error))
            }
            EwsAction::Rediscover => match &self.route {
                Route::Fixed(_) => SourceError::mailbox(Cause::Call(error)),
                Route::Autodiscover { discoverer, urls } => {
                    lock(urls).remove(address);
                    discoverer.forget(address);
                    SourceError::transient(Cause::Call(error), None)
                }
            },
            _ => {
                let retry_after = error.back_off();
                SourceError::transient(Cause::Call(error), retry_after)
            }
        }
    }

    /// The typed result of a failed write for `address`.
    fn write_error(&self, address: &str, error: ClientError) -> WriteError {
        match error.action() {
            EwsAction::Refetch => WriteError::Changed(Cause::Call(error)),
            EwsAction::TreatAsDeleted => WriteError::Gone(Cause::Call(error)),
            _ => WriteError::Source(self.classify(address, error)),
        }
    }
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
            .calendar(&mailbox(address), start, end, PAGE_SIZE)
            .await
            .map_err(|e| self.classify(address, e))
    }

    async fn watch(
        &self,
        addresses: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        stop: Shutdown,
    ) {
        self.name_groups(&addresses);
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

    fn connection_group(&self, address: &str) -> Option<String> {
        crate::lock::lock(&self.groups)
            .get(&address.to_ascii_lowercase())
            .cloned()
    }

    fn refused_connections(&self) -> u64 {
        self.refused_connections.get()
    }
}

#[async_trait]
impl CalendarWriter for EwsSource {
    async fn create(&self, address: &str, item: &CalendarItem) -> Result<ItemVersion, WriteError> {
        let client = self.client(address).await?;
        let (id, change_key) = client
            .create_item(&mailbox(address), item)
            .await
            .map_err(|e| self.write_error(address, e))?;
        Ok(ItemVersion { id, change_key })
    }

    async fn update(
        &self,
        address: &str,
        version: &ItemVersion,
        item: &CalendarItem,
    ) -> Result<ItemVersion, WriteError> {
        let client = self.client(address).await?;
        let change_key = client
            .update_item(&mailbox(address), &version.id, &version.change_key, item)
            .await
            .map_err(|e| self.write_error(address, e))?;
        Ok(ItemVersion {
            id: version.id.clone(),
            change_key,
        })
    }

    async fn delete(&self, address: &str, version: &ItemVersion) -> Result<(), WriteError> {
        let client = self.client(address).await?;
        client
            .delete_item(&mailbox(address), &version.id, Some(&version.change_key))
            .await
            .map_err(|e| self.write_error(address, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::response::EwsError;

    const URL: &str = "https://mail1.flexi.se/EWS/Exchange.asmx";

    #[test]
    fn mailboxes_are_named_by_their_streaming_connection_of_at_most_200() {
        let addresses: Vec<String> = (0..401).map(|i| format!("U{i}@flexi.se")).collect();
        let names: HashMap<String, String> =
            group_names("ews1", false, &addresses).into_iter().collect();
        assert_eq!(
            names["u0@flexi.se"],
            "ews1: streaming connection 1 of 3 (200 mailboxes)"
        );
        assert_eq!(names["u199@flexi.se"], names["u0@flexi.se"]);
        assert_eq!(
            names["u200@flexi.se"],
            "ews1: streaming connection 2 of 3 (200 mailboxes)"
        );
        assert_eq!(
            names["u400@flexi.se"],
            "ews1: streaming connection 3 of 3 (1 mailboxes)"
        );
        let pushed = group_names("ews1", true, &addresses[..2]);
        assert_eq!(
            pushed[1],
            ("u1@flexi.se".into(), "ews1: push (2 mailboxes)".into())
        );
    }

    fn basic() -> Credentials {
        Credentials::Basic {
            user: "calvert-svc".into(),
            password: "pa55word".into(),
        }
    }

    fn source() -> EwsSource {
        EwsSource::new(
            "mail1",
            Some(URL.into()),
            basic(),
            None,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn ews(code: &str, back_off: Option<Duration>) -> ClientError {
        ClientError::Ews {
            url: URL.into(),
            error: EwsError::Response {
                code: code.into(),
                text: "text".into(),
                back_off,
            },
        }
    }

    #[test]
    fn a_server_refusing_calvert_is_the_servers_fault_and_says_which() {
        let tls = ClientError::Tls {
            url: URL.into(),
            reason: "UnknownIssuer".into(),
        };
        let message = format!("server mail1: {tls}");
        let error = source().classify("kim@flexi.se", tls);
        assert!(matches!(error, SourceError::Server(_)), "{error:?}");
        assert_eq!(error.to_string(), message);
        assert!(matches!(
            error.client_error(),
            Some(ClientError::Tls { .. })
        ));
        let source_chain = std::error::Error::source(&error).map(|cause| cause.to_string());
        assert_eq!(
            source_chain,
            Some(message),
            "the cause is kept as the source"
        );
    }

    #[test]
    fn a_refused_mailbox_needs_an_administrator_with_the_clients_message() {
        let denied = ews("ErrorImpersonateUserDenied", None);
        let message = denied.to_string();
        let error = source().classify("kim@flexi.se", denied);
        assert!(matches!(error, SourceError::Mailbox(_)), "{error:?}");
        assert_eq!(error.to_string(), message);
        let missing = source().classify("kim@flexi.se", ews("ErrorNonExistentMailbox", None));
        assert!(
            matches!(missing, SourceError::Mailbox(_)),
            "with a fixed URL there is nowhere else to look: {missing:?}"
        );
    }

    #[test]
    fn transient_failures_keep_the_servers_back_off() {
        let asked = Duration::from_secs(30);
        let busy = ews("ErrorServerBusy", Some(asked));
        let message = busy.to_string();
        let error = source().classify("kim@flexi.se", busy);
        let SourceError::Transient { retry_after, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*retry_after, Some(asked));
        assert_eq!(error.to_string(), message);
        let unreachable = ClientError::Unreachable {
            url: URL.into(),
            reason: "connection refused".into(),
        };
        assert!(matches!(
            source().classify("kim@flexi.se", unreachable),
            SourceError::Transient {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn writes_tell_conflicts_and_missing_items_apart() {
        let source = source();
        let conflict = source.write_error("kim@flexi.se", ews("ErrorIrresolvableConflict", None));
        assert!(matches!(conflict, WriteError::Changed(_)), "{conflict:?}");
        let gone = source.write_error("kim@flexi.se", ews("ErrorItemNotFound", None));
        assert!(matches!(gone, WriteError::Gone(_)), "{gone:?}");
        let denied = source.write_error("kim@flexi.se", ews("ErrorImpersonateUserDenied", None));
        assert!(
            matches!(denied, WriteError::Source(SourceError::Mailbox(_))),
            "{denied:?}"
        );
    }

    #[test]
    fn autodiscover_without_basic_sign_in_is_refused_with_what_to_do() {
        let ntlm = Credentials::Ntlm {
            user: "FLEXI\\calvert-svc".into(),
            password: "pa55word".into(),
        };
        let Err(error) = EwsSource::new("mail1", None, ntlm, None, Duration::from_secs(5)) else {
            panic!("an NTLM server without a URL");
        };
        assert!(matches!(error, SourceError::Mailbox(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "server mail1: Autodiscover needs Basic sign-in here; give the EWS url"
        );
    }
}
