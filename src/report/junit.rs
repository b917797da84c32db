//! JUnit XML: one `<testsuite>` per suite file, one `<testcase>` per case and
//! transport, requirement IDs as properties so CI dashboards can show them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{RunResult, Status};

pub fn to_xml(run: &RunResult) -> Result<String> {
    let mut report = Report::new("camcert");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for c in &run.cases {
        let suite = suites
            .entry(c.suite.as_str())
            .or_insert_with(|| TestSuite::new(c.suite.clone()));
        let status = match c.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => {
                let mut s = TestCaseStatus::skipped();
                if let Some(f) = c.failures.first() {
                    s.set_message(f.message.clone());
                }
                s
            }
            Status::Failed | Status::Error => {
                let kind = if c.status == Status::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                if let Some(f) = c.failures.first() {
                    s.set_message(format!("{}: {}", f.check, f.message));
                    s.set_type(f.check.clone());
                }
                let mut desc = String::new();
                for f in &c.failures {
                    desc.push_str(&format!(
                        "step {} at {}: {}\n",
                        f.step, f.location, f.message
                    ));
                    if let Some(e) = &f.expected {
                        desc.push_str(&format!("  expected: {e}\n"));
                    }
                    if let Some(r) = &f.received {
                        desc.push_str(&format!("  received: {r}\n"));
                    }
                    if let Some(b) = &f.bytes {
                        desc.push_str(&format!("  bytes: {b}\n"));
                    }
                }
                s.set_description(desc);
                s
            }
        };
        let mut tc = TestCase::new(format!("{} [{}] {}", c.id, c.transport, c.title), status);
        tc.set_classname(c.suite_file.clone());
        tc.set_time(Duration::from_millis(c.duration_ms));
        let reqs: Vec<&str> = c.requirements.iter().map(|r| r.id.as_str()).collect();
        tc.add_property(Property::new("requirements", reqs.join(",")));
        tc.add_property(Property::new("level", c.level.to_string()));
        tc.add_property(Property::new("clause", c.clause.clone()));
        if let Some(p) = &c.pcap {
            tc.add_property(Property::new("evidence", p.clone()));
        }
        let log: String = c
            .messages
            .iter()
            .map(|m| {
                format!(
                    "{:>6} ms {} {} {}\n",
                    m.at_ms, m.direction, m.peer, m.summary
                )
            })
            .collect();
        let media: String = c
            .media
            .iter()
            .map(|m| format!("media {}\n", m.line()))
            .collect();
        tc.set_system_out(media + &log);
        suite.add_test_case(tc);
    }
    if run.interrupted {
        // Say so where CI dashboards look: a property and a line of output
        // on every suite (a suite of its own if no case finished).
        if suites.is_empty() {
            suites.insert("camcert", TestSuite::new("camcert"));
        }
        for s in suites.values_mut() {
            s.add_property(Property::new("interrupted", "true"));
            s.set_system_out(format!(
                "camcert run interrupted: this report holds the {} case run(s) that finished before the signal; the rest did not run\n",
                run.cases.len()
            ));
        }
    }
    report.add_test_suites(suites.into_values());
    report.to_string().context("serialising JUnit XML")
}

pub fn write(run: &RunResult, path: &Path) -> Result<()> {
    if let Some(d) = path.parent() {
        if !d.as_os_str().is_empty() {
            std::fs::create_dir_all(d)?;
        }
    }
    std::fs::write(path, to_xml(run)?).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(interrupted: bool) -> RunResult {
        RunResult {
            tool: "camcert".into(),
            version: "0".into(),
            started_at: String::new(),
            finished_at: None,
            target: "t".into(),
            interrupted,
            settings: vec![],
            cases: vec![],
            summary: Default::default(),
            suite_files: vec![],
        }
    }

    #[test]
    fn an_interrupted_run_says_so() {
        let xml = to_xml(&run(true)).unwrap();
        assert!(
            xml.contains(r#"<property name="interrupted" value="true"/>"#),
            "{xml}"
        );
        assert!(xml.contains("<system-out>camcert run interrupted"), "{xml}");
        let xml = to_xml(&run(false)).unwrap();
        assert!(!xml.contains("interrupted"), "{xml}");
    }
}
