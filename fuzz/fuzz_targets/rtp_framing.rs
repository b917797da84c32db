//! RTP over TCP (RFC 4571 length prefixes) and the RTP header parser.
#![no_main]
use camcert::proto::rtp::{FramingDecoder, RtpPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = RtpPacket::parse(data);
    let mut dec = FramingDecoder::new();
    for chunk in data.chunks(97) {
        dec.feed(chunk);
        while let Some(p) = dec.next_packet() {
            match p {
                Ok(packet) => {
                    let _ = RtpPacket::parse(&packet);
                }
                Err(_) => break,
            }
        }
    }
});
