//! What a load run measures, and the report it writes. Latencies and lags
//! go into HDR histograms (microseconds, 3 significant figures); process
//! figures come from `/proc`.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Counters and histograms filled while the fleet runs.
pub struct Metrics {
    /// First REGISTER sent → 200 OK (the 401 round trip included), µs.
    pub register_latency: Histogram<u64>,
    /// How late each ramp start or timer was handled vs its deadline, µs.
    pub send_lag: Histogram<u64>,
    pub started: u64,
    /// Cameras that registered at least once.
    pub registered: u64,
    pub refreshes: u64,
    pub failures: BTreeMap<String, u64>,
    pub keepalives_sent: u64,
    pub keepalives_answered: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub send_errors: u64,
    /// Datagrams that named no camera of this fleet, or did not parse.
    pub unroutable: u64,
    /// How late each media datagram left against its frame's schedule, µs.
    pub media_send_lag: Histogram<u64>,
    /// INVITE arrived → the stream's first datagram handed to the kernel, µs.
    pub invite_to_first_send: Histogram<u64>,
    /// INVITEs that reached a camera.
    pub invites: u64,
    pub streams_started: u64,
    pub streams_ended: u64,
    pub first_stream: Option<std::time::Instant>,
    pub media_packets_sent: u64,
    /// RTP bytes (headers included) handed to the kernel.
    pub media_bytes_sent: u64,
    pub media_send_errors: u64,
    /// `sendmmsg` calls (one per batch of up to 64 datagrams).
    pub media_syscalls: u64,
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h; out-of-range values are clamped by `record`.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            register_latency: histogram(),
            send_lag: histogram(),
            started: 0,
            registered: 0,
            refreshes: 0,
            failures: BTreeMap::new(),
            keepalives_sent: 0,
            keepalives_answered: 0,
            datagrams_sent: 0,
            datagrams_received: 0,
            send_errors: 0,
            unroutable: 0,
            media_send_lag: histogram(),
            invite_to_first_send: histogram(),
            invites: 0,
            streams_started: 0,
            streams_ended: 0,
            first_stream: None,
            media_packets_sent: 0,
            media_bytes_sent: 0,
            media_send_errors: 0,
            media_syscalls: 0,
        }
    }
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    record_n(h, d, 1);
}

/// [`record`] `n` samples of one value.
pub fn record_n(h: &mut Histogram<u64>, d: Duration, n: u64) {
    let us = (d.as_micros() as u64).clamp(1, h.high());
    h.saturating_record_n(us, n);
}

impl Metrics {
    pub fn fail(&mut self, reason: String) {
        *self.failures.entry(reason).or_default() += 1;
    }

    pub fn failures_total(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// CPU seconds (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
pub struct ProcStats {
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

/// Linux reports utime and stime in USER_HZ ticks, 100 per second on every
/// architecture the kernel exports to user space.
const USER_HZ: f64 = 100.0;

impl ProcStats {
    /// `pid` `None`: this process. `None` when `/proc` is not readable.
    pub fn read(pid: Option<u32>) -> Option<ProcStats> {
        let dir = match pid {
            Some(p) => format!("/proc/{p}"),
            None => "/proc/self".to_string(),
        };
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        Some(ProcStats {
            cpu_s: parse_cpu(&stat)?,
            rss_bytes: parse_rss(&status)?,
        })
    }
}

/// utime + stime from a `/proc/PID/stat` line, in seconds. The command
/// name (field 2) may hold spaces and parentheses: fields are counted from
/// the last `)`.
fn parse_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Keepalives {
    pub sent: u64,
    pub answered: u64,
    /// answered / sent; 1.0 when none were sent.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generator {
    /// Lateness of scheduled sends and timers vs their deadlines.
    pub send_lag: Percentiles,
    pub lag_threshold_ms: f64,
    /// p99 send lag above the threshold: the figures describe camcert's
    /// limits, not the target's.
    pub saturated: bool,
    pub cpu_s: f64,
    /// Part of `cpu_s` spent building the cameras before the first send.
    pub setup_cpu_s: f64,
    pub rss_bytes: u64,
    /// RSS growth over the run divided by the cameras.
    pub rss_per_camera_bytes: f64,
    pub cpu_per_registration_ms: Option<f64>,
    pub sockets: usize,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub send_errors: u64,
    pub unroutable_datagrams: u64,
    /// The busiest interval's datagrams sent per second.
    #[serde(default)]
    pub send_rate_per_s: f64,
    /// `send_rate_per_s` as a percentage of the calibrated bare send rate
    /// (`--calibrate`).
    #[serde(default)]
    pub send_rate_pct: Option<f64>,
}

/// The media of a run (`--streams`): what the fleet sent and, with the
/// built-in platform, what the platform received.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MediaFigures {
    /// Cameras the platform was to INVITE (this shard's part of `--streams`).
    pub streams_requested: u64,
    pub bitrate_kbit_s: f64,
    /// INVITEs that reached a camera.
    pub invites: u64,
    pub streams_started: u64,
    pub streams_ended: u64,
    pub streams_at_end: u64,
    pub packets_sent: u64,
    /// RTP bytes (headers included) handed to the kernel.
    pub bytes_sent: u64,
    pub send_errors: u64,
    /// `sendmmsg` calls; packets per call is the batching achieved.
    pub send_calls: u64,
    /// RTP bits a second from the first stream's start to the run's end.
    pub sent_bits_per_s: f64,
    pub sent_packets_per_s: f64,
    /// The busiest interval's media packets a second.
    pub peak_packets_per_s: f64,
    /// How late each media datagram left against its frame's schedule.
    pub send_lag: Percentiles,
    /// INVITE arrived at the camera → its first media datagram sent.
    pub invite_to_first_send: Percentiles,
    /// `peak_packets_per_s` as a percentage of the calibrated bare batched
    /// send rate of media-sized datagrams (`--calibrate`).
    pub send_rate_pct: Option<f64>,
    /// The platform's side (built-in platform only).
    pub received: Option<ReceivedMedia>,
}

/// What the load run's platform saw of the media, stream by stream. The
/// platform process writes it when it stops; the fleet's report carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ReceivedMedia {
    /// INVITEs the platform sent, answered 200 and acknowledged, refused or
    /// unanswered.
    pub invites_sent: u64,
    pub sessions_started: u64,
    pub invites_failed: u64,
    /// Sessions started whose SSRC delivered at least one packet.
    pub streams_with_media: u64,
    pub streams_without_media: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Packets the sequence numbers say were sent (first to highest, per stream).
    pub expected: u64,
    pub lost: u64,
    pub streams_with_loss: u64,
    /// Packets at or behind the highest sequence number seen (repeats, late).
    pub late_or_duplicate: u64,
    /// Frames that did not start with a PS pack header (00 00 01 BA).
    pub ps_errors: u64,
    /// Datagrams that were not RTP version 2 or carried another payload type.
    pub rtp_errors: u64,
    /// Packets of no session this platform started.
    pub unknown_packets: u64,
    /// RTP bits a second from the first packet to the last.
    pub bits_per_s: f64,
    pub seconds: f64,
    /// Per stream: lost / expected, percent.
    pub loss_pct: Spread,
    /// Per stream: RFC 3550 interarrival jitter at the end, ms.
    pub jitter: Percentiles,
    /// INVITE sent → first media packet received.
    pub invite_to_first_packet: Percentiles,
    /// Up to 20 problems, each naming its stream and the side at fault.
    pub problems: Vec<String>,
    pub histograms: ReceivedHistograms,
}

/// Percentiles of a figure other than a time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Spread {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    /// Of a histogram, each value divided by `scale`.
    pub fn of(h: &Histogram<u64>, scale: f64) -> Spread {
        if h.is_empty() {
            return Spread::default();
        }
        Spread {
            count: h.len(),
            p50: h.value_at_quantile(0.50) as f64 / scale,
            p90: h.value_at_quantile(0.90) as f64 / scale,
            p99: h.value_at_quantile(0.99) as f64 / scale,
            max: h.max() as f64 / scale,
        }
    }
}

/// The platform's media histograms, bucket by bucket, for `report merge`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ReceivedHistograms {
    /// Per-stream loss, parts per million.
    pub loss_ppm: HistogramData,
    /// Per-stream jitter, µs.
    pub jitter: HistogramData,
    pub invite_to_first_packet: HistogramData,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlatformFigures {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub cpu_per_registration_ms: Option<f64>,
}

/// The JSON report of `camcert load gb28181`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub protocol: String,
    pub target: String,
    pub builtin_platform: bool,
    pub shard: String,
    pub cameras: u64,
    pub first_device_id: String,
    pub last_device_id: String,
    pub ramp_per_s: f64,
    pub duration_s: f64,
    pub keepalive_interval_s: f64,
    pub elapsed_s: f64,
    pub interrupted: bool,
    pub started: u64,
    /// Cameras that registered at least once.
    pub registered: u64,
    /// Cameras registered when the run ended.
    pub registered_at_end: u64,
    pub refreshes: u64,
    /// First registrations per second, from the first start to the last
    /// first registration.
    pub registrations_per_s: f64,
    pub register_latency: Percentiles,
    pub failures: BTreeMap<String, u64>,
    pub failures_total: u64,
    pub keepalives: Keepalives,
    pub generator: Generator,
    pub platform: Option<PlatformFigures>,
    /// One line: what the run says.
    pub verdict: String,
    /// Wall-clock time of the run's start (Unix, milliseconds): what
    /// `report merge` aligns shards' series and windows by.
    #[serde(default)]
    pub t0_unix_ms: u64,
    /// First start and last first registration, seconds after `t0`.
    #[serde(default)]
    pub first_start_s: Option<f64>,
    #[serde(default)]
    pub last_first_registration_s: Option<f64>,
    /// Seconds between two samples of `series`.
    #[serde(default)]
    pub series_interval_s: f64,
    /// Running totals, one sample per interval and one at the end.
    #[serde(default)]
    pub series: Vec<Sample>,
    /// The histograms the percentiles come from, bucket by bucket, so
    /// shards' reports merge exactly.
    #[serde(default)]
    pub histograms: Option<Histograms>,
    /// A merged report: each shard's own figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardHealth>,
    /// This machine's bare loopback send rate (`--calibrate`).
    #[serde(default)]
    pub calibration: Option<super::calibrate::Calibration>,
    /// Media streams (`--streams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaFigures>,
}

/// Running totals at `t_s` seconds after the run's start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub started: u64,
    pub registered: u64,
    pub failures: u64,
    pub keepalives_sent: u64,
    pub keepalives_answered: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    #[serde(default)]
    pub media_packets_sent: u64,
    #[serde(default)]
    pub streams: u64,
}

impl Sample {
    pub fn of(m: &Metrics, t_s: f64) -> Sample {
        Sample {
            t_s,
            started: m.started,
            registered: m.registered,
            failures: m.failures_total(),
            keepalives_sent: m.keepalives_sent,
            keepalives_answered: m.keepalives_answered,
            datagrams_sent: m.datagrams_sent,
            datagrams_received: m.datagrams_received,
            media_packets_sent: m.media_packets_sent,
            streams: m.streams_started - m.streams_ended,
        }
    }

    /// Element-wise sum (the time is `self`'s).
    pub fn add(&mut self, o: &Sample) {
        self.started += o.started;
        self.registered += o.registered;
        self.failures += o.failures;
        self.keepalives_sent += o.keepalives_sent;
        self.keepalives_answered += o.keepalives_answered;
        self.datagrams_sent += o.datagrams_sent;
        self.datagrams_received += o.datagrams_received;
        self.media_packets_sent += o.media_packets_sent;
        self.streams += o.streams;
    }
}

/// Seconds between samples for a run of `duration_s`: one a second, and
/// at most about 3,600 samples however long the run.
pub fn series_interval(duration_s: f64) -> f64 {
    (duration_s / 3600.0).ceil().max(1.0)
}

/// The highest one-interval send rate in a series, datagrams a second.
pub fn peak_send_rate(series: &[Sample]) -> f64 {
    series
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].t_s - w[0].t_s;
            (dt > 0.0).then(|| w[1].datagrams_sent.saturating_sub(w[0].datagrams_sent) as f64 / dt)
        })
        .fold(0.0, f64::max)
}

/// The highest one-interval media send rate in a series, packets a second.
pub fn peak_media_rate(series: &[Sample]) -> f64 {
    series
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].t_s - w[0].t_s;
            (dt > 0.0).then(|| {
                w[1].media_packets_sent
                    .saturating_sub(w[0].media_packets_sent) as f64
                    / dt
            })
        })
        .fold(0.0, f64::max)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Histograms {
    pub register_latency: HistogramData,
    pub send_lag: HistogramData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_send_lag: Option<HistogramData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_to_first_send: Option<HistogramData>,
}

/// A histogram as the report carries it: each recorded bucket as
/// `[value, count]`, value in microseconds (the bucket's highest
/// equivalent value). Recording each pair again into a histogram of the
/// same bounds rebuilds the same buckets, so merged percentiles are those
/// of one histogram holding every shard's samples.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HistogramData {
    pub unit: String,
    pub lowest: u64,
    pub highest: u64,
    pub significant_figures: u8,
    pub buckets: Vec<(u64, u64)>,
}

/// Buckets a histogram of [`histogram`]'s bounds can hold (about 23,000),
/// with room: a file that claims more is refused before allocating.
const MAX_BUCKETS: usize = 100_000;

impl HistogramData {
    pub fn of(h: &Histogram<u64>) -> HistogramData {
        HistogramData {
            unit: "us".into(),
            lowest: h.low(),
            highest: h.high(),
            significant_figures: h.sigfig(),
            buckets: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    /// Add these buckets to `into` (a histogram from [`histogram`]).
    pub fn add_to(&self, into: &mut Histogram<u64>) -> Result<(), String> {
        if self.lowest != into.low()
            || self.highest != into.high()
            || self.significant_figures != into.sigfig()
        {
            return Err(format!(
                "histogram bounds {}..{} at {} significant figures; expected {}..{} at {}",
                self.lowest,
                self.highest,
                self.significant_figures,
                into.low(),
                into.high(),
                into.sigfig()
            ));
        }
        if self.buckets.len() > MAX_BUCKETS {
            return Err(format!(
                "{} histogram buckets: at most {MAX_BUCKETS}",
                self.buckets.len()
            ));
        }
        for &(v, n) in &self.buckets {
            if v > into.high() {
                return Err(format!(
                    "histogram value {v} above its bound {}",
                    into.high()
                ));
            }
            into.record_n(v, n)
                .map_err(|e| format!("histogram value {v} count {n}: {e:?}"))?;
        }
        Ok(())
    }

    pub fn to_histogram(&self) -> Result<Histogram<u64>, String> {
        let mut h = histogram();
        self.add_to(&mut h)?;
        Ok(h)
    }
}

/// One shard's own figures in a merged report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardHealth {
    pub shard: String,
    pub cameras: u64,
    pub registered: u64,
    pub failures_total: u64,
    pub register_latency: Percentiles,
    pub generator: Generator,
    pub verdict: String,
}

/// What a run says in one line.
pub fn verdict(
    saturated: Option<(f64, f64)>,
    interrupted: bool,
    registered: u64,
    cameras: u64,
    failures_total: u64,
) -> String {
    if let Some((p99, threshold_ms)) = saturated {
        format!(
            "generator saturated (p99 send lag {p99:.2} ms > {threshold_ms} ms): the figures describe camcert, not the target; use fewer cameras per process or more shards"
        )
    } else if interrupted {
        "interrupted".to_string()
    } else if registered == cameras && failures_total == 0 {
        format!("all {cameras} cameras registered; no failures")
    } else {
        format!("{registered} of {cameras} cameras registered; {failures_total} failures")
    }
}

impl Report {
    /// A run passes when every camera registered, nothing failed and the
    /// generator kept up.
    pub fn passed(&self) -> bool {
        self.registered == self.cameras && self.failures_total == 0 && !self.generator.saturated
    }

    pub fn print_summary(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let l = &self.register_latency;
        writeln!(
            w,
            "camcert load gb28181: {} cameras (shard {}) against {} for {:.1} s",
            self.cameras, self.shard, self.target, self.elapsed_s
        )?;
        writeln!(
            w,
            "  registered     {}/{} ({} at end, {} refreshes), {:.0}/s achieved at a ramp of {}/s",
            self.registered,
            self.cameras,
            self.registered_at_end,
            self.refreshes,
            self.registrations_per_s,
            self.ramp_per_s
        )?;
        writeln!(
            w,
            "  latency        p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms (first REGISTER to 200, 401 included)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        )?;
        writeln!(
            w,
            "  keepalives     {} sent, {} answered (ratio {:.4})",
            self.keepalives.sent, self.keepalives.answered, self.keepalives.ratio
        )?;
        if self.failures.is_empty() {
            writeln!(w, "  failures       none")?;
        } else {
            writeln!(w, "  failures       {}", self.failures_total)?;
            for (k, v) in &self.failures {
                writeln!(w, "    {v:>8}  {k}")?;
            }
        }
        let g = &self.generator;
        writeln!(
            w,
            "  generator      send lag p50 {:.3} ms p99 {:.3} ms max {:.3} ms; CPU {:.2} s ({}, setup {:.2} s); RSS {:.1} MiB ({:.0} B/camera); {} sockets",
            g.send_lag.p50_ms,
            g.send_lag.p99_ms,
            g.send_lag.max_ms,
            g.cpu_s,
            per_reg(g.cpu_per_registration_ms),
            g.setup_cpu_s,
            g.rss_bytes as f64 / 1048576.0,
            g.rss_per_camera_bytes,
            g.sockets
        )?;
        match (&self.calibration, g.send_rate_pct) {
            (Some(c), Some(pct)) => writeln!(
                w,
                "  send rate      {:.0} datagrams/s at the busiest second, {pct:.2}% of the {:.0}/s a bare sender reaches here",
                g.send_rate_per_s, c.packets_per_s
            )?,
            (None, Some(pct)) => writeln!(
                w,
                "  send rate      {:.0} datagrams/s at the busiest second, {pct:.2}% of a bare sender (the worst shard)",
                g.send_rate_per_s
            )?,
            _ => writeln!(
                w,
                "  send rate      {:.0} datagrams/s at the busiest second (--calibrate compares it with a bare sender)",
                g.send_rate_per_s
            )?,
        }
        if let Some(m) = &self.media {
            m.print(w)?;
        }
        if let Some(p) = &self.platform {
            writeln!(
                w,
                "  platform       CPU {:.2} s ({}); RSS {:.1} MiB",
                p.cpu_s,
                per_reg(p.cpu_per_registration_ms),
                p.rss_bytes as f64 / 1048576.0
            )?;
        }
        for s in &self.shards {
            writeln!(
                w,
                "  shard {:<8} {}/{} registered, p99 {:.2} ms; send lag p99 {:.3} ms{}; CPU {:.2} s",
                s.shard,
                s.registered,
                s.cameras,
                s.register_latency.p99_ms,
                s.generator.send_lag.p99_ms,
                if s.generator.saturated { " (saturated)" } else { "" },
                s.generator.cpu_s
            )?;
        }
        writeln!(w, "  verdict        {}", self.verdict)
    }
}

impl MediaFigures {
    fn print(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let per_call = if self.send_calls > 0 {
            self.packets_sent as f64 / self.send_calls as f64
        } else {
            0.0
        };
        writeln!(
            w,
            "  media sent     {} of {} streams INVITEd, {} started ({} at end) at {} kbit/s; {} packets, {:.2} Mbit/s, {:.0} packets/s ({:.0} at the busiest second, {per_call:.1} per system call); {} send errors",
            self.invites,
            self.streams_requested,
            self.streams_started,
            self.streams_at_end,
            self.bitrate_kbit_s,
            self.packets_sent,
            self.sent_bits_per_s / 1e6,
            self.sent_packets_per_s,
            self.peak_packets_per_s,
            self.send_errors
        )?;
        writeln!(
            w,
            "  media lag      send lag p50 {:.3} ms p99 {:.3} ms max {:.3} ms; INVITE to first send p50 {:.2} ms p99 {:.2} ms{}",
            self.send_lag.p50_ms,
            self.send_lag.p99_ms,
            self.send_lag.max_ms,
            self.invite_to_first_send.p50_ms,
            self.invite_to_first_send.p99_ms,
            match self.send_rate_pct {
                Some(p) => format!("; busiest second at {p:.2}% of a bare batched sender"),
                None => String::new(),
            }
        )?;
        match &self.received {
            Some(r) => {
                writeln!(
                    w,
                    "  media received {} streams with media ({} without) of {} INVITEs ({} failed); {} packets, {:.2} Mbit/s; lost {} of {} ({} streams with loss); {} late or repeated; {} PS and {} RTP errors",
                    r.streams_with_media,
                    r.streams_without_media,
                    r.invites_sent,
                    r.invites_failed,
                    r.packets,
                    r.bits_per_s / 1e6,
                    r.lost,
                    r.expected,
                    r.streams_with_loss,
                    r.late_or_duplicate,
                    r.ps_errors,
                    r.rtp_errors
                )?;
                writeln!(
                    w,
                    "  media quality  per-stream loss p50 {:.4}% p99 {:.4}% max {:.4}%; jitter p50 {:.3} ms p99 {:.3} ms max {:.3} ms; INVITE to first packet p50 {:.2} ms p99 {:.2} ms",
                    r.loss_pct.p50,
                    r.loss_pct.p99,
                    r.loss_pct.max,
                    r.jitter.p50_ms,
                    r.jitter.p99_ms,
                    r.jitter.max_ms,
                    r.invite_to_first_packet.p50_ms,
                    r.invite_to_first_packet.p99_ms
                )?;
                for p in &r.problems {
                    writeln!(w, "    {p}")?;
                }
            }
            None => writeln!(
                w,
                "  media received not measured (the platform under test keeps its own figures)"
            )?,
        }
        Ok(())
    }
}

fn per_reg(ms: Option<f64>) -> String {
    match ms {
        Some(v) => format!("{v:.3} ms/registration"),
        None => "no registrations".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_count_from_the_last_parenthesis() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 0 0";
        assert_eq!(parse_cpu(stat), Some(3.0));
        assert_eq!(parse_cpu("garbage"), None);
        assert_eq!(
            parse_rss("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        let me = ProcStats::read(None).expect("/proc/self is readable");
        assert!(me.rss_bytes > 0);
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = histogram();
        for ms in 1..=100u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(Percentiles::of(&histogram()), Percentiles::default());
    }

    #[test]
    fn histograms_merged_from_their_buckets_equal_one_histogram_of_all_samples() {
        let (mut a, mut b, mut all) = (histogram(), histogram(), histogram());
        for k in 1..=5000u64 {
            // Two shards with different spreads.
            let (va, vb) = (k * 37 % 9_000 + 1, k * k % 250_000 + 1);
            a.record(va).unwrap();
            b.record(vb).unwrap();
            all.record(va).unwrap();
            all.record(vb).unwrap();
        }
        // Through JSON, as `report merge` reads them.
        let mut merged = histogram();
        for h in [&a, &b] {
            let text = serde_json::to_string(&HistogramData::of(h)).unwrap();
            let back: HistogramData = serde_json::from_str(&text).unwrap();
            back.add_to(&mut merged).unwrap();
        }
        assert_eq!(merged.len(), 10_000);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                all.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!(merged.max(), all.max());
        assert_eq!(Percentiles::of(&merged), Percentiles::of(&all));
    }

    #[test]
    fn histogram_data_from_a_file_is_checked() {
        let mut d = HistogramData::of(&histogram());
        d.buckets = vec![(u64::MAX, 1)];
        assert!(d.to_histogram().unwrap_err().contains("above its bound"));
        d.buckets.clear();
        d.significant_figures = 2;
        assert!(d
            .to_histogram()
            .unwrap_err()
            .contains("significant figures"));
        d.significant_figures = 3;
        d.buckets = vec![(5, 1); MAX_BUCKETS + 1];
        assert!(d.to_histogram().unwrap_err().contains("at most"));
    }

    #[test]
    fn the_peak_send_rate_is_the_busiest_interval() {
        let s = |t_s: f64, datagrams_sent: u64| Sample {
            t_s,
            datagrams_sent,
            ..Sample::default()
        };
        assert_eq!(
            peak_send_rate(&[s(0.0, 0), s(1.0, 100), s(2.0, 400), s(2.5, 450)]),
            300.0
        );
        assert_eq!(peak_send_rate(&[s(0.0, 7)]), 0.0);
        assert_eq!(series_interval(30.0), 1.0);
        assert_eq!(series_interval(86400.0), 24.0);
    }
}
