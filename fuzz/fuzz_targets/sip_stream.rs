//! SIP over a stream: the input is cut into segments at every byte 0xFF
//! (which never appears in a SIP header), fed to the framer one segment at
//! a time, and every framed item is taken out after each segment.
#![no_main]
use camcert::proto::sip::message::{Framed, StreamFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = StreamFramer::new(8 * 1024);
    for segment in data.split(|b| *b == 0xFF) {
        framer.push(segment);
        // A framed item consumes at least one byte, or breaks the stream
        // for good; the bound only guards the harness.
        for _ in 0..=data.len() {
            match framer.next_item() {
                Some(Framed::Broken(_)) | None => break,
                Some(_) => {}
            }
        }
        assert!(framer.buffered().len() <= data.len());
    }
});
