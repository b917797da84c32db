//! `camcert report merge`: the JSON reports of a load run's shards
//! (`camcert load gb28181 --shard I/N`) as one report. Counts add up; the
//! latency and send-lag histograms are rebuilt from the shards' buckets, so
//! merged percentiles are exact; each shard's generator figures are kept
//! and the worst (highest p99 send lag) stands for the whole; series are
//! aligned by wall-clock time.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::load::metrics::{
    self, histogram, Generator, HistogramData, Histograms, Keepalives, MediaFigures, Percentiles,
    PlatformFigures, ReceivedHistograms, ReceivedMedia, Report, Sample, ShardHealth, Spread,
};

/// Reports larger than this are refused before they are read.
const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;
/// Shards one merge takes.
const MAX_SHARDS: usize = 10_000;
/// Samples a merged series holds.
const MAX_SAMPLES: usize = 100_000;

/// Read the shards' reports, write the merged one to `out`, print its
/// summary. Exit code as `camcert load`: 0 when the merged run passed.
pub fn run(out: &Path, inputs: &[PathBuf], w: &mut impl Write) -> Result<i32> {
    if inputs.is_empty() {
        bail!("report merge: name the shards' JSON reports after OUT.json");
    }
    if inputs.len() > MAX_SHARDS {
        bail!(
            "report merge: {} reports; at most {MAX_SHARDS}",
            inputs.len()
        );
    }
    let mut reports = Vec::with_capacity(inputs.len());
    for p in inputs {
        reports.push(read(p)?);
    }
    let merged = merge(&reports)?;
    merged.print_summary(w)?;
    let text = serde_json::to_string_pretty(&merged)?;
    std::fs::write(out, text + "\n")
        .with_context(|| format!("writing the merged report to {}", out.display()))?;
    writeln!(w, "report: {}", out.display())?;
    Ok(if merged.passed() { 0 } else { 1 })
}

fn read(p: &Path) -> Result<Report> {
    let len = std::fs::metadata(p)
        .with_context(|| format!("reading {}", p.display()))?
        .len();
    if len > MAX_REPORT_BYTES {
        bail!(
            "{}: {len} bytes; a load report is at most {MAX_REPORT_BYTES}",
            p.display()
        );
    }
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a report of `camcert load gb28181 --json`",
            p.display()
        )
    })
}

/// A shard label `I/N`.
fn shard_of(r: &Report) -> Option<(u64, u64)> {
    let (i, n) = r.shard.split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// One report for the fleet the shards make up.
pub fn merge(reports: &[Report]) -> Result<Report> {
    let Some(first) = reports.first() else {
        bail!("no reports to merge");
    };
    for r in reports {
        if r.protocol != first.protocol {
            bail!(
                "shard {}: protocol {:?}, but shard {} is {:?}",
                r.shard,
                r.protocol,
                first.shard,
                first.protocol
            );
        }
        if !r.shards.is_empty() {
            bail!(
                "{}: already a merged report; merge the shards' own reports",
                r.shard
            );
        }
        if r.histograms.is_none() {
            bail!(
                "shard {}: the report carries no histograms (written by an older camcert); run the shard again",
                r.shard
            );
        }
    }
    // Shards: distinct, and their device IDs disjoint.
    let mut labels = BTreeMap::new();
    for (k, r) in reports.iter().enumerate() {
        if let Some(j) = labels.insert(r.shard.clone(), k) {
            bail!(
                "shard {} appears twice (reports {} and {})",
                r.shard,
                j + 1,
                k + 1
            );
        }
    }
    let mut by_id: Vec<&Report> = reports.iter().collect();
    by_id.sort_by(|a, b| {
        (a.first_device_id.len(), &a.first_device_id)
            .cmp(&(b.first_device_id.len(), &b.first_device_id))
    });
    for w in by_id.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.last_device_id.len() == b.first_device_id.len()
            && a.last_device_id >= b.first_device_id
        {
            bail!(
                "shards {} and {} overlap: device IDs {}..{} and {}..{}",
                a.shard,
                b.shard,
                a.first_device_id,
                a.last_device_id,
                b.first_device_id,
                b.last_device_id
            );
        }
    }
    let missing: Vec<String> = match shard_of(first) {
        Some((_, n))
            if reports
                .iter()
                .all(|r| shard_of(r).is_some_and(|s| s.1 == n)) =>
        {
            (0..n)
                .filter(|i| !reports.iter().any(|r| shard_of(r).map(|s| s.0) == Some(*i)))
                .take(20)
                .map(|i| format!("{i}/{n}"))
                .collect()
        }
        _ => Vec::new(),
    };

    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let cameras = sum(|r| r.cameras);
    let registered = sum(|r| r.registered);
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for r in reports {
        for (k, v) in &r.failures {
            *failures.entry(k.clone()).or_default() += v;
        }
    }
    let failures_total = failures.values().sum();

    // Histograms, bucket by bucket.
    let (mut latency, mut lag) = (histogram(), histogram());
    for r in reports {
        let h = r.histograms.as_ref().expect("checked above");
        h.register_latency
            .add_to(&mut latency)
            .map_err(|e| anyhow::anyhow!("shard {}: register latency: {e}", r.shard))?;
        h.send_lag
            .add_to(&mut lag)
            .map_err(|e| anyhow::anyhow!("shard {}: send lag: {e}", r.shard))?;
    }

    // Wall-clock alignment: every time as milliseconds after the earliest start.
    let t0 = reports.iter().map(|r| r.t0_unix_ms).min().unwrap_or(0);
    let shift = |r: &Report| (r.t0_unix_ms - t0) as f64 / 1000.0;
    let window_start = reports
        .iter()
        .filter_map(|r| r.first_start_s.map(|s| s + shift(r)))
        .reduce(f64::min);
    let window_end = reports
        .iter()
        .filter_map(|r| r.last_first_registration_s.map(|s| s + shift(r)))
        .reduce(f64::max);
    let registrations_per_s = match (window_start, window_end) {
        (Some(a), Some(b)) if b > a => registered as f64 / (b - a),
        _ => 0.0,
    };
    let elapsed_s = reports
        .iter()
        .map(|r| r.elapsed_s + shift(r))
        .fold(0.0, f64::max);
    let interval = reports
        .iter()
        .map(|r| r.series_interval_s)
        .fold(1.0, f64::max);
    let series = align(reports, t0, interval, elapsed_s)?;

    // Generator: each shard's figures; the worst stands for the run.
    let worst = reports
        .iter()
        .max_by(|a, b| {
            a.generator
                .send_lag
                .p99_ms
                .total_cmp(&b.generator.send_lag.p99_ms)
        })
        .expect("at least one report");
    let gen_cpu: f64 = reports.iter().map(|r| r.generator.cpu_s).sum();
    let saturated: Vec<&Report> = reports.iter().filter(|r| r.generator.saturated).collect();
    let generator = Generator {
        send_lag: worst.generator.send_lag.clone(),
        lag_threshold_ms: worst.generator.lag_threshold_ms,
        saturated: !saturated.is_empty(),
        cpu_s: gen_cpu,
        setup_cpu_s: reports.iter().map(|r| r.generator.setup_cpu_s).sum(),
        rss_bytes: reports
            .iter()
            .map(|r| r.generator.rss_bytes)
            .max()
            .unwrap_or(0),
        rss_per_camera_bytes: reports
            .iter()
            .map(|r| r.generator.rss_per_camera_bytes)
            .fold(0.0, f64::max),
        cpu_per_registration_ms: (registered > 0).then(|| gen_cpu * 1000.0 / registered as f64),
        sockets: reports.iter().map(|r| r.generator.sockets).sum(),
        datagrams_sent: sum(|r| r.generator.datagrams_sent),
        datagrams_received: sum(|r| r.generator.datagrams_received),
        send_errors: sum(|r| r.generator.send_errors),
        unroutable_datagrams: sum(|r| r.generator.unroutable_datagrams),
        send_rate_per_s: metrics::peak_send_rate(&series),
        // Each shard against its own machine's ceiling: the closest to it.
        send_rate_pct: reports
            .iter()
            .filter_map(|r| r.generator.send_rate_pct)
            .reduce(f64::max),
    };
    let platform = merge_platforms(reports, registered);
    let (media, media_hist) = merge_media(reports, &series)?;
    let keep_sent = sum(|r| r.keepalives.sent);
    let keep_answered = sum(|r| r.keepalives.answered);
    let interrupted = reports.iter().any(|r| r.interrupted);
    let mut verdict = if let Some(s) = saturated.first() {
        // The signalling or the media send lag, whichever marked it.
        let p99 = s
            .generator
            .send_lag
            .p99_ms
            .max(s.media.as_ref().map(|m| m.send_lag.p99_ms).unwrap_or(0.0));
        format!(
            "generator saturated in shard {} (p99 send lag {p99:.2} ms > {} ms): the figures describe camcert, not the target; use fewer cameras per process or more shards",
            s.shard, s.generator.lag_threshold_ms
        )
    } else {
        metrics::verdict(None, interrupted, registered, cameras, failures_total)
    };
    if !missing.is_empty() {
        verdict = format!(
            "incomplete: shards {} missing; {verdict}",
            missing.join(", ")
        );
    }
    let shards = reports
        .iter()
        .map(|r| ShardHealth {
            shard: r.shard.clone(),
            cameras: r.cameras,
            registered: r.registered,
            failures_total: r.failures_total,
            register_latency: r.register_latency.clone(),
            generator: r.generator.clone(),
            verdict: r.verdict.clone(),
        })
        .collect();
    let first_id = by_id.first().expect("non-empty");
    let last_id = by_id.last().expect("non-empty");
    let targets: Vec<&str> = {
        let mut t: Vec<&str> = reports.iter().map(|r| r.target.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    Ok(Report {
        protocol: first.protocol.clone(),
        target: if targets.len() == 1 {
            targets[0].to_string()
        } else {
            targets.join(", ")
        },
        builtin_platform: reports.iter().all(|r| r.builtin_platform),
        shard: format!(
            "{} merged",
            reports
                .iter()
                .map(|r| r.shard.as_str())
                .collect::<Vec<_>>()
                .join("+")
        ),
        cameras,
        first_device_id: first_id.first_device_id.clone(),
        last_device_id: last_id.last_device_id.clone(),
        ramp_per_s: reports.iter().map(|r| r.ramp_per_s).sum(),
        duration_s: reports.iter().map(|r| r.duration_s).fold(0.0, f64::max),
        keepalive_interval_s: first.keepalive_interval_s,
        elapsed_s,
        interrupted,
        started: sum(|r| r.started),
        registered,
        registered_at_end: sum(|r| r.registered_at_end),
        refreshes: sum(|r| r.refreshes),
        registrations_per_s,
        register_latency: Percentiles::of(&latency),
        failures,
        failures_total,
        keepalives: Keepalives {
            sent: keep_sent,
            answered: keep_answered,
            ratio: if keep_sent == 0 {
                1.0
            } else {
                keep_answered as f64 / keep_sent as f64
            },
        },
        generator,
        platform,
        verdict,
        t0_unix_ms: t0,
        first_start_s: window_start,
        last_first_registration_s: window_end,
        series_interval_s: interval,
        series,
        histograms: Some(Histograms {
            register_latency: HistogramData::of(&latency),
            send_lag: HistogramData::of(&lag),
            media_send_lag: media_hist.as_ref().map(|h| h.0.clone()),
            invite_to_first_send: media_hist.map(|h| h.1),
        }),
        shards,
        // Shards may run on different machines: each one's calibration is
        // in its own report; `generator.send_rate_pct` keeps the highest.
        calibration: None,
        media,
    })
}

type MediaHistograms = (HistogramData, HistogramData);

/// The shards' media figures as one: counts and rates add up (the shards'
/// streams run side by side), percentiles come from the merged histograms,
/// and each platform's receiving side merges the same way.
fn merge_media(
    reports: &[Report],
    series: &[Sample],
) -> Result<(Option<MediaFigures>, Option<MediaHistograms>)> {
    let with: Vec<(&Report, &MediaFigures)> = reports
        .iter()
        .filter_map(|r| r.media.as_ref().map(|m| (r, m)))
        .collect();
    if with.is_empty() {
        return Ok((None, None));
    }
    let (mut lag, mut first) = (histogram(), histogram());
    for (r, _) in &with {
        let h = r.histograms.as_ref().expect("checked above");
        let (Some(l), Some(f)) = (&h.media_send_lag, &h.invite_to_first_send) else {
            bail!(
                "shard {}: media figures without their histograms; run the shard again",
                r.shard
            );
        };
        l.add_to(&mut lag)
            .map_err(|e| anyhow::anyhow!("shard {}: media send lag: {e}", r.shard))?;
        f.add_to(&mut first)
            .map_err(|e| anyhow::anyhow!("shard {}: INVITE to first send: {e}", r.shard))?;
    }
    let sum = |f: fn(&MediaFigures) -> u64| with.iter().map(|(_, m)| f(m)).sum::<u64>();
    let sumf = |f: fn(&MediaFigures) -> f64| with.iter().map(|(_, m)| f(m)).sum::<f64>();
    let received: Vec<(&Report, &ReceivedMedia)> = with
        .iter()
        .filter_map(|(r, m)| m.received.as_ref().map(|x| (*r, x)))
        .collect();
    let received = if received.is_empty() {
        None
    } else {
        let (mut loss, mut jitter, mut lat) = (histogram(), histogram(), histogram());
        let mut problems = Vec::new();
        for (r, x) in &received {
            let h = &x.histograms;
            for (d, into, what) in [
                (&h.loss_ppm, &mut loss, "loss"),
                (&h.jitter, &mut jitter, "jitter"),
                (
                    &h.invite_to_first_packet,
                    &mut lat,
                    "INVITE to first packet",
                ),
            ] {
                d.add_to(into)
                    .map_err(|e| anyhow::anyhow!("shard {}: platform {what}: {e}", r.shard))?;
            }
            for p in &x.problems {
                if problems.len() < 20 {
                    problems.push(format!("shard {}: {p}", r.shard));
                }
            }
        }
        let rs = |f: fn(&ReceivedMedia) -> u64| received.iter().map(|(_, x)| f(x)).sum::<u64>();
        Some(ReceivedMedia {
            invites_sent: rs(|x| x.invites_sent),
            sessions_started: rs(|x| x.sessions_started),
            invites_failed: rs(|x| x.invites_failed),
            streams_with_media: rs(|x| x.streams_with_media),
            streams_without_media: rs(|x| x.streams_without_media),
            packets: rs(|x| x.packets),
            bytes: rs(|x| x.bytes),
            expected: rs(|x| x.expected),
            lost: rs(|x| x.lost),
            streams_with_loss: rs(|x| x.streams_with_loss),
            late_or_duplicate: rs(|x| x.late_or_duplicate),
            ps_errors: rs(|x| x.ps_errors),
            rtp_errors: rs(|x| x.rtp_errors),
            unknown_packets: rs(|x| x.unknown_packets),
            bits_per_s: received.iter().map(|(_, x)| x.bits_per_s).sum(),
            seconds: received.iter().map(|(_, x)| x.seconds).fold(0.0, f64::max),
            loss_pct: Spread::of(&loss, 10_000.0),
            jitter: Percentiles::of(&jitter),
            invite_to_first_packet: Percentiles::of(&lat),
            problems,
            histograms: ReceivedHistograms {
                loss_ppm: HistogramData::of(&loss),
                jitter: HistogramData::of(&jitter),
                invite_to_first_packet: HistogramData::of(&lat),
            },
        })
    };
    let m = MediaFigures {
        streams_requested: sum(|m| m.streams_requested),
        bitrate_kbit_s: with[0].1.bitrate_kbit_s,
        invites: sum(|m| m.invites),
        streams_started: sum(|m| m.streams_started),
        streams_ended: sum(|m| m.streams_ended),
        streams_at_end: sum(|m| m.streams_at_end),
        packets_sent: sum(|m| m.packets_sent),
        bytes_sent: sum(|m| m.bytes_sent),
        send_errors: sum(|m| m.send_errors),
        send_calls: sum(|m| m.send_calls),
        sent_bits_per_s: sumf(|m| m.sent_bits_per_s),
        sent_packets_per_s: sumf(|m| m.sent_packets_per_s),
        peak_packets_per_s: metrics::peak_media_rate(series),
        send_lag: Percentiles::of(&lag),
        invite_to_first_send: Percentiles::of(&first),
        // Each shard against its own machine's ceiling: the closest to it.
        send_rate_pct: with
            .iter()
            .filter_map(|(_, m)| m.send_rate_pct)
            .reduce(f64::max),
        received,
    };
    Ok((
        Some(m),
        Some((HistogramData::of(&lag), HistogramData::of(&first))),
    ))
}

/// Each shard's platform, when every shard had the built-in one: CPU adds
/// up, RSS is the largest.
fn merge_platforms(reports: &[Report], registered: u64) -> Option<PlatformFigures> {
    let all: Option<Vec<&PlatformFigures>> = reports.iter().map(|r| r.platform.as_ref()).collect();
    let all = all?;
    let cpu: f64 = all.iter().map(|p| p.cpu_s).sum();
    Some(PlatformFigures {
        cpu_s: cpu,
        rss_bytes: all.iter().map(|p| p.rss_bytes).max().unwrap_or(0),
        cpu_per_registration_ms: (registered > 0).then(|| cpu * 1000.0 / registered as f64),
    })
}

/// The shards' running totals on one grid: every `interval` seconds from
/// the earliest start to `end_s`, each shard counting with its latest
/// sample at or before that moment (zero before its first).
fn align(reports: &[Report], t0: u64, interval: f64, end_s: f64) -> Result<Vec<Sample>> {
    let steps = (end_s / interval).ceil();
    if !(0.0..MAX_SAMPLES as f64).contains(&steps) {
        bail!("a merged series of {steps} samples: at most {MAX_SAMPLES}");
    }
    let mut out = Vec::with_capacity(steps as usize + 1);
    let mut cursor = vec![0usize; reports.len()];
    for k in 0..=steps as usize {
        // The last point is the end itself.
        let t = (k as f64 * interval).min(end_s);
        let mut s = Sample {
            t_s: t,
            ..Sample::default()
        };
        for (r, c) in reports.iter().zip(cursor.iter_mut()) {
            let shift = (r.t0_unix_ms - t0) as f64 / 1000.0;
            while *c < r.series.len() && r.series[*c].t_s + shift <= t + 1e-9 {
                *c += 1;
            }
            if *c > 0 {
                s.add(&r.series[*c - 1]);
            }
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, registered: u64) -> Sample {
        Sample {
            t_s,
            registered,
            started: registered,
            ..Sample::default()
        }
    }

    fn shard(index: u64, first: &str, last: &str, t0_unix_ms: u64, lat_us: &[u64]) -> Report {
        let mut h = histogram();
        for &v in lat_us {
            h.record(v).unwrap();
        }
        let n = lat_us.len() as u64;
        Report {
            protocol: "gb28181".into(),
            target: "udp://127.0.0.1:5060".into(),
            builtin_platform: false,
            shard: format!("{index}/2"),
            cameras: n,
            first_device_id: first.into(),
            last_device_id: last.into(),
            ramp_per_s: 100.0,
            duration_s: 3.0,
            keepalive_interval_s: 60.0,
            elapsed_s: 3.0,
            interrupted: false,
            started: n,
            registered: n,
            registered_at_end: n,
            refreshes: 0,
            registrations_per_s: 0.0,
            register_latency: Percentiles::of(&h),
            failures: BTreeMap::new(),
            failures_total: 0,
            keepalives: Keepalives {
                sent: 0,
                answered: 0,
                ratio: 1.0,
            },
            generator: Generator {
                send_lag: Percentiles {
                    p99_ms: index as f64,
                    ..Percentiles::default()
                },
                lag_threshold_ms: 10.0,
                saturated: false,
                cpu_s: 1.0,
                setup_cpu_s: 0.0,
                rss_bytes: 1 << 20,
                rss_per_camera_bytes: 0.0,
                cpu_per_registration_ms: None,
                sockets: 1,
                datagrams_sent: 4 * n,
                datagrams_received: 4 * n,
                send_errors: 0,
                unroutable_datagrams: 0,
                send_rate_per_s: 0.0,
                send_rate_pct: None,
            },
            platform: None,
            verdict: String::new(),
            t0_unix_ms,
            first_start_s: Some(0.0),
            last_first_registration_s: Some(1.0),
            series_interval_s: 1.0,
            series: vec![sample(0.0, 0), sample(1.0, n), sample(3.0, n)],
            histograms: Some(Histograms {
                register_latency: HistogramData::of(&h),
                send_lag: HistogramData::of(&histogram()),
                media_send_lag: None,
                invite_to_first_send: None,
            }),
            shards: Vec::new(),
            calibration: None,
            media: None,
        }
    }

    #[test]
    fn shards_add_up_and_percentiles_come_from_the_merged_buckets() {
        let a = shard(
            0,
            "34020000001320000001",
            "34020000001320000003",
            1_000_000,
            &[1000, 2000, 3000],
        );
        // Started half a second later.
        let b = shard(
            1,
            "34020000001320000004",
            "34020000001320000005",
            1_000_500,
            &[50_000, 90_000],
        );
        let m = merge(&[a, b]).unwrap();
        assert_eq!(m.cameras, 5);
        assert_eq!(m.registered, 5);
        assert_eq!(m.register_latency.count, 5);
        // p50 of all five samples is the third: 3 ms, though no shard's p50 is.
        assert!(
            (m.register_latency.p50_ms - 3.0).abs() < 0.01,
            "{:?}",
            m.register_latency
        );
        assert!((m.register_latency.max_ms - 90.0).abs() < 0.1);
        assert_eq!(m.first_device_id, "34020000001320000001");
        assert_eq!(m.last_device_id, "34020000001320000005");
        // Registrations from 0 s to 1.5 s after the earliest start.
        assert!((m.registrations_per_s - 5.0 / 1.5).abs() < 1e-9);
        assert!((m.elapsed_s - 3.5).abs() < 1e-9);
        // The worst shard's send lag stands for the run; both are kept.
        assert_eq!(m.generator.send_lag.p99_ms, 1.0);
        assert_eq!(m.shards.len(), 2);
        assert_eq!(m.generator.cpu_s, 2.0);
        assert_eq!(m.verdict, "all 5 cameras registered; no failures");
        // Series on one clock: at 1 s only shard 0 has counted its cameras.
        let at = |t: f64| {
            m.series
                .iter()
                .find(|s| (s.t_s - t).abs() < 1e-9)
                .unwrap()
                .registered
        };
        assert_eq!(at(0.0), 0);
        assert_eq!(at(1.0), 3);
        assert_eq!(at(2.0), 5);
        assert_eq!(m.series.last().unwrap().registered, 5);
        assert!(m.passed());
    }

    #[test]
    fn overlapping_duplicate_and_old_reports_are_refused() {
        let a = shard(
            0,
            "34020000001320000001",
            "34020000001320000003",
            0,
            &[1000],
        );
        let b = shard(
            1,
            "34020000001320000003",
            "34020000001320000005",
            0,
            &[1000],
        );
        let e = merge(&[a.clone(), b]).unwrap_err().to_string();
        assert!(
            e.contains("overlap") && e.contains("34020000001320000003"),
            "{e}"
        );
        let e = merge(&[a.clone(), a.clone()]).unwrap_err().to_string();
        assert!(e.contains("shard 0/2 appears twice"), "{e}");
        let mut old = a.clone();
        old.histograms = None;
        let e = merge(&[old]).unwrap_err().to_string();
        assert!(e.contains("no histograms"), "{e}");
    }

    #[test]
    fn a_missing_shard_or_a_saturated_one_shows_in_the_verdict() {
        let mut a = shard(
            0,
            "34020000001320000001",
            "34020000001320000003",
            0,
            &[1000],
        );
        let m = merge(std::slice::from_ref(&a)).unwrap();
        assert!(
            m.verdict.starts_with("incomplete: shards 1/2 missing"),
            "{}",
            m.verdict
        );
        a.generator.saturated = true;
        let b = shard(
            1,
            "34020000001320000004",
            "34020000001320000005",
            0,
            &[1000],
        );
        let m = merge(&[a, b]).unwrap();
        assert!(m.generator.saturated);
        assert!(
            m.verdict.contains("saturated in shard 0/2"),
            "{}",
            m.verdict
        );
        assert!(!m.passed());
    }
}
