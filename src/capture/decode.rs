//! Frames to SIP messages and flows: link layer (Ethernet, Linux cooked v1
//! and v2, raw IP, BSD loopback; VLAN tags), IPv4/IPv6 (IPv4 fragments of
//! UDP datagrams put back together), UDP and TCP. TCP
//! payload is put back in order per direction (bounded buffering; a hole
//! that never fills is reported as a gap and skipped) and framed with the
//! same [`StreamFramer`] the transport uses, so several messages in one
//! segment and one message over several segments both come out whole. UDP
//! datagrams are read as SIP when they parse as SIP, and counted as RTP per
//! SSRC when they look like RTP (version 2, a plausible payload type, or a
//! port an SDP body in the capture announced).
//!
//! Drive it with [`Decoder::push`] for each frame in file order, then
//! [`Decoder::finish`]; messages come out through the callback as they
//! complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use serde::Serialize;

use super::read::{Frame, LinkType};
use crate::proto::sip::{Framed, SipMessage, StreamFramer, DEFAULT_MAX_MESSAGE};
use crate::proto::Transport;

/// Flows tracked one by one; packets of flows beyond this are only counted.
const MAX_FLOWS: usize = 65_536;
/// Out-of-order TCP bytes held per direction before the hole is given up.
const MAX_PENDING_BYTES: usize = 1024 * 1024;
/// Out-of-order TCP segments held per direction.
const MAX_PENDING_SEGMENTS: usize = 256;
/// The longest partial line kept while looking for a message start.
const MAX_RESYNC_LINE: usize = 4096;
/// Notes kept (the rest are counted).
const MAX_NOTES: usize = 1000;

/// One direction of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub transport: Transport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    }
}

/// A SIP message read from the capture.
#[derive(Debug, Clone)]
pub struct SipEvent {
    /// The frame that carried (for TCP: completed) the message.
    pub frame: u64,
    pub time: Duration,
    pub flow: FlowKey,
    pub message: SipMessage,
    /// Rules of RFC 3261 the message breaks (it was still read).
    pub findings: Vec<crate::finding::Finding>,
}

/// Something the decoder could not read, with where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub frame: u64,
    pub text: String,
}

/// A transport packet cut out of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    /// TCP only: sequence number and the SYN/FIN/RST flags.
    pub tcp: Option<TcpMeta>,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpMeta {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// Cut the UDP or TCP packet out of one frame. `Err` says why there is
/// none (not IP, not UDP/TCP, a fragment, truncated headers).
pub fn dissect(link: LinkType, data: &[u8]) -> Result<Packet<'_>, String> {
    let sliced = slice_link(link, data)?;
    let (src_ip, dst_ip, fragmented): (IpAddr, IpAddr, bool) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.payload().fragmented,
        ),
        Some(NetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.payload().fragmented,
        ),
        _ => return Err("not IP".into()),
    };
    if fragmented {
        return Err(FRAGMENT.into());
    }
    match &sliced.transport {
        Some(TransportSlice::Udp(u)) => Ok(Packet {
            src: SocketAddr::new(src_ip, u.source_port()),
            dst: SocketAddr::new(dst_ip, u.destination_port()),
            transport: Transport::Udp,
            tcp: None,
            payload: u.payload(),
        }),
        Some(TransportSlice::Tcp(t)) => Ok(Packet {
            src: SocketAddr::new(src_ip, t.source_port()),
            dst: SocketAddr::new(dst_ip, t.destination_port()),
            transport: Transport::Tcp,
            tcp: Some(TcpMeta {
                seq: t.sequence_number(),
                syn: t.syn(),
                fin: t.fin(),
                rst: t.rst(),
            }),
            payload: t.payload(),
        }),
        _ => Err("neither UDP nor TCP".into()),
    }
}

const FRAGMENT: &str = "IP fragment";

/// The link layer and IP of a frame, sliced.
fn slice_link(link: LinkType, data: &[u8]) -> Result<SlicedPacket<'_>, String> {
    let sliced = match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(data),
        LinkType::LinuxSll => {
            // packet type (2), ARPHRD type (2), address length (2), address
            // (8), protocol (2): 16 bytes. Read by hand: the ARPHRD type of
            // a loopback capture (772) is one a stricter reader refuses.
            if data.len() < 16 {
                return Err("Linux cooked header truncated".into());
            }
            let proto = u16::from_be_bytes([data[14], data[15]]);
            SlicedPacket::from_ether_type(EtherType(proto), &data[16..])
        }
        LinkType::LinuxSll2 => {
            // protocol (2), reserved (2), ifindex (4), hatype (2),
            // pkttype (1), addr len (1), addr (8): 20 bytes.
            if data.len() < 20 {
                return Err("Linux cooked v2 header truncated".into());
            }
            let proto = u16::from_be_bytes([data[0], data[1]]);
            SlicedPacket::from_ether_type(EtherType(proto), &data[20..])
        }
        LinkType::RawIp => SlicedPacket::from_ip(data),
        LinkType::Null => {
            let Some(fam) = data.get(..4) else {
                return Err("loopback header truncated".into());
            };
            // The family is in the capturing host's byte order; IPv4 is 2
            // everywhere, IPv6 is 10, 24, 28 or 30 depending on the system.
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let fam = le.min(be);
            if !matches!(fam, 2 | 10 | 24 | 28 | 30) {
                return Err(format!("loopback address family {fam} is not IP"));
            }
            SlicedPacket::from_ip(&data[4..])
        }
        LinkType::Other(n) => return Err(format!("link type {n} is not read")),
    }
    .map_err(|e| e.to_string())?;
    Ok(sliced)
}

/// IPv4 datagrams held while their fragments arrive; past that the oldest
/// is given up.
const MAX_FRAGMENTED: usize = 64;
/// The largest IPv4 payload (65,535 bytes less a 20-byte header).
const MAX_DATAGRAM: usize = 65_515;

/// Fragments of one IPv4 or IPv6 datagram.
#[derive(Debug)]
struct Held {
    key: (IpAddr, IpAddr, u8, u32),
    pieces: Vec<(usize, Vec<u8>)>,
    total: Option<usize>,
    bytes: usize,
}

impl Held {
    /// The whole payload, once every byte up to the last fragment is here.
    fn whole(&mut self) -> Option<Vec<u8>> {
        let total = self.total?;
        self.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0;
        for (o, b) in &self.pieces {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + b.len());
        }
        if covered < total {
            return None;
        }
        let mut out = vec![0u8; total];
        for (o, b) in &self.pieces {
            let end = (o + b.len()).min(total);
            if *o < end {
                out[*o..end].copy_from_slice(&b[..end - o]);
            }
        }
        Some(out)
    }
}

/// Per-flow counters, for `--flows`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowStats {
    pub packets: u64,
    /// Transport payload bytes.
    pub bytes: u64,
    pub sip: u64,
    pub rtp: u64,
    pub rtcp: u64,
    /// RTP packets per SSRC.
    pub ssrc: BTreeMap<u32, u64>,
    /// The destination was announced in an SDP body of the capture.
    pub sdp_media: bool,
    /// TCP: holes in the byte stream that were skipped, and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// TCP: the stream stopped being framed as SIP (or as RFC 4571 RTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_framed: Option<String>,
    /// TCP: the stream carried RTP framed by RFC 4571 (a 16-bit length
    /// before each packet).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rfc4571: bool,
}

impl FlowStats {
    /// What the flow mostly carried.
    pub fn protocol(&self, t: Transport) -> &'static str {
        if self.sip > 0 {
            "SIP"
        } else if self.rtp > 0 && (self.rtp * 2 >= self.packets || self.rfc4571) {
            "RTP"
        } else if self.rtcp > 0 && self.rtcp * 2 >= self.packets {
            "RTCP"
        } else {
            transport_name(t)
        }
    }
}

/// TCP reassembly state of one direction.
#[derive(Debug)]
struct Stream {
    next: Option<u32>,
    /// Held segments: sequence number, bytes, and the frame that carried them.
    pending: Vec<(u32, Vec<u8>, At)>,
    pending_bytes: usize,
    framer: StreamFramer,
    /// After a gap: drop bytes until a line that starts a SIP message.
    resync: bool,
    /// While resynchronising: the current line so far.
    rbuf: Vec<u8>,
    /// Where a stream joined mid-way was taken up: bytes before it are not
    /// decoded (the framer is already past them).
    origin: Option<u32>,
    broken: bool,
    /// RFC 4571 framed RTP (decided by the stream's first bytes): the bytes
    /// of the frame not yet complete.
    rtp: Option<Vec<u8>>,
    /// The stream's first bytes have been seen (SIP or RTP decided).
    decided: bool,
}

impl Stream {
    fn new() -> Self {
        Stream {
            next: None,
            pending: Vec::new(),
            pending_bytes: 0,
            framer: StreamFramer::new(DEFAULT_MAX_MESSAGE),
            resync: false,
            rbuf: Vec::new(),
            origin: None,
            broken: false,
            rtp: None,
            decided: false,
        }
    }
}

/// Do these bytes start an RFC 4571 frame holding RTP (or RTCP) version 2?
fn starts_rfc4571(data: &[u8]) -> bool {
    data.len() >= 3 && u16::from_be_bytes([data[0], data[1]]) >= 12 && data[2] >> 6 == 2
}

#[derive(Debug)]
struct Flow {
    first: u64,
    stats: FlowStats,
    stream: Option<Box<Stream>>,
}

/// The frame a byte arrived in: its number and time.
#[derive(Debug, Clone, Copy)]
struct At {
    frame: u64,
    time: Duration,
}

/// Reads frames into SIP messages and flow statistics.
#[derive(Debug, Default)]
pub struct Decoder {
    flows: HashMap<FlowKey, Flow>,
    /// Media destinations announced in SDP bodies.
    media: HashSet<SocketAddr>,
    media_ports: HashSet<u16>,
    pub frames: u64,
    /// Frames with no UDP or TCP packet in them.
    pub skipped: u64,
    /// Packets of flows past the tracking limit.
    pub untracked: u64,
    pub notes: Vec<Note>,
    pub notes_dropped: u64,
    /// UDP datagrams that start like a SIP message but cannot be read as
    /// one (a Content-Length past the datagram, a broken header), kept for
    /// `lint`.
    pub unreadable: Vec<Unreadable>,
    fragments: Vec<Held>,
    /// With [`Decoder::keep_tcp_rtp`]: the RTP packets of RFC 4571 framed
    /// TCP streams, with the frame and time that completed each.
    pub tcp_rtp: Vec<(FlowKey, u64, Duration, Vec<u8>)>,
    /// Bytes of `tcp_rtp` still allowed; `None`: none are kept.
    tcp_rtp_budget: Option<usize>,
    /// `tcp_rtp` has been full once (said in a note).
    tcp_rtp_full: bool,
}

/// A datagram that starts with a SIP start line but is not a SIP message.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub frame: u64,
    pub flow: FlowKey,
    pub reason: String,
    /// Its first bytes.
    pub bytes: Vec<u8>,
}

/// Could this line start a SIP message?
fn starts_message(line: &[u8]) -> bool {
    if line.starts_with(b"SIP/2.0 ") {
        return true;
    }
    let Some(sp) = line.iter().take(33).position(|b| *b == b' ') else {
        // All there is may be the start of a method or of `SIP/2.0`.
        return !line.is_empty()
            && line.len() <= 32
            && (line.iter().all(|b| b.is_ascii_uppercase()) || b"SIP/2.0".starts_with(line));
    };
    // A request line: a method, and `SIP/2.0` at the end of the line (when
    // the line is all there).
    sp > 0
        && line[..sp].iter().all(|b| b.is_ascii_uppercase())
        && match line.iter().take(2048).position(|b| *b == b'\n') {
            Some(nl) => line[..nl].windows(8).any(|w| w == b" SIP/2.0"),
            None => line.len() < 2048,
        }
}

/// Offset of the first line in `data` that starts a SIP message.
fn find_message_start(data: &[u8]) -> Option<usize> {
    if starts_message(data) {
        return Some(0);
    }
    data.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .find(|&i| i < data.len() && starts_message(&data[i..]))
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn note(&mut self, frame: u64, text: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(Note { frame, text });
        } else {
            self.notes_dropped += 1;
        }
    }

    /// Read one frame; each SIP message it completes goes to `out`.
    pub fn push(&mut self, f: &Frame, out: &mut dyn FnMut(SipEvent)) {
        self.frames += 1;
        match dissect(f.link, &f.data) {
            Ok(p) => self.packet(f, p, out),
            Err(e) if e == FRAGMENT => {
                if let Some((src, dst, whole)) = self.defragment(f) {
                    match etherparse::UdpSlice::from_slice(&whole) {
                        Ok(u) => {
                            let p = Packet {
                                src: SocketAddr::new(src, u.source_port()),
                                dst: SocketAddr::new(dst, u.destination_port()),
                                transport: Transport::Udp,
                                tcp: None,
                                payload: u.payload(),
                            };
                            self.packet(f, p, out);
                        }
                        Err(_) => self.skipped += 1,
                    }
                }
            }
            Err(_) => self.skipped += 1,
        }
    }

    /// Hold an IPv4 or IPv6 fragment of a UDP datagram; hand up the
    /// source, the destination and the whole IP payload when this one
    /// completes it. At most [`MAX_FRAGMENTED`] datagrams are held, each
    /// up to [`MAX_DATAGRAM`] bytes.
    fn defragment(&mut self, f: &Frame) -> Option<(IpAddr, IpAddr, Vec<u8>)> {
        let sliced = slice_link(f.link, &f.data).ok()?;
        let (key, offset, more, data) = match &sliced.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                let key = (
                    IpAddr::from(h.source_addr()),
                    IpAddr::from(h.destination_addr()),
                    h.protocol().0,
                    u32::from(h.identification()),
                );
                let offset = usize::from(h.fragments_offset().value()) * 8;
                (key, offset, h.more_fragments(), v4.payload().payload)
            }
            Some(NetSlice::Ipv6(v6)) => {
                let frag = v6.extensions().clone().into_iter().find_map(|e| match e {
                    etherparse::Ipv6ExtensionSlice::Fragment(fh) => Some(fh),
                    _ => None,
                });
                let Some(fh) = frag else {
                    self.skipped += 1;
                    return None;
                };
                let h = v6.header();
                let key = (
                    IpAddr::from(h.source_addr()),
                    IpAddr::from(h.destination_addr()),
                    fh.next_header().0,
                    fh.identification(),
                );
                let offset = usize::from(fh.fragment_offset().value()) * 8;
                (key, offset, fh.more_fragments(), v6.payload().payload)
            }
            _ => {
                self.skipped += 1;
                return None;
            }
        };
        if key.2 != 17 {
            // Fragmented TCP is not put back together.
            self.skipped += 1;
            return None;
        }
        if offset + data.len() > MAX_DATAGRAM {
            self.note(
                f.number,
                format!("IP fragment past {MAX_DATAGRAM} bytes; dropped"),
            );
            return None;
        }
        let i = match self.fragments.iter().position(|h| h.key == key) {
            Some(i) => i,
            None => {
                if self.fragments.len() >= MAX_FRAGMENTED {
                    let gone = self.fragments.remove(0);
                    let text = format!(
                        "IP datagram {} -> {} id {} never completed; dropped",
                        gone.key.0, gone.key.1, gone.key.3
                    );
                    self.note(f.number, text);
                }
                self.fragments.push(Held {
                    key,
                    pieces: Vec::new(),
                    total: None,
                    bytes: 0,
                });
                self.fragments.len() - 1
            }
        };
        let held = &mut self.fragments[i];
        if held.bytes + data.len() > 2 * MAX_DATAGRAM {
            self.fragments.remove(i);
            self.note(f.number, "IP fragments overlap without end; dropped".into());
            return None;
        }
        held.bytes += data.len();
        held.pieces.push((offset, data.to_vec()));
        if !more {
            held.total = Some(offset + data.len());
        }
        let whole = held.whole()?;
        self.fragments.remove(i);
        Some((key.0, key.1, whole))
    }

    fn packet(&mut self, f: &Frame, p: Packet, out: &mut dyn FnMut(SipEvent)) {
        let key = FlowKey {
            transport: p.transport,
            src: p.src,
            dst: p.dst,
        };
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= MAX_FLOWS {
                self.untracked += 1;
                return;
            }
            self.flows.insert(
                key,
                Flow {
                    first: f.number,
                    stats: FlowStats::default(),
                    stream: None,
                },
            );
        }
        if let Some(flow) = self.flows.get_mut(&key) {
            flow.stats.packets += 1;
            flow.stats.bytes += p.payload.len() as u64;
        }
        match p.tcp {
            None => self.udp(f, key, p.payload, out),
            Some(meta) => self.tcp(
                At {
                    frame: f.number,
                    time: f.time,
                },
                key,
                meta,
                p.payload,
                out,
            ),
        }
    }

    fn udp(&mut self, f: &Frame, key: FlowKey, payload: &[u8], out: &mut dyn FnMut(SipEvent)) {
        if payload.first().is_some_and(|b| b.is_ascii_alphabetic()) {
            match SipMessage::parse(payload) {
                Ok(parsed) => {
                    self.sip(f.number, f.time, key, parsed.message, parsed.findings, out);
                    return;
                }
                Err(e) if starts_message(payload) && self.unreadable.len() < MAX_NOTES => {
                    self.unreadable.push(Unreadable {
                        frame: f.number,
                        flow: key,
                        reason: e.to_string(),
                        bytes: payload[..payload.len().min(2048)].to_vec(),
                    });
                }
                Err(_) => {}
            }
        }
        let announced = self.media.contains(&key.dst) || self.media_ports.contains(&key.dst.port());
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        if payload.len() < 12 || payload[0] >> 6 != 2 {
            return;
        }
        let pt = payload[1] & 0x7f;
        if (200..=204).contains(&payload[1]) {
            flow.stats.rtcp += 1;
            return;
        }
        // Static audio/video payload types (RFC 3551) and the dynamic range.
        let plausible = matches!(
            pt,
            0 | 3 | 4 | 8 | 9 | 18 | 26 | 31 | 32 | 33 | 34 | 96..=127
        );
        if announced || plausible {
            let ssrc = u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]]);
            flow.stats.rtp += 1;
            flow.stats.sdp_media |= announced;
            *flow.stats.ssrc.entry(ssrc).or_insert(0) += 1;
        }
    }

    fn sip(
        &mut self,
        frame: u64,
        time: Duration,
        key: FlowKey,
        message: SipMessage,
        findings: Vec<crate::finding::Finding>,
        out: &mut dyn FnMut(SipEvent),
    ) {
        if let Some(flow) = self.flows.get_mut(&key) {
            flow.stats.sip += 1;
        }
        self.learn_sdp(&message);
        out(SipEvent {
            frame,
            time,
            flow: key,
            message,
            findings,
        });
    }

    /// Remember the media addresses an SDP body announces (`c=` and `m=`).
    fn learn_sdp(&mut self, m: &SipMessage) {
        let is_sdp = m
            .headers
            .get("Content-Type")
            .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/sdp"));
        if !is_sdp || self.media_ports.len() > 4096 {
            return;
        }
        let body = String::from_utf8_lossy(&m.body);
        let mut addr: Option<IpAddr> = None;
        for line in body.lines() {
            let line = line.trim();
            if let Some(c) = line.strip_prefix("c=") {
                if let Some(a) = c.split_whitespace().nth(2) {
                    addr = a.split('/').next().and_then(|a| a.parse().ok()).or(addr);
                }
            } else if let Some(media) = line.strip_prefix("m=") {
                if let Some(port) = media.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                    self.media_ports.insert(port);
                    if let Some(a) = addr {
                        self.media.insert(SocketAddr::new(a, port));
                    }
                }
            }
        }
    }

    fn tcp(
        &mut self,
        f: At,
        key: FlowKey,
        meta: TcpMeta,
        payload: &[u8],
        out: &mut dyn FnMut(SipEvent),
    ) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let st = flow.stream.get_or_insert_with(|| Box::new(Stream::new()));
        if meta.syn {
            // A new connection on the same ports starts a fresh stream.
            **st = Stream::new();
            st.next = Some(meta.seq.wrapping_add(1));
            return;
        }
        if payload.is_empty() {
            return;
        }
        let full = st.pending.len() >= MAX_PENDING_SEGMENTS
            || st.pending_bytes + payload.len() > MAX_PENDING_BYTES;
        let next = match st.next {
            Some(n) => n,
            // Joined mid-stream (no SYN seen): the stream starts with the
            // first segment that starts a message. Segments before it are
            // held, since they may be the rest of a message whose start
            // arrives later (out of order).
            None if starts_message(payload) || starts_rfc4571(payload) => {
                st.origin = Some(meta.seq);
                *st.next.insert(meta.seq)
            }
            None if !full => {
                st.pending_bytes += payload.len();
                st.pending.push((meta.seq, payload.to_vec(), f));
                return;
            }
            None => {
                self.skip_gap(f, key, out);
                return self.tcp(f, key, meta, payload, out);
            }
        };
        let ahead = meta.seq.wrapping_sub(next) as i32;
        if ahead > 0 {
            if full {
                self.skip_gap(f, key, out);
                return self.tcp(f, key, meta, payload, out);
            }
            st.pending_bytes += payload.len();
            st.pending.push((meta.seq, payload.to_vec(), f));
            return;
        }
        let late = st
            .origin
            .is_some_and(|o| (meta.seq.wrapping_sub(o) as i32) < 0);
        let old = ahead.unsigned_abs() as usize;
        if late {
            let text = format!(
                "tcp {} -> {}: {} bytes from before the first message read on this \
                 connection arrived late; not decoded",
                key.src,
                key.dst,
                payload.len()
            );
            self.note(f.frame, text);
        } else if old < payload.len() {
            self.deliver(f, key, &payload[old..], out);
        }
        self.drain_pending(f, key, out);
    }

    /// Deliver every held segment that now starts at or before the next
    /// expected byte.
    fn drain_pending(&mut self, f: At, key: FlowKey, out: &mut dyn FnMut(SipEvent)) {
        loop {
            let Some(st) = self.flows.get_mut(&key).and_then(|fl| fl.stream.as_mut()) else {
                return;
            };
            let Some(next) = st.next else { return };
            let Some(i) = st
                .pending
                .iter()
                .position(|(s, _, _)| s.wrapping_sub(next) as i32 <= 0)
            else {
                return;
            };
            let (seq, data, at) = st.pending.swap_remove(i);
            st.pending_bytes -= data.len();
            let old = next.wrapping_sub(seq) as usize;
            if old < data.len() {
                // Held bytes complete a message when the hole before them
                // fills, with the frame that filled it.
                let at = if f.frame == 0 { at } else { f };
                self.deliver(at, key, &data[old..], out);
            }
        }
    }

    /// Give up on the hole before the earliest held segment: count it,
    /// jump over it, and look for the next message start.
    fn skip_gap(&mut self, f: At, key: FlowKey, out: &mut dyn FnMut(SipEvent)) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let Some(st) = flow.stream.as_mut() else {
            return;
        };
        let Some(next) = st.next else {
            // No segment started a message: start at the earliest held one
            // and look for a message start in the bytes.
            let base = st.pending.first().map_or(0, |p| p.0.wrapping_sub(1 << 30));
            let earliest = st
                .pending
                .iter()
                .map(|p| p.0)
                .min_by_key(|s| s.wrapping_sub(base));
            st.next = earliest;
            st.resync = true;
            return self.drain_pending(f, key, out);
        };
        let Some(earliest) = st
            .pending
            .iter()
            .map(|(s, _, at)| (*s, *at))
            .min_by_key(|(s, _)| s.wrapping_sub(next))
        else {
            return;
        };
        let (earliest, at) = earliest;
        let noted = if f.frame == 0 { at } else { f };
        let missing = earliest.wrapping_sub(next);
        flow.stats.gaps += 1;
        flow.stats.gap_bytes += u64::from(missing);
        st.next = Some(earliest);
        st.framer = StreamFramer::new(DEFAULT_MAX_MESSAGE);
        st.resync = true;
        st.rbuf.clear();
        st.broken = false;
        let text = format!(
            "tcp {} -> {}: {missing} bytes missing from the stream; skipped to the next message",
            key.src, key.dst
        );
        self.note(noted.frame, text);
        self.drain_pending(f, key, out);
    }

    fn deliver(&mut self, f: At, key: FlowKey, data: &[u8], out: &mut dyn FnMut(SipEvent)) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let Some(st) = flow.stream.as_mut() else {
            return;
        };
        st.next = st.next.map(|n| n.wrapping_add(data.len() as u32));
        if st.broken {
            return;
        }
        // The stream's first three bytes say whether it is SIP or RFC 4571
        // framed RTP; until they are here they wait in `rbuf`.
        let head;
        let mut data = data;
        if !st.decided && !st.resync {
            st.rbuf.extend_from_slice(data);
            if st.rbuf.len() < 3 {
                return;
            }
            st.decided = true;
            head = std::mem::take(&mut st.rbuf);
            data = &head;
            if !starts_message(data) && starts_rfc4571(data) {
                st.rtp = Some(Vec::new());
                flow.stats.rfc4571 = true;
            }
        }
        if st.rtp.is_some() {
            return self.rfc4571(f, key, data);
        }
        if st.resync {
            // Bytes since the gap, kept from the last line start, until a
            // line that starts a message has arrived.
            st.rbuf.extend_from_slice(data);
            match find_message_start(&st.rbuf) {
                Some(i) => {
                    let b = std::mem::take(&mut st.rbuf);
                    st.framer.push(&b[i..]);
                    st.resync = false;
                }
                None => {
                    let line = st
                        .rbuf
                        .iter()
                        .rposition(|b| *b == b'\n')
                        .map_or(0, |p| p + 1);
                    st.rbuf.drain(..line);
                    if st.rbuf.len() > MAX_RESYNC_LINE {
                        let n = st.rbuf.len() - MAX_RESYNC_LINE;
                        st.rbuf.drain(..n);
                    }
                    return;
                }
            }
        } else {
            st.framer.push(data);
        }
        let mut items = Vec::new();
        while let Some(item) = st.framer.next_item() {
            items.push(item);
        }
        for item in items {
            match item {
                Framed::Message(_, parsed) => match *parsed {
                    Ok(p) => self.sip(f.frame, f.time, key, p.message, p.findings, out),
                    Err(e) => {
                        let text =
                            format!("tcp {} -> {}: not a SIP message: {e}", key.src, key.dst);
                        self.note(f.frame, text);
                    }
                },
                Framed::Keepalive => {}
                Framed::Broken(fault) => {
                    let text = format!("tcp {} -> {}: {fault}", key.src, key.dst);
                    if let Some(flow) = self.flows.get_mut(&key) {
                        flow.stats.not_framed = Some(fault.to_string());
                        if let Some(st) = flow.stream.as_mut() {
                            st.broken = true;
                        }
                    }
                    self.note(f.frame, text);
                }
            }
        }
    }

    /// Keep the RTP packets of RFC 4571 framed TCP streams in `tcp_rtp`
    /// (for `lint`), up to `max_bytes` of them.
    pub fn keep_tcp_rtp(&mut self, max_bytes: usize) {
        self.tcp_rtp_budget = Some(max_bytes);
    }

    /// Bytes of an RFC 4571 framed RTP stream: whole frames are counted
    /// like RTP datagrams; a length that cannot frame RTP stops the stream.
    fn rfc4571(&mut self, f: At, key: FlowKey, data: &[u8]) {
        let announced = self.media.contains(&key.dst) || self.media_ports.contains(&key.dst.port());
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let Some(st) = flow.stream.as_mut() else {
            return;
        };
        let Some(buf) = st.rtp.as_mut() else {
            return;
        };
        buf.extend_from_slice(data);
        let mut at = 0;
        let mut fault = None;
        let mut packets = Vec::new();
        while buf.len() - at >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
            if len < 12 || (buf.len() - at >= 3 && buf[at + 2] >> 6 != 2) {
                fault = Some(format!(
                    "an RFC 4571 frame of {len} bytes that does not hold RTP version 2"
                ));
                break;
            }
            if buf.len() - at < 2 + len {
                break;
            }
            packets.push(buf[at + 2..at + 2 + len].to_vec());
            at += 2 + len;
        }
        buf.drain(..at);
        let mut full_note = false;
        if let Some(why) = &fault {
            st.broken = true;
            st.rtp = Some(Vec::new());
            flow.stats.not_framed = Some(why.clone());
        }
        for p in packets {
            if (200..=204).contains(&p[1]) {
                flow.stats.rtcp += 1;
                continue;
            }
            let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
            flow.stats.rtp += 1;
            flow.stats.sdp_media |= announced;
            *flow.stats.ssrc.entry(ssrc).or_insert(0) += 1;
            if let Some(left) = self.tcp_rtp_budget.as_mut() {
                if *left >= p.len() {
                    *left -= p.len();
                    self.tcp_rtp.push((key, f.frame, f.time, p));
                } else if !self.tcp_rtp_full {
                    self.tcp_rtp_full = true;
                    full_note = true;
                }
            }
        }
        if full_note {
            let text = format!(
                "tcp {} -> {}: RTP over TCP past the {} bytes kept for judging is counted, not judged",
                key.src,
                key.dst,
                self.tcp_rtp.iter().map(|p| p.3.len()).sum::<usize>()
            );
            self.note(f.frame, text);
        }
        if let Some(why) = fault {
            let text = format!("tcp {} -> {}: {why}; framing stopped", key.src, key.dst);
            self.note(f.frame, text);
        }
    }

    /// The capture is over: give up on every remaining hole, and report
    /// messages left unfinished.
    pub fn finish(&mut self, last_frame: u64, out: &mut dyn FnMut(SipEvent)) {
        // A hole given up here is reported at the frame after it.
        let f = At {
            frame: 0,
            time: Duration::ZERO,
        };
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for key in keys {
            for _ in 0..MAX_PENDING_SEGMENTS + 1 {
                let has_pending = self
                    .flows
                    .get(&key)
                    .and_then(|fl| fl.stream.as_ref())
                    .is_some_and(|s| !s.pending.is_empty());
                if !has_pending {
                    break;
                }
                self.skip_gap(f, key, out);
            }
            let left = self
                .flows
                .get(&key)
                .and_then(|fl| fl.stream.as_ref())
                .filter(|s| !s.broken && s.framer.in_message())
                .map(|s| s.framer.buffered().len());
            if let Some(n) = left {
                let text = format!(
                    "tcp {} -> {}: the capture ends inside a message ({n} bytes of it)",
                    key.src, key.dst
                );
                self.note(last_frame, text);
            }
        }
    }

    /// Every flow with its counters, in the order they first appeared.
    pub fn flows(&self) -> Vec<(FlowKey, &FlowStats)> {
        let mut v: Vec<(u64, FlowKey, &FlowStats)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.first, *k, &f.stats))
            .collect();
        v.sort_by_key(|(first, k, _)| (*first, k.src, k.dst));
        v.into_iter().map(|(_, k, s)| (k, s)).collect()
    }
}

/// `2026-12-03T23:31:56.123456Z`.
pub fn format_time(t: Duration) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match chrono::DateTime::from_timestamp(secs, t.subsec_nanos()) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{}.{:06}", t.as_secs(), t.subsec_micros()),
    }
}

/// `REGISTER sip:... CSeq 1` or `200 OK CSeq 1 REGISTER`.
pub fn summary(m: &SipMessage) -> String {
    let cseq = m.headers.get("CSeq").map(str::trim).unwrap_or("-");
    let cseq = cseq.split_whitespace().collect::<Vec<_>>();
    if m.is_request() {
        format!("{} CSeq {}", m.summary(), cseq.first().unwrap_or(&"-"))
    } else {
        format!("{} CSeq {}", m.summary(), cseq.join(" "))
    }
}

/// The default output: one line per message.
pub fn line(e: &SipEvent) -> String {
    format!(
        "{} {} -> {} {} {} Call-ID {}",
        format_time(e.time),
        e.flow.src,
        e.flow.dst,
        transport_name(e.flow.transport),
        summary(&e.message),
        e.message.call_id().unwrap_or("-").trim()
    )
}

/// `--format json`: one object per message.
pub fn json(e: &SipEvent) -> serde_json::Value {
    let m = &e.message;
    let headers: Vec<serde_json::Value> = m
        .headers
        .0
        .iter()
        .map(|(n, v)| serde_json::json!([n, v]))
        .collect();
    let cseq = m.cseq();
    serde_json::json!({
        "type": "sip",
        "frame": e.frame,
        "time": format_time(e.time),
        "transport": transport_name(e.flow.transport),
        "src": e.flow.src.to_string(),
        "dst": e.flow.dst.to_string(),
        "method": m.method(),
        "uri": m.uri(),
        "status": m.status(),
        "reason": match &m.start {
            crate::proto::sip::StartLine::Response { reason, .. } => Some(reason.as_str()),
            _ => None,
        },
        "call_id": m.call_id().map(str::trim),
        "cseq": cseq.as_ref().map(|c| c.seq),
        "cseq_method": cseq.as_ref().map(|c| c.method.as_str()),
        "headers": headers,
        "body_length": m.body.len(),
        "findings": e.findings,
    })
}

/// `--flows`: one row per flow direction.
pub fn flow_table(d: &Decoder) -> String {
    flow_table_where(d, &|_, _| true)
}

/// [`flow_table`] of the flows `keep` holds for.
pub fn flow_table_where(d: &Decoder, keep: &dyn Fn(&FlowKey, &FlowStats) -> bool) -> String {
    let mut s = format!(
        "{:<5} {:<47} {:<5} {:>8} {:>10}  {}\n",
        "PROTO", "FLOW", "L4", "PACKETS", "BYTES", "DETAIL"
    );
    for (k, st) in d.flows().into_iter().filter(|(k, st)| keep(k, st)) {
        let mut detail = Vec::new();
        if st.sip > 0 {
            detail.push(format!("{} SIP messages", st.sip));
        }
        if !st.ssrc.is_empty() {
            let ssrcs: Vec<String> = st
                .ssrc
                .iter()
                .map(|(ssrc, n)| format!("0x{ssrc:08x}={n}"))
                .collect();
            detail.push(format!("RTP SSRC {}", ssrcs.join(" ")));
        }
        if st.rfc4571 {
            detail.push("RFC 4571 framed".into());
        }
        if st.sdp_media {
            detail.push("port from SDP".into());
        }
        if st.rtcp > 0 {
            detail.push(format!("{} RTCP", st.rtcp));
        }
        if st.gaps > 0 {
            detail.push(format!("{} gaps ({} bytes)", st.gaps, st.gap_bytes));
        }
        if let Some(why) = &st.not_framed {
            detail.push(format!("framing stopped: {why}"));
        }
        s.push_str(&format!(
            "{:<5} {:<47} {:<5} {:>8} {:>10}  {}\n",
            st.protocol(k.transport),
            format!("{} -> {}", k.src, k.dst),
            transport_name(k.transport),
            st.packets,
            st.bytes,
            detail.join("; ")
        ));
    }
    s
}

/// `--flows --format json`: the same rows as objects.
pub fn flows_json(d: &Decoder) -> serde_json::Value {
    flows_json_where(d, &|_, _| true)
}

/// [`flows_json`] of the flows `keep` holds for.
pub fn flows_json_where(
    d: &Decoder,
    keep: &dyn Fn(&FlowKey, &FlowStats) -> bool,
) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = d
        .flows()
        .into_iter()
        .filter(|(k, st)| keep(k, st))
        .map(|(k, st)| {
            let ssrc: BTreeMap<String, u64> = st
                .ssrc
                .iter()
                .map(|(s, n)| (format!("0x{s:08x}"), *n))
                .collect();
            let mut row = serde_json::json!({
                "transport": transport_name(k.transport),
                "src": k.src.to_string(),
                "dst": k.dst.to_string(),
                "protocol": st.protocol(k.transport),
                "packets": st.packets,
                "bytes": st.bytes,
                "sip": st.sip,
                "rtp": st.rtp,
                "rtcp": st.rtcp,
                "ssrc": ssrc,
                "sdp_media": st.sdp_media,
                "gaps": st.gaps,
                "gap_bytes": st.gap_bytes,
                "not_framed": st.not_framed,
            });
            if st.rfc4571 {
                row["rfc4571"] = serde_json::Value::Bool(true);
            }
            row
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;
    use std::borrow::Cow;

    const A: [u8; 4] = [192, 0, 2, 1];
    const B: [u8; 4] = [192, 0, 2, 2];

    fn msg(method: &str, cseq: u32, body: &str) -> Vec<u8> {
        format!(
            "{method} sip:34020000002000000001@192.0.2.2 SIP/2.0\r\n\
             Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{cseq}\r\n\
             From: <sip:34020000001320000001@3402000000>;tag=1\r\n\
             To: <sip:34020000002000000001@3402000000>\r\n\
             Call-ID: call-{cseq}\r\n\
             CSeq: {cseq} {method}\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn tcp_frame(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(A, B, 64)
            .tcp(5060, 40000, seq, 65535)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn udp_frame(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(A, B, 64)
            .udp(src, dst)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn run(link: LinkType, frames: &[Vec<u8>]) -> (Decoder, Vec<SipEvent>) {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for (i, data) in frames.iter().enumerate() {
            let f = Frame {
                number: i as u64 + 1,
                time: Duration::from_secs(i as u64),
                link,
                data: Cow::Borrowed(data),
                orig_len: data.len() as u32,
            };
            d.push(&f, &mut |e| got.push(e));
        }
        d.finish(frames.len() as u64, &mut |e| got.push(e));
        (d, got)
    }

    fn cseqs(evs: &[SipEvent]) -> Vec<u32> {
        evs.iter().map(|e| e.message.cseq().unwrap().seq).collect()
    }

    #[test]
    fn tcp_segments_are_reordered_split_and_coalesced() {
        let m1 = msg("MESSAGE", 1, "");
        let m2 = msg("MESSAGE", 2, "v=0\r\n");
        let m3 = msg("INVITE", 3, "v=0\r\nm=video 30000 RTP/AVP 96\r\n");
        // m1 and m2 in one segment; m3 in three, the last arriving first,
        // one of them retransmitted.
        let mut s = m1.clone();
        s.extend_from_slice(&m2);
        let base = 1000u32;
        let off3 = base + s.len() as u32;
        let (p1, rest) = m3.split_at(10);
        let (p2, p3) = rest.split_at(40);
        let frames = vec![
            tcp_frame(base, &s),
            tcp_frame(off3 + 50, p3),
            tcp_frame(off3, p1),
            tcp_frame(off3, p1),
            tcp_frame(off3 + 10, p2),
        ];
        let (d, evs) = run(LinkType::Ethernet, &frames);
        assert_eq!(cseqs(&evs), vec![1, 2, 3]);
        assert_eq!(
            evs[2].frame, 5,
            "m3 completes with the frame that fills the hole"
        );
        assert_eq!(evs[2].message.body.len(), 31);
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        assert_eq!(
            d.media_ports.iter().copied().collect::<Vec<_>>(),
            vec![30000]
        );
    }

    #[test]
    fn tcp_sequence_numbers_wrap() {
        let m1 = msg("MESSAGE", 1, "");
        let m2 = msg("MESSAGE", 2, "");
        let start = u32::MAX - 20;
        let second = start.wrapping_add(m1.len() as u32);
        let (_, evs) = run(
            LinkType::Ethernet,
            &[tcp_frame(start, &m1), tcp_frame(second, &m2)],
        );
        assert_eq!(cseqs(&evs), vec![1, 2]);
    }

    #[test]
    fn a_hole_that_never_fills_is_reported_and_skipped() {
        let m1 = msg("MESSAGE", 1, "");
        let m2 = msg("MESSAGE", 2, "");
        let m3 = msg("MESSAGE", 3, "");
        let o2 = m1.len() as u32 + 1;
        let o3 = o2 + m2.len() as u32;
        // m2's second half never arrives: m2 is lost, m3 still decodes.
        let frames = vec![
            tcp_frame(1, &m1),
            tcp_frame(o2, &m2[..20]),
            tcp_frame(o3 - 5, &m2[m2.len() - 5..]),
            tcp_frame(o3, &m3),
        ];
        let (d, evs) = run(LinkType::Ethernet, &frames);
        assert_eq!(cseqs(&evs), vec![1, 3]);
        assert_eq!((evs[1].frame, evs[1].time), (4, Duration::from_secs(3)));
        assert_eq!(
            d.notes[0].frame, 3,
            "the gap is reported at the first frame after it"
        );
        let st = d.flows()[0].1.clone();
        assert_eq!(st.gaps, 1);
        assert_eq!(st.gap_bytes, m2.len() as u64 - 25);
        assert!(d.notes[0].text.contains("bytes missing"), "{:?}", d.notes);
    }

    #[test]
    fn a_stream_joined_mid_message_starts_at_the_next_message() {
        let m1 = msg("MESSAGE", 1, "");
        let m2 = msg("MESSAGE", 2, "");
        let m3 = msg("MESSAGE", 3, "");
        let o2 = 100 + m1.len() as u32;
        let o3 = o2 + m2.len() as u32;
        // The capture begins with the tail of m1, then m2 and m3.
        let frames = vec![
            tcp_frame(120, &m1[20..]),
            tcp_frame(o2, &m2),
            tcp_frame(o3, &m3),
        ];
        let (d, evs) = run(LinkType::Ethernet, &frames);
        assert_eq!(cseqs(&evs), vec![2, 3]);
        assert_eq!(d.notes.len(), 0, "{:?}", d.notes);
        // m3 before m2: the stream is taken up at m3, and m2 is reported.
        let frames = vec![
            tcp_frame(120, &m1[20..]),
            tcp_frame(o3, &m3),
            tcp_frame(o2, &m2),
        ];
        let (d, evs) = run(LinkType::Ethernet, &frames);
        assert_eq!(cseqs(&evs), vec![3]);
        assert!(d.notes[0].text.contains("arrived late"), "{:?}", d.notes);
        assert_eq!(d.notes[0].frame, 3);
        // Nothing but a tail: skipped at the end, and said so.
        let (d, evs) = run(LinkType::Ethernet, &[tcp_frame(7, &m1[20..])]);
        assert!(evs.is_empty());
        assert_eq!(d.flows()[0].1.gaps, 0);
    }

    #[test]
    fn a_message_cut_by_the_end_of_the_capture_is_reported() {
        let m1 = msg("MESSAGE", 1, "");
        let (d, evs) = run(LinkType::Ethernet, &[tcp_frame(1, &m1[..30])]);
        assert!(evs.is_empty());
        assert!(
            d.notes[0].text.contains("ends inside a message"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn every_link_type_reaches_the_sip_message() {
        let eth = udp_frame(5060, 5060, &msg("REGISTER", 7, ""));
        let ip = eth[14..].to_vec();
        let mut vlan = eth[..12].to_vec();
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        vlan.extend_from_slice(&eth[12..]);
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        // As `dumpcap -i any` writes a loopback frame (ARPHRD_LOOPBACK).
        let mut sll_lo = vec![0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll_lo.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6];
        sll2.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        sll2.extend_from_slice(&ip);
        let mut null_le = vec![2, 0, 0, 0];
        null_le.extend_from_slice(&ip);
        let mut null_be = vec![0, 0, 0, 2];
        null_be.extend_from_slice(&ip);
        for (link, data) in [
            (LinkType::Ethernet, eth.clone()),
            (LinkType::Ethernet, vlan),
            (LinkType::RawIp, ip.clone()),
            (LinkType::LinuxSll, sll),
            (LinkType::LinuxSll, sll_lo),
            (LinkType::LinuxSll2, sll2),
            (LinkType::Null, null_le),
            (LinkType::Null, null_be),
        ] {
            let (_, evs) = run(link, &[data]);
            assert_eq!(cseqs(&evs), vec![7], "{link:?}");
            assert_eq!(evs[0].flow.src, "192.0.2.1:5060".parse().unwrap());
        }
        let mut v6 = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .udp(5060, 5062)
            .write(&mut v6, &msg("OPTIONS", 9, ""))
            .unwrap();
        let (_, evs) = run(LinkType::RawIp, &[v6]);
        assert_eq!(cseqs(&evs), vec![9]);
        assert_eq!(evs[0].flow.dst.port(), 5062);
    }

    /// `udp` (a whole UDP datagram: header and payload) in IPv4 fragments
    /// of at most `mtu` payload bytes, in Ethernet frames.
    fn fragments(udp: &[u8], id: u16, mtu: usize) -> Vec<Vec<u8>> {
        use etherparse::{Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header};
        let step = mtu / 8 * 8;
        udp.chunks(step)
            .enumerate()
            .map(|(i, chunk)| {
                let mut h = Ipv4Header::new(chunk.len() as u16, 64, IpNumber::UDP, A, B).unwrap();
                h.identification = id;
                h.more_fragments = (i + 1) * step < udp.len();
                h.fragment_offset = IpFragOffset::try_new((i * step / 8) as u16).unwrap();
                h.header_checksum = h.calc_header_checksum();
                let mut out = Vec::new();
                Ethernet2Header {
                    source: [2, 0, 0, 0, 0, 1],
                    destination: [2, 0, 0, 0, 0, 2],
                    ether_type: EtherType::IPV4,
                }
                .write(&mut out)
                .unwrap();
                h.write(&mut out).unwrap();
                out.extend_from_slice(chunk);
                out
            })
            .collect()
    }

    #[test]
    fn fragmented_udp_datagrams_are_put_back_together() {
        let big = msg("MESSAGE", 5, &"<Item/>".repeat(500));
        let eth = udp_frame(5060, 5060, &big);
        let udp = &eth[14 + 20..];
        let mut frags = fragments(udp, 77, 1480);
        assert_eq!(frags.len(), 3);
        frags.swap(0, 2);
        let (d, evs) = run(LinkType::Ethernet, &frags);
        assert_eq!(cseqs(&evs), vec![5]);
        assert_eq!(evs[0].message.body.len(), 3500);
        assert_eq!(
            evs[0].frame, 3,
            "the datagram is whole with its last fragment"
        );
        assert_eq!(d.flows()[0].1.packets, 1);
        // A missing fragment: nothing, and no panic.
        let (_, evs) = run(LinkType::Ethernet, &frags[..2]);
        assert!(evs.is_empty());
    }

    /// An Ethernet frame of an IPv6 fragment (fragment header, then `chunk`).
    fn ipv6_fragment(id: u32, offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
        let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        out.extend_from_slice(&[0x60, 0, 0, 0]);
        out.extend_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[44, 64]);
        let src: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        out.extend_from_slice(&src.octets());
        out.extend_from_slice(&dst.octets());
        let off = ((offset / 8) as u16) << 3 | u16::from(more);
        out.extend_from_slice(&[17, 0]);
        out.extend_from_slice(&off.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(chunk);
        out
    }

    #[test]
    fn fragmented_ipv6_udp_datagrams_are_put_back_together() {
        let big = msg("MESSAGE", 6, &"<Item/>".repeat(400));
        let mut udp = Vec::new();
        PacketBuilder::ipv6(
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "2001:db8::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            64,
        )
        .udp(5060, 5060)
        .write(&mut udp, &big)
        .unwrap();
        let udp = &udp[40..];
        let step = 1232;
        let mut frags: Vec<Vec<u8>> = udp
            .chunks(step)
            .enumerate()
            .map(|(i, c)| ipv6_fragment(9, i * step, (i + 1) * step < udp.len(), c))
            .collect();
        assert_eq!(frags.len(), 3);
        frags.swap(0, 1);
        let (d, evs) = run(LinkType::Ethernet, &frags);
        assert_eq!(cseqs(&evs), vec![6]);
        assert_eq!(evs[0].flow.src.to_string(), "[2001:db8::1]:5060");
        assert_eq!(d.skipped, 0);
        // Without its last fragment: nothing, and the datagram is held.
        let (_, evs) = run(LinkType::Ethernet, &frags[..2]);
        assert!(evs.is_empty());
        // Held datagrams are bounded: many incomplete ones push out the oldest.
        let many: Vec<Vec<u8>> = (0..(MAX_FRAGMENTED as u32 + 10))
            .map(|id| ipv6_fragment(id, 0, true, &udp[..step]))
            .collect();
        let (d, _) = run(LinkType::Ethernet, &many);
        assert_eq!(d.fragments.len(), MAX_FRAGMENTED);
        assert!(d.notes.iter().any(|n| n.text.contains("never completed")));
    }

    /// A TCP segment of the media flow 192.0.2.1:6000 -> 192.0.2.2:7000.
    fn media_segment(seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(A, B, 64)
            .tcp(6000, 7000, seq, 65535);
        let b = if syn { b.syn() } else { b };
        b.write(&mut out, payload).unwrap();
        out
    }

    fn rfc4571(packets: &[Vec<u8>]) -> Vec<u8> {
        packets
            .iter()
            .flat_map(|p| {
                let mut f = (p.len() as u16).to_be_bytes().to_vec();
                f.extend_from_slice(p);
                f
            })
            .collect()
    }

    #[test]
    fn rtp_framed_by_rfc4571_in_a_tcp_flow_is_counted() {
        let stream = rfc4571(&[
            rtp(96, 1, 0x0bebc201),
            rtp(96, 2, 0x0bebc201),
            rtp(96, 3, 0x0bebc201),
            rtp(200, 0, 0x0bebc201),
        ]);
        // Cut anywhere: inside a length, inside a packet.
        let cuts = [1, 30, stream.len() - 5];
        let mut frames = vec![media_segment(99, true, &[])];
        let mut at = 0;
        for c in cuts.iter().copied().chain([stream.len()]) {
            frames.push(media_segment(100 + at as u32, false, &stream[at..c]));
            at = c;
        }
        frames.swap(2, 3);
        let mut d = Decoder::new();
        d.keep_tcp_rtp(1 << 20);
        for (i, data) in frames.iter().enumerate() {
            let f = Frame {
                number: i as u64 + 1,
                time: Duration::from_secs(i as u64),
                link: LinkType::Ethernet,
                data: Cow::Borrowed(data),
                orig_len: data.len() as u32,
            };
            d.push(&f, &mut |_| {});
        }
        d.finish(frames.len() as u64, &mut |_| {});
        let flows = d.flows();
        let st = flows[0].1;
        assert!(st.rfc4571);
        assert_eq!(st.rtp, 3);
        assert_eq!(st.rtcp, 1);
        assert_eq!(st.ssrc.get(&0x0bebc201), Some(&3));
        assert_eq!(st.protocol(Transport::Tcp), "RTP");
        assert_eq!(d.tcp_rtp.len(), 3);
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        assert!(d.tcp_rtp.iter().all(|(_, _, _, p)| p.len() == 32));
        assert!(flow_table(&d).contains("RTP SSRC 0x0bebc201=3; RFC 4571 framed"));
        // What is kept for judging is bounded, and the rest is said.
        let mut small = Decoder::new();
        small.keep_tcp_rtp(40);
        for (i, data) in frames.iter().enumerate() {
            let f = Frame {
                number: i as u64 + 1,
                time: Duration::ZERO,
                link: LinkType::Ethernet,
                data: Cow::Borrowed(data),
                orig_len: data.len() as u32,
            };
            small.push(&f, &mut |_| {});
        }
        assert_eq!(small.tcp_rtp.len(), 1);
        assert_eq!(small.flows()[0].1.rtp, 3);
        assert_eq!(small.notes.len(), 1, "{:?}", small.notes);
        assert!(small.notes[0].text.contains("counted, not judged"));
        // Joined mid-stream (no SYN), and then a length that frames no RTP.
        let mut broken = rfc4571(&[rtp(96, 1, 7)]);
        broken.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
        let (d, _) = run(LinkType::Ethernet, &[media_segment(5, false, &broken)]);
        let st = d.flows()[0].1.clone();
        assert_eq!((st.rtp, st.rfc4571), (1, true));
        assert!(st.not_framed.unwrap().contains("does not hold RTP"));
    }

    proptest! {
        #[test]
        fn any_rfc4571_stream_decodes_without_panicking(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            // A valid first frame decides the stream; anything may follow.
            let mut stream = rfc4571(&[rtp(96, 1, 7)]);
            stream.extend_from_slice(&body);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut frames = vec![media_segment(99, true, &[])];
            let mut at = 0;
            for c in cuts {
                frames.push(media_segment(100 + at as u32, false, &stream[at..c]));
                at = c;
            }
            let (d, _) = run(LinkType::Ethernet, &frames);
            prop_assert!(d.flows()[0].1.rtp >= 1);
        }
    }

    fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0; 20]);
        p
    }

    #[test]
    fn rtp_is_counted_per_ssrc_and_sdp_ports_are_marked() {
        let mut invite = msg(
            "INVITE",
            1,
            "v=0\r\nc=IN IP4 192.0.2.2\r\nm=video 30000 RTP/AVP 96\r\n",
        );
        invite = {
            let mut f = Vec::new();
            PacketBuilder::ethernet2([2; 6], [3; 6])
                .ipv4(A, B, 64)
                .udp(5060, 5060)
                .write(&mut f, &invite)
                .unwrap();
            f
        };
        let frames = vec![
            invite,
            udp_frame(40000, 30000, &rtp(96, 1, 0x0100_0001)),
            udp_frame(40000, 30000, &rtp(0x80 | 96, 2, 0x0100_0001)),
            udp_frame(40000, 30000, &rtp(96, 1, 0x0100_0002)),
            // A payload type outside any plausible set, on an unannounced port.
            udp_frame(40002, 31000, &rtp(50, 1, 9)),
            udp_frame(40002, 31000, &[0x81, 200, 0, 6, 0, 0, 0, 9]),
            udp_frame(40002, 31000, &[0x81, 200, 0, 6, 0, 0, 0, 9, 0, 0, 0, 0]),
        ];
        let (d, evs) = run(LinkType::Ethernet, &frames);
        assert_eq!(evs.len(), 1);
        let flows = d.flows();
        let media = flows.iter().find(|(k, _)| k.dst.port() == 30000).unwrap().1;
        assert_eq!(media.protocol(Transport::Udp), "RTP");
        assert!(media.sdp_media);
        assert_eq!(
            media.ssrc.iter().map(|(s, n)| (*s, *n)).collect::<Vec<_>>(),
            vec![(0x0100_0001, 2), (0x0100_0002, 1)]
        );
        let other = flows.iter().find(|(k, _)| k.dst.port() == 31000).unwrap().1;
        assert_eq!((other.rtp, other.rtcp), (0, 1));
        let table = flow_table(&d);
        assert!(table.contains("0x01000001=2 0x01000002=1"), "{table}");
    }

    #[test]
    fn json_carries_the_fields_and_the_findings() {
        // Bytes past Content-Length in a datagram: read, and reported.
        let raw = String::from_utf8(msg("OPTIONS", 3, "")).unwrap() + "junk";
        let (_, evs) = run(LinkType::Ethernet, &[udp_frame(5060, 5060, raw.as_bytes())]);
        let j = json(&evs[0]);
        assert_eq!(j["method"], "OPTIONS");
        assert_eq!(j["call_id"], "call-3");
        assert_eq!(
            (j["cseq"].clone(), j["cseq_method"].clone()),
            (3.into(), "OPTIONS".into())
        );
        assert_eq!(j["status"], serde_json::Value::Null);
        assert_eq!(j["headers"][0][0], "Via");
        assert_eq!(j["body_length"], 0);
        let codes: Vec<&str> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["sip.body-longer-than-content-length"], "{j}");
    }

    #[test]
    fn summaries_name_method_status_and_cseq() {
        let m = SipMessage::parse(&msg("REGISTER", 4, "")).unwrap().message;
        assert_eq!(
            summary(&m),
            "REGISTER sip:34020000002000000001@192.0.2.2 CSeq 4"
        );
        let r = crate::proto::sip::response_to(&m, 200, None);
        assert_eq!(summary(&r), "200 OK CSeq 4 REGISTER");
    }

    proptest! {
        /// However a stream of messages is cut into segments, and however
        /// the segments are shuffled within a window, the same messages
        /// come out in the same order.
        #[test]
        fn any_segmentation_and_local_reordering_yields_the_same_messages(
            cuts in proptest::collection::vec(1usize..700, 1..40),
            swaps in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
            base in any::<u32>(),
        ) {
            let mut stream = Vec::new();
            for i in 1..=4u32 {
                stream.extend(msg("MESSAGE", i, &"x".repeat(i as usize * 37)));
            }
            let mut segs = Vec::new();
            let mut at = 0usize;
            for c in cuts.iter().cycle() {
                if at >= stream.len() {
                    break;
                }
                let end = (at + c).min(stream.len());
                segs.push((at, end));
                at = end;
            }
            // Swap neighbours, never the first segment (which starts the stream).
            for s in swaps {
                if segs.len() > 2 {
                    let i = 1 + s.index(segs.len() - 2);
                    segs.swap(i, i + 1);
                }
            }
            let frames: Vec<Vec<u8>> = segs
                .iter()
                .map(|(a, b)| tcp_frame(base.wrapping_add(*a as u32), &stream[*a..*b]))
                .collect();
            let (d, evs) = run(LinkType::Ethernet, &frames);
            prop_assert_eq!(cseqs(&evs), vec![1, 2, 3, 4]);
            prop_assert_eq!(d.notes.len(), 0);
            let bodies: Vec<usize> = evs.iter().map(|e| e.message.body.len()).collect();
            prop_assert_eq!(bodies, vec![37, 74, 111, 148]);
        }

        #[test]
        fn any_ipv4_fragments_decode_without_panicking(
            frags in proptest::collection::vec(
                (0u16..8192, any::<bool>(), 0u16..3, proptest::collection::vec(any::<u8>(), 0..64)),
                0..40),
        ) {
            use etherparse::{IpFragOffset, IpNumber, Ipv4Header};
            let frames: Vec<Vec<u8>> = frags.iter().map(|(off, more, id, data)| {
                let mut h = Ipv4Header::new(data.len() as u16, 64, IpNumber::UDP, A, B).unwrap();
                h.identification = *id;
                h.more_fragments = *more;
                h.fragment_offset = IpFragOffset::try_new(*off).unwrap();
                h.header_checksum = h.calc_header_checksum();
                let mut out = Vec::new();
                h.write(&mut out).unwrap();
                out.extend_from_slice(data);
                out
            }).collect();
            let _ = run(LinkType::RawIp, &frames);
        }

        #[test]
        fn any_frame_bytes_decode_without_panicking(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            link in 0usize..6,
        ) {
            let link = [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2,
                        LinkType::RawIp, LinkType::Null, LinkType::Other(9)][link];
            let _ = run(link, &[data]);
        }

        #[test]
        fn any_tcp_segments_decode_without_panicking(
            segs in proptest::collection::vec(
                (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..24),
            base in any::<u32>(),
        ) {
            let text = msg("MESSAGE", 1, "hello");
            let frames: Vec<Vec<u8>> = segs.iter().map(|(off, junk)| {
                let off = off % 400;
                let from = (off as usize).min(text.len());
                let mut p = text[from..].to_vec();
                p.truncate(junk.len().max(1));
                if junk.len() % 3 == 0 { p = junk.clone(); }
                tcp_frame(base.wrapping_add(off), &p)
            }).collect();
            let _ = run(LinkType::Ethernet, &frames);
        }
    }
}
