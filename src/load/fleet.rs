//! N simulated cameras in one task: the same sans-IO [`Device`] as the
//! reference camera, driven by one deadline heap and a few UDP sockets (or
//! a TCP connection per camera).
//!
//! Over UDP each socket carries `per_socket` cameras; they share its
//! address as Contact and Via. An arriving datagram goes to the camera its
//! GB/T 28181 ID names: the From user of a response (the camera's own
//! request), the To user of a request. Over TCP a message goes to the
//! camera whose connection it came on. A camera the platform INVITEs
//! answers with the media socket's port and, once the ACK came, streams
//! [`MediaPackets`] on a second deadline heap, one frame per wake-up,
//! batched into few system calls. Each pass of the loop does a bounded
//! amount of work per kind (starts, timers, media frames, messages) before
//! it looks again at the others, and the run ends at its deadline.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UdpSocket;

use super::udp::Sockets;
use tokio::sync::mpsc;

use super::media::{rtp_header, Batch, MediaPackets, Stream};
use super::metrics::{record, series_interval, Metrics, Sample};
use super::schedule::{Ramp, Timers};
use super::tcp::Read;
use super::LoadPlan;
use crate::proto::gb28181::device::{Device, DeviceConfig, DeviceEvent};
use crate::proto::gb28181::session::{EndReason, SessionCommand, SessionEvent};
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transport};

/// Work of one kind done per loop pass before the others get a turn.
const BUDGET: usize = 512;
/// The ramp wakes the loop on multiples of this since the start, and
/// each wake-up starts every camera due by then (at 2,000 a second, eight
/// REGISTERs in one `sendmmsg`), so its wake-ups do not grow with the
/// rate. Arrivals and the cameras' own timers still wake it at once.
const RAMP_TICK: Duration = Duration::from_millis(4);
/// After the deadline: how long answers to keepalives already sent may
/// still arrive (no new requests go out meanwhile).
const DRAIN: Duration = Duration::from_secs(2);

struct Cam {
    dev: Device,
    /// When the first REGISTER went out.
    started: Option<Instant>,
    /// How long, since then, answers to the camera waited in the fleet
    /// before the camera's reply went out (the tick): taken out of the
    /// register latency, which is the platform's.
    held: Duration,
    registered_once: bool,
    /// Call-ID of the keepalive awaiting its answer.
    keepalive: Option<String>,
    /// The media stream the platform asked for, while it runs.
    stream: Option<Stream>,
    /// When the INVITE of the stream arrived.
    invited_at: Option<Instant>,
}

/// What the fleet hands back when the run ends.
pub struct Outcome {
    pub metrics: Metrics,
    pub registered_at_end: u64,
    pub first_start: Option<Instant>,
    pub last_first_registration: Option<Instant>,
    pub elapsed: Duration,
    pub sockets: usize,
    pub interrupted: bool,
    /// CPU seconds spent building the cameras, before the first send.
    pub setup_cpu_s: f64,
    /// Wall-clock time at the run's start (`t0`).
    pub t0_wall: std::time::SystemTime,
    pub t0: Instant,
    pub series_interval: Duration,
    pub series: Vec<Sample>,
    /// Streams running when the run ended.
    pub streams_at_end: u64,
}

/// The settings every camera of the plan shares: built once, cloned for
/// each camera ([`device_config`]), so the fleet's texts (platform ID,
/// domain, password, names) are shared, not copied ten thousand times.
fn fleet_config(plan: &LoadPlan) -> DeviceConfig {
    // Each camera sets its own ID (and digest username, the same): left
    // empty here, so cloning the template copies no text.
    let mut cfg = DeviceConfig::new(
        "",
        &plan.platform_id,
        &plan.password,
        SocketAddr::new(plan.bind_ip, 0),
        plan.target,
    );
    if let Some(d) = &plan.domain {
        cfg.domain = d.as_str().into();
    }
    cfg.expires = plan.expires;
    cfg.keepalive_interval = plan.keepalive;
    cfg.retry_interval = plan.retry_interval;
    cfg.user_agent = "camcert load".into();
    cfg.transport = plan.transport;
    cfg
}

/// The configuration of the plan's camera `i`, bound at `local`: the
/// fleet's, with its own ID, address and seed.
fn device_config(
    fleet: &DeviceConfig,
    plan: &LoadPlan,
    i: usize,
    local: SocketAddr,
) -> DeviceConfig {
    let mut cfg = fleet.clone();
    cfg.device_id = plan.ids[i].clone();
    cfg.username = plan.ids[i].clone();
    cfg.local = local;
    cfg.seed = plan.seed ^ (plan.first_index + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    cfg
}

/// Back the spare capacity of `v` with memory now, in one system call,
/// rather than a page fault for every 4 KiB as the cameras are written
/// into it (tens of megabytes for a large fleet). Best effort: where the
/// kernel cannot, the pages fault in as before.
fn populate<T>(v: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        let spare = v.spare_capacity_mut();
        let (start, len) = (spare.as_mut_ptr() as usize, std::mem::size_of_val(spare));
        // SAFETY: sysconf takes a plain integer.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = match usize::try_from(page) {
            Ok(p) if p > 0 => p,
            _ => return,
        };
        let first = start.div_ceil(page) * page;
        let last = (start + len) / page * page;
        if last > first {
            // SAFETY: [first, last) lies inside the vector's own
            // allocation; populating pages for writing changes no byte
            // of it.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// The first REGISTER the plan's first camera sends: the datagram the
/// calibration sends.
pub fn first_register(plan: &LoadPlan) -> Vec<u8> {
    let local = SocketAddr::new(plan.bind_ip, 5060);
    let mut dev = Device::new(device_config(&fleet_config(plan), plan, 0, local));
    dev.start(now());
    dev.poll_transmit()
        .map(|t| t.bytes.to_vec())
        .unwrap_or_default()
}

/// The time now. The local wall-clock time is read once and then follows
/// the monotonic clock: reading the time zone for every datagram cost more
/// than the rest of the timekeeping together.
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

/// Run the plan's fleet until its duration ends or `stop` is set.
///
/// Meant for a process that ends soon after (the `load` command): the
/// cameras' memory is left for the process's exit to take back whole,
/// which costs the kernel a page table walk, where dropping ten thousand
/// cameras frees each one's allocations in turn.
pub(crate) async fn run(plan: &LoadPlan, stop: Arc<AtomicBool>) -> Result<Outcome> {
    let n = plan.ids.len();
    let tcp = plan.transport == Transport::Tcp;
    // Over TCP each camera has a connection of its own, opened when it
    // starts; over UDP cameras share sockets.
    let per_socket = if tcp {
        n.max(1)
    } else {
        plan.per_socket.max(1)
    };
    let nsock = if tcp {
        0
    } else {
        n.div_ceil(per_socket).max(1)
    };
    let addrs: Vec<SocketAddr> = (0..nsock)
        .map(|s| {
            SocketAddr::new(
                plan.bind_ip,
                plan.port_base.map(|p| p + s as u16).unwrap_or(0),
            )
        })
        .collect();
    let sockets = Sockets::bind(&addrs)?;
    // One socket sends every camera's media; the SDP answers announce it.
    let media_sock = match &plan.media {
        Some(_) => {
            let sock = UdpSocket::bind(SocketAddr::new(plan.bind_ip, 0))
                .await
                .context("binding the media socket")?;
            super::media::set_buffer(&sock, false, 4 << 20);
            Some(sock)
        }
        None => None,
    };
    let media_port = match &media_sock {
        Some(s) => s.local_addr()?.port(),
        None => 0,
    };
    let setup_start = super::metrics::ProcStats::read(None);
    let fleet = fleet_config(plan);
    let mut cams: Vec<Cam> = Vec::with_capacity(n);
    populate(&mut cams);
    for i in 0..n {
        // Over TCP: replaced by the connection's address when it opens.
        let local = sockets
            .local_addr(i / per_socket)
            .unwrap_or(SocketAddr::new(plan.bind_ip, 0));
        cams.push(Cam {
            dev: Device::new(device_config(&fleet, plan, i, local)),
            started: None,
            held: Duration::ZERO,
            registered_once: false,
            keepalive: None,
            stream: None,
            invited_at: None,
        });
    }

    let setup_cpu_s = match (setup_start, super::metrics::ProcStats::read(None)) {
        (Some(a), Some(b)) => b.cpu_s - a.cpu_s,
        _ => 0.0,
    };
    // The loop reads the sockets itself, into one buffer: a socket is
    // read until it would block, then left until it shows ready again. A
    // loop that falls behind makes the kernel drop datagrams, which the
    // lag figures show. While there is work the loop comes round on its
    // tick and reads what queued meanwhile; only when a pass found nothing
    // to do does an arrival wake it ([`Sockets`]).
    let mut rx = super::udp::RecvMany::default();
    let mut ready = vec![true; nsock];
    let mut pacer = super::udp::Pacer::new(Instant::now(), plan.tick);
    let mut first_socket = 0;
    let (tcp_tx, mut tcp_rx) = mpsc::unbounded_channel::<(usize, Read)>();
    // A message taken off the channel while waiting: handled first next pass.
    let mut stashed: Option<(usize, Read)> = None;
    let mut conns: Vec<Option<OwnedWriteHalf>> = Vec::new();
    if tcp {
        conns.resize_with(n, || None);
    }

    let mut m = Metrics::default();
    let mut timers = Timers::new(n);
    // Each camera's next media frame.
    let mut media_timers = Timers::new(if plan.media.is_some() { n } else { 0 });
    let mut batch = Batch::default();
    // When each datagram of `batch` was due.
    let mut batch_due: Vec<Instant> = Vec::with_capacity(super::media::BATCH);
    let t0 = Instant::now();
    let t0_wall = std::time::SystemTime::now();
    let interval = Duration::from_secs_f64(series_interval(plan.duration.as_secs_f64()));
    let mut series = vec![Sample::of(&m, 0.0)];
    let mut next_sample = t0 + interval;
    let ramp = Ramp {
        t0,
        per_second: plan.ramp,
        count: n as u32,
    };
    let end = t0 + plan.duration;
    let mut next_start: u32 = 0;
    let mut first_start = None;
    let mut last_first_reg = None;
    let mut next_progress = t0 + Duration::from_secs(1);
    // Live progress on a terminal; nothing when standard error is a file
    // or a pipe (CI logs, tests).
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(n as u64),
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:20}] {pos}/{len} registered  {msg}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    });
    let mut interrupted = false;
    let mut last_count = 0u64;
    let mut ctx = Ctx {
        sockets: &sockets,
        per_socket,
        metrics: &mut m,
        last_first_reg: &mut last_first_reg,
        media: plan.media.as_deref(),
        media_port,
        media_timers: &mut media_timers,
        seed: plan.seed,
        conns: &mut conns,
        outbox: vec![Vec::new(); nsock],
    };

    loop {
        let mut now = now();
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if now.mono >= end {
            break;
        }
        // Whether this pass did anything (then the next one comes on the tick).
        let mut active = false;
        // Ramp: first registrations due by now.
        let mut work = 0;
        while next_start < ramp.count && work < BUDGET {
            let at = ramp.start_of(next_start);
            if at > now.mono {
                break;
            }
            now.mono = Instant::now();
            record(
                &mut ctx.metrics.send_lag,
                now.mono.saturating_duration_since(at),
            );
            let i = next_start as usize;
            if tcp {
                match connect(&fleet, plan, i).await {
                    Ok((dev, rd, wr)) => {
                        cams[i].dev = dev;
                        ctx.conns[i] = Some(wr);
                        tokio::spawn(super::tcp::read_messages(rd, i, tcp_tx.clone()));
                    }
                    Err(e) => {
                        ctx.metrics.started += 1;
                        ctx.metrics
                            .fail(format!("TCP connection to the platform: {e}"));
                        next_start += 1;
                        work += 1;
                        continue;
                    }
                }
                now.mono = Instant::now();
            }
            cams[i].started = Some(now.mono);
            first_start.get_or_insert(now.mono);
            cams[i].dev.start(now);
            ctx.metrics.started += 1;
            ctx.flush(&mut cams[i], i, now).await;
            timers.schedule(i as u32, cams[i].dev.poll_timeout());
            next_start += 1;
            work += 1;
        }
        active |= work > 0;
        // Timers due by now.
        work = 0;
        while work < BUDGET {
            now.mono = Instant::now();
            let Some((at, i)) = timers.pop_due(now.mono) else {
                break;
            };
            record(
                &mut ctx.metrics.send_lag,
                now.mono.saturating_duration_since(at),
            );
            let i = i as usize;
            cams[i].dev.handle_timeout(now);
            ctx.flush(&mut cams[i], i, now).await;
            timers.schedule(i as u32, cams[i].dev.poll_timeout());
            work += 1;
        }
        active |= work > 0;
        // Media frames due by now, batched into few system calls.
        if let (Some(media), Some(sock)) = (plan.media.as_deref(), &media_sock) {
            work = 0;
            while work < BUDGET {
                now.mono = Instant::now();
                let Some((at, i)) = ctx.media_timers.pop_due(now.mono) else {
                    break;
                };
                let i = i as usize;
                let invited_at = cams[i].invited_at;
                let Some(s) = cams[i].stream.as_mut() else {
                    continue;
                };
                let range = media.frame(s.frame);
                let last = range.end - 1;
                let ts = s.ts_base.wrapping_add(media.timestamp(s.frame));
                for p in range {
                    let h = rtp_header(p == last, s.payload_type, s.seq, ts, s.ssrc);
                    s.seq = s.seq.wrapping_add(1);
                    batch.push(h, media.payloads[p].clone(), s.remote);
                    batch_due.push(at);
                    if batch.is_full() {
                        flush_media(sock, &mut batch, &mut batch_due, ctx.metrics).await;
                    }
                }
                if !s.first_sent {
                    s.first_sent = true;
                    if let Some(t) = invited_at {
                        record(&mut ctx.metrics.invite_to_first_send, now.mono - t);
                    }
                }
                s.frame += 1;
                let next = media.due(s.t0, s.frame);
                ctx.media_timers.schedule(i as u32, Some(next));
                work += 1;
            }
            if !batch.is_empty() {
                flush_media(sock, &mut batch, &mut batch_due, ctx.metrics).await;
            }
            active |= work > 0;
        }
        // Messages that came over the cameras' connections (these wake
        // the loop as they come).
        work = 0;
        while tcp && work < BUDGET {
            let Some((i, r)) = stashed.take().or_else(|| tcp_rx.try_recv().ok()) else {
                break;
            };
            work += 1;
            now = self::now();
            match r {
                Read::Message(bytes) => {
                    ctx.metrics.datagrams_received += 1;
                    match SipMessage::parse(&bytes) {
                        Ok(p) => {
                            ctx.deliver_to(&mut cams[i], i, plan.target, &p.message, now);
                            ctx.flush(&mut cams[i], i, now).await;
                            timers.schedule(i as u32, cams[i].dev.poll_timeout());
                        }
                        Err(_) => ctx.metrics.unroutable += 1,
                    }
                }
                Read::Closed(why) => {
                    if ctx.conns[i].take().is_some() {
                        ctx.metrics
                            .fail(format!("TCP connection ended by the platform side: {why}"));
                    }
                }
            }
        }
        // Datagrams that arrived; the first socket read turns round pass
        // by pass, so a busy socket cannot keep the others waiting. Each is
        // handled as of when the kernel took it in, not when the loop came
        // round to it.
        work = 0;
        sockets.ready(&mut ready);
        first_socket = (first_socket + 1) % nsock.max(1);
        for s in (first_socket..nsock).chain(0..first_socket) {
            while ready[s] && work < BUDGET {
                match sockets.recv(s, &mut rx) {
                    Ok(got) => {
                        now = self::now();
                        let wall = std::time::SystemTime::now();
                        for k in 0..got {
                            let (bytes, from) = rx.datagram(k);
                            let at = super::udp::arrived(&rx, k, wall, now.mono);
                            let when = Now { mono: at, ..now };
                            if let Some(i) = ctx.deliver(&mut cams, n, s, from, bytes, when).await {
                                timers.schedule(i as u32, cams[i].dev.poll_timeout());
                            }
                        }
                        work += got.max(1);
                        active = true;
                        // A short batch emptied the socket: what comes
                        // later shows it ready again, and a read now would
                        // only be told to wait.
                        if got < super::udp::RECV_BATCH {
                            ready[s] = false;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ready[s] = false,
                    // An ICMP error and the like: the datagram is gone, read on.
                    Err(_) => work += 1,
                }
            }
        }
        // What the pass wrote goes out together: one sendmmsg a socket,
        // its runs of like datagrams one GSO send each.
        ctx.send_out().await;
        if now.mono >= next_progress {
            if let Some(b) = &bar {
                b.set_position(ctx.metrics.registered);
                b.set_message(progress(ctx.metrics, &mut last_count));
            }
            next_progress += Duration::from_secs(1);
        }
        if now.mono >= next_sample {
            series.push(Sample::of(ctx.metrics, (next_sample - t0).as_secs_f64()));
            next_sample += interval;
        }
        if work >= BUDGET {
            tokio::task::yield_now().await;
            continue;
        }
        let mut wake = end.min(next_progress).min(next_sample);
        if next_start < ramp.count {
            wake = wake.min(ramp_wake(t0, ramp.start_of(next_start)));
        }
        if let Some(t) = timers.next() {
            wake = wake.min(t);
        }
        if let Some(t) = ctx.media_timers.next() {
            wake = wake.min(t);
        }
        // A pass that did something comes round again on the next tick,
        // reading whatever queued meanwhile in one go; one that found
        // nothing waits for an arrival (or a timer).
        if !tcp {
            // Over UDP nothing else runs on this thread's runtime.
            pacer.block(&sockets, active, wake, Duration::from_millis(100));
            continue;
        }
        let wake = tokio::time::Instant::from_std(pacer.next_wake(&sockets, active, wake));
        tokio::select! {
            biased;
            m = tcp_rx.recv() => stashed = m,
            _ = pacer.arrival() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    // Drain: answers to requests already sent may still come; nothing new goes out.
    let drain_end = Instant::now() + DRAIN;
    while !interrupted && cams.iter().any(|c| c.keepalive.is_some()) {
        while let Some((i, r)) = stashed.take().or_else(|| tcp_rx.try_recv().ok()) {
            if let Read::Message(bytes) = r {
                ctx.metrics.datagrams_received += 1;
                if let Ok(p) = SipMessage::parse(&bytes) {
                    ctx.deliver_to(&mut cams[i], i, plan.target, &p.message, self::now());
                }
            }
        }
        sockets.ready(&mut ready);
        for (s, ready) in ready.iter_mut().enumerate() {
            while *ready {
                match sockets.recv(s, &mut rx) {
                    Ok(got) => {
                        let (now, wall) = (self::now(), std::time::SystemTime::now());
                        for k in 0..got {
                            let (bytes, from) = rx.datagram(k);
                            let when = Now {
                                mono: super::udp::arrived(&rx, k, wall, now.mono),
                                ..now
                            };
                            ctx.deliver_quiet(&mut cams, n, s, from, bytes, when);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *ready = false,
                    // An ICMP error: gone once read; look again after the wait.
                    Err(_) => break,
                }
            }
        }
        let left = drain_end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if tcp {
            match tokio::time::timeout(left, tcp_rx.recv()).await {
                Ok(Some(m)) => stashed = Some(m),
                _ => break,
            }
        } else if !pacer.arrival_within(&sockets, left).await {
            break;
        }
    }
    if let Some(b) = &bar {
        b.set_position(ctx.metrics.registered);
        b.finish();
    }
    series.push(Sample::of(&m, t0.elapsed().as_secs_f64()));
    let registered_at_end = cams.iter().filter(|c| c.dev.is_registered()).count() as u64;
    let streams_at_end = cams.iter().filter(|c| c.stream.is_some()).count() as u64;
    // Left to the process's exit (see above).
    std::mem::forget(cams);
    Ok(Outcome {
        metrics: m,
        registered_at_end,
        first_start,
        last_first_registration: last_first_reg,
        elapsed: t0.elapsed(),
        // Over TCP: the connections open at the end.
        sockets: if tcp {
            conns.iter().filter(|c| c.is_some()).count()
        } else {
            nsock
        },
        interrupted,
        setup_cpu_s,
        t0_wall,
        t0,
        series_interval: interval,
        series,
        streams_at_end,
    })
}

/// Open camera `i`'s connection to the platform; the camera, made again
/// with the connection's local address for Via and Contact, and the
/// connection's halves.
async fn connect(
    fleet: &DeviceConfig,
    plan: &LoadPlan,
    i: usize,
) -> Result<(Device, OwnedReadHalf, OwnedWriteHalf)> {
    let sock = if plan.target.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    sock.bind(SocketAddr::new(plan.bind_ip, 0))?;
    let stream = sock
        .connect(plan.target)
        .await
        .with_context(|| format!("connecting to {}", plan.target))?;
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr()?;
    let (rd, wr) = stream.into_split();
    Ok((Device::new(device_config(fleet, plan, i, local)), rd, wr))
}

/// Send a batch of media datagrams and count them; each one's lag is how
/// late it left against its frame's schedule.
async fn flush_media(sock: &UdpSocket, batch: &mut Batch, due: &mut Vec<Instant>, m: &mut Metrics) {
    let bytes = batch.bytes() as u64;
    let count = batch.len() as u64;
    let (sent, failed, calls) = batch.flush(sock).await;
    let now = Instant::now();
    // A frame's datagrams share a deadline: one histogram entry per run.
    let mut k = 0;
    while k < due.len() {
        let at = due[k];
        let run = due[k..].iter().take_while(|&&d| d == at).count();
        super::metrics::record_n(
            &mut m.media_send_lag,
            now.saturating_duration_since(at),
            run as u64,
        );
        k += run;
    }
    due.clear();
    m.media_packets_sent += sent;
    m.media_bytes_sent += if sent == count {
        bytes
    } else {
        bytes * sent / count.max(1)
    };
    m.media_send_errors += failed;
    m.media_syscalls += calls;
}

/// The progress bar's message, once a second: first registrations in the
/// last second, p99 register latency so far, failures, keepalives and the
/// generator's p99 send lag.
fn progress(m: &Metrics, last_count: &mut u64) -> String {
    let per_s = m.registered - *last_count;
    *last_count = m.registered;
    let lag = super::metrics::Percentiles::of(&m.send_lag);
    let lat = super::metrics::Percentiles::of(&m.register_latency);
    format!(
        "{per_s}/s  p99 {:.1} ms  failures {}  keepalives {}/{}  lag p99 {:.2} ms",
        lat.p99_ms,
        m.failures_total(),
        m.keepalives_answered,
        m.keepalives_sent,
        lag.p99_ms
    )
}

struct Ctx<'a> {
    sockets: &'a Sockets,
    per_socket: usize,
    metrics: &'a mut Metrics,
    last_first_reg: &'a mut Option<Instant>,
    /// What every stream sends; `None`: INVITEs are refused.
    media: Option<&'a MediaPackets>,
    /// The port of the media socket, announced in SDP answers.
    media_port: u16,
    media_timers: &'a mut Timers,
    seed: u64,
    /// Over TCP: each camera's connection, while open.
    conns: &'a mut Vec<Option<OwnedWriteHalf>>,
    /// Over UDP: each socket's datagrams waiting to go out together
    /// ([`Ctx::send_out`]).
    outbox: Vec<Vec<(SocketAddr, Vec<u8>)>>,
}

impl Ctx<'_> {
    /// The camera a datagram is for, by the GB/T 28181 ID it names.
    fn route(&self, cams: &[Cam], n: usize, s: usize, msg: &SipMessage) -> Option<usize> {
        let header = if msg.is_request() { "To" } else { "From" };
        let user = msg.headers.get(header).and_then(sip_user)?;
        let first = cams.first()?.dev.config().device_id.as_str();
        let i = super::id_offset(first, user)?;
        let i = usize::try_from(i).ok().filter(|&i| i < n)?;
        // A camera's traffic comes to its own socket.
        (i / self.per_socket == s).then_some(i)
    }

    async fn deliver(
        &mut self,
        cams: &mut [Cam],
        n: usize,
        s: usize,
        from: Option<SocketAddr>,
        bytes: &[u8],
        now: Now,
    ) -> Option<usize> {
        let i = self.deliver_quiet(cams, n, s, from, bytes, now)?;
        let queued = self.outbox.get(s).map_or(0, Vec::len);
        self.flush(&mut cams[i], i, now).await;
        if self.outbox.get(s).map_or(0, Vec::len) != queued {
            // The reply leaves now, not when the answer came.
            cams[i].held += Instant::now().saturating_duration_since(now.mono);
        }
        Some(i)
    }

    /// Feed a datagram to its camera and count what it says; sends nothing.
    fn deliver_quiet(
        &mut self,
        cams: &mut [Cam],
        n: usize,
        s: usize,
        from: Option<SocketAddr>,
        bytes: &[u8],
        now: Now,
    ) -> Option<usize> {
        self.metrics.datagrams_received += 1;
        let (Some(from), Ok(parsed)) = (from, SipMessage::parse(bytes)) else {
            self.metrics.unroutable += 1;
            return None;
        };
        let msg = parsed.message;
        let Some(i) = self.route(cams, n, s, &msg) else {
            self.metrics.unroutable += 1;
            return None;
        };
        self.deliver_to(&mut cams[i], i, from, &msg, now);
        Some(i)
    }

    /// Feed a message to camera `i` and count what it says; sends nothing.
    fn deliver_to(
        &mut self,
        cam: &mut Cam,
        i: usize,
        from: SocketAddr,
        msg: &SipMessage,
        now: Now,
    ) {
        if let (Some(code), Some(k)) = (msg.status(), &cam.keepalive) {
            if msg.call_id() == Some(k.as_str()) && code >= 200 {
                if (200..300).contains(&code) {
                    self.metrics.keepalives_answered += 1;
                } else {
                    self.metrics.fail(format!("keepalive refused {code}"));
                }
                cam.keepalive = None;
            }
        }
        cam.dev.handle_message_from(now, from, msg);
        self.events(cam, i, now);
    }

    fn events(&mut self, cam: &mut Cam, i: usize, now: Now) {
        let mut answers: Vec<(String, SessionCommand)> = Vec::new();
        while let Some(e) = cam.dev.poll_event() {
            let now = now.mono;
            match e {
                DeviceEvent::Session { call_id, event } => {
                    if let Some(c) = self.session_event(cam, i, now, call_id, event) {
                        answers.push(c);
                    }
                }
                DeviceEvent::Registered { .. } => {
                    if cam.registered_once {
                        self.metrics.refreshes += 1;
                    } else {
                        cam.registered_once = true;
                        self.metrics.registered += 1;
                        *self.last_first_reg = Some(now);
                        if let Some(t) = cam.started {
                            let took = now.saturating_duration_since(t);
                            record(
                                &mut self.metrics.register_latency,
                                took.saturating_sub(cam.held),
                            );
                        }
                    }
                }
                DeviceEvent::Rejected { status } => {
                    self.metrics.fail(format!("register refused {status}"))
                }
                DeviceEvent::TimedOut => self.metrics.fail("register timed out".into()),
                DeviceEvent::PlatformOffline { missed } => self
                    .metrics
                    .fail(format!("platform offline ({missed} keepalives unanswered)")),
                DeviceEvent::BadMessage { .. } => self
                    .metrics
                    .fail("unusable message from the platform".into()),
                DeviceEvent::RequestFailed { method, status } => self.metrics.fail(match status {
                    Some(c) => format!("{method} refused {c}"),
                    None => format!("{method} timed out"),
                }),
                _ => {}
            }
        }
        // Answers to INVITEs: their 200 (or 488) joins the transmits.
        for (call_id, cmd) in answers {
            cam.dev.apply_session(now, &call_id, cmd);
            self.events(cam, i, now);
        }
    }

    /// A media session's event: answer an INVITE with the media socket,
    /// start and stop the stream.
    fn session_event(
        &mut self,
        cam: &mut Cam,
        i: usize,
        now: Instant,
        call_id: String,
        event: SessionEvent,
    ) -> Option<(String, SessionCommand)> {
        match event {
            SessionEvent::Offer { .. } => {
                self.metrics.invites += 1;
                if self.media.is_none() || cam.stream.is_some() {
                    self.metrics.fail(if self.media.is_none() {
                        "INVITE refused: the fleet streams only with --streams".into()
                    } else {
                        "INVITE refused: the camera already streams".into()
                    });
                    return Some((call_id, SessionCommand::Refuse));
                }
                cam.invited_at = Some(now);
                Some((call_id, SessionCommand::Accept(self.media_port)))
            }
            SessionEvent::Started { negotiated, .. } => {
                let Some(v) = negotiated.media.iter().find(|m| m.sends()) else {
                    self.metrics
                        .fail("media session with nothing for the camera to send".into());
                    return None;
                };
                let seed = self.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
                self.metrics.streams_started += 1;
                self.metrics.first_stream.get_or_insert(now);
                cam.stream = Some(Stream {
                    remote: v.remote,
                    ssrc: negotiated.ssrc.0,
                    payload_type: v.payload_type,
                    t0: now,
                    frame: 0,
                    seq: seed as u16,
                    ts_base: (seed >> 16) as u32,
                    first_sent: false,
                });
                self.media_timers.schedule(i as u32, Some(now));
                None
            }
            SessionEvent::Ended { reason, .. } => {
                if cam.stream.take().is_some() {
                    self.metrics.streams_ended += 1;
                    self.media_timers.schedule(i as u32, None);
                }
                match reason {
                    EndReason::ByeReceived | EndReason::ByeSent => {}
                    EndReason::NoAck => self
                        .metrics
                        .fail("media session: the platform never sent ACK for the 200".into()),
                    r => self.metrics.fail(format!("media session ended: {r:?}")),
                }
                None
            }
            _ => None,
        }
    }

    /// Send what the camera has to send and count its keepalives.
    async fn flush(&mut self, cam: &mut Cam, i: usize, now: Now) {
        self.events(cam, i, now);
        while let Some(t) = cam.dev.poll_transmit() {
            if t.bytes.starts_with(b"MESSAGE ") && memfind(&t.bytes, b">Keepalive<") {
                let call_id = SipMessage::parse(&t.bytes)
                    .ok()
                    .and_then(|p| p.message.call_id().map(str::to_string));
                // A retransmission carries the same Call-ID: one keepalive.
                if call_id.is_some() && call_id != cam.keepalive {
                    if cam.keepalive.is_some() {
                        // The previous one was never answered.
                        self.metrics.fail("keepalive unanswered".into());
                    }
                    self.metrics.keepalives_sent += 1;
                    cam.keepalive = call_id;
                }
            }
            self.metrics.datagrams_sent += 1;
            let s = i / self.per_socket;
            if let Some(out) = self.outbox.get_mut(s) {
                // Over UDP: out with the others at the end of the pass.
                out.push((t.to, t.bytes));
                if out.len() >= super::udp::BATCH {
                    self.send_out().await;
                }
                continue;
            }
            let sent = match self.conns.get_mut(i).and_then(Option::as_mut) {
                Some(wr) => super::tcp::write(wr, &t.bytes).await,
                None => Err(std::io::ErrorKind::NotConnected.into()),
            };
            if sent.is_err() {
                self.metrics.send_errors += 1;
            }
        }
    }

    /// Send the datagrams waiting in the sockets' outboxes, a batch per
    /// system call.
    async fn send_out(&mut self) {
        for (s, out) in self.outbox.iter_mut().enumerate() {
            if !out.is_empty() {
                self.metrics.send_errors += self.sockets.send_all(s, out).await;
            }
        }
    }
}

/// When the loop wakes for a ramp start due `at`: the first tick of
/// [`RAMP_TICK`] since `t0` at or after it.
fn ramp_wake(t0: Instant, at: Instant) -> Instant {
    let tick = RAMP_TICK.as_nanos();
    let k = at.saturating_duration_since(t0).as_nanos().div_ceil(tick);
    t0 + Duration::from_nanos(u64::try_from(k * tick).unwrap_or(u64::MAX))
}

/// The user part of the SIP URI in a From or To value, read in place (the
/// camera's ID routes the message; the camera's own machine parses it
/// in full).
fn sip_user(value: &str) -> Option<&str> {
    let at = value.find("sip:")? + 4;
    let rest = &value[at..];
    let end = rest.find(['@', '>', ';', ' '])?;
    (rest.as_bytes()[end] == b'@').then(|| &rest[..end])
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_route_by_the_uri_user() {
        for v in [
            "<sip:34020000001320000001@3402000000>;tag=1",
            "\"cam\" <sip:34020000001320000001@10.0.0.1:5060>",
            "sip:34020000001320000001@3402000000;tag=9",
        ] {
            assert_eq!(sip_user(v), Some("34020000001320000001"), "{v}");
            let parsed = crate::proto::sip::NameAddr::parse(v).and_then(|a| a.uri.user);
            assert_eq!(parsed.as_deref(), sip_user(v), "{v}");
        }
        assert_eq!(sip_user("<sip:3402000000>"), None);
        assert_eq!(sip_user("<tel:123>"), None);
    }

    #[test]
    fn a_camera_set_up_from_the_fleet_template_is_set_up_as_on_its_own() {
        let plan = LoadPlan {
            target: "127.0.0.1:5060".parse().unwrap(),
            target_label: "udp://127.0.0.1:5060".into(),
            builtin_platform: false,
            platform_id: "34020000002000000001".into(),
            domain: Some("3402000001".into()),
            password: "pw".into(),
            ids: vec!["34020000001320000001".into(), "34020000001320000002".into()],
            first_index: 10,
            shard: super::super::Shard { index: 0, count: 1 },
            ramp: 100.0,
            duration: Duration::from_secs(1),
            keepalive: Duration::from_secs(30),
            expires: 600,
            retry_interval: Duration::from_secs(5),
            seed: 42,
            per_socket: 500,
            bind_ip: "127.0.0.1".parse().unwrap(),
            port_base: None,
            lag_threshold: Duration::from_millis(10),
            calibrate: false,
            streams: 0,
            media: None,
            bitrate_kbit_s: 0.0,
            transport: Transport::Udp,
            tick: Duration::from_millis(5),
        };
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let fleet = fleet_config(&plan);
        for i in 0..2 {
            // What one camera's settings were before the template: built
            // from scratch for it.
            let mut own = DeviceConfig::new(
                &plan.ids[i],
                &plan.platform_id,
                &plan.password,
                local,
                plan.target,
            );
            own.domain = "3402000001".into();
            own.expires = 600;
            own.keepalive_interval = plan.keepalive;
            own.retry_interval = plan.retry_interval;
            own.user_agent = "camcert load".into();
            own.seed = 42 ^ (10 + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let from_template = device_config(&fleet, &plan, i, local);
            assert_eq!(
                format!("{from_template:?}"),
                format!("{own:?}"),
                "camera {i}"
            );
        }
    }

    #[test]
    fn ramp_starts_wake_the_loop_on_ticks() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(ramp_wake(t0, t0), t0);
        assert_eq!(
            ramp_wake(t0, t0 + Duration::from_micros(500)),
            t0 + RAMP_TICK
        );
        assert_eq!(ramp_wake(t0, t0 + RAMP_TICK), t0 + RAMP_TICK);
        assert_eq!(ramp_wake(t0, t0 + RAMP_TICK + ms(1)), t0 + RAMP_TICK * 2);
    }
}
