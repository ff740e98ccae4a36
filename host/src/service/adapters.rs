//! The adapters the service runs with, and how `calvert.toml` makes them. A vendor
//! swaps any of them (calendar source, diversion target, store, clock) without
//! touching the core or the loop.

use std::collections::HashMap;
use std::sync::Arc;

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
    pub sources: HashMap<String, Arc<dyn CalendarSource>>,
    /// Diversion targets by telephony target name.
    pub targets: HashMap<String, Arc<dyn DiversionTarget>>,
    pub clock: Arc<dyn Clock>,
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

fn sources(
    config: &ServiceConfig,
) -> Result<HashMap<String, Arc<dyn CalendarSource>>, ServiceError> {
    let mut sources: HashMap<String, Arc<dyn CalendarSource>> = HashMap::new();
    for server in &config.exchange {
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
        sources.insert(server.name.clone(), Arc::new(source));
    }
    Ok(sources)
}

fn targets(
    config: &ServiceConfig,
) -> Result<HashMap<String, Arc<dyn DiversionTarget>>, ServiceError> {
    let mut targets: HashMap<String, Arc<dyn DiversionTarget>> = HashMap::new();
    for target in &config.telephony {
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
        targets.insert(target.name.clone(), adapter);
    }
    Ok(targets)
}
