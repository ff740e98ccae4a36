//! Reading calendars: FindItem with a CalendarView (honouring MaxEntriesReturned and
//! setting IncludesLastItemInRange) and GetItem.

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::Response;
use quick_xml::escape::escape;

use crate::directory::{Mailbox, SimItem};
use crate::wire::{MESSAGES, TYPES, envelope, xml_reply};

/// FindItem: the items of `store` that overlap `start..end`, by start, at most `max`.
pub(crate) fn find_item(store: &Mailbox, (start, end, max): (i64, i64, usize)) -> Response {
    let mut matching: Vec<&SimItem> = store
        .items
        .values()
        .filter(|i| i.start < end && i.end > start)
        .collect();
    matching.sort_by_key(|i| (i.start, i.id.clone()));
    let total = matching.len();
    let page: String = matching.iter().take(max).map(|i| item_xml(i)).collect();
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:FindItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="{total}" IncludesLastItemInRange="{}"><t:Items>{page}</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#,
            total <= max
        )),
    )
}

/// GetItem: each id asked for, or ErrorItemNotFound for it.
pub(crate) fn get_item(store: &Mailbox, ids: &[String]) -> Response {
    let mut messages = String::new();
    for id in ids {
        match store.items.get(id) {
            Some(item) => {
                let _ = write!(
                    messages,
                    r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{}</m:Items></m:GetItemResponseMessage>"#,
                    item_xml(item)
                );
            }
            None => {
                let _ = write!(
                    messages,
                    r#"<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:GetItemResponseMessage>"#
                );
            }
        }
    }
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:GetItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{messages}</m:ResponseMessages></m:GetItemResponse>"#
        )),
    )
}

/// Seconds since 1970 as an xs:dateTime.
fn time(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A calendar item in EWS XML, with the properties Calvert asks for.
fn item_xml(item: &SimItem) -> String {
    format!(
        r#"<t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/><t:Subject>{}</t:Subject><t:Sensitivity>{}</t:Sensitivity><t:Start>{}</t:Start><t:End>{}</t:End><t:IsAllDayEvent>{}</t:IsAllDayEvent><t:LegacyFreeBusyStatus>{}</t:LegacyFreeBusyStatus><t:Location>{}</t:Location><t:IsMeeting>{}</t:IsMeeting><t:IsCancelled>false</t:IsCancelled><t:CalendarItemType>{}</t:CalendarItemType><t:MyResponseType>{}</t:MyResponseType></t:CalendarItem>"#,
        escape(&item.id),
        escape(&item.change_key),
        escape(&item.subject),
        item.sensitivity,
        time(item.start),
        time(item.end),
        item.all_day,
        item.free_busy,
        escape(&item.location),
        item.is_meeting,
        item.item_type,
        item.my_response
    )
}
