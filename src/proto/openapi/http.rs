//! HTTP/1.1 framing for OpenAPI's short connections (§5.1: 连接方式
//! 短连接): one request, one response with `Content-Length`, then close.
//! Bounded: a head over [`MAX_HEAD`] or a body over [`MAX_BODY`] is an
//! error, never an allocation.

use std::fmt::Write as _;

/// Largest request or status line plus headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most header lines.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("body of {0} bytes is over {MAX_BODY}")]
    BodyTooLarge(u64),
    #[error("bad start line {0:?}")]
    StartLine(String),
    #[error("bad header line {0:?}")]
    Header(String),
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("bad Content-Length {0:?}")]
    ContentLength(String),
    #[error("Transfer-Encoding {0:?} is not supported; OpenAPI bodies carry Content-Length")]
    TransferEncoding(String),
}

/// Header lines in the order they came, names as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replace (or add) `name`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Request {
    /// A POST of `body` with the given content type.
    pub fn post(target: &str, host: &str, content_type: &str, body: Vec<u8>) -> Request {
        let mut headers = Headers::default();
        headers.set("Host", host);
        headers.set("Content-Type", content_type);
        Request {
            method: "POST".into(),
            target: target.into(),
            headers,
            body,
        }
    }

    /// The bytes on the wire; `Content-Length` always matches the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        write_headers(&mut s, &self.headers, self.body.len());
        let mut b = s.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// One complete request at the start of `buf` and its length, `None`
    /// while incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        let Some((start, headers, body_at)) = head(buf)? else {
            return Ok(None);
        };
        let mut parts = start.splitn(3, ' ');
        let (m, t, v) = (parts.next(), parts.next(), parts.next());
        let (Some(method), Some(target), Some(version)) = (m, t, v) else {
            return Err(HttpError::StartLine(start));
        };
        if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
            return Err(HttpError::StartLine(start.clone()));
        }
        // A request without Content-Length has no body (RFC 9112 §6.3).
        let (body, end) = if headers.get("content-length").is_none()
            && headers.get("transfer-encoding").is_none()
        {
            (Vec::new(), body_at)
        } else {
            match body(buf, body_at, &headers, false)? {
                Some(b) => b,
                None => return Ok(None),
            }
        };
        Ok(Some((
            Request {
                method: method.to_string(),
                target: target.to_string(),
                headers,
                body,
            },
            end,
        )))
    }
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: reason(status).into(),
            headers: Headers::default(),
            body: vec![],
        }
    }

    /// A 200 with a JSON body.
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        let mut r = Response::new(status);
        r.headers
            .set("Content-Type", "application/json;charset=UTF-8");
        r.body = serde_json::to_vec(v).unwrap_or_default();
        r
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        write_headers(&mut s, &self.headers, self.body.len());
        let mut b = s.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }

    /// One complete response at the start of `buf`. Without
    /// `Content-Length` the body runs to the end of `buf` (`eof`: the
    /// connection closed), else `None` until it does.
    pub fn parse(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>, HttpError> {
        let Some((start, headers, body_at)) = head(buf)? else {
            return Ok(None);
        };
        let mut parts = start.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status = parts.next().and_then(|s| s.parse::<u16>().ok());
        let (true, Some(status)) = (version.starts_with("HTTP/1."), status) else {
            return Err(HttpError::StartLine(start));
        };
        let reason = parts.next().unwrap_or("").to_string();
        let Some((body, end)) = body(buf, body_at, &headers, eof || status == 204)? else {
            return Ok(None);
        };
        Ok(Some((
            Response {
                status,
                reason,
                headers,
                body,
            },
            end,
        )))
    }
}

fn write_headers(s: &mut String, h: &Headers, len: usize) {
    for (n, v) in &h.0 {
        if n.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let _ = write!(s, "{n}: {v}\r\n");
    }
    let _ = write!(s, "Content-Length: {len}\r\n\r\n");
}

/// The start line, headers and where the body starts.
fn head(buf: &[u8]) -> Result<Option<(String, Headers, usize)>, HttpError> {
    let limit = buf.len().min(MAX_HEAD + 4);
    let Some(end) = buf[..limit].windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("").to_string();
    let mut headers = Headers::default();
    for line in lines {
        if headers.0.len() >= MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        // An obsolete folded line continues the previous value.
        if line.starts_with([' ', '\t']) {
            match headers.0.last_mut() {
                Some(h) => {
                    h.1.push(' ');
                    h.1.push_str(line.trim());
                    continue;
                }
                None => return Err(HttpError::Header(line.to_string())),
            }
        }
        let Some((n, v)) = line.split_once(':') else {
            return Err(HttpError::Header(line.to_string()));
        };
        if n.is_empty() || n.contains(' ') {
            return Err(HttpError::Header(line.to_string()));
        }
        headers.0.push((n.to_string(), v.trim().to_string()));
    }
    Ok(Some((start, headers, end + 4)))
}

fn body(
    buf: &[u8],
    at: usize,
    headers: &Headers,
    to_end: bool,
) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    if let Some(te) = headers.get("transfer-encoding") {
        return Err(HttpError::TransferEncoding(te.to_string()));
    }
    let len = match headers.get("content-length") {
        Some(v) => {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| HttpError::ContentLength(v.to_string()))?;
            if n > MAX_BODY as u64 {
                return Err(HttpError::BodyTooLarge(n));
            }
            n as usize
        }
        None if to_end => {
            let n = buf.len() - at;
            if n > MAX_BODY {
                return Err(HttpError::BodyTooLarge(n as u64));
            }
            n
        }
        None => return Ok(None),
    };
    let Some(end) = at.checked_add(len) else {
        return Err(HttpError::ContentLength(len.to_string()));
    };
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((buf[at..end].to_vec(), end)))
}

/// Reason phrases for the statuses OpenAPI uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        _ => "Status",
    }
}
