//! The reference camera (`peers::start_camera`) answering media sessions for real:
//! a test endpoint answers its REGISTER by hand and then calls it from the same
//! socket. Live over UDP and over TCP either way round, playback and download
//! ending with MediaStatus 121, the `bye` action, 语音广播's audio INVITE, and each
//! media fault showing in the receiver's validation or the session's findings
//! while the clean camera shows none.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use camcert::media::{ReceiverConfig, StopReason};
use camcert::peers::session::{call, MediaPlan, SessionReport};
use camcert::peers::{start_camera, PeerHandle};
use camcert::proto::gb28181::device::{channel_id, Device, DeviceConfig};
use camcert::proto::gb28181::session::{
    BroadcastEvent, BroadcastSource, BroadcastSourceConfig, CallRequest, EndReason, MediaTransport,
    MediaUac, SessionEvent, Timers, UacConfig,
};
use camcert::proto::ps::annexb::VideoCodec;
use camcert::proto::ps::validate::{FindingCode, Severity};
use camcert::proto::sdp::{MediaKind, Setup};
use camcert::proto::sip::{self, SipMessage};
use camcert::proto::Transport;
use camcert::transport::clock::{Clock, SystemClock};
use camcert::transport::driver::{self, Command};
use camcert::transport::Endpoint;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const PLAT: &str = "34020000002000000001";
const CAM: &str = "34020000001320000001";
/// A voice source of the platform (语音广播 SourceID).
const VOICE: &str = "34020000001370000001";

fn ip() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// The reference camera with `faults` and `options`, registered (by hand) to a
/// platform endpoint; returns the camera, the endpoint and the camera's address.
async fn camera(
    faults: &[&str],
    options: &[(&str, &str)],
) -> (PeerHandle<Device>, Endpoint, SocketAddr) {
    let mut ep = Endpoint::bind(Transport::Udp, SocketAddr::new(ip(), 0))
        .await
        .unwrap();
    let mut cfg = DeviceConfig::new(
        CAM,
        PLAT,
        "12345678",
        SocketAddr::new(ip(), 0),
        ep.local_addr(),
    );
    for f in faults {
        assert!(cfg.faults.set(f), "{f}");
    }
    for (k, v) in options {
        cfg.apply_option(k, v).unwrap();
    }
    let cam = start_camera(cfg, ip()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let inc = ep.recv(deadline).await.unwrap().expect("a REGISTER");
        let msg = SipMessage::parse(&inc.raw).unwrap().message;
        if msg.method() == Some("REGISTER") {
            let mut ok = sip::response_to(&msg, 200, Some("reg"));
            ok.headers.push("Expires", "3600");
            ep.send(Some(inc.from), &ok.with_content_length().to_bytes())
                .await
                .unwrap();
            return (cam, ep, inc.from);
        }
    }
}

/// The platform's media: receive up to `frames` (or until the session ends).
fn receiving(frames: Option<u64>, time_scale: f64) -> MediaPlan {
    let mut p = MediaPlan::new(ip(), None, VideoCodec::H264);
    p.receiver = ReceiverConfig {
        max_frames: frames,
        max_duration: Duration::from_secs(10),
        media_timeout: Duration::from_secs(3),
        time_scale,
        ..ReceiverConfig::new(0, VideoCodec::H264)
    };
    p.max_session = Duration::from_secs(20);
    p.linger = Duration::from_secs(2);
    p
}

/// Place `request` at the camera from `ep` and receive what it sends.
async fn place(
    ep: Endpoint,
    cam: SocketAddr,
    request: CallRequest,
    plan: MediaPlan,
) -> SessionReport {
    let uac = UacConfig::new(PLAT, ep.local_addr(), cam, ip());
    tokio::time::timeout(Duration::from_secs(30), call(ep, uac, request, &plan))
        .await
        .expect("the call ends")
        .unwrap()
}

/// The camera's report of its first finished session.
async fn camera_report(cam: &PeerHandle<Device>) -> (String, SessionReport) {
    for _ in 0..100 {
        if let Some(r) = cam.sessions.lock().unwrap().first().cloned() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the camera's session did not finish");
}

fn started_findings(r: &SessionReport) -> Vec<&'static str> {
    r.events
        .iter()
        .find_map(|e| match e {
            SessionEvent::Started { findings, .. } => {
                Some(findings.iter().map(|f| f.code).collect())
            }
            _ => None,
        })
        .expect("the session started")
}

fn end_reason(r: &SessionReport) -> EndReason {
    r.events
        .iter()
        .find_map(|e| match e {
            SessionEvent::Ended { reason, .. } => Some(*reason),
            _ => None,
        })
        .expect("the session ended")
}

fn bye_answered(r: &SessionReport) -> Option<u16> {
    r.events.iter().find_map(|e| match e {
        SessionEvent::ByeAnswered { status, .. } => *status,
        _ => None,
    })
}

/// Validator findings of error severity.
fn errors(r: &SessionReport) -> Vec<FindingCode> {
    r.received
        .as_ref()
        .expect("the platform received")
        .validation
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect()
}

/// Every validator finding.
fn codes(r: &SessionReport) -> Vec<FindingCode> {
    let v = &r
        .received
        .as_ref()
        .expect("the platform received")
        .validation;
    v.findings
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect()
}

/// A live session of 40 frames (1.6 s) from a camera with `faults`.
async fn live_with(faults: &[&str], tcp: Option<Setup>) -> (SessionReport, PeerHandle<Device>) {
    let (cam, ep, addr) = camera(faults, &[]).await;
    let plat = place(
        ep,
        addr,
        CallRequest::live(CAM, 0, tcp),
        receiving(Some(40), 1.0),
    )
    .await;
    (plat, cam)
}

async fn live(tcp: Option<Setup>, platform: MediaTransport, camera_side: MediaTransport) {
    let (plat, cam) = live_with(&[], tcp).await;
    assert!(plat.errors.is_empty(), "{:?}", plat.errors);
    assert!(
        started_findings(&plat).is_empty(),
        "{:?}",
        started_findings(&plat)
    );
    let n = plat.negotiated.as_ref().unwrap();
    assert_eq!(n.media[0].transport, platform);
    let got = plat.received.as_ref().unwrap();
    assert_eq!(got.stop, StopReason::Frames);
    assert_eq!(got.frames, 40);
    assert!(errors(&plat).is_empty(), "{:#?}", got.validation.findings);
    assert_eq!(got.validation.lost_packets, 0);
    assert_eq!(end_reason(&plat), EndReason::ByeSent);
    assert_eq!(bye_answered(&plat), Some(200));

    // The camera's side: it answered, streamed with the agreed SSRC, stopped on BYE.
    let (call_id, c) = camera_report(&cam).await;
    assert!(!call_id.is_empty());
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    match &c.events[0] {
        SessionEvent::Offer { findings, .. } => assert!(findings.is_empty(), "{findings:?}"),
        e => panic!("{e:?}"),
    }
    let cn = c.negotiated.as_ref().unwrap();
    assert_eq!(cn.media[0].transport, camera_side);
    assert_eq!(cn.ssrc, n.ssrc);
    assert_eq!(end_reason(&c), EndReason::ByeReceived);
    assert!(c.sent.as_ref().unwrap().frames >= 40);
    cam.command(|d, _| assert!(d.media_sessions().is_empty()))
        .await;
}

#[tokio::test]
async fn live_over_udp() {
    live(None, MediaTransport::Udp, MediaTransport::Udp).await;
}

#[tokio::test]
async fn live_over_tcp_with_the_camera_connecting() {
    // a=setup:passive offered: the platform listens, the camera connects.
    live(
        Some(Setup::Passive),
        MediaTransport::TcpPassive,
        MediaTransport::TcpActive,
    )
    .await;
}

#[tokio::test]
async fn live_over_tcp_with_the_platform_connecting() {
    // a=setup:active offered: the camera listens, the platform connects.
    live(
        Some(Setup::Active),
        MediaTransport::TcpActive,
        MediaTransport::TcpPassive,
    )
    .await;
}

#[tokio::test]
async fn a_channel_is_answered_and_an_unknown_id_gets_404() {
    let (_cam, ep, addr) = camera(&[], &[]).await;
    let plat = place(
        ep,
        addr,
        CallRequest::live(&channel_id(CAM, 1), 0, None),
        receiving(Some(10), 1.0),
    )
    .await;
    assert_eq!(plat.received.as_ref().unwrap().frames, 10);
    assert_eq!(end_reason(&plat), EndReason::ByeSent);

    let (_cam, ep, addr) = camera(&[], &[]).await;
    let plat = place(
        ep,
        addr,
        CallRequest::live("34020000001319999999", 0, None),
        receiving(Some(10), 1.0),
    )
    .await;
    assert_eq!(end_reason(&plat), EndReason::Rejected(404));
    assert!(plat.received.is_none());
}

/// A history session: 2 s of media by default, then MediaStatus 121 and the
/// platform's BYE.
async fn history(
    request: CallRequest,
    time_scale: f64,
    options: &[(&str, &str)],
) -> (SessionReport, SessionReport) {
    let (cam, ep, addr) = camera(&[], options).await;
    let plat = place(ep, addr, request, receiving(None, time_scale)).await;
    let (_, c) = camera_report(&cam).await;
    assert!(
        plat.errors.is_empty() && c.errors.is_empty(),
        "{:?} {:?}",
        plat.errors,
        c.errors
    );
    assert!(plat.events.iter().any(|e| matches!(
        e,
        SessionEvent::MediaStatus { notify_type: Some(121), findings } if findings.is_empty()
    )));
    assert!(c
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::MediaStatusAnswered { status: Some(200) })));
    assert_eq!(end_reason(&plat), EndReason::EndOfFile);
    assert_eq!(bye_answered(&plat), Some(200));
    assert_eq!(end_reason(&c), EndReason::ByeReceived);
    let sent = c.sent.as_ref().unwrap();
    assert_eq!(sent.stop, StopReason::Duration);
    let got = plat.received.as_ref().unwrap();
    assert!(errors(&plat).is_empty(), "{:#?}", got.validation.findings);
    assert_eq!(got.validation.video_frames, sent.frames);
    (plat, c)
}

#[tokio::test]
async fn playback_ends_with_media_status_121_and_bye() {
    let (_, c) = history(
        CallRequest::playback(CAM, 0, None, 1_697_955_233, 1_697_958_114),
        1.0,
        &[],
    )
    .await;
    let sent = c.sent.as_ref().unwrap();
    // 2 s of media at 25 fps, in real time.
    assert!((49..=51).contains(&sent.frames), "{sent:?}");
    assert!(sent.elapsed >= Duration::from_millis(1800), "{sent:?}");
}

#[tokio::test]
async fn download_goes_at_the_asked_speed_and_ends_with_media_status_121() {
    // 4 s of media at a=downloadspeed:4: about a second of wall time.
    let (_, c) = history(
        CallRequest::download(CAM, 0, None, 1_697_955_233, 1_697_958_114, Some(4)),
        0.25,
        &[("history_seconds", "4")],
    )
    .await;
    let sent = c.sent.as_ref().unwrap();
    assert!((99..=101).contains(&sent.frames), "{sent:?}");
    assert!(sent.elapsed < Duration::from_millis(2000), "{sent:?}");
    assert!(sent.elapsed >= Duration::from_millis(800), "{sent:?}");
}

#[tokio::test]
async fn the_bye_action_ends_the_session_from_the_camera() {
    let (cam, ep, addr) = camera(&[], &[]).await;
    let platform = tokio::spawn(place(
        ep,
        addr,
        CallRequest::live(CAM, 0, None),
        receiving(None, 1.0),
    ));
    // Once streaming, the camera hangs up.
    let mut live = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        cam.command(move |d, _| {
            let _ = tx.send(d.media_sessions().len());
        })
        .await;
        if rx.await.unwrap() == 1 {
            live = true;
            break;
        }
    }
    assert!(live, "no session");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    cam.command(move |d, now| {
        let _ = tx.send(d.trigger(now, "bye", &BTreeMap::new()));
    })
    .await;
    rx.await.unwrap().unwrap();
    let plat = platform.await.unwrap();
    assert_eq!(end_reason(&plat), EndReason::ByeReceived);
    assert!(plat.received.as_ref().unwrap().frames > 5);
    let (_, c) = camera_report(&cam).await;
    assert_eq!(end_reason(&c), EndReason::ByeSent);
    assert_eq!(c.sent.as_ref().unwrap().stop, StopReason::Cancelled);
}

/// 语音广播: the platform's notification, the camera's 200 and Response, then the
/// camera's audio INVITE (with a receiving port it opened), answered and ended by
/// the platform.
#[tokio::test]
async fn broadcast_notification_brings_the_audio_invite() {
    let (cam, mut ep, addr) = camera(&[], &[]).await;
    let cfg = BroadcastSourceConfig::new(PLAT, VOICE, CAM, CAM, ep.local_addr(), addr, ip());
    let mut src = BroadcastSource::new(cfg);
    src.start(SystemClock.now());
    let audio = UdpSocket::bind(SocketAddr::new(ip(), 0)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut hung_up = false;
    loop {
        while let Some(t) = src.poll_transmit() {
            ep.send(Some(t.to), &t.bytes).await.unwrap();
        }
        let now = SystemClock.now();
        while let Some(e) = src.poll_event() {
            if let BroadcastEvent::Session(s) = &e {
                match s.as_ref() {
                    SessionEvent::Offer {
                        negotiated,
                        findings,
                    } => {
                        assert!(findings.is_empty(), "{findings:?}");
                        let m = negotiated.media_of(&MediaKind::Audio).unwrap();
                        assert_eq!(m.encoding, "PCMA");
                        assert_ne!(m.remote.port(), 0, "the camera announces its port");
                        src.accept(now, audio.local_addr().unwrap().port()).unwrap();
                    }
                    SessionEvent::Started { .. } => {
                        src.hangup(now);
                        hung_up = true;
                    }
                    _ => {}
                }
            }
            seen.push(e);
        }
        if hung_up
            && seen.iter().any(|e| {
                matches!(e, BroadcastEvent::Session(s)
                    if matches!(s.as_ref(), SessionEvent::ByeAnswered { .. }))
            })
        {
            break;
        }
        if let Some(t) = src.poll_timeout() {
            if t <= now.mono {
                src.handle_timeout(now);
                continue;
            }
        }
        assert!(Instant::now() < deadline, "{seen:#?}");
        let wake = (Instant::now() + Duration::from_millis(20)).min(deadline);
        if let Some(inc) = ep.recv(wake).await.unwrap() {
            let msg = SipMessage::parse(&inc.raw).unwrap().message;
            src.handle_message(SystemClock.now(), inc.from, &msg);
        }
    }
    assert!(src.response_ok());
    assert!(seen.contains(&BroadcastEvent::NotifyAnswered { status: Some(200) }));
    assert!(seen.iter().any(|e| matches!(
        e,
        BroadcastEvent::Session(s) if matches!(s.as_ref(), SessionEvent::ByeAnswered { status: Some(200), .. })
    )));
    let invite_from = src.session().unwrap().negotiated().unwrap();
    assert_eq!(invite_from.offer.origin.username, CAM);

    // The camera's side: it asked for a port first, then ran the session to the BYE.
    let (_, c) = camera_report(&cam).await;
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(
        matches!(c.events[0], SessionEvent::Prepare { .. }),
        "{:?}",
        c.events
    );
    assert!(
        started_findings(&c).is_empty(),
        "{:?}",
        started_findings(&c)
    );
    assert_eq!(end_reason(&c), EndReason::ByeReceived);
}

// --- media faults: each shows, and the clean camera's live tests above show none ---

#[tokio::test]
async fn wrong_ssrc_shows_in_the_answer_findings() {
    let (plat, _cam) = live_with(&["wrong-ssrc"], None).await;
    assert!(
        started_findings(&plat).contains(&"gb.session.ssrc-mismatch"),
        "{:?}",
        started_findings(&plat)
    );
}

#[tokio::test]
async fn rtp_wrong_ssrc_shows_in_the_validation() {
    let (plat, _cam) = live_with(&["rtp-wrong-ssrc"], None).await;
    assert!(started_findings(&plat).is_empty());
    assert!(
        errors(&plat).contains(&FindingCode::SsrcMismatch),
        "{:?}",
        codes(&plat)
    );
}

#[tokio::test]
async fn missing_psm_shows_in_the_validation() {
    let (plat, _cam) = live_with(&["missing-psm"], None).await;
    let c = codes(&plat);
    assert!(
        c.contains(&FindingCode::PsmMissingBeforeKeyFrame)
            || c.contains(&FindingCode::KeyFrameWithoutPsm),
        "{c:?}"
    );
}

#[tokio::test]
async fn no_marker_shows_in_the_validation() {
    let (plat, _cam) = live_with(&["no-marker"], None).await;
    assert!(
        errors(&plat).contains(&FindingCode::MarkerMissing),
        "{:?}",
        codes(&plat)
    );
}

#[tokio::test]
async fn ms_timestamps_show_in_the_validation() {
    let (plat, _cam) = live_with(&["ms-timestamps"], None).await;
    assert!(
        errors(&plat).contains(&FindingCode::TimestampClockMismatch),
        "{:?}",
        codes(&plat)
    );
}

/// What a hand-driven live session saw around its BYE.
struct ByeOutcome {
    /// RTP datagrams in the half second before the BYE.
    before: usize,
    /// RTP datagrams from 0.3 s to 1.5 s after the BYE was answered (or given up).
    after: usize,
    bye: Option<u16>,
    bye_findings: Vec<&'static str>,
}

/// A live session over UDP driven by hand with its own RTP socket; the platform
/// hangs up after half a second and counts what still arrives.
async fn hang_up_and_count(faults: &[&str]) -> (ByeOutcome, PeerHandle<Device>) {
    let (cam, ep, addr) = camera(faults, &[]).await;
    let rtp = UdpSocket::bind(SocketAddr::new(ip(), 0)).await.unwrap();
    let mut cfg = UacConfig::new(PLAT, ep.local_addr(), addr, ip());
    // A short T1 bounds the wait for an unanswered BYE (64*T1 = 3.2 s).
    cfg.timers = Timers {
        t1: Duration::from_millis(50),
        t2: Duration::from_millis(400),
    };
    let mut uac = MediaUac::new(
        cfg,
        CallRequest::live(CAM, rtp.local_addr().unwrap().port(), None),
    );
    uac.start(SystemClock.now());
    let (ctl, ctl_rx) = mpsc::channel::<Command<MediaUac>>(8);
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let sip = tokio::spawn(driver::run(uac, ep, SystemClock, ctl_rx, ev_tx));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "the session did not start");
        match events.try_recv() {
            Ok(SessionEvent::Started { .. }) => break,
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let before = count(&rtp, Duration::from_millis(500)).await;
    ctl.send(Box::new(|m: &mut MediaUac, now| m.hangup(now)))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    let (bye, bye_findings) = loop {
        assert!(Instant::now() < deadline, "no end to the BYE");
        // Keep the socket drained while waiting.
        let _ = count(&rtp, Duration::from_millis(10)).await;
        if let Ok(SessionEvent::ByeAnswered { status, findings }) = events.try_recv() {
            break (status, findings.iter().map(|f| f.code).collect());
        }
    };
    let _ = count(&rtp, Duration::from_millis(300)).await;
    let after = count(&rtp, Duration::from_millis(1200)).await;
    drop(ctl);
    sip.await.unwrap().unwrap();
    (
        ByeOutcome {
            before,
            after,
            bye,
            bye_findings,
        },
        cam,
    )
}

/// Datagrams arriving on `s` within `d`.
async fn count(s: &UdpSocket, d: Duration) -> usize {
    let end = tokio::time::Instant::now() + d;
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    while let Ok(Ok(_)) = tokio::time::timeout_at(end, s.recv_from(&mut buf)).await {
        n += 1;
    }
    n
}

#[tokio::test]
async fn stream_after_bye_shows_as_media_after_the_bye() {
    let (clean, _cam) = hang_up_and_count(&[]).await;
    assert!(clean.before > 10, "{}", clean.before);
    assert_eq!(clean.bye, Some(200));
    assert_eq!(clean.after, 0);

    let (faulty, _cam) = hang_up_and_count(&["stream-after-bye"]).await;
    assert!(faulty.before > 10, "{}", faulty.before);
    assert_eq!(faulty.bye, Some(200));
    assert!(faulty.after > 10, "{}", faulty.after);
}

#[tokio::test]
async fn ignore_bye_leaves_the_bye_unanswered_and_the_media_flowing() {
    let (o, cam) = hang_up_and_count(&["ignore-bye"]).await;
    assert!(o.before > 10, "{}", o.before);
    assert_eq!(o.bye, None);
    assert_eq!(o.bye_findings, vec!["gb.session.bye-unanswered"]);
    assert!(o.after > 10, "{}", o.after);
    // The camera still holds the session; its own `bye` ends it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    cam.command(move |d, now| {
        let _ = tx.send(d.trigger(now, "bye", &BTreeMap::new()));
    })
    .await;
    rx.await.unwrap().unwrap();
    let (_, c) = camera_report(&cam).await;
    assert_eq!(end_reason(&c), EndReason::ByeSent);
}
