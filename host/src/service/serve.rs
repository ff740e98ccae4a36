//! `calvert serve`: the command. Logging, the configuration check, the store, the
//! runtime, and a graceful stop on Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use super::{Adapters, Backoff, ServiceHandle};
use crate::component::DecisionCore;

/// Start logging: human-readable lines, or JSON when `CALVERT_LOG=json`; the level
/// from `RUST_LOG` (default `info`). Logs name mailboxes, never a subject, location
/// or body.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("CALVERT_LOG").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// `calvert serve`: load and check the configuration, open the store, run until
/// Ctrl-C or SIGTERM, then shut down gracefully (calls in flight finish, up to 10 s).
pub fn serve(
    path: &std::path::Path,
    check_only: bool,
    core: DecisionCore,
) -> Result<std::process::ExitCode, String> {
    let config = crate::config::ServiceConfig::load(path, &mut core.instance())
        .map_err(|e| e.to_string())?;
    if check_only {
        println!(
            "{}: configuration OK: {} Exchange server(s), {} telephony target(s), {} user(s), {} trigger word(s)",
            path.display(),
            config.exchange.len(),
            config.telephony.len(),
            config.users.len(),
            config.triggers.len()
        );
        for warning in config.warnings() {
            eprintln!("calvert: {}: warning: {warning}", path.display());
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    init_logging();
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let store = crate::store::SledStore::open(&config.state_dir, config.cache_bytes)
            .map_err(|e| e.to_string())?;
        let adapters =
            Adapters::from_config(&config, Arc::new(store)).map_err(|e| e.to_string())?;
        let users = config.users.len();
        let service = ServiceHandle::start(config, core, adapters, Backoff::default())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(users, admin = ?service.admin_addr, "calvert is serving");
        if let Some(line) = first_login_text(&service) {
            // To the terminal only, never to the log.
            eprintln!("{line}");
        }
        shutdown_signal().await;
        tracing::info!("shutting down: finishing calls in flight");
        service.shutdown(Duration::from_secs(10)).await;
        tracing::info!("stopped");
        Ok(std::process::ExitCode::SUCCESS)
    })
}

/// What the first start tells whoever started it: where the administration is and
/// the one-time login (`None` on later starts).
pub fn first_login_text(service: &ServiceHandle) -> Option<String> {
    let (name, password) = service.first_login.as_ref()?;
    let place = match service.admin_addr {
        Some(addr) if service.service.config().admin_tls.is_some() => format!("https://{addr}/"),
        Some(addr) => format!("http://{addr}/"),
        None => "the admin port (set service.admin_listen)".to_string(),
    };
    Some(format!(
        "calvert: the administration is at {place}; log in as {name} with the one-time password {password} (shown only now; make your own accounts with `calvert admin add NAME`)"
    ))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
