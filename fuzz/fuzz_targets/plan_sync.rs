//! `plan_sync` never panics; a plan's actions are sorted by (side, action, exchange_id,
//! business_id), no delete removes an item that changed since it was last synced, and
//! the order of the input lists does not matter.
#![no_main]

use calvert_core::{ActionKind, CalendarItem, Side};
use calvert_testgen::SyncInput;
use libfuzzer_sys::fuzz_target;

fn rev<T: Clone>(v: &[T]) -> Vec<T> {
    v.iter().rev().cloned().collect()
}

fn item<'a>(items: &'a [CalendarItem], id: Option<&str>) -> Option<&'a CalendarItem> {
    let id = id?;
    items.iter().find(|i| i.id == id)
}

fuzz_target!(|input: SyncInput| {
    let SyncInput { exchange, business, mapping, policy, now } = input;

    let result = calvert_core::plan_sync(&exchange, &business, &mapping, &policy, now);

    let again = calvert_core::plan_sync(&rev(&exchange), &rev(&business), &rev(&mapping), &policy, now);
    assert_eq!(result.is_ok(), again.is_ok(), "reversing the inputs changed Ok/Err");

    let Ok(plan) = result else { return };
    assert_eq!(Ok(&plan), again.as_ref(), "reversing the inputs changed the plan");

    for pair in plan.actions.windows(2) {
        let key = |a: &calvert_core::SyncAction| (a.side, a.action, a.exchange_id.clone(), a.business_id.clone());
        assert!(key(&pair[0]) <= key(&pair[1]), "actions not sorted: {:?}", plan.actions);
    }

    for action in &plan.actions {
        if action.action != ActionKind::Delete {
            continue;
        }
        let entry = mapping
            .iter()
            .find(|m| Some(&m.exchange_id) == action.exchange_id.as_ref() && Some(&m.business_id) == action.business_id.as_ref())
            .unwrap_or_else(|| panic!("delete {action:?} has no mapping entry"));
        let (target, recorded) = match action.side {
            Side::Exchange => (item(&exchange, action.exchange_id.as_deref()), &entry.exchange_fp),
            Side::Business => (item(&business, action.business_id.as_deref()), &entry.business_fp),
        };
        if let Some(target) = target {
            let now_fp = calvert_core::fingerprint(target);
            assert_eq!(&now_fp, recorded, "delete {action:?} targets an item that changed since the last sync");
        }
        // The other side is gone, not merely changed.
        let other = match action.side {
            Side::Exchange => item(&business, action.business_id.as_deref()),
            Side::Business => item(&exchange, action.exchange_id.as_deref()),
        };
        assert!(
            other.is_none() || other.is_some_and(|o| o.end < now - i64::from(policy.lookback_days) * 86_400),
            "delete {action:?} while the other side's item is still in the window"
        );
    }
});
