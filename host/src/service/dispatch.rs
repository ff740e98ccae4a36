//! The dispatcher: routes each change a calendar source reports to its mailbox,
//! and records the live connection's state (subscription, watermark) for the
//! administrator's view. Those are bookkeeping writes, not flushed on their own.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::source::Change;
use super::state::Service;
use crate::lock::lock;
use crate::store::StoreError;

impl Service {
    /// Until the service shuts down.
    pub(super) async fn dispatch(self: Arc<Self>, mut changes: mpsc::UnboundedReceiver<Change>) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                _ = shutdown.recv() => None,
            };
            let Some(change) = change else { return };
            if matches!(change, Change::Calendar { .. }) {
                self.metrics.notifications.inc();
            }
            if let Err(error) = self.note_connection(&change) {
                tracing::warn!(mailbox = %change.address(), %error, "cannot record the subscription state");
            }
            if let Some(mailbox) = self.mailboxes.get(change.address()) {
                if matches!(change, Change::Calendar { .. }) {
                    *lock(&mailbox.last_event) = Some(self.adapters.clock.now());
                }
                lock(&mailbox.changed_at).get_or_insert_with(Instant::now);
                mailbox.wake.notify_one();
            }
        }
    }

    /// The subscription id and the newest watermark, per user.
    fn note_connection(&self, change: &Change) -> Result<(), StoreError> {
        let store = &self.adapters.store;
        let address = change.address();
        match change {
            Change::Calendar {
                watermark: Some(w), ..
            } => store.note_user(address, &mut |r| r.watermark = Some(w.clone())),
            Change::Calendar {
                watermark: None, ..
            } => Ok(()),
            Change::Subscribed {
                subscription_id, ..
            } => store.note_user(address, &mut |r| {
                r.subscription_id = Some(subscription_id.clone());
                // A streaming subscription starts without a watermark.
                r.watermark = None;
            }),
            Change::Unsubscribed(_) => store.note_user(address, &mut |r| {
                r.subscription_id = None;
                r.watermark = None;
            }),
        }
    }
}
