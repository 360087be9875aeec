//! Reading a data folder (I/O) into a [`Dataset`].
//!
//! A data folder holds:
//!
//! | file | content |
//! |---|---|
//! | `divisions.csv` | `code,name,level,parent_code`: every admin unit of the five levels |
//! | `boundaries.geojson` | Polygon/MultiPolygon features with `code`, `name`, `level`, `parent` (optional `derived`) |
//! | `stations.csv`, `.geojson` or `.parquet` | `id,name,level,code,lon,lat,demonstration,mobile`, optional `radius_m` |
//! | `households.csv` or `.parquet` | `id,lon,lat,veterans`, optional `code,difficulty,martyr_family,name,address` |
//! | `grids.geojson` (optional) | Polygon/MultiPolygon features with `id`, `worker`, optional `code` |
//! | `gridcover.toml` (optional) | `[crs]` of each input file and the `[standard]` |
//!
//! Every coordinate is converted to WGS84 with the CRS the config gives the file (see
//! [`crate::crs`]). A row or feature that cannot be used is set aside as a [`Reject`](crate::model::Reject) naming the
//! file, the row (CSV: 1-based line, the header being line 1; GeoJSON: 1-based feature number;
//! Parquet: 1-based row) and the reason; nothing is dropped silently. Only what makes going on
//! impossible is an [`IngestError`].
//!
//! # Checks on points (stations, households)
//! Numbers must parse and be finite; longitude must lie in [-180, 180] and latitude in
//! [-90, 90] after conversion. When the boundaries are known, a point must also fall within
//! their bounding box expanded by 1°; a point outside it whose swapped coordinates fall inside
//! is rejected with a reason saying latitude and longitude look swapped (it is not fixed).
//! Ids must be non-empty and unique (a repeated id rejects the later row and names the first);
//! admin codes must be known divisions.

mod boundaries;
pub mod cache;
mod divisions;
mod geom;
mod grids;
mod points;
pub mod service;
pub mod sites;
mod table;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::crs::{Crs, CrsError};
use crate::model::{Bbox, Dataset, Scope, Standard};

pub use boundaries::read_boundaries;
pub use divisions::read_divisions;
pub use grids::read_grids;
pub use points::{read_households, read_households_with, read_stations};

/// Why a data folder could not be read at all.
///
/// Bad rows are not errors: they become [`Reject`](crate::model::Reject)s. Each variant names
/// the file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A file could not be opened or read (missing, unreadable, an I/O error part way).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// None of the accepted files for an input exists in the folder.
    #[error("{} has no {what} (expected one of: {})", dir.display(), expected.join(", "))]
    MissingInput {
        /// The data folder.
        dir: PathBuf,
        /// What is missing (`stations`, `households`).
        what: &'static str,
        /// The file names looked for.
        expected: Vec<String>,
    },
    /// More than one of the accepted files for an input exists; which one to use is unclear.
    #[error("{} has more than one {what} file: {}", dir.display(), found.join(", "))]
    AmbiguousInput {
        /// The data folder.
        dir: PathBuf,
        /// What is given twice (`stations`, `households`).
        what: &'static str,
        /// The files found.
        found: Vec<String>,
    },
    /// The file is not a CSV file that can be read (bad header, I/O error inside the parser).
    #[error("{} is not a readable CSV file: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV parser's message.
        message: String,
    },
    /// The file is not an Excel workbook (`.xlsx`) that can be read, or has no sheet.
    #[error("{} is not a readable Excel workbook: {message}", path.display())]
    Xlsx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file is not GeoJSON, or not a FeatureCollection.
    #[error("{} is not a GeoJSON FeatureCollection: {message}", path.display())]
    GeoJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file is not a Parquet file polars can read.
    #[error("{} is not a readable Parquet file: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Polars' message.
        message: String,
    },
    /// A required column (or GeoJSON property of every feature) is missing.
    #[error("{}: required column `{column}` is missing (columns found: {})", path.display(), found.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column required.
        column: String,
        /// The columns the file has.
        found: Vec<String>,
    },
    /// A Parquet column has a type that cannot hold what the column means.
    #[error("{}: column `{column}` has type {dtype}, which cannot be read as {expected}", path.display())]
    ColumnType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its type in the file.
        dtype: String,
        /// What was expected (e.g. `a number`).
        expected: &'static str,
    },
    /// `gridcover.toml` is not valid TOML, has unknown keys, or a bad standard.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CRS in the config cannot be used (e.g. an EPSG code PROJ does not know).
    #[error("{}: {source}", path.display())]
    Crs {
        /// The file whose CRS it is (or the config).
        path: PathBuf,
        /// The CRS error.
        source: CrsError,
    },
    /// The division table has no province, so nothing can be placed in it.
    #[error("{}: no province among the divisions (a row with level `province` is required)", path.display())]
    NoProvince {
        /// The division file.
        path: PathBuf,
    },
}

/// The CRS of each input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputCrs {
    /// CRS of `boundaries.geojson`.
    pub boundaries: Crs,
    /// CRS of the stations file.
    pub stations: Crs,
    /// CRS of the households file.
    pub households: Crs,
    /// CRS of `grids.geojson`.
    pub grids: Crs,
}

/// The settings of a data folder, from `gridcover.toml`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// CRS of each input file (WGS84 where not given).
    pub crs: InputCrs,
    /// The coverage standard (defaults where not given).
    pub standard: Standard,
    /// The disclosure policy's settings.
    pub privacy: PrivacyConfig,
    /// The windows of effective coverage (`contact_days`, `hardship_days`).
    pub service: crate::analysis::ServiceConfig,
}

/// `[privacy]` of `gridcover.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Fewest households in a group whose figures the roles without household access see
    /// (default 5, at least [`crate::privacy::MIN_K`]).
    pub min_households: u32,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig { min_households: crate::privacy::Policy::default().min_households }
    }
}

impl Config {
    /// The disclosure policy of these settings.
    ///
    /// # Errors
    /// `min_households` below [`crate::privacy::MIN_K`].
    pub fn policy(&self) -> Result<crate::privacy::Policy, String> {
        crate::privacy::Policy::with_min_households(self.privacy.min_households)
    }
}

/// Name of the config file in a data folder.
pub const CONFIG_FILE: &str = "gridcover.toml";

/// Reads `gridcover.toml` from `dir`; the defaults (all WGS84, default standard) when there is
/// none.
///
/// ```toml
/// [crs]
/// boundaries = "gcj02"
/// households = "EPSG:4527"
///
/// [standard]
/// village_radius_m = 1500
///
/// [service]
/// contact_days = 90
/// hardship_days = 30
/// ```
///
/// # Errors
/// [`IngestError::Io`] when the file exists but cannot be read, [`IngestError::Config`] when it
/// is not valid TOML, has unknown keys or CRS names, or its standard fails
/// [`Standard::validate`].
pub fn read_config(dir: &Path) -> Result<Config, IngestError> {
    let path = dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(source) => return Err(IngestError::Io { path, source }),
    };
    let config: Config =
        toml::from_str(&text).map_err(|e| IngestError::Config { path: path.clone(), message: e.to_string() })?;
    config
        .standard
        .validate()
        .map_err(|m| IngestError::Config { path: path.clone(), message: format!("[standard]: {m}") })?;
    config.policy().map_err(|m| IngestError::Config { path: path.clone(), message: m })?;
    config.service.validate().map_err(|m| IngestError::Config { path: path.clone(), message: m })?;
    Ok(config)
}

/// File name of `path`, for [`Reject::file`](crate::model::Reject::file).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// What a data folder is read with beyond what every analysis needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// The households' names and addresses: personal data that only the store and the server
    /// show (to grid workers, of their own households); no analysis, plan or file output uses
    /// them. Left out, a national folder's households take about 60 bytes less each.
    pub names_and_addresses: bool,
    /// The boundaries' geometries. Left out, [`Dataset::boundaries`] is empty, but the
    /// boundaries are still read and matched to the divisions, with the same rejects and notes,
    /// and points are still checked against their extent: what the store's import needs,
    /// which keeps no boundary (a national folder's are several hundred MB decoded).
    pub boundary_geometry: bool,
}

impl ReadOptions {
    /// Everything.
    pub const ALL: ReadOptions = ReadOptions { names_and_addresses: true, boundary_geometry: true };
    /// What the analyses, plans and their files need: no names or addresses.
    pub const ANALYSIS: ReadOptions = ReadOptions { names_and_addresses: false, boundary_geometry: true };
    /// What the store's import keeps ([`crate::store::Store::import`]): everything but the
    /// boundaries' geometries.
    pub const IMPORT: ReadOptions = ReadOptions { names_and_addresses: true, boundary_geometry: false };
}

/// Reads a whole data folder: [`read_data_folder_with`] and [`ReadOptions::ALL`].
///
/// # Errors
/// As [`read_data_folder_with`].
pub fn read_data_folder(dir: &Path) -> Result<Dataset, IngestError> {
    read_data_folder_with(dir, ReadOptions::ALL)
}

/// Reads a whole data folder: config, divisions, boundaries, stations, households and grids
/// (grids are optional; the others are required).
///
/// Rejects from every file are collected in [`Dataset::rejects`], and notes (reconciled codes,
/// units without a boundary) in [`Dataset::notes`].
///
/// # Errors
/// The first [`IngestError`] of any of the readers.
pub fn read_data_folder_with(dir: &Path, opts: ReadOptions) -> Result<Dataset, IngestError> {
    read_folder(dir, opts, None)
}

/// What a read limited to one unit ([`read_data_folder_within`]) kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopedRead {
    /// Boundaries kept.
    pub boundaries: usize,
    /// Households kept.
    pub households: usize,
    /// Grids kept.
    pub grids: usize,
}

/// Reads what of a data folder a question limited to the unit `code` (and the units below it)
/// needs — a plan `within` it ([`crate::plan`]) —, as [`Scope`] decides:
/// every division and station, and the boundaries, households and grids that can be in it or
/// decide what is in it. The plan made on it is the plan made on the whole folder.
///
/// The divisions, boundaries and grids are checked whole, with the same rejects and notes as
/// [`read_data_folder`]; a household row out of the scope is read only as far as its position
/// and code (an unreadable position or code is still a reject; its other cells are not read).
/// Geometries out of the scope are not decoded from the [`cache`]. A code that names no
/// division keeps nothing but the divisions and stations.
///
/// # Errors
/// As [`read_data_folder`].
pub fn read_data_folder_within(
    dir: &Path,
    code: &str,
    opts: ReadOptions,
) -> Result<(Dataset, ScopedRead), IngestError> {
    let ds = read_folder(dir, opts, Some(code.trim()))?;
    let read =
        ScopedRead { boundaries: ds.boundaries.areas.len(), households: ds.households.len(), grids: ds.grids.len() };
    Ok((ds, read))
}

/// [`read_data_folder_with`], or [`read_data_folder_within`] the unit `within`.
fn read_folder(dir: &Path, opts: ReadOptions, within: Option<&str>) -> Result<Dataset, IngestError> {
    let config = read_config(dir)?;
    let mut rejects = Vec::new();
    let mut notes = Vec::new();
    // The divisions and the boundaries' features are read at the same time; the boundaries are
    // matched to the divisions after.
    let bpath = dir.join("boundaries.geojson");
    let (divisions, features) = rayon::join(
        || read_divisions(&dir.join("divisions.csv"), &mut rejects),
        || boundaries::boundary_features(&bpath, &config.crs.boundaries),
    );
    let (divisions, features) = (divisions?, features?);
    let heads = boundaries::match_boundaries(&bpath, features, &divisions, &mut rejects, &mut notes);
    // The extent of all boundaries, whichever are kept: points are checked against it.
    let extent = heads.extent();
    let mut scope = within.map(|code| Scope::new(&divisions, divisions.find(code), heads.units()));
    // Without their geometries, the boundaries (the cache's bytes) are let go before the
    // households are read.
    let heads = (opts.boundary_geometry || scope.is_some()).then_some(heads);
    let keep_scope = |lon: f64, lat: f64, code: Option<crate::model::UnitIdx>| {
        scope.as_ref().is_none_or(|s| s.keeps_household(&divisions, lon, lat, code))
    };
    let keep: Option<points::KeepHousehold<'_>> = scope.is_some().then_some(&keep_scope);
    // Stations, households and grids are read at the same time (households take longest); each
    // keeps its own rejects, appended in this order as if read one after the other.
    let grids_path = dir.join("grids.geojson");
    let (mut st_rejects, mut hh_rejects, mut gr_rejects) = (Vec::new(), Vec::new(), Vec::new());
    let (stations, (households, grids)) = rayon::join(
        || read_stations(dir, &config.crs.stations, &divisions, extent.as_ref(), &mut st_rejects),
        || {
            rayon::join(
                || {
                    points::read_households_where(
                        dir,
                        &config.crs.households,
                        &divisions,
                        extent.as_ref(),
                        opts,
                        &mut hh_rejects,
                        keep,
                    )
                },
                || {
                    if grids_path.exists() {
                        grids::read_grid_heads(&grids_path, &config.crs.grids, &divisions, &mut gr_rejects).map(Some)
                    } else {
                        Ok(None)
                    }
                },
            )
        },
    );
    // The first error in file order, as when read in turn.
    let (stations, households, grids) = (stations?, households?, grids?);
    rejects.append(&mut st_rejects);
    rejects.append(&mut hh_rejects);
    rejects.append(&mut gr_rejects);
    let select = |heads: Option<boundaries::BoundaryHeads>,
                  keep: &dyn Fn(crate::model::UnitIdx, Option<&Bbox>) -> bool| {
        heads.filter(|_| opts.boundary_geometry).map(|h| h.select(keep)).unwrap_or_default()
    };
    let (boundaries, grids) = match scope.as_mut() {
        None => (select(heads, &|_, _| true), grids.map(|g| g.select(|_, _| true)).unwrap_or_default()),
        Some(s) => {
            // The boundaries that may contain a household kept by its code alone, or a grid
            // kept (its candidate site), decide where those lie: they are kept too.
            let grids = grids.map(|g| g.select(|u, b| s.keeps_grid(&divisions, u, b))).unwrap_or_default();
            let outside = (0..households.len())
                .filter(|&h| !s.in_area(households.lon[h], households.lat[h]))
                .map(|h| Bbox::new(households.lon[h], households.lat[h], households.lon[h], households.lat[h]));
            let grid_boxes = grids.geometry.iter().filter_map(cache::bbox_of);
            let extra: Vec<Bbox> = outside.chain(grid_boxes).collect();
            s.add_extra(extra);
            (select(heads, &|u, b| s.keeps_boundary(&divisions, u, b)), grids)
        }
    };
    let privacy = config.policy().expect("checked by read_config");
    Ok(Dataset {
        divisions: divisions.into(),
        boundaries: boundaries.into(),
        stations,
        households,
        grids: grids.into(),
        standard: config.standard,
        privacy,
        service: config.service,
        rejects,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let c = read_config(dir.path()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.crs.boundaries, Crs::Wgs84);
    }

    #[test]
    fn config_reads_crs_and_standard() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[crs]\nboundaries = \"gcj02\"\nhouseholds = \"EPSG:4527\"\n[standard]\nvillage_radius_m = 1500\n",
        )
        .unwrap();
        let c = read_config(dir.path()).unwrap();
        assert_eq!(c.crs.boundaries, Crs::Gcj02);
        assert_eq!(c.crs.households, Crs::Epsg(4527));
        assert_eq!(c.crs.stations, Crs::Wgs84);
        assert_eq!(c.standard.village_radius_m, 1500.0);
        assert_eq!(c.standard.city_radius_m, Standard::default().city_radius_m);
        assert_eq!(c.policy().unwrap().min_households, 5);
        assert_eq!(c.service, crate::analysis::ServiceConfig::default());
        std::fs::write(dir.path().join(CONFIG_FILE), "[privacy]\nmin_households = 7\n[service]\nhardship_days = 14\n")
            .unwrap();
        let c = read_config(dir.path()).unwrap();
        assert_eq!(c.policy().unwrap().min_households, 7);
        assert_eq!((c.service.contact_days, c.service.hardship_days), (90, 14));
    }

    #[test]
    fn config_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        for (text, needle) in [
            ("[crs]\nboundaries = \"mars\"\n", "mars"),
            ("[crs]\nroads = \"wgs84\"\n", "roads"),
            ("[standard]\nvillage_radius_m = -1\n", "village_radius_m"),
            ("[privacy]\nmin_households = 2\n", "min_households"),
            ("[service]\ncontact_days = 0\n", "contact_days"),
            ("[service]\nvisits = 3\n", "visits"),
            ("[standard\n", "gridcover.toml"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = read_config(dir.path()).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, IngestError::Config { .. }), "{m}");
            assert!(m.contains("gridcover.toml") && m.contains(needle), "{m}");
        }
    }

    /// The import's read leaves the boundaries' geometries out and nothing else: the same
    /// rejects (a boundary of an unknown unit among them), notes and rows.
    #[test]
    fn a_read_without_boundary_geometry_differs_only_by_them() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for f in std::fs::read_dir(&fixture).unwrap() {
            let f = f.unwrap();
            if f.path().is_file() {
                std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
            }
        }
        let b = dir.join("boundaries.geojson");
        let mut fc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
        fc["features"].as_array_mut().unwrap().push(serde_json::json!({
            "type": "Feature",
            "properties": {"code": "999999999999", "name": "nowhere", "level": "village", "parent": "99"},
            "geometry": {"type": "Polygon", "coordinates": [[[100.1, 40.1], [100.2, 40.1], [100.1, 40.2], [100.1, 40.1]]]}
        }));
        std::fs::write(&b, fc.to_string()).unwrap();
        let all = read_data_folder_with(dir, ReadOptions::ALL).unwrap();
        let import = read_data_folder_with(dir, ReadOptions::IMPORT).unwrap();
        assert!(!all.boundaries.areas.is_empty());
        assert!(import.boundaries.areas.is_empty());
        assert!(
            all.rejects.iter().any(|r| r.file == "boundaries.geojson" && r.id == "999999999999"),
            "{:?}",
            all.rejects
        );
        assert_eq!(import.rejects, all.rejects);
        assert_eq!(import.notes, all.notes);
        let hh = |d: &Dataset| {
            let h = &d.households;
            (0..h.len())
                .map(|i| {
                    format!(
                        "{} {} {} {:?} {:?} {:?}",
                        &h.id[i],
                        h.lon[i],
                        h.lat[i],
                        h.code.get(i),
                        h.name.get(i),
                        h.address.get(i)
                    )
                })
                .collect::<Vec<_>>()
        };
        assert!(!hh(&all).is_empty());
        assert_eq!(hh(&import), hh(&all));
        assert_eq!(import.stations.len(), all.stations.len());
        assert_eq!(import.grids.id, all.grids.id);
        assert_eq!(import.grids.geometry, all.grids.geometry);
        assert_eq!(import.divisions.len(), all.divisions.len());
    }
}
