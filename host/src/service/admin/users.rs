//! The users as the administration lists them: one row per configured mailbox, its
//! stored status and live connection, found by a search and a status filter.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::service::state::{Mailbox, Service};
use crate::store::{Status, UserRecord};

/// The statuses, in the order the filter shows them.
pub const STATUSES: [&str; 4] = ["active", "passive", "error", "not-in-use"];

/// One user's row.
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub address: String,
    pub name: Option<String>,
    pub company: Option<String>,
    pub integration_id: Option<String>,
    pub telephony_id: String,
    pub zone: String,
    /// Integration on in calvert.toml (`enabled`).
    pub enabled: bool,
    pub status: &'static str,
    /// Why the user is in Error.
    pub reason: Option<String>,
    pub last_sync: Option<String>,
    pub subscription: Option<String>,
    pub watermark: Option<String>,
    /// The connection the mailbox is watched on (a streaming connection of its
    /// server, or push), while it is watched.
    pub stream_group: Option<String>,
    /// When the newest change notification for the mailbox arrived (UTC).
    pub last_event: Option<String>,
    /// What the phone was last confirmed showing (reason and return time, UTC).
    pub diversion: Option<String>,
    pub pending_calls: usize,
    pub exchange: Option<String>,
    pub telephony: Option<String>,
}

/// Which users to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Part of the address, name, company, integration id or telephony id (any case).
    pub q: String,
    /// Statuses to show; empty: active only (the seeds' default view).
    pub statuses: BTreeSet<String>,
}

impl UserFilter {
    /// From a query string: `q=…&status=error&status=passive`.
    pub fn from_query(query: Option<&str>) -> Self {
        let mut filter = UserFilter::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "q" => filter.q = value.trim().to_string(),
                "status" if STATUSES.contains(&value.as_ref()) => {
                    filter.statuses.insert(value.into_owned());
                }
                _ => {}
            }
        }
        filter
    }

    /// The statuses shown (the default made explicit).
    pub fn shown(&self) -> BTreeSet<String> {
        if self.statuses.is_empty() {
            BTreeSet::from(["active".to_string()])
        } else {
            self.statuses.clone()
        }
    }

    fn admits(&self, row: &UserRow) -> bool {
        let needle = self.q.to_lowercase();
        let has = |text: Option<&str>| text.is_some_and(|t| t.to_lowercase().contains(&needle));
        let found = needle.is_empty()
            || has(Some(&row.address))
            || has(Some(&row.telephony_id))
            || has(row.name.as_deref())
            || has(row.company.as_deref())
            || has(row.integration_id.as_deref());
        found && self.shown().contains(row.status)
    }
}

/// The rows `filter` admits, by address.
pub fn rows(service: &Service, filter: &UserFilter) -> Vec<UserRow> {
    service
        .mailboxes
        .all()
        .iter()
        .map(|mailbox| row(service, mailbox))
        .filter(|row| filter.admits(row))
        .collect()
}

/// One mailbox's row. A record that cannot be read shows as Error with the store's
/// sentence.
pub fn row(service: &Service, mailbox: &Mailbox) -> UserRow {
    let user = mailbox.user();
    let record = match service.adapters.store.user(&user.address) {
        Ok(record) => record.unwrap_or_default(),
        Err(error) => UserRecord {
            status: Status::Error(error.to_string()),
            ..Default::default()
        },
    };
    UserRow {
        address: user.address.clone(),
        name: user.name.clone(),
        company: user.company.clone(),
        integration_id: user.integration_id.clone(),
        telephony_id: user.telephony_id.clone(),
        zone: user.zone.clone(),
        enabled: user.enabled,
        status: record.status.name(),
        reason: match &record.status {
            Status::Error(reason) => Some(reason.clone()),
            _ => None,
        },
        last_sync: record.last_sync.map(crate::diversion::utc),
        last_event: crate::lock::lock(&mailbox.last_event).map(crate::diversion::utc),
        stream_group: user
            .exchange
            .as_deref()
            .and_then(|server| service.adapters.sources.get(server))
            .and_then(|source| source.connection_group(&user.address)),
        subscription: record.subscription_id,
        watermark: record.watermark,
        diversion: record
            .last_applied
            .map(|a| format!("{} until {}", a.reason, crate::diversion::utc(a.until))),
        pending_calls: service
            .adapters
            .store
            .outbox(&user.address)
            .map(|o| o.len())
            .unwrap_or(0),
        exchange: user.exchange.clone(),
        telephony: user.telephony.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(address: &str, status: &'static str, integration_id: Option<&str>) -> UserRow {
        UserRow {
            address: address.into(),
            name: Some("Kim Berg".into()),
            company: Some("Flexi AB".into()),
            integration_id: integration_id.map(str::to_string),
            telephony_id: "+46 8 123".into(),
            zone: "Europe/Stockholm".into(),
            enabled: true,
            status,
            reason: None,
            last_sync: None,
            subscription: None,
            watermark: None,
            stream_group: None,
            last_event: None,
            diversion: None,
            pending_calls: 0,
            exchange: None,
            telephony: None,
        }
    }

    #[test]
    fn the_filter_searches_ids_and_shows_active_users_by_default() {
        let kim = row("Kim@flexi.se", "active", Some("VF-17"));
        let eva = row("eva@flexi.se", "error", None);
        let default = UserFilter::from_query(None);
        assert!(default.admits(&kim) && !default.admits(&eva));
        let errors = UserFilter::from_query(Some("status=error&status=bogus"));
        assert_eq!(errors.statuses, BTreeSet::from(["error".to_string()]));
        assert!(!errors.admits(&kim) && errors.admits(&eva));
        let both = UserFilter::from_query(Some("status=error&status=active&q=%20vf-1%20"));
        assert_eq!(both.q, "vf-1");
        assert!(both.admits(&kim) && !both.admits(&eva));
        let by_address = UserFilter::from_query(Some("q=KIM&status=active"));
        assert!(by_address.admits(&kim));
        let by_phone = UserFilter::from_query(Some("q=8%20123&status=error"));
        assert!(by_phone.admits(&eva));
        let by_name = UserFilter::from_query(Some("q=berg&status=active"));
        assert!(by_name.admits(&kim));
        let by_company = UserFilter::from_query(Some("q=FLEXI%20ab&status=active"));
        assert!(by_company.admits(&kim));
        let nobody = UserFilter::from_query(Some("q=Ericsson&status=active"));
        assert!(!nobody.admits(&kim));
    }
}
