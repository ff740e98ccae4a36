//! The administration's bulk changes in a real browser (Debian's chromium through
//! chromedriver), against the service and the Exchange simulator: users activated
//! from a CSV and an XLSX after a dry run, and a server added live and tested.

#[path = "support/admin_session.rs"]
mod admin_session;
#[path = "support/browser.rs"]
mod browser;
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

use admin_session::{log_in, world};
use browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_activated_from_a_csv_and_an_xlsx_after_a_dry_run() {
    let (world, base, (name, password)) = world().await;
    world.exchange.add_mailbox("al@flexi.se");
    world.exchange.add_account(
        "calvert",
        "secret",
        Some(&["kim@flexi.se", "eva@flexi.se", "al@flexi.se"]),
    );
    let dir = std::env::temp_dir().join(format!("calvert-browser-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("roster.csv");
    std::fs::write(
        &csv,
        "address;name;integration_id\nal@flexi.se;Al Ek;21\nnot-an-address;Bo;22\n",
    )
    .unwrap();
    let xlsx = dir.join("roster.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (row, cells) in [
        ["address", "name", "integration_id", "telephony_id"],
        ["al@flexi.se", "Al Ek", "21", "2001"],
    ]
    .iter()
    .enumerate()
    {
        for (column, text) in cells.iter().enumerate() {
            sheet
                .write_string(row as u32, column as u16, *text)
                .unwrap();
        }
    }
    book.save(&xlsx).unwrap();

    let browser = Browser::start().await;
    log_in(&browser, &base, &name, &password).await;
    browser.click("#import-link").await;
    browser.attach("#sheet", &csv).await;
    browser.click("#dry-run").await;
    let outcome = browser
        .text_becomes("#import-outcome", "Dry run: 1 problem")
        .await;
    assert!(outcome.contains("Nothing changed"), "{outcome}");
    let problems = browser.text("#import-problems").await;
    assert!(
        problems.contains("row 3 \"not-an-address\" is not an e-mail address"),
        "{problems}"
    );
    // Even asked to import, a sheet with a bad row changes nothing.
    browser.click("#import").await;
    browser.text_becomes("#import-outcome", "1 problem").await;
    assert!(world.service.user("al@flexi.se").is_none());

    browser.attach("#sheet", &xlsx).await;
    browser.click("#dry-run").await;
    browser
        .text_becomes("#import-outcome", "Dry run: 1 row(s), no problem")
        .await;
    assert!(
        browser
            .text("#import-rows")
            .await
            .contains("added and activated")
    );
    browser.screenshot("import").await;
    browser.click("#import").await;
    browser
        .text_becomes("#import-outcome", "Imported 1 row(s)")
        .await;
    // The new user is listed, found by name, and its mailbox runs without a restart.
    world.subscribed("al@flexi.se").await;
    browser.goto(&format!("{base}/users?q=al%20ek")).await;
    let rows = browser.text("#rows").await;
    assert!(
        rows.contains("Al Ek") && rows.contains("al@flexi.se"),
        "{rows}"
    );
    assert!(
        !rows.contains("kim@flexi.se"),
        "the search finds by name: {rows}"
    );
    browser.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_is_added_live_and_its_connection_tested() {
    let (world, base, (name, password)) = world().await;
    let browser = Browser::start().await;
    log_in(&browser, &base, &name, &password).await;
    browser.goto(&format!("{base}/servers")).await;
    // A server without an address or Autodiscover is refused, with the key at fault.
    browser.fill("#new-name", "sim3").await;
    browser.fill("#new-user", "calvert").await;
    browser.click("#add-server-button").await;
    let problems = browser
        .text_becomes("#server-problems", "exchange[1].url")
        .await;
    assert!(problems.contains("Nothing was changed"), "{problems}");
    assert_eq!(browser.count("#server-sim3").await, 0);

    browser.fill("#new-name", "sim2").await;
    browser.fill("#new-address", &world.ews_url()).await;
    browser.click("#new-ssl").await;
    browser.fill("#new-user", "calvert").await;
    browser.fill("#new-password", "secret").await;
    browser.click("#add-server-button").await;
    let row = browser.text("#server-sim2").await;
    assert!(row.contains("Basic") && row.contains("calvert"), "{row}");
    let page = browser.source().await;
    assert!(
        !page.contains("\"secret\"") && !page.contains(">secret<"),
        "the password is never sent back"
    );
    browser.fill("#mailbox-sim2", "kim@flexi.se").await;
    browser.click("#test-sim2").await;
    browser
        .text_becomes("#test-answer", "sim2: Connected to")
        .await;
    browser.screenshot("servers").await;
    browser.fill("#mailbox-sim2", "kim@flexi.se").await;
    browser.fill("#password-sim2", "not the password").await;
    browser.click("#test-sim2").await;
    let refused = browser.text_becomes("#test-answer", "refused").await;
    assert!(
        refused.contains("check the user name and password"),
        "{refused}"
    );
    let audit = world.service.audit_log(5);
    assert!(
        audit
            .iter()
            .any(|e| e.what.starts_with("set the Exchange server sim2 (")),
        "{audit:?}"
    );
    browser.close().await;
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}
