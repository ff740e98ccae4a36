//! Calvert's EWS client against the Exchange simulator: reads, and every injected
//! fault becomes a clear, typed error with its action.

use std::time::Duration;

use calvert::component::wit::{FreeBusy, Response, Trigger};
use calvert::ews::client::{ClientError, Credentials, EwsClient, RetryPolicy, ServerConfig};
use calvert::ews::request::{Mailbox, ServerVersion};
use calvert::ews::response::EwsAction;
use calvert::ews::xml::XmlError;
use calvert_exchange_sim::{Exchange, Fault, Server, SimItem, start};

const NOW: i64 = 1_795_597_200; // 2026-11-25T10:00:00+01:00

async fn simulator() -> Server {
    let exchange = Exchange::default();
    exchange.add_account(
        "calvert",
        "secret",
        Some(&["kim@flexi.se", "ghost@flexi.se"]),
    );
    exchange.add_mailbox("kim@flexi.se");
    exchange.add_mailbox("eva@flexi.se");
    exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("kim-1", "Lunch med Eva", NOW - 600, NOW + 1800),
    );
    let mut meeting = SimItem::appointment("kim-2", "Möte <budget> & plan", NOW + 3600, NOW + 7200);
    meeting.is_meeting = true;
    meeting.my_response = "NoResponseReceived".into();
    exchange.put_item("kim@flexi.se", meeting);
    start(exchange).await.expect("the simulator starts")
}

fn client(server: &Server, password: &str) -> EwsClient {
    EwsClient::new(ServerConfig {
        url: server.ews_url(),
        credentials: Credentials::Basic {
            user: "calvert".into(),
            password: password.into(),
        },
        ca_bundle: None,
        timeout: Duration::from_secs(5),
        version: ServerVersion::Exchange2010Sp2,
        retry: RetryPolicy::none(),
    })
    .expect("a valid configuration")
}

fn kim() -> Mailbox {
    Mailbox {
        primary_smtp: "kim@flexi.se".into(),
    }
}

/// Hold a streaming connection (asked to stay open a minute) and hand each reply to
/// `on_reply` until it returns false (then None) or the connection ends (its end).
async fn read_stream(
    client: &EwsClient,
    mailbox: &Mailbox,
    subscription_ids: &[&str],
    read_timeout: Duration,
    mut on_reply: impl FnMut(calvert::ews::notification::EventsReply) -> bool,
) -> Result<Option<calvert::ews::client::StreamEnd>, ClientError> {
    use calvert::ews::client::Streamed;
    let mut stream = client
        .stream_events(mailbox, subscription_ids, 1, read_timeout)
        .await?;
    loop {
        match stream.next().await? {
            Streamed::Reply(reply) => {
                if !on_reply(reply) {
                    return Ok(None);
                }
            }
            Streamed::End(end) => return Ok(Some(end)),
        }
    }
}

#[tokio::test]
async fn reads_the_calendar_window_and_decides() {
    let server = simulator().await;
    let client = client(&server, "secret");
    let items = client
        .calendar(&kim(), NOW - 86_400, NOW + 86_400, 1000)
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    let meeting = items.iter().find(|i| i.id == "kim-2").unwrap();
    assert_eq!(meeting.subject, "Möte <budget> & plan");
    assert!(meeting.is_meeting);
    assert_eq!(
        (meeting.free_busy, meeting.response),
        (FreeBusy::Busy, Response::NoResponse)
    );
    assert!(meeting.change_key.starts_with("CK-kim-2"));
    assert_eq!(server.exchange.requests(), ["FindItem", "GetItem"]);
    // The simulator says 15.2 (Exchange 2019): later requests ask for Exchange2016.
    assert_eq!(client.server_version(), ServerVersion::Exchange2016);

    let mut core = calvert::DecisionCore::load().unwrap().instance();
    let triggers = [Trigger {
        word: "lunch".into(),
        reason: "LUNCH".into(),
    }];
    let report = calvert::check::run(
        &client,
        &mut core,
        "kim@flexi.se",
        "Europe/Stockholm",
        &triggers,
        NOW,
    )
    .await
    .unwrap();
    let diversion = report.decision.diversion.clone().unwrap();
    assert_eq!(
        (diversion.reason.as_str(), diversion.until),
        ("LUNCH", NOW + 1800)
    );
    assert!(report.text(&mut core).contains("diverted, reason LUNCH"));
}

#[tokio::test]
async fn a_window_with_more_items_than_a_page_is_split() {
    let server = simulator().await;
    for i in 0..30 {
        let start = NOW + i * 1800;
        server.exchange.put_item(
            "kim@flexi.se",
            SimItem::appointment(&format!("many-{i:02}"), "Kund", start, start + 900),
        );
    }
    let items = client(&server, "secret")
        .calendar(&kim(), NOW - 86_400, NOW + 86_400, 8)
        .await
        .unwrap();
    assert_eq!(
        items.len(),
        32,
        "every item once, none lost at the split points"
    );
    let finds = server
        .exchange
        .requests()
        .iter()
        .filter(|r| *r == "FindItem")
        .count();
    assert!(finds > 3, "the window was split ({finds} FindItem calls)");
}

#[tokio::test]
async fn wrong_password_names_the_account() {
    let server = simulator().await;
    let err = client(&server, "wrong")
        .calendar(&kim(), NOW, NOW + 3600, 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    assert!(
        err.to_string().contains("\"calvert\"") && err.to_string().contains("password"),
        "{err}"
    );
}

#[tokio::test]
async fn impersonation_denied_and_missing_mailbox() {
    let server = simulator().await;
    let client = client(&server, "secret");
    let eva = Mailbox {
        primary_smtp: "eva@flexi.se".into(),
    };
    let err = client
        .calendar(&eva, NOW, NOW + 3600, 1000)
        .await
        .unwrap_err();
    assert_eq!(err.action(), EwsAction::MailboxNotAllowed);
    assert!(
        err.to_string().contains("ApplicationImpersonation"),
        "{err}"
    );
    let ghost = Mailbox {
        primary_smtp: "ghost@flexi.se".into(),
    };
    let err = client
        .calendar(&ghost, NOW, NOW + 3600, 1000)
        .await
        .unwrap_err();
    assert_eq!(err.action(), EwsAction::Rediscover, "{err}");
}

#[tokio::test]
async fn injected_faults_become_typed_errors() {
    let server = simulator().await;
    let client = client(&server, "secret");
    let mailbox = kim();
    let read = || client.calendar(&mailbox, NOW, NOW + 3600, 1000);

    server
        .exchange
        .inject(Fault::ServerBusy { back_off_ms: 1500 });
    match read().await.unwrap_err() {
        ClientError::Ews { error, .. } => {
            assert_eq!(error.action(), EwsAction::RetryLater);
            assert_eq!(error.back_off(), Some(Duration::from_millis(1500)));
        }
        other => panic!("expected ErrorServerBusy, got {other:?}"),
    }

    server.exchange.inject(Fault::Status(503));
    let err = read().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Unavailable { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(err.action(), EwsAction::RetryLater);

    server.exchange.inject(Fault::HtmlPage);
    let err = read().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Ews {
                error: calvert::ews::response::EwsError::Xml(XmlError::NotXml { .. }),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTML"), "{err}");

    server.exchange.inject(Fault::Truncated);
    let err = read().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Ews {
                error: calvert::ews::response::EwsError::Xml(XmlError::Malformed { .. }),
                ..
            }
        ),
        "{err:?}"
    );

    // After the faults the server answers again.
    assert_eq!(read().await.unwrap().len(), 1);
}

#[tokio::test]
async fn slow_and_unreachable_servers() {
    let server = simulator().await;
    server.exchange.inject(Fault::Slow(Duration::from_secs(3)));
    let impatient = EwsClient::new(ServerConfig {
        timeout: Duration::from_millis(300),
        ..client(&server, "secret").config().clone()
    })
    .unwrap();
    let err = impatient
        .calendar(&kim(), NOW, NOW + 3600, 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.action(), EwsAction::RetryLater);

    let addr = server.addr;
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gone = EwsClient::new(ServerConfig {
        url: format!("http://{addr}/EWS/Exchange.asmx"),
        ..impatient.config().clone()
    })
    .unwrap();
    let err = gone
        .calendar(&kim(), NOW, NOW + 3600, 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
}

#[test]
fn bad_urls_and_ca_bundles_are_configuration_errors() {
    let config = ServerConfig {
        url: "ftp://mail.flexi.se/EWS".into(),
        credentials: Credentials::Basic {
            user: "calvert".into(),
            password: "x".into(),
        },
        ca_bundle: None,
        timeout: Duration::from_secs(1),
        version: ServerVersion::Exchange2016,
        retry: RetryPolicy::none(),
    };
    assert!(matches!(
        EwsClient::new(config.clone()),
        Err(ClientError::Config { .. })
    ));
    let missing = ServerConfig {
        url: "https://mail.flexi.se/EWS/Exchange.asmx".into(),
        ca_bundle: Some("/nonexistent/ca.pem".into()),
        ..config
    };
    let err = EwsClient::new(missing).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn calvert_check_against_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(simulator());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    server.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("kim-now", "Lunch", now - 300, now + 1200),
    );
    let run = |password: &str, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_calvert"))
            .args([
                "check",
                "kim@flexi.se",
                "--url",
                &server.ews_url(),
                "--user",
                "calvert",
                "--zone",
                "Europe/Stockholm",
                "--trigger",
                "lunch=LUNCH",
            ])
            .args(extra)
            .env("CALVERT_EWS_PASSWORD", password)
            .output()
            .unwrap()
    };
    let out = run("secret", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("now: diverted, reason LUNCH"), "{stdout}");
    let out = run("secret", &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["diversion"]["item_id"], "kim-now");
    // Without --url, Autodiscover finds the server.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_calvert"))
        .args([
            "check",
            "kim@flexi.se",
            "--user",
            "calvert",
            "--trigger",
            "lunch=LUNCH",
        ])
        .arg("--autodiscover-url")
        .arg(format!(
            "http://{}/autodiscover/autodiscover.svc",
            server.addr
        ))
        .env("CALVERT_EWS_PASSWORD", "secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Autodiscover: kim@flexi.se is served by")
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("now: diverted, reason LUNCH"));
    let out = run("wrong", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("check the user name and password"));
}

#[tokio::test]
async fn pull_notifications_follow_changes_and_expiry_asks_to_resubscribe() {
    use calvert::ews::notification::EventKind;
    let server = simulator().await;
    let client = client(&server, "secret");
    let subscription = client.subscribe_pull(&kim(), None, 30).await.unwrap();
    let mut watermark = subscription
        .watermark
        .clone()
        .expect("pull subscriptions start with a watermark");

    // Nothing happened yet: a status event moves nothing.
    let reply = client
        .get_events(&kim(), &subscription.subscription_id, &watermark)
        .await
        .unwrap();
    assert_eq!(reply.notifications[0].events[0].kind, EventKind::Status);

    server.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("kim-3", "Tandläkare", NOW + 9000, NOW + 10800),
    );
    server.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("kim-1", "Lunch med Eva", NOW - 600, NOW + 2400),
    );
    server.exchange.delete_item("kim@flexi.se", "kim-2");
    let reply = client
        .get_events(&kim(), &subscription.subscription_id, &watermark)
        .await
        .unwrap();
    let events: Vec<_> = reply.notifications[0]
        .events
        .iter()
        .map(|e| (e.kind, e.item_id.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        events,
        [
            (EventKind::Created, "kim-3".into()),
            (EventKind::Modified, "kim-1".into()),
            (EventKind::Deleted, "kim-2".into())
        ]
    );
    watermark = reply.notifications[0]
        .events
        .last()
        .and_then(|e| e.watermark.clone())
        .unwrap();
    let reply = client
        .get_events(&kim(), &subscription.subscription_id, &watermark)
        .await
        .unwrap();
    assert_eq!(
        reply.notifications[0].events.len(),
        1,
        "only a status event after the last watermark"
    );

    server.exchange.expire_subscriptions("kim@flexi.se");
    let err = client
        .get_events(&kim(), &subscription.subscription_id, &watermark)
        .await
        .unwrap_err();
    assert_eq!(err.action(), EwsAction::Resubscribe, "{err}");
    let again = client.subscribe_pull(&kim(), None, 30).await.unwrap();
    assert_ne!(again.subscription_id, subscription.subscription_id);
    let err = client
        .get_events(&kim(), "no-such-subscription", &watermark)
        .await
        .unwrap_err();
    assert_eq!(
        err.code_action(),
        Some(("ErrorSubscriptionNotFound", EwsAction::Resubscribe))
    );
}

#[tokio::test]
async fn streaming_notifications_arrive_as_they_happen_and_end_cleanly() {
    use calvert::ews::client::StreamEnd;
    use calvert::ews::notification::EventKind;
    let server = simulator().await;
    server
        .exchange
        .set_stream_lifetime(Duration::from_millis(800));
    server.exchange.set_heartbeat(Duration::from_millis(100));
    let client = client(&server, "secret");
    let subscription = client.subscribe_streaming(&kim()).await.unwrap();
    assert_eq!(
        subscription.watermark, None,
        "streaming subscriptions start without a watermark"
    );

    let exchange = server.exchange.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        exchange.put_item(
            "kim@flexi.se",
            SimItem::appointment("kim-9", "Möte", NOW, NOW + 600),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        exchange.expire_subscriptions("kim@flexi.se");
    });
    let mut events = Vec::new();
    let mut failures = Vec::new();
    let mut envelopes = 0;
    let end = read_stream(
        &client,
        &kim(),
        &[&subscription.subscription_id],
        Duration::from_secs(5),
        |reply| {
            envelopes += 1;
            for n in &reply.notifications {
                events.extend(n.events.iter().map(|e| (e.kind, e.item_id.clone())));
            }
            failures.extend(
                reply
                    .failed
                    .iter()
                    .map(|(ids, e)| (ids.clone(), e.action())),
            );
            true
        },
    )
    .await
    .unwrap();
    assert_eq!(end, Some(StreamEnd::Closed));
    assert_eq!(events, [(EventKind::Created, Some("kim-9".to_string()))]);
    assert_eq!(
        failures,
        [(
            vec![subscription.subscription_id.clone()],
            EwsAction::Resubscribe
        )],
        "an expired subscription on an open stream"
    );
    assert!(
        envelopes >= 7,
        "keep-alives arrive between events ({envelopes} envelopes)"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_a_clear_error() {
    let server = simulator().await;
    let client = client(&server, "secret");
    let subscription = client.subscribe_streaming(&kim()).await.unwrap();
    server.exchange.inject(Fault::DropStream);
    let err = read_stream(
        &client,
        &kim(),
        &[&subscription.subscription_id],
        Duration::from_secs(5),
        |_| true,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::StreamDropped { .. }), "{err:?}");
    assert_eq!(err.action(), EwsAction::Resubscribe);
    // An unknown subscription answers with an error envelope on an open connection.
    let mut failed = Vec::new();
    read_stream(
        &client,
        &kim(),
        &["no-such-subscription"],
        Duration::from_secs(5),
        |reply| {
            failed.extend(
                reply
                    .failed
                    .iter()
                    .map(|(_, e)| e.code().map(str::to_string)),
            );
            false
        },
    )
    .await
    .unwrap();
    assert_eq!(failed, [Some("ErrorSubscriptionNotFound".to_string())]);
}

#[tokio::test]
async fn sync_folder_items_and_writes_round_trip() {
    let server = simulator().await;
    let client = client(&server, "secret");
    // The first round lists everything; pages of 1 need a loop.
    let mut state: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let round = client
            .sync_folder_items(&kim(), state.as_deref(), 1)
            .await
            .unwrap();
        seen.extend(round.changes.clone());
        state = Some(round.sync_state.clone());
        if round.includes_last_item_in_range {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // Write: create, update with the right and a stale change key, delete.
    let mut item = calvert::component::wit::CalendarItem::appointment("", NOW + 7200, NOW + 9000);
    item.subject = "Kundmöte (från affärssystemet)".into();
    let (id, key) = client.create_item(&kim(), &item).await.unwrap();
    item.end = NOW + 10_800;
    let new_key = client.update_item(&kim(), &id, &key, &item).await.unwrap();
    assert_ne!(new_key, key);
    let err = client
        .update_item(&kim(), &id, &key, &item)
        .await
        .unwrap_err();
    assert_eq!(
        err.code_action(),
        Some(("ErrorIrresolvableConflict", EwsAction::Refetch))
    );
    let items = client
        .calendar(&kim(), NOW - 86_400, NOW + 86_400, 1000)
        .await
        .unwrap();
    let written = items
        .iter()
        .find(|i| i.id == id)
        .expect("the created item reads back");
    assert_eq!(
        (written.subject.as_str(), written.end),
        ("Kundmöte (från affärssystemet)", NOW + 10_800)
    );
    client
        .delete_item(&kim(), &id, Some(&new_key))
        .await
        .unwrap();

    // The next round reports exactly what changed since the state.
    let round = client
        .sync_folder_items(&kim(), state.as_deref(), 512)
        .await
        .unwrap();
    assert!(
        round.changes.is_empty(),
        "created and deleted within the round: {:?}",
        round.changes
    );
    server.exchange.delete_item("kim@flexi.se", "kim-1");
    let round = client
        .sync_folder_items(&kim(), state.as_deref(), 512)
        .await
        .unwrap();
    assert_eq!(
        round.changes,
        [calvert::ews::calendar::Change::Deleted { id: "kim-1".into() }]
    );

    let err = client
        .sync_folder_items(&kim(), Some("not-a-state"), 512)
        .await
        .unwrap_err();
    assert_eq!(err.action(), EwsAction::FullResync);
    let err = client
        .delete_item(&kim(), "no-such-item", None)
        .await
        .unwrap_err();
    assert_eq!(err.action(), EwsAction::TreatAsDeleted);
}

#[tokio::test]
async fn the_ews_source_writes_calendar_items_with_typed_results() {
    use calvert::service::EwsSource;
    use calvert::service::source::{CalendarSource, CalendarWriter, SourceError, WriteError};
    let server = simulator().await;
    let credentials = Credentials::Basic {
        user: "calvert".into(),
        password: "secret".into(),
    };
    let source = EwsSource::new(
        "sim",
        Some(server.ews_url()),
        credentials,
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let kim = "kim@flexi.se";
    let mut item = calvert::component::wit::CalendarItem::appointment("", NOW + 7200, NOW + 9000);
    item.subject = "Planering".into();
    let created = source.create(kim, &item).await.unwrap();
    item.end = NOW + 10_800;
    let updated = source.update(kim, &created, &item).await.unwrap();
    assert_eq!(updated.id, created.id);
    assert_ne!(updated.change_key, created.change_key);
    let stale = source.update(kim, &created, &item).await.unwrap_err();
    assert!(matches!(stale, WriteError::Changed(_)), "{stale:?}");
    let read = source
        .calendar(kim, NOW - 86_400, NOW + 86_400)
        .await
        .unwrap();
    assert!(
        read.iter()
            .any(|i| i.id == created.id && i.subject == "Planering" && i.end == NOW + 10_800),
        "{read:?}"
    );
    let stale = source.delete(kim, &created).await.unwrap_err();
    assert!(matches!(stale, WriteError::Changed(_)), "{stale:?}");
    source.delete(kim, &updated).await.unwrap();
    let gone = source.delete(kim, &updated).await.unwrap_err();
    assert!(matches!(gone, WriteError::Gone(_)), "{gone:?}");
    // A mailbox the service account may not impersonate is the administrator's to fix.
    let denied = source.create("eva@flexi.se", &item).await.unwrap_err();
    assert!(
        matches!(denied, WriteError::Source(SourceError::Mailbox(_))),
        "{denied:?}"
    );
    assert!(
        denied.to_string().contains("ApplicationImpersonation"),
        "{denied}"
    );
}

mod oauth {
    use super::*;
    use calvert::ews::client::StreamEnd;

    fn app_client(server: &Server, secret: &str) -> EwsClient {
        EwsClient::new(ServerConfig {
            url: server.ews_url(),
            credentials: Credentials::OAuth {
                token_url: server.token_url(),
                client_id: "calvert-app".into(),
                client_secret: secret.into(),
                scope: "https://outlook.office365.com/.default".into(),
            },
            ca_bundle: None,
            timeout: Duration::from_secs(5),
            version: ServerVersion::Exchange2016,
            retry: RetryPolicy::none(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn tokens_are_cached_and_renewed_when_revoked() {
        let server = simulator().await;
        server
            .exchange
            .add_app("calvert-app", "app-secret", None, Duration::from_secs(3600));
        let client = app_client(&server, "app-secret");
        assert_eq!(
            client
                .calendar(&kim(), NOW - 3600, NOW + 3600, 1000)
                .await
                .unwrap()
                .len(),
            1
        );
        client
            .calendar(&kim(), NOW - 3600, NOW + 3600, 1000)
            .await
            .unwrap();
        assert_eq!(
            server.exchange.tokens_issued(),
            1,
            "one token for many calls"
        );
        server.exchange.revoke_tokens();
        client
            .calendar(&kim(), NOW - 3600, NOW + 3600, 1000)
            .await
            .unwrap();
        assert_eq!(
            server.exchange.tokens_issued(),
            2,
            "a 401 fetched a fresh token once"
        );
        // Never the secret in debug output.
        assert!(!format!("{:?}", client.config()).contains("app-secret"));
    }

    #[tokio::test]
    async fn a_wrong_secret_is_a_clear_error() {
        let server = simulator().await;
        server
            .exchange
            .add_app("calvert-app", "app-secret", None, Duration::from_secs(3600));
        let err = app_client(&server, "wrong")
            .calendar(&kim(), NOW, NOW + 3600, 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Token { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("calvert-app")
                && text.contains("Invalid client secret")
                && !text.contains("wrong"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_stream_ends_before_its_token_expires_and_reconnects_with_a_new_one() {
        let server = simulator().await;
        server
            .exchange
            .add_app("calvert-app", "app-secret", None, Duration::from_secs(1));
        server.exchange.set_stream_lifetime(Duration::from_secs(10));
        let client = app_client(&server, "app-secret");
        let subscription = client.subscribe_streaming(&kim()).await.unwrap();
        let started = std::time::Instant::now();
        let end = read_stream(
            &client,
            &kim(),
            &[&subscription.subscription_id],
            Duration::from_secs(5),
            |_| true,
        )
        .await
        .unwrap();
        assert_eq!(end, Some(StreamEnd::TokenRefresh));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "renewed before the 1 s token expired, not at the 10 s stream end"
        );
        let before = server.exchange.tokens_issued();
        // Reconnecting fetches a new token.
        let mut replies = 0;
        read_stream(
            &client,
            &kim(),
            &[&subscription.subscription_id],
            Duration::from_secs(5),
            |_| {
                replies += 1;
                replies < 2
            },
        )
        .await
        .unwrap();
        assert_eq!(server.exchange.tokens_issued(), before + 1);
    }
}

mod retries {
    use super::*;

    fn patient(server: &Server) -> EwsClient {
        EwsClient::new(ServerConfig {
            retry: RetryPolicy {
                attempts: 4,
                base: Duration::from_millis(20),
                max: Duration::from_secs(2),
            },
            ..client(server, "secret").config().clone()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_the_servers_back_off() {
        let server = simulator().await;
        let client = patient(&server);
        server
            .exchange
            .inject(Fault::ServerBusy { back_off_ms: 300 });
        server.exchange.inject(Fault::Status(503));
        server.exchange.inject(Fault::Status(401));
        let started = std::time::Instant::now();
        let page = client
            .find_page(&kim(), NOW - 3600, NOW + 3600, 1000)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "waited the server's BackOffMilliseconds"
        );
        assert_eq!(
            server.exchange.requests().len(),
            4,
            "busy, 503, 401, then the answer"
        );
    }

    #[tokio::test]
    async fn a_back_off_longer_than_the_policy_is_left_to_the_caller() {
        let server = simulator().await;
        server.exchange.inject(Fault::ServerBusy {
            back_off_ms: 600_000,
        });
        let started = std::time::Instant::now();
        let err = patient(&server)
            .find_page(&kim(), NOW, NOW + 3600, 1000)
            .await
            .unwrap_err();
        assert_eq!(
            err.code_action(),
            Some(("ErrorServerBusy", EwsAction::RetryLater))
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "did not sleep ten minutes"
        );
    }

    #[tokio::test]
    async fn persistent_401_and_lost_create_replies_are_not_repeated_blindly() {
        let server = simulator().await;
        let mut config = patient(&server).config().clone();
        config.credentials = Credentials::Basic {
            user: "calvert".into(),
            password: "wrong".into(),
        };
        let wrong = EwsClient::new(config).unwrap();
        assert!(matches!(
            wrong.find_page(&kim(), NOW, NOW + 3600, 1000).await,
            Err(ClientError::Unauthorized { .. })
        ));
        assert_eq!(
            server.exchange.requests().len(),
            0,
            "401s never reach the operation"
        );

        // The create reply is cut off after the server made the item: no second create.
        let client = patient(&server);
        server.exchange.inject(Fault::Truncated);
        let item = calvert::component::wit::CalendarItem::appointment("", NOW, NOW + 600);
        assert!(client.create_item(&kim(), &item).await.is_err());
        let creates = server
            .exchange
            .requests()
            .iter()
            .filter(|r| *r == "CreateItem")
            .count();
        assert_eq!(creates, 1);
    }
}

#[tokio::test]
async fn push_notifications_reach_the_listener_and_unsubscribe_ends_them() {
    use calvert::ews::notification::EventKind;
    use calvert::ews::push::{PushSubscribers, Verdict};
    use std::sync::atomic::{AtomicBool, Ordering};
    /// One secret; its subscription is wanted while `wanted` holds.
    struct Book {
        wanted: std::sync::Arc<AtomicBool>,
    }
    impl PushSubscribers for Book {
        fn knows(&self, token: &str) -> bool {
            token == "s3cret"
        }
        fn verdict(&self, _token: &str, _subscription_id: &str) -> Verdict {
            if self.wanted.load(Ordering::SeqCst) {
                Verdict::Forward
            } else {
                Verdict::Unsubscribe
            }
        }
    }
    let server = simulator().await;
    let wanted = std::sync::Arc::new(AtomicBool::new(true));
    let mut listener = calvert::ews::push::listen(
        "127.0.0.1:0".parse().unwrap(),
        std::sync::Arc::new(Book {
            wanted: wanted.clone(),
        }),
    )
    .await
    .unwrap();
    let client = client(&server, "secret");
    let subscription = client
        .subscribe_push(&kim(), &listener.url("127.0.0.1", "s3cret"), None, 1)
        .await
        .unwrap();

    server.exchange.put_item(
        "kim@flexi.se",
        SimItem::appointment("kim-push", "Lunch", NOW, NOW + 600),
    );
    let notification = tokio::time::timeout(Duration::from_secs(5), listener.notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.subscription_id, subscription.subscription_id);
    assert_eq!(notification.events[0].kind, EventKind::Created);
    assert_eq!(notification.events[0].item_id.as_deref(), Some("kim-push"));

    // Calvert no longer wants it: the answer says Unsubscribe, Exchange drops it, and
    // the notification is not passed on.
    wanted.store(false, Ordering::SeqCst);
    server.exchange.delete_item("kim@flexi.se", "kim-push");
    for _ in 0..250 {
        if !server
            .exchange
            .has_subscription(&subscription.subscription_id)
        {
            assert!(listener.notifications.try_recv().is_err(), "dropped");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the subscription should end after Unsubscribe");
}

#[tokio::test]
async fn subscription_calls_keep_the_groups_back_end_affinity() {
    let server = simulator().await;
    let client = client(&server, "secret");
    let first = client.subscribe_pull(&kim(), None, 5).await.unwrap();
    assert_eq!(
        client.affinity_cookie().as_deref(),
        Some("SIMBE01.flexi.local~1941996295")
    );
    let second = client.subscribe_streaming(&kim()).await.unwrap();
    client
        .get_events(
            &kim(),
            &first.subscription_id,
            first.watermark.as_deref().unwrap(),
        )
        .await
        .unwrap();
    read_stream(
        &client,
        &kim(),
        &[&second.subscription_id],
        Duration::from_secs(5),
        |_| false,
    )
    .await
    .unwrap();
    // Calendar reads are not subscription calls: no cookie.
    client.find_page(&kim(), NOW, NOW + 3600, 10).await.unwrap();
    let cookie = Some("SIMBE01.flexi.local~1941996295".to_string());
    assert_eq!(
        server.exchange.affinity(),
        [
            ("Subscribe".to_string(), None),
            ("Subscribe".to_string(), cookie.clone()),
            ("GetEvents".to_string(), cookie.clone()),
            ("GetStreamingEvents".to_string(), cookie),
            ("FindItem".to_string(), None),
        ]
    );
}

mod autodiscover {
    use super::*;
    use calvert::ews::autodiscover::AutodiscoverError;
    use calvert::ews::discovery::{Discoverer, DiscoveryError};

    /// The simulator over plain http, opted in by name as a test server.
    fn discoverer(server: &Server) -> Discoverer {
        Discoverer::new("calvert", "secret", Duration::from_secs(5))
            .unwrap()
            .with_plain_http(&[server.addr.ip().to_string()])
            .with_endpoints(vec![format!(
                "http://{}/autodiscover/autodiscover.svc",
                server.addr
            )])
    }

    #[tokio::test]
    async fn finds_the_ews_url_follows_redirects_and_caches() {
        let server = simulator().await;
        let discoverer = discoverer(&server);
        let settings = discoverer.discover("Kim@Flexi.se").await.unwrap();
        assert_eq!(settings.ews_url, server.ews_url());
        assert_eq!(settings.grouping.as_deref(), Some("SIM-GROUP-1"));
        discoverer.discover("kim@flexi.se").await.unwrap();
        assert_eq!(
            server.exchange.autodiscover_requests(),
            1,
            "the second answer came from the cache"
        );
        discoverer.forget("kim@flexi.se");
        discoverer.discover("kim@flexi.se").await.unwrap();
        assert_eq!(server.exchange.autodiscover_requests(), 2);

        server
            .exchange
            .redirect_address("kim.old@flexi.se", "kim@flexi.se");
        assert_eq!(
            discoverer
                .discover("kim.old@flexi.se")
                .await
                .unwrap()
                .ews_url,
            server.ews_url()
        );
    }

    #[tokio::test]
    async fn loops_unknown_users_and_unreachable_endpoints_are_clear_errors() {
        let server = simulator().await;
        server.exchange.redirect_address("a@flexi.se", "b@flexi.se");
        server.exchange.redirect_address("b@flexi.se", "a@flexi.se");
        let err = discoverer(&server)
            .discover("a@flexi.se")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DiscoveryError::Rules(AutodiscoverError::Loop { .. })),
            "{err:?}"
        );

        let err = discoverer(&server)
            .discover("nobody@flexi.se")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("InvalidUser"), "{err}");

        let addr = server.addr;
        drop(server);
        let gone = Discoverer::new("calvert", "secret", Duration::from_secs(2))
            .unwrap()
            .with_endpoints(vec![format!("http://{addr}/autodiscover/autodiscover.svc")]);
        let err = gone.discover("kim@flexi.se").await.unwrap_err();
        assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err:?}");
        assert!(
            err.to_string().contains("set the server's EWS URL by hand"),
            "{err}"
        );
        let err = gone.discover("not-an-address").await;
        assert!(err.is_err());
    }
}

mod ntlm {
    use super::*;
    use calvert::ews::ntlm::{Challenge, NtlmAccount, negotiate};

    /// The simulator with NTLM only (no Basic), as an IIS with only Windows
    /// Authentication enabled.
    async fn windows_only() -> Server {
        let server = simulator().await;
        server
            .exchange
            .add_account("FLEXI\\calvert-svc", "winter-2026", Some(&["kim@flexi.se"]));
        server
            .exchange
            .add_account("calvert-svc@flexi.se", "winter-2026", None);
        server.exchange.offer_auth(false, true);
        server
    }

    fn ntlm_client(server: &Server, user: &str, password: &str) -> EwsClient {
        EwsClient::new(ServerConfig {
            url: server.ews_url(),
            credentials: Credentials::Ntlm {
                user: user.into(),
                password: password.into(),
            },
            ca_bundle: None,
            timeout: Duration::from_secs(5),
            version: ServerVersion::Exchange2010Sp2,
            retry: RetryPolicy::none(),
        })
        .expect("a valid configuration")
    }

    #[tokio::test]
    async fn signs_in_once_per_connection_in_both_user_forms() {
        let server = windows_only().await;
        let client = ntlm_client(&server, "FLEXI\\calvert-svc", "winter-2026");
        let items = client
            .calendar(&kim(), NOW, NOW + 7200, 1000)
            .await
            .unwrap();
        assert_eq!(items.len(), 2);
        for _ in 0..3 {
            client.find_page(&kim(), NOW, NOW + 3600, 10).await.unwrap();
        }
        assert_eq!(
            server.exchange.ntlm_handshakes(),
            1,
            "the signed-in connection is reused: {:?}",
            server.exchange.ntlm_refusals()
        );
        assert!(server.exchange.ntlm_refusals().is_empty());
        // The same account's impersonation rights apply: eva is not allowed.
        let eva = Mailbox {
            primary_smtp: "eva@flexi.se".into(),
        };
        let err = client
            .calendar(&eva, NOW, NOW + 3600, 1000)
            .await
            .unwrap_err();
        assert_eq!(err.action(), EwsAction::MailboxNotAllowed, "{err}");

        let upn = ntlm_client(&server, "calvert-svc@flexi.se", "winter-2026");
        assert_eq!(
            upn.calendar(&kim(), NOW, NOW + 7200, 1000)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn concurrent_calls_and_a_stream_each_get_a_signed_in_connection() {
        let server = windows_only().await;
        server
            .exchange
            .set_stream_lifetime(Duration::from_millis(1500));
        let client = ntlm_client(&server, "FLEXI\\calvert-svc", "winter-2026");
        let subscription = client.subscribe_streaming(&kim()).await.unwrap();
        let streaming = {
            let client = client.clone();
            tokio::spawn(async move {
                read_stream(
                    &client,
                    &kim(),
                    &[&subscription.subscription_id],
                    Duration::from_secs(5),
                    |_| true,
                )
                .await
            })
        };
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.find_page(&kim(), NOW, NOW + 3600, 10).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(
            streaming.await.unwrap().unwrap(),
            Some(calvert::ews::client::StreamEnd::Closed)
        );
        assert!(
            server.exchange.ntlm_refusals().is_empty(),
            "{:?}",
            server.exchange.ntlm_refusals()
        );
    }

    #[tokio::test]
    async fn a_wrong_password_names_the_user_and_what_to_fix() {
        let server = windows_only().await;
        let err = ntlm_client(&server, "FLEXI\\calvert-svc", "summer-2026")
            .calendar(&kim(), NOW, NOW + 3600, 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NtlmRefused { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("FLEXI\\\\calvert-svc")
                && message.contains(&server.ews_url())
                && message.contains("check the password"),
            "{message}"
        );
        assert!(
            server.exchange.ntlm_refusals()[0].contains("does not verify"),
            "{:?}",
            server.exchange.ntlm_refusals()
        );
    }

    #[tokio::test]
    async fn schemes_the_server_does_not_offer_are_named() {
        let server = windows_only().await;
        let err = client(&server, "secret")
            .calendar(&kim(), NOW, NOW + 3600, 1000)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::SchemeNotOffered { configured: "Basic", offered, .. } if offered == "NTLM, Negotiate"),
            "{err:?}"
        );
        assert!(err.to_string().contains("--auth"), "{err}");
        server.exchange.offer_auth(true, false);
        let err = ntlm_client(&server, "FLEXI\\calvert-svc", "winter-2026")
            .calendar(&kim(), NOW, NOW + 3600, 1000)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::SchemeNotOffered { configured: "NTLM", offered, .. } if offered == "Basic"),
            "{err:?}"
        );
    }

    #[test]
    fn a_malformed_ntlm_user_is_a_configuration_error() {
        let err = EwsClient::new(ServerConfig {
            url: "https://mail1.flexi.se/EWS/Exchange.asmx".into(),
            credentials: Credentials::Ntlm {
                user: "calvert-svc".into(),
                password: "x".into(),
            },
            ca_bundle: None,
            timeout: Duration::from_secs(1),
            version: ServerVersion::Exchange2016,
            retry: RetryPolicy::none(),
        })
        .unwrap_err();
        assert!(matches!(err, ClientError::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("DOMAIN\\user"), "{err}");
    }

    /// Type 1 on one connection, Type 3 on another: refused. The same Type 3 on the
    /// challenged connection: accepted (so the refusal is the connection's doing).
    #[tokio::test]
    async fn a_handshake_split_across_connections_is_refused() {
        let server = windows_only().await;
        let envelope = calvert::ews::request::Request {
            version: ServerVersion::Exchange2010Sp2,
            mailbox: Some(&kim()),
        }
        .find_calendar_view(NOW, NOW + 3600, 10);
        let connection = || {
            reqwest::Client::builder()
                .http1_only()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap()
        };
        let post = |http: &reqwest::Client, authorization: String| {
            http.post(server.ews_url())
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("X-AnchorMailbox", "kim@flexi.se")
                .header("Authorization", authorization)
                .body(envelope.clone())
                .send()
        };
        let first = connection();
        let challenged = post(&first, format!("NTLM {}", negotiate().unwrap()))
            .await
            .unwrap();
        assert_eq!(challenged.status(), 401);
        let token = challenged
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("NTLM "))
            .expect("an NTLM challenge")
            .to_string();
        challenged.bytes().await.unwrap();
        let account = NtlmAccount::new("FLEXI\\calvert-svc", "winter-2026").unwrap();
        let authenticate = Challenge::from_base64(&token)
            .unwrap()
            .authenticate(&account)
            .unwrap();

        let other = connection();
        let refused = post(&other, format!("NTLM {authenticate}")).await.unwrap();
        assert_eq!(refused.status(), 401);
        assert!(
            server.exchange.ntlm_refusals()[0].contains("sent no challenge"),
            "{:?}",
            server.exchange.ntlm_refusals()
        );

        let accepted = post(&first, format!("NTLM {authenticate}")).await.unwrap();
        assert_eq!(accepted.status(), 200);
        assert!(accepted.text().await.unwrap().contains("FindItemResponse"));
    }

    /// The genuine Type 2 challenges of Exchange 2007 SP1 and 2010 SP2 in the
    /// recorded traces: read, answered, and the answer verifies (by the simulator's
    /// independent NTLMv2 check) for the right password only.
    #[test]
    fn recorded_exchange_challenges_get_answers_that_verify() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/ews/recorded/evolution-ews-traces");
        let mut challenges = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("the recorded traces") {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines() {
                if let Some(token) = line.strip_prefix("< WWW-Authenticate: NTLM ") {
                    challenges.insert(token.trim().to_string());
                }
            }
        }
        assert_eq!(challenges.len(), 2, "one challenge per Exchange version");
        let mut targets = Vec::new();
        for token in &challenges {
            let challenge = Challenge::from_base64(token).unwrap();
            targets.push(challenge.target_name().to_string());
            // Exchange 2010 (Windows 2008 R2) sends its clock; 2007 (Windows 2003) does not.
            assert_eq!(
                challenge.timestamp().is_some(),
                challenge.target_name() == "GSSLAB",
                "{}",
                challenge.target_name()
            );
            let account = NtlmAccount::new("GSSLAB\\calvert-svc", "winter-2026").unwrap();
            let answer = calvert_exchange_sim::ntlm::parse_authenticate(&base64_decode(
                &challenge.authenticate(&account).unwrap(),
            ))
            .unwrap();
            assert_eq!(
                (
                    answer.domain.as_str(),
                    answer.user.as_str(),
                    answer.workstation.as_str()
                ),
                ("GSSLAB", "calvert-svc", "CALVERT")
            );
            for (password, verifies) in [("winter-2026", true), ("Winter-2026", false)] {
                assert_eq!(
                    calvert_exchange_sim::ntlm::verify_ntlmv2(
                        password,
                        &answer.user,
                        &answer.domain,
                        challenge.server_challenge(),
                        &answer.nt_response,
                    ),
                    verifies,
                    "{password}"
                );
            }
        }
        targets.sort();
        assert_eq!(targets, ["EXCHANGE2007", "GSSLAB"]);
    }

    fn base64_decode(text: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    }
}

mod heartbeats {
    use super::*;
    use calvert::ews::client::StreamEnd;
    use calvert::ews::notification::ConnectionStatus;

    /// An idle stream hears a keep-alive every heartbeat interval and lives past
    /// several read timeouts; with no keep-alives it is given up after one.
    #[tokio::test]
    async fn keep_alives_are_liveness_and_silence_times_out() {
        let server = simulator().await;
        server
            .exchange
            .set_stream_lifetime(Duration::from_millis(2500));
        server.exchange.set_heartbeat(Duration::from_millis(300));
        let client = client(&server, "secret");
        let subscription = client.subscribe_streaming(&kim()).await.unwrap();
        let read_timeout = Duration::from_millis(800);
        let mut keep_alives = 0;
        let started = std::time::Instant::now();
        let end = read_stream(
            &client,
            &kim(),
            &[&subscription.subscription_id],
            read_timeout,
            |reply| {
                if reply.notifications.is_empty()
                    && reply.failed.is_empty()
                    && reply.connection == Some(ConnectionStatus::Open)
                {
                    keep_alives += 1;
                }
                true
            },
        )
        .await
        .unwrap();
        assert_eq!(end, Some(StreamEnd::Closed));
        assert!(
            started.elapsed() > read_timeout * 2,
            "the stream outlived its read timeout"
        );
        assert!(keep_alives >= 5, "{keep_alives} keep-alives in 2.5 s");

        // The server's first OK arrives, then nothing: the read timeout fires.
        server.exchange.set_heartbeat(Duration::from_secs(3600));
        let started = std::time::Instant::now();
        let mut heard = 0;
        let err = read_stream(
            &client,
            &kim(),
            &[&subscription.subscription_id],
            read_timeout,
            |_| {
                heard += 1;
                true
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::StreamStalled { .. }), "{err:?}");
        assert_eq!(heard, 1);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.action(), EwsAction::Resubscribe);
        let message = err.to_string();
        assert!(
            message.contains(&server.ews_url()) && message.contains("keep-alive"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn the_default_heartbeat_is_the_managed_apis_45_seconds() {
        assert_eq!(
            calvert_exchange_sim::DEFAULT_HEARTBEAT,
            Duration::from_secs(45)
        );
        // An idle stream with the default hears only the first OK in a second.
        let server = simulator().await;
        server.exchange.set_stream_lifetime(Duration::from_secs(1));
        let client = client(&server, "secret");
        let subscription = client.subscribe_streaming(&kim()).await.unwrap();
        let mut replies = 0;
        read_stream(
            &client,
            &kim(),
            &[&subscription.subscription_id],
            Duration::from_secs(5),
            |_| {
                replies += 1;
                true
            },
        )
        .await
        .unwrap();
        assert_eq!(replies, 2, "the first OK and the Closed");
    }
}

mod srv {
    use super::*;
    use calvert::ews::discovery::{Discoverer, DiscoveryError, NameServer};
    use hickory_resolver::proto::op::Message;
    use hickory_resolver::proto::rr::rdata::SRV;
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
    use std::sync::{Arc, Mutex};

    /// A DNS server on loopback UDP answering every SRV question with `records`
    /// (priority, weight, port, target); the names asked are kept.
    async fn dns_server(
        records: Vec<(u16, u16, u16, &'static str)>,
    ) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                reply.metadata.authoritative = true;
                for question in &query.queries {
                    reply.add_query(question.clone());
                    log.lock().unwrap().push(question.name().to_utf8());
                    if question.query_type() != RecordType::SRV {
                        continue;
                    }
                    for (priority, weight, port, target) in &records {
                        reply.add_answer(Record::from_rdata(
                            question.name().clone(),
                            60,
                            RData::SRV(SRV::new(
                                *priority,
                                *weight,
                                *port,
                                Name::from_ascii(target).unwrap(),
                            )),
                        ));
                    }
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
            }
        });
        (addr, asked)
    }

    async fn https_simulator() -> (Server, std::path::PathBuf) {
        let exchange = Exchange::default();
        exchange.add_account("calvert", "secret", None);
        exchange.add_mailbox("kim@flexi.test");
        let server = calvert_exchange_sim::start_https(exchange).await.unwrap();
        let ca = std::env::temp_dir().join(format!(
            "calvert-srv-{}-{}.pem",
            std::process::id(),
            server.addr.port()
        ));
        std::fs::write(&ca, server.certificate_pem().unwrap()).unwrap();
        (server, ca)
    }

    /// The domain's own names do not resolve (.test); its SRV record leads to the
    /// simulator over https, chosen by priority then weight.
    #[tokio::test]
    async fn the_srv_record_finds_the_server_after_the_other_steps() {
        let (server, ca) = https_simulator().await;
        let port = server.addr.port();
        let (dns, asked) = dns_server(vec![
            (10, 100, 443, "backup.flexi.test."),
            (0, 5, 443, "light.flexi.test."),
            (0, 60, port, "localhost."),
        ])
        .await;
        // The simulator's name is outside flexi.test: allowed by name.
        let discoverer = Discoverer::new("calvert", "secret", Duration::from_secs(5))
            .unwrap()
            .with_ca_bundle(&ca)
            .unwrap()
            .with_autodiscover_hosts(&["localhost".to_string()])
            .with_name_server(NameServer::Udp(dns));
        let settings = discoverer.discover("kim@flexi.test").await.unwrap();
        assert_eq!(settings.ews_url, server.ews_url());
        assert_eq!(
            asked.lock().unwrap().as_slice(),
            ["_autodiscover._tcp.flexi.test."]
        );
        assert_eq!(server.exchange.autodiscover_requests(), 1);
        let _ = std::fs::remove_file(ca);
    }

    /// Only the best record is used: when it leads nowhere, the worse one pointing
    /// at the simulator is not tried, and the error lists what was.
    #[tokio::test]
    async fn only_the_best_srv_records_are_tried() {
        let (server, ca) = https_simulator().await;
        let port = server.addr.port();
        let (dns, _) = dns_server(vec![
            (0, 60, 443, "gone.flexi.test."),
            (5, 100, port, "localhost."),
        ])
        .await;
        let discoverer = Discoverer::new("calvert", "secret", Duration::from_secs(5))
            .unwrap()
            .with_ca_bundle(&ca)
            .unwrap()
            .with_name_server(NameServer::Udp(dns));
        let err = discoverer.discover("kim@flexi.test").await.unwrap_err();
        let DiscoveryError::NotFound { tried, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(
            tried.contains(&"DNS SRV _autodiscover._tcp.flexi.test.".to_string())
                && tried
                    .contains(&"https://gone.flexi.test/autodiscover/autodiscover.svc".to_string())
                && !tried.iter().any(|t| t.contains("localhost")),
            "{tried:?}"
        );
        assert_eq!(server.exchange.autodiscover_requests(), 0);
        let _ = std::fs::remove_file(ca);
    }

    /// An SRV record naming a host outside the mailbox's domain (and not allowed)
    /// is not asked: the password never goes there, and the error names the host
    /// and the setting.
    #[tokio::test]
    async fn an_srv_record_naming_a_foreign_host_is_refused() {
        let (server, ca) = https_simulator().await;
        let (dns, _) = dns_server(vec![(0, 60, server.addr.port(), "localhost.")]).await;
        let discoverer = Discoverer::new("calvert", "secret", Duration::from_secs(5))
            .unwrap()
            .with_ca_bundle(&ca)
            .unwrap()
            .with_name_server(NameServer::Udp(dns));
        let err = discoverer.discover("kim@flexi.test").await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Refused { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("localhost, outside flexi.test")
                && message.contains("add it to autodiscover_hosts"),
            "{message}"
        );
        assert_eq!(server.exchange.autodiscover_requests(), 0);
        let _ = std::fs::remove_file(ca);
    }
}
