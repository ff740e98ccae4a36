//! Inputs for the differential tests and the benchmarks: `calvert eval` requests
//! (JSON) made of the values calvert-testgen defines for every generated test, and a
//! deterministic calendar for the benchmarks.

use calvert_core::zone::format_instant;
use calvert_core::{CalendarItem, FreeBusy, Response, Trigger};
use calvert_testgen::strategy::{decide_input, one_item, route_input, sync_input, trigger_input};
use calvert_testgen::{Inputs, ItemShape};
use proptest::prelude::*;
use serde_json::{Value, json};

/// 2026-11-25T00:00:00Z, the middle of the generated calendars.
pub use calvert_testgen::time::BASE;

/// An item as `calvert eval` JSON.
pub fn item_json(item: &CalendarItem) -> Value {
    json!({
        "id": item.id, "change_key": item.change_key, "subject": item.subject, "location": item.location,
        "body": item.body, "start": format_instant(item.start), "end": format_instant(item.end),
        "is_all_day": item.is_all_day, "zone": item.zone, "free_busy": item.free_busy,
        "response": item.response, "is_meeting": item.is_meeting, "is_cancelled": item.is_cancelled,
        "kind": item.kind, "sensitivity": item.sensitivity,
        "reminder_minutes": item.reminder_minutes,
        "created": item.created.map(format_instant), "modified": item.modified.map(format_instant),
        "attendees": item.attendees.iter().map(|a| json!({"address": a.address, "role": a.role})).collect::<Vec<_>>(),
    })
}

/// Every kind of `calvert eval` request, valid and invalid.
pub fn eval_request() -> impl Strategy<Value = String> {
    let decide = decide_input(ItemShape::TWO_DAYS).prop_map(|input| {
        let policy = &input.policy;
        json!({
            "op": "decide", "now": format_instant(input.now), "zone": input.zone,
            "policy": {
                "divert_on": policy.divert_on,
                "count_tentative_response": policy.count_tentative_response,
                "default_reason": policy.default_reason, "oof_reason": policy.oof_reason,
                "return_time": policy.return_time,
            },
            "triggers": triggers_json(&input.triggers),
            "items": input.items.iter().map(item_json).collect::<Vec<_>>(),
        })
        .to_string()
    });
    let route = route_input(Inputs::Mixed).prop_map(|input| {
        json!({"op": "route", "address": input.address,
               "rules": input.rules.iter().map(|r| json!({"server": r.server, "pattern": r.pattern, "priority": r.priority})).collect::<Vec<_>>()})
        .to_string()
    });
    let trigger = trigger_input(Inputs::Mixed).prop_map(|input| {
        json!({"op": "resolve_trigger", "subject": input.subject, "triggers": triggers_json(&input.triggers)})
            .to_string()
    });
    let fingerprint = one_item(ItemShape::TWO_DAYS, "AAMk1")
        .prop_map(|i| json!({"op": "fingerprint", "item": item_json(&i)}).to_string());
    let plan = sync_input(ItemShape::TWO_DAYS_EXCHANGE, ItemShape::TWO_DAYS_BUSINESS).prop_map(|input| {
        let policy = &input.policy;
        json!({
            "op": "plan_sync", "now": format_instant(input.now),
            "policy": {"lookback_days": policy.lookback_days, "sync_private": policy.sync_private,
                       "mailbox_is_resource": policy.mailbox_is_resource, "integrated_users": policy.integrated_users},
            "exchange": input.exchange.iter().map(item_json).collect::<Vec<_>>(),
            "business": input.business.iter().map(item_json).collect::<Vec<_>>(),
            "mapping": input.mapping.iter().map(|m| json!({"exchange_id": m.exchange_id, "business_id": m.business_id,
                "exchange_fp": m.exchange_fp, "business_fp": m.business_fp, "end": format_instant(m.end)})).collect::<Vec<_>>(),
        })
        .to_string()
    });
    let broken = prop::sample::select(vec![
        "", "{", "[]", "{\"op\": 3}", "{\"op\": \"fly\"}", "{\"op\": \"route\"}",
        "{\"op\": \"route\", \"address\": \"a@b.se\", \"colour\": 1}",
        "{\"op\": \"decide\", \"now\": \"2026-11-25T09:30:00.5Z\"}",
        "{\"op\": \"decide\", \"now\": \"yesterday\"}",
        "{\"op\": \"decide\", \"now\": \"2026-11-25T09:30:00Z\", \"items\": [{\"id\": \"x\", \"start\": \"2026-11-25T09:30:00Z\", \"end\": \"2026-11-25T10:30:00Z\", \"free_busy\": \"sleepy\"}]}",
    ])
    .prop_map(str::to_string);
    prop_oneof![3 => decide, 1 => route, 1 => trigger, 1 => fingerprint, 2 => plan, 1 => broken]
}

fn triggers_json(triggers: &[Trigger]) -> Vec<Value> {
    triggers
        .iter()
        .map(|t| json!({"word": t.word, "reason": t.reason}))
        .collect()
}

/// A deterministic working week of `n` items for one mailbox (benchmarks): meetings,
/// lunches and an all-day item, overlapping as real calendars do.
pub fn week_of_items(n: usize) -> Vec<CalendarItem> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let subjects = [
        "Möte med kund",
        "Lunch",
        "Planering",
        "Kurs",
        "Tandläkare",
        "1:1",
        "Styrelsemöte",
    ];
    (0..n)
        .map(|i| {
            let start = BASE - 3 * 86_400 + (next() % (7 * 96)) as i64 * 900;
            let minutes = [30, 45, 60, 90, 120, 480][(next() % 6) as usize];
            let mut item =
                CalendarItem::appointment(format!("AAMkAD{i:06}"), start, start + minutes * 60);
            item.subject = subjects[(next() % subjects.len() as u64) as usize].to_string();
            item.is_meeting = next() % 2 == 0;
            item.response = if item.is_meeting {
                Response::Accept
            } else {
                Response::Organizer
            };
            item.free_busy = if next() % 10 == 0 {
                FreeBusy::Free
            } else {
                FreeBusy::Busy
            };
            item.change_key = format!("CQAAABYAAAA{i:08}");
            item.location = "Rum 4".into();
            item
        })
        .collect()
}

pub fn bench_triggers() -> Vec<Trigger> {
    [
        ("lunch", "LUNCH"),
        ("möte", "MEETING"),
        ("kurs", "COURSE"),
        ("semester", "VACATION"),
        ("tandläkare", "DOCTOR"),
    ]
    .iter()
    .map(|(w, r)| Trigger {
        word: (*w).into(),
        reason: (*r).into(),
    })
    .collect()
}
