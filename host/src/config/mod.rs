//! `calvert.toml`: what an administrator configures (seed 000), read and checked once.
//!
//! [`ServiceConfig::load`] is the only way to get a [`ServiceConfig`]: it parses the
//! TOML, resolves secrets (from the file itself, an environment variable or a file),
//! and checks everything it can before the service starts — servers, both kinds of
//! rules (through the core's `validate-config`), trigger words, the policy, zones and
//! users. Every problem is reported with its key (`user[3].zone: …`), all at once,
//! so an administrator fixes the file in one pass and the service never starts half
//! configured. `docs/calvert.example.toml` is the annotated example.
//!
//! One file per part: `file` is the TOML as written; `check` runs the checks
//! section by section (`service`, `exchange`, `secret`, `rules`, `telephony`,
//! `policy`, `users`, each in its own file) and collects the problems `error`
//! reports.

pub mod admin_tls;
mod check;
pub mod edit;
mod error;
mod exchange;
mod file;
#[cfg(test)]
mod fixture;
mod policy;
mod rules;
mod secret;
pub mod server_edit;
mod service;
mod syntax;
mod telephony;
pub mod user_edit;
mod users;
pub use users::is_address;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::component::CoreInstance;
use crate::component::wit::{DecidePolicy, Rule, Trigger};
use crate::ews::client::Credentials;

pub use error::{ConfigError, ConfigProblem};
pub use secret::{Environment, ProcessEnvironment};
pub use service::AdminToken;

/// A configuration that passed every check. Only [`ServiceConfig::load`] and
/// [`ServiceConfig::from_toml`] make one (outside this crate it cannot be built).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    pub state_dir: PathBuf,
    pub admin_listen: Option<SocketAddr>,
    /// The bearer token `GET /users` and the admin port's POSTs require; without one
    /// they answer 403.
    pub admin_token: Option<AdminToken>,
    /// Names the admin port answers to besides loopback and its own address (`Host`).
    pub admin_hosts: Vec<String>,
    /// TLS on the admin port; None: plain HTTP (warned about off loopback).
    pub admin_tls: Option<admin_tls::AdminTls>,
    /// The admin and push listeners' connection limit and timeouts.
    pub listener_limits: crate::listener::Limits,
    pub default_zone: String,
    /// How far ahead the calendar is read (the past is read back to the start of today).
    pub window: Duration,
    /// The safety-net reconcile of every mailbox.
    pub resync: Duration,
    /// Notifications arriving within this time are handled as one.
    pub debounce: Duration,
    pub failures_before_error: u32,
    pub cache_bytes: u64,
    pub exchange: Vec<ExchangeServer>,
    pub rules: Vec<Rule>,
    pub telephony: Vec<TelephonyTarget>,
    pub telephony_rules: Vec<Rule>,
    pub triggers: Vec<Trigger>,
    pub policy: DecidePolicy,
    pub users: Vec<User>,
    /// `[sync] default_event_type`: the business system's event type for events that
    /// come from Exchange (the two-way sync, issue 12); None: the business side's own.
    pub default_event_type: Option<String>,
    /// The text this was made from, for live edits and `calvert config export`.
    pub source: ConfigSource,
}

/// Where a configuration came from: its text, the path that anchors relative paths,
/// and the environment variables its check read (a live edit is checked against the
/// same environment the service started with).
#[derive(Clone, Default)]
pub struct ConfigSource {
    /// May hold secrets written in the file: shown to administrators only through
    /// [`edit::redacted`].
    pub text: String,
    pub path: PathBuf,
    vars: std::collections::BTreeMap<String, String>,
}

/// Neither the text nor the variables' values (secrets among them) are shown.
impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .field("text_bytes", &self.text.len())
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConfigSource {
    /// Check `text` (an edit of this one) as the file was checked.
    pub fn check(&self, text: &str, core: &mut CoreInstance) -> Result<ServiceConfig, ConfigError> {
        ServiceConfig::from_toml(text, &self.path, &SeenThenProcess(&self.vars), core)
    }
}

/// The variables read at start first, then the process environment.
struct SeenThenProcess<'a>(&'a std::collections::BTreeMap<String, String>);

impl Environment for SeenThenProcess<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .cloned()
            .or_else(|| ProcessEnvironment.var(name))
    }
}

/// Notes every variable read, for [`ConfigSource`].
struct Recording<'a> {
    env: &'a dyn Environment,
    seen: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
}

impl Environment for Recording<'_> {
    fn var(&self, name: &str) -> Option<String> {
        let value = self.env.var(name);
        if let Some(value) = &value {
            self.seen
                .borrow_mut()
                .insert(name.to_string(), value.clone());
        }
        value
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeServer {
    pub name: String,
    /// Known EWS URL, or None when Autodiscover finds it per mailbox.
    pub url: Option<String>,
    /// The service account, its user name already qualified by the configured
    /// Windows domain ("Domän").
    pub credentials: Credentials,
    pub ca_bundle: Option<PathBuf>,
    /// Hosts outside a mailbox's domain that Autodiscover redirects and SRV records
    /// may lead to (`autodiscover_hosts`).
    pub autodiscover_hosts: Vec<String>,
    /// Of those, the ones Autodiscover and a discovered EWS URL may use plain http
    /// with (`ssl = false`; test servers).
    pub plain_http_hosts: Vec<String>,
    /// Push notifications instead of streaming, when a local web service address is
    /// configured (seed 000).
    pub push: Option<PushSettings>,
    pub timeout: Duration,
}

/// Exchange posts notifications to `url`; Calvert listens on `listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    pub url: String,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TelephonyKind {
    Log,
    Http {
        url: String,
        headers: Vec<(String, String)>,
        reads_back: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TelephonyTarget {
    pub name: String,
    pub kind: TelephonyKind,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub address: String,
    /// The person's name and company, as the administration shows and searches them.
    pub name: Option<String>,
    pub company: Option<String>,
    pub integration_id: Option<String>,
    /// The user's id in the telephony system (the address when not given).
    pub telephony_id: String,
    pub zone: String,
    pub enabled: bool,
    /// The Exchange server and telephony target the rules chose; None when no rule
    /// matches, which puts the user in Error ("no route", semantics §4) without
    /// stopping anyone else.
    pub exchange: Option<String>,
    pub telephony: Option<String>,
}

impl ServiceConfig {
    /// Read, parse and check `path`; secrets from the process environment.
    pub fn load(path: &Path, core: &mut CoreInstance) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path, &ProcessEnvironment, core)
    }

    /// Parse and check a configuration text. `path` names it in messages and anchors
    /// relative paths (state_dir, secret files, CA bundles).
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: &dyn Environment,
        core: &mut CoreInstance,
    ) -> Result<Self, ConfigError> {
        let file: file::File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: syntax::describe(text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let recording = Recording {
            env,
            seen: Default::default(),
        };
        let mut check = check::Check {
            problems: Vec::new(),
            env: &recording,
            base,
        };
        let mut config = check.config(file, core)?;
        if check.problems.is_empty() {
            config.source = ConfigSource {
                text: text.to_string(),
                path: path.to_path_buf(),
                vars: recording.seen.into_inner(),
            };
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: check.problems,
            })
        }
    }

    /// The configured user with this address.
    pub fn user(&self, address: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.address.eq_ignore_ascii_case(address))
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{MINIMAL, load, problems};
    use super::*;

    #[test]
    fn the_annotated_example_loads() {
        let text = include_str!("../../../docs/calvert.example.toml");
        let config = load(
            text,
            &[
                ("CALVERT_MAIL1_PASSWORD", "s3cret"),
                ("CALVERT_PBX_TOKEN", "Bearer t"),
                ("CALVERT_ADMIN_TOKEN", "0123456789abcdef0123"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.users.len(), 3);
        let kim = config.user("KIM@flexi.se").unwrap();
        assert_eq!(kim.exchange.as_deref(), Some("mail1"));
        assert_eq!(kim.telephony.as_deref(), Some("pbx-stockholm"));
        let aino = config.user("aino@fi.flexi.se").unwrap();
        assert_eq!(aino.telephony.as_deref(), Some("pbx-helsinki"));
        assert_eq!(config.state_dir, Path::new("/var/lib/calvert"));
        match &config.exchange[0].credentials {
            Credentials::Basic { password, .. } => assert_eq!(password, "s3cret"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let config = load(MINIMAL, &[]).unwrap();
        assert_eq!(config.default_zone, "Europe/Stockholm");
        assert_eq!(config.users[0].telephony_id, "kim@flexi.se");
        assert_eq!(config.users[0].zone, "Europe/Stockholm");
        assert_eq!(config.policy, DecidePolicy::default());
        assert_eq!(config.resync, Duration::from_secs(15 * 60));
    }

    #[test]
    fn every_problem_is_listed_by_key() {
        let text = MINIMAL.replace(
            "pattern = \"flexi.se\"",
            "pattern = \"flexi.se\"\n[[rule]]\nserver = \"mail9\"\npattern = \"x@@\"\n",
        ) + r#"
        [[user]]
        address = "not-an-address"
        [[user]]
        address = "eva@flexi.se"
        zone = "Mars/Olympus"
        [[user]]
        address = "kim@flexi.se"
        integration_id = "2"
        [[trigger]]
        word = ""
        reason = "X"
        [policy]
        return_time = "soon"
        divert_on = ["busy", "asleep"]
        "#;
        let found = problems(&text);
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "rule[1].server",
            "user[1].address",
            "user[2].zone",
            "user[2].integration_id",
            "user[3].address",
            "trigger",
            "policy.return_time",
            "policy.divert_on[1]",
        ] {
            assert!(
                keys.contains(&expected),
                "{expected} missing from {found:#?}"
            );
        }
    }

    #[test]
    fn syntax_errors_and_unknown_keys_say_where() {
        let err = load("[[exchange]\n", &[]).unwrap_err().to_string();
        assert!(err.contains("not valid TOML"), "{err}");
        let err = load(
            &MINIMAL.replace("auth = \"basic\"", "auth = \"basic\"\npasword = \"typo\""),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pasword"), "{err}");
    }
}
