//! Where a component `decide` call spends its time, counted in instructions:
//!
//! ```sh
//! cargo build --release -p calvert-tests --example profile_decide
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measure*' \
//!     target/release/examples/profile_decide 100
//! callgrind_annotate callgrind.out.<pid> | head -40
//! ```
//!
//! Only `measure` (the calls, after warm-up and compilation) is counted. JIT-compiled
//! guest code shows as `???`; wasmtime's lowering and lifting as their Rust names.

use calvert_core as native;
use calvert_tests::generate::{BASE, bench_triggers, week_of_items};
use calvert_tests::{Convert, core};

#[inline(never)]
fn measure(run: &mut dyn FnMut(), times: usize) {
    for _ in 0..times {
        run();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let which = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "component".into());
    let items = week_of_items(n);
    let policy = native::DecidePolicy::default();
    let triggers = bench_triggers();
    let now = BASE + 10 * 3600;
    if which == "native" {
        let mut run = || {
            std::hint::black_box(
                native::decide::decide_with_config(
                    &items,
                    &policy,
                    &triggers,
                    "Europe/Stockholm",
                    now,
                )
                .unwrap(),
            );
        };
        run();
        measure(&mut run, 1000);
    } else {
        let (wit_items, wit_policy, wit_triggers) =
            (items.convert(), policy.convert(), triggers.convert());
        let mut instance = core().instance();
        let mut run = || {
            std::hint::black_box(
                instance
                    .decide(
                        &wit_items,
                        &wit_policy,
                        &wit_triggers,
                        "Europe/Stockholm",
                        now,
                    )
                    .unwrap(),
            );
        };
        run();
        measure(&mut run, 1000);
    }
}
