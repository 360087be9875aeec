//! Writing a plan (I/O): `plan.geojson`, `plan.csv` and `plan_summary.json`.
//!
//! - `plan.geojson`: the chosen sites in plan order as RFC 7946 points; properties `id` (the
//!   candidate's own id), `rank`, `name`, `source`, `required`, `newly_covered_veterans`,
//!   `gain`, `served_veterans` (capacitated only) and `province_code` … `village_code`.
//! - `plan.csv`: the same, one row per site, with `lon,lat`.
//! - `plan_summary.json`: the whole [`PlanResult`] (objective, bound, gap, coverage before and
//!   after for every admin unit of the plan's level and above, seconds per phase).
//!
//! - `plan_summary.xlsx` (`gridcover plan --format xlsx`): the summary's table of units
//!   ([`plan_summary_table`]: one row per unit of the plan's level and above, coverage before
//!   and after) with Chinese headers and codes as text.
//!
//! Each file is written atomically ([`super::atomic`]).

use std::path::Path;

use geojson::{Feature, FeatureCollection, Geometry, JsonObject};
use serde_json::json;

use super::{write_bytes, OutputError};
use crate::model::Level;
use crate::plan::PlanResult;

/// Writes the three plan files into `out` (created).
///
/// # Errors
/// A file or the folder cannot be written.
pub fn write_plan(out: &Path, res: &PlanResult) -> Result<(), OutputError> {
    std::fs::create_dir_all(out).map_err(|source| OutputError::Io { path: out.to_path_buf(), source })?;
    // GeoJSON.
    let features = res
        .sites
        .iter()
        .map(|s| {
            let mut p = JsonObject::new();
            p.insert("id".into(), json!(s.id));
            p.insert("rank".into(), json!(s.rank));
            p.insert("name".into(), json!(s.name));
            p.insert("source".into(), json!(s.source));
            p.insert("required".into(), json!(s.required));
            p.insert("newly_covered_veterans".into(), json!(s.newly_covered_veterans));
            p.insert("gain".into(), json!(s.gain));
            if let Some(v) = s.served_veterans {
                p.insert("served_veterans".into(), json!(v));
            }
            for l in Level::ALL {
                p.insert(format!("{}_code", l.as_str()), json!(s.codes[l.index()]));
            }
            Feature {
                bbox: None,
                geometry: Some(Geometry::from(&geo::Point::new(s.lon, s.lat))),
                id: Some(geojson::feature::Id::String(s.id.clone())),
                properties: Some(p),
                foreign_members: None,
            }
        })
        .collect();
    let fc = FeatureCollection { bbox: None, features, foreign_members: None };
    let path = out.join("plan.geojson");
    let text =
        serde_json::to_vec(&fc).map_err(|e| OutputError::Encode { path: path.clone(), message: e.to_string() })?;
    write_bytes(&path, &text)?;
    // CSV.
    let path = out.join("plan.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    let enc = |e: csv::Error| OutputError::Encode { path: out.join("plan.csv"), message: e.to_string() };
    let mut header = vec![
        "rank",
        "id",
        "name",
        "source",
        "lon",
        "lat",
        "required",
        "newly_covered_veterans",
        "gain",
        "served_veterans",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    header.extend(Level::ALL.iter().map(|l| format!("{}_code", l.as_str())));
    w.write_record(&header).map_err(enc)?;
    for s in &res.sites {
        let mut row = vec![
            s.rank.to_string(),
            s.id.clone(),
            s.name.clone(),
            s.source.clone(),
            format!("{:.7}", s.lon),
            format!("{:.7}", s.lat),
            s.required.to_string(),
            s.newly_covered_veterans.to_string(),
            format!("{}", s.gain),
            s.served_veterans.map(|v| v.to_string()).unwrap_or_default(),
        ];
        row.extend(s.codes.iter().cloned());
        w.write_record(&row).map_err(enc)?;
    }
    let bytes = w.into_inner().map_err(|e| OutputError::Encode { path: path.clone(), message: e.to_string() })?;
    write_bytes(&path, &bytes)?;
    // Summary.
    let path = out.join("plan_summary.json");
    let text = serde_json::to_vec_pretty(res)
        .map_err(|e| OutputError::Encode { path: path.clone(), message: e.to_string() })?;
    write_bytes(&path, &text)
}

/// Columns of the plan summary's table of units: name in `plan_summary.json`, Chinese header.
pub const PLAN_SUMMARY_COLUMNS: [(&str, &str); 12] = [
    ("code", "代码"),
    ("name", "名称"),
    ("level", "级别"),
    ("parent_code", "上级代码"),
    ("veterans", "退役军人数"),
    ("covered_before", "规划前覆盖人数"),
    ("covered_after", "规划后覆盖人数"),
    ("share_before", "规划前覆盖率"),
    ("share_after", "规划后覆盖率"),
    ("mean_distance_before_m", "规划前平均距离（米）"),
    ("mean_distance_after_m", "规划后平均距离（米）"),
    ("new_sites", "新增站点数"),
];

/// The summary's units (`units` of `plan_summary.json`) as a table, in the same order, values
/// as there (shares and distances as computed, absent ones empty).
pub fn plan_summary_table(res: &PlanResult) -> super::table::Table {
    use super::Field;
    let real = |x: Option<f64>| Field::Real(x.filter(|v| v.is_finite()), 6);
    super::table::Table {
        sheet: format!("规划 {}", res.request.level.zh()),
        columns: PLAN_SUMMARY_COLUMNS.to_vec(),
        rows: res
            .units
            .iter()
            .map(|u| {
                vec![
                    Field::Text(u.code.clone()),
                    Field::Text(u.name.clone()),
                    Field::Text(u.level.as_str().to_string()),
                    Field::MaybeText(Some(u.parent_code.clone()).filter(|c| !c.is_empty())),
                    Field::Int(u.veterans as i64),
                    Field::Int(u.covered_before as i64),
                    Field::Int(u.covered_after as i64),
                    real(u.share_before),
                    real(u.share_after),
                    real(u.mean_distance_before_m),
                    real(u.mean_distance_after_m),
                    Field::Int(u.new_sites as i64),
                ]
            })
            .collect(),
    }
}
