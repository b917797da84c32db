//! PS over RTP, GB/T 28181 Annex C (C.2/C.3): one muxed PS frame is cut into RTP
//! payloads of at most `mtu - 12` bytes, all with the frame's 90 kHz timestamp
//! (`a=rtpmap:96 PS/90000`), the SSRC of the SDP `y=` line, consecutive sequence numbers
//! (wrapping at 65536) and the marker bit on the last packet of the frame only.
//!
//! Drive the sender with [`Packetizer::new`] + [`Packetizer::packetize`] per frame, the
//! receiver with [`Depacketizer::push`] per packet and [`Depacketizer::pop`] for frames.
//! [`PacketizerFaults`] produces deliberately wrong packets for negative tests.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::proto::rtp::{RtpError, RtpHeader, RtpPacket, FIXED_HEADER_LEN, PS_PAYLOAD_TYPE};

/// Default largest RTP packet (header + payload) in bytes.
pub const DEFAULT_MTU: usize = 1400;

/// Configuration errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketizeError {
    /// MTU must leave at least one payload byte and fit the RFC 4571 length.
    #[error("mtu {0} is outside 13..=65535")]
    Mtu(usize),
    /// Payload type is 7 bits.
    #[error("payload type {0} exceeds 127")]
    PayloadType(u8),
    /// A fault clock rate of 0.
    #[error("fault clock rate must be non-zero")]
    ClockRate,
}

/// Deliberate deviations for negative tests. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketizerFaults {
    /// Send this SSRC instead of the configured (expected) one.
    pub ssrc: Option<u32>,
    /// Never set the marker bit.
    pub no_marker: bool,
    /// Derive timestamps on this clock instead of 90 kHz (1000 gives the common
    /// "milliseconds in the RTP timestamp" fault, 8000 an audio clock).
    pub timestamp_clock_hz: Option<u32>,
}

/// Packetizer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketizerConfig {
    /// SSRC (the SDP `y=` value).
    pub ssrc: u32,
    /// Payload type (96 for PS). The notes' unpacker is created with
    /// `rtp_payload_decode_create(100, "PS", ...)` while every SDP says
    /// `a=rtpmap:96 PS/90000`; 96 is the default, and it is configurable because the
    /// SDP negotiates it.
    pub payload_type: u8,
    /// Largest RTP packet, header included.
    pub mtu: usize,
    /// Sequence number of the first packet.
    pub initial_sequence: u16,
    /// Added (wrapping) to every timestamp; RFC 3550 recommends a random start.
    pub timestamp_offset: u32,
    /// Fault injection.
    pub faults: PacketizerFaults,
}

impl Default for PacketizerConfig {
    fn default() -> Self {
        PacketizerConfig {
            ssrc: 0,
            payload_type: PS_PAYLOAD_TYPE,
            mtu: DEFAULT_MTU,
            initial_sequence: 0,
            timestamp_offset: 0,
            faults: PacketizerFaults::default(),
        }
    }
}

impl PacketizerConfig {
    /// Defaults with the given SSRC.
    pub fn with_ssrc(ssrc: u32) -> Self {
        PacketizerConfig {
            ssrc,
            ..Self::default()
        }
    }
}

/// Cuts PS frames into RTP packets.
#[derive(Debug, Clone)]
pub struct Packetizer {
    cfg: PacketizerConfig,
    seq: u16,
}

impl Packetizer {
    /// Checks the configuration and builds a packetizer.
    pub fn new(cfg: PacketizerConfig) -> Result<Self, PacketizeError> {
        if !(FIXED_HEADER_LEN + 1..=usize::from(u16::MAX)).contains(&cfg.mtu) {
            return Err(PacketizeError::Mtu(cfg.mtu));
        }
        if cfg.payload_type > 127 {
            return Err(PacketizeError::PayloadType(cfg.payload_type));
        }
        if cfg.faults.timestamp_clock_hz == Some(0) {
            return Err(PacketizeError::ClockRate);
        }
        Ok(Packetizer {
            seq: cfg.initial_sequence,
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PacketizerConfig {
        &self.cfg
    }

    /// Sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.seq
    }

    /// RTP timestamp for a 90 kHz PTS: `pts mod 2^32 + offset`, or the PTS rescaled to
    /// the fault clock.
    ///
    /// The feature notes disagree on the clock: the UDP sender sets
    /// `SetOwnTimestampUnit(1.0 / 90000.0)`, the TCP senders/receivers
    /// `SetOwnTimestampUnit(90000.0 / 25.0)` and `SetOwnTimestampUnit(1.0 / packetSize)`
    /// (45678 Hz), and they add a fixed `SetDefaultTimestampIncrement(3600)` /
    /// `(160)` after *every packet*. Decision: the SDP `a=rtpmap:96 PS/90000` and
    /// RFC 3550 §5.1 ("several consecutive RTP packets will have equal timestamps if they
    /// are generated at once") win: 90 kHz, derived from the PTS, equal for all packets
    /// of a frame.
    pub fn rtp_timestamp(&self, pts: u64) -> u32 {
        let ticks = match self.cfg.faults.timestamp_clock_hz {
            Some(hz) => ((u128::from(pts) * u128::from(hz)) / 90_000) as u64,
            None => pts,
        };
        (ticks as u32).wrapping_add(self.cfg.timestamp_offset)
    }

    /// Packetizes one PS frame. An empty frame gives no packets.
    pub fn packetize(&mut self, pts: u64, ps: &[u8]) -> Vec<Bytes> {
        let max = self.cfg.mtu - FIXED_HEADER_LEN;
        let ts = self.rtp_timestamp(pts);
        let ssrc = self.cfg.faults.ssrc.unwrap_or(self.cfg.ssrc);
        let n = ps.len().div_ceil(max);
        let mut out = Vec::with_capacity(n);
        for (i, chunk) in ps.chunks(max).enumerate() {
            let mut h = RtpHeader::new(self.cfg.payload_type, self.seq, ts, ssrc);
            // The notes' UDP sender uses `SetDefaultMark(true)` (marker on every packet)
            // and the TCP sender `SetDefaultMark(false)` (never). Decision: RFC 3550 §5.1
            // / GB/T 28181 practice, marker only on the last packet of the frame.
            h.marker = i + 1 == n && !self.cfg.faults.no_marker;
            let mut b = BytesMut::with_capacity(FIXED_HEADER_LEN + chunk.len());
            // Cannot fail: version 2, payload type checked in `new`, no CSRCs.
            if h.encode(&mut b).is_ok() {
                b.extend_from_slice(chunk);
                out.push(b.freeze());
            }
            self.seq = self.seq.wrapping_add(1);
        }
        out
    }
}

/// A PS frame reassembled from RTP packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepacketizedUnit {
    /// RTP timestamp shared by the packets.
    pub timestamp: u32,
    /// SSRC of the packets.
    pub ssrc: u32,
    /// Payload type of the first packet.
    pub payload_type: u8,
    /// Concatenated payloads.
    pub data: Bytes,
    /// Packets used.
    pub packets: usize,
    /// Sequence number of the first packet.
    pub first_sequence: u16,
    /// Sequence number of the last packet.
    pub last_sequence: u16,
    /// The unit ended with a marker bit (false: ended by a timestamp/SSRC change or flush).
    pub marker: bool,
    /// Sequence numbers inside the unit were not consecutive (loss or reordering).
    pub sequence_gap: bool,
}

/// Concatenates RTP payloads back into PS frames: a frame ends at the marker bit, or
/// when the timestamp or SSRC changes (a missing marker is tolerated).
///
/// The notes' `DecodePacket` prepends `00 00 00 01` to every unit when the encoding is
/// "PS"; that is only right for raw H.264/H.265 payloads. PS payloads are concatenated
/// verbatim: the PS start codes are already in the data.
#[derive(Debug, Default)]
pub struct Depacketizer {
    current: Option<(DepacketizedUnit, BytesMut)>,
    ready: VecDeque<DepacketizedUnit>,
}

impl Depacketizer {
    /// An empty depacketizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and adds one packet.
    pub fn push_bytes(&mut self, packet: &[u8]) -> Result<(), RtpError> {
        let p = RtpPacket::parse(packet)?;
        self.push(&p);
        Ok(())
    }

    /// Adds one parsed packet.
    pub fn push(&mut self, p: &RtpPacket<'_>) {
        let h = &p.header;
        let boundary = self
            .current
            .as_ref()
            .is_some_and(|(u, _)| u.timestamp != h.timestamp || u.ssrc != h.ssrc);
        if boundary {
            self.finish();
        }
        match &mut self.current {
            Some((u, buf)) => {
                if h.sequence != u.last_sequence.wrapping_add(1) {
                    u.sequence_gap = true;
                }
                u.last_sequence = h.sequence;
                u.packets += 1;
                buf.extend_from_slice(p.payload);
            }
            None => {
                self.current = Some((
                    DepacketizedUnit {
                        timestamp: h.timestamp,
                        ssrc: h.ssrc,
                        payload_type: h.payload_type,
                        data: Bytes::new(),
                        packets: 1,
                        first_sequence: h.sequence,
                        last_sequence: h.sequence,
                        marker: false,
                        sequence_gap: false,
                    },
                    BytesMut::from(p.payload),
                ));
            }
        }
        if h.marker {
            if let Some((u, _)) = &mut self.current {
                u.marker = true;
            }
            self.finish();
        }
    }

    /// Emits the unit being built, if any (end of stream).
    pub fn flush(&mut self) {
        self.finish();
    }

    /// Next completed unit.
    pub fn pop(&mut self) -> Option<DepacketizedUnit> {
        self.ready.pop_front()
    }

    fn finish(&mut self) {
        if let Some((mut u, buf)) = self.current.take() {
            u.data = buf.freeze();
            self.ready.push_back(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_mtu_with_marker_on_last() {
        let mut p = Packetizer::new(PacketizerConfig {
            ssrc: 42,
            mtu: 112,
            initial_sequence: 65534,
            ..PacketizerConfig::default()
        })
        .unwrap();
        let pkts = p.packetize(90_000, &[7u8; 250]);
        assert_eq!(pkts.len(), 3);
        let parsed: Vec<_> = pkts.iter().map(|b| RtpPacket::parse(b).unwrap()).collect();
        assert_eq!(
            parsed.iter().map(|p| p.header.sequence).collect::<Vec<_>>(),
            [65534, 65535, 0]
        );
        assert_eq!(
            parsed.iter().map(|p| p.header.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert!(parsed.iter().all(|p| p.header.timestamp == 90_000
            && p.header.ssrc == 42
            && p.header.payload_type == 96));
        assert_eq!(
            parsed.iter().map(|p| p.payload.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        assert!(pkts.iter().all(|b| b.len() <= 112));
    }

    #[test]
    fn faults_change_the_header() {
        let mut p = Packetizer::new(PacketizerConfig {
            ssrc: 1,
            faults: PacketizerFaults {
                ssrc: Some(2),
                no_marker: true,
                timestamp_clock_hz: Some(1000),
            },
            ..PacketizerConfig::default()
        })
        .unwrap();
        let pkts = p.packetize(3600, &[1]);
        let h = RtpPacket::parse(&pkts[0]).unwrap().header;
        assert_eq!((h.ssrc, h.marker, h.timestamp), (2, false, 40));
    }

    #[test]
    fn rejects_bad_config() {
        let cfg = |mtu| PacketizerConfig {
            mtu,
            ..PacketizerConfig::default()
        };
        assert_eq!(
            Packetizer::new(cfg(12)).unwrap_err(),
            PacketizeError::Mtu(12)
        );
        assert_eq!(
            Packetizer::new(cfg(70_000)).unwrap_err(),
            PacketizeError::Mtu(70_000)
        );
        assert!(Packetizer::new(cfg(13)).is_ok());
    }

    #[test]
    fn depacketizer_splits_on_marker_and_timestamp() {
        let mut p = Packetizer::new(PacketizerConfig {
            mtu: 20,
            faults: PacketizerFaults {
                no_marker: true,
                ..PacketizerFaults::default()
            },
            ..PacketizerConfig::default()
        })
        .unwrap();
        let mut d = Depacketizer::new();
        for (pts, len) in [(0u64, 30usize), (3600, 5)] {
            for pkt in p.packetize(pts, &vec![pts as u8; len]) {
                d.push_bytes(&pkt).unwrap();
            }
        }
        let u = d.pop().unwrap();
        assert_eq!(
            (u.timestamp, u.data.len(), u.packets, u.marker),
            (0, 30, 4, false)
        );
        assert!(d.pop().is_none());
        d.flush();
        assert_eq!(d.pop().unwrap().data.len(), 5);
    }
}
