//! gridcover's side of `benches/compare/run.sh` (not a criterion bench: it prints JSON).
//!
//! `cargo bench --bench compare_gridcover -- --dir DIR [--reps N]`
//!
//! Writes into DIR the inputs both sides use — the query points (`points_lonlat.f64`: n × [lon,
//! lat]; `points_unit.f64`: n × [x, y, z] on the unit sphere), the active stations of each level
//! on the unit sphere (`stations_<level>.f64`) and the village codes in index order
//! (`village_codes.txt`) — then times gridcover's point-in-polygon against the village polygons of
//! the bundled `boundaries.geojson` and its nearest-station queries, writes its answers
//! (`gc_village.i32`: index into `village_codes.txt` or -1; `gc_d2_<level>.f64`: squared chord to
//! the nearest station) and the timings (`gridcover.json`, also printed). Files are little-endian.

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use gridcover::index::sphere::{to_unit, Unit3};
use gridcover::index::{PolygonIndex, StationIndex};
use gridcover::model::{Level, NONE};

const MIN_LEN: usize = 4096;

fn write_f64(path: &Path, v: impl IntoIterator<Item = f64>) {
    let mut w = BufWriter::new(File::create(path).expect("create"));
    for x in v {
        w.write_all(&x.to_le_bytes()).expect("write");
    }
    w.flush().expect("flush");
}

/// Median seconds of `reps` runs of `f` (and the last result).
fn timed<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(reps);
    let mut out = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let r = std::hint::black_box(f());
        times.push(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], out.expect("at least one run"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let dir = PathBuf::from(value("--dir").expect("--dir DIR"));
    let reps: usize = value("--reps").map_or(5, |r| r.parse().expect("--reps N"));
    std::fs::create_dir_all(&dir).expect("create --dir");

    let data = common::data_dir();
    let ds = common::dataset();
    let (lon, lat) = common::points(&ds, common::N_POINTS);
    let n = lon.len();
    let units: Vec<Unit3> = lon.iter().zip(&lat).map(|(&x, &y)| to_unit(x, y)).collect();

    // Inputs shared with the Python side.
    write_f64(&dir.join("points_lonlat.f64"), lon.iter().zip(&lat).flat_map(|(&x, &y)| [x, y]));
    write_f64(&dir.join("points_unit.f64"), units.iter().flatten().copied());
    let village_areas: Vec<_> = ds.boundaries.at_level(&ds.divisions, Level::Village).collect();
    let mut codes = String::new();
    for a in &village_areas {
        codes.push_str(&ds.divisions.get(a.unit).code);
        codes.push('\n');
    }
    std::fs::write(dir.join("village_codes.txt"), codes).expect("write codes");
    let st = &ds.stations;
    let mut station_counts = serde_json::Map::new();
    for l in Level::ALL {
        let pts: Vec<Unit3> = (0..st.len())
            .filter(|&i| st.active[i] && st.level[i] == l)
            .map(|i| to_unit(st.lon[i], st.lat[i]))
            .collect();
        station_counts.insert(l.as_str().into(), pts.len().into());
        write_f64(&dir.join(format!("stations_{}.f64", l.as_str())), pts.iter().flatten().copied());
    }

    // Point in polygon: the village layer alone, positions in `village_areas` as owners.
    let (build_pip_s, villages) =
        timed(reps, || PolygonIndex::new(village_areas.iter().enumerate().map(|(k, a)| (k as u32, &a.geometry))));
    let locate_par = || -> Vec<u32> {
        (0..n).into_par_iter().with_min_len(MIN_LEN).map(|i| villages.locate(lon[i], lat[i]).unwrap_or(NONE)).collect()
    };
    let (pip_par_s, found) = timed(reps, locate_par);
    let (pip_seq_s, found_seq) = timed(reps.min(3), || -> Vec<u32> {
        (0..n).map(|i| villages.locate(lon[i], lat[i]).unwrap_or(NONE)).collect()
    });
    assert_eq!(found, found_seq);
    let mut w = BufWriter::new(File::create(dir.join("gc_village.i32")).expect("create"));
    for &v in &found {
        let k: i32 = if v == NONE { -1 } else { v as i32 };
        w.write_all(&k.to_le_bytes()).expect("write");
    }
    w.flush().expect("flush");

    // Nearest station of each level, from the unit vectors written above.
    let (build_st_s, stations) = timed(reps, || StationIndex::new(&ds.stations, &ds.standard));
    let mut nearest = serde_json::Map::new();
    let (mut all_par, mut all_seq) = (0.0, 0.0);
    for l in Level::ALL {
        let d2_of = |p: &Unit3| stations.nearest(l, *p).map_or(f64::NAN, |r| r.1);
        let (par_s, d2) = timed(reps, || -> Vec<f64> { units.par_iter().with_min_len(MIN_LEN).map(d2_of).collect() });
        let (seq_s, d2_seq) = timed(reps.min(3), || -> Vec<f64> { units.iter().map(d2_of).collect() });
        assert!(d2.iter().zip(&d2_seq).all(|(a, b)| a.to_bits() == b.to_bits()));
        write_f64(&dir.join(format!("gc_d2_{}.f64", l.as_str())), d2);
        nearest.insert(l.as_str().into(), json!({ "par_s": par_s, "seq_s": seq_s }));
        all_par += par_s;
        all_seq += seq_s;
    }

    let out = json!({
        "data": data.display().to_string(),
        "points": n,
        "threads": rayon::current_num_threads(),
        "reps": reps,
        "village_polygons": village_areas.len(),
        "stations": station_counts,
        "pip": { "build_s": build_pip_s, "par_s": pip_par_s, "seq_s": pip_seq_s,
                 "located": found.iter().filter(|&&v| v != NONE).count() },
        "nearest": { "build_s": build_st_s, "levels": nearest, "all_par_s": all_par, "all_seq_s": all_seq },
    });
    let text = serde_json::to_string_pretty(&out).expect("json");
    std::fs::write(dir.join("gridcover.json"), &text).expect("write json");
    println!("{text}");
}
