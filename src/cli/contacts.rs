//! `gridcover contacts import --data DIR FILE`: a station's ledger of contacts (台账, CSV or
//! `.xlsx`) into the data folder's store, in one transaction; importing it again adds nothing.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::data::data_dir;
use super::{CliError, DataArg};
use crate::ingest::service::read_ledger;
use crate::model::{HouseholdRow, Households};
use crate::store::{Actor, RecordSource, Store};

/// `gridcover contacts …`.
#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Import a ledger of contacts (台账: .csv or .xlsx, first sheet; columns household_id,
    /// date, kind, note or 户编号, 日期, 方式, 情况) into the store, in one transaction. A contact
    /// already in the store (same household, date, kind and note) is not added again; a row that
    /// cannot be used is a warning naming the file and row.
    Import(ImportArgs),
}

/// Arguments of `gridcover contacts import`.
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataArg,
    /// The ledger (.csv, or .xlsx whose first sheet is read; the first row is the header).
    file: PathBuf,
}

/// Runs `gridcover contacts …`.
///
/// # Errors
/// A ledger that cannot be read or lacks the household id or date column, a missing folder, a
/// store from a newer gridcover (exit 2); a store that cannot be written (1).
pub fn run(c: ContactsCommand) -> Result<(), CliError> {
    match c {
        ContactsCommand::Import(a) => import(&a),
    }
}

fn import(a: &ImportArgs) -> Result<(), CliError> {
    let dir = data_dir(a.data.data.as_deref())?;
    let store = Store::open(&dir)?;
    if !store.is_imported()? {
        // The households a ledger names are the store's: a new store gets the folder first.
        let rep = store.import(&dir)?;
        eprintln!("note: the store was new; imported {}: {}", dir.display(), rep.summary());
    }
    let mut households = Households::default();
    for id in store.household_ids()? {
        households.push(HouseholdRow { id, veterans: 1, ..Default::default() });
    }
    let mut rejects = Vec::new();
    let rows = read_ledger(&a.file, &households, &mut rejects)?;
    let source = RecordSource::of_file(&a.file, rejects.len())?;
    for r in &rejects {
        eprintln!("warning: {} row {}: {} ({})", r.file, r.row, r.reason, r.id);
    }
    let done = store.import_contacts(&Actor::Import, &source, &rows)?;
    println!("{}: {} added, {} already there, {} rejected", source.file, done.added, done.same, done.rejected);
    Ok(())
}
