//! `calvert`: the command line.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use calvert::DecisionCore;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "calvert",
    version,
    about = "Calendar-driven phone diversions and two-way calendar sync"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Answer one JSON request with the core component (see docs/eval.md).
    Eval {
        /// The request file; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Run the service against the built-in Exchange simulator: a scripted day on a
    /// fast clock, printed as a timeline (under a minute).
    Demo,
    /// Run the service: phones follow calendars (see docs/calvert.example.toml).
    Serve {
        /// The configuration file.
        #[arg(long, default_value = "calvert.toml")]
        config: PathBuf,
        /// Only check the configuration and exit.
        #[arg(long)]
        check: bool,
    },
    /// List what the core component imports (nothing) and exports.
    Inspect,
    /// Test the connection to an Exchange server: read a mailbox's calendar and decide.
    ///
    /// The password comes from the CALVERT_EWS_PASSWORD environment variable or
    /// --password-file, never from the command line.
    Check {
        /// The mailbox to read, e.g. kim@flexi.se.
        mailbox: String,
        /// The EWS URL, e.g. https://mail1.flexi.se/EWS/Exchange.asmx; found by
        /// Autodiscover from the mailbox's domain when left out (Basic sign-in).
        #[arg(long)]
        url: Option<String>,
        /// An Autodiscover endpoint to ask instead of the domain's usual ones.
        #[arg(long)]
        autodiscover_url: Option<String>,
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
    },
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

/// What `calvert check --config` takes from calvert.toml for one mailbox.
struct ConfiguredServer {
    url: Option<String>,
    credentials: calvert::ews::client::Credentials,
    ca_bundle: Option<PathBuf>,
    zone: String,
    triggers: Vec<(String, String)>,
}

fn configured_server(
    path: &std::path::Path,
    core: &DecisionCore,
    mailbox: &str,
) -> Result<ConfiguredServer, String> {
    let mut instance = core.instance();
    let config =
        calvert::config::ServiceConfig::load(path, &mut instance).map_err(|e| e.to_string())?;
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
    Ok(ConfiguredServer {
        url: exchange.url.clone(),
        credentials: exchange.credentials.clone(),
        ca_bundle: exchange.ca_bundle.clone(),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("calvert: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    let core = DecisionCore::load().map_err(|e| e.to_string())?;
    match command {
        Command::Eval { file } => {
            let request = match file {
                Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                _ => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|e| format!("cannot read standard input: {e}"))?;
                    text
                }
            };
            match core.instance().eval(&request).map_err(|e| e.to_string())? {
                Ok(answer) => {
                    for warning in &answer.warnings {
                        eprintln!("calvert: warning: {warning}");
                    }
                    println!("{}", answer.answer);
                    Ok(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("calvert: {message}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Serve { config, check } => calvert::service::serve(&config, check, core),
        Command::Demo => {
            calvert::demo::run(core).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            mailbox,
            url,
            autodiscover_url,
            user,
            auth,
            password_file,
            client_id,
            token_url,
            scope,
            ca_bundle,
            zone,
            triggers,
            json,
            timeout,
            config,
        } => {
            let configured = match &config {
                Some(path) => Some(configured_server(path, &core, &mailbox)?),
                None => None,
            };
            let (url, ca_bundle, zone, triggers) = match &configured {
                Some(c) => (
                    c.url.clone(),
                    c.ca_bundle.clone(),
                    c.zone.clone(),
                    c.triggers.clone(),
                ),
                None => (url, ca_bundle, zone, triggers),
            };
            let credentials = match (user, client_id, token_url) {
                _ if configured.is_some() => configured
                    .as_ref()
                    .map(|c| c.credentials.clone())
                    .ok_or("no server")?,
                (_, Some(client_id), Some(token_url)) => {
                    let client_secret =
                        std::env::var("CALVERT_EWS_CLIENT_SECRET").map_err(|_| {
                            "no client secret: set CALVERT_EWS_CLIENT_SECRET".to_string()
                        })?;
                    calvert::ews::client::Credentials::OAuth {
                        token_url,
                        client_id,
                        client_secret,
                        scope,
                    }
                }
                (Some(user), _, _) => {
                    let password = match password_file {
                        Some(path) => std::fs::read_to_string(&path)
                            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
                            .map_err(|e| {
                                format!("cannot read the password file {}: {e}", path.display())
                            })?,
                        None => std::env::var("CALVERT_EWS_PASSWORD").map_err(|_| {
                            "no password: set CALVERT_EWS_PASSWORD or give --password-file"
                                .to_string()
                        })?,
                    };
                    match auth {
                        Auth::Basic => calvert::ews::client::Credentials::Basic { user, password },
                        Auth::Ntlm => calvert::ews::client::Credentials::Ntlm { user, password },
                    }
                }
                _ => {
                    return Err(
                        "give --user (Basic) or --client-id with --token-url (OAuth)".into(),
                    );
                }
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
            let url = match (url, &credentials) {
                (Some(url), _) => url,
                (None, calvert::ews::client::Credentials::Basic { user, password }) => {
                    let mut discoverer = calvert::ews::discovery::Discoverer::new(
                        user,
                        password,
                        std::time::Duration::from_secs(timeout),
                    )
                    .map_err(|e| e.to_string())?;
                    if let Some(path) = &ca_bundle {
                        discoverer = discoverer.with_ca_bundle(path).map_err(|e| e.to_string())?;
                    }
                    if let Some(endpoint) = autodiscover_url {
                        discoverer = discoverer.with_endpoints(vec![endpoint]);
                    }
                    let settings = runtime
                        .block_on(discoverer.discover(&mailbox))
                        .map_err(|e| e.to_string())?;
                    eprintln!(
                        "calvert: Autodiscover: {mailbox} is served by {}",
                        settings.ews_url
                    );
                    settings.ews_url
                }
                (None, calvert::ews::client::Credentials::Ntlm { .. }) => {
                    return Err(
                        "give --url with --auth ntlm: Autodiscover signs in with Basic only".into(),
                    );
                }
                (None, _) => {
                    return Err("give --url: with OAuth, Exchange Online's EWS URL is https://outlook.office365.com/EWS/Exchange.asmx".into());
                }
            };
            let client = calvert::ews::client::EwsClient::new(calvert::ews::client::ServerConfig {
                url,
                credentials,
                ca_bundle,
                timeout: std::time::Duration::from_secs(timeout),
                version: calvert::ews::request::ServerVersion::Exchange2010Sp2,
                retry: calvert::ews::client::RetryPolicy::default(),
            })
            .map_err(|e| e.to_string())?;
            let triggers: Vec<_> = triggers
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
                    &mailbox,
                    &zone,
                    &triggers,
                    now,
                ))
                .map_err(|e| e.to_string())?;
            if json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text(&mut instance));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect => {
            let imports = core.imports();
            println!(
                "imports: {}",
                if imports.is_empty() {
                    "none".to_string()
                } else {
                    imports.join(", ")
                }
            );
            println!("exports: {}", core.exports().join(", "));
            Ok(ExitCode::SUCCESS)
        }
    }
}
