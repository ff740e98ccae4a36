//! Per-call cost of `decide`: native vs component, reused vs fresh instance.
//!
//! Run: `cargo bench -p calvert-tests --bench decide`. Results go to
//! docs/benchmarks.md by hand, with this command.

use std::hint::black_box;

use calvert_core as native;
use calvert_tests::generate::{BASE, bench_triggers, week_of_items};
use calvert_tests::{Convert, core};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn decide(c: &mut Criterion) {
    let policy = native::DecidePolicy::default();
    let triggers = bench_triggers();
    let trigger_set = native::TriggerSet::new(&triggers).expect("valid triggers");
    let zone = native::zone::Zone::parse("Europe/Stockholm").expect("known zone");
    let now = BASE + 10 * 3600;
    let mut group = c.benchmark_group("decide");
    for n in [10usize, 100, 1000] {
        let items = week_of_items(n);
        let wit_items = items.convert();
        let wit_policy = policy.convert();
        let wit_triggers = triggers.convert();
        group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
            b.iter(|| {
                native::decide::decide_with_config(
                    black_box(&items),
                    &policy,
                    &triggers,
                    "Europe/Stockholm",
                    now,
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("native-prevalidated", n), &n, |b, _| {
            b.iter(|| native::decide(black_box(&items), &policy, &trigger_set, &zone, now))
        });
        let mut instance = core().instance();
        group.bench_with_input(BenchmarkId::new("component-reused", n), &n, |b, _| {
            b.iter(|| {
                instance
                    .decide(
                        black_box(&wit_items),
                        &wit_policy,
                        &wit_triggers,
                        "Europe/Stockholm",
                        now,
                    )
                    .unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("component-fresh", n), &n, |b, _| {
            b.iter(|| {
                core()
                    .instance()
                    .decide(
                        black_box(&wit_items),
                        &wit_policy,
                        &wit_triggers,
                        "Europe/Stockholm",
                        now,
                    )
                    .unwrap()
            })
        });
        // Where the time goes: the same items through `fingerprint`-free `validate-config`
        // costs no lowering; `decide` with nothing eligible costs lowering + grouping.
        let none = native::DecidePolicy {
            divert_on: vec![],
            ..native::DecidePolicy::default()
        }
        .convert();
        group.bench_with_input(
            BenchmarkId::new("component-lowering-only", n),
            &n,
            |b, _| {
                b.iter(|| {
                    instance
                        .decide(black_box(&wit_items), &none, &[], "UTC", now)
                        .unwrap()
                })
            },
        );
        let mut lean = items.clone();
        for item in &mut lean {
            item.change_key.clear();
            item.location.clear();
        }
        let lean = lean.convert();
        group.bench_with_input(
            BenchmarkId::new("component-lowering-only-lean", n),
            &n,
            |b, _| {
                b.iter(|| {
                    instance
                        .decide(black_box(&lean), &none, &[], "UTC", now)
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
