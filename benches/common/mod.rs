//! Shared set-up of the benches: the bundled data set (generated on first use, as the command
//! line does) and a deterministic set of query points.

#![allow(dead_code)] // each bench uses a different part

use std::path::{Path, PathBuf};

use gridcover::crs::Crs;
use gridcover::generate::{generate, write_data_folder, GenerateParams};
use gridcover::ingest::{read_boundaries, read_data_folder, read_divisions};
use gridcover::model::Dataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seed and size of the bundled data set (as in `src/main.rs`).
pub const BUNDLED_SEED: u64 = 20_261_129;
/// Households of the bundled data set.
pub const BUNDLED_HOUSEHOLDS: usize = 800_000;
/// Number of query points of the point benches.
pub const N_POINTS: usize = 1_000_000;
/// Seed of the jitter that takes the household positions to [`N_POINTS`].
pub const POINT_SEED: u64 = 42;
/// Half-width of the jitter, degrees (about 100 m).
pub const JITTER_DEG: f64 = 0.001;

/// The generated bundled data folder, generating it through the library when missing.
pub fn data_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let gen = root.join("generated/gansu");
    if !gen.join("households.parquet").exists() {
        let src = root.join("gansu");
        eprintln!("generating the bundled data set into {} …", gen.display());
        let mut rejects = Vec::new();
        let mut notes = Vec::new();
        let d = read_divisions(&src.join("divisions.csv"), &mut rejects).expect("bundled divisions");
        let b = read_boundaries(&src.join("boundaries.geojson"), &Crs::Gcj02, &d, &mut rejects, &mut notes)
            .expect("bundled boundaries");
        let g = generate(&d, &b, &GenerateParams::new(BUNDLED_SEED, BUNDLED_HOUSEHOLDS)).expect("generate");
        write_data_folder(&gen, &d, &g).expect("write the generated data folder");
    }
    gen
}

/// The bundled data set, read.
pub fn dataset() -> Dataset {
    read_data_folder(&data_dir()).expect("read the bundled data folder")
}

/// `n` query points: every household position first, then copies of them (cycling) moved by a
/// uniform jitter of ±[`JITTER_DEG`] from a fixed seed, so the set is the same on every run.
pub fn points(ds: &Dataset, n: usize) -> (Vec<f64>, Vec<f64>) {
    let hh = &ds.households;
    assert!(!hh.is_empty(), "no households");
    let mut rng = ChaCha8Rng::seed_from_u64(POINT_SEED);
    let mut lon = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % hh.len();
        if i < hh.len() {
            lon.push(hh.lon[k]);
            lat.push(hh.lat[k]);
        } else {
            lon.push(hh.lon[k] + rng.random_range(-JITTER_DEG..=JITTER_DEG));
            lat.push(hh.lat[k] + rng.random_range(-JITTER_DEG..=JITTER_DEG));
        }
    }
    (lon, lat)
}
