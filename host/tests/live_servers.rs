//! Exchange servers and telephony targets edited live through the admin API, without
//! a restart: a new password makes the watchers reconnect with it; a target moved to
//! another address gets the next call there; a bad server or the removal of one a
//! rule still names is refused with the problem by key, and changes nothing. The
//! secrets typed are never exported.

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

use std::time::Duration;

use calvert_exchange_sim::SimItem;
use raw_http::{Answer, ask, post};
use world::{ADMIN_TOKEN, World, now, set};

async fn api(world: &World, path: &str, body: &str) -> Answer {
    let admin = world.service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let form = "Content-Type: application/x-www-form-urlencoded";
    post(admin, path, &[&host, &bearer, form], body).await
}

async fn exported(world: &World) -> String {
    let admin = world.service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}");
    ask(admin, "GET", "/api/config/export", &[&host, &bearer])
        .await
        .body
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_reconnects_the_watchers_with_it() {
    let world = World::start().await;
    let first = world.subscribed("kim@flexi.se").await;
    // Exchange's service account gets a new password; Calvert is told it live.
    world.exchange.add_account(
        "calvert",
        "new-secret-2026",
        Some(&["kim@flexi.se", "eva@flexi.se"]),
    );
    let url = encoded(&world.ews_url());
    let body = format!("name=sim&address={url}&auth=basic&user=calvert&password=new-secret-2026");
    let answer = api(&world, "/api/config/server", &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // Only the new password signs in now: a new subscription and a diversion prove it.
    world.subscribed_anew("kim@flexi.se", Some(&first)).await;
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;
    let text = exported(&world).await;
    assert!(!text.contains("new-secret-2026"), "{text}");
    let audit = world.service.audit_log(5);
    assert!(
        audit
            .iter()
            .any(|e| e.what.starts_with("set the Exchange server sim (")
                && e.what.ends_with("basic sign-in, a new password)")),
        "{audit:?}"
    );
    assert!(audit.iter().all(|e| !e.what.contains("new-secret")));
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_moved_to_another_address_gets_the_next_call_there() {
    let world = World::start().await;
    world.subscribed("kim@flexi.se").await;
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;

    let second = phones::Phones::default();
    let second_addr = second.start().await;
    let body = format!(
        "name=pbx&kind=http&url={}&reads_back=on&header=Authorization&header_value=Bearer%20t2",
        encoded(&format!("http://{second_addr}"))
    );
    let answer = api(&world, "/api/config/target", &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 900),
    );
    wait::until(Duration::from_secs(10), || {
        let calls = second.calls_for("1001");
        if calls == [set("LUNCH", t + 900)] {
            Ok(())
        } else {
            Err(format!("the moved target has {calls:?}"))
        }
    })
    .await;
    assert_eq!(
        world.phones.calls_for("1001"),
        [set("LUNCH", t + 600)],
        "the old one has no more"
    );
    assert!(
        !exported(&world).await.contains("Bearer t2"),
        "the header value is write-only"
    );
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_server_and_removing_a_server_in_use_are_refused_and_change_nothing() {
    let world = World::start().await;
    let before = exported(&world).await;
    let answer = api(
        &world,
        "/api/config/server",
        "name=ews2&address=mail.flexi.se&auth=kerberos&user=calvert&password=x",
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("exchange[1].auth"), "{}", answer.body);
    let answer = api(&world, "/api/config/server-remove", "name=sim").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("rule[0].server"), "{}", answer.body);
    let answer = api(&world, "/api/config/server-remove", "name=nowhere").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(exported(&world).await, before);
    world.service.shutdown(Duration::from_secs(2)).await;
}
