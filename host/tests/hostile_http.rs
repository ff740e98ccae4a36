//! Hostile or broken HTTP peers of the telephony target: redirects of every kind are
//! refusals (never followed, no header re-sent anywhere), and a reply without a
//! length is read only up to the cap.

#[path = "support/raw_http.rs"]
mod raw_http;
#[path = "support/wait.rs"]
mod wait;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calvert::diversion::{DiversionTarget, HttpTarget, MAX_REPLY_BYTES, Phone, TargetError};
use calvert::store::{DiversionCall, OutboxEntry};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// What a stand-in server answers.
#[derive(Clone)]
enum Answer {
    /// A canned reply, written as is.
    Canned(String),
    /// A 200 with a chunked body that never ends: chunks until the peer goes away.
    Endless,
}

/// A loopback HTTP server that records each request's head and answers `answer`.
struct StandIn {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    /// Body bytes written (for `Endless`).
    written: Arc<AtomicU64>,
}

impl StandIn {
    async fn start(answer: Answer) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let (log, count) = (requests.clone(), written.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, count, answer) = (log.clone(), count.clone(), answer.clone());
                tokio::spawn(serve(stream, answer, log, count));
            }
        });
        StandIn {
            addr,
            requests,
            written,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    answer: Answer,
    log: Arc<Mutex<Vec<String>>>,
    written: Arc<AtomicU64>,
) {
    let Some(head) = raw_http::read_request(&mut stream).await else {
        return;
    };
    log.lock().unwrap().push(head);
    match answer {
        Answer::Canned(reply) => {
            let _ = stream.write_all(reply.as_bytes()).await;
        }
        Answer::Endless => {
            let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(start.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
            // At most 400 MB, so a reader without a cap would be seen, not hang forever.
            for _ in 0..25_600 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                written.fetch_add(16 * 1024, Ordering::Relaxed);
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    }
}

fn target(addr: std::net::SocketAddr) -> HttpTarget {
    HttpTarget::new(
        "pbx",
        &format!("http://{addr}/"),
        &[("X-Api-Key".into(), "s3cret".into())],
        true,
        Duration::from_secs(5),
    )
    .unwrap()
}

fn phone() -> Phone {
    Phone {
        address: "kim@flexi.se".into(),
        telephony_id: "1001".into(),
    }
}

fn entry() -> OutboxEntry {
    OutboxEntry {
        address: "kim@flexi.se".into(),
        seq: 4,
        call: DiversionCall::Set {
            reason: "LUNCH".into(),
            until: 1_795_600_800,
            until_local: "2026-11-25T10:00:00+01:00[Europe/Stockholm]".into(),
        },
        decided_at: 1_795_597_200,
    }
}

fn redirect(status: &str, to: &str) -> Answer {
    Answer::Canned(format!(
        "HTTP/1.1 {status}\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n"
    ))
}

#[tokio::test]
async fn a_redirect_of_any_kind_is_a_refusal_and_is_never_followed() {
    let elsewhere = StandIn::start(Answer::Canned(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".into(),
    ))
    .await;
    let other_host = format!("http://{}/phones/1001/diversion", elsewhere.addr);
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let pbx = StandIn::start(redirect(status, &other_host)).await;
        let result = target(pbx.addr).apply(&phone(), &entry()).await;
        let Err(TargetError::Rejected { detail, .. }) = result else {
            panic!("{status}: {result:?}");
        };
        assert!(detail.contains("redirect"), "{status}: {detail}");
        assert_eq!(
            pbx.requests().len(),
            1,
            "{status}: one request, no follow-up"
        );
        assert!(pbx.requests()[0].starts_with("PUT "), "{status}");
    }
    // Nothing, and so no API key, ever reached the other host.
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn a_redirect_on_read_back_is_not_a_diversion() {
    let pbx = StandIn::start(redirect("302 Found", "http://127.0.0.1:9/")).await;
    let read = target(pbx.addr).observe(&phone()).await;
    assert!(
        matches!(read, Err(TargetError::Rejected { .. })),
        "{read:?}"
    );
    assert_eq!(pbx.requests().len(), 1);
}

#[tokio::test]
async fn an_endless_chunked_read_back_stops_at_the_cap() {
    let pbx = StandIn::start(Answer::Endless).await;
    let read = target(pbx.addr).observe(&phone()).await;
    let Err(TargetError::Unavailable { detail, .. }) = read else {
        panic!("{read:?}");
    };
    assert!(detail.contains("larger than Calvert accepts"), "{detail}");
    // A reader without a cap would have returned only after all 400 MB.
    let written = pbx.written.load(Ordering::Relaxed);
    assert!(
        written < 64 * 1024 * 1024,
        "the reader kept reading: {written} bytes sent"
    );
    assert!(written as usize > MAX_REPLY_BYTES, "the cap was reached");
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_reading() {
    let pbx = StandIn::start(Answer::Canned(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{",
        MAX_REPLY_BYTES + 1
    )))
    .await;
    let read = target(pbx.addr).observe(&phone()).await;
    let Err(TargetError::Unavailable { detail, .. }) = read else {
        panic!("{read:?}");
    };
    assert!(
        detail.contains(&format!("declares {}", MAX_REPLY_BYTES + 1)),
        "{detail}"
    );
}

#[tokio::test]
async fn an_endless_chunked_ews_reply_stops_at_the_cap() {
    use calvert::ews::client::{ClientError, Credentials, EwsClient, RetryPolicy, ServerConfig};
    use calvert::ews::request::ServerVersion;
    let exchange = StandIn::start(Answer::Endless).await;
    let client = EwsClient::new(ServerConfig {
        url: format!("http://{}/EWS/Exchange.asmx", exchange.addr),
        credentials: Credentials::Basic {
            user: "calvert".into(),
            password: "secret".into(),
        },
        ca_bundle: None,
        timeout: Duration::from_secs(30),
        version: ServerVersion::Exchange2010Sp2,
        retry: RetryPolicy::none(),
    })
    .unwrap();
    let reply = client.call(None, "<Envelope/>".into()).await;
    let Err(ClientError::Oversized { reason, .. }) = reply else {
        panic!("{reply:?}");
    };
    assert!(reason.contains("larger than Calvert accepts"), "{reason}");
    let written = exchange.written.load(Ordering::Relaxed);
    assert!(
        written < 48 * 1024 * 1024,
        "the reader kept reading: {written} bytes sent"
    );
}
