//! Writing a grid design of [`crate::design`] (I/O): `grids.geojson` in the data-folder format,
//! `grids_summary.json` and a printed table of grid sizes.

use std::path::Path;

use geojson::{Feature, FeatureCollection, Geometry, JsonObject};
use serde_json::{json, Value};

use super::{write_bytes, OutputError};
use crate::design::{area_km2, Take, UnitDesign};
use crate::model::Dataset;

/// The ids of the designed grids: `G<code>-<n>` (as generated grids are named) for a design of
/// the whole unit; `G<code>-U<n>` for ungridded households, with a suffix where an existing grid
/// has the id already.
pub fn grid_ids(ds: &Dataset, design: &UnitDesign) -> Vec<String> {
    let code = &ds.divisions.get(design.unit).code;
    let existing: std::collections::HashSet<&str> = ds.grids.id.iter().map(String::as_str).collect();
    (1..=design.grids.len())
        .map(|n| {
            let base = match design.take {
                Take::All => format!("G{code}-{n}"),
                Take::UngriddedOnly => format!("G{code}-U{n}"),
            };
            if design.take == Take::All || !existing.contains(base.as_str()) {
                return base;
            }
            (2..).map(|k| format!("{base}-{k}")).find(|c| !existing.contains(c.as_str())).expect("a free id")
        })
        .collect()
}

/// The summary of a design as JSON (also written to `grids_summary.json`).
pub fn summary(ds: &Dataset, design: &UnitDesign, seconds: f64) -> Value {
    let div = ds.divisions.get(design.unit);
    let ids = grid_ids(ds, design);
    let sizes: Vec<usize> = design.grids.iter().map(|g| g.households.len()).collect();
    let n: usize = sizes.iter().sum();
    let vets: u64 = design.grids.iter().map(|g| g.veterans).sum();
    let mean = n as f64 / sizes.len().max(1) as f64;
    let sd = (sizes.iter().map(|&s| (s as f64 - mean).powi(2)).sum::<f64>() / sizes.len().max(1) as f64).sqrt();
    let grids: Vec<Value> = design
        .grids
        .iter()
        .zip(&ids)
        .map(|(g, id)| {
            json!({
                "id": id,
                "households": g.households.len(),
                "veterans": g.veterans,
                "parts": g.parts,
                "area_km2": (area_km2(&g.geometry) * 1000.0).round() / 1000.0,
                "over_cap": g.over_cap,
            })
        })
        .collect();
    json!({
        "unit": { "code": div.code, "name": div.name, "level": div.level },
        "take": design.take,
        "caps": design.caps,
        "households": n,
        "veterans": vets,
        "grids": design.grids.len(),
        "lower_bound": design.lower_bound,
        "households_per_grid": {
            "min": sizes.iter().min(),
            "max": sizes.iter().max(),
            "mean": (mean * 10.0).round() / 10.0,
            "sd": (sd * 10.0).round() / 10.0,
        },
        "over_cap": design.grids.iter().filter(|g| g.over_cap).count(),
        "multi_part": design.grids.iter().filter(|g| g.parts > 1).count(),
        "outside_region": {
            "households": design.outside.len(),
            "ids": design.outside.iter().map(|&h| ds.households.id[h as usize].to_string()).collect::<Vec<_>>(),
        },
        "region_km2": (area_km2(&design.region) * 1000.0).round() / 1000.0,
        "seconds": seconds,
        "sizes": grids,
    })
}

/// Writes `OUT/grids.geojson` (properties `id`, `worker` left empty for assignment, `code`,
/// plus `households` and `veterans`) and `OUT/grids_summary.json`; returns the summary.
///
/// # Errors
/// The folder or a file cannot be written.
pub fn write_design(out: &Path, ds: &Dataset, design: &UnitDesign, seconds: f64) -> Result<Value, OutputError> {
    std::fs::create_dir_all(out).map_err(|source| OutputError::Io { path: out.to_path_buf(), source })?;
    let code = ds.divisions.get(design.unit).code.clone();
    let features: Vec<Feature> = design
        .grids
        .iter()
        .zip(grid_ids(ds, design))
        .map(|(g, id)| {
            let mut p = JsonObject::new();
            p.insert("id".into(), json!(id));
            p.insert("worker".into(), json!(""));
            p.insert("code".into(), json!(code));
            p.insert("households".into(), json!(g.households.len()));
            p.insert("veterans".into(), json!(g.veterans));
            Feature {
                bbox: None,
                geometry: Some(Geometry::from(&g.geometry)),
                id: None,
                properties: Some(p),
                foreign_members: None,
            }
        })
        .collect();
    let fc = FeatureCollection { bbox: None, features, foreign_members: None };
    let path = out.join("grids.geojson");
    write_bytes(&path, fc.to_string().as_bytes())?;
    let s = summary(ds, design, seconds);
    let path = out.join("grids_summary.json");
    let text = serde_json::to_string_pretty(&s)
        .map_err(|e| OutputError::Encode { path: path.clone(), message: e.to_string() })?;
    write_bytes(&path, text.as_bytes())?;
    Ok(s)
}

/// A readable table of the grids of a design.
pub fn table(ds: &Dataset, design: &UnitDesign) -> String {
    let div = ds.divisions.get(design.unit);
    let mut s = String::new();
    let take = match design.take {
        Take::All => "all households",
        Take::UngriddedOnly => "households outside every existing grid",
    };
    s.push_str(&format!(
        "{} {} ({}): {} grids for {} households ({take}; at least {} needed; cap {} households{})\n",
        div.code,
        div.name,
        div.level.zh(),
        design.grids.len(),
        design.grids.iter().map(|g| g.households.len()).sum::<usize>(),
        design.lower_bound,
        design.caps.max_households,
        design.caps.max_veterans.map(|v| format!(", {v} veterans")).unwrap_or_default(),
    ));
    s.push_str(&format!("{:<28} {:>10} {:>8} {:>6} {:>9}\n", "grid", "households", "veterans", "parts", "km²"));
    for (g, id) in design.grids.iter().zip(grid_ids(ds, design)) {
        s.push_str(&format!(
            "{:<28} {:>10} {:>8} {:>6} {:>9.3}{}\n",
            id,
            g.households.len(),
            g.veterans,
            g.parts,
            area_km2(&g.geometry),
            if g.over_cap { "  over the cap: households on one spot" } else { "" }
        ));
    }
    if !design.outside.is_empty() {
        s.push_str(&format!(
            "{} households of the unit lie outside its boundary (placed by their code) and are in no grid; see grids_summary.json\n",
            design.outside.len()
        ));
    }
    s
}
