//! Column tables of one data folder, and the data set that holds them.

use std::sync::Arc;

use geo::MultiPolygon;
use serde::{Deserialize, Serialize};

use super::{Divisions, Level, OptStrColumn, Standard, StrColumn, UnitIdx, NO_UNIT};

/// The boundary of one admin unit.
#[derive(Debug, Clone)]
pub struct AdminArea {
    /// The unit it bounds.
    pub unit: UnitIdx,
    /// WGS84 lon/lat polygons.
    pub geometry: MultiPolygon<f64>,
    /// True when derived (e.g. generated Voronoi cells), not surveyed.
    pub derived: bool,
}

/// Boundaries of admin units, at any of the levels (not every unit needs one).
#[derive(Debug, Clone, Default)]
pub struct Boundaries {
    /// The areas, in input order.
    pub areas: Vec<AdminArea>,
}

impl Boundaries {
    /// The areas of one level.
    pub fn at_level<'a>(&'a self, divisions: &'a Divisions, level: Level) -> impl Iterator<Item = &'a AdminArea> {
        self.areas.iter().filter(move |a| divisions.get(a.unit).level == level)
    }
}

/// Service stations, as columns indexed by [`super::StationIdx`].
///
/// Stations are never removed from the columns: closing one clears `active`, so that indexes
/// held elsewhere (assignments, history) stay valid.
#[derive(Debug, Clone, Default)]
pub struct Stations {
    /// The station's own id from its input.
    pub id: Vec<String>,
    /// Display name.
    pub name: Vec<String>,
    /// Level of the station (centre or station of the five-level network).
    pub level: Vec<Level>,
    /// The admin unit it serves.
    pub unit: Vec<UnitIdx>,
    /// WGS84 longitude, degrees.
    pub lon: Vec<f64>,
    /// WGS84 latitude, degrees.
    pub lat: Vec<f64>,
    /// A "demonstration" (示范) station.
    pub demonstration: Vec<bool>,
    /// A mobile station (e.g. on horseback in pastoral counties).
    pub mobile: Vec<bool>,
    /// Own service radius in metres, overriding the standard.
    pub radius_m: Vec<Option<f64>>,
    /// False once the station is closed.
    pub active: Vec<bool>,
}

/// One station as a row, for building [`Stations`].
#[derive(Debug, Clone, PartialEq)]
pub struct StationRow {
    /// Own id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Served admin unit.
    pub unit: UnitIdx,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Demonstration station.
    pub demonstration: bool,
    /// Mobile station.
    pub mobile: bool,
    /// Own radius, metres.
    pub radius_m: Option<f64>,
}

impl Stations {
    /// Number of stations (closed ones included).
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Appends a station and returns its index.
    pub fn push(&mut self, r: StationRow) -> u32 {
        let i = self.id.len() as u32;
        self.id.push(r.id);
        self.name.push(r.name);
        self.level.push(r.level);
        self.unit.push(r.unit);
        self.lon.push(r.lon);
        self.lat.push(r.lat);
        self.demonstration.push(r.demonstration);
        self.mobile.push(r.mobile);
        self.radius_m.push(r.radius_m);
        self.active.push(true);
        i
    }

    /// The station at `i` as a row.
    pub fn row(&self, i: u32) -> StationRow {
        let i = i as usize;
        StationRow {
            id: self.id[i].clone(),
            name: self.name[i].clone(),
            level: self.level[i],
            unit: self.unit[i],
            lon: self.lon[i],
            lat: self.lat[i],
            demonstration: self.demonstration[i],
            mobile: self.mobile[i],
            radius_m: self.radius_m[i],
        }
    }

    /// The service radius of station `i` under `standard`, metres.
    pub fn radius_of(&self, i: u32, standard: &Standard) -> f64 {
        let i = i as usize;
        standard.station_radius_m(self.level[i], self.mobile[i], self.radius_m[i])
    }
}

/// Veteran households, as columns indexed by [`super::HouseholdIdx`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Households {
    /// The household's own id from its input.
    pub id: StrColumn,
    /// WGS84 longitude, degrees.
    pub lon: Vec<f64>,
    /// WGS84 latitude, degrees.
    pub lat: Vec<f64>,
    /// Number of veterans in the household.
    pub veterans: Vec<u32>,
    /// The admin unit the input says it belongs to, if given.
    pub code: UnitColumn,
    /// In hardship (困难).
    pub difficulty: Vec<bool>,
    /// A martyr's family (烈属).
    pub martyr_family: Vec<bool>,
    /// Name of the household head, if given (personal data).
    pub name: OptStrColumn,
    /// Address, if given (personal data).
    pub address: OptStrColumn,
}

/// A column of optional admin units, four bytes a row ([`NO_UNIT`] for none, which is never a
/// unit's index): a `Vec<Option<UnitIdx>>` takes eight (360 MB at 45 million households).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitColumn(Vec<UnitIdx>);

impl UnitColumn {
    /// An empty column with room for `n` rows.
    pub fn with_capacity(n: usize) -> UnitColumn {
        UnitColumn(Vec::with_capacity(n))
    }

    /// Appends a row.
    pub fn push(&mut self, unit: Option<UnitIdx>) {
        debug_assert!(unit != Some(NO_UNIT), "NO_UNIT is not a unit");
        self.0.push(unit.unwrap_or(NO_UNIT));
    }

    /// Row `i`'s unit.
    ///
    /// # Panics
    /// `i` out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<UnitIdx> {
        let u = self.0[i];
        (u != NO_UNIT).then_some(u)
    }

    /// Sets row `i`'s unit.
    ///
    /// # Panics
    /// `i` out of range.
    pub fn set(&mut self, i: usize, unit: Option<UnitIdx>) {
        debug_assert!(unit != Some(NO_UNIT), "NO_UNIT is not a unit");
        self.0[i] = unit.unwrap_or(NO_UNIT);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rows' units in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<UnitIdx>> + '_ {
        self.0.iter().map(|&u| (u != NO_UNIT).then_some(u))
    }

    /// The rows as stored: each unit's index, [`NO_UNIT`] for none.
    pub fn raw(&self) -> &[UnitIdx] {
        &self.0
    }

    /// Gives back the room reserved beyond the rows held.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl FromIterator<Option<UnitIdx>> for UnitColumn {
    fn from_iter<I: IntoIterator<Item = Option<UnitIdx>>>(iter: I) -> Self {
        let mut c = UnitColumn::default();
        for u in iter {
            c.push(u);
        }
        c
    }
}

/// One household as a row, for building [`Households`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HouseholdRow {
    /// Own id.
    pub id: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Veterans in the household.
    pub veterans: u32,
    /// Given admin unit.
    pub code: Option<UnitIdx>,
    /// Hardship.
    pub difficulty: bool,
    /// Martyr's family.
    pub martyr_family: bool,
    /// Name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
}

impl Households {
    /// Number of households.
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Appends a household and returns its index.
    pub fn push(&mut self, mut r: HouseholdRow) -> u32 {
        let id = std::mem::take(&mut r.id);
        self.push_with_id(&id, r)
    }

    /// [`Households::push`] of `r` with the id `id` (`r.id` is not read): a reader that has
    /// the id's text at hand pushes it without making a `String` of it.
    pub fn push_with_id(&mut self, id: &str, r: HouseholdRow) -> u32 {
        let i = self.id.len() as u32;
        self.id.push(id);
        self.lon.push(r.lon);
        self.lat.push(r.lat);
        self.veterans.push(r.veterans);
        self.code.push(r.code);
        self.difficulty.push(r.difficulty);
        self.martyr_family.push(r.martyr_family);
        self.name.push(r.name.as_deref());
        self.address.push(r.address.as_deref());
        i
    }

    /// Gives back the room the columns reserved beyond the rows held (a column grown a row at
    /// a time holds up to twice its rows).
    pub fn shrink_to_fit(&mut self) {
        self.id.shrink_to_fit();
        self.lon.shrink_to_fit();
        self.lat.shrink_to_fit();
        self.veterans.shrink_to_fit();
        self.code.shrink_to_fit();
        self.difficulty.shrink_to_fit();
        self.martyr_family.shrink_to_fit();
        self.name.shrink_to_fit();
        self.address.shrink_to_fit();
    }

    /// Total veterans.
    pub fn total_veterans(&self) -> u64 {
        self.veterans.iter().map(|&v| u64::from(v)).sum()
    }
}

/// Service grids (网格), each with its grid worker.
#[derive(Debug, Clone, Default)]
pub struct Grids {
    /// The grid's own id.
    pub id: Vec<String>,
    /// Name of the grid worker (网格员).
    pub worker: Vec<String>,
    /// The admin unit the grid belongs to, if given.
    pub unit: Vec<Option<UnitIdx>>,
    /// WGS84 polygons.
    pub geometry: Vec<MultiPolygon<f64>>,
}

impl Grids {
    /// Number of grids.
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

/// An input row or feature that was set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// File name (within the data folder).
    pub file: String,
    /// 1-based line (CSV, counting the header as line 1), feature number (GeoJSON, 1-based)
    /// or row (Parquet, 1-based); 0 for the file as a whole.
    pub row: usize,
    /// The record's own id, where one could be read.
    pub id: String,
    /// Why it was set aside.
    pub reason: String,
}

/// Everything read from one data folder, converted to WGS84.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The admin units (shared, as the boundaries: the planner's data set and a copy of an
    /// engine hold the same units, never changed once read).
    pub divisions: Arc<Divisions>,
    /// Their boundaries (shared: the planner's data set and a copy of an engine hold the
    /// same polygons, never changed once read).
    pub boundaries: Arc<Boundaries>,
    /// Stations.
    pub stations: Stations,
    /// Households.
    pub households: Households,
    /// Grids (shared, as the boundaries).
    pub grids: Arc<Grids>,
    /// The coverage standard in force.
    pub standard: Standard,
    /// The disclosure policy in force (`[privacy]` of `gridcover.toml`).
    pub privacy: crate::privacy::Policy,
    /// The windows of effective coverage in force (`[service]` of `gridcover.toml`).
    pub service: crate::analysis::ServiceConfig,
    /// Rows and features set aside while reading.
    pub rejects: Vec<Reject>,
    /// Things about the input worth telling (reconciled codes, units without geometry).
    pub notes: Vec<String>,
}

impl Dataset {
    /// Replaces the boundaries' and grids' polygons with empty ones, keeping their rows (units,
    /// ids, workers), for a caller that has indexed them and needs them no more.
    pub fn drop_polygons(&mut self) {
        for a in &mut Arc::make_mut(&mut self.boundaries).areas {
            a.geometry = MultiPolygon::new(Vec::new());
        }
        for g in &mut Arc::make_mut(&mut self.grids).geometry {
            *g = MultiPolygon::new(Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_column_gives_back_the_units_pushed_and_set() {
        let given = [Some(0), None, Some(7), Some(NO_UNIT - 1), None];
        let mut c = UnitColumn::with_capacity(2);
        for &u in &given {
            c.push(u);
        }
        assert_eq!((c.len(), c.is_empty()), (5, false));
        assert_eq!((0..5).map(|i| c.get(i)).collect::<Vec<_>>(), given);
        assert_eq!(c.iter().collect::<Vec<_>>(), given);
        assert_eq!(c.raw(), &[0, NO_UNIT, 7, NO_UNIT - 1, NO_UNIT]);
        assert_eq!(given.iter().copied().collect::<UnitColumn>(), c);
        c.set(1, Some(3));
        c.set(2, None);
        assert_eq!(c.iter().collect::<Vec<_>>(), [Some(0), Some(3), None, Some(NO_UNIT - 1), None]);
        assert!(UnitColumn::default().is_empty());
        assert_eq!(std::mem::size_of_val(c.raw()), 4 * 5);
    }
}
