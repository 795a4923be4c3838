#!/usr/bin/env bash
# `helm lint --strict` of deploy/helm/azure-jit-operator with its default values and with each
# values file in its ci/ directory, with the helm hack/helm/build.sh builds (or reuses).
# Without Go and nothing built yet it skips with a note, except under CI=true, where a missing
# tool fails (as the control plane does in tests/support/controlplane.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHART="$ROOT/deploy/helm/azure-jit-operator"

if ! helm="$("$ROOT/hack/helm/build.sh" | tail -n 1)"; then
    if command -v go >/dev/null 2>&1; then
        echo "helm lint: hack/helm/build.sh failed" >&2
        exit 1
    fi
    if [[ "${CI:-}" =~ ^(1|true|yes)$ ]]; then
        echo "helm lint: no Go toolchain to build helm [CI=true: a missing tool is a failure]" >&2
        exit 1
    fi
    echo "helm lint: SKIPPED (no Go toolchain to build helm; install Go >= 1.26)" >&2
    exit 0
fi

"$helm" lint --strict --quiet "$CHART"
for values in "$CHART"/ci/*.yaml; do
    "$helm" lint --strict --quiet "$CHART" --values "$values"
done
