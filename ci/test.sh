#!/usr/bin/env bash
# The whole test run: installs what the tests talk to (Kamailio, SIPp,
# tshark, ffmpeg, Chromium), then format check, clippy with warnings denied,
# and every test, with the interop tests required to run, then a short
# coverage-guided fuzz run of every parser.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from the incremental cache, which would
# double what the build writes to disk.
export CARGO_INCREMENTAL=0
bash ci/install-deps.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
CAMCERT_INTEROP=1 cargo test --locked
echo "== fuzz smoke (coverage-guided, a few seconds per parser)"
FUZZ_PROFILE=smoke bash ci/fuzz.sh 4
