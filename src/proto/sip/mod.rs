//! SIP (RFC 3261) as GB/T 28181 uses it: message codec, stream framing,
//! typed header views, digest authentication, the addressing quirks a
//! reader recovers from (`quirks`), and the helpers that build
//! requests and responses. No I/O: bytes in, values out.

pub mod digest;
pub mod header;
pub mod message;
pub mod quirks;

pub use header::{AuthParams, CSeq, NameAddr, SipUri, Via};
pub use message::{
    Finding, Framed, Headers, ParseError, Parsed, SipMessage, StartLine, StreamFault, StreamFramer,
    DEFAULT_MAX_MESSAGE,
};

use rand::Rng;

/// RFC 3261 §8.1.1.7: branch IDs start with the magic cookie `z9hG4bK`.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

pub fn new_branch(rng: &mut impl Rng) -> String {
    format!("{BRANCH_COOKIE}{:010}", rng.gen_range(0..10_000_000_000u64))
}

pub fn new_tag(rng: &mut impl Rng) -> String {
    format!("{}", rng.gen_range(100_000_000..4_000_000_000u64))
}

pub fn new_call_id(rng: &mut impl Rng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

/// The reason phrase RFC 3261 §21 gives a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        423 => "Interval Too Brief",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Start a response to `req` (RFC 3261 §8.2.6.2): Via, From, Call-ID and
/// CSeq copied, To copied with `to_tag` added when it has none.
pub fn response_to(req: &SipMessage, code: u16, to_tag: Option<&str>) -> SipMessage {
    let mut r = SipMessage::response(code, reason_phrase(code));
    for v in req.headers.get_all("Via") {
        r.headers.push("Via", v);
    }
    for h in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.headers.get(h) {
            let mut v = v.to_string();
            if h == "To" {
                if let Some(tag) = to_tag {
                    if NameAddr::parse(&v)
                        .and_then(|n| n.tag().map(str::to_string))
                        .is_none()
                    {
                        v.push_str(";tag=");
                        v.push_str(tag);
                    }
                }
            }
            r.headers.push(h, v);
        }
    }
    r
}
