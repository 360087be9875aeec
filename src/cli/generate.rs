//! `gridcover generate`: a complete synthetic data folder from real boundaries and divisions.

use std::path::PathBuf;

use clap::Args;

use super::data::{generate_folder, BUNDLED_HOUSEHOLDS};
use super::CliError;
use crate::crs::Crs;
use crate::generate::GenerateParams;

/// Arguments of `gridcover generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// Admin boundaries (GeoJSON with code, name, level, parent).
    #[arg(long)]
    boundaries: PathBuf,
    /// Statistical divisions (CSV code,name,level,parent_code).
    #[arg(long)]
    divisions: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of households to generate.
    #[arg(long, default_value_t = BUNDLED_HOUSEHOLDS)]
    households: usize,
    /// CRS of the boundaries file: wgs84, cgcs2000, gcj02, bd09 or EPSG:n.
    #[arg(long, default_value = "wgs84")]
    crs: Crs,
    /// Last day of the generated service history (contacts and needs over the half year
    /// before it), YYYY-MM-DD.
    #[arg(long, default_value = "2026-11-30", value_parser = parse_day)]
    history_until: crate::model::Day,
    /// Output data folder (created).
    #[arg(long)]
    out: PathBuf,
}

fn parse_day(s: &str) -> Result<crate::model::Day, String> {
    crate::model::service::parse_day(s)
}

/// Runs `gridcover generate`.
///
/// # Errors
/// Unreadable sources (exit 2), bad parameters (2), an output folder that holds real inputs
/// (2), or files that cannot be written (1).
pub fn run(a: &GenerateArgs) -> Result<(), CliError> {
    let params = GenerateParams { history_until: a.history_until, ..GenerateParams::new(a.seed, a.households) };
    generate_folder(&a.boundaries, &a.divisions, &a.crs, &params, &a.out)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
