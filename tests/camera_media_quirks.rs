//! Media quirks of real cameras, mimicked by faults of the reference camera: each
//! is reported by its own finding, with its clause, and the rest of the case is
//! still judged (the stream is decoded and measured). The media figures of every
//! session reach results.json, the terminal lines and the JUnit system-out.

mod common;

use camcert::report::{junit, terminal, CaseResult, RunResult, Status};
use common::run_builtin;

const SUITE: &[&str] = &["suites/gb28181/camera-media.yaml"];

fn case<'a>(r: &'a RunResult, id: &str) -> Vec<&'a CaseResult> {
    let v: Vec<_> = r.cases.iter().filter(|c| c.id == id).collect();
    assert!(!v.is_empty(), "no {id} in the run");
    v
}

fn has_finding(c: &CaseResult, code: &str) -> bool {
    c.findings.iter().any(|f| f.code == code)
}

/// The received video of the case's first session, with its figures filled in.
fn received_video(c: &CaseResult) -> &camcert::report::MediaSummary {
    let m = c
        .media
        .iter()
        .find(|m| m.kind == "video" && m.direction == "received")
        .unwrap_or_else(|| panic!("{} has no received video: {:#?}", c.id, c.media));
    assert_eq!(m.session, 1);
    assert!(m.packets > 0 && m.frames.unwrap() > 0, "{m:#?}");
    assert!(m.key_frames.unwrap() >= 1, "{m:#?}");
    assert!(m.frame_rate.is_some() && m.bitrate_kbps.is_some(), "{m:#?}");
    assert!(
        m.jitter_ms.is_some() && m.first_key_frame_ms.is_some(),
        "{m:#?}"
    );
    assert_eq!(m.lost_packets, Some(0));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psm_under_the_system_header_code_is_its_own_failure() {
    let r = run_builtin(SUITE, &["psm-bb"], &["CAM-MED-001"]).await;
    for c in case(&r, "CAM-MED-001") {
        assert_eq!(c.status, Status::Failed);
        assert_eq!(
            c.failures[0].check, "ps.psm-start-code",
            "{:#?}",
            c.failures
        );
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "ps.psm-start-code")
            .unwrap();
        assert!(f.clause.contains("0xBC") && f.message.contains("0x000001BB"));
        // The map was still read: the key frames are not blamed for lacking one.
        assert!(!has_finding(c, "ps.psm_missing_before_key_frame"));
        assert_eq!(received_video(c).errors, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_interleaved_tcp_framing_is_reported_and_decoded() {
    let r = run_builtin(
        SUITE,
        &["rtsp-interleaved"],
        &["CAM-MED-001", "CAM-MED-002"],
    )
    .await;
    for c in case(&r, "CAM-MED-002") {
        assert_eq!(c.status, Status::Failed);
        assert_eq!(
            c.failures[0].check, "rtp.tcp-rtsp-framing",
            "{:#?}",
            c.failures
        );
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "rtp.tcp-rtsp-framing")
            .unwrap();
        assert!(f.clause.contains("RFC 4571"), "{}", f.clause);
        // Decoded anyway: the frames arrived and were measured.
        let m = received_video(c);
        assert!(m.frames.unwrap() >= 25, "{m:#?}");
        assert_eq!(m.errors, 1);
    }
    // Over UDP the fault has nothing to change.
    assert!(case(&r, "CAM-MED-001")
        .iter()
        .all(|c| c.status == Status::Passed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_without_direction_is_a_finding_and_camcert_sends_nothing() {
    let r = run_builtin(SUITE, &["no-direction"], &["CAM-MED-001", "CAM-MED-002"]).await;
    for c in case(&r, "CAM-MED-002") {
        assert_eq!(c.status, Status::Passed, "{:#?}", c.failures);
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "session.gb.session.answer-without-direction")
            .unwrap_or_else(|| panic!("{:#?}", c.findings));
        assert!(f.message.contains("read as a=sendonly"), "{}", f.message);
        assert!(f.clause.contains("RFC 3264 §6"));
        received_video(c);
        assert!(
            c.media.iter().all(|m| m.direction != "sent"),
            "camcert sent media the offer did not ask for: {:#?}",
            c.media
        );
    }
    // The case that checks the answer's a=sendonly fails on it.
    for c in case(&r, "CAM-MED-001") {
        assert_eq!(c.status, Status::Failed);
        assert!(
            c.failures[0].message.contains("sdp.direction"),
            "{:#?}",
            c.failures
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_swapped_and_zero_psm_crcs_are_diagnosed_as_such() {
    for (fault, code) in [
        ("psm-crc-byte-swapped", "ps.psm-crc-byte-swapped"),
        ("psm-crc-zero", "ps.psm-crc-zero"),
    ] {
        let r = run_builtin(SUITE, &[fault], &["CAM-MED-001"]).await;
        for c in case(&r, "CAM-MED-001") {
            // A warning: the map is usable, the case passes.
            assert_eq!(c.status, Status::Passed, "{fault}: {:#?}", c.failures);
            assert!(has_finding(c, code), "{fault}: {:#?}", c.findings);
            assert!(!has_finding(c, "ps.psm_crc"), "{fault}: {:#?}", c.findings);
            assert_eq!(received_video(c).warnings, 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_figures_reach_every_report() {
    let r = run_builtin(SUITE, &[], &["CAM-MED-001"]).await;
    let c = case(&r, "CAM-MED-001")[0];
    let m = received_video(c);
    assert_eq!((m.errors, m.warnings), (0, 0));
    let json = serde_json::to_value(&r).unwrap();
    let media = &json["cases"][0]["media"][0];
    assert_eq!(media["kind"], "video");
    assert!(media["frames"].as_u64().unwrap() > 0);
    assert!(media["first_key_frame_ms"].is_u64());
    let mut out = Vec::new();
    terminal::print_case(&mut out, c);
    let text = String::from_utf8(out).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("media session 1 video received: ")
        })
        .unwrap_or_else(|| panic!("{text}"));
    for part in [
        "frames (",
        "key)",
        "fps",
        "kbit/s",
        "loss 0 (0.00%)",
        "jitter",
        "first key frame",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    let xml = junit::to_xml(&r).unwrap();
    assert!(xml.contains("media session 1 video received: "), "{xml}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psm_descriptor_overrunning_its_entry_is_reported() {
    let r = run_builtin(SUITE, &["psm-descriptor-overrun"], &["CAM-MED-001"]).await;
    for c in case(&r, "CAM-MED-001") {
        assert_eq!(c.status, Status::Failed);
        assert_eq!(
            c.failures[0].check, "ps.psm-descriptor-overrun",
            "{:#?}",
            c.failures
        );
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "ps.psm-descriptor-overrun")
            .unwrap();
        assert!(
            f.message.contains("declares 7 bytes, only 4"),
            "{}",
            f.message
        );
        assert!(f.clause.contains("elementary_stream_info_length"));
        assert_eq!(received_video(c).errors, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_first_packet_was_lost_passes_with_a_warning() {
    // CAM-MED-017 wants 75 frames at 20 fps or more; the join costs the first GOP.
    let r = run_builtin(SUITE, &["drop-first-packet"], &["CAM-MED-017"]).await;
    for c in case(&r, "CAM-MED-017") {
        assert_eq!(c.status, Status::Passed, "{:#?}", c.failures);
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "ps.joined-mid-stream")
            .unwrap();
        assert!(
            f.message
                .contains("bytes skipped before the first pack header")
                && f.message.contains("before the first key frame"),
            "{}",
            f.message
        );
        assert!(!has_finding(c, "ps.sync_lost") && !has_finding(c, "video.first_frame_not_key"));
        let m = received_video(c);
        assert_eq!((m.errors, m.warnings), (0, 1));
    }
}
