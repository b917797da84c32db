//! The platform and cascade suites against the built-in reference platform:
//! the clean platform passes every case; each deliberate platform fault
//! fails exactly the cases that check the behaviour it breaks.

mod common;

use common::{assert_all_passed, assert_faults_fail_exactly, run_builtin};

const SUITES: &[&str] = &[
    "suites/gb28181/platform-keepalive.yaml",
    "suites/gb28181/platform-queries.yaml",
    "suites/gb28181/platform-alarm.yaml",
    "suites/gb28181/platform-subscribe.yaml",
    "suites/gb28181/platform-redirect.yaml",
    "suites/gb28181/cascade-upper.yaml",
    "suites/gb28181/cascade-lower.yaml",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_reference_platform_passes_every_case() {
    let r = run_builtin(SUITES, &[], &[]).await;
    let ids: std::collections::BTreeSet<_> = r.cases.iter().map(|c| c.id.clone()).collect();
    assert!(ids.len() >= 55, "{}", ids.len());
    assert_all_passed(&r);
}

/// Run every suite once per fault, the faults side by side, and compare
/// the cases that did not pass with the expected ones.
async fn assert_faults(expected: &'static [(&'static str, &'static [&'static str])]) {
    assert_faults_fail_exactly(SUITES, expected, expected.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_faults_fail_their_cases() {
    assert_faults(&[
        (
            "no-keepalive-answer",
            &[
                "CAS-UP-003",
                "CAS-UP-004",
                "CAS-UP-005",
                "PLT-KA-001",
                "PLT-KA-002",
                "PLT-KA-003",
                "PLT-KA-004",
                "PLT-KA-005",
            ],
        ),
        (
            "no-offline-detection",
            &["CAS-UP-005", "PLT-KA-003", "PLT-KA-005"],
        ),
        (
            "accept-unregistered-keepalive",
            &[
                "CAS-UP-005",
                "PLT-KA-003",
                "PLT-KA-005",
                "PLT-KA-006",
                "PLT-KA-007",
            ],
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_faults_fail_their_cases() {
    assert_faults(&[
        // Every query the platform sends is judged, not only the one a
        // case checks, so each case that queries a catalog fails.
        (
            "catalog-query-bad-sn",
            &[
                "CAS-UP-006",
                "CAS-UP-007",
                "CAS-UP-008",
                "PLT-Q-001",
                "PLT-Q-002",
                "PLT-Q-003",
            ],
        ),
        (
            "bad-ptzcmd",
            &["CAS-UP-007", "PLT-CTL-001", "PLT-CTL-002", "PLT-Q-003"],
        ),
        ("recordinfo-no-time", &["CAS-UP-008", "PLT-Q-007"]),
        (
            "no-response-200",
            &[
                "CAS-UP-006",
                "CAS-UP-007",
                "CAS-UP-008",
                "PLT-CTL-004",
                "PLT-Q-001",
                "PLT-Q-002",
                "PLT-Q-003",
                "PLT-Q-005",
                "PLT-Q-006",
                "PLT-Q-007",
            ],
        ),
        // The upper platform cannot reach a camera listed after the first message.
        ("collect-stops-early", &["CAS-UP-007", "PLT-Q-003"]),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_subscription_and_redirect_faults_fail_their_cases() {
    assert_faults(&[
        (
            "no-alarm-response",
            &["PLT-ALM-001", "PLT-ALM-002", "PLT-ALM-003"],
        ),
        ("alarm-result-error", &["PLT-ALM-001", "PLT-ALM-003"]),
        (
            "notify-no-200",
            &["CAS-UP-009", "PLT-SUB-002", "PLT-SUB-005"],
        ),
        (
            "subscribe-no-expires",
            &["PLT-SUB-001", "PLT-SUB-003", "PLT-SUB-004", "PLT-SUB-006"],
        ),
        ("no-redirect", &["PLT-RED-001", "PLT-RED-004"]),
        ("redirect-no-contact", &["PLT-RED-001", "PLT-RED-004"]),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_faults_fail_their_cases() {
    assert_faults(&[
        ("cascade-wrong-sumnum", &["CAS-LOW-005", "CAS-LOW-006"]),
        ("cascade-no-status-notify", &["CAS-LOW-007", "CAS-LOW-008"]),
        ("no-forward-ptz", &["CAS-LOW-009"]),
        ("no-forward-recordinfo", &["CAS-LOW-011"]),
        (
            "cascade-no-keepalive",
            &["CAS-LOW-002", "CAS-LOW-003", "CAS-LOW-004"],
        ),
        ("cascade-no-reregister", &["CAS-LOW-003", "CAS-LOW-004"]),
        // Registration faults as the upper platform of a cascade.
        ("accept-wrong-password", &["CAS-UP-002", "PLT-RED-003"]),
    ])
    .await;
}

/// Each fault's failure says what went wrong, not just that something did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_failures_name_the_broken_check() {
    let r = run_builtin(SUITES, &["no-offline-detection"], &["PLT-KA-003"]).await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "message", "{f:?}");
    assert_eq!(f.received.as_deref(), Some("200 OK"), "{f:?}");
    let r = run_builtin(SUITES, &["cascade-wrong-sumnum"], &["CAS-LOW-005"]).await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "collect", "{f:?}");
    assert!(f.message.contains("3 of 4"), "{f:?}");
    let r = run_builtin(SUITES, &["catalog-query-bad-sn"], &["PLT-Q-001"]).await;
    let f = &r.cases[0].failures[0];
    assert!(f.message.contains("manscdp.sn-out-of-range"), "{f:?}");
}
