//! The media sender: source → PS mux → RTP packetize → UDP / RFC 4571 TCP, paced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use super::{
    accept_until, connect_retrying, Cancel, Capture, CapturedPacket, Link, MediaSource, Progress,
    StopReason,
};
use crate::proto::ps::mux::{MuxConfig, MuxFaults, PsMuxer};
use crate::proto::ps::{Frame, CLOCK_HZ};
use crate::proto::rtp::packetize::DEFAULT_MTU;
use crate::proto::rtp::{
    encode_frame_into, Packetizer, PacketizerConfig, PacketizerFaults, PS_PAYLOAD_TYPE,
};
use crate::proto::Transport;

/// What and how fast to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderConfig {
    /// SSRC (the SDP `y=` value).
    pub ssrc: u32,
    /// RTP payload type (96 for PS).
    pub payload_type: u8,
    /// Largest RTP packet, header included.
    pub mtu: usize,
    /// Pictures per second of media time; PTS advance by `90000 / frame_rate`.
    pub frame_rate: f64,
    /// Wall time per unit of media time: 1.0 is real time, 0.1 ten times faster,
    /// 0.0 as fast as the socket takes it.
    pub time_scale: f64,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
    /// Stop once this much media time has been sent.
    pub max_duration: Option<Duration>,
    /// Start again at the first picture after the last one (PTS keep rising).
    pub looping: bool,
    /// PTS of the first frame (90 kHz).
    pub first_pts: u64,
    /// Sequence number of the first packet.
    pub initial_sequence: u16,
    /// How long TCP passive waits for the peer to connect.
    pub accept_timeout: Duration,
    /// Keep the packets sent, up to this many bytes (0: none).
    pub capture_bytes: usize,
    /// Deliberate muxer deviations (negative tests).
    pub mux_faults: MuxFaults,
    /// Deliberate RTP deviations (negative tests).
    pub rtp_faults: PacketizerFaults,
    /// A deliberate fault: after this many frames send nothing more, but keep the
    /// socket (and a TCP connection) open until cancelled, as a stalled encoder
    /// does. The session is not ended.
    pub stall_after_frames: Option<u64>,
    /// A deliberate fault: frame RTP over TCP RTSP-style (`$`, channel 0, 16-bit
    /// length; RFC 2326 §10.12) instead of RFC 4571.
    pub rtsp_interleaved: bool,
    /// A deliberate fault: packetize the first packets but never send them, as
    /// if they were lost before the receiver joined (it starts mid-pack).
    pub drop_first_packets: usize,
    /// Live counts of packets and frames sent.
    pub progress: Progress,
    /// Robustness runs: damage a share of the packets, seeded.
    pub damage: Option<crate::proto::rtp::damage::DamageConfig>,
}

impl SenderConfig {
    /// Real-time 25 fps PS/96 with a 1400-byte MTU, looping, without limits, no capture.
    pub fn new(ssrc: u32) -> Self {
        SenderConfig {
            ssrc,
            payload_type: PS_PAYLOAD_TYPE,
            mtu: DEFAULT_MTU,
            frame_rate: 25.0,
            time_scale: 1.0,
            max_frames: None,
            max_duration: None,
            looping: true,
            first_pts: 0,
            initial_sequence: 0,
            accept_timeout: Duration::from_secs(10),
            capture_bytes: 0,
            mux_faults: MuxFaults::default(),
            rtp_faults: PacketizerFaults::default(),
            stall_after_frames: None,
            rtsp_interleaved: false,
            drop_first_packets: 0,
            progress: Progress::default(),
            damage: None,
        }
    }

    /// PTS of frame `i` (90 kHz).
    pub fn pts(&self, i: u64) -> u64 {
        self.first_pts + (i as f64 * f64::from(CLOCK_HZ) / self.frame_rate).round() as u64
    }

    /// Media time at which frame `i` is due.
    pub fn media_time(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.frame_rate)
    }
}

/// How a running sender is told to play (录像回放: MANSRTSP PLAY, PAUSE, `Scale`,
/// `Range`). Media time and RTP timestamps keep the source's clock whatever the
/// speed; only the wall time between pictures changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Send nothing until resumed.
    pub paused: bool,
    /// Playback speed: 2.0 sends the pictures of two seconds of media per second of
    /// wall time (on top of [`SenderConfig::time_scale`]).
    pub scale: f64,
    /// The latest seek asked for.
    pub seek: Option<Seek>,
}

/// A jump to a media time (`Range: npt=<seconds>-`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seek {
    /// Media time from the start of the source: the next picture is the one due
    /// then, with its PTS.
    pub to: Duration,
    /// Tells repeated seeks to the same time apart.
    pub id: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            paused: false,
            scale: 1.0,
            seek: None,
        }
    }
}

/// The handle that steers a sender started with [`MediaSender::run_paced`]. Cloning
/// shares it.
#[derive(Debug, Clone)]
pub struct PaceControl(Arc<watch::Sender<Pace>>);

impl Default for PaceControl {
    fn default() -> Self {
        Self::new()
    }
}

impl PaceControl {
    /// Playing at normal speed from where the sender is.
    pub fn new() -> Self {
        PaceControl(Arc::new(watch::channel(Pace::default()).0))
    }

    /// PAUSE: the sender stops after the picture it is sending.
    pub fn pause(&self) {
        self.0.send_modify(|p| p.paused = true);
    }

    /// PLAY: resume (the next picture goes out at once).
    pub fn play(&self) {
        self.0.send_modify(|p| p.paused = false);
    }

    /// `Scale`: the speed from the next picture on. Refuses (false) anything but a
    /// finite positive number: reverse playback is not carried.
    pub fn set_scale(&self, scale: f64) -> bool {
        if !(scale.is_finite() && scale > 0.0) {
            return false;
        }
        self.0.send_modify(|p| p.scale = scale);
        true
    }

    /// `Range`: continue from media time `to`.
    pub fn seek(&self, to: Duration) {
        self.0.send_modify(|p| {
            let id = p.seek.map_or(1, |s| s.id + 1);
            p.seek = Some(Seek { to, id });
        });
    }

    /// The current settings.
    pub fn get(&self) -> Pace {
        *self.0.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<Pace> {
        self.0.subscribe()
    }
}

/// Resolves when the pace changes; never without a control.
async fn pace_changed(rx: &mut Option<watch::Receiver<Pace>>) {
    if let Some(r) = rx {
        if r.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Wall time for `media` of media time at `scale` (on top of `time_scale`).
fn wall(media: Duration, time_scale: f64, scale: f64) -> Duration {
    media.mul_f64(time_scale / scale)
}

/// What a sender did.
#[derive(Debug, Clone, PartialEq)]
pub struct SendReport {
    /// Why it stopped.
    pub stop: StopReason,
    /// Frames sent.
    pub frames: u64,
    /// Key frames sent.
    pub key_frames: u64,
    /// RTP packets sent.
    pub packets: u64,
    /// PS bytes muxed (RTP payload bytes).
    pub ps_bytes: u64,
    /// Bytes handed to the socket (RTP headers and RFC 4571 lengths included).
    pub wire_bytes: u64,
    /// Times the source restarted from its first picture.
    pub loops: u64,
    /// UDP datagrams the socket refused.
    pub send_errors: u64,
    /// Sequence number of the last packet sent.
    pub last_sequence: Option<u16>,
    /// Wall time from the first frame to the stop.
    pub elapsed: Duration,
    /// The peer (the accepted connection's for TCP passive).
    pub peer: Option<SocketAddr>,
    /// Packets sent, when capture was on.
    pub capture: Vec<CapturedPacket>,
    /// Capture stopped at its byte budget.
    pub capture_truncated: bool,
    /// Packets damaged on purpose (robustness runs), by kind.
    pub damaged: std::collections::BTreeMap<String, u64>,
}

enum Socket {
    Udp {
        socket: UdpSocket,
        remote: SocketAddr,
    },
    Tcp(TcpStream),
    Listening(TcpListener),
}

/// The socket once the peer is known.
enum Conn {
    Udp {
        socket: UdpSocket,
        remote: SocketAddr,
    },
    Tcp(TcpStream),
}

/// A bound or connected sender; [`MediaSender::run`] streams.
pub struct MediaSender {
    socket: Socket,
    local: SocketAddr,
}

impl MediaSender {
    /// Binds (UDP, TCP passive) or connects (TCP active, retrying until `timeout`).
    pub async fn open(link: Link, timeout: Duration) -> Result<Self> {
        let socket = match link {
            Link::Udp { local, remote } => {
                let remote =
                    remote.ok_or_else(|| anyhow!("a UDP media sender needs a remote address"))?;
                let socket = UdpSocket::bind(local)
                    .await
                    .with_context(|| format!("binding UDP {local}"))?;
                Socket::Udp { socket, remote }
            }
            Link::TcpActive { remote } => {
                Socket::Tcp(connect_retrying(remote, timeout, None).await?)
            }
            Link::TcpPassive { local } => Socket::Listening(
                TcpListener::bind(local)
                    .await
                    .with_context(|| format!("listening on TCP {local}"))?,
            ),
        };
        let local = match &socket {
            Socket::Udp { socket, .. } => socket.local_addr()?,
            Socket::Tcp(s) => s.local_addr()?,
            Socket::Listening(l) => l.local_addr()?,
        };
        Ok(MediaSender { socket, local })
    }

    /// The local address: the port to announce in the SDP answer (for TCP passive, the
    /// listening port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Streams `source` until a limit, the end of a non-looping source, a closed TCP
    /// peer, or `cancel`. TCP passive first waits up to `accept_timeout` for the peer.
    pub async fn run(
        self,
        source: &MediaSource,
        cfg: &SenderConfig,
        cancel: &Cancel,
    ) -> Result<SendReport> {
        self.run_paced(source, cfg, cancel, None).await
    }

    /// [`MediaSender::run`] steered by `pace` (pause, speed, seek) when given.
    /// `max_frames` and `max_duration` count the pictures sent, wherever seeks put
    /// them; a non-looping source ends at its last picture.
    pub async fn run_paced(
        self,
        source: &MediaSource,
        cfg: &SenderConfig,
        cancel: &Cancel,
        pace: Option<&PaceControl>,
    ) -> Result<SendReport> {
        if !(cfg.frame_rate.is_finite() && cfg.frame_rate > 0.0) {
            bail!("frame rate {} is not a positive number", cfg.frame_rate);
        }
        if !(cfg.time_scale.is_finite() && cfg.time_scale >= 0.0) {
            bail!("time scale {} is not a non-negative number", cfg.time_scale);
        }
        let mut mux = PsMuxer::new(MuxConfig {
            faults: cfg.mux_faults.clone(),
            ..MuxConfig::video(source.codec().codec())
        })?;
        let mut rtp = Packetizer::new(PacketizerConfig {
            ssrc: cfg.ssrc,
            payload_type: cfg.payload_type,
            mtu: cfg.mtu,
            initial_sequence: cfg.initial_sequence,
            timestamp_offset: 0,
            faults: cfg.rtp_faults.clone(),
        })?;
        let mut report = SendReport {
            stop: StopReason::Frames,
            frames: 0,
            key_frames: 0,
            packets: 0,
            ps_bytes: 0,
            wire_bytes: 0,
            loops: 0,
            send_errors: 0,
            last_sequence: None,
            elapsed: Duration::ZERO,
            peer: None,
            capture: Vec::new(),
            capture_truncated: false,
            damaged: Default::default(),
        };
        let (mut sock, peer) = match self.socket {
            Socket::Listening(l) => {
                let deadline = tokio::time::Instant::now() + cfg.accept_timeout;
                match accept_until(&l, deadline, cancel).await? {
                    Some((s, peer)) => (Conn::Tcp(s), peer),
                    None => {
                        report.stop = if cancel.is_cancelled() {
                            StopReason::Cancelled
                        } else {
                            StopReason::MediaTimeout
                        };
                        return Ok(report);
                    }
                }
            }
            Socket::Tcp(s) => {
                let peer = s.peer_addr()?;
                (Conn::Tcp(s), peer)
            }
            Socket::Udp { socket, remote } => (Conn::Udp { socket, remote }, remote),
        };
        let (local, transport) = match &sock {
            Conn::Tcp(s) => (s.local_addr().unwrap_or(self.local), Transport::Tcp),
            Conn::Udp { .. } => (self.local, Transport::Udp),
        };
        report.peer = Some(peer);
        let mut capture = Capture::new(cfg.capture_bytes);
        let start = tokio::time::Instant::now();
        let mut wire = BytesMut::new();
        let mut to_drop = cfg.drop_first_packets;
        let mut damage = cfg.damage.map(crate::proto::rtp::damage::Damage::new);
        let frames = source.frames();
        let mut i: u64 = 0;
        let mut rx = pace.map(PaceControl::subscribe);
        let mut scale = 1.0;
        let mut applied_seek = 0;
        // Frame `i` is due at `anchor_wall` plus the wall time of its media time
        // past `anchor_media`; a change of speed, a seek or a resume moves the anchor.
        let (mut anchor_wall, mut anchor_media) = (start, Duration::ZERO);
        loop {
            if let Some(r) = rx.as_mut() {
                let p = *r.borrow_and_update();
                let now = tokio::time::Instant::now();
                if let Some(seek) = p.seek.filter(|s| s.id != applied_seek) {
                    applied_seek = seek.id;
                    i = (seek.to.as_secs_f64() * cfg.frame_rate).round() as u64;
                    (anchor_wall, anchor_media) = (now, cfg.media_time(i));
                }
                if p.scale != scale && p.scale.is_finite() && p.scale > 0.0 {
                    // Keep the part of the wait already served.
                    let due = anchor_wall
                        + wall(
                            cfg.media_time(i).saturating_sub(anchor_media),
                            cfg.time_scale,
                            scale,
                        );
                    let left = due.saturating_duration_since(now);
                    let left_media = if cfg.time_scale > 0.0 {
                        left.mul_f64(scale / cfg.time_scale)
                    } else {
                        Duration::ZERO
                    };
                    (anchor_wall, anchor_media) =
                        (now, cfg.media_time(i).saturating_sub(left_media));
                    scale = p.scale;
                }
                if p.paused {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => {
                            report.stop = StopReason::Cancelled;
                            break;
                        }
                        _ = pace_changed(&mut rx) => {}
                    }
                    // Resumed (or changed while paused): the next picture is due now.
                    (anchor_wall, anchor_media) = (tokio::time::Instant::now(), cfg.media_time(i));
                    continue;
                }
            }
            if cfg.stall_after_frames.is_some_and(|n| report.frames >= n) {
                cancel.cancelled().await;
                report.stop = StopReason::Cancelled;
                break;
            }
            if cfg.max_frames.is_some_and(|n| report.frames >= n) {
                report.stop = StopReason::Frames;
                break;
            }
            if cfg
                .max_duration
                .is_some_and(|d| cfg.media_time(report.frames) >= d)
            {
                report.stop = StopReason::Duration;
                break;
            }
            let media_time = cfg.media_time(i);
            if !cfg.looping && i >= frames.len() as u64 {
                report.stop = StopReason::EndOfSource;
                break;
            }
            let idx = (i % frames.len() as u64) as usize;
            if i > 0 && idx == 0 {
                report.loops += 1;
            }
            if cfg.time_scale > 0.0 {
                let due = anchor_wall
                    + wall(
                        media_time.saturating_sub(anchor_media),
                        cfg.time_scale,
                        scale,
                    );
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {
                        report.stop = StopReason::Cancelled;
                        break;
                    }
                    _ = pace_changed(&mut rx) => continue,
                    _ = tokio::time::sleep_until(due) => {}
                }
            } else if cancel.is_cancelled() {
                report.stop = StopReason::Cancelled;
                break;
            }
            let f = &frames[idx];
            let pts = cfg.pts(i);
            let ps = mux.mux(&Frame {
                codec: source.codec().codec(),
                pts,
                dts: None,
                key: f.key,
                data: f.data.clone(),
            })?;
            let mut packets = rtp.packetize(pts, &ps);
            if let Some(d) = damage.as_mut() {
                d.apply(&mut packets);
            }
            if to_drop > 0 {
                let n = to_drop.min(packets.len());
                packets.drain(..n);
                to_drop -= n;
            }
            let elapsed = start.elapsed();
            report.ps_bytes += ps.len() as u64;
            report.packets += packets.len() as u64;
            report.last_sequence = Some(rtp.next_sequence().wrapping_sub(1));
            match &mut sock {
                Conn::Udp { socket, remote } => {
                    for p in &packets {
                        match socket.send_to(p, *remote).await {
                            Ok(_) => report.wire_bytes += p.len() as u64,
                            Err(_) => report.send_errors += 1,
                        }
                        capture.push(elapsed, local, *remote, transport, &[], p);
                    }
                }
                Conn::Tcp(s) => {
                    wire.clear();
                    for p in &packets {
                        let at = wire.len();
                        let head = if cfg.rtsp_interleaved {
                            super::encode_interleaved(0, p, &mut wire)
                                .ok_or_else(|| anyhow!("packet of {} bytes", p.len()))?;
                            4
                        } else {
                            encode_frame_into(p, &mut wire)?;
                            2
                        };
                        capture.push(elapsed, local, peer, transport, &wire[at..at + head], p);
                    }
                    if s.write_all(&wire).await.is_err() {
                        report.stop = StopReason::PeerClosed;
                        break;
                    }
                    report.wire_bytes += wire.len() as u64;
                }
            }
            report.frames += 1;
            report.key_frames += u64::from(f.key);
            cfg.progress.add_packets(packets.len() as u64);
            cfg.progress.set_frames(report.frames);
            i += 1;
        }
        if let Conn::Tcp(s) = &mut sock {
            let _ = s.shutdown().await;
        }
        report.elapsed = start.elapsed();
        report.capture = capture.packets;
        report.capture_truncated = capture.truncated;
        if let Some(d) = damage {
            report.damaged = d
                .counts()
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect();
        }
        Ok(report)
    }
}
