//! The media receiver: UDP / RFC 4571 TCP → [`StreamValidator`], bounded in time and
//! frames, with a media timeout and an evidence capture.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::framing::{TcpFraming, TcpMediaDecoder};
use super::{
    accept_until, connect_retrying, Cancel, Capture, CapturedPacket, Link, Progress, StopReason,
};
use crate::proto::ps::annexb::VideoCodec;
use crate::proto::ps::validate::{FindingCode, StreamValidator, ValidationReport, ValidatorConfig};
use crate::proto::rtp::is_rtcp;
use crate::proto::Transport;

/// What to expect and how long to listen.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// Expectations handed to the validator (SSRC from `y=`, payload type, stream types).
    pub validator: ValidatorConfig,
    /// Stop after this much wall time in all.
    pub max_duration: Duration,
    /// Stop once this many RTP frames are complete (a frame ends at its marker bit, or
    /// when the next packet's timestamp differs).
    pub max_frames: Option<u64>,
    /// The stream counts as stopped when no packet arrives for this long (measured from
    /// the start until the first packet, then from the latest packet).
    pub media_timeout: Duration,
    /// Wall time per unit of media time, as on the sender: arrival times are divided
    /// by it before the validator sees them, so a 10× faster test stream is judged on
    /// the 90 kHz clock.
    pub time_scale: f64,
    /// Keep the packets received, up to this many bytes (0: none).
    pub capture_bytes: usize,
    /// Live counts of packets and frames received.
    pub progress: Progress,
}

impl ReceiverConfig {
    /// Expect SSRC `ssrc` with PS/96 carrying `codec`; listen up to 30 s, 5 s media
    /// timeout, real time, keep up to 64 MiB of packets.
    pub fn new(ssrc: u32, codec: VideoCodec) -> Self {
        ReceiverConfig {
            validator: ValidatorConfig::new(ssrc, [codec.codec().stream_type()]),
            max_duration: Duration::from_secs(30),
            max_frames: None,
            media_timeout: Duration::from_secs(5),
            time_scale: 1.0,
            capture_bytes: 64 << 20,
            progress: Progress::default(),
        }
    }
}

/// What a receiver saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveReport {
    /// The validator's verdict: metrics and findings.
    pub validation: ValidationReport,
    /// Why it stopped.
    pub stop: StopReason,
    /// No packet arrived for the media timeout (the stream stopped, or never started).
    pub media_timeout: bool,
    /// RTP frames completed (as counted for `max_frames`).
    pub frames: u64,
    /// Packets handed to the validator.
    pub packets: u64,
    /// RFC 4571 frames with a zero length, or steps lost in an RTSP-interleaved
    /// stream (TCP only).
    pub framing_errors: u64,
    /// Bytes left in the RFC 4571 decoder at the end: a cut packet, or packets that
    /// arrived after the frame count was reached.
    pub trailing_bytes: usize,
    /// The sender (first datagram's source, or the TCP peer).
    pub peer: Option<SocketAddr>,
    /// Wall time from the start of [`MediaReceiver::run`] to the stop.
    pub elapsed: Duration,
    /// Wall time from the start to the first packet.
    pub first_packet: Option<Duration>,
    /// Packets received, for evidence.
    pub capture: Vec<CapturedPacket>,
    /// Capture stopped at its byte budget.
    pub capture_truncated: bool,
}

enum Socket {
    Udp {
        socket: UdpSocket,
        only_from: Option<SocketAddr>,
    },
    Tcp(TcpStream),
    Listening(TcpListener),
}

/// A bound or connected receiver; [`MediaReceiver::run`] listens.
pub struct MediaReceiver {
    socket: Socket,
    local: SocketAddr,
}

/// Counts completed RTP frames the way [`ReceiverConfig::max_frames`] says.
#[derive(Debug, Default)]
struct FrameCounter {
    last: Option<(u32, bool)>,
    frames: u64,
}

impl FrameCounter {
    fn push(&mut self, pkt: &[u8]) {
        if pkt.len() < 12 || pkt[0] >> 6 != 2 || is_rtcp(pkt) {
            return;
        }
        let marker = pkt[1] & 0x80 != 0;
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        if let Some((last_ts, last_marker)) = self.last {
            if ts != last_ts && !last_marker {
                self.frames += 1;
            }
        }
        if marker {
            self.frames += 1;
        }
        self.last = Some((ts, marker));
    }
}

struct Run<'a> {
    cfg: &'a ReceiverConfig,
    start: tokio::time::Instant,
    validator: StreamValidator,
    capture: Capture,
    counter: FrameCounter,
    packets: u64,
    first_packet: Option<Duration>,
    last_packet: Option<tokio::time::Instant>,
}

impl Run<'_> {
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
        let arrival = if self.cfg.time_scale > 0.0 {
            elapsed.div_f64(self.cfg.time_scale)
        } else {
            elapsed
        };
        self.validator.push_packet(rtp, arrival);
        self.counter.push(rtp);
        self.cfg.progress.add_packets(1);
        self.cfg.progress.set_frames(self.counter.frames);
        self.capture.push(elapsed, src, dst, transport, prefix, rtp);
    }

    fn frames_done(&self) -> bool {
        self.cfg
            .max_frames
            .is_some_and(|n| self.counter.frames >= n)
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

impl MediaReceiver {
    /// Binds (UDP, TCP passive) or connects (TCP active, retrying until `timeout`).
    pub async fn open(link: Link, timeout: Duration) -> Result<Self> {
        let socket = match link {
            Link::Udp { local, remote } => Socket::Udp {
                socket: UdpSocket::bind(local)
                    .await
                    .with_context(|| format!("binding UDP {local}"))?,
                only_from: remote,
            },
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
        Ok(MediaReceiver { socket, local })
    }

    /// The local address: the port to announce in the SDP (for TCP passive, the
    /// listening port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Receives until the duration, the frame count, the media timeout, a closed TCP
    /// peer, or `cancel`; then returns the validator's report and the capture.
    pub async fn run(self, cfg: &ReceiverConfig, cancel: &Cancel) -> Result<ReceiveReport> {
        let mut run = Run {
            cfg,
            start: tokio::time::Instant::now(),
            validator: StreamValidator::new(cfg.validator.clone()),
            capture: Capture::new(cfg.capture_bytes),
            counter: FrameCounter::default(),
            packets: 0,
            first_packet: None,
            last_packet: None,
        };
        let mut peer = None;
        let mut framing_errors = 0;
        let mut trailing_bytes = 0;
        let stop = match self.socket {
            Socket::Udp { socket, only_from } => {
                let mut buf = vec![0u8; 65536];
                loop {
                    if run.frames_done() {
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
                            let (n, from) = r.context("receiving media")?;
                            if only_from.is_some_and(|a| a != from) {
                                continue;
                            }
                            peer.get_or_insert(from);
                            run.packet(from, self.local, Transport::Udp, &[], &buf[..n]);
                        }
                    }
                }
            }
            Socket::Tcp(s) => {
                peer = s.peer_addr().ok();
                read_tcp(
                    s,
                    &mut run,
                    cancel,
                    &mut framing_errors,
                    &mut trailing_bytes,
                )
                .await?
            }
            Socket::Listening(l) => {
                let (wake, _) = run.wake();
                match accept_until(&l, wake, cancel).await? {
                    None if cancel.is_cancelled() => StopReason::Cancelled,
                    None if wake >= run.start + cfg.max_duration => StopReason::Duration,
                    None => StopReason::MediaTimeout,
                    Some((s, from)) => {
                        peer = Some(from);
                        drop(l);
                        read_tcp(
                            s,
                            &mut run,
                            cancel,
                            &mut framing_errors,
                            &mut trailing_bytes,
                        )
                        .await?
                    }
                }
            }
        };
        let elapsed = run.start.elapsed();
        let frames = run.counter.frames;
        Ok(ReceiveReport {
            validation: run.validator.finish(),
            stop,
            media_timeout: stop == StopReason::MediaTimeout,
            frames,
            packets: run.packets,
            framing_errors,
            trailing_bytes,
            peer,
            elapsed,
            first_packet: run.first_packet,
            capture: run.capture.packets,
            capture_truncated: run.capture.truncated,
        })
    }
}

async fn read_tcp(
    mut s: TcpStream,
    run: &mut Run<'_>,
    cancel: &Cancel,
    framing_errors: &mut u64,
    trailing: &mut usize,
) -> Result<StopReason> {
    let local = s.local_addr()?;
    let peer = s
        .peer_addr()
        .map_err(|e| anyhow!("media connection: {e}"))?;
    let mut dec = TcpMediaDecoder::new();
    let mut reported = false;
    let mut buf = vec![0u8; 64 * 1024];
    let stop = loop {
        if run.frames_done() {
            break StopReason::Frames;
        }
        let (wake, is_timeout) = run.wake();
        let got = tokio::select! {
            biased;
            _ = cancel.cancelled() => break StopReason::Cancelled,
            r = tokio::time::timeout_at(wake, s.read(&mut buf)) => r,
        };
        let n = match got {
            Err(_) if is_timeout => break StopReason::MediaTimeout,
            Err(_) => break StopReason::Duration,
            Ok(Ok(0)) | Ok(Err(_)) => break StopReason::PeerClosed,
            Ok(Ok(n)) => n,
        };
        dec.feed(&buf[..n]);
        if dec.framing() == Some(TcpFraming::RtspInterleaved) && !reported {
            // Decode leniently, judge strictly: the stream is still validated.
            reported = true;
            run.validator
                .add_finding(FindingCode::TcpRtspFraming, super::framing::RTSP_FRAMING);
        }
        while let Some((prefix, pkt)) = dec.next_packet() {
            run.packet(peer, local, Transport::Tcp, &prefix, &pkt);
            if run.frames_done() {
                break;
            }
        }
    };
    *framing_errors = dec.errors();
    *trailing = dec.buffered();
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rtp::RtpHeader;
    use bytes::BytesMut;

    fn pkt(ts: u32, marker: bool) -> Vec<u8> {
        let mut h = RtpHeader::new(96, 0, ts, 1);
        h.marker = marker;
        let mut b = BytesMut::new();
        h.encode(&mut b).unwrap();
        b.to_vec()
    }

    #[test]
    fn frames_end_at_the_marker_or_the_next_timestamp() {
        let mut c = FrameCounter::default();
        for (ts, m) in [
            (0, false),
            (0, true),
            (3600, true),
            (7200, false),
            (10800, false),
        ] {
            c.push(&pkt(ts, m));
        }
        // 0 ends at its marker, 3600 at its marker, 7200 when 10800 starts.
        assert_eq!(c.frames, 3);
        c.push(&[0x80, 200, 0, 1]);
        c.push(b"junk");
        assert_eq!(c.frames, 3);
    }
}
