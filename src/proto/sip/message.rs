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
pub struct Headers(pub Vec<(HeaderName, String)>);

/// A header's name as written. The names nearly every message carries, in
/// their usual spelling, are shared static strings rather than one
/// allocation each per parsed message ([`header_name`]); any other
/// spelling is kept as its own string, byte for byte.
pub type HeaderName = std::borrow::Cow<'static, str>;

/// `name` as a [`HeaderName`]: a static string where it is spelled as one
/// of the usual names, else a copy.
pub fn header_name(name: &str) -> HeaderName {
    // A match on the string: the compiler tells the names apart by
    // length first, so a name costs one or two comparisons.
    let usual: &'static str = match name {
        "Via" => "Via",
        "From" => "From",
        "To" => "To",
        "Call-ID" => "Call-ID",
        "CSeq" => "CSeq",
        "Contact" => "Contact",
        "Content-Length" => "Content-Length",
        "Content-Type" => "Content-Type",
        "Max-Forwards" => "Max-Forwards",
        "User-Agent" => "User-Agent",
        "Server" => "Server",
        "Expires" => "Expires",
        "Date" => "Date",
        "WWW-Authenticate" => "WWW-Authenticate",
        "Authorization" => "Authorization",
        "Proxy-Authenticate" => "Proxy-Authenticate",
        "Proxy-Authorization" => "Proxy-Authorization",
        "Allow" => "Allow",
        "Supported" => "Supported",
        "Subject" => "Subject",
        "Event" => "Event",
        "Subscription-State" => "Subscription-State",
        "Record-Route" => "Record-Route",
        "Route" => "Route",
        "Accept" => "Accept",
        "Call-Id" => "Call-Id",
        "Cseq" => "Cseq",
        "v" => "v",
        "f" => "f",
        "t" => "t",
        "i" => "i",
        "m" => "m",
        "l" => "l",
        "c" => "c",
        _ => return std::borrow::Cow::Owned(name.to_string()),
    };
    std::borrow::Cow::Borrowed(usual)
}

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
    // Only a one-letter name can be a compact form.
    if a.len() > 1 && b.len() > 1 {
        return a.eq_ignore_ascii_case(b);
    }
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
            self.0.push((header_name(name), value));
        }
    }
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((header_name(name), value.into()));
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

/// Where the header section ends: the earliest CRLF CRLF (or bare LF LF) in
/// `data`, as (end of the last header line, first body byte). Taking the
/// earliest of the two means the answer never depends on how much of the
/// body has arrived yet.
fn find_header_end(data: &[u8]) -> Option<(usize, usize)> {
    find_header_end_from(data, 0)
}

/// The headers RFC 3261 §8.1.1 makes mandatory that a parse checks for,
/// noted as their names (full or compact, any case) go by.
#[derive(Default)]
struct Mandatory {
    via: bool,
    from: bool,
    to: bool,
    call_id: bool,
    cseq: bool,
}

impl Mandatory {
    /// Note `name`; whether it is Content-Length.
    fn note(&mut self, name: &str) -> bool {
        let name = canonical_name(name);
        let is = |full: &str| name.eq_ignore_ascii_case(full);
        match name.len() {
            2 => self.to |= is("To"),
            3 => self.via |= is("Via"),
            4 => {
                self.from |= is("From");
                self.cseq |= is("CSeq");
            }
            7 => self.call_id |= is("Call-ID"),
            14 => return is("Content-Length"),
            _ => {}
        }
        false
    }

    fn list(&self) -> [(&'static str, bool); 5] {
        [
            ("Via", self.via),
            ("From", self.from),
            ("To", self.to),
            ("Call-ID", self.call_id),
            ("CSeq", self.cseq),
        ]
    }
}

/// [`find_header_end`] that starts looking at `from` (bytes before it are
/// known to hold no terminator that ends before `from + 3`).
fn find_header_end_from(data: &[u8], from: usize) -> Option<(usize, usize)> {
    // Every terminator holds a line feed: jump from one to the next
    // (`memchr`) rather than looking at every byte. At the line feed `k`,
    // CRLFCRLF would start at `k - 1` and LFLF at `k`; the earlier one
    // wins, as a byte-by-byte scan from `from` would find it.
    let mut at = from;
    while let Some(k) = memchr::memchr(b'\n', data.get(at..)?).map(|k| at + k) {
        if k > from && data[k - 1] == b'\r' && data[k + 1..].starts_with(b"\r\n") {
            return Some((k - 1, k + 3));
        }
        if data.get(k + 1) == Some(&b'\n') {
            return Some((k, k + 2));
        }
        at = k + 1;
    }
    None
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
        // Room for a usual message's headers, so the list grows once.
        let mut headers: Vec<(HeaderName, String)> = Vec::with_capacity(16);
        // Which mandatory headers came, and where the first Content-Length
        // is: one look at each name as it is read.
        let mut seen = Mandatory::default();
        let mut content_length = None;
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
            if seen.note(name) && content_length.is_none() {
                content_length = Some(headers.len());
            }
            headers.push((header_name(name), value.trim().to_string()));
        }
        let headers = Headers(headers);
        let rest = &data[body_start..];
        let body_len = match content_length.map(|k| headers.0[k].1.as_str()) {
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
        for (required, present) in seen.list() {
            if !present {
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
            ["SIP/", ver].concat(),
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

/// The largest message a [`StreamFramer`] accepts unless told otherwise.
pub const DEFAULT_MAX_MESSAGE: usize = 1024 * 1024;

/// Splits a byte stream (SIP over TCP) into messages by Content-Length
/// (RFC 3261 §18.3: "the Content-Length header field MUST be used with
/// stream oriented transports").
///
/// Framing is strict: a message is exactly its header section plus the
/// number of bytes its Content-Length declares, computed with checked
/// arithmetic. Bytes inside a body are never looked at for a message start,
/// so a body that hides a request cannot make that request arrive. When the
/// stream cannot be framed safely (a message larger than the limit, a header
/// section that does not end within it, a Content-Length that is not one
/// decimal number) the framer hands up [`Framed::Broken`] once and then
/// nothing more: the connection must be closed, never re-synchronised.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_message: usize,
    /// Header search resumes here (bytes before it hold no terminator).
    scanned: usize,
    /// The pending message's length, once its header section is read.
    pending: Option<PendingHead>,
    broken: bool,
    /// Handed up as [`Framed::Broken`] by the next call.
    breaking: Option<StreamFault>,
}

#[derive(Debug, Clone, Copy)]
struct PendingHead {
    /// Bytes from the buffer start to the end of the body.
    total: usize,
    has_length: bool,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new(DEFAULT_MAX_MESSAGE)
    }
}

/// One framed item from a stream.
#[derive(Debug, Clone)]
pub enum Framed {
    /// The raw bytes of one message and its parse.
    Message(Vec<u8>, Box<Result<Parsed, ParseError>>),
    /// RFC 5626 §3.5.1 keepalive (CRLF CRLF ping).
    Keepalive,
    /// The stream cannot be framed any further: close the connection.
    Broken(StreamFault),
}

/// Why a stream cannot be framed any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFault {
    /// The header section plus the declared body exceed the size limit.
    TooLarge {
        declared: u64,
        header: usize,
        limit: usize,
    },
    /// No blank line ends the header section within the size limit.
    HeaderTooLong { buffered: usize, limit: usize },
    /// A Content-Length that is not a decimal number that fits 64 bits, is
    /// folded, or disagrees with another Content-Length in the same message.
    BadContentLength { value: String },
    /// Bytes that cannot start a SIP message where one must start: where the
    /// next message begins can no longer be known.
    NotSip,
}

impl StreamFault {
    /// The finding to report against the peer that sent the stream.
    pub fn finding(&self) -> Finding {
        match self {
            StreamFault::TooLarge {
                declared,
                header,
                limit,
            } => Finding::error(
                "sip.stream-message-too-large",
                "RFC 3261 §18.3: a stream is framed by Content-Length",
                format!(
                    "Content-Length declares {declared} bytes after a {header}-byte header section; \
                     the limit for one message is {limit} bytes; connection closed"
                ),
            ),
            StreamFault::HeaderTooLong { buffered, limit } => Finding::error(
                "sip.stream-header-too-long",
                "RFC 3261 §7: a blank line ends the header section",
                format!(
                    "{buffered} bytes arrived without the blank line that ends a header section; \
                     the limit for one message is {limit} bytes; connection closed"
                ),
            ),
            StreamFault::BadContentLength { value } => Finding::error(
                "sip.stream-bad-content-length",
                "RFC 3261 §20.14: Content-Length = 1*DIGIT; §18.3: it MUST be used with stream oriented transports",
                format!(
                    "Content-Length {value:?} cannot frame a stream (expected one decimal \
                     number); connection closed"
                ),
            ),
            StreamFault::NotSip => Finding::error(
                "sip.stream-not-sip",
                "RFC 3261 §18.3: a stream is framed by Content-Length",
                "bytes that cannot start a SIP message arrived where a message must \
                          start; the stream cannot be framed any further; connection closed",
            ),
        }
    }
}

impl std::fmt::Display for StreamFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.finding().message)
    }
}

/// The Content-Length of a header section, as the framer must read it:
/// `Ok(None)` when there is none, an error when it cannot frame a stream.
fn stream_content_length(head: &[u8]) -> Result<Option<u64>, StreamFault> {
    let head = String::from_utf8_lossy(head);
    let mut found: Option<&str> = None;
    let mut last_was_length = false;
    for line in head.split('\n').skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with(' ') || line.starts_with('\t') {
            if last_was_length {
                return Err(StreamFault::BadContentLength {
                    value: format!("{} {}", found.unwrap_or_default(), line.trim()),
                });
            }
            continue;
        }
        last_was_length = false;
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !same_name(name.trim_end(), "Content-Length") {
            continue;
        }
        let value = value.trim();
        if let Some(prev) = found {
            if prev != value && prev.parse::<u64>().ok() != value.parse::<u64>().ok() {
                return Err(StreamFault::BadContentLength {
                    value: format!("{prev}, {value}"),
                });
            }
        }
        found = Some(value);
        last_was_length = true;
    }
    let Some(v) = found else { return Ok(None) };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StreamFault::BadContentLength {
            value: v.to_string(),
        });
    }
    v.parse::<u64>()
        .map(Some)
        .map_err(|_| StreamFault::BadContentLength {
            value: v.to_string(),
        })
}

impl StreamFramer {
    /// A framer that refuses messages (header section and body) larger than
    /// `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max_message: max_message.max(64),
            scanned: 0,
            pending: None,
            broken: false,
            breaking: None,
        }
    }

    pub fn max_message(&self) -> usize {
        self.max_message
    }

    pub fn push(&mut self, data: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(data);
        }
    }

    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Has part of a message (anything but CR and LF) arrived?
    pub fn in_message(&self) -> bool {
        self.buf.iter().any(|b| *b != b'\r' && *b != b'\n')
    }

    /// Has the pending message's header section arrived in full?
    pub fn header_complete(&self) -> bool {
        self.pending.is_some()
    }

    /// Did the stream break ([`Framed::Broken`] was handed up)?
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.scanned = 0;
        self.pending = None;
        self.buf.drain(..n).collect()
    }

    fn fail(&mut self, fault: StreamFault) -> Option<Framed> {
        self.broken = true;
        self.buf = Vec::new();
        self.pending = None;
        Some(Framed::Broken(fault))
    }

    /// Next whole message, or `None` until more bytes arrive. Bytes that
    /// cannot start a SIP message are handed up at once (to the next blank
    /// line) so the parse reports them, and the stream breaks; a stream that cannot be framed any
    /// further yields [`Framed::Broken`] once and then `None` for ever.
    pub fn next_item(&mut self) -> Option<Framed> {
        if self.broken {
            return None;
        }
        if let Some(f) = self.breaking.take() {
            return self.fail(f);
        }
        if self.pending.is_none() {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.take(4);
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
                // them) as evidence, then break: what follows may be the rest
                // of a body, and must never be read as a message.
                let end = find_header_end(&self.buf[lead..])
                    .map(|(_, e)| lead + e)
                    .unwrap_or(self.buf.len());
                let raw = self.take(end);
                let parsed = SipMessage::parse(&raw);
                self.breaking = Some(StreamFault::NotSip);
                return Some(Framed::Message(raw, Box::new(parsed)));
            }
            let from = self.scanned.max(lead);
            let Some((_, end)) = find_header_end_from(&self.buf, from) else {
                self.scanned = self.buf.len().saturating_sub(3).max(lead);
                if self.buf.len() > self.max_message {
                    let buffered = self.buf.len();
                    let limit = self.max_message;
                    return self.fail(StreamFault::HeaderTooLong { buffered, limit });
                }
                return None;
            };
            let body_start = end;
            if body_start > self.max_message {
                let limit = self.max_message;
                return self.fail(StreamFault::HeaderTooLong {
                    buffered: body_start,
                    limit,
                });
            }
            let declared = match stream_content_length(&self.buf[lead..body_start]) {
                Ok(d) => d,
                Err(f) => return self.fail(f),
            };
            let total = match declared {
                // Missing Content-Length on a stream: the message ends at the
                // blank line; the parse reports what is wrong.
                None => Some(body_start as u64),
                Some(n) => (body_start as u64).checked_add(n),
            };
            let total = match total {
                Some(t) if t <= self.max_message as u64 => t as usize,
                _ => {
                    let limit = self.max_message;
                    return self.fail(StreamFault::TooLarge {
                        declared: declared.unwrap_or(0),
                        header: body_start - lead,
                        limit,
                    });
                }
            };
            self.pending = Some(PendingHead {
                total,
                has_length: declared.is_some(),
            });
        }
        let head = self.pending?;
        if self.buf.len() < head.total {
            return None;
        }
        let raw = self.take(head.total);
        let mut parsed = SipMessage::parse(&raw);
        if let (Ok(p), false) = (&mut parsed, head.has_length) {
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

    #[test]
    fn header_names_keep_their_spelling_whether_shared_or_not() {
        use std::borrow::Cow;
        assert!(matches!(header_name("Call-ID"), Cow::Borrowed("Call-ID")));
        assert!(matches!(header_name("v"), Cow::Borrowed("v")));
        for own in ["call-id", "VIA", "X-Vendor", "Via "] {
            let n = header_name(own);
            assert!(matches!(n, Cow::Owned(_)), "{own}");
            assert_eq!(n, own);
        }
        let raw = b"SIP/2.0 200 OK\r\nvia: SIP/2.0/UDP h\r\nCall-ID: a\r\nX-Odd: 1\r\nContent-Length: 0\r\n\r\n";
        let p = SipMessage::parse(raw).unwrap();
        assert_eq!(
            p.message.to_bytes(),
            raw.to_vec(),
            "names written back as received"
        );
    }

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
        // What follows may be the rest of a body: the stream is over.
        f.push(REGISTER);
        assert!(matches!(
            f.next_item(),
            Some(Framed::Broken(StreamFault::NotSip))
        ));
        assert!(f.next_item().is_none());
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

#[cfg(test)]
mod header_end_tests {
    use super::*;
    use proptest::prelude::*;

    /// The end of the header block found the slow way: every position.
    fn byte_by_byte(data: &[u8], from: usize) -> Option<(usize, usize)> {
        (from..data.len()).find_map(|i| {
            if data[i..].starts_with(b"\n\n") {
                Some((i, i + 2))
            } else if data[i..].starts_with(b"\r\n\r\n") {
                Some((i, i + 4))
            } else {
                None
            }
        })
    }

    proptest! {
        #[test]
        fn jumping_between_line_feeds_finds_what_every_byte_would(
            data in proptest::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'a']), 0..40),
            from in 0usize..40,
        ) {
            let from = from.min(data.len());
            prop_assert_eq!(find_header_end_from(&data, from), byte_by_byte(&data, from));
        }
    }

    #[test]
    fn mandatory_headers_are_known_in_full_and_compact_form_in_any_case() {
        let mut m = Mandatory::default();
        for name in ["v", "F", "to", "i", "cseq", "Max-Forwards"] {
            m.note(name);
        }
        assert!(m.list().iter().all(|(_, seen)| *seen), "{:?}", m.list());
        let mut m = Mandatory::default();
        assert!(m.note("l") && m.note("content-length") && !m.note("Content-Type"));
        assert_eq!(m.list().iter().filter(|(_, seen)| *seen).count(), 0);
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    fn message(body: &[u8]) -> Vec<u8> {
        let mut m = SipMessage::request("MESSAGE", "sip:34020000002000000001@3402000000");
        for (n, v) in [
            ("Via", "SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1"),
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:c@d>"),
            ("Call-ID", "outer"),
            ("CSeq", "1 MESSAGE"),
            ("Content-Type", "text/plain"),
        ] {
            m.headers.push(n, v);
        }
        m.body = body.to_vec();
        m.with_content_length().to_bytes()
    }

    fn drain(f: &mut StreamFramer) -> Vec<Framed> {
        let mut out = Vec::new();
        while let Some(x) = f.next_item() {
            out.push(x);
        }
        out
    }

    const HIDDEN: &[u8] = b"REGISTER sip:hidden SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\n\
From: <sip:x@y>;tag=2\r\nTo: <sip:x@y>\r\nCall-ID: hidden\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn padded_body_hiding_a_request_is_one_message() {
        let mut body = vec![b'x'; 300 * 1024];
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(HIDDEN);
        let wire = message(&body);
        let mut f = StreamFramer::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(65536) {
            f.push(chunk);
            got.extend(drain(&mut f));
        }
        assert_eq!(got.len(), 1, "{got:?}");
        match &got[0] {
            Framed::Message(raw, p) => {
                assert_eq!(raw, &wire);
                let p = p.as_ref().as_ref().unwrap();
                assert_eq!(p.message.call_id(), Some("outer"));
                assert_eq!(p.message.body, body);
            }
            other => panic!("{other:?}"),
        }
        assert!(f.buffered().is_empty());
    }

    #[test]
    fn content_length_near_u64_max_breaks_the_stream() {
        for declared in [u64::MAX, u64::MAX - 10, (1u64 << 63) + 7] {
            let mut f = StreamFramer::default();
            f.push(
                format!(
                    "MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: {declared}\r\n\r\n"
                )
                .as_bytes(),
            );
            f.push(HIDDEN);
            match f.next_item() {
                Some(Framed::Broken(StreamFault::TooLarge {
                    declared: d, limit, ..
                })) => {
                    assert_eq!(d, declared);
                    assert_eq!(limit, DEFAULT_MAX_MESSAGE);
                    let finding = StreamFault::TooLarge {
                        declared: d,
                        header: 10,
                        limit,
                    }
                    .finding();
                    assert!(finding.message.contains(&declared.to_string()));
                    assert!(finding.message.contains(&limit.to_string()));
                }
                other => panic!("{declared}: {other:?}"),
            }
            // Nothing after the break: the hidden request never surfaces.
            f.push(HIDDEN);
            assert!(f.next_item().is_none());
            assert!(f.is_broken());
        }
    }

    #[test]
    fn unreadable_content_length_breaks_the_stream() {
        for cl in [
            "Content-Length: 18446744073709551616",
            "Content-Length: +5",
            "Content-Length: -1",
            "Content-Length: 5 5",
            "Content-Length: 0x10",
            "Content-Length:",
            "Content-Length: 3\r\nl: 4",
            "Content-Length: 3\r\n 4",
        ] {
            let mut f = StreamFramer::default();
            f.push(format!("MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n{cl}\r\n\r\nabcd").as_bytes());
            f.push(HIDDEN);
            assert!(
                matches!(
                    f.next_item(),
                    Some(Framed::Broken(StreamFault::BadContentLength { .. }))
                ),
                "{cl:?}"
            );
            assert!(f.next_item().is_none(), "{cl:?}");
        }
        // The same value twice is one length.
        let mut f = StreamFramer::default();
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 2\r\nl: 2\r\n\r\nab");
        assert!(matches!(f.next_item(), Some(Framed::Message(raw, _)) if raw.ends_with(b"ab")));
    }

    #[test]
    fn ten_megabyte_body_arrives_whole_under_a_large_enough_limit() {
        let body = vec![b'z'; 10 * 1024 * 1024];
        let wire = message(&body);
        let mut f = StreamFramer::new(16 * 1024 * 1024);
        let mut got = Vec::new();
        for chunk in wire.chunks(65536) {
            f.push(chunk);
            got.extend(drain(&mut f));
        }
        assert_eq!(got.len(), 1);
        let Framed::Message(raw, p) = &got[0] else {
            panic!("{:?}", got[0])
        };
        assert_eq!(raw.len(), wire.len());
        let p = p.as_ref().as_ref().expect("not truncated");
        assert_eq!(p.message.body.len(), body.len());
    }

    #[test]
    fn ten_megabyte_body_over_the_default_limit_is_too_large_not_truncated() {
        let body = vec![b'z'; 10 * 1024 * 1024];
        let wire = message(&body);
        let mut f = StreamFramer::default();
        f.push(&wire[..4096]);
        match f.next_item() {
            Some(Framed::Broken(StreamFault::TooLarge {
                declared, limit, ..
            })) => {
                assert_eq!(declared, body.len() as u64);
                assert_eq!(limit, DEFAULT_MAX_MESSAGE);
            }
            other => panic!("{other:?}"),
        }
        // Dropped, not buffered.
        f.push(&wire[4096..]);
        assert!(f.buffered().is_empty());
    }

    #[test]
    fn header_section_without_end_breaks_at_the_limit() {
        let mut f = StreamFramer::new(4096);
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\n");
        for _ in 0..200 {
            f.push(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            if let Some(x) = f.next_item() {
                assert!(matches!(
                    x,
                    Framed::Broken(StreamFault::HeaderTooLong { limit: 4096, .. })
                ));
                assert!(f.next_item().is_none());
                return;
            }
        }
        panic!("never broke");
    }

    #[test]
    fn header_end_is_the_earliest_terminator() {
        // LF-only header; a CRLF CRLF inside the body must not move the end.
        let wire = b"MESSAGE sip:a@b SIP/2.0\nCall-ID: 1\nContent-Length: 6\n\nab\r\n\r\n";
        for cut in 1..wire.len() {
            let mut f = StreamFramer::default();
            f.push(&wire[..cut]);
            let mut got = drain(&mut f);
            f.push(&wire[cut..]);
            got.extend(drain(&mut f));
            assert_eq!(got.len(), 1, "cut {cut}: {got:?}");
            assert!(matches!(&got[0], Framed::Message(raw, _) if raw == wire));
        }
    }

    #[test]
    fn partial_message_state() {
        let mut f = StreamFramer::default();
        f.push(b"\r\n");
        assert!(!f.in_message());
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\n");
        assert!(f.in_message() && !f.header_complete());
        f.push(b"Content-Length: 4\r\n\r\nab");
        assert!(f.next_item().is_none());
        assert!(f.header_complete());
        f.push(b"cd");
        assert!(matches!(f.next_item(), Some(Framed::Message(..))));
        assert!(!f.in_message() && !f.header_complete());
    }
}
