//! Golden snapshots (golden/hedgw/) of every message the reference HEDGW
//! peers build: the frame's bytes and the decoded view. The two peers run
//! wired together in virtual time from a fixed clock, so the bytes are
//! stable.

use std::time::{Duration, Instant};

use camcert::proto::hedgw::device::{Device, DeviceConfig};
use camcert::proto::hedgw::gateway::{Gateway, GatewayConfig};
use camcert::proto::hedgw::{frame, msg, wire, DevAppCmd, HedgwMessage};
use camcert::proto::Now;

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc(),
    }
}

/// Frames each side sent, in order.
#[derive(Default)]
struct Wire {
    from_device: Vec<Vec<u8>>,
    from_gateway: Vec<Vec<u8>>,
}

fn pump(now: Now, gw: &mut Gateway, dev: &mut Device, w: &mut Wire) {
    loop {
        let mut moved = false;
        while let Some(b) = dev.poll_transmit() {
            gw.handle_input(now, &b);
            w.from_device.push(b);
            moved = true;
        }
        while let Some(b) = gw.poll_transmit() {
            dev.handle_input(now, &b);
            w.from_gateway.push(b);
            moved = true;
        }
        while gw.poll_event().is_some() {}
        while dev.poll_event().is_some() {}
        if !moved {
            break;
        }
    }
}

fn shown(framed: &[u8]) -> String {
    let payload = &framed[4..];
    let d = wire::decode(payload);
    assert!(
        d.findings.is_empty(),
        "the reference peers build clean messages: {:?}",
        d.findings
    );
    let hex = hex::encode(&framed[..framed.len().min(96)]);
    let more = if framed.len() > 96 {
        format!(" … ({} bytes)", framed.len())
    } else {
        String::new()
    };
    format!(
        "{}\nframe: {hex}{more}\n{}",
        d.summary(),
        serde_json::to_string_pretty(&d.view).unwrap()
    )
}

fn snap(name: &str, framed: &[u8]) {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden/hedgw");
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| insta::assert_snapshot!(name, shown(framed)));
}

fn type_of(framed: &[u8]) -> String {
    wire::decode(&framed[4..]).summary()
}

fn app(gw: &mut Gateway, request: u32, sub: Option<i64>) {
    gw.send(msg::app_cmd(DevAppCmd {
        r#type: 33,
        src_device_id: "app-1".into(),
        msg: Some(msg::app_msg(394728981, request, sub, serde_json::json!({}))),
        ..Default::default()
    }));
}

#[test]
fn reference_peer_messages() {
    let mut now = t0();
    let mut gw = Gateway::new(GatewayConfig {
        ping_pong_span: 10,
        ..Default::default()
    });
    let mut dev = Device::new(DeviceConfig {
        video: Some(
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/captures/sample-h264-320x240-25fps.h264"
            ))
            .unwrap(),
        ),
        ..Default::default()
    });
    let mut w = Wire::default();
    dev.start(now);
    pump(now, &mut gw, &mut dev, &mut w);
    snap("device-dev-login-req", &w.from_device[0]);
    snap("gateway-dev-login-resp-ok", &w.from_gateway[0]);
    // The first picture: SPS/PPS, then the key frame; then a P frame.
    dev.handle_timeout(now);
    now = now.after(Duration::from_millis(40));
    dev.handle_timeout(now);
    pump(now, &mut gw, &mut dev, &mut w);
    snap("device-media-sps-pps", &w.from_device[1]);
    snap("device-media-key-frame", &w.from_device[2]);
    snap("device-media-frame", &w.from_device[3]);
    // Heartbeat.
    let before = w.from_device.len();
    now = now.after(Duration::from_secs(10));
    gw.handle_timeout(now);
    dev.handle_timeout(now);
    pump(now, &mut gw, &mut dev, &mut w);
    let ping = w.from_device[before..]
        .iter()
        .find(|f| type_of(f).starts_with("PING"))
        .expect("a PING")
        .clone();
    snap("device-ping", &ping);
    let pong = w
        .from_gateway
        .iter()
        .find(|f| type_of(f).starts_with("PONG"))
        .expect("a PONG")
        .clone();
    snap("gateway-pong", &pong);
    // Event, replies.
    dev.raise_event(now, 1, 1, None);
    for (name, req, sub) in [
        ("device-reply-wifi-list", 1792, Some(16)),
        ("device-reply-sd-card", 1792, Some(85)),
        ("device-reply-ptz-position", 1792, Some(81)),
        ("device-reply-wifi-set", 1793, Some(17)),
        ("device-upgrade-progress", 4097, None),
    ] {
        let before = w.from_device.len();
        app(&mut gw, req, sub);
        pump(now, &mut gw, &mut dev, &mut w);
        let reply = w.from_device[before..]
            .iter()
            .find(|f| type_of(f).starts_with("DevIpCamCmd"))
            .unwrap_or_else(|| panic!("{name}: a reply"))
            .clone();
        snap(name, &reply);
    }
    let event = w
        .from_device
        .iter()
        .find(|f| type_of(f).starts_with("DevEventCmd"))
        .expect("an event")
        .clone();
    snap("device-event-motion", &event);
    let cmd = w
        .from_gateway
        .iter()
        .find(|f| type_of(f).starts_with("DevAppCmd"))
        .expect("an app command")
        .clone();
    snap("gateway-app-cmd-query", &cmd);
    let _ = HedgwMessage::default();
}

#[test]
fn audio_thumbnails_and_notices() {
    let mut now = t0();
    let mut gw = Gateway::new(GatewayConfig::default());
    let mut dev = Device::new(DeviceConfig {
        video: Some(
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/captures/sample-h264-320x240-25fps.h264"
            ))
            .unwrap(),
        ),
        audio: true,
        ..Default::default()
    });
    let mut w = Wire::default();
    dev.start(now);
    pump(now, &mut gw, &mut dev, &mut w);
    dev.handle_timeout(now);
    pump(now, &mut gw, &mut dev, &mut w);
    let audio = w
        .from_device
        .iter()
        .find(|f| type_of(f).contains("package_type=1"))
        .expect("an audio package")
        .clone();
    snap("device-media-audio", &audio);
    gw.send(msg::server_cmd(camcert::proto::hedgw::DevServerCmd {
        r#type: 9,
        thumbnail_span: Some(60),
        thumbnail_width: Some(640),
        thumbnail_height: Some(360),
        ..Default::default()
    }));
    pump(now, &mut gw, &mut dev, &mut w);
    snap(
        "gateway-server-cmd-thumbnails",
        w.from_gateway.last().unwrap(),
    );
    now = now.after(Duration::from_millis(1));
    dev.handle_timeout(now);
    pump(now, &mut gw, &mut dev, &mut w);
    let thumb = w
        .from_device
        .iter()
        .find(|f| type_of(f).contains("package_type=5"))
        .expect("a thumbnail")
        .clone();
    snap("device-media-thumbnail", &thumb);
    let before = w.from_device.len();
    dev.report_resolution("1280x720".into());
    pump(now, &mut gw, &mut dev, &mut w);
    snap("device-resolution-notice", &w.from_device[before]);
}

#[test]
fn refusals() {
    for (name, result) in [
        ("gateway-dev-login-resp-2008", msg::result::LIMITED),
        ("gateway-dev-login-resp-2026", msg::result::DELETED),
    ] {
        let now = t0();
        let mut gw = Gateway::new(GatewayConfig {
            login_result: result,
            ..Default::default()
        });
        let mut dev = Device::new(DeviceConfig::default());
        let mut w = Wire::default();
        dev.start(now);
        pump(now, &mut gw, &mut dev, &mut w);
        snap(name, &w.from_gateway[0]);
    }
    let now = t0();
    let mut gw = Gateway::new(GatewayConfig {
        access_secret: Some("other".into()),
        ..Default::default()
    });
    let mut dev = Device::new(DeviceConfig::default());
    let mut w = Wire::default();
    dev.start(now);
    pump(now, &mut gw, &mut dev, &mut w);
    snap("gateway-dev-login-resp-2001", &w.from_gateway[0]);
    assert_eq!(frame::encode(&msg::ping(0)).len(), 10);
}
