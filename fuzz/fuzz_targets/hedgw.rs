//! HEDGW over a stream: length-prefixed frames cut into segments, each
//! frame decoded leniently and re-encoded, and the JSON `msg` reader on
//! the same bytes as text.
#![no_main]
use camcert::proto::hedgw::{frame::FrameDecoder, json, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = wire::decode(data);
    let _ = wire::encode(&d.message);
    let _ = d.summary();
    let _ = json::parse(&String::from_utf8_lossy(data), "fuzz");
    let mut frames = FrameDecoder::new(64 * 1024);
    for segment in data.chunks(61) {
        frames.push(segment);
        loop {
            match frames.next_frame() {
                Ok(Some(f)) => {
                    let _ = wire::decode(&f);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = frames.finish();
});
