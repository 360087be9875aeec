//! The whole analysis of the bundled data set, and reading its data folder.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use gridcover::analysis::{analyze, assign, Indexes};
use gridcover::ingest::read_data_folder;

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8))
}

fn benches(c: &mut Criterion) {
    let dir = common::data_dir();
    let ds = read_data_folder(&dir).expect("read the bundled data folder");
    let households = ds.households.len() as u64;

    let mut g = c.benchmark_group("bundled");
    g.throughput(Throughput::Elements(households));
    g.bench_function("read_data_folder", |b| b.iter(|| read_data_folder(&dir).expect("read")));
    g.bench_function("analyze", |b| b.iter(|| analyze(&ds)));
    let idx = Indexes::build(&ds);
    g.bench_function("assign", |b| b.iter(|| assign(&ds, &idx)));
    g.finish();
}

criterion_group! { name = analyze_benches; config = config(); targets = benches }
criterion_main!(analyze_benches);
