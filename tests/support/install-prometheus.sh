#!/usr/bin/env bash
# Installs Debian's `prometheus` package, which ships `promtool` and the server — used by
# tests/metrics_assets.rs to lint a scrape (`promtool check metrics`) and unit-test the alert
# rules (`promtool test rules`), and by tests/prometheus_live.rs, which runs the server
# (`/usr/bin/prometheus`, started by the test itself on a free port). Idempotent; a no-op when
# promtool is already on PATH.
# Usage: tests/support/install-prometheus.sh   (as root, or with sudo available)
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: promtool and the server need nothing else; apt does not start the
# daemon in a container without systemd, and the tests start their own.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package's service unit must not hold port 9090 in a container without systemd.
command -v promtool
