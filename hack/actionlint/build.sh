#!/usr/bin/env bash
# Build (or reuse) actionlint, the GitHub Actions workflow checker, compiled from its Go module
# (github.com/rhysd/actionlint, pinned below) with `go install <package>@<version>` (source from
# the module proxy, checked against sum.golang.org).
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/actionlint-<version>/actionlint
# (outside the checkout, shared by every clone). A stamp file holds a hash of everything that
# determines the binary; a matching stamp means "already built, reuse" (as hack/kstatus/build.sh).
#
# Progress goes to stderr; the last line on stdout is the path of the binary.
set -euo pipefail

VERSION=v1.7.12
PACKAGE=github.com/rhysd/actionlint/cmd/actionlint

log() { printf 'actionlint: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator"
OUT="$CACHE_ROOT/actionlint-${VERSION#v}"
BINARY="$OUT/actionlint"
STAMP_FILE="$OUT/.stamp"

GO_INSTALL=(go install -trimpath)
LDFLAGS="-s -w"
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
RECIPE="$PACKAGE@$VERSION | ${GO_INSTALL[*]} | $LDFLAGS | CGO_ENABLED=$CGO_ENABLED"

stamp() {
    printf '%s\n%s/%s\n' "$RECIPE" "$(uname -s)" "$(uname -m)" | sha256sum | cut -d' ' -f1
}
WANT="$(stamp)"

is_current() {
    [[ -x "$BINARY" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$WANT" ]]
}

if is_current; then
    log "reusing $VERSION"
    printf '%s\n' "$BINARY"
    exit 0
fi

command -v go >/dev/null 2>&1 ||
    die "the Go toolchain (go >= 1.26) is needed to build actionlint; install it and run again"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.actionlint.build.lock"
flock 9
if is_current; then
    log "built meanwhile by another process"
    printf '%s\n' "$BINARY"
    exit 0
fi

TMP="$(mktemp -d "$CACHE_ROOT/.actionlint.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" # no go.mod around: `go install pkg@version` uses the module's own

log "building actionlint $VERSION into $OUT"
started=$SECONDS
GOBIN="$TMP" "${GO_INSTALL[@]}" -ldflags="$LDFLAGS" "$PACKAGE@$VERSION"

# Smoke-check before publishing: it reports the pinned version (go install stamps the module
# version into the binary) and passes a trivial workflow.
"$TMP/actionlint" -version | grep -F "$VERSION" >/dev/null || die "the built actionlint reports a wrong version"
printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n' |
    "$TMP/actionlint" -no-color - >/dev/null || die "the built actionlint rejects a valid workflow"

printf '%s\n' "$WANT" >"$TMP/.stamp"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
log "built in $((SECONDS - started))s"
printf '%s\n' "$BINARY"
