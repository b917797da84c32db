//! A MANSCDP body in any encoding: lenient decode, then re-encode.
#![no_main]
use camcert::proto::gb28181::manscdp::{Charset, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = Message::decode(data) {
        let _ = decoded.message.encode(Charset::Gb2312);
    }
});
