//! What the runners of every protocol share when they report a case: the
//! result's header from the suite and case, and a failed step before it
//! becomes a report [`Failure`].

use super::{Case, Suite};
use crate::report::{Candidate, CaseResult, Failure, RequirementRef, Status};

/// A result for `case` run over `transport`: passed, with nothing in it yet.
pub(crate) fn case_result(suite: &Suite, case: &Case, transport: &str) -> CaseResult {
    CaseResult {
        suite: suite.name.clone(),
        suite_file: suite.file.display().to_string(),
        id: case.id.clone(),
        title: case.title.clone(),
        transport: transport.into(),
        level: case.level,
        tags: case.tags.clone(),
        clause: case.clause.clone(),
        requirements: case
            .requirements
            .iter()
            .map(|r| RequirementRef {
                id: r.id.clone(),
                clause: r.clause.clone(),
                level: r.level,
                text: r.text.clone(),
            })
            .collect(),
        status: Status::Passed,
        duration_ms: 0,
        failures: vec![],
        findings: vec![],
        messages: vec![],
        pcap: None,
        media: vec![],
    }
}

/// A failed step of the HEDGW and OpenAPI runners.
pub(crate) struct Fail {
    pub check: String,
    pub message: String,
    pub expected: Option<String>,
    pub received: Option<String>,
    pub candidates: Vec<Candidate>,
}

impl Fail {
    pub fn new(check: &str, message: impl Into<String>) -> Fail {
        Fail {
            check: check.into(),
            message: message.into(),
            expected: None,
            received: None,
            candidates: vec![],
        }
    }

    pub fn exp(mut self, e: impl Into<String>, r: impl Into<String>) -> Fail {
        self.expected = Some(e.into());
        self.received = Some(r.into());
        self
    }

    pub fn into_failure(self, step: usize, location: &str) -> Failure {
        Failure {
            step,
            location: location.into(),
            check: self.check,
            message: self.message,
            expected: self.expected,
            received: self.received,
            bytes: None,
            candidates: self.candidates,
        }
    }
}
