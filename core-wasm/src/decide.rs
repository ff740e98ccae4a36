//! The diversion decision (semantics.md §2): which diversion should be active now,
//! and the earliest instant at which that diversion differs (`next_change`).

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

impl<'a> Interval<'a> {
    /// The order of §2.2 among active items: oof beats busy, then the later start,
    /// the earlier end, the smaller id (byte order). Ids of eligible items are
    /// unique, so this is a total order.
    fn rank(&self) -> (bool, Instant, Reverse<Instant>, Reverse<&'a str>) {
        (
            self.item.free_busy == FreeBusy::Oof,
            self.start,
            Reverse(self.end),
            Reverse(self.item.id.as_str()),
        )
    }
}

/// The earliest instant after `now` at which the diversion differs from the one at
/// `now` (§2), or none.
///
/// The diversion at an instant is a function of the item that wins there: the reason
/// comes from its subject and free-busy; `until` is its own end, or the end of the
/// block containing it, and every instant at which one item is active lies in the
/// same block (its interval is part of that block), so `until` is the same too. Ids
/// are unique, so a different winner is a different diversion. The diversion
/// therefore changes exactly when the winner does:
/// - nothing active at `now`: at the first start after `now`;
/// - `w` wins at `now`: every item active at `now` ranks below `w`, and items that
///   end change nothing while `w` is active, so the winner stays `w` until the first
///   item that starts in `(now, w.end)` and outranks `w` (an oof item starting inside
///   a winning busy one, or any later start unless `w` is oof and it is not), or
///   else until `w` ends.
fn next_change(
    eligible: &[Interval<'_>],
    winner: Option<&Interval<'_>>,
    now: Instant,
) -> Option<Instant> {
    match winner {
        None => eligible
            .iter()
            .map(|iv| iv.start)
            .filter(|&t| t > now)
            .min(),
        Some(w) => {
            let overtaken = eligible
                .iter()
                .filter(|iv| now < iv.start && iv.start < w.end && iv.rank() > w.rank())
                .map(|iv| iv.start)
                .min();
            Some(overtaken.unwrap_or(w.end))
        }
    }
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
/// `next_change`, the earliest instant after `now` at which the diversion (reason,
/// until, item id, or none) differs from the one at `now`.
///
/// Pure: the same input gives the same answer whatever the order of `items`.
pub fn decide(
    items: &[CalendarItem],
    policy: &DecidePolicy,
    triggers: &TriggerSet,
    zone: &Zone,
    now: Instant,
) -> Result<Decision, Problems> {
    check_input(items, policy, now)?;
    let Eligible {
        mut eligible,
        mut skipped,
        mut warnings,
    } = eligible_intervals(&group_by_id(items), policy, zone)?;
    skipped.sort_by(|a: &SkippedItem, b: &SkippedItem| a.id.cmp(&b.id));
    warnings.sort();

    let winner = eligible
        .iter()
        .filter(|iv| iv.start <= now && now < iv.end)
        .copied()
        .max_by_key(Interval::rank);
    let next_change = next_change(&eligible, winner.as_ref(), now);
    let diversion = match winner {
        None => None,
        Some(winner) => Some(diversion_of(
            winner,
            &mut eligible,
            policy,
            triggers,
            zone,
            now,
        )?),
    };
    Ok(Decision {
        diversion,
        next_change,
        skipped,
        warnings,
    })
}

/// The problems of the input that make any answer meaningless: blank reason codes and
/// instants outside the range the core accepts.
fn check_input(
    items: &[CalendarItem],
    policy: &DecidePolicy,
    now: Instant,
) -> Result<(), Problems> {
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
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Each id once, in input order, with whether its copies differ (ambiguous).
///
/// A hash map finds each id's group, so ids are compared byte for byte only when
/// they are equal (string comparison is the costliest thing the core does inside
/// WebAssembly). The map is only looked up, never iterated: groups are visited in
/// input order and every output is made order-independent by the caller (the winner
/// by a total order, the lists sorted).
fn group_by_id(items: &[CalendarItem]) -> Vec<(&CalendarItem, bool)> {
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
    groups
}

/// What the eligibility rules (§2.1) leave: the intervals that can divert, the items
/// skipped with their reason, and warnings (unknown zones), all unsorted.
struct Eligible<'a> {
    eligible: Vec<Interval<'a>>,
    skipped: Vec<SkippedItem>,
    warnings: Vec<String>,
}

fn eligible_intervals<'a>(
    groups: &[(&'a CalendarItem, bool)],
    policy: &DecidePolicy,
    zone: &Zone,
) -> Result<Eligible<'a>, Problems> {
    let mut out = Eligible {
        eligible: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    };
    for &(item, ambiguous) in groups {
        if let Some(why) = skip_reason(item, ambiguous) {
            out.skipped.push(SkippedItem {
                id: item.id.clone(),
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
                    out.warnings.push(format!(
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
        out.eligible.push(Interval { start, end, item });
    }
    Ok(out)
}

/// Why an item is reported as skipped, in the order the contract checks them.
fn skip_reason(item: &CalendarItem, ambiguous: bool) -> Option<SkipReason> {
    if ambiguous {
        Some(SkipReason::DuplicateId)
    } else if item.kind == ItemKind::RecurringMaster {
        Some(SkipReason::RecurringMaster)
    } else if item.is_cancelled {
        Some(SkipReason::Cancelled)
    } else if item.end <= item.start {
        Some(SkipReason::EmptyInterval)
    } else {
        None
    }
}

/// The diversion for the winning item: its reason (§2.3) and return time (§2.4).
fn diversion_of(
    winner: Interval<'_>,
    eligible: &mut [Interval<'_>],
    policy: &DecidePolicy,
    triggers: &TriggerSet,
    zone: &Zone,
    now: Instant,
) -> Result<Diversion, Problems> {
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
        ReturnTime::BlockEnd => block_end(eligible, now),
    };
    Ok(Diversion {
        reason,
        until,
        until_local: zone.local_string(until).map_err(|p| vec![p])?,
        item_id: winner.item.id.clone(),
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
#[path = "decide_tests.rs"]
mod tests;
