//! The service at scale: 1,000 and 10,000 mailboxes on the built-in Exchange
//! simulator (in this process), a sled store, and a counting diversion target.
//!
//! `cargo bench -p calvert --bench service` (sizes: `CALVERT_BENCH_MAILBOXES=1000,10000`)
//!
//! Measures, per size:
//! - start-up: every mailbox subscribed (streaming, groups of 200) and read once;
//! - memory per idle mailbox: resident set growth from starting the service, divided
//!   by the mailboxes (an upper bound: the simulator's subscription state is in it);
//! - notification → confirmed diversion call, p50/p99, over a sample of mailboxes
//!   whose items change one after another;
//! - the burst: every mailbox has an item starting at the same second; the time until
//!   every diversion is issued, and each call's lateness after the boundary;
//! - CPU seconds (user + system) of the process for each phase.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use calvert::DecisionCore;
use calvert::config::ServiceConfig;
use calvert::diversion::{DiversionTarget, Phone, TargetError};
use calvert::service::{Adapters, DeliveryRetry, ServiceHandle};
use calvert::store::{Applied, OutboxEntry, SledStore};
use calvert_exchange_sim::{Exchange, SimItem};

/// Records when each phone's calls arrive.
#[derive(Default)]
struct Counter {
    arrivals: Mutex<HashMap<String, Vec<Instant>>>,
}

#[async_trait]
impl DiversionTarget for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    async fn apply(&self, phone: &Phone, _entry: &OutboxEntry) -> Result<(), TargetError> {
        self.arrivals
            .lock()
            .unwrap()
            .entry(phone.telephony_id.clone())
            .or_default()
            .push(Instant::now());
        Ok(())
    }

    async fn observe(&self, _phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        Ok(None)
    }
}

impl Counter {
    fn total(&self) -> usize {
        self.arrivals.lock().unwrap().values().map(Vec::len).sum()
    }

    fn calls(&self, phone: &str) -> usize {
        self.arrivals.lock().unwrap().get(phone).map_or(0, Vec::len)
    }

    fn first(&self, phone: &str) -> Option<Instant> {
        self.arrivals.lock().unwrap().get(phone)?.first().copied()
    }

    fn last(&self, phone: &str) -> Option<Instant> {
        self.arrivals.lock().unwrap().get(phone)?.last().copied()
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat (utime, stime), counted after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        if std::env::var_os("CALVERT_BENCH_DEBUG").is_some() {
            eprintln!("waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(mailboxes: usize, core: DecisionCore) {
    println!("\n## {mailboxes} mailboxes\n");
    let exchange = Exchange::default();
    exchange.add_account("calvert", "bench", None);
    let addresses: Vec<String> = (0..mailboxes)
        .map(|i| format!("user{i}@flexi.se"))
        .collect();
    for address in &addresses {
        exchange.add_mailbox(address);
    }
    let simulator = calvert_exchange_sim::start(exchange.clone()).await.unwrap();
    let mut text = format!(
        r#"
        [service]
        admin_listen = ""
        debounce_ms = 20
        [[exchange]]
        name = "sim"
        url = "{}"
        ssl = false
        auth = "basic"
        user = "calvert"
        password = "bench"
        timeout_ms = 60000
        [[rule]]
        server = "sim"
        pattern = "flexi.se"
        [[telephony]]
        name = "counter"
        kind = "log"
        [[telephony_rule]]
        target = "counter"
        pattern = "*"
        "#,
        simulator.ews_url()
    );
    for (i, address) in addresses.iter().enumerate() {
        text += &format!(
            "[[user]]\naddress = \"{address}\"\nintegration_id = \"{i}\"\ntelephony_id = \"{i}\"\n"
        );
    }
    let dir =
        std::env::temp_dir().join(format!("calvert-bench-{}-{mailboxes}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = ServiceConfig::from_toml(
        &text,
        &dir.join("calvert.toml"),
        &std::collections::BTreeMap::new(),
        &mut core.instance(),
    )
    .unwrap();
    config.state_dir = dir.clone();
    let store = SledStore::open(&config.state_dir, config.cache_bytes).unwrap();
    let counter = Arc::new(Counter::default());
    let mut adapters = Adapters::from_config(&config, Arc::new(store)).unwrap();
    adapters.targets.insert("counter".into(), counter.clone());

    let rss_before = rss_bytes();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let service = ServiceHandle::start(config, core, adapters, DeliveryRetry::default())
        .await
        .unwrap();
    // Start-up is over when every mailbox is subscribed and has been read once.
    wait_until("start-up", Duration::from_secs(600), || {
        let metrics = service.metrics();
        if std::env::var_os("CALVERT_BENCH_DEBUG").is_some() {
            eprintln!(
                "subscriptions {} reads {}",
                metric(&metrics, "calvert_subscriptions"),
                metric(&metrics, "calvert_calendar_reads_total{outcome=\"ok\"}")
            );
        }
        metric(&metrics, "calvert_subscriptions") >= mailboxes as f64
            && metric(&metrics, "calvert_calendar_reads_total{outcome=\"ok\"}") >= mailboxes as f64
    })
    .await;
    let startup = started.elapsed();
    let startup_cpu = cpu_seconds() - cpu;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_bytes();
    let per_mailbox = rss_idle.saturating_sub(rss_before) as f64 / mailboxes as f64;

    // Notification → call latency: one change at a time, 4 ms apart.
    let sample = mailboxes.min(1000);
    let t = now();
    let cpu = cpu_seconds();
    let mut sent = Vec::with_capacity(sample);
    for (i, address) in addresses.iter().take(sample).enumerate() {
        sent.push(Instant::now());
        // Short, so it is over (and cleared) before the burst below.
        exchange.put_item(address, SimItem::appointment("n", "Lunch", t - 60, t + 8));
        tokio::time::sleep(Duration::from_millis(4)).await;
        let _ = i;
    }
    wait_until("notification calls", Duration::from_secs(120), || {
        (0..sample).all(|i| counter.calls(&i.to_string()) >= 1)
    })
    .await;
    let notify_cpu = cpu_seconds() - cpu;
    let mut latency: Vec<f64> = (0..sample)
        .map(|i| {
            let arrived = counter.first(&i.to_string()).unwrap();
            arrived.duration_since(sent[i]).as_secs_f64() * 1000.0
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    // Those items end: wait for their clears, so the burst starts from quiet phones.
    wait_until("the clears", Duration::from_secs(120), || {
        (0..sample).all(|i| counter.calls(&i.to_string()) >= 2)
    })
    .await;

    // The burst: every mailbox has an item starting at the same second.
    let calls_before = counter.total();
    let boundary = now() + 20 + (mailboxes / 1000) as i64;
    let cpu_setup = cpu_seconds();
    for address in &addresses {
        exchange.put_item(
            address,
            SimItem::appointment("b", "Möte", boundary, boundary + 1800),
        );
    }
    // Wait for the boundary to pass, then for every call.
    let boundary_at = {
        let wait = boundary * 1000 - jiff::Timestamp::now().as_millisecond();
        assert!(
            wait > 0,
            "setting up the burst took past the boundary; raise the lead time"
        );
        Instant::now() + Duration::from_millis(wait as u64)
    };
    let setup_cpu = cpu_seconds() - cpu_setup;
    tokio::time::sleep_until(boundary_at.into()).await;
    let cpu = cpu_seconds();
    wait_until("the burst", Duration::from_secs(300), || {
        counter.total() >= calls_before + mailboxes
    })
    .await;
    let burst_cpu = cpu_seconds() - cpu;
    let mut lateness: Vec<f64> = (0..mailboxes)
        .map(|i| {
            let arrived = counter.last(&i.to_string()).unwrap();
            arrived.saturating_duration_since(boundary_at).as_secs_f64() * 1000.0
        })
        .collect();
    lateness.sort_by(f64::total_cmp);
    let all_issued = lateness.last().copied().unwrap_or(0.0);
    let early = (0..mailboxes)
        .filter(|i| counter.last(&i.to_string()).unwrap() < boundary_at)
        .count();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| start-up (subscribe + first read of every mailbox) | {:.1} s, {startup_cpu:.1} CPU s |",
        startup.as_secs_f64()
    );
    println!(
        "| resident memory growth per idle mailbox | {:.1} KiB |",
        per_mailbox / 1024.0
    );
    println!(
        "| notification → confirmed call, p50 / p99 / max ({sample} changes, 4 ms apart) | {:.1} / {:.1} / {:.1} ms ({notify_cpu:.1} CPU s) |",
        percentile(&latency, 50.0),
        percentile(&latency, 99.0),
        latency.last().copied().unwrap_or(0.0)
    );
    println!(
        "| burst: {mailboxes} diversions due at the same second, all issued after | {all_issued:.0} ms ({burst_cpu:.1} CPU s; setting up the {mailboxes} future items: {setup_cpu:.1} CPU s) |"
    );
    println!(
        "| lateness at the boundary, p50 / p99 / max | {:.0} / {:.0} / {:.0} ms |",
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        all_issued
    );
    println!("| calls issued before the boundary (must be 0) | {early} |");
    service.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A metric's value from the Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

fn main() {
    // `cargo test --benches` runs benches with --test-ish arguments: only run on `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("CALVERT_BENCH_MAILBOXES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let core = DecisionCore::load().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "# calvert service benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for size in sizes {
        runtime.block_on(run(size, core.clone()));
    }
}
