//! The clarifications of 2026-12-01 (semantics.md, "Changes"; eval-io.md), one test
//! each, natively and through the component: every check runs on the native core's
//! answer and on the component's (typed exports and `eval`), which must both keep it.

use calvert::{CoreError, CoreInstance};
use calvert_core as native;
use calvert_core::zone::parse_instant;
use calvert_core::{
    ActionKind, CalendarItem, DecidePolicy, Decision, FreeBusy, Instant, ItemKind, MappingEntry,
    Problem, ProblemKind, Response, ReturnTime, Sensitivity, Side, SyncPlan, SyncPolicy,
    SyncSkipReason, Trigger, TriggerMatch,
};
use calvert_tests::{Convert, instance};
use serde_json::{Value, json};

fn at(text: &str) -> Instant {
    parse_instant(text).expect("a valid instant")
}

/// The native answer and the component's, in native types.
fn both<T, W: Convert<T>>(
    here: Result<T, Vec<Problem>>,
    there: Result<W, CoreError>,
) -> [Result<T, Vec<Problem>>; 2] {
    let there = match there {
        Ok(w) => Ok(w.convert()),
        Err(CoreError::Rejected(problems)) => Err(problems.convert()),
        Err(e) => panic!("the component failed: {e}"),
    };
    [here, there]
}

fn decide(
    core: &mut CoreInstance,
    items: &[CalendarItem],
    policy: &DecidePolicy,
    triggers: &[Trigger],
    now: Instant,
) -> [Result<Decision, Vec<Problem>>; 2] {
    let here = native::decide::decide_with_config(items, policy, triggers, "UTC", now);
    let there = core.decide(
        &items.to_vec().convert(),
        &policy.convert(),
        &triggers.to_vec().convert(),
        "UTC",
        now,
    );
    both(here, there)
}

fn plan_sync(
    core: &mut CoreInstance,
    exchange: &[CalendarItem],
    business: &[CalendarItem],
    mapping: &[MappingEntry],
    policy: &SyncPolicy,
) -> [SyncPlan; 2] {
    let now = at("2026-11-25T09:30:00Z");
    let here = native::plan_sync(exchange, business, mapping, policy, now);
    let there = core.plan_sync(
        &exchange.to_vec().convert(),
        &business.to_vec().convert(),
        &mapping.to_vec().convert(),
        &policy.convert(),
        now,
    );
    both(here, there).map(|plan| plan.expect("a valid sync input plans"))
}

fn fingerprints(core: &mut CoreInstance, item: &CalendarItem) -> [String; 2] {
    let there = core.fingerprint(&item.convert()).expect("no trap");
    [native::fingerprint(item), there]
}

/// One `calvert eval` request, natively and through the component: the answers as
/// JSON, or the error sentences.
fn eval(core: &mut CoreInstance, request: &Value) -> [Result<Value, String>; 2] {
    let request = request.to_string();
    let there = core.eval(&request).expect("no trap");
    [native::eval::run(&request), there.map(|a| a.convert())]
        .map(|answer| answer.map(|a| serde_json::from_str(&a.answer).expect("the answer is JSON")))
}

fn busy(id: &str, start: &str, end: &str) -> CalendarItem {
    CalendarItem::appointment(id, at(start), at(end))
}

fn trigger(word: &str, reason: &str) -> Trigger {
    Trigger {
        word: word.into(),
        reason: reason.into(),
    }
}

#[test]
fn next_change_is_the_first_instant_the_diversion_differs() {
    let mut core = instance();
    let a = busy("a", "2026-11-25T08:00:00Z", "2026-11-25T10:00:00Z");
    let b = busy("b", "2026-11-25T09:00:00Z", "2026-11-25T11:00:00Z");
    let mut away = busy("away", "2026-11-25T08:00:00Z", "2026-11-25T12:00:00Z");
    away.free_busy = FreeBusy::Oof;
    let item_end = DecidePolicy {
        return_time: ReturnTime::ItemEnd,
        ..DecidePolicy::default()
    };
    let now = at("2026-11-25T09:30:00Z");
    for policy in [DecidePolicy::default(), item_end] {
        for d in decide(&mut core, &[a.clone(), b.clone()], &policy, &[], now) {
            let d = d.expect("decides");
            assert_eq!(d.diversion.map(|d| d.item_id).as_deref(), Some("b"));
            assert_eq!(
                d.next_change,
                Some(at("2026-11-25T11:00:00Z")),
                "a ends at 10:00 and loses"
            );
        }
        for d in decide(&mut core, &[away.clone(), a.clone()], &policy, &[], now) {
            assert_eq!(
                d.expect("decides").next_change,
                Some(at("2026-11-25T12:00:00Z"))
            );
        }
    }
    let request = json!({"op": "decide", "now": "2026-11-25T09:30:00Z", "items": [
        {"id": "a", "start": "2026-11-25T08:00:00Z", "end": "2026-11-25T10:00:00Z"},
        {"id": "b", "start": "2026-11-25T09:00:00Z", "end": "2026-11-25T11:00:00Z"}]});
    for answer in eval(&mut core, &request) {
        assert_eq!(
            answer.expect("answers")["next_change"],
            "2026-11-25T11:00:00Z"
        );
    }
}

#[test]
fn at_counts_code_points_of_the_subject_as_sent() {
    let mut core = instance();
    let triggers = [trigger("koulutus", "COURSE")];
    let subject = "o\u{308} KOULUTUS";
    let there = core.resolve_trigger(subject, &triggers.to_vec().convert());
    let expected = TriggerMatch {
        reason: "COURSE".into(),
        word: "koulutus".into(),
        at: 3,
    };
    for m in both(native::resolve_trigger(subject, &triggers), there) {
        assert_eq!(m, Ok(Some(expected.clone())));
    }
    let request = json!({"op": "resolve_trigger", "subject": "a\u{308}a\u{308} mo\u{308}te",
                         "triggers": [{"word": "möte", "reason": "MEETING"}]});
    for answer in eval(&mut core, &request) {
        assert_eq!(
            answer.expect("answers"),
            json!({"reason": "MEETING", "word": "möte", "at": 5})
        );
    }
}

#[test]
fn blank_reason_codes_are_configuration_errors_even_unused() {
    let mut core = instance();
    let kinds = |d: Result<Decision, Vec<Problem>>| -> Vec<ProblemKind> {
        d.expect_err("a blank reason is rejected")
            .iter()
            .map(|p| p.kind)
            .collect()
    };
    let blank_trigger = [trigger("lunch", " \t")];
    for d in decide(&mut core, &[], &DecidePolicy::default(), &blank_trigger, 0) {
        assert_eq!(kinds(d), vec![ProblemKind::EmptyTrigger]);
    }
    let here = native::validate_config(&blank_trigger, &[]);
    let there = core
        .validate_config(&blank_trigger.to_vec().convert(), &[])
        .expect("no trap");
    assert_eq!(here, there.convert());
    assert_eq!(here.len(), 1);
    for (default_reason, oof_reason) in [(" ", None), ("back", Some("")), ("back", Some("\n"))] {
        let policy = DecidePolicy {
            default_reason: default_reason.into(),
            oof_reason: oof_reason.map(str::to_string),
            ..DecidePolicy::default()
        };
        for d in decide(&mut core, &[], &policy, &[], 0) {
            assert_eq!(kinds(d), vec![ProblemKind::InvalidPolicy]);
        }
    }
    // An absent oof reason is "not configured": an oof item uses the default reason.
    let mut away = busy("away", "2026-11-25T08:00:00Z", "2026-11-25T12:00:00Z");
    away.free_busy = FreeBusy::Oof;
    let now = at("2026-11-25T09:00:00Z");
    for d in decide(&mut core, &[away], &DecidePolicy::default(), &[], now) {
        assert_eq!(
            d.expect("decides").diversion.expect("diverts").reason,
            "back"
        );
    }
    let request = |oof: Value| {
        json!({"op": "decide", "now": "2026-11-25T09:30:00Z",
                                      "policy": {"oof_reason": oof}})
    };
    for answer in eval(&mut core, &request(Value::Null)) {
        assert!(answer.is_ok(), "null is not configured: {answer:?}");
    }
    for answer in eval(&mut core, &request(json!(""))) {
        assert!(
            answer.is_err(),
            "an empty oof reason is an error: {answer:?}"
        );
    }
}

/// A synced item with every field set, for the fingerprint.
fn full_item() -> CalendarItem {
    let mut item = busy("AAMk1", "2026-11-26T09:00:00Z", "2026-11-26T10:00:00Z");
    item.subject = "Kundmöte".into();
    item.location = "Rum 4".into();
    item.body = "Agenda\n1. Offert".into();
    item.reminder_minutes = Some(15);
    item.response = Response::Organizer;
    item.created = Some(at("2026-11-20T08:00:00Z"));
    item.modified = Some(at("2026-11-20T08:00:00Z"));
    item
}

#[test]
fn the_fingerprint_covers_exactly_the_basic_fields_with_body_normalisation() {
    let mut core = instance();
    let base = fingerprints(&mut core, &full_item());
    assert_eq!(base[0], base[1]);
    type Edit = fn(&mut CalendarItem);
    let same: [(&str, Edit); 9] = [
        ("id", |i| i.id = "B17".into()),
        ("kind", |i| i.kind = ItemKind::Occurrence),
        ("cancellation", |i| i.is_cancelled = true),
        ("created", |i| i.created = None),
        ("modified", |i| {
            i.modified = Some(at("2026-11-24T08:00:00Z"))
        }),
        ("body CRLF", |i| i.body = "Agenda\r\n1. Offert".into()),
        ("body CR", |i| i.body = "Agenda\r1. Offert".into()),
        ("body trailing white space", |i| {
            i.body = "Agenda\n1. Offert \r\n\t".into()
        }),
        ("body CR and trailing CR", |i| {
            i.body = "Agenda\r1. Offert\r\r".into()
        }),
    ];
    let different: [(&str, Edit); 10] = [
        ("start", |i| i.start -= 60),
        ("end (duration)", |i| i.end += 60),
        ("subject", |i| i.subject = "Kundmöte!".into()),
        ("location", |i| i.location = "Rum 5".into()),
        ("body", |i| i.body = "Agenda\n\n1. Offert".into()),
        ("body leading white space", |i| {
            i.body = " Agenda\n1. Offert".into()
        }),
        ("reminder", |i| i.reminder_minutes = None),
        ("response", |i| i.response = Response::Accept),
        ("sensitivity", |i| i.sensitivity = Sensitivity::Personal),
        ("all-day", |i| i.is_all_day = true),
    ];
    for (changes, edits) in [(false, &same[..]), (true, &different[..])] {
        for (field, edit) in edits {
            let mut item = full_item();
            edit(&mut item);
            for fp in fingerprints(&mut core, &item) {
                assert_eq!(fp != base[0], changes, "{field}");
            }
        }
    }
}

fn synced(e: &CalendarItem, b: &CalendarItem) -> MappingEntry {
    MappingEntry {
        exchange_id: e.id.clone(),
        business_id: b.id.clone(),
        exchange_fp: native::fingerprint(e),
        business_fp: native::fingerprint(b),
        end: e.end,
    }
}

#[test]
fn equal_content_changes_on_both_sides_are_not_a_conflict() {
    let mut core = instance();
    let mut e = full_item();
    let mut b = full_item();
    b.id = "B17".into();
    let entry = synced(&e, &b);
    e.subject = "Flyttat".into();
    b.subject = "Flyttat".into();
    e.modified = Some(at("2026-11-25T08:00:00Z"));
    b.modified = Some(at("2026-11-25T09:00:00Z"));
    let policy = SyncPolicy::default();
    for plan in plan_sync(&mut core, &[e.clone()], &[b], &[entry], &policy) {
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(plan.report.conflicts.is_empty() && plan.report.skipped.is_empty());
        let recorded = &plan.mapping[0];
        assert_eq!(
            recorded.exchange_fp,
            native::fingerprint(&e),
            "the new common fingerprint"
        );
        assert_eq!(recorded.business_fp, recorded.exchange_fp);
    }
}

fn skips(plan: &SyncPlan) -> Vec<(Side, &str, SyncSkipReason)> {
    let skipped = &plan.report.skipped;
    skipped
        .iter()
        .map(|s| (s.side, s.id.as_str(), s.why))
        .collect()
}

#[test]
fn confidential_counts_as_private() {
    let mut core = instance();
    let sensitivities = [
        ("n", Sensitivity::Normal),
        ("pe", Sensitivity::Personal),
        ("pr", Sensitivity::Private),
        ("c", Sensitivity::Confidential),
    ];
    let items: Vec<CalendarItem> = sensitivities
        .iter()
        .map(|&(id, sensitivity)| CalendarItem {
            id: id.into(),
            sensitivity,
            ..full_item()
        })
        .collect();
    let policy = SyncPolicy {
        sync_private: false,
        ..SyncPolicy::default()
    };
    for plan in plan_sync(&mut core, &items, &[], &[], &policy) {
        let created: Vec<_> = plan
            .actions
            .iter()
            .map(|a| (a.action, a.exchange_id.as_deref()))
            .collect();
        assert_eq!(
            created,
            vec![
                (ActionKind::Create, Some("n")),
                (ActionKind::Create, Some("pe"))
            ]
        );
        assert_eq!(
            skips(&plan),
            vec![
                (Side::Exchange, "c", SyncSkipReason::Private),
                (Side::Exchange, "pr", SyncSkipReason::Private),
            ]
        );
    }
}

#[test]
fn skip_reasons_come_in_the_contracts_order() {
    let mut core = instance();
    let old = ("2026-11-10T09:00:00Z", "2026-11-10T10:00:00Z"); // before the 7-day window
    let item =
        |id: &str, (start, end): (&str, &str), kind: ItemKind, s: Sensitivity| CalendarItem {
            kind,
            sensitivity: s,
            ..busy(id, start, end)
        };
    let (series, private) = (ItemKind::Occurrence, Sensitivity::Confidential);
    let soon = ("2026-11-26T09:00:00Z", "2026-11-26T10:00:00Z");
    let exchange = vec![
        item("u1", old, series, private),
        item("u2", soon, series, private),
        item("u3", soon, ItemKind::Single, private),
        // A mapped pair left alone: outside the window (and private) / private.
        item("m1", old, ItemKind::Single, private),
        // A mapped pair that became a series (and is private): only detached.
        item("m2", soon, series, private),
    ];
    let business = vec![
        item("B1", soon, ItemKind::Single, private),
        item("B2", old, ItemKind::Single, private),
    ];
    let mapping = [
        MappingEntry {
            end: at(soon.1),
            ..synced(&exchange[3], &business[0])
        },
        synced(&exchange[4], &business[1]),
    ];
    let policy = SyncPolicy {
        sync_private: false,
        ..SyncPolicy::default()
    };
    for plan in plan_sync(&mut core, &exchange, &business, &mapping, &policy) {
        assert_eq!(
            skips(&plan),
            vec![
                (Side::Business, "B1", SyncSkipReason::Private),
                (Side::Exchange, "m1", SyncSkipReason::OutsideWindow),
                (Side::Exchange, "u1", SyncSkipReason::OutsideWindow),
                (Side::Exchange, "u2", SyncSkipReason::Recurring),
                (Side::Exchange, "u3", SyncSkipReason::Private),
            ]
        );
        let detached: Vec<_> = plan
            .report
            .detached
            .iter()
            .map(|d| (d.exchange_id.as_str(), d.side))
            .collect();
        assert_eq!(detached, vec![("m2", Side::Exchange)]);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
}

#[test]
fn optional_fields_take_the_documented_defaults() {
    let mut core = instance();
    let item =
        json!({"id": "AAMk1", "start": "2026-11-25T09:00:00Z", "end": "2026-11-25T10:00:00Z"});
    let full_item = json!({"id": "AAMk1", "start": "2026-11-25T09:00:00Z", "end": "2026-11-25T10:00:00Z",
        "free_busy": "busy", "response": "unknown", "is_meeting": false, "is_cancelled": false,
        "kind": "single", "sensitivity": "normal", "subject": "", "location": "", "body": ""});
    let pairs = [
        (
            json!({"op": "decide", "now": "2026-11-25T09:30:00Z", "items": [item]}),
            json!({"op": "decide", "now": "2026-11-25T09:30:00Z", "zone": "UTC",
                   "policy": {"divert_on": ["busy", "oof"], "count_tentative_response": false,
                              "default_reason": "back", "oof_reason": null, "return_time": "block_end"},
                   "triggers": [], "items": [full_item]}),
        ),
        (
            json!({"op": "plan_sync", "now": "2026-11-25T09:30:00Z", "exchange": [item]}),
            json!({"op": "plan_sync", "now": "2026-11-25T09:30:00Z",
                   "policy": {"lookback_days": 7, "sync_private": true},
                   "exchange": [full_item], "business": [], "mapping": []}),
        ),
        (
            json!({"op": "fingerprint", "item": item}),
            json!({"op": "fingerprint", "item": full_item}),
        ),
        (
            json!({"op": "resolve_trigger", "subject": "Lunch"}),
            json!({"op": "resolve_trigger", "subject": "Lunch", "triggers": []}),
        ),
    ];
    for (short, long) in &pairs {
        let [here, there] = eval(&mut core, short);
        assert_eq!(here, there, "{short}");
        assert_eq!(here, eval(&mut core, long)[0], "{short} against {long}");
    }
    let [decided, _] = eval(&mut core, &pairs[0].0);
    let decided = decided.expect("answers");
    assert_eq!(
        decided["diversion"],
        json!({"reason": "back", "until": "2026-11-25T10:00:00Z",
               "until_local": "2026-11-25T10:00:00+00:00", "item_id": "AAMk1"})
    );
    for required in [
        json!({"op": "decide"}),
        json!({"op": "plan_sync"}),
        json!({"op": "decide", "now": "2026-11-25T09:30:00Z", "items": [{"id": "x"}]}),
    ] {
        for answer in eval(&mut core, &required) {
            assert!(answer.is_err(), "{required} is missing a required field");
        }
    }
}
