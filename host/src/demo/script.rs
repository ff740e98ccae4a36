//! The demo's day: what happens when, by part of the day, and what the timeline
//! says about it.

use calvert_exchange_sim::SimItem;

use super::{DAY, at};

/// What happens at one moment of the day.
pub(super) enum Step {
    Put(&'static str, Box<SimItem>),
    Delete(&'static str, &'static str),
    ManualDivert(&'static str, &'static str, i64),
    ManualClear(&'static str),
    Outage(bool),
}

fn put(mailbox: &'static str, item: SimItem) -> Step {
    Step::Put(mailbox, Box::new(item))
}

fn item(id: &str, subject: &str, start: i64, end: i64) -> SimItem {
    SimItem::appointment(id, subject, start, end)
}

fn invitation(id: &str, subject: &str, start: i64, end: i64, response: &str) -> SimItem {
    let mut meeting = item(id, subject, start, end);
    meeting.is_meeting = true;
    meeting.my_response = response.into();
    meeting
}

/// The day: (local time, what happens, what the timeline says), in order.
pub(super) fn script() -> Vec<(i64, Step, &'static str)> {
    [before_work(), morning(), lunch(), afternoon()]
        .into_iter()
        .flatten()
        .collect()
}

pub(super) const KIM: &str = "kim@flexi.se";
pub(super) const EVA: &str = "eva@flexi.se";
pub(super) const OLA: &str = "ola@flexi.se";

/// 07:20–07:30: the day's calendars fill: an invitation, a course, a vacation.
fn before_work() -> Vec<(i64, Step, &'static str)> {
    let mut course = item("eva-course", "Kurs: säker telefoni", DAY, DAY + 86_400);
    course.all_day = true;
    let mut vacation = item("ola-oof", "Semester", DAY - 86_400, DAY + 2 * 86_400);
    vacation.free_busy = "OOF".into();
    vec![
        (
            at(7, 20),
            put(
                KIM,
                invitation(
                    "kim-1",
                    "Möte om budget",
                    at(9, 0),
                    at(10, 0),
                    "NoResponseReceived",
                ),
            ),
            "kim is invited to a budget meeting 09:00–10:00",
        ),
        (at(7, 25), put(EVA, course), "eva is on an all-day course"),
        (
            at(7, 26),
            put(
                EVA,
                item("eva-lunch", "Lunch med kursen", at(11, 30), at(12, 30)),
            ),
            "eva books lunch 11:30–12:30 during the course",
        ),
        (
            at(7, 30),
            put(OLA, vacation),
            "ola sets out-of-office (vacation)",
        ),
    ]
}

/// 08:15–09:25: kim answers invitations; the organizer moves a meeting.
fn morning() -> Vec<(i64, Step, &'static str)> {
    vec![
        (
            at(8, 15),
            put(
                KIM,
                invitation("kim-1", "Möte om budget", at(9, 0), at(10, 0), "Accept"),
            ),
            "kim accepts the budget meeting",
        ),
        (
            at(8, 20),
            put(
                KIM,
                invitation(
                    "kim-2",
                    "Styrelsemöte",
                    at(13, 0),
                    at(14, 0),
                    "NoResponseReceived",
                ),
            ),
            "kim is invited to a board meeting 13:00–14:00",
        ),
        (
            at(8, 25),
            put(
                KIM,
                invitation("kim-2", "Styrelsemöte", at(13, 0), at(14, 0), "Decline"),
            ),
            "kim declines the board meeting",
        ),
        (
            at(9, 20),
            put(
                KIM,
                invitation(
                    "kim-1",
                    "Möte om budget",
                    at(9, 30),
                    at(10, 30),
                    "NoResponseReceived",
                ),
            ),
            "the organizer moves the budget meeting to 09:30–10:30",
        ),
        (
            at(9, 25),
            put(
                KIM,
                invitation("kim-1", "Möte om budget", at(9, 30), at(10, 30), "Accept"),
            ),
            "kim accepts the new time",
        ),
    ]
}

/// 10:45–12:45: kim's lunch, stretched; the telephony system is down for a while.
fn lunch() -> Vec<(i64, Step, &'static str)> {
    vec![
        (
            at(10, 45),
            put(KIM, item("kim-3", "Lunch", at(11, 0), at(11, 45))),
            "kim books lunch 11:00–11:45",
        ),
        (
            at(11, 10),
            put(KIM, item("kim-3", "Lunch", at(11, 0), at(12, 15))),
            "kim stretches lunch to 12:15",
        ),
        (
            at(12, 10),
            Step::Outage(true),
            "the telephony system goes down",
        ),
        (
            at(12, 45),
            Step::Outage(false),
            "the telephony system is back",
        ),
    ]
}

/// 13:00–15:50: a manual diversion on top of ola's vacation; kim's dentist, booked
/// and cancelled.
fn afternoon() -> Vec<(i64, Step, &'static str)> {
    vec![
        (
            at(13, 0),
            Step::ManualDivert(OLA, "SICK", at(17, 0)),
            "the switchboard diverts ola by hand (SICK)",
        ),
        (
            at(15, 0),
            Step::ManualClear(OLA),
            "the switchboard removes ola's manual diversion",
        ),
        (
            at(15, 30),
            put(KIM, item("kim-4", "Tandläkare", at(16, 0), at(17, 0))),
            "kim books the dentist 16:00–17:00",
        ),
        (
            at(15, 50),
            Step::Delete(KIM, "kim-4"),
            "kim cancels the dentist",
        ),
    ]
}
