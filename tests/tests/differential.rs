//! Native and component give identical answers (semantics.md: "Same input,
//! byte-identical output, natively and inside the WebAssembly component").
//!
//! Thousands of generated requests of every kind, valid and invalid, go through
//! `calvert_core::eval::run` natively and through the component's `eval` export;
//! the typed exports are compared with the native functions on the same inputs.

use calvert::CoreError;
use calvert_core as native;
use calvert_testgen::strategy::{decide_input, now, route_input, sync_input, trigger_input, zone};
use calvert_testgen::{DecideInput, Inputs, ItemShape, SyncInput, Times};
use calvert_tests::generate::{self, BASE};
use calvert_tests::{Convert, instance};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The native answer and the component's agree: equal values, or equal problems.
fn same<A, B>(
    native: Result<A, Vec<native::Problem>>,
    component: Result<B, CoreError>,
    what: &str,
) -> Result<(), TestCaseError>
where
    A: PartialEq + std::fmt::Debug,
    B: Convert<A> + std::fmt::Debug,
{
    match (native, component) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b.convert(), "{}", what),
        (Err(a), Err(CoreError::Rejected(b))) => prop_assert_eq!(a, b.convert(), "{}", what),
        (a, b) => prop_assert!(false, "{what}: native {a:?} but component {b:?}"),
    }
    Ok(())
}

#[test]
fn eval_answers_are_byte_identical() {
    let core = std::cell::RefCell::new(instance());
    let mut runner = TestRunner::new(cases(6000));
    // What the generated requests covered, so the test cannot pass vacuously.
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<&str, usize>::new());
    runner
        .run(&generate::eval_request(), |request| {
            let here = native::eval::run(&request);
            let kind = match &here {
                Err(e) => {
                    if std::env::var("SHOW_REJECTED").is_ok() {
                        eprintln!("REJ {}", &e[..e.len().min(90)]);
                    }
                    "rejected"
                }
                Ok(a) if a.answer.contains("\"diversion\": {") => "diverted",
                Ok(a) if a.answer.contains("\"diversion\": null") => "not diverted",
                Ok(a) if a.answer.contains("\"action\"") => "sync actions",
                Ok(a) if a.answer.contains("\"server\": \"") => "routed",
                Ok(a) if a.answer.contains("\"word\"") => "trigger found",
                Ok(a) if a.answer.contains("\"fingerprint\"") => "fingerprint",
                Ok(_) => "other",
            };
            *seen.borrow_mut().entry(kind).or_default() += 1;
            let there = core
                .borrow_mut()
                .eval(&request)
                .expect("the component does not trap")
                .map(|a| a.convert());
            prop_assert_eq!(here, there, "request: {}", request);
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    eprintln!("eval requests by outcome: {seen:?}");
    if runner.config().cases >= 1000 {
        for kind in [
            "rejected",
            "diverted",
            "not diverted",
            "sync actions",
            "routed",
            "trigger found",
            "fingerprint",
        ] {
            assert!(
                seen.get(kind).copied().unwrap_or(0) >= 10,
                "too few {kind:?} cases: {seen:?}"
            );
        }
    }
}

#[test]
fn typed_decide_is_identical() {
    let core = std::cell::RefCell::new(instance());
    let mut runner = TestRunner::new(cases(3000));
    runner
        .run(&decide_input(ItemShape::TWO_DAYS), |input| {
            let DecideInput {
                items,
                policy,
                triggers,
                zone,
                now,
                ..
            } = input;
            let here = native::decide::decide_with_config(&items, &policy, &triggers, &zone, now);
            let there = core.borrow_mut().decide(
                &items.convert(),
                &policy.convert(),
                &triggers.convert(),
                &zone,
                now,
            );
            same(here, there, "decide")?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn typed_plan_sync_is_identical() {
    let core = std::cell::RefCell::new(instance());
    let mut runner = TestRunner::new(cases(2000));
    let input = sync_input(ItemShape::TWO_DAYS_EXCHANGE, ItemShape::TWO_DAYS_BUSINESS);
    runner
        .run(&input, |input| {
            let SyncInput {
                exchange,
                business,
                mapping,
                policy,
                now,
            } = input;
            let here = native::plan_sync(&exchange, &business, &mapping, &policy, now);
            let there = core.borrow_mut().plan_sync(
                &exchange.convert(),
                &business.convert(),
                &mapping.convert(),
                &policy.convert(),
                now,
            );
            same(here, there, "plan-sync")?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn typed_route_trigger_reconcile_and_zones_are_identical() {
    let core = std::cell::RefCell::new(instance());
    let mut runner = TestRunner::new(cases(2000));
    let phone = || {
        prop::option::of((prop::sample::select(vec!["A", "B"]), 0i64..3)).prop_map(|d| {
            d.map(|(r, u)| native::PhoneDiversion {
                reason: r.into(),
                until: u,
            })
        })
    };
    let input = (
        route_input(Inputs::Mixed),
        trigger_input(Inputs::Mixed),
        phone(),
        phone(),
        phone(),
        zone(Inputs::Mixed),
        now(Times::TWO_DAYS),
    );
    runner
        .run(
            &input,
            |(route, trigger, desired, last, shown, zone, now)| {
                let (address, rules) = (route.address, route.rules);
                let (subject, triggers) = (trigger.subject, trigger.triggers);
                let r_native = native::route(&address, &rules);
                let r_component = core.borrow_mut().route(&address, &rules.convert());
                same(r_native, r_component, "route")?;
                let t_native = native::resolve_trigger(&subject, &triggers);
                let t_component = core
                    .borrow_mut()
                    .resolve_trigger(&subject, &triggers.convert());
                same(t_native, t_component, "trigger")?;
                let observed = match &shown {
                    Some(d) => native::Observation::Present(d.clone()),
                    None => native::Observation::None,
                };
                let a = native::reconcile(desired.as_ref(), last.as_ref(), &observed);
                let b = core
                    .borrow_mut()
                    .reconcile(
                        desired.convert().as_ref(),
                        last.convert().as_ref(),
                        &observed.convert(),
                    )
                    .unwrap();
                prop_assert_eq!(a, b.convert());
                let local_native =
                    native::zone::Zone::parse(&zone).and_then(|z| z.local_string(now));
                let local_component = core.borrow_mut().instant_to_local(now, &zone);
                prop_assert_eq!(local_native.ok(), local_component.ok());
                Ok(())
            },
        )
        .unwrap();
    let _ = BASE;
}

#[test]
fn a_reused_instance_answers_like_a_fresh_one() {
    let items = generate::week_of_items(100);
    let policy = native::DecidePolicy::default().convert();
    let triggers = generate::bench_triggers().convert();
    let mut reused = instance();
    for step in 0..50 {
        let now = BASE + step * 3600;
        let a = reused
            .decide(
                &items.convert(),
                &policy,
                &triggers,
                "Europe/Stockholm",
                now,
            )
            .unwrap();
        let b = instance()
            .decide(
                &items.convert(),
                &policy,
                &triggers,
                "Europe/Stockholm",
                now,
            )
            .unwrap();
        assert_eq!(a, b);
    }
}
