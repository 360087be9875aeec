//! Coordinate reference systems of the input files, and their conversion to WGS84.
//!
//! Inside gridcover every coordinate is WGS84 longitude/latitude in degrees. Input files may
//! come in any of the [`Crs`] variants:
//!
//! * [`Crs::Wgs84`] (EPSG:4326) and [`Crs::Cgcs2000`] (EPSG:4490, China's official geodetic
//!   system): taken as they are. CGCS2000 and WGS84 (G1762 etc.) differ by a few centimetres
//!   only, far below the accuracy of any address-level location, so gridcover treats them as
//!   identical and does no datum shift.
//! * [`Crs::Gcj02`] (Amap/Tencent "Mars" coordinates) and [`Crs::Bd09`] (Baidu): the public
//!   formulas in this module (pure functions, see [`wgs84_to_gcj02`] and friends).
//! * [`Crs::Epsg`] with any other code (e.g. a Gauss-Krüger or UTM projection in metres): PROJ,
//!   built into the binary, with its axis order normalised so that input is easting/northing
//!   (or longitude/latitude) and output longitude/latitude.
//!
//! [`ToWgs84`] bundles the right conversion for one CRS.

mod china;

use std::fmt;
use std::str::FromStr;

pub use china::{
    bd09_to_gcj02, bd09_to_wgs84, gcj02_to_bd09, gcj02_to_wgs84, out_of_china, wgs84_to_bd09, wgs84_to_gcj02,
};

/// A coordinate reference system an input file may use.
///
/// Parsed from and written as text: `wgs84`, `cgcs2000`, `gcj02`, `bd09` or `EPSG:n`
/// (`EPSG:4326` is read as [`Crs::Wgs84`], `EPSG:4490` as [`Crs::Cgcs2000`]). Serde uses the
/// same text.
///
/// ```
/// use gridcover::crs::Crs;
/// assert_eq!("WGS84".parse::<Crs>().unwrap(), Crs::Wgs84);
/// assert_eq!("EPSG:4490".parse::<Crs>().unwrap(), Crs::Cgcs2000);
/// assert_eq!("epsg:4527".parse::<Crs>().unwrap(), Crs::Epsg(4527));
/// assert_eq!(Crs::Epsg(3857).to_string(), "EPSG:3857");
/// assert_eq!(Crs::Gcj02.to_string(), "gcj02");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Crs {
    /// WGS84 longitude/latitude, EPSG:4326 (the default).
    #[default]
    Wgs84,
    /// CGCS2000 longitude/latitude, EPSG:4490; treated as identical to WGS84.
    Cgcs2000,
    /// GCJ-02 longitude/latitude (Amap, Tencent, most Chinese web maps).
    Gcj02,
    /// BD-09 longitude/latitude (Baidu).
    Bd09,
    /// Any other CRS known to PROJ by its EPSG code.
    Epsg(u32),
}

impl Crs {
    /// True for the systems taken as WGS84 without any conversion.
    pub fn is_wgs84_like(&self) -> bool {
        matches!(self, Crs::Wgs84 | Crs::Cgcs2000 | Crs::Epsg(4326) | Crs::Epsg(4490))
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crs::Wgs84 => f.write_str("wgs84"),
            Crs::Cgcs2000 => f.write_str("cgcs2000"),
            Crs::Gcj02 => f.write_str("gcj02"),
            Crs::Bd09 => f.write_str("bd09"),
            Crs::Epsg(n) => write!(f, "EPSG:{n}"),
        }
    }
}

impl FromStr for Crs {
    type Err = CrsError;

    /// Accepts the names in any case (with or without a hyphen: `gcj-02`) and `EPSG:n`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace(['-', '_'], "");
        Ok(match t.as_str() {
            "wgs84" | "epsg:4326" => Crs::Wgs84,
            "cgcs2000" | "epsg:4490" => Crs::Cgcs2000,
            "gcj02" => Crs::Gcj02,
            "bd09" | "bd09ll" => Crs::Bd09,
            _ => match t.strip_prefix("epsg:").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => Crs::Epsg(n),
                _ => return Err(CrsError::Unknown(s.trim().to_string())),
            },
        })
    }
}

impl TryFrom<String> for Crs {
    type Error = CrsError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Crs> for String {
    fn from(c: Crs) -> String {
        c.to_string()
    }
}

/// Why a coordinate reference system could not be used or a coordinate not converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CrsError {
    /// The text names no CRS gridcover knows.
    #[error("unknown coordinate reference system {0:?} (expected wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>)")]
    Unknown(String),
    /// PROJ could not set up the transformation from an EPSG code or convert a coordinate.
    #[error("PROJ failed for EPSG:{code}: {message}")]
    Proj {
        /// The EPSG code of the source CRS.
        code: u32,
        /// PROJ's own message.
        message: String,
    },
    /// The input or the converted coordinate is not a finite number.
    #[error("coordinate ({x}, {y}) converted to a non-finite value ({lon}, {lat})")]
    NonFinite {
        /// Input x (longitude or easting).
        x: f64,
        /// Input y (latitude or northing).
        y: f64,
        /// Resulting longitude.
        lon: f64,
        /// Resulting latitude.
        lat: f64,
    },
}

enum Kind {
    Identity,
    Gcj02,
    Bd09,
    Proj { code: u32, proj: proj::Proj },
}

/// A conversion from one [`Crs`] to WGS84 longitude/latitude.
///
/// # Threads
/// A `ToWgs84` for an EPSG code holds a PROJ object, which is neither `Send` nor `Sync`; so
/// `ToWgs84` is neither either. Build one per thread (it is cheap for the built-in systems
/// and takes about a millisecond for PROJ). Converting a file is sequential anyway.
///
/// ```
/// use gridcover::crs::{Crs, ToWgs84};
/// let t = ToWgs84::new(&Crs::Epsg(3857)).unwrap();
/// let (lon, lat) = t.convert(0.0, 0.0).unwrap();
/// assert!(lon.abs() < 1e-9 && lat.abs() < 1e-9);
/// let g = ToWgs84::new(&Crs::Gcj02).unwrap();
/// let (lon, lat) = g.convert(116.40337, 39.91793).unwrap();
/// assert!((lon - 116.397128).abs() < 1e-5 && (lat - 39.916527).abs() < 1e-5);
/// ```
pub struct ToWgs84 {
    crs: Crs,
    kind: Kind,
}

impl fmt::Debug for ToWgs84 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToWgs84").field("crs", &self.crs).finish()
    }
}

impl ToWgs84 {
    /// Sets up the conversion from `crs`.
    ///
    /// # Errors
    /// [`CrsError::Proj`] when PROJ does not know the EPSG code or finds no transformation
    /// from it to WGS84.
    pub fn new(crs: &Crs) -> Result<Self, CrsError> {
        let kind = match *crs {
            c if c.is_wgs84_like() => Kind::Identity,
            Crs::Gcj02 => Kind::Gcj02,
            Crs::Bd09 => Kind::Bd09,
            Crs::Epsg(code) => {
                // `new_known_crs` calls proj_create_crs_to_crs and then
                // proj_normalize_for_visualization, so input is easting/northing or lon/lat and
                // output is lon/lat whatever the authority's axis order says.
                // PROJ reads its database through the same SQLite as the store: SQLite's
                // process-wide settings come before its first connection, whichever opens it.
                crate::store::sqlite_process_settings();
                let proj = proj::Proj::new_known_crs(&format!("EPSG:{code}"), "EPSG:4326", None)
                    .map_err(|e| CrsError::Proj { code, message: e.to_string() })?;
                Kind::Proj { code, proj }
            }
            // Every other variant is handled above.
            Crs::Wgs84 | Crs::Cgcs2000 => Kind::Identity,
        };
        Ok(ToWgs84 { crs: *crs, kind })
    }

    /// The source CRS.
    pub fn crs(&self) -> Crs {
        self.crs
    }

    /// True when coordinates pass through unchanged (WGS84, CGCS2000).
    pub fn is_identity(&self) -> bool {
        matches!(self.kind, Kind::Identity)
    }

    /// Converts one coordinate: longitude/latitude or easting/northing in, WGS84
    /// longitude/latitude out.
    ///
    /// # Errors
    /// [`CrsError::Proj`] when PROJ fails on the point, [`CrsError::NonFinite`] when the input
    /// or the result is NaN or infinite.
    pub fn convert(&self, x: f64, y: f64) -> Result<(f64, f64), CrsError> {
        let (lon, lat) = match &self.kind {
            Kind::Identity => (x, y),
            Kind::Gcj02 => gcj02_to_wgs84(x, y),
            Kind::Bd09 => bd09_to_wgs84(x, y),
            Kind::Proj { code, proj } => {
                if !(x.is_finite() && y.is_finite()) {
                    (f64::NAN, f64::NAN)
                } else {
                    proj.convert((x, y)).map_err(|e| CrsError::Proj { code: *code, message: e.to_string() })?
                }
            }
        };
        if lon.is_finite() && lat.is_finite() && x.is_finite() && y.is_finite() {
            Ok((lon, lat))
        } else {
            Err(CrsError::NonFinite { x, y, lon, lat })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, c) in [
            ("wgs84", Crs::Wgs84),
            ("WGS84", Crs::Wgs84),
            ("WGS-84", Crs::Wgs84),
            ("EPSG:4326", Crs::Wgs84),
            ("cgcs2000", Crs::Cgcs2000),
            ("EPSG:4490", Crs::Cgcs2000),
            ("gcj02", Crs::Gcj02),
            ("GCJ-02", Crs::Gcj02),
            ("bd09", Crs::Bd09),
            ("EPSG:4527", Crs::Epsg(4527)),
            (" epsg:3857 ", Crs::Epsg(3857)),
        ] {
            assert_eq!(s.parse::<Crs>().unwrap(), c, "{s}");
            assert_eq!(c.to_string().parse::<Crs>().unwrap(), c);
        }
        for bad in ["", "mars", "EPSG:", "EPSG:abc", "EPSG:0", "4326"] {
            let e = bad.parse::<Crs>().unwrap_err();
            assert!(matches!(e, CrsError::Unknown(_)), "{bad}");
            assert!(e.to_string().contains("unknown coordinate reference system"));
        }
    }

    #[test]
    fn serde_uses_the_text() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct T {
            a: Crs,
            b: Crs,
        }
        let t: T = toml::from_str("a = \"gcj02\"\nb = \"EPSG:4527\"").unwrap();
        assert_eq!((t.a, t.b), (Crs::Gcj02, Crs::Epsg(4527)));
        let s = toml::to_string(&t).unwrap();
        assert!(s.contains("a = \"gcj02\"") && s.contains("b = \"EPSG:4527\""), "{s}");
        assert!(toml::from_str::<T>("a = \"mars\"\nb = \"wgs84\"").is_err());
    }

    #[test]
    fn identity_for_wgs84_and_cgcs2000() {
        for c in [Crs::Wgs84, Crs::Cgcs2000, Crs::Epsg(4326), Crs::Epsg(4490)] {
            let t = ToWgs84::new(&c).unwrap();
            assert!(t.is_identity());
            assert_eq!(t.convert(103.5, 36.25).unwrap(), (103.5, 36.25));
            assert!(matches!(t.convert(f64::NAN, 36.0), Err(CrsError::NonFinite { .. })));
        }
    }

    #[test]
    fn gcj02_and_bd09_go_back_to_wgs84() {
        let w = (103.834, 36.061);
        let g = wgs84_to_gcj02(w.0, w.1);
        let b = wgs84_to_bd09(w.0, w.1);
        let tg = ToWgs84::new(&Crs::Gcj02).unwrap();
        let tb = ToWgs84::new(&Crs::Bd09).unwrap();
        let rg = tg.convert(g.0, g.1).unwrap();
        let rb = tb.convert(b.0, b.1).unwrap();
        assert!((rg.0 - w.0).abs() < 1e-9 && (rg.1 - w.1).abs() < 1e-9);
        assert!((rb.0 - w.0).abs() < 1e-9 && (rb.1 - w.1).abs() < 1e-9);
    }

    #[test]
    fn gauss_kruger_zone_39_through_proj() {
        // EPSG:4527 = CGCS2000 / 3-degree Gauss-Kruger zone 39: central meridian 117°E, false
        // easting 39 500 000 m (zone number prefixed). On the central meridian x = 39 500 000
        // gives exactly 117°E. With scale factor 1 on the central meridian, y is the meridian
        // arc length from the equator; integrating the GRS80 meridian radius
        // a(1-e²)/(1-e² sin²φ)^1.5 numerically gives 3 985 543 m to 36°N and 4 000 000 m at
        // 36.13029°N (computed independently of PROJ, in Python).
        let t = ToWgs84::new(&Crs::Epsg(4527)).unwrap();
        let (lon, lat) = t.convert(39_500_000.0, 4_000_000.0).unwrap();
        assert!((lon - 117.0).abs() < 1e-9, "lon {lon}");
        assert!((lat - 36.13029).abs() < 2e-5, "lat {lat}");
        // 100 km east of the central meridian.
        let (lon2, lat2) = t.convert(39_600_000.0, 4_000_000.0).unwrap();
        assert!(lon2 > 118.0 && lon2 < 118.2 && (lat2 - lat).abs() < 0.05, "{lon2} {lat2}");
    }

    #[test]
    fn web_mercator_through_proj() {
        let t = ToWgs84::new(&Crs::Epsg(3857)).unwrap();
        let (lon, lat) = t.convert(0.0, 0.0).unwrap();
        assert!(lon.abs() < 1e-12 && lat.abs() < 1e-12);
        let (lon, lat) = t.convert(20_037_508.342_789_244, 0.0).unwrap();
        assert!((lon - 180.0).abs() < 1e-9 && lat.abs() < 1e-12, "{lon}");
        // Lanzhou: lat from y = R ln(tan(π/4 + φ/2)).
        let phi: f64 = 36.06;
        let y = 6_378_137.0 * (std::f64::consts::FRAC_PI_4 + phi.to_radians() / 2.0).tan().ln();
        let x = 6_378_137.0 * 103.83_f64.to_radians();
        let (lon, lat) = t.convert(x, y).unwrap();
        assert!((lon - 103.83).abs() < 1e-9 && (lat - 36.06).abs() < 1e-9, "{lon} {lat}");
    }

    #[test]
    fn unknown_epsg_is_a_proj_error() {
        let e = ToWgs84::new(&Crs::Epsg(999_999)).unwrap_err();
        match &e {
            CrsError::Proj { code, message } => {
                assert_eq!(*code, 999_999);
                assert!(!message.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("EPSG:999999"));
    }
}
