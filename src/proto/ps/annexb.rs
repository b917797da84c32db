//! Annex B byte-stream handling for H.264 (ITU-T H.264 Annex B, §7.4.1.2.3 access unit
//! order) and H.265 (ITU-T H.265 Annex B, §7.4.2.4.4): NAL splitting, NAL type
//! classification, and grouping NAL units into access units, so that a raw `.h264` /
//! `.h265` elementary stream can be fed to the PS muxer.
//!
//! Drive it with [`split_access_units`] (whole buffer) or [`AccessUnitSplitter`]
//! (one NAL at a time), then [`frames_from_annexb`] to get muxer input with 90 kHz PTS.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::ps::{Codec, Frame};

/// Video codecs whose Annex B streams this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

impl VideoCodec {
    /// The PS-level codec.
    pub fn codec(self) -> Codec {
        match self {
            VideoCodec::H264 => Codec::H264,
            VideoCodec::H265 => Codec::H265,
        }
    }

    /// The video codec for a PS-level codec, `None` for audio.
    pub fn from_codec(c: Codec) -> Option<VideoCodec> {
        match c {
            Codec::H264 => Some(VideoCodec::H264),
            Codec::H265 => Some(VideoCodec::H265),
            _ => None,
        }
    }

    /// NAL unit type of a NAL (header included, start code excluded); `None` if empty
    /// (or, for H.265, shorter than its 2-byte header).
    pub fn nal_type(self, nal: &[u8]) -> Option<u8> {
        match self {
            VideoCodec::H264 => nal.first().map(|b| b & 0x1F),
            VideoCodec::H265 if nal.len() >= 2 => Some((nal[0] >> 1) & 0x3F),
            VideoCodec::H265 => None,
        }
    }

    fn header_len(self) -> usize {
        match self {
            VideoCodec::H264 => 1,
            VideoCodec::H265 => 2,
        }
    }

    /// Whether the NAL type carries slice data.
    pub fn is_vcl(self, t: u8) -> bool {
        match self {
            VideoCodec::H264 => (1..=5).contains(&t),
            VideoCodec::H265 => t <= 31,
        }
    }

    /// Whether the NAL type makes the picture a random access point:
    /// IDR (5) for H.264, IRAP (BLA/IDR/CRA, 16..=23) for H.265.
    pub fn is_key(self, t: u8) -> bool {
        match self {
            VideoCodec::H264 => t == 5,
            VideoCodec::H265 => (16..=23).contains(&t),
        }
    }

    /// Non-VCL NAL types that, when they follow a VCL NAL, open a new access unit.
    fn opens_access_unit(self, t: u8) -> bool {
        match self {
            // H.264 §7.4.1.2.3: AUD, SPS, PPS, SEI, 14..=18.
            VideoCodec::H264 => matches!(t, 6..=9 | 14..=18),
            // H.265 §7.4.2.4.4: VPS, SPS, PPS, AUD, prefix SEI, 41..=44, 48..=55.
            VideoCodec::H265 => matches!(t, 32..=35 | 39 | 41..=44 | 48..=55),
        }
    }
}

/// H.264 NAL unit types used here.
pub mod h264 {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// H.265 NAL unit types used here.
pub mod h265 {
    /// Trailing picture, non-reference.
    pub const TRAIL_N: u8 = 0;
    /// Trailing picture, reference.
    pub const TRAIL_R: u8 = 1;
    /// IDR with RADL pictures.
    pub const IDR_W_RADL: u8 = 19;
    /// IDR without leading pictures.
    pub const IDR_N_LP: u8 = 20;
    /// Clean random access.
    pub const CRA: u8 = 21;
    /// Video parameter set.
    pub const VPS: u8 = 32;
    /// Sequence parameter set.
    pub const SPS: u8 = 33;
    /// Picture parameter set.
    pub const PPS: u8 = 34;
    /// Access unit delimiter.
    pub const AUD: u8 = 35;
}

/// Iterator over the NAL units of an Annex B buffer (start codes and trailing zero
/// bytes stripped). Bytes before the first start code are ignored.
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Iterates the NAL units of an Annex B byte stream.
pub fn nal_units(data: &[u8]) -> NalUnits<'_> {
    let pos = find_start_code(data, 0).map_or(data.len(), |(_, after)| after);
    NalUnits { data, pos }
}

/// Finds the next `00 00 01` at or after `from`; returns (index of the first 00, index after 01).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let (end, next) = match find_start_code(self.data, start) {
                Some((sc, after)) => (sc, after),
                None => (self.data.len(), self.data.len()),
            };
            self.pos = next;
            let mut nal = &self.data[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
        None
    }
}

/// What an access unit contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnitInfo {
    /// Contains an IDR (H.264) or IRAP (H.265) slice.
    pub key: bool,
    /// Contains a VPS (H.265 only).
    pub has_vps: bool,
    /// Contains an SPS.
    pub has_sps: bool,
    /// Contains a PPS.
    pub has_pps: bool,
    /// Number of VCL NAL units.
    pub vcl_count: usize,
    /// NAL types in order.
    pub nal_types: Vec<u8>,
}

impl AccessUnitInfo {
    fn add(&mut self, codec: VideoCodec, t: u8) {
        self.nal_types.push(t);
        if codec.is_vcl(t) {
            self.vcl_count += 1;
        }
        if codec.is_key(t) {
            self.key = true;
        }
        match (codec, t) {
            (VideoCodec::H264, h264::SPS) | (VideoCodec::H265, h265::SPS) => self.has_sps = true,
            (VideoCodec::H264, h264::PPS) | (VideoCodec::H265, h265::PPS) => self.has_pps = true,
            (VideoCodec::H265, h265::VPS) => self.has_vps = true,
            _ => {}
        }
    }

    /// Whether every parameter set a decoder needs before this codec's key frame is present:
    /// SPS+PPS for H.264, VPS+SPS+PPS for H.265.
    pub fn has_parameter_sets(&self, codec: VideoCodec) -> bool {
        match codec {
            VideoCodec::H264 => self.has_sps && self.has_pps,
            VideoCodec::H265 => self.has_vps && self.has_sps && self.has_pps,
        }
    }
}

/// Classifies every NAL unit of an Annex B buffer.
pub fn analyze(codec: VideoCodec, data: &[u8]) -> AccessUnitInfo {
    let mut info = AccessUnitInfo::default();
    for nal in nal_units(data) {
        if let Some(t) = codec.nal_type(nal) {
            info.add(codec, t);
        }
    }
    info
}

/// One access unit re-emitted as Annex B with 4-byte start codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Annex B bytes (`00 00 00 01` before every NAL).
    pub data: Bytes,
    /// Classification of the NAL units.
    pub info: AccessUnitInfo,
}

/// Groups NAL units into access units, one NAL at a time.
#[derive(Debug)]
pub struct AccessUnitSplitter {
    codec: VideoCodec,
    buf: BytesMut,
    info: AccessUnitInfo,
}

impl AccessUnitSplitter {
    /// A splitter for the given codec.
    pub fn new(codec: VideoCodec) -> Self {
        AccessUnitSplitter {
            codec,
            buf: BytesMut::new(),
            info: AccessUnitInfo::default(),
        }
    }

    /// Adds one NAL (without start code). Returns the previous access unit when this NAL
    /// starts a new one. NALs too short to carry a header are dropped.
    pub fn push_nal(&mut self, nal: &[u8]) -> Option<AccessUnit> {
        let t = self.codec.nal_type(nal)?;
        let mut done = None;
        if self.info.vcl_count > 0 {
            let new_au = if self.codec.is_vcl(t) {
                // first_mb_in_slice == 0 (ue(v) "1") / first_slice_segment_in_pic_flag == 1:
                // the top bit of the first byte after the NAL header.
                nal.get(self.codec.header_len())
                    .is_some_and(|b| b & 0x80 != 0)
            } else {
                self.codec.opens_access_unit(t)
            };
            if new_au {
                done = self.take();
            }
        }
        self.buf.put_slice(&[0, 0, 0, 1]);
        self.buf.put_slice(nal);
        self.info.add(self.codec, t);
        done
    }

    /// Returns the access unit being built, if it has any NAL.
    pub fn finish(&mut self) -> Option<AccessUnit> {
        self.take()
    }

    fn take(&mut self) -> Option<AccessUnit> {
        if self.buf.is_empty() {
            return None;
        }
        Some(AccessUnit {
            data: self.buf.split().freeze(),
            info: std::mem::take(&mut self.info),
        })
    }
}

/// Splits a whole Annex B buffer into access units. Parameter sets and SEI that precede
/// a picture belong to that picture's access unit.
pub fn split_access_units(codec: VideoCodec, data: &[u8]) -> Vec<AccessUnit> {
    let mut s = AccessUnitSplitter::new(codec);
    let mut out: Vec<AccessUnit> = nal_units(data).filter_map(|n| s.push_nal(n)).collect();
    out.extend(s.finish());
    out
}

/// Turns an Annex B buffer into muxer frames with PTS `first_pts + i * frame_duration`
/// (90 kHz; 3600 for 25 fps) and no DTS. Access units without a picture are dropped.
pub fn frames_from_annexb(
    codec: VideoCodec,
    data: &[u8],
    first_pts: u64,
    frame_duration: u64,
) -> Vec<Frame> {
    split_access_units(codec, data)
        .into_iter()
        .filter(|au| au.info.vcl_count > 0)
        .enumerate()
        .map(|(i, au)| Frame {
            codec: codec.codec(),
            pts: first_pts + i as u64 * frame_duration,
            dts: None,
            key: au.info.key,
            data: au.data,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nals_with_three_and_four_byte_start_codes() {
        let data = [
            0xAA, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0x88, 0, 0,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0x88][..]]
        );
    }

    #[test]
    fn groups_h264_access_units() {
        let mut data = Vec::new();
        for nal in [
            &[0x09, 0xF0][..],
            &[0x67, 0x42, 0x00, 0x1E],
            &[0x68, 0xCE, 0x38, 0x80],
            &[0x65, 0x88, 0x84, 0x21],
            &[0x65, 0x08, 0x11], // second slice of the same IDR picture
            &[0x41, 0x9A, 0x02],
            &[0x41, 0x9A, 0x04],
        ] {
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal);
        }
        let aus = split_access_units(VideoCodec::H264, &data);
        assert_eq!(aus.len(), 3);
        assert!(aus[0].info.key && aus[0].info.has_sps && aus[0].info.has_pps);
        assert_eq!(aus[0].info.nal_types, vec![9, 7, 8, 5, 5]);
        assert!(!aus[1].info.key);
        assert_eq!(aus[2].info.nal_types, vec![1]);
        let frames = frames_from_annexb(VideoCodec::H264, &data, 0, 3600);
        assert_eq!(
            frames.iter().map(|f| f.pts).collect::<Vec<_>>(),
            [0, 3600, 7200]
        );
    }

    #[test]
    fn groups_h265_access_units() {
        let mut data = Vec::new();
        for nal in [
            &[0x40, 0x01, 0x0C][..], // VPS
            &[0x42, 0x01, 0x01],     // SPS
            &[0x44, 0x01, 0xC1],     // PPS
            &[0x26, 0x01, 0xAF],     // IDR_W_RADL, first slice
            &[0x02, 0x01, 0xD0],     // TRAIL_R, first slice
        ] {
            data.extend_from_slice(&[0, 0, 1]);
            data.extend_from_slice(nal);
        }
        let aus = split_access_units(VideoCodec::H265, &data);
        assert_eq!(aus.len(), 2);
        assert!(aus[0].info.key && aus[0].info.has_parameter_sets(VideoCodec::H265));
        assert!(!aus[1].info.key);
    }
}
