//! The behaviours the seed manuals state, shown through the component exactly as the
//! service calls it.
//!
//! Seed 000 (Flexi Exchange Connector): Busy vs Free controls diversion; the first
//! trigger word in the subject sets the reason; no trigger gives "återkommer";
//! meetings divert once accepted and an organizer's move resets the answer; a future
//! entry diverts when it starts; routing rules with priorities (mail1/mail2).

use calvert::CoreInstance;
use calvert::component::wit::{
    CalendarItem, DecidePolicy, Decision, FreeBusy, Response, ReturnTime, Rule, Trigger,
};
use calvert_tests::instance;

const NINE: i64 = 1_795_593_600; // 2026-11-25T09:00:00+01:00
const MIN: i64 = 60;

fn appointment(id: &str, subject: &str, start: i64, end: i64) -> CalendarItem {
    CalendarItem {
        subject: subject.into(),
        response: Response::Organizer,
        ..CalendarItem::appointment(id, start, end)
    }
}

fn decide(core: &mut CoreInstance, items: &[CalendarItem], now: i64) -> Decision {
    let policy = DecidePolicy {
        divert_on: vec![FreeBusy::Busy, FreeBusy::Oof],
        count_tentative_response: false,
        default_reason: "ÅTERKOMMER".into(),
        oof_reason: None,
        return_time: ReturnTime::BlockEnd,
    };
    let triggers = [("lunch", "LUNCH"), ("möte", "MEETING")].map(|(w, r)| Trigger {
        word: w.into(),
        reason: r.into(),
    });
    core.decide(items, &policy, &triggers, "Europe/Stockholm", now)
        .unwrap()
}

fn reason(d: &Decision) -> Option<&str> {
    d.diversion.as_ref().map(|d| d.reason.as_str())
}

#[test]
fn busy_diverts_and_free_does_not() {
    let mut core = instance();
    let busy = appointment("a", "Tandläkare", NINE, NINE + 60 * MIN);
    assert!(
        decide(&mut core, std::slice::from_ref(&busy), NINE + MIN)
            .diversion
            .is_some()
    );
    let free = CalendarItem {
        free_busy: FreeBusy::Free,
        ..busy
    };
    assert!(decide(&mut core, &[free], NINE + MIN).diversion.is_none());
}

#[test]
fn the_first_trigger_in_the_subject_wins() {
    let mut core = instance();
    let d = decide(
        &mut core,
        &[appointment("a", "Möte och lunch", NINE, NINE + 60 * MIN)],
        NINE,
    );
    assert_eq!(reason(&d), Some("MEETING"));
    let d = decide(
        &mut core,
        &[appointment(
            "a",
            "Lunch efter mötet, sedan möte",
            NINE,
            NINE + 60 * MIN,
        )],
        NINE,
    );
    assert_eq!(reason(&d), Some("LUNCH"));
}

#[test]
fn no_trigger_gives_the_default_reason_and_the_return_time() {
    let mut core = instance();
    let d = decide(
        &mut core,
        &[appointment("a", "Tandläkare", NINE, NINE + 90 * MIN)],
        NINE + MIN,
    );
    let diversion = d.diversion.unwrap();
    assert_eq!(diversion.reason, "ÅTERKOMMER");
    assert_eq!(diversion.until, NINE + 90 * MIN);
    assert_eq!(diversion.until_local, "2026-11-25T10:30:00+01:00");
}

#[test]
fn meetings_divert_only_once_accepted() {
    let mut core = instance();
    let invite = CalendarItem {
        is_meeting: true,
        response: Response::NoResponse,
        ..appointment("m", "Möte", NINE, NINE + 60 * MIN)
    };
    assert!(
        decide(&mut core, std::slice::from_ref(&invite), NINE)
            .diversion
            .is_none()
    );
    let tentative = CalendarItem {
        response: Response::Tentative,
        ..invite.clone()
    };
    assert!(decide(&mut core, &[tentative], NINE).diversion.is_none());
    let declined = CalendarItem {
        response: Response::Decline,
        ..invite.clone()
    };
    assert!(decide(&mut core, &[declined], NINE).diversion.is_none());
    let accepted = CalendarItem {
        response: Response::Accept,
        ..invite.clone()
    };
    assert_eq!(
        reason(&decide(&mut core, &[accepted], NINE)),
        Some("MEETING")
    );
    let organized = CalendarItem {
        response: Response::Organizer,
        ..invite
    };
    assert_eq!(
        reason(&decide(&mut core, &[organized], NINE)),
        Some("MEETING")
    );
}

#[test]
fn the_organizer_moving_a_meeting_resets_it_until_accepted_again() {
    let mut core = instance();
    let accepted = CalendarItem {
        is_meeting: true,
        response: Response::Accept,
        ..appointment("m", "Möte", NINE, NINE + 60 * MIN)
    };
    assert!(
        decide(&mut core, std::slice::from_ref(&accepted), NINE + MIN)
            .diversion
            .is_some()
    );
    // Exchange resets the invitee's answer when the organizer moves the meeting.
    let moved = CalendarItem {
        start: NINE + 30 * MIN,
        end: NINE + 90 * MIN,
        response: Response::NoResponse,
        ..accepted
    };
    assert!(
        decide(&mut core, std::slice::from_ref(&moved), NINE + 31 * MIN)
            .diversion
            .is_none()
    );
    let again = CalendarItem {
        response: Response::Accept,
        ..moved
    };
    let d = decide(&mut core, &[again], NINE + 31 * MIN);
    assert_eq!(d.diversion.unwrap().until, NINE + 90 * MIN);
}

#[test]
fn a_future_entry_diverts_when_it_starts() {
    let mut core = instance();
    let lunch = appointment("l", "Lunch", NINE + 180 * MIN, NINE + 240 * MIN);
    let before = decide(&mut core, std::slice::from_ref(&lunch), NINE);
    assert!(before.diversion.is_none());
    assert_eq!(
        before.next_change,
        Some(NINE + 180 * MIN),
        "the host sleeps until the start"
    );
    let at_start = decide(&mut core, std::slice::from_ref(&lunch), NINE + 180 * MIN);
    assert_eq!(reason(&at_start), Some("LUNCH"));
    assert_eq!(at_start.next_change, Some(NINE + 240 * MIN));
    let after = decide(&mut core, &[lunch], NINE + 240 * MIN);
    assert!(after.diversion.is_none());
    assert_eq!(after.next_change, None);
}

#[test]
fn create_move_resize_delete_take_effect_at_once() {
    let mut core = instance();
    let now = NINE + 10 * MIN;
    let item = appointment("a", "Möte", NINE, NINE + 30 * MIN);
    assert_eq!(
        decide(&mut core, std::slice::from_ref(&item), now)
            .diversion
            .unwrap()
            .until,
        NINE + 30 * MIN
    );
    let resized = CalendarItem {
        end: NINE + 45 * MIN,
        ..item.clone()
    };
    assert_eq!(
        decide(&mut core, &[resized], now).diversion.unwrap().until,
        NINE + 45 * MIN
    );
    let moved_away = CalendarItem {
        start: NINE + 60 * MIN,
        end: NINE + 90 * MIN,
        ..item
    };
    assert!(decide(&mut core, &[moved_away], now).diversion.is_none());
    assert!(decide(&mut core, &[], now).diversion.is_none());
}

fn rule(server: &str, pattern: &str, priority: i32) -> Rule {
    Rule {
        server: server.into(),
        pattern: pattern.into(),
        priority,
    }
}

#[test]
fn seed_000_routing_example_and_its_reversed_priorities() {
    let mut core = instance();
    let rules = [
        rule("mail1.flexi.se", "support.flexi.se", 2),
        rule("mail2.flexi.se", "flexi.se", 1),
    ];
    assert_eq!(
        core.route("kim@support.flexi.se", &rules)
            .unwrap()
            .as_deref(),
        Some("mail1.flexi.se")
    );
    assert_eq!(
        core.route("eva@kundtjanst.flexi.se", &rules)
            .unwrap()
            .as_deref(),
        Some("mail2.flexi.se")
    );
    let reversed = [
        rule("mail1.flexi.se", "support.flexi.se", 1),
        rule("mail2.flexi.se", "flexi.se", 2),
    ];
    assert_eq!(
        core.route("kim@support.flexi.se", &reversed)
            .unwrap()
            .as_deref(),
        Some("mail2.flexi.se")
    );
    assert_eq!(
        core.route("kim@example.com", &reversed).unwrap(),
        None,
        "no rule: no route"
    );
}
