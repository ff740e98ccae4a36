//! The simulator keeps what it is given: an item created with every field Calvert
//! maps or the two-way sync writes comes back unchanged from GetItem, and with every
//! field they return from FindItem and SyncFolderItems (which, as in Exchange, do
//! not return body or attendees), and again after an UpdateItem of every field. Requests are raw
//! SOAP written here, validated against Microsoft's schema like the replies.

#[path = "support/soap.rs"]
mod soap;
#[path = "support/xsd.rs"]
mod xsd;

use calvert::ews::xml::Element;
use soap::{all, call, codes, first, item_id};

/// Text that XML can carry and a careless reader loses: entity references, quotes,
/// white space at both ends, a character outside the BMP.
const SUBJECT: &str = "  Möte & <budget> \"Q4\" 'x' 😀  ";
const LOCATION: &str = " Rum <A&B> ";
const BODY: &str = "Rad 1\r\n  & <b>fet</b> \"citat\" 😀 \r\n";
const UID: &str = "vf-4711 & <uid>";
const PROPERTY: &str = r#"DistinguishedPropertySetId="PublicStrings" PropertyName="ValueFrameId" PropertyType="String""#;

/// Escaped as any careful client writes text: a CR as a character reference (a
/// literal one would be read as LF).
fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).replace('\r', "&#xD;")
}

/// The fields of a calendar item, in the schema's order.
struct Fields {
    subject: String,
    location: String,
    body: String,
    uid: String,
    start: &'static str,
    end: &'static str,
    all_day: bool,
    zone: &'static str,
    free_busy: &'static str,
    sensitivity: &'static str,
    reminder_set: bool,
    reminder: u32,
    required: &'static str,
    optional: &'static str,
    resource: &'static str,
    business_id: String,
}

fn first_version() -> Fields {
    Fields {
        subject: SUBJECT.into(),
        location: LOCATION.into(),
        body: BODY.into(),
        uid: UID.into(),
        start: "2026-12-03T09:00:00Z",
        end: "2026-12-03T10:30:00Z",
        all_day: false,
        zone: "W. Europe Standard Time",
        free_busy: "OOF",
        sensitivity: "Private",
        reminder_set: true,
        reminder: 25,
        required: "anna@flexi.se",
        optional: "eva@flexi.se",
        resource: "rum-a@flexi.se",
        business_id: " VF & 1 ".into(),
    }
}

fn second_version() -> Fields {
    Fields {
        subject: " Uppdaterad &amp; <igen> ".into(),
        location: "\tHall 2 ".into(),
        body: "  ny text & mer  ".into(),
        uid: UID.into(),
        // All day: midnight to midnight in the item's zone (Helsinki, UTC+2).
        start: "2026-12-03T22:00:00Z",
        end: "2026-12-04T22:00:00Z",
        all_day: true,
        zone: "FLE Standard Time",
        free_busy: "Tentative",
        sensitivity: "Confidential",
        reminder_set: false,
        reminder: 0,
        required: "bo@flexi.se",
        optional: "kim.b@flexi.se",
        resource: "rum-b@flexi.se",
        business_id: "VF-2".into(),
    }
}

/// Each field as the element that sets it, in schema order.
fn elements(f: &Fields) -> Vec<(&'static str, String)> {
    vec![
        (
            "item:Subject",
            format!("<t:Subject>{}</t:Subject>", escape(&f.subject)),
        ),
        (
            "item:Sensitivity",
            format!("<t:Sensitivity>{}</t:Sensitivity>", f.sensitivity),
        ),
        (
            "item:Body",
            format!(r#"<t:Body BodyType="Text">{}</t:Body>"#, escape(&f.body)),
        ),
        (
            "item:ReminderIsSet",
            format!("<t:ReminderIsSet>{}</t:ReminderIsSet>", f.reminder_set),
        ),
        (
            "item:ReminderMinutesBeforeStart",
            format!(
                "<t:ReminderMinutesBeforeStart>{}</t:ReminderMinutesBeforeStart>",
                f.reminder
            ),
        ),
        (
            "extended",
            format!(
                "<t:ExtendedProperty><t:ExtendedFieldURI {PROPERTY}/><t:Value>{}</t:Value></t:ExtendedProperty>",
                escape(&f.business_id)
            ),
        ),
        ("calendar:UID", format!("<t:UID>{}</t:UID>", escape(&f.uid))),
        ("calendar:Start", format!("<t:Start>{}</t:Start>", f.start)),
        ("calendar:End", format!("<t:End>{}</t:End>", f.end)),
        (
            "calendar:IsAllDayEvent",
            format!("<t:IsAllDayEvent>{}</t:IsAllDayEvent>", f.all_day),
        ),
        (
            "calendar:LegacyFreeBusyStatus",
            format!(
                "<t:LegacyFreeBusyStatus>{}</t:LegacyFreeBusyStatus>",
                f.free_busy
            ),
        ),
        (
            "calendar:Location",
            format!("<t:Location>{}</t:Location>", escape(&f.location)),
        ),
        (
            "calendar:RequiredAttendees",
            format!(
                "<t:RequiredAttendees><t:Attendee><t:Mailbox><t:Name>Anna &amp; co</t:Name><t:EmailAddress>{}</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>",
                f.required
            ),
        ),
        (
            "calendar:OptionalAttendees",
            format!(
                "<t:OptionalAttendees><t:Attendee><t:Mailbox><t:EmailAddress>{}</t:EmailAddress></t:Mailbox></t:Attendee></t:OptionalAttendees>",
                f.optional
            ),
        ),
        (
            "calendar:Resources",
            format!(
                "<t:Resources><t:Attendee><t:Mailbox><t:EmailAddress>{}</t:EmailAddress></t:Mailbox></t:Attendee></t:Resources>",
                f.resource
            ),
        ),
        (
            "calendar:StartTimeZone",
            format!(r#"<t:StartTimeZone Id="{}"/>"#, f.zone),
        ),
    ]
}

fn create_item(f: &Fields) -> String {
    let fields: String = elements(f).into_iter().map(|(_, e)| e).collect();
    format!(
        r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items><t:CalendarItem>{fields}</t:CalendarItem></m:Items></m:CreateItem>"#
    )
}

/// An UpdateItem that sets every field to `f` (the UID is set once, at creation).
fn update_item(id: &str, key: &str, f: &Fields) -> String {
    let mut updates = String::new();
    for (uri, element) in elements(f) {
        let path = match uri {
            "extended" => format!("<t:ExtendedFieldURI {PROPERTY}/>"),
            "calendar:UID" => continue,
            uri => format!(r#"<t:FieldURI FieldURI="{uri}"/>"#),
        };
        updates.push_str(&format!(
            "<t:SetItemField>{path}<t:CalendarItem>{element}</t:CalendarItem></t:SetItemField>"
        ));
    }
    format!(
        r#"<m:UpdateItem ConflictResolution="AutoResolve" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}" ChangeKey="{key}"/><t:Updates>{updates}</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    )
}

/// An ItemShape naming every field (and, outside FindItem, body and attendees).
fn shape(detail: bool) -> String {
    let mut uris = vec![
        "item:Subject",
        "item:Sensitivity",
        "item:ReminderIsSet",
        "item:ReminderMinutesBeforeStart",
        "calendar:UID",
        "calendar:Start",
        "calendar:End",
        "calendar:IsAllDayEvent",
        "calendar:LegacyFreeBusyStatus",
        "calendar:Location",
        "calendar:StartTimeZone",
    ];
    if detail {
        uris.extend([
            "item:Body",
            "calendar:RequiredAttendees",
            "calendar:OptionalAttendees",
            "calendar:Resources",
        ]);
    }
    let paths: String = uris
        .iter()
        .map(|u| format!(r#"<t:FieldURI FieldURI="{u}"/>"#))
        .collect();
    format!(
        "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{paths}<t:ExtendedFieldURI {PROPERTY}/></t:AdditionalProperties></m:ItemShape>"
    )
}

fn text<'a>(item: &'a Element, name: &str) -> &'a str {
    item.children
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.text.as_str())
        .unwrap_or_else(|| panic!("the item has no {name}"))
}

/// Every field of `item` is `f`, exactly (body and attendees only when `detail`).
fn assert_fields(item: &Element, f: &Fields, detail: bool, what: &str) {
    assert_eq!(text(item, "Subject"), f.subject, "{what}: Subject");
    assert_eq!(text(item, "Location"), f.location, "{what}: Location");
    assert_eq!(text(item, "UID"), f.uid, "{what}: UID");
    assert_eq!(text(item, "Start"), f.start, "{what}: Start");
    assert_eq!(text(item, "End"), f.end, "{what}: End");
    assert_eq!(text(item, "IsAllDayEvent"), f.all_day.to_string(), "{what}");
    assert_eq!(text(item, "LegacyFreeBusyStatus"), f.free_busy, "{what}");
    assert_eq!(text(item, "Sensitivity"), f.sensitivity, "{what}");
    assert_eq!(
        text(item, "ReminderIsSet"),
        f.reminder_set.to_string(),
        "{what}"
    );
    assert_eq!(
        text(item, "ReminderMinutesBeforeStart"),
        f.reminder.to_string(),
        "{what}"
    );
    assert_eq!(
        first(item, "StartTimeZone").attr("Id"),
        Some(f.zone),
        "{what}: zone"
    );
    assert_eq!(
        first(item, "Value").text,
        f.business_id,
        "{what}: extended property"
    );
    if detail {
        assert_eq!(text(item, "Body"), f.body, "{what}: Body");
        for (list, address) in [
            ("RequiredAttendees", f.required),
            ("OptionalAttendees", f.optional),
            ("Resources", f.resource),
        ] {
            let people: Vec<&str> = all(first(item, list), "EmailAddress")
                .into_iter()
                .map(|a| a.text.as_str())
                .collect();
            assert_eq!(people, [address], "{what}: {list}");
        }
        let required = first(item, "RequiredAttendees");
        assert_eq!(first(required, "Name").text, "Anna & co", "{what}");
    } else {
        let details = [
            "Body",
            "RequiredAttendees",
            "OptionalAttendees",
            "Resources",
        ];
        assert!(
            item.children
                .iter()
                .all(|c| !details.contains(&c.name.as_str())),
            "{what}: no body or attendees"
        );
    }
}

/// FindItem, GetItem and SyncFolderItems each return the item as `f`; every request
/// and reply is kept for schema validation.
async fn read_back(
    client: &calvert::ews::client::EwsClient,
    id: &str,
    f: &Fields,
    documents: &mut Vec<(String, String)>,
    round: &str,
) {
    let reads = [
        (
            "find",
            format!(
                r#"<m:FindItem Traversal="Shallow">{}<m:CalendarView MaxEntriesReturned="10" StartDate="2026-12-01T00:00:00Z" EndDate="2026-12-10T00:00:00Z"/><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>"#,
                shape(false)
            ),
            false,
        ),
        (
            "get",
            format!(
                r#"<m:GetItem>{}<m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#,
                shape(true)
            ),
            true,
        ),
        (
            "sync",
            format!(
                r#"<m:SyncFolderItems>{}<m:SyncFolderId><t:DistinguishedFolderId Id="calendar"/></m:SyncFolderId><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>"#,
                shape(true)
            ),
            // Asked for, but SyncFolderItems (like FindItem) does not return body or
            // attendees: GetItem does.
            false,
        ),
    ];
    for (what, request, detail) in reads {
        let (reply, tree) = call(client, &request).await;
        let items = all(&tree, "CalendarItem");
        assert_eq!(items.len(), 1, "{round} {what}: one item\n{reply}");
        assert_fields(items[0], f, detail, &format!("{round} {what}"));
        documents.push((
            format!("{round}-{what}-request"),
            soap::request_element(&request),
        ));
        documents.push((format!("{round}-{what}-reply"), soap::body_element(&reply)));
    }
}

#[tokio::test]
async fn every_field_comes_back_as_it_was_written_and_updated() {
    let (_server, client) = soap::simulator().await;
    let mut documents = Vec::new();

    let first_fields = first_version();
    let create = create_item(&first_fields);
    let (reply, tree) = call(&client, &create).await;
    assert_eq!(codes(&tree), ["NoError"], "{reply}");
    let (id, key) = item_id(&tree);
    documents.push(("create-request".into(), soap::request_element(&create)));
    documents.push(("create-reply".into(), soap::body_element(&reply)));
    read_back(&client, &id, &first_fields, &mut documents, "created").await;

    let second = second_version();
    let update = update_item(&id, &key, &second);
    let (reply, tree) = call(&client, &update).await;
    assert_eq!(codes(&tree), ["NoError"], "{reply}");
    assert_ne!(item_id(&tree).1, key, "an update gives a new change key");
    documents.push(("update-request".into(), soap::request_element(&update)));
    documents.push(("update-reply".into(), soap::body_element(&reply)));
    read_back(&client, &id, &second, &mut documents, "updated").await;

    xsd::validate("messages.xsd", &documents);
}

#[tokio::test]
async fn calverts_own_reading_gets_every_text_field_exactly() {
    let (_server, client) = soap::simulator().await;
    let (_, tree) = call(&client, &create_item(&first_version())).await;
    let (id, _) = item_id(&tree);
    let kim = calvert::ews::request::Mailbox {
        primary_smtp: soap::KIM.into(),
    };
    // 2026-12-01 .. 2026-12-10: FindItem, then GetItem for the details.
    let items = client
        .calendar(&kim, 1_796_083_200, 1_796_860_800, 100)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.id, id);
    assert_eq!(item.subject, SUBJECT);
    assert_eq!(item.location, LOCATION);
    assert_eq!(item.body, BODY);
    assert_eq!(item.zone.as_deref(), Some("W. Europe Standard Time"));
    assert_eq!(item.reminder_minutes, Some(25));
    let people: Vec<_> = item.attendees.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(people, ["anna@flexi.se", "eva@flexi.se", "rum-a@flexi.se"]);
}

#[tokio::test]
async fn a_recurring_item_is_kept_as_a_master_with_its_pattern() {
    let (_server, client) = soap::simulator().await;
    let create = r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem><t:Subject>Veckomöte</t:Subject><t:Start>2026-12-07T08:00:00Z</t:Start><t:End>2026-12-07T09:00:00Z</t:End><t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek></t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>2026-12-07</t:StartDate><t:NumberOfOccurrences>10</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence></t:CalendarItem></m:Items></m:CreateItem>"#;
    let (_, tree) = call(&client, create).await;
    let (id, _) = item_id(&tree);
    let get = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
    );
    let (reply, tree) = call(&client, &get).await;
    let item = first(&tree, "CalendarItem");
    assert_eq!(text(item, "CalendarItemType"), "RecurringMaster", "{reply}");
    assert_eq!(text(item, "IsRecurring"), "true");
    assert_eq!(first(item, "DaysOfWeek").text, "Monday");
    assert_eq!(first(item, "NumberOfOccurrences").text, "10");
    xsd::validate(
        "messages.xsd",
        &[
            ("recurring-request".into(), soap::request_element(create)),
            ("recurring-reply".into(), soap::body_element(&reply)),
        ],
    );
}

#[tokio::test]
async fn edits_in_one_request_see_each_other() {
    let (_server, client) = soap::simulator().await;
    let (_, tree) = call(&client, &create_item(&first_version())).await;
    let (id, key) = item_id(&tree);
    // Two changes to the same item with the same key: the first makes it stale.
    let change = |subject: &str| {
        format!(
            r#"<t:ItemChange><t:ItemId Id="{id}" ChangeKey="{key}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:CalendarItem><t:Subject>{subject}</t:Subject></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange>"#
        )
    };
    let update = format!(
        r#"<m:UpdateItem ConflictResolution="AutoResolve" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges>{}{}</m:ItemChanges></m:UpdateItem>"#,
        change("first"),
        change("second")
    );
    let (reply, tree) = call(&client, &update).await;
    assert_eq!(
        codes(&tree),
        ["NoError", "ErrorIrresolvableConflict"],
        "{reply}"
    );
    let get = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
    );
    let (_, tree) = call(&client, &get).await;
    assert_eq!(first(&tree, "Subject").text, "first");
    // The same item twice in one DeleteItem: deleted once, then not found.
    let delete = format!(
        r#"<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendToNone"><m:ItemIds><t:ItemId Id="{id}"/><t:ItemId Id="{id}"/></m:ItemIds></m:DeleteItem>"#
    );
    let (reply, tree) = call(&client, &delete).await;
    assert_eq!(codes(&tree), ["NoError", "ErrorItemNotFound"], "{reply}");
    xsd::validate(
        "messages.xsd",
        &[
            ("twice-delete-reply".into(), soap::body_element(&reply)),
            (
                "twice-update-request".into(),
                soap::request_element(&update),
            ),
        ],
    );
}
