//! Playback control of the video sender (录像回放: MANSRTSP PAUSE, PLAY, Scale, Range)
//! on tokio's paused clock, so every due time is exact: no packet while paused, the
//! stream resumes where it stopped, Scale 2 sends twice the pictures per second with
//! timestamps still on the 90 kHz media clock, and a seek moves the PTS.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use camcert::media::{Cancel, Link, MediaSender, MediaSource, PaceControl, SenderConfig};
use camcert::proto::rtp::RtpPacket;
use common::root;
use tokio::net::UdpSocket;
use tokio::time::sleep;

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// (sent at, RTP timestamp) of every picture, from the sender's capture.
type Frames = Vec<(Duration, u32)>;

fn between(f: &Frames, from_ms: u64, to_ms: u64) -> Frames {
    let (a, b) = (Duration::from_millis(from_ms), Duration::from_millis(to_ms));
    f.iter()
        .copied()
        .filter(|(t, _)| *t >= a && *t < b)
        .collect()
}

fn steps(f: &Frames) -> Vec<(Duration, u32)> {
    f.windows(2)
        .map(|w| (w[1].0 - w[0].0, w[1].1.wrapping_sub(w[0].1)))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pause_play_scale_and_seek() {
    let source =
        MediaSource::from_file(root().join("captures/sample-h264-320x240-25fps.h264"), None)
            .unwrap();
    let sink = UdpSocket::bind(any()).await.unwrap();
    let to = sink.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while sink.recv_from(&mut buf).await.is_ok() {}
    });
    let tx = MediaSender::open(Link::udp_to(any(), to), Duration::from_secs(1))
        .await
        .unwrap();
    let cfg = SenderConfig {
        capture_bytes: 64 << 20,
        ..SenderConfig::new(100_000_001)
    };
    let (ctl, cancel) = (PaceControl::new(), Cancel::new());
    let task = {
        let (ctl, cancel) = (ctl.clone(), cancel.clone());
        tokio::spawn(async move { tx.run_paced(&source, &cfg, &cancel, Some(&ctl)).await })
    };
    // Pictures every 40 ms from 0; PAUSE at 1010 ms, PLAY at 2010 ms, Scale 2 at
    // 3020 ms, a seek to 10 s at 4020 ms, stop at 4500 ms. (No change falls on a
    // picture's due time.)
    sleep(Duration::from_millis(1010)).await;
    ctl.pause();
    sleep(Duration::from_millis(1000)).await;
    ctl.play();
    sleep(Duration::from_millis(1010)).await;
    assert!(ctl.set_scale(2.0));
    assert!(!ctl.set_scale(-1.0));
    sleep(Duration::from_millis(1000)).await;
    ctl.seek(Duration::from_secs(10));
    sleep(Duration::from_millis(480)).await;
    cancel.cancel();
    let report = task.await.unwrap().unwrap();

    let mut frames: Frames = Vec::new();
    for p in &report.capture {
        let ts = RtpPacket::parse(p.rtp()).unwrap().header.timestamp;
        if frames.last().is_none_or(|&(_, t)| t != ts) {
            frames.push((p.elapsed, ts));
        }
    }
    assert_eq!(frames.len() as u64, report.frames);
    let ms40 = (Duration::from_millis(40), 3600);
    let ms20 = (Duration::from_millis(20), 3600);

    // Playing: 26 pictures (0..=1000 ms), 40 ms and 3600 ticks apart.
    let before = between(&frames, 0, 1010);
    assert_eq!(before.len(), 26);
    assert!(steps(&before).iter().all(|s| *s == ms40), "{before:?}");
    // PAUSE: nothing for a second.
    assert!(between(&frames, 1010, 2010).is_empty());
    // PLAY: the next picture at once, continuing the timestamps.
    let normal = between(&frames, 2010, 3020);
    assert_eq!(normal[0], (Duration::from_millis(2010), 26 * 3600));
    assert!(steps(&normal).iter().all(|s| *s == ms40), "{normal:?}");
    // Scale 2: twice the pictures in the same wall time, timestamps unchanged.
    let fast = between(&frames, 3020, 4020);
    assert!(
        fast.len() >= 2 * normal.len() - 2,
        "{} vs {}",
        fast.len(),
        normal.len()
    );
    assert!(steps(&fast).iter().all(|s| *s == ms20), "{fast:?}");
    assert_eq!(
        fast[0].1.wrapping_sub(normal.last().unwrap().1),
        3600,
        "no picture is skipped at the change"
    );
    // Range: the PTS jumps to 10 s and goes on from there at Scale 2.
    let after = between(&frames, 4020, 5000);
    assert_eq!(after[0], (Duration::from_millis(4020), 10 * 90_000));
    assert!(steps(&after).iter().all(|s| *s == ms20), "{after:?}");
    assert!(report.frames > 100);
}

#[tokio::test(start_paused = true)]
async fn a_paused_sender_still_stops_on_cancel() {
    let source =
        MediaSource::from_file(root().join("captures/sample-h264-320x240-25fps.h264"), None)
            .unwrap();
    let sink = UdpSocket::bind(any()).await.unwrap();
    let tx = MediaSender::open(
        Link::udp_to(any(), sink.local_addr().unwrap()),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let (ctl, cancel) = (PaceControl::new(), Cancel::new());
    ctl.pause();
    let c = cancel.clone();
    tokio::spawn(async move {
        sleep(Duration::from_secs(5)).await;
        c.cancel();
    });
    let r = tx
        .run_paced(&source, &SenderConfig::new(1), &cancel, Some(&ctl))
        .await
        .unwrap();
    assert_eq!(r.frames, 0);
    assert_eq!(r.stop, camcert::media::StopReason::Cancelled);
}
