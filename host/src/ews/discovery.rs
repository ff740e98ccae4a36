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
//!
//! The service account's password stays with the mailbox's own servers
//! ([`super::trust`]): a redirect or SRV target outside the mailbox's domain and the
//! server's `autodiscover_hosts` is not asked (the walk goes on, and the final error
//! names the host); plain http is asked only for a redirect, without credentials;
//! an `http://` EWS URL in an answer is refused. Every reply is read up to
//! [`MAX_AUTODISCOVER_REPLY_BYTES`].

use crate::http_body::read_text_capped;
use crate::lock::lock;
use reqwest::Url;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use super::autodiscover::{
    AutodiscoverError, Discovery, Redirects, UserSettings, candidates, get_user_settings_request,
    parse_get_user_settings, parse_pox, pox_request, srv_candidates, srv_name,
};
pub use super::srv::NameServer;
use super::srv::lookup_srv;
use super::trust::HostTrust;

/// How long a discovered EWS URL is used before asking again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The largest Autodiscover reply read (a real one is a few kilobytes); a longer
/// one, whether it declares its length or is chunked, is given up at this size.
pub const MAX_AUTODISCOVER_REPLY_BYTES: usize = 1024 * 1024;

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
    #[error(
        "Autodiscover for {mailbox} pointed to {}, outside {domain}, which Calvert did not ask so that the service account's password stays with the mailbox's own servers (tried {}; last: {last}): if that is your Exchange, add it to autodiscover_hosts in the server's [[exchange]] section (calvert check: --autodiscover-host)",
        hosts.join(", "),
        tried.join(", ")
    )]
    Refused {
        mailbox: String,
        domain: String,
        /// The hosts not asked.
        hosts: Vec<String>,
        tried: Vec<String>,
        last: String,
    },
    #[error(
        "Autodiscover gives {url} as the EWS URL of {mailbox}, which is not https, and Calvert refuses it so that the password is never sent in clear: publish an https EWS URL in Exchange, or set the server's url by hand"
    )]
    InsecureEwsUrl { mailbox: String, url: String },
    #[error("{mailbox} is not an address Autodiscover can look up: use name@domain")]
    BadAddress { mailbox: String },
    #[error("the CA bundle {path} cannot be used for Autodiscover: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("cannot start the HTTP client for Autodiscover: {reason}")]
    Client { reason: String },
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
    /// Hosts asked beyond the mailbox's domain, and those allowed plain http.
    trust: HostTrust,
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
            trust: HostTrust::default(),
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

    /// Ask these endpoints instead of the domain's candidates (their hosts are
    /// trusted like `autodiscover_hosts`).
    pub fn with_endpoints(mut self, endpoints: Vec<String>) -> Self {
        let hosts: Vec<String> = endpoints
            .iter()
            .filter_map(|e| Url::parse(e).ok()?.host_str().map(str::to_string))
            .collect();
        self.trust.allow(&hosts);
        self.endpoints = Some(endpoints);
        self
    }

    /// Also follow redirects and SRV records to these hosts outside the mailbox's
    /// domain (the server's `autodiscover_hosts`).
    pub fn with_autodiscover_hosts(mut self, hosts: &[String]) -> Self {
        self.trust.allow(hosts);
        self
    }

    /// Send the service account's credentials over plain http to these hosts, and
    /// accept an `http://` EWS URL on them (a test server; the server's `ssl = false`).
    pub fn with_plain_http(mut self, hosts: &[String]) -> Self {
        self.trust.allow_plain_http(hosts);
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
            domain: key
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
            address: key.clone(),
            redirects: Redirects::default(),
            tried: Vec::new(),
            last: String::from("no answer"),
            srv_asked: Vec::new(),
            refused: Vec::new(),
        };
        while let Some(candidate) = self.next_candidate(&mut lookup).await {
            let Some(url) = self.admitted(&mut lookup, &candidate) else {
                continue;
            };
            lookup.tried.push(candidate);
            if let Some(settings) = self.ask(&mut lookup, &url).await? {
                self.cache()
                    .insert(key, (settings.clone(), tokio::time::Instant::now()));
                return Ok(settings);
            }
        }
        Err(lookup.failed(key))
    }

    /// `candidate` as a URL when it may be asked for the lookup's domain; else the
    /// refusal is noted (and the host kept for the final error).
    fn admitted(&self, lookup: &mut Lookup, candidate: &str) -> Option<Url> {
        let url = match Url::parse(candidate) {
            Ok(url) => url,
            Err(e) => {
                lookup.last = format!("{candidate}: not a URL ({e})");
                return None;
            }
        };
        if self.trust.may_ask(&lookup.domain, &url) {
            return Some(url);
        }
        let host = url.host_str().unwrap_or(candidate).to_string();
        lookup.last = format!(
            "{candidate}: {host} is outside {} and not in autodiscover_hosts, not asked",
            lookup.domain
        );
        if !lookup.refused.contains(&host) {
            lookup.refused.push(host);
        }
        None
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
    /// credentials (`signed_in`: https, or a host allowed plain http), else the
    /// unauthenticated GET (only a redirect to https is of use there).
    fn request(
        &self,
        url: &Url,
        soap: bool,
        signed_in: bool,
        address: &str,
    ) -> reqwest::RequestBuilder {
        if !signed_in {
            return self.http.get(url.clone());
        }
        let body = if soap {
            get_user_settings_request(address, url.as_str())
        } else {
            pox_request(address)
        };
        self.http
            .post(url.clone())
            .basic_auth(&self.user, Some(&self.password))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(body)
    }

    /// Ask one candidate: the settings if it gave them, else `None` with the lookup
    /// moved on (a redirect queued, or the failure noted).
    async fn ask(
        &self,
        lookup: &mut Lookup,
        url: &Url,
    ) -> Result<Option<UserSettings>, DiscoveryError> {
        let soap = url.path().ends_with(".svc");
        let signed_in = self.trust.carries_credentials(url);
        let request = self.request(url, soap, signed_in, &lookup.address);
        let response = match request.send().await {
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
                .map(str::trim)
                .unwrap_or("");
            if location.is_empty() {
                lookup.last = format!("{url}: HTTP {status} without a Location");
                return Ok(None);
            }
            let target = url
                .join(location)
                .map_or_else(|_| location.to_string(), String::from);
            Self::redirect(lookup, url.as_str(), target)?;
            return Ok(None);
        }
        if !signed_in {
            lookup.last = format!(
                "{url}: HTTP {status} and no redirect (plain http is asked, without credentials, only for a redirect to https)"
            );
            return Ok(None);
        }
        if !status.is_success() {
            lookup.last = format!("{url}: HTTP {status}");
            return Ok(None);
        }
        let text = match read_text_capped(response, MAX_AUTODISCOVER_REPLY_BYTES).await {
            Ok(text) => text,
            Err(e) => {
                lookup.last = format!("{url}: {e}");
                return Ok(None);
            }
        };
        let answer = if soap {
            parse_get_user_settings(&text)
        } else {
            parse_pox(&text)
        };
        self.follow(lookup, url.as_str(), answer)
    }

    /// Queue a redirect to `target` from `from`: a loop or one redirect too many
    /// end the lookup; a target that is not https is noted and the walk goes on.
    fn redirect(lookup: &mut Lookup, from: &str, target: String) -> Result<(), DiscoveryError> {
        match lookup.redirects.follow(&target) {
            Ok(()) => lookup.queue.push_front(target),
            Err(insecure @ AutodiscoverError::Insecure { .. }) => {
                lookup.last = format!("{from}: {insecure}");
            }
            Err(other) => return Err(other.into()),
        }
        Ok(())
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
            Ok(Discovery::Found(settings)) => {
                if !self.trust.accepts_ews_url(&settings.ews_url) {
                    return Err(DiscoveryError::InsecureEwsUrl {
                        mailbox: lookup.address.clone(),
                        url: settings.ews_url,
                    });
                }
                return Ok(Some(settings));
            }
            Ok(Discovery::RedirectAddress(target)) => {
                lookup.redirects.follow(&target)?;
                lookup.address = target.trim().to_ascii_lowercase();
                lookup.queue = self.candidates_for(&lookup.address)?;
            }
            Ok(Discovery::RedirectUrl(target)) => Self::redirect(lookup, url, target)?,
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
    /// The first address's domain: what the hosts asked must be within (or trusted).
    domain: String,
    queue: VecDeque<String>,
    redirects: Redirects,
    tried: Vec<String>,
    last: String,
    /// Domains whose SRV record was asked for already.
    srv_asked: Vec<String>,
    /// Hosts not asked: outside the domain and not trusted.
    refused: Vec<String>,
}

impl Lookup {
    /// The error when no candidate gave an answer: the refused hosts when there
    /// were any (the setting to add), else what was tried.
    fn failed(self, mailbox: String) -> DiscoveryError {
        if self.refused.is_empty() {
            return DiscoveryError::NotFound {
                mailbox,
                tried: self.tried,
                last: self.last,
            };
        }
        DiscoveryError::Refused {
            mailbox,
            domain: self.domain,
            hosts: self.refused,
            tried: self.tried,
            last: self.last,
        }
    }
}
