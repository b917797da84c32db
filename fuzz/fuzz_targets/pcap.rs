//! A capture file: read every frame, dissect it, and decode what it
//! carries (IP reassembly, TCP streams, SIP, RTP).
#![no_main]
use camcert::capture::decode::{dissect, Decoder};
use camcert::capture::read::read_capture;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(capture) = read_capture(data) else {
        return;
    };
    let mut decoder = Decoder::new();
    let mut last = 0;
    for f in &capture.frames {
        let _ = dissect(f.link, &f.data);
        decoder.push(f, &mut |_| {});
        last = f.number;
    }
    decoder.finish(last, &mut |_| {});
    let _ = decoder.flows();
});
