//! Media sessions over loopback: the calling machine (platform) and the answering
//! machine (camera) exchange INVITE/200/ACK/BYE (and MediaStatus) over real UDP SIP
//! sockets, and the media sender and receiver start from what they negotiated: live
//! over UDP, over TCP with the platform listening (TCP被动) and over TCP with the
//! camera listening (TCP主动), and a download that ends with MediaStatus 121. The
//! receiver's validator must report no finding and every frame, and BYE must stop
//! the stream.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use camcert::media::{MediaSource, ReceiverConfig, SenderConfig, StopReason};
use camcert::peers::session::{answer, call, MediaPlan, SessionReport};
use camcert::proto::gb28181::session::{
    CallRequest, EndReason, MediaTransport, SessionEvent, UacConfig, UasConfig,
};
use camcert::proto::ps::annexb::VideoCodec;
use camcert::proto::sdp::Setup;
use camcert::proto::Transport;
use camcert::transport::Endpoint;
use common::root;

const PLAT: &str = "34020000002000000001";
const CAM: &str = "34020000001320000001";
const SCALE: f64 = 0.1;

fn h264() -> Arc<MediaSource> {
    Arc::new(
        MediaSource::from_file(root().join("captures/sample-h264-320x240-25fps.h264"), None)
            .unwrap(),
    )
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn camera_plan(looping: bool) -> MediaPlan {
    let ip = "127.0.0.1".parse().unwrap();
    let mut p = MediaPlan::new(ip, Some(h264()), VideoCodec::H264);
    p.sender = SenderConfig {
        time_scale: SCALE,
        looping,
        ..SenderConfig::new(0)
    };
    p.max_session = Duration::from_secs(30);
    p
}

fn platform_plan(frames: Option<u64>) -> MediaPlan {
    let ip = "127.0.0.1".parse().unwrap();
    let mut p = MediaPlan::new(ip, None, VideoCodec::H264);
    p.receiver = ReceiverConfig {
        max_frames: frames,
        max_duration: Duration::from_secs(20),
        media_timeout: Duration::from_secs(3),
        time_scale: SCALE,
        ..ReceiverConfig::new(0, VideoCodec::H264)
    };
    p.max_session = Duration::from_secs(30);
    p
}

/// Camera and platform on their own UDP SIP sockets; the platform calls.
async fn session(
    request: impl FnOnce(u16) -> CallRequest,
    cam: MediaPlan,
    plat: MediaPlan,
) -> (SessionReport, SessionReport) {
    let cam_ep = Endpoint::bind(Transport::Udp, loopback()).await.unwrap();
    let plat_ep = Endpoint::bind(Transport::Udp, loopback()).await.unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    let uas = UasConfig::new(CAM, cam_ep.local_addr(), ip);
    let uac = UacConfig::new(PLAT, plat_ep.local_addr(), cam_ep.local_addr(), ip);
    let (c, p) = tokio::join!(
        answer(cam_ep, uas, &cam),
        call(plat_ep, uac, request(0), &plat)
    );
    (c.unwrap(), p.unwrap())
}

fn started(r: &SessionReport) -> Vec<&'static str> {
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

async fn live(tcp: Option<Setup>, cam_transport: MediaTransport, plat_transport: MediaTransport) {
    let (cam, plat) = session(
        |port| CallRequest::live(CAM, port, tcp),
        camera_plan(true),
        platform_plan(Some(50)),
    )
    .await;
    assert!(cam.errors.is_empty(), "{:?}", cam.errors);
    assert!(plat.errors.is_empty(), "{:?}", plat.errors);
    // Both sides read each other without a finding.
    match &cam.events[0] {
        SessionEvent::Offer { findings, .. } => assert!(findings.is_empty(), "{findings:?}"),
        e => panic!("{e:?}"),
    }
    assert!(started(&plat).is_empty(), "{:?}", started(&plat));
    let (pn, cn) = (
        plat.negotiated.as_ref().unwrap(),
        cam.negotiated.as_ref().unwrap(),
    );
    assert_eq!(pn.media[0].transport, plat_transport);
    assert_eq!(cn.media[0].transport, cam_transport);
    assert_eq!(pn.ssrc, cn.ssrc);

    // The receiver saw 50 clean frames with the negotiated SSRC.
    let got = plat.received.as_ref().unwrap();
    let v = &got.validation;
    assert!(v.is_clean(), "{:#?}", v.findings);
    assert_eq!(got.stop, StopReason::Frames);
    assert_eq!(got.frames, 50);
    assert_eq!(v.video_frames, 50, "{v:#?}");
    assert_eq!(v.lost_packets, 0);
    assert!(!got.media_timeout);

    // The platform hung up; the camera stopped streaming.
    assert_eq!(end_reason(&plat), EndReason::ByeSent);
    assert_eq!(bye_answered(&plat), Some(200));
    assert_eq!(end_reason(&cam), EndReason::ByeReceived);
    let sent = cam.sent.as_ref().unwrap();
    assert!(sent.frames >= 50, "{sent:?}");
    assert!(sent.capture.is_empty());
    // Over UDP only the BYE can stop the looping sender; over TCP the receiver may
    // close the connection first.
    if tcp.is_none() {
        assert_eq!(sent.stop, StopReason::Cancelled);
    } else {
        assert!(
            matches!(sent.stop, StopReason::Cancelled | StopReason::PeerClosed),
            "{:?}",
            sent.stop
        );
    }
}

#[tokio::test]
async fn live_over_udp() {
    live(None, MediaTransport::Udp, MediaTransport::Udp).await;
}

#[tokio::test]
async fn live_over_tcp_with_the_platform_listening() {
    // 媒体传输方式 TCP被动: a=setup:passive offered, the camera connects.
    live(
        Some(Setup::Passive),
        MediaTransport::TcpActive,
        MediaTransport::TcpPassive,
    )
    .await;
}

#[tokio::test]
async fn live_over_tcp_with_the_camera_listening() {
    // 媒体传输方式 TCP主动: a=setup:active offered, the platform connects.
    live(
        Some(Setup::Active),
        MediaTransport::TcpPassive,
        MediaTransport::TcpActive,
    )
    .await;
}

#[tokio::test]
async fn download_ends_with_media_status_and_every_frame_arrives() {
    let (cam, plat) = session(
        |port| CallRequest::download(CAM, port, None, 1_697_955_233, 1_697_958_114, Some(4)),
        camera_plan(false),
        platform_plan(None),
    )
    .await;
    assert!(cam.errors.is_empty() && plat.errors.is_empty());
    let sent = cam.sent.as_ref().unwrap();
    assert_eq!(sent.stop, StopReason::EndOfSource);
    assert_eq!(sent.frames, 50);
    let got = plat.received.as_ref().unwrap();
    assert!(got.validation.is_clean(), "{:#?}", got.validation.findings);
    assert_eq!(got.validation.video_frames, sent.frames);
    assert_eq!(got.packets, sent.packets);
    // MediaStatus 121, answered; then the platform's BYE.
    assert!(plat.events.iter().any(|e| matches!(
        e,
        SessionEvent::MediaStatus { notify_type: Some(121), findings } if findings.is_empty()
    )));
    assert!(cam
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::MediaStatusAnswered { status: Some(200) })));
    assert_eq!(end_reason(&plat), EndReason::EndOfFile);
    assert_eq!(end_reason(&cam), EndReason::ByeReceived);
    assert_eq!(bye_answered(&plat), Some(200));
}
