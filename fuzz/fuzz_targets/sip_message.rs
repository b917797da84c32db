//! One SIP message from a datagram: parse, then re-encode what parsed.
#![no_main]
use camcert::proto::sip::SipMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = SipMessage::parse(data) {
        let _ = parsed.message.to_bytes();
    }
});
