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
use crate::ews::push::{PushSubscribers, Verdict, new_token};

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
    /// The secrets in push URLs (none for streaming).
    tokens: Arc<Mutex<PushTokens>>,
    count: &'a AtomicUsize,
}

/// One secret per mailbox for the life of a push listener.
#[derive(Default)]
struct PushTokens {
    by_token: HashMap<String, String>,
    by_address: HashMap<String, String>,
}

/// The push listener's view of one watch's subscriptions.
struct PushBook {
    live: Arc<Mutex<HashMap<String, Live>>>,
    tokens: Arc<Mutex<PushTokens>>,
}

impl PushSubscribers for PushBook {
    fn knows(&self, token: &str) -> bool {
        lock(&self.tokens).by_token.contains_key(token)
    }

    fn verdict(&self, token: &str, subscription_id: &str) -> Verdict {
        let owner = lock(&self.tokens).by_token.get(token).cloned();
        let Some(owner) = owner else {
            return Verdict::Forged;
        };
        match lock(&self.live).get(subscription_id) {
            Some(live) if live.address == owner => Verdict::Forward,
            Some(_) => Verdict::Forged,
            None => Verdict::Unsubscribe,
        }
    }
}

impl<'a> Subscriptions<'a> {
    pub(super) fn new(count: &'a AtomicUsize) -> Self {
        Subscriptions {
            live: Arc::default(),
            tokens: Arc::default(),
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

    /// What the push listener checks each POST against.
    pub(super) fn push_book(&self) -> Arc<dyn PushSubscribers> {
        Arc::new(PushBook {
            live: self.live.clone(),
            tokens: self.tokens.clone(),
        })
    }

    /// The secret for `address`'s push URL (made at its first subscribe).
    fn token_for(&self, address: &str) -> std::io::Result<String> {
        let mut tokens = lock(&self.tokens);
        if let Some(token) = tokens.by_address.get(address) {
            return Ok(token.clone());
        }
        let token = new_token()?;
        tokens.by_token.insert(token.clone(), address.to_string());
        tokens.by_address.insert(address.to_string(), token.clone());
        Ok(token)
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
            let url;
            let delivery = match delivery {
                Delivery::Streaming => Delivery::Streaming,
                Delivery::Push { url: base } => match subscriptions.token_for(&address) {
                    Ok(token) => {
                        url = format!("{base}/{token}");
                        Delivery::Push { url: &url }
                    }
                    Err(error) => {
                        tracing::error!(server = %self.name, mailbox = %address, %error, "cannot make a secret for the push URL; the system's random source failed");
                        failed.push(address.clone());
                        changes.send(Change::Unsubscribed(address)).ok()?;
                        continue;
                    }
                },
            };
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
            let book = subscriptions.push_book();
            let kim = subscriptions.token_for("kim@flexi.se").unwrap();
            let eva = subscriptions.token_for("eva@flexi.se").unwrap();
            assert_eq!(subscriptions.token_for("kim@flexi.se").unwrap(), kim);
            assert_ne!(kim, eva);
            assert_eq!(kim.len(), 32);
            assert!(book.knows(&kim) && !book.knows("guess"));
            assert_eq!(book.verdict(&kim, "a"), Verdict::Forward);
            assert_eq!(
                book.verdict(&eva, "a"),
                Verdict::Forged,
                "kim's subscription"
            );
            assert_eq!(book.verdict("guess", "a"), Verdict::Forged);
            assert_eq!(book.verdict(&eva, "b"), Verdict::Unsubscribe, "b is gone");
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
