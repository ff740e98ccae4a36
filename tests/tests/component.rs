//! The component as the host runs it: no ambient authority, bounded, isolated.

use calvert::component::wit::{self, DecidePolicy, FreeBusy, ReturnTime, Trigger};
use std::time::Duration;

use calvert::{CoreError, DecisionCore};
use calvert_tests::generate::{BASE, week_of_items};
use calvert_tests::{Convert, core};

fn policy() -> DecidePolicy {
    DecidePolicy {
        divert_on: vec![FreeBusy::Busy, FreeBusy::Oof],
        count_tentative_response: false,
        default_reason: "back".into(),
        oof_reason: None,
        return_time: ReturnTime::BlockEnd,
    }
}

#[test]
fn the_component_imports_nothing() {
    // No WASI, no host functions: the core cannot read a clock, randomness, the
    // environment or files, because nothing of the kind is linked into it.
    assert_eq!(core().imports(), Vec::<String>::new());
    assert_eq!(
        core().exports(),
        vec!["calvert:core/engine@0.1.0".to_string()]
    );
}

#[test]
fn neither_the_component_nor_the_core_module_imports_anything() {
    // Walk the binary. The outermost component has no import section; nested
    // components made by wit-component only import what the outer one hands them.
    // The core module (the largest module, compiled from core-wasm) imports nothing:
    // not even a trapping WASI stub is needed.
    let mut depth = 0;
    let mut outer_imports = Vec::new();
    let mut modules: Vec<(u64, Vec<String>)> = Vec::new(); // (size, imports)
    let mut in_module = None;
    for payload in wasmparser::Parser::new(0).parse_all(calvert::component::CORE_COMPONENT) {
        match payload.expect("the component is valid WebAssembly") {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => {
                if in_module == Some(depth) {
                    in_module = None;
                }
                depth -= 1;
            }
            wasmparser::Payload::ModuleSection {
                unchecked_range, ..
            } => {
                modules.push((
                    (unchecked_range.end - unchecked_range.start) as u64,
                    Vec::new(),
                ));
                in_module = Some(depth + 1);
            }
            wasmparser::Payload::ImportSection(imports) if in_module.is_some() => {
                let names = imports
                    .into_iter()
                    .map(|i| format!("{:?}", i.expect("readable")));
                modules.last_mut().expect("inside a module").1.extend(names);
            }
            wasmparser::Payload::ComponentImportSection(imports) if depth == 1 => {
                outer_imports.extend(
                    imports
                        .into_iter()
                        .map(|i| format!("{:?}", i.expect("readable"))),
                );
            }
            _ => {}
        }
    }
    assert!(
        outer_imports.is_empty(),
        "the component imports {outer_imports:?}"
    );
    let (size, imports) = modules
        .iter()
        .max_by_key(|(size, _)| *size)
        .expect("the component carries the core module");
    assert!(
        *size > 100_000,
        "the largest module is the core ({size} bytes)"
    );
    assert!(imports.is_empty(), "the core module imports {imports:?}");
}

#[test]
fn running_past_the_time_limit_is_a_typed_error_and_the_next_call_works() {
    let items = week_of_items(1000).convert();
    let triggers: Vec<Trigger> = vec![];
    // A zero limit stops the guest at its first check, as a runaway loop is stopped
    // once its limit has passed.
    let mut instance = core().clone().with_time_limit(Duration::ZERO).instance();
    let err = instance
        .decide(&items, &policy(), &triggers, "UTC", BASE)
        .unwrap_err();
    assert!(
        matches!(err, CoreError::TimeLimit { function: "decide" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("time limit"), "{err}");
    // The same handle recovers with a fresh instance.
    instance.set_time_limit(Duration::from_secs(5));
    let d = instance
        .decide(&items, &policy(), &triggers, "UTC", BASE)
        .unwrap();
    assert!(d.next_change.is_some());
}

#[test]
fn a_guest_trap_is_a_typed_error_and_the_next_call_works() {
    // Cap guest memory so that lowering a 64 MiB subject cannot be allocated: the
    // guest's allocator fails and traps.
    let capped = core().clone().with_memory_limit(32 << 20);
    let mut instance = capped.instance();
    let mut item: calvert_core::CalendarItem =
        calvert_core::CalendarItem::appointment("x", BASE, BASE + 3600);
    item.subject = "x".repeat(64 << 20);
    let err = instance
        .decide(&[item.convert()], &policy(), &[], "UTC", BASE)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Trap {
                function: "decide",
                ..
            }
        ),
        "{err:?}"
    );
    let ok = instance.route(
        "kim@flexi.se",
        &[wit::Rule {
            server: "mail1".into(),
            pattern: "*".into(),
            priority: 1,
        }],
    );
    assert_eq!(ok.unwrap().as_deref(), Some("mail1"));
}

#[test]
fn a_component_that_is_not_the_core_is_a_clear_load_error() {
    let err = DecisionCore::from_component(b"\0asm\x0d\0\x01\0garbage")
        .err()
        .expect("garbage does not load");
    assert!(matches!(err, CoreError::Load(_)));
    assert!(err.to_string().contains("rebuild"), "{err}");
}

#[test]
fn rejected_input_is_a_list_of_problems_not_a_trap() {
    let mut instance = core().instance();
    let rules = vec![
        wit::Rule {
            server: "mail1".into(),
            pattern: "flexi.se".into(),
            priority: 1,
        },
        wit::Rule {
            server: "mail2".into(),
            pattern: "Flexi.se".into(),
            priority: 1,
        },
    ];
    match instance.route("kim@flexi.se", &rules) {
        Err(CoreError::Rejected(problems)) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].kind, wit::ProblemKind::RuleTie);
        }
        other => panic!("expected a rule tie, got {other:?}"),
    }
    let problems = instance
        .validate_config(
            &[
                Trigger {
                    word: "Lunch".into(),
                    reason: "A".into(),
                },
                Trigger {
                    word: "LUNCH".into(),
                    reason: "B".into(),
                },
            ],
            &rules,
        )
        .unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn the_hosts_default_policy_is_the_cores() {
    let core_default: wit::DecidePolicy = calvert_core::DecidePolicy::default().convert();
    assert_eq!(wit::DecidePolicy::default(), core_default);
}
