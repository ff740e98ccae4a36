//! The accept loop of Calvert's HTTP listeners (the admin port, the push listener):
//! a limit on open connections, a deadline for a request's headers and one for the
//! whole request, so slow or stalled clients cannot hold a port.
//!
//! At the limit a new connection is closed at once and counted, never queued. A
//! client that has not sent its headers within [`Limits::header_timeout`] (an idle
//! keep-alive connection included) is disconnected; a request whose handler, body
//! read included, takes longer than [`Limits::request_timeout`] is answered 408.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

/// Connections a listener holds open at most (each of the admin and push listeners).
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, its body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How much a listener gives its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; beyond it a new connection is closed at once.
    pub connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Where a request came in, put in each request's extensions: the address the client
/// reached (the admin port's Host check compares with it) and the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// Serve `app` on `listener` within `limits` until `stop` completes; then finish the
/// requests in flight (each within its timeout) and return. Connections refused at
/// the limit are counted in `refused`. With `tls`, every connection is TLS first (its
/// handshake within the header deadline).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    refused: Counter,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.connections));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        refuse(stream, &refused, limits.connections);
                        continue;
                    };
                    let Ok(local) = stream.local_addr() else { continue };
                    let at = Connection { local, peer };
                    let (app, closed) = (app.clone(), closed.clone());
                    match tls.clone() {
                        None => connections.spawn(connection(stream, at, app, limits, closed, permit)),
                        Some(tls) => connections.spawn(async move {
                            let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await;
                            if let Ok(Ok(stream)) = handshake {
                                connection(stream, at, app, limits, closed, permit).await;
                            }
                        }),
                    };
                }
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of descriptors, most likely: wait before trying again
                        // rather than spinning.
                        tracing::warn!(%error, "cannot accept a connection; trying again in a second");
                        tokio::select! {
                            () = &mut stop => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    }
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
}

/// Close a connection beyond the limit at once, and count it.
fn refuse(stream: TcpStream, refused: &Counter, limit: usize) {
    drop(stream);
    // One line for the first refusal and one per hundred after it, not one each.
    if refused.inc() % 100 == 0 {
        tracing::warn!(
            limit,
            refused = refused.get(),
            "a listener is at its connection limit: new connections are closed"
        );
    }
}

/// Errors of one connection that say nothing about the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One connection: HTTP/1 with the header deadline, each request within the request
/// deadline; the permit is given back when the connection ends.
async fn connection<S>(
    stream: S,
    at: Connection,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(at);
        let mut app = app.clone();
        async move {
            let answer = app.call(request.map(Body::new));
            match tokio::time::timeout(limits.request_timeout, answer).await {
                Ok(response) => response,
                Err(_) => Ok(too_slow(limits.request_timeout)),
            }
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let served = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => return,
        _ = closing.wait_for(|closing| *closing) => {}
    }
    served.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.request_timeout, served).await;
}

/// The answer to a request that took longer than `limit`.
fn too_slow(limit: Duration) -> Response<Body> {
    (
        StatusCode::REQUEST_TIMEOUT,
        [(header::CONNECTION, "close")],
        format!(
            "the request took longer than {} s; send it whole and at once\n",
            limit.as_secs_f32()
        ),
    )
        .into_response()
}
