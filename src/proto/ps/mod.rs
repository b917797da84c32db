//! MPEG-2 Program Stream (ISO/IEC 13818-1 §2.5) as carried by GB/T 28181 Annex C
//! ("基于RTP的PS封装"): shared constants, the frame type, PTS/SCR bit packing and
//! the CRC-32/MPEG-2 used by the program stream map.
//!
//! Drive it through the submodules: [`annexb`] turns a raw H.264/H.265 byte stream
//! into access units, [`mux::PsMuxer`] turns frames into PS bytes,
//! [`demux::PsDemuxer`] turns PS bytes back into frames, and
//! [`validate::StreamValidator`] judges a received RTP/PS stream.

pub mod annexb;
pub mod demux;
pub mod mux;
pub mod validate;

#[cfg(test)]
mod stream_tests;

use bytes::Bytes;

/// `pack_start_code` (0x000001BA) stream id byte.
pub const PACK_HEADER: u8 = 0xBA;
/// `system_header_start_code` (0x000001BB) stream id byte.
pub const SYSTEM_HEADER: u8 = 0xBB;
/// `program_stream_map` stream id.
pub const PROGRAM_STREAM_MAP: u8 = 0xBC;
/// `private_stream_1` (HikVision and others put vendor data here).
pub const PRIVATE_STREAM_1: u8 = 0xBD;
/// `padding_stream`.
pub const PADDING_STREAM: u8 = 0xBE;
/// `private_stream_2`.
pub const PRIVATE_STREAM_2: u8 = 0xBF;
/// `MPEG_program_end_code` (0x000001B9) stream id byte.
pub const PROGRAM_END: u8 = 0xB9;
/// Stream id GB/T 28181 Annex C uses for the (single) video elementary stream.
pub const VIDEO_STREAM_ID: u8 = 0xE0;
/// Stream id GB/T 28181 Annex C uses for the (single) audio elementary stream.
pub const AUDIO_STREAM_ID: u8 = 0xC0;
/// PTS/DTS/SCR base are 33-bit counters of a 90 kHz clock.
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
/// Clock of PTS, DTS, SCR base and of the RTP timestamps of payload type 96 (PS/90000).
pub const CLOCK_HZ: u32 = 90_000;

/// `stream_type` values of the program stream map used by GB/T 28181 Annex C.
pub mod stream_type {
    /// MPEG-4 Part 2 video.
    pub const MPEG4_VIDEO: u8 = 0x10;
    /// H.264 / AVC video.
    pub const H264: u8 = 0x1B;
    /// H.265 / HEVC video.
    pub const H265: u8 = 0x24;
    /// SVAC video.
    pub const SVAC_VIDEO: u8 = 0x80;
    /// AAC audio (ADTS).
    pub const AAC: u8 = 0x0F;
    /// G.711 A-law audio. GB/T 28181-2016 Annex C lists a single "G.711: 0x90"; the
    /// split 0x90 = A-law / 0x91 = µ-law used here is what deployed muxers write, and
    /// the validator only compares against the types it is told to expect.
    pub const G711A: u8 = 0x90;
    /// G.711 µ-law audio (see [`G711A`]).
    pub const G711U: u8 = 0x91;
    /// G.722.1 audio.
    pub const G722_1: u8 = 0x92;
    /// G.723.1 audio.
    pub const G723_1: u8 = 0x93;
    /// G.729 audio.
    pub const G729: u8 = 0x99;
    /// SVAC audio.
    pub const SVAC_AUDIO: u8 = 0x9B;
}

/// Whether a stream id names a video elementary stream (0xE0..=0xEF).
pub fn is_video_stream_id(id: u8) -> bool {
    (0xE0..=0xEF).contains(&id)
}

/// Whether a stream id names an audio elementary stream (0xC0..=0xDF).
pub fn is_audio_stream_id(id: u8) -> bool {
    (0xC0..=0xDF).contains(&id)
}

/// Whether a PSM stream type is one of the video types GB/T 28181 lists.
pub fn is_video_stream_type(t: u8) -> bool {
    matches!(
        t,
        stream_type::MPEG4_VIDEO | stream_type::H264 | stream_type::H265 | stream_type::SVAC_VIDEO
    )
}

/// Whether a PSM stream type is one of the audio types GB/T 28181 lists.
pub fn is_audio_stream_type(t: u8) -> bool {
    matches!(
        t,
        stream_type::AAC
            | stream_type::G711A
            | stream_type::G711U
            | stream_type::G722_1
            | stream_type::G723_1
            | stream_type::G729
            | stream_type::SVAC_AUDIO
    )
}

/// Codecs the muxer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 Annex B byte stream.
    H264,
    /// H.265 Annex B byte stream.
    H265,
    /// G.711 A-law samples.
    G711A,
    /// G.711 µ-law samples.
    G711U,
}

impl Codec {
    /// PSM `stream_type` for this codec.
    pub fn stream_type(self) -> u8 {
        match self {
            Codec::H264 => stream_type::H264,
            Codec::H265 => stream_type::H265,
            Codec::G711A => stream_type::G711A,
            Codec::G711U => stream_type::G711U,
        }
    }

    /// PES stream id GB/T 28181 uses for this codec (0xE0 video, 0xC0 audio).
    pub fn stream_id(self) -> u8 {
        if self.is_video() {
            VIDEO_STREAM_ID
        } else {
            AUDIO_STREAM_ID
        }
    }

    /// True for H.264 and H.265.
    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
    }

    /// Codec for a PSM stream type, if it is one this module handles.
    pub fn from_stream_type(t: u8) -> Option<Codec> {
        match t {
            stream_type::H264 => Some(Codec::H264),
            stream_type::H265 => Some(Codec::H265),
            stream_type::G711A => Some(Codec::G711A),
            stream_type::G711U => Some(Codec::G711U),
            _ => None,
        }
    }
}

/// One access unit (video picture or audio frame) going into the muxer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Codec of `data`.
    pub codec: Codec,
    /// Presentation time stamp, 90 kHz (only the low 33 bits are written).
    pub pts: u64,
    /// Decoding time stamp, 90 kHz; written only when present and different from `pts`.
    pub dts: Option<u64>,
    /// Key frame (IDR for H.264, IRAP for H.265). Triggers system header and PSM.
    pub key: bool,
    /// Annex B bytes for video, raw samples for audio.
    pub data: Bytes,
}

/// Packs a 33-bit PTS or DTS into the 5-byte PES form
/// `prefix(4) ts[32..30] 1 ts[29..15] 1 ts[14..0] 1` (ISO/IEC 13818-1 §2.4.3.7).
/// `prefix` is 0b0010 for a lone PTS, 0b0011 for a PTS followed by a DTS and 0b0001 for the DTS.
pub fn encode_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & TIMESTAMP_MASK;
    [
        ((prefix & 0x0F) << 4) | (((ts >> 29) as u8) & 0x0E) | 0x01,
        (ts >> 22) as u8,
        (((ts >> 14) as u8) & 0xFE) | 0x01,
        (ts >> 7) as u8,
        (((ts << 1) as u8) & 0xFE) | 0x01,
    ]
}

/// Unpacks the 5-byte PES timestamp form; marker bits and prefix are not checked.
/// Returns `None` when fewer than 5 bytes are given.
pub fn decode_timestamp(b: &[u8]) -> Option<u64> {
    if b.len() < 5 {
        return None;
    }
    Some(
        (u64::from((b[0] >> 1) & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1),
    )
}

const fn crc32_mpeg2_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32_MPEG2: [u32; 256] = crc32_mpeg2_table();

/// CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor),
/// the CRC of ISO/IEC 13818-1 Annex A used for `CRC_32` of the program stream map.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ CRC32_MPEG2[(((crc >> 24) as u8) ^ b) as usize]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_mpeg2_check_value() {
        // Catalogue check value of CRC-32/MPEG-2 over "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn pts_3600_bytes() {
        // 3600 = 0b1110_0001_0000
        // ts[32..30] = 0          -> 0010 000 1            = 0x21
        // ts[29..22] = 0          -> 0x00
        // ts[21..15] = 0          -> 0000000 1             = 0x01
        // ts[14..7]  = 0b11100    -> 0x1C
        // ts[6..0]   = 0b0010000  -> 0010000 1             = 0x21
        assert_eq!(
            encode_timestamp(0b0010, 3600),
            [0x21, 0x00, 0x01, 0x1C, 0x21]
        );
        assert_eq!(
            decode_timestamp(&[0x21, 0x00, 0x01, 0x1C, 0x21]),
            Some(3600)
        );
    }

    #[test]
    fn pts_33_bit_bytes() {
        // 0x1_2345_6789 = 1 0010 0011 0100 0101 0110 0111 1000 1001 (33 bits)
        // ts[32..30] = 100 (4)                 -> 0011 100 1  = 0x39 (PTS+DTS prefix 0011)
        // ts[29..22] = 1000 1101 (0x8D)        -> 0x8D
        // ts[21..15] = 000 1010 (0x0A)         -> 0001010 1   = 0x15
        // ts[14..7]  = 1100 1111 (0xCF)        -> 0xCF
        // ts[6..0]   = 000 1001 (0x09)         -> 0001001 1   = 0x13
        let b = encode_timestamp(0b0011, 0x1_2345_6789);
        assert_eq!(b, [0x39, 0x8D, 0x15, 0xCF, 0x13]);
        assert_eq!(decode_timestamp(&b), Some(0x1_2345_6789));
    }

    #[test]
    fn timestamp_wraps_at_33_bits() {
        let b = encode_timestamp(0b0010, (1 << 33) + 5);
        assert_eq!(decode_timestamp(&b), Some(5));
    }
}
