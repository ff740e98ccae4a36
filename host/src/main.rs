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

#[derive(Subcommand)]
enum Command {
    /// Answer one JSON request with the core component (see docs/eval.md).
    Eval {
        /// The request file; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Play a scripted day through the core and print the diversions it sets.
    Demo,
    /// List what the core component imports (nothing) and exports.
    Inspect,
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
        Command::Demo => {
            let timeline = calvert::demo::run(&mut core.instance()).map_err(|e| e.to_string())?;
            print!("{timeline}");
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
