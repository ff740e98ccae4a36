//! `calvert admin add NAME`: make an administration account in the state directory
//! calvert.toml names (with the service stopped: sled keeps one process per
//! directory). The password is generated and printed once, or read from standard
//! input with `--password-stdin`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use calvert::DecisionCore;
use calvert::service::admin::accounts;
use calvert::store::{Role, SledStore, Store};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Make an account (or, with --replace, set a new password and role for one).
    Add(AddArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// The login name.
    name: String,
    /// administrator (changes anything) or viewer (looks, never changes).
    #[arg(long, default_value = "administrator")]
    role: Role,
    /// The configuration whose state directory holds the accounts.
    #[arg(long, default_value = "calvert.toml")]
    config: PathBuf,
    /// Read the password from standard input (one line) instead of generating one.
    #[arg(long)]
    password_stdin: bool,
    /// Replace an account of that name.
    #[arg(long)]
    replace: bool,
}

pub fn run(core: &DecisionCore, command: AdminCommand) -> Result<ExitCode, String> {
    let AdminCommand::Add(args) = command;
    let config = calvert::config::ServiceConfig::load(&args.config, &mut core.instance())
        .map_err(|e| e.to_string())?;
    let store = SledStore::open(&config.state_dir, config.cache_bytes).map_err(|e| {
        format!("{e} (if Calvert is running on this state directory, stop it first)")
    })?;
    if !args.replace
        && store
            .account(&args.name)
            .map_err(|e| e.to_string())?
            .is_some()
    {
        return Err(format!(
            "there is already an account {}: add --replace to give it a new password",
            args.name
        ));
    }
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .take(accounts::MAX_PASSWORD as u64 + 2)
            .read_to_string(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (accounts::generated_password(), true)
    };
    let now = jiff::Timestamp::now().as_second();
    let account =
        accounts::make(&args.name, args.role, &password, now).map_err(|e| e.to_string())?;
    store.put_account(&account).map_err(|e| e.to_string())?;
    let what = format!(
        "{} the account {} ({}) from the command line",
        if args.replace { "replaced" } else { "made" },
        account.name,
        account.role.name()
    );
    store
        .audit(now, "command line", &what)
        .map_err(|e| e.to_string())?;
    if generated {
        println!(
            "made {} ({}); its password (shown only now): {password}",
            account.name,
            account.role.name()
        );
    } else {
        println!("made {} ({})", account.name, account.role.name());
    }
    Ok(ExitCode::SUCCESS)
}
