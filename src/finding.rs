//! One finding model for every protocol.
//!
//! A [`Finding`] is a rule a peer broke, as data: a stable namespaced code
//! (`sip.body-longer-than-content-length`, `manscdp.field-as-attribute`,
//! `ps.psm_crc`), a [`Severity`], the clause it is measured against, a
//! message that names the expected and the actual value, and optional
//! [`Evidence`] (the bytes, a byte span, or where in the message it sits).
//!
//! Each protocol keeps its own catalogue of codes (`proto::sip`,
//! `proto::sdp::FindingCode`, `proto::gb28181::manscdp::FindingCode`,
//! `proto::gb28181::session::rules`, `proto::ps::validate::FindingCode`) and
//! builds this one type from it, so reports, suites and checks consume
//! findings without knowing the protocol.
//!
//! Clauses are written the way the requirement catalog
//! (`suites/gb28181/requirements*.yaml`) writes them: `§<section heading of
//! gb28181-features.txt>`, optionally followed by the quoted sentence, or an
//! external reference (`RFC 3261 §20.14`, `XML 1.0 §2.8`, `附录F`,
//! `cascade: 平台设备共享`). [`section`] extracts the part that resolves.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// How serious a finding is for a conformance verdict. Ordered so that the
/// worst of a set is its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth showing; not a deviation from the standard.
    Info,
    /// Deviates from the strict reading, but peers commonly accept it (or
    /// the network, not the peer, may be the cause).
    Warning,
    /// Breaks a mandatory rule.
    Error,
}

impl Severity {
    /// Lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What shows the finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The offending bytes, as received.
    Bytes(Vec<u8>),
    /// A byte range `start..end` of the message the finding is about.
    Span { start: usize, end: usize },
    /// Where in a structured body: an XML element path such as
    /// `Response/DeviceList/Item[0]/Name`.
    Path(String),
    /// A 1-based line of a text body (SDP).
    Line(usize),
    /// Packets of a media stream: the index of the first offending one and
    /// how many times the rule was broken (for loss: packets lost).
    Packets { first: u64, count: u64 },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Bytes(b) => write!(f, "{} bytes", b.len()),
            Evidence::Span { start, end } => write!(f, "bytes {start}..{end}"),
            Evidence::Path(p) => write!(f, "at {p}"),
            Evidence::Line(l) => write!(f, "line {l}"),
            Evidence::Packets { first, count } => {
                write!(f, "packet {first} (×{count})")
            }
        }
    }
}

/// A rule a peer broke. The message or stream was still read where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code, namespaced by protocol (`sip.`, `sdp.`, `gb.sdp.`,
    /// `manscdp.`, `gb.session.`, `rtp.`, `ps.`, `video.`).
    pub code: &'static str,
    pub severity: Severity,
    /// The clause the rule comes from (see [`section`]).
    pub clause: Cow<'static, str>,
    /// What was seen, with the expected and the actual value.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl Finding {
    /// A finding without evidence.
    pub fn new(
        code: &'static str,
        severity: Severity,
        clause: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            code,
            severity,
            clause: clause.into(),
            message: message.into(),
            evidence: None,
        }
    }

    /// An error-severity finding.
    pub fn error(
        code: &'static str,
        clause: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(code, Severity::Error, clause, message)
    }

    /// A warning-severity finding.
    pub fn warning(
        code: &'static str,
        clause: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(code, Severity::Warning, clause, message)
    }

    /// Replace the clause with a more specific one.
    pub fn with_clause(mut self, clause: impl Into<Cow<'static, str>>) -> Self {
        self.clause = clause.into();
        self
    }

    /// Override the severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Attach evidence.
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Some(evidence);
        self
    }

    /// Attach the offending bytes.
    pub fn with_bytes(self, bytes: impl Into<Vec<u8>>) -> Self {
        self.with_evidence(Evidence::Bytes(bytes.into()))
    }

    /// The element path the evidence names, or `""`.
    pub fn path(&self) -> &str {
        match &self.evidence {
            Some(Evidence::Path(p)) => p,
            _ => "",
        }
    }

    /// The 1-based line the evidence names.
    pub fn line(&self) -> Option<usize> {
        match self.evidence {
            Some(Evidence::Line(l)) => Some(l),
            _ => None,
        }
    }

    /// How many times the rule was broken (1 unless the evidence counts packets).
    pub fn count(&self) -> u64 {
        match self.evidence {
            Some(Evidence::Packets { count, .. }) => count,
            _ => 1,
        }
    }

    /// Index of the first offending packet, when the evidence names packets.
    pub fn first_index(&self) -> Option<u64> {
        match self.evidence {
            Some(Evidence::Packets { first, .. }) => Some(first),
            _ => None,
        }
    }

    /// Count `n` more occurrences of a packet finding.
    pub fn add_count(&mut self, n: u64) {
        match &mut self.evidence {
            Some(Evidence::Packets { count, .. }) => *count += n,
            other => {
                *other = Some(Evidence::Packets {
                    first: 0,
                    count: 1 + n,
                })
            }
        }
    }

    /// The part of the clause that resolves into the spec or the catalog.
    pub fn section(&self) -> Option<&str> {
        section(&self.clause)
    }

    /// One line for logs and failure messages:
    /// `code (severity) at path: message [clause]`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({})", self.code, self.severity);
        match &self.evidence {
            None | Some(Evidence::Bytes(_)) => {}
            Some(e) => s.push_str(&format!(" {e}")),
        }
        s.push_str(&format!(": {}", self.message));
        if !self.clause.is_empty() {
            s.push_str(&format!(" [{}]", self.clause));
        }
        s
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)?;
        match &self.evidence {
            Some(Evidence::Path(p)) if !p.is_empty() => write!(f, " at {p}")?,
            Some(Evidence::Line(l)) => write!(f, " (line {l})")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Whether a finding with this code is present.
pub fn has_code(findings: &[Finding], code: &str) -> bool {
    findings.iter().any(|f| f.code == code)
}

/// The worst severity of a set.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// The resolvable reference of a clause: the leading `§<section>` (a
/// heading of the GB/T 28181 feature text, as the requirement catalog writes
/// it), or an external reference (`RFC 3261 §20.14`, `XML 1.0 §2.8`,
/// `附录F`, `cascade: 平台设备共享`) up to its first `:`, `(` or `;`.
/// `None` for a clause without one.
pub fn section(clause: &str) -> Option<&str> {
    let c = clause.trim_start();
    let end = |s: &str| {
        s.find([':', '(', ';', '：', '（', '；', ','])
            .unwrap_or(s.len())
    };
    if let Some(rest) = c.strip_prefix('§') {
        return section_name(rest);
    }
    if let Some(rest) = c.strip_prefix("cascade:") {
        return section_name(rest);
    }
    if let Some(rest) = c.strip_prefix("hemu ") {
        return section_name(rest);
    }
    for prefix in ["RFC ", "XML 1.0", "附录", "ISO/IEC ", "GB/T "] {
        if c.starts_with(prefix) {
            let s = c[..end(c)].trim();
            return Some(s);
        }
    }
    None
}

/// Section headings of the GB/T 28181 feature text (`gb28181-features.txt`),
/// the targets a `§` clause names.
pub const GB28181_SECTIONS: &[&str] = &[
    "注册",
    "设备身份认证",
    "设备配置",
    "基本注册流程",
    "数字整数双向认证",
    "SIP信令认证",
    "注销",
    "注册重定向",
    "重定向流程",
    "保活",
    "保活信令xml格式",
    "保活信令流程",
    "设备查询",
    "设备查询流程",
    "目录检索",
    "目录检索请求格式",
    "目录检索响应格式",
    "设备信息",
    "设备信息查询请求格式",
    "设备信息查询响应格式",
    "设备状态",
    "设备状态请求格式",
    "设备状态响应格式",
    "设备控制",
    "无应答",
    "有应答",
    "控制定义",
    "指令格式",
    "PTZ",
    "FI",
    "控制格式",
    "配置定义",
    "媒体传输方式",
    "UDP",
    "TCP被动",
    "TCP主动",
    "实时预览",
    "客户端发起",
    "第三方呼叫",
    "文件检索",
    "文件检索流程",
    "文件下载",
    "录像回放",
    "断流",
    "SIP服务侧断流",
    "设备侧断流",
    "语音广播",
    "语音对讲",
    "语音对讲流程",
    "校时",
    "订阅与取订",
    "事件订阅",
    "目录订阅",
    "订阅格式",
    "报警事件通知",
    "报警格式",
    "报警流程",
    "图像抓拍",
    "抓拍流程",
];

/// Sections of the platform cascade text (`platform-cascade-sip.txt`), named
/// by `cascade:` clauses.
pub const CASCADE_SECTIONS: &[&str] = &[
    "平台注册",
    "平台心跳保活",
    "平台设备共享",
    "共享设备状态变更通知",
    "实时视频",
    "云台控制",
    "录像查询",
];

/// Sections of the Hemu OpenAPI/HEDGW text (`hemu-openapi-hedgw.txt`),
/// named by `hemu ` clauses (`hemu §5.2.1 登录 HEDGW 平台`).
pub const HEMU_SECTIONS: &[&str] = &[
    "§1.2.2.3",
    "§5.2",
    "§5.2.1",
    "§5.2.2",
    "§5.2.3",
    "§5.2.4",
    "§5.2.5",
    "§5.2.6",
    "§5.2.7",
    "§5.2.8",
    "§5.2.9",
    "§5.2.10",
    "§5.2.11",
    "§5.2.12",
    "§5.3",
    "§5.3.1",
    "§5.3.2",
    "§6.2",
    "附录D",
    "附录E",
    // OpenAPI.
    "§1.2.2.1",
    "§1.2.2.2",
    "§2.1",
    "§2.2",
    "§5",
    "§5.1",
    "§5.1.1",
    "§5.1.2",
    "§5.1.3",
    "§5.1.4",
    "§5.1.5",
    "§5.1.6",
    "§5.1.7",
    "§6.1",
    "附录C",
];

/// Whether a clause names something that exists: a `§` section of the
/// GB/T 28181 text, a `cascade:` section, or an external standard (RFC,
/// XML 1.0, ISO/IEC, GB/T 28181-2016 annex).
pub fn resolves(clause: &str) -> bool {
    let c = clause.trim_start();
    let Some(sec) = section(c) else {
        return false;
    };
    if c.starts_with('§') {
        GB28181_SECTIONS.contains(&sec)
    } else if c.starts_with("cascade:") {
        CASCADE_SECTIONS.contains(&sec)
    } else if c.starts_with("hemu ") {
        HEMU_SECTIONS.contains(&sec)
    } else {
        true
    }
}

/// A section name has no spaces: it ends at the first space or separator.
fn section_name(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let n = &s[..s.find(char::is_whitespace).unwrap_or(s.len())];
    let cut = n
        .find([':', '(', ';', '：', '（', '；', ',', '/'])
        .unwrap_or(n.len());
    let n = n[..cut].trim();
    (!n.is_empty()).then_some(n)
}

/// Implements comparisons between a protocol's code enum and the `code`
/// string of a [`Finding`], so `finding.code == FindingCode::X` reads as it
/// always did.
macro_rules! code_eq {
    ($t:ty) => {
        impl PartialEq<$t> for &'static str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.as_str()
            }
        }
        impl PartialEq<&'static str> for $t {
            fn eq(&self, other: &&'static str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
pub(crate) use code_eq;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_extracted() {
        assert_eq!(
            section("§设备信息查询响应格式"),
            Some("设备信息查询响应格式")
        );
        assert_eq!(
            section("§保活 (A.2.5: SN 命令序列号)"),
            Some("保活"),
            "parenthesis ends the section"
        );
        assert_eq!(
            section("§目录检索请求格式: <?xml ...?>"),
            Some("目录检索请求格式")
        );
        assert_eq!(
            section("RFC 3261 §20.14: Content-Length"),
            Some("RFC 3261 §20.14")
        );
        assert_eq!(
            section("cascade: 平台设备共享 (备注)"),
            Some("平台设备共享")
        );
        assert_eq!(section("hemu §5.2.1 登录 HEDGW 平台"), Some("§5.2.1"));
        assert_eq!(section("hemu 附录D: Protobuf 文件"), Some("附录D"));
        assert!(resolves("hemu §5.2.2 TD 心跳保活"));
        assert!(!resolves("hemu §9.9"));
        assert_eq!(section("what the notes say"), None);
        assert_eq!(section("§ : x"), None);
        assert_eq!(section("§重定向流程 4-5 (302)"), Some("重定向流程"));
        assert_eq!(section("§设备控制 / §控制定义 (PTZCmd)"), Some("设备控制"));
    }

    #[test]
    fn catalog_clauses_resolve() {
        // The requirement catalog writes clauses the way findings do; every
        // `§` or `cascade:` reference in it names a known section.
        for yaml in [
            include_str!("../suites/gb28181/requirements.yaml"),
            include_str!("../suites/gb28181/requirements-camera.yaml"),
            include_str!("../suites/gb28181/requirements-platform.yaml"),
            include_str!("../suites/gb28181/requirements-media.yaml"),
        ] {
            for line in yaml.lines() {
                let Some(c) = line.trim().strip_prefix("clause: ") else {
                    continue;
                };
                let c = c.trim_matches('"');
                if c.starts_with('§') || c.starts_with("cascade:") {
                    assert!(resolves(c), "catalog clause {c:?} names no known section");
                }
            }
        }
        assert!(!resolves("§no such section"));
        assert!(!resolves("free text"));
    }

    #[test]
    fn accessors_read_the_evidence() {
        let f = Finding::error("x.y", "§保活", "expected 1, got 2")
            .with_evidence(Evidence::Path("Notify/SN".into()));
        assert_eq!(f.path(), "Notify/SN");
        assert_eq!(f.line(), None);
        assert_eq!(f.count(), 1);
        assert_eq!(f.to_string(), "x.y at Notify/SN: expected 1, got 2");
        assert_eq!(
            f.describe(),
            "x.y (error) at Notify/SN: expected 1, got 2 [§保活]"
        );
        let mut p = Finding::warning("rtp.packet_loss", "RFC 3550 §A.3", "lost")
            .with_evidence(Evidence::Packets { first: 7, count: 1 });
        p.add_count(2);
        assert_eq!((p.count(), p.first_index()), (3, Some(7)));
    }

    #[test]
    fn severity_orders_worst_last() {
        let fs = [
            Finding::warning("a.b", "", "w"),
            Finding::new("a.c", Severity::Info, "", "i"),
        ];
        assert_eq!(worst(&fs), Some(Severity::Warning));
        assert!(!has_errors(&fs));
        assert!(has_code(&fs, "a.c"));
        assert_eq!(
            serde_json::to_value(Severity::Error).unwrap(),
            serde_json::json!("error")
        );
    }
}
