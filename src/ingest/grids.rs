//! `grids.geojson`: service grids (网格) with their workers.

use std::collections::HashMap;
use std::path::Path;

use super::table::{json_val, polygon_features};
use super::{file_name, IngestError};
use crate::crs::{Crs, ToWgs84};
use crate::model::{Divisions, Grids, Reject};

/// Reads grid polygons: Polygon or MultiPolygon features with properties `id`, `worker` and
/// optional `code` (the admin unit the grid belongs to).
///
/// A feature becomes a [`Reject`] (with its 1-based number) for an empty or duplicate id, an
/// empty worker, an unknown code, or a geometry that is missing, of another type, or invalid
/// by the same rules as boundaries.
///
/// # Errors
/// The file is missing, not JSON or not a FeatureCollection; PROJ cannot handle `crs`.
pub fn read_grids(
    path: &Path,
    crs: &Crs,
    divisions: &Divisions,
    rejects: &mut Vec<Reject>,
) -> Result<Grids, IngestError> {
    ToWgs84::new(crs).map_err(|source| IngestError::Crs { path: path.to_path_buf(), source })?;
    let features = polygon_features(path, crs)?;
    let file = file_name(path);
    let mut out = Grids::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (k, fv) in features.into_iter().enumerate() {
        let row = k + 1;
        let mut reject = |id: &str, reason: String| {
            rejects.push(Reject { file: file.clone(), row, id: id.to_string(), reason });
        };
        let (props, geometry) = match fv {
            Ok(f) => f,
            Err(e) => {
                reject("", e);
                continue;
            }
        };
        let id = json_val(props.get("id")).text().map(|s| s.into_owned()).unwrap_or_default();
        if id.is_empty() {
            reject("", "id is empty".into());
            continue;
        }
        if let Some(first) = seen.get(&id) {
            reject(&id, format!("duplicate id {id} (first on feature {first})"));
            continue;
        }
        seen.insert(id.clone(), row);
        let worker = json_val(props.get("worker")).text().map(|s| s.into_owned()).unwrap_or_default();
        if worker.is_empty() {
            reject(&id, "worker is empty".into());
            continue;
        }
        let unit = match json_val(props.get("code")).text() {
            None => None,
            Some(c) => match divisions.find(&c) {
                Some(u) => Some(u),
                None => {
                    reject(&id, format!("unknown admin code {c} (not among the divisions)"));
                    continue;
                }
            },
        };
        let mp = match geometry {
            Ok(mp) => mp,
            Err(e) => {
                reject(&id, e);
                continue;
            }
        };
        out.id.push(id);
        out.worker.push(worker);
        out.unit.push(unit);
        out.geometry.push(mp);
    }
    Ok(out)
}
