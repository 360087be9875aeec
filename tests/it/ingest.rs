//! Integration tests of reading a data folder: the hand-made fixtures under
//! `tests/fixtures/ingest/` (written by `make_fixtures.py` there), temporary files for the
//! fatal cases, and the real Gansu boundaries and divisions.

use std::path::{Path, PathBuf};

use gridcover::crs::{wgs84_to_gcj02, Crs};
use gridcover::ingest::*;
use gridcover::model::{Bbox, Divisions, Level, Reject};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ingest").join(name)
}

/// The reject of `file` at `row`, which must exist and be the only one there.
fn reject_at<'a>(rejects: &'a [Reject], file: &str, row: usize) -> &'a Reject {
    let found: Vec<&Reject> = rejects.iter().filter(|r| r.file == file && r.row == row).collect();
    assert_eq!(found.len(), 1, "expected one reject at {file}:{row}, got {found:?}\nall: {rejects:#?}");
    found[0]
}

fn assert_reject(rejects: &[Reject], file: &str, row: usize, id: &str, needle: &str) {
    let r = reject_at(rejects, file, row);
    assert_eq!(r.id, id, "id of {r:?}");
    assert!(r.reason.contains(needle), "reason of {file}:{row} is {:?}, expected it to contain {needle:?}", r.reason);
}

fn tiny_divisions() -> Divisions {
    let mut rejects = Vec::new();
    let d = read_divisions(&fixture("tiny/divisions.csv"), &mut rejects).unwrap();
    assert!(rejects.is_empty(), "{rejects:?}");
    d
}

#[test]
fn reads_the_tiny_folder() {
    let ds = read_data_folder(&fixture("tiny")).unwrap();
    assert!(ds.rejects.is_empty(), "{:#?}", ds.rejects);
    assert_eq!(ds.divisions.len(), 16);
    assert_eq!(ds.divisions.count(Level::County), 4);
    // province, 2 cities, 3 counties (关市's county boundary 990200 reconciled to 990201)
    assert_eq!(ds.boundaries.areas.len(), 6);
    assert_eq!(ds.boundaries.at_level(&ds.divisions, Level::County).count(), 3);
    let guan = ds.divisions.find("990201").unwrap();
    assert!(ds.boundaries.areas.iter().any(|a| a.unit == guan));
    assert_eq!(
        ds.notes,
        vec![
            "boundary 990200 关市 (county) matched to division 990201 by name".to_string(),
            "990103 新区 (county) has no boundary: its 1 township and 2 villages can only be located by code"
                .to_string(),
        ]
    );
    // stations
    let s = &ds.stations;
    assert_eq!(s.len(), 6);
    assert_eq!(s.id, ["S1", "S2", "S3", "S4", "S5", "S6"]);
    assert_eq!(s.level[4], Level::Township);
    assert_eq!(ds.divisions.get(s.unit[2]).code, "990101");
    assert_eq!((s.lon[0], s.lat[0]), (103.75, 36.25));
    assert_eq!(s.demonstration, [true, true, true, true, false, false]);
    assert_eq!(s.mobile, [false, false, false, false, true, false]);
    assert_eq!(s.radius_m[3], Some(25_000.0));
    assert_eq!(s.radius_m[0], None);
    assert!(s.active.iter().all(|&a| a));
    // households
    let h = &ds.households;
    assert_eq!(h.len(), 4);
    assert_eq!(h.total_veterans(), 7);
    assert_eq!(h.code.get(2), None);
    assert_eq!(ds.divisions.get(h.code.get(3).unwrap()).code, "990103001001");
    assert_eq!(h.difficulty, [false, true, false, false]);
    assert_eq!(h.martyr_family, [false, false, true, false]);
    assert_eq!(h.name.get(0), Some("张三"));
    assert_eq!(h.name.get(1), None);
    assert_eq!(h.address.get(3), Some("新区 \"一\"号"));
    // grids
    assert_eq!(ds.grids.len(), 3);
    assert_eq!(ds.grids.worker[1], "赵六");
    assert_eq!(ds.grids.unit[2], None);
    // the standard from gridcover.toml
    assert_eq!(ds.standard.village_radius_m, 1500.0);
    assert_eq!(ds.standard.county_radius_m, 20_000.0);
}

#[test]
fn gcj02_inputs_come_back_to_wgs84() {
    let wgs = read_data_folder(&fixture("tiny")).unwrap();
    let gcj = read_data_folder(&fixture("tiny_gcj02")).unwrap();
    assert!(gcj.rejects.is_empty(), "{:#?}", gcj.rejects);
    assert_eq!(gcj.notes, wgs.notes);
    assert_eq!(gcj.boundaries.areas.len(), wgs.boundaries.areas.len());
    for (a, b) in gcj.boundaries.areas.iter().zip(&wgs.boundaries.areas) {
        assert_eq!(a.unit, b.unit);
        let ca: Vec<_> = a.geometry.0[0].exterior().0.clone();
        let cb: Vec<_> = b.geometry.0[0].exterior().0.clone();
        assert_eq!(ca.len(), cb.len());
        for (p, q) in ca.iter().zip(&cb) {
            assert!((p.x - q.x).abs() < 1e-9 && (p.y - q.y).abs() < 1e-9, "{p:?} vs {q:?}");
        }
    }
    // stations.geojson in GCJ-02, converted back
    assert_eq!(gcj.stations.id, wgs.stations.id);
    for i in 0..wgs.stations.len() {
        assert!((gcj.stations.lon[i] - wgs.stations.lon[i]).abs() < 1e-9);
        assert!((gcj.stations.lat[i] - wgs.stations.lat[i]).abs() < 1e-9);
    }
    assert_eq!(gcj.stations.radius_m, wgs.stations.radius_m);
    assert_eq!(gcj.stations.demonstration, wgs.stations.demonstration);
    // households were declared EPSG:4326: unchanged
    assert_eq!(gcj.households.lon, wgs.households.lon);
    // no grids file: empty
    assert!(gcj.grids.is_empty());
}

#[test]
fn gcj02_boundaries_read_as_wgs84_are_offset() {
    // Reading the GCJ-02 file as if it were WGS84 leaves the offset in: a check that the CRS
    // matters, and that the fixture really is in GCJ-02.
    let d = tiny_divisions();
    let (mut rejects, mut notes) = (Vec::new(), Vec::new());
    let b =
        read_boundaries(&fixture("tiny_gcj02/boundaries.geojson"), &Crs::Wgs84, &d, &mut rejects, &mut notes).unwrap();
    let p = b.areas[0].geometry.0[0].exterior().0[0];
    let (gx, gy) = wgs84_to_gcj02(103.0, 36.0);
    assert!((p.x - gx).abs() < 1e-12 && (p.y - gy).abs() < 1e-12);
    assert!((p.x - 103.0).abs() > 1e-3);
}

#[test]
fn bad_stations_are_rejected_row_by_row() {
    let dir = fixture("bad");
    let mut rejects = Vec::new();
    let d = read_divisions(&dir.join("divisions.csv"), &mut rejects).unwrap();
    let mut notes = Vec::new();
    let b = read_boundaries(&dir.join("boundaries.geojson"), &Crs::Wgs84, &d, &mut rejects, &mut notes).unwrap();
    let ext = Bbox::of(&b).unwrap();
    rejects.clear();
    let s = read_stations(&dir, &Crs::Wgs84, &d, Some(&ext), &mut rejects).unwrap();
    assert_eq!(s.id, ["S1", "S13"]);
    assert_eq!(s.radius_m[1], Some(3000.0));
    let f = "stations.csv";
    assert_reject(&rejects, f, 3, "S2", "lon \"abc\" is not a number");
    assert_reject(&rejects, f, 4, "S3", "coordinate out of range");
    assert_reject(&rejects, f, 5, "S4", "lat and lon look swapped");
    assert_reject(&rejects, f, 6, "S5", "lat is not a finite number (NaN)");
    assert_reject(&rejects, f, 7, "S1", "duplicate id S1 (first on line 2)");
    assert_reject(&rejects, f, 8, "S6", "unknown admin code 990199");
    assert_reject(&rejects, f, 9, "S7", "code 990101 is a county, but the station's level is township");
    assert_reject(&rejects, f, 10, "S8", "unknown level \"hamlet\"");
    assert_reject(&rejects, f, 11, "", "wrong number of fields: 3, expected 9");
    assert_reject(&rejects, f, 12, "S10", "outside the boundaries' bounding box expanded by 1°");
    assert_reject(&rejects, f, 13, "", "id is empty");
    assert_reject(&rejects, f, 14, "S11", "mobile \"maybe\" is not a yes/no value");
    assert_reject(&rejects, f, 15, "S12", "radius_m must be a number of metres from 100 to 100000 metres");
    assert_eq!(rejects.len(), 13, "{rejects:#?}");
}

#[test]
fn bad_households_are_rejected_row_by_row() {
    let dir = fixture("bad");
    let d = tiny_divisions();
    let mut rejects = Vec::new();
    let b =
        read_boundaries(&fixture("tiny/boundaries.geojson"), &Crs::Wgs84, &d, &mut rejects, &mut Vec::new()).unwrap();
    let ext = Bbox::of(&b).unwrap();
    let h = read_households(&dir, &Crs::Wgs84, &d, Some(&ext), &mut rejects).unwrap();
    assert_eq!(h.id, ["H1", "H10"]);
    assert_eq!(d.get(h.code.get(1).unwrap()).code, "990102");
    let f = "households.csv";
    assert_reject(&rejects, f, 3, "H2", "veterans must be a positive integer, got \"0\"");
    assert_reject(&rejects, f, 4, "H3", "veterans must be a positive integer, got \"1.5\"");
    assert_reject(&rejects, f, 5, "H4", "lat is empty");
    assert_reject(&rejects, f, 6, "H5", "unknown admin code 990101001999");
    assert_reject(&rejects, f, 7, "H1", "duplicate id H1 (first on line 2)");
    assert_reject(&rejects, f, 8, "H6", "lat and lon look swapped");
    assert_reject(&rejects, f, 9, "H7", "lon is not a finite number (inf)");
    assert_reject(&rejects, f, 10, "", "wrong number of fields: 3, expected 5");
    assert_reject(&rejects, f, 11, "H9", "coordinate out of range");
    assert_eq!(rejects.len(), 9, "{rejects:#?}");
}

#[test]
fn bad_boundaries_are_rejected_feature_by_feature() {
    let dir = fixture("bad");
    let d = tiny_divisions();
    let (mut rejects, mut notes) = (Vec::new(), Vec::new());
    let b = read_boundaries(&dir.join("boundaries.geojson"), &Crs::Wgs84, &d, &mut rejects, &mut notes).unwrap();
    assert_eq!(b.areas.len(), 4);
    let f = "boundaries.geojson";
    assert_reject(
        &rejects,
        f,
        5,
        "990102",
        "invalid geometry: polygon at index 0 is invalid: exterior ring has a self-intersection",
    );
    assert_reject(&rejects, f, 6, "990101", "duplicate boundary for 990101 东县 (county); the first is feature 4");
    assert_reject(&rejects, f, 7, "990199", "no child of 9901 is named 不存在县");
    assert_reject(&rejects, f, 8, "990103", "exterior ring has 3 positions; a closed ring needs at least 4");
    assert_reject(&rejects, f, 9, "990103", "out of range");
    assert_reject(&rejects, f, 10, "990103", "geometry is a Point, expected a Polygon or MultiPolygon");
    assert_reject(&rejects, f, 11, "", "property `code` is missing");
    assert_reject(&rejects, f, 12, "990201", "interior ring at index 0 is not contained within the polygon's exterior");
    assert_eq!(rejects.len(), 8, "{rejects:#?}");
    // the counties left without a boundary are noted
    assert_eq!(
        notes,
        vec![
            "990102 西县 (county) has no boundary: its 1 township and 1 village can only be located by code",
            "990103 新区 (county) has no boundary: its 1 township and 2 villages can only be located by code",
            "990201 关市 (county) has no boundary: its 1 township and 1 village can only be located by code",
        ]
    );
}

#[test]
fn bad_grids_are_rejected_feature_by_feature() {
    let d = tiny_divisions();
    let mut rejects = Vec::new();
    let g = read_grids(&fixture("bad/grids.geojson"), &Crs::Wgs84, &d, &mut rejects).unwrap();
    assert_eq!(g.id, ["G1"]);
    let f = "grids.geojson";
    assert_reject(&rejects, f, 2, "G1", "duplicate id G1 (first on feature 1)");
    assert_reject(&rejects, f, 3, "G2", "self-intersection");
    assert_reject(&rejects, f, 4, "G3", "unknown admin code 990999");
    assert_reject(&rejects, f, 5, "G4", "worker is empty");
    assert_reject(&rejects, f, 6, "G5", "polygons at indices 0 and 1 overlap");
    assert_eq!(rejects.len(), 5, "{rejects:#?}");
}

#[test]
fn bad_divisions_are_rejected_and_no_province_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("divisions.csv");
    std::fs::write(
        &p,
        "code,name,level,parent_code\n\
         6201,兰州市,city,62\n\
         62,甘肃省,province,\n\
         620102,城关区,hamlet,6201\n\
         62010,短码,county,6201\n\
         620103,七里河区,county,6299\n\
         6201,兰州市,city,62\n\
         620104,西固区,county,62\n",
    )
    .unwrap();
    let mut rejects = Vec::new();
    let d = read_divisions(&p, &mut rejects).unwrap();
    assert_eq!(d.len(), 2, "{rejects:#?}");
    assert_eq!(d.get(d.find("6201").unwrap()).parent, d.find("62"));
    let f = "divisions.csv";
    assert_reject(&rejects, f, 4, "620102", "unknown level \"hamlet\"");
    assert_reject(&rejects, f, 5, "62010", "must have 6 digits");
    assert_reject(&rejects, f, 6, "620103", "parent code 6299 of 620103 is not a known division");
    assert_reject(&rejects, f, 7, "6201", "duplicate code 6201 (first on line 2)");
    assert_reject(&rejects, f, 8, "620104", "parent 62 of 620104 is a province, expected a city");

    std::fs::write(&p, "code,name,level,parent_code\n6201,兰州市,city,62\n").unwrap();
    let e = read_divisions(&p, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, IngestError::NoProvince { .. }));
    assert!(e.to_string().contains(&p.display().to_string()) && e.to_string().contains("no province"), "{e}");
}

/// A folder with the tiny divisions and boundaries, for the fatal cases.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["divisions.csv", "boundaries.geojson", "households.csv", "stations.csv"] {
        std::fs::copy(fixture("tiny").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn a_missing_column_is_fatal_and_named() {
    let dir = scratch();
    let p = dir.path().join("stations.csv");
    std::fs::write(&p, "id,name,level,code,lon,demonstration,mobile\nS1,x,province,99,103.7,1,0\n").unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, IngestError::MissingColumn { ref column, .. } if column == "lat"), "{m}");
    assert!(m.contains(&p.display().to_string()), "{m}");
    assert!(
        m.contains("`lat`") && m.contains("columns found: id, name, level, code, lon, demonstration, mobile"),
        "{m}"
    );
}

#[test]
fn a_bom_and_padded_headers_are_fine() {
    let dir = scratch();
    std::fs::write(dir.path().join("households.csv"), "\u{feff}id , lon,lat ,veterans\nH1, 103.71 ,36.31,2\n").unwrap();
    let ds = read_data_folder(dir.path()).unwrap();
    assert!(ds.rejects.is_empty(), "{:?}", ds.rejects);
    assert_eq!(ds.households.id, ["H1"]);
    assert_eq!(ds.households.lon, [103.71]);
}

#[test]
fn malformed_files_are_fatal() {
    // not GeoJSON
    let dir = scratch();
    let p = dir.path().join("boundaries.geojson");
    std::fs::write(&p, "this is not json").unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(matches!(e, IngestError::GeoJson { .. }), "{e}");
    assert!(e.to_string().contains(&p.display().to_string()) && e.to_string().contains("not valid JSON"), "{e}");
    // GeoJSON but not a FeatureCollection
    std::fs::write(&p, r#"{"type":"Point","coordinates":[1,2]}"#).unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(e.to_string().contains("the top-level object is a Point"), "{e}");
    // not Parquet
    let dir = scratch();
    std::fs::remove_file(dir.path().join("households.csv")).unwrap();
    let p = dir.path().join("households.parquet");
    std::fs::write(&p, "id,lon,lat,veterans\n").unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(matches!(e, IngestError::Parquet { .. }), "{e}");
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    // a missing file
    let dir = scratch();
    std::fs::remove_file(dir.path().join("divisions.csv")).unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(matches!(e, IngestError::Io { .. }), "{e}");
    assert!(e.to_string().contains("divisions.csv"), "{e}");
    // no stations at all, or two stations files
    let dir = scratch();
    std::fs::remove_file(dir.path().join("stations.csv")).unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(e.to_string().contains("stations.csv, stations.geojson, stations.parquet"), "{e}");
    std::fs::copy(fixture("tiny/stations.csv"), dir.path().join("stations.csv")).unwrap();
    std::fs::copy(fixture("tiny_gcj02/stations.geojson"), dir.path().join("stations.geojson")).unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(matches!(e, IngestError::AmbiguousInput { .. }), "{e}");
    // a CSV with an unterminated quote at the end is still read row by row; a CSV that is
    // binary garbage fails on its rows, not silently
    let dir = scratch();
    std::fs::write(dir.path().join("households.csv"), b"id,lon,lat,veterans\nH1,103.7,36.3,1\n\xff\xfe,1,2,3\n")
        .unwrap();
    let ds = read_data_folder(dir.path()).unwrap();
    assert_eq!(ds.households.id, ["H1"]);
    assert_reject(&ds.rejects, "households.csv", 3, "", "not valid UTF-8");
}

#[test]
fn an_unknown_epsg_code_is_fatal() {
    let dir = scratch();
    std::fs::write(dir.path().join("gridcover.toml"), "[crs]\nstations = \"EPSG:999999\"\n").unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(matches!(e, IngestError::Crs { .. }), "{e}");
    assert!(e.to_string().contains("stations.csv") && e.to_string().contains("EPSG:999999"), "{e}");
}

#[test]
fn households_in_a_projected_crs() {
    // EPSG:4523: CGCS2000 / 3-degree Gauss-Kruger zone 35, central meridian 105°E, false
    // easting 35 500 000 m (zone number prefixed).
    let dir = scratch();
    std::fs::write(dir.path().join("gridcover.toml"), "[crs]\nhouseholds = \"EPSG:4523\"\n").unwrap();
    // On the central meridian x = 35 500 000 is 105°E (and y = 4 000 000 m of meridian arc
    // is 36.13029°N, see the crs tests); 117 km west at that latitude is ~1.30° of longitude.
    std::fs::write(
        dir.path().join("households.csv"),
        "id,lon,lat,veterans\nH1,35500000,4000000,1\nH2,35383000,4000000,1\n",
    )
    .unwrap();
    let ds = read_data_folder(dir.path()).unwrap();
    // H1 lies at 105°E, within the tiny province's box (103–104.5°E) expanded by 1°.
    assert!(ds.rejects.is_empty(), "{:?}", ds.rejects);
    assert!((ds.households.lon[0] - 105.0).abs() < 1e-9);
    assert!((ds.households.lat[0] - 36.13029).abs() < 2e-5);
    assert!((ds.households.lon[1] - 103.7).abs() < 0.02, "{}", ds.households.lon[1]);
}

#[test]
fn parquet_households_round_trip() {
    use polars::prelude::*;
    let dir = scratch();
    std::fs::remove_file(dir.path().join("households.csv")).unwrap();
    let mut df = df!(
        "id" => ["P1", "P2", "P3", "P4", "P1"],
        "lon" => [103.71, 103.21, 36.3, 103.6, 103.7],
        "lat" => [36.31, 36.11, 103.7, f64::NAN, 36.3],
        "veterans" => [1i64, 2, 1, 1, 1],
        "code" => [Some("990101001001"), None, None, None, None],
        "difficulty" => [Some(true), Some(false), None, None, None],
        "martyr_family" => [0i32, 1, 0, 0, 0],
        "name" => [Some("张三"), None, None, None, None],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("households.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    let ds = read_data_folder(dir.path()).unwrap();
    let h = &ds.households;
    assert_eq!(h.id, ["P1", "P2"]);
    assert_eq!(h.lon, [103.71, 103.21]);
    assert_eq!(h.veterans, [1, 2]);
    assert_eq!(ds.divisions.get(h.code.get(0).unwrap()).code, "990101001001");
    assert_eq!(h.difficulty, [true, false]);
    assert_eq!(h.martyr_family, [false, true]);
    assert_eq!(h.name.iter().collect::<Vec<_>>(), [Some("张三"), None]);
    let f = "households.parquet";
    assert_reject(&ds.rejects, f, 3, "P3", "lat and lon look swapped");
    assert_reject(&ds.rejects, f, 4, "P4", "lat is not a finite number (NaN)");
    assert_reject(&ds.rejects, f, 5, "P1", "duplicate id P1 (first on row 1)");
    assert_eq!(ds.rejects.len(), 3);
}

#[test]
fn parquet_with_a_wrong_column_type_is_fatal() {
    use polars::prelude::*;
    let dir = scratch();
    std::fs::remove_file(dir.path().join("households.csv")).unwrap();
    let mut df = df!("id" => ["P1"], "lon" => [103.7], "lat" => [36.3]).unwrap();
    let file = std::fs::File::create(dir.path().join("households.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    let e = read_data_folder(dir.path()).unwrap_err();
    assert!(matches!(e, IngestError::MissingColumn { ref column, .. } if column == "veterans"), "{e}");
}

#[test]
fn real_gansu_boundaries_and_divisions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gansu");
    let mut rejects = Vec::new();
    let d = read_divisions(&dir.join("divisions.csv"), &mut rejects).unwrap();
    assert!(rejects.is_empty(), "{rejects:?}");
    let counts: Vec<usize> = Level::ALL.iter().map(|&l| d.count(l)).collect();
    assert_eq!(counts, [1, 14, 88, 1403, 17718]);
    let mut notes = Vec::new();
    let t = std::time::Instant::now();
    let b = read_boundaries(&dir.join("boundaries.geojson"), &Crs::Gcj02, &d, &mut rejects, &mut notes).unwrap();
    eprintln!("read Gansu boundaries in {:?}", t.elapsed());
    assert!(rejects.is_empty(), "{rejects:#?}");
    let areas: Vec<usize> =
        [Level::Province, Level::City, Level::County].iter().map(|&l| b.at_level(&d, l).count()).collect();
    assert_eq!(areas, [1, 14, 87]);
    assert_eq!(
        notes,
        vec![
            "boundary 620200 嘉峪关市 (county) matched to division 620201 by name".to_string(),
            "620171 兰州新区 (county) has no boundary: its 4 townships and 88 villages can only be located by code"
                .to_string(),
        ]
    );
    let jyg = d.find("620201").unwrap();
    assert!(b.areas.iter().any(|a| a.unit == jyg));
    // converted out of GCJ-02: the province's box moved by a few hundred metres, and lies
    // where Gansu is (92°13'–108°46'E, 32°11'–42°57'N).
    let e = Bbox::of(&b).unwrap();
    assert!(e.min_x > 92.0 && e.max_x < 109.0 && e.min_y > 32.0 && e.max_y < 43.0, "{e:?}");
}

/// A square feature of the given code, name, level and parent around (lon, lat).
fn square(code: &str, name: &str, level: &str, parent: &str, lon: f64, lat: f64) -> String {
    let (a, b, c, d) = (lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1);
    format!(
        r#"{{"type":"Feature","properties":{{"code":"{code}","name":"{name}","level":"{level}","parent":{parent}}},"geometry":{{"type":"Polygon","coordinates":[[[{a},{b}],[{c},{b}],[{c},{d}],[{a},{d}],[{a},{b}]]]}}}}"#
    )
}

#[test]
fn renamed_counties_match_by_name_and_groupings_are_noted_truly() {
    // 9901 groups counties that have boundaries of their own (as 省直辖县级行政区划 does); 990101
    // 米林县 became 990181 米林市 and 990102 西沙区 is 990182 西沙群岛 in the divisions; 990183 has
    // no boundary and its township can only be located by code.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("divisions.csv"),
        "code,name,level,parent_code\n99,测试省,province,\n9901,省直辖县级行政区划,city,99\n\
         990181,米林市,county,9901\n990182,西沙群岛,county,9901\n990183,东县,county,9901\n\
         990183001,东镇,township,990183\n990181001,米镇,township,990181\n",
    )
    .unwrap();
    let features = [
        square("990000", "测试省", "province", "null", 100.0, 30.0),
        square("990101", "米林县", "county", "\"990100\"", 100.0, 30.0),
        square("990102", "西沙区", "county", "\"990100\"", 100.5, 30.0),
        square("990103", "南县", "county", "\"990100\"", 101.0, 30.0),
    ];
    std::fs::write(
        dir.path().join("boundaries.geojson"),
        format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(",")),
    )
    .unwrap();
    let mut rejects = Vec::new();
    let d = read_divisions(&dir.path().join("divisions.csv"), &mut rejects).unwrap();
    let mut notes = Vec::new();
    let b = read_boundaries(&dir.path().join("boundaries.geojson"), &Crs::Wgs84, &d, &mut rejects, &mut notes).unwrap();
    let codes: Vec<&str> = b.areas.iter().map(|a| d.get(a.unit).code.as_str()).collect();
    assert_eq!(codes, ["99", "990181", "990182"]);
    assert_eq!(rejects.len(), 1, "{rejects:#?}");
    assert_reject(&rejects, "boundaries.geojson", 4, "990103", "no child of 9901 is named 南县");
    assert_eq!(
        notes,
        vec![
            "boundary 990101 米林县 (county) matched to division 990181 by name",
            "boundary 990102 西沙区 (county) matched to division 990182 by name",
            "9901 省直辖县级行政区划 (city) has no boundary: its 1 county and 1 township can only be located by code (2 units below it have boundaries of their own)",
            "990183 东县 (county) has no boundary: its 1 township can only be located by code",
        ]
    );
}

#[test]
fn ledgers_and_needs_in_either_language_with_rejects_by_row() {
    use gridcover::ingest::service::{read_folder_records, read_ledger, read_needs};
    use gridcover::model::service::day_from_ymd;
    use gridcover::model::{ContactKind, HouseholdRow, Households, NeedStatus};
    let mut hh = Households::default();
    for id in ["H1", "H2"] {
        hh.push(HouseholdRow { id: id.into(), veterans: 1, ..Default::default() });
    }
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("contacts.csv");
    std::fs::write(
        &ledger,
        "\u{feff}户编号,日期,方式,情况\nH1,2026-11-29,电话,血压正常\nH2,2026-11-01,,\nH9,2026-11-01,home,\n\
         H1,2026-02-30,home,\nH2,2026-11-02,fax,\n",
    )
    .unwrap();
    let mut rejects = Vec::new();
    let rows = read_ledger(&ledger, &hh, &mut rejects).unwrap();
    let got: Vec<(u32, i32, ContactKind, &str)> =
        rows.iter().map(|r| (r.household, r.day, r.kind, r.note.as_str())).collect();
    assert_eq!(
        got,
        [
            (0, day_from_ymd(2026, 11, 29), ContactKind::Phone, "血压正常"),
            (1, day_from_ymd(2026, 11, 1), ContactKind::Home, "")
        ]
    );
    assert_reject(&rejects, "contacts.csv", 4, "H9", "unknown household H9");
    assert_reject(&rejects, "contacts.csv", 5, "H1", "is not a calendar date");
    assert_reject(&rejects, "contacts.csv", 6, "H2", "kind \"fax\"");
    assert_eq!(rejects.len(), 3);

    let needs = dir.path().join("needs.csv");
    std::fs::write(
        &needs,
        "household_id,category,date,status,status_date,note\nH1,medical,2026-10-01,resolved,2026-10-20,\n\
         H2,housing,2026-11-01,,,\nH2,food,2026-11-01,,,\nH1,legal,2026-11-01,resolved,2026-10-01,\n",
    )
    .unwrap();
    let mut rejects = Vec::new();
    let rows = read_needs(&needs, &hh, &mut rejects).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].need.changes,
        [(day_from_ymd(2026, 10, 1), NeedStatus::Open), (day_from_ymd(2026, 10, 20), NeedStatus::Resolved)]
    );
    assert_eq!(rows[1].need.changes, [(day_from_ymd(2026, 11, 1), NeedStatus::Open)]);
    assert_reject(&rejects, "needs.csv", 4, "H2", "category \"food\"");
    assert_reject(&rejects, "needs.csv", 5, "H1", "before the day the need was raised");
    assert_eq!(rejects.len(), 2);

    let mut rejects = Vec::new();
    let r = read_folder_records(dir.path(), &hh, &mut rejects).unwrap().unwrap();
    assert_eq!(r.contacts(0), [day_from_ymd(2026, 11, 29)]);
    assert_eq!(r.needs.len(), 2);
    assert!(read_folder_records(&dir.path().join("none"), &hh, &mut rejects).unwrap().is_none());
}

/// Everything a read gives that comes from the polygon layers, as exact text (`{:?}` of an
/// `f64` is its shortest round-trip form).
fn polygon_layers(ds: &gridcover::model::Dataset) -> String {
    format!("{:?}\n{:?}\n{:?}\n{:?}", ds.boundaries, ds.grids, ds.rejects, ds.notes)
}

/// The geometry cache (`ingest::cache`) gives exactly what the GeoJSON gives — good and bad
/// features, GCJ-02 converted —, is replaced when the input changes, and a damaged cache is a
/// miss, not an error.
#[test]
fn the_geometry_cache_reads_the_same_as_the_geojson() {
    for name in ["tiny", "tiny_gcj02", "bad"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for e in std::fs::read_dir(fixture(name)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
        let cache = dir.join(".gridcover-cache/boundaries.geojson.geo");
        let first = polygon_layers(&read_data_folder(dir).unwrap());
        assert!(cache.is_file(), "{name}: no cache written");
        let written = std::fs::read(&cache).unwrap();
        // A hit: the same answer, the cache untouched.
        assert_eq!(polygon_layers(&read_data_folder(dir).unwrap()), first, "{name}: from the cache");
        assert_eq!(std::fs::read(&cache).unwrap(), written);
        // A damaged cache is read around and written again.
        std::fs::write(&cache, &written[..written.len() / 2]).unwrap();
        assert_eq!(polygon_layers(&read_data_folder(dir).unwrap()), first, "{name}: damaged cache");
        assert_eq!(std::fs::read(&cache).unwrap(), written);
        // A changed input is read again: one feature fewer is one area fewer.
        let path = dir.join("boundaries.geojson");
        let mut gj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let features = gj["features"].as_array_mut().unwrap();
        let n = features.len();
        features.pop();
        std::fs::write(&path, gj.to_string()).unwrap();
        let changed = read_data_folder(dir).unwrap();
        assert_ne!(std::fs::read(&cache).unwrap(), written, "{name}: the cache was not replaced");
        let fresh = {
            let other = tempfile::tempdir().unwrap();
            for f in std::fs::read_dir(dir).unwrap() {
                let f = f.unwrap();
                if f.file_type().unwrap().is_file() {
                    std::fs::copy(f.path(), other.path().join(f.file_name())).unwrap();
                }
            }
            polygon_layers(&read_data_folder(other.path()).unwrap())
        };
        assert_eq!(polygon_layers(&changed), fresh, "{name}: {n} features less one");
    }
}
