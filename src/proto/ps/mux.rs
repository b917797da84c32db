//! MPEG-PS muxer following GB/T 28181 Annex C (C.2, PS封装) as cameras practise it:
//! every access unit starts with a pack header (ISO/IEC 13818-1 §2.5.3.3, MPEG-2 form);
//! video key frames add a system header (§2.5.3.5) and a program stream map (§2.5.4)
//! before the PES packets (§2.4.3.6) that carry the frame, split at the 16-bit
//! `PES_packet_length` limit.
//!
//! Drive it with [`PsMuxer::new`] and [`PsMuxer::mux`] once per [`Frame`]; the result is
//! one PS "frame" ready for `crate::proto::rtp::Packetizer`. [`MuxFaults`] produces
//! deliberately non-conforming output for negative tests.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::ps::{
    crc32_mpeg2, encode_timestamp, Codec, Frame, PACK_HEADER, PROGRAM_STREAM_MAP, SYSTEM_HEADER,
    TIMESTAMP_MASK,
};

/// Default `program_mux_rate` in units of 50 bytes/s (20 000 = 8 Mbit/s).
pub const DEFAULT_MUX_RATE: u32 = 20_000;
/// Largest `PES_packet_length` (the field is 16 bits).
pub const MAX_PES_PACKET_LENGTH: usize = 65_535;

/// Errors from the muxer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// The frame's codec was not declared in [`MuxConfig`].
    #[error("codec {0:?} is not declared in the mux configuration")]
    UndeclaredCodec(Codec),
    /// The configuration puts an audio codec in the video slot or the reverse.
    #[error("codec {0:?} is in the wrong slot of the mux configuration")]
    WrongSlot(Codec),
    /// The frame has no payload.
    #[error("frame has no payload")]
    EmptyFrame,
    /// `program_mux_rate` must fit 22 bits and be non-zero.
    #[error("program_mux_rate {0} is outside 1..=0x3FFFFF")]
    MuxRate(u32),
    /// `max_pes_packet_length` must leave room for a header and payload.
    #[error("max_pes_packet_length {0} is outside 32..=65535")]
    PesLength(usize),
}

/// Deliberate deviations for negative tests. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MuxFaults {
    /// Never write the program stream map.
    pub omit_psm: bool,
    /// Never write the system header.
    pub omit_system_header: bool,
    /// Write this `stream_type` for the video entry of the PSM instead of the real one.
    pub psm_video_stream_type: Option<u8>,
    /// Write a wrong `CRC_32` in the PSM.
    pub corrupt_psm_crc: bool,
    /// Write the PSM `CRC_32` least significant byte first.
    pub psm_crc_byte_swapped: bool,
    /// Write the PSM `CRC_32` as zero.
    pub psm_crc_zero: bool,
    /// Write the PSM under the system header start code 0x000001BB.
    pub psm_under_system_header: bool,
    /// Give the video entry of the PSM a 4-byte descriptor loop holding an ISO 639
    /// language descriptor that declares 5 bytes after its header.
    pub psm_descriptor_overrun: bool,
}

/// Muxer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxConfig {
    /// Video codec (H.264/H.265) carried on stream id 0xE0, if any.
    pub video: Option<Codec>,
    /// Audio codec (G.711A/G.711U) carried on stream id 0xC0, if any.
    pub audio: Option<Codec>,
    /// `program_mux_rate`, 22 bits, units of 50 bytes/s; also used as `rate_bound`.
    pub program_mux_rate: u32,
    /// Largest `PES_packet_length` written; payloads are split to respect it.
    pub max_pes_packet_length: usize,
    /// Fault injection.
    pub faults: MuxFaults,
}

impl Default for MuxConfig {
    fn default() -> Self {
        MuxConfig {
            video: Some(Codec::H264),
            audio: None,
            program_mux_rate: DEFAULT_MUX_RATE,
            max_pes_packet_length: MAX_PES_PACKET_LENGTH,
            faults: MuxFaults::default(),
        }
    }
}

impl MuxConfig {
    /// Video-only configuration.
    pub fn video(codec: Codec) -> Self {
        MuxConfig {
            video: Some(codec),
            ..MuxConfig::default()
        }
    }
}

/// Stateful PS muxer (remembers whether the maps went out yet).
#[derive(Debug, Clone)]
pub struct PsMuxer {
    cfg: MuxConfig,
    maps_written: bool,
}

impl PsMuxer {
    /// Checks the configuration and builds a muxer.
    pub fn new(cfg: MuxConfig) -> Result<Self, MuxError> {
        if let Some(v) = cfg.video.filter(|c| !c.is_video()) {
            return Err(MuxError::WrongSlot(v));
        }
        if let Some(a) = cfg.audio.filter(|c| c.is_video()) {
            return Err(MuxError::WrongSlot(a));
        }
        if cfg.program_mux_rate == 0 || cfg.program_mux_rate > 0x3F_FFFF {
            return Err(MuxError::MuxRate(cfg.program_mux_rate));
        }
        if !(32..=MAX_PES_PACKET_LENGTH).contains(&cfg.max_pes_packet_length) {
            return Err(MuxError::PesLength(cfg.max_pes_packet_length));
        }
        Ok(PsMuxer {
            cfg,
            maps_written: false,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MuxConfig {
        &self.cfg
    }

    /// Muxes one access unit into PS bytes.
    pub fn mux(&mut self, frame: &Frame) -> Result<Bytes, MuxError> {
        let mut out = BytesMut::with_capacity(frame.data.len() + 128);
        self.mux_into(frame, &mut out)?;
        Ok(out.freeze())
    }

    /// Muxes one access unit, appending to `out`.
    pub fn mux_into(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        let declared = if frame.codec.is_video() {
            self.cfg.video
        } else {
            self.cfg.audio
        };
        if declared != Some(frame.codec) {
            return Err(MuxError::UndeclaredCodec(frame.codec));
        }
        if frame.data.is_empty() {
            return Err(MuxError::EmptyFrame);
        }
        let dts = frame
            .dts
            .filter(|&d| d & TIMESTAMP_MASK != frame.pts & TIMESTAMP_MASK);
        // "SCR from the PTS" is what cameras do; ISO/IEC 13818-1 §2.5.3.4 needs the SCR
        // not to be later than the decoding time, so with a distinct DTS the DTS is used.
        write_pack_header(out, dts.unwrap_or(frame.pts), 0, self.cfg.program_mux_rate);
        // Video key frames carry system header + PSM; so does the very first frame
        // whatever it is, so that a receiver learns the stream types before any payload
        // (an audio-only stream has no key frame at all).
        let needs_maps = (frame.codec.is_video() && frame.key) || !self.maps_written;
        if needs_maps {
            self.maps_written = true;
            if !self.cfg.faults.omit_system_header {
                self.write_system_header(out);
            }
            if !self.cfg.faults.omit_psm {
                self.write_psm(out);
            }
        }
        write_pes(
            out,
            frame.codec.stream_id(),
            Some(frame.pts),
            dts,
            &frame.data,
            self.cfg.max_pes_packet_length,
        );
        Ok(())
    }

    fn streams(&self) -> impl Iterator<Item = Codec> + '_ {
        self.cfg.video.iter().chain(self.cfg.audio.iter()).copied()
    }

    fn write_system_header(&self, out: &mut BytesMut) {
        let audio_bound = u8::from(self.cfg.audio.is_some());
        let video_bound = u8::from(self.cfg.video.is_some());
        let streams: Vec<(u8, bool, u16)> = self
            .streams()
            .map(|c| {
                if c.is_video() {
                    // P-STD buffer bound: 1024-byte units, 400 KiB.
                    (c.stream_id(), true, 400)
                } else {
                    // 128-byte units, 4 KiB.
                    (c.stream_id(), false, 32)
                }
            })
            .collect();
        write_system_header(
            out,
            self.cfg.program_mux_rate,
            audio_bound,
            video_bound,
            &streams,
        );
    }

    fn write_psm(&self, out: &mut BytesMut) {
        let entries: Vec<(u8, u8)> = self
            .streams()
            .map(|c| {
                let t = match self.cfg.faults.psm_video_stream_type {
                    Some(t) if c.is_video() => t,
                    _ => c.stream_type(),
                };
                (t, c.stream_id())
            })
            .collect();
        let start = out.len();
        let f = &self.cfg.faults;
        if f.psm_descriptor_overrun {
            write_psm_with_video_descriptors(out, &entries, &[0x0A, 0x05, b'c', b'h']);
        } else {
            write_psm(out, 0, &entries);
        }
        let n = out.len();
        if f.psm_under_system_header {
            // The CRC covers the start code: such a muxer computes it over what it wrote.
            out[start + 3] = SYSTEM_HEADER;
            let crc = crc32_mpeg2(&out[start..n - 4]);
            out[n - 4..].copy_from_slice(&crc.to_be_bytes());
        }
        if f.corrupt_psm_crc {
            out[n - 1] ^= 0xFF;
        }
        if f.psm_crc_byte_swapped {
            out[n - 4..].reverse();
        }
        if f.psm_crc_zero {
            out[n - 4..].fill(0);
        }
    }
}

/// Writes a 14-byte MPEG-2 pack header with `pack_stuffing_length` 0
/// (ISO/IEC 13818-1 Table 2-38).
pub fn write_pack_header(out: &mut BytesMut, scr_base: u64, scr_ext: u16, mux_rate: u32) {
    let scr = scr_base & TIMESTAMP_MASK;
    let ext = scr_ext & 0x1FF;
    out.put_slice(&[0, 0, 1, PACK_HEADER]);
    out.put_u8(0x40 | (((scr >> 27) as u8) & 0x38) | 0x04 | (((scr >> 28) as u8) & 0x03));
    out.put_u8((scr >> 20) as u8);
    out.put_u8((((scr >> 12) as u8) & 0xF8) | 0x04 | (((scr >> 13) as u8) & 0x03));
    out.put_u8((scr >> 5) as u8);
    out.put_u8((((scr << 3) as u8) & 0xF8) | 0x04 | (((ext >> 7) as u8) & 0x03));
    out.put_u8((((ext << 1) as u8) & 0xFE) | 0x01);
    out.put_u8((mux_rate >> 14) as u8);
    out.put_u8((mux_rate >> 6) as u8);
    out.put_u8((((mux_rate << 2) as u8) & 0xFC) | 0x03);
    // reserved '11111', pack_stuffing_length 0
    out.put_u8(0xF8);
}

/// Writes a system header (ISO/IEC 13818-1 Table 2-40). `streams` holds
/// (stream_id, P-STD_buffer_bound_scale, P-STD_buffer_size_bound).
pub fn write_system_header(
    out: &mut BytesMut,
    rate_bound: u32,
    audio_bound: u8,
    video_bound: u8,
    streams: &[(u8, bool, u16)],
) {
    let len = 6 + 3 * streams.len();
    out.put_slice(&[0, 0, 1, SYSTEM_HEADER]);
    out.put_u16(len as u16);
    let rb = rate_bound & 0x3F_FFFF;
    out.put_u8(0x80 | (rb >> 15) as u8);
    out.put_u8((rb >> 7) as u8);
    out.put_u8((((rb << 1) as u8) & 0xFE) | 0x01);
    // audio_bound(6) fixed_flag(1)=0 CSPS_flag(1)=0
    out.put_u8((audio_bound & 0x3F) << 2);
    // system_audio_lock_flag=1 system_video_lock_flag=1 marker=1 video_bound(5)
    out.put_u8(0xE0 | (video_bound & 0x1F));
    // packet_rate_restriction_flag=0 reserved '1111111'
    out.put_u8(0x7F);
    for &(id, scale, size) in streams {
        out.put_u8(id);
        out.put_u8(0xC0 | (u8::from(scale) << 5) | ((size >> 8) as u8 & 0x1F));
        out.put_u8(size as u8);
    }
}

/// Writes a program stream map (ISO/IEC 13818-1 Table 2-41) without descriptors.
/// `entries` holds (stream_type, elementary_stream_id).
pub fn write_psm(out: &mut BytesMut, version: u8, entries: &[(u8, u8)]) {
    let es_map_len = 4 * entries.len();
    // program_stream_map_length counts every byte after itself, CRC_32 included
    // (ISO/IEC 13818-1 §2.5.4.2): 2 (flags) + 2 (info length) + 2 (es map length)
    // + es map + 4 (CRC).
    let psm_len = 6 + es_map_len + 4;
    let start = out.len();
    out.put_slice(&[0, 0, 1, PROGRAM_STREAM_MAP]);
    out.put_u16(psm_len as u16);
    // current_next_indicator=1 reserved '11' program_stream_map_version(5)
    out.put_u8(0xE0 | (version & 0x1F));
    // reserved '1111111' marker_bit=1
    out.put_u8(0xFF);
    out.put_u16(0); // program_stream_info_length
    out.put_u16(es_map_len as u16);
    for &(t, id) in entries {
        out.put_u8(t);
        out.put_u8(id);
        out.put_u16(0); // elementary_stream_info_length
    }
    let crc = crc32_mpeg2(&out[start..]);
    out.put_u32(crc);
}

/// Writes a PSM (version 0) whose video entries carry `descriptors` as their
/// elementary-stream descriptor loop, bytes as given (a fault may make them
/// overrun the loop).
fn write_psm_with_video_descriptors(out: &mut BytesMut, entries: &[(u8, u8)], descriptors: &[u8]) {
    let info = |id: u8| {
        if crate::proto::ps::is_video_stream_id(id) {
            descriptors
        } else {
            &[][..]
        }
    };
    let es_map_len: usize = entries.iter().map(|&(_, id)| 4 + info(id).len()).sum();
    let start = out.len();
    out.put_slice(&[0, 0, 1, PROGRAM_STREAM_MAP]);
    out.put_u16((6 + es_map_len + 4) as u16);
    out.put_u8(0xE0);
    out.put_u8(0xFF);
    out.put_u16(0);
    out.put_u16(es_map_len as u16);
    for &(t, id) in entries {
        out.put_u8(t);
        out.put_u8(id);
        out.put_u16(info(id).len() as u16);
        out.put_slice(info(id));
    }
    let crc = crc32_mpeg2(&out[start..]);
    out.put_u32(crc);
}

/// Writes `payload` as one or more PES packets of `stream_id`, each with
/// `PES_packet_length` no larger than `max_pes_packet_length`. The first carries PTS
/// (and DTS when given) and `data_alignment_indicator`; continuations carry neither.
pub fn write_pes(
    out: &mut BytesMut,
    stream_id: u8,
    pts: Option<u64>,
    dts: Option<u64>,
    payload: &[u8],
    max_pes_packet_length: usize,
) {
    let max = max_pes_packet_length.clamp(32, MAX_PES_PACKET_LENGTH);
    let mut rest = payload;
    let mut first = true;
    while first || !rest.is_empty() {
        let (pts, dts) = if first {
            (pts, pts.and(dts))
        } else {
            (None, None)
        };
        let hdr_data_len = match (pts, dts) {
            (Some(_), Some(_)) => 10,
            (Some(_), None) => 5,
            _ => 0,
        };
        let room = max - 3 - hdr_data_len;
        let n = rest.len().min(room);
        out.put_slice(&[0, 0, 1, stream_id]);
        out.put_u16((3 + hdr_data_len + n) as u16);
        // '10' scrambling=00 priority=0 data_alignment_indicator copyright=0 original=0
        out.put_u8(if first { 0x84 } else { 0x80 });
        match (pts, dts) {
            (Some(p), Some(d)) => {
                out.put_u8(0xC0);
                out.put_u8(10);
                out.put_slice(&encode_timestamp(0b0011, p));
                out.put_slice(&encode_timestamp(0b0001, d));
            }
            (Some(p), None) => {
                out.put_u8(0x80);
                out.put_u8(5);
                out.put_slice(&encode_timestamp(0b0010, p));
            }
            _ => {
                out.put_u8(0x00);
                out.put_u8(0);
            }
        }
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_header_bytes_scr_zero() {
        let mut out = BytesMut::new();
        write_pack_header(&mut out, 0, 0, 20_000);
        // SCR 0: 01 000 1 00 | 00000000 | 00000 1 00 | 00000000 | 00000 1 00 | 0000000 1
        // mux_rate 20000 = 0b00_0000_0100_1110_0010_0000 (22 bits):
        //   bits 21..14 = 0000_0001 = 0x01, bits 13..6 = 0011_1000 = 0x38,
        //   bits 5..0 = 10_0000 -> 100000 11 = 0x83
        // reserved 11111 + stuffing 000 = 0xF8
        assert_eq!(
            &out[..],
            &[0x00, 0x00, 0x01, 0xBA, 0x44, 0x00, 0x04, 0x00, 0x04, 0x01, 0x01, 0x38, 0x83, 0xF8]
        );
    }

    #[test]
    fn pack_header_bytes_scr_3600() {
        let mut out = BytesMut::new();
        write_pack_header(&mut out, 3600, 0, 1);
        // SCR 3600 = 0b1110_0001_0000:
        //   byte4: 01 000 1 00             = 0x44
        //   byte5: scr[27..20] = 0         = 0x00
        //   byte6: scr[19..15]=0 1 scr[14..13]=00 = 0x04
        //   byte7: scr[12..5] = 0b0111_0000 = 0x70
        //   byte8: scr[4..0]=10000 1 ext[8..7]=00 = 1000_0100 = 0x84
        //   byte9: ext[6..0]=0 1            = 0x01
        // mux_rate 1: 0x00 0x00 000001 11 = 0x07
        assert_eq!(
            &out[..],
            &[0, 0, 1, 0xBA, 0x44, 0x00, 0x04, 0x70, 0x84, 0x01, 0x00, 0x00, 0x07, 0xF8]
        );
    }

    #[test]
    fn pes_header_bytes_pts_only() {
        let mut out = BytesMut::new();
        write_pes(&mut out, 0xE0, Some(3600), None, &[0xAB, 0xCD], 65535);
        // length = 3 + 5 + 2 = 10; flags 0x84 (alignment) 0x80 (PTS only); hdr len 5
        assert_eq!(
            &out[..],
            &[
                0, 0, 1, 0xE0, 0x00, 0x0A, 0x84, 0x80, 0x05, 0x21, 0x00, 0x01, 0x1C, 0x21, 0xAB,
                0xCD
            ]
        );
    }

    #[test]
    fn pes_header_bytes_pts_dts() {
        let mut out = BytesMut::new();
        write_pes(&mut out, 0xE0, Some(7200), Some(3600), &[0x01], 65535);
        // 7200 = 0b1_1100_0010_0000: [14..7] = 0b111000 = 0x38, [6..0] = 0b0100000 -> 0x41
        // PTS prefix 0011 -> 0x31; DTS(3600) prefix 0001 -> 0x11 ...
        assert_eq!(
            &out[..],
            &[
                0, 0, 1, 0xE0, 0x00, 0x0E, 0x84, 0xC0, 0x0A, 0x31, 0x00, 0x01, 0x38, 0x41, 0x11,
                0x00, 0x01, 0x1C, 0x21, 0x01
            ]
        );
    }

    #[test]
    fn pes_is_split_at_length_limit() {
        let payload = vec![0x55u8; 200_000];
        let mut out = BytesMut::new();
        write_pes(&mut out, 0xE0, Some(0), None, &payload, 65535);
        // first PES carries 65535 - 8 = 65527 bytes, the rest 65532 each
        let mut pos = 0;
        let mut sizes = Vec::new();
        while pos < out.len() {
            let len = u16::from_be_bytes([out[pos + 4], out[pos + 5]]) as usize;
            let hdr = out[pos + 8] as usize;
            sizes.push(len - 3 - hdr);
            pos += 6 + len;
        }
        assert_eq!(sizes, vec![65527, 65532, 65532, 3409]);
        assert_eq!(sizes.iter().sum::<usize>(), 200_000);
    }

    #[test]
    fn psm_bytes_and_crc() {
        let mut out = BytesMut::new();
        write_psm(&mut out, 0, &[(0x1B, 0xE0), (0x90, 0xC0)]);
        assert_eq!(
            &out[..out.len() - 4],
            &[
                0, 0, 1, 0xBC, 0x00, 0x12, 0xE0, 0xFF, 0x00, 0x00, 0x00, 0x08, 0x1B, 0xE0, 0x00,
                0x00, 0x90, 0xC0, 0x00, 0x00
            ]
        );
        // Running the CRC over the CRC itself leaves a zero remainder.
        assert_eq!(crc32_mpeg2(&out), 0);
    }

    #[test]
    fn key_frame_layout() {
        let mut m = PsMuxer::new(MuxConfig::default()).unwrap();
        let key = Frame {
            codec: Codec::H264,
            pts: 0,
            dts: None,
            key: true,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88]),
        };
        let b = m.mux(&key).unwrap();
        assert_eq!(&b[..4], &[0, 0, 1, 0xBA]);
        assert_eq!(&b[14..18], &[0, 0, 1, 0xBB]);
        let sys_len = u16::from_be_bytes([b[18], b[19]]) as usize;
        let psm = 20 + sys_len;
        assert_eq!(&b[psm..psm + 4], &[0, 0, 1, 0xBC]);
        let non_key = Frame { key: false, ..key };
        let b = m.mux(&non_key).unwrap();
        assert_eq!(&b[14..18], &[0, 0, 1, 0xE0]);
    }

    #[test]
    fn rejects_bad_config_and_frames() {
        assert_eq!(
            PsMuxer::new(MuxConfig {
                video: Some(Codec::G711A),
                ..MuxConfig::default()
            })
            .unwrap_err(),
            MuxError::WrongSlot(Codec::G711A)
        );
        let mut m = PsMuxer::new(MuxConfig::default()).unwrap();
        let f = Frame {
            codec: Codec::G711U,
            pts: 0,
            dts: None,
            key: false,
            data: Bytes::from_static(b"x"),
        };
        assert_eq!(
            m.mux(&f).unwrap_err(),
            MuxError::UndeclaredCodec(Codec::G711U)
        );
    }
}
