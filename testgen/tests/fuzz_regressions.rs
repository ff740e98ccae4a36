//! The inputs kept in fuzz/regressions/ still decode to the cases they keep: their
//! bytes mean something only to this crate's drawing code.

use arbitrary::{Arbitrary, Unstructured};
use calvert_core::decide::decide_with_config;
use calvert_core::{DecidePolicy, FreeBusy, ProblemKind};
use calvert_testgen::DecideInput;

fn kept(target: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../fuzz/regressions/{target}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// As libFuzzer's `fuzz_target!` decodes a typed input.
fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> T {
    T::arbitrary_take_rest(Unstructured::new(bytes)).expect("the kept input decodes")
}

#[test]
fn blank_oof_reason_is_an_away_item_under_a_blank_out_of_office_reason() {
    let bytes = kept("decide", "blank-oof-reason");
    let input: DecideInput = decode(&bytes);
    assert!(
        input
            .policy
            .oof_reason
            .as_deref()
            .is_some_and(|r| r.trim().is_empty()),
        "{input:?}"
    );
    let away = input
        .items
        .iter()
        .find(|i| i.free_busy == FreeBusy::Oof && i.start <= input.now && input.now < i.end);
    assert!(away.is_some(), "no out-of-office item at now: {input:?}");
    assert!(input.triggers.is_empty(), "{input:?}");
    // The core rejects the blank reason; with none, the item diverts (for "back").
    let rejected = decide_with_config(
        &input.items,
        &input.policy,
        &input.triggers,
        &input.zone,
        input.now,
    );
    let problems = rejected.expect_err("a blank out-of-office reason is rejected");
    assert!(
        problems
            .iter()
            .any(|p| p.kind == ProblemKind::InvalidPolicy),
        "{problems:?}"
    );
    let policy = DecidePolicy {
        oof_reason: None,
        ..input.policy.clone()
    };
    let decided = decide_with_config(
        &input.items,
        &policy,
        &input.triggers,
        &input.zone,
        input.now,
    )
    .expect("valid without the blank reason");
    assert_eq!(
        decided.diversion.map(|d| d.reason).as_deref(),
        Some(policy.default_reason.as_str())
    );
}
