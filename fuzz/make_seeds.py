#!/usr/bin/env python3
"""Write fuzz/seeds/<target>/ from the project's own golden files. Run from anywhere; rerun when the golden files change."""
import os, pathlib, re, struct

root = pathlib.Path(__file__).resolve().parent.parent
seeds = root / "fuzz" / "seeds"


def put(target, name, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def snap_body(path):
    text = path.read_text(encoding="utf-8")
    # insta: "---" header "---" then the value.
    parts = text.split("---\n", 2)
    return parts[2] if len(parts) == 3 else text


for snap in sorted((root / "golden").glob("*.snap")):
    body = snap_body(snap)
    name = snap.stem
    if "\u240d\u240a" in body:
        wire = body.replace("\u240d\u240a\n", "\r\n").replace("\u240d\u240a", "\r\n")
        data = wire.encode("utf-8")
        if re.match(r"^[A-Z]+ sip:|^SIP/2\.0 ", wire):
            put("sip_message", name, data)
            put("sip_stream", name, data + data)
            head, _, sdp = wire.partition("\r\n\r\n")
            if "application/sdp" in head and sdp:
                put("sdp", name, sdp.encode("utf-8"))
            if "MANSCDP" in head and sdp:
                put("manscdp", name, sdp.encode("utf-8"))
    elif name.startswith("manscdp-"):
        lines = body.split("\n", 1)
        xml = lines[1] if lines[0].startswith("charset:") else body
        put("manscdp", name, xml.encode("utf-8"))

for hexcmd in ["A50F0100000000B5", "A50F0101FA0000B0", "A50F0102FA0000B1", "A50F010400FA00B3"]:
    put("ptz", hexcmd, hexcmd.encode())

ps = (root / "golden" / "ps-h264-first-gop.ps").read_bytes()
put("ps_demux", "h264-first-gop", ps)
# The same program stream as RTP (PT 96, SSRC 0x01020304), 1,400-byte
# payloads: RFC 4571 framed for rtp_framing, 0xFF 0xFE separated for
# the validator half of ps_demux.
packets = []
for i in range(0, len(ps), 1400):
    hdr = struct.pack("!BBHII", 0x80, 96 | (0x80 if i + 1400 >= len(ps) else 0), i // 1400, 3600, 0x01020304)
    packets.append(hdr + ps[i:i + 1400])
put("rtp_framing", "h264-first-gop-rfc4571", b"".join(struct.pack("!H", len(p)) + p for p in packets))
put("ps_demux", "h264-first-gop-rtp", b"\xff\xfe".join(packets))

# The suites and captures themselves are read in place by ci/fuzz.sh.
