//! The media sender and receiver over loopback: UDP, TCP with the sender connecting
//! (receiver `a=setup:passive`) and TCP with the sender listening (receiver
//! `a=setup:active`). The committed Annex B samples are streamed at ten times real
//! time; the receiver's validator must report no finding and every frame sent.

mod common;

use std::time::Duration;

use camcert::capture::pcap::write_pcap_to;
use camcert::media::{
    Cancel, Link, MediaReceiver, MediaSender, MediaSource, ReceiveReport, ReceiverConfig,
    SendReport, SenderConfig, StopReason,
};
use camcert::proto::ps::annexb::VideoCodec;
use camcert::proto::ps::validate::FindingCode;
use camcert::proto::rtp::PacketizerFaults;
use camcert::proto::sdp::{
    Direction, GbMedia, GbSession, MediaParams, SessionDescription, SessionKind, Setup, Ssrc,
};
use common::root;

const SSRC: u32 = 100_000_001;
const SCALE: f64 = 0.1;
const OPEN: Duration = Duration::from_secs(5);

fn h264() -> MediaSource {
    MediaSource::from_file(root().join("captures/sample-h264-320x240-25fps.h264"), None).unwrap()
}

fn h265() -> MediaSource {
    MediaSource::from_file(root().join("captures/sample-h265-320x240-25fps.h265"), None).unwrap()
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn sender_cfg(frames: u64) -> SenderConfig {
    SenderConfig {
        max_frames: Some(frames),
        time_scale: SCALE,
        capture_bytes: 1 << 20,
        ..SenderConfig::new(SSRC)
    }
}

fn receiver_cfg(codec: VideoCodec, frames: Option<u64>) -> ReceiverConfig {
    ReceiverConfig {
        max_frames: frames,
        max_duration: Duration::from_secs(20),
        media_timeout: Duration::from_secs(3),
        time_scale: SCALE,
        ..ReceiverConfig::new(SSRC, codec)
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Udp,
    /// The sender connects; the receiver listens.
    SenderActive,
    /// The sender listens; the receiver connects.
    SenderPassive,
}

async fn stream(
    mode: Mode,
    source: &MediaSource,
    tx_cfg: &SenderConfig,
    rx_cfg: &ReceiverConfig,
) -> (SendReport, ReceiveReport) {
    let (tx, rx) = match mode {
        Mode::Udp => {
            let rx = MediaReceiver::open(Link::udp(any_port()), OPEN)
                .await
                .unwrap();
            let tx = MediaSender::open(Link::udp_to(any_port(), rx.local_addr()), OPEN)
                .await
                .unwrap();
            (tx, rx)
        }
        Mode::SenderActive => {
            let rx = MediaReceiver::open(Link::TcpPassive { local: any_port() }, OPEN)
                .await
                .unwrap();
            let tx = MediaSender::open(
                Link::TcpActive {
                    remote: rx.local_addr(),
                },
                OPEN,
            )
            .await
            .unwrap();
            (tx, rx)
        }
        Mode::SenderPassive => {
            let tx = MediaSender::open(Link::TcpPassive { local: any_port() }, OPEN)
                .await
                .unwrap();
            let rx = MediaReceiver::open(
                Link::TcpActive {
                    remote: tx.local_addr(),
                },
                OPEN,
            )
            .await
            .unwrap();
            (tx, rx)
        }
    };
    let cancel = Cancel::new();
    let (sent, got) = tokio::join!(tx.run(source, tx_cfg, &cancel), rx.run(rx_cfg, &cancel));
    (sent.unwrap(), got.unwrap())
}

fn assert_clean(sent: &SendReport, got: &ReceiveReport, frames: u64, key_frames: u64) {
    let v = &got.validation;
    assert!(v.is_clean(), "{:#?}", v.findings);
    assert_eq!(sent.frames, frames);
    assert_eq!(sent.key_frames, key_frames);
    assert_eq!(v.video_frames, frames, "{v:#?}");
    assert_eq!(v.key_frames, key_frames);
    assert_eq!(v.rtp_frames, frames);
    assert_eq!(v.lost_packets, 0);
    assert_eq!(v.packets, sent.packets);
    assert_eq!(got.packets, sent.packets);
    assert_eq!(got.frames, frames);
    assert_eq!(got.stop, StopReason::Frames);
    assert!(!got.media_timeout);
    assert_eq!(got.framing_errors, 0);
    assert_eq!(got.capture.len() as u64, sent.packets);
    assert_eq!(sent.capture.len() as u64, sent.packets);
    // Real-time pace, scaled: 49 frame intervals of 40 ms at a tenth of real time.
    let paced = Duration::from_secs_f64(49.0 / 25.0 * SCALE * 0.9);
    assert!(sent.elapsed >= paced, "sent too fast: {:?}", sent.elapsed);
}

#[tokio::test]
async fn h264_over_udp() {
    let src = h264();
    assert_eq!(src.len(), 50);
    let (sent, got) = stream(
        Mode::Udp,
        &src,
        &sender_cfg(50),
        &receiver_cfg(VideoCodec::H264, Some(50)),
    )
    .await;
    assert_clean(&sent, &got, 50, 2);
    assert_eq!(got.validation.stream_types, vec![(0xE0, 0x1B)]);
    assert_eq!(got.capture[0].rtp(), &got.capture[0].bytes[..]);
}

#[tokio::test]
async fn h264_over_tcp_sender_active() {
    let src = h264();
    let (sent, got) = stream(
        Mode::SenderActive,
        &src,
        &sender_cfg(50),
        &receiver_cfg(VideoCodec::H264, Some(50)),
    )
    .await;
    assert_clean(&sent, &got, 50, 2);
    // RFC 4571: the capture holds the 2-byte length before each packet.
    let c = &got.capture[0];
    assert_eq!(
        usize::from(u16::from_be_bytes([c.bytes[0], c.bytes[1]])),
        c.rtp().len()
    );
    assert_eq!(
        sent.wire_bytes,
        got.capture
            .iter()
            .map(|c| c.bytes.len() as u64)
            .sum::<u64>()
    );
}

#[tokio::test]
async fn h264_over_tcp_sender_passive() {
    let src = h264();
    let (sent, got) = stream(
        Mode::SenderPassive,
        &src,
        &sender_cfg(50),
        &receiver_cfg(VideoCodec::H264, Some(50)),
    )
    .await;
    assert_clean(&sent, &got, 50, 2);
}

#[tokio::test]
async fn h265_over_udp_and_tcp() {
    let src = h265();
    assert_eq!(src.len(), 50);
    for mode in [Mode::Udp, Mode::SenderActive] {
        let (sent, got) = stream(
            mode,
            &src,
            &sender_cfg(50),
            &receiver_cfg(VideoCodec::H265, Some(50)),
        )
        .await;
        assert_clean(&sent, &got, 50, 2);
        assert_eq!(got.validation.stream_types, vec![(0xE0, 0x24)]);
    }
}

#[tokio::test]
async fn looping_keeps_timestamps_rising() {
    let src = h264();
    let tx = SenderConfig {
        time_scale: 0.02,
        ..sender_cfg(120)
    };
    let rx = ReceiverConfig {
        time_scale: 0.02,
        ..receiver_cfg(VideoCodec::H264, Some(120))
    };
    let (sent, got) = stream(Mode::SenderActive, &src, &tx, &rx).await;
    assert_eq!(sent.loops, 2);
    let v = &got.validation;
    assert!(v.is_clean(), "{:#?}", v.findings);
    assert_eq!((v.video_frames, v.key_frames, v.psm_count), (120, 5, 5));
}

#[tokio::test]
async fn media_duration_and_end_of_source_bound_the_sender() {
    let src = h264();
    let tx = SenderConfig {
        max_frames: None,
        max_duration: Some(Duration::from_millis(400)),
        ..sender_cfg(0)
    };
    let (sent, got) = stream(
        Mode::Udp,
        &src,
        &tx,
        &receiver_cfg(VideoCodec::H264, Some(10)),
    )
    .await;
    assert_eq!((sent.stop, sent.frames), (StopReason::Duration, 10));
    assert_eq!(got.validation.video_frames, 10);
    let tx = SenderConfig {
        max_frames: None,
        looping: false,
        time_scale: 0.0,
        ..sender_cfg(0)
    };
    let (sent, _) = stream(
        Mode::SenderActive,
        &src,
        &tx,
        &receiver_cfg(VideoCodec::H264, Some(50)),
    )
    .await;
    assert_eq!((sent.stop, sent.frames), (StopReason::EndOfSource, 50));
}

#[tokio::test]
async fn stream_that_stops_raises_the_media_timeout() {
    let src = h264();
    let rx = ReceiverConfig {
        media_timeout: Duration::from_millis(300),
        ..receiver_cfg(VideoCodec::H264, None)
    };
    for mode in [Mode::Udp, Mode::SenderActive] {
        let tx = SenderConfig {
            looping: false,
            ..sender_cfg(10)
        };
        let (sent, got) = stream(mode, &src, &tx, &rx).await;
        assert_eq!(sent.frames, 10);
        assert_eq!(got.validation.video_frames, 10);
        match mode {
            // UDP has no end: silence is the only sign.
            Mode::Udp => {
                assert!(got.media_timeout);
                assert_eq!(got.stop, StopReason::MediaTimeout);
            }
            // The sender closes its TCP connection when it is done.
            _ => assert_eq!(got.stop, StopReason::PeerClosed),
        }
    }
    // Nothing at all arrives.
    let rx_sock = MediaReceiver::open(Link::udp(any_port()), OPEN)
        .await
        .unwrap();
    let got = rx_sock.run(&rx, &Cancel::new()).await.unwrap();
    assert!(got.media_timeout);
    assert_eq!((got.packets, got.first_packet), (0, None));
}

#[tokio::test]
async fn cancel_stops_both_sides() {
    let src = h264();
    let rx = MediaReceiver::open(Link::TcpPassive { local: any_port() }, OPEN)
        .await
        .unwrap();
    let tx = MediaSender::open(
        Link::TcpActive {
            remote: rx.local_addr(),
        },
        OPEN,
    )
    .await
    .unwrap();
    let cancel = Cancel::new();
    let tx_cfg = SenderConfig {
        max_frames: None,
        ..sender_cfg(0)
    };
    let rx_cfg = receiver_cfg(VideoCodec::H264, None);
    let c = cancel.clone();
    let (sent, got, _) = tokio::join!(
        tx.run(&src, &tx_cfg, &cancel),
        rx.run(&rx_cfg, &cancel),
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.cancel();
        }
    );
    let (sent, got) = (sent.unwrap(), got.unwrap());
    assert_eq!(sent.stop, StopReason::Cancelled);
    assert_eq!(got.stop, StopReason::Cancelled);
    assert!(sent.frames > 10, "{}", sent.frames);
}

#[tokio::test]
async fn passive_sender_gives_up_when_nobody_connects() {
    let tx = MediaSender::open(Link::TcpPassive { local: any_port() }, OPEN)
        .await
        .unwrap();
    let cfg = SenderConfig {
        accept_timeout: Duration::from_millis(200),
        ..sender_cfg(10)
    };
    let sent = tx.run(&h264(), &cfg, &Cancel::new()).await.unwrap();
    assert_eq!((sent.stop, sent.frames), (StopReason::MediaTimeout, 0));
}

#[tokio::test]
async fn wrong_ssrc_is_caught_across_the_wire() {
    let tx = SenderConfig {
        rtp_faults: PacketizerFaults {
            ssrc: Some(SSRC + 1),
            ..PacketizerFaults::default()
        },
        ..sender_cfg(20)
    };
    let (_, got) = stream(
        Mode::Udp,
        &h264(),
        &tx,
        &receiver_cfg(VideoCodec::H264, Some(20)),
    )
    .await;
    let codes: Vec<FindingCode> = got
        .validation
        .findings
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect();
    assert_eq!(codes, vec![FindingCode::SsrcMismatch]);
}

#[tokio::test]
async fn capture_writes_a_pcap() {
    let (sent, got) = stream(
        Mode::SenderActive,
        &h264(),
        &sender_cfg(25),
        &receiver_cfg(VideoCodec::H264, Some(25)),
    )
    .await;
    let packets: Vec<_> = got.capture.iter().map(|c| c.to_packet()).collect();
    let mut out = Vec::new();
    write_pcap_to(&mut out, &packets).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(&out[..]).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        p.unwrap();
        n += 1;
    }
    assert_eq!(n as u64, sent.packets);
    assert!(got.capture.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
}

#[tokio::test]
async fn live_view_negotiated_by_sdp_over_tcp_passive() {
    // 媒体传输方式 TCP被动, end to end: the platform listens and offers
    // a=setup:passive with its port and y=; the camera answers a=setup:active, and
    // each side takes its link and the SSRC from the descriptions.
    const PLAT: &str = "34020000002000000001";
    const DEV: &str = "34020000001320000001";
    let ip = "127.0.0.1".parse().unwrap();
    let rx = MediaReceiver::open(Link::TcpPassive { local: any_port() }, OPEN)
        .await
        .unwrap();
    let mut offer = GbSession::new(SessionKind::Play, PLAT, ip);
    offer.media.push(GbMedia::video_offer(
        rx.local_addr().port(),
        Some(Setup::Passive),
        Direction::RecvOnly,
    ));
    offer.ssrc = Some(Ssrc::gb(false, Ssrc::domain_of(PLAT).unwrap(), 1).unwrap());
    let offer_bytes = offer.encode();

    // The camera.
    let got_offer = SessionDescription::parse(&offer_bytes).unwrap();
    assert!(got_offer.findings.is_empty(), "{:#?}", got_offer.findings);
    let theirs = GbSession::from_sdp(&got_offer.sdp);
    let mut answer = GbSession::new(SessionKind::Play, DEV, ip);
    let setup = theirs.media[0].setup.unwrap().answer();
    answer
        .media
        .push(GbMedia::video_ps(9, Some(setup), Direction::SendOnly));
    answer.media[0].connection_mode = Some(camcert::proto::sdp::ConnectionMode::New);
    answer.ssrc = theirs.ssrc;
    answer.media_params = Some(MediaParams::video(2, 1, 25, 1, 512));
    let link = Link::negotiate(
        any_port(),
        &answer.media[0],
        &theirs.media[0],
        theirs.media_connection(0).unwrap().ip().unwrap(),
    )
    .unwrap();
    assert_eq!(
        link,
        Link::TcpActive {
            remote: rx.local_addr()
        }
    );
    let tx = MediaSender::open(link, OPEN).await.unwrap();
    let tx_cfg = SenderConfig {
        ssrc: theirs.ssrc.unwrap().0,
        ..sender_cfg(50)
    };

    // The platform reads the answer.
    let got_answer = SessionDescription::parse(&answer.encode()).unwrap();
    assert!(got_answer.findings.is_empty(), "{:#?}", got_answer.findings);
    let answered = GbSession::from_sdp(&got_answer.sdp);
    assert_eq!(
        Link::negotiate(rx.local_addr(), &offer.media[0], &answered.media[0], ip).unwrap(),
        Link::TcpPassive {
            local: rx.local_addr()
        }
    );
    let rx_cfg = ReceiverConfig {
        max_frames: Some(50),
        time_scale: SCALE,
        ..ReceiverConfig::new(offer.ssrc.unwrap().0, VideoCodec::H264)
    };
    let (src, cancel) = (h264(), Cancel::new());
    let (sent, got) = tokio::join!(tx.run(&src, &tx_cfg, &cancel), rx.run(&rx_cfg, &cancel));
    assert_clean(&sent.unwrap(), &got.unwrap(), 50, 2);
}

#[tokio::test]
async fn rtsp_interleaved_tcp_framing_is_reported_and_the_stream_still_judged() {
    // Before: the RFC 4571 reader took "$\0" as a 9216-byte length, nothing decoded,
    // and the receiver ended on its media timeout without a finding.
    for mode in [Mode::SenderActive, Mode::SenderPassive] {
        let tx = SenderConfig {
            rtsp_interleaved: true,
            ..sender_cfg(50)
        };
        let (_, got) = stream(
            mode,
            &h264(),
            &tx,
            &receiver_cfg(VideoCodec::H264, Some(50)),
        )
        .await;
        let v = &got.validation;
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec![FindingCode::TcpRtspFraming.as_str()]);
        assert!(v.findings[0].message.contains("RFC 2326"));
        assert!(!got.media_timeout);
        assert_eq!(got.frames, 50);
        assert_eq!((v.video_frames, v.key_frames), (50, 2));
        assert_eq!(got.capture[0].bytes[0], b'$');
        assert_eq!(got.capture[0].rtp(), &got.capture[0].bytes[4..]);
        assert_eq!(got.capture[0].rtp()[0] >> 6, 2);
        assert_eq!(got.framing_errors, 0);
    }
}
