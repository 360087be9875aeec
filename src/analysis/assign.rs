//! Assignment: every household to its admin units, grid and nearest station of each level.

use rayon::prelude::*;

use crate::index::sphere::{chord_2_to_m, to_unit};
use crate::index::{AdminIndex, PolygonIndex, StationIndex};
use crate::model::{Dataset, Divisions, HouseholdIdx, Level, StationIdx, UnitIdx, NONE, NO_UNIT};

/// How a household's admin unit was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UnitSource {
    /// From its position (point in polygon), possibly refined by its given code.
    Position = 0,
    /// From its given code alone: no boundary contains its position at any level.
    Code = 1,
    /// Neither: outside every boundary and no code.
    None = 2,
}

/// A household whose given code disagrees with the unit its position falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMismatch {
    /// The household.
    pub household: HouseholdIdx,
    /// The unit its `code` names.
    pub given: UnitIdx,
    /// The unit its position falls in.
    pub located: UnitIdx,
}

/// The assignment of every household, as columns indexed by household.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// The finest admin unit of each household ([`NO_UNIT`] when none); ancestors come from
    /// [`Divisions::chain`].
    pub unit: Vec<UnitIdx>,
    /// How `unit` was found.
    pub source: Vec<UnitSource>,
    /// The grid containing the household ([`NONE`] when outside every grid).
    pub grid: Vec<u32>,
    /// Nearest active station of each level ([`NONE`] when the level has none).
    pub nearest: [Vec<StationIdx>; 5],
    /// Ground distance to that station, metres (NaN when none).
    pub nearest_m: [Vec<f32>; 5],
    /// Bit `L` set when within the service radius of some station of level `L`.
    pub covered: Vec<u8>,
    /// Households whose given code disagrees with their position.
    pub mismatches: Vec<CodeMismatch>,
}

impl Assignment {
    /// Number of households.
    pub fn len(&self) -> usize {
        self.unit.len()
    }

    /// True when there are no households.
    pub fn is_empty(&self) -> bool {
        self.unit.is_empty()
    }

    /// True when the household is within reach of a station of any level.
    #[inline]
    pub fn is_covered(&self, h: HouseholdIdx) -> bool {
        self.covered[h as usize] != 0
    }

    /// Distance to the nearest station of any level, metres (NaN when there is none).
    #[inline]
    pub fn nearest_any_m(&self, h: HouseholdIdx) -> f32 {
        let h = h as usize;
        self.nearest_m.iter().map(|v| v[h]).fold(f32::NAN, f32::min)
    }
}

/// The spatial indexes an assignment needs.
#[derive(Debug, Clone)]
pub struct Indexes {
    /// Admin boundaries.
    pub admin: AdminIndex,
    /// Grid polygons (owner = grid index).
    pub grids: PolygonIndex,
    /// Stations per level.
    pub stations: StationIndex,
}

impl Indexes {
    /// Builds all indexes of a data set.
    pub fn build(ds: &Dataset) -> Self {
        Indexes {
            admin: AdminIndex::new(&ds.divisions, &ds.boundaries),
            grids: PolygonIndex::new(ds.grids.geometry.iter().enumerate().map(|(i, g)| (i as u32, g))),
            stations: StationIndex::new(&ds.stations, &ds.standard),
        }
    }
}

/// Reconciles the unit found by position with the unit named by the household's code.
///
/// Returns the unit to use, how it was found, and whether the two disagree.
pub fn reconcile(
    divisions: &Divisions,
    located: Option<UnitIdx>,
    given: Option<UnitIdx>,
) -> (UnitIdx, UnitSource, bool) {
    match (located, given) {
        (None, None) => (NO_UNIT, UnitSource::None, false),
        (None, Some(g)) => (g, UnitSource::Code, false),
        (Some(l), None) => (l, UnitSource::Position, false),
        (Some(l), Some(g)) => {
            let ll = divisions.get(l).level;
            let gl = divisions.get(g).level;
            if gl <= ll {
                // The code is as coarse as the position or coarser: it must be an ancestor.
                (l, UnitSource::Position, divisions.chain(l)[gl.index()] != g)
            } else if divisions.chain(g)[ll.index()] == l {
                // The code is finer and lies within the located unit: it refines it.
                (g, UnitSource::Position, false)
            } else {
                (l, UnitSource::Position, true)
            }
        }
    }
}

/// The part of an [`Assignment`] that the stations do not change: each household's admin unit
/// (how it was found, and where its given code disagrees) and grid. It depends on the
/// households' positions and codes, the divisions, the boundaries and the grids alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Located {
    /// As [`Assignment::unit`].
    pub unit: Vec<UnitIdx>,
    /// As [`Assignment::source`].
    pub source: Vec<UnitSource>,
    /// As [`Assignment::grid`].
    pub grid: Vec<u32>,
    /// As [`Assignment::mismatches`].
    pub mismatches: Vec<CodeMismatch>,
}

/// The part of an [`Assignment`] that the stations make: each household's nearest station of
/// each level, its distance and the levels that cover it. It depends on the households'
/// positions, the stations and the standard alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nearest {
    /// As [`Assignment::nearest`].
    pub nearest: [Vec<StationIdx>; 5],
    /// As [`Assignment::nearest_m`].
    pub nearest_m: [Vec<f32>; 5],
    /// As [`Assignment::covered`].
    pub covered: Vec<u8>,
}

/// One level's part of [`Nearest`]: each household's nearest station of the level, its
/// distance, and whether a station of the level covers it. It depends on the households'
/// positions and the stations of that level alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelNearest {
    /// As [`Assignment::nearest`] of the level.
    pub nearest: Vec<StationIdx>,
    /// As [`Assignment::nearest_m`] of the level.
    pub nearest_m: Vec<f32>,
    /// The level's bit of [`Assignment::covered`].
    pub covered: Vec<bool>,
}

impl Assignment {
    /// The assignment of its two parts (of the same households).
    pub fn from_parts(located: Located, nearest: Nearest) -> Assignment {
        debug_assert_eq!(located.unit.len(), nearest.covered.len());
        let Located { unit, source, grid, mismatches } = located;
        let Nearest { nearest, nearest_m, covered } = nearest;
        Assignment { unit, source, grid, nearest, nearest_m, covered, mismatches }
    }
}

/// Assigns every household of `ds` (in parallel): [`locate`] and [`nearest`].
pub fn assign(ds: &Dataset, idx: &Indexes) -> Assignment {
    Assignment::from_parts(locate(ds, idx), nearest(ds, idx))
}

/// Each household's admin unit and grid (in parallel).
pub fn locate(ds: &Dataset, idx: &Indexes) -> Located {
    let hh = &ds.households;
    let n = hh.len();
    struct Row {
        unit: UnitIdx,
        located: Option<UnitIdx>,
        source: UnitSource,
        mismatch: bool,
        grid: u32,
    }
    let row = |i: usize| -> Row {
        let (lon, lat) = (hh.lon[i], hh.lat[i]);
        let located = idx.admin.locate(lon, lat);
        let (unit, source, mismatch) = reconcile(&ds.divisions, located, hh.code.get(i));
        let grid = idx.grids.locate(lon, lat).unwrap_or(NONE);
        Row { unit, located, source, mismatch, grid }
    };
    let mut a = Located {
        unit: Vec::with_capacity(n),
        source: Vec::with_capacity(n),
        grid: Vec::with_capacity(n),
        mismatches: Vec::new(),
    };
    // A block of households at a time: the rows wait in memory only until they are columns.
    for lo in (0..n).step_by(ASSIGN_BLOCK) {
        let hi = (lo + ASSIGN_BLOCK).min(n);
        let rows: Vec<Row> = (lo..hi).into_par_iter().with_min_len(4096).map(row).collect();
        for (i, r) in (lo..hi).zip(&rows) {
            if r.mismatch {
                a.mismatches.push(CodeMismatch {
                    household: i as HouseholdIdx,
                    given: hh.code.get(i).unwrap_or(NO_UNIT),
                    located: r.located.unwrap_or(NO_UNIT),
                });
            }
        }
        // The rows into the columns, a column per task.
        let Located { unit, source, grid, .. } = &mut a;
        let rows = &rows;
        rayon::scope(|s| {
            s.spawn(|_| unit.extend(rows.iter().map(|r| r.unit)));
            s.spawn(|_| source.extend(rows.iter().map(|r| r.source)));
            s.spawn(|_| grid.extend(rows.iter().map(|r| r.grid)));
        });
    }
    a
}

/// Each household's nearest station of each level, its distance, and the levels that cover it
/// (in parallel).
pub fn nearest(ds: &Dataset, idx: &Indexes) -> Nearest {
    nearest_with(ds, idx, Default::default())
}

/// [`nearest`], with the levels given in `kept` (each [`LevelNearest`] of these households)
/// taken as they are and the others made.
pub fn nearest_with(ds: &Dataset, idx: &Indexes, kept: [Option<LevelNearest>; 5]) -> Nearest {
    let hh = &ds.households;
    let n = hh.len();
    let todo: Vec<Level> = Level::ALL.into_iter().filter(|l| kept[l.index()].is_none()).collect();
    struct Row {
        nearest: [StationIdx; 5],
        nearest_m: [f32; 5],
        covered: u8,
    }
    let row = |i: usize| -> Row {
        let p = to_unit(hh.lon[i], hh.lat[i]);
        let mut nearest = [NONE; 5];
        let mut nearest_m = [f32::NAN; 5];
        let mut covered = 0u8;
        for &l in &todo {
            if let Some((s, d2)) = idx.stations.nearest(l, p) {
                nearest[l.index()] = s;
                nearest_m[l.index()] = chord_2_to_m(d2) as f32;
                if idx.stations.covers(l, p, s, d2) {
                    covered |= 1 << l.index();
                }
            }
        }
        Row { nearest, nearest_m, covered }
    };
    let mut a = Nearest { nearest: Default::default(), nearest_m: Default::default(), covered: Vec::with_capacity(n) };
    for l in &todo {
        a.nearest[l.index()] = Vec::with_capacity(n);
        a.nearest_m[l.index()] = Vec::with_capacity(n);
    }
    for lo in (0..n).step_by(ASSIGN_BLOCK) {
        let hi = (lo + ASSIGN_BLOCK).min(n);
        let rows: Vec<Row> = (lo..hi).into_par_iter().with_min_len(4096).map(row).collect();
        let Nearest { nearest, nearest_m, covered } = &mut a;
        let rows = &rows;
        rayon::scope(|s| {
            s.spawn(|_| covered.extend(rows.iter().map(|r| r.covered)));
            for (l, (ids, m)) in nearest.iter_mut().zip(nearest_m.iter_mut()).enumerate() {
                if kept[l].is_some() {
                    continue;
                }
                s.spawn(move |_| ids.extend(rows.iter().map(|r| r.nearest[l])));
                s.spawn(move |_| m.extend(rows.iter().map(|r| r.nearest_m[l])));
            }
        });
    }
    // The kept levels in their places, their bits into the covered levels.
    for (l, part) in kept.into_iter().enumerate() {
        let Some(part) = part else { continue };
        debug_assert_eq!(part.nearest.len(), n);
        a.nearest[l] = part.nearest;
        a.nearest_m[l] = part.nearest_m;
        a.covered.par_iter_mut().zip(&part.covered).for_each(|(c, &yes)| *c |= u8::from(yes) << l);
    }
    a
}

/// Households assigned at a time (their rows are up to 48 bytes each until made columns).
const ASSIGN_BLOCK: usize = 1 << 20;
