//! The Chinese "offset" datums GCJ-02 (国测局坐标, "Mars" coordinates, used by Amap, Tencent
//! and others) and BD-09 (百度坐标, Baidu), and their conversions to and from WGS84.
//!
//! These are the publicly known formulas (the ones in `coordtransform`, `eviltransform`,
//! `cnmaps` and many others). They are pure functions of longitude/latitude in degrees.
//!
//! * GCJ-02 is WGS84 plus a smooth, deliberately irregular offset of a few hundred metres.
//!   It applies only inside the usual China bounding box (longitude 72.004…137.8347°,
//!   latitude 0.8293…55.8271°); outside it the point is returned unchanged, as in the standard
//!   formula.
//! * BD-09 is GCJ-02 with a further rotation-and-shift applied everywhere.
//!
//! The forward directions (towards GCJ-02 and BD-09) are closed formulas. The inverse
//! directions have no closed form: they start from the usual approximate inverse and then
//! refine it by fixed-point iteration until the forward conversion of the result reproduces
//! the input to better than 1e-9 degrees (in practice to within a few 1e-14 degrees).

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid used by the GCJ-02 formula, metres.
const A: f64 = 6_378_245.0;
/// First eccentricity squared of the Krasovsky 1940 ellipsoid.
const EE: f64 = 0.006_693_421_622_965_943;
/// π scaled as in Baidu's formula.
const X_PI: f64 = PI * 3000.0 / 180.0;
/// Stop refining an inverse once a step is smaller than this, degrees.
const INVERSE_TOL_DEG: f64 = 1e-12;
/// Give up refining after this many steps (the iteration converges in 3–5 steps).
const MAX_ITER: usize = 50;

/// True when the point lies outside the bounding box in which GCJ-02 applies.
///
/// ```
/// assert!(gridcover::crs::out_of_china(2.35, 48.85)); // Paris
/// assert!(!gridcover::crs::out_of_china(103.83, 36.06)); // Lanzhou
/// ```
pub fn out_of_china(lon: f64, lat: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    ret
}

/// WGS84 → GCJ-02 (the standard public formula). Outside China the point is unchanged.
///
/// ```
/// use gridcover::crs::wgs84_to_gcj02;
/// // Tiananmen, Beijing: the offset is a few hundred metres, mostly towards the east.
/// let (lon, lat) = wgs84_to_gcj02(116.397128, 39.916527);
/// assert!((lon - 116.403370).abs() < 1e-5 && (lat - 39.917930).abs() < 1e-5);
/// // Outside China nothing changes.
/// assert_eq!(wgs84_to_gcj02(2.35, 48.85), (2.35, 48.85));
/// ```
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let mut dlat = transform_lat(lon - 105.0, lat - 35.0);
    let mut dlon = transform_lon(lon - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - EE * radlat.sin() * radlat.sin();
    let sqrtmagic = magic.sqrt();
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * radlat.cos() * PI);
    (lon + dlon, lat + dlat)
}

/// Solves `forward(x) = target` for `x` by fixed-point iteration from `start`.
fn invert(target: (f64, f64), start: (f64, f64), forward: impl Fn(f64, f64) -> (f64, f64)) -> (f64, f64) {
    let (mut x, mut y) = start;
    for _ in 0..MAX_ITER {
        let (fx, fy) = forward(x, y);
        let (dx, dy) = (fx - target.0, fy - target.1);
        if !(dx.is_finite() && dy.is_finite()) {
            break;
        }
        x -= dx;
        y -= dy;
        if dx.abs() < INVERSE_TOL_DEG && dy.abs() < INVERSE_TOL_DEG {
            break;
        }
    }
    (x, y)
}

/// GCJ-02 → WGS84, the exact inverse of [`wgs84_to_gcj02`] found by iteration (to better
/// than 1e-9 degrees). Outside China the point is unchanged.
///
/// ```
/// use gridcover::crs::{gcj02_to_wgs84, wgs84_to_gcj02};
/// let (gx, gy) = wgs84_to_gcj02(103.834, 36.061);
/// let (lon, lat) = gcj02_to_wgs84(gx, gy);
/// assert!((lon - 103.834).abs() < 1e-9 && (lat - 36.061).abs() < 1e-9);
/// ```
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    invert((lon, lat), (lon, lat), wgs84_to_gcj02)
}

/// GCJ-02 → BD-09 (Baidu's public formula).
///
/// ```
/// use gridcover::crs::gcj02_to_bd09;
/// let (lon, lat) = gcj02_to_bd09(116.403370, 39.917930);
/// // Baidu's coordinates lie some 0.006° north-east of GCJ-02's.
/// assert!((lon - 116.40974).abs() < 1e-4 && (lat - 39.92427).abs() < 1e-4);
/// ```
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// BD-09 → GCJ-02: Baidu's approximate inverse, refined by iteration so that
/// [`gcj02_to_bd09`] of the result gives back the input to better than 1e-9 degrees.
///
/// ```
/// use gridcover::crs::{bd09_to_gcj02, gcj02_to_bd09};
/// let (bx, by) = gcj02_to_bd09(103.84, 36.06);
/// let (lon, lat) = bd09_to_gcj02(bx, by);
/// assert!((lon - 103.84).abs() < 1e-9 && (lat - 36.06).abs() < 1e-9);
/// ```
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    let x = lon - 0.0065;
    let y = lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * X_PI).cos();
    let start = (z * theta.cos(), z * theta.sin());
    invert((lon, lat), start, gcj02_to_bd09)
}

/// BD-09 → WGS84 (through GCJ-02).
///
/// ```
/// use gridcover::crs::{bd09_to_wgs84, wgs84_to_bd09};
/// let (bx, by) = wgs84_to_bd09(103.834, 36.061);
/// let (lon, lat) = bd09_to_wgs84(bx, by);
/// assert!((lon - 103.834).abs() < 1e-9 && (lat - 36.061).abs() < 1e-9);
/// ```
pub fn bd09_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = bd09_to_gcj02(lon, lat);
    gcj02_to_wgs84(x, y)
}

/// WGS84 → BD-09 (through GCJ-02).
///
/// ```
/// use gridcover::crs::wgs84_to_bd09;
/// let (lon, lat) = wgs84_to_bd09(116.397128, 39.916527);
/// assert!((lon - 116.40974).abs() < 1e-4 && (lat - 39.92427).abs() < 1e-4);
/// ```
pub fn wgs84_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = wgs84_to_gcj02(lon, lat);
    gcj02_to_bd09(x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metres per degree of latitude (and of longitude at the equator), roughly.
    const M_PER_DEG: f64 = 111_320.0;

    fn offset_m(a: (f64, f64), b: (f64, f64)) -> f64 {
        let coslat = (a.1.to_radians()).cos();
        let dx = (a.0 - b.0) * M_PER_DEG * coslat;
        let dy = (a.1 - b.1) * M_PER_DEG;
        (dx * dx + dy * dy).sqrt()
    }

    #[test]
    fn gcj02_forward_matches_published_pair() {
        // The widely published pair for Tiananmen: WGS84 (116.397128, 39.916527) is
        // GCJ-02 (116.40337, 39.91793) to the 5 decimals usually quoted.
        let g = wgs84_to_gcj02(116.397128, 39.916527);
        assert!((g.0 - 116.40337).abs() < 1e-5, "{g:?}");
        assert!((g.1 - 39.91793).abs() < 1e-5, "{g:?}");
        let m = offset_m(g, (116.397128, 39.916527));
        assert!((100.0..700.0).contains(&m), "offset near Beijing {m} m");
    }

    #[test]
    fn gcj02_round_trips_to_a_micrometre() {
        for &(lon, lat) in &[
            (116.397128, 39.916527),
            (103.834, 36.061),
            (94.66, 40.14),
            (106.07, 35.44),
            (121.47, 31.23),
            (87.6, 43.8),
            (73.0, 39.0),
            (135.0, 48.0),
        ] {
            let g = wgs84_to_gcj02(lon, lat);
            let w = gcj02_to_wgs84(g.0, g.1);
            let err = offset_m(w, (lon, lat));
            assert!(err < 1e-6, "round trip of ({lon}, {lat}) off by {err} m");
            assert!((w.0 - lon).abs() < 1e-9 && (w.1 - lat).abs() < 1e-9);
        }
    }

    #[test]
    fn gcj02_offset_over_gansu_is_hundreds_of_metres() {
        let mut min = f64::MAX;
        let mut max: f64 = 0.0;
        for i in 0..20 {
            for j in 0..10 {
                let p = (92.5 + i as f64 * 0.4, 32.7 + j as f64 * 0.8);
                let m = offset_m(wgs84_to_gcj02(p.0, p.1), p);
                min = min.min(m);
                max = max.max(m);
            }
        }
        assert!(min > 10.0 && max < 700.0, "{min}..{max}");
    }

    #[test]
    fn outside_china_is_unchanged() {
        for p in [(2.35, 48.85), (-74.0, 40.7), (151.2, -33.9), (116.4, 60.0)] {
            assert_eq!(wgs84_to_gcj02(p.0, p.1), p);
            assert_eq!(gcj02_to_wgs84(p.0, p.1), p);
        }
    }

    #[test]
    fn bd09_round_trips() {
        for &(lon, lat) in &[(116.40337, 39.91793), (103.84, 36.06), (94.66, 40.14), (-74.0, 40.7)] {
            let b = gcj02_to_bd09(lon, lat);
            // BD-09 shifts by roughly 0.0065°/0.006°, i.e. several hundred metres.
            assert!((300.0..1500.0).contains(&offset_m(b, (lon, lat))));
            let g = bd09_to_gcj02(b.0, b.1);
            assert!(offset_m(g, (lon, lat)) < 1e-6, "{g:?}");
            let w = bd09_to_wgs84(wgs84_to_bd09(lon, lat).0, wgs84_to_bd09(lon, lat).1);
            assert!(offset_m(w, (lon, lat)) < 1e-6, "{w:?}");
        }
    }
}
