//! The reference platform as a load run's target (`camcert load platform`,
//! started by `camcert load gb28181` in a process of its own): the same
//! sans-IO [`Platform`] the harness plays, on one signalling socket, with a
//! media receiver built for many streams.
//!
//! With `--streams M` it INVITEs (实时预览) each provisioned camera among
//! the first M of the fleet once it registers, and receives every stream on
//! a few UDP sockets: one per 9,999 streams, since a GB/T 28181 SSRC
//! (附录F) numbers at most 9,999 streams of a domain; a stream is known by
//! its socket and SSRC. Each stream is checked as it arrives: RTP version
//! and payload type, loss and reordering by sequence number, RFC 3550
//! interarrival jitter, a PS pack header at the start of every frame, and
//! the time from the INVITE to its first packet. When stopped (SIGTERM,
//! SIGINT, `--duration`) it writes what it saw to `--stats` as JSON
//! ([`ReceivedMedia`]), which the load run reads into its report.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use super::metrics::{histogram, record, HistogramData, Percentiles, ReceivedHistograms};
use super::metrics::{ReceivedMedia, Spread};
use super::tcp::Read;
use crate::proto::gb28181::platform::{Platform, PlatformConfig, PlatformEvent};
use crate::proto::gb28181::session::{EndReason, SessionCommand, SessionEvent};
use crate::proto::sdp::Ssrc;
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transport};

/// Streams one media socket receives (the 4-digit stream part of a SSRC).
pub const STREAMS_PER_SOCKET: u64 = 9_999;
/// Problems the stats keep, each naming its stream.
const MAX_PROBLEMS: usize = 20;
/// Datagrams read per socket before the others get a turn.
const BUDGET: usize = 256;

/// What `camcert load platform` was asked to do.
#[derive(Debug, Clone)]
pub struct PlatformPlan {
    pub listen: SocketAddr,
    pub transport: Transport,
    pub cfg: PlatformConfig,
    /// The fleet's first device ID: offsets count from it.
    pub first_id: String,
    /// INVITE the cameras at offsets below this.
    pub streams: u64,
    pub stats: Option<std::path::PathBuf>,
    pub duration: Option<Duration>,
    /// While busy, the UDP signalling socket is read on multiples of this
    /// (zero: as each datagram comes); see [`super::udp::Sockets`].
    pub tick: Duration,
}

/// The time now: the local wall-clock time is read once and then follows
/// the monotonic clock, as in the fleet (reading the time zone for every
/// message was a visible share of the platform's CPU).
fn now() -> Now {
    static ANCHOR: std::sync::OnceLock<(Instant, chrono::NaiveDateTime)> =
        std::sync::OnceLock::new();
    let (mono0, wall0) =
        *ANCHOR.get_or_init(|| (Instant::now(), chrono::Local::now().naive_local()));
    let mono = Instant::now();
    let since = chrono::Duration::from_std(mono - mono0).unwrap_or_default();
    Now {
        mono,
        wall: wall0 + since,
    }
}

/// A stream the media receiver is told to expect.
struct Expect {
    key: (u8, u32),
    device: String,
    invited: Instant,
}

/// One stream as the receiver sees it.
#[derive(Default)]
struct RxStream {
    device: Option<String>,
    invited: Option<Instant>,
    first: Option<Instant>,
    packets: u64,
    bytes: u64,
    base: u64,
    /// Highest extended sequence number.
    max: u64,
    late: u64,
    /// RFC 3550 §6.4.1 J, in 90 kHz units.
    jitter: f64,
    /// The previous packet's arrival (90 kHz units) and RTP timestamp.
    prev: Option<(f64, u32)>,
    /// The next in-order packet starts a frame (the previous one was a marker).
    frame_start: bool,
    ps_errors: u64,
}

/// Per-stream figures and the media totals, built as packets arrive.
struct Receiver {
    streams: HashMap<(u8, u32), RxStream>,
    epoch: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    rtp_errors: u64,
    problems: Vec<String>,
    payload_type: u8,
}

impl Receiver {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    fn expect(&mut self, e: Expect) {
        let s = self.streams.entry(e.key).or_default();
        s.device = Some(e.device);
        s.invited = Some(e.invited);
        // Packets that came before the session was known: their latency
        // counts from the INVITE all the same.
    }

    fn packet(&mut self, sock: u8, data: &[u8], at: Instant) {
        if data.len() < 12 || data[0] >> 6 != 2 {
            self.rtp_errors += 1;
            if self.rtp_errors == 1 {
                self.problem(format!(
                    "media socket {sock}: a datagram of {} bytes that is not RTP version 2 (sender side)",
                    data.len()
                ));
            }
            return;
        }
        let marker = data[1] & 0x80 != 0;
        let pt = data[1] & 0x7F;
        let seq = u16::from_be_bytes([data[2], data[3]]);
        let ts = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let csrc = usize::from(data[0] & 0x0F) * 4;
        let payload = data.get(12 + csrc..).unwrap_or_default();
        self.first.get_or_insert(at);
        self.last = Some(at);
        let arrival = (at - self.epoch).as_secs_f64() * 90_000.0;
        let expected_pt = self.payload_type;
        let s = self.streams.entry((sock, ssrc)).or_default();
        if s.packets == 0 {
            s.first = Some(at);
            s.base = u64::from(seq);
            s.max = u64::from(seq);
            s.frame_start = true;
        }
        s.packets += 1;
        s.bytes += data.len() as u64;
        // `in_order`: the packet right after the highest so far (or the
        // first); `advanced`: it is the new highest, after a gap or not.
        let (mut in_order, mut advanced) = (s.packets == 1, s.packets == 1);
        if s.packets > 1 {
            let delta = seq.wrapping_sub(s.max as u16) as i16;
            if delta > 0 {
                in_order = delta == 1;
                advanced = true;
                s.max += delta as u64;
            } else {
                s.late += 1;
            }
        }
        // RFC 3550 §6.4.1 and A.8: D is the difference of the transit
        // times, taken as arrival gap minus timestamp gap so that a
        // timestamp wrapping past 2^32 counts as the small step it is.
        if let Some((prev_arrival, prev_ts)) = s.prev {
            let gap = f64::from(ts.wrapping_sub(prev_ts) as i32);
            let d = ((arrival - prev_arrival) - gap).abs();
            s.jitter += (d - s.jitter) / 16.0;
        }
        s.prev = Some((arrival, ts));
        let mut problem = None;
        if in_order && s.frame_start && !payload.starts_with(&[0, 0, 1, 0xBA]) {
            s.ps_errors += 1;
            if s.ps_errors == 1 {
                problem = Some(format!(
                    "stream SSRC {ssrc}{}: the frame at sequence {seq} does not start with a PS pack header 00 00 01 BA (GB/T 28181 附录C; camera side)",
                    s.device.as_deref().map(|d| format!(" of {d}")).unwrap_or_default()
                ));
            }
        }
        // After a gap the frame boundary is known again from this packet's
        // marker; a late packet changes nothing.
        if advanced {
            s.frame_start = marker;
        }
        if pt != expected_pt {
            self.rtp_errors += 1;
            if self.rtp_errors == 1 {
                problem = Some(format!(
                    "stream SSRC {ssrc}: payload type {pt}, expected {expected_pt} (PS; camera side)"
                ));
            }
        }
        if let Some(p) = problem {
            self.problem(p);
        }
    }

    fn finish(mut self, sessions: &Sessions) -> ReceivedMedia {
        let mut loss = histogram();
        let mut jitter = histogram();
        let mut latency = histogram();
        let mut r = ReceivedMedia {
            invites_sent: sessions.invites_sent,
            sessions_started: sessions.started,
            invites_failed: sessions.failed,
            rtp_errors: self.rtp_errors,
            ..ReceivedMedia::default()
        };
        let mut problems = std::mem::take(&mut self.problems);
        problems.extend(sessions.problems.iter().cloned());
        let mut keys: Vec<_> = self.streams.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            let s = &self.streams[&k];
            if s.device.is_none() {
                r.unknown_packets += s.packets;
                if problems.len() < MAX_PROBLEMS {
                    problems.push(format!(
                        "{} packets with SSRC {} on media socket {} of no session the platform started (camera side)",
                        s.packets, k.1, k.0
                    ));
                }
                continue;
            }
            if s.packets == 0 {
                r.streams_without_media += 1;
                if problems.len() < MAX_PROBLEMS {
                    problems.push(format!(
                        "stream SSRC {} of {}: the INVITE was answered and acknowledged, but no media arrived (camera side)",
                        k.1,
                        s.device.as_deref().unwrap_or("?")
                    ));
                }
                continue;
            }
            r.streams_with_media += 1;
            let expected = s.max - s.base + 1;
            let lost = expected.saturating_sub(s.packets - s.late);
            r.packets += s.packets;
            r.bytes += s.bytes;
            r.expected += expected;
            r.lost += lost;
            r.late_or_duplicate += s.late;
            r.ps_errors += s.ps_errors;
            if lost > 0 {
                r.streams_with_loss += 1;
                if problems.len() < MAX_PROBLEMS {
                    problems.push(format!(
                        "stream SSRC {} of {}: {lost} of {expected} packets lost",
                        k.1,
                        s.device.as_deref().unwrap_or("?")
                    ));
                }
            }
            let _ = loss.record(lost * 1_000_000 / expected.max(1));
            let _ = jitter.record((s.jitter / 90.0 * 1000.0) as u64);
            if let (Some(i), Some(f)) = (s.invited, s.first) {
                record(&mut latency, f.saturating_duration_since(i));
            }
        }
        if let (Some(a), Some(b)) = (self.first, self.last) {
            r.seconds = (b - a).as_secs_f64();
            if r.seconds > 0.0 {
                r.bits_per_s = r.bytes as f64 * 8.0 / r.seconds;
            }
        }
        r.loss_pct = Spread::of(&loss, 10_000.0);
        r.jitter = Percentiles::of(&jitter);
        r.invite_to_first_packet = Percentiles::of(&latency);
        r.problems = problems;
        r.histograms = ReceivedHistograms {
            loss_ppm: HistogramData::of(&loss),
            jitter: HistogramData::of(&jitter),
            invite_to_first_packet: HistogramData::of(&latency),
        };
        r
    }
}

/// The signalling side's count of the sessions it placed.
#[derive(Default)]
struct Sessions {
    invites_sent: u64,
    started: u64,
    failed: u64,
    problems: Vec<String>,
}

/// Read every media socket until told to stop, then once more until each
/// is empty, and hand back the receiver.
async fn receive(
    socks: Vec<Arc<UdpSocket>>,
    mut expect: mpsc::UnboundedReceiver<Expect>,
    mut stop: oneshot::Receiver<()>,
    mut rx: Receiver,
) -> Receiver {
    let mut bufs = RecvBatch::new();
    let mut ready = vec![true; socks.len()];
    let mut stopping = false;
    loop {
        while let Ok(e) = expect.try_recv() {
            rx.expect(e);
        }
        let mut any = false;
        for (k, sock) in socks.iter().enumerate() {
            let mut n = 0;
            while ready[k] && n < BUDGET {
                match sock.try_io(tokio::io::Interest::READABLE, || bufs.recv(sock.as_ref())) {
                    Ok(got) => {
                        let at = Instant::now();
                        for d in bufs.datagrams(got) {
                            rx.packet(k as u8, d, at);
                        }
                        n += got.max(1);
                        any = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ready[k] = false,
                    Err(_) => n += 1,
                }
            }
        }
        if stopping && !any {
            while let Ok(e) = expect.try_recv() {
                rx.expect(e);
            }
            return rx;
        }
        if any {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            biased;
            e = expect.recv(), if !stopping => {
                if let Some(e) = e {
                    rx.expect(e);
                }
            }
            _ = readable(&socks, &mut ready) => {}
            _ = &mut stop, if !stopping => {
                stopping = true;
                ready.iter_mut().for_each(|r| *r = true);
            }
        }
    }
}

/// Datagrams read per system call at most.
const RECV_BATCH: usize = 64;
/// Room for one datagram: media datagrams are at most 1,400 bytes.
const RECV_SIZE: usize = 2048;

/// Buffers for reading many datagrams per system call (`recvmmsg` on
/// Linux; one `recv` elsewhere).
struct RecvBatch {
    buf: Vec<u8>,
    lens: [usize; RECV_BATCH],
}

impl RecvBatch {
    fn new() -> RecvBatch {
        RecvBatch {
            buf: vec![0u8; RECV_BATCH * RECV_SIZE],
            lens: [0; RECV_BATCH],
        }
    }

    /// Read what is waiting, up to a batch; how many datagrams came.
    #[cfg(target_os = "linux")]
    fn recv(&mut self, sock: &UdpSocket) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let mut iovs: Vec<libc::iovec> = self
            .buf
            .chunks_mut(RECV_SIZE)
            .map(|c| libc::iovec {
                iov_base: c.as_mut_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero msghdr is a valid empty one.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_iov = iov as *mut libc::iovec;
                h.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: each header points at one iovec of `iovs`, each iovec at
        // its own RECV_SIZE chunk of `self.buf`; all outlive the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = r as usize;
        for (k, m) in msgs.iter().take(n).enumerate() {
            // A datagram longer than its buffer is cut (MSG_TRUNC): the
            // receiver sees what fitted.
            self.lens[k] = (m.msg_len as usize).min(RECV_SIZE);
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv(&mut self, sock: &UdpSocket) -> std::io::Result<usize> {
        let n = sock.try_recv(&mut self.buf[..RECV_SIZE])?;
        self.lens[0] = n;
        Ok(1)
    }

    /// The first `n` datagrams of the last read.
    fn datagrams(&self, n: usize) -> impl Iterator<Item = &[u8]> {
        (0..n).map(|k| &self.buf[k * RECV_SIZE..k * RECV_SIZE + self.lens[k]])
    }
}

async fn readable(socks: &[Arc<UdpSocket>], ready: &mut [bool]) {
    std::future::poll_fn(|cx| {
        let mut any = false;
        for (k, s) in socks.iter().enumerate() {
            if s.poll_recv_ready(cx).is_ready() {
                ready[k] = true;
                any = true;
            }
        }
        if any {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Run the platform until `stop` resolves; write the media stats.
pub async fn run(plan: PlatformPlan, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut sig = match plan.transport {
        Transport::Udp => {
            let sip = super::udp::Sockets::bind(&[plan.listen])
                .with_context(|| format!("binding {}", plan.listen))?;
            sip.set_receive_buffer(8 << 20);
            Signalling::Udp(sip)
        }
        Transport::Tcp => Signalling::Tcp {
            listener: TcpListener::bind(plan.listen)
                .await
                .with_context(|| format!("listening on {}", plan.listen))?,
            writers: HashMap::new(),
        },
    };
    let local = match &sig {
        Signalling::Udp(s) => s.local_addr(0).context("the signalling socket's address")?,
        Signalling::Tcp { listener, .. } => listener.local_addr()?,
    };
    let mut cfg = plan.cfg.clone();
    cfg.local = local;
    cfg.transport = plan.transport;
    let media_ip: IpAddr = cfg.media_ip.unwrap_or(local.ip());
    let nsock = plan.streams.div_ceil(STREAMS_PER_SOCKET).min(255) as usize;
    let mut media_socks = Vec::with_capacity(nsock);
    for _ in 0..nsock {
        let s = UdpSocket::bind(SocketAddr::new(media_ip, 0))
            .await
            .context("binding a media socket")?;
        super::media::set_buffer(&s, true, 32 << 20);
        media_socks.push(Arc::new(s));
    }
    let media_ports: Vec<u16> = media_socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?;
    let domain = Ssrc::domain_of(&cfg.platform_id)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("00000")
        .to_string();
    let mut platform = Platform::new(cfg.clone());
    platform.start(now());
    println!(
        "reference platform {} listening on {}://{local}",
        cfg.platform_id,
        plan.transport.via_name().to_ascii_lowercase()
    );
    let (expect_tx, expect_rx) = mpsc::unbounded_channel();
    let (stop_media, stop_media_rx) = oneshot::channel();
    let receiver = Receiver {
        streams: HashMap::new(),
        epoch: Instant::now(),
        first: None,
        last: None,
        rtp_errors: 0,
        problems: Vec::new(),
        payload_type: crate::proto::rtp::PS_PAYLOAD_TYPE,
    };
    let media_task = tokio::spawn(receive(
        media_socks.clone(),
        expect_rx,
        stop_media_rx,
        receiver,
    ));

    let mut sessions = Sessions::default();
    let mut invited = vec![false; plan.streams.min(10_000_000) as usize];
    // Call-ID → (stream index, when its INVITE went out).
    let mut calls: HashMap<String, (u64, Option<Instant>)> = HashMap::new();
    let mut rx = super::udp::RecvMany::default();
    let mut pacer = super::udp::Pacer::new(Instant::now(), plan.tick);
    let (tcp_tx, mut tcp_rx) = mpsc::unbounded_channel::<(SocketAddr, Read)>();
    // A message taken off the channel while waiting: handled first next pass.
    let mut stashed: Option<(SocketAddr, Read)> = None;
    tokio::pin!(stop);
    let deadline = plan.duration.map(|d| tokio::time::Instant::now() + d);
    let mut ctx = PumpCtx {
        plan: &plan,
        domain: &domain,
        media_ports: &media_ports,
        invited: &mut invited,
        calls: &mut calls,
        sessions: &mut sessions,
        expect: &expect_tx,
        outbox: Vec::new(),
    };
    loop {
        let mut n = now();
        let mut read = 0;
        // Datagrams, a batch per call, each handled as of its arrival.
        while read < BUDGET {
            let Signalling::Udp(sip) = &sig else { break };
            let got = match sip.recv(0, &mut rx) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    read += 1;
                    continue;
                }
            };
            n = now();
            let wall = std::time::SystemTime::now();
            for k in 0..got {
                let (bytes, from) = rx.datagram(k);
                let Some(from) = from else { continue };
                let at = super::udp::arrived(&rx, k, wall, n.mono);
                let when = Now { mono: at, ..n };
                match SipMessage::parse(bytes) {
                    Ok(p) => platform.handle_message(when, from, &p.message),
                    Err(_) => platform.handle_unparseable(when, from, bytes),
                }
                ctx.pump(&mut platform, &mut sig).await;
            }
            read += got.max(1);
        }
        // Messages that came over connections.
        while read < BUDGET {
            let (from, bytes) = match &sig {
                Signalling::Tcp { .. } => match stashed.take().or_else(|| tcp_rx.try_recv().ok()) {
                    Some((from, Read::Message(b))) => (from, b),
                    Some((from, Read::Closed(_))) => {
                        if let Signalling::Tcp { writers, .. } = &mut sig {
                            writers.remove(&from);
                        }
                        read += 1;
                        continue;
                    }
                    None => break,
                },
                Signalling::Udp(_) => break,
            };
            n = now();
            match SipMessage::parse(&bytes) {
                Ok(p) => platform.handle_message(n, from, &p.message),
                Err(_) => platform.handle_unparseable(n, from, &bytes),
            }
            read += 1;
            ctx.pump(&mut platform, &mut sig).await;
        }
        if platform.poll_timeout().is_some_and(|t| t <= n.mono) {
            platform.handle_timeout(now());
            ctx.pump(&mut platform, &mut sig).await;
        }
        ctx.send_out(&sig).await;
        if read >= BUDGET {
            tokio::task::yield_now().await;
            continue;
        }
        let wake = platform
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let end =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400));
        // A pass that read something comes round again on the next tick and
        // takes what queued meanwhile in one go; one that read nothing
        // waits for an arrival (or a timer).
        match &mut sig {
            Signalling::Udp(sip) => {
                let wake = tokio::time::Instant::from_std(pacer.next_wake(sip, read > 0, wake));
                tokio::select! {
                    biased;
                    _ = &mut stop => break,
                    _ = tokio::time::sleep_until(end) => break,
                    _ = pacer.arrival() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
            Signalling::Tcp { listener, writers } => tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(end) => break,
                m = tcp_rx.recv() => stashed = m,
                a = listener.accept() => {
                    if let Ok((stream, peer)) = a {
                        let _ = stream.set_nodelay(true);
                        let (rd, wr) = stream.into_split();
                        writers.insert(peer, wr);
                        tokio::spawn(super::tcp::read_messages(rd, peer, tcp_tx.clone()));
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            },
        }
    }
    let _ = stop_media.send(());
    let receiver = media_task.await.context("the media receiver")?;
    let stats = receiver.finish(&sessions);
    if let Some(path) = &plan.stats {
        let text = serde_json::to_string_pretty(&stats)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// What the pump needs besides the platform and its sockets.
struct PumpCtx<'a> {
    plan: &'a PlatformPlan,
    domain: &'a str,
    media_ports: &'a [u16],
    invited: &'a mut Vec<bool>,
    calls: &'a mut HashMap<String, (u64, Option<Instant>)>,
    sessions: &'a mut Sessions,
    expect: &'a mpsc::UnboundedSender<Expect>,
    /// Over UDP: the answers of this pass, sent together by
    /// [`PumpCtx::send_out`].
    outbox: Vec<(SocketAddr, Vec<u8>)>,
}

/// The platform's signalling socket, or its listener and connections.
enum Signalling {
    Udp(super::udp::Sockets),
    Tcp {
        listener: TcpListener,
        writers: HashMap<SocketAddr, OwnedWriteHalf>,
    },
}

impl PumpCtx<'_> {
    /// Send the pass's answers over UDP, a batch per system call.
    async fn send_out(&mut self, sig: &Signalling) {
        if let Signalling::Udp(sip) = sig {
            if !self.outbox.is_empty() {
                let _ = sip.send_all(0, &mut self.outbox).await;
            }
        }
    }

    /// Send what the platform has to send; act on its events: INVITE the
    /// cameras that registered, open their media, expect their streams.
    async fn pump(&mut self, platform: &mut Platform, sig: &mut Signalling) {
        let PumpCtx {
            plan,
            domain,
            media_ports,
            invited,
            calls,
            sessions,
            expect,
            outbox,
        } = self;
        // The stream a `play` trigger just started: its Prepare follows at once.
        let mut placing: Option<u64> = None;
        loop {
            while let Some(t) = platform.poll_transmit() {
                match sig {
                    Signalling::Udp(sip) => {
                        outbox.push((t.to, t.bytes));
                        if outbox.len() >= super::udp::BATCH {
                            let _ = sip.send_all(0, outbox).await;
                        }
                    }
                    Signalling::Tcp { writers, .. } => {
                        // A connection gone is a camera gone: its requests
                        // time out in the platform.
                        if let Some(wr) = writers.get_mut(&t.to) {
                            if super::tcp::write(wr, &t.bytes).await.is_err() {
                                writers.remove(&t.to);
                            }
                        }
                    }
                }
            }
            let Some(e) = platform.poll_event() else {
                break;
            };
            let n = now();
            match e {
                PlatformEvent::Registered {
                    device_id,
                    refresh: false,
                    ..
                } => {
                    let Some(k) = super::id_offset(&plan.first_id, &device_id) else {
                        continue;
                    };
                    let Some(slot) = invited.get_mut(k as usize) else {
                        continue;
                    };
                    if std::mem::replace(slot, true) {
                        continue;
                    }
                    let stream = (k % STREAMS_PER_SOCKET) as u32 + 1;
                    let ssrc = Ssrc::gb(false, domain, stream)
                        .map(|s| s.0)
                        .unwrap_or(stream);
                    let args = BTreeMap::from([
                        ("device_id".to_string(), device_id.clone()),
                        ("ssrc".to_string(), ssrc.to_string()),
                    ]);
                    placing = Some(k);
                    if let Err(e) = platform.trigger(n, "play", &args) {
                        sessions.failed += 1;
                        sessions
                            .problems
                            .push(format!("INVITE to {device_id} not placed: {e}"));
                    }
                }
                PlatformEvent::Session { call_id, event } => match event {
                    SessionEvent::Prepare { .. } => {
                        let Some(k) = placing.take() else {
                            platform.apply_session(n, &call_id, SessionCommand::Refuse);
                            continue;
                        };
                        let sock = (k / STREAMS_PER_SOCKET) as usize;
                        let port = media_ports.get(sock).copied().unwrap_or(0);
                        calls.insert(call_id.clone(), (k, Some(n.mono)));
                        sessions.invites_sent += 1;
                        platform.apply_session(n, &call_id, SessionCommand::Accept(port));
                    }
                    SessionEvent::Started { negotiated, .. } => {
                        let Some(&(k, invited_at)) = calls.get(&call_id) else {
                            continue;
                        };
                        sessions.started += 1;
                        let device = negotiated
                            .offer
                            .uri
                            .clone()
                            .unwrap_or_else(|| format!("camera {k}"));
                        let device = super::id_range(&plan.first_id, k, 1)
                            .ok()
                            .and_then(|v| v.into_iter().next())
                            .unwrap_or(device);
                        let _ = expect.send(Expect {
                            key: ((k / STREAMS_PER_SOCKET) as u8, negotiated.ssrc.0),
                            device,
                            invited: invited_at.unwrap_or(n.mono),
                        });
                    }
                    SessionEvent::Ended { reason, .. } => {
                        let Some((k, _)) = calls.remove(&call_id) else {
                            continue;
                        };
                        let who = super::id_range(&plan.first_id, k, 1)
                            .ok()
                            .and_then(|v| v.into_iter().next())
                            .unwrap_or_default();
                        let why = match reason {
                            EndReason::Rejected(code) => Some(format!("refused {code}")),
                            EndReason::TimedOut => Some("never answered".to_string()),
                            EndReason::AnswerUnusable => {
                                Some("answered with an unusable SDP".to_string())
                            }
                            EndReason::ByeReceived => Some("ended by the camera's BYE".into()),
                            _ => None,
                        };
                        if let Some(why) = why {
                            sessions.failed += 1;
                            if sessions.problems.len() < MAX_PROBLEMS {
                                sessions
                                    .problems
                                    .push(format!("INVITE to {who}: {why} (camera side)"));
                            }
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::media::rtp_header;

    fn receiver() -> Receiver {
        Receiver {
            streams: HashMap::new(),
            epoch: Instant::now(),
            first: None,
            last: None,
            rtp_errors: 0,
            problems: Vec::new(),
            payload_type: 96,
        }
    }

    fn packet(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, ps_start: bool) -> Vec<u8> {
        let mut p = rtp_header(marker, pt, seq, ts, ssrc).to_vec();
        if ps_start {
            p.extend_from_slice(&[0, 0, 1, 0xBA]);
        }
        p.extend_from_slice(&[0x55; 100]);
        p
    }

    fn expect(rx: &mut Receiver, ssrc: u32, device: &str, at: Instant) {
        rx.expect(Expect {
            key: (0, ssrc),
            device: device.into(),
            invited: at,
        });
    }

    /// Frames of two packets each, `frames` of them, from `seq0`, minus `skip`.
    fn stream(rx: &mut Receiver, ssrc: u32, seq0: u16, frames: u16, skip: Option<u16>, t: Instant) {
        for f in 0..frames {
            for k in 0..2u16 {
                let seq = seq0.wrapping_add(f * 2 + k);
                if Some(seq) == skip {
                    continue;
                }
                let p = packet(k == 1, 96, seq, u32::from(f) * 3600, ssrc, k == 0);
                rx.packet(0, &p, t + Duration::from_millis(u64::from(f) * 40));
            }
        }
    }

    #[test]
    fn a_whole_stream_counts_no_loss_across_a_sequence_wrap() {
        let t = Instant::now();
        let mut rx = receiver();
        expect(&mut rx, 7, "34020000001320000001", t);
        stream(&mut rx, 7, 65_530, 10, None, t + Duration::from_millis(5));
        let r = rx.finish(&Sessions::default());
        assert_eq!((r.packets, r.expected, r.lost), (20, 20, 0));
        assert_eq!((r.ps_errors, r.rtp_errors, r.unknown_packets), (0, 0, 0));
        assert_eq!(r.streams_with_media, 1);
        assert_eq!(r.invite_to_first_packet.count, 1);
        assert!((r.invite_to_first_packet.p50_ms - 5.0).abs() < 0.1, "{r:?}");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn jitter_stays_small_across_a_timestamp_wrap() {
        let t = Instant::now();
        let mut rx = receiver();
        expect(&mut rx, 5, "34020000001320000005", t);
        // Frames 40 ms apart, their timestamps 3600 apart, crossing 2^32.
        for f in 0..20u32 {
            let ts = (u32::MAX - 5 * 3600).wrapping_add(f * 3600);
            let p = packet(true, 96, f as u16, ts, 5, true);
            rx.packet(0, &p, t + Duration::from_millis(u64::from(f) * 40));
        }
        let r = rx.finish(&Sessions::default());
        assert_eq!(r.jitter.count, 1);
        assert!(r.jitter.max_ms < 0.1, "{:?}", r.jitter);
        // A stream that arrives unevenly has jitter to show: every other
        // frame 10 ms late.
        let mut rx = receiver();
        expect(&mut rx, 6, "34020000001320000006", t);
        for f in 0..200u32 {
            let late = if f % 2 == 1 { 10 } else { 0 };
            let p = packet(true, 96, f as u16, f * 3600, 6, true);
            rx.packet(0, &p, t + Duration::from_millis(u64::from(f) * 40 + late));
        }
        let r = rx.finish(&Sessions::default());
        assert!((r.jitter.max_ms - 10.0).abs() < 0.5, "{:?}", r.jitter);
    }

    #[test]
    fn a_lost_packet_is_counted_and_named_by_stream() {
        let t = Instant::now();
        let mut rx = receiver();
        expect(&mut rx, 9, "34020000001320000002", t);
        stream(&mut rx, 9, 100, 10, Some(105), t);
        let r = rx.finish(&Sessions::default());
        assert_eq!((r.packets, r.expected, r.lost), (19, 20, 1));
        assert_eq!(r.streams_with_loss, 1);
        assert!((r.loss_pct.max - 5.0).abs() < 0.01, "{:?}", r.loss_pct);
        let p = r.problems.join("\n");
        assert!(
            p.contains("SSRC 9 of 34020000001320000002: 1 of 20 packets lost"),
            "{p}"
        );
        // The lost packet began a frame: the frame's second packet comes
        // after a gap and is not taken for a frame start without a pack
        // header.
        assert_eq!(r.ps_errors, 0, "{p}");
    }

    #[test]
    fn a_frame_whose_first_packet_was_lost_is_no_ps_error() {
        let t = Instant::now();
        let mut rx = receiver();
        expect(&mut rx, 4, "34020000001320000004", t);
        rx.packet(0, &packet(true, 96, 1, 0, 4, true), t);
        // Frame 2 is three packets; its first (sequence 2) is lost.
        rx.packet(0, &packet(false, 96, 3, 3600, 4, false), t);
        rx.packet(0, &packet(true, 96, 4, 3600, 4, false), t);
        rx.packet(0, &packet(true, 96, 5, 7200, 4, true), t);
        let r = rx.finish(&Sessions::default());
        assert_eq!((r.lost, r.ps_errors), (1, 0), "{:?}", r.problems);
    }

    #[test]
    fn a_frame_without_a_pack_header_is_a_camera_side_ps_error() {
        let t = Instant::now();
        let mut rx = receiver();
        expect(&mut rx, 3, "34020000001320000003", t);
        rx.packet(0, &packet(true, 96, 1, 0, 3, true), t);
        // The next frame starts with PES bytes, not a pack header.
        rx.packet(0, &packet(true, 96, 2, 3600, 3, false), t);
        let r = rx.finish(&Sessions::default());
        assert_eq!(r.ps_errors, 1);
        let p = r.problems.join("\n");
        assert!(
            p.contains("the frame at sequence 2 does not start with a PS pack header")
                && p.contains("camera side"),
            "{p}"
        );
    }

    #[test]
    fn wrong_payload_type_unknown_ssrc_and_silent_streams_are_reported() {
        let t = Instant::now();
        let mut rx = receiver();
        expect(&mut rx, 1, "34020000001320000001", t);
        expect(&mut rx, 2, "34020000001320000002", t);
        rx.packet(0, &packet(true, 8, 1, 0, 1, true), t);
        rx.packet(0, &packet(true, 96, 1, 0, 77, true), t);
        rx.packet(0, b"not rtp", t);
        let r = rx.finish(&Sessions::default());
        assert_eq!(r.rtp_errors, 2, "{r:?}");
        assert_eq!(r.unknown_packets, 1);
        assert_eq!(r.streams_without_media, 1);
        let p = r.problems.join("\n");
        assert!(p.contains("payload type 8, expected 96"), "{p}");
        assert!(p.contains("SSRC 77"), "{p}");
        assert!(
            p.contains("SSRC 2 of 34020000001320000002") && p.contains("no media arrived"),
            "{p}"
        );
    }
}
