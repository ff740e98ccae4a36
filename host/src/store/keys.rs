//! The check of the idempotency-key counters at open, as a pure function of what was
//! read: [`check`]. An idempotency key (`address#seq`) is never reused, so each
//! user's next sequence number must be above every number the store still shows
//! (queued calls, the call last applied) and above every number ever handed out —
//! which the key ledger (`ledger.rs`, a file beside the database) counts, so keys
//! lost with the newest writes of a damaged database are not handed out again.

use std::collections::BTreeMap;

/// What open read about one user's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserKeys {
    /// The stored next sequence number; `None` when the record cannot be read (or
    /// there is none, only queued calls).
    pub next_seq: Option<u64>,
    /// The sequence number of the call last applied.
    pub last_applied_seq: Option<u64>,
    /// The sequence numbers of the user's queued calls.
    pub pending: Vec<u64>,
}

/// What open read: every user's keys, the floor for users never seen, and the
/// ledger's count of numbers handed out (`None`: no ledger, or unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysRead {
    pub users: BTreeMap<String, UserKeys>,
    pub floor: u64,
    pub issued: Option<u64>,
}

/// One user's counter moved up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRepair {
    pub address: String,
    /// The stored number (`None`: the record could not be read).
    pub from: Option<u64>,
    pub to: u64,
    pub why: String,
}

/// The counters after the check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckedKeys {
    /// Every user's next sequence number (repaired or not).
    pub next_seq: BTreeMap<String, u64>,
    /// Where a user never seen starts counting.
    pub floor: u64,
    /// The numbers handed out so far, as the ledger must now say: the sum of every
    /// user's next sequence number.
    pub issued: u64,
    /// One entry per user whose counter moved.
    pub repairs: Vec<KeyRepair>,
}

/// Check every counter against what the store shows and what the ledger counts;
/// move counters up, never down.
///
/// The ledger counts every number handed out (the sum of all counters, made
/// durable before any key is sent). When the database sums to less, its newest
/// writes were lost: `lost` numbers are unaccounted for, and any one user can have
/// lost at most that many, so every counter (and the floor) moves up by `lost`.
pub fn check(read: &KeysRead) -> CheckedKeys {
    let mut checked = CheckedKeys {
        floor: read.floor,
        ..CheckedKeys::default()
    };
    let mut whys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (address, keys) in &read.users {
        let seen_pending = keys.pending.iter().max().map(|s| s.saturating_add(1));
        let seen_applied = keys.last_applied_seq.map(|s| s.saturating_add(1));
        let mut next = keys.next_seq.unwrap_or(0);
        if keys.next_seq.is_none() {
            whys.entry(address.clone()).or_default().push(
                "its record is missing or cannot be read; counted from its queued calls and the ledger".into(),
            );
        }
        if let Some(seen) = seen_pending.filter(|seen| *seen > next) {
            whys.entry(address.clone())
                .or_default()
                .push(format!("a queued call has #{}", seen - 1));
            next = seen;
        }
        if let Some(seen) = seen_applied.filter(|seen| *seen > next) {
            whys.entry(address.clone())
                .or_default()
                .push(format!("the call last applied was #{}", seen - 1));
            next = seen;
        }
        checked.next_seq.insert(address.clone(), next);
    }
    let held: u64 = checked
        .next_seq
        .values()
        .fold(0, |a, b| a.saturating_add(*b));
    let lost = read.issued.unwrap_or(0).saturating_sub(held);
    if lost > 0 {
        for (address, next) in checked.next_seq.iter_mut() {
            *next = next.saturating_add(lost);
            whys.entry(address.clone()).or_default().push(format!(
                "the key ledger counts {lost} more key(s) than the database holds: its newest writes were lost"
            ));
        }
        checked.floor = checked.floor.saturating_add(lost);
    }
    checked.issued = checked
        .next_seq
        .values()
        .fold(0, |a, b| a.saturating_add(*b));
    for (address, why) in whys {
        let Some(to) = checked.next_seq.get(&address).copied() else {
            continue;
        };
        let from = read.users.get(&address).and_then(|k| k.next_seq);
        checked.repairs.push(KeyRepair {
            address,
            from,
            to,
            why: why.join("; "),
        });
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(next_seq: Option<u64>, last_applied_seq: Option<u64>, pending: &[u64]) -> UserKeys {
        UserKeys {
            next_seq,
            last_applied_seq,
            pending: pending.to_vec(),
        }
    }

    fn read(users: &[(&str, UserKeys)], floor: u64, issued: Option<u64>) -> KeysRead {
        KeysRead {
            users: users
                .iter()
                .map(|(a, k)| (a.to_string(), k.clone()))
                .collect(),
            floor,
            issued,
        }
    }

    #[test]
    fn consistent_counters_are_left_alone() {
        let checked = check(&read(
            &[
                ("kim@flexi.se", user(Some(5), Some(3), &[4])),
                ("eva@flexi.se", user(Some(2), Some(1), &[])),
            ],
            0,
            Some(7),
        ));
        assert!(checked.repairs.is_empty(), "{:?}", checked.repairs);
        assert_eq!(checked.next_seq["kim@flexi.se"], 5);
        assert_eq!(checked.next_seq["eva@flexi.se"], 2);
        assert_eq!((checked.floor, checked.issued), (0, 7));
    }

    #[test]
    fn a_ledger_behind_the_database_is_caught_up_without_repairs() {
        // The process stopped between the database's flush and the ledger's.
        let checked = check(&read(
            &[("kim@flexi.se", user(Some(5), None, &[]))],
            0,
            Some(4),
        ));
        assert!(checked.repairs.is_empty());
        assert_eq!(checked.issued, 5);
        let checked = check(&read(
            &[("kim@flexi.se", user(Some(5), None, &[]))],
            0,
            None,
        ));
        assert!(checked.repairs.is_empty());
        assert_eq!(checked.issued, 5);
    }

    #[test]
    fn a_counter_below_a_queued_or_applied_call_moves_above_it() {
        let table = [
            (user(Some(3), None, &[3, 6]), 7, "a queued call has #6"),
            (
                user(Some(3), Some(4), &[]),
                5,
                "the call last applied was #4",
            ),
            (user(Some(0), Some(8), &[9]), 10, "a queued call has #9"),
        ];
        for (keys, want, why) in table {
            let checked = check(&read(&[("kim@flexi.se", keys.clone())], 0, None));
            assert_eq!(checked.next_seq["kim@flexi.se"], want, "{keys:?}");
            assert_eq!(checked.repairs.len(), 1, "{keys:?}");
            let repair = &checked.repairs[0];
            assert_eq!((repair.from, repair.to), (keys.next_seq, want));
            assert!(repair.why.contains(why), "{}", repair.why);
            assert_eq!(checked.issued, want);
        }
    }

    #[test]
    fn lost_writes_move_every_counter_and_the_floor_past_every_key_handed_out() {
        // kim had #0..#4 handed out (5) and eva #0..#2 (3): the ledger says 8. The
        // database lost kim's last two enqueues: it says 3 for kim.
        let checked = check(&read(
            &[
                ("kim@flexi.se", user(Some(3), Some(2), &[])),
                ("eva@flexi.se", user(Some(3), None, &[])),
            ],
            1,
            Some(8),
        ));
        assert_eq!(checked.next_seq["kim@flexi.se"], 5);
        assert_eq!(checked.next_seq["eva@flexi.se"], 5);
        assert_eq!(checked.floor, 3);
        assert_eq!(checked.issued, 10);
        assert_eq!(checked.repairs.len(), 2);
        assert!(
            checked
                .repairs
                .iter()
                .all(|r| r.why.contains("2 more key(s)"))
        );
    }

    #[test]
    fn an_unreadable_record_counts_from_its_queue_and_the_ledger() {
        // kim's record (next 6) cannot be read; #5 is still queued.
        let checked = check(&read(
            &[
                ("kim@flexi.se", user(None, None, &[5])),
                ("eva@flexi.se", user(Some(2), None, &[])),
            ],
            0,
            Some(8),
        ));
        assert!(checked.next_seq["kim@flexi.se"] >= 6);
        assert!(checked.next_seq["eva@flexi.se"] >= 2);
        let kim = checked
            .repairs
            .iter()
            .find(|r| r.address == "kim@flexi.se")
            .unwrap();
        assert_eq!(kim.from, None);
        assert!(kim.why.contains("cannot be read"), "{}", kim.why);
        // Without a ledger, the queue alone.
        let checked = check(&read(&[("kim@flexi.se", user(None, None, &[5]))], 0, None));
        assert_eq!(checked.next_seq["kim@flexi.se"], 6);
    }

    #[test]
    fn counters_never_move_down() {
        let checked = check(&read(
            &[(
                "kim@flexi.se",
                user(Some(u64::MAX), Some(u64::MAX), &[u64::MAX]),
            )],
            0,
            Some(u64::MAX),
        ));
        assert_eq!(checked.next_seq["kim@flexi.se"], u64::MAX);
    }
}
