//! `gridcover scenario`: open and close stations on the live engine and write what changes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::data::load;
use super::progress::phase;
use super::{CliError, DataArg};
use crate::analysis::{scenario_in_place, Live, LiveError};
use crate::ingest::sites::{read_sites, InputError};
use crate::output::scenario::{report, write_scenario};

/// Arguments of `gridcover scenario`.
#[derive(Args)]
pub struct ScenarioArgs {
    #[command(flatten)]
    data: DataArg,
    /// Stations to open: CSV id,name,level,lon,lat[,code,demonstration,mobile,radius_m] (WGS84;
    /// without a code a station serves the unit of its level containing it).
    #[arg(long)]
    add: Option<PathBuf>,
    /// Ids of stations to close, comma separated.
    #[arg(long)]
    remove: Option<String>,
    /// Output folder (created).
    #[arg(long, default_value = "out/scenario")]
    out: PathBuf,
    /// csv (the CSV and JSON files) or xlsx (the same, and the summary's table of changed units
    /// as scenario_summary.xlsx: Chinese headers, codes as text).
    #[arg(long, value_enum, default_value_t = super::report::Format::Csv)]
    format: super::report::Format,
}

/// The ids of `--remove ID,ID` (spaces and empty items ignored).
pub fn parse_removes(arg: Option<&str>) -> Vec<String> {
    arg.map(|a| a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

/// Runs `gridcover scenario`: writes [`crate::output::scenario`]'s files and prints the totals
/// and the changed units per level.
///
/// # Errors
/// A bad data folder, a bad row of `--add`, an unknown or closed `--remove` id, or nothing to
/// do (exit 2); a result that cannot be written (1).
pub fn run(a: &ScenarioArgs) -> Result<(), CliError> {
    if a.format == super::report::Format::Text {
        return Err(CliError::Usage(
            "scenario --format: csv or xlsx (a scenario is written as files into --out)".into(),
        ));
    }
    let ds = load(a.data.data.as_deref())?;
    let mut live = phase("analysing", || Live::new(ds));
    let t = Instant::now();
    let adds = match &a.add {
        Some(p) => read_sites(p, &live)?,
        None => Vec::new(),
    };
    let removes = parse_removes(a.remove.as_deref());
    if adds.is_empty() && removes.is_empty() {
        return Err(CliError::Usage("scenario: nothing to do: give --add FILE and/or --remove ID,ID".into()));
    }
    let r = scenario_in_place(&mut live, &adds, &removes).map_err(|e| match e {
        LiveError::UnknownId(_) | LiveError::Closed(_) => InputError { what: "--remove".into(), reason: e.to_string() },
        other => InputError {
            what: a.add.as_deref().unwrap_or(Path::new("--add")).display().to_string(),
            reason: other.to_string(),
        },
    })?;
    write_scenario(&a.out, &live, &r, t.elapsed().as_secs_f64())?;
    if a.format == super::report::Format::Xlsx {
        crate::output::scenario::scenario_summary_table(&r).write(&a.out.join("scenario_summary.xlsx"))?;
    }
    print!("{}", report(&r));
    println!("results in {}", a.out.display());
    Ok(())
}
