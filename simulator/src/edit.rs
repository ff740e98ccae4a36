//! Changing calendars: CreateItem (every field given is kept, exactly; each new item
//! gets an id never used before), UpdateItem (SetItemField, AppendToItemField,
//! DeleteItemField) and DeleteItem (a stale change key is ErrorIrresolvableConflict
//! for either), one response message per item, each change made under the
//! directory's lock (so subscriptions see it, and the next change sees it).

use axum::http::StatusCode;
use axum::response::Response;
use quick_xml::escape::escape;

use crate::directory::{Directory, Mailbox, SimItem};
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
    /// SavedItemFolderId names no folder of the mailbox.
    FolderNotFound,
    /// DeleteItemField or AppendToItemField on a property that does not take it.
    Property { code: &'static str, why: String },
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
            Refusal::FolderNotFound => (
                "ErrorFolderNotFound",
                "The specified folder could not be found in the store.",
            ),
            Refusal::Property { code, why } => (*code, why.as_str()),
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

/// CreateItem, UpdateItem or DeleteItem on `mailbox`: a value the schema refuses
/// fails the whole request before anything changes; otherwise each item is checked
/// and changed in turn, under the directory's lock, so a later change in the same
/// request (or another request) sees the earlier one.
pub(crate) fn edit(directory: &mut Directory, mailbox: &str, parsed: &Parsed) -> Response {
    let operation = parsed.operation.as_str();
    if let Err(why) = schema_check(&parsed.request) {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault("ErrorSchemaValidation", &why, None),
        );
    }
    let now = jiff::Timestamp::now().as_second();
    let messages: Vec<String> = match operation {
        "CreateItem" => create(directory, mailbox, &parsed.request, now),
        "UpdateItem" => update(directory, mailbox, &parsed.request, now),
        _ => delete(directory, mailbox, parsed),
    };
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{}</m:ResponseMessages></m:{operation}Response>"#,
            messages.concat()
        )),
    )
}

/// Every value the request gives, applied to a scratch item: the first the schema
/// would refuse.
fn schema_check(request: &Node) -> Result<(), String> {
    let mut scratch = SimItem::appointment("scratch", "", 0, 0);
    for item in request
        .child("Items")
        .iter()
        .flat_map(|i| i.children_named("CalendarItem"))
    {
        item_fields::apply(&mut scratch, item)?;
    }
    let mut values = Vec::new();
    request.find_all("SetItemField", &mut values);
    request.find_all("AppendToItemField", &mut values);
    for value in values.iter().filter_map(|u| u.child("CalendarItem")) {
        item_fields::apply(&mut scratch, value)?;
    }
    Ok(())
}

/// The success message for a stored item.
fn saved(operation: &str, id: &str, key: &str) -> String {
    format!(
        r#"<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="{}" ChangeKey="{}"/></t:CalendarItem></m:Items></m:{operation}ResponseMessage>"#,
        escape(id),
        escape(key)
    )
}

/// Store `item` unless it ends before it starts; its response message.
fn store(directory: &mut Directory, mailbox: &str, operation: &str, item: SimItem) -> String {
    if item.end < item.start {
        return Refusal::EndBeforeStart.message(operation);
    }
    let id = item.id.clone();
    let key = directory.put(mailbox, item);
    saved(operation, &id, &key)
}

/// CreateItem: a new item per CalendarItem given, in the folder SavedItemFolderId
/// names (the calendar when none).
fn create(directory: &mut Directory, mailbox: &str, request: &Node, now: i64) -> Vec<String> {
    let folder = directory
        .mailboxes
        .get(mailbox)
        .and_then(|store| folders::resolve(store, request, "SavedItemFolderId"));
    let given: Vec<&Node> = request
        .child("Items")
        .map(|i| i.children_named("CalendarItem").collect())
        .unwrap_or_default();
    given
        .into_iter()
        .map(|given| {
            let Some(folder) = &folder else {
                return Refusal::FolderNotFound.message("CreateItem");
            };
            let id = directory.new_item_id();
            let mut item = SimItem::appointment(&id, "", 0, 0);
            item.uid = format!("040000008200E00074C5B7101A82E008000000{id}");
            item.folder = folder.clone();
            item.reminder_is_set = true;
            if let Err(why) = item_fields::apply(&mut item, given) {
                return Refusal::Schema(why).message("CreateItem");
            }
            item.created = now;
            item.modified = now;
            store(directory, mailbox, "CreateItem", item)
        })
        .collect()
}

/// UpdateItem: each ItemChange applied, in order, to its item as it is then.
fn update(directory: &mut Directory, mailbox: &str, request: &Node, now: i64) -> Vec<String> {
    let changes: Vec<&Node> = request
        .child("ItemChanges")
        .map(|c| c.children_named("ItemChange").collect())
        .unwrap_or_default();
    changes
        .into_iter()
        .map(|change| {
            let updated = current(directory.mailboxes.get(mailbox), change.child("ItemId"))
                .and_then(|mut item| {
                    for update in change
                        .child("Updates")
                        .iter()
                        .flat_map(|u| u.children.iter())
                    {
                        apply_update(&mut item, update)?;
                    }
                    item.modified = now;
                    Ok(item)
                });
            match updated {
                Ok(item) => store(directory, mailbox, "UpdateItem", item),
                Err(refusal) => refusal.message("UpdateItem"),
            }
        })
        .collect()
}

/// DeleteItem: each item named, if it is there (and its change key, when given, is
/// current).
fn delete(directory: &mut Directory, mailbox: &str, parsed: &Parsed) -> Vec<String> {
    parsed
        .item_keys
        .iter()
        .map(|(id, key)| {
            let found = directory.mailboxes.get(mailbox).and_then(|s| s.items.get(id));
            let refusal = match found {
                None => Some(Refusal::ItemNotFound),
                Some(item) if key.as_ref().is_some_and(|k| *k != item.change_key) => {
                    Some(Refusal::StaleChangeKey)
                }
                Some(_) => None,
            };
            match refusal {
                Some(refusal) => refusal.message("DeleteItem"),
                None => {
                    directory.remove(mailbox, id);
                    r#"<m:DeleteItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage>"#.to_string()
                }
            }
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
fn apply_update(item: &mut SimItem, update: &Node) -> Result<(), Refusal> {
    let path = update
        .children
        .iter()
        .find(|c| matches!(c.name.as_str(), "FieldURI" | "ExtendedFieldURI"))
        .ok_or_else(|| Refusal::Schema(format!("{} names no property", update.name)))?;
    let value = update.child("CalendarItem");
    let property = |code| move |why| Refusal::Property { code, why };
    match (update.name.as_str(), value) {
        ("SetItemField", Some(value)) => item_fields::apply(item, value).map_err(Refusal::Schema),
        ("AppendToItemField", Some(value)) => {
            append(item, value).map_err(property("ErrorInvalidPropertyAppend"))
        }
        ("DeleteItemField", _) => {
            item_fields::delete(item, path).map_err(property("ErrorInvalidPropertyDelete"))
        }
        (other, _) => Err(Refusal::Schema(format!("{other} without a CalendarItem"))),
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
