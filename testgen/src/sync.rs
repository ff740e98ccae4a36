//! The mapping a previous sync recorded: pairs of ids, with fingerprints that are
//! mostly the items' own (unchanged since), sometimes the other side's (changed
//! alike), another item's, or any string.

use arbitrary::Unstructured;
use calvert_core::{CalendarItem, Instant, MappingEntry};

use crate::alphabet::FINGERPRINTS;
use crate::draw::{Result, byte, list, weighted};
use crate::item::{Copies, id};
use crate::pool::Inputs;
use crate::time::Times;

/// What one side of a mapping entry records.
struct Side<'a> {
    ids: &'a [&'a str],
    items: &'a [CalendarItem],
    used: Vec<String>,
}

/// Up to `max` entries relating ids of `exchange_ids` and `business_ids`; both sides'
/// items as read now give the fingerprints and ends the entries record.
pub fn mapping(
    u: &mut Unstructured<'_>,
    max: usize,
    inputs: Inputs,
    times: &Times,
    (exchange_ids, exchange): (&[&str], &[CalendarItem]),
    (business_ids, business): (&[&str], &[CalendarItem]),
) -> Result<Vec<MappingEntry>> {
    let mut e = Side {
        ids: exchange_ids,
        items: exchange,
        used: Vec::new(),
    };
    let mut b = Side {
        ids: business_ids,
        items: business,
        used: Vec::new(),
    };
    list(u, max, |u| {
        let exchange_id = id(u, e.ids, Copies::Any, &mut e.used)?;
        let business_id = id(u, b.ids, Copies::Any, &mut b.used)?;
        let own_e = fingerprint_of(e.items, &exchange_id);
        let own_b = fingerprint_of(b.items, &business_id);
        let exchange_fp = recorded(u, inputs, &own_e, &own_b, (e.items, b.items))?;
        let business_fp = recorded(u, inputs, &own_b, &own_e, (e.items, b.items))?;
        let end = match weighted(u, &[100, 100, 56])? {
            0 => end_of(e.items, &exchange_id),
            1 => end_of(b.items, &business_id),
            _ => times.instant(u)?,
        };
        Ok(MappingEntry {
            exchange_id,
            business_id,
            exchange_fp,
            business_fp,
            end,
        })
    })
}

/// A recorded fingerprint: the item's own, the other side's, some item's, or a string.
fn recorded(
    u: &mut Unstructured<'_>,
    inputs: Inputs,
    own: &str,
    other: &str,
    (exchange, business): (&[CalendarItem], &[CalendarItem]),
) -> Result<String> {
    Ok(match weighted(u, &[144, 40, 40, 32])? {
        0 => own.to_string(),
        1 => other.to_string(),
        2 => {
            let items = if byte(u)? % 2 == 0 {
                exchange
            } else {
                business
            };
            match items.len() {
                0 => String::new(),
                n => items
                    .get(usize::from(byte(u)?) % n)
                    .map(calvert_core::fingerprint)
                    .unwrap_or_default(),
            }
        }
        _ => FINGERPRINTS.draw(u, inputs)?,
    })
}

fn fingerprint_of(items: &[CalendarItem], id: &str) -> String {
    items
        .iter()
        .find(|i| i.id == id)
        .map(calvert_core::fingerprint)
        .unwrap_or_default()
}

fn end_of(items: &[CalendarItem], id: &str) -> Instant {
    items
        .iter()
        .find(|i| i.id == id)
        .map_or(crate::time::BASE, |i| i.end)
}
