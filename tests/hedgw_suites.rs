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
        "HGW-TD-MEDIA-005",
        "HGW-TD-SD-001",
    ];
    let table: &[(Option<&str>, &[&str])] = &[
        (None, &[]),
        // Reference device (camcert as gateway).
        (Some("no-ping"), &["HGW-TD-PING-001"]),
        (
            Some("missing-device-mac"),
            &["HGW-TD-DELETED-001", "HGW-TD-LIMIT-001", "HGW-TD-LOGIN-001"],
        ),
        (
            Some("bad-channel-id"),
            &["HGW-TD-DELETED-001", "HGW-TD-LIMIT-001", "HGW-TD-LOGIN-001"],
        ),
        (
            Some("ignore-limit"),
            &["HGW-TD-DELETED-001", "HGW-TD-LIMIT-001"],
        ),
        (Some("no-reply"), &["HGW-TD-CMD-001", "HGW-TD-CMD-002"]),
        // The event of HGW-TD-MEDIA-005 is judged too.
        (
            Some("event-seconds"),
            &["HGW-TD-EVENT-001", "HGW-TD-EVENT-002", "HGW-TD-MEDIA-005"],
        ),
        (
            Some("wrong-sub-request"),
            &["HGW-TD-CMD-001", "HGW-TD-CMD-002"],
        ),
        (Some("no-sps-pps"), MEDIA),
        (Some("seq-gap"), MEDIA),
        (Some("seconds-timestamps"), MEDIA),
        (Some("audio-30ms"), MEDIA),
        (Some("no-control-flag"), &["HGW-TD-MEDIA-005"]),
        (Some("no-ipcam-time"), &["HGW-TD-SD-001"]),
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
                "HGW-GW-FRAME-001",
                "HGW-GW-LOGIN-001",
                "HGW-GW-PONG-001",
            ],
        ),
        (
            Some("refuse-login"),
            &["HGW-GW-FRAME-001", "HGW-GW-LOGIN-001", "HGW-GW-PONG-001"],
        ),
        (
            Some("no-ping-pong-span"),
            &["HGW-GW-FIELDS-001", "HGW-GW-LOGIN-001", "HGW-GW-PONG-001"],
        ),
        (Some("no-pong"), &["HGW-GW-PONG-001"]),
        (Some("unknown-field"), &["HGW-GW-FIELDS-001"]),
        (Some("plain-tcp"), &["HGW-GW-TLS-001"]),
        (Some("no-frame-limit"), &["HGW-GW-FRAME-001"]),
    ];
    // Media and heartbeats run in real time: a few runs at a time keep a
    // small machine from starving the timers the cases measure.
    let pool = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for (fault, want) in table.iter().copied() {
        let pool = pool.clone();
        set.spawn(async move {
            let _permit = pool.acquire().await.unwrap();
            (fault, want, run(fault).await)
        });
    }
    let mut wrong = Vec::new();
    while let Some(r) = set.join_next().await {
        let (fault, want, (failed, total)) = r.unwrap();
        assert_eq!(total, 23);
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
    assert_eq!(r.cases.len(), 7);
    // A secret never shows in the report.
    let json = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    assert!(!json.contains("camcert-secret"));
    drop(server);
}

/// The TD suites against a TD camcert did not start (`--listen`): the
/// reference device connects on its own and comes back when its
/// connection is closed, as a camera does; the connection is kept from
/// case to case, and the operator cases are skipped with `--no-operator`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_td_suites_run_against_a_td_on_listen() {
    use camcert::peers::hedgw::{run_device, tls};
    use camcert::proto::hedgw::device::{Device, DeviceConfig};

    let port = common::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let td = tokio::spawn(async move {
        // Until the listener is up.
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let client = run_device(
            Device::new(DeviceConfig {
                reconnect_after: Some(std::time::Duration::from_millis(200)),
                ..Default::default()
            }),
            addr,
            Some(tls::client_config(None).unwrap()),
            "localhost".into(),
        );
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(client);
    });
    let suites = load::load_all(&[
        common::root().join("suites/hemu/hedgw-td-login.yaml"),
        common::root().join("suites/hemu/hedgw-td-commands.yaml"),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        listen: Some(addr),
        no_operator: true,
        // A refused login keeps a TD away for 90 s (or for good).
        skips: vec!["HGW-TD-LIMIT-001".into(), "HGW-TD-DELETED-001".into()],
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    td.abort();
    let verdicts: Vec<_> = r
        .cases
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.status,
                c.failures.first().map(|f| f.message.clone()),
            )
        })
        .collect();
    for (id, status, why) in &verdicts {
        let want = if id.starts_with("HGW-TD-EVENT") {
            Status::Skipped
        } else {
            Status::Passed
        };
        assert_eq!(*status, want, "{id}: {why:?}\n{verdicts:?}");
    }
    assert_eq!(verdicts.len(), 7);
}

/// A HEDGW suite's mistakes are the user's: file:line:col and what was
/// expected, before anything runs.
#[test]
fn suite_mistakes_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::root().join("suites/hemu/requirements.yaml"),
        dir.path().join("requirements.yaml"),
    )
    .unwrap();
    let cases = [
        (
            "expect: { message: DevLoginReq, match: { dev_login_req.nope: { present: true } } }",
            "\"nope\" is not a field of DevLoginReq",
        ),
        ("expect: { message: Hello }", "unknown message \"Hello\""),
        (
            "send: { message: DevAppCmd, fields: { dev_app_cmd.colour: red } }",
            "colour",
        ),
        ("connect: {}", "`connect` is for `role: device`"),
        ("invite: {}", "not one of HEDGW"),
    ];
    for (step, want) in cases {
        let file = dir.path().join("s.yaml");
        std::fs::write(
            &file,
            format!(
                "suite: s\nprotocol: hedgw\nrole: platform\ncases:\n  - id: X-1\n    title: t\n    requirements: [HEDGW-LOGIN-01]\n    steps:\n      - {step}\n"
            ),
        )
        .unwrap();
        let e = load::load_all(&[file]).unwrap_err();
        assert!(e.message.contains(want), "{step}: {}", e.message);
        assert_eq!(e.line, 9, "{step}: {e}");
    }
}

/// A TD that speaks plain TCP to camcert as gateway is refused, and the
/// case says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_td_without_tls_is_refused_with_the_reason() {
    use tokio::io::AsyncWriteExt;

    let port = common::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let td = tokio::spawn(async move {
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                let login = camcert::proto::hedgw::msg::login_req(
                    camcert::proto::hedgw::device::DeviceConfig::default().login,
                );
                let _ = s
                    .write_all(&camcert::proto::hedgw::frame::encode(&login))
                    .await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    });
    let suites = load::load_all(&[common::root().join("suites/hemu/hedgw-td-login.yaml")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        listen: Some(addr),
        filters: vec!["HGW-TD-LOGIN-001".into()],
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    td.abort();
    let c = &r.cases[0];
    assert_ne!(c.status, Status::Passed);
    let m = &c.failures[0].message;
    assert!(m.contains("refused") && m.contains("TLS"), "{m}");
}

/// A decoded message held to a golden file with redactions: a file that
/// differs in one field fails the step with a diff naming that line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_golden_mismatch_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    for f in std::fs::read_dir(root.join("suites/hemu")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("requirements") {
            std::fs::copy(&p, dir.path().join(&name)).unwrap();
        }
    }
    let golden = std::fs::read_to_string(root.join("golden/suites/hedgw-dev-login-req.txt"))
        .unwrap()
        .replace("\"video_width\": 320", "\"video_width\": 321");
    let golden_path = dir.path().join("login.txt");
    std::fs::write(&golden_path, golden).unwrap();
    let suite = std::fs::read_to_string(root.join("suites/hemu/hedgw-td-login.yaml"))
        .unwrap()
        .replace(
            "golden/suites/hedgw-dev-login-req.txt",
            golden_path.to_str().unwrap(),
        );
    let suite_path = dir.path().join("login.yaml");
    std::fs::write(&suite_path, suite).unwrap();
    let suites = load::load_all(&[suite_path]).unwrap();
    let opts = RunOptions {
        report_dir: dir.path().join("reports"),
        filters: vec!["HGW-TD-LOGIN-001".into()],
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let c = &r.cases[0];
    assert_eq!(c.status, Status::Failed, "{:?}", c.failures);
    let f = &c.failures[0];
    assert_eq!(f.check, "golden", "{f:?}");
    assert!(
        f.message.contains("-    \"video_width\": 321"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("+    \"video_width\": 320"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("camcert-secret"), "secrets stay masked");
}
