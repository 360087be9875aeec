//! The exit code of every command for each class of failure, through the real binary: 2 for bad
//! usage or input that makes going on impossible (a missing folder, file or column, a bad row
//! where a bad row stops the command, a store from a newer gridcover), 1 when the run fails
//! (a result or the store cannot be written, the address cannot be bound), 0 when a bad row of
//! a data folder is set aside and named. Each case also checks that stderr names the cause.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::copy_fixture;

/// A case: the arguments, the exit code, and a text stderr must contain.
struct Case {
    args: Vec<String>,
    code: i32,
    says: &'static str,
}

fn case(args: &[&dyn AsRef<std::ffi::OsStr>], code: i32, says: &'static str) -> Case {
    Case { args: args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect(), code, says }
}

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let o = Command::new(env!("CARGO_BIN_EXE_gridcover")).args(&c.args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(c.code) || !err.contains(c.says) {
            failures.push(format!(
                "gridcover {}: exit {:?} (expected {}), stderr should name {:?}:\n{err}",
                c.args.join(" "),
                o.status.code(),
                c.code,
                c.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The data folders of the failure classes, each a copy of the hand-made county.
struct Folders {
    _tmp: tempfile::TempDir,
    /// A folder that does not exist.
    missing: PathBuf,
    /// Without `households.csv`.
    no_file: PathBuf,
    /// `households.csv` without its `lat` column.
    no_column: PathBuf,
    /// A household row with a bad latitude (set aside as a reject, not fatal).
    bad_row: PathBuf,
    /// With a store of a newer schema version.
    newer_store: PathBuf,
    /// Where `gridcover.sqlite` is a folder: the store cannot be created.
    no_store: PathBuf,
    /// A regular file: an output folder below it cannot be created.
    file: PathBuf,
    /// The hand-made county as it is.
    good: PathBuf,
}

fn folders() -> Folders {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let src = copy_fixture("small");
        for e in std::fs::read_dir(src.path()).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
            }
        }
        d
    };
    let no_file = copy("no_file");
    std::fs::remove_file(no_file.join("households.csv")).unwrap();
    let no_column = copy("no_column");
    let text = std::fs::read_to_string(no_column.join("households.csv")).unwrap();
    let without_lat: String = text
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(2);
            f.join(",") + "\n"
        })
        .collect();
    std::fs::write(no_column.join("households.csv"), without_lat).unwrap();
    let bad_row = copy("bad_row");
    let mut text = std::fs::read_to_string(bad_row.join("households.csv")).unwrap();
    text.push_str("HBAD,100.5,north,1,990101002001,false,false\n");
    std::fs::write(bad_row.join("households.csv"), text).unwrap();
    let newer_store = copy("newer_store");
    {
        let c = rusqlite::Connection::open(newer_store.join("gridcover.sqlite")).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY); INSERT INTO schema_migrations VALUES (99);",
        )
        .unwrap();
    }
    let no_store = copy("no_store");
    std::fs::create_dir(no_store.join("gridcover.sqlite")).unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    Folders {
        missing: tmp.path().join("no-such-folder"),
        no_file,
        no_column,
        bad_row,
        newer_store,
        no_store,
        file,
        good: copy("good"),
        _tmp: tmp,
    }
}

fn out_below(file: &Path) -> PathBuf {
    file.join("out")
}

#[test]
fn analyze_report_scenario_grids_plan_and_tiles() {
    let f = folders();
    let unwritable = out_below(&f.file);
    let sites = f.good.join("sites.csv");
    std::fs::write(&sites, "id,name,level,lon,lat\nA,a,village,100.9,40.1\nB,b,hamlet,100.9,40.1\n").unwrap();
    let cands = f.good.join("candidates.csv");
    std::fs::write(&cands, "id,lon,lat\nA,100.9,40.1\nB,east,40.5\n").unwrap();
    let ok_out = f.good.join("out");
    check(&[
        // analyze
        case(&[&"analyze", &"--data", &f.missing, &"--out", &ok_out], 2, "no-such-folder"),
        case(&[&"analyze", &"--data", &f.no_file, &"--out", &ok_out], 2, "has no households"),
        case(&[&"analyze", &"--data", &f.no_column, &"--out", &ok_out], 2, "required column `lat` is missing"),
        case(&[&"analyze", &"--data", &f.good, &"--out", &unwritable], 1, "cannot write"),
        // report
        case(&[&"report", &"--data", &f.missing], 2, "no-such-folder"),
        case(&[&"report", &"--data", &f.no_file], 2, "has no households"),
        case(&[&"report", &"--data", &f.no_column], 2, "required column `lat` is missing"),
        // scenario
        case(&[&"scenario", &"--data", &f.missing, &"--remove", &"S1"], 2, "no-such-folder"),
        case(&[&"scenario", &"--data", &f.no_column, &"--remove", &"S1"], 2, "required column `lat` is missing"),
        case(&[&"scenario", &"--data", &f.good, &"--add", &sites, &"--out", &ok_out], 2, "sites.csv line 3"),
        case(&[&"scenario", &"--data", &f.good, &"--remove", &"S1"], 2, "").with_out(&unwritable, 1, "cannot write"),
        // grids
        case(
            &[&"grids", &"--data", &f.missing, &"--within", &"990101002", &"--max-households", &"2"],
            2,
            "no-such-folder",
        ),
        case(&[&"grids", &"--data", &f.good, &"--within", &"990101", &"--max-households", &"2"], 2, "is a county"),
        case(
            &[
                &"grids",
                &"--data",
                &f.good,
                &"--within",
                &"990101002",
                &"--max-households",
                &"2",
                &"--out",
                &unwritable,
            ],
            1,
            "cannot write",
        ),
        // plan
        case(&[&"plan", &"--data", &f.missing, &"--new", &"1"], 2, "no-such-folder"),
        case(&[&"plan", &"--data", &f.good, &"--new", &"1", &"--candidates", &cands], 2, "candidates.csv row 3"),
        case(&[&"plan", &"--data", &f.good, &"--new", &"1", &"--candidates", &"h3:x"], 2, "bad H3 resolution"),
        case(&[&"plan", &"--data", &f.good, &"--new", &"1", &"--out", &unwritable], 1, "cannot write"),
        // tiles
        case(&[&"tiles", &"--data", &f.missing, &"--out", &ok_out], 2, "no-such-folder"),
        case(
            &[&"tiles", &"--data", &f.good, &"--max-zoom", &"17", &"--out", &ok_out],
            2,
            "--max-zoom must be at most 16",
        ),
        case(&[&"tiles", &"--data", &f.good, &"--max-zoom", &"3", &"--out", &unwritable], 1, "cannot write"),
    ]);
}

impl Case {
    /// The same command with `--out OUT` appended, expecting `code`.
    fn with_out(mut self, out: &Path, code: i32, says: &'static str) -> Case {
        self.args.push("--out".into());
        self.args.push(out.to_string_lossy().into_owned());
        self.code = code;
        self.says = says;
        self
    }
}

#[test]
fn a_bad_row_of_a_data_folder_is_set_aside_and_named_not_fatal() {
    let f = folders();
    let out = f.bad_row.join("out");
    check(&[case(&[&"analyze", &"--data", &f.bad_row, &"--out", &out], 0, "")]);
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).unwrap();
    assert!(rejects.contains("HBAD") && rejects.contains("lat"), "{rejects}");
    let o = Command::new(env!("CARGO_BIN_EXE_gridcover")).args(["import", "--data"]).arg(&f.bad_row).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("reject: households.csv row") && err.contains("HBAD"), "{err}");
}

#[test]
fn import_serve_and_user_on_the_store() {
    let f = folders();
    // A port that is taken: serve fails to listen after loading.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    check(&[
        // import
        case(&[&"import", &"--data", &f.missing], 2, "no-such-folder"),
        case(&[&"import", &"--data", &f.no_file], 2, "has no households"),
        case(&[&"import", &"--data", &f.no_column], 2, "required column `lat` is missing"),
        case(&[&"import", &"--data", &f.newer_store], 2, "newer than this gridcover knows"),
        case(&[&"import", &"--data", &f.no_store], 1, "cannot open the store"),
        // serve
        case(&[&"serve", &"--data", &f.missing, &"--addr", &addr], 2, "no-such-folder"),
        case(&[&"serve", &"--data", &f.no_file, &"--addr", &addr], 2, "has no households"),
        case(&[&"serve", &"--data", &f.newer_store, &"--addr", &addr], 2, "newer than this gridcover knows"),
        case(&[&"serve", &"--data", &f.no_store, &"--addr", &addr], 1, "cannot open the store"),
        case(&[&"serve", &"--data", &f.good, &"--addr", &addr], 1, "cannot serve on"),
        // user
        case(&[&"user", &"add", &"--name", &"王", &"--role", &"leader", &"--data", &f.missing], 2, "no-such-folder"),
        case(&[&"user", &"add", &"--name", &"王", &"--role", &"leader", &"--data", &f.newer_store], 2, "newer"),
        case(&[&"user", &"add", &"--name", &"王", &"--role", &"leader", &"--data", &f.no_store], 1, "cannot open"),
        case(&[&"user", &"add", &"--name", &" ", &"--role", &"leader", &"--data", &f.good], 2, "name"),
        case(&[&"user", &"list", &"--data", &f.newer_store], 2, "newer"),
        case(&[&"user", &"revoke", &"--name", &"nobody", &"--data", &f.good], 2, "no active token"),
    ]);
    drop(taken);
}

#[test]
fn generate() {
    let f = folders();
    let src = super::common::fixture("small");
    let (b, d) = (src.join("boundaries.geojson"), src.join("divisions.csv"));
    let missing = f.missing.join("boundaries.geojson");
    let generated = f.good.join("gen");
    check(&[
        case(
            &[&"generate", &"--boundaries", &missing, &"--divisions", &d, &"--out", &generated],
            2,
            "boundaries.geojson",
        ),
        case(
            &[&"generate", &"--boundaries", &b, &"--divisions", &d, &"--crs", &"mars", &"--out", &generated],
            2,
            "mars",
        ),
        // A folder of real inputs (no .generated marker) is never overwritten.
        case(
            &[&"generate", &"--boundaries", &b, &"--divisions", &d, &"--households", &"50", &"--out", &f.good],
            2,
            "was not generated by gridcover",
        ),
        case(
            &[
                &"generate",
                &"--boundaries",
                &b,
                &"--divisions",
                &d,
                &"--households",
                &"50",
                &"--out",
                &out_below(&f.file),
            ],
            1,
            "cannot write",
        ),
        case(
            &[&"generate", &"--boundaries", &b, &"--divisions", &d, &"--households", &"50", &"--out", &generated],
            0,
            // What the generator decided is said, not only written.
            "note: 8 stations (province 1/1, city 1/1, county 1/1, township 2/2, village 3/3",
        ),
    ]);
    assert!(generated.join("households.parquet").exists());
}

#[test]
fn contacts_import() {
    let f = folders();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.csv");
    std::fs::write(&ledger, "户编号,日期,方式,情况\nH1,2026-11-20,入户,\nH2,2026-13-01,电话,\n").unwrap();
    let no_date = dir.path().join("no_date.csv");
    std::fs::write(&no_date, "户编号,方式\nH1,入户\n").unwrap();
    let missing = dir.path().join("none.csv");
    let not_xlsx = dir.path().join("broken.xlsx");
    std::fs::write(&not_xlsx, "not a workbook").unwrap();
    check(&[
        case(&[&"contacts", &"import", &"--data", &f.missing, &ledger], 2, "no-such-folder"),
        case(&[&"contacts", &"import", &"--data", &f.good, &missing], 2, "none.csv"),
        case(&[&"contacts", &"import", &"--data", &f.good, &no_date], 2, "date"),
        case(&[&"contacts", &"import", &"--data", &f.good, &not_xlsx], 2, "broken.xlsx"),
        case(&[&"contacts", &"import", &"--data", &f.newer_store, &ledger], 2, "newer"),
        case(&[&"contacts", &"import", &"--data", &f.no_store, &ledger], 1, "cannot open"),
        // A bad row is set aside and named; the rest is imported.
        case(&[&"contacts", &"import", &"--data", &f.good, &ledger], 0, "ledger.csv row 3"),
    ]);
}
