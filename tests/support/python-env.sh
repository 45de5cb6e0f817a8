#!/usr/bin/env bash
# A Python virtualenv with fastavro for the interoperability test; prints its python's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Test binaries run in parallel: one installer at a time.
mkdir -p target
exec 9>"target/pyenv.lock"
flock 9
venv="target/pyenv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import fastavro" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet "fastavro==1.*" >&2
fi
echo "$PWD/$venv/bin/python"
