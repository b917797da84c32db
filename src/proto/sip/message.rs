//! SIP message framing and codec (RFC 3261 §7, §18.3, §20.14).
//!
//! The codec keeps what the peer sent: header order, header-name case,
//! compact forms, and the body as raw bytes (a GB2312 MANSCDP body is never
//! re-encoded). Parsing is lenient and returns [`Finding`]s for every strict
//! rule the message breaks, so a conformance check can fail on them while the
//! harness still reads the message. Encoding writes exactly what the value
//! holds, which lets a suite send a deliberately malformed message (a wrong
//! `Content-Length`, a missing header) when it wants to.

use std::fmt;

/// A message-level rule the peer broke (the shared finding type; SIP
/// findings are errors). The message was still decoded.
pub use crate::finding::Finding;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message is empty")]
    Empty,
    #[error("no blank line ends the header section")]
    NoHeaderEnd,
    #[error("header section is not valid UTF-8 at byte {0}")]
    NotUtf8(usize),
    #[error("malformed start line {0:?}")]
    StartLine(String),
    #[error("malformed header line {0:?}")]
    HeaderLine(String),
    #[error("Content-Length {0:?} is not a number")]
    ContentLength(String),
    #[error("body is truncated: Content-Length says {declared} bytes, {available} arrived")]
    Truncated { declared: usize, available: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// Ordered, case-preserving header list. Lookups are case-insensitive and
/// understand the compact forms of RFC 3261 §7.3.3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

/// Expand a compact header name (RFC 3261 §7.3.3, RFC 3265 §7.2) to its full form.
pub fn canonical_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "e" | "E" => "Content-Encoding",
        "k" | "K" => "Supported",
        "s" | "S" => "Subject",
        "o" | "O" => "Event",
        other => other,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    canonical_name(a).eq_ignore_ascii_case(canonical_name(b))
}

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Replace the first header of that name (keeping its position) or append it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| same_name(n, name)) {
            slot.1 = value;
        } else {
            self.0.push((name.to_string(), value));
        }
    }
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_string(), value.into()));
    }
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !same_name(n, name));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub start: StartLine,
    /// `SIP/2.0` on every message this crate builds; kept as received.
    pub version: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// The result of [`SipMessage::parse`]: the message, the strict-rule findings,
/// and how many bytes of the input it consumed.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub message: SipMessage,
    pub findings: Vec<Finding>,
    pub consumed: usize,
}

fn find_header_end(data: &[u8]) -> Option<(usize, usize)> {
    if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((p, p + 4));
    }
    data.windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| (p, p + 2))
}

impl SipMessage {
    pub fn request(method: &str, uri: impl Into<String>) -> Self {
        SipMessage {
            start: StartLine::Request {
                method: method.to_string(),
                uri: uri.into(),
            },
            version: "SIP/2.0".into(),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    pub fn response(code: u16, reason: impl Into<String>) -> Self {
        SipMessage {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            version: "SIP/2.0".into(),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Parse one message from a datagram (or from the front of a stream buffer
    /// that is known to hold a whole message).
    ///
    /// RFC 3261 §18.3: "If there are additional bytes in the transport packet
    /// beyond the end of the body, they MUST be discarded." We discard them and
    /// report it; a body shorter than Content-Length is an error.
    pub fn parse(data: &[u8]) -> Result<Parsed, ParseError> {
        let mut findings = Vec::new();
        // RFC 3261 §7.5: implementations SHOULD ignore CRLFs before the start line.
        let lead = data
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let data_all = data;
        let data = &data[lead..];
        if data.is_empty() {
            return Err(ParseError::Empty);
        }
        let (head_end, body_start) = find_header_end(data).ok_or(ParseError::NoHeaderEnd)?;
        let head = std::str::from_utf8(&data[..head_end])
            .map_err(|e| ParseError::NotUtf8(lead + e.valid_up_to()))?;
        if !head.contains("\r\n") && head.contains('\n') {
            findings.push(Finding::error(
                "sip.bare-lf",
                "RFC 3261 §7: lines are terminated by CRLF",
                "lines end in LF, not CRLF",
            ));
        }
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().unwrap_or_default();
        let (start, version) = parse_start_line(first)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                // Header folding (RFC 3261 §7.3.1): continuation of the previous value.
                match headers.last_mut() {
                    Some((_, v)) => {
                        v.push(' ');
                        v.push_str(line.trim());
                    }
                    None => return Err(ParseError::HeaderLine(line.to_string())),
                }
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::HeaderLine(line.to_string()))?;
            let name = name.trim_end();
            if name.is_empty() || name.contains(' ') {
                return Err(ParseError::HeaderLine(line.to_string()));
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let headers = Headers(headers);
        let rest = &data[body_start..];
        let body_len = match headers.get("Content-Length") {
            Some(v) => {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| ParseError::ContentLength(v.to_string()))?;
                if n > rest.len() {
                    return Err(ParseError::Truncated {
                        declared: n,
                        available: rest.len(),
                    });
                }
                if n < rest.len() {
                    findings.push(Finding::error("sip.body-longer-than-content-length", "RFC 3261 §18.3: additional bytes beyond the body MUST be discarded", format!(
                            "{} bytes follow the headers but Content-Length is {n}; the extra bytes were discarded",
                            rest.len()
                        )));
                }
                n
            }
            None => {
                findings.push(Finding::error(
                    "sip.no-content-length",
                    "RFC 3261 §20.14: Content-Length SHOULD be used on UDP and MUST on TCP",
                    "no Content-Length header",
                ));
                rest.len()
            }
        };
        for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if !headers.contains(required) {
                findings.push(Finding::error(
                    "sip.missing-header",
                    "RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are mandatory",
                    format!("mandatory header {required} is missing"),
                ));
            }
        }
        let consumed = lead + body_start + body_len;
        debug_assert!(consumed <= data_all.len());
        Ok(Parsed {
            message: SipMessage {
                start,
                version,
                headers,
                body: rest[..body_len].to_vec(),
            },
            findings,
            consumed,
        })
    }

    /// Write the message exactly as held: no header is added or corrected.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(format!("{method} {uri} {}\r\n", self.version).as_bytes())
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(format!("{} {code} {reason}\r\n", self.version).as_bytes())
            }
        }
        for (n, v) in &self.headers.0 {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(256 + self.body.len());
        self.encode(&mut v);
        v
    }

    /// Set Content-Length from the body (call last when building a message).
    pub fn with_content_length(mut self) -> Self {
        self.headers
            .set("Content-Length", self.body.len().to_string());
        self
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            _ => None,
        }
    }
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            _ => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            _ => None,
        }
    }
    /// The CSeq method: for a response, the method of the request it answers.
    pub fn cseq(&self) -> Option<super::header::CSeq> {
        self.headers
            .get("CSeq")
            .and_then(super::header::CSeq::parse)
    }
    pub fn call_id(&self) -> Option<&str> {
        self.headers.get("Call-ID")
    }
    /// One line naming the message, for logs: `REGISTER sip:...` or `401 Unauthorized`.
    pub fn summary(&self) -> String {
        match &self.start {
            StartLine::Request { method, uri } => format!("{method} {uri}"),
            StartLine::Response { code, reason } => format!("{code} {reason}"),
        }
    }
}

impl fmt::Display for SipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn parse_start_line(line: &str) -> Result<(StartLine, String), ParseError> {
    let bad = || ParseError::StartLine(line.to_string());
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut it = rest.splitn(3, ' ');
        let ver = it.next().ok_or_else(bad)?;
        let code = it.next().ok_or_else(bad)?;
        let reason = it.next().unwrap_or("");
        if code.len() != 3 {
            return Err(bad());
        }
        let code: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&code) {
            return Err(bad());
        }
        return Ok((
            StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            format!("SIP/{ver}"),
        ));
    }
    let mut it = line.split(' ');
    let method = it.next().ok_or_else(bad)?;
    let uri = it.next().ok_or_else(bad)?;
    let ver = it.next().ok_or_else(bad)?;
    if it.next().is_some()
        || method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._!%*+`'~".contains(&b))
        || uri.is_empty()
        || !ver.starts_with("SIP/")
    {
        return Err(bad());
    }
    Ok((
        StartLine::Request {
            method: method.to_string(),
            uri: uri.to_string(),
        },
        ver.to_string(),
    ))
}

/// Could `data` be the start of a SIP message? `false` as soon as the
/// first token holds a byte no method or `SIP/2.0` could contain.
fn plausible_start(data: &[u8]) -> bool {
    const MAX_TOKEN: usize = 32;
    for (i, &b) in data.iter().enumerate().take(MAX_TOKEN + 1) {
        if b == b' ' {
            return i > 0;
        }
        let ok = b.is_ascii_alphanumeric() || b"-._!%*+`'~/".contains(&b);
        if !ok || i == MAX_TOKEN {
            return false;
        }
    }
    true
}

/// Splits a byte stream (SIP over TCP) into messages by Content-Length
/// (RFC 3261 §18.3: "the Content-Length header field MUST be used with
/// stream oriented transports").
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

/// One framed item from a stream.
#[derive(Debug, Clone)]
pub enum Framed {
    /// The raw bytes of one message and its parse.
    Message(Vec<u8>, Box<Result<Parsed, ParseError>>),
    /// RFC 5626 §3.5.1 keepalive (CRLF CRLF ping).
    Keepalive,
}

impl StreamFramer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Next whole message, or `None` until more bytes arrive. A message whose
    /// header section cannot be read is returned as an error and the buffer is
    /// dropped up to the blank line, so one bad message does not stall the
    /// connection forever.
    pub fn next_item(&mut self) -> Option<Framed> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Some(Framed::Keepalive);
        }
        let lead = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if lead == self.buf.len() {
            return None;
        }
        if !plausible_start(&self.buf[lead..]) {
            // Not SIP: hand the bytes up (to the next blank line, or all of
            // them) instead of waiting for a header end that may never come.
            let end = find_header_end(&self.buf[lead..])
                .map(|(_, e)| lead + e)
                .unwrap_or(self.buf.len());
            let raw: Vec<u8> = self.buf.drain(..end).collect();
            let parsed = SipMessage::parse(&raw);
            return Some(Framed::Message(raw, Box::new(parsed)));
        }
        let (_, body_start) = find_header_end(&self.buf[lead..])?;
        let body_start = lead + body_start;
        let head = String::from_utf8_lossy(&self.buf[..body_start]);
        let cl = head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            if same_name(n.trim(), "Content-Length") {
                Some(v.trim().parse::<usize>().ok())
            } else {
                None
            }
        });
        let total = match cl {
            Some(Some(n)) => body_start + n,
            // Missing or unreadable Content-Length on a stream: the message
            // ends at the blank line; the parse reports what is wrong.
            _ => body_start,
        };
        if self.buf.len() < total {
            return None;
        }
        let raw: Vec<u8> = self.buf.drain(..total).collect();
        let mut parsed = SipMessage::parse(&raw);
        if let (Ok(p), None) = (&mut parsed, cl) {
            p.findings.retain(|f| f.code != "sip.no-content-length");
            p.findings.push(Finding::error(
                "sip.no-content-length-on-stream",
                "RFC 3261 §18.3: Content-Length MUST be used with stream oriented transports",
                "no Content-Length on a stream transport; framed at the blank line",
            ));
        }
        Some(Framed::Message(raw, Box::new(parsed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:130909115229300920@10.64.49.44:7100 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.64.49.218:7100;rport;branch=z9hG4bK4162288924\r\n\
From: <sip:130909113319427420@10.64.49.218:7100>;tag=382068091\r\n\
To: <sip:130909113319427420@10.64.49.218:7100>\r\n\
Call-ID: 143225205\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:130909113319427420@10.64.49.218:7100>\r\n\
Max-Forwards: 70\r\n\
User-Agent: Hikvision\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_spec_register_and_reencodes_identically() {
        let p = SipMessage::parse(REGISTER).unwrap();
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        assert_eq!(p.message.method(), Some("REGISTER"));
        assert_eq!(p.message.headers.get("expires"), Some("7200"));
        assert_eq!(p.message.cseq().unwrap().seq, 1);
        assert_eq!(p.message.to_bytes(), REGISTER);
        assert_eq!(p.consumed, REGISTER.len());
    }

    #[test]
    fn keeps_non_utf8_body_bytes() {
        let body = b"<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Name>\xc7\xb0\xc3\xc5</Name>";
        let mut m = SipMessage::request("MESSAGE", "sip:a@b");
        m.headers.push("Call-ID", "1");
        m.body = body.to_vec();
        let m = m.with_content_length();
        let p = SipMessage::parse(&m.to_bytes()).unwrap();
        assert_eq!(p.message.body, body);
    }

    #[test]
    fn body_longer_than_content_length_is_a_finding() {
        let mut raw = REGISTER.to_vec();
        raw.extend_from_slice(b"garbage");
        let p = SipMessage::parse(&raw).unwrap();
        assert!(p.message.body.is_empty());
        assert_eq!(p.findings[0].code, "sip.body-longer-than-content-length");
    }

    #[test]
    fn truncated_body_is_an_error() {
        let raw = b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert!(matches!(
            SipMessage::parse(raw),
            Err(ParseError::Truncated {
                declared: 10,
                available: 3
            })
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        for g in [
            &b"\x00\x01\x02"[..],
            b"",
            b"hello world\r\n\r\n",
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(SipMessage::parse(g).is_err(), "{g:?}");
        }
    }

    #[test]
    fn compact_and_folded_headers() {
        let raw =
            b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\ni: abc\r\nSubject: a\r\n b\r\nl: 0\r\n\r\n";
        let p = SipMessage::parse(raw).unwrap();
        assert_eq!(p.message.call_id(), Some("abc"));
        assert_eq!(p.message.headers.get("Via"), Some("SIP/2.0/UDP h"));
        assert_eq!(p.message.headers.get("subject"), Some("a b"));
    }

    #[test]
    fn stream_framer_hands_up_garbage_at_once() {
        let mut f = StreamFramer::default();
        f.push(b"\x00\x01\x02garbage\xff");
        match f.next_item() {
            Some(Framed::Message(raw, p)) => {
                assert_eq!(raw, b"\x00\x01\x02garbage\xff");
                assert!(p.is_err());
            }
            other => panic!("{other:?}"),
        }
        f.push(REGISTER);
        assert!(matches!(f.next_item(), Some(Framed::Message(_, p)) if p.is_ok()));
    }

    #[test]
    fn stream_framer_splits_and_joins() {
        let mut f = StreamFramer::default();
        let mut two = REGISTER.to_vec();
        two.extend_from_slice(b"\r\n\r\n");
        two.extend_from_slice(REGISTER);
        let (a, b) = two.split_at(100);
        f.push(a);
        assert!(f.next_item().is_none());
        f.push(b);
        assert!(matches!(f.next_item(), Some(Framed::Message(..))));
        assert!(matches!(f.next_item(), Some(Framed::Keepalive)));
        assert!(matches!(f.next_item(), Some(Framed::Message(..))));
        assert!(f.next_item().is_none());
    }
}
