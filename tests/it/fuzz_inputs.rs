//! Fuzzing (proptest) of every parser of outside input in files: CSV rows (stations,
//! households, divisions), GeoJSON (boundaries, grids, stations), `gridcover.toml`, and the
//! store's JSON bodies (visits, needs, need changes, stations, merge patches). Each must return
//! a value or a clear error for any input, never panic. The request-level targets (query
//! parameters, bodies through the router) are in `tests/fuzz_http.rs`.
//!
//! Inputs are either arbitrary bytes, or a valid fixture file mutated (bytes replaced, cut,
//! lines duplicated or swapped, numbers replaced by extreme ones) so that the parsers get past
//! their first checks. Executions per target: `CASES` (README, "Store and live edits").

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;

use gridcover::crs::Crs;
use gridcover::ingest::{read_boundaries, read_config, read_divisions, read_grids, read_households, read_stations};
use gridcover::model::Divisions;
use gridcover::store::{merge_patch, parse_date, NeedPatch, NewNeed, NewStation, NewVisit, StationPatch};

/// Executions of each target.
const CASES: u32 = 1000;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small").join(name)).unwrap()
}

fn divisions() -> Divisions {
    let mut r = Vec::new();
    read_divisions(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small/divisions.csv"), &mut r).unwrap()
}

/// A mutation of `base`: a few edits of kinds that keep much of the structure.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = base.len().max(1);
    let edit = prop_oneof![
        (0..n, any::<u8>()).prop_map(|(i, b)| (0u8, i, vec![b])),
        (0..n).prop_map(|i| (1u8, i, vec![])),
        (
            0..n,
            prop::sample::select(vec![
                b"-1e309".to_vec(),
                b"NaN".to_vec(),
                b"\"".to_vec(),
                b",".to_vec(),
                b"\n".to_vec(),
                b"{}".to_vec(),
                b"[]".to_vec(),
                b"null".to_vec(),
                "是".as_bytes().to_vec(),
                b"\xff\xfe".to_vec(),
                b"99999999999999999999".to_vec(),
                b"[[[1,2]]]".to_vec(),
                b"1e-320".to_vec(),
                b"-0".to_vec(),
            ])
        )
            .prop_map(|(i, s)| (2u8, i, s)),
        (0..n).prop_map(|i| (3u8, i, vec![])),
    ];
    prop::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut v = base.clone();
        for (kind, i, s) in edits {
            let i = i.min(v.len());
            match kind {
                0 if i < v.len() => v[i] = s[0],
                1 => v.truncate(i),
                2 => {
                    v.splice(i..i, s);
                }
                3 => {
                    // Duplicate the line around i.
                    let start = v[..i].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                    let end = v[i..].iter().position(|&b| b == b'\n').map_or(v.len(), |p| i + p + 1);
                    let line = v[start..end].to_vec();
                    v.splice(end..end, line);
                }
                _ => {}
            }
        }
        v
    })
}

fn bytes_or_mutation(base: &str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![1 => prop::collection::vec(any::<u8>(), 0..400), 4 => mutated(fixture(base))]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

proptest! {
    #![proptest_config(Config { cases: CASES, failure_persistence: None, ..Config::default() })]

    #[test]
    fn stations_csv(bytes in bytes_or_mutation("stations.csv")) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "stations.csv", &bytes);
        let mut rejects = Vec::new();
        let _ = read_stations(d.path(), &Crs::Wgs84, &divisions(), None, &mut rejects);
    }

    #[test]
    fn stations_geojson(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        mutated(br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"S9","name":"n","level":"village","code":"990101001001","demonstration":false,"mobile":"yes","radius_m":500},"geometry":{"type":"Point","coordinates":[100.2,40.5]}}]}"#.to_vec()),
    ]) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "stations.geojson", &bytes);
        let mut rejects = Vec::new();
        let _ = read_stations(d.path(), &Crs::Gcj02, &divisions(), None, &mut rejects);
    }

    #[test]
    fn households_csv(bytes in bytes_or_mutation("households.csv")) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "households.csv", &bytes);
        let mut rejects = Vec::new();
        let _ = read_households(d.path(), &Crs::Bd09, &divisions(), None, &mut rejects);
    }

    #[test]
    fn divisions_csv(bytes in bytes_or_mutation("divisions.csv")) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "divisions.csv", &bytes);
        let mut rejects = Vec::new();
        let _ = read_divisions(&d.path().join("divisions.csv"), &mut rejects);
    }

    #[test]
    fn boundaries_geojson(bytes in bytes_or_mutation("boundaries.geojson")) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "boundaries.geojson", &bytes);
        let (mut rejects, mut notes) = (Vec::new(), Vec::new());
        let _ = read_boundaries(&d.path().join("boundaries.geojson"), &Crs::Wgs84, &divisions(), &mut rejects, &mut notes);
    }

    #[test]
    fn grids_geojson(bytes in bytes_or_mutation("grids.geojson")) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "grids.geojson", &bytes);
        let mut rejects = Vec::new();
        let _ = read_grids(&d.path().join("grids.geojson"), &Crs::Wgs84, &divisions(), &mut rejects);
    }

    #[test]
    fn config_toml(bytes in bytes_or_mutation("gridcover.toml")) {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "gridcover.toml", &bytes);
        let _ = read_config(d.path());
    }

    #[test]
    fn request_bodies(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        mutated(br#"{"date":"2026-11-29","note":"ok"}"#.to_vec()),
        mutated(br#"{"date":"2026-11-29","kind":"phone","needs":[{"category":"medical","note":"x"},{"category":"legal"}]}"#.to_vec()),
        mutated(br#"{"category":"hardship","note":"ok","date":"2026-11-29"}"#.to_vec()),
        mutated(br#"{"status":"in_progress","note":"ok","date":"2026-11-30"}"#.to_vec()),
        mutated(br#"{"name":"n","level":"village","code":"990101001001","lon":100.2,"lat":40.5,"radius_m":300}"#.to_vec()),
        mutated(br#"{"lon":100.2,"lat":40.5,"name":"x","mobile":true}"#.to_vec()),
        mutated(br#"{"needs":{"coal":2,"phone":null},"hardship":[1,2]}"#.to_vec()),
    ]) {
        let divs = divisions();
        if let Ok(v) = serde_json::from_slice::<NewVisit>(&bytes) {
            let _ = v.validate();
            let _ = parse_date(&v.date);
        }
        if let Ok(n) = serde_json::from_slice::<NewNeed>(&bytes) {
            let _ = n.validate();
        }
        if let Ok(p) = serde_json::from_slice::<NeedPatch>(&bytes) {
            let _ = p.validate();
        }
        if let Ok(s) = serde_json::from_slice::<NewStation>(&bytes) {
            let _ = s.validate(&divs);
        }
        if let Ok(p) = serde_json::from_slice::<StationPatch>(&bytes) {
            let _ = p.validate();
        }
        if let Ok(p) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let mut t = serde_json::json!({"needs": {"coal": 1}, "phone": "1"});
            merge_patch(&mut t, &p);
        }
    }

    #[test]
    fn dates(s in "\\PC{0,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}") {
        if let Ok((y, m, d)) = parse_date(&s) {
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d) && (1900..=2200).contains(&y));
        }
    }
}
