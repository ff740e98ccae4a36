//! A CalendarItem element of a CreateItem or an UpdateItem's SetItemField → the
//! fields of a [`SimItem`], exactly as given; and DeleteItemField's reset of one
//! field. Values the schema would refuse (a bad time, an unknown enumeration value)
//! are refused with the reason, as Exchange's schema validation does.

use quick_xml::escape::escape;

use crate::directory::{AttendeeList, SimAttendee, SimExtended, SimItem};
use crate::wire::instant;
use crate::xml_tree::Node;

const SENSITIVITY: &[&str] = &["Normal", "Personal", "Private", "Confidential"];
const FREE_BUSY: &[&str] = &[
    "Free",
    "Tentative",
    "Busy",
    "OOF",
    "WorkingElsewhere",
    "NoData",
];
const RESPONSE: &[&str] = &[
    "Unknown",
    "Organizer",
    "Tentative",
    "Accept",
    "Decline",
    "NoResponseReceived",
];

/// Apply every field `calendar_item` gives to `item`.
pub(crate) fn apply(item: &mut SimItem, calendar_item: &Node) -> Result<(), String> {
    for field in &calendar_item.children {
        apply_field(item, field)?;
    }
    Ok(())
}

/// Apply one child element of a CalendarItem. Read-only and unknown properties are
/// left alone (Exchange ignores what it computes itself).
fn apply_field(item: &mut SimItem, field: &Node) -> Result<(), String> {
    let text = field.text.as_str();
    match field.name.as_str() {
        "Subject" => item.subject = text.to_string(),
        "Location" => item.location = text.to_string(),
        "Body" => {
            item.body = text.to_string();
            item.body_type = one_of(field.attr("BodyType").unwrap_or("Text"), &["Text", "HTML"])?;
        }
        "UID" => item.uid = text.to_string(),
        "Sensitivity" => item.sensitivity = one_of(text, SENSITIVITY)?,
        "LegacyFreeBusyStatus" => item.free_busy = one_of(text, FREE_BUSY)?,
        "ReminderIsSet" => item.reminder_is_set = boolean(text)?,
        "ReminderMinutesBeforeStart" => {
            item.reminder_minutes = text
                .trim()
                .parse()
                .map_err(|_| format!("ReminderMinutesBeforeStart {text:?} is not a number"))?
        }
        "Start" => item.start = time(text, "Start")?,
        "End" => item.end = time(text, "End")?,
        "IsAllDayEvent" => item.all_day = boolean(text)?,
        "StartTimeZone" => item.start_zone = field.attr("Id").map(str::to_string),
        "EndTimeZone" => item.end_zone = field.attr("Id").map(str::to_string),
        "StartTimeZoneId" => item.start_zone = Some(text.to_string()),
        "EndTimeZoneId" => item.end_zone = Some(text.to_string()),
        "RequiredAttendees" => set_list(item, AttendeeList::Required, field)?,
        "OptionalAttendees" => set_list(item, AttendeeList::Optional, field)?,
        "Resources" => set_list(item, AttendeeList::Resources, field)?,
        "ExtendedProperty" => set_extended(item, extended(field)?),
        "Recurrence" => {
            item.recurrence = Some(xml_of(field));
            item.item_type = "RecurringMaster".into();
        }
        _ => {}
    }
    Ok(())
}

/// Reset the field a DeleteItemField names (a FieldURI or an ExtendedFieldURI).
pub(crate) fn delete(item: &mut SimItem, path: &Node) -> Result<(), String> {
    if path.name == "ExtendedFieldURI" {
        let uri = uri_of(path);
        item.extended.retain(|p| !same_property(&p.uri, &uri));
        return Ok(());
    }
    let uri = path.attr("FieldURI").unwrap_or("");
    match uri {
        "calendar:Location" => item.location.clear(),
        "item:Body" => item.body.clear(),
        "item:ReminderMinutesBeforeStart" => item.reminder_minutes = 0,
        "calendar:RequiredAttendees" => drop_list(item, AttendeeList::Required),
        "calendar:OptionalAttendees" => drop_list(item, AttendeeList::Optional),
        "calendar:Resources" => drop_list(item, AttendeeList::Resources),
        "calendar:Recurrence" => {
            item.recurrence = None;
            item.item_type = "Single".into();
        }
        other => return Err(format!("the property {other} cannot be deleted")),
    }
    Ok(())
}

fn one_of(text: &str, values: &[&str]) -> Result<String, String> {
    values
        .iter()
        .find(|v| **v == text.trim())
        .map(|v| v.to_string())
        .ok_or_else(|| format!("{text:?} is not one of {}", values.join(", ")))
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("{other:?} is not an xs:boolean")),
    }
}

fn time(text: &str, name: &str) -> Result<i64, String> {
    instant(text).ok_or_else(|| format!("{name} {text:?} is not an xs:dateTime"))
}

/// Replace the people of one list with the Attendees of `field`.
fn set_list(item: &mut SimItem, list: AttendeeList, field: &Node) -> Result<(), String> {
    drop_list(item, list);
    for attendee in field.children_named("Attendee") {
        let mailbox = attendee.child("Mailbox");
        let text = |name| {
            mailbox
                .and_then(|m| m.child_text(name))
                .unwrap_or("")
                .to_string()
        };
        let response = match attendee.child_text("ResponseType") {
            Some(r) => one_of(r, RESPONSE)?,
            None => String::new(),
        };
        item.attendees.push(SimAttendee {
            list,
            name: text("Name"),
            address: text("EmailAddress").trim().to_string(),
            response,
        });
    }
    item.is_meeting = !item.attendees.is_empty();
    Ok(())
}

fn drop_list(item: &mut SimItem, list: AttendeeList) {
    item.attendees.retain(|a| a.list != list);
    item.is_meeting = !item.attendees.is_empty();
}

/// An ExtendedProperty element: its path and value(s).
fn extended(field: &Node) -> Result<SimExtended, String> {
    let path = field
        .child("ExtendedFieldURI")
        .ok_or("an ExtendedProperty without its ExtendedFieldURI")?;
    let (values, multi_valued) = match (field.child("Value"), field.child("Values")) {
        (Some(value), _) => (vec![value.text.clone()], false),
        (None, Some(values)) => (
            values
                .children_named("Value")
                .map(|v| v.text.clone())
                .collect(),
            true,
        ),
        (None, None) => return Err("an ExtendedProperty without a Value".into()),
    };
    Ok(SimExtended {
        uri: uri_of(path),
        values,
        multi_valued,
    })
}

/// An ExtendedFieldURI's attributes, sorted by name.
pub(crate) fn uri_of(path: &Node) -> Vec<(String, String)> {
    let mut uri = path.attrs.clone();
    uri.sort();
    uri
}

/// Whether two ExtendedFieldURIs name the same property (PropertyType aside: a
/// property has one type).
pub(crate) fn same_property(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let naming = |uri: &[(String, String)]| -> Vec<(String, String)> {
        uri.iter()
            .filter(|(name, _)| name != "PropertyType")
            .map(|(name, value)| (name.clone(), value.to_ascii_lowercase()))
            .collect()
    };
    naming(a) == naming(b)
}

fn set_extended(item: &mut SimItem, property: SimExtended) {
    item.extended
        .retain(|p| !same_property(&p.uri, &property.uri));
    item.extended.push(property);
}

/// An element written back as XML in the types namespace (`t:`), as given.
fn xml_of(node: &Node) -> String {
    let mut out = format!("<t:{}", node.name);
    for (name, value) in &node.attrs {
        out.push_str(&format!(r#" {name}="{}""#, escape(value)));
    }
    out.push('>');
    out.push_str(&escape(&node.text));
    for child in &node.children {
        out.push_str(&xml_of(child));
    }
    out.push_str(&format!("</t:{}>", node.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml_tree::parse;

    fn item_from(xml: &str) -> Result<SimItem, String> {
        let mut item = SimItem::appointment("x", "", 0, 0);
        apply(&mut item, &parse(xml).unwrap())?;
        Ok(item)
    }

    #[test]
    fn fields_are_taken_exactly() {
        let item = item_from(
            r#"<CalendarItem><Subject> A &amp; B </Subject><Body BodyType="HTML">&lt;p&gt;x&lt;/p&gt;</Body><RequiredAttendees><Attendee><Mailbox><Name>Kim</Name><EmailAddress> kim@flexi.se </EmailAddress></Mailbox></Attendee></RequiredAttendees><ExtendedProperty><ExtendedFieldURI PropertyName="vf" PropertySetId="ABC" PropertyType="String"/><Value>42</Value></ExtendedProperty><Recurrence><DailyRecurrence><Interval>1</Interval></DailyRecurrence><NoEndRecurrence><StartDate>2026-12-01</StartDate></NoEndRecurrence></Recurrence></CalendarItem>"#,
        )
        .unwrap();
        assert_eq!(item.subject, " A & B ");
        assert_eq!(
            (item.body.as_str(), item.body_type.as_str()),
            ("<p>x</p>", "HTML")
        );
        assert_eq!(item.attendees[0].address, "kim@flexi.se");
        assert!(item.is_meeting);
        assert_eq!(item.extended[0].values, ["42"]);
        assert_eq!(item.item_type, "RecurringMaster");
        assert!(
            item.recurrence
                .unwrap()
                .starts_with("<t:Recurrence><t:DailyRecurrence>")
        );
    }

    #[test]
    fn values_the_schema_refuses_are_refused() {
        for bad in [
            "<CalendarItem><Sensitivity>Secret</Sensitivity></CalendarItem>",
            "<CalendarItem><Start>tomorrow</Start></CalendarItem>",
            "<CalendarItem><IsAllDayEvent>yes</IsAllDayEvent></CalendarItem>",
        ] {
            assert!(item_from(bad).is_err(), "{bad}");
        }
    }
}
