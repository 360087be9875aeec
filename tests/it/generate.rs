//! `generate` + `write_data_folder` end to end: a tiny hand-made province written to a temporary
//! folder and read back with the plain format crates (the real reader lives in `ingest`).
//!
//! The Gansu-scale run is `#[ignore]`d (it is a release-mode measurement):
//! `cargo test --release --test generate -- --ignored --nocapture`.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

use geo::{Contains, MultiPolygon, Validation};
use gridcover::generate::{generate, write_data_folder, GenerateError, GenerateParams, Generated};
use gridcover::model::{AdminArea, Boundaries, Divisions, Level};
use polars::prelude::{DataType, ParquetReader, SerReader};

use super::common::tiny;

fn read_features(path: &Path) -> Vec<geojson::Feature> {
    let text = std::fs::read_to_string(path).unwrap();
    match text.parse::<geojson::GeoJson>().unwrap() {
        geojson::GeoJson::FeatureCollection(fc) => fc.features,
        other => panic!("not a FeatureCollection: {other:?}"),
    }
}

#[test]
fn writes_a_complete_data_folder() {
    let (d, b) = tiny();
    let g = generate(&d, &b, &GenerateParams::new(7, 1_500)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synthetic");
    write_data_folder(&out, &d, &g).unwrap();

    // boundaries.geojson: every area, with codes, parents and the derived flag.
    let features = read_features(&out.join("boundaries.geojson"));
    assert_eq!(features.len(), g.boundaries.areas.len());
    let mut codes = HashSet::new();
    for f in &features {
        let code = f.property("code").unwrap().as_str().unwrap().to_string();
        let unit = d.get(d.find(&code).unwrap());
        assert_eq!(f.property("level").unwrap().as_str().unwrap(), unit.level.as_str());
        assert_eq!(f.property("name").unwrap().as_str().unwrap(), unit.name);
        let parent = f.property("parent").unwrap();
        match unit.parent {
            Some(p) => assert_eq!(parent.as_str().unwrap(), d.get(p).code),
            None => assert!(parent.is_null()),
        }
        let derived = f.property("derived").unwrap().as_bool().unwrap();
        assert_eq!(derived, unit.level >= Level::Township);
        let mp = MultiPolygon::<f64>::try_from(&f.geometry.as_ref().unwrap().value).unwrap();
        assert!(!mp.0.is_empty());
        codes.insert(code);
    }
    for (_, unit) in d.iter().filter(|(_, u)| u.level >= Level::County) {
        assert!(codes.contains(&unit.code), "{} has no boundary", unit.code);
    }

    // divisions.csv: the same rows as the table.
    let mut r = csv::Reader::from_path(out.join("divisions.csv")).unwrap();
    assert_eq!(r.headers().unwrap(), vec!["code", "name", "level", "parent_code"]);
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), d.len());
    assert_eq!(&rows[0][0], "62");
    assert_eq!(&rows[0][3], "");
    assert_eq!(&rows[2][3], "6209");

    // stations.csv.
    let mut r = csv::Reader::from_path(out.join("stations.csv")).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        vec!["id", "name", "level", "code", "lon", "lat", "demonstration", "mobile", "radius_m"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), g.stations.len());
    for row in &rows {
        assert!(row[0].starts_with('S'));
        assert_eq!(row[2].parse::<Level>().unwrap(), d.get(d.find(&row[3]).unwrap()).level);
        let lon: f64 = row[4].parse().unwrap();
        assert!((98.0..=100.4).contains(&lon));
        assert!(["true", "false"].contains(&&row[6]) && ["true", "false"].contains(&&row[7]));
        assert_eq!(&row[8], "");
    }

    // households.parquet: columns and types, every row in a village.
    let df = ParquetReader::new(File::open(out.join("households.parquet")).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 1_500);
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["id", "lon", "lat", "veterans", "code", "difficulty", "martyr_family", "name", "address"]);
    assert_eq!(df.column("lon").unwrap().dtype(), &DataType::Float64);
    assert_eq!(df.column("veterans").unwrap().dtype(), &DataType::UInt32);
    assert_eq!(df.column("difficulty").unwrap().dtype(), &DataType::Boolean);
    let code = df.column("code").unwrap().str().unwrap().clone();
    for c in code.iter() {
        assert_eq!(d.get(d.find(c.unwrap()).unwrap()).level, Level::Village);
    }

    // grids.geojson.
    let grids = read_features(&out.join("grids.geojson"));
    assert_eq!(grids.len(), g.grids.len());
    assert!(!grids.is_empty());
    for f in &grids {
        assert!(f.property("id").unwrap().as_str().unwrap().starts_with('G'));
        assert!(!f.property("worker").unwrap().as_str().unwrap().is_empty());
        assert_eq!(f.property("code").unwrap().as_str().unwrap().len(), 12);
    }

    // gridcover.toml: all WGS84.
    let toml: toml::Table = std::fs::read_to_string(out.join("gridcover.toml")).unwrap().parse().unwrap();
    let crs = toml["crs"].as_table().unwrap();
    assert!(!crs.is_empty() && crs.values().all(|v| v.as_str() == Some("wgs84")));

    // No temporary file is left, and the folder may be regenerated.
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    write_data_folder(&out, &d, &g).unwrap();
}

#[test]
fn never_overwrites_real_input() {
    let (d, b) = tiny();
    let g = generate(&d, &b, &GenerateParams::new(1, 100)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("boundaries.geojson"), "real data").unwrap();
    let err = write_data_folder(dir.path(), &d, &g).unwrap_err();
    assert!(matches!(err, GenerateError::WouldOverwriteInput { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("boundaries.geojson")).unwrap(), "real data");
}

#[test]
fn deterministic_across_runs() {
    let (d, b) = tiny();
    let p = GenerateParams::new(42, 2_000);
    let a = generate(&d, &b, &p).unwrap();
    let c = generate(&d, &b, &p).unwrap();
    assert_eq!(a.households.lon, c.households.lon);
    assert_eq!(a.households.address, c.households.address);
    assert_eq!(a.stations.id, c.stations.id);
    assert_eq!(a.grids.geometry, c.grids.geometry);
}

/// Reads the bundled Gansu divisions and boundaries directly (the GCJ-02 offset, a few hundred
/// metres, does not matter to the generator), reconciling codes the way `ingest` does.
fn load_gansu(root: &Path) -> (Divisions, Boundaries) {
    let mut d = Divisions::new();
    let mut r = csv::Reader::from_path(root.join("divisions.csv")).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        let parent = (!row[3].is_empty()).then(|| &row[3]);
        d.add(&row[0], &row[1], row[2].parse().unwrap(), parent).unwrap();
    }
    let mut b = Boundaries::default();
    for f in read_features(&root.join("boundaries.geojson")) {
        let adcode = f.property("code").unwrap().as_str().unwrap();
        let level: Level = f.property("level").unwrap().as_str().unwrap().parse().unwrap();
        let code = match (level, adcode) {
            (Level::County, "620200") => "620201".to_string(),
            (Level::County, c) => c.to_string(),
            (l, c) => c[..l.code_len()].to_string(),
        };
        let geometry = MultiPolygon::<f64>::try_from(&f.geometry.unwrap().value).unwrap();
        if let Some(unit) = d.find(&code) {
            b.areas.push(AdminArea { unit, geometry, derived: false });
        }
    }
    (d, b)
}

fn summary(g: &Generated, d: &Divisions) -> String {
    let per_level: Vec<String> =
        Level::ALL.iter().map(|&l| format!("{l}: {}", g.stations.level.iter().filter(|&&x| x == l).count())).collect();
    format!("{} units; stations {} ({})", d.len(), g.stations.len(), per_level.join(", "))
}

#[test]
#[ignore = "Gansu scale: run in release with --ignored"]
fn gansu_full_scale() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gansu");
    let t = Instant::now();
    let (d, b) = load_gansu(&root);
    eprintln!("loaded {} units and {} areas in {:.2?}", d.len(), b.areas.len(), t.elapsed());
    let t = Instant::now();
    let g = generate(&d, &b, &GenerateParams::new(1, 800_000)).unwrap();
    let t_gen = t.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    write_data_folder(dir.path(), &d, &g).unwrap();
    let t_write = t.elapsed();
    eprintln!("generate {t_gen:.2?}, write {t_write:.2?}");
    for n in &g.notes {
        eprintln!("note: {n}");
    }
    eprintln!("{}", summary(&g, &d));
    for f in ["boundaries.geojson", "stations.csv", "households.parquet", "grids.geojson"] {
        eprintln!("{f}: {} bytes", std::fs::metadata(dir.path().join(f)).unwrap().len());
    }
    assert_eq!(g.households.len(), 800_000);
    let veterans = g.households.total_veterans();
    assert!((950_000..1_050_000).contains(&veterans), "{veterans}");
    assert!((18_300..19_100).contains(&g.stations.len()), "{}", g.stations.len());
    let demo = g.stations.demonstration.iter().filter(|&&x| x).count();
    assert!((1_400..2_000).contains(&demo), "{demo}");
    assert!(g.notes.iter().any(|n| n.contains("620171")));

    // Every derived polygon is valid; households (a sample) lie in their village.
    let t = Instant::now();
    let mut village_area = std::collections::HashMap::new();
    for a in g.boundaries.areas.iter().filter(|a| a.derived) {
        assert!(!a.geometry.0.is_empty() && a.geometry.is_valid(), "{}", d.get(a.unit).code);
        village_area.insert(a.unit, &a.geometry);
    }
    let h = &g.households;
    for i in (0..h.len()).step_by(97) {
        let v = village_area[&h.code.get(i).unwrap()];
        assert!(v.contains(&geo::Point::new(h.lon[i], h.lat[i])), "{}", &h.id[i]);
    }
    eprintln!("checked validity and containment in {:.2?}", t.elapsed());
}
