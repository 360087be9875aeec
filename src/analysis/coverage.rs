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
        self.quantiles_from(divisions, a, &ByUnit::new(a, divisions.len()));
    }

    fn quantiles_from(&mut self, divisions: &Divisions, a: &Assignment, groups: &ByUnit) {
        for level in Level::ALL {
            let units: Vec<UnitIdx> = divisions.at_level(level).collect();
            let figures: Vec<(f32, f32)> = units
                .par_iter()
                .with_min_len(64)
                .map_init(Vec::new, |vals: &mut Vec<f32>, &u| {
                    // The distances of the households of the unit's whole subtree.
                    vals.clear();
                    let mut stack = vec![u];
                    while let Some(v) = stack.pop() {
                        vals.extend(
                            groups.of(v as usize).iter().map(|&h| a.nearest_any_m(h)).filter(|d| d.is_finite()),
                        );
                        stack.extend_from_slice(divisions.children(v));
                    }
                    (quantile(vals, 0.5), quantile(vals, 0.9))
                })
                .collect();
            for (&u, (med, p90)) in units.iter().zip(figures) {
                let uc = &mut self.units[u as usize];
                uc.nearest_median_m = med;
                uc.nearest_p90_m = p90;
            }
        }
    }
}

/// The households grouped by their finest unit: group `u` holds unit `u`'s households in
/// household order, and the group after the last unit those with no unit. Four bytes per
/// household, so that every unit's figures are summed in one order (whatever the number of
/// threads) and no thread keeps a table of every unit of its own.
#[derive(Debug, Clone)]
pub(crate) struct ByUnit {
    start: Vec<usize>,
    order: Vec<HouseholdIdx>,
}

impl ByUnit {
    pub(crate) fn new(a: &Assignment, n_units: usize) -> Self {
        let group = |u: UnitIdx| if u == NO_UNIT { n_units } else { u as usize };
        let mut start = vec![0usize; n_units + 2];
        for &u in &a.unit {
            start[group(u) + 1] += 1;
        }
        for k in 0..=n_units {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut order = vec![0 as HouseholdIdx; a.len()];
        for (h, &u) in a.unit.iter().enumerate() {
            let k = group(u);
            order[fill[k]] = h as HouseholdIdx;
            fill[k] += 1;
        }
        ByUnit { start, order }
    }

    pub(crate) fn of(&self, group: usize) -> &[HouseholdIdx] {
        &self.order[self.start[group]..self.start[group + 1]]
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
///
/// Each unit's own households are summed in household order, in parallel over units; then one
/// pass from the end of the table adds every unit into its parent (parents come before their
/// children), so a unit's figures are those of its whole subtree, as
/// [`Coverage::apply_household`] would make them.
pub fn coverage(ds: &Dataset, a: &Assignment) -> Coverage {
    let d = &ds.divisions;
    let n_units = d.len();
    let groups = ByUnit::new(a, n_units);
    let own = |group: usize| {
        let mut c = UnitCoverage::default();
        for &h in groups.of(group) {
            c.add_household(&HouseholdContribution::of(ds, a, h), 1);
        }
        c
    };
    let units: Vec<UnitCoverage> = (0..n_units).into_par_iter().with_min_len(256).map(own).collect();
    let mut cov = Coverage { units, unplaced: own(n_units) };
    for u in (0..n_units).rev() {
        if let Some(p) = d.get(u as UnitIdx).parent {
            let (parents, rest) = cov.units.split_at_mut(u);
            parents[p as usize].merge(&rest[0]);
        }
    }
    for s in 0..ds.stations.len() {
        if ds.stations.active[s] {
            cov.apply_station(d, &ds.stations, s as u32, 1);
        }
    }
    cov.refresh_rules(ds);
    cov.quantiles_from(d, a, &groups);
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
