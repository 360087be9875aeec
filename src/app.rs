//! Application glue shared by the command line, the server and the store: where the data
//! folder is, and generating the bundled data set on first use. (I/O.)

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::crs::Crs;
use crate::generate::{generate, write_data_folder, GenerateParams};
use crate::ingest::{read_boundaries, read_divisions};

/// Seed of the bundled Gansu data set.
pub const BUNDLED_SEED: u64 = 20_261_129;
/// Households of the bundled data set (about a million veterans).
pub const BUNDLED_HOUSEHOLDS: usize = 800_000;

/// The bundled source folder (real boundaries and divisions) and where its generated data go.
pub fn bundled() -> anyhow::Result<(PathBuf, PathBuf)> {
    let candidates = [PathBuf::from("data"), Path::new(env!("CARGO_MANIFEST_DIR")).join("data")];
    for c in candidates {
        if c.join("gansu/divisions.csv").exists() {
            return Ok((c.join("gansu"), c.join("generated/gansu")));
        }
    }
    bail!("the bundled data folder data/gansu was not found (run from the repository, or pass --data DIR)")
}

/// Generates a data folder from real boundaries and divisions; `phase` runs each step (e.g.
/// under a spinner). Warnings about rejected source rows go to stderr.
pub fn generate_folder(
    boundaries: &Path,
    divisions: &Path,
    crs: &Crs,
    params: &GenerateParams,
    out: &Path,
    phase: &dyn Fn(&str, &mut dyn FnMut()),
) -> anyhow::Result<()> {
    let mut rejects = Vec::new();
    let mut notes = Vec::new();
    let d = read_divisions(divisions, &mut rejects)?;
    let mut b = None;
    phase("reading boundaries", &mut || b = Some(read_boundaries(boundaries, crs, &d, &mut rejects, &mut notes)));
    let b = b.expect("phase runs its step")?;
    for r in &rejects {
        eprintln!("warning: {} row {}: {} ({})", r.file, r.row, r.reason, r.id);
    }
    let mut g = None;
    phase("generating", &mut || g = Some(generate(&d, &b, params)));
    let g = g.expect("phase runs its step")?;
    let mut w = None;
    phase("writing", &mut || w = Some(write_data_folder(out, &d, &g)));
    w.expect("phase runs its step")?;
    Ok(())
}

/// The data folder to use: `data` when given, else the bundled one, generated on first use.
pub fn data_dir(data: Option<&Path>, phase: &dyn Fn(&str, &mut dyn FnMut())) -> anyhow::Result<PathBuf> {
    if let Some(d) = data {
        return Ok(d.to_path_buf());
    }
    let (src, gen) = bundled()?;
    if !gen.join("households.parquet").exists() {
        eprintln!(
            "generating the bundled data set into {} (seed {BUNDLED_SEED}, {BUNDLED_HOUSEHOLDS} households)…",
            gen.display()
        );
        let params = GenerateParams::new(BUNDLED_SEED, BUNDLED_HOUSEHOLDS);
        generate_folder(&src.join("boundaries.geojson"), &src.join("divisions.csv"), &Crs::Gcj02, &params, &gen, phase)
            .context("generating the bundled data set")?;
    }
    Ok(gen)
}

/// A `phase` that just runs the step, for callers without a terminal.
pub fn quiet(_msg: &str, f: &mut dyn FnMut()) {
    f()
}
