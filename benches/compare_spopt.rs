//! gridcover's side of `benches/compare/spopt_run.sh` (not a criterion bench: it prints JSON).
//!
//! `cargo bench --bench compare_spopt -- --dir DIR [--reps N] [--demand 10000] [--candidates 1000] [--p 10,100,500]`
//!
//! Builds MCLP instances from the bundled data: `--demand` households drawn (fixed seed) from
//! those not within 2 km of a village station, weighted by their veterans, and `--candidates`
//! sites drawn from the centres of the H3 cells (resolution 8) holding them. Writes them to DIR
//! (`demand_lonlat.f64`: n × [lon, lat]; `demand_weight.f64`; `cand_lonlat.f64`: m × [lon, lat];
//! little-endian), then times `gridcover::plan::mclp_on_points` for each p — coverage sets from
//! the coordinates, merging, greedy + swaps, and the Lagrangian bound — and writes the chosen
//! sites, objective, bound and median seconds to `gridcover.json` (also printed).

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use gridcover::analysis::analyze;
use gridcover::index::sphere::ground_m;
use gridcover::model::{Level, NONE};
use gridcover::plan::engine::Options;
use gridcover::plan::mclp_on_points;

const RADIUS_M: f64 = 2_000.0;
const SEED: u64 = 7;

fn write_f64(path: &Path, v: impl IntoIterator<Item = f64>) {
    let mut w = BufWriter::new(File::create(path).expect("create"));
    for x in v {
        w.write_all(&x.to_le_bytes()).expect("write");
    }
    w.flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let dir = PathBuf::from(value("--dir").expect("--dir DIR"));
    let reps: usize = value("--reps").map_or(5, |r| r.parse().expect("--reps N"));
    let n_dem: usize = value("--demand").map_or(10_000, |r| r.parse().expect("--demand N"));
    let n_cand: usize = value("--candidates").map_or(1_000, |r| r.parse().expect("--candidates N"));
    let ps: Vec<usize> = value("--p")
        .unwrap_or_else(|| "10,100,500".into())
        .split(',')
        .map(|x| x.trim().parse().expect("--p list"))
        .collect();
    std::fs::create_dir_all(&dir).expect("create --dir");

    let ds = common::dataset();
    let an = analyze(&ds);
    let hh = &ds.households;
    let st = &ds.stations;
    let v = Level::Village.index();
    // Households with veterans not within 2 km of a village station (nor its own larger radius).
    let mut unc: Vec<usize> = (0..hh.len())
        .filter(|&h| {
            if hh.veterans[h] == 0 || an.assignment.covered[h] & (1 << v) != 0 {
                return false;
            }
            let s = an.assignment.nearest[v][h];
            s == NONE || ground_m(hh.lon[h], hh.lat[h], st.lon[s as usize], st.lat[s as usize]) > RADIUS_M
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    unc.shuffle(&mut rng);
    unc.truncate(n_dem);
    unc.sort_unstable();
    let demand: Vec<(f64, f64)> = unc.iter().map(|&h| (hh.lon[h], hh.lat[h])).collect();
    let weight: Vec<f64> = unc.iter().map(|&h| f64::from(hh.veterans[h])).collect();
    let res = h3o::Resolution::Eight;
    let mut cells: Vec<h3o::CellIndex> =
        demand.iter().map(|&(x, y)| h3o::LatLng::new(y, x).expect("valid").to_cell(res)).collect();
    cells.sort_unstable();
    cells.dedup();
    cells.shuffle(&mut rng);
    cells.truncate(n_cand);
    cells.sort_unstable();
    let cand: Vec<(f64, f64)> = cells
        .iter()
        .map(|&c| {
            let ll = h3o::LatLng::from(c);
            (ll.lng(), ll.lat())
        })
        .collect();
    write_f64(&dir.join("demand_lonlat.f64"), demand.iter().flat_map(|&(x, y)| [x, y]));
    write_f64(&dir.join("demand_weight.f64"), weight.iter().copied());
    write_f64(&dir.join("cand_lonlat.f64"), cand.iter().flat_map(|&(x, y)| [x, y]));

    let opts = Options::default();
    let mut runs = Vec::new();
    for &p in &ps {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            let r = std::hint::black_box(mclp_on_points(&demand, &weight, &cand, RADIUS_M, p, &opts));
            times.push(t.elapsed().as_secs_f64());
            last = Some(r);
        }
        times.sort_by(f64::total_cmp);
        let (sol, merged) = last.expect("one run");
        runs.push(json!({
            "p": p,
            "seconds": times[times.len() / 2],
            "objective": sol.saving,
            "bound": sol.saving_bound(),
            "gap": if sol.saving_bound() > 0.0 { (sol.saving_bound() - sol.saving) / sol.saving_bound() } else { 0.0 },
            "sites": sol.sites,
            "merged_demand": merged,
            "swaps": sol.swaps,
            "bound_iterations": sol.bound_iterations,
        }));
    }
    let out = json!({
        "demand": demand.len(),
        "candidates": cand.len(),
        "radius_m": RADIUS_M,
        "veterans": weight.iter().sum::<f64>(),
        "threads": rayon::current_num_threads(),
        "reps": reps,
        "runs": runs,
    });
    std::fs::write(dir.join("gridcover.json"), serde_json::to_vec_pretty(&out).expect("json")).expect("write json");
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
