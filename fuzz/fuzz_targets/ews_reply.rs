//! EWS replies and requests: the XML tree, every reply reader, and what Calvert writes.
//!
//! The input's first byte chooses what it is:
//! - `\x01`: strings for the request builders; every request must parse back to them.
//! - `\x02`: a calendar item; CreateItem's rendering of it must read back as the item.
//! - anything else (any reply, as the seeds are): the bytes are a reply. The tree must
//!   render and parse back to itself, and every reader must fail with exactly the tree's
//!   error when the tree fails, and give sane values when it does not.
#![no_main]

#[path = "common/xml_render.rs"]
mod xml_render;

use arbitrary::{Arbitrary, Unstructured};
use calvert::component::wit::{Attendee, AttendeeRole, CalendarItem, FreeBusy, Sensitivity};
use calvert::ews::calendar::{self, Change};
use calvert::ews::request::{Mailbox, Request, ServerVersion};
use calvert::ews::response::EwsError;
use calvert::ews::xml::{self, Element, MAX_DEPTH};
use calvert::ews::{MESSAGES_NS, SOAP_NS, TYPES_NS, notification};
use libfuzzer_sys::fuzz_target;
use xml_render::{attr_normalized, eol, render_tree};

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((1, rest)) => requests(&mut Unstructured::new(rest)),
        Some((2, rest)) => item_round_trip(&mut Unstructured::new(rest)),
        _ => reply(data),
    }
});

/// An error is a value that says something (and its action is defined).
fn said(error: &EwsError) {
    assert!(
        !error.to_string().trim().is_empty(),
        "{error:?} says nothing"
    );
    let _ = (error.action(), error.back_off());
    if let Some(code) = error.code() {
        assert!(error.to_string().contains(code), "{error} hides its code");
    }
}

fn reply(bytes: &[u8]) {
    let text = match xml::decode(bytes) {
        Ok(text) => text,
        Err(error) => return assert!(!error.to_string().is_empty()),
    };
    let tree = xml::parse(text);
    assert_eq!(tree, xml::parse(text), "the same reply parsed differently");
    // Every reader reads this tree: on a broken tree each gives the tree's error.
    let same_failure = |result: Result<(), EwsError>| match (&tree, result) {
        (Err(tree_error), Err(error)) => assert_eq!(error, EwsError::Xml(tree_error.clone())),
        (Err(tree_error), Ok(())) => panic!("read a reply the tree refused: {tree_error}"),
        (Ok(_), Err(error)) => said(&error),
        (Ok(_), Ok(())) => {}
    };
    same_failure(calendar::parse_find_item(text).map(|(page, problems)| {
        assert!(
            page.items.iter().all(|i| !i.id.is_empty()),
            "an item without id"
        );
        assert!(problems.iter().all(|p| !p.to_string().is_empty()));
    }));
    same_failure(calendar::parse_get_item(text).map(|items| {
        for item in items {
            match item {
                Ok(item) => assert!(!item.id.is_empty(), "an item without id"),
                Err(error) => said(&error),
            }
        }
    }));
    same_failure(calendar::parse_sync_folder_items(text).map(|round| {
        for change in round.changes {
            let (Change::Upserted { id, .. } | Change::Deleted { id }) = change;
            let _ = id;
        }
    }));
    same_failure(calendar::parse_saved_items(text).map(|saved| {
        for result in saved {
            if let Err(error) = result {
                said(&error);
            }
        }
    }));
    same_failure(notification::parse_subscribe(text).map(|subscribed| {
        assert!(
            !subscribed.subscription_id.is_empty(),
            "an empty subscription id"
        );
    }));
    same_failure(notification::parse_events(text).map(|events| {
        for (_, error) in &events.failed {
            said(error);
        }
    }));
    match tree {
        Ok(root) => whole_tree(&root),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

/// A parsed tree is no deeper than the cap, and renders and parses back to itself.
fn whole_tree(root: &Element) {
    let mut depth_of = vec![(root, 1usize)];
    while let Some((element, depth)) = depth_of.pop() {
        assert!(depth <= MAX_DEPTH, "a tree {depth} levels deep");
        depth_of.extend(element.children.iter().map(|c| (c, depth + 1)));
    }
    let _ = ServerVersion::from_reply(root);
    if let Some((document, expected)) = render_tree(root) {
        match xml::parse(&document) {
            Ok(again) => assert_eq!(
                again, expected,
                "the tree changed when written out:\n{document}"
            ),
            Err(error) => panic!("the tree written out does not parse ({error}):\n{document}"),
        }
    }
}

fn text(u: &mut Unstructured) -> String {
    String::arbitrary(u).unwrap_or_default()
}

/// Every request builder writes its strings so that they read back unchanged (line
/// ends, and white space in attribute values, as XML 1.0 normalizes them).
fn requests(u: &mut Unstructured) {
    let mailbox = Mailbox {
        primary_smtp: text(u),
    };
    let request = Request {
        version: ServerVersion::Exchange2016,
        mailbox: Some(&mailbox),
    };
    let (id, key, state, subscription, mark, url) =
        (text(u), text(u), text(u), text(u), text(u), text(u));
    let ids: Vec<String> = (0..u.int_in_range(0..=3).unwrap_or(0))
        .map(|_| text(u))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let read = |document: String| -> Element {
        xml::parse(&document)
            .unwrap_or_else(|e| panic!("a request does not parse ({e}):\n{document}"))
    };
    let body_of = |root: &Element| -> Element {
        let header = root.child(SOAP_NS, "Header").expect("a SOAP header");
        let address = header
            .find(TYPES_NS, "PrimarySmtpAddress")
            .expect("the impersonation");
        assert_eq!(
            address.text,
            eol(&mailbox.primary_smtp),
            "the impersonated mailbox"
        );
        root.child(SOAP_NS, "Body").expect("a SOAP body").clone()
    };
    let text_in = |body: &Element, ns: &str, name: &str| -> String {
        body.find(ns, name)
            .map(|e| e.text.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let get = body_of(&read(request.get_items(&id_refs)));
    let read_ids: Vec<&str> = get
        .find(MESSAGES_NS, "ItemIds")
        .map(|list| list.children.iter().filter_map(|i| i.attr("Id")).collect())
        .unwrap_or_default();
    let written: Vec<String> = id_refs.iter().map(|id| attr_normalized(id)).collect();
    assert_eq!(read_ids, written, "GetItem ids");
    let sync = body_of(&read(request.sync_folder_items(Some(&state), 100)));
    assert_eq!(text_in(&sync, MESSAGES_NS, "SyncState"), eol(&state));
    let events = body_of(&read(request.get_events(&subscription, &mark)));
    assert_eq!(
        text_in(&events, MESSAGES_NS, "SubscriptionId"),
        eol(&subscription)
    );
    assert_eq!(text_in(&events, MESSAGES_NS, "Watermark"), eol(&mark));
    let push = body_of(&read(request.subscribe_push(&url, Some(&mark), 1)));
    assert_eq!(text_in(&push, TYPES_NS, "URL"), eol(&url));
    assert_eq!(text_in(&push, TYPES_NS, "Watermark"), eol(&mark));
    let delete = body_of(&read(request.delete_item(&id, Some(&key))));
    let item_id = delete
        .find(TYPES_NS, "ItemId")
        .expect("DeleteItem's ItemId");
    assert_eq!(
        (item_id.attr("Id"), item_id.attr("ChangeKey")),
        (
            Some(attr_normalized(&id).as_str()),
            Some(attr_normalized(&key).as_str())
        )
    );
    let update = body_of(&read(request.update_item(
        &id,
        &key,
        &CalendarItem::appointment("x", 0, 60),
    )));
    let item_id = update
        .find(TYPES_NS, "ItemId")
        .expect("UpdateItem's ItemId");
    assert_eq!(
        (item_id.attr("Id"), item_id.attr("ChangeKey")),
        (
            Some(attr_normalized(&id).as_str()),
            Some(attr_normalized(&key).as_str())
        )
    );
}

fn pick<T: Copy>(u: &mut Unstructured, from: &[T]) -> T {
    *u.choose(from).unwrap_or(&from[0])
}

/// A calendar item as CreateItem writes it reads back as that item: the fields
/// CreateItem writes are kept (subject and location trimmed, as the reader trims;
/// line ends as XML 1.0 normalizes them; attendees by role, blank addresses left out),
/// the ones it does not write take the reader's neutral values.
fn item_round_trip(u: &mut Unstructured) {
    let instant = |u: &mut Unstructured| -> i64 {
        let at = i64::arbitrary(u).unwrap_or(0);
        if u.ratio(1, 4).unwrap_or(false) {
            at
        } else {
            at % 400_000_000_000
        }
    };
    let mut item = CalendarItem::appointment("fuzz", instant(u), instant(u));
    item.subject = text(u);
    item.location = text(u);
    item.body = text(u);
    item.is_all_day = bool::arbitrary(u).unwrap_or(false);
    item.free_busy = pick(
        u,
        &[
            FreeBusy::Free,
            FreeBusy::Tentative,
            FreeBusy::Busy,
            FreeBusy::Oof,
            FreeBusy::WorkingElsewhere,
            FreeBusy::NoData,
        ],
    );
    item.sensitivity = pick(
        u,
        &[
            Sensitivity::Normal,
            Sensitivity::Personal,
            Sensitivity::Private,
            Sensitivity::Confidential,
        ],
    );
    item.reminder_minutes = Option::<u32>::arbitrary(u).unwrap_or(None);
    for _ in 0..u.int_in_range(0..=4).unwrap_or(0) {
        let role = pick(
            u,
            &[
                AttendeeRole::Required,
                AttendeeRole::Optional,
                AttendeeRole::Resource,
            ],
        );
        item.attendees.push(Attendee {
            address: text(u),
            role,
        });
    }
    let request = Request {
        version: ServerVersion::Exchange2016,
        mailbox: None,
    };
    let document = request.create_item(&item);
    let root = xml::parse(&document)
        .unwrap_or_else(|e| panic!("CreateItem does not parse ({e}):\n{document}"));
    let mut element = root
        .find(TYPES_NS, "CalendarItem")
        .expect("CreateItem's CalendarItem")
        .clone();
    // A new item has no id yet; Exchange's answer would carry one.
    let mut item_id = Element::default();
    item_id.ns = TYPES_NS.into();
    item_id.name = "ItemId".into();
    item_id.attrs.push(("Id".into(), "fuzz".into()));
    element.children.insert(0, item_id);
    let read = calendar::calendar_item(&element).unwrap_or_else(|e| panic!("{e}:\n{document}"));
    let in_range = |at: i64| {
        if jiff::Timestamp::from_second(at).is_ok() {
            at
        } else {
            0
        }
    };
    let mut expected = item.clone();
    // Subject, location and body come back exactly: Calvert writes a CR as a
    // character reference and reads these three untrimmed.
    expected.start = in_range(item.start);
    expected.end = in_range(item.end);
    expected.attendees = [
        AttendeeRole::Required,
        AttendeeRole::Optional,
        AttendeeRole::Resource,
    ]
    .into_iter()
    .flat_map(|role| item.attendees.iter().filter(move |a| a.role == role))
    .map(|a| Attendee {
        address: eol(&a.address).trim().to_string(),
        role: a.role,
    })
    .filter(|a| !a.address.is_empty())
    .collect();
    assert_eq!(
        read, expected,
        "the item changed on its way through XML:\n{document}"
    );
}
