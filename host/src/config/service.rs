//! `[service]`: the state directory, the admin address and who may use it, the
//! listeners' limits, the default zone and the timings; and the time-zone check users
//! share.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::ServiceConfig;
use super::admin_tls::AdminTls;
use super::check::Check;
use super::file::ServiceSection;
use crate::component::{CoreError, CoreInstance};
use crate::listener::Limits;

/// The shortest admin token accepted.
const MIN_TOKEN_CHARS: usize = 16;

/// The admin port's bearer token (`Debug` never shows it).
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token as given; the configuration check refuses short ones.
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
    }

    /// Whether `presented` is the token, compared in constant time (only a length
    /// difference returns early).
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(redacted)")
    }
}

/// `[service]` once checked: the service-wide part of a [`super::ServiceConfig`].
pub(super) struct ServiceSettings {
    pub(super) state_dir: PathBuf,
    pub(super) admin_listen: Option<SocketAddr>,
    pub(super) admin_token: Option<AdminToken>,
    pub(super) admin_hosts: Vec<String>,
    pub(super) admin_tls: Option<AdminTls>,
    pub(super) listener_limits: Limits,
    pub(super) default_zone: String,
    pub(super) window: Duration,
    pub(super) resync: Duration,
    pub(super) debounce: Duration,
    pub(super) failures_before_error: u32,
    pub(super) cache_bytes: u64,
}

impl Check<'_> {
    pub(super) fn service(
        &mut self,
        core: &mut CoreInstance,
        service: ServiceSection,
    ) -> Result<ServiceSettings, CoreError> {
        let admin_listen = self.admin_listen(service.admin_listen.as_deref());
        let admin_token = self.admin_token(service.admin_token_env, service.admin_token_file);
        let admin_hosts = self.admin_hosts(service.admin_hosts);
        let admin_tls = self.admin_tls(service.admin_tls_cert, service.admin_tls_key);
        let listener_limits = self.listener_limits(
            service.max_connections,
            service.header_timeout_ms,
            service.request_timeout_ms,
        );
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
        Ok(ServiceSettings {
            state_dir: self.path(&service.state_dir),
            admin_listen,
            admin_token,
            admin_hosts,
            admin_tls,
            listener_limits,
            default_zone,
            window: Duration::from_secs(u64::from(service.window_days) * 86_400),
            resync: Duration::from_secs(u64::from(service.resync_minutes) * 60),
            debounce: Duration::from_millis(service.debounce_ms),
            failures_before_error: service.failures_before_error,
            cache_bytes: service.cache_mb.max(1) << 20,
        })
    }

    /// The admin port's certificate and key: both or neither, each a readable PEM file.
    fn admin_tls(&mut self, cert: Option<PathBuf>, key: Option<PathBuf>) -> Option<AdminTls> {
        match (cert, key) {
            (None, None) => None,
            (Some(_), None) => {
                self.problem(
                    "service.admin_tls_key",
                    "give the certificate's private key (PEM) too",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "service.admin_tls_cert",
                    "give the certificate chain (PEM) the key belongs to",
                );
                None
            }
            (Some(cert), Some(key)) => match AdminTls::load(&self.path(&cert), &self.path(&key)) {
                Ok(tls) => Some(tls),
                Err(problem) => {
                    self.problem(problem.key, problem.message);
                    None
                }
            },
        }
    }

    /// The admin listener's address; none when left empty.
    fn admin_listen(&mut self, text: Option<&str>) -> Option<SocketAddr> {
        match text {
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
        }
    }

    /// The admin token from `admin_token_env` or `admin_token_file`, if either is given.
    fn admin_token(&mut self, env: Option<String>, file: Option<PathBuf>) -> Option<AdminToken> {
        let token = self.optional_secret("service.admin_token", None, env.clone(), file)?;
        if token.chars().count() < MIN_TOKEN_CHARS {
            let key = if env.is_some() {
                "service.admin_token_env"
            } else {
                "service.admin_token_file"
            };
            self.problem(
                key,
                format!(
                    "the admin token is shorter than {MIN_TOKEN_CHARS} characters; use a random one, e.g. from `openssl rand -hex 32`"
                ),
            );
            return None;
        }
        Some(AdminToken(token))
    }

    /// Host names (or IP addresses) the admin port also answers to, lower-cased.
    fn admin_hosts(&mut self, hosts: Vec<String>) -> Vec<String> {
        let mut names = Vec::new();
        for (i, host) in hosts.into_iter().enumerate() {
            let name = host.trim().to_ascii_lowercase();
            if is_host_name(&name) {
                names.push(name);
            } else {
                self.problem(
                    format!("service.admin_hosts[{i}]"),
                    format!(
                        "{host:?} is not a host name or IP address such as calvert.flexi.se (no scheme, port or path)"
                    ),
                );
            }
        }
        names
    }

    fn listener_limits(&mut self, connections: usize, header_ms: u64, request_ms: u64) -> Limits {
        for (key, value) in [
            ("service.max_connections", connections as u64),
            ("service.header_timeout_ms", header_ms),
            ("service.request_timeout_ms", request_ms),
        ] {
            if value == 0 {
                self.problem(key, "must be at least 1");
            }
        }
        Limits {
            connections: connections.max(1),
            header_timeout: Duration::from_millis(header_ms.max(1)),
            request_timeout: Duration::from_millis(request_ms.max(1)),
        }
    }

    /// The IANA name of `zone` (a Windows id is accepted); `fallback` when the core
    /// rejects it.
    pub(super) fn zone(
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
}

/// A DNS name (letters, digits, hyphens, dots between labels) or an IP address.
fn is_host_name(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok()
        || (!name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

impl ServiceConfig {
    /// What works but deserves a word at `--check`: an admin port reachable from
    /// other hosts, or one without a token.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(addr) = self.admin_listen else {
            return warnings;
        };
        if !addr.ip().is_loopback() && self.admin_tls.is_none() {
            warnings.push(format!(
                "service.admin_listen = \"{addr}\" lets other hosts reach the admin port over plain HTTP: set service.admin_tls_cert and service.admin_tls_key, or keep it on 127.0.0.1"
            ));
        }
        if self.admin_token.is_none() {
            warnings.push(
                "no admin token: GET /users and the POST actions answer 403 until service.admin_token_env or service.admin_token_file names one".into(),
            );
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{MINIMAL, load, problems};

    #[test]
    fn service_settings_are_checked_and_converted() {
        let text = format!(
            "[service]\nadmin_listen = \"\"\nwindow_days = 3\ncache_mb = 0\nzone = \"W. Europe Standard Time\"\n{MINIMAL}"
        );
        let config = load(&text, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.admin_listen, None);
        assert_eq!(config.window.as_secs(), 3 * 86_400);
        assert_eq!(config.cache_bytes, 1 << 20);
        assert_eq!(
            config.state_dir,
            std::path::Path::new("/etc/calvert/calvert-state")
        );
        assert!(
            !config.default_zone.contains(' '),
            "{}",
            config.default_zone
        );

        let text = format!(
            "[service]\nadmin_listen = \"localhost\"\nwindow_days = 0\nresync_minutes = 0\nfailures_before_error = 0\n{MINIMAL}"
        );
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "service.admin_listen",
                "service.window_days",
                "service.resync_minutes",
                "service.failures_before_error"
            ]
        );
    }

    #[test]
    fn the_admin_token_hosts_and_listener_limits_are_checked() {
        let text = format!(
            "[service]\nadmin_listen = \"0.0.0.0:9185\"\nadmin_token_env = \"T\"\nadmin_hosts = [\"Calvert.Flexi.se\", \"::1\"]\nmax_connections = 8\nheader_timeout_ms = 250\n{MINIMAL}"
        );
        let config = load(&text, &[("T", "0123456789abcdef")]).unwrap_or_else(|e| panic!("{e}"));
        let token = config.admin_token.as_ref().expect("a token");
        assert!(token.matches("0123456789abcdef"));
        assert!(!token.matches("0123456789abcdeF") && !token.matches(""));
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
        assert_eq!(config.admin_hosts, ["calvert.flexi.se", "::1"]);
        assert_eq!(config.listener_limits.connections, 8);
        assert_eq!(config.listener_limits.header_timeout.as_millis(), 250);
        assert_eq!(
            config.listener_limits.request_timeout,
            crate::listener::REQUEST_TIMEOUT
        );
        // Not loopback: one warning; the token is there.
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("0.0.0.0:9185"), "{warnings:?}");

        // No token: a warning, not a problem.
        let config = load(MINIMAL, &[]).unwrap();
        assert!(config.admin_token.is_none());
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("admin_token_env"), "{warnings:?}");

        let text = format!(
            "[service]\nadmin_token_env = \"T\"\nadmin_token_file = \"t\"\nadmin_hosts = [\"http://x/\"]\nmax_connections = 0\nrequest_timeout_ms = 0\n{MINIMAL}"
        );
        let found = problems(&text);
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "service.admin_token",
                "service.admin_hosts[0]",
                "service.max_connections",
                "service.request_timeout_ms"
            ],
            "{found:#?}"
        );
        let text = format!("[service]\nadmin_token_env = \"T\"\n{MINIMAL}");
        match load(&text, &[("T", "short")]) {
            Err(super::super::ConfigError::Invalid { problems, .. }) => {
                assert_eq!(problems[0].key, "service.admin_token_env");
                assert!(problems[0].message.contains("openssl rand"), "{problems:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
