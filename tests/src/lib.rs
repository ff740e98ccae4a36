//! Shared pieces of the cross-crate tests and benchmarks: one compiled core per test
//! process, the mapping between the native core's types and the component's (both
//! generated from the same WIT), and input generators.

use std::sync::OnceLock;

use calvert::component::wit;
use calvert::{CoreInstance, DecisionCore};
use calvert_core as native;

pub mod generate;

/// The embedded component, compiled once per test process.
pub fn core() -> &'static DecisionCore {
    static CORE: OnceLock<DecisionCore> = OnceLock::new();
    CORE.get_or_init(|| DecisionCore::load().expect("the embedded core component loads"))
}

/// A fresh instance of the shared core.
pub fn instance() -> CoreInstance {
    core().instance()
}

/// Both directions between native and component enums with the same variants.
macro_rules! same_enum {
    ($name:ident { $($v:ident),+ $(,)? }) => {
        impl Convert<wit::$name> for native::$name {
            fn convert(&self) -> wit::$name { match self { $(native::$name::$v => wit::$name::$v),+ } }
        }
        impl Convert<native::$name> for wit::$name {
            fn convert(&self) -> native::$name { match self { $(wit::$name::$v => native::$name::$v),+ } }
        }
    };
}

/// Converts between the native core's types and the component's.
pub trait Convert<T> {
    fn convert(&self) -> T;
}

impl Convert<String> for String {
    fn convert(&self) -> String {
        self.clone()
    }
}

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(&self) -> Vec<B> {
        self.iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(&self) -> Option<B> {
        self.as_ref().map(Convert::convert)
    }
}

same_enum!(FreeBusy {
    Free,
    Tentative,
    Busy,
    Oof,
    WorkingElsewhere,
    NoData
});
same_enum!(Response {
    Unknown,
    Organizer,
    Tentative,
    Accept,
    Decline,
    NoResponse
});
same_enum!(ItemKind {
    Single,
    Occurrence,
    Exception,
    RecurringMaster
});
same_enum!(Sensitivity {
    Normal,
    Personal,
    Private,
    Confidential
});
same_enum!(AttendeeRole {
    Required,
    Optional,
    Resource,
    Contact
});
same_enum!(ReturnTime { BlockEnd, ItemEnd });
same_enum!(SkipReason {
    RecurringMaster,
    Cancelled,
    EmptyInterval,
    DuplicateId
});
same_enum!(Side { Business, Exchange });
same_enum!(ActionKind {
    Create,
    Delete,
    Update
});
same_enum!(SyncSkipReason {
    Recurring,
    Private,
    OutsideWindow,
    Resource
});
same_enum!(ProblemKind {
    EmptyTrigger,
    DuplicateTrigger,
    InvalidPattern,
    RuleTie,
    UnknownZone,
    InvalidAddress,
    DuplicateId,
    InvalidPolicy,
    InvalidTime
});

/// Records with the same fields on both sides, converted field by field.
macro_rules! same_record {
    ($name:ident { $($field:ident),* $(,)? } via { $($conv:ident),* $(,)? }) => {
        impl Convert<wit::$name> for native::$name {
            fn convert(&self) -> wit::$name {
                wit::$name { $($field: self.$field.clone(),)* $($conv: self.$conv.convert(),)* }
            }
        }
        impl Convert<native::$name> for wit::$name {
            fn convert(&self) -> native::$name {
                native::$name { $($field: self.$field.clone(),)* $($conv: self.$conv.convert(),)* }
            }
        }
    };
}

same_record!(Attendee { address } via { role });
same_record!(CalendarItem {
    id, change_key, subject, location, body, start, end, is_all_day, zone, is_meeting, is_cancelled,
    reminder_minutes, created, modified
} via { free_busy, response, kind, sensitivity, attendees });
same_record!(DecidePolicy { count_tentative_response, default_reason, oof_reason } via { divert_on, return_time });
same_record!(Trigger { word, reason } via {});
same_record!(Rule { server, pattern, priority } via {});
same_record!(MappingEntry { exchange_id, business_id, exchange_fp, business_fp, end } via {});
same_record!(SyncPolicy { lookback_days, sync_private, mailbox_is_resource, integrated_users } via {});
same_record!(Diversion { reason, until, until_local, item_id } via {});
same_record!(SkippedItem { id } via { why });
same_record!(Decision { next_change, warnings } via { diversion, skipped });
same_record!(Problem { message } via { kind });
same_record!(TriggerMatch { reason, word, at } via {});
same_record!(PhoneDiversion { reason, until } via {});
same_record!(SyncAction { exchange_id, business_id, fingerprint } via { action, side, attendees });
same_record!(SyncSkip { id } via { side, why });
same_record!(Conflict { exchange_id, business_id } via { winner, loser });
same_record!(Detached { exchange_id, business_id } via { side });
same_record!(SyncReport { } via { skipped, conflicts, detached });
same_record!(EvalAnswer { answer, warnings } via {});
same_record!(SyncPlan { } via { actions, report, mapping });

impl Convert<wit::Observation> for native::Observation {
    fn convert(&self) -> wit::Observation {
        match self {
            native::Observation::Unknown => wit::Observation::Unknown,
            native::Observation::None => wit::Observation::None,
            native::Observation::Present(d) => wit::Observation::Present(d.convert()),
        }
    }
}

impl Convert<native::ReconcileAction> for wit::ReconcileAction {
    fn convert(&self) -> native::ReconcileAction {
        match self {
            wit::ReconcileAction::Set(d) => native::ReconcileAction::Set(d.convert()),
            wit::ReconcileAction::Clear => native::ReconcileAction::Clear,
            wit::ReconcileAction::HoldManual => native::ReconcileAction::HoldManual,
            wit::ReconcileAction::Adopt(d) => native::ReconcileAction::Adopt(d.convert()),
            wit::ReconcileAction::Forget => native::ReconcileAction::Forget,
            wit::ReconcileAction::InSync => native::ReconcileAction::InSync,
        }
    }
}
