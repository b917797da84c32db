//! Interop with real SIP implementations from Debian: Kamailio as a
//! digest-authenticating registrar for camcert's device, and SIPp as a
//! registering UA against camcert's platform. `ci/install-deps.sh` installs
//! both; with `CAMCERT_INTEROP=1` (as `ci/test.sh` sets) a missing binary is
//! a failure, otherwise the test says it skipped.

mod common;
use common::{available, free_port, start_kamailio};

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use camcert::peers;
use camcert::proto::gb28181::device::{DeviceConfig, DeviceEvent};
use camcert::proto::gb28181::platform::{PlatformConfig, PlatformEvent};
use camcert::proto::Transport;
use camcert::transport::PeerAddr;
use common::root;

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";

async fn register_against(port: u16, transport: Transport, password: &str) -> Vec<DeviceEvent> {
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cfg = DeviceConfig::new(DEV, PLAT, password, "127.0.0.1:0".parse().unwrap(), server);
    cfg.transport = transport;
    let mut h = peers::start_camera(cfg, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut events = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        let done = !matches!(e, DeviceEvent::BadMessage { .. });
        events.push(e.clone());
        if done {
            break;
        }
    }
    if matches!(events.last(), Some(DeviceEvent::Registered { .. })) {
        h.command(|d, now| d.unregister(now)).await;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
            events.push(e.clone());
            if matches!(e, DeviceEvent::Unregistered) {
                break;
            }
        }
    }
    let _ = h.stop().await;
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camcert_device_registers_with_kamailio_over_udp_and_tcp() {
    if !available("kamailio") {
        return;
    }
    let k = start_kamailio("kamailio-pw-1");
    for t in [Transport::Udp, Transport::Tcp] {
        let ev = register_against(k.port, t, "kamailio-pw-1").await;
        assert!(
            matches!(
                ev.first(),
                Some(DeviceEvent::Registered { expires: 3600, .. })
            ),
            "{t}: {ev:?}"
        );
        assert!(
            matches!(ev.last(), Some(DeviceEvent::Unregistered)),
            "{t}: {ev:?}"
        );
        let ev = register_against(k.port, t, "not-the-password").await;
        assert!(
            matches!(ev.first(), Some(DeviceEvent::Rejected { status: 403 })),
            "{t}: {ev:?}"
        );
    }
}

fn sipp(port: u16, password: &str) -> std::process::Output {
    let local = free_port();
    Command::new("sipp")
        .arg("-sf")
        .arg(root().join("ci/interop/sipp-register.xml"))
        .args([
            "-m",
            "1",
            "-au",
            DEV,
            "-ap",
            password,
            "-s",
            PLAT,
            "-key",
            "device_id",
            DEV,
            "-key",
            "domain",
            "3402000000",
        ])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &local.to_string(),
            &format!("127.0.0.1:{port}"),
        ])
        .args(["-nostdin", "-timeout", "10s", "-timeout_error"])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("sipp runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_against_camcert_platform() {
    if !available("sipp") {
        return;
    }
    let mut cfg = PlatformConfig::new(PLAT);
    cfg.devices.insert(DEV.into(), "sipp-pw-1".into());
    let listen = PeerAddr {
        transport: Transport::Udp,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let mut h = peers::start_platform(cfg, listen).await.unwrap();
    let port = h.addr.port();
    let out = tokio::task::spawn_blocking(move || sipp(port, "sipp-pw-1"))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut seen = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen
        .iter()
        .any(|e| matches!(e, PlatformEvent::Unregistered { .. }))
    {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(e)) => seen.push(e),
            _ => break,
        }
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, PlatformEvent::Registered { device_id, .. } if device_id == DEV)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, PlatformEvent::Unregistered { .. })),
        "{seen:?}"
    );

    let out = tokio::task::spawn_blocking(move || sipp(port, "wrong-pw"))
        .await
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    // The driver reports the event once the 403 is on its way; wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut rejected = false;
    while !rejected {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(e)) => rejected = matches!(e, PlatformEvent::Rejected { status: 403, .. }),
            _ => break,
        }
    }
    assert!(rejected);
    let _ = h.stop().await;
}

/// MESSAGE requests cross a real SIP proxy unchanged: the reference
/// platform registers itself at Kamailio (as a lower platform would to an
/// upper one), the reference camera registers with that platform *through*
/// Kamailio and sends its keepalives the same way; every MANSCDP MESSAGE
/// the platform receives carries exactly the bytes the camera sent (body,
/// Content-Type, From, To, Call-ID, CSeq), and the platform's 200 comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manscdp_messages_cross_kamailio_unchanged() {
    if !available("kamailio") {
        return;
    }
    use camcert::proto::sip::SipMessage;
    let k = start_kamailio("proxy-pw-1");
    let kaddr = SocketAddr::from(([127, 0, 0, 1], k.port));

    // The platform: provisioned with the camera, registered upward at Kamailio.
    let mut pc = PlatformConfig::new(PLAT);
    pc.devices.insert(DEV.into(), "camera-pw-1".into());
    pc.apply_option("upstream", &format!("34020000002000000099@{kaddr}"))
        .unwrap();
    pc.apply_option("upstream_password", "proxy-pw-1").unwrap();
    let listen = PeerAddr {
        transport: Transport::Udp,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let mut plat = peers::start_platform(pc, listen).await.unwrap();
    plat.command(|p, now| p.start(now)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, plat.events.recv()).await {
            Ok(Some(PlatformEvent::UpstreamRegistered { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("the platform did not register at Kamailio: {other:?}"),
        }
    }

    // The camera: registers to the platform's ID at Kamailio's address.
    let mut dc = DeviceConfig::new(
        DEV,
        PLAT,
        "camera-pw-1",
        "127.0.0.1:0".parse().unwrap(),
        kaddr,
    );
    dc.apply_option("keepalive_interval", "1").unwrap();
    let mut cam = peers::start_camera(dc, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut registered = false;
    while !registered {
        match tokio::time::timeout_at(deadline, plat.events.recv()).await {
            Ok(Some(PlatformEvent::Registered { device_id, .. })) => registered = device_id == DEV,
            Ok(Some(_)) => {}
            other => panic!("the camera did not register through Kamailio: {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sent = cam.tap.packets();
    let got = plat.tap.packets();
    while cam.events.try_recv().is_ok() {}
    let _ = cam.stop().await;
    let _ = plat.stop().await;

    let messages =
        |pkts: &[camcert::transport::Packet], dir_src: Option<SocketAddr>| -> Vec<SipMessage> {
            pkts.iter()
                .filter(|p| dir_src.is_none_or(|s| p.src == s))
                .filter_map(|p| SipMessage::parse(&p.bytes).ok().map(|x| x.message))
                .filter(|m| m.method() == Some("MESSAGE"))
                .collect()
        };
    let cam_sent = messages(&sent, None);
    let plat_got = messages(&got, Some(kaddr));
    assert!(!cam_sent.is_empty(), "the camera sent no keepalive");
    assert!(!plat_got.is_empty(), "no MESSAGE reached the platform");
    for m in &plat_got {
        let orig = cam_sent
            .iter()
            .find(|o| o.call_id() == m.call_id() && o.headers.get("CSeq") == m.headers.get("CSeq"))
            .expect("every MESSAGE at the platform was sent by the camera");
        assert_eq!(m.body, orig.body, "body changed in transit");
        for h in [
            "Content-Type",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Content-Length",
        ] {
            assert_eq!(
                m.headers.get(h),
                orig.headers.get(h),
                "{h} changed in transit"
            );
        }
        // Kamailio added its own Via on top of the camera's.
        assert_eq!(m.headers.get_all("Via").count(), 2);
    }
    // The platform's 200s made it back to the camera.
    let oks = sent
        .iter()
        .filter_map(|p| SipMessage::parse(&p.bytes).ok().map(|x| x.message))
        .filter(|m| m.status() == Some(200) && m.cseq().is_some_and(|c| c.method == "MESSAGE"))
        .count();
    assert!(oks >= 1, "no 200 to a MESSAGE came back through Kamailio");
}
