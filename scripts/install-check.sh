#!/usr/bin/env bash
# The installed `trawl` command as a user meets it (issue 16's "done when"):
#   bash scripts/install-check.sh DIR
# runs `cargo install --path crates/trawl-cli --root DIR` (a debug build
# unless TRAWL_INSTALL_RELEASE=1: CI has just built the same code for the
# tests, and `cargo install --path` reuses the workspace's target directory),
# then, with DIR/bin/trawl only:
#   - scans the Debian test image (inventory) and the language test image
#     against the published advisory records in tests/data/lang-advisories
#     (exit status 1: unhealthy, as a CI gate wants);
#   - builds a database from those records, checks it (`db info`) and scans
#     with `--db`: the same findings as the feed scan;
#   - `db update --ecosystem PyPI` from a loopback mirror of osv.dev's layout,
#     twice (the second run is a conditional request that changes nothing);
#   - serves `trawl watch` until /healthz answers, then stops it with SIGTERM;
#   - prints completions, the man page and the report's JSON Schema.
# Needs the test images (scripts/build-test-images.sh, target/test-images) and
# the language image (scripts/lang-artifacts/build-image.sh,
# target/lang-artifacts/image), or TRAWL_TEST_IMAGES / TRAWL_LANG_ARTIFACTS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: install-check.sh DIR}
mkdir -p "$root"
root=$(cd "$root" && pwd)
images=${TRAWL_TEST_IMAGES:-target/test-images}
lang=${TRAWL_LANG_ARTIFACTS:-target/lang-artifacts}

profile=(--debug)
[[ "${TRAWL_INSTALL_RELEASE:-0}" == 1 ]] && profile=()
cargo install --locked "${profile[@]}" --path crates/trawl-cli --root "$root" >&2
trawl=$root/bin/trawl
[[ -x "$trawl" ]] || { echo "install-check: $trawl was not installed" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "install-check: $*" >&2; exit 1; }
# Never the user's own database or cache.
export XDG_CACHE_HOME=$work/cache HOME=$work/home TRAWL_DB=$work/default.db
mkdir -p "$HOME"

# Outputs go to files before they are searched: `grep -q` stops reading at
# the first match, and a writer still writing would see a broken pipe.
out=$work/out
"$trawl" --version >"$out" && grep -q '^trawl ' "$out" || fail "--version"
"$trawl" completions bash >"$out" && grep -q '_trawl' "$out" || fail "bash completions"
"$trawl" man >"$out" && grep -q '^\.TH' "$out" || fail "man page"
"$trawl" schema report | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["$schema"].endswith("2020-12/schema"), s["$schema"]' \
    || fail "schema report"

# The Debian image's inventory.
"$trawl" scan --inventory-only --format json "oci-dir:$images/debian/oci:bookworm" >"$work/debian.json" \
    || fail "scan --inventory-only of the Debian image"
python3 - "$work/debian.json" <<'EOF' || fail "the Debian image's inventory"
import json, sys
doc = json.load(open(sys.argv[1]))
names = {p["name"] for p in doc["packages"]}
assert len(doc["packages"]) > 80 and "libssl3" in names and "dpkg" in names, sorted(names)[:20]
EOF

# The language image against the published records: unhealthy (exit 1).
records=tests/data/lang-advisories
lang_image="oci-dir:$lang/image:lang"
set +e
"$trawl" scan --osv "$records" --format json --output "$work/feed.json" "$lang_image"
status=$?
set -e
[[ $status == 1 ]] || fail "scan --osv of the language image: exit $status, expected 1 (unhealthy)"

"$trawl" db build --osv "$records" -o "$work/lang.db" >&2 || fail "db build"
"$trawl" db info "$work/lang.db" >"$out" && grep -q 'Go' "$out" || fail "db info does not list Go"
set +e
"$trawl" scan --db "$work/lang.db" --format json --output "$work/db.json" "$lang_image"
status=$?
set -e
[[ $status == 1 ]] || fail "scan --db of the language image: exit $status, expected 1"
python3 - "$work/feed.json" "$work/db.json" <<'EOF' || fail "--db and feed scans differ"
import json, sys
def findings(path):
    r = json.load(open(path))
    return r["verdict"], sorted(
        (f["package"], f.get("installed_version", ""), f.get("path") or "", f["id"])
        for f in r["findings"])
feed, db = findings(sys.argv[1]), findings(sys.argv[2])
assert feed == db, (feed[0], db[0], set(feed[1]) ^ set(db[1]))
assert feed[0] == "unhealthy" and len(feed[1]) > 100, (feed[0], len(feed[1]))
print(f"install-check: {len(feed[1])} findings, the same from the feeds and the database", file=sys.stderr)
EOF

# db update from a loopback mirror of osv.dev's layout (PyPI/all.zip).
mkdir -p "$work/mirror/PyPI"
python3 - "$records/pypa" "$work/mirror/PyPI/all.zip" <<'EOF'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(sys.argv[1])):
        if name.endswith(".json"):
            z.write(os.path.join(sys.argv[1], name), name)
EOF
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" "$port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/PyPI/all.zip" 2>/dev/null && break; sleep 0.1; done
update() {
    "$trawl" db update --dir "$work/feeds" --ecosystem PyPI --osv-base "http://127.0.0.1:$port" --no-tracker 2>&1
}
update >"$work/update1.log" || { cat "$work/update1.log" >&2; fail "db update"; }
[[ -f "$work/feeds/trawl.db" ]] || fail "db update wrote no database"
"$trawl" db info "$work/feeds/trawl.db" >"$out" && grep -q 'PyPI' "$out" || fail "the updated database has no PyPI"
before=$(stat -c '%i %Y' "$work/feeds/trawl.db")
sleep 1
update >"$work/update2.log" || { cat "$work/update2.log" >&2; fail "second db update"; }
[[ "$(stat -c '%i %Y' "$work/feeds/trawl.db")" == "$before" ]] || fail "an unchanged feed rewrote the database"

# watch: serves until SIGTERM.
mkdir -p "$work/watch/data" "$work/secrets"
echo api-token >"$work/secrets/api"
echo webhook-token >"$work/secrets/webhook"
wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$trawl" watch --db "$work/lang.db" --data "$work/watch/data" --listen "127.0.0.1:$wport" \
    --token-file "$work/secrets/api" --webhook-token-file "$work/secrets/webhook" \
    --registry 127.0.0.1:5000 2>"$work/watch.log" &
watch_pid=$!
pids+=("$watch_pid")
ok=
for _ in $(seq 100); do
    if curl -fsS -o "$out" "http://127.0.0.1:$wport/healthz" 2>/dev/null && grep -q '"status":"ok"' "$out"; then ok=1; break; fi
    sleep 0.2
done
[[ -n "$ok" ]] || { cat "$work/watch.log" >&2; fail "watch did not answer /healthz"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wport/v1/images")
[[ "$code" == 401 ]] || fail "watch's API answered $code without a token"
kill -TERM "$watch_pid"
wait "$watch_pid" || { cat "$work/watch.log" >&2; fail "watch did not exit cleanly on SIGTERM"; }

echo "install-check: $trawl installed and working" >&2
