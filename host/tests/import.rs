//! Bulk activation from a spreadsheet through the admin API, against the running
//! service: a dry run names every bad row and changes nothing; an import with any bad
//! row changes nothing; a good one adds users whose phones follow their calendars at
//! once (no restart), activates a passive one, is audited, and is still in force
//! after a restart.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/wait.rs"]
mod wait;
// Not every helper of the world is used here.
#[allow(dead_code)]
#[path = "support/world.rs"]
mod world;

use std::sync::Arc;
use std::time::Duration;

use calvert::component::wit::StatusEvent;
use calvert::store::{SledStore, Status, Store};
use calvert_exchange_sim::SimItem;
use world::{ADMIN_TOKEN, Notifications, World, now, set};

/// `POST /api/users/import?mode=…` with `sheet` as the body: the status and report.
async fn import(world: &World, mode: &str, sheet: &[u8]) -> (u16, serde_json::Value) {
    let admin = world.service.admin_addr.unwrap();
    let answer = reqwest::Client::new()
        .post(format!("http://{admin}/api/users/import?mode={mode}"))
        .bearer_auth(ADMIN_TOKEN)
        .body(sheet.to_vec())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

fn problems(report: &serde_json::Value) -> Vec<(u64, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn xlsx(rows: &[&[&str]]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, cells) in rows.iter().enumerate() {
        for (c, text) in cells.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *text).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

/// A world whose Exchange also has al@flexi.se, not yet configured, with a lunch now.
async fn world_with_al(store: Arc<dyn Store>) -> World {
    let world = World::start_on(Notifications::Streaming, store).await;
    world.exchange.add_mailbox("al@flexi.se");
    world.exchange.add_account(
        "calvert",
        "secret",
        Some(&["kim@flexi.se", "eva@flexi.se", "al@flexi.se"]),
    );
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_names_every_bad_row_and_changes_nothing() {
    let world = world_with_al(Arc::new(calvert::store::MemoryStore::default())).await;
    let before = world.service.audit_log(100).len();
    let sheet = "address;integration_id;zone;department\n\
                 al@flexi.se;21;;\n\
                 not-an-address;22;;\n\
                 AL@flexi.se;23;;\n\
                 bo@elsewhere.org;24;;\n\
                 cy@flexi.se;25;Mars/Olympus;\n\
                 dee@flexi.se;;;\n";
    let (status, report) = import(&world, "dry-run", sheet.as_bytes()).await;
    assert_eq!(status, 400, "{report}");
    assert_eq!(report["applied"], false);
    let found = problems(&report);
    let rows: Vec<u64> = found.iter().map(|(row, _)| *row).collect();
    assert_eq!(rows, [1, 3, 4, 5, 6, 7], "{found:?}");
    let says = |row: u64, text: &str| {
        assert!(
            found.iter().any(|(r, m)| *r == row && m.contains(text)),
            "row {row} should say {text:?}: {found:?}"
        )
    };
    says(1, "unknown column \"department\"");
    says(3, "not an e-mail address");
    says(4, "already on row 2");
    says(
        5,
        "no rule routes bo@elsewhere.org to a server: add an Exchange rule",
    );
    says(6, "zone");
    says(7, "integration id");
    // Nothing changed: no audit line, no new mailbox, and an import of the same
    // sheet is refused as a whole.
    assert_eq!(world.service.audit_log(100).len(), before);
    let (status, report) = import(&world, "apply", sheet.as_bytes()).await;
    assert_eq!((status, report["applied"].clone()), (400, false.into()));
    assert!(
        world.service.user("al@flexi.se").is_none(),
        "al was not added"
    );
    assert_eq!(world.service.audit_log(100).len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_adds_and_activates_users_live_and_keeps_them_across_a_restart() {
    let dir = tempdir();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir, 1 << 20).unwrap());
    let world = world_with_al(store).await;
    let t = now();
    world.exchange.put_item(
        "al@flexi.se",
        SimItem::appointment("a1", "Lunch", t - 60, t + 600),
    );
    let status_of = |address: &'static str, wanted: Status| {
        let world = &world;
        move || match world.service.status(address) {
            Some(status) if status == wanted => Ok(()),
            other => Err(format!("{address} is {other:?}")),
        }
    };
    wait::until(
        Duration::from_secs(10),
        status_of("eva@flexi.se", Status::Active),
    )
    .await;
    world
        .service
        .administer("eva@flexi.se", StatusEvent::Passivate)
        .unwrap();
    assert_eq!(world.service.status("eva@flexi.se"), Some(Status::Passive));

    let sheet = xlsx(&[
        &[
            "E-post",
            "Namn",
            "Företag",
            "Integration ID",
            "Telephony ID",
        ],
        &["al@flexi.se", "Al Ek", "Flexi AB", "21", "2001"],
        &["eva@flexi.se", "", "", "", ""],
    ]);
    let (status, report) = import(&world, "dry-run", &sheet).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], false);
    let actions: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["add", "activate"]);
    assert!(
        world.service.user("al@flexi.se").is_none(),
        "a dry run changes nothing"
    );

    let (status, report) = import(&world, "apply", &sheet).await;
    assert_eq!(
        (status, report["applied"].clone()),
        (200, true.into()),
        "{report}"
    );
    // Al's mailbox runs at once: the lunch diverts its phone; Eva is active again.
    world.expect_calls("2001", &[set("LUNCH", t + 600)]).await;
    wait::until(
        Duration::from_secs(10),
        status_of("eva@flexi.se", Status::Active),
    )
    .await;
    let audit = world.service.audit_log(10);
    assert!(
        audit
            .iter()
            .any(|e| e.what == "imported 2 user(s) from a spreadsheet: al@flexi.se, eva@flexi.se"),
        "{audit:?}"
    );

    // The import is the configuration in force after a restart; al's lunch ending
    // later still reaches the phone.
    let world = world.restart().await;
    world.exchange.put_item(
        "al@flexi.se",
        SimItem::appointment("a1", "Lunch", t - 60, t + 900),
    );
    world
        .expect_calls("2001", &[set("LUNCH", t + 600), set("LUNCH", t + 900)])
        .await;
    drop(dir);
}

/// A fresh directory for a sled store, removed at the end of the test.
fn tempdir() -> TempDir {
    let path = std::env::temp_dir().join(format!("calvert-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    TempDir(path)
}

struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
