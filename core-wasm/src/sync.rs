//! Two-way sync between a business system and Exchange (semantics.md §6 and §7).
//!
//! [`plan_sync`] compares each side's items in the window with the mapping as last
//! synced and returns a sorted list of actions plus a report. A side "changed" when
//! its fingerprint (a hash of the basic fields, [`fingerprint`]) differs from the one
//! recorded. What the connector writes is recorded by fingerprint too (the plan's
//! `mapping` and each action's `fingerprint`), so its own write never comes back as a
//! change.
//!
//! **What the host must pass.** An item that is mapped but absent from the input
//! counts as deleted when its recorded end is inside the window. A window query
//! alone cannot see an item that was moved out of the window, so the host also
//! fetches every mapped id that the window query did not return and passes what it
//! finds (an item outside the window is never a deletion; see `plan_mapped`).
//!
//! The contract (§7) says that `confidential` counts as private, and that both sides
//! changed to the same basic fields is no conflict: no action, only the mapping moves
//! to the new common fingerprint. Decisions beyond the contract, made as a careful
//! user would expect:
//! - An item mapped earlier that is private now (and private items are excluded) is
//!   left alone on both sides and reported as skipped.
//! - A mapped pair with a side that became a series is detached before anything else
//!   is looked at (even when that side is outside the window or private): it is
//!   reported only in `detached`.
//! - Ids that appear twice on one side with different contents, or a mapping that maps
//!   one id twice, make the whole plan an error: ambiguous input is never acted on.
//! - Attendee changes alone are not a change (attendees are not a basic field); they
//!   travel with the next change of the item.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::model::{
    ActionKind, Attendee, AttendeeRole, CalendarItem, Conflict, Detached, Instant, ItemKind,
    MappingEntry, Problem, ProblemKind, Problems, Response, Sensitivity, Side, SyncAction,
    SyncPlan, SyncPolicy, SyncReport, SyncSkip, SyncSkipReason,
};
use crate::zone::{MAX_INSTANT, MIN_INSTANT};

/// The longest look-back window accepted, in days.
pub const MAX_LOOKBACK_DAYS: u32 = 3650;

fn sensitivity_name(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Normal => "normal",
        Sensitivity::Personal => "personal",
        Sensitivity::Private => "private",
        Sensitivity::Confidential => "confidential",
    }
}

fn response_name(r: Response) -> &'static str {
    match r {
        Response::Unknown => "unknown",
        Response::Organizer => "organizer",
        Response::Tentative => "tentative",
        Response::Accept => "accept",
        Response::Decline => "decline",
        Response::NoResponse => "no_response",
    }
}

/// Body text as compared (§7): line endings unified (CRLF and CR become LF) and
/// trailing white space dropped, so a system that stores `\r\n` or `\r`, or trims,
/// does not make the connector's own write look like a change.
fn canonical_body(body: &str) -> String {
    body.replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end()
        .to_string()
}

/// A hash of the synced basic fields: start, end (so duration), all-day, subject,
/// location, body text (see `canonical_body`), reminder, response and sensitivity.
/// Not id, change key, kind, cancellation, created or modified (nor free-busy, the
/// meeting flag, the zone or attendees). 32 hex digits.
pub fn fingerprint(item: &CalendarItem) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"calvert-fingerprint-v1");
    field(&item.start.to_le_bytes());
    field(&item.end.to_le_bytes());
    field(&[u8::from(item.is_all_day)]);
    field(item.subject.as_bytes());
    field(item.location.as_bytes());
    field(canonical_body(&item.body).as_bytes());
    match item.reminder_minutes {
        Some(m) => field(&(u64::from(m) + 1).to_le_bytes()),
        None => field(&0u64.to_le_bytes()),
    }
    field(response_name(item.response).as_bytes());
    field(sensitivity_name(item.sensitivity).as_bytes());
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Copy the basic fields of `from` onto `to`: what an update writes.
pub fn copy_basic_fields(from: &CalendarItem, to: &mut CalendarItem) {
    to.start = from.start;
    to.end = from.end;
    to.is_all_day = from.is_all_day;
    to.zone.clone_from(&from.zone);
    to.subject.clone_from(&from.subject);
    to.location.clone_from(&from.location);
    to.body.clone_from(&from.body);
    to.reminder_minutes = from.reminder_minutes;
    to.response = from.response;
    to.sensitivity = from.sensitivity;
}

/// The attendees to write on `to` for an item copied from the other side.
///
/// An attendee who is a user with integration active links to that person, both ways;
/// resources (rooms) appear as links only; customer and contact links never go to
/// Exchange, and people who are not integrated users are not copied.
pub fn translate_attendees(attendees: &[Attendee], integrated: &BTreeSet<String>) -> Vec<Attendee> {
    let mut seen = BTreeSet::new();
    attendees
        .iter()
        .filter(|a| match a.role {
            AttendeeRole::Resource => true,
            AttendeeRole::Required | AttendeeRole::Optional => {
                integrated.contains(&a.address.trim().to_lowercase())
            }
            AttendeeRole::Contact => false,
        })
        .filter(|a| seen.insert(a.address.trim().to_lowercase()))
        .cloned()
        .collect()
}

fn is_private(item: &CalendarItem) -> bool {
    matches!(
        item.sensitivity,
        Sensitivity::Private | Sensitivity::Confidential
    )
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Business => "business",
        Side::Exchange => "exchange",
    }
}

/// Index one side's items by id; identical copies count once, differing copies are a problem.
fn index_side<'a>(
    items: &'a [CalendarItem],
    side: Side,
    problems: &mut Problems,
) -> BTreeMap<&'a str, &'a CalendarItem> {
    let mut index: BTreeMap<&str, &CalendarItem> = BTreeMap::new();
    for item in items {
        for (what, at) in [("start", item.start), ("end", item.end)] {
            if !(MIN_INSTANT..=MAX_INSTANT).contains(&at) {
                problems.push(Problem::new(
                    ProblemKind::InvalidTime,
                    format!(
                        "{} item {:?} has its {what} outside years -9999..9999",
                        side_name(side),
                        item.id
                    ),
                ));
            }
        }
        if let Some(previous) = index.insert(item.id.as_str(), item)
            && previous != item
        {
            problems.push(Problem::new(
                ProblemKind::DuplicateId,
                format!(
                    "{} item {:?} appears twice with different contents: read the calendar again",
                    side_name(side),
                    item.id
                ),
            ));
        }
    }
    index
}

struct Planner<'a> {
    window_start: Instant,
    policy: &'a SyncPolicy,
    integrated: BTreeSet<String>,
    actions: Vec<SyncAction>,
    report: SyncReport,
    mapping: Vec<MappingEntry>,
}

impl Planner<'_> {
    fn skip(&mut self, side: Side, id: &str, why: SyncSkipReason) {
        self.report.skipped.push(SyncSkip {
            side,
            id: id.to_string(),
            why,
        });
    }

    /// Write `source` (from the other side) onto `side`.
    fn write(
        &mut self,
        action: ActionKind,
        side: Side,
        exchange_id: Option<&str>,
        business_id: Option<&str>,
        source: &CalendarItem,
    ) {
        self.actions.push(SyncAction {
            action,
            side,
            exchange_id: exchange_id.map(str::to_string),
            business_id: business_id.map(str::to_string),
            fingerprint: Some(fingerprint(source)),
            attendees: translate_attendees(&source.attendees, &self.integrated),
        });
    }

    fn delete(&mut self, side: Side, exchange_id: &str, business_id: &str) {
        self.actions.push(SyncAction {
            action: ActionKind::Delete,
            side,
            exchange_id: Some(exchange_id.to_string()),
            business_id: Some(business_id.to_string()),
            fingerprint: None,
            attendees: Vec::new(),
        });
    }

    fn keep(&mut self, entry: &MappingEntry) {
        self.mapping.push(entry.clone());
    }

    fn record(&mut self, entry: &MappingEntry, synced: &CalendarItem) {
        let fp = fingerprint(synced);
        self.mapping.push(MappingEntry {
            exchange_id: entry.exchange_id.clone(),
            business_id: entry.business_id.clone(),
            exchange_fp: fp.clone(),
            business_fp: fp,
            end: synced.end,
        });
    }

    /// An item as read now, if it is in the window; one outside is reported.
    fn in_window<'i>(
        &mut self,
        side: Side,
        item: Option<&'i CalendarItem>,
    ) -> Option<&'i CalendarItem> {
        let item = item?;
        if item.end < self.window_start {
            self.skip(side, &item.id, SyncSkipReason::OutsideWindow);
            None
        } else {
            Some(item)
        }
    }

    fn guarded_private(&mut self, items: [(Side, Option<&CalendarItem>); 2]) -> bool {
        if self.policy.sync_private {
            return false;
        }
        let mut any = false;
        for (side, item) in items {
            if let Some(item) = item.filter(|i| is_private(i)) {
                self.skip(side, &item.id, SyncSkipReason::Private);
                any = true;
            }
        }
        any
    }

    fn plan_mapped(
        &mut self,
        entry: &MappingEntry,
        exchange: Option<&CalendarItem>,
        business: Option<&CalendarItem>,
    ) {
        // Recurrence guard: a synced item that became a series is detached, left alone.
        for (side, item) in [(Side::Exchange, exchange), (Side::Business, business)] {
            if item.is_some_and(|i| i.kind != ItemKind::Single) {
                self.report.detached.push(Detached {
                    exchange_id: entry.exchange_id.clone(),
                    business_id: entry.business_id.clone(),
                    side,
                });
                self.keep(entry);
                return;
            }
        }
        let read = (exchange.is_some(), business.is_some());
        let exchange = self.in_window(Side::Exchange, exchange);
        let business = self.in_window(Side::Business, business);
        // Absent from a read of the window counts as deleted only if the item was in
        // the window when last synced; otherwise it merely left the window.
        let was_in_window = entry.end >= self.window_start;
        let (ex, bz) = (entry.exchange_id.as_str(), entry.business_id.as_str());
        if self.guarded_private([(Side::Exchange, exchange), (Side::Business, business)]) {
            self.keep(entry);
            return;
        }
        // An item that was read but lies outside the window still exists: it moved out
        // of the window since the last sync. That is not a deletion, so its copy is
        // neither deleted nor recreated; the pair is left alone and the link kept.
        let left_window = (read.0 && exchange.is_none()) || (read.1 && business.is_none());
        if left_window && was_in_window {
            self.keep(entry);
            return;
        }
        let changed = |item: &CalendarItem, recorded: &str| fingerprint(item) != recorded;
        match (exchange, business) {
            (None, None) => {
                if !was_in_window {
                    self.keep(entry);
                }
            }
            (Some(e), None) => {
                let e_changed = changed(e, &entry.exchange_fp);
                if !was_in_window {
                    if e_changed {
                        self.write(ActionKind::Update, Side::Business, Some(ex), Some(bz), e);
                        self.record(entry, e);
                    } else {
                        self.keep(entry);
                    }
                } else if e_changed {
                    // Deleted in the business system, changed in Exchange: the change wins.
                    self.write(ActionKind::Create, Side::Business, Some(ex), None, e);
                } else {
                    self.delete(Side::Exchange, ex, bz);
                }
            }
            (None, Some(b)) => {
                let b_changed = changed(b, &entry.business_fp);
                if !was_in_window {
                    if b_changed {
                        self.write(ActionKind::Update, Side::Exchange, Some(ex), Some(bz), b);
                        self.record(entry, b);
                    } else {
                        self.keep(entry);
                    }
                } else if b_changed {
                    self.write(ActionKind::Create, Side::Exchange, None, Some(bz), b);
                } else {
                    self.delete(Side::Business, ex, bz);
                }
            }
            (Some(e), Some(b)) => {
                let e_fp = fingerprint(e);
                let b_fp = fingerprint(b);
                match (e_fp != entry.exchange_fp, b_fp != entry.business_fp) {
                    (false, false) => self.keep(entry),
                    (true, false) => {
                        self.write(ActionKind::Update, Side::Business, Some(ex), Some(bz), e);
                        self.record(entry, e);
                    }
                    (false, true) => {
                        self.write(ActionKind::Update, Side::Exchange, Some(ex), Some(bz), b);
                        self.record(entry, b);
                    }
                    (true, true) if e_fp == b_fp => self.record(entry, e),
                    (true, true) => {
                        // Both changed: the later `modified` wins; equal (or unknown) times, Exchange.
                        let business_wins = b.modified > e.modified;
                        let (winner, loser, target) = if business_wins {
                            (b, e, Side::Exchange)
                        } else {
                            (e, b, Side::Business)
                        };
                        self.report.conflicts.push(Conflict {
                            exchange_id: ex.to_string(),
                            business_id: bz.to_string(),
                            winner: if business_wins {
                                Side::Business
                            } else {
                                Side::Exchange
                            },
                            loser: loser.clone(),
                        });
                        self.write(ActionKind::Update, target, Some(ex), Some(bz), winner);
                        self.record(entry, winner);
                    }
                }
            }
        }
    }

    fn plan_unmapped(&mut self, side: Side, item: &CalendarItem) {
        if item.end < self.window_start {
            self.skip(side, &item.id, SyncSkipReason::OutsideWindow);
        } else if item.kind != ItemKind::Single {
            self.skip(side, &item.id, SyncSkipReason::Recurring);
        } else if !self.policy.sync_private && is_private(item) {
            self.skip(side, &item.id, SyncSkipReason::Private);
        } else {
            match side {
                Side::Exchange => self.write(
                    ActionKind::Create,
                    Side::Business,
                    Some(&item.id),
                    None,
                    item,
                ),
                Side::Business => self.write(
                    ActionKind::Create,
                    Side::Exchange,
                    None,
                    Some(&item.id),
                    item,
                ),
            }
        }
    }
}

/// Plan one two-way sync round for one user. Pure; the same input gives the same plan.
pub fn plan_sync(
    exchange: &[CalendarItem],
    business: &[CalendarItem],
    mapping: &[MappingEntry],
    policy: &SyncPolicy,
    now: Instant,
) -> Result<SyncPlan, Problems> {
    let mut problems = Vec::new();
    if policy.lookback_days > MAX_LOOKBACK_DAYS {
        problems.push(Problem::new(
            ProblemKind::InvalidPolicy,
            format!(
                "lookback_days {} is more than {MAX_LOOKBACK_DAYS}: choose a shorter window",
                policy.lookback_days
            ),
        ));
    }
    if !(MIN_INSTANT..=MAX_INSTANT).contains(&now) {
        problems.push(Problem::new(
            ProblemKind::InvalidTime,
            format!("now ({now}) is outside years -9999..9999"),
        ));
    }
    let exchange_items = index_side(exchange, Side::Exchange, &mut problems);
    let business_items = index_side(business, Side::Business, &mut problems);
    let mut mapped_exchange = BTreeSet::new();
    let mut mapped_business = BTreeSet::new();
    for entry in mapping {
        if !mapped_exchange.insert(entry.exchange_id.as_str()) {
            problems.push(Problem::new(
                ProblemKind::DuplicateId,
                format!(
                    "the mapping lists exchange item {:?} twice: repair the user's sync state",
                    entry.exchange_id
                ),
            ));
        }
        if !mapped_business.insert(entry.business_id.as_str()) {
            problems.push(Problem::new(
                ProblemKind::DuplicateId,
                format!(
                    "the mapping lists business item {:?} twice: repair the user's sync state",
                    entry.business_id
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let window_start = now - i64::from(policy.lookback_days) * 86_400;
    let mut planner = Planner {
        window_start,
        policy,
        integrated: policy
            .integrated_users
            .iter()
            .map(|a| a.trim().to_lowercase())
            .collect(),
        actions: Vec::new(),
        report: SyncReport {
            skipped: Vec::new(),
            conflicts: Vec::new(),
            detached: Vec::new(),
        },
        mapping: Vec::new(),
    };

    if policy.mailbox_is_resource {
        // Rooms are never synced as calendars (they only appear as links).
        for item in exchange_items.values() {
            planner.skip(Side::Exchange, &item.id, SyncSkipReason::Resource);
        }
        for item in business_items.values() {
            planner.skip(Side::Business, &item.id, SyncSkipReason::Resource);
        }
        planner.mapping = mapping.to_vec();
    } else {
        for entry in mapping {
            let e = exchange_items.get(entry.exchange_id.as_str()).copied();
            let b = business_items.get(entry.business_id.as_str()).copied();
            planner.plan_mapped(entry, e, b);
        }
        for (id, item) in &exchange_items {
            if !mapped_exchange.contains(id) {
                planner.plan_unmapped(Side::Exchange, item);
            }
        }
        for (id, item) in &business_items {
            if !mapped_business.contains(id) {
                planner.plan_unmapped(Side::Business, item);
            }
        }
    }

    let Planner {
        mut actions,
        mut report,
        mut mapping,
        ..
    } = planner;
    actions.sort_by(|a, b| {
        (a.side, a.action, &a.exchange_id, &a.business_id).cmp(&(
            b.side,
            b.action,
            &b.exchange_id,
            &b.business_id,
        ))
    });
    report
        .skipped
        .sort_by(|a, b| (&a.id, a.side, a.why).cmp(&(&b.id, b.side, b.why)));
    report
        .skipped
        .dedup_by(|a, b| a.id == b.id && a.side == b.side);
    report
        .conflicts
        .sort_by(|a, b| (&a.exchange_id, &a.business_id).cmp(&(&b.exchange_id, &b.business_id)));
    report
        .detached
        .sort_by(|a, b| (&a.exchange_id, &a.business_id).cmp(&(&b.exchange_id, &b.business_id)));
    mapping.sort_by(|a, b| (&a.exchange_id, &a.business_id).cmp(&(&b.exchange_id, &b.business_id)));
    Ok(SyncPlan {
        actions,
        report,
        mapping,
    })
}
