//! A panic in a mailbox's task does not stop the mailbox silently: the user goes to
//! Error with the reason, `/health` says which task is restarting, the task comes
//! back, and an administrator's restart makes the user divert again.

#[path = "support/one_site.rs"]
mod one_site;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use calvert::component::wit::{CalendarItem, FreeBusy, StatusEvent};
use calvert::service::shutdown::Shutdown;
use calvert::service::{CalendarSource, Change, SourceError};
use calvert::store::{DiversionCall, MemoryStore, Status};
use one_site::Recorder;
use tokio::sync::mpsc;

/// A calendar with one busy hour around now; its first `panics` reads panic, with a
/// Swedish message long enough to be cut.
struct Panicking {
    panics: u32,
    reads: AtomicU32,
}

#[async_trait]
impl CalendarSource for Panicking {
    async fn calendar(
        &self,
        _address: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError> {
        let read = self.reads.fetch_add(1, Ordering::SeqCst);
        if read < self.panics {
            panic!("möte {}", "ö".repeat(500));
        }
        let now = start + 86_400;
        assert!(now < end);
        Ok(vec![CalendarItem {
            free_busy: FreeBusy::Busy,
            ..CalendarItem::appointment("a1", now - 600, now + 3000)
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

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health_of(admin: std::net::SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{admin}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_mailbox_task_puts_the_user_in_error_and_is_restarted() {
    let source = Arc::new(Panicking {
        panics: 1,
        reads: AtomicU32::new(0),
    });
    let recorder = Arc::new(Recorder::default());
    let service = one_site::start(
        one_site::load(
            &one_site::config_text(
                "admin_listen = \"127.0.0.1:0\"\ndebounce_ms = 20",
                &["kim@flexi.se"],
            ),
            &BTreeMap::new(),
        ),
        Arc::new(MemoryStore::default()),
        source.clone(),
        Some(recorder.clone()),
    )
    .await;
    let admin = service.admin_addr.unwrap();

    wait_until("the user is in error", || {
        matches!(service.status("kim@flexi.se"), Some(Status::Error(_)))
    })
    .await;
    let Some(Status::Error(reason)) = service.status("kim@flexi.se") else {
        unreachable!()
    };
    assert!(reason.contains("mailbox task"), "{reason}");
    assert!(reason.contains("möte ööö"), "{reason}");
    assert!(
        reason.len() < 1000,
        "the reason is cut: {} bytes",
        reason.len()
    );
    assert_eq!(source.reads.load(Ordering::SeqCst), 1);

    // /health names the task while it waits for its restart, and counts the panic.
    let health = health_of(admin).await;
    assert_eq!(health["tasks"]["panics"], 1, "{health}");
    let degraded = health["status"] == "degraded";
    let restarting = health["tasks"]["restarting"].as_array().unwrap().len();
    assert_eq!(degraded, restarting == 1, "{health}");

    // Restarted (after a back-off of at most 1 s), the task waits on the user in
    // Error; the administrator's restart makes it read again and divert.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = health_of(admin).await;
        if health["tasks"]["restarting"].as_array().unwrap().is_empty() {
            assert_eq!(health["status"], "ok", "{health}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the task was not restarted: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The restarted task finds the user in Error and reads nothing.
    assert_eq!(source.reads.load(Ordering::SeqCst), 1);
    wait_until("the user can be restarted", || {
        service
            .administer("kim@flexi.se", StatusEvent::Restart)
            .is_ok()
    })
    .await;
    wait_until("the diversion is set", || {
        !recorder.calls.lock().unwrap().is_empty()
    })
    .await;
    assert!(matches!(
        recorder.calls.lock().unwrap()[0].1,
        DiversionCall::Set { .. }
    ));
    assert_eq!(service.status("kim@flexi.se"), Some(Status::Active));
    assert_eq!(source.reads.load(Ordering::SeqCst), 2);
    service.shutdown(Duration::from_secs(2)).await;
}
