#!/bin/sh
# Generates Berkeley DB hash databases in rpm's `Packages` layout with the real
# Berkeley DB tools (Debian package db5.3-util), holding the real rpm header
# blobs of the CBL-Mariner SQLite fixture, each stored COPIES times under rpm's
# 4-byte header numbers 1..N (and rpm's key 0 counter record). The blobs are
# 4 KB to 200 KB, so nearly all of them go to overflow pages.
#
#   scripts/gen-rpm-bdb.sh OUTDIR [COPIES]
#
# Writes OUTDIR/le/Packages (little-endian), OUTDIR/be/Packages (big-endian),
# OUTDIR/le-chksum/Packages (little-endian with page checksums) and
# OUTDIR/manifest.txt (the number of package records). Needs python3 and
# db5.3_load (or db_load).
set -eu

out=${1:?usage: gen-rpm-bdb.sh OUTDIR [COPIES]}
copies=${2:-8}
here=$(cd "$(dirname "$0")" && pwd)
sqlite_db="$here/../../shared/fixtures/rpm/cbl-mariner-2.0/rpmdb.sqlite"

load=$(command -v db5.3_load || command -v db_load || true)
if [ -z "$load" ]; then
    echo "gen-rpm-bdb.sh: db5.3_load not found (apt-get install db5.3-util)" >&2
    exit 1
fi

mkdir -p "$out"
tmp=$(mktemp -d "$out/.gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# db_dump's "bytevalue" format: one line of hex per key and per value.
python3 - "$sqlite_db" "$copies" "$tmp/dump.txt" "$tmp/count" <<'EOF'
import sqlite3, struct, sys
src, copies, dump, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
db = sqlite3.connect(f"file:{src}?immutable=1", uri=True)
blobs = [row[0] for row in db.execute("SELECT blob FROM Packages ORDER BY hnum")]
n = 0
with open(dump, "w") as f:
    f.write("VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n")
    for _ in range(copies):
        for blob in blobs:
            n += 1
            f.write(" " + struct.pack("<I", n).hex() + "\n")
            f.write(" " + bytes(blob).hex() + "\n")
    # rpm keeps the next header number under key 0.
    f.write(" " + struct.pack("<I", 0).hex() + "\n")
    f.write(" " + struct.pack("<I", n + 1).hex() + "\n")
    f.write("DATA=END\n")
with open(count, "w") as f:
    f.write(f"{n}\n")
EOF

for variant in le be le-chksum; do
    case $variant in
        le) opts="-c db_lorder=1234" ;;
        be) opts="-c db_lorder=4321" ;;
        le-chksum) opts="-c db_lorder=1234 -c chksum=1" ;;
    esac
    mkdir -p "$tmp/$variant"
    # shellcheck disable=SC2086
    "$load" $opts -c db_pagesize=4096 -t hash -f "$tmp/dump.txt" "$tmp/$variant/Packages"
    mkdir -p "$out/$variant"
    mv "$tmp/$variant/Packages" "$out/$variant/Packages"
done
cp "$tmp/count" "$out/manifest.txt"
