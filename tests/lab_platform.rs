//! `camcert serve gb28181-platform` as a lab server: the reference camera
//! (another `camcert serve` process) registers to it, and the control API
//! lists it, queries its catalog, opens a live view and shows the
//! session's stream summary; the log lines carry timestamps.

mod common;
use common::free_port;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request to the control API; the status and the JSON body.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("control API listens");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // axum answers with Content-Length; no chunked bodies to undo.
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> Option<Value>) -> Value {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lab_platform_lists_queries_and_views_a_registered_camera() {
    let sip = free_port();
    let control = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let _platform = Proc(
        Command::new(env!("CARGO_BIN_EXE_camcert"))
            .args(["serve", "gb28181-platform", "--listen"])
            .arg(format!("udp://127.0.0.1:{sip}"))
            .arg("--control")
            .arg(format!("127.0.0.1:{control}"))
            .args(["--duration", "60"])
            .env("CAMCERT_PASSWORD", "lab-pw-1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for("the control API", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", control))
            .ok()
            .map(|_| Value::Null)
    });
    let _camera = Proc(
        Command::new(env!("CARGO_BIN_EXE_camcert"))
            .args(["serve", "gb28181-device", "--registrar"])
            .arg(format!("udp://127.0.0.1:{sip}"))
            .args(["--duration", "60"])
            .env("CAMCERT_PASSWORD", "lab-pw-1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let devices = wait_for("the camera to register", Duration::from_secs(10), || {
        let (s, v) = http(control, "GET", "/devices", "");
        assert_eq!(s, 200);
        let registered = v
            .as_array()?
            .iter()
            .any(|d| d["registered"] == Value::Bool(true));
        registered.then_some(v)
    });
    assert_eq!(devices[0]["id"], "34020000001320000001");
    assert_eq!(devices[0]["online"], true);

    // A query: answered as soon as it is sent; the collected catalog shows
    // in the event log.
    let (s, v) = http(
        control,
        "POST",
        "/devices/34020000001320000001/query-catalog",
        "{}",
    );
    assert_eq!((s, &v["ok"]), (200, &Value::Bool(true)), "{v}");
    wait_for("the catalog", Duration::from_secs(10), || {
        let (_, v) = http(control, "GET", "/events?since=0", "");
        v.as_array()?
            .iter()
            .find(|e| {
                e["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Catalog") && t.contains("complete"))
            })
            .cloned()
    });

    // An unknown action is refused with the reason.
    let (s, v) = http(control, "POST", "/devices/34020000001320000001/fly", "{}");
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("fly"), "{v}");

    // A live view: its stream is validated and summarised once it ends.
    let (s, v) = http(control, "POST", "/devices/34020000001320000001/play", "{}");
    assert_eq!(s, 200, "{v}");
    std::thread::sleep(Duration::from_secs(2));
    let (s, v) = http(control, "POST", "/devices/34020000001320000001/bye", "{}");
    assert_eq!(s, 200, "{v}");
    let session = wait_for("the session summary", Duration::from_secs(10), || {
        let (_, v) = http(control, "GET", "/sessions", "");
        v.as_array()?.first().cloned()
    });
    assert!(session["video_frames"].as_u64().unwrap() > 10, "{session}");
    assert!(session["key_frames"].as_u64().unwrap() >= 1, "{session}");
    assert_eq!(session["lost_packets"], 0, "{session}");

    // Log lines are timestamped sentences, not debug structures.
    let text = std::fs::read_to_string(log.path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("registered from 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no registration line in:\n{text}"));
    assert!(
        line.chars().take(4).all(|c| c.is_ascii_digit()),
        "no timestamp: {line}"
    );
    assert!(!text.contains("Registered {"), "{text}");
}
