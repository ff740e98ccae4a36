//! EWS requests: the SOAP Calvert sends, one function per operation (brief §1–§3).
//!
//! Every request carries `RequestServerVersion` (chosen from the server's
//! `ServerVersionInfo`, never echoed back) and, for a mailbox call, an
//! `ExchangeImpersonation` of the mailbox's primary SMTP address; the HTTP layer adds
//! `X-AnchorMailbox` with the same address ([`Mailbox::anchor`]). Element order follows
//! `types.xsd`/`messages.xsd`; `host/tests/ews_requests.rs` validates every request
//! against those schemas with xmllint. Text and attributes are escaped by quick-xml.
//!
//! (Over 500 lines only with its unit tests, which stay beside the code they pin.)

use std::fmt::Write as _;

use jiff::Timestamp;
use quick_xml::escape::escape;

use super::xml::Element;
use super::{SOAP_NS, TYPES_NS};
use crate::component::wit::{AttendeeRole, CalendarItem, FreeBusy, Sensitivity};

/// The `RequestServerVersion` Calvert asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerVersion {
    Exchange2007Sp1,
    Exchange2010,
    Exchange2010Sp1,
    Exchange2010Sp2,
    Exchange2013,
    Exchange2013Sp1,
    /// 2016, 2019, Subscription Edition and Exchange Online: the schema has nothing newer.
    Exchange2016,
}

impl ServerVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerVersion::Exchange2007Sp1 => "Exchange2007_SP1",
            ServerVersion::Exchange2010 => "Exchange2010",
            ServerVersion::Exchange2010Sp1 => "Exchange2010_SP1",
            ServerVersion::Exchange2010Sp2 => "Exchange2010_SP2",
            ServerVersion::Exchange2013 => "Exchange2013",
            ServerVersion::Exchange2013Sp1 => "Exchange2013_SP1",
            ServerVersion::Exchange2016 => "Exchange2016",
        }
    }

    /// From `ServerVersionInfo`'s MajorVersion/MinorVersion (14 = 2010, 15.0 = 2013,
    /// 15.1 = 2016, 15.2 = 2019/SE, 15.20 = Exchange Online). Streaming notifications
    /// need 2010 SP1, so 2010 without a service pack is asked as plain 2010.
    pub fn from_server(major: u32, minor: u32) -> Self {
        match (major, minor) {
            (0..=13, _) => ServerVersion::Exchange2007Sp1,
            (14, 0) => ServerVersion::Exchange2010,
            (14, 1) => ServerVersion::Exchange2010Sp1,
            (14, _) => ServerVersion::Exchange2010Sp2,
            (15, 0) => ServerVersion::Exchange2013Sp1,
            _ => ServerVersion::Exchange2016,
        }
    }

    /// The version for the server that wrote `reply` (its SOAP header), if it says.
    pub fn from_reply(root: &Element) -> Option<Self> {
        let info = root
            .child(SOAP_NS, "Header")?
            .child(TYPES_NS, "ServerVersionInfo")?;
        let major = info.attr("MajorVersion")?.parse().ok()?;
        let minor = info.attr("MinorVersion")?.parse().ok()?;
        Some(Self::from_server(major, minor))
    }
}

/// The mailbox a request acts on, by impersonation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub primary_smtp: String,
}

impl Mailbox {
    /// The `X-AnchorMailbox` header value for this mailbox's requests.
    pub fn anchor(&self) -> &str {
        &self.primary_smtp
    }
}

/// How a request is addressed: the schema version and the impersonated mailbox (none
/// for calls on the service account itself, such as GetStreamingEvents).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub version: ServerVersion,
    pub mailbox: Option<&'a Mailbox>,
}

/// The notification events Calvert subscribes to on a calendar.
const EVENT_TYPES: &str = "<t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType>\
<t:EventType>ModifiedEvent</t:EventType><t:EventType>MovedEvent</t:EventType><t:EventType>CopiedEvent</t:EventType></t:EventTypes>";

const CALENDAR: &str = r#"<t:DistinguishedFolderId Id="calendar"/>"#;

/// The item properties Calvert reads (semantics.md §1).
const CALENDAR_FIELDS: &[&str] = &[
    "item:Subject",
    "item:Sensitivity",
    "item:DateTimeCreated",
    "item:LastModifiedTime",
    "item:ReminderIsSet",
    "item:ReminderMinutesBeforeStart",
    "calendar:Start",
    "calendar:End",
    "calendar:IsAllDayEvent",
    "calendar:LegacyFreeBusyStatus",
    "calendar:Location",
    "calendar:IsMeeting",
    "calendar:IsCancelled",
    "calendar:CalendarItemType",
    "calendar:MyResponseType",
];

/// Fields only GetItem returns (FindItem does not return body or attendees).
const DETAIL_FIELDS: &[&str] = &[
    "item:Body",
    "calendar:RequiredAttendees",
    "calendar:OptionalAttendees",
    "calendar:Resources",
    "calendar:StartTimeZone",
];

fn time(at: i64) -> String {
    Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// IdOnly plus `fields`; the body as text (Exchange converts an HTML body).
fn shape(fields: &[&[&str]]) -> String {
    let mut out = String::from(
        "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:BodyType>Text</t:BodyType><t:AdditionalProperties>",
    );
    for field in fields.iter().flat_map(|f| f.iter()) {
        let _ = write!(out, r#"<t:FieldURI FieldURI="{field}"/>"#);
    }
    out.push_str("</t:AdditionalProperties></m:ItemShape>");
    out
}

fn watermark(value: Option<&str>) -> String {
    value
        .map(|w| format!("<t:Watermark>{}</t:Watermark>", escape(w)))
        .unwrap_or_default()
}

impl Request<'_> {
    fn envelope(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len() + 600);
        out.push_str(r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header>"#);
        let _ = write!(
            out,
            r#"<t:RequestServerVersion Version="{}"/>"#,
            self.version.as_str()
        );
        if let Some(mailbox) = self.mailbox {
            let _ = write!(
                out,
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>",
                escape(&mailbox.primary_smtp)
            );
        }
        out.push_str("</soap:Header><soap:Body>");
        out.push_str(body);
        out.push_str("</soap:Body></soap:Envelope>");
        out
    }

    /// FindItem with a CalendarView: the concrete items (singles, occurrences,
    /// exceptions) overlapping [start, end). At most `max_entries` (≤ 1000) come back;
    /// when `IncludesLastItemInRange` is false the caller splits the window.
    pub fn find_calendar_view(&self, start: i64, end: i64, max_entries: u32) -> String {
        self.envelope(&format!(
            r#"<m:FindItem Traversal="Shallow">{}<m:CalendarView MaxEntriesReturned="{}" StartDate="{}" EndDate="{}"/><m:ParentFolderIds>{CALENDAR}</m:ParentFolderIds></m:FindItem>"#,
            shape(&[CALENDAR_FIELDS]),
            max_entries.clamp(1, 1000),
            time(start),
            time(end)
        ))
    }

    /// GetItem for a batch of ids, with every field Calvert maps.
    pub fn get_items(&self, ids: &[&str]) -> String {
        let mut list = String::new();
        for id in ids {
            let _ = write!(list, r#"<t:ItemId Id="{}"/>"#, escape(*id));
        }
        self.envelope(&format!(
            "<m:GetItem>{}<m:ItemIds>{list}</m:ItemIds></m:GetItem>",
            shape(&[CALENDAR_FIELDS, DETAIL_FIELDS])
        ))
    }

    /// SyncFolderItems on the calendar; no sync state on the first call. `max_changes`
    /// is clamped to the schema's 1..=512.
    pub fn sync_folder_items(&self, sync_state: Option<&str>, max_changes: u32) -> String {
        let state = sync_state
            .map(|s| format!("<m:SyncState>{}</m:SyncState>", escape(s)))
            .unwrap_or_default();
        self.envelope(&format!(
            "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>{CALENDAR}</m:SyncFolderId>{state}<m:MaxChangesReturned>{}</m:MaxChangesReturned><m:SyncScope>NormalItems</m:SyncScope></m:SyncFolderItems>",
            max_changes.clamp(1, 512)
        ))
    }

    /// A streaming subscription to the calendar (Exchange 2010 SP1 and later).
    pub fn subscribe_streaming(&self) -> String {
        self.envelope(&format!(
            "<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>{CALENDAR}</t:FolderIds>{EVENT_TYPES}</m:StreamingSubscriptionRequest></m:Subscribe>"
        ))
    }

    /// A pull subscription (the fallback), resuming from `watermark` if given;
    /// `timeout_minutes` is clamped to 1..=1440.
    pub fn subscribe_pull(&self, from: Option<&str>, timeout_minutes: u32) -> String {
        self.envelope(&format!(
            "<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>{CALENDAR}</t:FolderIds>{EVENT_TYPES}{}<t:Timeout>{}</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>",
            watermark(from),
            timeout_minutes.clamp(1, 1440)
        ))
    }

    /// A push subscription: Exchange posts to `url` (the "local web service address"),
    /// and at least every `status_frequency_minutes` (1..=1440).
    pub fn subscribe_push(
        &self,
        url: &str,
        from: Option<&str>,
        status_frequency_minutes: u32,
    ) -> String {
        self.envelope(&format!(
            "<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds>{CALENDAR}</t:FolderIds>{EVENT_TYPES}{}<t:StatusFrequency>{}</t:StatusFrequency><t:URL>{}</t:URL></m:PushSubscriptionRequest></m:Subscribe>",
            watermark(from),
            status_frequency_minutes.clamp(1, 1440),
            escape(url)
        ))
    }

    /// GetEvents for a pull subscription.
    pub fn get_events(&self, subscription_id: &str, from: &str) -> String {
        self.envelope(&format!(
            "<m:GetEvents><m:SubscriptionId>{}</m:SubscriptionId><m:Watermark>{}</m:Watermark></m:GetEvents>",
            escape(subscription_id),
            escape(from)
        ))
    }

    /// GetStreamingEvents for up to 200 subscriptions; `timeout_minutes` 1..=30.
    pub fn get_streaming_events(&self, subscription_ids: &[&str], timeout_minutes: u32) -> String {
        let mut ids = String::new();
        for id in subscription_ids {
            let _ = write!(ids, "<t:SubscriptionId>{}</t:SubscriptionId>", escape(*id));
        }
        self.envelope(&format!(
            "<m:GetStreamingEvents><m:SubscriptionIds>{ids}</m:SubscriptionIds><m:ConnectionTimeout>{}</m:ConnectionTimeout></m:GetStreamingEvents>",
            timeout_minutes.clamp(1, 30)
        ))
    }

    pub fn unsubscribe(&self, subscription_id: &str) -> String {
        self.envelope(&format!(
            "<m:Unsubscribe><m:SubscriptionId>{}</m:SubscriptionId></m:Unsubscribe>",
            escape(subscription_id)
        ))
    }

    /// CreateItem in the calendar; nobody is invited (the two-way sync copies, it does
    /// not send meeting requests).
    pub fn create_item(&self, item: &CalendarItem) -> String {
        self.envelope(&format!(
            r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>{CALENDAR}</m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#,
            calendar_item_xml(item, &Fields::all())
        ))
    }

    /// UpdateItem of the synced basic fields, guarded by the item's change key (a stale
    /// key gives ErrorIrresolvableConflict: read again and re-apply).
    pub fn update_item(&self, id: &str, change_key: &str, item: &CalendarItem) -> String {
        let mut updates = String::new();
        for (uri, field) in UPDATABLE {
            let _ = write!(
                updates,
                r#"<t:SetItemField><t:FieldURI FieldURI="{uri}"/><t:CalendarItem>{}</t:CalendarItem></t:SetItemField>"#,
                calendar_item_fields(item, &Fields::only(*field))
            );
        }
        self.envelope(&format!(
            r#"<m:UpdateItem ConflictResolution="AutoResolve" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="{}" ChangeKey="{}"/><t:Updates>{updates}</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#,
            escape(id),
            escape(change_key)
        ))
    }

    /// DeleteItem to the deleted-items folder, cancelling nothing.
    pub fn delete_item(&self, id: &str, change_key: Option<&str>) -> String {
        let key = change_key
            .map(|k| format!(r#" ChangeKey="{}""#, escape(k)))
            .unwrap_or_default();
        self.envelope(&format!(
            r#"<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendToNone"><m:ItemIds><t:ItemId Id="{}"{key}/></m:ItemIds></m:DeleteItem>"#,
            escape(id)
        ))
    }
}

/// The basic fields an update writes, each with its FieldURI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Subject,
    Sensitivity,
    Body,
    Reminder,
    Start,
    End,
    AllDay,
    FreeBusy,
    Location,
}

const UPDATABLE: &[(&str, Field)] = &[
    ("item:Subject", Field::Subject),
    ("item:Sensitivity", Field::Sensitivity),
    ("item:Body", Field::Body),
    ("item:ReminderMinutesBeforeStart", Field::Reminder),
    ("calendar:Start", Field::Start),
    ("calendar:End", Field::End),
    ("calendar:IsAllDayEvent", Field::AllDay),
    ("calendar:LegacyFreeBusyStatus", Field::FreeBusy),
    ("calendar:Location", Field::Location),
];

struct Fields(Option<Field>, bool);

impl Fields {
    fn all() -> Self {
        Fields(None, true)
    }
    fn only(field: Field) -> Self {
        Fields(Some(field), false)
    }
    fn has(&self, field: Field) -> bool {
        self.0.is_none_or(|f| f == field)
    }
}

fn calendar_item_xml(item: &CalendarItem, fields: &Fields) -> String {
    format!(
        "<t:CalendarItem>{}</t:CalendarItem>",
        calendar_item_fields(item, fields)
    )
}

/// The item's fields in schema order (ItemType's, then CalendarItemType's).
fn calendar_item_fields(item: &CalendarItem, fields: &Fields) -> String {
    let mut out = String::new();
    write_item_type_fields(&mut out, item, fields);
    write_calendar_type_fields(&mut out, item, fields);
    if fields.1 {
        write_attendees(&mut out, item);
    }
    out
}

/// Text escaped so that Exchange reads it back exactly: a literal CR would be read
/// as LF (XML line ends), so it is written as a character reference.
fn exact(text: &str) -> String {
    escape(text).replace('\r', "&#xD;")
}

fn sensitivity_name(sensitivity: Sensitivity) -> &'static str {
    match sensitivity {
        Sensitivity::Normal => "Normal",
        Sensitivity::Personal => "Personal",
        Sensitivity::Private => "Private",
        Sensitivity::Confidential => "Confidential",
    }
}

fn free_busy_name(free_busy: FreeBusy) -> &'static str {
    match free_busy {
        FreeBusy::Free => "Free",
        FreeBusy::Tentative => "Tentative",
        FreeBusy::Busy => "Busy",
        FreeBusy::Oof => "OOF",
        FreeBusy::WorkingElsewhere => "WorkingElsewhere",
        FreeBusy::NoData => "NoData",
    }
}

/// ItemType's fields: subject, sensitivity, body, reminder (`ReminderIsSet` only
/// when every field is written).
fn write_item_type_fields(out: &mut String, item: &CalendarItem, fields: &Fields) {
    if fields.has(Field::Subject) {
        let _ = write!(out, "<t:Subject>{}</t:Subject>", exact(&item.subject));
    }
    if fields.has(Field::Sensitivity) {
        let sensitivity = sensitivity_name(item.sensitivity);
        let _ = write!(out, "<t:Sensitivity>{sensitivity}</t:Sensitivity>");
    }
    if fields.has(Field::Body) {
        let _ = write!(
            out,
            r#"<t:Body BodyType="Text">{}</t:Body>"#,
            exact(&item.body)
        );
    }
    if fields.has(Field::Reminder) {
        if fields.1 {
            let _ = write!(
                out,
                "<t:ReminderIsSet>{}</t:ReminderIsSet>",
                item.reminder_minutes.is_some()
            );
        }
        let _ = write!(
            out,
            "<t:ReminderMinutesBeforeStart>{}</t:ReminderMinutesBeforeStart>",
            item.reminder_minutes.unwrap_or(0)
        );
    }
}

/// CalendarItemType's fields: start, end, all day, free-busy, location.
fn write_calendar_type_fields(out: &mut String, item: &CalendarItem, fields: &Fields) {
    if fields.has(Field::Start) {
        let _ = write!(out, "<t:Start>{}</t:Start>", time(item.start));
    }
    if fields.has(Field::End) {
        let _ = write!(out, "<t:End>{}</t:End>", time(item.end));
    }
    if fields.has(Field::AllDay) {
        let _ = write!(
            out,
            "<t:IsAllDayEvent>{}</t:IsAllDayEvent>",
            item.is_all_day
        );
    }
    if fields.has(Field::FreeBusy) {
        let status = free_busy_name(item.free_busy);
        let _ = write!(
            out,
            "<t:LegacyFreeBusyStatus>{status}</t:LegacyFreeBusyStatus>"
        );
    }
    if fields.has(Field::Location) {
        let _ = write!(out, "<t:Location>{}</t:Location>", exact(&item.location));
    }
}

/// The attendee lists, required, optional, resources; an empty list is left out.
fn write_attendees(out: &mut String, item: &CalendarItem) {
    for (list, role) in [
        ("RequiredAttendees", AttendeeRole::Required),
        ("OptionalAttendees", AttendeeRole::Optional),
        ("Resources", AttendeeRole::Resource),
    ] {
        let people: Vec<_> = item.attendees.iter().filter(|a| a.role == role).collect();
        if people.is_empty() {
            continue;
        }
        let _ = write!(out, "<t:{list}>");
        for person in people {
            let _ = write!(
                out,
                "<t:Attendee><t:Mailbox><t:EmailAddress>{}</t:EmailAddress></t:Mailbox></t:Attendee>",
                escape(&person.address)
            );
        }
        let _ = write!(out, "</t:{list}>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions() {
        assert_eq!(
            ServerVersion::from_server(14, 3),
            ServerVersion::Exchange2010Sp2
        );
        assert_eq!(
            ServerVersion::from_server(15, 0),
            ServerVersion::Exchange2013Sp1
        );
        assert_eq!(
            ServerVersion::from_server(15, 20),
            ServerVersion::Exchange2016
        );
        assert_eq!(
            ServerVersion::from_server(8, 0),
            ServerVersion::Exchange2007Sp1
        );
    }

    #[test]
    fn text_is_escaped() {
        let mailbox = Mailbox {
            primary_smtp: "a&b@flexi.se".into(),
        };
        let request = Request {
            version: ServerVersion::Exchange2016,
            mailbox: Some(&mailbox),
        };
        let xml = request.unsubscribe("<id>");
        assert!(
            xml.contains("a&amp;b@flexi.se") && xml.contains("&lt;id&gt;"),
            "{xml}"
        );
    }
}
