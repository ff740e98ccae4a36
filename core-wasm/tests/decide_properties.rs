//! Properties of the diversion decision (semantics.md §2) and examples of the seed's
//! behaviours, through the public API only.

use calvert_core::decide::decide_with_config;
use calvert_core::zone::{Zone, parse_instant};
use calvert_core::{
    CalendarItem, DecidePolicy, Decision, FreeBusy, Instant, ItemKind, Response, ReturnTime,
    Trigger,
};
use calvert_testgen::strategy::item_list;
use calvert_testgen::{ItemShape, Times};
use proptest::prelude::*;

const ZONE: &str = "Europe/Stockholm";

fn at(text: &str) -> Instant {
    parse_instant(text).unwrap()
}

fn triggers() -> Vec<Trigger> {
    vec![
        Trigger {
            word: "lunch".into(),
            reason: "LUNCH".into(),
        },
        Trigger {
            word: "möte".into(),
            reason: "MEETING".into(),
        },
        Trigger {
            word: "kund möte".into(),
            reason: "CUSTOMER".into(),
        },
    ]
}

fn decide_at(items: &[CalendarItem], policy: &DecidePolicy, now: Instant) -> Decision {
    decide_with_config(items, policy, &triggers(), ZONE, now).expect("valid input must decide")
}

fn decide_default(items: &[CalendarItem], now: Instant) -> Decision {
    decide_at(items, &DecidePolicy::default(), now)
}

// ---------------------------------------------------------------------------
// Generators (calvert-testgen's, shared with the fuzz targets and the differential
// tests): valid items on a minute grid over five hours from 08:00 UTC on an ordinary
// (not DST) day, a small id alphabet so that ids repeat (with equal or different
// contents), and `now` on the same grid, sometimes half a minute off it.
// ---------------------------------------------------------------------------

fn items() -> impl Strategy<Value = Vec<CalendarItem>> {
    item_list(ItemShape::MORNING)
}

fn now() -> impl Strategy<Value = Instant> {
    calvert_testgen::strategy::now(Times::MORNING)
}

// ---------------------------------------------------------------------------
// An independent reading of §2.1, to check the winner against
// ---------------------------------------------------------------------------

/// Whether `item` may divert under the default policy (§2.1), ignoring time.
fn eligible_by_default(item: &CalendarItem) -> bool {
    let response_ok = if item.is_meeting {
        matches!(item.response, Response::Accept | Response::Organizer)
    } else {
        matches!(item.response, Response::Unknown | Response::Organizer)
    };
    item.kind != ItemKind::RecurringMaster
        && !item.is_cancelled
        && item.end > item.start
        && matches!(item.free_busy, FreeBusy::Busy | FreeBusy::Oof)
        && response_ok
}

/// The interval an item covers for the user: its own, or whole local days when all-day.
fn interval(item: &CalendarItem) -> (Instant, Instant) {
    if !item.is_all_day {
        return (item.start, item.end);
    }
    let user = Zone::parse(ZONE).unwrap();
    let origin = item
        .zone
        .as_deref()
        .and_then(Zone::lookup)
        .unwrap_or_else(|| user.clone());
    user.all_day_interval(&origin, item.start, item.end)
        .unwrap()
}

/// The input item that won, checking that every copy of its id is identical.
fn winner<'a>(items: &'a [CalendarItem], id: &str) -> &'a CalendarItem {
    let copies: Vec<&CalendarItem> = items.iter().filter(|i| i.id == id).collect();
    assert!(
        !copies.is_empty(),
        "the winner {id:?} is not among the items"
    );
    assert!(
        copies.iter().all(|c| *c == copies[0]),
        "the winner {id:?} has differing copies"
    );
    copies[0]
}

/// Instants in `[now, next_change)`, or after `now` when nothing is expected to change.
fn probes(now: Instant, next_change: Option<Instant>, picks: &[u32]) -> Vec<Instant> {
    match next_change {
        Some(next) => {
            let span = next - now;
            let mut ts = vec![now, next - 1, now + span / 2];
            ts.extend(picks.iter().map(|&p| now + i64::from(p) % span));
            ts
        }
        None => {
            let mut ts = vec![now, now + 1, now + 3600, now + 7 * 86_400];
            ts.extend(picks.iter().map(|&p| now + i64::from(p)));
            ts
        }
    }
}

proptest! {
    /// (a) The answer does not depend on the order of the items.
    #[test]
    fn order_does_not_matter(
        (items, shuffled) in items().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        now in now(),
    ) {
        let expected = decide_default(&items, now);
        prop_assert_eq!(&decide_default(&shuffled, now), &expected);
        let mut reversed = items.clone();
        reversed.reverse();
        prop_assert_eq!(&decide_default(&reversed, now), &expected);
        let item_end = DecidePolicy { return_time: ReturnTime::ItemEnd, ..DecidePolicy::default() };
        prop_assert_eq!(decide_at(&shuffled, &item_end, now), decide_at(&items, &item_end, now));
    }

    /// (b) `next_change` is none or strictly after `now`; (c) the diversion is the same
    /// at every instant of `[now, next_change)`, and so is `next_change`.
    #[test]
    fn nothing_changes_before_next_change(
        items in items(),
        now in now(),
        picks in prop::collection::vec(0u32..200_000, 4),
        item_end in any::<bool>(),
    ) {
        let policy = if item_end {
            DecidePolicy { return_time: ReturnTime::ItemEnd, ..DecidePolicy::default() }
        } else {
            DecidePolicy::default()
        };
        let d = decide_at(&items, &policy, now);
        if let Some(next) = d.next_change {
            prop_assert!(next > now, "next_change {} is not after now {}", next, now);
        }
        for t in probes(now, d.next_change, &picks) {
            let later = decide_at(&items, &policy, t);
            prop_assert_eq!(&later.diversion, &d.diversion, "the diversion changed at {} (now {}, next_change {:?})", t, now, d.next_change);
            prop_assert_eq!(later.next_change, d.next_change, "next_change moved at {}", t);
        }
    }

    /// (d) Only an eligible item wins: never a Free item, a declined or unanswered
    /// meeting, a recurring master or a cancelled item; and it is active at `now`.
    #[test]
    fn only_eligible_items_divert(items in items(), now in now()) {
        let d = decide_default(&items, now);
        if let Some(div) = &d.diversion {
            let w = winner(&items, &div.item_id);
            prop_assert!(w.free_busy != FreeBusy::Free);
            prop_assert!(!(w.is_meeting && matches!(w.response, Response::Decline | Response::NoResponse)));
            prop_assert!(w.kind != ItemKind::RecurringMaster);
            prop_assert!(eligible_by_default(w), "ineligible winner {:?}", w);
            let (start, end) = interval(w);
            prop_assert!(start <= now && now < end, "winner {:?} is not active at {}", w, now);
        }
        // An active eligible item exists exactly when there is a diversion.
        let mut unique: Vec<&CalendarItem> = Vec::new();
        for item in &items {
            if items.iter().all(|other| other.id != item.id || other == item) && !unique.contains(&item) {
                unique.push(item);
            }
        }
        let active = unique.iter().any(|i| eligible_by_default(i) && {
            let (s, e) = interval(i);
            s <= now && now < e
        });
        prop_assert_eq!(active, d.diversion.is_some());
    }

    /// (d) Made Free, declined, unanswered or a series, nothing diverts, ever.
    #[test]
    fn ineligible_items_never_divert(items in items(), now in now(), which in 0usize..4) {
        let changed: Vec<CalendarItem> = items
            .into_iter()
            .map(|mut i| {
                match which {
                    0 => i.free_busy = FreeBusy::Free,
                    1 => {
                        i.is_meeting = true;
                        i.response = Response::Decline;
                    }
                    2 => {
                        i.is_meeting = true;
                        i.response = Response::NoResponse;
                    }
                    _ => i.kind = ItemKind::RecurringMaster,
                }
                i
            })
            .collect();
        let d = decide_default(&changed, now);
        prop_assert_eq!(d.diversion, None);
        prop_assert_eq!(d.next_change, None);
    }

    /// (e) `until` is after `now`; with the default (block end) policy it is at or after
    /// the winner's end and the person is really back then; with item end, it is the
    /// winner's end.
    #[test]
    fn until_is_after_now_and_after_the_winners_end(items in items(), now in now()) {
        let d = decide_default(&items, now);
        if let Some(div) = &d.diversion {
            let (_, end) = interval(winner(&items, &div.item_id));
            prop_assert!(div.until > now);
            prop_assert!(div.until >= end, "until {} before the winner's end {}", div.until, end);
            let back = decide_default(&items, div.until);
            prop_assert_eq!(back.diversion, None, "still diverted at the block end {}", div.until);
        }
        let item_end = DecidePolicy { return_time: ReturnTime::ItemEnd, ..DecidePolicy::default() };
        let d2 = decide_at(&items, &item_end, now);
        prop_assert_eq!(d2.diversion.as_ref().map(|x| &x.item_id), d.diversion.as_ref().map(|x| &x.item_id));
        prop_assert_eq!(d2.next_change, d.next_change);
        if let Some(div) = &d2.diversion {
            let (_, end) = interval(winner(&items, &div.item_id));
            prop_assert!(div.until > now);
            prop_assert_eq!(div.until, end);
        }
    }
}

// ---------------------------------------------------------------------------
// The seed's behaviours, as examples
// ---------------------------------------------------------------------------

fn appointment(id: &str, subject: &str, start: &str, end: &str) -> CalendarItem {
    let mut item = CalendarItem::appointment(id, at(start), at(end));
    item.subject = subject.into();
    item
}

fn meeting(id: &str, start: &str, end: &str, response: Response) -> CalendarItem {
    let mut item = appointment(id, "Möte", start, end);
    item.is_meeting = true;
    item.response = response;
    item
}

#[test]
fn busy_diverts_and_free_does_not() {
    let busy = appointment(
        "x",
        "Tandläkare",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
    );
    let d = decide_default(std::slice::from_ref(&busy), at("2026-11-25T09:30:00Z"));
    let div = d.diversion.expect("busy diverts");
    assert_eq!(
        (div.item_id.as_str(), div.until),
        ("x", at("2026-11-25T10:00:00Z"))
    );
    assert_eq!(div.until_local, "2026-11-25T11:00:00+01:00");

    let mut free = busy;
    free.free_busy = FreeBusy::Free;
    let d = decide_default(&[free], at("2026-11-25T09:30:00Z"));
    assert_eq!(d.diversion, None);
    assert_eq!(
        d.next_change, None,
        "a free item can never change the answer"
    );
}

#[test]
fn oof_diverts_and_tentative_only_by_policy() {
    let mut item = appointment("x", "", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    item.free_busy = FreeBusy::Oof;
    assert!(
        decide_default(std::slice::from_ref(&item), at("2026-11-25T09:30:00Z"))
            .diversion
            .is_some()
    );
    item.free_busy = FreeBusy::Tentative;
    assert!(
        decide_default(std::slice::from_ref(&item), at("2026-11-25T09:30:00Z"))
            .diversion
            .is_none()
    );
    let policy = DecidePolicy {
        divert_on: vec![FreeBusy::Busy, FreeBusy::Oof, FreeBusy::Tentative],
        ..DecidePolicy::default()
    };
    assert!(
        decide_at(&[item], &policy, at("2026-11-25T09:30:00Z"))
            .diversion
            .is_some()
    );
}

#[test]
fn first_trigger_in_the_subject_wins() {
    let item = appointment(
        "x",
        "Möte, sedan lunch",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
    );
    let div = decide_default(&[item], at("2026-11-25T09:30:00Z"))
        .diversion
        .unwrap();
    assert_eq!(div.reason, "MEETING");

    let item = appointment(
        "x",
        "Lunch, sedan möte",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
    );
    let div = decide_default(&[item], at("2026-11-25T09:30:00Z"))
        .diversion
        .unwrap();
    assert_eq!(div.reason, "LUNCH");

    // At the same position the longer trigger wins.
    let item = appointment(
        "x",
        "KUND   MÖTE i Lund",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
    );
    let div = decide_default(&[item], at("2026-11-25T09:30:00Z"))
        .diversion
        .unwrap();
    assert_eq!(div.reason, "CUSTOMER");
}

#[test]
fn no_trigger_gives_the_default_reason() {
    for subject in ["Tandläkare", "Lunchmöte", ""] {
        let item = appointment("x", subject, "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
        let div = decide_default(&[item], at("2026-11-25T09:30:00Z"))
            .diversion
            .unwrap();
        assert_eq!(
            div.reason,
            DecidePolicy::default().default_reason,
            "subject {subject:?}"
        );
    }
    // An oof item with no trigger uses the oof reason when one is set.
    let mut oof = appointment("x", "Borta", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    oof.free_busy = FreeBusy::Oof;
    let policy = DecidePolicy {
        oof_reason: Some("AWAY".into()),
        ..DecidePolicy::default()
    };
    assert_eq!(
        decide_at(&[oof], &policy, at("2026-11-25T09:30:00Z"))
            .diversion
            .unwrap()
            .reason,
        "AWAY"
    );
}

#[test]
fn a_meeting_diverts_only_once_accepted_or_organized() {
    let now = at("2026-11-25T09:30:00Z");
    for (response, diverts) in [
        (Response::Unknown, false),
        (Response::NoResponse, false),
        (Response::Tentative, false),
        (Response::Decline, false),
        (Response::Accept, true),
        (Response::Organizer, true),
    ] {
        let m = meeting(
            "m",
            "2026-11-25T09:00:00Z",
            "2026-11-25T10:00:00Z",
            response,
        );
        let d = decide_default(&[m], now);
        assert_eq!(
            d.diversion.is_some(),
            diverts,
            "meeting with response {response:?}"
        );
    }
    // Tentative counts when the policy says so.
    let m = meeting(
        "m",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
        Response::Tentative,
    );
    let policy = DecidePolicy {
        count_tentative_response: true,
        ..DecidePolicy::default()
    };
    assert!(decide_at(&[m], &policy, now).diversion.is_some());
}

#[test]
fn a_moved_meeting_stops_diverting_until_accepted_again() {
    let now = at("2026-11-25T09:30:00Z");
    let accepted = meeting(
        "m",
        "2026-11-25T09:00:00Z",
        "2026-11-25T10:00:00Z",
        Response::Accept,
    );
    let d = decide_default(&[accepted], now);
    assert_eq!(d.diversion.unwrap().until, at("2026-11-25T10:00:00Z"));

    // The organizer moves it: the server resets the invitee's response.
    let moved = meeting(
        "m",
        "2026-11-25T09:15:00Z",
        "2026-11-25T10:30:00Z",
        Response::NoResponse,
    );
    let d = decide_default(std::slice::from_ref(&moved), now);
    assert_eq!(
        d.diversion, None,
        "a moved meeting does not divert before it is accepted again"
    );
    assert_eq!(d.next_change, None);

    let mut reaccepted = moved;
    reaccepted.response = Response::Accept;
    let d = decide_default(&[reaccepted], now);
    let div = d.diversion.expect("re-accepted, it diverts again");
    assert_eq!(div.until, at("2026-11-25T10:30:00Z"));
    assert_eq!(d.next_change, Some(at("2026-11-25T10:30:00Z")));
}

#[test]
fn a_future_item_diverts_from_its_start_to_its_end() {
    let item = appointment("x", "Lunch", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z");
    let items = [item];

    let before = decide_default(&items, at("2026-11-25T08:00:00Z"));
    assert_eq!(before.diversion, None);
    assert_eq!(before.next_change, Some(at("2026-11-25T11:00:00Z")));

    let just_before = decide_default(&items, at("2026-11-25T10:59:59Z"));
    assert_eq!(just_before.diversion, None);
    assert_eq!(just_before.next_change, Some(at("2026-11-25T11:00:00Z")));

    let at_start = decide_default(&items, at("2026-11-25T11:00:00Z"));
    let div = at_start.diversion.expect("diverts at its start");
    assert_eq!(
        (div.reason.as_str(), div.until),
        ("LUNCH", at("2026-11-25T12:00:00Z"))
    );
    assert_eq!(at_start.next_change, Some(at("2026-11-25T12:00:00Z")));

    let at_end = decide_default(&items, at("2026-11-25T12:00:00Z"));
    assert_eq!(at_end.diversion, None);
    assert_eq!(at_end.next_change, None);
}
