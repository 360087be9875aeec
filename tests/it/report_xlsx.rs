//! `gridcover report --effective` on the hand-made county with a known service history: every
//! figure asserted at two days through the real binary, and the Excel files (effective and
//! tangible coverage) read back by a real reader (openpyxl, from target/venv) with the same
//! rows and values as the CSV, codes as text.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use super::common::copy_fixture;

fn gridcover(args: &[&str]) -> (String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_gridcover")).args(args).output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "gridcover {}: {err}", args.join(" "));
    (out, err)
}

fn rows(csv_text: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().zip(rec.unwrap().iter()).map(|(h, v)| (h.into(), v.into())).collect())
        .collect()
}

/// The small county with its ledger (Chinese headers) and needs. Day D = 2026-11-30.
fn folder() -> tempfile::TempDir {
    let dir = copy_fixture("small");
    std::fs::write(
        dir.path().join("contacts.csv"),
        "户编号,日期,方式,情况\nH1,2026-11-20,入户,\nH2,2026-08-22,电话,\nH3,2026-10-21,home,\n\
         H4,2026-11-25,phone,\nH6,2026-11-28,station,\nH9,2026-11-28,home,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("needs.csv"),
        "household_id,category,date,status,status_date,note\nH1,medical,2026-10-11,resolved,2026-11-05,\n\
         H2,housing,2026-10-01,open,,\nH3,legal,2026-11-22,in_progress,2026-11-27,\n",
    )
    .unwrap();
    dir
}

fn county_row(data: &Path, as_of: &str) -> HashMap<String, String> {
    let d = data.to_str().unwrap();
    let (out, err) =
        gridcover(&["report", "--data", d, "--effective", "--as-of", as_of, "--level", "county", "--format", "csv"]);
    // The unknown household of the ledger is named, not dropped silently.
    assert!(err.contains("contacts.csv row 7: unknown household H9"), "{err}");
    let mut r = rows(&out);
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn expect(row: &HashMap<String, String>, want: &[(&str, &str)]) {
    for (k, v) in want {
        assert_eq!(row[*k], *v, "{k}");
    }
}

#[test]
fn effective_coverage_of_the_county_on_two_days() {
    let dir = folder();
    // 2026-11-30: contacted within 90 days H1, H3, H4, H6 (H2 100 days ago, H5 never); hardship
    // H3 (40 days) overdue, H6 not; open needs H2's (60 days) and H3's (8 days); of the needs
    // raised 2026-08-03..2026-10-31, H1's was resolved in 25 days, H2's not.
    let r = county_row(dir.path(), "2026-11-30");
    expect(
        &r,
        &[
            ("code", "990101"),
            ("households", "6"),
            ("contacted_households", "4"),
            ("contacted_share", "0.6667"),
            ("overdue_households", "2"),
            ("hardship_households", "2"),
            ("hardship_overdue_households", "1"),
            ("never_contacted_households", "1"),
            ("open_need_households", "2"),
            ("open_needs", "2"),
            ("open_needs_median_days", "8.0"),
            ("needs_in_window", "2"),
            ("needs_resolved_30d_share", "0.5000"),
        ],
    );
    // 60 days later: H1, H4, H6 within 90 days; H3 and H6 over 30; the needs 120 and 68 days
    // old; the window 2026-10-02..2026-12-30 holds H1's need (resolved in time) and H3's (not).
    let r = county_row(dir.path(), "2027-01-29");
    expect(
        &r,
        &[
            ("contacted_households", "3"),
            ("contacted_share", "0.5000"),
            ("overdue_households", "3"),
            ("hardship_overdue_households", "2"),
            ("never_contacted_households", "1"),
            ("open_needs", "2"),
            ("open_needs_median_days", "68.0"),
            ("needs_in_window", "2"),
            ("needs_resolved_30d_share", "0.5000"),
        ],
    );
    // --as-of needs --effective; xlsx needs --out.
    let d = dir.path().to_str().unwrap();
    for args in [vec!["report", "--data", d, "--as-of", "2026-11-30"], vec!["report", "--data", d, "--format", "xlsx"]]
    {
        let o = Command::new(env!("CARGO_BIN_EXE_gridcover")).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

/// Every cell of the first sheet of `path`, as openpyxl reads it: (value as text, type code).
pub(crate) fn read_xlsx(path: &Path) -> Vec<Vec<(String, String)>> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    assert!(py.exists(), "{} is missing: run scripts/setup.sh", py.display());
    let script = "import json, sys, openpyxl\n\
        ws = openpyxl.load_workbook(sys.argv[1]).worksheets[0]\n\
        print(json.dumps([[('' if c.value is None else (repr(c.value) if isinstance(c.value, float) else str(c.value)), c.data_type) for c in r] for r in ws.iter_rows()]))";
    let o = Command::new(py).args(["-c", script]).arg(path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn excel_reports_read_back_as_the_csv_with_chinese_headers_and_codes_as_text() {
    let dir = folder();
    let d = dir.path().to_str().unwrap();
    for (extra, first_header) in [(vec!["--effective", "--as-of", "2026-11-30"], "代码"), (vec![], "代码")] {
        for level in ["county", "village"] {
            let mut args = vec!["report", "--data", d, "--level", level, "--format", "csv"];
            args.extend(&extra);
            let (csv_text, _) = gridcover(&args);
            let xlsx = dir.path().join(format!("{level}{}.xlsx", extra.len()));
            let mut args =
                vec!["report", "--data", d, "--level", level, "--format", "xlsx", "--out", xlsx.to_str().unwrap()];
            args.extend(&extra);
            gridcover(&args);
            let cells = read_xlsx(&xlsx);
            let mut r = csv::Reader::from_reader(csv_text.as_bytes());
            let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
            assert_eq!(cells.len(), records.len() + 1, "{level}: header and one row per unit");
            assert_eq!(cells[0][0].0, first_header);
            assert!(cells[0].iter().all(|(v, _)| !v.is_empty() && !v.is_ascii()), "Chinese headers: {:?}", cells[0]);
            for (row, rec) in cells[1..].iter().zip(&records) {
                assert_eq!(row.len(), rec.len());
                // Codes are text cells, never numbers.
                assert_eq!(row[0], (rec[0].to_string(), "s".to_string()));
                for (c, (v, t)) in row.iter().enumerate() {
                    let want = &rec[c];
                    match t.as_str() {
                        // An empty cell (openpyxl types it "n"): an absent value, empty in the CSV.
                        "n" if v.is_empty() => assert_eq!(want, "", "{level} column {c}"),
                        "n" => {
                            let (x, y): (f64, f64) = (v.parse().unwrap(), want.parse().unwrap());
                            assert!((x - y).abs() < 1e-9, "{level} column {c}: {v} vs {want}");
                        }
                        "b" => assert_eq!(v.to_lowercase(), *want),
                        _ => assert_eq!(v, want, "{level} column {c}"),
                    }
                }
            }
        }
    }
}

#[test]
fn analyze_writes_the_same_effective_tables_and_the_workers() {
    let dir = folder();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("out");
    gridcover(&["analyze", "--data", d, "--out", out.to_str().unwrap(), "--effective", "--as-of", "2026-11-30"]);
    for level in ["province", "city", "county", "township", "village"] {
        let (csv_text, _) = gridcover(&[
            "report",
            "--data",
            d,
            "--effective",
            "--as-of",
            "2026-11-30",
            "--level",
            level,
            "--format",
            "csv",
        ]);
        assert_eq!(std::fs::read_to_string(out.join(format!("effective_{level}.csv"))).unwrap(), csv_text, "{level}");
    }
    // Each worker's households are those of their grids; the figures add up to the grids'.
    let workers = rows(&std::fs::read_to_string(out.join("effective_workers.csv")).unwrap());
    let load = super::common::csv_rows(&out.join("workload.csv"));
    let total = |rows: &[HashMap<String, String>]| -> i64 {
        rows.iter().map(|r| r["households"].parse::<i64>().unwrap()).sum()
    };
    assert!(!workers.is_empty());
    assert_eq!(total(&workers), total(&load));
    // Without --effective, a folder without a store gets no effective tables; once it has a
    // store, it gets them (as of today).
    let plain = dir.path().join("plain");
    gridcover(&["analyze", "--data", d, "--out", plain.to_str().unwrap()]);
    assert!(!plain.join("effective_county.csv").exists());
    gridcover(&["import", "--data", d]);
    let stored = dir.path().join("stored");
    gridcover(&["analyze", "--data", d, "--out", stored.to_str().unwrap()]);
    for f in ["effective_province.csv", "effective_village.csv", "effective_workers.csv"] {
        assert!(stored.join(f).is_file(), "{f} not written with a store");
    }
    // --as-of without --effective is refused.
    let o = Command::new(env!("CARGO_BIN_EXE_gridcover"))
        .args(["analyze", "--data", d, "--as-of", "2026-11-30"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// The folder's service records are kept in `.gridcover-cache/contacts.csv.records` by the
/// first run: the next runs read it, and write the same tables with the same warnings; a
/// changed ledger is read again.
#[test]
fn analyze_reads_the_records_cache_as_the_files_and_a_changed_ledger_again() {
    let dir = folder();
    let d = dir.path().to_str().unwrap();
    let cache = dir.path().join(".gridcover-cache/contacts.csv.records");
    let tables = |out: &Path| -> Vec<String> {
        ["province", "city", "county", "township", "village", "workers"]
            .iter()
            .map(|t| std::fs::read_to_string(out.join(format!("effective_{t}.csv"))).unwrap())
            .collect()
    };
    let run = |name: &str| -> (Vec<String>, String) {
        let out = dir.path().join(name);
        let (_, err) = gridcover(&[
            "analyze",
            "--data",
            d,
            "--out",
            out.to_str().unwrap(),
            "--effective",
            "--as-of",
            "2026-11-30",
        ]);
        (tables(&out), err)
    };
    assert!(!cache.exists());
    let (first, err) = run("a");
    assert!(err.contains("contacts.csv row 7: unknown household H9"), "{err}");
    let written = std::fs::read(&cache).unwrap();
    let (second, err) = run("b");
    assert!(err.contains("contacts.csv row 7: unknown household H9"), "the warning again: {err}");
    assert_eq!(second, first);
    assert_eq!(std::fs::read(&cache).unwrap(), written, "read, not written again");
    // H5, never contacted before, is contacted on the day: one more household contacted.
    let ledger = dir.path().join("contacts.csv");
    let mut text = std::fs::read_to_string(&ledger).unwrap();
    text.push_str("H5,2026-11-30,home,\n");
    std::fs::write(&ledger, text).unwrap();
    let (third, _) = run("c");
    let county = |t: &[String]| rows(&t[2]).remove(0);
    let n = |t: &[String], k: &str| county(t)[k].parse::<i64>().unwrap();
    assert_eq!(n(&third, "contacted_households"), n(&first, "contacted_households") + 1);
    assert_eq!(n(&third, "never_contacted_households"), n(&first, "never_contacted_households") - 1);
    assert_ne!(std::fs::read(&cache).unwrap(), written, "replaced");
}
