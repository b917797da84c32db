//! The reference platform places and runs media sessions against a device: a
//! test endpoint registers to it (digest), answers its INVITE as a camera
//! streaming the sample capture, and the platform's finished sessions
//! (`PeerHandle::sessions`) must show the frames received without findings.
//! Live over UDP, TCP主动 and TCP被动; BYE from either side; playback control
//! (the INFO bodies the device receives); a download ending with MediaStatus
//! 121; 语音广播 signalling; a device's INVITE that no broadcast waits for.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camcert::media::{MediaSource, SenderConfig};
use camcert::peers::session::{self, MediaPlan, SessionReport};
use camcert::peers::{self, PeerHandle};
use camcert::proto::gb28181::platform::{Platform, PlatformConfig, PlatformEvent};
use camcert::proto::gb28181::register::{build_register, register_uri, RegisterParams};
use camcert::proto::gb28181::session::mansrtsp::Method;
use camcert::proto::gb28181::session::{
    BroadcastEvent, BroadcastTarget, BroadcastTargetConfig, CallRequest, EndReason, MediaTransport,
    MediaUas, SessionEvent, UacConfig, UasConfig,
};
use camcert::proto::ps::annexb::VideoCodec;
use camcert::proto::sip::digest::{Challenge, Credentials};
use camcert::proto::sip::SipMessage;
use camcert::proto::Transport;
use camcert::transport::clock::{Clock, SystemClock};
use camcert::transport::driver::{self, Command};
use camcert::transport::{Endpoint, PeerAddr};
use common::root;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const PLAT: &str = "34020000002000000001";
const CAM: &str = "34020000001320000001";
const PASSWORD: &str = "12345678";

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn platform() -> PeerHandle<Platform> {
    let mut cfg = PlatformConfig::new(PLAT);
    cfg.devices.insert(CAM.into(), PASSWORD.into());
    let listen = PeerAddr {
        transport: Transport::Udp,
        addr: lo(),
    };
    peers::start_platform(cfg, listen).await.unwrap()
}

async fn recv(ep: &mut Endpoint) -> SipMessage {
    let deadline = Instant::now() + Duration::from_secs(3);
    let got = ep.recv(deadline).await.unwrap().expect("an answer");
    SipMessage::parse(&got.raw).unwrap().message
}

/// REGISTER, 401, REGISTER with the digest, 200 (§注册) from `ep`.
async fn register(ep: &mut Endpoint, server: SocketAddr) {
    let local = ep.local_addr();
    let params = |cseq: u32, branch: &'static str| RegisterParams {
        device_id: CAM,
        platform_id: PLAT,
        domain: &PLAT[..10],
        local,
        server,
        transport: Transport::Udp,
        call_id: "reg-1@127.0.0.1",
        from_tag: "regtag",
        branch,
        cseq,
        expires: 3600,
        authorization: None,
        user_agent: "test device",
    };
    let first = build_register(&params(1, "z9hG4bK-reg-1"));
    ep.send(Some(server), &first.to_bytes()).await.unwrap();
    let challenge = recv(ep).await;
    assert_eq!(challenge.status(), Some(401), "{}", challenge.summary());
    let ch = Challenge::parse(challenge.headers.get("WWW-Authenticate").unwrap()).unwrap();
    let creds = Credentials::answer(
        &ch,
        CAM,
        PASSWORD,
        "REGISTER",
        &register_uri(PLAT, server),
        "0a4f113b",
    );
    let second = build_register(&RegisterParams {
        authorization: Some(&creds),
        ..params(2, "z9hG4bK-reg-2")
    });
    ep.send(Some(server), &second.to_bytes()).await.unwrap();
    let ok = recv(ep).await;
    assert_eq!(ok.status(), Some(200), "{}", ok.summary());
}

/// The platform and a device endpoint registered to it.
async fn setup() -> (PeerHandle<Platform>, Endpoint) {
    let plat = platform().await;
    let mut ep = Endpoint::bind(Transport::Udp, lo()).await.unwrap();
    register(&mut ep, plat.addr).await;
    (plat, ep)
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn trigger(plat: &PeerHandle<Platform>, action: &str, pairs: &[(&str, &str)]) {
    let (tx, rx) = oneshot::channel();
    let (name, a) = (action.to_string(), args(pairs));
    plat.command(move |p, now| {
        let _ = tx.send(p.trigger(now, &name, &a));
    })
    .await;
    let r = rx.await.unwrap();
    assert!(r.is_ok(), "{action:?}: {r:?}");
}

/// The camera's media: the sample capture in real time (the platform's
/// receiver judges the clock on real time), looping or up to `frames`.
fn camera_plan(frames: Option<u64>) -> MediaPlan {
    let source = Arc::new(
        MediaSource::from_file(root().join("captures/sample-h264-320x240-25fps.h264"), None)
            .unwrap(),
    );
    let mut p = MediaPlan::new("127.0.0.1".parse().unwrap(), Some(source), VideoCodec::H264);
    p.sender = SenderConfig {
        looping: frames.is_none(),
        max_frames: frames,
        ..SenderConfig::new(0)
    };
    p.linger = Duration::from_secs(2);
    p.max_session = Duration::from_secs(20);
    p
}

/// The device's side of one session: a [`MediaUas`] on the registered
/// endpoint with its media worker, its events copied out as they come.
struct DeviceSide {
    events: mpsc::UnboundedReceiver<SessionEvent>,
    hangup: Option<oneshot::Sender<()>>,
    report: JoinHandle<SessionReport>,
}

fn answer(ep: Endpoint, plan: MediaPlan) -> DeviceSide {
    let mut cfg = UasConfig::new(CAM, ep.local_addr(), plan.bind_ip);
    cfg.file_size = Some(20_377);
    let (ctl, ctl_rx) = mpsc::channel::<Command<MediaUas>>(16);
    let (ev_tx, mut machine_events) = mpsc::unbounded_channel();
    let sip = tokio::spawn(driver::run(
        MediaUas::new(cfg),
        ep,
        SystemClock,
        ctl_rx,
        ev_tx,
    ));
    let (cmd_tx, mut cmds) = mpsc::unbounded_channel();
    let worker = session::spawn_worker(plan.clone(), None, move |c| {
        let _ = cmd_tx.send(c);
    });
    let (copy_tx, events) = mpsc::unbounded_channel();
    let (hangup, mut hangup_rx) = oneshot::channel::<()>();
    let report = tokio::spawn(async move {
        let mut task = worker.task;
        let mut hangup_done = false;
        let mut report = loop {
            tokio::select! {
                e = machine_events.recv() => match e {
                    Some(e) => {
                        let _ = copy_tx.send(e.clone());
                        let _ = worker.events.send(e);
                    }
                    None => break (&mut task).await.unwrap(),
                },
                Some(c) = cmds.recv() => {
                    let _ = ctl.send(Box::new(move |m: &mut MediaUas, now| m.apply(now, c))).await;
                }
                r = &mut hangup_rx, if !hangup_done => {
                    hangup_done = true;
                    if r.is_ok() {
                        let _ = ctl.send(Box::new(|m: &mut MediaUas, now| m.hangup(now))).await;
                    }
                }
                r = &mut task => break r.unwrap(),
            }
        };
        // The answer to a BYE this side sent.
        let until = tokio::time::Instant::now() + plan.linger;
        loop {
            let (tx, rx) = oneshot::channel();
            let _ = ctl
                .send(Box::new(move |m: &mut MediaUas, _| {
                    let _ = tx.send(m.is_finished());
                }))
                .await;
            while let Ok(e) = machine_events.try_recv() {
                report.events.push(e);
            }
            if rx.await.unwrap_or(true) || tokio::time::Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(ctl);
        let _ = sip.await;
        report
    });
    DeviceSide {
        events,
        hangup: Some(hangup),
        report,
    }
}

impl DeviceSide {
    /// Wait for the device's session to start streaming.
    async fn started(&mut self) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.events.recv().await {
                    Some(SessionEvent::Started { .. }) => return,
                    Some(_) => {}
                    None => panic!("the device's session ended before it started"),
                }
            }
        })
        .await
        .expect("the session started");
    }

    async fn finish(self) -> SessionReport {
        tokio::time::timeout(Duration::from_secs(15), self.report)
            .await
            .expect("the device's session ended")
            .unwrap()
    }
}

/// The platform's report of its one finished session.
async fn platform_report(plat: &PeerHandle<Platform>) -> SessionReport {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, r)) = plat.sessions.lock().unwrap().first() {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the platform's session never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn end_reason(r: &SessionReport) -> EndReason {
    r.events
        .iter()
        .find_map(|e| match e {
            SessionEvent::Ended { reason, .. } => Some(*reason),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the session ended: {:#?}", r.events))
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

/// The platform received clean video over `transport` and the session ended
/// for `reason` on the platform's side.
fn assert_received(r: &SessionReport, transport: MediaTransport, reason: EndReason) {
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(started_findings(r).is_empty(), "{:?}", started_findings(r));
    assert_eq!(r.negotiated.as_ref().unwrap().media[0].transport, transport);
    let got = r.received.as_ref().expect("the platform received");
    assert!(got.frames >= 10, "{got:?}");
    assert!(got.validation.is_clean(), "{:#?}", got.validation.findings);
    assert!(!got.media_timeout);
    assert_eq!(end_reason(r), reason);
}

async fn live(media: &str, transport: MediaTransport) {
    let (plat, ep) = setup().await;
    let mut dev = answer(ep, camera_plan(None));
    trigger(&plat, "play", &[("media", media)]).await;
    dev.started().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    trigger(&plat, "bye", &[]).await;
    let cam = dev.finish().await;
    assert_eq!(end_reason(&cam), EndReason::ByeReceived);
    assert!(cam.sent.as_ref().unwrap().frames >= 10);
    let r = platform_report(&plat).await;
    assert_received(&r, transport, EndReason::ByeSent);
}

#[tokio::test]
async fn platform_plays_live_over_udp() {
    live("udp", MediaTransport::Udp).await;
}

#[tokio::test]
async fn platform_plays_live_over_tcp_with_the_device_connecting() {
    // TCP主动: the platform offers a=setup:passive and listens.
    live("tcp-active", MediaTransport::TcpPassive).await;
}

#[tokio::test]
async fn platform_plays_live_over_tcp_with_the_platform_connecting() {
    // TCP被动: the platform offers a=setup:active and connects.
    live("tcp-passive", MediaTransport::TcpActive).await;
}

#[tokio::test]
async fn device_bye_ends_the_platforms_session() {
    let (plat, ep) = setup().await;
    let mut dev = answer(ep, camera_plan(None));
    trigger(&plat, "play", &[]).await;
    dev.started().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let _ = dev.hangup.take().unwrap().send(());
    let cam = dev.finish().await;
    assert_eq!(end_reason(&cam), EndReason::ByeSent);
    let r = platform_report(&plat).await;
    assert_received(&r, MediaTransport::Udp, EndReason::ByeReceived);
}

#[tokio::test]
async fn playback_control_reaches_the_device_as_mansrtsp() {
    let (plat, ep) = setup().await;
    let tap = ep.tap.clone();
    let mut dev = answer(ep, camera_plan(None));
    trigger(
        &plat,
        "playback",
        &[("start", "1697955233"), ("end", "1697958114")],
    )
    .await;
    dev.started().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (action, a) in [
        ("pause", vec![]),
        ("resume", vec![]),
        ("scale", vec![("value", "2")]),
        ("seek", vec![("seconds", "10")]),
        ("teardown", vec![]),
    ] {
        trigger(&plat, action, &a).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    trigger(&plat, "bye", &[]).await;
    let cam = dev.finish().await;

    let controls: Vec<_> = cam
        .events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Control { request, findings } => {
                assert!(findings.is_empty(), "{findings:?}");
                Some(request.clone())
            }
            _ => None,
        })
        .collect();
    let methods: Vec<Method> = controls.iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        methods,
        [
            Method::Pause,
            Method::Play,
            Method::Play,
            Method::Play,
            Method::Teardown
        ]
    );
    assert_eq!(controls[2].scale, Some(2.0));
    // The bodies as they crossed the wire.
    let infos: Vec<String> = tap
        .packets()
        .iter()
        .map(|p| String::from_utf8_lossy(&p.bytes).to_string())
        .filter(|t| t.starts_with("INFO "))
        .collect();
    assert_eq!(infos.len(), 5, "{infos:#?}");
    assert!(
        infos[0].contains("Content-Type: Application/MANSRTSP"),
        "{}",
        infos[0]
    );
    assert!(infos[0].contains("PAUSE RTSP/1.0"), "{}", infos[0]);
    assert!(infos[0].contains("PauseTime: now"), "{}", infos[0]);
    assert!(infos[1].contains("PLAY RTSP/1.0"), "{}", infos[1]);
    assert!(infos[1].contains("Range: npt=now-"), "{}", infos[1]);
    assert!(infos[2].contains("Scale: 2"), "{}", infos[2]);
    assert!(infos[3].contains("Range: npt=10-"), "{}", infos[3]);
    assert!(infos[4].contains("TEARDOWN RTSP/1.0"), "{}", infos[4]);

    let r = platform_report(&plat).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let answered = r
        .events
        .iter()
        .filter(|e| {
            matches!(e, SessionEvent::ControlAnswered { status: Some(200), findings, .. } if findings.is_empty())
        })
        .count();
    assert_eq!(answered, 5, "{:#?}", r.events);
    assert_eq!(end_reason(&r), EndReason::ByeSent);
    assert!(r.received.as_ref().unwrap().frames > 0);
}

#[tokio::test]
async fn download_ends_with_media_status_121() {
    let (plat, ep) = setup().await;
    let dev = answer(ep, camera_plan(Some(30)));
    trigger(
        &plat,
        "download",
        &[
            ("start", "1697955233"),
            ("end", "1697958114"),
            ("speed", "4"),
        ],
    )
    .await;
    let cam = dev.finish().await;
    assert!(cam
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::MediaStatusAnswered { status: Some(200) })));
    assert_eq!(end_reason(&cam), EndReason::ByeReceived);
    let r = platform_report(&plat).await;
    assert!(r.events.iter().any(|e| matches!(
        e,
        SessionEvent::MediaStatus {
            notify_type: Some(121),
            findings
        } if findings.is_empty()
    )));
    assert_received(&r, MediaTransport::Udp, EndReason::EndOfFile);
    assert_eq!(r.received.as_ref().unwrap().frames, 30);
}

#[tokio::test]
async fn broadcast_completes_its_signalling() {
    let (mut plat, mut ep) = setup().await;
    let cfg = BroadcastTargetConfig::new(CAM, PLAT, ep.local_addr(), plat.addr, lo().ip());
    let mut target = BroadcastTarget::new(cfg);
    trigger(&plat, "broadcast", &[]).await;

    // The device: answer the notification, respond, INVITE the voice source;
    // hang on until the platform ends the audio with BYE.
    let mut seen = Vec::new();
    let mut bye_sent = false;
    let deadline = Instant::now() + Duration::from_secs(8);
    let ended = loop {
        assert!(Instant::now() < deadline, "broadcast stalled: {seen:#?}");
        let now = SystemClock.now();
        while let Some(t) = target.poll_transmit() {
            ep.send(Some(t.to), &t.bytes).await.unwrap();
        }
        let mut ended = None;
        while let Some(e) = target.poll_event() {
            match &e {
                BroadcastEvent::Notified { .. } => target.start_audio(now, 40_000, None),
                BroadcastEvent::Session(s) => match &**s {
                    SessionEvent::Started { findings, .. } => {
                        assert!(findings.is_empty(), "{findings:?}");
                        if !bye_sent {
                            bye_sent = true;
                            trigger(&plat, "bye", &[]).await;
                        }
                    }
                    SessionEvent::Ended { reason, .. } => ended = Some(*reason),
                    _ => {}
                },
                _ => {}
            }
            seen.push(e);
        }
        if ended.is_some() {
            break ended;
        }
        let wake = target
            .poll_timeout()
            .unwrap_or(now.mono + Duration::from_millis(20))
            .min(now.mono + Duration::from_millis(20));
        if let Some(got) = ep.recv(wake).await.unwrap() {
            let m = SipMessage::parse(&got.raw).unwrap().message;
            target.handle_message(SystemClock.now(), got.from, &m);
        } else {
            target.handle_timeout(SystemClock.now());
        }
    };
    assert_eq!(ended, Some(EndReason::ByeReceived), "{seen:#?}");
    assert!(seen
        .iter()
        .any(|e| matches!(e, BroadcastEvent::ResponseAnswered { status: Some(200) })));
    // Answer the BYE before the platform's report is read.
    while let Some(t) = target.poll_transmit() {
        ep.send(Some(t.to), &t.bytes).await.unwrap();
    }

    // The platform saw the notification answered and the device say OK.
    let mut broadcast = Vec::new();
    while let Ok(e) = plat.events.try_recv() {
        if let PlatformEvent::Broadcast { device_id, event } = e {
            assert_eq!(device_id, CAM);
            broadcast.push(event);
        }
    }
    assert!(broadcast
        .iter()
        .any(|e| matches!(e, BroadcastEvent::NotifyAnswered { status: Some(200) })));
    assert!(broadcast
        .iter()
        .any(|e| matches!(e, BroadcastEvent::Response { findings, .. } if findings.is_empty())));
    // Its audio session was offered, started and ended by its BYE.
    let r = platform_report(&plat).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::Offer { findings, .. } if findings.is_empty())));
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::Started { .. })));
    assert_eq!(end_reason(&r), EndReason::ByeSent);
}

#[tokio::test]
async fn invite_outside_a_broadcast_is_refused() {
    let (plat, ep) = setup().await;
    let ip = lo().ip();
    let cfg = UacConfig::new(CAM, ep.local_addr(), plat.addr, ip);
    let mut plan = MediaPlan::new(ip, None, VideoCodec::H264);
    plan.linger = Duration::from_secs(1);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        session::call(ep, cfg, CallRequest::live(PLAT, 0, None), &plan),
    )
    .await
    .expect("the call ended")
    .unwrap();
    assert_eq!(end_reason(&r), EndReason::Rejected(404));
    // Nothing was hosted for it.
    assert!(plat.sessions.lock().unwrap().is_empty());
}

#[tokio::test]
async fn media_actions_need_a_registered_device() {
    let plat = platform().await;
    let (tx, rx) = oneshot::channel();
    plat.command(move |p, now| {
        let _ = tx.send(p.trigger(now, "play", &BTreeMap::new()));
    })
    .await;
    let err = rx.await.unwrap().unwrap_err();
    assert!(err.contains("no device is registered"), "{err}");
}
