#!/usr/bin/env bash
# Build Trawl's test container images from real Debian packages.
#
# Usage: scripts/build-test-images.sh OUTDIR
#
# Produces (each image directory gets a `.complete` marker once fully built):
#   OUTDIR/debian/oci/                  OCI layout, tag `bookworm`, two gzip layers:
#                                         1. minbase + `less`
#                                         2. more packages installed, `less` purged
#                                            (whiteouts, rewritten dpkg status)
#   OUTDIR/debian/debian.docker.tar     the same image as a docker-archive
#   OUTDIR/debian/debian.oci.tar        the same image as an oci-archive
#   OUTDIR/debian/expected-dpkg-query.tsv  name<TAB>version of installed packages (final rootfs)
#   OUTDIR/debian/whiteout.txt          a regular file present in layer 1, deleted in layer 2
#   OUTDIR/debian/removed-package.txt   the package purged in layer 2
#   OUTDIR/debian/dpkg-status, os-release  copies from the final rootfs
#   OUTDIR/distroless/oci/              OCI layout, tag `latest`: os-release + var/lib/dpkg/status.d/*
#   OUTDIR/distroless/expected.tsv      name<TAB>version of the status.d packages
#   OUTDIR/scratch/oci/                 OCI layout, tag `latest`: no package database, no os-release
#
# Idempotent and safe to run concurrently (exclusive flock on OUTDIR/.lock).
# Needs root (mmdebstrap root mode, umoci unpack), mmdebstrap, umoci, skopeo, dpkg-query.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUTDIR=$1

all_done() {
    [[ -e "$OUTDIR/debian/.complete" && -e "$OUTDIR/distroless/.complete" && -e "$OUTDIR/scratch/.complete" ]]
}
all_done && exit 0

log() { echo "build-test-images: $*" >&2; }

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
exec 9>"$OUTDIR/.lock"
flock -x 9
# Another process may have finished the work while we waited for the lock.
all_done && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "build-test-images: must run as root (mmdebstrap root mode, umoci unpack)" >&2
    exit 1
fi
for tool in mmdebstrap umoci skopeo dpkg-query flock; do
    command -v "$tool" >/dev/null || { echo "build-test-images: $tool not found" >&2; exit 1; }
done

# Use the machine's own apt sources rather than naming a mirror here.
SOURCES=
for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [[ -s $candidate ]]; then
        SOURCES=$candidate
        break
    fi
done
if [[ -z $SOURCES ]]; then
    SOURCES=$(find /etc/apt/sources.list.d -maxdepth 1 \( -name '*.sources' -o -name '*.list' \) | sort | head -n1)
fi
[[ -n $SOURCES ]] || { echo "build-test-images: no apt sources found under /etc/apt" >&2; exit 1; }

WORK=$(mktemp -d "$OUTDIR/.work.XXXXXX")
cleanup() {
    # --one-file-system: never descend into anything still mounted.
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

EXTRA_PKG=less
WHITEOUT_FILE=usr/bin/less
LAYER2_PKGS=openssl,curl,ca-certificates,libsqlite3-0,python3-minimal,tzdata,netbase
DISTROLESS_PKGS=(base-files libc6 libssl3 netbase tzdata)

# Undo what mmdebstrap would clean at the end of its run, on the copy taken mid-run.
clean_like_mmdebstrap() {
    local root=$1
    find "$root/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name lock ! -name partial -exec rm -rf {} +
    find "$root/var/lib/apt/lists/partial" -mindepth 1 -delete 2>/dev/null || true
    rm -f "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    rm -f "$root/etc/apt/apt.conf.d/00mmdebstrap"
    rm -f "$root/var/log/dpkg.log" "$root/var/log/apt/history.log" "$root/var/log/apt/term.log" \
        "$root/var/log/alternatives.log" "$root/var/cache/ldconfig/aux-cache" \
        "$root/var/log/apt/eipp.log.xz" "$root/var/lib/dbus/machine-id"
    if [[ -e "$root/etc/machine-id" ]]; then
        : >"$root/etc/machine-id"
    fi
    rm -f "$root/usr/sbin/policy-rc.d"
    if [[ -e "$root/sbin/start-stop-daemon.REAL" ]]; then
        mv "$root/sbin/start-stop-daemon.REAL" "$root/sbin/start-stop-daemon"
    fi
    find "$root/run" -mindepth 1 -maxdepth 1 ! -name lock -exec rm -rf {} +
    find "$root/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    find "$root/dev" "$root/proc" "$root/sys" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null || true
}

# Write one layer from a directory: replace the bundle's rootfs and let umoci diff it.
repack_from() {
    local image=$1 bundle=$2 rootfs=$3 message=$4
    rm -rf --one-file-system "$bundle/rootfs"
    mv "$rootfs" "$bundle/rootfs"
    umoci repack --refresh-bundle --history.created_by "$message" --image "$image" "$bundle"
}

# A one-layer image from a directory.
single_layer_image() {
    local layout=$1 tag=$2 rootfs=$3 message=$4
    umoci init --layout "$layout"
    umoci new --image "$layout:$tag"
    umoci unpack --image "$layout:$tag" "$WORK/bundle-$tag-$$"
    repack_from "$layout:$tag" "$WORK/bundle-$tag-$$" "$rootfs" "$message"
    umoci gc --layout "$layout"
    rm -rf --one-file-system "$WORK/bundle-$tag-$$"
}

build_debian() {
    local start=$SECONDS dest="$WORK/debian"
    log "debian: mmdebstrap bookworm minbase + $EXTRA_PKG, then +$LAYER2_PKGS -$EXTRA_PKG (sources from $SOURCES)"
    mkdir -p "$WORK/state1" "$dest"
    # One mmdebstrap run yields both layer states: a customize hook copies the rootfs
    # after the first package set (cp -a keeps mtimes, so umoci sees unchanged files as
    # unchanged), then installs the second set and purges the extra package.
    # The merged-usr hook sets up merged /usr like debian:bookworm images do, without
    # pulling usrmerge (and perl) into the base layer.
    mmdebstrap --mode=root --variant=minbase --include="$EXTRA_PKG" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --skip=output/dev --skip=output/mknod \
        --customize-hook='cp -a --one-file-system "$1"/. '"$WORK/state1"'/' \
        --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends '"${LAYER2_PKGS//,/ }" \
        --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q '"$EXTRA_PKG" \
        bookworm "$WORK/state2" "$SOURCES" </dev/null >&2
    clean_like_mmdebstrap "$WORK/state1"
    find "$WORK/state2/dev" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +

    [[ -f "$WORK/state1/$WHITEOUT_FILE" && ! -e "$WORK/state2/$WHITEOUT_FILE" ]] ||
        { echo "build-test-images: $WHITEOUT_FILE should exist only in layer 1" >&2; exit 1; }

    dpkg-query --admindir="$WORK/state2/var/lib/dpkg" -W -f '${db:Status-Status}\t${Package}\t${Version}\n' |
        awk -F'\t' -v OFS='\t' '$1 == "installed" { print $2, $3 }' | LC_ALL=C sort >"$dest/expected-dpkg-query.tsv"
    printf '%s\n' "$WHITEOUT_FILE" >"$dest/whiteout.txt"
    printf '%s\n' "$EXTRA_PKG" >"$dest/removed-package.txt"
    cp "$WORK/state2/var/lib/dpkg/status" "$dest/dpkg-status"
    cp -L "$WORK/state2/etc/os-release" "$dest/os-release"

    local layout="$dest/oci" bundle="$WORK/bundle-debian"
    umoci init --layout "$layout"
    umoci new --image "$layout:bookworm"
    umoci config --image "$layout:bookworm" --config.cmd=/bin/bash
    umoci unpack --image "$layout:bookworm" "$bundle"
    repack_from "$layout:bookworm" "$bundle" "$WORK/state1" "mmdebstrap --variant=minbase --include=$EXTRA_PKG"
    repack_from "$layout:bookworm" "$bundle" "$WORK/state2" "apt-get install $LAYER2_PKGS; apt-get purge $EXTRA_PKG"
    umoci gc --layout "$layout"
    rm -rf --one-file-system "$bundle"

    skopeo --insecure-policy copy -q "oci:$layout:bookworm" "docker-archive:$dest/debian.docker.tar:trawl/debian:bookworm" >&2
    skopeo --insecure-policy copy -q "oci:$layout:bookworm" "oci-archive:$dest/debian.oci.tar:bookworm" >&2

    touch "$dest/.complete"
    rm -rf "$OUTDIR/debian"
    mv "$dest" "$OUTDIR/debian"
    log "debian: done in $((SECONDS - start))s ($(wc -l <"$OUTDIR/debian/expected-dpkg-query.tsv") packages)"
}

# Print the paragraph dpkg wrote for package $2 in status file $1, byte for byte.
status_paragraph() {
    awk -v RS= -v want="$2" '
        { n = split($0, lines, "\n"); for (i = 1; i <= n; i++) if (lines[i] == "Package: " want) { print; found = 1; exit } }
        END { if (!found) exit 1 }' "$1"
}

build_distroless() {
    local dest="$WORK/distroless" rootfs="$WORK/distroless-rootfs" status="$OUTDIR/debian/dpkg-status"
    log "distroless: os-release + status.d for ${DISTROLESS_PKGS[*]}"
    mkdir -p "$dest" "$rootfs/etc" "$rootfs/var/lib/dpkg/status.d"
    cp "$OUTDIR/debian/os-release" "$rootfs/etc/os-release"
    : >"$dest/expected.tsv"
    local pkg version
    for pkg in "${DISTROLESS_PKGS[@]}"; do
        status_paragraph "$status" "$pkg" >"$rootfs/var/lib/dpkg/status.d/$pkg" ||
            { echo "build-test-images: $pkg not installed in the debian rootfs" >&2; exit 1; }
        version=$(sed -n 's/^Version: //p' "$rootfs/var/lib/dpkg/status.d/$pkg")
        printf '%s\t%s\n' "$pkg" "$version" >>"$dest/expected.tsv"
    done
    LC_ALL=C sort -o "$dest/expected.tsv" "$dest/expected.tsv"
    single_layer_image "$dest/oci" latest "$rootfs" "distroless-style status.d"
    touch "$dest/.complete"
    rm -rf "$OUTDIR/distroless"
    mv "$dest" "$OUTDIR/distroless"
}

build_scratch() {
    local dest="$WORK/scratch" rootfs="$WORK/scratch-rootfs"
    log "scratch: plain files, no package database"
    mkdir -p "$dest" "$rootfs/etc"
    printf '#!/bin/sh\necho hello from a scratch image\n' >"$rootfs/hello"
    chmod 0755 "$rootfs/hello"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
    single_layer_image "$dest/oci" latest "$rootfs" "scratch files"
    touch "$dest/.complete"
    rm -rf "$OUTDIR/scratch"
    mv "$dest" "$OUTDIR/scratch"
}

[[ -e "$OUTDIR/debian/.complete" ]] || build_debian
[[ -e "$OUTDIR/distroless/.complete" ]] || build_distroless
[[ -e "$OUTDIR/scratch/.complete" ]] || build_scratch
log "all images ready in $OUTDIR"
