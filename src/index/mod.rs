//! Spatial indexes (pure computation, no I/O).
//!
//! - [`polygon`]: exact, fast point-in-polygon for a layer of polygons (admin units, grids).
//! - [`stations`]: stations per level on the unit sphere: nearest station, coverage tests.
//! - [`sphere`]: unit-sphere coordinates and ground distances in metres.
//! - [`AdminIndex`]: the finest admin unit whose boundary contains a point.

pub mod polygon;
pub mod sphere;
pub mod stations;

pub use polygon::{PolygonIndex, PreparedPolygon};
pub use stations::StationIndex;

use crate::model::{Boundaries, Divisions, Level, UnitIdx};

/// Point-in-polygon over the admin boundaries of every level that has them.
#[derive(Debug, Clone)]
pub struct AdminIndex {
    /// One layer per level, finest first is searched first.
    levels: [PolygonIndex; 5],
}

impl AdminIndex {
    /// Indexes every boundary by its unit's level.
    pub fn new(divisions: &Divisions, boundaries: &Boundaries) -> Self {
        let levels =
            Level::ALL.map(|l| PolygonIndex::new(boundaries.at_level(divisions, l).map(|a| (a.unit, &a.geometry))));
        AdminIndex { levels }
    }

    /// The finest unit whose boundary contains the point: a village if village boundaries
    /// exist and one contains it, else a township, and so on up to the province.
    #[inline]
    pub fn locate(&self, lon: f64, lat: f64) -> Option<UnitIdx> {
        self.levels.iter().rev().find_map(|layer| layer.locate(lon, lat))
    }

    /// The unit of one level whose boundary contains the point.
    pub fn locate_at(&self, level: Level, lon: f64, lat: f64) -> Option<UnitIdx> {
        self.levels[level.index()].locate(lon, lat)
    }

    /// Number of boundaries at a level.
    pub fn count(&self, level: Level) -> usize {
        self.levels[level.index()].len()
    }
}
