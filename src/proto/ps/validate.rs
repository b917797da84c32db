//! Strict validator for a received GB/T 28181 media stream: RTP (RFC 3550 §5.1, A.1
//! sequence accounting, A.8 interarrival jitter) carrying PS per GB/T 28181 Annex C
//! (payload type 96, 90 kHz clock, SSRC = SDP `y=`, marker on the last packet of a
//! frame, system header + PSM with key frames, parameter sets with every key frame).
//!
//! Drive it with [`StreamValidator::new`], then [`StreamValidator::push_packet`] for every
//! received datagram / RFC 4571 frame together with its arrival time (any monotonic
//! origin; the validator never reads a clock), then [`StreamValidator::finish`] for a
//! [`ValidationReport`] with metrics and [`Finding`]s. [`StreamValidator::report`] gives a
//! snapshot while the stream is still running. Packet indices count every call to
//! `push_packet`, starting at 0.

use std::time::Duration;

use crate::proto::ps::annexb::{analyze, VideoCodec};
use crate::proto::ps::demux::{DemuxEvent, DemuxWarning, DemuxedFrame, PsDemuxer, Psm};
use crate::proto::ps::{
    is_audio_stream_id, is_audio_stream_type, is_video_stream_id, is_video_stream_type,
    stream_type, CLOCK_HZ, PRIVATE_STREAM_1, TIMESTAMP_MASK,
};
use crate::proto::rtp::{is_rtcp, RtpPacket, PS_PAYLOAD_TYPE};

pub use crate::finding::{Evidence, Finding, Severity};

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingCode {
    /// Datagram is not a parsable RTP version-2 packet.
    InvalidRtp,
    /// SSRC differs from the SDP `y=` value.
    SsrcMismatch,
    /// A second SSRC appeared (its packets are not analysed further).
    SsrcChanged,
    /// Payload type differs from the negotiated one.
    PayloadTypeMismatch,
    /// Sequence numbers show lost packets.
    PacketLoss,
    /// A packet arrived after a higher sequence number.
    SequenceReordered,
    /// A sequence number arrived twice.
    SequenceDuplicate,
    /// A new frame's timestamp is not after the previous frame's.
    TimestampNotMonotonic,
    /// Timestamps do not advance at 90 kHz relative to arrival time.
    TimestampClockMismatch,
    /// Timestamps do not advance like the PES PTS of the frames they carry.
    TimestampPtsMismatch,
    /// Audio: a timestamp advanced by other than the samples the previous packet
    /// carried (RFC 3551 §4.1: one tick per sampling period).
    TimestampStep,
    /// The timestamp changed although the previous packet had no marker bit.
    MarkerMissing,
    /// A packet with the marker bit was followed by more packets of the same frame.
    MarkerNotLast,
    /// PS bytes had to be skipped to find a start code (outside packet loss).
    PsSyncLost,
    /// Malformed pack header, system header, PSM or PES header.
    PsMalformed,
    /// A PES length disagrees with the data (too short/long, 0, or cut by the frame end).
    PesLengthInconsistent,
    /// PSM `CRC_32` is wrong.
    PsmCrcMismatch,
    /// A key frame arrived before any PSM.
    PsmMissingBeforeKeyFrame,
    /// A key frame's RTP frame carried no PSM (one was seen earlier).
    KeyFrameWithoutPsm,
    /// PSM stream types differ from the expected (SDP) ones, or a type sits on a stream
    /// id of the other media kind.
    PsmStreamTypeMismatch,
    /// A PES stream id is not listed in the PSM.
    PesStreamNotInPsm,
    /// The first video frame is not a key frame.
    FirstVideoFrameNotKey,
    /// A key frame without SPS/PPS (H.264) or VPS/SPS/PPS (H.265) in its RTP frame.
    KeyFrameWithoutParameterSets,
    /// A program stream map written under the system header start code 0xBB.
    PsmStartCode,
    /// A PSM descriptor runs past the loop that holds it.
    PsmDescriptorOverrun,
    /// The PSM `CRC_32` is the right value with its bytes in reverse order.
    PsmCrcByteSwapped,
    /// The PSM `CRC_32` is written as zero.
    PsmCrcZero,
    /// The stream was joined mid-pack (its start, or its first packet, was not
    /// received): bytes were skipped before the first pack header.
    JoinedMidStream,
    /// RTP over TCP framed RTSP-style (`$`, channel, length) instead of RFC 4571.
    TcpRtspFraming,
}

impl FindingCode {
    /// Stable identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::InvalidRtp => "rtp.invalid",
            FindingCode::SsrcMismatch => "rtp.ssrc_mismatch",
            FindingCode::SsrcChanged => "rtp.ssrc_changed",
            FindingCode::PayloadTypeMismatch => "rtp.payload_type_mismatch",
            FindingCode::PacketLoss => "rtp.packet_loss",
            FindingCode::SequenceReordered => "rtp.sequence_reordered",
            FindingCode::SequenceDuplicate => "rtp.sequence_duplicate",
            FindingCode::TimestampNotMonotonic => "rtp.timestamp_not_monotonic",
            FindingCode::TimestampClockMismatch => "rtp.timestamp_clock",
            FindingCode::TimestampPtsMismatch => "rtp.timestamp_pts",
            FindingCode::TimestampStep => "rtp.timestamp_step",
            FindingCode::MarkerMissing => "rtp.marker_missing",
            FindingCode::MarkerNotLast => "rtp.marker_not_last",
            FindingCode::PsSyncLost => "ps.sync_lost",
            FindingCode::PsMalformed => "ps.malformed",
            FindingCode::PesLengthInconsistent => "ps.pes_length",
            FindingCode::PsmCrcMismatch => "ps.psm_crc",
            FindingCode::PsmMissingBeforeKeyFrame => "ps.psm_missing_before_key_frame",
            FindingCode::KeyFrameWithoutPsm => "ps.key_frame_without_psm",
            FindingCode::PsmStreamTypeMismatch => "ps.psm_stream_type",
            FindingCode::PesStreamNotInPsm => "ps.pes_not_in_psm",
            FindingCode::FirstVideoFrameNotKey => "video.first_frame_not_key",
            FindingCode::KeyFrameWithoutParameterSets => "video.key_frame_without_parameter_sets",
            FindingCode::PsmStartCode => "ps.psm-start-code",
            FindingCode::PsmDescriptorOverrun => "ps.psm-descriptor-overrun",
            FindingCode::PsmCrcByteSwapped => "ps.psm-crc-byte-swapped",
            FindingCode::PsmCrcZero => "ps.psm-crc-zero",
            FindingCode::JoinedMidStream => "ps.joined-mid-stream",
            FindingCode::TcpRtspFraming => "rtp.tcp-rtsp-framing",
        }
    }

    /// Default severity.
    pub fn severity(self) -> Severity {
        match self {
            FindingCode::PacketLoss
            | FindingCode::SequenceReordered
            | FindingCode::SequenceDuplicate
            | FindingCode::PsmCrcMismatch
            | FindingCode::PsmCrcByteSwapped
            | FindingCode::PsmCrcZero
            | FindingCode::JoinedMidStream
            | FindingCode::KeyFrameWithoutPsm => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

crate::finding::code_eq!(FindingCode);

const CLAUSE_RTP: &str = "附录C (RTP封装): PS over RTP, payload type as negotiated, 90 kHz clock, SSRC = SDP y=, marker on the last packet of a frame";
const CLAUSE_PS: &str = "附录C (PS封装): pack header, system header and PSM before every key frame; ISO/IEC 13818-1 §2.5 program stream syntax";
const CLAUSE_SEQ: &str = "RFC 3550 §A.1: sequence number accounting (loss, duplicates, reordering)";

impl FindingCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [FindingCode] = &[
        FindingCode::InvalidRtp,
        FindingCode::SsrcMismatch,
        FindingCode::SsrcChanged,
        FindingCode::PayloadTypeMismatch,
        FindingCode::PacketLoss,
        FindingCode::SequenceReordered,
        FindingCode::SequenceDuplicate,
        FindingCode::TimestampNotMonotonic,
        FindingCode::TimestampClockMismatch,
        FindingCode::TimestampPtsMismatch,
        FindingCode::TimestampStep,
        FindingCode::MarkerMissing,
        FindingCode::MarkerNotLast,
        FindingCode::PsSyncLost,
        FindingCode::PsMalformed,
        FindingCode::PesLengthInconsistent,
        FindingCode::PsmCrcMismatch,
        FindingCode::PsmMissingBeforeKeyFrame,
        FindingCode::KeyFrameWithoutPsm,
        FindingCode::PsmStreamTypeMismatch,
        FindingCode::PesStreamNotInPsm,
        FindingCode::FirstVideoFrameNotKey,
        FindingCode::KeyFrameWithoutParameterSets,
        FindingCode::PsmStartCode,
        FindingCode::PsmDescriptorOverrun,
        FindingCode::PsmCrcByteSwapped,
        FindingCode::PsmCrcZero,
        FindingCode::JoinedMidStream,
        FindingCode::TcpRtspFraming,
    ];

    /// The code with this stable identifier.
    pub fn from_code(code: &str) -> Option<FindingCode> {
        FindingCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == code)
    }

    /// The clause the rule comes from.
    pub fn clause(self) -> &'static str {
        match self {
            FindingCode::InvalidRtp => "RFC 3550 §5.1: RTP version 2 fixed header",
            FindingCode::SsrcMismatch => {
                "§实时预览 (y字段描述SSRC值); 附录C (RTP封装): SSRC = SDP y="
            }
            FindingCode::SsrcChanged => "RFC 3550 §5.1: one SSRC per synchronization source",
            FindingCode::PayloadTypeMismatch
            | FindingCode::TimestampNotMonotonic
            | FindingCode::TimestampClockMismatch
            | FindingCode::TimestampPtsMismatch
            | FindingCode::MarkerMissing
            | FindingCode::MarkerNotLast => CLAUSE_RTP,
            FindingCode::PacketLoss
            | FindingCode::SequenceReordered
            | FindingCode::SequenceDuplicate => CLAUSE_SEQ,
            FindingCode::TimestampStep => {
                "RFC 3551 §4.1: the timestamp advances one tick per sampling period"
            }
            FindingCode::PsMalformed
            | FindingCode::PesLengthInconsistent
            | FindingCode::PsmMissingBeforeKeyFrame
            | FindingCode::KeyFrameWithoutPsm
            | FindingCode::PsmStreamTypeMismatch
            | FindingCode::PesStreamNotInPsm => CLAUSE_PS,
            FindingCode::PsmCrcMismatch
            | FindingCode::PsmCrcByteSwapped
            | FindingCode::PsmCrcZero => CLAUSE_PSM_CRC,
            FindingCode::PsmStartCode => CLAUSE_PSM_START_CODE,
            FindingCode::PsmDescriptorOverrun => CLAUSE_PSM_DESCRIPTORS,
            FindingCode::JoinedMidStream | FindingCode::PsSyncLost => CLAUSE_PACK_SYNC,
            FindingCode::TcpRtspFraming => CLAUSE_TCP_FRAMING,
            FindingCode::FirstVideoFrameNotKey | FindingCode::KeyFrameWithoutParameterSets => {
                "附录C (PS封装): the stream opens with a key frame preceded by its parameter sets"
            }
        }
    }

    /// A finding of this code, first seen at packet `index`, `count` times.
    pub fn finding(self, index: u64, count: u64, message: impl Into<String>) -> Finding {
        Finding::new(self.as_str(), self.severity(), self.clause(), message).with_evidence(
            Evidence::Packets {
                first: index,
                count,
            },
        )
    }
}

/// Tells a byte-swapped or zero PSM `CRC_32` from any other wrong value.
fn psm_crc_finding(stored: u32, computed: u32) -> (FindingCode, String) {
    if stored == 0 {
        (
            FindingCode::PsmCrcZero,
            format!("PSM CRC_32 written as 0x00000000, expected {computed:#010x}"),
        )
    } else if stored == computed.swap_bytes() {
        (
            FindingCode::PsmCrcByteSwapped,
            format!(
                "PSM CRC_32 {stored:#010x} is the expected {computed:#010x} with its bytes reversed (written least significant byte first)"
            ),
        )
    } else {
        (
            FindingCode::PsmCrcMismatch,
            format!("PSM CRC_32 {stored:#010x}, expected {computed:#010x}"),
        )
    }
}

/// ISO/IEC 13818-1 §2.5.4.1 Table 2-41 and GB/T 28181 附录C (C.2 PS封装).
const CLAUSE_PSM_START_CODE: &str = "ISO/IEC 13818-1 §2.5.4.1: packet_start_code_prefix 0x000001 with map_stream_id 0xBC identifies the program stream map (0xBB is the system_header_start_code, §2.5.3.5); GB/T 28181 附录C: 关键帧前加系统头和PSM";
const CLAUSE_PSM_DESCRIPTORS: &str = "ISO/IEC 13818-1 §2.5.4.2: program_stream_info_length / elementary_stream_info_length give the total length of the descriptors that immediately follow; each descriptor is descriptor_tag, descriptor_length and that many bytes (§2.6)";
const CLAUSE_PSM_CRC: &str = "ISO/IEC 13818-1 §2.5.4.2: CRC_32 contains the CRC value that gives a zero output of the registers in the decoder of Annex A after processing the entire program stream map (stored most significant byte first)";
const CLAUSE_PACK_SYNC: &str = "ISO/IEC 13818-1 §2.5.3.1: a program stream is a sequence of packs, each starting with pack_start_code 0x000001BA; GB/T 28181 附录C: every frame begins with a PS header";
const CLAUSE_TCP_FRAMING: &str = "GB/T 28181 媒体传输方式 TCP被动/TCP主动 (RFC 4571 §2): every RTP packet on the TCP connection is preceded by a 16-bit length (\"先发送2字节头\"), not the RTSP interleaved '$' channel length header of RFC 2326 §10.12";

/// Metrics and findings.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationReport {
    /// `push_packet` calls.
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
    /// Bytes of all datagrams.
    pub total_bytes: u64,
    /// RTP payload bytes of the analysed SSRC.
    pub payload_bytes: u64,
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
    /// RFC 3550 interarrival jitter, timestamp units (90 kHz).
    pub jitter_ts: f64,
    /// The same in milliseconds.
    pub jitter_ms: f64,
    /// Largest jitter seen, milliseconds.
    pub max_jitter_ms: f64,
    /// Frames by RTP timestamp.
    pub rtp_frames: u64,
    /// Video frames demuxed.
    pub video_frames: u64,
    /// Audio frames demuxed.
    pub audio_frames: u64,
    /// Video key frames.
    pub key_frames: u64,
    /// PSMs seen.
    pub psm_count: u64,
    /// Video frame rate from PES PTS (RTP timestamps when no PTS), frames/s.
    pub frame_rate: Option<f64>,
    /// RTP payload bit rate over the arrival span, bits/s.
    pub bitrate_bps: Option<f64>,
    /// Arrival of the last packet minus arrival of the first.
    pub duration: Duration,
    /// From the first packet's arrival to the arrival of the packet that completed the
    /// first key frame.
    pub time_to_first_key_frame: Option<Duration>,
    /// Timestamp ticks per second of arrival time (needs `min_clock_span` of arrivals).
    pub estimated_clock_hz: Option<f64>,
    /// (stream_id, stream_type) pairs announced in PSMs.
    pub stream_types: Vec<(u8, u8)>,
    /// PS irregularities inside frames damaged by packet loss (not reported as findings).
    pub ps_errors_after_loss: u64,
    /// Problems, ordered by first occurrence.
    pub findings: Vec<Finding>,
}

impl ValidationReport {
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

    /// No finding of severity [`Severity::Error`].
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

/// What the stream is expected to be.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorConfig {
    /// SSRC from the SDP `y=` line.
    pub expected_ssrc: u32,
    /// Negotiated payload type (`None`: not checked). Default 96.
    pub expected_payload_type: Option<u8>,
    /// PSM stream types expected (e.g. `[0x1B]` or `[0x1B, 0x90]`); empty: not checked.
    pub expected_stream_types: Vec<u8>,
    /// RTP clock; 90 000 for PS (`a=rtpmap:96 PS/90000`; the notes' TCP code sets
    /// other timestamp units, see `crate::proto::rtp::Packetizer::rtp_timestamp`, which
    /// is exactly the fault this check exists to catch).
    pub clock_rate: u32,
    /// Relative deviation of the estimated clock tolerated (0.2 = ±20 %).
    pub clock_tolerance: f64,
    /// Arrival span needed before the clock is judged.
    pub min_clock_span: Duration,
}

impl ValidatorConfig {
    /// Expectations with defaults: payload type 96, 90 kHz ±20 % judged over ≥ 1 s.
    pub fn new(expected_ssrc: u32, expected_stream_types: impl Into<Vec<u8>>) -> Self {
        ValidatorConfig {
            expected_ssrc,
            expected_payload_type: Some(PS_PAYLOAD_TYPE),
            expected_stream_types: expected_stream_types.into(),
            clock_rate: CLOCK_HZ,
            clock_tolerance: 0.2,
            min_clock_span: Duration::from_secs(1),
        }
    }
}

const SEEN_WINDOW: i64 = 2048;

#[derive(Debug, Clone)]
struct Unit {
    ts: u32,
    ext_ts: i64,
    first_index: u64,
    last_arrival: Duration,
    had_gap: bool,
    has_video: bool,
    psm: bool,
    vps: bool,
    sps: bool,
    pps: bool,
}

#[derive(Debug, Clone, Copy)]
struct Ctx {
    index: u64,
    arrival: Duration,
    damaged: bool,
}

enum Order {
    Next { gap: i64 },
    Late,
    Duplicate,
}

/// Consumes RTP packets and judges the stream. See the module docs.
#[derive(Debug)]
pub struct StreamValidator {
    cfg: ValidatorConfig,
    index: u64,
    packets: u64,
    rtcp: u64,
    invalid: u64,
    foreign: u64,
    ssrc: Option<u32>,
    total_bytes: u64,
    payload_bytes: u64,
    first_arrival: Option<Duration>,
    last_arrival: Duration,
    // sequence accounting (extended sequence numbers)
    base_ext: i64,
    max_ext: Option<i64>,
    unique: u64,
    duplicates: u64,
    reordered: u64,
    seen: Vec<u64>,
    first_gap_index: Option<u64>,
    // timestamps and jitter
    last_ts: Option<(u32, i64)>,
    last_transit: Option<f64>,
    jitter: f64,
    max_jitter: f64,
    // frames
    unit: Option<Unit>,
    last_marker: bool,
    last_packet_index: u64,
    rtp_frames: u64,
    first_unit: Option<(Duration, i64)>,
    last_unit: Option<(Duration, i64)>,
    second_unit_index: u64,
    video_units: u64,
    video_ts_first: i64,
    video_ts_last: i64,
    video_pts_count: u64,
    video_pts_last: u64,
    /// (extended RTP timestamp, PTS) of the first video frame with a PTS, and
    /// whether their clocks were already compared.
    ts_pts_ref: Option<(i64, u64)>,
    ts_pts_checked: bool,
    video_pts_span: i64,
    // PS
    demux: PsDemuxer,
    psm_count: u64,
    psm_types: Vec<(u8, u8)>,
    stream_types: Vec<(u8, u8)>,
    video_frames: u64,
    audio_frames: u64,
    key_frames: u64,
    first_key_arrival: Option<Duration>,
    ps_errors_after_loss: u64,
    /// A pack header was seen: the PS byte stream is locked.
    locked: bool,
    /// The stream began mid-pack (see [`FindingCode::JoinedMidStream`]).
    joined: bool,
    /// Bytes skipped before the first pack header.
    join_skipped: u64,
    /// Frames (partial, or not key) passed over before the first key frame after a
    /// join, and their bytes.
    join_frames: u64,
    join_frame_bytes: u64,
    findings: Vec<Finding>,
}

impl StreamValidator {
    /// A validator for one RTP stream.
    pub fn new(cfg: ValidatorConfig) -> Self {
        StreamValidator {
            cfg,
            index: 0,
            packets: 0,
            rtcp: 0,
            invalid: 0,
            foreign: 0,
            ssrc: None,
            total_bytes: 0,
            payload_bytes: 0,
            first_arrival: None,
            last_arrival: Duration::ZERO,
            base_ext: 0,
            max_ext: None,
            unique: 0,
            duplicates: 0,
            reordered: 0,
            seen: vec![0; (SEEN_WINDOW / 64) as usize],
            first_gap_index: None,
            last_ts: None,
            last_transit: None,
            jitter: 0.0,
            max_jitter: 0.0,
            unit: None,
            last_marker: false,
            last_packet_index: 0,
            rtp_frames: 0,
            first_unit: None,
            last_unit: None,
            second_unit_index: 0,
            video_units: 0,
            video_ts_first: 0,
            video_ts_last: 0,
            video_pts_count: 0,
            video_pts_last: 0,
            ts_pts_ref: None,
            ts_pts_checked: false,
            video_pts_span: 0,
            demux: PsDemuxer::new(),
            psm_count: 0,
            psm_types: Vec::new(),
            stream_types: Vec::new(),
            video_frames: 0,
            audio_frames: 0,
            key_frames: 0,
            first_key_arrival: None,
            ps_errors_after_loss: 0,
            locked: false,
            joined: false,
            join_skipped: 0,
            join_frames: 0,
            join_frame_bytes: 0,
            findings: Vec::new(),
        }
    }

    /// The expectations in use.
    pub fn config(&self) -> &ValidatorConfig {
        &self.cfg
    }

    fn flag(&mut self, code: FindingCode, index: u64, message: impl FnOnce() -> String) {
        match self.findings.iter_mut().find(|f| f.code == code) {
            Some(f) => f.add_count(1),
            None => self.findings.push(code.finding(index, 1, message())),
        }
    }

    /// Records a finding the caller found about the stream's carriage (e.g. the
    /// TCP framing), counted like the validator's own.
    pub fn add_finding(&mut self, code: FindingCode, message: impl Into<String>) {
        let index = self.index;
        let message = message.into();
        self.flag(code, index, || message);
    }

    fn seen_bit(&self, ext: i64) -> (usize, u64) {
        let slot = ext.rem_euclid(SEEN_WINDOW) as usize;
        (slot / 64, 1u64 << (slot % 64))
    }

    fn mark_seen(&mut self, ext: i64) {
        let (w, b) = self.seen_bit(ext);
        self.seen[w] |= b;
    }

    fn is_seen(&self, ext: i64) -> bool {
        let max = self.max_ext.unwrap_or(ext);
        if max - ext >= SEEN_WINDOW {
            return false;
        }
        let (w, b) = self.seen_bit(ext);
        self.seen[w] & b != 0
    }

    /// Extended sequence accounting (RFC 3550 A.1 style, 16-bit wrap handled by a signed
    /// 16-bit difference). The notes' receiver checks continuity with
    /// `if (m_lastSeq = data.seq - 1)`, an assignment that is always true for seq != 1,
    /// so it never detects loss; this implements the intended comparison.
    fn sequence(&mut self, seq: u16) -> Order {
        let Some(max) = self.max_ext else {
            self.base_ext = i64::from(seq);
            self.max_ext = Some(i64::from(seq));
            self.mark_seen(i64::from(seq));
            return Order::Next { gap: 0 };
        };
        let delta = i64::from(seq.wrapping_sub(max as u16) as i16);
        let ext = max + delta;
        if delta > 0 {
            // Clear the window slots the new maximum reuses.
            if delta >= SEEN_WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for e in max + 1..=ext {
                    let (w, b) = self.seen_bit(e);
                    self.seen[w] &= !b;
                }
            }
            self.max_ext = Some(ext);
            self.mark_seen(ext);
            Order::Next { gap: delta - 1 }
        } else if self.is_seen(ext) {
            Order::Duplicate
        } else {
            self.base_ext = self.base_ext.min(ext);
            if max - ext < SEEN_WINDOW {
                self.mark_seen(ext);
            }
            Order::Late
        }
    }

    fn extend_ts(&self, ts: u32) -> i64 {
        match self.last_ts {
            Some((last, ext)) => ext + i64::from(ts.wrapping_sub(last) as i32),
            None => i64::from(ts),
        }
    }

    fn update_jitter(&mut self, arrival: Duration, ext_ts: i64) {
        // RFC 3550 A.8: J += (|D| - J) / 16 with D the change in transit time.
        let transit = arrival.as_secs_f64() * f64::from(self.cfg.clock_rate) - ext_ts as f64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            self.jitter += (d - self.jitter) / 16.0;
            self.max_jitter = self.max_jitter.max(self.jitter);
        }
        self.last_transit = Some(transit);
    }

    /// Feeds one received packet (an RTP datagram or an RFC 4571 frame's content) with
    /// its arrival time.
    pub fn push_packet(&mut self, data: &[u8], arrival: Duration) {
        let idx = self.index;
        self.index += 1;
        self.total_bytes += data.len() as u64;
        if is_rtcp(data) {
            self.rtcp += 1;
            return;
        }
        let p = match RtpPacket::parse(data) {
            Ok(p) => p,
            Err(e) => {
                self.invalid += 1;
                self.flag(FindingCode::InvalidRtp, idx, || format!("{e}"));
                return;
            }
        };
        let h = &p.header;
        if h.ssrc != self.cfg.expected_ssrc {
            let exp = self.cfg.expected_ssrc;
            self.flag(FindingCode::SsrcMismatch, idx, || {
                format!(
                    "SSRC {} ({:#010x}) differs from the SDP y= value {:010} ({:#010x})",
                    h.ssrc, h.ssrc, exp, exp
                )
            });
        }
        match self.ssrc {
            None => self.ssrc = Some(h.ssrc),
            Some(s) if s != h.ssrc => {
                self.foreign += 1;
                self.flag(FindingCode::SsrcChanged, idx, || {
                    format!("SSRC changed from {s} to {} mid-stream", h.ssrc)
                });
                return;
            }
            Some(_) => {}
        }
        if let Some(pt) = self
            .cfg
            .expected_payload_type
            .filter(|&pt| pt != h.payload_type)
        {
            self.flag(FindingCode::PayloadTypeMismatch, idx, || {
                format!("payload type {} instead of {pt}", h.payload_type)
            });
        }
        self.packets += 1;
        self.payload_bytes += p.payload.len() as u64;
        let first_arrival = *self.first_arrival.get_or_insert(arrival);
        self.last_arrival = self.last_arrival.max(arrival).max(first_arrival);

        let gap = match self.sequence(h.sequence) {
            Order::Duplicate => {
                self.duplicates += 1;
                self.flag(FindingCode::SequenceDuplicate, idx, || {
                    format!("sequence number {} received twice", h.sequence)
                });
                return;
            }
            Order::Late => {
                self.unique += 1;
                self.reordered += 1;
                self.flag(FindingCode::SequenceReordered, idx, || {
                    format!("sequence number {} arrived after a higher one", h.sequence)
                });
                let ext_ts = self.extend_ts(h.timestamp);
                self.update_jitter(arrival, ext_ts);
                // Out of place for the PS byte stream: not demuxed.
                return;
            }
            Order::Next { gap } => gap,
        };
        self.unique += 1;
        if gap > 0 {
            self.first_gap_index.get_or_insert(idx);
        }
        let ext_ts = self.extend_ts(h.timestamp);
        self.last_ts = Some((h.timestamp, ext_ts));
        self.update_jitter(arrival, ext_ts);

        let same_frame = self.unit.as_ref().map(|u| u.ts == h.timestamp);
        match same_frame {
            Some(true) => {
                if self.last_marker && gap == 0 {
                    let li = self.last_packet_index;
                    self.flag(FindingCode::MarkerNotLast, li, || {
                        format!(
                            "marker bit set although the next packet (seq {}) has the same timestamp {}",
                            h.sequence, h.timestamp
                        )
                    });
                }
                if gap > 0 {
                    if let Some(u) = &mut self.unit {
                        u.had_gap = true;
                    }
                    self.demux.discontinuity();
                }
            }
            Some(false) => {
                let (prev_ts, prev_ext) = self
                    .unit
                    .as_ref()
                    .map(|u| (u.ts, u.ext_ts))
                    .unwrap_or_default();
                if !self.last_marker && gap == 0 {
                    let li = self.last_packet_index;
                    self.flag(FindingCode::MarkerMissing, li, || {
                        format!(
                            "timestamp changed {prev_ts} -> {} without a marker bit on the frame's last packet",
                            h.timestamp
                        )
                    });
                }
                if let Some(u) = self.unit.as_mut().filter(|_| gap > 0) {
                    u.had_gap = true;
                }
                self.end_unit();
                if ext_ts <= prev_ext {
                    self.flag(FindingCode::TimestampNotMonotonic, idx, || {
                        format!(
                            "frame timestamp {} does not advance from the previous frame's {prev_ts}",
                            h.timestamp
                        )
                    });
                }
                self.start_unit(h.timestamp, ext_ts, idx, arrival, gap > 0);
            }
            None => self.start_unit(h.timestamp, ext_ts, idx, arrival, gap > 0),
        }
        if let Some(u) = &mut self.unit {
            u.last_arrival = arrival;
        }
        self.last_marker = h.marker;
        self.last_packet_index = idx;
        self.demux.feed(p.payload);
        self.drain_demux(idx, arrival);
    }

    fn start_unit(&mut self, ts: u32, ext_ts: i64, index: u64, arrival: Duration, gap: bool) {
        self.rtp_frames += 1;
        if self.first_unit.is_none() {
            self.first_unit = Some((arrival, ext_ts));
        } else {
            if self.rtp_frames == 2 {
                self.second_unit_index = index;
            }
            self.last_unit = Some((arrival, ext_ts));
        }
        self.unit = Some(Unit {
            ts,
            ext_ts,
            first_index: index,
            last_arrival: arrival,
            had_gap: gap,
            has_video: false,
            psm: false,
            vps: false,
            sps: false,
            pps: false,
        });
    }

    fn end_unit(&mut self) {
        if let Some(u) = &self.unit {
            let (idx, arrival) = (u.first_index, u.last_arrival);
            self.demux.flush();
            self.drain_demux(idx, arrival);
        }
        self.unit = None;
    }

    fn drain_demux(&mut self, index: u64, arrival: Duration) {
        let damaged = self.unit.as_ref().is_some_and(|u| u.had_gap);
        let ctx = Ctx {
            index,
            arrival,
            damaged,
        };
        while let Some(ev) = self.demux.poll() {
            match ev {
                DemuxEvent::Psm(psm) => self.on_psm(&psm, ctx),
                DemuxEvent::Frame(f) => self.on_frame(&f, ctx),
                DemuxEvent::Warning(w) => self.on_warning(w, ctx),
                DemuxEvent::PackHeader(_) => self.locked = true,
                DemuxEvent::SystemHeader(_)
                | DemuxEvent::Skipped { .. }
                | DemuxEvent::ProgramEnd => {}
            }
        }
    }

    fn on_warning(&mut self, w: DemuxWarning, ctx: Ctx) {
        if ctx.damaged {
            self.ps_errors_after_loss += 1;
            return;
        }
        let is_pes =
            |id: u8| is_video_stream_id(id) || is_audio_stream_id(id) || id == PRIVATE_STREAM_1;
        let i = ctx.index;
        if !self.locked {
            // Before the first pack header the stream is being joined: what does not
            // parse is the tail of a pack whose start was not received.
            self.joined = true;
            if let DemuxWarning::Resync { skipped } = w {
                self.join_skipped += skipped as u64;
            }
            return;
        }
        match w {
            DemuxWarning::Resync { skipped } => self.flag(FindingCode::PsSyncLost, i, || {
                format!("{skipped} bytes skipped to find the next PS start code after the stream was locked")
            }),
            DemuxWarning::LengthMismatch { stream_id } if is_pes(stream_id) => {
                self.flag(FindingCode::PesLengthInconsistent, i, || {
                    format!("PES {stream_id:#04x}: PES_packet_length does not end at a start code")
                })
            }
            DemuxWarning::LengthMismatch { stream_id } => self.flag(FindingCode::PsMalformed, i, || {
                format!("unit {stream_id:#04x}: declared length does not end at a start code")
            }),
            DemuxWarning::Truncated { stream_id, missing } if is_pes(stream_id) => {
                self.flag(FindingCode::PesLengthInconsistent, i, || {
                    format!(
                        "PES {stream_id:#04x}: PES_packet_length runs {missing} bytes past the end of the RTP frame"
                    )
                })
            }
            DemuxWarning::Truncated { stream_id, missing } => self.flag(FindingCode::PsMalformed, i, || {
                format!("unit {stream_id:#04x} cut {missing} bytes short by the end of the RTP frame")
            }),
            DemuxWarning::UnboundedPes { stream_id } => {
                self.flag(FindingCode::PesLengthInconsistent, i, || {
                    format!("PES {stream_id:#04x} with PES_packet_length 0, not allowed in a program stream")
                })
            }
            DemuxWarning::BadPesHeader { stream_id } => self.flag(FindingCode::PsMalformed, i, || {
                format!("PES {stream_id:#04x}: inconsistent PES header")
            }),
            DemuxWarning::BadPackHeader => self.flag(FindingCode::PsMalformed, i, || {
                "pack header with neither the MPEG-2 nor the MPEG-1 layout".to_string()
            }),
            DemuxWarning::MalformedPsm => self.flag(FindingCode::PsMalformed, i, || {
                "program stream map lengths overrun the map".to_string()
            }),
            DemuxWarning::MalformedSystemHeader => self.flag(FindingCode::PsMalformed, i, || {
                "system header too short".to_string()
            }),
            DemuxWarning::FrameTooLarge { stream_id } => self.flag(FindingCode::PsMalformed, i, || {
                format!("stream {stream_id:#04x}: frame exceeds the size limit")
            }),
            DemuxWarning::PsmCrcMismatch { stored, computed } => {
                let (code, message) = psm_crc_finding(stored, computed);
                self.flag(code, i, || message)
            }
            DemuxWarning::PsmUnderSystemHeaderCode => self.flag(FindingCode::PsmStartCode, i, || {
                "program stream map under start code 0x000001BB (the system header's), expected 0x000001BC; read as the map".to_string()
            }),
            DemuxWarning::PsmDescriptorOverrun {
                stream_id,
                declared,
                available,
            } => self.flag(FindingCode::PsmDescriptorOverrun, i, || match stream_id {
                Some(id) => format!(
                    "PSM entry of stream {id:#04x}: a descriptor loop declares {declared} bytes, only {available} left in its entry"
                ),
                None => format!(
                    "PSM program descriptors: a descriptor declares {declared} bytes, only {available} left in program_stream_info"
                ),
            }),
        }
    }

    fn on_psm(&mut self, psm: &Psm, ctx: Ctx) {
        self.psm_count += 1;
        if let Some(u) = &mut self.unit {
            u.psm = true;
        }
        self.psm_types = psm
            .entries
            .iter()
            .map(|e| (e.stream_id, e.stream_type))
            .collect();
        for &(id, t) in &self.psm_types {
            if !self.stream_types.contains(&(id, t)) {
                self.stream_types.push((id, t));
            }
        }
        let mut problems = Vec::new();
        for e in &psm.entries {
            if is_video_stream_type(e.stream_type) && !is_video_stream_id(e.stream_id)
                || is_audio_stream_type(e.stream_type) && !is_audio_stream_id(e.stream_id)
            {
                problems.push(format!(
                    "stream type {:#04x} on stream id {:#04x}",
                    e.stream_type, e.stream_id
                ));
            }
        }
        let expected = &self.cfg.expected_stream_types;
        if !expected.is_empty() {
            for e in &psm.entries {
                if !expected.contains(&e.stream_type) {
                    problems.push(format!(
                        "unexpected stream type {:#04x} (stream id {:#04x})",
                        e.stream_type, e.stream_id
                    ));
                }
            }
            for t in expected {
                if !psm.entries.iter().any(|e| e.stream_type == *t) {
                    problems.push(format!("expected stream type {t:#04x} missing"));
                }
            }
        }
        if !problems.is_empty() {
            self.flag(FindingCode::PsmStreamTypeMismatch, ctx.index, || {
                format!("PSM: {}", problems.join("; "))
            });
        }
    }

    fn video_codec(&self, f: &DemuxedFrame) -> VideoCodec {
        let from_type = |t: u8| match t {
            stream_type::H265 => Some(VideoCodec::H265),
            stream_type::H264 => Some(VideoCodec::H264),
            _ => None,
        };
        f.stream_type
            .and_then(from_type)
            .or_else(|| {
                self.cfg
                    .expected_stream_types
                    .iter()
                    .find_map(|&t| from_type(t))
            })
            .unwrap_or(VideoCodec::H264)
    }

    fn on_frame(&mut self, f: &DemuxedFrame, ctx: Ctx) {
        if !self.locked {
            // The tail of a frame whose start was not received: not judged.
            self.joined = true;
            self.join_frames += 1;
            self.join_frame_bytes += f.data.len() as u64;
            return;
        }
        if self.psm_count > 0 && !self.psm_types.iter().any(|&(id, _)| id == f.stream_id) {
            self.flag(FindingCode::PesStreamNotInPsm, ctx.index, || {
                format!(
                    "PES stream id {:#04x} is not listed in the PSM",
                    f.stream_id
                )
            });
        }
        if f.is_audio() {
            self.audio_frames += 1;
            return;
        }
        if !f.is_video() {
            return;
        }
        let codec = self.video_codec(f);
        let info = analyze(codec, &f.data);
        self.video_frames += 1;
        if let Some(pts) = f.pts {
            if self.video_pts_count > 0 {
                // Signed 33-bit difference.
                let d = (pts.wrapping_sub(self.video_pts_last) & TIMESTAMP_MASK) as i64;
                self.video_pts_span += if d >= 1 << 32 { d - (1 << 33) } else { d };
            }
            self.video_pts_count += 1;
            self.video_pts_last = pts;
        }
        // 附录C: the RTP timestamp of a frame is its PTS on the same 90 kHz clock,
        // so both advance alike whatever the pace of arrival (a download at 4x,
        // a paused playback). Compared once half a second of PTS has passed.
        if let (Some(pts), Some(ext_ts)) = (f.pts, self.unit.as_ref().map(|u| u.ext_ts)) {
            match self.ts_pts_ref {
                None => self.ts_pts_ref = Some((ext_ts, pts)),
                Some((ts0, pts0)) if !self.ts_pts_checked => {
                    let dp = (pts.wrapping_sub(pts0) & TIMESTAMP_MASK) as i64;
                    if dp >= i64::from(CLOCK_HZ / 2) && dp < 1 << 32 {
                        self.ts_pts_checked = true;
                        let dt = ext_ts - ts0;
                        let ratio = dt as f64 / dp as f64;
                        if (ratio - 1.0).abs() > self.cfg.clock_tolerance {
                            self.flag(FindingCode::TimestampPtsMismatch, ctx.index, || {
                                format!(
                                    "RTP timestamps advanced {dt} while the PES PTS advanced {dp}: the RTP clock runs at about {:.0} Hz, expected {CLOCK_HZ} Hz",
                                    ratio * f64::from(CLOCK_HZ)
                                )
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        let (unit_psm, vps, sps, pps) = match &mut self.unit {
            Some(u) => {
                if !u.has_video {
                    u.has_video = true;
                    if self.video_units == 0 {
                        self.video_ts_first = u.ext_ts;
                    }
                    self.video_units += 1;
                    self.video_ts_last = u.ext_ts;
                }
                u.vps |= info.has_vps;
                u.sps |= info.has_sps;
                u.pps |= info.has_pps;
                (u.psm, u.vps, u.sps, u.pps)
            }
            None => (false, info.has_vps, info.has_sps, info.has_pps),
        };
        if self.joined && self.key_frames == 0 && !info.key {
            // Joined mid-stream: pictures before the first key frame cannot be
            // decoded, and the sender is not at fault for them.
            self.join_frames += 1;
            self.join_frame_bytes += f.data.len() as u64;
        } else if self.video_frames == 1 && !info.key && !ctx.damaged {
            self.flag(FindingCode::FirstVideoFrameNotKey, ctx.index, || {
                format!(
                    "first video frame is not a key frame (NAL types {:?})",
                    info.nal_types
                )
            });
        }
        if !info.key {
            return;
        }
        self.key_frames += 1;
        if self.first_key_arrival.is_none() {
            self.first_key_arrival = Some(ctx.arrival);
        }
        // The notes' muxer calls `ps_muxer_input(m_ps, m_ps_stream, 0, ...)` with flags 0,
        // i.e. never marks a key frame, so it never repeats the PSM. Decision: GB/T 28181
        // Annex C practice, system header + PSM precede every key frame; their absence
        // before the first key frame is an error, on later key frames a warning.
        if self.psm_count == 0 {
            self.flag(FindingCode::PsmMissingBeforeKeyFrame, ctx.index, || {
                "key frame before any program stream map".to_string()
            });
        } else if !unit_psm {
            self.flag(FindingCode::KeyFrameWithoutPsm, ctx.index, || {
                "key frame without a program stream map in its RTP frame".to_string()
            });
        }
        let complete = match codec {
            VideoCodec::H264 => sps && pps,
            VideoCodec::H265 => vps && sps && pps,
        };
        if !complete && !ctx.damaged {
            self.flag(FindingCode::KeyFrameWithoutParameterSets, ctx.index, || {
                let need = match codec {
                    VideoCodec::H264 => "SPS and PPS",
                    VideoCodec::H265 => "VPS, SPS and PPS",
                };
                format!(
                    "{codec:?} key frame without {need} before it (NAL types {:?})",
                    info.nal_types
                )
            });
        }
    }

    /// Ends the stream (the last frame is judged) and returns the report.
    pub fn finish(mut self) -> ValidationReport {
        self.end_unit();
        self.report()
    }

    /// Metrics and findings so far (the frame in progress is not judged yet).
    pub fn report(&self) -> ValidationReport {
        let clock = f64::from(self.cfg.clock_rate);
        let expected = self.max_ext.map_or(0, |m| (m - self.base_ext + 1) as u64);
        let lost = expected.saturating_sub(self.unique);
        let first = self.first_arrival.unwrap_or_default();
        let duration = self.last_arrival.saturating_sub(first);
        let secs = duration.as_secs_f64();
        let mut findings = self.findings.clone();
        if lost > 0 {
            findings.push(FindingCode::PacketLoss.finding(
                self.first_gap_index.unwrap_or(0),
                lost,
                format!("{lost} of {expected} packets lost"),
            ));
        }
        let mut estimated_clock_hz = None;
        if let (Some((a0, t0)), Some((a1, t1))) = (self.first_unit, self.last_unit) {
            let span = a1.saturating_sub(a0);
            if self.rtp_frames >= 3 && span >= self.cfg.min_clock_span && !span.is_zero() {
                let est = (t1 - t0) as f64 / span.as_secs_f64();
                estimated_clock_hz = Some(est);
                if (est / clock - 1.0).abs() > self.cfg.clock_tolerance {
                    let nearest = [1_000.0, 8_000.0, 16_000.0, 44_100.0, 48_000.0, 90_000.0]
                        .into_iter()
                        .min_by(|a: &f64, b: &f64| {
                            let da = (est.max(1.0) / a).ln().abs();
                            let db = (est.max(1.0) / b).ln().abs();
                            da.total_cmp(&db)
                        })
                        .unwrap_or(clock);
                    findings.push(FindingCode::TimestampClockMismatch.finding(
                        self.second_unit_index,
                        1,
                        format!(
                            "RTP timestamps advance at about {est:.0} Hz of arrival time (closest common clock {nearest:.0} Hz), expected {clock:.0} Hz"
                        ),
                    ));
                }
            }
        }
        if self.joined && self.locked {
            let key = if self.key_frames > 0 {
                "before the first key frame"
            } else {
                "and no key frame followed"
            };
            findings.push(FindingCode::JoinedMidStream.finding(
                0,
                1,
                format!(
                    "stream joined mid-pack: {} bytes skipped before the first pack header, {} frames ({} bytes) passed over {key}",
                    self.join_skipped, self.join_frames, self.join_frame_bytes
                ),
            ));
        } else if self.joined {
            findings.push(FindingCode::PsSyncLost.finding(
                0,
                1,
                format!(
                    "no PS pack header found: {} bytes skipped looking for one",
                    self.join_skipped
                ),
            ));
        }
        findings.sort_by_key(|f| f.first_index());
        let frame_rate = if self.video_pts_count >= 2 && self.video_pts_span > 0 {
            Some(
                (self.video_pts_count - 1) as f64 * f64::from(CLOCK_HZ)
                    / self.video_pts_span as f64,
            )
        } else if self.video_units >= 2 && self.video_ts_last > self.video_ts_first {
            Some(
                (self.video_units - 1) as f64 * clock
                    / (self.video_ts_last - self.video_ts_first) as f64,
            )
        } else {
            None
        };
        ValidationReport {
            datagrams: self.index,
            packets: self.packets,
            rtcp_packets: self.rtcp,
            invalid_packets: self.invalid,
            foreign_ssrc_packets: self.foreign,
            ssrc: self.ssrc,
            total_bytes: self.total_bytes,
            payload_bytes: self.payload_bytes,
            expected_packets: expected,
            lost_packets: lost,
            loss_ratio: if expected > 0 {
                lost as f64 / expected as f64
            } else {
                0.0
            },
            duplicate_packets: self.duplicates,
            reordered_packets: self.reordered,
            jitter_ts: self.jitter,
            jitter_ms: self.jitter * 1000.0 / clock,
            max_jitter_ms: self.max_jitter * 1000.0 / clock,
            rtp_frames: self.rtp_frames,
            video_frames: self.video_frames,
            audio_frames: self.audio_frames,
            key_frames: self.key_frames,
            psm_count: self.psm_count,
            frame_rate,
            bitrate_bps: (secs > 0.0).then(|| self.payload_bytes as f64 * 8.0 / secs),
            duration,
            time_to_first_key_frame: self.first_key_arrival.map(|a| a.saturating_sub(first)),
            estimated_clock_hz,
            stream_types: self.stream_types.clone(),
            ps_errors_after_loss: self.ps_errors_after_loss,
            findings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ps::mux::{write_pack_header, write_pes};
    use bytes::BytesMut;

    const SSRC: u32 = 100_000_001;
    /// A PSM listing H.264 on 0xE0, CRC_32 0xF4DCBD45 (ISO/IEC 13818-1 Annex A over
    /// the 16 bytes before it).
    const PSM: [u8; 20] = [
        0x00, 0x00, 0x01, 0xBC, 0x00, 0x0E, 0xE0, 0xFF, 0x00, 0x00, 0x00, 0x04, 0x1B, 0xE0, 0x00,
        0x00, 0xF4, 0xDC, 0xBD, 0x45,
    ];

    /// An RTP packet: V=2, PT 96, the marker, `seq`, `ts`, SSRC 100000001.
    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, if marker { 0xE0 } else { 0x60 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0x05, 0xF5, 0xE1, 0x01]);
        p.extend_from_slice(payload);
        p
    }

    /// A key frame (pack header, `psm`, SPS/PPS/IDR in one PES) at `pts`.
    fn key_frame(psm: &[u8], pts: u64) -> Vec<u8> {
        let mut ps = BytesMut::new();
        write_pack_header(&mut ps, pts, 0, 20_000);
        ps.extend_from_slice(psm);
        let es = [
            0, 0, 0, 1, 0x67, 0x42, 0x00, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0x38, 0x80, 0, 0, 0, 1,
            0x65, 0x88, 0x84, 0x21,
        ];
        write_pes(&mut ps, 0xE0, Some(pts), None, &es, 65_535);
        ps.to_vec()
    }

    /// A non-key frame at `pts`.
    fn p_frame(pts: u64) -> Vec<u8> {
        let mut ps = BytesMut::new();
        write_pack_header(&mut ps, pts, 0, 20_000);
        write_pes(
            &mut ps,
            0xE0,
            Some(pts),
            None,
            &[0, 0, 0, 1, 0x41, 0x9A, 0x11],
            65_535,
        );
        ps.to_vec()
    }

    fn run(payloads: &[Vec<u8>]) -> ValidationReport {
        let mut v = StreamValidator::new(ValidatorConfig::new(SSRC, [0x1B]));
        for (i, p) in payloads.iter().enumerate() {
            let ts = i as u32 * 3600;
            let at = Duration::from_millis(40 * i as u64);
            v.push_packet(&rtp(i as u16, ts, true, p), at);
        }
        v.finish()
    }

    fn codes(r: &ValidationReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_clean_key_frame_with_the_literal_psm_has_no_findings() {
        let r = run(&[key_frame(&PSM, 0), p_frame(3600)]);
        assert!(r.is_clean(), "{:#?}", r.findings);
        assert_eq!((r.psm_count, r.key_frames, r.video_frames), (1, 1, 2));
    }

    #[test]
    fn psm_under_the_system_header_start_code_is_reported_and_used() {
        // The same map under 00 00 01 BB, its CRC computed over what was written.
        let mut psm = PSM;
        psm[3] = 0xBB;
        psm[16..].copy_from_slice(&[0x66, 0x23, 0x24, 0x30]);
        let r = run(&[key_frame(&psm, 0), p_frame(3600)]);
        assert_eq!(codes(&r), ["ps.psm-start-code"]);
        let f = r.finding(FindingCode::PsmStartCode).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("0x000001BC"), "{}", f.message);
        assert!(FindingCode::PsmStartCode.clause().contains("0xBC"));
        // Read as the map: the key frame is not blamed for a missing PSM.
        assert_eq!(r.psm_count, 1);
        assert_eq!(r.stream_types, [(0xE0, 0x1B)]);
    }

    #[test]
    fn a_real_system_header_is_not_taken_for_a_psm() {
        // rate_bound 20000, audio_bound 0, video_bound 1, one stream 0xE0.
        let sh = [
            0x00, 0x00, 0x01, 0xBB, 0x00, 0x09, 0x80, 0x9C, 0x41, 0x04, 0xE1, 0xFF, 0xE0, 0xE0,
            0x80,
        ];
        let mut with_sh = sh.to_vec();
        with_sh.extend_from_slice(&PSM);
        let r = run(&[key_frame(&with_sh, 0)]);
        assert!(r.is_clean(), "{:#?}", r.findings);
    }

    #[test]
    fn descriptor_overrunning_its_psm_entry_is_reported() {
        // ES_info_length 4, but the descriptor 0x0A declares 5 bytes after its 2.
        let psm = [
            0x00, 0x00, 0x01, 0xBC, 0x00, 0x12, 0xE0, 0xFF, 0x00, 0x00, 0x00, 0x08, 0x1B, 0xE0,
            0x00, 0x04, 0x0A, 0x05, 0x65, 0x6E, 0x30, 0x1D, 0x32, 0x60,
        ];
        let r = run(&[key_frame(&psm, 0), p_frame(3600)]);
        assert_eq!(codes(&r), ["ps.psm-descriptor-overrun"]);
        let f = r.finding(FindingCode::PsmDescriptorOverrun).unwrap();
        assert!(
            f.message.contains("stream 0xe0") && f.message.contains("declares 7 bytes, only 4"),
            "{}",
            f.message
        );
        assert_eq!(r.stream_types, [(0xE0, 0x1B)]);
    }

    #[test]
    fn entry_overrunning_the_elementary_stream_map_is_reported() {
        // elementary_stream_map_length 4, the entry's ES_info_length 6 (no room).
        let mut psm = PSM;
        psm[15] = 0x06;
        let crc = crate::proto::ps::crc32_mpeg2(&psm[..16]);
        psm[16..].copy_from_slice(&crc.to_be_bytes());
        let r = run(&[key_frame(&psm, 0)]);
        assert_eq!(codes(&r), ["ps.psm-descriptor-overrun"]);
        assert!(r.findings[0].message.contains("declares 6 bytes, only 0"));
    }

    #[test]
    fn byte_swapped_psm_crc_is_diagnosed() {
        let mut psm = PSM;
        psm[16..].copy_from_slice(&[0x45, 0xBD, 0xDC, 0xF4]);
        let r = run(&[key_frame(&psm, 0)]);
        assert_eq!(codes(&r), ["ps.psm-crc-byte-swapped"]);
        let f = &r.findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.contains("0x45bddcf4") && f.message.contains("0xf4dcbd45"));
    }

    #[test]
    fn zero_psm_crc_is_diagnosed() {
        let mut psm = PSM;
        psm[16..].fill(0);
        let r = run(&[key_frame(&psm, 0)]);
        assert_eq!(codes(&r), ["ps.psm-crc-zero"]);
        assert!(r.findings[0].message.contains("expected 0xf4dcbd45"));
    }

    #[test]
    fn other_wrong_psm_crc_names_expected_and_actual() {
        let mut psm = PSM;
        psm[19] ^= 0xFF;
        let r = run(&[key_frame(&psm, 0)]);
        assert_eq!(codes(&r), ["ps.psm_crc"]);
        assert_eq!(
            r.findings[0].message,
            "PSM CRC_32 0xf4dcbdba, expected 0xf4dcbd45"
        );
    }

    #[test]
    fn a_stream_joined_mid_pack_is_a_warning_with_the_bytes_skipped() {
        // The first packet is the tail of a frame whose start was not received:
        // five bytes of slice data, then a whole P frame before the first key frame.
        let tail = vec![0x88, 0x84, 0x21, 0xA0, 0x07];
        let r = run(&[tail, p_frame(3600), key_frame(&PSM, 7200), p_frame(10_800)]);
        assert_eq!(codes(&r), ["ps.joined-mid-stream"]);
        assert!(r.passed());
        let f = &r.findings[0];
        assert!(
            f.message
                .contains("5 bytes skipped before the first pack header")
                && f.message
                    .contains("1 frames (7 bytes) passed over before the first key frame"),
            "{}",
            f.message
        );
        assert_eq!(r.key_frames, 1);
    }

    #[test]
    fn a_join_mid_pes_does_not_count_the_partial_frame_as_the_first() {
        // The tail of a frame that carried a second PES: the demuxer finds a PES
        // start code before any pack header.
        let mut tail = vec![0x11, 0x22];
        let mut pes = BytesMut::new();
        write_pes(&mut pes, 0xE0, None, None, &[0x9A, 0x55, 0x66], 65_535);
        tail.extend_from_slice(&pes);
        let r = run(&[tail, key_frame(&PSM, 3600), p_frame(7200)]);
        assert_eq!(codes(&r), ["ps.joined-mid-stream"]);
        assert!(r.findings[0].message.contains("2 bytes skipped"));
        assert_eq!(r.video_frames, 2);
    }

    #[test]
    fn sync_lost_after_the_stream_was_locked_stays_an_error() {
        let mut broken = vec![0x12, 0x34, 0x56];
        broken.extend_from_slice(&p_frame(7200));
        let r = run(&[key_frame(&PSM, 0), p_frame(3600), broken]);
        assert_eq!(codes(&r), ["ps.sync_lost"]);
        assert!(!r.passed());
        assert!(r.findings[0].message.contains("3 bytes skipped"));
    }

    #[test]
    fn a_stream_that_starts_clean_on_a_p_frame_is_still_an_error() {
        let r = run(&[p_frame(0), key_frame(&PSM, 3600)]);
        assert_eq!(codes(&r), ["video.first_frame_not_key"]);
    }

    #[test]
    fn no_pack_header_at_all_is_sync_lost() {
        let r = run(&[vec![0x41; 40], vec![0x42; 40]]);
        assert_eq!(codes(&r), ["ps.sync_lost"]);
        assert!(r.findings[0].message.contains("no PS pack header"));
    }

    #[test]
    fn framing_findings_from_the_transport_are_kept() {
        let mut v = StreamValidator::new(ValidatorConfig::new(SSRC, [0x1B]));
        v.add_finding(FindingCode::TcpRtspFraming, "framed with '$'");
        v.add_finding(FindingCode::TcpRtspFraming, "framed with '$'");
        let r = v.finish();
        assert_eq!(codes(&r), ["rtp.tcp-rtsp-framing"]);
        assert_eq!(r.findings[0].count(), 2);
        assert!(FindingCode::TcpRtspFraming.clause().contains("RFC 4571"));
    }
}
