//! Point-in-polygon for many points against a planar partition (admin units, grids).
//!
//! [`PreparedPolygon`] stores a (multi)polygon's edges, normalised to run upwards, in
//! horizontal bands, so a test only looks at the few edges that cross the point's band instead
//! of every vertex (a real county boundary has thousands). The test is the crossing-number
//! rule with half-open edges: an edge counts when `y0 <= y < y1` and the point lies strictly
//! left of it. Because shared edges are normalised and evaluated identically in both polygons,
//! a point on a boundary between two units of a partition is inside exactly one of them (the
//! one to its right, or above on a horizontal edge) — never both, never neither.
//!
//! [`PolygonIndex`] puts the prepared polygons of one layer in an R-tree of their envelopes.

use geo::{BoundingRect, Coord, LineString, MultiPolygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::RTree;

#[derive(Debug, Clone, Copy)]
struct Edge {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

/// A (multi)polygon prepared for fast, exact point-in-polygon tests.
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    min: [f64; 2],
    max: [f64; 2],
    edges: Vec<Edge>,
    band_y0: f64,
    band_inv_h: f64,
    band_start: Vec<u32>,
    band_edges: Vec<u32>,
}

impl PreparedPolygon {
    /// Prepares a multipolygon (exterior rings and holes alike; even-odd rule).
    pub fn new(mp: &MultiPolygon<f64>) -> Self {
        let mut edges = Vec::new();
        for p in mp {
            push_ring(&mut edges, p.exterior());
            for h in p.interiors() {
                push_ring(&mut edges, h);
            }
        }
        let rect = mp.bounding_rect();
        let (min, max) = match rect {
            Some(r) => ([r.min().x, r.min().y], [r.max().x, r.max().y]),
            None => ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]),
        };
        let nbands = (edges.len() / 4).clamp(1, 4096);
        let height = (max[1] - min[1]).max(f64::MIN_POSITIVE);
        let band_inv_h = nbands as f64 / height;
        // Counting sort of edges into the bands their [y0, y1] range touches.
        let band_of = |y: f64| (((y - min[1]) * band_inv_h) as usize).min(nbands - 1);
        let mut counts = vec![0u32; nbands + 1];
        for e in &edges {
            for b in band_of(e.y0)..=band_of(e.y1) {
                counts[b + 1] += 1;
            }
        }
        for b in 0..nbands {
            counts[b + 1] += counts[b];
        }
        let mut fill = counts.clone();
        let mut band_edges = vec![0u32; counts[nbands] as usize];
        for (i, e) in edges.iter().enumerate() {
            for b in band_of(e.y0)..=band_of(e.y1) {
                band_edges[fill[b] as usize] = i as u32;
                fill[b] += 1;
            }
        }
        PreparedPolygon { min, max, edges, band_y0: min[1], band_inv_h, band_start: counts, band_edges }
    }

    /// Envelope `[min, max]` as `[lon, lat]` corners.
    pub fn envelope(&self) -> ([f64; 2], [f64; 2]) {
        (self.min, self.max)
    }

    /// True when the point is inside under the half-open rule described in the module docs.
    #[inline]
    pub fn contains(&self, x: f64, y: f64) -> bool {
        if !(x >= self.min[0] && x <= self.max[0] && y >= self.min[1] && y <= self.max[1]) {
            return false;
        }
        let nbands = self.band_start.len() - 1;
        let b = (((y - self.band_y0) * self.band_inv_h) as usize).min(nbands - 1);
        let mut inside = false;
        let ids = &self.band_edges[self.band_start[b] as usize..self.band_start[b + 1] as usize];
        for &i in ids {
            let e = &self.edges[i as usize];
            if y >= e.y0 && y < e.y1 {
                let x_int = e.x0 + (y - e.y0) * (e.x1 - e.x0) / (e.y1 - e.y0);
                if x < x_int {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

fn push_ring(edges: &mut Vec<Edge>, ring: &LineString<f64>) {
    for w in ring.0.windows(2) {
        let (a, b): (Coord<f64>, Coord<f64>) = (w[0], w[1]);
        if a.y == b.y {
            continue; // horizontal edges never cross a horizontal ray under the half-open rule
        }
        let (lo, hi) = if a.y < b.y { (a, b) } else { (b, a) };
        edges.push(Edge { x0: lo.x, y0: lo.y, x1: hi.x, y1: hi.y });
    }
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// A layer of prepared polygons in an R-tree of their component envelopes.
///
/// Each polygon carries an owner id (an admin unit, a grid). Where polygons of the layer
/// overlap (bad input), the lowest polygon position wins, so answers are deterministic.
#[derive(Debug, Clone)]
pub struct PolygonIndex {
    polygons: Vec<PreparedPolygon>,
    owners: Vec<u32>,
    tree: RTree<Entry>,
}

impl PolygonIndex {
    /// Builds the index from `(owner, geometry)` pairs.
    pub fn new<'a>(items: impl IntoIterator<Item = (u32, &'a MultiPolygon<f64>)>) -> Self {
        let mut polygons = Vec::new();
        let mut owners = Vec::new();
        let mut entries = Vec::new();
        for (owner, mp) in items {
            let pos = polygons.len() as u32;
            // One envelope per component keeps envelopes tight for scattered multipolygons.
            for p in mp {
                if let Some(r) = p.bounding_rect() {
                    let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                    entries.push(GeomWithData::new(rect, pos));
                }
            }
            polygons.push(PreparedPolygon::new(mp));
            owners.push(owner);
        }
        PolygonIndex { polygons, owners, tree: RTree::bulk_load(entries) }
    }

    /// Number of polygons.
    pub fn len(&self) -> usize {
        self.polygons.len()
    }

    /// True when the layer has no polygons.
    pub fn is_empty(&self) -> bool {
        self.polygons.is_empty()
    }

    /// The owner of the polygon containing the point, if any.
    #[inline]
    pub fn locate(&self, x: f64, y: f64) -> Option<u32> {
        let mut best: Option<u32> = None;
        for e in self.tree.locate_all_at_point(&[x, y]) {
            let pos = e.data;
            if best.is_some_and(|b| b <= pos) {
                continue;
            }
            if self.polygons[pos as usize].contains(x, y) {
                best = Some(pos);
            }
        }
        best.map(|p| self.owners[p as usize])
    }

    /// Owners of all polygons whose envelope intersects the box (a superset of those whose
    /// area does), for bbox queries.
    pub fn owners_in_box(&self, min: [f64; 2], max: [f64; 2]) -> Vec<u32> {
        let env = rstar::AABB::from_corners(min, max);
        let mut v: Vec<u32> =
            self.tree.locate_in_envelope_intersecting(&env).map(|e| self.owners[e.data as usize]).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Contains, MultiPolygon, Point};
    use proptest::prelude::*;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)]])
    }

    #[test]
    fn square_inside_outside() {
        let p = PreparedPolygon::new(&square(0.0, 0.0, 2.0, 2.0));
        assert!(p.contains(1.0, 1.0));
        assert!(!p.contains(3.0, 1.0));
        assert!(!p.contains(1.0, -0.5));
        assert!(!p.contains(f64::NAN, 1.0));
    }

    #[test]
    fn hole_is_outside() {
        let poly = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0), (x: 0.0, y: 0.0)],
            interiors: [[(x: 4.0, y: 4.0), (x: 6.0, y: 4.0), (x: 6.0, y: 6.0), (x: 4.0, y: 6.0), (x: 4.0, y: 4.0)]],
        );
        let p = PreparedPolygon::new(&MultiPolygon(vec![poly]));
        assert!(p.contains(2.0, 2.0));
        assert!(!p.contains(5.0, 5.0));
        assert!(p.contains(7.0, 5.0));
    }

    #[test]
    fn multipolygon_components() {
        let mut mp = square(0.0, 0.0, 1.0, 1.0);
        mp.0.extend(square(5.0, 5.0, 6.0, 6.0).0);
        let idx = PolygonIndex::new([(7, &mp)]);
        assert_eq!(idx.locate(0.5, 0.5), Some(7));
        assert_eq!(idx.locate(5.5, 5.5), Some(7));
        assert_eq!(idx.locate(3.0, 3.0), None);
    }

    #[test]
    fn shared_boundary_assigned_exactly_once() {
        // Four squares meeting at (1,1); test points on edges and on the shared corner.
        let a = square(0.0, 0.0, 1.0, 1.0);
        let b = square(1.0, 0.0, 2.0, 1.0);
        let c = square(0.0, 1.0, 1.0, 2.0);
        let d = square(1.0, 1.0, 2.0, 2.0);
        let preps = [&a, &b, &c, &d].map(PreparedPolygon::new);
        for (x, y) in [(1.0, 0.5), (0.5, 1.0), (1.0, 1.0), (1.5, 1.0), (1.0, 1.5), (1.0, 0.0), (0.3, 0.7)] {
            let n = preps.iter().filter(|p| p.contains(x, y)).count();
            assert_eq!(n, 1, "point ({x},{y}) is in {n} polygons");
        }
        // Right/upper side wins on the shared edge.
        assert!(preps[1].contains(1.0, 0.5));
        assert!(preps[3].contains(1.0, 1.0));
    }

    #[test]
    fn slanted_shared_edge_counts_once() {
        // Two triangles sharing a diagonal with awkward coordinates.
        let t1 = MultiPolygon(vec![polygon![(x: 0.1, y: 0.1), (x: 0.7, y: 0.3), (x: 0.3, y: 0.9), (x: 0.1, y: 0.1)]]);
        let t2 = MultiPolygon(vec![polygon![(x: 0.7, y: 0.3), (x: 0.9, y: 0.95), (x: 0.3, y: 0.9), (x: 0.7, y: 0.3)]]);
        let (p1, p2) = (PreparedPolygon::new(&t1), PreparedPolygon::new(&t2));
        for i in 0..=1000 {
            let t = i as f64 / 1000.0;
            let (x, y) = (0.7 + (0.3 - 0.7) * t, 0.3 + (0.9 - 0.3) * t);
            let n = p1.contains(x, y) as u8 + p2.contains(x, y) as u8;
            assert!(n <= 1, "point {t} on the shared edge counted twice");
        }
    }

    #[test]
    fn many_bands_agree_with_geo() {
        // A star with many vertices forces banding; compare with geo's Contains.
        let n = 400;
        let ring: Vec<(f64, f64)> = (0..=n)
            .map(|i| {
                let a = (i % n) as f64 / n as f64 * std::f64::consts::TAU;
                let r = if i % 2 == 0 { 1.0 } else { 0.55 };
                (r * a.cos(), r * a.sin())
            })
            .collect();
        let poly = geo::Polygon::new(LineString::from(ring), vec![]);
        let mp = MultiPolygon(vec![poly.clone()]);
        let p = PreparedPolygon::new(&mp);
        assert!(p.band_start.len() > 50);
        for i in 0..200 {
            for j in 0..200 {
                let (x, y) = (-1.1 + i as f64 * 0.011 + 1e-7, -1.1 + j as f64 * 0.011 + 3e-7);
                assert_eq!(p.contains(x, y), poly.contains(&Point::new(x, y)), "({x},{y})");
            }
        }
    }

    proptest! {
        #[test]
        fn partition_of_random_grid_cells(x in 0.0f64..4.0, y in 0.0f64..4.0, snap in 0u8..3) {
            // A 4x4 partition of unit cells; snap points onto edges and corners sometimes.
            let (x, y) = match snap { 0 => (x, y), 1 => (x.round(), y), _ => (x.round(), y.round()) };
            let cells: Vec<MultiPolygon<f64>> = (0..16)
                .map(|k| { let (i, j) = ((k % 4) as f64, (k / 4) as f64); square(i, j, i + 1.0, j + 1.0) })
                .collect();
            let idx = PolygonIndex::new(cells.iter().enumerate().map(|(k, c)| (k as u32, c)));
            let n = cells.iter().map(PreparedPolygon::new).filter(|p| p.contains(x, y)).count();
            let inside_outer = (0.0..4.0).contains(&x) && (0.0..4.0).contains(&y);
            prop_assert_eq!(n, usize::from(inside_outer));
            prop_assert_eq!(idx.locate(x, y).is_some(), inside_outer);
        }
    }
}
