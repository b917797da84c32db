//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use camcert::report::{Failure, RunResult, Status};
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Units of cases the runs of one test binary run at a time, all runs
/// together. A test runs several runs side by side (one per fault), each run
/// runs its units side by side (`-j`), and the units mostly wait on protocol
/// timers; this bound keeps a debug build on a small machine from starving
/// the timers it checks. `CAMCERT_TEST_JOBS` overrides it.
pub fn job_pool() -> Arc<tokio::sync::Semaphore> {
    static POOL: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::env::var("CAMCERT_TEST_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32usize);
        Arc::new(tokio::sync::Semaphore::new(n.max(1)))
    })
    .clone()
}

/// Run suites against the built-in peers with `faults` switched on, units
/// side by side (bounded by [`job_pool`]).
pub async fn run_builtin(paths: &[&str], faults: &[&str], filters: &[&str]) -> RunResult {
    run_builtin_jobs(paths, faults, filters, None).await.0
}

/// [`run_builtin`] with `-j jobs` (`None`: the default); also gives the
/// results.json the run left.
pub async fn run_builtin_jobs(
    paths: &[&str],
    faults: &[&str],
    filters: &[&str],
    jobs: Option<usize>,
) -> (RunResult, serde_json::Value) {
    let paths: Vec<PathBuf> = paths.iter().map(|p| root().join(p)).collect();
    let suites = load::load_all(&paths).expect("suites load");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: dir.path().to_path_buf(),
        peer_faults: faults.iter().map(|s| s.to_string()).collect(),
        filters: filters.iter().map(|s| s.to_string()).collect(),
        jobs,
        job_pool: Some(job_pool()),
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run");
    let written = std::fs::read(dir.path().join("results.json")).expect("results.json");
    (
        r,
        serde_json::from_slice(&written).expect("results.json parses"),
    )
}

/// Each case run's ID, transport and status, in report order.
pub fn verdicts(r: &RunResult) -> Vec<(String, String, String)> {
    r.cases
        .iter()
        .map(|c| {
            let status = serde_json::to_value(c.status).expect("status");
            let status = status.as_str().expect("status is a string").to_string();
            (c.id.clone(), c.transport.clone(), status)
        })
        .collect()
}

/// [`verdicts`] as a results.json holds them.
pub fn verdicts_written(json: &serde_json::Value) -> Vec<(String, String, String)> {
    let s = |v: &serde_json::Value| v.as_str().expect("a string").to_string();
    json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| (s(&c["id"]), s(&c["transport"]), s(&c["status"])))
        .collect()
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

/// Runs `suites` against the built-in peers once per fault, `parallel` runs
/// at a time (the units of all of them share [`job_pool`]), and asserts that
/// each fault fails exactly its cases and that a strict run then exits 1.
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
    wrong.sort();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Whether `bin` is installed. When it is not, the test is skipped with a
/// note, unless CAMCERT_INTEROP is set (CI), where that is an error.
pub fn available(bin: &str) -> bool {
    let ok = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CAMCERT_INTEROP").is_err(),
            "{bin} is required when CAMCERT_INTEROP is set (run ci/install-deps.sh)"
        );
        eprintln!("skipped: {bin} is not installed (run ci/install-deps.sh)");
    }
    ok
}

/// A port free for both UDP and TCP on loopback now, for a program that
/// must be told its port before it binds it (Kamailio, baresip).
pub fn free_port() -> u16 {
    use std::net::{TcpListener, UdpSocket};
    for _ in 0..50 {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port");
}

/// A child process killed when the test ends, with its scratch folder and
/// the port it serves.
pub struct Daemon {
    pub child: std::process::Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// A file the daemon wrote in its folder (its log), or nothing.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

/// Kamailio from Debian on a free loopback port, as `ci/interop/kamailio.cfg`
/// sets it up (a digest registrar and proxy with one `password` for every
/// user); returns once it accepts TCP.
pub fn start_kamailio(password: &str) -> Daemon {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = std::fs::read_to_string(root().join("ci/interop/kamailio.cfg"))
        .unwrap()
        .replace("CAMCERT_PORT", &port.to_string())
        .replace("CAMCERT_PASSWORD", password);
    let cfg_path = dir.path().join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
    let child = Command::new("kamailio")
        .arg("-f")
        .arg(&cfg_path)
        .args(["-DD", "-E", "-w"])
        .arg(dir.path())
        .arg("-P")
        .arg(dir.path().join("kamailio.pid"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kamailio starts");
    let k = Daemon { child, dir, port };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "kamailio did not start: {}",
            k.log("kamailio.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    k
}
