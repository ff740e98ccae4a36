//! `calvert eval`: one JSON request to the core component, its answer on standard
//! output (docs/eval.md).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use calvert::DecisionCore;

/// Answer the request in `file` (standard input when absent or `-`). A request the
/// core rejects exits with 2 and its sentence.
pub(super) fn run(core: &DecisionCore, file: Option<PathBuf>) -> Result<ExitCode, String> {
    let request = read_request(file)?;
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

fn read_request(file: Option<PathBuf>) -> Result<String, String> {
    match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(text)
        }
    }
}
