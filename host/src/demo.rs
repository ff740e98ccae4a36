//! A scripted day, run through the decision core component.
//!
//! Three people, one working day on a fast clock: a meeting invitation that is
//! accepted, moved by its organizer (which resets the answer) and accepted again; a
//! lunch inside an all-day course; a declined meeting; an out-of-office with a
//! manual diversion on top. Each mailbox runs the core's loop, one numbered step at
//! a time:
//!
//! 1. input: the calendar as it is now, and `now`;
//! 2. `decide` → the diversion that should be active and `next_change`;
//! 3. `reconcile` with what the phone shows → set, clear, hold, adopt, forget;
//! 4. output: the diversion call (here: the log target, a line on standard output);
//! 5. timeout: sleep until the earliest `next_change` or the next calendar event.
//!
//! The clock is simulated, so the day takes milliseconds. The live service (EWS,
//! storage, outbox) builds on exactly this loop.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::component::wit::{
    CalendarItem, DecidePolicy, FreeBusy, Observation, PhoneDiversion, ReconcileAction, Response,
    ReturnTime, Trigger,
};
use crate::component::{CoreError, CoreInstance};

const ZONE: &str = "Europe/Stockholm";

/// One change to somebody's calendar or phone at a given local time.
enum Event {
    Put(&'static str, CalendarItem),
    Respond(&'static str, &'static str, Response),
    Move(&'static str, &'static str, i64, i64),
    Delete(&'static str, &'static str),
    ManualDivert(&'static str, &'static str, i64),
    ManualClear(&'static str),
}

fn item(id: &str, subject: &str, start: i64, end: i64) -> CalendarItem {
    CalendarItem {
        change_key: "1".into(),
        subject: subject.into(),
        response: Response::Organizer,
        reminder_minutes: Some(15),
        ..CalendarItem::appointment(id, start, end)
    }
}

fn invitation(id: &str, subject: &str, start: i64, end: i64) -> CalendarItem {
    CalendarItem {
        is_meeting: true,
        response: Response::NoResponse,
        ..item(id, subject, start, end)
    }
}

/// The script: local wall-clock times on 2026-11-25 in Stockholm; `day` is its midnight.
fn script(day: i64) -> Vec<(i64, Event)> {
    let t = |h: i64, m: i64| day + h * 3600 + m * 60;
    let mut course = item("eva-course", "Kurs: säker telefoni", day, day + 24 * 3600);
    course.is_all_day = true;
    let mut oof = item("ola-oof", "Semester", day - 24 * 3600, day + 2 * 24 * 3600);
    oof.free_busy = FreeBusy::Oof;
    vec![
        (
            t(7, 30),
            Event::Put(
                "kim@flexi.se",
                invitation("kim-1", "Möte om budget", t(9, 0), t(10, 0)),
            ),
        ),
        (t(7, 30), Event::Put("eva@flexi.se", course)),
        (
            t(7, 30),
            Event::Put(
                "eva@flexi.se",
                item("eva-lunch", "Lunch med kursen", t(11, 30), t(12, 30)),
            ),
        ),
        (t(7, 30), Event::Put("ola@flexi.se", oof)),
        (
            t(8, 15),
            Event::Respond("kim@flexi.se", "kim-1", Response::Accept),
        ),
        (
            t(8, 20),
            Event::Put(
                "kim@flexi.se",
                invitation("kim-2", "Styrelsemöte", t(13, 0), t(14, 0)),
            ),
        ),
        (
            t(8, 25),
            Event::Respond("kim@flexi.se", "kim-2", Response::Decline),
        ),
        (
            t(9, 20),
            Event::Move("kim@flexi.se", "kim-1", t(9, 30), t(10, 30)),
        ),
        (
            t(9, 25),
            Event::Respond("kim@flexi.se", "kim-1", Response::Accept),
        ),
        (
            t(10, 45),
            Event::Put("kim@flexi.se", item("kim-3", "Lunch", t(11, 0), t(11, 45))),
        ),
        (
            t(11, 10),
            Event::Move("kim@flexi.se", "kim-3", t(11, 0), t(12, 15)),
        ),
        (
            t(13, 0),
            Event::ManualDivert("ola@flexi.se", "SICK", t(17, 0)),
        ),
        (t(15, 0), Event::ManualClear("ola@flexi.se")),
        (
            t(15, 30),
            Event::Put(
                "kim@flexi.se",
                item("kim-4", "Tandläkare", t(16, 0), t(17, 0)),
            ),
        ),
        (t(15, 50), Event::Delete("kim@flexi.se", "kim-4")),
    ]
}

/// One user's state as the service keeps it.
#[derive(Default)]
struct Mailbox {
    calendar: BTreeMap<String, CalendarItem>,
    /// What this connector last set and the phone system confirmed.
    last_applied: Option<PhoneDiversion>,
    /// What the phone system shows (the log target remembers it).
    phone: Option<PhoneDiversion>,
    next_change: Option<i64>,
}

/// Run the scripted day; returns the timeline as printed lines.
pub fn run(core: &mut CoreInstance) -> Result<String, CoreError> {
    let day = 1_795_561_200; // 2026-11-25T00:00:00+01:00, midnight in Stockholm
    let policy = DecidePolicy {
        divert_on: vec![FreeBusy::Busy, FreeBusy::Oof],
        count_tentative_response: false,
        default_reason: "BACK".into(),
        oof_reason: Some("AWAY".into()),
        return_time: ReturnTime::BlockEnd,
    };
    let triggers: Vec<Trigger> = [
        ("lunch", "LUNCH"),
        ("möte", "MEETING"),
        ("kurs", "COURSE"),
        ("semester", "VACATION"),
    ]
    .iter()
    .map(|(w, r)| Trigger {
        word: (*w).into(),
        reason: (*r).into(),
    })
    .collect();
    let mut mailboxes: BTreeMap<&str, Mailbox> = BTreeMap::new();
    for user in ["eva@flexi.se", "kim@flexi.se", "ola@flexi.se"] {
        mailboxes.insert(user, Mailbox::default());
    }
    let mut events = script(day).into_iter().peekable();
    let mut out = String::new();
    let mut now = day + 7 * 3600; // 07:00 local
    let end_of_day = day + 19 * 3600;
    let mut step = 0;
    while now <= end_of_day {
        // Inputs due now: calendar changes and manual diversions.
        while let Some((at, _)) = events.peek() {
            if *at > now {
                break;
            }
            let (_, event) = events.next().expect("peeked");
            let note = apply(&mut mailboxes, event);
            let _ = writeln!(out, "{}  {note}", clock(core, now)?);
        }
        // Each mailbox: decide → reconcile → diversion call.
        for (user, mailbox) in mailboxes.iter_mut() {
            let items: Vec<CalendarItem> = mailbox.calendar.values().cloned().collect();
            let decision = core.decide(&items, &policy, &triggers, ZONE, now)?;
            mailbox.next_change = decision.next_change;
            let desired = decision.diversion.as_ref().map(|d| PhoneDiversion {
                reason: d.reason.clone(),
                until: d.until,
            });
            let observed = match &mailbox.phone {
                Some(p) => Observation::Present(p.clone()),
                None => Observation::None,
            };
            let action =
                core.reconcile(desired.as_ref(), mailbox.last_applied.as_ref(), &observed)?;
            step += 1;
            let line = match action {
                ReconcileAction::Set(d) => {
                    let text = format!(
                        "SET    {:<8} until {}",
                        d.reason,
                        until(core, now, d.until)?
                    );
                    mailbox.phone = Some(d.clone());
                    mailbox.last_applied = Some(d);
                    Some(text)
                }
                ReconcileAction::Clear => {
                    mailbox.phone = None;
                    mailbox.last_applied = None;
                    Some("CLEAR".to_string())
                }
                ReconcileAction::Adopt(d) => {
                    mailbox.last_applied = Some(d);
                    Some("ADOPT  what the phone already shows".to_string())
                }
                ReconcileAction::Forget => {
                    mailbox.last_applied = None;
                    None
                }
                ReconcileAction::HoldManual => None,
                ReconcileAction::InSync => None,
            };
            if let Some(line) = line {
                let _ = writeln!(out, "{}  #{step:<3} {user:<14} {line}", clock(core, now)?);
            }
        }
        // Timeout: the earliest next_change or the next event, whichever is first.
        let next_event = events.peek().map(|(at, _)| *at);
        let next = mailboxes
            .values()
            .filter_map(|m| m.next_change)
            .chain(next_event)
            .filter(|&t| t > now)
            .min();
        match next {
            Some(next) => now = next,
            None => break,
        }
    }
    Ok(out)
}

/// A return time as callers hear it: the time, and the date when it is not today.
fn until(core: &mut CoreInstance, now: i64, at: i64) -> Result<String, CoreError> {
    let today = core.instant_to_local(now, ZONE)?;
    let local = core.instant_to_local(at, ZONE)?;
    Ok(match (today.get(..10), local.get(..16)) {
        (Some(day), Some(stamp)) if !local.starts_with(day) => stamp.replace('T', " "),
        _ => local.get(11..16).unwrap_or(&local).to_string(),
    })
}

fn clock(core: &mut CoreInstance, at: i64) -> Result<String, CoreError> {
    let local = core.instant_to_local(at, ZONE)?;
    Ok(local.get(11..16).unwrap_or(&local).to_string())
}

fn apply(mailboxes: &mut BTreeMap<&str, Mailbox>, event: Event) -> String {
    match event {
        Event::Put(user, item) => {
            let note = format!(
                "       {user:<14} calendar: {} {}",
                if item.is_meeting {
                    "invited to"
                } else {
                    "books"
                },
                item.id
            );
            if let Some(m) = mailboxes.get_mut(user) {
                m.calendar.insert(item.id.clone(), item);
            }
            note
        }
        Event::Respond(user, id, response) => {
            if let Some(i) = mailboxes.get_mut(user).and_then(|m| m.calendar.get_mut(id)) {
                i.response = response;
            }
            let answer = match response {
                Response::Accept => "accept",
                Response::Decline => "decline",
                Response::Tentative => "tentative",
                _ => "no answer",
            };
            format!("       {user:<14} calendar: answers {id} with {answer}")
        }
        Event::Move(user, id, start, end) => {
            if let Some(i) = mailboxes.get_mut(user).and_then(|m| m.calendar.get_mut(id)) {
                i.start = start;
                i.end = end;
                if i.is_meeting {
                    // The organizer moved it: the invitee's answer resets (seed 000).
                    i.response = Response::NoResponse;
                }
            }
            format!("       {user:<14} calendar: {id} moved or resized")
        }
        Event::Delete(user, id) => {
            if let Some(m) = mailboxes.get_mut(user) {
                m.calendar.remove(id);
            }
            format!("       {user:<14} calendar: {id} deleted")
        }
        Event::ManualDivert(user, reason, until) => {
            if let Some(m) = mailboxes.get_mut(user) {
                m.phone = Some(PhoneDiversion {
                    reason: reason.into(),
                    until,
                });
            }
            format!("       {user:<14} phone: diverted by hand ({reason}); the connector holds off")
        }
        Event::ManualClear(user) => {
            if let Some(m) = mailboxes.get_mut(user) {
                m.phone = None;
            }
            format!("       {user:<14} phone: manual diversion removed; the calendar takes over")
        }
    }
}
