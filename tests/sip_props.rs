//! Property tests for the SIP codec: encode → parse is the identity for any
//! message the codec can represent (non-UTF-8 bodies included), and no input
//! makes the parser or the stream framer panic.

use camcert::proto::sip::{Framed, Headers, SipMessage, StartLine, StreamFramer};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,15}"
}

fn header_value() -> impl Strategy<Value = String> {
    // No CR/LF; no leading/trailing whitespace (the parser trims it).
    "[!-~]([ -~]{0,40}[!-~])?"
}

fn message() -> impl Strategy<Value = SipMessage> {
    let start = prop_oneof![
        (token(), "sip:[0-9]{20}@[a-z0-9.]{1,20}(:[0-9]{1,5})?").prop_map(|(m, u)| {
            StartLine::Request {
                method: m.to_uppercase(),
                uri: u,
            }
        }),
        (100u16..700, "[A-Za-z][A-Za-z ]{0,20}[A-Za-z]")
            .prop_map(|(code, reason)| StartLine::Response { code, reason }),
    ];
    let headers = prop::collection::vec((token(), header_value()), 0..12);
    let body = prop::collection::vec(any::<u8>(), 0..300);
    (start, headers, body).prop_map(|(start, mut headers, body)| {
        headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("Content-Length") && !n.eq_ignore_ascii_case("l")
        });
        SipMessage {
            start,
            version: "SIP/2.0".into(),
            headers: Headers(headers.into_iter().map(|(n, v)| (n.into(), v)).collect()),
            body,
        }
        .with_content_length()
    })
}

proptest! {
    #[test]
    fn encode_then_parse_is_identity(m in message()) {
        let bytes = m.to_bytes();
        let p = SipMessage::parse(&bytes).unwrap();
        prop_assert_eq!(&p.message, &m);
        prop_assert_eq!(p.consumed, bytes.len());
        prop_assert_eq!(p.message.to_bytes(), bytes);
    }

    #[test]
    fn framer_reassembles_any_split(msgs in prop::collection::vec(message(), 1..5), cuts in prop::collection::vec(1usize..64, 1..40)) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend(m.to_bytes());
        }
        let mut f = StreamFramer::default();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            f.push(&rest[..n]);
            rest = &rest[n..];
            i += 1;
            while let Some(x) = f.next_item() {
                if let Framed::Message(_, p) = x {
                    got.push(p.unwrap().message);
                }
            }
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SipMessage::parse(&data);
        let mut f = StreamFramer::default();
        f.push(&data);
        for _ in 0..64 {
            if f.next_item().is_none() { break; }
        }
    }

    #[test]
    fn mutated_real_messages_never_panic(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let mut m = b"REGISTER sip:34020000002000000001@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1\r\nFrom: <sip:34020000001320000001@3402000000>;tag=1\r\nTo: <sip:34020000001320000001@3402000000>\r\nCall-ID: 1\r\nCSeq: 1 REGISTER\r\nAuthorization: Digest username=\"a\", realm=\"b\", nonce=\"c\", uri=\"d\", response=\"e\"\r\nContent-Length: 0\r\n\r\n".to_vec();
        let p = pos % m.len();
        m[p] = byte;
        m.truncate(cut.max(1).min(m.len()));
        if let Ok(p) = SipMessage::parse(&m) {
            for path in ["from.tag", "to.user", "via.branch", "auth.response", "cseq.seq", "expires", "uri.user"] {
                let _ = camcert::suite::fields::resolve(&p.message, path);
            }
        }
    }
}
