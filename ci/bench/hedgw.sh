#!/usr/bin/env bash
# HEDGW fleets against the reference gateway on this machine (release
# build): for each count in DEVICES, that many TDs connect over TLS 1.2 at
# RAMP per second, log in, PING at a PING_SPAN s span and push
# TDMediaPackage media at BITRATE kbit/s each for DURATION seconds. Prints
# TLS handshakes per second, handshake and login latency, the media sent
# (and received, when the gateway runs inside the load process), the
# generator's send lag, CPU and RSS, and the verdict. Nothing here asserts
# a timing.
#
# A fleet whose two ends do not fit in this process's file descriptor
# limit (two per device with the gateway inside) gets the reference gateway
# in a process of its own (`camcert serve hedgw-gateway`); the media it
# receives is then not counted.
#
#   DEVICES="1000 10000" RAMP=1000 BITRATE=64 DURATION=20 ci/bench/hedgw.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
devices=${DEVICES:-1000 10000}
ramp=${RAMP:-1000}
bitrate=${BITRATE:-64}
ping_span=${PING_SPAN:-5}
cargo build --quiet --release
out=$(mktemp -d)
gw_pid=
cleanup() {
  if [[ -n "$gw_pid" ]]; then kill "$gw_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT
export CAMCERT_PASSWORD=${CAMCERT_PASSWORD:-bench-hedgw-secret}
fds=$(ulimit -n)
for n in $devices; do
  duration=${DURATION:-$(awk -v n="$n" -v r="$ramp" 'BEGIN { printf "%d", n / r + 15 }')}
  target=()
  if (( 2 * n + 256 > fds )); then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ./target/release/camcert serve hedgw-gateway --listen "tcp://127.0.0.1:$port" \
      --set "ping_pong_span=$ping_span" --duration "$((duration + 30))" >"$out/gateway-$n.log" 2>&1 &
    gw_pid=$!
    sleep 1
    target=(--target "127.0.0.1:$port")
  fi
  echo "== $n devices (ramp $ramp/s, $bitrate kbit/s each, $duration s)"
  ./target/release/camcert load hemu --devices "$n" --ramp "$ramp" --duration "$duration" \
    --bitrate "$bitrate" --ping-span "$ping_span" "${target[@]}" \
    --json "$out/hedgw-$n.json" >"$out/summary-$n.txt" 2>&1 || true
  if [[ -n "$gw_pid" ]]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; gw_pid=; fi
  if [[ ! -s "$out/hedgw-$n.json" ]]; then cat "$out/summary-$n.txt"; continue; fi
  python3 - "$out/hedgw-$n.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
h, l, g, m = r["handshake"], r["login"], r["generator"], r["media"]
print(f"gateway                  {'built-in' if r['builtin_gateway'] else 'reference gateway process'} at {r['target']}")
print(f"logged in                {r['logged_in']} of {r['devices']} ({r['failures_total']} failures: {r['failures'] or 'none'})")
print(f"TLS handshakes/s         {r['handshakes_per_s']:.0f} ({r['handshakes']} handshakes)")
print(f"handshake latency        p50 {h['p50_ms']:.2f} ms, p90 {h['p90_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, max {h['max_ms']:.2f} ms")
print(f"login latency            p50 {l['p50_ms']:.2f} ms, p90 {l['p90_ms']:.2f} ms, p99 {l['p99_ms']:.2f} ms, max {l['max_ms']:.2f} ms")
print(f"pings answered           {r['pings']['answered']} of {r['pings']['sent']}")
print(f"media sent               {m['packages_sent']} packages, {m['sent_packages_per_s']:.0f}/s, {m['sent_bits_per_s'] / 1e6:.1f} Mbit/s ({m['sent_bits_per_s_per_device'] / 1e3:.1f} kbit/s per device)")
if m.get("received"):
    x = m["received"]
    print(f"media received           {x['packages']} packages, {x['bits_per_s'] / 1e6:.1f} Mbit/s of payload")
print(f"generator send lag       p50 {g['send_lag']['p50_ms']:.2f} ms, p99 {g['send_lag']['p99_ms']:.2f} ms, max {g['send_lag']['max_ms']:.2f} ms (saturated: {g['saturated']})")
print(f"generator CPU, RSS       {g['cpu_s']:.1f} s, {g['rss_bytes'] / 1048576:.0f} MiB")
print(f"verdict                  {r['verdict']}")
PY
done
