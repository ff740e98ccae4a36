//! Golden test of Calvert's own reading of calendar items: in every field it maps,
//! the text is split across quick-xml events by entity references, character
//! references and CDATA, and padded with white space where that is part of the
//! value. Subject, location and body come out exactly; enumerations, flags, numbers
//! and times come out as the values they spell.

use calvert::component::wit::{AttendeeRole, FreeBusy, ItemKind, Response, Sensitivity};
use calvert::ews::calendar::parse_get_item;

const REPLY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<m:ResponseMessages><m:GetItemResponseMessage ResponseClass="Succ&#101;ss"><m:ResponseCode>NoErr&#111;r</m:ResponseCode><m:Items>
<t:CalendarItem>
<t:ItemId Id="AA&amp;BB&#x3D;" ChangeKey="CK&lt;1&gt;"/>
<t:Subject>  A &amp; B &lt;c&gt; &quot;q&quot; &#x1F600;&#233; </t:Subject>
<t:Sensitivity>Priv&#97;te</t:Sensitivity>
<t:Body BodyType="Text">rad 1&#13;&#10;  rad &amp; 2<![CDATA[ <b>3</b> ]]>&#9;</t:Body>
<t:DateTimeCreated>2026-12-01T08:00:00&#90;</t:DateTimeCreated>
<t:ReminderIsSet>tr&#117;e</t:ReminderIsSet>
<t:ReminderMinutesBeforeStart>1&#53;</t:ReminderMinutesBeforeStart>
<t:LastModifiedTime>2026-12-01T08:30&#58;00Z</t:LastModifiedTime>
<t:Start>2026-12-03T09:00:00&#x5A;</t:Start>
<t:End> 2026-12-03T10:00:00Z </t:End>
<t:IsAllDayEvent>fa&#108;se</t:IsAllDayEvent>
<t:LegacyFreeBusyStatus>O&#79;F</t:LegacyFreeBusyStatus>
<t:Location><![CDATA[ <Rum> ]]>&amp;&#x20;x </t:Location>
<t:IsMeeting>t&#114;ue</t:IsMeeting>
<t:IsCancelled>f&#97;lse</t:IsCancelled>
<t:CalendarItemType>Exc&#101;ption</t:CalendarItemType>
<t:MyResponseType>Acc&#101;pt</t:MyResponseType>
<t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>anna&#64;flexi.se</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>
<t:Resources><t:Attendee><t:Mailbox><t:EmailAddress> rum&#45;a@flexi.se </t:EmailAddress></t:Mailbox></t:Attendee></t:Resources>
<t:StartTimeZone Id="W.&#32;Europe Standard&#x20;Time"/>
</t:CalendarItem>
</m:Items></m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>"#;

#[test]
fn every_mapped_field_survives_references_split_across_events() {
    let results = parse_get_item(REPLY).expect("the reply reads");
    assert_eq!(results.len(), 1);
    let item = results[0].as_ref().expect("the item reads");
    assert_eq!(item.id, "AA&BB=");
    assert_eq!(item.change_key, "CK<1>");
    assert_eq!(item.subject, "  A & B <c> \"q\" \u{1F600}\u{e9} ");
    assert_eq!(item.location, " <Rum> & x ");
    // A character reference keeps a CR that a literal one would lose (XML 1.0 line ends).
    assert_eq!(item.body, "rad 1\r\n  rad & 2 <b>3</b> \t");
    assert_eq!(item.sensitivity, Sensitivity::Private);
    assert_eq!(item.reminder_minutes, Some(15));
    assert_eq!(item.created, Some(1_796_112_000));
    assert_eq!(item.modified, Some(1_796_113_800));
    assert_eq!((item.start, item.end), (1_796_288_400, 1_796_292_000));
    assert!(!item.is_all_day);
    assert_eq!(item.free_busy, FreeBusy::Oof);
    assert!(item.is_meeting && !item.is_cancelled);
    assert_eq!(item.kind, ItemKind::Exception);
    assert_eq!(item.response, Response::Accept);
    assert_eq!(item.zone.as_deref(), Some("W. Europe Standard Time"));
    let people: Vec<_> = item
        .attendees
        .iter()
        .map(|a| (a.address.as_str(), a.role))
        .collect();
    assert_eq!(
        people,
        [
            ("anna@flexi.se", AttendeeRole::Required),
            ("rum-a@flexi.se", AttendeeRole::Resource)
        ]
    );
}
