//! `gridcover report`: a readable table of one level, worst first — tangible coverage, or with
//! `--effective` the effective coverage as of a day — printed, or written as CSV or Excel.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::data::{load_analysed, service_records, today};
use super::{CliError, DataArg};
use crate::analysis::effective;
use crate::model::{Day, Level};
use crate::output::effective::{effective_table, effective_text};
use crate::output::{coverage_table, report_table};

/// How the table is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A text table on the terminal (at most `--limit` rows).
    Text,
    /// CSV, every unit of the level.
    Csv,
    /// Excel (.xlsx) with Chinese headers and codes as text, every unit of the level.
    Xlsx,
}

/// Arguments of `gridcover report`.
#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    data: DataArg,
    /// Level of the table: province, city, county, township or village.
    #[arg(long, default_value = "county")]
    level: Level,
    /// Rows at most (text only).
    #[arg(long, default_value_t = 30)]
    limit: usize,
    /// Effective coverage (contacts and needs) instead of tangible coverage: from the folder's
    /// store when it has one, else from its contacts.csv and needs.csv.
    #[arg(long)]
    effective: bool,
    /// The day effective coverage is measured on, YYYY-MM-DD (default: today, UTC).
    #[arg(long, value_parser = parse_day)]
    as_of: Option<Day>,
    /// text, csv or xlsx.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// File to write (csv and xlsx; default: stdout for csv).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_day(s: &str) -> Result<Day, String> {
    crate::model::service::parse_day(s)
}

/// Runs `gridcover report`.
///
/// # Errors
/// The data folder cannot be read (exit 2), `--format xlsx` without `--out` or
/// `--as-of` without `--effective` (2), the file cannot be written (1).
pub fn run(a: &ReportArgs) -> Result<(), CliError> {
    // Where the table goes: the terminal (text, or CSV without --out) or a file.
    let out = match (a.format, &a.out) {
        (Format::Xlsx, None) => return Err(CliError::Usage("--format xlsx needs --out FILE.xlsx".into())),
        (Format::Text, _) => None,
        (f, Some(path)) => Some(with_extension(path, f)),
        (Format::Csv, None) => None,
    };
    if a.as_of.is_some() && !a.effective {
        return Err(CliError::Usage("--as-of is the day of effective coverage: give --effective too".into()));
    }
    let (ds, an) = load_analysed(a.data.data.as_deref())?;
    let (text, table) = if a.effective {
        let dir = super::data::data_dir(a.data.data.as_deref())?;
        let records = service_records(&dir, &ds, None)?;
        let e = effective(&ds, &an.assignment, &records, a.as_of.unwrap_or_else(today), &ds.service);
        (effective_text(&ds, &e, a.level, a.limit), effective_table(&ds, &e, a.level))
    } else {
        (report_table(&ds, &an, a.level, a.limit), coverage_table(&ds, &an, a.level))
    };
    match out {
        None if a.format == Format::Text => print!("{text}"),
        None => print!("{}", table.to_csv()),
        Some(path) => {
            table.write(&path)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// `path` as given: the format decides the encoding, so a CSV asked for is CSV whatever the name.
fn with_extension(path: &std::path::Path, f: Format) -> PathBuf {
    let xlsx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    match (f, xlsx) {
        (Format::Xlsx, false) => path.with_extension("xlsx"),
        (Format::Csv, true) => path.with_extension("csv"),
        _ => path.to_path_buf(),
    }
}
