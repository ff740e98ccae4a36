//! The component's exports: each WIT function calls the same Rust function the native
//! build uses, so the two cannot drift apart.

use crate::model::{
    CalendarItem, DecidePolicy, Decision, EvalAnswer, Guest, Instant, MappingEntry, Observation,
    PhoneDiversion, Problem, ReconcileAction, Rule, StatusEvent, SyncPlan, SyncPolicy, Trigger,
    TriggerMatch, UserStatus, ZoneResolution,
};
use crate::zone::Zone;

struct Component;

impl Guest for Component {
    fn decide(
        items: Vec<CalendarItem>,
        policy: DecidePolicy,
        triggers: Vec<Trigger>,
        zone: String,
        now: Instant,
    ) -> Result<Decision, Vec<Problem>> {
        crate::decide::decide_with_config(&items, &policy, &triggers, &zone, now)
    }

    fn resolve_trigger(
        subject: String,
        triggers: Vec<Trigger>,
    ) -> Result<Option<TriggerMatch>, Vec<Problem>> {
        crate::trigger::resolve_trigger(&subject, &triggers)
    }

    fn reconcile(
        desired: Option<PhoneDiversion>,
        last_applied: Option<PhoneDiversion>,
        observed: Observation,
    ) -> ReconcileAction {
        crate::reconcile::reconcile(desired.as_ref(), last_applied.as_ref(), &observed)
    }

    fn route(address: String, rules: Vec<Rule>) -> Result<Option<String>, Vec<Problem>> {
        crate::route::route(&address, &rules)
    }

    fn validate_config(triggers: Vec<Trigger>, rules: Vec<Rule>) -> Vec<Problem> {
        crate::validate_config(&triggers, &rules)
    }

    fn resolve_zone(id: String, fallback: String) -> Result<ZoneResolution, Vec<Problem>> {
        crate::zone::resolve_zone(&id, &fallback).map_err(|p| vec![p])
    }

    fn local_to_instant(local: String, zone: String) -> Result<Instant, Vec<Problem>> {
        let zone = Zone::parse(&zone).map_err(|p| vec![p])?;
        let local = crate::zone::parse_local(&local).map_err(|p| vec![p])?;
        zone.local_to_instant(local).map_err(|p| vec![p])
    }

    fn instant_to_local(at: Instant, zone: String) -> Result<String, Vec<Problem>> {
        Zone::parse(&zone)
            .and_then(|z| z.local_string(at))
            .map_err(|p| vec![p])
    }

    fn plan_sync(
        exchange: Vec<CalendarItem>,
        business: Vec<CalendarItem>,
        mapping: Vec<MappingEntry>,
        policy: SyncPolicy,
        now: Instant,
    ) -> Result<SyncPlan, Vec<Problem>> {
        crate::sync::plan_sync(&exchange, &business, &mapping, &policy, now)
    }

    fn fingerprint(item: CalendarItem) -> String {
        crate::sync::fingerprint(&item)
    }

    fn next_status(current: UserStatus, event: StatusEvent) -> Result<UserStatus, Vec<Problem>> {
        crate::status::next_status(&current, &event).map_err(|p| vec![p])
    }

    fn eval(request: String) -> Result<EvalAnswer, String> {
        crate::eval::run(&request)
    }
}

crate::model::export!(Component with_types_in crate::model::bindings);
