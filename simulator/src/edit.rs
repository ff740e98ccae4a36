//! Changing calendars: CreateItem (every field given is kept, exactly; each new item
//! gets an id never used before), UpdateItem (SetItemField, AppendToItemField,
//! DeleteItemField) and DeleteItem (a stale change key is ErrorIrresolvableConflict
//! for either), one response message per item. A change goes through the test's own
//! [`Exchange::put_item`] and [`Exchange::delete_item`], so subscriptions see it.

use std::sync::MutexGuard;

use axum::http::StatusCode;
use axum::response::Response;
use quick_xml::escape::escape;

use crate::directory::{Directory, Mailbox, SimItem};
use crate::exchange::Exchange;
use crate::folders;
use crate::item_fields;
use crate::wire::{MESSAGES, Parsed, TYPES, envelope, fault, xml_reply};
use crate::xml_tree::Node;

/// Why one item of a CreateItem, UpdateItem or DeleteItem is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The item named is not in the mailbox.
    ItemNotFound,
    /// The change key named is not the item's current one.
    StaleChangeKey,
    /// The item would end before it starts.
    EndBeforeStart,
    /// A value the schema refuses (the whole request fails, as schema validation).
    Schema(String),
}

impl Refusal {
    fn message(&self, operation: &str) -> String {
        let (code, text) = match self {
            Refusal::ItemNotFound => (
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ),
            Refusal::StaleChangeKey => (
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
            ),
            Refusal::EndBeforeStart => (
                "ErrorCalendarEndDateIsEarlierThanStartDate",
                "EndDate is earlier than StartDate",
            ),
            Refusal::Schema(why) => ("ErrorSchemaValidation", why.as_str()),
        };
        // The schema wants an (empty) Items in a failed create or update reply.
        let items = if operation == "DeleteItem" {
            ""
        } else {
            "<m:Items/>"
        };
        format!(
            r#"<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{items}</m:{operation}ResponseMessage>"#,
            escape(text)
        )
    }
}

/// One item's outcome: what to store (or delete), or why not.
type Outcome = Result<Edit, Refusal>;

#[derive(Debug)]
enum Edit {
    Put(Box<SimItem>),
    Delete(String),
}

/// CreateItem, UpdateItem or DeleteItem on `mailbox`.
pub(crate) fn edit(
    exchange: &Exchange,
    mut directory: MutexGuard<'_, Directory>,
    mailbox: &str,
    parsed: &Parsed,
) -> Response {
    let operation = parsed.operation.as_str();
    let now = jiff::Timestamp::now().as_second();
    let outcomes = match operation {
        "CreateItem" => created(&mut directory, mailbox, &parsed.request, now),
        "UpdateItem" => updated(&directory, mailbox, &parsed.request, now),
        _ => deleted(&directory, mailbox, parsed),
    };
    if let Some(Err(Refusal::Schema(why))) = outcomes
        .iter()
        .find(|o| matches!(o, Err(Refusal::Schema(_))))
    {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault("ErrorSchemaValidation", why, None),
        );
    }
    drop(directory);
    let messages: String = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(edit) => save(exchange, mailbox, operation, edit),
            Err(refusal) => refusal.message(operation),
        })
        .collect();
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{messages}</m:ResponseMessages></m:{operation}Response>"#
        )),
    )
}

/// CreateItem: a new item per CalendarItem given, in the folder SavedItemFolderId
/// names (the calendar when none).
fn created(directory: &mut Directory, mailbox: &str, request: &Node, now: i64) -> Vec<Outcome> {
    let folder = directory
        .mailboxes
        .get(mailbox)
        .and_then(|store| folders::resolve(store, request, "SavedItemFolderId"));
    let Some(folder) = folder else {
        return vec![Err(Refusal::Schema(
            "SavedItemFolderId names no folder of the mailbox".into(),
        ))];
    };
    let items: Vec<Node> = request
        .child("Items")
        .map(|i| i.children_named("CalendarItem").cloned().collect())
        .unwrap_or_default();
    items
        .iter()
        .map(|given| {
            let id = directory.new_item_id();
            let mut item = SimItem::appointment(&id, "", 0, 0);
            item.uid = format!("040000008200E00074C5B7101A82E008000000{id}");
            item.folder = folder.clone();
            item.is_meeting = false;
            item.reminder_is_set = true;
            item_fields::apply(&mut item, given).map_err(Refusal::Schema)?;
            item.created = now;
            item.modified = now;
            checked(item)
        })
        .collect()
}

/// UpdateItem: each ItemChange applied to its item.
fn updated(directory: &Directory, mailbox: &str, request: &Node, now: i64) -> Vec<Outcome> {
    let store = directory.mailboxes.get(mailbox);
    request
        .child("ItemChanges")
        .map(|c| c.children_named("ItemChange").collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|change| {
            let mut item = current(store, change.child("ItemId"))?;
            for update in change
                .child("Updates")
                .iter()
                .flat_map(|u| u.children.iter())
            {
                apply_update(&mut item, update).map_err(Refusal::Schema)?;
            }
            item.modified = now;
            checked(item)
        })
        .collect()
}

/// DeleteItem: each item named, if it is there.
fn deleted(directory: &Directory, mailbox: &str, parsed: &Parsed) -> Vec<Outcome> {
    let store = directory.mailboxes.get(mailbox);
    parsed
        .item_keys
        .iter()
        .map(|(id, key)| match store.and_then(|s| s.items.get(id)) {
            Some(item) if key.as_ref().is_some_and(|k| *k != item.change_key) => {
                Err(Refusal::StaleChangeKey)
            }
            Some(_) => Ok(Edit::Delete(id.clone())),
            None => Err(Refusal::ItemNotFound),
        })
        .collect()
}

/// The item an ItemId names, if its change key (when given) is current.
fn current(store: Option<&Mailbox>, item_id: Option<&Node>) -> Result<SimItem, Refusal> {
    let id = item_id.and_then(|i| i.attr("Id")).unwrap_or("");
    let item = store
        .and_then(|s| s.items.get(id))
        .ok_or(Refusal::ItemNotFound)?;
    match item_id.and_then(|i| i.attr("ChangeKey")) {
        Some(key) if key != item.change_key => Err(Refusal::StaleChangeKey),
        _ => Ok(item.clone()),
    }
}

/// One SetItemField, AppendToItemField or DeleteItemField.
fn apply_update(item: &mut SimItem, update: &Node) -> Result<(), String> {
    let path = update
        .children
        .iter()
        .find(|c| matches!(c.name.as_str(), "FieldURI" | "ExtendedFieldURI"))
        .ok_or_else(|| format!("{} names no property", update.name))?;
    let value = update.child("CalendarItem");
    match (update.name.as_str(), value) {
        ("SetItemField", Some(value)) => item_fields::apply(item, value),
        ("AppendToItemField", Some(value)) => append(item, value),
        ("DeleteItemField", _) => item_fields::delete(item, path),
        (other, _) => Err(format!("{other} without a CalendarItem")),
    }
}

/// AppendToItemField: attendees join their list, body text is added at the end.
fn append(item: &mut SimItem, value: &Node) -> Result<(), String> {
    let mut added = item.clone();
    item_fields::apply(&mut added, value)?;
    for field in &value.children {
        match field.name.as_str() {
            "Body" => item.body.push_str(&field.text),
            "RequiredAttendees" | "OptionalAttendees" | "Resources" => {
                let new = added
                    .attendees
                    .iter()
                    .filter(|a| !item.attendees.contains(a));
                let new: Vec<_> = new.cloned().collect();
                item.attendees.extend(new);
                item.is_meeting = true;
            }
            other => return Err(format!("{other} cannot be appended to")),
        }
    }
    Ok(())
}

/// An item that ends before it starts is refused.
fn checked(item: SimItem) -> Outcome {
    if item.end < item.start {
        return Err(Refusal::EndBeforeStart);
    }
    Ok(Edit::Put(Box::new(item)))
}

/// Store (or delete) one item; its response message with the id and new change key.
/// The caller must have let go of the directory's lock.
fn save(exchange: &Exchange, mailbox: &str, operation: &str, edit: Edit) -> String {
    let item = match edit {
        Edit::Delete(id) => {
            exchange.delete_item(mailbox, &id);
            return r#"<m:DeleteItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage>"#.to_string();
        }
        Edit::Put(item) => item,
    };
    let id = item.id.clone();
    exchange.put_item(mailbox, *item);
    let key = exchange
        .item(mailbox, &id)
        .map(|i| i.change_key)
        .unwrap_or_default();
    format!(
        r#"<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/></t:CalendarItem></m:Items></m:{operation}ResponseMessage>"#,
        escape(&id),
        escape(&key)
    )
}
