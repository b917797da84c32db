//! Golden snapshots (under golden/) of every MANSCDP body the reference
//! platform writes: its queries and controls, subscription queries, the
//! alarm Response, and as lower platform its keepalive, shared catalog
//! pages, status notification and answers about itself, in GB2312 (the
//! default) and UTF-8. Fixed seeds and a fixed clock make them byte-stable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use camcert::proto::gb28181::device::{Device, DeviceConfig};
use camcert::proto::gb28181::manscdp::{self, Body, Charset, Message};
use camcert::proto::gb28181::message::{build_request, with_body, RequestParams};
use camcert::proto::gb28181::platform::{Platform, PlatformConfig, UpstreamConfig};
use camcert::proto::sip::{self, SipMessage};
use camcert::proto::{Now, Transport};

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";
const UPPER: &str = "34010000002000000001";

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_milli_opt(10, 23, 3, 456)
            .unwrap(),
    }
}

fn dev_addr() -> SocketAddr {
    "192.0.2.10:5060".parse().unwrap()
}
fn plat_addr() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}
fn upper_addr() -> SocketAddr {
    "192.0.2.100:5060".parse().unwrap()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// The body as text, headed by its charset and length in bytes.
fn shown(body: &[u8]) -> String {
    let d = Message::decode(body).expect("MANSCDP");
    let errors: Vec<_> = d.errors().collect();
    assert!(errors.is_empty(), "{errors:?}");
    let text = match d.charset {
        Charset::Utf8 => String::from_utf8(body.to_vec()).unwrap(),
        _ => encoding_rs::GB18030.decode(body).0.into_owned(),
    };
    format!(
        "charset: {}, {} bytes\n{text}",
        d.charset.label(),
        body.len()
    )
}

fn platform(charset: Charset, upstream: bool) -> Platform {
    let mut cfg = PlatformConfig::new(PLAT);
    cfg.local = plat_addr();
    cfg.seed = 9;
    cfg.charset = charset;
    for d in [DEV, "34020000001320000002"] {
        cfg.devices.insert(d.into(), "12345678".into());
    }
    if upstream {
        cfg.upstream = Some(UpstreamConfig::new(UPPER, upper_addr(), "cascade-pw"));
    }
    Platform::new(cfg)
}

/// Register DEV to `p` with the reference camera; returns the bodies of
/// what `p` sent elsewhere meanwhile.
fn register(p: &mut Platform, n: Now) -> Vec<Vec<u8>> {
    let mut elsewhere = Vec::new();
    let mut d = DeviceConfig::new(DEV, PLAT, "12345678", dev_addr(), plat_addr());
    d.seed = 7;
    let mut dev = Device::new(d);
    dev.start(n);
    loop {
        let mut moved = false;
        while let Some(t) = dev.poll_transmit() {
            moved = true;
            p.handle_message(n, dev_addr(), &SipMessage::parse(&t.bytes).unwrap().message);
        }
        while let Some(t) = p.poll_transmit() {
            let m = SipMessage::parse(&t.bytes).unwrap().message;
            if t.to == dev_addr() {
                moved = true;
                dev.handle_message(n, &m);
            } else if m.is_request() && !m.body.is_empty() {
                elsewhere.push(m.body);
            }
        }
        if !moved {
            break;
        }
    }
    assert!(dev.is_registered());
    elsewhere
}

/// The MANSCDP bodies of what `p` sends now.
fn bodies(p: &mut Platform) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = p.poll_transmit() {
        let m = SipMessage::parse(&t.bytes).unwrap().message;
        if m.is_request() && !m.body.is_empty() {
            out.push(m.body);
        }
    }
    out
}

fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A MESSAGE from `from_id` at `from` carrying `body`.
fn message(from_id: &str, from: SocketAddr, body: &Message, method: &str) -> SipMessage {
    let m = build_request(&RequestParams {
        method,
        from_id,
        to_id: PLAT,
        domain: "3402000000",
        local: from,
        remote: plat_addr(),
        transport: Transport::Udp,
        call_id: "golden",
        from_tag: "1",
        to_tag: None,
        cseq: 1,
        branch: &format!("z9hG4bK{}", body.sn.unwrap_or(0)),
        user_agent: "golden",
    });
    with_body(m, manscdp::CONTENT_TYPE, body.encode(Charset::Gb2312))
}

fn snapshots_in(charset: Charset) -> Vec<(String, String)> {
    let suffix = match charset {
        Charset::Utf8 => "utf8",
        _ => "gb2312",
    };
    let n = now();
    let mut out = Vec::new();
    let mut p = platform(charset, false);
    register(&mut p, n);
    for (name, action, kv) in [
        ("query-catalog", "query-catalog", vec![]),
        ("query-deviceinfo", "query-deviceinfo", vec![]),
        ("query-devicestatus", "query-devicestatus", vec![]),
        (
            "query-recordinfo",
            "query-recordinfo",
            vec![
                ("start_time", "2026-11-22T00:00:00"),
                ("end_time", "2026-11-22T23:59:59"),
                ("type", "all"),
            ],
        ),
        ("query-config", "query-config", vec![]),
        ("query-preset", "query-preset", vec![]),
        (
            "control-ptz-up",
            "ptz",
            vec![("direction", "up"), ("speed", "250")],
        ),
        ("control-ptz-zoom-in", "ptz", vec![("zoom", "in")]),
        ("control-ptz-stop", "ptz", vec![("direction", "stop")]),
        ("control-teleboot", "teleboot", vec![]),
        ("control-record", "record", vec![("cmd", "start")]),
        ("control-guard", "guard", vec![("cmd", "set")]),
        ("control-alarm-reset", "alarm-reset", vec![]),
        ("control-iframe", "iframe", vec![]),
        ("subscribe-catalog", "subscribe-catalog", vec![]),
        ("subscribe-alarm", "subscribe-alarm", vec![]),
    ] {
        p.trigger(n, action, &args(&kv)).unwrap();
        let b = bodies(&mut p);
        assert_eq!(b.len(), 1, "{name}");
        out.push((format!("manscdp-platform-{name}-{suffix}"), shown(&b[0])));
    }
    // The Response acknowledging an alarm.
    let alarm = Message::new(
        88,
        DEV,
        Body::AlarmNotify(manscdp::AlarmNotify {
            alarm_priority: Some(1),
            alarm_method: Some(5),
            alarm_time: Some("2026-11-22T10:23:03".into()),
            ..Default::default()
        }),
    );
    p.handle_message(n, dev_addr(), &message(DEV, dev_addr(), &alarm, "MESSAGE"));
    let b = bodies(&mut p);
    out.push((
        format!("manscdp-platform-alarm-response-{suffix}"),
        shown(&b[0]),
    ));

    // As lower platform: keepalive, shared catalog, status, answers about itself.
    let mut p = platform(charset, true);
    p.start(n);
    let reg = p.poll_transmit().unwrap();
    let reg = SipMessage::parse(&reg.bytes).unwrap().message;
    let ok = sip::response_to(&reg, 200, Some("up")).with_content_length();
    p.handle_message(n, upper_addr(), &ok);
    let b = bodies(&mut p);
    out.push((
        format!("manscdp-platform-cascade-keepalive-{suffix}"),
        shown(&b[0]),
    ));
    let b = register(&mut p, n);
    out.push((
        format!("manscdp-platform-cascade-status-on-{suffix}"),
        shown(&b[0]),
    ));
    let q = Message::query(manscdp::CmdType::Catalog, 301, PLAT);
    p.handle_message(
        n,
        upper_addr(),
        &message(UPPER, upper_addr(), &q, "MESSAGE"),
    );
    let b = bodies(&mut p);
    assert_eq!(b.len(), 1, "two shared devices, two a page");
    out.push((
        format!("manscdp-platform-cascade-catalog-{suffix}"),
        shown(&b[0]),
    ));
    for (cmd, sn, name) in [
        (manscdp::CmdType::DeviceInfo, 302, "deviceinfo"),
        (manscdp::CmdType::DeviceStatus, 303, "devicestatus"),
    ] {
        let q = Message::query(cmd, sn, PLAT);
        p.handle_message(
            n,
            upper_addr(),
            &message(UPPER, upper_addr(), &q, "MESSAGE"),
        );
        let b = bodies(&mut p);
        out.push((
            format!("manscdp-platform-cascade-{name}-{suffix}"),
            shown(&b[0]),
        ));
    }
    out
}

#[test]
fn platform_bodies_gb2312() {
    settings().bind(|| {
        for (name, text) in snapshots_in(Charset::Gb2312) {
            insta::assert_snapshot!(name, text);
        }
    });
}

#[test]
fn platform_bodies_utf8() {
    settings().bind(|| {
        for (name, text) in snapshots_in(Charset::Utf8) {
            insta::assert_snapshot!(name, text);
        }
    });
}

/// Paging: with a page size of 1 the shared catalog spans one message per
/// device, each with the full SumNum.
#[test]
fn cascade_catalog_pages() {
    let n = now();
    let mut p = platform(Charset::Gb2312, true);
    p.start(n);
    let reg = SipMessage::parse(&p.poll_transmit().unwrap().bytes)
        .unwrap()
        .message;
    p.handle_message(
        n,
        upper_addr(),
        &sip::response_to(&reg, 200, Some("up")).with_content_length(),
    );
    bodies(&mut p);
    let mut cfg_p = {
        let mut cfg = PlatformConfig::new(PLAT);
        cfg.local = plat_addr();
        cfg.catalog_page_size = 1;
        for d in [DEV, "34020000001320000002", "34020000001320000003"] {
            cfg.devices.insert(d.into(), "x".into());
        }
        cfg.upstream = Some(UpstreamConfig::new(UPPER, upper_addr(), "cascade-pw"));
        Platform::new(cfg)
    };
    cfg_p.start(n);
    let reg = SipMessage::parse(&cfg_p.poll_transmit().unwrap().bytes)
        .unwrap()
        .message;
    cfg_p.handle_message(
        n,
        upper_addr(),
        &sip::response_to(&reg, 200, Some("up")).with_content_length(),
    );
    bodies(&mut cfg_p);
    let q = Message::query(manscdp::CmdType::Catalog, 5, PLAT);
    cfg_p.handle_message(
        n,
        upper_addr(),
        &message(UPPER, upper_addr(), &q, "MESSAGE"),
    );
    let pages: Vec<Message> = bodies(&mut cfg_p)
        .iter()
        .map(|b| Message::decode(b).unwrap().message)
        .collect();
    assert_eq!(pages.len(), 3);
    let mut c = manscdp::CatalogCollector::for_query(&q);
    for pg in &pages {
        assert_eq!(pg.get("SumNum").as_deref(), Some("3"));
        assert_eq!(pg.get("DeviceList@Num").as_deref(), Some("1"));
        c.push(pg);
    }
    assert!(c.is_complete());
    assert!(c.findings().is_empty(), "{:?}", c.findings());
}
