#!/usr/bin/env bash
# The krew plugin of a release: the launcher archive and its manifest, from deploy/krew/.
#
#   hack/krew/build.sh <tag> <out-dir> [<python-package>]
#
# writes <out-dir>/kubectl-jit-<tag>.tar.gz (deploy/krew/kubectl-jit with the package pinned to
# the release: <python-package>==<version>, default azure-jit-operator, the distribution that
# ships the kubectl-jit command today) and <out-dir>/jit.yaml (deploy/krew/jit.yaml with the
# version, the archive's release download URL and its SHA-256). The archive is reproducible:
# sorted entries, fixed owner and mtime, gzip without a timestamp.
# GITHUB_REPOSITORY (owner/name) picks the download URL; default
# azure-jit-operator/azure-jit-operator.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 <tag> <out-dir> [<python-package>]" >&2; exit 2; }
TAG="$1"
OUT="$2"
PACKAGE="${3:-azure-jit-operator}"
[[ "$TAG" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || { echo "not a release tag: $TAG" >&2; exit 2; }
VERSION="${TAG#v}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REPOSITORY="${GITHUB_REPOSITORY:-azure-jit-operator/azure-jit-operator}"
ARCHIVE="kubectl-jit-$TAG.tar.gz"

mkdir -p "$OUT"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
sed "s|@SPEC@|$PACKAGE==$VERSION|g" "$ROOT/deploy/krew/kubectl-jit" >"$STAGE/kubectl-jit"
chmod 755 "$STAGE/kubectl-jit"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$STAGE" -cf - kubectl-jit |
    gzip -n -9 >"$OUT/$ARCHIVE"
SHA256="$(sha256sum "$OUT/$ARCHIVE" | cut -d' ' -f1)"
sed -e "s|@VERSION@|$VERSION|g" \
    -e "s|@URI@|https://github.com/$REPOSITORY/releases/download/$TAG/$ARCHIVE|g" \
    -e "s|@SHA256@|$SHA256|g" \
    "$ROOT/deploy/krew/jit.yaml" >"$OUT/jit.yaml"
if grep -n '@[A-Z0-9]*@' "$OUT/jit.yaml" >&2; then
    echo "placeholders left in jit.yaml" >&2
    exit 1
fi
echo "$OUT/$ARCHIVE"
echo "$OUT/jit.yaml"
