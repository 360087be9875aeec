//! The served data: the live engine (data set and analysis, kept up to date by edits), the
//! look-ups the endpoints need, and what the disclosure policy ([`crate::privacy`]) lets each
//! viewer see of it ([`View`], household cells), computed on first use after each edit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use geo::BoundingRect;

use super::auth::{RoleExt, User};
use super::geom::Bbox;
use crate::analysis::{Analysis, Live};
use crate::model::{Dataset, UnitIdx, NONE};
use crate::privacy::{gap_areas, CellFigures, Disclosure, DisplayCell, GapArea, Groups};

/// What one viewer may see: the figures' decisions, and the gap areas made of them.
pub struct View {
    /// Shown/withheld, per family of every unit and grid.
    pub disclosure: Disclosure,
    gaps: OnceLock<(Vec<GapArea>, Vec<Bbox>)>,
}

impl View {
    fn new(disclosure: Disclosure) -> View {
        View { disclosure, gaps: OnceLock::new() }
    }

    /// The gap areas this viewer sees, most uncovered veterans first.
    pub fn gaps(&self, w: &World) -> &[GapArea] {
        &self.gaps_and_boxes(w).0
    }

    /// The bounding boxes of [`View::gaps`], in the same order.
    pub fn gap_bbox(&self, w: &World) -> &[Bbox] {
        &self.gaps_and_boxes(w).1
    }

    fn gaps_and_boxes(&self, w: &World) -> &(Vec<GapArea>, Vec<Bbox>) {
        self.gaps.get_or_init(|| {
            let g = gap_areas(w.ds(), w.an(), &self.disclosure);
            let b = g.iter().map(|a| rect_bbox(a.shape.bounding_rect())).collect();
            (g, b)
        })
    }
}

/// A household cell as shown: the cell, its figures, its box and its admin unit.
pub struct ShownCell {
    /// The cell and the groups it sums.
    pub cell: DisplayCell,
    /// Its figures.
    pub figures: CellFigures,
    /// Bounding box of its hexagon.
    pub bbox: Bbox,
    /// Its unit (for the `code` filter).
    pub unit: UnitIdx,
}

/// The views computed so far (cleared at each edit).
#[derive(Default)]
struct Views {
    aggregate: OnceLock<Arc<View>>,
    /// Grid workers' views, by their grids (at most [`MAX_WORKER_VIEWS`]).
    workers: Mutex<HashMap<Vec<u32>, Arc<View>>>,
    cells: Mutex<HashMap<u8, Arc<Vec<ShownCell>>>>,
}

/// Most grid workers' views kept at once (each is a few bytes per unit).
const MAX_WORKER_VIEWS: usize = 256;

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
    /// Households of each grid, in household order.
    pub(crate) grid_households: Vec<Vec<u32>>,
    /// Bounding box of all boundaries, households and stations.
    pub extent: Bbox,
    /// The households in groups of at least `k` (positions only: edits do not change them).
    pub(crate) groups: Groups,
    views: Views,
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
        let policy = ds.privacy;
        let groups = Groups::build(ds, &an.assignment, policy.k(), policy.cell_resolution);
        let mut w = World {
            live,
            grid_by_id,
            area_of_unit,
            area_bbox,
            grid_bbox,
            grid_households,
            extent,
            groups,
            views: Views::default(),
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

    /// The analysis, kept up to date (its `gaps` are empty: the served gap areas are
    /// [`View::gaps`]).
    pub fn an(&self) -> &Analysis {
        self.live.analysis()
    }

    /// The live engine.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// What `user` may see: leaders and planners share one view; a grid worker's withholds,
    /// besides, what their own households would give away ([`Disclosure::compute`]).
    pub fn view(&self, user: &User) -> Arc<View> {
        if user.role.sees_aggregates() {
            return self.aggregate_view();
        }
        let policy = self.ds().privacy;
        let grids = self.grid_indexes(&user.grids);
        if let Some(v) = self.views.workers.lock().unwrap_or_else(|e| e.into_inner()).get(&grids) {
            return v.clone();
        }
        let known = super::features::own_households(self, user);
        let v = Arc::new(View::new(Disclosure::compute(self.ds(), &self.an().assignment, policy, &known)));
        let mut m = self.views.workers.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_WORKER_VIEWS {
            m.clear();
        }
        m.insert(grids, v.clone());
        v
    }

    /// The view of leaders and planners (and of offline tiles).
    pub fn aggregate_view(&self) -> Arc<View> {
        let policy = self.ds().privacy;
        self.views
            .aggregate
            .get_or_init(|| Arc::new(View::new(Disclosure::compute(self.ds(), &self.an().assignment, policy, &[]))))
            .clone()
    }

    /// The household cells shown at H3 resolution `r` (at most the policy's), coarser first.
    pub fn cells(&self, r: u8) -> Arc<Vec<ShownCell>> {
        if let Some(c) = self.views.cells.lock().unwrap_or_else(|e| e.into_inner()).get(&r) {
            return c.clone();
        }
        let k = self.ds().privacy.k();
        let shown: Vec<ShownCell> = self
            .groups
            .display(r)
            .into_iter()
            .map(|cell| {
                let figures = self.groups.figures(&cell, &self.ds().households, &self.an().assignment, k);
                let mut bbox = Bbox::EMPTY;
                for ll in cell.key.boundary().iter() {
                    bbox = bbox.union(&Bbox::new(ll.lng(), ll.lat(), ll.lng(), ll.lat()));
                }
                let unit = self.groups.unit_of(&cell);
                ShownCell { cell, figures, bbox, unit }
            })
            .collect();
        let shown = Arc::new(shown);
        self.views.cells.lock().unwrap_or_else(|e| e.into_inner()).insert(r, shown.clone());
        shown
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
        self.views = Views::default();
        r
    }

    /// The grid indexes of the given grid ids (unknown ids are left out).
    pub(crate) fn grid_indexes(&self, ids: &[String]) -> Vec<u32> {
        let mut v: Vec<u32> = ids.iter().filter_map(|id| self.grid_by_id.get(id).copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The engine plans and what-ifs run on: a live engine over the k-anonymous demand
/// ([`crate::privacy::demand_dataset`]: one point per part of a household group), kept apart from the
/// served world so that no planner ever holds the world's lock. Station edits are applied to
/// both. Readers take a snapshot ([`Planner::snapshot`]) and work on it with no lock held; an
/// edit while a snapshot is out copies the engine (copy on write), so neither waits for the
/// other.
pub struct Planner {
    engine: std::sync::RwLock<Arc<Live>>,
    /// Households of each demand point (its part's size).
    sizes: Vec<u32>,
}

impl Planner {
    /// The planner of a world: its groups as demand, its stations, boundaries and standard.
    pub fn new(w: &World) -> Planner {
        let ds = crate::privacy::demand_dataset(w.ds(), &w.groups);
        let sizes = crate::privacy::group_sizes(&w.groups);
        Planner { engine: std::sync::RwLock::new(Arc::new(Live::new(ds))), sizes }
    }

    /// Households of each demand point, in order.
    pub fn sizes(&self) -> &[u32] {
        &self.sizes
    }

    /// The engine as it is now (cheap: a reference count).
    pub fn snapshot(&self) -> Arc<Live> {
        self.engine.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a station edit (the same as the world's).
    pub fn edit<T>(&self, f: impl FnOnce(&mut Live) -> T) -> T {
        let mut g = self.engine.write().unwrap_or_else(|e| e.into_inner());
        f(Arc::make_mut(&mut g))
    }
}
