#!/usr/bin/env bash
# Build (or reuse) the kstatus command: sigs.k8s.io/cli-utils' kstatus, pinned in go.mod, behind a
# tiny main.go that reads objects as JSON and prints the status kstatus computes for each.
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/kstatus/<cli-utils version>/kstatus
# (outside the checkout, shared by every clone). A stamp file holds a hash of everything that
# determines the binary; a matching stamp means "already built, reuse" (as hack/envtest/build.sh).
#
# Progress goes to stderr; the last line on stdout is the path of the binary.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'kstatus: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VERSION="$(awk '$1 == "sigs.k8s.io/cli-utils" && $2 ~ /^v/ { print $2; exit }' "$HERE/go.mod")"
[[ -n "$VERSION" ]] || die "cannot read the pinned sigs.k8s.io/cli-utils version from go.mod"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/kstatus"
OUT="$CACHE_ROOT/$VERSION"
BINARY="$OUT/kstatus"
STAMP_FILE="$OUT/.stamp"

GO_BUILD=(go build -mod=readonly -trimpath)
LDFLAGS="-s -w"
export CGO_ENABLED=0
RECIPE="${GO_BUILD[*]} | $LDFLAGS | CGO_ENABLED=$CGO_ENABLED"

stamp() {
    (
        cd "$HERE"
        sha256sum go.mod go.sum main.go
        printf '%s\n%s/%s\n' "$RECIPE" "$(uname -s)" "$(uname -m)"
    ) | sha256sum | cut -d' ' -f1
}
WANT="$(stamp)"

is_current() {
    [[ -x "$BINARY" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$WANT" ]]
}

if is_current; then
    log "reusing cli-utils $VERSION"
    printf '%s\n' "$BINARY"
    exit 0
fi

command -v go >/dev/null 2>&1 ||
    die "the Go toolchain (go >= 1.26) is needed to build kstatus; install it and run again"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
flock 9
if is_current; then
    log "built meanwhile by another process"
    printf '%s\n' "$BINARY"
    exit 0
fi

TMP="$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log "building kstatus with cli-utils $VERSION into $OUT"
started=$SECONDS
(cd "$HERE" && "${GO_BUILD[@]}" -ldflags="$LDFLAGS" -o "$TMP/kstatus" .)

# Smoke-check before publishing: an object without status conditions is Current.
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"smoke"}}' |
    "$TMP/kstatus" | grep -F '"status":"Current"' >/dev/null || die "the built kstatus does not work"

printf '%s\n' "$WANT" >"$TMP/.stamp"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
log "built in $((SECONDS - started))s"
printf '%s\n' "$BINARY"
