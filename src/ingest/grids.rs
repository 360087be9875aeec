//! `grids.geojson`: service grids (网格) with their workers.

use std::collections::HashMap;
use std::path::Path;

use super::cache::LazyFeatures;
use super::table::{json_val, polygon_features_lazy};
use super::{file_name, IngestError};
use crate::crs::{Crs, ToWgs84};
use crate::model::{Bbox, Divisions, Grids, Reject, UnitIdx};

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
    Ok(read_grid_heads(path, crs, divisions, rejects)?.select(|_, _| true))
}

/// The grids of a file, checked with the same rejects as [`read_grids`], their geometries not
/// decoded until [`GridHeads::select`].
pub(crate) struct GridHeads {
    features: LazyFeatures,
    /// Per grid: id, worker, unit, feature position.
    grids: Vec<(String, String, Option<UnitIdx>, usize)>,
}

impl GridHeads {
    fn bbox(&self, k: usize) -> Option<Bbox> {
        match &self.features.features[k] {
            Ok((_, Ok(g))) => g.bbox,
            _ => None,
        }
    }

    /// The grids `keep` (given the unit and bounding box) wants, in file order.
    pub(crate) fn select(mut self, keep: impl Fn(Option<UnitIdx>, Option<&Bbox>) -> bool) -> Grids {
        let grids = std::mem::take(&mut self.grids);
        let chosen: Vec<_> = grids.into_iter().filter(|g| keep(g.2, self.bbox(g.3).as_ref())).collect();
        let wanted: Vec<usize> = chosen.iter().map(|g| g.3).collect();
        let mut out = Grids::default();
        for ((id, worker, unit, _), mp) in chosen.into_iter().zip(self.features.geometries(&wanted)) {
            out.id.push(id);
            out.worker.push(worker);
            out.unit.push(unit);
            out.geometry.push(mp);
        }
        out
    }
}

/// [`read_grids`] but for decoding the geometries.
pub(crate) fn read_grid_heads(
    path: &Path,
    crs: &Crs,
    divisions: &Divisions,
    rejects: &mut Vec<Reject>,
) -> Result<GridHeads, IngestError> {
    ToWgs84::new(crs).map_err(|source| IngestError::Crs { path: path.to_path_buf(), source })?;
    let features = polygon_features_lazy(path, crs)?;
    let file = file_name(path);
    let mut grids = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (k, fv) in features.features.iter().enumerate() {
        let row = k + 1;
        let mut reject = |id: &str, reason: String| {
            rejects.push(Reject { file: file.clone(), row, id: id.to_string(), reason });
        };
        let (props, geometry) = match fv {
            Ok((p, g)) => (p, g),
            Err(e) => {
                reject("", e.clone());
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
        if let Err(e) = geometry {
            reject(&id, e.clone());
            continue;
        }
        grids.push((id, worker, unit, k));
    }
    Ok(GridHeads { features, grids })
}
