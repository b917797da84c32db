//! The reference platform against a camera with MANSCDP quirks, in virtual
//! time: the lenient decoder lets the platform understand the camera's
//! keepalives and answers, and the platform keeps the findings; with
//! `strict_manscdp` it does not understand them, as before.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::device::{Device, DeviceConfig};
use super::manscdp::{Finding, FindingCode, Severity};
use super::platform::{Platform, PlatformConfig, PlatformEvent};
use crate::proto::sip::SipMessage;
use crate::proto::Now;

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

struct World {
    now: Now,
    start: Instant,
    dev: Device,
    plat: Platform,
    plat_events: Vec<PlatformEvent>,
    /// Applied to every message the device sends.
    rewrite: fn(SipMessage) -> SipMessage,
    /// Status codes of the platform's responses.
    statuses: Vec<u16>,
}

impl World {
    fn new(faults: &[&str], pcfg: impl FnOnce(&mut PlatformConfig)) -> World {
        let mut d = DeviceConfig::new(DEV, PLAT, "12345678", addr(5070), addr(5060));
        for f in faults {
            assert!(d.faults.set(f), "unknown fault {f}");
        }
        let mut p = PlatformConfig::new(PLAT);
        p.devices.insert(DEV.into(), "12345678".into());
        pcfg(&mut p);
        let start = Instant::now();
        let now = Now {
            mono: start,
            wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .unwrap()
                .and_hms_opt(3, 4, 5)
                .unwrap(),
        };
        let mut w = World {
            now,
            start,
            dev: Device::new(d),
            plat: Platform::new(p),
            plat_events: Vec::new(),
            rewrite: |m| m,
            statuses: Vec::new(),
        };
        w.dev.start(now);
        w
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.dev.poll_transmit() {
                moved = true;
                if let Ok(p) = SipMessage::parse(&t.bytes) {
                    let m = (self.rewrite)(p.message);
                    self.plat.handle_message(self.now, addr(5070), &m);
                }
            }
            while let Some(t) = self.plat.poll_transmit() {
                moved = true;
                if let Ok(p) = SipMessage::parse(&t.bytes) {
                    if let Some(s) = p.message.status() {
                        self.statuses.push(s);
                    }
                    self.dev.handle_message(self.now, &p.message);
                }
            }
            while self.dev.poll_event().is_some() {}
            while let Some(e) = self.plat.poll_event() {
                self.plat_events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    fn run(&mut self, until: Duration) {
        self.pump();
        loop {
            let next = [self.dev.poll_timeout(), self.plat.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            if next > self.start + until {
                break;
            }
            self.now = self
                .now
                .after(next.saturating_duration_since(self.now.mono));
            self.dev.handle_timeout(self.now);
            self.plat.handle_timeout(self.now);
            self.pump();
        }
    }

    fn keepalives(&self) -> Vec<&Vec<Finding>> {
        self.plat_events
            .iter()
            .filter_map(|e| match e {
                PlatformEvent::Keepalive {
                    device_id,
                    findings,
                    ..
                } if device_id == DEV => Some(findings),
                _ => None,
            })
            .collect()
    }

    fn went_offline(&self) -> bool {
        self.plat_events
            .iter()
            .any(|e| matches!(e, PlatformEvent::Offline { device_id } if device_id == DEV))
    }

    /// Ask the camera for its DeviceInfo; the platform's answer event.
    fn query_deviceinfo(&mut self) -> (String, Option<String>, Vec<Finding>) {
        self.plat
            .trigger(self.now, "query-deviceinfo", &BTreeMap::new())
            .expect("query sent");
        self.run(self.now.mono - self.start + Duration::from_secs(5));
        self.plat_events
            .iter()
            .rev()
            .find_map(|e| match e {
                PlatformEvent::Answer {
                    cmd,
                    result,
                    findings,
                    ..
                } => Some((cmd.clone(), result.clone(), findings.clone())),
                _ => None,
            })
            .expect("an answer")
    }
}

fn has(fs: &[Finding], code: FindingCode) -> bool {
    fs.iter().any(|f| f.code == code)
}

/// Keepalives and a DeviceInfo answer from a camera with one quirk: the
/// platform keeps the camera online, takes the answer, and records the
/// finding the quirk causes.
fn understood_despite(fault: &str, keepalive_code: Option<FindingCode>, answer_code: FindingCode) {
    let mut w = World::new(&[fault], |_| {});
    // Five keepalive intervals: the camera stays online only if every
    // keepalive is understood.
    w.run(Duration::from_secs(5 * 60 + 5));
    let kas = w.keepalives();
    assert!(
        kas.len() >= 5,
        "{fault}: {} keepalives understood",
        kas.len()
    );
    assert!(!w.went_offline(), "{fault}: the camera went offline");
    for fs in &kas {
        match keepalive_code {
            Some(c) => {
                assert!(has(fs, c), "{fault}: {fs:?}");
                assert!(fs.iter().all(|f| f.severity == Severity::Error), "{fs:?}");
            }
            None => assert!(fs.is_empty(), "{fault}: {fs:?}"),
        }
    }
    let (cmd, result, findings) = w.query_deviceinfo();
    assert_eq!(cmd, "DeviceInfo", "{fault}");
    assert_eq!(result.as_deref(), Some("OK"), "{fault}");
    assert!(has(&findings, answer_code), "{fault}: {findings:?}");
    // The platform keeps what it found, with the sender, and counts it.
    let kept: Vec<_> = w.plat.findings().collect();
    assert!(!kept.is_empty());
    assert!(kept.iter().all(|(d, _)| *d == DEV));
    assert!(kept.iter().any(|(_, f)| f.code == answer_code));
    assert_eq!(w.plat.finding_count(), kept.len() as u64, "{fault}");
}

#[test]
fn platform_understands_attribute_fields() {
    understood_despite(
        "attribute-fields",
        Some(FindingCode::FieldAsAttribute),
        FindingCode::FieldAsAttribute,
    );
}

#[test]
fn platform_understands_element_case() {
    understood_despite(
        "element-case",
        Some(FindingCode::ElementNameCase),
        FindingCode::RootNameCase,
    );
}

#[test]
fn platform_understands_no_xml_declaration() {
    understood_despite(
        "no-xml-declaration",
        Some(FindingCode::MissingDeclaration),
        FindingCode::MissingDeclaration,
    );
}

#[test]
fn platform_understands_wrong_encoding_declared() {
    // A keepalive is ASCII, the same bytes in either charset; the DeviceInfo
    // answer carries the camera's Chinese name.
    understood_despite(
        "wrong-encoding-declared",
        None,
        FindingCode::EncodingMismatch,
    );
}

#[test]
fn clean_camera_leaves_no_findings() {
    let mut w = World::new(&[], |_| {});
    w.run(Duration::from_secs(3 * 60 + 5));
    assert!(w.keepalives().len() >= 3);
    let (cmd, _, findings) = w.query_deviceinfo();
    assert_eq!(cmd, "DeviceInfo");
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(w.plat.finding_count(), 0);
}

#[test]
fn strict_platform_does_not_understand_a_quirky_camera() {
    let mut w = World::new(&["attribute-fields"], |p| p.strict_manscdp = true);
    w.run(Duration::from_secs(5 * 60 + 5));
    assert!(w.keepalives().is_empty());
    assert!(w.statuses.contains(&400), "{:?}", w.statuses);
    assert!(w.went_offline());
    assert_eq!(w.plat.finding_count(), 0);
}

#[test]
fn deviceinfo_answered_with_cmdtype_catalog_surfaces() {
    let mut w = World::new(&[], |_| {});
    w.rewrite = |mut m| {
        let from = b"<CmdType>DeviceInfo</CmdType>";
        if let Some(i) = m.body.windows(from.len()).position(|x| x == from) {
            m.body.splice(
                i..i + from.len(),
                b"<CmdType>Catalog</CmdType>".iter().copied(),
            );
            m = m.with_content_length();
        }
        m
    };
    w.run(Duration::from_secs(5));
    let (cmd, result, findings) = w.query_deviceinfo();
    assert_eq!(
        cmd, "DeviceInfo",
        "taken as the DeviceInfo answer by its SN"
    );
    assert_eq!(result.as_deref(), Some("OK"));
    let f = findings
        .iter()
        .find(|f| f.code == FindingCode::AnswerCmdType)
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message
            .contains("carries CmdType Catalog, expected DeviceInfo"),
        "{}",
        f.message
    );
    assert!(crate::finding::resolves(&f.clause), "{}", f.clause);
    // The decoder read the body as a DeviceInfo answer, citing its format.
    let b = findings
        .iter()
        .find(|f| f.code == FindingCode::BodyMismatch)
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(b.section(), Some("设备信息查询响应格式"));
    assert!(w
        .plat
        .findings()
        .any(|(_, f)| f.code == FindingCode::AnswerCmdType));
}

/// The REGISTER as a camera configured with the domain for the server ID
/// sends it: `REGISTER sip:3402000000@...`.
fn register_to_domain(mut m: SipMessage) -> SipMessage {
    if m.method() == Some("REGISTER") {
        if let crate::proto::sip::StartLine::Request { uri, .. } = &mut m.start {
            *uri = uri.replacen(PLAT, &PLAT[..10], 1);
        }
    }
    m
}

#[test]
fn platform_takes_requests_to_its_domain_as_meant_and_keeps_the_findings() {
    let mut w = World::new(&["request-uri-domain"], |_| {});
    w.rewrite = register_to_domain;
    w.run(Duration::from_secs(5 * 60 + 5));
    assert!(
        w.plat_events
            .iter()
            .any(|e| matches!(e, PlatformEvent::Registered { .. })),
        "{:?}",
        w.statuses
    );
    assert!(!w.statuses.contains(&403), "{:?}", w.statuses);
    // Keepalives to the domain are understood: the camera stays online.
    assert!(w.keepalives().len() >= 5);
    assert!(!w.went_offline());
    let kept: Vec<_> = w.plat.findings().collect();
    assert!(kept.iter().all(|(d, _)| *d == DEV));
    let codes: Vec<&str> = kept.iter().map(|(_, f)| f.code).collect();
    assert!(codes.contains(&"sip.request-uri-domain"), "{codes:?}");
    assert!(codes.contains(&"sip.to-domain"), "{codes:?}");
    let reg = kept
        .iter()
        .find(|(_, f)| f.message.contains("REGISTER"))
        .expect("the REGISTER's finding");
    assert_eq!(
        reg.1.message,
        "Request-URI user of the REGISTER: expected the server ID 34020000002000000001, got its SIP domain 3402000000"
    );
}

#[test]
fn strict_sip_platform_refuses_a_register_to_its_domain() {
    let mut w = World::new(&[], |p| p.strict_sip = true);
    w.rewrite = register_to_domain;
    w.run(Duration::from_secs(65));
    assert!(w.statuses.contains(&403), "{:?}", w.statuses);
    assert!(!w
        .plat_events
        .iter()
        .any(|e| matches!(e, PlatformEvent::Registered { .. })));
    assert_eq!(w.plat.finding_count(), 0);
}
