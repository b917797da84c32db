//! How RTP arrives on a TCP media connection. GB/T 28181 (媒体传输方式, the TCP
//! sender "先发送2字节头") frames every packet by RFC 4571 §2: a 16-bit length, then
//! the packet. Some cameras write the RTSP interleaved header of RFC 2326 §10.12
//! instead: `$`, a channel byte, a 16-bit length. [`TcpMediaDecoder`] tells the two
//! apart from the first bytes of the connection, decodes either, and says which it
//! found so the receiver can report the deviation and still judge the stream.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::proto::rtp::FramingDecoder;

/// What the receivers report when they meet RTSP-interleaved framing.
pub(super) const RTSP_FRAMING: &str = "RTP over TCP framed RTSP-style ('$', channel, 16-bit length; RFC 2326 §10.12) instead of the RFC 4571 16-bit length; decoded anyway";

/// The framing found on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFraming {
    /// RFC 4571: a 16-bit length before each packet.
    Rfc4571,
    /// RFC 2326 §10.12: `$`, the channel, a 16-bit length before each packet.
    RtspInterleaved,
}

/// One decoded unit: the framing bytes in front of the packet, and the packet.
pub type Framed = (Vec<u8>, Bytes);

/// Whether `b` (at least 5 bytes) starts RTSP-interleaved: `$`, then a channel and
/// a length, then an RTP version-2 byte. Read as RFC 4571 the same bytes would
/// announce a 9216..9471-byte packet whose first byte is the length's high byte; a
/// stream whose byte 2 is itself an RTP version-2 byte stays RFC 4571.
pub(super) fn looks_interleaved(b: &[u8]) -> bool {
    b.len() >= 5 && b[0] == b'$' && b[4] >> 6 == 2 && b[2] >> 6 != 2
}

/// Sniffs the framing, then decodes packets. Feed it what the socket returns.
#[derive(Debug, Default)]
pub struct TcpMediaDecoder {
    framing: Option<TcpFraming>,
    rfc4571: FramingDecoder,
    buf: BytesMut,
    errors: u64,
}

impl TcpMediaDecoder {
    /// A decoder that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The framing, once enough bytes arrived to tell.
    pub fn framing(&self) -> Option<TcpFraming> {
        self.framing
    }

    /// Zero-length RFC 4571 frames, and bytes skipped to find the next `$` of an
    /// interleaved stream.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Bytes received but not yet returned.
    pub fn buffered(&self) -> usize {
        match self.framing {
            Some(TcpFraming::Rfc4571) => self.rfc4571.buffered(),
            _ => self.buf.len(),
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        match self.framing {
            Some(TcpFraming::Rfc4571) => self.rfc4571.feed(data),
            _ => self.buf.extend_from_slice(data),
        }
        if self.framing.is_none() && self.buf.len() >= 5 {
            if looks_interleaved(&self.buf) {
                self.framing = Some(TcpFraming::RtspInterleaved);
            } else {
                self.framing = Some(TcpFraming::Rfc4571);
                self.rfc4571.feed(&self.buf);
                self.buf.clear();
            }
        }
    }

    /// The next complete packet, if any.
    pub fn next_packet(&mut self) -> Option<Framed> {
        match self.framing? {
            TcpFraming::Rfc4571 => loop {
                match self.rfc4571.next_packet()? {
                    Ok(p) => return Some(((p.len() as u16).to_be_bytes().to_vec(), p)),
                    Err(_) => self.errors += 1,
                }
            },
            TcpFraming::RtspInterleaved => loop {
                if self.buf.is_empty() {
                    return None;
                }
                if self.buf[0] != b'$' {
                    // Lost step: skip to the next '$'.
                    let skip = self
                        .buf
                        .iter()
                        .position(|&b| b == b'$')
                        .unwrap_or(self.buf.len());
                    self.errors += 1;
                    self.buf.advance(skip);
                    continue;
                }
                if self.buf.len() < 4 {
                    return None;
                }
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() < 4 + len {
                    return None;
                }
                let head = self.buf.split_to(4).to_vec();
                let p = self.buf.split_to(len).freeze();
                if len == 0 {
                    self.errors += 1;
                    continue;
                }
                return Some((head, p));
            },
        }
    }
}

/// Frames `packet` RTSP-style on `channel` (the `rtsp-interleaved` fault of the
/// reference camera). `None` for a packet over 65535 bytes.
pub fn encode_interleaved(channel: u8, packet: &[u8], out: &mut impl BufMut) -> Option<()> {
    let len = u16::try_from(packet.len()).ok()?;
    out.put_u8(b'$');
    out.put_u8(channel);
    out.put_u16(len);
    out.put_slice(packet);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTP: [u8; 13] = [
        0x80, 0xE0, 0x00, 0x01, 0x00, 0x00, 0x0E, 0x10, 0x05, 0xF5, 0xE1, 0x01, 0xAA,
    ];

    fn decode(wire: &[u8], chunk: usize) -> (Option<TcpFraming>, Vec<Framed>, u64) {
        let mut d = TcpMediaDecoder::new();
        let mut got = Vec::new();
        for c in wire.chunks(chunk) {
            d.feed(c);
            while let Some(p) = d.next_packet() {
                got.push(p);
            }
        }
        (d.framing(), got, d.errors())
    }

    #[test]
    fn rtsp_interleaved_is_recognised_and_decoded() {
        // $ channel 0, length 13, RTP; then $ channel 1 (RTCP), length 8.
        let mut wire = vec![0x24, 0x00, 0x00, 0x0D];
        wire.extend_from_slice(&RTP);
        wire.extend_from_slice(&[0x24, 0x01, 0x00, 0x08, 0x80, 0xC8, 0, 1, 0, 0, 0, 1]);
        for chunk in [1, 3, 5, wire.len()] {
            let (f, got, errors) = decode(&wire, chunk);
            assert_eq!(f, Some(TcpFraming::RtspInterleaved));
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, [0x24, 0x00, 0x00, 0x0D]);
            assert_eq!(&got[0].1[..], &RTP);
            assert_eq!(got[1].1.len(), 8);
            assert_eq!(errors, 0);
        }
    }

    #[test]
    fn rfc_4571_stays_rfc_4571() {
        let mut wire = vec![0x00, 0x0D];
        wire.extend_from_slice(&RTP);
        wire.extend_from_slice(&[0x00, 0x0D]);
        wire.extend_from_slice(&RTP);
        for chunk in [1, 2, 4, wire.len()] {
            let (f, got, _) = decode(&wire, chunk);
            assert_eq!(f, Some(TcpFraming::Rfc4571));
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].0, [0x00, 0x0D]);
        }
        // An RFC 4571 length of 0x24xx whose packet starts with RTP version 2 is
        // RFC 4571: its byte 2 is the packet's first.
        let mut big = vec![0x24, 0x00];
        let mut pkt = RTP.to_vec();
        pkt.resize(0x2400, 0x11);
        big.extend_from_slice(&pkt);
        let (f, got, _) = decode(&big, 100);
        assert_eq!(f, Some(TcpFraming::Rfc4571));
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn interleaved_stream_out_of_step_skips_to_the_next_dollar() {
        let mut wire = vec![0x24, 0x00, 0x00, 0x0D];
        wire.extend_from_slice(&RTP);
        wire.extend_from_slice(&[0x01, 0x02]);
        encode_interleaved(0, &RTP, &mut wire).unwrap();
        let (_, got, errors) = decode(&wire, 7);
        assert_eq!(got.len(), 2);
        assert_eq!(errors, 1);
    }
}
