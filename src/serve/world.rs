//! The served data: the live engine (data set and analysis, kept up to date by edits) and the
//! look-ups the endpoints need.

use std::collections::HashMap;
use std::sync::OnceLock;

use geo::BoundingRect;

use super::cells::CellCache;
use super::geom::Bbox;
use crate::analysis::{Analysis, Gap, Live};
use crate::model::{Dataset, NONE};

/// A data set with its live analysis and look-up tables. Station edits go through
/// [`World::edit`], which updates the analysis incrementally and the look-ups that depend on
/// stations; nothing is copied or rebuilt.
pub struct World {
    live: Live,
    pub(crate) grid_by_id: HashMap<String, u32>,
    /// Boundary area of each unit ([`NONE`] when it has none).
    pub(crate) area_of_unit: Vec<u32>,
    pub(crate) area_bbox: Vec<Bbox>,
    pub(crate) grid_bbox: Vec<Bbox>,
    gap_bbox: OnceLock<Vec<Bbox>>,
    /// Households of each grid, in household order.
    pub(crate) grid_households: Vec<Vec<u32>>,
    /// Bounding box of all boundaries, households and stations.
    pub(crate) extent: Bbox,
    pub(crate) cells: CellCache,
    /// Status and version of the households edited through the store, by household index.
    pub(crate) statuses: super::edits::Statuses,
}

fn rect_bbox(r: Option<geo::Rect<f64>>) -> Bbox {
    match r {
        Some(r) => Bbox::new(r.min().x, r.min().y, r.max().x, r.max().y),
        None => Bbox::EMPTY,
    }
}

fn point_bbox(x: f64, y: f64) -> Bbox {
    Bbox::new(x, y, x, y)
}

impl World {
    /// The world of a data set and its analysis (as [`crate::analysis::analyze`] gives it).
    pub fn new(ds: Dataset, an: Analysis) -> Self {
        Self::from_live(Live::from_analysis(ds, an))
    }

    /// The world of a live engine.
    pub fn from_live(live: Live) -> Self {
        let ds = live.dataset();
        let an = live.analysis();
        let grid_by_id = ds.grids.id.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        let mut area_of_unit = vec![NONE; ds.divisions.len()];
        for (i, a) in ds.boundaries.areas.iter().enumerate() {
            area_of_unit[a.unit as usize] = i as u32;
        }
        let area_bbox: Vec<Bbox> = ds.boundaries.areas.iter().map(|a| rect_bbox(a.geometry.bounding_rect())).collect();
        let grid_bbox = ds.grids.geometry.iter().map(|g| rect_bbox(g.bounding_rect())).collect();
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
        for (x, y) in ds.households.lon.iter().zip(&ds.households.lat) {
            extent = extent.union(&point_bbox(*x, *y));
        }
        let mut w = World {
            live,
            grid_by_id,
            area_of_unit,
            area_bbox,
            grid_bbox,
            gap_bbox: OnceLock::new(),
            grid_households,
            extent,
            cells: CellCache::default(),
            statuses: Default::default(),
        };
        w.extend_to_stations();
        w
    }

    fn extend_to_stations(&mut self) {
        let st = &self.live.dataset().stations;
        for (x, y) in st.lon.iter().zip(&st.lat) {
            self.extent = self.extent.union(&point_bbox(*x, *y));
        }
    }

    /// The data set, with every edit applied.
    pub fn ds(&self) -> &Dataset {
        self.live.dataset()
    }

    /// The analysis, kept up to date (its `gaps` are empty: see [`World::gaps`]).
    pub fn an(&self) -> &Analysis {
        self.live.analysis()
    }

    /// The gap areas of the current stations (computed on first use after an edit).
    pub fn gaps(&self) -> &[Gap] {
        self.live.gaps()
    }

    /// The bounding box of every gap area, in the order of [`World::gaps`].
    pub(crate) fn gap_bbox(&self) -> &[Bbox] {
        self.gap_bbox.get_or_init(|| self.gaps().iter().map(|g| rect_bbox(g.hull.bounding_rect())).collect())
    }

    /// The station with this id (open or closed).
    pub(crate) fn station_index(&self, id: &str) -> Option<u32> {
        self.live.station_index_by_id(id)
    }

    /// Applies a station edit to the live engine (add, move, close, details) and brings the
    /// look-ups that depend on stations or coverage up to date. The served caches of tiles
    /// and pages are the caller's to clear ([`super::AppState::invalidate`]).
    pub fn edit<T>(&mut self, f: impl FnOnce(&mut Live) -> T) -> T {
        let r = f(&mut self.live);
        self.extend_to_stations();
        self.cells = CellCache::default();
        self.gap_bbox = OnceLock::new();
        r
    }

    /// Asks a what-if question of the live engine: `f` must leave it as it found it (as
    /// [`crate::analysis::scenario_in_place`] does, also on error), so no look-up or cache
    /// changes.
    pub fn what_if<T>(&mut self, f: impl FnOnce(&mut Live) -> T) -> T {
        f(&mut self.live)
    }

    /// The grid indexes of the given grid ids (unknown ids are left out).
    pub(crate) fn grid_indexes(&self, ids: &[String]) -> Vec<u32> {
        let mut v: Vec<u32> = ids.iter().filter_map(|id| self.grid_by_id.get(id).copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
