//! Corrupt state files: a flipped byte in sled's newest record never makes Calvert
//! hand out an idempotency key again (a repaired counter, or a sentence saying the
//! database is damaged and what to do), and a user record that cannot be read puts
//! that user in Error while the other users go on diverting.

#[path = "support/one_site.rs"]
mod one_site;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use calvert::component::wit::{CalendarItem, FreeBusy};
use calvert::service::shutdown::Shutdown;
use calvert::service::{CalendarSource, Change, SourceError};
use calvert::store::{DiversionCall, SledStore, Status, Store, StoreError};
use one_site::Recorder;
use tokio::sync::mpsc;
use wait::LIMIT;

/// A fresh state directory, removed when the test ends.
struct StateDir(PathBuf);

impl StateDir {
    fn new(name: &str) -> StateDir {
        let dir =
            std::env::temp_dir().join(format!("calvert-hostile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        StateDir(dir)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Open `dir` once sled has let go of the lock of the store dropped before.
fn open(dir: &Path) -> Result<SledStore, StoreError> {
    let deadline = Instant::now() + LIMIT;
    loop {
        match SledStore::open(dir, 1 << 20) {
            Err(StoreError::Open { source, .. })
                if source.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn lunch(until: i64) -> DiversionCall {
    DiversionCall::Set {
        reason: "LUNCH".into(),
        until,
        until_local: String::new(),
    }
}

/// Where `needle` last occurs in `haystack`.
fn last_at(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[test]
fn a_flipped_byte_in_the_newest_record_never_reuses_a_key() {
    let dir = StateDir::new("flip");
    // kim's calls #0..#4, each sent and confirmed but the last, which is queued:
    // the newest record in the log is kim's, counting 5.
    let mut handed_out = Vec::new();
    {
        let store = open(&dir.0).unwrap();
        for at in 0..5 {
            let entry = store.enqueue("kim@flexi.se", lunch(1000 + at), at).unwrap();
            handed_out.push(entry.seq);
            if at < 4 {
                store.complete(&entry).unwrap();
            }
        }
    }
    let file = dir.0.join("db");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = last_at(&bytes, b"\"next_seq\":5").expect("kim's newest record is in the log");
    let digit = at + b"\"next_seq\":".len();
    bytes[digit] = b'3';
    std::fs::write(&file, &bytes).unwrap();

    match open(&dir.0) {
        Ok(store) => {
            let next = store
                .enqueue("kim@flexi.se", DiversionCall::Clear, 9)
                .unwrap();
            let newest = handed_out.iter().max().copied().unwrap_or_default();
            assert!(
                next.seq > newest,
                "key {} handed out again (keys before: {handed_out:?}; repairs {:?})",
                next.idempotency_key(),
                store.repairs()
            );
        }
        Err(error) => {
            let sentence = error.to_string();
            assert!(
                sentence.contains("damaged") && sentence.contains("backup"),
                "{sentence}"
            );
            assert!(!sentence.contains("writable"), "{sentence}");
        }
    }
}

/// A busy hour around now, for every mailbox.
struct BusyHour;

#[async_trait]
impl CalendarSource for BusyHour {
    async fn calendar(
        &self,
        _address: &str,
        start: i64,
        _end: i64,
    ) -> Result<Vec<CalendarItem>, SourceError> {
        let now = start + 86_400;
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

/// The calls made, by phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_user_record_puts_that_user_in_error_and_the_others_divert() {
    let dir = StateDir::new("record");
    {
        let store = open(&dir.0).unwrap();
        for address in ["kim@flexi.se", "eva@flexi.se"] {
            store
                .update_user(address, &mut |r| r.status = Status::Active)
                .unwrap();
        }
    }
    {
        // Bytes sled's checksums accept but that are no record.
        let deadline = Instant::now() + LIMIT;
        let db = loop {
            match sled::open(&dir.0) {
                Ok(db) => break db,
                Err(e) if Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let users = db.open_tree("users").unwrap();
        users
            .insert("kim@flexi.se", &b"{\"status\":{\"sta"[..])
            .unwrap();
        db.flush().unwrap();
    }

    let store = Arc::new(open(&dir.0).unwrap());
    let recorder = Arc::new(Recorder::default());
    let service = one_site::start(
        one_site::load(
            &one_site::config_text(
                "admin_listen = \"127.0.0.1:0\"\ndebounce_ms = 20",
                &["kim@flexi.se", "eva@flexi.se"],
            ),
            &BTreeMap::new(),
        ),
        store,
        Arc::new(BusyHour),
        Some(recorder.clone()),
    )
    .await;

    wait::until(LIMIT, || {
        let calls = recorder.calls.lock().unwrap().clone();
        if calls.iter().any(|(phone, _)| phone == "eva@flexi.se") {
            Ok(())
        } else {
            Err(format!("eva was not diverted: {calls:?}"))
        }
    })
    .await;
    let Some(Status::Error(reason)) = service.status("kim@flexi.se") else {
        panic!("kim is {:?}", service.status("kim@flexi.se"));
    };
    assert!(reason.contains("could not be read"), "{reason}");
    assert!(
        recorder
            .calls
            .lock()
            .unwrap()
            .iter()
            .all(|(phone, _)| phone != "kim@flexi.se")
    );
    let admin = service.admin_addr.unwrap();
    let health: serde_json::Value = reqwest::get(format!("http://{admin}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["mailboxes"]["error"], 1, "{health}");
    assert_eq!(health["mailboxes"]["active"], 1, "{health}");
    service.shutdown(Duration::from_secs(2)).await;
}
