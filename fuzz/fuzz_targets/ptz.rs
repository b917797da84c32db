//! A PTZCmd value as it arrives in a DeviceControl body.
#![no_main]
use camcert::proto::gb28181::ptz::PtzCmd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((cmd, _)) = PtzCmd::decode_lenient(&text) {
        let _ = cmd.to_hex();
    }
    let _ = PtzCmd::from_hex(&text);
    if let Ok(b) = <[u8; 8]>::try_from(data) {
        let _ = PtzCmd::from_bytes(&b);
    }
});
