//! Changing calendars: CreateItem, UpdateItem (a stale change key is
//! ErrorIrresolvableConflict) and DeleteItem. A change goes through the test's own
//! [`Exchange::put_item`] and [`Exchange::delete_item`], so subscriptions see it.

use axum::http::StatusCode;
use axum::response::Response;
use quick_xml::escape::escape;

use crate::directory::{Directory, Mailbox, SimItem};
use crate::exchange::Exchange;
use crate::wire::{MESSAGES, Parsed, TYPES, envelope, instant, xml_reply};

/// Why an UpdateItem or DeleteItem is refused.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EditRefusal {
    /// The item named is not in the mailbox.
    ItemNotFound,
    /// The change key named is not the item's current one.
    StaleChangeKey,
}

impl EditRefusal {
    /// The failed `operation` reply.
    pub(crate) fn reply(self, operation: &str) -> Response {
        let (code, text) = match self {
            EditRefusal::ItemNotFound => (
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ),
            EditRefusal::StaleChangeKey => (
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
            ),
        };
        // The schema wants an (empty) Items in a failed create or update reply.
        let items = if operation == "DeleteItem" {
            ""
        } else {
            "<m:Items/>"
        };
        xml_reply(
            StatusCode::OK,
            envelope(&format!(
                r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{items}</m:{operation}ResponseMessage></m:ResponseMessages></m:{operation}Response>"#
            )),
        )
    }
}

/// The item as the request leaves it: a new one for CreateItem, the named one with
/// the fields given for UpdateItem (and DeleteItem); or why the request is refused.
pub(crate) fn edited_item(
    directory: &Directory,
    store: &Mailbox,
    parsed: &Parsed,
) -> Result<SimItem, EditRefusal> {
    let operation = parsed.operation.as_str();
    let target = parsed.item_keys.first();
    let current = target.and_then(|(id, _)| store.items.get(id)).cloned();
    if operation != "CreateItem" {
        let Some(current) = &current else {
            return Err(EditRefusal::ItemNotFound);
        };
        if let Some((_, Some(key))) = target
            && key != &current.change_key
        {
            return Err(EditRefusal::StaleChangeKey);
        }
    }
    let mut item = match (operation, current) {
        ("CreateItem", _) | (_, None) => {
            let number = directory.changes.len() + directory.subscriptions.len() + 1;
            SimItem::appointment(&format!("sim-{number}"), "", 0, 0)
        }
        (_, Some(current)) => current,
    };
    apply_fields(&mut item, parsed);
    Ok(item)
}

/// The calendar item fields a CreateItem or UpdateItem gives.
fn apply_fields(item: &mut SimItem, parsed: &Parsed) {
    let f = &parsed.fields;
    if let Some(v) = f.get("Subject") {
        item.subject = v.clone();
    }
    if let Some(v) = f.get("Location") {
        item.location = v.clone();
    }
    if let Some(v) = f.get("Sensitivity") {
        item.sensitivity = v.clone();
    }
    if let Some(v) = f.get("LegacyFreeBusyStatus") {
        item.free_busy = v.clone();
    }
    if let Some(v) = f.get("IsAllDayEvent") {
        item.all_day = v == "true";
    }
    if let Some(v) = f.get("Start").and_then(|t| instant(t)) {
        item.start = v;
    }
    if let Some(v) = f.get("End").and_then(|t| instant(t)) {
        item.end = v;
    }
}

/// Store (or for DeleteItem delete) the edited item, and reply with its id and new
/// change key. The caller must have let go of the directory's lock.
pub(crate) fn save(exchange: &Exchange, mailbox: &str, operation: &str, item: SimItem) -> Response {
    let id = item.id.clone();
    if operation == "DeleteItem" {
        exchange.delete_item(mailbox, &id);
        return xml_reply(
            StatusCode::OK,
            envelope(&format!(
                r#"<m:DeleteItemResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:DeleteItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage></m:ResponseMessages></m:DeleteItemResponse>"#
            )),
        );
    }
    exchange.put_item(mailbox, item);
    let key = exchange
        .lock()
        .mailboxes
        .get(mailbox)
        .and_then(|m| m.items.get(&id))
        .map(|i| i.change_key.clone())
        .unwrap_or_default();
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/></t:CalendarItem></m:Items></m:{operation}ResponseMessage></m:ResponseMessages></m:{operation}Response>"#,
            escape(&id),
            escape(&key)
        )),
    )
}
