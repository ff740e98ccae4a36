//! The crash loop: `calvert serve` (the release binary) killed with SIGKILL at random
//! moments while four users' calendars change continually, restarted each time on
//! the same state directory; at the end the phone receiver's log proves that nothing
//! was lost, no key was reused for another call, nothing arrived out of order and no
//! phone is stale.
//!
//! The run is drawn from a seed, printed first: `CALVERT_CRASH_SEED` repeats a run
//! (the calendar changes and the kill moments; the service's own timing differs).
//! `CALVERT_CRASH_KILLS` sets the number of kills: the default is the short run of
//! `cargo test`; the long run is
//! `CALVERT_CRASH_KILLS=200 cargo test --release -p calvert --test crash_loop -- --nocapture`.

#[path = "support/audit.rs"]
mod audit;
#[path = "support/calendars.rs"]
mod calendars;
#[path = "support/phones.rs"]
mod phones;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use audit::{Audit, Ending};
use calendars::{Calendars, Dice, call_for, expected};
use calvert_exchange_sim::{Exchange, Server, start};
use phones::Phones;
use serve::{Installation, kill};

const USERS: [&str; 4] = ["kim", "eva", "ola", "aino"];

/// Kills in the short run (`cargo test`).
const SHORT_RUN_KILLS: usize = 12;

/// The final calendars have no start or end within this many seconds, so what they
/// call for cannot change while the end is checked.
const HORIZON: i64 = 600;

/// How long the last run may take to deliver everything before the audit says what
/// is missing (it bounds a failing run only).
const FINAL_LIMIT: Duration = Duration::from_secs(60);

/// What the service logs when it takes the phone's diversion for a manual one.
const HOLDING: &str = "a manual diversion is on the phone: holding";

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The seed and the number of kills, from the environment.
fn settings() -> (u64, usize) {
    let seed = std::env::var("CALVERT_CRASH_SEED")
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .expect("CALVERT_CRASH_SEED must be a number")
        })
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond() as u64);
    let kills = std::env::var("CALVERT_CRASH_KILLS")
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .expect("CALVERT_CRASH_KILLS must be a number")
        })
        .unwrap_or(SHORT_RUN_KILLS);
    (seed, kills.max(1))
}

/// The run: the world, the calendars, the dice and the logs of every start.
struct Run {
    installation: Installation,
    phones: Phones,
    calendars: Calendars,
    dice: Dice,
    logs: Vec<PathBuf>,
}

/// Panic with the log's end when the service stopped without being killed.
fn alive(child: &mut Child, log: &Path) -> Result<(), String> {
    match child.try_wait() {
        Ok(None) => Ok(()),
        other => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "calvert serve stopped by itself ({other:?}):\n{}",
                tail.join("\n")
            )
        }
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

impl Run {
    fn log(&self) -> &Path {
        self.logs.last().expect("a run has started")
    }

    /// Wait until the admin port answers: the service has started.
    async fn up(&self, child: &mut Child) {
        let log = self.log().to_path_buf();
        wait::until_async(wait::LIMIT, || {
            let dead = alive(child, &log);
            async move {
                dead?;
                self.installation.outbox_depth().await.map(|_| ())
            }
        })
        .await;
    }

    /// A few changes once the service runs, then the kill within 30 ms of the last.
    async fn right_after_a_change(&mut self, child: &mut Child) {
        self.up(child).await;
        for _ in 0..self.dice.between(1, 4) {
            tokio::time::sleep(millis(self.dice.between(0, 200))).await;
            self.calendars.change(&mut self.dice, now());
        }
        tokio::time::sleep(millis(self.dice.between(0, 30))).await;
    }

    /// Calls that certainly differ queue behind a slow receiver; the kill comes while
    /// one is applied but not yet answered (or soon after).
    async fn while_calls_are_queued(&mut self, child: &mut Child) {
        let delay = self.dice.between(150, 400);
        self.phones.set_delay(millis(delay));
        for _ in 0..self.dice.between(2, 5) {
            let user = self.dice.pick(USERS.len());
            let mailbox = self.address(user);
            self.calendars.extend(&mut self.dice, &mailbox, now());
            tokio::time::sleep(millis(self.dice.between(20, 120))).await;
        }
        let log = self.log().to_path_buf();
        let phones = self.phones.clone();
        wait::until(wait::LIMIT, || {
            alive(child, &log)?;
            match phones.answering() {
                0 => Err("no call in flight at the slow receiver".to_string()),
                _ => Ok(()),
            }
        })
        .await;
        tokio::time::sleep(millis(self.dice.between(0, delay))).await;
    }

    /// Changes now and then, the kill after a random time: mostly from when the
    /// service answers, sometimes from the spawn (which may fall in the start-up).
    async fn at_a_random_moment(&mut self, child: &mut Child) {
        if self.dice.chance(75) {
            self.up(child).await;
        }
        let end = Instant::now() + millis(self.dice.between(0, 2500));
        while Instant::now() < end {
            tokio::time::sleep(millis(self.dice.between(0, 300))).await;
            if self.dice.chance(60) {
                self.calendars.change(&mut self.dice, now());
            }
        }
        alive(child, self.log()).unwrap();
    }

    /// The last killed run: the calendars settle (nothing due within [`HORIZON`]), and
    /// the kill comes right after.
    async fn settling(&mut self, child: &mut Child) {
        self.up(child).await;
        self.calendars.settle(&mut self.dice, now(), HORIZON);
        tokio::time::sleep(millis(self.dice.between(0, 30))).await;
    }

    fn address(&self, user: usize) -> String {
        format!("{}@flexi.se", USERS[user % USERS.len()])
    }

    /// Every user's end: what the final calendar calls for and what the phone shows.
    fn endings(&self) -> Vec<Ending> {
        let now = now();
        (0..USERS.len())
            .map(|u| {
                let address = self.address(u);
                Ending {
                    expected: call_for(&expected(&self.calendars.items[&address], now)),
                    shown: call_for(&self.phones.shown(USERS[u])),
                    address,
                    phone: USERS[u].to_string(),
                }
            })
            .collect()
    }

    /// The last start: wait until the outbox is empty and every phone shows what its
    /// calendar calls for (or [`FINAL_LIMIT`] passed: the audit then says what is
    /// missing). A user held as manual after the restart (issue 16: the service can
    /// take its own re-sent diversion for a manual one) waits for the next calendar
    /// change, so such a user gets one that changes no diversion.
    async fn deliver_everything(&mut self, child: &mut Child) -> Vec<Ending> {
        let deadline = Instant::now() + FINAL_LIMIT;
        let mut nudged = BTreeSet::new();
        loop {
            alive(child, self.log()).unwrap();
            let endings = self.endings();
            let drained = self.installation.outbox_depth().await == Ok(0.0);
            let pending: Vec<&Ending> = endings.iter().filter(|e| e.shown != e.expected).collect();
            if (drained && pending.is_empty()) || Instant::now() > deadline {
                return endings;
            }
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            for ending in pending {
                let held = log
                    .lines()
                    .any(|l| l.contains(HOLDING) && l.contains(ending.address.as_str()));
                if held && nudged.insert(ending.address.clone()) {
                    self.calendars.nudge(&ending.address, now(), HORIZON);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lines in every run's log that contain `text`.
    fn log_lines(&self, text: &str) -> usize {
        self.logs
            .iter()
            .map(|log| {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                log.lines().filter(|l| l.contains(text)).count()
            })
            .sum()
    }
}

impl Run {
    /// The simulator (kept running by the caller) with the users' mailboxes, the phone
    /// receiver and the installation in `dir`; no service started yet.
    async fn start(seed: u64, dir: PathBuf) -> (Run, Server) {
        let exchange = Exchange::default();
        exchange.add_account("calvert", "secret", None);
        let addresses: Vec<String> = USERS.iter().map(|u| format!("{u}@flexi.se")).collect();
        for address in &addresses {
            exchange.add_mailbox(address);
        }
        let sim = start(exchange.clone()).await.unwrap();
        let phones = Phones::default();
        let phones_addr = phones.start().await;
        let users: Vec<(String, String)> = addresses
            .iter()
            .cloned()
            .zip(USERS.iter().map(|u| u.to_string()))
            .collect();
        let installation = Installation::new(
            dir,
            &sim.ews_url(),
            phones_addr,
            calendars::TRIGGERS,
            &users,
        );
        let run = Run {
            installation,
            phones,
            calendars: Calendars::new(exchange, &addresses),
            dice: Dice::new(seed),
            logs: Vec::new(),
        };
        (run, sim)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_nothing_is_lost_reused_reordered_or_stale() {
    let (seed, kills) = settings();
    println!("crash loop: seed {seed} (CALVERT_CRASH_SEED={seed} repeats it), {kills} kills");
    let began = Instant::now();
    let dir = std::env::temp_dir().join(format!("calvert-crash-loop-{}", std::process::id()));
    let (mut run, _sim) = Run::start(seed, dir.clone()).await;

    for round in 0..kills {
        run.logs.push(dir.join(format!("run-{round}.log")));
        run.phones.set_delay(Duration::ZERO);
        let mut child = run.installation.start(run.log());
        if round + 1 == kills {
            run.settling(&mut child).await;
        } else {
            match run.dice.pick(3) {
                0 => run.right_after_a_change(&mut child).await,
                1 => run.while_calls_are_queued(&mut child).await,
                _ => run.at_a_random_moment(&mut child).await,
            }
        }
        kill(&mut child);
    }

    run.logs.push(dir.join("last.log"));
    run.phones.set_delay(Duration::ZERO);
    let mut child = run.installation.start(run.log());
    let endings = run.deliver_everything(&mut child).await;
    kill(&mut child);

    let figures = audit::audit(&run.phones.received(), &endings);
    let holding = run.log_lines(HOLDING);
    println!(
        "crash loop: seed {seed}, kills {kills}, calendar changes {}, calls {}, re-sent after a kill {}, lost {}, duplicated {}, out of order {}, stale {}, misdirected {}, \"holding\" lines {holding}, {:.0} s",
        run.calendars.changes,
        figures.calls,
        figures.resent,
        figures.lost,
        figures.duplicated,
        figures.out_of_order,
        figures.stale,
        figures.misdirected,
        began.elapsed().as_secs_f64()
    );
    let faults = Audit {
        calls: figures.calls,
        resent: figures.resent,
        ..Audit::default()
    };
    assert_eq!(
        figures,
        faults,
        "seed {seed}: the receiver's log {:#?}\nthe ends {:#?}",
        run.phones.received(),
        endings
            .iter()
            .map(|e| (&e.address, &e.expected, &e.shown))
            .collect::<Vec<_>>()
    );
    // "holding" lines are counted, not asserted: before issue 16's fix (one snapshot
    // per step) the service took its own re-sent diversion for a manual one after about
    // one kill in nine; docs/reliability.md has the figures before and after.
    assert_eq!(
        run.log_lines(calendars::PRIVATE_WORD),
        0,
        "a subject reached a log"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
