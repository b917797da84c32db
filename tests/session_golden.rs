//! Golden snapshots (under golden/) of the SIP messages of the media sessions:
//! a playback from INVITE to BYE with MANSRTSP control and the MediaStatus
//! notification, a talk INVITE, and the broadcast notification, response and audio
//! INVITE. Fixed seeds and a fixed clock keep them byte-stable.

use std::net::SocketAddr;
use std::time::Instant;

use camcert::proto::gb28181::session::{
    BroadcastSource, BroadcastSourceConfig, BroadcastTarget, BroadcastTargetConfig, CallRequest,
    MediaUac, MediaUas, SessionEvent, UacConfig, UasConfig,
};
use camcert::proto::sip::SipMessage;
use camcert::proto::{Now, Transmit};

const PLAT: &str = "34020000002000000001";
const CAM: &str = "34020000001320000001";
const SOURCE: &str = "34020000001370000001";

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_milli_opt(10, 23, 3, 456)
            .unwrap(),
    }
}

fn plat() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}

fn cam() -> SocketAddr {
    "192.0.2.10:5060".parse().unwrap()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

fn text(t: &Transmit) -> String {
    String::from_utf8(t.bytes.clone())
        .unwrap()
        .replace("\r\n", "␍␊\n")
}

fn parse(t: &Transmit) -> SipMessage {
    SipMessage::parse(&t.bytes).unwrap().message
}

/// Moves everything queued between the two machines; returns the messages in order.
fn pump(uac: &mut MediaUac, uas: &mut MediaUas, log: &mut Vec<String>) {
    let n = now();
    loop {
        let mut moved = false;
        while let Some(t) = uac.poll_transmit() {
            moved = true;
            log.push(text(&t));
            uas.handle_message(n, plat(), &parse(&t));
        }
        while let Some(t) = uas.poll_transmit() {
            moved = true;
            log.push(text(&t));
            uac.handle_message(n, cam(), &parse(&t));
        }
        if !moved {
            break;
        }
    }
}

#[test]
fn playback_session() {
    let n = now();
    let mut ucfg = UacConfig::new(PLAT, plat(), cam(), plat().ip());
    ucfg.seed = 5;
    let mut scfg = UasConfig::new(CAM, cam(), cam().ip());
    scfg.seed = 6;
    scfg.file_size = Some(19_396_096);
    let req = CallRequest::playback(CAM, 36000, None, 1_697_264_152, 1_697_266_715);
    let (mut uac, mut uas) = (MediaUac::new(ucfg, req), MediaUas::new(scfg));
    let mut log = Vec::new();
    uac.start(n);
    pump(&mut uac, &mut uas, &mut log);
    assert!(matches!(uas.poll_event(), Some(SessionEvent::Offer { .. })));
    uas.accept(n, 15060).unwrap();
    pump(&mut uac, &mut uas, &mut log);
    uac.play(n, Some(2.0), None).unwrap();
    pump(&mut uac, &mut uas, &mut log);
    assert!(uas.end_of_file(n));
    pump(&mut uac, &mut uas, &mut log);
    let names = [
        "invite-playback",
        "invite-100-trying",
        "invite-200-answer",
        "ack",
        "info-play-scale",
        "info-200",
        "message-media-status-121",
        "message-200",
        "bye",
        "bye-200",
    ];
    assert_eq!(log.len(), names.len(), "{log:#?}");
    settings().bind(|| {
        for (name, m) in names.iter().zip(&log) {
            insta::assert_snapshot!(format!("session-{name}"), m);
        }
    });
}

#[test]
fn talk_invite() {
    let mut ucfg = UacConfig::new(PLAT, plat(), cam(), plat().ip());
    ucfg.seed = 5;
    let mut uac = MediaUac::new(ucfg, CallRequest::talk(CAM, 38000, None));
    uac.start(now());
    let t = uac.poll_transmit().unwrap();
    settings().bind(|| insta::assert_snapshot!("session-invite-talk", text(&t)));
}

#[test]
fn broadcast_flow() {
    let n = now();
    let mut scfg = BroadcastSourceConfig::new(PLAT, SOURCE, CAM, CAM, plat(), cam(), plat().ip());
    scfg.seed = 7;
    let mut tcfg = BroadcastTargetConfig::new(CAM, PLAT, cam(), plat(), cam().ip());
    tcfg.seed = 8;
    let (mut src, mut tgt) = (BroadcastSource::new(scfg), BroadcastTarget::new(tcfg));
    src.start(n);
    tgt.start_audio(n, 9712, None);
    let mut log = Vec::new();
    for _ in 0..4 {
        while let Some(t) = src.poll_transmit() {
            log.push(text(&t));
            tgt.handle_message(n, plat(), &parse(&t));
        }
        while let Some(t) = tgt.poll_transmit() {
            log.push(text(&t));
            src.handle_message(n, cam(), &parse(&t));
        }
    }
    // Notify, its 200, the Response, its 200, the audio INVITE, 100.
    assert_eq!(log.len(), 6, "{log:#?}");
    settings().bind(|| {
        insta::assert_snapshot!("session-broadcast-notify", &log[0]);
        insta::assert_snapshot!("session-broadcast-response", &log[2]);
        insta::assert_snapshot!("session-broadcast-audio-invite", &log[4]);
    });
}
