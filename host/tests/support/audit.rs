//! The crash loop's proof, from the phone receiver's log of every call it received
//! (repeats included) and what each phone shows at the end.
//!
//! A key seen again with the same body is at-least-once delivery doing its job
//! (re-sent after a kill); with another body it is a key reused for a different call.
//! Each user's keys (`address#seq`) must be applied in increasing order, with no seq
//! missing (a call queued durably and never delivered is lost), and the last applied
//! call and the phone must both be what the final calendar calls for.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::phones::Received;

/// One user at the end of the run.
pub struct Ending {
    pub address: String,
    pub phone: String,
    /// The call the final calendar calls for ("set REASON until" or "clear").
    pub expected: String,
    /// What the phone shows, as the same kind of call.
    pub shown: String,
}

/// The figures of one run; every one but `calls` and `resent` must be zero.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// Calls applied (distinct keys).
    pub calls: usize,
    /// Calls received again with a key already applied, with the same body.
    pub resent: usize,
    /// Seqs queued but never applied, and phones not showing what their calendar
    /// calls for.
    pub lost: usize,
    /// Keys received again with a different body.
    pub duplicated: usize,
    /// Applied calls whose seq is not above the one applied before for the user.
    pub out_of_order: usize,
    /// Users whose last applied call is not what the final calendar calls for.
    pub stale: usize,
    /// Calls on a phone whose key names another user (or no seq).
    pub misdirected: usize,
}

/// Audit `received` (in arrival order) against the users' `endings`.
pub fn audit(received: &[Received], endings: &[Ending]) -> Audit {
    let mut figures = Audit::default();
    let owner: HashMap<&str, &str> = endings
        .iter()
        .map(|e| (e.phone.as_str(), e.address.as_str()))
        .collect();
    let mut first: HashMap<&str, &str> = HashMap::new();
    let mut applied: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for call in received {
        match first.get(call.key.as_str()) {
            Some(what) if *what == call.what => figures.resent += 1,
            Some(_) => figures.duplicated += 1,
            None => {
                first.insert(&call.key, &call.what);
                figures.calls += 1;
                let seq = call
                    .key
                    .rsplit_once('#')
                    .filter(|(address, _)| owner.get(call.phone.as_str()) == Some(address))
                    .and_then(|(_, seq)| seq.parse::<u64>().ok());
                match seq {
                    Some(seq) => applied
                        .entry(&call.phone)
                        .or_default()
                        .push((seq, &call.what)),
                    None => figures.misdirected += 1,
                }
            }
        }
    }
    for ending in endings {
        let calls = applied
            .get(ending.phone.as_str())
            .map_or(&[][..], Vec::as_slice);
        figures.out_of_order += calls.windows(2).filter(|w| w[0].0 >= w[1].0).count();
        let seqs: BTreeSet<u64> = calls.iter().map(|(seq, _)| *seq).collect();
        if let Some(&highest) = seqs.last() {
            figures.lost += (0..=highest).filter(|seq| !seqs.contains(seq)).count();
        }
        if ending.shown != ending.expected {
            figures.lost += 1;
        }
        let last = calls.last().map_or("clear", |(_, what)| what);
        if last != ending.expected {
            figures.stale += 1;
        }
    }
    figures
}

#[cfg(test)]
mod proof {
    use super::*;

    fn call(phone: &str, seq: u64, what: &str) -> Received {
        Received {
            phone: phone.into(),
            key: format!("{phone}@flexi.se#{seq}"),
            what: what.into(),
        }
    }

    fn ending(phone: &str, expected: &str) -> Ending {
        Ending {
            address: format!("{phone}@flexi.se"),
            phone: phone.into(),
            expected: expected.into(),
            shown: expected.into(),
        }
    }

    #[test]
    fn a_clean_run_with_a_resend_counts_only_calls_and_resends() {
        let log = [
            call("kim", 0, "set A 1"),
            call("eva", 0, "set B 1"),
            call("kim", 0, "set A 1"),
            call("kim", 1, "clear"),
        ];
        let endings = [
            ending("kim", "clear"),
            ending("eva", "set B 1"),
            ending("ola", "clear"),
        ];
        let figures = audit(&log, &endings);
        assert_eq!(
            figures,
            Audit {
                calls: 3,
                resent: 1,
                ..Audit::default()
            }
        );
    }

    #[test]
    fn every_kind_of_fault_is_counted() {
        let log = [
            call("kim", 0, "set A 1"),
            call("kim", 0, "set A 2"),
            call("kim", 2, "set A 3"),
            call("eva", 1, "set B 1"),
            call("eva", 0, "set B 2"),
            Received {
                key: "kim@flexi.se#9".into(),
                ..call("ola", 0, "clear")
            },
        ];
        let mut kim = ending("kim", "set A 3");
        kim.shown = "clear".into();
        let endings = [kim, ending("eva", "set B 1"), ending("ola", "clear")];
        let figures = audit(&log, &endings);
        assert_eq!(
            figures,
            Audit {
                calls: 5,
                resent: 0,
                // kim's seq 1 never came, and kim's phone is wrong.
                lost: 2,
                duplicated: 1,
                out_of_order: 1,
                // eva's last applied call is seq 0's.
                stale: 1,
                misdirected: 1,
            }
        );
    }
}
