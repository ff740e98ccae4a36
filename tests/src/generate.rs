//! Input generators: proptest strategies for the differential and property tests,
//! and a deterministic calendar for the benchmarks.

use calvert_core::zone::format_instant;
use calvert_core::{
    Attendee, AttendeeRole, CalendarItem, DecidePolicy, FreeBusy, ItemKind, MappingEntry, Response,
    ReturnTime, Rule, Sensitivity, SyncPolicy, Trigger,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// 2026-11-25T00:00:00Z, the middle of the generated calendars.
pub const BASE: i64 = 1_795_564_800;

fn instant() -> impl Strategy<Value = i64> {
    // Quarter hours over two days, so items overlap, touch and nest often.
    (-96i64..96).prop_map(|q| BASE + q * 900)
}

pub fn free_busy() -> impl Strategy<Value = FreeBusy> {
    prop::sample::select(vec![
        FreeBusy::Free,
        FreeBusy::Tentative,
        FreeBusy::Busy,
        FreeBusy::Busy,
        FreeBusy::Busy,
        FreeBusy::Busy,
        FreeBusy::Oof,
        FreeBusy::WorkingElsewhere,
        FreeBusy::NoData,
    ])
}

pub fn response() -> impl Strategy<Value = Response> {
    prop::sample::select(vec![
        Response::Unknown,
        Response::Organizer,
        Response::Organizer,
        Response::Organizer,
        Response::Tentative,
        Response::Accept,
        Response::Accept,
        Response::Decline,
        Response::NoResponse,
    ])
}

pub fn kind() -> impl Strategy<Value = ItemKind> {
    prop::sample::select(vec![
        ItemKind::Single,
        ItemKind::Single,
        ItemKind::Single,
        ItemKind::Occurrence,
        ItemKind::Exception,
        ItemKind::RecurringMaster,
    ])
}

pub fn sensitivity() -> impl Strategy<Value = Sensitivity> {
    prop::sample::select(vec![
        Sensitivity::Normal,
        Sensitivity::Personal,
        Sensitivity::Private,
        Sensitivity::Confidential,
    ])
}

pub fn subject() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "Lunch",
        "Lunch med Eva",
        "Möte sedan lunch",
        "MÖTE",
        "Lunchmöte",
        "Lunch-möte",
        "Kund  möte",
        "Tandläkare",
        "semester",
        "Kurs: säker telefoni",
        "ß STRASSE",
        "mo\u{308}te",
    ])
    .prop_map(str::to_string)
}

prop_compose! {
    pub fn item(ids: &'static [&'static str])(
        id in prop::sample::select(ids.to_vec()),
        subject in subject(),
        start in instant(),
        minutes in -30i64..600,
        all_day in prop::bool::weighted(0.1),
        zone in prop::option::weighted(0.2, prop::sample::select(vec!["Europe/Helsinki", "FLE Standard Time", "Nowhere"])),
        free_busy in free_busy(),
        response in response(),
        is_meeting in any::<bool>(),
        is_cancelled in prop::bool::weighted(0.1),
        kind in kind(),
        sensitivity in sensitivity(),
        reminder in prop::option::of(0u32..60),
        modified in prop::option::of(instant()),
        attendee in prop::option::of(prop::sample::select(vec!["kim@flexi.se", "eva@flexi.se", "rum4@flexi.se", "kund@example.com"])),
    ) -> CalendarItem {
        let mut item = CalendarItem::appointment(id, start, start + minutes * 60);
        item.subject = subject;
        item.is_all_day = all_day;
        item.zone = zone.map(str::to_string);
        item.free_busy = free_busy;
        item.response = response;
        item.is_meeting = is_meeting;
        item.is_cancelled = is_cancelled;
        item.kind = kind;
        item.sensitivity = sensitivity;
        item.reminder_minutes = reminder;
        item.modified = modified;
        item.attendees = attendee.into_iter().map(|a| Attendee {
            address: a.to_string(),
            role: if a.starts_with("rum") { AttendeeRole::Resource } else if a.contains("example") { AttendeeRole::Contact } else { AttendeeRole::Required },
        }).collect();
        item
    }
}

pub const IDS: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h"];
pub const BUSINESS_IDS: &[&str] = &["B1", "B2", "B3", "B4", "B5"];

pub fn items() -> impl Strategy<Value = Vec<CalendarItem>> {
    prop::collection::vec(item(IDS), 0..16)
}

pub fn triggers() -> impl Strategy<Value = Vec<Trigger>> {
    let valid = vec![
        ("lunch", "LUNCH"),
        ("möte", "MEETING"),
        ("kund möte", "CUSTOMER"),
        ("semester", "VACATION"),
        ("strasse", "STREET"),
    ];
    let with_duplicate = vec![
        ("lunch", "LUNCH"),
        ("möte", "MEETING"),
        ("LUNCH", "DUP"),
        ("  ", "EMPTY"),
    ];
    prop_oneof![4 => prop::sample::subsequence(valid, 0..5), 1 => prop::sample::subsequence(with_duplicate, 0..4)]
        .prop_map(|v| v.into_iter().map(|(w, r)| Trigger { word: w.into(), reason: r.into() }).collect())
}

pub fn policy() -> impl Strategy<Value = DecidePolicy> {
    prop_oneof![2 => Just(DecidePolicy::default()), 1 => any_policy()]
}

pub fn any_policy() -> impl Strategy<Value = DecidePolicy> {
    (
        prop::sample::subsequence(
            vec![
                FreeBusy::Busy,
                FreeBusy::Oof,
                FreeBusy::Tentative,
                FreeBusy::WorkingElsewhere,
            ],
            0..4,
        ),
        any::<bool>(),
        prop::option::of(Just("AWAY".to_string())),
        prop::sample::select(vec![ReturnTime::BlockEnd, ReturnTime::ItemEnd]),
    )
        .prop_map(
            |(divert_on, count_tentative_response, oof_reason, return_time)| DecidePolicy {
                divert_on,
                count_tentative_response,
                default_reason: "back".into(),
                oof_reason,
                return_time,
            },
        )
}

pub fn zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Europe/Stockholm",
        "Europe/Stockholm",
        "UTC",
        "W. Europe Standard Time",
        "America/Santiago",
        "Atlantis",
    ])
}

pub fn now() -> impl Strategy<Value = i64> {
    (-120i64..120).prop_map(|m| BASE + m * 450)
}

pub fn rules() -> impl Strategy<Value = Vec<Rule>> {
    let pattern = prop::sample::select(vec![
        "*",
        "se",
        "flexi.se",
        "support.flexi.se",
        "@flexi.se",
        "kim@support.flexi.se",
        "*.bad",
        "example.com",
    ]);
    prop::collection::vec((0u8..3, pattern, 0i32..3), 0..6).prop_map(|v| {
        v.into_iter()
            .map(|(s, p, priority)| Rule {
                server: format!("mail{s}"),
                pattern: p.into(),
                priority,
            })
            .collect()
    })
}

pub fn address() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Kim@Support.Flexi.se",
        "eva@flexi.se",
        "x@notsupport.flexi.se",
        "y@example.com",
        "broken",
    ])
}

/// Exchange items, business items and a mapping that refers to some of them, with
/// recorded fingerprints that are sometimes current and sometimes stale.
pub fn sync_input()
-> impl Strategy<Value = (Vec<CalendarItem>, Vec<CalendarItem>, Vec<MappingEntry>)> {
    (
        prop::collection::vec(item(IDS), 0..8),
        prop::collection::vec(item(BUSINESS_IDS), 0..6),
        prop::collection::vec(
            (
                0usize..8,
                0usize..5,
                any::<bool>(),
                any::<bool>(),
                instant(),
            ),
            0..5,
        ),
    )
        .prop_map(|(mut exchange, mut business, links)| {
            exchange.sort_by(|a, b| a.id.cmp(&b.id));
            exchange.dedup_by(|a, b| a.id == b.id);
            business.sort_by(|a, b| a.id.cmp(&b.id));
            business.dedup_by(|a, b| a.id == b.id);
            let mut mapping: Vec<MappingEntry> = Vec::new();
            for (e, b, e_current, b_current, end) in links {
                let (exchange_id, business_id) = (IDS[e].to_string(), BUSINESS_IDS[b].to_string());
                if mapping
                    .iter()
                    .any(|m| m.exchange_id == exchange_id || m.business_id == business_id)
                {
                    continue;
                }
                let fp = |items: &[CalendarItem], id: &str, current: bool| {
                    items
                        .iter()
                        .find(|i| i.id == id)
                        .filter(|_| current)
                        .map(calvert_core::fingerprint)
                        .unwrap_or_else(|| "stale".to_string())
                };
                mapping.push(MappingEntry {
                    exchange_fp: fp(&exchange, &exchange_id, e_current),
                    business_fp: fp(&business, &business_id, b_current),
                    exchange_id,
                    business_id,
                    end,
                });
            }
            (exchange, business, mapping)
        })
}

pub fn sync_policy() -> impl Strategy<Value = SyncPolicy> {
    (0u32..10, any::<bool>(), prop::bool::weighted(0.1)).prop_map(
        |(lookback_days, sync_private, mailbox_is_resource)| SyncPolicy {
            lookback_days,
            sync_private,
            mailbox_is_resource,
            integrated_users: vec!["kim@flexi.se".into()],
        },
    )
}

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
    let decide = (items(), policy(), triggers(), zone(), now()).prop_map(|(items, policy, triggers, zone, now)| {
        json!({
            "op": "decide", "now": format_instant(now), "zone": zone,
            "policy": {
                "divert_on": policy.divert_on,
                "count_tentative_response": policy.count_tentative_response,
                "default_reason": policy.default_reason, "oof_reason": policy.oof_reason,
                "return_time": policy.return_time,
            },
            "triggers": triggers.iter().map(|t| json!({"word": t.word, "reason": t.reason})).collect::<Vec<_>>(),
            "items": items.iter().map(item_json).collect::<Vec<_>>(),
        })
        .to_string()
    });
    let route = (address(), rules()).prop_map(|(address, rules)| {
        json!({"op": "route", "address": address,
               "rules": rules.iter().map(|r| json!({"server": r.server, "pattern": r.pattern, "priority": r.priority})).collect::<Vec<_>>()})
        .to_string()
    });
    let trigger = (subject(), triggers()).prop_map(|(subject, triggers)| {
        json!({"op": "resolve_trigger", "subject": subject,
               "triggers": triggers.iter().map(|t| json!({"word": t.word, "reason": t.reason})).collect::<Vec<_>>()})
        .to_string()
    });
    let fingerprint =
        item(IDS).prop_map(|i| json!({"op": "fingerprint", "item": item_json(&i)}).to_string());
    let plan = (sync_input(), sync_policy(), now()).prop_map(|((exchange, business, mapping), policy, now)| {
        json!({
            "op": "plan_sync", "now": format_instant(now),
            "policy": {"lookback_days": policy.lookback_days, "sync_private": policy.sync_private,
                       "mailbox_is_resource": policy.mailbox_is_resource, "integrated_users": policy.integrated_users},
            "exchange": exchange.iter().map(item_json).collect::<Vec<_>>(),
            "business": business.iter().map(item_json).collect::<Vec<_>>(),
            "mapping": mapping.iter().map(|m| json!({"exchange_id": m.exchange_id, "business_id": m.business_id,
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
