//! The served data: a data set, its analysis, and the look-ups the endpoints need.

use std::collections::HashMap;

use geo::BoundingRect;

use super::cells::CellCache;
use super::geom::Bbox;
use crate::analysis::Analysis;
use crate::model::{Dataset, NONE};

/// A data set with its analysis and look-up tables (rebuilt whenever the data change).
pub struct World {
    /// The data.
    pub ds: Dataset,
    /// Its analysis.
    pub an: Analysis,
    pub(crate) grid_by_id: HashMap<String, u32>,
    pub(crate) station_by_id: HashMap<String, u32>,
    /// Boundary area of each unit ([`NONE`] when it has none).
    pub(crate) area_of_unit: Vec<u32>,
    pub(crate) area_bbox: Vec<Bbox>,
    pub(crate) grid_bbox: Vec<Bbox>,
    pub(crate) gap_bbox: Vec<Bbox>,
    /// Households of each grid, in household order.
    pub(crate) grid_households: Vec<Vec<u32>>,
    /// Bounding box of all boundaries, households and stations.
    pub(crate) extent: Bbox,
    pub(crate) cells: CellCache,
}

fn rect_bbox(r: Option<geo::Rect<f64>>) -> Bbox {
    match r {
        Some(r) => Bbox::new(r.min().x, r.min().y, r.max().x, r.max().y),
        None => Bbox::EMPTY,
    }
}

impl World {
    /// Builds the look-ups of an analysed data set.
    pub fn new(ds: Dataset, an: Analysis) -> Self {
        let grid_by_id = ds.grids.id.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        let station_by_id = ds.stations.id.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        let mut area_of_unit = vec![NONE; ds.divisions.len()];
        for (i, a) in ds.boundaries.areas.iter().enumerate() {
            area_of_unit[a.unit as usize] = i as u32;
        }
        let area_bbox: Vec<Bbox> = ds.boundaries.areas.iter().map(|a| rect_bbox(a.geometry.bounding_rect())).collect();
        let grid_bbox = ds.grids.geometry.iter().map(|g| rect_bbox(g.bounding_rect())).collect();
        let gap_bbox = an.gaps.iter().map(|g| rect_bbox(g.hull.bounding_rect())).collect();
        let mut grid_households = vec![Vec::new(); ds.grids.len()];
        for (h, &g) in an.assignment.grid.iter().enumerate() {
            if g != NONE {
                grid_households[g as usize].push(h as u32);
            }
        }
        let mut extent = Bbox::EMPTY;
        for b in &area_bbox {
            extent = extent.union(b);
        }
        for (x, y) in ds.stations.lon.iter().zip(&ds.stations.lat) {
            extent = extent.union(&Bbox::new(*x, *y, *x, *y));
        }
        for (x, y) in ds.households.lon.iter().zip(&ds.households.lat) {
            extent = extent.union(&Bbox::new(*x, *y, *x, *y));
        }
        World {
            ds,
            an,
            grid_by_id,
            station_by_id,
            area_of_unit,
            area_bbox,
            grid_bbox,
            gap_bbox,
            grid_households,
            extent,
            cells: CellCache::default(),
        }
    }

    /// The grid indexes of the given grid ids (unknown ids are left out).
    pub(crate) fn grid_indexes(&self, ids: &[String]) -> Vec<u32> {
        let mut v: Vec<u32> = ids.iter().filter_map(|id| self.grid_by_id.get(id).copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
