//! The `gridcover scenario` command (I/O): read the stations to open from a CSV file, run the
//! scenario on the live engine ([`crate::analysis::scenario()`]), write the results.
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::analysis::scenario::{Change, Figures, ScenarioResult};
use crate::analysis::{scenario_in_place, Live, LiveError};
use crate::design::write::write_file;
use crate::model::{Level, StationRow};

/// Bad input to a command: a file, the row and the reason, or a bad argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct InputError {
    /// The file and line (`sites.csv line 3`) or the argument (`--remove`).
    pub what: String,
    /// Why it cannot be used.
    pub reason: String,
}

fn flag(v: &str, col: &str) -> Result<bool, String> {
    match v.trim().to_lowercase().as_str() {
        "" | "false" | "0" | "no" | "n" | "否" => Ok(false),
        "true" | "1" | "yes" | "y" | "是" => Ok(true),
        other => Err(format!("{col} must be true or false, got {other:?}")),
    }
}

/// Reads the stations to open: a CSV with columns `id,name,level,lon,lat` and optional
/// `code,demonstration,mobile,radius_m` (WGS84 degrees; yes/no fields true/false/1/0/yes/no/
/// 是/否, empty = false). Without a code, the station serves the unit of its level whose
/// boundary contains it.
///
/// # Errors
/// The file cannot be read, a required column is missing, or a row is bad (empty or repeated
/// id, an id of an existing station, unknown level, bad coordinates, an unknown code or one of
/// another level, no unit of the level at the point, a bad yes/no or radius): the error names
/// the file, the line (the header is line 1) and the reason. Nothing is opened then.
pub fn read_sites(path: &Path, live: &Live) -> Result<Vec<StationRow>, InputError> {
    let file = path.display().to_string();
    let whole = |reason: String| InputError { what: file.clone(), reason };
    let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| whole(e.to_string()))?;
    let headers = r.headers().map_err(|e| whole(e.to_string()))?.clone();
    let col: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    for c in ["id", "name", "level", "lon", "lat"] {
        if !col.contains_key(c) {
            return Err(whole(format!(
                "required column `{c}` is missing (columns found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let ds = live.dataset();
    let admin = &live.analysis().indexes.admin;
    let mut out: Vec<StationRow> = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| whole(e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let bad = |reason: String| InputError { what: format!("{file} line {line}"), reason };
        let get = |c: &str| col.get(c).and_then(|&i| rec.get(i)).unwrap_or("");
        let id = get("id").to_string();
        if id.is_empty() {
            return Err(bad("id is empty".into()));
        }
        if let Some(first) = seen.get(&id) {
            return Err(bad(format!("duplicate id {id} (first on line {first})")));
        }
        if live.station_index_by_id(&id).is_some() {
            return Err(bad(format!("id {id} is an existing station's")));
        }
        seen.insert(id.clone(), line);
        let level: Level = get("level").parse().map_err(|e: crate::model::UnknownLevel| bad(e.to_string()))?;
        let num = |c: &str| -> Result<f64, InputError> {
            let v = get(c);
            v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad(format!("{c} {v:?} is not a number")))
        };
        let (lon, lat) = (num("lon")?, num("lat")?);
        if !((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)) {
            return Err(bad(format!(
                "coordinate out of range: lon {lon}, lat {lat} (longitude within -180..180, latitude within -90..90)"
            )));
        }
        let code = get("code");
        let unit = if code.is_empty() {
            admin.locate_at(level, lon, lat).ok_or_else(|| {
                bad(format!("no {level} boundary contains lon {lon}, lat {lat}; give the code of the unit it serves"))
            })?
        } else {
            let u = ds.divisions.find(code).ok_or_else(|| bad(format!("unknown admin code {code}")))?;
            let ul = ds.divisions.get(u).level;
            if ul != level {
                return Err(bad(format!("code {code} is a {ul}, but the station's level is {level}")));
            }
            u
        };
        let demonstration = flag(get("demonstration"), "demonstration").map_err(&bad)?;
        let mobile = flag(get("mobile"), "mobile").map_err(&bad)?;
        let radius_m = match get("radius_m") {
            "" => None,
            v => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Some(x),
                _ => return Err(bad(format!("radius_m must be a positive number of metres, got {v:?}"))),
            },
        };
        out.push(StationRow {
            id,
            name: get("name").to_string(),
            level,
            unit,
            lon,
            lat,
            demonstration,
            mobile,
            radius_m,
        });
    }
    Ok(out)
}

/// The ids of `--remove ID,ID` (spaces and empty items ignored).
pub fn parse_removes(arg: Option<&str>) -> Vec<String> {
    arg.map(|a| a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("cannot write {}: {e}", path.display())
}

fn csv_bytes(header: &[String], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(&r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Writes the scenario's files into `out` (created) and returns the summary.
///
/// `live` must be the engine the scenario ran on, as it is after the run (unchanged).
///
/// # Errors
/// A file cannot be written.
pub fn write_scenario(out: &Path, live: &Live, r: &ScenarioResult, seconds: f64) -> anyhow::Result<serde_json::Value> {
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
        write_file(&path, &csv_bytes(&header, rows)?).map_err(io(&path))?;
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
    write_file(&path, &csv_bytes(&hh_header, rows)?).map_err(io(&path))?;
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
    write_file(&path, serde_json::to_string_pretty(&summary)?.as_bytes()).map_err(io(&path))?;
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

/// Runs `gridcover scenario`: loads nothing itself; `live` is the engine of the data folder.
///
/// # Errors
/// [`InputError`] for a bad sites file or `--remove` id; I/O errors writing.
pub fn run(live: &mut Live, add: Option<&Path>, remove: Option<&str>, out: &Path) -> anyhow::Result<String> {
    let t = std::time::Instant::now();
    let adds = match add {
        Some(p) => read_sites(p, live)?,
        None => Vec::new(),
    };
    let removes = parse_removes(remove);
    if adds.is_empty() && removes.is_empty() {
        return Err(InputError {
            what: "scenario".into(),
            reason: "nothing to do: give --add FILE and/or --remove ID,ID".into(),
        }
        .into());
    }
    let r = scenario_in_place(live, &adds, &removes).map_err(|e| match e {
        LiveError::UnknownId(_) | LiveError::Closed(_) => InputError { what: "--remove".into(), reason: e.to_string() },
        other => InputError {
            what: add.map_or_else(|| PathBuf::from("--add"), Path::to_path_buf).display().to_string(),
            reason: other.to_string(),
        },
    })?;
    write_scenario(out, live, &r, t.elapsed().as_secs_f64())?;
    Ok(report(&r))
}
