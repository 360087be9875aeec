//! `boundaries.geojson`: polygons of admin units, matched to the division table.

use std::collections::HashMap;
use std::path::Path;

use super::cache::LazyFeatures;
use super::table::{json_val, polygon_features_lazy, Val};
use super::{file_name, IngestError};
use crate::crs::{Crs, ToWgs84};
use crate::model::{AdminArea, Bbox, Boundaries, Divisions, Level, Reject, UnitIdx};

/// Maps a boundary's code to the statistical code of its level: a 6-digit adcode of a province
/// (`620000`) or city (`620100`) is shortened to 2 or 4 digits; a code already of the level's
/// length is kept. `None` when the code fits neither rule.
pub(crate) fn statistical_code(code: &str, level: Level) -> Option<&str> {
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len = level.code_len();
    if code.len() == len {
        return Some(code);
    }
    if code.len() == 6 && len < 6 && code[len..].bytes().all(|b| b == b'0') {
        return Some(&code[..len]);
    }
    None
}

fn plural(level: Level, n: usize) -> String {
    let word = match (level, n == 1) {
        (Level::Province, true) => "province",
        (Level::Province, false) => "provinces",
        (Level::City, true) => "city",
        (Level::City, false) => "cities",
        (Level::County, true) => "county",
        (Level::County, false) => "counties",
        (Level::Township, true) => "township",
        (Level::Township, false) => "townships",
        (Level::Village, true) => "village",
        (Level::Village, false) => "villages",
    };
    format!("{n} {word}")
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Reads the boundaries and matches each to a unit of `divisions`.
///
/// Each feature needs `code`, `level` and a Polygon or MultiPolygon geometry; `name`, `parent`
/// and `derived` are optional. Codes are mapped with the adcode rule (`620000` → `62` for a
/// province, `620100` → `6201` for a city); a code not among the divisions is matched by name
/// among the children of its (mapped) parent, with a note. Coordinates are converted from
/// `crs` to WGS84, and each geometry is checked with geo's validity rules.
///
/// A feature is rejected (with its 1-based number) when it lacks a code or level, its code
/// cannot be matched, its unit already has a boundary, or its geometry is missing, of another
/// type, has rings of fewer than 4 positions, non-finite or out-of-range coordinates, or is
/// invalid (e.g. self-intersecting). A note is added for each county-level or higher division
/// without any boundary.
///
/// # Errors
/// The file is missing, not JSON or not a FeatureCollection; PROJ cannot handle `crs`.
pub fn read_boundaries(
    path: &Path,
    crs: &Crs,
    divisions: &Divisions,
    rejects: &mut Vec<Reject>,
    notes: &mut Vec<String>,
) -> Result<Boundaries, IngestError> {
    Ok(read_boundary_heads(path, crs, divisions, rejects, notes)?.select(|_, _| true))
}

/// The boundaries of a file matched to the divisions, with the same rejects and notes as
/// [`read_boundaries`], their geometries not decoded until [`BoundaryHeads::select`].
pub(crate) struct BoundaryHeads {
    features: LazyFeatures,
    /// Per boundary: its unit, whether it is derived, its feature's position.
    areas: Vec<(UnitIdx, bool, usize)>,
}

impl BoundaryHeads {
    /// Each boundary's unit and bounding box, in file order.
    pub(crate) fn units(&self) -> impl Iterator<Item = (UnitIdx, Option<Bbox>)> + '_ {
        self.areas.iter().map(|&(u, _, k)| (u, self.bbox(k)))
    }

    fn bbox(&self, k: usize) -> Option<Bbox> {
        match &self.features.features[k] {
            Ok((_, Ok(g))) => g.bbox,
            _ => None,
        }
    }

    /// The bounding box of all boundaries ([`Bbox::of`] of [`read_boundaries`]' answer).
    pub(crate) fn extent(&self) -> Option<Bbox> {
        let b = self.units().filter_map(|(_, b)| b).fold(Bbox::EMPTY, |acc, b| acc.union(&b));
        (!b.is_empty()).then_some(b)
    }

    /// The boundaries `keep` (given the unit and bounding box) wants, in file order.
    pub(crate) fn select(mut self, keep: impl Fn(UnitIdx, Option<&Bbox>) -> bool) -> Boundaries {
        let chosen: Vec<(UnitIdx, bool, usize)> =
            self.areas.iter().copied().filter(|&(u, _, k)| keep(u, self.bbox(k).as_ref())).collect();
        let wanted: Vec<usize> = chosen.iter().map(|a| a.2).collect();
        let geoms = self.features.geometries(&wanted);
        Boundaries {
            areas: chosen
                .into_iter()
                .zip(geoms)
                .map(|((unit, derived, _), geometry)| AdminArea { unit, geometry, derived })
                .collect(),
        }
    }
}

/// [`read_boundaries`] but for decoding the geometries.
pub(crate) fn read_boundary_heads(
    path: &Path,
    crs: &Crs,
    divisions: &Divisions,
    rejects: &mut Vec<Reject>,
    notes: &mut Vec<String>,
) -> Result<BoundaryHeads, IngestError> {
    let features = boundary_features(path, crs)?;
    Ok(match_boundaries(path, features, divisions, rejects, notes))
}

/// The features of a boundary file, not yet matched to the divisions (they need none of them:
/// a reader can read both at once).
pub(crate) fn boundary_features(path: &Path, crs: &Crs) -> Result<LazyFeatures, IngestError> {
    ToWgs84::new(crs).map_err(|source| IngestError::Crs { path: path.to_path_buf(), source })?;
    polygon_features_lazy(path, crs)
}

/// [`read_boundary_heads`] of the features [`boundary_features`] read from `path`.
pub(crate) fn match_boundaries(
    path: &Path,
    features: LazyFeatures,
    divisions: &Divisions,
    rejects: &mut Vec<Reject>,
    notes: &mut Vec<String>,
) -> BoundaryHeads {
    let file = file_name(path);
    let mut areas = Vec::new();
    let mut first: HashMap<UnitIdx, usize> = HashMap::new();
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
        let code = json_val(props.get("code")).text().map(|c| c.into_owned()).unwrap_or_default();
        if code.is_empty() {
            reject("", "property `code` is missing or empty".into());
            continue;
        }
        let name = json_val(props.get("name")).text().map(|c| c.into_owned()).unwrap_or_default();
        let level = match json_val(props.get("level")).text().map(|l| l.parse::<Level>()) {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                reject(&code, e.to_string());
                continue;
            }
            None => {
                reject(&code, "property `level` is missing".into());
                continue;
            }
        };
        let derived = match json_val(props.get("derived")) {
            Val::Null => false,
            v => match v.flag("derived") {
                Ok(b) => b.unwrap_or(false),
                Err(e) => {
                    reject(&code, e);
                    continue;
                }
            },
        };
        let Some(stat) = statistical_code(&code, level) else {
            reject(
                &code,
                match level.code_len() {
                    n if n < 6 => format!(
                        "code {code} does not fit a {level} (expected {n} digits, or a 6-digit adcode ending in {})",
                        "0".repeat(6 - n)
                    ),
                    n => format!("code {code} does not fit a {level} (expected {n} digits)"),
                },
            );
            continue;
        };
        let unit = match divisions.find(stat) {
            Some(u) => u,
            None => match match_by_name(divisions, &code, stat, &name, level, json_val(props.get("parent"))) {
                Ok(u) => {
                    notes.push(format!(
                        "boundary {code} {name} ({level}) matched to division {} by name",
                        divisions.get(u).code
                    ));
                    u
                }
                Err(reason) => {
                    reject(&code, reason);
                    continue;
                }
            },
        };
        if let Some(&prev) = first.get(&unit) {
            let d = divisions.get(unit);
            reject(
                &code,
                format!("duplicate boundary for {} {} ({}); the first is feature {prev}", d.code, d.name, d.level),
            );
            continue;
        }
        if let Err(e) = geometry {
            reject(&code, e.clone());
            continue;
        }
        first.insert(unit, row);
        areas.push((unit, derived, k));
    }
    note_missing(divisions, &first, notes);
    BoundaryHeads { features, areas }
}

/// Finds the unit named `name` among the children of the feature's parent.
fn match_by_name(
    divisions: &Divisions,
    code: &str,
    stat: &str,
    name: &str,
    level: Level,
    parent: Val<'_>,
) -> Result<UnitIdx, String> {
    let unknown = format!("code {code} ({level}) is not among the divisions");
    let Some(parent_level) = level.parent() else {
        return Err(unknown);
    };
    if name.is_empty() {
        return Err(format!("{unknown}, and the feature has no name to match by"));
    }
    // The parent as given, mapped to its statistical code; else the prefix of the code.
    let parent_code = match parent.text() {
        Some(p) => match statistical_code(&p, parent_level) {
            Some(s) => s.to_string(),
            None => return Err(format!("{unknown}, and its parent {p} does not fit a {parent_level}")),
        },
        None => stat[..parent_level.code_len()].to_string(),
    };
    let Some(p) = divisions.find(&parent_code) else {
        return Err(format!("{unknown}, nor is its parent {parent_code}"));
    };
    let named = |same: &dyn Fn(&str) -> bool| -> Vec<UnitIdx> {
        divisions.children(p).iter().copied().filter(|&c| same(&divisions.get(c).name)).collect()
    };
    // The same name; else the same name but for the kind of unit it ends in (a county that
    // became a city, 米林县 → 米林市; 西沙区 → 西沙群岛).
    let mut matches = named(&|n| n == name);
    if matches.is_empty() && base_name(name) != name {
        matches = named(&|n| base_name(n) == base_name(name));
    }
    match matches[..] {
        [one] => Ok(one),
        [] => Err(format!("{unknown}, and no child of {parent_code} is named {name}")),
        _ => Err(format!("{unknown}, and {} children of {parent_code} are named {name}", matches.len())),
    }
}

/// A unit's name without the word for its kind at the end (县, 市, 区, 群岛, …), when something
/// is left.
fn base_name(name: &str) -> &str {
    const KINDS: [&str; 6] = ["行政委员会", "群岛", "县", "市", "区", "旗"];
    KINDS.iter().find_map(|k| name.strip_suffix(k).filter(|b| b.chars().count() >= 2)).unwrap_or(name)
}

/// Notes every county-level or higher division without a boundary, with the units below it
/// that can only be located by code: those with no boundary of their own nor between them and
/// it (a city grouping counties that have theirs, 省直辖县级行政区划, locates them all).
fn note_missing(divisions: &Divisions, have: &HashMap<UnitIdx, usize>, notes: &mut Vec<String>) {
    for (u, d) in divisions.iter() {
        if d.level > Level::County || have.contains_key(&u) {
            continue;
        }
        let (mut by_code, mut own) = ([0usize; 5], 0usize);
        let mut stack: Vec<UnitIdx> = divisions.children(u).to_vec();
        while let Some(c) = stack.pop() {
            if have.contains_key(&c) {
                own += 1;
                continue;
            }
            by_code[divisions.get(c).level.index()] += 1;
            stack.extend_from_slice(divisions.children(c));
        }
        let parts: Vec<String> = Level::ALL
            .iter()
            .filter(|l| **l > d.level && by_code[l.index()] > 0)
            .map(|&l| plural(l, by_code[l.index()]))
            .collect();
        let below = match (by_code.iter().sum::<usize>(), own) {
            (0, 0) => "and has no units below it".to_string(),
            (0, n) => format!("the {n} units below it have boundaries of their own"),
            (_, 0) => format!("its {} can only be located by code", join_and(&parts)),
            (_, n) => format!(
                "its {} can only be located by code ({n} units below it have boundaries of their own)",
                join_and(&parts)
            ),
        };
        notes.push(format!("{} {} ({}) has no boundary: {below}", d.code, d.name, d.level));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adcodes_map_to_statistical_codes() {
        assert_eq!(statistical_code("620000", Level::Province), Some("62"));
        assert_eq!(statistical_code("620100", Level::City), Some("6201"));
        assert_eq!(statistical_code("620102", Level::County), Some("620102"));
        assert_eq!(statistical_code("62", Level::Province), Some("62"));
        assert_eq!(statistical_code("6201", Level::City), Some("6201"));
        assert_eq!(statistical_code("620102001", Level::Township), Some("620102001"));
        assert_eq!(statistical_code("620101", Level::City), None);
        assert_eq!(statistical_code("62010", Level::County), None);
        assert_eq!(statistical_code("62a100", Level::City), None);
    }

    #[test]
    fn joins_counts() {
        assert_eq!(join_and(&[plural(Level::Township, 4), plural(Level::Village, 88)]), "4 townships and 88 villages");
        assert_eq!(
            join_and(&[plural(Level::County, 1), plural(Level::Township, 2), plural(Level::Village, 3)]),
            "1 county, 2 townships and 3 villages"
        );
    }
}
