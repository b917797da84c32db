//! What a load run measures, and the report it writes. Latencies and lags
//! go into HDR histograms (microseconds, 3 significant figures); process
//! figures come from `/proc`.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

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
}

fn histogram() -> Histogram<u64> {
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
        }
    }
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, h.high());
    h.saturating_record(us);
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
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Keepalives {
    pub sent: u64,
    pub answered: u64,
    /// answered / sent; 1.0 when none were sent.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
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
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlatformFigures {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub cpu_per_registration_ms: Option<f64>,
}

/// The JSON report of `camcert load gb28181`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub protocol: &'static str,
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
        if let Some(p) = &self.platform {
            writeln!(
                w,
                "  platform       CPU {:.2} s ({}); RSS {:.1} MiB",
                p.cpu_s,
                per_reg(p.cpu_per_registration_ms),
                p.rss_bytes as f64 / 1048576.0
            )?;
        }
        writeln!(w, "  verdict        {}", self.verdict)
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
}
