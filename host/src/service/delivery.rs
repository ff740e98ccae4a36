//! The delivery task: one per user, sending the user's outbox to the telephony
//! target oldest first, one call at a time, retrying with back-off while the target
//! is unavailable, and recording each confirmed call ([`crate::store::Store::complete`]).

use std::sync::Arc;
use std::time::Duration;

use super::metrics::Outcome;
use super::shutdown::Shutdown;
use super::state::{Mailbox, Service};
use crate::diversion::TargetError;
use crate::lock::lock;
use crate::store::{DiversionCall, OutboxEntry, Status};

impl Service {
    pub(super) async fn run_delivery(self: Arc<Self>, mailbox: Arc<Mailbox>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut attempt = 0u32;
        while !shutdown.is_shutdown() {
            // Looked up for every call: a telephony rule changed live re-routes the
            // next one.
            let target = mailbox
                .user()
                .telephony
                .as_ref()
                .and_then(|t| self.adapters.targets.get(t));
            let (Some(target), Some(entry)) = (&target, self.next_call(&mailbox)) else {
                tokio::select! {
                    _ = mailbox.deliver.notified() => continue,
                    _ = shutdown.recv() => return,
                }
            };
            let result = Box::pin(target.apply(&mailbox.phone(), &entry)).await;
            match result {
                Ok(()) => {
                    attempt = 0;
                    self.confirmed(&mailbox, entry).await;
                }
                Err(TargetError::Unavailable { target, detail }) => {
                    self.count_call("unavailable");
                    let wait = self.delivery_backoff.wait(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(mailbox = %mailbox.address, %target, %detail, attempt, wait_ms = wait.as_millis() as u64, "telephony target unavailable; retrying");
                    if sleep_or_shutdown(wait, &mut shutdown).await {
                        return;
                    }
                }
                Err(refused @ TargetError::Rejected { .. }) => {
                    self.count_call("refused");
                    // The call stays queued; a restart of the user sends it again.
                    self.fail(&mailbox.address, refused.to_string());
                }
            }
        }
    }

    /// The oldest queued call, while the user is active.
    fn next_call(&self, mailbox: &Mailbox) -> Option<OutboxEntry> {
        let store = &self.adapters.store;
        let address = mailbox.address.as_str();
        let active = matches!(store.user(address), Ok(Some(ref r)) if r.status == Status::Active);
        if !active {
            return None;
        }
        store.outbox(address).ok()?.into_iter().next()
    }

    /// The target confirmed `entry`: remove it and record what the phone now shows,
    /// in one durable step. Should that fail, the call is sent again with its key.
    async fn confirmed(&self, mailbox: &Mailbox, entry: OutboxEntry) {
        let address = mailbox.address.as_str();
        let done = entry.clone();
        if let Err(error) = self.durably(move |store| store.complete(&done)).await {
            tracing::error!(mailbox = %address, %error, "cannot record a confirmed call; it will be sent again with the same key");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        self.metrics.outbox_depth.dec();
        self.count_call("ok");
        if let Some(started) = lock(&mailbox.call_started).remove(&entry.seq) {
            self.metrics
                .change_to_call_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        let call = match entry.call {
            DiversionCall::Set { .. } => "set",
            DiversionCall::Clear => "clear",
        };
        tracing::info!(mailbox = %address, key = %entry.idempotency_key(), call, "diversion call confirmed");
    }

    fn count_call(&self, outcome: &'static str) {
        self.metrics
            .diversion_calls
            .get_or_create(&Outcome { outcome })
            .inc();
    }
}

/// Sleep `wait`; true when the shutdown came first.
async fn sleep_or_shutdown(wait: Duration, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = shutdown.recv() => true,
    }
}
