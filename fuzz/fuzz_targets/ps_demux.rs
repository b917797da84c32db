//! An MPEG program stream, through the demuxer in chunks and, as RTP
//! payloads, through the stream validator.
#![no_main]
use std::time::Duration;

use camcert::proto::ps::demux::PsDemuxer;
use camcert::proto::ps::validate::{StreamValidator, ValidatorConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut demux = PsDemuxer::new().with_max_frame_size(64 * 1024);
    for chunk in data.chunks(1400) {
        demux.feed(chunk);
        while demux.poll().is_some() {}
    }
    demux.flush();
    while demux.poll().is_some() {}

    // The same bytes as a sequence of RTP packets, cut at each 0xFF 0xFE.
    let mut v = StreamValidator::new(ValidatorConfig::new(0x0102_0304, vec![0x1b]));
    let mut at = Duration::ZERO;
    let mut rest = data;
    while !rest.is_empty() {
        let cut = rest
            .windows(2)
            .position(|w| w == [0xFF, 0xFE])
            .unwrap_or(rest.len());
        v.push_packet(&rest[..cut], at);
        at += Duration::from_millis(40);
        rest = &rest[(cut + 2).min(rest.len())..];
    }
    let _ = v.finish();
});
