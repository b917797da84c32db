#!/usr/bin/env bash
# Runs the media benchmarks (benches/media.rs, criterion, optimised build) and
# prints the throughput of each input side by side, in MB/s (10^6 bytes/s):
# mux+packetize counts elementary-stream bytes in, demux+validate RTP bytes in.
# Extra arguments go to criterion (e.g. a filter: ci/bench/media.sh sample).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench --bench media -- "$@"
dir=target/criterion
# criterion writes mean time per iteration (ns) to estimates.json and the bytes
# per iteration to benchmark.json; MB/s = bytes / ns * 1000.
mbps() {
  local d="$dir/$1/$2/new"
  [ -f "$d/estimates.json" ] || { echo "-"; return; }
  local ns bytes
  ns=$(sed -E 's/.*"mean":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' "$d/estimates.json")
  bytes=$(sed -E 's/.*"throughput":\{"Bytes":([0-9]+)\}.*/\1/' "$d/benchmark.json")
  awk -v b="$bytes" -v t="$ns" 'BEGIN { printf "%.1f", b / t * 1000 }'
}
echo
printf '%-24s %18s %18s\n' "input" "mux+packetize" "demux+validate"
for input in sample-h264-320x240 synthetic-h264-4mbps; do
  printf '%-24s %13s MB/s %13s MB/s\n' "$input" "$(mbps mux+packetize "$input")" "$(mbps demux+validate "$input")"
done
