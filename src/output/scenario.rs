//! Writing a what-if scenario's results (I/O), as `gridcover scenario` does after running it on
//! the live engine ([`crate::analysis::scenario()`]).
//!
//! Files written to `OUT`:
//! - `scenario_<level>.csv` for the five levels: **every** unit of the level, with a `changed`
//!   column, its households and veterans, and each figure before, after and the difference
//!   (`<figure>_before`, `<figure>_after`, `<figure>_delta`; see [`FIGURES`]);
//! - `scenario_households.csv`: each household that gains or loses coverage, with its admin
//!   codes, grid, `gained`/`lost`, the station that brings or took the coverage and the distance
//!   (personal data: the household ids);
//! - `scenario_summary.json`: the stations opened and closed (with the households and veterans
//!   each brings or takes), totals before and after, changed units per level and in full,
//!   households gained and lost, seconds.
//! - `scenario_summary.xlsx` (`--format xlsx`): the changed units as a table
//!   ([`scenario_summary_table`]) with Chinese headers and codes as text.

use std::collections::HashMap;
use std::path::Path;

use serde_json::json;

use super::{write_bytes, OutputError};
use crate::analysis::scenario::{Change, Figures, ScenarioResult};
use crate::analysis::Live;
use crate::model::Level;

/// Figures compared in `scenario_<level>.csv`, each as `_before`, `_after`, `_delta`.
pub const FIGURES: &[&str] = &[
    "covered_households",
    "covered_veterans",
    "coverage_share",
    "covered_province_veterans",
    "covered_city_veterans",
    "covered_county_veterans",
    "covered_township_veterans",
    "covered_village_veterans",
    "stations_province",
    "stations_city",
    "stations_county",
    "stations_township",
    "stations_village",
    "nearest_mean_m",
    "nearest_median_m",
    "nearest_p90_m",
    "townships_without_station",
    "villages_without_station",
];

fn values(f: &Figures) -> Vec<Option<f64>> {
    let mut v = vec![Some(f.covered_households as f64), Some(f.covered_veterans as f64), f.coverage_share];
    v.extend(f.covered_level_veterans.iter().map(|&x| Some(x as f64)));
    v.extend(f.stations.iter().map(|&x| Some(x as f64)));
    v.extend([
        f.nearest_mean_m,
        f.nearest_median_m.map(f64::from),
        f.nearest_p90_m.map(f64::from),
        Some(f.townships_without_station as f64),
        Some(f.villages_without_station as f64),
    ]);
    v
}

fn fmt(x: Option<f64>, i: usize) -> String {
    match x {
        None => String::new(),
        Some(x) if FIGURES[i] == "coverage_share" => format!("{x:.4}"),
        Some(x) if FIGURES[i].ends_with("_m") => format!("{x:.1}"),
        Some(x) => format!("{x}"),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

fn csv_bytes(path: &Path, header: &[String], rows: impl Iterator<Item = Vec<String>>) -> Result<Vec<u8>, OutputError> {
    let enc = |e: &dyn std::fmt::Display| OutputError::Encode { path: path.to_path_buf(), message: e.to_string() };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| enc(&e))?;
    for r in rows {
        w.write_record(&r).map_err(|e| enc(&e))?;
    }
    w.into_inner().map_err(|e| enc(&e))
}

/// Writes the scenario's files into `out` (created) and returns the summary.
///
/// `live` must be the engine the scenario ran on, as it is after the run (unchanged).
///
/// # Errors
/// A file cannot be written.
pub fn write_scenario(
    out: &Path,
    live: &Live,
    r: &ScenarioResult,
    seconds: f64,
) -> Result<serde_json::Value, OutputError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let ds = live.dataset();
    let d = &ds.divisions;
    let cov = &live.analysis().coverage;
    let changed: HashMap<&str, &crate::analysis::scenario::UnitDelta> =
        r.units.iter().map(|u| (u.code.as_str(), u)).collect();
    let mut header: Vec<String> =
        ["code", "name", "level", "parent_code", "changed", "households", "veterans"].map(String::from).to_vec();
    for f in FIGURES {
        for s in ["before", "after", "delta"] {
            header.push(format!("{f}_{s}"));
        }
    }
    for level in Level::ALL {
        let rows = d.at_level(level).map(|u| {
            let div = d.get(u);
            let (before, after, is_changed) = match changed.get(div.code.as_str()) {
                Some(x) => (x.before.clone(), x.after.clone(), true),
                None => {
                    let f = Figures::of(&cov.units[u as usize]);
                    (f.clone(), f, false)
                }
            };
            let mut row = vec![
                div.code.clone(),
                div.name.clone(),
                level.as_str().to_string(),
                div.parent.map(|p| d.get(p).code.clone()).unwrap_or_default(),
                is_changed.to_string(),
                before.households.to_string(),
                before.veterans.to_string(),
            ];
            for (i, (b, a)) in values(&before).into_iter().zip(values(&after)).enumerate() {
                let delta = match (b, a) {
                    (Some(b), Some(a)) => Some(a - b),
                    _ => None,
                };
                row.extend([fmt(b, i), fmt(a, i), fmt(delta, i)]);
            }
            row
        });
        let path = out.join(format!("scenario_{level}.csv"));
        write_bytes(&path, &csv_bytes(&path, &header, rows)?)?;
    }
    let hh_header: Vec<String> = [
        "household_id",
        "province_code",
        "city_code",
        "county_code",
        "township_code",
        "village_code",
        "grid_id",
        "change",
        "station_id",
        "distance_m",
    ]
    .map(String::from)
    .to_vec();
    let rows = r.households.iter().map(|h| {
        let mut row = vec![h.id.clone()];
        row.extend(h.codes.iter().map(|c| c.clone().unwrap_or_default()));
        row.push(h.grid_id.clone().unwrap_or_default());
        row.push(if h.change == Change::Gained { "gained" } else { "lost" }.into());
        row.push(h.station_id.clone());
        row.push(format!("{:.1}", h.distance_m));
        row
    });
    let path = out.join("scenario_households.csv");
    write_bytes(&path, &csv_bytes(&path, &hh_header, rows)?)?;
    let count = |c: Change| {
        let hs: Vec<_> = r.households.iter().filter(|h| h.change == c).collect();
        let vets: u64 = hs.iter().map(|h| u64::from(ds.households.veterans[h.household as usize])).sum();
        json!({ "households": hs.len(), "veterans": vets })
    };
    let changed_units: serde_json::Map<String, serde_json::Value> =
        Level::ALL.iter().map(|l| (l.as_str().to_string(), json!(r.changed_units[l.index()]))).collect();
    let summary = json!({
        "added": r.added,
        "removed": r.removed,
        "before": r.before,
        "after": r.after,
        "gained": count(Change::Gained),
        "lost": count(Change::Lost),
        "changed_units": changed_units,
        "units": r.units,
        "seconds": seconds,
    });
    let path = out.join("scenario_summary.json");
    let text = serde_json::to_string_pretty(&summary)
        .map_err(|e| OutputError::Encode { path: path.clone(), message: e.to_string() })?;
    write_bytes(&path, text.as_bytes())?;
    Ok(summary)
}

/// What `gridcover scenario` prints: totals, and the changed units per level.
pub fn report(r: &ScenarioResult) -> String {
    let pct = |x: Option<f64>| x.map_or("–".into(), |x| format!("{:.2}%", x * 100.0));
    let gained = r.households.iter().filter(|h| h.change == Change::Gained).count();
    let lost = r.households.len() - gained;
    let mut s = format!(
        "opened {}, closed {}: covered veterans {} → {} ({} → {}); {gained} households gain coverage, {lost} lose it\n",
        r.added.len(),
        r.removed.len(),
        r.before.covered_veterans,
        r.after.covered_veterans,
        pct(r.before.coverage_share),
        pct(r.after.coverage_share),
    );
    s.push_str("changed units:");
    for l in Level::ALL {
        s.push_str(&format!(" {} {}", l.as_str(), r.changed_units[l.index()]));
    }
    s.push('\n');
    s
}

/// Columns of the scenario summary's table of changed units: `code`, `name`, `level`, then
/// `<figure>_before`, `_after`, `_delta` of households and veterans covered, the coverage share
/// and the mean distance to the nearest station; and their Chinese headers.
pub const SCENARIO_SUMMARY_COLUMNS: [(&str, &str); 16] = [
    ("code", "代码"),
    ("name", "名称"),
    ("level", "级别"),
    ("households", "户数"),
    ("covered_households_before", "调整前覆盖户数"),
    ("covered_households_after", "调整后覆盖户数"),
    ("covered_households_delta", "覆盖户数变化"),
    ("covered_veterans_before", "调整前覆盖人数"),
    ("covered_veterans_after", "调整后覆盖人数"),
    ("covered_veterans_delta", "覆盖人数变化"),
    ("coverage_share_before", "调整前覆盖率"),
    ("coverage_share_after", "调整后覆盖率"),
    ("coverage_share_delta", "覆盖率变化"),
    ("nearest_mean_m_before", "调整前平均距离（米）"),
    ("nearest_mean_m_after", "调整后平均距离（米）"),
    ("nearest_mean_m_delta", "平均距离变化（米）"),
];

/// The changed units of a scenario (`units` of `scenario_summary.json`, in its order) as a
/// table of [`SCENARIO_SUMMARY_COLUMNS`]: what `gridcover scenario --format xlsx` writes as
/// `scenario_summary.xlsx`.
pub fn scenario_summary_table(r: &ScenarioResult) -> super::table::Table {
    use super::Field;
    let int3 = |b: i64, a: i64| [Field::Int(b), Field::Int(a), Field::Int(a - b)];
    let real3 = |b: Option<f64>, a: Option<f64>, d: u8| {
        let (b, a) = (b.filter(|x| x.is_finite()), a.filter(|x| x.is_finite()));
        let delta = b.zip(a).map(|(b, a)| a - b);
        [Field::Real(b, d), Field::Real(a, d), Field::Real(delta, d)]
    };
    super::table::Table {
        sheet: "方案 变化单位".into(),
        columns: SCENARIO_SUMMARY_COLUMNS.to_vec(),
        rows: r
            .units
            .iter()
            .map(|u| {
                let (b, a) = (&u.before, &u.after);
                let mut row = vec![
                    Field::Text(u.code.clone()),
                    Field::Text(u.name.clone()),
                    Field::Text(u.level.as_str().to_string()),
                    Field::Int(b.households),
                ];
                row.extend(int3(b.covered_households, a.covered_households));
                row.extend(int3(b.covered_veterans, a.covered_veterans));
                row.extend(real3(b.coverage_share, a.coverage_share, 6));
                row.extend(real3(b.nearest_mean_m, a.nearest_mean_m, 1));
                row
            })
            .collect(),
    }
}
