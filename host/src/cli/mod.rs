//! The commands of `calvert`, one file each where a command is more than a call
//! into the library: `eval`, `check`, `inspect`; `demo` and `serve` are the
//! library's [`calvert::demo::run`] and [`calvert::service::serve`].

mod admin;
mod check;
mod config;
mod eval;
mod inspect;

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Answer one JSON request with the core component (see docs/eval.md).
    Eval {
        /// The request file; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Run the service against the built-in Exchange simulator: a scripted day on a
    /// fast clock, printed as a timeline (under a minute), with the administration's
    /// address and a one-time login.
    Demo {
        /// Keep the service and its administration running after the day, until Ctrl-C.
        #[arg(long)]
        stay: bool,
    },
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
    Check(check::CheckArgs),
    /// Administration accounts (the web pages' logins).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// The configuration in the store (calvert.toml seeds it; the administration edits it).
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

/// Run one command; an `Err` is the sentence to print before exiting with 1.
pub fn run(command: Command) -> Result<ExitCode, String> {
    let core = DecisionCore::load().map_err(|e| e.to_string())?;
    match command {
        Command::Eval { file } => eval::run(&core, file),
        Command::Serve { config, check } => calvert::service::serve(&config, check, core),
        Command::Demo { stay } => {
            calvert::demo::run(core, stay).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check::run(&core, args),
        Command::Inspect => Ok(inspect::run(&core)),
        Command::Admin(command) => admin::run(&core, command),
        Command::Config(command) => config::run(&core, command),
    }
}
