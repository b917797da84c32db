//! suites/hemu against the built-in HEDGW peers: all pass as they are, and
//! each fault switch of the reference device and gateway fails its cases
//! and only those.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::Status;
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};

async fn run(fault: Option<&'static str>) -> (Vec<String>, usize) {
    let suites = load::load_all(&[common::root().join("suites/hemu")]).expect("suites load");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        peer_faults: fault.iter().map(|s| s.to_string()).collect(),
        filters: vec!["HGW-*".into()],
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run");
    let failed: BTreeSet<String> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| c.id.clone())
        .collect();
    (failed.into_iter().collect(), r.cases.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hemu_suites_pass_and_each_fault_fails_its_cases() {
    const MEDIA: &[&str] = &[
        "HGW-TD-AUDIO-001",
        "HGW-TD-MEDIA-001",
        "HGW-TD-MEDIA-002",
        "HGW-TD-MEDIA-003",
        "HGW-TD-MEDIA-004",
    ];
    let table: &[(Option<&str>, &[&str])] = &[
        (None, &[]),
        // Reference device (camcert as gateway).
        (Some("no-ping"), &["HGW-TD-PING-001"]),
        (
            Some("missing-device-mac"),
            &["HGW-TD-LIMIT-001", "HGW-TD-LOGIN-001"],
        ),
        (
            Some("bad-channel-id"),
            &["HGW-TD-LIMIT-001", "HGW-TD-LOGIN-001"],
        ),
        (Some("ignore-limit"), &["HGW-TD-LIMIT-001"]),
        (Some("no-reply"), &["HGW-TD-CMD-001", "HGW-TD-CMD-002"]),
        (
            Some("wrong-sub-request"),
            &["HGW-TD-CMD-001", "HGW-TD-CMD-002"],
        ),
        (Some("no-sps-pps"), MEDIA),
        (Some("seq-gap"), MEDIA),
        (Some("seconds-timestamps"), MEDIA),
        (Some("audio-30ms"), MEDIA),
        (
            Some("ignore-server-cmd"),
            &["HGW-TD-MEDIA-004", "HGW-TD-THUMB-001"],
        ),
        // Reference gateway (camcert as TD).
        (
            Some("no-login-response"),
            &[
                "HGW-GW-CRED-001",
                "HGW-GW-FIELDS-001",
                "HGW-GW-LOGIN-001",
                "HGW-GW-PONG-001",
            ],
        ),
        (
            Some("refuse-login"),
            &["HGW-GW-LOGIN-001", "HGW-GW-PONG-001"],
        ),
        (
            Some("no-ping-pong-span"),
            &["HGW-GW-FIELDS-001", "HGW-GW-LOGIN-001", "HGW-GW-PONG-001"],
        ),
        (Some("no-pong"), &["HGW-GW-PONG-001"]),
        (Some("unknown-field"), &["HGW-GW-FIELDS-001"]),
        (Some("plain-tcp"), &["HGW-GW-TLS-001"]),
    ];
    let mut set = tokio::task::JoinSet::new();
    for (fault, want) in table.iter().copied() {
        set.spawn(async move { (fault, want, run(fault).await) });
    }
    let mut wrong = Vec::new();
    while let Some(r) = set.join_next().await {
        let (fault, want, (failed, total)) = r.unwrap();
        assert_eq!(total, 18);
        if failed != want {
            wrong.push(format!(
                "{fault:?}: expected {want:?} to fail, got {failed:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The gateway suite against a gateway camcert did not start itself
/// (`--target`): the reference gateway on its own listener, with its own
/// certificate, taken as a real DUT would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_suite_runs_against_a_target() {
    use camcert::peers::hedgw::{serve_gateway, tls};
    use camcert::proto::hedgw::gateway::GatewayConfig;

    let id = tls::Identity::self_signed(&["gateway.example"]).unwrap();
    let server = serve_gateway(
        "127.0.0.1:0".parse().unwrap(),
        GatewayConfig {
            access_key: Some("camcert".into()),
            access_secret: Some("camcert-secret".into()),
            device_token: Some("camcert-token".into()),
            ping_pong_span: 1,
            ..Default::default()
        },
        tls::server_config(&id).unwrap(),
    )
    .await
    .unwrap();
    let suites = load::load_all(&[common::root().join("suites/hemu/hedgw-gateway.yaml")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        target: Some(format!("tcp://{}", server.addr).parse().unwrap()),
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| {
            (
                c.id.clone(),
                c.failures.first().map(|f| f.message.clone()),
                c.messages
                    .iter()
                    .map(|m| format!("{} {} {}", m.at_ms, m.direction, m.summary))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(r.cases.len(), 6);
    // A secret never shows in the report.
    let json = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    assert!(!json.contains("camcert-secret"));
    drop(server);
}
