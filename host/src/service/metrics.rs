//! What `/metrics` shows (Prometheus text format, via `prometheus-client`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: &'static str,
}

/// Every metric of the service, registered once.
pub struct Metrics {
    pub registry: Registry,
    pub mailboxes: Family<StatusLabel, Gauge>,
    pub subscriptions: Gauge,
    pub notifications: Counter,
    pub calendar_reads: Family<Outcome, Counter>,
    pub decisions: Family<ActionLabel, Counter>,
    pub diversion_calls: Family<Outcome, Counter>,
    pub outbox_depth: Gauge,
    /// From a notification (or a due boundary) to the telephony system's confirmation.
    pub change_to_call_seconds: Histogram,
    /// One mailbox step: read the calendar, decide, reconcile, enqueue.
    pub step_seconds: Histogram,
    /// Connections a listener closed at once because it was at its limit.
    pub refused_connections: Family<ListenerLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let mut registry = Registry::with_prefix("calvert");
        let metrics = Metrics {
            mailboxes: Family::default(),
            subscriptions: Gauge::default(),
            notifications: Counter::default(),
            calendar_reads: Family::default(),
            decisions: Family::default(),
            diversion_calls: Family::default(),
            outbox_depth: Gauge::default(),
            change_to_call_seconds: Histogram::new(buckets),
            step_seconds: Histogram::new(buckets),
            refused_connections: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "mailboxes",
            "Mailboxes by user status",
            metrics.mailboxes.clone(),
        );
        registry.register(
            "subscriptions",
            "Live EWS subscriptions",
            metrics.subscriptions.clone(),
        );
        registry.register(
            "notifications",
            "Calendar change notifications received",
            metrics.notifications.clone(),
        );
        registry.register(
            "calendar_reads",
            "Calendar reads by outcome",
            metrics.calendar_reads.clone(),
        );
        registry.register(
            "decisions",
            "Core decisions by reconcile action",
            metrics.decisions.clone(),
        );
        registry.register(
            "diversion_calls",
            "Diversion calls by outcome",
            metrics.diversion_calls.clone(),
        );
        registry.register(
            "outbox_depth",
            "Diversion calls waiting for the telephony system",
            metrics.outbox_depth.clone(),
        );
        registry.register(
            "change_to_call_seconds",
            "From a calendar change to the confirmed diversion call",
            metrics.change_to_call_seconds.clone(),
        );
        registry.register(
            "step_seconds",
            "One mailbox step: read, decide, reconcile, enqueue",
            metrics.step_seconds.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections closed at once because the listener (admin, push) was at its limit",
            metrics.refused_connections.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// The counter of connections `listener` refused at its limit.
    pub fn refused_connections(&self, listener: &'static str) -> Counter {
        self.refused_connections
            .get_or_create(&ListenerLabel { listener })
            .clone()
    }

    /// The text `/metrics` serves.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
