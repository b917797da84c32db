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
    let mut w = PcapWriter::new(out).context("pcap header")?;
    let mut next_seq: HashMap<(SocketAddr, SocketAddr), u32> = HashMap::new();
    let mut sorted: Vec<&Packet> = packets.iter().collect();
    sorted.sort_by_key(|p| p.time);
    for p in sorted {
        let (seq, ack) = if p.transport == Transport::Tcp {
            let seq = *next_seq.entry((p.src, p.dst)).or_insert(1);
            let ack = *next_seq.entry((p.dst, p.src)).or_insert(1);
            next_seq.insert((p.src, p.dst), seq.wrapping_add(p.bytes.len() as u32));
            (seq, ack)
        } else {
            (0, 0)
        };
        let Some(data) = frame(p, seq, ack) else {
            continue;
        };
        let ts = p.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        w.write_packet(&PcapPacket::new(ts, data.len() as u32, &data))
            .context("pcap packet")?;
    }
    Ok(())
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
}
