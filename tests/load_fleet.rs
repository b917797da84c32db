//! `camcert load gb28181` end to end on loopback: small fleets against the
//! reference platform, read back through the JSON report. Long and large
//! runs are benchmarks (ci/bench/load.sh), not tests.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_camcert");

/// Run `camcert load gb28181 ARGS --json FILE` with `password` in the
/// environment; exit code and report.
fn load(dir: &Path, name: &str, password: &str, args: &[&str]) -> (i32, Value) {
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(BIN)
        .args(["load", "gb28181"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("CAMCERT_PASSWORD", password)
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
fn two_hundred_cameras_register_and_keep_alive() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "fleet",
        "load-secret-1",
        &[
            "--cameras",
            "200",
            "--ramp",
            "400",
            "--duration",
            "3.5",
            "--keepalive",
            "1",
            // Counts are under test here, not timing: a busy CI host must not
            // turn this into a saturation verdict.
            "--lag-threshold-ms",
            "100000",
        ],
    );
    assert_eq!(r["cameras"], 200, "{r:#}");
    assert_eq!(r["registered"], 200, "{r:#}");
    assert_eq!(r["registered_at_end"], 200, "{r:#}");
    assert_eq!(r["failures_total"], 0, "{r:#}");
    assert_eq!(r["register_latency"]["count"], 200, "{r:#}");
    // Registered within the first ~0.5 s, then a keepalive a second: at
    // least two rounds each, every one answered.
    let sent = r["keepalives"]["sent"].as_u64().unwrap();
    assert!(sent >= 400, "keepalives sent: {sent}");
    assert_eq!(r["keepalives"]["answered"].as_u64(), Some(sent), "{r:#}");
    assert_eq!(r["keepalives"]["ratio"], 1.0, "{r:#}");
    assert_eq!(r["generator"]["unroutable_datagrams"], 0, "{r:#}");
    assert!(r["platform"]["cpu_s"].is_number(), "{r:#}");
    assert_eq!(code, 0, "{r:#}");
}

/// The reference platform on an ephemeral loopback port, with `count`
/// devices from `first` provisioned under `password`.
fn platform(first: &str, count: u32, password: &str) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "gb28181-platform", "--listen", "udp://127.0.0.1:0"])
        .args([
            "--devices-from",
            first,
            "--devices-count",
            &count.to_string(),
        ])
        .args(["--duration", "60"])
        .env("CAMCERT_PASSWORD", password)
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
fn a_platform_that_refuses_is_reported_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (mut plat, addr) = platform("34020000001320000001", 20, "the-right-one");
    let (code, r) = load(
        dir.path(),
        "refused",
        "a-wrong-one",
        &[
            "--cameras",
            "20",
            "--ramp",
            "200",
            "--duration",
            "1.5",
            "--target",
            &addr,
        ],
    );
    let _ = plat.kill();
    let _ = plat.wait();
    assert_eq!(r["registered"], 0, "{r:#}");
    assert_eq!(r["failures"]["register refused 403"], 20, "{r:#}");
    assert_eq!(r["failures_total"], 20, "{r:#}");
    assert!(r["platform"].is_null(), "no built-in platform: {r:#}");
    assert!(r["verdict"].as_str().unwrap().contains("0 of 20"), "{r:#}");
    assert_eq!(code, 1);
}

#[test]
fn shards_use_disjoint_device_ids() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["--cameras", "10", "--ramp", "100", "--duration", "1"];
    let mut ids = Vec::new();
    for shard in ["0/2", "1/2"] {
        let mut args = common.to_vec();
        args.extend(["--shard", shard]);
        let (code, r) = load(dir.path(), &shard.replace('/', "-"), "pw-shard", &args);
        assert_eq!(code, 0, "{r:#}");
        assert_eq!(r["cameras"], 5, "{r:#}");
        assert_eq!(r["registered"], 5, "{r:#}");
        assert_eq!(r["shard"], shard);
        ids.push((
            r["first_device_id"].as_str().unwrap().to_string(),
            r["last_device_id"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        ids,
        [
            (
                "34020000001320000001".to_string(),
                "34020000001320000005".to_string()
            ),
            (
                "34020000001320000006".to_string(),
                "34020000001320000010".to_string()
            ),
        ]
    );
}

#[test]
fn the_password_is_refused_on_the_command_line() {
    let out = Command::new(BIN)
        .args(["load", "gb28181", "--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_generator_that_falls_behind_says_so() {
    // Any lag at all passes a zero threshold: the verdict blames the
    // generator, not the target, and the run does not pass.
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "saturated",
        "pw-sat",
        &[
            "--cameras",
            "20",
            "--ramp",
            "200",
            "--duration",
            "1",
            "--lag-threshold-ms",
            "0",
        ],
    );
    assert_eq!(r["registered"], 20, "{r:#}");
    assert_eq!(r["generator"]["saturated"], true, "{r:#}");
    let verdict = r["verdict"].as_str().unwrap();
    assert!(
        verdict.contains("generator saturated") && verdict.contains("not the target"),
        "{verdict}"
    );
    assert_eq!(code, 1);
}

#[test]
fn stray_and_garbage_datagrams_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // A free port for the fleet's one socket.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let json = dir.path().join("stray.json");
    let mut child = Command::new(BIN)
        .args([
            "load",
            "gb28181",
            "--cameras",
            "10",
            "--ramp",
            "50",
            "--duration",
            "2",
        ])
        .args(["--port-base", &port.to_string(), "--per-socket", "10"])
        .arg("--json")
        .arg(&json)
        .env("CAMCERT_PASSWORD", "pw-stray")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", port);
    let strays: [&[u8]; 4] = [
        b"\x00\xff not SIP",
        // A response for a device outside the fleet.
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nFrom: <sip:34020000001329999999@3402000000>;tag=a\r\nTo: <sip:34020000001329999999@3402000000>;tag=b\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        // A From user that is no ID at all.
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKy\r\nFrom: <sip:nobody@3402000000>;tag=a\r\nTo: <sip:nobody@3402000000>;tag=b\r\nCall-ID: y\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        b"",
    ];
    for d in strays {
        s.send_to(d, to).unwrap();
    }
    let status = child.wait().unwrap();
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["registered"], 10, "{r:#}");
    assert_eq!(r["failures_total"], 0, "{r:#}");
    assert!(
        r["generator"]["unroutable_datagrams"].as_u64().unwrap() >= 3,
        "{r:#}"
    );
    assert_eq!(r["generator"]["sockets"], 1, "{r:#}");
    assert!(
        status.code() == Some(0) || r["generator"]["saturated"] == true,
        "{r:#}"
    );
}

#[test]
fn calibration_measures_a_bare_sender_and_the_report_compares_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "calibrated",
        "pw-cal",
        &[
            "--cameras",
            "20",
            "--ramp",
            "100",
            "--duration",
            "1.5",
            "--lag-threshold-ms",
            "100000",
            "--calibrate",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    let c = &r["calibration"];
    assert!(c["packets_per_s"].as_f64().unwrap() > 0.0, "{c:#}");
    assert!(c["packets"].as_u64().unwrap() > 0, "{c:#}");
    // The datagram is the fleet's own REGISTER.
    assert!(c["packet_bytes"].as_u64().unwrap() > 200, "{c:#}");
    // Batched, as the fleet sends.
    assert!(c["per_syscall"].as_u64().unwrap() > 1, "{c:#}");
    let g = &r["generator"];
    assert!(g["send_rate_per_s"].as_f64().unwrap() > 0.0, "{g:#}");
    assert!(g["send_rate_pct"].as_f64().unwrap() > 0.0, "{g:#}");
    // Without the flag, no calibration and no percentage.
    let (_, r) = load(
        dir.path(),
        "plain",
        "pw-cal",
        &["--cameras", "5", "--ramp", "100", "--duration", "0.5"],
    );
    assert!(r["calibration"].is_null(), "{r:#}");
    assert!(r["generator"]["send_rate_pct"].is_null(), "{r:#}");
}

#[test]
fn a_fleet_registers_and_keeps_alive_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "tcp",
        "load-secret-tcp",
        &[
            "--transport",
            "tcp",
            "--cameras",
            "40",
            "--ramp",
            "200",
            "--duration",
            "2.5",
            "--keepalive",
            "1",
            "--lag-threshold-ms",
            "100000",
        ],
    );
    assert!(r["target"].as_str().unwrap().contains("tcp://"), "{r:#}");
    assert_eq!(r["registered"], 40, "{r:#}");
    assert_eq!(r["registered_at_end"], 40, "{r:#}");
    assert_eq!(r["failures_total"], 0, "{r:#}");
    // A connection per camera, all still open at the end.
    assert_eq!(r["generator"]["sockets"], 40, "{r:#}");
    let sent = r["keepalives"]["sent"].as_u64().unwrap();
    assert!(sent >= 40, "keepalives sent: {sent}");
    assert_eq!(r["keepalives"]["answered"].as_u64(), Some(sent), "{r:#}");
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn a_target_of_the_other_transport_is_a_user_error() {
    let out = Command::new(BIN)
        .args(["load", "gb28181", "--transport", "tcp"])
        .args(["--target", "udp://127.0.0.1:5060", "--duration", "1"])
        .env("CAMCERT_PASSWORD", "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("give a tcp target"), "{err}");
}
