//! The live engine against a from-scratch analysis, after random edits.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::analysis::{analyze, UnitCoverage};
use crate::model::{Divisions, HouseholdRow, Standard};

/// A made-up county of 2 cities, 3 counties, 6 townships and 15 villages around 100.5°E 40.5°N,
/// with `n` households placed by their codes (some without a code: unplaced) and stations of
/// every level, some mobile, some with their own radius.
fn dataset(seed: u64, n: usize) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut d = Divisions::new();
    d.add("99", "省", Level::Province, None).unwrap();
    let mut villages = Vec::new();
    let mut townships = Vec::new();
    for (city, counties) in [("9901", 2), ("9902", 1)] {
        d.add(city, "市", Level::City, Some("99")).unwrap();
        for c in 1..=counties {
            let county = format!("{city}{c:02}");
            d.add(&county, "县", Level::County, Some(city)).unwrap();
            for t in 1..=2 {
                let town = format!("{county}{t:03}");
                townships.push(d.add(&town, "镇", Level::Township, Some(&county)).unwrap());
                for v in 1..=(1 + (t + c) % 3) {
                    let vil = format!("{town}{v:03}");
                    villages.push(d.add(&vil, "村", Level::Village, Some(&town)).unwrap());
                }
            }
        }
    }
    let mut ds = Dataset {
        divisions: d.into(),
        standard: Standard {
            province_radius_m: 40_000.0,
            city_radius_m: 20_000.0,
            county_radius_m: 10_000.0,
            township_radius_m: 5_000.0,
            village_radius_m: 2_000.0,
            mobile_radius_m: 12_000.0,
            village_station_veterans: 60,
            ..Standard::default()
        },
        ..Dataset::default()
    };
    for i in 0..n {
        let code = match rng.random_range(0..20) {
            0 => None,
            1 => Some(townships[rng.random_range(0..townships.len())]),
            _ => Some(villages[rng.random_range(0..villages.len())]),
        };
        // Clustered a little so that some stations serve many and some none.
        let (cx, cy) = [(100.2, 40.2), (100.7, 40.3), (100.5, 40.8)][i % 3];
        ds.households.push(HouseholdRow {
            id: format!("H{i}"),
            lon: cx + rng.random_range(-0.25..0.25) * rng.random::<f64>(),
            lat: cy + rng.random_range(-0.2..0.2) * rng.random::<f64>(),
            veterans: rng.random_range(1..=3),
            code,
            difficulty: rng.random_bool(0.1),
            martyr_family: rng.random_bool(0.05),
            ..HouseholdRow::default()
        });
    }
    for k in 0..40 {
        let units: Vec<UnitIdx> = ds.divisions.iter().map(|(u, _)| u).collect();
        let u = units[rng.random_range(0..units.len())];
        let level = ds.divisions.get(u).level;
        ds.stations.push(StationRow {
            id: format!("S{k}"),
            name: String::new(),
            level,
            unit: u,
            lon: rng.random_range(100.0..101.0),
            lat: rng.random_range(40.0..41.0),
            demonstration: rng.random_bool(0.2),
            mobile: rng.random_bool(0.15),
            radius_m: rng.random_bool(0.15).then(|| rng.random_range(500.0..15_000.0)),
        });
    }
    ds
}

fn without_sum(u: &UnitCoverage) -> UnitCoverage {
    UnitCoverage { nearest_sum_m: 0.0, nearest_median_m: 0.0, nearest_p90_m: 0.0, ..u.clone() }
}

fn same_unit(live: &UnitCoverage, fresh: &UnitCoverage, what: &str) {
    assert_eq!(without_sum(live), without_sum(fresh), "{what}");
    let tol = 1e-6 * fresh.nearest_sum_m.abs().max(1.0);
    assert!(
        (live.nearest_sum_m - fresh.nearest_sum_m).abs() <= tol,
        "{what}: sum {} vs {}",
        live.nearest_sum_m,
        fresh.nearest_sum_m
    );
    assert_eq!(live.nearest_median_m.to_bits(), fresh.nearest_median_m.to_bits(), "{what}: median");
    assert_eq!(live.nearest_p90_m.to_bits(), fresh.nearest_p90_m.to_bits(), "{what}: p90");
}

/// Every figure of `live` equals a fresh analysis of its data set.
fn check_against_fresh(live: &Live) {
    let fresh = analyze(live.dataset());
    let (a, b) = (&live.analysis().assignment, &fresh.assignment);
    assert_eq!(a.nearest, b.nearest, "nearest stations");
    for l in 0..5 {
        let x: Vec<u32> = a.nearest_m[l].iter().map(|v| v.to_bits()).collect();
        let y: Vec<u32> = b.nearest_m[l].iter().map(|v| v.to_bits()).collect();
        assert_eq!(x, y, "nearest distances of level {l}");
    }
    assert_eq!(a.covered, b.covered, "coverage bits");
    let (c, f) = (&live.analysis().coverage, &fresh.coverage);
    assert_eq!(c.units.len(), f.units.len());
    for (u, (x, y)) in c.units.iter().zip(&f.units).enumerate() {
        same_unit(x, y, &format!("unit {}", live.dataset().divisions.get(u as UnitIdx).code));
    }
    same_unit(&c.unplaced, &f.unplaced, "unplaced");
    let g: Vec<_> = live.gaps().iter().map(|g| (g.households.clone(), g.veterans)).collect();
    let h: Vec<_> = fresh.gaps.iter().map(|g| (g.households.clone(), g.veterans)).collect();
    assert_eq!(g, h, "gaps");
    for (s, id) in live.dataset().stations.id.iter().enumerate() {
        assert_eq!(live.station_index_by_id(id), Some(s as StationIdx));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add { unit: usize, lon: f64, lat: f64, mobile: bool, radius: Option<f64> },
    Move { k: usize, lon: f64, lat: f64 },
    Remove { k: usize },
    Reopen { k: usize },
    Undo,
}

fn op() -> impl Strategy<Value = Op> {
    let pos = (100.0f64..101.0, 40.0f64..41.0);
    prop_oneof![
        3 => (any::<usize>(), pos.clone(), any::<bool>(), proptest::option::weighted(0.2, 300.0f64..20_000.0))
            .prop_map(|(unit, (lon, lat), mobile, radius)| Op::Add { unit, lon, lat, mobile: mobile && unit % 3 == 0, radius }),
        3 => (any::<usize>(), pos).prop_map(|(k, (lon, lat))| Op::Move { k, lon, lat }),
        3 => any::<usize>().prop_map(|k| Op::Remove { k }),
        1 => any::<usize>().prop_map(|k| Op::Reopen { k }),
        1 => Just(Op::Undo),
    ]
}

/// Applies `op`; returns whether it changed anything.
fn apply(live: &mut Live, op: &Op, added: &mut Vec<String>) -> Option<StationChange> {
    let n = live.dataset().stations.len();
    let id = |k: usize| live.dataset().stations.id[k % n].clone();
    match *op {
        Op::Add { unit, lon, lat, mobile, radius } => {
            let u = (unit % live.dataset().divisions.len()) as UnitIdx;
            let id = format!("N{}", live.dataset().stations.len());
            let row = StationRow {
                id: id.clone(),
                name: "new".into(),
                level: live.dataset().divisions.get(u).level,
                unit: u,
                lon,
                lat,
                demonstration: unit % 2 == 0,
                mobile,
                radius_m: radius,
            };
            let ch = live.add_station(row).unwrap();
            added.push(id);
            Some(ch)
        }
        Op::Move { k, lon, lat } => live.move_station(&id(k), lon, lat).ok(),
        Op::Remove { k } => live.remove_station(&id(k)).ok(),
        Op::Reopen { k } => live.reopen_station(&id(k)).ok(),
        Op::Undo => {
            let last = live.dataset().stations.id.last()?.clone();
            if added.last() == Some(&last) {
                added.pop();
                live.undo_add(&last).ok()
            } else {
                None
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_match_a_fresh_analysis(seed in 0u64..1000, ops in proptest::collection::vec(op(), 1..14), large in prop_oneof![Just(64usize), Just(1usize << 20)]) {
        let mut live = Live::with_large_unit(dataset(seed, 1500), large);
        check_against_fresh(&live);
        let mut added = Vec::new();
        for op in &ops {
            let before = live.analysis().clone();
            let ch = apply(&mut live, op, &mut added);
            check_against_fresh(&live);
            if let Some(ch) = ch {
                // gained / lost are exactly the households whose coverage flipped.
                let now = &live.analysis().assignment.covered;
                let flipped = |gain: bool| -> Vec<HouseholdIdx> {
                    (0..now.len())
                        .filter(|&h| (before.assignment.covered[h] == 0 && now[h] != 0 && gain) || (before.assignment.covered[h] != 0 && now[h] == 0 && !gain))
                        .map(|h| h as HouseholdIdx)
                        .collect()
                };
                prop_assert_eq!(&ch.gained, &flipped(true));
                prop_assert_eq!(&ch.lost, &flipped(false));
                // Every unit whose figures changed is reported.
                for (u, (x, y)) in before.coverage.units.iter().zip(&live.analysis().coverage.units).enumerate() {
                    if without_sum(x) != without_sum(y) || x.nearest_median_m.to_bits() != y.nearest_median_m.to_bits() || x.nearest_p90_m.to_bits() != y.nearest_p90_m.to_bits() {
                        prop_assert!(ch.units.contains(&(u as UnitIdx)), "unit {} changed but is not reported", u);
                    }
                }
            }
        }
    }
}

#[test]
fn errors_leave_everything_as_it_was() {
    let mut live = Live::new(dataset(7, 300));
    let row = live.dataset().stations.row(0);
    assert_eq!(live.add_station(row.clone()), Err(LiveError::DuplicateId("S0".into())));
    let mut bad = StationRow { id: "X".into(), lon: f64::NAN, ..row.clone() };
    assert!(matches!(live.add_station(bad.clone()), Err(LiveError::BadCoordinates { .. })));
    bad.lon = 100.0;
    bad.lat = 95.0;
    assert!(matches!(live.add_station(bad.clone()), Err(LiveError::BadCoordinates { .. })));
    bad.lat = 40.0;
    bad.unit = 10_000;
    assert!(matches!(live.add_station(bad.clone()), Err(LiveError::BadStation { .. })));
    bad.unit = 0;
    bad.level = Level::Village;
    let e = live.add_station(bad.clone()).unwrap_err();
    assert!(e.to_string().contains("province"), "{e}");
    bad.level = Level::Province;
    bad.radius_m = Some(-1.0);
    assert!(matches!(live.add_station(bad), Err(LiveError::BadStation { .. })));
    assert_eq!(live.move_station("nope", 100.0, 40.0), Err(LiveError::UnknownId("nope".into())));
    assert!(matches!(live.move_station("S0", 200.0, 40.0), Err(LiveError::BadCoordinates { .. })));
    live.remove_station("S0").unwrap();
    assert_eq!(live.remove_station("S0"), Err(LiveError::Closed("S0".into())));
    assert_eq!(live.move_station("S0", 100.0, 40.0), Err(LiveError::Closed("S0".into())));
    assert_eq!(live.reopen_station("S1"), Err(LiveError::Open("S1".into())));
    assert_eq!(live.dataset().stations.len(), 40);
    check_against_fresh(&live);
}

#[test]
fn a_station_on_a_lone_household_covers_it() {
    // Hand-worked: a village station put exactly on an uncovered household covers it (0 m),
    // and only the households within 2 km gain; closing it takes exactly those back.
    let mut live = Live::new(dataset(3, 600));
    let a = &live.analysis().assignment;
    let h = (0..a.len()).find(|&h| a.covered[h] == 0 && a.unit[h] != NO_UNIT).expect("an uncovered household");
    let (lon, lat) = (live.dataset().households.lon[h], live.dataset().households.lat[h]);
    let unit = live.dataset().divisions.at_level(Level::Village).next().unwrap();
    let within: Vec<HouseholdIdx> = (0..a.len())
        .filter(|&k| {
            a.covered[k] == 0
                && crate::index::sphere::ground_m(
                    lon,
                    lat,
                    live.dataset().households.lon[k],
                    live.dataset().households.lat[k],
                ) <= 2_000.0
        })
        .map(|k| k as HouseholdIdx)
        .collect();
    let row = StationRow {
        id: "NEW".into(),
        name: "新站".into(),
        level: Level::Village,
        unit,
        lon,
        lat,
        demonstration: false,
        mobile: false,
        radius_m: None,
    };
    let ch = live.add_station(row).unwrap();
    assert!(ch.gained.contains(&(h as HouseholdIdx)));
    assert_eq!(ch.gained, within);
    assert_eq!(live.analysis().assignment.nearest_m[4][h], 0.0);
    let s = live.station_index_by_id("NEW").unwrap();
    assert_eq!(ch.station, s);
    let ch2 = live.remove_station("NEW").unwrap();
    assert_eq!(ch2.lost, within);
    assert!(!live.dataset().stations.active[s as usize]);
    check_against_fresh(&live);
}

#[test]
fn live_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Live>();
}

#[test]
fn the_parallel_start_is_the_serial_one() {
    // The structures `from_parts` makes in parallel, against the one-thread rule they had:
    // unit vectors, the cells' order, every cell's and block's bounds (by `refresh_cell` and
    // `refresh_block`, one after another), and the large units' histograms.
    for (seed, n, large) in [(11, 4000, 64), (12, 2500, 300), (13, 50, 1 << 20)] {
        let live = Live::with_large_unit(dataset(seed, n), large);
        let hh = &live.dataset().households;
        let pos: Vec<Unit3> = (0..hh.len()).map(|i| to_unit(hh.lon[i], hh.lat[i])).collect();
        let bits = |v: &[Unit3]| v.iter().flat_map(|p| p.map(f64::to_bits)).collect::<Vec<u64>>();
        assert_eq!(bits(&(0..hh.len() as HouseholdIdx).map(|h| live.hh_pos(h)).collect::<Vec<_>>()), bits(&pos));
        // Each household's cell is the one of its keys.
        for cell in &live.cells.cells {
            for &h in &live.cells.list[cell.start as usize..cell.end as usize] {
                assert_eq!(Cells::keys(pos[h as usize]), Cells::keys(cell.lo));
            }
        }
        // The cells' order: households sorted by (block, cell, index) on one thread.
        let edge = m_to_chord_2(CELL_M).sqrt();
        let key = |p: Unit3| -> [i32; 3] { p.map(|c| (c / edge).floor() as i32) };
        let mut order: Vec<_> =
            pos.iter().enumerate().map(|(h, &p)| ((key(p).map(|c| c.div_euclid(BLOCK_CELLS)), key(p)), h)).collect();
        order.sort();
        assert_eq!(live.cells.list, order.iter().map(|x| x.1 as HouseholdIdx).collect::<Vec<_>>());
        // Bounds made again, cell by cell and block by block.
        let mut serial = live.clone();
        for c in &mut serial.cells.cells {
            c.max2 = [f64::NAN; 5];
        }
        for b in &mut serial.cells.blocks {
            b.max2 = [f64::NAN; 5];
        }
        for c in 0..serial.cells.cells.len() {
            for l in Level::ALL {
                serial.refresh_cell(c, l);
            }
        }
        for b in 0..serial.cells.blocks.len() {
            for l in Level::ALL {
                serial.refresh_block(b, l);
            }
        }
        let cell_bits = |l: &Live| l.cells.cells.iter().map(|c| c.max2.map(f64::to_bits)).collect::<Vec<_>>();
        let block_bits = |l: &Live| l.cells.blocks.iter().map(|b| b.max2.map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(cell_bits(&live), cell_bits(&serial));
        assert_eq!(block_bits(&live), block_bits(&serial));
        assert!(live.cells.cells.iter().any(|c| c.max2.iter().any(|&m| m > 0.0 && m.is_finite())));
        // Histograms, one unit after another.
        let a = &live.analysis().assignment;
        let mut kept = 0;
        for u in 0..live.dataset().divisions.len() {
            let mut want = vec![0u32; HIST_BUCKETS];
            let mut n = 0;
            Live::for_members(&live.dataset().divisions, &live.own, u as UnitIdx, |h| {
                n += 1;
                let d = a.nearest_any_m(h);
                if d.is_finite() {
                    want[hist_key(d)] += 1;
                }
            });
            match &live.hist[u] {
                Some(h) => {
                    assert!(n >= large);
                    assert_eq!(&h[..], &want[..]);
                    kept += 1;
                }
                None => assert!(n < large),
            }
        }
        assert_eq!(kept > 0, large < n, "seed {seed}");
    }
}
