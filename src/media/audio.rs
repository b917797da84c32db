//! G.711 audio media (spec 语音对讲, 语音广播): a generated [`Tone`] encoded as PCMA or
//! PCMU, 160 samples (20 ms) per RTP packet, paced in real time; and a receiver that
//! judges the stream with [`AudioCheck`].
//!
//! Talk (`s=Talk`, `a=sendrecv`) sends and receives on the one negotiated port or
//! connection, so one [`AudioSocket`] carries both directions: over UDP one socket
//! sends to the peer and receives from it, over TCP (RFC 4571 framing) the stream is
//! split into a read and a write half. [`AudioSocket::spawn`] starts either direction
//! or both as tasks with their own [`Cancel`]; a TCP listener first waits for the
//! peer's connection, shared by both directions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::framing::{TcpFraming, TcpMediaDecoder};
use super::{connect_retrying, Cancel, Capture, CapturedPacket, Link, Progress, StopReason};
use crate::proto::g711::{Law, SAMPLE_RATE};
use crate::proto::ps::validate::FindingCode;
use crate::proto::rtp::audio::{
    AudioCheck, AudioCheckConfig, AudioCheckReport, AudioFaults, AudioPacketizer,
    AudioPacketizerConfig, SAMPLES_PER_PACKET,
};
use crate::proto::rtp::encode_frame_into;
use crate::proto::Transport;

/// A sine tone, the same samples on every run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Peak amplitude as a fraction of full scale (0..=1).
    pub amplitude: f64,
}

impl Default for Tone {
    /// 440 Hz at a quarter of full scale.
    fn default() -> Self {
        Tone {
            frequency_hz: 440.0,
            amplitude: 0.25,
        }
    }
}

impl Tone {
    /// Sample `n` at 8 kHz.
    pub fn sample(&self, n: u64) -> i16 {
        let cycles = (n as f64 * self.frequency_hz / f64::from(SAMPLE_RATE)).fract();
        let v = self.amplitude.clamp(0.0, 1.0) * 32767.0 * (cycles * std::f64::consts::TAU).sin();
        v.round() as i16
    }

    /// `count` samples from sample `first`.
    pub fn samples(&self, first: u64, count: usize) -> Vec<i16> {
        (0..count as u64).map(|i| self.sample(first + i)).collect()
    }
}

/// What and how fast to send.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSenderConfig {
    /// SSRC (the SDP `y=` value).
    pub ssrc: u32,
    /// RTP payload type (8 PCMA, 0 PCMU).
    pub payload_type: u8,
    /// The G.711 law.
    pub law: Law,
    /// Samples per packet (160: 20 ms).
    pub samples_per_packet: usize,
    /// Wall time per unit of media time: 1.0 real time, 0.1 ten times faster, 0.0 as
    /// fast as the socket takes it.
    pub time_scale: f64,
    /// Stop after this many packets.
    pub max_packets: Option<u64>,
    /// Stop once this much media time has been sent.
    pub max_duration: Option<Duration>,
    /// Sequence number of the first packet.
    pub initial_sequence: u16,
    /// Timestamp of the first packet.
    pub initial_timestamp: u32,
    /// How long TCP passive waits for the peer to connect.
    pub accept_timeout: Duration,
    /// Keep the packets sent, up to this many bytes (0: none).
    pub capture_bytes: usize,
    /// Deliberate RTP deviations (negative tests).
    pub faults: AudioFaults,
    /// A deliberate fault: frame RTP over TCP RTSP-style (`$`, channel 0, length)
    /// instead of RFC 4571.
    pub rtsp_interleaved: bool,
    /// Live count of packets sent (a packet is a frame).
    pub progress: Progress,
}

impl AudioSenderConfig {
    /// Real-time PCMA/8, 20 ms packets, without limits, no capture.
    pub fn new(ssrc: u32) -> Self {
        AudioSenderConfig {
            ssrc,
            payload_type: Law::ALaw.payload_type(),
            law: Law::ALaw,
            samples_per_packet: SAMPLES_PER_PACKET,
            time_scale: 1.0,
            max_packets: None,
            max_duration: None,
            initial_sequence: 0,
            initial_timestamp: 0,
            accept_timeout: Duration::from_secs(10),
            capture_bytes: 0,
            faults: AudioFaults::default(),
            rtsp_interleaved: false,
            progress: Progress::default(),
        }
    }

    /// Media time at which packet `i` is due.
    pub fn media_time(&self, i: u64) -> Duration {
        Duration::from_secs_f64(
            (i * self.samples_per_packet as u64) as f64 / f64::from(SAMPLE_RATE),
        )
    }
}

/// What to expect and how long to listen.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioReceiverConfig {
    /// Expectations (SSRC from `y=`, payload type, 8 kHz clock).
    pub check: AudioCheckConfig,
    /// Stop after this much wall time in all.
    pub max_duration: Duration,
    /// Stop once this many packets arrived.
    pub max_packets: Option<u64>,
    /// The stream counts as stopped when no packet arrives for this long.
    pub media_timeout: Duration,
    /// Wall time per unit of media time, as on the sender (arrival times are divided
    /// by it before the check sees them).
    pub time_scale: f64,
    /// Keep the packets received, up to this many bytes (0: none).
    pub capture_bytes: usize,
    /// Live count of packets received (a packet is a frame).
    pub progress: Progress,
}

impl AudioReceiverConfig {
    /// Expect SSRC `ssrc`, PCMA/8; listen up to 30 s, 5 s media timeout, real time,
    /// keep up to 8 MiB of packets.
    pub fn new(ssrc: u32) -> Self {
        AudioReceiverConfig {
            check: AudioCheckConfig::new(ssrc, Law::ALaw.payload_type()),
            max_duration: Duration::from_secs(30),
            max_packets: None,
            media_timeout: Duration::from_secs(5),
            time_scale: 1.0,
            capture_bytes: 8 << 20,
            progress: Progress::default(),
        }
    }
}

/// What an audio sender did.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSendReport {
    /// Why it stopped.
    pub stop: StopReason,
    /// RTP packets sent.
    pub packets: u64,
    /// Samples sent (G.711: payload bytes).
    pub samples: u64,
    /// Bytes handed to the socket (headers and RFC 4571 lengths included).
    pub wire_bytes: u64,
    /// UDP datagrams the socket refused.
    pub send_errors: u64,
    /// Sequence number of the last packet.
    pub last_sequence: Option<u16>,
    /// Timestamp of the last packet.
    pub last_timestamp: Option<u32>,
    /// Wall time from the first packet to the stop.
    pub elapsed: Duration,
    /// The peer.
    pub peer: Option<SocketAddr>,
    /// Packets sent, when capture was on.
    pub capture: Vec<CapturedPacket>,
    /// Capture stopped at its byte budget.
    pub capture_truncated: bool,
}

impl AudioSendReport {
    fn stopped(stop: StopReason) -> Self {
        AudioSendReport {
            stop,
            packets: 0,
            samples: 0,
            wire_bytes: 0,
            send_errors: 0,
            last_sequence: None,
            last_timestamp: None,
            elapsed: Duration::ZERO,
            peer: None,
            capture: Vec::new(),
            capture_truncated: false,
        }
    }
}

/// What an audio receiver saw.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioReceiveReport {
    /// The check's verdict.
    pub check: AudioCheckReport,
    /// Why it stopped.
    pub stop: StopReason,
    /// No packet arrived for the media timeout.
    pub media_timeout: bool,
    /// Packets handed to the check.
    pub packets: u64,
    /// RFC 4571 frames with a zero length (TCP only).
    pub framing_errors: u64,
    /// The sender (first datagram's source, or the TCP peer).
    pub peer: Option<SocketAddr>,
    /// Wall time from the start to the stop.
    pub elapsed: Duration,
    /// Wall time from the start to the first packet.
    pub first_packet: Option<Duration>,
    /// Packets received, for evidence.
    pub capture: Vec<CapturedPacket>,
    /// Capture stopped at its byte budget.
    pub capture_truncated: bool,
}

impl AudioReceiveReport {
    fn stopped(stop: StopReason, cfg: &AudioReceiverConfig) -> Self {
        AudioReceiveReport {
            check: AudioCheck::new(cfg.check.clone()).finish(),
            stop,
            media_timeout: stop == StopReason::MediaTimeout,
            packets: 0,
            framing_errors: 0,
            peer: None,
            elapsed: Duration::ZERO,
            first_packet: None,
            capture: Vec::new(),
            capture_truncated: false,
        }
    }
}

enum Inner {
    Udp {
        socket: Arc<UdpSocket>,
        remote: Option<SocketAddr>,
    },
    Tcp(TcpStream),
    Listening(TcpListener),
}

/// The sending half once the peer is known.
enum TxHalf {
    Udp {
        socket: Arc<UdpSocket>,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    },
    Tcp {
        w: OwnedWriteHalf,
        local: SocketAddr,
        peer: SocketAddr,
    },
}

/// The receiving half once the peer is known.
enum RxHalf {
    Udp {
        socket: Arc<UdpSocket>,
        local: SocketAddr,
    },
    Tcp {
        r: OwnedReadHalf,
        local: SocketAddr,
        peer: SocketAddr,
    },
}

/// A half, or why there is none.
enum Connected<H> {
    Half(H),
    Stopped(StopReason),
    Failed(String),
}

/// The running audio tasks of one socket.
pub struct AudioTasks {
    /// The sending task, when this side sends.
    pub sender: Option<JoinHandle<Result<AudioSendReport>>>,
    /// The receiving task, when this side receives.
    pub receiver: Option<JoinHandle<Result<AudioReceiveReport>>>,
}

/// One negotiated audio port or connection, for either direction or both.
pub struct AudioSocket {
    inner: Inner,
    local: SocketAddr,
}

impl AudioSocket {
    /// Binds (UDP, TCP passive) or connects (TCP active, retrying until `timeout`).
    /// A UDP link's `remote` is where packets go (see [`AudioSocket::set_remote`]);
    /// datagrams are taken from anyone.
    pub async fn open(link: Link, timeout: Duration) -> Result<Self> {
        let inner = match link {
            Link::Udp { local, remote } => Inner::Udp {
                socket: Arc::new(
                    UdpSocket::bind(local)
                        .await
                        .with_context(|| format!("binding UDP {local}"))?,
                ),
                remote,
            },
            Link::TcpActive { remote } => {
                Inner::Tcp(connect_retrying(remote, timeout, None).await?)
            }
            Link::TcpPassive { local } => Inner::Listening(
                TcpListener::bind(local)
                    .await
                    .with_context(|| format!("listening on TCP {local}"))?,
            ),
        };
        let local = match &inner {
            Inner::Udp { socket, .. } => socket.local_addr()?,
            Inner::Tcp(s) => s.local_addr()?,
            Inner::Listening(l) => l.local_addr()?,
        };
        Ok(AudioSocket { inner, local })
    }

    /// The local address: the port to announce in the SDP.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        match self.inner {
            Inner::Udp { .. } => Transport::Udp,
            _ => Transport::Tcp,
        }
    }

    /// UDP: send to `remote` (known only once the answer arrived). Ignored on TCP.
    pub fn set_remote(&mut self, remote: SocketAddr) {
        if let Inner::Udp { remote: r, .. } = &mut self.inner {
            *r = Some(remote);
        }
    }

    /// Starts sending `send` (when given) and receiving per `recv` (when given), each
    /// as its own task stopped by its own [`Cancel`]. A TCP listener first accepts
    /// one connection (until the longer of the sender's accept timeout and the
    /// receiver's media timeout); both directions then share it.
    pub fn spawn(
        self,
        send: Option<(Tone, AudioSenderConfig)>,
        recv: Option<AudioReceiverConfig>,
        tx_cancel: &Cancel,
        rx_cancel: &Cancel,
    ) -> AudioTasks {
        let wait = send
            .as_ref()
            .map(|(_, c)| c.accept_timeout)
            .into_iter()
            .chain(recv.as_ref().map(|c| c.media_timeout))
            .max()
            .unwrap_or_default();
        let (tx_send, tx_get) = oneshot::channel::<Connected<TxHalf>>();
        let (rx_send, rx_get) = oneshot::channel::<Connected<RxHalf>>();
        let cancels: Vec<Cancel> = send
            .as_ref()
            .map(|_| tx_cancel.clone())
            .into_iter()
            .chain(recv.as_ref().map(|_| rx_cancel.clone()))
            .collect();
        let local = self.local;
        tokio::spawn(async move {
            let (t, r) = match connect(self.inner, local, wait, &cancels).await {
                Ok(Some((t, r))) => (Connected::Half(t), Connected::Half(r)),
                Ok(None) => {
                    let why = if cancels.iter().any(Cancel::is_cancelled) {
                        StopReason::Cancelled
                    } else {
                        StopReason::MediaTimeout
                    };
                    (Connected::Stopped(why), Connected::Stopped(why))
                }
                Err(e) => (
                    Connected::Failed(format!("{e:#}")),
                    Connected::Failed(format!("{e:#}")),
                ),
            };
            let _ = tx_send.send(t);
            let _ = rx_send.send(r);
        });
        let sender = send.map(|(tone, cfg)| {
            let cancel = tx_cancel.clone();
            tokio::spawn(async move {
                match tx_get.await {
                    Ok(Connected::Half(h)) => send_loop(h, tone, &cfg, &cancel).await,
                    Ok(Connected::Stopped(why)) => Ok(AudioSendReport::stopped(why)),
                    Ok(Connected::Failed(e)) => Err(anyhow!(e)),
                    Err(_) => Err(anyhow!("the audio connection task ended")),
                }
            })
        });
        let receiver = recv.map(|cfg| {
            let cancel = rx_cancel.clone();
            tokio::spawn(async move {
                match rx_get.await {
                    Ok(Connected::Half(h)) => receive_loop(h, &cfg, &cancel).await,
                    Ok(Connected::Stopped(why)) => Ok(AudioReceiveReport::stopped(why, &cfg)),
                    Ok(Connected::Failed(e)) => Err(anyhow!(e)),
                    Err(_) => Err(anyhow!("the audio connection task ended")),
                }
            })
        });
        AudioTasks { sender, receiver }
    }

    /// [`AudioSocket::spawn`] with one [`Cancel`] for both directions, awaited.
    pub async fn run(
        self,
        send: Option<(Tone, AudioSenderConfig)>,
        recv: Option<AudioReceiverConfig>,
        cancel: &Cancel,
    ) -> Result<(Option<AudioSendReport>, Option<AudioReceiveReport>)> {
        let t = self.spawn(send, recv, cancel, cancel);
        let sent = match t.sender {
            Some(h) => Some(h.await.map_err(|e| anyhow!("audio sender failed: {e}"))??),
            None => None,
        };
        let got = match t.receiver {
            Some(h) => Some(
                h.await
                    .map_err(|e| anyhow!("audio receiver failed: {e}"))??,
            ),
            None => None,
        };
        Ok((sent, got))
    }
}

/// Resolves once any of `cancels` fires (never when there is none).
async fn any_cancelled(cancels: &[Cancel]) {
    if cancels.is_empty() {
        return std::future::pending().await;
    }
    let futs: Vec<_> = cancels.iter().map(|c| Box::pin(c.cancelled())).collect();
    futures_select_all(futs).await
}

/// Waits for the first of several futures (all of the same type).
async fn futures_select_all<F: std::future::Future<Output = ()> + Unpin>(mut futs: Vec<F>) {
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn connect(
    inner: Inner,
    local: SocketAddr,
    wait: Duration,
    cancels: &[Cancel],
) -> Result<Option<(TxHalf, RxHalf)>> {
    let stream = match inner {
        Inner::Udp { socket, remote } => {
            return Ok(Some((
                TxHalf::Udp {
                    socket: socket.clone(),
                    local,
                    remote,
                },
                RxHalf::Udp { socket, local },
            )))
        }
        Inner::Tcp(s) => s,
        Inner::Listening(l) => {
            let accepted = tokio::select! {
                r = tokio::time::timeout(wait, l.accept()) => r,
                _ = any_cancelled(cancels) => return Ok(None),
            };
            match accepted {
                Ok(Ok((s, _))) => {
                    s.set_nodelay(true).ok();
                    s
                }
                Ok(Err(e)) => return Err(e).context("accepting an audio connection"),
                Err(_) => return Ok(None),
            }
        }
    };
    let local = stream.local_addr()?;
    let peer = stream.peer_addr()?;
    let (r, w) = stream.into_split();
    Ok(Some((
        TxHalf::Tcp { w, local, peer },
        RxHalf::Tcp { r, local, peer },
    )))
}

async fn send_loop(
    mut tx: TxHalf,
    tone: Tone,
    cfg: &AudioSenderConfig,
    cancel: &Cancel,
) -> Result<AudioSendReport> {
    if !(cfg.time_scale.is_finite() && cfg.time_scale >= 0.0) {
        bail!("time scale {} is not a non-negative number", cfg.time_scale);
    }
    if cfg.samples_per_packet == 0 {
        bail!("an audio packet needs at least one sample");
    }
    let (local, peer, transport) = match &tx {
        TxHalf::Udp { local, remote, .. } => (
            *local,
            remote.ok_or_else(|| anyhow!("a UDP audio sender needs a remote address"))?,
            Transport::Udp,
        ),
        TxHalf::Tcp { local, peer, .. } => (*local, *peer, Transport::Tcp),
    };
    let mut pk = AudioPacketizer::new(AudioPacketizerConfig {
        ssrc: cfg.ssrc,
        payload_type: cfg.payload_type,
        initial_sequence: cfg.initial_sequence,
        initial_timestamp: cfg.initial_timestamp,
        faults: cfg.faults.clone(),
    });
    let mut report = AudioSendReport::stopped(StopReason::Frames);
    report.peer = Some(peer);
    let mut capture = Capture::new(cfg.capture_bytes);
    let mut wire = BytesMut::new();
    let start = tokio::time::Instant::now();
    let spp = cfg.samples_per_packet;
    let mut i: u64 = 0;
    loop {
        if cfg.max_packets.is_some_and(|n| i >= n) {
            report.stop = StopReason::Frames;
            break;
        }
        let media_time = cfg.media_time(i);
        if cfg.max_duration.is_some_and(|d| media_time >= d) {
            report.stop = StopReason::Duration;
            break;
        }
        if cfg.time_scale > 0.0 {
            let due = start + media_time.mul_f64(cfg.time_scale);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    report.stop = StopReason::Cancelled;
                    break;
                }
                _ = tokio::time::sleep_until(due) => {}
            }
        } else if cancel.is_cancelled() {
            report.stop = StopReason::Cancelled;
            break;
        }
        let payload = cfg.law.encode(&tone.samples(i * spp as u64, spp));
        report.last_timestamp = Some(pk.next_timestamp());
        report.last_sequence = Some(pk.next_sequence());
        let p = pk.packetize(&payload)?;
        let elapsed = start.elapsed();
        match &mut tx {
            TxHalf::Udp { socket, .. } => {
                match socket.send_to(&p, peer).await {
                    Ok(_) => report.wire_bytes += p.len() as u64,
                    Err(_) => report.send_errors += 1,
                }
                capture.push(elapsed, local, peer, transport, &[], &p);
            }
            TxHalf::Tcp { w, .. } => {
                wire.clear();
                let head = if cfg.rtsp_interleaved {
                    super::encode_interleaved(0, &p, &mut wire)
                        .ok_or_else(|| anyhow!("packet of {} bytes", p.len()))?;
                    4
                } else {
                    encode_frame_into(&p, &mut wire)?;
                    2
                };
                capture.push(elapsed, local, peer, transport, &wire[..head], &p);
                if w.write_all(&wire).await.is_err() {
                    report.stop = StopReason::PeerClosed;
                    break;
                }
                report.wire_bytes += wire.len() as u64;
            }
        }
        report.packets += 1;
        report.samples += payload.len() as u64;
        cfg.progress.add_packets(1);
        cfg.progress.set_frames(report.packets);
        i += 1;
    }
    if let TxHalf::Tcp { w, .. } = &mut tx {
        let _ = w.shutdown().await;
    }
    report.elapsed = start.elapsed();
    report.capture = capture.packets;
    report.capture_truncated = capture.truncated;
    Ok(report)
}

struct Rx<'a> {
    cfg: &'a AudioReceiverConfig,
    start: tokio::time::Instant,
    check: AudioCheck,
    capture: Capture,
    packets: u64,
    first_packet: Option<Duration>,
    last_packet: Option<tokio::time::Instant>,
}

impl Rx<'_> {
    fn packet(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        prefix: &[u8],
        rtp: &[u8],
    ) {
        let now = tokio::time::Instant::now();
        let elapsed = now - self.start;
        self.first_packet.get_or_insert(elapsed);
        self.last_packet = Some(now);
        self.packets += 1;
        self.cfg.progress.add_packets(1);
        self.cfg.progress.set_frames(self.packets);
        let arrival = if self.cfg.time_scale > 0.0 {
            elapsed.div_f64(self.cfg.time_scale)
        } else {
            elapsed
        };
        self.check.push_packet(rtp, arrival);
        self.capture.push(elapsed, src, dst, transport, prefix, rtp);
    }

    fn done(&self) -> bool {
        self.cfg.max_packets.is_some_and(|n| self.packets >= n)
    }

    /// When the next wait ends, and whether that end is the media timeout.
    fn wake(&self) -> (tokio::time::Instant, bool) {
        let end = self.start + self.cfg.max_duration;
        let quiet = self.last_packet.unwrap_or(self.start) + self.cfg.media_timeout;
        if quiet < end {
            (quiet, true)
        } else {
            (end, false)
        }
    }
}

async fn receive_loop(
    rx: RxHalf,
    cfg: &AudioReceiverConfig,
    cancel: &Cancel,
) -> Result<AudioReceiveReport> {
    let mut run = Rx {
        cfg,
        start: tokio::time::Instant::now(),
        check: AudioCheck::new(cfg.check.clone()),
        capture: Capture::new(cfg.capture_bytes),
        packets: 0,
        first_packet: None,
        last_packet: None,
    };
    let mut peer = None;
    let mut framing_errors = 0;
    let mut buf = vec![0u8; 65536];
    let stop = match rx {
        RxHalf::Udp { socket, local } => loop {
            if run.done() {
                break StopReason::Frames;
            }
            let (wake, is_timeout) = run.wake();
            let got = tokio::select! {
                biased;
                _ = cancel.cancelled() => break StopReason::Cancelled,
                r = tokio::time::timeout_at(wake, socket.recv_from(&mut buf)) => r,
            };
            match got {
                Err(_) if is_timeout => break StopReason::MediaTimeout,
                Err(_) => break StopReason::Duration,
                Ok(r) => {
                    let (n, from) = r.context("receiving audio")?;
                    peer.get_or_insert(from);
                    run.packet(from, local, Transport::Udp, &[], &buf[..n]);
                }
            }
        },
        RxHalf::Tcp {
            mut r,
            local,
            peer: from,
        } => {
            peer = Some(from);
            let mut dec = TcpMediaDecoder::new();
            let mut reported = false;
            'read: loop {
                if run.done() {
                    break StopReason::Frames;
                }
                let (wake, is_timeout) = run.wake();
                let got = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break StopReason::Cancelled,
                    r = tokio::time::timeout_at(wake, r.read(&mut buf)) => r,
                };
                let n = match got {
                    Err(_) if is_timeout => break StopReason::MediaTimeout,
                    Err(_) => break StopReason::Duration,
                    Ok(Ok(0)) | Ok(Err(_)) => break StopReason::PeerClosed,
                    Ok(Ok(n)) => n,
                };
                dec.feed(&buf[..n]);
                if dec.framing() == Some(TcpFraming::RtspInterleaved) && !reported {
                    reported = true;
                    run.check
                        .add_finding(FindingCode::TcpRtspFraming, super::framing::RTSP_FRAMING);
                }
                while let Some((prefix, pkt)) = dec.next_packet() {
                    run.packet(from, local, Transport::Tcp, &prefix, &pkt);
                    if run.done() {
                        framing_errors = dec.errors();
                        break 'read StopReason::Frames;
                    }
                }
                framing_errors = dec.errors();
            }
        }
    };
    Ok(AudioReceiveReport {
        check: run.check.finish(),
        stop,
        media_timeout: stop == StopReason::MediaTimeout,
        packets: run.packets,
        framing_errors,
        peer,
        elapsed: run.start.elapsed(),
        first_packet: run.first_packet,
        capture: run.capture.packets,
        capture_truncated: run.capture.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_deterministic_and_periodic() {
        let t = Tone::default();
        // 440 Hz at 8 kHz repeats every 200 samples.
        assert_eq!(t.samples(0, 160), t.samples(200, 160));
        assert_eq!(t.sample(0), 0);
        let peak = t.samples(0, 200).into_iter().map(i16::unsigned_abs).max();
        assert!(peak.unwrap() > 8000 && peak.unwrap() <= 8192);
    }

    #[test]
    fn packet_media_times_step_by_20_ms() {
        let c = AudioSenderConfig::new(1);
        assert_eq!(c.media_time(1), Duration::from_millis(20));
        assert_eq!(c.media_time(50), Duration::from_secs(1));
    }
}
