//! Grid-worker workload: households and veterans per grid and per worker.

use std::collections::HashMap;

use super::assign::Assignment;
use crate::model::{Dataset, NONE};

/// The workload of one grid and of its worker.
#[derive(Debug, Clone, PartialEq)]
pub struct GridLoad {
    /// Grid index.
    pub grid: u32,
    /// Households in the grid.
    pub households: u64,
    /// Veterans in the grid.
    pub veterans: u64,
    /// True when the grid has more households than the standard's cap.
    pub over_cap: bool,
    /// Grids of the same worker.
    pub worker_grids: u32,
    /// Households of all that worker's grids.
    pub worker_households: u64,
    /// Veterans of all that worker's grids.
    pub worker_veterans: u64,
}

/// The workload of every grid, in grid order.
pub fn workload(ds: &Dataset, a: &Assignment) -> Vec<GridLoad> {
    let n = ds.grids.len();
    let mut hh = vec![0u64; n];
    let mut vets = vec![0u64; n];
    for (h, &g) in a.grid.iter().enumerate() {
        if g != NONE {
            hh[g as usize] += 1;
            vets[g as usize] += u64::from(ds.households.veterans[h]);
        }
    }
    let mut per_worker: HashMap<&str, (u32, u64, u64)> = HashMap::new();
    for g in 0..n {
        let e = per_worker.entry(ds.grids.worker[g].as_str()).or_default();
        e.0 += 1;
        e.1 += hh[g];
        e.2 += vets[g];
    }
    let cap = u64::from(ds.standard.grid_max_households);
    (0..n)
        .map(|g| {
            let w = per_worker[ds.grids.worker[g].as_str()];
            GridLoad {
                grid: g as u32,
                households: hh[g],
                veterans: vets[g],
                over_cap: hh[g] > cap,
                worker_grids: w.0,
                worker_households: w.1,
                worker_veterans: w.2,
            }
        })
        .collect()
}
