//! HEDGW framing (§5.2: 数据包长度（4 字节）+数据包内容): a 4-byte big-endian
//! length, then that many bytes of serialized HEDGWMessage. 附录E writes
//! the length with `htonl(info.ByteSize())`.
//!
//! [`FrameDecoder`] is sans-IO: push what the socket gave, take frames out.
//! A length over the configured maximum is a protocol finding and closes
//! the decoder for good: nothing is allocated for it, and the bytes after
//! it are never read as a new frame.

use bytes::{Buf, BytesMut};

use super::{clause, wire, FindingCode, HedgwMessage};
use crate::finding::{Evidence, Finding};

/// The largest frame accepted unless configured otherwise: a 1080p key
/// frame with room to spare.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// Frame a message: length, then the message.
pub fn encode(m: &HedgwMessage) -> Vec<u8> {
    frame_bytes(&wire::encode(m))
}

/// Frame bytes that already are a serialized message.
pub fn frame_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why a decoder stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame announces {announced} bytes, over the limit of {max}")]
    TooLarge { announced: u32, max: usize },
}

impl FrameError {
    /// The finding to report; the connection is closed after it.
    pub fn finding(&self) -> Finding {
        match self {
            FrameError::TooLarge { announced, max } => FindingCode::FrameTooLarge
                .error(
                    clause::CHANNEL,
                    format!(
                        "frame length {announced} (0x{announced:08x}) is over the limit of {max} bytes; the connection is closed"
                    ),
                )
                .with_evidence(Evidence::Bytes(announced.to_be_bytes().to_vec())),
        }
    }
}

/// Splits a byte stream into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max,
            failed: None,
        }
    }

    /// Add bytes read from the stream. Ignored once the decoder failed.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete frame's payload, `Ok(None)` when more bytes are
    /// needed, or the error that closed the stream (again on every call).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if len as usize > self.max {
            let e = FrameError::TooLarge {
                announced: len,
                max: self.max,
            };
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
            return Err(e);
        }
        let need = 4 + len as usize;
        if self.buf.len() < need {
            // Grow with what arrives, a chunk ahead at most: an announced
            // length allocates nothing by itself.
            self.buf.reserve((need - self.buf.len()).min(64 * 1024));
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(len as usize).to_vec()))
    }

    /// Bytes held that are not a complete frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// At the end of the stream: a finding when it ended inside a frame.
    pub fn finish(&self) -> Option<Finding> {
        (self.failed.is_none() && !self.buf.is_empty()).then(|| {
            FindingCode::FrameTruncated.error(
                clause::CHANNEL,
                format!("the connection ended {} bytes into a frame", self.buf.len()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::hedgw::{MessageType, Pong};

    fn pong() -> HedgwMessage {
        HedgwMessage {
            message_type: MessageType::Pong as i32,
            pong: Some(Pong { id: 0 }),
            ..Default::default()
        }
    }

    #[test]
    fn frames_split_across_reads() {
        let f = encode(&pong());
        assert_eq!(&f[..4], &[0, 0, 0, 6]);
        let mut two = f.clone();
        two.extend_from_slice(&f);
        let mut d = FrameDecoder::default();
        for b in two.chunks(3) {
            d.push(b);
        }
        let a = d.next_frame().unwrap().unwrap();
        let b = d.next_frame().unwrap().unwrap();
        assert_eq!(a, &f[4..]);
        assert_eq!(a, b);
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.finish().is_none());
        d.push(&f[..5]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish().unwrap().code, "hedgw.frame-truncated");
    }

    #[test]
    fn a_4_gib_length_is_refused_without_allocating() {
        let mut d = FrameDecoder::new(1024);
        d.push(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let e = d.next_frame().unwrap_err();
        assert_eq!(
            e,
            FrameError::TooLarge {
                announced: u32::MAX,
                max: 1024
            }
        );
        let f = e.finding();
        assert_eq!(f.code, "hedgw.frame-too-large");
        assert!(f.message.contains("4294967295") && f.message.contains("1024"));
        // The stream is closed: later bytes, even a valid frame, are not read.
        d.push(&encode(&pong()));
        assert!(d.next_frame().is_err());
        assert_eq!(d.pending(), 0);
    }
}
