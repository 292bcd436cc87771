#!/usr/bin/env bash
# Installs the reference implementations the version-scheme differential tests
# (crates/trawl-advisory/tests/*_differential.rs) compare against, into DIR
# (default target/version-references, where the tests look unless
# TRAWL_VERSION_REFERENCES names another):
#   DIR/python  Python's packaging (PyPI, PEP 440), with pip --target
#   DIR/node    node's semver package (npm), with npm --prefix
# Go's reference is Debian's: apt-get install golang-go golang-golang-x-mod-dev
# golang-golang-x-vuln-dev. Does nothing for a reference already at its version.
set -euo pipefail

PACKAGING_VERSION=26.4
SEMVER_VERSION=7.8.6

dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/version-references"}
mkdir -p "$dir"

have_packaging=$(PYTHONPATH="$dir/python" python3 -c 'import packaging; print(packaging.__version__)' 2>/dev/null || true)
if [[ "$have_packaging" != "$PACKAGING_VERSION" ]]; then
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --upgrade \
        --target "$dir/python" "packaging==$PACKAGING_VERSION"
fi

have_semver=$(NODE_PATH="$dir/node/node_modules" node -p 'require("semver/package.json").version' 2>/dev/null || true)
if [[ "$have_semver" != "$SEMVER_VERSION" ]]; then
    npm install -q --no-fund --no-audit --prefix "$dir/node" "semver@$SEMVER_VERSION" >&2
fi
echo "version references in $dir: packaging $PACKAGING_VERSION, semver $SEMVER_VERSION" >&2
