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

mod receiver;
mod sender;
mod source;

pub use receiver::{MediaReceiver, ReceiveReport, ReceiverConfig};
pub use sender::{MediaSender, SendReport, SenderConfig};
pub use source::{MediaSource, SourceFrame};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use tokio::net::{TcpListener, TcpStream};

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
    /// The bytes on the wire: the RTP packet, preceded on TCP by its RFC 4571 length.
    pub bytes: Vec<u8>,
}

impl CapturedPacket {
    /// The RTP packet without the RFC 4571 length.
    pub fn rtp(&self) -> &[u8] {
        match self.transport {
            Transport::Udp => &self.bytes,
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
