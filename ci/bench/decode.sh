#!/usr/bin/env bash
# Times `camcert decode` (release build) against tshark's field extraction
# of SIP and RTP headers on one large capture, and prints the ratio.
#
# The capture is the committed recording of a camcert camera/platform
# session over SIP/UDP with RTP/PS (captures/), repeated back to back with
# each copy's timestamps moved past the previous one's, until it reaches
# DECODE_BENCH_MB megabytes (default 100). Each tool is run three times and
# the fastest run counts.
#
#   ci/bench/decode.sh                   # builds camcert --release
#   CAMCERT=target/release/camcert DECODE_BENCH_MB=200 ci/bench/decode.sh
#
# Needs tshark, editcap (Wireshark's tools; ci/install-deps.sh) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in tshark editcap python3; do
  command -v "$tool" >/dev/null || { echo "bench/decode: $tool is missing" >&2; exit 1; }
done
mb=${DECODE_BENCH_MB:-100}
if [ -z "${CAMCERT:-}" ]; then
  cargo build --quiet --release --bin camcert
  CAMCERT="${CARGO_TARGET_DIR:-target}/release/camcert"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

editcap -F pcap captures/gb28181-camcert-device-platform-udp.pcapng "$work/one.pcap"
python3 - "$work/one.pcap" "$work/big.pcap" "$mb" <<'PY'
import struct, sys
src, dst, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
head, body = data[:24], data[24:]
endian = "<" if head[:4] == b"\xd4\xc3\xb2\xa1" else ">"
records, off = [], 0
while off + 16 <= len(body):
    sec, usec, incl, orig = struct.unpack(endian + "IIII", body[off:off + 16])
    records.append((sec * 1_000_000 + usec, body[off + 16:off + 16 + incl], orig))
    off += 16 + incl
first, last = records[0][0], records[-1][0]
span = last - first + 20_000
target = mb * 1_000_000
with open(dst, "wb") as out:
    out.write(head)
    written, copy = 24, 0
    while written < target:
        shift = copy * span
        for t, frame, orig in records:
            t += shift
            out.write(struct.pack(endian + "IIII", t // 1_000_000, t % 1_000_000, len(frame), orig))
            out.write(frame)
            written += 16 + len(frame)
        copy += 1
print(f"bench/decode: {dst}: {copy} copies of {len(records)} frames, {written / 1e6:.1f} MB")
PY

best() {
  local best=""
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    local dt
    dt=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $dt < $best else 1)"; then best=$dt; fi
  done
  echo "$best"
}

ours=$(best "$CAMCERT" decode --format json "$work/big.pcap")
flows=$(best "$CAMCERT" decode --flows "$work/big.pcap")
theirs=$(best tshark -r "$work/big.pcap" -o rtp.heuristic_rtp:TRUE -Y "sip or rtp" -T fields \
  -e frame.number -e sip.Method -e sip.Status-Code -e sip.Call-ID -e sip.CSeq \
  -e rtp.ssrc -e rtp.seq -e rtp.timestamp -e rtp.marker)
size=$(stat -c %s "$work/big.pcap")
python3 - "$size" "$ours" "$flows" "$theirs" <<'PY'
import sys
size, ours, flows, theirs = int(sys.argv[1]), *map(float, sys.argv[2:])
mb = size / 1e6
print(f"capture: {mb:.1f} MB")
print(f"camcert decode --format json: {ours:8.2f} s  {mb / ours:8.1f} MB/s")
print(f"camcert decode --flows:       {flows:8.2f} s  {mb / flows:8.1f} MB/s")
print(f"tshark -T fields (SIP, RTP):  {theirs:8.2f} s  {mb / theirs:8.1f} MB/s")
print(f"ratio tshark / camcert decode: {theirs / ours:.1f}x")
PY
