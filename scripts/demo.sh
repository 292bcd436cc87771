#!/usr/bin/env bash
# Scan a real Debian 12 image on a fresh clone, no manual steps:
#   1. installs the image-building tools if missing (Debian/Ubuntu, as root),
#   2. builds the two-layer Debian test image from Debian packages,
#   3. fetches osv.dev's Debian advisory export (unless TRAWL_OSV_DIR names
#      an unpacked OSV directory already),
#   4. runs `trawl scan` on the image (`cargo run --release -p trawl-cli -- scan`).
# Extra arguments go to `trawl scan` (e.g. --format json).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mmdebstrap >/dev/null || ! command -v umoci >/dev/null || ! command -v skopeo >/dev/null; then
    echo "demo: installing mmdebstrap, umoci, skopeo" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap umoci skopeo ca-certificates >&2
fi
bash scripts/build-test-images.sh target/test-images

osv_args=()
osv_dir=${TRAWL_OSV_DIR:-target/osv/Debian}
if [[ -n "${TRAWL_OSV_DIR:-}" ]]; then
    osv_args=(--osv "$osv_dir")
elif [[ -d "$osv_dir" ]] && compgen -G "$osv_dir/*.json" >/dev/null; then
    osv_args=(--osv "$osv_dir")
else
    url=${TRAWL_OSV_URL:-https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip}
    mkdir -p "$osv_dir"
    echo "demo: downloading $url" >&2
    if curl -fsSL --retry 3 -o "$osv_dir.zip" "$url"; then
        python3 -m zipfile -e "$osv_dir.zip" "$osv_dir" 2>/dev/null || unzip -q -o "$osv_dir.zip" -d "$osv_dir"
        rm -f "$osv_dir.zip"
        osv_args=(--osv "$osv_dir")
    else
        rm -f "$osv_dir.zip"
        echo "demo: could not download the OSV export (offline?); showing the inventory only." >&2
        echo "demo: set TRAWL_OSV_DIR to an unpacked OSV directory to match offline." >&2
        osv_args=(--inventory-only)
    fi
fi

exec cargo run --release -p trawl-cli -- scan "${osv_args[@]}" "$@" \
    "oci-dir:target/test-images/debian/oci:bookworm"
