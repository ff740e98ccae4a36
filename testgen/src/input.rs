//! The whole input of one core operation, drawn in one go. Each implements
//! [`Arbitrary`] with the fuzzing shape, so a fuzz target takes it as its input.

use arbitrary::{Arbitrary, Unstructured};
use calvert_core::{CalendarItem, DecidePolicy, Instant, MappingEntry, Rule, SyncPolicy, Trigger};

use crate::alphabet::{ROUTE_ADDRESSES, ZONES};
use crate::config::{decide_policy, rules, sync_policy, triggers};
use crate::draw::{Result, byte};
use crate::item::{ItemShape, items};
use crate::pool::{Inputs, text};
use crate::sync::mapping;

/// What `decide_with_config` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideInput {
    pub items: Vec<CalendarItem>,
    pub policy: DecidePolicy,
    pub triggers: Vec<Trigger>,
    pub zone: String,
    pub now: Instant,
    /// For order checks: rotate the items by this much.
    pub rotate: u8,
}

impl DecideInput {
    /// Items of `shape`; policy, triggers and zone of `shape.inputs`; `now` on its times.
    pub fn draw(u: &mut Unstructured<'_>, shape: &ItemShape) -> Result<Self> {
        let now = shape.times.now(u)?;
        let zone = ZONES.draw(u, shape.inputs)?;
        let policy = decide_policy(u, shape.inputs)?;
        let triggers = triggers(u, shape.inputs)?;
        let rotate = byte(u)?;
        let items = items(u, shape)?;
        Ok(DecideInput {
            items,
            policy,
            triggers,
            zone,
            now,
            rotate,
        })
    }
}

impl<'a> Arbitrary<'a> for DecideInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        DecideInput::draw(u, &ItemShape::FUZZ)
    }
}

/// What `plan_sync` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncInput {
    pub exchange: Vec<CalendarItem>,
    pub business: Vec<CalendarItem>,
    pub mapping: Vec<MappingEntry>,
    pub policy: SyncPolicy,
    pub now: Instant,
}

impl SyncInput {
    /// Both sides' items of their shapes, a mapping of up to six entries between
    /// them, and policy and `now` after the Exchange side's shape.
    pub fn draw(
        u: &mut Unstructured<'_>,
        exchange_shape: &ItemShape,
        business_shape: &ItemShape,
    ) -> Result<Self> {
        let inputs = exchange_shape.inputs;
        let now = exchange_shape.times.now(u)?;
        let policy = sync_policy(u, inputs)?;
        let exchange = items(u, exchange_shape)?;
        let business = items(u, business_shape)?;
        let mapping = mapping(
            u,
            6,
            inputs,
            &exchange_shape.times,
            (exchange_shape.ids, &exchange),
            (business_shape.ids, &business),
        )?;
        Ok(SyncInput {
            exchange,
            business,
            mapping,
            policy,
            now,
        })
    }
}

impl<'a> Arbitrary<'a> for SyncInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        SyncInput::draw(u, &ItemShape::FUZZ_EXCHANGE, &ItemShape::FUZZ_BUSINESS)
    }
}

/// What `route` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInput {
    pub address: String,
    pub rules: Vec<Rule>,
}

impl RouteInput {
    /// An address of [`ROUTE_ADDRESSES`] and up to eight rules.
    pub fn draw(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<Self> {
        Ok(RouteInput {
            address: ROUTE_ADDRESSES.draw(u, inputs)?,
            rules: rules(u, inputs)?,
        })
    }
}

impl<'a> Arbitrary<'a> for RouteInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        RouteInput::draw(u, Inputs::Mixed)
    }
}

/// What `resolve_trigger` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerInput {
    pub subject: String,
    pub triggers: Vec<Trigger>,
}

impl TriggerInput {
    /// Triggers, then a subject.
    pub fn draw(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<Self> {
        let triggers = triggers(u, inputs)?;
        Ok(TriggerInput {
            subject: text(u, inputs)?,
            triggers,
        })
    }
}

impl<'a> Arbitrary<'a> for TriggerInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        TriggerInput::draw(u, Inputs::Mixed)
    }
}
