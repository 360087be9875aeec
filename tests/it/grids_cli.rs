//! `gridcover grids` on the hand-made county (`tests/fixtures/small`): the east township's
//! households H2, H3 and H4 lie inside it; H5 lies on its west edge (the corner shared by all
//! units) and so in no grid drawn inside it, which the summary says.

use std::path::{Path, PathBuf};
use std::process::Command;

use gridcover::crs::Crs;
use gridcover::ingest::{read_data_folder, read_grids};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small")
}

fn grids(args: &[&str], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["grids", "--data"])
        .arg(fixture())
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn grids_command_writes_a_data_folder_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let st = grids(&["--within", "990101002", "--max-households", "2"], &out);
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(table.contains("2 grids for 3 households (all households; at least 2 needed"), "{table}");
    let fc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("grids.geojson")).unwrap()).unwrap();
    let f = fc["features"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["properties"]["id"], "G990101002-1");
    assert_eq!(f[0]["properties"]["worker"], "");
    assert_eq!(f[0]["properties"]["code"], "990101002");
    assert_eq!(f[0]["properties"]["households"], 1);
    assert_eq!(f[1]["properties"]["veterans"], 2);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("grids_summary.json")).unwrap()).unwrap();
    assert_eq!(s["grids"], 2);
    assert_eq!(s["lower_bound"], 2);
    assert_eq!(s["outside_region"]["ids"][0], "H5");
    assert_eq!(s["households_per_grid"]["max"], 2);
    assert_eq!(s["take"], "all");
    // Once workers are assigned, the file reads back as a data folder's grids, none rejected.
    let text =
        std::fs::read_to_string(out.join("grids.geojson")).unwrap().replace("\"worker\":\"\"", "\"worker\":\"张三\"");
    let p = dir.path().join("grids.geojson");
    std::fs::write(&p, text).unwrap();
    let ds = read_data_folder(&fixture()).unwrap();
    let mut rejects = Vec::new();
    let g = read_grids(&p, &Crs::Wgs84, &ds.divisions, &mut rejects).unwrap();
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(g.len(), 2);
}

#[test]
fn bad_units_and_caps_are_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--within", "990101", "--max-households", "5"], "990101 is a county"),
        (vec!["--within", "990199001", "--max-households", "5"], "unknown admin code 990199001"),
        (vec!["--within", "990101002", "--max-households", "0"], "max_households"),
        (vec!["--within", "990101001001", "--max-households", "5", "--ungridded-only"], "outside every existing grid"),
    ] {
        let st = grids(&args, &dir.path().join("o"));
        assert_eq!(st.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8_lossy(&st.stderr);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
}
