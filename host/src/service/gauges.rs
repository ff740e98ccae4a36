//! The gauges of `/metrics` that are read when asked for, not counted as they happen:
//! users by status, live subscriptions, outbox depth, the push listeners' refused
//! connections.

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
        for mailbox in self.mailboxes.all() {
            // A record that cannot be read counts as in error: its user cannot run.
            let status = match self.adapters.store.user(&mailbox.address) {
                Ok(record) => record.map(|r| r.status).unwrap_or_default().name(),
                Err(_) => "error",
            };
            *counts.entry(status).or_default() += 1;
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
            .all()
            .iter()
            .map(|s| s.subscriptions())
            .sum();
        self.metrics.subscriptions.set(subscriptions as i64);
        // The push listeners count on their own; the counter catches up here.
        let refused: u64 = self
            .adapters
            .sources
            .all()
            .iter()
            .map(|s| s.refused_connections())
            .sum();
        let push = self.metrics.refused_connections("push");
        if let Some(more) = refused.checked_sub(push.get()) {
            push.inc_by(more);
        }
        if let Ok(depth) = self.adapters.store.outbox_depth() {
            self.metrics.outbox_depth.set(depth as i64);
        }
    }
}
