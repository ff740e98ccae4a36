//! Reading FindItem and GetItem replies of 1000 calendar items (items/s, MB/s).
//!
//! Run: `cargo bench -p calvert --bench ews_parse`. The replies are generated with
//! every field Calvert requests, in the shape Exchange 2010+ sends (see
//! ../shared/ews/doc-samples for the originals).

use std::fmt::Write as _;
use std::hint::black_box;

use calvert::ews::calendar::{parse_find_item, parse_get_item};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn item(i: usize) -> String {
    let day = 1 + i % 28;
    let hour = 7 + i % 10;
    format!(
        r#"<t:CalendarItem><t:ItemId Id="AAMkADk0MzU3NmYyLTFlYjEtNDk3ZC04ZjQ1LWM2NzE3NjE4YjM4ZgBGAAAAAAB{i:08}AAA=" ChangeKey="DwAAABYAAAB{i:08}"/>
<t:Subject>Möte med kund {i} &amp; lunch</t:Subject><t:Sensitivity>Normal</t:Sensitivity>
<t:Body BodyType="Text">Agenda: budget, planering och uppföljning för kvartal {i}.</t:Body>
<t:DateTimeCreated>2026-11-{day:02}T06:00:00Z</t:DateTimeCreated><t:LastModifiedTime>2026-11-{day:02}T06:30:00Z</t:LastModifiedTime>
<t:ReminderIsSet>true</t:ReminderIsSet><t:ReminderMinutesBeforeStart>15</t:ReminderMinutesBeforeStart>
<t:Start>2026-11-{day:02}T{hour:02}:00:00Z</t:Start><t:End>2026-11-{day:02}T{hour:02}:45:00Z</t:End>
<t:IsAllDayEvent>false</t:IsAllDayEvent><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus><t:Location>Rum 4</t:Location>
<t:IsMeeting>true</t:IsMeeting><t:IsCancelled>false</t:IsCancelled><t:CalendarItemType>Single</t:CalendarItemType>
<t:MyResponseType>Accept</t:MyResponseType>
<t:RequiredAttendees><t:Attendee><t:Mailbox><t:Name>Kim</t:Name><t:EmailAddress>kim@flexi.se</t:EmailAddress></t:Mailbox><t:ResponseType>Accept</t:ResponseType></t:Attendee></t:RequiredAttendees>
<t:Resources><t:Attendee><t:Mailbox><t:EmailAddress>rum4@flexi.se</t:EmailAddress></t:Mailbox></t:Attendee></t:Resources>
<t:StartTimeZone Id="W. Europe Standard Time"/></t:CalendarItem>
"#
    )
}

fn envelope(operation: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body><m:{operation}Response xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>{inner}</m:ResponseMessages></m:{operation}Response></s:Body></s:Envelope>"#
    )
}

fn find_item_reply(n: usize) -> String {
    let mut items = String::new();
    for i in 0..n {
        items.push_str(&item(i));
    }
    envelope(
        "FindItem",
        &format!(
            r#"<m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="{n}" IncludesLastItemInRange="true"><t:Items>{items}</t:Items></m:RootFolder></m:FindItemResponseMessage>"#
        ),
    )
}

fn get_item_reply(n: usize) -> String {
    let mut messages = String::new();
    for i in 0..n {
        let _ = write!(
            messages,
            r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{}</m:Items></m:GetItemResponseMessage>"#,
            item(i)
        );
    }
    envelope("GetItem", &messages)
}

fn parse(c: &mut Criterion) {
    let n = 1000;
    let find = find_item_reply(n);
    let get = get_item_reply(n);
    assert_eq!(parse_find_item(&find).expect("valid").0.items.len(), n);
    assert_eq!(
        parse_get_item(&get)
            .expect("valid")
            .iter()
            .filter(|r| r.is_ok())
            .count(),
        n
    );
    let mut group = c.benchmark_group("ews-parse-1000-items");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("find-item/items", |b| {
        b.iter(|| parse_find_item(black_box(&find)).map(|p| p.0.items.len()))
    });
    group.bench_function("get-item/items", |b| {
        b.iter(|| parse_get_item(black_box(&get)).map(|r| r.len()))
    });
    group.throughput(Throughput::Bytes(find.len() as u64));
    group.bench_function("find-item/bytes", |b| {
        b.iter(|| parse_find_item(black_box(&find)).map(|p| p.0.items.len()))
    });
    group.throughput(Throughput::Bytes(get.len() as u64));
    group.bench_function("get-item/bytes", |b| {
        b.iter(|| parse_get_item(black_box(&get)).map(|r| r.len()))
    });
    group.finish();
    println!(
        "reply sizes: FindItem {} bytes, GetItem {} bytes",
        find.len(),
        get.len()
    );
}

criterion_group!(benches, parse);
criterion_main!(benches);
