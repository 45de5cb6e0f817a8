#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only the Rust toolchain: installs what the tests
# need (Tansu and fastavro from PyPI, Debian's prometheus and chromium packages: the tests call the
# installers in tests/support/, chromium is installed up front below), then runs formatting, lint
# and every test. README.md's second command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version
# A fresh clone gains nothing from incremental compilation, and its cache is the largest thing
# a build writes. Free disk is printed so that a run that fills it is easy to recognise.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . | tail -n 1

# Components the checks below need (present on the standard image; installed if missing).
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

step "chromium (headless rendering of the executive report, tests/report.rs)"
# Idempotent: a no-op when chromium is on PATH; a fresh install took about 50 s here.
SECONDS=0
bash tests/support/install-chromium.sh
echo "chromium ready in ${SECONDS} s"

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --all-targets --locked -- -D warnings

step "tests"
# Unit tests beside the code, integration and property tests in tests/, doc tests. (Benchmarks are
# compiled by the lint step and run on their own: see BENCHMARKS.md.)
cargo test --locked --no-fail-fast
