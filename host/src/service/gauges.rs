//! The gauges of `/metrics` that are read when asked for, not counted as they happen:
//! users by status, live subscriptions, outbox depth.

use std::collections::BTreeMap;

use super::metrics::StatusLabel;
use super::state::Service;

impl Service {
    /// Configured users by status name, every status counted (zero included).
    pub(super) fn users_by_status(&self) -> BTreeMap<&'static str, i64> {
        let mut counts: BTreeMap<&'static str, i64> = [
            ("active", 0),
            ("passive", 0),
            ("error", 0),
            ("not-in-use", 0),
        ]
        .into_iter()
        .collect();
        for address in self.mailboxes.keys() {
            let status = self
                .adapters
                .store
                .user(address)
                .ok()
                .flatten()
                .map(|r| r.status)
                .unwrap_or_default();
            *counts.entry(status.name()).or_default() += 1;
        }
        counts
    }

    pub(super) fn refresh_gauges(&self) {
        let counts = self.users_by_status();
        for (status, count) in counts {
            self.metrics
                .mailboxes
                .get_or_create(&StatusLabel { status })
                .set(count);
        }
        let subscriptions: usize = self
            .adapters
            .sources
            .values()
            .map(|s| s.subscriptions())
            .sum();
        self.metrics.subscriptions.set(subscriptions as i64);
        if let Ok(depth) = self.adapters.store.outbox_depth() {
            self.metrics.outbox_depth.set(depth as i64);
        }
    }
}
