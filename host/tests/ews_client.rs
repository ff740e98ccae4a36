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
    let end = client
        .stream_events(
            &kim(),
            &[&subscription.subscription_id],
            1,
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
    assert_eq!(end, StreamEnd::Closed);
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
        envelopes >= 4,
        "keep-alives arrive between events ({envelopes} envelopes)"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_a_clear_error() {
    let server = simulator().await;
    let client = client(&server, "secret");
    let subscription = client.subscribe_streaming(&kim()).await.unwrap();
    server.exchange.inject(Fault::DropStream);
    let err = client
        .stream_events(
            &kim(),
            &[&subscription.subscription_id],
            1,
            Duration::from_secs(5),
            |_| true,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::StreamDropped { .. }), "{err:?}");
    assert_eq!(err.action(), EwsAction::Resubscribe);
    // An unknown subscription answers with an error envelope on an open connection.
    let mut failed = Vec::new();
    client
        .stream_events(
            &kim(),
            &["no-such-subscription"],
            1,
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
        let end = client
            .stream_events(
                &kim(),
                &[&subscription.subscription_id],
                1,
                Duration::from_secs(5),
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(end, StreamEnd::TokenRefresh);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "renewed before the 1 s token expired, not at the 10 s stream end"
        );
        let before = server.exchange.tokens_issued();
        // Reconnecting fetches a new token.
        let mut replies = 0;
        client
            .stream_events(
                &kim(),
                &[&subscription.subscription_id],
                1,
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
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = simulator().await;
    let wanted = std::sync::Arc::new(AtomicBool::new(true));
    let keep = wanted.clone();
    let mut listener = calvert::ews::push::listen(
        "127.0.0.1:0".parse().unwrap(),
        std::sync::Arc::new(move |_: &str| keep.load(Ordering::SeqCst)),
    )
    .await
    .unwrap();
    let client = client(&server, "secret");
    let subscription = client
        .subscribe_push(&kim(), &listener.url("127.0.0.1"), None, 1)
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

    // Calvert no longer wants it: the answer says Unsubscribe and Exchange drops it.
    wanted.store(false, Ordering::SeqCst);
    server.exchange.delete_item("kim@flexi.se", "kim-push");
    let notification = tokio::time::timeout(Duration::from_secs(5), listener.notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.events[0].kind, EventKind::Deleted);
    for _ in 0..50 {
        if !server
            .exchange
            .has_subscription(&subscription.subscription_id)
        {
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
    client
        .stream_events(
            &kim(),
            &[&second.subscription_id],
            1,
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

    fn discoverer(server: &Server) -> Discoverer {
        Discoverer::new("calvert", "secret", Duration::from_secs(5))
            .unwrap()
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
