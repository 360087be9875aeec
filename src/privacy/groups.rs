//! One partition of the households into groups of at least `k`, on H3 cells (pure).
//!
//! Households are counted in the H3 cells of the policy's resolution (8). A cell with at
//! least `k` households is a group. The cells with fewer are merged with the small cells that
//! share their parent, then grandparent, …, until the merged set holds `k`; what is still under
//! `k` at resolution 0 is withheld ([`Groups::withheld`]). A group is named and drawn by the
//! cell it stands for (the cell itself, or the ancestor its small cells merged under): one
//! hexagon, never its member cells, so its shape says nothing of where in it anyone lives.
//!
//! Every household view of the roles without household access is made of whole groups:
//! household cells at every zoom ([`Groups::display`] sums the groups under each displayed
//! cell), the `code` and `bbox` filters (a group has one admin unit and one hexagon), and the
//! population of plans and what-ifs ([`super::demand`]). So no two answers differ by a part of
//! a group.

use std::collections::{BTreeMap, HashMap};

use geo::{LineString, Polygon};
use h3o::{CellIndex, LatLng, Resolution};

use crate::analysis::Assignment;
use crate::model::{Dataset, Divisions, Households, Level, UnitIdx, NO_UNIT};

/// One group of households.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The cell it stands for (its id, and its shape).
    pub key: CellIndex,
    /// Its households (indexes into the data set, ascending).
    pub households: Vec<u32>,
    /// Veterans in them.
    pub veterans: u64,
    /// The village (or finest unit) most of its households belong to ([`NO_UNIT`] when none).
    pub unit: UnitIdx,
    /// Mean position of its households, each counted at the centre of its cell of the policy's
    /// resolution, lon/lat (the group's place in plans and what-ifs).
    pub centre: (f64, f64),
}

/// The groups of a data set.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Resolution of the counted cells.
    pub resolution: u8,
    /// The groups, ordered by key.
    pub groups: Vec<Group>,
    /// Households left out: under `k` even merged up to resolution 0.
    pub withheld: u64,
}

/// Figures of a displayed cell (a group, or the groups under a coarser cell).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CellFigures {
    /// Households.
    pub households: u64,
    /// Veterans.
    pub veterans: u64,
    /// Households within reach of a station (None: withheld).
    pub covered_households: Option<u64>,
    /// Veterans within reach of a station (None: withheld).
    pub covered_veterans: Option<u64>,
}

/// A displayed cell: a cell of the display resolution with the groups under it, or a group
/// of a coarser key.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayCell {
    /// The cell drawn (id and shape).
    pub key: CellIndex,
    /// The groups it sums (indexes into [`Groups::groups`]).
    pub groups: Vec<u32>,
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

/// The finest unit most of `members` belong to (ties: the lower index).
fn majority_unit(asg: &Assignment, members: &[u32]) -> UnitIdx {
    let mut n: HashMap<UnitIdx, usize> = HashMap::new();
    for &h in members {
        let u = asg.unit.get(h as usize).copied().unwrap_or(NO_UNIT);
        if u != NO_UNIT {
            *n.entry(u).or_default() += 1;
        }
    }
    n.into_iter().max_by_key(|&(u, c)| (c, std::cmp::Reverse(u))).map_or(NO_UNIT, |(u, _)| u)
}

impl Groups {
    /// Groups the households of `ds` (assigned as `asg`) into groups of at least `k` at
    /// `resolution`.
    pub fn build(ds: &Dataset, asg: &Assignment, k: u64, resolution: u8) -> Groups {
        let hh: &Households = &ds.households;
        let res = Resolution::try_from(resolution.min(15)).expect("resolution within 0..=15");
        let mut cells: HashMap<CellIndex, Vec<u32>> = HashMap::new();
        let mut cell_of: Vec<Option<CellIndex>> = vec![None; hh.len()];
        for (h, slot) in cell_of.iter_mut().enumerate() {
            let Ok(ll) = LatLng::new(hh.lat[h], hh.lon[h]) else { continue };
            let c = ll.to_cell(res);
            *slot = Some(c);
            cells.entry(c).or_default().push(h as u32);
        }
        let mut sorted: Vec<(CellIndex, Vec<u32>)> = cells.into_iter().collect();
        sorted.sort_unstable_by_key(|(c, _)| *c);
        let mut out: Vec<(CellIndex, Vec<u32>)> = Vec::new();
        let mut small: BTreeMap<CellIndex, Vec<u32>> = BTreeMap::new();
        for (c, members) in sorted {
            if members.len() as u64 >= k {
                out.push((c, members));
            } else {
                small.insert(c, members);
            }
        }
        let mut r = u8::from(res);
        while !small.is_empty() && r > 0 {
            r -= 1;
            let pr = Resolution::try_from(r).expect("valid resolution");
            let mut next: BTreeMap<CellIndex, Vec<u32>> = BTreeMap::new();
            for (c, members) in std::mem::take(&mut small) {
                next.entry(c.parent(pr).expect("coarser resolution")).or_default().extend(members);
            }
            for (c, members) in next {
                if members.len() as u64 >= k {
                    out.push((c, members));
                } else {
                    small.insert(c, members);
                }
            }
        }
        let withheld = small.values().map(|m| m.len() as u64).sum();
        out.sort_by_key(|(c, _)| *c);
        let groups = out
            .into_iter()
            .map(|(key, mut households)| {
                households.sort_unstable();
                let n = households.len() as f64;
                // Each household counts at the centre of its cell: no position finer than a cell
                // enters the group's centre.
                let (sx, sy) = households.iter().fold((0.0, 0.0), |(x, y), &h| {
                    let c = cell_of[h as usize].map_or((hh.lon[h as usize], hh.lat[h as usize]), |c| {
                        let ll = LatLng::from(c);
                        (ll.lng(), ll.lat())
                    });
                    (x + c.0, y + c.1)
                });
                Group {
                    key,
                    veterans: households.iter().map(|&h| u64::from(hh.veterans[h as usize])).sum(),
                    unit: majority_unit(asg, &households),
                    centre: (sx / n, sy / n),
                    households,
                }
            })
            .collect();
        Groups { resolution: u8::from(res), groups, withheld }
    }

    /// The group with this id (H3 index in hexadecimal).
    pub fn find(&self, id: &str) -> Option<u32> {
        let key: CellIndex = id.parse().ok()?;
        self.groups.binary_search_by_key(&key, |g| g.key).ok().map(|i| i as u32)
    }

    /// The cells drawn at display resolution `r` (at most the groups' resolution): each group
    /// whose key is at `r` or coarser as itself, the others summed under their ancestor at `r`.
    /// Coarser cells come first, so that finer ones are drawn over them.
    pub fn display(&self, r: u8) -> Vec<DisplayCell> {
        let res = Resolution::try_from(r.min(self.resolution)).expect("valid resolution");
        let mut by_key: BTreeMap<(u8, CellIndex), Vec<u32>> = BTreeMap::new();
        for (i, g) in self.groups.iter().enumerate() {
            let key = if g.key.resolution() > res { g.key.parent(res).expect("coarser") } else { g.key };
            by_key.entry((u8::from(key.resolution()), key)).or_default().push(i as u32);
        }
        by_key.into_iter().map(|((_, key), groups)| DisplayCell { key, groups }).collect()
    }

    /// The figures of a displayed cell: households and veterans always (every group holds at
    /// least `k`); the covered ones only where every group under it has `0` or at least `k`
    /// covered and uncovered households — then their sum says no more than the groups do.
    pub fn figures(&self, cell: &DisplayCell, hh: &Households, asg: &Assignment, k: u64) -> CellFigures {
        let ok = |x: u64| x == 0 || x >= k;
        let mut f = CellFigures { covered_households: Some(0), covered_veterans: Some(0), ..Default::default() };
        for &g in &cell.groups {
            let g = &self.groups[g as usize];
            f.households += g.households.len() as u64;
            f.veterans += g.veterans;
            let (mut ch, mut cv) = (0u64, 0u64);
            for &h in &g.households {
                if asg.covered[h as usize] != 0 {
                    ch += 1;
                    cv += u64::from(hh.veterans[h as usize]);
                }
            }
            if ok(ch) && ok(g.households.len() as u64 - ch) {
                f.covered_households = f.covered_households.map(|x| x + ch);
                f.covered_veterans = f.covered_veterans.map(|x| x + cv);
            } else {
                f.covered_households = None;
                f.covered_veterans = None;
            }
        }
        f
    }

    /// The admin code of a displayed cell: the unit of its first group.
    pub fn unit_of(&self, cell: &DisplayCell) -> UnitIdx {
        cell.groups.first().map_or(NO_UNIT, |&g| self.groups[g as usize].unit)
    }

    /// The unit of `level` of a group's unit.
    pub fn unit_at(&self, divisions: &Divisions, g: u32, level: Level) -> Option<UnitIdx> {
        let u = self.groups[g as usize].unit;
        (u != NO_UNIT).then(|| divisions.ancestor(u, level)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HouseholdRow;

    fn dataset(points: &[(f64, f64)]) -> (Dataset, Assignment) {
        let mut ds = Dataset::default();
        for (i, &(lon, lat)) in points.iter().enumerate() {
            ds.households.push(HouseholdRow { id: format!("H{i}"), lon, lat, veterans: 2, ..Default::default() });
        }
        let asg = Assignment {
            covered: (0..points.len()).map(|i| (i % 2) as u8).collect(),
            unit: vec![NO_UNIT; points.len()],
            ..Default::default()
        };
        (ds, asg)
    }

    #[test]
    fn big_cells_are_groups_small_ones_merge_or_are_withheld() {
        // Seven households in one cell, three in a cell 1 km away, one far away.
        let mut pts = vec![(103.80, 36.06); 7];
        pts.extend([(103.81, 36.06); 3]);
        pts.push((90.0, 10.0));
        let (ds, asg) = dataset(&pts);
        let g = Groups::build(&ds, &asg, 5, 8);
        assert!(g.groups.iter().all(|x| x.households.len() >= 5));
        let total: usize = g.groups.iter().map(|x| x.households.len()).sum();
        assert_eq!(total as u64 + g.withheld, 11);
        // The seven alone are a group at resolution 8 at their own place.
        let seven = g.groups.iter().find(|x| u8::from(x.key.resolution()) == 8).unwrap();
        assert_eq!(seven.households, (0..7).collect::<Vec<u32>>());
        assert_eq!(seven.veterans, 14);
        // Its place is its cell's centre, not the households' own point.
        let c = LatLng::from(seven.key);
        assert!((seven.centre.0 - c.lng()).abs() < 1e-12 && (seven.centre.1 - c.lat()).abs() < 1e-12);
        // The three merge with nobody near enough before some coarse parent takes in the far
        // one too, or are withheld; either way no group is under five.
        assert_eq!(g.find(&seven.key.to_string()), Some(g.groups.iter().position(|x| x == seven).unwrap() as u32));
        assert!(g.find("nonsense").is_none());
    }

    /// The centres of two resolution-8 cells with one resolution-7 parent.
    fn sibling_centres() -> [(f64, f64); 2] {
        let p7 = LatLng::new(36.06, 103.8).unwrap().to_cell(Resolution::Seven);
        let kids: Vec<(f64, f64)> = p7
            .children(Resolution::Eight)
            .take(2)
            .map(|c| {
                let ll = LatLng::from(c);
                (ll.lng(), ll.lat())
            })
            .collect();
        [kids[0], kids[1]]
    }

    #[test]
    fn small_neighbours_merge_under_one_cell_drawn_as_one_hexagon() {
        let [a, b] = sibling_centres();
        let mut pts = vec![a; 3];
        pts.extend([b; 3]);
        let (ds, asg) = dataset(&pts);
        let g = Groups::build(&ds, &asg, 5, 8);
        assert_eq!(g.withheld, 0);
        assert_eq!(g.groups.len(), 1);
        let one = &g.groups[0];
        assert_eq!(one.households.len(), 6);
        assert!(u8::from(one.key.resolution()) < 8);
        // Every member lies in the group's cell.
        for &(lon, lat) in &pts {
            let c = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eight);
            assert_eq!(c.parent(one.key.resolution()), Some(one.key));
        }
        let p = cell_polygon(one.key);
        assert_eq!(p.exterior().0.first(), p.exterior().0.last());
    }

    #[test]
    fn display_sums_whole_groups_and_withholds_a_small_covered_split() {
        // Two groups of six in neighbouring resolution-8 cells.
        let [a, b] = sibling_centres();
        let mut pts = vec![a; 6];
        pts.extend([b; 6]);
        let (ds, mut asg) = dataset(&pts);
        // First group: 3 covered, 3 not (both under 5: withheld). Second: all covered.
        asg.covered = vec![1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1];
        let g = Groups::build(&ds, &asg, 5, 8);
        assert_eq!(g.groups.len(), 2);
        let fine = g.display(8);
        assert_eq!(fine.len(), 2);
        let f0 = g.figures(&fine[0], &ds.households, &asg, 5);
        let f1 = g.figures(&fine[1], &ds.households, &asg, 5);
        let (split, whole) = if f0.covered_households.is_none() { (f0, f1) } else { (f1, f0) };
        assert_eq!(split.households, 6);
        assert_eq!(split.covered_households, None);
        assert_eq!(whole.covered_households, Some(6));
        assert_eq!(whole.covered_veterans, Some(12));
        // Coarser: one cell summing both; its covered split is withheld too, since one group's
        // is (else the coarse figure minus the shown fine one would give it away).
        let coarse = g.display(5);
        assert_eq!(coarse.len(), 1);
        let fc = g.figures(&coarse[0], &ds.households, &asg, 5);
        assert_eq!((fc.households, fc.veterans, fc.covered_households), (12, 24, None));
    }
}
