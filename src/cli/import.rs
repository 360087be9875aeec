//! `gridcover import`: load the data folder's files into its store, in one transaction.

use clap::Args;

use super::data::data_dir;
use super::progress::phase;
use super::{CliError, DataArg};
use crate::store::Store;

/// Arguments of `gridcover import`.
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataArg,
}

/// Runs `gridcover import`: prints each rejected row on stderr and the counts on stdout.
///
/// # Errors
/// A missing folder, file or column, a store from a newer gridcover (exit 2); a store that
/// cannot be created or written (1).
pub fn run(a: &ImportArgs) -> Result<(), CliError> {
    let dir = data_dir(a.data.data.as_deref())?;
    let rep = phase("importing", || Store::open(&dir).and_then(|s| s.import(&dir)))?;
    for r in &rep.rejects {
        eprintln!("reject: {} row {}: {} ({})", r.file, r.row, r.reason, r.id);
    }
    println!("{}", rep.summary());
    Ok(())
}
