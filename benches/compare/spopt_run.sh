#!/usr/bin/env bash
# gridcover's MCLP against PySAL spopt (PuLP + CBC) on the same 10,000-demand × 1,000-candidate
# instances drawn from the bundled Gansu data, in the same run. Writes the table to
# benches/compare/SPOPT_RESULTS.md.
#
#   benches/compare/spopt_run.sh [REPS]      (default 3; run from anywhere)
#
# Needs python3 (3.11) with venv and pip reaching PyPI, and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/benches/compare
REPS=${1:-3}
VENV=$HERE/.venv-spopt
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# spopt 0.7.0 is the newest that installs on Python 3.11 here; PuLP's wheel bundles CBC.
"$VENV/bin/pip" install -q --disable-pip-version-check spopt==0.7.0 pulp==3.3.2

# gridcover writes the instances and times its side (generates the bundled data if missing).
cargo bench --bench compare_spopt -- --dir "$WORK" --reps "$REPS" >"$WORK/gridcover.out"

# spopt on the same instances, agreement checks, table.
set +e
"$VENV/bin/python" "$HERE/spopt_compare.py" "$WORK" "$REPS" >"$WORK/table.md"
status=$?
set -e

{
  echo "# gridcover vs PySAL spopt (MCLP)"
  echo
  echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), \`benches/compare/spopt_run.sh $REPS\`"
  echo "Machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
  echo "Rust: $(rustc --version); Python: $("$VENV/bin/python" --version 2>&1)"
  echo
  cat "$WORK/table.md"
} >"$HERE/SPOPT_RESULTS.md"
cat "$HERE/SPOPT_RESULTS.md"
exit $status
