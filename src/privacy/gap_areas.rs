//! Gap areas as the roles without household access see them (pure): villages and
//! communities with uncovered households, joined where their boundaries touch.
//!
//! A village is part of a gap area when its covered/uncovered figures are shown
//! ([`super::Disclosure`], [`super::Family::Covered`]) and at least one of its households is
//! uncovered — then at least `k` are. An area's shape is the union of its villages'
//! boundaries (public admin shapes, never a hull of household positions), its figures are the
//! sums of its villages' shown figures, and its centre and nearest station are those of that
//! shape. So a gap area tells nothing the shown unit figures do not.

use geo::{BoundingRect, Centroid, Intersects, MultiPolygon};

use crate::analysis::Analysis;
use crate::index::sphere::{chord_2_to_m, to_unit};
use crate::model::{Dataset, Level, StationIdx, UnitIdx, NONE, NO_UNIT};

use super::{Disclosure, Family};

/// One gap area.
#[derive(Debug, Clone)]
pub struct GapArea {
    /// Rank by uncovered veterans, 1 = most.
    pub rank: u32,
    /// Its villages, by index.
    pub units: Vec<UnitIdx>,
    /// The union of their boundaries, WGS84.
    pub shape: MultiPolygon<f64>,
    /// Uncovered households in it.
    pub households: u64,
    /// Uncovered veterans in it.
    pub veterans: u64,
    /// Centre of the shape, lon/lat.
    pub centre: (f64, f64),
    /// The unit of each level containing most of its villages' uncovered veterans.
    pub codes: [UnitIdx; 5],
    /// Nearest active station (any level) to the centre, and the distance in metres.
    pub nearest_station: Option<(StationIdx, f64)>,
}

/// The gap areas of `ds` as `view` may see them, most uncovered veterans first.
pub fn gap_areas(ds: &Dataset, an: &Analysis, view: &Disclosure) -> Vec<GapArea> {
    let mut area_of = vec![NONE; ds.divisions.len()];
    for (i, a) in ds.boundaries.areas.iter().enumerate() {
        area_of[a.unit as usize] = i as u32;
    }
    let cov = &an.coverage.units;
    let villages: Vec<UnitIdx> = ds
        .divisions
        .at_level(Level::Village)
        .filter(|&u| {
            let c = &cov[u as usize];
            area_of[u as usize] != NONE && view.unit(Family::Covered, u) && c.households > c.covered_households
        })
        .collect();
    let boxes: Vec<geo::Rect<f64>> = villages
        .iter()
        .map(|&u| ds.boundaries.areas[area_of[u as usize] as usize].geometry.bounding_rect().expect("a boundary"))
        .collect();
    // Join villages whose boundaries touch (union–find over bbox-overlapping pairs, sweep by x).
    let mut parent: Vec<usize> = (0..villages.len()).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut by_x: Vec<usize> = (0..villages.len()).collect();
    by_x.sort_by(|&a, &b| boxes[a].min().x.total_cmp(&boxes[b].min().x));
    for (pos, &i) in by_x.iter().enumerate() {
        for &j in &by_x[pos + 1..] {
            if boxes[j].min().x > boxes[i].max().x {
                break;
            }
            if boxes[j].min().y > boxes[i].max().y || boxes[i].min().y > boxes[j].max().y {
                continue;
            }
            let gi = &ds.boundaries.areas[area_of[villages[i] as usize] as usize].geometry;
            let gj = &ds.boundaries.areas[area_of[villages[j] as usize] as usize].geometry;
            if gi.intersects(gj) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut members: std::collections::BTreeMap<usize, Vec<UnitIdx>> = Default::default();
    for (i, &v) in villages.iter().enumerate() {
        let r = find(&mut parent, i);
        members.entry(r).or_default().push(v);
    }
    let mut out: Vec<GapArea> = members
        .into_values()
        .map(|units| {
            let polys: Vec<&MultiPolygon<f64>> =
                units.iter().map(|&u| &ds.boundaries.areas[area_of[u as usize] as usize].geometry).collect();
            let shape = if polys.len() == 1 { polys[0].clone() } else { geo::unary_union(polys.iter().copied()) };
            let households: u64 =
                units.iter().map(|&u| (cov[u as usize].households - cov[u as usize].covered_households) as u64).sum();
            let veterans: u64 =
                units.iter().map(|&u| (cov[u as usize].veterans - cov[u as usize].covered_veterans) as u64).sum();
            let centre = shape.centroid().map_or((f64::NAN, f64::NAN), |p| (p.x(), p.y()));
            let codes = core::array::from_fn(|l| {
                let level = Level::ALL[l];
                let mut best: Option<(u64, UnitIdx)> = None;
                for &u in &units {
                    let Some(a) = ds.divisions.ancestor(u, level) else { continue };
                    let w: u64 = units
                        .iter()
                        .filter(|&&v| ds.divisions.ancestor(v, level) == Some(a))
                        .map(|&v| (cov[v as usize].veterans - cov[v as usize].covered_veterans) as u64)
                        .sum();
                    if best.is_none_or(|(bw, bu)| w > bw || (w == bw && a < bu)) {
                        best = Some((w, a));
                    }
                }
                best.map_or(NO_UNIT, |(_, a)| a)
            });
            let nearest_station = if centre.0.is_finite() {
                let p = to_unit(centre.0, centre.1);
                Level::ALL
                    .iter()
                    .filter_map(|&l| an.indexes.stations.nearest(l, p))
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                    .map(|(s, c2)| (s, chord_2_to_m(c2)))
            } else {
                None
            };
            GapArea { rank: 0, units, shape, households, veterans, centre, codes, nearest_station }
        })
        .collect();
    out.sort_by(|a, b| b.veterans.cmp(&a.veterans).then(a.units[0].cmp(&b.units[0])));
    for (i, g) in out.iter_mut().enumerate() {
        g.rank = i as u32 + 1;
    }
    out
}
