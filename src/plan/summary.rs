//! Coverage of households and admin units before and after a plan (pure computation).

use rayon::prelude::*;
use rstar::primitives::GeomWithData;
use rstar::RTree;

use super::UnitChange;
use crate::analysis::Analysis;
use crate::index::sphere::{chord_2, chord_2_to_m, to_unit, Unit3};
use crate::model::{Dataset, Households as Hh, Level, UnitIdx, NONE, NO_UNIT};

/// Every household's coverage and distance at the plan's level, before the plan.
pub(crate) struct Households {
    /// Within the plan radius of an active station of the level (or within its own radius).
    pub covered: Vec<bool>,
    /// Ground distance to the nearest active station of the level, metres (∞ when none).
    pub dist: Vec<f64>,
}

/// The same after adding sites.
pub(crate) struct After {
    pub covered: Vec<bool>,
    pub dist: Vec<f64>,
}

impl Households {
    pub fn new(ds: &Dataset, an: &Analysis, level: Level, radius: f64) -> Self {
        let hh = &ds.households;
        let st = &ds.stations;
        let asg = &an.assignment;
        let l = level.index();
        let (covered, dist): (Vec<bool>, Vec<f64>) = (0..hh.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|h| {
                let s = asg.nearest[l][h];
                if s == NONE {
                    return (false, f64::INFINITY);
                }
                let p = to_unit(hh.lon[h], hh.lat[h]);
                let q = to_unit(st.lon[s as usize], st.lat[s as usize]);
                let d = chord_2_to_m(chord_2(p, q));
                (d <= radius || asg.covered[h] & (1 << l) != 0, d)
            })
            .unzip();
        Households { covered, dist }
    }

    fn tree(pts: &[Unit3]) -> RTree<GeomWithData<Unit3, u32>> {
        RTree::bulk_load(pts.iter().enumerate().map(|(j, &p)| GeomWithData::new(p, j as u32)).collect())
    }

    pub fn after(&self, hh: &Hh, sites: &[Unit3], r2: f64) -> After {
        if sites.is_empty() {
            return After { covered: self.covered.clone(), dist: self.dist.clone() };
        }
        let tree = Self::tree(sites);
        let (covered, dist) = (0..self.covered.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|h| {
                let p = to_unit(hh.lon[h], hh.lat[h]);
                let (_, d2) = tree.nearest_neighbor_iter_with_distance_2(&p).next().expect("non-empty");
                (self.covered[h] || d2 <= r2, self.dist[h].min(chord_2_to_m(d2)))
            })
            .unzip();
        After { covered, dist }
    }

    /// Veterans of `scope` newly covered by each site, each household counted for the first
    /// site (in plan order) that reaches it.
    pub fn newly_covered(&self, hh: &Hh, scope: &[u32], sites: &[Unit3], r2: f64) -> Vec<u64> {
        let mut out = vec![0u64; sites.len()];
        if sites.is_empty() {
            return out;
        }
        let tree = Self::tree(sites);
        let firsts: Vec<(u32, u64)> = scope
            .par_iter()
            .with_min_len(4096)
            .filter(|&&h| !self.covered[h as usize])
            .filter_map(|&h| {
                let p = to_unit(hh.lon[h as usize], hh.lat[h as usize]);
                tree.locate_within_distance(p, r2)
                    .map(|e| e.data)
                    .min()
                    .map(|r| (r, u64::from(hh.veterans[h as usize])))
            })
            .collect();
        for (r, v) in firsts {
            out[r as usize] += v;
        }
        out
    }
}

/// Before/after figures of every admin unit of `level` and above — only `within` and the units
/// below it, when given —, top down, by code.
pub(crate) fn units(
    ds: &Dataset,
    an: &Analysis,
    level: Level,
    within: Option<UnitIdx>,
    before: &Households,
    after: &After,
    site_units: &[UnitIdx],
) -> Vec<UnitChange> {
    #[derive(Default, Clone)]
    struct Acc {
        vet: u64,
        cb: u64,
        ca: u64,
        db: f64,
        da: f64,
        wd: f64,
        sites: u64,
    }
    let n = ds.divisions.len();
    let mut acc = vec![Acc::default(); n];
    let hh = &ds.households;
    let asg = &an.assignment;
    for h in 0..hh.len() {
        let u = asg.unit[h];
        if u == NO_UNIT {
            continue;
        }
        let v = u64::from(hh.veterans[h]);
        if v == 0 {
            continue;
        }
        let chain = ds.divisions.chain(u);
        for &a in chain.iter().take(level.index() + 1) {
            if a == NO_UNIT {
                continue;
            }
            let x = &mut acc[a as usize];
            x.vet += v;
            if before.covered[h] {
                x.cb += v;
            }
            if after.covered[h] {
                x.ca += v;
            }
            if before.dist[h].is_finite() {
                x.db += before.dist[h] * v as f64;
                x.da += after.dist[h] * v as f64;
                x.wd += v as f64;
            }
        }
    }
    for &u in site_units {
        if u == NO_UNIT {
            continue;
        }
        for &a in ds.divisions.chain(u).iter().take(level.index() + 1) {
            if a != NO_UNIT {
                acc[a as usize].sites += 1;
            }
        }
    }
    let mut out: Vec<UnitChange> = ds
        .divisions
        .iter()
        .filter(|&(i, d)| d.level <= level && within.is_none_or(|w| ds.divisions.is_within(i, w)))
        .map(|(i, d)| {
            let x = &acc[i as usize];
            let share = |c: u64| (x.vet > 0).then(|| c as f64 / x.vet as f64);
            UnitChange {
                code: d.code.clone(),
                name: d.name.clone(),
                level: d.level,
                parent_code: d.parent.map(|p| ds.divisions.get(p).code.clone()).unwrap_or_default(),
                veterans: x.vet,
                covered_before: x.cb,
                covered_after: x.ca,
                share_before: share(x.cb),
                share_after: share(x.ca),
                mean_distance_before_m: (x.wd > 0.0).then(|| x.db / x.wd),
                mean_distance_after_m: (x.wd > 0.0).then(|| x.da / x.wd),
                new_sites: x.sites,
            }
        })
        .collect();
    out.sort_by(|a, b| a.level.cmp(&b.level).then_with(|| a.code.cmp(&b.code)));
    out
}
