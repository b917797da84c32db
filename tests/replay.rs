//! `camcert replay --as device`: a session of the reference camera and
//! platform (registration, keepalives, a catalog query, unregistration) is
//! recorded with `camcert serve --pcap`, then played against a fresh
//! reference platform over UDP and over TCP (new Call-IDs, tags, branches,
//! ports, the live query's SN, digest responses for the live nonces): every
//! answer matches. Against a platform with a fault it fails with a diff
//! that names what changed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEV: &str = "34020000001320000001";
const PASSWORD: &str = "replay-pw-1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn camcert() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camcert"));
    c.current_dir(root()).env("CAMCERT_PASSWORD", PASSWORD);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reference platform on `transport`, with its control API; its SIP address.
fn platform(transport: &str, control: u16, extra: &[&str]) -> (Killed, String) {
    platform_with(transport, control, extra, PASSWORD)
}

/// [`platform`] with the device provisioned with `password`.
fn platform_with(
    transport: &str,
    control: u16,
    extra: &[&str],
    password: &str,
) -> (Killed, String) {
    use std::io::BufRead;
    let mut child = camcert()
        .env("CAMCERT_PASSWORD", password)
        .args(["serve", "gb28181-platform", "--listen"])
        .arg(format!("{transport}://127.0.0.1:0"))
        .args(["--control", &format!("127.0.0.1:{control}")])
        .args(["--device", DEV, "--duration", "60"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let marker = format!("listening on {transport}://");
    let addr = loop {
        let line = lines
            .next()
            .expect("the platform prints its address")
            .unwrap();
        if let Some(a) = line.split(&marker).nth(1) {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    // The control API answers once it is up.
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", control)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no control API");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), addr)
}

/// Ask the platform, once the camera has registered, for its catalog.
fn query_catalog_when_registered(control: u16) {
    let t0 = Instant::now();
    loop {
        let out = Command::new("curl")
            .args(["-sf", &format!("127.0.0.1:{control}/devices")])
            .output()
            .expect("curl runs");
        if String::from_utf8_lossy(&out.stdout).contains("\"registered\":true") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("curl")
        .args(["-sf", "-XPOST"])
        .arg(format!("127.0.0.1:{control}/devices/{DEV}/query-catalog"))
        .output()
        .unwrap();
    assert!(out.status.success(), "query-catalog refused");
}

/// The reference camera against the reference platform over UDP, recorded
/// by the platform: REGISTER/401/REGISTER/200, keepalives a second apart,
/// a Catalog query with its 200, Response and 200, then unregistration.
fn record(dir: &Path) -> PathBuf {
    let pcap = dir.join("session.pcap");
    let control = free_port();
    let pcap_arg = pcap.to_str().unwrap().to_string();
    let (plat, addr) = platform(
        "udp",
        control,
        &["--set", "keepalive_interval=1", "--pcap", &pcap_arg],
    );
    let mut dev = camcert()
        .args(["serve", "gb28181-device", "--registrar"])
        .arg(format!("udp://{addr}"))
        .args(["--device-id", DEV, "--set", "keepalive_interval=1"])
        .args(["--duration", "3.5", "--unregister-on-exit"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    query_catalog_when_registered(control);
    let t0 = Instant::now();
    while dev.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the camera never stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(plat);
    pcap
}

/// Replay `pcap` against a fresh platform on `transport` with `faults`:
/// exit code and output.
fn replay(pcap: &Path, transport: &str, faults: &[&str]) -> (i32, String) {
    let control = free_port();
    let mut extra = Vec::new();
    for f in faults {
        extra.extend(["--fault", f]);
    }
    let (_plat, addr) = platform(transport, control, &extra);
    let child = camcert()
        .arg("replay")
        .arg(pcap)
        .args(["--as", "device", "--target"])
        .arg(format!("{transport}://{addr}"))
        .args(["--timeout", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    query_catalog_when_registered(control);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_recorded_session_replays_against_the_reference_platform() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(
            std::env::var("CAMCERT_INTEROP").is_err(),
            "curl is required when CAMCERT_INTEROP is set"
        );
        eprintln!("note: curl is not installed; the replay test is skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let pcap = record(d.path());
    let decoded = camcert().arg("decode").arg(&pcap).output().unwrap();
    let lines = String::from_utf8_lossy(&decoded.stdout).into_owned();
    assert!(
        lines.contains("<Catalog") || lines.matches("MESSAGE sip:").count() >= 4,
        "{lines}"
    );

    let runs: [(&str, &[&str]); 3] = [("udp", &[]), ("tcp", &[]), ("udp", &["no-date"])];
    let results: Vec<(i32, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = runs
            .iter()
            .map(|(t, f)| {
                let pcap = &pcap;
                s.spawn(move || replay(pcap, t, f))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((t, faults), (code, text)) in runs.iter().zip(&results) {
        if faults.is_empty() {
            assert_eq!(code, &0, "{t}: {text}");
            assert!(
                text.contains("<- 401 Unauthorized CSeq 1 REGISTER: as captured"),
                "{text}"
            );
            assert!(
                text.contains("<- MESSAGE sip:") && text.contains("-> 200 OK CSeq"),
                "the platform's Catalog query is answered: {text}"
            );
            assert!(!text.contains("DIFFERS"), "{text}");
            let summary = text.lines().last().unwrap();
            assert!(summary.ends_with("0 differed or missing"), "{summary}");
        } else {
            assert_eq!(code, &1, "{t} {faults:?}: {text}");
            // The 200 to each authorised REGISTER lost its Date.
            assert!(
                text.contains("<- 200 OK CSeq 2 REGISTER: DIFFERS from the capture"),
                "{text}"
            );
            assert!(
                text.contains("    - Date: <nnnn-nn-nnTnn:nn:nn.nnn>"),
                "the diff names the missing header: {text}"
            );
            assert!(text.contains("      SIP/2.0 200"), "{text}");
        }
    }
}

/// SIPp's registration with Kamailio (captures/), replayed against the
/// reference platform: the digest responses computed for the platform's
/// nonces are accepted, and the diff shows how the two registrars answer
/// differently (camcert's 200 has the GB Date and Expires, its 401 an
/// opaque).
#[test]
fn a_kamailio_recording_replays_against_the_reference_platform() {
    let control = free_port();
    let (_plat, addr) = platform_with("udp", control, &[], "capture-pw-1");
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), "capture-pw-1\n").unwrap();
    let out = camcert()
        .arg("replay")
        .arg(root().join("captures/sipp-kamailio-register-udp.pcapng"))
        .args(["--target", &format!("udp://{addr}"), "--timeout", "5"])
        .arg("--password-file")
        .arg(pw.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    // Every REGISTER got its answer: nothing timed out.
    assert!(
        text.ends_with("0 of 4 answers as captured, 4 differed or missing\n"),
        "{text}"
    );
    assert!(!text.contains("nothing within"), "{text}");
    assert!(
        text.contains("<- 200 OK CSeq 2 REGISTER: DIFFERS")
            && text.contains("    + Date: <nnnn-nn-nnTnn:nn:nn.nnn>")
            && text.contains("    + Expires: 3600"),
        "{text}"
    );
}

/// Replay the platform side of `pcap` on `transport` for a reference
/// camera with `faults`: exit code and output.
fn replay_platform(pcap: &Path, transport: &str, faults: &[&str]) -> (i32, String) {
    use std::io::{BufRead, Read};
    let mut child = camcert()
        .arg("replay")
        .arg(pcap)
        .args(["--as", "platform", "--listen"])
        .arg(format!("{transport}://127.0.0.1:0"))
        .args(["--timeout", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let marker = format!("replay: listening on {transport}://");
    let addr = first
        .trim()
        .strip_prefix(&marker)
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let mut dev = camcert();
    dev.args(["serve", "gb28181-device", "--registrar"])
        .arg(format!("{transport}://{addr}"))
        .args(["--device-id", DEV, "--set", "keepalive_interval=1"])
        .args(["--duration", "3.8", "--unregister-on-exit"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for f in faults {
        dev.args(["--fault", f]);
    }
    let mut dev = Killed(dev.spawn().unwrap());
    let mut text = first;
    out.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    let _ = dev.0.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), text + &err)
}

/// The platform side of the same recording, played for the reference
/// camera: its registrations answer this run's challenges, its keepalives
/// and its Catalog answer (to the replayed query) match, over UDP and TCP;
/// a camera that computes a wrong digest shows in the diff.
#[test]
fn a_recorded_session_replays_as_the_platform_for_the_reference_camera() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("note: curl is not installed; the replay test is skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let pcap = record(d.path());
    let runs: [(&str, &[&str]); 3] = [("udp", &[]), ("tcp", &[]), ("udp", &["wrong-digest"])];
    let results: Vec<(i32, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = runs
            .iter()
            .map(|(t, f)| {
                let pcap = &pcap;
                s.spawn(move || replay_platform(pcap, t, f))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((t, faults), (code, text)) in runs.iter().zip(&results) {
        if faults.is_empty() {
            assert_eq!(code, &0, "{t}: {text}");
            assert!(
                text.contains("<- REGISTER sip:")
                    && text.contains("-> 401 Unauthorized CSeq 1 REGISTER"),
                "{text}"
            );
            assert!(
                text.contains("-> MESSAGE sip:") && !text.contains("DIFFERS"),
                "the replayed Catalog query is answered as captured: {text}"
            );
        } else {
            assert_eq!(code, &1, "{t} {faults:?}: {text}");
            assert!(
                text.contains("    - Authorization: Digest <credentials>")
                    && text.contains("    + Authorization: Digest response=")
                    && text.contains("(the password gives"),
                "{text}"
            );
        }
    }
}

/// The `replay` step of a suite: `tests/suites/replay-capture.yaml` plays
/// the registration and keepalives of a committed recording against the
/// reference platform over UDP and TCP.
mod replay_step {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use camcert::report::{RunResult, Status};
    use camcert::suite::load;
    use camcert::suite::runner::{self, RunOptions};

    const SUITE: &str = "tests/suites/replay-capture.yaml";

    async fn run(faults: &[&str], vars: &[(&str, &str)]) -> RunResult {
        run_suite(SUITE, faults, vars).await
    }

    async fn run_suite(suite: &str, faults: &[&str], vars: &[(&str, &str)]) -> RunResult {
        let suites = load::load_all(&[super::root().join(suite)]).expect("suite loads");
        let reports = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            report_dir: reports.path().to_path_buf(),
            peer_faults: faults.iter().map(|f| f.to_string()).collect(),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            jobs: Some(2),
            ..Default::default()
        };
        runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
            .await
            .expect("run")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recording_played_as_a_step_passes_against_the_reference_platform() {
        let r = run(&[], &[]).await;
        assert_eq!(r.cases.len(), 2, "udp and tcp");
        for c in &r.cases {
            assert_eq!(
                c.status,
                Status::Passed,
                "{}: {:#?}",
                c.transport,
                c.failures
            );
            // REGISTER, REGISTER with credentials, two keepalives; each answered.
            let sent: Vec<&str> = c
                .messages
                .iter()
                .filter(|m| m.direction == "sent")
                .map(|m| m.summary.as_str())
                .collect();
            let received = c.messages.iter().filter(|m| m.direction == "received");
            assert_eq!(sent.len(), 4, "{sent:?}");
            assert!(sent.iter().all(|s| !s.contains("60970")), "{sent:?}");
            assert_eq!(received.count(), 4);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_platform_that_answers_otherwise_fails_the_step_with_the_diff() {
        let r = run(&["no-date"], &[]).await;
        for c in &r.cases {
            assert_eq!(c.status, Status::Failed, "{}", c.transport);
            let f = &c.failures[0];
            assert_eq!(f.check, "replay");
            assert!(
                f.message.contains("200 OK CSeq 2 REGISTER"),
                "{}",
                f.message
            );
            assert!(
                f.message.contains("    - Date: <nnnn-nn-nnTnn:nn:nn.nnn>"),
                "{}",
                f.message
            );
            assert_eq!(
                f.expected.as_deref(),
                Some("Date: <nnnn-nn-nnTnn:nn:nn.nnn>")
            );
        }
        // A wrong password: the platform refuses the credentials.
        let r = run(&[], &[("capture_password", "not-the-password")]).await;
        let f = &r.cases[0].failures[0];
        assert_eq!(f.check, "replay", "{:#?}", r.cases[0].failures);
        assert!(f.message.contains("    - SIP/2.0 200"), "{}", f.message);
        // A platform that never answers a keepalive: the replay stops there.
        let r = run(&["no-keepalive-answer"], &[]).await;
        let f = &r.cases[0].failures[0];
        assert_eq!(f.check, "replay.missing", "{:#?}", r.cases[0].failures);
        assert!(
            f.message.contains("expected 200 OK CSeq 1 MESSAGE"),
            "{}",
            f.message
        );
    }

    /// `as: platform`: the platform side of the same recording for the
    /// reference camera, its digest responses verified with the password.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_platform_side_plays_for_the_reference_camera() {
        const PLATFORM: &str = "tests/suites/replay-platform.yaml";
        let r = run_suite(PLATFORM, &[], &[]).await;
        assert_eq!(r.cases.len(), 2, "udp and tcp");
        for c in &r.cases {
            assert_eq!(
                c.status,
                Status::Passed,
                "{}: {:#?}",
                c.transport,
                c.failures
            );
            // 401, 200 and two keepalive 200s went out.
            let sent = c.messages.iter().filter(|m| m.direction == "sent").count();
            assert!(sent >= 4, "{:#?}", c.messages);
        }
        let r = run_suite(PLATFORM, &["wrong-digest"], &[]).await;
        for c in &r.cases {
            let f = c
                .failures
                .iter()
                .find(|f| f.check == "replay")
                .unwrap_or_else(|| panic!("{}: {:#?}", c.transport, c.failures));
            assert!(f.message.contains("REGISTER"), "{}", f.message);
            assert_eq!(
                f.expected.as_deref(),
                Some("Authorization: Digest <credentials>")
            );
            assert!(
                f.received
                    .as_deref()
                    .is_some_and(|r| r.contains("(the password gives")),
                "{f:#?}"
            );
        }
    }
}
