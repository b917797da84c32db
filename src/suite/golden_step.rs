//! `expect: { golden: { file, redact } }`: the message an `expect` step took,
//! as canonical text with its volatile fields redacted
//! ([`crate::capture::golden`]), compared with a committed file; with
//! `--update-golden` the file is written instead. A difference fails the
//! step with a unified diff (`-` golden, `+` received).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{CaseRun, StepFail};
use crate::capture::golden::{canonical, first_difference, unified_diff};
use crate::finding::Finding;
use crate::proto::sip::SipMessage;
use crate::suite::model::GoldenInput;

impl CaseRun<'_> {
    pub(super) fn golden(
        &mut self,
        g: &GoldenInput,
        m: &SipMessage,
        from: SocketAddr,
    ) -> Result<(), StepFail> {
        let file = PathBuf::from(self.x(&g.file)?);
        let local = self.ep.local_addr_for(from);
        let text = canonical(m, &g.redact, &[(from, "<dut>"), (local, "<camcert>")]);
        if self.update_golden {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StepFail::new("golden", format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            std::fs::write(&file, &text).map_err(|e| {
                StepFail::new("golden", format!("cannot write {}: {e}", file.display()))
            })?;
            self.findings.push(
                Finding::new(
                    "camcert.golden-written",
                    crate::finding::Severity::Info,
                    "",
                    format!(
                        "--update-golden: wrote {} from {}",
                        file.display(),
                        m.summary()
                    ),
                )
                .into(),
            );
            return Ok(());
        }
        let golden = match std::fs::read(&file) {
            Ok(b) => String::from_utf8_lossy(&b).replace("\r\n", "\n"),
            Err(e) => {
                return Err(StepFail::new(
                    "golden",
                    format!(
                    "cannot read the golden file {}: {e}; `camcert run --update-golden` writes it",
                    file.display()
                ),
                )
                .exp(format!("the golden file {}", file.display()), "no file"))
            }
        };
        let Some(diff) = unified_diff(
            &golden,
            &text,
            &file.display().to_string(),
            &format!("received {}", m.summary()),
        ) else {
            return Ok(());
        };
        let (line, want, got) = first_difference(&golden, &text).unwrap_or((0, None, None));
        let shown = |l: Option<String>| l.unwrap_or_else(|| "(no line)".into());
        let (want, got) = (shown(want), shown(got));
        Err(StepFail::new(
            "golden",
            format!(
                "{} differs from the golden file {} at line {line} (- golden, + received; `--update-golden` rewrites it):\n{diff}",
                m.summary(),
                file.display(),
            ),
        )
        .exp(format!("line {line}: {want}"), format!("line {line}: {got}")))
    }
}
