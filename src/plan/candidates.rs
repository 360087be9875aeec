//! Candidate sites: villages without a station, grid centroids, H3 cells over the uncovered,
//! or the user's sites (pure computation; [`parse_sites_csv`] reads from any reader).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use geo::{Centroid, Contains, InteriorPoint, MultiPolygon, Point};
use h3o::{LatLng, Resolution};

use super::{CandidateSource, PlanError, Site};
use crate::analysis::Analysis;
use crate::model::{Dataset, Level, UnitIdx, NO_UNIT};

/// A candidate site.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its own id.
    pub id: String,
    /// Name (the village's), or empty.
    pub name: String,
    /// village, grid, h3 or csv.
    pub source: &'static str,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// The finest admin unit containing it ([`NO_UNIT`] when none).
    pub unit: UnitIdx,
}

/// A point inside a polygon: its centroid when that lies inside, else an interior point.
fn inside_point(g: &MultiPolygon<f64>) -> Option<(f64, f64)> {
    if let Some(c) = g.centroid() {
        if g.contains(&c) {
            return Some((c.x(), c.y()));
        }
    }
    g.interior_point().map(|p: Point<f64>| (p.x(), p.y()))
}

/// The H3 resolution used by default: the coarsest whose mean edge is at most a third of the radius.
pub fn default_h3_resolution(radius_m: f64) -> u8 {
    (0..=15u8)
        .find(|&r| Resolution::try_from(r).map(|res| res.edge_length_m() <= radius_m / 3.0).unwrap_or(false))
        .unwrap_or(15)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    ds: &Dataset,
    an: &Analysis,
    level: Level,
    radius: f64,
    src: &CandidateSource,
    covered: &[bool],
    scope: &[u32],
    max_h3_resolution: u8,
) -> Result<Vec<Candidate>, PlanError> {
    let admin = &an.indexes.admin;
    let locate = |lon: f64, lat: f64| admin.locate(lon, lat).unwrap_or(NO_UNIT);
    Ok(match src {
        CandidateSource::Villages => {
            let st = &ds.stations;
            let mut has: HashSet<UnitIdx> = HashSet::new();
            for s in 0..st.len() {
                if !st.active[s] || st.level[s] != level {
                    continue;
                }
                if st.unit[s] != NO_UNIT && ds.divisions.get(st.unit[s]).level == Level::Village {
                    has.insert(st.unit[s]);
                }
                if let Some(v) = admin.locate_at(Level::Village, st.lon[s], st.lat[s]) {
                    has.insert(v);
                }
            }
            let mut area: HashMap<UnitIdx, &MultiPolygon<f64>> = HashMap::new();
            for a in ds.boundaries.at_level(&ds.divisions, Level::Village) {
                area.entry(a.unit).or_insert(&a.geometry);
            }
            // Mean household position of villages without a boundary.
            let mut mean: HashMap<UnitIdx, (f64, f64, f64)> = HashMap::new();
            let hh = &ds.households;
            for (h, &u) in an.assignment.unit.iter().enumerate() {
                if u != NO_UNIT && !area.contains_key(&u) && ds.divisions.get(u).level == Level::Village {
                    let m = mean.entry(u).or_default();
                    m.0 += hh.lon[h];
                    m.1 += hh.lat[h];
                    m.2 += 1.0;
                }
            }
            let mut out = Vec::new();
            for u in ds.divisions.at_level(Level::Village) {
                if has.contains(&u) {
                    continue;
                }
                let p = match area.get(&u) {
                    Some(g) => inside_point(g),
                    None => mean.get(&u).map(|m| (m.0 / m.2, m.1 / m.2)),
                };
                let Some((lon, lat)) = p else { continue };
                let d = ds.divisions.get(u);
                out.push(Candidate { id: d.code.clone(), name: d.name.clone(), source: "village", lon, lat, unit: u });
            }
            out
        }
        CandidateSource::Grids => {
            let g = &ds.grids;
            (0..g.len())
                .filter_map(|i| {
                    let (lon, lat) = inside_point(&g.geometry[i])?;
                    let mut unit = locate(lon, lat);
                    if unit == NO_UNIT {
                        unit = g.unit[i].unwrap_or(NO_UNIT);
                    }
                    Some(Candidate { id: g.id[i].clone(), name: String::new(), source: "grid", lon, lat, unit })
                })
                .collect()
        }
        CandidateSource::H3 { resolution } => {
            // The default follows the radius, no finer than the bounds allow (an explicit
            // resolution is checked by `Bounds::check_plan`).
            let r = resolution.unwrap_or_else(|| default_h3_resolution(radius).min(max_h3_resolution));
            let res = Resolution::try_from(r)
                .map_err(|_| PlanError::BadOption(format!("H3 resolution must be 0 to 15, got {r}")))?;
            let hh = &ds.households;
            let mut cells: Vec<h3o::CellIndex> = scope
                .iter()
                .filter(|&&h| !covered[h as usize])
                .filter_map(|&h| LatLng::new(hh.lat[h as usize], hh.lon[h as usize]).ok().map(|ll| ll.to_cell(res)))
                .collect();
            cells.sort_unstable();
            cells.dedup();
            cells
                .into_iter()
                .map(|c| {
                    let ll = LatLng::from(c);
                    let (lon, lat) = (ll.lng(), ll.lat());
                    Candidate { id: c.to_string(), name: String::new(), source: "h3", lon, lat, unit: locate(lon, lat) }
                })
                .collect()
        }
        CandidateSource::Sites { sites } => {
            let mut seen = HashSet::new();
            let mut out = Vec::with_capacity(sites.len());
            for (k, s) in sites.iter().enumerate() {
                check_site(s).map_err(|reason| PlanError::BadCandidateFile {
                    file: "candidates".into(),
                    row: k + 1,
                    reason,
                })?;
                if !seen.insert(s.id.as_str()) {
                    return Err(PlanError::BadCandidateFile {
                        file: "candidates".into(),
                        row: k + 1,
                        reason: format!("duplicate id {:?}", s.id),
                    });
                }
                out.push(Candidate {
                    id: s.id.clone(),
                    name: String::new(),
                    source: "csv",
                    lon: s.lon,
                    lat: s.lat,
                    unit: locate(s.lon, s.lat),
                });
            }
            out
        }
    })
}

fn check_site(s: &Site) -> Result<(), String> {
    if s.id.trim().is_empty() {
        return Err("empty id".into());
    }
    crate::model::rules::check_lon_lat(s.lon, s.lat)
}

/// Reads candidate sites from CSV with columns `id,lon,lat` (WGS84 degrees; other columns are
/// ignored). `file` names the source in errors, which give the 1-based line (header = 1).
///
/// # Errors
/// A missing column, a row with too few fields, an empty or duplicate id, or a coordinate that
/// is not a number within range; an empty file.
pub fn parse_sites_csv(reader: impl Read, file: &str) -> Result<Vec<Site>, PlanError> {
    let err = |row: usize, reason: String| PlanError::BadCandidateFile { file: file.to_string(), row, reason };
    let mut rd = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(reader);
    let headers = rd.headers().map_err(|e| err(1, format!("cannot read the header: {e}")))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
            .ok_or_else(|| err(1, format!("missing column {name:?} (expected id,lon,lat)")))
    };
    let (ci, cx, cy) = (col("id")?, col("lon")?, col("lat")?);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (k, rec) in rd.records().enumerate() {
        let line = k + 2;
        let rec = rec.map_err(|e| err(line, format!("unreadable row: {e}")))?;
        let field = |c: usize, name: &str| rec.get(c).ok_or_else(|| err(line, format!("no {name} field")));
        let id = field(ci, "id")?.to_string();
        let num = |c: usize, name: &str| -> Result<f64, PlanError> {
            let t = field(c, name)?;
            t.parse::<f64>().map_err(|_| err(line, format!("{name} {t:?} is not a number")))
        };
        let site = Site { id, lon: num(cx, "lon")?, lat: num(cy, "lat")? };
        check_site(&site).map_err(|r| err(line, r))?;
        if !seen.insert(site.id.clone()) {
            return Err(err(line, format!("duplicate id {:?}", site.id)));
        }
        out.push(site);
    }
    if out.is_empty() {
        return Err(err(0, "no candidate sites in the file".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_errors_name_the_row() {
        let ok = parse_sites_csv("id,lon,lat\nA,100.1,40.2\nB, 100.2 ,40.3\n".as_bytes(), "c.csv").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1], Site { id: "B".into(), lon: 100.2, lat: 40.3 });
        let e = parse_sites_csv("id,lon,lat\nA,100.1,40.2\nB,x,40.3\n".as_bytes(), "c.csv").unwrap_err();
        assert_eq!(e.to_string(), "c.csv row 3: lon \"x\" is not a number");
        let e = parse_sites_csv("id,lon,lat\nA,100.1,40.2\nA,100.1,40.2\n".as_bytes(), "c.csv").unwrap_err();
        assert_eq!(e.to_string(), "c.csv row 3: duplicate id \"A\"");
        let e = parse_sites_csv("id,x,lat\nA,1,2\n".as_bytes(), "c.csv").unwrap_err();
        assert!(e.to_string().contains("row 1: missing column \"lon\""), "{e}");
        let e = parse_sites_csv("id,lon,lat\nA,200,40\n".as_bytes(), "c.csv").unwrap_err();
        assert!(e.to_string().contains("row 2: longitude 200"), "{e}");
        let e = parse_sites_csv("id,lon,lat\nA,100\n".as_bytes(), "c.csv").unwrap_err();
        assert!(e.to_string().contains("row 2: no lat field"), "{e}");
        let e = parse_sites_csv("id,lon,lat\n".as_bytes(), "c.csv").unwrap_err();
        assert!(e.to_string().contains("no candidate sites"), "{e}");
    }

    #[test]
    fn h3_resolution_follows_radius() {
        // Res 8 cells have 0.53 km mean edges (h3o), a third of 2 km is 0.67 km.
        assert_eq!(default_h3_resolution(2_000.0), 8);
        assert!(default_h3_resolution(20_000.0) < 8);
    }
}
