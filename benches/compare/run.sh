#!/usr/bin/env bash
# gridcover against GeoPandas (point in polygon) and SciPy cKDTree (nearest station) on the same
# 1,000,000 points of the bundled Gansu data. Writes the table to benches/compare/RESULTS.md.
#
#   benches/compare/run.sh [REPS]      (default 3; run from anywhere)
#
# Needs python3 (3.11) with venv and pip reaching PyPI, and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/benches/compare
REPS=${1:-3}
VENV=$HERE/.venv
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check \
  numpy==2.2.6 scipy==1.15.3 shapely==2.1.1 pyarrow==20.0.0 pandas==2.3.1 pyogrio==0.11.0 geopandas==1.1.1

# (a) + (c): gridcover writes the shared inputs and times its side (generates the data if missing).
cargo bench --bench compare_gridcover -- --dir "$WORK" --reps "$REPS" >"$WORK/gridcover.out"

# (b) + (d): GeoPandas and cKDTree on the same inputs, agreement checks, table.
set +e
"$VENV/bin/python" "$HERE/compare.py" "$WORK" "$ROOT/data/generated/gansu" "$REPS" >"$WORK/table.md"
status=$?
set -e

{
  echo "# gridcover vs GeoPandas / SciPy"
  echo
  echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), \`benches/compare/run.sh $REPS\`"
  echo "Machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
  echo "Rust: $(rustc --version); Python: $("$VENV/bin/python" --version 2>&1)"
  echo
  cat "$WORK/table.md"
} >"$HERE/RESULTS.md"
cat "$HERE/RESULTS.md"
exit $status
