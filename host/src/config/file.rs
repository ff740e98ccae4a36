//! `calvert.toml` as written: the sections serde reads, before any check.
//!
//! Unknown keys are refused (`deny_unknown_fields`), so a typo is an error, not a
//! silently ignored setting; `syntax` names the key, its section and the key meant.
//! No section uses `#[serde(flatten)]`: beside a flattened struct serde reports an
//! unknown key without its place in the file. Defaults here are the documented
//! ones (`docs/calvert.example.toml`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::component::wit::DecidePolicy;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) service: ServiceSection,
    #[serde(default)]
    pub(super) exchange: Vec<ExchangeSection>,
    #[serde(default)]
    pub(super) rule: Vec<RuleSection>,
    #[serde(default)]
    pub(super) telephony: Vec<TelephonySection>,
    #[serde(default)]
    pub(super) telephony_rule: Vec<RuleSection>,
    #[serde(default)]
    pub(super) trigger: Vec<TriggerSection>,
    #[serde(default)]
    pub(super) policy: PolicySection,
    #[serde(default)]
    pub(super) user: Vec<UserSection>,
    #[serde(default)]
    pub(super) sync: SyncSection,
}

/// `[sync]`: the two-way calendar sync's settings (seed 002).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SyncSection {
    /// The business system's event type for events that come from Exchange.
    pub(super) default_event_type: Option<String>,
}

/// `[service]`: where state lives, the admin address, timings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServiceSection {
    pub(super) state_dir: PathBuf,
    pub(super) admin_listen: Option<String>,
    /// The admin token: an environment variable or a file holding it.
    pub(super) admin_token_env: Option<String>,
    pub(super) admin_token_file: Option<PathBuf>,
    /// Names besides loopback and the listening address that may appear in `Host`.
    pub(super) admin_hosts: Vec<String>,
    /// TLS on the admin port: a PEM certificate chain and its private key.
    pub(super) admin_tls_cert: Option<PathBuf>,
    pub(super) admin_tls_key: Option<PathBuf>,
    /// Each HTTP listener's limits (admin and push).
    pub(super) max_connections: usize,
    pub(super) header_timeout_ms: u64,
    pub(super) request_timeout_ms: u64,
    pub(super) zone: String,
    pub(super) window_days: u32,
    pub(super) resync_minutes: u32,
    pub(super) debounce_ms: u64,
    pub(super) failures_before_error: u32,
    pub(super) cache_mb: u64,
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection {
            state_dir: PathBuf::from("calvert-state"),
            admin_listen: Some("127.0.0.1:9185".into()),
            admin_token_env: None,
            admin_token_file: None,
            admin_hosts: Vec::new(),
            admin_tls_cert: None,
            admin_tls_key: None,
            max_connections: crate::listener::MAX_CONNECTIONS,
            header_timeout_ms: crate::listener::HEADER_TIMEOUT.as_millis() as u64,
            request_timeout_ms: crate::listener::REQUEST_TIMEOUT.as_millis() as u64,
            zone: "Europe/Stockholm".into(),
            window_days: 2,
            resync_minutes: 15,
            debounce_ms: 300,
            failures_before_error: 5,
            cache_mb: 64,
        }
    }
}

/// One `[[exchange]]` server and how Calvert signs in to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExchangeSection {
    pub(super) name: String,
    /// The EWS URL; found by Autodiscover when absent and `autodiscover` is on.
    pub(super) url: Option<String>,
    pub(super) host: Option<String>,
    #[serde(default)]
    pub(super) autodiscover: bool,
    /// Hosts outside the mailboxes' domain Autodiscover may be redirected to.
    #[serde(default)]
    pub(super) autodiscover_hosts: Vec<String>,
    pub(super) domain: Option<String>,
    #[serde(default = "yes")]
    pub(super) ssl: bool,
    pub(super) auth: String,
    pub(super) user: Option<String>,
    /// The service account's password: literally, by environment variable or by file.
    pub(super) password: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) client_id: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_env: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) scope: Option<String>,
    pub(super) ca_bundle: Option<PathBuf>,
    /// The "local web service address" for push notifications (seed 000).
    pub(super) push_address: Option<String>,
    #[serde(default)]
    pub(super) push_ssl: bool,
    /// Where the push listener binds (default 0.0.0.0 and the port of push_address).
    pub(super) push_listen: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub(super) timeout_ms: u64,
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// One `[[rule]]` or `[[telephony_rule]]`: addresses matching `pattern` go to `server`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSection {
    #[serde(alias = "target")]
    pub(super) server: String,
    pub(super) pattern: String,
    #[serde(default)]
    pub(super) priority: i32,
}

/// One `[[telephony]]` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TelephonySection {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    /// Header values taken from environment variables: header → variable.
    #[serde(default)]
    pub(super) headers_env: BTreeMap<String, String>,
    #[serde(default = "default_telephony_timeout_ms")]
    pub(super) timeout_ms: u64,
    #[serde(default)]
    pub(super) reads_back: bool,
}

fn default_telephony_timeout_ms() -> u64 {
    5_000
}

/// One `[[trigger]]` word and the reason code it sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerSection {
    pub(super) word: String,
    pub(super) reason: String,
}

/// `[policy]`: when to divert and with which reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PolicySection {
    pub(super) divert_on: Vec<String>,
    pub(super) count_tentative: bool,
    pub(super) default_reason: String,
    pub(super) oof_reason: Option<String>,
    pub(super) return_time: String,
}

impl Default for PolicySection {
    fn default() -> Self {
        let core = DecidePolicy::default();
        PolicySection {
            divert_on: vec!["busy".into(), "oof".into()],
            count_tentative: core.count_tentative_response,
            default_reason: core.default_reason,
            oof_reason: core.oof_reason,
            return_time: "block-end".into(),
        }
    }
}

/// One `[[user]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserSection {
    pub(super) address: String,
    /// Shown and searched in the administration only.
    pub(super) name: Option<String>,
    pub(super) company: Option<String>,
    pub(super) integration_id: Option<String>,
    pub(super) telephony_id: Option<String>,
    pub(super) zone: Option<String>,
    #[serde(default = "yes")]
    pub(super) enabled: bool,
}
