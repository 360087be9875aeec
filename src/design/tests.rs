//! Grid design on hand-made regions: caps, exact cover, valid polygons inside the region.

use geo::{polygon, Area, BooleanOps, Contains, MultiPolygon, Point, Validation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::index::PreparedPolygon;

/// An L-shaped region (a 0.1° square without its north-east quarter): not convex.
fn l_region() -> MultiPolygon<f64> {
    MultiPolygon(vec![polygon![
        (x: 100.0, y: 40.0), (x: 100.1, y: 40.0), (x: 100.1, y: 40.05), (x: 100.05, y: 40.05),
        (x: 100.05, y: 40.1), (x: 100.0, y: 40.1), (x: 100.0, y: 40.0),
    ]])
}

fn sites_in(region: &MultiPolygon<f64>, n: usize, seed: u64, max_vets: u32) -> Vec<Site> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    while out.len() < n {
        // Two clusters and a uniform background, so the sizes of the cells differ a lot.
        let (lon, lat) = match rng.random_range(0..3) {
            0 => (100.02 + rng.random_range(-0.01..0.01), 40.08 + rng.random_range(-0.01..0.01)),
            1 => (100.08 + rng.random_range(-0.005..0.005), 40.02 + rng.random_range(-0.005..0.005)),
            _ => (rng.random_range(100.0..100.1), rng.random_range(40.0..40.1)),
        };
        let (lon, lat) = ((lon * 1e7f64).round() / 1e7, (lat * 1e7f64).round() / 1e7);
        if region.contains(&Point::new(lon, lat)) {
            out.push(Site { household: out.len() as u32, lon, lat, veterans: rng.random_range(1..=max_vets) });
        }
    }
    out
}

/// Checks everything a design must satisfy; returns the grid sizes.
///
/// Areas may be off by the rounding of the clipping library (i_overlay snaps to a fixed-point
/// grid about 1e-10° fine): 1e-8 of the region, under a square metre here, is allowed.
fn check(region: &MultiPolygon<f64>, sites: &[Site], grids: &[DesignedGrid], caps: &Caps) -> Vec<usize> {
    let region_area = region.unsigned_area();
    let mut total_area = 0.0;
    let prepared: Vec<PreparedPolygon> = grids.iter().map(|g| PreparedPolygon::new(&g.geometry)).collect();
    for (i, g) in grids.iter().enumerate() {
        assert!(g.geometry.is_valid(), "grid {i} is not valid: {:?}", g.geometry.validation_errors());
        assert_eq!(g.parts, g.geometry.0.len());
        assert!(!g.over_cap);
        assert!(g.households.len() <= caps.max_households as usize, "grid {i} has {}", g.households.len());
        if let Some(v) = caps.max_veterans {
            assert!(g.veterans <= u64::from(v), "grid {i} has {} veterans", g.veterans);
        }
        let outside = g.geometry.difference(region).unsigned_area();
        assert!(outside <= 1e-8 * region_area, "grid {i} leaves the region by {outside}");
        total_area += g.geometry.unsigned_area();
        for (j, h) in grids.iter().enumerate().skip(i + 1) {
            let overlap = g.geometry.intersection(&h.geometry).unsigned_area();
            assert!(overlap <= 1e-8 * region_area, "grids {i} and {j} overlap by {overlap}");
        }
    }
    assert!((total_area - region_area).abs() <= 1e-8 * region_area, "grids cover {total_area} of {region_area}");
    for s in sites {
        let holders: Vec<usize> = (0..grids.len()).filter(|&i| prepared[i].contains(s.lon, s.lat)).collect();
        assert_eq!(holders.len(), 1, "household {} lies in grids {holders:?}", s.household);
        assert!(grids[holders[0]].households.contains(&s.household), "household {} is in the wrong grid", s.household);
        assert!(grids[holders[0]].geometry.contains(&Point::new(s.lon, s.lat)));
    }
    let listed: usize = grids.iter().map(|g| g.households.len()).sum();
    assert_eq!(listed, sites.len(), "every household in exactly one grid");
    grids.iter().map(|g| g.households.len()).collect()
}

#[test]
fn household_cap_gives_the_fewest_grids_of_near_equal_size() {
    let region = l_region();
    let sites = sites_in(&region, 1000, 1, 3);
    let caps = Caps { max_households: 120, max_veterans: None };
    let grids = design_grids(&region, &sites, &caps).unwrap();
    assert_eq!(lower_bound(&sites, &caps), 9);
    let sizes = check(&region, &sites, &grids, &caps);
    assert_eq!(grids.len(), 9, "⌈1000 / 120⌉ = 9 grids");
    // Proportional cuts: 1000 into 4 + 5 grids, and so on, gives 111 or 112 each.
    assert!(sizes.iter().all(|&s| (111..=112).contains(&s)), "{sizes:?}");
}

#[test]
fn veteran_cap_holds_too() {
    let region = l_region();
    let sites = sites_in(&region, 800, 2, 4);
    let caps = Caps { max_households: 200, max_veterans: Some(150) };
    let grids = design_grids(&region, &sites, &caps).unwrap();
    check(&region, &sites, &grids, &caps);
    let lb = lower_bound(&sites, &caps) as usize;
    assert!(lb > 800usize.div_ceil(200), "the veterans cap binds");
    assert!(grids.len() >= lb && grids.len() <= lb + 2, "{} grids, at least {lb}", grids.len());
}

#[test]
fn a_region_with_a_hole_and_random_caps() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let outer = polygon![(x: 100.0, y: 40.0), (x: 100.1, y: 40.0), (x: 100.1, y: 40.1), (x: 100.0, y: 40.1), (x: 100.0, y: 40.0)];
    let hole = polygon![(x: 100.04, y: 40.04), (x: 100.06, y: 40.04), (x: 100.06, y: 40.06), (x: 100.04, y: 40.06), (x: 100.04, y: 40.04)];
    let region = MultiPolygon(vec![outer]).difference(&MultiPolygon(vec![hole]));
    for round in 0..4 {
        let n = rng.random_range(1..600);
        let sites = sites_in(&region, n, 100 + round, 2);
        let caps = Caps { max_households: rng.random_range(1..150), max_veterans: None };
        let grids = design_grids(&region, &sites, &caps).unwrap();
        check(&region, &sites, &grids, &caps);
        assert_eq!(grids.len() as u64, lower_bound(&sites, &caps));
    }
}

#[test]
fn households_on_one_spot_stay_together_over_the_cap() {
    let region = l_region();
    let mut sites: Vec<Site> = (0..10).map(|i| Site { household: i, lon: 100.01, lat: 40.01, veterans: 1 }).collect();
    sites.push(Site { household: 10, lon: 100.02, lat: 40.02, veterans: 1 });
    let caps = Caps { max_households: 3, max_veterans: None };
    let grids = design_grids(&region, &sites, &caps).unwrap();
    assert_eq!(grids.len(), 2);
    assert!(grids[0].over_cap && grids[0].households.len() == 10);
    assert_eq!(grids[1].households, vec![10]);
}

#[test]
fn bad_caps_and_empty_input_are_errors() {
    let region = l_region();
    let s = [Site { household: 0, lon: 100.01, lat: 40.01, veterans: 1 }];
    assert_eq!(
        design_grids(&region, &s, &Caps { max_households: 0, max_veterans: None }),
        Err(DesignError::BadCap("max_households"))
    );
    assert_eq!(
        design_grids(&region, &s, &Caps { max_households: 5, max_veterans: Some(0) }),
        Err(DesignError::BadCap("max_veterans"))
    );
    assert!(design_grids(&region, &[], &Caps { max_households: 5, max_veterans: None }).is_err());
}

#[test]
fn units_of_the_small_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small");
    let ds = crate::ingest::read_data_folder(&dir).unwrap();
    let an = crate::analysis::analyze(&ds);
    let caps = Caps { max_households: 1, max_veterans: None };
    // The east township holds H2, H3, H4 inside and H5 on its west edge (a shared corner).
    let d = design_for_unit(&ds, &an, "990101002", &caps, Take::All).unwrap();
    let ids = |hs: &[HouseholdIdx]| hs.iter().map(|&h| ds.households.id[h as usize].to_string()).collect::<Vec<_>>();
    assert_eq!(d.grids.len(), 3);
    assert_eq!(d.lower_bound, 3);
    let mut got: Vec<String> = d.grids.iter().flat_map(|g| ids(&g.households)).collect();
    got.sort();
    assert_eq!(got, ["H2", "H3", "H4"]);
    assert_eq!(ids(&d.outside), ["H5"]);
    let hh = &ds.households;
    let sites: Vec<Site> = d
        .grids
        .iter()
        .flat_map(|g| g.households.iter())
        .map(|&h| Site {
            household: h,
            lon: hh.lon[h as usize],
            lat: hh.lat[h as usize],
            veterans: hh.veterans[h as usize],
        })
        .collect();
    check(&d.region, &sites, &d.grids, &caps);
    // Two per grid: the households span 0.6° of latitude but only 0.15° of longitude (0.11° on
    // the ground), so the cut is by latitude, and H3 (south) is alone; ties go to the first cut.
    let two =
        design_for_unit(&ds, &an, "990101002", &Caps { max_households: 2, max_veterans: None }, Take::All).unwrap();
    assert_eq!(two.grids.len(), 2);
    assert_eq!(ids(&two.grids[0].households), ["H3"]);
    assert_eq!(ids(&two.grids[1].households), ["H2", "H4"]);
    // Errors name the code.
    let e = design_for_unit(&ds, &an, "990101", &caps, Take::All).unwrap_err();
    assert!(matches!(e, DesignError::WrongLevel { .. }) && e.to_string().contains("990101"), "{e}");
    assert_eq!(design_for_unit(&ds, &an, "123", &caps, Take::All).unwrap_err(), DesignError::UnknownCode("123".into()));
    // The west township is all one grid (G1): nothing is left outside the grids.
    let e = design_for_unit(&ds, &an, "990101001", &caps, Take::UngriddedOnly).unwrap_err();
    assert!(matches!(e, DesignError::NoHouseholds(_)), "{e}");
    // Ungridded-only in the east: the same households, as no grid reaches there.
    let u = design_for_unit(&ds, &an, "990101002", &caps, Take::UngriddedOnly).unwrap();
    assert_eq!(u.grids.len(), 3);
}
