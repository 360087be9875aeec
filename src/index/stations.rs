//! Stations of each level in R-trees on the unit sphere: nearest station and coverage tests.

use rstar::primitives::GeomWithData;
use rstar::RTree;

use super::sphere::{m_to_chord_2, to_unit, Unit3};
use crate::model::{Level, Standard, StationIdx, Stations};

type Entry = GeomWithData<Unit3, StationIdx>;

/// One R-tree of active stations per level, with each station's service radius.
///
/// Supports inserting and removing single stations, so what-if questions and live edits
/// update the index in O(log n) rather than rebuilding it.
#[derive(Debug, Clone)]
pub struct StationIndex {
    trees: [RTree<Entry>; 5],
    /// Squared chord of each station's service radius, by station index (0 when unknown).
    radius_2: Vec<f64>,
    /// An upper bound of `radius_2` over the stations of each level.
    max_radius_2: [f64; 5],
}

impl StationIndex {
    /// Indexes the active stations (bulk loaded).
    pub fn new(stations: &Stations, standard: &Standard) -> Self {
        let mut per_level: [Vec<Entry>; 5] = Default::default();
        let mut radius_2 = vec![0.0; stations.len()];
        let mut max_radius_2 = [0.0f64; 5];
        for (i, r2_slot) in radius_2.iter_mut().enumerate() {
            if !stations.active[i] {
                continue;
            }
            let l = stations.level[i].index();
            let r2 = m_to_chord_2(stations.radius_of(i as StationIdx, standard));
            *r2_slot = r2;
            max_radius_2[l] = max_radius_2[l].max(r2);
            per_level[l].push(GeomWithData::new(to_unit(stations.lon[i], stations.lat[i]), i as StationIdx));
        }
        let trees = per_level.map(RTree::bulk_load);
        StationIndex { trees, radius_2, max_radius_2 }
    }

    /// Adds station `i` (already pushed to `stations`) to the index.
    pub fn insert(&mut self, stations: &Stations, standard: &Standard, i: StationIdx) {
        let u = i as usize;
        if self.radius_2.len() <= u {
            self.radius_2.resize(u + 1, 0.0);
        }
        let l = stations.level[u].index();
        let r2 = m_to_chord_2(stations.radius_of(i, standard));
        self.radius_2[u] = r2;
        self.max_radius_2[l] = self.max_radius_2[l].max(r2);
        self.trees[l].insert(GeomWithData::new(to_unit(stations.lon[u], stations.lat[u]), i));
    }

    /// Removes station `i`, indexed at `lon`/`lat` with `level`. Returns false if it was not there.
    pub fn remove(&mut self, level: Level, lon: f64, lat: f64, i: StationIdx) -> bool {
        self.trees[level.index()].remove(&GeomWithData::new(to_unit(lon, lat), i)).is_some()
    }

    /// Number of indexed stations of a level.
    pub fn count(&self, level: Level) -> usize {
        self.trees[level.index()].size()
    }

    /// The nearest station of `level` and the squared chord to it. Ties go to the lower
    /// station index, so results do not depend on insertion order.
    #[inline]
    pub fn nearest(&self, level: Level, p: Unit3) -> Option<(StationIdx, f64)> {
        let mut it = self.trees[level.index()].nearest_neighbor_iter_with_distance_2(&p);
        let (first, d2) = it.next()?;
        let mut best = first.data;
        for (e, e2) in it {
            if e2 > d2 {
                break;
            }
            best = best.min(e.data);
        }
        Some((best, d2))
    }

    /// The squared chord of the service radius of station `i`.
    #[inline]
    pub fn radius_2(&self, i: StationIdx) -> f64 {
        self.radius_2[i as usize]
    }

    /// Whether `p` is within the service radius of some station of `level`, given the nearest
    /// one already found (`nearest`, its squared chord `d2`).
    #[inline]
    pub fn covers(&self, level: Level, p: Unit3, nearest: StationIdx, d2: f64) -> bool {
        if d2 <= self.radius_2(nearest) {
            return true;
        }
        let l = level.index();
        if d2 > self.max_radius_2[l] {
            return false;
        }
        // A farther station with a larger radius (e.g. a mobile one) may still reach p.
        for (e, e2) in self.trees[l].nearest_neighbor_iter_with_distance_2(&p) {
            if e2 > self.max_radius_2[l] {
                break;
            }
            if e2 <= self.radius_2(e.data) {
                return true;
            }
        }
        false
    }

    /// Stations of `level` within squared chord `r2` of `p`.
    pub fn within(&self, level: Level, p: Unit3, r2: f64) -> impl Iterator<Item = StationIdx> + '_ {
        self.trees[level.index()].locate_within_distance(p, r2).map(|e| e.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::sphere::{chord_2_to_m, ground_m};
    use crate::model::StationRow;
    use approx::assert_relative_eq;

    fn station(id: &str, level: Level, lon: f64, lat: f64, mobile: bool, radius_m: Option<f64>) -> StationRow {
        StationRow { id: id.into(), name: id.into(), level, unit: 0, lon, lat, demonstration: false, mobile, radius_m }
    }

    fn fixture() -> Stations {
        let mut s = Stations::default();
        s.push(station("a", Level::Village, 100.0, 40.0, false, None));
        s.push(station("b", Level::Village, 100.1, 40.0, false, None));
        s.push(station("m", Level::Village, 100.5, 40.0, true, None));
        s.push(station("t", Level::Township, 100.0, 40.0, false, Some(1_000.0)));
        s
    }

    #[test]
    fn nearest_and_distance() {
        let s = fixture();
        let idx = StationIndex::new(&s, &Standard::default());
        let p = to_unit(100.02, 40.0);
        let (n, d2) = idx.nearest(Level::Village, p).unwrap();
        assert_eq!(n, 0);
        assert_relative_eq!(chord_2_to_m(d2), ground_m(100.02, 40.0, 100.0, 40.0), max_relative = 1e-9);
        assert!(idx.nearest(Level::County, p).is_none());
        // A household exactly at a station: distance 0, covered.
        let (n, d2) = idx.nearest(Level::Village, to_unit(100.1, 40.0)).unwrap();
        assert_eq!((n, d2), (1, 0.0));
    }

    #[test]
    fn ties_go_to_lower_index() {
        let mut s = Stations::default();
        s.push(station("x", Level::Village, 100.2, 40.0, false, None));
        s.push(station("y", Level::Village, 100.0, 40.0, false, None));
        s.push(station("z", Level::Village, 100.2, 40.0, false, None));
        let idx = StationIndex::new(&s, &Standard::default());
        // Equidistant from x/z (same place) and from y by symmetry about lon 100.1.
        let (n, _) = idx.nearest(Level::Village, to_unit(100.2, 40.0)).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn mobile_station_reaches_farther() {
        let s = fixture();
        let std = Standard::default();
        let idx = StationIndex::new(&s, &std);
        // 0.15° (12.8 km) west of "m" (mobile, 30 km): m is nearest and covers it.
        let lon = 100.5 - 0.15;
        let p = to_unit(lon, 40.0);
        let (n, d2) = idx.nearest(Level::Village, p).unwrap();
        assert_eq!(n, 2);
        assert!(idx.covers(Level::Village, p, n, d2));
        // Between b and m, nearest is b (8.5 km: beyond its 2 km) but m, 25.6 km away, reaches 30 km.
        let p2 = to_unit(100.2, 40.0);
        let (n2, d22) = idx.nearest(Level::Village, p2).unwrap();
        assert_eq!(n2, 1);
        assert!(chord_2_to_m(d22) > 2_000.0);
        assert!(idx.covers(Level::Village, p2, n2, d22), "the mobile station 30 km away covers it");
        // The township station has its own 1 km radius.
        let p3 = to_unit(100.02, 40.0);
        let (t, t2) = idx.nearest(Level::Township, p3).unwrap();
        assert!(!idx.covers(Level::Township, p3, t, t2));
    }

    #[test]
    fn insert_and_remove() {
        let mut s = fixture();
        let std = Standard::default();
        let mut idx = StationIndex::new(&s, &std);
        let i = s.push(station("c", Level::County, 101.0, 41.0, false, None));
        idx.insert(&s, &std, i);
        assert_eq!(idx.nearest(Level::County, to_unit(101.0, 41.0)).unwrap().0, i);
        assert!(idx.remove(Level::County, 101.0, 41.0, i));
        assert!(!idx.remove(Level::County, 101.0, 41.0, i));
        assert_eq!(idx.count(Level::County), 0);
    }
}
