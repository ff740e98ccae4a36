//! Step 5 of Autodiscover: the DNS SRV record `_autodiscover._tcp.<domain>`, asked
//! of the system's resolver or of a configured name server.

use std::time::Duration;

use super::autodiscover::{SrvRecord, srv_name};

/// Where the SRV lookup asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameServer {
    /// The system's resolver configuration (`/etc/resolv.conf`).
    #[default]
    System,
    /// This name server, over UDP (split DNS, tests).
    Udp(std::net::SocketAddr),
}

/// The SRV records of `_autodiscover._tcp.<domain>`.
pub(super) async fn lookup_srv(
    name_server: NameServer,
    domain: &str,
    timeout: Duration,
) -> Result<Vec<SrvRecord>, String> {
    use hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use hickory_resolver::proto::rr::RData;
    let mut builder = match name_server {
        NameServer::System => hickory_resolver::TokioResolver::builder_tokio()
            .map_err(|e| format!("the system's DNS configuration cannot be read: {e}"))?,
        NameServer::Udp(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            hickory_resolver::TokioResolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    vec![],
                    vec![NameServerConfig::new(addr.ip(), true, vec![udp])],
                ),
                TokioRuntimeProvider::default(),
            )
        }
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = timeout.min(Duration::from_secs(5));
    options.attempts = 2;
    let resolver = builder
        .build()
        .map_err(|e| format!("no DNS resolver could be set up: {e}"))?;
    let name = srv_name(domain);
    match resolver.srv_lookup(name.as_str()).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_utf8(),
                }),
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}
