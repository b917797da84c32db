//! The GB28181 suites against the built-in reference peers: clean peers pass
//! every case; each deliberate fault fails exactly the cases that check it.

mod common;

use camcert::report::Status;
use common::{failed_ids, run_builtin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_reference_peers_pass_every_case() {
    let r = run_builtin(&["suites/gb28181"], &[], &[]).await;
    assert!(r.cases.len() >= 30, "{}", r.cases.len());
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| (c.id.clone(), c.transport.clone(), c.failures.clone()))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(r.exit_code(false), 0);
}

async fn assert_fault(suite: &str, fault: &str, expected: &[&str]) {
    let r = run_builtin(&[suite], &[fault], &[]).await;
    let got = failed_ids(&r);
    assert_eq!(got, expected, "fault {fault}");
    // --strict counts optional cases too (PLT-SIP-002 is optional).
    assert_eq!(r.exit_code(true), 1, "fault {fault}");
}

const CAMERA: &str = "suites/gb28181/register-camera.yaml";
const PLATFORM: &str = "suites/gb28181/register-platform.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_faults_fail_their_cases() {
    assert_fault(
        CAMERA,
        "wrong-digest",
        &["CAM-REG-002", "CAM-REG-003", "CAM-UNREG-001"],
    )
    .await;
    assert_fault(CAMERA, "wrong-device-id", &["CAM-REG-001"]).await;
    assert_fault(CAMERA, "wrong-platform-id", &["CAM-REG-001"]).await;
    assert_fault(CAMERA, "no-refresh", &["CAM-REG-004"]).await;
    assert_fault(CAMERA, "fast-retry", &["CAM-REG-005"]).await;
    assert_fault(CAMERA, "no-unregister", &["CAM-UNREG-001"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_faults_fail_their_cases() {
    assert_fault(PLATFORM, "accept-wrong-password", &["PLT-REG-003"]).await;
    assert_fault(PLATFORM, "accept-unknown-device", &["PLT-REG-005"]).await;
    assert_fault(PLATFORM, "ignore-platform-id", &["PLT-REG-004"]).await;
    assert_fault(PLATFORM, "no-date", &["PLT-TIME-001"]).await;
    assert_fault(PLATFORM, "refuse-unregister", &["PLT-UNREG-001"]).await;
    assert_fault(PLATFORM, "wedge-on-garbage", &["PLT-SIP-002"]).await;
    let r = run_builtin(&[PLATFORM], &["no-challenge"], &["PLT-REG-001"]).await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.received.as_deref(), Some("200 OK"), "{f:?}");
}

/// A peer that sends garbage, a truncated message, or bytes past
/// Content-Length fails the case with the bytes as evidence, and the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_from_the_peer_are_evidence() {
    for (fault, check, needle) in [
        ("garbage", "sip.parse", "garbage"),
        ("truncated", "sip.parse", "Content-Length: 120"),
        (
            "overlong-body",
            "sip.body-longer-than-content-length",
            "EXTRA-BYTES",
        ),
    ] {
        let r = run_builtin(&[CAMERA], &[fault], &["CAM-SIP-001"]).await;
        let udp = r.cases.iter().find(|c| c.transport == "udp").unwrap();
        assert_eq!(udp.status, Status::Failed);
        let f = &udp.failures[0];
        assert_eq!(f.check, check, "{fault}: {f:?}");
        assert!(
            f.bytes.as_deref().unwrap_or("").contains(needle),
            "{fault}: {f:?}"
        );
        // Both transports ran: the failure did not stop the run.
        assert_eq!(r.cases.len(), 2);
    }
    let r = run_builtin(&[PLATFORM], &["garbage"], &["PLT-REG-001"]).await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "sip.parse");
    assert!(f
        .bytes
        .as_deref()
        .unwrap()
        .contains("garbage from a broken platform"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_report() {
    std::env::set_var("CAMCERT_DEVICE_PASSWORD", "sup3r-s3cret-pw");
    let r = run_builtin(&[CAMERA], &["wrong-digest"], &["CAM-REG-002"]).await;
    std::env::remove_var("CAMCERT_DEVICE_PASSWORD");
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("sup3r-s3cret-pw"));
    assert_eq!(failed_ids(&r), vec!["CAM-REG-002"]);
}
