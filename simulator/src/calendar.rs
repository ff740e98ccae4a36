//! Reading calendars: FindItem with a CalendarView (honouring MaxEntriesReturned and
//! setting IncludesLastItemInRange) and GetItem, each with the ItemShape asked for.

use std::fmt::Write as _;

use crate::directory::{Mailbox, SimItem};
use crate::item_xml::{Reader, Shape, item_xml};
use crate::wire::{MESSAGES, TYPES, envelope, xml_reply};
use axum::http::StatusCode;
use axum::response::Response;

/// FindItem: the items of `folder` that overlap `start..end`, by start, at most
/// `max` (recurring masters are not in a CalendarView: their occurrences are, and
/// the simulator stores occurrences as the test puts them, it does not expand).
pub(crate) fn find_item(
    store: &Mailbox,
    folder: &str,
    (start, end, max): (i64, i64, usize),
    shape: &Shape,
) -> Response {
    let mut matching: Vec<&SimItem> = store
        .items
        .values()
        .filter(|i| i.folder == folder && i.item_type != "RecurringMaster")
        .filter(|i| i.start < end && i.end > start)
        .collect();
    matching.sort_by_key(|i| (i.start, i.id.clone()));
    let total = matching.len();
    let page: String = matching
        .iter()
        .take(max)
        .map(|i| item_xml(i, shape, Reader::FindItem))
        .collect();
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:FindItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="{total}" IncludesLastItemInRange="{}"><t:Items>{page}</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#,
            total <= max
        )),
    )
}

/// GetItem: each id asked for, or ErrorItemNotFound for it.
pub(crate) fn get_item(store: &Mailbox, ids: &[String], shape: &Shape) -> Response {
    let mut messages = String::new();
    for id in ids {
        match store.items.get(id) {
            Some(item) => {
                let _ = write!(
                    messages,
                    r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{}</m:Items></m:GetItemResponseMessage>"#,
                    item_xml(item, shape, Reader::GetItem)
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
