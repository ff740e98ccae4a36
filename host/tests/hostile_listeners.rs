//! Slow clients against both listeners (the admin port, the push listener): stalled
//! requests are disconnected after the header deadline, connections beyond the limit
//! are closed at once and counted, a body that never arrives is answered 408, and a
//! normal request is answered through all of it.

#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/quiet.rs"]
mod quiet;
#[path = "support/raw_http.rs"]
mod raw_http;
#[path = "support/wait.rs"]
mod wait;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use calvert::ews::push::{PushListener, PushSubscribers, Verdict, listen_within};
use calvert::listener::Limits;
use prometheus_client::metrics::counter::Counter;
use raw_http::{Answer, ask, read_to_end, stall};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wait::LIMIT;

/// Stalled connections opened in the slow-client tests.
const STALLED: usize = 300;

/// A listener that lets few clients in and waits half a second for headers.
const TIGHT: Limits = Limits {
    connections: 16,
    header_timeout: Duration::from_millis(500),
    request_timeout: Duration::from_millis(500),
};

/// A connection limit of 4 and deadlines no test reaches.
const FOUR: Limits = Limits {
    connections: 4,
    header_timeout: Duration::from_secs(600),
    request_timeout: Duration::from_secs(600),
};

/// Knows one secret, `secret`; forwards everything posted with it.
struct OneSecret;

impl PushSubscribers for OneSecret {
    fn knows(&self, token: &str) -> bool {
        token == "secret"
    }
    fn verdict(&self, _token: &str, _id: &str) -> Verdict {
        Verdict::Forward
    }
}

async fn push_listener(limits: Limits) -> (PushListener, Counter) {
    let refused = Counter::default();
    let listener = listen_within(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(OneSecret),
        limits,
        refused.clone(),
    )
    .await
    .unwrap();
    (listener, refused)
}

/// The admin port's answer to `GET /health`, once one comes.
async fn health(admin: SocketAddr) -> Answer {
    let host = format!("Host: {admin}");
    wait::until_async(LIMIT, || async {
        let mut stream = TcpStream::connect(admin).await.map_err(|e| e.to_string())?;
        let request = format!("GET /health HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let text = read_to_end(&mut stream, LIMIT).await.unwrap_or_default();
        if text.starts_with("HTTP/1.1 200") {
            Ok(Answer {
                status: 200,
                head: String::new(),
                body: text,
            })
        } else {
            Err(format!("no answer yet: {text:?}"))
        }
    })
    .await
}

/// The push listener's answer to a POST with an unknown secret, once one comes.
async fn push_answer(push: SocketAddr) -> Answer {
    wait::until_async(LIMIT, || async {
        let mut stream = TcpStream::connect(push).await.map_err(|e| e.to_string())?;
        let request = format!(
            "POST /ews/push/guess HTTP/1.1\r\nHost: {push}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let text = read_to_end(&mut stream, LIMIT).await.unwrap_or_default();
        if text.starts_with("HTTP/1.1 403") {
            Ok(Answer {
                status: 403,
                head: String::new(),
                body: text,
            })
        } else {
            Err(format!("no answer yet: {text:?}"))
        }
    })
    .await
}

/// Every stalled connection is closed by the server (EOF) within the wait limit.
async fn all_closed(stalled: Vec<TcpStream>) {
    for (i, mut stream) in stalled.into_iter().enumerate() {
        assert!(
            read_to_end(&mut stream, LIMIT).await.is_some(),
            "stalled connection {i} is still open after {LIMIT:?}"
        );
    }
}

async fn stall_many(addr: SocketAddr) -> Vec<TcpStream> {
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(stall(addr).await);
    }
    stalled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_to_the_admin_port_are_dropped_and_it_keeps_answering() {
    let service = quiet::start(None, Some(TIGHT)).await;
    let admin = service.admin_addr.unwrap();
    let stalled = stall_many(admin).await;
    let answer = health(admin).await;
    assert!(answer.body.contains("\"status\":\"ok\""), "{answer:?}");
    all_closed(stalled).await;
    let metrics = ask(admin, "GET", "/metrics", &[&format!("Host: {admin}")]).await;
    let refused = prometheus::value(
        &metrics.body,
        "calvert_refused_connections_total{listener=\"admin\"}",
    );
    assert!(refused >= 1.0, "{}", metrics.body);
    service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_to_the_push_listener_are_dropped_and_it_keeps_answering() {
    let (listener, refused) = push_listener(TIGHT).await;
    let stalled = stall_many(listener.addr).await;
    let answer = push_answer(listener.addr).await;
    assert!(answer.body.contains("unknown push address"), "{answer:?}");
    all_closed(stalled).await;
    assert!(refused.get() >= 1, "refused {}", refused.get());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_a_connection_is_closed_at_once_and_counted() {
    let service = quiet::start(None, Some(FOUR)).await;
    let admin = service.admin_addr.unwrap();
    let (push, refused) = push_listener(FOUR).await;
    for (addr, name) in [(admin, "admin"), (push.addr, "push")] {
        let mut held = Vec::new();
        for _ in 0..FOUR.connections {
            held.push(stall(addr).await);
        }
        // The header deadline is ten minutes away: only the limit closes this one.
        let mut fifth = stall(addr).await;
        assert!(
            read_to_end(&mut fifth, LIMIT).await.is_some(),
            "{name}: a connection beyond the limit was kept open"
        );
        // A connection that ends gives its place back.
        drop(held.pop());
        if name == "admin" {
            health(admin).await;
        } else {
            push_answer(push.addr).await;
        }
    }
    assert!(refused.get() >= 1, "push refused {}", refused.get());
    let metrics = service.metrics();
    let admin_refused = prometheus::value(
        &metrics,
        "calvert_refused_connections_total{listener=\"admin\"}",
    );
    assert!(admin_refused >= 1.0, "{metrics}");
    service.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_answered_408() {
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..FOUR
    };
    let (push, _) = push_listener(limits).await;
    let mut stream = TcpStream::connect(push.addr).await.unwrap();
    let head = format!(
        "POST /ews/push/secret HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<soap:Envelope",
        push.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let text = read_to_end(&mut stream, LIMIT)
        .await
        .expect("the server still waits for the body");
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_deadline() {
    let service = quiet::start(None, Some(TIGHT)).await;
    let admin = service.admin_addr.unwrap();
    let mut stream = TcpStream::connect(admin).await.unwrap();
    // One whole request, keep-alive, then silence: the answer, then the close.
    let request = format!("GET /health HTTP/1.1\r\nHost: {admin}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let text = read_to_end(&mut stream, LIMIT)
        .await
        .expect("an idle keep-alive connection is still open");
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    service.shutdown(Duration::from_secs(2)).await;
}
