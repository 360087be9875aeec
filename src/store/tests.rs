use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small")
}

/// A copy of the small fixture in a fresh temporary folder.
fn folder() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
    }
    d
}

/// Every row of every table, as text, for comparing whole stores.
pub(crate) fn dump(path: &Path) -> Vec<String> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
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
    s.add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: "ok".into() }).unwrap();
    let log = s.audit_log().unwrap();
    assert_eq!(log.last().unwrap().2, "household.read");
    for sql in [
        "UPDATE audit SET action = 'x'",
        "DELETE FROM audit",
        "UPDATE history SET actor = 'x'",
        "DELETE FROM history",
        "UPDATE visits SET note = 'x'",
        "DELETE FROM visits",
    ] {
        let e = s.write(|c| c.execute(sql, []).map_err(StoreError::db("test"))).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
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
        let e = s.add_visit(&w, "H1", &NewVisit { date: bad.into(), note: String::new() }).unwrap_err();
        assert!(e.to_string().contains("calendar date"), "{bad}: {e}");
    }
    assert!(s
        .add_visit(&w, "H1", &NewVisit { date: "2024-02-29".into(), note: "x".repeat(MAX_NOTE_CHARS + 1) })
        .is_err());
    let v1 = s.add_visit(&w, "H1", &NewVisit { date: "2024-02-29".into(), note: "送煤".into() }).unwrap();
    let v2 = s.add_visit(&w, "H1", &NewVisit { date: "2026-11-29".into(), note: String::new() }).unwrap();
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
