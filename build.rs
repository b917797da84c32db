//! Compiles proto/hedgw.proto (HEDGW, Hemu OpenAPI 附录D) with protox, so
//! no protoc binary is needed, and keeps the descriptor set: the wire-level
//! checks in src/proto/hedgw/wire.rs read field numbers, types and labels
//! from it, so the .proto is their one source.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=proto/hedgw.proto");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let fds = protox::compile(["hedgw.proto"], ["proto"]).expect("proto/hedgw.proto compiles");
    let bytes = prost::Message::encode_to_vec(&fds);
    std::fs::write(out.join("hedgw_descriptor.bin"), bytes).expect("write descriptor");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost-build generates the HEDGW messages");
}
