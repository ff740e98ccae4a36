//! The diversion decision (semantics.md §2): which diversion should be active now,
//! and the earliest instant at which that answer can change.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, DefaultHasher};

use crate::model::{
    CalendarItem, DecidePolicy, Decision, Diversion, FreeBusy, Instant, ItemKind, Problem,
    ProblemKind, Problems, Response, ReturnTime, SkipReason, SkippedItem, Trigger,
};
use crate::trigger::TriggerSet;
use crate::zone::{MAX_INSTANT, MIN_INSTANT, Zone};

/// An eligible item as an interval (all-day items already placed in the user's zone).
#[derive(Debug, Clone, Copy)]
struct Interval<'a> {
    start: Instant,
    end: Instant,
    item: &'a CalendarItem,
}

/// Whether the user's response lets the item divert (§2.1 rule 4).
///
/// A meeting counts once accepted or when the user organizes it. A plain appointment
/// counts with response unknown or organizer; an "accept" on something that is not a
/// meeting is inconsistent data and, as the contract lists it, does not count.
/// Decline and no-response never count; tentative only when the policy says so.
pub fn response_counts(item: &CalendarItem, policy: &DecidePolicy) -> bool {
    match item.response {
        Response::Decline | Response::NoResponse => false,
        Response::Tentative => policy.count_tentative_response,
        Response::Organizer => true,
        Response::Accept => item.is_meeting,
        Response::Unknown => !item.is_meeting,
    }
}

fn check_instant(what: &str, id: &str, at: Instant) -> Result<(), Problem> {
    if (MIN_INSTANT..=MAX_INSTANT).contains(&at) {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemKind::InvalidTime,
            format!(
                "{what} of item {id:?} ({at}) is outside years -9999..9999: check the calendar source"
            ),
        ))
    }
}

/// Validate the triggers and zone, then decide. See [`decide`].
pub fn decide_with_config(
    items: &[CalendarItem],
    policy: &DecidePolicy,
    triggers: &[Trigger],
    zone: &str,
    now: Instant,
) -> Result<Decision, Problems> {
    let triggers = TriggerSet::new(triggers);
    let zone = Zone::parse(zone);
    match (triggers, zone) {
        (Ok(triggers), Ok(zone)) => decide(items, policy, &triggers, &zone, now),
        (triggers, zone) => {
            let mut problems = triggers.err().unwrap_or_default();
            problems.extend(zone.err());
            Err(problems)
        }
    }
}

/// The diversion that should be active at `now` for a user in `zone`, and
/// `next_change`, the earliest instant after `now` at which the answer can change.
///
/// Pure: the same input gives the same answer whatever the order of `items`.
pub fn decide(
    items: &[CalendarItem],
    policy: &DecidePolicy,
    triggers: &TriggerSet,
    zone: &Zone,
    now: Instant,
) -> Result<Decision, Problems> {
    let mut problems = Vec::new();
    if policy.default_reason.trim().is_empty() {
        problems.push(Problem::new(
            ProblemKind::InvalidPolicy,
            "the default reason is empty: set it to the code for \"back at\"",
        ));
    }
    if policy
        .oof_reason
        .as_deref()
        .is_some_and(|r| r.trim().is_empty())
    {
        problems.push(Problem::new(
            ProblemKind::InvalidPolicy,
            "the out-of-office reason is empty: set it to a reason code, or leave it out to use the default reason",
        ));
    }
    if let Err(p) = check_instant("now", "-", now) {
        problems.push(p);
    }
    for item in items {
        problems.extend(check_instant("start", &item.id, item.start).err());
        problems.extend(check_instant("end", &item.id, item.end).err());
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Group by id: identical copies count once, differing copies are ambiguous.
    // A hash map finds each id's group, so ids are compared byte for byte only when
    // they are equal (string comparison is the costliest thing the core does inside
    // WebAssembly). The map is only looked up, never iterated: groups are visited in
    // input order and every output is made order-independent below (the winner by
    // a total order, the lists sorted).
    let mut group_of: HashMap<&str, usize, BuildHasherDefault<DefaultHasher>> =
        HashMap::with_capacity_and_hasher(items.len(), BuildHasherDefault::default());
    let mut groups: Vec<(&CalendarItem, bool)> = Vec::with_capacity(items.len());
    for item in items {
        match group_of.entry(item.id.as_str()) {
            Entry::Occupied(slot) => {
                let (first, ambiguous) = &mut groups[*slot.get()];
                *ambiguous = *ambiguous || *first != item;
            }
            Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push((item, false));
            }
        }
    }

    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut eligible: Vec<Interval<'_>> = Vec::new();
    for &(item, ambiguous) in &groups {
        let id = item.id.as_str();
        let why = if ambiguous {
            Some(SkipReason::DuplicateId)
        } else if item.kind == ItemKind::RecurringMaster {
            Some(SkipReason::RecurringMaster)
        } else if item.is_cancelled {
            Some(SkipReason::Cancelled)
        } else if item.end <= item.start {
            Some(SkipReason::EmptyInterval)
        } else {
            None
        };
        if let Some(why) = why {
            skipped.push(SkippedItem {
                id: (*id).to_string(),
                why,
            });
            continue;
        }
        if !policy.divert_on.contains(&item.free_busy) || !response_counts(item, policy) {
            continue;
        }
        let (start, end) = if item.is_all_day {
            let origin = match item.zone.as_deref() {
                None => zone.clone(),
                Some(id) => Zone::lookup(id).unwrap_or_else(|| {
                    warnings.push(format!(
                        "item {:?} has an unknown time zone {id:?}: its days are read in {}",
                        item.id, zone.iana
                    ));
                    zone.clone()
                }),
            };
            zone.all_day_interval(&origin, item.start, item.end)
                .map_err(|p| vec![p])?
        } else {
            (item.start, item.end)
        };
        eligible.push(Interval { start, end, item });
    }

    skipped.sort_by(|a: &SkippedItem, b: &SkippedItem| a.id.cmp(&b.id));
    warnings.sort();

    let next_change = eligible
        .iter()
        .flat_map(|iv| [iv.start, iv.end])
        .filter(|&t| t > now)
        .min();

    let winner = eligible
        .iter()
        .filter(|iv| iv.start <= now && now < iv.end)
        .copied()
        .max_by_key(|iv| {
            (
                iv.item.free_busy == FreeBusy::Oof,
                iv.start,
                Reverse(iv.end),
                Reverse(iv.item.id.as_str()),
            )
        });

    let diversion = match winner {
        None => None,
        Some(winner) => {
            let reason = match triggers.resolve(&winner.item.subject) {
                Some(found) => found.reason,
                None if winner.item.free_busy == FreeBusy::Oof => policy
                    .oof_reason
                    .clone()
                    .unwrap_or_else(|| policy.default_reason.clone()),
                None => policy.default_reason.clone(),
            };
            let until = match policy.return_time {
                ReturnTime::ItemEnd => winner.end,
                ReturnTime::BlockEnd => block_end(&mut eligible, now),
            };
            Some(Diversion {
                reason,
                until,
                until_local: zone.local_string(until).map_err(|p| vec![p])?,
                item_id: winner.item.id.clone(),
            })
        }
    };

    Ok(Decision {
        diversion,
        next_change,
        skipped,
        warnings,
    })
}

/// The end of the busy block that contains `now`: the union of eligible intervals
/// that overlap or touch, starting from those active at `now`.
fn block_end(eligible: &mut [Interval<'_>], now: Instant) -> Instant {
    eligible.sort_by_key(|iv| (iv.start, iv.end));
    let mut end = eligible
        .iter()
        .filter(|iv| iv.start <= now && now < iv.end)
        .map(|iv| iv.end)
        .max()
        .unwrap_or(now);
    for iv in eligible.iter() {
        if iv.start > end {
            break;
        }
        end = end.max(iv.end);
    }
    end
}

#[cfg(test)]
mod tests {
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
        let d =
            decide_with_config(&[a, b], &policy, &[], "UTC", at("2026-11-25T09:30:00Z")).unwrap();
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
        let err =
            decide_with_config(&[], &DecidePolicy::default(), &[], "Atlantis", 0).unwrap_err();
        assert_eq!(err[0].kind, ProblemKind::UnknownZone);
    }
}
