//! The configuration edited live through the admin API, without a restart: a new
//! trigger word changes the phone's call at once, a new rule moves a mailbox to
//! another Exchange server, an integration id is set; a refused edit names its
//! problems by key and changes nothing; every edit is audited, kept in the store
//! across a restart, and exported as TOML with calvert.toml's comments.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/raw_http.rs"]
mod raw_http;
#[path = "support/wait.rs"]
mod wait;
// Not every helper of the world is used here.
#[allow(dead_code)]
#[path = "support/world.rs"]
mod world;

use std::sync::Arc;
use std::time::Duration;

use calvert::store::{MemoryStore, SledStore, Status, Store};
use calvert_exchange_sim::{Exchange, SimItem};
use raw_http::{Answer, ask, post};
use world::{ADMIN_TOKEN, Notifications, World, now, set};

/// An API call as a script makes it: the port's Host and the admin token.
async fn api(world: &World, method: &str, path: &str, body: &str) -> Answer {
    let admin = world.service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}");
    if method == "GET" {
        ask(admin, "GET", path, &[&host, &bearer]).await
    } else {
        let form = "Content-Type: application/x-www-form-urlencoded";
        post(admin, path, &[&host, &bearer, form], body).await
    }
}

async fn exported(world: &World) -> String {
    let answer = api(world, "GET", "/api/config/export", "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

/// The keys of a 400's problems.
fn problem_keys(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 400, "{answer:?}");
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_words_and_the_policy_change_decisions_at_once() {
    let world = World::start().await;
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Tandläkare", t - 60, t + 600),
    );
    let mut expected = vec![set("BACK", t + 600)];
    world.expect_calls("1001", &expected).await;

    let added = api(
        &world,
        "POST",
        "/api/config/trigger",
        "word=Tandl%C3%A4kare&reason=DENTIST",
    )
    .await;
    assert_eq!(added.status, 200, "{added:?}");
    expected.push(set("DENTIST", t + 600));
    world.expect_calls("1001", &expected).await;

    // Refused: every missing field at once, then what the file's check finds.
    let before = exported(&world).await;
    let empty = api(&world, "POST", "/api/config/trigger", "word=&reason=").await;
    assert_eq!(problem_keys(&empty), ["word", "reason"]);
    let unknown = api(
        &world,
        "POST",
        "/api/config/rule",
        "server=nowhere&pattern=x.se",
    )
    .await;
    assert_eq!(problem_keys(&unknown), ["rule[1].server"]);
    let missing = api(
        &world,
        "POST",
        "/api/config/trigger-remove",
        "word=Semester",
    )
    .await;
    assert_eq!(missing.status, 400, "{missing:?}");
    assert!(
        missing.body.contains("no trigger \\\"Semester\\\""),
        "{missing:?}"
    );
    assert_eq!(
        exported(&world).await,
        before,
        "a refused edit changes nothing"
    );

    let removed = api(
        &world,
        "POST",
        "/api/config/trigger-remove",
        "word=Tandl%C3%A4kare",
    )
    .await;
    assert_eq!(removed.status, 200, "{removed:?}");
    expected.push(set("BACK", t + 600));
    world.expect_calls("1001", &expected).await;
    let policy = api(
        &world,
        "POST",
        "/api/config/policy",
        "default_reason=BORTA&oof_reason=AWAY&divert_on=busy&divert_on=oof",
    )
    .await;
    assert_eq!(policy.status, 200, "{policy:?}");
    expected.push(set("BORTA", t + 600));
    world.expect_calls("1001", &expected).await;
    // Free time stops diverting when busy leaves the policy.
    let oof_only = api(
        &world,
        "POST",
        "/api/config/policy",
        "default_reason=BORTA&divert_on=oof",
    )
    .await;
    assert_eq!(oof_only.status, 200, "{oof_only:?}");
    expected.push("clear".into());
    world.expect_calls("1001", &expected).await;

    let audit = world.service.audit_log(10);
    let said: Vec<&str> = audit.iter().map(|e| e.what.as_str()).collect();
    assert!(
        said.iter()
            .any(|w| w.contains("added the trigger \"Tandläkare\" → DENTIST")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|w| w.contains("removed the trigger")),
        "{said:?}"
    );
    let edits = said
        .iter()
        .filter(|w| !w.starts_with("made the first account"))
        .count();
    assert_eq!(
        edits, 4,
        "four edits made, the refused ones not audited: {said:?}"
    );
    let text = exported(&world).await;
    assert!(
        text.contains("default_reason = \"BORTA\"") && text.contains("divert_on = [\"oof\"]"),
        "{text}"
    );
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_moves_a_mailbox_to_another_server_and_a_tie_is_refused() {
    // A second Exchange server where kim's calendar has lunch now.
    let other = Exchange::default();
    other.add_account("calvert", "secret", None);
    other.add_mailbox("kim@flexi.se");
    let t = now();
    other.put_item(
        "kim@flexi.se",
        SimItem::appointment("o1", "Lunch", t - 60, t + 900),
    );
    let other_sim = calvert_exchange_sim::start(other.clone()).await.unwrap();
    let url = other_sim.ews_url();
    let world = World::start_edited(Notifications::Streaming, Arc::new(MemoryStore::default()), |text| {
        format!("{text}\n[[exchange]]\nname = \"other\"\nurl = \"{url}\"\nssl = false\nauth = \"basic\"\nuser = \"calvert\"\npassword = \"secret\"\n")
    })
    .await;
    world.subscribed("kim@flexi.se").await;
    world.expect_quiet("1001").await;

    let rule = api(
        &world,
        "POST",
        "/api/config/rule",
        "server=other&pattern=kim%40flexi.se&priority=10",
    )
    .await;
    assert_eq!(rule.status, 200, "{rule:?}");
    world.expect_calls("1001", &[set("LUNCH", t + 900)]).await;
    let route = api(&world, "GET", "/api/route?address=kim@flexi.se", "").await;
    assert!(route.body.contains("\"server\":\"other\""), "{route:?}");
    // The other server now watches kim: a change there follows at once.
    other.put_item(
        "kim@flexi.se",
        SimItem::appointment("o1", "Lunch", t - 60, t + 1200),
    );
    world
        .expect_calls("1001", &[set("LUNCH", t + 900), set("LUNCH", t + 1200)])
        .await;

    // Another rule for kim at the same priority is a tie: refused, nothing moves.
    let tie = api(
        &world,
        "POST",
        "/api/config/rule",
        "server=sim&pattern=kim%40flexi.se&priority=10",
    )
    .await;
    assert_eq!(tie.status, 400, "{tie:?}");
    assert!(
        tie.body.contains("kim@flexi.se"),
        "the tie names the address: {tie:?}"
    );
    let route = api(&world, "GET", "/api/route?address=kim@flexi.se", "").await;
    assert!(route.body.contains("\"server\":\"other\""), "{route:?}");
    // Removing the rule moves kim back: nothing is busy there.
    let removed = api(
        &world,
        "POST",
        "/api/config/rule-remove",
        "kind=exchange&index=1",
    )
    .await;
    assert_eq!(removed.status, 200, "{removed:?}");
    world
        .expect_calls(
            "1001",
            &[
                set("LUNCH", t + 900),
                set("LUNCH", t + 1200),
                "clear".into(),
            ],
        )
        .await;
    world.service.shutdown(Duration::from_secs(2)).await;
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_kept_in_the_store_across_a_restart() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("calvert-live-config-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.0, 1 << 20).unwrap());
    let world = World::start_on(Notifications::Streaming, store.clone()).await;
    let stored = store
        .stored_config()
        .unwrap()
        .expect("the first start seeds the store");
    assert_eq!(stored.text, stored.file_text);

    let set_id = api(
        &world,
        "POST",
        "/api/users/kim@flexi.se/integration-id",
        "integration_id=VF-17",
    )
    .await;
    assert_eq!(set_id.status, 200, "{set_id:?}");
    let found = api(&world, "GET", "/api/users?q=VF-17", "").await;
    assert!(found.body.contains("kim@flexi.se"), "{found:?}");
    // An enabled user needs one: refused by the file's own check.
    let cleared = api(
        &world,
        "POST",
        "/api/users/kim@flexi.se/integration-id",
        "integration_id=",
    )
    .await;
    assert_eq!(problem_keys(&cleared), ["user[0].integration_id"]);
    let unknown = api(
        &world,
        "POST",
        "/api/users/nobody@flexi.se/integration-id",
        "integration_id=9",
    )
    .await;
    assert_eq!(unknown.status, 400, "{unknown:?}");
    let trigger = api(
        &world,
        "POST",
        "/api/config/trigger",
        "word=Semester&reason=VACATION",
    )
    .await;
    assert_eq!(trigger.status, 200, "{trigger:?}");
    let event_type = api(
        &world,
        "POST",
        "/api/config/default-event-type",
        "default_event_type=Kalenderpost",
    )
    .await;
    assert_eq!(event_type.status, 200, "{event_type:?}");
    let long = format!("default_event_type={}", "x".repeat(65));
    let too_long = api(&world, "POST", "/api/config/default-event-type", &long).await;
    assert_eq!(problem_keys(&too_long), ["sync.default_event_type"]);
    // Passivate and activate: the activation carries the new integration id.
    assert_eq!(
        api(&world, "POST", "/api/users/kim@flexi.se/passivate", "")
            .await
            .status,
        200
    );
    assert_eq!(
        api(&world, "POST", "/api/users/kim@flexi.se/activate", "")
            .await
            .status,
        200
    );
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Active));

    let world = world.restart().await;
    let text = exported(&world).await;
    assert!(
        text.contains("integration_id = \"VF-17\"") && text.contains("reason = \"VACATION\""),
        "{text}"
    );
    assert!(
        text.contains("[sync]\ndefault_event_type = \"Kalenderpost\""),
        "{text}"
    );
    let found = api(&world, "GET", "/api/users?q=VF-17", "").await;
    assert!(found.body.contains("kim@flexi.se"), "{found:?}");
    let t = now();
    world.exchange.put_item(
        "eva@flexi.se",
        SimItem::appointment("e1", "Semester", t - 60, t + 600),
    );
    world
        .expect_calls("1002", &[set("VACATION", t + 600)])
        .await;
    world.service.shutdown(Duration::from_secs(2)).await;
    let stored = store.stored_config().unwrap().unwrap();
    assert_ne!(
        stored.text, stored.file_text,
        "the file is unchanged; the edits are in the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_row_is_edited_live_and_a_bad_zone_is_refused_by_key() {
    let world = World::start().await;
    world.subscribed("kim@flexi.se").await;
    let refused = api(
        &world,
        "POST",
        "/api/users/kim@flexi.se/edit",
        "name=Kim+Berg&integration_id=1&telephony_id=1001&zone=Mars%2FOlympus",
    )
    .await;
    assert_eq!(problem_keys(&refused), ["user[0].zone"]);
    let edited = api(
        &world,
        "POST",
        "/api/users/kim@flexi.se/edit",
        "name=Kim+Berg&company=Flexi+AB&integration_id=1&telephony_id=1009&zone=Europe%2FHelsinki",
    )
    .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    // The next diversion goes to the new phone number.
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1009", &[set("LUNCH", t + 600)]).await;
    let text = exported(&world).await;
    assert!(
        text.contains("name = \"Kim Berg\"") && text.contains("zone = \"Europe/Helsinki\""),
        "{text}"
    );
    world.service.shutdown(Duration::from_secs(2)).await;
}
