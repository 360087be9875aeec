#!/usr/bin/env bash
# Load figures of the store behind the server (issue 5): 64 concurrent clients on loopback,
# bounded in time, 1 request in 4 a write (a counter incremented by read-modify-write under
# If-Match, retried on 409; every write fsynced before its answer), the others reads (an items
# page, a household's visits, the county layer). Checks that no update is lost, and prints
# throughput and p50/p99 latency; writes benches/store/RESULTS.md.
#
#   bash benches/store/run.sh [--seconds N]
#
# Runs the test `sixty_four_clients_lose_no_update` of tests/it/store_crash.rs against the release
# binary, on a copy of tests/fixtures/small in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=10
while (($#)); do
  case "$1" in
    --seconds) SECS="$2"; shift 2 ;;
    *) echo "usage: $0 [--seconds N]" >&2; exit 2 ;;
  esac
done
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin gridcover
BIN="$(mktemp -d)/gridcover"
cp "$TARGET/release/gridcover" "$BIN" # a copy: a build folder shared with other checkouts may change under us
OUT=$(GRIDCOVER_BIN="$BIN" GRIDCOVER_LOAD_SECS="$SECS" cargo test --release --quiet --test it sixty_four_clients_lose_no_update -- --nocapture 2>&1 | tee /dev/stderr | grep '^store load:')
{
  echo "# Store load benchmark"
  echo
  echo "\`bash benches/store/run.sh --seconds $SECS\` on $(nproc) cores, $(date -u +%Y-%m-%d):"
  echo
  echo "    $OUT"
  echo
  echo "No lost update: the counters add up to the increments acknowledged (asserted by the test)."
} > benches/store/RESULTS.md
echo "wrote benches/store/RESULTS.md"
