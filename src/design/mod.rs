//! Grid design (pure): partition the households of an admin unit into service grids (网格).
//!
//! [`design_grids`] splits a region (a unit's polygon, or the part of it outside every existing
//! grid) and the households in it into grids of at most `max_households` households (and, if
//! given, `max_veterans` veterans):
//!
//! 1. **Recursive bisection.** A set of households that needs `k = max(⌈n / H⌉, ⌈v / V⌉)` grids
//!    is cut by a line across the longer side of its extent (in a local frame where a degree of
//!    longitude is shortened by cos φ, so "longer" means longer on the ground) into two sets
//!    meant for `⌊k/2⌋` and `⌈k/2⌉` grids; the cut goes between two neighbouring households
//!    where the fuller side is least full relative to its share. Each side is split again until
//!    it fits the caps. With only a household cap this gives exactly `⌈n / H⌉` grids of nearly
//!    equal size whenever no more than a cap's worth of households share one position.
//! 2. **Cells.** The cuts are vertical and horizontal lines in lon/lat, so the cells of the
//!    recursion are rectangles that tile the region's bounding box, each holding its grid's
//!    households strictly inside (a cut lies halfway between two households, never on one).
//! 3. **Clipping.** Each rectangle is intersected with the region (`geo` boolean operations),
//!    so the grids are valid polygons, do not overlap, lie inside the region and cover all of it.
//!
//! A grid is one polygon when the region is convex enough; where the region folds back (a
//! concave boundary, a hole, an existing grid cut out), a rectangle may meet it in several
//! pieces and the grid is a MultiPolygon: [`DesignedGrid::parts`] counts them and the summary
//! reports how many grids are in more than one piece. Households stacked on one spot beyond a
//! cap cannot be separated by any line: their grid is reported over the cap, never dropped.
//!
//! [`design_for_unit`] picks the region and households of a township or village from a data set
//! and its analysis. The command `gridcover grids` writes the result ([`crate::output::grids`]).

use geo::{BooleanOps, BoundingRect, Contains, Coord, MultiPolygon, Point, Polygon, Rect};
use serde::Serialize;

use crate::analysis::Analysis;
use crate::index::PreparedPolygon;
use crate::model::{Dataset, HouseholdIdx, Level, UnitIdx, NONE, NO_UNIT};

/// Why grids could not be designed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DesignError {
    /// No admin unit has this code.
    #[error("unknown admin code {0} (not among the divisions)")]
    UnknownCode(String),
    /// Grids are designed within a township or a village only.
    #[error("{code} is a {level}: grids are designed within a township or a village (9- or 12-digit code)")]
    WrongLevel {
        /// The code given.
        code: String,
        /// Its level.
        level: Level,
    },
    /// The unit has no boundary to keep the grids inside.
    #[error("{0} has no boundary in boundaries.geojson, so grids cannot be drawn inside it")]
    NoBoundary(String),
    /// A cap is zero.
    #[error("{0} must be at least 1")]
    BadCap(&'static str),
    /// Nothing to partition.
    #[error("{0}")]
    NoHouseholds(String),
}

/// The caps of a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Caps {
    /// Most households in one grid.
    pub max_households: u32,
    /// Most veterans in one grid, if capped.
    pub max_veterans: Option<u32>,
}

/// A household to place: its index, position and veterans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// Household index.
    pub household: HouseholdIdx,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Veterans.
    pub veterans: u32,
}

/// One grid of a design.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignedGrid {
    /// Its area: the cell of the recursion clipped to the region.
    pub geometry: MultiPolygon<f64>,
    /// Its households, ascending.
    pub households: Vec<HouseholdIdx>,
    /// Their veterans.
    pub veterans: u64,
    /// Number of polygons of `geometry` (1 when contiguous).
    pub parts: usize,
    /// True when above a cap (households stacked on one spot).
    pub over_cap: bool,
}

fn need(n: u64, v: u64, caps: &Caps) -> u64 {
    let by_h = n.div_ceil(u64::from(caps.max_households));
    let by_v = caps.max_veterans.map_or(0, |m| v.div_ceil(u64::from(m)));
    by_h.max(by_v).max(1)
}

/// The fewest grids the caps allow for `sites`: `max(⌈n / H⌉, ⌈v / V⌉)` (caps must be positive).
pub fn lower_bound(sites: &[Site], caps: &Caps) -> u64 {
    let v: u64 = sites.iter().map(|s| u64::from(s.veterans)).sum();
    need(sites.len() as u64, v, caps)
}

struct Leaf {
    rect: Rect<f64>,
    sites: Vec<Site>,
}

/// Splits `sites` inside `rect` recursively (see the module docs).
fn bisect(rect: Rect<f64>, mut sites: Vec<Site>, caps: &Caps, kx: f64, out: &mut Vec<Leaf>) {
    let v: u64 = sites.iter().map(|s| u64::from(s.veterans)).sum();
    let k = need(sites.len() as u64, v, caps);
    if k <= 1 {
        out.push(Leaf { rect, sites });
        return;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for s in &sites {
        x0 = x0.min(s.lon);
        x1 = x1.max(s.lon);
        y0 = y0.min(s.lat);
        y1 = y1.max(s.lat);
    }
    let by_lon_first = (x1 - x0) * kx >= y1 - y0;
    for by_lon in [by_lon_first, !by_lon_first] {
        let key = |s: &Site| if by_lon { s.lon } else { s.lat };
        sites.sort_by(|a, b| key(a).total_cmp(&key(b)).then(a.household.cmp(&b.household)));
        let (k1, k2) = (k / 2, k - k / 2);
        let h = f64::from(caps.max_households);
        let vv = caps.max_veterans.map(f64::from);
        let load = |n: usize, v: u64, kk: u64| -> f64 {
            let a = n as f64 / (kk as f64 * h);
            vv.map_or(a, |m| a.max(v as f64 / (kk as f64 * m)))
        };
        // Best cut position i (left = sites[..i]) between two distinct keys.
        let mut best: Option<(f64, usize, f64)> = None;
        let mut vl = 0u64;
        for i in 1..sites.len() {
            vl += u64::from(sites[i - 1].veterans);
            let (a, b) = (key(&sites[i - 1]), key(&sites[i]));
            let cut = a + (b - a) * 0.5;
            if !(a < cut && cut < b) {
                continue;
            }
            let cost = load(i, vl, k1).max(load(sites.len() - i, v - vl, k2));
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, i, cut));
            }
        }
        if let Some((_, i, cut)) = best {
            let right = sites.split_off(i);
            let (lo, hi) = (rect.min(), rect.max());
            let (r1, r2) = if by_lon {
                (Rect::new(lo, Coord { x: cut, y: hi.y }), Rect::new(Coord { x: cut, y: lo.y }, hi))
            } else {
                (Rect::new(lo, Coord { x: hi.x, y: cut }), Rect::new(Coord { x: lo.x, y: cut }, hi))
            };
            bisect(r1, sites, caps, kx, out);
            bisect(r2, right, caps, kx, out);
            return;
        }
    }
    // Every household on one spot: no line separates them.
    out.push(Leaf { rect, sites });
}

fn check_caps(caps: &Caps) -> Result<(), DesignError> {
    if caps.max_households == 0 {
        return Err(DesignError::BadCap("max_households"));
    }
    if caps.max_veterans == Some(0) {
        return Err(DesignError::BadCap("max_veterans"));
    }
    Ok(())
}

/// Partitions `sites` (households inside `region`) into grids (see the module docs). Grids come
/// in the order of the recursion (west/south first at every cut).
///
/// # Errors
/// A zero cap, or no sites.
pub fn design_grids(region: &MultiPolygon<f64>, sites: &[Site], caps: &Caps) -> Result<Vec<DesignedGrid>, DesignError> {
    check_caps(caps)?;
    if sites.is_empty() {
        return Err(DesignError::NoHouseholds("no households to partition".into()));
    }
    let mut bbox = region.bounding_rect().ok_or_else(|| DesignError::NoHouseholds("the region is empty".into()))?;
    for s in sites {
        bbox = Rect::new(
            Coord { x: bbox.min().x.min(s.lon), y: bbox.min().y.min(s.lat) },
            Coord { x: bbox.max().x.max(s.lon), y: bbox.max().y.max(s.lat) },
        );
    }
    // No margin: every cell then lies within the region's bounding box, so each clipping below
    // maps coordinates to the same fixed-point grid (i_overlay scales by the bounds of both
    // operands) and neighbouring grids share their cut edges exactly: no slivers of overlap.
    let kx = bbox.center().y.to_radians().cos().max(1e-6);
    let mut leaves = Vec::new();
    bisect(bbox, sites.to_vec(), caps, kx, &mut leaves);
    let grids = leaves
        .into_iter()
        .map(|leaf| {
            let geometry = MultiPolygon(vec![leaf.rect.to_polygon()]).intersection(region);
            let mut households: Vec<HouseholdIdx> = leaf.sites.iter().map(|s| s.household).collect();
            households.sort_unstable();
            let veterans: u64 = leaf.sites.iter().map(|s| u64::from(s.veterans)).sum();
            let over_cap = households.len() > caps.max_households as usize
                || caps.max_veterans.is_some_and(|m| veterans > u64::from(m));
            let parts = geometry.0.len();
            DesignedGrid { geometry, households, veterans, parts, over_cap }
        })
        .collect();
    Ok(grids)
}

/// Which households of the unit to partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Take {
    /// Every household of the unit; the grids cover the whole unit.
    All,
    /// Only households outside every existing grid; the grids cover the unit less the existing
    /// grids.
    UngriddedOnly,
}

/// A grid design for one admin unit.
#[derive(Debug, Clone)]
pub struct UnitDesign {
    /// The unit.
    pub unit: UnitIdx,
    /// The households taken.
    pub take: Take,
    /// The caps.
    pub caps: Caps,
    /// The region the grids tile.
    pub region: MultiPolygon<f64>,
    /// The grids.
    pub grids: Vec<DesignedGrid>,
    /// Households of the unit (as assigned) whose position lies outside the region, so no grid
    /// inside it can hold them (e.g. placed in the unit by their code alone).
    pub outside: Vec<HouseholdIdx>,
    /// The fewest grids the caps allow.
    pub lower_bound: u64,
}

/// Designs grids for the township or village `code` of `ds` (see [`Take`] for which
/// households).
///
/// # Errors
/// An unknown code, a unit that is not a township or village or has no boundary, a zero cap, or
/// a unit without households to partition.
pub fn design_for_unit(
    ds: &Dataset,
    an: &Analysis,
    code: &str,
    caps: &Caps,
    take: Take,
) -> Result<UnitDesign, DesignError> {
    check_caps(caps)?;
    let d = &ds.divisions;
    let unit = d.find(code).ok_or_else(|| DesignError::UnknownCode(code.to_string()))?;
    let level = d.get(unit).level;
    if !matches!(level, Level::Township | Level::Village) {
        return Err(DesignError::WrongLevel { code: code.to_string(), level });
    }
    let polys: Vec<Polygon<f64>> =
        ds.boundaries.areas.iter().filter(|a| a.unit == unit).flat_map(|a| a.geometry.0.iter().cloned()).collect();
    if polys.is_empty() {
        return Err(DesignError::NoBoundary(code.to_string()));
    }
    let mut region = MultiPolygon(polys);
    let a = &an.assignment;
    if take == Take::UngriddedOnly {
        let rect = region.bounding_rect().expect("a boundary has points");
        for (g, geom) in ds.grids.geometry.iter().enumerate() {
            let touches = geom.bounding_rect().is_some_and(|r| {
                r.min().x <= rect.max().x
                    && r.max().x >= rect.min().x
                    && r.min().y <= rect.max().y
                    && r.max().y >= rect.min().y
            });
            if touches && ds.grids.unit[g].is_none_or(|u| d.is_within(u, unit) || d.is_within(unit, u)) {
                region = region.difference(geom);
            }
        }
    }
    let prepared = PreparedPolygon::new(&region);
    let hh = &ds.households;
    let mut sites = Vec::new();
    let mut outside = Vec::new();
    for h in 0..a.len() {
        let u = a.unit[h];
        if u == NO_UNIT || !d.is_within(u, unit) {
            continue;
        }
        if take == Take::UngriddedOnly && a.grid[h] != NONE {
            continue;
        }
        if prepared.contains(hh.lon[h], hh.lat[h]) && region.contains(&Point::new(hh.lon[h], hh.lat[h])) {
            sites.push(Site { household: h as HouseholdIdx, lon: hh.lon[h], lat: hh.lat[h], veterans: hh.veterans[h] });
        } else {
            outside.push(h as HouseholdIdx);
        }
    }
    if sites.is_empty() {
        let what = if take == Take::UngriddedOnly { "outside every existing grid" } else { "inside its boundary" };
        return Err(DesignError::NoHouseholds(format!("{code} has no households {what}")));
    }
    let lower_bound = lower_bound(&sites, caps);
    let grids = design_grids(&region, &sites, caps)?;
    Ok(UnitDesign { unit, take, caps: *caps, region, grids, outside, lower_bound })
}

/// Area of a lon/lat multipolygon on the sphere, square kilometres (Chamberlain–Duquette).
pub fn area_km2(mp: &MultiPolygon<f64>) -> f64 {
    use geo::ChamberlainDuquetteArea;
    mp.chamberlain_duquette_unsigned_area() / 1e6
}

#[cfg(test)]
mod tests;
