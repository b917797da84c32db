//! A video source for the sender: the access units of an Annex B file.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context, Result};
use bytes::Bytes;

use crate::proto::ps::annexb::{split_access_units, VideoCodec};

/// The H.264 sample of `captures/` (320x240, 25 fps, made by
/// `ci/make-captures.sh`), built into the binary so the reference peers and the
/// harness can stream without any file at hand.
pub fn sample_h264() -> Arc<MediaSource> {
    static SAMPLE: OnceLock<Arc<MediaSource>> = OnceLock::new();
    SAMPLE
        .get_or_init(|| {
            Arc::new(
                MediaSource::from_annexb(
                    VideoCodec::H264,
                    include_bytes!("../../captures/sample-h264-320x240-25fps.h264"),
                )
                .expect("the built-in sample holds pictures"),
            )
        })
        .clone()
}

/// One access unit (picture) of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrame {
    /// Annex B bytes (4-byte start codes), parameter sets included.
    pub data: Bytes,
    /// IDR (H.264) / IRAP (H.265).
    pub key: bool,
}

/// The pictures of an H.264 or H.265 Annex B stream, in decoding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSource {
    codec: VideoCodec,
    frames: Vec<SourceFrame>,
}

impl MediaSource {
    /// Splits an Annex B buffer into access units. Units without a picture (a stray
    /// parameter set at the end) are dropped; an input without any picture is refused.
    pub fn from_annexb(codec: VideoCodec, data: &[u8]) -> Result<Self> {
        let frames: Vec<SourceFrame> = split_access_units(codec, data)
            .into_iter()
            .filter(|au| au.info.vcl_count > 0)
            .map(|au| SourceFrame {
                key: au.info.key,
                data: au.data,
            })
            .collect();
        if frames.is_empty() {
            bail!(
                "no {codec:?} picture in {} bytes of Annex B data",
                data.len()
            );
        }
        Ok(MediaSource { codec, frames })
    }

    /// Reads a file; the codec comes from `codec` or else from the extension
    /// (`.h264`/`.264`/`.avc` or `.h265`/`.265`/`.hevc`).
    pub fn from_file(path: impl AsRef<Path>, codec: Option<VideoCodec>) -> Result<Self> {
        let path = path.as_ref();
        let codec = match codec.or_else(|| codec_from_extension(path)) {
            Some(c) => c,
            None => bail!(
                "{}: cannot tell H.264 from H.265 by the extension; name the codec",
                path.display()
            ),
        };
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_annexb(codec, &data).with_context(|| path.display().to_string())
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The pictures.
    pub fn frames(&self) -> &[SourceFrame] {
        &self.frames
    }

    /// Number of pictures (at least 1).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Never true: a source holds at least one picture.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether the first picture is a key frame, so that a looping stream restarts
    /// decodably.
    pub fn starts_with_key(&self) -> bool {
        self.frames[0].key
    }

    /// Total Annex B bytes.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(|f| f.data.len()).sum()
    }
}

/// The codec a file extension names.
pub fn codec_from_extension(path: &Path) -> Option<VideoCodec> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "h264" | "264" | "avc" => Some(VideoCodec::H264),
        "h265" | "265" | "hevc" => Some(VideoCodec::H265),
        _ => None,
    }
}
