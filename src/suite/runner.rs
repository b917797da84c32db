//! Executes cases. One executor per step kind; waits, timeouts and the
//! protocol-time scale live in one place ([`CaseRun::deadline`]). Each case
//! gets fresh sockets, a fresh built-in peer when no target is given, and
//! its own evidence capture.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;

use super::fields::{decode_text, resolve};
use super::model::*;
use super::vars::{mask, Vars};
use super::{Case, Step, Suite};
use crate::capture::pcap::write_pcap;
use crate::finding::Finding;
use crate::peers::{self, PeerHandle};
use crate::proto::gb28181::device::{Device, DeviceConfig, DeviceFaults};
use crate::proto::gb28181::id::GbId;
use crate::proto::gb28181::manscdp::{self, Charset, ContentTypeMatch, Severity};
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
    escape_bytes, CaseResult, Failure, FindingOut, MessageLog, RequirementRef, RunResult, Status,
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
    pub report_dir: PathBuf,
    pub junit: Option<PathBuf>,
    pub time_scale: Option<f64>,
    /// Faults switched on in the built-in peer.
    pub peer_faults: Vec<String>,
    /// Count optional and conditional failures in the exit code too.
    pub strict: bool,
    /// Print each case as it finishes.
    pub verbose_terminal: bool,
}

/// Check `--peer-fault` names against the peer each suite would start.
pub fn check_peer_faults(suites: &[Suite], faults: &[String]) -> Result<()> {
    for f in faults {
        let known = suites.iter().any(|s| match s.role {
            Role::Platform => DeviceFaults::default().set(f),
            Role::Device | Role::UpperPlatform => PlatformFaults::default().set(f),
        });
        if !known {
            bail!(
                "unknown --peer-fault {f:?}; reference camera faults: {}; reference platform faults: {}",
                DeviceFaults::NAMES.join(", "),
                PlatformFaults::NAMES.join(", ")
            );
        }
    }
    Ok(())
}

/// Run every selected case; results are written to `report_dir` after each
/// case. `stop` set (Ctrl-C) ends the run after writing what finished.
pub async fn run(suites: &[Suite], opts: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunResult> {
    std::fs::create_dir_all(opts.report_dir.join("pcap"))
        .with_context(|| format!("creating {}", opts.report_dir.display()))?;
    let mut result = RunResult {
        tool: "camcert".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: chrono::Local::now().to_rfc3339(),
        finished_at: None,
        target: opts
            .target
            .map(|t| t.to_string())
            .unwrap_or_else(|| "built-in reference peers".into()),
        interrupted: false,
        cases: vec![],
        summary: Default::default(),
    };
    let mut out = std::io::stdout();
    'suites: for suite in suites {
        for case in &suite.cases {
            if !opts.filters.is_empty() && !opts.filters.iter().any(|f| case.matches_filter(f)) {
                continue;
            }
            for &transport in &case.transports {
                if let Some(t) = opts.target {
                    if t.transport != transport {
                        continue;
                    }
                }
                if stop.load(Ordering::SeqCst) {
                    result.interrupted = true;
                    break 'suites;
                }
                let fut = run_case(suite, case, transport, opts);
                let r = tokio::select! {
                    r = fut => r,
                    _ = wait_flag(stop.clone()) => {
                        result.interrupted = true;
                        break 'suites;
                    }
                };
                if opts.verbose_terminal {
                    crate::report::terminal::print_case(&mut out, &r);
                }
                result.cases.push(r);
                result.recount();
                result.write_json(&opts.report_dir)?;
            }
        }
    }
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
struct StepFail {
    check: String,
    message: String,
    expected: Option<String>,
    received: Option<String>,
    bytes: Option<Vec<u8>>,
}

impl StepFail {
    fn new(check: &str, message: impl Into<String>) -> StepFail {
        StepFail {
            check: check.into(),
            message: message.into(),
            expected: None,
            received: None,
            bytes: None,
        }
    }
    fn exp(mut self, e: impl Into<String>, r: impl Into<String>) -> StepFail {
        self.expected = Some(e.into());
        self.received = Some(r.into());
        self
    }
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
}

#[path = "session_steps.rs"]
mod session_steps;

fn base_vars(suite: &Suite, opts: &RunOptions) -> Vars {
    let mut v = Vars::new(&suite.secrets);
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
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        suite: suite.name.clone(),
        suite_file: suite.file.display().to_string(),
        id: case.id.clone(),
        title: case.title.clone(),
        transport: transport.to_string(),
        level: case.level,
        tags: case.tags.clone(),
        clause: case.clause.clone(),
        requirements: case
            .requirements
            .iter()
            .map(|r| RequirementRef {
                id: r.id.clone(),
                clause: r.clause.clone(),
                level: r.level,
                text: r.text.clone(),
            })
            .collect(),
        status: Status::Passed,
        duration_ms: 0,
        failures: vec![],
        findings: vec![],
        messages: vec![],
        pcap: None,
    };
    let secrets;
    match setup(suite, case, transport, opts).await {
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
            });
            secrets = base_vars(suite, opts).secrets();
        }
        Ok(mut run) => {
            for (i, step) in case.steps.iter().enumerate() {
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
                if let Err(f) = r {
                    result.status = if f.check == "error" {
                        Status::Error
                    } else {
                        Status::Failed
                    };
                    result.failures.push(Failure {
                        step: i + 1,
                        location: step.loc.to_string(),
                        check: f.check,
                        message: f.message,
                        expected: f.expected,
                        received: f.received,
                        bytes: f.bytes.as_deref().map(escape_bytes),
                    });
                    break;
                }
            }
            let media = run.close_session().await;
            if let Some(p) = run.peer.take() {
                match p {
                    Peer::Camera(h) => {
                        let _ = h.stop().await;
                    }
                    Peer::Platform(h) => {
                        let _ = h.stop().await;
                    }
                }
            }
            let name = format!("{}-{}.pcap", sanitize(&case.id), transport);
            let path = opts.report_dir.join("pcap").join(&name);
            let mut packets = run.ep.tap.packets();
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
            secrets = run.vars.secrets();
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

fn mask_result(r: &mut CaseResult, secrets: &[String]) {
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
    let (ep, peer) = match (suite.role, opts.target) {
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
                cfg.domain = peer_var(&peer_vars, "domain", &cfg.domain)?;
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
        seen: HashSet::new(),
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
    })
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
        match &step.input {
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
        }
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
                eprintln!("ACTION REQUIRED: {}", self.x(&note)?);
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
        let what = match (&e.request, e.response) {
            (Some(m), _) => format!("{m} request"),
            (_, Some(s)) => format!("{s} response"),
            _ => format!(
                "message with {}",
                e.when.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        loop {
            let inc = match self.recv_routed(deadline, true).await {
                Ok(Some(i)) => i,
                Ok(None) if e.absent => return Ok(()),
                Ok(None) => {
                    let mut f = StepFail::new("timeout", format!("no {what} within {}", Dur(wait)))
                        .exp(what.clone(), "nothing");
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
                        f.bytes = Some(pending);
                    }
                    return Err(f);
                }
                Err(er) if e.absent => {
                    let _ = er;
                    return Ok(());
                }
                Err(er) => return Err(StepFail::new("transport", format!("{er:#}"))),
            };
            self.log("received", inc.from, &inc.raw);
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
                    f.bytes = Some(inc.raw.clone());
                    return Err(f);
                }
            };
            let m = parsed.message;
            if let Some(k) = Self::transaction_key(&m) {
                if !self.seen.insert(k) {
                    continue; // retransmission of something already handled
                }
            }
            if m.status().is_some_and(|s| s < 200) && e.response.is_none_or(|r| r >= 200) {
                continue; // provisional
            }
            if m.status().is_some() {
                // A response to an earlier request (a late retransmission) is not this one's.
                let sent = self
                    .last_sent_request
                    .as_ref()
                    .and_then(|r| r.cseq().map(|c| c.seq));
                if sent.is_some() && m.cseq().map(|c| c.seq) != sent {
                    continue;
                }
            }
            let kind_ok = match (&e.request, e.response) {
                (Some(meth), _) => m.method().is_some_and(|x| x.eq_ignore_ascii_case(meth)),
                (_, Some(code)) => m.status() == Some(code),
                _ => true,
            } && e.when.iter().all(|(p, mt)| {
                self.check_matcher(p, mt, resolve(&m, p).as_deref(), Some(&m))
                    .is_ok()
            });
            if !kind_ok && self.background(&m, inc.from).await? {
                continue;
            }
            if e.absent {
                if kind_ok {
                    return Err(StepFail::new(
                        "absent",
                        format!("expected no {what}, but one arrived"),
                    )
                    .exp(format!("no {what}"), m.summary()));
                }
                continue;
            }
            if !kind_ok {
                return Err(StepFail::new(
                    "message",
                    format!("expected {what}, received {}", m.summary()),
                )
                .exp(what.clone(), m.summary()));
            }
            if !parsed.findings.is_empty() && !e.allow_findings {
                let f0 = &parsed.findings[0];
                let mut f = StepFail::new(f0.code, format!("{} ({})", f0.message, f0.clause));
                f.bytes = Some(inc.raw.clone());
                return Err(f);
            }
            for f in &parsed.findings {
                self.findings.push(FindingOut::in_message(f, &inc.raw));
            }
            if m.is_request() {
                self.last_request = Some((m.clone(), inc.from));
                if let Some(code) = e.reply {
                    self.answer(&m, inc.from, code).await?;
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
            let mut fails = Vec::new();
            if let Some(a) = &e.after {
                let el = inc.at.saturating_duration_since(self.last_step_end);
                let protocol = Duration::from_secs_f64(el.as_secs_f64() / self.scale);
                let shown = format!("{:.1} s", protocol.as_secs_f64());
                if let Some(min) = a.min {
                    if protocol < min.0 {
                        fails.push(
                            StepFail::new(
                                "after.min",
                                format!("{} arrived too early", m.summary()),
                            )
                            .exp(
                                format!("at least {min} after the previous step"),
                                shown.clone(),
                            ),
                        );
                    }
                }
                if let Some(max) = a.max {
                    if protocol > max.0 {
                        fails.push(
                            StepFail::new("after.max", format!("{} arrived too late", m.summary()))
                                .exp(format!("at most {max} after the previous step"), shown),
                        );
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
                    fails.push(f);
                }
            }
            if let Some(first) = fails.into_iter().next() {
                // Report the first; the message log holds the whole message.
                return Err(first);
            }
            for (name, path) in &e.capture {
                match resolve(&m, path) {
                    Some(v) => self.vars.set(name, v),
                    None => {
                        return Err(StepFail::new(
                            "capture",
                            format!("cannot capture {name}: {} has no {path}", m.summary()),
                        ))
                    }
                }
            }
            return Ok(());
        }
    }

    /// Handle `m` by the suite's background rules; `true` when one applied.
    async fn background(&mut self, m: &SipMessage, from: SocketAddr) -> Result<bool, StepFail> {
        let Some(method) = m.method() else {
            return Ok(false);
        };
        let rule = self.suite.background.iter().find(|b| {
            b.request.eq_ignore_ascii_case(method)
                && b.when.iter().all(|(p, mt)| {
                    self.check_matcher(p, mt, resolve(m, p).as_deref(), Some(m))
                        .is_ok()
                })
        });
        let Some(rule) = rule.cloned() else {
            return Ok(false);
        };
        if let Some(code) = rule.reply {
            self.answer(m, from, code).await?;
        }
        Ok(true)
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
                    return Err(StepFail::new(
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
                    ))
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
                    f.bytes = Some(inc.raw.clone());
                    return Err(f);
                }
            };
            if let Some(k) = Self::transaction_key(&m) {
                if !self.seen.insert(k) {
                    continue;
                }
            }
            let picked = m.method() == Some("MESSAGE")
                && resolve(&m, "xml.CmdType").is_some_and(|t| t.eq_ignore_ascii_case(&cmd))
                && resolve(&m, "xml.SN")
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| sn.is_none_or(|want| want == s))
                && manscdp::Message::decode(&m.body)
                    .is_ok_and(|d| d.message.root == manscdp::Root::Response);
            if !picked {
                if m.status().is_some() || self.background(&m, inc.from).await? {
                    continue;
                }
                return Err(StepFail::new(
                    "message",
                    format!(
                        "expected a {cmd} Response MESSAGE, received {}",
                        m.summary()
                    ),
                )
                .exp(format!("{cmd} Response"), m.summary()));
            }
            self.answer(&m, inc.from, c.reply.unwrap_or(200)).await?;
            let d = manscdp::Message::decode(&m.body).map_err(|e| {
                let mut f = StepFail::new(
                    "manscdp",
                    format!("{cmd} Response body is not MANSCDP: {e}"),
                );
                f.bytes = Some(m.body.clone());
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
        if !findings.is_empty() && !c.allow_findings {
            return Err(StepFail::new("collect", findings[0].clone())
                .exp("consistent SumNum / Num / items", findings.join("; ")));
        }
        // Checks on the whole answer.
        let all_items: Vec<&manscdp::Element> =
            trees.iter().flat_map(|t| t.find_all(item)).collect();
        for (path, mt) in &c.matches {
            if let Some(field) = path.strip_prefix("item[*].") {
                for (i, it) in all_items.iter().enumerate() {
                    let shown = format!("item[{i}].{field}");
                    self.check_matcher(&shown, mt, it.get(field), None)?;
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
            self.check_matcher(path, mt, v.as_deref(), None)?;
        }
        self.vars
            .set("collected_items", seen_items.len().to_string());
        Ok(())
    }

    /// Check value `v` of field `path` against `m`; `msg` is the message
    /// the value came from (for `equals_field`).
    fn check_matcher(
        &self,
        path: &str,
        m: &MatcherInput,
        v: Option<&str>,
        msg: Option<&SipMessage>,
    ) -> Result<(), StepFail> {
        let shown = v
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "absent".into());
        let fail = |what: String| {
            StepFail::new(&format!("match {path}"), format!("{path} is {shown}"))
                .exp(what, shown.clone())
        };
        if let Some(p) = m.present {
            if p != v.is_some() {
                return Err(fail(if p { "present".into() } else { "absent".into() }));
            }
        }
        let needs_value = m.equals.is_some()
            || m.not_equals.is_some()
            || m.equals_ignore_case.is_some()
            || m.contains.is_some()
            || m.not_contains.is_some()
            || m.greater_than.is_some()
            || m.less_than.is_some()
            || m.equals_field.is_some()
            || m.regex.is_some()
            || m.min.is_some()
            || m.max.is_some()
            || m.one_of.is_some()
            || m.gb_id.is_some();
        let Some(v) = v else {
            return if needs_value {
                Err(fail("a value".into()))
            } else {
                Ok(())
            };
        };
        if let Some(x) = &m.equals {
            let x = self.x(x)?;
            if v != x {
                return Err(fail(format!("{x:?}")));
            }
        }
        if let Some(x) = &m.not_equals {
            let x = self.x(x)?;
            if v == x {
                return Err(fail(format!("anything but {x:?}")));
            }
        }
        if let Some(x) = &m.equals_ignore_case {
            let x = self.x(x)?;
            if !v.eq_ignore_ascii_case(&x) {
                return Err(fail(format!("{x:?} (any case)")));
            }
        }
        if let Some(x) = &m.contains {
            let x = self.x(x)?;
            if !v.contains(&x) {
                return Err(fail(format!("containing {x:?}")));
            }
        }
        if let Some(x) = &m.not_contains {
            let x = self.x(x)?;
            if v.contains(&x) {
                return Err(fail(format!("not containing {x:?}")));
            }
        }
        if let Some(other) = &m.equals_field {
            let msg = msg.ok_or_else(|| err("equals_field needs a single message"))?;
            let want = resolve(msg, other);
            if want.as_deref() != Some(v) {
                let shown_other = want
                    .map(|w| format!("{w:?}"))
                    .unwrap_or_else(|| "absent".into());
                return Err(fail(format!("equal to {other} ({shown_other})")));
            }
        }
        for (bound, greater) in [(&m.greater_than, true), (&m.less_than, false)] {
            let Some(b) = bound else { continue };
            let b = self.x(b)?;
            let limit: f64 = b
                .trim()
                .parse()
                .map_err(|_| err(format!("{path}: bound {b:?} is not a number")))?;
            let n: f64 = v.trim().parse().map_err(|_| fail("a number".into()))?;
            if greater && n <= limit {
                return Err(fail(format!("> {limit}")));
            }
            if !greater && n >= limit {
                return Err(fail(format!("< {limit}")));
            }
        }
        if let Some(r) = &m.regex {
            let r = self.x(r)?;
            let re = regex::Regex::new(&r).map_err(err)?;
            if !re.is_match(v) {
                return Err(fail(format!("matching /{r}/")));
            }
        }
        if m.min.is_some() || m.max.is_some() {
            let n: f64 = v.trim().parse().map_err(|_| fail("a number".into()))?;
            if let Some(min) = m.min {
                if n < min {
                    return Err(fail(format!(">= {min}")));
                }
            }
            if let Some(max) = m.max {
                if n > max {
                    return Err(fail(format!("<= {max}")));
                }
            }
        }
        if let Some(set) = &m.one_of {
            let set: Vec<String> = set.iter().map(|s| self.x(s)).collect::<Result<_, _>>()?;
            if !set.iter().any(|s| s == v) {
                return Err(fail(format!("one of {set:?}")));
            }
        }
        if let Some(kind) = m.gb_id {
            let want = match kind {
                GbIdKind::Any => "a 20-digit GB/T 28181 code",
                GbIdKind::Device => "a 20-digit GB/T 28181 device code (type 111-199)",
                GbIdKind::Platform => "a 20-digit GB/T 28181 platform code (type 200-299)",
            };
            let ok = match GbId::parse(v) {
                Err(_) => false,
                Ok(id) => match kind {
                    GbIdKind::Any => true,
                    GbIdKind::Device => id.is_device(),
                    GbIdKind::Platform => id.is_platform(),
                },
            };
            if !ok {
                return Err(fail(want.into()));
            }
        }
        Ok(())
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
                        for f in fs {
                            self.findings.push(f.into());
                        }
                    }
                }
                let d = manscdp::Message::decode(&m.body).map_err(|e| {
                    let mut f =
                        StepFail::new("manscdp", format!("the body is not MANSCDP XML: {e}"));
                    f.bytes = Some(m.body.clone());
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
                    Severity::Warning
                } else {
                    Severity::Error
                };
                for f in &d.findings {
                    if f.severity >= limit {
                        let mut sf = StepFail::new(
                            "manscdp",
                            format!("{} at {}: {} ({})", f.code, f.path(), f.message, f.clause),
                        );
                        sf.bytes = Some(m.body.clone());
                        return Err(sf);
                    }
                    self.findings.push(f.into());
                }
                Ok(())
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
                    if g.strict {
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
