//! The camera media suite (camcert plays the platform, the built-in reference
//! camera is the DUT): the clean camera passes every case, and each media fault
//! of the camera fails exactly the cases that check it.

mod common;

use common::{assert_clean_run_passes, assert_faults_fail_exactly};

const SUITE: &[&str] = &["suites/gb28181/camera-media.yaml"];

/// Each media fault and the cases it must fail.
const FAULTS: &[(&str, &[&str])] = &[
    // The answer's y= differs from the offer's: every session the camera answers.
    ("wrong-ssrc", ANSWERED),
    // Video stream faults: every case that checks a video stream.
    ("rtp-wrong-ssrc", VIDEO),
    ("missing-psm", VIDEO),
    // A PSM under start code 0xBB: read as the map, reported (ps.psm-start-code).
    ("psm-bb", VIDEO),
    // RTSP-style TCP framing: the video cases over TCP.
    (
        "rtsp-interleaved",
        &[
            "CAM-MED-002",
            "CAM-MED-003",
            "CAM-MED-005",
            "CAM-MED-006",
            "CAM-MED-013",
            "CAM-MED-014",
        ],
    ),
    // No a=sendonly in the answer: only the case that checks it fails; the
    // others record the finding and receive as usual.
    ("no-direction", &["CAM-MED-001"]),
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
            "CAM-MED-013",
            "CAM-MED-014",
            "CAM-MED-017",
        ],
    ),
    // Media after the platform's BYE: the cases that hang up mid-stream and
    // count what comes after.
    (
        "stream-after-bye",
        &[
            "CAM-MED-001",
            "CAM-MED-002",
            "CAM-MED-003",
            "CAM-MED-004",
            "CAM-MED-009",
            "CAM-MED-013",
        ],
    ),
    // Faults of the signalling suites that the media cases meet too.
    (
        "no-broadcast-response",
        &["CAM-MED-011", "CAM-MED-015", "CAM-MED-016"],
    ),
    ("answer-unknown-device", &["CAM-MED-008"]),
    // The BYE goes unanswered: every session camcert hangs up on the camera.
    ("ignore-bye", ANSWERED),
    // The video stops after 40 frames with the session up: the downloads never
    // reach their end, and the long live case misses its three seconds.
    (
        "stream-stall",
        &["CAM-MED-006", "CAM-MED-007", "CAM-MED-014", "CAM-MED-017"],
    ),
];

/// The sessions the camera answers (all but the broadcast, which it places).
const ANSWERED: &[&str] = &[
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
    "CAM-MED-013",
    "CAM-MED-014",
    "CAM-MED-017",
];

const VIDEO: &[&str] = &[
    "CAM-MED-001",
    "CAM-MED-002",
    "CAM-MED-003",
    "CAM-MED-004",
    "CAM-MED-005",
    "CAM-MED-006",
    "CAM-MED-007",
    "CAM-MED-013",
    "CAM-MED-014",
    "CAM-MED-017",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_camera_passes_every_media_case() {
    // Each case leaves its evidence, media included.
    assert_clean_run_passes(SUITE, 17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_media_fault_fails_exactly_its_cases() {
    assert_faults_fail_exactly(SUITE, FAULTS, 3).await;
}
