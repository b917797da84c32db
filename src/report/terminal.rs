//! The terminal summary: one line per case as it finishes, then the
//! failures with what was expected and what was received.

use std::io::Write;

use super::{Candidate, CaseResult, Failure, RunResult, Status};

pub fn case_line(c: &CaseResult) -> String {
    let mark = match c.status {
        Status::Passed => "PASS ",
        Status::Failed => "FAIL ",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP ",
    };
    let reqs: Vec<&str> = c.requirements.iter().map(|r| r.id.as_str()).collect();
    format!(
        "{mark} {:<14} [{}] {} ({}; {}) {} ms",
        c.id,
        c.transport,
        c.title,
        reqs.join(", "),
        c.level,
        c.duration_ms
    )
}

pub fn print_case(out: &mut impl Write, c: &CaseResult) {
    let _ = writeln!(out, "{}", case_line(c));
    for f in &c.failures {
        let _ = write!(out, "{}", failure_text(f));
    }
    for f in &c.findings {
        let _ = writeln!(
            out,
            "      finding {} ({}): {} [{}]",
            f.code,
            severity_name(f.severity),
            f.message,
            f.clause
        );
    }
    for m in &c.media {
        let _ = writeln!(out, "      media {}", m.line());
    }
}

fn severity_name(s: super::Severity) -> &'static str {
    match s {
        super::Severity::Error => "error",
        super::Severity::Warning => "warning",
        super::Severity::Info => "info",
    }
}

/// How many messages that were not taken a failure lists before it
/// summarises the rest.
const MAX_OTHERS: usize = 8;

/// One failure as the terminal shows it: the check and its message, what
/// was expected and received, the closest candidate with every condition
/// it missed, the other messages that arrived and why each was not taken,
/// and the offending bytes.
pub fn failure_text(f: &Failure) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "      step {} ({}) {}: {}",
        f.step, f.location, f.check, f.message
    );
    if let Some(e) = &f.expected {
        let _ = writeln!(s, "        expected: {e}");
    }
    if let Some(r) = &f.received {
        let _ = writeln!(s, "        received: {r}");
    }
    let (closest, others): (Vec<&Candidate>, Vec<&Candidate>) =
        f.candidates.iter().partition(|c| c.closest);
    for c in closest {
        let _ = writeln!(s, "        closest:  {}{}", c.summary, note(c));
        for r in &c.reasons {
            let _ = writeln!(s, "          {r}");
        }
        for x in &c.findings {
            let _ = writeln!(
                s,
                "          explained by {}: {} [{}]",
                x.code, x.message, x.clause
            );
        }
    }
    if !others.is_empty() {
        let _ = writeln!(s, "        also arrived:");
        for c in others.iter().take(MAX_OTHERS) {
            let reasons = c
                .reasons
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            let why = match (&c.note, reasons.is_empty()) {
                (Some(n), true) => n.clone(),
                (Some(n), false) => format!("{n}; {reasons}"),
                (None, _) => reasons,
            };
            let _ = writeln!(s, "          {}: {why}", c.summary);
        }
        if others.len() > MAX_OTHERS {
            let _ = writeln!(
                s,
                "          ... and {} more (see results.json)",
                others.len() - MAX_OTHERS
            );
        }
    }
    if let Some(b) = &f.bytes {
        let first: String = b.chars().take(300).collect();
        let _ = writeln!(
            s,
            "        bytes:    {}",
            first.replace('\n', "\n                  ")
        );
    }
    s
}

fn note(c: &Candidate) -> String {
    match &c.note {
        Some(n) => format!(" ({n})"),
        None => String::new(),
    }
}

pub fn print_summary(out: &mut impl Write, run: &RunResult) {
    let s = &run.summary;
    let _ = writeln!(out);
    if run.interrupted {
        let _ = writeln!(
            out,
            "INTERRUPTED: the run was stopped by a signal; the reports hold the {} case run(s) that finished, the rest did not run",
            run.cases.len()
        );
    }
    let _ = writeln!(
        out,
        "{} cases: {} passed, {} failed, {} errors ({} mandatory not passed)",
        s.total, s.passed, s.failed, s.errors, s.mandatory_failed
    );
    if s.skipped > 0 {
        let _ = writeln!(out, "{} cases skipped (not run)", s.skipped);
    }
}
