//! `calvert check`: test the connection to an Exchange server — sign in, read one
//! mailbox's calendar, and show what the core decides.
//!
//! The server and sign-in come from the command line or, with `--config`, from
//! calvert.toml (the server the rules pick for the mailbox).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use calvert::DecisionCore;
use calvert::ews::client::{Credentials, EwsClient, RetryPolicy, ServerConfig};
use clap::Args;
use tokio::runtime::Runtime;

/// The arguments of `calvert check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The mailbox to read, e.g. kim@flexi.se.
    mailbox: String,
    /// The EWS URL, e.g. https://mail1.flexi.se/EWS/Exchange.asmx; found by
    /// Autodiscover from the mailbox's domain when left out (Basic sign-in).
    #[arg(long)]
    url: Option<String>,
    /// An Autodiscover endpoint to ask instead of the domain's usual ones; an
    /// http:// one (a test server) is signed in to in clear, and an http EWS URL on
    /// its host is accepted.
    #[arg(long)]
    autodiscover_url: Option<String>,
    /// A host outside the mailbox's domain Autodiscover may be redirected to (like
    /// autodiscover_hosts in calvert.toml); repeatable.
    #[arg(long = "autodiscover-host")]
    autodiscover_hosts: Vec<String>,
    /// The service account that impersonates the mailbox (Basic or NTLM sign-in;
    /// for NTLM as DOMAIN\\user or user@domain).
    #[arg(long, required_unless_present_any = ["client_id", "config"])]
    user: Option<String>,
    /// Take the server, sign-in, zone and trigger words from calvert.toml: the
    /// server the rules pick for the mailbox.
    #[arg(long, conflicts_with_all = ["url", "user", "client_id"])]
    config: Option<PathBuf>,
    /// How the service account signs in: basic, or ntlm (Windows authentication
    /// on the EWS virtual directory).
    #[arg(
        long,
        value_enum,
        default_value = "basic",
        conflicts_with = "client_id"
    )]
    auth: Auth,
    /// A file holding the service account's password (else CALVERT_EWS_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Sign in with OAuth client credentials as this app instead (Exchange Online);
    /// the secret comes from CALVERT_EWS_CLIENT_SECRET.
    #[arg(long, conflicts_with = "user", requires = "token_url")]
    client_id: Option<String>,
    /// The OAuth token endpoint, e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
    #[arg(long)]
    token_url: Option<String>,
    /// The OAuth scope.
    #[arg(long, default_value = "https://outlook.office365.com/.default")]
    scope: String,
    /// Extra CA certificates (PEM) to trust for the server.
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
    /// The user's time zone (IANA or Windows id).
    #[arg(long, default_value = "UTC")]
    zone: String,
    /// A trigger word and its reason code, as word=REASON; repeatable.
    #[arg(long = "trigger", value_parser = parse_trigger)]
    triggers: Vec<(String, String)>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the server.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Sign-in schemes for a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Auth {
    Basic,
    Ntlm,
}

fn parse_trigger(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((word, reason)) if !word.trim().is_empty() && !reason.trim().is_empty() => {
            Ok((word.trim().to_string(), reason.trim().to_string()))
        }
        _ => Err(format!("{text:?} is not word=REASON, e.g. lunch=LUNCH")),
    }
}

/// The server to check and how: from the command line or from calvert.toml.
struct Target {
    /// None: found by Autodiscover.
    url: Option<String>,
    credentials: Credentials,
    ca_bundle: Option<PathBuf>,
    /// Hosts Autodiscover may be led to beyond the mailbox's domain.
    autodiscover_hosts: Vec<String>,
    /// Of those, the ones allowed plain http (`ssl = false`).
    plain_http_hosts: Vec<String>,
    zone: String,
    triggers: Vec<(String, String)>,
}

/// Check the connection and print the report (text, or JSON with `--json`).
pub(super) fn run(core: &DecisionCore, args: CheckArgs) -> Result<ExitCode, String> {
    let target = match &args.config {
        Some(path) => configured_target(path, core, &args.mailbox)?,
        None => given_target(&args)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    let url = ews_url(&runtime, &args, &target)?;
    let timeout = Duration::from_secs(args.timeout);
    let client = EwsClient::new(ServerConfig {
        url,
        credentials: target.credentials,
        ca_bundle: target.ca_bundle,
        timeout,
        version: calvert::ews::request::ServerVersion::Exchange2010Sp2,
        retry: RetryPolicy::default(),
    })
    .map_err(|e| e.to_string())?;
    let triggers: Vec<_> = target
        .triggers
        .into_iter()
        .map(|(word, reason)| calvert::component::wit::Trigger { word, reason })
        .collect();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|e| format!("the system clock is before 1970: {e}"))?;
    let mut instance = core.instance();
    let report = runtime
        .block_on(calvert::check::run(
            &client,
            &mut instance,
            &args.mailbox,
            &target.zone,
            &triggers,
            now,
        ))
        .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text(&mut instance));
    }
    Ok(ExitCode::SUCCESS)
}

/// What calvert.toml says for `mailbox`: the server its rules pick, that server's
/// sign-in, the user's zone and the trigger words.
fn configured_target(path: &Path, core: &DecisionCore, mailbox: &str) -> Result<Target, String> {
    let mut instance = core.instance();
    let config =
        calvert::config::ServiceConfig::load(path, &mut instance).map_err(|e| e.to_string())?;
    for warning in config.warnings() {
        eprintln!("calvert: {}: warning: {warning}", path.display());
    }
    let server = instance
        .route(mailbox, &config.rules)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no [[rule]] in {} routes {mailbox} to an Exchange server; add one",
                path.display()
            )
        })?;
    let exchange = config
        .exchange
        .iter()
        .find(|s| s.name == server)
        .ok_or_else(|| {
            format!(
                "the rules pick server {server:?}, which {} does not define",
                path.display()
            )
        })?;
    Ok(Target {
        url: exchange.url.clone(),
        credentials: exchange.credentials.clone(),
        ca_bundle: exchange.ca_bundle.clone(),
        autodiscover_hosts: exchange.autodiscover_hosts.clone(),
        plain_http_hosts: exchange.plain_http_hosts.clone(),
        zone: config
            .user(mailbox)
            .map_or(config.default_zone.clone(), |u| u.zone.clone()),
        triggers: config
            .triggers
            .iter()
            .map(|t| (t.word.clone(), t.reason.clone()))
            .collect(),
    })
}

/// The server and sign-in as given on the command line.
fn given_target(args: &CheckArgs) -> Result<Target, String> {
    Ok(Target {
        url: args.url.clone(),
        credentials: given_credentials(args)?,
        ca_bundle: args.ca_bundle.clone(),
        autodiscover_hosts: args.autodiscover_hosts.clone(),
        plain_http_hosts: Vec::new(),
        zone: args.zone.clone(),
        triggers: args.triggers.clone(),
    })
}

/// OAuth with `--client-id` (secret from CALVERT_EWS_CLIENT_SECRET), else Basic or
/// NTLM as `--user` (password from `--password-file` or CALVERT_EWS_PASSWORD).
fn given_credentials(args: &CheckArgs) -> Result<Credentials, String> {
    match (&args.user, &args.client_id, &args.token_url) {
        (_, Some(client_id), Some(token_url)) => {
            let client_secret = std::env::var("CALVERT_EWS_CLIENT_SECRET")
                .map_err(|_| "no client secret: set CALVERT_EWS_CLIENT_SECRET".to_string())?;
            Ok(Credentials::OAuth {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret,
                scope: args.scope.clone(),
            })
        }
        (Some(user), _, _) => {
            let user = user.clone();
            let password = password(args.password_file.as_deref())?;
            Ok(match args.auth {
                Auth::Basic => Credentials::Basic { user, password },
                Auth::Ntlm => Credentials::Ntlm { user, password },
            })
        }
        _ => Err("give --user (Basic) or --client-id with --token-url (OAuth)".into()),
    }
}

fn password(file: Option<&Path>) -> Result<String, String> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display())),
        None => std::env::var("CALVERT_EWS_PASSWORD").map_err(|_| {
            "no password: set CALVERT_EWS_PASSWORD or give --password-file".to_string()
        }),
    }
}

/// The target's URL, or the one Autodiscover finds for the mailbox (Basic only).
fn ews_url(runtime: &Runtime, args: &CheckArgs, target: &Target) -> Result<String, String> {
    let discovery = calvert::check::Discovery {
        ca_bundle: target.ca_bundle.as_deref(),
        autodiscover_hosts: &target.autodiscover_hosts,
        plain_http_hosts: &target.plain_http_hosts,
        endpoint: args.autodiscover_url.as_deref(),
    };
    let url = runtime.block_on(calvert::check::ews_url(
        target.url.as_deref(),
        &target.credentials,
        &discovery,
        &args.mailbox,
        Duration::from_secs(args.timeout),
    ))?;
    if target.url.is_none() {
        eprintln!("calvert: Autodiscover: {} is served by {url}", args.mailbox);
    }
    Ok(url)
}
