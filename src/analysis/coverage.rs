//! Coverage of every admin unit at every level.
//!
//! Figures are sums over the households assigned within a unit, so they are kept as signed
//! counters that a single household's or station's contribution can be added to or taken
//! from: an edit changes the figures of the five units on its chain, not the whole table.

use rayon::prelude::*;

use super::assign::Assignment;
use crate::model::{Dataset, Divisions, HouseholdIdx, Level, Stations, UnitIdx, NONE, NO_UNIT};

/// The coverage figures of one admin unit (everything within it, at any depth).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitCoverage {
    /// Households assigned within the unit.
    pub households: i64,
    /// Veterans in those households.
    pub veterans: i64,
    /// Households within the service radius of a station of any level.
    pub covered_households: i64,
    /// Veterans in covered households.
    pub covered_veterans: i64,
    /// Veterans within the service radius of a station of each level.
    pub covered_level_veterans: [i64; 5],
    /// Households in hardship (困难).
    pub hardship_households: i64,
    /// Veterans in households in hardship.
    pub hardship_veterans: i64,
    /// Of those, veterans covered.
    pub hardship_covered_veterans: i64,
    /// Martyrs' families (烈属).
    pub martyr_households: i64,
    /// Veterans in martyrs' families.
    pub martyr_veterans: i64,
    /// Of those, veterans covered.
    pub martyr_covered_veterans: i64,
    /// Households outside every grid.
    pub outside_grid_households: i64,
    /// Veterans in households outside every grid.
    pub outside_grid_veterans: i64,
    /// Sum of distances to the nearest station of any level, metres (for the mean).
    pub nearest_sum_m: f64,
    /// Households with a nearest station (for the mean).
    pub nearest_count: i64,
    /// Active stations serving units within this one, by station level.
    pub stations: [i64; 5],
    /// Of those, demonstration stations.
    pub demonstration_stations: i64,
    /// Of those, mobile stations.
    pub mobile_stations: i64,
    /// Active stations serving exactly this unit, any level.
    pub own_stations: i64,
    /// Median distance to the nearest station, metres (NaN without households).
    pub nearest_median_m: f32,
    /// 90th percentile of that distance, metres (NaN without households).
    pub nearest_p90_m: f32,
    /// Townships within the unit that have no township-level station (rule 1).
    pub townships_without_station: i64,
    /// Villages/communities within the unit with at least the standard's number of veterans
    /// and no village-level station of their own (rule 2).
    pub villages_without_station: i64,
}

impl UnitCoverage {
    /// Share of veterans covered (0 to 1; NaN without veterans).
    pub fn coverage_share(&self) -> f64 {
        ratio(self.covered_veterans, self.veterans)
    }

    /// Share of veterans covered by a station of `level`.
    pub fn level_share(&self, level: Level) -> f64 {
        ratio(self.covered_level_veterans[level.index()], self.veterans)
    }

    /// Mean distance to the nearest station, metres.
    pub fn nearest_mean_m(&self) -> f64 {
        if self.nearest_count == 0 {
            f64::NAN
        } else {
            self.nearest_sum_m / self.nearest_count as f64
        }
    }

    /// True when both rules hold within the unit.
    pub fn rules_ok(&self) -> bool {
        self.townships_without_station == 0 && self.villages_without_station == 0
    }

    fn add_household(&mut self, c: &HouseholdContribution, sign: i64) {
        let v = c.veterans * sign;
        self.households += sign;
        self.veterans += v;
        if c.covered != 0 {
            self.covered_households += sign;
            self.covered_veterans += v;
        }
        for l in 0..5 {
            if c.covered & (1 << l) != 0 {
                self.covered_level_veterans[l] += v;
            }
        }
        if c.hardship {
            self.hardship_households += sign;
            self.hardship_veterans += v;
            if c.covered != 0 {
                self.hardship_covered_veterans += v;
            }
        }
        if c.martyr {
            self.martyr_households += sign;
            self.martyr_veterans += v;
            if c.covered != 0 {
                self.martyr_covered_veterans += v;
            }
        }
        if !c.in_grid {
            self.outside_grid_households += sign;
            self.outside_grid_veterans += v;
        }
        if c.nearest_m.is_finite() {
            self.nearest_sum_m += sign as f64 * f64::from(c.nearest_m);
            self.nearest_count += sign;
        }
    }

    fn merge(&mut self, o: &UnitCoverage) {
        self.households += o.households;
        self.veterans += o.veterans;
        self.covered_households += o.covered_households;
        self.covered_veterans += o.covered_veterans;
        for l in 0..5 {
            self.covered_level_veterans[l] += o.covered_level_veterans[l];
            self.stations[l] += o.stations[l];
        }
        self.hardship_households += o.hardship_households;
        self.hardship_veterans += o.hardship_veterans;
        self.hardship_covered_veterans += o.hardship_covered_veterans;
        self.martyr_households += o.martyr_households;
        self.martyr_veterans += o.martyr_veterans;
        self.martyr_covered_veterans += o.martyr_covered_veterans;
        self.outside_grid_households += o.outside_grid_households;
        self.outside_grid_veterans += o.outside_grid_veterans;
        self.nearest_sum_m += o.nearest_sum_m;
        self.nearest_count += o.nearest_count;
        self.demonstration_stations += o.demonstration_stations;
        self.mobile_stations += o.mobile_stations;
        self.own_stations += o.own_stations;
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// What one household adds to the figures of each unit on its chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HouseholdContribution {
    /// Veterans.
    pub veterans: i64,
    /// Coverage bits by level.
    pub covered: u8,
    /// In hardship.
    pub hardship: bool,
    /// Martyr's family.
    pub martyr: bool,
    /// Inside some grid.
    pub in_grid: bool,
    /// Distance to the nearest station of any level, metres.
    pub nearest_m: f32,
}

impl HouseholdContribution {
    /// The contribution of household `h` under assignment `a`.
    pub fn of(ds: &Dataset, a: &Assignment, h: HouseholdIdx) -> Self {
        let i = h as usize;
        HouseholdContribution {
            veterans: i64::from(ds.households.veterans[i]),
            covered: a.covered[i],
            hardship: ds.households.difficulty[i],
            martyr: ds.households.martyr_family[i],
            in_grid: a.grid[i] != NONE,
            nearest_m: a.nearest_any_m(h),
        }
    }
}

/// Coverage figures of every admin unit, indexed by [`UnitIdx`], plus the households that
/// could not be placed in any unit.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Figures per unit.
    pub units: Vec<UnitCoverage>,
    /// Figures of the households with no admin unit at all.
    pub unplaced: UnitCoverage,
}

impl Coverage {
    /// Adds (`sign` = 1) or removes (`sign` = -1) one household's contribution along the
    /// chain of `unit`. Quantiles are not updated (see [`Coverage::refresh_quantiles`]).
    pub fn apply_household(&mut self, divisions: &Divisions, unit: UnitIdx, c: &HouseholdContribution, sign: i64) {
        if unit == NO_UNIT {
            self.unplaced.add_household(c, sign);
            return;
        }
        for u in divisions.chain(unit) {
            if u != NO_UNIT {
                self.units[u as usize].add_household(c, sign);
            }
        }
    }

    /// Adds or removes station `s` from the station counts along its unit's chain.
    pub fn apply_station(&mut self, divisions: &Divisions, stations: &Stations, s: u32, sign: i64) {
        let i = s as usize;
        let unit = stations.unit[i];
        if unit == NO_UNIT {
            return;
        }
        self.units[unit as usize].own_stations += sign;
        for u in divisions.chain(unit) {
            if u == NO_UNIT {
                continue;
            }
            let uc = &mut self.units[u as usize];
            uc.stations[stations.level[i].index()] += sign;
            if stations.demonstration[i] {
                uc.demonstration_stations += sign;
            }
            if stations.mobile[i] {
                uc.mobile_stations += sign;
            }
        }
    }

    /// Recomputes the two rules (townships with a township station; large villages with a
    /// village station) for every unit.
    pub fn refresh_rules(&mut self, ds: &Dataset) {
        let d = &ds.divisions;
        let mut has_level_station = vec![false; d.len()];
        for i in 0..ds.stations.len() {
            let u = ds.stations.unit[i];
            if ds.stations.active[i] && u != NO_UNIT && ds.stations.level[i] == d.get(u).level {
                has_level_station[u as usize] = true;
            }
        }
        for uc in &mut self.units {
            uc.townships_without_station = 0;
            uc.villages_without_station = 0;
        }
        let min_vets = i64::from(ds.standard.village_station_veterans);
        for (u, div) in d.iter() {
            let broken_township = div.level == Level::Township && !has_level_station[u as usize];
            let broken_village = div.level == Level::Village
                && self.units[u as usize].veterans >= min_vets
                && !has_level_station[u as usize];
            if !(broken_township || broken_village) {
                continue;
            }
            for a in d.chain(u) {
                if a == NO_UNIT {
                    continue;
                }
                let uc = &mut self.units[a as usize];
                if broken_township {
                    uc.townships_without_station += 1;
                } else {
                    uc.villages_without_station += 1;
                }
            }
        }
    }

    /// Recomputes the median and 90th percentile of the distance to the nearest station for
    /// every unit.
    pub fn refresh_quantiles(&mut self, divisions: &Divisions, a: &Assignment) {
        let n_units = divisions.len();
        let nearest: Vec<f32> = (0..a.len()).map(|h| a.nearest_any_m(h as HouseholdIdx)).collect();
        let per_level: Vec<Vec<(UnitIdx, f32, f32)>> = Level::ALL
            .par_iter()
            .map(|&level| {
                // Counting sort of the households' distances by their unit at this level.
                let key = |h: usize| -> Option<usize> {
                    let u = a.unit[h];
                    if u == NO_UNIT || !nearest[h].is_finite() {
                        return None;
                    }
                    let k = divisions.chain(u)[level.index()];
                    (k != NO_UNIT).then_some(k as usize)
                };
                let mut start = vec![0usize; n_units + 1];
                for h in 0..a.len() {
                    if let Some(k) = key(h) {
                        start[k + 1] += 1;
                    }
                }
                for k in 0..n_units {
                    start[k + 1] += start[k];
                }
                let mut fill = start.clone();
                let mut vals = vec![0f32; start[n_units]];
                for (h, &d) in nearest.iter().enumerate() {
                    if let Some(k) = key(h) {
                        vals[fill[k]] = d;
                        fill[k] += 1;
                    }
                }
                let mut out = Vec::new();
                for u in divisions.at_level(level) {
                    let s = &mut vals[start[u as usize]..start[u as usize + 1]];
                    out.push((u, quantile(s, 0.5), quantile(s, 0.9)));
                }
                out
            })
            .collect();
        for (u, med, p90) in per_level.into_iter().flatten() {
            let uc = &mut self.units[u as usize];
            uc.nearest_median_m = med;
            uc.nearest_p90_m = p90;
        }
    }
}

/// The `q`-quantile of `v` by the nearest-rank method (NaN for an empty slice).
/// Reorders `v`.
pub fn quantile(v: &mut [f32], q: f64) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    let (_, x, _) = v.select_nth_unstable_by(rank, f32::total_cmp);
    *x
}

/// Computes the coverage of every unit from an assignment.
pub fn coverage(ds: &Dataset, a: &Assignment) -> Coverage {
    let d = &ds.divisions;
    let empty = || Coverage { units: vec![UnitCoverage::default(); d.len()], unplaced: UnitCoverage::default() };
    let mut cov = (0..a.len())
        .into_par_iter()
        .with_min_len(16_384)
        .fold(empty, |mut c, h| {
            let contribution = HouseholdContribution::of(ds, a, h as HouseholdIdx);
            c.apply_household(d, a.unit[h], &contribution, 1);
            c
        })
        .reduce(empty, |mut x, y| {
            for (a, b) in x.units.iter_mut().zip(&y.units) {
                a.merge(b);
            }
            x.unplaced.merge(&y.unplaced);
            x
        });
    for s in 0..ds.stations.len() {
        if ds.stations.active[s] {
            cov.apply_station(d, &ds.stations, s as u32, 1);
        }
    }
    cov.refresh_rules(ds);
    cov.refresh_quantiles(d, a);
    cov
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 0.9), 5.0);
        let mut w: Vec<f32> = (1..=10).map(|x| x as f32).collect();
        assert_eq!(quantile(&mut w, 0.9), 9.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }
}
