#!/usr/bin/env bash
# The polygon layers' working form against the alternatives (issue "national scale": "whatever is
# chosen, measure it against the alternatives"): reading a data folder's boundaries.geojson
#   - by gridcover, parsing the GeoJSON (GRIDCOVER_GEO_CACHE=off) and from its geometry cache
#     (.gridcover-cache/boundaries.geojson.geo), as the read phase of `analyze` (summary.json),
#     less the same read with a one-feature boundaries file (divisions and stations alone);
#   - by GDAL (the tool a user would otherwise pick), the same polygons as FlatGeobuf,
#     GeoPackage and GeoJSON read whole into its memory driver (`ogr2ogr -f Memory`).
# Each three times, in the same run; prints the medians and the ratios.
#
#   bash benches/national/formats.sh DATA [WORK]
#
# DATA: a data folder with boundaries.geojson, divisions.csv, stations.csv and gridcover.toml
# (e.g. the national folder benches/national/run.sh generates). WORK (default
# /tmp/gridcover-formats) receives two small folders and the converted files (about 1 GB for
# the country). GRIDCOVER_BIN=path uses that binary instead of target/release/gridcover. Needs
# gdal-bin (ogr2ogr) and /usr/bin/time. Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=$(realpath "${1:?usage: $0 DATA [WORK]}")
WORK=${2:-/tmp/gridcover-formats}
BIN=${GRIDCOVER_BIN:-target/release/gridcover}
[[ -x "$BIN" ]] || cargo build --release --locked
BIN=$(realpath "$BIN")
mkdir -p "$WORK/all" "$WORK/one"
for d in all one; do
  ln -sf "$DATA/divisions.csv" "$WORK/$d/divisions.csv"
  head -1001 "$DATA/stations.csv" >"$WORK/$d/stations.csv"
  grep -v '^grids' "$DATA/gridcover.toml" >"$WORK/$d/gridcover.toml" || true
  printf 'id,lon,lat,veterans\nH1,103.8,36.06,1\nH2,116.4,39.9,2\n' >"$WORK/$d/households.csv"
done
ln -sf "$DATA/boundaries.geojson" "$WORK/all/boundaries.geojson"
# One feature (the first) of the same file: the read of everything but the polygons.
python3 - "$DATA/boundaries.geojson" "$WORK/one/boundaries.geojson" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    fc = json.load(f)
fc["features"] = fc["features"][:1]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(fc, f, ensure_ascii=False)
EOF

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
read_phase() { # folder, then env assignments
  local dir=$1
  shift
  env "$@" "$BIN" analyze --data "$dir" --out "$dir/out" >/dev/null 2>"$dir/err"
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds']['read'])" "$dir/out/summary.json"
}
rm -rf "$WORK/all/.gridcover-cache"
read_phase "$WORK/all" >/dev/null # writes the cache
parse=$(for _ in 1 2 3; do read_phase "$WORK/all" GRIDCOVER_GEO_CACHE=off; done | median)
cache=$(for _ in 1 2 3; do read_phase "$WORK/all"; done | median)
rest=$(for _ in 1 2 3; do read_phase "$WORK/one" GRIDCOVER_GEO_CACHE=off; done | median)

[[ -f "$WORK/b.fgb" ]] || ogr2ogr -f FlatGeobuf "$WORK/b.fgb" "$DATA/boundaries.geojson"
[[ -f "$WORK/b.gpkg" ]] || ogr2ogr -f GPKG "$WORK/b.gpkg" "$DATA/boundaries.geojson"
gdal() {
  for _ in 1 2 3; do
    /usr/bin/time -f "%e" -o "$WORK/t" ogr2ogr -f Memory mem "$1"
    cat "$WORK/t"
  done | median
}
fgb=$(gdal "$WORK/b.fgb")
gpkg=$(gdal "$WORK/b.gpkg")
geojson=$(gdal "$DATA/boundaries.geojson")

awk -v parse="$parse" -v cache="$cache" -v rest="$rest" -v fgb="$fgb" -v gpkg="$gpkg" -v gj="$geojson" \
  -v size="$(du -m "$DATA/boundaries.geojson" | cut -f1)" 'BEGIN {
  p = parse - rest; c = cache - rest; if (c < 0.01) c = 0.01
  printf "boundaries.geojson (%d MB), medians of three, seconds:\n", size
  printf "  gridcover read phase: GeoJSON parsed %.2f, geometry cache %.2f, one feature %.2f\n", parse, cache, rest
  printf "  gridcover, the polygons alone: parsed %.2f, cache %.2f\n", p, c
  printf "  GDAL into memory: FlatGeobuf %.2f, GeoPackage %.2f, GeoJSON %.2f\n", fgb, gpkg, gj
  printf "  ratios (GDAL / gridcover cache): FlatGeobuf %.1fx, GeoPackage %.1fx, GeoJSON %.1fx\n", fgb / c, gpkg / c, gj / c
  printf "  ratio (GDAL GeoJSON / gridcover parse): %.1fx\n", gj / p
}'
