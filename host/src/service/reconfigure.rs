//! A live edit of the configuration: made on the stored TOML text, checked as the
//! file is, saved durably, then applied to the running service without a restart:
//! every mailbox gets its new settings and routes and re-decides at once (a new
//! trigger word changes decisions now); when a route changed, the watchers restart on
//! the new routes (a mailbox moved to another server is watched there).
//!
//! Users may be added (an import appends them; each gets its mailbox and tasks at
//! once). A changed Exchange server or telephony target gets a new adapter (a new
//! password: the watchers reconnect with it). What a live edit cannot change
//! (removing users, the `[service]` section) is refused with a sentence; the edits
//! the administration offers ([`ConfigEdit`]) never touch them.

use std::sync::Arc;

use super::state::Service;
use crate::config::edit::{self, ConfigEdit, EditError};
use crate::config::{ConfigError, ServiceConfig};
use crate::service::clock::wall_clock;
use crate::store::StoredConfig;

/// Why a live edit was not applied. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ReconfigureError {
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The edited configuration fails the file's checks; the problems name keys.
    #[error("{0}")]
    Invalid(ConfigError),
    #[error("{0} cannot change while Calvert runs: change calvert.toml and restart")]
    Fixed(&'static str),
    #[error("the new adapter could not be made: {0}")]
    Adapter(String),
    #[error("the configuration could not be saved: {0}")]
    Store(String),
    #[error("{0}")]
    Core(String),
}

impl ReconfigureError {
    /// The problems by key, for the form that made the edit.
    pub fn problems(&self) -> Vec<(String, String)> {
        match self {
            ReconfigureError::Invalid(ConfigError::Invalid { problems, .. }) => problems
                .iter()
                .map(|p| (p.key.clone(), p.message.clone()))
                .collect(),
            other => vec![(String::new(), other.to_string())],
        }
    }
}

impl Service {
    /// Make `edit` for `who`; returns the configuration now in force.
    pub async fn reconfigure(
        self: &Arc<Self>,
        edit: &ConfigEdit,
        who: &str,
    ) -> Result<Arc<ServiceConfig>, ReconfigureError> {
        let _one_at_a_time = self.reconfiguring.lock().await;
        let old = self.config();
        let (text, new) = self.prepare_config(&old, edit)?;
        self.commit_config(text, new, edit, who).await
    }

    /// `edit` made on the configuration `old` and checked: the text and what it
    /// configures. Nothing changes. The caller holds [`Service::reconfiguring`].
    pub(super) fn prepare_config(
        &self,
        old: &ServiceConfig,
        edit: &ConfigEdit,
    ) -> Result<(String, ServiceConfig), ReconfigureError> {
        let text = edit::apply(&old.source.text, edit)?;
        let new = self
            .with_core(|core| Ok(old.source.check(&text, core)))
            .map_err(|e| ReconfigureError::Core(e.to_string()))?
            .map_err(ReconfigureError::Invalid)?;
        unchanged_parts(old, &new)?;
        Ok((text, new))
    }

    /// Save `text` (checked as `new`) with its audit line, then put it in force. The
    /// caller holds [`Service::reconfiguring`].
    pub(super) async fn commit_config(
        self: &Arc<Self>,
        text: String,
        new: ServiceConfig,
        edit: &ConfigEdit,
        who: &str,
    ) -> Result<Arc<ServiceConfig>, ReconfigureError> {
        // Made before anything is saved: an adapter that cannot be made refuses the edit.
        let changes = AdapterChanges::between(&self.config(), &new)?;
        let what = edit.describe();
        let who = who.to_string();
        self.durably(move |store| {
            let file_text = match store.stored_config()? {
                Some(stored) => stored.file_text,
                None => String::new(),
            };
            store.put_config(&StoredConfig { text, file_text })?;
            store.audit(wall_clock(), &who, &what).map(|_| ())
        })
        .await
        .map_err(|e| ReconfigureError::Store(e.to_string()))?;
        let new = Arc::new(new);
        let reconnect = self.swap_adapters(changes);
        *crate::lock::write(&self.live_config) = new.clone();
        let rerouted = self.hand_out(&new) || reconnect;
        tracing::info!(edit = %edit.describe(), rerouted, "the configuration changed live");
        if rerouted {
            self.restart_watchers().await;
        }
        Ok(new)
    }

    /// Put the adapters `changes` made in service; whether a server changed (its
    /// watchers must reconnect).
    fn swap_adapters(&self, changes: AdapterChanges) -> bool {
        let reconnect = !changes.sources.is_empty() || !changes.gone_sources.is_empty();
        for (name, source) in changes.sources {
            self.adapters.sources.insert(name, source);
        }
        for name in changes.gone_sources {
            self.adapters.sources.remove(&name);
        }
        for (name, target) in changes.targets {
            self.adapters.targets.insert(name, target);
        }
        for name in changes.gone_targets {
            self.adapters.targets.remove(&name);
        }
        reconnect
    }

    /// Give every mailbox its new settings and wake it, and start a mailbox for each
    /// user added; whether any route or enabled flag changed or a user was added.
    fn hand_out(self: &Arc<Self>, config: &ServiceConfig) -> bool {
        let mut rerouted = false;
        for user in &config.users {
            if let Some(mailbox) = self.mailboxes.add(user) {
                self.start_mailbox(&mailbox);
                rerouted = true;
            }
        }
        for mailbox in self.mailboxes.all() {
            let Some(user) = config.user(&mailbox.address) else {
                continue;
            };
            let before = mailbox.user();
            rerouted |= before.exchange != user.exchange || before.enabled != user.enabled;
            mailbox.set_user(user);
            mailbox.wake.notify_one();
            mailbox.deliver.notify_one();
        }
        rerouted
    }
}

/// The adapters a new configuration needs: new ones for the servers and targets it
/// adds or changes, and the names of those it removes.
#[derive(Default)]
struct AdapterChanges {
    sources: Vec<(String, Arc<dyn super::CalendarSource>)>,
    gone_sources: Vec<String>,
    targets: Vec<(String, Arc<dyn crate::diversion::DiversionTarget>)>,
    gone_targets: Vec<String>,
}

impl AdapterChanges {
    fn between(old: &ServiceConfig, new: &ServiceConfig) -> Result<Self, ReconfigureError> {
        let failed = |e: super::ServiceError| ReconfigureError::Adapter(e.to_string());
        let mut changes = AdapterChanges::default();
        for server in new.exchange.iter().filter(|s| !old.exchange.contains(s)) {
            let source = super::adapters::ews_source(new, server).map_err(failed)?;
            changes.sources.push((server.name.clone(), source));
        }
        for target in new.telephony.iter().filter(|t| !old.telephony.contains(t)) {
            let adapter = super::adapters::telephony_target(target).map_err(failed)?;
            changes.targets.push((target.name.clone(), adapter));
        }
        let named = |name: &str, servers: &[crate::config::ExchangeServer]| {
            servers.iter().any(|s| s.name == name)
        };
        changes.gone_sources = old
            .exchange
            .iter()
            .filter(|s| !named(&s.name, &new.exchange))
            .map(|s| s.name.clone())
            .collect();
        changes.gone_targets = old
            .telephony
            .iter()
            .filter(|t| !new.telephony.iter().any(|n| n.name == t.name))
            .map(|t| t.name.clone())
            .collect();
        Ok(changes)
    }
}

/// What only a restart changes must be the same.
fn unchanged_parts(old: &ServiceConfig, new: &ServiceConfig) -> Result<(), ReconfigureError> {
    let addresses = |c: &ServiceConfig| {
        c.users
            .iter()
            .map(|u| u.address.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    // Users are only added (by an import, at the end); removing one needs a restart.
    if !addresses(new).starts_with(&addresses(old)) {
        return Err(ReconfigureError::Fixed("removing users"));
    }
    if (old.admin_listen, &old.state_dir, old.cache_bytes)
        != (new.admin_listen, &new.state_dir, new.cache_bytes)
    {
        return Err(ReconfigureError::Fixed("the [service] section"));
    }
    Ok(())
}
