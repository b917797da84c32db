//! One result schema ([`RunResult`]) and its exporters: terminal summary,
//! JSON (rewritten after every case, so an interrupted run leaves what
//! finished), and JUnit XML.

pub mod junit;
pub mod terminal;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::finding::{Evidence, Finding, Severity};
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
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
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
            }
            if c.status != Status::Passed && c.level == Level::Mandatory {
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
