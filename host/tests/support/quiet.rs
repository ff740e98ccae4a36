//! A quiet service for the listener tests: one user (kim), a calendar that is always
//! empty and never changes, a log target; the admin port on loopback, with the token
//! and limits a test asks for.

#![allow(dead_code)]

#[path = "one_site.rs"]
mod one_site;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use calvert::component::wit::CalendarItem;
use calvert::listener::Limits;
use calvert::service::shutdown::Shutdown;
use calvert::service::{CalendarSource, Change, ServiceHandle, SourceError};
use calvert::store::MemoryStore;
use tokio::sync::mpsc;

/// A calendar with nothing in it, ever.
struct Empty;

#[async_trait]
impl CalendarSource for Empty {
    async fn calendar(
        &self,
        _address: &str,
        _start: i64,
        _end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError> {
        Ok(Vec::new())
    }

    async fn watch(
        &self,
        _addresses: Vec<String>,
        _changes: mpsc::UnboundedSender<Change>,
        mut stop: Shutdown,
    ) {
        stop.recv().await;
    }

    fn subscriptions(&self) -> usize {
        0
    }
}

/// Start the quiet service; `token` becomes the admin token (none: no token
/// configured), `limits` the listeners' limits (none: the defaults).
pub async fn start(token: Option<&str>, limits: Option<Limits>) -> ServiceHandle {
    start_with(token, limits, "").await
}

/// [`start`] with `lines` added to `[service]`.
pub async fn start_with(token: Option<&str>, limits: Option<Limits>, lines: &str) -> ServiceHandle {
    let mut service = format!("admin_listen = \"127.0.0.1:0\"\n{lines}");
    let mut env = BTreeMap::new();
    if let Some(token) = token {
        service += "\nadmin_token_env = \"ADMIN_TOKEN\"";
        env.insert("ADMIN_TOKEN".to_string(), token.to_string());
    }
    let (mut config, core) =
        one_site::load(&one_site::config_text(&service, &["kim@flexi.se"]), &env);
    if let Some(limits) = limits {
        config.listener_limits = limits;
    }
    one_site::start(
        (config, core),
        Arc::new(MemoryStore::default()),
        Arc::new(Empty),
        None,
    )
    .await
}
