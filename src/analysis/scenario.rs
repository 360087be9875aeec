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
//!
//! # Bounds and time budget
//! [`scenario_within`] (what the server runs) first checks the inputs in one place,
//! [`validate`]: at most [`Bounds::max_scenario_adds`] stations to open and
//! [`Bounds::max_scenario_removes`] to close (200 each by default), every position in WGS84
//! range, every own radius within [`Bounds::radius_m`] (the plans' radius policy,
//! [`crate::plan::limits::RADIUS_M`]: 100 m … 100 km). A station id given twice in `removes` is
//! closed once (folded, in every entry point). It then checks its [`Budget`] before every edit
//! (stopping at half the time left, so that taking the edits back fits in the rest) and while
//! measuring; once out of time it takes back what it applied and answers
//! [`ScenarioError::OutOfTime`].

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::coverage::UnitCoverage;
use super::live::{Live, LiveError, StationChange};
use crate::index::sphere::{chord_2, chord_2_to_m, to_unit};
use crate::model::{HouseholdIdx, Level, StationIdx, StationRow, UnitIdx, NONE, NO_UNIT};
use crate::plan::{Bounds, Budget};

/// Why a bounded what-if was refused or stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// An input out of its range (names the field and the bound).
    #[error("`{field}` = {value} is out of range: {bound}")]
    OutOfRange {
        /// The field, e.g. `add[3].radius_m`.
        field: String,
        /// The value given.
        value: String,
        /// The range allowed.
        bound: String,
    },
    /// An edit the live engine refused (unknown or closed station, duplicate id, …).
    #[error(transparent)]
    Edit(#[from] LiveError),
    /// The budget ran out; everything applied was taken back.
    #[error("the what-if was stopped: it took longer than its time budget of {seconds} s")]
    OutOfTime {
        /// Seconds allowed.
        seconds: f64,
    },
}

/// Checks a what-if's inputs against `bounds` (the one place) and returns the stations to
/// close with duplicates folded (first occurrence order).
///
/// # Errors
/// [`ScenarioError::OutOfRange`] naming the first field out of range.
pub fn validate(adds: &[StationRow], removes: &[String], bounds: &Bounds) -> Result<Vec<String>, ScenarioError> {
    let oor = |field: String, value: String, bound: String| ScenarioError::OutOfRange { field, value, bound };
    if adds.len() > bounds.max_scenario_adds {
        return Err(oor(
            "add".into(),
            format!("{} stations", adds.len()),
            format!("at most {} stations", bounds.max_scenario_adds),
        ));
    }
    for (i, a) in adds.iter().enumerate() {
        if crate::model::rules::check_lon(a.lon).is_err() {
            return Err(oor(format!("add[{i}].lon"), a.lon.to_string(), "-180 to 180 degrees".into()));
        }
        if crate::model::rules::check_lat(a.lat).is_err() {
            return Err(oor(format!("add[{i}].lat"), a.lat.to_string(), "-90 to 90 degrees".into()));
        }
        if let Some(r) = a.radius_m {
            bounds.check_radius(r).map_err(|b| oor(format!("add[{i}].radius_m"), r.to_string(), b))?;
        }
    }
    let removes = fold(removes);
    if removes.len() > bounds.max_scenario_removes {
        return Err(oor(
            "remove".into(),
            format!("{} stations", removes.len()),
            format!("at most {} stations", bounds.max_scenario_removes),
        ));
    }
    Ok(removes)
}

/// `ids` without repeats, in first-occurrence order.
fn fold(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
}

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
/// on error) `live` is as it was. An id repeated in `removes` is closed once. No bounds and no
/// budget (the command line's what-if); see [`scenario_within`].
///
/// # Errors
/// The first edit refused (an unknown or closed station to remove, a station to add that
/// [`Live::add_station`] refuses).
pub fn scenario_in_place(
    live: &mut Live,
    adds: &[StationRow],
    removes: &[String],
) -> Result<ScenarioResult, LiveError> {
    match run(live, adds, &fold(removes), &Budget::unlimited()) {
        Ok(r) => Ok(r),
        Err(ScenarioError::Edit(e)) => Err(e),
        Err(e) => unreachable!("an unlimited what-if stops only on an edit: {e}"),
    }
}

/// [`scenario_in_place`] within `bounds` ([`validate`] first) and a time `budget`, checked
/// before every edit and while measuring; edits stop once half the time left at the start has
/// passed (so that taking them back fits in the rest), and what was applied is taken back.
///
/// # Errors
/// [`ScenarioError::OutOfRange`], [`ScenarioError::Edit`], [`ScenarioError::OutOfTime`].
pub fn scenario_within(
    live: &mut Live,
    adds: &[StationRow],
    removes: &[String],
    bounds: &Bounds,
    budget: &Budget,
) -> Result<ScenarioResult, ScenarioError> {
    let removes = validate(adds, removes, bounds)?;
    run(live, adds, &removes, budget)
}

fn out_of_time(budget: &Budget) -> ScenarioError {
    ScenarioError::OutOfTime { seconds: budget.allowed().map_or(0.0, |d| d.as_secs_f64()) }
}

fn run(
    live: &mut Live,
    adds: &[StationRow],
    removes: &[String],
    budget: &Budget,
) -> Result<ScenarioResult, ScenarioError> {
    // Edits stop at half the time left, so that taking them back fits in the rest.
    let apply_until = budget.remaining().map(|d| std::time::Instant::now() + d / 2);
    let out = || budget.exhausted() || apply_until.is_some_and(|t| std::time::Instant::now() >= t);
    let snapshot = live.snapshot();
    let before_totals = totals(live);
    let mut changes: Vec<StationChange> = Vec::new();
    let mut removed_idx: Vec<StationIdx> = Vec::new();
    let mut added_ids: Vec<String> = Vec::new();
    let mut failure = None;
    for id in removes {
        if out() {
            failure = Some(out_of_time(budget));
            break;
        }
        match live.remove_station(id) {
            Ok(ch) => {
                removed_idx.push(ch.station);
                changes.push(ch);
            }
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        }
    }
    if failure.is_none() {
        for row in adds {
            if out() {
                failure = Some(out_of_time(budget));
                break;
            }
            match live.add_station(row.clone()) {
                Ok(ch) => {
                    added_ids.push(row.id.clone());
                    changes.push(ch);
                }
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
    }
    let result = match failure {
        Some(e) => Err(e),
        None => measure(live, &snapshot, before_totals, &changes, &added_ids, &removed_idx, budget)
            .ok_or_else(|| out_of_time(budget)),
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
    budget: &Budget,
) -> Option<ScenarioResult> {
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
    for (n, (h, was_covered)) in hs.into_iter().enumerate() {
        if n % 1024 == 1023 && budget.exhausted() {
            return None;
        }
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
            id: ds.households.id[hi].to_string(),
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
    Some(ScenarioResult {
        added: added.iter().map(|&s| station(s)).collect(),
        removed: removed.iter().map(|&s| station(s)).collect(),
        before,
        after: totals(live),
        units,
        changed_units,
        households,
    })
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
        // An id removed twice is closed once (folded), the same as once.
        let twice = scenario_in_place(&mut live, &[], &["S1".into(), "S1".into()]).unwrap();
        let once = scenario_in_place(&mut live, &[], &["S1".into()]).unwrap();
        assert_eq!(twice, once);
        assert_eq!(twice.removed.len(), 1);
        assert!(live.dataset().stations.active.iter().all(|&a| a));
    }

    fn row(id: &str, lon: f64, radius_m: Option<f64>) -> StationRow {
        StationRow {
            id: id.into(),
            name: "n".into(),
            level: Level::Village,
            unit: 0,
            lon,
            lat: 40.1,
            demonstration: false,
            mobile: false,
            radius_m,
        }
    }

    #[test]
    fn bounds_name_the_field_and_duplicates_fold() {
        let b = Bounds::default();
        let e = validate(&vec![row("a", 100.0, None); 201], &[], &b).unwrap_err().to_string();
        assert!(e.contains("`add`") && e.contains("at most 200 stations"), "{e}");
        let e = validate(&[row("a", 100.0, None), row("b", 100.0, Some(10_000_000.0))], &[], &b).unwrap_err();
        assert!(e.to_string().contains("`add[1].radius_m`") && e.to_string().contains("100 to 100000 metres"), "{e}");
        for r in [5.0, 0.0, -1.0, f64::NAN] {
            assert!(validate(&[row("a", 100.0, Some(r))], &[], &b).is_err(), "{r}");
        }
        let e = validate(&[row("a", 181.0, None)], &[], &b).unwrap_err().to_string();
        assert!(e.contains("`add[0].lon`"), "{e}");
        let ids: Vec<String> = (0..201).map(|i| format!("S{i}")).collect();
        let e = validate(&[], &ids, &b).unwrap_err().to_string();
        assert!(e.contains("`remove`") && e.contains("at most 200"), "{e}");
        // 1,000 copies of one id fold to one.
        let same = vec!["S1".to_string(); 1000];
        assert_eq!(validate(&[], &same, &b).unwrap(), ["S1"]);
        assert!(validate(&vec![row("a", 100.0, Some(100_000.0)); 200], &ids[..200], &b).is_ok());
    }

    #[test]
    fn an_exhausted_budget_stops_and_takes_everything_back() {
        let mut live = small();
        let before = live.analysis().clone();
        let unit = live.dataset().divisions.find("990101002001").unwrap();
        let mut add = row("N1", 100.9, None);
        add.unit = unit;
        let e = scenario_within(
            &mut live,
            &[add],
            &["S4".to_string()],
            &Bounds::default(),
            &Budget::of(std::time::Duration::ZERO),
        )
        .unwrap_err();
        assert!(matches!(e, ScenarioError::OutOfTime { .. }), "{e}");
        assert_eq!(live.analysis().assignment.covered, before.assignment.covered);
        assert_eq!(live.analysis().coverage.units, before.coverage.units);
        assert_eq!(live.dataset().stations.len(), 4);
        assert!(live.dataset().stations.active.iter().all(|&a| a));
    }
}
