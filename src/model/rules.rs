//! The input rules every reader of positions, radii, yes/no fields and dates shares (pure): the one
//! place each is written, so a data file, a store record, a what-if, a plan's sites and an
//! HTTP request accept and refuse alike. Each caller adds its own context (file and row,
//! request field) to the reason returned here.

use std::ops::RangeInclusive;

/// Longitudes a WGS84 position may have, degrees.
pub const LON: RangeInclusive<f64> = -180.0..=180.0;
/// Latitudes a WGS84 position may have, degrees.
pub const LAT: RangeInclusive<f64> = -90.0..=90.0;

/// Service radius of a station (stored, read from a data folder, opened in a what-if) and of a
/// plan, metres: the one radius policy, 100 m … 100 km.
pub const RADIUS_M: RangeInclusive<f64> = 100.0..=100_000.0;

/// True when `lon`, `lat` is a WGS84 position: both finite, the longitude within [`LON`], the
/// latitude within [`LAT`].
pub fn is_lon_lat(lon: f64, lat: f64) -> bool {
    lon.is_finite() && lat.is_finite() && LON.contains(&lon) && LAT.contains(&lat)
}

/// Checks a WGS84 position ([`check_lon`], then [`check_lat`]).
///
/// # Errors
/// The reason, naming the value out of range (`longitude 200 is not within -180..180`).
pub fn check_lon_lat(lon: f64, lat: f64) -> Result<(), String> {
    check_lon(lon)?;
    check_lat(lat)
}

/// Checks a longitude: finite and within [`LON`].
///
/// # Errors
/// `longitude X is not within -180..180`.
pub fn check_lon(lon: f64) -> Result<(), String> {
    if lon.is_finite() && LON.contains(&lon) {
        Ok(())
    } else {
        Err(format!("longitude {lon} is not within -180..180"))
    }
}

/// Checks a latitude: finite and within [`LAT`].
///
/// # Errors
/// `latitude Y is not within -90..90`.
pub fn check_lat(lat: f64) -> Result<(), String> {
    if lat.is_finite() && LAT.contains(&lat) {
        Ok(())
    } else {
        Err(format!("latitude {lat} is not within -90..90"))
    }
}

/// Checks a service radius against [`RADIUS_M`].
///
/// # Errors
/// The bound as text (`100 to 100000 metres`), for the caller to put beside the field's name.
pub fn check_radius(r: f64) -> Result<(), String> {
    if r.is_finite() && RADIUS_M.contains(&r) {
        Ok(())
    } else {
        Err(format!("{} to {} metres", RADIUS_M.start(), RADIUS_M.end()))
    }
}

/// Words read as yes and as no in a yes/no field (any case): true/false, t/f, yes/no, y/n,
/// 1/0, 是/否.
const YES: &[&str] = &["true", "t", "yes", "y", "1", "是"];
const NO: &[&str] = &["false", "f", "no", "n", "0", "否"];

/// Reads a yes/no field: `None` when empty, else one of the words above (surrounding spaces
/// ignored, any case).
///
/// # Errors
/// The reason, naming the column and the value.
pub fn parse_flag(col: &str, v: &str) -> Result<Option<bool>, String> {
    let s = v.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if YES.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Ok(Some(true))
    } else if NO.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Ok(Some(false))
    } else {
        Err(format!("{col} {s:?} is not a yes/no value (true/false, 1/0, yes/no, 是/否)"))
    }
}

/// Parses a calendar date `YYYY-MM-DD` (years 1900–2200).
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_date(s: &str) -> Result<(i32, u32, u32), String> {
    let bad = || format!("date {s:?} is not a calendar date YYYY-MM-DD");
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1900..=2200).contains(&y) || !(1..=12).contains(&m) {
        return Err(bad());
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if d == 0 || d > days {
        return Err(bad());
    }
    Ok((y as i32, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_at_and_beyond_the_edges() {
        assert!(is_lon_lat(180.0, 90.0) && is_lon_lat(-180.0, -90.0) && is_lon_lat(0.0, 0.0));
        assert!(!is_lon_lat(180.000_001, 0.0) && !is_lon_lat(0.0, -90.5));
        assert!(!is_lon_lat(f64::NAN, 0.0) && !is_lon_lat(0.0, f64::INFINITY));
        assert_eq!(check_lon_lat(200.0, 0.0).unwrap_err(), "longitude 200 is not within -180..180");
        assert_eq!(check_lon_lat(0.0, 91.0).unwrap_err(), "latitude 91 is not within -90..90");
        assert!(check_lon_lat(103.8, 36.06).is_ok());
    }

    #[test]
    fn radii_inside_the_policy_only() {
        assert!(check_radius(100.0).is_ok() && check_radius(100_000.0).is_ok());
        for bad in [99.9, 100_000.1, 0.0, -5.0, f64::NAN, f64::INFINITY] {
            assert_eq!(check_radius(bad).unwrap_err(), "100 to 100000 metres", "{bad}");
        }
    }

    #[test]
    fn yes_and_no_in_every_accepted_spelling() {
        for w in ["true", "TRUE", "t", "Yes", "y", "1", "是", " yes "] {
            assert_eq!(parse_flag("mobile", w), Ok(Some(true)), "{w}");
        }
        for w in ["false", "F", "no", "N", "0", "否"] {
            assert_eq!(parse_flag("mobile", w), Ok(Some(false)), "{w}");
        }
        assert_eq!(parse_flag("mobile", "  "), Ok(None));
        assert!(parse_flag("mobile", "maybe").unwrap_err().contains("mobile \"maybe\""));
    }
}
