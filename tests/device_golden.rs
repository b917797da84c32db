//! Golden snapshots (under golden/) of every MANSCDP body the reference
//! camera writes, in GB2312 (its default) and UTF-8, taken from the
//! `Device` state machine with a fixed seed and clock so they are
//! byte-stable. Each snapshot starts with the charset and the body's size
//! in bytes, which differs between the two for the Chinese text.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use camcert::proto::gb28181::device::{channel_id, Device, DeviceConfig};
use camcert::proto::gb28181::manscdp::{
    self, Body, Charset, CmdType, DeviceControl, Message, RecordCmd,
};
use camcert::proto::gb28181::message::{build_request, with_body, RequestParams};
use camcert::proto::sip::SipMessage;
use camcert::proto::{Now, Transport};

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";

fn dev_addr() -> SocketAddr {
    "192.0.2.10:5060".parse().unwrap()
}

fn plat_addr() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}

struct Rig {
    dev: Device,
    now: Now,
    cseq: u32,
    /// Bodies of the requests the device sent, in order.
    bodies: Vec<Vec<u8>>,
}

impl Rig {
    fn new(charset: Charset) -> Rig {
        let mut c = DeviceConfig::new(DEV, PLAT, "12345678", dev_addr(), plat_addr());
        c.seed = 11;
        c.charset = charset;
        c.catalog_items = 2;
        c.alarm_inputs = 1;
        c.apply_option("faulty_subdevices", "2").unwrap();
        let now = Now {
            mono: Instant::now(),
            wall: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
                .unwrap()
                .and_hms_milli_opt(10, 23, 3, 456)
                .unwrap(),
        };
        let mut r = Rig {
            dev: Device::new(c),
            now,
            cseq: 0,
            bodies: Vec::new(),
        };
        r.dev.start(r.now);
        r.pump();
        r
    }

    /// Answer everything the device sends with 200; keep request bodies.
    fn pump(&mut self) {
        while let Some(t) = self.dev.poll_transmit() {
            let m = SipMessage::parse(&t.bytes).unwrap().message;
            if !m.is_request() {
                continue;
            }
            if !m.body.is_empty() {
                self.bodies.push(m.body.clone());
            }
            let mut r = camcert::proto::sip::response_to(&m, 200, Some("golden"));
            if m.method() == Some("REGISTER") {
                r.headers.push("Expires", "3600");
            }
            self.dev
                .handle_message_from(self.now, plat_addr(), &r.with_content_length());
        }
        while self.dev.poll_event().is_some() {}
    }

    fn send(&mut self, method: &str, headers: &[(&str, &str)], body: &Message) {
        self.cseq += 1;
        let mut m = build_request(&RequestParams {
            method,
            from_id: PLAT,
            to_id: DEV,
            domain: "3402000000",
            local: plat_addr(),
            remote: dev_addr(),
            transport: Transport::Udp,
            call_id: "golden-call",
            from_tag: "golden-from",
            to_tag: None,
            cseq: self.cseq,
            branch: &format!("z9hG4bKgolden{}", self.cseq),
            user_agent: "golden platform",
        });
        for (k, v) in headers {
            m.headers.set(k, *v);
        }
        let m = with_body(m, manscdp::CONTENT_TYPE, body.encode(Charset::Utf8));
        self.dev.handle_message_from(self.now, plat_addr(), &m);
        self.pump();
    }

    fn trigger(&mut self, action: &str, args: &[(&str, &str)]) {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.dev.trigger(self.now, action, &args).unwrap();
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
        self.dev.handle_timeout(self.now);
        self.pump();
    }

    /// The last body the device wrote.
    fn last(&self) -> Vec<u8> {
        self.bodies.last().cloned().expect("a body")
    }
}

/// Every MANSCDP body, named, produced by one scripted session.
fn session(charset: Charset) -> Vec<(&'static str, Vec<u8>)> {
    let mut r = Rig::new(charset);
    let mut out = Vec::new();
    r.advance(Duration::from_secs(60));
    out.push(("keepalive", r.last()));
    r.trigger("subdevice-recover", &[("channel", "2")]);
    out.push(("keepalive-ok", r.last()));

    r.send("MESSAGE", &[], &Message::query(CmdType::Catalog, 1, DEV));
    out.push(("catalog-response", r.last()));
    r.send("MESSAGE", &[], &Message::query(CmdType::DeviceInfo, 2, DEV));
    out.push(("deviceinfo-response", r.last()));
    r.send(
        "MESSAGE",
        &[],
        &Message::query(CmdType::DeviceStatus, 3, DEV),
    );
    out.push(("devicestatus-response", r.last()));
    let mut q = Message::query(CmdType::RecordInfo, 4, channel_id(DEV, 1));
    if let Body::RecordInfoQuery(rq) = &mut q.body {
        rq.start_time = Some("2026-11-22T08:00:00".into());
        rq.end_time = Some("2026-11-22T09:30:00".into());
    }
    r.send("MESSAGE", &[], &q);
    out.push(("recordinfo-response", r.last()));
    let mut q = Message::query(CmdType::ConfigDownload, 5, DEV);
    if let Body::ConfigDownloadQuery(c) = &mut q.body {
        c.config_type = Some("BasicParam".into());
    }
    r.send("MESSAGE", &[], &q);
    out.push(("configdownload-response", r.last()));
    r.send(
        "MESSAGE",
        &[],
        &Message::query(CmdType::PresetQuery, 6, DEV),
    );
    out.push(("presetquery-response", r.last()));

    let rec = DeviceControl {
        record_cmd: Some(RecordCmd::Record),
        ..DeviceControl::default()
    };
    r.send(
        "MESSAGE",
        &[],
        &Message::new(7, DEV, Body::DeviceControl(rec)),
    );
    out.push(("devicecontrol-response", r.last()));
    let snap = manscdp::DeviceConfig {
        snap_shot_config: Some(manscdp::SnapShotConfig {
            snap_num: Some(2),
            interval: Some(1),
            upload_url: Some("http://192.0.2.1/upload".into()),
            session_id: Some("golden-session-0123456789abcdef0123".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    r.send(
        "MESSAGE",
        &[],
        &Message::new(8, DEV, Body::DeviceConfig(snap)),
    );
    out.push(("deviceconfig-response", r.last()));
    r.advance(Duration::from_secs(2));
    out.push(("uploadsnapshotfinished", r.last()));

    r.send("MESSAGE", &[], &Message::broadcast(9, PLAT, DEV));
    out.push(("broadcast-response", r.last()));

    r.send(
        "SUBSCRIBE",
        &[("Event", "Catalog"), ("Expires", "3600")],
        &Message::query(CmdType::Catalog, 10, DEV),
    );
    r.trigger("catalog-change", &[("event", "ADD")]);
    out.push(("catalog-notify", r.last()));
    r.trigger("catalog-change", &[("event", "OFF"), ("channel", "1")]);
    out.push(("catalog-notify-off", r.last()));

    r.trigger("alarm", &[("priority", "1"), ("method", "5")]);
    out.push(("alarm-notify", r.last()));
    r.trigger("media-status", &[]);
    out.push(("mediastatus-notify", r.last()));
    out
}

fn shown(body: &[u8], charset: Charset) -> String {
    let text = match charset {
        Charset::Utf8 => String::from_utf8(body.to_vec()).unwrap(),
        _ => encoding_rs::GB18030.decode(body).0.into_owned(),
    };
    format!("charset: {}, {} bytes\n{text}", charset.label(), body.len())
}

#[test]
fn every_device_body_in_both_charsets() {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    for (charset, suffix) in [(Charset::Gb2312, "gb2312"), (Charset::Utf8, "utf8")] {
        let bodies = session(charset);
        assert_eq!(bodies.len(), 16);
        for (name, body) in &bodies {
            let d = Message::decode(body).unwrap();
            assert_eq!(d.charset, charset, "{name}");
            assert!(d.errors().next().is_none(), "{name}: {:?}", d.findings);
            s.bind(|| {
                insta::assert_snapshot!(
                    format!("manscdp-device-{name}-{suffix}"),
                    shown(body, charset)
                );
            });
        }
    }
}
