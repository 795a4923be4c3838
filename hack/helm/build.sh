#!/usr/bin/env bash
# Build (or reuse) helm, compiled from its Go module (helm.sh/helm/v3, pinned below) with
# `go install <package>@<version>`: the module proxy serves the source and the checksum database
# (sum.golang.org) vouches for it, so no go.sum of ours is needed and nothing is downloaded but
# Go modules.
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/helm-<version>/helm (outside the
# checkout, shared by every clone). A stamp file holds a hash of everything that determines the
# binary; a matching stamp means "already built, reuse" (as hack/kstatus/build.sh).
#
# Progress goes to stderr; the last line on stdout is the path of the binary.
set -euo pipefail

VERSION=v3.22.0 # the latest helm v3 the Go module proxy had; builds with Go 1.26
MODULE=helm.sh/helm/v3

log() { printf 'helm: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator"
OUT="$CACHE_ROOT/helm-${VERSION#v}"
BINARY="$OUT/helm"
STAMP_FILE="$OUT/.stamp"

# helm's own Makefile stamps the version, and the Kubernetes version `helm template` and
# `helm lint` assume without a cluster (from the client-go it is built with: v0.N -> 1.N).
GO_INSTALL=(go install -trimpath)
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
recipe() { # k8s-minor -> the flags
    local x="-X $MODULE/internal/version"
    printf '%s' "-s -w $x.version=$VERSION $x.metadata= $x.gitTreeState=clean"
    printf '%s' " -X $MODULE/pkg/lint/rules.k8sVersionMajor=1 -X $MODULE/pkg/lint/rules.k8sVersionMinor=$1"
    printf '%s' " -X $MODULE/pkg/chartutil.k8sVersionMajor=1 -X $MODULE/pkg/chartutil.k8sVersionMinor=$1"
}
RECIPE="$MODULE/cmd/helm@$VERSION | ${GO_INSTALL[*]} | $(recipe N) | CGO_ENABLED=$CGO_ENABLED"
# A hash of the recipe (N stands for the Kubernetes minor, which follows from the version): a
# matching stamp means "reuse"; editing a comment here does not force a rebuild.
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
    die "the Go toolchain (go >= 1.26) is needed to build helm; install it and run again"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.helm.build.lock"
flock 9
if is_current; then
    log "built meanwhile by another process"
    printf '%s\n' "$BINARY"
    exit 0
fi

TMP="$(mktemp -d "$CACHE_ROOT/.helm.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" # no go.mod around: `go install pkg@version` uses the module's own

log "building helm $VERSION into $OUT (a few minutes the first time)"
started=$SECONDS
gomod="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
[[ -f "$gomod" ]] || die "go mod download did not give $MODULE@$VERSION's go.mod"
client_go="$(awk '$1 == "k8s.io/client-go" && $2 ~ /^v0\./ { print $2; exit }' "$gomod")"
minor="${client_go#v0.}"
minor="${minor%%.*}"
[[ "$minor" =~ ^[0-9]+$ ]] || die "cannot read helm's k8s.io/client-go version from $gomod"
GOBIN="$TMP" "${GO_INSTALL[@]}" -ldflags="$(recipe "$minor")" "$MODULE/cmd/helm@$VERSION"

# Smoke-check before publishing: it runs and reports the pinned version.
"$TMP/helm" version --short | grep -F "$VERSION" >/dev/null || die "the built helm reports a wrong version"

printf '%s\n' "$WANT" >"$TMP/.stamp"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
log "built in $((SECONDS - started))s"
printf '%s\n' "$BINARY"
