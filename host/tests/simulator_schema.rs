//! What the Exchange simulator answers validates against Microsoft's EWS schema, so
//! the client is tested against replies Exchange itself could send.

#[path = "support/soap.rs"]
mod soap;
#[path = "support/xsd.rs"]
mod xsd;

use calvert::ews::request::{Mailbox, Request, ServerVersion};
use calvert_exchange_sim::SimItem;
use soap::body_element;

#[tokio::test]
async fn every_simulator_reply_validates_against_the_ews_schema() {
    if xsd::schemas().is_none() {
        return;
    }
    let (server, client) = soap::simulator().await;
    let now = 1_795_597_200;
    server.exchange.put_item(
        soap::KIM,
        SimItem::appointment("kim-1", "Lunch & möte", now, now + 1800),
    );
    let kim = Mailbox {
        primary_smtp: "kim@flexi.se".into(),
    };
    let request = Request {
        version: ServerVersion::Exchange2016,
        mailbox: Some(&kim),
    };
    let pull = client.subscribe_pull(&kim, None, 5).await.unwrap();
    let mut item = calvert::component::wit::CalendarItem::appointment("", now + 3600, now + 7200);
    item.subject = "Kundmöte".into();
    let created = client.create_item(&kim, &item).await.unwrap();

    let requests = [
        (
            "find-item",
            request.find_calendar_view(now - 3600, now + 86_400, 1000),
        ),
        ("get-item", request.get_items(&["kim-1"])),
        ("get-item-missing", request.get_items(&["no-such-item"])),
        ("sync-first", request.sync_folder_items(None, 512)),
        (
            "sync-corrupt",
            request.sync_folder_items(Some("bm90LWEtc3RhdGU="), 512),
        ),
        ("subscribe-pull", request.subscribe_pull(None, 5)),
        ("subscribe-streaming", request.subscribe_streaming()),
        (
            "get-events",
            request.get_events(
                &pull.subscription_id,
                pull.watermark.as_deref().unwrap_or(""),
            ),
        ),
        (
            "get-events-unknown",
            request.get_events("no-such-subscription", "AAAA"),
        ),
        ("create-item", request.create_item(&item)),
        (
            "update-item",
            request.update_item(&created.0, &created.1, &item),
        ),
        (
            "update-item-stale",
            request.update_item(&created.0, &created.1, &item),
        ),
        ("delete-item", request.delete_item(&created.0, None)),
    ];
    let mut documents = Vec::new();
    for (what, envelope) in requests {
        let reply = client
            .call(Some(&kim), envelope)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        documents.push((format!("reply-{what}"), body_element(&reply)));
    }
    assert_eq!(documents.len(), 13);
    xsd::validate("messages.xsd", &documents);
}
