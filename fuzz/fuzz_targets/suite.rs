//! A suite file's text, against the GB/T 28181 requirement catalog.
#![no_main]
use std::path::Path;
use std::sync::{Arc, OnceLock};

use camcert::suite::load::{load_catalog, parse_suite};
use camcert::suite::Catalog;
use libfuzzer_sys::fuzz_target;

fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let file =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/gb28181/requirements.yaml");
            Arc::new(load_catalog(&file).expect("the GB/T 28181 catalog loads"))
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_suite(Path::new("fuzz.yaml"), text, || Ok(catalog()));
    }
});
