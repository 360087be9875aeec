#!/usr/bin/env bash
# Load benchmark of the server (issue 4): wrk at 64 connections on loopback, bounded in time,
# against gridcover (a cached vector tile, an items page) and, in the same run, nginx serving
# the very same bytes as static files. Prints requests/s, p50/p99 and the ratio to nginx, and
# writes benches/load/RESULTS.md.
#
#   bash benches/load/run.sh [--data DIR] [--seconds N]
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

cargo build --release --quiet
BIN=target/release/gridcover
[[ -n "${CARGO_TARGET_DIR:-}" ]] && BIN="$CARGO_TARGET_DIR/release/gridcover"
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
}
trap cleanup EXIT

TOKEN=$("$BIN" user add --name load-bench --role leader --data "$DATA" | tail -n 1)
"$BIN" serve --data "$DATA" --addr "127.0.0.1:$GC_PORT" >"$WORK/serve.log" 2>&1 &
GC_PID=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$GC_PORT/healthz" >/dev/null && break
  kill -0 "$GC_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.1
done

# Lanzhou's county tile at zoom 6, and a page of 100 stations.
TILE="/tiles/admin-county/6/50/25.mvt"
ITEMS="/api/collections/stations/items?limit=100"
ITEMS_POLY="/api/collections/admin-village/items?limit=100&code=6201"
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
nginx -c "$WORK/nginx.conf"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$NG_PORT/tile.mvt" -o /dev/null && break; sleep 0.1; done

run() { # name url
  local out
  out=$(wrk -t2 -c64 -d"${SECS}s" --latency -H "$AUTH" "$2")
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

rps() { cut -d'|' -f2 <<<"${R[$1]}"; }
ratio() { awk -v a="$(rps "$1")" -v b="$(rps "$2")" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "# Load benchmark of the server (benches/load/run.sh)"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(uname -m)), loopback, wrk -t2 -c64 -d${SECS}s,"
  echo "gridcover and nginx $(nginx -v 2>&1 | sed 's/.*\///') on the same machine in the same run; data: $DATA."
  echo
  echo "| what | req/s | p50 | p99 | non-2xx |"
  echo "|---|---:|---:|---:|---:|"
  for r in "${R[@]}"; do echo "| ${r//|/ | } |"; done
  echo
  echo "- cached tile: gridcover / nginx = **$(ratio 0 1)** of nginx's throughput (target ≥ 0.7)"
  echo "- items page of 100 stations: p99 **$(cut -d'|' -f4 <<<"${R[2]}")** (target < 20 ms); $(ratio 2 3) of nginx"
  echo "- items page of 100 village polygons: p99 $(cut -d'|' -f4 <<<"${R[4]}"); $(ratio 4 5) of nginx"
} | tee benches/load/RESULTS.md
