//! `camcert report diff OLD NEW`: what changed between two runs, case by
//! case (a case run is keyed by case ID and transport).
//!
//! Like the HTML page it reads the JSON form of the result, so two runs of
//! different camcert versions can be compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

/// What one case run looked like, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub status: String,
    pub title: String,
    /// Codes of every finding.
    pub findings: BTreeSet<String>,
    /// Codes of findings whose severity is `error`.
    pub error_findings: BTreeSet<String>,
    /// The failed checks (`step N: check`).
    pub failed_checks: BTreeSet<String>,
    /// Each failure in one line, with what was expected and received.
    pub failure_lines: Vec<String>,
}

impl CaseState {
    fn of(c: &Value) -> CaseState {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let list = |k: &str| {
            c.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let findings = list("findings");
        CaseState {
            status: s(c, "status"),
            title: s(c, "title"),
            findings: findings.iter().map(|f| s(f, "code")).collect(),
            error_findings: findings
                .iter()
                .filter(|f| s(f, "severity") == "error")
                .map(|f| s(f, "code"))
                .collect(),
            failed_checks: list("failures")
                .iter()
                .map(|f| {
                    let step = f.get("step").map(|x| x.to_string()).unwrap_or_default();
                    format!("step {step}: {}", s(f, "check"))
                })
                .collect(),
            failure_lines: list("failures")
                .iter()
                .map(|f| {
                    let step = f.get("step").map(|x| x.to_string()).unwrap_or_default();
                    let mut l = format!("step {step}: {}", s(f, "message"));
                    for k in ["expected", "received"] {
                        if let Some(v) = f.get(k).and_then(Value::as_str) {
                            l.push_str(&format!("; {k} {v}"));
                        }
                    }
                    l
                })
                .collect(),
        }
    }

    /// Failed or could not be carried out.
    pub fn not_passed(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "error")
    }
}

/// A case run's key: (case ID, transport).
pub type CaseKey = (String, String);

/// A case run present in both runs.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: CaseKey,
    pub old: CaseState,
    pub new: CaseState,
}

#[derive(Debug, Default)]
pub struct Diff {
    /// Not failing before, failed or errored now.
    pub newly_failing: Vec<Change>,
    /// Failed or errored before, passed now.
    pub newly_passing: Vec<Change>,
    /// Same outcome, different finding codes or failed checks.
    pub changed: Vec<Change>,
    pub added: Vec<(CaseKey, CaseState)>,
    pub removed: Vec<(CaseKey, CaseState)>,
    /// Error-severity finding codes that the old run did not have for the case.
    pub new_error_findings: Vec<(CaseKey, String)>,
}

fn cases(v: &Value) -> BTreeMap<CaseKey, CaseState> {
    let mut m = BTreeMap::new();
    for c in v
        .get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        m.insert((s("id"), s("transport")), CaseState::of(c));
    }
    m
}

/// Compare two results (their JSON form).
pub fn diff(old: &Value, new: &Value) -> Diff {
    let old = cases(old);
    let new = cases(new);
    let mut d = Diff::default();
    for (k, n) in &new {
        match old.get(k) {
            None => {
                for code in &n.error_findings {
                    d.new_error_findings.push((k.clone(), code.clone()));
                }
                d.added.push((k.clone(), n.clone()));
            }
            Some(o) => {
                for code in n.error_findings.difference(&o.error_findings) {
                    d.new_error_findings.push((k.clone(), code.clone()));
                }
                let ch = Change {
                    key: k.clone(),
                    old: o.clone(),
                    new: n.clone(),
                };
                if n.not_passed() && !o.not_passed() {
                    d.newly_failing.push(ch);
                } else if o.not_passed() && n.status == "passed" {
                    d.newly_passing.push(ch);
                } else if o.findings != n.findings || o.failed_checks != n.failed_checks {
                    d.changed.push(ch);
                }
            }
        }
    }
    for (k, o) in &old {
        if !new.contains_key(k) {
            d.removed.push((k.clone(), o.clone()));
        }
    }
    d
}

impl Diff {
    /// Added case runs that did not pass.
    pub fn added_failing(&self) -> impl Iterator<Item = &(CaseKey, CaseState)> {
        self.added.iter().filter(|(_, s)| s.not_passed())
    }

    /// Something got worse: a case run newly fails (an added one that fails
    /// counts), or a case has an error-severity finding it did not have.
    pub fn regressed(&self) -> bool {
        !self.newly_failing.is_empty()
            || self.added_failing().next().is_some()
            || !self.new_error_findings.is_empty()
    }

    /// Distinct case IDs that newly fail.
    pub fn newly_failing_ids(&self) -> Vec<String> {
        ids(self.newly_failing.iter().map(|c| &c.key))
    }

    /// Distinct case IDs that newly pass.
    pub fn newly_passing_ids(&self) -> Vec<String> {
        ids(self.newly_passing.iter().map(|c| &c.key))
    }

    /// The text `camcert report diff` prints.
    pub fn render(&self, old_name: &str, new_name: &str) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "camcert report diff: {old_name} -> {new_name}");
        let key = |k: &CaseKey| format!("{} [{}]", k.0, k.1);
        let _ = writeln!(o, "\nnewly failing ({}):", self.newly_failing.len());
        for c in &self.newly_failing {
            let _ = writeln!(
                o,
                "  {:<22} {} -> {}  {}",
                key(&c.key),
                c.old.status,
                c.new.status,
                c.new.title
            );
            for l in &c.new.failure_lines {
                let _ = writeln!(o, "      failed: {l}");
            }
        }
        let _ = writeln!(o, "\nnewly passing ({}):", self.newly_passing.len());
        for c in &self.newly_passing {
            let _ = writeln!(
                o,
                "  {:<22} {} -> {}  {}",
                key(&c.key),
                c.old.status,
                c.new.status,
                c.new.title
            );
        }
        let _ = writeln!(
            o,
            "\nfindings or failed checks changed ({}):",
            self.changed.len()
        );
        for c in &self.changed {
            let _ = writeln!(o, "  {:<22} {}", key(&c.key), c.new.status);
            set_change(&mut o, "finding", &c.old.findings, &c.new.findings);
            set_change(
                &mut o,
                "failed check",
                &c.old.failed_checks,
                &c.new.failed_checks,
            );
        }
        let _ = writeln!(o, "\nadded ({}):", self.added.len());
        for (k, s) in &self.added {
            let _ = writeln!(o, "  {:<22} {}  {}", key(k), s.status, s.title);
        }
        let _ = writeln!(o, "\nremoved ({}):", self.removed.len());
        for (k, s) in &self.removed {
            let _ = writeln!(o, "  {:<22} was {}  {}", key(k), s.status, s.title);
        }
        if !self.new_error_findings.is_empty() {
            let _ = writeln!(
                o,
                "\nnew error-severity findings ({}):",
                self.new_error_findings.len()
            );
            for (k, code) in &self.new_error_findings {
                let _ = writeln!(o, "  {:<22} {code}", key(k));
            }
        }
        let added_failing = self.added_failing().count();
        if self.regressed() {
            let _ = writeln!(
                o,
                "\nregressed: {} newly failing, {} added and failing, {} new error findings",
                self.newly_failing.len(),
                added_failing,
                self.new_error_findings.len()
            );
        } else {
            let _ = writeln!(o, "\nno regression");
        }
        o
    }
}

fn set_change(o: &mut String, what: &str, old: &BTreeSet<String>, new: &BTreeSet<String>) {
    for x in new.difference(old) {
        let _ = writeln!(o, "      + {what}: {x}");
    }
    for x in old.difference(new) {
        let _ = writeln!(o, "      - {what}: {x}");
    }
}

fn ids<'a>(keys: impl Iterator<Item = &'a CaseKey>) -> Vec<String> {
    let s: BTreeSet<String> = keys.map(|k| k.0.clone()).collect();
    s.into_iter().collect()
}

/// `camcert report diff`: print the diff; 1 when something regressed, 0
/// otherwise. An unreadable file is an error (exit 2).
pub fn run(old: &Path, new: &Path, out: &mut impl std::io::Write) -> Result<i32> {
    let o = super::html::read_results(old)?;
    let n = super::html::read_results(new)?;
    let d = diff(&o, &n);
    out.write_all(
        d.render(&old.display().to_string(), &new.display().to_string())
            .as_bytes(),
    )?;
    Ok(if d.regressed() { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn case(id: &str, status: &str, findings: &[(&str, &str)], checks: &[&str]) -> Value {
        json!({
            "id": id, "transport": "udp", "status": status, "title": "t",
            "findings": findings.iter().map(|(c, s)| json!({"code": c, "severity": s, "message": "", "clause": ""})).collect::<Vec<_>>(),
            "failures": checks.iter().enumerate().map(|(i, c)| json!({"step": i + 1, "check": c})).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn sorts_cases_into_failing_passing_changed_added_removed() {
        let old = json!({"cases": [
            case("A", "passed", &[], &[]),
            case("B", "failed", &[], &["x"]),
            case("C", "passed", &[("W1", "warning")], &[]),
            case("D", "passed", &[], &[]),
            case("G", "skipped", &[], &[]),
        ]});
        let new = json!({"cases": [
            case("A", "failed", &[], &["x"]),
            case("B", "passed", &[], &[]),
            case("C", "passed", &[("W2", "warning")], &[]),
            case("E", "passed", &[], &[]),
            case("G", "error", &[], &[]),
        ]});
        let d = diff(&old, &new);
        assert_eq!(d.newly_failing_ids(), ["A", "G"]);
        assert_eq!(d.newly_passing_ids(), ["B"]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].key.0, "C");
        assert_eq!(d.added[0].0 .0, "E");
        assert_eq!(d.removed[0].0 .0, "D");
        assert!(d.regressed());
        let t = d.render("old", "new");
        assert!(
            t.contains("+ finding: W2") && t.contains("- finding: W1"),
            "{t}"
        );
        // The reverse: A passes again, B fails again; G going back to
        // skipped is neither.
        let r = diff(&new, &old);
        assert_eq!(r.newly_passing_ids(), ["A"]);
        assert_eq!(r.newly_failing_ids(), ["B"]);
    }

    #[test]
    fn a_new_error_finding_is_a_regression_a_warning_is_not() {
        let old = json!({"cases": [case("A", "passed", &[], &[])]});
        let warn = json!({"cases": [case("A", "passed", &[("W", "warning")], &[])]});
        let err = json!({"cases": [case("A", "passed", &[("E", "error")], &[])]});
        assert!(!diff(&old, &warn).regressed());
        let d = diff(&old, &err);
        assert!(d.regressed());
        assert_eq!(
            d.new_error_findings,
            [(("A".into(), "udp".into()), "E".into())]
        );
    }

    #[test]
    fn an_added_failing_case_is_a_regression() {
        let old = json!({"cases": []});
        let new = json!({"cases": [case("A", "failed", &[], &["x"])]});
        assert!(diff(&old, &new).regressed());
        assert!(!diff(&new, &old).regressed());
    }
}
