//! A run against a camera that is already registered, as a lab meets it: the
//! reference camera runs on its own (`camcert serve gb28181-device`), has
//! registered to a platform before the run, and `camcert run --target`
//! adopts its registration, provokes the fresh registrations the
//! registration cases need, and passes every case that needs no operator,
//! without the camera being restarted.

mod common;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camcert::proto::sip::{self, SipMessage};
use common::root;

/// Kills the camera when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Play a platform on `sock` until the camera has registered and sent a
/// keepalive: answer its REGISTER and keepalives with 200.
fn let_it_register(sock: &UdpSocket, within: Duration) {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + within;
    let mut registered = false;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(p) = SipMessage::parse(&buf[..n]) else {
            continue;
        };
        let m = p.message;
        let Some(method) = m.method() else { continue };
        let mut r = sip::response_to(&m, 200, Some("platformtag"));
        if method == "REGISTER" {
            r.headers.push("Expires", "3600");
            registered = true;
        }
        sock.send_to(&r.with_content_length().to_bytes(), from)
            .unwrap();
        if registered && method == "MESSAGE" {
            return;
        }
    }
    panic!("the camera did not register and keep alive within {within:?}");
}

#[test]
fn a_registered_camera_is_adopted_and_passes_without_a_restart() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = sock.local_addr().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_camcert"));
    serve
        .current_dir(root())
        .args(["serve", "gb28181-device", "--registrar"])
        .arg(format!("udp://{listen}"))
        .args(["--time-scale", "0.01", "--duration", "600"])
        .args(["--set", "keepalive_interval=10"])
        .args(["--set", "catalog_items=5", "--set", "catalog_page_size=2"])
        .args(["--set", "record_page_size=2"])
        .env("CAMCERT_PASSWORD", "12345678")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut camera = Guard(serve.spawn().unwrap());
    let mut line = String::new();
    let mut events = BufReader::new(camera.0.stdout.take().unwrap());
    events.read_line(&mut line).unwrap();
    // The camera prints an event per message: keep its pipe drained.
    std::thread::spawn(move || std::io::copy(&mut events, &mut std::io::sink()));
    // "reference camera ID registering to udp://... from IP:PORT"
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(line.contains("registering"), "{line}");
    let_it_register(&sock, Duration::from_secs(30));
    drop(sock);

    let reports = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut run = Command::new(env!("CARGO_BIN_EXE_camcert"));
    run.current_dir(root())
        .arg("run")
        .args([
            "suites/gb28181/register-camera.yaml",
            "suites/gb28181/camera-queries.yaml",
            "suites/gb28181/camera-control.yaml",
            "suites/gb28181/camera-notify.yaml",
            "suites/gb28181/camera-subscribe.yaml",
            "suites/gb28181/camera-keepalive.yaml",
            "suites/gb28181/camera-media.yaml",
            "suites/gb28181/camera-redirect.yaml",
        ])
        .arg("--target")
        .arg(format!("udp://{addr}"))
        .arg("--listen")
        .arg(listen.to_string())
        .args(["--no-operator", "--time-scale", "0.01"])
        // Broadcast over TCP is a mode the camera is configured for; this
        // one offers UDP.
        .args(["--skip", "CAM-MED-015", "--skip", "CAM-MED-016"])
        .args(["--var", "keepalive_interval=10"])
        .arg("--report-dir")
        .arg(reports.path())
        .env("CAMCERT_DEVICE_PASSWORD", "12345678")
        // To a file, not a pipe: a pipe nobody reads would stall the run.
        .stdout(std::fs::File::create(reports.path().join("out.txt")).unwrap())
        .stderr(Stdio::null());
    let mut child = Guard(run.spawn().unwrap());
    let limit = Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < limit, "the run took over {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(reports.path().join("out.txt")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.path().join("results.json")).unwrap())
            .unwrap();
    let cases = json["cases"].as_array().unwrap();
    let not_passed: Vec<_> = cases
        .iter()
        .filter(|c| c["status"] != "passed" && c["status"] != "skipped")
        .map(|c| (c["id"].clone(), c["failures"].clone()))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}\n{out}");
    assert_eq!(status.code(), Some(0), "{out}");
    // Skipped cases are the ones that need an operator, and say so.
    let skipped: Vec<_> = cases.iter().filter(|c| c["status"] == "skipped").collect();
    for c in &skipped {
        let why = c["failures"][0]["message"].as_str().unwrap();
        assert!(why.contains("--no-operator"), "{why}");
    }
    assert!(
        skipped.iter().any(|c| c["id"] == "CAM-UNREG-001"),
        "{skipped:?}"
    );
    assert_eq!(
        json["summary"]["skipped"].as_u64(),
        Some(skipped.len() as u64)
    );
    // Every registration case ran and passed against the one camera.
    for id in [
        "CAM-REG-001",
        "CAM-REG-002",
        "CAM-REG-003",
        "CAM-REG-004",
        "CAM-REG-005",
        "CAM-SIP-001",
        "CAM-CTL-004",
        "CAM-Q-001",
    ] {
        let c = cases.iter().find(|c| c["id"] == id).unwrap();
        assert_eq!(c["status"], "passed", "{id}");
    }
    assert!(cases.iter().filter(|c| c["status"] == "passed").count() >= 30);
    // The timing variables the run used are in the report.
    let vars = &json["settings"][0]["vars"];
    assert_eq!(vars["keepalive_interval"], "10");
    assert_eq!(vars["keepalive_timeout_count"], "3");
    assert_eq!(vars["password"], "******");
    // The audio INVITE the camera places after a Broadcast, which no case
    // takes, is declined when the case ends rather than left to be
    // retransmitted into later cases.
    let ntf5 = cases.iter().find(|c| c["id"] == "CAM-NTF-005").unwrap();
    let declined = ntf5["messages"].as_array().unwrap().iter().any(|m| {
        m["direction"] == "sent" && m["text"].as_str().unwrap_or("").starts_with("SIP/2.0 603")
    });
    assert!(declined, "{:#?}", ntf5["messages"]);
    // The camera ran throughout: never restarted.
    assert!(camera.0.try_wait().unwrap().is_none());
}
