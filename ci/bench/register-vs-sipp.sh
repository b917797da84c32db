#!/usr/bin/env bash
# The same number of digest-authenticated registrations against the same
# Kamailio (ci/interop/kamailio.cfg, one password for every device), once
# from SIPp (the registration half of ci/interop/sipp-register.xml, device
# IDs from an injection file) and once from `camcert load gb28181`. Prints
# registrations per second and CPU seconds per registration of each
# generator, and of Kamailio while it served each, side by side.
#
#   CAMERAS=10000 RAMP=2000 ci/bench/register-vs-sipp.sh
#   ROUNDS=3 BASELINE=old/camcert ci/bench/register-vs-sipp.sh   (ratios per round)
#
# Then SIPp registers the same devices with the reference platform
# (`camcert load platform`) instead of Kamailio, and the platform's CPU
# per registration is printed beside Kamailio's, and for the first and
# the last tenth of the devices apart (does it grow with those held?).
#
# BASELINE=path/to/an/older/camcert adds a column: the same run from that
# binary, in the same invocation, so a change is measured side by side.
#
# registrations/s: SIPp, successful calls over its wall time (it exits after
# its last call); camcert, first REGISTER to last 200 (from its report).
# CPU: user + system of the generator process (from wait4: nanosecond run time), and the sum over
# Kamailio's processes (/proc) during the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v kamailio >/dev/null || { echo "kamailio not installed (ci/install-deps.sh)"; exit 2; }
command -v sipp >/dev/null || { echo "sipp not installed (ci/install-deps.sh)"; exit 2; }
cameras=${CAMERAS:-10000}
ramp=${RAMP:-2000}
base=${ID_BASE:-34020000001320000001}
password=bench-password-$$
cargo build --quiet --release
out=$(mktemp -d)
kpid=
cleanup() {
  [ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $out"; else rm -rf "$out"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# CPU seconds of Kamailio's processes (the main one and its children).
kamailio_cpu() {
  local pids
  pids="$kpid $(ps -o pid= --ppid "$kpid" | tr '\n' ' ')"
  for p in $pids; do
    [ -r "/proc/$p/stat" ] && sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }'
  done | awk '{ s += $1 } END { printf "%.2f", s / 100 }'
}

start_kamailio() {
  kport=$(free_port)
  sed -e "s/CAMCERT_PORT/$kport/g" -e "s/CAMCERT_PASSWORD/$password/g" \
    ci/interop/kamailio.cfg >"$out/kamailio.cfg"
  mkdir -p "$out/k"
  kamailio -f "$out/kamailio.cfg" -DD -E -w "$out/k" -P "$out/k/kamailio.pid" \
    >/dev/null 2>"$out/kamailio.log" &
  kpid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "kamailio did not start:"; cat "$out/kamailio.log"; exit 2
}

stop_kamailio() {
  kill "$kpid"; wait "$kpid" 2>/dev/null || true; kpid=
}

# The registration half of the shared scenario, with the device ID from the
# injection file. SIPp expands no field inside [authentication ...], so
# every SIPp device answers the challenge as one username (Kamailio's
# pv_www_authenticate checks the digest, not the name), with the password
# written into the scenario copy rather than onto the command line.
# Kamailio sends no Date:, so the scenario's Date check is left out.
python3 - ci/interop/sipp-register.xml "$out/register.xml" "$password" <<'PY'
import re, sys
src = open(sys.argv[1], encoding="iso-8859-1").read()
cut = src.index("</recv>", src.index("CSeq: 2 REGISTER")) + len("</recv>")
body = src[:cut].replace("[device_id]", "[field0]").replace(
    "[authentication]", f"[authentication username=camcert password={sys.argv[3]}]")
body = re.sub(r'<recv response="200">.*?</recv>', '<recv response="200"/>', body, flags=re.S)
open(sys.argv[2], "w", encoding="iso-8859-1").write(body + "\n</scenario>\n")
PY
python3 - "$base" "$cameras" >"$out/devices.csv" <<'PY'
import sys
base, n = int(sys.argv[1]), int(sys.argv[2])
w = len(sys.argv[1])
print("SEQUENTIAL")
for k in range(n):
    print(f"{base + k:0{w}d};")
PY

# Run a command; write "wall user system" seconds to FILE, from the
# kernel's accounting of the process (wait4: nanosecond run time, not
# 10 ms ticks).
cputime() { # FILE COMMAND...
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, _, ru = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write(f"{time.monotonic() - t0:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f}\n")
PY
}

successful_calls() { # SIPP_STAT_CSV
  python3 - "$1" <<'PY'
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
head, last = rows[0], rows[-1]
print(last[head.index("SuccessfulCall(C)")])
PY
}

# --- SIPp ---
run_sipp() { # NAME
  start_kamailio
  local k_before k_after
  k_before=$(kamailio_cpu)
  ( cd "$out" && cputime "$out/$1.time" \
      sipp -sf "$out/register.xml" -inf "$out/devices.csv" -m "$cameras" -r "$ramp" \
        -s 34020000002000000001 -key domain 3402000000 \
        -i 127.0.0.1 -p "$(free_port)" "127.0.0.1:$kport" \
        -nostdin -timeout 120s -trace_stat -stf "$out/$1-stat.csv" -fd 60 ) || true
  k_after=$(kamailio_cpu)
  stop_kamailio
  echo "$k_before $k_after" >"$out/$1.kamailio"
  successful_calls "$out/$1-stat.csv" >"$out/$1.ok"
}
run_sipp sipp
k0=$(cut -d' ' -f1 "$out/sipp.kamailio")
k1=$(cut -d' ' -f2 "$out/sipp.kamailio")
read -r s_wall s_user s_sys < <(tail -n 1 "$out/sipp.time")
s_ok=$(cat "$out/sipp.ok")

# --- SIPp against the reference platform (`camcert load platform`, the
# fleet's built-in target), the same scenario and devices: its CPU per
# registration beside Kamailio's. SIPp registers the devices in three
# runs against one platform process: the first tenth (the platform holds
# 0 to N/10), the middle, and the last tenth (it holds 9N/10 to N). The
# first and last tenths' CPU per registration, side by side, say whether
# the cost of a registration grows with the registrations held. CPU time
# here is the sum over the platform's threads of their on-CPU time
# (/proc/PID/task/*/schedstat, nanoseconds), so a tenth of a small run is
# still measured to well under a percent.
pport=$(free_port)
CAMCERT_PASSWORD=$password ./target/release/camcert load platform \
  --listen "udp://127.0.0.1:$pport" --devices-from "$base" --devices-count "$cameras" \
  --keepalive 3600 >/dev/null 2>"$out/platform.log" &
ppid=$!
for _ in $(seq 100); do
  ss -Hlun "sport = :$pport" 2>/dev/null | grep -q . && break
  sleep 0.1
done
on_cpu_s() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.6f", s / 1e9 }'; }
tenth=$((cameras / 10))
python3 - "$out/devices.csv" "$out" "$tenth" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")[1:]
lines = [l for l in lines if l]
t = int(sys.argv[3])
for name, part in (("first", lines[:t]), ("middle", lines[t:len(lines) - t]), ("last", lines[len(lines) - t:])):
    open(f"{sys.argv[2]}/devices-{name}.csv", "w").write("SEQUENTIAL\n" + "\n".join(part) + "\n")
PY
: >"$out/platform.cpu"
for part in first middle last; do
  count=$(($(wc -l <"$out/devices-$part.csv") - 1))
  c0=$(on_cpu_s "$ppid")
  ( cd "$out" && sipp -sf "$out/register.xml" -inf "$out/devices-$part.csv" -m "$count" -r "$ramp" \
        -s 34020000002000000001 -key domain 3402000000 \
        -i 127.0.0.1 -p "$(free_port)" "127.0.0.1:$pport" \
        -nostdin -timeout 120s -trace_stat -stf "$out/sipp-platform-$part.csv" -fd 60 \
        >/dev/null 2>&1 ) || true
  c1=$(on_cpu_s "$ppid")
  ok=$(successful_calls "$out/sipp-platform-$part.csv")
  echo "$part $c0 $c1 $ok" >>"$out/platform.cpu"
done
kill "$ppid"; wait "$ppid" 2>/dev/null || true

# --- camcert (and the baseline binary, if given) ---
duration=$(awk -v n="$cameras" -v r="$ramp" 'BEGIN { printf "%.1f", n / r + 1 }')
run_camcert() { # BINARY NAME
  start_kamailio
  local k_before k_after
  k_before=$(kamailio_cpu)
  CAMCERT_PASSWORD=$password cputime "$out/$2.time" \
    "$1" load gb28181 --target "udp://127.0.0.1:$kport" \
      --cameras "$cameras" --ramp "$ramp" --duration "$duration" --keepalive 3600 \
      --id-base "$base" --json "$out/$2.json" || true
  k_after=$(kamailio_cpu)
  stop_kamailio
  echo "$k_before $k_after" >"$out/$2.kamailio"
}
run_camcert ./target/release/camcert camcert
if [ -n "${BASELINE:-}" ]; then
  run_camcert "$BASELINE" baseline
fi
# ROUNDS=N: N-1 more rounds of the same runs, one after another, each
# round's ratios side by side (the machine's noise shows in their spread).
rounds=${ROUNDS:-1}
for r in $(seq 2 "$rounds"); do
  run_sipp "sipp-$r"
  run_camcert ./target/release/camcert "camcert-$r"
  [ -n "${BASELINE:-}" ] && run_camcert "$BASELINE" "baseline-$r"
done

python3 - "$out" "$cameras" "$ramp" "$s_ok" "$s_wall" "$s_user" "$s_sys" "$k0" "$k1" "$rounds" <<'PY'
import json, os, statistics, sys
a = sys.argv
out, n, ramp = a[1], int(a[2]), a[3]
s_ok, s_wall, s_cpu = int(a[4]), float(a[5]), float(a[6]) + float(a[7])
sk = float(a[9]) - float(a[8])
def per(cpu, ok):
    return f"{cpu * 1000 / ok:.3f} ms" if ok else "n/a"
runs = [("camcert load", "camcert")]
if os.path.exists(f"{out}/baseline.json"):
    runs.append(("baseline", "baseline"))
cols = []
for label, name in runs:
    r = json.load(open(f"{out}/{name}.json"))
    _, user, sys_ = open(f"{out}/{name}.time").read().split()[-3:]
    k0, k1 = map(float, open(f"{out}/{name}.kamailio").read().split())
    cols.append((label, r, float(user) + float(sys_), k1 - k0))
print(f"{n} digest registrations at {ramp}/s against Kamailio on loopback")
print(f"{'':28}{'SIPp':>16}" + "".join(f"{l:>16}" for l, *_ in cols))
print(f"{'registered':28}{s_ok:>16}" + "".join(f"{r['registered']:>16}" for _, r, _, _ in cols))
print(f"{'registrations/s':28}{s_ok / s_wall:>16.0f}" + "".join(f"{r['registrations_per_s']:>16.0f}" for _, r, _, _ in cols))
print(f"{'generator CPU':28}{s_cpu:>14.3f} s" + "".join(f"{c:>14.3f} s" for _, _, c, _ in cols))
print(f"{'generator CPU/registration':28}{per(s_cpu, s_ok):>16}" + "".join(f"{per(c, r['registered']):>16}" for _, r, c, _ in cols))
print(f"{'Kamailio CPU/registration':28}{per(sk, s_ok):>16}" + "".join(f"{per(k, r['registered']):>16}" for _, r, _, k in cols))
parts = {}
for line in open(f"{out}/platform.cpu"):
    name, c0, c1, ok = line.split()
    parts[name] = (float(c1) - float(c0), int(ok))
p_cpu = sum(c for c, _ in parts.values())
p_ok = sum(k for _, k in parts.values())
print(f"SIPp against the reference platform (camcert load platform): {p_ok} of {n} registered, "
      f"platform CPU {p_cpu:.2f} s, {per(p_cpu, p_ok)}/registration "
      f"(Kamailio, same SIPp run above: {per(sk, s_ok)})")
(fc, fk), (lc, lk) = parts["first"], parts["last"]
if fk and lk:
    ratio = (lc / lk) / (fc / fk) if fc else float("nan")
    print(f"  platform CPU per registration while it holds 0..{fk}: {per(fc, fk)}; "
          f"{n - lk}..{n}: {per(lc, lk)} (last / first: {ratio:.2f})")
for label, r, _, _ in cols:
    g = r["generator"]
    print(f"{label}: own report {g['cpu_s']:.2f} s CPU during the run ({per(g['cpu_s'], r['registered'])}/registration; process start and exit excluded); p99 register latency {r['register_latency']['p99_ms']:.2f} ms, failures {r['failures'] or 'none'}, {r['verdict']}")
rounds = int(a[10])
def cpu_of(name):
    _, user, sys_ = open(f"{out}/{name}.time").read().split()[-3:]
    return float(user) + float(sys_)
def ok_of(name):
    if name.startswith("sipp"):
        return int(open(f"{out}/{name}.ok").read() or 0)
    return json.load(open(f"{out}/{name}.json"))["registered"]
if rounds > 1:
    print(f"generator CPU per registration, {rounds} rounds (each: SIPp, then camcert" + (", then the baseline)" if len(cols) > 1 else ")"))
    ratios = {l: [] for l, *_ in cols}
    for k in range(1, rounds + 1):
        suffix = "" if k == 1 else f"-{k}"
        s_per = cpu_of(f"sipp{suffix}") / max(ok_of(f"sipp{suffix}"), 1)
        line = f"  round {k}: SIPp {s_per * 1000:.4f} ms"
        for label, *_ in cols:
            name = ("camcert" if label == "camcert load" else "baseline") + suffix
            c_per = cpu_of(name) / max(ok_of(name), 1)
            ratios[label].append(c_per / s_per)
            line += f", {label} {c_per * 1000:.4f} ms ({c_per / s_per:.2f}x SIPp)"
        print(line)
    for label, rs in ratios.items():
        print(f"  {label}: median {statistics.median(rs):.2f}x SIPp (min {min(rs):.2f}, max {max(rs):.2f})")
PY
