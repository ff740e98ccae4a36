//! Calvert never takes its own diversion for a manual one (issue 16): after a
//! restart, a pending call re-sent and confirmed while the mailbox step reads the
//! calendar must not make the step hold the phone as manual. The ordering is made
//! with stand-ins, not sleeps: the telephony target confirms the call only once the
//! calendar read has begun, and the calendar answers only once the call is confirmed.

#[path = "support/one_site.rs"]
mod one_site;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use calvert::component::wit::{CalendarItem, FreeBusy};
use calvert::diversion::{DiversionTarget, Phone, TargetError};
use calvert::service::shutdown::Shutdown;
use calvert::service::{CalendarSource, Change, SourceError};
use calvert::store::{Applied, DiversionCall, MemoryStore, OutboxEntry, Status, Store};
use tokio::sync::mpsc;
use wait::LIMIT;

const KIM: &str = "kim@flexi.se";

/// A calendar with lunch around now. Its first read begins (`reading`), then waits
/// until the store's outbox is empty: the re-sent call was confirmed mid-step.
struct Calendar {
    store: Arc<MemoryStore>,
    reading: Arc<AtomicBool>,
    reads: AtomicU32,
}

#[async_trait]
impl CalendarSource for Calendar {
    async fn calendar(
        &self,
        address: &str,
        start: i64,
        _end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError> {
        let now = start + 86_400;
        if self.reads.fetch_add(1, Ordering::SeqCst) == 0 {
            self.reading.store(true, Ordering::SeqCst);
            wait::until(LIMIT, || match self.store.outbox(address) {
                Ok(pending) if pending.is_empty() => Ok(()),
                other => Err(format!("the re-sent call is still queued: {other:?}")),
            })
            .await;
        }
        Ok(vec![CalendarItem {
            free_busy: FreeBusy::Busy,
            subject: "Lunch".into(),
            ..CalendarItem::appointment("lunch", now - 600, lunch_end(now))
        }])
    }

    async fn watch(
        &self,
        _addresses: Vec<String>,
        _changes: mpsc::UnboundedSender<Change>,
        mut stop: Shutdown,
    ) {
        stop.recv().await;
    }

    fn subscriptions(&self) -> usize {
        0
    }
}

/// Lunch ends at the next full hour at least 30 minutes away.
fn lunch_end(now: i64) -> i64 {
    (now / 3600 + 1) * 3600 + if now % 3600 > 1800 { 3600 } else { 0 }
}

/// A phone that shows what was last applied, and confirms a call only once the
/// mailbox step's calendar read has begun.
struct Switchboard {
    reading: Arc<AtomicBool>,
    shown: Mutex<Option<Applied>>,
    calls: Mutex<Vec<(String, DiversionCall)>>,
}

#[async_trait]
impl DiversionTarget for Switchboard {
    fn name(&self) -> &str {
        "switchboard"
    }

    async fn apply(&self, _phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError> {
        wait::until(LIMIT, || {
            if self.reading.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("the calendar read has not begun".to_string())
            }
        })
        .await;
        *self.shown.lock().unwrap() = entry.call.applied();
        self.calls
            .lock()
            .unwrap()
            .push((entry.idempotency_key(), entry.call.clone()));
        Ok(())
    }

    async fn observe(&self, _phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        Ok(Some(self.shown.lock().unwrap().clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_confirmed_during_the_step_is_not_taken_for_a_manual_diversion() {
    let loaded = one_site::load(
        &one_site::config_text("debounce_ms = 20", &[KIM]),
        &BTreeMap::new(),
    );
    // The state a restart finds: an old diversion applied, a newer call queued and
    // not yet confirmed (the process was killed before it was sent).
    let store = Arc::new(MemoryStore::default());
    let old = Applied {
        reason: "AWAY".into(),
        until: 1_000_000,
    };
    store
        .update_user(KIM, &mut |r| {
            r.status = Status::Active;
            r.last_applied = Some(old.clone());
        })
        .unwrap();
    let pending = DiversionCall::Set {
        reason: "AWAY".into(),
        until: 2_000_000,
        until_local: String::new(),
    };
    store.enqueue(KIM, pending.clone(), 0).unwrap();

    let reading = Arc::new(AtomicBool::new(false));
    let switchboard = Arc::new(Switchboard {
        reading: reading.clone(),
        shown: Mutex::new(Some(old)),
        calls: Mutex::new(Vec::new()),
    });
    let calendar = Arc::new(Calendar {
        store: store.clone(),
        reading,
        reads: AtomicU32::new(0),
    });
    let service = one_site::start(loaded, store.clone(), calendar, Some(switchboard.clone())).await;

    // The calendar wants lunch, which needs a new call: it goes out in the same step,
    // not at the next calendar change or resync (15 minutes away).
    let calls = wait::until(LIMIT, || {
        let calls = switchboard.calls.lock().unwrap().clone();
        if calls.len() >= 2 {
            Ok(calls)
        } else {
            Err(format!(
                "the lunch diversion was not sent: calls {calls:?}\n{}",
                service.metrics()
            ))
        }
    })
    .await;
    assert_eq!(calls[0], (format!("{KIM}#0"), pending));
    assert_eq!(calls[1].0, format!("{KIM}#1"));
    assert!(
        matches!(&calls[1].1, DiversionCall::Set { reason, .. } if reason == "LUNCH"),
        "{calls:?}"
    );
    let held = prometheus::value(
        &service.metrics(),
        "calvert_decisions_total{action=\"hold-manual\"}",
    );
    assert_eq!(held, 0.0, "Calvert's own diversion was held as manual");
    service.shutdown(Duration::from_secs(2)).await;
}
