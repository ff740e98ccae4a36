//! Folders: how a request names one (DistinguishedFolderId or FolderId), and
//! GetFolder, FindFolder (shallow or deep, no restrictions) and CreateFolder (a
//! name already used under the parent is ErrorFolderExists, as Exchange answers).

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::Response;
use quick_xml::escape::escape;

use crate::directory::{CALENDAR_FOLDER, Directory, FolderRef, Mailbox, SimFolder};
use crate::wire::{MESSAGES, TYPES, envelope, fault, xml_reply};
use crate::xml_tree::Node;

/// The folders `holder` (FolderIds, ParentFolderIds, SavedItemFolderId, …) names.
pub(crate) fn named(holder: &Node) -> Vec<FolderRef> {
    holder
        .children
        .iter()
        .filter_map(|c| match c.name.as_str() {
            "DistinguishedFolderId" => Some(FolderRef::Distinguished(c.attr("Id")?.to_string())),
            "FolderId" => Some(FolderRef::Id(c.attr("Id")?.to_string())),
            _ => None,
        })
        .collect()
}

/// The id of the folder the request's `holder` element names: the calendar when the
/// request does not say; None when it names no folder of the mailbox.
pub(crate) fn resolve(store: &Mailbox, request: &Node, holder: &str) -> Option<String> {
    let Some(names) = request.find(holder).map(named) else {
        return Some(CALENDAR_FOLDER.to_string());
    };
    let first = names.first()?;
    store.folder(first).map(|f| f.id.clone())
}

/// The reply to a FindItem or SyncFolderItems naming a folder the mailbox does not
/// have: HTTP 200 with an error message, as Exchange answers.
pub(crate) fn not_found(operation: &str) -> Response {
    // SyncFolderItems' message carries an (empty) state and the end of the changes.
    let tail = if operation == "SyncFolderItems" {
        "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
    } else {
        ""
    };
    reply(
        operation,
        &format!(
            r#"<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>The specified folder could not be found in the store.</m:MessageText><m:ResponseCode>ErrorFolderNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{tail}</m:{operation}ResponseMessage>"#
        ),
    )
}

/// What a FolderShape asks for: IdOnly, Default or AllProperties, and any
/// AdditionalProperties (`folder:…`).
struct FolderShape {
    base: String,
    more: Vec<String>,
}

impl FolderShape {
    fn of(request: &Node) -> Self {
        let shape = request.child("FolderShape");
        FolderShape {
            base: shape
                .and_then(|s| s.child_text("BaseShape"))
                .unwrap_or("Default")
                .trim()
                .to_string(),
            more: shape
                .and_then(|s| s.child("AdditionalProperties"))
                .map(|a| {
                    a.children
                        .iter()
                        .filter_map(|p| p.attr("FieldURI").map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn wants(&self, uri: &str, in_default: bool) -> bool {
        match self.base.as_str() {
            "AllProperties" => true,
            "Default" if in_default => true,
            _ => self.more.iter().any(|m| m == uri),
        }
    }
}

/// A folder in EWS XML: CalendarFolder for calendars, Folder otherwise.
fn folder_xml(store: &Mailbox, folder: &SimFolder, shape: &FolderShape) -> String {
    let element = if folder.class == "IPF.Appointment" {
        "CalendarFolder"
    } else {
        "Folder"
    };
    let mut out = format!(
        r#"<t:{element}><t:FolderId Id="{}" ChangeKey="{}"/>"#,
        escape(&folder.id),
        escape(&folder.change_key)
    );
    if let Some(parent) = folder
        .parent
        .as_deref()
        .filter(|_| shape.wants("folder:ParentFolderId", false))
    {
        let _ = write!(
            out,
            r#"<t:ParentFolderId Id="{}" ChangeKey="AQAAAA=="/>"#,
            escape(parent)
        );
    }
    if shape.wants("folder:FolderClass", false) && !folder.class.is_empty() {
        let _ = write!(
            out,
            "<t:FolderClass>{}</t:FolderClass>",
            escape(&folder.class)
        );
    }
    if shape.wants("folder:DisplayName", true) {
        let _ = write!(
            out,
            "<t:DisplayName>{}</t:DisplayName>",
            escape(&folder.name)
        );
    }
    if shape.wants("folder:TotalCount", true) {
        let count = store
            .items
            .values()
            .filter(|i| i.folder == folder.id)
            .count();
        let _ = write!(out, "<t:TotalCount>{count}</t:TotalCount>");
    }
    if shape.wants("folder:ChildFolderCount", true) {
        let count = children(store, &folder.id).count();
        let _ = write!(out, "<t:ChildFolderCount>{count}</t:ChildFolderCount>");
    }
    if element == "Folder" && shape.wants("folder:UnreadCount", true) {
        out.push_str("<t:UnreadCount>0</t:UnreadCount>");
    }
    let _ = write!(out, "</t:{element}>");
    out
}

fn children<'a>(store: &'a Mailbox, id: &str) -> impl Iterator<Item = &'a SimFolder> + use<'a> {
    let id = id.to_string();
    store
        .folders
        .iter()
        .filter(move |f| f.parent.as_deref() == Some(id.as_str()))
}

fn reply(operation: &str, messages: &str) -> Response {
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{messages}</m:ResponseMessages></m:{operation}Response>"#
        )),
    )
}

/// A failed message; GetFolder's and CreateFolder's carry an empty Folders (as the
/// recorded Exchange replies do), FindFolder's has nothing after the code.
fn error_message(operation: &str, code: &str, text: &str) -> String {
    let folders = if operation == "FindFolder" {
        ""
    } else {
        "<m:Folders/>"
    };
    format!(
        r#"<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{folders}</m:{operation}ResponseMessage>"#
    )
}

/// GetFolder: one message per folder named.
pub(crate) fn get_folder(store: &Mailbox, request: &Node) -> Response {
    let shape = FolderShape::of(request);
    let names = request.child("FolderIds").map(named).unwrap_or_default();
    let mut messages = String::new();
    for name in &names {
        match store.folder(name) {
            Some(folder) => {
                let _ = write!(
                    messages,
                    r#"<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders>{}</m:Folders></m:GetFolderResponseMessage>"#,
                    folder_xml(store, folder, &shape)
                );
            }
            None => messages.push_str(&error_message(
                "GetFolder",
                "ErrorFolderNotFound",
                "The specified folder could not be found in the store.",
            )),
        }
    }
    reply("GetFolder", &messages)
}

/// FindFolder: the folders below each parent named, its children (Shallow) or all
/// its descendants (Deep).
pub(crate) fn find_folder(store: &Mailbox, request: &Node) -> Response {
    if request.child("Restriction").is_some() {
        return xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorInvalidRequest",
                "The simulator does not serve FindFolder restrictions: list the folders and choose.",
                None,
            ),
        );
    }
    let shape = FolderShape::of(request);
    let deep = request.attr("Traversal") == Some("Deep");
    let names = request
        .child("ParentFolderIds")
        .map(named)
        .unwrap_or_default();
    let mut messages = String::new();
    for name in &names {
        let Some(parent) = store.folder(name) else {
            messages.push_str(&error_message(
                "FindFolder",
                "ErrorFolderNotFound",
                "The specified folder could not be found in the store.",
            ));
            continue;
        };
        let found = below(store, &parent.id, deep);
        let folders: String = found.iter().map(|f| folder_xml(store, f, &shape)).collect();
        let _ = write!(
            messages,
            r#"<m:FindFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="{}" IncludesLastItemInRange="true"><t:Folders>{folders}</t:Folders></m:RootFolder></m:FindFolderResponseMessage>"#,
            found.len()
        );
    }
    reply("FindFolder", &messages)
}

/// The children of `id`, or with `deep` all its descendants, parents first.
fn below<'a>(store: &'a Mailbox, id: &str, deep: bool) -> Vec<&'a SimFolder> {
    let mut found: Vec<&SimFolder> = Vec::new();
    let mut next = vec![id.to_string()];
    while let Some(parent) = next.pop() {
        for child in children(store, &parent) {
            found.push(child);
            if deep {
                next.push(child.id.clone());
            }
        }
    }
    found
}

/// CreateFolder: each folder given, under the parent named.
pub(crate) fn create_folder(directory: &mut Directory, mailbox: &str, request: &Node) -> Response {
    let parent = request
        .child("ParentFolderId")
        .map(named)
        .and_then(|n| n.into_iter().next());
    let wanted: Vec<&Node> = request
        .child("Folders")
        .map(|f| f.children.iter().collect())
        .unwrap_or_default();
    let mut messages = String::new();
    for folder in wanted {
        let made = make_folder(directory, mailbox, parent.as_ref(), folder);
        match made {
            Ok((element, id, key)) => {
                let _ = write!(
                    messages,
                    r#"<m:CreateFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:{element}><t:FolderId Id="{}" ChangeKey="{}"/></t:{element}></m:Folders></m:CreateFolderResponseMessage>"#,
                    escape(&id),
                    escape(&key)
                );
            }
            Err((code, text)) => messages.push_str(&error_message("CreateFolder", code, text)),
        }
    }
    reply("CreateFolder", &messages)
}

type Refusal = (&'static str, &'static str);

/// Make one folder: its element name, id and change key, or why not.
fn make_folder(
    directory: &mut Directory,
    mailbox: &str,
    parent: Option<&FolderRef>,
    folder: &Node,
) -> Result<(String, String, String), Refusal> {
    let number = directory.new_number();
    let store = directory
        .mailboxes
        .get_mut(mailbox)
        .ok_or(("ErrorNonExistentMailbox", "The mailbox does not exist."))?;
    let parent = parent
        .and_then(|p| store.folder(p))
        .map(|p| p.id.clone())
        .ok_or((
            "ErrorFolderNotFound",
            "The specified folder could not be found in the store.",
        ))?;
    let name = folder.child_text("DisplayName").unwrap_or("").to_string();
    if name.trim().is_empty() {
        return Err(("ErrorInvalidFolderId", "A folder needs a DisplayName."));
    }
    let taken = children(store, &parent).any(|f| f.name.to_lowercase() == name.to_lowercase());
    if taken {
        return Err((
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ));
    }
    let class = match (folder.name.as_str(), folder.child_text("FolderClass")) {
        (_, Some(class)) => class.trim().to_string(),
        ("CalendarFolder", None) => "IPF.Appointment".into(),
        ("ContactsFolder", None) => "IPF.Contact".into(),
        ("TasksFolder", None) => "IPF.Task".into(),
        _ => "IPF.Note".into(),
    };
    let id = format!("folder-{number}");
    let key = format!("FK-{number}-1");
    store.folders.push(SimFolder {
        id: id.clone(),
        change_key: key.clone(),
        parent: Some(parent),
        distinguished: None,
        class,
        name,
    });
    Ok((folder.name.clone(), id, key))
}
