//! RTP over connection-oriented transport, RFC 4571 §2: every RTP/RTCP packet is
//! preceded by a 16-bit big-endian length. GB/T 28181 uses it for `TCP/RTP/AVP`
//! (TCP被动 / TCP主动; the sender writes "2字节头" then the packet, at most 65535 bytes).
//!
//! Drive the encoder with [`encode_frame`]; drive [`FramingDecoder`] with
//! [`FramingDecoder::feed`] on whatever chunks the socket returns and pull whole packets
//! with [`FramingDecoder::next_packet`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest packet a 16-bit length can announce (the notes' `RTPTCPTRANS_MAXPACKSIZE`
/// 65535 agrees; their `SetMaximumPacketSize(45678 + 64)` is a sender choice below it).
pub const MAX_FRAME_LEN: usize = u16::MAX as usize;

/// RFC 4571 framing errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A length prefix of 0. RFC 4571 allows it only as "no packet"; GB/T 28181 senders
    /// never send it, so it is reported (the decoder consumes the 2 bytes and goes on).
    #[error("zero-length RFC 4571 frame")]
    ZeroLength,
    /// Packet longer than 65535 bytes cannot be framed.
    #[error("packet of {0} bytes exceeds the 65535-byte RFC 4571 limit")]
    TooLong(usize),
}

/// Frames one packet: 2-byte big-endian length then the packet.
pub fn encode_frame(packet: &[u8]) -> Result<Bytes, FramingError> {
    let mut out = BytesMut::with_capacity(packet.len() + 2);
    encode_frame_into(packet, &mut out)?;
    Ok(out.freeze())
}

/// Appends one framed packet to `out`.
pub fn encode_frame_into(packet: &[u8], out: &mut BytesMut) -> Result<(), FramingError> {
    if packet.is_empty() {
        return Err(FramingError::ZeroLength);
    }
    if packet.len() > MAX_FRAME_LEN {
        return Err(FramingError::TooLong(packet.len()));
    }
    out.put_u16(packet.len() as u16);
    out.put_slice(packet);
    Ok(())
}

/// Incremental RFC 4571 decoder: feed byte chunks of any size, pull whole packets.
///
/// Framing is exact: each packet is the bytes its 16-bit length announces
/// (at most 65535), nothing is skipped and nothing is read twice, so no part
/// of a packet can surface as a packet of its own whatever the chunking
/// (`tests/hostile_framing.rs`). What is buffered is bounded by one length
/// prefix and packet plus the chunk last fed, as long as the caller pulls
/// packets after each feed.
#[derive(Debug, Default)]
pub struct FramingDecoder {
    buf: BytesMut,
}

impl FramingDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet; `None` until enough bytes arrived. A zero length
    /// prefix yields `Some(Err(FramingError::ZeroLength))` and is consumed.
    pub fn next_packet(&mut self) -> Option<Result<Bytes, FramingError>> {
        if self.buf.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if len == 0 {
            self.buf.advance(2);
            return Some(Err(FramingError::ZeroLength));
        }
        if self.buf.len() < 2 + len {
            return None;
        }
        self.buf.advance(2);
        Some(Ok(self.buf.split_to(len).freeze()))
    }

    /// Bytes received but not yet returned (a partial length or packet).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_length_prefix() {
        assert_eq!(&encode_frame(&[9, 8, 7]).unwrap()[..], &[0, 3, 9, 8, 7]);
        assert_eq!(encode_frame(&[]), Err(FramingError::ZeroLength));
        assert_eq!(
            encode_frame(&vec![0; 65536]),
            Err(FramingError::TooLong(65536))
        );
        assert_eq!(encode_frame(&vec![1; 65535]).unwrap().len(), 65537);
    }

    #[test]
    fn decodes_partial_and_coalesced_reads() {
        let mut wire = Vec::new();
        for n in [1usize, 300, 65535, 2] {
            wire.extend_from_slice(&encode_frame(&vec![n as u8; n]).unwrap());
        }
        for chunk in [1usize, 2, 3, 7, 1000, wire.len()] {
            let mut d = FramingDecoder::new();
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                d.feed(c);
                while let Some(p) = d.next_packet() {
                    got.push(p.unwrap().len());
                }
            }
            assert_eq!(got, vec![1, 300, 65535, 2]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn zero_length_is_an_error_value() {
        let mut d = FramingDecoder::new();
        d.feed(&[0, 0, 0, 1, 0xAA]);
        assert_eq!(d.next_packet(), Some(Err(FramingError::ZeroLength)));
        assert_eq!(d.next_packet(), Some(Ok(Bytes::from_static(&[0xAA]))));
        assert_eq!(d.next_packet(), None);
    }
}
