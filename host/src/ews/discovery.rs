//! Autodiscover over HTTP: the candidates of brief §5 in order, redirects followed
//! (capped at 10, https only, no loops), the answer cached per mailbox for a while
//! and forgotten when Exchange says the mailbox is not there any more.
//!
//! The order: the domain's https endpoints (SOAP, then POX), the plain-http GET that
//! may redirect to https (steps 2–4), then the DNS SRV record
//! `_autodiscover._tcp.<domain>` (step 5), asked of the system's resolver or of a
//! configured name server ([`Discoverer::with_name_server`]).
//!
//! Step 1, the SCP lookup, is **not supported**: it reads
//! `serviceConnectionPoint` objects from Active Directory over LDAP, which needs a
//! domain-joined host, an LDAP client and a directory account, none of which Calvert
//! has (it runs as a service beside Exchange, not in the domain). The administrator
//! sets the server's EWS URL, or relies on the DNS-based steps (an
//! `autodiscover.<domain>` name or the SRV record).

use crate::lock::lock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use super::autodiscover::{
    AutodiscoverError, Discovery, Redirects, SrvRecord, UserSettings, candidates,
    get_user_settings_request, parse_get_user_settings, parse_pox, pox_request, srv_candidates,
    srv_name,
};

/// How long a discovered EWS URL is used before asking again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{0}")]
    Rules(#[from] AutodiscoverError),
    #[error(
        "Autodiscover found no EWS URL for {mailbox} (tried {}; last: {last}): check the DNS name autodiscover.<domain>, or set the server's EWS URL by hand",
        tried.join(", ")
    )]
    NotFound {
        mailbox: String,
        tried: Vec<String>,
        last: String,
    },
    #[error("{mailbox} is not an address Autodiscover can look up: use name@domain")]
    BadAddress { mailbox: String },
    #[error("the CA bundle {path} cannot be used for Autodiscover: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("cannot start the HTTP client for Autodiscover: {reason}")]
    Client { reason: String },
}

/// Where the SRV lookup asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameServer {
    /// The system's resolver configuration (`/etc/resolv.conf`).
    #[default]
    System,
    /// This name server, over UDP (split DNS, tests).
    Udp(std::net::SocketAddr),
}

/// The SRV records of `_autodiscover._tcp.<domain>`.
async fn lookup_srv(
    name_server: NameServer,
    domain: &str,
    timeout: Duration,
) -> Result<Vec<SrvRecord>, String> {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    use hickory_resolver::name_server::TokioConnectionProvider;
    use hickory_resolver::proto::xfer::Protocol;
    let provider = TokioConnectionProvider::default();
    let mut builder = match name_server {
        NameServer::System => hickory_resolver::TokioResolver::builder_tokio()
            .map_err(|e| format!("the system's DNS configuration cannot be read: {e}"))?,
        NameServer::Udp(addr) => hickory_resolver::TokioResolver::builder_with_config(
            ResolverConfig::from_parts(
                None,
                vec![],
                vec![NameServerConfig::new(addr, Protocol::Udp)],
            ),
            provider,
        ),
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = timeout.min(Duration::from_secs(5));
    options.attempts = 2;
    let resolver = builder.build();
    let name = srv_name(domain);
    match resolver.srv_lookup(name.as_str()).await {
        Ok(lookup) => Ok(lookup
            .iter()
            .map(|srv| SrvRecord {
                priority: srv.priority(),
                weight: srv.weight(),
                port: srv.port(),
                target: srv.target().to_utf8(),
            })
            .collect()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Finds mailboxes' EWS URLs with a service account (Basic sign-in).
pub struct Discoverer {
    http: reqwest::Client,
    timeout: Duration,
    name_server: NameServer,
    user: String,
    password: String,
    /// Fixed endpoints to ask instead of the ones derived from the domain (a
    /// configured Autodiscover URL).
    endpoints: Option<Vec<String>>,
    ttl: Duration,
    cache: Mutex<BTreeMap<String, (UserSettings, tokio::time::Instant)>>,
}

impl Discoverer {
    pub fn new(user: &str, password: &str, timeout: Duration) -> Result<Self, DiscoveryError> {
        let http = Self::http(timeout, Vec::new())?;
        Ok(Discoverer {
            http,
            timeout,
            name_server: NameServer::System,
            user: user.to_string(),
            password: password.to_string(),
            endpoints: None,
            ttl: DEFAULT_TTL,
            cache: Mutex::new(BTreeMap::new()),
        })
    }

    fn http(
        timeout: Duration,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<reqwest::Client, DiscoveryError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
        builder.build().map_err(|e| DiscoveryError::Client {
            reason: e.to_string(),
        })
    }

    /// Also trust the CA certificates in this PEM file.
    pub fn with_ca_bundle(mut self, path: &std::path::Path) -> Result<Self, DiscoveryError> {
        let bad = |reason: String| DiscoveryError::CaBundle {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| bad(format!("not PEM: {e}")))?;
        self.http = Self::http(self.timeout, roots)?;
        Ok(self)
    }

    /// Ask this name server for the SRV record instead of the system's resolver.
    pub fn with_name_server(mut self, name_server: NameServer) -> Self {
        self.name_server = name_server;
        self
    }

    /// Ask these endpoints instead of the domain's candidates.
    pub fn with_endpoints(mut self, endpoints: Vec<String>) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn cache(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, (UserSettings, tokio::time::Instant)>> {
        lock(&self.cache)
    }

    /// Forget a mailbox's answer (after ErrorNonExistentMailbox or a move).
    pub fn forget(&self, mailbox: &str) {
        self.cache().remove(&mailbox.trim().to_ascii_lowercase());
    }

    fn candidates_for(&self, address: &str) -> Result<VecDeque<String>, DiscoveryError> {
        if let Some(endpoints) = &self.endpoints {
            return Ok(endpoints.iter().cloned().collect());
        }
        match address.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                Ok(candidates(domain).into())
            }
            _ => Err(DiscoveryError::BadAddress {
                mailbox: address.to_string(),
            }),
        }
    }

    /// The cached settings of `key`, while they are fresh.
    fn cached(&self, key: &str) -> Option<UserSettings> {
        self.cache()
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(settings, _)| settings.clone())
    }

    /// The EWS settings of `mailbox`, from the cache or by asking.
    pub async fn discover(&self, mailbox: &str) -> Result<UserSettings, DiscoveryError> {
        let key = mailbox.trim().to_ascii_lowercase();
        if let Some(settings) = self.cached(&key) {
            return Ok(settings);
        }
        let mut lookup = Lookup {
            queue: self.candidates_for(&key)?,
            address: key.clone(),
            redirects: Redirects::default(),
            tried: Vec::new(),
            last: String::from("no answer"),
            srv_asked: Vec::new(),
        };
        while let Some(url) = self.next_candidate(&mut lookup).await {
            lookup.tried.push(url.clone());
            if let Some(settings) = self.ask(&mut lookup, &url).await? {
                self.cache()
                    .insert(key, (settings.clone(), tokio::time::Instant::now()));
                return Ok(settings);
            }
        }
        Err(DiscoveryError::NotFound {
            mailbox: key,
            tried: lookup.tried,
            last: lookup.last,
        })
    }

    /// The next URL to ask. When the candidates are used up, step 5 (after the
    /// others) adds those of the SRV record of the address's domain, once per domain.
    async fn next_candidate(&self, lookup: &mut Lookup) -> Option<String> {
        loop {
            if let Some(url) = lookup.queue.pop_front() {
                return Some(url);
            }
            let domain = lookup
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())?;
            if self.endpoints.is_some() || lookup.srv_asked.contains(&domain) {
                return None;
            }
            lookup.srv_asked.push(domain.clone());
            lookup.tried.push(format!("DNS SRV {}", srv_name(&domain)));
            match lookup_srv(self.name_server, &domain, self.timeout).await {
                Ok(records) if srv_candidates(&records).is_empty() => {
                    lookup.last = format!("no usable SRV record {}", srv_name(&domain));
                }
                Ok(records) => lookup.queue.extend(srv_candidates(&records)),
                Err(e) => lookup.last = format!("SRV {}: {e}", srv_name(&domain)),
            }
        }
    }

    /// The request for one candidate: SOAP or POX with the service account's
    /// credentials, or, for the plain-http URL, the unauthenticated GET (only a
    /// redirect to https is of use there).
    fn request(&self, url: &str, soap: bool, address: &str) -> reqwest::RequestBuilder {
        if url.starts_with("http://") && !soap {
            return self.http.get(url);
        }
        let body = if soap {
            get_user_settings_request(address, url)
        } else {
            pox_request(address)
        };
        self.http
            .post(url)
            .basic_auth(&self.user, Some(&self.password))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(body)
    }

    /// Ask one candidate: the settings if it gave them, else `None` with the lookup
    /// moved on (a redirect queued, or the failure noted).
    async fn ask(
        &self,
        lookup: &mut Lookup,
        url: &str,
    ) -> Result<Option<UserSettings>, DiscoveryError> {
        let soap = url.ends_with(".svc");
        let response = match self.request(url, soap, &lookup.address).send().await {
            Ok(response) => response,
            Err(e) => {
                lookup.last = format!("{url}: {e}");
                return Ok(None);
            }
        };
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("");
            lookup.redirects.follow(location)?;
            lookup.queue.push_front(location.to_string());
            return Ok(None);
        }
        if !status.is_success() {
            lookup.last = format!("{url}: HTTP {status}");
            return Ok(None);
        }
        let text = response.text().await.unwrap_or_default();
        let answer = if soap {
            parse_get_user_settings(&text)
        } else {
            parse_pox(&text)
        };
        self.follow(lookup, url, answer)
    }

    /// What an Autodiscover answer means for the lookup: found, start again for
    /// another address, ask another URL, refused (final), or a failure to note.
    fn follow(
        &self,
        lookup: &mut Lookup,
        url: &str,
        answer: Result<Discovery, AutodiscoverError>,
    ) -> Result<Option<UserSettings>, DiscoveryError> {
        match answer {
            Ok(Discovery::Found(settings)) => return Ok(Some(settings)),
            Ok(Discovery::RedirectAddress(target)) => {
                lookup.redirects.follow(&target)?;
                lookup.address = target.trim().to_ascii_lowercase();
                lookup.queue = self.candidates_for(&lookup.address)?;
            }
            Ok(Discovery::RedirectUrl(target)) => {
                lookup.redirects.follow(&target)?;
                lookup.queue.push_front(target);
            }
            Err(refused @ AutodiscoverError::Refused { .. }) => return Err(refused.into()),
            Err(other) => lookup.last = format!("{url}: {other}"),
        }
        Ok(None)
    }
}

/// One mailbox's lookup under way: the address being looked up (it changes on an
/// address redirect), the URLs left to ask, what was asked and the last failure.
struct Lookup {
    address: String,
    queue: VecDeque<String>,
    redirects: Redirects,
    tried: Vec<String>,
    last: String,
    /// Domains whose SRV record was asked for already.
    srv_asked: Vec<String>,
}
