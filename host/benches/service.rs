//! The service at scale: 1,000 and 10,000 mailboxes on the built-in Exchange
//! simulator (in this process), a sled store, and a counting diversion target.
//!
//! `cargo bench -p calvert --bench service` (sizes: `CALVERT_BENCH_MAILBOXES=1000,10000`)
//!
//! Measures, per size:
//! - start-up: every mailbox subscribed (streaming, groups of 200) and read once;
//! - memory per idle mailbox: the heap Calvert's threads hold once every mailbox is
//!   subscribed and idle, less what they held before the service started, divided by
//!   the mailboxes (the simulator runs on its own runtime, whose threads' allocations
//!   are counted apart); and the whole process's resident-set growth, an upper bound;
//! - notification → confirmed diversion call, p50/p99, over a sample of mailboxes
//!   whose items change one after another;
//! - the burst: every mailbox has an item starting at the same second; the time until
//!   every diversion is issued, and each call's lateness after the boundary;
//! - CPU seconds (user + system) of the process for each phase.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use calvert::DecisionCore;
use calvert::config::ServiceConfig;
use calvert::diversion::{DiversionTarget, Phone, TargetError};
use calvert::service::{Adapters, Backoff, ServiceHandle};
use calvert::store::{Applied, OutboxEntry, SledStore};
use calvert_exchange_sim::{Exchange, SimItem};

/// Live heap bytes, split between the simulator's threads and everyone else's.
struct CountingAllocator;

static CALVERT_HEAP: AtomicIsize = AtomicIsize::new(0);
static SIMULATOR_HEAP: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static ON_SIMULATOR_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn heap_of_this_thread() -> &'static AtomicIsize {
    if ON_SIMULATOR_THREAD.try_with(Cell::get).unwrap_or(false) {
        &SIMULATOR_HEAP
    } else {
        &CALVERT_HEAP
    }
}

// SAFETY: every call is passed to the system allocator unchanged; only counters move.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        heap_of_this_thread().fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        heap_of_this_thread().fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        heap_of_this_thread().fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above, for `realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

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

async fn run(mailboxes: usize, core: DecisionCore, simulator_runtime: &tokio::runtime::Runtime) {
    println!("\n## {mailboxes} mailboxes\n");
    let exchange = Exchange::default();
    exchange.add_account("calvert", "bench", None);
    let addresses: Vec<String> = (0..mailboxes)
        .map(|i| format!("user{i}@flexi.se"))
        .collect();
    for address in &addresses {
        exchange.add_mailbox(address);
    }
    let simulator = simulator_runtime
        .spawn(calvert_exchange_sim::start(exchange.clone()))
        .await
        .unwrap()
        .unwrap();
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
    let store = Arc::new(SledStore::open(&config.state_dir, config.cache_bytes).unwrap());
    let counter = Arc::new(Counter::default());
    let adapters = Adapters::from_config(&config, store.clone()).unwrap();
    adapters.targets.insert("counter".into(), counter.clone());

    let rss_before = rss_bytes();
    let heap_before = CALVERT_HEAP.load(Ordering::Relaxed);
    let cpu = cpu_seconds();
    let started = Instant::now();
    let service = ServiceHandle::start(config, core, adapters, Backoff::default())
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
    let heap_per_mailbox =
        (CALVERT_HEAP.load(Ordering::Relaxed) - heap_before) as f64 / mailboxes as f64;

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
    // They all start together and end spread over a minute (the next phase).
    let end_of = |i: usize| 40 + (i % 60) as i64;
    for (i, address) in addresses.iter().enumerate() {
        exchange.put_item(
            address,
            SimItem::appointment("b", "Möte", boundary, boundary + end_of(i)),
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
    let flushes = store.flushes();
    wait_until("the burst", Duration::from_secs(300), || {
        counter.total() >= calls_before + mailboxes
    })
    .await;
    let burst_cpu = cpu_seconds() - cpu;
    let burst_flushes = store.flushes() - flushes;
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

    // Ordinary boundaries: the items end spread over a minute (~mailboxes/60 a second);
    // each clear's lateness after its item's end.
    let calls_before = counter.total();
    let cpu = cpu_seconds();
    wait_until("the clears at the ends", Duration::from_secs(300), || {
        counter.total() >= calls_before + mailboxes
    })
    .await;
    let ends_cpu = cpu_seconds() - cpu;
    let mut end_lateness: Vec<f64> = (0..mailboxes)
        .map(|i| {
            let end = boundary_at + Duration::from_secs(end_of(i) as u64);
            let arrived = counter.last(&i.to_string()).unwrap();
            arrived.saturating_duration_since(end).as_secs_f64() * 1000.0
        })
        .collect();
    end_lateness.sort_by(f64::total_cmp);
    let cleared_early = (0..mailboxes)
        .filter(|i| {
            counter.last(&i.to_string()).unwrap()
                < boundary_at + Duration::from_secs(end_of(*i) as u64)
        })
        .count();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| start-up (subscribe + first read of every mailbox) | {:.1} s, {startup_cpu:.1} CPU s |",
        startup.as_secs_f64()
    );
    println!(
        "| Calvert's heap per idle mailbox | {:.1} KiB |",
        heap_per_mailbox / 1024.0
    );
    println!(
        "| whole-process resident growth per idle mailbox (simulator included) | {:.1} KiB |",
        per_mailbox / 1024.0
    );
    println!(
        "| notification → confirmed call, p50 / p99 / max ({sample} changes, 4 ms apart) | {:.1} / {:.1} / {:.1} ms ({notify_cpu:.1} CPU s) |",
        percentile(&latency, 50.0),
        percentile(&latency, 99.0),
        latency.last().copied().unwrap_or(0.0)
    );
    println!(
        "| burst: {mailboxes} diversions due at the same second, all issued after | {all_issued:.0} ms ({burst_cpu:.1} CPU s, {burst_flushes} disk flushes for {} durable writes; setting up the {mailboxes} future items: {setup_cpu:.1} CPU s) |",
        2 * mailboxes
    );
    println!(
        "| lateness in the burst, p50 / p99 / max | {:.0} / {:.0} / {:.0} ms |",
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        all_issued
    );
    println!(
        "| lateness at ordinary boundaries (the {mailboxes} items end spread over a minute), p50 / p99 / max | {:.0} / {:.0} / {:.0} ms ({ends_cpu:.1} CPU s) |",
        percentile(&end_lateness, 50.0),
        percentile(&end_lateness, 99.0),
        end_lateness.last().copied().unwrap_or(0.0)
    );
    println!(
        "| calls issued before their boundary (must be 0) | {} |",
        early + cleared_early
    );
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
    let simulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(|| ON_SIMULATOR_THREAD.with(|flag| flag.set(true)))
        .build()
        .unwrap();
    for size in sizes {
        runtime.block_on(run(size, core.clone(), &simulator_runtime));
    }
}
