//! Hostile and broken XML through the public parsing entry points (issue 9): deep
//! nesting, declared entities, invalid UTF-8 and documents cut anywhere, including
//! inside a multi-byte character. Each must end in a clear error, with the process
//! alive; the push listener must keep answering after such a POST.

use std::time::Duration;

use calvert::ews::autodiscover::{AutodiscoverError, parse_get_user_settings, parse_pox};
use calvert::ews::calendar::{
    parse_find_item, parse_get_item, parse_saved_items, parse_sync_folder_items,
};
use calvert::ews::notification::{StreamSplitter, parse_events, parse_subscribe};
use calvert::ews::response::{EwsError, body, response_messages};
use calvert::ews::xml::{self, MAX_DEPTH, XmlError};

const SOAP_OPEN: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body>"#;
const SOAP_CLOSE: &str = "</s:Body></s:Envelope>";

/// A GetItem reply with one calendar item; `extra` goes inside the item.
fn get_item_reply(subject: &str, extra: &str) -> String {
    format!(
        r#"{SOAP_OPEN}<m:GetItemResponse><m:ResponseMessages><m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="item-1" ChangeKey="ck-1"/><t:Subject>{subject}</t:Subject><t:Start>2025-03-03T08:00:00Z</t:Start><t:End>2025-03-03T09:00:00Z</t:End>{extra}</t:CalendarItem></m:Items></m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse>{SOAP_CLOSE}"#
    )
}

/// A push `SendNotification` with one modified event; `extra` goes inside the event.
fn push_notification(watermark: &str, extra: &str) -> String {
    format!(
        r#"{SOAP_OPEN}<m:SendNotification><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>sub-1</t:SubscriptionId><t:PreviousWatermark>w0</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents><t:ModifiedEvent><t:Watermark>{watermark}</t:Watermark><t:TimeStamp>2025-03-03T08:00:00Z</t:TimeStamp><t:ItemId Id="item-1" ChangeKey="ck-1"/>{extra}</t:ModifiedEvent></m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification>{SOAP_CLOSE}"#
    )
}

fn nested(depth: usize) -> String {
    format!("{}{}", "<t:X>".repeat(depth), "</t:X>".repeat(depth))
}

fn ews_xml<T>(result: Result<T, EwsError>) -> Option<XmlError> {
    match result {
        Err(EwsError::Xml(e)) => Some(e),
        _ => None,
    }
}

fn autodiscover_xml<T>(result: Result<T, AutodiscoverError>) -> Option<XmlError> {
    match result {
        Err(AutodiscoverError::Xml(e)) => Some(e),
        _ => None,
    }
}

/// Every public entry point that parses network XML, each giving the XML error it
/// returned (None when it read the document or refused it for another reason).
/// One entry point: reads a reply, gives the XML error it returned, if any.
type EntryPoint = fn(&str) -> Option<XmlError>;

const ENTRY_POINTS: &[(&str, EntryPoint)] = &[
    ("GetItem", |r| ews_xml(parse_get_item(r))),
    ("FindItem", |r| ews_xml(parse_find_item(r))),
    ("SyncFolderItems", |r| ews_xml(parse_sync_folder_items(r))),
    ("CreateItem/UpdateItem", |r| ews_xml(parse_saved_items(r))),
    ("Subscribe", |r| ews_xml(parse_subscribe(r))),
    ("GetEvents/push", |r| ews_xml(parse_events(r))),
    ("response messages", |r| match xml::parse(r) {
        Ok(root) => ews_xml(body(&root).and_then(|b| response_messages(b).map(|_| ()))),
        Err(e) => Some(e),
    }),
    ("Autodiscover SOAP", |r| {
        autodiscover_xml(parse_get_user_settings(r))
    }),
    ("Autodiscover POX", |r| autodiscover_xml(parse_pox(r))),
];

/// Runs `f` on a thread with a 256 KB stack (a tokio worker has 2 MB): recursion over
/// a document's depth shows as a crash of the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("a test thread")
        .join()
        .expect("no stack overflow or panic")
}

#[test]
fn deep_nesting_is_refused_by_every_entry_point_on_a_small_stack() {
    // 40,000 levels (280 KB) overflowed a worker's stack; above 65,535 quick-xml panicked.
    for depth in [MAX_DEPTH, 40_000, 70_000] {
        on_small_stack(move || {
            let replies = [
                get_item_reply("Lunch", &nested(depth)),
                push_notification("w1", &nested(depth)),
            ];
            for reply in &replies {
                for (entry, parse) in ENTRY_POINTS {
                    let error = parse(reply);
                    assert!(
                        matches!(
                            error,
                            Some(XmlError::TooDeep {
                                limit: MAX_DEPTH,
                                ..
                            })
                        ),
                        "{entry} at depth {depth}: {error:?}"
                    );
                }
            }
        });
    }
}

#[test]
fn the_deepest_allowed_reply_is_read_and_freed_on_a_small_stack() {
    on_small_stack(|| {
        // The item sits 7 levels down; the filler takes the reply to exactly MAX_DEPTH.
        let reply = get_item_reply("Möte i Göteborg", &nested(MAX_DEPTH - 7));
        let items = parse_get_item(&reply).expect("a reply at the depth cap is read");
        let item = items[0].as_ref().expect("the item");
        assert_eq!(item.subject, "Möte i Göteborg");
        let one_more = get_item_reply("Möte", &nested(MAX_DEPTH - 6));
        assert!(matches!(
            parse_get_item(&one_more),
            Err(EwsError::Xml(XmlError::TooDeep { .. }))
        ));
    });
}

#[test]
fn declared_entities_are_refused_by_every_entry_point() {
    let laughs = r#"<!DOCTYPE s:Envelope [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>"#;
    let external = r#"<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#;
    for (doctype, reference) in [(laughs, "&c;"), (external, "&xxe;")] {
        let reply = get_item_reply(reference, "").replacen(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            &format!(r#"<?xml version="1.0" encoding="utf-8"?>{doctype}"#),
            1,
        );
        for (entry, parse) in ENTRY_POINTS {
            let error = parse(&reply);
            assert!(
                matches!(&error, Some(XmlError::Malformed { detail, .. }) if detail.contains("declares entities")),
                "{entry}: {error:?}"
            );
        }
    }
    // Without a declaration the reference is unknown: refused, not left as text.
    let error = ews_xml(parse_get_item(&get_item_reply("&xxe;", "")));
    assert!(
        matches!(&error, Some(XmlError::Malformed { detail, .. }) if detail.contains("unknown entity &xxe;")),
        "{error:?}"
    );
}

#[test]
fn invalid_utf8_is_named_by_decode_and_never_panics_when_replaced() {
    let mut bytes = get_item_reply("Mxte", "").into_bytes();
    let at = bytes
        .windows(4)
        .position(|w| w == b"Mxte")
        .expect("the subject")
        + 1;
    bytes[at] = 0xC3; // a two-byte lead followed by 't': not UTF-8
    let error = xml::decode(&bytes).unwrap_err();
    assert_eq!(error, XmlError::NotUtf8 { position: at });
    assert!(error.to_string().contains("not UTF-8"), "{error}");
    // Callers that replace invalid bytes (the push listener) still get a clean read.
    let text = String::from_utf8_lossy(&bytes);
    let items = parse_get_item(&text).expect("a readable reply");
    assert_eq!(items[0].as_ref().expect("the item").subject, "M\u{fffd}te");
}

#[test]
fn a_reply_cut_at_any_byte_is_an_xml_error_for_every_entry_point() {
    let replies = [
        get_item_reply("Möte i Göteborg – 5 €", "<t:Location>Älvsjö</t:Location>"),
        push_notification("vattenmärke–€", ""),
    ];
    for reply in &replies {
        let bytes = reply.as_bytes();
        xml::parse(reply).expect("the whole reply is read");
        for cut in 1..bytes.len() {
            // Cuts inside a character are replaced, as a lossy reader would.
            let text = String::from_utf8_lossy(&bytes[..cut]);
            for (entry, parse) in ENTRY_POINTS {
                assert!(parse(&text).is_some(), "{entry} cut at byte {cut}");
            }
        }
    }
}

/// `text` in chunks of about `size` bytes, each cut on a char boundary.
fn chunks(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let mut to = (from + size).min(text.len());
        while !text.is_char_boundary(to) {
            to += 1;
        }
        out.push(&text[from..to]);
        from = to;
    }
    out
}

#[test]
fn the_stream_splitter_gives_the_same_envelopes_however_multi_byte_text_is_chunked() {
    let envelopes = [
        push_notification("vattenmärke–€-1", ""),
        push_notification("ö", ""),
        push_notification("€€€", ""),
    ];
    let stream = envelopes.concat();
    let whole = StreamSplitter::new(1 << 20)
        .push(&stream)
        .expect("within the limit");
    assert_eq!(whole.len(), envelopes.len());
    for size in 1..=16 {
        let mut splitter = StreamSplitter::new(1 << 20);
        let mut seen = Vec::new();
        for chunk in chunks(&stream, size) {
            seen.extend(splitter.push(chunk).expect("within the limit"));
        }
        assert_eq!(seen, whole, "chunks of {size} bytes");
        let watermark = parse_events(&seen[0]).expect("readable").notifications[0].events[0]
            .watermark
            .clone();
        assert_eq!(watermark.as_deref(), Some("vattenmärke–€-1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_listener_refuses_hostile_posts_and_keeps_answering() {
    /// Every subscription of the one secret is followed.
    struct Everyone;
    impl calvert::ews::push::PushSubscribers for Everyone {
        fn knows(&self, token: &str) -> bool {
            token == "s3cret"
        }
        fn verdict(&self, _token: &str, _id: &str) -> calvert::ews::push::Verdict {
            calvert::ews::push::Verdict::Forward
        }
    }
    let mut listener = calvert::ews::push::listen(
        "127.0.0.1:0".parse().expect("an address"),
        std::sync::Arc::new(Everyone),
    )
    .await
    .expect("the listener starts");
    let url = listener.url("127.0.0.1", "s3cret");
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(&url)
            .header("content-type", "text/xml; charset=utf-8")
            .body(body)
            .send()
    };
    for depth in [40_000, 70_000] {
        let answer = post(push_notification("w1", &nested(depth)).into_bytes())
            .await
            .expect("the listener answers");
        assert_eq!(answer.status(), 400, "depth {depth}");
        let text = answer.text().await.expect("a reason");
        assert!(text.contains("levels deep"), "{text}");
    }
    let entities = push_notification("&c;", "").replacen(
        r#"<?xml version="1.0" encoding="utf-8"?>"#,
        r#"<!DOCTYPE s:Envelope [<!ENTITY b "bb"><!ENTITY c "&b;&b;">]>"#,
        1,
    );
    let answer = post(entities.into_bytes()).await.expect("answers");
    assert_eq!(answer.status(), 400);
    // Invalid UTF-8 and a body cut inside a character: answered, no crash.
    let mut invalid = push_notification("wÖ", "").into_bytes();
    let cut = invalid.len() / 2;
    invalid.truncate(cut);
    invalid.push(0xC3);
    let answer = post(invalid).await.expect("answers");
    assert_eq!(answer.status(), 400);

    // Still alive: a real notification goes through.
    let answer = post(push_notification("w1", "").into_bytes())
        .await
        .expect("answers");
    assert_eq!(answer.status(), 200);
    let notification = tokio::time::timeout(Duration::from_secs(5), listener.notifications.recv())
        .await
        .expect("in time")
        .expect("a notification");
    assert_eq!(notification.subscription_id, "sub-1");
    assert_eq!(notification.events[0].watermark.as_deref(), Some("w1"));
}
