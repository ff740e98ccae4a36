//! `calvert config export` and `calvert config adopt`: the configuration in the
//! store, with the service stopped (sled keeps one process per state directory).
//! Export writes the text in force (calvert.toml with the administration's live
//! edits, comments kept) to standard output; adopt makes calvert.toml as written the
//! configuration in force, keeping the replaced text in a file beside the store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use calvert::DecisionCore;
use calvert::config::ServiceConfig;
use calvert::store::{SledStore, Store, StoredConfig};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Write the configuration in force (with the administration's live edits) as TOML.
    Export(ConfigArgs),
    /// Make calvert.toml as written the configuration in force, replacing live edits
    /// (the replaced text is kept in the state directory).
    Adopt(ConfigArgs),
}

#[derive(Args)]
pub struct ConfigArgs {
    /// The configuration file whose state directory holds the store.
    #[arg(long, default_value = "calvert.toml")]
    config: PathBuf,
}

pub fn run(core: &DecisionCore, command: ConfigCommand) -> Result<ExitCode, String> {
    match command {
        ConfigCommand::Export(args) => export(core, &args.config),
        ConfigCommand::Adopt(args) => adopt(core, &args.config),
    }
}

fn open(core: &DecisionCore, path: &Path) -> Result<(ServiceConfig, SledStore), String> {
    let config = ServiceConfig::load(path, &mut core.instance()).map_err(|e| e.to_string())?;
    let store = SledStore::open(&config.state_dir, config.cache_bytes).map_err(|e| {
        format!("{e} (if Calvert is running on this state directory, stop it first, or use GET /api/config/export)")
    })?;
    Ok((config, store))
}

fn export(core: &DecisionCore, path: &Path) -> Result<ExitCode, String> {
    let (config, store) = open(core, path)?;
    match store.stored_config().map_err(|e| e.to_string())? {
        Some(stored) => print!("{}", stored.text),
        None => {
            eprintln!(
                "calvert: the store holds no configuration yet (Calvert has not started on it): this is {} as written",
                path.display()
            );
            print!("{}", config.source.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn adopt(core: &DecisionCore, path: &Path) -> Result<ExitCode, String> {
    let (config, store) = open(core, path)?;
    let file = config.source.text.clone();
    let replaced = store.stored_config().map_err(|e| e.to_string())?;
    if let Some(stored) = replaced.as_ref().filter(|s| s.text != file) {
        let kept = config.state_dir.join("replaced-config.toml");
        std::fs::write(&kept, &stored.text).map_err(|e| {
            format!(
                "cannot keep the replaced configuration in {}: {e}",
                kept.display()
            )
        })?;
        eprintln!(
            "calvert: the replaced configuration is in {}",
            kept.display()
        );
    }
    store
        .put_config(&StoredConfig {
            text: file.clone(),
            file_text: file,
        })
        .map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now().as_second();
    store
        .audit(
            now,
            "command line",
            &format!("adopted {} as the configuration in force", path.display()),
        )
        .map_err(|e| e.to_string())?;
    println!("{} is the configuration in force", path.display());
    Ok(ExitCode::SUCCESS)
}
