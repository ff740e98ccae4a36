//! Test inputs for Calvert's core, defined once for every test that generates them:
//! the fuzz targets (`fuzz/`, libFuzzer's bytes through [`arbitrary`]), and the
//! property and differential tests (proptest, with the `proptest` feature).
//!
//! Everything is drawn from bytes by one set of functions ([`draw`]): the alphabets
//! ([`alphabet`]), instants on a grid ([`time`]), items and lists of them ([`item`]),
//! configuration ([`config`]), sync mappings ([`sync`]) and whole inputs of one
//! operation ([`input`]). A fuzz target takes an [`input`] type as its `Arbitrary`
//! input; a proptest strategy ([`strategy`]) decodes random bytes with the same
//! functions, so both draw from the same distributions, and a shrinking input draws
//! plainer values. What differs between tests is a shape: which instants
//! ([`time::Times`]), which fields and copies ([`item::ItemShape`]), and whether input
//! the core must reject is drawn too ([`pool::Inputs`]).
//!
//! The bytes of a kept fuzz input (`fuzz/regressions/`) mean something only to these
//! functions: a change here changes what they decode to (tests/fuzz_regressions.rs
//! checks that each still decodes to the case it keeps).

pub mod alphabet;
pub mod config;
pub mod draw;
pub mod input;
pub mod item;
pub mod pool;
#[cfg(feature = "proptest")]
pub mod strategy;
pub mod sync;
pub mod time;

pub use input::{DecideInput, RouteInput, SyncInput, TriggerInput};
pub use item::{Copies, Fields, ItemShape};
pub use pool::{Inputs, Pool};
pub use time::Times;
