//! `expect: { golden: { file, redact } }`: the message an `expect` step took,
//! as canonical text with its volatile fields redacted
//! ([`crate::capture::golden`]), compared with a committed file; with
//! `--update-golden` the file is written instead. A difference fails the
//! step with a unified diff (`-` golden, `+` received).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{CaseRun, StepFail};
use crate::capture::golden::{canonical, hold, Held};
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
        match hold(&file, &text, self.update_golden, &m.summary()) {
            Ok(Held::Same) => Ok(()),
            Ok(Held::Written) => {
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
                Ok(())
            }
            Err(e) => Err(StepFail::new("golden", e.message).exp(e.expected, e.received)),
        }
    }
}
