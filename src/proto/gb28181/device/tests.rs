//! The device against a scripted platform in virtual time: no sockets and
//! no clock, so minutes of protocol time (keepalives, offline detection,
//! subscription expiry, redirect fallback) run in microseconds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::proto::gb28181::manscdp::{
    self, Body, CatalogCollector, CmdType, Message, Progress, RecordInfoCollector, ResultType, Root,
};
use crate::proto::gb28181::ptz::{PresetOp, PtzCmd};
use crate::proto::sip::NameAddr;

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";
const PLAT_A: &str = "34020000002000000002";

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn dev_addr() -> SocketAddr {
    addr(5070)
}

fn plat_addr() -> SocketAddr {
    addr(5060)
}

/// What the scripted platform answers to a request from the device.
type Policy = Box<dyn FnMut(&SipMessage, SocketAddr) -> Option<u16>>;

/// A message the device sent: when (virtual time since start), where, what.
#[derive(Debug, Clone)]
struct Sent {
    at: Duration,
    to: SocketAddr,
    msg: SipMessage,
}

struct World {
    now: Now,
    start: Instant,
    dev: Device,
    policy: Policy,
    /// Headers added to the platform's 2xx to REGISTER.
    sent: Vec<Sent>,
    events: Vec<(Duration, DeviceEvent)>,
    /// Responses the device sent to requests the test injected.
    cseq: u32,
}

/// Answer everything with 200.
fn all_ok() -> Policy {
    Box::new(|_, _| Some(200))
}

fn cfg() -> DeviceConfig {
    let mut c = DeviceConfig::new(DEV, PLAT, "12345678", dev_addr(), plat_addr());
    c.seed = 3;
    c
}

impl World {
    fn new(cfg: DeviceConfig, policy: Policy) -> World {
        let start = Instant::now();
        World {
            now: Now {
                mono: start,
                wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                    .unwrap()
                    .and_hms_opt(3, 4, 5)
                    .unwrap(),
            },
            start,
            dev: Device::new(cfg),
            policy,
            sent: Vec::new(),
            events: Vec::new(),
            cseq: 0,
        }
    }

    /// A registered device at t = 0.
    fn registered(cfg: DeviceConfig, policy: Policy) -> World {
        let mut w = World::new(cfg, policy);
        w.dev.start(w.now);
        w.pump();
        assert!(w.dev.is_registered(), "{:?}", w.events);
        w
    }

    fn elapsed(&self) -> Duration {
        self.now.mono - self.start
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.dev.poll_transmit() {
                moved = true;
                let Ok(p) = SipMessage::parse(&t.bytes) else {
                    continue;
                };
                let m = p.message;
                self.sent.push(Sent {
                    at: self.elapsed(),
                    to: t.to,
                    msg: m.clone(),
                });
                if m.is_request() {
                    if let Some(code) = (self.policy)(&m, t.to) {
                        let mut r = sip::response_to(&m, code, Some("plat-tag"));
                        if m.method() == Some("REGISTER") && code == 200 {
                            r.headers.push("Expires", "3600");
                        }
                        if code == 302 {
                            r.headers
                                .push("Contact", format!("<sip:{PLAT_A}@{}>", addr(5080)));
                            r.headers.push("Expires", "600");
                        }
                        let r = r.with_content_length();
                        self.dev.handle_message_from(self.now, t.to, &r);
                    }
                }
            }
            while let Some(e) = self.dev.poll_event() {
                self.events.push((self.elapsed(), e));
            }
            if !moved {
                break;
            }
        }
    }

    /// Run until `d` more of virtual time has passed.
    fn run(&mut self, d: Duration) {
        let until = self.now.mono + d;
        self.pump();
        while let Some(next) = self.dev.poll_timeout() {
            if next > until {
                break;
            }
            let step = next.saturating_duration_since(self.now.mono);
            self.now = self.now.after(step);
            self.dev.handle_timeout(self.now);
            self.pump();
        }
        let rest = until.saturating_duration_since(self.now.mono);
        self.now = self.now.after(rest);
    }

    /// Deliver a platform request to the device; returns the device's answer.
    fn request(&mut self, method: &str, headers: &[(&str, &str)], body: Option<&Message>) -> u16 {
        self.cseq += 1;
        let branch = format!("z9hG4bKtest{}", self.cseq);
        let mut m = crate::proto::gb28181::message::build_request(
            &crate::proto::gb28181::message::RequestParams {
                method,
                from_id: PLAT,
                to_id: DEV,
                domain: "3402000000",
                local: plat_addr(),
                remote: dev_addr(),
                transport: Transport::Udp,
                call_id: "plat-call-1",
                from_tag: "plat-from",
                to_tag: None,
                cseq: self.cseq,
                branch: &branch,
                user_agent: "test platform",
            },
        );
        for (k, v) in headers {
            m.headers.set(k, *v);
        }
        let m = match body {
            Some(b) => with_body(m, manscdp::CONTENT_TYPE, b.encode(manscdp::Charset::Utf8)),
            None => m.with_content_length(),
        };
        let before = self.sent.len();
        self.dev.handle_message_from(self.now, plat_addr(), &m);
        self.pump();
        self.sent[before..]
            .iter()
            .find(|s| s.msg.cseq().map(|c| c.seq) == Some(self.cseq) && !s.msg.is_request())
            .and_then(|s| s.msg.status())
            .expect("the device answered")
    }

    fn message(&mut self, body: &Message) -> u16 {
        self.request("MESSAGE", &[], Some(body))
    }

    /// MANSCDP bodies of MESSAGEs the device sent since index `from`.
    fn manscdp_since(&self, from: usize, cmd: CmdType) -> Vec<Message> {
        self.sent[from..]
            .iter()
            .filter(|s| s.msg.method() == Some("MESSAGE"))
            .filter_map(|s| Message::decode(&s.msg.body).ok())
            .filter(|d| {
                // A clean device writes no body with errors.
                if self.dev.config().faults == DeviceFaults::default() {
                    assert!(d.errors().next().is_none(), "{:?}", d.findings);
                }
                d.message.cmd_type.as_ref() == Some(&cmd)
            })
            .map(|d| d.message)
            .collect()
    }

    fn requests(&self, method: &str) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.msg.method() == Some(method))
            .collect()
    }

    /// Keepalives sent, retransmissions left out.
    fn keepalives(&self) -> Vec<(Duration, Message)> {
        let mut seen = std::collections::HashSet::new();
        self.requests("MESSAGE")
            .into_iter()
            .filter(|s| seen.insert(s.msg.headers.get("Via").unwrap_or("").to_string()))
            .filter_map(|s| Some((s.at, Message::parse(&s.msg.body).ok()?)))
            .filter(|(_, m)| m.cmd_type == Some(CmdType::Keepalive))
            .collect()
    }
}

fn is_keepalive(m: &SipMessage) -> bool {
    m.method() == Some("MESSAGE") && m.body.windows(9).any(|w| w == b"Keepalive")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn unique_transactions(s: &[&Sent]) -> usize {
    let mut b: Vec<_> = s
        .iter()
        .map(|s| s.msg.headers.get("Via").unwrap().to_string())
        .collect();
    b.sort();
    b.dedup();
    b.len()
}

// --- §保活 ---

#[test]
fn three_keepalives_in_three_minutes_with_rising_sn() {
    let real = Instant::now();
    let mut w = World::registered(cfg(), all_ok());
    w.run(secs(3 * 60 + 5));
    let ka = w.keepalives();
    assert_eq!(
        ka.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![secs(60), secs(120), secs(180)]
    );
    let sns: Vec<u64> = ka.iter().map(|(_, m)| m.sn.unwrap()).collect();
    assert!(sns.windows(2).all(|p| p[1] > p[0]), "{sns:?}");
    for (_, m) in &ka {
        assert_eq!(m.root, Root::Notify);
        assert_eq!(m.device_id.as_deref(), Some(DEV));
        assert_eq!(m.get("Status").as_deref(), Some("OK"));
    }
    let first = w.requests("MESSAGE")[0];
    assert_eq!(
        first.msg.uri(),
        Some("sip:34020000002000000001@127.0.0.1:5060")
    );
    assert_eq!(
        first.msg.headers.get("Content-Type"),
        Some("Application/MANSCDP+xml")
    );
    // Three minutes of protocol time take (much) less than a second.
    assert!(real.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_late_answer_to_an_earlier_keepalive_does_not_count_for_the_current_one() {
    // Keepalives every 10 s, none answered in time; the first one's 200
    // comes after the second was sent, while its transaction still lives.
    // Even when every keepalive carries the same SN (the fault), that
    // answer is the first one's: offline after three misses, at 40 s.
    for same_sn in [false, true] {
        let mut c = cfg();
        c.keepalive_interval = secs(10);
        c.faults.keepalive_same_sn = same_sn;
        let mut w = World::registered(
            c,
            Box::new(|m, _| if is_keepalive(m) { None } else { Some(200) }),
        );
        w.run(secs(21));
        let first = w.requests("MESSAGE")[0].msg.clone();
        let late = sip::response_to(&first, 200, Some("plat-tag")).with_content_length();
        w.dev.handle_message_from(w.now, plat_addr(), &late);
        w.pump();
        w.run(secs(50));
        let offline: Vec<_> = w
            .events
            .iter()
            .filter(|(_, e)| matches!(e, DeviceEvent::PlatformOffline { .. }))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(
            offline.first(),
            Some(&secs(40)),
            "same SN: {same_sn}: {:?}",
            w.events
        );
    }
}

#[test]
fn three_missed_keepalives_mean_offline_and_a_fresh_registration() {
    for answer in [None, Some(404)] {
        let mut w = World::registered(
            cfg(),
            Box::new(move |m, _| if is_keepalive(m) { answer } else { Some(200) }),
        );
        w.run(secs(250));
        let offline: Vec<_> = w
            .events
            .iter()
            .filter(|(_, e)| matches!(e, DeviceEvent::PlatformOffline { missed: 3 }))
            .collect();
        assert_eq!(offline.len(), 1, "{answer:?}: {:?}", w.events);
        assert_eq!(offline[0].0, secs(240));
        let regs = w.requests("REGISTER");
        assert_eq!(regs.len(), 2, "{answer:?}");
        assert_eq!(regs[1].at, secs(240));
        assert!(!regs[1].msg.headers.contains("Authorization"));
        // Keepalives start over after the new registration.
        w.run(secs(61));
        assert_eq!(w.keepalives().last().unwrap().0, secs(300));
    }
}

#[test]
fn an_answered_keepalive_resets_the_miss_count() {
    let mut n = 0;
    let mut w = World::registered(
        cfg(),
        Box::new(move |m, _| {
            if is_keepalive(m) {
                n += 1;
                // Answer only every third keepalive: never three misses in a row.
                (n % 3 == 0).then_some(200)
            } else {
                Some(200)
            }
        }),
    );
    w.run(secs(20 * 60));
    assert!(!w
        .events
        .iter()
        .any(|(_, e)| matches!(e, DeviceEvent::PlatformOffline { .. })));
    assert_eq!(w.requests("REGISTER").len(), 1);
}

#[test]
fn keepalive_faults() {
    let silent = || -> Policy { Box::new(|m, _| if is_keepalive(m) { None } else { Some(200) }) };
    let mut c = cfg();
    c.faults.no_offline_detection = true;
    let mut w = World::registered(c, silent());
    w.run(secs(600));
    assert_eq!(w.requests("REGISTER").len(), 1);
    assert_eq!(w.keepalives().len(), 10);

    let mut c = cfg();
    c.faults.slow_keepalive = true;
    let mut w = World::registered(c, all_ok());
    w.run(secs(250));
    let at: Vec<_> = w.keepalives().iter().map(|(t, _)| *t).collect();
    assert_eq!(at, vec![secs(120), secs(240)]);

    let mut c = cfg();
    c.faults.keepalive_same_sn = true;
    let mut w = World::registered(c, all_ok());
    w.run(secs(200));
    let sns: Vec<_> = w.keepalives().iter().map(|(_, m)| m.sn).collect();
    assert_eq!(sns.len(), 3);
    assert!(sns.iter().all(|s| *s == sns[0]));

    let mut c = cfg();
    c.faults.no_keepalive = true;
    let mut w = World::registered(c, all_ok());
    w.run(secs(600));
    assert!(w.keepalives().is_empty());
}

#[test]
fn faulty_subdevices_are_listed_with_status_error() {
    let mut c = cfg();
    c.apply_option("faulty_subdevices", "1").unwrap();
    let mut w = World::registered(c, all_ok());
    w.run(secs(61));
    let (_, m) = &w.keepalives()[0];
    assert_eq!(m.get("Status").as_deref(), Some("ERROR"));
    assert_eq!(
        m.get("Info/DeviceID").as_deref(),
        Some("34020000001310010001")
    );
    // A new fault is reported at once, not at the next interval.
    let mut args = BTreeMap::new();
    args.insert("channel".to_string(), "2".to_string());
    w.dev.trigger(w.now, "subdevice-fault", &args).unwrap();
    w.pump();
    let (at, m) = w.keepalives().last().cloned().unwrap();
    assert_eq!(at, secs(61));
    assert_eq!(m.count("Info/DeviceID"), 2);
    w.dev
        .trigger(w.now, "subdevice-recover", &BTreeMap::new())
        .unwrap();
    w.dev.trigger(w.now, "subdevice-recover", &args).unwrap();
    w.pump();
    let (_, m) = w.keepalives().last().cloned().unwrap();
    assert_eq!(m.get("Status").as_deref(), Some("OK"));
    assert_eq!(m.count("Info"), 0);

    let mut c = cfg();
    c.apply_option("faulty_subdevices", "1").unwrap();
    c.faults.keepalive_hide_faults = true;
    let mut w = World::registered(c, all_ok());
    w.run(secs(61));
    assert_eq!(w.keepalives()[0].1.get("Status").as_deref(), Some("OK"));
}

#[test]
fn unanswered_keepalives_are_retransmitted_over_udp_only() {
    let silent: fn() -> Policy = || Box::new(|m, _| if is_keepalive(m) { None } else { Some(200) });
    let mut w = World::registered(cfg(), silent());
    w.run(secs(65));
    let ka: Vec<_> = w.requests("MESSAGE");
    // 60, 60.5, 61.5, 63.5 s: T1 doubling.
    let at: Vec<f64> = ka.iter().map(|s| s.at.as_secs_f64()).collect();
    assert_eq!(at, vec![60.0, 60.5, 61.5, 63.5]);
    assert_eq!(unique_transactions(&ka), 1);

    let mut c = cfg();
    c.transport = Transport::Tcp;
    let mut w = World::registered(c, silent());
    w.run(secs(65));
    assert_eq!(w.requests("MESSAGE").len(), 1);
}

#[test]
fn keepalives_stop_after_unregistering() {
    let mut w = World::registered(cfg(), all_ok());
    w.run(secs(61));
    w.dev.unregister(w.now);
    w.run(secs(300));
    assert_eq!(w.keepalives().len(), 1);
}

// --- §设备查询 ---

#[test]
fn catalog_is_paged_and_adds_up_to_sumnum() {
    let mut c = cfg();
    c.catalog_items = 5;
    c.catalog_page_size = 2;
    let mut w = World::registered(c, all_ok());
    let q = Message::query(CmdType::Catalog, 471, DEV);
    let from = w.sent.len();
    assert_eq!(w.message(&q), 200);
    let pages = w.manscdp_since(from, CmdType::Catalog);
    assert_eq!(pages.len(), 3);
    let mut col = CatalogCollector::for_query(&q);
    let mut last = Progress::Ignored;
    for p in &pages {
        assert_eq!(p.root, Root::Response);
        assert_eq!(p.device_id.as_deref(), Some(DEV));
        last = col.push(p);
    }
    assert_eq!(last, Progress::Complete { received: 5 });
    assert!(col.findings().is_empty(), "{:?}", col.findings());
    let ids: Vec<_> = col
        .items()
        .iter()
        .map(|i| i.device_id.clone().unwrap())
        .collect();
    assert_eq!(ids[0], "34020000001310010001");
    assert_eq!(ids[4], "34020000001310050001");
    // Each Response is its own MESSAGE transaction, answered 200 by the platform.
    assert!(w.dev.txns.deadline(true).is_none());
}

#[test]
fn catalog_faults_break_paging() {
    for (fault, code) in [
        ("catalog-wrong-sumnum", manscdp::FindingCode::Incomplete),
        ("catalog-wrong-num", manscdp::FindingCode::ListNumMismatch),
        ("catalog-duplicate", manscdp::FindingCode::DuplicateItem),
    ] {
        let mut c = cfg();
        c.catalog_items = 5;
        c.catalog_page_size = 2;
        assert!(c.faults.set(fault));
        let mut w = World::registered(c, all_ok());
        let q = Message::query(CmdType::Catalog, 9, DEV);
        let from = w.sent.len();
        w.message(&q);
        let mut col = CatalogCollector::for_query(&q);
        for p in w.manscdp_since(from, CmdType::Catalog) {
            col.push(&p);
        }
        let (_, findings) = col.finish();
        assert!(
            findings.iter().any(|f| f.code == code),
            "{fault}: {findings:?}"
        );
    }
}

#[test]
fn a_query_for_someone_else_gets_404_and_no_response() {
    let mut w = World::registered(cfg(), all_ok());
    let from = w.sent.len();
    let q = Message::query(CmdType::DeviceInfo, 5, "34020000001329999999");
    assert_eq!(w.message(&q), 404);
    assert!(w.manscdp_since(from, CmdType::DeviceInfo).is_empty());
    let mut c = cfg();
    c.faults.answer_unknown_device = true;
    let mut w = World::registered(c, all_ok());
    assert_eq!(w.message(&q), 200);
}

#[test]
fn device_info_status_config_and_presets_echo_sn_and_device_id() {
    let mut c = cfg();
    c.alarm_inputs = 2;
    let mut w = World::registered(c, all_ok());
    for (cmd, sn) in [
        (CmdType::DeviceInfo, 11),
        (CmdType::DeviceStatus, 12),
        (CmdType::PresetQuery, 13),
    ] {
        let from = w.sent.len();
        assert_eq!(w.message(&Message::query(cmd.clone(), sn, DEV)), 200);
        let r = w.manscdp_since(from, cmd.clone());
        assert_eq!(r.len(), 1, "{cmd:?}");
        assert_eq!(r[0].sn, Some(sn));
        assert_eq!(r[0].device_id.as_deref(), Some(DEV));
        assert_eq!(r[0].root, Root::Response);
    }
    let from = w.sent.len();
    w.message(&Message::query(CmdType::DeviceStatus, 14, DEV));
    let st = &w.manscdp_since(from, CmdType::DeviceStatus)[0];
    assert_eq!(st.get("Online").as_deref(), Some("ONLINE"));
    assert_eq!(st.get("Alarmstatus@Num").as_deref(), Some("2"));
    assert_eq!(st.get("DeviceTime").as_deref(), Some("2026-01-02T03:04:05"));

    let mut q = Message::query(CmdType::ConfigDownload, 15, DEV);
    if let Body::ConfigDownloadQuery(c) = &mut q.body {
        c.config_type = Some("BasicParam".into());
    }
    let from = w.sent.len();
    w.message(&q);
    let r = &w.manscdp_since(from, CmdType::ConfigDownload)[0];
    assert_eq!(r.get("Result").as_deref(), Some("OK"));
    assert_eq!(r.get("BasicParam/HeartBeatInterval").as_deref(), Some("60"));
    assert_eq!(r.get("BasicParam/HeartBeatCount").as_deref(), Some("3"));
    assert_eq!(r.get("BasicParam/SIPServerID").as_deref(), Some(PLAT));
}

#[test]
fn retransmitted_query_is_answered_again_but_acted_on_once() {
    let mut w = World::registered(cfg(), all_ok());
    let q = Message::query(CmdType::DeviceInfo, 21, DEV);
    let from = w.sent.len();
    w.message(&q);
    // Same branch and CSeq again.
    w.cseq -= 1;
    assert_eq!(w.message(&q), 200);
    assert_eq!(w.manscdp_since(from, CmdType::DeviceInfo).len(), 1);
    let oks = w.sent[from..]
        .iter()
        .filter(|s| s.msg.status() == Some(200))
        .count();
    assert_eq!(oks, 2);
}

fn record_query(sn: u64, start: &str, end: &str) -> Message {
    let mut q = Message::query(CmdType::RecordInfo, sn, channel_id(DEV, 1));
    if let Body::RecordInfoQuery(r) = &mut q.body {
        r.start_time = Some(start.into());
        r.end_time = Some(end.into());
    }
    q
}

#[test]
fn record_info_lists_recordings_inside_the_window_in_pages() {
    let mut c = cfg();
    c.record_page_size = 3;
    let mut w = World::registered(c, all_ok());
    let q = record_query(31, "2026-01-01T08:00:00", "2026-01-01T13:30:00");
    let from = w.sent.len();
    w.message(&q);
    let pages = w.manscdp_since(from, CmdType::RecordInfo);
    assert_eq!(pages.len(), 2);
    let mut col = RecordInfoCollector::for_query(&q);
    for p in &pages {
        col.push(p);
    }
    assert!(col.is_complete());
    assert!(col.findings().is_empty());
    assert_eq!(col.items().len(), 6);
    for it in col.items() {
        let s = it.start_time.as_deref().unwrap();
        let e = it.end_time.as_deref().unwrap();
        assert!(
            s >= "2026-01-01T08:00:00" && e <= "2026-01-01T13:30:00",
            "{s}..{e}"
        );
    }
    let mut c = cfg();
    c.faults.record_outside_window = true;
    let mut w = World::registered(c, all_ok());
    let from = w.sent.len();
    w.message(&q);
    let p = &w.manscdp_since(from, CmdType::RecordInfo)[0];
    assert!(p.get("RecordList/Item/StartTime").unwrap().as_str() < "2026-01-01T08:00:00");
}

// --- §设备控制 ---

fn control(sn: u64, f: impl FnOnce(&mut manscdp::DeviceControl)) -> Message {
    let mut c = manscdp::DeviceControl::default();
    f(&mut c);
    Message::new(sn, DEV, Body::DeviceControl(c))
}

fn presets(w: &mut World) -> Vec<String> {
    let from = w.sent.len();
    w.message(&Message::query(CmdType::PresetQuery, 99, DEV));
    let r = &w.manscdp_since(from, CmdType::PresetQuery)[0];
    (0..r.count("PresetList/Item"))
        .map(|i| r.get(&format!("PresetList/Item[{i}]/PresetID")).unwrap())
        .collect()
}

#[test]
fn ptz_is_acted_on_silently_and_a_bad_checksum_is_not() {
    let good = PtzCmd::preset(PresetOp::Set, 7).to_hex().unwrap();
    let mut bad = good.clone();
    bad.replace_range(14..16, "00");
    let mut w = World::registered(cfg(), all_ok());
    let from = w.sent.len();
    assert_eq!(
        w.message(&control(41, |c| c.ptz_cmd = Some(good.clone()))),
        200
    );
    assert!(w.manscdp_since(from, CmdType::DeviceControl).is_empty());
    assert_eq!(presets(&mut w), vec!["1", "2", "7"]);

    let mut c = cfg();
    c.presets = 0;
    let mut w = World::registered(c.clone(), all_ok());
    assert_eq!(
        w.message(&control(42, |c| c.ptz_cmd = Some(bad.clone()))),
        200
    );
    assert!(presets(&mut w).is_empty());
    assert!(w
        .events
        .iter()
        .any(|(_, e)| matches!(e, DeviceEvent::ControlRejected { .. })));

    c.faults.ptz_accept_bad_checksum = true;
    let mut w = World::registered(c, all_ok());
    w.message(&control(43, |c| c.ptz_cmd = Some(bad.clone())));
    assert_eq!(presets(&mut w), vec!["7"]);
}

#[test]
fn record_guard_and_alarm_controls_get_a_result() {
    let mut w = World::registered(cfg(), all_ok());
    let from = w.sent.len();
    w.message(&control(51, |c| {
        c.record_cmd = Some(manscdp::RecordCmd::Record)
    }));
    w.message(&control(52, |c| {
        c.guard_cmd = Some(manscdp::GuardCmd::SetGuard)
    }));
    w.message(&control(53, |c| {
        c.alarm_cmd = Some(manscdp::AlarmCmd::ResetAlarm)
    }));
    w.message(&control(54, |c| {
        c.i_frame_cmd = Some(manscdp::IFrameCmd::Send)
    }));
    let r = w.manscdp_since(from, CmdType::DeviceControl);
    assert_eq!(
        r.iter().map(|m| m.sn.unwrap()).collect::<Vec<_>>(),
        vec![51, 52, 53]
    );
    assert!(r.iter().all(|m| m.get("Result").as_deref() == Some("OK")));
    let from = w.sent.len();
    w.message(&Message::query(CmdType::DeviceStatus, 55, DEV));
    let st = &w.manscdp_since(from, CmdType::DeviceStatus)[0];
    assert_eq!(st.get("Record").as_deref(), Some("ON"));
    assert_eq!(
        st.get("Alarmstatus/Item/DutyStatus").as_deref(),
        Some("ONDUTY")
    );
}

#[test]
fn teleboot_restarts_and_registers_afresh() {
    let mut w = World::registered(cfg(), all_ok());
    let first = w.requests("REGISTER")[0].msg.call_id().unwrap().to_string();
    w.message(&control(61, |c| {
        c.tele_boot = Some(manscdp::TeleBoot::Boot)
    }));
    w.run(secs(10));
    let regs = w.requests("REGISTER");
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[1].at, secs(5));
    assert_ne!(regs[1].msg.call_id().unwrap(), first);
    assert!(w
        .events
        .iter()
        .any(|(t, e)| *t == secs(0) && matches!(e, DeviceEvent::Rebooting)));

    let mut c = cfg();
    c.faults.no_teleboot = true;
    let mut w = World::registered(c, all_ok());
    w.message(&control(61, |c| {
        c.tele_boot = Some(manscdp::TeleBoot::Boot)
    }));
    w.run(secs(10));
    assert_eq!(w.requests("REGISTER").len(), 1);
}

/// Deliver a control MESSAGE from `from` with From user `from_id`; the
/// device's answer.
fn control_from(w: &mut World, from: SocketAddr, from_id: &str, body: &Message) -> u16 {
    w.cseq += 1;
    let branch = format!("z9hG4bKother{}", w.cseq);
    let m = crate::proto::gb28181::message::build_request(
        &crate::proto::gb28181::message::RequestParams {
            method: "MESSAGE",
            from_id,
            to_id: DEV,
            domain: "3402000000",
            local: from,
            remote: dev_addr(),
            transport: Transport::Udp,
            call_id: "other-call",
            from_tag: "other-from",
            to_tag: None,
            cseq: w.cseq,
            branch: &branch,
            user_agent: "someone else",
        },
    );
    let m = with_body(
        m,
        manscdp::CONTENT_TYPE,
        body.encode(manscdp::Charset::Utf8),
    );
    let before = w.sent.len();
    w.dev.handle_message_from(w.now, from, &m);
    w.pump();
    w.sent[before..]
        .iter()
        .find(|s| s.msg.cseq().map(|c| c.seq) == Some(w.cseq) && !s.msg.is_request())
        .and_then(|s| s.msg.status())
        .expect("the device answered")
}

#[test]
fn an_unparseable_expires_in_the_200_is_a_finding_naming_it() {
    let mut w = World::new(cfg(), Box::new(|_, _| None));
    w.dev.start(w.now);
    w.pump();
    let reg = w.requests("REGISTER")[0].msg.clone();
    let r = sip::response_to(&reg, 200, Some("plat-tag"));
    let mut r = r.with_content_length();
    r.headers.push("Expires", "forever");
    w.dev.handle_message_from(w.now, plat_addr(), &r);
    w.pump();
    let found = w.events.iter().find_map(|(_, e)| match e {
        DeviceEvent::Registered {
            expires, findings, ..
        } => Some((*expires, findings.clone())),
        _ => None,
    });
    let (expires, findings) = found.expect("registered");
    assert_eq!(expires, 3600);
    assert!(
        findings
            .iter()
            .any(|f| f.code == "sip.expires-malformed" && f.message.contains("\"forever\"")),
        "{findings:?}"
    );
}

#[test]
fn only_the_registrar_can_reboot_the_camera() {
    let boot = |sn| control(sn, |c| c.tele_boot = Some(manscdp::TeleBoot::Boot));
    let mut w = World::registered(cfg(), all_ok());
    // Another host, even naming the platform ID: 403, no reboot.
    assert_eq!(control_from(&mut w, addr(6666), PLAT, &boot(61)), 403);
    // The registrar's address with someone else's ID: 403 too.
    assert_eq!(
        control_from(&mut w, plat_addr(), "34020000002000000999", &boot(62)),
        403
    );
    w.run(secs(10));
    assert_eq!(w.requests("REGISTER").len(), 1, "no restart");
    assert!(!w
        .events
        .iter()
        .any(|(_, e)| matches!(e, DeviceEvent::Rebooting)));
    let reasons: Vec<&str> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            DeviceEvent::ControlRejected { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        reasons[0].contains("127.0.0.1:6666") && reasons[1].contains("34020000002000000999"),
        "{reasons:?}"
    );
    // Other controls are refused the same way: a preset set from elsewhere.
    let before = presets(&mut w);
    let set = control(63, |c| {
        c.ptz_cmd = Some(PtzCmd::preset(PresetOp::Set, 9).to_hex().unwrap())
    });
    assert_eq!(control_from(&mut w, addr(6666), PLAT, &set), 403);
    assert_eq!(presets(&mut w), before);
    // The registrar itself is obeyed.
    assert_eq!(w.message(&boot(64)), 200);
    w.run(secs(10));
    assert_eq!(w.requests("REGISTER").len(), 2);
}

#[test]
fn device_config_applies_basic_params_and_reports_snapshots() {
    let mut w = World::registered(cfg(), all_ok());
    let basic = manscdp::DeviceConfig {
        basic_param: Some(manscdp::BasicParam {
            heart_beat_interval: Some(30),
            ..Default::default()
        }),
        ..Default::default()
    };
    let from = w.sent.len();
    w.message(&Message::new(71, DEV, Body::DeviceConfig(basic)));
    let r = &w.manscdp_since(from, CmdType::DeviceConfig)[0];
    assert_eq!(r.get("Result").as_deref(), Some("OK"));
    // The next keepalive is still due at 60 s; the ones after it every 30 s.
    w.run(secs(125));
    let at: Vec<_> = w.keepalives().iter().map(|(t, _)| *t).collect();
    assert_eq!(at, vec![secs(60), secs(90), secs(120)]);

    let session = "0123456789abcdef0123456789ABCDEF-1";
    let snap = manscdp::DeviceConfig {
        snap_shot_config: Some(manscdp::SnapShotConfig {
            snap_num: Some(3),
            interval: Some(2),
            upload_url: Some("http://192.0.2.1/upload".into()),
            session_id: Some(session.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let from = w.sent.len();
    let t0 = w.elapsed();
    w.message(&Message::new(72, DEV, Body::DeviceConfig(snap)));
    w.run(secs(10));
    assert_eq!(
        w.manscdp_since(from, CmdType::DeviceConfig)[0]
            .get("Result")
            .as_deref(),
        Some("OK")
    );
    let done: Vec<_> = w.sent[from..]
        .iter()
        .filter(|s| {
            s.msg
                .body
                .windows(22)
                .any(|x| x == b"UploadSnapShotFinished")
        })
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].at - t0, secs(6));
    let m = Message::parse(&done[0].msg.body).unwrap();
    assert_eq!(m.get("SessionID").as_deref(), Some(session));
    assert_eq!(m.count("SnapShotList/SnapShotFileID"), 3);

    // An invalid SessionID is refused with Result ERROR and nothing is reported.
    let bad = manscdp::DeviceConfig {
        snap_shot_config: Some(manscdp::SnapShotConfig {
            snap_num: Some(1),
            interval: Some(1),
            upload_url: Some("http://192.0.2.1/upload".into()),
            session_id: Some("short".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let from = w.sent.len();
    w.message(&Message::new(73, DEV, Body::DeviceConfig(bad)));
    w.run(secs(5));
    let r = w.manscdp_since(from, CmdType::DeviceConfig);
    assert_eq!(r[0].get("Result").as_deref(), Some("ERROR"));
    assert!(w
        .manscdp_since(from, CmdType::UploadSnapShotFinished)
        .is_empty());
}

// --- notifications ---

#[test]
fn alarm_goes_to_the_server_and_its_response_is_answered() {
    let mut w = World::registered(cfg(), all_ok());
    let from = w.sent.len();
    let mut args = BTreeMap::new();
    args.insert("priority".to_string(), "2".to_string());
    w.dev.trigger(w.now, "alarm", &args).unwrap();
    w.pump();
    let a = &w.manscdp_since(from, CmdType::Alarm)[0];
    assert_eq!(a.root, Root::Notify);
    assert_eq!(a.get("AlarmPriority").as_deref(), Some("2"));
    assert_eq!(a.get("AlarmMethod").as_deref(), Some("5"));
    assert_eq!(a.get("AlarmTime").as_deref(), Some("2026-01-02T03:04:05"));
    let resp = a.reply_result(ResultType::Ok);
    assert_eq!(w.message(&resp), 200);
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        DeviceEvent::AlarmAcknowledged { result: Some(r), .. } if r == "OK"
    )));
}

#[test]
fn an_alarm_response_inside_the_200_is_an_acknowledgement_too() {
    let mut w = World::registered(cfg(), all_ok());
    w.dev.trigger(w.now, "alarm", &BTreeMap::new()).unwrap();
    // The scripted platform answered 200 without a body: no acknowledgement yet.
    w.pump();
    assert!(!w
        .events
        .iter()
        .any(|(_, e)| matches!(e, DeviceEvent::AlarmAcknowledged { .. })));
    w.dev.trigger(w.now, "alarm", &BTreeMap::new()).unwrap();
    let t = w.dev.poll_transmit().unwrap();
    let req = SipMessage::parse(&t.bytes).unwrap().message;
    let alarm = Message::parse(&req.body).unwrap();
    let body = alarm
        .reply_result(ResultType::Ok)
        .encode(manscdp::Charset::Utf8);
    let ok = with_body(
        sip::response_to(&req, 200, Some("p")),
        manscdp::CONTENT_TYPE,
        body,
    );
    w.dev.handle_message_from(w.now, plat_addr(), &ok);
    w.pump();
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        DeviceEvent::AlarmAcknowledged { sn, .. } if *sn == alarm.sn
    )));
}

#[test]
fn broadcast_is_answered_with_a_result_for_the_target() {
    let mut w = World::registered(cfg(), all_ok());
    let from = w.sent.len();
    assert_eq!(w.message(&Message::broadcast(81, PLAT, DEV)), 200);
    let r = &w.manscdp_since(from, CmdType::Broadcast)[0];
    assert_eq!(r.device_id.as_deref(), Some(DEV));
    assert_eq!(r.get("Result").as_deref(), Some("OK"));
    assert_eq!(
        w.message(&Message::broadcast(82, PLAT, "34020000001329999999")),
        404
    );
}

// --- §订阅与取订 ---

fn subscribe_body(cmd: CmdType) -> Message {
    Message::query(cmd, 91, DEV)
}

fn catalog_change(w: &mut World, event: &str) {
    let mut args = BTreeMap::new();
    args.insert("event".to_string(), event.to_string());
    w.dev.trigger(w.now, "catalog-change", &args).unwrap();
    w.pump();
}

#[test]
fn catalog_subscription_notifies_in_its_dialog_until_unsubscribed() {
    let mut w = World::registered(cfg(), all_ok());
    let from = w.sent.len();
    let code = w.request(
        "SUBSCRIBE",
        &[("Event", "Catalog"), ("Expires", "600")],
        Some(&subscribe_body(CmdType::Catalog)),
    );
    assert_eq!(code, 200);
    let ok = w.sent[from..]
        .iter()
        .find(|s| s.msg.status() == Some(200))
        .unwrap();
    assert_eq!(ok.msg.headers.get("Expires"), Some("600"));
    assert_eq!(ok.msg.headers.get("Event"), Some("Catalog"));
    let our_tag = NameAddr::parse(ok.msg.headers.get("To").unwrap())
        .unwrap()
        .tag()
        .unwrap()
        .to_string();
    // No NOTIFY until something changes.
    assert!(w.requests("NOTIFY").is_empty());
    catalog_change(&mut w, "ADD");
    let n = w.requests("NOTIFY");
    assert_eq!(n.len(), 1);
    let n = &n[0].msg;
    assert_eq!(n.call_id(), Some("plat-call-1"));
    let from_h = NameAddr::parse(n.headers.get("From").unwrap()).unwrap();
    let to_h = NameAddr::parse(n.headers.get("To").unwrap()).unwrap();
    assert_eq!(from_h.tag(), Some(our_tag.as_str()));
    assert_eq!(to_h.tag(), Some("plat-from"));
    assert_eq!(n.headers.get("Event"), Some("Catalog"));
    assert!(n
        .headers
        .get("Subscription-State")
        .unwrap()
        .starts_with("active"));
    let body = Message::parse(&n.body).unwrap();
    assert_eq!(body.get("DeviceList/Item/Event").as_deref(), Some("ADD"));
    assert_eq!(
        body.get("DeviceList/Item/DeviceID").as_deref(),
        Some("34020000001310020001")
    );
    // The new channel shows up in the catalog.
    let from = w.sent.len();
    w.message(&Message::query(CmdType::Catalog, 92, DEV));
    assert_eq!(
        w.manscdp_since(from, CmdType::Catalog)[0]
            .get("SumNum")
            .as_deref(),
        Some("2")
    );
    // Unsubscribe.
    let tagged = format!("<sip:{DEV}@3402000000>;tag={our_tag}");
    let code = w.request(
        "SUBSCRIBE",
        &[("Event", "Catalog"), ("Expires", "0"), ("To", &tagged)],
        Some(&subscribe_body(CmdType::Catalog)),
    );
    assert_eq!(code, 200);
    assert_eq!(w.dev.subscription_count(), 0);
    catalog_change(&mut w, "OFF");
    assert_eq!(w.requests("NOTIFY").len(), 1);
    // An in-dialog SUBSCRIBE for a subscription that is gone: 481.
    let code = w.request("SUBSCRIBE", &[("Event", "Catalog"), ("To", &tagged)], None);
    assert_eq!(code, 481);
}

#[test]
fn subscriptions_expire_unless_refreshed() {
    let mut w = World::registered(cfg(), all_ok());
    w.request(
        "SUBSCRIBE",
        &[("Event", "Catalog"), ("Expires", "60")],
        Some(&subscribe_body(CmdType::Catalog)),
    );
    w.run(secs(50));
    // Refresh (same Call-ID and From tag) for another 60 s.
    w.request(
        "SUBSCRIBE",
        &[("Event", "Catalog"), ("Expires", "60")],
        Some(&subscribe_body(CmdType::Catalog)),
    );
    w.run(secs(20));
    catalog_change(&mut w, "OFF");
    assert_eq!(w.requests("NOTIFY").len(), 1);
    w.run(secs(41));
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        DeviceEvent::SubscriptionEnded { reason, .. } if reason == "expired"
    )));
    catalog_change(&mut w, "ON");
    assert_eq!(w.requests("NOTIFY").len(), 1);
}

#[test]
fn alarm_subscription_gets_matching_alarms_as_notify() {
    let mut w = World::registered(cfg(), all_ok());
    let mut q = subscribe_body(CmdType::Alarm);
    if let Body::AlarmQuery(a) = &mut q.body {
        a.start_alarm_priority = Some(1);
        a.end_alarm_priority = Some(2);
        a.alarm_method = Some("5".into());
    }
    let code = w.request(
        "SUBSCRIBE",
        &[("Event", "presence;id=7"), ("Expires", "3600")],
        Some(&q),
    );
    assert_eq!(code, 200);
    for p in ["1", "4"] {
        let mut args = BTreeMap::new();
        args.insert("priority".to_string(), p.to_string());
        w.dev.trigger(w.now, "alarm", &args).unwrap();
        w.pump();
    }
    let n = w.requests("NOTIFY");
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].msg.headers.get("Event"), Some("presence;id=7"));
    let body = Message::parse(&n[0].msg.body).unwrap();
    assert_eq!(body.get("AlarmPriority").as_deref(), Some("1"));
    // Both alarms still went to the server as MESSAGEs.
    assert_eq!(w.manscdp_since(0, CmdType::Alarm).len(), 2);
}

#[test]
fn subscribe_faults() {
    let mut c = cfg();
    c.faults.no_subscribe = true;
    let mut w = World::registered(c, all_ok());
    let code = w.request("SUBSCRIBE", &[("Event", "Catalog")], None);
    assert_eq!(code, 489);

    let mut c = cfg();
    c.faults.notify_outside_dialog = true;
    let mut w = World::registered(c, all_ok());
    w.request("SUBSCRIBE", &[("Event", "Catalog")], None);
    catalog_change(&mut w, "OFF");
    assert_ne!(w.requests("NOTIFY")[0].msg.call_id(), Some("plat-call-1"));

    // Unknown event package.
    let mut w = World::registered(cfg(), all_ok());
    assert_eq!(w.request("SUBSCRIBE", &[("Event", "dialog")], None), 489);
}

// --- §注册重定向 ---

fn redirecting() -> Policy {
    Box::new(|m, to| {
        if m.method() != Some("REGISTER") {
            return Some(200);
        }
        Some(if to == plat_addr() { 302 } else { 200 })
    })
}

#[test]
fn redirect_then_register_to_server_a() {
    let mut w = World::new(cfg(), redirecting());
    w.dev.start(w.now);
    w.pump();
    let regs = w.requests("REGISTER");
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[1].to, addr(5080));
    assert_eq!(
        regs[1].msg.uri(),
        Some("sip:34020000002000000002@127.0.0.1:5080")
    );
    assert!(w.dev.is_registered());
    assert_eq!(w.dev.server(), (PLAT_A, addr(5080)));
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        DeviceEvent::Redirected {
            expires: Some(600),
            ..
        }
    )));
    // Keepalives go to server A.
    w.run(secs(61));
    let ka = w.requests("MESSAGE");
    assert_eq!(ka[0].to, addr(5080));
    assert_eq!(
        ka[0].msg.uri(),
        Some("sip:34020000002000000002@127.0.0.1:5080")
    );
}

#[test]
fn refused_by_server_a_goes_back_to_the_redirect_server() {
    for no_fallback in [false, true] {
        let mut c = cfg();
        c.faults.no_redirect_fallback = no_fallback;
        let mut w = World::new(
            c,
            Box::new(|m, to| {
                Some(match (m.method(), to == plat_addr()) {
                    (Some("REGISTER"), true) => 302,
                    (Some("REGISTER"), false) => 403,
                    _ => 200,
                })
            }),
        );
        w.dev.start(w.now);
        w.run(secs(65));
        let regs = w.requests("REGISTER");
        assert_eq!(regs[1].to, addr(5080));
        assert_eq!(regs[2].at, secs(60));
        let want = if no_fallback { addr(5080) } else { plat_addr() };
        assert_eq!(regs[2].to, want, "{no_fallback}");
    }
}

#[test]
fn server_a_offline_sends_the_device_back_at_once() {
    let mut w = World::new(
        cfg(),
        Box::new(|m, to| {
            if m.method() == Some("REGISTER") {
                Some(if to == plat_addr() { 302 } else { 200 })
            } else if to == addr(5080) {
                None
            } else {
                Some(200)
            }
        }),
    );
    w.dev.start(w.now);
    w.run(secs(245));
    let regs = w.requests("REGISTER");
    // Redirect server, A, then (offline at 240 s) redirect server and A again.
    let to: Vec<_> = regs.iter().map(|r| (r.at, r.to)).collect();
    assert_eq!(
        to,
        vec![
            (secs(0), plat_addr()),
            (secs(0), addr(5080)),
            (secs(240), plat_addr()),
            (secs(240), addr(5080)),
        ]
    );
}

#[test]
fn ignore_redirect_fault_retries_the_same_server() {
    let mut c = cfg();
    c.faults.ignore_redirect = true;
    let mut w = World::new(c, redirecting());
    w.dev.start(w.now);
    w.run(secs(61));
    let to: Vec<_> = w.requests("REGISTER").iter().map(|r| r.to).collect();
    assert_eq!(to, vec![plat_addr(), plat_addr()]);
}

#[test]
fn options_and_unknown_methods() {
    let mut w = World::registered(cfg(), all_ok());
    assert_eq!(w.request("OPTIONS", &[], None), 200);
    assert_eq!(w.request("INFO", &[], None), 501);
    assert_eq!(w.request("MESSAGE", &[], None), 400);
}

#[test]
fn fault_request_uri_domain_addresses_messages_by_the_domain() {
    let mut c = cfg();
    c.faults.request_uri_domain = true;
    let mut w = World::registered(c, all_ok());
    w.run(secs(65));
    let ka = w.requests("MESSAGE");
    let first = ka.first().expect("a keepalive");
    assert_eq!(first.msg.uri(), Some("sip:3402000000@127.0.0.1:5060"));
    let to = NameAddr::parse(first.msg.headers.get("To").unwrap()).unwrap();
    assert_eq!(to.uri.user.as_deref(), Some("3402000000"));
    // The REGISTER is not touched, nor is From.
    let reg = w.requests("REGISTER")[0];
    assert_eq!(
        crate::proto::sip::SipUri::parse(reg.msg.uri().unwrap())
            .unwrap()
            .user
            .as_deref(),
        Some(PLAT)
    );
    let from = NameAddr::parse(first.msg.headers.get("From").unwrap()).unwrap();
    assert_eq!(from.uri.user.as_deref(), Some(DEV));
    // What a lenient reader makes of it: the platform ID, and two findings.
    let fs = crate::proto::sip::quirks::addressing_findings(&first.msg, PLAT);
    let codes: Vec<&str> = fs.iter().map(|f| f.code).collect();
    assert_eq!(codes, ["sip.request-uri-domain", "sip.to-domain"]);
}

// --- media sessions ---

mod media {
    use super::*;
    use crate::proto::gb28181::session::{
        BroadcastEvent, BroadcastSource, BroadcastSourceConfig, CallRequest, EndReason, MediaUac,
        SessionCommand, SessionEvent, UacConfig,
    };
    use crate::proto::Transmit;

    const VOICE: &str = "34020000001370000001";

    fn parse(t: &Transmit) -> SipMessage {
        SipMessage::parse(&t.bytes).unwrap().message
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

    fn uac(target: &str, request: impl FnOnce(&str) -> CallRequest) -> MediaUac {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEED: AtomicU64 = AtomicU64::new(1);
        let mut cfg = UacConfig::new(PLAT, plat_addr(), dev_addr(), plat_addr().ip());
        // Each call its own Call-ID.
        cfg.seed = SEED.fetch_add(1, Ordering::Relaxed);
        MediaUac::new(cfg, request(target))
    }

    /// Carries messages both ways until both are quiet; returns the device's
    /// events and the platform's session events.
    fn relay(
        n: Now,
        dev: &mut Device,
        plat: &mut MediaUac,
    ) -> (Vec<DeviceEvent>, Vec<SessionEvent>) {
        let (mut de, mut pe) = (Vec::new(), Vec::new());
        loop {
            let mut moved = false;
            while let Some(t) = plat.poll_transmit() {
                moved = true;
                dev.handle_message_from(n, plat_addr(), &parse(&t));
            }
            while let Some(t) = dev.poll_transmit() {
                moved = true;
                plat.handle_message(n, dev_addr(), &parse(&t));
            }
            de.extend(std::iter::from_fn(|| dev.poll_event()));
            pe.extend(std::iter::from_fn(|| plat.poll_event()));
            if !moved {
                return (de, pe);
            }
        }
    }

    fn session_events(events: &[DeviceEvent], id: &str) -> Vec<SessionEvent> {
        events
            .iter()
            .filter_map(|e| match e {
                DeviceEvent::Session { call_id, event } if call_id == id => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_invite_for_the_device_is_a_session_keyed_by_its_call_id() {
        let n = now();
        let mut dev = Device::new(cfg());
        let mut plat = uac(DEV, |t| CallRequest::live(t, 6000, None));
        plat.start(n);
        let id = plat.call_id().to_string();
        let (de, _) = relay(n, &mut dev, &mut plat);
        let ev = session_events(&de, &id);
        assert!(matches!(ev[..], [SessionEvent::Offer { .. }]), "{de:?}");
        assert_eq!(dev.media_sessions(), vec![id.as_str()]);

        // The media side answers with a port: 200, ACK, Started on both sides.
        dev.apply_session(n, &id, SessionCommand::Accept(7000));
        let (de, pe) = relay(n, &mut dev, &mut plat);
        assert!(matches!(
            session_events(&de, &id)[..],
            [SessionEvent::Started { .. }]
        ));
        assert!(pe
            .iter()
            .any(|e| matches!(e, SessionEvent::Started { findings, .. } if findings.is_empty())));
        assert!(plat.is_confirmed());

        // The platform's BYE reaches the session, not the device.
        plat.hangup(n);
        let (de, pe) = relay(n, &mut dev, &mut plat);
        assert!(session_events(&de, &id).iter().any(|e| matches!(
            e,
            SessionEvent::Ended {
                reason: EndReason::ByeReceived,
                ..
            }
        )));
        assert!(pe.iter().any(|e| matches!(
            e,
            SessionEvent::ByeAnswered {
                status: Some(200),
                ..
            }
        )));
        assert!(dev.media_sessions().is_empty());
        assert!(!de
            .iter()
            .any(|e| matches!(e, DeviceEvent::BadMessage { .. })));
        // Kept a while for retransmissions, then dropped.
        let later = n.after(secs(40));
        dev.handle_timeout(later);
        assert_eq!(dev.poll_timeout(), None);
    }

    #[test]
    fn a_channel_is_answered_and_an_unknown_id_gets_404() {
        let n = now();
        let mut dev = Device::new(cfg());
        let ch = channel_id(DEV, 1);
        let mut plat = uac(&ch, |t| CallRequest::live(t, 6000, None));
        plat.start(n);
        let (de, _) = relay(n, &mut dev, &mut plat);
        assert!(matches!(
            session_events(&de, plat.call_id())[..],
            [SessionEvent::Offer { .. }]
        ));

        let mut plat = uac("34020000001319999999", |t| CallRequest::live(t, 6000, None));
        plat.start(n);
        let (de, pe) = relay(n, &mut dev, &mut plat);
        assert!(session_events(&de, plat.call_id()).is_empty());
        assert!(pe.iter().any(|e| matches!(
            e,
            SessionEvent::Ended {
                reason: EndReason::Rejected(404),
                ..
            }
        )));
        // Alarm inputs are not media sources either.
        let mut plat = uac(&alarm_input_id(DEV, 1), |t| {
            CallRequest::live(t, 6000, None)
        });
        plat.start(n);
        let (_, pe) = relay(n, &mut dev, &mut plat);
        assert!(pe.iter().any(|e| matches!(
            e,
            SessionEvent::Ended {
                reason: EndReason::Rejected(404),
                ..
            }
        )));
    }

    #[test]
    fn invites_past_max_sessions_get_486_busy_here() {
        let n = now();
        let mut c = cfg();
        assert_eq!(c.max_sessions, 16);
        c.apply_option("max_sessions", "2").unwrap();
        assert!(c.apply_option("max_sessions", "0").is_err());
        let mut dev = Device::new(c);
        let mut calls = Vec::new();
        for _ in 0..3 {
            let mut plat = uac(DEV, |t| CallRequest::live(t, 6000, None));
            plat.start(n);
            let (de, pe) = relay(n, &mut dev, &mut plat);
            calls.push((plat, de, pe));
        }
        for (plat, de, _) in &calls[..2] {
            assert!(matches!(
                session_events(de, plat.call_id())[..],
                [SessionEvent::Offer { .. }]
            ));
        }
        let (plat, de, pe) = &calls[2];
        assert!(session_events(de, plat.call_id()).is_empty());
        assert!(
            pe.iter().any(|e| matches!(
                e,
                SessionEvent::Ended {
                    reason: EndReason::Rejected(486),
                    ..
                }
            )),
            "{pe:?}"
        );
        assert_eq!(dev.media_sessions().len(), 2);
        // One ends: there is room again.
        let (plat, _, _) = &mut calls[0];
        let id = plat.call_id().to_string();
        dev.apply_session(n, &id, SessionCommand::Accept(7000));
        relay(n, &mut dev, plat);
        plat.hangup(n);
        relay(n, &mut dev, plat);
        let mut plat = uac(DEV, |t| CallRequest::live(t, 6000, None));
        plat.start(n);
        let (de, _) = relay(n, &mut dev, &mut plat);
        assert!(matches!(
            session_events(&de, plat.call_id())[..],
            [SessionEvent::Offer { .. }]
        ));
    }

    #[test]
    fn bye_and_end_of_file_actions_act_on_the_newest_session() {
        let n = now();
        let mut dev = Device::new(cfg());
        let none = BTreeMap::new();
        assert!(dev.trigger(n, "bye", &none).is_err());
        assert!(dev.trigger(n, "end-of-file", &none).is_err());
        let mut plat = uac(DEV, |t| CallRequest::playback(t, 6000, None, 1, 100));
        plat.start(n);
        let id = plat.call_id().to_string();
        relay(n, &mut dev, &mut plat);
        dev.apply_session(n, &id, SessionCommand::Accept(7000));
        relay(n, &mut dev, &mut plat);

        dev.trigger(n, "end-of-file", &none).unwrap();
        let (de, pe) = relay(n, &mut dev, &mut plat);
        assert!(pe.iter().any(|e| matches!(
            e,
            SessionEvent::MediaStatus {
                notify_type: Some(121),
                ..
            }
        )));
        assert!(session_events(&de, &id)
            .iter()
            .any(|e| matches!(e, SessionEvent::MediaStatusAnswered { status: Some(200) })));

        let mut args = BTreeMap::new();
        args.insert("call_id".to_string(), "nope".to_string());
        assert!(dev.trigger(n, "bye", &args).is_err());
        // The platform hung up after the 121 already; a fresh live session instead.
        let mut plat = uac(DEV, |t| CallRequest::live(t, 6002, None));
        plat.start(n);
        let id = plat.call_id().to_string();
        relay(n, &mut dev, &mut plat);
        dev.apply_session(n, &id, SessionCommand::Accept(7002));
        relay(n, &mut dev, &mut plat);
        dev.trigger(n, "bye", &none).unwrap();
        let (_, pe) = relay(n, &mut dev, &mut plat);
        assert!(pe.iter().any(|e| matches!(
            e,
            SessionEvent::Ended {
                reason: EndReason::ByeReceived,
                ..
            }
        )));
    }

    #[test]
    fn the_broadcast_response_is_followed_by_the_audio_invite() {
        let n = now();
        let mut dev = Device::new(cfg());
        let mut src = BroadcastSource::new(BroadcastSourceConfig::new(
            PLAT,
            VOICE,
            DEV,
            DEV,
            plat_addr(),
            dev_addr(),
            plat_addr().ip(),
        ));
        src.start(n);
        let (mut de, mut se) = (Vec::new(), Vec::new());
        let mut relay = |dev: &mut Device, src: &mut BroadcastSource| loop {
            let mut moved = false;
            while let Some(t) = src.poll_transmit() {
                moved = true;
                dev.handle_message_from(n, plat_addr(), &parse(&t));
            }
            while let Some(t) = dev.poll_transmit() {
                moved = true;
                src.handle_message(n, dev_addr(), &parse(&t));
            }
            de.extend(std::iter::from_fn(|| dev.poll_event()));
            se.extend(std::iter::from_fn(|| src.poll_event()));
            if !moved {
                return (de.clone(), se.clone());
            }
        };
        let (d, s) = relay(&mut dev, &mut src);
        assert!(src.response_ok(), "{s:?}");
        // The audio call first asks for a receiving port; no INVITE yet.
        let (call_id, media) = d
            .iter()
            .find_map(|e| match e {
                DeviceEvent::Session {
                    call_id,
                    event: SessionEvent::Prepare { media },
                } => Some((call_id.clone(), media.clone())),
                _ => None,
            })
            .expect("Prepare");
        assert_eq!(media.port, 0);
        assert!(src.session().is_none());

        dev.apply_session(n, &call_id, SessionCommand::Accept(7100));
        let (_, s) = relay(&mut dev, &mut src);
        let offer = s
            .iter()
            .find_map(|e| match e {
                BroadcastEvent::Session(b) => match b.as_ref() {
                    SessionEvent::Offer { negotiated, .. } => Some(negotiated.clone()),
                    _ => None,
                },
                _ => None,
            })
            .expect("the audio INVITE");
        assert_eq!(offer.offer.origin.username, DEV);
        assert_eq!(offer.media[0].remote.port(), 7100);
        src.accept(n, 8100).unwrap();
        let (d, _) = relay(&mut dev, &mut src);
        assert!(session_events(&d, &call_id)
            .iter()
            .any(|e| matches!(e, SessionEvent::Started { findings, .. } if findings.is_empty())));
    }

    #[test]
    fn fault_ssrc_9_digits_answers_y_without_its_leading_zero() {
        let n = now();
        let mut c = cfg();
        c.faults.ssrc_9_digits = true;
        let mut dev = Device::new(c);
        let mut plat = uac(DEV, |t| CallRequest::live(t, 6000, None));
        plat.start(n);
        let id = plat.call_id().to_string();
        let offered = plat.offer().unwrap().ssrc.unwrap();
        relay(n, &mut dev, &mut plat);
        dev.apply_session(n, &id, SessionCommand::Accept(7000));
        // Catch the 200 on its way: its y= has nine digits, Content-Length
        // still fits the body.
        let mut answer = None;
        while let Some(t) = dev.poll_transmit() {
            let m = parse(&t);
            if m.status() == Some(200) {
                answer = Some(m.clone());
            }
            plat.handle_message(n, dev_addr(), &m);
        }
        let answer = answer.expect("a 200 to the INVITE");
        let body = String::from_utf8(answer.body.clone()).unwrap();
        let want = format!("y={}\r\n", offered.0);
        assert!(body.contains(&want), "{body}");
        assert_eq!(offered.to_string().len(), 10);
        assert_eq!(offered.0.to_string().len(), 9, "a live SSRC starts with 0");
        assert_eq!(
            answer.headers.get("Content-Length"),
            Some(answer.body.len().to_string().as_str())
        );
        // The platform side reads it leniently: the stream is expected with
        // the same SSRC, and the decoder names the rule broken.
        let (_, pe) = relay(n, &mut dev, &mut plat);
        let started = pe.iter().find_map(|e| match e {
            SessionEvent::Started {
                negotiated,
                findings,
            } => Some((negotiated.ssrc, findings.clone())),
            _ => None,
        });
        let (ssrc, findings) = started.expect("the session starts");
        assert_eq!(ssrc, offered);
        assert!(
            findings.iter().any(|f| f.code == "gb.sdp.y-not-10-digits"),
            "{findings:?}"
        );
    }
}
