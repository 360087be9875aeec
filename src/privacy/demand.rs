//! The population plans and what-ifs run on for planners (pure): one point per group of
//! households ([`super::Groups`]), at the group's centre, carrying its households' veterans.
//!
//! The planner's data set is the served one with its households replaced by these points
//! (stations, boundaries, divisions and the standard are the same). Every count a plan or a
//! what-if answers is then a sum of whole groups of at least `k` households, and so is every
//! difference of two answers: a station placed to probe one household finds a group of `k`
//! or nothing. Positions are moved by at most the group's extent (within one resolution-8
//! cell, ≈ 0.5 km, wherever households are dense enough to fill one), which the bundled
//! data's plan figures show costs little (README, "Privacy").

use crate::model::{Dataset, HouseholdRow, Households};

use super::Groups;

/// The planner's data set: `ds` with one household per group (id = the group's cell, at
/// the group's centre, with its veterans; no personal details). Withheld
/// households ([`Groups::withheld`]) are left out.
pub fn demand_dataset(ds: &Dataset, groups: &Groups) -> Dataset {
    let mut households = Households::default();
    for g in &groups.groups {
        households.push(HouseholdRow {
            id: g.key.to_string(),
            lon: g.centre.0,
            lat: g.centre.1,
            veterans: u32::try_from(g.veterans).unwrap_or(u32::MAX),
            ..Default::default()
        });
    }
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
    }
}
