//! HEDGW over real sockets on loopback: the reference device and the
//! reference gateway over TLS 1.2, and the refusals at the edge.

use std::net::SocketAddr;
use std::time::Duration;

use camcert::peers::hedgw::{self, tls, ServerEvent};
use camcert::proto::hedgw::device::{Device, DeviceConfig, DeviceEvent};
use camcert::proto::hedgw::gateway::{GatewayConfig, GatewayEvent};
use camcert::proto::hedgw::MessageType;

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures/sample-h264-320x240-25fps.h264"
    ))
    .unwrap()
}

async fn gateway(cfg: GatewayConfig) -> (hedgw::GatewayServer, tls::Identity) {
    let id = tls::Identity::self_signed(&["localhost"]).unwrap();
    let server = hedgw::serve_gateway(localhost(), cfg, tls::server_config(&id).unwrap())
        .await
        .unwrap();
    (server, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logs_in_pings_and_streams_over_tls() {
    let (mut server, id) = gateway(GatewayConfig {
        ping_pong_span: 1,
        ..Default::default()
    })
    .await;
    let dev = Device::new(DeviceConfig {
        video: Some(sample()),
        ..Default::default()
    });
    let client = hedgw::run_device(
        dev,
        server.addr,
        Some(tls::client_config(Some(&id.cert)).unwrap()),
        "localhost".into(),
    );
    let mut session = server.next_session(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let dev = client.stop().await.unwrap();
    assert!(
        dev.pictures_sent() >= 40,
        "{} pictures",
        dev.pictures_sent()
    );
    let mut events = Vec::new();
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(500), session.events.recv()).await
    {
        events.push(e);
    }
    let findings: Vec<_> = events
        .iter()
        .flat_map(|e| match e {
            GatewayEvent::Finding(f) => vec![f.clone()],
            GatewayEvent::Received(d) => d.findings.clone(),
            _ => vec![],
        })
        .collect();
    assert!(findings.is_empty(), "{findings:?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, GatewayEvent::LoggedIn(r) if r.device_mac == "02:00:00:00:00:01")));
    let count = |t: MessageType| {
        events
            .iter()
            .filter(|e| matches!(e, GatewayEvent::Received(d) if d.message_type() == Some(t)))
            .count()
    };
    assert!(count(MessageType::Ping) >= 2);
    assert!(count(MessageType::TdMediaPackage) >= 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_and_tls_1_1_are_refused() {
    let (mut server, _id) = gateway(GatewayConfig::default()).await;
    let p = hedgw::probe_plain_tcp(server.addr, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(p.refused, "{}", p.answer);
    let p = hedgw::probe_tls11(server.addr, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(p.refused, "{}", p.answer);
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_secs(2), server.events.recv()).await {
            Ok(Some(ServerEvent::Refused { reason, .. })) => {
                assert!(reason.contains("TLS"), "{reason}")
            }
            _ => panic!("expected a refused connection"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_tcp_fault_answers_plain_tcp() {
    let mut cfg = GatewayConfig::default();
    cfg.faults.set("plain-tcp");
    let (server, _id) = gateway(cfg).await;
    let p = hedgw::probe_plain_tcp(server.addr, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!p.refused, "{}", p.answer);
    assert!(p.answer.contains("DevLoginResp"), "{}", p.answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_refuses_a_huge_frame_and_closes() {
    let (mut server, id) = gateway(GatewayConfig::default()).await;
    let client = hedgw::run_device(
        Device::new(DeviceConfig {
            max_frame: 1024,
            ..Default::default()
        }),
        server.addr,
        Some(tls::client_config(Some(&id.cert)).unwrap()),
        "localhost".into(),
    );
    let session = server.next_session(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 4 GiB announced.
    session
        .command(|g, _| g.send_raw(vec![0xff, 0xff, 0xff, 0xff, 0, 0]))
        .await;
    let mut events = client.events;
    let mut saw = None;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
        if let DeviceEvent::Finding(f) = &e {
            if f.code == "hedgw.frame-too-large" {
                saw = Some(f.clone());
            }
        }
        if matches!(e, DeviceEvent::Closed(_)) {
            break;
        }
    }
    let f = saw.expect("a frame-too-large finding");
    assert!(f.message.contains("4294967295"), "{}", f.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_a_huge_frame_and_closes() {
    let (mut server, id) = gateway(GatewayConfig {
        max_frame: 64 * 1024,
        ..Default::default()
    })
    .await;
    let client = hedgw::run_device(
        Device::new(DeviceConfig::default()),
        server.addr,
        Some(tls::client_config(Some(&id.cert)).unwrap()),
        "localhost".into(),
    );
    let mut session = server.next_session(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 4 GiB announced, then a valid PING that must never be read.
    client
        .command(|d, _| {
            let mut b = vec![0xff, 0xff, 0xff, 0xff];
            b.extend_from_slice(&camcert::proto::hedgw::frame::encode(
                &camcert::proto::hedgw::msg::ping(0),
            ));
            d.send_raw(b)
        })
        .await;
    let mut too_large = false;
    let mut pings = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(3), session.events.recv()).await {
            Ok(Some(GatewayEvent::Finding(f))) if f.code == "hedgw.frame-too-large" => {
                too_large = true
            }
            Ok(Some(GatewayEvent::Received(d))) if d.message_type() == Some(MessageType::Ping) => {
                pings += 1
            }
            Ok(Some(GatewayEvent::Closed(_))) => break,
            Ok(Some(_)) => {}
            _ => panic!("the gateway did not close the connection"),
        }
    }
    assert!(too_large);
    assert_eq!(pings, 0, "nothing after the bad length is read as a frame");
    client.stop().await;
}
