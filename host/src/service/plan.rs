//! The host's decisions in one mailbox step, as pure functions of plain data: no
//! tokio, no clock, no store, no randomness. The mailbox task ([`super::mailbox`])
//! does the I/O around them:
//!
//! 1. [`admission`]: may the step run (the configuration and the stored status)?
//! 2. read the calendar; a failure → [`after_read_failure`] → the next wake;
//! 3. the core's `decide`;
//! 4. [`expect`]: from one snapshot of the record and the outbox, what the phone
//!    will show once the outbox is sent, and whether to read the phone back; the
//!    read → [`observation`]; [`compare`]: what reconcile compares with, the
//!    read-back counting only when the store did not move around it;
//! 5. the core's `reconcile`;
//! 6. [`plan`]: the diversion call to queue, the record edit, the next wake.

use std::time::Duration;

use crate::component::wit::{Decision, Observation, PhoneDiversion, ReconcileAction};
use crate::diversion::TargetError;
use crate::store::{Applied, DiversionCall, Snapshot, Status};

/// What a mailbox step leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Wait for `next_change` (or a notification, or the resync).
    At(Option<i64>),
    /// Try again after this long (real time).
    Retry(Duration),
    /// Try again after the `attempt`-th back-off wait, and not before `at_least`
    /// (a wait the server asked for).
    Backoff {
        attempt: u32,
        at_least: Option<Duration>,
    },
    /// Put the user in Error with this reason, then wait for an administrator.
    Fail(String),
    /// The user is not active: wait for an administrator.
    Idle,
}

/// How a step starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The user is active: read and decide.
    Run,
    /// The configuration turned the user off: record Passive (unless it is), then idle.
    Passivate,
    /// The user is configured but never started: activate, then run if that made it active.
    Activate,
    /// Passive or in error: wait for an administrator.
    Idle,
}

/// The configuration turns users on and off; the store keeps what happened since.
pub fn admission(enabled: bool, status: &Status) -> Admission {
    match status {
        _ if !enabled && *status == Status::Passive => Admission::Idle,
        _ if !enabled => Admission::Passivate,
        Status::NotInUse => Admission::Activate,
        Status::Active => Admission::Run,
        Status::Passive | Status::Error(_) => Admission::Idle,
    }
}

/// Why the calendar could not be read (the calendar source's three classes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    /// This mailbox cannot be read until an administrator acts.
    Mailbox(String),
    /// The server refuses Calvert itself; `failures` such refusals came before this one.
    Server { failures: u32 },
    /// Try again later; `failures` counts this one (the stored count after it).
    Transient {
        message: String,
        failures: u32,
        retry_after: Option<Duration>,
    },
}

/// A failed read → the next wake. A refused mailbox goes to Error; a server that
/// refuses Calvert is retried with back-off and puts no user in Error; transient
/// failures are retried until `failures_before_error` come in a row.
pub fn after_read_failure(failure: ReadFailure, failures_before_error: u32) -> Next {
    match failure {
        ReadFailure::Mailbox(reason) => Next::Fail(reason),
        ReadFailure::Server { failures } => Next::Backoff {
            attempt: failures,
            at_least: None,
        },
        ReadFailure::Transient {
            message,
            failures,
            retry_after,
        } => {
            if failures >= failures_before_error {
                Next::Fail(format!("{failures} failures in a row: {message}"))
            } else {
                Next::Backoff {
                    attempt: failures,
                    at_least: retry_after,
                }
            }
        }
    }
}

/// What reconcile compares with: the phone as it will be once the queue is through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The newest queued call's result, or what was last confirmed.
    pub intended: Option<Applied>,
    /// Read the phone back only when nothing is queued: a queued call would make
    /// any reading stale.
    pub read_phone: bool,
}

/// The expectation from one snapshot of the record and the outbox: a call confirmed
/// while the step ran shows in the record or in the queue, never in neither.
pub fn expect(snapshot: &Snapshot) -> Expectation {
    match snapshot.pending.last() {
        Some(last) => Expectation {
            intended: last.call.applied(),
            read_phone: false,
        },
        None => Expectation {
            intended: snapshot.record.last_applied.clone(),
            read_phone: true,
        },
    }
}

/// What reconcile compares the desired diversion with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    /// What Calvert set or is setting, as the newest snapshot has it.
    pub intended: Option<Applied>,
    /// The phone as read back, or `Unknown` when the reading cannot be trusted.
    pub observed: Observation,
}

/// The step's inputs as one consistent view: the snapshot `before` the phone was
/// read back (`observed`) and the snapshot `after`. The reading counts only when
/// nothing was queued and nothing of Calvert's was confirmed in between; otherwise
/// a diversion Calvert set or is setting could be on the phone and look manual, so
/// the reading is `Unknown` and reconcile trusts what was last applied (a manual
/// diversion is then seen at the next step). The intention is always the newest.
pub fn compare(before: &Snapshot, observed: Observation, after: &Snapshot) -> Compared {
    let expectation = expect(after);
    let unmoved = before.pending == after.pending
        && before.record.last_applied == after.record.last_applied
        && before.record.last_applied_seq == after.record.last_applied_seq;
    let trusted = unmoved && expect(before).read_phone && expectation.read_phone;
    Compared {
        intended: expectation.intended,
        observed: if trusted {
            observed
        } else {
            Observation::Unknown
        },
    }
}

/// The phone as read back → what reconcile sees. A target that cannot tell, or a
/// failed read, is `Unknown`: reconcile then trusts what was last applied.
pub fn observation(read: &Result<Option<Option<Applied>>, TargetError>) -> Observation {
    match read {
        Ok(Some(Some(shown))) => Observation::Present(phone_diversion(shown)),
        Ok(Some(None)) => Observation::None,
        Ok(None) | Err(_) => Observation::Unknown,
    }
}

/// A stored diversion in the core's terms.
pub fn phone_diversion(applied: &Applied) -> PhoneDiversion {
    PhoneDiversion {
        reason: applied.reason.clone(),
        until: applied.until,
    }
}

/// What `decide` wants on the phone, in reconcile's terms.
pub fn desired(decision: &Decision) -> Option<PhoneDiversion> {
    decision.diversion.as_ref().map(|d| PhoneDiversion {
        reason: d.reason.clone(),
        until: d.until,
    })
}

/// The step's result, for the mailbox task to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Queue this call (durably) and wake the delivery task.
    pub call: Option<DiversionCall>,
    /// Record this as the diversion last applied (Adopt, Forget).
    pub last_applied: Option<Option<Applied>>,
    /// A manual diversion is on the phone and is held.
    pub holds_manual: bool,
    /// The reconcile action, for `/metrics`.
    pub action: &'static str,
    /// When to wake next.
    pub next: Next,
}

/// Reconcile's action → the call (a Set carries the local return time the core
/// computed), the record edit and the next wake (`next_change`).
pub fn plan(action: ReconcileAction, decision: &Decision) -> Plan {
    let mut plan = Plan {
        call: None,
        last_applied: None,
        holds_manual: false,
        action: action_name(&action),
        next: Next::At(decision.next_change),
    };
    match action {
        ReconcileAction::Set(want) => {
            plan.call = Some(DiversionCall::Set {
                reason: want.reason,
                until: want.until,
                until_local: decision
                    .diversion
                    .as_ref()
                    .map(|d| d.until_local.clone())
                    .unwrap_or_default(),
            });
        }
        ReconcileAction::Clear => plan.call = Some(DiversionCall::Clear),
        ReconcileAction::Adopt(shown) => {
            plan.last_applied = Some(Some(Applied {
                reason: shown.reason,
                until: shown.until,
            }));
        }
        ReconcileAction::Forget => plan.last_applied = Some(None),
        ReconcileAction::HoldManual => plan.holds_manual = true,
        ReconcileAction::InSync => {}
    }
    plan
}

/// The label of a reconcile action in `/metrics`.
pub fn action_name(action: &ReconcileAction) -> &'static str {
    match action {
        ReconcileAction::Set(_) => "set",
        ReconcileAction::Clear => "clear",
        ReconcileAction::HoldManual => "hold-manual",
        ReconcileAction::Adopt(_) => "adopt",
        ReconcileAction::Forget => "forget",
        ReconcileAction::InSync => "in-sync",
    }
}

/// How long to sleep for `Next::At`: until just after the boundary (`until_change`,
/// real time, 5 ms past it so `now` has reached it) or the resync, whichever comes
/// first. `true`: the wake is a boundary, which may re-decide on the calendar as last
/// read.
pub fn boundary_wake(until_change: Option<Duration>, resync: Duration) -> (Duration, bool) {
    match until_change {
        Some(until) => {
            let until = until + Duration::from_millis(5);
            (until.min(resync), until < resync)
        }
        None => (resync, false),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
