#!/usr/bin/env bash
# Memory of `camcert serve gb28181-platform` under a flood of hostile
# datagrams. Starts the release build on a loopback UDP port, sends 100,000
# mixed hostile datagrams (random bytes, mutated and cut REGISTERs, absurd
# Content-Lengths, headers without end) with the sender in
# tests/hostile_transport.rs (flood_sender), checks that a REGISTER is still
# answered, and prints the resident set size before and after and the fixed
# bound it must stay under: RSS before + the evidence tap's 16 MiB + 24 MiB
# of allocator slack. Exits non-zero when the bound is broken.
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${CAMCERT_FLOOD_COUNT:-100000}
cargo build --quiet --release --locked
cargo test --quiet --release --locked --test hostile_transport --no-run
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=$(mktemp -d)
./target/release/camcert serve gb28181-platform --listen "udp://127.0.0.1:$port" --duration 900 \
  >"$out/stdout" 2>"$out/stderr" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$out/stdout" 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" "$out/stdout" || { echo "camcert serve did not start"; cat "$out/stderr"; exit 1; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
before=$(rss)
start=$(date +%s.%N)
CAMCERT_FLOOD_TARGET="127.0.0.1:$port" CAMCERT_FLOOD_COUNT="$count" \
  cargo test --quiet --release --locked --test hostile_transport -- --ignored --exact flood_sender --nocapture
end=$(date +%s.%N)
sleep 1
after=$(rss)
bound=$((before + (16 + 24) * 1024))
kill -0 "$pid" || { echo "camcert serve died"; cat "$out/stderr"; exit 1; }
echo "hostile datagrams: $count in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
echo "RSS before: ${before} KiB, after: ${after} KiB, bound: ${bound} KiB (before + 16 MiB tap + 24 MiB slack)"
if [ "$after" -gt "$bound" ]; then
  echo "FAIL: RSS grew past the bound"
  exit 1
fi
echo "ok: RSS within the bound"
