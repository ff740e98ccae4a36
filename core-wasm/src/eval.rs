//! `calvert eval`: the core as JSON (`../shared/spec/eval-io.md`).
//!
//! One JSON request in, one JSON answer out. This lives in the core, not the host,
//! so that the very same parsing and formatting runs natively and inside the
//! component: the differential tests compare the two byte for byte. Unknown fields,
//! unknown enum names, fractional seconds and rule-breaking input are errors whose
//! text says what to change.

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{
    ActionKind, Attendee, AttendeeRole, CalendarItem, DecidePolicy, EvalAnswer, FreeBusy, Instant,
    ItemKind, MappingEntry, Problem, Response, ReturnTime, Rule, Sensitivity, Side, SkipReason,
    SyncPolicy, SyncSkipReason, Trigger,
};
use crate::zone::{format_instant, parse_instant};

/// JSON names for the WIT enums, in one place.
macro_rules! json_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name used in JSON.
            pub fn json_name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.json_name())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                match text.as_str() {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(de::Error::custom(format!(
                        concat!("unknown ", $what, " {:?}: expected one of {}"),
                        text,
                        [$($name),+].join(", ")
                    ))),
                }
            }
        }
    };
}

json_enum!(FreeBusy, "free_busy", { Free => "free", Tentative => "tentative", Busy => "busy", Oof => "oof",
    WorkingElsewhere => "working_elsewhere", NoData => "no_data" });
json_enum!(Response, "response", { Unknown => "unknown", Organizer => "organizer", Tentative => "tentative",
    Accept => "accept", Decline => "decline", NoResponse => "no_response" });
json_enum!(ItemKind, "kind", { Single => "single", Occurrence => "occurrence", Exception => "exception",
    RecurringMaster => "recurring_master" });
json_enum!(Sensitivity, "sensitivity", { Normal => "normal", Personal => "personal", Private => "private",
    Confidential => "confidential" });
json_enum!(AttendeeRole, "role", { Required => "required", Optional => "optional", Resource => "resource",
    Contact => "contact" });
json_enum!(ReturnTime, "return_time", { BlockEnd => "block_end", ItemEnd => "item_end" });
json_enum!(SkipReason, "skip reason", { RecurringMaster => "recurring_master", Cancelled => "cancelled",
    EmptyInterval => "empty_interval", DuplicateId => "duplicate_id" });
json_enum!(Side, "side", { Business => "business", Exchange => "exchange" });
json_enum!(ActionKind, "action", { Create => "create", Delete => "delete", Update => "update" });
json_enum!(SyncSkipReason, "skip reason", { Recurring => "recurring", Private => "private",
    OutsideWindow => "outside_window", Resource => "resource" });

/// An RFC 3339 instant in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Time(Instant);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_instant(&text).map(Time).map_err(de::Error::custom)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_instant(self.0))
    }
}

fn busy() -> FreeBusy {
    FreeBusy::Busy
}
fn single() -> ItemKind {
    ItemKind::Single
}
fn normal() -> Sensitivity {
    Sensitivity::Normal
}
fn unknown_response() -> Response {
    Response::Unknown
}
fn utc() -> String {
    "UTC".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttendeeJson {
    address: String,
    #[serde(default = "required_role")]
    role: AttendeeRole,
}
fn required_role() -> AttendeeRole {
    AttendeeRole::Required
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemJson {
    id: String,
    #[serde(default)]
    change_key: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    body: String,
    start: Time,
    end: Time,
    #[serde(default)]
    is_all_day: bool,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default = "busy")]
    free_busy: FreeBusy,
    #[serde(default = "unknown_response")]
    response: Response,
    #[serde(default)]
    is_meeting: bool,
    #[serde(default)]
    is_cancelled: bool,
    #[serde(default = "single")]
    kind: ItemKind,
    #[serde(default = "normal")]
    sensitivity: Sensitivity,
    #[serde(default)]
    reminder_minutes: Option<u32>,
    #[serde(default)]
    created: Option<Time>,
    #[serde(default)]
    modified: Option<Time>,
    #[serde(default)]
    attendees: Vec<AttendeeJson>,
}

impl From<ItemJson> for CalendarItem {
    fn from(j: ItemJson) -> Self {
        CalendarItem {
            id: j.id,
            change_key: j.change_key,
            subject: j.subject,
            location: j.location,
            body: j.body,
            start: j.start.0,
            end: j.end.0,
            is_all_day: j.is_all_day,
            zone: j.zone,
            free_busy: j.free_busy,
            response: j.response,
            is_meeting: j.is_meeting,
            is_cancelled: j.is_cancelled,
            kind: j.kind,
            sensitivity: j.sensitivity,
            reminder_minutes: j.reminder_minutes,
            created: j.created.map(|t| t.0),
            modified: j.modified.map(|t| t.0),
            attendees: j
                .attendees
                .into_iter()
                .map(|a| Attendee {
                    address: a.address,
                    role: a.role,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerJson {
    word: String,
    reason: String,
}

fn triggers(list: Vec<TriggerJson>) -> Vec<Trigger> {
    list.into_iter()
        .map(|t| Trigger {
            word: t.word,
            reason: t.reason,
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DecidePolicyJson {
    divert_on: Vec<FreeBusy>,
    count_tentative_response: bool,
    default_reason: String,
    oof_reason: Option<String>,
    return_time: ReturnTime,
}

impl Default for DecidePolicyJson {
    fn default() -> Self {
        let d = DecidePolicy::default();
        DecidePolicyJson {
            divert_on: d.divert_on,
            count_tentative_response: d.count_tentative_response,
            default_reason: d.default_reason,
            oof_reason: d.oof_reason,
            return_time: d.return_time,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideRequest {
    now: Time,
    #[serde(default = "utc")]
    zone: String,
    #[serde(default)]
    policy: DecidePolicyJson,
    #[serde(default)]
    triggers: Vec<TriggerJson>,
    #[serde(default)]
    items: Vec<ItemJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    server: String,
    pattern: String,
    #[serde(default)]
    priority: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteRequest {
    address: String,
    #[serde(default)]
    rules: Vec<RuleJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveTriggerRequest {
    subject: String,
    #[serde(default)]
    triggers: Vec<TriggerJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintRequest {
    item: ItemJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SyncPolicyJson {
    lookback_days: u32,
    sync_private: bool,
    mailbox_is_resource: bool,
    integrated_users: Vec<String>,
}

impl Default for SyncPolicyJson {
    fn default() -> Self {
        let d = SyncPolicy::default();
        SyncPolicyJson {
            lookback_days: d.lookback_days,
            sync_private: d.sync_private,
            mailbox_is_resource: d.mailbox_is_resource,
            integrated_users: d.integrated_users,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingJson {
    exchange_id: String,
    business_id: String,
    exchange_fp: String,
    business_fp: String,
    end: Time,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanSyncRequest {
    now: Time,
    #[serde(default)]
    policy: SyncPolicyJson,
    #[serde(default)]
    exchange: Vec<ItemJson>,
    #[serde(default)]
    business: Vec<ItemJson>,
    #[serde(default)]
    mapping: Vec<MappingJson>,
}

fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse<T: for<'de> Deserialize<'de>>(op: &str, value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("invalid {op} request: {e}"))
}

const OPS: &str = "decide, route, resolve_trigger, fingerprint, plan_sync";

/// Run one `calvert eval` request. `Err` is a sentence for standard error (exit 2).
pub fn run(request: &str) -> Result<EvalAnswer, String> {
    let mut value: Value =
        serde_json::from_str(request).map_err(|e| format!("the request is not valid JSON: {e}"))?;
    let op = match value.as_object_mut().map(|o| o.remove("op")) {
        None => return Err("the request must be a JSON object with an \"op\" field".into()),
        Some(None) => return Err(format!("the request has no \"op\" field: use one of {OPS}")),
        Some(Some(Value::String(op))) => op,
        Some(Some(other)) => {
            return Err(format!(
                "\"op\" must be a string, not {other}: use one of {OPS}"
            ));
        }
    };
    let mut warnings = Vec::new();
    let answer = match op.as_str() {
        "decide" => {
            let r: DecideRequest = parse(&op, value)?;
            let items: Vec<CalendarItem> = r.items.into_iter().map(CalendarItem::from).collect();
            let policy = DecidePolicy {
                divert_on: r.policy.divert_on,
                count_tentative_response: r.policy.count_tentative_response,
                default_reason: r.policy.default_reason,
                oof_reason: r.policy.oof_reason,
                return_time: r.policy.return_time,
            };
            let d = crate::decide::decide_with_config(
                &items,
                &policy,
                &triggers(r.triggers),
                &r.zone,
                r.now.0,
            )
            .map_err(|p| problems_text(&p))?;
            warnings = d.warnings;
            json!({
                "diversion": d.diversion.map(|v| json!({
                    "reason": v.reason,
                    "until": Time(v.until),
                    "until_local": v.until_local,
                    "item_id": v.item_id,
                })),
                "next_change": d.next_change.map(Time),
                "skipped": d.skipped.iter().map(|s| json!({"id": s.id, "why": s.why})).collect::<Vec<_>>(),
            })
        }
        "route" => {
            let r: RouteRequest = parse(&op, value)?;
            let rules: Vec<Rule> = r
                .rules
                .into_iter()
                .map(|x| Rule {
                    server: x.server,
                    pattern: x.pattern,
                    priority: x.priority,
                })
                .collect();
            match crate::route::route(&r.address, &rules).map_err(|p| problems_text(&p))? {
                Some(server) => json!({ "server": server }),
                None => json!({ "server": null, "error": "no_route" }),
            }
        }
        "resolve_trigger" => {
            let r: ResolveTriggerRequest = parse(&op, value)?;
            match crate::trigger::resolve_trigger(&r.subject, &triggers(r.triggers))
                .map_err(|p| problems_text(&p))?
            {
                Some(m) => json!({ "reason": m.reason, "word": m.word, "at": m.at }),
                None => json!({ "reason": null }),
            }
        }
        "fingerprint" => {
            let r: FingerprintRequest = parse(&op, value)?;
            json!({ "fingerprint": crate::sync::fingerprint(&CalendarItem::from(r.item)) })
        }
        "plan_sync" => {
            let r: PlanSyncRequest = parse(&op, value)?;
            let exchange: Vec<CalendarItem> =
                r.exchange.into_iter().map(CalendarItem::from).collect();
            let business: Vec<CalendarItem> =
                r.business.into_iter().map(CalendarItem::from).collect();
            let mapping: Vec<MappingEntry> = r
                .mapping
                .into_iter()
                .map(|m| MappingEntry {
                    exchange_id: m.exchange_id,
                    business_id: m.business_id,
                    exchange_fp: m.exchange_fp,
                    business_fp: m.business_fp,
                    end: m.end.0,
                })
                .collect();
            let policy = SyncPolicy {
                lookback_days: r.policy.lookback_days,
                sync_private: r.policy.sync_private,
                mailbox_is_resource: r.policy.mailbox_is_resource,
                integrated_users: r.policy.integrated_users,
            };
            let plan = crate::sync::plan_sync(&exchange, &business, &mapping, &policy, r.now.0)
                .map_err(|p| problems_text(&p))?;
            json!({
                "actions": plan.actions.iter().map(|a| json!({
                    "action": a.action, "side": a.side,
                    "exchange_id": a.exchange_id, "business_id": a.business_id,
                })).collect::<Vec<_>>(),
                "report": {
                    "skipped": plan.report.skipped.iter()
                        .map(|s| json!({"side": s.side, "id": s.id, "why": s.why})).collect::<Vec<_>>(),
                    "conflicts": plan.report.conflicts.iter()
                        .map(|c| json!({"exchange_id": c.exchange_id, "business_id": c.business_id, "winner": c.winner}))
                        .collect::<Vec<_>>(),
                    "detached": plan.report.detached.iter()
                        .map(|d| json!({"exchange_id": d.exchange_id, "business_id": d.business_id, "why": "became_recurring"}))
                        .collect::<Vec<_>>(),
                },
            })
        }
        other => return Err(format!("unknown op {other:?}: use one of {OPS}")),
    };
    let answer = serde_json::to_string_pretty(&answer)
        .map_err(|e| format!("the answer could not be written: {e}"))?;
    Ok(EvalAnswer { answer, warnings })
}
