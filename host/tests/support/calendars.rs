//! Calendars that change continually, for the crash loop: a seeded dice (so a run
//! can be repeated from its seed), the changes it draws (create, move, resize,
//! delete, extend; items that start or end within seconds), and the diversion each
//! calendar calls for, worked out here by the rule of semantics.md §2 for plain busy
//! appointments (independently of the core).

#![allow(dead_code)]

use std::collections::BTreeMap;

use calvert::diversion::utc;
use calvert_exchange_sim::{Exchange, SimItem};

/// A word no log may show: every subject carries it.
pub const PRIVATE_WORD: &str = "Hemligt";

/// The configuration's triggers (word → reason) and the default reason.
pub const TRIGGERS: &str = r#"
[[trigger]]
word = "Lunch"
reason = "LUNCH"
[[trigger]]
word = "Möte"
reason = "MEETING"
[policy]
default_reason = "BACK"
"#;

/// Subjects and the reason each gives under [`TRIGGERS`].
const SUBJECTS: [(&str, &str); 3] = [
    ("Lunch med Hemligt bolag", "LUNCH"),
    ("Möte om Hemligt uppköp", "MEETING"),
    ("Kursdag Hemligt ämne", "BACK"),
];

/// A small seeded random source (SplitMix64): the same seed draws the same run.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = (high - low).max(0) as u64 + 1;
        low + (self.next() % span) as i64
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One of `count` choices.
    pub fn pick(&mut self, count: usize) -> usize {
        (self.next() % count.max(1) as u64) as usize
    }
}

/// One calendar item as the test knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub subject: usize,
    pub start: i64,
    pub end: i64,
}

/// What a phone should show: (reason, until in UTC), or nothing.
pub type Diversion = Option<(String, String)>;

/// The diversion `items` call for at `now` (semantics.md §2 for busy appointments):
/// of the active items the later start wins, then the earlier end, then the smaller
/// id; the reason is the winner's; until is the end of the block of overlapping or
/// touching items that contains `now`.
pub fn expected(items: &BTreeMap<String, Item>, now: i64) -> Diversion {
    let (winner, until) = block(items, now)?;
    Some((SUBJECTS[winner.subject].1.to_string(), utc(until)))
}

/// The winning item at `now` and the end of its block.
fn block(items: &BTreeMap<String, Item>, now: i64) -> Option<(&Item, i64)> {
    let active = items
        .iter()
        .filter(|(_, item)| item.start <= now && now < item.end);
    let (_, winner) = active.clone().min_by(|(a_id, a), (b_id, b)| {
        b.start
            .cmp(&a.start)
            .then(a.end.cmp(&b.end))
            .then(a_id.cmp(b_id))
    })?;
    let mut until = active.map(|(_, item)| item.end).max()?;
    while let Some(end) = items
        .values()
        .filter(|item| item.start <= until && item.end > until)
        .map(|item| item.end)
        .max()
    {
        until = end;
    }
    Some((winner, until))
}

/// How the receiver logs a call that makes a phone show `diversion`.
pub fn call_for(diversion: &Diversion) -> String {
    match diversion {
        Some((reason, until)) => format!("set {reason} {until}"),
        None => "clear".into(),
    }
}

/// The calendars of the run's mailboxes, kept in step with the simulator.
pub struct Calendars {
    pub exchange: Exchange,
    pub items: BTreeMap<String, BTreeMap<String, Item>>,
    next_id: u64,
    /// Changes made so far.
    pub changes: usize,
}

impl Calendars {
    pub fn new(exchange: Exchange, mailboxes: &[String]) -> Calendars {
        Calendars {
            exchange,
            items: mailboxes
                .iter()
                .map(|m| (m.clone(), BTreeMap::new()))
                .collect(),
            next_id: 0,
            changes: 0,
        }
    }

    fn put(&mut self, mailbox: &str, id: &str, item: Item) {
        let sim = SimItem::appointment(id, SUBJECTS[item.subject].0, item.start, item.end);
        self.exchange.put_item(mailbox, sim);
        if let Some(items) = self.items.get_mut(mailbox) {
            items.insert(id.to_string(), item);
        }
        self.changes += 1;
    }

    fn delete(&mut self, mailbox: &str, id: &str) {
        self.exchange.delete_item(mailbox, id);
        if let Some(items) = self.items.get_mut(mailbox) {
            items.remove(id);
        }
        self.changes += 1;
    }

    /// One random change to a random mailbox, around `now`.
    pub fn change(&mut self, dice: &mut Dice, now: i64) {
        let mailboxes: Vec<String> = self.items.keys().cloned().collect();
        let mailbox = mailboxes[dice.pick(mailboxes.len())].clone();
        let ids: Vec<String> = self.items[&mailbox].keys().cloned().collect();
        let roll = dice.pick(100);
        if ids.is_empty() || roll < 30 {
            let (start, end) = shape(dice, now);
            self.next_id += 1;
            let id = format!("item-{}", self.next_id);
            let subject = dice.pick(SUBJECTS.len());
            self.put(
                &mailbox,
                &id,
                Item {
                    subject,
                    start,
                    end,
                },
            );
            return;
        }
        let id = ids[dice.pick(ids.len())].clone();
        let old = self.items[&mailbox][&id].clone();
        match roll {
            30..=49 => {
                // Move: a new start, the same length.
                let (start, _) = shape(dice, now);
                let item = Item {
                    start,
                    end: start + (old.end - old.start),
                    ..old
                };
                self.put(&mailbox, &id, item);
            }
            50..=69 => {
                // Resize: the same start, a new end (often within seconds).
                let end = if dice.chance(50) {
                    now + dice.between(1, 6)
                } else {
                    old.start + dice.between(2, 3600)
                };
                let end = end.max(old.start + 1);
                self.put(&mailbox, &id, Item { end, ..old });
            }
            70..=84 => self.delete(&mailbox, &id),
            _ => self.extend(dice, &mailbox, now),
        }
    }

    /// A change that certainly calls for a new diversion of `mailbox`: an item from
    /// now to beyond the end of whatever covers now.
    pub fn extend(&mut self, dice: &mut Dice, mailbox: &str, now: i64) {
        let until = block(&self.items[mailbox], now).map_or(now, |(_, until)| until);
        self.next_id += 1;
        let id = format!("item-{}", self.next_id);
        let start = now - dice.between(1, 600);
        let end = until + dice.between(60, 900);
        let subject = dice.pick(SUBJECTS.len());
        self.put(
            mailbox,
            &id,
            Item {
                subject,
                start,
                end,
            },
        );
    }

    /// Before the end: no boundary in the next `horizon` seconds (so the calendars'
    /// diversion cannot change while the test checks it), and a covering item for
    /// some mailboxes so the end holds both sets and clears.
    pub fn settle(&mut self, dice: &mut Dice, now: i64, horizon: i64) {
        let near = |t: i64| t > now - 2 && t <= now + horizon;
        let mailboxes: Vec<String> = self.items.keys().cloned().collect();
        for mailbox in mailboxes {
            let doomed: Vec<String> = self.items[&mailbox]
                .iter()
                .filter(|(_, i)| near(i.start) || near(i.end))
                .map(|(id, _)| id.clone())
                .collect();
            for id in doomed {
                self.delete(&mailbox, &id);
            }
            if dice.chance(60) {
                self.next_id += 1;
                let id = format!("item-{}", self.next_id);
                let start = now - dice.between(60, 3600);
                let end = now + horizon + dice.between(60, 3600);
                let subject = dice.pick(SUBJECTS.len());
                self.put(
                    &mailbox,
                    &id,
                    Item {
                        subject,
                        start,
                        end,
                    },
                );
            }
        }
    }
}

impl Calendars {
    /// A change that changes no diversion (an item beyond `horizon`): it makes the
    /// service read `mailbox`'s calendar again.
    pub fn nudge(&mut self, mailbox: &str, now: i64, horizon: i64) {
        self.next_id += 1;
        let id = format!("item-{}", self.next_id);
        let start = now + horizon + 3600;
        self.put(
            mailbox,
            &id,
            Item {
                subject: 0,
                start,
                end: start + 600,
            },
        );
    }
}

/// Times for a new or moved item: covering now, starting soon, ending soon, brief
/// and soon, or later today.
fn shape(dice: &mut Dice, now: i64) -> (i64, i64) {
    match dice.pick(5) {
        0 => (now - dice.between(60, 3600), now + dice.between(120, 3600)),
        1 => {
            let start = now + dice.between(1, 6);
            (start, start + dice.between(60, 1800))
        }
        2 => (now - dice.between(60, 1800), now + dice.between(1, 6)),
        3 => {
            let start = now + dice.between(1, 4);
            (start, start + dice.between(2, 5))
        }
        _ => {
            let start = now + dice.between(600, 7200);
            (start, start + dice.between(300, 3600))
        }
    }
}

#[cfg(test)]
mod rule {
    use super::*;

    fn item(subject: usize, start: i64, end: i64) -> Item {
        Item {
            subject,
            start,
            end,
        }
    }

    #[test]
    fn the_later_start_wins_and_until_is_the_end_of_the_touching_block() {
        let items: BTreeMap<String, Item> = [
            ("a".to_string(), item(2, 0, 100)),
            ("b".to_string(), item(0, 40, 60)),
            ("c".to_string(), item(1, 100, 150)),
            ("d".to_string(), item(1, 151, 200)),
        ]
        .into();
        assert_eq!(expected(&items, 50), Some(("LUNCH".into(), utc(150))));
        assert_eq!(expected(&items, 10), Some(("BACK".into(), utc(150))));
        assert_eq!(expected(&items, 150), None);
        assert_eq!(expected(&items, 160), Some(("MEETING".into(), utc(200))));
    }

    #[test]
    fn at_equal_starts_the_earlier_end_then_the_smaller_id_wins() {
        let items: BTreeMap<String, Item> = [
            ("b".to_string(), item(0, 0, 50)),
            ("a".to_string(), item(1, 0, 50)),
            ("c".to_string(), item(2, 0, 40)),
        ]
        .into();
        assert_eq!(expected(&items, 10), Some(("BACK".into(), utc(50))));
        assert_eq!(expected(&items, 45), Some(("MEETING".into(), utc(50))));
    }

    #[test]
    fn the_same_seed_draws_the_same_numbers() {
        let (mut a, mut b) = (Dice::new(7), Dice::new(7));
        let draws: Vec<i64> = (0..50).map(|_| a.between(-3, 3)).collect();
        assert_eq!(draws, (0..50).map(|_| b.between(-3, 3)).collect::<Vec<_>>());
        assert!(draws.iter().all(|d| (-3..=3).contains(d)));
        assert!(draws.contains(&-3) && draws.contains(&3));
    }
}
