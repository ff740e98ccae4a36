//! Instants: a grid around a base instant, where items touch, overlap and nest often;
//! for fuzzing also whole days, odd seconds and the edges of the core's range.

use arbitrary::Unstructured;
use calvert_core::Instant;
use calvert_core::zone::{MAX_INSTANT, MIN_INSTANT};

use crate::draw::{Result, chance, int, pick, weighted};

/// 2026-11-25T00:00:00Z, an ordinary (not DST) Wednesday: the base of the generated calendars.
pub const BASE: Instant = 1_795_564_800;

/// An hour, in seconds.
pub const HOUR: i64 = 3_600;

/// A day, in seconds.
pub const DAY: i64 = 86_400;

/// Instants at the edges: of the core's range, of i64, and just inside the range.
pub const EXTREME_INSTANTS: &[Instant] = &[
    i64::MIN,
    i64::MAX,
    MIN_INSTANT,
    MAX_INSTANT,
    MIN_INSTANT - 1,
    MAX_INSTANT + 1,
    MIN_INSTANT + DAY,
    MAX_INSTANT - DAY,
    MAX_INSTANT - HOUR,
    0,
    -1,
];

/// Where instants fall: `base + n·step` for `n` in `first..=last`; an item lasts
/// `shortest..=longest` steps (zero or fewer: it ends before it starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub base: Instant,
    pub step: i64,
    pub first: i64,
    pub last: i64,
    pub shortest: i64,
    pub longest: i64,
    /// Also whole days from `base`, seconds off it, the edges of the core's range and
    /// of i64, and anything ([`EXTREME_INSTANTS`]): for fuzzing, rarely valid.
    pub odd: bool,
}

impl Times {
    /// Minutes over five hours from 08:00 UTC; items up to three hours.
    pub const MORNING: Times = Times {
        base: BASE + 8 * HOUR,
        step: 60,
        first: 0,
        last: 300,
        shortest: -10,
        longest: 180,
        odd: false,
    };

    /// Quarter hours over the two days around [`BASE`]; items up to ten hours.
    pub const TWO_DAYS: Times = Times {
        base: BASE,
        step: 900,
        first: -96,
        last: 95,
        shortest: -2,
        longest: 40,
        odd: false,
    };

    /// Hours from ten days before 12:00 UTC to three days after (a sync window of
    /// seven days leaves some items outside); items of one to eight hours.
    pub const SYNC: Times = Times {
        base: BASE + 12 * HOUR,
        step: HOUR,
        first: -240,
        last: 71,
        shortest: 1,
        longest: 8,
        odd: false,
    };

    /// Half hours over ±2.7 days from midnight in Stockholm (23:00 UTC, where all-day
    /// items begin), and the odd instants.
    pub const FUZZ: Times = Times {
        base: BASE - HOUR,
        step: 1_800,
        first: -128,
        last: 127,
        shortest: -2,
        longest: 48,
        odd: true,
    };

    /// An instant on the grid (or, when `odd`, sometimes off it).
    pub fn instant(&self, u: &mut Unstructured<'_>) -> Result<Instant> {
        if !self.odd {
            return self.on_grid(u);
        }
        Ok(match weighted(u, &[120, 60, 60, 10, 6])? {
            0 => self.on_grid(u)?,
            1 => self
                .base
                .saturating_add(i64::from(u.arbitrary::<i8>()?) * DAY),
            2 => self.base.saturating_add(i64::from(u.arbitrary::<i16>()?)),
            3 => pick(u, EXTREME_INSTANTS)?,
            _ => u.arbitrary()?,
        })
    }

    fn on_grid(&self, u: &mut Unstructured<'_>) -> Result<Instant> {
        let n = int(u, self.first, self.last)?;
        Ok(self.base.saturating_add(n.saturating_mul(self.step)))
    }

    /// An item's end: its start plus some steps (or, when `odd`, sometimes any instant).
    pub fn end(&self, u: &mut Unstructured<'_>, start: Instant) -> Result<Instant> {
        if self.odd && chance(u, 48)? {
            return self.instant(u);
        }
        let steps = int(u, self.shortest, self.longest)?;
        Ok(start.saturating_add(steps.saturating_mul(self.step)))
    }

    /// A `now`: on the grid, a quarter of the time half a step off it.
    pub fn now(&self, u: &mut Unstructured<'_>) -> Result<Instant> {
        let at = self.instant(u)?;
        Ok(if chance(u, 64)? {
            at.saturating_add(self.step / 2)
        } else {
            at
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_instants_stay_on_the_grid_and_in_range() {
        for times in [Times::MORNING, Times::TWO_DAYS, Times::SYNC] {
            for a in 0..=255u8 {
                for b in [0u8, 1, 77, 255] {
                    let at = times.instant(&mut Unstructured::new(&[a, b, 9])).unwrap();
                    let n = (at - times.base) / times.step;
                    assert_eq!((at - times.base) % times.step, 0, "{times:?}");
                    assert!((times.first..=times.last).contains(&n), "{times:?}: {n}");
                }
            }
        }
    }
}
