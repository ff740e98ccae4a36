//! Item ids and change keys are never handed out twice in the simulator's life:
//! across creates and deletes (over EWS and by the test's own API), subscriptions
//! that come and go (a push subscription whose listener went away included), and
//! clients that reconnect. A property test over random sequences of those steps.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use calvert_exchange_sim::{Exchange, SimItem, start};
use proptest::prelude::*;

const KIM: &str = "kim@flexi.se";

#[derive(Debug, Clone)]
enum Step {
    Create,
    Update(usize),
    Delete(usize),
    /// The test puts an item with an id of its choosing (some look like the
    /// simulator's own).
    TestPut(&'static str),
    TestDelete(usize),
    Subscribe(&'static str),
    /// A push subscription to a port nobody listens on: it ends after its failures.
    DeadPush,
    Unsubscribe,
    NewClient,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Create),
        2 => (0usize..8).prop_map(Step::Update),
        2 => (0usize..8).prop_map(Step::Delete),
        1 => prop::sample::select(vec!["sim-1", "sim-2", "sim-3", "sim-7", "kim-1"]).prop_map(Step::TestPut),
        1 => (0usize..8).prop_map(Step::TestDelete),
        1 => prop::sample::select(vec!["PullSubscriptionRequest", "StreamingSubscriptionRequest"]).prop_map(Step::Subscribe),
        1 => Just(Step::DeadPush),
        1 => Just(Step::Unsubscribe),
        1 => Just(Step::NewClient),
    ]
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{KIM}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// The value of `attribute="…"` after each `<t:{element} ` in `reply`.
fn attributes(reply: &str, element: &str, attribute: &str) -> Vec<String> {
    let tag = format!("<t:{element} ");
    let key = format!("{attribute}=\"");
    reply
        .match_indices(&tag)
        .filter_map(|(at, _)| {
            let rest = &reply[at..];
            let rest = &rest[..rest.find('>')?];
            let value = &rest[rest.find(&key)? + key.len()..];
            Some(value[..value.find('"')?].to_string())
        })
        .collect()
}

struct Run {
    url: String,
    http: reqwest::Client,
    exchange: Exchange,
    live: Vec<String>,
    /// Every subscription id handed out, and whether it is still live.
    subscriptions: Vec<(String, bool)>,
    ids_seen: BTreeSet<String>,
    keys_seen: BTreeSet<String>,
}

impl Run {
    async fn post(&self, body: &str) -> String {
        let auth = base64::engine::general_purpose::STANDARD.encode("calvert:secret");
        self.http
            .post(&self.url)
            .header("Authorization", format!("Basic {auth}"))
            .header("X-AnchorMailbox", KIM)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(envelope(body))
            .send()
            .await
            .expect("the simulator answers")
            .text()
            .await
            .expect("a reply")
    }

    fn pick(&self, n: usize) -> Option<String> {
        (!self.live.is_empty()).then(|| self.live[n % self.live.len()].clone())
    }

    /// A change key never seen before.
    fn new_key(&mut self, key: String) -> Result<(), TestCaseError> {
        prop_assert!(
            self.keys_seen.insert(key.clone()),
            "change key {key} handed out twice"
        );
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Create => {
                let reply = self.post(r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem><t:Subject>x</t:Subject><t:Start>2026-12-03T09:00:00Z</t:Start><t:End>2026-12-03T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>"#).await;
                let ids = attributes(&reply, "ItemId", "Id");
                prop_assert_eq!(ids.len(), 1, "{}", reply);
                prop_assert!(
                    self.ids_seen.insert(ids[0].clone()),
                    "id {} handed out again",
                    ids[0]
                );
                self.live.push(ids[0].clone());
                for key in attributes(&reply, "ItemId", "ChangeKey") {
                    self.new_key(key)?;
                }
            }
            Step::Update(n) => {
                let Some(id) = self.pick(*n) else {
                    return Ok(());
                };
                let reply = self.post(&format!(r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:CalendarItem><t:Subject>y</t:Subject></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#)).await;
                prop_assert_eq!(attributes(&reply, "ItemId", "Id"), vec![id], "{}", reply);
                for key in attributes(&reply, "ItemId", "ChangeKey") {
                    self.new_key(key)?;
                }
            }
            Step::Delete(n) => {
                let Some(id) = self.pick(*n) else {
                    return Ok(());
                };
                // With a change key that was never current first: refused, the item stays.
                let stale = self.post(&format!(r#"<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendToNone"><m:ItemIds><t:ItemId Id="{id}" ChangeKey="CK-stale"/></m:ItemIds></m:DeleteItem>"#)).await;
                prop_assert!(stale.contains("ErrorIrresolvableConflict"), "{}", stale);
                prop_assert!(self.exchange.item(KIM, &id).is_some());
                let reply = self.post(&format!(r#"<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendToNone"><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:DeleteItem>"#)).await;
                prop_assert!(reply.contains("NoError"), "{}", reply);
                self.live.retain(|l| *l != id);
            }
            Step::TestPut(id) => {
                self.exchange
                    .put_item(KIM, SimItem::appointment(id, "t", 0, 60));
                self.ids_seen.insert(id.to_string());
                if !self.live.iter().any(|l| l == id) {
                    self.live.push(id.to_string());
                }
                let key = self.exchange.item(KIM, id).expect("put").change_key;
                self.new_key(key)?;
            }
            Step::TestDelete(n) => {
                let Some(id) = self.pick(*n) else {
                    return Ok(());
                };
                self.exchange.delete_item(KIM, &id);
                self.live.retain(|l| *l != id);
            }
            Step::Subscribe(kind) => {
                let reply = self.post(&format!(r#"<m:Subscribe><m:{kind}><t:FolderIds><t:DistinguishedFolderId Id="calendar"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout></m:{kind}></m:Subscribe>"#).replace("<t:Timeout>5</t:Timeout></m:StreamingSubscriptionRequest>", "</m:StreamingSubscriptionRequest>")).await;
                let id = subscription_id(&reply);
                prop_assert!(
                    self.subscriptions.iter().all(|(s, _)| *s != id),
                    "subscription id {} again",
                    id
                );
                self.subscriptions.push((id, true));
            }
            Step::DeadPush => {
                let reply = self.post(r#"<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="calendar"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:StatusFrequency>1</t:StatusFrequency><t:URL>http://127.0.0.1:9/gone</t:URL></m:PushSubscriptionRequest></m:Subscribe>"#).await;
                let id = subscription_id(&reply);
                prop_assert!(
                    self.subscriptions.iter().all(|(s, _)| *s != id),
                    "subscription id {} again",
                    id
                );
                self.exchange
                    .put_item(KIM, SimItem::appointment("push-poke", "p", 0, 60));
                self.exchange.delete_item(KIM, "push-poke");
                self.ids_seen.insert("push-poke".into());
                // The push task gives up after three failed posts, 50 ms apart.
                for _ in 0..200 {
                    if !self.exchange.has_subscription(&id) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                prop_assert!(
                    !self.exchange.has_subscription(&id),
                    "the dead push subscription ended"
                );
                self.subscriptions.push((id, false));
            }
            Step::Unsubscribe => {
                // The newest subscription: a live one ends, an ended one is not found.
                let Some((id, live)) = self.subscriptions.last().cloned() else {
                    return Ok(());
                };
                let reply = self
                    .post(&format!(
                        "<m:Unsubscribe><m:SubscriptionId>{id}</m:SubscriptionId></m:Unsubscribe>"
                    ))
                    .await;
                let expected = if live {
                    "NoError"
                } else {
                    "ErrorSubscriptionNotFound"
                };
                prop_assert!(
                    reply.contains(expected),
                    "{} for {}: {}",
                    expected,
                    id,
                    reply
                );
                prop_assert!(!self.exchange.has_subscription(&id));
                if let Some(last) = self.subscriptions.last_mut() {
                    last.1 = false;
                }
            }
            Step::NewClient => self.http = reqwest::Client::new(),
        }
        Ok(())
    }
}

fn subscription_id(reply: &str) -> String {
    let start = reply
        .find("<m:SubscriptionId>")
        .map(|i| i + "<m:SubscriptionId>".len());
    let end = reply.find("</m:SubscriptionId>");
    match (start, end) {
        (Some(start), Some(end)) if start <= end => reply[start..end].to_string(),
        _ => panic!("no subscription id in {reply}"),
    }
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let exchange = Exchange::default();
    exchange.add_account("calvert", "secret", None);
    exchange.add_mailbox(KIM);
    let server = start(exchange.clone()).await.expect("the simulator starts");
    let mut run = Run {
        url: server.ews_url(),
        http: reqwest::Client::new(),
        exchange,
        live: Vec::new(),
        subscriptions: Vec::new(),
        ids_seen: BTreeSet::new(),
        keys_seen: BTreeSet::new(),
    };
    for step in &steps {
        run.step(step).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn ids_and_change_keys_are_never_handed_out_twice(steps in prop::collection::vec(step(), 1..30)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(run(steps))?;
    }
}
