//! Forged push notifications: without the subscription's secret in the URL, or for a
//! subscription that is not the secret's, a POST is refused and nothing reaches the
//! service; a subscription no longer followed is told to unsubscribe and dropped.

use std::sync::Arc;
use std::time::Duration;

use calvert::ews::push::{PushListener, PushSubscribers, Verdict, listen, new_token};

/// The genuine StatusEvent notification of the shared samples, for subscription `XXXXX=`.
fn notification() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/ews/lib-test-samples/exchangelib.push.SendNotification.StatusEvent.xml"
    );
    std::fs::read_to_string(path).unwrap()
}

/// Kim's secret is `token`; her live subscription is `XXXXX=`, Eva's is `YYYYY=`.
struct Book {
    token: String,
}

impl PushSubscribers for Book {
    fn knows(&self, token: &str) -> bool {
        token == self.token || token == "eva-secret"
    }
    fn verdict(&self, token: &str, id: &str) -> Verdict {
        match (token == self.token, id) {
            (true, "XXXXX=") | (false, "YYYYY=") => Verdict::Forward,
            (true, "YYYYY=") | (false, "XXXXX=") => Verdict::Forged,
            _ => Verdict::Unsubscribe,
        }
    }
}

async fn listener() -> (PushListener, String) {
    let token = new_token().unwrap();
    let book = Arc::new(Book {
        token: token.clone(),
    });
    (
        listen("127.0.0.1:0".parse().unwrap(), book).await.unwrap(),
        token,
    )
}

async fn post(url: &str, body: String) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn nothing_passed_on(listener: &mut PushListener) {
    assert!(
        listener.notifications.try_recv().is_err(),
        "a refused POST reached the service"
    );
}

#[tokio::test]
async fn the_right_secret_and_subscription_pass() {
    let (mut listener, token) = listener().await;
    let (status, body) = post(&listener.url("127.0.0.1", &token), notification()).await;
    assert_eq!(status, 200);
    assert!(body.contains(">OK<"), "{body}");
    let got = tokio::time::timeout(Duration::from_secs(5), listener.notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.subscription_id, "XXXXX=");
}

#[tokio::test]
async fn a_guessed_or_missing_secret_is_refused_before_the_body_is_read() {
    let (mut listener, _) = listener().await;
    let guessed = listener.url("127.0.0.1", &new_token().unwrap());
    let (status, _) = post(&guessed, notification()).await;
    assert_eq!(status, 403);
    // Not even XML: refused for the address alone, the body is never parsed.
    let (status, body) = post(&guessed, "<<<".into()).await;
    assert_eq!((status, body.as_str()), (403, "unknown push address\n"));
    let bare = format!("http://{}/ews/push", listener.addr);
    let (status, _) = post(&bare, notification()).await;
    assert_eq!(status, 404);
    nothing_passed_on(&mut listener);
}

#[tokio::test]
async fn another_users_secret_cannot_post_for_a_subscription() {
    let (mut listener, _) = listener().await;
    let (status, _) = post(&listener.url("127.0.0.1", "eva-secret"), notification()).await;
    assert_eq!(status, 403);
    nothing_passed_on(&mut listener);
}

#[tokio::test]
async fn an_unknown_subscription_is_told_to_unsubscribe_and_dropped() {
    let (mut listener, token) = listener().await;
    let unknown = notification().replace("XXXXX=", "ZZZZZ=");
    let (status, body) = post(&listener.url("127.0.0.1", &token), unknown).await;
    assert_eq!(status, 200);
    assert!(body.contains(">Unsubscribe<"), "{body}");
    nothing_passed_on(&mut listener);
}
