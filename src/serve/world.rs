//! The served data: the live engine (data set and analysis, kept up to date by edits), the
//! look-ups the endpoints need, and what the disclosure policy ([`crate::privacy`]) lets each
//! viewer see of it ([`View`], household cells).
//!
//! **Prebuilt.** [`World::prebuild`] makes, before the server answers, everything a leader's or
//! planner's first request would otherwise make from every household or unit of the country:
//! the aggregate [`View`] (the policy's decisions for every unit and grid) with its gap areas,
//! and the household cells of every served resolution ([`ShownCells`], each with a spatial
//! index of its hexagons). The per-level spatial indexes of the admin boundaries and the index
//! of the grids ([`BoxIndex`]) are made with the world. A station edit forgets the views and
//! cells (their figures depend on coverage); the server makes them again in the background a
//! second after the last edit, and a request that comes first makes what it needs itself, as
//! before. The indexes of boundaries and grids never change. Grid workers' views are made on
//! their first request.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use geo::BoundingRect;

use super::auth::{RoleExt, User};
use super::boxes::BoxIndex;
use super::geom::Bbox;
use crate::analysis::{Analysis, Live};
use crate::model::{Dataset, Level, UnitIdx, NONE};
use crate::privacy::{gap_areas, CellFigures, Disclosure, GapArea, Groups};

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

/// A household cell as shown: the cell, its figures and its admin unit. 40 bytes, where it
/// was 120 and a list on the heap: the groups it sums ([`crate::privacy::DisplayCell::groups`]) are not kept
/// once its figures are made, nor its box, which the spatial index of [`ShownCells`] holds
/// and [`ShownCell::bbox`] makes again.
pub struct ShownCell {
    /// The cell drawn (id and shape).
    pub key: h3o::CellIndex,
    /// Its figures ([`ShownCell::figures`]), in 24 bytes where [`CellFigures`] takes 48: the
    /// counts of households in `u32` (households are indexed by `u32`), a withheld count as
    /// the type's largest value.
    households: u32,
    covered_households: u32,
    veterans: u64,
    covered_veterans: u64,
    /// Its unit (for the `code` filter).
    pub unit: UnitIdx,
}

/// A withheld count of a [`ShownCell`].
const WITHHELD: u64 = u64::MAX;

impl ShownCell {
    /// The cell `key` of `figures` in `unit`.
    pub fn new(key: h3o::CellIndex, figures: CellFigures, unit: UnitIdx) -> ShownCell {
        // Never above `u32::MAX - 1`: there are fewer households than `u32` indexes.
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX - 1);
        ShownCell {
            key,
            households: count(figures.households),
            covered_households: figures.covered_households.map_or(u32::MAX, count),
            veterans: figures.veterans,
            covered_veterans: figures.covered_veterans.map_or(WITHHELD, |v| v.min(WITHHELD - 1)),
            unit,
        }
    }

    /// Its figures.
    pub fn figures(&self) -> CellFigures {
        CellFigures {
            households: u64::from(self.households),
            veterans: self.veterans,
            covered_households: (self.covered_households != u32::MAX).then_some(u64::from(self.covered_households)),
            covered_veterans: (self.covered_veterans != WITHHELD).then_some(self.covered_veterans),
        }
    }

    /// Bounding box of its hexagon (of the corners H3 gives, as the index has it).
    pub fn bbox(&self) -> Bbox {
        cell_bbox(self.key)
    }
}

/// Bounding box of a cell's hexagon, from the corners H3 gives.
fn cell_bbox(key: h3o::CellIndex) -> Bbox {
    let mut bbox = Bbox::EMPTY;
    for ll in key.boundary().iter() {
        bbox = bbox.union(&Bbox::new(ll.lng(), ll.lat(), ll.lng(), ll.lat()));
    }
    bbox
}

/// The household cells shown at one resolution (coarser first, then by H3 index: the order of
/// [`crate::privacy::Groups::display`]), with a spatial index of their boxes.
pub struct ShownCells {
    cells: Vec<ShownCell>,
    index: BoxIndex,
}

impl Deref for ShownCells {
    type Target = Vec<ShownCell>;
    fn deref(&self) -> &Vec<ShownCell> {
        &self.cells
    }
}

impl ShownCells {
    fn new(cells: Vec<ShownCell>, boxes: Vec<Bbox>) -> ShownCells {
        let index = BoxIndex::new(boxes.into_iter().enumerate().map(|(i, b)| (i as u32, b)));
        ShownCells { cells, index }
    }

    /// The cells whose box meets `bb`, in order (the same as testing every cell's box).
    pub fn meeting(&self, bb: &Bbox) -> Vec<u32> {
        self.index.query(bb)
    }

    /// The cell whose H3 index is written `id` (exactly as the cell writes itself).
    pub fn find(&self, id: &str) -> Option<usize> {
        let key: h3o::CellIndex = id.parse().ok()?;
        let at = |c: h3o::CellIndex| (u8::from(c.resolution()), c);
        let i = self.cells.binary_search_by_key(&at(key), |c| at(c.key)).ok()?;
        (self.cells[i].key.to_string() == id).then_some(i)
    }
}

/// The views computed so far (cleared at each edit).
#[derive(Default)]
struct Views {
    aggregate: OnceLock<Arc<View>>,
    /// Grid workers' views, by their grids (at most [`MAX_WORKER_VIEWS`]).
    workers: Mutex<HashMap<Vec<u32>, Arc<View>>>,
    /// Covered households and veterans of every group ([`crate::privacy::Groups::covered`]).
    covered: OnceLock<Vec<(u64, u64)>>,
    cells: Mutex<HashMap<u8, Arc<ShownCells>>>,
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
    /// The units of each level that have a boundary, by its box (indexed by [`Level::index`]).
    pub(crate) area_index: [BoxIndex; 5],
    /// The grids by their boxes.
    pub(crate) grid_index: BoxIndex,
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
    ///
    /// The groups (themselves made in parallel, [`Groups::build`]) are made beside the
    /// look-ups, and the grids' households beside the boxes and their indexes.
    pub fn from_live(live: Live) -> Self {
        Self::from_live_with_cells(live, None)
    }

    /// [`World::from_live`], given the households' cells at the policy's resolution when the
    /// caller kept them ([`crate::privacy::groups::household_cells`] of the same households).
    pub fn from_live_with_cells(live: Live, cells: Option<Vec<u64>>) -> Self {
        let ds = live.dataset();
        let an = live.analysis();
        let policy = ds.privacy;
        let (k, r) = (policy.k(), policy.cell_resolution);
        let (groups, ((grid_by_id, area_of_unit, area_index, grid_index, extent), grid_households)) = rayon::join(
            || match cells {
                Some(cells) => Groups::build_from_cells(ds, &an.assignment, k, r, cells),
                None => Groups::build(ds, &an.assignment, k, r),
            },
            || rayon::join(|| Self::boxes(ds), || Self::grid_households(ds, an)),
        );
        let mut w = World {
            live,
            grid_by_id,
            area_of_unit,
            area_index,
            grid_index,
            grid_households,
            extent,
            groups,
            views: Views::default(),
            statuses: Default::default(),
        };
        w.extend_to_stations();
        w
    }

    /// The grids by id, the boundary of each unit, the indexes of boundaries and grids by
    /// their boxes, and the extent of boundaries and households.
    #[allow(clippy::type_complexity)]
    fn boxes(ds: &Dataset) -> (HashMap<String, u32>, Vec<u32>, [BoxIndex; 5], BoxIndex, Bbox) {
        let grid_by_id = ds.grids.id.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        let mut area_of_unit = vec![NONE; ds.divisions.len()];
        for (i, a) in ds.boundaries.areas.iter().enumerate() {
            area_of_unit[a.unit as usize] = i as u32;
        }
        let area_bbox: Vec<Bbox> = ds.boundaries.areas.iter().map(|a| rect_bbox(a.geometry.bounding_rect())).collect();
        let grid_bbox: Vec<Bbox> = ds.grids.geometry.iter().map(|g| rect_bbox(g.bounding_rect())).collect();
        let grid_index = BoxIndex::new(grid_bbox.iter().enumerate().map(|(g, b)| (g as u32, *b)));
        let area_index = Level::ALL.map(|level| {
            BoxIndex::new(ds.divisions.at_level(level).filter_map(|u| {
                let a = area_of_unit[u as usize];
                (a != NONE).then(|| (u, area_bbox[a as usize]))
            }))
        });
        let mut extent = Bbox::EMPTY;
        for b in &area_bbox {
            extent = extent.union(b);
        }
        for (x, y) in ds.households.lon.iter().zip(&ds.households.lat) {
            extent = extent.union(&point_bbox(*x, *y));
        }
        (grid_by_id, area_of_unit, area_index, grid_index, extent)
    }

    /// The households of each grid, in household order.
    fn grid_households(ds: &Dataset, an: &Analysis) -> Vec<Vec<u32>> {
        // Each grid's list made as long as it needs (counted first): pushed a household at a
        // time, each would keep up to twice the room.
        let mut in_grid = vec![0u32; ds.grids.len()];
        for &g in &an.assignment.grid {
            if g != NONE {
                in_grid[g as usize] += 1;
            }
        }
        let mut grid_households: Vec<Vec<u32>> = in_grid.iter().map(|&n| Vec::with_capacity(n as usize)).collect();
        drop(in_grid);
        for (h, &g) in an.assignment.grid.iter().enumerate() {
            if g != NONE {
                grid_households[g as usize].push(h as u32);
            }
        }
        grid_households
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

    /// The household cells shown at H3 resolution `r` (at most the groups' resolution),
    /// coarser first: prebuilt ([`World::prebuild`]) or made now.
    pub fn cells(&self, r: u8) -> Arc<ShownCells> {
        self.cells_unless(r, || false).unwrap_or_else(|| unreachable!("never given up"))
    }

    /// [`World::cells`], given up (`None`, nothing kept) as soon as `give_up` says so, checked
    /// between cells: the background rebuild's, which an edit waiting for the world stops.
    pub fn cells_unless(&self, r: u8, give_up: impl Fn() -> bool + Sync) -> Option<Arc<ShownCells>> {
        let r = r.min(self.groups.resolution);
        if let Some(c) = self.views.cells.lock().unwrap_or_else(|e| e.into_inner()).get(&r) {
            return Some(c.clone());
        }
        let k = self.ds().privacy.k();
        let covered = self.covered();
        let gave_up = std::sync::atomic::AtomicBool::new(false);
        let (shown, boxes): (Vec<ShownCell>, Vec<Bbox>) = {
            use rayon::prelude::*;
            use std::sync::atomic::Ordering::Relaxed;
            // Unzipped as made (no second copy of the cells); once given up, the cells left
            // are passed over.
            self.groups
                .display(r)
                .into_par_iter()
                .map(|cell| {
                    if gave_up.load(Relaxed) || give_up() {
                        gave_up.store(true, Relaxed);
                        return (ShownCell::new(cell.key, CellFigures::default(), crate::model::NO_UNIT), Bbox::EMPTY);
                    }
                    let figures = self.groups.figures_of(&cell, covered, k);
                    let unit = self.groups.unit_of(&cell);
                    (ShownCell::new(cell.key, figures, unit), cell_bbox(cell.key))
                })
                .unzip()
        };
        if gave_up.into_inner() {
            return None;
        }
        let shown = Arc::new(ShownCells::new(shown, boxes));
        Some(self.views.cells.lock().unwrap_or_else(|e| e.into_inner()).entry(r).or_insert(shown).clone())
    }

    /// Covered households and veterans of every group, counted on first use after an edit.
    fn covered(&self) -> &[(u64, u64)] {
        self.views.covered.get_or_init(|| self.groups.covered(&self.ds().households, &self.an().assignment))
    }

    /// The resolutions household cells are served at: every tile zoom's
    /// ([`super::tiles::resolution_for_zoom`]) and the OGC API's
    /// ([`super::features::OGC_CELL_RESOLUTION`]), at most the groups'.
    pub fn cell_resolutions(&self) -> Vec<u8> {
        let finest = self.groups.resolution;
        let mut v: Vec<u8> = (0..=super::tiles::MAX_ZOOM)
            .map(|z| super::tiles::resolution_for_zoom(z, self.ds().privacy.cell_resolution))
            .chain([super::features::OGC_CELL_RESOLUTION])
            .map(|r| r.min(finest))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Makes now what the first leader's or planner's requests would otherwise make: the
    /// aggregate view and its gap areas, and the household cells of every served resolution
    /// ([`World::cell_resolutions`]), in parallel. Each is what the request would have made
    /// (the same functions, kept until the next edit).
    pub fn prebuild(&self) {
        use rayon::prelude::*;
        // Counted first, outside the parallel part: a pool thread waiting for another to fill
        // the cell could otherwise be handed, while that one works in parallel, a job that
        // fills it too.
        self.covered();
        rayon::join(
            || {
                self.aggregate_view().gaps(self);
            },
            || {
                self.cell_resolutions().into_par_iter().for_each(|r| {
                    self.cells(r);
                })
            },
        );
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
        if let Some(s) = self.live.last_station() {
            let st = &self.live.dataset().stations;
            self.extent = self.extent.union(&point_bbox(st.lon[s as usize], st.lat[s as usize]));
        }
        // The views and cells are dropped on a thread of their own, not while the edit holds
        // the world (the R-trees of seven resolutions' cells: milliseconds at national scale).
        let old = std::mem::take(&mut self.views);
        std::thread::spawn(move || drop(old));
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
/// both. Its indexes of boundaries and grids are the world's, shared ([`Live::sharing_polygons`]:
/// they never change), so neither it nor a what-if's copy of it prepares the polygons again. Readers take a snapshot ([`Planner::snapshot`]) and work on it with no lock held; an
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
        // The world's indexes of boundaries and grids are shared, not built a second time.
        Planner { engine: std::sync::RwLock::new(Arc::new(Live::sharing_polygons(ds, &w.live))), sizes }
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

#[cfg(test)]
mod tests {
    use geo::{LineString, MultiPolygon, Polygon};

    use super::*;
    use crate::model::{AdminArea, Boundaries, Divisions};
    use crate::serve::geom::{mercator, TileId};
    use crate::serve::tiles::{BUFFER, EXTENT};

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
        MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]),
            vec![],
        )])
    }

    #[test]
    fn a_shown_cell_keeps_its_figures_as_given() {
        let key = h3o::LatLng::new(40.5, 100.25).unwrap().to_cell(h3o::Resolution::Eight);
        assert_eq!(std::mem::size_of::<ShownCell>(), 40);
        let shown = |households, veterans, covered: Option<(u64, u64)>| CellFigures {
            households,
            veterans,
            covered_households: covered.map(|c| c.0),
            covered_veterans: covered.map(|c| c.1),
        };
        for f in [
            shown(0, 0, Some((0, 0))),
            shown(5, 9, None),
            shown(7, 12, Some((3, 4))),
            shown(u64::from(u32::MAX - 1), u64::MAX - 1, Some((u64::from(u32::MAX - 1), u64::MAX - 1))),
            shown(45_000_000, 57_000_000_000, Some((44_000_000, 56_000_000_000))),
        ] {
            let c = ShownCell::new(key, f, 3);
            assert_eq!((c.figures(), c.key, c.unit), (f, key, 3));
        }
    }

    /// A generated county pair (derived township and village boundaries, stations, grids)
    /// with 4,000 households, read back and analysed: the world a server would serve.
    fn generated_world() -> World {
        let mut d = Divisions::new();
        d.add("62", "甘肃省", Level::Province, None).unwrap();
        d.add("6209", "酒泉市", Level::City, Some("62")).unwrap();
        d.add("620902", "肃州区", Level::County, Some("6209")).unwrap();
        d.add("620902001", "东北街街道", Level::Township, Some("620902")).unwrap();
        d.add("620902001001", "东关社区居民委员会", Level::Village, Some("620902001")).unwrap();
        d.add("620902001002", "北苑社区居民委员会", Level::Village, Some("620902001")).unwrap();
        d.add("620902101", "西峰镇", Level::Township, Some("620902")).unwrap();
        for v in 1..=4 {
            d.add(&format!("620902101{v:03}"), &format!("西峰{v}村村民委员会"), Level::Village, Some("620902101"))
                .unwrap();
        }
        d.add("620923", "肃北蒙古族自治县", Level::County, Some("6209")).unwrap();
        d.add("620923101", "马鬃山镇", Level::Township, Some("620923")).unwrap();
        d.add("620923101001", "明水村民委员会", Level::Village, Some("620923101")).unwrap();
        let area = |code: &str, mp| AdminArea { unit: d.find(code).unwrap(), geometry: mp, derived: false };
        let b = Boundaries {
            areas: vec![
                area("62", rect(97.9, 38.9, 100.5, 40.6)),
                area("6209", rect(98.0, 39.0, 100.4, 40.5)),
                area("620902", rect(98.0, 39.0, 98.4, 39.4)),
                area("620923", rect(98.4, 39.0, 100.4, 40.5)),
            ],
        };
        let g = crate::generate::generate(&d, &b, &crate::generate::GenerateParams::new(11, 4_000)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::generate::write_data_folder(dir.path(), &d, &g).unwrap();
        let ds = crate::ingest::read_data_folder(dir.path()).unwrap();
        let an = crate::analysis::analyze(&ds);
        World::new(ds, an)
    }

    /// The buffered boxes of every tile over the world's extent at zooms 0 to 14, and a few
    /// boxes of other sizes.
    fn boxes(w: &World) -> Vec<Bbox> {
        let e = w.extent;
        let mut v = vec![e, Bbox::new(0.0, 0.0, 1.0, 1.0), Bbox::new(98.2, 39.2, 98.2, 39.2)];
        for z in 0..=14u8 {
            let n = f64::from(1u32 << z);
            let (x0, y0) = mercator(e.min_x, e.max_y);
            let (x1, y1) = mercator(e.max_x, e.min_y);
            let (x0, x1) = ((x0 * n) as u32, ((x1 * n) as u32).min((x0 * n) as u32 + 40));
            let (y0, y1) = ((y0 * n) as u32, ((y1 * n) as u32).min((y0 * n) as u32 + 40));
            for x in x0..=x1 {
                for y in y0..=y1 {
                    v.push(TileId::new(z, x, y).unwrap().bbox_buffered(EXTENT, BUFFER));
                }
            }
        }
        v
    }

    #[test]
    fn the_indexes_meet_what_a_scan_of_every_record_meets() {
        let w = generated_world();
        let ds = w.ds();
        let area_bbox = |u: u32| {
            let a = w.area_of_unit[u as usize];
            if a == NONE {
                Bbox::EMPTY
            } else {
                rect_bbox(ds.boundaries.areas[a as usize].geometry.bounding_rect())
            }
        };
        let grid_bbox: Vec<Bbox> = ds.grids.geometry.iter().map(|g| rect_bbox(g.bounding_rect())).collect();
        assert!(ds.grids.len() > 5 && ds.boundaries.areas.len() > 10, "a world with grids and village boundaries");
        let mut met = 0;
        for bb in boxes(&w) {
            for level in Level::ALL {
                let scan: Vec<u32> = ds.divisions.at_level(level).filter(|&u| area_bbox(u).intersects(&bb)).collect();
                met += scan.len();
                assert_eq!(w.area_index[level.index()].query(&bb), scan, "{level} in {bb:?}");
            }
            let scan: Vec<u32> =
                (0..ds.grids.len() as u32).filter(|&g| grid_bbox[g as usize].intersects(&bb)).collect();
            assert_eq!(w.grid_index.query(&bb), scan, "grids in {bb:?}");
            for r in w.cell_resolutions() {
                let cells = w.cells(r);
                let scan: Vec<u32> =
                    (0..cells.len() as u32).filter(|&i| cells[i as usize].bbox().intersects(&bb)).collect();
                met += scan.len();
                assert_eq!(cells.meeting(&bb), scan, "cells of resolution {r} in {bb:?}");
            }
        }
        assert!(met > 1000, "the boxes meet records: {met}");
    }

    /// The cells of every served resolution against the groups' display and the figures
    /// counted from the households themselves.
    fn assert_cells_are_the_households(w: &World) {
        let (ds, asg) = (w.ds(), &w.an().assignment);
        let k = ds.privacy.k();
        for r in w.cell_resolutions() {
            let cells = w.cells(r);
            let display = w.groups.display(r);
            assert_eq!(cells.len(), display.len());
            for (i, (c, d)) in cells.iter().zip(display).enumerate() {
                assert_eq!(c.key, d.key);
                assert_eq!(c.figures(), w.groups.figures(&d, &ds.households, asg, k));
                assert_eq!(c.unit, w.groups.unit_of(&d));
                let hexagon = crate::privacy::cell_polygon(d.key);
                assert_eq!(c.bbox(), rect_bbox(hexagon.bounding_rect()));
                assert_eq!(cells.find(&d.key.to_string()), Some(i));
            }
            assert!(cells.find("not a cell").is_none());
            if let Some(c) = cells.first() {
                assert!(cells.find(&c.key.to_string().to_uppercase()).is_none(), "only as the cell writes itself");
            }
        }
        assert!(w.cells(8).len() > 20, "cells of many groups");
    }

    #[test]
    fn the_planner_sharing_the_worlds_indexes_is_the_planner_built_from_scratch() {
        let w = generated_world();
        let shared = Planner::new(&w);
        let fresh = Live::new(crate::privacy::demand_dataset(w.ds(), &w.groups));
        let same = |a: &Live, b: &Live| {
            let (x, y) = (a.to_analysis(), b.to_analysis());
            assert_eq!(format!("{:?}", x.assignment), format!("{:?}", y.assignment));
            assert_eq!(format!("{:?}", x.coverage), format!("{:?}", y.coverage));
            assert_eq!(format!("{:?}", x.gaps), format!("{:?}", y.gaps));
            assert_eq!(format!("{:?}", x.workload), format!("{:?}", y.workload));
        };
        let (mut a, mut b) = (Live::clone(&shared.snapshot()), fresh);
        assert!(a.dataset().households.len() > 20, "demand points");
        assert!(a.analysis().assignment.covered.iter().any(|&c| c != 0), "some covered");
        same(&a, &b);
        // The indexes are shared, not copied: the planner's and the world's are one.
        assert!(std::ptr::eq(a.analysis().indexes.grids.shared_polygons(), w.an().indexes.grids.shared_polygons()));
        // Edits give the same changes on both (a station closed, one opened where another was).
        let ds = a.dataset();
        let s = (0..ds.stations.len()).find(|&s| ds.stations.active[s]).unwrap();
        let (id, mut row) = (ds.stations.id[s].clone(), ds.stations.row(s as u32));
        assert_eq!(a.remove_station(&id).unwrap(), b.remove_station(&id).unwrap());
        row.id = "new".into();
        let (lon, lat) = (row.lon, row.lat);
        row.unit = a.served_unit(row.level, lon, lat, None).unwrap();
        assert_eq!(row.unit, b.served_unit(row.level, lon, lat, None).unwrap());
        assert_eq!(a.add_station(row.clone()).unwrap(), b.add_station(row).unwrap());
        same(&a, &b);
    }

    #[test]
    fn what_the_server_keeps_holds_no_spare_room_and_the_planner_shares_the_polygons() {
        let w = generated_world();
        // Each grid's households: exactly those assigned to it, in household order, in a list
        // as long as it needs.
        let asg = &w.an().assignment;
        for (g, list) in w.grid_households.iter().enumerate() {
            let want: Vec<u32> = (0..asg.len() as u32).filter(|&h| asg.grid[h as usize] == g as u32).collect();
            assert_eq!(list, &want);
            assert_eq!(list.capacity(), list.len(), "grid {g}");
        }
        assert!(w.grid_households.iter().any(|l| l.len() > 1), "grids with households");
        for g in &w.groups.groups {
            assert_eq!(g.households.capacity(), g.households.len());
        }
        let p = Planner::new(&w);
        let live = p.snapshot();
        let d = &live.dataset().households;
        assert!(d.len() > 20, "demand points");
        assert_eq!((d.lon.capacity(), d.lat.capacity(), d.veterans.capacity()), (d.len(), d.len(), d.len()));
        // The planner's divisions, boundaries and grids are the world's, not a copy; so are a
        // copy's.
        assert!(Arc::ptr_eq(&live.dataset().divisions, &w.ds().divisions));
        assert!(Arc::ptr_eq(&live.dataset().boundaries, &w.ds().boundaries));
        assert!(Arc::ptr_eq(&live.dataset().grids, &w.ds().grids));
        let copy = Live::clone(&live);
        assert!(Arc::ptr_eq(&copy.dataset().divisions, &w.ds().divisions));
        assert!(Arc::ptr_eq(&copy.dataset().boundaries, &w.ds().boundaries));
        assert!(w.ds().boundaries.areas.len() > 10 && w.ds().grids.len() > 5);
    }

    #[test]
    fn cells_given_up_are_not_kept_and_cells_made_are_those_of_cells() {
        let w = generated_world();
        let r = w.groups.resolution;
        let fresh = |w: &World| w.views.cells.lock().unwrap().is_empty();
        // Given up at once, or after some cells: nothing is kept.
        assert!(w.cells_unless(r, || true).is_none());
        let asked = std::sync::atomic::AtomicUsize::new(0);
        assert!(w.cells_unless(r, || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 3).is_none());
        assert!(fresh(&w));
        // Not given up: the cells `cells` makes, kept for it.
        let made = w.cells_unless(r, || false).unwrap();
        assert!(made.len() > 10);
        assert!(Arc::ptr_eq(&made, &w.cells(r)));
        let again = generated_world();
        let want = again.cells(r);
        assert_eq!(made.len(), want.len());
        for (a, b) in made.iter().zip(want.iter()) {
            assert_eq!((a.key, a.figures(), a.unit, a.bbox()), (b.key, b.figures(), b.unit, b.bbox()));
        }
        // Kept cells are given whatever `give_up` says.
        assert!(w.cells_unless(r, || true).is_some_and(|c| Arc::ptr_eq(&c, &made)));
    }

    #[test]
    fn prebuilt_cells_are_those_of_the_households_before_and_after_an_edit() {
        let mut w = generated_world();
        w.prebuild();
        assert_eq!(w.cell_resolutions(), vec![2, 3, 4, 5, 6, 7, 8]);
        // Prebuilt: every resolution is there before any request.
        assert_eq!(w.views.cells.lock().unwrap().len(), 7);
        assert!(w.views.aggregate.get().is_some_and(|v| v.gaps.get().is_some()));
        assert_cells_are_the_households(&w);
        let covered_before: u64 = w.cells(8).iter().filter_map(|c| c.figures().covered_households).sum();
        // Closing half the stations changes coverage: the cells follow.
        let ds = w.ds();
        let mut ids: Vec<String> =
            (0..ds.stations.len()).filter(|&s| ds.stations.active[s]).map(|s| ds.stations.id[s].clone()).collect();
        ids.truncate(ids.len() / 2);
        w.edit(|live| {
            for id in &ids {
                live.remove_station(id).unwrap();
            }
        });
        assert!(w.views.cells.lock().unwrap().is_empty(), "an edit forgets the cells");
        w.prebuild();
        assert_cells_are_the_households(&w);
        let covered_after: u64 = w.cells(8).iter().filter_map(|c| c.figures().covered_households).sum();
        assert_ne!(covered_before, covered_after, "the edit changed the cells' figures");
    }
}
