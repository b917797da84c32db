//! camcert's PS muxer and demuxer against an independent implementation, FFmpeg from
//! Debian: ffprobe must decode every frame camcert muxes (with the right codec and
//! size), and camcert must read back every frame ffmpeg's own PS muxer writes.
//! `ci/install-deps.sh` installs ffmpeg; with `CAMCERT_INTEROP=1` (as `ci/test.sh`
//! sets) a missing binary is a failure, otherwise the test says it skipped.

mod common;
use common::available;

use std::io::Write;
use std::process::{Command, Stdio};

use camcert::media::MediaSource;
use camcert::proto::ps::annexb::{nal_units, split_access_units, VideoCodec};
use camcert::proto::ps::demux::{DemuxEvent, PsDemuxer};
use camcert::proto::ps::mux::{MuxConfig, PsMuxer};
use camcert::proto::ps::Frame;
use camcert::proto::rtp::{Depacketizer, Packetizer, PacketizerConfig};
use common::root;

const SAMPLES: [(&str, VideoCodec, &str); 2] = [
    (
        "captures/sample-h264-320x240-25fps.h264",
        VideoCodec::H264,
        "h264",
    ),
    (
        "captures/sample-h265-320x240-25fps.h265",
        VideoCodec::H265,
        "hevc",
    ),
];

/// Runs a command with `input` on stdin and returns stdout; panics with stderr on failure.
fn pipe(cmd: &mut Command, input: Vec<u8>) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // ffprobe may stop reading early; a broken pipe is its business.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The sample muxed by camcert, one PS frame per access unit at 25 fps.
fn camcert_ps(path: &str, codec: VideoCodec) -> (Vec<u8>, Vec<bytes::Bytes>, usize) {
    let src = MediaSource::from_file(root().join(path), Some(codec)).unwrap();
    let mut mux = PsMuxer::new(MuxConfig::video(codec.codec())).unwrap();
    let mut ps = Vec::new();
    let mut frames = Vec::new();
    for (i, f) in src.frames().iter().enumerate() {
        let b = mux
            .mux(&Frame {
                codec: codec.codec(),
                pts: i as u64 * 3600,
                dts: None,
                key: f.key,
                data: f.data.clone(),
            })
            .unwrap();
        ps.extend_from_slice(&b);
        frames.push(b);
    }
    (ps, frames, src.len())
}

#[test]
fn ffprobe_decodes_every_frame_camcert_muxes() {
    if !available("ffprobe") {
        return;
    }
    for (path, codec, name) in SAMPLES {
        let (ps, frames, n) = camcert_ps(path, codec);
        // The same bytes survive RTP packetization and reassembly.
        let mut p = Packetizer::new(PacketizerConfig::with_ssrc(1)).unwrap();
        let mut d = Depacketizer::new();
        for (i, f) in frames.iter().enumerate() {
            for pkt in p.packetize(i as u64 * 3600, f) {
                d.push_bytes(&pkt).unwrap();
            }
        }
        let mut again = Vec::new();
        while let Some(u) = d.pop() {
            again.extend_from_slice(&u.data);
        }
        assert_eq!(again, ps);

        let out = pipe(
            Command::new("ffprobe").args([
                "-v",
                "error",
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
                "-of",
                "json",
                "-f",
                "mpeg",
                "-",
            ]),
            ps,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let s = &v["streams"][0];
        eprintln!("ffprobe {path} muxed by camcert: {s}");
        assert_eq!(s["codec_name"], name, "{v}");
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(320), Some(240))
        );
        assert_eq!(
            s["nb_read_frames"].as_str(),
            Some(n.to_string().as_str()),
            "{v}"
        );
    }
}

fn demux_video(ps: &[u8]) -> (Vec<u8>, usize, Vec<u8>) {
    let mut d = PsDemuxer::new();
    // Odd chunk sizes, as a socket would deliver them.
    for chunk in ps.chunks(1357) {
        d.feed(chunk);
    }
    d.flush();
    let mut es = Vec::new();
    let mut pes_frames = 0;
    let mut ids = Vec::new();
    while let Some(ev) = d.poll() {
        if let DemuxEvent::Frame(f) = ev {
            if f.is_video() {
                es.extend_from_slice(&f.data);
                pes_frames += 1;
                if !ids.contains(&f.stream_id) {
                    ids.push(f.stream_id);
                }
            }
        }
    }
    (es, pes_frames, ids)
}

#[test]
fn camcert_demuxes_every_frame_ffmpeg_muxes() {
    if !available("ffmpeg") {
        return;
    }
    for (path, codec, _) in SAMPLES {
        let input = std::fs::read(root().join(path)).unwrap();
        let want_aus = split_access_units(codec, &input).len();
        let want_nals: Vec<&[u8]> = nal_units(&input).collect();
        // vob: MPEG-2 program stream; mpeg: MPEG-1 system stream (MPEG-1 pack and PES
        // headers, which some cameras still send).
        for format in ["vob", "mpeg"] {
            let ps = pipe(
                Command::new("ffmpeg").args([
                    "-v",
                    "error",
                    "-framerate",
                    "25",
                    "-i",
                    "-",
                    "-c",
                    "copy",
                    "-f",
                    format,
                    "-",
                ]),
                input.clone(),
            );
            let (es, pes_frames, ids) = demux_video(&ps);
            let aus = split_access_units(codec, &es);
            eprintln!(
                "{path} muxed by ffmpeg -f {format}: {} PS bytes, stream ids {ids:02x?}, {pes_frames} PTS-delimited units, {} access units",
                ps.len(),
                aus.len()
            );
            assert_eq!(aus.len(), want_aus, "{format}");
            assert_eq!(aus.len(), 50);
            let got_nals: Vec<&[u8]> = nal_units(&es).collect();
            assert!(got_nals == want_nals, "{format}: NAL units differ");
        }
    }
}
