//! What-if scenarios: coverage before and after opening and closing a set of stations.
//!
//! [`scenario_in_place`] applies the closings, then the openings, to a [`Live`] engine,
//! records every unit whose figures changed and every household that gains or loses coverage,
//! and takes the edits back, leaving the engine exactly as it was. [`scenario`] does the same
//! on a copy, for callers holding only a shared reference. The result is plain data and
//! serialises to JSON (serde) for the server.
//!
//! The household list is personal data: a server must only show it to roles entitled to the
//! households concerned.

use std::collections::HashMap;

use serde::Serialize;

use super::coverage::UnitCoverage;
use super::live::{Live, LiveError, StationChange};
use crate::index::sphere::{chord_2, chord_2_to_m, to_unit};
use crate::model::{HouseholdIdx, Level, StationIdx, StationRow, UnitIdx, NONE, NO_UNIT};

/// The figures of one unit compared in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Households within the unit.
    pub households: i64,
    /// Veterans within the unit.
    pub veterans: i64,
    /// Households within reach of a station of any level.
    pub covered_households: i64,
    /// Veterans within reach of a station of any level.
    pub covered_veterans: i64,
    /// `covered_veterans / veterans` (None without veterans).
    pub coverage_share: Option<f64>,
    /// Veterans within reach of a station of each level, province first.
    pub covered_level_veterans: [i64; 5],
    /// Open stations serving units within this one, by station level.
    pub stations: [i64; 5],
    /// Mean distance to the nearest station of any level, metres.
    pub nearest_mean_m: Option<f64>,
    /// Median of that distance, metres.
    pub nearest_median_m: Option<f32>,
    /// 90th percentile of that distance, metres.
    pub nearest_p90_m: Option<f32>,
    /// Townships within the unit without a township station.
    pub townships_without_station: i64,
    /// Large villages within the unit without a village station.
    pub villages_without_station: i64,
}

fn finite<T: Into<f64> + Copy>(x: T) -> Option<T> {
    x.into().is_finite().then_some(x)
}

impl Figures {
    /// The figures of a unit's coverage.
    pub fn of(c: &UnitCoverage) -> Figures {
        Figures {
            households: c.households,
            veterans: c.veterans,
            covered_households: c.covered_households,
            covered_veterans: c.covered_veterans,
            coverage_share: finite(c.coverage_share()),
            covered_level_veterans: c.covered_level_veterans,
            stations: c.stations,
            nearest_mean_m: finite(c.nearest_mean_m()),
            nearest_median_m: finite(c.nearest_median_m),
            nearest_p90_m: finite(c.nearest_p90_m),
            townships_without_station: c.townships_without_station,
            villages_without_station: c.villages_without_station,
        }
    }
}

/// One unit whose figures changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitDelta {
    /// Statistical code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Before the scenario.
    pub before: Figures,
    /// After it.
    pub after: Figures,
}

/// Whether a household gains or loses coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Not covered before, covered after.
    Gained,
    /// Covered before, not after.
    Lost,
}

/// A household whose coverage changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseholdDelta {
    /// Index of the household in the data set.
    #[serde(skip)]
    pub household: HouseholdIdx,
    /// Its own id.
    pub id: String,
    /// Its admin codes, province to village (None where not placed that deep).
    pub codes: [Option<String>; 5],
    /// Id of the grid it lies in.
    pub grid_id: Option<String>,
    /// Gained or lost.
    pub change: Change,
    /// For a gain, the nearest added station that covers it; for a loss, the nearest closed
    /// station that covered it.
    pub station_id: String,
    /// Ground distance to that station, metres.
    pub distance_m: f64,
}

/// A station opened or closed in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioStation {
    /// Own id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Code of the unit it serves.
    pub code: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Households that gain (opened) or lose (closed) coverage through this station.
    pub households: usize,
    /// Their veterans.
    pub veterans: u64,
}

/// Totals over every household (placed in a unit or not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Households.
    pub households: i64,
    /// Veterans.
    pub veterans: i64,
    /// Covered households.
    pub covered_households: i64,
    /// Covered veterans.
    pub covered_veterans: i64,
    /// Share of veterans covered.
    pub coverage_share: Option<f64>,
}

/// Everything a scenario changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    /// Stations opened.
    pub added: Vec<ScenarioStation>,
    /// Stations closed.
    pub removed: Vec<ScenarioStation>,
    /// Totals before.
    pub before: Totals,
    /// Totals after.
    pub after: Totals,
    /// Units whose figures changed, by level (province first), then code.
    pub units: Vec<UnitDelta>,
    /// Number of changed units per level, province first.
    pub changed_units: [usize; 5],
    /// Households that gain or lose coverage, gains first, each by household order.
    pub households: Vec<HouseholdDelta>,
}

fn totals(live: &Live) -> Totals {
    let ds = live.dataset();
    let cov = &live.analysis().coverage;
    let mut t = Totals { households: 0, veterans: 0, covered_households: 0, covered_veterans: 0, coverage_share: None };
    let units = ds.divisions.at_level(Level::Province).map(|u| &cov.units[u as usize]);
    for c in units.chain(std::iter::once(&cov.unplaced)) {
        t.households += c.households;
        t.veterans += c.veterans;
        t.covered_households += c.covered_households;
        t.covered_veterans += c.covered_veterans;
    }
    t.coverage_share = (t.veterans > 0).then(|| t.covered_veterans as f64 / t.veterans as f64);
    t
}

/// Runs the scenario on a copy of `live` (see [`scenario_in_place`], which avoids the copy).
///
/// # Errors
/// As [`scenario_in_place`].
pub fn scenario(live: &Live, adds: &[StationRow], removes: &[String]) -> Result<ScenarioResult, LiveError> {
    scenario_in_place(&mut live.clone(), adds, removes)
}

/// Closes `removes` and opens `adds` on `live`, measures, and takes both back: on return (also
/// on error) `live` is as it was.
///
/// # Errors
/// The first edit refused (an unknown or closed station to remove, the same id removed twice,
/// a station to add that [`Live::add_station`] refuses).
pub fn scenario_in_place(
    live: &mut Live,
    adds: &[StationRow],
    removes: &[String],
) -> Result<ScenarioResult, LiveError> {
    let snapshot = live.snapshot();
    let before_totals = totals(live);
    let mut changes: Vec<StationChange> = Vec::new();
    let mut removed_idx: Vec<StationIdx> = Vec::new();
    let mut added_ids: Vec<String> = Vec::new();
    let mut failure = None;
    for id in removes {
        match live.remove_station(id) {
            Ok(ch) => {
                removed_idx.push(ch.station);
                changes.push(ch);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        for row in adds {
            match live.add_station(row.clone()) {
                Ok(ch) => {
                    added_ids.push(row.id.clone());
                    changes.push(ch);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    let result = match failure {
        Some(e) => Err(e),
        None => Ok(measure(live, &snapshot, before_totals, &changes, &added_ids, &removed_idx)),
    };
    for id in added_ids.iter().rev() {
        live.undo_add(id).expect("a station just added can be taken back");
    }
    for &s in removed_idx.iter().rev() {
        let id = live.dataset().stations.id[s as usize].clone();
        live.reopen_station(&id).expect("a station just closed can be reopened");
    }
    live.restore(snapshot);
    result
}

fn measure(
    live: &Live,
    snapshot: &super::live::Snapshot,
    before: Totals,
    changes: &[StationChange],
    added_ids: &[String],
    removed: &[StationIdx],
) -> ScenarioResult {
    let ds = live.dataset();
    let d = &ds.divisions;
    let st = &ds.stations;
    let a = &live.analysis().assignment;
    let idx = &live.analysis().indexes.stations;
    // Net change per household: its state before is that of its first event.
    let mut first: HashMap<HouseholdIdx, bool> = HashMap::new();
    for ch in changes {
        for &h in &ch.gained {
            first.entry(h).or_insert(false);
        }
        for &h in &ch.lost {
            first.entry(h).or_insert(true);
        }
    }
    let added: Vec<StationIdx> = added_ids.iter().filter_map(|id| live.station_index_by_id(id)).collect();
    let mut per_station: HashMap<StationIdx, (usize, u64)> = HashMap::new();
    let mut households: Vec<HouseholdDelta> = Vec::new();
    let mut hs: Vec<(HouseholdIdx, bool)> = first.into_iter().collect();
    hs.sort_unstable();
    for (h, was_covered) in hs {
        let hi = h as usize;
        let now = a.covered[hi] != 0;
        if now == was_covered {
            continue;
        }
        let p = to_unit(ds.households.lon[hi], ds.households.lat[hi]);
        let pool = if now { &added[..] } else { removed };
        let best = pool
            .iter()
            .map(|&s| (s, chord_2(p, to_unit(st.lon[s as usize], st.lat[s as usize]))))
            .filter(|&(s, d2)| d2 <= idx.radius_2(s))
            .min_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
        let (s, d2) = best.expect("a change of coverage comes from a station opened or closed");
        let e = per_station.entry(s).or_default();
        e.0 += 1;
        e.1 += u64::from(ds.households.veterans[hi]);
        let unit = a.unit[hi];
        let codes = if unit == NO_UNIT {
            Default::default()
        } else {
            d.chain(unit).map(|u| (u != NO_UNIT).then(|| d.get(u).code.clone()))
        };
        let g = a.grid[hi];
        households.push(HouseholdDelta {
            household: h,
            id: ds.households.id[hi].clone(),
            codes,
            grid_id: (g != NONE).then(|| ds.grids.id[g as usize].clone()),
            change: if now { Change::Gained } else { Change::Lost },
            station_id: st.id[s as usize].clone(),
            distance_m: chord_2_to_m(d2),
        });
    }
    households.sort_by_key(|x| (x.change == Change::Lost, x.household));
    let station = |s: StationIdx| {
        let i = s as usize;
        let (n, v) = per_station.get(&s).copied().unwrap_or_default();
        ScenarioStation {
            id: st.id[i].clone(),
            name: st.name[i].clone(),
            level: st.level[i],
            code: if st.unit[i] == NO_UNIT { String::new() } else { d.get(st.unit[i]).code.clone() },
            lon: st.lon[i],
            lat: st.lat[i],
            households: n,
            veterans: v,
        }
    };
    let mut unit_ids: Vec<UnitIdx> = changes.iter().flat_map(|c| c.units.iter().copied()).collect();
    unit_ids.sort_unstable();
    unit_ids.dedup();
    let cov = &live.analysis().coverage;
    let mut units: Vec<UnitDelta> = unit_ids
        .into_iter()
        .filter_map(|u| {
            let (b, n) = (snapshot.unit(u), &cov.units[u as usize]);
            let (fb, fa) = (Figures::of(b), Figures::of(n));
            (fb != fa).then(|| {
                let div = d.get(u);
                UnitDelta { code: div.code.clone(), name: div.name.clone(), level: div.level, before: fb, after: fa }
            })
        })
        .collect();
    units.sort_by(|x, y| x.level.cmp(&y.level).then_with(|| x.code.cmp(&y.code)));
    let mut changed_units = [0usize; 5];
    for u in &units {
        changed_units[u.level.index()] += 1;
    }
    ScenarioResult {
        added: added.iter().map(|&s| station(s)).collect(),
        removed: removed.iter().map(|&s| station(s)).collect(),
        before,
        after: totals(live),
        units,
        changed_units,
        households,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::read_data_folder;
    use std::path::Path;

    fn small() -> Live {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small");
        Live::new(read_data_folder(&dir).unwrap())
    }

    #[test]
    fn scenario_leaves_the_engine_as_it_was() {
        let mut live = small();
        let before = live.analysis().clone();
        let unit = live.dataset().divisions.find("990101002001").unwrap();
        let add = StationRow {
            id: "N1".into(),
            name: "新站".into(),
            level: Level::Village,
            unit,
            lon: 100.9,
            lat: 40.1,
            demonstration: false,
            mobile: false,
            radius_m: None,
        };
        let r = scenario_in_place(&mut live, std::slice::from_ref(&add), &["S4".to_string()]).unwrap();
        assert_eq!(r.households.len(), 2, "{:?}", r.households);
        let after = live.analysis();
        assert_eq!(after.assignment.covered, before.assignment.covered);
        assert_eq!(after.assignment.nearest, before.assignment.nearest);
        assert_eq!(after.coverage.units, before.coverage.units);
        assert_eq!(live.dataset().stations.len(), 4);
        assert!(live.dataset().stations.active.iter().all(|&a| a));
        assert!(live.station_index_by_id("N1").is_none());
        // An error part way leaves it as it was too.
        let e = scenario_in_place(&mut live, &[add.clone(), add], &[]).unwrap_err();
        assert_eq!(e, LiveError::DuplicateId("N1".into()));
        assert_eq!(live.dataset().stations.len(), 4);
        assert_eq!(live.analysis().coverage.units, before.coverage.units);
        let e = scenario_in_place(&mut live, &[], &["S1".into(), "S1".into()]).unwrap_err();
        assert_eq!(e, LiveError::Closed("S1".into()));
        assert!(live.dataset().stations.active.iter().all(|&a| a));
    }
}
