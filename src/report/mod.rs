//! One result schema ([`RunResult`]) and its exporters: terminal summary,
//! JSON (rewritten after every case, so an interrupted run leaves what
//! finished), and JUnit XML.

pub mod junit;
pub mod terminal;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

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
}

/// The resolved variables of one suite.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteSettings {
    pub suite: String,
    pub file: String,
    pub vars: std::collections::BTreeMap<String, String>,
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

#[derive(Debug, Clone, Serialize)]
pub struct FindingOut {
    pub code: String,
    pub message: String,
    pub clause: String,
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
