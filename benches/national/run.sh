#!/usr/bin/env bash
# National-scale benchmark (issue "the whole country on one machine"): builds the national data
# folder from the public sources (scripts/make-region.py --provinces all), generates households,
# analyses it with and without the geometry cache and with the effective coverage (from
# contacts.csv and needs.csv, then from the store after the import), serves it (first start with
# the import, then a restart), asks cold household-cell pages and tiles as a leader, plans within one province and
# edits a station through the API. Prints each figure beside its target, with peak memory from
# /usr/bin/time -v, and writes them to benches/national/RESULTS.md.
#
#   bash benches/national/run.sh [--households N] [--work DIR] [--no-serve]
#   bash benches/national/run.sh --serve-only --data DIR [--work DIR] [--zooms "6 8 10 12 14"]
#
# --serve-only measures only the server on an existing data folder DIR (imported first if it
# has no store): start, cold cell pages, cold tiles of every layer at each of --zooms (default
# 10 only, four layers, as the full run) and the station edits; it prints the figures and writes
# them to WORK/serve-results.md, not to RESULTS.md.
#
# N defaults to 45,000,000 (about 57 million veterans). GRIDCOVER_BIN=path uses that binary
# instead of building one. The work folder (default /tmp/gridcover-national) is kept, so a second
# run reuses the national folder and the generated data of the same N. Needs curl and
# /usr/bin/time (Debian: time). Not part of scripts/test.sh: it takes from minutes to an hour.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
N=45000000
WORK=/tmp/gridcover-national
SERVE=1
SERVE_ONLY=0
DATA=""
ZOOMS=""
while (($#)); do
  case "$1" in
    --households) N="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --no-serve) SERVE=0; shift ;;
    --serve-only) SERVE_ONLY=1; shift ;;
    --data) DATA="$2"; shift 2 ;;
    --zooms) ZOOMS="$2"; shift 2 ;;
    *) echo "usage: $0 [--households N] [--work DIR] [--no-serve] | --serve-only --data DIR [--work DIR] [--zooms \"Z ...\"]" >&2; exit 2 ;;
  esac
done
if ((SERVE_ONLY)) && [[ -z "$DATA" ]]; then
  echo "error: --serve-only needs --data DIR (an existing data folder)" >&2
  exit 2
fi
for t in curl /usr/bin/time python3; do
  command -v "$t" >/dev/null || { echo "error: $t is not installed (apt-get install curl time python3)" >&2; exit 2; }
done
if [[ -n "${GRIDCOVER_BIN:-}" ]]; then
  BIN=$(realpath "$GRIDCOVER_BIN")
else
  cargo build --release --quiet --bin gridcover
  BIN="$ROOT/${CARGO_TARGET_DIR:-target}/release/gridcover"
fi
mkdir -p "$WORK"
CN="$WORK/cn"
[[ -n "$DATA" ]] || DATA="$WORK/data-$N"
ROWS=()

# measure NAME TARGET CMD...: runs CMD under /usr/bin/time -v; records wall time and peak RSS.
measure() {
  local name=$1 target=$2
  shift 2
  local log="$WORK/time.log"
  if ! /usr/bin/time -v -o "$log" "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
    echo "error: $name failed:" >&2
    tail -20 "$WORK/last.err" >&2
    exit 1
  fi
  local wall rss
  # GB = 10^9 bytes (the kB of time -v and /proc times 1024); runs before 2026-12-07 16:30 UTC
  # printed GiB under the name GB.
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.2f GB", $2 * 1024 / 1e9}' "$log")
  ROWS+=("$name|$wall|$rss|$target")
  printf '%-58s %12s %10s   target %s\n' "$name" "$wall" "$rss" "$target"
}
note() { ROWS+=("$1|$2|$3|$4"); printf '%-58s %12s %10s   target %s\n' "$1" "$2" "$3" "$4"; }

if ((!SERVE_ONLY)); then
if [[ ! -f "$CN/boundaries.geojson" ]]; then
  measure "make-region.py --provinces all" "-" python3 scripts/make-region.py --provinces all --out "$CN" --quiet
fi
if [[ ! -f "$DATA/.generated" ]]; then
  rm -rf "$DATA"
  measure "generate the country, $N households" "≤ 5 min, ≤ 12 GB" \
    "$BIN" generate --boundaries "$CN/boundaries.geojson" --divisions "$CN/divisions.csv" --crs gcj02 \
    --households "$N" --out "$DATA"
fi
# No store (a store would add the effective-coverage tables to analyze), no cache.
rm -rf "$DATA/.gridcover-cache" "$DATA"/gridcover.sqlite*
measure "analyze, GeoJSON parsed (cache off)" "≤ 60 s, ≤ 8 GB" \
  env GRIDCOVER_GEO_CACHE=off "$BIN" analyze --data "$DATA" --out "$WORK/out"
python3 -c "import json,sys; print('  phases (s):', json.load(open(sys.argv[1]))['seconds'])" "$WORK/out/summary.json"
measure "analyze, first run (parses, writes the cache)" "-" "$BIN" analyze --data "$DATA" --out "$WORK/out"
measure "analyze, geometry cache" "≤ 60 s, ≤ 8 GB" "$BIN" analyze --data "$DATA" --out "$WORK/out"
python3 -c "import json,sys; print('  phases (s):', json.load(open(sys.argv[1]))['seconds'])" "$WORK/out/summary.json"
# All outputs: with the effective coverage from contacts.csv and needs.csv, parsed the first
# time (and kept in .gridcover-cache/contacts.csv.records), read from there the next.
measure "analyze --effective, first run (parses the records, writes their cache)" "-" \
  "$BIN" analyze --data "$DATA" --out "$WORK/out" --effective
measure "analyze --effective, records' cache" "≤ 60 s, ≤ 8 GB" "$BIN" analyze --data "$DATA" --out "$WORK/out" --effective
measure "plan MCLP K=100 within Gansu (62), village sites" "≤ 10 s" \
  "$BIN" plan --data "$DATA" --problem mclp --level village --new 100 --within 62 --out "$WORK/plan"
# --within reads only what can be in the unit; within a city or a county about as long (every
# division and station is read whatever the unit).
measure "plan MCLP K=5 within Lanzhou (6201), village sites" "-" \
  "$BIN" plan --data "$DATA" --problem mclp --level village --new 5 --within 6201 --out "$WORK/plan-city"
measure "plan MCLP K=5 within Yongdeng county (620121), village sites" "-" \
  "$BIN" plan --data "$DATA" --problem mclp --level village --new 5 --within 620121 --out "$WORK/plan-county"
fi

if ((SERVE)); then
  PORT=18490
  PID=""
  trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true' EXIT
  # The first start's import (households, stations, grids and the generated service history),
  # timed on its own: every command that needs the store would make it first.
  if ((!SERVE_ONLY)) || [[ ! -f "$DATA/gridcover.sqlite" ]]; then
    measure "import into the store (the first start's import)" "≤ 10 min" "$BIN" import --data "$DATA"
  fi
  if ((!SERVE_ONLY)); then
    # A folder with a store: analyze writes the effective coverage from the store's records
    # (the first run writes the contacts' cache the server's start reads too).
    measure "analyze with the store, first run (writes the contacts' cache)" "-" \
      "$BIN" analyze --data "$DATA" --out "$WORK/out"
    measure "analyze with the store (effective coverage from it)" "≤ 60 s, ≤ 8 GB" "$BIN" analyze --data "$DATA" --out "$WORK/out"
  fi
  LEADER=$("$BIN" user add --name "national-bench-$$" --role leader --data "$DATA" 2>/dev/null | tail -n 1)
  PLANNER=$("$BIN" user add --name "national-bench-planner-$$" --role planner --data "$DATA" 2>/dev/null | tail -n 1)
  # start LABEL TARGET: starts the server, waits for /healthz, records the time and its RSS.
  start() {
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN" serve --data "$DATA" --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
    PID=$!
    until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do
      kill -0 "$PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
      sleep 0.2
    done
    t1=$(date +%s.%N)
    note "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }')" \
      "$(awk '/VmRSS/ {printf "%.2f GB", $2 * 1024 / 1e9}' "/proc/$PID/status")" "$2"
  }
  stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
  start "serve: start from the store" "≤ 60 s, ≤ 12 GB"
  AUTH="Authorization: Bearer $LEADER"
  # Cold requests: each asked once (distinct pages and tiles), 40 of each; p99 ≈ the slowest.
  lat() { # URL... → prints the median and the slowest in ms; every answer must be a 200
    for u in "$@"; do
      curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "$AUTH" "http://127.0.0.1:$PORT$u"
    done | sort -k2 -n | awk '$1 != 200 {bad++} {a[NR]=$2}
      END {if (bad) {print "error: " bad " answers not 200" > "/dev/stderr"; exit 1}
           printf "p50 %.0f ms, max %.0f ms", a[int((NR+1)/2)]*1000, a[NR]*1000}'
  }
  # The first page after the start (the cells are made), then 40 pages spread over every cell.
  t0=$(date +%s.%N)
  CELLS=$(curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/collections/households/items?limit=1" |
    sed -n 's/.*"numberMatched":\([0-9]*\).*/\1/p')
  note "leader's first household-cells page after the start" \
    "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f ms", (b - a) * 1000 }')" "-" "p99 ≤ 200 ms"
  pages=()
  for i in $(seq 0 39); do pages+=("/api/collections/households/items?limit=100&offset=$((i * CELLS / 40))"); done
  note "leader's household cells, 40 cold pages" "$(lat "${pages[@]}")" "-" "p99 ≤ 200 ms"
  if [[ -z "$ZOOMS" ]]; then
    for layer in admin-village households stations grids; do
      tiles=()
      # Zoom 10 tiles over eastern China (x 800–839, y 400): each a different tile.
      for i in $(seq 0 39); do tiles+=("/tiles/$layer/10/$((800 + i))/400.mvt"); done
      note "tile $layer z10, 40 cold" "$(lat "${tiles[@]}")" "-" "p99 ≤ 200 ms"
    done
  else
    for z in $ZOOMS; do
      # 40 tiles of zoom z: z10 as above (x 800–839, y 400); other zooms a block of 8 × 5
      # tiles around 112° E 32° N (eastern China).
      xy=()
      if ((z == 10)); then
        for i in $(seq 0 39); do xy+=("$((800 + i))/400"); done
      else
        read -r cx cy < <(python3 -c "import math,sys; z=int(sys.argv[1]); n=2**z; lat=math.radians(32)
print(int((112+180)/360*n), int((1-math.asinh(math.tan(lat))/math.pi)/2*n))" "$z")
        for i in $(seq 0 39); do xy+=("$((cx - 4 + i % 8))/$((cy - 2 + i / 8))"); done
      fi
      for layer in admin-province admin-city admin-county admin-township admin-village households stations grids gaps; do
        tiles=()
        for t in "${xy[@]}"; do tiles+=("/tiles/$layer/$z/$t.mvt"); done
        note "tile $layer z$z, 40 cold" "$(lat "${tiles[@]}")" "-" "p99 ≤ 200 ms"
      done
    done
  fi
  SID=$(curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/collections/stations/items?limit=1&code=620102" |
    sed -n 's/.*"features":\[{"type":"Feature","id":"\([^"]*\)".*/\1/p')
  LONLAT=$(curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/collections/stations/items/$SID" |
    sed -n 's/.*"coordinates":\[\([-0-9.e]*\),\([-0-9.e]*\)\].*/\1 \2/p')
  read -r LON LAT <<<"$LONLAT"
  edits=()
  for i in $(seq 1 10); do
    lon=$(awk -v x="$LON" -v i="$i" 'BEGIN { printf "%.6f", x + (i % 2) * 0.001 }')
    r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X PATCH -H "Authorization: Bearer $PLANNER" \
      -H 'Content-Type: application/json' -d "{\"lon\": $lon, \"lat\": $LAT}" \
      "http://127.0.0.1:$PORT/api/stations/$SID")
    [[ "${r%% *}" == 200 ]] || { echo "error: station edit answered ${r%% *}" >&2; exit 1; }
    edits+=("${r#* }")
  done
  note "station edit through the API (10, median)" \
    "$(printf '%s\n' "${edits[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.0f ms", a[int((NR+1)/2)]*1000}')" "-" "≤ 20 ms"
  # An edit forgets the views and cells (their figures follow coverage): the first page and
  # household tile right after it, then (made again in the background) 10 s later.
  note "household-cells page right after the last edit" \
    "$(lat "/api/collections/households/items?limit=100&offset=$((CELLS / 3))")" "-" "-"
  note "households z10 tile right after the last edit" "$(lat /tiles/households/10/810/401.mvt)" "-" "-"
  sleep 10
  note "household-cells page 10 s after the last edit" \
    "$(lat "/api/collections/households/items?limit=100&offset=$((CELLS / 2))")" "-" "-"
  note "households z10 tile 10 s after the last edit" "$(lat /tiles/households/10/811/401.mvt)" "-" "-"
  stop
fi

if ((SERVE_ONLY)); then
  {
    echo "# Serve-only run on $DATA, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
    echo
    echo "| step | wall | memory | target |"
    echo "|---|---|---|---|"
    for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
  } >"$WORK/serve-results.md"
  echo "written $WORK/serve-results.md"
  exit 0
fi
{
  echo "# National-scale benchmark"
  echo
  echo "\`bash benches/national/run.sh --households $N\`, $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 * 1024 / 1e9}' /proc/meminfo)."
  echo
  echo "| step | wall | peak memory | target |"
  echo "|---|---|---|---|"
  for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
} >benches/national/RESULTS.md
echo "written benches/national/RESULTS.md"
