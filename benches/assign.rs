//! Point-in-polygon and nearest-station throughput on 1,000,000 points of the bundled data.
//!
//! The points are the 800,000 household positions plus jittered copies (fixed seed), see
//! `common::points`. "par" runs over all points with rayon as `analysis::assign` does (same
//! `with_min_len`); "seq" is one thread.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;

use gridcover::index::sphere::{to_unit, Unit3};
use gridcover::index::{AdminIndex, PolygonIndex, StationIndex};
use gridcover::model::{Level, NONE};

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

    let mut g = c.benchmark_group("nearest_station");
    g.throughput(Throughput::Elements(n as u64));
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
