//! `gridcover plan` and `plan::solve` on the hand-made county of `tests/fixtures/small`
//! (see `tests/analyze_cli.rs` for its households), against answers worked out by hand.
//!
//! At village level (radius 1 km; the mobile station S4 reaches 30 km) the households with
//! veterans are H1 (2 veterans, at 100.25/40.5), H2 (1, covered by S3), H3 (3, at 100.9/40.1),
//! H4 (1, covered by S4), H5 (1, at 100.5/40.5), H6 (1, at 100.1/40.9) and H7 (1, outside the
//! province at 101.5/40.5): 10 veterans, 2 covered. Only the west village 西村 has no village
//! station; its centroid is H1's position.
//!
//! The candidate file `sites.csv` written below has A at H3, B at H1, C at H6, D at H5.

use std::path::{Path, PathBuf};
use std::process::Command;

use gridcover::analysis::analyze;
use gridcover::ingest::read_data_folder;
use gridcover::model::Level;
use gridcover::plan::{solve, CandidateSource, PlanError, PlanRequest, Problem, Site};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small")
}

fn sites() -> Vec<Site> {
    let s = |id: &str, lon, lat| Site { id: id.into(), lon, lat };
    vec![s("A", 100.9, 40.1), s("B", 100.25, 40.5), s("C", 100.1, 40.9), s("D", 100.5, 40.5)]
}

fn req(problem: Problem, new: Option<usize>) -> PlanRequest {
    PlanRequest {
        problem,
        level: Level::Village,
        new,
        candidates: CandidateSource::Sites { sites: sites() },
        ..Default::default()
    }
}

#[test]
fn library_plans_match_hand_answers() {
    let ds = read_data_folder(&fixture()).unwrap();
    let an = analyze(&ds);

    // Default candidates: the west village only, at its centroid, covering H1.
    let r = solve(&ds, &an, &PlanRequest { new: Some(1), ..Default::default() }).unwrap();
    assert_eq!(r.candidates, 1);
    assert_eq!(r.sites.len(), 1);
    assert_eq!(r.sites[0].id, "990101001001");
    assert_eq!(r.sites[0].source, "village");
    assert!((r.sites[0].lon - 100.25).abs() < 1e-9 && (r.sites[0].lat - 40.5).abs() < 1e-9);
    assert_eq!(r.sites[0].codes, ["99", "9901", "990101", "990101001", "990101001001"].map(String::from));
    assert_eq!((r.objective, r.bound, r.gap), (2.0, 2.0, 0.0));
    assert_eq!((r.veterans, r.covered_before, r.covered_after), (10, 2, 4));

    // MCLP K=2 over the file's sites: A (3) then B (2).
    let r = solve(&ds, &an, &req(Problem::Mclp, Some(2))).unwrap();
    let ids: Vec<&str> = r.sites.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["A", "B"]);
    assert_eq!(r.sites.iter().map(|s| s.newly_covered_veterans).collect::<Vec<_>>(), [3, 2]);
    assert_eq!((r.objective, r.gap), (5.0, 0.0));
    assert!(r.bound >= 5.0 && r.bound < 5.0 + 1e-3);
    assert_eq!(r.unreachable_veterans, 1, "H7 is beyond every candidate");
    // Unit table: the county goes from 2 to 7 of its 9 veterans; H7 lies in no unit.
    let county = r.units.iter().find(|u| u.code == "990101").unwrap();
    assert_eq!((county.veterans, county.covered_before, county.covered_after, county.new_sites), (9, 2, 7, 2));
    assert_eq!(r.units.len(), 8, "every unit of village level and above");

    // Required and excluded.
    let mut q = req(Problem::Mclp, Some(2));
    q.require = vec!["D".into()];
    q.exclude = vec!["A".into()];
    let r = solve(&ds, &an, &q).unwrap();
    let ids: Vec<&str> = r.sites.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["D", "B"]);
    assert!(r.sites[0].required);
    assert_eq!(r.objective, 3.0);

    // LSCP: every coverable veteran takes all four sites; 90% (9 of 10) also; 70% needs A and B.
    let r = solve(&ds, &an, &req(Problem::Lscp, None)).unwrap();
    assert_eq!((r.objective, r.bound), (4.0, 4.0));
    let mut q = req(Problem::Lscp, None);
    q.target = Some(0.7);
    let r = solve(&ds, &an, &q).unwrap();
    assert_eq!((r.objective, r.bound, r.gap), (2.0, 2.0, 0.0));
    assert_eq!(r.covered_after, 7);
    q.target = Some(0.95);
    let r = solve(&ds, &an, &q).unwrap();
    assert_eq!(r.objective, 4.0);
    assert!(r.notes.iter().any(|n| n.contains("out of reach")), "{:?}", r.notes);

    // Capacitated, 2 veterans per station: A serves 2 of H3's 3, B serves H1's 2.
    let mut q = req(Problem::Mclp, Some(2));
    q.capacity = Some(2);
    let r = solve(&ds, &an, &q).unwrap();
    assert_eq!((r.served_before, r.served_after), (Some(2.0), Some(6.0)));
    assert_eq!(r.objective, 4.0);
    assert_eq!(r.sites.iter().map(|s| s.served_veterans).collect::<Vec<_>>(), [Some(2.0), Some(2.0)]);
    assert!(r.bound >= r.objective);

    // p-median with one new site: it never makes anyone farther, and the bound is below.
    let r = solve(&ds, &an, &req(Problem::Pmedian, Some(1))).unwrap();
    assert!(r.objective <= r.mean_distance_before_m.unwrap() + 1e-9);
    assert!((r.objective - r.mean_distance_after_m.unwrap()).abs() < 1e-6);
    assert!(r.bound <= r.objective + 1e-9);
}

#[test]
fn bad_requests_get_clear_errors() {
    let ds = read_data_folder(&fixture()).unwrap();
    let an = analyze(&ds);
    let e = |q: PlanRequest| solve(&ds, &an, &q).unwrap_err();
    assert_eq!(e(req(Problem::Mclp, Some(5))), PlanError::KTooLarge { k: 5, candidates: 4 });
    assert_eq!(e(req(Problem::Mclp, None)), PlanError::MissingK("mclp"));
    let mut q = req(Problem::Mclp, Some(1));
    q.radius_m = Some(-5.0);
    assert_eq!(e(q), PlanError::BadRadius(-5.0));
    let mut q = req(Problem::Mclp, Some(1));
    q.within = Some("990199".into());
    assert_eq!(e(q), PlanError::UnknownCode("990199".into()));
    let mut q = req(Problem::Mclp, Some(1));
    q.require = vec!["Z".into()];
    assert_eq!(e(q), PlanError::UnknownSite { what: "required", id: "Z".into() });
    let mut q = req(Problem::Lscp, None);
    q.target = Some(1.5);
    assert_eq!(e(q), PlanError::BadTarget(1.5));
    let q = PlanRequest { candidates: CandidateSource::Sites { sites: vec![] }, new: Some(1), ..Default::default() };
    assert!(matches!(e(q), PlanError::NoCandidates(_)));
    // Within the west township only B and C are left (D on the border belongs to the east).
    let mut q = req(Problem::Mclp, Some(3));
    q.within = Some("990101001".into());
    assert_eq!(e(q), PlanError::KTooLarge { k: 3, candidates: 2 });
    // A request from JSON with an unknown level is refused by serde, naming the value.
    let bad = serde_json::from_str::<PlanRequest>(r#"{"level":"hamlet"}"#).unwrap_err();
    assert!(bad.to_string().contains("hamlet"), "{bad}");
}

fn gridcover(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gridcover")).args(args).output().unwrap()
}

#[test]
fn command_writes_the_plan_files() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sites.csv");
    std::fs::write(&csv, "id,lon,lat\nA,100.9,40.1\nB,100.25,40.5\nC,100.1,40.9\nD,100.5,40.5\n").unwrap();
    let out = dir.path().join("plan");
    let data = fixture();
    let o = gridcover(&[
        "plan",
        "--data",
        data.to_str().unwrap(),
        "--problem",
        "mclp",
        "--level",
        "village",
        "--new",
        "2",
        "--candidates",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gj: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("plan.geojson")).unwrap()).unwrap();
    let f = gj["features"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["properties"]["id"], "A");
    assert_eq!(f[0]["properties"]["rank"], 1);
    assert_eq!(f[0]["properties"]["newly_covered_veterans"], 3);
    assert_eq!(f[0]["properties"]["township_code"], "990101002");
    assert_eq!(f[0]["geometry"]["coordinates"], serde_json::json!([100.9, 40.1]));
    assert_eq!(f[1]["properties"]["id"], "B");
    let mut rd = csv::Reader::from_path(out.join("plan.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[1][1], "B");
    assert_eq!(&rows[1][7], "2");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("plan_summary.json")).unwrap()).unwrap();
    assert_eq!(s["objective"], 5.0);
    assert_eq!(s["gap"], 0.0);
    assert_eq!(s["covered_before"], 2);
    assert_eq!(s["covered_after"], 7);
    assert!(s["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(s["units"].as_array().unwrap().len(), 8);

    // The summary's table of units as Excel: the same rows and values, Chinese headers, codes
    // as text (read back by openpyxl).
    let mut args: Vec<&str> = vec!["plan", "--data", data.to_str().unwrap(), "--problem", "mclp", "--level", "village"];
    args.extend([
        "--new",
        "2",
        "--candidates",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "xlsx",
    ]);
    let o = gridcover(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cells = crate::report_xlsx::read_xlsx(&out.join("plan_summary.xlsx"));
    let units = s["units"].as_array().unwrap();
    assert_eq!(cells.len(), units.len() + 1);
    let columns = gridcover::output::plan::PLAN_SUMMARY_COLUMNS;
    assert_eq!(cells[0].iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), columns.map(|c| c.1));
    for (row, u) in cells[1..].iter().zip(units) {
        for ((v, t), (name, _)) in row.iter().zip(columns) {
            match &u[name] {
                // The province's parent code is empty: an empty cell.
                serde_json::Value::String(x) if x.is_empty() => assert!(v.is_empty(), "{name}"),
                serde_json::Value::String(x) => assert_eq!((v, t.as_str()), (x, "s"), "{name}"),
                serde_json::Value::Number(n) => {
                    assert!((v.parse::<f64>().unwrap() - n.as_f64().unwrap()).abs() < 1e-6, "{name}: {v} vs {n}")
                }
                serde_json::Value::Null => assert!(v.is_empty(), "{name}"),
                other => panic!("{name}: {other}"),
            }
        }
    }
    assert_eq!(
        gridcover(&["plan", "--data", data.to_str().unwrap(), "--new", "1", "--format", "text"]).status.code(),
        Some(2)
    );

    // Bad input: exit code 2 and a message naming the file and row.
    std::fs::write(&csv, "id,lon,lat\nA,100.9,40.1\nB,east,40.5\n").unwrap();
    let o = gridcover(&["plan", "--data", data.to_str().unwrap(), "--new", "1", "--candidates", csv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sites.csv row 3: lon \"east\" is not a number"), "{err}");
    let o = gridcover(&["plan", "--data", data.to_str().unwrap(), "--new", "9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--new 9 is more than the 1 candidate sites"));
    let o = gridcover(&["plan", "--data", data.to_str().unwrap(), "--new", "1", "--level", "hamlet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown level"));
    let o = gridcover(&["plan", "--data", data.to_str().unwrap(), "--new", "1", "--radius", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("radius must be a positive number"));
}
