//! Golden snapshots (under golden/) of every SIP message camcert builds for
//! registration, taken from the device and platform state machines with
//! fixed seeds and a fixed clock so they are byte-stable.

use std::net::SocketAddr;
use std::time::Instant;

use camcert::proto::gb28181::device::{Device, DeviceConfig};
use camcert::proto::gb28181::platform::{Platform, PlatformConfig};
use camcert::proto::sip::digest::Algorithm;
use camcert::proto::sip::SipMessage;
use camcert::proto::Now;

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_milli_opt(10, 23, 3, 456)
            .unwrap(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The full exchange: REGISTER, 401, REGISTER with credentials, 200; then
/// the same for unregistration. Returns every message in order.
fn exchange(alg: Algorithm, qop: bool) -> Vec<String> {
    let dev_addr: SocketAddr = "192.0.2.10:5060".parse().unwrap();
    let plat_addr: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let mut d = DeviceConfig::new(DEV, PLAT, "12345678", dev_addr, plat_addr);
    d.seed = 7;
    let mut p = PlatformConfig::new(PLAT);
    p.devices.insert(DEV.into(), "12345678".into());
    p.algorithm = alg;
    p.qop_auth = qop;
    p.seed = 9;
    let mut dev = Device::new(d);
    let mut plat = Platform::new(p);
    let n = now();
    let mut log = Vec::new();
    let pump = |dev: &mut Device, plat: &mut Platform, log: &mut Vec<String>| loop {
        let mut moved = false;
        while let Some(t) = dev.poll_transmit() {
            moved = true;
            log.push(text(&t.bytes));
            plat.handle_message(n, dev_addr, &SipMessage::parse(&t.bytes).unwrap().message);
        }
        while let Some(t) = plat.poll_transmit() {
            moved = true;
            log.push(text(&t.bytes));
            dev.handle_message(n, &SipMessage::parse(&t.bytes).unwrap().message);
        }
        if !moved {
            break;
        }
    };
    dev.start(n);
    pump(&mut dev, &mut plat, &mut log);
    dev.unregister(n);
    pump(&mut dev, &mut plat, &mut log);
    log
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

#[test]
fn registration_md5() {
    let msgs = exchange(Algorithm::Md5, false);
    assert_eq!(msgs.len(), 8);
    let names = [
        "register-1-initial",
        "register-2-401-challenge",
        "register-3-authorized",
        "register-4-200-with-date",
        "unregister-1-initial",
        "unregister-2-401-challenge",
        "unregister-3-authorized",
        "unregister-4-200",
    ];
    settings().bind(|| {
        for (name, m) in names.iter().zip(&msgs) {
            insta::assert_snapshot!(format!("sip-{name}"), m.replace("\r\n", "␍␊\n"));
        }
    });
}

#[test]
fn registration_sha256_qop() {
    let msgs = exchange(Algorithm::Sha256, true);
    settings().bind(|| {
        insta::assert_snapshot!("sip-sha256-401-challenge", msgs[1].replace("\r\n", "␍␊\n"));
        insta::assert_snapshot!("sip-sha256-authorized", msgs[2].replace("\r\n", "␍␊\n"));
    });
}
