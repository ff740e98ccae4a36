//! The decision core component, hosted by wasmtime.
//!
//! [`DecisionCore`] compiles the embedded component once (cranelift) and keeps an
//! `InstancePre`; [`CoreInstance`] is one store + instance, reused call after call.
//! Every call gets a time limit, so runaway guest code stops instead of hanging the
//! service, and every store a memory cap. A trap (time limit, out of memory, a bug in
//! the core) becomes a [`CoreError`] for that one call; the instance is then thrown
//! away and the next call gets a fresh one, so one bad mailbox never takes the
//! service down.
//!
//! The time limit uses wasmtime's epoch interruption: a background thread ticks the
//! engine's epoch every [`EPOCH_TICK`], and each call may run for its limit in ticks.
//! Fuel metering would bound the guest deterministically, but it cost 28% of a
//! `decide` call in our benchmark (docs/benchmarks.md); an epoch check is a load and
//! a compare at function entries and loop heads.

use std::time::Duration;
use wasmtime::component::{Component, Linker};

use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "core",
    additional_derives: [PartialEq, Eq, Hash],
});

/// The WIT types as the host sees them.
pub use exports::calvert::core::engine as wit;
use wit::{
    CalendarItem, DecidePolicy, Decision, EvalAnswer, MappingEntry, Observation, PhoneDiversion,
    Problem, ReconcileAction, Rule, StatusEvent, SyncPlan, SyncPolicy, Trigger, TriggerMatch,
    UserStatus, ZoneResolution,
};

impl Default for DecidePolicy {
    /// The core's default policy (`calvert_core::DecidePolicy::default`): Busy and Out
    /// of Office divert, tentative answers do not count, reason "back", the return
    /// time is the end of the busy block.
    fn default() -> Self {
        DecidePolicy {
            divert_on: vec![wit::FreeBusy::Busy, wit::FreeBusy::Oof],
            count_tentative_response: false,
            default_reason: "back".into(),
            oof_reason: None,
            return_time: wit::ReturnTime::BlockEnd,
        }
    }
}

impl CalendarItem {
    /// A single busy appointment with empty text fields, as the core's own
    /// `CalendarItem::appointment`: the base that callers adjust.
    pub fn appointment(id: impl Into<String>, start: i64, end: i64) -> Self {
        CalendarItem {
            id: id.into(),
            change_key: String::new(),
            subject: String::new(),
            location: String::new(),
            body: String::new(),
            start,
            end,
            is_all_day: false,
            zone: None,
            free_busy: wit::FreeBusy::Busy,
            response: wit::Response::Unknown,
            is_meeting: false,
            is_cancelled: false,
            kind: wit::ItemKind::Single,
            sensitivity: wit::Sensitivity::Normal,
            reminder_minutes: None,
            created: None,
            modified: None,
            attendees: Vec::new(),
        }
    }
}

/// The core component, as built by `build.rs` from `core-wasm` and `wit/`.
pub static CORE_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/calvert_core.wasm"));

/// How often the epoch ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Time limit of one call unless set otherwise: far above what 10,000 items need
/// (milliseconds), far below a hang.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(5);
/// Guest memory cap per instance unless set otherwise.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(
        "the decision core could not be loaded: {0}; rebuild Calvert (cargo build) so the embedded component matches wit/"
    )]
    Load(String),
    #[error(
        "the decision core ran past its time limit in `{function}` and was stopped; the input is far larger than expected or the core has a bug: report it with the input"
    )]
    TimeLimit { function: &'static str },
    #[error(
        "the decision core failed in `{function}`: {message}; this call was abandoned and the next one starts afresh"
    )]
    Trap {
        function: &'static str,
        message: String,
    },
    #[error("{}", Problems(.0))]
    Rejected(Vec<Problem>),
}

/// Problems as one sentence.
struct Problems<'a>(&'a [Problem]);

impl std::fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

/// The compiled core, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct DecisionCore {
    engine: Engine,
    component: Component,
    pre: CorePre<GuestLimits>,
    time_limit: Duration,
    memory_limit: usize,
}

impl DecisionCore {
    /// Compile the embedded component.
    pub fn load() -> Result<Self, CoreError> {
        Self::from_component(CORE_COMPONENT)
    }

    /// Compile a component (the embedded one, or a vendor's build of the same WIT world).
    pub fn from_component(bytes: &[u8]) -> Result<Self, CoreError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| CoreError::Load(format!("{e:#}")))?;
        spawn_epoch_ticker(&engine)?;
        let component =
            Component::new(&engine, bytes).map_err(|e| CoreError::Load(format!("{e:#}")))?;
        // The core imports nothing, so the linker provides nothing.
        let linker = Linker::new(&engine);
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| CoreError::Load(format!("{e:#}")))?;
        let pre = CorePre::new(pre).map_err(|e| CoreError::Load(format!("{e:#}")))?;
        Ok(DecisionCore {
            engine,
            component,
            pre,
            time_limit: DEFAULT_TIME_LIMIT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        })
    }

    /// Set the time limit of each call (rounded up to whole ticks; zero stops a
    /// call at its first check).
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Set the guest memory cap of each instance.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The names the component imports: none, by design.
    pub fn imports(&self) -> Vec<String> {
        self.component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The names the component exports.
    pub fn exports(&self) -> Vec<String> {
        self.component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A new instance for a sequence of calls.
    pub fn instance(&self) -> CoreInstance {
        CoreInstance {
            time_limit: self.time_limit,
            core: self.clone(),
            live: None,
        }
    }
}

/// Whole epoch ticks for `limit`, rounded up.
fn ticks(limit: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    u64::try_from(limit.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX)
}

/// Tick the engine's epoch until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> Result<(), CoreError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("calvert-core-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(|_| ())
        .map_err(|e| CoreError::Load(format!("the epoch thread could not start: {e}")))
}

/// A store's limits, remembering whether the guest was refused memory (so a trap
/// that follows reads as running out of memory).
struct GuestLimits {
    limits: StoreLimits,
    refused_memory: bool,
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.refused_memory |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

struct Live {
    store: Store<GuestLimits>,
    bindings: Core,
}

/// One instance of the core, reused across calls (re-created after a trap).
pub struct CoreInstance {
    core: DecisionCore,
    time_limit: Duration,
    live: Option<Live>,
}

impl CoreInstance {
    fn instantiate(&self) -> Result<Live, CoreError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.core.memory_limit)
            .instances(1)
            .build();
        let limits = GuestLimits {
            limits,
            refused_memory: false,
        };
        let mut store = Store::new(&self.core.engine, limits);
        store.limiter(|limits| limits);
        store.set_epoch_deadline(ticks(self.time_limit));
        let bindings = self
            .core
            .pre
            .instantiate(&mut store)
            .map_err(|e| CoreError::Load(format!("{e:#}")))?;
        Ok(Live { store, bindings })
    }

    /// Run one export within the time limit; a trap discards the instance.
    fn call<T>(
        &mut self,
        function: &'static str,
        f: impl FnOnce(&wit::Guest, &mut Store<GuestLimits>) -> wasmtime::Result<T>,
    ) -> Result<T, CoreError> {
        let live = match &mut self.live {
            Some(live) => live,
            None => self.live.insert(self.instantiate()?),
        };
        live.store.set_epoch_deadline(ticks(self.time_limit));
        let engine = live.bindings.calvert_core_engine();
        match f(engine, &mut live.store) {
            Ok(value) => Ok(value),
            Err(error) => {
                let refused_memory = live.store.data().refused_memory;
                self.live = None;
                if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    Err(CoreError::TimeLimit { function })
                } else {
                    Err(CoreError::Trap {
                        function,
                        message: self.trap_reason(&error, refused_memory),
                    })
                }
            }
        }
    }

    /// Why a call failed, in a few words: running out of memory, or the trap itself;
    /// never the guest's backtrace (it means nothing to the person reading it).
    fn trap_reason(&self, error: &wasmtime::Error, refused_memory: bool) -> String {
        if refused_memory {
            return format!(
                "it ran out of its {} MiB of memory, so the input is far larger than expected",
                self.core.memory_limit >> 20
            );
        }
        let reason = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => error.root_cause().to_string(),
        };
        reason.lines().next().unwrap_or_default().trim().to_string()
    }

    /// Change the time limit of this instance's calls.
    pub fn set_time_limit(&mut self, limit: Duration) {
        self.time_limit = limit;
    }

    fn rejected<T>(result: Result<T, Vec<Problem>>) -> Result<T, CoreError> {
        result.map_err(CoreError::Rejected)
    }

    pub fn decide(
        &mut self,
        items: &[CalendarItem],
        policy: &DecidePolicy,
        triggers: &[Trigger],
        zone: &str,
        now: i64,
    ) -> Result<Decision, CoreError> {
        let r = self.call("decide", |g, s| {
            g.call_decide(s, items, policy, triggers, zone, now)
        })?;
        Self::rejected(r)
    }

    pub fn resolve_trigger(
        &mut self,
        subject: &str,
        triggers: &[Trigger],
    ) -> Result<Option<TriggerMatch>, CoreError> {
        let r = self.call("resolve-trigger", |g, s| {
            g.call_resolve_trigger(s, subject, triggers)
        })?;
        Self::rejected(r)
    }

    pub fn reconcile(
        &mut self,
        desired: Option<&PhoneDiversion>,
        last_applied: Option<&PhoneDiversion>,
        observed: &Observation,
    ) -> Result<ReconcileAction, CoreError> {
        self.call("reconcile", |g, s| {
            g.call_reconcile(s, desired, last_applied, observed)
        })
    }

    pub fn route(&mut self, address: &str, rules: &[Rule]) -> Result<Option<String>, CoreError> {
        let r = self.call("route", |g, s| g.call_route(s, address, rules))?;
        Self::rejected(r)
    }

    pub fn validate_config(
        &mut self,
        triggers: &[Trigger],
        rules: &[Rule],
    ) -> Result<Vec<Problem>, CoreError> {
        self.call("validate-config", |g, s| {
            g.call_validate_config(s, triggers, rules)
        })
    }

    pub fn resolve_zone(&mut self, id: &str, fallback: &str) -> Result<ZoneResolution, CoreError> {
        let r = self.call("resolve-zone", |g, s| g.call_resolve_zone(s, id, fallback))?;
        Self::rejected(r)
    }

    pub fn local_to_instant(&mut self, local: &str, zone: &str) -> Result<i64, CoreError> {
        let r = self.call("local-to-instant", |g, s| {
            g.call_local_to_instant(s, local, zone)
        })?;
        Self::rejected(r)
    }

    pub fn instant_to_local(&mut self, at: i64, zone: &str) -> Result<String, CoreError> {
        let r = self.call("instant-to-local", |g, s| {
            g.call_instant_to_local(s, at, zone)
        })?;
        Self::rejected(r)
    }

    pub fn plan_sync(
        &mut self,
        exchange: &[CalendarItem],
        business: &[CalendarItem],
        mapping: &[MappingEntry],
        policy: &SyncPolicy,
        now: i64,
    ) -> Result<SyncPlan, CoreError> {
        let r = self.call("plan-sync", |g, s| {
            g.call_plan_sync(s, exchange, business, mapping, policy, now)
        })?;
        Self::rejected(r)
    }

    pub fn fingerprint(&mut self, item: &CalendarItem) -> Result<String, CoreError> {
        self.call("fingerprint", |g, s| g.call_fingerprint(s, item))
    }

    pub fn next_status(
        &mut self,
        current: &UserStatus,
        event: &StatusEvent,
    ) -> Result<UserStatus, CoreError> {
        let r = self.call("next-status", |g, s| g.call_next_status(s, current, event))?;
        Self::rejected(r)
    }

    /// One `calvert eval` request; `Ok(Err(sentence))` is a rejected request.
    pub fn eval(&mut self, request: &str) -> Result<Result<EvalAnswer, String>, CoreError> {
        self.call("eval", |g, s| g.call_eval(s, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_memory_is_one_sentence_without_a_backtrace() {
        let capped = DecisionCore::load()
            .unwrap_or_else(|e| panic!("{e}"))
            .with_memory_limit(32 << 20);
        let request = format!(
            r#"{{"op": "route", "address": "{}"}}"#,
            "x".repeat(48 << 20)
        );
        let error = capped.instance().eval(&request).unwrap_err();
        assert!(
            matches!(
                error,
                CoreError::Trap {
                    function: "eval",
                    ..
                }
            ),
            "{error:?}"
        );
        let sentence = error.to_string();
        assert!(sentence.contains("ran out of its 32 MiB"), "{sentence}");
        assert!(!sentence.contains("backtrace"), "{sentence}");
        assert_eq!(sentence.lines().count(), 1, "{sentence}");
    }
}
