//! Throughput of the media path, in bytes of input per second:
//!
//! - `mux+packetize`: Annex B access units → PS (`PsMuxer`) → RTP packets
//!   (`Packetizer`), counted in elementary-stream bytes;
//! - `demux+validate`: RTP packets → `StreamValidator` (RTP accounting, PS demux,
//!   Annex C checks) → report, counted in RTP bytes.
//!
//! Two inputs: the committed 320x240 sample (small frames, mostly one packet each)
//! and a synthetic 4 Mbit/s-class H.264 stream (120 KB key frames, 16 KB others),
//! closer to a real camera. `ci/bench/media.sh` runs this and prints MB/s side by side.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use camcert::proto::ps::annexb::{frames_from_annexb, VideoCodec};
use camcert::proto::ps::mux::{MuxConfig, PsMuxer};
use camcert::proto::ps::validate::{StreamValidator, ValidatorConfig};
use camcert::proto::ps::{Codec, Frame};
use camcert::proto::rtp::{Packetizer, PacketizerConfig};

const SSRC: u32 = 100_000_001;

fn sample() -> Vec<Frame> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/sample-h264-320x240-25fps.h264");
    let es = std::fs::read(path).expect("captures/ sample");
    frames_from_annexb(VideoCodec::H264, &es, 0, 3600)
}

/// Pseudo-random NAL bodies without zero bytes (no start code can form inside).
fn synthetic(pictures: usize) -> Vec<Frame> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 255) as u8 + 1
            })
            .collect()
    };
    let mut es = Vec::new();
    for i in 0..pictures {
        let nals: Vec<(&[u8], usize)> = if i % 25 == 0 {
            vec![
                (&[0x67, 0x64, 0x00, 0x28][..], 12),
                (&[0x68, 0xEE][..], 4),
                (&[0x65, 0x88][..], 120_000),
            ]
        } else {
            vec![(&[0x41, 0x9A][..], 16_000)]
        };
        for (hdr, n) in nals {
            es.extend_from_slice(&[0, 0, 0, 1]);
            es.extend_from_slice(hdr);
            es.extend(body(n));
        }
    }
    frames_from_annexb(VideoCodec::H264, &es, 0, 3600)
}

fn mux_packetize(frames: &[Frame]) -> Vec<(Bytes, Duration)> {
    let mut mux = PsMuxer::new(MuxConfig::video(Codec::H264)).unwrap();
    let mut rtp = Packetizer::new(PacketizerConfig::with_ssrc(SSRC)).unwrap();
    let mut out = Vec::new();
    for f in frames {
        let ps = mux.mux(f).unwrap();
        let at = Duration::from_micros(f.pts * 100 / 9);
        out.extend(rtp.packetize(f.pts, &ps).into_iter().map(|p| (p, at)));
    }
    out
}

fn benches(c: &mut Criterion) {
    let inputs = [
        ("sample-h264-320x240", sample()),
        ("synthetic-h264-4mbps", synthetic(50)),
    ];

    let mut g = c.benchmark_group("mux+packetize");
    for (name, frames) in &inputs {
        let es_bytes: usize = frames.iter().map(|f| f.data.len()).sum();
        g.throughput(Throughput::Bytes(es_bytes as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), frames, |b, frames| {
            b.iter(|| mux_packetize(frames))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("demux+validate");
    for (name, frames) in &inputs {
        let packets = mux_packetize(frames);
        let rtp_bytes: usize = packets.iter().map(|(p, _)| p.len()).sum();
        g.throughput(Throughput::Bytes(rtp_bytes as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &packets, |b, packets| {
            b.iter(|| {
                let mut v = StreamValidator::new(ValidatorConfig::new(SSRC, [0x1B]));
                for (p, at) in packets {
                    v.push_packet(p, *at);
                }
                let r = v.finish();
                assert!(r.is_clean());
                r
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = media;
    config = config();
    targets = benches
}
criterion_main!(media);
