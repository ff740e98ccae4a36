//! `calvert.toml`: what an administrator configures (seed 000), read and checked once.
//!
//! [`ServiceConfig::load`] is the only way to get a [`ServiceConfig`]: it parses the
//! TOML, resolves secrets (from the file itself, an environment variable or a file),
//! and checks everything it can before the service starts — servers, both kinds of
//! rules (through the core's `validate-config`), trigger words, the policy, zones and
//! users. Every problem is reported with its key (`user[3].zone: …`), all at once,
//! so an administrator fixes the file in one pass and the service never starts half
//! configured. `docs/calvert.example.toml` is the annotated example.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::component::wit::{self, DecidePolicy, FreeBusy, ReturnTime, Rule, Trigger};
use crate::component::{CoreError, CoreInstance};
use crate::ews::client::Credentials;

/// One thing wrong with the configuration, at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}; check the path given to --config")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML for Calvert: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path} has {} problem(s); fix them and start again:\n{}", .problems.len(), list(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
    #[error(transparent)]
    Core(#[from] CoreError),
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ------------------------------------------------------------------------------
// The file as written
// ------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    service: ServiceSection,
    #[serde(default)]
    exchange: Vec<ExchangeSection>,
    #[serde(default)]
    rule: Vec<RuleSection>,
    #[serde(default)]
    telephony: Vec<TelephonySection>,
    #[serde(default)]
    telephony_rule: Vec<RuleSection>,
    #[serde(default)]
    trigger: Vec<TriggerSection>,
    #[serde(default)]
    policy: PolicySection,
    #[serde(default)]
    user: Vec<UserSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServiceSection {
    state_dir: PathBuf,
    admin_listen: Option<String>,
    zone: String,
    window_days: u32,
    resync_minutes: u32,
    debounce_ms: u64,
    failures_before_error: u32,
    cache_mb: u64,
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection {
            state_dir: PathBuf::from("calvert-state"),
            admin_listen: Some("127.0.0.1:9185".into()),
            zone: "Europe/Stockholm".into(),
            window_days: 2,
            resync_minutes: 15,
            debounce_ms: 300,
            failures_before_error: 5,
            cache_mb: 64,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeSection {
    name: String,
    /// The EWS URL; found by Autodiscover when absent and `autodiscover` is on.
    url: Option<String>,
    host: Option<String>,
    #[serde(default)]
    autodiscover: bool,
    domain: Option<String>,
    #[serde(default = "yes")]
    ssl: bool,
    auth: String,
    user: Option<String>,
    #[serde(flatten)]
    password: SecretSection,
    client_id: Option<String>,
    token_url: Option<String>,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    scope: Option<String>,
    ca_bundle: Option<PathBuf>,
    /// The "local web service address" for push notifications (seed 000).
    push_address: Option<String>,
    #[serde(default)]
    push_ssl: bool,
    /// Where the push listener binds (default 0.0.0.0 and the port of push_address).
    push_listen: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    30_000
}

#[derive(Debug, Default, Deserialize)]
struct SecretSection {
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    #[serde(alias = "target")]
    server: String,
    pattern: String,
    #[serde(default)]
    priority: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelephonySection {
    name: String,
    kind: String,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Header values taken from environment variables: header → variable.
    #[serde(default)]
    headers_env: BTreeMap<String, String>,
    #[serde(default = "default_telephony_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    reads_back: bool,
}

fn default_telephony_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerSection {
    word: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PolicySection {
    divert_on: Vec<String>,
    count_tentative: bool,
    default_reason: String,
    oof_reason: Option<String>,
    return_time: String,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserSection {
    address: String,
    integration_id: Option<String>,
    telephony_id: Option<String>,
    zone: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

// ------------------------------------------------------------------------------
// The checked configuration
// ------------------------------------------------------------------------------

/// A configuration that passed every check. Only [`ServiceConfig::load`] and
/// [`ServiceConfig::from_toml`] make one (outside this crate it cannot be built).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    pub state_dir: PathBuf,
    pub admin_listen: Option<SocketAddr>,
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
}

#[derive(Debug, Clone)]
pub struct ExchangeServer {
    pub name: String,
    /// Known EWS URL, or None when Autodiscover finds it per mailbox.
    pub url: Option<String>,
    /// The service account, its user name already qualified by the configured
    /// Windows domain ("Domän").
    pub credentials: Credentials,
    pub ca_bundle: Option<PathBuf>,
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

#[derive(Debug, Clone)]
pub enum TelephonyKind {
    Log,
    Http {
        url: String,
        headers: Vec<(String, String)>,
        reads_back: bool,
    },
}

#[derive(Debug, Clone)]
pub struct TelephonyTarget {
    pub name: String,
    pub kind: TelephonyKind,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub address: String,
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

/// Where secrets named in the file are looked up (the process environment in
/// production, a map in tests).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
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
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut check = Check {
            problems: Vec::new(),
            env,
            base,
        };
        let config = check.config(file, core)?;
        if check.problems.is_empty() {
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

struct Check<'a> {
    problems: Vec<ConfigProblem>,
    env: &'a dyn Environment,
    base: &'a Path,
}

impl Check<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// Exactly one of a literal, an environment variable or a file.
    fn secret(
        &mut self,
        key: &str,
        literal: Option<String>,
        env: Option<String>,
        file: Option<PathBuf>,
    ) -> Option<String> {
        let given = [literal.is_some(), env.is_some(), file.is_some()]
            .iter()
            .filter(|g| **g)
            .count();
        if given > 1 {
            self.problem(
                key,
                format!("give only one of {key}, {key}_env and {key}_file"),
            );
            return None;
        }
        if let Some(value) = literal {
            return Some(value);
        }
        if let Some(name) = env {
            return match self.env.var(&name) {
                Some(value) if !value.is_empty() => Some(value),
                _ => {
                    self.problem(
                        format!("{key}_env"),
                        format!("the environment variable {name} is not set; export it before starting Calvert"),
                    );
                    None
                }
            };
        }
        if let Some(file) = file {
            let full = self.path(&file);
            return match std::fs::read_to_string(&full) {
                Ok(value) if !value.trim().is_empty() => Some(value.trim_end().to_string()),
                Ok(_) => {
                    self.problem(
                        format!("{key}_file"),
                        format!("{} is empty", full.display()),
                    );
                    None
                }
                Err(e) => {
                    self.problem(
                        format!("{key}_file"),
                        format!("cannot read {}: {e}", full.display()),
                    );
                    None
                }
            };
        }
        self.problem(
            key,
            format!("missing: give {key}, {key}_env (an environment variable) or {key}_file"),
        );
        None
    }

    fn config(&mut self, file: File, core: &mut CoreInstance) -> Result<ServiceConfig, CoreError> {
        let service = file.service;
        let admin_listen = match service.admin_listen.as_deref() {
            None | Some("") => None,
            Some(text) => match text.parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.problem(
                        "service.admin_listen",
                        format!("{text:?} is not an address such as 127.0.0.1:9185"),
                    );
                    None
                }
            },
        };
        let default_zone = self.zone(core, "service.zone", &service.zone, "UTC")?;
        if service.window_days == 0 || service.window_days > 31 {
            self.problem("service.window_days", "must be between 1 and 31");
        }
        if service.resync_minutes == 0 {
            self.problem("service.resync_minutes", "must be at least 1");
        }
        if service.failures_before_error == 0 {
            self.problem("service.failures_before_error", "must be at least 1");
        }

        // Names count even when a server has other problems, so one mistake is not
        // reported again through every rule that names the server.
        let servers: BTreeSet<String> = file.exchange.iter().map(|s| s.name.clone()).collect();
        let exchange = self.exchange(file.exchange);
        let rules = self.rules(core, "rule", "server", file.rule, &servers)?;

        let telephony = self.telephony(file.telephony);
        let targets: BTreeSet<String> = telephony.iter().map(|t| t.name.clone()).collect();
        let telephony_rules = self.rules(
            core,
            "telephony_rule",
            "target",
            file.telephony_rule,
            &targets,
        )?;

        let triggers: Vec<Trigger> = file
            .trigger
            .into_iter()
            .map(|t| Trigger {
                word: t.word,
                reason: t.reason,
            })
            .collect();
        for problem in core.validate_config(&triggers, &[])? {
            self.problem("trigger", problem.message);
        }
        let policy = self.policy(core, file.policy)?;

        let mut users = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, user) in file.user.into_iter().enumerate() {
            let key = format!("user[{i}]");
            let address = user.address.trim().to_string();
            if !is_address(&address) {
                self.problem(
                    format!("{key}.address"),
                    format!("{address:?} is not an e-mail address"),
                );
                continue;
            }
            if !seen.insert(address.to_ascii_lowercase()) {
                self.problem(
                    format!("{key}.address"),
                    format!("{address} is listed twice"),
                );
            }
            let zone = match &user.zone {
                Some(zone) => self.zone(core, &format!("{key}.zone"), zone, &default_zone)?,
                None => default_zone.clone(),
            };
            if user.enabled && user.integration_id.as_deref().is_none_or(str::is_empty) {
                self.problem(
                    format!("{key}.integration_id"),
                    "an enabled user needs an integration id (semantics §8); add it or set enabled = false",
                );
            }
            let exchange = routed(core.route(&address, &rules))?;
            let telephony = routed(core.route(&address, &telephony_rules))?;
            users.push(User {
                telephony_id: user
                    .telephony_id
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| address.clone()),
                address,
                integration_id: user.integration_id.filter(|t| !t.is_empty()),
                zone,
                enabled: user.enabled,
                exchange,
                telephony,
            });
        }
        if servers.is_empty() {
            self.problem("exchange", "no [[exchange]] server is configured");
        } else if rules.is_empty() {
            self.problem(
                "rule",
                "no [[rule]] says which Exchange server serves which address",
            );
        }
        if telephony.is_empty() {
            self.problem("telephony", "no [[telephony]] target is configured");
        } else if telephony_rules.is_empty() {
            self.problem(
                "telephony_rule",
                "no [[telephony_rule]] says which telephony target serves which address",
            );
        }

        Ok(ServiceConfig {
            state_dir: self.path(&service.state_dir),
            admin_listen,
            default_zone,
            window: Duration::from_secs(u64::from(service.window_days) * 86_400),
            resync: Duration::from_secs(u64::from(service.resync_minutes) * 60),
            debounce: Duration::from_millis(service.debounce_ms),
            failures_before_error: service.failures_before_error,
            cache_bytes: service.cache_mb.max(1) << 20,
            exchange,
            rules,
            telephony,
            telephony_rules,
            triggers,
            policy,
            users,
        })
    }

    fn zone(
        &mut self,
        core: &mut CoreInstance,
        key: &str,
        zone: &str,
        fallback: &str,
    ) -> Result<String, CoreError> {
        match core.resolve_zone(zone, fallback) {
            Ok(resolution) => {
                if resolution.warning.is_some() {
                    self.problem(
                        key,
                        format!(
                            "{zone:?} is not a known time zone; use an IANA name such as Europe/Stockholm"
                        ),
                    );
                }
                Ok(resolution.iana)
            }
            Err(CoreError::Rejected(problems)) => {
                for p in problems {
                    self.problem(key, p.message);
                }
                Ok(fallback.to_string())
            }
            Err(e) => Err(e),
        }
    }

    fn exchange(&mut self, sections: Vec<ExchangeSection>) -> Vec<ExchangeServer> {
        let mut servers = Vec::new();
        let mut names = BTreeSet::new();
        for (i, s) in sections.into_iter().enumerate() {
            let key = format!("exchange[{i}]");
            if s.name.trim().is_empty() {
                self.problem(format!("{key}.name"), "must not be empty");
            } else if !names.insert(s.name.clone()) {
                self.problem(
                    format!("{key}.name"),
                    format!("{:?} names two servers", s.name),
                );
            }
            let scheme = if s.ssl { "https" } else { "http" };
            let url = match (&s.url, &s.host) {
                (Some(url), None) => {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        self.problem(
                            format!("{key}.url"),
                            format!("{url:?} is not an http(s) URL"),
                        );
                    } else if s.ssl && url.starts_with("http://") {
                        self.problem(
                            format!("{key}.url"),
                            "plain http with ssl = true: use https, or set ssl = false to allow plain http",
                        );
                    }
                    Some(url.clone())
                }
                (None, Some(host)) => Some(format!("{scheme}://{host}/EWS/Exchange.asmx")),
                (Some(_), Some(_)) => {
                    self.problem(format!("{key}.host"), "give either url or host, not both");
                    None
                }
                (None, None) => {
                    if !s.autodiscover {
                        self.problem(
                            format!("{key}.url"),
                            "missing: give url or host, or set autodiscover = true",
                        );
                    } else if s.auth != "basic" {
                        self.problem(
                            format!("{key}.autodiscover"),
                            format!("Autodiscover signs in with Basic only; with auth = {:?} give url or host", s.auth),
                        );
                    }
                    None
                }
            };
            let credentials = match s.auth.as_str() {
                kind @ ("basic" | "ntlm") => {
                    let user = s.user.clone().unwrap_or_default();
                    if user.is_empty() {
                        self.problem(format!("{key}.user"), "the service account is missing");
                    }
                    self.secret(
                        &format!("{key}.password"),
                        s.password.password,
                        s.password.password_env,
                        s.password.password_file,
                    )
                    .map(|password| {
                        if kind == "ntlm" {
                            Credentials::Ntlm { user, password }
                        } else {
                            Credentials::Basic { user, password }
                        }
                    })
                }
                "oauth" => {
                    let client_id = s.client_id.clone().unwrap_or_default();
                    let token_url = s.token_url.clone().unwrap_or_default();
                    if client_id.is_empty() {
                        self.problem(format!("{key}.client_id"), "missing for auth = \"oauth\"");
                    }
                    if !token_url.starts_with("https://") && !token_url.starts_with("http://") {
                        self.problem(
                            format!("{key}.token_url"),
                            "missing or not a URL; Exchange Online uses https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token",
                        );
                    }
                    self.secret(
                        &format!("{key}.client_secret"),
                        s.client_secret,
                        s.client_secret_env,
                        s.client_secret_file,
                    )
                    .map(|client_secret| Credentials::OAuth {
                        token_url,
                        client_id,
                        client_secret,
                        scope: s
                            .scope
                            .clone()
                            .unwrap_or_else(|| "https://outlook.office365.com/.default".into()),
                    })
                }
                other => {
                    self.problem(
                        format!("{key}.auth"),
                        format!(
                            "{other:?} is not an authentication kind; use \"basic\", \"ntlm\" or \"oauth\""
                        ),
                    );
                    None
                }
            };
            let push = match &s.push_address {
                Some(address) => self.push(&key, address, s.push_ssl, s.push_listen.as_deref()),
                None => None,
            };
            // "Domän": the service account's Windows domain (seed 000).
            let credentials = credentials.map(|c| match (c, &s.domain) {
                (Credentials::Basic { user, password }, Some(domain)) => Credentials::Basic {
                    user: qualified(&user, domain),
                    password,
                },
                (Credentials::Ntlm { user, password }, Some(domain)) => Credentials::Ntlm {
                    user: qualified(&user, domain),
                    password,
                },
                (other, _) => other,
            });
            if let Some(credentials) = credentials {
                servers.push(ExchangeServer {
                    name: s.name,
                    url,
                    credentials,
                    ca_bundle: s.ca_bundle.map(|p| self.path(&p)),
                    push,
                    timeout: Duration::from_millis(s.timeout_ms.max(1)),
                });
            }
        }
        servers
    }

    /// The push URL Exchange is given (`<push_address>/ews/push`) and where to listen.
    fn push(
        &mut self,
        key: &str,
        address: &str,
        ssl: bool,
        listen: Option<&str>,
    ) -> Option<PushSettings> {
        let wanted = if ssl { "https" } else { "http" };
        let url = match reqwest::Url::parse(address) {
            Ok(url) if url.scheme() == wanted && url.host_str().is_some() => url,
            _ => {
                self.problem(
                    format!("{key}.push_address"),
                    format!("{address:?} is not an {wanted}:// address such as {wanted}://calvert.flexi.se:8080 (push_ssl = {ssl})"),
                );
                return None;
            }
        };
        let listen = match listen {
            Some(text) => match text.parse() {
                Ok(addr) => addr,
                Err(_) => {
                    self.problem(
                        format!("{key}.push_listen"),
                        format!("{text:?} is not an address such as 0.0.0.0:8080"),
                    );
                    return None;
                }
            },
            // With TLS, a reverse proxy in front terminates it and forwards here.
            None if ssl => {
                self.problem(
                    format!("{key}.push_listen"),
                    "with push_ssl = true, TLS ends at a reverse proxy: give the plain-http address it forwards to, e.g. 127.0.0.1:8080",
                );
                return None;
            }
            None => SocketAddr::from(([0, 0, 0, 0], url.port_or_known_default().unwrap_or(80))),
        };
        Some(PushSettings {
            url: format!("{}/ews/push", address.trim_end_matches('/')),
            listen,
        })
    }

    fn rules(
        &mut self,
        core: &mut CoreInstance,
        section: &str,
        field: &str,
        sections: Vec<RuleSection>,
        known: &BTreeSet<String>,
    ) -> Result<Vec<Rule>, CoreError> {
        let mut rules = Vec::new();
        for (i, r) in sections.into_iter().enumerate() {
            if !known.contains(&r.server) {
                self.problem(
                    format!("{section}[{i}].{field}"),
                    format!(
                        "{:?} is not the name of a configured {}",
                        r.server,
                        if section == "rule" {
                            "[[exchange]] server"
                        } else {
                            "[[telephony]] target"
                        }
                    ),
                );
            }
            rules.push(Rule {
                server: r.server,
                pattern: r.pattern,
                priority: r.priority,
            });
        }
        for problem in core.validate_config(&[], &rules)? {
            self.problem(section, problem.message);
        }
        Ok(rules)
    }

    fn telephony(&mut self, sections: Vec<TelephonySection>) -> Vec<TelephonyTarget> {
        let mut targets = Vec::new();
        let mut names = BTreeSet::new();
        for (i, t) in sections.into_iter().enumerate() {
            let key = format!("telephony[{i}]");
            if !names.insert(t.name.clone()) {
                self.problem(
                    format!("{key}.name"),
                    format!("{:?} names two targets", t.name),
                );
            }
            let kind = match t.kind.as_str() {
                "log" => TelephonyKind::Log,
                "http" => {
                    let url = t.url.clone().unwrap_or_default();
                    if !url.starts_with("http://") && !url.starts_with("https://") {
                        self.problem(
                            format!("{key}.url"),
                            "an http target needs url = \"https://pbx.example/calvert\"",
                        );
                    }
                    let mut headers: Vec<(String, String)> = t.headers.into_iter().collect();
                    for (header, var) in t.headers_env {
                        match self.env.var(&var) {
                            Some(value) => headers.push((header, value)),
                            None => self.problem(
                                format!("{key}.headers_env.{header}"),
                                format!("the environment variable {var} is not set"),
                            ),
                        }
                    }
                    TelephonyKind::Http {
                        url,
                        headers,
                        reads_back: t.reads_back,
                    }
                }
                other => {
                    self.problem(
                        format!("{key}.kind"),
                        format!("{other:?} is not a target kind; use \"http\" or \"log\""),
                    );
                    continue;
                }
            };
            targets.push(TelephonyTarget {
                name: t.name,
                kind,
                timeout: Duration::from_millis(t.timeout_ms.max(1)),
            });
        }
        targets
    }

    fn policy(
        &mut self,
        core: &mut CoreInstance,
        p: PolicySection,
    ) -> Result<DecidePolicy, CoreError> {
        let mut divert_on = Vec::new();
        for (i, state) in p.divert_on.iter().enumerate() {
            match free_busy(state) {
                Some(fb) => divert_on.push(fb),
                None => self.problem(
                    format!("policy.divert_on[{i}]"),
                    format!("{state:?} is not a free/busy state; use busy, oof, tentative, working-elsewhere or free"),
                ),
            }
        }
        let return_time = match p.return_time.as_str() {
            "block-end" => ReturnTime::BlockEnd,
            "item-end" => ReturnTime::ItemEnd,
            other => {
                self.problem(
                    "policy.return_time",
                    format!("{other:?}: use \"block-end\" or \"item-end\""),
                );
                ReturnTime::BlockEnd
            }
        };
        let policy = DecidePolicy {
            divert_on,
            count_tentative_response: p.count_tentative,
            default_reason: p.default_reason,
            oof_reason: p.oof_reason,
            return_time,
        };
        // The core is the judge of a policy: ask it with an empty calendar.
        match core.decide(&[], &policy, &[], "UTC", 0) {
            Ok(_) => {}
            Err(CoreError::Rejected(problems)) => {
                for problem in problems {
                    if problem.kind == wit::ProblemKind::InvalidPolicy {
                        self.problem("policy", problem.message);
                    }
                }
            }
            Err(e) => return Err(e),
        }
        Ok(policy)
    }
}

/// A route, or None when no rule matches or the rules themselves are at fault (then
/// they are reported as rule problems).
fn routed(route: Result<Option<String>, CoreError>) -> Result<Option<String>, CoreError> {
    match route {
        Ok(server) => Ok(server),
        Err(CoreError::Rejected(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `user` in `domain` (`FLEXI\\svc`), unless it already names one.
fn qualified(user: &str, domain: &str) -> String {
    if user.contains('\\') || user.contains('@') || domain.is_empty() {
        user.to_string()
    } else {
        format!("{domain}\\{user}")
    }
}

fn free_busy(name: &str) -> Option<FreeBusy> {
    Some(match name {
        "busy" => FreeBusy::Busy,
        "oof" => FreeBusy::Oof,
        "tentative" => FreeBusy::Tentative,
        "working-elsewhere" => FreeBusy::WorkingElsewhere,
        "free" => FreeBusy::Free,
        _ => return None,
    })
}

fn is_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecisionCore;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
        static CORE: std::sync::OnceLock<DecisionCore> = std::sync::OnceLock::new();
        let mut core = CORE
            .get_or_init(|| DecisionCore::load().unwrap())
            .instance();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceConfig::from_toml(
            text,
            Path::new("/etc/calvert/calvert.toml"),
            &env,
            &mut core,
        )
    }

    fn problems(text: &str) -> Vec<ConfigProblem> {
        match load(text, &[]) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn the_annotated_example_loads() {
        let text = include_str!("../../docs/calvert.example.toml");
        let config = load(
            text,
            &[
                ("CALVERT_MAIL1_PASSWORD", "s3cret"),
                ("CALVERT_PBX_TOKEN", "Bearer t"),
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

    const MINIMAL: &str = r#"
        [[exchange]]
        name = "mail1"
        url = "https://mail1.flexi.se/EWS/Exchange.asmx"
        auth = "basic"
        user = "svc"
        password = "x"
        [[rule]]
        server = "mail1"
        pattern = "flexi.se"
        [[telephony]]
        name = "log"
        kind = "log"
        [[telephony_rule]]
        target = "log"
        pattern = "*"
        [[user]]
        address = "kim@flexi.se"
        integration_id = "1"
    "#;

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
    fn autodiscover_needs_basic_sign_in() {
        let text = MINIMAL.replace(
            "url = \"https://mail1.flexi.se/EWS/Exchange.asmx\"",
            "autodiscover = true",
        );
        assert!(load(&text, &[]).unwrap().exchange[0].url.is_none());
        let found = problems(&text.replace("auth = \"basic\"", "auth = \"ntlm\""));
        assert_eq!(found[0].key, "exchange[0].autodiscover", "{found:?}");
    }

    #[test]
    fn push_and_the_service_account_domain() {
        let text = MINIMAL.replace(
            "user = \"svc\"",
            "user = \"svc\"\ndomain = \"FLEXI\"\npush_address = \"http://calvert.flexi.se:8080\"",
        );
        let config = load(&text, &[]).unwrap();
        let server = &config.exchange[0];
        assert_eq!(
            server.push,
            Some(PushSettings {
                url: "http://calvert.flexi.se:8080/ews/push".into(),
                listen: "0.0.0.0:8080".parse().unwrap(),
            })
        );
        assert_eq!(server.credentials.who(), "FLEXI\\svc");
        let found = problems(&text.replace("http://calvert", "https://calvert"));
        assert_eq!(found[0].key, "exchange[0].push_address", "{found:?}");
        let found = problems(
            &text
                .replace("http://calvert", "https://calvert")
                .replace("push_address", "push_ssl = true\npush_address"),
        );
        assert_eq!(found[0].key, "exchange[0].push_listen", "{found:?}");
    }

    #[test]
    fn ntlm_is_an_authentication_kind() {
        let config = load(&MINIMAL.replace("auth = \"basic\"", "auth = \"ntlm\""), &[]).unwrap();
        assert!(matches!(
            config.exchange[0].credentials,
            Credentials::Ntlm { .. }
        ));
        let found = problems(&MINIMAL.replace("auth = \"basic\"", "auth = \"kerberos\""));
        assert_eq!(found[0].key, "exchange[0].auth");
    }

    #[test]
    fn an_unrouted_user_loads_without_a_server() {
        let config = load(
            &MINIMAL.replace("pattern = \"flexi.se\"", "pattern = \"@other.se\""),
            &[],
        )
        .unwrap();
        assert_eq!(config.users[0].exchange, None);
        assert_eq!(config.users[0].telephony.as_deref(), Some("log"));
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_never_two_places() {
        let text = MINIMAL.replace("password = \"x\"", "password_env = \"PW\"");
        // A missing secret is one problem, not also one per rule naming the server.
        assert_eq!(problems(&text).len(), 1, "{:?}", problems(&text));
        match &load(&text, &[("PW", "from-env")]).unwrap().exchange[0].credentials {
            Credentials::Basic { password, .. } => assert_eq!(password, "from-env"),
            other => panic!("{other:?}"),
        }
        let missing = problems(&text);
        assert_eq!(missing[0].key, "exchange[0].password_env");
        assert!(missing[0].message.contains("PW is not set"), "{missing:?}");

        let dir = std::env::temp_dir().join(format!("calvert-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "from-file\n").unwrap();
        let text = MINIMAL.replace(
            "password = \"x\"",
            &format!("password_file = {:?}", dir.join("pw")),
        );
        match &load(&text, &[]).unwrap().exchange[0].credentials {
            Credentials::Basic { password, .. } => assert_eq!(password, "from-file"),
            other => panic!("{other:?}"),
        }
        let both = MINIMAL.replace(
            "password = \"x\"",
            "password = \"x\"\npassword_env = \"PW\"",
        );
        assert_eq!(problems(&both)[0].key, "exchange[0].password");
        std::fs::remove_dir_all(dir).unwrap();
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

    #[test]
    fn plain_http_needs_ssl_off() {
        let found = problems(&MINIMAL.replace("https://mail1", "http://mail1"));
        assert_eq!(found[0].key, "exchange[0].url", "{found:?}");
        let ok = MINIMAL
            .replace("https://mail1", "http://mail1")
            .replace("auth = \"basic\"", "auth = \"basic\"\nssl = false");
        load(&ok, &[]).unwrap();
    }
}
