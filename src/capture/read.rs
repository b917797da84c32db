//! Capture files in: classic pcap (either byte order, micro- or nanosecond
//! timestamps) and pcapng, read from a byte slice with `pcap-file`'s
//! parsers. A damaged file is read up to the damage: the frames before it
//! are handed up and [`Capture::stopped`] says at which byte offset reading
//! ended and why.

use std::borrow::Cow;
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, PcapError};

/// How a frame's bytes begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Linux cooked capture v1 (DLT_LINUX_SLL).
    LinuxSll,
    /// Linux cooked capture v2 (DLT_LINUX_SLL2).
    LinuxSll2,
    /// A bare IPv4 or IPv6 packet (DLT_RAW, DLT_IPV4, DLT_IPV6).
    RawIp,
    /// BSD loopback: a 4-byte address family in the capturing host's byte
    /// order (DLT_NULL), or in network order (DLT_LOOP).
    Null,
    /// Anything else, by its link-type number.
    Other(u32),
}

impl From<DataLink> for LinkType {
    fn from(d: DataLink) -> Self {
        match d {
            DataLink::ETHERNET => LinkType::Ethernet,
            DataLink::LINUX_SLL => LinkType::LinuxSll,
            DataLink::LINUX_SLL2 => LinkType::LinuxSll2,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LinkType::RawIp,
            DataLink::NULL | DataLink::LOOP => LinkType::Null,
            other => LinkType::Other(u32::from(other)),
        }
    }
}

/// One captured frame, borrowed from the file's bytes.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// 1-based, in file order (as Wireshark numbers frames).
    pub number: u64,
    /// Since the Unix epoch.
    pub time: Duration,
    pub link: LinkType,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: Cow<'a, [u8]>,
    /// The length on the wire.
    pub orig_len: u32,
}

/// Where and why reading a file ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// Byte offset in the file of the record that could not be read.
    pub offset: usize,
    pub reason: String,
}

#[derive(Debug)]
pub struct Capture<'a> {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    pub frames: Vec<Frame<'a>>,
    /// `None` when the whole file was read.
    pub stopped: Option<Stop>,
}

/// Why not even the start of a file could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the file is empty")]
    Empty,
    #[error("not a pcap or pcapng file (magic number {0})")]
    UnknownMagic(String),
    #[error("the {format} file header cannot be read: {reason}")]
    Header {
        format: &'static str,
        reason: String,
    },
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];

fn describe(e: &PcapError) -> String {
    match e {
        PcapError::IncompleteBuffer => "the file ends inside this record (truncated)".into(),
        other => other.to_string(),
    }
}

/// Read every frame `data` holds, stopping at the first record that cannot
/// be read. Fails only when the file header itself is unreadable.
pub fn read_capture(data: &[u8]) -> Result<Capture<'_>, ReadError> {
    if data.is_empty() {
        return Err(ReadError::Empty);
    }
    let magic: [u8; 4] = match data.get(..4) {
        Some(m) => [m[0], m[1], m[2], m[3]],
        None => return Err(ReadError::UnknownMagic(hex::encode(data))),
    };
    if magic == PCAPNG_MAGIC {
        read_pcapng(data)
    } else if PCAP_MAGICS.contains(&magic) {
        read_pcap(data)
    } else {
        Err(ReadError::UnknownMagic(hex::encode(magic)))
    }
}

fn read_pcap(data: &[u8]) -> Result<Capture<'_>, ReadError> {
    let (mut rest, parser) = PcapParser::new(data).map_err(|e| ReadError::Header {
        format: "pcap",
        reason: describe(&e),
    })?;
    let link = LinkType::from(parser.header().datalink);
    let mut frames = Vec::new();
    let mut stopped = None;
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        match parser.next_packet(rest) {
            Ok((rem, p)) => {
                let bytes = p.data;
                frames.push(Frame {
                    number: frames.len() as u64 + 1,
                    time: p.timestamp,
                    link,
                    data: bytes,
                    orig_len: p.orig_len,
                });
                rest = rem;
            }
            Err(e) => {
                stopped = Some(Stop {
                    offset,
                    reason: describe(&e),
                });
                break;
            }
        }
    }
    Ok(Capture {
        format: "pcap",
        frames,
        stopped,
    })
}

/// An interface's timestamp unit, from its `if_tsresol` option (default
/// microseconds): `(base, exponent)`, the unit being `base^-exponent` s.
fn ts_unit(opts: &[InterfaceDescriptionOption]) -> (u32, u32) {
    for o in opts {
        if let InterfaceDescriptionOption::IfTsResol(v) = o {
            return if v & 0x80 == 0 {
                (10, u32::from(*v))
            } else {
                (2, u32::from(v & 0x7f))
            };
        }
    }
    (10, 6)
}

/// A pcapng timestamp in the interface's units, as a duration. The parser
/// reads the raw 64-bit count as nanoseconds; rescale it.
fn rescale(raw: u64, unit: (u32, u32)) -> Duration {
    let per_sec: u128 = match unit {
        (10, e) if e <= 19 => 10u128.pow(e),
        (2, e) if e <= 63 => 1u128 << e,
        _ => return Duration::from_nanos(raw),
    };
    let raw = u128::from(raw);
    let secs = raw / per_sec;
    let frac = raw % per_sec;
    let nanos = frac * 1_000_000_000 / per_sec;
    Duration::new(secs.min(u128::from(u64::MAX)) as u64, nanos as u32)
}

fn read_pcapng(data: &[u8]) -> Result<Capture<'_>, ReadError> {
    let (mut rest, mut parser) = PcapNgParser::new(data).map_err(|e| ReadError::Header {
        format: "pcapng",
        reason: describe(&e),
    })?;
    let mut frames = Vec::new();
    let mut stopped = None;
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        let (rem, block) = match parser.next_block(rest) {
            Ok(x) => x,
            Err(e) => {
                stopped = Some(Stop {
                    offset,
                    reason: describe(&e),
                });
                break;
            }
        };
        rest = rem;
        let (iface, time, bytes, orig_len) = match block {
            Block::EnhancedPacket(p) => {
                let raw = p.timestamp.as_nanos().min(u128::from(u64::MAX)) as u64;
                let bytes = p.data;
                (Some(p.interface_id as usize), raw, bytes, p.original_len)
            }
            Block::SimplePacket(p) => {
                let bytes = p.data;
                (Some(0), 0, bytes, p.original_len)
            }
            Block::Packet(p) => {
                let bytes = p.data;
                (
                    Some(usize::from(p.interface_id)),
                    p.timestamp,
                    bytes,
                    p.original_len,
                )
            }
            _ => (None, 0, Cow::Borrowed(&[][..]), 0),
        };
        let Some(iface) = iface else { continue };
        let Some(desc) = parser.interfaces().get(iface) else {
            stopped = Some(Stop {
                offset,
                reason: format!(
                    "packet names interface {iface}, which no interface block described"
                ),
            });
            break;
        };
        frames.push(Frame {
            number: frames.len() as u64 + 1,
            time: rescale(time, ts_unit(&desc.options)),
            link: LinkType::from(desc.linktype),
            data: bytes,
            orig_len,
        });
    }
    Ok(Capture {
        format: "pcapng",
        frames,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_the_interface_resolution() {
        assert_eq!(rescale(1_500_000, (10, 6)), Duration::from_millis(1500));
        assert_eq!(rescale(3_000_000_001, (10, 9)), Duration::new(3, 1));
        assert_eq!(rescale(1 << 20, (2, 20)), Duration::from_secs(1));
    }

    #[test]
    fn unknown_and_empty_files_are_refused() {
        assert_eq!(read_capture(b"").unwrap_err(), ReadError::Empty);
        assert!(matches!(
            read_capture(b"GIF89a").unwrap_err(),
            ReadError::UnknownMagic(_)
        ));
        assert!(matches!(
            read_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap_err(),
            ReadError::Header { .. }
        ));
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use proptest::prelude::*;

    /// A small pcap with three UDP frames.
    fn sample() -> Vec<u8> {
        let a: std::net::SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let b: std::net::SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let pkts: Vec<crate::transport::Packet> = (0..3)
            .map(|i| crate::transport::Packet {
                time: std::time::UNIX_EPOCH + Duration::from_secs(i),
                src: a,
                dst: b,
                transport: crate::proto::Transport::Udp,
                bytes: vec![b'x'; 10],
            })
            .collect();
        let mut out = Vec::new();
        crate::capture::pcap::write_pcap_to(&mut out, &pkts).unwrap();
        out
    }

    #[test]
    fn a_truncated_file_yields_its_whole_frames_and_where_it_stopped() {
        let full = sample();
        let c = read_capture(&full).unwrap();
        assert_eq!(
            (c.format, c.frames.len(), c.stopped.clone()),
            ("pcap", 3, None)
        );
        assert_eq!(c.frames[2].time, Duration::from_secs(2));
        let frame_len = (full.len() - 24) / 3;
        let cut = &full[..24 + frame_len * 2 + 7];
        let c = read_capture(cut).unwrap();
        assert_eq!(c.frames.len(), 2);
        let stop = c.stopped.unwrap();
        assert_eq!(stop.offset, 24 + frame_len * 2);
        assert!(stop.reason.contains("truncated"), "{}", stop.reason);
    }

    /// The same frames as [`sample`], as pcapng (nanosecond timestamps).
    fn sample_ng() -> Vec<u8> {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        use pcap_file::pcapng::PcapNgWriter;
        let pcap = sample();
        let c = read_capture(&pcap).unwrap();
        let mut out = Vec::new();
        let mut w = PcapNgWriter::new(&mut out).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
        idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
        w.write_pcapng_block(idb).unwrap();
        for f in &c.frames {
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: f.time,
                original_len: f.orig_len,
                data: f.data.clone(),
                options: vec![],
            };
            w.write_pcapng_block(epb).unwrap();
        }
        drop(w);
        out
    }

    #[test]
    fn pcapng_frames_keep_their_times_and_a_cut_says_where() {
        let ng = sample_ng();
        let c = read_capture(&ng).unwrap();
        assert_eq!(
            (c.format, c.frames.len(), c.stopped.clone()),
            ("pcapng", 3, None)
        );
        assert_eq!(c.frames[2].time, Duration::from_secs(2));
        assert_eq!(c.frames[0].link, LinkType::Ethernet);
        let c = read_capture(&ng[..ng.len() - 3]).unwrap();
        assert_eq!(c.frames.len(), 2);
        assert!(c.stopped.unwrap().reason.contains("truncated"));
    }

    /// Overwrite bytes of `data`, cut it, and read and decode what is left.
    fn damage_and_decode(
        mut data: Vec<u8>,
        cut: prop::sample::Index,
        flips: Vec<(prop::sample::Index, u8)>,
    ) {
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        let n = cut.index(data.len() + 1);
        if let Ok(c) = read_capture(&data[..n]) {
            let mut d = crate::capture::decode::Decoder::new();
            for f in &c.frames {
                d.push(f, &mut |_| {});
            }
            d.finish(0, &mut |_| {});
        }
    }

    proptest! {
        #[test]
        fn damaged_pcapng_reads_without_panicking(
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        ) {
            damage_and_decode(sample_ng(), cut, flips);
        }

        #[test]
        fn any_bytes_read_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read_capture(&data);
            let mut ng = PCAPNG_MAGIC.to_vec();
            ng.extend_from_slice(&data);
            let _ = read_capture(&ng);
            let mut p = PCAP_MAGICS[0].to_vec();
            p.extend_from_slice(&data);
            let _ = read_capture(&p);
        }

        #[test]
        fn damaged_copies_of_a_capture_read_without_panicking(
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        ) {
            damage_and_decode(sample(), cut, flips);
        }
    }
}
