//! Stream framing under hostile input: SIP over TCP (Content-Length) and
//! RTP over TCP (RFC 4571). Whatever the split, the same messages come out,
//! and no input makes a framer hand up bytes from inside a body as a message.

use camcert::proto::rtp::{encode_frame, FramingDecoder};
use camcert::proto::sip::{Framed, SipMessage, StreamFramer};
use proptest::prelude::*;

/// A message whose body may itself look like SIP (a request, a header end,
/// a Content-Length line).
fn wire_message(call_id: u32, body: &[u8]) -> Vec<u8> {
    let mut m = SipMessage::request("MESSAGE", "sip:34020000002000000001@3402000000");
    m.headers
        .push("Via", "SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1");
    m.headers.push("From", "<sip:a@b>;tag=1");
    m.headers.push("To", "<sip:c@d>");
    m.headers.push("Call-ID", call_id.to_string());
    m.headers.push("CSeq", "1 MESSAGE");
    m.body = body.to_vec();
    m.with_content_length().to_bytes()
}

const HIDDEN: &[u8] = b"BYE sip:hidden SIP/2.0\r\nCall-ID: hidden\r\nContent-Length: 0\r\n\r\n";

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (prop::collection::vec(any::<u8>(), 0..50), 0usize..3).prop_map(|(mut pad, n)| {
            for _ in 0..n {
                pad.extend_from_slice(b"\r\n\r\n");
                pad.extend_from_slice(HIDDEN);
            }
            pad
        }),
    ]
}

fn frame_all(stream: &[u8], cuts: &[usize], limit: usize) -> Vec<Framed> {
    let mut f = StreamFramer::new(limit);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts[i % cuts.len()].clamp(1, rest.len());
        f.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
        while let Some(x) = f.next_item() {
            out.push(x);
        }
    }
    out
}

fn raw_of(items: &[Framed]) -> Vec<Vec<u8>> {
    items
        .iter()
        .map(|x| match x {
            Framed::Message(raw, _) => raw.clone(),
            Framed::Keepalive => b"<keepalive>".to_vec(),
            Framed::Broken(f) => format!("<broken {f:?}>").into_bytes(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any split of a stream of valid messages (bodies that hide requests
    /// included) and keepalives yields exactly those messages, whole.
    #[test]
    fn any_split_yields_the_same_messages(
        bodies in prop::collection::vec((body(), any::<bool>()), 1..6),
        cuts in prop::collection::vec(1usize..400, 1..30),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, (b, ka)) in bodies.iter().enumerate() {
            if *ka {
                stream.extend_from_slice(b"\r\n\r\n");
                expected.push(b"<keepalive>".to_vec());
            }
            let m = wire_message(i as u32, b);
            stream.extend_from_slice(&m);
            expected.push(m);
        }
        let whole = raw_of(&frame_all(&stream, &[stream.len()], 1 << 20));
        let split = raw_of(&frame_all(&stream, &cuts, 1 << 20));
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(&split, &expected);
        for item in frame_all(&stream, &cuts, 1 << 20) {
            if let Framed::Message(_, p) = item {
                let p = p.as_ref().as_ref().unwrap();
                prop_assert_ne!(p.message.call_id(), Some("hidden"));
            }
        }
    }

    /// Whatever precedes a message (garbage, broken lengths, a prefix of
    /// another message), nothing handed up is a proper suffix of one of the
    /// message bodies that hides a request: the hidden request never appears
    /// as a message of its own.
    #[test]
    fn no_input_hands_up_a_hidden_request(
        prefix in prop::collection::vec(any::<u8>(), 0..120),
        cl in prop_oneof![Just(String::new()), any::<u64>().prop_map(|n| n.to_string()), "[0-9+ -]{0,24}"],
        pad in 0usize..64,
        cuts in prop::collection::vec(1usize..300, 1..20),
        limit in 64usize..4096,
    ) {
        let mut body = vec![b'p'; pad];
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(HIDDEN);
        let mut stream = prefix.clone();
        stream.extend_from_slice(b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: outer\r\n");
        if !cl.is_empty() {
            stream.extend_from_slice(format!("Content-Length: {cl}\r\n").as_bytes());
        } else {
            stream.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(&body);
        for item in frame_all(&stream, &cuts, limit) {
            if let Framed::Message(raw, p) = item {
                prop_assert!(!raw.starts_with(b"BYE sip:hidden"), "{:?}", String::from_utf8_lossy(&raw));
                if let Ok(p) = p.as_ref() {
                    prop_assert_ne!(p.message.call_id(), Some("hidden"));
                }
            }
        }
    }

    /// A framer never buffers more than its limit plus one read.
    #[test]
    fn buffer_stays_bounded(data in prop::collection::vec(any::<u8>(), 0..3000), limit in 64usize..1024) {
        let mut f = StreamFramer::new(limit);
        for c in data.chunks(100) {
            f.push(c);
            while f.next_item().is_some() {}
            prop_assert!(f.buffered().len() <= limit + 100);
        }
    }

    /// RFC 4571: any split yields the same packets, and a packet is never a
    /// suffix of another (every packet comes out exactly as framed).
    #[test]
    fn rfc4571_any_split_same_packets(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..600), 1..8),
        cuts in prop::collection::vec(1usize..700, 1..20),
    ) {
        let mut wire = Vec::new();
        for p in &packets {
            wire.extend_from_slice(&encode_frame(p).unwrap());
        }
        let mut d = FramingDecoder::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            d.feed(&rest[..n]);
            rest = &rest[n..];
            i += 1;
            while let Some(p) = d.next_packet() {
                got.push(p.unwrap().to_vec());
            }
        }
        prop_assert_eq!(got, packets);
        prop_assert_eq!(d.buffered(), 0);
    }

    /// RFC 4571 on arbitrary bytes: every packet handed up is exactly the
    /// length its prefix announced, and the bytes consumed add up to what was
    /// fed (nothing is skipped or re-read).
    #[test]
    fn rfc4571_arbitrary_bytes_are_consumed_exactly(
        data in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(1usize..300, 1..10),
    ) {
        let mut d = FramingDecoder::new();
        let mut consumed = 0usize;
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            d.feed(&rest[..n]);
            rest = &rest[n..];
            i += 1;
            while let Some(p) = d.next_packet() {
                let at = consumed;
                let len = usize::from(u16::from_be_bytes([data[at], data[at + 1]]));
                match p {
                    Ok(p) => {
                        prop_assert_eq!(p.len(), len);
                        prop_assert_eq!(&p[..], &data[at + 2..at + 2 + len]);
                        consumed += 2 + len;
                    }
                    Err(_) => {
                        prop_assert_eq!(len, 0);
                        consumed += 2;
                    }
                }
            }
        }
        prop_assert_eq!(consumed + d.buffered(), data.len());
    }
}
