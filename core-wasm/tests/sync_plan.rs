//! The two-way sync plan (semantics.md §6 and §7): one scenario per rule, then
//! properties checked by applying plans with a small simulator of both calendars.

use std::collections::BTreeSet;

use calvert_core::sync::{copy_basic_fields, translate_attendees};
use calvert_core::zone::parse_instant;
use calvert_core::{
    ActionKind, Attendee, AttendeeRole, CalendarItem, Conflict, Detached, Instant, ItemKind,
    MappingEntry, ProblemKind, Response, Sensitivity, Side, SyncAction, SyncPlan, SyncPolicy,
    SyncSkip, SyncSkipReason, fingerprint, plan_sync,
};
use calvert_testgen::strategy::{kind, one_item, sync_policy};
use calvert_testgen::{Inputs, ItemShape};
use proptest::prelude::*;
use proptest::sample::Index;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

fn at(text: &str) -> Instant {
    parse_instant(text).unwrap()
}

fn now() -> Instant {
    at("2026-11-25T12:00:00Z")
}

/// The start of the default window: seven days before [`now`].
fn window_start() -> Instant {
    now() - 7 * DAY
}

fn item(id: &str, start: Instant, end: Instant) -> CalendarItem {
    let mut item = CalendarItem::appointment(id, start, end);
    item.subject = format!("Subject of {id}");
    item.response = Response::Organizer;
    item
}

/// An item tomorrow at 09:00-10:00.
fn tomorrow(id: &str) -> CalendarItem {
    item(id, now() + DAY - 3 * HOUR, now() + DAY - 2 * HOUR)
}

/// The mapping entry the last sync of `e` and `b` recorded.
fn synced(e: &CalendarItem, b: &CalendarItem) -> MappingEntry {
    MappingEntry {
        exchange_id: e.id.clone(),
        business_id: b.id.clone(),
        exchange_fp: fingerprint(e),
        business_fp: fingerprint(b),
        end: e.end,
    }
}

/// A synced pair: the same basic fields on both sides, and its mapping entry.
fn pair(ex: &str, bz: &str) -> (CalendarItem, CalendarItem, MappingEntry) {
    let e = tomorrow(ex);
    let mut b = e.clone();
    b.id = bz.to_string();
    let entry = synced(&e, &b);
    (e, b, entry)
}

fn plan_with(
    exchange: &[CalendarItem],
    business: &[CalendarItem],
    mapping: &[MappingEntry],
    policy: &SyncPolicy,
) -> SyncPlan {
    plan_sync(exchange, business, mapping, policy, now()).expect("valid input must plan")
}

fn plan(
    exchange: &[CalendarItem],
    business: &[CalendarItem],
    mapping: &[MappingEntry],
) -> SyncPlan {
    plan_with(exchange, business, mapping, &SyncPolicy::default())
}

type Summary = (ActionKind, Side, Option<String>, Option<String>);

fn summary(plan: &SyncPlan) -> Vec<Summary> {
    plan.actions
        .iter()
        .map(|a| {
            (
                a.action,
                a.side,
                a.exchange_id.clone(),
                a.business_id.clone(),
            )
        })
        .collect()
}

fn act(action: ActionKind, side: Side, ex: Option<&str>, bz: Option<&str>) -> Summary {
    (action, side, ex.map(str::to_string), bz.map(str::to_string))
}

fn skip(side: Side, id: &str, why: SyncSkipReason) -> SyncSkip {
    SyncSkip {
        side,
        id: id.to_string(),
        why,
    }
}

fn assert_quiet(plan: &SyncPlan) {
    assert!(
        plan.actions.is_empty(),
        "unexpected actions {:?}",
        plan.actions
    );
    assert!(
        plan.report.conflicts.is_empty(),
        "unexpected conflicts {:?}",
        plan.report.conflicts
    );
}

// ---------------------------------------------------------------------------
// Window
// ---------------------------------------------------------------------------

#[test]
fn items_ending_before_the_window_are_outside_it() {
    let old_e = item("old-e", window_start() - HOUR, window_start() - 1);
    let edge_e = item("edge-e", window_start() - HOUR, window_start());
    let old_b = item("old-b", window_start() - 2 * DAY, window_start() - DAY);
    let p = plan(&[old_e, edge_e.clone()], &[old_b], &[]);
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Create,
            Side::Business,
            Some("edge-e"),
            None
        )]
    );
    assert_eq!(
        p.report.skipped,
        vec![
            skip(Side::Business, "old-b", SyncSkipReason::OutsideWindow),
            skip(Side::Exchange, "old-e", SyncSkipReason::OutsideWindow),
        ]
    );
    assert_eq!(
        p.actions[0].fingerprint.as_deref(),
        Some(fingerprint(&edge_e).as_str())
    );
}

#[test]
fn the_window_length_is_configurable() {
    let two_days_ago = item("e", now() - 2 * DAY - HOUR, now() - 2 * DAY);
    let policy = SyncPolicy {
        lookback_days: 1,
        ..SyncPolicy::default()
    };
    let p = plan_with(std::slice::from_ref(&two_days_ago), &[], &[], &policy);
    assert!(p.actions.is_empty());
    assert_eq!(
        p.report.skipped,
        vec![skip(Side::Exchange, "e", SyncSkipReason::OutsideWindow)]
    );
    let p = plan(&[two_days_ago], &[], &[]);
    assert_eq!(
        summary(&p),
        vec![act(ActionKind::Create, Side::Business, Some("e"), None)]
    );
}

#[test]
fn a_mapped_item_that_left_the_window_is_not_a_deletion() {
    // Synced while in the window; now it ended more than seven days ago, and a read of
    // the window returns it on neither side.
    let e = item("e1", window_start() - 3 * HOUR, window_start() - 2 * HOUR);
    let mut b = e.clone();
    b.id = "b1".into();
    let entry = synced(&e, &b);
    let p = plan(&[], &[], std::slice::from_ref(&entry));
    assert_quiet(&p);
    assert_eq!(p.mapping, vec![entry.clone()], "the link is kept");

    // Returned on one side only (the host read more than the window): still nothing.
    let p = plan(std::slice::from_ref(&e), &[], std::slice::from_ref(&entry));
    assert_quiet(&p);
    assert_eq!(p.mapping, vec![entry.clone()]);
    assert_eq!(
        p.report.skipped,
        vec![skip(Side::Exchange, "e1", SyncSkipReason::OutsideWindow)]
    );
    let p = plan(&[], std::slice::from_ref(&b), std::slice::from_ref(&entry));
    assert_quiet(&p);
    assert_eq!(p.mapping, vec![entry.clone()]);

    // Returned on both sides, unchanged: nothing, and reported as outside the window.
    let p = plan(&[e], &[b], std::slice::from_ref(&entry));
    assert_quiet(&p);
    assert_eq!(p.mapping, vec![entry]);
    assert_eq!(p.report.skipped.len(), 2);
}

#[test]
fn an_item_moved_out_of_the_window_is_not_a_deletion_of_its_copy() {
    // Synced tomorrow; then moved in Exchange to two weeks ago. Exchange still returns it
    // (it exists), so the business copy must not be deleted or duplicated.
    let (e, b, entry) = pair("e1", "b1");
    let mut moved = e.clone();
    moved.start = now() - 14 * DAY;
    moved.end = moved.start + HOUR;
    let p = plan(
        std::slice::from_ref(&moved),
        std::slice::from_ref(&b),
        std::slice::from_ref(&entry),
    );
    assert_quiet(&p);
    assert_eq!(p.mapping, vec![entry.clone()]);
    assert_eq!(
        p.report.skipped,
        vec![skip(Side::Exchange, "e1", SyncSkipReason::OutsideWindow)]
    );

    // The same on the business side, with the other side changed: no recreation either.
    let mut moved_b = b.clone();
    moved_b.start = now() - 14 * DAY;
    moved_b.end = moved_b.start + HOUR;
    let mut edited_e = e;
    edited_e.subject = "Edited".into();
    let p = plan(&[edited_e], &[moved_b], std::slice::from_ref(&entry));
    assert!(
        p.actions
            .iter()
            .all(|a| a.action != ActionKind::Delete && a.action != ActionKind::Create),
        "{:?}",
        p.actions
    );
    assert!(
        p.mapping
            .iter()
            .any(|m| m.exchange_id == "e1" && m.business_id == "b1"),
        "the link is kept"
    );
}

// ---------------------------------------------------------------------------
// Changes
// ---------------------------------------------------------------------------

#[test]
fn unchanged_on_both_sides_does_nothing() {
    let (e, b, entry) = pair("e1", "b1");
    let p = plan(&[e], &[b], std::slice::from_ref(&entry));
    assert_quiet(&p);
    assert!(p.report.skipped.is_empty());
    assert_eq!(p.mapping, vec![entry]);
}

#[test]
fn a_change_on_one_side_updates_the_other() {
    let (e, b, entry) = pair("e1", "b1");

    let mut edited = e.clone();
    edited.subject = "Moved and renamed".into();
    edited.start += HOUR;
    edited.end += 2 * HOUR;
    let p = plan(
        std::slice::from_ref(&edited),
        std::slice::from_ref(&b),
        std::slice::from_ref(&entry),
    );
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Update,
            Side::Business,
            Some("e1"),
            Some("b1")
        )]
    );
    let fp = fingerprint(&edited);
    assert_eq!(p.actions[0].fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(
        p.mapping,
        vec![MappingEntry {
            exchange_fp: fp.clone(),
            business_fp: fp,
            end: edited.end,
            ..entry.clone()
        }]
    );

    let mut edited = b.clone();
    edited.body = "New agenda".into();
    edited.reminder_minutes = Some(15);
    let p = plan(
        std::slice::from_ref(&e),
        std::slice::from_ref(&edited),
        std::slice::from_ref(&entry),
    );
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Update,
            Side::Exchange,
            Some("e1"),
            Some("b1")
        )]
    );
    assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&edited)));
    assert!(p.report.conflicts.is_empty());
}

#[test]
fn line_endings_and_trailing_white_space_of_the_body_are_not_a_change() {
    let (mut e, mut b, _) = pair("e1", "b1");
    e.body = "Agenda\n1. Offert".into();
    b.body = e.body.clone();
    let entry = synced(&e, &b);
    // One system stores CR line endings, the other CRLF and a trailing blank line.
    e.body = "Agenda\r1. Offert\r".into();
    b.body = "Agenda\r\n1. Offert \r\n".into();
    let p = plan(&[e], &[b], &[entry]);
    assert_quiet(&p);
}

#[test]
fn fields_outside_the_fingerprint_are_not_a_change() {
    let (e, mut b, entry) = pair("e1", "b1");
    b.change_key = "ck-2".into();
    b.modified = Some(now());
    b.created = Some(now() - DAY);
    b.attendees = vec![Attendee {
        address: "anna@flexi.se".into(),
        role: AttendeeRole::Required,
    }];
    let p = plan(&[e], &[b], &[entry]);
    assert_quiet(&p);
}

fn both_changed(
    e_modified: Option<Instant>,
    b_modified: Option<Instant>,
) -> (CalendarItem, CalendarItem, SyncPlan) {
    let (mut e, mut b, entry) = pair("e1", "b1");
    e.subject = "Exchange's version".into();
    e.modified = e_modified;
    b.subject = "Business version".into();
    b.modified = b_modified;
    let p = plan(std::slice::from_ref(&e), std::slice::from_ref(&b), &[entry]);
    (e, b, p)
}

#[test]
fn both_changed_the_later_modification_wins_and_the_loser_is_reported() {
    let (e, b, p) = both_changed(Some(now() - HOUR), Some(now() - 60));
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Update,
            Side::Exchange,
            Some("e1"),
            Some("b1")
        )]
    );
    assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&b)));
    assert_eq!(
        p.report.conflicts,
        vec![Conflict {
            exchange_id: "e1".into(),
            business_id: "b1".into(),
            winner: Side::Business,
            loser: e
        }]
    );
    assert_eq!(p.mapping[0].exchange_fp, fingerprint(&b));
    assert_eq!(p.mapping[0].business_fp, fingerprint(&b));

    let (e, b, p) = both_changed(Some(now() - 60), Some(now() - HOUR));
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Update,
            Side::Business,
            Some("e1"),
            Some("b1")
        )]
    );
    assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&e)));
    assert_eq!(
        p.report.conflicts,
        vec![Conflict {
            exchange_id: "e1".into(),
            business_id: "b1".into(),
            winner: Side::Exchange,
            loser: b
        }]
    );
}

#[test]
fn both_changed_at_the_same_time_exchange_wins() {
    for modified in [Some(now() - HOUR), None] {
        let (e, b, p) = both_changed(modified, modified);
        assert_eq!(
            summary(&p),
            vec![act(
                ActionKind::Update,
                Side::Business,
                Some("e1"),
                Some("b1")
            )]
        );
        assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&e)));
        assert_eq!(p.report.conflicts.len(), 1);
        assert_eq!(
            (p.report.conflicts[0].winner, &p.report.conflicts[0].loser),
            (Side::Exchange, &b)
        );
    }
}

#[test]
fn both_changed_alike_is_not_a_conflict() {
    let (mut e, mut b, entry) = pair("e1", "b1");
    e.subject = "Same edit".into();
    b.subject = "Same edit".into();
    b.modified = Some(now());
    let p = plan(std::slice::from_ref(&e), &[b], &[entry]);
    assert_quiet(&p);
    assert_eq!(p.mapping[0].exchange_fp, fingerprint(&e));
    assert_eq!(p.mapping[0].business_fp, fingerprint(&e));
}

// ---------------------------------------------------------------------------
// Deletions
// ---------------------------------------------------------------------------

#[test]
fn deleted_on_one_side_and_unchanged_on_the_other_deletes_it() {
    let (e, b, entry) = pair("e1", "b1");
    let p = plan(&[], &[b], std::slice::from_ref(&entry));
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Delete,
            Side::Business,
            Some("e1"),
            Some("b1")
        )]
    );
    assert_eq!(p.actions[0].fingerprint, None);
    assert!(p.mapping.is_empty(), "the link goes with the item");

    let p = plan(&[e], &[], &[entry]);
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Delete,
            Side::Exchange,
            Some("e1"),
            Some("b1")
        )]
    );
    assert!(p.mapping.is_empty());
}

#[test]
fn deleted_on_one_side_and_changed_on_the_other_recreates_it() {
    let (e, b, entry) = pair("e1", "b1");
    let mut changed_b = b;
    changed_b.location = "Rum 4".into();
    let p = plan(
        &[],
        std::slice::from_ref(&changed_b),
        std::slice::from_ref(&entry),
    );
    assert_eq!(
        summary(&p),
        vec![act(ActionKind::Create, Side::Exchange, None, Some("b1"))]
    );
    assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&changed_b)));
    assert!(
        p.mapping.is_empty(),
        "the new link is added once the new id is known"
    );

    let mut changed_e = e;
    changed_e.start -= HOUR;
    let p = plan(std::slice::from_ref(&changed_e), &[], &[entry]);
    assert_eq!(
        summary(&p),
        vec![act(ActionKind::Create, Side::Business, Some("e1"), None)]
    );
    assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&changed_e)));
}

#[test]
fn deleted_on_both_sides_forgets_the_link() {
    let (_, _, entry) = pair("e1", "b1");
    let p = plan(&[], &[], &[entry]);
    assert_quiet(&p);
    assert!(p.mapping.is_empty());
}

// ---------------------------------------------------------------------------
// Creation and guards
// ---------------------------------------------------------------------------

#[test]
fn unmapped_items_are_created_on_the_other_side() {
    let e = tomorrow("e-new");
    let mut b = tomorrow("b-new");
    b.subject = "Kundbesök".into();
    let p = plan(std::slice::from_ref(&e), std::slice::from_ref(&b), &[]);
    assert_eq!(
        summary(&p),
        vec![
            act(ActionKind::Create, Side::Business, Some("e-new"), None),
            act(ActionKind::Create, Side::Exchange, None, Some("b-new")),
        ]
    );
    assert_eq!(p.actions[0].fingerprint, Some(fingerprint(&e)));
    assert_eq!(p.actions[1].fingerprint, Some(fingerprint(&b)));
    assert!(p.mapping.is_empty());
}

#[test]
fn recurring_items_are_not_copied() {
    let kinds = [
        ItemKind::Occurrence,
        ItemKind::Exception,
        ItemKind::RecurringMaster,
    ];
    let make = |prefix: &str| -> Vec<CalendarItem> {
        kinds
            .iter()
            .enumerate()
            .map(|(n, &kind)| {
                let mut i = tomorrow(&format!("{prefix}{n}"));
                i.kind = kind;
                i
            })
            .collect()
    };
    let p = plan(&make("e"), &make("b"), &[]);
    assert!(p.actions.is_empty());
    let mut expected: Vec<SyncSkip> = (0..3)
        .flat_map(|n| {
            [
                skip(Side::Business, &format!("b{n}"), SyncSkipReason::Recurring),
                skip(Side::Exchange, &format!("e{n}"), SyncSkipReason::Recurring),
            ]
        })
        .collect();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(p.report.skipped, expected);
}

#[test]
fn a_synced_item_that_became_a_series_is_detached() {
    for side in [Side::Exchange, Side::Business] {
        for kind in [
            ItemKind::Occurrence,
            ItemKind::Exception,
            ItemKind::RecurringMaster,
        ] {
            let (mut e, mut b, entry) = pair("e1", "b1");
            match side {
                Side::Exchange => {
                    e.kind = kind;
                    e.subject = "Now weekly".into();
                }
                Side::Business => {
                    b.kind = kind;
                    b.subject = "Now weekly".into();
                }
            }
            let p = plan(&[e], &[b], std::slice::from_ref(&entry));
            assert_quiet(&p);
            assert_eq!(
                p.report.detached,
                vec![Detached {
                    exchange_id: "e1".into(),
                    business_id: "b1".into(),
                    side
                }],
                "{side:?} {kind:?}"
            );
            assert_eq!(p.mapping, vec![entry]);
        }
    }
    // Even when the other side was deleted: the copy is never deleted.
    let (mut e, _, entry) = pair("e1", "b1");
    e.kind = ItemKind::RecurringMaster;
    let p = plan(&[e], &[], std::slice::from_ref(&entry));
    assert_quiet(&p);
    assert_eq!(p.report.detached.len(), 1);
    assert_eq!(p.mapping, vec![entry]);
}

#[test]
fn private_items_are_skipped_when_the_policy_excludes_them() {
    let no_private = SyncPolicy {
        sync_private: false,
        ..SyncPolicy::default()
    };
    let mut private = tomorrow("e-private");
    private.sensitivity = Sensitivity::Private;
    let mut confidential = tomorrow("b-confidential");
    confidential.sensitivity = Sensitivity::Confidential;
    let mut personal = tomorrow("e-personal");
    personal.sensitivity = Sensitivity::Personal;
    let exchange = [private.clone(), personal];
    let business = [confidential];
    let p = plan_with(&exchange, &business, &[], &no_private);
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Create,
            Side::Business,
            Some("e-personal"),
            None
        )]
    );
    assert_eq!(
        p.report.skipped,
        vec![
            skip(Side::Business, "b-confidential", SyncSkipReason::Private),
            skip(Side::Exchange, "e-private", SyncSkipReason::Private),
        ]
    );

    // Synced by default.
    let p = plan(&exchange, &business, &[]);
    assert_eq!(p.actions.len(), 3);

    // A synced item made private later is left alone on both sides.
    let (mut e, b, entry) = pair("e1", "b1");
    e.sensitivity = Sensitivity::Private;
    let p = plan_with(&[e], &[b], std::slice::from_ref(&entry), &no_private);
    assert_quiet(&p);
    assert_eq!(
        p.report.skipped,
        vec![skip(Side::Exchange, "e1", SyncSkipReason::Private)]
    );
    assert_eq!(p.mapping, vec![entry]);
}

#[test]
fn a_resource_mailbox_is_never_synced() {
    let policy = SyncPolicy {
        mailbox_is_resource: true,
        ..SyncPolicy::default()
    };
    let (mut e, b, entry) = pair("e1", "b1");
    e.subject = "Changed".into();
    let p = plan_with(
        &[e, tomorrow("e2")],
        &[b, tomorrow("b2")],
        std::slice::from_ref(&entry),
        &policy,
    );
    assert_quiet(&p);
    assert_eq!(
        p.report.skipped,
        vec![
            skip(Side::Business, "b1", SyncSkipReason::Resource),
            skip(Side::Business, "b2", SyncSkipReason::Resource),
            skip(Side::Exchange, "e1", SyncSkipReason::Resource),
            skip(Side::Exchange, "e2", SyncSkipReason::Resource),
        ]
    );
    assert_eq!(p.mapping, vec![entry], "the mapping is left as it is");
}

// ---------------------------------------------------------------------------
// Attendees
// ---------------------------------------------------------------------------

fn attendee(address: &str, role: AttendeeRole) -> Attendee {
    Attendee {
        address: address.to_string(),
        role,
    }
}

fn integrated_policy() -> SyncPolicy {
    SyncPolicy {
        integrated_users: vec!["Anna@Flexi.se".into(), " bo@flexi.se ".into()],
        ..SyncPolicy::default()
    }
}

#[test]
fn attendees_link_integrated_users_and_resources_only() {
    let mut b = tomorrow("b1");
    b.attendees = vec![
        attendee("anna@flexi.se", AttendeeRole::Required),
        attendee("carl@elsewhere.se", AttendeeRole::Required),
        attendee("BO@FLEXI.SE", AttendeeRole::Optional),
        attendee("room-4@flexi.se", AttendeeRole::Resource),
        attendee("kund@customer.se", AttendeeRole::Contact),
        attendee("bo@flexi.se", AttendeeRole::Contact),
    ];
    let p = plan_with(&[], std::slice::from_ref(&b), &[], &integrated_policy());
    assert_eq!(
        summary(&p),
        vec![act(ActionKind::Create, Side::Exchange, None, Some("b1"))]
    );
    assert_eq!(
        p.actions[0].attendees,
        vec![
            attendee("anna@flexi.se", AttendeeRole::Required),
            attendee("BO@FLEXI.SE", AttendeeRole::Optional),
            attendee("room-4@flexi.se", AttendeeRole::Resource),
        ]
    );
    assert!(
        p.actions[0]
            .attendees
            .iter()
            .all(|a| a.role != AttendeeRole::Contact),
        "contacts never go to Exchange"
    );

    // And back: from Exchange, an integrated user links to that person.
    let mut e = tomorrow("e1");
    e.attendees = vec![
        attendee("ANNA@flexi.se", AttendeeRole::Optional),
        attendee("someone@external.com", AttendeeRole::Required),
        attendee("room-4@flexi.se", AttendeeRole::Resource),
    ];
    let p = plan_with(std::slice::from_ref(&e), &[], &[], &integrated_policy());
    assert_eq!(
        p.actions[0].attendees,
        vec![
            attendee("ANNA@flexi.se", AttendeeRole::Optional),
            attendee("room-4@flexi.se", AttendeeRole::Resource)
        ]
    );

    // Updates carry them too.
    let (e, mut b, entry) = pair("e1", "b1");
    b.subject = "Edited".into();
    b.attendees = vec![
        attendee("kund@customer.se", AttendeeRole::Contact),
        attendee("anna@flexi.se", AttendeeRole::Required),
    ];
    let p = plan_with(&[e], &[b], &[entry], &integrated_policy());
    assert_eq!(
        summary(&p),
        vec![act(
            ActionKind::Update,
            Side::Exchange,
            Some("e1"),
            Some("b1")
        )]
    );
    assert_eq!(
        p.actions[0].attendees,
        vec![attendee("anna@flexi.se", AttendeeRole::Required)]
    );
}

#[test]
fn translate_attendees_directly() {
    let integrated: BTreeSet<String> = ["anna@flexi.se".to_string()].into();
    let list = [
        attendee(" Anna@Flexi.se", AttendeeRole::Required),
        attendee("anna@flexi.se", AttendeeRole::Optional),
        attendee("eve@flexi.se", AttendeeRole::Optional),
        attendee("hall@flexi.se", AttendeeRole::Resource),
        attendee("anna@flexi.se", AttendeeRole::Contact),
    ];
    assert_eq!(
        translate_attendees(&list, &integrated),
        vec![
            attendee(" Anna@Flexi.se", AttendeeRole::Required),
            attendee("hall@flexi.se", AttendeeRole::Resource)
        ]
    );
}

// ---------------------------------------------------------------------------
// Ambiguous input, sorting, echo suppression
// ---------------------------------------------------------------------------

#[test]
fn duplicate_ids_with_different_contents_are_an_error() {
    let a = tomorrow("e1");
    let mut a2 = a.clone();
    a2.subject = "Other".into();
    let err = plan_sync(
        &[a.clone(), a2.clone()],
        &[],
        &[],
        &SyncPolicy::default(),
        now(),
    )
    .unwrap_err();
    assert!(
        err.iter().any(|p| p.kind == ProblemKind::DuplicateId),
        "{err:?}"
    );
    let err = plan_sync(&[], &[a.clone(), a2], &[], &SyncPolicy::default(), now()).unwrap_err();
    assert!(
        err.iter().any(|p| p.kind == ProblemKind::DuplicateId),
        "{err:?}"
    );

    // Identical copies count once.
    let p = plan(&[a.clone(), a.clone()], &[], &[]);
    assert_eq!(
        summary(&p),
        vec![act(ActionKind::Create, Side::Business, Some("e1"), None)]
    );

    // A mapping that lists one id twice is ambiguous too.
    let (_, _, m1) = pair("e1", "b1");
    let (_, _, mut m2) = pair("e2", "b2");
    m2.exchange_id = "e1".into();
    let err = plan_sync(&[a], &[], &[m1, m2], &SyncPolicy::default(), now()).unwrap_err();
    assert!(
        err.iter().any(|p| p.kind == ProblemKind::DuplicateId),
        "{err:?}"
    );
}

fn sort_key(a: &SyncAction) -> (Side, ActionKind, Option<String>, Option<String>) {
    (
        a.side,
        a.action,
        a.exchange_id.clone(),
        a.business_id.clone(),
    )
}

#[test]
fn actions_are_sorted_by_side_action_and_ids() {
    let (e1, b1, m1) = pair("e1", "b1"); // business deleted -> delete e1
    let (e2, mut b2, m2) = pair("e2", "b2"); // business changed -> update e2
    b2.subject = "Changed".into();
    let (mut e3, b3, m3) = pair("e3", "b3"); // exchange changed -> update b3
    e3.subject = "Changed".into();
    let (_, b4, m4) = pair("e4", "b4"); // exchange deleted -> delete b4
    let exchange = [tomorrow("e9"), e3, e2, tomorrow("e0"), e1];
    let business = [b4, tomorrow("b9"), b2, b3, tomorrow("b0")];
    let _ = b1;
    let p = plan(&exchange, &business, &[m4, m3, m2, m1]);
    assert_eq!(
        summary(&p),
        vec![
            act(ActionKind::Create, Side::Business, Some("e0"), None),
            act(ActionKind::Create, Side::Business, Some("e9"), None),
            act(ActionKind::Delete, Side::Business, Some("e4"), Some("b4")),
            act(ActionKind::Update, Side::Business, Some("e3"), Some("b3")),
            act(ActionKind::Create, Side::Exchange, None, Some("b0")),
            act(ActionKind::Create, Side::Exchange, None, Some("b9")),
            act(ActionKind::Delete, Side::Exchange, Some("e1"), Some("b1")),
            act(ActionKind::Update, Side::Exchange, Some("e2"), Some("b2")),
        ]
    );
    let keys: Vec<_> = p.actions.iter().map(sort_key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn the_connectors_own_writes_do_not_come_back() {
    let mut e = tomorrow("e1");
    e.attendees = vec![attendee("kund@customer.se", AttendeeRole::Contact)];
    let p = plan(std::slice::from_ref(&e), &[], &[]);
    let create = &p.actions[0];
    // The business system stores the copy under its own id, with its own extra fields.
    let mut copy = CalendarItem::appointment("b-77", 0, 0);
    copy_basic_fields(&e, &mut copy);
    copy.change_key = "server-ck".into();
    copy.created = Some(now());
    copy.modified = Some(now());
    copy.body = format!("{}\r\n", copy.body);
    let fp = create.fingerprint.clone().unwrap();
    let mapping = [MappingEntry {
        exchange_id: "e1".into(),
        business_id: "b-77".into(),
        exchange_fp: fp.clone(),
        business_fp: fp,
        end: e.end,
    }];
    let p = plan(&[e], &[copy], &mapping);
    assert_quiet(&p);
    assert_eq!(p.mapping, mapping.to_vec());
}

// ---------------------------------------------------------------------------
// Properties, with a simulator of both calendars
// ---------------------------------------------------------------------------

/// Both calendars as they really are, and the sync state.
#[derive(Debug, Clone)]
struct World {
    exchange: Vec<CalendarItem>,
    business: Vec<CalendarItem>,
    mapping: Vec<MappingEntry>,
    /// For fresh ids.
    next_id: u32,
}

fn items_of(world: &World, side: Side) -> &[CalendarItem] {
    match side {
        Side::Exchange => &world.exchange,
        Side::Business => &world.business,
    }
}

fn side_items(world: &mut World, side: Side) -> &mut Vec<CalendarItem> {
    match side {
        Side::Exchange => &mut world.exchange,
        Side::Business => &mut world.business,
    }
}

fn find<'a>(items: &'a [CalendarItem], id: &str) -> Option<&'a CalendarItem> {
    items.iter().find(|i| i.id == id)
}

/// What the host passes to the plan: everything, or (like a calendar query) only the
/// items that end in the window; sometimes with an item returned twice.
fn read(
    items: &[CalendarItem],
    window_only: bool,
    window_start: Instant,
    twice: bool,
) -> Vec<CalendarItem> {
    let mut read: Vec<CalendarItem> = items
        .iter()
        .filter(|i| !window_only || i.end >= window_start)
        .cloned()
        .collect();
    if twice && let Some(first) = read.first().cloned() {
        read.push(first);
    }
    read
}

/// Apply `plan` to `world` as a host would, checking each action against what the plan saw.
fn apply(world: &World, plan: &SyncPlan) -> World {
    let mut next = world.clone();
    next.mapping = plan.mapping.clone();
    for a in &plan.actions {
        let other = match a.side {
            Side::Exchange => Side::Business,
            Side::Business => Side::Exchange,
        };
        match a.action {
            ActionKind::Create => {
                let source_id = match other {
                    Side::Exchange => a
                        .exchange_id
                        .clone()
                        .expect("a create from Exchange names its source"),
                    Side::Business => a
                        .business_id
                        .clone()
                        .expect("a create from business names its source"),
                };
                let source = find(items_of(world, other), &source_id)
                    .cloned()
                    .expect("source exists");
                assert_eq!(source.kind, ItemKind::Single, "a recurring item was copied");
                let fp = fingerprint(&source);
                assert_eq!(a.fingerprint.as_deref(), Some(fp.as_str()));
                next.next_id += 1;
                let new_id = format!("new-{}", next.next_id);
                let mut copy = CalendarItem::appointment(new_id.clone(), 0, 0);
                copy_basic_fields(&source, &mut copy);
                copy.attendees = a.attendees.clone();
                side_items(&mut next, a.side).push(copy);
                let (exchange_id, business_id) = match a.side {
                    Side::Exchange => (new_id, source_id),
                    Side::Business => (source_id, new_id),
                };
                next.mapping.push(MappingEntry {
                    exchange_id,
                    business_id,
                    exchange_fp: fp.clone(),
                    business_fp: fp,
                    end: source.end,
                });
            }
            ActionKind::Update => {
                let (ex, bz) = (
                    a.exchange_id.clone().unwrap(),
                    a.business_id.clone().unwrap(),
                );
                let (source_id, target_id) = match a.side {
                    Side::Exchange => (bz, ex),
                    Side::Business => (ex, bz),
                };
                let source = find(items_of(world, other), &source_id)
                    .cloned()
                    .expect("source exists");
                assert_eq!(a.fingerprint, Some(fingerprint(&source)));
                let items = side_items(&mut next, a.side);
                // An item not read is still there (outside the window); write it by id.
                let index = match items.iter().position(|i| i.id == target_id) {
                    Some(index) => index,
                    None => {
                        items.push(CalendarItem::appointment(target_id.clone(), 0, 0));
                        items.len() - 1
                    }
                };
                copy_basic_fields(&source, &mut items[index]);
                items[index].attendees = a.attendees.clone();
            }
            ActionKind::Delete => {
                let id = match a.side {
                    Side::Exchange => a.exchange_id.clone().unwrap(),
                    Side::Business => a.business_id.clone().unwrap(),
                };
                let items = side_items(&mut next, a.side);
                let before = items.len();
                items.retain(|i| i.id != id);
                assert!(items.len() < before, "deleted {id} which is not there");
            }
        }
    }
    next
}

/// Property (ii): a delete only follows a deletion, and never removes a changed item.
fn check_deletes(
    plan: &SyncPlan,
    exchange: &[CalendarItem],
    business: &[CalendarItem],
    mapping: &[MappingEntry],
) {
    for a in plan
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Delete)
    {
        let (ex, bz) = (
            a.exchange_id.as_deref().unwrap(),
            a.business_id.as_deref().unwrap(),
        );
        let entry = mapping
            .iter()
            .find(|m| m.exchange_id == ex && m.business_id == bz)
            .expect("a delete names a mapped pair");
        let (target, recorded, other) = match a.side {
            Side::Exchange => (find(exchange, ex), &entry.exchange_fp, find(business, bz)),
            Side::Business => (find(business, bz), &entry.business_fp, find(exchange, ex)),
        };
        let target = target.expect("a delete targets an item that was read");
        assert_eq!(
            &fingerprint(target),
            recorded,
            "deleted an item that changed: {a:?}"
        );
        assert!(
            other.is_none(),
            "deleted {a:?} though its counterpart was read: {other:?}"
        );
    }
}

/// One sync round: plan, check, apply; then the next plan must have nothing to do.
fn round(
    world: &World,
    policy: &SyncPolicy,
    now: Instant,
    window_only: bool,
    twice: bool,
) -> World {
    let window_start = now - i64::from(policy.lookback_days) * DAY;
    let exchange = read(&world.exchange, window_only, window_start, twice);
    let business = read(&world.business, window_only, window_start, false);
    let plan = plan_sync(&exchange, &business, &world.mapping, policy, now)
        .expect("a consistent world plans");

    // (iii) in miniature: reversed and rotated inputs give the same plan.
    let mut rev_e = exchange.clone();
    rev_e.reverse();
    let mut rev_b = business.clone();
    rev_b.rotate_left(business.len() / 2);
    let mut rev_m = world.mapping.clone();
    rev_m.reverse();
    assert_eq!(
        plan_sync(&rev_e, &rev_b, &rev_m, policy, now).as_ref(),
        Ok(&plan)
    );

    check_deletes(&plan, &exchange, &business, &world.mapping);
    let keys: Vec<_> = plan.actions.iter().map(sort_key).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "actions not strictly sorted: {keys:?}"
    );

    let next = apply(world, &plan);
    let exchange = read(&next.exchange, window_only, window_start, twice);
    let business = read(&next.business, window_only, window_start, false);
    let again = plan_sync(&exchange, &business, &next.mapping, policy, now)
        .expect("the applied world plans");
    assert!(
        again.actions.is_empty() && again.report.conflicts.is_empty(),
        "not idempotent:\nfirst plan {plan:#?}\nsecond plan {again:#?}\nworld {next:#?}"
    );
    assert_eq!(again.mapping, {
        let mut m = next.mapping.clone();
        m.sort_by(|a, b| (&a.exchange_id, &a.business_id).cmp(&(&b.exchange_id, &b.business_id)));
        m
    });
    next
}

// Generators ---------------------------------------------------------------
//
// Items' synced content and the policy are calvert-testgen's (shared with the fuzz
// targets and the differential tests): hours from ten days back to three days ahead,
// so some items are outside the window. The world, its edits and the changes between
// rounds belong to this test's simulator.

fn content() -> impl Strategy<Value = CalendarItem> {
    one_item(ItemShape::SYNCED, "")
}

/// What happened to one side of a synced pair since the last sync.
#[derive(Debug, Clone)]
enum Since {
    Same,
    Edited(Edit),
    Deleted,
    BecameSeries(ItemKind),
}

/// A small set of edits, so that both sides sometimes make the same one.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Subject(&'static str),
    Move(i64),
    Body,
    Private,
    Modified(i64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        prop::sample::select(vec!["Edited", "Flyttad"]).prop_map(Edit::Subject),
        prop::sample::select(vec![1i64, -2, -20 * 24, 48]).prop_map(Edit::Move),
        Just(Edit::Body),
        Just(Edit::Private),
        prop::sample::select(vec![-1i64, 0]).prop_map(Edit::Modified),
    ]
}

fn apply_edit(item: &mut CalendarItem, edit: Edit, stamp: Option<i64>) {
    match edit {
        Edit::Subject(s) => item.subject = s.to_string(),
        Edit::Move(h) => {
            item.start += h * HOUR;
            item.end += h * HOUR;
        }
        Edit::Body => item.body = "Ny agenda".into(),
        Edit::Private => item.sensitivity = Sensitivity::Private,
        Edit::Modified(h) => {
            // A touch that changes nothing synced, and a real change with it.
            item.reminder_minutes = Some(30);
            item.modified = Some(now() + h * HOUR);
        }
    }
    if let Some(h) = stamp {
        item.modified = Some(now() + h * HOUR);
    }
}

fn since() -> impl Strategy<Value = Since> {
    prop_oneof![
        4 => Just(Since::Same),
        3 => edit().prop_map(Since::Edited),
        1 => Just(Since::Deleted),
        1 => kind().prop_filter("a series", |k| *k != ItemKind::Single).prop_map(Since::BecameSeries),
    ]
}

fn pair_state() -> impl Strategy<Value = (CalendarItem, Since, Option<i64>, Since, Option<i64>)> {
    let stamp = || prop::option::of(prop::sample::select(vec![-1i64, 0, 1]));
    (content(), since(), stamp(), since(), stamp())
}

fn side_change(
    base: &CalendarItem,
    id: String,
    since: &Since,
    stamp: Option<i64>,
) -> Option<CalendarItem> {
    let mut item = base.clone();
    item.id = id;
    match since {
        Since::Same => {}
        Since::Edited(e) => apply_edit(&mut item, *e, stamp),
        Since::Deleted => return None,
        Since::BecameSeries(k) => item.kind = *k,
    }
    Some(item)
}

fn unmapped(prefix: &'static str) -> impl Strategy<Value = Vec<CalendarItem>> {
    prop::collection::vec((content(), kind()), 0..=4).prop_map(move |v| {
        v.into_iter()
            .enumerate()
            .map(|(n, (mut i, kind))| {
                i.id = format!("{prefix}{n}");
                i.kind = kind;
                i
            })
            .collect()
    })
}

/// A world with a mapping as a previous sync left it, and changes on both sides since.
fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(pair_state(), 0..=6),
        unmapped("ex-u"),
        unmapped("bz-u"),
    )
        .prop_map(|(pairs, ex_new, bz_new)| {
            let mut world = World {
                exchange: ex_new,
                business: bz_new,
                mapping: Vec::new(),
                next_id: 0,
            };
            for (n, (base, e_since, e_stamp, b_since, b_stamp)) in pairs.into_iter().enumerate() {
                let (ex, bz) = (format!("e{n}"), format!("b{n}"));
                let fp = fingerprint(&base);
                world.mapping.push(MappingEntry {
                    exchange_id: ex.clone(),
                    business_id: bz.clone(),
                    exchange_fp: fp.clone(),
                    business_fp: fp,
                    end: base.end,
                });
                world
                    .exchange
                    .extend(side_change(&base, ex, &e_since, e_stamp));
                world
                    .business
                    .extend(side_change(&base, bz, &b_since, b_stamp));
            }
            world
        })
}

fn policy() -> impl Strategy<Value = SyncPolicy> {
    sync_policy(Inputs::Valid)
}

/// Changes made on either calendar between two sync rounds.
#[derive(Debug, Clone)]
enum Op {
    Edit(bool, Index, Edit),
    Delete(bool, Index),
    Series(bool, Index),
    Add(bool, CalendarItem),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (any::<bool>(), any::<Index>(), edit()).prop_map(|(s, i, e)| Op::Edit(s, i, e)),
        1 => (any::<bool>(), any::<Index>()).prop_map(|(s, i)| Op::Delete(s, i)),
        1 => (any::<bool>(), any::<Index>()).prop_map(|(s, i)| Op::Series(s, i)),
        1 => (any::<bool>(), content()).prop_map(|(s, i)| Op::Add(s, i)),
    ];
    prop::collection::vec(op, 0..=6)
}

fn change(world: &mut World, ops: &[Op]) {
    for (n, op) in ops.iter().enumerate() {
        let (exchange, op) = match op {
            Op::Edit(s, ..) | Op::Delete(s, _) | Op::Series(s, _) | Op::Add(s, _) => (*s, op),
        };
        let items = if exchange {
            &mut world.exchange
        } else {
            &mut world.business
        };
        match op {
            Op::Add(_, content) => {
                let mut item = content.clone();
                item.id = format!("added-{n}");
                items.push(item);
            }
            _ if items.is_empty() => {}
            Op::Edit(_, index, edit) => {
                let i = index.index(items.len());
                apply_edit(&mut items[i], *edit, None);
            }
            Op::Delete(_, index) => {
                items.remove(index.index(items.len()));
            }
            Op::Series(_, index) => {
                let i = index.index(items.len());
                items[i].kind = ItemKind::Occurrence;
            }
        }
    }
}

proptest! {
    /// (i) Applying a plan leaves nothing to do, both from a generated state and from
    /// the state a previous sync left after further changes (and later, as the window
    /// moves); (ii) deletes only ever follow a deletion and never remove a changed item
    /// (checked in every round).
    #[test]
    fn applying_a_plan_leaves_nothing_to_do(
        world in world(),
        policy in policy(),
        ops in ops(),
        days_later in prop::sample::select(vec![0i64, 0, 1, 3, 10]),
        window_only in any::<bool>(),
        twice in any::<bool>(),
    ) {
        let after_first = round(&world, &policy, now(), window_only, twice);
        let mut changed = after_first;
        change(&mut changed, &ops);
        let later = now() + days_later * DAY;
        let after_second = round(&changed, &policy, later, window_only, twice);
        // And once more with the window read the other way.
        round(&after_second, &policy, later, !window_only, false);
    }

    /// (iii) The plan does not depend on the order of the items or of the mapping.
    #[test]
    fn order_does_not_matter(
        (world, exchange, business, mapping) in world().prop_flat_map(|w| {
            let (e, b, m) = (w.exchange.clone(), w.business.clone(), w.mapping.clone());
            (Just(w), Just(e).prop_shuffle(), Just(b).prop_shuffle(), Just(m).prop_shuffle())
        }),
        policy in policy(),
    ) {
        let expected = plan_sync(&world.exchange, &world.business, &world.mapping, &policy, now());
        let got = plan_sync(&exchange, &business, &mapping, &policy, now());
        prop_assert!(expected.is_ok());
        prop_assert_eq!(got, expected);
    }
}
