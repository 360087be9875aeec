#!/usr/bin/env bash
# Load benchmark of the server (issue 4): wrk at 64 connections on loopback, bounded in time,
# against gridcover (a cached vector tile, items pages) and, in the same run, nginx serving
# the very same bytes as static files. Prints requests/s, p50/p99 and the ratio to nginx, the
# time the server took to start, and the time of a station edit through the API, and writes
# benches/load/RESULTS.md.
#
#   bash benches/load/run.sh [--data DIR] [--seconds N]     (GRIDCOVER_BIN=path: use that binary)
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx-light; scripts/setup.sh installs them
# with GRIDCOVER_TEST_PACKAGES). Uses the bundled Gansu data without --data.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=""
SECS=10
while (($#)); do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --seconds) SECS="$2"; shift 2 ;;
    *) echo "usage: $0 [--data DIR] [--seconds N]" >&2; exit 2 ;;
  esac
done
for t in wrk nginx curl; do
  command -v "$t" >/dev/null || { echo "error: $t is not installed (apt-get install wrk nginx-light curl)" >&2; exit 2; }
done

# GRIDCOVER_BIN: a release binary to use instead of building one.
if [[ -n "${GRIDCOVER_BIN:-}" ]]; then
  BIN="$GRIDCOVER_BIN"
else
  cargo build --release --quiet --bin gridcover
  BIN="${CARGO_TARGET_DIR:-target}/release/gridcover"
fi
if [[ -z "$DATA" ]]; then
  # Generates the bundled data on first use, and gives its folder.
  "$BIN" report --limit 1 >/dev/null
  DATA=data/generated/gansu
fi

WORK=$(mktemp -d /tmp/gridcover-load.XXXXXX)
GC_PORT=18480
NG_PORT=18481
cleanup() {
  [[ -n "${GC_PID:-}" ]] && kill "$GC_PID" 2>/dev/null || true
  [[ -f "$WORK/nginx.pid" ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

FIRST_START=yes
[[ -f "$DATA/gridcover.sqlite" ]] && FIRST_START=no
TOKEN=$("$BIN" user add --name load-bench --role leader --data "$DATA" | tail -n 1)
PLANNER=$("$BIN" user add --name load-bench-planner --role planner --data "$DATA" | tail -n 1)
T0=$(date +%s.%N)
"$BIN" serve --data "$DATA" --addr "127.0.0.1:$GC_PORT" >"$WORK/serve.log" 2>&1 &
GC_PID=$!
up=0
for _ in $(seq 1 18000); do
  curl -sf "http://127.0.0.1:$GC_PORT/healthz" >/dev/null && { up=1; break; }
  kill -0 "$GC_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.01
done
((up)) || { echo "error: gridcover serve did not answer /healthz within 180 s:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
STARTUP=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# Lanzhou's county tile at zoom 6, and a page of 100 stations (TILE, ITEMS, ITEMS_POLY override them).
TILE="${TILE:-/tiles/admin-county/6/50/25.mvt}"
ITEMS="${ITEMS:-/api/collections/stations/items?limit=100}"
ITEMS_POLY="${ITEMS_POLY:-/api/collections/admin-village/items?limit=100&code=6201}"
AUTH="Authorization: Bearer $TOKEN"
mkdir -p "$WORK/www"
curl -sf -H "$AUTH" "http://127.0.0.1:$GC_PORT$TILE" -o "$WORK/www/tile.mvt"
curl -sf -H "$AUTH" "http://127.0.0.1:$GC_PORT$ITEMS" -o "$WORK/www/items.json"
curl -sf -H "$AUTH" "http://127.0.0.1:$GC_PORT$ITEMS_POLY" -o "$WORK/www/items_poly.json"

cat >"$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { application/vnd.mapbox-vector-tile mvt; application/geo+json json; }
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  server { listen 127.0.0.1:$NG_PORT; root $WORK/www; }
}
NGINX
mkdir -p "$WORK/tmp"
# nginx's workers run as www-data: let them read the files.
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK"/www/*
nginx -c "$WORK/nginx.conf"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$NG_PORT/tile.mvt" -o /dev/null && break; sleep 0.1; done
cmp -s <(curl -sf "http://127.0.0.1:$NG_PORT/tile.mvt") "$WORK/www/tile.mvt" ||
  { echo "error: nginx does not serve the tile (see $WORK/nginx-error.log)" >&2; cat "$WORK/nginx-error.log" >&2; exit 1; }

run() { # name url
  local out
  local script=()
  [[ -n "${SCRIPT:-}" ]] && script=(-s "$SCRIPT")
  out=$(wrk -t2 -c64 -d"${SECS}s" --latency "${script[@]}" -H "$AUTH" "$2")
  local rps p50 p99 errs
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$1|$rps|$p50|$p99|${errs:-0}"
}

BYTES_TILE=$(stat -c %s "$WORK/www/tile.mvt")
BYTES_ITEMS=$(stat -c %s "$WORK/www/items.json")
BYTES_POLY=$(stat -c %s "$WORK/www/items_poly.json")
R=()
R+=("$(run "gridcover tile $TILE ($BYTES_TILE B, cached)" "http://127.0.0.1:$GC_PORT$TILE")")
R+=("$(run "nginx same tile bytes" "http://127.0.0.1:$NG_PORT/tile.mvt")")
R+=("$(run "gridcover items $ITEMS ($BYTES_ITEMS B)" "http://127.0.0.1:$GC_PORT$ITEMS")")
R+=("$(run "nginx same items bytes" "http://127.0.0.1:$NG_PORT/items.json")")
R+=("$(run "gridcover items $ITEMS_POLY ($BYTES_POLY B)" "http://127.0.0.1:$GC_PORT$ITEMS_POLY")")
R+=("$(run "nginx same items bytes" "http://127.0.0.1:$NG_PORT/items_poly.json")")
# Pages never asked before (a random offset, and a bbox around the whole province whose first
# corner varies in the sixth decimal): every one is selected and rendered afresh.
cat >"$WORK/random.lua" <<'LUA'
request = function()
  local west = string.format("%.6f", 91.9 + math.random() * 0.001)
  return wrk.format(nil, "/api/collections/stations/items?limit=100&offset=" .. math.random(0, 18000) ..
    "&bbox=" .. west .. ",32,109,43")
end
LUA
R+=("$(SCRIPT="$WORK/random.lua" run "gridcover items, 100 stations, a new page every request (not cached)" "http://127.0.0.1:$GC_PORT/")")

# Station edits through the API, each fsynced and applied to the live engine before the answer:
# one village station moved away and back 20 times (If-Match not sent).
SID=$(curl -sf -H "$AUTH" "http://127.0.0.1:$GC_PORT/api/collections/stations/items?limit=1&code=620102" |
  sed -n 's/.*"features":\[{"type":"Feature","id":"\([^"]*\)".*/\1/p')
[[ -n "$SID" ]] || { echo "error: no station found in 620102" >&2; exit 1; }
LONLAT=$(curl -sf -H "$AUTH" "http://127.0.0.1:$GC_PORT/api/collections/stations/items/$SID" |
  sed -n 's/.*"coordinates":\[\([-0-9.e]*\),\([-0-9.e]*\)\].*/\1 \2/p')
read -r LON LAT <<<"$LONLAT"
EDITS=()
for i in $(seq 1 20); do
  if ((i % 2)); then dx=0.01; else dx=0; fi
  body=$(awk -v x="$LON" -v y="$LAT" -v d="$dx" 'BEGIN { printf "{\"lon\": %.6f, \"lat\": %.6f}", x + d, y }')
  t=$(curl -sf -o /dev/null -w '%{time_total}' -X PATCH -H "Authorization: Bearer $PLANNER" \
    -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$GC_PORT/api/stations/$SID") ||
    { echo "error: PATCH /api/stations/$SID failed" >&2; exit 1; }
  EDITS+=("$t")
done
EDIT_MS=$(printf '%s\n' "${EDITS[@]}" | sort -n | awk '{ v[NR] = $1 * 1000 } END { printf "median %.1f ms, max %.1f ms", v[int((NR + 1) / 2)], v[NR] }')

rps() { cut -d'|' -f2 <<<"${R[$1]}"; }
ratio() { awk -v a="$(rps "$1")" -v b="$(rps "$2")" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "# Load benchmark of the server (benches/load/run.sh)"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(uname -m)), loopback, wrk -t2 -c64 -d${SECS}s, binary $BIN,"
  echo "gridcover and nginx $(nginx -v 2>&1 | sed 's/.*\///') on the same machine in the same run; data: $DATA."
  echo
  echo "| what | req/s | p50 | p99 | non-2xx |"
  echo "|---|---:|---:|---:|---:|"
  for r in "${R[@]}"; do echo "| ${r//|/ | } |"; done
  echo
  echo "- cached tile: gridcover / nginx = **$(ratio 0 1)** of nginx's throughput (target ≥ 0.7)"
  echo "- items page of 100 stations: p99 **$(cut -d'|' -f4 <<<"${R[2]}")** (target < 20 ms); $(ratio 2 3) of nginx"
  echo "- items page of 100 village polygons: p99 $(cut -d'|' -f4 <<<"${R[4]}"); $(ratio 4 5) of nginx"
  echo "- items pages of 100 stations never asked before (selected and rendered afresh): p99 $(cut -d'|' -f4 <<<"${R[6]}")"
  echo "- startup to the first /healthz answer: **$STARTUP s** (first start, importing into the store: $FIRST_START)"
  echo "- a station moved through \`PATCH /api/stations/{id}\` (fsynced, then applied to the live engine), 20 times, server idle: $EDIT_MS"
} | tee benches/load/RESULTS.md
