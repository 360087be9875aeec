//! The population plans and what-ifs run on for planners (pure): one point per part of a group
//! of households ([`super::Groups`], [`super::Part`]: whole cells of at least `k` households),
//! at the part's centre, carrying its households' veterans.
//!
//! The planner's data set is the served one with its households replaced by these points
//! (stations, boundaries, divisions and the standard are the same). Every count a plan or a
//! what-if answers is then a sum of whole groups of at least `k` households, and so is every
//! difference of two answers: a station placed to probe one household finds a group of `k`
//! or nothing. A part's centre is the mean of its households' *cell centres* (resolution 8),
//! so no probe can locate anything finer than a cell: a part of one cell sits at the cell's
//! centre. What this costs a plan is measured on the bundled data (README, "Privacy").

use crate::model::{Dataset, HouseholdRow, Households, NO_UNIT};

use super::Groups;

/// The planner's data set: `ds` with one household per part of a group ([`super::Part`]: id =
/// the group's cell, followed by `.N` for the N-th part of a group of several; at the part's
/// centre, with its veterans; no personal details). Withheld households
/// ([`Groups::withheld`]) are left out.
pub fn demand_dataset(ds: &Dataset, groups: &Groups) -> Dataset {
    let mut households = Households::default();
    for g in &groups.groups {
        for (i, p) in g.parts.iter().enumerate() {
            let id = if g.parts.len() == 1 { g.key.to_string() } else { format!("{}.{}", g.key, i + 1) };
            households.push(HouseholdRow {
                id,
                lon: p.centre.0,
                lat: p.centre.1,
                veterans: u32::try_from(p.veterans).unwrap_or(u32::MAX),
                ..Default::default()
            });
        }
    }
    // Grown a point at a time: the room beyond the points is given back (the planner keeps
    // them as long as the server runs).
    households.shrink_to_fit();
    Dataset {
        divisions: ds.divisions.clone(),
        boundaries: ds.boundaries.clone(),
        stations: ds.stations.clone(),
        households,
        grids: ds.grids.clone(),
        standard: ds.standard.clone(),
        rejects: Vec::new(),
        notes: Vec::new(),
        privacy: ds.privacy,
        service: ds.service,
    }
}

/// Households of each demand point of [`demand_dataset`] (its part's size), in order.
pub fn group_sizes(groups: &Groups) -> Vec<u32> {
    groups.groups.iter().flat_map(|g| g.parts.iter().map(|p| p.households)).collect()
}

/// Turns a what-if measured on the demand points into households: every household count of
/// the result (totals, each unit's, each station's) becomes the sum of the sizes of the
/// groups counted, and the list of changed points (`r.households`) is emptied into
/// `(gained, lost)` household counts. `before` is the engine as it was before the what-if
/// (what [`crate::analysis::scenario_in_place`] leaves it as), `sizes` the groups' sizes
/// ([`group_sizes`]). Distances and veterans are left as measured: veterans are already
/// summed per group; distances are of the groups' centres.
pub fn scenario_in_households(
    r: &mut crate::analysis::ScenarioResult,
    before: &crate::analysis::Live,
    sizes: &[u32],
) -> (u64, u64) {
    use crate::analysis::scenario::Change;
    let ds = before.dataset();
    let asg = &before.analysis().assignment;
    let size = |h: u32| u64::from(sizes.get(h as usize).copied().unwrap_or(0));
    let nu = ds.divisions.len();
    let (mut all, mut covered) = (vec![0i64; nu], vec![0i64; nu]);
    let (mut delta, mut total, mut total_covered) = (vec![0i64; nu], 0i64, 0i64);
    let chain = |h: usize| {
        let u = asg.unit[h];
        let c = if u == NO_UNIT { [NO_UNIT; 5] } else { ds.divisions.chain(u) };
        c.into_iter().filter(|&a| a != NO_UNIT)
    };
    for h in 0..ds.households.len() {
        let n = size(h as u32) as i64;
        total += n;
        let cov = asg.covered[h] != 0;
        if cov {
            total_covered += n;
        }
        for a in chain(h) {
            all[a as usize] += n;
            if cov {
                covered[a as usize] += n;
            }
        }
    }
    let (mut gained, mut lost) = (0u64, 0u64);
    let mut by_station: std::collections::HashMap<&str, u64> = Default::default();
    for d in &r.households {
        let n = size(d.household);
        let s = if d.change == Change::Gained { 1 } else { -1 };
        if s > 0 {
            gained += n;
        } else {
            lost += n;
        }
        *by_station.entry(d.station_id.as_str()).or_default() += n;
        for a in chain(d.household as usize) {
            delta[a as usize] += s * n as i64;
        }
    }
    for st in r.added.iter_mut().chain(r.removed.iter_mut()) {
        st.households = by_station.get(st.id.as_str()).copied().unwrap_or(0) as usize;
    }
    r.before.households = total;
    r.before.covered_households = total_covered;
    r.after.households = total;
    r.after.covered_households = total_covered + gained as i64 - lost as i64;
    for u in &mut r.units {
        let Some(i) = ds.divisions.find(&u.code) else { continue };
        let i = i as usize;
        u.before.households = all[i];
        u.before.covered_households = covered[i];
        u.after.households = all[i];
        u.after.covered_households = covered[i] + delta[i];
    }
    r.households.clear();
    (gained, lost)
}
