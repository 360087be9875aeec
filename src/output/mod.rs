//! Writing analysis results (I/O): Parquet, CSV, GeoJSON, JSON and the readable report.
//!
//! Files of `gridcover analyze --out OUT`:
//! - `assignments.parquet`: one row per household (its admin codes, grid, worker, and the
//!   nearest station of each level with the ground distance in metres);
//! - `coverage_<level>.csv` for the five levels: one row per unit (see [`COVERAGE_COLUMNS`]);
//! - `gaps.geojson`: gap areas as polygons, ranked by veterans;
//! - `workload.csv`: households and veterans per grid and grid worker;
//! - `rejects.csv`: every input row set aside, and every household that could not be placed;
//! - `code_mismatches.csv`: households whose given code disagrees with their position;
//! - `summary.json`: counts per level, totals, rejects, notes and seconds per phase
//!   (`write_assignments` overlaps `coverage`, `gaps` and `workload`: it runs beside them).
//!
//! The other commands' files are written by [`plan`] (`gridcover plan`), [`scenario`]
//! (`gridcover scenario`) and [`grids`] (`gridcover grids`).
//!
//! Every file is written through [`atomic::write_atomic_with`] (a temporary name, fsync, rename),
//! so a crash never leaves a half-written result.

pub mod atomic;
pub mod effective;
pub mod grids;
mod parquet;
pub mod plan;
mod report;
pub mod scenario;
pub mod table;

pub(crate) use parquet::{write_parquet_groups, GroupColumn};
pub use report::{report_table, sort_worst_first};

use parquet::TextColumn;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use geojson::{Feature, FeatureCollection, Geometry, JsonObject};
use polars::prelude::{Column, ParquetCompression};
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::analysis::{Analysis, Assignment, UnitSource};
use crate::model::{Dataset, Level, Reject, NONE, NO_UNIT};

/// Why results could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A file or folder could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a file failed (CSV, Parquet or JSON).
    #[error("cannot encode {}: {message}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// What the encoder said.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

fn enc_err(path: &Path, e: impl std::fmt::Display) -> OutputError {
    OutputError::Encode { path: path.to_path_buf(), message: e.to_string() }
}

/// Writes `path` atomically ([`atomic::write_atomic_with`]) with errors as [`OutputError`].
fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    atomic::write_atomic_with(path, |p, source| OutputError::Io { path: p.to_path_buf(), source }, f)
}

/// [`write_atomic`] for bytes in memory.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic(path, |w| w.write_all(bytes).map_err(io_err(path)))
}

/// Columns of `coverage_<level>.csv`, in order.
pub const COVERAGE_COLUMNS: &[&str] = &[
    "code",
    "name",
    "level",
    "parent_code",
    "households",
    "veterans",
    "covered_households",
    "covered_veterans",
    "coverage_share",
    "covered_province_veterans",
    "covered_city_veterans",
    "covered_county_veterans",
    "covered_township_veterans",
    "covered_village_veterans",
    "share_province",
    "share_city",
    "share_county",
    "share_township",
    "share_village",
    "stations_province",
    "stations_city",
    "stations_county",
    "stations_township",
    "stations_village",
    "demonstration_stations",
    "mobile_stations",
    "own_stations",
    "nearest_mean_m",
    "nearest_median_m",
    "nearest_p90_m",
    "outside_grid_households",
    "outside_grid_veterans",
    "hardship_households",
    "hardship_veterans",
    "hardship_covered_veterans",
    "hardship_coverage_share",
    "martyr_households",
    "martyr_veterans",
    "martyr_covered_veterans",
    "martyr_coverage_share",
    "townships_without_station",
    "villages_without_station",
    "rules_ok",
];

/// The Chinese header of a column of [`COVERAGE_COLUMNS`] (for Excel), the column's own name
/// for any other.
pub fn coverage_column_zh(column: &'static str) -> &'static str {
    match column {
        "code" => "代码",
        "name" => "名称",
        "level" => "级别",
        "parent_code" => "上级代码",
        "households" => "户数",
        "veterans" => "退役军人数",
        "covered_households" => "覆盖户数",
        "covered_veterans" => "覆盖人数",
        "coverage_share" => "覆盖率",
        "covered_province_veterans" => "省级站覆盖人数",
        "covered_city_veterans" => "市级站覆盖人数",
        "covered_county_veterans" => "县级站覆盖人数",
        "covered_township_veterans" => "乡镇站覆盖人数",
        "covered_village_veterans" => "村级站覆盖人数",
        "share_province" => "省级站覆盖率",
        "share_city" => "市级站覆盖率",
        "share_county" => "县级站覆盖率",
        "share_township" => "乡镇站覆盖率",
        "share_village" => "村级站覆盖率",
        "stations_province" => "省级服务中心数",
        "stations_city" => "市级服务中心数",
        "stations_county" => "县级服务中心数",
        "stations_township" => "乡镇服务站数",
        "stations_village" => "村级服务站数",
        "demonstration_stations" => "示范站数",
        "mobile_stations" => "流动站数",
        "own_stations" => "本级站数",
        "nearest_mean_m" => "最近站平均距离(米)",
        "nearest_median_m" => "最近站距离中位数(米)",
        "nearest_p90_m" => "最近站距离90分位(米)",
        "outside_grid_households" => "未入网格户数",
        "outside_grid_veterans" => "未入网格人数",
        "hardship_households" => "困难户数",
        "hardship_veterans" => "困难人数",
        "hardship_covered_veterans" => "困难覆盖人数",
        "hardship_coverage_share" => "困难覆盖率",
        "martyr_households" => "烈属户数",
        "martyr_veterans" => "烈属人数",
        "martyr_covered_veterans" => "烈属覆盖人数",
        "martyr_coverage_share" => "烈属覆盖率",
        "townships_without_station" => "无站乡镇数",
        "villages_without_station" => "无站大村数",
        "rules_ok" => "达标",
        other => other,
    }
}

/// The coverage table of every unit of `level`, worst first (as `coverage_<level>.csv`'s rows,
/// in the report's order), for CSV and Excel.
pub fn coverage_table(ds: &Dataset, a: &Analysis, level: crate::model::Level) -> table::Table {
    table::Table {
        sheet: format!("覆盖 {}", level.zh()),
        columns: COVERAGE_COLUMNS.iter().map(|&c| (c, coverage_column_zh(c))).collect(),
        rows: sort_worst_first(ds, a, level).into_iter().map(|u| coverage_fields(ds, a, u)).collect(),
    }
}

/// One value of a unit's coverage row, typed: the one shape the CSV files' text, the features'
/// JSON properties and the tiles' attributes are all made from (nothing is formatted to text and
/// parsed back).
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// Text (code, name, level).
    Text(String),
    /// Text that may be absent (the parent's code of a province).
    MaybeText(Option<String>),
    /// A count.
    Int(i64),
    /// A measure rounded to `decimals` places; `None` when it has no value (a share of zero
    /// veterans, a distance to no station).
    Real(Option<f64>, u8),
    /// A yes/no.
    Bool(bool),
}

impl Field {
    fn real(x: f64, decimals: u8) -> Field {
        Field::Real(x.is_finite().then_some(x), decimals)
    }

    fn share(x: i64, of: i64) -> Field {
        Field::Real((of != 0).then(|| x as f64 / of as f64), 4)
    }

    /// As a CSV cell: numbers with their decimals, absent values empty.
    pub fn to_csv(&self) -> String {
        match self {
            Field::Text(s) => s.clone(),
            Field::MaybeText(s) => s.clone().unwrap_or_default(),
            Field::Int(i) => i.to_string(),
            Field::Real(Some(x), d) => format!("{x:.prec$}", prec = usize::from(*d)),
            Field::Real(None, _) => String::new(),
            Field::Bool(b) => b.to_string(),
        }
    }

    /// As a JSON value: numbers rounded as in the CSV, absent values null.
    pub fn to_json(&self) -> Value {
        match self {
            Field::Text(s) => Value::String(s.clone()),
            Field::MaybeText(s) => s.clone().map_or(Value::Null, Value::String),
            Field::Int(i) => json!(i),
            // Rounded by the CSV text's decimal rounding (round half to even on the exact
            // value), which arithmetic rounding does not always match: the two never disagree.
            Field::Real(Some(_), _) => {
                let x: f64 = self.to_csv().parse().expect("a formatted finite number parses");
                serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
            }
            Field::Real(None, _) => Value::Null,
            Field::Bool(b) => Value::Bool(*b),
        }
    }
}

/// The coverage row of one unit, typed, in [`COVERAGE_COLUMNS`] order.
pub fn coverage_fields(ds: &Dataset, a: &Analysis, u: u32) -> Vec<Field> {
    use Field::{Bool, Int, MaybeText, Text};
    let d = ds.divisions.get(u);
    let c = &a.coverage.units[u as usize];
    let mut r = vec![
        Text(d.code.clone()),
        Text(d.name.clone()),
        Text(d.level.as_str().to_string()),
        MaybeText(d.parent.map(|p| ds.divisions.get(p).code.clone())),
        Int(c.households),
        Int(c.veterans),
        Int(c.covered_households),
        Int(c.covered_veterans),
        Field::share(c.covered_veterans, c.veterans),
    ];
    r.extend(c.covered_level_veterans.iter().map(|&v| Int(v)));
    r.extend(c.covered_level_veterans.iter().map(|&v| Field::share(v, c.veterans)));
    r.extend(c.stations.iter().map(|&v| Int(v)));
    r.extend([
        Int(c.demonstration_stations),
        Int(c.mobile_stations),
        Int(c.own_stations),
        Field::real(c.nearest_mean_m(), 1),
        Field::real(f64::from(c.nearest_median_m), 1),
        Field::real(f64::from(c.nearest_p90_m), 1),
        Int(c.outside_grid_households),
        Int(c.outside_grid_veterans),
        Int(c.hardship_households),
        Int(c.hardship_veterans),
        Int(c.hardship_covered_veterans),
        Field::share(c.hardship_covered_veterans, c.hardship_veterans),
        Int(c.martyr_households),
        Int(c.martyr_veterans),
        Int(c.martyr_covered_veterans),
        Field::share(c.martyr_covered_veterans, c.martyr_veterans),
        Int(c.townships_without_station),
        Int(c.villages_without_station),
        Bool(c.rules_ok()),
    ]);
    debug_assert_eq!(r.len(), COVERAGE_COLUMNS.len());
    r
}

/// The coverage row of one unit as CSV text fields in [`COVERAGE_COLUMNS`] order.
pub fn coverage_record(ds: &Dataset, a: &Analysis, u: u32) -> Vec<String> {
    coverage_fields(ds, a, u).iter().map(Field::to_csv).collect()
}

fn write_csv(path: &Path, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<(), OutputError> {
    write_atomic(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(header).map_err(|e| enc_err(path, e))?;
        for r in rows {
            c.write_record(&r).map_err(|e| enc_err(path, e))?;
        }
        c.flush().map_err(io_err(path))
    })
}

/// Writes `coverage_<level>.csv` for the five levels.
pub fn write_coverage(out: &Path, ds: &Dataset, a: &Analysis) -> Result<(), OutputError> {
    for level in Level::ALL {
        let path = out.join(format!("coverage_{level}.csv"));
        write_csv(&path, COVERAGE_COLUMNS, ds.divisions.at_level(level).map(|u| coverage_record(ds, a, u)))?;
    }
    Ok(())
}

/// Writes `assignments.parquet` (Snappy-compressed) by row groups, made, encoded and compressed
/// in parallel and written in order: memory holds the columns of the groups being encoded, not
/// the whole table's (at national scale the table is gigabytes of strings).
///
/// The columns of codes, grids, workers and stations are made from the numbers of the units,
/// grids and stations (`output::parquet::TextColumn`): the file is the one polars writes from their
/// texts, without hashing each household's texts twice.
pub fn write_assignments(path: &Path, ds: &Dataset, asg: &Assignment) -> Result<(), OutputError> {
    let d = &ds.divisions;
    // Each station, grid and worker's number among the distinct texts of its column (ids are
    // distinct once ingested; a worker may keep several grids), in parallel.
    let ((stations, grids), workers) = rayon::join(
        || rayon::join(|| Numbered::of(&ds.stations.id), || Numbered::of(&ds.grids.id)),
        || Numbered::of(&ds.grids.worker),
    );
    let code_at = |l: Level, r: &Range<usize>| -> GroupColumn {
        let ids = asg.unit[r.clone()].iter().map(|&u| if u == NO_UNIT { NONE } else { d.chain(u)[l.index()] });
        GroupColumn::Text(TextColumn::from_ids(format!("{l}_code"), ids, d.len(), |x| d.get(x).code.as_str()))
    };
    let by_grid = |name: &str, of: &Numbered<'_>, r: &Range<usize>| -> GroupColumn {
        GroupColumn::Text(of.column(name, asg.grid[r.clone()].iter().copied()))
    };
    type Build<'a> = Box<dyn Fn(&Range<usize>) -> GroupColumn + Send + Sync + 'a>;
    let mut builders: Vec<Build<'_>> = vec![
        Box::new(|r| Column::new("household_id".into(), ds.households.id.range(r.clone()).collect::<Vec<_>>()).into()),
        Box::new(|r| code_at(Level::Village, r)),
        Box::new(|r| code_at(Level::Township, r)),
        Box::new(|r| code_at(Level::County, r)),
        Box::new(|r| code_at(Level::City, r)),
        Box::new(|r| code_at(Level::Province, r)),
        Box::new(|r| {
            const SOURCES: [&str; 3] = ["position", "code", "none"];
            let ids = asg.source[r.clone()].iter().map(|s| match s {
                UnitSource::Position => 0,
                UnitSource::Code => 1,
                UnitSource::None => 2,
            });
            GroupColumn::Text(TextColumn::from_ids("unit_source", ids, SOURCES.len(), |x| SOURCES[x as usize]))
        }),
        Box::new(|r| by_grid("grid_id", &grids, r)),
        Box::new(|r| by_grid("worker", &workers, r)),
        Box::new(|r| Column::new("veterans".into(), &ds.households.veterans[r.clone()]).into()),
        Box::new(|r| {
            Column::new("covered".into(), asg.covered[r.clone()].iter().map(|&c| c != 0).collect::<Vec<_>>()).into()
        }),
    ];
    for l in Level::ALL {
        let k = l.index();
        let stations = &stations;
        builders.push(Box::new(move |r| {
            GroupColumn::Text(stations.column(&format!("nearest_{l}_id"), asg.nearest[k][r.clone()].iter().copied()))
        }));
        builders.push(Box::new(move |r| {
            let m: Vec<Option<f32>> = asg.nearest_m[k][r.clone()].iter().map(|&x| x.is_finite().then_some(x)).collect();
            Column::new(format!("nearest_{l}_m").into(), m).into()
        }));
        builders.push(Box::new(move |r| {
            Column::new(
                format!("covered_{l}").into(),
                asg.covered[r.clone()].iter().map(|&c| c & (1 << k) != 0).collect::<Vec<_>>(),
            )
            .into()
        }));
    }
    let group =
        |r: &Range<usize>| -> Result<Vec<GroupColumn>, OutputError> { Ok(builders.par_iter().map(|b| b(r)).collect()) };
    write_atomic(path, |w| write_parquet_groups(w, ParquetCompression::Snappy, asg.len(), group, |e| enc_err(path, e)))
}

/// The texts of a column of records (station ids, grid ids, workers) numbered by distinct text:
/// the number of each record's text, and the text of each number.
struct Numbered<'a> {
    number: Vec<u32>,
    text: Vec<&'a str>,
}

impl<'a> Numbered<'a> {
    fn of(texts: &'a [String]) -> Numbered<'a> {
        let mut seen: HashMap<&str, u32> = HashMap::with_capacity(texts.len());
        let mut text = Vec::new();
        let number = texts
            .iter()
            .map(|t| {
                *seen.entry(t.as_str()).or_insert_with(|| {
                    text.push(t.as_str());
                    (text.len() - 1) as u32
                })
            })
            .collect();
        Numbered { number, text }
    }

    /// The text column of records `records` ([`NONE`]: null).
    fn column(&self, name: &str, records: impl ExactSizeIterator<Item = u32>) -> TextColumn {
        let ids = records.map(|x| if x == NONE { NONE } else { self.number[x as usize] });
        TextColumn::from_ids(name, ids, self.text.len(), |x| self.text[x as usize])
    }
}

/// Writes `gaps.geojson`: one Polygon feature per gap, ranked by veterans.
pub fn write_gaps(path: &Path, ds: &Dataset, a: &Analysis) -> Result<(), OutputError> {
    let d = &ds.divisions;
    let features = a
        .gaps
        .iter()
        .map(|g| {
            let mut p = JsonObject::new();
            p.insert("rank".into(), json!(g.rank));
            p.insert("households".into(), json!(g.households.len()));
            p.insert("veterans".into(), json!(g.veterans));
            p.insert("centroid_lon".into(), json!(round7(g.centroid.0)));
            p.insert("centroid_lat".into(), json!(round7(g.centroid.1)));
            for l in Level::ALL {
                let u = g.units[l.index()];
                let v = if u == NO_UNIT { Value::Null } else { json!(d.get(u).code) };
                p.insert(format!("{l}_code"), v);
            }
            let (sid, sm) = match g.nearest_station {
                Some((s, m)) => (json!(ds.stations.id[s as usize]), json!((m * 10.0).round() / 10.0)),
                None => (Value::Null, Value::Null),
            };
            p.insert("nearest_station_id".into(), sid);
            p.insert("nearest_station_m".into(), sm);
            Feature {
                bbox: None,
                geometry: Some(Geometry::from(&g.hull)),
                id: Some(geojson::feature::Id::String(format!("gap-{}", g.rank))),
                properties: Some(p),
                foreign_members: None,
            }
        })
        .collect();
    let fc = FeatureCollection { bbox: None, features, foreign_members: None };
    write_atomic(path, |w| serde_json::to_writer(w, &fc).map_err(|e| enc_err(path, e)))
}

fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

/// Writes `workload.csv`.
pub fn write_workload(path: &Path, ds: &Dataset, a: &Analysis) -> Result<(), OutputError> {
    let header = [
        "grid_id",
        "worker",
        "code",
        "households",
        "veterans",
        "over_cap",
        "worker_grids",
        "worker_households",
        "worker_veterans",
    ];
    let rows = a.workload.iter().map(|w| {
        let g = w.grid as usize;
        vec![
            ds.grids.id[g].clone(),
            ds.grids.worker[g].clone(),
            ds.grids.unit[g].map(|u| ds.divisions.get(u).code.clone()).unwrap_or_default(),
            w.households.to_string(),
            w.veterans.to_string(),
            w.over_cap.to_string(),
            w.worker_grids.to_string(),
            w.worker_households.to_string(),
            w.worker_veterans.to_string(),
        ]
    });
    write_csv(path, &header, rows)
}

/// The households that could be placed in no admin unit, as rejects.
pub fn unplaced_rejects(ds: &Dataset, a: &Analysis) -> Vec<Reject> {
    (0..a.assignment.len())
        .filter(|&h| a.assignment.source[h] == UnitSource::None)
        .map(|h| Reject {
            file: "households".into(),
            row: 0,
            id: ds.households.id[h].to_string(),
            reason: format!(
                "position ({}, {}) is outside every admin boundary and the household has no code",
                ds.households.lon[h], ds.households.lat[h]
            ),
        })
        .collect()
}

/// Writes `rejects.csv` from the input rejects plus the unplaced households.
pub fn write_rejects(path: &Path, rejects: &[Reject]) -> Result<(), OutputError> {
    let rows = rejects.iter().map(|r| vec![r.file.clone(), r.row.to_string(), r.id.clone(), r.reason.clone()]);
    write_csv(path, &["file", "row", "id", "reason"], rows)
}

/// Writes `code_mismatches.csv`.
pub fn write_mismatches(path: &Path, ds: &Dataset, a: &Analysis) -> Result<(), OutputError> {
    let d = &ds.divisions;
    let code = |u: u32| if u == NO_UNIT { String::new() } else { d.get(u).code.clone() };
    let rows = a.assignment.mismatches.iter().map(|m| {
        let h = m.household as usize;
        vec![
            ds.households.id[h].to_string(),
            code(m.given),
            code(m.located),
            ds.households.lon[h].to_string(),
            ds.households.lat[h].to_string(),
        ]
    });
    write_csv(path, &["household_id", "given_code", "located_code", "lon", "lat"], rows)
}

/// The summary as JSON: counts per level, totals, rejects, notes and seconds per phase.
pub fn summary(ds: &Dataset, a: &Analysis, rejects: &[Reject], timings: &[(&str, f64)]) -> Value {
    let d = &ds.divisions;
    let mut levels = serde_json::Map::new();
    for l in Level::ALL {
        let units: Vec<u32> = d.at_level(l).collect();
        let with_households = units.iter().filter(|&&u| a.coverage.units[u as usize].households > 0).count();
        let boundaries = ds.boundaries.at_level(d, l).count();
        let stations = (0..ds.stations.len()).filter(|&s| ds.stations.active[s] && ds.stations.level[s] == l).count();
        let demo = (0..ds.stations.len())
            .filter(|&s| ds.stations.active[s] && ds.stations.level[s] == l && ds.stations.demonstration[s])
            .count();
        let full = units.iter().filter(|&&u| {
            let c = &a.coverage.units[u as usize];
            c.veterans > 0 && c.covered_veterans == c.veterans
        });
        levels.insert(
            l.as_str().into(),
            json!({
                "units": units.len(),
                "boundaries": boundaries,
                "units_with_households": with_households,
                "units_fully_covered": full.count(),
                "stations": stations,
                "demonstration_stations": demo,
            }),
        );
    }
    let mut rejects_by_file = serde_json::Map::new();
    for r in rejects {
        let e = rejects_by_file.entry(r.file.clone()).or_insert(json!(0));
        *e = json!(e.as_u64().unwrap_or(0) + 1);
    }
    let asg = &a.assignment;
    let vets = ds.households.total_veterans();
    let covered: u64 =
        (0..asg.len()).filter(|&h| asg.covered[h] != 0).map(|h| u64::from(ds.households.veterans[h])).sum();
    let outside_grid = asg.grid.iter().filter(|&&g| g == NONE).count();
    let by_code = asg.source.iter().filter(|&&s| s == UnitSource::Code).count();
    let rule = |f: fn(&crate::analysis::UnitCoverage) -> i64| -> i64 {
        d.at_level(Level::Province).map(|u| f(&a.coverage.units[u as usize])).sum()
    };
    json!({
        "levels": levels,
        "totals": {
            "households": ds.households.len(),
            "veterans": vets,
            "covered_veterans": covered,
            "coverage_share": if vets == 0 { Value::Null } else { json!(covered as f64 / vets as f64) },
            "stations": ds.stations.active.iter().filter(|&&x| x).count(),
            "grids": ds.grids.len(),
            "households_outside_grid": outside_grid,
            "households_located_by_code": by_code,
            "households_unplaced": asg.source.iter().filter(|&&s| s == UnitSource::None).count(),
            "code_mismatches": asg.mismatches.len(),
            "gaps": a.gaps.len(),
            "gap_veterans": a.gaps.iter().map(|g| g.veterans).sum::<u64>(),
            "grids_over_cap": a.workload.iter().filter(|w| w.over_cap).count(),
            "townships_without_station": rule(|c| c.townships_without_station),
            "villages_without_station": rule(|c| c.villages_without_station),
        },
        "rejects": { "total": rejects.len(), "by_file": rejects_by_file },
        "notes": ds.notes,
        "standard": ds.standard,
        "seconds": timings.iter().map(|(k, v)| (k.to_string(), json!((v * 1000.0).round() / 1000.0))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Writes every result file of `gridcover analyze` into `out` (created if needed) but
/// `assignments.parquet` — written by [`write_assignments`] while coverage, gaps and workload
/// are computed (see [`crate::analysis::analyze_dropping_polygons`]) — and returns the summary
/// that was written to `summary.json`.
///
/// `timings` are the phases measured so far (reading, analysis, the assignments' writing);
/// the writing of these files is added as `write`.
pub fn write_all_but_assignments(
    out: &Path,
    ds: &Dataset,
    a: &Analysis,
    timings: &[(&str, f64)],
) -> Result<Value, OutputError> {
    let t = std::time::Instant::now();
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let mut rejects = ds.rejects.clone();
    rejects.extend(unplaced_rejects(ds, a));
    write_coverage(out, ds, a)?;
    write_gaps(&out.join("gaps.geojson"), ds, a)?;
    write_workload(&out.join("workload.csv"), ds, a)?;
    write_rejects(&out.join("rejects.csv"), &rejects)?;
    write_mismatches(&out.join("code_mismatches.csv"), ds, a)?;
    let mut all: Vec<(&str, f64)> = timings.to_vec();
    all.push(("write", t.elapsed().as_secs_f64()));
    let s = summary(ds, a, &rejects, &all);
    let path = out.join("summary.json");
    write_atomic(&path, |w| serde_json::to_writer_pretty(w, &s).map_err(|e| enc_err(&path, e)))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::Field;
    use proptest::prelude::*;

    #[test]
    fn fields_as_csv_and_json() {
        assert_eq!(Field::share(1, 3).to_csv(), "0.3333");
        assert_eq!(Field::share(1, 3).to_json(), serde_json::json!(0.3333));
        assert_eq!(Field::share(1, 0).to_csv(), "");
        assert_eq!(Field::share(1, 0).to_json(), serde_json::Value::Null);
        assert_eq!(Field::real(1234.0, 1).to_json().to_string(), "1234.0");
        assert_eq!(Field::real(f64::NAN, 1).to_csv(), "");
        assert_eq!(Field::MaybeText(None).to_json(), serde_json::Value::Null);
        assert_eq!(Field::Bool(true).to_csv(), "true");
        assert_eq!(Field::Int(-3).to_json(), serde_json::json!(-3));
    }

    proptest! {
        /// The JSON number is the CSV text's number: a feature and a CSV row never disagree.
        #[test]
        fn a_real_reads_the_same_in_json_and_csv(num in 0i64..10_000_000, of in 1i64..10_000_000, m in 0.0f64..1.0e6) {
            let share = Field::share(num.min(of), of);
            prop_assert_eq!(share.to_json().as_f64().unwrap(), share.to_csv().parse::<f64>().unwrap());
            let metres = Field::real(m, 1);
            prop_assert_eq!(metres.to_json().as_f64().unwrap(), metres.to_csv().parse::<f64>().unwrap());
        }
    }
}
