#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, the docs' links and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# scripts/make-region.py: its unit tests, and that it rebuilds data/gansu/ byte for byte.
bash tests/make_region_test.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
cargo test --locked
