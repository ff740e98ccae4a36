//! The checking pass: every section in turn, problems collected by key.
//!
//! [`Check`] carries what every section's check needs — the problems found so far,
//! the environment secrets come from, the directory relative paths start at. Each
//! section's checks are methods on it, in the file named after the section; this
//! file holds the order they run in, which is the order problems are reported in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::file::File;
use super::{ConfigProblem, Environment, ServiceConfig};
use crate::component::{CoreError, CoreInstance};

/// One pass over a parsed file.
pub(super) struct Check<'a> {
    pub(super) problems: Vec<ConfigProblem>,
    pub(super) env: &'a dyn Environment,
    /// The configuration file's directory.
    pub(super) base: &'a Path,
}

impl Check<'_> {
    /// Record a problem at `key` and go on checking.
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// `p`, relative to the configuration file's directory unless absolute.
    pub(super) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The sync's default event type: None when absent or blank; at most 64
    /// characters, no control characters.
    fn default_event_type(&mut self, text: Option<String>) -> Option<String> {
        let text = text
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())?;
        if text.chars().count() > 64 || text.chars().any(char::is_control) {
            self.problem(
                "sync.default_event_type",
                "an event type is at most 64 characters, without control characters",
            );
            return None;
        }
        Some(text)
    }

    /// Check every section; the configuration is only usable when no problem was
    /// recorded.
    pub(super) fn config(
        &mut self,
        file: File,
        core: &mut CoreInstance,
    ) -> Result<ServiceConfig, CoreError> {
        let service = self.service(core, file.service)?;

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

        let triggers = self.triggers(core, file.trigger)?;
        let policy = self.policy(core, file.policy)?;
        let default_event_type = self.default_event_type(file.sync.default_event_type);
        let users = self.users(
            core,
            file.user,
            &service.default_zone,
            &rules,
            &telephony_rules,
        )?;
        self.routing_is_configured(&servers, &rules, &targets, &telephony_rules);

        Ok(ServiceConfig {
            state_dir: service.state_dir,
            admin_listen: service.admin_listen,
            admin_token: service.admin_token,
            admin_hosts: service.admin_hosts,
            admin_tls: service.admin_tls,
            listener_limits: service.listener_limits,
            default_zone: service.default_zone,
            window: service.window,
            resync: service.resync,
            debounce: service.debounce,
            failures_before_error: service.failures_before_error,
            cache_bytes: service.cache_bytes,
            exchange,
            rules,
            telephony,
            telephony_rules,
            triggers,
            policy,
            users,
            default_event_type,
            source: super::ConfigSource::default(),
        })
    }
}
