//! Incremental MPEG-PS demuxer (ISO/IEC 13818-1 §2.5: pack header, system header,
//! program stream map, PES) for GB/T 28181 Annex C streams, tolerant of what real
//! cameras send: streams that begin mid-pack (resynchronises on the next PS start
//! code), vendor descriptors in the PSM (skipped by length), HikVision-style private
//! stream 0xBD / padding 0xBE, PES without PTS, MPEG-1 pack and PES headers, a
//! `PES_packet_length` of 0, and a wrong PSM CRC (reported, map still used).
//!
//! Drive it with [`PsDemuxer::feed`] (any chunking), pull [`DemuxEvent`]s with
//! [`PsDemuxer::poll`], and call [`PsDemuxer::flush`] at the end of an access unit
//! (e.g. an RTP marker / timestamp change) or of the stream to get the pending frames.
//! [`PsDemuxer::discontinuity`] drops partial data after packet loss. It never panics.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::proto::ps::{
    crc32_mpeg2, decode_timestamp, is_audio_stream_id, is_video_stream_id, Codec, PACK_HEADER,
    PRIVATE_STREAM_1, PROGRAM_END, PROGRAM_STREAM_MAP, SYSTEM_HEADER,
};

/// Default cap on a reassembled frame; larger frames are cut and reported.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 8 << 20;

/// Pack header fields (ISO/IEC 13818-1 Table 2-38, or the MPEG-1 form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackHeader {
    /// 33-bit SCR base, 90 kHz.
    pub scr_base: u64,
    /// 9-bit SCR extension, 27 MHz remainder (0 for MPEG-1).
    pub scr_ext: u16,
    /// `program_mux_rate`, units of 50 bytes/s.
    pub program_mux_rate: u32,
    /// The pack used the 12-byte MPEG-1 layout.
    pub mpeg1: bool,
}

/// One stream entry of a system header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemHeaderStream {
    /// Stream id.
    pub stream_id: u8,
    /// `P-STD_buffer_bound_scale` (true: 1024-byte units, false: 128-byte units).
    pub buffer_bound_scale: bool,
    /// `P-STD_buffer_size_bound`.
    pub buffer_size_bound: u16,
}

/// System header fields (ISO/IEC 13818-1 Table 2-40).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemHeader {
    /// `rate_bound`, units of 50 bytes/s.
    pub rate_bound: u32,
    /// `audio_bound`.
    pub audio_bound: u8,
    /// `video_bound`.
    pub video_bound: u8,
    /// Stream entries.
    pub streams: Vec<SystemHeaderStream>,
}

/// One elementary stream entry of a PSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsmEntry {
    /// `stream_type` (0x1B H.264, 0x24 H.265, 0x90 G.711A, ...).
    pub stream_type: u8,
    /// `elementary_stream_id`.
    pub stream_id: u8,
    /// Bytes of descriptors that were skipped for this entry.
    pub descriptors_len: usize,
}

/// Program stream map (ISO/IEC 13818-1 Table 2-41).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Psm {
    /// `current_next_indicator`.
    pub current_next: bool,
    /// `program_stream_map_version`.
    pub version: u8,
    /// Bytes of program-level descriptors that were skipped.
    pub program_descriptors_len: usize,
    /// Elementary stream entries in order.
    pub entries: Vec<PsmEntry>,
    /// The stored `CRC_32` matched.
    pub crc_ok: bool,
}

/// A reassembled elementary-stream access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemuxedFrame {
    /// PES stream id (0xE0.. video, 0xC0.. audio).
    pub stream_id: u8,
    /// Stream type from the latest PSM, if one listed this stream id.
    pub stream_type: Option<u8>,
    /// PTS of the first PES of the frame (90 kHz).
    pub pts: Option<u64>,
    /// DTS of the first PES of the frame (90 kHz).
    pub dts: Option<u64>,
    /// Concatenated PES payloads.
    pub data: Bytes,
    /// Number of PES packets the frame was carried in.
    pub pes_count: usize,
}

impl DemuxedFrame {
    /// Codec from the PSM stream type, when known.
    pub fn codec(&self) -> Option<Codec> {
        self.stream_type.and_then(Codec::from_stream_type)
    }

    /// Whether the stream id is a video stream id.
    pub fn is_video(&self) -> bool {
        is_video_stream_id(self.stream_id)
    }

    /// Whether the stream id is an audio stream id.
    pub fn is_audio(&self) -> bool {
        is_audio_stream_id(self.stream_id)
    }
}

/// Something unusual the demuxer recovered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemuxWarning {
    /// Bytes were skipped to find the next PS start code.
    Resync {
        /// Number of bytes skipped.
        skipped: usize,
    },
    /// A length-prefixed unit (PES, PSM, system header, ...) was not followed by a start
    /// code: its declared length disagrees with the data.
    LengthMismatch {
        /// Stream id of the unit whose length was wrong.
        stream_id: u8,
    },
    /// A PES header is inconsistent (`PES_header_data_length` beyond the packet, PTS flags
    /// without room for the PTS, unknown syntax).
    BadPesHeader {
        /// Stream id.
        stream_id: u8,
    },
    /// A PES with `PES_packet_length` 0 (allowed only in transport streams); its payload
    /// runs to the next start code.
    UnboundedPes {
        /// Stream id.
        stream_id: u8,
    },
    /// Pack header with neither the MPEG-2 nor the MPEG-1 marker pattern.
    BadPackHeader,
    /// PSM too short or with lengths that overrun it.
    MalformedPsm,
    /// The PSM `CRC_32` does not match its contents.
    PsmCrcMismatch {
        /// CRC in the stream.
        stored: u32,
        /// CRC computed over the PSM.
        computed: u32,
    },
    /// System header too short.
    MalformedSystemHeader,
    /// A unit under the system header start code (0x000001BB) whose bytes are a
    /// program stream map; it was read as the map.
    PsmUnderSystemHeaderCode,
    /// A descriptor of the PSM runs past the loop that holds it: past its entry's
    /// `elementary_stream_info_length`, past the `program_stream_info_length`, or an
    /// entry's `elementary_stream_info_length` past the `elementary_stream_map_length`.
    PsmDescriptorOverrun {
        /// Elementary stream of the entry; `None` for the program descriptors.
        stream_id: Option<u8>,
        /// Bytes the descriptor (or the entry's descriptor loop) declares.
        declared: usize,
        /// Bytes left for it in the loop that holds it.
        available: usize,
    },
    /// Data ended (flush) in the middle of a unit; the partial unit was dropped.
    Truncated {
        /// Stream id of the partial unit.
        stream_id: u8,
        /// Bytes that were still missing.
        missing: usize,
    },
    /// A frame outgrew the size cap and was emitted early.
    FrameTooLarge {
        /// Stream id.
        stream_id: u8,
    },
}

/// Output of the demuxer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemuxEvent {
    /// A pack header.
    PackHeader(PackHeader),
    /// A system header.
    SystemHeader(SystemHeader),
    /// A program stream map.
    Psm(Psm),
    /// A complete frame. A frame is known to be complete only when the next PES of the
    /// same stream carries a different PTS, or at [`PsDemuxer::flush`]; so without
    /// flushing, a frame is reported after the headers of the following pack.
    Frame(DemuxedFrame),
    /// A unit that carries no elementary stream data for this demuxer (private stream
    /// 0xBD/0xBF, padding 0xBE, 0xF0..=0xFF streams), skipped by length.
    Skipped {
        /// Stream id.
        stream_id: u8,
        /// Unit length including the 6-byte header.
        len: usize,
    },
    /// `MPEG_program_end_code`.
    ProgramEnd,
    /// A recovered irregularity.
    Warning(DemuxWarning),
}

/// Counters kept by the demuxer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Bytes fed.
    pub bytes_in: u64,
    /// Bytes skipped while resynchronising or dropped as truncated.
    pub bytes_skipped: u64,
    /// Pack headers seen.
    pub packs: u64,
    /// PES packets (audio/video) seen.
    pub pes_packets: u64,
    /// Frames emitted.
    pub frames: u64,
    /// Partial frames dropped by [`PsDemuxer::discontinuity`].
    pub frames_dropped: u64,
}

#[derive(Debug)]
struct Pending {
    stream_id: u8,
    pts: Option<u64>,
    dts: Option<u64>,
    data: BytesMut,
    pes_count: usize,
}

enum Step {
    Continue,
    NeedMore,
}

/// Incremental PS demuxer.
#[derive(Debug)]
pub struct PsDemuxer {
    buf: Vec<u8>,
    pos: usize,
    events: VecDeque<DemuxEvent>,
    pending: Vec<Pending>,
    stream_types: Vec<(u8, u8)>,
    unbounded: Option<u8>,
    skipping: usize,
    after_unit: Option<u8>,
    max_frame_size: usize,
    stats: DemuxStats,
}

impl Default for PsDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

/// Finds `00 00 01 xx` with `xx >= 0xB9` (a PS start code) at or after `from`.
fn find_ps_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 4 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && data[i + 3] >= 0xB9 {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

fn be16(b: &[u8], i: usize) -> usize {
    match (b.get(i), b.get(i + 1)) {
        (Some(&h), Some(&l)) => usize::from(h) << 8 | usize::from(l),
        _ => 0,
    }
}

/// Parses a PES header: (pts, dts, offset of the payload within the unit, header sane).
/// `None` when the header does not fit the unit or has no recognisable syntax.
fn parse_pes_header(unit: &[u8]) -> Option<(Option<u64>, Option<u64>, usize, bool)> {
    let p = unit.get(6..)?;
    if p.len() >= 3 && p[0] & 0xC0 == 0x80 {
        // MPEG-2 PES header.
        let flags = p[1] >> 6;
        let hdr_len = usize::from(p[2]);
        if 3 + hdr_len > p.len() {
            return None;
        }
        let off = 6 + 3 + hdr_len;
        return Some(match flags {
            0b10 if hdr_len >= 5 => (decode_timestamp(&p[3..]), None, off, true),
            0b11 if hdr_len >= 10 => (
                decode_timestamp(&p[3..]),
                decode_timestamp(&p[8..]),
                off,
                true,
            ),
            0b00 => (None, None, off, true),
            // '01' is forbidden, or the header is too short for the flagged fields:
            // keep the payload, drop the timestamps.
            _ => (None, None, off, false),
        });
    }
    // MPEG-1 PES header: stuffing, optional STD buffer, timestamps or 0x0F.
    let mut i = 0;
    while i < 16 && p.get(i) == Some(&0xFF) {
        i += 1;
    }
    if p.get(i).is_some_and(|b| b & 0xC0 == 0x40) {
        i += 2;
    }
    match p.get(i).map(|b| b & 0xF0) {
        Some(0x20) if p.len() >= i + 5 => Some((decode_timestamp(&p[i..]), None, 6 + i + 5, true)),
        Some(0x30) if p.len() >= i + 10 => Some((
            decode_timestamp(&p[i..]),
            decode_timestamp(&p[i + 5..]),
            6 + i + 10,
            true,
        )),
        _ if p.get(i) == Some(&0x0F) => Some((None, None, 6 + i + 1, true)),
        _ => None,
    }
}

fn parse_pack_header(d: &[u8]) -> PackHeader {
    let b = |i: usize| u64::from(d[i]);
    if d[4] & 0xC0 == 0x40 {
        PackHeader {
            scr_base: ((b(4) >> 3) & 0x07) << 30
                | (b(4) & 0x03) << 28
                | b(5) << 20
                | (b(6) >> 3) << 15
                | (b(6) & 0x03) << 13
                | b(7) << 5
                | b(8) >> 3,
            scr_ext: (((b(8) & 0x03) << 7) | (b(9) >> 1)) as u16,
            program_mux_rate: ((b(10) << 14) | (b(11) << 6) | (b(12) >> 2)) as u32,
            mpeg1: false,
        }
    } else {
        PackHeader {
            scr_base: decode_timestamp(&d[4..9]).unwrap_or(0),
            scr_ext: 0,
            program_mux_rate: (((b(9) & 0x7F) << 15) | (b(10) << 7) | (b(11) >> 1)) as u32,
            mpeg1: true,
        }
    }
}

fn parse_system_header(unit: &[u8]) -> Option<SystemHeader> {
    let b = unit.get(6..)?;
    if b.len() < 6 {
        return None;
    }
    let rate_bound =
        (u32::from(b[0] & 0x7F) << 15) | (u32::from(b[1]) << 7) | (u32::from(b[2]) >> 1);
    let mut streams = Vec::new();
    let mut i = 6;
    while i + 3 <= b.len() && b[i] & 0x80 != 0 {
        streams.push(SystemHeaderStream {
            stream_id: b[i],
            buffer_bound_scale: b[i + 1] & 0x20 != 0,
            buffer_size_bound: (u16::from(b[i + 1] & 0x1F) << 8) | u16::from(b[i + 2]),
        });
        i += 3;
    }
    Some(SystemHeader {
        rate_bound,
        audio_bound: b[3] >> 2,
        video_bound: b[4] & 0x1F,
        streams,
    })
}

/// Walks a descriptor loop (`tag`, `length`, bytes) of `body[from..to]`; the first
/// descriptor whose length runs past `to`, as (declared, available) bytes.
fn descriptor_overrun(body: &[u8], from: usize, to: usize) -> Option<(usize, usize)> {
    let mut j = from;
    while j < to {
        let available = to - j;
        let declared = match body.get(j + 1) {
            Some(&len) if j + 2 <= to => 2 + usize::from(len),
            _ => 2,
        };
        if declared > available {
            return Some((declared, available));
        }
        j += declared;
    }
    None
}

/// Whether a unit that came under the system header start code is laid out as a
/// program stream map: its lengths add up exactly to the unit, it lists at least
/// one stream, every listed id is a PES stream id, and nothing overruns. A real
/// system header (6 + 3n bytes of rate and buffer bounds) does not add up so.
fn looks_like_psm(unit: &[u8]) -> bool {
    let Some((psm, problems, _, _)) = parse_psm(unit) else {
        return false;
    };
    let body = &unit[6..];
    let info_len = be16(body, 2);
    let es_map_len = be16(body, 4 + info_len);
    problems.is_empty()
        && !psm.entries.is_empty()
        && 4 + info_len + 2 + es_map_len + 4 == body.len()
        && psm.entries.iter().all(|e| e.stream_id >= 0xBC)
}

/// Parses a PSM unit with what overran in it (the map is still returned).
fn parse_psm(unit: &[u8]) -> Option<(Psm, Vec<DemuxWarning>, u32, u32)> {
    let body = unit.get(6..)?;
    if body.len() < 10 {
        return None;
    }
    let crc_at = body.len() - 4;
    let mut problems = Vec::new();
    let mut overrun = false;
    let info_len = be16(body, 2);
    let mut i = 4 + info_len;
    if i + 2 > crc_at {
        overrun = true;
        i = crc_at.saturating_sub(2).max(4);
    } else if let Some((declared, available)) = descriptor_overrun(body, 4, i) {
        problems.push(DemuxWarning::PsmDescriptorOverrun {
            stream_id: None,
            declared,
            available,
        });
    }
    let es_map_len = be16(body, i);
    i += 2;
    let mut es_end = i + es_map_len;
    if es_end > crc_at {
        overrun = true;
        es_end = crc_at;
    }
    let mut entries = Vec::new();
    while i + 4 <= es_end {
        let info = be16(body, i + 2);
        let stream_id = body[i + 1];
        entries.push(PsmEntry {
            stream_type: body[i],
            stream_id,
            descriptors_len: info,
        });
        let end = i + 4 + info;
        let overrun_here = if end > es_end {
            Some((info, es_end - (i + 4)))
        } else {
            descriptor_overrun(body, i + 4, end)
        };
        if let Some((declared, available)) = overrun_here {
            problems.push(DemuxWarning::PsmDescriptorOverrun {
                stream_id: Some(stream_id),
                declared,
                available,
            });
        }
        i = end;
    }
    if overrun || (i > es_end && problems.is_empty()) {
        problems.insert(0, DemuxWarning::MalformedPsm);
    }
    let stored = u32::from_be_bytes([
        body[crc_at],
        body[crc_at + 1],
        body[crc_at + 2],
        body[crc_at + 3],
    ]);
    let computed = crc32_mpeg2(&unit[..unit.len() - 4]);
    let psm = Psm {
        current_next: body[0] & 0x80 != 0,
        version: body[0] & 0x1F,
        program_descriptors_len: info_len,
        entries,
        crc_ok: stored == computed,
    };
    Some((psm, problems, stored, computed))
}

impl PsDemuxer {
    /// A demuxer with the default frame size cap.
    pub fn new() -> Self {
        PsDemuxer {
            buf: Vec::new(),
            pos: 0,
            events: VecDeque::new(),
            pending: Vec::new(),
            stream_types: Vec::new(),
            unbounded: None,
            skipping: 0,
            after_unit: None,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            stats: DemuxStats::default(),
        }
    }

    /// Sets the cap on a reassembled frame (at least 1 byte).
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max.max(1);
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    /// Stream type the latest PSM gave for a stream id.
    pub fn stream_type(&self, stream_id: u8) -> Option<u8> {
        self.stream_types
            .iter()
            .find(|(id, _)| *id == stream_id)
            .map(|&(_, t)| t)
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Feeds the next chunk of the stream and parses as far as possible.
    pub fn feed(&mut self, data: &[u8]) {
        self.stats.bytes_in += data.len() as u64;
        if self.pos > 0 && (self.pos >= self.buf.len() || self.pos >= 4096) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        self.run(false);
    }

    /// Next event, if any.
    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// Treats the data fed so far as complete: parses what is left (partial units are
    /// reported as [`DemuxWarning::Truncated`] and dropped) and emits every pending frame.
    /// The next byte fed is expected to start a new unit.
    pub fn flush(&mut self) {
        self.run(true);
        self.unbounded = None;
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            self.emit(p);
        }
        self.buf.clear();
        self.pos = 0;
        self.skipping = 0;
        self.after_unit = None;
    }

    /// Drops buffered bytes and partial frames (after packet loss), without warnings.
    /// Parsing restarts at the next PS start code.
    pub fn discontinuity(&mut self) {
        self.stats.frames_dropped += self.pending.len() as u64;
        self.stats.bytes_skipped += self.buffered() as u64;
        self.pending.clear();
        self.buf.clear();
        self.pos = 0;
        self.unbounded = None;
        self.skipping = 0;
        self.after_unit = None;
    }

    fn run(&mut self, eof: bool) {
        while let Step::Continue = self.step(eof) {}
    }

    fn warn(&mut self, w: DemuxWarning) {
        self.events.push_back(DemuxEvent::Warning(w));
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
        self.skipping += n;
        self.stats.bytes_skipped += n as u64;
    }

    fn end_resync(&mut self) {
        if self.skipping > 0 {
            let skipped = std::mem::take(&mut self.skipping);
            self.warn(DemuxWarning::Resync { skipped });
        }
    }

    fn truncated(&mut self, stream_id: u8, need: usize) {
        let have = self.buffered();
        self.stats.bytes_skipped += have as u64;
        self.pos = self.buf.len();
        self.warn(DemuxWarning::Truncated {
            stream_id,
            missing: need.saturating_sub(have),
        });
    }

    fn step(&mut self, eof: bool) -> Step {
        let avail = self.buffered();
        if let Some(sid) = self.unbounded {
            let data = &self.buf[self.pos..];
            let (take, done) = match find_ps_start_code(data, 0) {
                Some(i) => (i, true),
                None if eof => (data.len(), true),
                None => (data.len().saturating_sub(3), false),
            };
            if let Some(p) = self.pending.iter_mut().find(|p| p.stream_id == sid) {
                p.data.extend_from_slice(&data[..take]);
            }
            self.pos += take;
            self.check_frame_size(sid);
            if done {
                self.unbounded = None;
                return if avail > take {
                    Step::Continue
                } else {
                    Step::NeedMore
                };
            }
            return Step::NeedMore;
        }
        if avail < 4 {
            if eof && avail > 0 {
                if let Some(stream_id) = self.after_unit.take() {
                    self.warn(DemuxWarning::LengthMismatch { stream_id });
                }
                self.skip(avail);
                self.end_resync();
            }
            return Step::NeedMore;
        }
        let data = &self.buf[self.pos..];
        if !(data[0] == 0 && data[1] == 0 && data[2] == 1 && data[3] >= 0xB9) {
            let found = find_ps_start_code(data, 1);
            if let Some(stream_id) = self.after_unit.take() {
                self.warn(DemuxWarning::LengthMismatch { stream_id });
            }
            return match found {
                Some(i) => {
                    self.skip(i);
                    self.end_resync();
                    Step::Continue
                }
                None => {
                    let n = if eof { avail } else { avail - 3 };
                    self.skip(n);
                    if eof {
                        self.end_resync();
                    }
                    Step::NeedMore
                }
            };
        }
        let sid = data[3];
        match sid {
            PROGRAM_END => {
                self.after_unit = None;
                self.pos += 4;
                self.events.push_back(DemuxEvent::ProgramEnd);
                Step::Continue
            }
            PACK_HEADER => self.pack_header(eof),
            _ => self.length_prefixed(sid, eof),
        }
    }

    fn pack_header(&mut self, eof: bool) -> Step {
        let data = &self.buf[self.pos..];
        if data.len() < 5 {
            return self.need(PACK_HEADER, 5, eof);
        }
        let need = if data[4] & 0xC0 == 0x40 {
            if data.len() < 14 {
                return self.need(PACK_HEADER, 14, eof);
            }
            14 + usize::from(data[13] & 0x07)
        } else if data[4] & 0xF0 == 0x20 {
            12
        } else {
            self.after_unit = None;
            self.warn(DemuxWarning::BadPackHeader);
            self.skip(4);
            return Step::Continue;
        };
        if data.len() < need {
            return self.need(PACK_HEADER, need, eof);
        }
        let ph = parse_pack_header(data);
        self.after_unit = None;
        self.pos += need;
        self.stats.packs += 1;
        self.events.push_back(DemuxEvent::PackHeader(ph));
        Step::Continue
    }

    fn need(&mut self, stream_id: u8, need: usize, eof: bool) -> Step {
        if eof {
            self.after_unit = None;
            self.truncated(stream_id, need);
        }
        Step::NeedMore
    }

    fn length_prefixed(&mut self, sid: u8, eof: bool) -> Step {
        let data = &self.buf[self.pos..];
        if data.len() < 6 {
            return self.need(sid, 6, eof);
        }
        let len = be16(data, 4);
        let carries_es = is_video_stream_id(sid) || is_audio_stream_id(sid);
        if len == 0 && (carries_es || sid == PRIVATE_STREAM_1) {
            return self.unbounded_pes(sid, eof);
        }
        let total = 6 + len;
        if data.len() < total {
            return self.need(sid, total, eof);
        }
        self.after_unit = Some(sid);
        let start = self.pos;
        self.pos += total;
        match sid {
            // Some muxers write the map under the system header's start code: read
            // it as the map it is, and say so.
            SYSTEM_HEADER if looks_like_psm(&self.buf[start..start + total]) => {
                self.warn(DemuxWarning::PsmUnderSystemHeaderCode);
                self.psm(start, total);
            }
            SYSTEM_HEADER => match parse_system_header(&self.buf[start..start + total]) {
                Some(sh) => self.events.push_back(DemuxEvent::SystemHeader(sh)),
                None => self.warn(DemuxWarning::MalformedSystemHeader),
            },
            PROGRAM_STREAM_MAP => self.psm(start, total),
            _ if carries_es => {
                self.stats.pes_packets += 1;
                match parse_pes_header(&self.buf[start..start + total]) {
                    Some((pts, dts, off, sane)) => {
                        if !sane {
                            self.warn(DemuxWarning::BadPesHeader { stream_id: sid });
                        }
                        self.on_pes(sid, pts, dts, start + off, start + total);
                    }
                    None => self.warn(DemuxWarning::BadPesHeader { stream_id: sid }),
                }
            }
            // PRIVATE_STREAM_1 (vendor data), PADDING_STREAM, PRIVATE_STREAM_2, 0xF0..=0xFF.
            _ => {
                self.events.push_back(DemuxEvent::Skipped {
                    stream_id: sid,
                    len: total,
                });
            }
        }
        Step::Continue
    }

    fn psm(&mut self, start: usize, total: usize) {
        match parse_psm(&self.buf[start..start + total]) {
            Some((psm, problems, stored, computed)) => {
                for w in problems {
                    self.warn(w);
                }
                if !psm.crc_ok {
                    self.warn(DemuxWarning::PsmCrcMismatch { stored, computed });
                }
                self.stream_types = psm
                    .entries
                    .iter()
                    .map(|e| (e.stream_id, e.stream_type))
                    .collect();
                self.events.push_back(DemuxEvent::Psm(psm));
            }
            None => self.warn(DemuxWarning::MalformedPsm),
        }
    }

    fn unbounded_pes(&mut self, sid: u8, eof: bool) -> Step {
        let data = &self.buf[self.pos..];
        if data.len() < 9 {
            return self.need(sid, 9, eof);
        }
        // Need the whole header to know where the payload starts. The MPEG-1 form is at
        // most 16 stuffing + 2 STD buffer + 10 timestamp bytes.
        let hdr_end = if data[6] & 0xC0 == 0x80 {
            9 + usize::from(data[8])
        } else {
            6 + 28
        };
        if data.len() < hdr_end && !eof {
            return Step::NeedMore;
        }
        let parsed = parse_pes_header(&data[..hdr_end.min(data.len())]);
        self.after_unit = None;
        self.warn(DemuxWarning::UnboundedPes { stream_id: sid });
        match parsed {
            Some((pts, dts, off, sane)) => {
                if !sane {
                    self.warn(DemuxWarning::BadPesHeader { stream_id: sid });
                }
                self.pos += off;
                if sid == PRIVATE_STREAM_1 {
                    // Private data: no pending frame, so the bytes up to the next start
                    // code are dropped.
                    self.events.push_back(DemuxEvent::Skipped {
                        stream_id: sid,
                        len: off,
                    });
                } else {
                    self.stats.pes_packets += 1;
                    self.on_pes(sid, pts, dts, self.pos, self.pos);
                }
                self.unbounded = Some(sid);
            }
            None => {
                self.warn(DemuxWarning::BadPesHeader { stream_id: sid });
                self.skip(4);
            }
        }
        Step::Continue
    }

    fn on_pes(&mut self, sid: u8, pts: Option<u64>, dts: Option<u64>, from: usize, to: usize) {
        let mut idx = self.pending.iter().position(|p| p.stream_id == sid);
        if let Some(i) = idx.filter(|&i| pts.is_some() && pts != self.pending[i].pts) {
            let p = self.pending.remove(i);
            self.emit(p);
            idx = None;
        }
        let i = match idx {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    stream_id: sid,
                    pts,
                    dts,
                    data: BytesMut::new(),
                    pes_count: 0,
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        p.data.extend_from_slice(&self.buf[from..to]);
        p.pes_count += 1;
        self.check_frame_size(sid);
    }

    fn check_frame_size(&mut self, sid: u8) {
        if let Some(i) = self
            .pending
            .iter()
            .position(|p| p.stream_id == sid && p.data.len() > self.max_frame_size)
        {
            let p = self.pending.remove(i);
            self.warn(DemuxWarning::FrameTooLarge { stream_id: sid });
            self.emit(p);
            if self.unbounded == Some(sid) {
                // Keep collecting the rest of the unbounded PES as a new frame.
                self.pending.push(Pending {
                    stream_id: sid,
                    pts: None,
                    dts: None,
                    data: BytesMut::new(),
                    pes_count: 0,
                });
            }
        }
    }

    fn emit(&mut self, p: Pending) {
        if p.data.is_empty() && p.pes_count == 0 {
            return;
        }
        self.stats.frames += 1;
        let stream_type = self.stream_type(p.stream_id);
        self.events.push_back(DemuxEvent::Frame(DemuxedFrame {
            stream_id: p.stream_id,
            stream_type,
            pts: p.pts,
            dts: p.dts,
            data: p.data.freeze(),
            pes_count: p.pes_count,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ps::mux::{write_pack_header, write_pes, write_psm, MuxConfig, PsMuxer};
    use crate::proto::ps::Frame;

    fn drain(d: &mut PsDemuxer) -> Vec<DemuxEvent> {
        std::iter::from_fn(|| d.poll()).collect()
    }

    fn frames(ev: &[DemuxEvent]) -> Vec<&DemuxedFrame> {
        ev.iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn demuxes_muxer_output_byte_by_byte() {
        let mut m = PsMuxer::new(MuxConfig::default()).unwrap();
        let mut ps = Vec::new();
        for i in 0..3u64 {
            let f = Frame {
                codec: Codec::H264,
                pts: i * 3600,
                dts: None,
                key: i == 0,
                data: Bytes::from(vec![i as u8 + 1; 70_000]),
            };
            ps.extend_from_slice(&m.mux(&f).unwrap());
        }
        let mut d = PsDemuxer::new();
        for b in &ps {
            d.feed(std::slice::from_ref(b));
        }
        d.flush();
        let ev = drain(&mut d);
        let fr = frames(&ev);
        assert_eq!(fr.len(), 3);
        assert_eq!(fr[1].pts, Some(3600));
        assert_eq!(fr[1].data.len(), 70_000);
        assert_eq!(fr[1].pes_count, 2);
        assert_eq!(fr[0].stream_type, Some(0x1B));
        assert!(!ev.iter().any(|e| matches!(e, DemuxEvent::Warning(_))));
    }

    #[test]
    fn resyncs_mid_pack_and_skips_vendor_units() {
        let mut ps = BytesMut::new();
        ps.extend_from_slice(&[0x12, 0x34, 0x00, 0x00, 0x01, 0x65, 0xAA]); // tail of a frame
        write_pack_header(&mut ps, 0, 0, 1000);
        // PSM with a program descriptor and an ES descriptor (vendor data).
        let mut body = vec![0xE0, 0xFF, 0x00, 0x06, 0x40, 0x04, 1, 2, 3, 4];
        body.extend_from_slice(&[
            0x00, 0x0A, 0x1B, 0xE0, 0x00, 0x06, 0x0A, 0x04, 0x65, 0x6E, 0x67, 0x00,
        ]);
        let mut psm = vec![0, 0, 1, 0xBC];
        psm.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        psm.extend_from_slice(&body);
        let crc = crc32_mpeg2(&psm);
        psm.extend_from_slice(&crc.to_be_bytes());
        ps.extend_from_slice(&psm);
        // HikVision-style private stream and padding.
        ps.extend_from_slice(&[0, 0, 1, 0xBD, 0x00, 0x04, 0x80, 0x00, 0x00, 0x00]);
        ps.extend_from_slice(&[0, 0, 1, 0xBE, 0x00, 0x03, 0xFF, 0xFF, 0xFF]);
        // PES without PTS.
        write_pes(&mut ps, 0xE0, None, None, &[0, 0, 0, 1, 0x41, 0x9A], 65535);
        let mut d = PsDemuxer::new();
        d.feed(&ps);
        d.flush();
        let ev = drain(&mut d);
        assert!(matches!(
            ev[0],
            DemuxEvent::Warning(DemuxWarning::Resync { skipped: 7 })
        ));
        let psm = ev
            .iter()
            .find_map(|e| match e {
                DemuxEvent::Psm(p) => Some(p),
                _ => None,
            })
            .unwrap();
        assert!(psm.crc_ok);
        assert_eq!(psm.program_descriptors_len, 6);
        assert_eq!(psm.entries[0].stream_type, 0x1B);
        assert_eq!(psm.entries[0].descriptors_len, 6);
        let fr = frames(&ev);
        assert_eq!(fr.len(), 1);
        assert_eq!(fr[0].pts, None);
        assert_eq!(&fr[0].data[..], &[0, 0, 0, 1, 0x41, 0x9A]);
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, DemuxEvent::Skipped { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn reports_pes_length_mismatch_and_bad_crc() {
        let mut ps = BytesMut::new();
        write_psm(&mut ps, 0, &[(0x1B, 0xE0)]);
        let n = ps.len();
        ps[n - 1] ^= 1;
        write_pes(&mut ps, 0xE0, Some(0), None, &[1, 2, 3, 4], 65535);
        let l = ps.len() - 13; // low byte of PES_packet_length
        ps[l] -= 2; // declare 2 bytes fewer than present
        write_pes(&mut ps, 0xE0, Some(3600), None, &[5], 65535);
        let mut d = PsDemuxer::new();
        d.feed(&ps);
        d.flush();
        let ev = drain(&mut d);
        assert!(ev
            .iter()
            .any(|e| matches!(e, DemuxEvent::Warning(DemuxWarning::PsmCrcMismatch { .. }))));
        assert!(ev.iter().any(|e| matches!(
            e,
            DemuxEvent::Warning(DemuxWarning::LengthMismatch { stream_id: 0xE0 })
        )));
        let fr = frames(&ev);
        assert_eq!(fr.last().unwrap().pts, Some(3600));
    }

    #[test]
    fn unbounded_pes_runs_to_next_start_code() {
        let mut ps = BytesMut::new();
        ps.extend_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
        ps.extend_from_slice(&crate::proto::ps::encode_timestamp(2, 90));
        ps.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x99]);
        write_pack_header(&mut ps, 100, 0, 1);
        let mut d = PsDemuxer::new();
        for c in ps.chunks(3) {
            d.feed(c);
        }
        d.flush();
        let ev = drain(&mut d);
        let fr = frames(&ev);
        assert_eq!(fr.len(), 1);
        assert_eq!(fr[0].pts, Some(90));
        assert_eq!(&fr[0].data[..], &[0, 0, 0, 1, 0x65, 0x88, 0x99]);
    }

    #[test]
    fn truncated_unit_is_reported_on_flush() {
        let mut ps = BytesMut::new();
        write_pes(&mut ps, 0xC0, Some(0), None, &[7; 100], 65535);
        let mut d = PsDemuxer::new();
        d.feed(&ps[..50]);
        d.flush();
        let ev = drain(&mut d);
        assert_eq!(
            ev,
            vec![DemuxEvent::Warning(DemuxWarning::Truncated {
                stream_id: 0xC0,
                missing: ps.len() - 50
            })]
        );
    }
}
