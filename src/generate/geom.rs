//! Planar helpers of the generator: a local frame, Voronoi cells clipped to a parent polygon
//! (geo's boolean operations), and sampling inside polygons (with the index's
//! point-in-polygon test, [`PreparedPolygon`]).
//!
//! Voronoi cells are built in a local equirectangular frame (`x = (lon − lon0)·cos lat0`,
//! `y = lat − lat0`, both in degrees of latitude, about 111.2 km each), where distances are
//! nearly true ground distances across a county. The map between frame and lon/lat is linear,
//! so a convex cell in the frame is a convex polygon in lon/lat, and clipping it to the parent
//! can be done in lon/lat directly.

use geo::{BooleanOps, BoundingRect, Coord, LineString, MultiPolygon, Polygon, Rect};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use spade::{DelaunayTriangulation, Point2, Triangulation};

use crate::index::PreparedPolygon;

/// Metres per degree of latitude (mean Earth radius 6 371 008.8 m).
pub(crate) const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// A point in a local frame, in degrees of latitude.
pub(crate) type P = [f64; 2];

/// A local equirectangular frame around a reference point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    lon0: f64,
    lat0: f64,
    kx: f64,
}

impl Frame {
    /// A frame centred on the middle of `rect`.
    pub(crate) fn around(rect: Rect<f64>) -> Frame {
        let c = rect.center();
        Frame { lon0: c.x, lat0: c.y, kx: c.y.to_radians().cos().max(1e-6) }
    }

    /// Lon/lat to frame.
    pub(crate) fn fwd(&self, c: Coord<f64>) -> P {
        [(c.x - self.lon0) * self.kx, c.y - self.lat0]
    }

    /// Frame to lon/lat.
    pub(crate) fn inv(&self, p: P) -> Coord<f64> {
        Coord { x: p[0] / self.kx + self.lon0, y: p[1] + self.lat0 }
    }

    /// Metres to frame units.
    pub(crate) fn units(m: f64) -> f64 {
        m / M_PER_DEG
    }
}

/// Squared distance in the frame.
pub(crate) fn dist2(a: P, b: P) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    dx * dx + dy * dy
}

/// Keeps the part of the convex polygon `poly` where `n·p <= c` (Sutherland–Hodgman, one plane).
fn clip_half_plane(poly: &[P], n: P, c: f64) -> Vec<P> {
    let mut out = Vec::with_capacity(poly.len() + 1);
    let side = |p: &P| n[0] * p[0] + n[1] * p[1] - c;
    for i in 0..poly.len() {
        let a = poly[i];
        let b = poly[(i + 1) % poly.len()];
        let (sa, sb) = (side(&a), side(&b));
        if sa <= 0.0 {
            out.push(a);
        }
        if (sa < 0.0 && sb > 0.0) || (sa > 0.0 && sb < 0.0) {
            let t = sa / (sa - sb);
            out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
        }
    }
    out
}

/// The Voronoi cells of `sites` (distinct points of a frame) within the box `[lo, hi]`, which
/// must contain every site. Cell `i` is convex, counter-clockwise, and contains site `i`.
///
/// Up to 48 sites every other site bounds a cell; above that only Delaunay neighbours do
/// (which gives the same cells).
pub(crate) fn voronoi_cells(sites: &[P], lo: P, hi: P) -> Vec<Vec<P>> {
    let bbox = vec![lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]];
    let neighbours: Vec<Vec<usize>> = if sites.len() <= 48 {
        (0..sites.len()).map(|i| (0..sites.len()).filter(|&j| j != i).collect()).collect()
    } else {
        delaunay_neighbours(sites)
    };
    sites
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let mut cell = bbox.clone();
            for &j in &neighbours[i] {
                let b = sites[j];
                let n = [b[0] - a[0], b[1] - a[1]];
                if n[0] == 0.0 && n[1] == 0.0 {
                    continue;
                }
                // |p−a|² <= |p−b|²  ⇔  (b−a)·p <= (|b|² − |a|²)/2
                let c = 0.5 * ((b[0] * b[0] + b[1] * b[1]) - (a[0] * a[0] + a[1] * a[1]));
                cell = clip_half_plane(&cell, n, c);
                if cell.is_empty() {
                    break;
                }
            }
            cell
        })
        .collect()
}

/// Delaunay neighbours of every site (sites must be distinct).
fn delaunay_neighbours(sites: &[P]) -> Vec<Vec<usize>> {
    let mut t: DelaunayTriangulation<Point2<f64>> = DelaunayTriangulation::new();
    let mut site_of = vec![usize::MAX; sites.len()];
    for (i, s) in sites.iter().enumerate() {
        match t.insert(Point2::new(s[0], s[1])) {
            Ok(h) => {
                if h.index() < site_of.len() && site_of[h.index()] == usize::MAX {
                    site_of[h.index()] = i;
                }
            }
            Err(_) => {
                // A coordinate spade cannot take: fall back to all pairs.
                return (0..sites.len()).map(|i| (0..sites.len()).filter(|&j| j != i).collect()).collect();
            }
        }
    }
    let mut nb = vec![Vec::new(); sites.len()];
    for v in t.vertices() {
        let i = site_of[v.fix().index()];
        for e in v.out_edges() {
            nb[i].push(site_of[e.to().fix().index()]);
        }
    }
    nb
}

/// Moves sites that coincide with an earlier one by a tiny step, so that every cell is proper.
pub(crate) fn make_distinct(sites: &mut [P]) {
    let mut seen = std::collections::HashSet::new();
    for s in sites.iter_mut() {
        let mut k = 1.0;
        while !seen.insert((s[0].to_bits(), s[1].to_bits())) {
            s[0] += 1e-9 * k;
            k += 1.0;
        }
    }
}

/// A convex frame polygon as a lon/lat polygon (closed ring, counter-clockwise).
pub(crate) fn cell_polygon(frame: &Frame, cell: &[P]) -> Polygon<f64> {
    let ring: Vec<Coord<f64>> = cell.iter().map(|&p| frame.inv(p)).collect();
    Polygon::new(LineString::new(ring), vec![])
}

/// The part of `parent` inside the convex `cell`, with specks (parts below about 1 cm²)
/// dropped.
pub(crate) fn clip(parent: &MultiPolygon<f64>, cell: &Polygon<f64>) -> MultiPolygon<f64> {
    use geo::Area;
    let mut mp = cell.intersection(parent);
    mp.0.retain(|p| p.unsigned_area() > 1e-20);
    mp
}

/// Rounds every coordinate to 7 decimals (about 1 cm), dropping repeated vertices.
pub(crate) fn round_mp(mp: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    let ring = |ls: &LineString<f64>| {
        let mut v: Vec<Coord<f64>> = Vec::with_capacity(ls.0.len());
        for c in &ls.0 {
            let r = Coord { x: round7(c.x), y: round7(c.y) };
            if v.last() != Some(&r) {
                v.push(r);
            }
        }
        LineString::new(v)
    };
    MultiPolygon::new(
        mp.0.iter()
            .map(|p| Polygon::new(ring(p.exterior()), p.interiors().iter().map(ring).collect()))
            .filter(|p| p.exterior().0.len() >= 4)
            .collect(),
    )
}

/// `v` rounded to 7 decimals.
pub(crate) fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// A multipolygon prepared for sampling: the index's point-in-polygon test
/// ([`PreparedPolygon`], even–odd rule over all rings, half-open edges) and its bounding box.
#[derive(Debug, Clone)]
pub(crate) struct Pip {
    rect: Rect<f64>,
    poly: PreparedPolygon,
}

impl Pip {
    /// Prepares `mp`; None when it is empty.
    pub(crate) fn new(mp: &MultiPolygon<f64>) -> Option<Pip> {
        let rect = mp.bounding_rect()?;
        Some(Pip { rect, poly: PreparedPolygon::new(mp) })
    }

    /// True when `c` lies inside (a point on an edge by the index's half-open rule).
    pub(crate) fn contains(&self, c: Coord<f64>) -> bool {
        self.poly.contains(c.x, c.y)
    }

    /// A uniform random point inside (rejection from the bounding box), None after `tries`.
    pub(crate) fn sample_uniform<R: Rng>(&self, rng: &mut R, tries: usize) -> Option<Coord<f64>> {
        let (lo, hi) = (self.rect.min(), self.rect.max());
        for _ in 0..tries {
            let c =
                Coord { x: lo.x + rng.random::<f64>() * (hi.x - lo.x), y: lo.y + rng.random::<f64>() * (hi.y - lo.y) };
            if self.contains(c) {
                return Some(c);
            }
        }
        None
    }

    /// A point around `centre` with a 2-D normal spread of `sigma` frame units, kept inside
    /// (rejection); None after `tries`.
    pub(crate) fn sample_normal<R: Rng>(
        &self,
        rng: &mut R,
        frame: &Frame,
        centre: P,
        sigma: f64,
        tries: usize,
    ) -> Option<Coord<f64>> {
        for _ in 0..tries {
            let dx: f64 = StandardNormal.sample(rng);
            let dy: f64 = StandardNormal.sample(rng);
            let c = frame.inv([centre[0] + sigma * dx, centre[1] + sigma * dy]);
            if self.contains(c) {
                return Some(c);
            }
        }
        None
    }
}

/// Distance, in frame units, from `p` to the nearest ring edge of `mp` (in the frame).
pub(crate) fn dist_to_boundary(frame: &Frame, mp: &MultiPolygon<f64>, p: P) -> f64 {
    let mut best = f64::INFINITY;
    for poly in &mp.0 {
        for r in std::iter::once(poly.exterior()).chain(poly.interiors()) {
            let mut prev: Option<P> = None;
            for c in &r.0 {
                let b = frame.fwd(*c);
                if let Some(a) = prev {
                    best = best.min(seg_dist2(p, a, b));
                }
                prev = Some(b);
            }
        }
    }
    best.sqrt()
}

fn seg_dist2(p: P, a: P, b: P) -> f64 {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let l2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if l2 > 0.0 { (((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / l2).clamp(0.0, 1.0) } else { 0.0 };
    dist2(p, [a[0] + t * ab[0], a[1] + t * ab[1]])
}

/// Ground area of `mp` in square metres (Chamberlain–Duquette, spherical).
pub(crate) fn area_m2(mp: &MultiPolygon<f64>) -> f64 {
    use geo::ChamberlainDuquetteArea;
    mp.chamberlain_duquette_unsigned_area()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area, Validation};
    use rand::SeedableRng;

    fn square(x0: f64, y0: f64, s: f64) -> MultiPolygon<f64> {
        MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s), (x0, y0)]),
            vec![],
        )])
    }

    #[test]
    fn voronoi_cells_tile_the_box() {
        for n in [1usize, 2, 7, 60, 200] {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
            let sites: Vec<P> = (0..n).map(|_| [rng.random::<f64>(), rng.random::<f64>()]).collect();
            let cells = voronoi_cells(&sites, [-0.5, -0.5], [1.5, 1.5]);
            let total: f64 = cells
                .iter()
                .map(|c| Polygon::new(LineString::from(c.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>()), vec![]))
                .inspect(|p| assert!(p.is_valid()))
                .map(|p| p.unsigned_area())
                .sum();
            assert!((total - 4.0).abs() < 1e-9, "n={n}: {total}");
        }
    }

    #[test]
    fn pip_and_sampling() {
        let sq = square(100.0, 30.0, 1.0);
        let pip = Pip::new(&sq).unwrap();
        assert!(pip.contains(Coord { x: 100.5, y: 30.5 }));
        assert!(!pip.contains(Coord { x: 101.5, y: 30.5 }));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert!(pip.contains(pip.sample_uniform(&mut rng, 10).unwrap()));
        }
        let frame = Frame::around(sq.bounding_rect().unwrap());
        let d = dist_to_boundary(&frame, &sq, frame.fwd(Coord { x: 100.5, y: 30.9 }));
        assert!((d - 0.1).abs() < 1e-9);
    }

    #[test]
    fn clipped_cells_are_valid() {
        let sq = square(100.0, 30.0, 1.0);
        let frame = Frame::around(sq.bounding_rect().unwrap());
        let sites = [frame.fwd(Coord { x: 100.2, y: 30.2 }), frame.fwd(Coord { x: 100.7, y: 30.6 })];
        let cells =
            voronoi_cells(&sites, frame.fwd(Coord { x: 99.0, y: 29.0 }), frame.fwd(Coord { x: 102.0, y: 32.0 }));
        let parts: Vec<_> = cells.iter().map(|c| round_mp(&clip(&sq, &cell_polygon(&frame, c)))).collect();
        let total: f64 = parts.iter().inspect(|p| assert!(p.is_valid())).map(|p| p.unsigned_area()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
