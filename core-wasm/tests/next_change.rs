//! `next_change` is exact (semantics.md §2): the diversion decided at `next_change`
//! differs from the one at `now`, and at every start or end of an item in between
//! (and at sampled instants in between) it is the same as at `now`.

use calvert_core::decide::decide_with_config;
use calvert_core::zone::Zone;
use calvert_core::{CalendarItem, DecidePolicy, Diversion, Instant, ReturnTime, Trigger};
use calvert_testgen::strategy::{item_list, now};
use calvert_testgen::{ItemShape, Times};
use proptest::prelude::*;

const ZONE: &str = "Europe/Stockholm";

fn policy(item_end: bool, oof_reason: bool) -> DecidePolicy {
    DecidePolicy {
        return_time: if item_end {
            ReturnTime::ItemEnd
        } else {
            ReturnTime::BlockEnd
        },
        oof_reason: oof_reason.then(|| "AWAY".to_string()),
        ..DecidePolicy::default()
    }
}

fn diversion(items: &[CalendarItem], policy: &DecidePolicy, t: Instant) -> Option<Diversion> {
    let triggers = [Trigger {
        word: "lunch".into(),
        reason: "LUNCH".into(),
    }];
    decide_with_config(items, policy, &triggers, ZONE, t)
        .expect("valid input must decide")
        .diversion
}

/// Every instant after `now` at which an item starts or ends: its own start and end,
/// and for an all-day item the local days it covers.
fn candidates(items: &[CalendarItem], now: Instant) -> Vec<Instant> {
    let user = Zone::parse(ZONE).expect("a known zone");
    let mut ts = Vec::new();
    for item in items {
        ts.extend([item.start, item.end]);
        if item.is_all_day && item.end > item.start {
            let origin = item
                .zone
                .as_deref()
                .and_then(Zone::lookup)
                .unwrap_or_else(|| user.clone());
            if let Ok((start, end)) = user.all_day_interval(&origin, item.start, item.end) {
                ts.extend([start, end]);
            }
        }
    }
    ts.retain(|&t| t > now);
    ts.sort_unstable();
    ts.dedup();
    ts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn next_change_is_the_first_instant_the_diversion_differs(
        items in item_list(ItemShape::MORNING),
        now in now(Times::MORNING),
        item_end in any::<bool>(),
        oof_reason in any::<bool>(),
        picks in prop::collection::vec(0u32..1_000_000, 8),
    ) {
        let policy = policy(item_end, oof_reason);
        let decision = decide_with_config(&items, &policy, &[], ZONE, now).expect("valid input");
        let here = diversion(&items, &policy, now);
        let cands = candidates(&items, now);
        if let Some(next) = decision.next_change {
            prop_assert!(cands.contains(&next), "next_change {} is no start or end", next);
            prop_assert_ne!(&diversion(&items, &policy, next), &here, "nothing differs at {}", next);
        }
        let before_next = |t: Instant| decision.next_change.is_none_or(|next| t < next);
        for &t in cands.iter().filter(|&&t| before_next(t)) {
            prop_assert_eq!(&diversion(&items, &policy, t), &here, "differs at {} before next_change {:?}", t, decision.next_change);
        }
        let span = decision.next_change.map_or(2 * 86_400, |next| next - now);
        for &p in &picks {
            let t = now + i64::from(p) % span;
            prop_assert_eq!(&diversion(&items, &policy, t), &here, "differs at {} before next_change {:?}", t, decision.next_change);
        }
    }
}
