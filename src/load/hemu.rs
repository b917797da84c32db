//! `camcert load hemu`: a fleet of HEDGW devices (TDs) against a gateway.
//!
//! Every simulated TD is the sans-IO reference [`Device`]: it logs in
//! (§5.2.1), keeps the connection alive with PING/PONG at the negotiated
//! `ping_pong_span` (§5.2.2) and, once logged in on a plan that uploads,
//! pushes TDMediaPackage media (§5.2.3) at `--bitrate` per device. The
//! H.264 sample is split into packages once ([`MediaTemplates`]); each
//! device stamps its own sequence numbers, start times and `ipcam_time`
//! onto the shared packages as it sends them.
//!
//! One task per TLS connection, all on the one runtime: a device's task
//! sleeps until its socket is readable, its machine's deadline or its next
//! media package, whichever comes first. Without `--target`, the reference
//! gateway machine ([`Gateway`]) answers on loopback, one task per
//! connection, and counts the media it receives. Everything is bounded:
//! handshakes in flight, read buffers, writes per wake, the run's length
//! and the grace after it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::metrics::{histogram, record, Keepalives, Percentiles, ProcStats};
use crate::peers::hedgw::{tls, UtcClock};
use crate::proto::hedgw::device::{Device, DeviceConfig, DeviceEvent};
use crate::proto::hedgw::gateway::{Gateway, GatewayConfig, GatewayEvent};
use crate::proto::hedgw::media::Packager;
use crate::proto::hedgw::msg::{self, result};
use crate::proto::hedgw::{frame, MessageType, TdMediaPackage};
use crate::transport::clock::Clock;

/// How long a TCP connect and a TLS handshake may take, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a device waits for DevLoginResp.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// After the run, how long the built-in gateway may take to read what is
/// still on its connections.
const DRAIN: Duration = Duration::from_secs(5);
/// Read buffer of each connection (either side).
const READ_BUF: usize = 4096;
/// Media packages a device writes in one wake at most (a device that fell
/// behind catches up over several wakes, and the lag shows it).
const BURST: usize = 32;
/// Pictures split into packages once and shared by the fleet (10 s at 25 fps).
const TEMPLATE_PICTURES: usize = 250;

/// A resolved `load hemu` run.
#[derive(Debug, Clone)]
pub struct HemuPlan {
    pub devices: u64,
    /// The gateway; `None` starts the reference gateway on loopback.
    pub target: Option<SocketAddr>,
    /// The name the gateway's certificate is checked against (any
    /// certificate is taken; the name goes into SNI).
    pub server_name: String,
    pub ramp: f64,
    pub duration: Duration,
    pub bitrate_kbit_s: f64,
    /// H.264 Annex B the devices upload, looped.
    pub video: Vec<u8>,
    pub fps: u32,
    pub access_key: String,
    /// The devices' access_secret (from the environment or a file).
    pub secret: String,
    /// The built-in gateway's configuration (ignored with a target).
    pub gateway: GatewayConfig,
    pub lag_threshold: Duration,
    /// TCP connects and TLS handshakes in flight at once, at most.
    pub max_handshakes: usize,
}

/// The media of the fleet, split into TDMediaPackages once.
pub struct MediaTemplates {
    packages: Vec<TdMediaPackage>,
    /// Length of one pass, for `start_time` of later passes.
    pass_ms: u32,
    /// Packages of each package_type in one pass, for `seq_num` of later passes.
    per_type: BTreeMap<u32, u32>,
}

impl MediaTemplates {
    pub fn new(video: &[u8], fps: u32) -> Result<MediaTemplates> {
        let mut p = Packager::h264(video, fps).context("the media holds no H.264 picture")?;
        let mut packages = Vec::new();
        for _ in 0..TEMPLATE_PICTURES {
            packages.extend(p.next_packages(0));
        }
        let mut per_type = BTreeMap::new();
        for t in &packages {
            *per_type.entry(t.package_type).or_insert(0u32) += 1;
        }
        Ok(MediaTemplates {
            packages,
            pass_ms: p.due().as_millis() as u32,
            per_type,
        })
    }

    /// The `i`-th package a device sends, framed, stamped `wall_ms`.
    /// With it, the length of its `data`.
    fn framed(&self, i: u64, wall_ms: u64) -> (Vec<u8>, usize) {
        let n = self.packages.len() as u64;
        let pass = (i / n) as u32;
        let t = &self.packages[(i % n) as usize];
        let mut p = t.clone();
        p.start_time = t.start_time.wrapping_add(pass.wrapping_mul(self.pass_ms));
        let per = self.per_type.get(&t.package_type).copied().unwrap_or(0);
        p.seq_num = t.seq_num.wrapping_add(pass.wrapping_mul(per));
        p.ipcam_time = Some(wall_ms);
        let data = p.data.len();
        (frame::encode(&msg::media(p)), data)
    }
}

/// What the fleet saw, shared by the device tasks.
struct Stats {
    handshake: Histogram<u64>,
    login: Histogram<u64>,
    send_lag: Histogram<u64>,
    first_connect: Option<Instant>,
    last_handshake: Option<Instant>,
    handshakes: u64,
    logged_in: u64,
    online_at_end: u64,
    login_results: BTreeMap<u32, u64>,
    failures: BTreeMap<String, u64>,
    pings_sent: u64,
    pongs: u64,
    first_media: Option<Instant>,
    /// Seconds devices spent streaming, all added up.
    stream_s: f64,
    packages_sent: u64,
    payload_bytes_sent: u64,
    wire_bytes_sent: u64,
    findings: BTreeMap<String, u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            handshake: histogram(),
            login: histogram(),
            send_lag: histogram(),
            first_connect: None,
            last_handshake: None,
            handshakes: 0,
            logged_in: 0,
            online_at_end: 0,
            login_results: BTreeMap::new(),
            failures: BTreeMap::new(),
            pings_sent: 0,
            pongs: 0,
            first_media: None,
            stream_s: 0.0,
            packages_sent: 0,
            payload_bytes_sent: 0,
            wire_bytes_sent: 0,
            findings: BTreeMap::new(),
        }
    }

    fn fail(&mut self, reason: String) {
        *self.failures.entry(reason).or_default() += 1;
    }
}

/// What the built-in gateway saw.
#[derive(Default)]
struct GatewayStats {
    connections: u64,
    refused: BTreeMap<String, u64>,
    logins: u64,
    packages: u64,
    payload_bytes: u64,
    findings: BTreeMap<String, u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name of a DevLoginResp result (§5.2.1).
pub fn result_name(r: u32) -> &'static str {
    match r {
        result::OK => "ok",
        result::AUTH_FAILED => "authentication failed or token expired",
        result::LIMITED => "limited, retry in 90 s",
        result::DELETED => "device deleted",
        _ => "not a result §5.2.1 lists",
    }
}

/// The JSON report of a `load hemu` run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HemuReport {
    pub protocol: String,
    pub devices: u64,
    pub target: String,
    pub builtin_gateway: bool,
    pub duration_s: f64,
    pub ramp_per_s: f64,
    pub bitrate_kbit_s: f64,
    /// TLS handshakes completed (reconnections after a refused login included).
    pub handshakes: u64,
    /// Handshakes completed per second, from the first connect to the last handshake.
    pub handshakes_per_s: f64,
    /// TCP connected to TLS 1.2 established.
    pub handshake: Percentiles,
    /// Devices that logged in at least once.
    pub logged_in: u64,
    pub online_at_end: u64,
    /// DevLoginReq sent to DevLoginResp result 0.
    pub login: Percentiles,
    /// DevLoginResp results received, by code (0 included).
    pub login_results: BTreeMap<String, u64>,
    /// Failures by reason: refused logins by result code, TLS and connect
    /// errors, missing answers, closed connections.
    pub failures: BTreeMap<String, u64>,
    pub failures_total: u64,
    /// PINGs sent and PONGs received; PINGs still within their span at the end are not counted.
    pub pings: Keepalives,
    pub media: HemuMedia,
    /// Findings the devices raised about the gateway, by code.
    pub device_findings: BTreeMap<String, u64>,
    pub generator: HemuGenerator,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HemuMedia {
    pub packages_sent: u64,
    /// TDMediaPackage `data` bytes.
    pub payload_bytes_sent: u64,
    /// Framed HEDGW messages (length prefix and protobuf), before TLS.
    pub wire_bytes_sent: u64,
    pub sent_packages_per_s: f64,
    pub sent_bits_per_s: f64,
    /// Wire bits per second of a device while it streamed (its pace).
    pub sent_bits_per_s_per_device: f64,
    /// What the built-in gateway received (none with --target).
    pub received: Option<HemuReceived>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HemuReceived {
    pub connections: u64,
    pub refused: BTreeMap<String, u64>,
    pub logins: u64,
    pub packages: u64,
    pub payload_bytes: u64,
    pub bits_per_s: f64,
    /// Findings the gateway raised about the devices, by code.
    pub findings: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HemuGenerator {
    /// How late timers and media packages ran against when they were due.
    pub send_lag: Percentiles,
    pub lag_threshold_ms: f64,
    pub saturated: bool,
    /// CPU seconds of the process over the run (the built-in gateway included).
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub tasks: u64,
}

impl HemuReport {
    /// Every device logged in, nothing failed, and the generator kept up.
    pub fn passed(&self) -> bool {
        self.logged_in == self.devices && self.failures_total == 0 && !self.generator.saturated
    }

    pub fn write_text(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let p = |x: &Percentiles| {
            format!(
                "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({})",
                x.p50_ms, x.p90_ms, x.p99_ms, x.max_ms, x.count
            )
        };
        writeln!(
            w,
            "HEDGW load: {} devices -> {}{} for {:.1} s, ramp {}/s, {} kbit/s each",
            self.devices,
            self.target,
            if self.builtin_gateway {
                " (built-in gateway)"
            } else {
                ""
            },
            self.duration_s,
            self.ramp_per_s,
            self.bitrate_kbit_s
        )?;
        writeln!(
            w,
            "  TLS handshakes {} ({:.1}/s)  {}",
            self.handshakes,
            self.handshakes_per_s,
            p(&self.handshake)
        )?;
        writeln!(
            w,
            "  logged in      {} of {} ({} online at the end)  {}",
            self.logged_in,
            self.devices,
            self.online_at_end,
            p(&self.login)
        )?;
        let results: Vec<String> = self
            .login_results
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        writeln!(w, "  login results  {}", results.join(", "))?;
        writeln!(w, "  failures       {}", self.failures_total)?;
        for (k, v) in &self.failures {
            writeln!(w, "    {v:>8}  {k}")?;
        }
        writeln!(
            w,
            "  pings          {} sent, {} answered ({:.1}%)",
            self.pings.sent,
            self.pings.answered,
            self.pings.ratio * 100.0
        )?;
        let m = &self.media;
        writeln!(
            w,
            "  media sent     {} packages ({:.0}/s), {:.2} Mbit/s ({:.1} kbit/s per device)",
            m.packages_sent,
            m.sent_packages_per_s,
            m.sent_bits_per_s / 1e6,
            m.sent_bits_per_s_per_device / 1e3
        )?;
        if let Some(r) = &m.received {
            writeln!(
                w,
                "  media received {} packages, {:.2} Mbit/s of payload ({} logins, {} connections)",
                r.packages,
                r.bits_per_s / 1e6,
                r.logins,
                r.connections
            )?;
            for (k, v) in &r.refused {
                writeln!(w, "    {v:>8}  refused: {k}")?;
            }
            for (k, v) in &r.findings {
                writeln!(w, "    {v:>8}  gateway finding {k}")?;
            }
        }
        for (k, v) in &self.device_findings {
            writeln!(w, "    {v:>8}  device finding {k}")?;
        }
        let g = &self.generator;
        writeln!(
            w,
            "  generator      send lag {}{}; CPU {:.2} s, RSS {:.1} MiB, {} tasks",
            p(&g.send_lag),
            if g.saturated { " (saturated)" } else { "" },
            g.cpu_s,
            g.rss_bytes as f64 / (1024.0 * 1024.0),
            g.tasks
        )?;
        writeln!(w, "  verdict        {}", self.verdict)
    }
}

struct Fleet {
    plan: HemuPlan,
    target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    media: MediaTemplates,
    handshakes: Semaphore,
    stats: Mutex<Stats>,
    t0: tokio::time::Instant,
    end: tokio::time::Instant,
}

/// Run the fleet; the report is written by the caller.
pub async fn run(plan: HemuPlan) -> Result<HemuReport> {
    if plan.devices == 0 {
        bail!("--devices 0: nothing to run");
    }
    let media = MediaTemplates::new(&plan.video, plan.fps)?;
    let before = ProcStats::read(None).unwrap_or_default();
    let gstats = Arc::new(Mutex::new(GatewayStats::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (target, gateway_task) = match plan.target {
        Some(t) => (t, None),
        None => {
            let id = tls::Identity::self_signed(&["localhost", "camcert-hedgw"])?;
            let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&id)?);
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding the built-in gateway")?;
            let addr = listener.local_addr()?;
            let task = tokio::spawn(serve(
                listener,
                acceptor,
                plan.gateway.clone(),
                gstats.clone(),
                stop_rx,
            ));
            (addr, Some(task))
        }
    };
    let t0 = tokio::time::Instant::now();
    let fleet = Arc::new(Fleet {
        target,
        tls: tls::client_config(None)?,
        media,
        handshakes: Semaphore::new(plan.max_handshakes.max(1)),
        stats: Mutex::new(Stats::new()),
        t0,
        end: t0 + plan.duration,
        plan,
    });
    let mut set = tokio::task::JoinSet::new();
    for i in 0..fleet.plan.devices {
        set.spawn(device_task(i, fleet.clone()));
    }
    // Each task ends by the run's end (its waits are bounded by it); the
    // grace covers closing.
    let hard_end = fleet.end + DRAIN;
    while let Ok(Some(_)) = tokio::time::timeout_at(hard_end, set.join_next()).await {}
    set.abort_all();
    let run_end = Instant::now();
    let received = if let Some(task) = gateway_task {
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), task).await;
        Some(std::mem::take(&mut *lock(&gstats)))
    } else {
        None
    };
    let after = ProcStats::read(None).unwrap_or_default();
    Ok(report(&fleet, received, run_end, before, after))
}

fn report(
    fleet: &Fleet,
    received: Option<GatewayStats>,
    run_end: Instant,
    before: ProcStats,
    after: ProcStats,
) -> HemuReport {
    let plan = &fleet.plan;
    let s = lock(&fleet.stats);
    let hs_window = match (s.first_connect, s.last_handshake) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let handshakes_per_s = if hs_window > 0.0 {
        s.handshakes as f64 / hs_window
    } else {
        0.0
    };
    let media_window = s
        .first_media
        .map(|a| run_end.saturating_duration_since(a).as_secs_f64())
        .unwrap_or(0.0);
    let per_s = |x: f64| {
        if media_window > 0.0 {
            x / media_window
        } else {
            0.0
        }
    };
    let sent_bits_per_s = per_s(s.wire_bytes_sent as f64 * 8.0);
    let failures_total: u64 = s.failures.values().sum();
    let send_lag = Percentiles::of(&s.send_lag);
    let threshold_ms = plan.lag_threshold.as_secs_f64() * 1000.0;
    let saturated = send_lag.p99_ms > threshold_ms;
    let received = received.map(|g| HemuReceived {
        connections: g.connections,
        refused: g.refused,
        logins: g.logins,
        packages: g.packages,
        payload_bytes: g.payload_bytes,
        bits_per_s: per_s(g.payload_bytes as f64 * 8.0),
        findings: g.findings,
    });
    let verdict = if saturated {
        format!(
            "generator saturated (p99 send lag {:.2} ms > {threshold_ms} ms): the figures describe camcert{}, not the gateway; use fewer devices per process",
            send_lag.p99_ms,
            if plan.target.is_none() {
                " and the built-in gateway sharing its process"
            } else {
                ""
            }
        )
    } else if s.logged_in == plan.devices && failures_total == 0 {
        let mut v = format!("all {} devices logged in; no failures", plan.devices);
        if let Some(r) = &received {
            if r.packages == s.packages_sent {
                v += &format!("; every media package received ({})", r.packages);
            } else {
                v += &format!(
                    "; {} media packages sent, {} received",
                    s.packages_sent, r.packages
                );
            }
        }
        v
    } else {
        format!(
            "{} of {} devices logged in; {failures_total} failures: the gateway (or the network) is the limit",
            s.logged_in, plan.devices
        )
    };
    let answered = s.pongs.min(s.pings_sent);
    HemuReport {
        protocol: "hedgw".into(),
        devices: plan.devices,
        target: fleet.target.to_string(),
        builtin_gateway: plan.target.is_none(),
        duration_s: plan.duration.as_secs_f64(),
        ramp_per_s: plan.ramp,
        bitrate_kbit_s: plan.bitrate_kbit_s,
        handshakes: s.handshakes,
        handshakes_per_s,
        handshake: Percentiles::of(&s.handshake),
        logged_in: s.logged_in,
        online_at_end: s.online_at_end,
        login: Percentiles::of(&s.login),
        login_results: s
            .login_results
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        failures: s.failures.clone(),
        failures_total,
        pings: Keepalives {
            sent: s.pings_sent,
            answered,
            ratio: if s.pings_sent == 0 {
                1.0
            } else {
                answered as f64 / s.pings_sent as f64
            },
        },
        media: HemuMedia {
            packages_sent: s.packages_sent,
            payload_bytes_sent: s.payload_bytes_sent,
            wire_bytes_sent: s.wire_bytes_sent,
            sent_packages_per_s: per_s(s.packages_sent as f64),
            sent_bits_per_s,
            sent_bits_per_s_per_device: if s.stream_s > 0.0 {
                s.wire_bytes_sent as f64 * 8.0 / s.stream_s
            } else {
                0.0
            },
            received,
        },
        device_findings: s.findings.clone(),
        generator: HemuGenerator {
            send_lag,
            lag_threshold_ms: threshold_ms,
            saturated,
            cpu_s: after.cpu_s - before.cpu_s,
            rss_bytes: after.rss_bytes,
            tasks: plan.devices
                + if plan.target.is_none() {
                    plan.devices + 1
                } else {
                    0
                },
        },
        verdict,
    }
}

/// The configuration of device `i`: its own MAC, token and IDs.
fn device_config(plan: &HemuPlan, i: u64) -> DeviceConfig {
    let mut cfg = DeviceConfig {
        video: None,
        reconnect_after: None,
        ..Default::default()
    };
    let b = (i as u32).to_be_bytes();
    cfg.login.device_mac = format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3]);
    cfg.login.access_key = plan.access_key.clone();
    if !plan.secret.is_empty() {
        cfg.login.access_secret = plan.secret.clone();
    }
    cfg.login.device_token = format!("camcert-token-{i}");
    cfg.login.unified_id = format!("camcert-unified-{i}");
    cfg.device_id = format!("0200{:08x}", i as u32);
    cfg
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The run is over.
    End,
    /// The device asks for a new connection (after a refused login).
    Reconnect,
    Closed,
}

async fn device_task(i: u64, fleet: Arc<Fleet>) {
    let plan = &fleet.plan;
    let at = fleet.t0 + Duration::from_secs_f64(i as f64 / plan.ramp);
    if at >= fleet.end {
        lock(&fleet.stats).fail("not started: the ramp ran past the run's end".into());
        return;
    }
    tokio::time::sleep_until(at).await;
    let mut dev = Device::new(device_config(plan, i));
    let mut media = Cursor::default();
    let mut logged_in = false;
    while tokio::time::Instant::now() < fleet.end {
        let Some(stream) = connect(&fleet).await else {
            break;
        };
        dev.start(UtcClock.now());
        match drive(&fleet, &mut dev, stream, &mut media, &mut logged_in).await {
            Ended::Reconnect => {}
            Ended::End => {
                if dev.is_online() {
                    lock(&fleet.stats).online_at_end += 1;
                }
                break;
            }
            Ended::Closed => break,
        }
    }
}

/// TCP and TLS within their timeouts and the run's end; failures counted
/// by reason.
async fn connect(fleet: &Fleet) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    let Ok(Ok(_permit)) = tokio::time::timeout_at(fleet.end, fleet.handshakes.acquire()).await
    else {
        lock(&fleet.stats).fail(
            "not connected by the end of the run (handshakes in flight at --max-handshakes)".into(),
        );
        return None;
    };
    let t = Instant::now();
    {
        let mut s = lock(&fleet.stats);
        s.first_connect.get_or_insert(t);
    }
    let limit = |d: Duration| (tokio::time::Instant::now() + d).min(fleet.end);
    let sock =
        match tokio::time::timeout_at(limit(CONNECT_TIMEOUT), TcpStream::connect(fleet.target))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                lock(&fleet.stats).fail(format!("connect: {}", e.kind()));
                return None;
            }
            Err(_) => {
                lock(&fleet.stats).fail(if tokio::time::Instant::now() < fleet.end {
                    "connect: timed out".into()
                } else {
                    "connect: not done by the end of the run".into()
                });
                return None;
            }
        };
    let _ = sock.set_nodelay(true);
    let name = match rustls::pki_types::ServerName::try_from(fleet.plan.server_name.clone()) {
        Ok(n) => n,
        Err(e) => {
            lock(&fleet.stats).fail(format!("TLS: bad server name: {e}"));
            return None;
        }
    };
    let hs = Instant::now();
    let c = tokio_rustls::TlsConnector::from(fleet.tls.clone());
    match tokio::time::timeout_at(limit(CONNECT_TIMEOUT), c.connect(name, sock)).await {
        Ok(Ok(s)) => {
            let done = Instant::now();
            let mut st = lock(&fleet.stats);
            st.handshakes += 1;
            record(&mut st.handshake, done - hs);
            st.last_handshake = Some(done);
            Some(s)
        }
        Ok(Err(e)) => {
            lock(&fleet.stats).fail(format!("TLS handshake: {}", tls_reason(&e)));
            None
        }
        Err(_) => {
            lock(&fleet.stats).fail(if tokio::time::Instant::now() < fleet.end {
                "TLS handshake: timed out".into()
            } else {
                "TLS handshake: not done by the end of the run".into()
            });
            None
        }
    }
}

/// A TLS error in a few words that group well (no addresses, no numbers
/// that differ per connection).
fn tls_reason(e: &std::io::Error) -> String {
    match e.get_ref() {
        Some(inner) => match inner.downcast_ref::<rustls::Error>() {
            Some(r) => format!("{r}"),
            None => format!("{}", e.kind()),
        },
        None => format!("{}", e.kind()),
    }
}

/// Where a device is in the shared media, and when the next package is due.
#[derive(Default)]
struct Cursor {
    start: Option<tokio::time::Instant>,
    next: u64,
    /// Wire bytes sent since `start`: the pace is bytes over time.
    bytes: u64,
}

impl Cursor {
    fn due(&self, bitrate_kbit_s: f64) -> Option<tokio::time::Instant> {
        let s = self.start?;
        let secs = self.bytes as f64 * 8.0 / (bitrate_kbit_s * 1000.0);
        Some(s + Duration::from_secs_f64(secs))
    }
}

/// Whether the device's plan uploads (§6.2: trial and cloud plans all the
/// time; otherwise while a client watches).
fn uploads(d: &Device) -> bool {
    d.is_online() && (matches!(d.device_status, Some(0 | 1)) || d.live_clients > 0)
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    fleet: &Fleet,
    dev: &mut Device,
    stream: S,
    media: &mut Cursor,
    logged_in: &mut bool,
) -> Ended {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; READ_BUF];
    let login_sent = Instant::now();
    let mut login_deadline = Some(tokio::time::Instant::now() + LOGIN_TIMEOUT);
    let mut ping_pending = false;
    let mut eof = false;
    let ended = 'run: loop {
        // What the machine wants written.
        let mut wrote = false;
        while let Some(b) = dev.poll_transmit() {
            if wr.write_all(&b).await.is_err() {
                dev.handle_eof(UtcClock.now());
                break;
            }
            wrote = true;
        }
        let mut reconnect = false;
        let mut closed_why = None;
        {
            let mut s = lock(&fleet.stats);
            while let Some(e) = dev.poll_event() {
                match e {
                    DeviceEvent::LoggedIn(_) => {
                        record(&mut s.login, login_sent.elapsed());
                        *s.login_results.entry(result::OK).or_default() += 1;
                        login_deadline = None;
                        if !*logged_in {
                            *logged_in = true;
                            s.logged_in += 1;
                        }
                    }
                    DeviceEvent::LoginRefused(r) => {
                        login_deadline = None;
                        *s.login_results.entry(r).or_default() += 1;
                        s.fail(format!("login refused: result {r} ({})", result_name(r)));
                    }
                    DeviceEvent::Sent(m) if m.message_type == MessageType::Ping as i32 => {
                        s.pings_sent += 1;
                        ping_pending = true;
                    }
                    DeviceEvent::Received(d) if d.message_type() == Some(MessageType::Pong) => {
                        s.pongs += 1;
                        ping_pending = false;
                    }
                    DeviceEvent::Finding(f) => {
                        *s.findings.entry(f.code.to_string()).or_default() += 1
                    }
                    DeviceEvent::Closed(why) => closed_why = Some(why),
                    DeviceEvent::RetryLogin => reconnect = true,
                    _ => {}
                }
            }
            if let Some(why) = &closed_why {
                if !why.contains("deleted") {
                    s.fail(format!("closed: {why}"));
                }
            }
        }
        if dev.is_closed() {
            break Ended::Closed;
        }
        if reconnect {
            break Ended::Reconnect;
        }
        // Media due by now, a burst at most.
        let now = tokio::time::Instant::now();
        let mut media_due = None;
        if uploads(dev) {
            if media.start.is_none() {
                media.start = Some(now);
                lock(&fleet.stats).first_media.get_or_insert(Instant::now());
            }
            let first = media.due(fleet.plan.bitrate_kbit_s);
            let (mut packages, mut payload, mut bytes) = (0u64, 0u64, 0u64);
            let wall_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
            for _ in 0..BURST {
                match media.due(fleet.plan.bitrate_kbit_s) {
                    Some(d) if d <= now => {}
                    _ => break,
                }
                let (b, data) = fleet.media.framed(media.next, wall_ms);
                if wr.write_all(&b).await.is_err() {
                    dev.handle_eof(UtcClock.now());
                    break;
                }
                media.next += 1;
                media.bytes += b.len() as u64;
                packages += 1;
                bytes += b.len() as u64;
                payload += data as u64;
            }
            if packages > 0 {
                wrote = true;
                let mut s = lock(&fleet.stats);
                if let Some(f) = first {
                    record(&mut s.send_lag, now.saturating_duration_since(f));
                }
                s.packages_sent += packages;
                s.wire_bytes_sent += bytes;
                s.payload_bytes_sent += payload;
            }
            media_due = media.due(fleet.plan.bitrate_kbit_s);
        } else if let Some(start) = media.start.take() {
            lock(&fleet.stats).stream_s += now.saturating_duration_since(start).as_secs_f64();
            media.bytes = 0;
        }
        if wrote && wr.flush().await.is_err() {
            dev.handle_eof(UtcClock.now());
            continue 'run;
        }
        let machine_due = dev.poll_timeout().map(tokio::time::Instant::from_std);
        let deadline = [machine_due, media_due, login_deadline, Some(fleet.end)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(fleet.end);
        tokio::select! {
            r = rd.read(&mut buf), if !eof => match r {
                Ok(0) | Err(_) => {
                    eof = true;
                    dev.handle_eof(UtcClock.now());
                }
                Ok(n) => dev.handle_input(UtcClock.now(), &buf[..n]),
            },
            _ = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                if now >= fleet.end {
                    if login_deadline.is_some() {
                        lock(&fleet.stats).fail("no DevLoginResp by the end of the run".into());
                    }
                    break Ended::End;
                }
                if login_deadline.is_some_and(|d| now >= d) {
                    lock(&fleet.stats).fail(format!(
                        "no DevLoginResp within {} s",
                        LOGIN_TIMEOUT.as_secs()
                    ));
                    break Ended::Closed;
                }
                if machine_due.is_some_and(|d| d <= now) {
                    record(&mut lock(&fleet.stats).send_lag, now.saturating_duration_since(deadline));
                    dev.handle_timeout(UtcClock.now());
                }
            }
        }
    };
    if ended == Ended::End && ping_pending {
        // A PING still inside its span when the run stopped is not a
        // missed one.
        let mut s = lock(&fleet.stats);
        s.pings_sent = s.pings_sent.saturating_sub(1);
    }
    if let Some(start) = media.start.take() {
        lock(&fleet.stats).stream_s += start.elapsed().as_secs_f64();
        media.bytes = 0;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), wr.shutdown()).await;
    ended
}

/// The built-in gateway: the reference [`Gateway`] per connection, counting
/// logins and the media it receives, until `stop` (then a bounded drain).
async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    cfg: GatewayConfig,
    stats: Arc<Mutex<GatewayStats>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            a = listener.accept() => {
                let Ok((sock, _peer)) = a else { continue };
                let (acceptor, cfg, stats) = (acceptor.clone(), cfg.clone(), stats.clone());
                conns.spawn(async move {
                    let _ = sock.set_nodelay(true);
                    match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(s)) => {
                            lock(&stats).connections += 1;
                            gateway_conn(s, cfg, &stats).await;
                        }
                        Ok(Err(e)) => {
                            *lock(&stats).refused.entry(format!("TLS handshake: {}", tls_reason(&e))).or_default() += 1;
                        }
                        Err(_) => {
                            *lock(&stats).refused.entry("no TLS handshake within 10 s".into()).or_default() += 1;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let end = tokio::time::Instant::now() + DRAIN;
    while let Ok(Some(_)) = tokio::time::timeout_at(end, conns.join_next()).await {}
    conns.abort_all();
}

async fn gateway_conn<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    cfg: GatewayConfig,
    stats: &Mutex<GatewayStats>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut gw = Gateway::new(cfg);
    let mut buf = vec![0u8; READ_BUF];
    let mut eof = false;
    loop {
        let mut wrote = false;
        while let Some(b) = gw.poll_transmit() {
            if wr.write_all(&b).await.is_err() {
                gw.handle_eof();
                break;
            }
            wrote = true;
        }
        if wrote {
            let _ = wr.flush().await;
        }
        {
            let mut s = lock(stats);
            while let Some(e) = gw.poll_event() {
                match e {
                    GatewayEvent::Received(d) => {
                        if let Some(p) = &d.message.td_media_package {
                            s.packages += 1;
                            s.payload_bytes += p.data.len() as u64;
                        }
                    }
                    GatewayEvent::LoggedIn(_) => s.logins += 1,
                    GatewayEvent::Finding(f) => {
                        *s.findings.entry(f.code.to_string()).or_default() += 1
                    }
                    _ => {}
                }
            }
        }
        if gw.is_closed() || eof {
            break;
        }
        let deadline = gw.poll_timeout().map(tokio::time::Instant::from_std);
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    eof = true;
                    gw.handle_eof();
                }
                Ok(n) => gw.handle_input(UtcClock.now(), &buf[..n]),
            },
            _ = sleep => gw.handle_timeout(UtcClock.now()),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> MediaTemplates {
        MediaTemplates::new(
            include_bytes!("../../captures/sample-h264-320x240-25fps.h264"),
            25,
        )
        .unwrap()
    }

    #[test]
    fn later_passes_continue_sequence_and_time() {
        let t = templates();
        let n = t.packages.len() as u64;
        let decode = |(b, _): (Vec<u8>, usize)| {
            crate::proto::hedgw::wire::decode(&b[4..])
                .message
                .td_media_package
                .unwrap()
        };
        let last = decode(t.framed(n - 1, 5));
        let first_again = decode(t.framed(n, 5));
        let first = decode(t.framed(0, 5));
        assert_eq!(first.ipcam_time, Some(5));
        assert_eq!(first_again.data, first.data);
        assert!(first_again.start_time >= last.start_time, "{first_again:?}");
        assert_eq!(first_again.start_time, first.start_time + t.pass_ms);
        let per = t.per_type[&first.package_type];
        assert_eq!(first_again.seq_num, first.seq_num + per);
    }

    #[test]
    fn the_pace_follows_the_bitrate() {
        let s = tokio::time::Instant::now();
        let c = Cursor {
            start: Some(s),
            next: 3,
            bytes: 125_000,
        };
        // 125 kB at 1000 kbit/s: one second.
        assert_eq!(c.due(1000.0), Some(s + Duration::from_secs(1)));
        assert_eq!(Cursor::default().due(1000.0), None);
    }

    #[test]
    fn devices_differ_and_results_have_names() {
        let plan = HemuPlan {
            devices: 2,
            target: None,
            server_name: "localhost".into(),
            ramp: 1.0,
            duration: Duration::from_secs(1),
            bitrate_kbit_s: 1.0,
            video: Vec::new(),
            fps: 25,
            access_key: "k".into(),
            secret: "s".into(),
            gateway: GatewayConfig::default(),
            lag_threshold: Duration::from_millis(10),
            max_handshakes: 1,
        };
        let (a, b) = (device_config(&plan, 0), device_config(&plan, 256));
        assert_ne!(a.login.device_mac, b.login.device_mac);
        assert_eq!(b.login.device_mac, "02:00:00:00:01:00");
        assert_eq!(a.login.access_secret, "s");
        assert_eq!(result_name(2008), "limited, retry in 90 s");
    }
}
