#!/usr/bin/env bash
# 10,000 simulated GB/T 28181 cameras at a 2,000/s ramp against the built-in
# reference platform on loopback, from one camcert process (release build).
# Prints registrations per second, p99 register latency, RSS per camera and
# CPU per registration of the generator and of the platform.
#
#   CAMERAS=10000 RAMP=2000 DURATION=10 ci/bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cameras=${CAMERAS:-10000}
ramp=${RAMP:-2000}
duration=${DURATION:-$(awk -v n="$cameras" -v r="$ramp" 'BEGIN { printf "%d", n / r + 5 }')}
cargo build --quiet --release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Keepalives are off the clock here (interval longer than the run): the
# figures are those of registration.
CAMCERT_PASSWORD=${CAMCERT_PASSWORD:-bench-password} ./target/release/camcert load gb28181 \
  --cameras "$cameras" --ramp "$ramp" --duration "$duration" --keepalive 3600 \
  --json "$out/load.json" >"$out/summary.txt" 2>"$out/progress.log" || true
python3 - "$out/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g, p, l = r["generator"], r["platform"] or {}, r["register_latency"]
def ms(v):
    return "n/a" if v is None else f"{v:.3f} ms"
print(f"cameras                  {r['cameras']} (ramp {r['ramp_per_s']:.0f}/s, {r['duration_s']:.0f} s)")
print(f"registered               {r['registered']} ({r['failures_total']} failures: {r['failures'] or 'none'})")
print(f"registrations/s          {r['registrations_per_s']:.0f}")
print(f"register latency         p50 {l['p50_ms']:.2f} ms, p99 {l['p99_ms']:.2f} ms, max {l['max_ms']:.2f} ms")
print(f"generator send lag       p50 {g['send_lag']['p50_ms']:.3f} ms, p99 {g['send_lag']['p99_ms']:.3f} ms, max {g['send_lag']['max_ms']:.3f} ms (saturated: {g['saturated']})")
print(f"generator RSS/camera     {g['rss_per_camera_bytes']:.0f} B (RSS {g['rss_bytes'] / 1048576:.1f} MiB)")
print(f"generator CPU            {g['cpu_s']:.2f} s, {ms(g['cpu_per_registration_ms'])} per registration")
print(f"platform CPU             {p.get('cpu_s', 0):.2f} s, {ms(p.get('cpu_per_registration_ms'))} per registration (RSS {p.get('rss_bytes', 0) / 1048576:.1f} MiB)")
print(f"verdict                  {r['verdict']}")
PY
