#!/usr/bin/env bash
# The hostile-peer tests: stream framing proptests (SIP by Content-Length,
# RTP by RFC 4571), the transport's own unit tests (tap, driver), and the
# loopback attacks on the reference platform, each followed by a liveness
# probe. Loopback only; every loop is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== framing"
cargo test --locked --test hostile_framing
echo "== transport units"
cargo test --locked --lib -- transport:: proto::sip::message proto::rtp::framing
echo "== attacks on the reference platform"
cargo test --locked --test hostile_transport
