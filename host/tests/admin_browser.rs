//! The administration in a real browser (Debian's chromium through chromedriver),
//! against the service and the Exchange simulator: log in, find and change users,
//! the decision record, active connections, the route tester, accounts, a viewer who
//! may only look, and a change without the CSRF token refused.

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
use calvert::store::Status;
use calvert_exchange_sim::SimItem;
use wait::LIMIT;
use world::{World, now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_logs_in_finds_users_and_changes_them() {
    let (world, base, (name, password)) = world().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/login")).await;
    browser.fill("#name", &name).await;
    browser.fill("#password", "not the password").await;
    browser.click("#login").await;
    browser
        .text_becomes("#login-error", "Wrong name or password")
        .await;
    log_in(&browser, &base, &name, &password).await;
    browser.screenshot("users").await;

    // By default the active users; ghost (in Error) is not among them.
    let rows = browser.text("#rows").await;
    assert!(
        rows.contains("kim@flexi.se") && rows.contains("eva@flexi.se"),
        "{rows}"
    );
    assert!(!rows.contains("ghost@flexi.se"), "{rows}");
    // Search as one types (htmx), narrowing to eva.
    browser.fill("#q", "eva").await;
    wait::until_async(LIMIT, || async {
        let rows = browser.text("#rows").await;
        if rows.contains("eva@flexi.se") && !rows.contains("kim@flexi.se") {
            Ok(())
        } else {
            Err(rows)
        }
    })
    .await;
    // The error filter (without JavaScript's help: the form's own submit).
    browser.goto(&format!("{base}/users?status=error")).await;
    let rows = browser.text("#rows").await;
    assert!(rows.contains("ghost@flexi.se"), "{rows}");
    assert!(!rows.contains("kim@flexi.se"), "{rows}");
    let reason = browser.text("#rows .reason").await;
    assert!(!reason.is_empty(), "an errored user shows its reason");
    // Restart many at once: select ghost, restart the selection.
    browser
        .click("#rows input[type=checkbox][value='ghost@flexi.se']")
        .await;
    browser.click("#restart-selected").await;
    browser
        .text_becomes("p.notice", "ghost@flexi.se: restarted")
        .await;

    // Passivate kim in place (htmx swaps the row), then activate again.
    browser
        .goto(&format!("{base}/users?q=kim&status=active&status=passive"))
        .await;
    browser.click("button.passivate").await;
    browser.text_becomes("#rows .status", "passive").await;
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Passive));
    browser.click("button.activate").await;
    browser.text_becomes("#rows .status", "active").await;
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Active));

    // Every change is in the audit log, by whom.
    browser.goto(&format!("{base}/audit")).await;
    let audit = browser.text("#audit").await;
    for what in [
        "restarted ghost@flexi.se",
        "passivated kim@flexi.se",
        "activated kim@flexi.se",
    ] {
        assert!(audit.contains(&format!("{name} {what}")), "{what}: {audit}");
    }
    browser.screenshot("audit").await;
    browser.close().await;
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_record_connections_and_the_route_tester_say_why() {
    let (world, base, (name, password)) = world().await;
    let t = now();
    let lunch = SimItem::appointment("L1", "Lunch with the secret client", t - 60, t + 1800);
    world.exchange.put_item("kim@flexi.se", lunch);
    world
        .expect_calls("1001", &[world::set("LUNCH", t + 1800)])
        .await;
    let browser = Browser::start().await;
    log_in(&browser, &base, &name, &password).await;

    browser.goto(&format!("{base}/users/kim%40flexi.se")).await;
    let why = browser.text_becomes("#why-answer", "LUNCH").await;
    assert!(why.contains("the trigger Lunch"), "{why}");
    assert!(
        !browser.source().await.contains("secret client"),
        "never a subject"
    );
    let upcoming = browser.text("#upcoming").await;
    assert!(upcoming.contains("LUNCH"), "{upcoming}");
    browser.screenshot("user").await;

    // Active connections: kim's subscription id and watermark, as the store has them.
    let record = world.service.user("kim@flexi.se").unwrap();
    browser.goto(&format!("{base}/connections")).await;
    let page = browser.text("main").await;
    assert!(page.contains(&record.subscription_id.unwrap()), "{page}");
    assert!(page.contains(&record.watermark.unwrap()), "{page}");
    // Kim's last event: the notification of the lunch, a moment ago.
    let last_event = browser
        .run("return [...document.querySelectorAll('tr')].find(r => r.textContent.includes('kim@flexi.se')).querySelector('.last-event').textContent")
        .await;
    let at: jiff::Timestamp = last_event.as_str().unwrap().parse().unwrap();
    assert!(
        (t..=now()).contains(&at.as_second()),
        "after the lunch was put: {last_event}"
    );
    // The streaming group: the three mailboxes of sim share one connection.
    assert!(
        page.contains("sim: streaming connection 1 of 1 (3 mailboxes)"),
        "{page}"
    );
    browser.screenshot("connections").await;

    // The route tester: the rule that wins, and a tie with a rule being tried.
    browser.goto(&format!("{base}/rules")).await;
    browser.fill("#address", "kim@support.flexi.se").await;
    browser.click("#test-route").await;
    let answer = browser.text("#route-answer").await;
    assert!(
        answer.contains("served by sim through the rule flexi.se"),
        "{answer}"
    );
    browser.fill("#server", "other").await;
    browser.fill("#pattern", "flexi.se").await;
    browser.fill("#priority", "0").await;
    browser.click("#test-route").await;
    let tie = browser.text_becomes("#route-answer", "has no route").await;
    assert!(
        tie.contains("match the same addresses at the same priority"),
        "{tie}"
    );
    assert_eq!(browser.count("#route-answer.error").await, 1);
    browser.screenshot("rules").await;
    browser.close().await;
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_only_looks_and_a_change_without_the_csrf_token_is_refused() {
    let (world, base, (name, password)) = world().await;
    let browser = Browser::start().await;
    log_in(&browser, &base, &name, &password).await;
    // From the page itself, with the session cookie but without the token: refused.
    let status = browser
        .fetch_post("/users/kim@flexi.se/passivate", "{}")
        .await;
    assert_eq!(status, 403);
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Active));
    // With the page's token it goes through (the token is what was missing).
    let token = browser
        .run("return document.querySelector('input[name=csrf]').value")
        .await;
    let token = token.as_str().unwrap().to_string();
    let with = browser
        .fetch_post(
            "/api/users/kim@flexi.se/passivate",
            &format!("{{'X-CSRF-Token': {token:?}}}"),
        )
        .await;
    assert_eq!(with, 200);
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Passive));

    // The administrator adds a viewer; a short password is refused with a sentence.
    browser.goto(&format!("{base}/accounts")).await;
    browser.fill("#new-name", "switchboard").await;
    browser.fill("#new-password", "short").await;
    browser.click("#add-account").await;
    browser.text_becomes("#account-error", "too short").await;
    browser.fill("#new-name", "switchboard").await;
    browser
        .fill("#new-password", "looks but never touches")
        .await;
    browser.click("#add-account").await;
    browser
        .text_becomes("#accounts", "switchboard viewer")
        .await;
    browser.click("form.who button").await;
    browser.text("#login").await;

    log_in(&browser, &base, "switchboard", "looks but never touches").await;
    browser.goto(&format!("{base}/users?status=passive")).await;
    let rows = browser.text("#rows").await;
    assert!(rows.contains("kim@flexi.se"), "{rows}");
    assert_eq!(
        browser.count("#rows button").await,
        0,
        "no buttons for a viewer"
    );
    let token = browser
        .run("return document.querySelector('input[name=csrf]').value")
        .await;
    let token = token.as_str().unwrap().to_string();
    let refused = browser
        .fetch_post(
            "/api/users/kim@flexi.se/activate",
            &format!("{{'X-CSRF-Token': {token:?}}}"),
        )
        .await;
    assert_eq!(refused, 403);
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Passive));
    let audit = world.service.audit_log(10);
    assert!(
        audit
            .iter()
            .any(|e| e.who == name && e.what == "made the account switchboard (viewer)"),
        "{audit:?}"
    );
    browser.close().await;
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}

/// The world with a second Exchange server, "other", on the same simulator (so a
/// rule to it can tie with the rule to sim).
async fn world_with_two_servers() -> (World, String, (String, String)) {
    let world = World::start_edited(
        world::Notifications::Streaming,
        std::sync::Arc::new(calvert::store::MemoryStore::default()),
        |text| {
            let url = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("url = \"http://127.0.0.1"))
                .map(|rest| format!("http://127.0.0.1{}", rest.trim_end_matches('"')))
                .expect("the simulator's url");
            format!(
                "{text}\n[[exchange]]\nname = \"other\"\nurl = \"{url}\"\nssl = false\nauth = \"basic\"\nuser = \"calvert\"\npassword = \"secret\"\n"
            )
        },
    )
    .await;
    world.subscribed("kim@flexi.se").await;
    let base = format!("http://{}", world.service.admin_addr.unwrap());
    let login = world.service.first_login.clone().expect("the first login");
    (world, base, login)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_words_rules_and_integration_ids_are_edited_live() {
    let (world, base, (name, password)) = world_with_two_servers().await;
    let t = now();
    let visit = SimItem::appointment("D1", "Tandläkare", t - 60, t + 1800);
    world.exchange.put_item("kim@flexi.se", visit);
    let mut expected = vec![world::set("BACK", t + 1800)];
    world.expect_calls("1001", &expected).await;
    let browser = Browser::start().await;
    log_in(&browser, &base, &name, &password).await;

    // A new trigger word: kim's phone follows at once, and the record says why.
    browser.goto(&format!("{base}/triggers")).await;
    browser.fill("#word", " ").await;
    browser.fill("#reason", "DENTIST").await;
    browser.click("#add-trigger button").await;
    let problems = browser.text("#trigger-problems").await;
    assert!(
        problems.contains("word: this field is required"),
        "{problems}"
    );
    assert_eq!(
        browser.value("#reason").await,
        "DENTIST",
        "what was typed stays"
    );
    browser.fill("#word", "Tandläkare").await;
    browser.click("#add-trigger button").await;
    browser.text_becomes("#trigger-rows", "DENTIST").await;
    browser.fill("#default_event_type", "Kalenderpost").await;
    browser.click("#event-type-form button").await;
    browser.text("#sync").await;
    assert_eq!(browser.value("#default_event_type").await, "Kalenderpost");
    browser.screenshot("triggers").await;
    expected.push(world::set("DENTIST", t + 1800));
    world.expect_calls("1001", &expected).await;
    browser.goto(&format!("{base}/users/kim%40flexi.se")).await;
    browser.text_becomes("#why-answer", "DENTIST").await;

    // A rule that ties is refused beside its form; one above it is added.
    browser.goto(&format!("{base}/rules")).await;
    browser
        .run("document.querySelector('#exchange-server').value = 'other'; return 1")
        .await;
    browser.fill("#exchange-pattern", "flexi.se").await;
    browser.fill("#exchange-priority", "0").await;
    browser.click("#add-exchange-rule button").await;
    let tie = browser.text("#exchange-rule-problems").await;
    assert!(tie.contains("same priority"), "{tie}");
    assert_eq!(browser.value("#exchange-pattern").await, "flexi.se");
    browser.fill("#exchange-priority", "1").await;
    browser.click("#add-exchange-rule button").await;
    browser
        .text_becomes("#rules-exchange + table", "other")
        .await;
    assert_eq!(browser.count("#exchange-rule-problems").await, 0);

    // The integration id, edited in its cell: type, Enter; the row comes back.
    let cell = "#row-6b696d40666c6578692e7365 input[name=integration_id]";
    browser.goto(&format!("{base}/users")).await;
    browser.fill_and_enter(cell, "VF-17").await;
    wait::until(LIMIT, || {
        let audit = world.service.audit_log(5);
        if audit
            .iter()
            .any(|e| e.what == "set the integration id of kim@flexi.se to VF-17")
        {
            Ok(())
        } else {
            Err(format!("{audit:?}"))
        }
    })
    .await;
    assert_eq!(browser.value(cell).await, "VF-17");
    browser.fill_and_enter(cell, "").await;
    let problem = browser
        .text_becomes(
            "#id-problem-6b696d40666c6578692e7365",
            "needs an integration id",
        )
        .await;
    assert!(problem.contains("enabled"), "{problem}");
    browser.goto(&format!("{base}/users?q=VF-17")).await;
    let rows = browser.text("#rows").await;
    assert!(
        rows.contains("kim@flexi.se"),
        "the refused edit kept VF-17: {rows}"
    );
    browser.close().await;
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_says_it_connected_or_what_to_fix() {
    let (world, base, (name, password)) = world().await;
    let browser = Browser::start().await;
    log_in(&browser, &base, &name, &password).await;
    browser.goto(&format!("{base}/servers")).await;
    let row = browser.text("#server-sim").await;
    assert!(row.contains("Basic") && row.contains("calvert"), "{row}");
    let page = browser.source().await;
    assert!(
        !page.contains("\"secret\"") && !page.contains(">secret<"),
        "the password is never shown"
    );
    browser.click("#test-sim").await;
    let answer = browser.text_becomes("#test-answer", "Connected to").await;
    assert!(
        answer.contains("read eva@flexi.se"),
        "the first routed mailbox: {answer}"
    );
    browser.fill("#mailbox-sim", "kim@flexi.se").await;
    browser.fill("#password-sim", "not the password").await;
    browser.click("#test-sim").await;
    let refused = browser.text_becomes("#test-answer", "refused").await;
    assert!(
        refused.contains("check the user name and password"),
        "{refused}"
    );
    assert_eq!(browser.count("#test-answer.error").await, 1);
    assert_eq!(
        browser.value("#password-sim").await,
        "",
        "a typed password is not sent back"
    );
    let audit = world.service.audit_log(5);
    assert!(
        audit.iter().any(|e| e.what
            == "tested the connection to sim with kim@flexi.se and a typed password: failed"),
        "{audit:?}"
    );
    browser.close().await;
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}
