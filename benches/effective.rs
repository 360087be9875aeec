//! Effective coverage of the bundled data with its generated service history (about 2.6 million
//! contacts, 3.3 per household, and 66,000 needs): what `GET /api/report/effective` computes for
//! a day it has not seen — the figures of every unit at the five levels, every grid and worker
//! (`analysis::effective`), every household's facts and the disclosure decisions of all
//! families (`privacy::Disclosure::compute_with_service`).
//!
//! Then the same through the API (`GET /api/report/effective` on the real router, tower
//! `oneshot`, over a store holding the bundled data and its generated history: 800,000
//! households, ≈ 2.6 million contacts): (a) a day the server has not been asked yet (month ends
//! cycled through, more than it keeps), (b) the first answer after a visit was written through
//! the API (the write untimed).
//!
//! Against the tool an analyst holding the records would otherwise pick: SQL over the same
//! contacts in SQLite (in memory, indexed on household and day), asked only the village level's
//! households, contacted and never-contacted counts. Both answers are checked equal first; the
//! run prints the ratio, timed side by side.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rusqlite::Connection;

use gridcover::analysis::effective::{effective_of, facts};
use gridcover::analysis::{analyze, Assignment};
use gridcover::generate::contacts::history;
use gridcover::model::service::day_from_ymd;
use gridcover::model::service::{format_day, today};
use gridcover::model::{Dataset, Level, ServiceRecords, NO_UNIT};
use gridcover::privacy::Disclosure;
use gridcover::serve::edits::state_with_store;
use gridcover::serve::{router, AppState, Limits, Role};
use gridcover::store::Store;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn sqlite(ds: &Dataset, asg: &Assignment, contacts: &[(u32, i32)]) -> Connection {
    let db = Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE households (id INTEGER PRIMARY KEY, village INTEGER);
         CREATE TABLE contacts (household INTEGER, day INTEGER);",
    )
    .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    {
        let mut h = tx.prepare("INSERT INTO households VALUES (?1, ?2)").unwrap();
        for (i, &u) in asg.unit.iter().enumerate() {
            let village = (u != NO_UNIT).then(|| ds.divisions.ancestor(u, Level::Village)).flatten();
            h.execute((i as i64, village.map(i64::from))).unwrap();
        }
        let mut c = tx.prepare("INSERT INTO contacts VALUES (?1, ?2)").unwrap();
        for &(h, d) in contacts {
            c.execute((i64::from(h), i64::from(d))).unwrap();
        }
    }
    tx.commit().unwrap();
    db.execute_batch(
        "CREATE INDEX contacts_hd ON contacts(household, day); CREATE INDEX households_v ON households(village);",
    )
    .unwrap();
    db
}

/// Per village: (village, households, contacted in the 90 days to `day`, never contacted).
fn by_sql(db: &Connection, day: i32) -> Vec<(i64, i64, i64, i64)> {
    let mut q = db
        .prepare_cached(
            "SELECT h.village, COUNT(*), SUM(c.last > ?1 - 90), SUM(c.last IS NULL)
             FROM households h LEFT JOIN (SELECT household, MAX(day) AS last FROM contacts WHERE day <= ?1
                                          GROUP BY household) c ON c.household = h.id
             WHERE h.village IS NOT NULL GROUP BY h.village ORDER BY h.village",
        )
        .unwrap();
    q.query_map([day], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.unwrap_or(0), r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn benches(c: &mut Criterion) {
    let ds = common::dataset();
    let an = analyze(&ds);
    let asg = &an.assignment;
    let day = day_from_ymd(2026, 11, 30);
    let (contacts, needs) = history(&ds.households, &vec![false; ds.households.len()], common::BUNDLED_SEED, day);
    let pairs: Vec<(u32, i32)> = contacts.iter().map(|r| (r.household, r.day)).collect();
    let spans = needs
        .iter()
        .map(|n| {
            let mut changes = vec![(n.raised, gridcover::model::NeedStatus::Open)];
            if n.status != gridcover::model::NeedStatus::Open {
                changes.push((n.since, n.status));
            }
            gridcover::model::NeedSpan { household: n.household, category: n.category, changes }
        })
        .collect();
    let (records, _) = ServiceRecords::new(ds.households.len(), pairs.iter().copied(), spans);
    eprintln!(
        "{} households, {} contacts, {} needs",
        ds.households.len(),
        records.contact_count(),
        records.needs.len()
    );
    let cfg = ds.service;
    // As the server computes a day: the households' facts once, then the figures and the
    // decisions side by side.
    let ours = || {
        let f = facts(&ds, &records, day, &cfg);
        rayon::join(
            || effective_of(&ds, asg, &records, &f, day, &cfg),
            || Disclosure::compute_with_service(&ds, asg, ds.privacy, &[], Some(&f)),
        )
    };
    let db = sqlite(&ds, asg, &pairs);
    // The same village figures both ways.
    let (e, _) = ours();
    let sql = by_sql(&db, day);
    assert!(!sql.is_empty());
    for &(v, n, contacted, never) in &sql {
        let f = &e.units[v as usize];
        assert_eq!(
            (f.households as i64, f.contacted_households as i64, f.never_contacted_households as i64),
            (n, contacted, never),
            "village {}",
            ds.divisions.get(v as u32).code
        );
    }
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let a = time(&|| {
        black_box(ours());
    });
    let b = time(&|| {
        black_box(by_sql(&db, day));
    });
    eprintln!(
        "a day's effective coverage: gridcover {:.0} ms (all levels, grids, workers, disclosure), SQLite {:.0} ms (villages' three counts): SQLite / gridcover = {:.1}",
        a * 1e3,
        b * 1e3,
        b / a
    );
    let mut g = c.benchmark_group("effective");
    g.bench_function("gridcover_day_view", |bch| bch.iter(|| black_box(ours())));
    g.bench_function("sqlite_villages", |bch| bch.iter(|| black_box(by_sql(&db, day))));
    g.finish();
    drop(ds);
    drop(an);
    through_the_api(c, &db, day);
}

/// A server over a store of the bundled data folder (copied, with its generated
/// `contacts.csv` and `needs.csv`), a leader's and a grid worker's tokens, and a household of
/// the worker's grid.
fn server() -> (tempfile::TempDir, AppState, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(common::data_dir()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let t = Instant::now();
    let store = Store::open(dir.path()).unwrap();
    store.import(dir.path()).unwrap();
    eprintln!("store with the history imported in {:.1} s", t.elapsed().as_secs_f64());
    let leader = store.add_user("领导", Role::Leader, &[]).unwrap();
    drop(store);
    let (store, ds) = Store::open_dataset(dir.path()).unwrap();
    let t = Instant::now();
    let state = state_with_store(store.clone(), ds, Limits::default(), None).unwrap();
    eprintln!("server state (world, groups, planner, service records) in {:.1} s", t.elapsed().as_secs_f64());
    let (grid, household) = {
        let w = state.world();
        let h = w.an().assignment.grid.iter().position(|&g| g != gridcover::model::NONE).unwrap();
        let g = w.an().assignment.grid[h] as usize;
        (w.ds().grids.id[g].clone(), w.ds().households.id[h].to_string())
    };
    let worker = store.add_user("网格员", Role::GridWorker, &[grid]).unwrap();
    (dir, state, leader, worker, household)
}

async fn call(state: &AppState, method: &str, uri: &str, token: &str, body: Option<String>) -> (StatusCode, Vec<u8>) {
    let b = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    let req = match body {
        Some(t) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(t)).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let r = router(state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    (status, r.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn through_the_api(c: &mut Criterion, db: &Connection, day: i32) {
    let (_dir, state, leader, worker, household) = server();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let get = |uri: &str| {
        let (status, body) = rt.block_on(call(&state, "GET", uri, &leader, None));
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        body
    };
    // Month ends of two years: more days than the server keeps, so every one is new.
    let months: Vec<String> = (0..24).map(|i| format!("{}-{:02}-15", 2024 + i / 12, i % 12 + 1)).collect();
    let mut k = 0usize;
    let mut new_day = || {
        let uri = format!("/api/report/effective?level=county&as_of={}", months[k % months.len()]);
        k += 1;
        let t = Instant::now();
        black_box(get(&uri));
        t.elapsed()
    };
    let visit = format!(r#"{{"date": "{}", "kind": "phone"}}"#, format_day(today()));
    let uri_visit = format!("/api/households/{household}/visits");
    let mut after_write = || {
        let (status, body) = rt.block_on(call(&state, "POST", &uri_visit, &worker, Some(visit.clone())));
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
        let t = Instant::now();
        black_box(get("/api/report/effective?level=county"));
        t.elapsed()
    };
    let med = |f: &mut dyn FnMut() -> Duration| {
        let mut v: Vec<f64> = (0..9).map(|_| f().as_secs_f64()).collect();
        v.sort_by(f64::total_cmp);
        v[4]
    };
    let (a, b) = (med(&mut new_day), med(&mut after_write));
    let t = Instant::now();
    black_box(by_sql(db, day));
    let q = t.elapsed().as_secs_f64();
    eprintln!(
        "through the API (median of 9): a new day {:.0} ms, the first answer after a visit {:.0} ms; SQLite's villages' three counts {:.0} ms: SQLite / API = {:.1} and {:.1}",
        a * 1e3,
        b * 1e3,
        q * 1e3,
        q / a,
        q / b
    );
    let mut g = c.benchmark_group("effective_api");
    g.bench_function("new_day", |bch| bch.iter_custom(|n| (0..n).map(|_| new_day()).sum()));
    g.bench_function("after_visit", |bch| bch.iter_custom(|n| (0..n).map(|_| after_write()).sum()));
    g.bench_function("sqlite_villages", |bch| bch.iter(|| black_box(by_sql(db, day))));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10))
}

criterion_group! { name = b; config = config(); targets = benches }
criterion_main!(b);
