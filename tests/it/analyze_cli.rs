//! End-to-end tests on a hand-made county (`tests/fixtures/small`): the library and the
//! `gridcover` binary, against answers worked out by hand.
//!
//! The county is the box 100–101°E, 40–41°N, split into a west township/village (x < 100.5)
//! and an east township with a south (y < 40.5) and a north village. Radii (gridcover.toml):
//! county 10 km, township 3 km, village 1 km, mobile 30 km.
//!
//! | household | where | veterans | covered by |
//! |---|---|---|---|
//! | H1 | exactly at township station S2 | 2 | township (0 m) |
//! | H2 | 0.005° north of village station S3 (556 m) | 1 | village |
//! | H3 | far south-east corner | 3 | nothing (gap 1) |
//! | H4 | 0.2° south of mobile station S4 (22 km) | 1 | village (mobile) |
//! | H5 | on the corner of all units, at county centre S1 | 1 | county; belongs to the north-east village (half-open rule) |
//! | H6 | north-west, code says the south-east village | 1 | nothing (gap 2), code mismatch |
//! | H7 | outside the province, no code | 1 | nothing, unplaced (reject) |
//! | H8 | latitude 95 | – | rejected on input, line 9 |

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::csv_rows;
use approx::assert_relative_eq;
use gridcover::analysis::{analyze, UnitSource};
use gridcover::index::sphere::ground_m;
use gridcover::ingest::read_data_folder;
use gridcover::model::{Level, NONE};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small")
}

#[test]
fn library_assigns_and_covers_as_worked_out_by_hand() {
    let ds = read_data_folder(&fixture()).unwrap();
    assert_eq!(ds.households.len(), 7, "H8 is rejected");
    assert_eq!(ds.rejects.len(), 1);
    assert_eq!((ds.rejects[0].file.as_str(), ds.rejects[0].row), ("households.csv", 9));
    let a = analyze(&ds);
    let asg = &a.assignment;
    let code = |h: usize| ds.divisions.get(asg.unit[h]).code.as_str();
    assert_eq!(code(0), "990101001001");
    assert_eq!(code(1), "990101002001");
    assert_eq!(code(4), "990101002002", "a point on the shared corner goes to the unit right of and above it");
    assert_eq!(code(5), "990101001001", "position wins over a disagreeing code");
    assert_eq!(asg.source[6], UnitSource::None);
    assert_eq!(asg.mismatches.len(), 1);
    assert_eq!(asg.mismatches[0].household, 5);

    let v = Level::Village.index();
    let t = Level::Township.index();
    // H1 is exactly at S2: distance 0 and covered at township level only.
    assert_eq!(asg.nearest_m[t][0], 0.0);
    assert_eq!(asg.covered[0], 1 << t);
    // H2: 0.005° of latitude north of S3.
    assert_relative_eq!(f64::from(asg.nearest_m[v][1]), ground_m(100.75, 40.255, 100.75, 40.25), max_relative = 1e-6);
    assert_eq!(ds.stations.id[asg.nearest[v][1] as usize], "S3");
    assert_eq!(asg.covered[1], 1 << v);
    assert_eq!(asg.covered[2], 0);
    assert_eq!(asg.covered[3], 1 << v, "the mobile station reaches 22 km");
    assert_eq!(asg.covered[4], 1 << Level::County.index());
    assert_eq!(asg.covered[5], 0);
    // No province or city stations: nearest is none.
    assert_eq!(asg.nearest[Level::Province.index()][0], NONE);
    assert!(asg.nearest_m[Level::City.index()][0].is_nan());
    // Grid G1 is the west village.
    assert_eq!(asg.grid[0], 0);
    assert_eq!(asg.grid[5], 0);
    assert_eq!(asg.grid[1], NONE);

    let county = ds.divisions.find("990101").unwrap();
    let c = &a.coverage.units[county as usize];
    assert_eq!((c.households, c.veterans, c.covered_veterans), (6, 9, 5));
    assert_eq!(c.covered_level_veterans, [0, 0, 1, 2, 2]);
    assert_eq!((c.hardship_households, c.hardship_veterans, c.hardship_covered_veterans), (2, 4, 0));
    assert_eq!((c.martyr_households, c.martyr_veterans, c.martyr_covered_veterans), (1, 2, 2));
    assert_eq!((c.outside_grid_households, c.outside_grid_veterans), (4, 6));
    assert_eq!(c.stations, [0, 0, 1, 1, 2]);
    assert_eq!((c.demonstration_stations, c.mobile_stations), (1, 1));
    assert_eq!(c.townships_without_station, 1, "the east township has no township station");
    assert_eq!(a.coverage.unplaced.households, 1);

    // Gaps: H3 (3 veterans), H6, H7 — ranked by veterans.
    assert_eq!(a.gaps.len(), 3);
    assert_eq!(a.gaps[0].households, vec![2]);
    assert_eq!(a.gaps[0].veterans, 3);
    assert_eq!(ds.stations.id[a.gaps[0].nearest_station.unwrap().0 as usize], "S3");
    assert_eq!(a.workload.len(), 1);
    assert_eq!((a.workload[0].households, a.workload[0].veterans), (2, 3));
}

#[test]
fn analyze_command_writes_every_output() {
    let out = tempfile::tempdir().unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["analyze", "--data"])
        .arg(fixture())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let o = out.path();
    for level in ["province", "city", "county", "township", "village"] {
        assert!(o.join(format!("coverage_{level}.csv")).exists());
    }
    let village = csv_rows(&o.join("coverage_village.csv"));
    assert_eq!(village.len(), 3);
    let ne = village.iter().find(|r| r["code"] == "990101002002").unwrap();
    assert_eq!((ne["households"].as_str(), ne["veterans"].as_str(), ne["covered_veterans"].as_str()), ("2", "2", "2"));
    assert_eq!(ne["coverage_share"], "1.0000");
    let county = &csv_rows(&o.join("coverage_county.csv"))[0];
    assert_eq!(county["coverage_share"], "0.5556");
    assert_eq!(county["rules_ok"], "false");

    let rejects = csv_rows(&o.join("rejects.csv"));
    assert_eq!(rejects.len(), 2);
    assert_eq!((rejects[0]["row"].as_str(), rejects[0]["id"].as_str()), ("9", "H8"));
    assert!(rejects[0]["reason"].contains("out of range"), "{}", rejects[0]["reason"]);
    assert_eq!(rejects[1]["id"], "H7");
    let mism = csv_rows(&o.join("code_mismatches.csv"));
    assert_eq!((mism[0]["household_id"].as_str(), mism[0]["located_code"].as_str()), ("H6", "990101001001"));

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["totals"]["households"], 7);
    assert_eq!(summary["totals"]["covered_veterans"], 5);
    assert_eq!(summary["rejects"]["total"], 2);
    assert_eq!(summary["levels"]["village"]["units"], 3);
    assert!(summary["seconds"]["assign"].is_number());
    assert!(summary["seconds"]["write_assignments"].is_number());

    let gaps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("gaps.geojson")).unwrap()).unwrap();
    let f = &gaps["features"][0];
    assert_eq!(f["id"], "gap-1");
    assert_eq!(f["properties"]["veterans"], 3);
    assert_eq!(f["properties"]["village_code"], "990101002001");
    assert_eq!(f["geometry"]["type"], "Polygon");

    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(o.join("assignments.parquet")).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 7);
    for c in ["household_id", "village_code", "township_code", "county_code", "city_code", "grid_id", "worker"] {
        assert!(df.column(c).is_ok(), "missing column {c}");
    }
    for l in ["province", "city", "county", "township", "village"] {
        assert!(df.column(&format!("nearest_{l}_id")).is_ok());
        assert!(df.column(&format!("nearest_{l}_m")).is_ok());
    }
    let ids = df.column("household_id").unwrap().str().unwrap().get(4).map(str::to_string);
    assert_eq!(ids.as_deref(), Some("H5"));
    let v = df.column("village_code").unwrap().str().unwrap().get(4).map(str::to_string);
    assert_eq!(v.as_deref(), Some("990101002002"));
    let w = df.column("worker").unwrap().str().unwrap().get(0).map(str::to_string);
    assert_eq!(w.as_deref(), Some("王五"));
}

#[test]
fn report_prints_worst_first() {
    let st = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["report", "--level", "village", "--data"])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = String::from_utf8(st.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("village"));
    // Worst first: 东南村 25%, 西村 66.7%, 东北社区 100%.
    assert!(lines[3].contains("东南村") && lines[3].contains("25.0%"), "{text}");
    assert!(lines[4].contains("西村"));
    assert!(lines[5].contains("东北社区"));
}

#[test]
fn missing_data_folder_is_a_clear_error_with_exit_code_2() {
    let st = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["analyze", "--data", "/nonexistent/folder", "--out", "/tmp/never"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("/nonexistent/folder"), "{err}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["generate", "analyze", "report"] {
        let st = Command::new(env!("CARGO_BIN_EXE_gridcover")).args([sub, "--help"]).output().unwrap();
        assert!(st.status.success());
        assert!(String::from_utf8_lossy(&st.stdout).contains("Usage"));
    }
}
