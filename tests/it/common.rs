//! Helpers the test modules share.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `tests/fixtures/{name}`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A temporary folder holding a copy of the files of `tests/fixtures/{name}`.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture_to(name, dir.path());
    dir
}

/// Copies the files of `tests/fixtures/{name}` into `to`.
pub fn copy_fixture_to(name: &str, to: &Path) {
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The rows of a CSV file with a header, each as column → value.
pub fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().zip(rec.unwrap().iter()).map(|(h, v)| (h.into(), v.into())).collect())
        .collect()
}
