//! `gridcover scenario` and the scenario library on the hand-made county
//! (`tests/fixtures/small`, described in `tests/analyze_cli.rs`), against answers worked out
//! by hand.
//!
//! The scenario opens N1, a village station (1 km) on H3 in the south-east village (its unit
//! found from its position), and N2, a township station (3 km) for the east township on H4;
//! it closes S3 (the village station 556 m from H2) and S4 (the mobile station covering H4).
//!
//! - H3 (3 veterans, hardship) gains coverage through N1, at 0 m;
//! - H2 (1 veteran) loses it: S3 was its only station within reach (556 m);
//! - H4 keeps it: S4 goes, but N2 stands on it;
//! - covered veterans 5 → 7 of 10 (9 placed in the county: 55.56 % → 77.78 %);
//! - the east township gets its township station: rule 1 holds again in the county;
//! - changed units: the province, city, county, east township and both east villages.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::csv_rows;
use gridcover::analysis::scenario::Change;
use gridcover::analysis::{scenario, Live};
use gridcover::ingest::read_data_folder;
use gridcover::ingest::sites::read_sites;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small")
}

const SITES: &str = "id,name,level,lon,lat,code,demonstration,mobile,radius_m\n\
N1,东南村新站,village,100.9,40.1,,false,false,\n\
N2,东镇新站,township,100.75,40.7,990101002,是,,\n";

#[test]
fn library_scenario_as_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let sites = dir.path().join("sites.csv");
    std::fs::write(&sites, SITES).unwrap();
    let live = Live::new(read_data_folder(&fixture()).unwrap());
    let adds = read_sites(&sites, &live).unwrap();
    assert_eq!(live.dataset().divisions.get(adds[0].unit).code, "990101002001", "located by position");
    assert!(adds[1].demonstration);
    let r = scenario(&live, &adds, &["S3".into(), "S4".into()]).unwrap();
    let hh: Vec<(&str, Change, &str, f64)> =
        r.households.iter().map(|h| (h.id.as_str(), h.change, h.station_id.as_str(), h.distance_m)).collect();
    assert_eq!(hh.len(), 2, "{hh:?}");
    assert_eq!((hh[0].0, hh[0].1, hh[0].2), ("H3", Change::Gained, "N1"));
    assert_eq!(hh[0].3, 0.0);
    assert_eq!((hh[1].0, hh[1].1, hh[1].2), ("H2", Change::Lost, "S3"));
    assert!((hh[1].3 - 556.0).abs() < 0.5, "{}", hh[1].3);
    assert_eq!(r.households[0].codes[4].as_deref(), Some("990101002001"));
    assert_eq!(r.households[0].grid_id, None);
    assert_eq!((r.before.covered_veterans, r.after.covered_veterans, r.after.veterans), (5, 7, 10));
    assert_eq!(r.changed_units, [1, 1, 1, 1, 2]);
    let county = r.units.iter().find(|u| u.code == "990101").unwrap();
    assert_eq!((county.before.covered_veterans, county.after.covered_veterans), (5, 7));
    assert_eq!((county.before.townships_without_station, county.after.townships_without_station), (1, 0));
    let east = r.units.iter().find(|u| u.code == "990101002").unwrap();
    assert_eq!(east.before.stations, [0, 0, 0, 0, 2]);
    assert_eq!(east.after.stations, [0, 0, 0, 1, 1]);
    assert_eq!(east.before.covered_level_veterans, [0, 0, 1, 0, 2]);
    assert_eq!(east.after.covered_level_veterans, [0, 0, 1, 1, 3]);
    let (n1, s3, s4) = (&r.added[0], &r.removed[0], &r.removed[1]);
    assert_eq!((n1.id.as_str(), n1.households, n1.veterans), ("N1", 1, 3));
    assert_eq!((s3.id.as_str(), s3.households, s4.households), ("S3", 1, 0));
    // The engine is as it was; the JSON form carries no household index.
    assert_eq!(live.dataset().stations.len(), 4);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["households"][0].get("household").is_none());
    assert_eq!(json["households"][0]["change"], "gained");
}

#[test]
fn scenario_command_writes_every_level_and_the_households() {
    let dir = tempfile::tempdir().unwrap();
    let sites = dir.path().join("sites.csv");
    std::fs::write(&sites, SITES).unwrap();
    let out = dir.path().join("out");
    let st = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["scenario", "--data"])
        .arg(fixture())
        .arg("--add")
        .arg(&sites)
        .args(["--remove", "S3, S4"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(stdout.contains("covered veterans 5 → 7"), "{stdout}");
    let village = csv_rows(&out.join("scenario_village.csv"));
    assert_eq!(village.len(), 3, "every unit, changed or not");
    let west = village.iter().find(|r| r["code"] == "990101001001").unwrap();
    assert_eq!(west["changed"], "false");
    assert_eq!(west["covered_veterans_delta"], "0");
    let county = &csv_rows(&out.join("scenario_county.csv"))[0];
    assert_eq!(county["changed"], "true");
    let get = |k: &str| county[k].as_str();
    assert_eq!(
        (get("covered_veterans_before"), get("covered_veterans_after"), get("covered_veterans_delta")),
        ("5", "7", "2")
    );
    assert_eq!((get("coverage_share_before"), get("coverage_share_after")), ("0.5556", "0.7778"));
    assert_eq!(get("townships_without_station_delta"), "-1");
    assert_eq!((get("stations_village_before"), get("stations_village_after")), ("2", "1"));
    let hh = csv_rows(&out.join("scenario_households.csv"));
    assert_eq!(hh.len(), 2);
    assert_eq!(
        (hh[0]["household_id"].as_str(), hh[0]["change"].as_str(), hh[0]["station_id"].as_str()),
        ("H3", "gained", "N1")
    );
    assert_eq!(
        (hh[1]["household_id"].as_str(), hh[1]["change"].as_str(), hh[1]["distance_m"].as_str()),
        ("H2", "lost", "556.0")
    );
    assert_eq!(hh[1]["township_code"], "990101002");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scenario_summary.json")).unwrap()).unwrap();
    assert_eq!(s["gained"]["veterans"], 3);
    assert_eq!(s["lost"]["households"], 1);
    assert_eq!(s["changed_units"]["village"], 2);
    assert_eq!(s["added"][1]["code"], "990101002");
    assert_eq!(s["after"]["covered_veterans"], 7);

    // The summary's changed units as Excel (read back by openpyxl): the same units and values
    // as the JSON, Chinese headers, codes as text.
    let st = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["scenario", "--data"])
        .arg(fixture())
        .arg("--add")
        .arg(&sites)
        .args(["--remove", "S3, S4", "--format", "xlsx"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let cells = crate::report_xlsx::read_xlsx(&out.join("scenario_summary.xlsx"));
    let units = s["units"].as_array().unwrap();
    assert_eq!(cells.len(), units.len() + 1);
    assert_eq!(cells[0][0].0, "代码");
    let num = |v: &str| v.parse::<f64>().unwrap();
    for (row, u) in cells[1..].iter().zip(units) {
        assert_eq!(row[0], (u["code"].as_str().unwrap().to_string(), "s".to_string()));
        assert_eq!(row[1].0, u["name"].as_str().unwrap());
        assert_eq!(num(&row[3].0), u["before"]["households"].as_f64().unwrap());
        for (i, f) in [(4, "covered_households"), (7, "covered_veterans"), (10, "coverage_share")] {
            let (b, a) = (u["before"][f].as_f64().unwrap(), u["after"][f].as_f64().unwrap());
            assert!((num(&row[i].0) - b).abs() < 1e-6, "{f} before");
            assert!((num(&row[i + 1].0) - a).abs() < 1e-6, "{f} after");
            assert!((num(&row[i + 2].0) - (a - b)).abs() < 1e-6, "{f} delta");
        }
    }
    let county = cells.iter().find(|r| r[0].0 == "990101").unwrap();
    assert_eq!((county[7].0.as_str(), county[8].0.as_str(), county[9].0.as_str()), ("5", "7", "2"));
}

fn run_err(args: &[&str], sites: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridcover"));
    cmd.args(["scenario", "--data"]).arg(fixture()).arg("--out").arg(dir.path().join("o")).args(args);
    if let Some(text) = sites {
        let p = dir.path().join("sites.csv");
        std::fs::write(&p, text).unwrap();
        cmd.arg("--add").arg(&p);
    }
    let st = cmd.output().unwrap();
    assert_eq!(st.status.code(), Some(2), "{}", String::from_utf8_lossy(&st.stderr));
    String::from_utf8_lossy(&st.stderr).into_owned()
}

#[test]
fn bad_input_is_named() {
    let e = run_err(&["--remove", "S1,NOPE"], None);
    assert!(e.contains("--remove") && e.contains("NOPE"), "{e}");
    let e = run_err(&[], Some("id,name,level,lon,lat\nA,a,village,100.9,40.1\nB,b,hamlet,100.9,40.1\n"));
    assert!(e.contains("sites.csv line 3") && e.contains("hamlet"), "{e}");
    let e = run_err(&[], Some("id,name,level,lon\nA,a,village,100.9\n"));
    assert!(e.contains("sites.csv") && e.contains("`lat`"), "{e}");
    let e = run_err(&[], Some("id,name,level,lon,lat\nS1,a,village,100.9,40.1\n"));
    assert!(e.contains("line 2") && e.contains("existing station"), "{e}");
    let e = run_err(&[], Some("id,name,level,lon,lat\nA,a,village,102.9,40.1\n"));
    assert!(e.contains("line 2") && e.contains("give the code"), "{e}");
    let e = run_err(&[], Some("id,name,level,lon,lat,code\nA,a,village,100.9,95,990101002001\n"));
    assert!(e.contains("line 2") && e.contains("out of range"), "{e}");
    let e = run_err(&[], Some("id,name,level,lon,lat,code\nA,a,village,100.9,40.1,990101\n"));
    assert!(e.contains("line 2") && e.contains("is a county"), "{e}");
    let e = run_err(&[], None);
    assert!(e.contains("nothing to do"), "{e}");
}
