#!/usr/bin/env bash
# Wall time of the whole GB/T 28181 suite against the built-in peers, one
# group of cases at a time (-j 1) and side by side (-j N, default 64), back
# to back. Prints both times and their ratio, and fails if the two runs do
# not give the same verdict for every case and transport. The target for the
# -j N run is under 10 s.
#
#   ci/bench/jobs.sh [N] [SUITE...]
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-64}
shift || true
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(suites/gb28181)
cargo build --quiet --release
bin="${CARGO_TARGET_DIR:-target}/release/camcert"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Run with -j $1 into $out/j$1; print the wall time in seconds.
timed_run() {
  local s e rc=0
  s=$(date +%s.%N)
  "$bin" run "${suites[@]}" -j "$1" --report-dir "$out/j$1" >"$out/j$1.log" 2>&1 || rc=$?
  e=$(date +%s.%N)
  # 0: all passed, 1: some cases failed; anything else is not a run.
  if [ "$rc" -gt 1 ]; then
    echo "camcert run -j $1 exited $rc:" >&2
    tail -20 "$out/j$1.log" >&2
    exit 2
  fi
  awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", b - a }'
}

# The verdict list of a run: case ID, transport and status, in report order.
verdicts() {
  jq -r '.cases[] | [.id, .transport, .status] | @tsv' "$out/j$1/results.json"
}

t1=$(timed_run 1)
tn=$(timed_run "$jobs")
verdicts 1 >"$out/v1.tsv"
verdicts "$jobs" >"$out/vn.tsv"
cases=$(wc -l <"$out/v1.tsv")
printf '%-10s %10s %10s\n' "" "-j 1" "-j $jobs"
printf '%-10s %9s s %9s s\n' "wall time" "$t1" "$tn"
awk -v a="$t1" -v b="$tn" 'BEGIN { printf "speedup    %.1fx\n", a / b }'
echo "case runs  $cases (target for -j $jobs: under 10 s)"
if ! diff -u "$out/v1.tsv" "$out/vn.tsv"; then
  echo "FAIL: -j 1 and -j $jobs gave different verdicts (above: case, transport, status)" >&2
  exit 1
fi
echo "verdicts: identical ($cases case runs)"
