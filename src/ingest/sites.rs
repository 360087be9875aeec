//! Reading the stations a what-if opens (I/O): the CSV of `gridcover scenario --add FILE`.
//! Unlike a data folder's files, where a bad row is set aside, a bad row here stops the
//! command: a what-if with a station silently missing would answer another question.

use std::collections::HashMap;
use std::path::Path;

use crate::analysis::Live;
use crate::model::rules::{check_lon_lat, check_radius, parse_flag};
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

/// Reads the stations to open: a CSV with columns `id,name,level,lon,lat` and optional
/// `code,demonstration,mobile,radius_m` (WGS84 degrees; yes/no fields as [`parse_flag`] reads
/// them, empty = false; a radius within [`crate::model::rules::RADIUS_M`]). Without a code, the
/// station serves the unit of its level whose boundary contains it ([`Live::served_unit`]).
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
        check_lon_lat(lon, lat).map_err(|why| bad(format!("coordinate out of range: {why}")))?;
        let code = Some(get("code")).filter(|c| !c.is_empty());
        let unit = live.served_unit(level, lon, lat, code).map_err(&bad)?;
        let demonstration = parse_flag("demonstration", get("demonstration")).map_err(&bad)?.unwrap_or(false);
        let mobile = parse_flag("mobile", get("mobile")).map_err(&bad)?.unwrap_or(false);
        let radius_m = match get("radius_m") {
            "" => None,
            v => {
                let x = v.parse::<f64>().map_err(|_| bad(format!("radius_m {v:?} is not a number")))?;
                check_radius(x)
                    .map_err(|bound| bad(format!("radius_m must be a number of metres from {bound}, got {v:?}")))?;
                Some(x)
            }
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
