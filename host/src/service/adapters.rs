//! The adapters the service runs with, and how `calvert.toml` makes them. A vendor
//! swaps any of them (calendar source, diversion target, store, clock) without
//! touching the core or the loop.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::ServiceError;
use super::clock::{Clock, SystemClock};
use super::source::{CalendarSource, EwsSource};
use crate::config::{ServiceConfig, TelephonyKind};
use crate::diversion::{DiversionTarget, HttpTarget, LogTarget};
use crate::store::Store;

/// The adapters the service runs with: vendors swap any of them.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    /// Calendar sources by Exchange server name.
    pub sources: ByName<dyn CalendarSource>,
    /// Diversion targets by telephony target name.
    pub targets: ByName<dyn DiversionTarget>,
    pub clock: Arc<dyn Clock>,
}

/// Adapters by the name the configuration gives them. A live edit of a server or a
/// target replaces its adapter here; a task looks its adapter up for every step or
/// call, so the next one uses the new settings.
pub struct ByName<T: ?Sized> {
    by_name: RwLock<BTreeMap<String, Arc<T>>>,
}

impl<T: ?Sized> Default for ByName<T> {
    fn default() -> Self {
        ByName {
            by_name: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<T: ?Sized> ByName<T> {
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        crate::lock::read(&self.by_name).get(name).cloned()
    }

    /// Put `adapter` under `name`, replacing the one there.
    pub fn insert(&self, name: String, adapter: Arc<T>) {
        crate::lock::write(&self.by_name).insert(name, adapter);
    }

    pub fn remove(&self, name: &str) {
        crate::lock::write(&self.by_name).remove(name);
    }

    /// Every adapter (a copy: no lock is held while callers use them).
    pub fn all(&self) -> Vec<Arc<T>> {
        crate::lock::read(&self.by_name).values().cloned().collect()
    }
}

impl Adapters {
    /// The adapters `calvert.toml` names: EWS sources, http or log targets, `store`.
    pub fn from_config(
        config: &ServiceConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServiceError> {
        Ok(Adapters {
            store,
            sources: sources(config)?,
            targets: targets(config)?,
            clock: Arc::new(SystemClock),
        })
    }
}

fn sources(config: &ServiceConfig) -> Result<ByName<dyn CalendarSource>, ServiceError> {
    let sources = ByName::default();
    for server in &config.exchange {
        sources.insert(server.name.clone(), ews_source(config, server)?);
    }
    Ok(sources)
}

/// The EWS source of `server`, as `config` sets it up.
pub(super) fn ews_source(
    config: &ServiceConfig,
    server: &crate::config::ExchangeServer,
) -> Result<Arc<dyn CalendarSource>, ServiceError> {
    let mut source = EwsSource::new(
        &server.name,
        server.url.clone(),
        server.credentials.clone(),
        server.ca_bundle.clone(),
        server.timeout,
    )
    .map_err(|e| ServiceError::Source {
        server: server.name.clone(),
        message: e.to_string(),
    })?
    .with_autodiscover_hosts(&server.autodiscover_hosts, &server.plain_http_hosts)
    .with_push(server.push.clone());
    source.listener_limits = config.listener_limits;
    Ok(Arc::new(source))
}

fn targets(config: &ServiceConfig) -> Result<ByName<dyn DiversionTarget>, ServiceError> {
    let targets = ByName::default();
    for target in &config.telephony {
        targets.insert(target.name.clone(), telephony_target(target)?);
    }
    Ok(targets)
}

/// The diversion target `target` configures.
pub(super) fn telephony_target(
    target: &crate::config::TelephonyTarget,
) -> Result<Arc<dyn DiversionTarget>, ServiceError> {
    let adapter: Arc<dyn DiversionTarget> = match &target.kind {
        TelephonyKind::Log => Arc::new(LogTarget::stdout(&target.name)),
        TelephonyKind::Http {
            url,
            headers,
            reads_back,
        } => Arc::new(HttpTarget::new(
            &target.name,
            url,
            headers,
            *reads_back,
            target.timeout,
        )?),
    };
    Ok(adapter)
}
