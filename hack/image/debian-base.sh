#!/usr/bin/env bash
# The Python base image of `make image`, made from Debian's packages (no registry is needed):
# Debian bookworm's own python3 (3.11, /usr/bin/python3) with pip, ca-certificates and passwd
# (useradd), on the `essential` variant of mmdebstrap, so the image has dpkg (Essential: yes;
# its database tells scanners what is installed) but no apt: no package manager that could
# fetch anything, no package lists, no caches. Documentation, manual pages and locales are left
# out (copyright files stay).
#
# Cached outside the checkout: $IMAGE_CACHE/debian-base-<hash of this file>/ holds base.oci.tar
# and packages.txt (every package and version in it). Delete that folder, or change this file,
# to make a new one with today's Debian point release and security updates.
#
# Prints the local name of the image (loaded into buildah's store) as its last line on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/image/lib.sh

SUITE=bookworm
PACKAGES=python3,python3-pip,ca-certificates,passwd
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

key="$(sha256sum hack/image/debian-base.sh | cut -c1-12)"
dir="$IMAGE_CACHE/debian-base-$key"
name="localhost/azure-jit-base/python:3.11-$SUITE-$key"

if [[ ! -f "$dir/base.oci.tar" ]]; then
    hack/image/tools.sh buildah mmdebstrap
    log "making the Debian base ($SUITE: $PACKAGES) in $dir"
    started=$SECONDS
    container=""
    cleanup() { # whatever happens: no working container and no half-made base left behind
        [[ -z "$container" ]] || "${BUILDAH[@]}" rm "$container" >/dev/null 2>&1 || true
        rm -rf "$dir.tmp"
    }
    trap cleanup EXIT
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    # Reproducible for the same mirror content (mmdebstrap honours SOURCE_DATE_EPOCH).
    SOURCE_DATE_EPOCH="$(git log -1 --format=%ct -- hack/image/debian-base.sh 2>/dev/null || true)"
    export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
    mmdebstrap --variant=essential --include="$PACKAGES" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --skip=output/dev \
        "$SUITE" "$dir.tmp/rootfs.tar" \
        "deb $DEBIAN_MIRROR $SUITE main" \
        "deb $DEBIAN_MIRROR $SUITE-updates main" \
        "deb $DEBIAN_SECURITY_MIRROR $SUITE-security main" >&2
    tar -xOf "$dir.tmp/rootfs.tar" ./var/lib/dpkg/status |
        awk '/^Package: /{p=$2} /^Version: /{print p, $2}' | sort >"$dir.tmp/packages.txt"
    python_version="$(awk '$1 == "python3.11" {print $2}' "$dir.tmp/packages.txt")"
    [[ "$python_version" == 3.11.* ]] || die "no python3.11 in the Debian base"

    container="$("${BUILDAH[@]}" from scratch)"
    "${BUILDAH[@]}" add "$container" "$dir.tmp/rootfs.tar" / >&2
    # No apt in the image, so none of its configuration and state either (mmdebstrap's own
    # cleanup needs them until it ends); the runtime provides hostname and resolv.conf.
    rootfs="$("${BUILDAH[@]}" mount "$container")"
    rm -rf "$rootfs"/etc/apt "$rootfs"/var/lib/apt "$rootfs"/var/cache/apt "$rootfs"/var/log/apt \
        "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf
    "${BUILDAH[@]}" umount "$container" >/dev/null
    "${BUILDAH[@]}" config \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 \
        --cmd '["/usr/bin/python3"]' \
        --label org.opencontainers.image.title="debian-python" \
        --label org.opencontainers.image.description="Debian $SUITE python3 $python_version (made by hack/image/debian-base.sh)" \
        --label org.opencontainers.image.version="$python_version" \
        "$container" >&2
    "${BUILDAH[@]}" commit --quiet --timestamp "$SOURCE_DATE_EPOCH" --rm "$container" "$name" >&2
    container=""
    "${BUILDAH[@]}" push --quiet "$name" "oci-archive:$dir.tmp/base.oci.tar:$name" >&2
    rm -f "$dir.tmp/rootfs.tar"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    log "Debian base made in $((SECONDS - started))s: python3.11 $python_version," \
        "$(wc -l <"$dir/packages.txt") packages, $(du -h "$dir/base.oci.tar" | cut -f1) compressed"
elif ! "${BUILDAH[@]}" inspect --type image "$name" >/dev/null 2>&1; then
    hack/image/tools.sh buildah
    log "loading the cached Debian base from $dir"
    "${BUILDAH[@]}" pull --quiet "oci-archive:$dir/base.oci.tar" >&2
else
    log "reusing the Debian base $name"
fi
printf '%s\n' "$name"
