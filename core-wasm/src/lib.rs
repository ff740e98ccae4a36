//! Calvert's decision core.
//!
//! This crate is the deterministic heart of Calvert: it turns calendar items into
//! diversions ([`decide()`]), reconciles them with what the telephony system shows
//! ([`reconcile()`]), routes mailboxes to servers ([`route()`]), applies the time-zone
//! policy ([`zone`]) and plans two-way sync ([`plan_sync()`]). The rules are those of
//! `../shared/spec/semantics.md`.
//!
//! # No I/O
//! Nothing here reads a clock, randomness, the environment, files or the network.
//! Every function takes `now` (and everything else) as an argument and is a pure
//! function of its inputs: the same input gives byte-identical output natively and
//! inside the WebAssembly component that the host runs. Maps are `BTreeMap`s so that
//! no iteration order depends on a hasher's seed.
//!
//! # One crate, two builds
//! The types are generated from `wit/calvert.wit` by `wit-bindgen`, so the WIT file
//! *is* the domain model. Built natively, this is an ordinary library (tests, fuzzing,
//! benchmarks). Built for `wasm32-unknown-unknown` (by `host/build.rs`), the
//! [`component`] module exports the WIT interface and the host turns the module into a
//! component with no imports at all.

pub mod decide;
pub mod eval;
pub mod model;
pub mod reconcile;
pub mod route;
pub mod status;
pub mod sync;
pub mod trigger;
pub mod zone;

mod normal_form;
mod windows_zones;

#[cfg(target_family = "wasm")]
mod component;

pub use decide::decide;
pub use model::*;
pub use reconcile::reconcile;
pub use route::{RuleSet, route};
pub use status::next_status;
pub use sync::{fingerprint, plan_sync};
pub use trigger::{TriggerSet, resolve_trigger};

/// Every problem in a configuration's triggers and rules, for load time.
pub fn validate_config(triggers: &[Trigger], rules: &[Rule]) -> Vec<Problem> {
    let mut problems = TriggerSet::new(triggers).err().unwrap_or_default();
    problems.extend(RuleSet::new(rules).err().unwrap_or_default());
    problems
}
