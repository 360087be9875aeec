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
//! population of plans and what-ifs ([`super::demand`]). So no two answers differ by less than
//! a group's [`Part`].
//!
//! **Parts.** A group merged under a coarse cell can spread over tens of kilometres of sparse
//! country; one demand point at its mean would put a plan's station in the middle of nowhere.
//! So a merged group is split, for plans and what-ifs only, into compact parts of at least `k`
//! households each, made of whole resolution-8 cells: the cells are taken farthest-first from
//! the group's centre, each seeds a part that grows by its nearest cells until it holds `k`,
//! and the last few cells (fewer than `k` households) join the part whose nearest cell is
//! nearest. A part is still a sum of whole cells of at least `k` households at the mean of its
//! cells' centres, so the promise is the same; the map still draws and counts the whole group.

use std::collections::{BTreeMap, HashMap};

use geo::{LineString, Polygon};
use h3o::{CellIndex, LatLng, Resolution};
use rstar::primitives::GeomWithData;
use rstar::RTree;

use crate::analysis::Assignment;
use crate::model::{Dataset, Divisions, Households, Level, UnitIdx, NONE, NO_UNIT};

/// Cells of the policy's resolution, each with its households (ascending).
type Cells<'a> = Vec<(CellIndex, &'a [u32])>;

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
    /// resolution, lon/lat.
    pub centre: (f64, f64),
    /// Its compact parts of at least `k` households each (one, the whole group, for a group of
    /// one cell): the demand points of plans and what-ifs.
    pub parts: Vec<Part>,
}

/// A part of a group: whole cells of the policy's resolution holding at least `k` households
/// together, the place a plan or a what-if sees them at.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Its cells of the policy's resolution (ascending).
    pub cells: Vec<CellIndex>,
    /// Households in them.
    pub households: u32,
    /// Veterans in them.
    pub veterans: u64,
    /// Mean position of its households, each counted at the centre of its cell, lon/lat.
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

/// The centre of a cell, lon/lat.
fn centre_of(c: CellIndex) -> (f64, f64) {
    let ll = LatLng::from(c);
    (ll.lng(), ll.lat())
}

/// The part made of `cells` (indexes into `members`).
fn part_of(members: &[(CellIndex, &[u32])], cells: &mut [usize], hh: &Households) -> Part {
    cells.sort_unstable();
    let (mut n, mut veterans, mut sx, mut sy) = (0u32, 0u64, 0.0, 0.0);
    for &i in cells.iter() {
        let (c, h) = &members[i];
        let (x, y) = centre_of(*c);
        let m = h.len() as u32;
        n += m;
        veterans += h.iter().map(|&h| u64::from(hh.veterans[h as usize])).sum::<u64>();
        sx += f64::from(m) * x;
        sy += f64::from(m) * y;
    }
    Part {
        cells: cells.iter().map(|&i| members[i].0).collect(),
        households: n,
        veterans,
        centre: (sx / f64::from(n), sy / f64::from(n)),
    }
}

/// Splits a group's member cells (ascending, holding at least `k` households together) into
/// compact parts of at least `k` households (module docs): farthest-first seeds from the
/// group's centre, each growing by its nearest free cells; the rest, under `k`, joins the part
/// of its nearest taken cell. Distances in a local plane (longitude scaled by the cosine of
/// the group's latitude), ties broken by cell order, so the split is deterministic.
fn split(members: &[(CellIndex, &[u32])], hh: &Households, k: u64) -> Vec<Part> {
    let size = |i: usize| members[i].1.len() as u64;
    let total: u64 = (0..members.len()).map(size).sum();
    if members.len() == 1 || total < 2 * k {
        // One cell, or too few households for two parts: the whole group.
        return vec![part_of(members, &mut (0..members.len()).collect::<Vec<_>>(), hh)];
    }
    let lat0 = members.iter().map(|(c, _)| centre_of(*c).1).sum::<f64>() / members.len() as f64;
    let kx = lat0.to_radians().cos();
    let xy: Vec<[f64; 2]> = members
        .iter()
        .map(|(c, _)| {
            let (x, y) = centre_of(*c);
            [x * kx, y]
        })
        .collect();
    let (mx, my) =
        (0..members.len()).fold((0.0, 0.0), |(x, y), i| (x + size(i) as f64 * xy[i][0], y + size(i) as f64 * xy[i][1]));
    let mean = [mx / total as f64, my / total as f64];
    let d2 = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let mut seeds: Vec<usize> = (0..members.len()).collect();
    seeds.sort_by(|&a, &b| d2(xy[b], mean).total_cmp(&d2(xy[a], mean)).then(a.cmp(&b)));
    let mut free: RTree<GeomWithData<[f64; 2], usize>> =
        RTree::bulk_load((0..members.len()).map(|i| GeomWithData::new(xy[i], i)).collect());
    let mut part_of_cell: Vec<Option<usize>> = vec![None; members.len()];
    let mut parts: Vec<Vec<usize>> = Vec::new();
    let mut left = total;
    for &seed in &seeds {
        if left < k {
            break;
        }
        if part_of_cell[seed].is_some() {
            continue;
        }
        // The seed and its nearest free cells (ties by cell order) until the part holds `k`.
        let mut near: Vec<(f64, usize)> = Vec::new();
        let mut held = 0u64;
        for e in free.nearest_neighbor_iter_with_distance_2(&xy[seed]) {
            if held >= k && e.1 > near.last().map_or(f64::INFINITY, |l: &(f64, usize)| l.0) {
                break;
            }
            near.push((e.1, e.0.data));
            held += size(e.0.data);
        }
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut part = Vec::new();
        let mut n = 0u64;
        for &(_, i) in &near {
            if n >= k {
                break;
            }
            part.push(i);
            n += size(i);
        }
        for &i in &part {
            free.remove(&GeomWithData::new(xy[i], i));
            part_of_cell[i] = Some(parts.len());
        }
        left -= n;
        parts.push(part);
    }
    // What is left (fewer than `k` households) joins the part of its nearest taken cell.
    let taken: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        (0..members.len()).filter(|&i| part_of_cell[i].is_some()).map(|i| GeomWithData::new(xy[i], i)).collect(),
    );
    for i in 0..members.len() {
        if part_of_cell[i].is_none() {
            let mut best: Option<(f64, usize)> = None;
            for e in taken.nearest_neighbor_iter_with_distance_2(&xy[i]) {
                if best.is_some_and(|b| e.1 > b.0) {
                    break;
                }
                if best.is_none_or(|b| e.0.data < b.1) {
                    best = Some((e.1, e.0.data));
                }
            }
            let (_, j) = best.expect("a group holds k households, so some cell is taken");
            let p = part_of_cell[j].expect("taken");
            parts[p].push(i);
        }
    }
    parts.into_iter().map(|mut p| part_of(members, &mut p, hh)).collect()
}

/// The households of every cell of one resolution: the cells ascending, each with its
/// households ascending (a household whose position is no valid lat/lon is in none).
struct ByCell {
    cells: Vec<CellIndex>,
    /// Where each cell's households start in `order` (one more entry than `cells`).
    start: Vec<u32>,
    order: Vec<u32>,
}

impl ByCell {
    /// Counted, not pushed: from the cell of every household ([`household_cells`]), the
    /// distinct cells by sorting stretches of them in parallel and merging, then every
    /// household's rank among them (4 bytes a household, the cells' list freed at once) and
    /// one counting pass lay out the lists.
    fn from_cells(cell: Vec<u64>) -> ByCell {
        use rayon::prelude::*;
        const STRETCH: usize = 1 << 16;
        // All of one resolution, so the order of their `u64`s is the cells' order.
        let mut distinct: Vec<u64> = cell
            .par_chunks(STRETCH)
            .map(|c| {
                let mut v = c.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            })
            .reduce(Vec::new, merge_distinct);
        if distinct.first() == Some(&0) {
            distinct.remove(0);
        }
        // Each household's rank among the cells (NONE: no cell). Households near one another
        // in the data often share a cell: the last one found is tried first.
        let mut rank = vec![NONE; cell.len()];
        rank.par_chunks_mut(STRETCH).zip(cell.par_chunks(STRETCH)).for_each(|(r, c)| {
            let mut last = (0u64, NONE);
            for (r, &c) in r.iter_mut().zip(c) {
                if c == 0 {
                    continue;
                }
                if c != last.0 {
                    let i = distinct.binary_search(&c).expect("every household's cell is listed");
                    last = (c, i as u32);
                }
                *r = last.1;
            }
        });
        drop(cell);
        let mut start = vec![0u32; distinct.len() + 1];
        for &r in &rank {
            if r != NONE {
                start[r as usize + 1] += 1;
            }
        }
        for i in 0..distinct.len() {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut order = vec![0u32; start[distinct.len()] as usize];
        for (h, &r) in rank.iter().enumerate() {
            if r != NONE {
                let f = &mut fill[r as usize];
                order[*f as usize] = h as u32;
                *f += 1;
            }
        }
        let cells = distinct.into_iter().map(|c| CellIndex::try_from(c).expect("an H3 cell index")).collect();
        ByCell { cells, start, order }
    }

    /// The households of cell `i`.
    fn of(&self, i: usize) -> &[u32] {
        &self.order[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// The H3 cell at `resolution` of every household, as its `u64` (0, no cell's index: a
/// household whose position is no valid lat/lon), found in parallel: what [`Groups::build`]
/// counts, 8 bytes a household. It depends on the positions alone, so a caller may keep it
/// (the server does, [`crate::store::Store::household_cells`]) and give it to
/// [`Groups::build_from_cells`].
pub fn household_cells(hh: &Households, resolution: u8) -> Vec<u64> {
    use rayon::prelude::*;
    let res = Resolution::try_from(resolution.min(15)).expect("resolution within 0..=15");
    (0..hh.len())
        .into_par_iter()
        .with_min_len(1 << 12)
        .map(|h| LatLng::new(hh.lat[h], hh.lon[h]).map_or(0, |ll| u64::from(ll.to_cell(res))))
        .collect()
}

/// True when every one of `cells` is 0 or an H3 cell index of `resolution`: what a kept copy
/// of [`household_cells`] must be to be used.
pub fn cells_of_resolution(cells: &[u64], resolution: u8) -> bool {
    use rayon::prelude::*;
    let Ok(res) = Resolution::try_from(resolution.min(15)) else { return false };
    cells.par_iter().all(|&c| c == 0 || CellIndex::try_from(c).is_ok_and(|c| c.resolution() == res))
}

/// The union of two ascending lists without repeats, ascending without repeats.
fn merge_distinct(a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl Groups {
    /// Groups the households of `ds` (assigned as `asg`) into groups of at least `k` at
    /// `resolution`, each split into its [`Part`]s.
    ///
    /// In parallel where it counts (the households' cells, [`household_cells`], laid out by
    /// cell; each group's parts, unit and list), with the result of the one-thread rule: the
    /// merging up the resolutions is done in one pass, and each group is made from its own
    /// cells only, in key order.
    pub fn build(ds: &Dataset, asg: &Assignment, k: u64, resolution: u8) -> Groups {
        Self::build_from_cells(ds, asg, k, resolution, household_cells(&ds.households, resolution))
    }

    /// [`Groups::build`], given the households' cells ([`household_cells`] of the same
    /// households and resolution).
    pub fn build_from_cells(ds: &Dataset, asg: &Assignment, k: u64, resolution: u8, cells: Vec<u64>) -> Groups {
        use rayon::prelude::*;
        let hh: &Households = &ds.households;
        assert_eq!(cells.len(), hh.len(), "a cell for every household");
        let res = Resolution::try_from(resolution.min(15)).expect("resolution within 0..=15");
        let by_cell = ByCell::from_cells(cells);
        // Each group as its key and its member cells (with their households).
        let mut out: Vec<(CellIndex, Cells)> = Vec::new();
        let mut small: BTreeMap<CellIndex, Cells> = BTreeMap::new();
        for (i, &c) in by_cell.cells.iter().enumerate() {
            let members = by_cell.of(i);
            if members.len() as u64 >= k {
                out.push((c, vec![(c, members)]));
            } else {
                small.insert(c, vec![(c, members)]);
            }
        }
        let count = |m: &[(CellIndex, &[u32])]| m.iter().map(|(_, h)| h.len() as u64).sum::<u64>();
        let mut r = u8::from(res);
        while !small.is_empty() && r > 0 {
            r -= 1;
            let pr = Resolution::try_from(r).expect("valid resolution");
            let mut next: BTreeMap<CellIndex, Cells> = BTreeMap::new();
            for (c, members) in std::mem::take(&mut small) {
                next.entry(c.parent(pr).expect("coarser resolution")).or_default().extend(members);
            }
            for (c, members) in next {
                if count(&members) >= k {
                    out.push((c, members));
                } else {
                    small.insert(c, members);
                }
            }
        }
        let withheld = small.values().map(|m| count(m)).sum();
        out.sort_by_key(|(c, _)| *c);
        let groups = out
            .into_par_iter()
            .with_min_len(64)
            .map(|(key, mut members)| {
                members.sort_unstable_by_key(|(c, _)| *c);
                let parts = split(&members, hh, k);
                // Exactly as long as it needs (the group's list is kept as long as the server
                // runs).
                let mut households: Vec<u32> = Vec::with_capacity(members.iter().map(|(_, h)| h.len()).sum());
                for (_, h) in &members {
                    households.extend_from_slice(h);
                }
                households.sort_unstable();
                let n: u64 = parts.iter().map(|p| u64::from(p.households)).sum();
                let (sx, sy) = parts.iter().fold((0.0, 0.0), |(x, y), p| {
                    let w = f64::from(p.households);
                    (x + w * p.centre.0, y + w * p.centre.1)
                });
                Group {
                    key,
                    veterans: parts.iter().map(|p| p.veterans).sum(),
                    unit: majority_unit(asg, &households),
                    centre: (sx / n as f64, sy / n as f64),
                    households,
                    parts,
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
        use rayon::prelude::*;
        let res = Resolution::try_from(r.min(self.resolution)).expect("valid resolution");
        // Each group's cell, then sorted by (resolution, cell, group) in parallel: the order a
        // map of cells to their groups, filled group by group, gives (millions of groups at
        // national scale).
        let mut keyed: Vec<((u8, CellIndex), u32)> = self
            .groups
            .par_iter()
            .enumerate()
            .map(|(i, g)| {
                let key = if g.key.resolution() > res { g.key.parent(res).expect("coarser") } else { g.key };
                ((u8::from(key.resolution()), key), i as u32)
            })
            .collect();
        keyed.par_sort_unstable();
        let mut starts: Vec<usize> = (0..keyed.len()).filter(|&i| i == 0 || keyed[i - 1].0 != keyed[i].0).collect();
        starts.push(keyed.len());
        starts
            .par_windows(2)
            .map(|w| DisplayCell { key: keyed[w[0]].0 .1, groups: keyed[w[0]..w[1]].iter().map(|x| x.1).collect() })
            .collect()
    }

    /// The figures of a displayed cell: households and veterans always (every group holds at
    /// least `k`); the covered ones only where every group under it has `0` or at least `k`
    /// covered and uncovered households — then their sum says no more than the groups do.
    pub fn figures(&self, cell: &DisplayCell, hh: &Households, asg: &Assignment, k: u64) -> CellFigures {
        self.sum_figures(cell, k, |g| group_covered(&self.groups[g as usize], hh, asg))
    }

    /// Covered households and veterans of every group, in group order (computed in
    /// parallel): what [`Groups::figures_of`] sums, so that the cells of every display
    /// resolution are made from one pass over the households.
    pub fn covered(&self, hh: &Households, asg: &Assignment) -> Vec<(u64, u64)> {
        use rayon::prelude::*;
        self.groups.par_iter().map(|g| group_covered(g, hh, asg)).collect()
    }

    /// [`Groups::figures`] from the groups' covered counts ([`Groups::covered`]): the same
    /// figures, without reading the households again.
    pub fn figures_of(&self, cell: &DisplayCell, covered: &[(u64, u64)], k: u64) -> CellFigures {
        self.sum_figures(cell, k, |g| covered[g as usize])
    }

    /// The rule of [`Groups::figures`], given each group's covered households and veterans.
    fn sum_figures(&self, cell: &DisplayCell, k: u64, covered_of: impl Fn(u32) -> (u64, u64)) -> CellFigures {
        let ok = |x: u64| x == 0 || x >= k;
        let mut f = CellFigures { covered_households: Some(0), covered_veterans: Some(0), ..Default::default() };
        for &gi in &cell.groups {
            let (ch, cv) = covered_of(gi);
            let g = &self.groups[gi as usize];
            f.households += g.households.len() as u64;
            f.veterans += g.veterans;
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

/// A group's covered households and veterans.
fn group_covered(g: &Group, hh: &Households, asg: &Assignment) -> (u64, u64) {
    let (mut ch, mut cv) = (0u64, 0u64);
    for &h in &g.households {
        if asg.covered[h as usize] != 0 {
            ch += 1;
            cv += u64::from(hh.veterans[h as usize]);
        }
    }
    (ch, cv)
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
    fn kept_cells_give_the_same_groups_and_are_checked() {
        // Two crowded cells, a few households apart, and one with no valid position.
        let mut pts = vec![(103.80, 36.06); 6];
        pts.extend([(103.81, 36.07); 4]);
        pts.extend([(104.5, 37.0), (103.80, f64::NAN)]);
        let (ds, asg) = dataset(&pts);
        let cells = household_cells(&ds.households, 8);
        assert_eq!(cells.len(), pts.len());
        assert_eq!(cells[11], 0, "no cell for a latitude that is not a number");
        assert!(cells_of_resolution(&cells, 8));
        assert!(!cells_of_resolution(&cells, 7), "cells of another resolution");
        assert!(!cells_of_resolution(&[12345], 8), "not a cell index");
        let kept = Groups::build_from_cells(&ds, &asg, 3, 8, cells);
        let found = Groups::build(&ds, &asg, 3, 8);
        assert_eq!((kept.groups, kept.withheld), (found.groups.clone(), found.withheld));
        assert_eq!(found.groups.iter().map(|g| g.households.len()).sum::<usize>() as u64 + found.withheld, 11);
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

    proptest::proptest! {
        #[test]
        fn figures_of_the_groups_covered_counts_are_the_figures(
            pts in proptest::collection::vec((103.7f64..104.1, 35.9f64..36.2), 1..120),
            covered in proptest::collection::vec(0u8..2, 120),
            k in 2u64..6,
        ) {
            let (ds, mut asg) = dataset(&pts);
            asg.covered = covered[..pts.len()].to_vec();
            let g = Groups::build(&ds, &asg, k, 8);
            let cov = g.covered(&ds.households, &asg);
            for r in 0..=8 {
                for c in g.display(r) {
                    proptest::prop_assert_eq!(g.figures_of(&c, &cov, k), g.figures(&c, &ds.households, &asg, k));
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_parallel_display_is_the_map_of_cells_to_their_groups(
            pts in proptest::collection::vec((103.0f64..105.0, 35.0f64..37.0), 1..300),
            k in 1u64..6,
        ) {
            let (ds, asg) = dataset(&pts);
            let g = Groups::build(&ds, &asg, k, 9);
            for r in 0..=9u8 {
                // The rule as first written: a map of (resolution, cell) to its groups, filled
                // group by group.
                let res = Resolution::try_from(r).unwrap();
                let mut by_key: BTreeMap<(u8, CellIndex), Vec<u32>> = BTreeMap::new();
                for (i, grp) in g.groups.iter().enumerate() {
                    let key = if grp.key.resolution() > res { grp.key.parent(res).unwrap() } else { grp.key };
                    by_key.entry((u8::from(key.resolution()), key)).or_default().push(i as u32);
                }
                let want: Vec<DisplayCell> =
                    by_key.into_iter().map(|((_, key), groups)| DisplayCell { key, groups }).collect();
                proptest::prop_assert_eq!(g.display(r), want);
            }
        }
    }

    /// Cells with their households, owned.
    type OwnedCells = Vec<(CellIndex, Vec<u32>)>;

    fn borrowed(m: &OwnedCells) -> Cells<'_> {
        m.iter().map(|(c, h)| (*c, h.as_slice())).collect()
    }

    /// Member cells of one household each at the resolution-8 cells of `pts`, with a data set
    /// whose household `i` has `i + 1` veterans.
    fn members(pts: &[(f64, f64)]) -> (OwnedCells, Households) {
        let (ds, _) = dataset(pts);
        let mut hh = ds.households;
        for (i, v) in hh.veterans.iter_mut().enumerate() {
            *v = i as u32 + 1;
        }
        let mut m: OwnedCells = pts
            .iter()
            .enumerate()
            .map(|(i, &(lon, lat))| (LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eight), vec![i as u32]))
            .collect();
        m.sort_unstable_by_key(|(c, _)| *c);
        (m, hh)
    }

    #[test]
    fn a_spread_group_splits_into_compact_parts_of_k() {
        // Three households 1 km apart near A, three near B 40 km east, one more near B.
        let a = [(100.00, 40.00), (100.01, 40.00), (100.00, 40.01)];
        let b = [(100.50, 40.00), (100.51, 40.00), (100.50, 40.01), (100.52, 40.01)];
        let pts: Vec<(f64, f64)> = a.iter().chain(&b).copied().collect();
        let (m, hh) = members(&pts);
        let parts = split(&borrowed(&m), &hh, 3);
        assert_eq!(parts.len(), 2, "{parts:?}");
        let (pa, pb) = if parts[0].centre.0 < 100.25 { (&parts[0], &parts[1]) } else { (&parts[1], &parts[0]) };
        // The fourth household near B joins B's part, not A's.
        assert_eq!((pa.households, pb.households), (3, 4));
        assert_eq!(pa.veterans, 1 + 2 + 3);
        assert_eq!(pb.veterans, 4 + 5 + 6 + 7);
        // Each part sits within its cluster (a few km), at the mean of its cells' centres.
        assert!((pa.centre.0 - 100.003).abs() < 0.01 && (pa.centre.1 - 40.003).abs() < 0.01, "{pa:?}");
        assert!((pb.centre.0 - 100.508).abs() < 0.01 && (pb.centre.1 - 40.005).abs() < 0.01, "{pb:?}");
        let want = |cells: &[(f64, f64)]| {
            let n = cells.len() as f64;
            let s = cells.iter().fold((0.0, 0.0), |(x, y), &(lon, lat)| {
                let c = centre_of(LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eight));
                (x + c.0, y + c.1)
            });
            (s.0 / n, s.1 / n)
        };
        let wa = want(&a);
        assert!((pa.centre.0 - wa.0).abs() < 1e-12 && (pa.centre.1 - wa.1).abs() < 1e-12);
        // Under k in all: one part, the whole group.
        let (m, hh) = members(&pts[..4]);
        let whole = split(&borrowed(&m), &hh, 5);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].households, 4);
    }

    proptest::proptest! {
        #[test]
        fn parts_partition_the_cells_with_k_each(
            pts in proptest::collection::vec((99.0f64..101.0, 39.0f64..41.0), 1..60),
            k in 3u64..8,
        ) {
            let (m, hh) = members(&pts);
            let total: u64 = m.iter().map(|(_, h)| h.len() as u64).sum();
            let parts = split(&borrowed(&m), &hh, k);
            let mut cells: Vec<CellIndex> = parts.iter().flat_map(|p| p.cells.clone()).collect();
            cells.sort_unstable();
            let all: Vec<CellIndex> = m.iter().map(|(c, _)| *c).collect();
            proptest::prop_assert_eq!(cells, all);
            proptest::prop_assert_eq!(parts.iter().map(|p| u64::from(p.households)).sum::<u64>(), total);
            if total >= k {
                for p in &parts {
                    proptest::prop_assert!(u64::from(p.households) >= k, "{:?}", p);
                }
            } else {
                proptest::prop_assert_eq!(parts.len(), 1);
            }
        }
    }

    #[test]
    fn every_group_is_the_sum_of_its_parts() {
        let [a, b] = sibling_centres();
        let mut pts = vec![a; 7];
        pts.extend([b; 2]);
        pts.extend([(103.9, 36.1), (103.95, 36.12), (104.0, 36.1), (104.3, 36.3), (104.31, 36.3)]);
        let (ds, asg) = dataset(&pts);
        let g = Groups::build(&ds, &asg, 3, 8);
        for x in &g.groups {
            let n: u32 = x.parts.iter().map(|p| p.households).sum();
            assert_eq!(n as usize, x.households.len());
            assert_eq!(x.parts.iter().map(|p| p.veterans).sum::<u64>(), x.veterans);
            assert!(x.parts.iter().all(|p| p.households >= 3));
            for p in &x.parts {
                for c in &p.cells {
                    assert_eq!(c.parent(x.key.resolution()), Some(x.key));
                }
            }
        }
    }

    /// The one-thread rule [`Groups::build`] had before it ran in parallel (a map of every
    /// cell's households pushed one at a time, groups made one after another): the reference
    /// the parallel build must equal exactly.
    fn build_serially(ds: &Dataset, asg: &Assignment, k: u64, resolution: u8) -> Groups {
        let hh: &Households = &ds.households;
        let res = Resolution::try_from(resolution.min(15)).expect("resolution within 0..=15");
        let mut cells: HashMap<CellIndex, Vec<u32>> = HashMap::new();
        for h in 0..hh.len() {
            let Ok(ll) = LatLng::new(hh.lat[h], hh.lon[h]) else { continue };
            cells.entry(ll.to_cell(res)).or_default().push(h as u32);
        }
        let mut sorted: OwnedCells = cells.into_iter().collect();
        sorted.sort_unstable_by_key(|(c, _)| *c);
        let mut out: Vec<(CellIndex, OwnedCells)> = Vec::new();
        let mut small: BTreeMap<CellIndex, OwnedCells> = BTreeMap::new();
        for (c, members) in sorted {
            if members.len() as u64 >= k {
                out.push((c, vec![(c, members)]));
            } else {
                small.insert(c, vec![(c, members)]);
            }
        }
        let count = |m: &[(CellIndex, Vec<u32>)]| m.iter().map(|(_, h)| h.len() as u64).sum::<u64>();
        let mut r = u8::from(res);
        while !small.is_empty() && r > 0 {
            r -= 1;
            let pr = Resolution::try_from(r).expect("valid resolution");
            let mut next: BTreeMap<CellIndex, OwnedCells> = BTreeMap::new();
            for (c, members) in std::mem::take(&mut small) {
                next.entry(c.parent(pr).expect("coarser resolution")).or_default().extend(members);
            }
            for (c, members) in next {
                if count(&members) >= k {
                    out.push((c, members));
                } else {
                    small.insert(c, members);
                }
            }
        }
        let withheld = small.values().map(|m| count(m)).sum();
        out.sort_by_key(|(c, _)| *c);
        let groups = out
            .into_iter()
            .map(|(key, mut members)| {
                members.sort_unstable_by_key(|(c, _)| *c);
                let parts = split(&borrowed(&members), hh, k);
                let mut households: Vec<u32> = members.into_iter().flat_map(|(_, h)| h).collect();
                households.sort_unstable();
                let n: u64 = parts.iter().map(|p| u64::from(p.households)).sum();
                let (sx, sy) = parts.iter().fold((0.0, 0.0), |(x, y), p| {
                    let w = f64::from(p.households);
                    (x + w * p.centre.0, y + w * p.centre.1)
                });
                Group {
                    key,
                    veterans: parts.iter().map(|p| p.veterans).sum(),
                    unit: majority_unit(asg, &households),
                    centre: (sx / n as f64, sy / n as f64),
                    households,
                    parts,
                }
            })
            .collect();
        Groups { resolution: u8::from(res), groups, withheld }
    }

    /// Exactly equal, f64s to the bit.
    fn assert_same(a: &Groups, b: &Groups) {
        assert_eq!((a.resolution, a.withheld, a.groups.len()), (b.resolution, b.withheld, b.groups.len()));
        for (x, y) in a.groups.iter().zip(&b.groups) {
            assert_eq!(x, y);
            let bits = |c: (f64, f64)| (c.0.to_bits(), c.1.to_bits());
            assert_eq!(bits(x.centre), bits(y.centre), "{:?}", x.key);
            for (p, q) in x.parts.iter().zip(&y.parts) {
                assert_eq!(bits(p.centre), bits(q.centre), "{:?}", x.key);
            }
        }
    }

    #[test]
    fn the_parallel_build_is_the_serial_one() {
        // A few thousand households: dense clusters (big cells), a sprinkle of lone ones over a
        // few hundred km (merged up several resolutions or withheld), out-of-range positions,
        // in an order that is not the cells' order; varied veterans and units.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let centres = [(103.80, 36.06), (104.50, 35.50), (100.00, 40.00), (95.0, 38.0)];
        let mut pts = Vec::new();
        for i in 0..6_000 {
            let p = match i % 7 {
                0..=3 => {
                    let (x, y) = centres[i % centres.len()];
                    (x + 0.05 * next(), y + 0.05 * next())
                }
                4 | 5 => (93.0 + 12.0 * next(), 33.0 + 8.0 * next()),
                _ if i % 700 == 13 => (-60.0 + 20.0 * next(), -20.0 + 10.0 * next()),
                _ if i % 70 == 6 => (f64::NAN, 36.0),
                _ => (100.0 + 0.3 * next(), 37.0 + 0.3 * next()),
            };
            pts.push(p);
        }
        let (mut ds, mut asg) = dataset(&pts);
        for (i, v) in ds.households.veterans.iter_mut().enumerate() {
            *v = (i % 5) as u32;
        }
        asg.unit = (0..pts.len()).map(|i| if i % 11 == 0 { NO_UNIT } else { (i % 13) as UnitIdx }).collect();
        let (mut withheld, mut split) = (0, 0);
        for res in [5, 7, 8, 9] {
            for k in [1, 3, 10, 40] {
                let want = build_serially(&ds, &asg, k, res);
                let got = Groups::build(&ds, &asg, k, res);
                split += want.groups.iter().filter(|g| g.parts.len() > 1).count();
                withheld += want.withheld;
                assert_same(&got, &want);
            }
        }
        assert!(withheld > 0 && split > 0, "{withheld} withheld, {split} groups split");
        // Nothing at all, and households without a valid position only.
        let (ds, asg) = dataset(&[]);
        assert_same(&Groups::build(&ds, &asg, 5, 8), &build_serially(&ds, &asg, 5, 8));
        let (ds, asg) = dataset(&[(f64::NAN, 1.0), (200.0, 95.0)]);
        assert_same(&Groups::build(&ds, &asg, 5, 8), &build_serially(&ds, &asg, 5, 8));
    }
}
