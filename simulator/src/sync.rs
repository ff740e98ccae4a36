//! SyncFolderItems: the changes to a folder of a mailbox since a sync state, the
//! latest per item, paged by MaxChangesReturned; a corrupt state is
//! ErrorInvalidSyncStateData.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use quick_xml::escape::escape;

use crate::directory::{Directory, Mailbox};
use crate::item_xml::{Reader, Shape, item_xml};
use crate::wire::{MESSAGES, Parsed, TYPES, envelope, xml_reply};

/// The change number in a sync state this simulator gave out (base64 of `ss-<n>`).
fn state_number(text: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("ss-")?
        .parse()
        .ok()
}

/// SyncFolderItems on `folder` of `mailbox`: created and updated items in the
/// request's ItemShape.
pub(crate) fn sync_folder_items(
    directory: &Directory,
    mailbox: &str,
    folder: &str,
    parsed: &Parsed,
    shape: &Shape,
) -> Response {
    let after = match parsed.sync_state.as_deref() {
        None => 0,
        Some(text) => match state_number(text) {
            Some(n) => n,
            None => return invalid_state(),
        },
    };
    let max = parsed.max_changes.unwrap_or(512).clamp(1, 512);
    let mut ordered = changes_after(directory, mailbox, folder, after);
    let complete = ordered.len() <= max;
    ordered.truncate(max);
    let state = if complete {
        directory.next_watermark
    } else {
        ordered.last().map(|c| c.0).unwrap_or(after)
    };
    let changes = directory
        .mailboxes
        .get(mailbox)
        .map(|store| changes_xml(store, &ordered, shape))
        .unwrap_or_default();
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:SyncFolderItemsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>{}</m:SyncState><m:IncludesLastItemInRange>{complete}</m:IncludesLastItemInRange><m:Changes>{changes}</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#,
            base64::engine::general_purpose::STANDARD.encode(format!("ss-{state}"))
        )),
    )
}

/// The reply to a sync state this simulator did not give out.
fn invalid_state() -> Response {
    xml_reply(
        StatusCode::OK,
        envelope(&format!(
            r#"<m:SyncFolderItemsResponse xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>Synchronization state data is corrupt or otherwise invalid.</m:MessageText><m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#
        )),
    )
}

/// The latest change per item of `mailbox` after change `after`, oldest first, as
/// (number, item, Create / Update / Delete); an item made and deleted since is none.
fn changes_after<'a>(
    directory: &'a Directory,
    mailbox: &str,
    folder: &str,
    after: u64,
) -> Vec<(u64, &'a str, &'static str)> {
    let mut latest: BTreeMap<&str, (u64, &'static str)> = BTreeMap::new();
    let mut existed_before: BTreeSet<&str> = BTreeSet::new();
    for change in &directory.changes {
        if change.mailbox != mailbox || change.folder != folder {
            continue;
        }
        let item = change.item.as_str();
        if change.number <= after {
            existed_before.insert(item);
            if change.event == "DeletedEvent" {
                existed_before.remove(item);
            }
        } else {
            latest.insert(item, (change.number, change.event));
        }
    }
    let mut ordered: Vec<(u64, &str, &'static str)> = latest
        .into_iter()
        .filter_map(
            |(item, (n, kind))| match (kind, existed_before.contains(item)) {
                ("DeletedEvent", false) => None,
                ("DeletedEvent", true) => Some((n, item, "Delete")),
                (_, true) => Some((n, item, "Update")),
                (_, false) => Some((n, item, "Create")),
            },
        )
        .collect();
    ordered.sort();
    ordered
}

/// The Changes of a SyncFolderItems reply (an item gone since is a Delete).
fn changes_xml(store: &Mailbox, ordered: &[(u64, &str, &'static str)], shape: &Shape) -> String {
    let mut changes = String::new();
    for (_, item, kind) in ordered {
        match (*kind, store.items.get(*item)) {
            ("Delete", _) | (_, None) => {
                let _ = write!(
                    changes,
                    r#"<t:Delete><t:ItemId Id="{}" ChangeKey="x"/></t:Delete>"#,
                    escape(*item)
                );
            }
            (kind, Some(found)) => {
                let _ = write!(
                    changes,
                    "<t:{kind}>{}</t:{kind}>",
                    item_xml(found, shape, Reader::SyncFolderItems)
                );
            }
        }
    }
    changes
}
