//! The coverage standard: how far a station's service reaches.

use serde::{Deserialize, Serialize};

use super::Level;

/// Service radii and thresholds used by the analyses.
///
/// # Units
/// All distances are ground metres on the sphere of mean Earth radius.
///
/// Defaults (documented in the README, overridable in `gridcover.toml` under `[standard]`):
/// province 100 km, city 50 km, county 20 km, township 5 km, village 2 km; mobile (horseback)
/// stations 30 km; a grid worker should serve at most 300 households; uncovered households less
/// than 2 km apart belong to the same gap area; a village or community with 300 or more veterans
/// should have a station of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Standard {
    /// Service radius of a province-level centre, metres.
    pub province_radius_m: f64,
    /// Service radius of a city-level centre, metres.
    pub city_radius_m: f64,
    /// Service radius of a county-level centre, metres.
    pub county_radius_m: f64,
    /// Service radius of a township station, metres.
    pub township_radius_m: f64,
    /// Service radius of a village or community station, metres.
    pub village_radius_m: f64,
    /// Service radius of a mobile (e.g. horseback) station of any level, metres.
    pub mobile_radius_m: f64,
    /// Households one grid worker should serve at most.
    pub grid_max_households: u32,
    /// Uncovered households closer than this join one gap area, metres.
    pub gap_link_m: f64,
    /// A village or community with at least this many veterans must have its own station.
    pub village_station_veterans: u32,
}

impl Default for Standard {
    fn default() -> Self {
        Standard {
            province_radius_m: 100_000.0,
            city_radius_m: 50_000.0,
            county_radius_m: 20_000.0,
            township_radius_m: 5_000.0,
            village_radius_m: 2_000.0,
            mobile_radius_m: 30_000.0,
            grid_max_households: 300,
            gap_link_m: 2_000.0,
            village_station_veterans: 300,
        }
    }
}

impl Standard {
    /// The standard radius of a fixed station of `level`, metres.
    pub fn radius_m(&self, level: Level) -> f64 {
        match level {
            Level::Province => self.province_radius_m,
            Level::City => self.city_radius_m,
            Level::County => self.county_radius_m,
            Level::Township => self.township_radius_m,
            Level::Village => self.village_radius_m,
        }
    }

    /// The radius of a station: its own override, else the mobile radius for a mobile
    /// station, else the standard radius of its level.
    pub fn station_radius_m(&self, level: Level, mobile: bool, own: Option<f64>) -> f64 {
        own.unwrap_or(if mobile { self.mobile_radius_m } else { self.radius_m(level) })
    }

    /// Checks every distance is finite and positive.
    ///
    /// # Errors
    /// Names the first field that is not.
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            ("province_radius_m", self.province_radius_m),
            ("city_radius_m", self.city_radius_m),
            ("county_radius_m", self.county_radius_m),
            ("township_radius_m", self.township_radius_m),
            ("village_radius_m", self.village_radius_m),
            ("mobile_radius_m", self.mobile_radius_m),
            ("gap_link_m", self.gap_link_m),
        ];
        for (name, v) in fields {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number of metres, got {v}"));
            }
        }
        if self.grid_max_households == 0 {
            return Err("grid_max_households must be at least 1".into());
        }
        Ok(())
    }
}
