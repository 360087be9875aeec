//! The live engine: an [`Analysis`] kept up to date, station by station.
//!
//! [`Live`] owns a [`Dataset`] and its [`Analysis`]. Adding, moving, closing or reopening one
//! station updates every figure of all five admin levels — the assignment columns of the
//! affected households (nearest station, distance, coverage bits), the unit counters, the
//! station counts, the two rules and the median / 90th percentile of the distance to the
//! nearest station — without recomputing the rest. The result is exactly what
//! [`analyze`] of the same stations gives: counts and nearest stations are
//! identical, distance sums (for the means) differ only by float rounding of the signed
//! updates. The gap areas are recomputed on demand ([`Live::gaps`], cached until the next
//! edit), since clustering the whole province takes tens of milliseconds.
//!
//! # Which households an edit touches
//! A station `s` of level `L` at point `p` matters to household `h` only if `p` is within
//! `s`'s service radius of `h` (coverage), or no farther from `h` than `h`'s nearest station of
//! level `L` (the nearest station). Households are bucketed in a two-level grid of cells on the
//! unit sphere (cells of [`CELL_M`], blocks of [`BLOCK_CELLS`]³ cells); every cell and block
//! keeps, per level, the largest squared chord from a member to its nearest station. A cell is
//! searched only when the chord from `p` to its bounding box is within that maximum or the
//! station's radius, so the search visits the few cells around `p` (and all of them only when a
//! level had no station at all, where every household is indeed affected).
//!
//! - **Adding** (or reopening) `s`: a candidate takes `s` as its nearest station when it is
//!   strictly nearer than its current one (or as near with a lower station index, the rule of
//!   [`StationIndex::nearest`](crate::index::StationIndex::nearest)), and gains coverage bit `L`
//!   when within `s`'s radius. Both are O(1) per household; no index query is needed.
//! - **Closing** `s`: households whose nearest station was `s`, and those `s` covered, are
//!   recomputed through the station index exactly as [`assign`](mod@super::assign) does.
//! - **Moving** `s` is closing it at the old point and adding it at the new one.
//!
//! Each changed household's contribution is taken from the five units on its chain and its
//! new one added ([`Coverage::apply_household`](super::Coverage::apply_household)); the two rules are updated from a count of
//! each unit's own-level stations.
//!
//! # Medians and 90th percentiles
//! Kept exact by recomputing them for the units whose households' distances changed: a unit of
//! fewer than [`LARGE_UNIT`] households gathers its distances and selects; a larger one keeps a
//! histogram of its distances over buckets of the `f32` bit pattern (monotone for non-negative
//! numbers, 3 % wide), finds the bucket holding the rank from the counts, and selects within
//! the households of that bucket only. Both give the nearest-rank value
//! [`coverage`](mod@super::coverage) gives.
//!
//! # Cost
//! On the bundled Gansu data (800,000 households, 18,678 stations) see the README section
//! "Live updates" and `cargo bench --bench live`.

use std::collections::HashMap;
use std::sync::OnceLock;

use rayon::prelude::*;
use serde::Serialize;

use super::assign::Indexes;
use super::coverage::{quantile, ByUnit, HouseholdContribution, UnitCoverage};
use super::{analyze, gaps, Analysis, Gap};
use crate::index::sphere::{chord_2, chord_2_to_m, m_to_chord_2, to_unit, Unit3};
use crate::index::StationIndex;
use crate::model::{Dataset, HouseholdIdx, Level, StationIdx, StationRow, UnitIdx, NONE, NO_UNIT};

/// Edge of the household cells, metres.
pub const CELL_M: f64 = 2_000.0;
/// Cells per block edge.
pub const BLOCK_CELLS: i32 = 16;
/// Units with at least this many households keep a histogram for their quantiles.
pub const LARGE_UNIT: usize = 8_192;

/// Buckets of the quantile histograms: the `f32` bit pattern shifted right by [`HIST_SHIFT`].
const HIST_SHIFT: u32 = 18;
const HIST_BUCKETS: usize = 1 << (31 - HIST_SHIFT);

/// Why an edit was refused. Nothing is changed when an edit fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// A station with this id exists already (open or closed).
    #[error("a station with id {0} exists already")]
    DuplicateId(String),
    /// No station has this id.
    #[error("no station has id {0}")]
    UnknownId(String),
    /// The station is closed already.
    #[error("station {0} is closed already")]
    Closed(String),
    /// The station is open already.
    #[error("station {0} is open already")]
    Open(String),
    /// Longitude or latitude is not a finite number in range.
    #[error("station {id}: bad coordinates lon {lon}, lat {lat} (longitude must be within -180..180, latitude within -90..90)")]
    BadCoordinates {
        /// The station.
        id: String,
        /// Longitude given.
        lon: f64,
        /// Latitude given.
        lat: f64,
    },
    /// Something else about the station is wrong (empty id, unknown unit, level, radius).
    #[error("station {id}: {reason}")]
    BadStation {
        /// The station.
        id: String,
        /// Why.
        reason: String,
    },
}

/// What one edit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StationChange {
    /// The station edited.
    pub station: StationIdx,
    /// Units whose figures changed, ascending.
    pub units: Vec<UnitIdx>,
    /// Households that became covered (by a station of any level), ascending.
    pub gained: Vec<HouseholdIdx>,
    /// Households that are no longer covered, ascending.
    pub lost: Vec<HouseholdIdx>,
}

/// Households bucketed on the unit sphere, with per-level bounds of their nearest distance.
#[derive(Debug, Clone)]
struct Cells {
    /// Households, grouped by cell, cells grouped by block.
    list: Vec<HouseholdIdx>,
    /// Sorted by block and cell key ([`Cells::keys`]). A household's cell is not kept (four
    /// bytes a household): an edit finds the cells it changes as it finds its households.
    cells: Vec<Cell>,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
struct Cell {
    lo: Unit3,
    hi: Unit3,
    start: u32,
    end: u32,
    block: u32,
    /// Largest squared chord from a member to its nearest station, per level (∞ when none).
    max2: [f64; 5],
}

#[derive(Debug, Clone)]
struct Block {
    lo: Unit3,
    hi: Unit3,
    start: u32,
    end: u32,
    max2: [f64; 5],
}

/// Squared chord from `p` to the box `[lo, hi]` (0 inside); never above the squared chord to a
/// point of the box, also in floating point.
#[inline]
fn box_dist2(p: Unit3, lo: Unit3, hi: Unit3) -> f64 {
    let mut s = 0.0;
    for k in 0..3 {
        let d = if p[k] < lo[k] {
            lo[k] - p[k]
        } else if p[k] > hi[k] {
            p[k] - hi[k]
        } else {
            0.0
        };
        s += d * d;
    }
    s
}

fn union_box(a: &mut (Unit3, Unit3), p: Unit3) {
    for (k, &c) in p.iter().enumerate() {
        a.0[k] = a.0[k].min(c);
        a.1[k] = a.1[k].max(c);
    }
}

const EMPTY_BOX: (Unit3, Unit3) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);

/// A cell's bound of level index `l`: the largest squared chord from one of its `members`
/// (each with its unit vector) to its nearest station of the level (∞ when it has none).
fn cell_max2(
    members: impl Iterator<Item = (HouseholdIdx, Unit3)>,
    a: &super::Assignment,
    st_pos: &[Unit3],
    l: usize,
) -> f64 {
    let mut m = 0.0f64;
    for (h, p) in members {
        let n = a.nearest[l][h as usize];
        let d2 = if n == NONE { f64::INFINITY } else { chord_2(p, st_pos[n as usize]) };
        m = m.max(d2);
    }
    m
}

/// A block's bound of level index `l`: the largest of its cells'.
fn block_max2(cells: &[Cell], l: usize) -> f64 {
    cells.iter().map(|c| c.max2[l]).fold(0.0, f64::max)
}

impl Cells {
    /// The block's key and the cell's key of a unit vector: cells are [`CELL_M`] cubes of the
    /// unit vectors' space, blocks [`BLOCK_CELLS`] cells a side.
    #[inline]
    fn keys(p: Unit3) -> ([i32; 3], [i32; 3]) {
        let edge = m_to_chord_2(CELL_M).sqrt();
        let key = p.map(|c| (c / edge).floor() as i32);
        (key.map(|c| c.div_euclid(BLOCK_CELLS)), key)
    }

    fn build(pos: &[Unit3]) -> Cells {
        type Keyed = (([i32; 3], [i32; 3]), HouseholdIdx);
        // Keyed and sorted in parallel (the keys are distinct: the same order as one thread's).
        let mut order: Vec<Keyed> =
            pos.par_iter().enumerate().map(|(h, &p)| (Self::keys(p), h as HouseholdIdx)).collect();
        order.par_sort_unstable();
        let list: Vec<HouseholdIdx> = order.par_iter().map(|x| x.1).collect();
        let mut cells: Vec<Cell> = Vec::new();
        let mut blocks: Vec<Block> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let (bk, _) = order[i].0;
            let bcell0 = cells.len();
            while i < order.len() && order[i].0 .0 == bk {
                let ck = order[i].0 .1;
                let start = i;
                let mut bx = EMPTY_BOX;
                while i < order.len() && order[i].0 .1 == ck {
                    let h = order[i].1;
                    union_box(&mut bx, pos[h as usize]);
                    i += 1;
                }
                cells.push(Cell {
                    lo: bx.0,
                    hi: bx.1,
                    start: start as u32,
                    end: i as u32,
                    block: blocks.len() as u32,
                    max2: [0.0; 5],
                });
            }
            let mut bx = EMPTY_BOX;
            for c in &cells[bcell0..] {
                union_box(&mut bx, c.lo);
                union_box(&mut bx, c.hi);
            }
            blocks.push(Block { lo: bx.0, hi: bx.1, start: bcell0 as u32, end: cells.len() as u32, max2: [0.0; 5] });
        }
        // Grown a cell at a time (104 bytes each): the room beyond them is given back.
        cells.shrink_to_fit();
        blocks.shrink_to_fit();
        Cells { list, cells, blocks }
    }

    /// Every cell's bounds, then every block's, as [`Live::refresh_cell`] and
    /// [`Live::refresh_block`] make them: each from its own members only, so in parallel.
    fn bound(&mut self, a: &super::Assignment, hh_pos: &[Unit3], st_pos: &[Unit3]) {
        let list = &self.list;
        self.cells.par_iter_mut().with_min_len(64).for_each(|c| {
            for l in Level::ALL {
                let l = l.index();
                let members = list[c.start as usize..c.end as usize].iter().map(|&h| (h, hh_pos[h as usize]));
                c.max2[l] = cell_max2(members, a, st_pos, l);
            }
        });
        let cells = &self.cells;
        self.blocks.par_iter_mut().with_min_len(16).for_each(|b| {
            for l in Level::ALL {
                b.max2[l.index()] = block_max2(&cells[b.start as usize..b.end as usize], l.index());
            }
        });
    }
}

/// The live engine (see the module docs).
///
/// `Live` is `Send + Sync`: a server holds it in `Arc<RwLock<Live>>`, reading figures under the
/// read lock and editing under the write lock.
#[derive(Debug)]
pub struct Live {
    ds: Dataset,
    an: Analysis,
    by_id: HashMap<String, StationIdx>,
    /// Unit vector of every station. A household's is made from its position when needed
    /// ([`Live::hh_pos`], the same function that made the analysis's): kept, it would be 24
    /// bytes a household.
    st_pos: Vec<Unit3>,
    cells: Cells,
    /// The households of every unit's own (those whose finest unit it is; four bytes a
    /// household): a unit's members are those of its subtree ([`Live::for_members`]). The
    /// distance to the nearest station of any level is the assignment's
    /// ([`super::Assignment::nearest_any_m`]), not a column of its own.
    own: ByUnit,
    /// Distance histograms of the large units.
    hist: Vec<Option<Box<[u32]>>>,
    /// Of each large unit whose quantiles an edit made: the bucket and the rank within it of
    /// its median and 90th percentile ([`Live::hist_ranks`]) they were made at. While these
    /// stay, and no household entered or left those buckets, the quantiles stay: an edit does
    /// not go through the unit's households again (a province's millions).
    hist_at: HashMap<UnitIdx, [(usize, u64); 2]>,
    /// Open stations of each unit whose level is the unit's own (for the two rules).
    level_stations: Vec<u32>,
    large_unit: usize,
    gaps: OnceLock<Vec<Gap>>,
    /// Scratch: the households touched in the edit under way (a bit each, made at the first
    /// edit, cleared after each), and their state before it.
    touched_bits: Vec<u64>,
    touched: Vec<(HouseholdIdx, HouseholdContribution, f32)>,
    /// Scratch: the unit vectors of the members of the cells an edit refreshes, in order.
    cell_pos: Vec<Unit3>,
    /// The station of the last edit that ended ([`Live::last_station`]).
    last_station: Option<StationIdx>,
}

impl Clone for Live {
    fn clone(&self) -> Self {
        let gaps = OnceLock::new();
        if let Some(g) = self.gaps.get() {
            let _ = gaps.set(g.clone());
        }
        Live {
            ds: self.ds.clone(),
            an: self.an.clone(),
            by_id: self.by_id.clone(),
            st_pos: self.st_pos.clone(),
            cells: self.cells.clone(),
            own: self.own.clone(),
            hist: self.hist.clone(),
            hist_at: self.hist_at.clone(),
            level_stations: self.level_stations.clone(),
            large_unit: self.large_unit,
            gaps,
            touched_bits: Vec::new(),
            touched: Vec::new(),
            cell_pos: Vec::new(),
            last_station: self.last_station,
        }
    }
}

#[inline]
fn hist_key(d: f32) -> usize {
    (d.to_bits() >> HIST_SHIFT) as usize
}

impl Live {
    /// Analyses `ds` and prepares the incremental structures.
    pub fn new(ds: Dataset) -> Live {
        Self::with_large_unit(ds, LARGE_UNIT)
    }

    /// Prepares the incremental structures over `ds` and its analysis `an` (as [`analyze`]
    /// gives it: the caller vouches that `an` is the analysis of `ds`).
    pub fn from_analysis(ds: Dataset, an: Analysis) -> Live {
        Self::from_parts(ds, an, LARGE_UNIT)
    }

    /// As [`Live::new`] over `ds`, with the boundaries' and grids' indexes of `like`, an engine
    /// over the same divisions, boundaries and grids (the server's planner beside its world):
    /// shared, not built again (the indexes are never changed once built, and a clone of one
    /// is a few reference counts). The stations' index is built from `ds`. The analysis is
    /// the one [`Live::new`] would make: the indexes are those `ds` would give.
    pub fn sharing_polygons(ds: Dataset, like: &Live) -> Live {
        debug_assert_eq!(ds.divisions.len(), like.ds.divisions.len());
        debug_assert_eq!(ds.boundaries.areas.len(), like.ds.boundaries.areas.len());
        debug_assert_eq!(ds.grids.len(), like.ds.grids.len());
        let shared = &like.an.indexes;
        let indexes = Indexes {
            admin: shared.admin.clone(),
            grids: shared.grids.clone(),
            stations: StationIndex::new(&ds.stations, &ds.standard),
        };
        let an = super::analyze_indexed(&ds, indexes, std::time::Instant::now());
        Self::from_parts(ds, an, LARGE_UNIT)
    }

    /// As [`Live::new`], with the size from which units keep a quantile histogram.
    pub(crate) fn with_large_unit(ds: Dataset, large_unit: usize) -> Live {
        let an = analyze(&ds);
        Self::from_parts(ds, an, large_unit)
    }

    fn from_parts(ds: Dataset, mut an: Analysis, large_unit: usize) -> Live {
        let gaps_cell = OnceLock::new();
        let _ = gaps_cell.set(std::mem::take(&mut an.gaps));
        let st = &ds.stations;
        let st_pos: Vec<Unit3> = (0..st.len()).map(|i| to_unit(st.lon[i], st.lat[i])).collect();
        let a = &an.assignment;
        // Three independent parts side by side (each in parallel within where it counts): the
        // households' unit vectors and cells with their bounds; the units' households and
        // histograms; the stations by id and the units' own-level stations.
        let (cells, ((own, hist), (by_id, level_stations))) = rayon::join(
            || {
                let hh = &ds.households;
                let hh_pos: Vec<Unit3> = (0..hh.len())
                    .into_par_iter()
                    .with_min_len(1 << 12)
                    .map(|i| to_unit(hh.lon[i], hh.lat[i]))
                    .collect();
                let mut cells = Cells::build(&hh_pos);
                cells.bound(a, &hh_pos, &st_pos);
                cells
            },
            || rayon::join(|| Self::unit_histograms(&ds, a, large_unit), || Self::station_look_ups(&ds)),
        );
        Live {
            ds,
            an,
            by_id,
            st_pos,
            cells,
            own,
            hist,
            hist_at: HashMap::new(),
            level_stations,
            large_unit,
            gaps: gaps_cell,
            touched_bits: Vec::new(),
            touched: Vec::new(),
            cell_pos: Vec::new(),
            last_station: None,
        }
    }

    /// The households of every unit's own, and the histograms of the large units.
    fn unit_histograms(ds: &Dataset, a: &super::Assignment, large_unit: usize) -> (ByUnit, Vec<Option<Box<[u32]>>>) {
        let n_units = ds.divisions.len();
        let own = ByUnit::new(a, n_units);
        // Households of each unit's subtree, children after parents: summed from the end.
        let mut count: Vec<usize> = (0..n_units).map(|u| own.of(u).len()).collect();
        for u in (0..n_units).rev() {
            if let Some(p) = ds.divisions.get(u as UnitIdx).parent {
                count[p as usize] += count[u];
            }
        }
        // Each large unit's histogram on its own (in parallel): counts, so in any order.
        let hist = (0..n_units)
            .into_par_iter()
            .map(|u| {
                (count[u] >= large_unit).then(|| {
                    let mut b = vec![0u32; HIST_BUCKETS].into_boxed_slice();
                    Self::for_members(&ds.divisions, &own, u as UnitIdx, |h| {
                        let d = a.nearest_any_m(h);
                        if d.is_finite() {
                            b[hist_key(d)] += 1;
                        }
                    });
                    b
                })
            })
            .collect();
        (own, hist)
    }

    /// The stations by id, and the open stations of each unit whose level is the unit's own.
    fn station_look_ups(ds: &Dataset) -> (HashMap<String, StationIdx>, Vec<u32>) {
        let st = &ds.stations;
        let by_id = st.id.iter().enumerate().map(|(i, id)| (id.clone(), i as StationIdx)).collect();
        let mut level_stations = vec![0u32; ds.divisions.len()];
        for i in 0..st.len() {
            let u = st.unit[i];
            if st.active[i] && u != NO_UNIT && st.level[i] == ds.divisions.get(u).level {
                level_stations[u as usize] += 1;
            }
        }
        (by_id, level_stations)
    }

    /// The station of the last edit that added, moved, reopened or closed one (None before
    /// any): what a caller that follows the stations' positions looks at after an edit.
    pub fn last_station(&self) -> Option<StationIdx> {
        self.last_station
    }

    /// The data set, with every edit applied (closed stations keep their row, `active` false).
    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }

    /// The analysis, kept up to date. Its `gaps` field is left empty: use [`Live::gaps`].
    pub fn analysis(&self) -> &Analysis {
        &self.an
    }

    /// A full copy of the analysis with the current gaps, e.g. for writing results.
    pub fn to_analysis(&self) -> Analysis {
        let mut a = self.an.clone();
        a.gaps = self.gaps().to_vec();
        a
    }

    /// The unit a new station of `level` at `lon`, `lat` serves: the unit of `code` when given
    /// (which must be of the station's level), else the unit of the level whose boundary
    /// contains the point. The one rule for stations opened from a file or a request.
    ///
    /// # Errors
    /// The reason: an unknown code, a code of another level, no unit of the level at the point.
    pub fn served_unit(&self, level: Level, lon: f64, lat: f64, code: Option<&str>) -> Result<UnitIdx, String> {
        match code {
            Some(code) => {
                let d = &self.ds.divisions;
                let u = d.find(code).ok_or_else(|| format!("unknown admin code {code}"))?;
                let ul = d.get(u).level;
                if ul != level {
                    return Err(format!("code {code} is a {ul}, but the station's level is {level}"));
                }
                Ok(u)
            }
            None => self.an.indexes.admin.locate_at(level, lon, lat).ok_or_else(|| {
                format!("no {level} boundary contains lon {lon}, lat {lat}; give the code of the unit it serves")
            }),
        }
    }

    /// The station with this id (open or closed).
    pub fn station_index_by_id(&self, id: &str) -> Option<StationIdx> {
        self.by_id.get(id).copied()
    }

    /// The gap areas of the current stations, computed on first use after an edit.
    pub fn gaps(&self) -> &[Gap] {
        self.gaps.get_or_init(|| gaps(&self.ds, &self.an.assignment, &self.an.indexes.stations))
    }

    /// Units with at least this many households keep a histogram for their quantiles.
    pub fn large_unit(&self) -> usize {
        self.large_unit
    }

    fn check_position(id: &str, lon: f64, lat: f64) -> Result<(), LiveError> {
        if crate::model::rules::is_lon_lat(lon, lat) {
            Ok(())
        } else {
            Err(LiveError::BadCoordinates { id: id.to_string(), lon, lat })
        }
    }

    /// Opens a new station.
    ///
    /// # Errors
    /// An empty or existing id, bad coordinates, an unknown unit or one of another level than
    /// the station, or a radius that is not a positive number of metres.
    pub fn add_station(&mut self, row: StationRow) -> Result<StationChange, LiveError> {
        let bad = |reason: String| LiveError::BadStation { id: row.id.clone(), reason };
        if row.id.is_empty() {
            return Err(bad("id is empty".into()));
        }
        if self.by_id.contains_key(&row.id) {
            return Err(LiveError::DuplicateId(row.id.clone()));
        }
        Self::check_position(&row.id, row.lon, row.lat)?;
        if (row.unit as usize) >= self.ds.divisions.len() {
            return Err(bad(format!("unit {} is not a known admin unit", row.unit)));
        }
        let unit_level = self.ds.divisions.get(row.unit).level;
        if unit_level != row.level {
            return Err(bad(format!(
                "unit {} is a {unit_level}, but the station's level is {}",
                self.ds.divisions.get(row.unit).code,
                row.level
            )));
        }
        if let Some(r) = row.radius_m {
            if !(r.is_finite() && r > 0.0) {
                return Err(bad(format!("radius_m must be a positive number of metres, got {r}")));
            }
        }
        let id = row.id.clone();
        let s = self.ds.stations.push(row);
        self.st_pos.push(to_unit(self.ds.stations.lon[s as usize], self.ds.stations.lat[s as usize]));
        self.by_id.insert(id, s);
        Ok(self.open(s))
    }

    /// Reopens a closed station at its last position.
    ///
    /// # Errors
    /// An unknown id, or a station that is open.
    pub fn reopen_station(&mut self, id: &str) -> Result<StationChange, LiveError> {
        let s = self.station_index_by_id(id).ok_or_else(|| LiveError::UnknownId(id.to_string()))?;
        if self.ds.stations.active[s as usize] {
            return Err(LiveError::Open(id.to_string()));
        }
        self.ds.stations.active[s as usize] = true;
        Ok(self.open(s))
    }

    /// Moves an open station.
    ///
    /// # Errors
    /// An unknown id, a closed station, or bad coordinates.
    pub fn move_station(&mut self, id: &str, lon: f64, lat: f64) -> Result<StationChange, LiveError> {
        let s = self.open_station(id)?;
        Self::check_position(id, lon, lat)?;
        self.begin();
        self.close_inner(s);
        let i = s as usize;
        self.ds.stations.lon[i] = lon;
        self.ds.stations.lat[i] = lat;
        self.st_pos[i] = to_unit(lon, lat);
        self.open_inner(s);
        // Station counts are unchanged: the station serves the same unit.
        Ok(self.finish(s, Vec::new()))
    }

    /// Closes an open station (a soft delete: its row stays, `active` becomes false).
    ///
    /// # Errors
    /// An unknown id or a station closed already.
    pub fn remove_station(&mut self, id: &str) -> Result<StationChange, LiveError> {
        let s = self.open_station(id)?;
        self.begin();
        self.close_inner(s);
        self.ds.stations.active[s as usize] = false;
        let units = self.count_station(s, -1);
        Ok(self.finish(s, units))
    }

    fn open_station(&self, id: &str) -> Result<StationIdx, LiveError> {
        let s = self.station_index_by_id(id).ok_or_else(|| LiveError::UnknownId(id.to_string()))?;
        if !self.ds.stations.active[s as usize] {
            return Err(LiveError::Closed(id.to_string()));
        }
        Ok(s)
    }

    /// Renames a station and sets its demonstration flag: details that change no figure.
    ///
    /// # Errors
    /// An unknown id.
    pub fn set_station_details(&mut self, id: &str, name: &str, demonstration: bool) -> Result<(), LiveError> {
        let s = self.station_index_by_id(id).ok_or_else(|| LiveError::UnknownId(id.to_string()))? as usize;
        self.ds.stations.name[s] = name.to_string();
        self.ds.stations.demonstration[s] = demonstration;
        Ok(())
    }

    /// Takes back the latest [`Live::add_station`] entirely (its row too), as if it had never
    /// been added; `id` must be that station's. Used by what-if questions.
    ///
    /// # Errors
    /// An unknown id.
    ///
    /// # Panics
    /// If `id` is not the last station added.
    pub fn undo_add(&mut self, id: &str) -> Result<StationChange, LiveError> {
        let s = self.station_index_by_id(id).ok_or_else(|| LiveError::UnknownId(id.to_string()))?;
        assert_eq!(s as usize + 1, self.ds.stations.len(), "only the last station added can be taken back");
        let ch = if self.ds.stations.active[s as usize] { self.remove_station(id)? } else { StationChange::default() };
        let st = &mut self.ds.stations;
        for v in [&mut st.id, &mut st.name] {
            v.pop();
        }
        st.level.pop();
        st.unit.pop();
        st.lon.pop();
        st.lat.pop();
        st.demonstration.pop();
        st.mobile.pop();
        st.radius_m.pop();
        st.active.pop();
        self.st_pos.pop();
        self.by_id.remove(id);
        Ok(ch)
    }

    fn open(&mut self, s: StationIdx) -> StationChange {
        self.begin();
        self.open_inner(s);
        let units = self.count_station(s, 1);
        self.finish(s, units)
    }

    /// The unit figures and cached gaps, to be put back by [`Live::restore`] after edits that
    /// are taken back (what-if questions): this removes the float rounding the signed updates
    /// of the distance sums would otherwise leave.
    pub(crate) fn snapshot(&mut self) -> Snapshot {
        Snapshot {
            units: self.an.coverage.units.clone(),
            unplaced: self.an.coverage.unplaced.clone(),
            gaps: self.gaps.take(),
        }
    }

    /// Puts back a [`Snapshot`] taken before edits that have all been taken back since.
    pub(crate) fn restore(&mut self, s: Snapshot) {
        self.an.coverage.units = s.units;
        self.an.coverage.unplaced = s.unplaced;
        self.gaps = OnceLock::new();
        if let Some(g) = s.gaps {
            let _ = self.gaps.set(g);
        }
    }

    /// Starts an edit: no household touched yet.
    fn begin(&mut self) {
        // Every edit's `finish` clears the list and its bits, and nothing fails between the
        // two.
        debug_assert!(self.touched.is_empty(), "an edit began before the last one finished");
        // Made at the first edit (an engine that is never edited holds none).
        if self.touched_bits.is_empty() {
            self.touched_bits = vec![0; self.ds.households.len().div_ceil(64)];
        }
    }

    /// The unit vector of household `h`.
    #[inline]
    fn hh_pos(&self, h: HouseholdIdx) -> Unit3 {
        let hh = &self.ds.households;
        to_unit(hh.lon[h as usize], hh.lat[h as usize])
    }

    /// Remembers the state of `h` before its first change in this edit.
    #[inline]
    fn touch(&mut self, h: HouseholdIdx) {
        let (word, bit) = (h as usize / 64, 1u64 << (h % 64));
        if self.touched_bits[word] & bit == 0 {
            self.touched_bits[word] |= bit;
            let c = HouseholdContribution::of(&self.ds, &self.an.assignment, h);
            self.touched.push((h, c, self.an.assignment.nearest_any_m(h)));
        }
    }

    /// Households that may be affected by a station of `level` at `p` with squared radius
    /// `r2`, with their unit vectors: within `r2` of `p`, or no farther from `p` than their
    /// nearest station of `level`; and the cells they are in, ascending (those whose bounds
    /// the edit may change), their members' unit vectors in `cell_pos` (each household's made
    /// once per edit).
    fn candidates(
        &self,
        level: Level,
        p: Unit3,
        r2: f64,
        out: &mut Vec<(HouseholdIdx, Unit3)>,
        cells: &mut Vec<usize>,
        cell_pos: &mut Vec<Unit3>,
    ) {
        let l = level.index();
        let a = &self.an.assignment;
        cell_pos.clear();
        for b in &self.cells.blocks {
            if box_dist2(p, b.lo, b.hi) > b.max2[l].max(r2) {
                continue;
            }
            for (k, c) in self.cells.cells[b.start as usize..b.end as usize].iter().enumerate() {
                if box_dist2(p, c.lo, c.hi) > c.max2[l].max(r2) {
                    continue;
                }
                let (before, pos_before) = (out.len(), cell_pos.len());
                for &h in &self.cells.list[c.start as usize..c.end as usize] {
                    let hp = self.hh_pos(h);
                    cell_pos.push(hp);
                    let d2 = chord_2(hp, p);
                    if d2 <= r2 {
                        out.push((h, hp));
                        continue;
                    }
                    let n = a.nearest[l][h as usize];
                    if n == NONE || d2 <= chord_2(hp, self.st_pos[n as usize]) {
                        out.push((h, hp));
                    }
                }
                if out.len() > before {
                    cells.push(b.start as usize + k);
                } else {
                    cell_pos.truncate(pos_before);
                }
            }
        }
    }

    /// Adds open station `s` to the index and updates the households it reaches.
    fn open_inner(&mut self, s: StationIdx) {
        let i = s as usize;
        let level = self.ds.stations.level[i];
        let l = level.index();
        self.an.indexes.stations.insert(&self.ds.stations, &self.ds.standard, s);
        let p = self.st_pos[i];
        let r2 = self.an.indexes.stations.radius_2(s);
        let (mut cand, mut cells, mut cell_pos) = (Vec::new(), Vec::new(), std::mem::take(&mut self.cell_pos));
        self.candidates(level, p, r2, &mut cand, &mut cells, &mut cell_pos);
        for &(h, hp) in &cand {
            let hi = h as usize;
            let d2 = chord_2(hp, p);
            let old = self.an.assignment.nearest[l][hi];
            let nearer = old == NONE || {
                let d2o = chord_2(hp, self.st_pos[old as usize]);
                d2 < d2o || (d2 == d2o && s < old)
            };
            let covers = d2 <= r2 && self.an.assignment.covered[hi] & (1 << l) == 0;
            if !(nearer || covers) {
                continue;
            }
            self.touch(h);
            let asg = &mut self.an.assignment;
            if nearer {
                asg.nearest[l][hi] = s;
                asg.nearest_m[l][hi] = chord_2_to_m(d2) as f32;
            }
            if covers {
                asg.covered[hi] |= 1 << l;
            }
        }
        self.refresh_bounds(&cells, &cell_pos, level);
        self.cell_pos = cell_pos;
    }

    /// Takes open station `s` out of the index and recomputes the households it served.
    fn close_inner(&mut self, s: StationIdx) {
        let i = s as usize;
        let level = self.ds.stations.level[i];
        let l = level.index();
        let (lon, lat) = (self.ds.stations.lon[i], self.ds.stations.lat[i]);
        let removed = self.an.indexes.stations.remove(level, lon, lat, s);
        debug_assert!(removed, "an open station is indexed");
        let p = self.st_pos[i];
        let r2 = self.an.indexes.stations.radius_2(s);
        let (mut cand, mut cells, mut cell_pos) = (Vec::new(), Vec::new(), std::mem::take(&mut self.cell_pos));
        self.candidates(level, p, r2, &mut cand, &mut cells, &mut cell_pos);
        for &(h, hp) in &cand {
            let hi = h as usize;
            let was_nearest = self.an.assignment.nearest[l][hi] == s;
            let was_covering = self.an.assignment.covered[hi] & (1 << l) != 0 && chord_2(hp, p) <= r2;
            if !(was_nearest || was_covering) {
                continue;
            }
            self.touch(h);
            let idx = &self.an.indexes.stations;
            let (n, m, cov) = match idx.nearest(level, hp) {
                Some((n, d2)) => (n, chord_2_to_m(d2) as f32, idx.covers(level, hp, n, d2)),
                None => (NONE, f32::NAN, false),
            };
            let asg = &mut self.an.assignment;
            asg.nearest[l][hi] = n;
            asg.nearest_m[l][hi] = m;
            if cov {
                asg.covered[hi] |= 1 << l;
            } else {
                asg.covered[hi] &= !(1 << l);
            }
        }
        self.refresh_bounds(&cells, &cell_pos, level);
        self.cell_pos = cell_pos;
    }

    /// Recomputes the distance bounds of `cells` (ascending; their members' unit vectors in
    /// order in `pos`) and their blocks at `level`.
    fn refresh_bounds(&mut self, cells: &[usize], pos: &[Unit3], level: Level) {
        let l = level.index();
        let mut blocks: Vec<u32> = Vec::with_capacity(cells.len());
        let mut at = 0;
        for &c in cells {
            let cell = &self.cells.cells[c];
            let members = &self.cells.list[cell.start as usize..cell.end as usize];
            let m =
                cell_max2(members.iter().copied().zip(pos[at..].iter().copied()), &self.an.assignment, &self.st_pos, l);
            at += members.len();
            self.cells.cells[c].max2[l] = m;
            blocks.push(self.cells.cells[c].block);
        }
        blocks.dedup();
        for b in blocks {
            self.refresh_block(b as usize, level);
        }
    }

    /// Recomputes the distance bound of cell `c` at `level` from its members' positions.
    #[cfg(test)]
    fn refresh_cell(&mut self, c: usize, level: Level) {
        let cell = &self.cells.cells[c];
        let members = self.cells.list[cell.start as usize..cell.end as usize].iter().map(|&h| (h, self.hh_pos(h)));
        let m = cell_max2(members, &self.an.assignment, &self.st_pos, level.index());
        self.cells.cells[c].max2[level.index()] = m;
    }

    fn refresh_block(&mut self, b: usize, level: Level) {
        let l = level.index();
        let blk = &self.cells.blocks[b];
        let m = block_max2(&self.cells.cells[blk.start as usize..blk.end as usize], l);
        self.cells.blocks[b].max2[l] = m;
    }

    /// Adds (`sign` 1) or takes (`sign` -1) station `s` from the station counts and the rules;
    /// returns the units changed.
    fn count_station(&mut self, s: StationIdx, sign: i64) -> Vec<UnitIdx> {
        let d = &self.ds.divisions;
        let st = &self.ds.stations;
        let i = s as usize;
        let u = st.unit[i];
        if u == NO_UNIT {
            return Vec::new();
        }
        self.an.coverage.apply_station(d, st, s, sign);
        let mut units: Vec<UnitIdx> = d.chain(u).into_iter().filter(|&c| c != NO_UNIT).collect();
        let div = d.get(u);
        if st.level[i] == div.level {
            let before = self.level_stations[u as usize];
            let after = (i64::from(before) + sign) as u32;
            self.level_stations[u as usize] = after;
            if (before == 0) != (after == 0) {
                // The unit gained its first or lost its last own-level station.
                let delta = if after == 0 { 1 } else { -1 };
                let min_vets = i64::from(self.ds.standard.village_station_veterans);
                let township = div.level == Level::Township;
                let village = div.level == Level::Village && self.an.coverage.units[u as usize].veterans >= min_vets;
                if township || village {
                    for c in d.chain(u) {
                        if c == NO_UNIT {
                            continue;
                        }
                        let uc = &mut self.an.coverage.units[c as usize];
                        if township {
                            uc.townships_without_station += delta;
                        } else {
                            uc.villages_without_station += delta;
                        }
                    }
                }
            }
        }
        units.dedup();
        units
    }

    /// Ends an edit: applies the touched households' changes to the unit figures and the
    /// quantiles, drops the cached gaps, and reports.
    fn finish(&mut self, s: StationIdx, mut units: Vec<UnitIdx>) -> StationChange {
        let touched = std::mem::take(&mut self.touched);
        let d = &self.ds.divisions;
        let mut gained = Vec::new();
        let mut lost = Vec::new();
        let mut quantile_units: Vec<UnitIdx> = Vec::new();
        // The histogram buckets households entered or left, by unit.
        let mut moved_buckets: Vec<(UnitIdx, usize)> = Vec::new();
        for &(h, old, old_any) in &touched {
            let hi = h as usize;
            let new = HouseholdContribution::of(&self.ds, &self.an.assignment, h);
            let new_any = self.an.assignment.nearest_any_m(h);
            let unit = self.an.assignment.unit[hi];
            let contribution_changed = new != old;
            if contribution_changed {
                self.an.coverage.apply_household(d, unit, &old, -1);
                self.an.coverage.apply_household(d, unit, &new, 1);
                match (old.covered != 0, new.covered != 0) {
                    (false, true) => gained.push(h),
                    (true, false) => lost.push(h),
                    _ => {}
                }
            }
            if unit == NO_UNIT {
                continue;
            }
            let chain = d.chain(unit);
            if contribution_changed {
                units.extend(chain.iter().filter(|&&c| c != NO_UNIT));
            }
            if old_any.to_bits() != new_any.to_bits() {
                for c in chain {
                    if c == NO_UNIT {
                        continue;
                    }
                    quantile_units.push(c);
                    if let Some(hist) = self.hist[c as usize].as_mut() {
                        if old_any.is_finite() {
                            hist[hist_key(old_any)] -= 1;
                            moved_buckets.push((c, hist_key(old_any)));
                        }
                        if new_any.is_finite() {
                            hist[hist_key(new_any)] += 1;
                            moved_buckets.push((c, hist_key(new_any)));
                        }
                    }
                }
            }
        }
        quantile_units.sort_unstable();
        quantile_units.dedup();
        moved_buckets.sort_unstable();
        moved_buckets.dedup();
        for &u in &quantile_units {
            if let Some(hist) = &self.hist[u as usize] {
                let ranks = Self::hist_ranks(hist);
                let moved = |b: usize| moved_buckets.binary_search(&(u, b)).is_ok();
                let same = ranks.is_some_and(|r| self.hist_at.get(&u) == Some(&r) && !moved(r[0].0) && !moved(r[1].0));
                if same {
                    continue;
                }
                match ranks {
                    Some(r) => self.hist_at.insert(u, r),
                    None => self.hist_at.remove(&u),
                };
            }
            let (med, p90) = self.unit_quantiles(u);
            let uc = &mut self.an.coverage.units[u as usize];
            if med.to_bits() != uc.nearest_median_m.to_bits() || p90.to_bits() != uc.nearest_p90_m.to_bits() {
                uc.nearest_median_m = med;
                uc.nearest_p90_m = p90;
                units.push(u);
            }
        }
        units.sort_unstable();
        units.dedup();
        gained.sort_unstable();
        lost.sort_unstable();
        for &(h, ..) in &touched {
            self.touched_bits[h as usize / 64] &= !(1 << (h % 64));
        }
        self.touched = touched;
        self.touched.clear();
        self.gaps = OnceLock::new();
        self.last_station = Some(s);
        StationChange { station: s, units, gained, lost }
    }

    /// Calls `f` with every household of unit `u`'s subtree (its own and its descendants').
    fn for_members(d: &crate::model::Divisions, own: &ByUnit, u: UnitIdx, mut f: impl FnMut(HouseholdIdx)) {
        let mut stack = vec![u];
        while let Some(v) = stack.pop() {
            own.of(v as usize).iter().for_each(|&h| f(h));
            stack.extend_from_slice(d.children(v));
        }
    }

    /// Median and 90th percentile of the distance to the nearest station in unit `u`.
    /// The bucket of a large unit's histogram that holds its median, and the rank within it;
    /// the same of its 90th percentile (None without households at a finite distance).
    fn hist_ranks(hist: &[u32]) -> Option<[(usize, u64); 2]> {
        let n: u64 = hist.iter().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return None;
        }
        let rank = |q: f64| ((q * n as f64).ceil() as u64).clamp(1, n) - 1;
        let find = |r: u64| {
            let mut cum = 0u64;
            for (b, &c) in hist.iter().enumerate() {
                if cum + u64::from(c) > r {
                    return (b, r - cum);
                }
                cum += u64::from(c);
            }
            unreachable!("rank below the count")
        };
        Some([find(rank(0.5)), find(rank(0.9))])
    }

    fn unit_quantiles(&self, u: UnitIdx) -> (f32, f32) {
        let a = &self.an.assignment;
        let members = |f: &mut dyn FnMut(HouseholdIdx)| Self::for_members(&self.ds.divisions, &self.own, u, f);
        match &self.hist[u as usize] {
            None => {
                let mut v: Vec<f32> = Vec::new();
                members(&mut |h| {
                    let d = a.nearest_any_m(h);
                    if d.is_finite() {
                        v.push(d);
                    }
                });
                (quantile(&mut v, 0.5), quantile(&mut v, 0.9))
            }
            Some(hist) => {
                let Some([(b50, r50), (b90, r90)]) = Self::hist_ranks(hist) else {
                    return (f32::NAN, f32::NAN);
                };
                let mut v50 = Vec::new();
                let mut v90 = Vec::new();
                members(&mut |h| {
                    let d = a.nearest_any_m(h);
                    if !d.is_finite() {
                        return;
                    }
                    let k = hist_key(d);
                    if k == b50 {
                        v50.push(d);
                    }
                    if k == b90 {
                        v90.push(d);
                    }
                });
                let pick = |v: &mut Vec<f32>, r: u64| {
                    let (_, x, _) = v.select_nth_unstable_by(r as usize, f32::total_cmp);
                    *x
                };
                (pick(&mut v50, r50), pick(&mut v90, r90))
            }
        }
    }
}

/// Unit figures saved by [`Live::snapshot`].
#[derive(Debug)]
pub(crate) struct Snapshot {
    units: Vec<UnitCoverage>,
    unplaced: UnitCoverage,
    gaps: Option<Vec<Gap>>,
}

impl Snapshot {
    /// The saved figures of unit `u`.
    pub(crate) fn unit(&self, u: UnitIdx) -> &UnitCoverage {
        &self.units[u as usize]
    }
}

#[cfg(test)]
mod tests;
