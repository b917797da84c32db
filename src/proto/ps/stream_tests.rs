//! End-to-end tests of GB/T 28181 Annex C media: Annex B → PS mux → RTP packetize →
//! (RFC 4571) → depacketize → PS demux, and the validator against clean and
//! deliberately faulty streams.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::proto::ps::annexb::{frames_from_annexb, VideoCodec};
use crate::proto::ps::demux::{DemuxEvent, PsDemuxer};
use crate::proto::ps::mux::{MuxConfig, MuxFaults, PsMuxer};
use crate::proto::ps::validate::{FindingCode, StreamValidator, ValidationReport, ValidatorConfig};
use crate::proto::ps::{Codec, Frame};
use crate::proto::rtp::{
    encode_frame, Depacketizer, FramingDecoder, Packetizer, PacketizerConfig, PacketizerFaults,
    RtpPacket,
};

const SSRC: u32 = 100_000_001;

fn fill(seed: u64, len: usize) -> Vec<u8> {
    // xorshift, bytes kept non-zero so no start code can be formed inside a NAL.
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 255) as u8 + 1
        })
        .collect()
}

fn nal(out: &mut Vec<u8>, header: &[u8], body_len: usize, seed: u64) {
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(header);
    out.extend_from_slice(&fill(seed, body_len));
}

/// Annex B H.264: SPS/PPS/IDR every `gop` pictures, non-IDR slices otherwise.
fn synthetic_h264(pictures: usize, gop: usize) -> Vec<u8> {
    let mut es = Vec::new();
    for i in 0..pictures {
        if i % gop == 0 {
            nal(&mut es, &[0x67, 0x42, 0x00, 0x1E], 6, 1);
            nal(&mut es, &[0x68, 0xCE, 0x38, 0x80], 0, 2);
            nal(&mut es, &[0x06, 0x05], 20, 3);
            nal(&mut es, &[0x65, 0x88], 9000 + i * 7, i as u64 + 10);
        } else {
            nal(&mut es, &[0x41, 0x9A], 1500 + i * 13, i as u64 + 10);
        }
    }
    es
}

/// Annex B H.265: VPS/SPS/PPS/IDR_W_RADL every `gop` pictures, TRAIL_R otherwise.
fn synthetic_h265(pictures: usize, gop: usize) -> Vec<u8> {
    let mut es = Vec::new();
    for i in 0..pictures {
        if i % gop == 0 {
            nal(&mut es, &[0x40, 0x01], 20, 1);
            nal(&mut es, &[0x42, 0x01], 30, 2);
            nal(&mut es, &[0x44, 0x01], 5, 3);
            nal(&mut es, &[0x26, 0x01, 0xAF], 12_000, i as u64 + 10);
        } else {
            nal(&mut es, &[0x02, 0x01, 0xD0], 2_000, i as u64 + 10);
        }
    }
    es
}

/// Muxes and packetizes frames; frame i's packets arrive at its PTS time plus 50 µs
/// per packet.
fn send(frames: &[Frame], mux: MuxConfig, rtp: PacketizerConfig) -> Vec<(Bytes, Duration)> {
    let mut m = PsMuxer::new(mux).unwrap();
    let mut p = Packetizer::new(rtp).unwrap();
    let mut out = Vec::new();
    for f in frames {
        let ps = m.mux(f).unwrap();
        let at = Duration::from_micros(f.pts * 100 / 9);
        for (k, pkt) in p.packetize(f.pts, &ps).into_iter().enumerate() {
            out.push((pkt, at + Duration::from_micros(50 * k as u64)));
        }
    }
    out
}

fn validate(packets: &[(Bytes, Duration)], cfg: ValidatorConfig) -> ValidationReport {
    let mut v = StreamValidator::new(cfg);
    for (p, at) in packets {
        v.push_packet(p, *at);
    }
    v.finish()
}

fn h264_frames() -> Vec<Frame> {
    frames_from_annexb(VideoCodec::H264, &synthetic_h264(50, 25), 0, 3600)
}

fn clean_rtp() -> PacketizerConfig {
    PacketizerConfig::with_ssrc(SSRC)
}

fn codes(r: &ValidationReport) -> Vec<FindingCode> {
    r.findings
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect()
}

#[test]
fn synthetic_h264_stream_is_clean() {
    let frames = h264_frames();
    assert_eq!(frames.len(), 50);
    assert_eq!(frames.iter().filter(|f| f.key).count(), 2);
    let pkts = send(&frames, MuxConfig::video(Codec::H264), clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert!(r.is_clean(), "{:#?}", r.findings);
    assert_eq!(r.video_frames, 50);
    assert_eq!(r.key_frames, 2);
    assert_eq!(r.rtp_frames, 50);
    assert_eq!(r.lost_packets, 0);
    assert_eq!(r.psm_count, 2);
    assert_eq!(r.stream_types, vec![(0xE0, 0x1B)]);
    assert!((r.frame_rate.unwrap() - 25.0).abs() < 1e-9);
    assert!((r.estimated_clock_hz.unwrap() - 90_000.0).abs() < 500.0);
    assert!(r.jitter_ms < 1.0);
    assert!(r.bitrate_bps.unwrap() > 0.0);
    assert!(r.time_to_first_key_frame.unwrap() < Duration::from_millis(5));
}

#[test]
fn synthetic_h265_with_g711_audio_is_clean() {
    let video = frames_from_annexb(VideoCodec::H265, &synthetic_h265(40, 20), 0, 3600);
    let mut frames = Vec::new();
    for v in video {
        let audio = Frame {
            codec: Codec::G711A,
            pts: v.pts + 1800,
            dts: None,
            key: false,
            data: Bytes::from(fill(v.pts, 320)),
        };
        frames.push(v);
        frames.push(audio);
    }
    let mux = MuxConfig {
        audio: Some(Codec::G711A),
        ..MuxConfig::video(Codec::H265)
    };
    let pkts = send(&frames, mux, clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x24, 0x90]));
    assert!(r.is_clean(), "{:#?}", r.findings);
    assert_eq!((r.video_frames, r.audio_frames, r.key_frames), (40, 40, 2));
    assert_eq!(r.stream_types, vec![(0xE0, 0x24), (0xC0, 0x90)]);
}

#[test]
fn fault_wrong_ssrc_is_flagged() {
    let rtp = PacketizerConfig {
        faults: PacketizerFaults {
            ssrc: Some(SSRC + 1),
            ..PacketizerFaults::default()
        },
        ..clean_rtp()
    };
    let pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), rtp);
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(codes(&r), vec![FindingCode::SsrcMismatch]);
    let f = r.finding(FindingCode::SsrcMismatch).unwrap();
    assert_eq!(
        (f.count(), f.first_index().unwrap_or_default()),
        (pkts.len() as u64, 0)
    );
}

#[test]
fn fault_omitted_psm_is_flagged() {
    let mux = MuxConfig {
        faults: MuxFaults {
            omit_psm: true,
            ..MuxFaults::default()
        },
        ..MuxConfig::video(Codec::H264)
    };
    let pkts = send(&h264_frames(), mux, clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(codes(&r), vec![FindingCode::PsmMissingBeforeKeyFrame]);
    let f = r.finding(FindingCode::PsmMissingBeforeKeyFrame).unwrap();
    assert_eq!((f.count(), f.first_index().unwrap_or_default()), (2, 0));
}

#[test]
fn fault_missing_marker_is_flagged() {
    let rtp = PacketizerConfig {
        faults: PacketizerFaults {
            no_marker: true,
            ..PacketizerFaults::default()
        },
        ..clean_rtp()
    };
    let frames = h264_frames();
    let pkts = send(&frames, MuxConfig::video(Codec::H264), rtp);
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(codes(&r), vec![FindingCode::MarkerMissing]);
    let f = r.finding(FindingCode::MarkerMissing).unwrap();
    // Judged at each timestamp change: 49 frame boundaries; the first offender is the
    // last packet of frame 0.
    let first_frame_packets = pkts
        .iter()
        .take_while(|(p, _)| RtpPacket::parse(p).unwrap().header.timestamp == 0)
        .count();
    assert_eq!(
        (f.count(), f.first_index().unwrap_or_default()),
        (49, first_frame_packets as u64 - 1)
    );
    // Frames are still recovered without the marker.
    assert_eq!(r.video_frames, 50);
}

#[test]
fn fault_millisecond_clock_is_flagged() {
    let rtp = PacketizerConfig {
        faults: PacketizerFaults {
            timestamp_clock_hz: Some(1000),
            ..PacketizerFaults::default()
        },
        ..clean_rtp()
    };
    let pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), rtp);
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    // Both the arrival-time estimate and the comparison with the PES PTS see it.
    assert_eq!(
        codes(&r),
        vec![
            FindingCode::TimestampClockMismatch,
            FindingCode::TimestampPtsMismatch
        ]
    );
    let f = r.finding(FindingCode::TimestampClockMismatch).unwrap();
    assert!(f.message.contains("1000 Hz"), "{}", f.message);
    let f = r.finding(FindingCode::TimestampPtsMismatch).unwrap();
    assert!(f.message.contains("about 1000 Hz"), "{}", f.message);
    assert!((r.estimated_clock_hz.unwrap() - 1000.0).abs() < 10.0);
    // PES PTS are still right, so the frame rate is too.
    assert!((r.frame_rate.unwrap() - 25.0).abs() < 1e-9);
}

#[test]
fn fault_8khz_clock_is_flagged() {
    let rtp = PacketizerConfig {
        faults: PacketizerFaults {
            timestamp_clock_hz: Some(8000),
            ..PacketizerFaults::default()
        },
        ..clean_rtp()
    };
    let pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), rtp);
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    let f = r.finding(FindingCode::TimestampClockMismatch).unwrap();
    assert!(
        f.message.contains("closest common clock 8000 Hz"),
        "{}",
        f.message
    );
}

#[test]
fn psm_stream_type_mismatch_is_flagged() {
    let pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x24]));
    assert!(r.has(FindingCode::PsmStreamTypeMismatch));
    let mux = MuxConfig {
        faults: MuxFaults {
            psm_video_stream_type: Some(0x90),
            ..MuxFaults::default()
        },
        ..MuxConfig::video(Codec::H264)
    };
    let pkts = send(&h264_frames(), mux, clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, []));
    let f = r.finding(FindingCode::PsmStreamTypeMismatch).unwrap();
    assert!(
        f.message.contains("0x90 on stream id 0xe0"),
        "{}",
        f.message
    );
}

#[test]
fn first_frame_not_key_and_missing_parameter_sets_are_flagged() {
    let mut frames = h264_frames();
    frames.remove(0);
    let pkts = send(&frames, MuxConfig::video(Codec::H264), clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert!(r.has(FindingCode::FirstVideoFrameNotKey));

    let mut es = Vec::new();
    nal(&mut es, &[0x65, 0x88], 500, 1);
    nal(&mut es, &[0x41, 0x9A], 500, 2);
    let frames = frames_from_annexb(VideoCodec::H264, &es, 0, 3600);
    let pkts = send(&frames, MuxConfig::video(Codec::H264), clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(codes(&r), vec![FindingCode::KeyFrameWithoutParameterSets]);
}

#[test]
fn sequence_loss_reorder_duplicate_across_wrap() {
    let rtp = PacketizerConfig {
        initial_sequence: 65_500,
        ..clean_rtp()
    };
    let mut pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), rtp);
    let seq = |p: &Bytes| RtpPacket::parse(p).unwrap().header.sequence;
    // Find the packets around the wrap, which lie inside a P frame's run.
    let w = pkts.iter().position(|(p, _)| seq(p) == 0).unwrap();
    assert!(w > 10 && pkts.len() > w + 40);
    let dup = pkts[w + 20].clone();
    pkts.insert(w + 21, dup); // duplicate
    pkts.swap(w + 30, w + 31); // reorder
    let lost = pkts.remove(w + 2); // loss just after the wrap
    assert_eq!(seq(&lost.0), 2);
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(r.lost_packets, 1);
    assert_eq!(r.duplicate_packets, 1);
    assert_eq!(r.reordered_packets, 1);
    assert_eq!(
        r.finding(FindingCode::PacketLoss).unwrap().first_index(),
        Some(w as u64 + 2)
    );
    assert!(r.has(FindingCode::SequenceDuplicate) && r.has(FindingCode::SequenceReordered));
    // Damage from loss/reorder is not blamed on the PS layer.
    assert!(!r.has(FindingCode::PesLengthInconsistent));
    assert!(!r.has(FindingCode::PsSyncLost));
}

#[test]
fn pes_length_inconsistency_is_flagged() {
    let frames = h264_frames();
    let mut m = PsMuxer::new(MuxConfig::video(Codec::H264)).unwrap();
    let mut p = Packetizer::new(clean_rtp()).unwrap();
    let mut v = StreamValidator::new(ValidatorConfig::new(SSRC, [0x1B]));
    for (i, f) in frames.iter().enumerate() {
        let mut ps = BytesMut::from(&m.mux(f).unwrap()[..]);
        if i == 3 {
            // Non-key frame: pack header (14 bytes) then the PES; shorten its length.
            assert_eq!(&ps[14..18], &[0, 0, 1, 0xE0]);
            ps[19] = ps[19].wrapping_sub(10);
        }
        for pkt in p.packetize(f.pts, &ps) {
            v.push_packet(&pkt, Duration::from_micros(f.pts * 100 / 9));
        }
    }
    let r = v.finish();
    assert!(
        r.has(FindingCode::PesLengthInconsistent),
        "{:#?}",
        r.findings
    );
}

#[test]
fn timestamps_going_backwards_are_flagged() {
    let mut frames = h264_frames();
    frames[10].pts = frames[8].pts;
    let pkts = send(&frames, MuxConfig::video(Codec::H264), clean_rtp());
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert!(r.has(FindingCode::TimestampNotMonotonic));
}

#[test]
fn rtcp_is_ignored_and_garbage_is_counted() {
    let mut pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), clean_rtp());
    pkts.insert(
        5,
        (
            Bytes::from_static(&[0x80, 200, 0, 6, 0, 0, 0, 1]),
            Duration::ZERO,
        ),
    );
    pkts.insert(9, (Bytes::from_static(&[0x40, 1, 2]), Duration::ZERO));
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(codes(&r), vec![FindingCode::InvalidRtp]);
    assert_eq!((r.rtcp_packets, r.invalid_packets), (1, 1));
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn frame_strategy() -> impl Strategy<Value = (bool, usize, u64, u32, bool)> {
    (
        any::<bool>(),
        prop_oneof![1usize..200, 200usize..70_000, 60_000usize..=200_000],
        any::<u64>(),
        1u32..20_000,
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mux_packetize_depacketize_demux_round_trip(
        specs in prop::collection::vec(frame_strategy(), 1..16),
        mtu in 100usize..1500,
        small_pes in any::<bool>(),
        tcp_chunk in prop_oneof![Just(0usize), 1usize..5000],
        start_seq in any::<u16>(),
        start_pts in 0u64..(1 << 33),
    ) {
        let mut pts = start_pts;
        let mut frames = Vec::new();
        for (i, (video, len, seed, step, with_dts)) in specs.into_iter().enumerate() {
            pts += u64::from(step);
            frames.push(Frame {
                codec: if video { Codec::H264 } else { Codec::G711U },
                pts,
                dts: (video && with_dts).then(|| pts - u64::from(step / 2)),
                key: i == 0,
                data: Bytes::from(fill(seed, len)),
            });
        }
        let mut m = PsMuxer::new(MuxConfig {
            audio: Some(Codec::G711U),
            max_pes_packet_length: if small_pes { 1000 } else { 65_535 },
            ..MuxConfig::video(Codec::H264)
        }).unwrap();
        let mut p = Packetizer::new(PacketizerConfig {
            mtu,
            initial_sequence: start_seq,
            ..clean_rtp()
        }).unwrap();
        let mut packets = Vec::new();
        for f in &frames {
            packets.extend(p.packetize(f.pts, &m.mux(f).unwrap()));
        }
        // Optionally carry them over RFC 4571 framing in arbitrary chunks.
        if tcp_chunk > 0 {
            let mut wire = Vec::new();
            for pkt in &packets {
                wire.extend_from_slice(&encode_frame(pkt).unwrap());
            }
            let mut dec = FramingDecoder::new();
            let mut back = Vec::new();
            for c in wire.chunks(tcp_chunk) {
                dec.feed(c);
                while let Some(r) = dec.next_packet() {
                    back.push(r.unwrap());
                }
            }
            prop_assert_eq!(&back, &packets);
        }
        let mut dp = Depacketizer::new();
        let mut dm = PsDemuxer::new();
        let mut got = Vec::new();
        let mut units = 0;
        for pkt in &packets {
            dp.push_bytes(pkt).unwrap();
            while let Some(u) = dp.pop() {
                prop_assert!(u.marker && !u.sequence_gap);
                units += 1;
                dm.feed(&u.data);
                dm.flush();
                while let Some(ev) = dm.poll() {
                    match ev {
                        DemuxEvent::Frame(f) => got.push(f),
                        DemuxEvent::Warning(w) => prop_assert!(false, "warning {:?}", w),
                        _ => {}
                    }
                }
            }
        }
        prop_assert_eq!(units, frames.len());
        prop_assert_eq!(got.len(), frames.len());
        for (f, g) in frames.iter().zip(&got) {
            prop_assert_eq!(g.stream_id, f.codec.stream_id());
            prop_assert_eq!(g.pts, Some(f.pts & crate::proto::ps::TIMESTAMP_MASK));
            prop_assert_eq!(g.dts, f.dts.map(|d| d & crate::proto::ps::TIMESTAMP_MASK));
            prop_assert_eq!(&g.data, &f.data);
            prop_assert_eq!(g.codec(), Some(f.codec));
        }
    }

    #[test]
    fn demuxer_never_panics_on_arbitrary_bytes(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..600,
        flush_every in 0usize..8,
    ) {
        let mut d = PsDemuxer::new().with_max_frame_size(1000);
        for (i, c) in data.chunks(chunk).enumerate() {
            d.feed(c);
            if flush_every > 0 && i % flush_every == 0 {
                d.flush();
            }
            if i % 3 == 2 {
                d.discontinuity();
            }
            while d.poll().is_some() {}
        }
        d.flush();
        while d.poll().is_some() {}
    }

    #[test]
    fn demuxer_never_panics_on_corrupted_streams(
        seed in any::<u64>(),
        flips in 1usize..40,
        chunk in 1usize..3000,
    ) {
        // Valid PS with start codes everywhere, then random byte damage.
        let mut m = PsMuxer::new(MuxConfig {
            audio: Some(Codec::G711A),
            max_pes_packet_length: 300,
            ..MuxConfig::video(Codec::H264)
        }).unwrap();
        let mut ps = Vec::new();
        for i in 0..6u64 {
            let codec = if i % 2 == 0 { Codec::H264 } else { Codec::G711A };
            let f = Frame { codec, pts: i * 1800, dts: None, key: i == 0, data: Bytes::from(fill(seed ^ i, 700)) };
            ps.extend_from_slice(&m.mux(&f).unwrap());
        }
        let mut x = seed | 1;
        for _ in 0..flips {
            let at = (xorshift(&mut x) % ps.len() as u64) as usize;
            ps[at] = xorshift(&mut x) as u8;
        }
        let mut d = PsDemuxer::new();
        for c in ps.chunks(chunk) {
            d.feed(c);
            while d.poll().is_some() {}
        }
        d.flush();
        while d.poll().is_some() {}
    }

    #[test]
    fn rfc4571_decoder_never_panics_and_keeps_order(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..700,
    ) {
        let mut d = FramingDecoder::new();
        let mut consumed = 0usize;
        for c in data.chunks(chunk) {
            d.feed(c);
            while let Some(r) = d.next_packet() {
                consumed += 2 + r.map_or(0, |p| p.len());
            }
        }
        prop_assert_eq!(consumed + d.buffered(), data.len());
    }

    #[test]
    fn validator_never_panics_on_arbitrary_packets(
        packets in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..300), any::<bool>(), 0u64..10_000_000),
            0..64,
        ),
    ) {
        let mut v = StreamValidator::new(ValidatorConfig::new(SSRC, [0x1B]));
        for (mut p, rtp_like, at) in packets {
            if rtp_like && p.len() >= 12 {
                p[0] = 0x80;
                p[1] &= 0x7F;
                p[8..12].copy_from_slice(&SSRC.to_be_bytes());
            }
            v.push_packet(&p, Duration::from_micros(at));
            let _ = v.report();
        }
        let _ = v.finish();
    }
}

#[test]
fn losing_the_first_packet_is_a_join_not_a_failure() {
    let mut pkts = send(&h264_frames(), MuxConfig::video(Codec::H264), clean_rtp());
    pkts.remove(0);
    let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
    assert_eq!(
        codes(&r),
        vec![FindingCode::JoinedMidStream],
        "{:#?}",
        r.findings
    );
    assert!(r.passed());
    assert_eq!(r.key_frames, 1);
}

#[test]
fn mux_psm_faults_each_get_their_diagnosis() {
    let cases = [
        (
            MuxFaults {
                psm_under_system_header: true,
                ..MuxFaults::default()
            },
            FindingCode::PsmStartCode,
        ),
        (
            MuxFaults {
                psm_crc_byte_swapped: true,
                ..MuxFaults::default()
            },
            FindingCode::PsmCrcByteSwapped,
        ),
        (
            MuxFaults {
                psm_crc_zero: true,
                ..MuxFaults::default()
            },
            FindingCode::PsmCrcZero,
        ),
        (
            MuxFaults {
                psm_descriptor_overrun: true,
                ..MuxFaults::default()
            },
            FindingCode::PsmDescriptorOverrun,
        ),
        (
            MuxFaults {
                corrupt_psm_crc: true,
                ..MuxFaults::default()
            },
            FindingCode::PsmCrcMismatch,
        ),
    ];
    for (faults, code) in cases {
        let mux = MuxConfig {
            faults,
            ..MuxConfig::video(Codec::H264)
        };
        let pkts = send(&h264_frames(), mux, clean_rtp());
        let r = validate(&pkts, ValidatorConfig::new(SSRC, [0x1B]));
        assert_eq!(codes(&r), vec![code], "{:#?}", r.findings);
        assert_eq!(r.psm_count, 2);
    }
}
