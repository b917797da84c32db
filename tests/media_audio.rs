//! G.711 audio over loopback (语音对讲, 语音广播): one way and both ways (Talk is
//! sendrecv on one port or connection) over UDP, over TCP with the sender connecting
//! and over TCP with the sender listening. The receiver's check must be clean, count
//! every packet and see the 8 kHz clock; a wrong SSRC or a 90 kHz clock must be found.

use std::net::SocketAddr;
use std::time::Duration;

use camcert::media::{
    AudioReceiveReport, AudioReceiverConfig, AudioSendReport, AudioSenderConfig, AudioSocket,
    Cancel, Link, StopReason, Tone,
};
use camcert::proto::g711::Law;
use camcert::proto::ps::validate::FindingCode;
use camcert::proto::rtp::audio::AudioFaults;
use camcert::proto::rtp::RtpPacket;

const SCALE: f64 = 0.25;
const PACKETS: u64 = 100;
const T: Duration = Duration::from_secs(5);

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn sender(ssrc: u32) -> AudioSenderConfig {
    AudioSenderConfig {
        time_scale: SCALE,
        max_packets: Some(PACKETS),
        capture_bytes: 1 << 20,
        ..AudioSenderConfig::new(ssrc)
    }
}

fn receiver(ssrc: u32) -> AudioReceiverConfig {
    AudioReceiverConfig {
        max_packets: Some(PACKETS),
        max_duration: Duration::from_secs(10),
        media_timeout: Duration::from_secs(3),
        time_scale: SCALE,
        ..AudioReceiverConfig::new(ssrc)
    }
}

fn assert_clean(got: &AudioReceiveReport, sent: &AudioSendReport, ssrc: u32) {
    let c = &got.check;
    assert!(c.is_clean(), "{:#?}", c.findings);
    assert_eq!(got.stop, StopReason::Frames);
    assert_eq!(got.packets, PACKETS);
    assert_eq!(c.ssrc, Some(ssrc));
    assert_eq!(c.payload_type, Some(8));
    assert_eq!(c.lost_packets, 0);
    assert_eq!(c.timestamp_step, Some(160));
    assert_eq!(c.samples_per_packet, Some(160));
    let hz = c.estimated_clock_hz.expect("the clock was judged");
    assert!((hz - 8000.0).abs() < 1600.0, "{hz}");
    assert_eq!(sent.packets, PACKETS);
    assert_eq!(sent.samples, PACKETS * 160);
    // The packets on the wire: the tone's samples as A-law, timestamps by 160.
    let tone = Tone::default();
    for (i, p) in got.capture.iter().take(3).enumerate() {
        let p = RtpPacket::parse(p.rtp()).unwrap();
        assert_eq!(p.header.sequence, i as u16);
        assert_eq!(p.header.timestamp, 160 * i as u32);
        assert_eq!(p.header.marker, i == 0);
        assert_eq!(
            p.payload,
            &Law::ALaw.encode(&tone.samples(160 * i as u64, 160))[..]
        );
    }
}

/// `a` sends to `b`; `b` receives.
async fn one_way(a: Link, b: Link, b_first: bool) {
    let (a, b) = if b_first {
        let b = AudioSocket::open(b, T).await.unwrap();
        let a = AudioSocket::open(fix(a, b.local_addr()), T).await.unwrap();
        (a, b)
    } else {
        let a = AudioSocket::open(a, T).await.unwrap();
        let b = AudioSocket::open(fix(b, a.local_addr()), T).await.unwrap();
        (a, b)
    };
    let cancel = Cancel::new();
    let (sa, sb) = tokio::join!(
        a.run(Some((Tone::default(), sender(1))), None, &cancel),
        b.run(None, Some(receiver(1)), &cancel),
    );
    let sent = sa.unwrap().0.unwrap();
    let got = sb.unwrap().1.unwrap();
    assert_clean(&got, &sent, 1);
}

/// Points a placeholder remote (port 0) at the socket opened first.
fn fix(l: Link, other: SocketAddr) -> Link {
    match l {
        Link::Udp {
            local,
            remote: Some(_),
        } => Link::udp_to(local, other),
        Link::TcpActive { .. } => Link::TcpActive { remote: other },
        l => l,
    }
}

#[tokio::test]
async fn pcma_over_udp() {
    one_way(Link::udp_to(any(), any()), Link::udp(any()), true).await;
}

#[tokio::test]
async fn pcma_over_tcp_with_the_sender_listening() {
    one_way(
        Link::TcpPassive { local: any() },
        Link::TcpActive { remote: any() },
        false,
    )
    .await;
}

#[tokio::test]
async fn pcma_over_tcp_with_the_sender_connecting() {
    one_way(
        Link::TcpActive { remote: any() },
        Link::TcpPassive { local: any() },
        true,
    )
    .await;
}

/// Talk: both ends send their tone and receive the other's on one socket.
async fn both_ways(a: AudioSocket, b: AudioSocket) {
    let (ta, tb) = (Cancel::new(), Cancel::new());
    let (ra, rb) = tokio::join!(
        a.run(Some((Tone::default(), sender(11))), Some(receiver(22)), &ta),
        b.run(Some((Tone::default(), sender(22))), Some(receiver(11)), &tb),
    );
    let (sent_a, got_a) = ra.unwrap();
    let (sent_b, got_b) = rb.unwrap();
    assert_clean(&got_b.unwrap(), &sent_a.unwrap(), 11);
    assert_clean(&got_a.unwrap(), &sent_b.unwrap(), 22);
}

#[tokio::test]
async fn talk_both_ways_over_one_udp_port_each() {
    let mut a = AudioSocket::open(Link::udp(any()), T).await.unwrap();
    let mut b = AudioSocket::open(Link::udp(any()), T).await.unwrap();
    a.set_remote(b.local_addr());
    b.set_remote(a.local_addr());
    both_ways(a, b).await;
}

#[tokio::test]
async fn talk_both_ways_over_one_tcp_connection() {
    let a = AudioSocket::open(Link::TcpPassive { local: any() }, T)
        .await
        .unwrap();
    let b = AudioSocket::open(
        Link::TcpActive {
            remote: a.local_addr(),
        },
        T,
    )
    .await
    .unwrap();
    both_ways(a, b).await;
}

#[tokio::test]
async fn a_wrong_ssrc_and_a_90khz_clock_are_found() {
    let b = AudioSocket::open(Link::udp(any()), T).await.unwrap();
    let a = AudioSocket::open(Link::udp_to(any(), b.local_addr()), T)
        .await
        .unwrap();
    let cfg = AudioSenderConfig {
        faults: AudioFaults {
            timestamp_step: Some(1800),
            ..AudioFaults::default()
        },
        ..sender(2)
    };
    let cancel = Cancel::new();
    let (_, rb) = tokio::join!(
        a.run(Some((Tone::default(), cfg)), None, &cancel),
        b.run(None, Some(receiver(1)), &cancel),
    );
    let got = rb.unwrap().1.unwrap();
    let c = &got.check;
    assert_eq!(got.packets, PACKETS);
    for code in [
        FindingCode::SsrcMismatch,
        FindingCode::TimestampStep,
        FindingCode::TimestampClockMismatch,
    ] {
        assert!(c.has(code), "{code:?} not found: {:#?}", c.findings);
    }
    assert!(c.estimated_clock_hz.unwrap() > 50_000.0);
}

#[tokio::test]
async fn a_silent_peer_is_a_media_timeout() {
    let b = AudioSocket::open(Link::TcpPassive { local: any() }, T)
        .await
        .unwrap();
    let cfg = AudioReceiverConfig {
        media_timeout: Duration::from_millis(200),
        ..receiver(1)
    };
    let (_, got) = b.run(None, Some(cfg), &Cancel::new()).await.unwrap();
    let got = got.unwrap();
    assert!(got.media_timeout);
    assert_eq!(got.packets, 0);
}

// ---- A whole talk session: INVITE s=Talk, both sides exchange audio, BYE. ----

mod talk {
    use super::*;
    use camcert::peers::session::{answer, call, MediaPlan, SessionReport};
    use camcert::proto::gb28181::session::{
        CallRequest, EndReason, MediaTransport, SessionEvent, UacConfig, UasConfig,
    };
    use camcert::proto::ps::annexb::VideoCodec;
    use camcert::proto::sdp::{Direction, MediaKind, Setup};
    use camcert::proto::Transport;
    use camcert::transport::Endpoint;

    const PLAT: &str = "34020000002000000001";
    const CAM: &str = "34020000001320000001";

    fn plan(hangup: bool, packets: Option<u64>) -> MediaPlan {
        let ip = "127.0.0.1".parse().unwrap();
        let mut p = MediaPlan::new(ip, None, VideoCodec::H264);
        p.audio.sender = AudioSenderConfig {
            time_scale: SCALE,
            ..AudioSenderConfig::new(0)
        };
        p.audio.receiver = AudioReceiverConfig {
            max_packets: packets,
            max_duration: Duration::from_secs(20),
            media_timeout: Duration::from_secs(3),
            time_scale: SCALE,
            ..AudioReceiverConfig::new(0)
        };
        p.hangup_when_received = hangup;
        p.max_session = Duration::from_secs(30);
        p
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

    async fn talk(tcp: Option<Setup>, plat_transport: MediaTransport) {
        let cam_ep = Endpoint::bind(Transport::Udp, any()).await.unwrap();
        let plat_ep = Endpoint::bind(Transport::Udp, any()).await.unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        let uas = UasConfig::new(CAM, cam_ep.local_addr(), ip);
        let uac = UacConfig::new(PLAT, plat_ep.local_addr(), cam_ep.local_addr(), ip);
        let (cam_plan, plat_plan) = (plan(false, None), plan(true, Some(PACKETS)));
        let (cam, plat) = tokio::join!(
            answer(cam_ep, uas, &cam_plan),
            call(plat_ep, uac, CallRequest::talk(CAM, 0, tcp), &plat_plan)
        );
        let (cam, plat) = (cam.unwrap(), plat.unwrap());
        assert!(cam.errors.is_empty(), "{:?}", cam.errors);
        assert!(plat.errors.is_empty(), "{:?}", plat.errors);
        let (pn, cn) = (
            plat.negotiated.clone().unwrap(),
            cam.negotiated.clone().unwrap(),
        );
        assert_eq!(pn.ssrc, cn.ssrc);
        for m in [&pn.media[0], &cn.media[0]] {
            assert_eq!(m.kind, MediaKind::Audio);
            assert_eq!(m.direction, Direction::SendRecv);
            assert_eq!((m.payload_type, m.encoding.as_str()), (8, "PCMA"));
        }
        assert_eq!(pn.media[0].transport, plat_transport);
        assert!(plat.sent.is_none() && plat.received.is_none());

        // The platform heard the camera's tone: every packet, clean, with y=.
        let got = plat.audio_received.as_ref().unwrap();
        assert!(got.check.is_clean(), "{:#?}", got.check.findings);
        assert_eq!(got.stop, StopReason::Frames);
        assert_eq!(got.packets, PACKETS);
        assert_eq!(got.check.ssrc, Some(pn.ssrc.0));
        assert_eq!(got.check.timestamp_step, Some(160));
        // The camera heard the platform's until the BYE.
        let got = cam.audio_received.as_ref().unwrap();
        assert!(got.check.is_clean(), "{:#?}", got.check.findings);
        assert!(got.packets >= PACKETS / 2, "{}", got.packets);
        assert_eq!(got.check.ssrc, Some(cn.ssrc.0));
        // Both senders ran until the session ended.
        let (ps, cs) = (
            plat.audio_sent.as_ref().unwrap(),
            cam.audio_sent.as_ref().unwrap(),
        );
        assert!(cs.packets >= PACKETS, "{cs:?}");
        assert!(ps.packets >= got.packets, "{ps:?}");
        assert_eq!(end_reason(&plat), EndReason::ByeSent);
        assert_eq!(end_reason(&cam), EndReason::ByeReceived);
    }

    #[tokio::test]
    async fn talk_session_over_udp() {
        talk(None, MediaTransport::Udp).await;
    }

    #[tokio::test]
    async fn talk_session_over_tcp_with_the_platform_listening() {
        talk(Some(Setup::Passive), MediaTransport::TcpPassive).await;
    }

    #[tokio::test]
    async fn talk_session_over_tcp_with_the_camera_listening() {
        talk(Some(Setup::Active), MediaTransport::TcpActive).await;
    }
}

#[tokio::test]
async fn rtsp_interleaved_audio_over_tcp_is_reported_and_still_checked() {
    let b = AudioSocket::open(Link::TcpPassive { local: any() }, T)
        .await
        .unwrap();
    let a = AudioSocket::open(
        Link::TcpActive {
            remote: b.local_addr(),
        },
        T,
    )
    .await
    .unwrap();
    let cancel = Cancel::new();
    let tx = AudioSenderConfig {
        rtsp_interleaved: true,
        ..sender(1)
    };
    let (sa, sb) = tokio::join!(
        a.run(Some((Tone::default(), tx)), None, &cancel),
        b.run(None, Some(receiver(1)), &cancel),
    );
    let _ = sa.unwrap();
    let got = sb.unwrap().1.unwrap();
    let c = &got.check;
    let codes: Vec<&str> = c.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, vec![FindingCode::TcpRtspFraming.as_str()]);
    // Decoded anyway: every packet arrived and was judged.
    assert_eq!(got.packets, PACKETS);
    assert_eq!((c.lost_packets, c.timestamp_step), (0, Some(160)));
    assert_eq!(got.capture[0].bytes[0], b'$');
}
