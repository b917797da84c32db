//! RTP fixed header (RFC 3550 §5.1) as used for GB/T 28181 media transport
//! (实时预览: "采用RTP/RTCP协议(IETF RFC3550)实现媒体传输"; SDP `a=rtpmap:96 PS/90000`,
//! SSRC from the `y=` line).
//!
//! Drive it with [`RtpPacket::parse`] on received bytes and [`RtpHeader::encode`] /
//! [`encode_packet`] to build packets. The encoder writes every field verbatim
//! (version, P, X, CC), so deliberately malformed headers can be produced for negative
//! tests. See [`packetize`] for PS-over-RTP and [`framing`] for RTP over TCP.
//!
//! The header codec is written here rather than taken from `rtp-types` 0.1: that
//! crate's builder always writes version 2 and refuses a zero padding count or a payload
//! type above 127, so it cannot emit the malformed headers a conformance harness needs,
//! and it would pull a second `thiserror` major version.

pub mod audio;
pub mod damage;
pub mod framing;
pub mod packetize;

pub use framing::{encode_frame, encode_frame_into, FramingDecoder, FramingError};
pub use packetize::{
    DepacketizedUnit, Depacketizer, PacketizeError, Packetizer, PacketizerConfig, PacketizerFaults,
};

use bytes::{BufMut, Bytes, BytesMut};

/// RTP version written by conforming senders.
pub const RTP_VERSION: u8 = 2;
/// Size of the fixed header without CSRCs.
pub const FIXED_HEADER_LEN: usize = 12;
/// Payload type GB/T 28181 SDP offers for PS (`a=rtpmap:96 PS/90000`).
pub const PS_PAYLOAD_TYPE: u8 = 96;
/// RTP clock of the PS payload.
pub const PS_CLOCK_RATE: u32 = 90_000;

/// RTP header parse/encode errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer bytes than the header (with CSRCs and extension) needs.
    #[error("packet truncated: {len} bytes, header needs {need}")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Version field is not 2.
    #[error("unsupported RTP version {0}")]
    Version(u8),
    /// Padding count is 0 or larger than the bytes after the header.
    #[error("invalid padding count {count} with {available} bytes after the header")]
    Padding {
        /// Value of the last byte.
        count: u8,
        /// Bytes after the header.
        available: usize,
    },
    /// Field value does not fit its bits when encoding.
    #[error("{field} value {value} does not fit the header")]
    FieldRange {
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: usize,
    },
}

/// RTP fixed header plus CSRC list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHeader {
    /// Version (2 bits); 2 for conforming packets.
    pub version: u8,
    /// P bit.
    pub padding: bool,
    /// X bit.
    pub extension: bool,
    /// M bit; in PS-over-RTP it marks the last packet of a frame.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp (90 kHz for PS).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrcs: Vec<u32>,
}

impl RtpHeader {
    /// A version-2 header without padding, extension or CSRCs.
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32) -> Self {
        RtpHeader {
            version: RTP_VERSION,
            padding: false,
            extension: false,
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: Vec::new(),
        }
    }

    /// Bytes [`RtpHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + 4 * self.csrcs.len()
    }

    /// Writes the fixed header and CSRCs exactly as set (P and X bits included).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), RtpError> {
        if self.version > 3 {
            return Err(RtpError::FieldRange {
                field: "version",
                value: self.version.into(),
            });
        }
        if self.payload_type > 127 {
            return Err(RtpError::FieldRange {
                field: "payload_type",
                value: self.payload_type.into(),
            });
        }
        if self.csrcs.len() > 15 {
            return Err(RtpError::FieldRange {
                field: "csrc_count",
                value: self.csrcs.len(),
            });
        }
        out.put_u8(
            (self.version << 6)
                | (u8::from(self.padding) << 5)
                | (u8::from(self.extension) << 4)
                | self.csrcs.len() as u8,
        );
        out.put_u8((u8::from(self.marker) << 7) | self.payload_type);
        out.put_u16(self.sequence);
        out.put_u32(self.timestamp);
        out.put_u32(self.ssrc);
        for &c in &self.csrcs {
            out.put_u32(c);
        }
        Ok(())
    }
}

/// A header extension (RFC 3550 §5.3.1) as found in a parsed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// "defined by profile" field.
    pub profile: u16,
    /// Extension data (length × 4 bytes).
    pub data: &'a [u8],
}

/// A parsed RTP packet borrowing the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Header fields.
    pub header: RtpHeader,
    /// Header extension, skipped over when locating the payload.
    pub extension: Option<RtpExtension<'a>>,
    /// Payload, padding removed.
    pub payload: &'a [u8],
    /// Padding bytes removed (0 without the P bit).
    pub padding_len: u8,
}

impl<'a> RtpPacket<'a> {
    /// Parses a packet: V must be 2; CSRCs, extension and padding are honoured.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        if data.len() < FIXED_HEADER_LEN {
            return Err(RtpError::Truncated {
                len: data.len(),
                need: FIXED_HEADER_LEN,
            });
        }
        let version = data[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::Version(version));
        }
        let padding = data[0] & 0x20 != 0;
        let extension = data[0] & 0x10 != 0;
        let cc = usize::from(data[0] & 0x0F);
        let mut off = FIXED_HEADER_LEN + 4 * cc;
        if data.len() < off {
            return Err(RtpError::Truncated {
                len: data.len(),
                need: off,
            });
        }
        let csrcs = data[FIXED_HEADER_LEN..off]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ext = if extension {
            if data.len() < off + 4 {
                return Err(RtpError::Truncated {
                    len: data.len(),
                    need: off + 4,
                });
            }
            let profile = u16::from_be_bytes([data[off], data[off + 1]]);
            let words = usize::from(u16::from_be_bytes([data[off + 2], data[off + 3]]));
            let end = off + 4 + 4 * words;
            if data.len() < end {
                return Err(RtpError::Truncated {
                    len: data.len(),
                    need: end,
                });
            }
            let e = RtpExtension {
                profile,
                data: &data[off + 4..end],
            };
            off = end;
            Some(e)
        } else {
            None
        };
        let mut end = data.len();
        let mut padding_len = 0;
        if padding {
            let count = data[data.len() - 1];
            let available = data.len() - off;
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::Padding { count, available });
            }
            padding_len = count;
            end -= usize::from(count);
        }
        Ok(RtpPacket {
            header: RtpHeader {
                version,
                padding,
                extension,
                marker: data[1] & 0x80 != 0,
                payload_type: data[1] & 0x7F,
                sequence: u16::from_be_bytes([data[2], data[3]]),
                timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
                csrcs,
            },
            extension: ext,
            payload: &data[off..end],
            padding_len,
        })
    }
}

/// Builds a complete packet. The P and X bits are derived from `extension` and
/// `padding` (the header's own flags are overridden); `padding` bytes are appended with
/// the count in the last one. Use [`RtpHeader::encode`] directly for inconsistent flags.
pub fn encode_packet(
    header: &RtpHeader,
    extension: Option<(u16, &[u8])>,
    payload: &[u8],
    padding: u8,
) -> Result<Bytes, RtpError> {
    let mut h = header.clone();
    h.padding = padding > 0;
    h.extension = extension.is_some();
    let ext_len = extension.map_or(0, |(_, d)| 4 + d.len());
    let mut out = BytesMut::with_capacity(h.encoded_len() + ext_len + payload.len() + 255);
    h.encode(&mut out)?;
    if let Some((profile, data)) = extension {
        if data.len() % 4 != 0 || data.len() / 4 > usize::from(u16::MAX) {
            return Err(RtpError::FieldRange {
                field: "extension_length",
                value: data.len(),
            });
        }
        out.put_u16(profile);
        out.put_u16((data.len() / 4) as u16);
        out.put_slice(data);
    }
    out.put_slice(payload);
    if padding > 0 {
        out.put_bytes(0, usize::from(padding) - 1);
        out.put_u8(padding);
    }
    Ok(out.freeze())
}

/// Whether a datagram on a shared RTP/RTCP port is RTCP (RFC 5761 §4: second byte in
/// 192..=223, i.e. RTCP packet types 192..=223, which RTP payload types must avoid).
/// The notes' reader tests `packet[1] < RTCP_FIR || packet[1] > RTCP_LIMIT` (192..=223
/// in jrtplib/ireader terms), the same range.
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] >> 6 == RTP_VERSION && (192..=223).contains(&data[1])
}

/// Errors from [`parse_sdp_ssrc`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrcParseError {
    /// Not exactly ten ASCII decimal digits.
    #[error("y= value {0:?} is not 10 decimal digits")]
    Format(String),
    /// Ten digits that do not fit 32 bits.
    #[error("y= value {0} does not fit a 32-bit SSRC")]
    Range(u64),
}

/// Parses the SSRC of an SDP `y=` line (with or without the `y=` prefix).
///
/// GB/T 28181 defines `y=` as a 10-digit **decimal** string (first digit 0 live / 1
/// history, then the 5-digit domain part and a 4-digit sequence), which is used as the
/// RTP SSRC value. The feature notes build `"y=001\n"` in `CreateRealStreamSDP` while
/// every captured SDP carries ten digits (`y=0100000001`); the ten-digit form is taken
/// as normative and shorter values are rejected.
pub fn parse_sdp_ssrc(field: &str) -> Result<u32, SsrcParseError> {
    let v = field.trim();
    let v = v.strip_prefix("y=").unwrap_or(v).trim();
    if v.len() != 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SsrcParseError::Format(v.to_string()));
    }
    let n: u64 = v
        .parse()
        .map_err(|_| SsrcParseError::Format(v.to_string()))?;
    u32::try_from(n).map_err(|_| SsrcParseError::Range(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes() {
        let mut h = RtpHeader::new(96, 0x1234, 0x0001_5F90, 100_000_001);
        h.marker = true;
        let mut out = BytesMut::new();
        h.encode(&mut out).unwrap();
        // 10 0 0 0000 | 1 1100000 | seq | ts 90000 | ssrc 100000001 = 0x05F5E101
        assert_eq!(
            &out[..],
            &[0x80, 0xE0, 0x12, 0x34, 0x00, 0x01, 0x5F, 0x90, 0x05, 0xF5, 0xE1, 0x01]
        );
    }

    #[test]
    fn parse_with_csrc_extension_padding() {
        let mut h = RtpHeader::new(96, 7, 9, 11);
        h.csrcs = vec![1, 2];
        let pkt = encode_packet(&h, Some((0xBEDE, &[1, 2, 3, 4])), b"hello", 3).unwrap();
        let p = RtpPacket::parse(&pkt).unwrap();
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.padding_len, 3);
        assert_eq!(p.header.csrcs, vec![1, 2]);
        assert_eq!(p.extension.unwrap().profile, 0xBEDE);
        assert_eq!(p.extension.unwrap().data, &[1, 2, 3, 4]);
        assert!(p.header.padding && p.header.extension);
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::Truncated { .. })
        ));
        let mut h = RtpHeader::new(96, 0, 0, 0);
        h.version = 1;
        let mut out = BytesMut::new();
        h.encode(&mut out).unwrap();
        assert_eq!(RtpPacket::parse(&out), Err(RtpError::Version(1)));
        let mut h = RtpHeader::new(96, 0, 0, 0);
        h.padding = true;
        let mut out = BytesMut::new();
        h.encode(&mut out).unwrap();
        out.put_slice(&[1, 2, 9]);
        assert!(matches!(
            RtpPacket::parse(&out),
            Err(RtpError::Padding { count: 9, .. })
        ));
        let mut h = RtpHeader::new(96, 0, 0, 0);
        h.extension = true;
        let mut out = BytesMut::new();
        h.encode(&mut out).unwrap();
        out.put_slice(&[0, 0, 0, 2, 1]);
        assert!(matches!(
            RtpPacket::parse(&out),
            Err(RtpError::Truncated { need: 24, .. })
        ));
    }

    #[test]
    fn sdp_ssrc() {
        assert_eq!(parse_sdp_ssrc("y=0100000001"), Ok(100_000_001));
        assert_eq!(parse_sdp_ssrc("1100000002\r\n"), Ok(1_100_000_002));
        assert!(matches!(
            parse_sdp_ssrc("y=001"),
            Err(SsrcParseError::Format(_))
        ));
        assert_eq!(
            parse_sdp_ssrc("9999999999"),
            Err(SsrcParseError::Range(9_999_999_999))
        );
    }

    #[test]
    fn rtcp_detection() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(!is_rtcp(&[0x80, 96, 0, 6]));
        assert!(!is_rtcp(&[0x80, 0xE0, 0, 6]));
    }
}
