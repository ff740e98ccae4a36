//! proptest strategies over the same drawing code as the fuzz targets: random bytes
//! (which proptest shrinks: fewer, smaller bytes draw plainer values) decoded by the
//! functions of this crate.

use std::fmt::Debug;

use arbitrary::Unstructured;
use calvert_core::{CalendarItem, DecidePolicy, Instant, ItemKind, SyncPolicy, Trigger};
use proptest::prelude::*;

use crate::alphabet::{KINDS, ZONES};
use crate::draw::{Result, table};
use crate::input::{DecideInput, RouteInput, SyncInput, TriggerInput};
use crate::item::{ItemShape, item, items};
use crate::pool::{Inputs, text};
use crate::time::Times;

/// Values decoded by `draw` from `bytes / 2..=bytes` random bytes (enough, mostly,
/// for the longest list; shrinking zeroes them, which draws the plainest values and
/// empty lists).
pub fn drawn<T: Debug>(
    bytes: usize,
    draw: impl Fn(&mut Unstructured<'_>) -> Result<T>,
) -> impl Strategy<Value = T> {
    prop::collection::vec(any::<u8>(), bytes / 2..=bytes)
        .prop_filter_map("the drawing code rejects the bytes", move |bytes| {
            draw(&mut Unstructured::new(&bytes)).ok()
        })
}

/// A list of items of `shape`.
pub fn item_list(shape: ItemShape) -> impl Strategy<Value = Vec<CalendarItem>> {
    drawn(48 * shape.max + 64, move |u| items(u, &shape))
}

/// One item of `shape` with id `id`.
pub fn one_item(shape: ItemShape, id: &'static str) -> impl Strategy<Value = CalendarItem> {
    drawn(128, move |u| item(u, &shape, id.to_string()))
}

/// An item kind (mostly single).
pub fn kind() -> impl Strategy<Value = ItemKind> {
    drawn(2, |u| table(u, KINDS))
}

/// A `now` on `times`.
pub fn now(times: Times) -> impl Strategy<Value = Instant> {
    drawn(8, move |u| times.now(u))
}

/// A user's zone.
pub fn zone(inputs: Inputs) -> impl Strategy<Value = String> {
    drawn(8, move |u| ZONES.draw(u, inputs))
}

/// A subject (or any text).
pub fn subject(inputs: Inputs) -> impl Strategy<Value = String> {
    drawn(64, move |u| text(u, inputs))
}

/// A list of triggers.
pub fn triggers(inputs: Inputs) -> impl Strategy<Value = Vec<Trigger>> {
    drawn(64, move |u| crate::config::triggers(u, inputs))
}

/// A decide policy.
pub fn decide_policy(inputs: Inputs) -> impl Strategy<Value = DecidePolicy> {
    drawn(32, move |u| crate::config::decide_policy(u, inputs))
}

/// A sync policy.
pub fn sync_policy(inputs: Inputs) -> impl Strategy<Value = SyncPolicy> {
    drawn(32, move |u| crate::config::sync_policy(u, inputs))
}

/// A whole decide input with items of `shape`.
pub fn decide_input(shape: ItemShape) -> impl Strategy<Value = DecideInput> {
    drawn(48 * shape.max + 128, move |u| DecideInput::draw(u, &shape))
}

/// A whole sync input.
pub fn sync_input(exchange: ItemShape, business: ItemShape) -> impl Strategy<Value = SyncInput> {
    drawn(48 * (exchange.max + business.max) + 256, move |u| {
        SyncInput::draw(u, &exchange, &business)
    })
}

/// An address and routing rules.
pub fn route_input(inputs: Inputs) -> impl Strategy<Value = RouteInput> {
    drawn(128, move |u| RouteInput::draw(u, inputs))
}

/// A subject and triggers.
pub fn trigger_input(inputs: Inputs) -> impl Strategy<Value = TriggerInput> {
    drawn(128, move |u| TriggerInput::draw(u, inputs))
}
