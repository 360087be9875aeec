//! The real server binary on a free loopback port, read by real clients: GDAL's OGC API -
//! Features driver (`ogrinfo OAPIF:…`) and its vector tile driver (MVT), from Debian's gdal-bin
//! (installed by scripts/setup.sh). Fails, with the reason, when `ogrinfo` is missing.
//!
//! Data: the hand-made county of `tests/fixtures/serve` (see `tests/serve_router.rs`), copied
//! into a temporary folder so that the store (`gridcover.sqlite`) is created there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::common::{add_user, start_server, Server};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gridcover");

fn ogrinfo() -> PathBuf {
    match Command::new("ogrinfo").arg("--version").output() {
        Ok(o) if o.status.success() => PathBuf::from("ogrinfo"),
        _ => panic!(
            "ogrinfo (GDAL) is not installed: this test needs Debian's gdal-bin. Run scripts/setup.sh \
             (GRIDCOVER_TEST_PACKAGES includes gdal-bin) or `apt-get install gdal-bin`."
        ),
    }
}

fn copy_fixture(to: &Path) {
    crate::common::copy_fixture_to("serve", to);
}

fn start(data: &Path) -> Server {
    start_server(data, Stdio::inherit(), Duration::from_secs(60))
}

fn get(url: &str, token: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(url).header("Authorization", &format!("Bearer {token}")).call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap())
}

fn run_ogrinfo(args: &[&str], token: &str) -> String {
    let o = Command::new(ogrinfo())
        .args(args)
        .args(["--config", "GDAL_HTTP_HEADERS", &format!("Authorization: Bearer {token}")])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "ogrinfo {args:?} failed:\n{out}\n{err}");
    out
}

#[test]
fn gdal_reads_the_features_api_and_the_tiles() {
    ogrinfo();
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    let leader = add_user(tmp.path(), "李领导", "leader", &[]);
    let worker = add_user(tmp.path(), "王五", "grid_worker", &["G1"]);
    let srv = start(tmp.path());
    let t0 = Instant::now();
    while get(&format!("{}/healthz", srv.base), "").0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(30), "no /healthz");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Without a token: 401.
    assert_eq!(get(&format!("{}/api/collections", srv.base), "").0, 401);

    // OGC API - Features through GDAL: every collection is a layer, with its features.
    let url = format!("OAPIF:{}/api", srv.base);
    let out = run_ogrinfo(&["-ro", "-al", "-so", &url], &leader);
    for layer in [
        "admin-province",
        "admin-city",
        "admin-county",
        "admin-township",
        "admin-village",
        "stations",
        "households",
        "grids",
        "gaps",
    ] {
        assert!(out.contains(&format!("Layer name: {layer}")), "no layer {layer} in:\n{out}");
    }
    // One layer in full: the four stations with their ids and properties.
    let out = run_ogrinfo(&["-ro", &url, "stations"], &leader);
    assert!(out.contains("Feature Count: 4"), "{out}");
    for s in ["S1", "S2", "S3", "S4"] {
        assert!(out.contains(&format!("= {s}")), "station {s} missing:\n{out}");
    }
    assert!(out.contains("POINT (100.75 40.9)"), "{out}");
    // Drill-down through the code filter is the API's; GDAL pages through the villages.
    let out = run_ogrinfo(&["-ro", &url, "admin-village"], &leader);
    assert!(out.contains("Feature Count: 3"), "{out}");
    // The fixture's villages are too small for their figures to be shown: GDAL reads the
    // withheld figures as null, and the names and codes.
    assert!(out.contains("households (String) = (null)"), "{out}");
    assert!(out.contains("coverage_share (String) = (null)"), "{out}");
    assert!(out.contains("name (String) = 西村"), "{out}");
    // The grid worker reads own households with their details; a leader only cells.
    let out = run_ogrinfo(&["-ro", &url, "households"], &worker);
    assert!(out.contains("Feature Count: 8"), "{out}");
    assert!(out.contains("grid_id (String) = G1"), "{out}");
    assert!(!out.contains("= H2"), "another grid's household leaked:\n{out}");
    let out = run_ogrinfo(&["-ro", &url, "households"], &leader);
    assert!(!out.contains("POINT"), "a leader sees no household point:\n{out}");
    assert!(out.contains("MULTIPOLYGON"), "{out}");

    // A vector tile through GDAL's MVT driver (z/x/y taken from the path).
    let (st, tile) = get(&format!("{}/tiles/stations/8/199/96.mvt", srv.base), &leader);
    assert_eq!(st, 200);
    let dir = tmp.path().join("tiles/8/199");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("96.pbf");
    std::fs::write(&p, &tile).unwrap();
    let out = run_ogrinfo(&["-ro", "-al", p.to_str().unwrap()], &leader);
    assert!(out.contains("Layer name: stations"), "{out}");
    assert!(out.contains("Feature Count: 4"), "{out}");
    assert!(out.contains("id (String) = S4"), "{out}");
    assert!(out.contains("mobile (Integer(Boolean)) = 1"), "{out}");
    let (st, tile) = get(&format!("{}/tiles/admin-county/0/0/0.mvt", srv.base), &leader);
    assert_eq!(st, 200);
    let dir = tmp.path().join("tiles/0/0");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("0.pbf");
    std::fs::write(&p, &tile).unwrap();
    let out = run_ogrinfo(&["-ro", "-al", p.to_str().unwrap()], &leader);
    assert!(out.contains("code (String) = 990101"), "{out}");
    assert!(out.contains("POLYGON"), "{out}");
}

#[test]
fn tiles_command_writes_a_folder_gdal_reads() {
    ogrinfo();
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/serve");
    let out = tmp.path().join("tiles");
    let o = Command::new(BIN)
        .args(["tiles", "--max-zoom", "8", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The county at zoom 0, the stations at zoom 8 (tile 199/96), villages only from zoom 8.
    assert!(out.join("admin-county/0/0/0.mvt").exists());
    assert!(out.join("stations/8/199/96.mvt").exists());
    assert!(out.join("admin-village/8/199/96.mvt").exists());
    assert!(!out.join("admin-village/7").exists());
    let tj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stations.json")).unwrap()).unwrap();
    assert_eq!(tj["tiles"][0], "./stations/{z}/{x}/{y}.mvt");
    // Household cells only (no points, no ids) in the offline tiles.
    let o = Command::new(ogrinfo()).args(["-ro", "-al"]).arg(out.join("households/8/199/96.mvt")).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("households (Integer") && !text.contains("POINT") && !text.contains("= H1"), "{text}");
    let o = Command::new(ogrinfo()).args(["-ro", "-al"]).arg(out.join("stations/8/199/96.mvt")).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Feature Count: 4"), "{text}");
}
