//! Gap areas: uncovered households clustered into areas, ranked by veterans.
//!
//! Clustering links uncovered households through a 3-D grid of cells on the unit sphere, of
//! edge equal to the link distance: households in the same or neighbouring cells belong to
//! the same gap. Two households closer than the link distance always end up together;
//! households up to about 3.5 link distances apart may too. It is linear in the number of
//! households and has no seams at any longitude or latitude.

use std::collections::HashMap;

use geo::{ConvexHull, Coord, MultiPoint, Point, Polygon};

use super::assign::Assignment;
use crate::index::sphere::{chord_2_to_m, m_to_chord_2, to_lonlat, to_unit, Unit3};
use crate::index::StationIndex;
use crate::model::{Dataset, HouseholdIdx, Level, StationIdx, UnitIdx, NO_UNIT};

/// One gap area.
#[derive(Debug, Clone)]
pub struct Gap {
    /// Rank by veterans, 1 = most.
    pub rank: u32,
    /// Convex hull of its households, widened by [`GAP_MARGIN_M`], WGS84.
    pub hull: Polygon<f64>,
    /// Veteran-weighted centre, WGS84 lon/lat.
    pub centroid: (f64, f64),
    /// Households in it.
    pub households: Vec<HouseholdIdx>,
    /// Veterans in it.
    pub veterans: u64,
    /// The unit most of its households belong to, at each level ([`NO_UNIT`] when none).
    pub units: [UnitIdx; 5],
    /// Nearest active station of any level to the centre, and the distance in metres.
    pub nearest_station: Option<(StationIdx, f64)>,
}

/// Margin drawn around a gap's households so that its polygon is a true area even for one
/// household, metres.
pub const GAP_MARGIN_M: f64 = 250.0;

/// Clusters the uncovered households of an assignment into gap areas, largest first.
pub fn gaps(ds: &Dataset, a: &Assignment, stations: &StationIndex) -> Vec<Gap> {
    let hh = &ds.households;
    let cell = m_to_chord_2(ds.standard.gap_link_m).sqrt();
    let key = |p: Unit3| -> [i32; 3] { p.map(|c| (c / cell).floor() as i32) };
    // Cells of uncovered households, in household order (deterministic).
    let mut cells: HashMap<[i32; 3], usize> = HashMap::new();
    let mut cell_members: Vec<Vec<HouseholdIdx>> = Vec::new();
    let mut cell_keys: Vec<[i32; 3]> = Vec::new();
    for h in 0..a.len() {
        if a.covered[h] != 0 {
            continue;
        }
        let k = key(to_unit(hh.lon[h], hh.lat[h]));
        let c = *cells.entry(k).or_insert_with(|| {
            cell_members.push(Vec::new());
            cell_keys.push(k);
            cell_members.len() - 1
        });
        cell_members[c].push(h as HouseholdIdx);
    }
    // Union-find over neighbouring cells.
    let mut parent: Vec<usize> = (0..cell_keys.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for (c, k) in cell_keys.iter().enumerate() {
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    if let Some(&o) = cells.get(&[k[0] + dx, k[1] + dy, k[2] + dz]) {
                        let (ra, rb) = (find(&mut parent, c), find(&mut parent, o));
                        if ra != rb {
                            parent[ra.max(rb)] = ra.min(rb);
                        }
                    }
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<HouseholdIdx>> = HashMap::new();
    for (c, members) in cell_members.iter().enumerate() {
        let r = find(&mut parent, c);
        groups.entry(r).or_default().extend_from_slice(members);
    }
    let mut out: Vec<Gap> = groups
        .into_values()
        .map(|mut members| {
            members.sort_unstable();
            make_gap(ds, a, stations, members)
        })
        .collect();
    out.sort_by(|x, y| y.veterans.cmp(&x.veterans).then(x.households[0].cmp(&y.households[0])));
    for (i, g) in out.iter_mut().enumerate() {
        g.rank = i as u32 + 1;
    }
    out
}

fn make_gap(ds: &Dataset, a: &Assignment, stations: &StationIndex, members: Vec<HouseholdIdx>) -> Gap {
    let hh = &ds.households;
    let mut sum = [0.0f64; 3];
    let mut veterans = 0u64;
    let mut pts: Vec<Point<f64>> = Vec::with_capacity(members.len() * 8);
    let mut unit_votes: [HashMap<UnitIdx, u64>; 5] = Default::default();
    for &h in &members {
        let i = h as usize;
        let v = u64::from(hh.veterans[i]);
        veterans += v;
        let p = to_unit(hh.lon[i], hh.lat[i]);
        for k in 0..3 {
            sum[k] += p[k] * v as f64;
        }
        let dlat = GAP_MARGIN_M / 111_195.0;
        let dlon = dlat / hh.lat[i].to_radians().cos().max(0.01);
        for j in 0..8 {
            let t = j as f64 * std::f64::consts::FRAC_PI_4;
            pts.push(Point(Coord { x: hh.lon[i] + dlon * t.cos(), y: hh.lat[i] + dlat * t.sin() }));
        }
        if a.unit[i] != NO_UNIT {
            for (l, u) in ds.divisions.chain(a.unit[i]).into_iter().enumerate() {
                if u != NO_UNIT {
                    *unit_votes[l].entry(u).or_default() += v;
                }
            }
        }
    }
    let hull = MultiPoint(pts).convex_hull();
    let centroid = to_lonlat(sum);
    let units = unit_votes
        .map(|votes| votes.into_iter().max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0))).map_or(NO_UNIT, |(u, _)| u));
    let c = to_unit(centroid.0, centroid.1);
    let nearest_station = Level::ALL
        .iter()
        .filter_map(|&l| stations.nearest(l, c))
        .min_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)))
        .map(|(s, d2)| (s, chord_2_to_m(d2)));
    Gap { rank: 0, hull, centroid, households: members, veterans, units, nearest_station }
}
