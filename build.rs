//! Computes the key of the code that computes the households' assignment
//! (`src/store/source_key.rs` says which files and why) and gives it to the program as
//! `GRIDCOVER_ASSIGNMENT_KEY`, with the toolchain's part as `GRIDCOVER_BUILD_TOOLCHAIN`.

#[path = "src/store/source_key.rs"]
#[allow(dead_code)]
mod source_key;

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for entry in source_key::KEYED {
        // A folder is watched whole (a file added to it is a change too).
        println!("cargo:rerun-if-changed={entry}");
    }
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("running {} -vV for the assignment's key: {e}", rustc.to_string_lossy()));
    let mut description = version.stdout;
    for var in ["TARGET", "PROFILE", "CARGO_ENCODED_RUSTFLAGS"] {
        description.extend_from_slice(format!("\n{var}={}", std::env::var(var).unwrap_or_default()).as_bytes());
    }
    let toolchain = source_key::toolchain_digest(&description);
    let sources = source_key::sources_digest(&root)
        .unwrap_or_else(|e| panic!("reading the assignment's sources under {}: {e}", root.display()));
    let key = source_key::key(&sources, &toolchain);
    println!("cargo:rustc-env=GRIDCOVER_ASSIGNMENT_KEY={}", source_key::hex(&key));
    println!("cargo:rustc-env=GRIDCOVER_BUILD_TOOLCHAIN={}", source_key::hex(&toolchain));
}
