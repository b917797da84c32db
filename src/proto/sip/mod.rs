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
    let mut b = String::with_capacity(BRANCH_COOKIE.len() + 10);
    b.push_str(BRANCH_COOKIE);
    push_digits(&mut b, rng.gen_range(0..10_000_000_000u64), 10);
    b
}

pub fn new_tag(rng: &mut impl Rng) -> String {
    let mut t = String::with_capacity(10);
    push_digits(&mut t, rng.gen_range(100_000_000..4_000_000_000u64), 1);
    t
}

pub fn new_call_id(rng: &mut impl Rng) -> String {
    let mut c = String::with_capacity(16);
    push_hex(&mut c, &rng.gen::<u64>().to_be_bytes());
    c
}

/// `n` in decimal, zero-padded to at least `width` digits (at most 20),
/// appended to `out`: what `format!("{n:0width$}")` writes, without the
/// formatting machinery (these identifiers are minted for every request
/// of a 10,000-camera fleet).
pub fn push_digits(out: &mut String, n: u64, width: usize) {
    let (digits, at) = decimal(n, width);
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// The ASCII digits of `n`, zero-padded to `width` (at most 20): they are
/// `buf[at..]` of the returned `(buf, at)`.
pub fn decimal(mut n: u64, width: usize) -> ([u8; 20], usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    (digits, at.min(digits.len() - width.min(digits.len())))
}

/// `bytes` in lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// `bytes` in lower-case hexadecimal, appended to `out` (through a stack
/// buffer: `hex::encode` goes a char at a time into a fresh String).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    out.reserve(bytes.len() * 2);
    for chunk in bytes.chunks(buf.len() / 2) {
        let text = &mut buf[..chunk.len() * 2];
        if hex::encode_to_slice(chunk, text).is_ok() {
            // Only ASCII hex digits were written.
            out.push_str(std::str::from_utf8(text).unwrap_or_default());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn digits_and_hex_are_what_format_writes(n: u64, width in 0usize..24, bytes: Vec<u8>) {
            let mut s = String::from("x");
            push_digits(&mut s, n, width);
            prop_assert_eq!(&s[1..], format!("{n:0w$}", w = width.min(20)));
            let mut h = String::new();
            push_hex(&mut h, &bytes);
            prop_assert_eq!(h, hex::encode(&bytes));
        }
    }

    #[test]
    fn minted_identifiers_keep_their_shape() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let b = new_branch(&mut rng);
            assert!(b.starts_with(BRANCH_COOKIE) && b.len() == 17, "{b}");
            let t = new_tag(&mut rng);
            assert!(
                (9..=10).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit()),
                "{t}"
            );
            let c = new_call_id(&mut rng);
            assert!(
                c.len() == 16 && c.bytes().all(|c| c.is_ascii_hexdigit()),
                "{c}"
            );
        }
    }
}
