//! Exchange Online through Microsoft Graph (`../shared/graph/README.md`): so far the
//! reading side, as pure functions tested against Microsoft's documented samples —
//! the calendarView request for a window ([`pages::calendar_view_url`]), its pages
//! and delta pages ([`pages::parse_page`]) and each event mapped to the core's
//! calendar item with the same fidelity as EWS ([`event::calendar_item`]).
//!
//! Not yet built (issue 13): the HTTP client (token, paging, throttling), change
//! notifications and their subscriptions, the `kind = "graph"` server in the
//! configuration, and writes. Nothing in the service uses this module yet.

pub mod event;
pub mod pages;

pub use event::{GraphEvent, calendar_item};
pub use pages::{
    MAX_PAGE_BYTES, MAX_PAGE_EVENTS, Page, PageError, READ_PREFER, calendar_view_url, parse_page,
};
