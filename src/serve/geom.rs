//! Geometry for the server (pure): bounding boxes, Web Mercator tile arithmetic, polygon
//! simplification and clipping in tile space, and GeoJSON text of geometries.
//!
//! Simplification is geo's. Clipping a ring to its tile's square is hand-written
//! ([`clip_ring`], Sutherland–Hodgman, as vector-tile encoders do): `benches/tiles.rs` clips the
//! Gansu county rings into every zoom-9 tile both ways, checks the areas equal, and measures
//! geo's general `BooleanOps::intersection` 28 times slower on the same rings (release,
//! 2026-12-06: 6.1 ms against 173.8 ms, criterion medians). (The
//! generator's clip of a Voronoi cell to a parent polygon is a general intersection, so it is
//! geo's.)

use std::fmt::Write;

use geo::{LineString, MultiPolygon, Polygon};

pub use crate::model::Bbox;

/// The OGC API's `bbox` parameter.
impl Bbox {
    /// Parses an OGC `bbox` parameter: `minLon,minLat,maxLon,maxLat` (four numbers; a
    /// six-number 3-D box uses its horizontal part).
    pub fn parse_param(s: &str) -> Result<Bbox, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 4 && parts.len() != 6 {
            return Err(format!("bbox must be 4 comma-separated numbers minLon,minLat,maxLon,maxLat, got {s:?}"));
        }
        let mut v = Vec::with_capacity(parts.len());
        for p in &parts {
            let x: f64 = p.parse().map_err(|_| format!("bbox: {p:?} is not a number"))?;
            if !x.is_finite() {
                return Err(format!("bbox: {p:?} is not a finite number"));
            }
            v.push(x);
        }
        let (a, b, c, d) = if v.len() == 4 { (v[0], v[1], v[2], v[3]) } else { (v[0], v[1], v[3], v[4]) };
        use crate::model::rules::{check_lat, check_lon};
        if check_lon(a).and(check_lon(c)).is_err() {
            return Err(format!("bbox: longitudes must lie in [-180, 180], got {a} and {c}"));
        }
        if check_lat(b).and(check_lat(d)).is_err() {
            return Err(format!("bbox: latitudes must lie in [-90, 90], got {b} and {d}"));
        }
        if b > d {
            return Err(format!("bbox: the south edge {b} lies north of the north edge {d}"));
        }
        if a > c {
            return Err(format!("bbox: boxes across the antimeridian are not supported ({a} > {c})"));
        }
        Ok(Bbox::new(a, b, c, d))
    }
}

/// Largest latitude of Web Mercator, degrees.
pub const MAX_LAT: f64 = 85.051_128_779_806_59;

/// Web Mercator of a lon/lat point as fractions of the world square: x east from −180°,
/// y south from the top edge, both in [0, 1].
pub fn mercator(lon: f64, lat: f64) -> (f64, f64) {
    let x = (lon + 180.0) / 360.0;
    let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0;
    (x, y)
}

/// The lon/lat of a point given as fractions of the world square.
pub fn inverse_mercator(x: f64, y: f64) -> (f64, f64) {
    let lon = x * 360.0 - 180.0;
    let n = std::f64::consts::PI * (1.0 - 2.0 * y);
    let lat = n.sinh().atan().to_degrees();
    (lon, lat)
}

/// One tile of the Web Mercator (XYZ, y down from the north) pyramid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Zoom.
    pub z: u8,
    /// Column from the west.
    pub x: u32,
    /// Row from the north.
    pub y: u32,
}

impl TileId {
    /// A tile, checked against its zoom's range.
    pub fn new(z: u8, x: u32, y: u32) -> Result<TileId, String> {
        if z > 30 {
            return Err(format!("zoom {z} is out of range"));
        }
        let n = 1u64 << z;
        if u64::from(x) >= n || u64::from(y) >= n {
            return Err(format!("tile {z}/{x}/{y} does not exist: x and y must be below {n} at zoom {z}"));
        }
        Ok(TileId { z, x, y })
    }

    /// Its lon/lat box.
    pub fn bbox(&self) -> Bbox {
        let n = (1u64 << self.z) as f64;
        let (w, n_lat) = inverse_mercator(f64::from(self.x) / n, f64::from(self.y) / n);
        let (e, s_lat) = inverse_mercator(f64::from(self.x + 1) / n, f64::from(self.y + 1) / n);
        Bbox::new(w, s_lat, e, n_lat)
    }

    /// Its lon/lat box widened by `buffer / extent` of its width on each side.
    pub fn bbox_buffered(&self, extent: u32, buffer: u32) -> Bbox {
        let n = (1u64 << self.z) as f64;
        let b = f64::from(buffer) / f64::from(extent);
        let (w, n_lat) =
            inverse_mercator(((f64::from(self.x) - b) / n).max(0.0), ((f64::from(self.y) - b) / n).max(0.0));
        let (e, s_lat) =
            inverse_mercator(((f64::from(self.x + 1) + b) / n).min(1.0), ((f64::from(self.y + 1) + b) / n).min(1.0));
        Bbox::new(w, s_lat, e, n_lat)
    }

    /// Tile coordinates (0..extent across the tile) of a lon/lat point.
    pub fn to_tile(&self, extent: u32, lon: f64, lat: f64) -> (f64, f64) {
        let (mx, my) = mercator(lon, lat);
        let n = (1u64 << self.z) as f64;
        let e = f64::from(extent);
        ((mx * n - f64::from(self.x)) * e, (my * n - f64::from(self.y)) * e)
    }
}

/// Douglas–Peucker simplification of an open or closed path with tolerance `eps` (same units
/// as the points), by geo's [`Simplify`](geo::Simplify). Keeps the first and last points.
pub fn simplify(points: &[(f64, f64)], eps: f64) -> Vec<(f64, f64)> {
    use geo::Simplify;
    let line: LineString<f64> = points.iter().map(|&(x, y)| geo::Coord { x, y }).collect();
    line.simplify(eps).0.into_iter().map(|c| (c.x, c.y)).collect()
}

/// Clips a closed ring (first point not repeated at the end) to the box `[lo, hi]²`
/// (Sutherland–Hodgman; the box is convex, so the result is the exact intersection, with
/// edges along the box where the ring left it).
pub fn clip_ring(ring: &[(f64, f64)], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = ring.to_vec();
    // Each edge: inside test and intersection.
    for edge in 0..4 {
        if out.is_empty() {
            break;
        }
        let inside = |p: (f64, f64)| match edge {
            0 => p.0 >= lo,
            1 => p.0 <= hi,
            2 => p.1 >= lo,
            _ => p.1 <= hi,
        };
        let cross = |a: (f64, f64), b: (f64, f64)| -> (f64, f64) {
            let (v, ca, cb) = match edge {
                0 => (lo, a.0, b.0),
                1 => (hi, a.0, b.0),
                2 => (lo, a.1, b.1),
                _ => (hi, a.1, b.1),
            };
            let t = (v - ca) / (cb - ca);
            if edge < 2 {
                (v, a.1 + t * (b.1 - a.1))
            } else {
                (a.0 + t * (b.0 - a.0), v)
            }
        };
        let input = std::mem::take(&mut out);
        let mut prev = *input.last().expect("not empty");
        for &cur in &input {
            match (inside(prev), inside(cur)) {
                (true, true) => out.push(cur),
                (true, false) => out.push(cross(prev, cur)),
                (false, true) => {
                    out.push(cross(prev, cur));
                    out.push(cur);
                }
                (false, false) => {}
            }
            prev = cur;
        }
    }
    out
}

/// Twice the signed area of an integer ring by the surveyor's formula (positive = clockwise
/// with y down, the orientation of an exterior ring in a vector tile).
pub fn ring_area2(ring: &[(i32, i32)]) -> i64 {
    let n = ring.len();
    let mut s = 0i64;
    for i in 0..n {
        let (x0, y0) = ring[i];
        let (x1, y1) = ring[(i + 1) % n];
        s += i64::from(x0) * i64::from(y1) - i64::from(x1) * i64::from(y0);
    }
    s
}

/// A ring of a lon/lat polygon in tile space, simplified with `eps`, clipped to the tile plus
/// `buffer` and rounded; `exterior` sets the winding (exterior rings positive area in tile
/// coordinates). `None` when nothing of it remains.
pub fn tile_ring(
    tile: &TileId,
    extent: u32,
    buffer: u32,
    eps: f64,
    ring: &LineString<f64>,
    exterior: bool,
) -> Option<Vec<(i32, i32)>> {
    let mut pts: Vec<(f64, f64)> = ring.0.iter().map(|c| tile.to_tile(extent, c.x, c.y)).collect();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    if pts.len() < 3 {
        return None;
    }
    // Simplify as a closed path: split at the first point (kept).
    pts.push(pts[0]);
    let mut s = simplify(&pts, eps);
    s.pop();
    let lo = -f64::from(buffer);
    let hi = f64::from(extent + buffer);
    let c = clip_ring(&s, lo, hi);
    let mut r: Vec<(i32, i32)> = Vec::with_capacity(c.len());
    for (x, y) in c {
        let p = (x.round() as i32, y.round() as i32);
        if r.last() != Some(&p) {
            r.push(p);
        }
    }
    while r.len() > 1 && r.first() == r.last() {
        r.pop();
    }
    if r.len() < 3 {
        return None;
    }
    let a = ring_area2(&r);
    if a == 0 {
        return None;
    }
    if (a > 0) != exterior {
        r.reverse();
    }
    Some(r)
}

/// The rings of a polygon in tile space (exterior first); empty when its exterior vanishes.
pub fn tile_polygon(tile: &TileId, extent: u32, buffer: u32, eps: f64, p: &Polygon<f64>) -> Vec<Vec<(i32, i32)>> {
    let Some(ext) = tile_ring(tile, extent, buffer, eps, p.exterior(), true) else {
        return Vec::new();
    };
    let mut rings = vec![ext];
    for h in p.interiors() {
        if let Some(r) = tile_ring(tile, extent, buffer, eps, h, false) {
            rings.push(r);
        }
    }
    rings
}

fn push_num(s: &mut String, x: f64) {
    // Seven decimals (about 1 cm) is what the inputs carry; trailing zeros trimmed.
    let mut t = format!("{x:.7}");
    while t.ends_with('0') {
        t.pop();
    }
    if t.ends_with('.') {
        t.pop();
    }
    if t == "-0" {
        t = "0".into();
    }
    s.push_str(&t);
}

fn push_ring(s: &mut String, r: &LineString<f64>) {
    s.push('[');
    for (i, c) in r.0.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('[');
        push_num(s, c.x);
        s.push(',');
        push_num(s, c.y);
        s.push(']');
    }
    s.push(']');
}

fn push_polygon(s: &mut String, p: &Polygon<f64>) {
    s.push('[');
    push_ring(s, p.exterior());
    for h in p.interiors() {
        s.push(',');
        push_ring(s, h);
    }
    s.push(']');
}

/// GeoJSON text of a multipolygon.
pub fn multipolygon_json(m: &MultiPolygon<f64>) -> String {
    let mut s = String::from(r#"{"type":"MultiPolygon","coordinates":["#);
    for (i, p) in m.0.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_polygon(&mut s, p);
    }
    s.push_str("]}");
    s
}

/// GeoJSON text of a polygon.
pub fn polygon_json(p: &Polygon<f64>) -> String {
    let mut s = String::from(r#"{"type":"Polygon","coordinates":"#);
    push_polygon(&mut s, p);
    s.push('}');
    s
}

/// GeoJSON text of a point.
pub fn point_json(x: f64, y: f64) -> String {
    let mut s = String::from(r#"{"type":"Point","coordinates":["#);
    push_num(&mut s, x);
    s.push(',');
    push_num(&mut s, y);
    let _ = write!(s, "]}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn mercator_round_trips_and_tiles_nest() {
        let (x, y) = mercator(103.8, 36.06);
        let (lon, lat) = inverse_mercator(x, y);
        assert_abs_diff_eq!(lon, 103.8, epsilon = 1e-9);
        assert_abs_diff_eq!(lat, 36.06, epsilon = 1e-9);
        // Lanzhou at zoom 8 is tile 201/100 (checked against the XYZ formula by hand:
        // x = floor((103.8+180)/360*256) = 201, y = floor(0.3928…*256) = 100).
        let t = TileId::new(8, 201, 100).unwrap();
        assert!(t.bbox().contains(103.8, 36.06));
        let (px, py) = t.to_tile(4096, 103.8, 36.06);
        assert!((0.0..4096.0).contains(&px) && (0.0..4096.0).contains(&py), "{px} {py}");
        assert!(TileId::new(2, 4, 0).is_err());
    }

    #[test]
    fn bbox_param() {
        assert_eq!(Bbox::parse_param("1,2,3,4").unwrap(), Bbox::new(1.0, 2.0, 3.0, 4.0));
        assert_eq!(Bbox::parse_param("1,2,0,3,4,9").unwrap(), Bbox::new(1.0, 2.0, 3.0, 4.0));
        assert!(Bbox::parse_param("1,2,3").is_err());
        assert!(Bbox::parse_param("1,2,3,x").is_err());
        assert!(Bbox::parse_param("1,5,3,4").unwrap_err().contains("south"));
        assert!(Bbox::parse_param("1,2,3,NaN").is_err());
        assert!(Bbox::parse_param("1,2,300,4").is_err());
    }

    #[test]
    fn simplify_drops_near_collinear_points() {
        let p = [(0.0, 0.0), (1.0, 0.1), (2.0, 0.0), (3.0, 5.0)];
        assert_eq!(simplify(&p, 0.5), vec![(0.0, 0.0), (2.0, 0.0), (3.0, 5.0)]);
        assert_eq!(simplify(&p, 0.01), p.to_vec());
    }

    #[test]
    fn clip_square_to_box() {
        // A 0..10 square clipped to 0..5 keeps the quarter 0..5.
        let sq = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        let c = clip_ring(&sq, 0.0, 5.0);
        let ci: Vec<(i32, i32)> = c.iter().map(|p| (p.0 as i32, p.1 as i32)).collect();
        assert_eq!(ring_area2(&ci).abs(), 50);
        // Wholly outside: nothing.
        let far = [(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)];
        assert!(clip_ring(&far, 0.0, 5.0).is_empty());
    }

    #[test]
    fn tile_rings_have_mvt_winding() {
        let t = TileId::new(0, 0, 0).unwrap();
        // Counter-clockwise in lon/lat (y up) is clockwise in tile space (y down): positive.
        let ccw = LineString::from(vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]);
        let r = tile_ring(&t, 4096, 64, 0.5, &ccw, true).unwrap();
        assert!(ring_area2(&r) > 0);
        let h = tile_ring(&t, 4096, 64, 0.5, &ccw, false).unwrap();
        assert!(ring_area2(&h) < 0);
    }

    #[test]
    fn geojson_text() {
        assert_eq!(point_json(103.5, -0.0), r#"{"type":"Point","coordinates":[103.5,0]}"#);
        let v: serde_json::Value = serde_json::from_str(&polygon_json(&Polygon::new(
            LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]),
            vec![],
        )))
        .unwrap();
        assert_eq!(v["coordinates"][0][2], serde_json::json!([1, 1]));
    }
}
