//! Properties of the device: whatever arrives it never panics and answers
//! every request exactly once; Catalog and RecordInfo answers always add
//! up; synthetic recordings always fall inside the window asked for.

use std::net::SocketAddr;
use std::time::Instant;

use proptest::prelude::*;

use super::model::{parse_xml_time, recordings};
use super::{Device, DeviceConfig, DeviceEvent};
use crate::proto::gb28181::manscdp::{
    self, Body, CatalogCollector, CmdType, Message, Progress, RecordInfoCollector,
};
use crate::proto::gb28181::message::{build_request, with_body, RequestParams};
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transport};

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap(),
    }
}

fn request(method: &str, cseq: u32, body: Vec<u8>) -> SipMessage {
    let m = build_request(&RequestParams {
        method,
        from_id: PLAT,
        to_id: DEV,
        domain: "3402000000",
        local: addr(5060),
        remote: addr(5070),
        transport: Transport::Udp,
        call_id: "prop-call",
        from_tag: "prop-tag",
        to_tag: None,
        cseq,
        branch: &format!("z9hG4bKprop{cseq}"),
        user_agent: "prop",
    });
    with_body(m, manscdp::CONTENT_TYPE, body)
}

/// Everything the device sent, parsed.
fn drain(d: &mut Device) -> Vec<SipMessage> {
    let mut out = Vec::new();
    while let Some(t) = d.poll_transmit() {
        out.push(
            SipMessage::parse(&t.bytes)
                .expect("the device sends SIP")
                .message,
        );
    }
    out
}

fn device(cfg: DeviceConfig) -> Device {
    Device::new(cfg)
}

fn cfg() -> DeviceConfig {
    DeviceConfig::new(DEV, PLAT, "x", addr(5070), addr(5060))
}

fn xmlish() -> impl Strategy<Value = Vec<u8>> {
    let roots = prop::sample::select(vec!["Query", "Control", "Notify", "Response", "Bogus"]);
    let cmds = prop::sample::select(vec![
        "Catalog",
        "DeviceInfo",
        "DeviceStatus",
        "RecordInfo",
        "ConfigDownload",
        "PresetQuery",
        "DeviceControl",
        "DeviceConfig",
        "Alarm",
        "Broadcast",
        "Keepalive",
        "Nope",
    ]);
    let ids = prop::sample::select(vec![
        DEV,
        "34020000001310010001",
        "34020000001340010001",
        "34020000001329999999",
        "",
        "x",
    ]);
    let extra = prop::sample::select(vec![
        "",
        "<PTZCmd>A50F01810009003F</PTZCmd>",
        "<PTZCmd>A50F0181000900FF</PTZCmd>",
        "<PTZCmd>zz</PTZCmd>",
        "<TeleBoot>Boot</TeleBoot>",
        "<RecordCmd>Bogus</RecordCmd>",
        "<GuardCmd>ResetGuard</GuardCmd>",
        "<StartTime>2026-01-01T00:00:00</StartTime><EndTime>2026-01-03T00:00:00</EndTime>",
        "<StartTime>garbage</StartTime><EndTime>2026-01-01T00:00:00</EndTime>",
        "<ConfigType>BasicParam/SnapShotConfig</ConfigType>",
        "<BasicParam><HeartBeatInterval>0</HeartBeatInterval></BasicParam>",
        "<SnapShotConfig><SnapNum>99</SnapNum></SnapShotConfig>",
        "<SourceID>1</SourceID><TargetID>34020000001320000001</TargetID>",
        "<SN>oops</SN>",
    ]);
    (roots, cmds, 0u64..u64::MAX, ids, extra).prop_map(|(r, c, sn, id, x)| {
        format!(
            "<?xml version=\"1.0\"?><{r}><CmdType>{c}</CmdType><SN>{sn}</SN><DeviceID>{id}</DeviceID>{x}</{r}>"
        )
        .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any body, structured or not: one final response per request, no panic.
    #[test]
    fn every_message_gets_exactly_one_answer(
        bodies in prop::collection::vec(
            prop_oneof![xmlish(), prop::collection::vec(any::<u8>(), 0..200)],
            1..8,
        ),
    ) {
        let mut d = device(cfg());
        let n = now();
        for (i, b) in bodies.into_iter().enumerate() {
            let cseq = i as u32 + 1;
            d.handle_message_from(n, addr(5060), &request("MESSAGE", cseq, b));
            let out = drain(&mut d);
            let answers: Vec<_> = out
                .iter()
                .filter(|m| !m.is_request() && m.cseq().map(|c| c.seq) == Some(cseq))
                .collect();
            prop_assert_eq!(answers.len(), 1);
            // Everything the device writes decodes as MANSCDP.
            for m in out.iter().filter(|m| m.is_request() && !m.body.is_empty()) {
                prop_assert!(Message::decode(&m.body).is_ok());
            }
            d.handle_timeout(n);
            let mut rebooting = false;
            while let Some(e) = d.poll_event() {
                rebooting |= matches!(e, DeviceEvent::Rebooting);
            }
            // A TeleBoot restarts the camera: while it boots it answers nothing.
            if rebooting {
                break;
            }
        }
    }

    /// The pages of a Catalog answer carry every channel exactly once.
    #[test]
    fn catalog_pages_add_up(items in 0u32..60, page in 1usize..20, sn in 1u64..1_000_000) {
        let mut c = cfg();
        c.catalog_items = items;
        c.catalog_page_size = page;
        let mut d = device(c);
        let q = Message::query(CmdType::Catalog, sn, DEV);
        d.handle_message_from(now(), addr(5060), &request("MESSAGE", 1, q.encode(manscdp::Charset::Utf8)));
        let pages: Vec<Message> = drain(&mut d)
            .into_iter()
            .filter(|m| m.is_request())
            .map(|m| Message::parse(&m.body).unwrap())
            .collect();
        let want = (items as usize).div_ceil(page).max(1);
        prop_assert_eq!(pages.len(), want);
        let mut col = CatalogCollector::for_query(&q);
        let mut last = Progress::Ignored;
        for p in &pages {
            last = col.push(p);
        }
        prop_assert_eq!(last, Progress::Complete { received: items as usize });
        prop_assert!(col.findings().is_empty());
    }

    /// RecordInfo answers add up too, and stay inside the window.
    #[test]
    fn record_info_answers_add_up(
        start_min in 0i64..(3 * 24 * 60),
        len_min in 0i64..(2 * 24 * 60),
        interval in 60u64..20_000,
        duration in 1u64..20_000,
        page in 1usize..9,
    ) {
        let mut c = cfg();
        c.record_interval = std::time::Duration::from_secs(interval);
        c.record_duration = std::time::Duration::from_secs(duration);
        c.record_page_size = page;
        let base = parse_xml_time("2026-01-01T00:00:00").unwrap();
        let s = base + chrono::Duration::minutes(start_min);
        let e = s + chrono::Duration::minutes(len_min);
        let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut q = Message::query(CmdType::RecordInfo, 7, super::channel_id(DEV, 1));
        if let Body::RecordInfoQuery(r) = &mut q.body {
            r.start_time = Some(fmt(s));
            r.end_time = Some(fmt(e));
        }
        let mut d = device(c.clone());
        d.handle_message_from(now(), addr(5060), &request("MESSAGE", 1, q.encode(manscdp::Charset::Gb2312)));
        let mut col = RecordInfoCollector::for_query(&q);
        for m in drain(&mut d).into_iter().filter(|m| m.is_request()) {
            col.push(&Message::parse(&m.body).unwrap());
        }
        prop_assert!(col.is_complete());
        prop_assert!(col.findings().is_empty(), "{:?}", col.findings());
        let direct = recordings(&c, "x", s, e, None);
        prop_assert_eq!(col.items().len(), direct.len());
        for it in col.items() {
            let a = parse_xml_time(it.start_time.as_deref().unwrap()).unwrap();
            let b = parse_xml_time(it.end_time.as_deref().unwrap()).unwrap();
            prop_assert!(s <= a && a < b && b <= e);
        }
    }
}
