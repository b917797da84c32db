//! An SDP body: parse, run the GB/T 28181 checks, re-encode.
#![no_main]
use camcert::proto::sdp::SessionDescription;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = SessionDescription::parse(data) {
        let sdp = &parsed.sdp;
        let _ = sdp.check();
        let _ = sdp.ssrc();
        let _ = sdp.media_params();
        for m in sdp.media() {
            let _ = m.rtpmaps();
            let _ = m.setup();
        }
        let _ = sdp.to_bytes();
    }
});
