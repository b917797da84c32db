//! A fleet split over two processes (`--shard 0/2`, `--shard 1/2`) and put
//! back together by `camcert report merge` counts what one process running
//! the whole fleet counts. Loopback only; small fleets, a few seconds.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_camcert");
const CAMERAS: &str = "200";
const FIRST: &str = "34020000001320000001";

/// The reference platform on an ephemeral loopback port, the fleet's
/// devices provisioned.
fn platform(password: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "gb28181-platform", "--listen", "udp://127.0.0.1:0"])
        .args(["--devices-from", FIRST, "--devices-count", CAMERAS])
        .args(["--duration", "60"])
        .env("CAMCERT_PASSWORD", password)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the platform starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
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

/// `camcert load gb28181` against `target`, started, not awaited.
fn load(dir: &Path, name: &str, target: &str, password: &str, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["load", "gb28181", "--target", target, "--cameras", CAMERAS])
        // Keepalives off the clock, so the counts do not depend on timing;
        // counts are under test, not the host's speed.
        .args(["--ramp", "200", "--duration", "2.5", "--keepalive", "3600"])
        .args(["--lag-threshold-ms", "100000"])
        .args(extra)
        .arg("--json")
        .arg(dir.join(format!("{name}.json")))
        .env("CAMCERT_PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("camcert load starts")
}

fn report(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("no report {name}.json: {e}"));
    serde_json::from_str(&text).expect("the report is JSON")
}

fn wait_ok(mut c: Child, what: &str) {
    let status = c.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{what}");
}

#[test]
fn two_shards_merged_count_what_one_process_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let password = "pw-shards";

    // The whole fleet from one process.
    let (mut plat, addr) = platform(password);
    wait_ok(load(d, "single", &addr, password, &[]), "single run");
    let _ = plat.kill();
    let _ = plat.wait();

    // The same fleet from two processes at once, against one platform.
    let (mut plat, addr) = platform(password);
    let s0 = load(d, "shard0", &addr, password, &["--shard", "0/2"]);
    let s1 = load(d, "shard1", &addr, password, &["--shard", "1/2"]);
    wait_ok(s0, "shard 0/2");
    wait_ok(s1, "shard 1/2");
    let _ = plat.kill();
    let _ = plat.wait();

    let merged = d.join("merged.json");
    let out = Command::new(BIN)
        .args(["report", "merge"])
        .arg(&merged)
        .arg(d.join("shard0.json"))
        .arg(d.join("shard1.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary reads like a single run's, with each shard's line.
    assert!(stdout.contains("registered     200/200"), "{stdout}");
    assert!(
        stdout.contains("shard 0/2") && stdout.contains("shard 1/2"),
        "{stdout}"
    );

    let single = report(d, "single");
    let m = report(d, "merged");
    let shards = [report(d, "shard0"), report(d, "shard1")];
    for key in [
        "cameras",
        "started",
        "registered",
        "registered_at_end",
        "failures_total",
    ] {
        assert_eq!(
            m[key], single[key],
            "{key}: merged {m:#}\nsingle {single:#}"
        );
    }
    assert_eq!(m["registered"], 200);
    assert_eq!(
        m["register_latency"]["count"], single["register_latency"]["count"],
        "registrations"
    );
    assert_eq!(m["register_latency"]["count"], 200);
    assert_eq!(m["first_device_id"], single["first_device_id"]);
    assert_eq!(m["last_device_id"], single["last_device_id"]);
    // Exact merge: the merged histogram holds every shard's samples, and
    // its p99 lies within the shards' own.
    let p99s: Vec<f64> = shards
        .iter()
        .map(|s| s["register_latency"]["p99_ms"].as_f64().unwrap())
        .collect();
    let p99 = m["register_latency"]["p99_ms"].as_f64().unwrap();
    let (lo, hi) = (p99s[0].min(p99s[1]), p99s[0].max(p99s[1]));
    assert!(lo <= p99 && p99 <= hi, "merged p99 {p99} outside {p99s:?}");
    let buckets: u64 = m["histograms"]["register_latency"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(buckets, 200);
    // Each shard's generator figures are kept.
    assert_eq!(m["shards"].as_array().unwrap().len(), 2, "{m:#}");
    // The merged series ends with every camera registered.
    let last = m["series"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["registered"], 200, "{last:#}");
}

#[test]
fn merging_one_shard_twice_is_a_user_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut plat, addr) = platform("pw-twice");
    let c = Command::new(BIN)
        .args(["load", "gb28181", "--target", &addr, "--cameras", "10"])
        .args(["--ramp", "100", "--duration", "1", "--shard", "0/2"])
        .args(["--lag-threshold-ms", "100000", "--json"])
        .arg(d.join("s.json"))
        .env("CAMCERT_PASSWORD", "pw-twice")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ok(c, "shard 0/2");
    let _ = plat.kill();
    let _ = plat.wait();
    let out = Command::new(BIN)
        .args(["report", "merge"])
        .arg(d.join("m.json"))
        .arg(d.join("s.json"))
        .arg(d.join("s.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shard 0/2 appears twice"), "{err}");
    assert!(!d.join("m.json").exists());
}
