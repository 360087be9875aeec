"""The GeoPandas / SciPy side of benches/compare/run.sh, and the comparison table.

python compare.py WORKDIR DATA_DIR [REPS]

Reads the inputs that `cargo bench --bench compare_gridcover` wrote into WORKDIR (the same
points, unit vectors and stations), reads the village polygons of DATA_DIR/boundaries.geojson,
times geopandas.sjoin(points, villages, predicate="within") and scipy cKDTree nearest queries,
checks the answers against gridcover's, and prints a Markdown table.
"""

import json
import os
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy
import shapely
from scipy.spatial import cKDTree

LEVELS = ["province", "city", "county", "township", "village"]


def timed(reps, f):
    times, out = [], None
    for _ in range(max(reps, 1)):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], out


def main():
    work, data = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    gc = json.load(open(os.path.join(work, "gridcover.json")))
    lonlat = np.fromfile(os.path.join(work, "points_lonlat.f64"), dtype="<f8").reshape(-1, 2)
    units = np.fromfile(os.path.join(work, "points_unit.f64"), dtype="<f8").reshape(-1, 3)
    n = len(lonlat)
    codes = open(os.path.join(work, "village_codes.txt")).read().split()
    code_index = {c: k for k, c in enumerate(codes)}

    t = time.perf_counter()
    b = gpd.read_file(os.path.join(data, "boundaries.geojson"))
    villages = b[b["level"] == "village"][["code", "geometry"]].reset_index(drop=True)
    read_s = time.perf_counter() - t

    # --- point in polygon --------------------------------------------------------------
    def make_points():
        return gpd.GeoDataFrame(geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]), crs=villages.crs)

    points_s, pts = timed(reps, make_points)

    # Fresh copies for each run (made outside the timing), so no spatial index cached by an
    # earlier run is reused: sjoin builds its STRtree inside the timing (for "within" GeoPandas
    # builds it on the points and queries it with the polygons).
    fresh = [(pts.copy(), villages.copy()) for _ in range(max(reps, 1))]

    def sjoin():
        p, v = fresh.pop()
        return gpd.sjoin(p, v, how="left", predicate="within")

    sjoin_s, joined = timed(reps, sjoin)
    # A point in several polygons (overlaps) takes the lowest polygon position, as gridcover does.
    right = joined["index_right"].groupby(level=0).min().reindex(range(n))
    py_code = np.full(n, -1, dtype=np.int64)
    has = right.notna().to_numpy()
    mapped = villages["code"].to_numpy()[right[has].astype(np.int64).to_numpy()]
    py_code[has] = [code_index.get(c, -2) for c in mapped]
    gc_code = np.fromfile(os.path.join(work, "gc_village.i32"), dtype="<i4").astype(np.int64)
    pip_agree = float(np.mean(py_code == gc_code))

    # sindex prebuilt (query only), for reference
    villages.sindex
    query_s, _ = timed(reps, lambda: villages.sindex.query(pts.geometry.values, predicate="within"))

    # --- nearest station ---------------------------------------------------------------
    rows = []
    kd_build = 0.0
    kd_par = kd_seq = 0.0
    for lv in LEVELS:
        st = np.fromfile(os.path.join(work, f"stations_{lv}.f64"), dtype="<f8").reshape(-1, 3)
        gc_d2 = np.fromfile(os.path.join(work, f"gc_d2_{lv}.f64"), dtype="<f8")
        bs, tree = timed(reps, lambda: cKDTree(st))
        kd_build += bs
        ps, (d, _) = timed(reps, lambda: tree.query(units, k=1, workers=-1))
        ss, _ = timed(min(reps, 3), lambda: tree.query(units, k=1, workers=1))
        kd_par += ps
        kd_seq += ss
        d2 = d * d
        tol = 1e-6 * np.maximum(d2, gc_d2) + 1e-18
        ok = np.abs(d2 - gc_d2) <= tol
        g = gc["nearest"]["levels"][lv]
        rows.append((lv, len(st), float(np.mean(ok)), g["par_s"], g["seq_s"], ps, ss))

    # --- table -------------------------------------------------------------------------
    mpts = n / 1e6

    def tp(s):
        return f"{mpts / s:,.2f}"

    out = []
    p = out.append
    p(f"Points: {n:,}; village polygons: gridcover {gc['village_polygons']:,}, GeoPandas {len(villages):,}; "
      f"rayon threads: {gc['threads']}; median of {reps} runs (single-thread runs: up to 3).")
    p(f"Versions: geopandas {gpd.__version__}, shapely {shapely.__version__} (GEOS {shapely.geos_version_string}), "
      f"scipy {scipy.__version__}, numpy {np.__version__}, pandas {pd.__version__}.")
    p("")
    p("| task | gridcover s | gridcover Mpts/s | other | other s | other Mpts/s | speed-up (other s / gridcover s) |")
    p("|---|---:|---:|---|---:|---:|---:|")
    g = gc["pip"]
    p(f"| point in polygon (village), parallel | {g['par_s']:.3f} | {tp(g['par_s'])} | GeoPandas sjoin within (1 thread) | {sjoin_s:.3f} | {tp(sjoin_s)} | **{sjoin_s / g['par_s']:.1f}×** |")
    p(f"| point in polygon (village), 1 thread | {g['seq_s']:.3f} | {tp(g['seq_s'])} | GeoPandas sjoin within (1 thread) | {sjoin_s:.3f} | {tp(sjoin_s)} | **{sjoin_s / g['seq_s']:.1f}×** |")
    p(f"| point in polygon, 1 thread, incl. index build | {g['seq_s'] + g['build_s']:.3f} | {tp(g['seq_s'] + g['build_s'])} | sjoin + points_from_xy | {sjoin_s + points_s:.3f} | {tp(sjoin_s + points_s)} | {(sjoin_s + points_s) / (g['seq_s'] + g['build_s']):.1f}× |")
    p(f"| point in polygon, query only, 1 thread | {g['seq_s']:.3f} | {tp(g['seq_s'])} | STRtree.query within (tree prebuilt) | {query_s:.3f} | {tp(query_s)} | {query_s / g['seq_s']:.1f}× |")
    for lv, m, agree, gp, gs, ps, ss in rows:
        p(f"| nearest {lv} station ({m:,}), parallel | {gp:.3f} | {tp(gp)} | cKDTree workers=-1 | {ps:.3f} | {tp(ps)} | {ps / gp:.2f}× |")
        p(f"| nearest {lv} station ({m:,}), 1 thread | {gs:.3f} | {tp(gs)} | cKDTree workers=1 | {ss:.3f} | {tp(ss)} | {ss / gs:.2f}× |")
    gn = gc["nearest"]
    p(f"| nearest, all 5 levels, parallel | {gn['all_par_s']:.3f} | {tp(gn['all_par_s'])} | cKDTree workers=-1 | {kd_par:.3f} | {tp(kd_par)} | **{kd_par / gn['all_par_s']:.2f}×** |")
    p(f"| nearest, all 5 levels, 1 thread | {gn['all_seq_s']:.3f} | {tp(gn['all_seq_s'])} | cKDTree workers=1 | {kd_seq:.3f} | {tp(kd_seq)} | **{kd_seq / gn['all_seq_s']:.2f}×** |")
    p("")
    p("Speed-up = other's time / gridcover's time = gridcover's throughput / other's (> 1: gridcover is faster). Mpts/s = million points per second.")
    p(f"Index builds: gridcover village layer {g['build_s']:.3f} s, station index (5 levels) {gn['build_s']:.3f} s; "
      f"cKDTree (5 levels) {kd_build:.4f} s. GeoPandas read of boundaries.geojson {read_s:.2f} s (not timed in sjoin).")
    p("")
    p("Agreement:")
    p(f"- same village (or both none): {pip_agree * 100:.4f}% of points "
      f"({int(np.sum(py_code != gc_code)):,} differ; gridcover located {g['located']:,}, GeoPandas {int(has.sum()):,}) "
      f"— {'PASS' if pip_agree >= 0.9999 else 'FAIL'} (≥ 99.99%)")
    for lv, m, agree, *_ in rows:
        p(f"- nearest {lv} distance within 1e-6 relative: {agree * 100:.4f}% — {'PASS' if agree == 1.0 else 'FAIL'}")
    print("\n".join(out))
    ok = pip_agree >= 0.9999 and all(r[2] == 1.0 for r in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
