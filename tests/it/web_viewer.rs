//! The web viewer in a real headless browser against the real server: runs
//! `node web/tests/viewer.mjs` with this build's `gridcover` binary. That script makes a small
//! data folder (one city of the bundled Gansu data, generated households), creates a leader, a
//! planner and a grid worker with `gridcover user add`, starts `gridcover serve` on a free
//! loopback port and drives Debian's chromium (playwright-core) through every view in Chinese
//! and English: no console errors, the map draws features, a click opens a popup, the token
//! never appears in a URL. Screenshots go to `target/web-screenshots/`.
//!
//! Needs `scripts/setup.sh` (chromium, fonts-noto-cjk, `npm ci --prefix web`); fails, saying so,
//! when any of it is missing.

use std::path::Path;
use std::process::Command;

#[test]
fn web_viewer_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/web-screenshots");
    let run = Command::new("node")
        .arg(root.join("web/tests/viewer.mjs"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_gridcover"))
        .arg("--out")
        .arg(&out)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (install nodejs: scripts/setup.sh): {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(run.status.success(), "web viewer test failed ({}):\n{stdout}\n{stderr}", run.status);
    assert!(stdout.contains(" passed, 0 failed"), "no summary line from the viewer test:\n{stdout}");
}
