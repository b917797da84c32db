//! The camera media suite (camcert plays the platform, the built-in reference
//! camera is the DUT): the clean camera passes every case, and each media fault
//! of the camera fails exactly the cases that check it.

mod common;

use std::sync::Arc;

use camcert::report::Status;
use common::{failed_ids, run_builtin};

const SUITE: &[&str] = &["suites/gb28181/camera-media.yaml"];

/// Each media fault and the cases it must fail.
const FAULTS: &[(&str, &[&str])] = &[
    // The answer's y= differs from the offer's: every session the camera answers.
    (
        "wrong-ssrc",
        &[
            "CAM-MED-001",
            "CAM-MED-002",
            "CAM-MED-003",
            "CAM-MED-004",
            "CAM-MED-005",
            "CAM-MED-006",
            "CAM-MED-007",
            "CAM-MED-009",
            "CAM-MED-010",
            "CAM-MED-012",
        ],
    ),
    // Video stream faults: every case that checks a video stream.
    ("rtp-wrong-ssrc", VIDEO),
    ("missing-psm", VIDEO),
    ("no-marker", VIDEO),
    // Judged against the PES PTS once half a second of video has passed
    // (CAM-MED-005 tears down sooner).
    (
        "ms-timestamps",
        &[
            "CAM-MED-001",
            "CAM-MED-002",
            "CAM-MED-003",
            "CAM-MED-004",
            "CAM-MED-006",
            "CAM-MED-007",
        ],
    ),
    // Media after the platform's BYE: the cases that hang up mid-stream.
    (
        "stream-after-bye",
        &[
            "CAM-MED-001",
            "CAM-MED-002",
            "CAM-MED-003",
            "CAM-MED-004",
            "CAM-MED-009",
        ],
    ),
    // Faults of the signalling suites that the media cases meet too.
    ("no-broadcast-response", &["CAM-MED-011"]),
    ("answer-unknown-device", &["CAM-MED-008"]),
    // The BYE goes unanswered: every session camcert hangs up on the camera.
    (
        "ignore-bye",
        &[
            "CAM-MED-001",
            "CAM-MED-002",
            "CAM-MED-003",
            "CAM-MED-004",
            "CAM-MED-005",
            "CAM-MED-006",
            "CAM-MED-007",
            "CAM-MED-009",
            "CAM-MED-010",
            "CAM-MED-012",
        ],
    ),
];

const VIDEO: &[&str] = &[
    "CAM-MED-001",
    "CAM-MED-002",
    "CAM-MED-003",
    "CAM-MED-004",
    "CAM-MED-005",
    "CAM-MED-006",
    "CAM-MED-007",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_camera_passes_every_media_case() {
    let r = run_builtin(SUITE, &[], &[]).await;
    let mut ids: Vec<_> = r.cases.iter().map(|c| c.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 12, "{ids:?}");
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| (c.id.clone(), c.transport.clone(), c.failures.clone()))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // Each case leaves its evidence, media included.
    assert!(r.cases.iter().all(|c| c.pcap.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_media_fault_fails_exactly_its_cases() {
    let limit = Arc::new(tokio::sync::Semaphore::new(3));
    let mut runs = tokio::task::JoinSet::new();
    for (fault, expected) in FAULTS {
        let limit = limit.clone();
        runs.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let r = run_builtin(SUITE, &[fault], &[]).await;
            (*fault, *expected, r)
        });
    }
    let mut wrong = Vec::new();
    while let Some(done) = runs.join_next().await {
        let (fault, expected, r) = done.unwrap();
        let got = failed_ids(&r);
        if got != expected {
            let why: Vec<_> = r
                .cases
                .iter()
                .filter(|c| c.status != Status::Passed)
                .map(|c| (c.id.clone(), c.transport.clone(), c.failures.clone()))
                .collect();
            wrong.push((fault, expected, got, why));
        } else {
            // Strict counts the conditional cases too (talk, broadcast).
            assert_eq!(r.exit_code(true), 1, "{fault}");
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
