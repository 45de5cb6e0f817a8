#!/usr/bin/env bash
# Validates Kubernetes manifests against the Kubernetes JSON schemas with `kubernetes-validate`
# (PyPI; it ships the schemas, so nothing is fetched at validation time). The tool lives in a
# virtualenv under the cargo target directory, created on first use.
# Usage: tests/support/kubernetes-validate.sh FILE...
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/py-kubernetes-validate"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" >&2
fi
# --strict: unknown fields are errors too (a typo'd probe field would otherwise pass).
exec "$venv/bin/kubernetes-validate" --strict -k 1.30.0 "$@"
