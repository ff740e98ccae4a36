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

use crate::lock::lock;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use calvert_exchange_sim::{Exchange, SimItem};

use crate::DecisionCore;
use crate::config::ServiceConfig;
use crate::diversion::{DiversionTarget, Phone, TargetError};
use crate::service::{Adapters, Backoff, Clock, ScaledClock, ServiceHandle};
use crate::store::{Applied, DiversionCall, OutboxEntry, SledStore};

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

/// The demo's telephony system: prints calls, keeps phones, can be down.
struct Switchboard {
    clock: Arc<dyn Clock>,
    shown: Mutex<HashMap<String, Applied>>,
    down: AtomicBool,
    /// Keys already reported as waiting, so an outage prints one line per call.
    waiting: Mutex<Vec<String>>,
    timeline: Arc<Mutex<String>>,
}

impl Switchboard {
    fn print(&self, line: String) {
        let line = format!("{}  {line}", local(self.clock.now()));
        println!("{line}");
        let mut timeline = lock(&self.timeline);
        let _ = writeln!(timeline, "{line}");
    }
}

#[async_trait]
impl DiversionTarget for Switchboard {
    fn name(&self) -> &str {
        "switchboard"
    }

    async fn apply(&self, phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError> {
        if self.down.load(Ordering::SeqCst) {
            let key = entry.idempotency_key();
            let mut waiting = lock(&self.waiting);
            if !waiting.contains(&key) {
                waiting.push(key);
                drop(waiting);
                self.print(format!(
                    "{:<14} telephony down: the call waits in the outbox",
                    phone.address
                ));
            }
            return Err(TargetError::Unavailable {
                target: "switchboard".into(),
                detail: "outage".into(),
            });
        }
        let mut shown = lock(&self.shown);
        match &entry.call {
            DiversionCall::Set { reason, until, .. } => {
                shown.insert(
                    phone.telephony_id.clone(),
                    Applied {
                        reason: reason.clone(),
                        until: *until,
                    },
                );
                drop(shown);
                self.print(format!(
                    "{:<14} SET    {reason:<8} until {}",
                    phone.address,
                    local(*until)
                ));
            }
            DiversionCall::Clear => {
                shown.remove(&phone.telephony_id);
                drop(shown);
                self.print(format!("{:<14} CLEAR", phone.address));
            }
        }
        Ok(())
    }

    async fn observe(&self, phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(TargetError::Unavailable {
                target: "switchboard".into(),
                detail: "outage".into(),
            });
        }
        let shown = lock(&self.shown);
        Ok(Some(shown.get(&phone.telephony_id).cloned()))
    }
}

enum Step {
    Put(&'static str, SimItem),
    Delete(&'static str, &'static str),
    ManualDivert(&'static str, &'static str, i64),
    ManualClear(&'static str),
    Outage(bool),
}

fn item(id: &str, subject: &str, start: i64, end: i64) -> SimItem {
    SimItem::appointment(id, subject, start, end)
}

fn invitation(id: &str, subject: &str, start: i64, end: i64, response: &str) -> SimItem {
    let mut meeting = item(id, subject, start, end);
    meeting.is_meeting = true;
    meeting.my_response = response.into();
    meeting
}

/// The day: (local time, what happens, what the timeline says).
fn script() -> Vec<(i64, Step, &'static str)> {
    let mut course = item("eva-course", "Kurs: säker telefoni", DAY, DAY + 86_400);
    course.all_day = true;
    let mut vacation = item("ola-oof", "Semester", DAY - 86_400, DAY + 2 * 86_400);
    vacation.free_busy = "OOF".into();
    let (kim, eva, ola) = ("kim@flexi.se", "eva@flexi.se", "ola@flexi.se");
    vec![
        (
            at(7, 20),
            Step::Put(
                kim,
                invitation(
                    "kim-1",
                    "Möte om budget",
                    at(9, 0),
                    at(10, 0),
                    "NoResponseReceived",
                ),
            ),
            "kim is invited to a budget meeting 09:00–10:00",
        ),
        (
            at(7, 25),
            Step::Put(eva, course),
            "eva is on an all-day course",
        ),
        (
            at(7, 26),
            Step::Put(
                eva,
                item("eva-lunch", "Lunch med kursen", at(11, 30), at(12, 30)),
            ),
            "eva books lunch 11:30–12:30 during the course",
        ),
        (
            at(7, 30),
            Step::Put(ola, vacation),
            "ola sets out-of-office (vacation)",
        ),
        (
            at(8, 15),
            Step::Put(
                kim,
                invitation("kim-1", "Möte om budget", at(9, 0), at(10, 0), "Accept"),
            ),
            "kim accepts the budget meeting",
        ),
        (
            at(8, 20),
            Step::Put(
                kim,
                invitation(
                    "kim-2",
                    "Styrelsemöte",
                    at(13, 0),
                    at(14, 0),
                    "NoResponseReceived",
                ),
            ),
            "kim is invited to a board meeting 13:00–14:00",
        ),
        (
            at(8, 25),
            Step::Put(
                kim,
                invitation("kim-2", "Styrelsemöte", at(13, 0), at(14, 0), "Decline"),
            ),
            "kim declines the board meeting",
        ),
        (
            at(9, 20),
            Step::Put(
                kim,
                invitation(
                    "kim-1",
                    "Möte om budget",
                    at(9, 30),
                    at(10, 30),
                    "NoResponseReceived",
                ),
            ),
            "the organizer moves the budget meeting to 09:30–10:30",
        ),
        (
            at(9, 25),
            Step::Put(
                kim,
                invitation("kim-1", "Möte om budget", at(9, 30), at(10, 30), "Accept"),
            ),
            "kim accepts the new time",
        ),
        (
            at(10, 45),
            Step::Put(kim, item("kim-3", "Lunch", at(11, 0), at(11, 45))),
            "kim books lunch 11:00–11:45",
        ),
        (
            at(11, 10),
            Step::Put(kim, item("kim-3", "Lunch", at(11, 0), at(12, 15))),
            "kim stretches lunch to 12:15",
        ),
        (
            at(12, 10),
            Step::Outage(true),
            "the telephony system goes down",
        ),
        (
            at(12, 45),
            Step::Outage(false),
            "the telephony system is back",
        ),
        (
            at(13, 0),
            Step::ManualDivert(ola, "SICK", at(17, 0)),
            "the switchboard diverts ola by hand (SICK)",
        ),
        (
            at(15, 0),
            Step::ManualClear(ola),
            "the switchboard removes ola's manual diversion",
        ),
        (
            at(15, 30),
            Step::Put(kim, item("kim-4", "Tandläkare", at(16, 0), at(17, 0))),
            "kim books the dentist 16:00–17:00",
        ),
        (
            at(15, 50),
            Step::Delete(kim, "kim-4"),
            "kim cancels the dentist",
        ),
    ]
}

const CONFIG: &str = r#"
[service]
admin_listen = ""
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
pub fn run(core: DecisionCore) -> Result<String, DemoError> {
    let runtime = tokio::runtime::Runtime::new().map_err(DemoError::Runtime)?;
    runtime.block_on(play(core))
}

async fn play(core: DecisionCore) -> Result<String, DemoError> {
    let exchange = Exchange::default();
    exchange.add_account("calvert", "demo", None);
    for mailbox in ["kim@flexi.se", "eva@flexi.se", "ola@flexi.se"] {
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

    for (when, step, says) in script() {
        tokio::time::sleep(clock.real_delay_until(when)).await;
        switchboard.print(format!("· {says}"));
        match step {
            Step::Put(mailbox, item) => exchange.put_item(mailbox, item),
            Step::Delete(mailbox, id) => exchange.delete_item(mailbox, id),
            Step::Outage(down) => switchboard.down.store(down, Ordering::SeqCst),
            Step::ManualDivert(mailbox, reason, until) => {
                let phone = phone_of(mailbox);
                lock(&switchboard.shown).insert(
                    phone,
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
    tokio::time::sleep(clock.real_delay_until(at(17, 0))).await;
    switchboard.print("· end of the day".into());
    service.shutdown(Duration::from_secs(2)).await;
    let _ = std::fs::remove_dir_all(&state);
    let timeline = lock(&timeline).clone();
    Ok(timeline)
}

fn phone_of(mailbox: &str) -> String {
    match mailbox {
        "kim@flexi.se" => "1001",
        "eva@flexi.se" => "1002",
        _ => "1003",
    }
    .into()
}
