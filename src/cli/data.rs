//! Where the data folder is (I/O): the one given with `--data`, else the bundled Gansu data,
//! generated on first use; and reading it, under a spinner.

use std::path::{Path, PathBuf};

use super::progress::phase;
use super::CliError;
use crate::analysis::{analyze, Analysis};
use crate::crs::Crs;
use crate::generate::{generate, write_data_folder, GenerateParams};
use crate::ingest::{read_boundaries, read_data_folder_with, read_divisions, IngestError, ReadOptions};
use crate::model::Dataset;

/// Seed of the bundled Gansu data set.
pub const BUNDLED_SEED: u64 = 20_261_129;
/// Households of the bundled data set (about a million veterans).
pub const BUNDLED_HOUSEHOLDS: usize = 800_000;

/// The bundled source folder (real boundaries and divisions) and where its generated data go:
/// `data/` of the working directory, else of the repository the binary was built from.
///
/// # Errors
/// [`CliError::NoBundledData`] when neither has `gansu/divisions.csv`.
pub fn bundled() -> Result<(PathBuf, PathBuf), CliError> {
    let candidates = [PathBuf::from("data"), Path::new(env!("CARGO_MANIFEST_DIR")).join("data")];
    candidates
        .into_iter()
        .find(|c| c.join("gansu/divisions.csv").exists())
        .map(|c| (c.join("gansu"), c.join("generated/gansu")))
        .ok_or(CliError::NoBundledData)
}

/// Generates a data folder from real boundaries and divisions, each step under a spinner.
/// Warnings about rejected source rows go to stderr.
///
/// # Errors
/// The sources cannot be read ([`CliError::Ingest`]), or the folder cannot be generated or
/// written ([`CliError::Generate`]).
pub fn generate_folder(
    boundaries: &Path,
    divisions: &Path,
    crs: &Crs,
    params: &GenerateParams,
    out: &Path,
) -> Result<(), CliError> {
    let mut rejects = Vec::new();
    let mut notes = Vec::new();
    let d = read_divisions(divisions, &mut rejects)?;
    let b = phase("reading boundaries", || read_boundaries(boundaries, crs, &d, &mut rejects, &mut notes))?;
    for r in &rejects {
        eprintln!("warning: {} row {}: {} ({})", r.file, r.row, r.reason, r.id);
    }
    let g = phase("generating", || generate(&d, &b, params))?;
    // What reading the boundaries and generating decided (units without a boundary, matches by
    // name, stations put elsewhere, fallbacks): the user's to know.
    for n in notes.iter().chain(&g.notes) {
        eprintln!("note: {n}");
    }
    phase("writing", || write_data_folder(out, &d, &g))?;
    Ok(())
}

/// The data folder to use: `data` when given (it must exist), else the bundled one, generated
/// on first use.
///
/// # Errors
/// A given folder that does not exist ([`IngestError::Io`], exit 2), no bundled data, or the
/// bundled data cannot be generated.
pub fn data_dir(data: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(d) = data {
        if !d.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such data folder");
            return Err(IngestError::Io { path: d.to_path_buf(), source }.into());
        }
        return Ok(d.to_path_buf());
    }
    let (src, gen) = bundled()?;
    if !gen.join("households.parquet").exists() {
        eprintln!(
            "generating the bundled data set into {} (seed {BUNDLED_SEED}, {BUNDLED_HOUSEHOLDS} households)…",
            gen.display()
        );
        let params = GenerateParams::new(BUNDLED_SEED, BUNDLED_HOUSEHOLDS);
        generate_folder(&src.join("boundaries.geojson"), &src.join("divisions.csv"), &Crs::Gcj02, &params, &gen)?;
    }
    Ok(gen)
}

/// Reads the data folder `--data` names (or the bundled one) for the commands that analyse,
/// plan and write files: without the households' names and addresses
/// ([`ReadOptions::ANALYSIS`]), which none of them writes.
///
/// # Errors
/// See [`data_dir`] and [`read_data_folder_with`].
pub fn load(data: Option<&Path>) -> Result<Dataset, CliError> {
    let dir = data_dir(data)?;
    Ok(phase("reading data", || read_data_folder_with(&dir, ReadOptions::ANALYSIS))?)
}

/// Reads and analyses the data folder.
///
/// # Errors
/// See [`load`].
pub fn load_analysed(data: Option<&Path>) -> Result<(Dataset, Analysis), CliError> {
    let ds = load(data)?;
    let an = phase("analysing", || analyze(&ds));
    Ok((ds, an))
}

/// Reads what of the data folder a plan within the unit `code` needs
/// ([`crate::ingest::read_data_folder_within`]) and analyses it as far as a plan needs
/// ([`crate::analysis::analyze_for_plan`]); says on stderr what was kept.
///
/// # Errors
/// See [`load`].
pub fn load_for_plan_within(data: Option<&Path>, code: &str) -> Result<(Dataset, Analysis), CliError> {
    let dir = data_dir(data)?;
    let (ds, read) =
        phase("reading data", || crate::ingest::read_data_folder_within(&dir, code, ReadOptions::ANALYSIS))?;
    eprintln!(
        "note: read scoped to {}: {} households, {} boundaries and {} grids that can be in it or decide what is (every division and station)",
        code.trim(),
        read.households,
        read.boundaries,
        read.grids
    );
    let an = phase("analysing", || crate::analysis::analyze_for_plan(&ds));
    Ok((ds, an))
}

/// Today (UTC).
pub use crate::model::service::today;

/// The service records of the data folder `dir`: from its store when it has one (what the
/// grid workers recorded; read as the server's start reads them, the contacts up to the last
/// read from the contacts' cache beside the store), else from its `contacts.csv` and
/// `needs.csv` (through their cache, [`crate::store::folder_records`]; rows that cannot be
/// used are printed as warnings; `ahead`: those files hashed beforehand); none when it has
/// neither.
///
/// # Errors
/// The store cannot be read (exit 1, or 2 for a store of a newer gridcover); a file that cannot
/// be read or lacks a required column (exit 2).
pub fn service_records(
    dir: &Path,
    ds: &Dataset,
    ahead: Option<crate::store::HashedFiles>,
) -> Result<crate::model::ServiceRecords, CliError> {
    if dir.join(crate::store::STORE_FILE).exists() {
        let store = crate::store::Store::open(dir)?;
        let (records, _, unknown) = store.service_records_cached(&ds.households.id)?;
        if unknown > 0 {
            eprintln!("note: {unknown} service records of the store name households not in the data folder");
        }
        return Ok(records);
    }
    let mut rejects = Vec::new();
    let records = crate::store::folder_records(dir, &ds.households, &mut rejects, ahead)?;
    for r in &rejects {
        eprintln!("warning: {} row {}: {} ({})", r.file, r.row, r.reason, r.id);
    }
    Ok(records.unwrap_or_else(|| {
        eprintln!(
            "note: {} has no service records (store, contacts.csv, needs.csv): nobody counts as contacted",
            dir.display()
        );
        crate::model::ServiceRecords::new(ds.households.len(), [], Vec::new()).0
    }))
}
