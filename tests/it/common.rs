//! Helpers the test modules share.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use geo::{LineString, MultiPolygon, Polygon};
use gridcover::model::{AdminArea, Boundaries, Divisions, Level};

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

/// Copies the files of `tests/fixtures/{name}` into `to` (not the folder of its geometry
/// cache, which a test that read the fixture in place leaves there).
pub fn copy_fixture_to(name: &str, to: &Path) {
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
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

/// A rectangle as a multipolygon, lon/lat.
pub fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
    MultiPolygon::new(vec![Polygon::new(
        LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]),
        vec![],
    )])
}

/// A hand-made province for `generate`: two counties as squares, with a few townships and villages each.
pub fn tiny() -> (Divisions, Boundaries) {
    let mut d = Divisions::new();
    d.add("62", "甘肃省", Level::Province, None).unwrap();
    d.add("6209", "酒泉市", Level::City, Some("62")).unwrap();
    d.add("620902", "肃州区", Level::County, Some("6209")).unwrap();
    d.add("620902001", "东北街街道", Level::Township, Some("620902")).unwrap();
    d.add("620902001001", "东关社区居民委员会", Level::Village, Some("620902001")).unwrap();
    d.add("620902001002", "北苑社区居民委员会", Level::Village, Some("620902001")).unwrap();
    d.add("620902101", "西峰镇", Level::Township, Some("620902")).unwrap();
    for v in 1..=4 {
        d.add(&format!("620902101{v:03}"), &format!("西峰{v}村村民委员会"), Level::Village, Some("620902101")).unwrap();
    }
    d.add("620923", "肃北蒙古族自治县", Level::County, Some("6209")).unwrap();
    d.add("620923101", "马鬃山镇", Level::Township, Some("620923")).unwrap();
    d.add("620923101001", "明水村民委员会", Level::Village, Some("620923101")).unwrap();
    d.add("620923101002", "公婆泉村民委员会", Level::Village, Some("620923101")).unwrap();
    let area = |code: &str, mp| AdminArea { unit: d.find(code).unwrap(), geometry: mp, derived: false };
    let b = Boundaries {
        areas: vec![
            area("6209", rect(98.0, 39.0, 100.4, 40.5)),
            area("620902", rect(98.0, 39.0, 98.4, 39.4)),
            area("620923", rect(98.4, 39.0, 100.4, 40.5)),
        ],
    };
    (d, b)
}

/// A `gridcover serve` process on a free loopback port, killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real `gridcover serve --data DATA` on port 0, its stderr to `stderr`, and waits up
/// to `wait` for its `listening on` line.
pub fn start_server(data: &Path, stderr: Stdio, wait: Duration) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(wait)
        .unwrap_or_else(|_| panic!("the server did not report its address in {} s", wait.as_secs()));
    Server { child, base }
}

/// `gridcover user add --name NAME --role ROLE [--grid G]… --data DATA` through the real binary;
/// the token (the last line of its output, alone).
pub fn add_user(data: &Path, name: &str, role: &str, grids: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gridcover"));
    c.args(["user", "add", "--name", name, "--role", role, "--data"]).arg(data);
    for g in grids {
        c.args(["--grid", g]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "user add failed: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.len() >= 20 && !token.contains(' '), "the last line is the token alone: {out:?}");
    token
}
