//! Time to parse the SIP messages a load run handles most: a registrar's
//! 401 challenge (Kamailio's shape) and a camera's REGISTER with digest
//! credentials. The fleet parses two answers per registration, so this is
//! a share of its CPU per registration.
//!
//!   cargo bench --bench sip

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use camcert::proto::sip::message::SipMessage;

const CHALLENGE: &[u8] = b"SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 127.0.0.1:40001;rport=40001;branch=z9hG4bK1234567890\r\n\
From: <sip:34020000001320000001@3402000000>;tag=1234567890\r\n\
To: <sip:34020000001320000001@3402000000>;tag=b27e1a1d33761e85846fc98f5f3a7e58.1a2b\r\n\
Call-ID: 0123456789abcdef\r\n\
CSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"3402000000\", nonce=\"ZBx2YmQ7Y2VhYmZkNTk3ZjEyMzQ1Njc4OQ==\", qop=\"auth\"\r\n\
Server: kamailio (5.8.5 (x86_64/linux))\r\n\
Content-Length: 0\r\n\r\n";

const REGISTER: &[u8] = b"REGISTER sip:34020000002000000001@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:40001;rport;branch=z9hG4bK1234567891\r\n\
From: <sip:34020000001320000001@3402000000>;tag=1234567890\r\n\
To: <sip:34020000001320000001@3402000000>\r\n\
Call-ID: 0123456789abcdef\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:34020000001320000001@127.0.0.1:40001>\r\n\
Authorization: Digest username=\"34020000001320000001\", realm=\"3402000000\", nonce=\"ZBx2YmQ7Y2VhYmZkNTk3ZjEyMzQ1Njc4OQ==\", uri=\"sip:34020000002000000001@127.0.0.1:5060\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n\
Max-Forwards: 70\r\n\
User-Agent: camcert load\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip parse");
    g.throughput(Throughput::Elements(1));
    for (name, msg) in [
        ("401 challenge", CHALLENGE),
        ("REGISTER with credentials", REGISTER),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| SipMessage::parse(std::hint::black_box(msg)).expect("parses"))
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
