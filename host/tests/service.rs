//! End-to-end: the real service against the Exchange simulator and an HTTP
//! telephony receiver (tests/support/phones.rs), on the real clock.

#[path = "support/phones.rs"]
mod phones;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use calvert::DecisionCore;
use calvert::component::wit::StatusEvent;
use calvert::config::ServiceConfig;
use calvert::diversion::utc;
use calvert::service::{Adapters, Backoff, EwsSource, ServiceHandle};
use calvert::store::{MemoryStore, Status};
use calvert_exchange_sim::{Exchange, Fault, Server, SimItem, start};
use phones::Phones;

fn core() -> DecisionCore {
    static CORE: OnceLock<DecisionCore> = OnceLock::new();
    CORE.get_or_init(|| DecisionCore::load().unwrap()).clone()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

struct World {
    exchange: Exchange,
    _sim: Server,
    phones: Phones,
    service: ServiceHandle,
}

fn config_text(sim: &Server, phones: std::net::SocketAddr) -> String {
    format!(
        r#"
        [service]
        admin_listen = "127.0.0.1:0"
        debounce_ms = 50
        zone = "Europe/Stockholm"
        failures_before_error = 2
        [[exchange]]
        name = "sim"
        url = "{ews}"
        ssl = false
        auth = "basic"
        user = "calvert"
        password = "secret"
        timeout_ms = 5000
        [[rule]]
        server = "sim"
        pattern = "flexi.se"
        [[telephony]]
        name = "pbx"
        kind = "http"
        url = "http://{phones}"
        reads_back = true
        timeout_ms = 2000
        [[telephony_rule]]
        target = "pbx"
        pattern = "*"
        [[trigger]]
        word = "Lunch"
        reason = "LUNCH"
        [[trigger]]
        word = "Möte"
        reason = "MEETING"
        [policy]
        default_reason = "BACK"
        oof_reason = "AWAY"
        [[user]]
        address = "kim@flexi.se"
        integration_id = "1"
        telephony_id = "1001"
        [[user]]
        address = "eva@flexi.se"
        integration_id = "2"
        telephony_id = "1002"
        [[user]]
        address = "ghost@flexi.se"
        integration_id = "3"
        telephony_id = "1003"
        "#,
        ews = sim.ews_url(),
    )
}

/// A loopback port nobody listens on (for the push listener's URL).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl World {
    async fn start() -> World {
        World::start_with(false).await
    }

    /// `push`: notifications by push to a local listener (a "local web service
    /// address"), StatusEvents every 200 ms, a subscription silent for 1 s renewed,
    /// and no periodic resync to hide a lost notification.
    async fn start_with(push: bool) -> World {
        let exchange = Exchange::default();
        exchange.add_account("calvert", "secret", Some(&["kim@flexi.se", "eva@flexi.se"]));
        for mailbox in ["kim@flexi.se", "eva@flexi.se", "ghost@flexi.se"] {
            exchange.add_mailbox(mailbox);
        }
        let sim = start(exchange.clone()).await.unwrap();
        let phones = Phones::default();
        let phones_addr = phones.start().await;
        let mut text = config_text(&sim, phones_addr);
        if push {
            exchange.set_heartbeat(Duration::from_millis(200));
            text = text.replace(
                "timeout_ms = 5000",
                &format!(
                    "timeout_ms = 5000\npush_address = \"http://127.0.0.1:{}\"",
                    free_port()
                ),
            );
        }
        let mut config = ServiceConfig::from_toml(
            &text,
            Path::new("calvert.toml"),
            &std::collections::BTreeMap::new(),
            &mut core().instance(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Fast safety-net resync so a removed manual diversion is noticed quickly.
        config.resync = Duration::from_secs(if push { 600 } else { 1 });
        let mut adapters =
            Adapters::from_config(&config, Arc::new(MemoryStore::default())).unwrap();
        if push {
            let server = &config.exchange[0];
            let mut source = EwsSource::new(
                "sim",
                server.url.clone(),
                server.credentials.clone(),
                None,
                server.timeout,
            )
            .unwrap()
            .with_push(server.push.clone());
            source.push_silence = Duration::from_secs(1);
            adapters.sources.insert("sim".into(), Arc::new(source));
        }
        let service = ServiceHandle::start(
            config,
            core(),
            adapters,
            Backoff {
                base: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
        )
        .await
        .unwrap();
        World {
            exchange,
            _sim: sim,
            phones,
            service,
        }
    }

    /// Wait (up to 10 s) until the phone's applied calls are exactly `expected`.
    async fn expect_calls(&self, phone: &str, expected: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.phones.calls_for(phone);
            if calls == expected {
                return;
            }
            assert!(
                Instant::now() < deadline && calls.len() <= expected.len(),
                "phone {phone}: expected {expected:?}, got {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Nothing more arrives for `phone` within `wait`.
    async fn expect_quiet(&self, phone: &str, wait: Duration) {
        let before = self.phones.calls_for(phone);
        tokio::time::sleep(wait).await;
        assert_eq!(self.phones.calls_for(phone), before);
    }
}

fn set(reason: &str, until: i64) -> String {
    format!("set {reason} {}", utc(until))
}

fn meeting(id: &str, subject: &str, start: i64, end: i64, response: &str) -> SimItem {
    let mut item = SimItem::appointment(id, subject, start, end);
    item.is_meeting = true;
    item.my_response = response.into();
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_resize_move_and_delete_follow_at_once() {
    let world = World::start().await;
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch med Eva", t - 60, t + 600),
    );
    let mut expected = vec![set("LUNCH", t + 600)];
    world.expect_calls("1001", &expected).await;

    // Resize: longer.
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch med Eva", t - 60, t + 900),
    );
    expected.push(set("LUNCH", t + 900));
    world.expect_calls("1001", &expected).await;

    // Move it into the future: nothing now.
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch med Eva", t + 3600, t + 4200),
    );
    expected.push("clear".into());
    world.expect_calls("1001", &expected).await;

    // A new current item, then deleted.
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k2", "Kundbesök", t - 60, t + 300),
    );
    expected.push(set("BACK", t + 300));
    world.expect_calls("1001", &expected).await;
    world.exchange.delete_item("kim@flexi.se", "k2");
    expected.push("clear".into());
    world.expect_calls("1001", &expected).await;
    assert_eq!(world.phones.repeats(), 0);
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_count_once_accepted_and_an_organizer_move_asks_again() {
    let world = World::start().await;
    let t = now();
    let invite = |start, end, response| meeting("m1", "Möte om budget", start, end, response);
    world.exchange.put_item(
        "eva@flexi.se",
        invite(t - 60, t + 1200, "NoResponseReceived"),
    );
    world.expect_quiet("1002", Duration::from_millis(600)).await;

    world
        .exchange
        .put_item("eva@flexi.se", invite(t - 60, t + 1200, "Accept"));
    let mut expected = vec![set("MEETING", t + 1200)];
    world.expect_calls("1002", &expected).await;

    // The organizer moves it: Exchange resets the answer; it no longer counts.
    world.exchange.put_item(
        "eva@flexi.se",
        invite(t - 60, t + 1800, "NoResponseReceived"),
    );
    expected.push("clear".into());
    world.expect_calls("1002", &expected).await;

    world
        .exchange
        .put_item("eva@flexi.se", invite(t - 60, t + 1800, "Accept"));
    expected.push(set("MEETING", t + 1800));
    world.expect_calls("1002", &expected).await;

    world
        .exchange
        .put_item("eva@flexi.se", invite(t - 60, t + 1800, "Decline"));
    expected.push("clear".into());
    world.expect_calls("1002", &expected).await;
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_item_diverts_at_its_start_and_clears_at_its_end() {
    let world = World::start().await;
    let t = now();
    let (start, end) = (t + 2, t + 4);
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", start, end),
    );
    world.expect_quiet("1001", Duration::from_millis(800)).await;
    world.expect_calls("1001", &[set("LUNCH", end)]).await;
    assert!(now() >= start, "diverted before the item started");
    world
        .expect_calls("1001", &[set("LUNCH", end), "clear".into()])
        .await;
    assert!(now() >= end, "cleared before the item ended");
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_office_and_overlapping_items() {
    let world = World::start().await;
    let t = now();
    let mut oof = SimItem::appointment("o1", "Semester", t - 3600, t + 86_400);
    oof.free_busy = "OOF".into();
    world.exchange.put_item("kim@flexi.se", oof);
    world.expect_calls("1001", &[set("AWAY", t + 86_400)]).await;
    // Two overlapping busy items for Eva form one block: back when both are over.
    world.exchange.put_item(
        "eva@flexi.se",
        SimItem::appointment("e1", "Kundbesök", t - 60, t + 600),
    );
    world.exchange.put_item(
        "eva@flexi.se",
        SimItem::appointment("e2", "Planering", t + 300, t + 1200),
    );
    let calls = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = world.phones.calls_for("1002");
            if calls.last() == Some(&set("BACK", t + 1200)) || Instant::now() > deadline {
                break calls;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    assert_eq!(calls.last(), Some(&set("BACK", t + 1200)), "{calls:?}");
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_diversion_is_never_overwritten_and_control_resumes_when_it_is_gone() {
    let world = World::start().await;
    let t = now();
    world.phones.divert_by_hand("1001", "SICK", &utc(t + 7200));
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 900),
    );
    // Several resyncs pass: the manual diversion stays.
    world
        .expect_quiet("1001", Duration::from_millis(2500))
        .await;
    assert_eq!(
        world.phones.shown("1001"),
        Some(("SICK".into(), utc(t + 7200)))
    );
    world.phones.clear_by_hand("1001");
    world.expect_calls("1001", &[set("LUNCH", t + 900)]).await;
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telephony_down_then_up_delivers_everything_in_order_once() {
    let world = World::start().await;
    let t = now();
    world.phones.set_down(true);
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.exchange.delete_item("kim@flexi.se", "k1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k2", "Möte", t - 60, t + 1200),
    );
    // Three calls wait in the outbox (decided one after another, none delivered).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = world.service.metrics();
        if metrics.contains("calvert_outbox_depth 3") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "three calls never waited:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(world.phones.calls().is_empty());
    world.phones.set_down(false);
    world
        .expect_calls(
            "1001",
            &[
                set("LUNCH", t + 600),
                "clear".into(),
                set("MEETING", t + 1200),
            ],
        )
        .await;
    world.expect_quiet("1001", Duration::from_millis(500)).await;
    assert_eq!(world.phones.repeats(), 0);
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_and_throttling_end_in_a_resync() {
    let world = World::start().await;
    let t = now();
    // Let the service subscribe, then break the stream and throttle the next call.
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.exchange.inject(Fault::DropStream);
    world
        .exchange
        .inject(Fault::ServerBusy { back_off_ms: 200 });
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;
    world.exchange.expire_subscriptions("kim@flexi.se");
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 700),
    );
    world
        .expect_calls("1001", &[set("LUNCH", t + 600), set("LUNCH", t + 700)])
        .await;
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_the_account_may_not_open_goes_to_error_and_can_be_restarted() {
    let world = World::start().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let reason = loop {
        if let Some(Status::Error(reason)) = world.service.status("ghost@flexi.se") {
            break reason;
        }
        assert!(Instant::now() < deadline, "ghost never went to error");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        reason.contains("ghost@flexi.se") || reason.contains("impersonat"),
        "{reason}"
    );
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Active));

    let metrics = world.service.metrics();
    assert!(
        metrics.contains("calvert_mailboxes{status=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calvert_mailboxes{status=\"active\"} 2"),
        "{metrics}"
    );

    // Passivate a working user, then the state machine refuses a restart (only
    // users in error restart) and accepts activate.
    assert_eq!(
        world
            .service
            .administer("kim@flexi.se", StatusEvent::Passivate)
            .unwrap(),
        Status::Passive
    );
    assert!(
        world
            .service
            .administer("kim@flexi.se", StatusEvent::Restart)
            .is_err()
    );
    // Passive users are untouched.
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_quiet("1001", Duration::from_millis(600)).await;
    assert_eq!(
        world
            .service
            .administer("kim@flexi.se", StatusEvent::Activate(Some("1".into())))
            .unwrap(),
        Status::Active
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;

    // The right is granted; a restart of the failed user reads it again and diverts.
    world.exchange.add_account("calvert", "secret", None);
    assert_eq!(
        world
            .service
            .administer("ghost@flexi.se", StatusEvent::Restart)
            .unwrap(),
        Status::Active
    );
    world.exchange.put_item(
        "ghost@flexi.se",
        SimItem::appointment("g1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1003", &[set("LUNCH", t + 600)]).await;
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_serves_health_metrics_and_users() {
    let world = World::start().await;
    let admin = world.service.admin_addr.unwrap();
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("http://{admin}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("calvert_notifications_total"), "{metrics}");
    let users: serde_json::Value = http
        .get(format!("http://{admin}/users?q=kim"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["address"], "kim@flexi.se");
    // The live connection: subscription, watermark of the newest event, last sync.
    // (Subscribed first, so the change below arrives as a notification.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while world
        .service
        .user("kim@flexi.se")
        .and_then(|r| r.subscription_id)
        .is_none()
    {
        assert!(Instant::now() < deadline, "kim was never subscribed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;
    // The confirmation is recorded just after the phone answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    let users = loop {
        let users: serde_json::Value = http
            .get(format!("http://{admin}/users?q=kim"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !users[0]["diversion"].is_null() || Instant::now() > deadline {
            break users;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let kim = &users[0];
    assert!(kim["subscription"].is_string(), "{kim}");
    assert!(kim["watermark"].is_string(), "{kim}");
    assert!(kim["last_sync"].is_string(), "{kim}");
    assert_eq!(kim["diversion"], format!("LUNCH until {}", utc(t + 600)));
    let refused = http
        .post(format!("http://{admin}/users/kim@flexi.se/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let unknown = http
        .post(format!("http://{admin}/users/nobody@flexi.se/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_notifications_drive_the_service_and_a_silent_subscription_is_renewed() {
    let world = World::start_with(true).await;
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;
    let first = world
        .service
        .user("kim@flexi.se")
        .and_then(|r| r.subscription_id)
        .expect("a push subscription");

    // Exchange drops the subscription silently: no more StatusEvents. Calvert notices
    // the silence, subscribes again, and the next change arrives by push.
    world.exchange.expire_subscriptions("kim@flexi.se");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_id = world
            .service
            .user("kim@flexi.se")
            .and_then(|r| r.subscription_id);
        if now_id.as_ref().is_some_and(|id| *id != first) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent subscription was not renewed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 900),
    );
    world
        .expect_calls("1001", &[set("LUNCH", t + 600), set("LUNCH", t + 900)])
        .await;
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_service_account_leaves_users_active_and_heals_when_fixed() {
    let world = World::start().await;
    // Give the service time to subscribe, then the password changes on the server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.exchange.add_account(
        "calvert",
        "rotated",
        Some(&["kim@flexi.se", "eva@flexi.se"]),
    );
    let t = now();
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    // Several refused reads (more than failures_before_error = 2): nobody goes to
    // Error for the server's sake.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(world.service.status("kim@flexi.se"), Some(Status::Active));
    let metrics = world.service.metrics();
    assert!(
        metrics.contains("calvert_calendar_reads_total{outcome=\"server-failed\"}"),
        "{metrics}"
    );
    // The administrator fixes the password on the server: the retries heal it.
    world
        .exchange
        .add_account("calvert", "secret", Some(&["kim@flexi.se", "eva@flexi.se"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.phones.calls_for("1001").is_empty() {
        assert!(Instant::now() < deadline, "no diversion after the fix");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(world.phones.calls_for("1001"), [set("LUNCH", t + 600)]);
    world.service.shutdown(Duration::from_secs(2)).await;
}
