//! Points on the unit sphere, so that nearest-neighbour search in 3-D gives ground distance.
//!
//! A lon/lat point maps to the unit vector `(cos φ cos λ, cos φ sin λ, sin φ)`. The straight
//! (chord) distance `c` between two unit vectors grows monotonically with the great-circle
//! distance `d = 2 R asin(c / 2)`, so the nearest point by chord is the nearest on the ground,
//! and a ground radius is a chord radius. This holds anywhere on Earth (no zones, no wrap at
//! ±180°), which is why stations and households are indexed this way rather than in degrees.
//!
//! # Units
//! Ground distances in metres on a sphere of radius [`EARTH_RADIUS_M`] (the IUGG mean radius,
//! as used by `geo::Haversine`). Against the WGS84 ellipsoid the error is below 0.5 %.

/// Mean Earth radius, metres (IUGG R1).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point on the unit sphere.
pub type Unit3 = [f64; 3];

/// The unit vector of a WGS84 lon/lat point (degrees).
///
/// # Examples
/// ```
/// use gridcover::index::sphere::to_unit;
/// let p = to_unit(90.0, 0.0);
/// assert!((p[1] - 1.0).abs() < 1e-12);
/// ```
#[inline]
pub fn to_unit(lon: f64, lat: f64) -> Unit3 {
    let (sl, cl) = lon.to_radians().sin_cos();
    let (sp, cp) = lat.to_radians().sin_cos();
    [cp * cl, cp * sl, sp]
}

/// Lon/lat (degrees) of a (not necessarily unit) non-zero vector.
#[inline]
pub fn to_lonlat(p: Unit3) -> (f64, f64) {
    let lon = p[1].atan2(p[0]).to_degrees();
    let lat = p[2].atan2((p[0] * p[0] + p[1] * p[1]).sqrt()).to_degrees();
    (lon, lat)
}

/// Squared chord between two unit vectors.
#[inline]
pub fn chord_2(a: Unit3, b: Unit3) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    let dz = a[2] - b[2];
    dx * dx + dy * dy + dz * dz
}

/// Ground distance in metres for a squared chord.
#[inline]
pub fn chord_2_to_m(c2: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (c2.max(0.0).sqrt() * 0.5).min(1.0).asin()
}

/// Squared chord for a ground distance in metres (distances beyond half the circumference
/// give the diameter squared, 4).
#[inline]
pub fn m_to_chord_2(m: f64) -> f64 {
    let half_angle = (m / (2.0 * EARTH_RADIUS_M)).clamp(0.0, std::f64::consts::FRAC_PI_2);
    let c = 2.0 * half_angle.sin();
    c * c
}

/// Great-circle distance in metres between two lon/lat points (degrees).
///
/// # Examples
/// ```
/// use gridcover::index::sphere::ground_m;
/// // One degree of latitude is about 111.2 km.
/// let d = ground_m(103.8, 36.0, 103.8, 37.0);
/// assert!((d - 111_195.0).abs() < 1.0);
/// ```
#[inline]
pub fn ground_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    chord_2_to_m(chord_2(to_unit(lon1, lat1), to_unit(lon2, lat2)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use geo::{Distance, Haversine, Point};

    #[test]
    fn agrees_with_geo_haversine() {
        let pairs = [
            ((103.83, 36.06), (94.66, 40.14)), // Lanzhou – Dunhuang
            ((0.0, 0.0), (0.0, 0.0)),
            ((179.9, 10.0), (-179.9, 10.0)), // across the antimeridian
            ((10.0, 89.0), (-170.0, 89.0)),  // over the pole
            ((0.0, 0.0), (180.0, 0.0)),      // antipodes
        ];
        for ((a, b), (c, d)) in pairs {
            let h = Haversine.distance(Point::new(a, b), Point::new(c, d));
            assert_relative_eq!(ground_m(a, b, c, d), h, epsilon = 1e-6, max_relative = 1e-9);
        }
    }

    #[test]
    fn radius_round_trip() {
        for m in [0.0, 1.0, 500.0, 2_000.0, 30_000.0, 1e6, 1e7] {
            assert_relative_eq!(chord_2_to_m(m_to_chord_2(m)), m, epsilon = 1e-6, max_relative = 1e-9);
        }
        assert_eq!(m_to_chord_2(1e9), 4.0);
    }

    #[test]
    fn lonlat_round_trip() {
        for (lon, lat) in [(103.8, 36.0), (-70.0, -33.0), (179.5, 0.1)] {
            let (a, b) = to_lonlat(to_unit(lon, lat));
            assert_relative_eq!(a, lon, epsilon = 1e-12);
            assert_relative_eq!(b, lat, epsilon = 1e-12);
        }
    }
}
