//! The shipped suites run against SIP implementations camcert did not write,
//! the way a lab runs them against a real device: one `camcert run` per
//! suite with `--target`, the peer started once and left running.
//!
//! - baresip (Debian `baresip-core`) is the device under test for the
//!   camera-side suites: a SIP user agent that registers with digest
//!   authentication and refreshes its registration, but speaks no MANSCDP.
//! - Kamailio (Debian `kamailio`) is the platform under test for the
//!   device-side registration suite: a digest-authenticating registrar.
//!
//! No GB/T 28181 device or platform is packaged in the registries these
//! scripts can install from, so these general SIP stacks stand in; the
//! verdicts they get are what camcert says about code it did not write.
//! The expected verdict of every case, with the checks that failed and the
//! finding codes reported, is kept in `tests/independent/*.json`; a change
//! in what camcert reports against them fails this test. Run with
//! `CAMCERT_BLESS=1` to rewrite the files after a deliberate change, and
//! review the diff.

mod common;
use common::{available, free_port};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::root;
use serde_json::{json, Value};

const DEV: &str = "34020000001320000001";
const PASSWORD: &str = "independent-pw-1";

use common::Daemon as Peer;

/// baresip registering `DEV` with camcert at `registrar` over UDP.
fn start_baresip(port: u16, registrar: u16) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{port}\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module ausine.so\n\
         module_app account.so\n\
         audio_player ausine,nil\n\
         audio_source ausine,440\n\
         audio_alert ausine,nil\n"
    );
    std::fs::write(dir.path().join("config"), config).unwrap();
    // The AOR's host is the SIP domain, as a camera is set up: ID@domain,
    // with the platform's address as the outbound proxy.
    let account = format!(
        "<sip:{DEV}@3402000000;transport=udp>;auth_user={DEV};auth_pass={PASSWORD};\
         outbound=\"sip:127.0.0.1:{registrar}\";regint=3600\n"
    );
    std::fs::write(dir.path().join("accounts"), account).unwrap();
    let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
    let child = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .arg("-s")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("baresip starts");
    Peer { child, dir, port }
}

fn start_kamailio() -> Peer {
    common::start_kamailio(PASSWORD)
}

/// `camcert run` as a lab runs it, with a hard time limit.
fn camcert_run(args: &[String], report_dir: &Path, limit: Duration) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_camcert"))
        .arg("run")
        .args(args)
        .arg("--report-dir")
        .arg(report_dir)
        .env("CAMCERT_DEVICE_PASSWORD", PASSWORD)
        .env("CAMCERT_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(root())
        .spawn()
        .expect("camcert runs");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// What is compared: each case run's status, the checks that failed, and
/// the finding codes, keyed `ID/transport`. Messages are left out: they
/// carry ports and tags that change from run to run.
fn verdicts(results: &Value) -> Value {
    let mut out = BTreeMap::new();
    for c in results["cases"].as_array().expect("cases") {
        let key = format!(
            "{}/{}",
            c["id"].as_str().unwrap(),
            c["transport"].as_str().unwrap()
        );
        let mut checks: Vec<String> = c["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["check"].as_str().unwrap_or_default().to_string())
            .collect();
        checks.dedup();
        let mut findings: Vec<String> = c["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["code"].as_str().unwrap_or_default().to_string())
            .collect();
        findings.sort();
        findings.dedup();
        out.insert(
            key,
            json!({ "status": c["status"], "failed_checks": checks, "findings": findings }),
        );
    }
    serde_json::to_value(out).unwrap()
}

/// Compare with the expected file, or write it with `CAMCERT_BLESS=1`.
fn compare(name: &str, got: &Value, context: &str) {
    let path = root().join("tests/independent").join(name);
    if std::env::var("CAMCERT_BLESS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with CAMCERT_BLESS=1)", path.display())),
    )
    .unwrap();
    if &want != got {
        let mut diff = String::new();
        let (w, g) = (want.as_object().unwrap(), got.as_object().unwrap());
        for k in w.keys().chain(g.keys().filter(|k| !w.contains_key(*k))) {
            if w.get(k) != g.get(k) {
                diff.push_str(&format!(
                    "{k}:\n  expected {}\n  got      {}\n",
                    w.get(k).map(|v| v.to_string()).unwrap_or("(absent)".into()),
                    g.get(k).map(|v| v.to_string()).unwrap_or("(absent)".into()),
                ));
            }
        }
        panic!(
            "verdicts against {name} changed (CAMCERT_BLESS=1 rewrites the file):\n{diff}\n{context}"
        );
    }
}

fn results(dir: &Path, out: &std::process::Output) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap_or_else(|e| {
        panic!(
            "no results.json ({e}); camcert said:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// camcert as the platform, baresip as the camera: the registration suite.
#[test]
fn baresip_camera_against_the_registration_suite() {
    if !available("baresip") {
        return;
    }
    let listen = free_port();
    let camera = free_port();
    let reports = tempfile::tempdir().unwrap();
    // baresip is started once, after camcert listens, and kept for the run.
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        start_baresip(camera, listen)
    });
    let args: Vec<String> = [
        "suites/gb28181/register-camera.yaml",
        "--target",
        &format!("udp://127.0.0.1:{camera}"),
        "--listen",
        &format!("127.0.0.1:{listen}"),
        "--no-operator",
        "--time-scale",
        "0.05",
        // The cases whose verdict does not hang on when baresip's first
        // REGISTER falls against the run's start: the retry and the
        // unauthenticated-REGISTER cases race it.
        "--filter",
        "CAM-REG-001",
        "--filter",
        "CAM-REG-002",
        "--filter",
        "CAM-REG-003",
        "--filter",
        "CAM-REG-004",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = camcert_run(&args, reports.path(), Duration::from_secs(240));
    let peer = starter.join().unwrap();
    let r = results(reports.path(), &out);
    let context = format!(
        "camcert:\n{}\nbaresip (port {}):\n{}",
        String::from_utf8_lossy(&out.stdout),
        peer.port,
        peer.log("baresip.log")
    );
    compare("baresip-register-camera.json", &verdicts(&r), &context);
}

/// camcert as the camera, Kamailio as the platform: the registration suite.
#[test]
fn kamailio_platform_against_the_registration_suite() {
    if !available("kamailio") {
        return;
    }
    let k = start_kamailio();
    let reports = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "suites/gb28181/register-platform.yaml".to_string(),
        "--target".into(),
        format!("udp://127.0.0.1:{}", k.port),
        "--no-operator".into(),
        "--time-scale".into(),
        "0.05".into(),
    ]
    .to_vec();
    let out = camcert_run(&args, reports.path(), Duration::from_secs(240));
    let r = results(reports.path(), &out);
    let context = format!(
        "camcert:\n{}\n{}\nkamailio:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        k.log("kamailio.log")
    );
    compare("kamailio-register-platform.json", &verdicts(&r), &context);
}
