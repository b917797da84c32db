//! Evidence writer: classic pcap, Ethernet link type. TCP segments get
//! per-direction sequence numbers that follow the bytes, so a dissector
//! reassembles messages split across segments.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};

use crate::proto::Transport;
use crate::transport::Packet;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Frame one packet. Returns `None` when source and destination are of
/// different IP families (nothing sensible to write).
fn frame(p: &Packet, seq: u32, ack: u32) -> Option<Vec<u8>> {
    let (smac, dmac) = if p.src < p.dst {
        (MAC_A, MAC_B)
    } else {
        (MAC_B, MAC_A)
    };
    let eth = PacketBuilder::ethernet2(smac, dmac);
    let ip = match (p.src.ip(), p.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => return None,
    };
    let mut out = Vec::with_capacity(p.bytes.len() + 80);
    match p.transport {
        Transport::Udp => {
            let b = ip.udp(p.src.port(), p.dst.port());
            b.write(&mut out, &p.bytes).ok()?;
        }
        Transport::Tcp => {
            let b = ip
                .tcp(p.src.port(), p.dst.port(), seq, 65535)
                .psh()
                .ack(ack);
            b.write(&mut out, &p.bytes).ok()?;
        }
    }
    Some(out)
}

/// Write `packets` (in time order) as a pcap file.
pub fn write_pcap(path: &Path, packets: &[Packet]) -> Result<()> {
    let mut buf = Vec::new();
    write_pcap_to(&mut buf, packets)?;
    std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}

pub fn write_pcap_to(out: impl Write, packets: &[Packet]) -> Result<()> {
    let mut sink = PcapSink::new(out)?;
    let mut sorted: Vec<&Packet> = packets.iter().collect();
    sorted.sort_by_key(|p| p.time);
    for p in sorted {
        sink.write(p)?;
    }
    Ok(())
}

/// Largest payload put in one synthetic frame: a bigger TCP write is split
/// into several segments, so it still fits the 16-bit IP length.
const MAX_SEGMENT: usize = 60_000;

/// Flows whose TCP sequence numbers a sink remembers; past that it starts
/// over (a days-long capture must not grow with every connection it saw).
const MAX_FLOWS: usize = 65_536;

/// A pcap file written one packet at a time, in the order given.
pub struct PcapSink<W: Write> {
    w: PcapWriter<W>,
    next_seq: HashMap<(SocketAddr, SocketAddr), u32>,
}

impl<W: Write> PcapSink<W> {
    pub fn new(out: W) -> Result<Self> {
        Ok(PcapSink {
            w: PcapWriter::new(out).context("pcap header")?,
            next_seq: HashMap::new(),
        })
    }

    pub fn write(&mut self, p: &Packet) -> Result<()> {
        if p.transport == Transport::Tcp && p.bytes.len() > MAX_SEGMENT {
            for chunk in p.bytes.chunks(MAX_SEGMENT) {
                let seg = Packet {
                    time: p.time,
                    src: p.src,
                    dst: p.dst,
                    transport: p.transport,
                    bytes: chunk.to_vec(),
                };
                self.write_one(&seg)?;
            }
            return Ok(());
        }
        self.write_one(p)
    }

    fn write_one(&mut self, p: &Packet) -> Result<()> {
        let (seq, ack) = if p.transport == Transport::Tcp {
            if self.next_seq.len() >= MAX_FLOWS {
                self.next_seq.clear();
            }
            let seq = *self.next_seq.entry((p.src, p.dst)).or_insert(1);
            let ack = *self.next_seq.entry((p.dst, p.src)).or_insert(1);
            self.next_seq
                .insert((p.src, p.dst), seq.wrapping_add(p.bytes.len() as u32));
            (seq, ack)
        } else {
            (0, 0)
        };
        let Some(data) = frame(p, seq, ack) else {
            return Ok(());
        };
        let ts = p.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.w
            .write_packet(&PcapPacket::new(ts, data.len() as u32, &data))
            .context("pcap packet")?;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.w.into_writer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use std::time::SystemTime;

    #[test]
    fn writes_readable_udp_and_tcp_frames() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let pk = |t, src, dst, bytes: &[u8]| Packet {
            time: SystemTime::now(),
            src,
            dst,
            transport: t,
            bytes: bytes.to_vec(),
        };
        let pkts = vec![
            pk(Transport::Udp, b, a, b"REGISTER"),
            pk(Transport::Tcp, b, a, b"abc"),
            pk(Transport::Tcp, b, a, b"de"),
        ];
        let mut out = Vec::new();
        write_pcap_to(&mut out, &pkts).unwrap();
        let mut r = PcapReader::new(&out[..]).unwrap();
        let mut n = 0;
        let mut seqs = vec![];
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            let s = etherparse::SlicedPacket::from_ethernet(&p.data).unwrap();
            if let Some(etherparse::TransportSlice::Tcp(t)) = s.transport {
                seqs.push(t.sequence_number());
            }
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(seqs, vec![1, 4]);
    }

    #[test]
    fn large_tcp_writes_become_several_segments() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let p = Packet {
            time: SystemTime::now(),
            src: a,
            dst: b,
            transport: Transport::Tcp,
            bytes: vec![7; 150_000],
        };
        let mut out = Vec::new();
        write_pcap_to(&mut out, &[p]).unwrap();
        let mut r = PcapReader::new(&out[..]).unwrap();
        let mut total = 0;
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            let s = etherparse::SlicedPacket::from_ethernet(&p.data).unwrap();
            if let Some(etherparse::TransportSlice::Tcp(t)) = s.transport {
                total += t.payload().len();
            }
            n += 1;
        }
        assert_eq!((n, total), (3, 150_000));
    }
}
