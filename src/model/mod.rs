//! The in-memory data model: admin units, their boundaries, stations, households and grids.
//!
//! Everything here is plain data in WGS84 longitude/latitude degrees (RFC 7946 order). Large
//! tables are stored as columns (structs of vectors) indexed by dense `u32` ids, so that a
//! national data set (tens of millions of households) stays compact and cache friendly, and so
//! that analysis results can be stored beside them as further columns.

mod bbox;
mod dataset;
mod divisions;
mod level;
pub mod rules;
mod scope;
pub mod service;
mod standard;
mod strings;

pub use bbox::Bbox;
pub use dataset::{
    AdminArea, Boundaries, Dataset, Grids, HouseholdRow, Households, Reject, StationRow, Stations, UnitColumn,
};
pub use divisions::{Division, DivisionError, Divisions, UnitIdx, NO_UNIT};
pub use level::{Level, UnknownLevel};
pub use scope::Scope;
pub use service::{ContactKind, Day, NeedCategory, NeedSpan, NeedStatus, ServiceRecords};
pub use standard::Standard;
pub use strings::{OptStrColumn, StrColumn};

/// Dense index of a station in [`Stations`].
pub type StationIdx = u32;
/// Dense index of a household in [`Households`].
pub type HouseholdIdx = u32;
/// Dense index of a grid in [`Grids`].
pub type GridIdx = u32;
/// Marker for "none" in compact `u32` columns of stations and grids.
pub const NONE: u32 = u32::MAX;
