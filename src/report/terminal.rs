//! The terminal summary: one line per case as it finishes, then the
//! failures with what was expected and what was received.

use std::io::Write;

use super::{CaseResult, RunResult, Status};

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
        let _ = writeln!(
            out,
            "      step {} ({}) {}: {}",
            f.step, f.location, f.check, f.message
        );
        if let Some(e) = &f.expected {
            let _ = writeln!(out, "        expected: {e}");
        }
        if let Some(r) = &f.received {
            let _ = writeln!(out, "        received: {r}");
        }
        if let Some(b) = &f.bytes {
            let first: String = b.chars().take(300).collect();
            let _ = writeln!(
                out,
                "        bytes:    {}",
                first.replace('\n', "\n                  ")
            );
        }
    }
    for f in &c.findings {
        let _ = writeln!(
            out,
            "      finding {}: {} [{}]",
            f.code, f.message, f.clause
        );
    }
    for m in &c.media {
        let _ = writeln!(out, "      media {}", m.line());
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
