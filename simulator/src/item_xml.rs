//! A [`SimItem`] in EWS XML, with the properties a request's ItemShape asks for, in
//! the schema's order (ItemType's fields, then CalendarItemType's).
//!
//! IdOnly gives the ItemId and what AdditionalProperties names; Default and
//! AllProperties give every first-class property. Body, the attendee lists and
//! Recurrence come only from GetItem (AllProperties, or named): FindItem and
//! SyncFolderItems do not return them (brief §2.1; Microsoft's SyncFolderItems page:
//! "it cannot return properties like Body"). Extended properties come when their
//! ExtendedFieldURI is named. A carriage return in text is written as `&#xD;`, since
//! an XML reader turns a literal one into a line feed.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::directory::{AttendeeList, SimItem};
use crate::item_fields::{same_property, uri_of};
use crate::xml_tree::Node;

/// Which operation the item is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    FindItem,
    GetItem,
    SyncFolderItems,
}

/// What an ItemShape asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    id_only: bool,
    all: bool,
    fields: BTreeSet<String>,
    extended: Vec<Vec<(String, String)>>,
}

impl Shape {
    /// The shape of the request's ItemShape (Default when there is none).
    pub(crate) fn of(request: &Node) -> Shape {
        let Some(shape) = request.child("ItemShape") else {
            return Shape::default();
        };
        let base = shape.child_text("BaseShape").unwrap_or("Default").trim();
        let mut out = Shape {
            id_only: base == "IdOnly",
            all: base == "AllProperties",
            ..Shape::default()
        };
        for path in shape
            .child("AdditionalProperties")
            .into_iter()
            .flat_map(|a| a.children.iter())
        {
            match path.name.as_str() {
                "FieldURI" => out.fields.extend(path.attr("FieldURI").map(str::to_string)),
                "ExtendedFieldURI" => out.extended.push(uri_of(path)),
                _ => {}
            }
        }
        out
    }

    /// Whether the property `uri` is written (a `detail` one only by GetItem).
    fn wants(&self, uri: &str, detail: bool, reader: Reader) -> bool {
        // SyncFolderItems, like FindItem, "cannot return properties like Body".
        if detail && reader != Reader::GetItem {
            return false;
        }
        let base = !self.id_only && (!detail || self.all);
        base || self.fields.contains(uri)
    }
}

type Write = fn(&SimItem, &mut String);

/// ItemType's properties before ExtendedProperty, then the rest, in schema order:
/// (FieldURI, detail, writer).
const BEFORE_EXTENDED: &[(&str, bool, Write)] = &[
    ("item:Subject", false, |i, o| text(o, "Subject", &i.subject)),
    ("item:Sensitivity", false, |i, o| {
        text(o, "Sensitivity", &i.sensitivity)
    }),
    ("item:Body", true, |i, o| {
        let _ = write!(
            o,
            r#"<t:Body BodyType="{}">{}</t:Body>"#,
            i.body_type,
            exact(&i.body)
        );
    }),
    ("item:DateTimeCreated", false, |i, o| {
        text(o, "DateTimeCreated", &time(i.created))
    }),
    ("item:ReminderIsSet", false, |i, o| {
        text(o, "ReminderIsSet", &i.reminder_is_set.to_string())
    }),
    ("item:ReminderMinutesBeforeStart", false, |i, o| {
        text(
            o,
            "ReminderMinutesBeforeStart",
            &i.reminder_minutes.to_string(),
        )
    }),
];

const AFTER_EXTENDED: &[(&str, bool, Write)] = &[
    ("item:LastModifiedTime", false, |i, o| {
        text(o, "LastModifiedTime", &time(i.modified))
    }),
    ("calendar:UID", false, |i, o| text(o, "UID", &i.uid)),
    ("calendar:Start", false, |i, o| {
        text(o, "Start", &time(i.start))
    }),
    ("calendar:End", false, |i, o| text(o, "End", &time(i.end))),
    ("calendar:IsAllDayEvent", false, |i, o| {
        text(o, "IsAllDayEvent", &i.all_day.to_string())
    }),
    ("calendar:LegacyFreeBusyStatus", false, |i, o| {
        text(o, "LegacyFreeBusyStatus", &i.free_busy)
    }),
    ("calendar:Location", false, |i, o| {
        text(o, "Location", &i.location)
    }),
    ("calendar:IsMeeting", false, |i, o| {
        text(o, "IsMeeting", &i.is_meeting.to_string())
    }),
    ("calendar:IsCancelled", false, |i, o| {
        text(o, "IsCancelled", &i.is_cancelled.to_string())
    }),
    ("calendar:IsRecurring", false, |i, o| {
        let recurring = i.item_type != "Single";
        text(o, "IsRecurring", &recurring.to_string())
    }),
    ("calendar:CalendarItemType", false, |i, o| {
        text(o, "CalendarItemType", &i.item_type)
    }),
    ("calendar:MyResponseType", false, |i, o| {
        text(o, "MyResponseType", &i.my_response)
    }),
    ("calendar:RequiredAttendees", true, |i, o| {
        attendees(o, i, AttendeeList::Required)
    }),
    ("calendar:OptionalAttendees", true, |i, o| {
        attendees(o, i, AttendeeList::Optional)
    }),
    ("calendar:Resources", true, |i, o| {
        attendees(o, i, AttendeeList::Resources)
    }),
    ("calendar:Recurrence", true, |i, o| {
        o.push_str(i.recurrence.as_deref().unwrap_or(""))
    }),
    ("calendar:StartTimeZone", false, |i, o| {
        zone(o, "StartTimeZone", &i.start_zone)
    }),
    ("calendar:EndTimeZone", false, |i, o| {
        zone(o, "EndTimeZone", &i.end_zone)
    }),
    ("calendar:StartTimeZoneId", false, |i, o| {
        zone_id(o, "StartTimeZoneId", &i.start_zone)
    }),
    ("calendar:EndTimeZoneId", false, |i, o| {
        zone_id(o, "EndTimeZoneId", &i.end_zone)
    }),
];

/// The item as `<t:CalendarItem>`, with what `shape` asks for.
pub(crate) fn item_xml(item: &SimItem, shape: &Shape, reader: Reader) -> String {
    let mut out = format!(
        r#"<t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/>"#,
        escape(&item.id),
        escape(&item.change_key)
    );
    for (uri, detail, write) in BEFORE_EXTENDED {
        if shape.wants(uri, *detail, reader) {
            write(item, &mut out);
        }
    }
    for property in &item.extended {
        if shape
            .extended
            .iter()
            .any(|u| same_property(u, &property.uri))
        {
            extended(&mut out, property);
        }
    }
    for (uri, detail, write) in AFTER_EXTENDED {
        if shape.wants(uri, *detail, reader) {
            write(item, &mut out);
        }
    }
    out.push_str("</t:CalendarItem>");
    out
}

fn text(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<t:{name}>{}</t:{name}>", exact(value));
}

/// Text escaped so that a reader gets it back exactly (a literal CR would be read as
/// LF).
fn exact(value: &str) -> String {
    escape(value).replace('\r', "&#xD;")
}

/// Seconds since 1970 as an xs:dateTime.
pub(crate) fn time(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn zone(out: &mut String, name: &str, id: &Option<String>) {
    if let Some(id) = id {
        let _ = write!(out, r#"<t:{name} Id="{}"/>"#, escape(id));
    }
}

fn zone_id(out: &mut String, name: &str, id: &Option<String>) {
    if let Some(id) = id {
        text(out, name, id);
    }
}

/// One attendee list (left out when empty: the schema wants at least one Attendee).
fn attendees(out: &mut String, item: &SimItem, list: AttendeeList) {
    // An attendee without an address is not written: EmailAddress may not be empty.
    let people: Vec<_> = item
        .attendees
        .iter()
        .filter(|a| a.list == list && !a.address.is_empty())
        .collect();
    if people.is_empty() {
        return;
    }
    let _ = write!(out, "<t:{}>", list.element());
    for person in people {
        out.push_str("<t:Attendee><t:Mailbox>");
        if !person.name.is_empty() {
            text(out, "Name", &person.name);
        }
        text(out, "EmailAddress", &person.address);
        out.push_str("<t:RoutingType>SMTP</t:RoutingType></t:Mailbox>");
        if !person.response.is_empty() {
            text(out, "ResponseType", &person.response);
        }
        out.push_str("</t:Attendee>");
    }
    let _ = write!(out, "</t:{}>", list.element());
}

fn extended(out: &mut String, property: &crate::directory::SimExtended) {
    out.push_str("<t:ExtendedProperty><t:ExtendedFieldURI");
    for (name, value) in &property.uri {
        let _ = write!(out, r#" {name}="{}""#, escape(value));
    }
    out.push_str("/>");
    if property.multi_valued {
        out.push_str("<t:Values>");
        for value in &property.values {
            text(out, "Value", value);
        }
        out.push_str("</t:Values>");
    } else {
        text(out, "Value", property.values.first().map_or("", |v| v));
    }
    out.push_str("</t:ExtendedProperty>");
}
