//! `camcert load gb28181 --streams` end to end on loopback: the built-in
//! platform INVITEs a few cameras of a small fleet and checks what it
//! receives; the report's two sides must agree. Counts are under test, not
//! timing: the lag threshold is out of reach so a busy host cannot turn a
//! run into a saturation verdict. Long and large runs are benchmarks
//! (ci/bench/load.sh).

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_camcert");
const PASSWORD: &str = "media-load-secret";

/// Run `camcert load gb28181 ARGS --json DIR/NAME.json`; exit code and report.
fn load(dir: &Path, name: &str, args: &[&str]) -> (i32, Value) {
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(BIN)
        .args(["load", "gb28181", "--lag-threshold-ms", "100000"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("CAMCERT_PASSWORD", PASSWORD)
        .output()
        .expect("camcert runs");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&text).expect("the report is JSON"),
    )
}

#[test]
fn every_stream_arrives_whole_and_both_sides_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "media",
        &[
            "--cameras",
            "30",
            "--ramp",
            "300",
            "--duration",
            "3",
            "--keepalive",
            "1",
            "--streams",
            "12",
            "--bitrate",
            "300",
        ],
    );
    let m = &r["media"];
    assert_eq!(r["registered"], 30, "{r:#}");
    assert_eq!(m["streams_requested"], 12, "{m:#}");
    assert_eq!(m["invites"], 12, "{m:#}");
    assert_eq!(m["streams_started"], 12, "{m:#}");
    assert_eq!(m["bitrate_kbit_s"], 300.0, "{m:#}");
    let sent = m["packets_sent"].as_u64().unwrap();
    // About 2.5 s of 12 streams at 25 frames a second, at least a packet each.
    assert!(sent >= 12 * 25, "{m:#}");
    assert_eq!(m["send_errors"], 0, "{m:#}");
    let x = &m["received"];
    assert_eq!(x["invites_sent"], 12, "{x:#}");
    assert_eq!(x["sessions_started"], 12, "{x:#}");
    assert_eq!(x["streams_with_media"], 12, "{x:#}");
    assert_eq!(x["streams_without_media"], 0, "{x:#}");
    // Loopback loses nothing: what left the fleet reached the platform.
    assert_eq!(x["packets"].as_u64(), Some(sent), "{m:#}");
    assert_eq!(x["bytes"], m["bytes_sent"], "{m:#}");
    assert_eq!(x["expected"].as_u64(), Some(sent), "{x:#}");
    assert_eq!(x["lost"], 0, "{x:#}");
    assert_eq!(x["ps_errors"], 0, "{x:#}");
    assert_eq!(x["rtp_errors"], 0, "{x:#}");
    assert_eq!(x["unknown_packets"], 0, "{x:#}");
    assert_eq!(x["invite_to_first_packet"]["count"], 12, "{x:#}");
    assert_eq!(x["jitter"]["count"], 12, "{x:#}");
    assert_eq!(x["loss_pct"]["max"], 0.0, "{x:#}");
    assert!(x["problems"].as_array().unwrap().is_empty(), "{x:#}");
    // The media sends have a lag of their own, and histograms to merge by.
    assert!(m["send_lag"]["count"].as_u64().unwrap() >= sent, "{m:#}");
    assert!(
        r["histograms"]["media_send_lag"]["buckets"].is_array(),
        "{r:#}"
    );
    // Padded up to the bit rate asked for: 300 kbit/s a stream, give or
    // take the partial second at either end.
    let bits = x["bytes"].as_f64().unwrap() * 8.0;
    let secs = sent as f64 / m["sent_packets_per_s"].as_f64().unwrap();
    let per_stream = bits / secs / 12.0;
    assert!(
        (per_stream - 300_000.0).abs() < 60_000.0,
        "{per_stream} bit/s a stream: {m:#}"
    );
    assert_eq!(r["failures_total"], 0, "{r:#}");
    assert!(
        r["verdict"]
            .as_str()
            .unwrap()
            .contains("12 streams received whole"),
        "{r:#}"
    );
    assert_eq!(code, 0, "{r:#}");
}

/// A GB/T 28181 registrar that never INVITEs: `camcert serve gb28181-platform`.
fn registrar_only(first: &str, count: u32) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "gb28181-platform", "--listen", "udp://127.0.0.1:0"])
        .args([
            "--devices-from",
            first,
            "--devices-count",
            &count.to_string(),
        ])
        .args(["--duration", "60"])
        .env("CAMCERT_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the platform starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the platform prints its address")
            .unwrap();
        if let Some(a) = line.split("listening on ").nth(1) {
            break a.trim().to_string();
        }
    };
    (child, addr)
}

#[test]
fn a_target_that_never_invites_is_named_as_the_side_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let (mut plat, addr) = registrar_only("34020000001320000001", 10);
    let (code, r) = load(
        dir.path(),
        "no-invite",
        &[
            "--cameras",
            "10",
            "--ramp",
            "200",
            "--duration",
            "1.5",
            "--keepalive",
            "3600",
            "--streams",
            "4",
            "--target",
            &addr,
        ],
    );
    let _ = plat.kill();
    let _ = plat.wait();
    assert_eq!(r["registered"], 10, "{r:#}");
    let m = &r["media"];
    assert_eq!(m["invites"], 0, "{m:#}");
    assert_eq!(m["packets_sent"], 0, "{m:#}");
    assert!(m["received"].is_null(), "no built-in platform: {m:#}");
    let key = "platform side: 4 of the 4 cameras --streams asks for were never INVITEd";
    assert_eq!(r["failures"][key], 1, "{r:#}");
    assert_eq!(r["failures_total"], 1, "{r:#}");
    assert_eq!(code, 1, "{r:#}");
}

#[test]
fn a_bit_rate_below_the_media_is_a_user_error() {
    let out = Command::new(BIN)
        .args(["load", "gb28181", "--cameras", "2", "--streams", "all"])
        .args(["--bitrate", "8", "--duration", "1"])
        .env("CAMCERT_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--bitrate 8"), "{err}");
    assert!(err.contains("the built-in sample"), "{err}");
}

#[test]
fn shards_with_streams_merge_into_one_media_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for i in 0..2 {
        let json = dir.path().join(format!("s{i}.json"));
        children.push(
            Command::new(BIN)
                .args(["load", "gb28181", "--lag-threshold-ms", "100000"])
                .args(["--cameras", "16", "--streams", "all", "--shard"])
                .arg(format!("{i}/2"))
                .args(["--ramp", "200", "--duration", "2", "--keepalive", "3600"])
                .arg("--json")
                .arg(&json)
                .env("CAMCERT_PASSWORD", PASSWORD)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (a, b) = (read("s0.json"), read("s1.json"));
    let out = Command::new(BIN)
        .args(["report", "merge"])
        .arg(dir.path().join("merged.json"))
        .arg(dir.path().join("s0.json"))
        .arg(dir.path().join("s1.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("media received 16 streams"), "{text}");
    let m = read("merged.json");
    let mm = &m["media"];
    let n = |r: &Value, k: &str| r["media"][k].as_u64().unwrap();
    let nr = |r: &Value, k: &str| r["media"]["received"][k].as_u64().unwrap();
    assert_eq!(mm["streams_requested"], 16, "{mm:#}");
    assert_eq!(mm["streams_started"], 16, "{mm:#}");
    assert_eq!(
        n(&m, "packets_sent"),
        n(&a, "packets_sent") + n(&b, "packets_sent")
    );
    assert_eq!(nr(&m, "packets"), n(&m, "packets_sent"), "{mm:#}");
    assert_eq!(nr(&m, "lost"), 0, "{mm:#}");
    assert_eq!(mm["received"]["jitter"]["count"], 16, "{mm:#}");
    assert_eq!(mm["received"]["invite_to_first_packet"]["count"], 16);
    assert_eq!(
        mm["send_lag"]["count"].as_u64(),
        Some(
            a["media"]["send_lag"]["count"].as_u64().unwrap()
                + b["media"]["send_lag"]["count"].as_u64().unwrap()
        )
    );
}

#[test]
fn streams_are_invited_over_tcp_signalling() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "tcp-media",
        &[
            "--transport",
            "tcp",
            "--cameras",
            "12",
            "--ramp",
            "200",
            "--duration",
            "2",
            "--keepalive",
            "3600",
            "--streams",
            "all",
        ],
    );
    let m = &r["media"];
    assert_eq!(m["streams_started"], 12, "{m:#}");
    assert_eq!(m["received"]["streams_with_media"], 12, "{m:#}");
    assert_eq!(m["received"]["packets"], m["packets_sent"], "{m:#}");
    assert_eq!(m["received"]["lost"], 0, "{m:#}");
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn calibration_compares_the_media_send_rate_with_a_bare_batched_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "calibrated",
        &[
            "--cameras",
            "4",
            "--ramp",
            "100",
            "--duration",
            "2",
            "--keepalive",
            "3600",
            "--streams",
            "all",
            "--calibrate",
        ],
    );
    let c = &r["calibration"]["media"];
    assert!(c["packets_per_s"].as_f64().unwrap() > 0.0, "{r:#}");
    assert_eq!(c["packet_bytes"], 1400, "{c:#}");
    assert_eq!(c["per_syscall"], 64, "{c:#}");
    let pct = r["media"]["send_rate_pct"].as_f64().unwrap();
    let peak = r["media"]["peak_packets_per_s"].as_f64().unwrap();
    assert!(peak > 0.0, "{r:#}");
    let want = peak * 100.0 / c["packets_per_s"].as_f64().unwrap();
    assert!((pct - want).abs() < 1e-9, "{pct} vs {want}");
    assert_eq!(code, 0, "{r:#}");
}
