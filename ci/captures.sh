#!/usr/bin/env bash
# Records the small loopback captures under captures/ from real peers
# talking to each other (captures/README.md lists them):
#
#   - SIPp registering and unregistering with Kamailio (UDP and TCP);
#   - camcert's reference camera against camcert's reference platform
#     (registration, keepalives, a catalog query, a live RTP/PS session),
#     over SIP/UDP and SIP/TCP;
#   - the same camera with the faults `rtp-wrong-ssrc` and `missing-psm`
#     (the faulty recording `camcert lint` must fail);
#   - ffmpeg sending H.264 and PCMA over RTP.
#
# With arguments it records only those groups: sipp, gb28181,
# gb28181-faulty, ffmpeg (e.g. `ci/captures.sh gb28181-faulty`).
#
# Needs dumpcap, tshark, kamailio, sipp and ffmpeg (ci/install-deps.sh) and
# camcert (CAMCERT=path, default: `cargo build` and target/debug/camcert).
# When it may (root and `unshare -n`), it runs in a network namespace of its
# own, so nothing else on loopback ends up in the files; otherwise it
# captures on the host's loopback with filters on the ports it chose.
#
# The captures hold timestamps, ephemeral ports and random Call-IDs, so two
# recordings never match byte for byte: the committed files are the
# reference, and tests/decode.rs and golden/decode/ are written against
# them. Regenerate on purpose only, then refresh the snapshots:
#   INSTA_UPDATE=always cargo test --test decode golden
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ -z "${CAMCERT_CAPTURES_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
  exec env CAMCERT_CAPTURES_NETNS=1 unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

for tool in dumpcap tshark kamailio sipp ffmpeg curl; do
  command -v "$tool" >/dev/null || { echo "captures: $tool is missing (ci/install-deps.sh installs it)" >&2; exit 1; }
done
if [ -z "${CAMCERT:-}" ]; then
  cargo build --quiet --bin camcert
  CAMCERT="${CARGO_TARGET_DIR:-$root/target}/debug/camcert"
fi
out="$root/captures"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A test password, for the peers below only (never a real one).
export CAMCERT_PASSWORD=capture-pw-1
DEV=34020000001320000001
PLAT=34020000002000000001

# capture FILTER FILE CMD...: record loopback frames matching FILTER while
# CMD runs, into FILE (pcapng, or pcap when FILE ends in .pcap).
capture() {
  local filter=$1 file=$2; shift 2
  local fmt=()
  case "$file" in *.pcap) fmt=(-P) ;; esac
  rm -f "$work/cap"
  dumpcap -q -i lo -f "$filter" "${fmt[@]}" -w "$work/cap" 2>"$work/dumpcap.log" &
  local cap=$!
  pids+=("$cap")
  for _ in $(seq 100); do [ -s "$work/cap" ] && break; sleep 0.1; done
  [ -s "$work/cap" ] || { cat "$work/dumpcap.log" >&2; exit 1; }
  sleep 0.3
  "$@"
  sleep 0.5
  kill -INT "$cap"
  wait "$cap" || true
  cp "$work/cap" "$out/$file"
  chmod 644 "$out/$file"
  echo "captures: $file ($(stat -c %s "$out/$file") bytes)"
}

wait_tcp() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "captures: nothing listens on port $1" >&2
  exit 1
}

# want GROUP: recording GROUP was asked for (or no group was named).
groups=("$@")
want() {
  [ ${#groups[@]} -eq 0 ] && return 0
  local g
  for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done
  return 1
}

# --- SIPp and Kamailio ---
if want sipp; then
kam_port=25060
sed -e "s/CAMCERT_PORT/$kam_port/g" -e "s/CAMCERT_PASSWORD/$CAMCERT_PASSWORD/g" \
  ci/interop/kamailio.cfg >"$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -DD -E -w "$work" -P "$work/kamailio.pid" 2>"$work/kamailio.log" &
pids+=($!)
wait_tcp $kam_port
# The interop scenario without its Date check (Kamailio sends no Date).
sed -e '/<action>/,/<\/action>/d' -e '/<Reference /d' ci/interop/sipp-register.xml >"$work/register.xml"
sipp_register() {
  sipp -sf "$work/register.xml" -m 1 -au "$DEV" -ap "$CAMCERT_PASSWORD" -s "$PLAT" \
    -key device_id "$DEV" -key domain 3402000000 -t "$1" \
    -i 127.0.0.1 -p "$2" "127.0.0.1:$kam_port" -nostdin -timeout 10s -timeout_error \
    >/dev/null 2>"$work/sipp.log" || { cat "$work/sipp.log" >&2; exit 1; }
}
(cd "$work" && capture "port $kam_port" sipp-kamailio-register-udp.pcapng sipp_register u1 25070)
(cd "$work" && capture "port $kam_port" sipp-kamailio-register-tcp.pcap sipp_register t1 25071)
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
fi

# --- camcert's reference camera and platform ---
# gb28181 TRANSPORT SIP_PORT CONTROL_PORT FILE [CAMERA_FAULT...]: register,
# three keepalives a second apart, a catalog query, two seconds of live
# video, BYE.
gb28181() {
  local t=$1 port=$2 control=$3 file=$4
  shift 4
  local faults=()
  for f in "$@"; do faults+=(--fault "$f"); done
  session() {
    "$CAMCERT" serve gb28181-platform --listen "$t://127.0.0.1:$port" --control "127.0.0.1:$control" \
      --device "$DEV" --set keepalive_interval=1 --duration 30 >"$work/platform.log" 2>&1 &
    local plat=$!
    wait_tcp "$control"
    "$CAMCERT" serve gb28181-device --registrar "$t://127.0.0.1:$port" --device-id "$DEV" \
      --set keepalive_interval=1 --duration 30 --unregister-on-exit "${faults[@]}" >"$work/device.log" 2>&1 &
    local dev=$!
    for _ in $(seq 100); do
      curl -sf "127.0.0.1:$control/devices" | grep -q '"registered":true' && break
      sleep 0.1
    done
    sleep 2.5
    curl -sf -XPOST "127.0.0.1:$control/devices/$DEV/query-catalog" >/dev/null
    sleep 0.5
    curl -sf -XPOST "127.0.0.1:$control/devices/$DEV/play" >/dev/null
    sleep 2
    curl -sf -XPOST "127.0.0.1:$control/devices/$DEV/bye" >/dev/null
    sleep 0.5
    kill -INT "$dev"; wait "$dev" || true
    kill -INT "$plat"; wait "$plat" || true
  }
  # The SIP port, and the media: UDP datagrams between loopback ports
  # other than the control API's.
  capture "port $port or (udp and not port $control)" "$file" session
}
if want gb28181; then
  gb28181 udp 25080 25081 gb28181-camcert-device-platform-udp.pcapng
  gb28181 tcp 25082 25083 gb28181-camcert-device-platform-tcp.pcap
fi
if want gb28181-faulty; then
  gb28181 udp 25084 25085 gb28181-camcert-faulty-media-udp.pcapng rtp-wrong-ssrc missing-psm
fi

# --- ffmpeg: H.264 and PCMA over RTP, two seconds ---
ffmpeg_rtp() {
  ffmpeg -hide_banner -loglevel error -re -i captures/sample-h264-320x240-25fps.h264 \
    -f lavfi -t 2 -i sine=frequency=440:sample_rate=8000 \
    -map 0:v -c:v copy -f rtp -ssrc 287454020 "rtp://127.0.0.1:25090?pkt_size=1200" \
    -map 1:a -c:a pcm_alaw -f rtp -ssrc 1432778632 "rtp://127.0.0.1:25092" >/dev/null
}
if want ffmpeg; then
  capture "udp and portrange 25090-25093" ffmpeg-rtp-h264-pcma.pcap ffmpeg_rtp
fi

ls -l "$out"
