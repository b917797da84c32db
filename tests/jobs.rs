//! `-j`: units of cases side by side give the verdicts of one at a time, in
//! the same order, in the returned result and in results.json alike; with
//! a peer fault on, so that some cases fail and some pass.

mod common;

use common::{run_builtin_jobs, verdicts, verdicts_written};

/// Runs `suites` with `fault` at `-j 1` and at `-j 8`, and compares the
/// verdict lists (case ID, transport, status).
async fn assert_same_verdicts(suites: &[&str], fault: &str) {
    let faults = [fault];
    let ((one, one_written), (many, many_written)) = tokio::join!(
        run_builtin_jobs(suites, &faults, &[], Some(1)),
        run_builtin_jobs(suites, &faults, &[], Some(8)),
    );
    let v1 = verdicts(&one);
    let vn = verdicts(&many);
    // The fault is seen, and does not fail everything.
    assert!(v1.iter().any(|v| v.2 == "failed"), "{fault}: {v1:#?}");
    assert!(v1.iter().any(|v| v.2 == "passed"), "{fault}: {v1:#?}");
    // Both transports, and more cases than one unit holds.
    assert!(v1.iter().any(|v| v.1 == "tcp") && v1.iter().any(|v| v.1 == "udp"));
    assert_eq!(v1, vn, "{fault}: -j 1 (left) and -j 8 (right) differ");
    assert_eq!(
        verdicts_written(&one_written),
        v1,
        "{fault}: -j 1 results.json"
    );
    assert_eq!(
        verdicts_written(&many_written),
        vn,
        "{fault}: -j 8 results.json"
    );
    assert_eq!(one.exit_code(true), many.exit_code(true));
}

/// camcert plays the platform: the reference camera leaves out the alarm
/// priority (the notify and subscribe suites fail some cases each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_suites_give_the_same_verdicts_side_by_side() {
    assert_same_verdicts(
        &[
            "suites/gb28181/camera-notify.yaml",
            "suites/gb28181/camera-subscribe.yaml",
            "suites/gb28181/register-camera.yaml",
        ],
        "alarm-missing-priority",
    )
    .await;
}

/// camcert plays the device and the upper platform: the reference platform
/// does not answer keepalives (cases of both suites fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_suites_give_the_same_verdicts_side_by_side() {
    assert_same_verdicts(
        &[
            "suites/gb28181/platform-keepalive.yaml",
            "suites/gb28181/cascade-upper.yaml",
            "suites/gb28181/register-platform.yaml",
        ],
        "no-keepalive-answer",
    )
    .await;
}
