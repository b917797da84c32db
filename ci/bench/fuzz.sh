#!/usr/bin/env bash
# The longer fuzz run: every parser's libFuzzer target for SECONDS each
# (default 120), printing executions per second and the coverage reached
# (libFuzzer's `cov` edges and `ft` features) per target. The corpus
# carries over between runs in fuzz/corpus/, so coverage grows run to run;
# a crash fails the script and leaves its input in fuzz/artifacts/.
#
#   ci/bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-120}
shift || true
exec bash ci/fuzz.sh "$secs" "$@"
