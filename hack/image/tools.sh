#!/usr/bin/env bash
# hack/image/tools.sh COMMAND...: make sure each command is installed. A missing one is installed
# from Debian's packages with apt-get when running as root; otherwise this fails and names the
# packages to install. Used by `make image` (buildah, mmdebstrap) and `make image-test` (podman,
# runc).
set -euo pipefail

declare -A PACKAGE=(
    [buildah]=buildah
    [mmdebstrap]=mmdebstrap
    [podman]=podman
    [runc]=runc
)

missing=()
for tool in "$@"; do
    [[ -n "${PACKAGE[$tool]:-}" ]] || { echo "tools.sh: unknown tool $tool" >&2; exit 2; }
    command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE[$tool]}")
done
((${#missing[@]})) || exit 0

if [[ "$(id -u)" != 0 ]]; then
    echo "image: ERROR: missing ${missing[*]}; install them as root" \
        "(apt-get install --no-install-recommends ${missing[*]}) or run this as root" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 ||
    { echo "image: ERROR: missing ${missing[*]} and no apt-get to install them" >&2; exit 1; }

echo "image: installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
install || { apt-get update -qq >&2 && install; } ||
    { echo "image: ERROR: apt-get could not install ${missing[*]}" >&2; exit 1; }
for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "image: ERROR: $tool is still missing after apt-get install" >&2; exit 1; }
done
