//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::{Failure, RunResult, Status};
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

/// The cases that did not pass, with their transport and failures, for an
/// assertion's message.
pub fn not_passed(r: &RunResult) -> Vec<(String, String, Vec<Failure>)> {
    r.cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| (c.id.clone(), c.transport.clone(), c.failures.clone()))
        .collect()
}

/// Every case passed, so a strict run exits 0.
pub fn assert_all_passed(r: &RunResult) {
    let bad = not_passed(r);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(r.exit_code(true), 0);
}

/// Runs `suites` against the clean built-in peers and asserts that `cases`
/// distinct cases ran, every run passed, and each left its pcap evidence.
pub async fn assert_clean_run_passes(suites: &[&str], cases: usize) {
    let r = run_builtin(suites, &[], &[]).await;
    let ids: std::collections::BTreeSet<_> = r.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases, "{ids:?}");
    assert_all_passed(&r);
    assert!(r.cases.iter().all(|c| c.pcap.is_some()));
}

/// Runs `suites` against the built-in peers once per fault, `parallel` runs at a
/// time, and asserts that each fault fails exactly its cases and that a strict
/// run then exits 1.
pub async fn assert_faults_fail_exactly(
    suites: &'static [&'static str],
    faults: &'static [(&'static str, &'static [&'static str])],
    parallel: usize,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut runs = tokio::task::JoinSet::new();
    for (fault, expected) in faults {
        let limit = limit.clone();
        runs.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let r = run_builtin(suites, &[fault], &[]).await;
            (*fault, *expected, r)
        });
    }
    let mut wrong = Vec::new();
    while let Some(done) = runs.join_next().await {
        let (fault, expected, r) = done.expect("run");
        let got = failed_ids(&r);
        if got != expected || r.exit_code(true) != 1 {
            wrong.push(format!(
                "fault {fault}: failed {got:?}, expected {expected:?}\n{:#?}",
                not_passed(&r)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
