#!/usr/bin/env bash
# A Python virtualenv with the deploy/ validators, from PyPI (both ship their schemas, so nothing
# is fetched at validation time); prints the venv's bin directory.
#   kubernetes-validate: Kubernetes manifests against the Kubernetes JSON schemas
#   check-jsonschema:    docker-compose.yml against its vendored compose-spec schema
# Used by tests/metrics_assets.rs. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="target/py-deploy-tools"
bin="$venv/bin"
if [ ! -x "$bin/kubernetes-validate" ] || [ ! -x "$bin/check-jsonschema" ]; then
  python3 -m venv "$venv" >&2
  "$bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==1.37.0" "check-jsonschema==0.39.0" >&2
fi
echo "$PWD/$bin"
