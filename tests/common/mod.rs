//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::{RunResult, Status};
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run suites against the built-in peers with `faults` switched on.
pub async fn run_builtin(paths: &[&str], faults: &[&str], filters: &[&str]) -> RunResult {
    let paths: Vec<PathBuf> = paths.iter().map(|p| root().join(p)).collect();
    let suites = load::load_all(&paths).expect("suites load");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        peer_faults: faults.iter().map(|s| s.to_string()).collect(),
        filters: filters.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run")
}

/// IDs of the cases that did not pass (deduplicated across transports).
pub fn failed_ids(r: &RunResult) -> Vec<String> {
    let mut v: Vec<String> = r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| c.id.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}
