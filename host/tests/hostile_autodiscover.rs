//! Hostile Autodiscover answers and the sign-in's other HTTP peers: a redirect to a
//! host outside the mailbox's domain is not followed (nothing reaches that host),
//! plain http never carries the password, an `http://` EWS URL is refused, and
//! every reply without a length (Autodiscover, the token endpoint, an NTLM 401, a
//! streaming 500) is read only up to its cap.

#[path = "support/raw_http.rs"]
mod raw_http;
#[path = "support/wait.rs"]
mod wait;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calvert::ews::client::{ClientError, Credentials, EwsClient, RetryPolicy, ServerConfig};
use calvert::ews::discovery::{Discoverer, DiscoveryError};
use calvert::ews::request::{Mailbox, ServerVersion};
use calvert_exchange_sim::{Exchange, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// What a stand-in server answers every request with.
#[derive(Clone)]
enum Answer {
    /// A canned reply, written as is.
    Canned(String),
    /// This head (status line and headers, chunked) and a body that does not end:
    /// 16 KiB chunks up to 64 MiB, unless the peer goes away first.
    Endless(&'static str),
}

/// A loopback HTTP server that records each request's head and answers `answer`.
struct StandIn {
    addr: std::net::SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    /// The peer closed the connection while an endless body was being written.
    closed: Arc<AtomicBool>,
}

impl StandIn {
    async fn start(answer: Answer) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (log, gone) = (heads.clone(), closed.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, gone, answer) = (log.clone(), gone.clone(), answer.clone());
                tokio::spawn(serve(stream, answer, log, gone));
            }
        });
        StandIn {
            addr,
            heads,
            closed,
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Wait until the reader has hung up on the endless body.
    async fn hung_up(&self) {
        let closed = self.closed.clone();
        wait::until(wait::LIMIT, move || {
            closed
                .load(Ordering::Relaxed)
                .then_some(())
                .ok_or_else(|| "the reader has not closed the connection".to_string())
        })
        .await;
    }
}

async fn serve(
    mut stream: TcpStream,
    answer: Answer,
    log: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
) {
    loop {
        let Some(head) = raw_http::read_request(&mut stream).await else {
            return;
        };
        log.lock().unwrap().push(head);
        match &answer {
            Answer::Canned(reply) => {
                if stream.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            Answer::Endless(start) => {
                if stream.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
                for _ in 0..4096 {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        closed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                if stream.write_all(b"0\r\n\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A 200 with this SOAP GetUserSettings user response.
fn soap_answer(user: &str) -> Answer {
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>NoError</ErrorCode><UserResponses><UserResponse>{user}</UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#
    );
    Answer::Canned(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn redirect_url(target: &str) -> Answer {
    soap_answer(&format!(
        "<ErrorCode>RedirectUrl</ErrorCode><RedirectTarget>{target}</RedirectTarget>"
    ))
}

fn found(ews_url: &str) -> Answer {
    soap_answer(&format!(
        "<ErrorCode>NoError</ErrorCode><UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>{ews_url}</Value></UserSetting></UserSettings>"
    ))
}

/// The https simulator as another host (`localhost`, outside `flexi.test`), and
/// its certificate in a file.
async fn foreign_simulator() -> (Server, std::path::PathBuf) {
    let exchange = Exchange::default();
    exchange.add_account("calvert", "secret", None);
    exchange.add_mailbox("kim@flexi.test");
    let server = calvert_exchange_sim::start_https(exchange).await.unwrap();
    let ca = std::env::temp_dir().join(format!(
        "calvert-hostile-ad-{}-{}.pem",
        std::process::id(),
        server.addr.port()
    ));
    std::fs::write(&ca, server.certificate_pem().unwrap()).unwrap();
    (server, ca)
}

/// A discoverer asking only `endpoint` on the stand-in.
fn discoverer(endpoint: String) -> Discoverer {
    Discoverer::new("calvert", "secret", Duration::from_secs(5))
        .unwrap()
        .with_endpoints(vec![endpoint])
}

fn svc(stand_in: &StandIn) -> String {
    format!("http://{}/autodiscover/autodiscover.svc", stand_in.addr)
}

const TEST_SERVER: &str = "127.0.0.1";

#[tokio::test]
async fn a_redirect_url_to_a_foreign_host_is_followed_only_when_allowed() {
    let (foreign, ca) = foreign_simulator().await;
    let endpoint = StandIn::start(redirect_url(&foreign.autodiscover_url())).await;
    let plain = [TEST_SERVER.to_string()];
    let asked = || {
        discoverer(svc(&endpoint))
            .with_plain_http(&plain)
            .with_ca_bundle(&ca)
            .unwrap()
    };
    let err = asked().discover("kim@flexi.test").await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Refused { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("localhost") && message.contains("add it to autodiscover_hosts"),
        "{message}"
    );
    assert_eq!(
        foreign.exchange.autodiscover_requests(),
        0,
        "nothing, so no password, reached the other host"
    );

    let settings = asked()
        .with_autodiscover_hosts(&["LocalHost".to_string()])
        .discover("kim@flexi.test")
        .await
        .unwrap();
    assert_eq!(settings.ews_url, foreign.ews_url());
    assert_eq!(foreign.exchange.autodiscover_requests(), 1);
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn the_plain_http_step_sends_no_credentials_and_its_redirect_is_checked() {
    let (foreign, ca) = foreign_simulator().await;
    let location = format!(
        "HTTP/1.1 302 Found\r\nlocation: {}\r\ncontent-length: 0\r\n\r\n",
        foreign.autodiscover_url()
    );
    let step = StandIn::start(Answer::Canned(location)).await;
    let xml = format!("http://{}/autodiscover/autodiscover.xml", step.addr);
    let err = discoverer(xml.clone())
        .with_ca_bundle(&ca)
        .unwrap()
        .discover("kim@flexi.test")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("localhost"), "{err}");
    assert_eq!(foreign.exchange.autodiscover_requests(), 0);
    let settings = discoverer(xml)
        .with_ca_bundle(&ca)
        .unwrap()
        .with_autodiscover_hosts(&["localhost".to_string()])
        .discover("kim@flexi.test")
        .await
        .unwrap();
    assert_eq!(settings.ews_url, foreign.ews_url());
    let heads = step.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in heads {
        assert!(head.starts_with("GET "), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "{head}"
        );
    }
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn credentials_never_go_over_plain_http_without_an_opt_in() {
    let endpoint = StandIn::start(found("https://mail.flexi.test/EWS/Exchange.asmx")).await;
    let err = discoverer(svc(&endpoint))
        .discover("kim@flexi.test")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("only for a redirect to https"),
        "an unauthenticated answer is not used: {err}"
    );
    let heads = endpoint.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].starts_with("GET "), "{}", heads[0]);
    assert!(
        !heads[0].to_ascii_lowercase().contains("authorization"),
        "{}",
        heads[0]
    );
}

#[tokio::test]
async fn an_http_ews_url_is_refused_and_never_gets_the_password() {
    let ews = StandIn::start(Answer::Canned(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".into(),
    ))
    .await;
    let ews_url = format!("http://localhost:{}/EWS/Exchange.asmx", ews.addr.port());
    let endpoint = StandIn::start(found(&ews_url)).await;
    let err = discoverer(svc(&endpoint))
        .with_plain_http(&[TEST_SERVER.to_string()])
        .discover("kim@flexi.test")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::InsecureEwsUrl { .. }),
        "{err:?}"
    );
    let sentence = "which is not https, and Calvert refuses it so that the password is never sent in clear: publish an https EWS URL in Exchange, or set the server's url by hand";
    assert!(err.to_string().contains(sentence), "{err}");

    // calvert check, which signs in at the URL Autodiscover gives.
    let endpoint_url = svc(&endpoint);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_calvert"))
            .args(["check", "kim@flexi.test", "--user", "calvert"])
            .args(["--autodiscover-url", &endpoint_url])
            .env("CALVERT_EWS_PASSWORD", "secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(sentence), "{stderr}");
    assert!(ews.heads().is_empty(), "{:?}", ews.heads());
}

const CHUNKED_200: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn an_endless_autodiscover_reply_stops_at_the_cap() {
    let endpoint = StandIn::start(Answer::Endless(CHUNKED_200)).await;
    let err = discoverer(svc(&endpoint))
        .with_plain_http(&[TEST_SERVER.to_string()])
        .discover("kim@flexi.test")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("larger than Calvert accepts (1048576 bytes)"),
        "{err}"
    );
    endpoint.hung_up().await;
}

fn client(url: String, credentials: Credentials) -> EwsClient {
    EwsClient::new(ServerConfig {
        url,
        credentials,
        ca_bundle: None,
        timeout: Duration::from_secs(20),
        version: ServerVersion::Exchange2016,
        retry: RetryPolicy::none(),
    })
    .unwrap()
}

fn kim() -> Mailbox {
    Mailbox {
        primary_smtp: "kim@flexi.test".into(),
    }
}

#[tokio::test]
async fn an_endless_token_reply_stops_at_the_cap() {
    let token = StandIn::start(Answer::Endless(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    ))
    .await;
    let app = client(
        "http://127.0.0.1:9/EWS/Exchange.asmx".into(),
        Credentials::OAuth {
            token_url: format!("http://{}/token", token.addr),
            client_id: "calvert-app".into(),
            client_secret: "app-secret".into(),
            scope: "https://outlook.office365.com/.default".into(),
        },
    );
    let err = app.access_token().await.unwrap_err();
    let ClientError::Token { reason, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        reason.contains("larger than Calvert accepts (1048576 bytes)"),
        "{reason}"
    );
    token.hung_up().await;
}

#[tokio::test]
async fn an_endless_ntlm_challenge_body_stops_at_the_cap() {
    let ews = StandIn::start(Answer::Endless(
        "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: NTLM\r\ntransfer-encoding: chunked\r\n\r\n",
    ))
    .await;
    let ntlm = client(
        format!("http://{}/EWS/Exchange.asmx", ews.addr),
        Credentials::Ntlm {
            user: "FLEXI\\calvert".into(),
            password: "secret".into(),
        },
    );
    let err = ntlm.calendar(&kim(), 0, 3600, 10).await.unwrap_err();
    assert!(matches!(err, ClientError::Oversized { .. }), "{err:?}");
    assert!(
        err.to_string().contains("larger than Calvert accepts"),
        "{err}"
    );
    ews.hung_up().await;
}

#[tokio::test]
async fn an_endless_streaming_error_page_stops_at_the_cap() {
    let ews = StandIn::start(Answer::Endless(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/xml\r\ntransfer-encoding: chunked\r\n\r\n",
    ))
    .await;
    let basic = client(
        format!("http://{}/EWS/Exchange.asmx", ews.addr),
        Credentials::Basic {
            user: "calvert".into(),
            password: "secret".into(),
        },
    );
    let Err(err) = basic
        .stream_events(&kim(), &["sub-1"], 30, Duration::from_secs(20))
        .await
    else {
        panic!("a 500 opened a stream");
    };
    assert!(matches!(err, ClientError::Oversized { .. }), "{err:?}");
    ews.hung_up().await;
}
