//! Table tests for every branch of the step's plan: no tokio, clock or simulator.

use std::time::Duration;

use super::*;
use crate::component::wit::Diversion;
use crate::store::{OutboxEntry, UserRecord};

/// A snapshot of `record` with `pending` queued.
fn snap(record: &UserRecord, pending: &[OutboxEntry]) -> Snapshot {
    Snapshot {
        record: record.clone(),
        pending: pending.to_vec(),
    }
}

fn applied(reason: &str, until: i64) -> Applied {
    Applied {
        reason: reason.into(),
        until,
    }
}

fn entry(seq: u64, call: DiversionCall) -> OutboxEntry {
    OutboxEntry {
        address: "kim@flexi.se".into(),
        seq,
        call,
        decided_at: 0,
    }
}

fn set(reason: &str, until: i64) -> DiversionCall {
    DiversionCall::Set {
        reason: reason.into(),
        until,
        until_local: String::new(),
    }
}

fn decision(diversion: Option<(&str, i64)>, next_change: Option<i64>) -> Decision {
    Decision {
        diversion: diversion.map(|(reason, until)| Diversion {
            reason: reason.into(),
            until,
            until_local: format!("local {until}"),
            item_id: "a".into(),
        }),
        next_change,
        skipped: Vec::new(),
        warnings: Vec::new(),
    }
}

#[test]
fn admission_follows_the_configuration_then_the_stored_status() {
    let error = Status::Error("gone".into());
    let table = [
        (true, Status::Active, Admission::Run),
        (true, Status::NotInUse, Admission::Activate),
        (true, Status::Passive, Admission::Idle),
        (true, error.clone(), Admission::Idle),
        (false, Status::Active, Admission::Passivate),
        (false, Status::NotInUse, Admission::Passivate),
        (false, error, Admission::Passivate),
        (false, Status::Passive, Admission::Idle),
    ];
    for (enabled, status, want) in table {
        assert_eq!(admission(enabled, &status), want, "{enabled} {status:?}");
    }
}

#[test]
fn a_refused_mailbox_fails_at_once() {
    let next = after_read_failure(ReadFailure::Mailbox("no such mailbox".into()), 5);
    assert_eq!(next, Next::Fail("no such mailbox".into()));
}

#[test]
fn a_server_refusing_calvert_backs_off_and_never_fails_the_user() {
    for failures in [0, 1, 4, 5, 1000] {
        assert_eq!(
            after_read_failure(ReadFailure::Server { failures }, 5),
            Next::Backoff {
                attempt: failures,
                at_least: None
            }
        );
    }
}

#[test]
fn transient_failures_back_off_until_the_limit_then_fail() {
    let transient = |failures, retry_after| ReadFailure::Transient {
        message: "timed out".into(),
        failures,
        retry_after,
    };
    let server_asks = Some(Duration::from_secs(30));
    assert_eq!(
        after_read_failure(transient(1, None), 3),
        Next::Backoff {
            attempt: 1,
            at_least: None
        }
    );
    assert_eq!(
        after_read_failure(transient(2, server_asks), 3),
        Next::Backoff {
            attempt: 2,
            at_least: server_asks
        }
    );
    assert_eq!(
        after_read_failure(transient(3, server_asks), 3),
        Next::Fail("3 failures in a row: timed out".into())
    );
    assert_eq!(
        after_read_failure(transient(9, None), 3),
        Next::Fail("9 failures in a row: timed out".into())
    );
}

#[test]
fn the_phone_is_expected_as_the_queue_leaves_it_and_read_only_when_nothing_is_queued() {
    let record = UserRecord {
        last_applied: Some(applied("LUNCH", 100)),
        ..UserRecord::default()
    };
    assert_eq!(
        expect(&snap(&record, &[])),
        Expectation {
            intended: Some(applied("LUNCH", 100)),
            read_phone: true
        }
    );
    assert_eq!(
        expect(&snap(&UserRecord::default(), &[])),
        Expectation {
            intended: None,
            read_phone: true
        }
    );
    let queued = [entry(1, DiversionCall::Clear), entry(2, set("MOTE", 200))];
    assert_eq!(
        expect(&snap(&record, &queued)),
        Expectation {
            intended: Some(applied("MOTE", 200)),
            read_phone: false
        }
    );
    let cleared = [entry(3, set("MOTE", 200)), entry(4, DiversionCall::Clear)];
    assert_eq!(
        expect(&snap(&record, &cleared)),
        Expectation {
            intended: None,
            read_phone: false
        }
    );
}

#[test]
fn the_phone_read_back_counts_only_when_the_store_did_not_move_around_it() {
    let lunch = PhoneDiversion {
        reason: "LUNCH".into(),
        until: 100,
    };
    let mote = PhoneDiversion {
        reason: "MOTE".into(),
        until: 200,
    };
    let applied_as = |what: &PhoneDiversion, seq| UserRecord {
        last_applied: Some(applied(&what.reason, what.until)),
        last_applied_seq: Some(seq),
        ..UserRecord::default()
    };
    let lunch_applied = snap(&applied_as(&lunch, 3), &[]);
    let mote_queued = snap(
        &applied_as(&lunch, 3),
        &[entry(4, set(&mote.reason, mote.until))],
    );
    let mote_applied = snap(&applied_as(&mote, 4), &[]);
    let shows = |what: &PhoneDiversion| Observation::Present(what.clone());
    // (before, observed, after) → (intended, observed as reconcile sees it)
    let table = [
        // Nothing moved: the reading counts, a manual diversion is seen.
        (
            &lunch_applied,
            shows(&mote),
            &lunch_applied,
            Some(&lunch),
            shows(&mote),
        ),
        (
            &lunch_applied,
            Observation::None,
            &lunch_applied,
            Some(&lunch),
            Observation::None,
        ),
        // A call was queued: the phone is not read, the queue is the intention.
        (
            &mote_queued,
            Observation::Unknown,
            &mote_queued,
            Some(&mote),
            Observation::Unknown,
        ),
        // Calvert's own call confirmed while the phone was read back (the restart
        // re-sending a pending call): never taken for a manual diversion.
        (
            &mote_queued,
            shows(&mote),
            &mote_applied,
            Some(&mote),
            Observation::Unknown,
        ),
        (
            &lunch_applied,
            shows(&mote),
            &mote_applied,
            Some(&mote),
            Observation::Unknown,
        ),
        // The record moved under the reading (a confirmation with the same queue).
        (
            &lunch_applied,
            shows(&lunch),
            &mote_applied,
            Some(&mote),
            Observation::Unknown,
        ),
        // After the confirmation the snapshot is consistent: the reading counts.
        (
            &mote_applied,
            shows(&mote),
            &mote_applied,
            Some(&mote),
            shows(&mote),
        ),
    ];
    for (before, observed, after, intended, want) in table {
        let compared = compare(before, observed.clone(), after);
        assert_eq!(
            compared,
            Compared {
                intended: intended.map(|d| applied(&d.reason, d.until)),
                observed: want,
            },
            "{before:?} {observed:?} {after:?}"
        );
    }
}

#[test]
fn a_phone_that_cannot_tell_or_fails_is_unknown() {
    let down = Err(TargetError::Unavailable {
        target: "pbx".into(),
        detail: "refused".into(),
    });
    assert_eq!(observation(&down), Observation::Unknown);
    assert_eq!(observation(&Ok(None)), Observation::Unknown);
    assert_eq!(observation(&Ok(Some(None))), Observation::None);
    assert_eq!(
        observation(&Ok(Some(Some(applied("LUNCH", 5))))),
        Observation::Present(PhoneDiversion {
            reason: "LUNCH".into(),
            until: 5
        })
    );
}

#[test]
fn desired_is_the_decisions_diversion_without_its_local_time() {
    assert_eq!(desired(&decision(None, None)), None);
    assert_eq!(
        desired(&decision(Some(("LUNCH", 900)), Some(900))),
        Some(PhoneDiversion {
            reason: "LUNCH".into(),
            until: 900
        })
    );
}

#[test]
fn each_reconcile_action_gives_its_call_edit_and_wake() {
    let lunch = PhoneDiversion {
        reason: "LUNCH".into(),
        until: 900,
    };
    let decided = decision(Some(("LUNCH", 900)), Some(900));
    let nothing = Plan {
        call: None,
        last_applied: None,
        holds_manual: false,
        action: "",
        next: Next::At(Some(900)),
    };
    let table = [
        (
            ReconcileAction::Set(lunch.clone()),
            Plan {
                call: Some(DiversionCall::Set {
                    reason: "LUNCH".into(),
                    until: 900,
                    until_local: "local 900".into(),
                }),
                action: "set",
                ..nothing.clone()
            },
        ),
        (
            ReconcileAction::Clear,
            Plan {
                call: Some(DiversionCall::Clear),
                action: "clear",
                ..nothing.clone()
            },
        ),
        (
            ReconcileAction::Adopt(lunch),
            Plan {
                last_applied: Some(Some(applied("LUNCH", 900))),
                action: "adopt",
                ..nothing.clone()
            },
        ),
        (
            ReconcileAction::Forget,
            Plan {
                last_applied: Some(None),
                action: "forget",
                ..nothing.clone()
            },
        ),
        (
            ReconcileAction::HoldManual,
            Plan {
                holds_manual: true,
                action: "hold-manual",
                ..nothing.clone()
            },
        ),
        (
            ReconcileAction::InSync,
            Plan {
                action: "in-sync",
                ..nothing.clone()
            },
        ),
    ];
    for (action, want) in table {
        assert_eq!(plan(action, &decided), want);
    }
}

#[test]
fn a_set_without_a_decided_diversion_has_no_local_time() {
    let want = PhoneDiversion {
        reason: "LUNCH".into(),
        until: 900,
    };
    let planned = plan(ReconcileAction::Set(want), &decision(None, None));
    assert_eq!(
        planned.call,
        Some(DiversionCall::Set {
            reason: "LUNCH".into(),
            until: 900,
            until_local: String::new()
        })
    );
    assert_eq!(planned.next, Next::At(None));
}

#[test]
fn a_boundary_wakes_just_after_it_unless_the_resync_comes_first() {
    let resync = Duration::from_secs(600);
    assert_eq!(boundary_wake(None, resync), (resync, false));
    assert_eq!(
        boundary_wake(Some(Duration::from_secs(60)), resync),
        (Duration::from_millis(60_005), true)
    );
    assert_eq!(
        boundary_wake(Some(Duration::from_secs(601)), resync),
        (resync, false)
    );
    assert_eq!(
        boundary_wake(Some(Duration::ZERO), resync),
        (Duration::from_millis(5), true)
    );
}
