//! Households as counts in hexagonal cells (H3), for leaders and planners (pure).
//!
//! Households are counted in the H3 cells of one resolution. A cell with fewer than
//! [`MIN_HOUSEHOLDS`] households is not shown alone: the small cells that share a parent
//! are merged into one aggregate (drawn as those cells together) and, while still under the
//! threshold, merged again with the small cells of the grandparent, and so on. An aggregate
//! still under the threshold at resolution 0 is withheld ([`Aggregates::withheld`]). No
//! aggregate carries a household's id or position; its id is the H3 index of the cell it
//! stands for (the cell itself, or the parent its small cells merged under).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use geo::{LineString, MultiPolygon, Polygon};
use h3o::{CellIndex, LatLng, Resolution};

use super::geom::Bbox;
use crate::analysis::Assignment;
use crate::model::Households;

/// Fewest households a shown cell may hold.
pub const MIN_HOUSEHOLDS: u64 = 5;
/// Finest resolution used (H3 resolution 9: edges of about 174 m).
pub const FINEST: u8 = 9;

/// One shown aggregate: a cell, or small cells merged under a common ancestor.
#[derive(Debug, Clone, PartialEq)]
pub struct CellAgg {
    /// The cell it stands for (the cell itself, or the ancestor its members merged under).
    pub key: CellIndex,
    /// The cells drawn (at the aggregation's resolution).
    pub members: Vec<CellIndex>,
    /// Households in it.
    pub households: u64,
    /// Veterans in them.
    pub veterans: u64,
    /// Households within reach of a station.
    pub covered_households: u64,
    /// Veterans within reach of a station.
    pub covered_veterans: u64,
    /// Bounding box of its members, lon/lat.
    pub bbox: Bbox,
}

impl CellAgg {
    /// Its shape: the member hexagons.
    pub fn geometry(&self) -> MultiPolygon<f64> {
        MultiPolygon(self.members.iter().map(|c| cell_polygon(*c)).collect())
    }
}

/// The aggregates of one resolution.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    /// H3 resolution of the counted cells.
    pub resolution: u8,
    /// Shown aggregates, ordered by key.
    pub cells: Vec<CellAgg>,
    /// Households left out because even merged up to resolution 0 they stayed under the
    /// threshold.
    pub withheld: u64,
}

impl Aggregates {
    /// The aggregate with this id (H3 index in hexadecimal).
    pub fn find(&self, id: &str) -> Option<&CellAgg> {
        let key: CellIndex = id.parse().ok()?;
        self.cells.iter().find(|c| c.key == key)
    }
}

/// The hexagon (or pentagon) of a cell as a lon/lat polygon.
pub fn cell_polygon(c: CellIndex) -> Polygon<f64> {
    let b = c.boundary();
    let mut pts: Vec<(f64, f64)> = b.iter().map(|ll| (ll.lng(), ll.lat())).collect();
    if let Some(&f) = pts.first() {
        pts.push(f);
    }
    Polygon::new(LineString::from(pts), vec![])
}

#[derive(Default, Clone, Copy)]
struct Sums {
    households: u64,
    veterans: u64,
    covered_households: u64,
    covered_veterans: u64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.households += o.households;
        self.veterans += o.veterans;
        self.covered_households += o.covered_households;
        self.covered_veterans += o.covered_veterans;
    }
}

/// Aggregates the households `which` at `resolution` (at most [`FINEST`]).
pub fn aggregate(hh: &Households, asg: &Assignment, which: impl Iterator<Item = u32>, resolution: u8) -> Aggregates {
    let res = Resolution::try_from(resolution.min(FINEST)).expect("resolution within 0..=15");
    let mut counts: HashMap<CellIndex, Sums> = HashMap::new();
    for h in which {
        let i = h as usize;
        let Ok(ll) = LatLng::new(hh.lat[i], hh.lon[i]) else { continue };
        let e = counts.entry(ll.to_cell(res)).or_default();
        let v = u64::from(hh.veterans[i]);
        e.households += 1;
        e.veterans += v;
        if asg.covered[i] != 0 {
            e.covered_households += 1;
            e.covered_veterans += v;
        }
    }
    let mut out = Vec::new();
    // Small groups: key (at the current resolution) → members and sums.
    let mut small: BTreeMap<CellIndex, (Vec<CellIndex>, Sums)> = BTreeMap::new();
    let mut sorted: Vec<(CellIndex, Sums)> = counts.into_iter().collect();
    sorted.sort_unstable_by_key(|(c, _)| *c);
    for (c, s) in sorted {
        if s.households >= MIN_HOUSEHOLDS {
            out.push(make(c, vec![c], s));
        } else {
            small.insert(c, (vec![c], s));
        }
    }
    let mut r = u8::from(res);
    while !small.is_empty() && r > 0 {
        r -= 1;
        let pr = Resolution::try_from(r).expect("valid resolution");
        let mut next: BTreeMap<CellIndex, (Vec<CellIndex>, Sums)> = BTreeMap::new();
        for (k, (members, s)) in std::mem::take(&mut small) {
            let p = k.parent(pr).expect("coarser resolution");
            let e = next.entry(p).or_default();
            e.0.extend(members);
            e.1.add(&s);
        }
        for (k, (members, s)) in next {
            if s.households >= MIN_HOUSEHOLDS {
                out.push(make(k, members, s));
            } else {
                small.insert(k, (members, s));
            }
        }
    }
    let withheld = small.values().map(|(_, s)| s.households).sum();
    out.sort_by_key(|c| c.key);
    Aggregates { resolution: u8::from(res), cells: out, withheld }
}

fn make(key: CellIndex, mut members: Vec<CellIndex>, s: Sums) -> CellAgg {
    members.sort_unstable();
    let mut bbox = Bbox::EMPTY;
    for m in &members {
        for ll in m.boundary().iter() {
            bbox = bbox.union(&Bbox::new(ll.lng(), ll.lat(), ll.lng(), ll.lat()));
        }
    }
    CellAgg {
        key,
        members,
        households: s.households,
        veterans: s.veterans,
        covered_households: s.covered_households,
        covered_veterans: s.covered_veterans,
        bbox,
    }
}

/// H3 resolution of the cells drawn at a tile zoom (cells of roughly 10 to 30 screen pixels).
pub fn resolution_for_zoom(z: u8) -> u8 {
    match z {
        0..=3 => 2,
        4 => 3,
        5..=6 => 4,
        7 => 5,
        8..=9 => 6,
        10 => 7,
        11..=12 => 8,
        _ => FINEST,
    }
}

/// The aggregates of all households, per resolution, computed on first use.
#[derive(Default)]
pub struct CellCache {
    by_res: Mutex<HashMap<u8, Arc<Aggregates>>>,
}

impl CellCache {
    /// The aggregates of every household at `resolution`.
    pub fn get(&self, hh: &Households, asg: &Assignment, resolution: u8) -> Arc<Aggregates> {
        if let Some(a) = self.by_res.lock().unwrap_or_else(|e| e.into_inner()).get(&resolution) {
            return a.clone();
        }
        let a = Arc::new(aggregate(hh, asg, 0..hh.len() as u32, resolution));
        self.by_res.lock().unwrap_or_else(|e| e.into_inner()).insert(resolution, a.clone());
        a
    }

    /// Forgets every aggregation (after the households changed).
    pub fn clear(&self) {
        self.by_res.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HouseholdRow;

    fn households(points: &[(f64, f64)]) -> (Households, Assignment) {
        let mut hh = Households::default();
        for (i, &(lon, lat)) in points.iter().enumerate() {
            hh.push(HouseholdRow { id: format!("H{i}"), lon, lat, veterans: 2, ..Default::default() });
        }
        let asg = Assignment { covered: (0..points.len()).map(|i| (i % 2) as u8).collect(), ..Default::default() };
        (hh, asg)
    }

    #[test]
    fn big_cells_shown_small_cells_merged_or_withheld() {
        // Seven households in one res-9 cell, three in a cell 1 km away, one far away.
        let mut pts = vec![(103.80, 36.06); 7];
        pts.extend([(103.81, 36.06); 3]);
        pts.push((90.0, 10.0));
        let (hh, asg) = households(&pts);
        let a = aggregate(&hh, &asg, 0..pts.len() as u32, 9);
        let total: u64 = a.cells.iter().map(|c| c.households).sum();
        // Every shown aggregate has at least five households; the three and the one are too
        // few even together with their neighbours, so they are withheld.
        assert!(a.cells.iter().all(|c| c.households >= MIN_HOUSEHOLDS));
        assert_eq!(a.cells.len(), 1);
        assert_eq!(a.cells[0].households, 7);
        assert_eq!(a.cells[0].veterans, 14);
        assert_eq!(a.cells[0].covered_households, 3);
        assert_eq!(total + a.withheld, 11);
        assert_eq!(a.withheld, 4);
    }

    #[test]
    fn small_neighbours_merge_under_a_parent() {
        // 3 + 3 households in two res-9 cells about 300 m apart (same res-7 parent, most
        // likely; the test checks the merge whatever the level).
        let mut pts = vec![(103.800, 36.060); 3];
        pts.extend([(103.803, 36.060); 3]);
        let (hh, asg) = households(&pts);
        let a = aggregate(&hh, &asg, 0..6, 9);
        assert_eq!(a.withheld, 0);
        assert_eq!(a.cells.len(), 1);
        let c = &a.cells[0];
        assert_eq!(c.households, 6);
        assert_eq!(c.members.len(), 2);
        assert!(u8::from(c.key.resolution()) < 9);
        for m in &c.members {
            assert_eq!(m.parent(c.key.resolution()), Some(c.key));
        }
        assert_eq!(a.find(&c.key.to_string()), Some(c));
        assert!(a.find("nonsense").is_none());
    }

    #[test]
    fn polygons_close() {
        let c = LatLng::new(36.06, 103.8).unwrap().to_cell(Resolution::Nine);
        let p = cell_polygon(c);
        assert_eq!(p.exterior().0.len(), 7);
        assert_eq!(p.exterior().0.first(), p.exterior().0.last());
    }
}
