//! End-to-end: the real service against the Exchange simulator and an HTTP
//! telephony receiver (tests/support/phones.rs), on the real clock; the world they
//! run in is tests/support/world.rs.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/wait.rs"]
mod wait;
// The restart is used by live_config.rs, not here.
#[allow(dead_code)]
#[path = "support/world.rs"]
mod world;

use std::time::{Duration, Instant};

use calvert::component::wit::StatusEvent;
use calvert::diversion::utc;
use calvert::store::Status;
use calvert_exchange_sim::{Fault, SimItem};
use wait::LIMIT;
use world::{ADMIN_TOKEN, Notifications, World, meeting, now, set};

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
    world.expect_quiet("1002").await;

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
    world.expect_nothing_before("1001", start).await;
    world.expect_calls("1001", &[set("LUNCH", end)]).await;
    assert!(now() >= start, "diverted before the item started");
    world
        .expect_calls("1001", &[set("LUNCH", end), "clear".into()])
        .await;
    assert!(now() >= end, "cleared before the item ended");
    let arrivals = world.phones.arrivals_for("1001");
    assert!(
        matches!(arrivals.as_slice(), [(_, set_at), (_, clear_at)] if *set_at >= start && *clear_at >= end),
        "calls before their time (start {start}, end {end}): {arrivals:?}"
    );
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
    // Several resyncs pass: the manual diversion stays (each step saw it and held).
    world.expect_quiet("1001").await;
    let held = world.metric("calvert_decisions_total{action=\"hold-manual\"}");
    assert!(held >= 2.0, "held the manual diversion {held} times");
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
    world.expect_outbox(1.0).await;
    world.exchange.delete_item("kim@flexi.se", "k1");
    world.expect_outbox(2.0).await;
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k2", "Möte", t - 60, t + 1200),
    );
    // Three calls wait in the outbox (decided one after another, none delivered).
    world.expect_outbox(3.0).await;
    assert!(world.phones.calls().is_empty());
    // The outage was hit: the service tried to deliver and was refused.
    wait::until(LIMIT, || match world.phones.refused_calls() {
        0 => Err("no call reached the phone receiver while it was down".to_string()),
        refused => Ok(refused),
    })
    .await;
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
    world.expect_quiet("1001").await;
    assert_eq!(world.phones.repeats(), 0);
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_and_throttling_end_in_a_resync() {
    // No periodic resync: only the service's answer to the broken stream brings a
    // missed change in.
    let world = World::start_with(Notifications::StreamingOnly).await;
    let t = now();
    // Let the service subscribe and settle, then break the stream and throttle the
    // next call. The next request is a stream reconnect, which the server ends in
    // mid-envelope; the service waits, subscribes again (the throttled call) and
    // reads the calendars again.
    let first = world.subscribed("kim@flexi.se").await;
    world.settled().await;
    let from = world.exchange.requests().len();
    world.exchange.inject(Fault::DropStream);
    world
        .exchange
        .inject(Fault::ServerBusy { back_off_ms: 200 });
    let dropped = wait::until(LIMIT, || match world.requests_since(from).first() {
        Some(op) => Ok(op.clone()),
        None => Err("no request after the faults were injected".to_string()),
    })
    .await;
    assert_eq!(
        dropped, "GetStreamingEvents",
        "the stream fault missed the stream"
    );
    // A change while no stream is open: no notification can bring it.
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    let since = world.requests_since(from);
    assert!(
        !since.iter().any(|op| op == "Subscribe"),
        "subscribed again before the change was made, so it was not missed: {since:?}"
    );
    world.expect_calls("1001", &[set("LUNCH", t + 600)]).await;
    // Both faults were hit: kim has a new subscription, and between the dropped stream
    // and the next one the three mailboxes subscribed again, the throttled one twice.
    let second = world.subscribed_anew("kim@flexi.se", Some(&first)).await;
    let since = world.requests_since(from);
    let subscribes = since
        .iter()
        .skip(1)
        .take_while(|op| *op != "GetStreamingEvents")
        .filter(|op| *op == "Subscribe")
        .count();
    assert_eq!(
        subscribes, 4,
        "three mailboxes subscribe again, the throttled one twice: {since:?}"
    );

    world.exchange.expire_subscriptions("kim@flexi.se");
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 700),
    );
    world
        .expect_calls("1001", &[set("LUNCH", t + 600), set("LUNCH", t + 700)])
        .await;
    // The expiry was noticed: kim subscribed again.
    world.subscribed_anew("kim@flexi.se", Some(&second)).await;
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
    // Passive users are untouched: the change reaches the service (kim's watermark
    // moves, kim's task is woken) while Eva's steps go on, and kim's phone is neither
    // called nor read.
    let t = now();
    let watermark = world.service.user("kim@flexi.se").and_then(|r| r.watermark);
    let (calls, reads) = (
        world.phones.calls_for("1001"),
        world.phones.reads_of("1001"),
    );
    world.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("k1", "Lunch", t - 60, t + 600),
    );
    wait::until(LIMIT, || {
        let now_at = world.service.user("kim@flexi.se").and_then(|r| r.watermark);
        if now_at.is_some() && now_at != watermark {
            Ok(())
        } else {
            Err(format!(
                "kim's change never reached the service: {now_at:?}"
            ))
        }
    })
    .await;
    world.read_back("1002", 3).await;
    assert_eq!(world.phones.calls_for("1001"), calls);
    assert_eq!(
        world.phones.reads_of("1001"),
        reads,
        "a passive user's phone was read"
    );
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
        .get(format!("http://{admin}/api/users?q=kim"))
        .bearer_auth(ADMIN_TOKEN)
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
    world.subscribed("kim@flexi.se").await;
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
            .get(format!("http://{admin}/api/users?q=kim"))
            .bearer_auth(ADMIN_TOKEN)
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
        .post(format!("http://{admin}/api/users/kim@flexi.se/restart"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let unknown = http
        .post(format!("http://{admin}/api/users/nobody@flexi.se/restart"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    world.service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_notifications_drive_the_service_and_a_silent_subscription_is_renewed() {
    let world = World::start_with(Notifications::Push).await;
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
    // The service subscribes, then the password changes on the server.
    world.subscribed("kim@flexi.se").await;
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
    // Several refused reads (more than failures_before_error = 2, for each of kim and
    // Eva: six in all): nobody goes to Error for the server's sake.
    let server_failed = "calvert_calendar_reads_total{outcome=\"server-failed\"}";
    wait::until(Duration::from_secs(30), || {
        let status = world.service.status("kim@flexi.se");
        let refused = world.metric(server_failed);
        if refused >= 6.0 || status != Some(Status::Active) {
            Ok(())
        } else {
            Err(format!("{refused} refused reads; kim {status:?}"))
        }
    })
    .await;
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
