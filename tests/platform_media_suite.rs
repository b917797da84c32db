//! The platform media suite (camcert plays the camera, the built-in reference
//! platform is the DUT): the clean platform passes every case, and each media
//! fault of the platform fails exactly the cases that check it.

mod common;

use common::{assert_clean_run_passes, assert_faults_fail_exactly};

const SUITE: &[&str] = &["suites/gb28181/platform-media.yaml"];

/// Each media fault of the reference platform and the cases it must fail.
const FAULTS: &[(&str, &[&str])] = &[
    // y= starting with 1 in a live offer: the live cases check the flag digit.
    (
        "live-history-ssrc",
        &["PLT-MED-001", "PLT-MED-002", "PLT-MED-003"],
    ),
    // TCP offers without a=setup: every case where the platform offers TCP.
    (
        "tcp-no-setup",
        &[
            "PLT-MED-002",
            "PLT-MED-003",
            "PLT-MED-010",
            "PLT-MED-011",
            "PLT-MED-012",
            "PLT-MED-013",
            "PLT-MED-014",
            "PLT-MED-015",
        ],
    ),
    // t=0 0 and no u= in history offers: every playback and download.
    (
        "history-no-range",
        &[
            "PLT-MED-005",
            "PLT-MED-006",
            "PLT-MED-010",
            "PLT-MED-011",
            "PLT-MED-012",
            "PLT-MED-013",
        ],
    ),
    // The downloads miss a=downloadspeed, or never hang up after MediaStatus 121.
    (
        "no-downloadspeed",
        &["PLT-MED-006", "PLT-MED-012", "PLT-MED-013"],
    ),
    ("no-eof-bye", &["PLT-MED-006", "PLT-MED-012", "PLT-MED-013"]),
    // Talk offered sendonly: every talk case.
    (
        "talk-sendonly",
        &["PLT-MED-007", "PLT-MED-014", "PLT-MED-015"],
    ),
    // The camera's BYE goes unanswered.
    ("ignore-device-bye", &["PLT-MED-004"]),
    // The broadcast audio INVITE is refused, over any link.
    (
        "refuse-broadcast-audio",
        &["PLT-MED-008", "PLT-MED-016", "PLT-MED-017"],
    ),
    // A stream that stops without BYE is left up.
    ("no-media-timeout", &["PLT-MED-009"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_platform_passes_every_media_case() {
    // Each case leaves its evidence, media included.
    assert_clean_run_passes(SUITE, 17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_platform_media_fault_fails_exactly_its_cases() {
    assert_faults_fail_exactly(SUITE, FAULTS, 3).await;
}
