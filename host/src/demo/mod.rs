//! `calvert demo`: the real service, a scripted day, under a minute.
//!
//! One command starts the built-in Exchange simulator with three mailboxes, runs the
//! service against it over EWS (streaming notifications, CalendarView, GetItem) with
//! a sled store in a temporary directory, and plays a working day in Stockholm on a
//! fast clock (07:00–17:00 in about 25 seconds): meetings created, accepted, moved by
//! their organizer and accepted again, declined; a lunch inside an all-day course; an
//! out-of-office with a manual diversion on top; a telephony outage. The diversion
//! target is the demo's switchboard: it prints every call it gets (the `log` target's
//! job), remembers what each phone shows so manual diversions are visible, and can be
//! down. The timeline is printed as it happens; the demo then exits by itself.

mod script;
mod switchboard;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calvert_exchange_sim::Exchange;

use crate::DecisionCore;
use crate::config::ServiceConfig;
use crate::lock::lock;
use crate::service::{Adapters, Backoff, Clock, ScaledClock, ServiceHandle};
use crate::store::{Applied, SledStore};
use script::{EVA, KIM, OLA, Step, script};
use switchboard::Switchboard;

const ZONE: &str = "Europe/Stockholm";
/// 2026-11-25T00:00:00+01:00, midnight in Stockholm.
const DAY: i64 = 1_795_561_200;
/// Simulated seconds per real second: 07:00–17:00 in 25 s.
const SPEED: f64 = 1440.0;

fn at(h: i64, m: i64) -> i64 {
    DAY + h * 3600 + m * 60
}

/// `HH:MM` in Stockholm (or the date too when not on the demo's day).
fn local(t: i64) -> String {
    let Ok(zone) = jiff::tz::TimeZone::get(ZONE) else {
        return t.to_string();
    };
    let Ok(stamp) = jiff::Timestamp::from_second(t) else {
        return t.to_string();
    };
    let zoned = stamp.to_zoned_datetime(zone);
    if (DAY..DAY + 86_400).contains(&t) {
        zoned.strftime("%H:%M").to_string()
    } else {
        zoned.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

const CONFIG: &str = r#"
[service]
admin_listen = "127.0.0.1:0"
zone = "Europe/Stockholm"
resync_minutes = 15
debounce_ms = 300

[[exchange]]
name = "simulator"
url = "{EWS}"
ssl = false
auth = "basic"
user = "calvert"
password = "demo"

[[rule]]
server = "simulator"
pattern = "flexi.se"

[[telephony]]
name = "switchboard"
kind = "log"

[[telephony_rule]]
target = "switchboard"
pattern = "*"

[[trigger]]
word = "Lunch"
reason = "LUNCH"

[[trigger]]
word = "Möte"
reason = "MEETING"

[[trigger]]
word = "Kurs"
reason = "COURSE"

[[trigger]]
word = "Semester"
reason = "VACATION"

[policy]
default_reason = "BACK"
oof_reason = "AWAY"

[[user]]
address = "kim@flexi.se"
integration_id = "1001"
telephony_id = "1001"

[[user]]
address = "eva@flexi.se"
integration_id = "1002"
telephony_id = "1002"

[[user]]
address = "ola@flexi.se"
integration_id = "1003"
telephony_id = "1003"
"#;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo could not start its Exchange simulator: {0}")]
    Simulator(std::io::Error),
    #[error("the demo's configuration is invalid (a bug in the demo): {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Run the demo; returns the timeline (also printed as it happens).
/// `stay`: after the day, keep the service and its administration running until
/// Ctrl-C, to look around.
pub fn run(core: DecisionCore, stay: bool) -> Result<String, DemoError> {
    let runtime = tokio::runtime::Runtime::new().map_err(DemoError::Runtime)?;
    runtime.block_on(play(core, stay))
}

async fn play(core: DecisionCore, stay: bool) -> Result<String, DemoError> {
    let exchange = Exchange::default();
    exchange.add_account("calvert", "demo", None);
    for mailbox in [KIM, EVA, OLA] {
        exchange.add_mailbox(mailbox);
    }
    let simulator = calvert_exchange_sim::start(exchange.clone())
        .await
        .map_err(DemoError::Simulator)?;
    let state = std::env::temp_dir().join(format!("calvert-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let text = CONFIG.replace("{EWS}", &simulator.ews_url());
    let mut config = ServiceConfig::from_toml(
        &text,
        &state.join("calvert.toml"),
        &crate::config::ProcessEnvironment,
        &mut core.instance(),
    )?;
    config.state_dir = state.clone();

    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(at(7, 0), SPEED));
    let timeline = Arc::new(Mutex::new(String::new()));
    let switchboard = Arc::new(Switchboard {
        clock: clock.clone(),
        shown: Mutex::new(HashMap::new()),
        down: AtomicBool::new(false),
        waiting: Mutex::new(Vec::new()),
        timeline: timeline.clone(),
    });
    let store = SledStore::open(&config.state_dir, config.cache_bytes)?;
    let mut adapters = Adapters::from_config(&config, Arc::new(store))?;
    adapters.clock = clock.clone();
    adapters
        .targets
        .insert("switchboard".into(), switchboard.clone());
    println!(
        "Calvert demo: the service against the built-in Exchange simulator ({}), one day in Stockholm at {}x speed.\n",
        simulator.ews_url(),
        SPEED
    );
    let service = ServiceHandle::start(
        config,
        core,
        adapters,
        Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_millis(800),
        },
    )
    .await?;
    if let Some(line) = crate::service::serve::first_login_text(&service) {
        println!("{}\n", line.trim_start_matches("calvert: "));
    }

    for (when, step, says) in script() {
        tokio::time::sleep(clock.real_delay_until(when)).await;
        switchboard.print(format!("· {says}"));
        happen(&exchange, &switchboard, step);
    }
    tokio::time::sleep(clock.real_delay_until(at(17, 0))).await;
    switchboard.print("· end of the day".into());
    if stay {
        println!("\nThe administration stays up: press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    }
    service.shutdown(Duration::from_secs(2)).await;
    let _ = std::fs::remove_dir_all(&state);
    let timeline = lock(&timeline).clone();
    Ok(timeline)
}

/// One step of the script: a calendar change in the simulator, or something done
/// at the switchboard.
fn happen(exchange: &Exchange, switchboard: &Switchboard, step: Step) {
    match step {
        Step::Put(mailbox, item) => exchange.put_item(mailbox, *item),
        Step::Delete(mailbox, id) => exchange.delete_item(mailbox, id),
        Step::Outage(down) => switchboard.down.store(down, Ordering::SeqCst),
        Step::ManualDivert(mailbox, reason, until) => {
            lock(&switchboard.shown).insert(
                phone_of(mailbox),
                Applied {
                    reason: reason.into(),
                    until,
                },
            );
        }
        Step::ManualClear(mailbox) => {
            lock(&switchboard.shown).remove(&phone_of(mailbox));
        }
    }
}

fn phone_of(mailbox: &str) -> String {
    match mailbox {
        KIM => "1001",
        EVA => "1002",
        _ => "1003",
    }
    .into()
}
