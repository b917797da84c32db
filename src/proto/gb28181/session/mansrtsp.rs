//! MANSRTSP: the RTSP-shaped bodies of the INFO requests that control a playback
//! (spec 录像回放: "采用INFO消息体携带MANSRTSP进行录像回放的请求", "使用 MANSRTSP 协议中的
//! Play、Pause、Teardown 的请求和应答控制回放").
//!
//! ```text
//! PLAY RTSP/1.0          PAUSE RTSP/1.0       TEARDOWN RTSP/1.0     RTSP/1.0 200 OK
//! CSeq: 2                CSeq: 3              CSeq: 4               CSeq: 2
//! Scale: 2.0             PauseTime: now
//! Range: npt=now-
//! ```
//!
//! The feature notes name the three methods but show no body. The header forms come
//! from RFC 2326 (§12.17 CSeq, §12.29 Range `npt=`, §12.34 Scale) and the
//! GB/T 28181-2016 MANSRTSP annex, whose requests have no Request-URI (`PLAY RTSP/1.0`)
//! and end after the last header line. Decisions:
//!
//! - A request with an RFC 2326 Request-URI (`PLAY rtsp://... RTSP/1.0`) is read; the
//!   URI is kept. camcert sends the GB form without one.
//! - The blank line RFC 2326 puts after the headers is optional: the GB examples end
//!   at the last header. camcert sends none and accepts both.
//! - `Scale` is any finite non-zero number; values other than 0.25, 0.5, 1, 2 and 4
//!   (the speeds GB devices list) are reported as `rtsp.scale-value` (warning).
//! - `Range` is read in `npt` seconds or `h:mm:ss`; other units (`clock=`, `smpte=`)
//!   are kept as written and reported as `rtsp.range-unit`.
//! - LF line ends are read and reported (`rtsp.lf-line-ending`); camcert sends CRLF.
//!
//! [`Request::parse`] never fails on a deviation it can read past; it returns the
//! request and the [`Finding`]s. [`Request::encode`] writes the typed value.

use std::fmt;

use super::finding::{Finding, Rule, Severity};

/// The `Content-Type` of an INFO carrying MANSRTSP.
pub const CONTENT_TYPE: &str = "Application/MANSRTSP";
/// The protocol version of every MANSRTSP start line.
pub const VERSION: &str = "RTSP/1.0";
/// The speeds GB playback devices offer.
pub const STANDARD_SCALES: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];

const CLAUSE_RTSP: &str = "§录像回放: 使用 MANSRTSP 协议中的 Play、Pause、Teardown 的请求和应答控制回放; RFC 2326 §6/§7: <method> [<uri>] RTSP/1.0, header lines end with CRLF";
const CLAUSE_CSEQ: &str = "RFC 2326 §12.17: CSeq MUST be present in every request and response";
const CLAUSE_SCALE: &str =
    "RFC 2326 §12.34: Scale: <number>, 1 normal rate, >1 faster, <1 slower, negative reverse; GB playback speeds 0.25/0.5/1/2/4";
const CLAUSE_RANGE: &str =
    "RFC 2326 §3.6/§12.29: Range: npt=<start>-[<end>], npt-time = now | seconds | h:mm:ss";

macro_rules! rtsp_rules {
    ($( $(#[$m:meta])* $name:ident => $sev:ident, $code:literal, $clause:expr; )*) => {
        $( $(#[$m])* pub const $name: Rule = Rule {
            code: $code,
            severity: Severity::$sev,
            clause: $clause,
        }; )*

        /// Every MANSRTSP rule.
        pub const RULES: &[Rule] = &[$($name),*];
    };
}

rtsp_rules! {
    /// A header line without `:`.
    MALFORMED_LINE => Error, "rtsp.malformed-line", CLAUSE_RTSP;
    /// Lines end with LF alone.
    LF_LINE_ENDING => Warning, "rtsp.lf-line-ending", CLAUSE_RTSP;
    /// The version is not `RTSP/1.0`.
    VERSION_RULE => Error, "rtsp.version", CLAUSE_RTSP;
    /// A method other than PLAY, PAUSE and TEARDOWN.
    METHOD_UNKNOWN => Error, "rtsp.method-unknown", CLAUSE_RTSP;
    /// No CSeq.
    CSEQ_MISSING => Error, "rtsp.cseq-missing", CLAUSE_CSEQ;
    /// CSeq is not a decimal number.
    CSEQ_MALFORMED => Error, "rtsp.cseq-malformed", CLAUSE_CSEQ;
    /// Scale is not a finite non-zero number.
    SCALE_MALFORMED => Error, "rtsp.scale-malformed", CLAUSE_SCALE;
    /// Scale is not one of the GB speeds.
    SCALE_VALUE => Warning, "rtsp.scale-value", CLAUSE_SCALE;
    /// Range is not `npt=<start>-[<end>]`.
    RANGE_MALFORMED => Error, "rtsp.range-malformed", CLAUSE_RANGE;
    /// Range in a unit other than npt.
    RANGE_UNIT => Warning, "rtsp.range-unit", CLAUSE_RANGE;
    /// PauseTime is neither `now` nor a number of seconds.
    PAUSE_TIME => Warning, "rtsp.pausetime", "GB/T 28181-2016 MANSRTSP annex: PauseTime: now";
    /// A header that does not belong to the method (Scale on PAUSE, PauseTime on PLAY).
    HEADER_FOR_METHOD => Warning, "rtsp.header-for-method", CLAUSE_RTSP;
    /// A header given twice; the first one was used.
    DUPLICATE_HEADER => Warning, "rtsp.duplicate-header", CLAUSE_RTSP;
    /// Bytes after the blank line that ends the headers.
    TRAILING_CONTENT => Warning, "rtsp.trailing-content", CLAUSE_RTSP;
}

/// Why nothing could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No bytes, or only whitespace.
    #[error("MANSRTSP body is empty")]
    Empty,
    /// Not UTF-8.
    #[error("MANSRTSP body is not UTF-8 text")]
    NotText,
    /// The first line is neither `<METHOD> [<uri>] RTSP/<v>` nor `RTSP/<v> <code> <reason>`.
    #[error("malformed MANSRTSP start line {0:?}")]
    StartLine(String),
}

/// A MANSRTSP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Start, resume, seek (Range) or change speed (Scale).
    Play,
    /// Pause.
    Pause,
    /// Stop the playback.
    Teardown,
    /// Anything else, as written.
    Other(String),
}

impl Method {
    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Teardown => "TEARDOWN",
            Method::Other(s) => s,
        }
    }

    /// Reads a method token (exact upper case, as RFC 2326 methods are case-sensitive).
    pub fn parse(s: &str) -> Method {
        match s {
            "PLAY" => Method::Play,
            "PAUSE" => Method::Pause,
            "TEARDOWN" => Method::Teardown,
            other => Method::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One end of an npt range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NptTime {
    /// `now`: where the playback is.
    Now,
    /// Seconds from the start of the recording (`h:mm:ss` is converted).
    Seconds(f64),
}

impl NptTime {
    fn parse(s: &str) -> Option<NptTime> {
        let s = s.trim();
        if s == "now" {
            return Some(NptTime::Now);
        }
        let secs = if s.contains(':') {
            let mut it = s.splitn(3, ':');
            let h: u64 = digits(it.next()?)?;
            let m: u64 = digits(it.next()?)?;
            let sec = it.next()?;
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let whole: u64 = digits(whole)?;
            if m > 59 || whole > 59 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let frac: f64 = if frac.is_empty() {
                0.0
            } else {
                format!("0.{frac}").parse().ok()?
            };
            (h * 3600 + m * 60 + whole) as f64 + frac
        } else {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()?
        };
        secs.is_finite().then_some(NptTime::Seconds(secs))
    }
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for NptTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NptTime::Now => f.write_str("now"),
            NptTime::Seconds(s) => write!(f, "{s}"),
        }
    }
}

/// The `Range` header.
#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    /// `npt=<start>-[<end>]` (RFC 2326 also allows `npt=-<end>`).
    Npt {
        /// Start; `None` for `npt=-<end>`.
        start: Option<NptTime>,
        /// End; `None` for an open range.
        end: Option<NptTime>,
    },
    /// Another unit, as written.
    Other(String),
}

impl Range {
    /// `npt=now-`: resume where the playback paused.
    pub const RESUME: Range = Range::Npt {
        start: Some(NptTime::Now),
        end: None,
    };

    /// `npt=<secs>-`: seek.
    pub fn from_seconds(secs: f64) -> Range {
        Range::Npt {
            start: Some(NptTime::Seconds(secs)),
            end: None,
        }
    }

    /// The npt start in seconds, when it is a number.
    pub fn start_seconds(&self) -> Option<f64> {
        match self {
            Range::Npt {
                start: Some(NptTime::Seconds(s)),
                ..
            } => Some(*s),
            _ => None,
        }
    }

    fn parse(v: &str) -> Result<Range, Finding> {
        let v = v.trim();
        let Some(rest) = v.strip_prefix("npt=") else {
            if v.contains('=') {
                return Err(RANGE_UNIT.finding(format!("Range {v:?} is not in npt")));
            }
            return Err(RANGE_MALFORMED.finding(format!("Range {v:?} has no unit")));
        };
        // Parameters after `;` (RFC 2326 `;time=`) are not used here.
        let rest = rest.split(';').next().unwrap_or(rest);
        let bad = || RANGE_MALFORMED.finding(format!("Range {v:?} is not npt=<start>-[<end>]"));
        let (a, b) = rest.split_once('-').ok_or_else(bad)?;
        let start = if a.trim().is_empty() {
            None
        } else {
            Some(NptTime::parse(a).ok_or_else(bad)?)
        };
        let end = if b.trim().is_empty() {
            None
        } else {
            Some(NptTime::parse(b).ok_or_else(bad)?)
        };
        if start.is_none() && end.is_none() {
            return Err(bad());
        }
        Ok(Range::Npt { start, end })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Npt { start, end } => {
                f.write_str("npt=")?;
                if let Some(s) = start {
                    write!(f, "{s}")?;
                }
                f.write_str("-")?;
                if let Some(e) = end {
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Range::Other(s) => f.write_str(s),
        }
    }
}

/// Writes a scale the way the GB examples do: `2.0`, `0.5`.
fn format_scale(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// A MANSRTSP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// An RFC 2326 Request-URI, when the start line had one (GB requests have none).
    pub uri: Option<String>,
    /// The version as written (`RTSP/1.0`).
    pub version: String,
    /// `CSeq`; `None` when missing or unreadable.
    pub cseq: Option<u32>,
    /// `Scale` (PLAY).
    pub scale: Option<f64>,
    /// `Range` (PLAY).
    pub range: Option<Range>,
    /// `PauseTime` as written (PAUSE).
    pub pause_time: Option<String>,
    /// Other headers, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    fn new(method: Method, cseq: u32) -> Request {
        Request {
            method,
            uri: None,
            version: VERSION.to_string(),
            cseq: Some(cseq),
            scale: None,
            range: None,
            pause_time: None,
            headers: Vec::new(),
        }
    }

    /// `PLAY` with optional Scale and Range.
    pub fn play(cseq: u32, scale: Option<f64>, range: Option<Range>) -> Request {
        Request {
            scale,
            range,
            ..Request::new(Method::Play, cseq)
        }
    }

    /// `PLAY` with `Range: npt=now-`: resume after a pause.
    pub fn resume(cseq: u32) -> Request {
        Request::play(cseq, None, Some(Range::RESUME))
    }

    /// `PAUSE` with `PauseTime: now`.
    pub fn pause(cseq: u32) -> Request {
        Request {
            pause_time: Some("now".into()),
            ..Request::new(Method::Pause, cseq)
        }
    }

    /// `TEARDOWN`.
    pub fn teardown(cseq: u32) -> Request {
        Request::new(Method::Teardown, cseq)
    }

    /// Writes the request: start line, CSeq, Scale, Range, PauseTime, other headers,
    /// each ended by CRLF, no blank line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        s.push_str(self.method.as_str());
        if let Some(u) = &self.uri {
            s.push(' ');
            s.push_str(u);
        }
        s.push(' ');
        s.push_str(&self.version);
        s.push_str("\r\n");
        if let Some(c) = self.cseq {
            s.push_str(&format!("CSeq: {c}\r\n"));
        }
        if let Some(v) = self.scale {
            s.push_str(&format!("Scale: {}\r\n", format_scale(v)));
        }
        if let Some(r) = &self.range {
            s.push_str(&format!("Range: {r}\r\n"));
        }
        if let Some(p) = &self.pause_time {
            s.push_str(&format!("PauseTime: {p}\r\n"));
        }
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        out.extend_from_slice(s.as_bytes());
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Reads a request leniently; see the module docs.
    pub fn parse(data: &[u8]) -> Result<(Request, Vec<Finding>), ParseError> {
        let text = Text::split(data)?;
        let mut findings = text.findings;
        let first = text.start;
        let toks: Vec<&str> = first.split_whitespace().collect();
        let (method, uri, version) = match toks.as_slice() {
            [m, v] if v.starts_with("RTSP/") => (*m, None, *v),
            [m, u, v] if v.starts_with("RTSP/") => (*m, Some(u.to_string()), *v),
            _ => return Err(ParseError::StartLine(first.to_string())),
        };
        if !method.bytes().all(|b| b.is_ascii_alphabetic()) || method.is_empty() {
            return Err(ParseError::StartLine(first.to_string()));
        }
        if version != VERSION {
            findings.push(VERSION_RULE.finding(format!("version {version:?}, not {VERSION}")));
        }
        let method = Method::parse(method);
        if let Method::Other(m) = &method {
            findings.push(
                METHOD_UNKNOWN.finding(format!("method {m:?} is not PLAY, PAUSE or TEARDOWN")),
            );
        }
        let mut req = Request {
            method,
            uri,
            version: version.to_string(),
            cseq: None,
            scale: None,
            range: None,
            pause_time: None,
            headers: Vec::new(),
        };
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in text.headers {
            let lower = name.to_ascii_lowercase();
            let known = matches!(lower.as_str(), "cseq" | "scale" | "range" | "pausetime");
            if known && seen.contains(&lower) {
                findings.push(
                    DUPLICATE_HEADER.finding(format!("{name} given again; the first was used")),
                );
                continue;
            }
            seen.push(lower.clone());
            match lower.as_str() {
                "cseq" => req.cseq = read_cseq(&value, &mut findings),
                "scale" => {
                    let v: Option<f64> = value.trim().parse().ok();
                    match v.filter(|v: &f64| v.is_finite() && *v != 0.0) {
                        Some(v) => {
                            if !STANDARD_SCALES.contains(&v) {
                                findings.push(SCALE_VALUE.finding(format!(
                                    "Scale {value:?} is not one of 0.25, 0.5, 1, 2, 4"
                                )));
                            }
                            req.scale = Some(v);
                        }
                        None => {
                            findings.push(SCALE_MALFORMED.finding(format!(
                                "Scale {value:?} is not a finite non-zero number"
                            )))
                        }
                    }
                }
                "range" => match Range::parse(&value) {
                    Ok(r) => req.range = Some(r),
                    Err(f) => {
                        if f.code == RANGE_UNIT.code {
                            req.range = Some(Range::Other(value.trim().to_string()));
                        }
                        findings.push(f);
                    }
                },
                "pausetime" => {
                    let v = value.trim();
                    if v != "now" && NptTime::parse(v).is_none() {
                        findings.push(
                            PAUSE_TIME
                                .finding(format!("PauseTime {v:?} is neither now nor seconds")),
                        );
                    }
                    req.pause_time = Some(v.to_string());
                }
                _ => req.headers.push((name, value)),
            }
        }
        if req.cseq.is_none() && !seen.iter().any(|s| s == "cseq") {
            findings.push(CSEQ_MISSING.finding(format!("{} without CSeq", req.method)));
        }
        let misplaced: &[(&str, bool)] = match req.method {
            Method::Play => &[("PauseTime", req.pause_time.is_some())],
            Method::Pause => &[
                ("Scale", req.scale.is_some()),
                ("Range", req.range.is_some()),
            ],
            Method::Teardown => &[
                ("Scale", req.scale.is_some()),
                ("Range", req.range.is_some()),
                ("PauseTime", req.pause_time.is_some()),
            ],
            Method::Other(_) => &[],
        };
        for (h, present) in misplaced {
            if *present {
                findings.push(
                    HEADER_FOR_METHOD.finding(format!("{h} on {} has no meaning", req.method)),
                );
            }
        }
        Ok((req, findings))
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// A MANSRTSP answer (`RTSP/1.0 200 OK`), carried in the 200 to the INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The version as written.
    pub version: String,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// `CSeq`, echoing the request's.
    pub cseq: Option<u32>,
    /// Other headers (e.g. `RTP-Info`), in order.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// `RTSP/1.0 200 OK` echoing `cseq`.
    pub fn ok(cseq: Option<u32>) -> Response {
        Response {
            version: VERSION.into(),
            status: 200,
            reason: "OK".into(),
            cseq,
            headers: Vec::new(),
        }
    }

    /// Writes the answer, each line ended by CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = format!("{} {} {}\r\n", self.version, self.status, self.reason);
        if let Some(c) = self.cseq {
            s.push_str(&format!("CSeq: {c}\r\n"));
        }
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        out.extend_from_slice(s.as_bytes());
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Reads an answer leniently.
    pub fn parse(data: &[u8]) -> Result<(Response, Vec<Finding>), ParseError> {
        let text = Text::split(data)?;
        let mut findings = text.findings;
        let first = text.start;
        let mut it = first.splitn(3, ' ');
        let (version, code, reason) = (it.next(), it.next(), it.next().unwrap_or(""));
        let (Some(version), Some(code)) = (version, code) else {
            return Err(ParseError::StartLine(first.to_string()));
        };
        let status: u16 = match digits(code) {
            Some(c) if version.starts_with("RTSP/") && (100..=999).contains(&c) => c,
            _ => return Err(ParseError::StartLine(first.to_string())),
        };
        if version != VERSION {
            findings.push(VERSION_RULE.finding(format!("version {version:?}, not {VERSION}")));
        }
        let mut r = Response {
            version: version.to_string(),
            status,
            reason: reason.to_string(),
            cseq: None,
            headers: Vec::new(),
        };
        let mut cseq_seen = false;
        for (name, value) in text.headers {
            if name.eq_ignore_ascii_case("cseq") && !cseq_seen {
                cseq_seen = true;
                r.cseq = read_cseq(&value, &mut findings);
            } else {
                r.headers.push((name, value));
            }
        }
        if !cseq_seen {
            findings.push(CSEQ_MISSING.finding("answer without CSeq"));
        }
        Ok((r, findings))
    }
}

fn read_cseq(value: &str, findings: &mut Vec<Finding>) -> Option<u32> {
    match digits::<u32>(value.trim()) {
        Some(n) => Some(n),
        None => {
            findings.push(CSEQ_MALFORMED.finding(format!("CSeq {value:?} is not a number")));
            None
        }
    }
}

/// A body split into its start line and headers.
struct Text<'a> {
    start: &'a str,
    headers: Vec<(String, String)>,
    findings: Vec<Finding>,
}

impl<'a> Text<'a> {
    fn split(data: &'a [u8]) -> Result<Text<'a>, ParseError> {
        let text = std::str::from_utf8(data).map_err(|_| ParseError::NotText)?;
        let text = text.trim_start_matches(['\r', '\n']);
        if text.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let mut findings = Vec::new();
        let mut lines = Vec::new();
        let mut rest = text;
        let mut lf = false;
        while !rest.is_empty() {
            let (line, next) = match rest.find('\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            let line = match line.strip_suffix('\r') {
                Some(l) => l,
                None => {
                    if rest.len() > line.len() {
                        lf = true;
                    }
                    line
                }
            };
            rest = next;
            if line.is_empty() {
                if !rest.trim().is_empty() {
                    findings.push(TRAILING_CONTENT.finding(format!(
                        "{} bytes after the blank line were ignored",
                        rest.len()
                    )));
                }
                break;
            }
            lines.push(line);
        }
        if lf {
            findings.push(LF_LINE_ENDING.finding("lines end with LF instead of CRLF"));
        }
        let start = lines.first().copied().unwrap_or_default().trim();
        let mut headers = Vec::new();
        for l in lines.iter().skip(1) {
            match l.split_once(':') {
                Some((n, v)) if !n.trim().is_empty() && !n.contains(' ') => {
                    headers.push((n.trim().to_string(), v.trim().to_string()))
                }
                _ => findings.push(MALFORMED_LINE.finding(format!("{l:?} is not <name>: <value>"))),
            }
        }
        Ok(Text {
            start,
            headers,
            findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn gb_forms_byte_for_byte() {
        let play = b"PLAY RTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\nRange: npt=now-\r\n";
        let (r, f) = Request::parse(play).unwrap();
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(r.method, Method::Play);
        assert_eq!((r.cseq, r.scale), (Some(2), Some(2.0)));
        assert_eq!(r.range, Some(Range::RESUME));
        assert_eq!(r.to_bytes(), play);

        let pause = b"PAUSE RTSP/1.0\r\nCSeq: 3\r\nPauseTime: now\r\n";
        let (r, f) = Request::parse(pause).unwrap();
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(r, Request::pause(3));
        assert_eq!(r.to_bytes(), pause);

        let teardown = b"TEARDOWN RTSP/1.0\r\nCSeq: 4\r\n";
        let (r, f) = Request::parse(teardown).unwrap();
        assert!(f.is_empty());
        assert_eq!(r, Request::teardown(4));
        assert_eq!(r.to_bytes(), teardown);

        assert_eq!(
            Request::play(5, None, Some(Range::from_seconds(100.0))).to_bytes(),
            b"PLAY RTSP/1.0\r\nCSeq: 5\r\nRange: npt=100-\r\n"
        );
        assert_eq!(
            Request::play(6, Some(0.5), None).to_bytes(),
            b"PLAY RTSP/1.0\r\nCSeq: 6\r\nScale: 0.5\r\n"
        );
        let ok = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n";
        let (r, f) = Response::parse(ok).unwrap();
        assert!(f.is_empty());
        assert_eq!(r, Response::ok(Some(2)));
        assert_eq!(r.to_bytes(), ok);
    }

    #[test]
    fn lenient_forms_are_read_with_findings() {
        // RFC 2326 form with a URI, a blank line, LF endings, h:mm:ss and a range end.
        let (r, f) = Request::parse(
            b"PLAY rtsp://10.0.0.1/x RTSP/1.0\ncseq: 7\nRange: npt=0:01:40.5-0:02:00\n\n",
        )
        .unwrap();
        assert_eq!(codes(&f), vec!["rtsp.lf-line-ending"]);
        assert_eq!(r.uri.as_deref(), Some("rtsp://10.0.0.1/x"));
        assert_eq!(r.cseq, Some(7));
        assert_eq!(
            r.range,
            Some(Range::Npt {
                start: Some(NptTime::Seconds(100.5)),
                end: Some(NptTime::Seconds(120.0)),
            })
        );
        assert_eq!(r.range.as_ref().unwrap().start_seconds(), Some(100.5));
    }

    #[test]
    fn each_rule_can_fail() {
        let cases: &[(&[u8], &str)] = &[
            (b"PLAY RTSP/1.0\r\nScale: 2\r\n", "rtsp.cseq-missing"),
            (b"PLAY RTSP/1.0\r\nCSeq: x\r\n", "rtsp.cseq-malformed"),
            (b"PLAY RTSP/2.0\r\nCSeq: 1\r\n", "rtsp.version"),
            (b"RECORD RTSP/1.0\r\nCSeq: 1\r\n", "rtsp.method-unknown"),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: fast\r\n",
                "rtsp.scale-malformed",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: 0\r\n",
                "rtsp.scale-malformed",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: 3.0\r\n",
                "rtsp.scale-value",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=x-\r\n",
                "rtsp.range-malformed",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: 100-\r\n",
                "rtsp.range-malformed",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: clock=19961108T143720.25Z-\r\n",
                "rtsp.range-unit",
            ),
            (
                b"PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: later\r\n",
                "rtsp.pausetime",
            ),
            (
                b"PAUSE RTSP/1.0\r\nCSeq: 1\r\nScale: 2.0\r\n",
                "rtsp.header-for-method",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n",
                "rtsp.duplicate-header",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\nnonsense\r\n",
                "rtsp.malformed-line",
            ),
            (
                b"PLAY RTSP/1.0\r\nCSeq: 1\r\n\r\ntrailing",
                "rtsp.trailing-content",
            ),
        ];
        for (raw, code) in cases {
            let (_, f) = Request::parse(raw).unwrap();
            assert!(codes(&f).contains(code), "{code}: {f:?}");
            assert!(RULES.iter().any(|r| r.code == *code));
        }
        let (r, f) = Request::parse(b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: clock=1-\r\n").unwrap();
        assert_eq!(r.range, Some(Range::Other("clock=1-".into())));
        assert_eq!(codes(&f), vec!["rtsp.range-unit"]);
        let (_, f) = Response::parse(b"RTSP/1.0 200 OK\r\n").unwrap();
        assert_eq!(codes(&f), vec!["rtsp.cseq-missing"]);
    }

    #[test]
    fn unreadable_bodies_are_errors() {
        for raw in [
            &b""[..],
            b"\r\n \r\n",
            b"PLAY\r\n",
            b"hello world\r\n",
            b"PLAY RTSP/1.0 extra tokens\r\n",
            b"\xff\xfe",
        ] {
            assert!(Request::parse(raw).is_err(), "{raw:?}");
        }
        for raw in [
            &b"RTSP/1.0\r\n"[..],
            b"RTSP/1.0 abc OK\r\n",
            b"PLAY RTSP/1.0\r\n",
        ] {
            assert!(Response::parse(raw).is_err(), "{raw:?}");
        }
    }

    fn npt() -> impl Strategy<Value = NptTime> {
        prop_oneof![
            Just(NptTime::Now),
            (0u64..10_000_000).prop_map(|ms| NptTime::Seconds(ms as f64 / 1000.0)),
        ]
    }

    fn range() -> impl Strategy<Value = Range> {
        prop_oneof![
            (npt(), proptest::option::of(npt())).prop_map(|(s, end)| Range::Npt {
                start: Some(s),
                end
            }),
            npt().prop_map(|e| Range::Npt {
                start: None,
                end: Some(e)
            }),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        let scale = proptest::option::of(prop_oneof![
            proptest::sample::select(STANDARD_SCALES.to_vec()),
            (1u32..64).prop_map(|n| f64::from(n) / 8.0),
        ]);
        (
            0u32..1_000_000,
            scale,
            proptest::option::of(range()),
            0u8..3,
            proptest::option::of("[A-Za-z][A-Za-z-]{0,8}: [ -~]{0,10}[!-~]"),
        )
            .prop_map(|(cseq, scale, range, m, extra)| {
                let mut r = match m {
                    0 => Request::play(cseq, scale, range),
                    1 => Request::pause(cseq),
                    _ => Request::teardown(cseq),
                };
                if let Some(e) = extra {
                    let (n, v) = e.split_once(": ").unwrap();
                    let lower = n.to_ascii_lowercase();
                    if !["cseq", "scale", "range", "pausetime"].contains(&lower.as_str()) {
                        r.headers.push((n.to_string(), v.trim().to_string()));
                    }
                }
                r
            })
    }

    proptest! {
        #[test]
        fn request_round_trips(r in request()) {
            let bytes = r.to_bytes();
            let (back, findings) = Request::parse(&bytes).unwrap();
            prop_assert_eq!(&back, &r);
            prop_assert!(findings.iter().all(|f| f.code == SCALE_VALUE.code), "{:?}", findings);
            prop_assert_eq!(back.to_bytes(), bytes);
        }

        #[test]
        fn response_round_trips(cseq in proptest::option::of(any::<u32>()), code in 100u16..700) {
            let r = Response { status: code, reason: "Reason Text".into(), ..Response::ok(cseq) };
            let (back, _) = Response::parse(&r.to_bytes()).unwrap();
            prop_assert_eq!(back, r);
        }

        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::parse(&data);
            let _ = Response::parse(&data);
        }

        #[test]
        fn mutated_requests_never_panic(r in request(), at in any::<usize>(), b in any::<u8>()) {
            let mut bytes = r.to_bytes();
            let i = at % bytes.len();
            bytes[i] = b;
            if let Ok((x, _)) = Request::parse(&bytes) {
                // Whatever was read encodes and reads back to itself.
                let (y, _) = Request::parse(&x.to_bytes()).unwrap();
                prop_assert_eq!(x.to_bytes(), y.to_bytes());
            }
        }
    }
}
