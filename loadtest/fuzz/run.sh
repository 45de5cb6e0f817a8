#!/usr/bin/env bash
# Fuzzes the X12 tokenizer and parser (target `x12_parse`, invariants in fuzz_targets/x12_parse.rs).
# Not part of CI: a long run is its own command.
#
#   bash loadtest/fuzz/run.sh [SECONDS]      (default 600)
#
# Seeds the corpus (loadtest/fuzz/corpus/x12_parse, not committed) with the public sample files in
# tests/fixtures/x12 and with 835, 277CA and 837 files from
# `claimwatch generate --format x12`. Needs cargo-fuzz (`cargo install cargo-fuzz`); the machine has
# only a stable toolchain, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. A crash leaves
# its input in loadtest/fuzz/artifacts/x12_parse/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN="${1:-600}"
CORPUS=loadtest/fuzz/corpus/x12_parse
mkdir -p "$CORPUS" loadtest/fuzz/artifacts/x12_parse

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

find tests/fixtures/x12 -type f ! -name '*.md' ! -name 'LICENSE*' -size -64k | while read -r f; do
  cp "$f" "$CORPUS/sample-$(basename "$(dirname "$f")")-$(basename "$f")"
done
if ! ls "$CORPUS"/gen-* >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  cargo run --release --quiet -- generate --members 30 --seed 7 --format x12 --out "$tmp"
  find "$tmp" -type f ! -name '*.json*' ! -name '*.csv' ! -name '*.avro' -size -64k |
    while read -r f; do cp "$f" "$CORPUS/gen-$(basename "$f")"; done
  rm -rf "$tmp"
fi
echo "corpus: $(ls "$CORPUS" | wc -l) files; fuzzing for ${SECONDS_TO_RUN}s"

RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir loadtest/fuzz x12_parse -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len=16384 -timeout=10 \
  -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 "$CORPUS"
