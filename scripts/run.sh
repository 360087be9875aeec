#!/usr/bin/env bash
# The main job on the bundled data: installs the build's system packages, builds gridcover,
# generates the bundled Gansu data set on first use (data/generated/gansu), analyses it into
# out/, and prints the county table, worst first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
bin="${CARGO_TARGET_DIR:-target}/release/gridcover"
"$bin" analyze --out out
"$bin" report --level county --limit 20
