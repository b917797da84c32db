//! Property tests of the codec and two-party scenarios in virtual time:
//! a reference device wired to a reference gateway, no sockets.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::device::{Device, DeviceConfig, DeviceEvent};
use super::frame::{self, FrameDecoder};
use super::gateway::{Gateway, GatewayConfig, GatewayEvent};
use super::*;
use crate::finding::Finding;
use crate::proto::Now;

fn s() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_:{}\" -]{0,24}"
}

fn login_req() -> impl Strategy<Value = DevLoginReq> {
    (
        (s(), s(), s(), s(), s(), s()),
        (
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            any::<u32>(),
            any::<u32>(),
        ),
        (any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |((a, b, c, d, e, f), (ch, vt, w, h), (at, ak, ac))| DevLoginReq {
                access_key: a,
                access_secret: b,
                user_name: c,
                device_token: d,
                unified_id: e,
                device_mac: f,
                channel_id: ch,
                video_type: vt,
                video_width: w,
                video_height: h,
                audio_type: at,
                audio_khz: ak,
                audio_channel: ac,
            },
        )
}

fn opt_u32() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(any::<u32>())
}

fn message() -> impl Strategy<Value = HedgwMessage> {
    prop_oneof![
        login_req().prop_map(msg::login_req),
        (
            any::<u32>(),
            proptest::option::of(s()),
            (opt_u32(), opt_u32(), opt_u32(), opt_u32(), opt_u32())
        )
            .prop_map(|(result, server_time, (a, b, c, d, e))| msg::login_resp(
                DevLoginResp {
                    result,
                    server_time,
                    device_status: a,
                    ping_pong_span: b,
                    sd_upload_mode: c,
                    person_count_span: d,
                    service_days: e,
                }
            )),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            proptest::option::of(s())
        )
            .prop_map(|(t, st, time, m)| msg::event(DevEventCmd {
                r#type: t,
                status: st,
                ipcam_time: time,
                msg: m
            })),
        (
            any::<u32>(),
            opt_u32(),
            opt_u32(),
            opt_u32(),
            opt_u32(),
            opt_u32()
        )
            .prop_map(|(t, a, b, c, d, e)| msg::server_cmd(DevServerCmd {
                r#type: t,
                device_status: a,
                thumbnail_span: b,
                thumbnail_width: c,
                thumbnail_height: d,
                service_days: e,
            })),
        (
            any::<u32>(),
            s(),
            proptest::option::of(s()),
            (opt_u32(), opt_u32(), proptest::option::of(s()), opt_u32()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
        )
            .prop_map(
                |(t, src, dst, (count, id, m, ds), data)| msg::app_cmd(DevAppCmd {
                    r#type: t,
                    src_device_id: src,
                    dst_device_id: dst,
                    count,
                    id,
                    msg: m,
                    data_size: ds,
                    data,
                })
            ),
        (
            any::<u32>(),
            s(),
            proptest::option::of(s()),
            proptest::option::of(s()),
            opt_u32(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
        )
            .prop_map(|(t, src, dst, m, ds, data)| msg::ipcam_cmd(DevIpCamCmd {
                r#type: t,
                src_device_id: src,
                dst_device_id: dst,
                msg: m,
                data_size: ds,
                data,
            })),
        any::<u32>().prop_map(msg::ping),
        any::<u32>().prop_map(msg::pong),
        (
            (any::<u32>(), any::<u32>()),
            proptest::collection::vec(any::<u8>(), 0..200),
            (any::<u32>(), any::<u32>(), any::<u32>()),
            (proptest::option::of(any::<u64>()), opt_u32())
        )
            .prop_map(|((pt, sync), data, (ds, st, seq), (it, cf))| msg::media(
                TdMediaPackage {
                    package_type: pt,
                    sync,
                    data,
                    data_size: ds,
                    start_time: st,
                    seq_num: seq,
                    ipcam_time: it,
                    control_flag: cf,
                }
            )),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(m in message()) {
        let framed = frame::encode(&m);
        let mut d = FrameDecoder::default();
        d.push(&framed);
        let payload = d.next_frame().unwrap().unwrap();
        let decoded = wire::decode(&payload);
        // Only informational notes on fields outside 附录D may appear.
        prop_assert!(decoded.findings.iter().all(|f| f.code == "hedgw.field-not-in-appendix"),
            "{:?}", decoded.findings);
        prop_assert_eq!(decoded.message, m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let d = wire::decode(&bytes);
        let _ = d.summary();
        let mut f = FrameDecoder::new(256);
        f.push(&bytes);
        while let Ok(Some(p)) = f.next_frame() {
            let _ = wire::decode(&p);
        }
        let _ = f.finish();
    }

    #[test]
    fn damaged_messages_never_panic(m in message(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut b = wire::encode(&m);
        if !b.is_empty() {
            let i = flip.index(b.len());
            b[i] ^= 1 << bit;
            let n = cut.index(b.len() + 1);
            b.truncate(n);
        }
        let _ = wire::decode(&b);
    }

    #[test]
    fn machines_take_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let now = t0();
        let mut g = Gateway::new(GatewayConfig::default());
        g.handle_input(now, &bytes);
        g.handle_timeout(now.after(Duration::from_secs(100)));
        while g.poll_event().is_some() {}
        let mut d = Device::new(DeviceConfig::default());
        d.start(now);
        d.handle_input(now, &bytes);
        d.handle_timeout(now.after(Duration::from_secs(100)));
        while d.poll_event().is_some() {}
    }

    #[test]
    fn json_reading_never_panics(text in ".{0,200}") {
        let j = json::parse(&text, clause::APP_CMD);
        if let Some(v) = j.value {
            let _ = json::lookup(&v, "msgContent.responseParams[0].x");
        }
    }
}

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc(),
    }
}

/// A device and a gateway wired together in virtual time.
pub(crate) struct Pair {
    pub now: Now,
    pub gw: Gateway,
    pub dev: Device,
    pub gw_events: Vec<GatewayEvent>,
    pub dev_events: Vec<DeviceEvent>,
}

impl Pair {
    pub fn new(gcfg: GatewayConfig, dcfg: DeviceConfig) -> Pair {
        let now = t0();
        let mut p = Pair {
            now,
            gw: Gateway::new(gcfg),
            dev: Device::new(dcfg),
            gw_events: vec![],
            dev_events: vec![],
        };
        p.dev.start(now);
        p.pump();
        p
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(b) = self.dev.poll_transmit() {
                self.gw.handle_input(self.now, &b);
                moved = true;
            }
            while let Some(b) = self.gw.poll_transmit() {
                self.dev.handle_input(self.now, &b);
                moved = true;
            }
            self.gw_events
                .extend(std::iter::from_fn(|| self.gw.poll_event()));
            self.dev_events
                .extend(std::iter::from_fn(|| self.dev.poll_event()));
            if !moved {
                break;
            }
        }
    }

    /// Run until `until`, waking each side at its deadlines.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now.mono + d;
        loop {
            let next = [self.gw.poll_timeout(), self.dev.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= end);
            let Some(t) = next else { break };
            let step = t.saturating_duration_since(self.now.mono);
            self.now = self.now.after(step);
            self.gw.handle_timeout(self.now);
            self.dev.handle_timeout(self.now);
            self.pump();
        }
        self.now = self.now.after(end.saturating_duration_since(self.now.mono));
    }

    pub fn gw_findings(&self) -> Vec<&Finding> {
        self.gw_events
            .iter()
            .flat_map(|e| match e {
                GatewayEvent::Finding(f) => vec![f],
                GatewayEvent::Received(d) => d.findings.iter().collect(),
                _ => vec![],
            })
            .collect()
    }

    pub fn dev_findings(&self) -> Vec<&Finding> {
        self.dev_events
            .iter()
            .flat_map(|e| match e {
                DeviceEvent::Finding(f) => vec![f],
                DeviceEvent::Received(d) => d.findings.iter().collect(),
                _ => vec![],
            })
            .collect()
    }
}

fn sample() -> Vec<u8> {
    include_bytes!("../../../captures/sample-h264-320x240-25fps.h264").to_vec()
}

fn with_video() -> DeviceConfig {
    DeviceConfig {
        video: Some(sample()),
        ..Default::default()
    }
}

fn codes(f: &[&Finding]) -> Vec<&'static str> {
    let mut c: Vec<_> = f.iter().map(|f| f.code).collect();
    c.dedup();
    c
}

#[test]
fn login_ping_and_media_in_virtual_time() {
    let mut p = Pair::new(
        GatewayConfig {
            ping_pong_span: 10,
            ..Default::default()
        },
        with_video(),
    );
    assert!(p.gw.is_online() && p.dev.is_online());
    p.run_for(Duration::from_secs(60));
    assert!(p.gw_findings().is_empty(), "{:?}", p.gw_findings());
    assert!(p.dev_findings().is_empty(), "{:?}", p.dev_findings());
    let pings = p
        .gw_events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::Received(d) if d.message_type() == Some(MessageType::Ping)))
        .count();
    assert_eq!(pings, 6, "one PING every 10 s for 60 s");
    let s = &p.gw.media.stats;
    assert_eq!(s.video_frames, 25 * 60 + 1);
    assert!((s.frame_rate.unwrap() - 25.0).abs() < 0.01);
}

#[test]
fn a_silent_device_is_given_up_after_three_spans() {
    let mut dcfg = DeviceConfig::default();
    dcfg.faults.no_ping = true;
    let mut p = Pair::new(
        GatewayConfig {
            ping_pong_span: 10,
            ..Default::default()
        },
        dcfg,
    );
    p.run_for(Duration::from_secs(14));
    assert!(codes(&p.gw_findings()).is_empty());
    p.run_for(Duration::from_secs(2));
    assert_eq!(codes(&p.gw_findings()), ["hedgw.ping-missed"]);
    p.run_for(Duration::from_secs(30));
    assert!(p.gw.is_closed());
}

#[test]
fn a_gateway_without_pong_is_caught_by_the_device() {
    let mut g = GatewayConfig {
        ping_pong_span: 5,
        ..Default::default()
    };
    g.faults.no_pong = true;
    let mut p = Pair::new(g, DeviceConfig::default());
    p.run_for(Duration::from_secs(11));
    assert_eq!(codes(&p.dev_findings()), ["hedgw.ping-missed"]);
    p.run_for(Duration::from_secs(20));
    assert!(p.dev.is_closed());
}

#[test]
fn limited_login_waits_90_seconds_unless_faulty() {
    let g = GatewayConfig {
        login_result: msg::result::LIMITED,
        ..Default::default()
    };
    let mut p = Pair::new(g.clone(), DeviceConfig::default());
    assert!(p
        .dev_events
        .iter()
        .any(|e| matches!(e, DeviceEvent::LoginRefused(2008))));
    p.run_for(Duration::from_secs(89));
    assert!(!p
        .dev_events
        .iter()
        .any(|e| matches!(e, DeviceEvent::RetryLogin)));
    p.run_for(Duration::from_secs(2));
    assert!(p
        .dev_events
        .iter()
        .any(|e| matches!(e, DeviceEvent::RetryLogin)));
    let mut d = DeviceConfig::default();
    d.faults.ignore_limit = true;
    let mut p = Pair::new(g, d);
    p.run_for(Duration::from_secs(1));
    assert!(p
        .dev_events
        .iter()
        .any(|e| matches!(e, DeviceEvent::RetryLogin)));
}

#[test]
fn login_faults_show_on_the_other_side() {
    let mut d = DeviceConfig::default();
    d.faults.missing_device_mac = true;
    let p = Pair::new(GatewayConfig::default(), d);
    let f = p.gw_findings();
    assert_eq!(f[0].code, "hedgw.missing-required");
    assert_eq!(f[0].path(), "dev_login_req.device_mac");
    let mut d = DeviceConfig::default();
    d.faults.bad_channel_id = true;
    let p = Pair::new(GatewayConfig::default(), d);
    assert_eq!(p.gw_findings()[0].path(), "dev_login_req.channel_id");
    for (fault, code) in [
        ("no-ping-pong-span", "hedgw.bad-value"),
        ("unknown-field", "hedgw.unknown-field"),
    ] {
        let mut g = GatewayConfig::default();
        assert!(g.faults.set(fault));
        let p = Pair::new(g, DeviceConfig::default());
        assert_eq!(codes(&p.dev_findings()), [code], "{fault}");
    }
    let mut g = GatewayConfig::default();
    g.faults.refuse_login = true;
    let p = Pair::new(g, DeviceConfig::default());
    assert!(p
        .dev_events
        .iter()
        .any(|e| matches!(e, DeviceEvent::LoginRefused(2001))));
    let mut g = GatewayConfig::default();
    g.faults.no_login_response = true;
    let p = Pair::new(g, DeviceConfig::default());
    assert!(!p.dev.is_online());
}

#[test]
fn app_queries_are_answered_with_the_request_s_codes() {
    let mut p = Pair::new(GatewayConfig::default(), DeviceConfig::default());
    let text = msg::app_msg(
        394728981,
        msg::request::QUERY,
        Some(16),
        serde_json::json!({}),
    );
    p.gw.send(msg::app_cmd(DevAppCmd {
        r#type: 33,
        src_device_id: "app-1".into(),
        msg: Some(text),
        ..Default::default()
    }));
    p.pump();
    let reply = p
        .gw_events
        .iter()
        .find_map(|e| match e {
            GatewayEvent::Received(d) if d.message_type() == Some(MessageType::DevIpCamCmd) => {
                Some(d.clone())
            }
            _ => None,
        })
        .expect("a DevIpCamCmd reply");
    let c = reply.message.dev_ipcam_cmd.unwrap();
    assert_eq!(c.r#type, 2);
    assert_eq!(c.dst_device_id.as_deref(), Some("app-1"));
    let v = json::parse(c.msg.as_deref().unwrap(), clause::IPCAM_CMD)
        .value
        .unwrap();
    assert_eq!(
        json::lookup(&v, "msgContent.responseRequest").as_deref(),
        Some("1792")
    );
    assert_eq!(
        json::lookup(&v, "msgContent.responseSubRequest").as_deref(),
        Some("16")
    );
    assert_eq!(json::lookup(&v, "msgSession").as_deref(), Some("394728981"));
}

#[test]
fn a_device_without_a_plan_streams_only_for_a_client() {
    let mut p = Pair::new(
        GatewayConfig {
            device_status: 2,
            ..Default::default()
        },
        with_video(),
    );
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.gw.media.stats.video_frames, 0);
    p.gw.send(msg::app_cmd(DevAppCmd {
        r#type: 8,
        src_device_id: "app".into(),
        ..Default::default()
    }));
    p.pump();
    p.run_for(Duration::from_secs(2));
    assert!(p.gw.media.stats.video_frames >= 50);
    p.gw.send(msg::app_cmd(DevAppCmd {
        r#type: 9,
        src_device_id: "app".into(),
        ..Default::default()
    }));
    p.pump();
    let before = p.gw.media.stats.video_frames;
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.gw.media.stats.video_frames, before);
}

#[test]
fn every_clause_resolves_into_the_spec() {
    for c in [
        clause::CHANNEL,
        clause::TLS,
        clause::LOGIN,
        clause::PING,
        clause::MEDIA,
        clause::EVENT,
        clause::SERVER_CMD,
        clause::APP_CMD,
        clause::QUERY,
        clause::IPCAM_CMD,
        clause::APPENDIX_D,
        clause::ENCODING,
        clause::TALK,
    ] {
        assert!(crate::finding::resolves(c), "{c}");
    }
}

#[test]
fn the_hemu_catalog_cites_known_sections() {
    let yaml = include_str!("../../../suites/hemu/requirements.yaml");
    let mut n = 0;
    for line in yaml.lines() {
        let Some(c) = line.trim().strip_prefix("clause: ") else {
            continue;
        };
        let c = c.trim_matches('"');
        assert!(crate::finding::resolves(c), "catalog clause {c:?}");
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn talk_audio_is_taken_with_or_without_an_rtp_header() {
    let mut p = Pair::new(GatewayConfig::default(), DeviceConfig::default());
    let talk = |data: Vec<u8>| {
        msg::media(TdMediaPackage {
            package_type: 1,
            sync: 0,
            data_size: data.len() as u32,
            data,
            start_time: 0,
            seq_num: 0,
            ipcam_time: Some(1_700_000_000_000),
            control_flag: None,
        })
    };
    p.gw.send(talk(vec![0xd5; 160]));
    p.pump();
    assert!(p.dev_findings().is_empty(), "{:?}", p.dev_findings());
    let mut rtp = vec![0x80, 0x08, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1];
    rtp.extend_from_slice(&[0xd5; 160]);
    p.gw.send(talk(rtp));
    p.pump();
    assert_eq!(codes(&p.dev_findings()), ["hedgw.talk-rtp-header"]);
    assert_eq!(p.dev.talk_packages, 2);
}
