//! The key of the code that computes the households' assignment, made at build time.
//!
//! The kept assignment ([`super::assignment_cache`]) is what this program's code computed from
//! its inputs; a program whose assignment code differs must compute it afresh, and one whose
//! code differs elsewhere (the server, the reports, the viewer: most upgrades) may use it. So
//! the key is not the program's file but the sources the assignment is computed by:
//!
//! - the computation: `src/analysis/assign.rs` and the indexes (`src/index/`), which reach no
//!   other part of the crate (a test holds them to that: [`COMPUTING`]);
//! - the data types they read (`src/model/`), the kept files' format and this key
//!   (`src/store/assignment_cache.rs`, `cache_file.rs`, this file) and `build.rs`;
//! - the dependencies: `Cargo.lock` without gridcover's own entry and `Cargo.toml`'s
//!   `[dependencies]` table (their versions and features; gridcover's own version and the
//!   table's comments are left out, so a release that changes none of the above keeps the key);
//! - the toolchain: the compiler's `rustc -vV`, the target, the profile and the flags
//!   (`CARGO_ENCODED_RUSTFLAGS`), hashed by `build.rs` apart ([`key`]).
//!
//! Each file counts by its path, length and bytes (an absent one by its path alone), in the
//! order of [`files`]. `build.rs` includes this file (`#[path]`), computes the key and gives it
//! to the program as `GRIDCOVER_ASSIGNMENT_KEY` (hex) beside the toolchain's part
//! (`GRIDCOVER_BUILD_TOOLCHAIN`), and asks cargo to run it again when any keyed file changes.
//! The store's tests compute it again from the sources and check that a change is a new key.

use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

/// The files and folders (walked for their `.rs` files) whose content decides the assignment,
/// relative to the package's root.
pub const KEYED: &[&str] = &[
    "Cargo.lock",
    "Cargo.toml",
    "build.rs",
    "src/analysis/assign.rs",
    "src/index",
    "src/model",
    "src/store/assignment_cache.rs",
    "src/store/cache_file.rs",
    "src/store/source_key.rs",
];

/// The files that compute the assignment: every module they name (`crate::…`, `super::…`) must
/// be keyed.
pub const COMPUTING: &[&str] = &["src/analysis/assign.rs", "src/index"];

/// The keyed files under `root`, relative with `/`, in order: each entry of [`KEYED`] in turn,
/// a folder as its `.rs` files sorted by path. A folder that cannot be read is an error; an
/// absent file is listed (it counts as absent).
pub fn files(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in KEYED {
        let path = root.join(entry);
        if path.is_dir() {
            let mut found = Vec::new();
            walk(root, &path, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push((*entry).to_string());
        }
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// The part of a keyed file that counts: `Cargo.lock` without gridcover's own `[[package]]`
/// entry, `Cargo.toml`'s `[dependencies]` table without its comment and blank lines, any other
/// file whole.
pub fn counted(rel: &str, bytes: Vec<u8>) -> Vec<u8> {
    if !matches!(rel, "Cargo.lock" | "Cargo.toml") {
        return bytes;
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return e.into_bytes(),
    };
    match rel {
        "Cargo.lock" => {
            let own = "[[package]]\nname = \"gridcover\"\n";
            text.split_inclusive("\n\n").filter(|entry| !entry.starts_with(own)).collect::<String>().into_bytes()
        }
        "Cargo.toml" => {
            let mut inside = false;
            let mut kept = String::new();
            for line in text.lines() {
                if line.starts_with('[') {
                    inside = line.trim() == "[dependencies]";
                }
                let note = line.trim_start().starts_with('#') || line.trim().is_empty();
                if inside && !note {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            kept.into_bytes()
        }
        _ => text.into_bytes(),
    }
}

/// The xxh3-128 of the keyed files under `root` ([`files`], [`counted`]).
pub fn sources_digest(root: &Path) -> std::io::Result<[u8; 16]> {
    let mut h = Xxh3::new();
    for rel in files(root)? {
        h.update(rel.as_bytes());
        h.update(&[0]);
        match std::fs::read(root.join(&rel)) {
            Ok(bytes) => {
                let part = counted(&rel, bytes);
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(&part);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => h.update(b"absent"),
            Err(e) => return Err(e),
        }
    }
    Ok(h.digest128().to_le_bytes())
}

/// The xxh3-128 of the toolchain's description (compiler, target, profile, flags).
pub fn toolchain_digest(description: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(description).to_le_bytes()
}

/// The key: the sources' digest and the toolchain's.
pub fn key(sources: &[u8; 16], toolchain: &[u8; 16]) -> [u8; 16] {
    let mut h = Xxh3::new();
    h.update(b"gridcover assignment key 1");
    h.update(sources);
    h.update(toolchain);
    h.digest128().to_le_bytes()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn unhex(s: &str) -> [u8; 16] {
        let v: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
        v.try_into().unwrap()
    }

    /// The modules `text` (the file `rel`) names that are not keyed.
    fn unkeyed_references(rel: &str, text: &str) -> Vec<String> {
        let keyed = |path: &str| {
            KEYED.iter().any(|k| path == *k || path.starts_with(&format!("{k}/")) || path == format!("{k}.rs").as_str())
        };
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        // `super::` from `a/b/c.rs` is `a/b`; from `a/b/mod.rs` it is `a`.
        let parent = if rel.ends_with("/mod.rs") { dir.rsplit_once('/').map_or("", |(d, _)| d) } else { dir };
        let mut out = Vec::new();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let module = format!("src/{name}");
            if !keyed(&module) && !keyed(&format!("{module}.rs")) {
                out.push(format!("{rel}: crate::{name}"));
            }
        }
        if text.contains("super::") && !(keyed(parent) || keyed(&format!("{parent}/mod.rs"))) {
            out.push(format!("{rel}: super:: ({parent})"));
        }
        out
    }

    #[test]
    fn the_built_key_is_the_key_of_the_sources_as_they_are() {
        let toolchain = unhex(env!("GRIDCOVER_BUILD_TOOLCHAIN"));
        let key = key(&sources_digest(&root()).unwrap(), &toolchain);
        assert_eq!(hex(&key), env!("GRIDCOVER_ASSIGNMENT_KEY"));
        assert_eq!(super::super::cache_file::PROGRAM_KEY, env!("GRIDCOVER_ASSIGNMENT_KEY"));
        // Another toolchain is another key.
        assert_ne!(hex(&super::key(&sources_digest(&root()).unwrap(), &toolchain_digest(b"rustc 0.0.0"))), hex(&key));
    }

    #[test]
    fn the_keyed_files_are_the_assignment_code_the_model_the_format_and_the_build() {
        let files = files(&root()).unwrap();
        for f in ["src/analysis/assign.rs", "src/index/polygon.rs", "src/index/mod.rs", "src/model/dataset.rs"] {
            assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
        }
        assert!(files.iter().all(|f| !f.starts_with("src/serve") && !f.starts_with("src/cli")));
        assert_eq!(files.iter().filter(|f| f.starts_with("src/index/")).count(), 4);
        let mut sorted = files[3..].to_vec();
        sorted.sort();
        assert_eq!(sorted, files[3..], "the sources in path order");
    }

    #[test]
    fn a_change_to_a_keyed_file_is_another_key_and_a_change_elsewhere_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let at = tmp.path();
        let files = files(&root()).unwrap();
        for f in &files {
            let to = at.join(f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join(f), &to).unwrap();
        }
        let base = sources_digest(at).unwrap();
        assert_eq!(base, sources_digest(&root()).unwrap(), "the copy has the same key");
        // Every keyed file, one byte more: another key; put back: the same.
        for f in &files {
            let path = at.join(f);
            let before = std::fs::read(&path).unwrap();
            let mut after = before.clone();
            if f == "Cargo.toml" {
                let text = String::from_utf8(before.clone()).unwrap();
                after = text.replacen("[dependencies]\n", "[dependencies]\nextra = \"1\"\n", 1).into_bytes();
            } else if f == "Cargo.lock" {
                after.extend_from_slice(b"\n[[package]]\nname = \"extra\"\nversion = \"1.0.0\"\n");
            } else {
                after.push(b' ');
            }
            std::fs::write(&path, &after).unwrap();
            assert_ne!(sources_digest(at).unwrap(), base, "{f} changed");
            std::fs::write(&path, &before).unwrap();
            assert_eq!(sources_digest(at).unwrap(), base, "{f} put back");
        }
        let edit = |rel: &str, from: &str, to: &str| {
            let path = at.join(rel);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{rel} has {from}");
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let d = sources_digest(at).unwrap();
            std::fs::write(&path, text).unwrap();
            d
        };
        // gridcover's own version, in Cargo.toml and Cargo.lock: the same key.
        let own = "[[package]]\nname = \"gridcover\"\nversion = \"";
        assert_eq!(edit("Cargo.lock", own, &format!("{own}9.")), base);
        assert_eq!(
            edit("Cargo.toml", "name = \"gridcover\"\nversion = \"", "name = \"gridcover\"\nversion = \"9."),
            base
        );
        // A dependency's version in the lock, or its features: another key.
        assert_ne!(edit("Cargo.lock", "name = \"geo\"\nversion = \"", "name = \"geo\"\nversion = \"9."), base);
        assert_ne!(edit("Cargo.toml", "rstar = \"", "rstar = { features = [\"serde\"] } # \""), base);
        // A comment among the dependencies: the same key.
        assert_eq!(edit("Cargo.toml", "[dependencies]\n", "[dependencies]\n# why\n\n"), base);
        // Test-only dependencies and the profiles: the same key.
        assert_eq!(edit("Cargo.toml", "[dev-dependencies]\n", "[dev-dependencies]\nextra = \"1\"\n"), base);
        // A new source in a keyed folder is another key; another kind of file there is not.
        std::fs::write(at.join("src/index/extra.rs"), "").unwrap();
        assert_ne!(sources_digest(at).unwrap(), base);
        std::fs::remove_file(at.join("src/index/extra.rs")).unwrap();
        std::fs::write(at.join("src/index/notes.md"), "x").unwrap();
        assert_eq!(sources_digest(at).unwrap(), base);
        // Code elsewhere (the server, the other analyses) is not keyed.
        std::fs::create_dir_all(at.join("src/serve")).unwrap();
        std::fs::write(at.join("src/serve/mod.rs"), "fn f() {}").unwrap();
        std::fs::write(at.join("src/analysis/coverage.rs"), "fn g() {}").unwrap();
        assert_eq!(sources_digest(at).unwrap(), base);
        // A keyed file gone (a package without Cargo.lock): another key, not an error.
        std::fs::remove_file(at.join("Cargo.lock")).unwrap();
        assert_ne!(sources_digest(at).unwrap(), base);
    }

    #[test]
    fn the_assignment_code_names_only_keyed_modules() {
        let mut unkeyed = Vec::new();
        for rel in files(&root()).unwrap() {
            if COMPUTING.iter().any(|c| rel == *c || rel.starts_with(&format!("{c}/"))) {
                let text = std::fs::read_to_string(root().join(&rel)).unwrap();
                unkeyed.extend(unkeyed_references(&rel, &text));
            }
        }
        assert!(unkeyed.is_empty(), "add these to source_key::KEYED, or move the code: {unkeyed:?}");
        // The check finds what it is for.
        let found =
            unkeyed_references("src/analysis/assign.rs", "use crate::serve::x; use super::coverage; crate::model::A");
        assert_eq!(found, ["src/analysis/assign.rs: crate::serve", "src/analysis/assign.rs: super:: (src/analysis)"]);
        assert!(unkeyed_references("src/index/stations.rs", "use super::sphere; use crate::index::X;").is_empty());
        assert_eq!(unkeyed_references("src/index/mod.rs", "use super::x;"), ["src/index/mod.rs: super:: (src)"]);
    }
}
