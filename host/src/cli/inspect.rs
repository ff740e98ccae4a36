//! `calvert inspect`: what the core component imports (nothing) and exports.

use std::process::ExitCode;

use calvert::DecisionCore;

pub(super) fn run(core: &DecisionCore) -> ExitCode {
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
    ExitCode::SUCCESS
}
