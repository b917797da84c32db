//! `camcert lint`: offline conformance of a recorded session against the
//! requirement IDs the live suites cite (`suites/gb28181/requirements*.yaml`),
//! wherever a capture is enough to judge them.
//!
//! A pcap or pcapng capture is read with [`Decoder`] (SIP over UDP and TCP,
//! RTP per flow), and judged as a whole: every SIP message's own findings
//! and Content-Length (GB-SIP-01), the digest exchange of each registration
//! (GB-REG-03) and the Date of its 200 (GB-TIME-01), keepalive interval, SN
//! and answers (GB-KA-01..03), the SN and CmdType of each query's Response
//! (GB-Q-01), the answer's `y=` (GB-MED-01), and each RTP flow through the
//! same [`StreamValidator`] a live session uses, with the SSRC its SDP
//! negotiated (GB-MED-05, GB-MED-06).
//!
//! A media file alone is judged for the media requirements only: a PS file
//! or an Annex B file (PS structure; Annex B is put in PS the way the
//! reference camera does it first), and RTP as an rtpdump file, RFC 4571
//! framed, or packets back to back (RTP and PS). What the input is comes
//! from its content ([`detect`]).
//!
//! Each requirement becomes one case of a [`RunResult`], so the reports are
//! those of `camcert run`. A requirement the input holds nothing for is
//! reported skipped, saying what was missing.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::capture::decode::{self, Decoder, SipEvent};
use crate::capture::read;
use crate::finding::{Finding, Severity};
use crate::proto::gb28181::manscdp::{Message as Manscdp, Root};
use crate::proto::ps::annexb::{frames_from_annexb, VideoCodec};
use crate::proto::ps::validate::{StreamValidator, ValidationReport, ValidatorConfig};
use crate::proto::sip::digest::{Challenge, Credentials};
use crate::proto::sip::SipMessage;
use crate::report::{
    escape_bytes, CaseResult, Failure, FindingOut, MediaSummary, RequirementRef, RunResult, Status,
    Summary,
};
use crate::suite::model::{CatalogInput, Level};

/// What a file holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// pcap or pcapng.
    Capture,
    /// An MPEG program stream (starts with a pack header).
    Ps,
    /// An H.264 or H.265 elementary stream in Annex B byte format.
    AnnexB(VideoCodec),
    /// rtpdump (`#!rtpplay1.0`), as rtpdump/rtpplay and Wireshark write it.
    RtpDump,
    /// RTP packets each preceded by a 16-bit length (RFC 4571).
    Rfc4571,
    /// RTP packets back to back, without framing.
    RtpBackToBack,
}

impl InputKind {
    pub fn describe(self) -> &'static str {
        match self {
            InputKind::Capture => "packet capture",
            InputKind::Ps => "MPEG program stream",
            InputKind::AnnexB(VideoCodec::H264) => "H.264 Annex B stream",
            InputKind::AnnexB(VideoCodec::H265) => "H.265 Annex B stream",
            InputKind::RtpDump => "rtpdump file",
            InputKind::Rfc4571 => "RFC 4571 framed RTP",
            InputKind::RtpBackToBack => "RTP packets back to back",
        }
    }
}

fn looks_rtp(p: &[u8]) -> bool {
    p.len() >= 12 && p[0] >> 6 == 2 && !(200..=204).contains(&p[1])
}

/// Recognise a file by its content (the name only breaks an H.264/H.265 tie).
pub fn detect(data: &[u8], name: &str) -> Option<InputKind> {
    let magic = data.get(..4)?;
    if magic == [0x0a, 0x0d, 0x0d, 0x0a]
        || [
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0x4d, 0x3c, 0xb2, 0xa1],
            [0xa1, 0xb2, 0x3c, 0x4d],
        ]
        .contains(&[magic[0], magic[1], magic[2], magic[3]])
    {
        return Some(InputKind::Capture);
    }
    if data.starts_with(b"#!rtpplay1.0 ") {
        return Some(InputKind::RtpDump);
    }
    if magic == [0, 0, 1, 0xba] {
        return Some(InputKind::Ps);
    }
    let nal = if magic == [0, 0, 0, 1] {
        data.get(4)
    } else if magic[..3] == [0, 0, 1] {
        data.get(3)
    } else {
        None
    };
    if let Some(&h) = nal {
        let lower = name.to_ascii_lowercase();
        let h265_name = [".h265", ".265", ".hevc"]
            .iter()
            .any(|e| lower.ends_with(e));
        let h264_name = [".h264", ".264", ".avc"].iter().any(|e| lower.ends_with(e));
        // H.265: VPS/SPS/PPS/AUD/SEI types 32..=40 with layer and TID bits.
        let h265 = (32..=40).contains(&((h >> 1) & 0x3f)) && data.get(5) == Some(&1);
        let codec = if h265_name || (h265 && !h264_name) {
            VideoCodec::H265
        } else {
            VideoCodec::H264
        };
        return Some(InputKind::AnnexB(codec));
    }
    let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
    if len >= 12 && data.len() >= 2 + len && looks_rtp(&data[2..2 + len]) {
        let next = &data[2 + len..];
        let chained = next.is_empty()
            || (next.len() >= 3 && {
                let l2 = usize::from(u16::from_be_bytes([next[0], next[1]]));
                l2 >= 12 && next[2] >> 6 == 2
            });
        if chained {
            return Some(InputKind::Rfc4571);
        }
    }
    if looks_rtp(data) {
        return Some(InputKind::RtpBackToBack);
    }
    None
}

/// Settings of a lint run.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// The keepalive interval the device was configured with.
    pub keepalive_interval: Duration,
    /// The devices' password: with it the digest responses are verified.
    pub password: Option<String>,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            keepalive_interval: Duration::from_secs(60),
            password: None,
        }
    }
}

/// The requirements a lint judges: ID, what is checked, and what the input
/// lacks when there is nothing to judge.
const CHECKS: &[(&str, &str, &str)] = &[
    (
        "GB-SIP-01",
        "SIP messages are well formed, Content-Length equals the body",
        "no SIP message in the input",
    ),
    (
        "GB-REG-03",
        "digest registration: REGISTER, 401 with a challenge, REGISTER with Authorization, 200",
        "no REGISTER in the input",
    ),
    (
        "GB-TIME-01",
        "the 200 to an authorised REGISTER carries Date in the GB format",
        "no 200 to an authorised REGISTER in the input",
    ),
    (
        "GB-KA-01",
        "keepalives at the configured interval with CmdType, SN, DeviceID and Status",
        "no keepalive in the input",
    ),
    (
        "GB-KA-02",
        "each keepalive has a larger SN than the last and the device's 20-digit ID",
        "no keepalive in the input",
    ),
    (
        "GB-KA-03",
        "every keepalive is answered 200",
        "no keepalive in the input",
    ),
    (
        "GB-Q-01",
        "each query is answered 200, then by a Response with its CmdType, SN and DeviceID",
        "no query in the input",
    ),
    (
        "GB-MED-01",
        "the answer to a media INVITE echoes the offered y= SSRC",
        "no media INVITE answered with SDP in the input",
    ),
    (
        "GB-MED-05",
        "RTP carries the negotiated payload type on a 90 kHz clock, with the SSRC of y= and a marker on each frame's last packet",
        "no RTP in the input",
    ),
    (
        "GB-MED-06",
        "the PS opens with a key frame and its parameter sets; every key frame has pack header, system header and PSM",
        "no PS media in the input",
    ),
];

const MEDIA_CHECKS: [&str; 2] = ["GB-MED-05", "GB-MED-06"];

/// The requirement catalogs of the GB/T 28181 suites, built in.
fn catalog() -> BTreeMap<String, RequirementRef> {
    let texts = [
        include_str!("../../suites/gb28181/requirements.yaml"),
        include_str!("../../suites/gb28181/requirements-camera.yaml"),
        include_str!("../../suites/gb28181/requirements-platform.yaml"),
        include_str!("../../suites/gb28181/requirements-media.yaml"),
    ];
    let mut m = BTreeMap::new();
    for t in texts {
        // The catalogs are part of the build; one that no longer parses
        // leaves its requirements without text rather than failing a lint.
        if let Ok(c) = serde_saphyr::from_str::<CatalogInput>(t) {
            for r in c.requirements {
                let r = r.value;
                m.insert(
                    r.id.clone(),
                    RequirementRef {
                        id: r.id,
                        clause: r.clause,
                        level: r.level,
                        text: r.text,
                    },
                );
            }
        }
    }
    m
}

/// One requirement judged over the whole input.
#[derive(Debug)]
struct Check {
    id: &'static str,
    title: &'static str,
    nothing: &'static str,
    /// Things judged (messages, exchanges, streams).
    judged: usize,
    failures: Vec<Failure>,
    findings: Vec<FindingOut>,
    media: Vec<MediaSummary>,
}

/// The checks of one input, filled as it is read.
struct Lint {
    label: String,
    checks: Vec<Check>,
    catalog: BTreeMap<String, RequirementRef>,
}

/// Failures kept per requirement (the rest are counted in one more).
const MAX_FAILURES: usize = 50;

impl Lint {
    fn new(label: &str, ids: &[&str]) -> Lint {
        Lint {
            label: label.to_string(),
            checks: CHECKS
                .iter()
                .filter(|(id, _, _)| ids.contains(id))
                .map(|(id, title, nothing)| Check {
                    id,
                    title,
                    nothing,
                    judged: 0,
                    failures: Vec::new(),
                    findings: Vec::new(),
                    media: Vec::new(),
                })
                .collect(),
            catalog: catalog(),
        }
    }

    fn check(&mut self, id: &str) -> &mut Check {
        let i = self
            .checks
            .iter()
            .position(|c| c.id == id)
            .expect("a requirement of CHECKS");
        &mut self.checks[i]
    }

    fn judged(&mut self, id: &str) {
        self.check(id).judged += 1;
    }

    /// A failed check on `frame` (0: the input as a whole).
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        id: &str,
        frame: u64,
        code: &str,
        message: String,
        expected: Option<String>,
        received: Option<String>,
        bytes: Option<&[u8]>,
    ) {
        // A check of lint's own cites its requirement's clause.
        let message = match self.catalog.get(id) {
            Some(r) if !message.ends_with(']') => format!("{message} [{}: {}]", r.id, r.clause),
            _ => message,
        };
        let location = if frame == 0 {
            self.label.clone()
        } else {
            format!("{}: frame {frame}", self.label)
        };
        let c = self.check(id);
        if c.failures.len() == MAX_FAILURES {
            c.failures.push(Failure {
                step: c.failures.len() + 1,
                location,
                check: "lint.more".into(),
                message: "further failures of this requirement are not listed".into(),
                expected: None,
                received: None,
                bytes: None,
                candidates: Vec::new(),
            });
            return;
        }
        if c.failures.len() > MAX_FAILURES {
            return;
        }
        let step = c.failures.len() + 1;
        c.failures.push(Failure {
            step,
            location,
            check: code.to_string(),
            message,
            expected,
            received,
            bytes: bytes.map(escape_bytes),
            candidates: Vec::new(),
        });
    }

    /// A protocol finding: errors fail the requirement, the rest are shown.
    fn finding(&mut self, id: &str, frame: u64, what: &str, f: &Finding, message: &[u8]) {
        if f.severity == Severity::Error {
            let (bytes, whereabouts) = match &f.evidence {
                Some(crate::finding::Evidence::Bytes(b)) => (Some(b.as_slice()), String::new()),
                Some(crate::finding::Evidence::Span { start, end }) => (
                    message.get(*start..(*end).min(message.len())),
                    String::new(),
                ),
                Some(other) => (None, format!(" ({other})")),
                None => (None, String::new()),
            };
            self.fail(
                id,
                frame,
                f.code,
                format!("{what}: {}{whereabouts} [{}]", f.message, f.clause),
                None,
                None,
                bytes,
            );
        } else {
            let c = self.check(id);
            if c.findings.len() < MAX_FAILURES {
                let mut out = FindingOut::in_message(f, message);
                out.message = format!("frame {frame}: {what}: {}", out.message);
                c.findings.push(out);
            }
        }
    }

    fn into_result(self, transport: &str, started: String) -> RunResult {
        let cat = &self.catalog;
        let cases: Vec<CaseResult> = self
            .checks
            .into_iter()
            .map(|c| {
                let req = cat.get(c.id).cloned().unwrap_or(RequirementRef {
                    id: c.id.to_string(),
                    clause: String::new(),
                    level: Level::Mandatory,
                    text: String::new(),
                });
                let (status, failures) = if c.judged == 0 && c.failures.is_empty() {
                    (
                        Status::Skipped,
                        vec![Failure {
                            step: 0,
                            location: self.label.clone(),
                            check: "lint.nothing-to-judge".into(),
                            message: c.nothing.to_string(),
                            expected: None,
                            received: None,
                            bytes: None,
                            candidates: Vec::new(),
                        }],
                    )
                } else if c.failures.is_empty() {
                    (Status::Passed, c.failures)
                } else {
                    (Status::Failed, c.failures)
                };
                CaseResult {
                    suite: "lint gb28181".into(),
                    suite_file: self.label.clone(),
                    id: c.id.to_string(),
                    title: c.title.to_string(),
                    transport: transport.to_string(),
                    level: req.level,
                    tags: vec!["lint".into()],
                    clause: req.clause.clone(),
                    requirements: vec![req],
                    status,
                    duration_ms: 0,
                    failures,
                    findings: c.findings,
                    messages: Vec::new(),
                    pcap: None,
                    media: c.media,
                }
            })
            .collect();
        let mut r = RunResult {
            tool: "camcert".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: started,
            finished_at: Some(chrono::Utc::now().to_rfc3339()),
            target: self.label.clone(),
            interrupted: false,
            settings: Vec::new(),
            cases,
            summary: Summary::default(),
            suite_files: Vec::new(),
        };
        r.recount();
        r
    }
}

/// Lint `data` (the bytes of the file named `label`).
pub fn lint(data: &[u8], label: &str, opts: &LintOptions) -> Result<RunResult, String> {
    let started = chrono::Utc::now().to_rfc3339();
    let kind = detect(data, label).ok_or_else(|| {
        format!(
            "{label}: not a capture (pcap, pcapng), a PS or Annex B file, or RTP (rtpdump, RFC 4571 framed, or packets back to back)"
        )
    })?;
    match kind {
        InputKind::Capture => lint_capture(data, label, opts, started),
        other => {
            let (packets, arrivals) = media_packets(data, other)?;
            let ids: &[&str] = match other {
                // PS made here: only its structure is the file's.
                InputKind::Ps | InputKind::AnnexB(_) => &["GB-MED-06"],
                _ => &MEDIA_CHECKS,
            };
            let mut l = Lint::new(label, ids);
            if packets.is_empty() {
                return Ok(l.into_result("file", started));
            }
            let ssrc = u32::from_be_bytes([
                packets[0].0[8],
                packets[0].0[9],
                packets[0].0[10],
                packets[0].0[11],
            ]);
            let mut cfg = ValidatorConfig::new(ssrc, Vec::<u8>::new());
            if !arrivals {
                // Without arrival times the clock cannot be measured; the
                // timestamps are still compared with the PES PTS.
                cfg.min_clock_span = Duration::from_secs(365 * 86400);
            }
            let mut v = StreamValidator::new(cfg);
            for (p, at) in &packets {
                v.push_packet(p, *at);
            }
            let report = v.finish();
            judge_stream(&mut l, 0, &report, "the stream", None);
            Ok(l.into_result("file", started))
        }
    }
}

/// The validator's verdicts on one stream, under GB-MED-05 (RTP) and
/// GB-MED-06 (PS and video).
fn judge_stream(l: &mut Lint, frame: u64, r: &ValidationReport, what: &str, sdp: Option<&str>) {
    let has = |l: &Lint, id: &str| l.checks.iter().any(|c| c.id == id);
    for id in MEDIA_CHECKS {
        if has(l, id) {
            l.judged(id);
        }
    }
    for f in &r.findings {
        let id = if f.code.starts_with("rtp.") {
            "GB-MED-05"
        } else {
            "GB-MED-06"
        };
        if !has(l, id) {
            continue;
        }
        let what = match sdp {
            Some(y) => format!("{what} (negotiated y={y})"),
            None => what.to_string(),
        };
        l.finding(id, frame, &what, f, &[]);
    }
    let summary = MediaSummary {
        session: l
            .checks
            .iter()
            .find(|c| c.id == "GB-MED-05")
            .map_or(0, |c| c.media.len())
            + 1,
        kind: "video".into(),
        direction: "received".into(),
        packets: r.packets,
        frames: Some(r.video_frames),
        key_frames: Some(r.key_frames),
        frame_rate: r.frame_rate,
        bitrate_kbps: r.bitrate_bps.map(|b| b / 1000.0),
        lost_packets: Some(r.lost_packets),
        loss_ratio: Some(r.loss_ratio),
        jitter_ms: Some(r.jitter_ms),
        first_key_frame_ms: r.time_to_first_key_frame.map(|d| d.as_millis() as u64),
        errors: r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        warnings: r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
    };
    let target = if has(l, "GB-MED-05") {
        "GB-MED-05"
    } else {
        "GB-MED-06"
    };
    l.check(target).media.push(summary);
}

/// The most a media file may expand to, in packets.
const MAX_PACKETS: usize = 2_000_000;

/// RTP packets, each with its arrival time.
type Packets = Vec<(Vec<u8>, Duration)>;

/// The RTP packets of a media file, and whether their arrival times were
/// recorded (rtpdump) or only follow the timestamps.
fn media_packets(data: &[u8], kind: InputKind) -> Result<(Packets, bool), String> {
    match kind {
        InputKind::Capture => Ok((Vec::new(), false)),
        InputKind::Ps => Ok((packetize(ps_units(data)), false)),
        InputKind::AnnexB(codec) => {
            use crate::proto::ps::mux::{MuxConfig, PsMuxer};
            let frames = frames_from_annexb(codec, data, 0, 3600);
            let mut mux = PsMuxer::new(MuxConfig::video(codec.codec()))
                .map_err(|e| format!("PS muxer: {e}"))?;
            let mut units = Vec::new();
            for f in &frames {
                let ps = mux.mux(f).map_err(|e| format!("PS muxer: {e}"))?;
                units.push((f.pts, ps.to_vec()));
            }
            Ok((packetize(units), false))
        }
        InputKind::RtpDump => rtpdump(data).map(|p| (p, true)),
        InputKind::Rfc4571 => {
            let mut out = Vec::new();
            let mut rest = data;
            while rest.len() >= 2 && out.len() < MAX_PACKETS {
                let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(p) = rest.get(2..2 + n) else { break };
                out.push(p.to_vec());
                rest = &rest[2 + n..];
            }
            Ok((with_ts_arrivals(out), false))
        }
        InputKind::RtpBackToBack => Ok((with_ts_arrivals(split_back_to_back(data)), false)),
    }
}

/// Arrival times that follow the RTP timestamps (90 kHz).
fn with_ts_arrivals(packets: Vec<Vec<u8>>) -> Packets {
    let mut first: Option<u32> = None;
    packets
        .into_iter()
        .map(|p| {
            let ts = p
                .get(4..8)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let base = *first.get_or_insert(ts);
            let at = Duration::from_micros(u64::from(ts.wrapping_sub(base)) * 100 / 9);
            (p, at)
        })
        .collect()
}

/// RTP packets written one after another: the next packet starts where a
/// header of the same SSRC with the next sequence number does.
fn split_back_to_back(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    while start + 12 <= data.len() && out.len() < MAX_PACKETS {
        let ssrc = &data[start + 8..start + 12];
        let seq = u16::from_be_bytes([data[start + 2], data[start + 3]]);
        let next = seq.wrapping_add(1).to_be_bytes();
        let mut end = data.len();
        let mut i = start + 12;
        while i + 12 <= data.len() {
            if data[i] >> 6 == 2 && data[i + 2..i + 4] == next && &data[i + 8..i + 12] == ssrc {
                end = i;
                break;
            }
            i += 1;
        }
        out.push(data[start..end].to_vec());
        start = end;
    }
    out
}

/// rtpdump: `#!rtpplay1.0 ADDRESS/PORT\n`, a 16-byte file header, then per
/// packet a length (its 8-byte header included), the packet's own length
/// (0 where the writer leaves it out), and the milliseconds since the start.
fn rtpdump(data: &[u8]) -> Result<Packets, String> {
    let nl = data
        .iter()
        .take(256)
        .position(|b| *b == b'\n')
        .ok_or("rtpdump: no end to the first line")?;
    let mut rest = data
        .get(nl + 1 + 16..)
        .ok_or("rtpdump: the file header is cut short")?;
    let mut out = Vec::new();
    while rest.len() >= 8 && out.len() < MAX_PACKETS {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let plen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let ms = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len < 8 || rest.len() < len {
            break;
        }
        let body = &rest[8..len];
        // plen 0 marks RTCP (or a writer that leaves it out): keep what
        // looks like RTP.
        if (plen == 0 || plen <= body.len()) && looks_rtp(body) {
            let p = if plen == 0 { body } else { &body[..plen] };
            out.push((p.to_vec(), Duration::from_millis(u64::from(ms))));
        }
        rest = &rest[len..];
    }
    Ok(out)
}

/// A PS byte stream cut into the units a packetizer sends one frame at a
/// time: from a pack header whose first PES carries a PTS up to the next
/// such pack, each with that PTS.
fn ps_units(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let packs: Vec<usize> = (0..data.len().saturating_sub(3))
        .filter(|&i| data[i..i + 4] == [0, 0, 1, 0xba])
        .collect();
    let mut units: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut last_pts = 0u64;
    for (k, &s) in packs.iter().enumerate() {
        let e = packs.get(k + 1).copied().unwrap_or(data.len());
        let pack = &data[s..e];
        match first_pts(pack) {
            Some(pts) => {
                last_pts = pts;
                units.push((pts, pack.to_vec()));
            }
            None => match units.last_mut() {
                Some(u) => u.1.extend_from_slice(pack),
                None => units.push((last_pts, pack.to_vec())),
            },
        }
        if units.len() > MAX_PACKETS {
            break;
        }
    }
    if packs.first().is_some_and(|&s| s > 0) || packs.is_empty() {
        // Bytes before the first pack header go first, as they came.
        let head = &data[..packs.first().copied().unwrap_or(data.len())];
        units.insert(0, (0, head.to_vec()));
    }
    units
}

/// The PTS of the first PES packet in `pack` that has one.
fn first_pts(pack: &[u8]) -> Option<u64> {
    let mut i = 4;
    while i + 14 <= pack.len() {
        if pack[i..i + 3] == [0, 0, 1] && (0xc0..=0xef).contains(&pack[i + 3]) {
            let h = &pack[i..];
            if h[7] & 0x80 != 0 && h[6] & 0xc0 == 0x80 {
                let p = |b: u8| u64::from(b);
                return Some(
                    ((p(h[9]) >> 1) & 7) << 30
                        | p(h[10]) << 22
                        | (p(h[11]) >> 1) << 15
                        | p(h[12]) << 7
                        | p(h[13]) >> 1,
                );
            }
            return None;
        }
        i += 1;
    }
    None
}

/// PS units to RTP with camcert's packetizer (payload type 96, 90 kHz).
fn packetize(units: Vec<(u64, Vec<u8>)>) -> Packets {
    use crate::proto::rtp::{Packetizer, PacketizerConfig};
    let Ok(mut rtp) = Packetizer::new(PacketizerConfig::with_ssrc(1)) else {
        return Vec::new();
    };
    let first = units.first().map_or(0, |u| u.0);
    let mut out = Vec::new();
    for (pts, ps) in units {
        let at = Duration::from_micros(pts.saturating_sub(first) * 100 / 9);
        for p in rtp.packetize(pts, &ps) {
            out.push((p.to_vec(), at));
        }
        if out.len() > MAX_PACKETS {
            break;
        }
    }
    out
}

/// A SIP event with what lint needs of it.
struct Msg<'a> {
    e: &'a SipEvent,
    call_id: String,
    cseq: Option<(u32, String)>,
}

fn header<'a>(m: &'a SipMessage, name: &str) -> Option<&'a str> {
    m.headers.get(name).map(str::trim)
}

/// `yyyy-MM-ddTHH:mm:ss` with optional `.SSS`.
fn gb_date(v: &str) -> bool {
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let base = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    base && (b.len() == 19 || (b[19] == b'.' && b.len() > 20 && digits(20..b.len())))
}

fn lint_capture(
    data: &[u8],
    label: &str,
    opts: &LintOptions,
    started: String,
) -> Result<RunResult, String> {
    let cap = read::read_capture(data).map_err(|e| format!("{label}: {e}"))?;
    let ids: Vec<&str> = CHECKS.iter().map(|c| c.0).collect();
    let mut l = Lint::new(label, &ids);
    let mut dec = Decoder::new();
    dec.keep_tcp_rtp(MAX_TCP_RTP_BYTES);
    let mut events = Vec::new();
    for f in &cap.frames {
        dec.push(f, &mut |e| events.push(e));
    }
    let last = cap.frames.last().map_or(0, |f| f.number);
    dec.finish(last, &mut |e| events.push(e));
    let t0 = cap.frames.first().map_or(Duration::ZERO, |f| f.time);
    let end = cap.frames.last().map_or(Duration::ZERO, |f| f.time);
    if let Some(s) = &cap.stopped {
        let reason = format!(
            "the capture could not be read past byte {}: {}",
            s.offset, s.reason
        );
        l.check("GB-SIP-01").findings.push(FindingOut {
            code: "capture.truncated".into(),
            severity: Severity::Warning,
            clause: String::new(),
            message: reason,
            evidence: None,
        });
    }
    let first_sip = events
        .first()
        .map(|e| (e.frame, e.flow.transport))
        .into_iter()
        .chain(dec.unreadable.first().map(|u| (u.frame, u.flow.transport)))
        .min_by_key(|(frame, _)| *frame);
    let transport = match first_sip.map(|(_, t)| t) {
        Some(crate::proto::Transport::Tcp) => "tcp",
        Some(crate::proto::Transport::Udp) => "udp",
        None => "capture",
    };

    let msgs: Vec<Msg> = events
        .iter()
        .map(|e| Msg {
            e,
            call_id: e.message.call_id().unwrap_or("").trim().to_string(),
            cseq: e
                .message
                .cseq()
                .map(|c| (c.seq, c.method.to_ascii_uppercase())),
        })
        .collect();

    sip_wellformed(&mut l, &msgs, &dec);
    registration(&mut l, &msgs, opts);
    keepalives(&mut l, &msgs, opts, end);
    queries(&mut l, &msgs, end);
    let sessions = media_answers(&mut l, &msgs);
    media_flows(&mut l, &cap.frames, &dec, &sessions, t0);
    Ok(l.into_result(transport, started))
}

fn sip_wellformed(l: &mut Lint, msgs: &[Msg], dec: &Decoder) {
    for m in msgs {
        l.judged("GB-SIP-01");
        let what = decode::summary(&m.e.message);
        let bytes = m.e.message.to_bytes();
        for f in &m.e.findings {
            l.finding("GB-SIP-01", m.e.frame, &what, f, &bytes);
        }
        let declared = header(&m.e.message, "Content-Length").and_then(|v| v.parse::<usize>().ok());
        if let Some(n) = declared {
            if n != m.e.message.body.len()
                && !m
                    .e
                    .findings
                    .iter()
                    .any(|f| f.code.contains("content-length"))
            {
                l.fail(
                    "GB-SIP-01",
                    m.e.frame,
                    "sip.content-length",
                    format!("{what}: Content-Length does not match the body [RFC 3261 §20.14]"),
                    Some(format!("Content-Length: {}", m.e.message.body.len())),
                    Some(format!("Content-Length: {n}")),
                    None,
                );
            }
        }
    }
    for u in &dec.unreadable {
        l.judged("GB-SIP-01");
        l.fail(
            "GB-SIP-01",
            u.frame,
            "sip.unreadable",
            format!(
                "{} -> {}: a datagram that starts like SIP is not a SIP message: {} [RFC 3261 §7, §18.3]",
                u.flow.src, u.flow.dst, u.reason
            ),
            Some("a SIP message whose Content-Length matches its body".into()),
            Some(u.reason.clone()),
            Some(&u.bytes),
        );
    }
}

fn registration(l: &mut Lint, msgs: &[Msg], opts: &LintOptions) {
    // Per Call-ID: the last challenge, and per CSeq whether the REGISTER
    // carried credentials and asked to unregister.
    #[derive(Default)]
    struct Reg {
        challenge: Option<(Challenge, u32)>,
        requests: HashMap<u32, (bool, bool)>,
    }
    let mut regs: HashMap<String, Reg> = HashMap::new();
    for m in msgs {
        let Some((seq, method)) = &m.cseq else {
            continue;
        };
        if method != "REGISTER" {
            continue;
        }
        let msg = &m.e.message;
        let reg = regs.entry(m.call_id.clone()).or_default();
        let what = decode::summary(msg);
        if msg.is_request() {
            let auth = header(msg, "Authorization");
            let unregister = header(msg, "Expires") == Some("0")
                || header(msg, "Contact").is_some_and(|c| c.contains("expires=0"));
            if reg
                .requests
                .insert(*seq, (auth.is_some(), unregister))
                .is_some()
            {
                continue; // a retransmission
            }
            l.judged("GB-REG-03");
            let Some(auth) = auth else { continue };
            let creds = match Credentials::parse(auth) {
                Ok(c) => c,
                Err(e) => {
                    l.fail(
                        "GB-REG-03",
                        m.e.frame,
                        "gb.register.authorization",
                        format!("{what}: the Authorization header cannot be read: {e}"),
                        Some("Digest username, realm, nonce, uri, response".into()),
                        Some(auth.to_string()),
                        None,
                    );
                    continue;
                }
            };
            match &reg.challenge {
                None => {
                    // Credentials without a challenge in this capture: a
                    // nonce kept from before it began. Nothing to compare.
                }
                Some((ch, ch_seq)) => {
                    if creds.nonce != ch.nonce {
                        l.fail(
                            "GB-REG-03",
                            m.e.frame,
                            "gb.register.digest-nonce",
                            format!("{what}: the credentials answer another nonce than the 401's"),
                            Some(format!("nonce=\"{}\"", ch.nonce)),
                            Some(format!("nonce=\"{}\"", creds.nonce)),
                            None,
                        );
                    }
                    if creds.realm != ch.realm {
                        l.fail(
                            "GB-REG-03",
                            m.e.frame,
                            "gb.register.digest-realm",
                            format!("{what}: the credentials name another realm than the 401's"),
                            Some(format!("realm=\"{}\"", ch.realm)),
                            Some(format!("realm=\"{}\"", creds.realm)),
                            None,
                        );
                    }
                    if *seq <= *ch_seq {
                        l.fail(
                            "GB-REG-03",
                            m.e.frame,
                            "gb.register.cseq",
                            format!("{what}: the authorised REGISTER does not increase CSeq [RFC 3261 §8.1.3.5]"),
                            Some(format!("CSeq > {ch_seq}")),
                            Some(format!("CSeq {seq}")),
                            None,
                        );
                    }
                }
            }
            if let Some(pw) = &opts.password {
                if !creds.verify(pw, "REGISTER") {
                    l.fail(
                        "GB-REG-03",
                        m.e.frame,
                        "gb.register.digest-response",
                        format!("{what}: the digest response is not the one the password gives"),
                        Some(format!(
                            "response=\"{}\"",
                            creds.expected_response(pw, "REGISTER")
                        )),
                        Some(format!("response=\"{}\"", creds.response)),
                        None,
                    );
                }
            }
            continue;
        }
        let status = msg.status().unwrap_or(0);
        let asked = reg.requests.get(seq).copied();
        match status {
            401 => match header(msg, "WWW-Authenticate").map(Challenge::parse) {
                Some(Ok(ch)) => reg.challenge = Some((ch, *seq)),
                Some(Err(e)) => l.fail(
                    "GB-REG-03",
                    m.e.frame,
                    "gb.register.challenge",
                    format!("{what}: the WWW-Authenticate header cannot be read: {e}"),
                    Some("WWW-Authenticate: Digest realm=..., nonce=...".into()),
                    header(msg, "WWW-Authenticate").map(str::to_string),
                    None,
                ),
                None => l.fail(
                    "GB-REG-03",
                    m.e.frame,
                    "gb.register.challenge",
                    format!("{what}: a 401 without WWW-Authenticate [RFC 3261 §22.2]"),
                    Some("WWW-Authenticate: Digest realm=..., nonce=...".into()),
                    Some("absent".into()),
                    None,
                ),
            },
            200..=299 => {
                let (had_auth, unregister) = asked.unwrap_or((true, false));
                if !had_auth {
                    l.fail(
                        "GB-REG-03",
                        m.e.frame,
                        "gb.register.no-challenge",
                        format!(
                            "{what}: a REGISTER without credentials was accepted; the platform must challenge it with 401 [§设备身份认证]"
                        ),
                        Some("401 Unauthorized with WWW-Authenticate: Digest".into()),
                        Some(format!("{status} to CSeq {seq} (no Authorization)")),
                        None,
                    );
                }
                if !unregister {
                    l.judged("GB-TIME-01");
                    match header(msg, "Date") {
                        Some(d) if gb_date(d) => {}
                        Some(d) => l.fail(
                            "GB-TIME-01",
                            m.e.frame,
                            "gb.register.date-format",
                            format!("{what}: Date is not in the GB format"),
                            Some("Date: yyyy-MM-ddTHH:mm:ss.SSS".into()),
                            Some(format!("Date: {d}")),
                            None,
                        ),
                        None => l.fail(
                            "GB-TIME-01",
                            m.e.frame,
                            "gb.register.no-date",
                            format!("{what}: the 200 to a REGISTER carries no Date header"),
                            Some("Date: yyyy-MM-ddTHH:mm:ss.SSS".into()),
                            Some("absent".into()),
                            None,
                        ),
                    }
                }
            }
            _ => {}
        }
    }
}

/// A MESSAGE's MANSCDP body, decoded leniently.
fn manscdp(m: &Msg) -> Option<crate::proto::gb28181::manscdp::Decoded> {
    let msg = &m.e.message;
    if !msg.is_request() || msg.method() != Some("MESSAGE") || msg.body.is_empty() {
        return None;
    }
    Manscdp::decode(&msg.body).ok()
}

/// The final response to (Call-ID, CSeq, method) after `from`.
fn response_to<'a>(msgs: &'a [Msg<'a>], from: usize) -> Option<&'a Msg<'a>> {
    let req = &msgs[from];
    msgs[from + 1..].iter().find(|r| {
        !r.e.message.is_request()
            && r.e.message.status().is_some_and(|s| s >= 200)
            && r.call_id == req.call_id
            && r.cseq == req.cseq
    })
}

fn keepalives(l: &mut Lint, msgs: &[Msg], opts: &LintOptions, end: Duration) {
    // Per device: the last keepalive's time and SN.
    let mut last: HashMap<String, (Duration, Option<u64>, u64)> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let interval = opts.keepalive_interval;
    for (i, m) in msgs.iter().enumerate() {
        let Some(d) = manscdp(m) else { continue };
        let is_keepalive = d.message.root == Root::Notify
            && d.message
                .cmd_type
                .as_ref()
                .is_some_and(|c| c.as_str() == "Keepalive");
        if !is_keepalive || !seen.insert((m.call_id.clone(), m.cseq.clone())) {
            continue;
        }
        let what = format!("keepalive {}", decode::summary(&m.e.message));
        let frame = m.e.frame;
        for id in ["GB-KA-01", "GB-KA-02", "GB-KA-03"] {
            l.judged(id);
        }
        for f in &d.findings {
            l.finding("GB-KA-01", frame, &what, f, &m.e.message.body);
        }
        for field in ["SN", "DeviceID", "Status"] {
            if d.get(field).is_none() {
                l.fail(
                    "GB-KA-01",
                    frame,
                    "manscdp.keepalive-field",
                    format!("{what}: the Keepalive body has no {field}"),
                    Some(format!("<{field}>")),
                    Some("absent".into()),
                    None,
                );
            }
        }
        let device = d.message.device_id.clone().unwrap_or_default();
        if device.len() != 20 || !device.bytes().all(|b| b.is_ascii_digit()) {
            l.fail(
                "GB-KA-02",
                frame,
                "manscdp.keepalive-device-id",
                format!("{what}: DeviceID is not a 20-digit ID"),
                Some("20 digits".into()),
                Some(format!("{device:?}")),
                None,
            );
        }
        let now = m.e.time;
        if let Some((prev_t, prev_sn, prev_frame)) = last.get(&device) {
            let gap = now.saturating_sub(*prev_t);
            if gap > interval.mul_f64(1.5) {
                l.fail(
                    "GB-KA-01",
                    frame,
                    "gb.keepalive.interval",
                    format!(
                        "{what}: {:.1} s after the previous keepalive (frame {prev_frame}); the interval is {} s",
                        gap.as_secs_f64(),
                        interval.as_secs_f64()
                    ),
                    Some(format!("a keepalive every {} s (at most {:.1} s apart)", interval.as_secs_f64(), interval.mul_f64(1.5).as_secs_f64())),
                    Some(format!("{:.1} s apart", gap.as_secs_f64())),
                    None,
                );
            }
            if let (Some(a), Some(b)) = (prev_sn, d.message.sn) {
                if b <= *a {
                    l.fail(
                        "GB-KA-02",
                        frame,
                        "gb.keepalive.sn",
                        format!(
                            "{what}: SN does not increase (previous keepalive: frame {prev_frame})"
                        ),
                        Some(format!("SN > {a}")),
                        Some(format!("SN {b}")),
                        None,
                    );
                }
            }
        }
        last.insert(device, (now, d.message.sn, frame));
        match response_to(msgs, i) {
            Some(r) if r.e.message.status() == Some(200) => {}
            Some(r) => l.fail(
                "GB-KA-03",
                r.e.frame,
                "gb.keepalive.answer",
                format!("{what}: answered {}", decode::summary(&r.e.message)),
                Some("200".into()),
                Some(r.e.message.status().unwrap_or(0).to_string()),
                None,
            ),
            None if end.saturating_sub(now) >= Duration::from_secs(1) => l.fail(
                "GB-KA-03",
                frame,
                "gb.keepalive.unanswered",
                format!(
                    "{what}: no final response in the {:.1} s the capture goes on",
                    end.saturating_sub(now).as_secs_f64()
                ),
                Some("200".into()),
                Some("no response".into()),
                None,
            ),
            None => {}
        }
    }
}

fn queries(l: &mut Lint, msgs: &[Msg], end: Duration) {
    let mut seen = std::collections::HashSet::new();
    let decoded: Vec<Option<crate::proto::gb28181::manscdp::Decoded>> =
        msgs.iter().map(manscdp).collect();
    for (i, m) in msgs.iter().enumerate() {
        let Some(q) = &decoded[i] else { continue };
        if q.message.root != Root::Query || !seen.insert((m.call_id.clone(), m.cseq.clone())) {
            continue;
        }
        l.judged("GB-Q-01");
        let cmd = q
            .message
            .cmd_type
            .as_ref()
            .map_or("-".to_string(), |c| c.as_str().to_string());
        let sn = q.message.sn;
        let what = format!(
            "{cmd} query SN {} (frame {})",
            sn.map_or("-".into(), |s| s.to_string()),
            m.e.frame
        );
        match response_to(msgs, i) {
            Some(r) if r.e.message.status() == Some(200) => {}
            Some(r) => l.fail(
                "GB-Q-01",
                r.e.frame,
                "gb.query.answer",
                format!("{what}: answered {}", decode::summary(&r.e.message)),
                Some("200".into()),
                Some(r.e.message.status().unwrap_or(0).to_string()),
                None,
            ),
            None => {}
        }
        // The Response MESSAGEs after it, from the side the query went to.
        let answers: Vec<(usize, &crate::proto::gb28181::manscdp::Decoded)> = (i + 1..msgs.len())
            .filter_map(|j| decoded[j].as_ref().map(|d| (j, d)))
            .filter(|(j, d)| {
                d.message.root == Root::Response && msgs[*j].e.flow.src.ip() == m.e.flow.dst.ip()
            })
            .collect();
        let same_sn = answers
            .iter()
            .find(|(_, d)| d.message.sn == sn && sn.is_some());
        match same_sn {
            Some((j, d)) => {
                let got = d
                    .message
                    .cmd_type
                    .as_ref()
                    .map_or("-".to_string(), |c| c.as_str().to_string());
                if got != cmd {
                    l.fail(
                        "GB-Q-01",
                        msgs[*j].e.frame,
                        "manscdp.answer-cmd-type",
                        format!("{what}: the Response with its SN has another CmdType"),
                        Some(format!("CmdType {cmd}")),
                        Some(format!("CmdType {got}")),
                        None,
                    );
                }
                if d.message.device_id.is_some() && d.message.device_id != q.message.device_id {
                    l.fail(
                        "GB-Q-01",
                        msgs[*j].e.frame,
                        "manscdp.answer-device-id",
                        format!("{what}: the Response names another DeviceID"),
                        q.message.device_id.clone(),
                        d.message.device_id.clone(),
                        None,
                    );
                }
            }
            None => {
                let same_cmd = answers.iter().find(|(_, d)| {
                    d.message
                        .cmd_type
                        .as_ref()
                        .is_some_and(|c| c.as_str() == cmd)
                });
                match same_cmd {
                    Some((j, d)) => l.fail(
                        "GB-Q-01",
                        msgs[*j].e.frame,
                        "manscdp.answer-sn",
                        format!("{what}: the {cmd} Response does not echo the query's SN"),
                        Some(format!("SN {}", sn.map_or("-".into(), |s| s.to_string()))),
                        Some(format!(
                            "SN {}",
                            d.message.sn.map_or("-".into(), |s| s.to_string())
                        )),
                        None,
                    ),
                    None if end.saturating_sub(m.e.time) >= Duration::from_secs(1) => l.fail(
                        "GB-Q-01",
                        m.e.frame,
                        "manscdp.no-answer",
                        format!("{what}: no Response MESSAGE follows in the capture"),
                        Some(format!("a Response with CmdType {cmd} and the query's SN")),
                        Some("none".into()),
                        None,
                    ),
                    None => {}
                }
            }
        }
    }
}

/// What an SDP body says about its media: the address and port of each
/// `m=` line, and `y=`.
fn sdp_media(body: &[u8]) -> (Vec<SocketAddr>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let mut addr: Option<IpAddr> = None;
    let mut out = Vec::new();
    let mut y = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix("c=") {
            if let Some(a) = c.split_whitespace().nth(2) {
                addr = a.split('/').next().and_then(|a| a.parse().ok()).or(addr);
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            if let (Some(port), Some(a)) = (
                m.split_whitespace().nth(1).and_then(|p| p.parse().ok()),
                addr,
            ) {
                out.push(SocketAddr::new(a, port));
            }
        } else if let Some(v) = line.strip_prefix("y=") {
            y = Some(v.trim().to_string());
        }
    }
    (out, y)
}

/// Media sessions: the RTP destinations each offer named and the SSRC the
/// session settled on.
struct Session {
    dests: Vec<SocketAddr>,
    ssrc: Option<(u32, String)>,
}

fn media_answers(l: &mut Lint, msgs: &[Msg]) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, m) in msgs.iter().enumerate() {
        let msg = &m.e.message;
        if msg.method() != Some("INVITE") || msg.body.is_empty() || !seen.insert(m.call_id.clone())
        {
            continue;
        }
        let (offer_dests, offer_y) = sdp_media(&msg.body);
        let answer = response_to(msgs, i).filter(|r| {
            r.e.message
                .status()
                .is_some_and(|s| (200..300).contains(&s))
                && !r.e.message.body.is_empty()
        });
        let mut dests = offer_dests;
        let mut y = offer_y.clone();
        if let Some(a) = answer {
            l.judged("GB-MED-01");
            let (answer_dests, answer_y) = sdp_media(&a.e.message.body);
            dests.extend(answer_dests);
            let what = format!("answer to INVITE {} (frame {})", m.call_id, m.e.frame);
            match (&offer_y, &answer_y) {
                (Some(o), Some(a_y))
                    if o.trim_start_matches('0') != a_y.trim_start_matches('0')
                        || o.len() != a_y.len() =>
                {
                    l.fail(
                        "GB-MED-01",
                        a.e.frame,
                        "gb.session.answer-ssrc",
                        format!("{what}: y= differs from the offer's"),
                        Some(format!("y={o}")),
                        Some(format!("y={a_y}")),
                        None,
                    );
                }
                (Some(o), None) => l.fail(
                    "GB-MED-01",
                    a.e.frame,
                    "gb.session.answer-without-y",
                    format!("{what}: the answer has no y="),
                    Some(format!("y={o}")),
                    Some("absent".into()),
                    None,
                ),
                _ => {}
            }
            if answer_y.is_some() {
                y = answer_y;
            }
        }
        let ssrc = y
            .as_ref()
            .and_then(|v| v.parse::<u32>().ok().map(|n| (n, v.clone())));
        sessions.push(Session { dests, ssrc });
    }
    sessions
}

/// RTP carried over TCP (RFC 4571) held for judging, at most.
const MAX_TCP_RTP_BYTES: usize = 128 * 1024 * 1024;

fn media_flows(
    l: &mut Lint,
    frames: &[read::Frame],
    dec: &Decoder,
    sessions: &[Session],
    t0: Duration,
) {
    let rtp_flows: Vec<decode::FlowKey> = dec
        .flows()
        .into_iter()
        .filter(|(k, s)| {
            (k.transport == crate::proto::Transport::Udp && s.rtp > 0 && s.rtp * 2 >= s.packets)
                || (s.rfc4571 && s.rtp > 0)
        })
        .map(|(k, _)| k)
        .collect();
    if rtp_flows.is_empty() {
        return;
    }
    let mut validators: HashMap<decode::FlowKey, (StreamValidator, u64, Option<String>)> =
        HashMap::new();
    // UDP datagrams from the frames, RFC 4571 frames from the TCP streams.
    let udp = frames.iter().filter_map(|f| {
        let p = decode::dissect(f.link, &f.data).ok()?;
        if p.tcp.is_some() {
            return None;
        }
        let key = decode::FlowKey {
            transport: p.transport,
            src: p.src,
            dst: p.dst,
        };
        Some((key, f.number, f.time, p.payload))
    });
    let tcp = dec
        .tcp_rtp
        .iter()
        .map(|(k, n, t, p)| (*k, *n, *t, p.as_slice()));
    for (key, number, time, payload) in udp.chain(tcp) {
        if !rtp_flows.contains(&key) || !looks_rtp(payload) {
            continue;
        }
        let v = validators.entry(key).or_insert_with(|| {
            let session = sessions.iter().find(|s| s.dests.contains(&key.dst));
            let first_ssrc = u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]]);
            let (ssrc, y) = match session.and_then(|s| s.ssrc.clone()) {
                Some((n, y)) => (n, Some(y)),
                None => (first_ssrc, None),
            };
            (
                StreamValidator::new(ValidatorConfig::new(ssrc, Vec::<u8>::new())),
                number,
                y,
            )
        });
        v.0.push_packet(payload, time.saturating_sub(t0));
    }
    let mut keys: Vec<decode::FlowKey> = validators.keys().copied().collect();
    keys.sort_by_key(|k| validators[k].1);
    for k in keys {
        let Some((v, first, y)) = validators.remove(&k) else {
            continue;
        };
        let report = v.finish();
        let what = match k.transport {
            crate::proto::Transport::Tcp => format!("RTP over TCP {} -> {}", k.src, k.dst),
            crate::proto::Transport::Udp => format!("RTP {} -> {}", k.src, k.dst),
        };
        judge_stream(l, first, &report, &what, y.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_recognised_by_their_content() {
        assert_eq!(
            detect(&[0xd4, 0xc3, 0xb2, 0xa1, 0, 0], "x"),
            Some(InputKind::Capture)
        );
        assert_eq!(
            detect(b"#!rtpplay1.0 127.0.0.1/5000\n", "x"),
            Some(InputKind::RtpDump)
        );
        assert_eq!(detect(&[0, 0, 1, 0xba, 0x44], "x"), Some(InputKind::Ps));
        assert_eq!(
            detect(&[0, 0, 0, 1, 0x67, 0x42], "x"),
            Some(InputKind::AnnexB(VideoCodec::H264))
        );
        assert_eq!(
            detect(&[0, 0, 0, 1, 0x40, 0x01, 0x0c], "x"),
            Some(InputKind::AnnexB(VideoCodec::H265))
        );
        let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        rtp.extend_from_slice(&[0xaa; 20]);
        let mut framed = (rtp.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&rtp);
        framed.extend_from_slice(&framed.clone());
        assert_eq!(detect(&framed, "x"), Some(InputKind::Rfc4571));
        assert_eq!(detect(&rtp, "x"), Some(InputKind::RtpBackToBack));
        assert_eq!(detect(b"hello world", "x"), None);
        assert_eq!(detect(b"", "x"), None);
    }

    #[test]
    fn back_to_back_packets_split_at_the_next_sequence_number() {
        let pkt = |seq: u16, n: usize| {
            let mut p = vec![0x80, 96];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
            p.extend(std::iter::repeat_n(0x55, n));
            p
        };
        let mut all = pkt(7, 30);
        all.extend(pkt(8, 5));
        all.extend(pkt(9, 0));
        let v = split_back_to_back(&all);
        assert_eq!(v.iter().map(Vec::len).collect::<Vec<_>>(), [42, 17, 12]);
    }

    #[test]
    fn gb_dates() {
        assert!(gb_date("2026-12-04T01:02:03.456"));
        assert!(gb_date("2026-12-04T01:02:03"));
        assert!(!gb_date("Fri, 04 Dec 2026 01:02:03 GMT"));
        assert!(!gb_date("2026-12-04T01:02:03."));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_lint_without_panicking(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), kind in 0usize..7) {
            let mut d = data;
            // A classic pcap header (Ethernet): the records after it are random.
            let pcap: &[u8] = &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
            let prefixes: [&[u8]; 7] = [&[], &[0, 0, 1, 0xba], &[0, 0, 0, 1, 0x67], b"#!rtpplay1.0 a/1\n", &[0, 20, 0x80, 96], &[0x80, 96], pcap];
            let mut v = prefixes[kind].to_vec();
            v.append(&mut d);
            let _ = lint(&v, "fuzz", &LintOptions::default());
        }

        /// A real session with bytes damaged anywhere past the file header
        /// (SIP, MANSCDP, SDP, RTP and PS all reach the checks damaged).
        #[test]
        fn a_damaged_recording_lints_without_panicking(hits in proptest::collection::vec((0usize..1_000_000, proptest::prelude::any::<u8>()), 1..40)) {
            let mut v = include_bytes!("../../captures/gb28181-camcert-device-platform-tcp.pcap").to_vec();
            let n = v.len() - 24;
            for (at, b) in hits {
                v[24 + at % n] = b;
            }
            let opts = LintOptions { keepalive_interval: Duration::from_secs(1), password: Some("x".into()) };
            let _ = lint(&v, "fuzz", &opts);
        }
    }
}
