#!/usr/bin/env bash
# Make Debian's `prometheus` package (prometheus + promtool) available to the tests and print
# the directory holding both binaries on stdout (progress goes to stderr).
#
# - Already on PATH (or PROMETHEUS_BIN_DIR set): nothing is installed.
# - Otherwise: `apt-get install --no-install-recommends prometheus` (root, or sudo without a
#   password), running `apt-get update` first only when the package lists are stale.
#
# The Debian service is never started or needed: the tests run the binary directly with
# their own config, storage and loopback port. In containers without an init system
# invoke-rc.d refuses to start services anyway; the policy-rc.d below makes sure of it on
# hosts that have one.
set -euo pipefail

log() { printf 'hack/prometheus: %s\n' "$*" >&2; }

have_both() { [[ -x "$1/prometheus" && -x "$1/promtool" ]]; }

if [[ -n "${PROMETHEUS_BIN_DIR:-}" ]]; then
  if have_both "$PROMETHEUS_BIN_DIR"; then
    echo "$PROMETHEUS_BIN_DIR"
    exit 0
  fi
  log "PROMETHEUS_BIN_DIR=$PROMETHEUS_BIN_DIR lacks prometheus or promtool"
  exit 1
fi

found="$(command -v prometheus || true)"
if [[ -n "$found" ]] && have_both "$(dirname "$found")"; then
  dirname "$found"
  exit 0
fi
if have_both /usr/bin; then
  echo /usr/bin
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  log "prometheus is not installed and installing it needs root (apt-get install prometheus)"
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  log "prometheus is not installed and this is not a Debian/Ubuntu system (no apt-get);"
  log "install Prometheus >= 2.42 and put prometheus and promtool on PATH"
  exit 1
fi

# Never let the package start its service, whatever the host's init system.
policy_added=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
  policy_added=1
fi
cleanup() { if [[ -n "$policy_added" ]]; then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

# Two test workers may get here at once: one installs, the other waits and finds it done.
exec 9>"${TMPDIR:-/tmp}/azure-jit-operator-prometheus-install.lock"
flock 9
if have_both /usr/bin; then
  echo /usr/bin
  exit 0
fi
install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends prometheus >&2
}
log "installing Debian's prometheus package (prometheus, promtool)"
if ! install; then
  log "apt-get install failed; refreshing the package lists and trying once more"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q >&2
  install
fi
have_both /usr/bin || { log "installed, but /usr/bin lacks prometheus or promtool"; exit 1; }
echo /usr/bin
