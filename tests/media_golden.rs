//! Byte-exact golden files of the media path for a fixed input, the first GOP (25
//! pictures) of `captures/sample-h264-320x240-25fps.h264`:
//!
//! - `golden/ps-h264-first-gop.ps`: the PS camcert muxes, one pack per picture, PTS
//!   `i * 3600`;
//! - `golden/rtp-h264-first-gop.txt`: every RTP packet of that PS (SSRC 100000001,
//!   PT 96, MTU 1400, first sequence 0), one line each with its header fields and the
//!   CRC-32/MPEG-2 of the whole packet.
//!
//! A change to the muxer or packetizer that changes a byte fails here. When the
//! change is meant, regenerate with `CAMCERT_UPDATE_GOLDEN=1 cargo test --test
//! media_golden` and review the diff.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use camcert::media::MediaSource;
use camcert::proto::ps::crc32_mpeg2;
use camcert::proto::ps::mux::{MuxConfig, PsMuxer};
use camcert::proto::ps::{Codec, Frame};
use camcert::proto::rtp::{Packetizer, PacketizerConfig, RtpPacket};
use common::root;

const SSRC: u32 = 100_000_001;

fn first_gop() -> (Vec<u8>, String) {
    let src = MediaSource::from_file(root().join("captures/sample-h264-320x240-25fps.h264"), None)
        .unwrap();
    let mut mux = PsMuxer::new(MuxConfig::video(Codec::H264)).unwrap();
    let mut rtp = Packetizer::new(PacketizerConfig::with_ssrc(SSRC)).unwrap();
    let mut ps = Vec::new();
    let mut txt = String::from(
        "# RTP packets of golden/ps-h264-first-gop.ps: SSRC 100000001 (y=0100000001), PT 96, MTU 1400\n\
         # frame seq timestamp marker pt ssrc bytes crc32-mpeg2\n",
    );
    for (i, f) in src.frames().iter().take(25).enumerate() {
        let pts = i as u64 * 3600;
        let b = mux
            .mux(&Frame {
                codec: Codec::H264,
                pts,
                dts: None,
                key: f.key,
                data: f.data.clone(),
            })
            .unwrap();
        for pkt in rtp.packetize(pts, &b) {
            let h = RtpPacket::parse(&pkt).unwrap().header;
            writeln!(
                txt,
                "{i} {} {} {} {} {} {} {:08x}",
                h.sequence,
                h.timestamp,
                u8::from(h.marker),
                h.payload_type,
                h.ssrc,
                pkt.len(),
                crc32_mpeg2(&pkt)
            )
            .unwrap();
        }
        ps.extend_from_slice(&b);
    }
    (ps, txt)
}

fn compare(name: &str, got: &[u8]) {
    let path = root().join("golden").join(name);
    if std::env::var_os("CAMCERT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (CAMCERT_UPDATE_GOLDEN=1 writes it)",
            Path::new("golden").join(name).display()
        )
    });
    if want != got {
        let at = want
            .iter()
            .zip(got)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len()));
        panic!(
            "golden/{name} differs at byte {at} (golden {} bytes, now {} bytes); \
             if the change is meant, rerun with CAMCERT_UPDATE_GOLDEN=1 and review the diff",
            want.len(),
            got.len()
        );
    }
}

#[test]
fn ps_and_rtp_of_the_first_h264_gop() {
    let (ps, txt) = first_gop();
    compare("ps-h264-first-gop.ps", &ps);
    compare("rtp-h264-first-gop.txt", txt.as_bytes());
}
