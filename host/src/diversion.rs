//! Diversion targets: where decided diversions go, behind one trait so a vendor can
//! swap in their own telephony system without touching the core or the pipeline.
//!
//! - [`HttpTarget`] speaks the JSON format documented in `docs/diversion-http.md`.
//! - [`LogTarget`] prints each call (trials, the demo).
//!
//! A target answers each call with success, [`TargetError::Unavailable`] (try again
//! later: the outbox keeps the call and retries with back-off) or
//! [`TargetError::Rejected`] (the target refuses this call: retrying will not help).

use crate::http_body::read_text_capped;
use crate::lock::lock;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::{Applied, DiversionCall, OutboxEntry};

/// The person whose phone is diverted, as the telephony system knows them.
#[derive(Debug, Clone)]
pub struct Phone {
    /// The mailbox address.
    pub address: String,
    /// The user's id in the telephony system.
    pub telephony_id: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TargetError {
    #[error("the telephony target {target} is unavailable ({detail}); calls are kept and retried")]
    Unavailable { target: String, detail: String },
    #[error(
        "the telephony target {target} refused the call for {telephony_id}: {detail}; check the user's telephony id and the target's configuration, then restart the user"
    )]
    Rejected {
        target: String,
        telephony_id: String,
        detail: String,
    },
}

/// A telephony system that diversions can be set on and cleared from.
#[async_trait]
pub trait DiversionTarget: Send + Sync {
    /// The configured name, for logs and metrics.
    fn name(&self) -> &str;

    /// Make the call. Must be idempotent for the same `entry.idempotency_key()`.
    async fn apply(&self, phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError>;

    /// What the phone shows now: `Ok(None)` when this target cannot tell,
    /// `Ok(Some(None))` for no diversion.
    async fn observe(&self, phone: &Phone) -> Result<Option<Option<Applied>>, TargetError>;
}

// ------------------------------------------------------------------------------
// log
// ------------------------------------------------------------------------------

/// Prints every call as one line; cannot read diversions back.
pub struct LogTarget {
    name: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogTarget {
    pub fn stdout(name: impl Into<String>) -> Self {
        Self::to(name, Box::new(std::io::stdout()))
    }

    pub fn to(name: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        LogTarget {
            name: name.into(),
            out: Mutex::new(out),
        }
    }
}

/// `2026-11-25T12:30:00Z` for an instant.
pub fn utc(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| at.to_string())
}

#[async_trait]
impl DiversionTarget for LogTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError> {
        let line = match &entry.call {
            DiversionCall::Set {
                reason,
                until,
                until_local,
            } => format!(
                "divert {} ({}) reason {reason} until {} ({until_local}) key {}",
                phone.address,
                phone.telephony_id,
                utc(*until),
                entry.idempotency_key()
            ),
            DiversionCall::Clear => format!(
                "clear {} ({}) key {}",
                phone.address,
                phone.telephony_id,
                entry.idempotency_key()
            ),
        };
        let mut out = lock(&self.out);
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| TargetError::Unavailable {
                target: self.name.clone(),
                detail: e.to_string(),
            })
    }

    async fn observe(&self, _phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        Ok(None)
    }
}

// ------------------------------------------------------------------------------
// http
// ------------------------------------------------------------------------------

/// The body of `PUT …/phones/{telephony_id}/diversion` (docs/diversion-http.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetBody {
    pub user: String,
    pub reason: String,
    /// RFC 3339 UTC.
    pub until: String,
    /// The user's local time, with offset and zone.
    pub until_local: String,
    pub source: String,
}

/// The answer to `GET …/phones/{telephony_id}/diversion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentBody {
    pub reason: String,
    pub until: String,
}

/// The largest reply read from a telephony target: the documented answers are a few
/// hundred bytes.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// The idempotency header sent with every PUT and DELETE.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

pub struct HttpTarget {
    name: String,
    base: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    reads_back: bool,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpTargetError {
    #[error("telephony target {name}: {url:?} is not a URL: {detail}")]
    Url {
        name: String,
        url: String,
        detail: String,
    },
    #[error("telephony target {name}: header {header:?} is not valid in HTTP")]
    Header { name: String, header: String },
    #[error("telephony target {name}: cannot build the HTTP client: {detail}")]
    Client { name: String, detail: String },
}

impl HttpTarget {
    pub fn new(
        name: &str,
        url: &str,
        headers: &[(String, String)],
        reads_back: bool,
        timeout: Duration,
    ) -> Result<Self, HttpTargetError> {
        let mut base = reqwest::Url::parse(url).map_err(|e| HttpTargetError::Url {
            name: name.into(),
            url: url.into(),
            detail: e.to_string(),
        })?;
        if base.cannot_be_a_base() {
            return Err(HttpTargetError::Url {
                name: name.into(),
                url: url.into(),
                detail: "it cannot have paths below it".into(),
            });
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut map = reqwest::header::HeaderMap::new();
        for (header, value) in headers {
            let bad = || HttpTargetError::Header {
                name: name.into(),
                header: header.clone(),
            };
            map.insert(
                reqwest::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad())?,
                reqwest::header::HeaderValue::from_str(value).map_err(|_| bad())?,
            );
        }
        // No redirects: a PUT followed as a GET would be taken for a confirmed call,
        // and a redirect to another host would carry the target's headers (API keys).
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpTargetError::Client {
                name: name.into(),
                detail: e.to_string(),
            })?;
        Ok(HttpTarget {
            name: name.into(),
            base,
            headers: map,
            reads_back,
            http,
        })
    }

    fn url(&self, phone: &Phone) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push("phones")
                .push(&phone.telephony_id)
                .push("diversion");
        }
        url
    }

    fn unavailable(&self, detail: impl Into<String>) -> TargetError {
        TargetError::Unavailable {
            target: self.name.clone(),
            detail: detail.into(),
        }
    }

    fn judge(&self, phone: &Phone, status: u16, body: &str) -> Result<(), TargetError> {
        match status {
            200..=299 => Ok(()),
            300..=399 => Err(TargetError::Rejected {
                target: self.name.clone(),
                telephony_id: phone.telephony_id.clone(),
                detail: format!(
                    "HTTP {status}: it answers with a redirect, which Calvert does not follow for diversion calls; configure the target's final URL"
                ),
            }),
            408 | 425 | 429 | 500..=599 => Err(self.unavailable(format!("HTTP {status}"))),
            _ => Err(TargetError::Rejected {
                target: self.name.clone(),
                telephony_id: phone.telephony_id.clone(),
                detail: format!(
                    "HTTP {status}: {}",
                    body.chars().take(200).collect::<String>()
                ),
            }),
        }
    }
}

#[async_trait]
impl DiversionTarget for HttpTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError> {
        let url = self.url(phone);
        let request = match &entry.call {
            DiversionCall::Set {
                reason,
                until,
                until_local,
            } => self.http.put(url).json(&SetBody {
                user: phone.address.clone(),
                reason: reason.clone(),
                until: utc(*until),
                until_local: until_local.clone(),
                source: "calendar".into(),
            }),
            DiversionCall::Clear => self.http.delete(url),
        };
        let response = request
            .headers(self.headers.clone())
            .header(IDEMPOTENCY_HEADER, entry.idempotency_key())
            .send()
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        // Clearing a diversion that is not there is done.
        if status == 404 && entry.call == DiversionCall::Clear {
            return Ok(());
        }
        // Only for the error's detail: a reply that cannot be read says nothing more.
        let body = read_text_capped(response, MAX_REPLY_BYTES)
            .await
            .unwrap_or_default();
        self.judge(phone, status, &body)
    }

    async fn observe(&self, phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        if !self.reads_back {
            return Ok(None);
        }
        let response = self
            .http
            .get(self.url(phone))
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(Some(None));
        }
        let body = read_text_capped(response, MAX_REPLY_BYTES)
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        self.judge(phone, status, &body)?;
        let applied = parse_read_back(&body).map_err(|e| self.unavailable(e.to_string()))?;
        Ok(Some(Some(applied)))
    }
}

/// Why a diversion read-back (`GET …/diversion`, 200) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadBackError {
    #[error("its diversion read-back is not the documented JSON: {detail}")]
    NotJson { detail: String },
    #[error("until {until:?}: {detail}")]
    Until { until: String, detail: String },
}

/// What a diversion read-back says the phone shows: the documented JSON
/// ([`CurrentBody`]) with `until` as an RFC 3339 instant.
pub fn parse_read_back(body: &str) -> Result<Applied, ReadBackError> {
    let current: CurrentBody = serde_json::from_str(body).map_err(|e| ReadBackError::NotJson {
        detail: e.to_string(),
    })?;
    let until = current
        .until
        .parse::<jiff::Timestamp>()
        .map_err(|e| ReadBackError::Until {
            detail: e.to_string(),
            until: current.until,
        })?;
    Ok(Applied {
        reason: current.reason,
        until: until.as_second(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telephony_ids_are_escaped_into_the_path() {
        let target = HttpTarget::new(
            "pbx",
            "https://pbx.flexi.se/api",
            &[],
            false,
            Duration::from_secs(1),
        )
        .unwrap();
        let phone = Phone {
            address: "kim@flexi.se".into(),
            telephony_id: "+46 8/123".into(),
        };
        assert_eq!(
            target.url(&phone).as_str(),
            "https://pbx.flexi.se/api/phones/+46%208%2F123/diversion"
        );
    }

    #[test]
    fn bad_headers_and_urls_are_named() {
        let err = HttpTarget::new("pbx", "not a url", &[], false, Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.to_string().contains("pbx"), "{err}");
        let err = HttpTarget::new(
            "pbx",
            "https://pbx",
            &[("Bad Header".into(), "x".into())],
            false,
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("Bad Header"), "{err}");
    }

    #[test]
    fn status_codes_split_into_retry_and_refuse() {
        let target =
            HttpTarget::new("pbx", "https://pbx", &[], false, Duration::from_secs(1)).unwrap();
        let phone = Phone {
            address: "kim@flexi.se".into(),
            telephony_id: "1001".into(),
        };
        assert!(target.judge(&phone, 204, "").is_ok());
        for status in [429, 500, 503] {
            assert!(matches!(
                target.judge(&phone, status, ""),
                Err(TargetError::Unavailable { .. })
            ));
        }
        assert!(matches!(
            target.judge(&phone, 400, "unknown phone"),
            Err(TargetError::Rejected { .. })
        ));
    }
}
