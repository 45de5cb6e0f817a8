#!/usr/bin/env bash
# Installs Debian's `chromium` package (/usr/bin/chromium), which tests/report.rs runs headless to
# render the executive report (`claimwatch report`) to a PNG and to dump its DOM. Idempotent; a
# no-op when chromium is already on PATH. Prints the binary's path.
# Usage: tests/support/install-chromium.sh   (as root, or with sudo available)
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  command -v chromium
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
$SUDO apt-get update -qq
# --no-install-recommends: headless rendering needs the browser and its libraries, not the
# recommended extras (fonts beyond the default set, the desktop integration).
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "installed chromium in $(( $(date +%s) - start )) s" >&2
command -v chromium
