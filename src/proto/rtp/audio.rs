//! G.711 audio over RTP (spec 语音对讲/语音广播: `a=rtpmap:8 PCMA/8000`; RFC 3551
//! §4.1, §4.5.14): one packet per 20 ms (160 samples at 8 kHz, one byte each), the
//! timestamp advancing by the samples of the previous packet, the marker on the first
//! packet of the talkspurt, the SSRC from the SDP `y=`.
//!
//! [`AudioPacketizer`] builds the packets; [`AudioCheck`] judges a received stream
//! (SSRC, payload type, sequence continuity, timestamp step, an 8 kHz clock against
//! arrival time, loss) and reports with the [`Finding`]s of the PS validator. Neither
//! reads a clock: arrival times come in with every packet.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;

use super::{encode_packet, is_rtcp, RtpError, RtpHeader, RtpPacket};
use crate::proto::g711::SAMPLE_RATE;
use crate::proto::ps::validate::{Finding, FindingCode};

/// Samples in a 20 ms G.711 packet.
pub const SAMPLES_PER_PACKET: usize = 160;

/// Deliberate deviations of the packetizer (negative tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioFaults {
    /// Advance the timestamp by this much per packet instead of by its samples
    /// (e.g. 1800: a 90 kHz clock).
    pub timestamp_step: Option<u32>,
    /// Leave out every n-th sequence number (a gap as if packets were lost).
    pub skip_sequence_every: Option<u64>,
}

/// What the packetizer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacketizerConfig {
    /// SSRC (the SDP `y=` value).
    pub ssrc: u32,
    /// Payload type (8 PCMA, 0 PCMU, or the negotiated dynamic one).
    pub payload_type: u8,
    /// Sequence number of the first packet.
    pub initial_sequence: u16,
    /// Timestamp of the first packet.
    pub initial_timestamp: u32,
    /// Deliberate deviations.
    pub faults: AudioFaults,
}

impl AudioPacketizerConfig {
    /// PCMA (8) with SSRC `ssrc`, sequence and timestamp from 0.
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        AudioPacketizerConfig {
            ssrc,
            payload_type,
            initial_sequence: 0,
            initial_timestamp: 0,
            faults: AudioFaults::default(),
        }
    }
}

/// Wraps G.711 payloads in RTP headers.
#[derive(Debug, Clone)]
pub struct AudioPacketizer {
    cfg: AudioPacketizerConfig,
    sequence: u16,
    timestamp: u32,
    packets: u64,
}

impl AudioPacketizer {
    /// A packetizer at the configured first sequence number and timestamp.
    pub fn new(cfg: AudioPacketizerConfig) -> Self {
        AudioPacketizer {
            sequence: cfg.initial_sequence,
            timestamp: cfg.initial_timestamp,
            packets: 0,
            cfg,
        }
    }

    /// Sequence number the next packet gets.
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }

    /// Timestamp the next packet gets.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// One packet carrying `payload` (one byte per sample); the timestamp then
    /// advances by its samples.
    pub fn packetize(&mut self, payload: &[u8]) -> Result<Bytes, RtpError> {
        let mut h = RtpHeader::new(
            self.cfg.payload_type,
            self.sequence,
            self.timestamp,
            self.cfg.ssrc,
        );
        h.marker = self.packets == 0;
        let p = encode_packet(&h, None, payload, 0)?;
        self.packets += 1;
        self.sequence = self.sequence.wrapping_add(1);
        if let Some(n) = self.cfg.faults.skip_sequence_every {
            if n > 0 && self.packets % n == 0 {
                self.sequence = self.sequence.wrapping_add(1);
            }
        }
        let step = self
            .cfg
            .faults
            .timestamp_step
            .unwrap_or(payload.len() as u32);
        self.timestamp = self.timestamp.wrapping_add(step);
        Ok(p)
    }
}

/// What an audio stream is expected to be.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioCheckConfig {
    /// SSRC from the SDP `y=` line.
    pub expected_ssrc: u32,
    /// Negotiated payload type (`None`: not checked).
    pub expected_payload_type: Option<u8>,
    /// RTP clock (8000 for G.711).
    pub clock_rate: u32,
    /// Relative deviation of the estimated clock tolerated (0.2 = ±20 %).
    pub clock_tolerance: f64,
    /// Arrival span needed before the clock is judged.
    pub min_clock_span: Duration,
}

impl AudioCheckConfig {
    /// SSRC `ssrc`, payload type `pt`, 8 kHz ±20 % judged over ≥ 1 s.
    pub fn new(ssrc: u32, pt: u8) -> Self {
        AudioCheckConfig {
            expected_ssrc: ssrc,
            expected_payload_type: Some(pt),
            clock_rate: SAMPLE_RATE,
            clock_tolerance: 0.2,
            min_clock_span: Duration::from_secs(1),
        }
    }
}

/// Metrics and findings of an audio stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AudioCheckReport {
    /// Packets handed in.
    pub datagrams: u64,
    /// RTP packets of the analysed SSRC (duplicates included).
    pub packets: u64,
    /// Packets recognised as RTCP and ignored.
    pub rtcp_packets: u64,
    /// Unparsable packets.
    pub invalid_packets: u64,
    /// Packets of another SSRC than the first one seen.
    pub foreign_ssrc_packets: u64,
    /// SSRC analysed (the first one seen).
    pub ssrc: Option<u32>,
    /// Payload type of the first packet.
    pub payload_type: Option<u8>,
    /// Payload bytes (= samples for G.711) of the analysed SSRC.
    pub payload_bytes: u64,
    /// Samples in the first packet.
    pub samples_per_packet: Option<u32>,
    /// The last timestamp advance between consecutive packets.
    pub timestamp_step: Option<u32>,
    /// Packets expected from the sequence number range.
    pub expected_packets: u64,
    /// Expected minus received (unique) packets.
    pub lost_packets: u64,
    /// `lost_packets / expected_packets`.
    pub loss_ratio: f64,
    /// Duplicated packets.
    pub duplicate_packets: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered_packets: u64,
    /// Timestamp ticks per second of arrival time (needs `min_clock_span`).
    pub estimated_clock_hz: Option<f64>,
    /// Arrival of the last packet minus arrival of the first.
    pub duration: Duration,
    /// Problems, ordered by first occurrence.
    pub findings: Vec<Finding>,
}

impl AudioCheckReport {
    /// The finding with this code.
    pub fn finding(&self, code: FindingCode) -> Option<&Finding> {
        self.findings.iter().find(|f| f.code == code)
    }

    /// Whether a finding with this code exists.
    pub fn has(&self, code: FindingCode) -> bool {
        self.finding(code).is_some()
    }

    /// No findings at all.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Judges a received G.711 RTP stream packet by packet.
#[derive(Debug, Clone)]
pub struct AudioCheck {
    cfg: AudioCheckConfig,
    r: AudioCheckReport,
    base_seq: i64,
    max_seq: Option<i64>,
    seen: HashSet<i64>,
    /// Extended timestamp and payload length of the packet at `max_seq`.
    last: Option<(i64, u32)>,
    first_clock: Option<(Duration, i64)>,
    last_clock: Option<(Duration, i64)>,
    first_arrival: Option<Duration>,
}

impl AudioCheck {
    /// A check with nothing seen.
    pub fn new(cfg: AudioCheckConfig) -> Self {
        AudioCheck {
            cfg,
            r: AudioCheckReport::default(),
            base_seq: 0,
            max_seq: None,
            seen: HashSet::new(),
            last: None,
            first_clock: None,
            last_clock: None,
            first_arrival: None,
        }
    }

    fn find(&mut self, code: FindingCode, message: impl FnOnce() -> String, count: u64) {
        let index = self.r.datagrams.saturating_sub(1);
        if let Some(f) = self.r.findings.iter_mut().find(|f| f.code == code) {
            f.add_count(count);
        } else {
            self.r.findings.push(code.finding(index, count, message()));
        }
    }

    /// Records a finding the caller found about the stream's carriage (e.g. the
    /// TCP framing).
    pub fn add_finding(&mut self, code: FindingCode, message: impl Into<String>) {
        let message = message.into();
        self.find(code, || message, 1);
    }

    /// One received datagram (or RFC 4571 frame) and its arrival time.
    pub fn push_packet(&mut self, data: &[u8], arrival: Duration) {
        self.r.datagrams += 1;
        if is_rtcp(data) {
            self.r.rtcp_packets += 1;
            return;
        }
        let p = match RtpPacket::parse(data) {
            Ok(p) => p,
            Err(e) => {
                self.r.invalid_packets += 1;
                self.find(FindingCode::InvalidRtp, || e.to_string(), 1);
                return;
            }
        };
        let h = &p.header;
        match self.r.ssrc {
            None => {
                self.r.ssrc = Some(h.ssrc);
                if h.ssrc != self.cfg.expected_ssrc {
                    let (got, want) = (h.ssrc, self.cfg.expected_ssrc);
                    self.find(
                        FindingCode::SsrcMismatch,
                        || format!("SSRC {got} ({got:010}) is not y={want:010}"),
                        1,
                    );
                }
            }
            Some(s) if s != h.ssrc => {
                self.r.foreign_ssrc_packets += 1;
                let got = h.ssrc;
                self.find(
                    FindingCode::SsrcChanged,
                    || format!("SSRC changed from {s} to {got}"),
                    1,
                );
                return;
            }
            Some(_) => {}
        }
        self.r.packets += 1;
        self.r.payload_bytes += p.payload.len() as u64;
        self.r.payload_type.get_or_insert(h.payload_type);
        self.r
            .samples_per_packet
            .get_or_insert(p.payload.len() as u32);
        if let Some(want) = self.cfg.expected_payload_type {
            if h.payload_type != want {
                let got = h.payload_type;
                self.find(
                    FindingCode::PayloadTypeMismatch,
                    || format!("payload type {got}, negotiated {want}"),
                    1,
                );
            }
        }
        self.first_arrival.get_or_insert(arrival);
        self.r.duration = arrival - self.first_arrival.unwrap_or(arrival);

        let samples = p.payload.len() as u32;
        let Some(max) = self.max_seq else {
            let seq = i64::from(h.sequence);
            self.base_seq = seq;
            self.max_seq = Some(seq);
            self.seen.insert(seq);
            let ts = i64::from(h.timestamp);
            self.last = Some((ts, samples));
            self.first_clock = Some((arrival, ts));
            self.last_clock = self.first_clock;
            return;
        };
        let delta = i64::from(h.sequence.wrapping_sub(max as u16) as i16);
        let seq = max + delta;
        if !self.seen.insert(seq) {
            self.r.duplicate_packets += 1;
            self.find(
                FindingCode::SequenceDuplicate,
                || format!("sequence number {} arrived twice", seq as u16),
                1,
            );
            return;
        }
        if delta < 0 {
            self.r.reordered_packets += 1;
            self.find(
                FindingCode::SequenceReordered,
                || format!("sequence number {} arrived late", seq as u16),
                1,
            );
            return;
        }
        // In order (possibly after a gap): judge the timestamp.
        let (last_ts, last_samples) = self.last.unwrap_or_default();
        let step = i64::from(h.timestamp.wrapping_sub(last_ts as u32) as i32);
        let ts = last_ts + step;
        if step <= 0 {
            self.find(
                FindingCode::TimestampNotMonotonic,
                || format!("timestamp moved by {step} between packets"),
                1,
            );
        } else if delta == 1 {
            self.r.timestamp_step = Some(step as u32);
            if step != i64::from(last_samples) {
                self.find(
                    FindingCode::TimestampStep,
                    || {
                        format!(
                            "timestamp advanced by {step} after a packet of {last_samples} samples"
                        )
                    },
                    1,
                );
            }
        }
        self.max_seq = Some(seq);
        self.last = Some((ts, samples));
        self.last_clock = Some((arrival, ts));
        // Keep the duplicate window bounded.
        if self.seen.len() > 4096 {
            self.seen.retain(|&s| s > seq - 2048);
        }
    }

    /// Closes the books: loss and the clock.
    pub fn finish(mut self) -> AudioCheckReport {
        if let Some(max) = self.max_seq {
            let expected = (max - self.base_seq + 1).max(0) as u64;
            let unique = self.r.packets - self.r.duplicate_packets;
            self.r.expected_packets = expected;
            self.r.lost_packets = expected.saturating_sub(unique);
            self.r.loss_ratio = if expected > 0 {
                self.r.lost_packets as f64 / expected as f64
            } else {
                0.0
            };
            if self.r.lost_packets > 0 {
                let (lost, exp) = (self.r.lost_packets, expected);
                self.find(
                    FindingCode::PacketLoss,
                    || format!("{lost} of {exp} packets lost"),
                    lost,
                );
            }
        }
        if let (Some((a0, t0)), Some((a1, t1))) = (self.first_clock, self.last_clock) {
            let span = a1.saturating_sub(a0);
            if span >= self.cfg.min_clock_span && !span.is_zero() {
                let hz = (t1 - t0) as f64 / span.as_secs_f64();
                self.r.estimated_clock_hz = Some(hz);
                let want = f64::from(self.cfg.clock_rate);
                if (hz - want).abs() > want * self.cfg.clock_tolerance {
                    self.find(
                        FindingCode::TimestampClockMismatch,
                        || format!("timestamps advance at {hz:.0} Hz, not {want:.0} Hz"),
                        1,
                    );
                }
            }
        }
        self.r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twenty_ms(n: u64) -> Duration {
        Duration::from_millis(20 * n)
    }

    #[test]
    fn packets_carry_the_header_fields_and_step_by_their_samples() {
        let mut p = AudioPacketizer::new(AudioPacketizerConfig {
            initial_sequence: 65535,
            initial_timestamp: u32::MAX - 100,
            ..AudioPacketizerConfig::new(100_000_001, 8)
        });
        let a = p.packetize(&[0xD5; 160]).unwrap();
        let b = p.packetize(&[0xD5; 160]).unwrap();
        assert_eq!(
            &a[..12],
            &[
                0x80,
                0x80 | 8,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0x9B,
                0x05,
                0xF5,
                0xE1,
                0x01
            ]
        );
        assert_eq!(a.len(), 12 + 160);
        let b = RtpPacket::parse(&b).unwrap();
        assert!(!b.header.marker);
        assert_eq!(b.header.sequence, 0);
        assert_eq!(b.header.timestamp, (u32::MAX - 100).wrapping_add(160));
        assert_eq!(p.next_timestamp(), (u32::MAX - 100).wrapping_add(320));
        assert_eq!(p.next_sequence(), 1);
    }

    fn stream(cfg: AudioPacketizerConfig, n: u64) -> Vec<Bytes> {
        let mut p = AudioPacketizer::new(cfg);
        (0..n).map(|_| p.packetize(&[0x55; 160]).unwrap()).collect()
    }

    fn check(cfg: AudioCheckConfig, packets: &[Bytes]) -> AudioCheckReport {
        let mut c = AudioCheck::new(cfg);
        for (i, p) in packets.iter().enumerate() {
            c.push_packet(p, twenty_ms(i as u64));
        }
        c.finish()
    }

    #[test]
    fn a_clean_stream_wrapping_its_counters() {
        let pk = stream(
            AudioPacketizerConfig {
                initial_sequence: 65500,
                initial_timestamp: u32::MAX - 1000,
                ..AudioPacketizerConfig::new(7, 8)
            },
            100,
        );
        let r = check(AudioCheckConfig::new(7, 8), &pk);
        assert!(r.is_clean(), "{:#?}", r.findings);
        assert_eq!(r.packets, 100);
        assert_eq!(r.expected_packets, 100);
        assert_eq!(r.timestamp_step, Some(160));
        assert_eq!(r.samples_per_packet, Some(160));
        let hz = r.estimated_clock_hz.unwrap();
        assert!((hz - 8000.0).abs() < 1.0, "{hz}");
        assert_eq!(r.duration, twenty_ms(99));
    }

    #[test]
    fn wrong_ssrc_payload_type_and_clock() {
        let pk = stream(
            AudioPacketizerConfig {
                faults: AudioFaults {
                    timestamp_step: Some(1800),
                    ..AudioFaults::default()
                },
                ..AudioPacketizerConfig::new(8, 0)
            },
            100,
        );
        let r = check(AudioCheckConfig::new(7, 8), &pk);
        for code in [
            FindingCode::SsrcMismatch,
            FindingCode::PayloadTypeMismatch,
            FindingCode::TimestampStep,
            FindingCode::TimestampClockMismatch,
        ] {
            assert!(r.has(code), "{code:?} missing: {:#?}", r.findings);
        }
        assert_eq!(r.finding(FindingCode::TimestampStep).unwrap().count(), 99);
        assert!((r.estimated_clock_hz.unwrap() - 90_000.0).abs() < 10.0);
    }

    #[test]
    fn loss_duplicates_and_reordering() {
        let mut pk = stream(
            AudioPacketizerConfig {
                faults: AudioFaults {
                    skip_sequence_every: Some(10),
                    ..AudioFaults::default()
                },
                ..AudioPacketizerConfig::new(7, 8)
            },
            50,
        );
        pk.push(pk[48].clone());
        pk.swap(20, 21);
        let r = check(AudioCheckConfig::new(7, 8), &pk);
        // A gap of one sequence number after every 10th packet: 4 inside the 50.
        assert_eq!(r.lost_packets, 4, "{r:#?}");
        assert_eq!(r.duplicate_packets, 1);
        assert_eq!(r.reordered_packets, 1);
        assert!(r.has(FindingCode::PacketLoss));
        assert!(r.has(FindingCode::SequenceDuplicate));
        assert!(r.has(FindingCode::SequenceReordered));
        // A timestamp across a gap is not judged as a step.
        assert!(!r.has(FindingCode::TimestampStep), "{:#?}", r.findings);
    }

    #[test]
    fn rtcp_and_junk() {
        let mut c = AudioCheck::new(AudioCheckConfig::new(7, 8));
        c.push_packet(&[0x80, 200, 0, 6], Duration::ZERO);
        c.push_packet(b"junk", Duration::ZERO);
        let r = c.finish();
        assert_eq!((r.rtcp_packets, r.invalid_packets, r.packets), (1, 1, 0));
        assert!(r.has(FindingCode::InvalidRtp));
    }
}
