//! Device and platform wired together with no sockets and no clock: the
//! driver below moves time forward to the next wake-up, so hours of protocol
//! time run in microseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::device::{Device, DeviceConfig, DeviceEvent};
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
    dev: Device,
    plat: Platform,
    dev_events: Vec<(Duration, DeviceEvent)>,
    plat_events: Vec<(Duration, PlatformEvent)>,
    start: Instant,
    /// Drop every message the platform sends.
    platform_silent: bool,
}

impl World {
    fn new(dcfg: DeviceConfig, pcfg: PlatformConfig) -> World {
        let start = Instant::now();
        World {
            now: Now {
                mono: start,
                wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                    .unwrap()
                    .and_hms_opt(3, 4, 5)
                    .unwrap(),
            },
            dev: Device::new(dcfg),
            plat: Platform::new(pcfg),
            dev_events: vec![],
            plat_events: vec![],
            start,
            platform_silent: false,
        }
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.dev.poll_transmit() {
                moved = true;
                if let Ok(p) = SipMessage::parse(&t.bytes) {
                    self.plat.handle_message(self.now, addr(5060), &p.message);
                }
            }
            while let Some(t) = self.plat.poll_transmit() {
                moved = true;
                if self.platform_silent {
                    continue;
                }
                if let Ok(p) = SipMessage::parse(&t.bytes) {
                    self.dev.handle_message(self.now, &p.message);
                }
            }
            let el = self.now.mono - self.start;
            while let Some(e) = self.dev.poll_event() {
                self.dev_events.push((el, e));
            }
            while let Some(e) = self.plat.poll_event() {
                self.plat_events.push((el, e));
            }
            if !moved {
                break;
            }
        }
    }

    /// Run until `until` of virtual time has passed.
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
            let d = next.saturating_duration_since(self.now.mono);
            self.now = self.now.after(d);
            self.dev.handle_timeout(self.now);
            self.plat.handle_timeout(self.now);
            self.pump();
        }
    }
}

fn configs() -> (DeviceConfig, PlatformConfig) {
    let d = DeviceConfig::new(DEV, PLAT, "12345678", addr(5070), addr(5060));
    let mut p = PlatformConfig::new(PLAT);
    p.devices.insert(DEV.into(), "12345678".into());
    (d, p)
}

#[test]
fn registers_with_digest_and_gets_a_date() {
    let (d, p) = configs();
    let mut w = World::new(d, p);
    w.dev.start(w.now);
    w.run(Duration::from_secs(1));
    match &w.dev_events[0].1 {
        DeviceEvent::Registered {
            expires,
            date,
            findings,
        } => {
            assert_eq!(*expires, 3600);
            assert_eq!(date.as_deref(), Some("2026-01-02T03:04:05.000"));
            assert!(findings.is_empty());
        }
        e => panic!("{e:?}"),
    }
    assert!(w.plat.registration(DEV).is_some());
}

#[test]
fn refreshes_before_expiry_for_a_day() {
    let (mut d, p) = configs();
    d.expires = 600;
    // Registration only: this platform does not answer keepalives, which
    // would make the device re-register (keepalives: device/tests.rs).
    d.keepalive_interval = Duration::from_secs(365 * 86400);
    let mut w = World::new(d, p);
    w.dev.start(w.now);
    w.run(Duration::from_secs(24 * 3600));
    let regs: Vec<_> = w
        .plat_events
        .iter()
        .filter(|(_, e)| matches!(e, PlatformEvent::Registered { .. }))
        .collect();
    // One registration every 300 s for 24 h.
    assert_eq!(regs.len(), 24 * 3600 / 300 + 1);
    assert!(!w
        .plat_events
        .iter()
        .any(|(_, e)| matches!(e, PlatformEvent::Expired { .. })));
}

#[test]
fn no_refresh_fault_lets_the_registration_expire() {
    let (mut d, mut p) = configs();
    d.expires = 600;
    // This camera sends no keepalives; keep §保活 offline detection out of the way.
    p.keepalive_interval = Duration::from_secs(3600);
    d.keepalive_interval = Duration::from_secs(365 * 86400);
    d.faults.no_refresh = true;
    let mut w = World::new(d, p);
    w.dev.start(w.now);
    w.run(Duration::from_secs(3600));
    let expired = w
        .plat_events
        .iter()
        .find(|(_, e)| matches!(e, PlatformEvent::Expired { .. }))
        .expect("expired");
    assert_eq!(expired.0, Duration::from_secs(600));
}

#[test]
fn wrong_password_is_refused_and_retried_after_60s() {
    let (mut d, p) = configs();
    d.faults.wrong_digest = true;
    let mut w = World::new(d, p);
    w.dev.start(w.now);
    w.run(Duration::from_secs(130));
    let rejected: Vec<_> = w
        .dev_events
        .iter()
        .filter(|(_, e)| matches!(e, DeviceEvent::Rejected { status: 403 }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(rejected.len(), 3, "{:?}", w.dev_events);
    assert_eq!(rejected[1] - rejected[0], Duration::from_secs(60));
}

#[test]
fn unknown_device_and_wrong_platform_id_are_refused() {
    for fault in ["wrong-device-id", "wrong-platform-id"] {
        let (mut d, p) = configs();
        assert!(d.faults.set(fault));
        let mut w = World::new(d, p);
        w.dev.start(w.now);
        w.run(Duration::from_secs(1));
        assert!(
            matches!(w.dev_events[0].1, DeviceEvent::Rejected { status: 403 }),
            "{fault}: {:?}",
            w.dev_events
        );
    }
}

#[test]
fn unregister_removes_the_binding() {
    let (d, p) = configs();
    let mut w = World::new(d, p);
    w.dev.start(w.now);
    w.run(Duration::from_secs(1));
    w.dev.unregister(w.now);
    w.run(Duration::from_secs(2));
    assert!(matches!(
        w.dev_events.last().unwrap().1,
        DeviceEvent::Unregistered
    ));
    assert!(w.plat.registration(DEV).is_none());
}

#[test]
fn silent_platform_times_out_after_timer_f_then_retries() {
    let (d, p) = configs();
    let mut w = World::new(d, p);
    w.platform_silent = true;
    w.dev.start(w.now);
    w.run(Duration::from_secs(130));
    let t: Vec<_> = w
        .dev_events
        .iter()
        .filter(|(_, e)| matches!(e, DeviceEvent::TimedOut))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(t[0], Duration::from_secs(32));
    assert_eq!(t[1], Duration::from_secs(32 + 60 + 32));
}

#[test]
fn sha256_and_qop_auth() {
    let (d, mut p) = configs();
    p.algorithm = crate::proto::sip::digest::Algorithm::Sha256;
    p.qop_auth = true;
    let mut w = World::new(d, p);
    w.dev.start(w.now);
    w.run(Duration::from_secs(1));
    assert!(matches!(w.dev_events[0].1, DeviceEvent::Registered { .. }));
}
