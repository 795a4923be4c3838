#!/usr/bin/env bash
# Build (or reuse) the test control plane: kube-apiserver, kubectl and etcd, compiled from the
# Go modules pinned in hack/envtest/kube and hack/envtest/etcd.
#
# Output directory: ${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/envtest/<k8s-version>/
# (outside the checkout, so every clone on the machine shares it). A stamp file holds a hash of
# everything that determines the binaries; a matching stamp means "already built, reuse".
# With KUBEBUILDER_ASSETS set, that directory is used as is (the envtest convention).
#
# Progress goes to stderr; the last line on stdout is the directory holding the binaries.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BINARIES=(kube-apiserver kubectl etcd)

log() { printf 'envtest: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

check_dir() { # dir -> 0 when all binaries are there and executable
    local bin
    for bin in "${BINARIES[@]}"; do
        [[ -x "$1/$bin" ]] || return 1
    done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    check_dir "$KUBEBUILDER_ASSETS" ||
        die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of: ${BINARIES[*]}"
    log "using KUBEBUILDER_ASSETS"
    printf '%s\n' "$KUBEBUILDER_ASSETS"
    exit 0
fi

module_version() { # go.mod module-path -> pinned version
    awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}
KUBE_VERSION="$(module_version "$HERE/kube/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "$HERE/etcd/go.mod" go.etcd.io/etcd/server/v3)"
[[ -n "$KUBE_VERSION" && -n "$ETCD_VERSION" ]] || die "cannot read the pinned versions from go.mod"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/envtest"
OUT="$CACHE_ROOT/${KUBE_VERSION#v}"
STAMP_FILE="$OUT/.stamp"

# The build recipe: everything below that shapes the binaries, and nothing else (editing a
# comment in this script does not force a rebuild; changing a flag does).
minor="${KUBE_VERSION#v1.}"
minor="${minor%%.*}"
X_VERSION=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    X_VERSION+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    X_VERSION+=" -X $pkg.gitTreeState=clean"
done
GO_BUILD=(go build -mod=readonly -trimpath)
KUBE_LDFLAGS="-s -w$X_VERSION"
ETCD_LDFLAGS="-s -w"
export CGO_ENABLED=0 # static binaries
RECIPE="${GO_BUILD[*]} | $KUBE_LDFLAGS | $ETCD_LDFLAGS | CGO_ENABLED=$CGO_ENABLED"

# A hash of the recipe and of the modules' sources: a matching stamp means "reuse".
stamp() {
    (
        cd "$HERE"
        sha256sum kube/go.mod kube/go.sum etcd/go.mod etcd/go.sum
        find kube etcd -name '*.go' -print0 | sort -z | xargs -0 sha256sum
        printf '%s\n%s/%s\n' "$RECIPE" "$(uname -s)" "$(uname -m)"
    ) | sha256sum | cut -d' ' -f1
}
WANT="$(stamp)"

is_current() {
    check_dir "$OUT" && [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$WANT" ]]
}

if is_current; then
    log "reusing kubernetes $KUBE_VERSION / etcd $ETCD_VERSION"
    printf '%s\n' "$OUT"
    exit 0
fi

command -v go >/dev/null 2>&1 ||
    die "the Go toolchain (go >= 1.26) is needed to build the control plane; install it or set KUBEBUILDER_ASSETS"

# One builder at a time per machine (parallel test runs, several clones); the others wait and
# then find the stamp current.
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
flock 9
if is_current; then
    log "built meanwhile by another process"
    printf '%s\n' "$OUT"
    exit 0
fi

TMP="$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log "building kubernetes $KUBE_VERSION and etcd $ETCD_VERSION into $OUT (the first build takes about 7 minutes on 2 cores)"
started=$SECONDS

# No debug info (-s -w) and no local paths (-trimpath) keep the binaries small and the same on
# every machine. -mod=readonly: go.sum is committed and complete, so a build never rewrites
# files in the checkout.
(cd "$HERE/kube" && "${GO_BUILD[@]}" -ldflags="$KUBE_LDFLAGS" -o "$TMP/" ./cmd/kube-apiserver ./cmd/kubectl)
(cd "$HERE/etcd" && "${GO_BUILD[@]}" -ldflags="$ETCD_LDFLAGS" -o "$TMP/" ./cmd/etcd)

# Smoke-check before publishing: every binary starts and reports the pinned version.
"$TMP/kube-apiserver" --version | grep -F "$KUBE_VERSION" >/dev/null || die "kube-apiserver reports a wrong version"
"$TMP/kubectl" version --client | grep -F "$KUBE_VERSION" >/dev/null || die "kubectl reports a wrong version"
"$TMP/etcd" --version | grep -F "${ETCD_VERSION#v}" >/dev/null || die "etcd reports a wrong version"

printf '%s\n' "$WANT" >"$TMP/.stamp"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
log "built in $((SECONDS - started))s"
printf '%s\n' "$OUT"
