#!/usr/bin/env bash
# Installs the system packages gridcover's build and tests need (Debian 12).
# Idempotent: installs only what is missing. Runs as root (CI and the dev machines do)
# or through sudo when available.
set -euo pipefail

# cmake, g++, sqlite3 + libsqlite3-dev: the `proj` crate builds PROJ 9.6 from source
#   (feature bundled_proj); Debian 12 only has PROJ 9.1.
# pkg-config: finds sqlite3 for that build.
need=(cmake g++ sqlite3 libsqlite3-dev pkg-config)
# Web viewer (web/): node + npm install MapLibre (served by `gridcover serve`); the viewer's
#   headless-browser test drives Debian's chromium; fonts-noto-cjk draws the labels' ideographs.
need+=(chromium fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# Extra packages for the tests of the server and viewer (listed in GRIDCOVER_TEST_PACKAGES by scripts/test.sh).
if [[ -n "${GRIDCOVER_TEST_PACKAGES:-}" ]]; then
  read -r -a extra <<<"$GRIDCOVER_TEST_PACKAGES"
  need+=("${extra[@]}")
fi
# Server (src/serve): tests/it/serve_gdal.rs reads the API and the tiles with GDAL's ogrinfo;
#   benches/load/run.sh compares with nginx under wrk.
need+=(gdal-bin wrk nginx-light curl)
# The API fuzzer (tests/it/openapi_fuzz.rs, below): a Python with venv and ensurepip.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3 python3-venv)

missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The viewer's npm packages (maplibre-gl; playwright-core for its test), exactly as locked.
# Re-run only when web/package-lock.json changed since the last install.
cd "$(dirname "$0")/.."
stamp=web/node_modules/.gridcover-lock.sha256
want=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: npm ci --prefix web" >&2
  npm ci --prefix web --no-audit --no-fund
  echo "$want" >"$stamp"
fi

# The API fuzzer: schemathesis from PyPI, pinned with every dependency in
# scripts/fuzz-requirements.txt, in its own venv target/venv (tests/it/openapi_fuzz.rs runs
# target/venv/bin/schemathesis). Re-made only when that file changed since the last install.
venv=target/venv
stamp=$venv/.gridcover-requirements.sha256
want=$(sha256sum scripts/fuzz-requirements.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" || ! -x $venv/bin/schemathesis ]]; then
  echo "setup: schemathesis into $venv (pip, scripts/fuzz-requirements.txt)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r scripts/fuzz-requirements.txt
  echo "$want" >"$stamp"
fi
