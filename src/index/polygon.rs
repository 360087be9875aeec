//! Point-in-polygon for many points against a planar partition (admin units, grids).
//!
//! [`PreparedPolygon`] stores a (multi)polygon's vertices and its edges in horizontal bands,
//! so a test only looks at the few edges that cross the point's band instead of every vertex (a
//! real county boundary has thousands); an edge is normalised to run upwards when tested. The test is the crossing-number
//! rule with half-open edges: an edge counts when `y0 <= y < y1` and the point lies strictly
//! left of it. Because shared edges are normalised and evaluated identically in both polygons,
//! a point on a boundary between two units of a partition is inside exactly one of them (the
//! one to its right, or above on a horizontal edge) — never both, never neither.
//!
//! [`PolygonIndex`] finds the polygon of a point through a uniform grid of cells over the layer:
//! a cell no boundary comes near answers at once (inside one polygon, or none), a cell crossed
//! by boundaries lists the few candidates to test. An R-tree of envelopes serves box queries.

use std::sync::Arc;

use geo::{BoundingRect, Coord, LineString, MultiPolygon};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::RTree;

/// A (multi)polygon prepared for fast, exact point-in-polygon tests.
///
/// The rings' vertices are kept once, one after the other; an edge is the index of its first
/// vertex (the next one ends it), normalised to run upwards when it is tested. Sixteen bytes a
/// vertex, half of what an edge of four coordinates would take: a national layer has tens of
/// millions.
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    min: [f64; 2],
    max: [f64; 2],
    points: Vec<Coord<f64>>,
    /// Edges that are not horizontal (the ones a crossing can count).
    n_edges: usize,
    band_y0: f64,
    band_inv_h: f64,
    band_start: Vec<u32>,
    band_edges: Vec<u32>,
}

impl PreparedPolygon {
    /// Prepares a multipolygon (exterior rings and holes alike; even-odd rule).
    pub fn new(mp: &MultiPolygon<f64>) -> Self {
        let mut points = Vec::new();
        let mut edges: Vec<u32> = Vec::new();
        for p in mp {
            push_ring(&mut points, &mut edges, p.exterior());
            for h in p.interiors() {
                push_ring(&mut points, &mut edges, h);
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
        let span = |i: u32| {
            let (a, b) = (points[i as usize].y, points[i as usize + 1].y);
            (band_of(a.min(b)), band_of(a.max(b)))
        };
        let mut counts = vec![0u32; nbands + 1];
        for &e in &edges {
            let (b0, b1) = span(e);
            for b in b0..=b1 {
                counts[b + 1] += 1;
            }
        }
        for b in 0..nbands {
            counts[b + 1] += counts[b];
        }
        let mut fill = counts.clone();
        let mut band_edges = vec![0u32; counts[nbands] as usize];
        for &e in &edges {
            let (b0, b1) = span(e);
            for b in b0..=b1 {
                band_edges[fill[b] as usize] = e;
                fill[b] += 1;
            }
        }
        points.shrink_to_fit();
        PreparedPolygon {
            min,
            max,
            points,
            n_edges: edges.len(),
            band_y0: min[1],
            band_inv_h,
            band_start: counts,
            band_edges,
        }
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
            let (a, c) = (self.points[i as usize], self.points[i as usize + 1]);
            let (lo, hi) = if a.y < c.y { (a, c) } else { (c, a) };
            if y >= lo.y && y < hi.y {
                let x_int = lo.x + (y - lo.y) * (hi.x - lo.x) / (hi.y - lo.y);
                if x < x_int {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

/// Appends a ring's vertices to `points` and the index of the first vertex of each of its
/// edges that is not horizontal to `edges` (a horizontal edge never crosses a horizontal ray
/// under the half-open rule).
fn push_ring(points: &mut Vec<Coord<f64>>, edges: &mut Vec<u32>, ring: &LineString<f64>) {
    let first = points.len();
    points.extend_from_slice(&ring.0);
    for k in first..points.len().saturating_sub(1) {
        if points[k].y != points[k + 1].y {
            edges.push(u32::try_from(k).expect("fewer than 4 billion vertices in one polygon"));
        }
    }
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// A layer of prepared polygons, found through a uniform grid of cells over the layer.
///
/// Each polygon carries an owner id (an admin unit, a grid). Where polygons of the layer
/// overlap (bad input), the lowest polygon position wins, so answers are deterministic: the
/// answer for a point is the lowest position whose [`PreparedPolygon::contains`] is true.
///
/// The grid is what makes lookups fast. A cell that no polygon's boundary comes near (within a
/// margin far above rounding error) lies wholly inside one polygon or outside all: the crossing
/// parity cannot change within it, so its answer is stored and returned without any edge test.
/// A cell crossed by boundaries lists the candidate polygons (in position order) to test with
/// the exact half-open rule, and the polygon covering the rest of it, if any. An R-tree of the
/// polygons' component envelopes serves box queries.
#[derive(Debug, Clone)]
pub struct PolygonIndex {
    // Shared, never changed once built: a clone (a live engine's copy, the planner's engine
    // over the same boundaries and grids) costs four reference counts, not the polygons again.
    polygons: Arc<[PreparedPolygon]>,
    owners: Arc<[u32]>,
    tree: Arc<RTree<Entry>>,
    grid: Arc<CellGrid>,
}

/// No polygon (a cell's default, an empty layer).
const EMPTY: u32 = u32::MAX >> 1;
/// A cell value with this bit set is an offset into [`CellGrid::lists`].
const LIST: u32 = 1 << 31;
/// How far (degrees) a boundary must stay from a cell for the cell to be answered without an
/// edge test: far above the rounding error of the crossing test on lon/lat (about 1e-13°),
/// far below anything on the ground (1e-9° is about 0.1 mm).
const MARGIN: f64 = 1e-9;

#[derive(Debug, Clone)]
struct CellGrid {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    inv_w: f64,
    inv_h: f64,
    nx: usize,
    ny: usize,
    /// Per cell: a polygon position (or [`EMPTY`]), or [`LIST`] | offset of `[n, c_1..c_n,
    /// default]` in `lists`.
    cells: Vec<u32>,
    lists: Vec<u32>,
}

impl CellGrid {
    fn empty() -> Self {
        CellGrid {
            x0: 0.0,
            y0: 0.0,
            x1: -1.0,
            y1: -1.0,
            inv_w: 0.0,
            inv_h: 0.0,
            nx: 0,
            ny: 0,
            cells: Vec::new(),
            lists: Vec::new(),
        }
    }

    fn cell_w(&self) -> f64 {
        (self.x1 - self.x0) / self.nx as f64
    }

    fn cell_h(&self) -> f64 {
        (self.y1 - self.y0) / self.ny as f64
    }

    /// Column of `x` (clamped; `x` must lie within the grid).
    #[inline]
    fn col(&self, x: f64) -> usize {
        (((x - self.x0) * self.inv_w) as usize).min(self.nx - 1)
    }

    #[inline]
    fn row(&self, y: f64) -> usize {
        (((y - self.y0) * self.inv_h) as usize).min(self.ny - 1)
    }

    /// Columns whose cells (grown by [`MARGIN`]) meet `[xa, xb]`.
    fn cols_between(&self, xa: f64, xb: f64) -> (usize, usize) {
        let w = self.cell_w();
        let a = ((xa - MARGIN - self.x0) / w).floor().max(0.0) as usize;
        let b = ((xb + MARGIN - self.x0) / w).floor().max(0.0) as usize;
        (a.min(self.nx - 1), b.min(self.nx - 1))
    }

    fn rows_between(&self, ya: f64, yb: f64) -> (usize, usize) {
        let h = self.cell_h();
        let a = ((ya - MARGIN - self.y0) / h).floor().max(0.0) as usize;
        let b = ((yb + MARGIN - self.y0) / h).floor().max(0.0) as usize;
        (a.min(self.ny - 1), b.min(self.ny - 1))
    }
}

/// Cells of a grid whose margin-grown extent a polygon's boundary may touch, per row: pushes
/// `(row, col)` for every such cell, for every segment of every ring.
fn boundary_cells(grid: &CellGrid, mp: &MultiPolygon<f64>, out: &mut Vec<(u32, u32)>) {
    let h = grid.cell_h();
    for p in mp {
        for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
            for w in ring.0.windows(2) {
                let (a, b) = (w[0], w[1]);
                let (lo, hi) = if a.y <= b.y { (a, b) } else { (b, a) };
                let (r0, r1) = grid.rows_between(lo.y, hi.y);
                for r in r0..=r1 {
                    // The part of the segment within the row's slab (grown by the margin):
                    // its x range, from the segment's x at the clamped slab edges.
                    let sy0 = (grid.y0 + r as f64 * h - MARGIN).max(lo.y);
                    let sy1 = (grid.y0 + (r + 1) as f64 * h + MARGIN).min(hi.y);
                    let (xa, xb) = if hi.y > lo.y {
                        let t0 = (sy0 - lo.y) / (hi.y - lo.y);
                        let t1 = (sy1 - lo.y) / (hi.y - lo.y);
                        let xa = lo.x + t0.clamp(0.0, 1.0) * (hi.x - lo.x);
                        let xb = lo.x + t1.clamp(0.0, 1.0) * (hi.x - lo.x);
                        (xa.min(xb), xa.max(xb))
                    } else {
                        (lo.x.min(hi.x), lo.x.max(hi.x))
                    };
                    // Grow by a relative error bound of the interpolation as well.
                    let slack = 1e-12 * (1.0 + xa.abs().max(xb.abs()));
                    let (c0, c1) = grid.cols_between(xa - slack, xb + slack);
                    for c in c0..=c1 {
                        out.push((r as u32, c as u32));
                    }
                }
            }
        }
    }
}

impl PolygonIndex {
    /// Builds the index from `(owner, geometry)` pairs.
    pub fn new<'a>(items: impl IntoIterator<Item = (u32, &'a MultiPolygon<f64>)>) -> Self {
        let items: Vec<(u32, &MultiPolygon<f64>)> = items.into_iter().collect();
        let polygons: Vec<PreparedPolygon> = items.par_iter().map(|(_, mp)| PreparedPolygon::new(mp)).collect();
        let owners: Vec<u32> = items.iter().map(|(o, _)| *o).collect();
        let mut entries = Vec::new();
        for (pos, (_, mp)) in items.iter().enumerate() {
            // One envelope per component keeps envelopes tight for scattered multipolygons.
            for p in *mp {
                if let Some(r) = p.bounding_rect() {
                    let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                    entries.push(GeomWithData::new(rect, pos as u32));
                }
            }
        }
        let grid = build_grid(&items, &polygons);
        PolygonIndex {
            polygons: polygons.into(),
            owners: owners.into(),
            tree: Arc::new(RTree::bulk_load(entries)),
            grid: Arc::new(grid),
        }
    }

    /// The prepared polygons, shared by every clone of the index.
    pub fn shared_polygons(&self) -> &[PreparedPolygon] {
        &self.polygons
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
        self.locate_pos(x, y).map(|p| self.owners[p as usize])
    }

    /// The lowest position of a polygon containing the point.
    #[inline]
    fn locate_pos(&self, x: f64, y: f64) -> Option<u32> {
        let g = &self.grid;
        if !(x >= g.x0 && x <= g.x1 && y >= g.y0 && y <= g.y1) {
            return None; // also NaN
        }
        let v = g.cells[g.row(y) * g.nx + g.col(x)];
        if v & LIST == 0 {
            return (v != EMPTY).then_some(v);
        }
        let at = (v & !LIST) as usize;
        let n = g.lists[at] as usize;
        for &c in &g.lists[at + 1..at + 1 + n] {
            if self.polygons[c as usize].contains(x, y) {
                return Some(c);
            }
        }
        let d = g.lists[at + 1 + n];
        (d != EMPTY).then_some(d)
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

/// Cells per polygon that the grid aims at, plus one per two boundary vertices.
const CELLS_PER_POLYGON: usize = 48;
/// At most this many cells in one layer's grid (8 MiB of cells).
const MAX_CELLS: usize = 1 << 21;

fn build_grid(items: &[(u32, &MultiPolygon<f64>)], polygons: &[PreparedPolygon]) -> CellGrid {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut vertices = 0usize;
    for p in polygons {
        if p.min[0] <= p.max[0] {
            x0 = x0.min(p.min[0]);
            y0 = y0.min(p.min[1]);
            x1 = x1.max(p.max[0]);
            y1 = y1.max(p.max[1]);
        }
        vertices += p.n_edges;
    }
    if !(x0 <= x1 && y0 <= y1) {
        return CellGrid::empty();
    }
    let target = (CELLS_PER_POLYGON * polygons.len() + vertices / 2).clamp(1, MAX_CELLS) as f64;
    let (w, h) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
    let side = (w * h / target).sqrt();
    let nx = ((w / side).ceil() as usize).clamp(1, 1 << 14);
    let ny = ((h / side).ceil() as usize).clamp(1, 1 << 14);
    let mut grid = CellGrid {
        x0,
        y0,
        x1,
        y1,
        inv_w: nx as f64 / (x1 - x0),
        inv_h: ny as f64 / (y1 - y0),
        nx,
        ny,
        cells: Vec::new(),
        lists: Vec::new(),
    };
    if !(grid.inv_w.is_finite() && grid.inv_h.is_finite()) {
        grid.inv_w = if grid.inv_w.is_finite() { grid.inv_w } else { 0.0 };
        grid.inv_h = if grid.inv_h.is_finite() { grid.inv_h } else { 0.0 };
    }
    // Per polygon: the cells its boundary touches, and the cells it covers whole (found by
    // testing one cell centre per run of untouched cells along a row).
    let per_polygon: Vec<(Vec<u32>, Vec<u32>)> = items
        .par_iter()
        .zip(polygons.par_iter())
        .map(|((_, mp), prep)| {
            let mut touched = Vec::new();
            boundary_cells(&grid, mp, &mut touched);
            touched.sort_unstable();
            touched.dedup();
            let mut inside = Vec::new();
            if prep.min[0] <= prep.max[0] {
                let (r0, r1) = grid.rows_between(prep.min[1], prep.max[1]);
                let (c0, c1) = grid.cols_between(prep.min[0], prep.max[0]);
                let cw = grid.cell_w();
                let ch = grid.cell_h();
                let mut t = 0;
                for r in r0..=r1 {
                    while t < touched.len() && (touched[t].0 as usize) < r {
                        t += 1;
                    }
                    let yc = grid.y0 + (r as f64 + 0.5) * ch;
                    let mut c = c0;
                    while c <= c1 {
                        // Skip touched cells of this row.
                        while t < touched.len() && touched[t].0 as usize == r && (touched[t].1 as usize) < c {
                            t += 1;
                        }
                        if t < touched.len() && touched[t] == (r as u32, c as u32) {
                            c += 1;
                            continue;
                        }
                        // A run of untouched cells from c up to the next touched one.
                        let end = if t < touched.len() && touched[t].0 as usize == r {
                            (touched[t].1 as usize - 1).min(c1)
                        } else {
                            c1
                        };
                        let xc = grid.x0 + (c as f64 + 0.5) * cw;
                        if prep.contains(xc, yc) {
                            inside.extend((c..=end).map(|k| (r * grid.nx + k) as u32));
                        }
                        c = end + 1;
                    }
                }
            }
            let touched = touched.into_iter().map(|(r, c)| r * grid.nx as u32 + c).collect();
            (touched, inside)
        })
        .collect();
    let ncells = nx * ny;
    // The lowest polygon covering each cell whole.
    let mut full = vec![EMPTY; ncells];
    for (pos, (_, inside)) in per_polygon.iter().enumerate() {
        for &c in inside {
            let f = &mut full[c as usize];
            *f = (*f).min(pos as u32);
        }
    }
    // Polygons whose boundary touches each cell, in position order.
    let mut touch: Vec<u64> = per_polygon
        .iter()
        .enumerate()
        .flat_map(|(pos, (touched, _))| touched.iter().map(move |&c| (u64::from(c) << 32) | pos as u64))
        .collect();
    touch.par_sort_unstable();
    let mut cells = full;
    let mut lists = Vec::new();
    let mut k = 0;
    while k < touch.len() {
        let c = (touch[k] >> 32) as usize;
        let mut e = k;
        while e < touch.len() && (touch[e] >> 32) as usize == c {
            e += 1;
        }
        let default = cells[c];
        // Touching polygons below the one covering the rest of the cell (sorted, so a prefix).
        let n = touch[k..e].iter().take_while(|&&v| (v as u32) < default).count();
        if n > 0 {
            let at = lists.len() as u32;
            lists.push(n as u32);
            lists.extend(touch[k..k + n].iter().map(|&v| v as u32));
            lists.push(default);
            cells[c] = LIST | at;
        }
        k = e;
    }
    grid.cells = cells;
    grid.lists = lists;
    grid
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
    /// The reference answer: the lowest position whose polygon contains the point.
    fn brute(preps: &[PreparedPolygon], x: f64, y: f64) -> Option<u32> {
        preps.iter().position(|p| p.contains(x, y)).map(|k| k as u32)
    }

    proptest! {
        #[test]
        fn grid_lookup_agrees_with_testing_every_polygon(
            seed_polys in proptest::collection::vec((0.0f64..10.0, 0.0f64..10.0, 0.05f64..4.0, 3usize..9), 1..30),
            pts in proptest::collection::vec((-1.0f64..11.0, -1.0f64..11.0, 0u8..4), 200),
        ) {
            // Overlapping star-shaped polygons (a messy layer), with points on vertices, on
            // edges, on cell-like round coordinates and anywhere.
            let polys: Vec<MultiPolygon<f64>> = seed_polys
                .iter()
                .map(|&(cx, cy, r, n)| {
                    let ring: Vec<(f64, f64)> = (0..=n)
                        .map(|i| {
                            let a = (i % n) as f64 / n as f64 * std::f64::consts::TAU + 0.3;
                            let rr = if i % 2 == 0 { r } else { r * 0.6 };
                            (cx + rr * a.cos(), cy + rr * a.sin())
                        })
                        .collect();
                    MultiPolygon(vec![geo::Polygon::new(LineString::from(ring), vec![])])
                })
                .collect();
            let idx = PolygonIndex::new(polys.iter().enumerate().map(|(k, p)| (k as u32 + 100, p)));
            let preps: Vec<PreparedPolygon> = polys.iter().map(PreparedPolygon::new).collect();
            for (k, &(x, y, kind)) in pts.iter().enumerate() {
                let (x, y) = match kind {
                    0 => (x, y),
                    1 => (x.round(), y.round()),
                    2 => {
                        let v = polys[k % polys.len()].0[0].exterior().0[k % 3];
                        (v.x, v.y)
                    }
                    _ => {
                        let r = &polys[k % polys.len()].0[0].exterior().0;
                        let (a, b) = (r[0], r[1]);
                        let t = (x + 1.0) / 12.0;
                        (a.x + t * (b.x - a.x), a.y + t * (b.y - a.y))
                    }
                };
                prop_assert_eq!(idx.locate(x, y), brute(&preps, x, y).map(|p| p + 100), "({}, {})", x, y);
            }
        }
    }

    #[test]
    fn fine_partition_on_the_grid_lines() {
        // 40 x 40 unit squares: cell and polygon edges fall on the same lines; every point on
        // an edge or corner is still in exactly the one square the half-open rule says.
        let cells: Vec<MultiPolygon<f64>> = (0..1600)
            .map(|k| {
                let (i, j) = ((k % 40) as f64, (k / 40) as f64);
                square(i, j, i + 1.0, j + 1.0)
            })
            .collect();
        let idx = PolygonIndex::new(cells.iter().enumerate().map(|(k, c)| (k as u32, c)));
        for i in 0..=80 {
            for j in 0..=80 {
                let (x, y) = (i as f64 * 0.5, j as f64 * 0.5);
                let want = ((0.0..40.0).contains(&x) && (0.0..40.0).contains(&y))
                    .then(|| (y.floor() as u32) * 40 + x.floor() as u32);
                assert_eq!(idx.locate(x, y), want, "({x}, {y})");
            }
        }
        assert_eq!(idx.locate(f64::NAN, 1.0), None);
        assert_eq!(idx.locate(-0.5, 1.0), None);
    }
}
