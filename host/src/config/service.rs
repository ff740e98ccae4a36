//! `[service]`: the state directory, the admin address, the default zone and the
//! timings; and the time-zone check users share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::check::Check;
use super::file::ServiceSection;
use crate::component::{CoreError, CoreInstance};

/// `[service]` once checked: the service-wide part of a [`super::ServiceConfig`].
pub(super) struct ServiceSettings {
    pub(super) state_dir: PathBuf,
    pub(super) admin_listen: Option<SocketAddr>,
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
            default_zone,
            window: Duration::from_secs(u64::from(service.window_days) * 86_400),
            resync: Duration::from_secs(u64::from(service.resync_minutes) * 60),
            debounce: Duration::from_millis(service.debounce_ms),
            failures_before_error: service.failures_before_error,
            cache_bytes: service.cache_mb.max(1) << 20,
        })
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
}
