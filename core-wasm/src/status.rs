//! User status (semantics.md §8): Not in use → Active ⇄ Passive, Active → Error → Active.

use crate::model::{Problem, ProblemKind, StatusEvent, UserStatus};

/// The status after `event`, or a problem that says why the event is not allowed.
///
/// - Activating needs an integration id (from Not in use, Passive or Active).
/// - Passivating is allowed from any status but Not in use; the error reason is dropped.
/// - A failure turns an Active user to Error with its reason; a passive or unused user
///   has nothing running that can fail, so the event is refused.
/// - Restart is only for a user in Error.
pub fn next_status(current: &UserStatus, event: &StatusEvent) -> Result<UserStatus, Problem> {
    let refuse = |why: String| Err(Problem::new(ProblemKind::InvalidPolicy, why));
    match (current, event) {
        (_, StatusEvent::Activate(id)) => match id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => match current {
                UserStatus::Error(_) => {
                    refuse("the user is in error: restart the user instead of activating".into())
                }
                _ => Ok(UserStatus::Active),
            },
            _ => refuse(
                "activating needs an integration id: set the user's integration id first".into(),
            ),
        },
        (UserStatus::NotInUse, StatusEvent::Passivate) => {
            refuse("the user was never activated: there is nothing to passivate".into())
        }
        (_, StatusEvent::Passivate) => Ok(UserStatus::Passive),
        (UserStatus::Active | UserStatus::Error(_), StatusEvent::Fail(reason)) => {
            Ok(UserStatus::Error(reason.clone()))
        }
        (_, StatusEvent::Fail(_)) => {
            refuse("the user is not active: a failure cannot be recorded".into())
        }
        (UserStatus::Error(_), StatusEvent::Restart) => Ok(UserStatus::Active),
        (_, StatusEvent::Restart) => refuse("only a user in error can be restarted".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let id = Some("INT-7".to_string());
        assert!(next_status(&UserStatus::NotInUse, &StatusEvent::Activate(None)).is_err());
        let active =
            next_status(&UserStatus::NotInUse, &StatusEvent::Activate(id.clone())).unwrap();
        assert_eq!(active, UserStatus::Active);
        let failed = next_status(&active, &StatusEvent::Fail("mailbox not found".into())).unwrap();
        assert_eq!(failed, UserStatus::Error("mailbox not found".into()));
        assert_eq!(
            next_status(&failed, &StatusEvent::Restart).unwrap(),
            UserStatus::Active
        );
        assert_eq!(
            next_status(&failed, &StatusEvent::Passivate).unwrap(),
            UserStatus::Passive
        );
        assert!(next_status(&UserStatus::Passive, &StatusEvent::Fail("x".into())).is_err());
        assert!(next_status(&UserStatus::Active, &StatusEvent::Restart).is_err());
        assert_eq!(
            next_status(&UserStatus::Passive, &StatusEvent::Activate(id)).unwrap(),
            UserStatus::Active
        );
    }

    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = StatusEvent> {
        prop_oneof![
            prop::option::of(prop::sample::select(vec!["", " ", "INT-1"]).prop_map(str::to_string))
                .prop_map(StatusEvent::Activate),
            Just(StatusEvent::Passivate),
            Just(StatusEvent::Fail("mailbox not found".into())),
            Just(StatusEvent::Restart),
        ]
    }

    proptest! {
        /// Whatever administrators and failures do: a refused event changes nothing,
        /// Active is only reached by activating with an id or restarting from Error,
        /// and an Error always keeps its reason.
        #[test]
        fn transitions_keep_their_promises(events in prop::collection::vec(event(), 0..20)) {
            let mut status = UserStatus::NotInUse;
            for e in &events {
                match next_status(&status, e) {
                    Ok(next) => {
                        if next == UserStatus::Active && status != UserStatus::Active {
                            let with_id = matches!(e, StatusEvent::Activate(Some(id)) if !id.trim().is_empty());
                            let restarted = matches!((&status, e), (UserStatus::Error(_), StatusEvent::Restart));
                            prop_assert!(with_id || restarted, "{status:?} --{e:?}--> Active");
                        }
                        if let UserStatus::Error(reason) = &next {
                            prop_assert!(!reason.is_empty());
                        }
                        status = next;
                    }
                    Err(problem) => prop_assert!(!problem.message.is_empty()),
                }
            }
        }
    }
}
