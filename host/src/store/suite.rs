//! The one test suite every store must pass (`store_suite!`), run here against
//! [`MemoryStore`] and [`SledStore`].

use super::*;

/// One suite, run against every store (as Stalwart runs its storage tests against
/// every backend).
macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            fn set(reason: &str, until: i64) -> DiversionCall {
                DiversionCall::Set {
                    reason: reason.into(),
                    until,
                    until_local: String::new(),
                }
            }

            #[test]
            fn a_user_record_round_trips_and_addresses_ignore_case() {
                let (store, _dir) = $make;
                assert_eq!(store.user("kim@flexi.se").unwrap(), None);
                let record = UserRecord {
                    status: Status::Error("no route".into()),
                    last_sync: Some(1_700_000_000),
                    watermark: Some("AQAAAA==".into()),
                    ..UserRecord::default()
                };
                let written = store
                    .update_user("Kim@Flexi.se", &mut |r| *r = record.clone())
                    .unwrap();
                assert_eq!(written, record);
                assert_eq!(store.user("kim@flexi.se").unwrap(), Some(record));
                assert_eq!(store.users().unwrap().len(), 1);
                store
                    .update_user("kim@flexi.se", &mut |r| r.consecutive_failures = 3)
                    .unwrap();
                store
                    .note_user("kim@flexi.se", &mut |r| {
                        r.last_sync = Some(1_800_000_000);
                        r.consecutive_failures = 0;
                    })
                    .unwrap();
                let synced = store.user("kim@flexi.se").unwrap().unwrap();
                assert_eq!(
                    (synced.last_sync, synced.consecutive_failures),
                    (Some(1_800_000_000), 0)
                );
                assert_eq!(synced.status, Status::Error("no route".into()));
            }

            #[test]
            fn accounts_are_found_by_any_case_and_replaced_whole() {
                let (store, _dir) = $make;
                assert_eq!(store.account("Ada").unwrap(), None);
                let ada = Account {
                    name: "Ada".into(),
                    role: Role::Viewer,
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                    created: 1_800_000_000,
                };
                store.put_account(&ada).unwrap();
                assert_eq!(store.account("ADA").unwrap(), Some(ada.clone()));
                let promoted = Account {
                    role: Role::Administrator,
                    ..ada
                };
                store.put_account(&promoted).unwrap();
                assert_eq!(store.accounts().unwrap(), vec![promoted]);
            }

            #[test]
            fn the_configuration_text_is_kept_whole_and_replaced() {
                let (store, _dir) = $make;
                assert_eq!(store.stored_config().unwrap(), None);
                let edited = StoredConfig {
                    text: "[[trigger]]\nword = \"Möte\"\nreason = \"MEETING\"\n".into(),
                    file_text: "# calvert.toml\n".into(),
                };
                store.put_config(&edited).unwrap();
                assert_eq!(store.stored_config().unwrap(), Some(edited));
                let emptied = StoredConfig {
                    text: String::new(),
                    file_text: String::new(),
                };
                store.put_config(&emptied).unwrap();
                assert_eq!(store.stored_config().unwrap(), Some(emptied));
            }

            #[test]
            fn the_audit_log_numbers_every_entry_and_reads_newest_first() {
                let (store, _dir) = $make;
                assert!(store.audit_log(10).unwrap().is_empty());
                let first = store.audit(100, "ada", "passivated kim@flexi.se").unwrap();
                let second = store.audit(101, "token", "restarted eva@flexi.se").unwrap();
                assert_eq!((first.seq, second.seq), (1, 2));
                assert_eq!(store.audit_log(10).unwrap(), vec![second.clone(), first]);
                assert_eq!(store.audit_log(1).unwrap(), vec![second]);
            }

            #[test]
            fn the_outbox_keeps_order_per_user_and_never_reuses_a_number() {
                let (store, _dir) = $make;
                let a = store.enqueue("kim@flexi.se", set("LUNCH", 10), 1).unwrap();
                let b = store
                    .enqueue("kim@flexi.se", DiversionCall::Clear, 2)
                    .unwrap();
                let c = store
                    .enqueue("eva@flexi.se", set("MEETING", 20), 3)
                    .unwrap();
                assert_eq!((a.seq, b.seq, c.seq), (0, 1, 0));
                assert_eq!(
                    store.outbox("kim@flexi.se").unwrap(),
                    vec![a.clone(), b.clone()]
                );
                assert_eq!(store.outbox_depth().unwrap(), 3);
                assert_eq!(
                    store.pending_users().unwrap(),
                    vec!["eva@flexi.se".to_string(), "kim@flexi.se".to_string()]
                );

                store.complete(&a).unwrap();
                assert_eq!(
                    store.user("kim@flexi.se").unwrap().unwrap().last_applied,
                    Some(Applied {
                        reason: "LUNCH".into(),
                        until: 10
                    })
                );
                // Completing twice changes nothing.
                store.complete(&a).unwrap();
                store.complete(&b).unwrap();
                assert_eq!(
                    store.user("kim@flexi.se").unwrap().unwrap().last_applied,
                    None
                );
                assert!(store.outbox("kim@flexi.se").unwrap().is_empty());

                // A record written from an old copy cannot roll the sequence back.
                store
                    .update_user("kim@flexi.se", &mut |r| *r = UserRecord::default())
                    .unwrap();
                let d = store
                    .enqueue("kim@flexi.se", DiversionCall::Clear, 4)
                    .unwrap();
                assert_eq!(d.seq, 2);
                assert_ne!(d.idempotency_key(), a.idempotency_key());
            }

            #[test]
            fn a_snapshot_shows_a_confirmed_call_as_applied_with_its_number() {
                let (store, _dir) = $make;
                assert_eq!(store.snapshot("kim@flexi.se").unwrap(), Snapshot::default());
                let a = store.enqueue("kim@flexi.se", set("LUNCH", 10), 1).unwrap();
                let b = store
                    .enqueue("Kim@Flexi.se", DiversionCall::Clear, 2)
                    .unwrap();
                let queued = store.snapshot("kim@flexi.se").unwrap();
                assert_eq!(queued.pending, vec![a.clone(), b.clone()]);
                assert_eq!(
                    (queued.record.next_seq, queued.record.last_applied_seq),
                    (2, None)
                );
                store.complete(&a).unwrap();
                let confirmed = store.snapshot("KIM@flexi.se").unwrap();
                assert_eq!(confirmed.pending, vec![b.clone()]);
                assert_eq!(confirmed.record.last_applied, set("LUNCH", 10).applied());
                assert_eq!(confirmed.record.last_applied_seq, Some(0));
                store.complete(&b).unwrap();
                let done = store.snapshot("kim@flexi.se").unwrap();
                assert!(done.pending.is_empty());
                assert_eq!(
                    (done.record.last_applied, done.record.last_applied_seq),
                    (None, Some(1))
                );
                // Another user's queue is not in kim's snapshot.
                store
                    .enqueue("eva@flexi.se", DiversionCall::Clear, 3)
                    .unwrap();
                assert!(store.snapshot("kim@flexi.se").unwrap().pending.is_empty());
            }
        }
    };
}

/// A fresh directory for a test's database.
pub(super) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "calvert-store-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Run `open` until it succeeds, while sled still holds the directory lock of a
/// store just dropped: sled releases it from its flusher thread shortly after the
/// drop, later on a loaded machine.
pub(super) fn when_unlocked<T>(mut open: impl FnMut() -> Result<T, StoreError>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(StoreError::Open {
                source: ::sled::Error::Io(e),
                ..
            }) if e.to_string().contains("could not acquire lock")
                && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Removes the directory when the test ends.
pub(super) struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

store_suite!(memory, (MemoryStore::default(), ()));
store_suite!(sled_store, {
    let dir = temp_dir("suite");
    (SledStore::open(&dir, 1 << 20).unwrap(), TempDir(dir))
});
