//! The process killed mid-work (SIGKILL) and started again: no call lost, none
//! applied twice, and the logs never show a subject.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::time::{Duration, Instant};

use calvert::diversion::utc;
use calvert_exchange_sim::{Exchange, SimItem, start};
use phones::Phones;
use serve::Installation;

const SECRET_SUBJECT: &str = "Hemlig förhandling";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_work_and_restarted_nothing_is_lost_or_applied_twice() {
    let dir = std::env::temp_dir().join(format!("calvert-crash-{}", std::process::id()));

    let exchange = Exchange::default();
    exchange.add_account("calvert", "secret", None);
    let users = ["kim", "eva", "ola", "aino"];
    for user in users {
        exchange.add_mailbox(&format!("{user}@flexi.se"));
    }
    let sim = start(exchange.clone()).await.unwrap();
    let phones = Phones::default();
    let phones_addr = phones.start().await;
    let calvert_users: Vec<(String, String)> = users
        .iter()
        .map(|u| (format!("{u}@flexi.se"), u.to_string()))
        .collect();
    let trigger = "[[trigger]]\nword = \"Lunch\"\nreason = \"LUNCH\"";
    // The admin port shows the outbox drain before the last stop.
    let installation = Installation::new(
        dir.clone(),
        &sim.ews_url(),
        phones_addr,
        trigger,
        &calvert_users,
    );

    let log1 = dir.join("first.log");
    let mut child = installation.start(&log1);
    let t = jiff::Timestamp::now().as_second();
    let lunch = |until: i64| {
        let mut item = SimItem::appointment("x", &format!("Lunch {SECRET_SUBJECT}"), t - 60, until);
        item.location = "Styrelserummet".into();
        item
    };
    // Wait until the service runs: every phone gets its first diversion.
    for user in users {
        exchange.put_item(&format!("{user}@flexi.se"), lunch(t + 600));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while phones.calls().len() < users.len() {
        assert!(Instant::now() < deadline, "the service never diverted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Now each user's item is resized five times, faster than the slow target
    // answers: calls queue up in the outbox.
    phones.set_delay(Duration::from_millis(300));
    for round in 1..=5 {
        for user in users {
            exchange.put_item(&format!("{user}@flexi.se"), lunch(t + 600 + round * 60));
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    // Kill while calls are queued and in flight.
    while phones.calls().len() < users.len() + 6 {
        assert!(Instant::now() < deadline, "the queued calls never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = phones.calls().len();

    let log2 = dir.join("second.log");
    let mut child = installation.start(&log2);
    let final_until = utc(t + 600 + 5 * 60);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = users
            .iter()
            .all(|u| phones.shown(u).map(|s| s.1) == Some(final_until.clone()));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every phone reached the final diversion: {:?}",
            phones.calls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let anything still queued drain, then stop.
    wait::until_async(wait::LIMIT, || async {
        let depth = installation.outbox_depth().await?;
        if depth == 0.0 {
            Ok(())
        } else {
            Err(format!("{depth} calls still queued"))
        }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let calls = phones.calls();
    assert!(
        calls.len() > after_kill,
        "the kill came after all the work: nothing was tested"
    );
    for user in users {
        let keys: Vec<u64> = calls
            .iter()
            .filter(|c| c.phone == user)
            .map(|c| c.key.rsplit('#').next().unwrap().parse().unwrap())
            .collect();
        // Each key applied once, in order, without gaps: nothing lost, nothing twice.
        let expected: Vec<u64> = (0..keys.len() as u64).collect();
        assert_eq!(keys, expected, "{user}: {calls:?}");
        let whats = phones.calls_for(user);
        assert_eq!(
            whats.last(),
            Some(&format!("set LUNCH {final_until}")),
            "{user}"
        );
        // Every call sets a different (growing) return time: no call was repeated.
        let mut sorted = whats.clone();
        sorted.dedup();
        assert_eq!(sorted, whats, "{user}: a call was applied twice");
    }
    for log in [&log1, &log2] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains(SECRET_SUBJECT), "a subject reached the log");
        assert!(
            !text.contains("Styrelserummet"),
            "a location reached the log"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
