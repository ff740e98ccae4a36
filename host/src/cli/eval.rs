//! `calvert eval`: one JSON request to the core component, its answer on standard
//! output (docs/eval.md).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use calvert::DecisionCore;

/// The largest request `calvert eval` reads (docs/eval.md): far above a real one,
/// well below what the core's memory can take.
const MAX_REQUEST_BYTES: u64 = 16 << 20;

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

/// The request from `file` or standard input, refused beyond [`MAX_REQUEST_BYTES`].
fn read_request(file: Option<PathBuf>) -> Result<String, String> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            let source = path.display().to_string();
            let file =
                std::fs::File::open(&path).map_err(|e| format!("cannot read {source}: {e}"))?;
            read_capped(file, &source)
        }
        _ => read_capped(std::io::stdin(), "standard input"),
    }
}

/// At most [`MAX_REQUEST_BYTES`] of text from `input`, named `source` in errors.
fn read_capped(input: impl Read, source: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    input
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {source}: {e}"))?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err(format!(
            "the request on {source} is larger than {} MiB, the most calvert eval reads; real requests are far smaller, so check what is being sent",
            MAX_REQUEST_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read {source}: it is not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}
