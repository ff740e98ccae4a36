//! Autodiscover over HTTP: the candidates of brief §5 in order, redirects followed
//! (capped at 10, https only, no loops), the answer cached per mailbox for a while
//! and forgotten when Exchange says the mailbox is not there any more.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use super::autodiscover::{
    AutodiscoverError, Discovery, Redirects, UserSettings, candidates, get_user_settings_request,
    parse_get_user_settings, parse_pox, pox_request,
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
}

/// Finds mailboxes' EWS URLs with a service account (Basic sign-in).
pub struct Discoverer {
    http: reqwest::Client,
    user: String,
    password: String,
    /// Fixed endpoints to ask instead of the ones derived from the domain (a
    /// configured Autodiscover URL).
    endpoints: Option<Vec<String>>,
    ttl: Duration,
    cache: Mutex<BTreeMap<String, (UserSettings, tokio::time::Instant)>>,
}

impl Discoverer {
    pub fn new(user: &str, password: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Discoverer {
            http,
            user: user.to_string(),
            password: password.to_string(),
            endpoints: None,
            ttl: DEFAULT_TTL,
            cache: Mutex::new(BTreeMap::new()),
        })
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
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// The EWS settings of `mailbox`, from the cache or by asking.
    pub async fn discover(&self, mailbox: &str) -> Result<UserSettings, DiscoveryError> {
        let key = mailbox.trim().to_ascii_lowercase();
        if let Some((settings, at)) = self.cache().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(settings.clone());
        }
        let mut address = key.clone();
        let mut queue = self.candidates_for(&address)?;
        let mut redirects = Redirects::default();
        let mut tried = Vec::new();
        let mut last = String::from("no answer");
        while let Some(url) = queue.pop_front() {
            tried.push(url.clone());
            let soap = url.ends_with(".svc");
            let request = if url.starts_with("http://") && !soap {
                // The unauthenticated GET: only a redirect to https is of use.
                self.http.get(&url)
            } else {
                let body = if soap {
                    get_user_settings_request(&address, &url)
                } else {
                    pox_request(&address)
                };
                self.http
                    .post(&url)
                    .basic_auth(&self.user, Some(&self.password))
                    .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .body(body)
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    last = format!("{url}: {e}");
                    continue;
                }
            };
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("");
                redirects.follow(location)?;
                queue.push_front(location.to_string());
                continue;
            }
            if !status.is_success() {
                last = format!("{url}: HTTP {status}");
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            let answer = if soap {
                parse_get_user_settings(&text)
            } else {
                parse_pox(&text)
            };
            match answer {
                Ok(Discovery::Found(settings)) => {
                    self.cache()
                        .insert(key, (settings.clone(), tokio::time::Instant::now()));
                    return Ok(settings);
                }
                Ok(Discovery::RedirectAddress(target)) => {
                    redirects.follow(&target)?;
                    address = target.trim().to_ascii_lowercase();
                    queue = self.candidates_for(&address)?;
                }
                Ok(Discovery::RedirectUrl(target)) => {
                    redirects.follow(&target)?;
                    queue.push_front(target);
                }
                Err(refused @ AutodiscoverError::Refused { .. }) => return Err(refused.into()),
                Err(other) => last = format!("{url}: {other}"),
            }
        }
        Err(DiscoveryError::NotFound {
            mailbox: key,
            tried,
            last,
        })
    }
}
