use super::*;
use crate::model::{Sensitivity, Trigger};
use crate::zone::parse_instant;

fn at(text: &str) -> Instant {
    parse_instant(text).unwrap()
}

fn item(id: &str, subject: &str, start: &str, end: &str) -> CalendarItem {
    let mut item = CalendarItem::appointment(id, at(start), at(end));
    item.subject = subject.into();
    item.response = Response::Organizer;
    item
}

fn run(items: &[CalendarItem], now: &str) -> Decision {
    let triggers = [
        Trigger {
            word: "lunch".into(),
            reason: "LUNCH".into(),
        },
        Trigger {
            word: "möte".into(),
            reason: "MEETING".into(),
        },
    ];
    decide_with_config(
        items,
        &DecidePolicy::default(),
        &triggers,
        "Europe/Stockholm",
        at(now),
    )
    .unwrap()
}

#[test]
fn the_eval_example() {
    let d = run(
        &[item(
            "AAMk1",
            "Lunch med Eva",
            "2026-11-25T11:00:00Z",
            "2026-11-25T12:00:00Z",
        )],
        "2026-11-25T11:30:00Z",
    );
    let div = d.diversion.unwrap();
    assert_eq!(div.reason, "LUNCH");
    assert_eq!(div.until, at("2026-11-25T12:00:00Z"));
    assert_eq!(div.until_local, "2026-11-25T13:00:00+01:00");
    assert_eq!(d.next_change, Some(at("2026-11-25T12:00:00Z")));
}

#[test]
fn lunch_inside_an_all_day_course_returns_at_the_block_end() {
    let mut course = item(
        "course",
        "Kurs",
        "2026-11-24T23:00:00Z",
        "2026-11-25T23:00:00Z",
    );
    course.is_all_day = true;
    let lunch = item(
        "lunch",
        "Lunch",
        "2026-11-25T11:00:00Z",
        "2026-11-25T12:00:00Z",
    );
    let d = run(&[course.clone(), lunch.clone()], "2026-11-25T11:15:00Z");
    let div = d.diversion.unwrap();
    assert_eq!(
        (div.reason.as_str(), div.item_id.as_str()),
        ("LUNCH", "lunch")
    );
    assert_eq!(div.until, at("2026-11-25T23:00:00Z"));
    assert_eq!(d.next_change, Some(at("2026-11-25T12:00:00Z")));
}

#[test]
fn touching_items_form_one_block() {
    let a = item("a", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let b = item("b", "", "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z");
    let gap = item("c", "", "2026-11-25T11:01:00Z", "2026-11-25T12:00:00Z");
    let d = run(&[a, b, gap], "2026-11-25T09:30:00Z");
    assert_eq!(d.diversion.unwrap().until, at("2026-11-25T11:00:00Z"));
}

#[test]
fn item_end_policy_uses_the_winners_own_end() {
    let a = item("a", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let b = item("b", "", "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z");
    let policy = DecidePolicy {
        return_time: ReturnTime::ItemEnd,
        ..DecidePolicy::default()
    };
    let d = decide_with_config(&[a, b], &policy, &[], "UTC", at("2026-11-25T09:30:00Z")).unwrap();
    assert_eq!(d.diversion.unwrap().until, at("2026-11-25T10:00:00Z"));
}

#[test]
fn oof_beats_busy_and_uses_the_oof_reason() {
    let mut oof = item(
        "z-oof",
        "Semester",
        "2026-11-20T00:00:00Z",
        "2026-11-30T00:00:00Z",
    );
    oof.free_busy = FreeBusy::Oof;
    let busy = item("a", "Möte", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let policy = DecidePolicy {
        oof_reason: Some("VACATION".into()),
        ..DecidePolicy::default()
    };
    let d = decide_with_config(
        &[busy, oof],
        &policy,
        &[],
        "UTC",
        at("2026-11-25T09:30:00Z"),
    )
    .unwrap();
    let div = d.diversion.unwrap();
    assert_eq!(
        (div.reason.as_str(), div.item_id.as_str()),
        ("VACATION", "z-oof")
    );
}

#[test]
fn tie_breaks_later_start_then_earlier_end_then_smaller_id() {
    let long = item("a", "", "2026-11-25T08:00:00Z", "2026-11-25T12:00:00Z");
    let later = item("b", "", "2026-11-25T09:00:00Z", "2026-11-25T11:00:00Z");
    let later_shorter = item("c", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let twin = item("d", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let d = run(&[long, later, later_shorter, twin], "2026-11-25T09:30:00Z");
    assert_eq!(d.diversion.unwrap().item_id, "c");
}

#[test]
fn skipped_reasons_one_per_id_sorted() {
    let mut master = item("m", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    master.kind = ItemKind::RecurringMaster;
    let mut cancelled = item("c", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    cancelled.is_cancelled = true;
    let empty = item("e", "", "2026-11-25T10:00:00Z", "2026-11-25T10:00:00Z");
    let dup1 = item("d", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let mut dup2 = dup1.clone();
    dup2.end = at("2026-11-25T11:00:00Z");
    let same = item("s", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let d = run(
        &[master, cancelled, empty, dup1, dup2, same.clone(), same],
        "2026-11-25T09:30:00Z",
    );
    let got: Vec<_> = d.skipped.iter().map(|s| (s.id.as_str(), s.why)).collect();
    assert_eq!(
        got,
        vec![
            ("c", SkipReason::Cancelled),
            ("d", SkipReason::DuplicateId),
            ("e", SkipReason::EmptyInterval),
            ("m", SkipReason::RecurringMaster)
        ]
    );
    assert_eq!(
        d.diversion.unwrap().item_id,
        "s",
        "identical copies count once"
    );
}

#[test]
fn private_items_divert_without_exposing_text() {
    let mut private = item(
        "p",
        "Läkare",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
    );
    private.sensitivity = Sensitivity::Private;
    let d = run(&[private], "2026-11-25T09:30:00Z");
    let div = d.diversion.unwrap();
    assert_eq!(div.reason, "back");
    assert!(!format!("{div:?}").contains("Läkare"));
}

#[test]
fn blank_reasons_are_policy_problems() {
    let blank = DecidePolicy {
        default_reason: " ".into(),
        oof_reason: Some(String::new()),
        ..DecidePolicy::default()
    };
    let err = decide_with_config(&[], &blank, &[], "UTC", 0).unwrap_err();
    assert_eq!(err.len(), 2);
    assert!(err.iter().all(|p| p.kind == ProblemKind::InvalidPolicy));
}

#[test]
fn out_of_range_instants_are_problems() {
    let bad = CalendarItem::appointment("x", 0, i64::MAX);
    let err = decide_with_config(&[bad], &DecidePolicy::default(), &[], "UTC", 0).unwrap_err();
    assert_eq!(err[0].kind, ProblemKind::InvalidTime);
    let err = decide_with_config(&[], &DecidePolicy::default(), &[], "Atlantis", 0).unwrap_err();
    assert_eq!(err[0].kind, ProblemKind::UnknownZone);
}

// next_change is exact (§2): the earliest instant at which the diversion differs.

fn decide_with(items: &[CalendarItem], policy: &DecidePolicy, now: &str) -> Decision {
    decide_with_config(items, policy, &[], "UTC", at(now)).unwrap()
}

fn item_end() -> DecidePolicy {
    DecidePolicy {
        return_time: ReturnTime::ItemEnd,
        ..DecidePolicy::default()
    }
}

fn oof(id: &str, start: &str, end: &str) -> CalendarItem {
    let mut oof = item(id, "", start, end);
    oof.free_busy = FreeBusy::Oof;
    oof
}

#[test]
fn a_losing_item_ending_is_not_a_change() {
    let a = item("a", "", "2026-11-25T08:00:00Z", "2026-11-25T10:00:00Z");
    let b = item("b", "", "2026-11-25T09:00:00Z", "2026-11-25T11:00:00Z");
    for policy in [DecidePolicy::default(), item_end()] {
        let d = decide_with(&[a.clone(), b.clone()], &policy, "2026-11-25T09:30:00Z");
        let div = d.diversion.clone().unwrap();
        assert_eq!(
            (div.item_id.as_str(), div.until),
            ("b", at("2026-11-25T11:00:00Z"))
        );
        assert_eq!(d.next_change, Some(at("2026-11-25T11:00:00Z")));
        let at_10 = decide_with(&[a.clone(), b.clone()], &policy, "2026-11-25T10:00:00Z");
        assert_eq!(
            at_10.diversion, d.diversion,
            "a ending at 10:00 changes nothing"
        );
    }
}

#[test]
fn a_busy_item_inside_a_winning_oof_is_not_a_change() {
    let away = oof("away", "2026-11-25T08:00:00Z", "2026-11-25T12:00:00Z");
    let busy = item("busy", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    for now in ["2026-11-25T08:30:00Z", "2026-11-25T09:30:00Z"] {
        let d = run(&[away.clone(), busy.clone()], now);
        assert_eq!(d.diversion.unwrap().item_id, "away");
        assert_eq!(d.next_change, Some(at("2026-11-25T12:00:00Z")), "at {now}");
    }
    // Past its end, the oof item has nothing left to lose to.
    let d = run(&[away, busy], "2026-11-25T07:00:00Z");
    assert_eq!(d.next_change, Some(at("2026-11-25T08:00:00Z")));
}

#[test]
fn a_losing_item_ending_inside_the_block_under_either_return_time() {
    // x loses to w (later start) and ends inside the block; w hands over to y at
    // 10:30, which is where the diversion (item, and with item_end the until) changes.
    let x = item("x", "", "2026-11-25T08:00:00Z", "2026-11-25T09:45:00Z");
    let w = item("w", "", "2026-11-25T09:00:00Z", "2026-11-25T10:30:00Z");
    let y = item("y", "", "2026-11-25T10:30:00Z", "2026-11-25T11:00:00Z");
    let items = [x, w, y];
    let block = decide_with(&items, &DecidePolicy::default(), "2026-11-25T09:30:00Z");
    assert_eq!(block.diversion.unwrap().until, at("2026-11-25T11:00:00Z"));
    assert_eq!(block.next_change, Some(at("2026-11-25T10:30:00Z")));
    let own = decide_with(&items, &item_end(), "2026-11-25T09:30:00Z");
    assert_eq!(own.diversion.unwrap().until, at("2026-11-25T10:30:00Z"));
    assert_eq!(own.next_change, Some(at("2026-11-25T10:30:00Z")));
}

#[test]
fn a_future_item_is_a_change_only_if_it_will_win_and_nothing_ahead_is_none() {
    let away = oof("away", "2026-11-25T08:00:00Z", "2026-11-25T12:00:00Z");
    let busy_later = item("busy", "", "2026-11-25T09:00:00Z", "2026-11-25T13:00:00Z");
    let oof_later = oof("trip", "2026-11-25T11:00:00Z", "2026-11-25T11:30:00Z");
    let d = run(&[away.clone(), busy_later.clone()], "2026-11-25T08:30:00Z");
    assert_eq!(d.next_change, Some(at("2026-11-25T12:00:00Z")));
    let d = run(&[away, busy_later, oof_later], "2026-11-25T08:30:00Z");
    assert_eq!(d.next_change, Some(at("2026-11-25T11:00:00Z")));
    // Nothing active: the next start.
    let lunch = item("l", "Lunch", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z");
    let d = run(&[lunch], "2026-11-25T08:00:00Z");
    assert_eq!(
        (d.diversion, d.next_change),
        (None, Some(at("2026-11-25T11:00:00Z")))
    );
    // Nothing ahead that can divert: none.
    assert_eq!(run(&[], "2026-11-25T08:00:00Z").next_change, None);
    let past = item("p", "", "2026-11-25T06:00:00Z", "2026-11-25T07:00:00Z");
    let mut free = item("f", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    free.free_busy = FreeBusy::Free;
    assert_eq!(run(&[past, free], "2026-11-25T08:00:00Z").next_change, None);
}
