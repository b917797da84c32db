//! suites/hemu's OpenAPI suites against the built-in peers: all pass as
//! they are, each fault switch of the reference TD and platform fails its
//! cases and only those, and the failure names the cause.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::{CaseResult, Status};
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};

async fn run(fault: Option<&'static str>) -> (BTreeMap<String, CaseResult>, usize) {
    let suites = load::load_all(&[common::root().join("suites/hemu")]).expect("suites load");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        peer_faults: fault.iter().map(|s| s.to_string()).collect(),
        filters: vec!["OAPI-*".into()],
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run");
    let total = r.cases.len();
    let failed = r
        .cases
        .into_iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| (c.id.clone(), c))
        .collect();
    (failed, total)
}

const ALL_TD: &[&str] = &[
    "OAPI-TD-CACHE-001",
    "OAPI-TD-CLOCK-001",
    "OAPI-TD-CLOCK-002",
    "OAPI-TD-FLOW-001",
    "OAPI-TD-NONCE-001",
    "OAPI-TD-REG-001",
];
const ALL_401: &[&str] = &[
    "OAPI-PF-AUTH-001",
    "OAPI-PF-AUTH-002",
    "OAPI-PF-REPLAY-001",
    "OAPI-PF-REPLAY-002",
    "OAPI-PF-REPLAY-003",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_suites_pass_and_each_fault_fails_its_cases() {
    // (fault, the cases it fails, a word every failure of the first case names)
    let table: &[(Option<&str>, &[&str], &str)] = &[
        (None, &[], ""),
        // Reference TD (camcert as the platform).
        (
            Some("wrong-signature-order"),
            ALL_TD,
            "openapi.signature-order",
        ),
        (Some("stale-created"), ALL_TD, "openapi.replay-stale"),
        (Some("no-wsse"), ALL_TD, "openapi.wsse-missing"),
        (Some("bad-digest"), ALL_TD, "openapi.wsse-digest"),
        (
            Some("reuse-nonce"),
            &[
                "OAPI-TD-CACHE-001",
                "OAPI-TD-CLOCK-002",
                "OAPI-TD-FLOW-001",
                "OAPI-TD-NONCE-001",
            ],
            "openapi.replay-nonce",
        ),
        (
            Some("ignore-address-cache"),
            &["OAPI-TD-CACHE-001"],
            "openapi.address-cache",
        ),
        (
            Some("ignore-401-date"),
            &["OAPI-TD-CLOCK-001", "OAPI-TD-CLOCK-002"],
            "openapi.replay-stale",
        ),
        (
            Some("skip-capacity"),
            &["OAPI-TD-CACHE-001", "OAPI-TD-FLOW-001", "OAPI-TD-NONCE-001"],
            "openapi.flow-order",
        ),
        // Reference platform (camcert as the TD).
        (
            Some("accept-stale-created"),
            &["OAPI-PF-REPLAY-003"],
            "openapi.accepted-replay",
        ),
        (
            Some("accept-reused-nonce"),
            &["OAPI-PF-REPLAY-001", "OAPI-PF-REPLAY-002"],
            "openapi.accepted-replay",
        ),
        (Some("no-date-on-401"), ALL_401, "openapi.unauthorized-date"),
        (Some("http-date-on-401"), ALL_401, "RFC 3339"),
        (
            Some("accept-bad-signature"),
            &["OAPI-PF-SIGN-001"],
            "errorCode",
        ),
        (
            Some("echo-msg-type"),
            &[
                "OAPI-PF-ERR-002",
                "OAPI-PF-FLOW-001",
                "OAPI-PF-REG-001",
                "OAPI-PF-REPLAY-001",
                "OAPI-PF-REPLAY-002",
                "OAPI-PF-SIGN-001",
            ],
            "openapi.msg-type-mismatch",
        ),
        (Some("ok-on-bad-json"), &["OAPI-PF-ERR-001"], "errorCode"),
    ];
    let mut set = tokio::task::JoinSet::new();
    for (fault, want, word) in table.iter().copied() {
        set.spawn(async move { (fault, want, word, run(fault).await) });
    }
    let mut wrong = Vec::new();
    while let Some(r) = set.join_next().await {
        let (fault, want, word, (failed, total)) = r.unwrap();
        assert_eq!(total, 16);
        let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
        if ids != want {
            wrong.push(format!("{fault:?}: expected {want:?} to fail, got {ids:?}"));
            continue;
        }
        if let Some(first) = want.first() {
            let c = &failed[*first];
            let text = format!("{:?}", c.failures);
            if !text.contains(word) {
                wrong.push(format!(
                    "{fault:?}: {first}'s failure does not name {word:?}: {text}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The access secret never reaches a report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_secret_is_masked_in_reports() {
    let (failed, _) = run(Some("bad-digest")).await;
    let text = serde_json::to_string(&failed.values().collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("ADtuchbM8TBPhQdSi8U4"),
        "secret in the report"
    );
    assert!(text.contains("X-WSSE"), "the messages are in the report");
}

/// The platform suite against a platform camcert did not start itself
/// (`--target`): the reference platform on its own listener, taken as a
/// real DUT would be, one session of cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_suite_runs_against_a_target() {
    use camcert::peers::hedgw::tls;
    use camcert::peers::openapi;
    use camcert::proto::openapi::server::ServerConfig;
    use camcert::proto::Transport;
    use camcert::transport::PeerAddr;

    let id = tls::Identity::self_signed(&["openapi.example"]).unwrap();
    let server = openapi::serve(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
        tls::server_config(&id).unwrap(),
        chrono::Duration::zero(),
    )
    .await
    .unwrap();
    let suites = load::load_all(&[common::root().join("suites/hemu/openapi-platform.yaml")])
        .expect("suite loads");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        target: Some(PeerAddr {
            transport: Transport::Tcp,
            addr: server.addr,
        }),
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run");
    let bad: Vec<String> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| format!("{}: {:?}", c.id, c.failures))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(r.cases.len(), 10);
}
