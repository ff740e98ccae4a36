//! The simulator answers GetFolder, FindFolder and CreateFolder as Exchange does:
//! the distinguished folders every EWS client starts with, the calendar's child
//! folders, a folder made under the calendar that then holds items of its own, and
//! ErrorFolderExists for a name already used. Requests and replies validate against
//! Microsoft's schema.

#[path = "support/soap.rs"]
mod soap;
#[path = "support/xsd.rs"]
mod xsd;

use soap::{all, call, codes, first};

const GET_DISTINGUISHED: &str = r#"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="root"/><t:DistinguishedFolderId Id="msgfolderroot"/><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>"#;

const CREATE: &str = r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderId><m:Folders><t:CalendarFolder><t:DisplayName>Calvert &amp; ValueFrame</t:DisplayName></t:CalendarFolder></m:Folders></m:CreateFolder>"#;

const FIND_UNDER_CALENDAR: &str = r#"<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindFolder>"#;

fn name_of(folder: &calvert::ews::xml::Element) -> &str {
    &first(folder, "DisplayName").text
}

#[tokio::test]
async fn folders_are_served_as_exchange_serves_them() {
    let (_server, client) = soap::simulator().await;
    let mut documents = Vec::new();
    let mut keep = |what: &str, request: &str, reply: &str| {
        documents.push((format!("{what}-request"), soap::request_element(request)));
        documents.push((format!("{what}-reply"), soap::body_element(reply)));
    };

    // The distinguished folders, each under the one before.
    let (reply, tree) = call(&client, GET_DISTINGUISHED).await;
    assert_eq!(codes(&tree), ["NoError"; 3], "{reply}");
    let folders: Vec<_> = all(&tree, "Folders")
        .into_iter()
        .flat_map(|f| f.children.iter())
        .collect();
    assert_eq!(folders.len(), 3);
    let ids: Vec<&str> = folders
        .iter()
        .map(|f| first(f, "FolderId").attr("Id").unwrap())
        .collect();
    assert_eq!(first(folders[1], "ParentFolderId").attr("Id"), Some(ids[0]));
    assert_eq!(first(folders[2], "ParentFolderId").attr("Id"), Some(ids[1]));
    assert_eq!(folders[2].name, "CalendarFolder");
    assert_eq!(first(folders[2], "FolderClass").text, "IPF.Appointment");
    assert_eq!(name_of(folders[2]), "Calendar");
    keep("get-distinguished", GET_DISTINGUISHED, &reply);

    // The calendar has no child folders yet; one is made, and found under it.
    let (reply, tree) = call(&client, FIND_UNDER_CALENDAR).await;
    assert_eq!(
        first(&tree, "RootFolder").attr("TotalItemsInView"),
        Some("0"),
        "{reply}"
    );
    keep("find-empty", FIND_UNDER_CALENDAR, &reply);
    let (reply, tree) = call(&client, CREATE).await;
    assert_eq!(codes(&tree), ["NoError"], "{reply}");
    let made = first(&tree, "FolderId").attr("Id").unwrap().to_string();
    keep("create", CREATE, &reply);
    let (reply, tree) = call(&client, FIND_UNDER_CALENDAR).await;
    let found = first(&tree, "CalendarFolder");
    assert_eq!(first(found, "FolderId").attr("Id"), Some(made.as_str()));
    assert_eq!(name_of(found), "Calvert & ValueFrame");
    keep("find-made", FIND_UNDER_CALENDAR, &reply);

    // The same name again (in another case) is ErrorFolderExists.
    let again = CREATE.replace("Calvert &amp; ValueFrame", "calvert &amp; valueframe");
    let (reply, tree) = call(&client, &again).await;
    assert_eq!(codes(&tree), ["ErrorFolderExists"], "{reply}");
    keep("create-again", &again, &reply);

    // An item saved in the new folder is there and not in the calendar.
    let create_item = format!(
        r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId><t:FolderId Id="{made}"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Från ValueFrame</t:Subject><t:Start>2026-12-03T09:00:00Z</t:Start><t:End>2026-12-03T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>"#
    );
    let (reply, tree) = call(&client, &create_item).await;
    assert_eq!(codes(&tree), ["NoError"], "{reply}");
    keep("create-item-in-folder", &create_item, &reply);
    let find_in = |folder: &str| {
        format!(
            r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:CalendarView StartDate="2026-12-01T00:00:00Z" EndDate="2026-12-10T00:00:00Z"/><m:ParentFolderIds>{folder}</m:ParentFolderIds></m:FindItem>"#
        )
    };
    let in_made = find_in(&format!(r#"<t:FolderId Id="{made}"/>"#));
    let (reply, tree) = call(&client, &in_made).await;
    assert_eq!(first(&tree, "Subject").text, "Från ValueFrame", "{reply}");
    keep("find-item-in-folder", &in_made, &reply);
    let in_calendar = find_in(r#"<t:DistinguishedFolderId Id="calendar"/>"#);
    let (_, tree) = call(&client, &in_calendar).await;
    assert!(all(&tree, "CalendarItem").is_empty());

    // A folder that is not there: an error message (HTTP 200), as Exchange answers.
    let in_none = find_in(r#"<t:FolderId Id="folder-none"/>"#);
    let (reply, tree) = call(&client, &in_none).await;
    assert_eq!(codes(&tree), ["ErrorFolderNotFound"], "{reply}");
    keep("find-item-no-folder", &in_none, &reply);
    let find_none = FIND_UNDER_CALENDAR.replace(
        r#"<t:DistinguishedFolderId Id="calendar"/>"#,
        r#"<t:FolderId Id="folder-none"/>"#,
    );
    let (reply, tree) = call(&client, &find_none).await;
    assert_eq!(codes(&tree), ["ErrorFolderNotFound"], "{reply}");
    keep("find-folder-no-folder", &find_none, &reply);

    // GetFolder by the new id counts the item; an unknown id is ErrorFolderNotFound.
    let get = format!(
        r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="{made}"/><t:FolderId Id="folder-none"/></m:FolderIds></m:GetFolder>"#
    );
    let (reply, tree) = call(&client, &get).await;
    assert_eq!(codes(&tree), ["NoError", "ErrorFolderNotFound"], "{reply}");
    assert_eq!(first(&tree, "TotalCount").text, "1");
    keep("get-made", &get, &reply);

    // Deep from the root finds the new folder below the calendar.
    let deep = r#"<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="root"/></m:ParentFolderIds></m:FindFolder>"#;
    let (reply, tree) = call(&client, deep).await;
    let ids: Vec<_> = all(&tree, "FolderId")
        .into_iter()
        .filter_map(|f| f.attr("Id"))
        .collect();
    assert!(ids.contains(&made.as_str()) && ids.len() >= 5, "{reply}");
    keep("find-deep", deep, &reply);

    xsd::validate("messages.xsd", &documents);
}
