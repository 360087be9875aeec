//! `gridcover report`: a readable coverage table of one level, worst first.

use clap::Args;

use super::data::load_analysed;
use super::{CliError, DataArg};
use crate::model::Level;
use crate::output::report_table;

/// Arguments of `gridcover report`.
#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    data: DataArg,
    /// Level of the table: province, city, county, township or village.
    #[arg(long, default_value = "county")]
    level: Level,
    /// Rows at most.
    #[arg(long, default_value_t = 30)]
    limit: usize,
}

/// Runs `gridcover report`: prints [`report_table`].
///
/// # Errors
/// The data folder cannot be read (exit 2).
pub fn run(a: &ReportArgs) -> Result<(), CliError> {
    let (ds, an) = load_analysed(a.data.data.as_deref())?;
    print!("{}", report_table(&ds, &an, a.level, a.limit));
    Ok(())
}
