//! What streaming and push share: the set of live subscriptions of one watch,
//! subscribing the mailboxes that have none, and the watermark rule that turns a
//! notification into a [`Change`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ews::{EwsSource, mailbox};
use super::{Change, SourceError, lock};
use crate::ews::notification::{EventKind, Notification};
use crate::ews::push::KeepSubscription;

/// How Exchange delivers a subscription's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery<'a> {
    /// Over a GetStreamingEvents connection Calvert holds.
    Streaming,
    /// POSTed to Calvert's push listener at `url`.
    Push { url: &'a str },
}

/// How often (minutes) Exchange confirms a silent push subscription with a
/// StatusEvent.
const STATUS_FREQUENCY_MINUTES: u32 = 1;

/// One live subscription.
#[derive(Debug)]
struct Live {
    address: String,
    /// When Exchange last sent anything for it.
    heard: Instant,
}

/// The live subscriptions of one watch (a streaming group, or a push listener's
/// mailboxes) by subscription id, counted in the source's gauge while they live.
pub(super) struct Subscriptions<'a> {
    live: Arc<Mutex<HashMap<String, Live>>>,
    count: &'a AtomicUsize,
}

impl<'a> Subscriptions<'a> {
    pub(super) fn new(count: &'a AtomicUsize) -> Self {
        Subscriptions {
            live: Arc::default(),
            count,
        }
    }

    fn insert(&self, id: String, address: String) {
        let heard = Instant::now();
        if lock(&self.live)
            .insert(id, Live { address, heard })
            .is_none()
        {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forget the subscription `id`; its mailbox, if it was live.
    pub(super) fn remove(&self, id: &str) -> Option<String> {
        let removed = lock(&self.live).remove(id)?;
        self.count.fetch_sub(1, Ordering::Relaxed);
        Some(removed.address)
    }

    /// Whether `address` has a live subscription.
    pub(super) fn follows(&self, address: &str) -> bool {
        lock(&self.live).values().any(|l| l.address == address)
    }

    pub(super) fn ids(&self) -> Vec<String> {
        lock(&self.live).keys().cloned().collect()
    }

    /// Some mailbox with a live subscription (a streaming group's anchor).
    pub(super) fn anchor(&self) -> Option<String> {
        lock(&self.live).values().next().map(|l| l.address.clone())
    }

    /// Exchange sent something for `id`: its mailbox, if the subscription is live.
    pub(super) fn heard(&self, id: &str) -> Option<String> {
        lock(&self.live).get_mut(id).map(|live| {
            live.heard = Instant::now();
            live.address.clone()
        })
    }

    /// The subscriptions (id, mailbox) silent for longer than `silence`.
    pub(super) fn silent(&self, silence: Duration) -> Vec<(String, String)> {
        lock(&self.live)
            .iter()
            .filter(|(_, live)| live.heard.elapsed() > silence)
            .map(|(id, live)| (id.clone(), live.address.clone()))
            .collect()
    }

    /// The push listener's answer to a notification: keep a live subscription.
    pub(super) fn keeper(&self) -> KeepSubscription {
        let live = self.live.clone();
        Arc::new(move |id: &str| lock(&live).contains_key(id))
    }
}

impl Drop for Subscriptions<'_> {
    fn drop(&mut self) {
        let left = lock(&self.live).len();
        self.count.fetch_sub(left, Ordering::Relaxed);
    }
}

/// The change a notification for `address` reports: none when it holds only
/// StatusEvents (Exchange saying the subscription lives), else the calendar changed
/// and the watermark is the newest event's that has one.
pub(super) fn calendar_change(address: String, notification: &Notification) -> Option<Change> {
    let real = notification
        .events
        .iter()
        .any(|e| e.kind != EventKind::Status);
    real.then(|| Change::Calendar {
        address,
        watermark: notification
            .events
            .iter()
            .rev()
            .find_map(|e| e.watermark.clone()),
    })
}

impl EwsSource {
    /// Subscribe each of `addresses`, reporting each on `changes`: a new subscription
    /// as [`Change::Subscribed`], a failed subscribe as [`Change::Unsubscribed`]
    /// (events may have been missed either way, so the mailbox is read again). The
    /// addresses that failed, or None when nobody receives changes any more.
    pub(super) async fn subscribe_each(
        &self,
        addresses: Vec<String>,
        delivery: Delivery<'_>,
        subscriptions: &Subscriptions<'_>,
        changes: &mpsc::UnboundedSender<Change>,
    ) -> Option<Vec<String>> {
        let mut failed = Vec::new();
        for address in addresses {
            let change = match self.subscribe(&address, delivery).await {
                Ok(subscription_id) => {
                    subscriptions.insert(subscription_id.clone(), address.clone());
                    Change::Subscribed {
                        address,
                        subscription_id,
                    }
                }
                Err(error) => {
                    let what = match delivery {
                        Delivery::Streaming => "subscribe failed",
                        Delivery::Push { .. } => "push subscribe failed",
                    };
                    tracing::warn!(server = %self.name, mailbox = %address, %error, "{what}");
                    failed.push(address.clone());
                    Change::Unsubscribed(address)
                }
            };
            changes.send(change).ok()?;
        }
        Some(failed)
    }

    /// A new subscription to `address`'s calendar; its id.
    async fn subscribe(
        &self,
        address: &str,
        delivery: Delivery<'_>,
    ) -> Result<String, SourceError> {
        let client = self.client(address).await?;
        let mailbox = mailbox(address);
        let subscribed = match delivery {
            Delivery::Streaming => client.subscribe_streaming(&mailbox).await,
            Delivery::Push { url } => {
                client
                    .subscribe_push(&mailbox, url, None, STATUS_FREQUENCY_MINUTES)
                    .await
            }
        };
        subscribed
            .map(|s| s.subscription_id)
            .map_err(|e| self.classify(address, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::notification::Event;

    fn event(kind: EventKind, watermark: Option<&str>) -> Event {
        Event {
            kind,
            watermark: watermark.map(str::to_string),
            at: None,
            item_id: None,
            old_item_id: None,
        }
    }

    fn notification(events: Vec<Event>) -> Notification {
        Notification {
            subscription_id: "sub-1".into(),
            previous_watermark: None,
            more_events: false,
            events,
        }
    }

    #[test]
    fn status_events_alone_change_nothing() {
        let status = notification(vec![event(EventKind::Status, Some("W1"))]);
        assert_eq!(calendar_change("kim@flexi.se".into(), &status), None);
    }

    #[test]
    fn a_change_carries_the_newest_watermark() {
        let events = notification(vec![
            event(EventKind::Created, Some("W1")),
            event(EventKind::Modified, Some("W2")),
            event(EventKind::Status, None),
        ]);
        assert_eq!(
            calendar_change("kim@flexi.se".into(), &events),
            Some(Change::Calendar {
                address: "kim@flexi.se".into(),
                watermark: Some("W2".into()),
            })
        );
        let unmarked = notification(vec![event(EventKind::Deleted, None)]);
        assert_eq!(
            calendar_change("kim@flexi.se".into(), &unmarked),
            Some(Change::Calendar {
                address: "kim@flexi.se".into(),
                watermark: None,
            })
        );
    }

    #[test]
    fn the_gauge_counts_live_subscriptions_until_the_set_is_dropped() {
        let count = AtomicUsize::new(5);
        {
            let subscriptions = Subscriptions::new(&count);
            subscriptions.insert("a".into(), "kim@flexi.se".into());
            subscriptions.insert("b".into(), "eva@flexi.se".into());
            subscriptions.insert("b".into(), "eva@flexi.se".into());
            assert_eq!(count.load(Ordering::Relaxed), 7, "b counted once");
            assert!(subscriptions.follows("eva@flexi.se"));
            assert_eq!(subscriptions.remove("b"), Some("eva@flexi.se".into()));
            assert_eq!(subscriptions.remove("b"), None);
            assert!(!subscriptions.follows("eva@flexi.se"));
            assert_eq!(subscriptions.heard("a"), Some("kim@flexi.se".into()));
            assert_eq!(subscriptions.heard("b"), None);
            let keep = subscriptions.keeper();
            assert!(keep("a") && !keep("b"));
            assert_eq!(count.load(Ordering::Relaxed), 6);
        }
        assert_eq!(
            count.load(Ordering::Relaxed),
            5,
            "what was left is uncounted"
        );
    }

    #[tokio::test]
    async fn subscriptions_not_heard_of_for_the_silence_are_silent() {
        let count = AtomicUsize::new(0);
        let subscriptions = Subscriptions::new(&count);
        subscriptions.insert("a".into(), "kim@flexi.se".into());
        subscriptions.insert("b".into(), "eva@flexi.se".into());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(subscriptions.heard("b"), Some("eva@flexi.se".into()));
        assert_eq!(
            subscriptions.silent(Duration::from_millis(150)),
            [("a".to_string(), "kim@flexi.se".to_string())]
        );
    }
}
