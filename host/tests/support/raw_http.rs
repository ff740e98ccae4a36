//! HTTP/1.1 written by hand, for tests that choose every header (Host, Origin) or
//! stop half-way through a request.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wait::LIMIT;

/// A whole response: its status code, head (status line and headers) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Send `method path` with `headers` (each `Name: value`) and `Connection: close`,
/// then read the answer to its end.
pub async fn ask(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Answer {
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let text = read_to_end(&mut stream, LIMIT)
        .await
        .unwrap_or_else(|| panic!("no answer to {method} {path} within {LIMIT:?}"));
    parse(&text).unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// `POST path` with a body, as a cross-site HTML form or `fetch` would send it.
pub async fn post(addr: SocketAddr, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut all: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    all.push(format!("Content-Length: {}", body.len()));
    let mut request = format!("POST {path} HTTP/1.1\r\n");
    for header in &all {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    request.push_str(body);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let text = read_to_end(&mut stream, LIMIT)
        .await
        .unwrap_or_else(|| panic!("no answer to POST {path} within {LIMIT:?}"));
    parse(&text).unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// Everything the server sends until it closes (a reset counts as closed), or None
/// when it is still open after `limit`.
pub async fn read_to_end(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    let read = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(error) => panic!("reading the answer: {error}"),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn parse(text: &str) -> Option<Answer> {
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    Some(Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Open a connection and send the start of a request that never ends.
pub async fn stall(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    stream
}

/// The head of one request read by a stand-in server, its body (by Content-Length)
/// read and dropped; none when the client went away before the head was complete.
pub async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = stream.read_exact(&mut body).await;
    Some(head)
}
