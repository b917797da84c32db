//! One result schema ([`RunResult`]) and its exporters: terminal summary,
//! JSON (rewritten after every case, so an interrupted run leaves what
//! finished), JUnit XML, and a self-contained HTML page ([`html`]); [`diff`]
//! compares two runs.

pub mod diff;
pub mod html;
pub mod junit;
pub mod merge;
pub mod terminal;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// How serious a finding is: the one severity every protocol's findings use.
pub use crate::finding::Severity;
use crate::finding::{Evidence, Finding};
use crate::suite::model::Level;

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub tool: String,
    pub version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// What was tested: the target address, or the built-in peer.
    pub target: String,
    /// The run was stopped (Ctrl-C) before every case ran.
    pub interrupted: bool,
    /// The variables each suite ran with (timing variables included),
    /// secrets masked.
    pub settings: Vec<SuiteSettings>,
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
    /// Each suite file the run loaded, with the SHA-256 of its bytes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suite_files: Vec<SuiteFile>,
}

/// A suite file as it was when the run loaded it.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteFile {
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes (empty when it could not be
    /// read again).
    pub sha256: String,
}

impl SuiteFile {
    pub fn of(path: &Path) -> SuiteFile {
        use sha2::Digest;
        SuiteFile {
            path: path.display().to_string(),
            sha256: std::fs::read(path)
                .map(|b| hex::encode(sha2::Sha256::digest(&b)))
                .unwrap_or_default(),
        }
    }
}

/// The resolved variables of one suite.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteSettings {
    pub suite: String,
    pub file: String,
    pub vars: std::collections::BTreeMap<String, String>,
    /// The run's `--strict` profile: messages judged as written, without
    /// the lenient reading's recoveries. Shown only when on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    /// Cases not run (they need an operator and `--no-operator` was given).
    pub skipped: usize,
    /// Failed cases whose level is mandatory.
    pub mandatory_failed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    /// The DUT broke a requirement.
    Failed,
    /// The case could not be carried out (bind failed, bad variable, ...).
    Error,
    /// The case was not run; its first failure says why (it needs an
    /// operator action and `--no-operator` was given). Not a failure.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequirementRef {
    pub id: String,
    pub clause: String,
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub suite: String,
    pub suite_file: String,
    pub id: String,
    pub title: String,
    pub transport: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub clause: String,
    pub requirements: Vec<RequirementRef>,
    pub status: Status,
    pub duration_ms: u64,
    pub failures: Vec<Failure>,
    /// Things the DUT did that the strict reading of the spec calls wrong,
    /// but that the case tolerates.
    pub findings: Vec<FindingOut>,
    /// Every message exchanged, in order.
    pub messages: Vec<MessageLog>,
    /// Evidence capture, relative to the report folder.
    pub pcap: Option<String>,
    /// The media figures of every media session of the case, one per stream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaSummary>,
}

/// What one media stream of a session measured: received streams carry every
/// figure, sent ones what the sender counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaSummary {
    /// 1-based number of the session within the case.
    pub session: usize,
    /// `video` or `audio`.
    pub kind: String,
    /// `received` or `sent` (by camcert).
    pub direction: String,
    /// RTP packets.
    pub packets: u64,
    /// Frames (video pictures; audio: none).
    pub frames: Option<u64>,
    /// Video key frames.
    pub key_frames: Option<u64>,
    /// Frames per second, from the PES PTS.
    pub frame_rate: Option<f64>,
    /// RTP payload bit rate, kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Packets lost (received streams).
    pub lost_packets: Option<u64>,
    /// Lost over expected packets.
    pub loss_ratio: Option<f64>,
    /// RFC 3550 interarrival jitter, ms.
    pub jitter_ms: Option<f64>,
    /// From the first packet to the first complete key frame, ms.
    pub first_key_frame_ms: Option<u64>,
    /// Error-severity findings of the stream.
    pub errors: usize,
    /// Warning-severity findings of the stream.
    pub warnings: usize,
}

impl MediaSummary {
    /// One compact line: `session 1 video received: 250 pkts, 50 frames (2 key), 25.0 fps, ...`.
    pub fn line(&self) -> String {
        let mut parts = vec![format!("{} pkts", self.packets)];
        match (self.frames, self.key_frames) {
            (Some(f), Some(k)) => parts.push(format!("{f} frames ({k} key)")),
            (Some(f), None) => parts.push(format!("{f} frames")),
            _ => {}
        }
        if let Some(r) = self.frame_rate {
            parts.push(format!("{r:.1} fps"));
        }
        if let Some(b) = self.bitrate_kbps {
            parts.push(format!("{b:.0} kbit/s"));
        }
        if let (Some(l), Some(r)) = (self.lost_packets, self.loss_ratio) {
            parts.push(format!("loss {l} ({:.2}%)", r * 100.0));
        }
        if let Some(j) = self.jitter_ms {
            parts.push(format!("jitter {j:.1} ms"));
        }
        if let Some(k) = self.first_key_frame_ms {
            parts.push(format!("first key frame {k} ms"));
        }
        if self.direction == "received" {
            parts.push(format!(
                "{} errors, {} warnings",
                self.errors, self.warnings
            ));
        }
        format!(
            "session {} {} {}: {}",
            self.session,
            self.kind,
            self.direction,
            parts.join(", ")
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// 1-based step number.
    pub step: usize,
    /// `file:line:col` of the step in the suite.
    pub location: String,
    pub check: String,
    pub message: String,
    pub expected: Option<String>,
    pub received: Option<String>,
    /// The offending bytes, escaped, when the peer sent something unusable.
    pub bytes: Option<String>,
    /// For a step that waited for a message: the messages that arrived
    /// while it waited, the closest to what it wanted first, each with the
    /// conditions it did not meet or why it was not taken.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// A message that arrived while a step waited and was not taken (or was
/// taken and failed its checks).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Candidate {
    /// Start line, plus the MANSCDP CmdType when there is one.
    pub summary: String,
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// It met more of the step's conditions than any other message.
    pub closest: bool,
    /// Why it was set aside without being judged (a retransmission,
    /// answered by a background rule, a provisional response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Every condition of the step it did not meet.
    pub reasons: Vec<PredicateMiss>,
    /// Protocol findings on the message that explain a missed condition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingOut>,
}

/// One condition a message did not meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PredicateMiss {
    /// Field path (`xml.CmdType`, `method`), or the check's name.
    pub field: String,
    /// What the condition asked for (`equals "Catalog"`).
    pub expected: String,
    /// What was there (`"DeviceInfo"`, `absent`).
    pub actual: String,
}

impl std::fmt::Display for PredicateMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.actual == "absent" {
            write!(f, "{}: expected {}, absent", self.field, self.expected)
        } else {
            write!(
                f,
                "{}: expected {}, got {}",
                self.field, self.expected, self.actual
            )
        }
    }
}

/// A [`Finding`] as the report shows it: the same fields, with the evidence
/// written out (bytes escaped as by [`escape_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingOut {
    pub code: String,
    pub severity: Severity,
    pub clause: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl FindingOut {
    /// The finding, with a byte span of its evidence resolved against the
    /// message it was found in.
    pub fn in_message(f: &Finding, message: &[u8]) -> FindingOut {
        let mut out = FindingOut::from(f);
        if let Some(Evidence::Span { start, end }) = f.evidence {
            if let Some(b) = message.get(start..end.min(message.len())) {
                out.evidence = Some(format!("bytes {start}..{end}: {}", escape_bytes(b)));
            }
        }
        out
    }

    /// Prefix the code (`session.`, `audio.`) where a driver namespaces it further.
    pub fn with_code_prefix(mut self, prefix: &str) -> FindingOut {
        self.code = format!("{prefix}{}", self.code);
        self
    }
}

impl From<&Finding> for FindingOut {
    fn from(f: &Finding) -> FindingOut {
        FindingOut {
            code: f.code.to_string(),
            severity: f.severity,
            clause: f.clause.to_string(),
            message: f.message.clone(),
            evidence: f.evidence.as_ref().map(|e| match e {
                Evidence::Bytes(b) => escape_bytes(b),
                Evidence::Path(p) => p.clone(),
                other => other.to_string(),
            }),
        }
    }
}

impl From<Finding> for FindingOut {
    fn from(f: Finding) -> FindingOut {
        FindingOut::from(&f)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageLog {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// `sent` or `received`.
    pub direction: &'static str,
    pub peer: String,
    pub summary: String,
    pub text: String,
}

impl RunResult {
    pub fn recount(&mut self) {
        let mut s = Summary {
            total: self.cases.len(),
            ..Summary::default()
        };
        for c in &self.cases {
            match c.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Error => s.errors += 1,
                Status::Skipped => s.skipped += 1,
            }
            if matches!(c.status, Status::Failed | Status::Error) && c.level == Level::Mandatory {
                s.mandatory_failed += 1;
            }
        }
        self.summary = s;
    }

    /// 0 when every mandatory case passed, 1 otherwise (an interrupted run
    /// with nothing failed still counts as not passed).
    pub fn exit_code(&self, strict: bool) -> i32 {
        let failed = if strict {
            self.summary.failed + self.summary.errors
        } else {
            self.summary.mandatory_failed
        };
        if failed > 0 || self.interrupted {
            1
        } else {
            0
        }
    }

    pub fn write_json(&self, dir: &Path) -> Result<PathBuf> {
        let p = dir.join("results.json");
        let tmp = dir.join("results.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &p)?;
        Ok(p)
    }
}

/// Escape bytes for a report: printable ASCII as is, CR/LF as `\r\n`, the rest as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_out_writes_the_evidence() {
        let f = Finding::error("sip.bare-lf", "RFC 3261 §7", "lines end in LF, not CRLF")
            .with_bytes(b"REGISTER\n\x01".to_vec());
        let o = FindingOut::from(&f);
        assert_eq!(o.severity, Severity::Error);
        assert_eq!(o.evidence.as_deref(), Some("REGISTER\\n\n\\x01"));
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["severity"], "error");
        assert_eq!(v["clause"], "RFC 3261 §7");

        let span =
            Finding::warning("x.y", "", "m").with_evidence(Evidence::Span { start: 2, end: 4 });
        let o = FindingOut::in_message(&span, b"abcdef");
        assert_eq!(o.evidence.as_deref(), Some("bytes 2..4: cd"));
        let path = Finding::warning("manscdp.x", "", "m")
            .with_evidence(Evidence::Path("Notify/SN".into()));
        assert_eq!(
            FindingOut::from(path).evidence.as_deref(),
            Some("Notify/SN")
        );
        let none = FindingOut::from(Finding::warning("x.y", "", "m"));
        assert!(serde_json::to_value(&none)
            .unwrap()
            .get("evidence")
            .is_none());
    }
}
