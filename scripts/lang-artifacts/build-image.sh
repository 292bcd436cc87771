#!/usr/bin/env bash
# Assemble the language test data into a real OCI image, as an application
# image holds it: a language-heavy image for the end-to-end tests and the
# benches.
#
# Usage: scripts/lang-artifacts/build-image.sh ARTIFACTS_DIR PEERS_BIN_DIR
#
# ARTIFACTS_DIR is what build-packages.sh and build-binaries.sh built
# (target/lang-artifacts); PEERS_BIN_DIR holds the trivy and syft binaries of
# scripts/peer-scanners.sh (target/peers/bin), real Go binaries with hundreds
# of modules each. Produces ARTIFACTS_DIR/image, an OCI layout (tag `lang`,
# linux/amd64) made by umoci, with two layers:
#   1. packages: Debian 12's os-release and the rootfs tree (Python, npm,
#      pnpm, Ruby, Composer, .NET metadata; Debian python3-*/ruby-* packages
#      and dpkg's records of them);
#   2. applications: usr/local/bin/app (Go 1.19, a replaced module),
#      usr/local/bin/auditable-demo (cargo-auditable), usr/local/bin/trivy and
#      usr/local/bin/syft, app/demo-boot.jar (Spring Boot, nested jars),
#      srv/demo-ear-3.2.ear (an ear holding a war holding jars).
# Idempotent: ARTIFACTS_DIR/image/.complete marks a finished build.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 ARTIFACTS_DIR PEERS_BIN_DIR" >&2
    exit 2
fi
A=$(cd "$1" && pwd)
PEERS=$(cd "$2" && pwd)
OUT=$A/image
[[ -e $OUT/.complete ]] && exit 0
exec 9>"$A/.image.lock"
flock -x 9
[[ -e $OUT/.complete ]] && exit 0
for tool in umoci flock; do
    command -v "$tool" >/dev/null || { echo "build-image: $tool not found" >&2; exit 1; }
done
for f in rootfs go/app-go1.19-amd64 rust/auditable-demo java/demo-boot-0.0.1-SNAPSHOT.jar \
        java/demo-ear-3.2.ear; do
    [[ -e $A/$f ]] || { echo "build-image: $A/$f missing (run build-packages.sh and build-binaries.sh)" >&2; exit 1; }
done
for f in trivy syft; do
    [[ -x $PEERS/$f ]] || { echo "build-image: $PEERS/$f missing (run scripts/peer-scanners.sh)" >&2; exit 1; }
done

rm -rf "$OUT"
WORK=$(mktemp -d "$A/.image-work.XXXXXX")
trap 'rm -rf --one-file-system "$WORK"' EXIT
umoci init --layout "$WORK/oci"
umoci new --image "$WORK/oci:lang"
umoci config --image "$WORK/oci:lang" --architecture amd64 --os linux
umoci unpack --image "$WORK/oci:lang" "$WORK/bundle" >/dev/null
R=$WORK/bundle/rootfs
mkdir -p "$R/etc"
cp -L /usr/lib/os-release "$R/etc/os-release"
cp -a "$A/rootfs/." "$R/"
# --refresh-bundle: the next repack holds only what changes after this one.
umoci repack --refresh-bundle --image "$WORK/oci:lang" "$WORK/bundle"
install -D -m 0755 "$A/go/app-go1.19-amd64" "$R/usr/local/bin/app"
install -D -m 0755 "$A/rust/auditable-demo" "$R/usr/local/bin/auditable-demo"
install -D -m 0755 "$PEERS/trivy" "$R/usr/local/bin/trivy"
install -D -m 0755 "$PEERS/syft" "$R/usr/local/bin/syft"
install -D -m 0644 "$A/java/demo-boot-0.0.1-SNAPSHOT.jar" "$R/app/demo-boot.jar"
install -D -m 0644 "$A/java/demo-ear-3.2.ear" "$R/srv/demo-ear-3.2.ear"
umoci repack --image "$WORK/oci:lang" "$WORK/bundle"
umoci gc --layout "$WORK/oci"
mv "$WORK/oci" "$OUT"
touch "$OUT/.complete"
echo "build-image: $OUT" >&2
