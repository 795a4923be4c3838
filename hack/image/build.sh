#!/usr/bin/env bash
# `make image`: the operator's and the emulator's images, built with buildah from the project's
# Dockerfiles without a registry or a Docker daemon, written as OCI archives:
#   build/images/azure-jit-operator.oci.tar   (Dockerfile;          azure-jit-operator:dev)
#   build/images/azure-arm-emulator.oci.tar   (emulator/Dockerfile; azure-arm-emulator:dev)
# Load one with `podman load -i FILE`, or into Docker with
# `skopeo copy oci-archive:FILE docker-daemon:azure-jit-operator:dev`.
#
# The base image is not pulled: hack/image/debian-base.sh makes it from Debian's packages and
# caches it. Dependencies come from uv.lock (uv sync --frozen in the Dockerfiles). buildah's
# layer cache ($IMAGE_CACHE/storage) makes a warm run fast; an archive is only written again
# when its image changed. Every layer and the image's creation time carry the time of the last
# commit (SOURCE_DATE_EPOCH), not the time of the build.
#
# Network: only what the Dockerfiles fetch (uv and the locked wheels, from the package index)
# and, for a new base, Debian's mirror. The RUN steps see the build machine's CA bundle mounted
# over the image's (IMAGE_BUILD_CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt), so a
# TLS-inspecting proxy works; the mount is in no layer.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/image/lib.sh

hack/image/tools.sh buildah mmdebstrap
started=$SECONDS
base="$(hack/image/debian-base.sh | tail -n 1)"

SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || true)"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
ca_bundle="${IMAGE_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
volumes=()
[[ -f "$ca_bundle" ]] && volumes=(--volume "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro")
mkdir -p "$IMAGE_OUT"

build() { # name dockerfile ignorefile
    local name="$1" dockerfile="$2" ignorefile="$3" began=$SECONDS
    local archive="$IMAGE_OUT/$name.oci.tar" id
    log "building $name:dev from $dockerfile on $base"
    local options=(--layers --format oci --timestamp "$SOURCE_DATE_EPOCH"
        --build-arg PYTHON_IMAGE="$base" --build-arg PYTHON=/usr/bin/python3
        --build-arg SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH"
        "${volumes[@]}" --file "$dockerfile" --ignorefile "$ignorefile")
    # The build stage gets a tag of its own, so pruning (below) keeps it: it is the layer cache
    # of the locked dependencies, which the final image does not descend from.
    "${BUILDAH[@]}" bud "${options[@]}" --target build --tag "localhost/$name-build:cache" . >&2
    "${BUILDAH[@]}" bud "${options[@]}" --tag "localhost/$name:dev" . >&2
    id="$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "localhost/$name:dev")"
    if [[ -f "$archive" && "$(cat "$archive.id" 2>/dev/null)" == "$id" ]]; then
        log "$archive is up to date"
    else
        rm -f "$archive" "$archive.id"
        "${BUILDAH[@]}" push --quiet --digestfile "$archive.digest" \
            "localhost/$name:dev" "oci-archive:$archive.tmp:$name:dev" >&2
        mv "$archive.tmp" "$archive"
        printf '%s\n' "$id" >"$archive.id"
    fi
    log "$name: $archive $(du -h "$archive" | cut -f1) (compressed)," \
        "$("${BUILDAH[@]}" images --format '{{.Size}}' "localhost/$name:dev") unpacked," \
        "image $(cut -c1-19 "$archive.digest"), $((SECONDS - began))s"
}

build azure-jit-operator Dockerfile .dockerignore
build azure-arm-emulator emulator/Dockerfile emulator/Dockerfile.dockerignore
# Earlier builds' images, no longer tagged, would fill the cache (a new virtualenv layer of
# some 250 MB for every change): only the tagged images and what they are built on stay.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
log "cache: $(du -sh "$IMAGE_CACHE" | cut -f1) in $IMAGE_CACHE"
log "done in $((SECONDS - started))s"
