//! Point-in-polygon and nearest-station throughput on 1,000,000 points of the bundled data.
//!
//! The points are the 800,000 household positions plus jittered copies (fixed seed), see
//! `common::points`. "par" runs over all points with rayon as `analysis::assign` does (same
//! `with_min_len`); "seq" is one thread.
//!
//! `nearest_station/village_rstar` is the A/B of the hand-written station kd-tree
//! (`index::stations`) against rstar, the crate a user would otherwise pick: an `RTree` bulk
//! loaded over the same unit vectors, asked the same nearest-neighbour queries (checked to give
//! the same distances first). The run also prints the ratio of the two, timed side by side.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;

use gridcover::index::sphere::chord_2;
use gridcover::index::sphere::{to_unit, Unit3};
use gridcover::index::{AdminIndex, PolygonIndex, StationIndex};
use gridcover::model::{Level, NONE};
use rstar::primitives::GeomWithData;
use rstar::RTree;

const MIN_LEN: usize = 4096;

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5))
}

fn benches(c: &mut Criterion) {
    let ds = common::dataset();
    let (lon, lat) = common::points(&ds, common::N_POINTS);
    let n = lon.len();
    let admin = AdminIndex::new(&ds.divisions, &ds.boundaries);
    let villages =
        PolygonIndex::new(ds.boundaries.at_level(&ds.divisions, Level::Village).map(|a| (a.unit, &a.geometry)));
    let stations = StationIndex::new(&ds.stations, &ds.standard);
    let units: Vec<Unit3> = lon.iter().zip(&lat).map(|(&x, &y)| to_unit(x, y)).collect();
    eprintln!(
        "{n} points, {} village polygons, {} stations ({:?} per level)",
        villages.len(),
        ds.stations.len(),
        Level::ALL.map(|l| stations.count(l))
    );

    let mut g = c.benchmark_group("build");
    g.bench_function("admin_index", |b| b.iter(|| AdminIndex::new(&ds.divisions, &ds.boundaries)));
    g.bench_function("station_index", |b| b.iter(|| StationIndex::new(&ds.stations, &ds.standard)));
    g.finish();

    let mut g = c.benchmark_group("point_in_polygon");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("village_layer", "par"), |b| {
        b.iter(|| -> Vec<u32> {
            (0..n)
                .into_par_iter()
                .with_min_len(MIN_LEN)
                .map(|i| villages.locate(lon[i], lat[i]).unwrap_or(NONE))
                .collect()
        })
    });
    g.bench_function(BenchmarkId::new("village_layer", "seq"), |b| {
        b.iter(|| -> Vec<u32> { (0..n).map(|i| villages.locate(lon[i], lat[i]).unwrap_or(NONE)).collect() })
    });
    g.bench_function(BenchmarkId::new("admin_locate", "par"), |b| {
        b.iter(|| -> Vec<u32> {
            (0..n).into_par_iter().with_min_len(MIN_LEN).map(|i| admin.locate(lon[i], lat[i]).unwrap_or(NONE)).collect()
        })
    });
    g.finish();

    // The A/B: rstar over the active village stations' unit vectors.
    let st = &ds.stations;
    let village_pts: Vec<GeomWithData<Unit3, u32>> = (0..st.len())
        .filter(|&i| st.active[i] && st.level[i] == Level::Village)
        .map(|i| GeomWithData::new(to_unit(st.lon[i], st.lat[i]), i as u32))
        .collect();
    let rtree = RTree::bulk_load(village_pts);
    let rstar_nearest = |p: Unit3| rtree.nearest_neighbor(&p).map_or(NONE, |e| e.data);
    for &p in units.iter().step_by(97) {
        let (ours, theirs) = (stations.nearest(Level::Village, p).map(|r| r.0), rstar_nearest(p));
        let d = |i: u32| chord_2(p, to_unit(st.lon[i as usize], st.lat[i as usize]));
        assert_eq!(ours.map(d), Some(d(theirs)), "kd-tree and rstar disagree on the nearest distance");
    }
    let best_of = |f: &dyn Fn() -> Vec<u32>| {
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                black_box(f());
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let kd = best_of(&|| {
        units
            .par_iter()
            .with_min_len(MIN_LEN)
            .map(|&p| stations.nearest(Level::Village, p).map_or(NONE, |r| r.0))
            .collect()
    });
    let rs = best_of(&|| units.par_iter().with_min_len(MIN_LEN).map(|&p| rstar_nearest(p)).collect());
    eprintln!(
        "nearest village station, {n} points (par, best of 3): kd-tree {:.1} ms, rstar {:.1} ms: kd-tree {:.2}x rstar's speed",
        kd * 1e3,
        rs * 1e3,
        rs / kd
    );

    let mut g = c.benchmark_group("nearest_station");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("village_rstar", "par"), |b| {
        b.iter(|| -> Vec<u32> { units.par_iter().with_min_len(MIN_LEN).map(|&p| rstar_nearest(p)).collect() })
    });
    for level in [Level::Village, Level::County] {
        g.bench_function(BenchmarkId::new(level.as_str(), "par"), |b| {
            b.iter(|| -> Vec<u32> {
                units
                    .par_iter()
                    .with_min_len(MIN_LEN)
                    .map(|&p| stations.nearest(level, p).map_or(NONE, |r| r.0))
                    .collect()
            })
        });
    }
    g.bench_function(BenchmarkId::new("all_levels", "par"), |b| {
        b.iter(|| -> Vec<[u32; 5]> {
            (0..n)
                .into_par_iter()
                .with_min_len(MIN_LEN)
                .map(|i| {
                    let p = to_unit(lon[i], lat[i]);
                    Level::ALL.map(|l| stations.nearest(l, p).map_or(NONE, |r| r.0))
                })
                .collect()
        })
    });
    g.bench_function(BenchmarkId::new("all_levels", "seq"), |b| {
        b.iter(|| -> Vec<[u32; 5]> {
            units.iter().map(|&p| Level::ALL.map(|l| stations.nearest(l, black_box(p)).map_or(NONE, |r| r.0))).collect()
        })
    });
    g.finish();
}

criterion_group! { name = assign; config = config(); targets = benches }
criterion_main!(assign);
