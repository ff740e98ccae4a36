//! `[[trigger]]` and `[policy]`: which words in a calendar item set which reason,
//! and when a diversion is set at all. The core judges both.

use super::check::Check;
use super::file::{PolicySection, TriggerSection};
use crate::component::wit::{self, DecidePolicy, FreeBusy, ReturnTime, Trigger};
use crate::component::{CoreError, CoreInstance};

impl Check<'_> {
    pub(super) fn triggers(
        &mut self,
        core: &mut CoreInstance,
        sections: Vec<TriggerSection>,
    ) -> Result<Vec<Trigger>, CoreError> {
        let triggers: Vec<Trigger> = sections
            .into_iter()
            .map(|t| Trigger {
                word: t.word,
                reason: t.reason,
            })
            .collect();
        for problem in core.validate_config(&triggers, &[])? {
            self.problem("trigger", problem.message);
        }
        Ok(triggers)
    }

    pub(super) fn policy(
        &mut self,
        core: &mut CoreInstance,
        p: PolicySection,
    ) -> Result<DecidePolicy, CoreError> {
        let mut divert_on = Vec::new();
        for (i, state) in p.divert_on.iter().enumerate() {
            match free_busy(state) {
                Some(fb) => divert_on.push(fb),
                None => self.problem(
                    format!("policy.divert_on[{i}]"),
                    format!(
                        "{state:?} is not a free/busy state; use busy, oof, tentative, working-elsewhere or free"
                    ),
                ),
            }
        }
        let return_time = match p.return_time.as_str() {
            "block-end" => ReturnTime::BlockEnd,
            "item-end" => ReturnTime::ItemEnd,
            other => {
                self.problem(
                    "policy.return_time",
                    format!("{other:?}: use \"block-end\" or \"item-end\""),
                );
                ReturnTime::BlockEnd
            }
        };
        let policy = DecidePolicy {
            divert_on,
            count_tentative_response: p.count_tentative,
            default_reason: p.default_reason,
            oof_reason: p.oof_reason,
            return_time,
        };
        self.core_accepts(core, &policy)?;
        Ok(policy)
    }

    /// The core is the judge of a policy: ask it with an empty calendar.
    fn core_accepts(
        &mut self,
        core: &mut CoreInstance,
        policy: &DecidePolicy,
    ) -> Result<(), CoreError> {
        match core.decide(&[], policy, &[], "UTC", 0) {
            Ok(_) => Ok(()),
            Err(CoreError::Rejected(problems)) => {
                for problem in problems {
                    if problem.kind == wit::ProblemKind::InvalidPolicy {
                        self.problem("policy", problem.message);
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn free_busy(name: &str) -> Option<FreeBusy> {
    Some(match name {
        "busy" => FreeBusy::Busy,
        "oof" => FreeBusy::Oof,
        "tentative" => FreeBusy::Tentative,
        "working-elsewhere" => FreeBusy::WorkingElsewhere,
        "free" => FreeBusy::Free,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{MINIMAL, load};
    use crate::component::wit::{FreeBusy, ReturnTime};

    #[test]
    fn the_policy_is_read_as_written() {
        let text = format!(
            "{MINIMAL}\n[policy]\ndivert_on = [\"oof\", \"working-elsewhere\"]\nreturn_time = \"item-end\"\n[[trigger]]\nword = \"lunch\"\nreason = \"LUNCH\"\n"
        );
        let config = load(&text, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.policy.divert_on,
            [FreeBusy::Oof, FreeBusy::WorkingElsewhere]
        );
        assert_eq!(config.policy.return_time, ReturnTime::ItemEnd);
        assert_eq!(config.triggers[0].reason, "LUNCH");
    }
}
