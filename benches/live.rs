//! The live engine on the bundled data: opening, moving and closing one station, against the
//! full re-analysis a user would otherwise run (`analyze`), in the same run.
//!
//! Each edit is timed alone and taken back untimed (`iter_custom`), cycling through fixed
//! stations and places so that every sample sees the same work.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use gridcover::analysis::{analyze, Live};
use gridcover::model::{Level, StationRow};

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5))
}

fn benches(c: &mut Criterion) {
    let ds = common::dataset();
    let mut live = Live::new(ds.clone());
    let mut g = c.benchmark_group("live");
    for level in [Level::Village, Level::Township, Level::County] {
        let st = &live.dataset().stations;
        // Every 7th station of the level, open.
        let ids: Vec<String> = (0..st.len())
            .filter(|&i| st.level[i] == level && st.active[i])
            .step_by(7)
            .take(200)
            .map(|i| st.id[i].clone())
            .collect();
        // New sites: 1 km east of those stations, serving the same unit.
        let sites: Vec<StationRow> = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let s = live.station_index_by_id(id).unwrap();
                let mut r = live.dataset().stations.row(s);
                r.id = format!("BENCH{k}");
                r.lon += 0.0118;
                r
            })
            .collect();
        let mut k = 0usize;
        g.bench_function(format!("add_{level}"), |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let row = sites[k % sites.len()].clone();
                    k += 1;
                    let id = row.id.clone();
                    let s = Instant::now();
                    let ch = live.add_station(row).unwrap();
                    t += s.elapsed();
                    std::hint::black_box(ch);
                    live.undo_add(&id).unwrap();
                }
                t
            })
        });
        g.bench_function(format!("move_{level}"), |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let id = &ids[k % ids.len()];
                    k += 1;
                    let s = live.station_index_by_id(id).unwrap() as usize;
                    let (lon, lat) = (live.dataset().stations.lon[s], live.dataset().stations.lat[s]);
                    let start = Instant::now();
                    let ch = live.move_station(id, lon + 0.0118, lat).unwrap();
                    t += start.elapsed();
                    std::hint::black_box(ch);
                    live.move_station(id, lon, lat).unwrap();
                }
                t
            })
        });
        g.bench_function(format!("remove_{level}"), |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let id = &ids[k % ids.len()];
                    k += 1;
                    let start = Instant::now();
                    let ch = live.remove_station(id).unwrap();
                    t += start.elapsed();
                    std::hint::black_box(ch);
                    live.reopen_station(id).unwrap();
                }
                t
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("live_baseline");
    g.sample_size(10);
    g.bench_function("analyze_from_scratch", |b| b.iter(|| analyze(&ds)));
    g.finish();
}

criterion_group! { name = live_benches; config = config(); targets = benches }
criterion_main!(live_benches);
