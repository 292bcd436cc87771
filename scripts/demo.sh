#!/usr/bin/env bash
# Scan a real Debian 12 image on a fresh clone, no manual steps:
#   1. installs the image-building tools if missing (Debian/Ubuntu, as root),
#   2. builds the two-layer Debian test image from Debian packages,
#   3. uses the default advisory database (see below); if there is none yet,
#      fetches osv.dev's Debian advisory export and builds it there (unless
#      TRAWL_OSV_DIR names an unpacked OSV directory to scan with instead),
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

# The advisory database: the one `trawl scan` uses by default ($TRAWL_DB, else
# $XDG_CACHE_HOME/trawl/trawl.db, else ~/.cache/trawl/trawl.db). If it is not
# there yet, it is built from osv.dev's Debian export (`trawl db update` fills
# it with every ecosystem instead).
trawl() { cargo run --release -q -p trawl-cli -- "$@"; }
cache=${XDG_CACHE_HOME:-}
[[ "$cache" == /* ]] || cache=$HOME/.cache
db=${TRAWL_DB:-$cache/trawl/trawl.db}

osv_args=()
osv_dir=${TRAWL_OSV_DIR:-target/osv/Debian}
if [[ -n "${TRAWL_OSV_DIR:-}" ]]; then
    osv_args=(--osv "$osv_dir")
elif [[ -f "$db" ]]; then
    osv_args=(--db "$db")
else
    if ! compgen -G "$osv_dir/*.json" >/dev/null; then
        url=${TRAWL_OSV_URL:-https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip}
        mkdir -p "$osv_dir"
        echo "demo: downloading $url" >&2
        if curl -fsSL --retry 3 -o "$osv_dir.zip" "$url"; then
            python3 -m zipfile -e "$osv_dir.zip" "$osv_dir" 2>/dev/null || unzip -q -o "$osv_dir.zip" -d "$osv_dir"
        else
            echo "demo: could not download the OSV export (offline?); showing the inventory only." >&2
            echo "demo: set TRAWL_OSV_DIR to an unpacked OSV directory to match offline." >&2
        fi
        rm -f "$osv_dir.zip"
    fi
    if compgen -G "$osv_dir/*.json" >/dev/null; then
        mkdir -p "$(dirname "$db")"
        echo "demo: building the advisory database $db" >&2
        trawl db build --osv "$osv_dir" -o "$db" >&2
        osv_args=(--db "$db")
    else
        osv_args=(--inventory-only)
    fi
fi

exec cargo run --release -p trawl-cli -- scan "${osv_args[@]}" "$@" \
    "oci-dir:target/test-images/debian/oci:bookworm"
