//! # gridcover
//!
//! How a network of service stations covers the people it serves, and where to put the next
//! station. Built for the five-level veterans' service network of a Chinese province
//! (province → city → county → township → village/community) and its service grids (网格).
//!
//! The pipeline, stage by stage (each a module; pure computation is kept apart from I/O):
//!
//! 1. [`ingest`] (I/O): reads a data folder — boundaries, divisions, stations, households,
//!    grids, `gridcover.toml` — converts every coordinate to WGS84 through [`crs`], and sets
//!    bad rows aside as [`model::Reject`]s. Produces a [`model::Dataset`]. [`model`] (pure) is
//!    the data itself and, in [`model::rules`], the one definition of each input rule
//!    (positions, radii, yes/no fields). [`generate`] (pure, with its writer) makes a complete
//!    synthetic data folder from real boundaries and divisions.
//! 2. [`index`] (pure): spatial indexes — admin polygons and grids for point-in-polygon,
//!    stations and households on the unit sphere for nearest and within-radius queries.
//! 3. [`analysis`] (pure): assigns every household to its admin units, grid and nearest
//!    station of each level; measures coverage of every unit at all five levels; clusters the
//!    uncovered into gap areas; grid-worker workload; the live engine
//!    ([`analysis::Live`]) that keeps every figure up to date as stations open, move and close,
//!    and what-if scenarios. [`design`] (pure) partitions a unit's households into service grids.
//! 4. [`plan`] (pure): station siting — maximal covering, set covering, p-median and the
//!    capacitated variant, each with a bound and its gap.
//!    [`privacy`] (pure) is the disclosure policy: what the roles without household access
//!    may learn of households, applied by [`serve`] to every response.
//! 5. [`output`] (I/O): writes the analysis, plans, scenarios and grid designs as Parquet, CSV,
//!    GeoJSON and JSON (each file atomically), and the readable report. [`store`] (I/O) keeps
//!    users, household records, station edits, history and the audit log durable in SQLite;
//!    [`serve`] (I/O) serves it all over HTTP (OGC API - Features, vector tiles, planning and
//!    edits) to the viewer in `web/`.
//!
//! [`cli`] (I/O) is the command line on top: one file per command, the bundled data folder,
//! progress, and the one mapping of errors to exit codes. Nothing below it uses clap,
//! indicatif or anyhow.
//!
//! # Coordinates and units
//! Longitude/latitude in WGS84 degrees everywhere inside and on output (RFC 7946 axis
//! order). Distances are ground metres on a sphere of the mean Earth radius
//! ([`index::sphere::EARTH_RADIUS_M`]), never degrees.

#![warn(missing_docs)]

pub mod analysis;
pub mod cli;
pub mod crs;
pub mod design;
pub mod generate;
pub mod index;
pub mod ingest;
pub mod model;
pub mod output;
pub mod plan;
pub mod privacy;
pub mod serve;
pub mod store;
