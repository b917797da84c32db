//! `camcert load hemu` end to end on loopback: small HEDGW fleets against
//! the built-in reference gateway, read back through the JSON report.
//! Counts are under test, never timing: large runs are benchmarks
//! (ci/bench/hedgw.sh).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_camcert");

/// Run `camcert load hemu ARGS --json FILE` with `secret` in the
/// environment; exit code and report.
fn load(dir: &Path, name: &str, secret: &str, args: &[&str]) -> (i32, Value) {
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(BIN)
        .args(["load", "hemu"])
        .args(args)
        // A busy host must not turn a count test into a saturation verdict.
        .args(["--lag-threshold-ms", "100000"])
        .arg("--json")
        .arg(&json)
        .env("CAMCERT_PASSWORD", secret)
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
fn twenty_devices_log_in_and_every_package_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "fleet",
        "hemu-secret-1",
        &[
            "--devices",
            "20",
            "--ramp",
            "200",
            "--duration",
            "3",
            "--ping-span",
            "1",
            "--bitrate",
            "128",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["devices"], 20, "{r:#}");
    assert_eq!(r["builtin_gateway"], true, "{r:#}");
    assert_eq!(r["handshakes"], 20, "{r:#}");
    assert_eq!(r["logged_in"], 20, "{r:#}");
    assert_eq!(r["login_results"]["0"], 20, "{r:#}");
    assert_eq!(r["failures_total"], 0, "{r:#}");
    assert_eq!(r["handshake"]["count"], 20, "{r:#}");
    assert_eq!(r["login"]["count"], 20, "{r:#}");
    // Pings at a 1 s span over 3 s: every device sent some, all answered.
    let pings = &r["pings"];
    assert!(pings["sent"].as_u64().unwrap() >= 20, "{r:#}");
    assert_eq!(pings["answered"], pings["sent"], "{r:#}");
    let m = &r["media"];
    let sent = m["packages_sent"].as_u64().unwrap();
    assert!(sent > 0, "{r:#}");
    let rx = &m["received"];
    assert_eq!(rx["packages"].as_u64(), Some(sent), "{r:#}");
    assert_eq!(rx["payload_bytes"], m["payload_bytes_sent"], "{r:#}");
    assert_eq!(rx["logins"], 20, "{r:#}");
    // The shared packages, restamped per device, are a clean stream.
    assert_eq!(rx["findings"], serde_json::json!({}), "{r:#}");
    assert!(
        r["verdict"]
            .as_str()
            .unwrap()
            .starts_with("all 20 devices logged in"),
        "{r:#}"
    );
    let g = &r["generator"];
    assert!(g["send_lag"]["count"].as_u64().unwrap() > 0, "{r:#}");
    assert!(g["rss_bytes"].as_u64().unwrap() > 0, "{r:#}");
}

#[test]
fn a_gateway_refusing_logins_shows_as_failures_by_result() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "refused",
        "hemu-secret-2",
        &[
            "--devices",
            "5",
            "--ramp",
            "100",
            "--duration",
            "1.5",
            "--gateway-fault",
            "refuse-login",
        ],
    );
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["logged_in"], 0, "{r:#}");
    assert_eq!(r["login_results"]["2001"], 5, "{r:#}");
    assert!(r["login_results"].get("0").is_none(), "{r:#}");
    let key = "login refused: result 2001 (authentication failed or token expired)";
    assert_eq!(r["failures"][key], 5, "{r:#}");
    assert_eq!(r["media"]["packages_sent"], 0, "{r:#}");
    assert!(
        r["verdict"]
            .as_str()
            .unwrap()
            .starts_with("0 of 5 devices logged in"),
        "{r:#}"
    );
}

#[test]
fn a_deleted_device_is_named_by_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "deleted",
        "",
        &[
            "--devices",
            "3",
            "--duration",
            "1",
            "--login-result",
            "2026",
        ],
    );
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["login_results"]["2026"], 3, "{r:#}");
    assert_eq!(
        r["failures"]["login refused: result 2026 (device deleted)"], 3,
        "{r:#}"
    );
}

#[test]
fn a_target_that_is_not_tls_shows_as_handshake_failures() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Answers every connection with bytes that are no TLS record, then closes.
    std::thread::spawn(move || {
        use std::io::Write;
        for mut s in listener.incoming().take(3).flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "plain",
        "",
        &["--devices", "3", "--duration", "2", "--target", &addr],
    );
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["builtin_gateway"], false, "{r:#}");
    assert_eq!(r["handshakes"], 0, "{r:#}");
    let tls: u64 = r["failures"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("TLS handshake: "))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(tls, 3, "{r:#}");
    assert!(r["media"]["received"].is_null(), "{r:#}");
}

#[test]
fn a_gateway_that_never_answers_the_login_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load(
        dir.path(),
        "silent",
        "",
        &[
            "--devices",
            "4",
            "--duration",
            "1",
            "--gateway-fault",
            "no-login-response",
        ],
    );
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["handshakes"], 4, "{r:#}");
    assert_eq!(r["logged_in"], 0, "{r:#}");
    assert_eq!(r["login_results"], serde_json::json!({}), "{r:#}");
    assert_eq!(
        r["failures"]["no DevLoginResp by the end of the run"], 4,
        "{r:#}"
    );
}
