//! What configures the core's answers: triggers, the decide policy, routing rules and
//! the sync policy.

use arbitrary::Unstructured;
use calvert_core::{DecidePolicy, ReturnTime, Rule, SyncPolicy, Trigger};

use crate::alphabet::{FREE_BUSY, PATTERNS, PEOPLE, REASONS, SERVERS, TRIGGERS};
use crate::draw::{Result, chance, int, list, maybe, pick, subsequence, table, weighted};
use crate::pool::{Inputs, text};

/// Triggers: some of [`TRIGGERS`] (distinct after folding, so always valid); for
/// [`Inputs::Mixed`] a quarter of the time up to six of any words and reasons
/// (duplicates after folding, blank words and reasons).
pub fn triggers(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<Vec<Trigger>> {
    if inputs == Inputs::Mixed && chance(u, 64)? {
        return list(u, 6, |u| {
            Ok(Trigger {
                word: text(u, Inputs::Mixed)?,
                reason: REASONS.draw(u, Inputs::Mixed)?,
            })
        });
    }
    Ok(subsequence(u, TRIGGERS, 96)?
        .into_iter()
        .map(|(word, reason)| Trigger {
            word: word.into(),
            reason: reason.into(),
        })
        .collect())
}

/// A decide policy: a quarter of the time the default one, else any states that
/// divert, and reasons of [`REASONS`].
pub fn decide_policy(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<DecidePolicy> {
    if !chance(u, 192)? {
        return Ok(DecidePolicy::default());
    }
    Ok(DecidePolicy {
        divert_on: list(u, 4, |u| table(u, FREE_BUSY))?,
        count_tentative_response: chance(u, 128)?,
        default_reason: REASONS.draw(u, inputs)?,
        oof_reason: maybe(u, 128, |u| REASONS.draw(u, inputs))?,
        return_time: if chance(u, 128)? {
            ReturnTime::ItemEnd
        } else {
            ReturnTime::BlockEnd
        },
    })
}

/// Up to eight routing rules of few servers, priorities mostly 0..=3 (for
/// [`Inputs::Mixed`] sometimes any).
pub fn rules(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<Vec<Rule>> {
    list(u, 8, |u| {
        Ok(Rule {
            server: SERVERS.draw(u, inputs)?,
            pattern: PATTERNS.draw(u, inputs)?,
            priority: if inputs == Inputs::Mixed && chance(u, 16)? {
                u.arbitrary()?
            } else {
                i32::try_from(int(u, 0, 3)?).unwrap_or_default()
            },
        })
    })
}

/// A sync policy: look-back days mostly usual (for [`Inputs::Mixed`] sometimes past
/// the limit or any), integrated users of [`PEOPLE`], a resource mailbox now and then.
pub fn sync_policy(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<SyncPolicy> {
    let weights: &[u16] = match inputs {
        Inputs::Valid => &[256, 0, 0],
        Inputs::Mixed => &[232, 12, 12],
    };
    let lookback_days = match weighted(u, weights)? {
        0 => pick(u, &[7, 7, 0, 1, 2, 30, 3650])?,
        1 => pick(u, &[3651, u32::MAX])?,
        _ => u.arbitrary()?,
    };
    Ok(SyncPolicy {
        lookback_days,
        sync_private: chance(u, 128)?,
        mailbox_is_resource: chance(u, 26)?,
        integrated_users: list(u, 4, |u| PEOPLE.draw(u, inputs))?,
    })
}
