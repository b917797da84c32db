#!/usr/bin/env bash
# Installs the real components the tests talk to (Debian packages):
# Kamailio (SIP registrar/proxy), SIPp, baresip (a SIP user agent standing
# in for a camera camcert did not write), tshark, ffmpeg (ffprobe decodes
# camcert's PS; ffmpeg's PS muxer feeds camcert's demuxer), and Chromium
# (headless, renders report.html in tests/report_html.rs). Idempotent: skips
# what is there.
set -euo pipefail
need=()
command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
{ command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; } || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: kamailio, sipp, baresip, tshark, ffmpeg and chromium are present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${need[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-deps: done"
