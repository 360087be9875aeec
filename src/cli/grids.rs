//! `gridcover grids`: partition a township's or village's households into service grids.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::data::load_analysed;
use super::{CliError, DataArg};
use crate::design::{design_for_unit, Caps, Take};
use crate::output::grids::{table, write_design};

/// Arguments of `gridcover grids`.
#[derive(Args)]
pub struct GridsArgs {
    #[command(flatten)]
    data: DataArg,
    /// Code of the township (9 digits) or village (12 digits) to partition.
    #[arg(long)]
    within: String,
    /// Most households in one grid.
    #[arg(long)]
    max_households: u32,
    /// Most veterans in one grid.
    #[arg(long)]
    max_veterans: Option<u32>,
    /// Only households outside every existing grid; the new grids fill the unit less the
    /// existing grids. Without it, all households of the unit and the whole unit.
    #[arg(long)]
    ungridded_only: bool,
    /// Output folder (created).
    #[arg(long, default_value = "out/grids")]
    out: PathBuf,
}

/// Runs `gridcover grids`: designs, writes `grids.geojson` and `grids_summary.json` into
/// `--out`, and prints the table of grid sizes.
///
/// # Errors
/// A bad data folder, code, level or cap (exit 2); a file that cannot be written (1).
pub fn run(a: &GridsArgs) -> Result<(), CliError> {
    let (ds, an) = load_analysed(a.data.data.as_deref())?;
    let t = Instant::now();
    let caps = Caps { max_households: a.max_households, max_veterans: a.max_veterans };
    let take = if a.ungridded_only { Take::UngriddedOnly } else { Take::All };
    let design = design_for_unit(&ds, &an, &a.within, &caps, take)?;
    write_design(&a.out, &ds, &design, t.elapsed().as_secs_f64())?;
    print!("{}", table(&ds, &design));
    println!("results in {}", a.out.display());
    Ok(())
}
