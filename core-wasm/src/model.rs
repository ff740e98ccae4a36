//! The domain types, generated from `wit/calvert.wit`, and their small helpers.

pub(crate) mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "core",
        additional_derives: [Clone, PartialEq, Eq, PartialOrd, Ord, Hash],
        pub_export_macro: true,
        default_bindings_module: "calvert_core::model::bindings",
    });
}

#[cfg(target_family = "wasm")]
pub(crate) use bindings::export;
#[cfg(target_family = "wasm")]
pub(crate) use bindings::exports::calvert::core::engine::Guest;
pub use bindings::exports::calvert::core::engine::{
    ActionKind, Attendee, AttendeeRole, CalendarItem, Conflict, DecidePolicy, Decision, Detached,
    Diversion, EvalAnswer, FreeBusy, Instant, ItemKind, MappingEntry, Observation, PhoneDiversion,
    Problem, ProblemKind, ReconcileAction, Response, ReturnTime, Rule, Sensitivity, Side,
    SkipReason, SkippedItem, StatusEvent, SyncAction, SyncPlan, SyncPolicy, SyncReport, SyncSkip,
    SyncSkipReason, Trigger, TriggerMatch, UserStatus, ZoneResolution,
};

/// A list of configuration or input problems; each names what is wrong.
pub type Problems = Vec<Problem>;

impl Problem {
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Default for DecidePolicy {
    /// Seed 000's behaviour: Busy and Out of Office divert, a tentative answer does not
    /// count, "back at" is the default reason, and callers hear when the whole busy
    /// block ends.
    fn default() -> Self {
        DecidePolicy {
            divert_on: vec![FreeBusy::Busy, FreeBusy::Oof],
            count_tentative_response: false,
            default_reason: "back".to_string(),
            oof_reason: None,
            return_time: ReturnTime::BlockEnd,
        }
    }
}

impl Default for SyncPolicy {
    /// Seed 002: seven days back, private items synced.
    fn default() -> Self {
        SyncPolicy {
            lookback_days: 7,
            sync_private: true,
            mailbox_is_resource: false,
            integrated_users: Vec::new(),
        }
    }
}

impl CalendarItem {
    /// A single busy appointment with empty text fields: the base most tests and
    /// callers adjust.
    pub fn appointment(id: impl Into<String>, start: Instant, end: Instant) -> Self {
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
            free_busy: FreeBusy::Busy,
            response: Response::Unknown,
            is_meeting: false,
            is_cancelled: false,
            kind: ItemKind::Single,
            sensitivity: Sensitivity::Normal,
            reminder_minutes: None,
            created: None,
            modified: None,
            attendees: Vec::new(),
        }
    }
}

impl Diversion {
    /// What the telephony system will show for this diversion.
    pub fn as_phone(&self) -> PhoneDiversion {
        PhoneDiversion {
            reason: self.reason.clone(),
            until: self.until,
        }
    }
}
