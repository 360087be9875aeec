//! Durability of the server's writes, with the real binary and real HTTP:
//!
//! - crash: a burst of concurrent writes (visits, status patches, station edits), the server
//!   killed with SIGKILL in the middle, restarted on the same folder: every acknowledged write
//!   is there, and nothing is half-written (each record's version matches its history, each
//!   visit has its history entry, the database passes `PRAGMA integrity_check`);
//! - load: 64 concurrent clients mixing reads and writes for a bounded time: no error, no lost
//!   update (counters kept by read-modify-write under If-Match add up). Throughput and latency
//!   are printed for information only; `benches/store_load.sh` reports the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use gridcover::store::Store;

/// The binary under test (`GRIDCOVER_BIN` overrides it, for build folders shared between
/// checkouts).
fn bin() -> String {
    std::env::var("GRIDCOVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gridcover").to_string())
}

/// A copy of the small fixture, imported, with a grid worker (grid G1: households H1, H6) and a
/// planner; returns the folder and the two tokens.
fn prepared() -> (tempfile::TempDir, String, String) {
    let d = crate::common::copy_fixture("small");
    let out = Command::new(bin()).args(["import", "--data"]).arg(d.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = |args: &[&str]| {
        let out = Command::new(bin()).args(["user", "add"]).args(args).arg("--data").arg(d.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string()
    };
    let worker = token(&["--name", "王五", "--role", "grid_worker", "--grid", "G1"]);
    let planner = token(&["--name", "规划", "--role", "planner"]);
    (d, worker, planner)
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let l = lines.next().expect("the server printed its address").unwrap();
            if let Some(a) = l.strip_prefix("listening on ") {
                break a.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Sends a request; the status and JSON body, or None when the connection failed.
fn send(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> Option<(u16, Value, Option<String>)> {
    let mut req =
        ureq::http::Request::builder().method(method).uri(url).header("Authorization", format!("Bearer {token}"));
    if let Some(m) = if_match {
        req = req.header("If-Match", m);
    }
    let res = match body {
        Some(b) => a.run(req.header("Content-Type", "application/json").body(b.to_string()).unwrap()),
        None => a.run(req.body(()).unwrap()),
    };
    let mut res = res.ok()?;
    let status = res.status().as_u16();
    let etag = res.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = res.body_mut().read_to_string().ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null), etag))
}

/// Checks that the store is consistent: integrity, versions against history, visits against
/// history.
fn check_consistent(dir: &Path) {
    let c = rusqlite::Connection::open(dir.join("gridcover.sqlite")).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let bad: i64 = c
        .query_row(
            "SELECT count(*) FROM households h WHERE h.version != 1 +
               (SELECT count(*) FROM history WHERE kind = 'household' AND record_id = h.id AND action IN ('status', 'reimport'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "a household's version disagrees with its history");
    let bad: i64 = c
        .query_row(
            "SELECT count(*) FROM stations s WHERE s.version != 1 +
               (SELECT count(*) FROM history WHERE kind = 'station' AND record_id = s.id AND action != 'add')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "a station's version disagrees with its history");
    let (v, h): (i64, i64) = c
        .query_row(
            // Visits imported from files have their import's entry instead (store version 6).
            "SELECT (SELECT count(*) FROM visits WHERE import_id IS NULL), (SELECT count(*) FROM history WHERE action = 'visit')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(v, h, "visits and their history entries differ");
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let (d, worker, planner) = prepared();
    let server = Server::start(d.path());
    let base = server.base.clone();
    let stop = AtomicBool::new(false);
    // Acknowledged writes: visit notes, status keys with their values, station ids.
    let visits = Mutex::new(BTreeSet::new());
    let statuses: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());
    let stations = Mutex::new(BTreeSet::new());
    let acked = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..12 {
            let (base, worker, planner) = (&base, &worker, &planner);
            let (stop, visits, statuses, stations, acked) = (&stop, &visits, &statuses, &stations, &acked);
            s.spawn(move || {
                let a = agent();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let hh = if t % 2 == 0 { "H1" } else { "H6" };
                    let r = match t % 3 {
                        0 => {
                            let note = format!("t{t}-{i}");
                            let body = json!({"date": "2026-11-29", "note": note});
                            let r = send(
                                &a,
                                "POST",
                                &format!("{base}/api/households/{hh}/visits"),
                                worker,
                                Some(&body),
                                None,
                            );
                            if let Some((201, ..)) = r {
                                visits.lock().unwrap().insert((hh.to_string(), note));
                            }
                            r
                        }
                        1 => {
                            let key = format!("t{t}");
                            let body = json!({ key.clone(): i });
                            let r =
                                send(&a, "PATCH", &format!("{base}/api/households/{hh}"), worker, Some(&body), None);
                            if let Some((200, ..)) = r {
                                statuses.lock().unwrap().insert(format!("{hh}/{key}"), i);
                            }
                            r
                        }
                        _ => {
                            let id = format!("crash-{t}-{i}");
                            let body = json!({"id": id, "name": "临时站", "level": "village", "code": "990101002001",
                                              "lon": 100.8, "lat": 40.2});
                            let r = send(&a, "POST", &format!("{base}/api/stations"), planner, Some(&body), None);
                            if let Some((201, ..)) = r {
                                stations.lock().unwrap().insert(id);
                            }
                            r
                        }
                    };
                    match r {
                        Some((200 | 201, ..)) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Some((code, body, _)) => panic!("unexpected {code}: {body}"),
                        None => break, // the server is gone
                    }
                }
            });
        }
        // Kill in the middle of the burst, once a fair number of writes went through.
        let t0 = Instant::now();
        while acked.load(Ordering::Relaxed) < 150 && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
    });
    let n_acked = acked.load(Ordering::Relaxed);
    assert!(n_acked >= 150, "only {n_acked} writes were acknowledged before the kill");
    check_consistent(d.path());

    // Restart and read everything back through the server.
    let server = Server::start(d.path());
    let a = agent();
    let base = &server.base;
    for hh in ["H1", "H6"] {
        let (code, list, _) =
            send(&a, "GET", &format!("{base}/api/households/{hh}/visits"), &worker, None, None).unwrap();
        assert_eq!(code, 200, "{list}");
        let got: BTreeSet<String> =
            list["visits"].as_array().unwrap().iter().map(|v| v["note"].as_str().unwrap().to_string()).collect();
        for (h, note) in visits.lock().unwrap().iter() {
            if h == hh {
                assert!(got.contains(note), "acknowledged visit {note} of {hh} is lost");
            }
        }
        let (code, rec, etag) = send(&a, "GET", &format!("{base}/api/households/{hh}"), &worker, None, None).unwrap();
        assert_eq!(code, 200, "{rec}");
        assert!(etag.is_some());
        let status = &rec["properties"]["status"];
        for (k, v) in statuses.lock().unwrap().iter() {
            let (h, key) = k.split_once('/').unwrap();
            if h == hh {
                // Writes of one key come from one thread, in order: the store holds the last
                // acknowledged value, or one sent after it whose answer was cut off by the kill.
                let stored = status[key].as_i64().unwrap_or(-1);
                assert!(stored >= *v, "{hh}: {key} is {stored}, but {v} was acknowledged");
            }
        }
    }
    let store = Store::open(d.path()).unwrap();
    for id in stations.lock().unwrap().iter() {
        let (code, body, _) =
            send(&a, "GET", &format!("{base}/api/collections/stations/items/{id}"), &planner, None, None).unwrap();
        assert_eq!(code, 200, "acknowledged station {id} is missing after the restart: {body}");
        assert!(store.station(id).unwrap().is_some());
    }
    drop(server);
    check_consistent(d.path());
}

/// Percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// 64 clients for a bounded time: 1 round in 4 a counter increment (GET the household, PATCH
/// it under If-Match, both again on 409), the others reads (items pages, visits, coverage).
/// Returns the requests, the seconds taken and the sorted latencies of single requests.
pub fn load(base: &str, worker: &str, leader: &str, clients: usize, dur: Duration) -> (usize, f64, Vec<Duration>) {
    let lat = Mutex::new(Vec::new());
    let incs = AtomicUsize::new(0);
    let conflicts = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (lat, incs, conflicts) = (&lat, &incs, &conflicts);
            s.spawn(move || {
                let a = agent();
                let mut mine = Vec::new();
                let mut i = 0usize;
                while t0.elapsed() < dur {
                    i += 1;
                    let hh = if c % 2 == 0 { "H1" } else { "H6" };
                    if i % 4 == 0 {
                        loop {
                            let t = Instant::now();
                            let (code, rec, etag) =
                                send(&a, "GET", &format!("{base}/api/households/{hh}"), worker, None, None).unwrap();
                            mine.push(t.elapsed());
                            assert_eq!(code, 200, "{rec}");
                            let n = rec["properties"]["status"]["count"].as_i64().unwrap_or(0);
                            let t = Instant::now();
                            let (code, body, _) = send(
                                &a,
                                "PATCH",
                                &format!("{base}/api/households/{hh}"),
                                worker,
                                Some(&json!({"count": n + 1})),
                                etag.as_deref(),
                            )
                            .unwrap();
                            mine.push(t.elapsed());
                            match code {
                                200 => break,
                                409 => {
                                    conflicts.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                _ => panic!("PATCH answered {code}: {body}"),
                            }
                        }
                        incs.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let url = match i % 3 {
                            0 => format!("{base}/api/collections/households/items?limit=10"),
                            1 => format!("{base}/api/households/{hh}/visits"),
                            _ => format!("{base}/api/collections/admin-county/items"),
                        };
                        let tok = if i % 3 == 2 { leader } else { worker };
                        let t = Instant::now();
                        let (code, body, _) = send(&a, "GET", &url, tok, None, None).unwrap();
                        mine.push(t.elapsed());
                        assert_eq!(code, 200, "{url}: {body}");
                    }
                }
                lat.lock().unwrap().extend(mine);
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let mut lat = lat.into_inner().unwrap();
    lat.sort();
    let total = incs.load(Ordering::Relaxed);
    // No lost update: the two counters add up to the increments acknowledged.
    let a = agent();
    let sum: i64 = ["H1", "H6"]
        .iter()
        .map(|hh| {
            let (_, rec, _) = send(&a, "GET", &format!("{base}/api/households/{hh}"), worker, None, None).unwrap();
            rec["properties"]["status"]["count"].as_i64().unwrap_or(0)
        })
        .sum();
    assert_eq!(sum, total as i64, "lost updates: counters sum to {sum}, {total} increments acknowledged");
    eprintln!(
        "store load: {total} increments acknowledged, {} answered 409 and retried",
        conflicts.load(Ordering::Relaxed)
    );
    (lat.len(), secs, lat)
}

#[test]
fn sixty_four_clients_lose_no_update() {
    let (d, worker, _planner) = prepared();
    let leader = {
        let out = Command::new(bin())
            .args(["user", "add", "--name", "领导", "--role", "leader", "--data"])
            .arg(d.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string()
    };
    let server = Server::start(d.path());
    let secs = std::env::var("GRIDCOVER_LOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let (n, took, lat) = load(&server.base, &worker, &leader, 64, Duration::from_secs_f64(secs));
    assert!(n > 0);
    eprintln!(
        "store load: 64 clients, {n} requests in {took:.1} s = {:.0} req/s; p50 {:?}, p99 {:?}",
        n as f64 / took,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    drop(server);
    check_consistent(d.path());
}

/// A first import writes the store with a rollback journal (once, not through the WAL):
/// `gridcover import` killed with SIGKILL while it runs leaves the store as it was — its users
/// kept, nothing imported — and the next import goes through.
#[test]
fn a_first_import_killed_part_way_leaves_the_store_as_it_was() {
    let d = crate::common::copy_fixture("small");
    // Contacts enough for the import to be caught in its transaction.
    let mut c = String::from("household_id,date,kind,note\n");
    for k in 0..300_000 {
        c.push_str(&format!("H1,2026-{:02}-{:02},home,note {k}\n", 1 + k % 12, 1 + k % 28));
    }
    std::fs::write(d.path().join("contacts.csv"), c).unwrap();
    // A user first: the store exists, with a row the rollback must keep.
    let out = Command::new(bin())
        .args(["user", "add", "--name", "规划", "--role", "planner", "--data"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users = Store::open(d.path()).unwrap().users().unwrap().len();

    let journal = d.path().join("gridcover.sqlite-journal");
    let mut child = Command::new(bin())
        .args(["import", "--data"])
        .arg(d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !journal.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the import ended before its journal was seen");
        assert!(t0.elapsed() < Duration::from_secs(120), "no journal within two minutes");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    // Opened, the store is the one before: a hot journal (pages written) is rolled back and
    // removed; one killed before its header was written is ignored, and goes with the next
    // import.
    let s = Store::open(d.path()).unwrap();
    assert!(!s.is_imported().unwrap());
    assert_eq!(s.users().unwrap().len(), users);
    let c = rusqlite::Connection::open(d.path().join("gridcover.sqlite")).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    for table in ["stations", "households", "grids", "visits", "history"] {
        let n: i64 = c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{table} after the killed import");
    }
    drop((s, c));

    let out = Command::new(bin()).args(["import", "--data"]).arg(d.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Store::open(d.path()).unwrap();
    assert!(s.is_imported().unwrap());
    assert_eq!(s.users().unwrap().len(), users);
    let c = rusqlite::Connection::open(d.path().join("gridcover.sqlite")).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM visits", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 300_000);
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert!(!journal.exists(), "a journal is left after the import");
}
