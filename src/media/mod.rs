//! I/O drivers for GB/T 28181 media (spec 媒体传输方式, 实时预览): a [`MediaSender`]
//! that streams an Annex B H.264/H.265 source as PS over RTP at real-time pace, and a
//! [`MediaReceiver`] that takes such a stream, judges it with
//! [`crate::proto::ps::validate::StreamValidator`] and keeps the packets as evidence.
//!
//! Both run over one of the three transports ([`Link`]): UDP (`RTP/AVP`), TCP where
//! this side connects (`a=setup:active`) and TCP where this side listens
//! (`a=setup:passive`); on TCP every RTP packet is framed by RFC 4571 (a 16-bit length).
//! Everything is bounded: connecting and accepting by a timeout, sending by a frame
//! count or a media duration, receiving by a duration, a frame count and a media
//! timeout (no packet for that long: the stream stopped, 断流). Both stop early on a
//! [`Cancel`].
//!
//! The protocol work is the sans-IO code in [`crate::proto::ps`] and
//! [`crate::proto::rtp`]; this module only paces, sends, reads and times.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use camcert::media::*;
//! use std::time::Duration;
//! let source = MediaSource::from_file("captures/sample-h264-320x240-25fps.h264", None)?;
//! let rx = MediaReceiver::open(Link::udp("127.0.0.1:0".parse()?), Duration::from_secs(1)).await?;
//! let tx = MediaSender::open(Link::udp_to("127.0.0.1:0".parse()?, rx.local_addr()), Duration::from_secs(1)).await?;
//! let cancel = Cancel::new();
//! let cfg = SenderConfig { max_frames: Some(50), ..SenderConfig::new(100_000_001) };
//! let rx_cfg = ReceiverConfig { max_frames: Some(50), ..ReceiverConfig::new(100_000_001, source.codec()) };
//! let (sent, got) = tokio::join!(tx.run(&source, &cfg, &cancel), rx.run(&rx_cfg, &cancel));
//! assert!(got?.validation.is_clean());
//! # let _ = sent; Ok(()) }
//! ```

mod audio;
mod framing;
mod receiver;
mod sender;
mod source;

pub use audio::{
    AudioReceiveReport, AudioReceiverConfig, AudioSendReport, AudioSenderConfig, AudioSocket,
    AudioTasks, Tone,
};

pub use framing::{encode_interleaved, TcpFraming, TcpMediaDecoder};
pub use receiver::{MediaReceiver, ReceiveReport, ReceiverConfig};
pub use sender::{MediaSender, Pace, PaceControl, Seek, SendReport, SenderConfig};
pub use source::{sample_h264, MediaSource, SourceFrame};

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use tokio::net::{TcpListener, TcpStream};

use crate::proto::gb28181::session::{MediaTransport, NegotiatedMedia};
use crate::proto::sdp::{GbMedia, Setup};
use crate::proto::Transport;

/// How media travels, seen from this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `RTP/AVP` over UDP: bind `local`; a sender sends to `remote`, a receiver takes
    /// datagrams from anyone (or only from `remote` when set).
    Udp {
        /// Local address to bind (port 0: any).
        local: SocketAddr,
        /// The peer.
        remote: Option<SocketAddr>,
    },
    /// `TCP/RTP/AVP`, `a=setup:active`: this side connects to `remote`.
    TcpActive {
        /// The listening peer.
        remote: SocketAddr,
    },
    /// `TCP/RTP/AVP`, `a=setup:passive`: this side listens on `local` and takes the
    /// first connection.
    TcpPassive {
        /// Local address to listen on (port 0: any).
        local: SocketAddr,
    },
}

impl Link {
    /// UDP bound to `local`, no fixed peer.
    pub fn udp(local: SocketAddr) -> Self {
        Link::Udp {
            local,
            remote: None,
        }
    }

    /// UDP bound to `local`, sending to `remote`.
    pub fn udp_to(local: SocketAddr, remote: SocketAddr) -> Self {
        Link::Udp {
            local,
            remote: Some(remote),
        }
    }

    /// The link for one negotiated media: `ours` is the media this side put in its SDP
    /// (announcing `local`), `theirs` the peer's, reachable at `their_ip`.
    ///
    /// UDP (`RTP/AVP`) sends to / takes from the peer's port. For `TCP/RTP/AVP` this
    /// side's `a=setup` decides (RFC 4145 §4): `active` connects to the peer's port,
    /// `passive` listens on `local`, `actpass` takes the opposite of the peer's role.
    /// Fails when only one side is TCP, or the roles do not pair up.
    pub fn negotiate(
        local: SocketAddr,
        ours: &GbMedia,
        theirs: &GbMedia,
        their_ip: IpAddr,
    ) -> Result<Link> {
        let remote = SocketAddr::new(their_ip, theirs.port);
        match (ours.is_tcp(), theirs.is_tcp()) {
            (false, false) => return Ok(Link::udp_to(local, remote)),
            (true, true) => {}
            _ => bail!(
                "one side offers {} and the other {}",
                ours.proto,
                theirs.proto
            ),
        }
        let role = match (ours.setup, theirs.setup) {
            (Some(Setup::ActPass), Some(t)) => t.answer(),
            (Some(o), _) => o,
            (None, Some(t)) => t.answer(),
            (None, None) => bail!("TCP media without a=setup on either side"),
        };
        match (role, theirs.setup) {
            (Setup::Active, Some(Setup::Active)) | (Setup::Passive, Some(Setup::Passive)) => {
                bail!("both sides are a=setup:{}", role.as_str())
            }
            (Setup::Active, _) => Ok(Link::TcpActive { remote }),
            (Setup::Passive, _) => Ok(Link::TcpPassive { local }),
            (r, _) => bail!(
                "a=setup:{} leaves no side to open the connection",
                r.as_str()
            ),
        }
    }

    /// The link for a media a session machine concluded
    /// ([`crate::proto::gb28181::session::NegotiatedMedia`]), binding `local` (port 0:
    /// any). A UDP receiver takes datagrams from anyone: the spec's answers name the
    /// port media is sent from, but a sender is not bound to use it.
    pub fn for_negotiated(local: SocketAddr, m: &NegotiatedMedia) -> Link {
        match m.transport {
            MediaTransport::Udp if m.sends() => Link::udp_to(local, m.remote),
            MediaTransport::Udp => Link::udp(local),
            MediaTransport::TcpActive => Link::TcpActive { remote: m.remote },
            MediaTransport::TcpPassive => Link::TcpPassive { local },
        }
    }

    /// The transport protocol.
    pub fn transport(&self) -> Transport {
        match self {
            Link::Udp { .. } => Transport::Udp,
            Link::TcpActive { .. } | Link::TcpPassive { .. } => Transport::Tcp,
        }
    }
}

/// Why a sender or receiver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The frame count was reached.
    Frames,
    /// The duration was reached.
    Duration,
    /// The source ended (looping off).
    EndOfSource,
    /// [`Cancel::cancel`] was called.
    Cancelled,
    /// The TCP peer closed the connection (or a write failed).
    PeerClosed,
    /// No packet arrived for the media timeout (receiver), or no connection came
    /// (TCP passive).
    MediaTimeout,
}

/// Live counters of a running sender or receiver, shared (cheaply cloned) with
/// whoever watches it: a suite step waiting for frames, or for silence.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<ProgressCounters>);

#[derive(Debug, Default)]
struct ProgressCounters {
    packets: AtomicU64,
    frames: AtomicU64,
}

impl PartialEq for Progress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Progress {
    /// RTP packets so far.
    pub fn packets(&self) -> u64 {
        self.0.packets.load(Ordering::Relaxed)
    }
    /// RTP frames so far.
    pub fn frames(&self) -> u64 {
        self.0.frames.load(Ordering::Relaxed)
    }
    pub(crate) fn add_packets(&self, n: u64) {
        self.0.packets.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn set_frames(&self, n: u64) {
        self.0.frames.store(n, Ordering::Relaxed);
    }
}

/// A stop signal shared by any number of senders and receivers. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Cancel(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Fires the signal; every current and future [`Cancel::cancelled`] returns.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Whether it fired.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the signal fires.
    pub async fn cancelled(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so `wait_for` cannot see it dropped.
        let _ = rx.wait_for(|&c| c).await;
    }
}

/// One packet as it crossed the wire, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPacket {
    /// Wall-clock time it was sent or received.
    pub time: SystemTime,
    /// Time since the sender or receiver started running.
    pub elapsed: Duration,
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// The bytes on the wire: the RTP packet, preceded on TCP by its RFC 4571 length
    /// (or, from a sender that frames RTSP-style, `$`, channel and length).
    pub bytes: Vec<u8>,
}

impl CapturedPacket {
    /// The RTP packet without the RFC 4571 length (or the RTSP-interleaved header).
    pub fn rtp(&self) -> &[u8] {
        match self.transport {
            Transport::Udp => &self.bytes,
            Transport::Tcp if framing::looks_interleaved(&self.bytes) => {
                self.bytes.get(4..).unwrap_or_default()
            }
            Transport::Tcp => self.bytes.get(2..).unwrap_or_default(),
        }
    }

    /// The form [`crate::capture::pcap::write_pcap`] takes.
    pub fn to_packet(&self) -> crate::transport::Packet {
        crate::transport::Packet {
            time: self.time,
            src: self.src,
            dst: self.dst,
            transport: self.transport,
            bytes: self.bytes.clone(),
        }
    }
}

/// Packets kept up to a byte budget.
#[derive(Debug)]
struct Capture {
    packets: Vec<CapturedPacket>,
    budget: usize,
    truncated: bool,
}

impl Capture {
    fn new(budget: usize) -> Self {
        Capture {
            packets: Vec::new(),
            budget,
            truncated: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        elapsed: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        prefix: &[u8],
        rtp: &[u8],
    ) {
        let n = prefix.len() + rtp.len();
        if n > self.budget {
            self.truncated = true;
            self.budget = 0;
            return;
        }
        self.budget -= n;
        let mut bytes = Vec::with_capacity(n);
        bytes.extend_from_slice(prefix);
        bytes.extend_from_slice(rtp);
        self.packets.push(CapturedPacket {
            time: SystemTime::now(),
            elapsed,
            src,
            dst,
            transport,
            bytes,
        });
    }
}

/// Connects to `remote`, retrying refused attempts until `timeout` (the listener may
/// not be up yet when signalling races ahead of it).
async fn connect_retrying(
    remote: SocketAddr,
    timeout: Duration,
    cancel: Option<&Cancel>,
) -> Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout_at(deadline, TcpStream::connect(remote)).await;
        match attempt {
            Ok(Ok(s)) => {
                s.set_nodelay(true).ok();
                return Ok(s);
            }
            Ok(Err(e)) if tokio::time::Instant::now() + Duration::from_millis(20) < deadline => {
                if cancel.is_some_and(Cancel::is_cancelled) {
                    return Err(anyhow!("connecting to tcp://{remote}: cancelled ({e})"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Err(e)) => return Err(e).with_context(|| format!("connecting to tcp://{remote}")),
            Err(_) => {
                return Err(anyhow!(
                    "connecting to tcp://{remote}: timed out after {timeout:?}"
                ))
            }
        }
    }
}

/// Accepts one connection before `deadline`; `None` on timeout or cancel.
async fn accept_until(
    listener: &TcpListener,
    deadline: tokio::time::Instant,
    cancel: &Cancel,
) -> Result<Option<(TcpStream, SocketAddr)>> {
    tokio::select! {
        r = tokio::time::timeout_at(deadline, listener.accept()) => match r {
            Ok(Ok((s, peer))) => {
                s.set_nodelay(true).ok();
                Ok(Some((s, peer)))
            }
            Ok(Err(e)) => Err(e).context("accepting a media connection"),
            Err(_) => Ok(None),
        },
        _ = cancel.cancelled() => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sdp::Direction;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn links_from_the_spec_examples() {
        // 媒体传输方式 TCP被动: the SIP server offers a=setup:passive on 36000, the
        // device answers a=setup:active from 9724.
        let offer = GbMedia::video_offer(36000, Some(Setup::Passive), Direction::RecvOnly);
        let answer = GbMedia::video_ps(9724, Some(Setup::Active), Direction::SendOnly);
        let server = addr("192.168.0.107:36000");
        let device = addr("192.168.0.111:9724");
        assert_eq!(
            Link::negotiate(server, &offer, &answer, device.ip()).unwrap(),
            Link::TcpPassive { local: server }
        );
        assert_eq!(
            Link::negotiate(device, &answer, &offer, server.ip()).unwrap(),
            Link::TcpActive { remote: server }
        );
        // TCP主动: the other way round; the device listens on 9704.
        let offer = GbMedia::video_offer(38000, Some(Setup::Active), Direction::RecvOnly);
        let answer = GbMedia::video_ps(9704, Some(Setup::Passive), Direction::SendOnly);
        assert_eq!(
            Link::negotiate(server, &offer, &answer, device.ip()).unwrap(),
            Link::TcpActive {
                remote: addr("192.168.0.111:9704")
            }
        );
        // UDP: send to the peer's port.
        let offer = GbMedia::video_offer(36000, None, Direction::RecvOnly);
        let answer = GbMedia::video_ps(9712, None, Direction::SendOnly);
        assert_eq!(
            Link::negotiate(device, &answer, &offer, server.ip()).unwrap(),
            Link::udp_to(device, server)
        );
        // actpass takes the opposite role; clashes and mixed transports fail.
        let ap = GbMedia::video_offer(1, Some(Setup::ActPass), Direction::RecvOnly);
        let act = GbMedia::video_ps(2, Some(Setup::Active), Direction::SendOnly);
        assert_eq!(
            Link::negotiate(server, &ap, &act, device.ip()).unwrap(),
            Link::TcpPassive { local: server }
        );
        assert!(Link::negotiate(server, &act, &act, device.ip()).is_err());
        let udp = GbMedia::video_ps(2, None, Direction::SendOnly);
        assert!(Link::negotiate(server, &act, &udp, device.ip()).is_err());
    }
}
