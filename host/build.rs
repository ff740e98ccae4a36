//! Builds the decision core as a WebAssembly component, so that the normal build of
//! the host is all it takes (no manual step).
//!
//! 1. `cargo rustc` builds `core-wasm` for `wasm32-unknown-unknown` as a cdylib, in its
//!    own target directory under this build's target directory (a nested cargo must
//!    not share the outer one's lock), with the `core-wasm` profile.
//! 2. `wit-component` turns the module, which carries its WIT world in a custom
//!    section from wit-bindgen, into a component. The target has no WASI, so the
//!    component imports nothing: no clock, randomness, environment or files.
//!
//! The result is `$OUT_DIR/calvert_core.wasm`, embedded by `src/component.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    let core_dir = root.join("core-wasm");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    for watched in [
        "core-wasm/src",
        "core-wasm/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    // OUT_DIR is <target>/<profile>/build/<pkg>/out: keep the nested build beside it.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.clone())
        .join("core-wasm-build");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("rustc")
        .arg("--manifest-path")
        .arg(core_dir.join("Cargo.toml"))
        .args([
            "--lib",
            "--crate-type",
            "cdylib",
            "--target",
            WASM_TARGET,
            "--profile",
            "core-wasm",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags are for the native host (sanitizers, clippy's wrapper,
    // coverage): none of them belong in the WebAssembly build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .expect("could not run cargo to build the WebAssembly core");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            panic!(
                "the WebAssembly target is not installed: run `rustup target add {WASM_TARGET}` and build again\n{stderr}"
            );
        }
        panic!("building the WebAssembly core failed:\n{stderr}");
    }

    let module_path = target_dir
        .join(WASM_TARGET)
        .join("core-wasm")
        .join("calvert_core.wasm");
    let module = fs::read(&module_path).unwrap_or_else(|e| {
        panic!(
            "the core module {} could not be read: {e}",
            module_path.display()
        )
    });
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("the core module could not be made into a component: {e:?}"));
    fs::write(out_dir.join("calvert_core.wasm"), component).expect("OUT_DIR is writable");
}
