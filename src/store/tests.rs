use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::model::service::{day_from_ymd, NeedSpan};
use crate::model::{ContactKind, Dataset, HouseholdRow, Households, NeedCategory, NeedStatus, NONE, NO_UNIT};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small")
}

/// A copy of the small fixture in a fresh temporary folder.
fn folder() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    d
}

/// A connection of a test's own to the store at `path` (after SQLite's process-wide settings,
/// which must come before the first connection).
fn raw(path: &Path, flags: OpenFlags) -> Connection {
    sqlite_process_settings();
    Connection::open_with_flags(path, flags).unwrap()
}

/// The schema of the store at `path`: every table, index and trigger with its definition.
fn schema(path: &Path) -> Vec<String> {
    let c = raw(path, OpenFlags::SQLITE_OPEN_READ_ONLY);
    let mut st = c.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").unwrap();
    let rows = st
        .query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// Every row of every table, as text, and the schema, for comparing whole stores.
pub(crate) fn dump(path: &Path) -> Vec<String> {
    let mut out = schema(path);
    let c = raw(path, OpenFlags::SQLITE_OPEN_READ_ONLY);
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut s = t.clone();
                for k in 0..n {
                    let v: rusqlite::types::Value = r.get(k)?;
                    s.push_str(&format!("|{v:?}"));
                }
                Ok(s)
            })
            .unwrap();
        for r in rows {
            out.push(r.unwrap());
        }
    }
    out
}

fn user(store: &Store, role: Role, grids: &[&str]) -> User {
    let grids: Vec<String> = grids.iter().map(|s| s.to_string()).collect();
    let t = store.add_user(&format!("{role}-user"), role, &grids).unwrap();
    store.authenticate(&t).unwrap().unwrap()
}

#[test]
fn open_creates_a_migrated_wal_store() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    assert!(d.path().join(STORE_FILE).is_file());
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    s.write(|c| {
        let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
        Ok(())
    })
    .unwrap();
    drop(s);
    // Reopening applies nothing twice.
    let s = Store::open(d.path()).unwrap();
    let n: i64 =
        s.read(|c| Ok(c.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(n, MIGRATIONS.len() as i64);
}

#[test]
fn a_store_of_a_newer_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    s.write(|c| Ok(c.execute("INSERT INTO schema_migrations (version) VALUES (99)", []).unwrap())).unwrap();
    drop(s);
    let e = Store::open(d.path()).unwrap_err();
    assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
}

#[test]
fn a_missing_folder_or_a_file_that_is_not_a_database_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let e = Store::open(&d.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    std::fs::write(d.path().join(STORE_FILE), b"this is not a database, just some text that is long enough").unwrap();
    let e = Store::open(d.path()).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }) && e.to_string().contains("gridcover.sqlite"), "{e}");
}

#[test]
fn tokens_are_random_hex_stored_only_as_hashes() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let t1 = s.add_user("王芳", Role::GridWorker, &["G1".into(), "G2".into()]).unwrap();
    let t2 = s.add_user("李强", Role::Leader, &[]).unwrap();
    assert_eq!(t1.len(), 64);
    assert!(t1.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(t1, t2);
    let u = s.authenticate(&t1).unwrap().unwrap();
    assert_eq!((u.name.as_str(), u.role, u.grids.clone()), ("王芳", Role::GridWorker, vec!["G1".into(), "G2".into()]));
    assert!(u.has_grid("G2") && !u.has_grid("G3"));
    assert_eq!(s.authenticate(&t2).unwrap().unwrap().role, Role::Leader);
    assert_eq!(s.authenticate("0000").unwrap(), None);
    assert_eq!(s.authenticate("").unwrap(), None);
    // Neither token appears anywhere in the database files; their hashes do.
    drop(s);
    let mut bytes = std::fs::read(d.path().join(STORE_FILE)).unwrap();
    if let Ok(w) = std::fs::read(d.path().join("gridcover.sqlite-wal")) {
        bytes.extend(w);
    }
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!has(t1.as_bytes()) && !has(t2.as_bytes()));
    assert!(has(&sha256(t1.as_bytes())));
}

#[test]
fn roles_and_grids_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    assert!(s.add_user("a", Role::GridWorker, &[]).unwrap_err().to_string().contains("at least one grid"));
    assert!(s.add_user("a", Role::Planner, &["G1".into()]).unwrap_err().to_string().contains("grid workers only"));
    assert!(s.add_user("  ", Role::Leader, &[]).unwrap_err().to_string().contains("name"));
    for (t, r) in [("leader", Role::Leader), ("planner", Role::Planner), ("grid_worker", Role::GridWorker)] {
        assert_eq!(t.parse::<Role>().unwrap(), r);
        assert_eq!(serde_json::to_value(r).unwrap(), json!(t));
        assert_eq!(r.to_string(), t);
    }
    assert!("admin".parse::<Role>().is_err());
    // Once grids are imported, a grid worker's grids must be among them.
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    assert!(s.add_user("a", Role::GridWorker, &["NOPE".into()]).unwrap_err().to_string().contains("unknown grid"));
    assert!(s.add_user("a", Role::GridWorker, &["G1".into()]).is_ok());
}

#[test]
fn audit_history_and_visits_are_append_only() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.audit(w.id, "household.read", "H1").unwrap();
    s.add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "ok".into(), ..Default::default() }).unwrap();
    let log = s.audit_log().unwrap();
    let last: Vec<&str> = log[log.len() - 2..].iter().map(|e| e.action.as_str()).collect();
    assert_eq!(last, ["household.read", "households.visit"]);
    for sql in [
        "UPDATE audit SET action = 'x'",
        "DELETE FROM audit",
        "UPDATE history SET actor = 'x'",
        "DELETE FROM history",
        "UPDATE visits SET note = 'x'",
        "DELETE FROM visits",
        "UPDATE visits SET kind = 'phone'",
    ] {
        let e = s.write(|c| c.execute(sql, []).map_err(StoreError::db("test"))).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    // A need is never deleted, and changes only its status and version (through its changes).
    let n = s.add_need(&w, "H1", &NewNeed { category: NeedCategory::Legal, note: "x".into(), date: None }).unwrap();
    let refused = [
        ("DELETE FROM needs", "never deleted"),
        ("UPDATE needs SET category = 'other'", "only its status"),
        ("UPDATE needs SET opened = '2020-01-01'", "only its status"),
        ("UPDATE need_changes SET note = 'y'", "append-only"),
        ("DELETE FROM need_changes", "append-only"),
    ];
    for (sql, why) in refused {
        let e = s.write(|c| c.execute(sql, []).map_err(StoreError::db("test"))).unwrap_err();
        assert!(e.to_string().contains(why), "{sql}: {e}");
    }
    assert_eq!(s.needs("H1").unwrap(), vec![n]);
}

#[test]
fn import_loads_the_folder_and_twice_changes_nothing() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    let r = s.import(f.path()).unwrap();
    let ds = crate::ingest::read_data_folder(f.path()).unwrap();
    assert!(!r.unchanged);
    assert_eq!(r.added, [ds.stations.len(), ds.households.len(), ds.grids.len()]);
    assert_eq!(r.rejects, ds.rejects);
    let before = dump(s.path());
    let r2 = s.import(f.path()).unwrap();
    assert!(r2.unchanged, "{r2:?}");
    assert_eq!(dump(s.path()), before);
    // Even when the file fingerprint differs (same rows, re-saved), no record changes.
    let r3 = s.import_dataset(&ds, "another-fingerprint").unwrap();
    assert_eq!(r3.same, [ds.stations.len(), ds.households.len(), ds.grids.len()]);
    assert_eq!((r3.added, r3.updated, r3.removed), ([0; 3], [0; 3], [0; 3]));
    let after: Vec<String> = dump(s.path()).into_iter().filter(|r| !r.starts_with("imports|")).collect();
    let before: Vec<String> = before.into_iter().filter(|r| !r.starts_with("imports|")).collect();
    assert_eq!(after, before);
}

#[test]
fn load_dataset_gives_back_what_was_imported() {
    let f = folder();
    let (_s, got) = Store::open_dataset(f.path()).unwrap(); // imports on first use
    let want = crate::ingest::read_data_folder(f.path()).unwrap();
    assert_eq!(got.stations.id, want.stations.id);
    assert_eq!(got.stations.lon, want.stations.lon);
    assert_eq!(got.stations.unit, want.stations.unit);
    assert_eq!(got.stations.radius_m, want.stations.radius_m);
    assert_eq!(got.stations.active, want.stations.active);
    assert_eq!(got.households.id, want.households.id);
    assert_eq!(got.households.lat, want.households.lat);
    assert_eq!(got.households.code, want.households.code);
    assert_eq!(got.households.martyr_family, want.households.martyr_family);
    assert_eq!(got.grids.id, want.grids.id);
    assert_eq!(got.grids.worker, want.grids.worker);
    assert_eq!(got.grids.unit, want.grids.unit);
    assert_eq!(got.grids.geometry, want.grids.geometry);
    assert_eq!(got.rejects, want.rejects);
    assert_eq!(got.standard, want.standard);
    // And the analysis of both is the same.
    let (a, b) = (crate::analysis::analyze(&got), crate::analysis::analyze(&want));
    assert_eq!(a.assignment.covered, b.assignment.covered);
    assert_eq!(a.assignment.grid, b.assignment.grid);
}

#[test]
fn a_changed_input_updates_only_what_changed_and_keeps_history() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.patch_household_status(&w, "H2", &json!({"needs": "wheelchair"}), None).unwrap();
    // Move S2, drop H1 and S1.
    let st = std::fs::read_to_string(f.path().join("stations.csv")).unwrap();
    let st: Vec<&str> = st.lines().filter(|l| !l.starts_with("S1,")).collect();
    let st = st.join("\n").replace(
        "S2,西镇退役军人服务站,township,990101001,100.25,40.5",
        "S2,西镇退役军人服务站,township,990101001,100.26,40.5",
    );
    std::fs::write(f.path().join("stations.csv"), st).unwrap();
    let hh = std::fs::read_to_string(f.path().join("households.csv")).unwrap();
    let hh: Vec<&str> = hh.lines().filter(|l| !l.starts_with("H1,")).collect();
    std::fs::write(f.path().join("households.csv"), hh.join("\n")).unwrap();
    let r = s.import(f.path()).unwrap();
    assert_eq!((r.updated[0], r.removed[0], r.removed[1], r.updated[1], r.added), (1, 1, 1, 0, [0; 3]), "{r:?}");
    let s2 = s.station("S2").unwrap().unwrap();
    assert_eq!((s2.lon, s2.version), (100.26, 2));
    assert!(!s.station("S1").unwrap().unwrap().active);
    let h = s.history("station", "S2").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].action.as_str(), h[0].actor.as_str(), h[0].user_id), ("reimport", "import", None));
    assert_eq!(h[0].before.as_ref().unwrap()["lon"], json!(100.25));
    assert_eq!(h[0].after.as_ref().unwrap()["lon"], json!(100.26));
    assert_eq!(s.history("station", "S1").unwrap()[0].action, "removed");
    assert!(s.household("H1").unwrap().is_none());
    assert_eq!(s.history("household", "H1").unwrap()[0].action, "removed");
    // The status edited through the server survives the import.
    assert_eq!(s.household("H2").unwrap().unwrap().status, json!({"needs": "wheelchair"}));
    let ds = s.load_dataset(f.path()).unwrap();
    assert!(!ds.households.id.iter().any(|i| i == "H1"));
    let k = ds.stations.id.iter().position(|i| i == "S1").unwrap();
    assert!(!ds.stations.active[k]);
}

#[test]
fn a_failed_import_changes_nothing() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let before = dump(s.path());
    // A truncated households file (half its bytes, cut mid-row) and a corrupt grids file.
    let hh = std::fs::read(f.path().join("households.csv")).unwrap();
    std::fs::write(f.path().join("households.csv"), &hh[..3]).unwrap();
    let e = s.import(f.path()).unwrap_err();
    assert!(matches!(e, StoreError::Ingest(_)) && e.to_string().contains("households.csv"), "{e}");
    assert_eq!(dump(s.path()), before);
    std::fs::write(f.path().join("households.csv"), &hh).unwrap();
    let g = std::fs::read(f.path().join("grids.geojson")).unwrap();
    std::fs::write(f.path().join("grids.geojson"), &g[..g.len() / 2]).unwrap();
    let e = s.import(f.path()).unwrap_err();
    assert!(e.to_string().contains("grids.geojson"), "{e}");
    assert_eq!(dump(s.path()), before);
}

#[test]
fn a_full_disk_rolls_the_import_back() {
    let f = folder();
    // Enough households to need many new pages.
    let mut hh = std::fs::read_to_string(f.path().join("households.csv")).unwrap();
    for k in 0..3000 {
        hh.push_str(&format!("X{k},100.{:04},40.5,1,,false,false\n", k));
    }
    std::fs::write(f.path().join("households.csv"), hh).unwrap();
    let s = Store::open(f.path()).unwrap();
    let before = dump(s.path());
    // SQLite's own size cap stands in for a full disk: it fails the same way (SQLITE_FULL).
    let pages: i64 = s.write(|c| Ok(c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap())).unwrap();
    s.write(|c| {
        Ok(c.query_row(&format!("PRAGMA max_page_count = {}", pages + 1), [], |r| r.get::<_, i64>(0)).unwrap())
    })
    .unwrap();
    let e = s.import(f.path()).unwrap_err();
    assert!(e.is_disk_full(), "{e}");
    assert!(e.to_string().contains("full"), "{e}");
    assert_eq!(dump(s.path()), before);
    // Room again: the same import goes through.
    s.write(|c| Ok(c.query_row("PRAGMA max_page_count = 1073741823", [], |r| r.get::<_, i64>(0)).unwrap())).unwrap();
    s.import(f.path()).unwrap();
    let ok: String = s.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn status_patches_merge_and_conflict_on_stale_versions() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    let h = s.household("H1").unwrap().unwrap();
    assert_eq!((h.status.clone(), h.version), (json!({}), 1));
    let h = s.patch_household_status(&w, "H1", &json!({"needs": ["coal"], "phone": "138"}), Some(1)).unwrap();
    assert_eq!((h.status.clone(), h.version), (json!({"needs": ["coal"], "phone": "138"}), 2));
    let h = s.patch_household_status(&w, "H1", &json!({"phone": null, "hardship": {"level": 2}}), None).unwrap();
    assert_eq!((h.status.clone(), h.version), (json!({"needs": ["coal"], "hardship": {"level": 2}}), 3));
    let e = s.patch_household_status(&w, "H1", &json!({"phone": "1"}), Some(2)).unwrap_err();
    assert!(matches!(e, StoreError::Conflict { expected: 2, current: 3, .. }), "{e}");
    assert!(matches!(s.patch_household_status(&w, "H1", &json!(["x"]), None).unwrap_err(), StoreError::Invalid(_)));
    assert!(matches!(s.patch_household_status(&w, "NOPE", &json!({}), None).unwrap_err(), StoreError::NotFound { .. }));
    let big = json!({"x": "a".repeat(MAX_STATUS_BYTES)});
    assert!(s.patch_household_status(&w, "H1", &big, None).unwrap_err().to_string().contains("bytes"));
    let leader = user(&s, Role::Leader, &[]);
    assert!(s.patch_household_status(&leader, "H1", &json!({"a": 1}), None).is_err());
    let hist = s.history("household", "H1").unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[1].before, Some(json!({"needs": ["coal"], "phone": "138"})));
    assert_eq!(hist[1].after, Some(json!({"needs": ["coal"], "hardship": {"level": 2}})));
    assert_eq!((hist[1].user_id, hist[1].version), (Some(w.id), Some(3)));
    assert_eq!(s.household("H1").unwrap().unwrap().version, 3);
}

#[test]
fn visits_are_validated_and_listed() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    for bad in ["2026-02-30", "2026-13-01", "26-11-29", "2026-11-29T00:00", "", "２０２６-11-29"] {
        let e = s
            .add_visit(&w, "H1", &NewVisit { date: bad.into(), note: String::new(), ..Default::default() })
            .unwrap_err();
        assert!(e.to_string().contains("calendar date"), "{bad}: {e}");
    }
    assert!(s
        .add_visit(
            &w,
            "H1",
            &NewVisit { date: "2024-02-29".into(), note: "x".repeat(MAX_NOTE_CHARS + 1), ..Default::default() }
        )
        .is_err());
    let v1 = s
        .add_visit(&w, "H1", &NewVisit { date: "2024-02-29".into(), note: "送煤".into(), ..Default::default() })
        .unwrap();
    let v2 = s
        .add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: String::new(), ..Default::default() })
        .unwrap();
    assert_eq!(s.visits("H1").unwrap(), vec![v1.clone(), v2]);
    assert_eq!((v1.user.as_str(), v1.household_id.as_str()), ("grid_worker-user", "H1"));
    assert!(s.visits("H2").unwrap().is_empty());
    assert!(matches!(s.visits("NOPE").unwrap_err(), StoreError::NotFound { .. }));
    let h = s.history("household", "H1").unwrap();
    assert_eq!(h.iter().filter(|e| e.action == "visit").count(), 2);
}

#[test]
fn planners_add_move_and_close_stations() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    let ds = s.load_dataset(f.path()).unwrap();
    let p = user(&s, Role::Planner, &[]);
    let new = NewStation {
        id: None,
        name: "新站".into(),
        level: crate::model::Level::Village,
        code: ds.divisions.iter().find(|(_, d)| d.level == crate::model::Level::Village).unwrap().1.code.clone(),
        lon: 100.3,
        lat: 40.4,
        demonstration: false,
        mobile: false,
        radius_m: None,
    };
    new.validate(&ds.divisions).unwrap();
    let mut bad = new.clone();
    bad.level = crate::model::Level::County;
    assert!(bad.validate(&ds.divisions).unwrap_err().to_string().contains("is a village"));
    let mut bad = new.clone();
    bad.lat = 91.0;
    assert!(bad.validate(&ds.divisions).is_err());
    let a = s.add_station(&p, &new).unwrap();
    assert!(a.id.starts_with("new-") && a.active && a.version == 1, "{a:?}");
    let mut dup = new.clone();
    dup.id = Some(a.id.clone());
    assert!(matches!(s.add_station(&p, &dup).unwrap_err(), StoreError::Exists { .. }));
    let (b, m) = s
        .update_station(
            &p,
            &a.id,
            &StationPatch { lon: Some(100.31), name: Some("新站二".into()), ..Default::default() },
            Some(1),
        )
        .unwrap();
    assert_eq!((b.lon, m.lon, m.name.as_str(), m.version), (100.3, 100.31, "新站二", 2));
    let e = s.update_station(&p, &a.id, &StationPatch { lat: Some(40.0), ..Default::default() }, Some(1)).unwrap_err();
    assert!(matches!(e, StoreError::Conflict { current: 2, .. }));
    assert!(s.update_station(&p, &a.id, &StationPatch::default(), None).is_err());
    let (_, c) = s.close_station(&p, &a.id, Some(2)).unwrap();
    assert!(!c.active && c.version == 3);
    assert!(s.close_station(&p, &a.id, None).unwrap_err().to_string().contains("closed already"));
    let leader = user(&s, Role::Leader, &[]);
    assert!(s.add_station(&leader, &new).is_err());
    let h: Vec<String> = s.history("station", &a.id).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(h, ["add", "update", "close"]);
    // The server starts from the store: the new station is there, closed, last.
    let ds2 = s.load_dataset(f.path()).unwrap();
    assert_eq!(ds2.stations.len(), ds.stations.len() + 1);
    assert_eq!(ds2.stations.id.last(), Some(&a.id));
    assert_eq!((ds2.stations.lon.last(), ds2.stations.active.last()), (Some(&100.31), Some(&false)));
    // A re-import leaves the planner's station alone.
    std::fs::write(
        f.path().join("stations.csv"),
        std::fs::read_to_string(f.path().join("stations.csv")).unwrap() + "\n",
    )
    .unwrap();
    let r = s.import(f.path()).unwrap();
    assert_eq!(r.removed, [0; 3], "{r:?}");
    assert_eq!(s.station(&a.id).unwrap().unwrap().version, 3);
}

#[test]
fn concurrent_writers_lose_no_update() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    // 8 threads each add 25 to a counter with read-modify-write under If-Match, retrying on
    // conflict: the counter must end at 200 and the version at 201.
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| {
                for _ in 0..25 {
                    loop {
                        let h = s.household("H1").unwrap().unwrap();
                        let n = h.status.get("n").and_then(|v| v.as_i64()).unwrap_or(0);
                        match s.patch_household_status(&w, "H1", &json!({"n": n + 1}), Some(h.version)) {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let h = s.household("H1").unwrap().unwrap();
    assert_eq!((h.status["n"].as_i64(), h.version), (Some(200), 201));
    assert_eq!(s.history("household", "H1").unwrap().len(), 200);
}

/// A tmpfs mounted at a fresh folder, unmounted on drop (needs the right to mount: root in a
/// container that allows it). `None` when mounting is not possible here.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn remount(&self, opt: &str) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Copies the fixture's files (not its geometry cache, a folder) into `to`.
fn copy_fixture(to: &Path) {
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A read-only folder: creating a store there, or writing to one there, is a clear error and
/// leaves the store as it was. Root ignores file permissions, so as root the folder is a tmpfs
/// remounted read-only; otherwise it is made read-only with chmod.
#[test]
fn a_read_only_folder_is_a_clear_error_and_no_damage() {
    use std::os::unix::fs::PermissionsExt;
    let mount = if is_root() { Tmpfs::new("64m") } else { None };
    let plain = tempfile::tempdir().unwrap();
    if is_root() && mount.is_none() {
        eprintln!("skipped: running as root where tmpfs cannot be mounted, so no folder is read-only to this process");
        return;
    }
    let dir = mount.as_ref().map_or(plain.path(), |m| m.path());
    copy_fixture(dir);
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let s = Store::open(dir).unwrap();
    s.import(dir).unwrap();
    drop(s);
    let before = dump(&dir.join(STORE_FILE));
    let set_ro = |ro: bool| match &mount {
        Some(m) => m.remount(if ro { "ro" } else { "rw" }),
        None => {
            let mode = if ro { 0o555 } else { 0o755 };
            std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
            for f in ["gridcover.sqlite", "gridcover.sqlite-wal", "gridcover.sqlite-shm"] {
                let _ = std::fs::set_permissions(
                    dir.join(f),
                    std::fs::Permissions::from_mode(if ro { 0o444 } else { 0o644 }),
                );
            }
        }
    };
    set_ro(true);
    // A new store in a read-only folder.
    let e = Store::open(&empty).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, StoreError::Open { .. }) && m.contains("empty/gridcover.sqlite") && m.contains("read"), "{m}");
    // The existing store: opening it for writing fails clearly.
    let e = Store::open(dir).and_then(|s| s.add_user("x", Role::Leader, &[])).unwrap_err();
    assert!(e.to_string().contains("read"), "{e}");
    set_ro(false);
    let s = Store::open(dir).unwrap();
    let ok: String = s.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(ok, "ok");
    drop(s);
    assert_eq!(dump(&dir.join(STORE_FILE)), before);
}

/// A really full disk (a small tmpfs, when one can be mounted): the import fails with a clear
/// error, and the store is as it was and sound.
#[test]
fn a_full_tmpfs_fails_the_import_cleanly() {
    let Some(m) = Tmpfs::new("400k") else {
        eprintln!("skipped: tmpfs cannot be mounted here (a_full_disk_rolls_the_import_back covers SQLITE_FULL)");
        return;
    };
    copy_fixture(m.path());
    let s = Store::open(m.path()).unwrap();
    let before = dump(s.path());
    let mut hh = std::fs::read_to_string(m.path().join("households.csv")).unwrap();
    for k in 0..6000 {
        hh.push_str(&format!("X{k}-{},100.{:04},40.5,1,,false,false\n", "某".repeat(20), k));
    }
    // Written outside the tmpfs (it would not fit) and read from there.
    let src = tempfile::tempdir().unwrap();
    copy_fixture(src.path());
    std::fs::write(src.path().join("households.csv"), hh).unwrap();
    let ds = crate::ingest::read_data_folder(src.path()).unwrap();
    assert!(ds.households.len() > 6000, "{:?}", &ds.rejects[..3.min(ds.rejects.len())]);
    let e = s.import_dataset(&ds, "big").unwrap_err();
    assert!(e.is_disk_full() || e.to_string().contains("full"), "{e}");
    drop(s);
    let s = Store::open(m.path()).unwrap();
    let ok: String = s.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(ok, "ok");
    assert_eq!(dump(s.path()), before);
}

/// A status nested `n` levels deep: `{"a": {"a": … 1}}`.
fn nested(n: usize) -> serde_json::Value {
    let mut v = json!(1);
    for _ in 0..n {
        v = json!({ "a": v });
    }
    v
}

#[test]
fn statuses_are_bounded_in_depth_and_size_before_anything_is_stored() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    let before = dump(s.path());
    for n in [MAX_STATUS_DEPTH + 1, 100] {
        let e = s.patch_household_status(&w, "H1", &nested(n), None).unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)) && e.to_string().contains("8 levels"), "{n}: {e}");
    }
    // An array counts as a level as an object does.
    let mut deep_array = json!(1);
    for _ in 0..MAX_STATUS_DEPTH {
        deep_array = json!([deep_array]);
    }
    assert!(s.patch_household_status(&w, "H1", &json!({ "x": deep_array }), None).is_err());
    assert_eq!(dump(s.path()), before, "a refused status leaves no trace, not even an audit entry");
    // Exactly the bound is accepted.
    let ok = s.patch_household_status(&w, "H1", &nested(MAX_STATUS_DEPTH), None).unwrap();
    assert_eq!(ok.status, nested(MAX_STATUS_DEPTH));
    s.patch_household_status(&w, "H1", &json!({"a": {"a": null}}), None).unwrap();
    let big = json!({"x": "a".repeat(MAX_STATUS_BYTES)});
    let e = s.patch_household_status(&w, "H1", &big, None).unwrap_err();
    assert!(e.to_string().contains("16 KiB"), "{e}");
    assert_eq!(s.household("H1").unwrap().unwrap().status, json!({"a": {}}));
}

#[test]
fn a_household_write_and_its_audit_entry_commit_together() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    let audits = |s: &Store| s.audit_log().unwrap().into_iter().filter(|e| e.action.starts_with("households.")).count();
    // Refuse audit entries on the store's own writer connection (a temporary trigger lives on
    // that connection only): the write fails, and the household, its history and its visits
    // are as they were.
    s.write(|c| {
        c.execute_batch(
            "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
        )
        .map_err(StoreError::db("test trigger"))
    })
    .unwrap();
    let before = dump(s.path());
    let e = s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).unwrap_err();
    assert!(e.to_string().contains("audit"), "{e}");
    let e = s
        .add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "x".into(), ..Default::default() })
        .unwrap_err();
    assert!(e.to_string().contains("audit"), "{e}");
    assert_eq!(dump(s.path()), before);
    assert_eq!(s.household("H1").unwrap().unwrap().version, 1);
    // The reverse: a write that fails after its audit entry was appended leaves no entry.
    s.write(|c| {
        c.execute_batch(
            "DROP TRIGGER temp.refuse_audit;
             CREATE TEMP TRIGGER refuse_history BEFORE INSERT ON main.history BEGIN SELECT RAISE(ABORT, 'history refused'); END;",
        )
        .map_err(StoreError::db("test trigger"))
    })
    .unwrap();
    assert!(s
        .add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "x".into(), ..Default::default() })
        .is_err());
    assert!(s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).is_err());
    assert_eq!(dump(s.path()), before);
    // Without the triggers both go through, each with its audit entry.
    s.write(|c| c.execute_batch("DROP TRIGGER temp.refuse_history;").map_err(StoreError::db("test trigger"))).unwrap();
    let n = audits(&s);
    s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).unwrap();
    s.add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "x".into(), ..Default::default() }).unwrap();
    // A patch that changes nothing is still an access, audited.
    s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).unwrap();
    let log = s.audit_log().unwrap();
    let last: Vec<(&str, &str)> = log[log.len() - 3..].iter().map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(last, [("households.patch", "H1"), ("households.visit", "H1"), ("households.patch", "H1")]);
    assert_eq!(audits(&s), n + 3);
}

#[test]
fn tokens_expire_and_are_revoked_by_name_with_an_audit_entry() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let g0 = s.users_generation().unwrap();
    let t_worker = s.add_user("王五", Role::GridWorker, &["G1".into()]).unwrap();
    let t_worker2 = s.add_user("王五", Role::GridWorker, &["G1".into()]).unwrap(); // a second token
    let t_leader = s.add_user_expiring("李明", Role::Leader, &[], Some(Duration::from_secs(90 * 86400))).unwrap();
    let t_short = s.add_user_expiring("临时", Role::Planner, &[], Some(Duration::from_millis(1200))).unwrap();
    assert!(s.users_generation().unwrap() > g0);
    for bad in [Duration::ZERO, MAX_EXPIRY + Duration::from_secs(1)] {
        let e = s.add_user_expiring("x", Role::Leader, &[], Some(bad)).unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)) && e.to_string().contains("3650 days"), "{e}");
    }
    let leader = s.authenticate(&t_leader).unwrap().unwrap();
    let in_90d = std::time::SystemTime::now() + Duration::from_secs(90 * 86400);
    let exp = leader.expires_unix_ms.unwrap();
    let want = in_90d.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((exp - want).abs() < 5_000, "{exp} vs {want}");
    assert!(!leader.is_expired(std::time::SystemTime::now()) && leader.is_expired(in_90d + Duration::from_secs(5)));
    assert_eq!(s.authenticate(&t_worker).unwrap().unwrap().expires_unix_ms, None);
    // The short one expires by itself.
    assert!(s.authenticate(&t_short).unwrap().is_some());
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(s.authenticate(&t_short).unwrap(), None);
    // Listing: every user, never a token or a hash.
    let list = s.users().unwrap();
    let states: Vec<(&str, &str)> = list.iter().map(|u| (u.name.as_str(), u.state)).collect();
    assert_eq!(states, [("王五", "active"), ("王五", "active"), ("李明", "active"), ("临时", "expired")]);
    assert_eq!(list[0].grids, ["G1"]);
    assert!(list[2].expires_at.is_some() && list[0].expires_at.is_none() && list[0].revoked_at.is_none());
    let text = serde_json::to_string(&list).unwrap();
    for t in [&t_worker, &t_worker2, &t_leader, &t_short] {
        assert!(!text.contains(t.as_str()) && !text.contains(&hex(&sha256(t.as_bytes()))));
    }
    // Revoking by name ends both of 王五's tokens, audited, and moves the generation.
    let g1 = s.users_generation().unwrap();
    let revoked = s.revoke_user(" 王五 ").unwrap();
    assert_eq!(
        revoked.iter().map(|u| (u.id, u.state)).collect::<Vec<_>>(),
        [(list[0].id, "revoked"), (list[1].id, "revoked")]
    );
    assert!(revoked.iter().all(|u| u.revoked_at.is_some()));
    assert!(s.users_generation().unwrap() > g1);
    assert_eq!(s.authenticate(&t_worker).unwrap(), None);
    assert_eq!(s.authenticate(&t_worker2).unwrap(), None);
    assert!(s.authenticate(&t_leader).unwrap().is_some());
    let log = s.audit_log().unwrap();
    let rv: Vec<&AuditEntry> = log.iter().filter(|e| e.action == "user.revoke").collect();
    assert_eq!(rv.len(), 2);
    assert_eq!(rv[0].user_id, Some(list[0].id));
    assert!(rv[0].target.contains("王五"), "{}", rv[0].target);
    // Again: nothing active is left; an unknown name; an expired one.
    let e = s.revoke_user("王五").unwrap_err();
    assert!(matches!(e, StoreError::NoActiveToken { known: true, .. }) && e.to_string().contains("王五"), "{e}");
    let e = s.revoke_user("nobody").unwrap_err();
    assert!(matches!(e, StoreError::NoActiveToken { known: false, .. }) && e.to_string().contains("nobody"), "{e}");
    assert!(matches!(s.revoke_user("临时").unwrap_err(), StoreError::NoActiveToken { known: true, .. }));
    // A revoked token stays revoked, even by hand.
    let e =
        s.write(|c| c.execute("UPDATE users SET revoked_at = NULL", []).map_err(StoreError::db("test"))).unwrap_err();
    assert!(e.to_string().contains("stays revoked"), "{e}");
}

#[test]
fn visits_and_history_of_a_revoked_user_stay_readable() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "送煤".into(), ..Default::default() }).unwrap();
    s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).unwrap();
    s.revoke_user(&w.name).unwrap();
    let v = s.visits("H1").unwrap();
    assert_eq!((v[0].user_id, v[0].user.as_str(), v[0].note.as_str()), (w.id, "grid_worker-user", "送煤"));
    let h = s.history("household", "H1").unwrap();
    assert!(h.iter().all(|e| e.user_id == Some(w.id) && e.actor == "grid_worker-user"), "{h:?}");
    assert_eq!(h.len(), 2);
}

/// A store made by the gridcover before tokens could expire (schema version 2) opens, migrates
/// to the current version and keeps its users, valid and never expiring.
#[test]
fn a_version_2_store_migrates_and_keeps_its_users() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join(STORE_FILE);
    let token = "ab".repeat(32);
    {
        let c = raw(&path, OpenFlags::default());
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        )
        .unwrap();
        for (k, sql) in MIGRATIONS[..2].iter().enumerate() {
            c.execute_batch(sql).unwrap();
            c.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [k as i64 + 1]).unwrap();
        }
        c.execute(
            "INSERT INTO users (name, role, token_sha256) VALUES ('老用户', 'leader', ?1)",
            [&sha256(token.as_bytes())[..]],
        )
        .unwrap();
    }
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert!(MIGRATIONS.len() >= 3);
    let u = s.authenticate(&token).unwrap().unwrap();
    assert_eq!((u.name.as_str(), u.expires_unix_ms), ("老用户", None));
    let l = s.users().unwrap();
    assert_eq!((l[0].state, l[0].expires_at.as_deref(), l[0].revoked_at.as_deref()), ("active", None, None));
    s.revoke_user("老用户").unwrap();
    assert_eq!(s.authenticate(&token).unwrap(), None);
}

fn need_of(category: NeedCategory, note: &str) -> VisitNeed {
    VisitNeed { category, note: note.into() }
}

fn status_to(status: NeedStatus, note: &str, date: &str) -> NeedPatch {
    NeedPatch { status, note: note.into(), date: Some(date.into()) }
}

/// A visit with a kind and two needs: the visit, both needs with their first changes, three
/// history entries and one audit entry, in one transaction (a refused need change leaves
/// nothing of the visit); a visit without `kind` is a home visit.
#[test]
fn a_visit_with_needs_is_one_transaction() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    let visit = NewVisit {
        date: "2026-11-29".into(),
        kind: ContactKind::Phone,
        note: "电话回访".into(),
        needs: vec![need_of(NeedCategory::Medical, "住院报销"), need_of(NeedCategory::Housing, "屋顶漏雨")],
    };
    // All or nothing: the second need's first change refused, nothing of the visit is stored.
    let before = dump(s.path());
    s.write(|c| {
        c.execute_batch(
            "CREATE TEMP TRIGGER refuse_second BEFORE INSERT ON main.need_changes
             WHEN (SELECT count(*) FROM main.need_changes) >= 1 BEGIN SELECT RAISE(ABORT, 'change refused'); END;",
        )
        .map_err(StoreError::db("test trigger"))
    })
    .unwrap();
    let e = s.add_visit(&w, "H1", &visit).unwrap_err();
    assert!(e.to_string().contains("change refused"), "{e}");
    assert_eq!(dump(s.path()), before);
    s.write(|c| c.execute_batch("DROP TRIGGER temp.refuse_second;").map_err(StoreError::db("test trigger"))).unwrap();

    let audits0 = s.audit_log().unwrap().len();
    let v = s.add_visit(&w, "H1", &visit).unwrap();
    assert_eq!((v.kind, v.needs.len()), (ContactKind::Phone, 2));
    let needs = s.needs("H1").unwrap();
    assert_eq!(needs.iter().map(|n| n.id).collect::<Vec<_>>(), v.needs);
    for (n, (cat, note)) in needs.iter().zip([(NeedCategory::Medical, "住院报销"), (NeedCategory::Housing, "屋顶漏雨")])
    {
        assert_eq!((n.category, n.note.as_str(), n.status), (cat, note, NeedStatus::Open));
        assert_eq!((n.opened.as_str(), n.visit_id, n.version, n.user_id), ("2026-11-29", Some(v.id), 1, w.id));
        assert_eq!(n.changes.len(), 1);
        assert_eq!((n.changes[0].date.as_str(), n.changes[0].status), ("2026-11-29", NeedStatus::Open));
    }
    let h = s.history("household", "H1").unwrap();
    let actions: Vec<&str> = h.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["visit", "need", "need"]);
    assert_eq!(h[0].after.as_ref().unwrap()["kind"], json!("phone"));
    assert_eq!(h[0].after.as_ref().unwrap()["needs"], json!(v.needs));
    assert_eq!(h[2].after.as_ref().unwrap()["category"], json!("housing"));
    let log = s.audit_log().unwrap();
    let new: Vec<(&str, &str)> = log[audits0..].iter().map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(new, [("households.visit", "H1")]);
    // As today's bodies: a home visit raising nothing.
    let old: NewVisit = serde_json::from_str(r#"{"date": "2026-11-30", "note": "送煤"}"#).unwrap();
    let v2 = s.add_visit(&w, "H1", &old).unwrap();
    assert_eq!((v2.kind, v2.needs.clone()), (ContactKind::Home, vec![]));
    assert_eq!(s.visits("H1").unwrap(), vec![v, v2]);
    // Bounds: at most 20 needs, each note as long as a visit's.
    let many =
        NewVisit { date: "2026-11-30".into(), needs: vec![need_of(NeedCategory::Other, ""); 21], ..Default::default() };
    let e = s.add_visit(&w, "H1", &many).unwrap_err();
    assert!(e.to_string().contains("needs") && e.to_string().contains("20"), "{e}");
    let long = NewVisit {
        date: "2026-11-30".into(),
        needs: vec![need_of(NeedCategory::Other, ""), need_of(NeedCategory::Other, &"长".repeat(MAX_NOTE_CHARS + 1))],
        ..Default::default()
    };
    let e = s.add_visit(&w, "H1", &long).unwrap_err();
    assert!(e.to_string().starts_with("needs[1].note is longer"), "{e}");
    // Unknown kinds and categories are refused naming the field.
    for (body, field) in [
        (r#"{"date": "2026-11-30", "kind": "fax"}"#, "kind \"fax\""),
        (r#"{"date": "2026-11-30", "needs": [{"category": "food"}]}"#, "category \"food\""),
        (r#"{"date": "2026-11-30", "needs": [{"category": "medical", "status": "open"}]}"#, "status"),
    ] {
        let e = serde_json::from_str::<NewVisit>(body).unwrap_err().to_string();
        assert!(e.contains(field), "{body}: {e}");
    }
}

#[test]
fn needs_change_status_with_history_versions_and_audit() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    let leader = user(&s, Role::Leader, &[]);
    let new = NewNeed { category: NeedCategory::Employment, note: "找工作".into(), date: Some("2026-11-01".into()) };
    assert!(matches!(s.add_need(&leader, "H1", &new).unwrap_err(), StoreError::Invalid(_)));
    assert!(matches!(s.add_need(&w, "NOPE", &new).unwrap_err(), StoreError::NotFound { .. }));
    let bad = NewNeed { date: Some("2026-02-30".into()), ..new.clone() };
    assert!(s.add_need(&w, "H1", &bad).unwrap_err().to_string().contains("date \"2026-02-30\""));
    let n = s.add_need(&w, "H1", &new).unwrap();
    assert_eq!((n.status, n.version, n.opened.as_str(), n.visit_id), (NeedStatus::Open, 1, "2026-11-01", None));
    assert_eq!(s.need_household(n.id).unwrap().as_deref(), Some("H1"));
    assert_eq!(s.need_household(n.id + 100).unwrap(), None);
    // Without a date: opened today (UTC).
    let today = s.add_need(&w, "H1", &NewNeed { date: None, ..new.clone() }).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(today.opened, crate::model::service::format_day((now / 86_400) as i32));

    let a = s.update_need(&w, n.id, &status_to(NeedStatus::InProgress, "联系人社局", "2026-11-03"), Some(1)).unwrap();
    assert_eq!((a.status, a.version), (NeedStatus::InProgress, 2));
    // A stale version: 409, nothing written.
    let e = s.update_need(&w, n.id, &status_to(NeedStatus::Resolved, "", "2026-11-20"), Some(1)).unwrap_err();
    assert!(matches!(e, StoreError::Conflict { what: "need", expected: 1, current: 2, .. }), "{e}");
    // A change dated before the last one is refused naming the date.
    let e = s.update_need(&w, n.id, &status_to(NeedStatus::Resolved, "", "2026-11-02"), None).unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)) && e.to_string().starts_with("date 2026-11-02"), "{e}");
    let e = s.update_need(&leader, n.id, &status_to(NeedStatus::Resolved, "", "2026-11-20"), None).unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    let e = s.update_need(&w, 9999, &status_to(NeedStatus::Resolved, "", "2026-11-20"), None).unwrap_err();
    assert!(matches!(e, StoreError::NotFound { what: "need", .. }), "{e}");
    let long = status_to(NeedStatus::Resolved, &"x".repeat(MAX_NOTE_CHARS + 1), "2026-11-20");
    assert!(s.update_need(&w, n.id, &long, None).unwrap_err().to_string().starts_with("note is longer"));
    let r = s.update_need(&w, n.id, &status_to(NeedStatus::Resolved, "已就业", "2026-11-20"), Some(2)).unwrap();
    assert_eq!((r.status, r.version), (NeedStatus::Resolved, 3));
    let got = s.needs("H1").unwrap();
    assert_eq!(got, vec![r.clone(), today]);
    let chain: Vec<(&str, NeedStatus, &str)> =
        r.changes.iter().map(|c| (c.date.as_str(), c.status, c.note.as_str())).collect();
    assert_eq!(
        chain,
        [
            ("2026-11-01", NeedStatus::Open, "找工作"),
            ("2026-11-03", NeedStatus::InProgress, "联系人社局"),
            ("2026-11-20", NeedStatus::Resolved, "已就业")
        ]
    );
    let h = s.history("household", "H1").unwrap();
    let actions: Vec<&str> = h.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["need", "need", "need_update", "need_update"]);
    assert_eq!(h[3].before, Some(json!({"need": n.id, "status": "in_progress", "version": 2})));
    let after = h[3].after.as_ref().unwrap();
    assert_eq!((after["status"].clone(), after["version"].clone()), (json!("resolved"), json!(3)));
    assert_eq!(after["change"]["note"], json!("已就业"));
    let log = s.audit_log().unwrap();
    let acts: Vec<&str> = log.iter().filter(|e| e.target == "H1").map(|e| e.action.as_str()).collect();
    assert_eq!(acts, ["households.need", "households.need", "households.need_update", "households.need_update"]);
    // Bad statuses and unknown fields are refused naming the field.
    for (body, field) in [
        (r#"{"status": "done"}"#, "status \"done\""),
        (r#"{"note": "x"}"#, "status"),
        (r#"{"status": "open", "category": "legal"}"#, "category"),
    ] {
        let e = serde_json::from_str::<NeedPatch>(body).unwrap_err().to_string();
        assert!(e.contains(field), "{body}: {e}");
    }
}

/// A hand-made history: exactly its contact days and need changes, by the index of the
/// households given (matched by id, in their order), and what is left out counted.
#[test]
fn service_records_are_the_stores_contacts_and_needs_by_household_index() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    let visit = |h: &str, date: &str, kind, needs: Vec<VisitNeed>| {
        s.add_visit(&w, h, &NewVisit { date: date.into(), kind, note: String::new(), needs }).unwrap()
    };
    let v = visit("H1", "2026-03-01", ContactKind::Phone, vec![]);
    let v1 = visit("H1", "2026-01-05", ContactKind::Home, vec![need_of(NeedCategory::Medical, "")]);
    visit("H2", "2026-02-01", ContactKind::Station, vec![need_of(NeedCategory::Pension, "")]);
    visit("H3", "2026-02-10", ContactKind::Other, vec![]);
    let medical = v1.needs[0];
    s.update_need(&w, medical, &status_to(NeedStatus::InProgress, "", "2026-01-10"), None).unwrap();
    s.update_need(&w, medical, &status_to(NeedStatus::Resolved, "", "2026-02-01"), None).unwrap();
    let housing = NewNeed { category: NeedCategory::Housing, note: String::new(), date: Some("2026-02-15".into()) };
    s.add_need(&w, "H3", &housing).unwrap();
    assert_eq!(v.needs, Vec::<i64>::new());

    // The data set's households: H3 and H1 (in that order), and one the store does not know.
    let mut hh = Households::default();
    for id in ["H3", "H1", "H99"] {
        hh.push(HouseholdRow { id: id.into(), lon: 100.0, lat: 40.0, veterans: 1, ..Default::default() });
    }
    let (r, left_out) = s.service_records(&hh).unwrap();
    let d = |m, day| day_from_ymd(2026, m, day);
    assert_eq!(r.households(), 3);
    assert_eq!(r.contacts(0), [d(2, 10)]);
    assert_eq!(r.contacts(1), [d(1, 5), d(3, 1)]);
    assert_eq!(r.contacts(2), [] as [i32; 0]);
    assert_eq!(r.contact_count(), 3);
    assert_eq!(
        r.needs,
        vec![
            NeedSpan {
                household: 1,
                category: NeedCategory::Medical,
                changes: vec![
                    (d(1, 5), NeedStatus::Open),
                    (d(1, 10), NeedStatus::InProgress),
                    (d(2, 1), NeedStatus::Resolved)
                ],
            },
            NeedSpan { household: 0, category: NeedCategory::Housing, changes: vec![(d(2, 15), NeedStatus::Open)] },
        ]
    );
    // H2's visit and its need are not among the households: counted, not dropped silently.
    assert_eq!(left_out, 2);
    // The data set in the store's own order: everything is there.
    let ds = s.load_dataset(f.path()).unwrap();
    let (r, left_out) = s.service_records(&ds.households).unwrap();
    assert_eq!((r.contact_count(), r.needs.len(), left_out), (4, 3, 0));
}

/// A store of schema version 3 (before service records) with a visit opens, migrates, and
/// keeps the visit as a home visit; needs can be raised on it.
#[test]
fn a_version_3_store_migrates_and_keeps_its_visits_as_home_visits() {
    let f = folder();
    let path = f.path().join(STORE_FILE);
    {
        let mut c = raw(&path, OpenFlags::default());
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        )
        .unwrap();
        let tx = c.transaction().unwrap();
        for (k, sql) in MIGRATIONS[..3].iter().enumerate() {
            tx.execute_batch(sql).unwrap();
            tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [k as i64 + 1]).unwrap();
        }
        tx.execute_batch(
            "INSERT INTO users (id, name, role, token_sha256) VALUES (7, '老王', 'grid_worker', zeroblob(32));
             INSERT INTO households (id, lon, lat, veterans, difficulty, martyr_family, import_sha256)
                 VALUES ('H1', 100.25, 40.5, 2, 0, 1, zeroblob(32));
             INSERT INTO visits (household_id, date, note, user_id) VALUES ('H1', '2026-10-01', '老记录', 7);",
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let s = Store::open(f.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert!(MIGRATIONS.len() >= 4);
    let v = s.visits("H1").unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].kind, v[0].note.as_str(), v[0].user.as_str()), (ContactKind::Home, "老记录", "老王"));
    assert!(v[0].needs.is_empty());
    let w =
        User { id: 7, name: "老王".into(), role: Role::GridWorker, grids: vec!["G1".into()], expires_unix_ms: None };
    let n = s
        .add_need(
            &w,
            "H1",
            &NewNeed { category: NeedCategory::Hardship, note: String::new(), date: Some("2026-10-02".into()) },
        )
        .unwrap();
    assert_eq!(s.needs("H1").unwrap(), vec![n]);
    // The new checks hold on the migrated table.
    let e = s
        .write(|c| {
            c.execute("INSERT INTO visits (household_id, date, kind, note, user_id) VALUES ('H1', '2026-10-03', 'fax', '', 7)", [])
                .map_err(StoreError::db("test"))
        })
        .unwrap_err();
    assert!(e.to_string().contains("CHECK"), "{e}");
}

#[test]
fn imported_records_have_one_entry_per_file_and_show_in_the_households_history() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.patch_household_status(&w, "H1", &json!({"phone": "138"}), Some(1)).unwrap();
    let before = s.history("household", "H1").unwrap();
    assert_eq!(before.len(), 1);
    let status_seq = before[0].seq;
    std::fs::write(
        f.path().join("contacts.csv"),
        "household_id,date,kind,note\nH1,2026-11-02,phone,问候\nH2,2026-11-01,home,\nH1,2026-10-05,home,送米\n",
    )
    .unwrap();
    std::fs::write(
        f.path().join("needs.csv"),
        "household_id,category,date,status,status_date,note\nH1,medical,2026-10-01,resolved,2026-10-20,看病\n",
    )
    .unwrap();
    let rep = s.import(f.path()).unwrap();
    assert_eq!((rep.contacts.unwrap().added, rep.needs.unwrap().added), (3, 1));
    // No history row per imported record: one row of record_imports per file.
    let rows: i64 = s
        .read(|c| {
            c.query_row("SELECT count(*) FROM history WHERE action IN ('visit', 'need')", [], |r| r.get(0))
                .map_err(StoreError::db("test"))
        })
        .unwrap();
    assert_eq!(rows, 0);
    let imports = s.record_imports().unwrap();
    assert_eq!(imports.len(), 2);
    let (ci, ni) = (&imports[0], &imports[1]);
    assert_eq!(
        (ci["what"].as_str(), ci["file"].as_str(), ci["added"].as_i64()),
        (Some("contacts"), Some("contacts.csv"), Some(3))
    );
    assert_eq!(
        (ci["first_id"].as_i64(), ci["last_id"].as_i64(), ci["history_seq"].as_i64()),
        (Some(1), Some(3), Some(status_seq))
    );
    assert_eq!(
        (ni["what"].as_str(), ni["first_id"].as_i64(), ni["last_id"].as_i64()),
        (Some("needs"), Some(1), Some(1))
    );
    let sha = hex(&sha256(&std::fs::read(f.path().join("contacts.csv")).unwrap()));
    assert_eq!(ci["sha256"].as_str(), Some(sha.as_str()));
    let (cid, nid) = (ci["id"].as_i64().unwrap(), ni["id"].as_i64().unwrap());
    let visit_imports: Vec<(i64, Option<i64>)> = s
        .read(|c| {
            c.prepare("SELECT id, import_id FROM visits ORDER BY id")
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(StoreError::db("test"))
        })
        .unwrap();
    assert_eq!(visit_imports, vec![(1, Some(cid)), (2, Some(cid)), (3, Some(cid))]);

    // Later, through the server: a visit, and the imported need reopened.
    let mine = s
        .add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "回访".into(), ..Default::default() })
        .unwrap();
    let need = s.needs("H1").unwrap()[0].clone();
    assert_eq!((need.status, need.version, need.changes.len()), (NeedStatus::Resolved, 2, 2));
    s.update_need(&w, need.id, &status_to(NeedStatus::InProgress, "复发", "2026-11-25"), Some(2)).unwrap();

    let h = s.history("household", "H1").unwrap();
    let actions: Vec<&str> = h.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["status", "visit", "visit", "need", "visit", "need_update"]);
    let seqs: Vec<i64> = h.iter().map(|e| e.seq).collect();
    assert_eq!(&seqs[..4], &[status_seq; 4]);
    assert!(seqs[4] > status_seq && seqs[5] > seqs[4], "{seqs:?}");
    for e in &h[1..4] {
        assert_eq!((e.actor.as_str(), e.user_id, e.version, e.kind.as_str()), ("import", None, Some(2), "household"));
        assert_eq!(e.record_id, "H1");
        assert_eq!(e.before, None);
    }
    assert_eq!((h[1].import, h[2].import, h[3].import, h[4].import), (Some(cid), Some(cid), Some(nid), None));
    let v1 = h[1].after.as_ref().unwrap();
    assert_eq!(
        (v1["id"].as_i64(), v1["date"].as_str(), v1["kind"].as_str(), v1["note"].as_str()),
        (Some(1), Some("2026-11-02"), Some("phone"), Some("问候"))
    );
    assert_eq!((v1["user"].as_str(), v1["household_id"].as_str()), (Some("import"), Some("H1")));
    assert_eq!(h[2].after.as_ref().unwrap()["note"].as_str(), Some("送米"));
    // The need as it was imported (its two changes), not as it is now.
    let n = h[3].after.as_ref().unwrap();
    assert_eq!(
        (n["status"].as_str(), n["version"].as_i64(), n["opened"].as_str()),
        (Some("resolved"), Some(2), Some("2026-10-01"))
    );
    let changes: Vec<(&str, &str)> = n["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["date"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("2026-10-01", "open"), ("2026-10-20", "resolved")]);
    assert_eq!(
        (h[4].actor.as_str(), h[4].user_id, h[4].after.as_ref().unwrap()["id"].as_i64()),
        ("grid_worker-user", Some(w.id), Some(mine.id))
    );
    assert_eq!(s.needs("H1").unwrap()[0].version, 3);
    // The history's JSON names the import only for imported records.
    let js = serde_json::to_value(&h).unwrap();
    assert_eq!((js[1]["import"].as_i64(), js[4].get("import")), (Some(cid), None));
    // H2's contact is its own; H3 has none.
    let h2: Vec<(String, Option<i64>)> =
        s.history("household", "H2").unwrap().into_iter().map(|e| (e.action, e.import)).collect();
    assert_eq!(h2, vec![("visit".to_string(), Some(cid))]);
    assert!(s.history("household", "H3").unwrap().is_empty());

    // Importing again (the folder changed elsewhere) adds nothing and changes no history.
    std::fs::write(
        f.path().join("gridcover.toml"),
        std::fs::read_to_string(f.path().join("gridcover.toml")).unwrap() + "\n# again\n",
    )
    .unwrap();
    let rep = s.import(f.path()).unwrap();
    assert_eq!((rep.contacts.unwrap().added, rep.contacts.unwrap().same, rep.needs.unwrap().added), (0, 3, 0));
    assert_eq!(s.history("household", "H1").unwrap(), h);
    assert_eq!(s.record_imports().unwrap()[2]["first_id"], serde_json::Value::Null);
    // A ledger imported later by a user names that user.
    let rows = vec![crate::ingest::service::LedgerRow {
        line: 2,
        household: 0,
        household_id: "H1".into(),
        day: day_from_ymd(2026, 11, 30),
        kind: ContactKind::Station,
        note: "来站".into(),
    }];
    let src = RecordSource { file: "台账.csv".into(), sha256: "ab".repeat(32), rejected: 0 };
    s.import_contacts(&Actor::from(&w), &src, &rows).unwrap();
    let last = s.history("household", "H1").unwrap().pop().unwrap();
    assert_eq!((last.action.as_str(), last.actor.as_str(), last.user_id), ("visit", "grid_worker-user", Some(w.id)));
    assert_eq!(last.import, s.record_imports().unwrap().last().unwrap()["id"].as_i64());
}

#[test]
fn a_version_5_store_keeps_the_history_rows_of_what_it_imported() {
    let f = folder();
    let path = f.path().join(STORE_FILE);
    {
        let mut c = raw(&path, OpenFlags::default());
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        )
        .unwrap();
        let tx = c.transaction().unwrap();
        for (k, sql) in MIGRATIONS[..5].iter().enumerate() {
            tx.execute_batch(sql).unwrap();
            tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [k as i64 + 1]).unwrap();
        }
        // What gridcover 5 wrote for one imported contact: the visit, its history row, the import.
        tx.execute_batch(
            "INSERT INTO households (id, lon, lat, veterans, difficulty, martyr_family, import_sha256)
                 VALUES ('H1', 100.25, 40.5, 2, 0, 1, zeroblob(32));
             INSERT INTO visits (household_id, date, kind, note, user_id)
                 SELECT 'H1', '2026-10-01', 'phone', '旧', id FROM users WHERE name = 'import';
             INSERT INTO history (user_id, actor, kind, record_id, action, version, after)
                 VALUES (NULL, 'import', 'household', 'H1', 'visit', 1, '{\"id\":1,\"note\":\"旧\"}');
             INSERT INTO record_imports (user_id, what, file, sha256, added, same, rejected)
                 SELECT id, 'contacts', 'contacts.csv', 'x', 1, 0, 0 FROM users WHERE name = 'import';",
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let s = Store::open(f.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let h = s.history("household", "H1").unwrap();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        (h[0].action.as_str(), h[0].import, h[0].after.clone()),
        ("visit", None, Some(json!({"id": 1, "note": "旧"})))
    );
    let i = &s.record_imports().unwrap()[0];
    assert_eq!((i["first_id"].clone(), i["history_seq"].clone()), (json!(null), json!(null)));
    assert_eq!(s.visits("H1").unwrap()[0].note, "旧");
    // The append-only triggers hold on the migrated tables, and an imported need stays fixed.
    for sql in [
        "UPDATE history SET action = 'x'",
        "DELETE FROM visits",
        "UPDATE visits SET import_id = 1",
        "UPDATE record_imports SET first_id = 1",
    ] {
        let e = s.write(|c| c.execute(sql, []).map_err(StoreError::db("test"))).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let e = s
        .write(|c| {
            c.execute_batch(
                "INSERT INTO needs (household_id, category, note, opened, user_id) VALUES ('H1', 'legal', '', '2026-10-01', 1);
                 UPDATE needs SET import_id = 1;",
            )
            .map_err(StoreError::db("test"))
        })
        .unwrap_err();
    assert!(e.to_string().contains("a need changes only its status"), "{e}");
}

/// A `contacts.csv` of `n` contacts of the small fixture's households (more than a chunk of the
/// streamed import), with a bad row every 997 lines (an unknown household, a bad date), and a
/// `needs.csv` of `n / 10` needs with a bad one: what a first import streams.
fn many_records(dir: &Path, n: usize) {
    let hh = ["H1", "H2", "H3"];
    let kinds = ["home", "phone", "station", "other", ""];
    let mut c = String::from("household_id,date,kind,note\n");
    for k in 0..n {
        let line = k + 2;
        if line % 997 == 0 {
            c.push_str(&format!("H404,2026-01-01,home,unknown {k}\n"));
        } else if line % 997 == 500 {
            c.push_str(&format!("H1,2026-02-30,home,bad date {k}\n"));
        } else {
            let note = if k % 3 == 0 { String::new() } else { format!("note {k}") };
            c.push_str(&format!("{},2026-{:02}-{:02},{},{note}\n", hh[k % 3], 1 + k % 12, 1 + k % 28, kinds[k % 5]));
        }
    }
    std::fs::write(dir.join("contacts.csv"), c).unwrap();
    let statuses = ["open", "in_progress", "resolved", ""];
    let mut n_csv = String::from("household_id,category,date,status,status_date,note\n");
    for k in 0..n / 10 {
        if k == 7 {
            n_csv.push_str("H2,food,2026-03-01,open,,bad category\n");
            continue;
        }
        let status = statuses[k % 4];
        let since =
            if status.is_empty() || status == "open" { String::new() } else { format!("2026-06-{:02}", 1 + k % 28) };
        n_csv.push_str(&format!("{},medical,2026-05-{:02},{status},{since},need {k}\n", hh[k % 3], 1 + k % 28));
    }
    std::fs::write(dir.join("needs.csv"), n_csv).unwrap();
}

/// The imported records of a store and their imports, without the times of writing.
fn imported_rows(s: &Store) -> Vec<String> {
    s.read(|c| {
        let mut out = Vec::new();
        for sql in [
            "SELECT id, household_id, date, kind, note, user_id, import_id FROM visits ORDER BY id",
            "SELECT id, household_id, category, note, status, opened, visit_id, user_id, version, import_id FROM needs ORDER BY id",
            "SELECT id, need_id, date, status, note, user_id, import_id FROM need_changes ORDER BY id",
            "SELECT id, user_id, what, file, sha256, added, same, rejected, history_seq, first_id, last_id FROM record_imports ORDER BY id",
            "SELECT file, row, record_id, reason FROM import_rejects ORDER BY rowid",
            "SELECT seq, id, lon, lat, veterans, code, name, address, import_sha256 FROM households ORDER BY seq",
        ] {
            let mut st = c.prepare(sql).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut line = String::new();
                    for k in 0..n {
                        let v: rusqlite::types::Value = r.get(k)?;
                        line.push_str(&format!("{v:?}|"));
                    }
                    Ok(line)
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        Ok(out)
    })
    .unwrap()
}

#[test]
fn a_first_import_streams_the_records_and_stores_what_reading_them_whole_stored() {
    let streamed = folder();
    many_records(streamed.path(), 20_000);
    let s = Store::open(streamed.path()).unwrap();
    let rep = s.import(streamed.path()).unwrap();
    let (c, n) = (rep.contacts.unwrap(), rep.needs.unwrap());
    assert_eq!((c.added, c.same, c.rejected), (20_000 - 40, 0, 40));
    assert_eq!((n.added, n.same, n.rejected), (1_999, 0, 1));
    // A bad row names its file and line, in file order, and does not stop the import.
    let first: Vec<(&str, usize, &str)> = rep
        .rejects
        .iter()
        .filter(|r| r.file == "contacts.csv")
        .take(2)
        .map(|r| (r.file.as_str(), r.row, r.reason.as_str()))
        .collect();
    assert_eq!(rep.rejects.iter().filter(|r| r.file == "contacts.csv").count(), 40);
    assert_eq!(first[0].0, "contacts.csv");
    assert_eq!(first[0].1, 500);
    assert!(first[0].2.contains("2026-02-30"), "{first:?}");
    assert_eq!((first[1].0, first[1].1, first[1].2), ("contacts.csv", 997, "unknown household H404"));
    let last = rep.rejects.last().unwrap();
    assert_eq!((last.file.as_str(), last.row), ("needs.csv", 9));

    // The same folder imported the way every import read it before: the files whole, first.
    let whole = folder();
    many_records(whole.path(), 20_000);
    let w = Store::open(whole.path()).unwrap();
    let mut ds = crate::ingest::read_data_folder(whole.path()).unwrap();
    let mut rejects = std::mem::take(&mut ds.rejects);
    let history = FolderHistory::read(whole.path(), &ds, &mut rejects).unwrap();
    ds.rejects = rejects;
    let wrep = w.import_dataset_with(&ds, &rep.files_sha256, &history).unwrap();
    assert_eq!((wrep.contacts, wrep.needs, &wrep.rejects), (rep.contacts, rep.needs, &rep.rejects));
    let (a, b) = (imported_rows(&s), imported_rows(&w));
    assert_eq!(a.len(), b.len());
    assert!(a.len() > 20_000 + 2 * 2_000);
    assert_eq!(a, b);
    // Again: nothing is added (the files are read whole and compared with the store's records).
    std::fs::write(
        streamed.path().join("gridcover.toml"),
        std::fs::read_to_string(streamed.path().join("gridcover.toml")).unwrap() + "\n# again\n",
    )
    .unwrap();
    let again = s.import(streamed.path()).unwrap();
    assert_eq!((again.contacts.unwrap().added, again.contacts.unwrap().same), (0, 20_000 - 40));
    assert_eq!((again.needs.unwrap().added, again.needs.unwrap().same), (0, 1_999));
}

#[test]
fn a_streamed_import_that_fails_part_way_leaves_the_store_as_it_was() {
    // The size of the store with the folder but no contacts.
    let bare = folder();
    let b = Store::open(bare.path()).unwrap();
    b.import(bare.path()).unwrap();
    let pages: i64 = b.write(|c| Ok(c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap())).unwrap();

    let f = folder();
    many_records(f.path(), 20_000);
    let s = Store::open(f.path()).unwrap();
    let before = dump(s.path());
    // Room for the folder, not for its contacts: the disk fills while they are streamed in.
    s.write(|c| {
        Ok(c.query_row(&format!("PRAGMA max_page_count = {}", pages + 4), [], |r| r.get::<_, i64>(0)).unwrap())
    })
    .unwrap();
    let e = s.import(f.path()).unwrap_err();
    assert!(e.is_disk_full(), "{e}");
    assert_eq!(dump(s.path()), before);

    // A contacts file without its date column fails the import after the folder's records were
    // written in the same transaction: nothing of them stays.
    s.write(|c| Ok(c.query_row("PRAGMA max_page_count = 1073741823", [], |r| r.get::<_, i64>(0)).unwrap())).unwrap();
    let good = std::fs::read_to_string(f.path().join("contacts.csv")).unwrap();
    std::fs::write(f.path().join("contacts.csv"), good.replacen("household_id,date,", "household_id,day,", 1)).unwrap();
    let e = s.import(f.path()).unwrap_err();
    assert!(matches!(e, StoreError::Ingest(_)) && e.to_string().contains("contacts.csv"), "{e}");
    assert_eq!(dump(s.path()), before);
    // Fixed: it goes through, every contact in.
    std::fs::write(f.path().join("contacts.csv"), good).unwrap();
    assert_eq!(s.import(f.path()).unwrap().contacts.unwrap().added, 20_000 - 40);
}

#[test]
fn a_first_import_builds_the_record_indexes_after_the_records_as_the_schema_has_them() {
    let empty = folder();
    drop(Store::open(empty.path()).unwrap());
    let want = schema(&empty.path().join(STORE_FILE));
    assert!(want.iter().any(|r| r.starts_with("index|visits_household|visits|")), "{want:?}");

    let f = folder();
    many_records(f.path(), 5_000);
    let s = Store::open(f.path()).unwrap();
    let rep = s.import(f.path()).unwrap();
    assert_eq!(rep.contacts.unwrap().added, 5_000 - 10);
    // The indexes dropped for the records are there again, as the migrations made them, and
    // hold every record (SQLite's integrity check compares each index with its table).
    assert_eq!(schema(s.path()), want);
    s.read(|c| {
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        // Written without foreign-key checks, every reference holds.
        let bad: i64 = c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(bad, 0);
        let plan: String = c
            .query_row("EXPLAIN QUERY PLAN SELECT id FROM visits WHERE household_id = 'H2'", [], |r| r.get(3))
            .unwrap();
        assert!(plan.contains("visits_household"), "{plan}");
        let n: i64 = c
            .query_row("SELECT count(*) FROM visits INDEXED BY visits_household WHERE household_id = 'H2'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let all: i64 =
            c.query_row("SELECT count(*) FROM visits NOT INDEXED WHERE household_id = 'H2'", [], |r| r.get(0)).unwrap();
        assert_eq!((n, all > 1_000), (all, true));
        Ok(())
    })
    .unwrap();
    // The writer checks foreign keys again after the import.
    s.write(|c| {
        assert_eq!(c.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        Ok(())
    })
    .unwrap();
    let e = s
        .write(|c| {
            c.execute("INSERT INTO visits (household_id, date, note, user_id) VALUES ('H404', '2026-01-01', '', 1)", [])
                .map_err(StoreError::db("test"))
        })
        .unwrap_err();
    assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
}

#[test]
fn sqlite_keeps_no_memory_statistics() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    s.add_user("someone", Role::Leader, &[]).unwrap();
    // SQLite counts what it allocates only with its memory statistics on.
    assert_eq!(unsafe { rusqlite::ffi::sqlite3_memory_used() }, 0);
}

#[test]
fn a_first_import_writes_the_store_once_and_leaves_it_in_wal_mode() {
    let f = folder();
    many_records(f.path(), 5_000);
    let s = Store::open(f.path()).unwrap();
    let rep = s.import(f.path()).unwrap();
    assert_eq!(rep.contacts.unwrap().added, 5_000 - 10);
    // Back in WAL mode, with no journal and an empty WAL left behind.
    let mode: String = s.write(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(mode, "wal");
    assert!(!f.path().join("gridcover.sqlite-journal").exists());
    let wal = f.path().join("gridcover.sqlite-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    // Readers and writers work as before, and a later import is not a first one.
    assert!(s.is_imported().unwrap());
    assert!(!s.write(|c| s.first_import_journal(c)).unwrap());
    let mode: String = s.write(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(mode, "wal");
    // A second connection, as another process would have, sees the imported rows.
    let other = Connection::open(s.path()).unwrap();
    let n: i64 = other.query_row("SELECT count(*) FROM visits", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 5_000 - 10);
}

#[test]
fn a_first_import_beside_another_connection_runs_in_wal_mode_as_before() {
    let f = folder();
    many_records(f.path(), 2_000);
    let s = Store::open(f.path()).unwrap();
    // Another connection to the store (another process), idle or in the middle of a read: SQLite
    // leaves WAL mode only for a connection that has the database to itself, so the import
    // keeps the WAL (told at once, not after the busy timeout) and goes through as before.
    let idle = Connection::open(s.path()).unwrap();
    let _: i64 = idle.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert!(!s.write(|c| s.first_import_journal(c)).unwrap());
    let other = Connection::open(s.path()).unwrap();
    other.execute_batch("BEGIN; SELECT count(*) FROM users;").unwrap();
    let t = std::time::Instant::now();
    let rep = s.import(f.path()).unwrap();
    assert!(t.elapsed() < BUSY_TIMEOUT, "the import waited for the reader");
    assert_eq!(rep.contacts.unwrap().added, 2_000 - 4);
    other.execute_batch("COMMIT").unwrap();
    let n: i64 = other.query_row("SELECT count(*) FROM visits", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2_000 - 4);
    let mode: String = s.write(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_store_left_by_a_killed_first_import_opens_as_it_was_before() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.add_user("规划", Role::Planner, &[]).unwrap();
    let users = s.users().unwrap().len();
    let before = dump(s.path());
    let size = std::fs::metadata(s.path()).unwrap().len();
    // The files a crash in the middle of a first import leaves: the import's transaction in
    // progress with a small page cache, so that its pages spill into the database file, and
    // the rollback journal beside it, copied while the transaction is open.
    let crashed = tempfile::tempdir().unwrap();
    s.write(|c| {
        assert!(s.first_import_journal(c).unwrap());
        c.pragma_update(None, "cache_size", 8).unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for k in 0..5_000 {
            tx.execute(
                "INSERT INTO import_rejects (file, row, record_id, reason) VALUES ('households.csv', ?1, ?2, ?3)",
                params![k, format!("H{k}"), "x".repeat(200)],
            )
            .unwrap();
        }
        for name in ["gridcover.sqlite", "gridcover.sqlite-journal"] {
            std::fs::copy(f.path().join(name), crashed.path().join(name)).unwrap();
        }
        drop(tx);
        Ok(())
    })
    .unwrap();
    let grown = std::fs::metadata(crashed.path().join(STORE_FILE)).unwrap().len();
    assert!(grown > size + 500_000, "the transaction's pages are in the database file ({size} → {grown})");
    // Opened, the store is the one before the import: SQLite rolls the journal back.
    let again = Store::open(crashed.path()).unwrap();
    assert!(!again.is_imported().unwrap());
    assert!(!crashed.path().join("gridcover.sqlite-journal").exists());
    assert_eq!(dump(again.path()), before);
    let ok: String = again.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap())).unwrap();
    assert_eq!(ok, "ok");
    // And the import then goes through, the planner kept.
    again.import(f.path()).unwrap();
    assert!(again.is_imported().unwrap());
    assert_eq!(again.users().unwrap().len(), users);
}

/// The contacts' cache file of a store in folder `dir`.
fn contacts_cache(dir: &Path) -> PathBuf {
    dir.join(".gridcover-cache").join("gridcover.sqlite.contacts")
}

/// A store of the small fixture with 5,000 contacts (10 rejected) and needs, imported.
fn store_with_records() -> (tempfile::TempDir, Store, crate::model::Dataset) {
    let f = folder();
    many_records(f.path(), 5_000);
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let ds = s.load_dataset(f.path()).unwrap();
    (f, s, ds)
}

#[test]
fn the_contacts_cache_gives_the_same_records_and_is_what_a_restart_reads() {
    let (f, s, ds) = store_with_records();
    let ids = &ds.households.id;
    let fresh = s.service_records_of(ids).unwrap();
    assert!(fresh.0.contact_count() > 4_000);
    // Read on this thread or in parallel over ranges of visit ids: the same records.
    assert_eq!(s.records_read(ids, false, 0).unwrap(), fresh);
    // Without a file: read from the store, and the file written.
    assert!(!contacts_cache(f.path()).exists());
    assert_eq!(s.service_records_cached(ids).unwrap(), fresh);
    let file = std::fs::read(contacts_cache(f.path())).unwrap();
    // With it: the same records, and the uncached read writes nothing.
    assert_eq!(s.service_records_cached(ids).unwrap(), fresh);
    assert_eq!(std::fs::read(contacts_cache(f.path())).unwrap(), file);

    // The file is what the next read takes its contacts from: a day changed in it (another
    // valid day, the order kept) shows, which only a read of the file can explain.
    // (The fixture's days span a few years: two-byte offsets from the earliest.)
    let (start, days) = fresh.0.contact_days();
    let (_, offsets) = days.as_offsets().unwrap();
    let h = (0..start.len() - 1).find(|&h| start[h + 1] > start[h]).unwrap();
    let last = start[h + 1] as usize - 1;
    let at = file.len() - 2 * (days.len() - last);
    let mut changed = file.clone();
    changed[at..at + 2].copy_from_slice(&(offsets[last] + 1000).to_le_bytes());
    std::fs::write(contacts_cache(f.path()), &changed).unwrap();
    let from_file = s.service_records_cached(ids).unwrap();
    assert_eq!(from_file.0.contacts(h as u32).last(), Some(&(days.get(last) + 1000)));
    std::fs::write(contacts_cache(f.path()), &file).unwrap();

    // Visits added since: the file's contacts and those read from the store, merged in place.
    let w = user(&s, Role::GridWorker, &["G1"]);
    for (hh, date) in [("H1", "2026-01-02"), ("H1", "2025-06-30"), ("H6", "2027-01-01"), ("H1", "2026-01-02")] {
        s.add_visit(&w, hh, &NewVisit { date: date.into(), note: String::new(), ..Default::default() }).unwrap();
    }
    let fresh = s.service_records_of(ids).unwrap();
    assert_eq!(fresh.0.contact_count(), from_file.0.contact_count() + 4);
    assert_eq!(s.service_records_cached(ids).unwrap(), fresh);
    assert_eq!(s.records_read(ids, true, 0).unwrap(), fresh);
    // Four of about 5,000: under 1 %, the file is kept as it was.
    assert_eq!(std::fs::read(contacts_cache(f.path())).unwrap(), file);
}

#[test]
fn a_contacts_cache_that_is_not_this_stores_is_not_used() {
    let (f, s, ds) = store_with_records();
    let ids = &ds.households.id;
    s.service_records_cached(ids).unwrap();
    let file = std::fs::read(contacts_cache(f.path())).unwrap();

    // Cut short, or damaged in its offsets: read from the store, and written again whole.
    let fresh = s.service_records_of(ids).unwrap();
    for bad in [file[..file.len() - 4].to_vec(), {
        let mut b = file.clone();
        b[8 + 32 + 48..8 + 32 + 52].copy_from_slice(&7u32.to_le_bytes()); // start[0] = 7
        b
    }] {
        std::fs::write(contacts_cache(f.path()), &bad).unwrap();
        assert_eq!(s.service_records_cached(ids).unwrap(), fresh);
        assert_eq!(std::fs::read(contacts_cache(f.path())).unwrap(), file);
    }

    // The households in another order: another key, the records of that order.
    let mut hh = Households::default();
    for i in (0..ds.households.len()).rev() {
        hh.push(HouseholdRow { id: ds.households.id.get(i).unwrap().into(), ..Default::default() });
    }
    assert_eq!(s.service_records_cached(&hh.id).unwrap(), s.service_records_of(&hh.id).unwrap());

    // Another store of the same folder, with fewer contacts, given this store's file: its own.
    let g = folder();
    many_records(g.path(), 3_000);
    std::fs::create_dir_all(g.path().join(".gridcover-cache")).unwrap();
    std::fs::write(contacts_cache(g.path()), &file).unwrap();
    let t = Store::open(g.path()).unwrap();
    t.import(g.path()).unwrap();
    let theirs = t.service_records_of(ids).unwrap();
    assert!(theirs.0.contact_count() < fresh.0.contact_count());
    assert_eq!(t.service_records_cached(ids).unwrap(), theirs);
}

#[test]
fn a_contacts_cache_of_the_earlier_format_is_a_miss_and_is_replaced() {
    let (f, s, ds) = store_with_records();
    let ids = &ds.households.id;
    let fresh = s.service_records_of(ids).unwrap();
    s.service_records_cached(ids).unwrap();
    let file = std::fs::read(contacts_cache(f.path())).unwrap();
    // The same contacts as the first format wrote them: its magic, four words (the last visit
    // id, the unknown contacts, the households, the contacts), the offsets and `i32` days.
    let (start, days) = fresh.0.contact_days();
    let mut old = b"GCDAYS01".to_vec();
    old.extend_from_slice(&file[8..8 + 32 + 32]);
    old.extend(start.iter().flat_map(|x| x.to_le_bytes()));
    let mut old_days = days.to_vec();
    // Its last day changed (still the last of its household): it must not show.
    *old_days.last_mut().unwrap() += 1000;
    old.extend(old_days.iter().flat_map(|x| x.to_le_bytes()));
    std::fs::write(contacts_cache(f.path()), &old).unwrap();
    // Read from the store, and written again whole in this format (a file that were read,
    // with nothing added since, would be left as it is).
    assert_eq!(s.service_records_cached(ids).unwrap(), fresh);
    assert_eq!(std::fs::read(contacts_cache(f.path())).unwrap(), file);
    // Even under this format's magic, the earlier layout is a miss.
    old[..8].copy_from_slice(&file[..8]);
    std::fs::write(contacts_cache(f.path()), &old).unwrap();
    assert_eq!(s.service_records_cached(ids).unwrap(), fresh);
    assert_eq!(std::fs::read(contacts_cache(f.path())).unwrap(), file);
}

#[test]
fn a_contacts_cache_that_cannot_be_written_costs_only_a_note() {
    let (f, s, ds) = store_with_records();
    // A folder where the cache's file should be: it cannot be replaced.
    std::fs::create_dir_all(contacts_cache(f.path())).unwrap();
    let ids = &ds.households.id;
    assert_eq!(s.service_records_cached(ids).unwrap(), s.service_records_of(ids).unwrap());
    assert!(contacts_cache(f.path()).is_dir());
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(f.path().join(".gridcover-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("contacts"))
        .collect();
    assert_eq!(left, ["gridcover.sqlite.contacts"]);
}

/// The households' snapshot file of a store in folder `dir`.
fn households_snapshot(dir: &Path) -> PathBuf {
    dir.join(".gridcover-cache").join("gridcover.sqlite.households")
}

/// The households as the server loads them: from the store (or its snapshot), without names
/// and addresses.
fn served_households(s: &Store, dir: &Path) -> Households {
    s.load_dataset_with(dir, crate::ingest::ReadOptions::ANALYSIS).unwrap().households
}

/// The households of the store read from its rows, names and addresses left out.
fn stored_households(s: &Store, dir: &Path) -> Households {
    let mut hh = s.load_dataset(dir).unwrap().households;
    hh.name = crate::model::OptStrColumn::absent(hh.len());
    hh.address = crate::model::OptStrColumn::absent(hh.len());
    hh
}

#[test]
fn the_households_snapshot_gives_the_same_households_and_is_what_a_restart_reads() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let stored = stored_households(&s, f.path());
    // The fixture has what each column of the file must carry: codes given and not, both flags.
    assert!(stored.code.iter().any(|c| c.is_none()) && stored.code.iter().any(|c| c.is_some()));
    assert!(stored.difficulty.iter().any(|&d| d) && stored.martyr_family.iter().any(|&m| m));
    // A load with names and addresses neither reads nor writes the snapshot.
    assert!(!households_snapshot(f.path()).exists());

    // Without a file: read from the store, and the file written; with it, the same.
    assert_eq!(served_households(&s, f.path()), stored);
    let file = std::fs::read(households_snapshot(f.path())).unwrap();
    assert_eq!(served_households(&s, f.path()), stored);
    assert_eq!(std::fs::read(households_snapshot(f.path())).unwrap(), file);

    // The file is what the load takes its households from: a longitude changed in it shows,
    // which only a read of the file can explain.
    let (text, ends) = stored.id.parts();
    let lon_at = 8 + 32 + 32 + 8 * ends.len() + text.len();
    let mut changed = file.clone();
    changed[lon_at..lon_at + 8].copy_from_slice(&101.5f64.to_le_bytes());
    std::fs::write(households_snapshot(f.path()), &changed).unwrap();
    assert_eq!(served_households(&s, f.path()).lon[0], 101.5);
    std::fs::write(households_snapshot(f.path()), &file).unwrap();

    // A status edit does not change the columns it holds: the file is still this store's.
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).unwrap();
    assert_eq!(served_households(&s, f.path()), stored);
    assert_eq!(std::fs::read(households_snapshot(f.path())).unwrap(), file);

    // An import that changes a household: another key, the household as imported, a new file.
    let csv = std::fs::read_to_string(f.path().join("households.csv")).unwrap();
    std::fs::write(f.path().join("households.csv"), csv.replace("H2,100.75,40.255,1,", "H2,100.75,40.255,4,")).unwrap();
    s.import(f.path()).unwrap();
    let after = stored_households(&s, f.path());
    assert_eq!(after.veterans[1], 4);
    assert_eq!(served_households(&s, f.path()), after);
    let again = std::fs::read(households_snapshot(f.path())).unwrap();
    assert_ne!(again, file);
    assert_eq!(served_households(&s, f.path()), after);
}

#[test]
fn a_households_snapshot_that_does_not_fit_is_not_used() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let stored = stored_households(&s, f.path());
    served_households(&s, f.path());
    let file = std::fs::read(households_snapshot(f.path())).unwrap();
    let n = stored.len();
    let (text, _) = stored.id.parts();
    let code_at = 8 + 32 + 32 + 8 * n + text.len() + 8 * n + 8 * n + 4 * n;
    let flags_at = code_at + 4 * n;
    let codes_at = flags_at + n + 8 * 3; // the text of the file's list of three codes
    assert_eq!(&file[codes_at..codes_at + 12], b"990101001001");
    let with = |at: usize, bytes: &[u8]| {
        let mut b = file.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let bad = [
        ("cut short", file[..file.len() - 1].to_vec()),
        ("another format", with(0, b"GCHOUS00")),
        ("another key", with(8, &[0u8; 32])),
        ("an id's end past the text", with(8 + 32 + 32, &(text.len() as u64 + 1).to_le_bytes())),
        ("ids not UTF-8", with(8 + 32 + 32 + 8 * n, &[0xff])),
        ("a code index past the list", with(code_at, &9u32.to_le_bytes())),
        ("a code the divisions do not hold", with(codes_at, b"990101001009")),
        ("a flag byte of no meaning", with(flags_at, &[4])),
    ];
    for (why, bytes) in bad {
        std::fs::write(households_snapshot(f.path()), &bytes).unwrap();
        assert_eq!(served_households(&s, f.path()), stored, "{why}");
        assert_eq!(std::fs::read(households_snapshot(f.path())).unwrap(), file, "{why}: written again whole");
    }

    // Another store of the same folder, given this store's file: its own households.
    let g = folder();
    let csv = std::fs::read_to_string(g.path().join("households.csv")).unwrap();
    std::fs::write(g.path().join("households.csv"), csv.replace("H2,100.75,40.255,1,", "H2,100.75,40.255,3,")).unwrap();
    let t = Store::open(g.path()).unwrap();
    t.import(g.path()).unwrap();
    std::fs::create_dir_all(g.path().join(".gridcover-cache")).unwrap();
    std::fs::write(households_snapshot(g.path()), &file).unwrap();
    let theirs = served_households(&t, g.path());
    assert_eq!(theirs.veterans[1], 3);
    assert_eq!(theirs, stored_households(&t, g.path()));
}

#[cfg(unix)]
#[test]
fn a_households_snapshot_has_the_stores_permissions_and_a_failure_to_write_it_costs_a_note() {
    use std::os::unix::fs::PermissionsExt;
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let stored = stored_households(&s, f.path());
    assert_eq!(served_households(&s, f.path()), stored);
    let mode = std::fs::metadata(households_snapshot(f.path())).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A folder where the file should be: it cannot be replaced, the households are the same
    // and no temporary file is left behind.
    std::fs::remove_file(households_snapshot(f.path())).unwrap();
    std::fs::create_dir_all(households_snapshot(f.path())).unwrap();
    assert_eq!(served_households(&s, f.path()), stored);
    assert!(households_snapshot(f.path()).is_dir());
    let left: Vec<_> = std::fs::read_dir(f.path().join(".gridcover-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("households"))
        .collect();
    assert_eq!(left, ["gridcover.sqlite.households"]);
}

#[test]
fn household_cells_are_kept_for_the_same_positions_and_resolution_only() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let hh = stored_households(&s, f.path());
    let cells: Vec<u64> = (0..hh.len() as u64).map(|i| i * 7 + 1).collect();
    // What `find` gives is told apart from what was kept.
    let found_again = vec![9u64; hh.len()];
    let again = || found_again.clone();
    let any = |_: &[u64]| true;
    // None kept yet: found, and kept.
    assert_eq!(s.household_cells(&hh, 8, any, || cells.clone()), cells);
    assert_eq!(s.household_cells(&hh, 8, any, again), cells);
    // Kept but not usable: found again (and kept in their place).
    assert_eq!(s.household_cells(&hh, 8, |_| false, again), found_again);
    assert_eq!(s.household_cells(&hh, 8, any, again), found_again);
    s.household_cells(&hh, 8, |_| false, || cells.clone());
    // Whatever the state of the store: the same positions give the same cells.
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.patch_household_status(&w, "H1", &json!({"needs": "coal"}), None).unwrap();
    assert_eq!(s.household_cells(&hh, 8, any, again), cells);
    // Another resolution, or one household moved by a hair: not these cells (the moved ones'
    // then take the resolution's file).
    assert_eq!(s.household_cells(&hh, 7, any, again), found_again);
    let mut moved = hh.clone();
    moved.lat[3] += 1e-9;
    assert_eq!(s.household_cells(&moved, 8, any, again), found_again);
    s.household_cells(&hh, 8, any, || cells.clone());
    // A file cut short is not used.
    let path = f.path().join(".gridcover-cache").join("gridcover.sqlite.cells8");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(s.household_cells(&hh, 8, any, again), found_again);
}

#[test]
fn edited_households_are_read_through_their_partial_index() {
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let ids = |s: &Store| -> Vec<(String, i64)> {
        let mut v: Vec<_> = s.edited_households().unwrap().into_iter().map(|r| (r.id, r.version)).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&s), vec![]);
    let w = user(&s, Role::GridWorker, &["G1"]);
    s.patch_household_status(&w, "H2", &json!({"needs": "wheelchair"}), None).unwrap();
    // An edit that empties the status again still counts: its version moved on.
    s.patch_household_status(&w, "H1", &json!({"phone": "138"}), None).unwrap();
    s.patch_household_status(&w, "H1", &json!({"phone": null}), None).unwrap();
    assert_eq!(ids(&s), vec![("H1".to_string(), 3), ("H2".to_string(), 2)]);
    // The query is answered from the index, not by a scan of every household.
    let plan: Vec<String> = s
        .read(|c| {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {}", records::EDITED_HOUSEHOLDS)).unwrap();
            Ok(st.query_map([], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect())
        })
        .unwrap();
    assert_eq!(plan, vec!["SCAN households USING INDEX households_edited".to_string()], "{plan:?}");
    // A household an import removed is no longer one of them.
    let hh = std::fs::read_to_string(f.path().join("households.csv")).unwrap();
    let hh: Vec<&str> = hh.lines().filter(|l| !l.starts_with("H1,")).collect();
    std::fs::write(f.path().join("households.csv"), hh.join("\n")).unwrap();
    s.import(f.path()).unwrap();
    assert_eq!(ids(&s), vec![("H2".to_string(), 2)]);
    drop(s);
    // A store of version 6 gets the index at its next open, over the rows it holds.
    let path = f.path().join(STORE_FILE);
    let c = raw(&path, OpenFlags::SQLITE_OPEN_READ_WRITE);
    c.execute_batch("DROP INDEX households_edited; DELETE FROM schema_migrations WHERE version = 7;").unwrap();
    drop(c);
    assert!(!schema(&path).iter().any(|l| l.contains("households_edited")));
    let s = Store::open(f.path()).unwrap();
    assert!(schema(&path).iter().any(|l| l.contains("index|households_edited|households")));
    assert_eq!(ids(&s), vec![("H2".to_string(), 2)]);
}

/// Asserts `a` and `b` are alike as they print: a kept assignment holds NaN distances, which
/// `==` never finds equal.
#[track_caller]
fn same(a: impl std::fmt::Debug, b: impl std::fmt::Debug) {
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

/// The two parts of `ds`'s assignment, as [`crate::analysis::assign`] makes them.
fn parts(ds: &Dataset) -> (crate::analysis::Located, crate::analysis::Nearest) {
    let idx = crate::analysis::Indexes::build(ds);
    (crate::analysis::assign::locate(ds, &idx), crate::analysis::assign::nearest(ds, &idx))
}

/// The five levels of `n`, as the kept nearest part gives them.
fn levels_of(n: &crate::analysis::Nearest) -> KeptLevels {
    std::array::from_fn(|l| {
        Some(crate::analysis::LevelNearest {
            nearest: n.nearest[l].clone(),
            nearest_m: n.nearest_m[l].clone(),
            covered: n.covered.iter().map(|&c| (c >> l) & 1 == 1).collect(),
        })
    })
}

/// `levels`, with level `l` not kept.
fn without(mut levels: KeptLevels, l: usize) -> KeptLevels {
    levels[l] = None;
    levels
}

#[test]
fn the_assignment_is_kept_for_the_same_inputs_of_each_part_and_level_only() {
    use crate::analysis::Assignment;
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let ds = s.load_dataset(f.path()).unwrap();
    let (located, nearest) = parts(&ds);
    assert!(!located.mismatches.is_empty() || located.unit.iter().any(|&u| u != NO_UNIT));
    let a = Assignment::from_parts(located.clone(), nearest.clone());
    let all = levels_of(&nearest);
    let cache = s.assignment_cache(&ds);
    // None kept yet; then both, as made.
    same(cache.load(&ds), (None::<()>, KeptLevels::default()));
    cache.save(&a, (true, true));
    same(cache.load(&ds), (Some(located.clone()), all.clone()));
    // A new cache of the same inputs (the next start) reads them too, and the levels make the
    // nearest part again.
    let (_, kept) = s.assignment_cache(&ds).load(&ds);
    let idx = crate::analysis::Indexes::build(&ds);
    same(crate::analysis::assign::nearest_with(&ds, &idx, kept), &nearest);
    let dir = f.path().join(".gridcover-cache");
    let (lpath, npath) = (dir.join("gridcover.sqlite.located"), dir.join("gridcover.sqlite.nearest"));

    // The file is what is read: a distance changed in it shows.
    let bytes = std::fs::read(&npath).unwrap();
    let n = ds.households.len();
    let at = 96 + 9 * n * 2 + 4 * n; // the first household's distance at the county level
    assert!(nearest.nearest[2][0] != NONE);
    let mut changed = bytes.clone();
    changed[at..at + 4].copy_from_slice(&1234.5f32.to_le_bytes());
    std::fs::write(&npath, &changed).unwrap();
    assert_eq!(cache.load(&ds).1[2].as_ref().unwrap().nearest_m[0], 1234.5);
    std::fs::write(&npath, &bytes).unwrap();

    // A station moved: its level is found again; the located part and the other levels are
    // kept. So for a station closed, or its radius changed.
    let mut moved = ds.clone();
    moved.stations.lon[0] += 0.01;
    let l0 = ds.stations.level[0].index();
    let c = s.assignment_cache(&moved);
    same(c.load(&moved), (Some(located.clone()), without(all.clone(), l0)));
    let mut closed = ds.clone();
    closed.stations.active[1] = !closed.stations.active[1];
    let l1 = ds.stations.level[1].index();
    same(s.assignment_cache(&closed).load(&closed).1, without(all.clone(), l1));
    let mut wider = ds.clone();
    wider.stations.radius_m[0] = Some(wider.stations.radius_of(0, &wider.standard) + 1.0);
    same(s.assignment_cache(&wider).load(&wider).1, without(all.clone(), l0));
    // A boundary's point moved, a grid's, or a household's code: the nearest part is kept.
    let mut b = ds.clone();
    let mut areas = b.boundaries.areas.clone();
    areas[0].geometry.0[0].exterior_mut(|r| r.0[0].x += 1e-7);
    b.boundaries = std::sync::Arc::new(crate::model::Boundaries { areas });
    same(s.assignment_cache(&b).load(&b), (None::<()>, all.clone()));
    let mut g = ds.clone();
    let mut grids = (*g.grids).clone();
    grids.geometry[0].0[0].exterior_mut(|r| r.0[0].y += 1e-7);
    g.grids = std::sync::Arc::new(grids);
    same(s.assignment_cache(&g).load(&g), (None::<()>, all.clone()));
    let mut coded = ds.clone();
    coded.households.code.set(0, None);
    same(s.assignment_cache(&coded).load(&coded), (None::<()>, all.clone()));
    // A household moved: nothing.
    let mut hh = ds.clone();
    hh.households.lat[2] += 1e-9;
    same(s.assignment_cache(&hh).load(&hh), (None::<()>, KeptLevels::default()));
    // Kept for the moved station: the located file is not written again, the nearest is; the
    // first inputs then find their other levels in it, not the moved one's.
    let idx = crate::analysis::Indexes::build(&moved);
    let moved_nearest = crate::analysis::assign::nearest_with(&moved, &idx, without(all.clone(), l0));
    same(&moved_nearest, &parts(&moved).1);
    let located_before = std::fs::metadata(&lpath).unwrap().modified().unwrap();
    c.save(&Assignment::from_parts(located.clone(), moved_nearest.clone()), (false, true));
    assert_eq!(std::fs::metadata(&lpath).unwrap().modified().unwrap(), located_before);
    same(c.load(&moved), (Some(located.clone()), levels_of(&moved_nearest)));
    same(cache.load(&ds).1, without(all, l0));
}

#[test]
fn a_kept_assignment_that_is_damaged_or_out_of_range_is_not_used() {
    use crate::analysis::Assignment;
    let f = folder();
    let s = Store::open(f.path()).unwrap();
    s.import(f.path()).unwrap();
    let ds = s.load_dataset(f.path()).unwrap();
    let (located, nearest) = parts(&ds);
    let all = levels_of(&nearest);
    let cache = s.assignment_cache(&ds);
    cache.save(&Assignment::from_parts(located.clone(), nearest.clone()), (true, true));
    let dir = f.path().join(".gridcover-cache");
    let (lpath, npath) = (dir.join("gridcover.sqlite.located"), dir.join("gridcover.sqlite.nearest"));
    let (lbytes, nbytes) = (std::fs::read(&lpath).unwrap(), std::fs::read(&npath).unwrap());
    let n = ds.households.len();
    // Each damage of one file is a miss of that part alone.
    let damaged_located = |at: usize, value: &[u8]| {
        let mut b = lbytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        std::fs::write(&lpath, &b).unwrap();
        let got = cache.load(&ds);
        std::fs::write(&lpath, &lbytes).unwrap();
        same(got, (None::<()>, all.clone()));
    };
    damaged_located(0, b"GCLOCA99");
    damaged_located(8, &[!lbytes[8]]); // the key
    damaged_located(40, &(ds.divisions.len() as u32).to_le_bytes()); // a unit out of range
    damaged_located(40 + 4 * n, &[3]); // an unknown source
    damaged_located(40 + 5 * n, &(ds.grids.len() as u32).to_le_bytes()); // a grid out of range
                                                                         // Each damage of a level's section is a miss of that level alone.
    let damaged_nearest = |at: usize, value: &[u8], level: Option<usize>| {
        let mut b = nbytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        std::fs::write(&npath, &b).unwrap();
        let got = cache.load(&ds);
        std::fs::write(&npath, &nbytes).unwrap();
        let want = level.map_or_else(KeptLevels::default, |l| without(all.clone(), l));
        same(got, (Some(located.clone()), want));
    };
    // The first household at the province level (no station there) and the county level.
    assert!(nearest.nearest[0][0] == NONE && nearest.nearest[2][0] != NONE);
    let section = |l: usize| 96 + 9 * n * l;
    let county = section(2);
    let (county_m, county_covered) = (county + 4 * n, county + 8 * n);
    let village = (0..ds.stations.len()).find(|&i| ds.stations.level[i] == crate::model::Level::Village).unwrap();
    damaged_nearest(0, b"GCNEAR99", None);
    damaged_nearest(8 + 16 * 2, &[!nbytes[8 + 16 * 2]], Some(2)); // the county level's key
    damaged_nearest(county, &(ds.stations.len() as u32).to_le_bytes(), Some(2)); // out of range
    damaged_nearest(county, &(village as u32).to_le_bytes(), Some(2)); // a station of another level
    damaged_nearest(county, &NONE.to_le_bytes(), Some(2)); // no station, yet a distance
    damaged_nearest(section(0) + 4 * n, &1.0f32.to_le_bytes(), Some(0)); // a distance, no station
    damaged_nearest(county_m, &(-1.0f32).to_le_bytes(), Some(2)); // a negative distance
    damaged_nearest(county_m, &f32::NAN.to_le_bytes(), Some(2)); // no distance to a station
    damaged_nearest(section(0) + 8 * n, &[1], Some(0)); // covered, with no station of the level
    damaged_nearest(county_covered, &[2], Some(2)); // covered is a yes or a no
                                                    // Cut short, or longer: a miss.
    std::fs::write(&npath, &nbytes[..nbytes.len() - 1]).unwrap();
    same(cache.load(&ds).1, KeptLevels::default());
    let mut longer = lbytes.clone();
    longer.push(0);
    std::fs::write(&lpath, &longer).unwrap();
    assert_eq!(cache.load(&ds).0, None);
}
