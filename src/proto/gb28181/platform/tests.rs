//! The platform in virtual time: platforms, reference cameras (registration
//! only) and raw peers whose messages are built with the codec, wired by
//! address with no sockets; time jumps to the next wake-up.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::proto::gb28181::device::{Device, DeviceConfig, DeviceEvent};
use crate::proto::gb28181::manscdp::{
    Body, CatalogItem, CatalogList, CmdType, FindingCode, Message, RecordInfoResponse, RecordItem,
    ResultType, Root,
};
use crate::proto::gb28181::message::{build_request, with_body, RequestParams};
use crate::proto::gb28181::ptz::PtzCmd;
use crate::proto::sip::{self, SipMessage};
use crate::proto::{Now, Transport};

const PLAT: &str = "34020000002000000001";
const UPPER: &str = "34010000002000000001";
const DEV: &str = "34020000001320000001";
const DEV2: &str = "34020000001320000002";
const DEV3: &str = "34020000001320000003";
const PW: &str = "12345678";

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

const PLAT_ADDR: u16 = 5060;
const UPPER_ADDR: u16 = 5090;
const DEV_ADDR: u16 = 5070;

enum Node {
    Plat(Box<Platform>),
    /// A peer driven by hand; its registration is done by a reference camera.
    Raw {
        dev: Option<Box<Device>>,
        inbox: Vec<(SocketAddr, SipMessage)>,
    },
}

struct Net {
    now: Now,
    start: Instant,
    nodes: Vec<(SocketAddr, Node)>,
    events: Vec<(Duration, SocketAddr, PlatformEvent)>,
    dev_events: Vec<(Duration, SocketAddr, DeviceEvent)>,
    /// Messages to these addresses are lost.
    drop_to: HashSet<SocketAddr>,
    /// Every message delivered: (time, from, to, message).
    wire: Vec<(Duration, SocketAddr, SocketAddr, SipMessage)>,
    seq: u32,
}

fn platform_config(id: &str) -> PlatformConfig {
    let mut p = PlatformConfig::new(id);
    p.local = addr(if id == UPPER { UPPER_ADDR } else { PLAT_ADDR });
    for d in [DEV, DEV2, DEV3] {
        p.devices.insert(d.into(), PW.into());
    }
    p
}

fn camera(id: &str, at: u16, server: u16, server_id: &str) -> Box<Device> {
    let mut c = DeviceConfig::new(id, server_id, PW, addr(at), addr(server));
    c.seed = at as u64;
    // Keepalives are sent by hand in these tests.
    c.keepalive_interval = Duration::from_secs(10 * 365 * 86400);
    Box::new(Device::new(c))
}

impl Net {
    fn new() -> Net {
        let start = Instant::now();
        Net {
            now: Now {
                mono: start,
                wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                    .unwrap()
                    .and_hms_opt(3, 4, 5)
                    .unwrap(),
            },
            start,
            nodes: vec![],
            events: vec![],
            dev_events: vec![],
            drop_to: HashSet::new(),
            wire: vec![],
            seq: 0,
        }
    }

    /// A network with one platform and one camera peer at DEV_ADDR.
    fn with(cfg: PlatformConfig) -> Net {
        let mut n = Net::new();
        n.add_platform(PLAT_ADDR, cfg);
        n.add_raw(DEV_ADDR, Some(camera(DEV, DEV_ADDR, PLAT_ADDR, PLAT)));
        n
    }

    fn add_platform(&mut self, at: u16, cfg: PlatformConfig) {
        let mut p = Platform::new(cfg);
        p.start(self.now);
        self.nodes.push((addr(at), Node::Plat(Box::new(p))));
        self.pump();
    }

    fn add_raw(&mut self, at: u16, dev: Option<Box<Device>>) {
        self.nodes
            .push((addr(at), Node::Raw { dev, inbox: vec![] }));
    }

    fn el(&self) -> Duration {
        self.now.mono - self.start
    }

    fn plat(&mut self, at: u16) -> &mut Platform {
        match self.nodes.iter_mut().find(|(a, _)| *a == addr(at)) {
            Some((_, Node::Plat(p))) => p,
            _ => panic!("no platform at {at}"),
        }
    }

    fn dev(&mut self, at: u16) -> &mut Device {
        match self.nodes.iter_mut().find(|(a, _)| *a == addr(at)) {
            Some((_, Node::Raw { dev: Some(d), .. })) => d,
            _ => panic!("no camera at {at}"),
        }
    }

    /// Messages a raw peer received since the last call.
    fn inbox(&mut self, at: u16) -> Vec<SipMessage> {
        match self.nodes.iter_mut().find(|(a, _)| *a == addr(at)) {
            Some((_, Node::Raw { inbox, .. })) => {
                std::mem::take(inbox).into_iter().map(|(_, m)| m).collect()
            }
            _ => panic!("no raw peer at {at}"),
        }
    }

    fn register(&mut self, at: u16) {
        let now = self.now;
        self.dev(at).start(now);
        self.pump();
        assert!(self.dev(at).is_registered(), "{:?}", self.dev_events);
        self.inbox(at);
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let el = self.el();
        let m = SipMessage::parse(bytes).expect("parses").message;
        if self.drop_to.contains(&to) {
            return;
        }
        self.wire.push((el, from, to, m.clone()));
        let now = self.now;
        match self.nodes.iter_mut().find(|(a, _)| *a == to) {
            Some((_, Node::Plat(p))) => p.handle_message(now, from, &m),
            Some((_, Node::Raw { dev, inbox })) => {
                // The node's Device only registers: responses reach it,
                // requests are the test's to answer by hand.
                if let Some(d) = dev.as_mut().filter(|_| !m.is_request()) {
                    d.handle_message(now, &m);
                }
                inbox.push((from, m));
            }
            None => {}
        }
    }

    fn pump(&mut self) {
        loop {
            let mut out = Vec::new();
            for (a, n) in &mut self.nodes {
                match n {
                    Node::Plat(p) => {
                        while let Some(t) = p.poll_transmit() {
                            out.push((*a, t));
                        }
                    }
                    Node::Raw { dev: Some(d), .. } => {
                        while let Some(t) = d.poll_transmit() {
                            out.push((*a, t));
                        }
                    }
                    Node::Raw { .. } => {}
                }
            }
            let el = self.el();
            for (a, n) in &mut self.nodes {
                match n {
                    Node::Plat(p) => {
                        while let Some(e) = p.poll_event() {
                            self.events.push((el, *a, e));
                        }
                    }
                    Node::Raw { dev: Some(d), .. } => {
                        while let Some(e) = d.poll_event() {
                            self.dev_events.push((el, *a, e));
                        }
                    }
                    Node::Raw { .. } => {}
                }
            }
            if out.is_empty() {
                break;
            }
            for (from, t) in out {
                self.deliver(from, t.to, &t.bytes);
            }
        }
    }

    /// Run `d` of virtual time.
    fn run(&mut self, d: Duration) {
        let until = self.now.mono + d;
        self.pump();
        loop {
            let next = self
                .nodes
                .iter()
                .filter_map(|(_, n)| match n {
                    Node::Plat(p) => p.poll_timeout(),
                    Node::Raw { dev: Some(d), .. } => d.poll_timeout(),
                    Node::Raw { .. } => None,
                })
                .min();
            match next {
                Some(t) if t <= until => {
                    let t = t.max(self.now.mono);
                    self.now = self.now.after(t - self.now.mono);
                }
                _ => {
                    self.now = self.now.after(until - self.now.mono);
                    break;
                }
            }
            let now = self.now;
            for (_, n) in &mut self.nodes {
                match n {
                    Node::Plat(p) => p.handle_timeout(now),
                    Node::Raw { dev: Some(d), .. } => d.handle_timeout(now),
                    Node::Raw { .. } => {}
                }
            }
            self.pump();
        }
        self.pump();
    }

    /// A request from raw peer `from` (acting as `from_id`) to `to_id` at `to`.
    fn request(
        &mut self,
        from: u16,
        from_id: &str,
        to: u16,
        to_id: &str,
        method: &str,
        body: Option<&Message>,
    ) -> SipMessage {
        self.seq += 1;
        let (call, tag, branch) = (
            format!("call-{}", self.seq),
            format!("{}", 1000 + self.seq),
            format!("z9hG4bKraw{}", self.seq),
        );
        let m = build_request(&RequestParams {
            method,
            from_id,
            to_id,
            domain: "3402000000",
            local: addr(from),
            remote: addr(to),
            transport: Transport::Udp,
            call_id: &call,
            from_tag: &tag,
            to_tag: None,
            cseq: self.seq,
            branch: &branch,
            user_agent: "raw",
        });
        match body {
            Some(b) => with_body(m, manscdp::CONTENT_TYPE, b.encode(manscdp::Charset::Gb2312)),
            None => m.with_content_length(),
        }
    }

    /// Send `m` from raw peer `from` to `to`; return what came back to `from`.
    fn send(&mut self, from: u16, to: u16, m: &SipMessage) -> Vec<SipMessage> {
        self.deliver(addr(from), addr(to), &m.to_bytes());
        self.pump();
        // Leave out the camera's own registration traffic.
        self.inbox(from)
            .into_iter()
            .filter(|r| r.cseq().is_none_or(|c| c.method != "REGISTER"))
            .collect()
    }

    /// Answer request `req` (received by raw peer `at`) with `code`.
    fn answer(&mut self, at: u16, to: u16, req: &SipMessage, code: u16) {
        let r = sip::response_to(req, code, Some("raw-tag")).with_content_length();
        self.deliver(addr(at), addr(to), &r.to_bytes());
        self.pump();
    }

    fn keepalive(&mut self, from: u16, id: &str, to: u16, to_id: &str) -> Vec<SipMessage> {
        let sn = 100 + self.seq as u64;
        let m = self.request(
            from,
            id,
            to,
            to_id,
            "MESSAGE",
            Some(&Message::keepalive(sn, id, ResultType::Ok)),
        );
        self.send(from, to, &m)
    }

    fn events_of(&self, at: u16) -> Vec<&PlatformEvent> {
        self.events
            .iter()
            .filter(|(_, a, _)| *a == addr(at))
            .map(|(_, _, e)| e)
            .collect()
    }
}

fn statuses(ms: &[SipMessage]) -> Vec<u16> {
    ms.iter().filter_map(|m| m.status()).collect()
}

fn requests<'a>(ms: &'a [SipMessage], method: &str) -> Vec<&'a SipMessage> {
    ms.iter().filter(|m| m.method() == Some(method)).collect()
}

fn body(m: &SipMessage) -> Message {
    let d = Message::decode(&m.body).expect("MANSCDP");
    let errors: Vec<_> = d.errors().collect();
    assert!(errors.is_empty(), "{errors:?}");
    d.message
}

fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---- keepalive (§保活) ----

#[test]
fn keepalive_from_a_registered_device_gets_200() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    let got = n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT);
    assert_eq!(statuses(&got), vec![200]);
    assert!(n.events_of(PLAT_ADDR).iter().any(|e| matches!(
        e,
        PlatformEvent::Keepalive { device_id, status, findings }
            if device_id == DEV && status.as_deref() == Some("OK") && findings.is_empty()
    )));
}

#[test]
fn keepalive_from_an_unregistered_device_is_refused() {
    let mut n = Net::with(platform_config(PLAT));
    let got = n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT);
    assert_eq!(statuses(&got), vec![403]);
    let mut cfg = platform_config(PLAT);
    cfg.faults.accept_unregistered_keepalive = true;
    let mut n = Net::with(cfg);
    assert_eq!(
        statuses(&n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT)),
        vec![200]
    );
}

#[test]
fn three_missed_keepalives_take_the_device_offline() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    n.run(secs(60));
    assert_eq!(
        statuses(&n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT)),
        vec![200]
    );
    // Silent from t=60 s: offline at 60 + 3 x 60 s.
    n.run(secs(179));
    assert!(n.plat(PLAT_ADDR).registration(DEV).is_some());
    n.run(secs(2));
    let off: Vec<_> = n
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, PlatformEvent::Offline { .. }))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(off, vec![secs(240)]);
    assert!(n.plat(PLAT_ADDR).registration(DEV).is_none());
    // On the wire: the next keepalive is refused; registering again works.
    assert_eq!(
        statuses(&n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT)),
        vec![403]
    );
    n.register(DEV_ADDR);
    assert_eq!(
        statuses(&n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT)),
        vec![200]
    );
}

#[test]
fn devices_go_offline_in_deadline_order_whatever_their_registration_order() {
    let mut n = Net::with(platform_config(PLAT));
    n.add_raw(5071, Some(camera(DEV2, 5071, PLAT_ADDR, PLAT)));
    n.add_raw(5072, Some(camera(DEV3, 5072, PLAT_ADDR, PLAT)));
    n.register(DEV_ADDR);
    n.run(secs(10));
    n.register(5071);
    n.run(secs(10));
    n.register(5072);
    // DEV2 keeps alive at 60 and 120 s; the others stay silent.
    n.run(secs(40));
    n.keepalive(5071, DEV2, PLAT_ADDR, PLAT);
    n.run(secs(60));
    n.keepalive(5071, DEV2, PLAT_ADDR, PLAT);
    n.run(secs(400));
    let off: Vec<_> = n
        .events
        .iter()
        .filter_map(|(t, _, e)| match e {
            PlatformEvent::Offline { device_id } => Some((*t, device_id.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        off,
        vec![(secs(180), DEV), (secs(200), DEV3), (secs(300), DEV2)]
    );
    assert_eq!(n.plat(PLAT_ADDR).registered_count(), 0);
    assert_eq!(
        n.plat(PLAT_ADDR).poll_timeout(),
        None,
        "nothing left to wake for"
    );
}

#[test]
fn keepalives_every_interval_keep_the_device_online_for_a_day() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    for _ in 0..24 * 60 {
        n.run(secs(60));
        assert_eq!(
            statuses(&n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT)),
            vec![200]
        );
    }
    assert!(!n.events.iter().any(|(_, _, e)| matches!(
        e,
        PlatformEvent::Offline { .. } | PlatformEvent::Expired { .. }
    )));
}

#[test]
fn keepalive_faults() {
    let mut cfg = platform_config(PLAT);
    cfg.faults.no_offline_detection = true;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    n.run(secs(600));
    assert_eq!(
        statuses(&n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT)),
        vec![200]
    );

    let mut cfg = platform_config(PLAT);
    cfg.faults.no_keepalive_answer = true;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    assert!(n.keepalive(DEV_ADDR, DEV, PLAT_ADDR, PLAT).is_empty());
}

#[test]
fn keepalive_interval_and_count_are_settings() {
    let mut cfg = platform_config(PLAT);
    cfg.apply_option("keepalive_interval", "20").unwrap();
    cfg.apply_option("keepalive_timeout_count", "2").unwrap();
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    n.run(secs(41));
    assert!(n
        .events
        .iter()
        .any(|(t, _, e)| *t == secs(40) && matches!(e, PlatformEvent::Offline { .. })));
}

// ---- queries (§设备查询) ----

fn trigger(n: &mut Net, at: u16, action: &str, kv: &[(&str, &str)]) -> Result<(), String> {
    let now = n.now;
    let r = n.plat(at).trigger(now, action, &args(kv));
    n.pump();
    r
}

#[test]
fn each_query_is_well_formed_and_its_answer_gets_200() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    for (action, cmd) in [
        ("query-deviceinfo", CmdType::DeviceInfo),
        ("query-devicestatus", CmdType::DeviceStatus),
        ("query-config", CmdType::ConfigDownload),
        ("query-preset", CmdType::PresetQuery),
        ("query-recordinfo", CmdType::RecordInfo),
    ] {
        trigger(&mut n, PLAT_ADDR, action, &[("device_id", DEV)]).unwrap();
        let got = n.inbox(DEV_ADDR);
        let q = requests(&got, "MESSAGE")[0];
        assert_eq!(
            q.uri(),
            Some(format!("sip:{DEV}@127.0.0.1:{DEV_ADDR}").as_str())
        );
        assert_eq!(q.headers.get("Content-Type"), Some(manscdp::CONTENT_TYPE));
        let m = body(q);
        assert_eq!(
            (m.root, m.cmd_type.clone()),
            (Root::Query, Some(cmd.clone()))
        );
        assert_eq!(m.device_id.as_deref(), Some(DEV));
        n.answer(DEV_ADDR, PLAT_ADDR, q, 200);
        let answer = match cmd {
            CmdType::RecordInfo => m.reply(Body::RecordInfoResponse(RecordInfoResponse::page(
                Some("cam".into()),
                0,
                vec![],
            ))),
            _ => m.reply_result(ResultType::Ok),
        };
        let r = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "MESSAGE", Some(&answer));
        assert_eq!(
            statuses(&n.send(DEV_ADDR, PLAT_ADDR, &r)),
            vec![200],
            "{action}"
        );
    }
    let answers = n
        .events_of(PLAT_ADDR)
        .iter()
        .filter(|e| {
            matches!(
                e,
                PlatformEvent::Answer { .. } | PlatformEvent::Collected { .. }
            )
        })
        .count();
    assert_eq!(answers, 5);
}

#[test]
fn recordinfo_query_carries_the_time_window() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    trigger(
        &mut n,
        PLAT_ADDR,
        "query-recordinfo",
        &[
            ("start_time", "2026-01-01T00:00:00"),
            ("end_time", "2026-01-01T23:59:59"),
            ("type", "time"),
        ],
    )
    .unwrap();
    let m = body(requests(&n.inbox(DEV_ADDR), "MESSAGE")[0]);
    assert_eq!(m.get("StartTime").as_deref(), Some("2026-01-01T00:00:00"));
    assert_eq!(m.get("EndTime").as_deref(), Some("2026-01-01T23:59:59"));
    assert_eq!(m.get("Type").as_deref(), Some("time"));
}

fn catalog_items(ids: &[&str]) -> Vec<CatalogItem> {
    ids.iter()
        .map(|id| CatalogItem::new(*id, format!("通道{}", &id[16..])))
        .collect()
}

const CHANNELS: [&str; 5] = [
    "34020000001310000001",
    "34020000001310000002",
    "34020000001310000003",
    "34020000001310000004",
    "34020000001310000005",
];

/// Query the catalog of DEV and answer it in pages of 2 (SumNum 5).
fn collect_catalog(n: &mut Net, pages_sent: usize) -> Message {
    trigger(n, PLAT_ADDR, "query-catalog", &[("device_id", DEV)]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let q = requests(&got, "MESSAGE")[0].clone();
    n.answer(DEV_ADDR, PLAT_ADDR, &q, 200);
    let query = body(&q);
    let pages = manscdp::catalog_pages(&query, &catalog_items(&CHANNELS), 2);
    assert_eq!(pages.len(), 3);
    for p in pages.iter().take(pages_sent) {
        let r = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "MESSAGE", Some(p));
        assert_eq!(statuses(&n.send(DEV_ADDR, PLAT_ADDR, &r)), vec![200]);
    }
    query
}

#[test]
fn catalog_answer_is_collected_until_sumnum_and_its_channels_are_reachable() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    let q = collect_catalog(&mut n, 3);
    let collected: Vec<_> = n
        .events_of(PLAT_ADDR)
        .into_iter()
        .filter_map(|e| match e {
            PlatformEvent::Collected {
                items,
                messages,
                complete,
                findings,
                sn,
                ..
            } => Some((*items, *messages, *complete, findings.len(), *sn)),
            _ => None,
        })
        .collect();
    assert_eq!(collected, vec![(5, 3, true, 0, q.sn.unwrap())]);
    assert_eq!(n.plat(PLAT_ADDR).channels().len(), 5);
    // A channel of the last page is addressed through its device.
    trigger(
        &mut n,
        PLAT_ADDR,
        "ptz",
        &[
            ("device_id", CHANNELS[4]),
            ("direction", "up"),
            ("speed", "250"),
        ],
    )
    .unwrap();
    let got = n.inbox(DEV_ADDR);
    let m = requests(&got, "MESSAGE")[0];
    assert_eq!(
        m.headers.get("To"),
        Some(format!("<sip:{}@3402000000>", CHANNELS[4]).as_str())
    );
    let c = body(m);
    assert_eq!(c.get("PTZCmd").as_deref(), Some("A50F010800FA00B7"));
    assert!(PtzCmd::from_hex("A50F010800FA00B7").is_ok());
}

#[test]
fn collection_stopping_early_loses_the_later_pages() {
    let mut cfg = platform_config(PLAT);
    cfg.faults.collect_stops_early = true;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    collect_catalog(&mut n, 3);
    assert!(trigger(&mut n, PLAT_ADDR, "ptz", &[("device_id", CHANNELS[4])]).is_err());
    assert!(trigger(&mut n, PLAT_ADDR, "ptz", &[("device_id", CHANNELS[0])]).is_ok());
}

#[test]
fn an_incomplete_answer_ends_at_the_collect_timeout_with_a_finding() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    collect_catalog(&mut n, 2);
    assert!(!n
        .events_of(PLAT_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::Collected { .. })));
    n.run(secs(61));
    let f = n
        .events_of(PLAT_ADDR)
        .into_iter()
        .find_map(|e| match e {
            PlatformEvent::Collected {
                complete: false,
                items: 4,
                findings,
                ..
            } => Some(findings.clone()),
            _ => None,
        })
        .expect("collected");
    assert_eq!(f.last().unwrap().code, FindingCode::Incomplete);
}

#[test]
fn query_faults_show_in_the_message() {
    let mut cfg = platform_config(PLAT);
    cfg.faults.catalog_query_bad_sn = true;
    cfg.faults.bad_ptzcmd = true;
    cfg.faults.recordinfo_no_time = true;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "query-catalog", &[]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let d = Message::decode(&requests(&got, "MESSAGE")[0].body).unwrap();
    assert!(d
        .message
        .validate()
        .iter()
        .any(|f| f.code == FindingCode::SnOutOfRange));
    trigger(&mut n, PLAT_ADDR, "ptz", &[("direction", "left")]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let d = Message::decode(&requests(&got, "MESSAGE")[0].body).unwrap();
    let hex = d.message.get("PTZCmd").unwrap();
    assert!(PtzCmd::from_hex(&hex).is_err());
    trigger(&mut n, PLAT_ADDR, "query-recordinfo", &[]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let d = Message::decode(&requests(&got, "MESSAGE")[0].body).unwrap();
    assert!(d
        .message
        .validate()
        .iter()
        .any(|f| f.code == FindingCode::MissingField));
}

#[test]
fn answers_get_no_200_with_the_fault() {
    let mut cfg = platform_config(PLAT);
    cfg.faults.no_response_200 = true;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "query-deviceinfo", &[]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let q = body(requests(&got, "MESSAGE")[0]);
    let r = n.request(
        DEV_ADDR,
        DEV,
        PLAT_ADDR,
        PLAT,
        "MESSAGE",
        Some(&q.reply_result(ResultType::Ok)),
    );
    assert!(n.send(DEV_ADDR, PLAT_ADDR, &r).is_empty());
}

#[test]
fn controls_without_answer_and_with_one() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    for (action, kv, field, value) in [
        ("teleboot", vec![], "TeleBoot", "Boot"),
        ("record", vec![("cmd", "stop")], "RecordCmd", "StopRecord"),
        ("guard", vec![("cmd", "set")], "GuardCmd", "SetGuard"),
        ("alarm-reset", vec![], "AlarmCmd", "ResetAlarm"),
        ("iframe", vec![], "IFameCmd", "Send"),
        ("ptz", vec![("zoom", "in")], "PTZCmd", "A50F0110000080"),
    ] {
        trigger(&mut n, PLAT_ADDR, action, &kv).unwrap();
        let got = n.inbox(DEV_ADDR);
        let m = body(requests(&got, "MESSAGE")[0]);
        assert_eq!(m.root, Root::Control, "{action}");
        assert!(
            m.get(field).unwrap().starts_with(value),
            "{action}: {:?}",
            m.get(field)
        );
    }
    assert!(trigger(&mut n, PLAT_ADDR, "ptz", &[("direction", "sideways")]).is_err());
    assert!(trigger(&mut n, PLAT_ADDR, "dance", &[]).is_err());
    assert!(trigger(&mut n, PLAT_ADDR, "query-catalog", &[("device_id", DEV2)]).is_err());
}

// ---- client transactions ----

#[test]
fn unanswered_requests_are_retransmitted_over_udp_until_timer_f() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "query-deviceinfo", &[]).unwrap();
    n.run(secs(40));
    let sent: Vec<Duration> = n
        .wire
        .iter()
        .filter(|(_, _, to, m)| *to == addr(DEV_ADDR) && m.method() == Some("MESSAGE"))
        .map(|(t, _, _, _)| *t)
        .collect();
    let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
    assert_eq!(
        ms,
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(n.events_of(PLAT_ADDR).iter().any(|e| matches!(
        e,
        PlatformEvent::RequestFailed { status: None, method, .. } if method == "MESSAGE"
    )));
}

#[test]
fn a_response_stops_retransmission_only_when_it_matches() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "teleboot", &[]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let q = requests(&got, "MESSAGE")[0].clone();
    let mut wrong = q.clone();
    wrong.headers.set(
        "Via",
        "SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKother",
    );
    n.answer(DEV_ADDR, PLAT_ADDR, &wrong, 200);
    n.run(secs(1));
    assert_eq!(requests(&n.inbox(DEV_ADDR), "MESSAGE").len(), 1);
    n.answer(DEV_ADDR, PLAT_ADDR, &q, 200);
    n.run(secs(40));
    assert!(requests(&n.inbox(DEV_ADDR), "MESSAGE").is_empty());
    assert!(!n
        .events_of(PLAT_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::RequestFailed { .. })));
}

#[test]
fn no_retransmission_over_tcp() {
    let mut cfg = platform_config(PLAT);
    cfg.transport = Transport::Tcp;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "query-deviceinfo", &[]).unwrap();
    n.run(secs(10));
    assert_eq!(requests(&n.inbox(DEV_ADDR), "MESSAGE").len(), 1);
}

// ---- alarm (§报警事件通知) ----

fn alarm(sn: u64) -> Message {
    Message::new(
        sn,
        DEV,
        Body::AlarmNotify(manscdp::AlarmNotify {
            alarm_priority: Some(1),
            alarm_method: Some(5),
            alarm_time: Some("2026-01-02T03:04:05".into()),
            ..Default::default()
        }),
    )
}

#[test]
fn an_alarm_gets_200_then_a_response_with_result_ok() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    let r = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "MESSAGE", Some(&alarm(77)));
    let got = n.send(DEV_ADDR, PLAT_ADDR, &r);
    assert_eq!(statuses(&got), vec![200]);
    let m = body(requests(&got, "MESSAGE")[0]);
    assert_eq!(
        (
            m.root,
            m.cmd_type.clone(),
            m.sn,
            m.device_id.as_deref(),
            m.get("Result")
        ),
        (
            Root::Response,
            Some(CmdType::Alarm),
            Some(77),
            Some(DEV),
            Some("OK".into())
        )
    );
    for (fault, want) in [
        ("no-alarm-response", None),
        ("alarm-result-error", Some("ERROR")),
    ] {
        let mut cfg = platform_config(PLAT);
        cfg.faults.set(fault);
        let mut n = Net::with(cfg);
        n.register(DEV_ADDR);
        let r = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "MESSAGE", Some(&alarm(78)));
        let got = n.send(DEV_ADDR, PLAT_ADDR, &r);
        let result = requests(&got, "MESSAGE")
            .first()
            .map(|m| body(m).get("Result").unwrap());
        assert_eq!(result.as_deref(), want, "{fault}");
    }
}

#[test]
fn requests_from_unregistered_devices_are_refused() {
    let mut n = Net::with(platform_config(PLAT));
    let r = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "MESSAGE", Some(&alarm(1)));
    assert_eq!(statuses(&n.send(DEV_ADDR, PLAT_ADDR, &r)), vec![403]);
}

// ---- subscriptions (§订阅与取订) ----

#[test]
fn catalog_subscription_notify_refresh_and_end() {
    let mut cfg = platform_config(PLAT);
    cfg.subscribe_expires = 600;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "subscribe-catalog", &[]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let s = requests(&got, "SUBSCRIBE")[0].clone();
    assert_eq!(s.headers.get("Event"), Some("Catalog;id=1"));
    assert_eq!(s.headers.get("Expires"), Some("600"));
    assert!(s.headers.get("Contact").is_some());
    assert_eq!(body(&s).cmd_type, Some(CmdType::Catalog));
    n.answer(DEV_ADDR, PLAT_ADDR, &s, 200);
    assert!(n
        .events_of(PLAT_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::Subscribed { expires: 600, .. })));
    // NOTIFY in the dialog.
    let note = Message::new(
        9,
        DEV,
        Body::CatalogNotify(CatalogList::page(1, {
            let mut it = CatalogItem::new(CHANNELS[0], "通道");
            it.event = Some(manscdp::CatalogEvent::Add);
            vec![it]
        })),
    );
    let mut nt = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "NOTIFY", Some(&note));
    nt.headers.set("Call-ID", s.call_id().unwrap());
    nt.headers.set("Event", "Catalog;id=1");
    nt.headers.set("Subscription-State", "active;expires=600");
    assert_eq!(statuses(&n.send(DEV_ADDR, PLAT_ADDR, &nt)), vec![200]);
    assert!(n.plat(PLAT_ADDR).channels().contains_key(CHANNELS[0]));
    // Refreshed at half the expiry, in the dialog.
    n.run(secs(301));
    let got = n.inbox(DEV_ADDR);
    let r = requests(&got, "SUBSCRIBE")[0].clone();
    assert_eq!(r.call_id(), s.call_id());
    assert!(r.headers.get("To").unwrap().contains("tag=raw-tag"));
    n.answer(DEV_ADDR, PLAT_ADDR, &r, 200);
    // Unsubscribe: Expires 0, same dialog.
    trigger(&mut n, PLAT_ADDR, "unsubscribe", &[("event", "catalog")]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let u = requests(&got, "SUBSCRIBE")[0].clone();
    assert_eq!(
        (u.call_id(), u.headers.get("Expires")),
        (s.call_id(), Some("0"))
    );
    n.answer(DEV_ADDR, PLAT_ADDR, &u, 200);
    assert!(n
        .events_of(PLAT_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::SubscriptionEnded { .. })));
    // Now outside any subscription, and from a device that is not registered: 481.
    let now = n.now;
    n.dev(DEV_ADDR).unregister(now);
    n.pump();
    n.inbox(DEV_ADDR);
    nt.headers
        .set("Via", "SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKlate");
    assert_eq!(statuses(&n.send(DEV_ADDR, PLAT_ADDR, &nt)), vec![481]);
}

#[test]
fn unsubscribe_before_the_200_waits_for_it() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "subscribe-catalog", &[]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let s = requests(&got, "SUBSCRIBE")[0].clone();
    trigger(&mut n, PLAT_ADDR, "unsubscribe", &[]).unwrap();
    assert!(requests(&n.inbox(DEV_ADDR), "SUBSCRIBE").is_empty());
    n.answer(DEV_ADDR, PLAT_ADDR, &s, 200);
    let got = n.inbox(DEV_ADDR);
    let u = requests(&got, "SUBSCRIBE")[0];
    assert_eq!(u.headers.get("Expires"), Some("0"));
    assert!(u.headers.get("To").unwrap().contains("tag=raw-tag"));
}

#[test]
fn alarm_subscription_uses_the_presence_package() {
    let mut cfg = platform_config(PLAT);
    cfg.faults.subscribe_no_expires = true;
    cfg.faults.notify_no_200 = true;
    let mut n = Net::with(cfg);
    n.register(DEV_ADDR);
    trigger(&mut n, PLAT_ADDR, "subscribe-alarm", &[("expires", "300")]).unwrap();
    let got = n.inbox(DEV_ADDR);
    let s = requests(&got, "SUBSCRIBE")[0].clone();
    assert_eq!(s.headers.get("Event"), Some("presence;id=1"));
    assert_eq!(s.headers.get("Expires"), None);
    let q = body(&s);
    assert_eq!(q.cmd_type, Some(CmdType::Alarm));
    n.answer(DEV_ADDR, PLAT_ADDR, &s, 200);
    let mut nt = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "NOTIFY", Some(&alarm(3)));
    nt.headers.set("Call-ID", s.call_id().unwrap());
    assert!(n.send(DEV_ADDR, PLAT_ADDR, &nt).is_empty());
}

// ---- redirect (§注册重定向) ----

#[test]
fn redirect_server_answers_302_with_server_a() {
    let mut cfg = platform_config(PLAT);
    cfg.apply_option("redirect_to", "34020000002000000009@192.0.2.9:5061")
        .unwrap();
    let mut n = Net::with(cfg);
    let now = n.now;
    n.dev(DEV_ADDR).start(now);
    n.pump();
    let got = n.inbox(DEV_ADDR);
    assert_eq!(statuses(&got), vec![401, 302]);
    let r = &got[1];
    assert_eq!(
        r.headers.get("Contact"),
        Some("<sip:34020000002000000009@192.0.2.9:5061>")
    );
    assert_eq!(r.headers.get("Expires"), Some("3600"));
    assert!(n.plat(PLAT_ADDR).registration(DEV).is_none());
    for (fault, status) in [("no-redirect", 200), ("redirect-no-contact", 302)] {
        let mut cfg = platform_config(PLAT);
        cfg.apply_option("redirect_to", "34020000002000000009@192.0.2.9:5061")
            .unwrap();
        cfg.faults.set(fault);
        let mut n = Net::with(cfg);
        let now = n.now;
        n.dev(DEV_ADDR).start(now);
        n.pump();
        let got = n.inbox(DEV_ADDR);
        assert_eq!(got[1].status(), Some(status), "{fault}");
        let c = got[1]
            .headers
            .get("Contact")
            .is_some_and(|c| c.contains("0009@"));
        assert!(!c, "{fault}");
    }
}

// ---- platform cascade ----

/// An upper platform at UPPER_ADDR, a lower platform at PLAT_ADDR sharing
/// DEV, DEV2 and DEV3, and a camera DEV at DEV_ADDR registered to the lower one.
fn cascade(lower_faults: &[&str]) -> Net {
    let mut n = Net::new();
    let mut upper = platform_config(UPPER);
    upper.devices.insert(PLAT.into(), "cascade-pw".into());
    n.add_platform(UPPER_ADDR, upper);
    let mut lower = platform_config(PLAT);
    lower.upstream = Some(UpstreamConfig::new(UPPER, addr(UPPER_ADDR), "cascade-pw"));
    for f in lower_faults {
        assert!(lower.faults.set(f));
    }
    n.add_raw(DEV_ADDR, Some(camera(DEV, DEV_ADDR, PLAT_ADDR, PLAT)));
    n.add_platform(PLAT_ADDR, lower);
    n
}

#[test]
fn lower_platform_registers_upward_and_keeps_alive() {
    let mut n = cascade(&[]);
    assert!(n.plat(PLAT_ADDR).upstream_online());
    assert!(n.plat(UPPER_ADDR).registration(PLAT).is_some());
    n.run(secs(3600));
    let kas = n
        .events_of(UPPER_ADDR)
        .iter()
        .filter(|e| matches!(e, PlatformEvent::Keepalive { device_id, .. } if device_id == PLAT))
        .count();
    assert_eq!(kas, 61);
    assert!(!n
        .events_of(UPPER_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::Offline { .. })));
}

#[test]
fn lower_platform_reregisters_after_three_unanswered_keepalives() {
    let mut n = cascade(&[]);
    n.run(secs(30));
    n.drop_to.insert(addr(PLAT_ADDR));
    // Keepalives at 60, 120 and 180 s go unanswered.
    n.run(secs(200));
    n.drop_to.clear();
    n.run(secs(20));
    let kas: Vec<Duration> = n
        .wire
        .iter()
        .filter(|(_, f, t, m)| {
            *f == addr(PLAT_ADDR)
                && *t == addr(UPPER_ADDR)
                && m.method() == Some("MESSAGE")
                && m.headers.get("Via").is_some()
        })
        .map(|(t, _, _, _)| *t)
        .collect();
    assert!(kas.len() >= 4, "{kas:?}");
    let off: Vec<_> = n
        .events
        .iter()
        .filter_map(|(t, _, e)| match e {
            PlatformEvent::UpstreamOffline { reason } => Some((*t, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        off,
        vec![(secs(240), "3 keepalives unanswered".to_string())]
    );
    assert!(n.plat(PLAT_ADDR).upstream_online());
}

#[test]
fn refused_keepalive_makes_the_lower_platform_register_again() {
    let mut n = cascade(&[]);
    // The upper platform forgets the lower one.
    n.plat(UPPER_ADDR).registrations.clear();
    n.run(secs(61));
    assert!(n.plat(UPPER_ADDR).registration(PLAT).is_some());
    assert!(n
        .events_of(PLAT_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::UpstreamOffline { reason } if reason == "keepalive refused with 403")));
}

#[test]
fn upper_platform_collects_the_shared_catalog_across_messages() {
    let mut n = cascade(&[]);
    n.register(DEV_ADDR);
    trigger(&mut n, UPPER_ADDR, "query-catalog", &[("device_id", PLAT)]).unwrap();
    let c = n
        .events_of(UPPER_ADDR)
        .into_iter()
        .find_map(|e| match e {
            PlatformEvent::Collected {
                items,
                messages,
                complete,
                findings,
                ..
            } => Some((*items, *messages, *complete, findings.clone())),
            _ => None,
        })
        .expect("collected");
    assert_eq!(c, (3, 2, true, vec![]));
    let ch = n.plat(UPPER_ADDR).channels().clone();
    assert_eq!(
        ch.keys().cloned().collect::<Vec<_>>(),
        vec![DEV, DEV2, DEV3]
    );
    assert_eq!(ch[DEV].status.as_deref(), Some("ON"));
    assert_eq!(ch[DEV2].status.as_deref(), Some("OFF"));
    assert_eq!(ch[DEV].owner, PLAT);
}

#[test]
fn wrong_sumnum_leaves_the_upper_platform_waiting() {
    let mut n = cascade(&["cascade-wrong-sumnum"]);
    trigger(&mut n, UPPER_ADDR, "query-catalog", &[("device_id", PLAT)]).unwrap();
    n.run(secs(61));
    assert!(n.events_of(UPPER_ADDR).iter().any(|e| matches!(
        e,
        PlatformEvent::Collected {
            complete: false,
            items: 3,
            ..
        }
    )));
}

#[test]
fn shared_device_status_changes_are_notified_upward() {
    let mut n = cascade(&[]);
    n.register(DEV_ADDR);
    let now = n.now;
    n.dev(DEV_ADDR).unregister(now);
    n.pump();
    let notes: Vec<Message> = n
        .wire
        .iter()
        .filter(|(_, f, t, m)| {
            *f == addr(PLAT_ADDR) && *t == addr(UPPER_ADDR) && m.method() == Some("NOTIFY")
        })
        .map(|(_, _, _, m)| body(m))
        .collect();
    let events: Vec<_> = notes
        .iter()
        .map(|m| match &m.body {
            Body::CatalogNotify(l) => (
                l.items()[0].device_id.clone().unwrap(),
                l.items()[0].event.clone().unwrap().as_str().to_string(),
            ),
            b => panic!("{b:?}"),
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (DEV.to_string(), "ON".to_string()),
            (DEV.to_string(), "OFF".to_string())
        ]
    );
    let notified = n
        .events_of(UPPER_ADDR)
        .iter()
        .filter(|e| matches!(e, PlatformEvent::Notified { device_id, .. } if device_id == PLAT))
        .count();
    assert_eq!(notified, 2);
    let bad: Vec<_> = n
        .wire
        .iter()
        .filter(|(_, f, t, m)| {
            *f == addr(UPPER_ADDR)
                && *t == addr(PLAT_ADDR)
                && m.status().is_some_and(|s| s != 200 && s != 401)
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");

    let mut n = cascade(&["cascade-no-status-notify"]);
    n.register(DEV_ADDR);
    assert!(!n
        .wire
        .iter()
        .any(|(_, _, _, m)| m.method() == Some("NOTIFY")));
}

#[test]
fn ptz_and_record_queries_from_the_upper_platform_reach_the_device_and_come_back() {
    let mut n = cascade(&[]);
    n.register(DEV_ADDR);
    trigger(&mut n, UPPER_ADDR, "query-catalog", &[("device_id", PLAT)]).unwrap();
    // PTZ: upper -> lower -> camera.
    trigger(
        &mut n,
        UPPER_ADDR,
        "ptz",
        &[("device_id", DEV), ("direction", "right"), ("speed", "250")],
    )
    .unwrap();
    let got = n.inbox(DEV_ADDR);
    let ptz = requests(&got, "MESSAGE")[0].clone();
    assert_eq!(
        body(&ptz).get("PTZCmd").as_deref(),
        Some("A50F0101FA0000B0")
    );
    n.answer(DEV_ADDR, PLAT_ADDR, &ptz, 200);
    // RecordInfo: down, two pages back up under the upper platform's SN.
    trigger(
        &mut n,
        UPPER_ADDR,
        "query-recordinfo",
        &[("device_id", DEV)],
    )
    .unwrap();
    let up_sn = n
        .wire
        .iter()
        .rev()
        .find(|(_, f, _, m)| *f == addr(UPPER_ADDR) && m.method() == Some("MESSAGE"))
        .map(|(_, _, _, m)| body(m).sn.unwrap())
        .unwrap();
    let got = n.inbox(DEV_ADDR);
    let q = requests(&got, "MESSAGE")[0].clone();
    n.answer(DEV_ADDR, PLAT_ADDR, &q, 200);
    let down = body(&q);
    assert_ne!(down.sn, Some(up_sn));
    let items: Vec<RecordItem> = (0..3)
        .map(|i| RecordItem {
            device_id: Some(DEV.into()),
            name: Some("cam".into()),
            start_time: Some(format!("2026-01-01T0{i}:00:00")),
            end_time: Some(format!("2026-01-01T0{i}:30:00")),
            ..Default::default()
        })
        .collect();
    for p in manscdp::record_info_pages(&down, Some("cam"), &items, 2) {
        let r = n.request(DEV_ADDR, DEV, PLAT_ADDR, PLAT, "MESSAGE", Some(&p));
        assert_eq!(statuses(&n.send(DEV_ADDR, PLAT_ADDR, &r)), vec![200]);
    }
    let c = n
        .events_of(UPPER_ADDR)
        .into_iter()
        .find_map(|e| match e {
            PlatformEvent::Collected {
                cmd,
                sn,
                items,
                complete,
                ..
            } if cmd == "RecordInfo" => Some((*sn, *items, *complete)),
            _ => None,
        })
        .expect("collected");
    assert_eq!(c, (up_sn, 3, true));

    for fault in ["no-forward-ptz", "no-forward-recordinfo"] {
        let mut n = cascade(&[fault]);
        n.register(DEV_ADDR);
        trigger(&mut n, UPPER_ADDR, "query-catalog", &[("device_id", PLAT)]).unwrap();
        let action = if fault == "no-forward-ptz" {
            "ptz"
        } else {
            "query-recordinfo"
        };
        trigger(&mut n, UPPER_ADDR, action, &[("device_id", DEV)]).unwrap();
        assert!(
            requests(&n.inbox(DEV_ADDR), "MESSAGE").is_empty(),
            "{fault}"
        );
    }
}

#[test]
fn lower_platform_keepalive_faults() {
    let mut n = cascade(&["cascade-no-keepalive"]);
    n.run(secs(600));
    assert!(n
        .events_of(UPPER_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::Offline { .. })));

    let mut n = cascade(&["cascade-no-reregister"]);
    n.drop_to.insert(addr(PLAT_ADDR));
    n.run(secs(400));
    assert!(!n
        .events_of(PLAT_ADDR)
        .iter()
        .any(|e| matches!(e, PlatformEvent::UpstreamOffline { .. })));
}

#[test]
fn lower_platform_answers_deviceinfo_about_itself() {
    let mut n = cascade(&[]);
    trigger(
        &mut n,
        UPPER_ADDR,
        "query-deviceinfo",
        &[("device_id", PLAT)],
    )
    .unwrap();
    assert!(n.events_of(UPPER_ADDR).iter().any(|e| matches!(
        e,
        PlatformEvent::Answer { cmd, result, .. } if cmd == "DeviceInfo" && result.as_deref() == Some("OK")
    )));
}

/// A REGISTER for DEV built by hand at raw peer `from`.
fn hand_register(
    from: u16,
    call_id: &str,
    cseq: u32,
    auth: Option<&crate::proto::sip::digest::Credentials>,
) -> SipMessage {
    crate::proto::gb28181::register::build_register(
        &crate::proto::gb28181::register::RegisterParams {
            device_id: DEV,
            platform_id: PLAT,
            domain: "3402000000",
            local: addr(from),
            server: addr(PLAT_ADDR),
            transport: Transport::Udp,
            call_id,
            from_tag: "hand",
            branch: &format!("z9hG4bKhand{cseq}"),
            cseq,
            expires: 3600,
            authorization: auth,
            user_agent: "hand",
        },
    )
}

/// Deliver `m` from raw peer `from` to the platform; what came back to `from`.
fn to_platform(n: &mut Net, from: u16, m: &SipMessage) -> Vec<SipMessage> {
    n.deliver(addr(from), addr(PLAT_ADDR), &m.to_bytes());
    n.pump();
    n.inbox(from)
}

fn answer_401(r: &SipMessage, password: &str) -> crate::proto::sip::digest::Credentials {
    let ch =
        crate::proto::sip::digest::Challenge::parse(r.headers.get("WWW-Authenticate").unwrap())
            .unwrap();
    let uri = crate::proto::gb28181::register::register_uri(PLAT, addr(PLAT_ADDR));
    crate::proto::sip::digest::Credentials::answer(&ch, DEV, password, "REGISTER", &uri, "c0ffee")
}

#[test]
fn a_replayed_digest_response_is_challenged_and_the_registration_stays() {
    let mut n = Net::with(platform_config(PLAT));
    n.register(DEV_ADDR);
    let authed = n
        .wire
        .iter()
        .rev()
        .find(|(_, f, _, m)| *f == addr(DEV_ADDR) && m.headers.get("Authorization").is_some())
        .map(|(_, _, _, m)| m.clone())
        .expect("the camera answered a challenge");
    // The same bytes from another host: a fresh 401, the binding stays put.
    n.add_raw(5099, None);
    let r = to_platform(&mut n, 5099, &authed);
    assert_eq!(statuses(&r), vec![401], "{r:?}");
    assert_eq!(
        n.plat(PLAT_ADDR).registration(DEV).unwrap().addr,
        addr(DEV_ADDR)
    );
    // From the camera's own address too, as a new transaction (a
    // retransmission would get the cached 200): the nonce was used already.
    let mut again = authed.clone();
    let via = again
        .headers
        .get("Via")
        .unwrap()
        .replace("branch=", "branch=z9hG4bKagain");
    again.headers.set("Via", via);
    n.deliver(addr(DEV_ADDR), addr(PLAT_ADDR), &again.to_bytes());
    n.pump();
    let r: Vec<SipMessage> = n.inbox(DEV_ADDR);
    assert_eq!(statuses(&r), vec![401], "{r:?}");
    assert!(n.events_of(PLAT_ADDR).iter().all(|e| !matches!(
        e,
        PlatformEvent::Registered { from, .. } if *from != addr(DEV_ADDR)
    )));
}

#[test]
fn a_nonce_answers_only_the_source_and_call_id_it_was_issued_to() {
    let mut n = Net::new();
    n.add_platform(PLAT_ADDR, platform_config(PLAT));
    n.add_raw(5098, None);
    n.add_raw(5099, None);
    let r = to_platform(&mut n, 5098, &hand_register(5098, "call-a", 1, None));
    assert_eq!(statuses(&r), vec![401]);
    let creds = answer_401(&r[0], PW);
    // Right password, right nonce, but another host or another Call-ID.
    let r = to_platform(
        &mut n,
        5099,
        &hand_register(5099, "call-a", 2, Some(&creds)),
    );
    assert_eq!(statuses(&r), vec![401]);
    let r = to_platform(
        &mut n,
        5098,
        &hand_register(5098, "call-b", 2, Some(&creds)),
    );
    assert_eq!(statuses(&r), vec![401]);
    assert!(n.plat(PLAT_ADDR).registration(DEV).is_none());
    assert!(n.events_of(PLAT_ADDR).iter().any(|e| matches!(
        e,
        PlatformEvent::Rejected { status: 401, reason, .. }
            if reason.contains("replayed from 127.0.0.1:5099")
    )));
    // The host it was issued to can still use it, once.
    let r = to_platform(
        &mut n,
        5098,
        &hand_register(5098, "call-a", 3, Some(&creds)),
    );
    assert_eq!(statuses(&r), vec![200]);
    assert_eq!(
        n.plat(PLAT_ADDR).registration(DEV).unwrap().addr,
        addr(5098)
    );
    let r = to_platform(
        &mut n,
        5098,
        &hand_register(5098, "call-a", 4, Some(&creds)),
    );
    assert_eq!(statuses(&r), vec![401]);
}

#[test]
fn an_unparseable_expires_is_malformed_not_absent() {
    let mut n = Net::new();
    n.add_platform(PLAT_ADDR, platform_config(PLAT));
    n.add_raw(5098, None);
    let mut m = hand_register(5098, "call-x", 1, None);
    m.headers.set("Expires", "soon");
    let r = to_platform(&mut n, 5098, &m);
    assert_eq!(statuses(&r), vec![400], "{r:?}");
    let w = r[0].headers.get("Warning").unwrap_or_default();
    assert!(
        w.starts_with("399 ") && w.contains("Expires \\\"soon\\\""),
        "{w}"
    );
    assert!(n.events_of(PLAT_ADDR).iter().any(|e| matches!(
        e,
        PlatformEvent::Rejected { status: 400, reason, .. } if reason.contains("\"soon\"")
    )));
    assert!(n.plat(PLAT_ADDR).registration(DEV).is_none());
}

/// Many calls at once, as a load run's platform places them: every message
/// reaches its own session through the Call-ID index, every session's
/// deadline comes out of the heap, and finished ones leave the table.
#[test]
fn hundreds_of_calls_at_once_each_reach_their_own_session() {
    use crate::proto::gb28181::session::{SessionCommand, SessionEvent};
    const N: usize = 300;
    let t0 = Instant::now();
    let mut now = Now {
        mono: t0,
        wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap(),
    };
    let plat_addr = addr(PLAT_ADDR);
    let mut cfg = PlatformConfig::new(PLAT);
    cfg.local = plat_addr;
    let ids: Vec<String> = (0..N).map(|k| format!("340200000013200{k:05}")).collect();
    for id in &ids {
        cfg.devices.insert(id.clone(), PW.into());
    }
    let mut p = Platform::new(cfg);
    let dev_addr = |k: usize| addr(10_000 + k as u16);
    let mut devs: Vec<Device> = (0..N)
        .map(|k| {
            let mut c = DeviceConfig::new(&ids[k], PLAT, PW, dev_addr(k), plat_addr);
            c.seed = k as u64;
            c.keepalive_interval = Duration::from_secs(86400);
            Device::new(c)
        })
        .collect();
    // Deliver everything until quiet; devices answer offers at once.
    fn settle(
        p: &mut Platform,
        devs: &mut [Device],
        now: Now,
        dev_addr: &dyn Fn(usize) -> SocketAddr,
    ) {
        loop {
            let mut moved = false;
            while let Some(t) = p.poll_transmit() {
                moved = true;
                let k = (t.to.port() - 10_000) as usize;
                let m = SipMessage::parse(&t.bytes).unwrap().message;
                devs[k].handle_message_from(now, t.to, &m);
            }
            for (k, d) in devs.iter_mut().enumerate() {
                while let Some(e) = d.poll_event() {
                    if let DeviceEvent::Session {
                        call_id,
                        event: SessionEvent::Offer { .. },
                    } = e
                    {
                        d.apply_session(now, &call_id, SessionCommand::Accept(20_000));
                    }
                }
                while let Some(t) = d.poll_transmit() {
                    moved = true;
                    let m = SipMessage::parse(&t.bytes).unwrap().message;
                    p.handle_message(now, dev_addr(k), &m);
                }
            }
            if !moved {
                break;
            }
        }
    }
    for d in &mut devs {
        d.start(now);
    }
    settle(&mut p, &mut devs, now, &dev_addr);
    assert_eq!(p.registered_count(), N);
    while p.poll_event().is_some() {}
    for (k, id) in ids.iter().enumerate() {
        let ssrc = (100_000 + k).to_string();
        let a = args(&[("device_id", id), ("ssrc", &ssrc)]);
        p.trigger(now, "play", &a).unwrap();
        // The offer's port comes from the driver: the call asks first.
        let mut prepared = None;
        while let Some(e) = p.poll_event() {
            if let PlatformEvent::Session {
                call_id,
                event: SessionEvent::Prepare { .. },
            } = e
            {
                prepared = Some(call_id);
            }
        }
        let call_id = prepared.expect("each call asks for its port");
        p.apply_session(now, &call_id, SessionCommand::Accept(30_000 + k as u16));
    }
    settle(&mut p, &mut devs, now, &dev_addr);
    let mut started = BTreeMap::new();
    while let Some(e) = p.poll_event() {
        if let PlatformEvent::Session {
            call_id,
            event: SessionEvent::Started { negotiated, .. },
        } = e
        {
            started.insert(call_id, negotiated.ssrc.0);
        }
    }
    assert_eq!(started.len(), N, "every call started");
    // Each offer carried the SSRC it was given, and the answer kept it.
    let mut ssrcs: Vec<u32> = started.values().copied().collect();
    ssrcs.sort_unstable();
    assert_eq!(ssrcs, (100_000..100_000 + N as u32).collect::<Vec<_>>());
    assert_eq!(p.media_sessions().len(), N);
    // Hang up one in the middle by Call-ID: only it ends.
    let (victim, _) = started.iter().nth(N / 2).unwrap();
    p.trigger(now, "bye", &args(&[("call_id", victim)]))
        .unwrap();
    settle(&mut p, &mut devs, now, &dev_addr);
    let mut ended = Vec::new();
    while let Some(e) = p.poll_event() {
        if let PlatformEvent::Session {
            call_id,
            event: SessionEvent::Ended { .. },
        } = e
        {
            ended.push(call_id);
        }
    }
    assert_eq!(ended, std::slice::from_ref(victim));
    // Its transaction lingers for retransmissions, then the table lets it
    // go, waking for it out of the deadline heap.
    for _ in 0..100 {
        match p.poll_timeout() {
            Some(t) if t <= t0 + Duration::from_secs(120) => {
                now = now.after(t.saturating_duration_since(now.mono));
                p.handle_timeout(now);
                settle(&mut p, &mut devs, now, &dev_addr);
            }
            _ => break,
        }
    }
    let left = p.media_sessions();
    assert_eq!(left.len(), N - 1, "{left:?}");
    assert!(!left.contains(&Some(victim.clone())));
}
