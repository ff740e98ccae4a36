//! Push notifications: one listener for the server's mailboxes, a push
//! subscription each (StatusFrequency one minute). A subscription that falls
//! silent, or whose subscribe failed, is made again at the next check.

use tokio::sync::mpsc;

use crate::service::shutdown::Shutdown;

use super::Change;
use super::ews::EwsSource;
use super::subscriptions::{Delivery, Subscriptions, calendar_change};
use crate::config::PushSettings;

impl EwsSource {
    /// Listen on `settings.listen`, subscribe `addresses` to post to `settings.url`,
    /// and report their changes until `stop` turns true.
    pub(super) async fn watch_push(
        &self,
        settings: PushSettings,
        addresses: Vec<String>,
        changes: mpsc::UnboundedSender<Change>,
        mut stop: Shutdown,
    ) {
        let subscriptions = Subscriptions::new(&self.subscriptions);
        let mut listener = match crate::ews::push::listen_within(
            settings.listen,
            subscriptions.push_book(),
            self.listener_limits,
            self.refused_connections.clone(),
        )
        .await
        {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(server = %self.name, listen = %settings.listen, %error, "cannot listen for push notifications; check push_listen (is the port free?)");
                return;
            }
        };
        let delivery = Delivery::Push { url: &settings.url };
        let mut missing = addresses;
        let mut check = tokio::time::interval(self.push_silence / 3);
        // Subscribing (again) happens at the start and at each check, not per
        // notification: failing mailboxes are retried at the check's pace.
        let mut subscribe_now = true;
        loop {
            if std::mem::take(&mut subscribe_now) {
                let due = std::mem::take(&mut missing);
                let Some(failed) = self
                    .subscribe_each(due, delivery, &subscriptions, &changes)
                    .await
                else {
                    return;
                };
                missing.extend(failed);
            }
            tokio::select! {
                notification = listener.notifications.recv() => {
                    let Some(notification) = notification else { return };
                    if let Some(address) = subscriptions.heard(&notification.subscription_id)
                        && let Some(change) = calendar_change(address, &notification)
                    {
                        let _ = changes.send(change);
                    }
                }
                _ = check.tick() => {
                    subscribe_now = true;
                    for (id, address) in subscriptions.silent(self.push_silence) {
                        tracing::warn!(server = %self.name, mailbox = %address, "push subscription fell silent; subscribing again");
                        subscriptions.remove(&id);
                        missing.push(address);
                    }
                }
                _ = stop.recv() => break,
            }
        }
    }
}
