//! A plan `within` one unit made on the scoped read of a folder
//! (`ingest::read_data_folder_within`, what `gridcover plan --within` reads) is the plan made on
//! the whole folder: same sites, objective, bound, summary and files.
//!
//! The folder has two provinces side by side, 青海 (63, west of lon 97.9) and 甘肃 (62, east of
//! lon 98: the hand-made province of `common::tiny`), generated households, stations and grids,
//! and by hand:
//! - `S63EDGE`, a village station of 63 just west of 62, whose 2 km reach covers the
//!   household `EDGE` of 62 just east of it; `S63MOBILE`, a mobile station of 63 whose own 15 km
//!   radius reaches into 62;
//! - `BYCODE`, a household outside every boundary whose code is a village of 62 (assigned by
//!   its code: in scope); `MISMATCH`, a household in 63 whose code is a village of 62 (assigned
//!   by its position: out of scope, but read for its code); `FAR63`, one outside every boundary
//!   with a code of 63 (not read).

use std::path::Path;

use gridcover::analysis::{analyze, analyze_for_plan};
use gridcover::generate::{generate, write_data_folder, GenerateParams};
use gridcover::ingest::{read_data_folder, read_data_folder_within, ReadOptions};
use gridcover::model::{AdminArea, HouseholdRow, Level, StationRow};
use gridcover::output::plan::write_plan;
use gridcover::plan::{solve, CandidateSource, PlanRequest, PlanResult, Problem};

use super::common::{rect, tiny};

/// Writes the two-province folder into `dir`.
fn two_provinces(dir: &Path) {
    let (mut d, mut b) = tiny();
    d.add("63", "青海省", Level::Province, None).unwrap();
    d.add("6301", "西宁市", Level::City, Some("63")).unwrap();
    d.add("630102", "城东区", Level::County, Some("6301")).unwrap();
    for t in 1..=2 {
        let tc = format!("630102{t:03}");
        d.add(&tc, &format!("东{t}街道"), Level::Township, Some("630102")).unwrap();
        for v in 1..=3 {
            d.add(&format!("{tc}{v:03}"), &format!("东{t}{v}社区"), Level::Village, Some(&tc)).unwrap();
        }
    }
    let area = |code: &str, mp| AdminArea { unit: d.find(code).unwrap(), geometry: mp, derived: false };
    b.areas.extend([
        area("62", rect(98.0, 39.0, 100.4, 40.5)),
        area("63", rect(96.0, 39.0, 97.9, 40.5)),
        area("6301", rect(96.0, 39.0, 97.9, 40.5)),
        area("630102", rect(96.0, 39.0, 97.9, 40.5)),
    ]);
    let mut g = generate(&d, &b, &GenerateParams::new(7, 4000)).unwrap();
    let u = |code: &str| d.find(code).unwrap();
    let station = |id: &str, code: &str, lon, lat, mobile, radius_m| StationRow {
        id: id.into(),
        name: id.into(),
        level: Level::Village,
        unit: u(code),
        lon,
        lat,
        demonstration: false,
        mobile,
        radius_m,
    };
    g.stations.push(station("S63EDGE", "630102001001", 97.995, 39.2, false, None));
    g.stations.push(station("S63MOBILE", "630102002001", 97.95, 40.2, true, Some(15_000.0)));
    let household = |id: &str, lon, lat, code: Option<&str>| HouseholdRow {
        id: id.into(),
        lon,
        lat,
        veterans: 2,
        code: code.map(u),
        difficulty: false,
        martyr_family: false,
        name: None,
        address: None,
    };
    g.households.push(household("EDGE", 98.004, 39.2, None));
    g.households.push(household("NEARMOBILE", 98.05, 40.2, None));
    g.households.push(household("BYCODE", 100.9, 39.2, Some("620923101001")));
    g.households.push(household("MISMATCH", 97.5, 39.7, Some("620902101001")));
    g.households.push(household("FAR63", 95.5, 39.5, Some("630102001002")));
    write_data_folder(dir, &d, &g).unwrap();
}

/// The result as JSON without its timings (they differ between any two runs).
fn untimed(r: &PlanResult) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v["seconds"] = 0.into();
    v["timings"] = serde_json::Value::Null;
    v
}

fn requests(within: &str) -> Vec<PlanRequest> {
    let base = PlanRequest { level: Level::Village, within: Some(within.into()), ..Default::default() };
    let h3 = CandidateSource::H3 { resolution: Some(8) };
    vec![
        PlanRequest { problem: Problem::Mclp, new: Some(3), ..base.clone() },
        PlanRequest { problem: Problem::Mclp, new: Some(5), candidates: CandidateSource::Grids, ..base.clone() },
        PlanRequest { problem: Problem::Mclp, new: Some(10), candidates: h3.clone(), ..base.clone() },
        PlanRequest {
            problem: Problem::Mclp,
            new: Some(10),
            capacity: Some(20),
            candidates: h3.clone(),
            ..base.clone()
        },
        PlanRequest { problem: Problem::Lscp, candidates: h3.clone(), ..base.clone() },
        PlanRequest { problem: Problem::Pmedian, new: Some(10), candidates: h3, radius_m: Some(5000.0), ..base },
    ]
}

#[test]
fn a_scoped_read_gives_the_plan_of_the_whole_folder() {
    let dir = tempfile::tempdir().unwrap();
    two_provinces(dir.path());
    let full = read_data_folder(dir.path()).unwrap();
    let fan = analyze(&full);
    let id = |ds: &gridcover::model::Dataset, id: &str| {
        (0..ds.households.len()).find(|&h| ds.households.id.get(h) == Some(id))
    };
    // The station just outside 62 covers EDGE, the mobile one NEARMOBILE; BYCODE is assigned
    // to 62 by its code, MISMATCH to 63 by its position.
    let stations = &full.stations;
    for (h, sid) in [("EDGE", "S63EDGE"), ("NEARMOBILE", "S63MOBILE")] {
        let h = id(&full, h).unwrap();
        let s = (0..stations.len()).find(|&s| stations.id[s] == sid).unwrap() as u32;
        assert_eq!(fan.assignment.nearest[Level::Village.index()][h], s, "{:?}", full.households.id.get(h));
        assert!(fan.assignment.covered[h] & (1 << Level::Village.index()) != 0);
        assert_eq!(full.divisions.get(fan.assignment.unit[h]).code.get(..2), Some("62"));
    }
    let unit_code = |ds: &gridcover::model::Dataset, an: &gridcover::analysis::Analysis, h: &str| {
        ds.divisions.get(an.assignment.unit[id(ds, h).unwrap()]).code.clone()
    };
    assert_eq!(unit_code(&full, &fan, "BYCODE"), "620923101001");
    assert!(unit_code(&full, &fan, "MISMATCH").starts_with("63"));
    assert!(id(&full, "FAR63").is_some());

    let mut planned = 0;
    for within in ["62", "620902", "6209"] {
        let (scoped, read) = read_data_folder_within(dir.path(), within, ReadOptions::ANALYSIS).unwrap();
        let san = analyze_for_plan(&scoped);
        // Less was read, and what decides the answer was.
        assert_eq!(read.households, scoped.households.len());
        assert!(scoped.households.len() < full.households.len(), "{within}");
        assert!(scoped.boundaries.areas.len() < full.boundaries.areas.len(), "{within}");
        assert!(scoped.grids.len() < full.grids.len(), "{within}");
        assert_eq!(scoped.stations.len(), full.stations.len());
        assert!(id(&scoped, "FAR63").is_none());
        assert_eq!(id(&scoped, "BYCODE").is_some(), within != "620902", "{within}");
        assert!(id(&scoped, "MISMATCH").is_some());
        assert_eq!(unit_code(&scoped, &san, "MISMATCH"), unit_code(&full, &fan, "MISMATCH"));
        if within == "62" {
            assert!(id(&scoped, "EDGE").is_some() && id(&scoped, "NEARMOBILE").is_some());
            assert_eq!(unit_code(&scoped, &san, "BYCODE"), "620923101001");
        }
        for req in requests(within) {
            let a = solve(&full, &fan, &req);
            let b = solve(&scoped, &san, &req);
            match (&a, &b) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(untimed(a), untimed(b), "{req:?}");
                    assert!(a.units.iter().all(|u| u.code.starts_with(within)), "the summary lists the scope");
                    assert!(a.units.iter().any(|u| u.code == within));
                    planned += 1;
                }
                (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err(), "{req:?}"),
            }
        }
    }
    assert!(planned >= 12, "most requests make a plan ({planned})");
    // The whole province: the households by code and just across the border count.
    let req = &requests("62")[2];
    let r = solve(&full, &fan, req).unwrap();
    let in62: u64 = (0..full.households.len())
        .filter(|&h| full.divisions.get(fan.assignment.unit[h]).code.starts_with("62"))
        .map(|h| u64::from(full.households.veterans[h]))
        .sum();
    assert_eq!(r.veterans, in62);
}

#[test]
fn the_command_writes_the_files_of_the_whole_folder() {
    let dir = tempfile::tempdir().unwrap();
    two_provinces(dir.path());
    let full = read_data_folder(dir.path()).unwrap();
    let an = analyze(&full);
    let req = PlanRequest {
        problem: Problem::Mclp,
        level: Level::Village,
        new: Some(10),
        within: Some("62".into()),
        candidates: CandidateSource::H3 { resolution: None },
        ..Default::default()
    };
    let expected = dir.path().join("expected");
    write_plan(&expected, &solve(&full, &an, &req).unwrap()).unwrap();
    let out = dir.path().join("plan");
    let data = dir.path().to_str().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["plan", "--data", data, "--problem", "mclp", "--level", "village", "--new", "10"])
        .args(["--candidates", "h3", "--within", "62", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("note: read scoped to 62:"), "{stderr}");
    for f in ["plan.csv", "plan.geojson"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(expected.join(f)).unwrap(), "{f}");
    }
    let summary = |p: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["seconds"] = 0.into();
        v["timings"] = serde_json::Value::Null;
        v
    };
    assert_eq!(summary(&out.join("plan_summary.json")), summary(&expected.join("plan_summary.json")));
}
