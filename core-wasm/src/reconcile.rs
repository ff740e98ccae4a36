//! Reconciling the decision with the telephony system (semantics.md §3).
//!
//! `last_applied` is what this connector last set and the telephony system confirmed;
//! `observed` is what it shows now, where the adapter can read it. A diversion that
//! differs from `last_applied` was set by someone else: it is a manual diversion and
//! it wins until it is gone.
//!
//! One decision beyond the contract: when the phone already shows exactly what is
//! desired but `last_applied` says otherwise (the process stopped between the
//! telephony system's confirmation and the write of `last_applied`), the diversion
//! is adopted as ours rather than held as manual forever.

use crate::model::{Observation, PhoneDiversion, ReconcileAction};

/// What to do so that the phone shows `desired`. Every action is idempotent.
pub fn reconcile(
    desired: Option<&PhoneDiversion>,
    last_applied: Option<&PhoneDiversion>,
    observed: &Observation,
) -> ReconcileAction {
    let ours_is_on_the_phone = match observed {
        Observation::Unknown => last_applied.is_some(),
        Observation::None => false,
        Observation::Present(shown) => {
            if Some(shown) != last_applied {
                return if Some(shown) == desired {
                    ReconcileAction::Adopt(shown.clone())
                } else {
                    ReconcileAction::HoldManual
                };
            }
            true
        }
    };
    match (desired, ours_is_on_the_phone) {
        (Some(want), true) if Some(want) == last_applied => ReconcileAction::InSync,
        (Some(want), _) => ReconcileAction::Set(want.clone()),
        (None, true) => ReconcileAction::Clear,
        (None, false) if last_applied.is_some() => ReconcileAction::Forget,
        (None, false) => ReconcileAction::InSync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn div(reason: &str, until: i64) -> PhoneDiversion {
        PhoneDiversion {
            reason: reason.into(),
            until,
        }
    }

    #[test]
    fn sets_when_desired_differs_from_last_applied() {
        let want = div("LUNCH", 100);
        assert_eq!(
            reconcile(Some(&want), None, &Observation::None),
            ReconcileAction::Set(want.clone())
        );
        assert_eq!(
            reconcile(Some(&want), None, &Observation::Unknown),
            ReconcileAction::Set(want.clone())
        );
        let old = div("LUNCH", 50);
        assert_eq!(
            reconcile(Some(&want), Some(&old), &Observation::Present(old.clone())),
            ReconcileAction::Set(want.clone())
        );
        assert_eq!(
            reconcile(
                Some(&want),
                Some(&want),
                &Observation::Present(want.clone())
            ),
            ReconcileAction::InSync
        );
    }

    #[test]
    fn clears_ours_when_nothing_is_desired() {
        let ours = div("LUNCH", 100);
        assert_eq!(
            reconcile(None, Some(&ours), &Observation::Present(ours.clone())),
            ReconcileAction::Clear
        );
        assert_eq!(
            reconcile(None, Some(&ours), &Observation::Unknown),
            ReconcileAction::Clear
        );
        assert_eq!(
            reconcile(None, None, &Observation::None),
            ReconcileAction::InSync
        );
        assert_eq!(
            reconcile(None, Some(&ours), &Observation::None),
            ReconcileAction::Forget
        );
    }

    #[test]
    fn a_manual_diversion_wins_and_control_resumes_when_it_is_gone() {
        let ours = div("LUNCH", 100);
        let manual = div("SICK", 999);
        let want = div("MEETING", 200);
        assert_eq!(
            reconcile(
                Some(&want),
                Some(&ours),
                &Observation::Present(manual.clone())
            ),
            ReconcileAction::HoldManual
        );
        assert_eq!(
            reconcile(None, Some(&ours), &Observation::Present(manual.clone())),
            ReconcileAction::HoldManual
        );
        assert_eq!(
            reconcile(None, None, &Observation::Present(manual.clone())),
            ReconcileAction::HoldManual
        );
        // The manual diversion is removed: the calendar takes over again.
        assert_eq!(
            reconcile(Some(&want), Some(&ours), &Observation::None),
            ReconcileAction::Set(want.clone())
        );
    }

    #[test]
    fn adopts_what_is_already_shown() {
        let want = div("LUNCH", 100);
        assert_eq!(
            reconcile(Some(&want), None, &Observation::Present(want.clone())),
            ReconcileAction::Adopt(want.clone())
        );
    }

    fn arb_div() -> impl Strategy<Value = Option<PhoneDiversion>> {
        prop::option::of(
            (prop::sample::select(vec!["A", "B"]), 0i64..3).prop_map(|(r, u)| div(r, u)),
        )
    }

    proptest! {
        /// Never touches a diversion it did not set; applying the action and
        /// reconciling again gives nothing more to do.
        #[test]
        fn manual_wins_and_actions_are_idempotent(desired in arb_div(), last in arb_div(), shown in arb_div()) {
            let observed = match &shown { Some(d) => Observation::Present(d.clone()), None => Observation::None };
            let action = reconcile(desired.as_ref(), last.as_ref(), &observed);
            let manual = shown.is_some() && shown != last;
            if manual {
                prop_assert!(matches!(action, ReconcileAction::HoldManual | ReconcileAction::Adopt(_)));
                return Ok(());
            }
            let (phone, applied) = match &action {
                ReconcileAction::Set(d) | ReconcileAction::Adopt(d) => (Some(d.clone()), Some(d.clone())),
                ReconcileAction::Clear | ReconcileAction::Forget => (None, None),
                ReconcileAction::InSync => (shown.clone(), last.clone()),
                ReconcileAction::HoldManual => unreachable!(),
            };
            prop_assert_eq!(&phone, &desired);
            let observed = match &phone { Some(d) => Observation::Present(d.clone()), None => Observation::None };
            prop_assert_eq!(reconcile(desired.as_ref(), applied.as_ref(), &observed), ReconcileAction::InSync);
        }
    }
}
