//! TLS on the admin port: a certificate chain and its private key, PEM files named
//! by `service.admin_tls_cert` and `service.admin_tls_key`, loaded and checked at
//! start (a bad file is a configuration problem by key). Without them the port
//! speaks plain HTTP, which the check warns about unless it listens on loopback.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest certificate or key file read.
const MAX_PEM: u64 = 1 << 20;

/// The admin port's TLS settings, ready to accept connections.
#[derive(Clone)]
pub struct AdminTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for AdminTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminTls(certificate loaded)")
    }
}

/// Why the certificate or key could not be used; `key` names the setting at fault.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TlsProblem {
    pub key: &'static str,
    pub message: String,
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsProblem> {
    use std::io::Read;
    let problem = |message: String| TlsProblem { key, message };
    let file = std::fs::File::open(path)
        .map_err(|e| problem(format!("cannot read {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| problem(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(problem(format!(
            "{} is larger than 1 MiB: is it a PEM file?",
            path.display()
        )));
    }
    Ok(bytes)
}

impl AdminTls {
    /// Load the PEM certificate chain at `cert` and the private key at `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<AdminTls, TlsProblem> {
        let chain_bytes = read(cert, "service.admin_tls_cert")?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsProblem {
                key: "service.admin_tls_cert",
                message: format!("{} is not a PEM certificate chain: {e}", cert.display()),
            })?;
        if chain.is_empty() {
            return Err(TlsProblem {
                key: "service.admin_tls_cert",
                message: format!(
                    "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
                    cert.display()
                ),
            });
        }
        let key_bytes = read(key, "service.admin_tls_key")?;
        let private = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| TlsProblem {
            key: "service.admin_tls_key",
            message: format!("{} holds no PEM private key: {e}", key.display()),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsProblem {
                key: "service.admin_tls_cert",
                message: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| TlsProblem {
                key: "service.admin_tls_key",
                message: format!("the key does not fit the certificate, or cannot be used: {e}"),
            })?;
        Ok(AdminTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}
