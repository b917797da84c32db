//! Executes cases. One executor per step kind; waits, timeouts and the
//! protocol-time scale live in one place ([`CaseRun::deadline`]). The cases
//! of a suite and transport share one session with the DUT (its endpoint,
//! the built-in peer when no target is given, and what is known of its
//! registration; see `dut_session.rs`); each case has its own evidence
//! capture.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;

use super::audit;
use super::fields::{decode_text, resolve};
use super::model::*;
use super::vars::{mask, Vars};
use super::{Case, Step, Suite};
use crate::capture::pcap::write_pcap;
use crate::finding::Finding;
use crate::peers::{self, PeerHandle};
use crate::proto::gb28181::device::{Device, DeviceConfig, DeviceFaults};
use crate::proto::gb28181::id::GbId;
use crate::proto::gb28181::manscdp::{self, Charset, ContentTypeMatch};
use crate::proto::gb28181::message::{build_request, RequestParams};
use crate::proto::gb28181::platform::{Platform, PlatformConfig, PlatformFaults, UpstreamConfig};
use crate::proto::gb28181::ptz::PtzCmd;
use crate::proto::gb28181::register::{
    build_register, format_date, host_port, parse_date, RegisterParams,
};
use crate::proto::sip::digest::{Algorithm, Challenge, Credentials};
use crate::proto::sip::{self, SipMessage, Via};
use crate::proto::Transport;
use crate::report::{
    escape_bytes, Candidate, CaseResult, Failure, FindingOut, MessageLog, PredicateMiss, RunResult,
    Severity, Status,
};
use crate::transport::{Endpoint, PeerAddr};

/// A real-time floor under every wait, so a tiny time scale never turns a
/// wait for a prompt answer into a race with the scheduler.
const MIN_REAL_WAIT: Duration = Duration::from_secs(2);
/// The floor under an `absent` wait. Nothing is awaited there, so a short
/// wait cannot race an answer; it can only miss a message that comes later
/// than this, which at the built-in peers' time scale means one that is
/// dozens of protocol seconds late.
const MIN_ABSENT_WAIT: Duration = Duration::from_millis(500);
/// `expect` waits this long (protocol time) unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time scale used with the built-in peers: 60 s of protocol time in 600 ms.
pub const BUILTIN_TIME_SCALE: f64 = 0.01;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The DUT. `None` starts the built-in reference peer for each case.
    pub target: Option<PeerAddr>,
    /// Where camcert listens when it plays the platform.
    pub listen: Option<SocketAddr>,
    pub vars: Vec<(String, String)>,
    pub filters: Vec<String>,
    /// Cases matching any of these do not run.
    pub skips: Vec<String>,
    pub report_dir: PathBuf,
    pub junit: Option<PathBuf>,
    pub time_scale: Option<f64>,
    /// Faults switched on in the built-in peer.
    pub peer_faults: Vec<String>,
    /// The strict profile: count optional and conditional failures in the
    /// exit code too, and judge every message as written, without the
    /// lenient reading's recoveries (a Request-URI naming the domain, a
    /// short `y=`, a quirky MANSCDP body): such a message does not match.
    pub strict: bool,
    /// Print each case as it finishes.
    pub verbose_terminal: bool,
    /// Skip cases that need an operator action against a real DUT (they are
    /// reported as skipped, with the reason).
    pub no_operator: bool,
    /// Run this command for an operator action instead of asking a person:
    /// `CMD ACTION DEVICE_ID`, also in `CAMCERT_ACTION` and
    /// `CAMCERT_DEVICE_ID`, with the note in `CAMCERT_NOTE` and the
    /// arguments in `CAMCERT_ARG_<NAME>`.
    pub operator_hook: Option<String>,
    /// `-j`: units of cases run at a time against the built-in peers (see
    /// [`effective_jobs`]); `None` picks a default from the CPU count.
    pub jobs: Option<usize>,
    /// Permits shared by several runs in one process (tests that run many
    /// at once): each unit holds one while it runs, on top of `jobs`.
    pub job_pool: Option<Arc<tokio::sync::Semaphore>>,
    /// `--update-golden`: `golden` checks write their files instead of
    /// comparing.
    pub update_golden: bool,
}

impl RunOptions {
    /// Whether `case` runs: it matches a `--filter` (or there is none) and
    /// no `--skip`.
    pub fn selects(&self, case: &Case) -> bool {
        (self.filters.is_empty() || self.filters.iter().any(|f| case.matches_filter(f)))
            && !self.skips.iter().any(|f| case.matches_filter(f))
    }
}

/// Check `--peer-fault` names against the peer each suite would start.
pub fn check_peer_faults(suites: &[Suite], faults: &[String]) -> Result<()> {
    for f in faults {
        let known = suites.iter().any(|s| match s.role {
            _ if s.protocol == Protocol::Hedgw => super::hedgw::knows_fault(s.role, f),
            _ if s.protocol == Protocol::Openapi => super::openapi::knows_fault(s.role, f),
            Role::Platform => DeviceFaults::default().set(f),
            Role::Device | Role::UpperPlatform => PlatformFaults::default().set(f),
        });
        if !known {
            bail!(
                "unknown --peer-fault {f:?}; reference camera faults: {}; reference platform faults: {}{}{}",
                DeviceFaults::NAMES.join(", "),
                PlatformFaults::NAMES.join(", "),
                super::hedgw::fault_help(suites),
                super::openapi::fault_help(suites)
            );
        }
    }
    Ok(())
}

/// Run every selected case; results are written to `report_dir` after each
/// case. `stop` set (Ctrl-C) ends the run after writing what finished.
///
/// The cases are planned into units (see [`plan`]): the cases of a suite
/// and transport that share one session with the DUT, and each case that
/// has a session of its own. Up to [`effective_jobs`] units run at a time,
/// started in plan order; the results keep the plan's order whatever order
/// they finish in, so a run with `-j 8` reports like one with `-j 1`.
pub async fn run(suites: &[Suite], opts: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunResult> {
    std::fs::create_dir_all(opts.report_dir.join("pcap"))
        .with_context(|| format!("creating {}", opts.report_dir.display()))?;
    let units = plan(suites, opts);
    let first_other_slot = units.iter().map(|u| u.cases.len()).sum::<usize>();
    let result = RunResult {
        tool: "camcert".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: chrono::Local::now().to_rfc3339(),
        finished_at: None,
        target: opts
            .target
            .map(|t| t.to_string())
            .unwrap_or_else(|| "built-in reference peers".into()),
        interrupted: false,
        settings: suites
            .iter()
            .filter(|s| {
                units.iter().any(|u| std::ptr::eq(u.suite, *s))
                    || (s.protocol == Protocol::Hedgw && s.cases.iter().any(|c| opts.selects(c)))
                    || (s.protocol == Protocol::Openapi && s.cases.iter().any(|c| opts.selects(c)))
            })
            .map(|s| suite_settings(s, opts))
            .collect(),
        cases: vec![],
        summary: Default::default(),
        suite_files: suites
            .iter()
            .map(|s| crate::report::SuiteFile::of(&s.file))
            .collect(),
    };
    let (sink, writer) = Sink::new(result, opts).spawn();
    let jobs = effective_jobs(opts);
    // Against one DUT, what it sent in an earlier unit's session (a request
    // it still retransmits because that case left it unanswered) is known
    // as such in the next: units then run one at a time.
    let carried: std::sync::Mutex<HashSet<String>> = Default::default();
    let carried = &carried;
    let mut futs: Vec<UnitFuture<'_>> = units
        .iter()
        .map(|u| {
            let (sink, stop) = (sink.clone(), stop.clone());
            Box::pin(async move {
                // Held while the unit runs: runs that share a pool (tests
                // running several at once) share its bound.
                let _shared = match &opts.job_pool {
                    Some(p) => Some(p.acquire().await.map_err(|e| anyhow!(e))?),
                    None => None,
                };
                run_unit(u, opts, stop, sink, carried).await
            }) as UnitFuture<'_>
        })
        .collect();
    // HEDGW suites: one unit per suite, after the GB/T 28181 slots.
    futs.extend(super::hedgw::units(
        suites,
        opts,
        first_other_slot,
        &sink,
        &stop,
    ));
    // OpenAPI suites: one unit per suite, after the HEDGW slots.
    futs.extend(super::openapi::units(
        suites,
        opts,
        first_other_slot,
        &sink,
        &stop,
    ));
    drop(sink);
    let interrupted = run_bounded(futs, jobs).await;
    let (mut sink, write_error) = writer.await.context("the results writer")?;
    let interrupted = interrupted?;
    if let Some(e) = write_error {
        return Err(e);
    }
    sink.print_rest();
    let mut result = sink.result;
    result.interrupted |= interrupted;
    result.finished_at = Some(chrono::Local::now().to_rfc3339());
    result.recount();
    result.write_json(&opts.report_dir)?;
    let junit = opts
        .junit
        .clone()
        .unwrap_or_else(|| opts.report_dir.join("junit.xml"));
    crate::report::junit::write(&result, &junit)?;
    Ok(result)
}

/// Default `-j` against the built-in peers. A unit spends its time waiting
/// on protocol timers (a full run of suites/gb28181 takes under a second of
/// CPU at the built-in time scale), so the bound is on sockets and tasks,
/// not on cores.
pub const DEFAULT_BUILTIN_JOBS: usize = 64;

/// How many units run at a time. Against a real DUT (`--target`) every unit
/// talks to the one device, and with a fixed `--listen` address every unit
/// would bind it: both run one unit at a time whatever `-j` says. Against
/// the built-in peers each unit starts peers of its own on ephemeral
/// loopback ports, so units are independent; the default is
/// [`DEFAULT_BUILTIN_JOBS`].
pub fn effective_jobs(opts: &RunOptions) -> usize {
    if opts.target.is_some() || opts.listen.is_some() {
        return 1;
    }
    opts.jobs.unwrap_or(DEFAULT_BUILTIN_JOBS).max(1)
}

/// Cases that run one after another, in one session with the DUT.
struct Unit<'a> {
    suite: &'a Suite,
    transport: Transport,
    /// Each case with its place in the run's results.
    cases: Vec<(&'a Case, usize)>,
    /// A shared session split up, after its first part: the session is
    /// brought to `registered` before the first case, as the cases before
    /// it in the one session of `-j 1` would have left it.
    prime: bool,
}

/// With more than one unit at a time against the built-in peers, the cases
/// of a shared session that keep it (`registered`, nothing broken) are split
/// into sessions of about this many, each with a reference peer of its own,
/// so that no one suite and transport holds up the end of the run.
pub const SHARD_CASES: usize = 3;

/// The run's units in start order. Results take the order of `-j 1`: per
/// suite and transport, first each case with a session of its own, then
/// those that share the session, the ones that break it (fresh
/// registration, reboot, unregister) last. With `-j 1` that is also the
/// order they run in: one unit per case with a session of its own, then
/// one for the shared session. With more units at a time against the
/// built-in peers, the shared session's cases that keep it are dealt
/// round-robin into sessions of about [`SHARD_CASES`] cases (each keeping
/// that order; each but the first brought to `registered` before its first
/// case), and the cases that break it follow the last of them in its
/// session, as they follow it with `-j 1`.
fn plan<'a>(suites: &'a [Suite], opts: &RunOptions) -> Vec<Unit<'a>> {
    let shard = effective_jobs(opts) > 1;
    let mut units = Vec::new();
    let mut slot = 0;
    for suite in suites {
        // Other protocols run in runners of their own (see `run`).
        if suite.protocol != Protocol::Gb28181 {
            continue;
        }
        let selected: Vec<&Case> = suite.cases.iter().filter(|c| opts.selects(c)).collect();
        let mut transports: Vec<Transport> = Vec::new();
        for c in &selected {
            for &t in &c.transports {
                if !transports.contains(&t) && opts.target.is_none_or(|x| x.transport == t) {
                    transports.push(t);
                }
            }
        }
        for transport in transports {
            let mut cases: Vec<&Case> = selected
                .iter()
                .copied()
                .filter(|c| c.transports.contains(&transport))
                .collect();
            // A case with peer settings of its own gets a reference peer
            // (and a session) of its own; so do the cases where camcert is
            // the device that are about the registration itself, and those
            // where camcert is the upper platform.
            // Those run first, so that the shared session is not left
            // unanswered while they run.
            let own = |c: &Case| match suite.role {
                Role::UpperPlatform => true,
                Role::Device if c.needs != Needs::Registered => true,
                _ => opts.target.is_none() && !c.peer.is_empty(),
            };
            cases.sort_by_key(|c| (!own(c), dut_session::disruption(c)));
            let mut shared = Vec::new();
            for c in cases {
                if own(c) {
                    units.push(Unit {
                        suite,
                        transport,
                        cases: vec![(c, slot)],
                        prime: false,
                    });
                } else {
                    shared.push((c, slot));
                }
                slot += 1;
            }
            // The cases that keep the session (`registered`, nothing
            // broken) are dealt round-robin; those after them, which break
            // it and depend on what came before, stay together after the
            // last of them, as in the one session.
            let calm = shared
                .iter()
                .take_while(|(c, _)| dut_session::disruption(c) == 0)
                .count();
            let (calm, tail) = shared.split_at(calm);
            let shards = if shard {
                calm.len().div_ceil(SHARD_CASES).max(1)
            } else {
                1
            };
            let last = calm.len().saturating_sub(1) % shards;
            for k in 0..shards {
                let mut cases: Vec<(&Case, usize)> =
                    calm.iter().skip(k).step_by(shards).copied().collect();
                if k == last {
                    cases.extend_from_slice(tail);
                }
                if !cases.is_empty() {
                    units.push(Unit {
                        suite,
                        transport,
                        cases,
                        prime: k > 0,
                    });
                }
            }
        }
    }
    units
}

pub(crate) type UnitFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + 'a>>;

/// Drive `units` in this task, at most `jobs` at a time, started in order.
/// Ok(true) when a unit was interrupted; the first error ends the run.
async fn run_bounded(units: Vec<UnitFuture<'_>>, jobs: usize) -> Result<bool> {
    let mut waiting = units.into_iter();
    let mut running: Vec<UnitFuture<'_>> = Vec::new();
    let mut interrupted = false;
    std::future::poll_fn(|cx| loop {
        while running.len() < jobs.max(1) {
            match waiting.next() {
                Some(u) => running.push(u),
                None => break,
            }
        }
        let before = running.len();
        let mut i = 0;
        while i < running.len() {
            match running[i].as_mut().poll(cx) {
                std::task::Poll::Ready(r) => {
                    // Keep the start order of the rest.
                    drop(running.remove(i));
                    match r {
                        Ok(x) => interrupted |= x,
                        Err(e) => return std::task::Poll::Ready(Err(e)),
                    }
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        if running.is_empty() && waiting.len() == 0 {
            return std::task::Poll::Ready(Ok(interrupted));
        }
        if running.len() == before {
            return std::task::Poll::Pending;
        }
        // A unit finished: start the next ones and poll them now.
    })
    .await
}

/// Run a unit's cases in one session; Ok(true) when `stop` ended it.
async fn run_unit(
    u: &Unit<'_>,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
    sink: Finished,
    carried: &std::sync::Mutex<HashSet<String>>,
) -> Result<bool> {
    let mut sess = DutSession::new();
    let one_dut = opts.target.is_some();
    if one_dut {
        sess.seen = std::mem::take(&mut *carried.lock().unwrap_or_else(|e| e.into_inner()));
    }
    if let (true, Some(&(first, _))) = (u.prime, u.cases.first()) {
        tokio::select! {
            _ = prime(u.suite, first, u.transport, opts, &mut sess) => {}
            _ = wait_flag(stop.clone()) => {
                sess.close().await;
                return Ok(true);
            }
        }
    }
    for &(case, slot) in &u.cases {
        if stop.load(Ordering::SeqCst) {
            sess.close().await;
            return Ok(true);
        }
        let r = tokio::select! {
            r = run_case(u.suite, case, u.transport, opts, &mut sess) => r,
            _ = wait_flag(stop.clone()) => {
                sess.close().await;
                return Ok(true);
            }
        };
        sink.send((slot, r))
            .map_err(|_| anyhow!("the results writer stopped"))?;
    }
    sess.close().await;
    if one_dut {
        *carried.lock().unwrap_or_else(|e| e.into_inner()) = std::mem::take(&mut sess.seen);
    }
    Ok(false)
}

/// Bring a new session to `registered` outside any case, the way a case
/// that needs it would (what is exchanged meanwhile is no case's), and keep
/// what a case would leave for the next one. A session that cannot get
/// there is left as it is: the first case then tries and reports why.
async fn prime(
    suite: &Suite,
    case: &Case,
    transport: Transport,
    opts: &RunOptions,
    sess: &mut DutSession,
) {
    let Ok(mut run) = setup(suite, case, transport, opts, sess).await else {
        return;
    };
    let _ = run.reach(Needs::Registered, sess, opts).await;
    if suite.role == Role::Platform {
        let quiet =
            crate::proto::scaled(Duration::from_secs(1), run.scale).max(Duration::from_millis(100));
        let _ = run.settle(sess, quiet, quiet * 3, false).await;
    }
    sess.peer = run.peer.take();
    sess.reg = match suite.role {
        Role::Device => dut_session::reg_after_device(&run.messages, sess.reg),
        _ => dut_session::reg_after(&run.messages, sess.reg),
    };
    sess.seen = std::mem::take(&mut run.seen);
    sess.ep = Some(run.ep);
}

/// Where a unit hands each finished case, with its place in the results.
pub(crate) type Finished = std::sync::mpsc::Sender<(usize, CaseResult)>;

/// Where finished cases go: the results in plan order, whatever order they
/// finish in, rewritten to results.json as they come; the terminal shows
/// them in plan order too, each as soon as every case before it finished.
struct Sink {
    result: RunResult,
    /// The plan slot of each of `result.cases` (ascending).
    slots: Vec<usize>,
    /// Cases finished but not yet printed, by slot.
    unprinted: std::collections::BTreeSet<usize>,
    next_print: usize,
    report_dir: PathBuf,
    verbose: bool,
}

/// The least time between two rewrites of results.json while cases finish;
/// a rewrite that takes longer spaces the next one twice its time. The
/// file holds the whole run so far, so rewriting it after every case of a
/// run with many cases side by side would keep a core busy.
const REWRITE_INTERVAL: Duration = Duration::from_millis(200);

impl Sink {
    fn new(result: RunResult, opts: &RunOptions) -> Sink {
        Sink {
            result,
            slots: Vec::new(),
            unprinted: Default::default(),
            next_print: 0,
            report_dir: opts.report_dir.clone(),
            verbose: opts.verbose_terminal,
        }
    }

    /// Take a finished case into its place, and print what is now in order.
    fn insert(&mut self, slot: usize, r: CaseResult) {
        let at = self.slots.partition_point(|&s| s < slot);
        self.slots.insert(at, slot);
        self.result.cases.insert(at, r);
        if self.verbose {
            self.unprinted.insert(slot);
            while self.unprinted.remove(&self.next_print) {
                let at = self.slots.partition_point(|&s| s < self.next_print);
                crate::report::terminal::print_case(&mut std::io::stdout(), &self.result.cases[at]);
                self.next_print += 1;
            }
        }
    }

    fn write(&mut self) -> Result<()> {
        self.result.recount();
        self.result.write_json(&self.report_dir)?;
        Ok(())
    }

    #[cfg(test)]
    fn put(&mut self, slot: usize, r: CaseResult) -> Result<()> {
        self.insert(slot, r);
        self.write()
    }

    /// After an interrupted run: the cases that finished after a gap.
    fn print_rest(&mut self) {
        if !self.verbose {
            return;
        }
        for slot in std::mem::take(&mut self.unprinted) {
            let at = self.slots.partition_point(|&s| s < slot);
            crate::report::terminal::print_case(&mut std::io::stdout(), &self.result.cases[at]);
        }
    }

    /// Run the sink on a thread of its own, off the tasks that run cases:
    /// it takes each finished case from the channel and rewrites
    /// results.json (at most every [`REWRITE_INTERVAL`], with every case
    /// that came meanwhile) until the channel closes; then it hands itself
    /// back with the first write error.
    fn spawn(
        mut self,
    ) -> (
        Finished,
        tokio::task::JoinHandle<(Sink, Option<anyhow::Error>)>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, CaseResult)>();
        let task = tokio::task::spawn_blocking(move || {
            let mut error = None;
            let mut next_write = Instant::now();
            let mut dirty = false;
            loop {
                let got = if dirty {
                    rx.recv_timeout(next_write.saturating_duration_since(Instant::now()))
                } else {
                    rx.recv()
                        .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected)
                };
                match got {
                    Ok((slot, r)) => {
                        self.insert(slot, r);
                        dirty = true;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if dirty && Instant::now() >= next_write {
                    let t = Instant::now();
                    if let Err(e) = self.write() {
                        error.get_or_insert(e);
                    }
                    dirty = false;
                    next_write = t + REWRITE_INTERVAL.max(t.elapsed() * 2);
                }
            }
            (self, error)
        });
        (tx, task)
    }
}

async fn wait_flag(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

enum Peer {
    Camera(PeerHandle<Device>),
    Platform(PeerHandle<Platform>),
}

/// A step that did not hold.
#[derive(Debug)]
struct StepFail {
    check: String,
    message: String,
    expected: Option<String>,
    received: Option<String>,
    /// The offending bytes, the messages that arrived while the step
    /// waited, and the step's other failures (boxed: most failures have
    /// none of them).
    extra: Option<Box<StepExtra>>,
}

#[derive(Debug, Default)]
struct StepExtra {
    bytes: Option<Vec<u8>>,
    /// The messages that arrived while the step waited, closest first.
    candidates: Vec<Candidate>,
    /// Further failures of the same step, judged after this one.
    more: Vec<StepFail>,
}

impl StepFail {
    fn new(check: &str, message: impl Into<String>) -> StepFail {
        StepFail {
            check: check.into(),
            message: message.into(),
            expected: None,
            received: None,
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut StepExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The failures after this one.
    fn more(&self) -> &[StepFail] {
        self.extra.as_ref().map_or(&[], |e| &e.more)
    }

    fn set_candidates(&mut self, c: Vec<Candidate>) {
        self.extra().candidates = c;
    }
    fn exp(mut self, e: impl Into<String>, r: impl Into<String>) -> StepFail {
        self.expected = Some(e.into());
        self.received = Some(r.into());
        self
    }

    /// The first failure, carrying the others; `None` when there are none.
    fn join(fails: Vec<StepFail>) -> Option<StepFail> {
        let mut it = fails.into_iter();
        let mut first = it.next()?;
        first.extra().more.extend(it);
        Some(first)
    }

    /// Every check that failed, as report failures of step `step`.
    fn into_failures(mut self, step: usize, location: &str) -> Vec<Failure> {
        let extra = self.extra.take().map(|e| *e).unwrap_or_default();
        let more = extra.more;
        let mut out = vec![Failure {
            step,
            location: location.to_string(),
            check: self.check,
            message: self.message,
            expected: self.expected,
            received: self.received,
            bytes: extra.bytes.as_deref().map(escape_bytes),
            candidates: extra.candidates,
        }];
        for m in more {
            out.extend(m.into_failures(step, location));
        }
        out
    }
}

/// The messages a step saw but did not take, scored by how many of the
/// step's conditions each met. At most [`Watch::LIMIT`] are kept (the best
/// scoring among them), so a long wait full of keepalives stays bounded.
#[derive(Default)]
struct Watch {
    seen: Vec<(usize, Candidate)>,
    dropped: usize,
}

impl Watch {
    const LIMIT: usize = 32;

    fn add(&mut self, met: usize, c: Candidate) {
        if self.seen.len() >= Self::LIMIT {
            // Make room by dropping the oldest of the lowest score.
            let lowest = self.seen.iter().map(|(s, _)| *s).min().unwrap_or(0);
            if met < lowest {
                self.dropped += 1;
                return;
            }
            if let Some(i) = self.seen.iter().position(|(s, _)| *s == lowest) {
                self.seen.remove(i);
                self.dropped += 1;
            }
        }
        self.seen.push((met, c));
    }

    fn len(&self) -> usize {
        self.seen.len() + self.dropped
    }

    /// The candidates in arrival order, the closest (most conditions met;
    /// the latest of equals) first and marked.
    fn finish(self) -> Vec<Candidate> {
        let mut seen = self.seen;
        let best = seen
            .iter()
            .enumerate()
            .max_by_key(|(i, (score, _))| (*score, *i))
            .map(|(i, _)| i);
        let mut out = Vec::with_capacity(seen.len());
        if let Some(i) = best {
            let (_, mut c) = seen.remove(i);
            c.closest = true;
            out.push(c);
        }
        out.extend(seen.into_iter().map(|(_, c)| c));
        out
    }
}

/// A message as a candidate line shows it: the start line, the CSeq method
/// for a response, and the MANSCDP CmdType for a body that has one.
fn candidate_summary(m: &SipMessage) -> String {
    let mut s = m.summary();
    if !m.is_request() {
        if let Some(c) = m.cseq() {
            s.push_str(&format!(" (to {})", c.method));
        }
    }
    if !m.body.is_empty() {
        if let Some(t) = resolve(m, "xml.CmdType") {
            s.push_str(&format!(" [{t}]"));
        }
    }
    s
}

/// Does the step say the findings on its messages are accepted?
fn step_allows_findings(s: &StepInput) -> bool {
    match s {
        StepInput::Expect(e) => e.allow_findings,
        StepInput::Collect(c) => c.allow_findings,
        StepInput::Invite(i) => i.allow_findings,
        StepInput::Answer(a) => a.allow_findings,
        StepInput::SessionEvent(e) => e.allow_findings,
        StepInput::Replay(r) => r.allow_findings,
        _ => false,
    }
}

/// The protocol rules judged on what the DUT sent, across the case.
#[derive(Default)]
struct AuditState {
    /// Messages already judged (a retransmission is judged once).
    judged: HashSet<u64>,
    /// Error-severity deviations not yet charged to a step: the message's
    /// summary, the deviation and the message's bytes.
    pending: Vec<(String, audit::Deviation, Vec<u8>)>,
}

/// Two findings that say the same thing; a media session's own findings
/// carry a `session.` prefix on the same code.
fn same_finding(a: &FindingOut, b: &FindingOut) -> bool {
    let code = |c: &str| c.strip_prefix("session.").unwrap_or(c).to_string();
    code(&a.code) == code(&b.code) && a.message == b.message
}

struct CaseRun<'a> {
    suite: &'a Suite,
    vars: Vars,
    ep: Endpoint,
    scale: f64,
    t0: Instant,
    step_start: Instant,
    step_started_wall: std::time::SystemTime,
    last_step_end: Instant,
    /// When the last message camcert sent started on its way.
    last_send: Option<Instant>,
    /// Last request received from the DUT and where it came from.
    last_request: Option<(SipMessage, SocketAddr)>,
    last_sent_request: Option<SipMessage>,
    /// SN of the last MANSCDP request camcert sent.
    last_sn_sent: Option<u64>,
    last_challenge_received: Option<Challenge>,
    nonces_issued: Vec<String>,
    seen: HashSet<String>,
    call_id: String,
    from_tag: String,
    to_tag: String,
    cseq: u32,
    local_id: String,
    remote_id: String,
    messages: Vec<MessageLog>,
    findings: Vec<FindingOut>,
    peer: Option<Peer>,
    /// The media session the case runs, if any.
    session: Option<session_steps::LiveSession>,
    /// Messages that arrived while a session step waited, for later steps.
    backlog: std::collections::VecDeque<crate::transport::Incoming>,
    /// Media figures of the sessions that ended.
    media: Vec<crate::report::MediaSummary>,
    /// Media sessions started in the case.
    sessions_started: usize,
    /// `--operator-hook`: run for `trigger` steps against a real DUT.
    operator_hook: Option<String>,
    /// Protocol rules judged on every message the DUT sent.
    audit: AuditState,
    /// `--strict`: no lenient recoveries.
    strict: bool,
    /// Failures on findings the lenient reading recovered from, charged to
    /// the step that just ran; the case goes on past them.
    deferred: Vec<StepFail>,
    /// The case, for what a `fuzz` step writes out.
    case_id: String,
    case_requirements: Vec<crate::suite::Requirement>,
    case_peer: std::collections::BTreeMap<String, String>,
    report_dir: std::path::PathBuf,
    peer_faults: Vec<String>,
    /// When the last run of inputs that broke the DUT began and ended
    /// (a `fuzz` step's reproducer pcap holds what was exchanged then).
    fuzz_repro_window: Option<(std::time::SystemTime, std::time::SystemTime)>,
    /// `--update-golden`.
    update_golden: bool,
}

#[path = "session_steps.rs"]
mod session_steps;

#[path = "dut_session.rs"]
mod dut_session;

#[path = "fuzz_step.rs"]
mod fuzz_step;

#[path = "golden_step.rs"]
mod golden_step;

#[path = "replay_step.rs"]
mod replay_step;
use dut_session::{DutSession, Prep};

/// The variables a suite ran with, secrets masked, for the report.
fn suite_settings(suite: &Suite, opts: &RunOptions) -> crate::report::SuiteSettings {
    let v = base_vars(suite, opts);
    let secrets = v.secrets();
    let mut names: Vec<&str> = suite.vars.keys().map(String::as_str).collect();
    names.extend(opts.vars.iter().map(|(k, _)| k.as_str()));
    names.extend(dut_session::TIMING_VARS.iter().map(|(n, _, _)| *n));
    names.sort_unstable();
    names.dedup();
    let vars = names
        .into_iter()
        .filter_map(|n| {
            let raw = v.get(n)?;
            let value = v.expand(raw).unwrap_or_else(|_| raw.to_string());
            Some((n.to_string(), mask(&value, &secrets)))
        })
        .collect();
    crate::report::SuiteSettings {
        suite: suite.name.clone(),
        file: suite.file.display().to_string(),
        vars,
        strict: opts.strict,
    }
}

pub(crate) fn base_vars(suite: &Suite, opts: &RunOptions) -> Vars {
    let mut v = Vars::new(&suite.secrets);
    for (k, val, _) in dut_session::TIMING_VARS {
        v.set(k, *val);
    }
    for (k, val) in &suite.vars {
        v.set(k, val.clone());
    }
    for (k, val) in &opts.vars {
        v.set(k, val.clone());
    }
    v
}

/// Expand a suite-level variable for peer configuration.
fn peer_var(v: &Vars, name: &str, default: &str) -> Result<String> {
    match v.get(name) {
        Some(raw) => v.expand(raw).map_err(|e| anyhow!(e)),
        None => Ok(default.to_string()),
    }
}

async fn run_case(
    suite: &Suite,
    case: &Case,
    transport: Transport,
    opts: &RunOptions,
    sess: &mut DutSession,
) -> CaseResult {
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let mut result = super::outcome::case_result(suite, case, &transport.to_string());
    let secrets;
    let operator_steps = opts.target.is_some()
        && case
            .steps
            .iter()
            .any(|s| matches!(s.input, StepInput::Trigger(_)));
    if operator_steps && opts.no_operator && opts.operator_hook.is_none() {
        result.status = Status::Skipped;
        result.failures.push(Failure {
            step: 0,
            location: case.loc.to_string(),
            check: "skipped".into(),
            message: "not run: the case needs an operator action on the device under test, and --no-operator was given".into(),
            expected: None,
            received: None,
            bytes: None,
            candidates: Vec::new(),
        });
        return result;
    }
    match setup(suite, case, transport, opts, sess).await {
        Err(e) => {
            result.status = Status::Error;
            result.failures.push(Failure {
                step: 0,
                location: case.loc.to_string(),
                check: "setup".into(),
                message: format!("{e:#}"),
                expected: None,
                received: None,
                bytes: None,
                candidates: Vec::new(),
            });
            secrets = base_vars(suite, opts).secrets();
        }
        Ok(mut run) => {
            let steps = match run.reach(case.needs, sess, opts).await {
                Ok(()) => {
                    // `after:` of the first step counts from the state the
                    // case needs, not from before it was reached.
                    run.last_step_end = Instant::now();
                    case.steps.as_slice()
                }
                Err(Prep::Skip(reason)) => {
                    result.status = Status::Skipped;
                    result.failures.push(Failure {
                        step: 0,
                        location: case.loc.to_string(),
                        check: "skipped".into(),
                        message: format!("not run: {reason}"),
                        expected: None,
                        received: None,
                        bytes: None,
                        candidates: Vec::new(),
                    });
                    &[]
                }
                Err(Prep::Fail(f)) => {
                    result.status = if f.check == "error" {
                        Status::Error
                    } else {
                        Status::Failed
                    };
                    let needs = case.needs;
                    let mut fs = f.into_failures(0, &case.loc.to_string());
                    if let Some(first) = fs.first_mut() {
                        first.message = format!("the session could not be brought into the state the case needs ({needs:?}): {}", first.message);
                    }
                    result.failures.extend(fs);
                    &[]
                }
            };
            for (i, step) in steps.iter().enumerate() {
                run.step_start = Instant::now();
                run.step_started_wall = std::time::SystemTime::now();
                let r = run.step(step).await;
                // For the DUT, a step that ends by sending ended when that
                // message left: it may act on it before this side finishes the
                // step, and `after:` must not see its reaction as early.
                let ends_sending = match &step.input {
                    StepInput::Send(_) | StepInput::Reply(_) => true,
                    StepInput::Expect(e) => e.reply.is_some(),
                    _ => false,
                };
                run.last_step_end = match run.last_send {
                    Some(t) if ends_sending && t >= run.step_start => t,
                    _ => Instant::now(),
                };
                // Findings the lenient reading recovered from fail the case
                // without ending it: the rest of it is still judged.
                for f in std::mem::take(&mut run.deferred) {
                    if result.status == Status::Passed {
                        result.status = Status::Failed;
                    }
                    result
                        .failures
                        .extend(f.into_failures(i + 1, &step.loc.to_string()));
                }
                if let Err(f) = r {
                    result.status = if f.check == "error" {
                        Status::Error
                    } else {
                        Status::Failed
                    };
                    let loc = step.loc.to_string();
                    result.failures.extend(f.into_failures(i + 1, &loc));
                    break;
                }
            }
            let media = run.close_session().await;
            if suite.role == Role::Platform {
                // Leave the session clean for the next case: no subscription
                // left running, late answers taken.
                let ended = run.end_subscriptions().await.unwrap_or(false);
                let quiet = crate::proto::scaled(Duration::from_secs(1), run.scale)
                    .max(Duration::from_millis(if ended { 300 } else { 100 }));
                let _ = run.settle(sess, quiet, quiet * 3, false).await;
            }
            // The peer and the endpoint stay with the session for the next case.
            sess.peer = run.peer.take();
            sess.reg = match suite.role {
                Role::Device => dut_session::reg_after_device(&run.messages, sess.reg),
                _ => dut_session::reg_after(&run.messages, sess.reg),
            };
            let name = format!("{}-{}.pcap", sanitize(&case.id), transport);
            let path = opts.report_dir.join("pcap").join(&name);
            let mut packets: Vec<_> = run
                .ep
                .tap
                .packets()
                .into_iter()
                .filter(|p| p.time >= started_wall)
                .collect();
            packets.extend(media);
            packets.sort_by_key(|p| p.time);
            match write_pcap(&path, &packets) {
                Ok(()) => result.pcap = Some(format!("pcap/{name}")),
                Err(e) => result.findings.push(
                    Finding::warning(
                        "camcert.evidence",
                        "",
                        format!("could not write evidence: {e:#}"),
                    )
                    .into(),
                ),
            }
            result.messages = std::mem::take(&mut run.messages);
            result.findings.extend(std::mem::take(&mut run.findings));
            result.media = std::mem::take(&mut run.media);
            secrets = run.vars.secrets();
            sess.seen = std::mem::take(&mut run.seen);
            sess.ep = Some(run.ep);
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    mask_result(&mut result, &secrets);
    result
}

/// Encode suite text as the body's character set.
fn encode_body(text: &str, encoding: Option<&str>) -> Result<Vec<u8>, StepFail> {
    let Some(label) = encoding else {
        return Ok(text.as_bytes().to_vec());
    };
    let cs = Charset::from_label(label).ok_or_else(|| {
        err(format!(
            "unknown body encoding {label:?} (UTF-8, GB2312, GBK, GB18030)"
        ))
    })?;
    Ok(match cs {
        Charset::Utf8 => text.as_bytes().to_vec(),
        _ => encoding_rs::GB18030.encode(text).0.into_owned(),
    })
}

/// Apply the suite's and then the case's `peer:` settings to a peer config.
fn apply_peer_options(
    vars: &Vars,
    suite: &Suite,
    case: &Case,
    mut apply: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<()> {
    for (k, v) in suite.peer.iter().chain(&case.peer) {
        let v = vars.expand(v).map_err(|e| anyhow!(e))?;
        apply(k, &v).map_err(|e| anyhow!("peer setting {k}: {e}"))?;
    }
    Ok(())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn mask_result(r: &mut CaseResult, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    for f in &mut r.failures {
        f.message = mask(&f.message, secrets);
        for s in [&mut f.expected, &mut f.received, &mut f.bytes]
            .into_iter()
            .flatten()
        {
            *s = mask(s, secrets);
        }
        for c in &mut f.candidates {
            c.summary = mask(&c.summary, secrets);
            for r in &mut c.reasons {
                r.expected = mask(&r.expected, secrets);
                r.actual = mask(&r.actual, secrets);
            }
        }
    }
    for m in &mut r.messages {
        m.text = mask(&m.text, secrets);
        m.summary = mask(&m.summary, secrets);
    }
}

async fn setup<'a>(
    suite: &'a Suite,
    case: &Case,
    transport: Transport,
    opts: &RunOptions,
    sess: &mut DutSession,
) -> Result<CaseRun<'a>> {
    let peer_vars = base_vars(suite, opts);
    let mut vars = peer_vars.clone();
    for (k, v) in &case.vars {
        vars.set(k, v.clone());
    }
    let scale = opts.time_scale.unwrap_or(if opts.target.is_none() {
        BUILTIN_TIME_SCALE
    } else {
        1.0
    });
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let device_id = peer_var(&peer_vars, "device_id", "34020000001320000001")?;
    let platform_id = peer_var(&peer_vars, "platform_id", "34020000002000000001")?;
    let password = peer_var(&peer_vars, "password", "")?;
    let kept = match (sess.ep.take(), sess.peer.take()) {
        (Some(ep), peer) if peer.is_some() || opts.target.is_some() => Some((ep, peer)),
        (_, Some(p)) => {
            // An endpoint without its peer (or the reverse) is not a session.
            let mut orphan = DutSession::new();
            orphan.peer = Some(p);
            orphan.close().await;
            sess.reg = dut_session::Reg::Unknown;
            None
        }
        _ => {
            sess.reg = dut_session::Reg::Unknown;
            None
        }
    };
    let (ep, peer) = match (suite.role, opts.target) {
        _ if kept.is_some() => kept.expect("checked"),
        (Role::Device, Some(t)) => {
            let local = SocketAddr::new(
                if t.addr.is_ipv6() {
                    "::".parse()?
                } else {
                    [0, 0, 0, 0].into()
                },
                0,
            );
            let ep = Endpoint::connect(t, local)
                .await
                .with_context(|| format!("reaching the DUT at {t}"))?;
            (ep, None)
        }
        (Role::Device, None) => {
            let mut cfg = PlatformConfig::new(&platform_id);
            cfg.realm = peer_var(
                &peer_vars,
                "domain",
                &platform_id[..10.min(platform_id.len())],
            )?;
            cfg.devices.insert(device_id.clone(), password.clone());
            cfg.time_scale = scale;
            cfg.seed = rand::thread_rng().gen();
            for f in &opts.peer_faults {
                cfg.faults.set(f);
            }
            apply_peer_options(&peer_vars, suite, case, |k, v| cfg.apply_option(k, v))?;
            let h = peers::start_platform(
                cfg,
                PeerAddr {
                    transport,
                    addr: SocketAddr::new(loopback, 0),
                },
            )
            .await?;
            let target = PeerAddr {
                transport,
                addr: h.addr,
            };
            let ep = Endpoint::connect(target, SocketAddr::new(loopback, 0)).await?;
            (ep, Some(Peer::Platform(h)))
        }
        (Role::UpperPlatform, None) => {
            // The DUT is the reference platform as a lower platform: it
            // registers to camcert with its own ID (`device_id`) and the
            // password provisioned for it (`password`).
            let ep = Endpoint::bind(transport, SocketAddr::new(loopback, 0)).await?;
            let mut cfg = PlatformConfig::new(&device_id);
            cfg.realm = peer_var(&peer_vars, "domain", &cfg.realm)?;
            cfg.upstream = Some(UpstreamConfig::new(
                &platform_id,
                ep.local_addr(),
                &password,
            ));
            cfg.time_scale = scale;
            cfg.seed = rand::thread_rng().gen();
            for f in &opts.peer_faults {
                cfg.faults.set(f);
            }
            apply_peer_options(&peer_vars, suite, case, |k, v| cfg.apply_option(k, v))?;
            let h = peers::start_platform(
                cfg,
                PeerAddr {
                    transport,
                    addr: SocketAddr::new(loopback, 0),
                },
            )
            .await?;
            (ep, Some(Peer::Platform(h)))
        }
        (Role::Platform | Role::UpperPlatform, target) => {
            let listen = opts.listen.unwrap_or_else(|| {
                if target.is_some() {
                    SocketAddr::from(([0, 0, 0, 0], 5060))
                } else {
                    SocketAddr::new(loopback, 0)
                }
            });
            let ep = Endpoint::bind(transport, listen).await?;
            let peer = if target.is_none() {
                let mut cfg = DeviceConfig::new(
                    &device_id,
                    &platform_id,
                    &password,
                    SocketAddr::new(loopback, 0),
                    ep.local_addr(),
                );
                cfg.domain = peer_var(&peer_vars, "domain", &cfg.domain)?.into();
                cfg.transport = transport;
                cfg.time_scale = scale;
                cfg.seed = rand::thread_rng().gen();
                if let Some(e) = peer_vars.get("device_expires") {
                    cfg.expires = vars
                        .expand(e)
                        .map_err(|e| anyhow!(e))?
                        .parse()
                        .context("device_expires")?;
                }
                for f in &opts.peer_faults {
                    cfg.faults.set(f);
                }
                apply_peer_options(&peer_vars, suite, case, |k, v| cfg.apply_option(k, v))?;
                Some(Peer::Camera(peers::start_camera(cfg, loopback).await?))
            } else {
                None
            };
            (ep, peer)
        }
    };
    let local = match ep.default_peer.or(opts.target.map(|t| t.addr)) {
        Some(p) => ep.local_addr_for(p),
        None => ep.local_addr(),
    };
    vars.set("transport", transport.to_string());
    vars.set("local_ip", local.ip().to_string());
    vars.set("local_port", local.port().to_string());
    vars.set("local_addr", host_port(local));
    if let Some(t) = ep.default_peer {
        vars.set("target_addr", host_port(t));
        vars.set("target_host", t.ip().to_string());
        vars.set("target_port", t.port().to_string());
    }
    vars.set("case_id", case.id.clone());
    vars.set("time_scale", scale.to_string());
    let (local_id, remote_id) = match suite.role {
        Role::Device => (device_id.clone(), platform_id.clone()),
        Role::Platform | Role::UpperPlatform => (platform_id.clone(), device_id.clone()),
    };
    let mut rng = rand::thread_rng();
    let call_id = sip::new_call_id(&mut rng);
    let from_tag = sip::new_tag(&mut rng);
    vars.set("call_id", call_id.clone());
    vars.set("from_tag", from_tag.clone());
    let now = Instant::now();
    Ok(CaseRun {
        suite,
        vars,
        ep,
        scale,
        t0: now,
        step_start: now,
        step_started_wall: std::time::SystemTime::now(),
        last_step_end: now,
        last_send: None,
        last_request: None,
        last_sent_request: None,
        last_sn_sent: None,
        last_challenge_received: None,
        nonces_issued: vec![],
        seen: std::mem::take(&mut sess.seen),
        call_id,
        from_tag,
        to_tag: sip::new_tag(&mut rng),
        cseq: 0,
        local_id,
        remote_id,
        messages: vec![],
        findings: vec![],
        peer,
        session: None,
        backlog: Default::default(),
        media: Vec::new(),
        sessions_started: 0,
        operator_hook: opts.operator_hook.clone(),
        audit: Default::default(),
        strict: opts.strict,
        deferred: Vec::new(),
        case_id: case.id.clone(),
        case_requirements: case.requirements.clone(),
        case_peer: case.peer.clone(),
        report_dir: opts.report_dir.clone(),
        peer_faults: opts.peer_faults.clone(),
        fuzz_repro_window: None,
        update_golden: opts.update_golden,
    })
}

/// The failure of the matcher on `path`: every condition that did not
/// hold, with the value (or where it is absent).
fn matcher_fail(
    path: &str,
    misses: &[PredicateMiss],
    v: Option<&str>,
    msg: Option<&SipMessage>,
) -> StepFail {
    let wanted: Vec<&str> = misses.iter().map(|m| m.expected.as_str()).collect();
    let got = match (v, msg) {
        (Some(v), _) => format!("got {v:?}"),
        (None, Some(m)) => format!("absent in {}", m.summary()),
        (None, None) => "absent".into(),
    };
    StepFail::new(
        &format!("match {path}"),
        format!("{path}: expected {}, {got}", wanted.join(" and ")),
    )
    .exp(
        wanted.join(" and "),
        v.map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "absent".into()),
    )
}

/// The conditions a collected answer MESSAGE must meet that `m` misses,
/// and how many it meets: MESSAGE, the CmdType, the SN (when known) and a
/// Response root.
fn collect_misses(m: &SipMessage, cmd: &str, sn: Option<u64>) -> (Vec<PredicateMiss>, usize) {
    let mut misses = Vec::new();
    let mut met = 0;
    let mut check = |field: &str, ok: bool, expected: String, actual: Option<String>| {
        if ok {
            met += 1;
        } else {
            misses.push(PredicateMiss {
                field: field.into(),
                expected,
                actual: actual
                    .map(|a| format!("{a:?}"))
                    .unwrap_or_else(|| "absent".into()),
            });
        }
    };
    let method = m.method().map(str::to_string);
    check(
        "method",
        method.as_deref() == Some("MESSAGE"),
        "MESSAGE".into(),
        method.or_else(|| Some(m.summary())),
    );
    let t = resolve(m, "xml.CmdType");
    check(
        "xml.CmdType",
        t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(cmd)),
        format!("equals {cmd:?}"),
        t,
    );
    let got_sn = resolve(m, "xml.SN");
    let sn_ok = got_sn
        .as_deref()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .is_some_and(|s| sn.is_none_or(|want| want == s));
    check(
        "xml.SN",
        sn_ok,
        match sn {
            Some(n) => format!("equals \"{n}\" (the query's SN)"),
            None => "a number".into(),
        },
        got_sn,
    );
    let decoded = manscdp::Message::decode(&m.body).ok();
    let is_response = decoded
        .as_ref()
        .is_some_and(|d| d.message.root == manscdp::Root::Response);
    let root = decoded.map(|d| d.tree.name);
    check("xml root", is_response, "Response".into(), root);
    (misses, met)
}

/// A suite string with its variables expanded; a bad variable is the
/// suite's fault.
fn expand(vars: &Vars, s: &str) -> Result<String, StepFail> {
    vars.expand(s).map_err(err)
}
/// A suite string with its variables expanded, or as written when one
/// cannot be (for descriptions only).
fn shown(vars: &Vars, s: &str) -> String {
    vars.expand(s).unwrap_or_else(|_| s.to_string())
}

/// What a matcher asks for, in words: `equals "Catalog"`, `>= 1 and <= 9`.
fn describe_matcher(vars: &Vars, m: &MatcherInput) -> String {
    let parts = matcher_conditions(vars, m);
    if parts.is_empty() {
        "(any value)".into()
    } else {
        parts.join(" and ")
    }
}

fn matcher_conditions(vars: &Vars, m: &MatcherInput) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = m.present {
        v.push(if p { "present" } else { "absent" }.to_string());
    }
    if let Some(x) = &m.equals {
        v.push(format!("equals {:?}", shown(vars, x)));
    }
    if let Some(x) = &m.not_equals {
        v.push(format!("not equals {:?}", shown(vars, x)));
    }
    if let Some(x) = &m.equals_ignore_case {
        v.push(format!("equals {:?} (any case)", shown(vars, x)));
    }
    if let Some(x) = &m.contains {
        v.push(format!("contains {:?}", shown(vars, x)));
    }
    if let Some(x) = &m.not_contains {
        v.push(format!("not contains {:?}", shown(vars, x)));
    }
    if let Some(x) = &m.equals_field {
        v.push(format!("equals field {x}"));
    }
    if let Some(x) = &m.greater_than {
        v.push(format!("> {}", shown(vars, x)));
    }
    if let Some(x) = &m.less_than {
        v.push(format!("< {}", shown(vars, x)));
    }
    if let Some(x) = &m.regex {
        v.push(format!("matches /{}/", shown(vars, x)));
    }
    if let Some(x) = m.min {
        v.push(format!(">= {x}"));
    }
    if let Some(x) = m.max {
        v.push(format!("<= {x}"));
    }
    if let Some(set) = &m.one_of {
        let set: Vec<String> = set.iter().map(|s| shown(vars, s)).collect();
        v.push(format!("one of {set:?}"));
    }
    if let Some(kind) = m.gb_id {
        v.push(
            match kind {
                GbIdKind::Any => "a 20-digit GB/T 28181 code",
                GbIdKind::Device => "a 20-digit GB/T 28181 device code (type 111-199)",
                GbIdKind::Platform => "a 20-digit GB/T 28181 platform code (type 200-299)",
            }
            .to_string(),
        );
    }
    v
}

/// Every condition of matcher `m` that value `v` of field `path` does
/// not meet, each with what it asked for and what was there; `msg` is
/// the message the value came from (for `equals_field`). An error is a
/// fault of the suite (an unknown variable, a bad regex).
fn eval_matcher(
    vars: &Vars,
    path: &str,
    m: &MatcherInput,
    v: Option<&str>,
    msg: Option<&SipMessage>,
) -> Result<Vec<PredicateMiss>, StepFail> {
    let shown = v
        .map(|s| format!("{s:?}"))
        .unwrap_or_else(|| "absent".into());
    let mut out = Vec::new();
    let mut miss = |expected: String| {
        out.push(PredicateMiss {
            field: path.to_string(),
            expected,
            actual: shown.clone(),
        })
    };
    if let Some(p) = m.present {
        if p != v.is_some() {
            miss(if p { "present".into() } else { "absent".into() });
        }
    }
    let Some(v) = v else {
        // Every condition on the value fails on an absent field: name
        // them all at once.
        let mut value_only = m.clone();
        value_only.present = None;
        let conds = matcher_conditions(vars, &value_only);
        if !conds.is_empty() {
            miss(conds.join(" and "));
        }
        return Ok(out);
    };
    if let Some(x) = &m.equals {
        let x = expand(vars, x)?;
        if v != x {
            miss(format!("equals {x:?}"));
        }
    }
    if let Some(x) = &m.not_equals {
        let x = expand(vars, x)?;
        if v == x {
            miss(format!("not equals {x:?}"));
        }
    }
    if let Some(x) = &m.equals_ignore_case {
        let x = expand(vars, x)?;
        if !v.eq_ignore_ascii_case(&x) {
            miss(format!("equals {x:?} (any case)"));
        }
    }
    if let Some(x) = &m.contains {
        let x = expand(vars, x)?;
        if !v.contains(&x) {
            miss(format!("contains {x:?}"));
        }
    }
    if let Some(x) = &m.not_contains {
        let x = expand(vars, x)?;
        if v.contains(&x) {
            miss(format!("not contains {x:?}"));
        }
    }
    if let Some(other) = &m.equals_field {
        let msg = msg.ok_or_else(|| err("equals_field needs a single message"))?;
        let want = resolve(msg, other);
        if want.as_deref() != Some(v) {
            let shown_other = want
                .map(|w| format!("{w:?}"))
                .unwrap_or_else(|| "absent".into());
            miss(format!("equals field {other} ({shown_other})"));
        }
    }
    for (bound, greater) in [(&m.greater_than, true), (&m.less_than, false)] {
        let Some(b) = bound else { continue };
        let b = expand(vars, b)?;
        let limit: f64 = b
            .trim()
            .parse()
            .map_err(|_| err(format!("{path}: bound {b:?} is not a number")))?;
        let op = if greater { ">" } else { "<" };
        match v.trim().parse::<f64>() {
            Err(_) => miss(format!("a number {op} {limit}")),
            Ok(n) if greater && n <= limit => miss(format!("> {limit}")),
            Ok(n) if !greater && n >= limit => miss(format!("< {limit}")),
            Ok(_) => {}
        }
    }
    if let Some(r) = &m.regex {
        let r = expand(vars, r)?;
        let re = regex::Regex::new(&r).map_err(err)?;
        if !re.is_match(v) {
            miss(format!("matches /{r}/"));
        }
    }
    if m.min.is_some() || m.max.is_some() {
        match v.trim().parse::<f64>() {
            Err(_) => miss("a number".into()),
            Ok(n) => {
                if let Some(min) = m.min {
                    if n < min {
                        miss(format!(">= {min}"));
                    }
                }
                if let Some(max) = m.max {
                    if n > max {
                        miss(format!("<= {max}"));
                    }
                }
            }
        }
    }
    if let Some(set) = &m.one_of {
        let set: Vec<String> = set
            .iter()
            .map(|s| expand(vars, s))
            .collect::<Result<_, _>>()?;
        if !set.iter().any(|s| s == v) {
            miss(format!("one of {set:?}"));
        }
    }
    if let Some(kind) = m.gb_id {
        let ok = match GbId::parse(v) {
            Err(_) => false,
            Ok(id) => match kind {
                GbIdKind::Any => true,
                GbIdKind::Device => id.is_device(),
                GbIdKind::Platform => id.is_platform(),
            },
        };
        if !ok {
            let only = MatcherInput {
                gb_id: Some(kind),
                ..Default::default()
            };
            miss(describe_matcher(vars, &only));
        }
    }
    Ok(out)
}

/// The conditions of `m` that value `v` of `path` misses, for runners of
/// other protocols (`equals_field` resolved by the caller); a suite fault
/// (bad variable, bad regex) is the error text.
pub(crate) fn matcher_misses(
    vars: &Vars,
    path: &str,
    m: &MatcherInput,
    v: Option<&str>,
) -> std::result::Result<Vec<PredicateMiss>, String> {
    eval_matcher(vars, path, m, v, None).map_err(|f| f.message)
}

/// A matcher in words, for runners of other protocols.
pub(crate) fn matcher_text(vars: &Vars, m: &MatcherInput) -> String {
    describe_matcher(vars, m)
}

fn err(e: impl std::fmt::Display) -> StepFail {
    StepFail::new("error", e.to_string())
}

impl CaseRun<'_> {
    fn x(&self, s: &str) -> Result<String, StepFail> {
        self.vars.expand(s).map_err(err)
    }

    /// Real-time deadline for a wait of `protocol` time.
    fn deadline(&self, protocol: Duration) -> Instant {
        Instant::now() + crate::proto::scaled(protocol, self.scale).max(MIN_REAL_WAIT)
    }

    fn log(&mut self, direction: &'static str, peer: SocketAddr, raw: &[u8]) {
        let summary = match SipMessage::parse(raw) {
            Ok(p) => p.message.summary(),
            Err(e) => format!("(unparseable: {e})"),
        };
        self.messages.push(MessageLog {
            at_ms: self.t0.elapsed().as_millis() as u64,
            direction,
            peer: peer.to_string(),
            summary,
            text: decode_text(raw),
        });
        if direction == "received" {
            self.audit_received(raw);
        }
    }

    /// Judge a message the DUT sent against the protocol rules, once: its
    /// findings join the case's, and error-severity ones wait for the end
    /// of the step to be charged to it.
    fn audit_received(&mut self, raw: &[u8]) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        raw.hash(&mut h);
        if !self.audit.judged.insert(h.finish()) {
            return;
        }
        let summary = match SipMessage::parse(raw) {
            Ok(p) => candidate_summary(&p.message),
            Err(_) => format!("{} bytes of non-SIP data", raw.len()),
        };
        for d in self.audit_all(raw) {
            let f = d.to_finding();
            if !self.findings.iter().any(|x| same_finding(x, &f)) {
                self.findings.push(f);
            }
            if d.severity == Severity::Error {
                self.audit.pending.push((summary.clone(), d, raw.to_vec()));
            }
        }
    }

    /// Every rule `raw` breaks: those of any message, and those of a request
    /// addressed to camcert's own ID.
    fn audit_all(&self, raw: &[u8]) -> Vec<audit::Deviation> {
        let mut out = audit::audit(raw, self.ep.transport());
        out.extend(audit::audit_addressee(raw, &self.local_id));
        out
    }

    /// A message as the lenient reading takes it: a Request-URI or To that
    /// names camcert's domain instead of its ID, and a `y=` short of ten
    /// digits, read as meant (the findings on the message as sent say what
    /// was wrong). Under `--strict`, the message as written.
    fn lenient_view(&self, m: &SipMessage) -> SipMessage {
        self.lenient_view_for(m, &self.local_id)
    }

    /// [`Self::lenient_view`] of a request meant for `addressee`.
    fn lenient_view_for(&self, m: &SipMessage, addressee: &str) -> SipMessage {
        if self.strict {
            return m.clone();
        }
        let mut out = sip::quirks::recover_addressing(m, addressee).unwrap_or_else(|| m.clone());
        let is_sdp = out.headers.get("Content-Type").is_some_and(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/sdp")
        });
        if is_sdp {
            if let Ok(mut p) = crate::proto::sdp::SessionDescription::parse(&out.body) {
                if p.sdp.recover_ssrc() {
                    out.body = p.sdp.to_bytes();
                    if out.headers.get("Content-Length").is_some() {
                        out.headers
                            .set("Content-Length", out.body.len().to_string());
                    }
                }
            }
        }
        out
    }

    /// Whom an expected request is meant for: the ID a `uri.user` or
    /// `to.user` matcher of the step wants (camcert may play more than one
    /// server, and they share a domain), or camcert's own ID.
    fn addressee(&self, e: &ExpectInput) -> String {
        for path in ["uri.user", "to.user"] {
            let want = e
                .when
                .get(path)
                .or_else(|| e.matches.get(path))
                .and_then(|m| m.equals.as_deref())
                .and_then(|v| self.vars.expand(v).ok());
            if let Some(id) = want.filter(|id| GbId::parse(id).is_ok()) {
                return id;
            }
        }
        self.local_id.clone()
    }

    /// The findings on `raw` that explain one of `reasons`.
    fn explaining(&self, raw: &[u8], reasons: &[PredicateMiss]) -> Vec<FindingOut> {
        let mut out: Vec<FindingOut> = Vec::new();
        for d in self.audit_all(raw) {
            let f = d.to_finding();
            if reasons.iter().any(|r| audit::explains(&f, &r.field))
                && !out.iter().any(|x| same_finding(x, &f))
            {
                out.push(f);
            }
        }
        out
    }

    /// Charge the step the error-severity findings on messages that arrived
    /// during it, unless the step or the suite allows them. They join the
    /// step's own failures; a step that passed fails on them.
    fn judge_findings(&mut self, step: &Step, r: Result<(), StepFail>) -> Result<(), StepFail> {
        let pending = std::mem::take(&mut self.audit.pending);
        // A media session reports the SDP findings it judged itself.
        let mut kept: Vec<FindingOut> = Vec::with_capacity(self.findings.len());
        for f in std::mem::take(&mut self.findings) {
            if !kept.iter().any(|k| same_finding(k, &f)) {
                kept.push(f);
            }
        }
        self.findings = kept;
        let step_allows = step_allows_findings(&step.input);
        // What the step's own checks already reported: a finding they named
        // (by check or in their message) is not reported twice.
        let already: Vec<(String, String)> = match &r {
            Err(f) => std::iter::once(f)
                .chain(f.more().iter())
                .map(|f| (f.check.clone(), f.message.clone()))
                .collect(),
            Ok(()) => Vec::new(),
        };
        let mut fails: Vec<StepFail> = Vec::new();
        let mut seen: Vec<(String, String)> = Vec::new();
        for (summary, d, raw) in pending {
            if step_allows || audit::allowed(&self.suite.allow_findings, &d.code) {
                continue;
            }
            let key = (d.code.clone(), d.message());
            let reported = already.iter().any(|(check, message)| {
                check.ends_with(&d.code)
                    || (message.contains(&d.code)
                        && message.contains(if d.detail.is_empty() {
                            &d.actual
                        } else {
                            &d.detail
                        }))
            });
            if seen.contains(&key) || reported {
                continue;
            }
            seen.push(key);
            let mut f = StepFail::new(
                &d.code,
                format!("{summary}: {} [{}]", d.message(), d.clause),
            );
            if !d.expected.is_empty() {
                f.expected = Some(d.expected.clone());
                f.received = Some(d.actual.clone());
            }
            f.extra().bytes = Some(raw);
            fails.push(f);
        }
        // What the transport found while the step ran (a stream that could
        // not be framed, a message not finished in time, a peer that does
        // not read what camcert sends).
        for (peer, t) in self.ep.take_findings() {
            let out = FindingOut::from(&t);
            if !self.findings.iter().any(|x| same_finding(x, &out)) {
                self.findings.push(out);
            }
            if t.severity == Severity::Error
                && !step_allows
                && !audit::allowed(&self.suite.allow_findings, t.code)
            {
                let mut f =
                    StepFail::new(t.code, format!("from {peer}: {} [{}]", t.message, t.clause));
                if let Some(crate::finding::Evidence::Bytes(b)) = &t.evidence {
                    f.extra().bytes = Some(b.clone());
                }
                fails.push(f);
            }
        }
        // A step whose own checks passed, failing only on findings the
        // lenient reading recovered from, does not end the case.
        if r.is_ok()
            && !self.strict
            && !fails.is_empty()
            && fails.iter().all(|f| audit::is_recovered(&f.check))
        {
            self.deferred.extend(fails);
            return Ok(());
        }
        match r {
            Ok(()) => match StepFail::join(fails) {
                Some(f) => Err(f),
                None => Ok(()),
            },
            Err(mut f) => {
                f.extra().more.extend(fails);
                Err(f)
            }
        }
    }

    async fn send_bytes(&mut self, to: Option<SocketAddr>, bytes: Vec<u8>) -> Result<(), StepFail> {
        let dest = to.or(self.ep.default_peer);
        self.last_send = Some(Instant::now());
        self.ep
            .send(to, &bytes)
            .await
            .map_err(|e| StepFail::new("transport", format!("{e:#}")))?;
        if let Some(d) = dest {
            self.log("sent", d, &bytes);
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<(), StepFail> {
        // Where camcert listens, the DUT's address is known only once it
        // has sent something.
        if self.vars.get("target_addr").is_none() {
            if let Some(t) = self.ep.default_peer {
                self.vars.set("target_addr", host_port(t));
                self.vars.set("target_host", t.ip().to_string());
                self.vars.set("target_port", t.port().to_string());
            }
        }
        let r = match &step.input {
            StepInput::Send(s) => self.send(s).await,
            StepInput::Reply(r) => self.reply(r).await,
            StepInput::Expect(e) => self.expect(e).await,
            StepInput::Wait(d) => {
                let d = crate::proto::scaled(d.0, self.scale);
                if self.session.is_some() {
                    self.idle_until(Instant::now() + d).await
                } else {
                    tokio::time::sleep(d).await;
                    Ok(())
                }
            }
            StepInput::Trigger(t) => self.trigger(t).await,
            StepInput::Collect(c) => self.collect(c).await,
            StepInput::Invite(i) => self.invite(i).await,
            StepInput::Answer(a) => self.answer_invite(a).await,
            StepInput::Media(m) => self.media(m).await,
            StepInput::Control(c) => self.control(c).await,
            StepInput::Hangup(h) => self.hangup(h).await,
            StepInput::SessionEvent(e) => self.session_event(e).await,
            StepInput::Stream(s) => self.stream(s).await,
            StepInput::Fuzz(f) => self.fuzz(f).await,
            StepInput::Connect(_) => Err(err("`connect` is a step of HEDGW suites")),
            StepInput::Replay(r) => self.replay(r).await,
        };
        self.judge_findings(step, r)
    }

    fn raw_bytes(&self, raw: &str) -> Result<Vec<u8>, StepFail> {
        let text = self.x(raw)?;
        // YAML block scalars end lines in LF; SIP wants CRLF.
        Ok(text
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes())
    }

    fn apply_headers(
        &self,
        m: &mut SipMessage,
        headers: &indexmap::IndexMap<String, String>,
        remove: &[String],
    ) -> Result<(), StepFail> {
        for (k, v) in headers {
            let v = self.x(v)?;
            m.headers.set(k, v);
        }
        for r in remove {
            m.headers.remove(r);
        }
        Ok(())
    }

    async fn send(&mut self, s: &SendInput) -> Result<(), StepFail> {
        if let Some(b64) = &s.raw_base64 {
            use base64::Engine as _;
            let b = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| err(format!("raw_base64: {e}")))?;
            return self.send_bytes(None, b).await;
        }
        if let Some(raw) = &s.raw {
            let b = self.raw_bytes(raw)?;
            if let Ok(p) = SipMessage::parse(&b) {
                if p.message.is_request() {
                    self.last_sent_request = Some(p.message);
                }
            }
            return self.send_bytes(None, b).await;
        }
        let method = s
            .request
            .as_deref()
            .unwrap_or("OPTIONS")
            .to_ascii_uppercase();
        let target = self.ep.default_peer.ok_or_else(|| {
            err("no target to send to: nothing has been received from the DUT yet")
        })?;
        let local = self.ep.local_addr_for(target);
        let domain = match self.vars.get("domain") {
            Some(d) => self.x(d)?,
            None => self
                .remote_id
                .get(..10)
                .unwrap_or(&self.remote_id)
                .to_string(),
        };
        self.cseq += 1;
        let branch = sip::new_branch(&mut rand::thread_rng());
        let mut m = if method == "REGISTER" {
            let (device_id, platform_id) = match self.suite.role {
                Role::Device => (self.x("${device_id}")?, self.x("${platform_id}")?),
                Role::Platform | Role::UpperPlatform => {
                    (self.remote_id.clone(), self.local_id.clone())
                }
            };
            build_register(&RegisterParams {
                device_id: &device_id,
                platform_id: &platform_id,
                domain: &domain,
                local,
                server: target,
                transport: self.ep.transport(),
                call_id: &self.call_id,
                from_tag: &self.from_tag,
                branch: &branch,
                cseq: self.cseq,
                expires: 3600,
                authorization: None,
                user_agent: "camcert",
            })
        } else {
            build_request(&RequestParams {
                method: &method,
                from_id: &self.local_id,
                to_id: &self.remote_id,
                domain: &domain,
                local,
                remote: target,
                transport: self.ep.transport(),
                call_id: &self.call_id,
                from_tag: &self.from_tag,
                to_tag: None,
                cseq: self.cseq,
                branch: &branch,
                user_agent: "camcert",
            })
        };
        if s.dialog {
            self.enter_dialog(&mut m)?;
        }
        if let Some(u) = &s.uri {
            let u = self.x(u)?;
            if let sip::StartLine::Request { uri, .. } = &mut m.start {
                *uri = u;
            }
        }
        self.apply_headers(&mut m, &s.headers, &s.remove_headers)?;
        if let Some(a) = &s.authorize {
            let ch = self
                .last_challenge_received
                .clone()
                .ok_or_else(|| err("`authorize` needs a challenge: no 401/407 with a Digest challenge has been received"))?;
            let username = match &a.username {
                Some(u) => self.x(u)?,
                None => self.local_id.clone(),
            };
            let password = self.x(&a.password)?;
            let uri = m.uri().unwrap_or_default().to_string();
            let cnonce = format!("{:08x}", rand::thread_rng().gen::<u32>());
            let c = Credentials::answer(&ch, &username, &password, &method, &uri, &cnonce);
            // Authorization goes before Max-Forwards, as devices put it.
            m.headers.remove("Authorization");
            let pos = m
                .headers
                .0
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case("Max-Forwards"))
                .unwrap_or(m.headers.0.len());
            m.headers
                .0
                .insert(pos, ("Authorization".into(), c.to_header()));
        }
        if let Some(b) = &s.body {
            m.body = encode_body(&self.x(b)?, s.encoding.as_deref())?;
            if !m.headers.contains("Content-Type") && m.body.starts_with(b"<?xml") {
                m.headers.push("Content-Type", manscdp::CONTENT_TYPE);
            }
            if let Ok(d) = manscdp::Message::decode(&m.body) {
                self.last_sn_sent = d.message.sn.or(self.last_sn_sent);
            }
        }
        m.headers.remove("Content-Length");
        let cl = s
            .content_length
            .map(|n| n.to_string())
            .unwrap_or_else(|| m.body.len().to_string());
        m.headers.push("Content-Length", cl);
        let bytes = m.to_bytes();
        self.last_sent_request = Some(m);
        self.send_bytes(Some(target), bytes).await
    }

    /// Put `m` in the dialog of the last request received (RFC 3261
    /// §12.2.1.1): its Call-ID; From is its To with the tag `reply` gave
    /// it, To is its From; the Request-URI is its Contact.
    fn enter_dialog(&self, m: &mut SipMessage) -> Result<(), StepFail> {
        let (req, _) = self
            .last_request
            .as_ref()
            .ok_or_else(|| err("`dialog` needs a request received first: expect one"))?;
        let call_id = req.call_id().unwrap_or_default().to_string();
        let to = req.headers.get("To").unwrap_or_default().to_string();
        let from = if sip::NameAddr::parse(&to).is_some_and(|n| n.tag().is_some()) {
            to
        } else {
            format!("{to};tag={}", self.to_tag)
        };
        let peer = req.headers.get("From").unwrap_or_default().to_string();
        let target = req
            .headers
            .get("Contact")
            .or(Some(peer.as_str()))
            .and_then(sip::NameAddr::parse)
            .map(|n| n.uri.to_string());
        m.headers.set("Call-ID", call_id);
        m.headers.set("From", from);
        m.headers.set("To", peer);
        if let (Some(t), sip::StartLine::Request { uri, .. }) = (target, &mut m.start) {
            *uri = t;
        }
        Ok(())
    }

    async fn reply(&mut self, r: &ReplyInput) -> Result<(), StepFail> {
        let (req, from) = self
            .last_request
            .clone()
            .ok_or_else(|| err("`reply` needs a request to answer: expect one first"))?;
        if let Some(raw) = &r.raw {
            let b = self.raw_bytes(raw)?;
            return self.send_bytes(Some(from), b).await;
        }
        let mut m = sip::response_to(&req, r.status, Some(&self.to_tag));
        if let Some(reason) = &r.reason {
            if let sip::StartLine::Response { reason: rr, .. } = &mut m.start {
                *rr = self.x(reason)?;
            }
        }
        if req.method() == Some("REGISTER") && (200..300).contains(&r.status) {
            if let Some(c) = req.headers.get("Contact") {
                m.headers.push("Contact", c.to_string());
            }
        }
        if let Some(c) = &r.challenge {
            let algorithm = match c.algorithm.as_deref().map(|a| self.x(a)).transpose()? {
                None => Algorithm::Md5,
                Some(a) => Algorithm::from_param(Some(&a))
                    .ok_or_else(|| err(format!("unsupported algorithm {a:?}")))?,
            };
            let mut rng = rand::thread_rng();
            let nonce = match &c.nonce {
                Some(n) => self.x(n)?,
                None => format!("{:032x}", rng.gen::<u128>()),
            };
            let ch = Challenge {
                realm: self.x(&c.realm)?,
                nonce: nonce.clone(),
                opaque: Some(match &c.opaque {
                    Some(o) => self.x(o)?,
                    None => format!("{:032x}", rng.gen::<u128>()),
                }),
                algorithm,
                qop_auth: c.qop,
            };
            self.nonces_issued.push(nonce.clone());
            self.vars.set("nonce", nonce);
            m.headers.push("WWW-Authenticate", ch.to_header());
        }
        m.headers.push("User-Agent", "camcert");
        if r.date {
            m.headers
                .push("Date", format_date(chrono::Local::now().naive_local()));
        }
        self.apply_headers(&mut m, &r.headers, &r.remove_headers)?;
        if let Some(b) = &r.body {
            m.body = encode_body(&self.x(b)?, r.encoding.as_deref())?;
            if !m.headers.contains("Content-Type") && m.body.starts_with(b"<?xml") {
                m.headers.push("Content-Type", manscdp::CONTENT_TYPE);
            }
        }
        let m = m.with_content_length();
        self.send_bytes(Some(from), m.to_bytes()).await
    }

    async fn trigger(&mut self, t: &TriggerInput) -> Result<(), StepFail> {
        let mut args = std::collections::BTreeMap::new();
        for (k, v) in &t.args {
            args.insert(k.clone(), self.x(v)?);
        }
        let action = t.action.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        match &self.peer {
            Some(Peer::Camera(h)) => {
                h.command(move |d, now| {
                    let _ = tx.send(d.trigger(now, &action, &args));
                })
                .await
            }
            Some(Peer::Platform(h)) => {
                h.command(move |p, now| {
                    let _ = tx.send(p.trigger(now, &action, &args));
                })
                .await
            }
            None => {
                let note = t
                    .note
                    .clone()
                    .unwrap_or_else(|| format!("make the device under test {}", t.action));
                let note = self.x(&note)?;
                if let Some(hook) = &self.operator_hook {
                    let hook = hook.clone();
                    let device = self.remote_id.clone();
                    return dut_session::run_hook(&hook, &t.action, &args, &device, &note).await;
                }
                eprintln!("ACTION REQUIRED: {note}");
                return Ok(());
            }
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(err(format!(
                "the reference peer cannot `{}`: {e}",
                t.action
            ))),
            Err(_) => Err(err("the reference peer stopped")),
        }
    }

    /// A key identifying a message's transaction and kind, to spot retransmissions.
    fn transaction_key(m: &SipMessage) -> Option<String> {
        let via = m.headers.get("Via").and_then(Via::parse)?;
        let cseq = m.headers.get("CSeq")?;
        Some(format!("{}|{}|{}", via.branch()?, cseq, m.summary()))
    }

    /// What an `expect` waits for, in words: `MESSAGE request where
    /// xml.CmdType equals "Catalog"`.
    fn expect_what(&self, e: &ExpectInput) -> String {
        let mut what = match (&e.request, e.response) {
            (Some(m), _) => format!("{m} request"),
            (_, Some(s)) => format!("{s} response"),
            _ => "message".to_string(),
        };
        let when: Vec<String> = e
            .when
            .iter()
            .map(|(p, mt)| format!("{p} {}", self.describe_matcher(mt)))
            .collect();
        if !when.is_empty() {
            what.push_str(" where ");
            what.push_str(&when.join(" and "));
        }
        what
    }

    /// Every condition of `e` that `m` does not meet, whether it is the
    /// kind of message `e` waits for (method or status and `when`), and how
    /// many of the conditions it met.
    fn judge_candidate(
        &self,
        e: &ExpectInput,
        m: &SipMessage,
    ) -> Result<(Vec<PredicateMiss>, bool, usize), StepFail> {
        let mut misses = Vec::new();
        let mut met = 0;
        let other = |m: &SipMessage| match m.method() {
            Some(x) => format!("a {x} request"),
            None => format!("a {} response", m.summary()),
        };
        match (&e.request, e.response) {
            (Some(meth), _) => match m.method() {
                Some(x) if x.eq_ignore_ascii_case(meth) => met += 1,
                _ => misses.push(PredicateMiss {
                    field: "method".into(),
                    expected: meth.to_ascii_uppercase(),
                    actual: m.method().map(str::to_string).unwrap_or_else(|| other(m)),
                }),
            },
            (_, Some(code)) => match m.status() {
                Some(s) if s == code => met += 1,
                Some(s) => misses.push(PredicateMiss {
                    field: "status".into(),
                    expected: code.to_string(),
                    actual: s.to_string(),
                }),
                None => misses.push(PredicateMiss {
                    field: "status".into(),
                    expected: code.to_string(),
                    actual: other(m),
                }),
            },
            _ => {}
        }
        for (p, mt) in &e.when {
            let miss = self.eval_matcher(p, mt, resolve(m, p).as_deref(), Some(m))?;
            if miss.is_empty() {
                met += 1;
            }
            misses.extend(miss);
        }
        let kind_ok = misses.is_empty();
        for (p, mt) in &e.matches {
            let miss = self.eval_matcher(p, mt, resolve(m, p).as_deref(), Some(m))?;
            if miss.is_empty() {
                met += 1;
            }
            misses.extend(miss);
        }
        Ok((misses, kind_ok, met))
    }

    async fn expect(&mut self, e: &ExpectInput) -> Result<(), StepFail> {
        let wait = e
            .timeout
            .map(|d| d.0)
            .or(self.suite.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let deadline = if e.absent {
            Instant::now() + crate::proto::scaled(wait, self.scale).max(MIN_ABSENT_WAIT)
        } else {
            self.deadline(wait)
        };
        let what = self.expect_what(e);
        let mut watch = Watch::default();
        loop {
            let inc = match self.recv_routed(deadline, true).await {
                Ok(Some(i)) => i,
                Ok(None) if e.absent => return Ok(()),
                Ok(None) => {
                    let n = watch.len();
                    let candidates = watch.finish();
                    let mut f = match candidates.first() {
                        None => StepFail::new(
                            "timeout",
                            format!("no {what} within {}: no message arrived", Dur(wait)),
                        )
                        .exp(what.clone(), "no message"),
                        Some(c) => {
                            let why = match (c.reasons.first(), &c.note) {
                                (Some(r), _) => r.to_string(),
                                (None, Some(n)) => n.clone(),
                                (None, None) => String::new(),
                            };
                            StepFail::new(
                                "timeout",
                                format!(
                                    "no {what} within {}: {n} other message{} arrived; the closest, {}, {why}",
                                    Dur(wait),
                                    if n == 1 { "" } else { "s" },
                                    c.summary,
                                ),
                            )
                            .exp(what.clone(), c.summary.clone())
                        }
                    };
                    f.set_candidates(candidates);
                    // Bytes that arrived but never made a whole message (a
                    // stream whose Content-Length overstates the body).
                    let local = self.ep.local_addr();
                    let pending: Vec<u8> = self
                        .ep
                        .tap
                        .packets()
                        .iter()
                        .filter(|p| {
                            p.transport == Transport::Tcp
                                && p.src != local
                                && p.dst.port() == local.port()
                        })
                        .filter(|p| p.time >= self.step_started_wall)
                        .flat_map(|p| p.bytes.clone())
                        .collect();
                    if !pending.is_empty() {
                        f.received = Some(format!(
                            "{} bytes that never formed a complete SIP message",
                            pending.len()
                        ));
                        f.extra().bytes = Some(pending);
                    }
                    return Err(f);
                }
                Err(_) if e.absent => return Ok(()),
                Err(er) => return Err(StepFail::new("transport", format!("{er:#}"))),
            };
            self.log("received", inc.from, &inc.raw);
            let at_ms = self.t0.elapsed().as_millis() as u64;
            let parsed = match SipMessage::parse(&inc.raw) {
                Ok(p) => p,
                Err(pe) => {
                    let mut f = StepFail::new(
                        "sip.parse",
                        format!("the peer sent bytes that are not a SIP message: {pe}"),
                    )
                    .exp(
                        what.clone(),
                        format!("{} bytes of non-SIP data", inc.raw.len()),
                    );
                    f.extra().bytes = Some(inc.raw.clone());
                    f.set_candidates(watch.finish());
                    return Err(f);
                }
            };
            // Judged as the lenient reading takes it; answered as sent.
            let orig = parsed.message;
            let m = self.lenient_view_for(&orig, &self.addressee(e));
            let (reasons, kind_ok, met) = self.judge_candidate(e, &m)?;
            let mut cand = Candidate {
                summary: candidate_summary(&m),
                at_ms,
                closest: false,
                note: None,
                findings: self.explaining(&inc.raw, &reasons),
                reasons,
            };
            if let Some(k) = Self::transaction_key(&m) {
                if !self.seen.insert(k) {
                    // A retransmission of something already handled.
                    cand.note = Some("retransmission of a message already handled".into());
                    watch.add(met, cand);
                    continue;
                }
            }
            if m.status().is_some_and(|s| s < 200) && e.response.is_none_or(|r| r >= 200) {
                cand.note = Some("provisional response".into());
                watch.add(met, cand);
                continue;
            }
            if m.status().is_some() {
                // A response to an earlier request (a late retransmission) is not this one's.
                let sent = self
                    .last_sent_request
                    .as_ref()
                    .and_then(|r| r.cseq().map(|c| c.seq));
                let got = m.cseq().map(|c| c.seq);
                if sent.is_some() && got != sent {
                    cand.note = Some(format!(
                        "answers an earlier request (CSeq {}, the last sent is {})",
                        got.map(|g| g.to_string()).unwrap_or("absent".into()),
                        sent.unwrap_or_default()
                    ));
                    watch.add(met, cand);
                    continue;
                }
            }
            if !kind_ok {
                if let Some(rule) = self.background_rule(&orig, inc.from).await? {
                    cand.note = Some(rule);
                    watch.add(met, cand);
                    continue;
                }
            }
            if e.absent {
                if kind_ok {
                    let mut f = StepFail::new(
                        "absent",
                        format!("{} arrived, and the step expects no {what}", m.summary()),
                    )
                    .exp(format!("no {what}"), m.summary());
                    watch.add(usize::MAX, cand);
                    f.set_candidates(watch.finish());
                    return Err(f);
                }
                watch.add(met, cand);
                continue;
            }
            if !kind_ok {
                let missed: Vec<String> = cand
                    .reasons
                    .iter()
                    .take_while(|r| {
                        r.field == "method" || r.field == "status" || e.when.contains_key(&r.field)
                    })
                    .map(|r| r.to_string())
                    .collect();
                let mut f = StepFail::new(
                    "message",
                    format!(
                        "{} arrived instead of the {what}: {}",
                        m.summary(),
                        missed.join("; ")
                    ),
                )
                .exp(what.clone(), m.summary());
                watch.add(met, cand);
                f.set_candidates(watch.finish());
                return Err(f);
            }
            if m.is_request() {
                self.last_request = Some((orig.clone(), inc.from));
                if let Some(code) = e.reply {
                    self.answer(&orig, inc.from, code).await?;
                }
            } else if matches!(m.status(), Some(401 | 407)) {
                let h = if m.status() == Some(401) {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                self.last_challenge_received =
                    m.headers.get(h).and_then(|v| Challenge::parse(v).ok());
            }
            // Every check of the step is judged, so one failure does not
            // hide the others.
            let mut fails = Vec::new();
            if let Some(a) = &e.after {
                let vars = &self.vars;
                let (min, max) = a
                    .window(&|s| vars.expand(s).map_err(|e| e.to_string()))
                    .map_err(err)?;
                let el = inc.at.saturating_duration_since(self.last_step_end);
                let protocol = Duration::from_secs_f64(el.as_secs_f64() / self.scale);
                let shown = format!("{:.1} s", protocol.as_secs_f64());
                if let Some(min) = min {
                    if protocol < min.0 {
                        fails.push(
                            StepFail::new(
                                "after.min",
                                format!(
                                    "{} arrived {shown} after the previous step, earlier than the {min} the step allows",
                                    m.summary()
                                ),
                            )
                            .exp(
                                format!("at least {min} after the previous step"),
                                shown.clone(),
                            ),
                        );
                        cand.reasons.push(PredicateMiss {
                            field: "after.min".into(),
                            expected: format!("at least {min}"),
                            actual: shown.clone(),
                        });
                    }
                }
                if let Some(max) = max {
                    if protocol > max.0 {
                        fails.push(
                            StepFail::new(
                                "after.max",
                                format!(
                                    "{} arrived {shown} after the previous step, later than the {max} the step allows",
                                    m.summary()
                                ),
                            )
                            .exp(format!("at most {max} after the previous step"), shown.clone()),
                        );
                        cand.reasons.push(PredicateMiss {
                            field: "after.max".into(),
                            expected: format!("at most {max}"),
                            actual: shown,
                        });
                    }
                }
            }
            for (path, matcher) in &e.matches {
                let v = resolve(&m, path);
                if let Err(f) = self.check_matcher(path, matcher, v.as_deref(), Some(&m)) {
                    fails.push(f);
                }
            }
            for c in &e.check {
                if let Err(f) = self.check(c, &m) {
                    cand.reasons.push(PredicateMiss {
                        field: format!("check {}", f.check),
                        expected: f.expected.clone().unwrap_or_else(|| "to pass".into()),
                        actual: f.received.clone().unwrap_or_else(|| f.message.clone()),
                    });
                    fails.push(f);
                }
            }
            if let Some(g) = &e.golden {
                if let Err(f) = self.golden(g, &orig, inc.from) {
                    cand.reasons.push(PredicateMiss {
                        field: "golden".into(),
                        expected: f.expected.clone().unwrap_or_default(),
                        actual: f.received.clone().unwrap_or_default(),
                    });
                    fails.push(f);
                }
            }
            for (name, path) in &e.capture {
                match resolve(&m, path) {
                    Some(v) => self.vars.set(name, v),
                    None => fails.push(
                        StepFail::new(
                            "capture",
                            format!("cannot capture {name}: {} has no {path}", m.summary()),
                        )
                        .exp(format!("a value at {path}"), "absent"),
                    ),
                }
            }
            if let Some(mut first) = StepFail::join(fails) {
                cand.findings = self.explaining(&inc.raw, &cand.reasons);
                watch.add(usize::MAX, cand);
                first.set_candidates(watch.finish());
                return Err(first);
            }
            return Ok(());
        }
    }

    /// Handle `m` by the suite's background rules; `true` when one applied.
    async fn background(&mut self, m: &SipMessage, from: SocketAddr) -> Result<bool, StepFail> {
        Ok(self.background_rule(m, from).await?.is_some())
    }

    /// Handle `m` by the suite's background rules; how, when one applied.
    async fn background_rule(
        &mut self,
        m: &SipMessage,
        from: SocketAddr,
    ) -> Result<Option<String>, StepFail> {
        let Some(method) = m.method() else {
            return Ok(None);
        };
        let mut picked = None;
        for (i, b) in self.suite.background.iter().enumerate() {
            if !b.request.eq_ignore_ascii_case(method) {
                continue;
            }
            let mut ok = true;
            for (p, mt) in &b.when {
                if !self
                    .eval_matcher(p, mt, resolve(m, p).as_deref(), Some(m))?
                    .is_empty()
                {
                    ok = false;
                    break;
                }
            }
            if ok {
                picked = Some(i);
                break;
            }
        }
        let Some(i) = picked else {
            return Ok(None);
        };
        let rule = self.suite.background[i].clone();
        let when: Vec<String> = rule
            .when
            .iter()
            .map(|(p, mt)| format!("{p} {}", self.describe_matcher(mt)))
            .collect();
        let shown = if when.is_empty() {
            rule.request.clone()
        } else {
            format!("{} where {}", rule.request, when.join(" and "))
        };
        if let Some(code) = rule.reply {
            self.answer(m, from, code).await?;
            Ok(Some(format!(
                "answered {code} by background rule {} ({shown})",
                i + 1
            )))
        } else {
            Ok(Some(format!(
                "taken by background rule {} ({shown})",
                i + 1
            )))
        }
    }

    /// A plain response to `req` with `code`.
    async fn answer(
        &mut self,
        req: &SipMessage,
        from: SocketAddr,
        code: u16,
    ) -> Result<(), StepFail> {
        let mut r = sip::response_to(req, code, Some(&self.to_tag));
        r.headers.push("User-Agent", "camcert");
        let r = r.with_content_length();
        self.send_bytes(Some(from), r.to_bytes()).await
    }

    async fn collect(&mut self, c: &CollectInput) -> Result<(), StepFail> {
        let wait = c
            .timeout
            .map(|d| d.0)
            .or(self.suite.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let deadline = self.deadline(wait);
        let sn = match &c.sn {
            Some(s) => Some(
                self.x(s)?
                    .parse::<u64>()
                    .map_err(|_| err("collect.sn is not a number"))?,
            ),
            None => self.last_sn_sent,
        };
        let cmd = c.cmd_type.clone();
        let mut parts: Vec<manscdp::Message> = Vec::new();
        let mut trees: Vec<manscdp::Element> = Vec::new();
        let (list, item) = if cmd.eq_ignore_ascii_case("RecordInfo") {
            ("RecordList", "RecordList/Item")
        } else {
            ("DeviceList", "DeviceList/Item")
        };
        let mut sum_num: Option<u64> = None;
        let mut seen_items = std::collections::BTreeSet::new();
        let mut findings: Vec<String> = Vec::new();
        let mut watch = Watch::default();
        let what = format!(
            "{cmd} Response MESSAGE{}",
            sn.map(|n| format!(" with SN {n}")).unwrap_or_default()
        );
        loop {
            if let Some(total) = sum_num {
                if seen_items.len() as u64 >= total {
                    break;
                }
            }
            let inc = match self.recv_routed(deadline, true).await {
                Ok(Some(i)) => i,
                Ok(None) if c.allow_findings && !parts.is_empty() => {
                    // SumNum never reached: one more paging mismatch.
                    findings.push(format!(
                        "the answer stopped at {} of {} items",
                        seen_items.len(),
                        sum_num.map(|n| n.to_string()).unwrap_or("?".into())
                    ));
                    break;
                }
                Ok(None) => {
                    let mut f = if parts.is_empty() {
                        StepFail::new(
                            "timeout",
                            format!(
                                "no {what} within {}: {}",
                                Dur(wait),
                                match watch.len() {
                                    0 => "no message arrived".to_string(),
                                    1 => "1 other message arrived".to_string(),
                                    n => format!("{n} other messages arrived"),
                                }
                            ),
                        )
                        .exp(what.clone(), "no such message")
                    } else {
                        StepFail::new(
                            "collect",
                            format!(
                                "the {cmd} answer stopped at {} of {} items",
                                seen_items.len(),
                                sum_num.map(|n| n.to_string()).unwrap_or("?".into())
                            ),
                        )
                        .exp(
                            format!(
                                "SumNum = {} items",
                                sum_num.map(|n| n.to_string()).unwrap_or("?".into())
                            ),
                            format!("{} items in {} messages", seen_items.len(), parts.len()),
                        )
                    };
                    f.set_candidates(watch.finish());
                    return Err(f);
                }
                Err(er) => return Err(StepFail::new("transport", format!("{er:#}"))),
            };
            self.log("received", inc.from, &inc.raw);
            let m = match SipMessage::parse(&inc.raw) {
                Ok(p) => p.message,
                Err(pe) => {
                    let mut f = StepFail::new(
                        "sip.parse",
                        format!("the peer sent bytes that are not a SIP message: {pe}"),
                    );
                    f.extra().bytes = Some(inc.raw.clone());
                    return Err(f);
                }
            };
            let (reasons, met) = collect_misses(&m, &cmd, sn);
            let mut cand = Candidate {
                summary: candidate_summary(&m),
                at_ms: self.t0.elapsed().as_millis() as u64,
                closest: false,
                note: None,
                findings: self.explaining(&inc.raw, &reasons),
                reasons,
            };
            if let Some(k) = Self::transaction_key(&m) {
                if !self.seen.insert(k) {
                    cand.note = Some("retransmission of a message already handled".into());
                    watch.add(met, cand);
                    continue;
                }
            }
            if !cand.reasons.is_empty() {
                if m.status().is_some() {
                    cand.note = Some("a response, not an answer MESSAGE".into());
                    watch.add(met, cand);
                    continue;
                }
                if let Some(rule) = self.background_rule(&m, inc.from).await? {
                    cand.note = Some(rule);
                    watch.add(met, cand);
                    continue;
                }
                let missed: Vec<String> = cand.reasons.iter().map(|r| r.to_string()).collect();
                let mut f = StepFail::new(
                    "message",
                    format!(
                        "{} arrived instead of the {what}: {}",
                        m.summary(),
                        missed.join("; ")
                    ),
                )
                .exp(what.clone(), m.summary());
                watch.add(met, cand);
                f.set_candidates(watch.finish());
                return Err(f);
            }
            self.answer(&m, inc.from, c.reply.unwrap_or(200)).await?;
            let d = manscdp::Message::decode(&m.body).map_err(|e| {
                let mut f = StepFail::new(
                    "manscdp",
                    format!("{cmd} Response body is not MANSCDP: {e}"),
                );
                f.extra().bytes = Some(m.body.clone());
                f
            })?;
            // Read as recovered, so a field sent as an attribute or a name in
            // another case still counts (the manscdp check judges those).
            let tree = d.recovered_tree().into_owned();
            let total: Option<u64> = tree.get("SumNum").and_then(|v| v.trim().parse().ok());
            match (sum_num, total) {
                (None, Some(t)) => sum_num = Some(t),
                (Some(a), Some(b)) if a != b => findings.push(format!(
                    "SumNum changed from {a} to {b} in message {}",
                    parts.len() + 1
                )),
                (_, None) => findings.push(format!("message {} has no SumNum", parts.len() + 1)),
                _ => {}
            }
            let items = tree.find_all(item);
            let num: Option<usize> = tree
                .get(&format!("{list}@Num"))
                .and_then(|v| v.trim().parse().ok());
            if num != Some(items.len()) {
                findings.push(format!(
                    "message {}: {list} Num={} but {} items",
                    parts.len() + 1,
                    num.map(|n| n.to_string()).unwrap_or("absent".into()),
                    items.len()
                ));
            }
            for it in &items {
                let key = it
                    .get("DeviceID")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{:?}", it));
                let key = format!("{key}|{}", it.get("StartTime").unwrap_or(""));
                if !seen_items.insert(key.clone()) {
                    findings.push(format!("item {key} was sent twice"));
                }
            }
            trees.push(tree.clone());
            parts.push(d.message);
            if sum_num == Some(0) {
                break;
            }
        }
        if let Some(t) = sum_num {
            if seen_items.len() as u64 > t {
                findings.push(format!(
                    "{} items arrived but SumNum is {t}",
                    seen_items.len()
                ));
            }
        }
        for f in &findings {
            self.findings.push(
                Finding::error(
                    "gb.paging",
                    "§目录检索 (SumNum, DeviceList Num; 目录查询应答命令支持多响应消息传输)",
                    f.clone(),
                )
                .into(),
            );
        }
        let mut fails = Vec::new();
        if !c.allow_findings {
            for f in &findings {
                fails.push(
                    StepFail::new("collect", f.clone())
                        .exp("consistent SumNum / Num / items", f.clone()),
                );
            }
        }
        // Checks on the whole answer.
        let all_items: Vec<&manscdp::Element> =
            trees.iter().flat_map(|t| t.find_all(item)).collect();
        for (path, mt) in &c.matches {
            if let Some(field) = path.strip_prefix("item[*].") {
                for (i, it) in all_items.iter().enumerate() {
                    let shown = format!("item[{i}].{field}");
                    if let Err(f) = self.check_matcher(&shown, mt, it.get(field), None) {
                        fails.push(f);
                    }
                }
                continue;
            }
            let v = match path.as_str() {
                "items" => Some(seen_items.len().to_string()),
                "sum_num" => sum_num.map(|n| n.to_string()),
                "messages" => Some(parts.len().to_string()),
                p => p.strip_prefix("item[").and_then(|r| {
                    let (idx, field) = r.split_once("].")?;
                    let idx: usize = idx.parse().ok()?;
                    all_items.get(idx)?.get(field).map(str::to_string)
                }),
            };
            if let Err(f) = self.check_matcher(path, mt, v.as_deref(), None) {
                fails.push(f);
            }
        }
        self.vars
            .set("collected_items", seen_items.len().to_string());
        match StepFail::join(fails) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    fn describe_matcher(&self, m: &MatcherInput) -> String {
        describe_matcher(&self.vars, m)
    }

    fn eval_matcher(
        &self,
        path: &str,
        m: &MatcherInput,
        v: Option<&str>,
        msg: Option<&SipMessage>,
    ) -> Result<Vec<PredicateMiss>, StepFail> {
        eval_matcher(&self.vars, path, m, v, msg)
    }

    /// Check every `field: matcher` of `matches`, with `value` reading a
    /// field; all that fail are reported, the first carrying the others.
    fn check_matchers(
        &self,
        matches: &indexmap::IndexMap<String, MatcherInput>,
        value: impl Fn(&str) -> Option<String>,
        msg: Option<&SipMessage>,
    ) -> Result<(), StepFail> {
        let mut fails = Vec::new();
        for (path, m) in matches {
            let v = value(path);
            match self.eval_matcher(path, m, v.as_deref(), msg) {
                Ok(misses) if misses.is_empty() => {}
                Ok(misses) => fails.push(matcher_fail(path, &misses, v.as_deref(), msg)),
                Err(e) => fails.push(e),
            }
        }
        match StepFail::join(fails) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Check value `v` of field `path` against `m`; `msg` is the message
    /// the value came from (for `equals_field`, and to say where a value
    /// is absent). The failure names every condition that did not hold.
    fn check_matcher(
        &self,
        path: &str,
        m: &MatcherInput,
        v: Option<&str>,
        msg: Option<&SipMessage>,
    ) -> Result<(), StepFail> {
        let misses = self.eval_matcher(path, m, v, msg)?;
        if misses.is_empty() {
            return Ok(());
        }
        Err(matcher_fail(path, &misses, v, msg))
    }

    fn check(&mut self, c: &CheckInput, m: &SipMessage) -> Result<(), StepFail> {
        match c {
            CheckInput::Digest(d) => {
                let raw = m.headers.get("Authorization").ok_or_else(|| {
                    StepFail::new("digest", "no Authorization header")
                        .exp("Digest credentials", "none")
                })?;
                let creds = Credentials::parse(raw).map_err(|e| {
                    StepFail::new("digest", format!("Authorization is unusable: {e}"))
                        .exp("Digest credentials", raw)
                })?;
                if let Some(u) = &d.username {
                    let u = self.x(u)?;
                    if creds.username != u {
                        return Err(StepFail::new("digest", "wrong username")
                            .exp(u, creds.username.clone()));
                    }
                }
                if !self.nonces_issued.is_empty() && !self.nonces_issued.contains(&creds.nonce) {
                    return Err(StepFail::new(
                        "digest",
                        "the nonce is not one this platform issued",
                    )
                    .exp(self.nonces_issued.join(" or "), creds.nonce.clone()));
                }
                let password = self.x(&d.password)?;
                let method = m.method().unwrap_or("REGISTER");
                if !creds.verify(&password, method) {
                    return Err(StepFail::new(
                        "digest",
                        "the digest response does not match the configured password",
                    )
                    .exp(
                        format!(
                            "response {} ({} over the configured password)",
                            creds.expected_response(&password, method),
                            creds.algorithm.name()
                        ),
                        creds.response.clone(),
                    ));
                }
                if !creds.algorithm_explicit {
                    self.findings.push(
                        Finding::warning(
                            "gb.digest-algorithm-omitted",
                            "§基本注册流程 (every example carries algorithm=MD5)",
                            "Authorization omits algorithm= (MD5 assumed)",
                        )
                        .into(),
                    );
                }
                Ok(())
            }
            CheckInput::Manscdp(mc) => {
                let ct = m.headers.get("Content-Type").unwrap_or("");
                match manscdp::match_content_type(ct) {
                    ContentTypeMatch::Exact => {}
                    ContentTypeMatch::NotManscdp => {
                        return Err(StepFail::new("manscdp", "Content-Type is not MANSCDP")
                            .exp(manscdp::CONTENT_TYPE, ct));
                    }
                    ContentTypeMatch::Lenient(fs) => {
                        if mc.strict {
                            return Err(StepFail::new(
                                "manscdp",
                                "Content-Type is not in the strict form",
                            )
                            .exp(manscdp::CONTENT_TYPE, ct));
                        }
                        for f in &fs {
                            let out = audit::Deviation::from(f).to_finding();
                            if !self.findings.iter().any(|x| same_finding(x, &out)) {
                                self.findings.push(out);
                            }
                        }
                    }
                }
                let opts = manscdp::DecodeOptions {
                    strict: self.strict,
                };
                let d = manscdp::Message::decode_with(&m.body, opts).map_err(|e| {
                    let mut f =
                        StepFail::new("manscdp", format!("the body is not MANSCDP XML: {e}"));
                    f.extra().bytes = Some(m.body.clone());
                    f
                })?;
                if let Some(want) = &mc.charset {
                    let want = self.x(want)?;
                    if !d.charset.label().eq_ignore_ascii_case(&want) {
                        return Err(StepFail::new(
                            "manscdp",
                            "the body is in another character set",
                        )
                        .exp(want, d.charset.label()));
                    }
                }
                let limit = if mc.strict {
                    manscdp::Severity::Warning
                } else {
                    manscdp::Severity::Error
                };
                // Every finding over the limit fails the check, each named.
                let mut fails = Vec::new();
                for f in &d.findings {
                    if f.severity >= limit {
                        let mut sf = StepFail::new(
                            "manscdp",
                            format!("{} at {}: {} ({})", f.code, f.path(), f.message, f.clause),
                        );
                        sf.extra().bytes = Some(m.body.clone());
                        fails.push(sf);
                        continue;
                    }
                    let out = audit::Deviation::from(f).to_finding();
                    if !self.findings.iter().any(|x| same_finding(x, &out)) {
                        self.findings.push(out);
                    }
                }
                match StepFail::join(fails) {
                    Some(f) => Err(f),
                    None => Ok(()),
                }
            }
            CheckInput::Ptzcmd(pc) => {
                let field = pc.field.clone().unwrap_or_else(|| "xml.PTZCmd".into());
                let v = resolve(m, &field).ok_or_else(|| {
                    StepFail::new("ptzcmd", format!("no {field}")).exp("an 8-byte PTZCmd", "absent")
                })?;
                PtzCmd::from_hex(v.trim()).map_err(|e| {
                    StepFail::new("ptzcmd", format!("invalid PTZCmd {v:?}: {e}"))
                        .exp("a valid PTZCmd", v.clone())
                })?;
                Ok(())
            }
            CheckInput::GbDate(g) => {
                let v = m.headers.get("Date").ok_or_else(|| {
                    StepFail::new("gb_date", "no Date header for time sync")
                        .exp("Date: yyyy-MM-ddTHH:mm:ss.SSS", "none")
                })?;
                let (t, finding) = parse_date(v)
                    .map_err(|e| StepFail::new("gb_date", e).exp("yyyy-MM-ddTHH:mm:ss.SSS", v))?;
                if let Some(f) = finding {
                    if g.strict || self.strict {
                        return Err(StepFail::new("gb_date", f.message.clone())
                            .exp("yyyy-MM-ddTHH:mm:ss.SSS", v));
                    }
                    self.findings.push(f.into());
                }
                if let Some(skew) = g.max_skew {
                    let now = chrono::Local::now().naive_local();
                    let diff = (now - t).num_milliseconds().unsigned_abs();
                    if diff > skew.0.as_millis() as u64 {
                        return Err(StepFail::new(
                            "gb_date",
                            "Date is too far from the harness clock",
                        )
                        .exp(format!("within {skew} of {}", format_date(now)), v));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb_suites() -> Vec<Suite> {
        super::super::load::load_all(&[PathBuf::from("suites/gb28181")]).expect("suites load")
    }

    /// Each planned case run as (slot, suite, case, transport), by slot.
    fn runs(units: &[Unit]) -> Vec<(usize, String, String, Transport)> {
        let mut v: Vec<_> = units
            .iter()
            .flat_map(|u| {
                u.cases
                    .iter()
                    .map(|(c, slot)| (*slot, u.suite.name.clone(), c.id.clone(), u.transport))
            })
            .collect();
        v.sort_by_key(|r| r.0);
        v
    }

    #[test]
    fn side_by_side_plans_the_same_runs_in_the_same_report_order() {
        let suites = gb_suites();
        let mut opts = RunOptions {
            jobs: Some(1),
            ..Default::default()
        };
        let serial = plan(&suites, &opts);
        // One at a time, the units run in report order.
        let order: Vec<usize> = serial
            .iter()
            .flat_map(|u| u.cases.iter().map(|c| c.1))
            .collect();
        assert_eq!(order, (0..order.len()).collect::<Vec<_>>());
        opts.jobs = Some(8);
        let parallel = plan(&suites, &opts);
        assert!(parallel.len() > serial.len());
        assert_eq!(runs(&serial), runs(&parallel));
        for u in &parallel {
            // A unit is one suite and transport, in report order; a shared
            // session split up holds at most SHARD_CASES cases that keep
            // it, and the cases that break it stay after the last of those.
            assert!(u.cases.windows(2).all(|w| w[0].1 < w[1].1));
            let calm = u
                .cases
                .iter()
                .filter(|(c, _)| dut_session::disruption(c) == 0)
                .count();
            assert!(calm <= SHARD_CASES, "{calm}");
            let broken: Vec<usize> = u
                .cases
                .iter()
                .filter(|(c, _)| dut_session::disruption(c) > 0)
                .map(|(_, slot)| *slot)
                .collect();
            let serial_unit = serial
                .iter()
                .find(|s| s.cases.iter().any(|(_, slot)| broken.first() == Some(slot)));
            if let Some(s) = serial_unit {
                let all: Vec<usize> = s
                    .cases
                    .iter()
                    .filter(|(c, _)| dut_session::disruption(c) > 0)
                    .map(|(_, slot)| *slot)
                    .collect();
                assert_eq!(broken, all, "{} {}", u.suite.name, u.transport);
            }
        }
        // The whole shared session stays one unit one at a time.
        assert!(serial.iter().any(|u| u.cases.len() > SHARD_CASES));
    }

    #[test]
    fn one_device_or_one_listen_address_means_one_unit_at_a_time() {
        let mut opts = RunOptions {
            jobs: Some(8),
            ..Default::default()
        };
        assert_eq!(effective_jobs(&opts), 8);
        opts.jobs = None;
        assert_eq!(effective_jobs(&opts), DEFAULT_BUILTIN_JOBS);
        opts.listen = Some("127.0.0.1:5060".parse().unwrap());
        assert_eq!(effective_jobs(&opts), 1);
        opts.listen = None;
        opts.jobs = Some(8);
        opts.target = Some("udp://192.0.2.10:5060".parse().unwrap());
        assert_eq!(effective_jobs(&opts), 1);
        // Against the device, a suite and transport keep one session.
        let suites = gb_suites();
        let units = plan(&suites, &opts);
        assert!(units.iter().all(|u| u.transport == Transport::Udp));
        assert!(units.iter().any(|u| u.cases.len() > SHARD_CASES));
    }

    fn case_result(id: &str) -> CaseResult {
        CaseResult {
            suite: "s".into(),
            suite_file: "s.yaml".into(),
            id: id.into(),
            title: String::new(),
            transport: "udp".into(),
            level: Level::Mandatory,
            tags: vec![],
            clause: String::new(),
            requirements: vec![],
            status: Status::Passed,
            duration_ms: 0,
            failures: vec![],
            findings: vec![],
            messages: vec![],
            pcap: None,
            media: vec![],
        }
    }

    #[test]
    fn results_keep_the_plan_order_whatever_order_they_finish_in() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            report_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let empty = RunResult {
            tool: "camcert".into(),
            version: String::new(),
            started_at: String::new(),
            finished_at: None,
            target: String::new(),
            interrupted: false,
            settings: vec![],
            cases: vec![],
            summary: Default::default(),
            suite_files: vec![],
        };
        let mut sink = Sink::new(empty, &opts);
        let written = || -> Vec<String> {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap())
                    .unwrap();
            v["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        };
        sink.put(2, case_result("C")).unwrap();
        assert_eq!(written(), ["C"]);
        sink.put(0, case_result("A")).unwrap();
        assert_eq!(written(), ["A", "C"]);
        sink.put(3, case_result("D")).unwrap();
        sink.put(1, case_result("B")).unwrap();
        assert_eq!(written(), ["A", "B", "C", "D"]);
        assert_eq!(sink.result.summary.total, 4);
    }

    fn matcher(yaml: &str) -> MatcherInput {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn vars() -> Vars {
        let mut v = Vars::new(&[]);
        v.set("sn", "17");
        v
    }

    /// A 200 answer whose SDP states no direction.
    fn answer() -> SipMessage {
        let body = "v=0\r\no=34020000001320000001 0 0 IN IP4 10.0.0.2\r\ns=Play\r\n\
c=IN IP4 10.0.0.2\r\nt=0 0\r\nm=video 6000 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n";
        let raw = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
From: <sip:34020000002000000001@3402000000>;tag=1\r\n\
To: <sip:34020000001310010001@3402000000>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        SipMessage::parse(raw.as_bytes()).unwrap().message
    }

    fn fail_text(path: &str, m: &MatcherInput, msg: &SipMessage) -> String {
        let v = resolve(msg, path);
        let misses = eval_matcher(&vars(), path, m, v.as_deref(), Some(msg)).unwrap();
        let f = matcher_fail(path, &misses, v.as_deref(), Some(msg));
        let f = f.into_failures(2, "suite.yaml:10:9").remove(0);
        crate::report::terminal::failure_text(&f)
    }

    #[test]
    fn an_absent_sdp_direction_names_the_condition_and_the_answer() {
        let m = matcher("{ equals: sendonly }");
        let text = fail_text("sdp.direction", &m, &answer());
        assert!(
            text.contains("sdp.direction: expected equals \"sendonly\", absent in 200 OK"),
            "{text}"
        );
        let mut s = insta::Settings::clone_current();
        s.set_snapshot_path("../../golden/diagnostics");
        s.set_prepend_module_to_snapshot(false);
        s.bind(|| insta::assert_snapshot!("diag-sdp-direction-absent", text));
    }

    #[test]
    fn every_condition_that_fails_is_named() {
        let msg = answer();
        let v = vars();
        // Two bounds broken at once: both named, with the value.
        let m = matcher("{ min: 7000, max: 5000 }");
        let got = eval_matcher(&v, "sdp.port", &m, Some("6000"), Some(&msg)).unwrap();
        let shown: Vec<String> = got.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "sdp.port: expected >= 7000, got \"6000\"",
                "sdp.port: expected <= 5000, got \"6000\""
            ]
        );
        // Variables are expanded in what was expected.
        let m = matcher("{ equals: \"${sn}\" }");
        let got = eval_matcher(&v, "xml.SN", &m, Some("18"), None).unwrap();
        assert_eq!(
            got[0].to_string(),
            "xml.SN: expected equals \"17\", got \"18\""
        );
        // An absent value fails every value condition at once.
        let m = matcher("{ gb_id: device, regex: \"^34\" }");
        let got = eval_matcher(&v, "from.user", &m, None, None).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].actual, "absent");
        assert!(got[0].expected.contains("matches /^34/"), "{got:?}");
        assert!(got[0].expected.contains("device code"), "{got:?}");
        // `present: false` on a present value.
        let m = matcher("{ present: false }");
        let got = eval_matcher(&v, "to.tag", &m, Some("2"), None).unwrap();
        assert_eq!(got[0].to_string(), "to.tag: expected absent, got \"2\"");
        // A passing matcher names nothing.
        let m = matcher("{ one_of: [\"0100000001\", \"0\"] }");
        assert!(eval_matcher(&v, "sdp.y", &m, Some("0100000001"), None)
            .unwrap()
            .is_empty());
        // A suite fault (an unknown variable) is an error, not a miss.
        let m = matcher("{ equals: \"${nope}\" }");
        assert!(eval_matcher(&v, "xml.SN", &m, Some("1"), None).is_err());
    }

    #[test]
    fn the_closest_candidate_is_the_one_meeting_most_conditions() {
        let mut w = Watch::default();
        let c = |s: &str| Candidate {
            summary: s.into(),
            ..Candidate::default()
        };
        w.add(1, c("a"));
        w.add(3, c("b"));
        w.add(3, c("c"));
        w.add(0, c("d"));
        let out = w.finish();
        assert_eq!(out[0].summary, "c");
        assert!(out[0].closest);
        let rest: Vec<&str> = out[1..].iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(rest, ["a", "b", "d"]);
        assert!(out[1..].iter().all(|c| !c.closest));
        // Bounded: the lowest scores go first.
        let mut w = Watch::default();
        for i in 0..(Watch::LIMIT + 5) {
            w.add(i % 3, c(&i.to_string()));
        }
        assert_eq!(w.len(), Watch::LIMIT + 5);
        let out = w.finish();
        assert_eq!(out.len(), Watch::LIMIT);
        assert!(out.iter().filter(|c| c.closest).count() == 1);
    }

    #[test]
    fn step_failures_keep_every_check() {
        let a = StepFail::new("match xml.SN", "one");
        let b = StepFail::new("match xml.DeviceID", "two");
        let c = StepFail::new("sip.via-transport", "three");
        let mut joined = StepFail::join(vec![a, b]).unwrap();
        joined.extra().more.push(c);
        let fs = joined.into_failures(4, "x.yaml:1:1");
        let checks: Vec<&str> = fs.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(
            checks,
            ["match xml.SN", "match xml.DeviceID", "sip.via-transport"]
        );
        assert!(fs.iter().all(|f| f.step == 4));
        assert!(StepFail::join(vec![]).is_none());
    }
}
