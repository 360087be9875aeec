//! Unit tests of the generator on a hand-made province.

use geo::{Area, BooleanOps, Contains, LineString, MultiPolygon, Point, Polygon, Validation};

use super::*;
use crate::model::AdminArea;

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
    MultiPolygon::new(vec![Polygon::new(
        LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]),
        vec![],
    )])
}

/// Province 62 with one city and three counties: 620101 (0.5° square, a sub-district and
/// `towns` rural townships of `villages` villages each), 620102 (a vast county with three
/// villages in all: pastoral) and 620103 (no boundary).
pub(crate) fn fixture(towns: usize, villages: usize) -> (Divisions, Boundaries) {
    let mut d = Divisions::new();
    d.add("62", "甘肃省", Level::Province, None).unwrap();
    d.add("6201", "兰州市", Level::City, Some("62")).unwrap();
    d.add("620101", "城关区", Level::County, Some("6201")).unwrap();
    d.add("620101001", "东岗街道", Level::Township, Some("620101")).unwrap();
    for v in 1..=3 {
        d.add(&format!("620101001{v:03}"), &format!("东岗{v}社区居民委员会"), Level::Village, Some("620101001"))
            .unwrap();
    }
    for t in 2..towns + 2 {
        let tc = format!("620101{t:03}");
        d.add(&tc, &format!("第{t}镇"), Level::Township, Some("620101")).unwrap();
        for v in 1..=villages {
            d.add(&format!("{tc}{v:03}"), &format!("{t}号{v}村村民委员会"), Level::Village, Some(&tc)).unwrap();
        }
    }
    d.add("620102", "草原县", Level::County, Some("6201")).unwrap();
    d.add("620102001", "草原乡", Level::Township, Some("620102")).unwrap();
    d.add("620102001001", "一村民委员会", Level::Village, Some("620102001")).unwrap();
    d.add("620102001002", "二村民委员会", Level::Village, Some("620102001")).unwrap();
    d.add("620102002", "牧场乡", Level::Township, Some("620102")).unwrap();
    d.add("620102002001", "三村民委员会", Level::Village, Some("620102002")).unwrap();
    d.add("620103", "新区", Level::County, Some("6201")).unwrap();
    d.add("620103001", "新区街道", Level::Township, Some("620103")).unwrap();
    d.add("620103001001", "新社区居委会", Level::Village, Some("620103001")).unwrap();

    let area = |code: &str, mp| AdminArea { unit: d.find(code).unwrap(), geometry: mp, derived: false };
    let b = Boundaries {
        areas: vec![
            area("62", rect(100.0, 36.0, 102.5, 37.5)),
            area("6201", rect(100.0, 36.0, 102.5, 37.5)),
            area("620101", rect(100.0, 36.0, 100.5, 36.5)),
            area("620102", rect(100.5, 36.0, 102.5, 37.5)),
        ],
    };
    (d, b)
}

fn run(towns: usize, villages: usize, params: &GenerateParams) -> (Divisions, Generated) {
    let (d, b) = fixture(towns, villages);
    let g = generate(&d, &b, params).unwrap();
    (d, g)
}

fn area_of(g: &Generated, u: UnitIdx) -> &MultiPolygon<f64> {
    &g.boundaries.areas.iter().find(|a| a.unit == u).unwrap().geometry
}

#[test]
fn derived_polygons_are_valid_nested_and_tile_their_parent() {
    let (d, g) = run(4, 6, &GenerateParams::new(3, 2_000));
    let mut parents = 0;
    for a in &g.boundaries.areas {
        let level = d.get(a.unit).level;
        if level == Level::Township || level == Level::Village {
            assert!(a.derived);
            assert!(!a.geometry.0.is_empty(), "{} is empty", d.get(a.unit).code);
            assert!(a.geometry.is_valid(), "{} is invalid", d.get(a.unit).code);
        }
        if level != Level::County && level != Level::Township {
            continue;
        }
        let kids: Vec<&MultiPolygon<f64>> = d.children(a.unit).iter().map(|&c| area_of(&g, c)).collect();
        if kids.is_empty() {
            continue;
        }
        parents += 1;
        let parent_area = a.geometry.unsigned_area();
        let sum: f64 = kids.iter().map(|k| k.unsigned_area()).sum();
        assert!((sum - parent_area).abs() <= 1e-6 * parent_area, "{}: {sum} vs {parent_area}", d.get(a.unit).code);
        for k in kids {
            let out = k.difference(&a.geometry).unsigned_area();
            assert!(out <= 1e-6 * parent_area, "{} {out} {}", d.get(a.unit).code, out / parent_area);
        }
    }
    // Two counties and their five (derived) townships with villages.
    assert_eq!(parents, 2 + 5 + 2);
}

#[test]
fn households_lie_in_their_village_with_realistic_attributes() {
    let params = GenerateParams::new(5, 20_000);
    let (d, g) = run(3, 5, &params);
    let h = &g.households;
    assert_eq!(h.len(), 20_000);
    let ids: HashSet<&str> = h.id.iter().collect();
    assert_eq!(ids.len(), h.len());
    assert_eq!(&h.id[0], "H000000001");
    for i in 0..h.len() {
        let v = h.code.get(i).unwrap();
        assert_eq!(d.get(v).level, Level::Village);
        assert!(area_of(&g, v).contains(&Point::new(h.lon[i], h.lat[i])), "household {i} outside its village");
        assert!((1..=3).contains(&h.veterans[i]));
        assert!(h.name.get(i).is_some() && h.address.get(i).unwrap().contains("号"));
    }
    let mean = h.total_veterans() as f64 / h.len() as f64;
    assert!((1.2..1.3).contains(&mean), "mean veterans {mean}");
    let share = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64;
    assert!((0.06..0.10).contains(&share(&h.difficulty)));
    assert!((0.02..0.04).contains(&share(&h.martyr_family)));
    // Nothing in the county without a boundary.
    let no_boundary = d.find("620103").unwrap();
    assert!(h.code.iter().all(|c| !d.is_within(c.unwrap(), no_boundary)));
    assert!(g.notes.iter().any(|n| n.contains("620103")));
}

#[test]
fn same_seed_same_output_other_seed_other_output() {
    let a = run(2, 4, &GenerateParams::new(11, 3_000)).1;
    let b = run(2, 4, &GenerateParams::new(11, 3_000)).1;
    let c = run(2, 4, &GenerateParams::new(12, 3_000)).1;
    let key = |g: &Generated| {
        (
            g.households.lon.clone(),
            g.households.lat.clone(),
            g.households.name.clone(),
            g.stations.lon.clone(),
            g.stations.id.clone(),
            g.grids.id.clone(),
            g.grids.geometry.clone(),
            g.boundaries.areas.iter().map(|a| a.geometry.clone()).collect::<Vec<_>>(),
        )
    };
    assert!(key(&a) == key(&b));
    assert!(key(&a) != key(&c));
    assert_ne!(a.households.lon, c.households.lon);
}

#[test]
fn station_rules() {
    let (d, g) = run(10, 12, &GenerateParams::new(2, 5_000));
    let s = &g.stations;
    let ids: HashSet<&String> = s.id.iter().collect();
    assert_eq!(ids.len(), s.len());
    let mut per_unit: HashMap<UnitIdx, usize> = HashMap::new();
    for i in 0..s.len() {
        assert_eq!(d.get(s.unit[i]).level, s.level[i]);
        *per_unit.entry(s.unit[i]).or_default() += 1;
        assert!(s.radius_m[i].is_none());
        assert!(s.name[i].contains("退役军人"));
    }
    assert!(per_unit.values().all(|&n| n == 1));
    // Every province, city and county unit has a station, even the one without a boundary.
    for l in [Level::Province, Level::City, Level::County] {
        assert!(d.at_level(l).all(|u| per_unit.contains_key(&u)), "{l}");
    }
    let no_boundary = d.find("620103").unwrap();
    assert!(s.unit.iter().all(|&u| u == no_boundary || !d.is_within(u, no_boundary)));
    // Most villages have one; the county station sits inside its county.
    let villages = d.at_level(Level::Village).filter(|&v| !d.is_within(v, no_boundary)).count();
    let with = s.level.iter().filter(|&&l| l == Level::Village).count();
    assert!(with as f64 >= 0.85 * villages as f64 && with <= villages, "{with}/{villages}");
    let county = d.find("620101").unwrap();
    let i = s.unit.iter().position(|&u| u == county).unwrap();
    assert!(area_of(&g, county).contains(&Point::new(s.lon[i], s.lat[i])));
    assert!(s.name[i].ends_with("服务中心"));
}

#[test]
fn mobile_stations_only_in_pastoral_counties() {
    let pastoral_county = 620102;
    let mut mobile = 0;
    for seed in 0..6 {
        let (d, g) = run(3, 5, &GenerateParams::new(seed, 1_000));
        let pastoral: Vec<&str> = g.pastoral.iter().map(|&c| d.get(c).code.as_str()).collect();
        assert_eq!(pastoral, vec![pastoral_county.to_string().as_str()]);
        for i in 0..g.stations.len() {
            if g.stations.mobile[i] {
                mobile += 1;
                let county = d.ancestor(g.stations.unit[i], Level::County).unwrap();
                assert!(g.pastoral.contains(&county));
                assert_eq!(g.stations.level[i], Level::Village);
                assert!(g.stations.radius_m[i].is_none());
            }
        }
    }
    assert!(mobile > 0, "no mobile station in six seeds");
}

#[test]
fn grids_hold_at_most_the_cap_and_lie_in_their_village() {
    let params = GenerateParams { max_grid_households: 40, ..GenerateParams::new(9, 6_000) };
    let (d, g) = run(2, 3, &params);
    let h = &g.households;
    let mut split = 0;
    let mut villages_with_grids = HashSet::new();
    for i in 0..g.grids.len() {
        let v = g.grids.unit[i].unwrap();
        villages_with_grids.insert(v);
        assert_eq!(d.get(v).level, Level::Village);
        let grid = &g.grids.geometry[i];
        assert!(grid.is_valid() && !grid.0.is_empty());
        let village = area_of(&g, v);
        assert!(grid.difference(village).unsigned_area() <= 1e-6 * village.unsigned_area());
        let inside = (0..h.len())
            .filter(|&j| h.code.get(j) == Some(v) && grid.contains(&Point::new(h.lon[j], h.lat[j])))
            .count();
        assert!(inside <= 40, "grid {} holds {inside}", g.grids.id[i]);
        if g.grids.id[i].ends_with("-2") {
            split += 1;
        }
    }
    assert!(split > 0, "no village was split into grids");
    // Grids of a village tile it.
    for &v in &villages_with_grids {
        let sum: f64 = (0..g.grids.len())
            .filter(|&i| g.grids.unit[i] == Some(v))
            .map(|i| g.grids.geometry[i].unsigned_area())
            .sum();
        let a = area_of(&g, v).unsigned_area();
        assert!((sum - a).abs() <= 1e-6 * a);
    }
}

#[test]
fn some_villages_have_no_grid_at_default_share() {
    let (d, g) = run(12, 10, &GenerateParams::new(4, 30_000));
    let with: HashSet<UnitIdx> = g.grids.unit.iter().map(|u| u.unwrap()).collect();
    let villages = d.at_level(Level::Village).count() - 1;
    let without = villages - with.len();
    assert!(without > 0 && (without as f64) < 0.15 * villages as f64, "{without} of {villages}");
}

#[test]
fn bad_params_and_inputs_are_errors() {
    let (d, b) = fixture(1, 1);
    let p = GenerateParams { max_grid_households: 0, ..GenerateParams::default() };
    assert!(matches!(generate(&d, &b, &p), Err(GenerateError::InvalidParams { .. })));
    let only_province = Boundaries { areas: b.areas[..1].to_vec() };
    assert!(matches!(generate(&d, &only_province, &p.clone()), Err(GenerateError::InvalidParams { .. })));
    assert!(matches!(
        generate(&d, &only_province, &GenerateParams::new(1, 10)),
        Err(GenerateError::NoCountyBoundaries)
    ));
    let mut bad = b.clone();
    bad.areas[0].unit = 9_999;
    assert!(matches!(generate(&d, &bad, &GenerateParams::new(1, 10)), Err(GenerateError::UnknownUnit { .. })));
}

#[test]
fn largest_remainder_shares_exactly() {
    assert_eq!(largest_remainder(&[1.0, 1.0, 1.0], 10), vec![4, 3, 3]);
    assert_eq!(largest_remainder(&[3.0, 1.0], 0), vec![0, 0]);
    assert_eq!(largest_remainder(&[0.2, 0.8], 5).iter().sum::<usize>(), 5);
}
