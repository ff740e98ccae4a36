//! Calvert's native host.
//!
//! The host owns everything the core may not touch: time, I/O, storage, retries.
//! It runs the decision core as a WebAssembly component ([`component`]) and offers
//! `calvert eval` and the demo on top of it.

pub mod backoff;
pub mod check;
pub mod component;
pub mod config;
pub mod demo;
pub mod diversion;
pub mod ews;
pub mod graph;
pub mod http_body;
pub mod import;
pub mod listener;
pub mod lock;
pub mod service;
pub mod store;

pub use component::{CoreError, CoreInstance, DecisionCore};
