//! `calvert`: the command line. Each command is in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("calvert: {message}");
            ExitCode::from(1)
        }
    }
}
