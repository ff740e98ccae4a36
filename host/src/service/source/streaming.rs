//! Streaming subscriptions (brief §3.3): a group of at most [`super::GROUP_SIZE`]
//! mailboxes on one GetStreamingEvents connection, anchored on one of them. A
//! subscription the server reports as failed, a dropped or stalled stream, or a
//! reconnect all end in a new subscription for the mailboxes concerned, so their
//! calendars are read again.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::service::shutdown::Shutdown;

use super::Change;
use super::ews::{EwsSource, mailbox};
use super::subscriptions::{Delivery, Subscriptions, calendar_change};
use crate::backoff::Backoff;
use crate::ews::client::{ClientError, EwsClient, Streamed};

/// Sleep `wait`, or less when `stop` changes.
async fn pause(wait: Duration, stop: &mut Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.recv() => {}
    }
}

impl EwsSource {
    /// One group's streaming loop: subscribe, stream, resubscribe what failed;
    /// waits after failures grow by [`Backoff::default`].
    pub(super) async fn watch_group(
        &self,
        group: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        mut stop: Shutdown,
    ) {
        let subscriptions = Subscriptions::new(&self.subscriptions);
        let backoff = Backoff::default();
        let mut failures = 0u32;
        while !stop.is_shutdown() {
            // (Re)subscribe every mailbox of the group that has no subscription.
            let missing: Vec<String> = group
                .iter()
                .filter(|a| !subscriptions.follows(a))
                .cloned()
                .collect();
            let subscribed = self
                .subscribe_each(missing, Delivery::Streaming, &subscriptions, &changes)
                .await;
            if subscribed.is_none() {
                return;
            }
            let Some(anchor) = subscriptions.anchor() else {
                // Nothing subscribed: wait and try again.
                pause(backoff.wait(failures), &mut stop).await;
                failures = failures.saturating_add(1);
                continue;
            };
            let client = match self.client(&anchor).await {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!(server = %self.name, mailbox = %anchor, %error, "no EWS client for the group's anchor");
                    pause(backoff.wait(failures), &mut stop).await;
                    failures = failures.saturating_add(1);
                    continue;
                }
            };
            let followed = tokio::select! {
                followed = self.follow(&client, &anchor, &subscriptions, &changes) => Some(followed),
                _ = stop.recv() => None,
            };
            let Some(followed) = followed else { break };
            let failed = match followed {
                Ok(failed) => {
                    failures = 0;
                    failed
                }
                Err(error) => {
                    tracing::warn!(server = %self.name, %error, "streaming connection failed");
                    pause(backoff.wait(failures), &mut stop).await;
                    failures = failures.saturating_add(1);
                    subscriptions.ids()
                }
            };
            for id in failed {
                subscriptions.remove(&id);
            }
        }
    }

    /// Hold one connection for the group's subscriptions and report their changes,
    /// until the connection ends or the server reports subscriptions as failed;
    /// the ids to subscribe again (all of them when the server names none).
    async fn follow(
        &self,
        client: &EwsClient,
        anchor: &str,
        subscriptions: &Subscriptions<'_>,
        changes: &mpsc::UnboundedSender<Change>,
    ) -> Result<Vec<String>, ClientError> {
        let ids = subscriptions.ids();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut stream = client
            .stream_events(
                &mailbox(anchor),
                &refs,
                self.stream_minutes,
                self.read_timeout,
            )
            .await?;
        loop {
            let reply = match stream.next().await? {
                Streamed::Reply(reply) => reply,
                Streamed::End(_) => return Ok(Vec::new()),
            };
            for notification in &reply.notifications {
                if let Some(address) = subscriptions.heard(&notification.subscription_id)
                    && let Some(change) = calendar_change(address, notification)
                {
                    let _ = changes.send(change);
                }
            }
            if reply.failed.is_empty() {
                continue;
            }
            let named_all = reply
                .failed
                .iter()
                .any(|(ids, _)| ids.is_empty() || ids.iter().any(String::is_empty));
            if named_all {
                return Ok(ids);
            }
            return Ok(reply.failed.into_iter().flat_map(|(ids, _)| ids).collect());
        }
    }
}
