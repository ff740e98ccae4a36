//! Calendar items and lists of them: ids from a small alphabet, copies of earlier
//! items (identical, as a server returns an item twice, or changed under the same id).

use arbitrary::Unstructured;
use calvert_core::{Attendee, CalendarItem};

use crate::alphabet::{
    BODIES, BUSINESS_IDS, FREE_BUSY, ITEM_IDS, KINDS, LOCATIONS, PEOPLE, RESPONSES, ROLES,
    SENSITIVITIES, WORDS, ZONES,
};
use crate::draw::{Result, byte, chance, int, list, maybe, pick, table, weighted};
use crate::pool::{Inputs, text};
use crate::time::Times;

/// Which fields of an item are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Every field: what decide looks at (free/busy, response, meeting, cancelled,
    /// kind, all-day, zone, subject) and the rest.
    All,
    /// What a two-way sync copies and compares (subject, location, body, reminder,
    /// response, sensitivity, attendees, last modified), on a busy single
    /// appointment that is not all-day and has no zone of its own.
    Synced,
}

/// Items with the same id in one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copies {
    /// Only exact copies (a server returned the item twice).
    Exact,
    /// Also changed copies and ids drawn again: ambiguous to decide, an error to a sync.
    Any,
}

/// How the items of one list are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemShape {
    /// The id alphabet (see [`id`]).
    pub ids: &'static [&'static str],
    /// Starts, ends, creation and modification.
    pub times: Times,
    pub fields: Fields,
    /// Whether subjects, zones and attendees may be rejected strings.
    pub inputs: Inputs,
    pub copies: Copies,
    /// The longest list.
    pub max: usize,
}

impl ItemShape {
    /// Decide properties: valid items over a morning, ids that repeat.
    pub const MORNING: ItemShape = ItemShape {
        ids: ITEM_IDS,
        times: Times::MORNING,
        fields: Fields::All,
        inputs: Inputs::Valid,
        copies: Copies::Any,
        max: 30,
    };

    /// The differential tests: two days of items, now and then rejected input.
    pub const TWO_DAYS: ItemShape = ItemShape {
        ids: ITEM_IDS,
        times: Times::TWO_DAYS,
        fields: Fields::All,
        inputs: Inputs::Mixed,
        copies: Copies::Any,
        max: 16,
    };

    /// The Exchange side of a sync in the differential tests: only exact copies, so
    /// that most plans get past validation (the fuzz target draws changed copies).
    pub const TWO_DAYS_EXCHANGE: ItemShape = ItemShape {
        copies: Copies::Exact,
        max: 8,
        ..ItemShape::TWO_DAYS
    };

    /// The business side of a sync in the differential tests.
    pub const TWO_DAYS_BUSINESS: ItemShape = ItemShape {
        ids: BUSINESS_IDS,
        max: 6,
        ..ItemShape::TWO_DAYS_EXCHANGE
    };

    /// Sync properties: the synced content of valid items over the sync window.
    pub const SYNCED: ItemShape = ItemShape {
        ids: ITEM_IDS,
        times: Times::SYNC,
        fields: Fields::Synced,
        inputs: Inputs::Valid,
        copies: Copies::Exact,
        max: 8,
    };

    /// Fuzzing: long lists, odd instants, any strings.
    pub const FUZZ: ItemShape = ItemShape {
        ids: ITEM_IDS,
        times: Times::FUZZ,
        fields: Fields::All,
        inputs: Inputs::Mixed,
        copies: Copies::Any,
        max: 64,
    };

    /// The business side of a sync when fuzzing.
    pub const FUZZ_BUSINESS: ItemShape = ItemShape {
        ids: BUSINESS_IDS,
        max: 8,
        ..ItemShape::FUZZ
    };

    /// The Exchange side of a sync when fuzzing.
    pub const FUZZ_EXCHANGE: ItemShape = ItemShape {
        max: 8,
        ..ItemShape::FUZZ
    };
}

/// One item with id `id`.
pub fn item(u: &mut Unstructured<'_>, shape: &ItemShape, id: String) -> Result<CalendarItem> {
    let start = shape.times.instant(u)?;
    let end = shape.times.end(u, start)?;
    let mut item = CalendarItem::appointment(id, start, end);
    match shape.fields {
        Fields::All => all_fields(u, shape, &mut item)?,
        Fields::Synced => synced_fields(u, shape, &mut item)?,
    }
    Ok(item)
}

fn all_fields(u: &mut Unstructured<'_>, shape: &ItemShape, item: &mut CalendarItem) -> Result<()> {
    let (inputs, times) = (shape.inputs, &shape.times);
    item.free_busy = table(u, FREE_BUSY)?;
    item.response = table(u, RESPONSES)?;
    item.is_meeting = chance(u, 128)?;
    item.subject = text(u, inputs)?;
    item.is_all_day = chance(u, 40)?;
    item.is_cancelled = chance(u, 24)?;
    item.kind = table(u, KINDS)?;
    item.sensitivity = table(u, SENSITIVITIES)?;
    // Any zone of the pool: the core reads an unknown item zone as the user's.
    item.zone = maybe(u, 80, |u| ZONES.draw(u, Inputs::Mixed))?;
    item.location = maybe(u, 128, |u| text(u, inputs))?.unwrap_or_default();
    item.body = maybe(u, 128, |u| text(u, inputs))?.unwrap_or_default();
    item.reminder_minutes = maybe(u, 128, |u| match inputs {
        Inputs::Valid => Ok(u32::from(byte(u)? % 61)),
        Inputs::Mixed => u.arbitrary(),
    })?;
    item.created = maybe(u, 128, |u| times.instant(u))?;
    item.modified = maybe(u, 128, |u| times.instant(u))?;
    item.attendees = list(u, 4, |u| attendee(u, inputs))?;
    Ok(())
}

fn synced_fields(
    u: &mut Unstructured<'_>,
    shape: &ItemShape,
    item: &mut CalendarItem,
) -> Result<()> {
    item.subject = pick(u, WORDS)?.to_string();
    item.location = pick(u, LOCATIONS)?.to_string();
    item.body = pick(u, BODIES)?.to_string();
    item.reminder_minutes = maybe(u, 128, |u| pick(u, &[10, 15]))?;
    item.response = table(u, RESPONSES)?;
    item.sensitivity = table(u, SENSITIVITIES)?;
    // Modified a few steps before the base (a sync's `now`).
    let times = &shape.times;
    item.modified = maybe(u, 128, |u| Ok(times.base + int(u, -3, -1)? * times.step))?;
    item.attendees = list(u, 3, |u| attendee(u, shape.inputs))?;
    Ok(())
}

/// An attendee: one of [`PEOPLE`] in some role.
pub fn attendee(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<Attendee> {
    Ok(Attendee {
        address: PEOPLE.draw(u, inputs)?,
        role: table(u, ROLES)?,
    })
}

/// An id of `ids`: mostly the first one not `used` yet (after the last, made from the
/// first), for [`Copies::Any`] sometimes any of them. It joins `used`.
pub fn id(
    u: &mut Unstructured<'_>,
    ids: &[&str],
    copies: Copies,
    used: &mut Vec<String>,
) -> Result<String> {
    let id = if copies == Copies::Any && chance(u, 32)? {
        pick(u, ids)?.to_string()
    } else {
        match ids.iter().find(|id| !used.iter().any(|u| u == *id)) {
            Some(id) => id.to_string(),
            None => format!(
                "{}-{}",
                ids.first().copied().unwrap_or_default(),
                used.len()
            ),
        }
    };
    used.push(id.clone());
    Ok(id)
}

/// A list of at most `shape.max` items: new ones, exact copies of earlier ones (8%), and
/// for [`Copies::Any`] changed copies (5%: the end moved, or the subject when it did not).
pub fn items(u: &mut Unstructured<'_>, shape: &ItemShape) -> Result<Vec<CalendarItem>> {
    let len = u.int_in_range(0..=shape.max)?;
    let weights: &[u16] = match shape.copies {
        Copies::Exact => &[236, 20, 0],
        Copies::Any => &[224, 20, 12],
    };
    let mut items: Vec<CalendarItem> = Vec::with_capacity(len);
    let mut used = Vec::new();
    while items.len() < len && !u.is_empty() {
        let entry = weighted(u, weights)?;
        let earlier = match items.len() {
            0 => None,
            n => Some(usize::from(byte(u)?) % n),
        };
        match (entry, earlier.and_then(|i| items.get(i)).cloned()) {
            (1, Some(copy)) => items.push(copy),
            (2, Some(mut changed)) => {
                let shift: i8 = u.arbitrary()?;
                changed.end = changed.end.saturating_add(i64::from(shift) * 60);
                if shift == 0 {
                    changed.subject.push('!');
                }
                items.push(changed);
            }
            _ => {
                let id = id(u, shape.ids, shape.copies, &mut used)?;
                items.push(item(u, shape, id)?);
            }
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(shape: &ItemShape) -> Vec<Vec<CalendarItem>> {
        (0..200u32)
            .map(|seed| {
                let bytes: Vec<u8> = (0..1500u32)
                    .map(|i| {
                        (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 40_503) >> 13) as u8
                    })
                    .collect();
                items(&mut Unstructured::new(&bytes), shape).unwrap()
            })
            .collect()
    }

    #[test]
    fn exact_copies_never_change_an_item_under_its_id() {
        for list in draws(&ItemShape::SYNCED) {
            for a in &list {
                assert!(list.iter().all(|b| b.id != a.id || b == a), "{list:?}");
            }
        }
    }

    #[test]
    fn lists_have_repeated_ids_and_changed_copies() {
        let lists = draws(&ItemShape::MORNING);
        let changed = lists
            .iter()
            .filter(|l| l.iter().any(|a| l.iter().any(|b| a.id == b.id && a != b)))
            .count();
        let long = lists.iter().filter(|l| l.len() >= 10).count();
        assert!(changed >= 20, "{changed} lists with a changed copy");
        assert!(long >= 50, "{long} lists of ten or more");
    }
}
