//! The load simulator: many simulated cameras from one process against a
//! platform, with figures that say whether the target or the generator was
//! the limit.
//!
//! Every simulated camera is the sans-IO reference [`Device`]; [`fleet`]
//! drives N of them on one deadline heap ([`schedule`]) and a few UDP
//! sockets or a TCP connection each ([`tcp`]), streams [`media`] to the
//! platform when it INVITEs them, and [`metrics`] turns what happened into
//! the report. [`platform`] is the reference platform as the run's target,
//! with a media receiver that checks every stream.
//!
//! [`Device`]: crate::proto::gb28181::device::Device

pub mod calibrate;
pub mod fleet;
pub mod hemu;
pub mod media;
pub mod metrics;
pub mod platform;
pub mod schedule;
pub mod tcp;
pub mod udp;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use metrics::{
    Generator, HistogramData, Histograms, Keepalives, MediaFigures, Percentiles, PlatformFigures,
    ProcStats, ReceivedMedia, Report,
};

/// One shard of a fleet: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected I/N, e.g. 0/4"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: I is not a number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: N is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("{s:?}: expected 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The cameras of this shard out of `total`: offset of the first, and
    /// how many. Shards take consecutive blocks, so their IDs never meet.
    pub fn block(&self, total: u64) -> (u64, u64) {
        let start = total * self.index / self.count;
        let end = total * (self.index + 1) / self.count;
        (start, end - start)
    }
}

/// `count` device IDs: `base` plus `offset`, `offset + 1`, ..., written
/// with as many digits as `base` (GB/T 28181 IDs are 20 digits).
pub fn id_range(base: &str, offset: u64, count: u64) -> Result<Vec<String>> {
    if base.is_empty() || base.len() > 38 || !base.bytes().all(|b| b.is_ascii_digit()) {
        bail!("device ID {base:?}: expected up to 38 decimal digits (GB/T 28181 IDs have 20)");
    }
    let width = base.len();
    let b: u128 = base.parse().context("device ID")?;
    let last = b + offset as u128 + count.saturating_sub(1) as u128;
    if last.to_string().len() > width {
        bail!("device IDs from {base} plus {offset}..{offset}+{count} run past {width} digits");
    }
    if count > 10_000_000 {
        bail!("{count} devices: at most 10,000,000 per process");
    }
    Ok((0..count)
        .map(|k| format!("{:0width$}", b + offset as u128 + k as u128))
        .collect())
}

/// How far `id` lies after `first` (both decimal IDs of one width).
pub fn id_offset(first: &str, id: &str) -> Option<u64> {
    if id.len() != first.len() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let a: u128 = first.parse().ok()?;
    let b: u128 = id.parse().ok()?;
    u64::try_from(b.checked_sub(a)?).ok()
}

/// A resolved load run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub target: SocketAddr,
    pub target_label: String,
    pub builtin_platform: bool,
    pub platform_id: String,
    pub domain: Option<String>,
    pub password: String,
    /// Device IDs of this process's cameras.
    pub ids: Vec<String>,
    /// Offset of the first camera in the whole fleet (across shards).
    pub first_index: u64,
    pub shard: Shard,
    pub ramp: f64,
    pub duration: Duration,
    pub keepalive: Duration,
    pub expires: u32,
    pub retry_interval: Duration,
    pub seed: u64,
    pub per_socket: usize,
    pub bind_ip: IpAddr,
    pub port_base: Option<u16>,
    pub lag_threshold: Duration,
    /// Measure the machine's bare loopback send rate before the run.
    pub calibrate: bool,
    /// Cameras of this shard the platform is to INVITE (`--streams`).
    pub streams: u64,
    /// What each stream sends; `None` without `--streams`.
    pub media: Option<Arc<media::MediaPackets>>,
    /// `--bitrate`, kbit/s.
    pub bitrate_kbit_s: f64,
    /// Signalling transport.
    pub transport: crate::proto::Transport,
    /// While busy, the fleet reads its UDP sockets on multiples of this
    /// (zero: as each datagram comes).
    pub tick: Duration,
}

/// Run the fleet and build its report. `platform_pid`: the built-in
/// platform's process, measured at the end; `stop_platform` then stops it
/// and hands back what it received of the media. For a process that ends
/// after it (the `load` command): the fleet's cameras are left in memory
/// for the process's exit to take back (see `fleet::run`).
pub async fn run<F, Fut>(
    plan: &LoadPlan,
    stop: Arc<AtomicBool>,
    platform_pid: Option<u32>,
    stop_platform: F,
) -> Result<Report>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Option<ReceivedMedia>>,
{
    let calibration = if plan.calibrate {
        let packet = fleet::first_register(plan);
        let family = plan.bind_ip;
        let media = plan.media.is_some();
        let c = tokio::task::spawn_blocking(move || -> Result<calibrate::Calibration> {
            let mut c = calibrate::calibrate(family, &packet, calibrate::CALIBRATION_TIME)?;
            if media {
                c.media = Some(calibrate::calibrate_media(
                    family,
                    media::MTU,
                    calibrate::CALIBRATION_TIME,
                )?);
            }
            Ok(c)
        })
        .await
        .context("the calibration's thread")??;
        eprintln!("{}", c.line());
        Some(c)
    } else {
        None
    };
    let before = ProcStats::read(None).unwrap_or_default();
    let platform_before = platform_pid.and_then(|p| ProcStats::read(Some(p)));
    // The fleet runs on a thread of its own with a single-threaded
    // runtime: its socket readers and its loop wake each other without
    // crossing threads.
    let fleet_plan = plan.clone();
    let out = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the fleet's runtime")?
            .block_on(fleet::run(&fleet_plan, stop))
    })
    .await
    .context("the fleet's thread")??;
    // The cameras are still in memory here (left to the process's exit):
    // the RSS growth is the fleet's as it stood, registered and idle.
    let after = ProcStats::read(None).unwrap_or_default();
    let platform_after = platform_pid.and_then(|p| ProcStats::read(Some(p)));
    let received = stop_platform().await;
    let mut out = out;
    let media = plan
        .media
        .as_ref()
        .map(|_| media_figures(plan, &mut out, received, calibration.as_ref()));
    let m = &out.metrics;
    let n = plan.ids.len() as u64;
    let rate = match (out.first_start, out.last_first_registration) {
        (Some(a), Some(b)) if b > a => m.registered as f64 / (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let per_reg = |cpu: f64| (m.registered > 0).then(|| cpu * 1000.0 / m.registered as f64);
    let lag = Percentiles::of(&m.send_lag);
    let threshold_ms = plan.lag_threshold.as_secs_f64() * 1000.0;
    // Media sends run late as well as signalling ones: the worse decides.
    let lag_p99 = lag
        .p99_ms
        .max(media.as_ref().map(|f| f.send_lag.p99_ms).unwrap_or(0.0));
    let saturated = lag_p99 > threshold_ms;
    let gen_cpu = after.cpu_s - before.cpu_s;
    let platform = platform_after.map(|a| {
        let cpu = a.cpu_s - platform_before.map(|b| b.cpu_s).unwrap_or(0.0);
        PlatformFigures {
            cpu_s: cpu,
            rss_bytes: a.rss_bytes,
            cpu_per_registration_ms: per_reg(cpu),
        }
    });
    let failures_total = m.failures_total();
    let verdict = metrics::verdict(
        saturated.then_some((lag_p99, threshold_ms)),
        out.interrupted,
        m.registered,
        n,
        failures_total,
    );
    let verdict = match &media {
        Some(f) if !saturated && failures_total == 0 && !out.interrupted => match &f.received {
            Some(r) => format!(
                "{verdict}; {} streams received whole ({} packets, no loss)",
                r.streams_with_media, r.packets
            ),
            None => format!("{verdict}; {} streams sent", f.streams_started),
        },
        _ => verdict,
    };
    let send_rate = metrics::peak_send_rate(&out.series);
    let send_rate_pct = calibration
        .as_ref()
        .filter(|c| c.packets_per_s > 0.0)
        .map(|c| send_rate * 100.0 / c.packets_per_s);
    let since_t0 = |t: Option<std::time::Instant>| t.map(|t| (t - out.t0).as_secs_f64());
    Ok(Report {
        protocol: "gb28181".into(),
        target: plan.target_label.clone(),
        builtin_platform: plan.builtin_platform,
        shard: plan.shard.to_string(),
        cameras: n,
        first_device_id: plan.ids.first().cloned().unwrap_or_default(),
        last_device_id: plan.ids.last().cloned().unwrap_or_default(),
        ramp_per_s: plan.ramp,
        duration_s: plan.duration.as_secs_f64(),
        keepalive_interval_s: plan.keepalive.as_secs_f64(),
        elapsed_s: out.elapsed.as_secs_f64(),
        interrupted: out.interrupted,
        started: m.started,
        registered: m.registered,
        registered_at_end: out.registered_at_end,
        refreshes: m.refreshes,
        registrations_per_s: rate,
        register_latency: Percentiles::of(&m.register_latency),
        failures: m.failures.clone(),
        failures_total,
        keepalives: Keepalives {
            sent: m.keepalives_sent,
            answered: m.keepalives_answered,
            ratio: if m.keepalives_sent == 0 {
                1.0
            } else {
                m.keepalives_answered as f64 / m.keepalives_sent as f64
            },
        },
        generator: Generator {
            send_lag: lag,
            lag_threshold_ms: threshold_ms,
            saturated,
            cpu_s: gen_cpu,
            setup_cpu_s: out.setup_cpu_s,
            rss_bytes: after.rss_bytes,
            rss_per_camera_bytes: if n == 0 {
                0.0
            } else {
                after.rss_bytes.saturating_sub(before.rss_bytes) as f64 / n as f64
            },
            cpu_per_registration_ms: per_reg(gen_cpu),
            sockets: out.sockets,
            datagrams_sent: m.datagrams_sent,
            datagrams_received: m.datagrams_received,
            send_errors: m.send_errors,
            unroutable_datagrams: m.unroutable,
            send_rate_per_s: send_rate,
            send_rate_pct,
        },
        platform,
        verdict,
        t0_unix_ms: out
            .t0_wall
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        first_start_s: since_t0(out.first_start),
        last_first_registration_s: since_t0(out.last_first_registration),
        series_interval_s: out.series_interval.as_secs_f64(),
        series: out.series,
        histograms: Some(Histograms {
            register_latency: HistogramData::of(&m.register_latency),
            send_lag: HistogramData::of(&m.send_lag),
            media_send_lag: plan
                .media
                .as_ref()
                .map(|_| HistogramData::of(&m.media_send_lag)),
            invite_to_first_send: plan
                .media
                .as_ref()
                .map(|_| HistogramData::of(&m.invite_to_first_send)),
        }),
        shards: Vec::new(),
        calibration,
        media,
    })
}

/// The media figures of a run, both sides; what went wrong joins the
/// failures, each naming the side at fault.
fn media_figures(
    plan: &LoadPlan,
    out: &mut fleet::Outcome,
    received: Option<ReceivedMedia>,
    calibration: Option<&calibrate::Calibration>,
) -> MediaFigures {
    let m = &mut out.metrics;
    let span = m
        .first_stream
        .map(|t| {
            (out.t0 + out.elapsed)
                .saturating_duration_since(t)
                .as_secs_f64()
        })
        .unwrap_or(0.0);
    let per_s = |v: u64| if span > 0.0 { v as f64 / span } else { 0.0 };
    let peak = metrics::peak_media_rate(&out.series);
    let f = MediaFigures {
        streams_requested: plan.streams,
        bitrate_kbit_s: plan.bitrate_kbit_s,
        invites: m.invites,
        streams_started: m.streams_started,
        streams_ended: m.streams_ended,
        streams_at_end: out.streams_at_end,
        packets_sent: m.media_packets_sent,
        bytes_sent: m.media_bytes_sent,
        send_errors: m.media_send_errors,
        send_calls: m.media_syscalls,
        sent_bits_per_s: per_s(m.media_bytes_sent * 8),
        sent_packets_per_s: per_s(m.media_packets_sent),
        peak_packets_per_s: peak,
        send_lag: Percentiles::of(&m.media_send_lag),
        invite_to_first_send: Percentiles::of(&m.invite_to_first_send),
        send_rate_pct: calibration
            .and_then(|c| c.media.as_ref())
            .filter(|c| c.packets_per_s > 0.0)
            .map(|c| peak * 100.0 / c.packets_per_s),
        received,
    };
    if out.interrupted {
        return f;
    }
    if m.invites < plan.streams {
        m.fail(format!(
            "platform side: {} of the {} cameras --streams asks for were never INVITEd",
            plan.streams - m.invites,
            plan.streams
        ));
    }
    if m.media_send_errors > 0 {
        m.fail(format!(
            "generator side: {} media datagrams refused by the kernel",
            m.media_send_errors
        ));
    }
    if let Some(r) = &f.received {
        if r.invites_failed > 0 {
            m.fail(format!(
                "camera side: {} INVITEs failed at the platform (media.received.problems)",
                r.invites_failed
            ));
        }
        if r.streams_without_media > 0 {
            m.fail(format!(
                "camera side: {} streams answered and acknowledged delivered no media",
                r.streams_without_media
            ));
        }
        if r.lost > 0 {
            m.fail(format!(
                "media loss: {} of {} packets never reached the platform, on {} streams",
                r.lost, r.expected, r.streams_with_loss
            ));
        }
        if r.ps_errors > 0 {
            m.fail(format!(
                "camera side: {} frames did not start with a PS pack header",
                r.ps_errors
            ));
        }
        if r.rtp_errors > 0 {
            m.fail(format!(
                "camera side: {} datagrams with a bad RTP version or payload type",
                r.rtp_errors
            ));
        }
        if r.unknown_packets > 0 {
            m.fail(format!(
                "camera side: {} media packets of no session the platform started",
                r.unknown_packets
            ));
        }
    } else if plan.builtin_platform {
        m.fail("platform side: the built-in platform left no media figures".into());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_fleet_into_disjoint_blocks() {
        let total = 10;
        let mut seen = Vec::new();
        for i in 0..3 {
            let s: Shard = format!("{i}/3").parse().unwrap();
            let (start, count) = s.block(total);
            seen.extend(start..start + count);
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn ids_count_up_in_twenty_digits() {
        let ids = id_range("34020000001320000998", 1, 3).unwrap();
        assert_eq!(
            ids,
            [
                "34020000001320000999",
                "34020000001320001000",
                "34020000001320001001"
            ]
        );
        assert_eq!(id_offset("34020000001320000998", &ids[2]), Some(3));
        assert_eq!(
            id_offset("34020000001320000998", "34020000001320000997"),
            None
        );
        assert_eq!(id_offset("34020000001320000998", "1"), None);
        assert!(id_range("99999999999999999999", 0, 2).is_err());
        assert!(id_range("3402abc", 0, 2).is_err());
        assert_eq!(
            id_range("00000000000000000001", 0, 1).unwrap(),
            ["00000000000000000001"]
        );
    }
}
