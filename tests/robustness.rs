//! The `fuzz` step against the reference camera: the clean camera passes
//! every probe; each robustness fault is found, named by the check that
//! caught it, shrunk to a reproducer, and the reproducer fails again when
//! run, and passes once the fault is gone.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::{RunResult, Status};
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};
use common::root;

const SUITE: &str = "suites/gb28181/robustness-camera.yaml";

/// Each robustness fault, the check that must catch it, and what the input
/// the reproducer comes down to may be.
const FAULTS: &[(&str, &str, &[&str])] = &[
    ("robust-hang-long-id", "fuzz.probe", &["DeviceID"]),
    ("robust-crash-no-y", "fuzz.probe", &["SDP without y="]),
    (
        "robust-accept-garbage",
        "fuzz.accepted-malformed",
        &["random bytes as the body", "mutate/sip: drop"],
    ),
];

async fn run(path: &Path, faults: &[&str], vars: &[(&str, &str)], dir: &Path) -> RunResult {
    let suites = load::load_all(&[path.to_path_buf()]).expect("suite loads");
    let opts = RunOptions {
        report_dir: dir.to_path_buf(),
        peer_faults: faults.iter().map(|s| s.to_string()).collect(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        job_pool: Some(common::job_pool()),
        ..Default::default()
    };
    runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_camera_passes_every_probe() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        &root().join(SUITE),
        &[],
        &[("fuzz_count", "150")],
        dir.path(),
    )
    .await;
    assert_eq!(r.cases.len(), 2);
    for c in &r.cases {
        assert_eq!(
            c.status,
            Status::Passed,
            "{} {}: {:?}",
            c.id,
            c.transport,
            c.failures
        );
    }
    assert!(
        !dir.path().join("fuzz").exists(),
        "no reproducer without a failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_finds_the_same_failure() {
    let mut messages = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &root().join(SUITE),
            &["robust-accept-garbage"],
            &[("fuzz_count", "150"), ("fuzz_seed", "5")],
            dir.path(),
        )
        .await;
        let c = r.cases.iter().find(|c| c.transport == "udp").unwrap();
        let m = c.failures.first().expect("a failure").message.clone();
        // The report directory differs; the rest must not.
        messages.push(m.split(" Reproducer").next().unwrap().to_string());
    }
    assert_eq!(messages[0], messages[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_robustness_fault_is_found_shrunk_and_reproduced() {
    let mut runs = tokio::task::JoinSet::new();
    for (fault, check, inputs) in FAULTS {
        runs.spawn(async move {
            let dir = tempfile::tempdir().unwrap();
            let r = run(
                &root().join(SUITE),
                &[fault],
                &[("fuzz_count", "300"), ("fuzz_seed", "3")],
                dir.path(),
            )
            .await;
            for c in &r.cases {
                assert_eq!(
                    c.status,
                    Status::Failed,
                    "{fault} {}: {:?}",
                    c.transport,
                    c.failures
                );
                let f = &c.failures[0];
                assert_eq!(f.check, *check, "{fault} {}: {}", c.transport, f.message);
                assert!(f.message.contains("Seed 3"), "{}", f.message);
                assert!(
                    f.message.contains("Reproducer (1 input"),
                    "{fault}: {}",
                    f.message
                );
                let last = f.message.split("Its last input: ").nth(1).unwrap_or("");
                assert!(
                    inputs.iter().any(|i| last.contains(i)),
                    "{fault}: {}",
                    f.message
                );
                assert!(f.bytes.is_some(), "the last input is the evidence");
                let repro = dir
                    .path()
                    .join("fuzz")
                    .join(format!("CAM-ROB-001-{}-seed3", c.transport))
                    .join("reproducer.yaml");
                assert!(repro.is_file(), "{}", repro.display());
                let pcap = std::fs::read(repro.with_file_name("reproducer.pcap")).unwrap();
                let frames = camcert::capture::read::read_capture(&pcap)
                    .expect("the reproducer's pcap reads")
                    .frames
                    .len();
                assert!(
                    frames >= 2,
                    "{fault}: {frames} frames in the reproducer's pcap"
                );
                check_reproducer(fault, &repro).await;
            }
            (fault, dir)
        });
    }
    while let Some(r) = runs.join_next().await {
        r.expect("a fault's run");
    }
}

/// The reproducer fails against the faulty camera and passes against a
/// clean one.
async fn check_reproducer(fault: &str, repro: &PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let r = run(repro, &[], &[], out.path()).await;
    assert_eq!(r.cases.len(), 1);
    assert_eq!(
        r.cases[0].status,
        Status::Failed,
        "{fault}: the reproducer no longer fails: {:?}",
        r.cases[0].failures
    );
    let text = std::fs::read_to_string(repro).unwrap();
    assert!(text.contains(&format!("\"fault\": \"{fault}\"")), "{text}");
    let clean = repro.with_file_name("clean.yaml");
    let text = text
        .replace(&format!("  \"fault\": \"{fault}\"\n"), "")
        .replace("peer:\nbackground:", "background:");
    std::fs::write(&clean, text).unwrap();
    let r = run(&clean, &[], &[], out.path()).await;
    assert_eq!(
        r.cases[0].status,
        Status::Passed,
        "{fault}: the reproducer fails a clean camera: {:?}",
        r.cases[0].failures
    );
}

const PLATFORM_SUITE: &str = "suites/gb28181/robustness-platform.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_platform_passes_every_probe() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        &root().join(PLATFORM_SUITE),
        &[],
        &[("fuzz_count", "150")],
        dir.path(),
    )
    .await;
    // PLT-ROB-001 over UDP and TCP, PLT-ROB-002 (damaged media) over UDP.
    assert_eq!(r.cases.len(), 3);
    for c in &r.cases {
        assert_eq!(
            c.status,
            Status::Passed,
            "{} {}: {:?}",
            c.id,
            c.transport,
            c.failures
        );
    }
}

/// The platform that stops answering after a datagram that is not SIP: the
/// UDP run finds it (over TCP nothing sent breaks the framing), names the
/// keepalive probe, and the reproducer registers, sends the one input and
/// fails the probe again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedging_platform_is_found_shrunk_and_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        &root().join(PLATFORM_SUITE),
        &["wedge-on-garbage"],
        &[("fuzz_count", "300"), ("fuzz_seed", "1")],
        dir.path(),
    )
    .await;
    let case = |t: &str| {
        r.cases
            .iter()
            .find(|c| c.id == "PLT-ROB-001" && c.transport == t)
            .unwrap()
    };
    let udp = case("udp");
    assert_eq!(udp.status, Status::Failed, "{:?}", udp.failures);
    let f = &udp.failures[0];
    assert_eq!(f.check, "fuzz.probe", "{}", f.message);
    assert!(f.message.contains("(a keepalive)"), "{}", f.message);
    assert!(f.message.contains("Reproducer (1 input"), "{}", f.message);
    let tcp = case("tcp");
    assert_eq!(tcp.status, Status::Passed, "{:?}", tcp.failures);
    let repro = dir
        .path()
        .join("fuzz/PLT-ROB-001-udp-seed1/reproducer.yaml");
    check_reproducer("wedge-on-garbage", &repro).await;
}

/// Damaged media in a live session: the clean platform keeps answering (in
/// the clean run above); one that stops answering keepalives fails the
/// probe after the stream, and the damage is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_media_then_a_keepalive_probe() {
    let dir = tempfile::tempdir().unwrap();
    let suites = load::load_all(&[root().join(PLATFORM_SUITE)]).expect("suite loads");
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        peer_faults: vec!["no-keepalive-answer".into()],
        filters: vec!["PLT-ROB-002".into()],
        job_pool: Some(common::job_pool()),
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run");
    assert_eq!(r.cases.len(), 1);
    let c = &r.cases[0];
    assert_eq!(c.status, Status::Failed, "{:?}", c.failures);
    let f = &c.failures[0];
    assert_eq!(f.step, 9, "the keepalive after the damaged stream: {f:?}");
    assert!(f.message.contains("200"), "{}", f.message);
}
