#!/usr/bin/env bash
# 10,000 simulated GB/T 28181 cameras at a 2,000/s ramp against the built-in
# reference platform on loopback, from one camcert process (release build).
# Prints registrations per second, p99 register latency, RSS per camera and
# CPU per registration of the generator and of the platform.
#
# Then the media scenario: for each count in STREAMS, that many cameras
# register and the platform INVITEs every one of them for live video at
# BITRATE kbit/s, for MEDIA_DURATION seconds. Prints what the fleet sent
# and the platform received (packets, Mbit/s, loss, jitter, INVITE to
# first packet), the media send lag, the send rate against a bare batched
# sender (--calibrate), and which side was saturated: the generator (its
# send lag passed the threshold), the platform (it lost packets while the
# generator kept up), or neither. Nothing here asserts a timing. The
# platform asks for 32 MiB receive buffers on its media sockets; the kernel
# caps them at net.core.rmem_max, so a small cap shows up as loss.
#
#   CAMERAS=10000 RAMP=2000 DURATION=10 ci/bench/load.sh
#   SCENARIOS=media STREAMS="1000 10000" BITRATE=256 MEDIA_DURATION=20 ci/bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cameras=${CAMERAS:-10000}
ramp=${RAMP:-2000}
duration=${DURATION:-$(awk -v n="$cameras" -v r="$ramp" 'BEGIN { printf "%d", n / r + 5 }')}
scenarios=${SCENARIOS:-register media}
streams=${STREAMS:-1000 10000}
bitrate=${BITRATE:-256}
media_duration=${MEDIA_DURATION:-20}
cargo build --quiet --release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [[ " $scenarios " == *" register "* ]]; then
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
fi

if [[ " $scenarios " == *" media "* ]]; then
for n in $streams; do
  echo
  # Registration at 2,000/s at most, so that INVITEs and streams start
  # spread out; the streams run for the rest of the run.
  ramp_m=$(( n < 2000 ? n : 2000 ))
  CAMCERT_PASSWORD=${CAMCERT_PASSWORD:-bench-password} ./target/release/camcert load gb28181 \
    --cameras "$n" --ramp "$ramp_m" --duration "$media_duration" --keepalive 3600 \
    --streams all --bitrate "$bitrate" --calibrate \
    --json "$out/media-$n.json" >"$out/media-$n.txt" 2>"$out/media-$n.log" || true
  python3 - "$out/media-$n.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g, m = r["generator"], r.get("media") or {}
x = m.get("received") or {}
lag, first = m.get("send_lag", {}), x.get("invite_to_first_packet", {})
jit, loss = x.get("jitter", {}), x.get("loss_pct", {})
if g["saturated"]:
    side = "generator (camcert): send lag p99 over the threshold; the figures describe camcert"
elif x.get("lost", 0) > 0:
    side = "platform: it lost packets while the generator kept its schedule"
else:
    side = "neither"
pct = m.get("send_rate_pct")
print(f"streams                  {m.get('streams_started', 0)} of {m.get('streams_requested', 0)} at {m.get('bitrate_kbit_s', 0):.0f} kbit/s, {r['elapsed_s']:.0f} s ({r['registered']}/{r['cameras']} registered)")
print(f"media sent               {m.get('packets_sent', 0)} packets, {m.get('sent_bits_per_s', 0) / 1e6:.1f} Mbit/s, busiest second {m.get('peak_packets_per_s', 0):.0f} packets/s" + (f" ({pct:.1f}% of a bare batched sender)" if pct is not None else ""))
print(f"media received           {x.get('packets', 0)} packets, {x.get('bits_per_s', 0) / 1e6:.1f} Mbit/s; lost {x.get('lost', 0)} of {x.get('expected', 0)} on {x.get('streams_with_loss', 0)} streams")
print(f"per-stream loss          p50 {loss.get('p50', 0):.3f}%, p99 {loss.get('p99', 0):.3f}%, max {loss.get('max', 0):.3f}%")
print(f"per-stream jitter        p50 {jit.get('p50_ms', 0):.3f} ms, p99 {jit.get('p99_ms', 0):.3f} ms")
print(f"INVITE to first packet   p50 {first.get('p50_ms', 0):.2f} ms, p99 {first.get('p99_ms', 0):.2f} ms")
print(f"media send lag           p50 {lag.get('p50_ms', 0):.3f} ms, p99 {lag.get('p99_ms', 0):.3f} ms, max {lag.get('max_ms', 0):.3f} ms")
print(f"generator CPU            {g['cpu_s']:.2f} s (RSS {g['rss_bytes'] / 1048576:.1f} MiB); platform CPU {(r['platform'] or {}).get('cpu_s', 0):.2f} s")
print(f"saturated side           {side}")
print(f"verdict                  {r['verdict']}")
PY
done
fi
