#!/usr/bin/env bash
# Regenerates the small Annex B samples under captures/ with ffmpeg from
# Debian (libx264 / libx265): 50 frames of the lavfi test pattern, 320x240 at
# 25 fps, an IDR every 25 frames, no B-frames (GB/T 28181 cameras send none),
# parameter sets repeated before every key frame.
#
# The output of an encoder depends on its version, so the committed samples
# are the reference: regenerate only to replace them on purpose, and then
# regenerate the golden files too (tests/media_golden.rs says how).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ffmpeg >/dev/null || { echo "make-captures: ffmpeg is missing (ci/install-deps.sh installs it)" >&2; exit 1; }
mkdir -p captures
common=(-hide_banner -loglevel error -y -f lavfi -i testsrc=size=320x240:rate=25 -frames:v 50 -pix_fmt yuv420p)
ffmpeg "${common[@]}" -c:v libx264 -profile:v baseline -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 -crf 23 \
  -bsf:v h264_mp4toannexb -f h264 captures/sample-h264-320x240-25fps.h264
ffmpeg "${common[@]}" -c:v libx265 -g 25 -bf 0 -crf 23 \
  -x265-params "keyint=25:min-keyint=25:scenecut=0:open-gop=0:bframes=0:repeat-headers=1:log-level=error" \
  -f hevc captures/sample-h265-320x240-25fps.h265
ls -l captures/*.h264 captures/*.h265
