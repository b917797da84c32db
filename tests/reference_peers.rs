//! The GB28181 suites against the built-in reference peers: clean peers pass
//! every case; each deliberate fault fails exactly the cases that check it.

mod common;

use camcert::report::Status;
use common::{assert_faults_fail_exactly, failed_ids, run_builtin};

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

const CAMERA: &str = "suites/gb28181/register-camera.yaml";
const PLATFORM: &str = "suites/gb28181/register-platform.yaml";

/// Each fault's run, side by side, fails exactly its cases, and a strict
/// run exits 1 (--strict counts optional cases too; PLT-SIP-002 is optional).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_faults_fail_their_cases() {
    const FAULTS: &[(&str, &[&str])] = &[
        (
            "wrong-digest",
            &["CAM-REG-002", "CAM-REG-003", "CAM-UNREG-001"],
        ),
        ("wrong-device-id", &["CAM-REG-001"]),
        ("wrong-platform-id", &["CAM-REG-001"]),
        ("no-refresh", &["CAM-REG-004"]),
        ("fast-retry", &["CAM-REG-005"]),
        ("no-unregister", &["CAM-UNREG-001"]),
    ];
    assert_faults_fail_exactly(&[CAMERA], FAULTS, FAULTS.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_faults_fail_their_cases() {
    const FAULTS: &[(&str, &[&str])] = &[
        ("accept-wrong-password", &["PLT-REG-003"]),
        ("accept-unknown-device", &["PLT-REG-005"]),
        ("ignore-platform-id", &["PLT-REG-004"]),
        ("no-date", &["PLT-TIME-001"]),
        ("refuse-unregister", &["PLT-UNREG-001"]),
        ("wedge-on-garbage", &["PLT-SIP-002"]),
    ];
    let ((), r) = tokio::join!(
        assert_faults_fail_exactly(&[PLATFORM], FAULTS, FAULTS.len()),
        run_builtin(&[PLATFORM], &["no-challenge"], &["PLT-REG-001"])
    );
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
