//! `gridcover serve`: the data folder's store (imported on a first start), analysed and served
//! over HTTP ([`crate::serve`]), with a progress line per step on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::data::data_dir;
use super::{CliError, DataArg};
use crate::serve::edits::state_with_store;
use crate::serve::{default_web_dir, Limits};
use crate::store::Store;

/// Arguments of `gridcover serve`.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Folder of the web viewer (default: web/ of the repository).
    #[arg(long)]
    web: Option<PathBuf>,
}

/// Runs `gridcover serve` until SIGTERM or Ctrl-C.
///
/// # Errors
/// A missing data folder, a bad file, a store from a newer gridcover (exit 2); a store that
/// cannot be written, an address that cannot be bound (1).
pub fn run(a: ServeArgs) -> Result<(), CliError> {
    let t = Instant::now();
    let dir = data_dir(a.data.data.as_deref())?;
    // The store is the truth once it exists: stations as edited, households' statuses. A folder
    // never imported is imported first.
    let store = Store::open(&dir)?;
    if !store.is_imported()? {
        eprintln!("gridcover: first start: importing {} into its store …", dir.display());
        let t0 = Instant::now();
        store.import(&dir)?;
        eprintln!("gridcover: imported in {:.1} s", t0.elapsed().as_secs_f64());
    }
    eprintln!("gridcover: loading {} from its store …", dir.display());
    let t1 = Instant::now();
    // Without names and addresses: a grid worker's page reads its own rows' from the store.
    let ds = store.load_dataset_with(&dir, crate::ingest::ReadOptions::ANALYSIS)?;
    eprintln!(
        "gridcover: {} households, {} stations, {} grids read in {:.1} s; analysing …",
        ds.households.len(),
        ds.stations.len(),
        ds.grids.len(),
        t1.elapsed().as_secs_f64()
    );
    let t2 = Instant::now();
    let state = state_with_store(store, ds, Limits::default(), a.web.or_else(default_web_dir))?;
    eprintln!(
        "gridcover: analysed and prebuilt in {:.1} s (of which the views, household cells and today's figures {:.1} s); ready {:.1} s after start",
        t2.elapsed().as_secs_f64(),
        state.prebuilt_in().as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    let steps: Vec<String> =
        state.start_steps().iter().map(|(name, t)| format!("{name} {:.1} s", t.as_secs_f64())).collect();
    eprintln!("gridcover: the start's steps after the read: {}", steps.join(", "));
    crate::serve::run(state, a.addr).map_err(|source| CliError::Serve { addr: a.addr, source })
}
