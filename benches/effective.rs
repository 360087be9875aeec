//! Effective coverage of the bundled data with its generated service history (about 2.6 million
//! contacts, 3.3 per household, and 66,000 needs): what `GET /api/report/effective` computes for
//! a day it has not seen — the figures of every unit at the five levels, every grid and worker
//! (`analysis::effective`), every household's facts and the disclosure decisions of all
//! families (`privacy::Disclosure::compute_with_service`).
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

use gridcover::analysis::effective::{effective, facts};
use gridcover::analysis::{analyze, Assignment};
use gridcover::generate::contacts::history;
use gridcover::model::service::day_from_ymd;
use gridcover::model::{Dataset, Level, ServiceRecords, NO_UNIT};
use gridcover::privacy::Disclosure;

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
    let ours = || {
        let e = effective(&ds, asg, &records, day, &cfg);
        let f = facts(&ds, &records, day, &cfg);
        let d = Disclosure::compute_with_service(&ds, asg, ds.privacy, &[], Some(&f));
        (e, d)
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
}

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10))
}

criterion_group! { name = b; config = config(); targets = benches }
criterion_main!(b);
