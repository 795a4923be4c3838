#!/usr/bin/env bash
# actionlint over .github/workflows/, with the actionlint hack/actionlint/build.sh builds (or
# reuses). Its shellcheck and pyflakes integrations are off (-shellcheck= -pyflakes=), so every
# machine runs the same checks: GitHub's runners have shellcheck, development machines may not.
# Without Go and nothing built yet it skips with a note, except under CI=true, where a missing
# tool fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if ! actionlint="$("$ROOT/hack/actionlint/build.sh" | tail -n 1)"; then
    if command -v go >/dev/null 2>&1; then
        echo "actionlint: hack/actionlint/build.sh failed" >&2
        exit 1
    fi
    if [[ "${CI:-}" =~ ^(1|true|yes)$ ]]; then
        echo "actionlint: no Go toolchain to build actionlint [CI=true: a missing tool is a failure]" >&2
        exit 1
    fi
    echo "actionlint: SKIPPED (no Go toolchain to build actionlint; install Go >= 1.26)" >&2
    exit 0
fi

cd "$ROOT"
"$actionlint" -no-color -shellcheck= -pyflakes=
