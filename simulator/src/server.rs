//! Listening: [`start`] and [`start_https`] (and their `_on` forms for a chosen
//! address), the routes, and the running [`Server`] with its URLs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::routing::post;

use crate::autodiscover::autodiscover;
use crate::ews::ews;
use crate::exchange::Exchange;
use crate::sign_in::token;
use crate::tls::{self, TlsListener};

/// The peer address of a request's TCP connection (what ties an NTLM challenge to
/// its connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A running simulator.
pub struct Server {
    pub exchange: Exchange,
    pub addr: SocketAddr,
    scheme: &'static str,
    /// The self-signed certificate (PEM) of an HTTPS simulator.
    certificate_pem: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The EWS URL to give Calvert (https for [`start_https`], with the host name
    /// `localhost` its certificate is made for).
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.base_url())
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), Exchange::token_path())
    }

    /// The SOAP Autodiscover endpoint.
    pub fn autodiscover_url(&self) -> String {
        format!("{}/autodiscover/autodiscover.svc", self.base_url())
    }

    fn base_url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// The PEM certificate an HTTPS simulator serves (self-signed, so it is its own
    /// CA): what a client must trust. `None` for plain HTTP.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL scheme a router serves under (for the URLs Autodiscover hands out).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheme(pub(crate) &'static str);

/// The three endpoints: EWS, SOAP Autodiscover and the OAuth token endpoint.
fn router(exchange: &Exchange, scheme: &'static str) -> Router {
    Router::new()
        .route("/EWS/Exchange.asmx", post(ews))
        .route("/autodiscover/autodiscover.svc", post(autodiscover))
        .route(Exchange::token_path(), post(token))
        .layer(axum::Extension(Scheme(scheme)))
        .with_state(exchange.clone())
}

/// Start a simulator on a free loopback port, over plain HTTP.
pub async fn start(exchange: Exchange) -> std::io::Result<Server> {
    start_on(exchange, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Start a simulator over plain HTTP on `addr`.
pub async fn start_on(exchange: Exchange, addr: SocketAddr) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(&exchange, "http").into_make_service_with_connect_info::<Peer>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server {
        exchange,
        addr,
        scheme: "http",
        certificate_pem: None,
        task,
    })
}

/// Start a simulator on a free loopback port over HTTPS, with a self-signed
/// certificate for `localhost` and `127.0.0.1` made now
/// ([`Server::certificate_pem`]).
pub async fn start_https(exchange: Exchange) -> std::io::Result<Server> {
    start_https_on(exchange, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Start a simulator over HTTPS on `addr` (see [`start_https`]).
pub async fn start_https_on(exchange: Exchange, addr: SocketAddr) -> std::io::Result<Server> {
    let (config, certificate_pem) = tls::self_signed()?;
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let addr = tcp.local_addr()?;
    let listener = TlsListener::new(tcp, tokio_rustls::TlsAcceptor::from(Arc::new(config)), addr);
    let app = router(&exchange, "https").into_make_service_with_connect_info::<Peer>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server {
        exchange,
        addr,
        scheme: "https",
        certificate_pem: Some(certificate_pem),
        task,
    })
}
