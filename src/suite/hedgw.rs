//! The HEDGW runner: suites with `protocol: hedgw` (README "Hemu HEDGW").
//!
//! `role: platform`: camcert is the gateway ([`Gateway`] behind a TLS
//! listener) and the DUT a TD that connects to it; without `--target` each
//! case starts the reference device ([`Device`]) against it. `role:
//! device`: camcert is the TD and the DUT a gateway; without `--target`
//! each case starts the reference gateway. The same state machines answer
//! on both sides: the gateway answers logins and PINGs and judges media,
//! the TD logs in, sends PINGs and answers app commands, so a suite's
//! steps are about what it checks.
//!
//! Steps: `connect` (TD role), `send` with `message` and `fields`,
//! `expect` with `message`, `when`, `match`, `capture`, `after`,
//! `absent`; `media` (video frames received), `stream` (the media
//! check's figures), `trigger` (the reference device acts), `wait`.
//! Field paths are those of the decoded message (`dev_login_resp.result`,
//! `message_type`), `msg.PATH` inside the JSON `msg` of the payload
//! (`msg.msgContent.responseSubRequest`), and `findings` / `finding_codes`
//! of the message. Every error-severity finding on a message that arrives
//! during a step fails that step unless the step or the suite allows it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::model::*;
use super::outcome::Fail;
use super::runner::{
    base_vars, mask_result, matcher_misses, matcher_text, Finished, RunOptions, UnitFuture,
};
use super::vars::Vars;
use super::{Case, Step, Suite};
use crate::finding::{Finding, Severity};
use crate::peers::hedgw::{self as edge, tls, DeviceClient, GatewaySession};
use crate::proto::hedgw::device::{Device, DeviceConfig, DeviceEvent, DeviceFaults};
use crate::proto::hedgw::gateway::{GatewayConfig, GatewayEvent, GatewayFaults};
use crate::proto::hedgw::media::{MediaStats, VIDEO};
use crate::proto::hedgw::wire::{self, Decoded};
use crate::proto::hedgw::{
    clause, json, msg, type_by_name, DevAppCmd, DevEventCmd, DevIpCamCmd, DevLoginReq,
    DevLoginResp, DevServerCmd, HedgwMessage, MessageType, TdMediaPackage,
};
use crate::report::{
    Candidate, CaseResult, Failure, FindingOut, MessageLog, PredicateMiss, Status,
};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `f` names a fault of the reference peer a suite of `role` starts.
pub fn knows_fault(role: Role, f: &str) -> bool {
    match role {
        Role::Platform => DeviceFaults::default().set(f),
        _ => GatewayFaults::default().set(f),
    }
}

/// The HEDGW fault names, for the error about an unknown one.
pub fn fault_help(suites: &[Suite]) -> String {
    if !suites.iter().any(|s| s.protocol == Protocol::Hedgw) {
        return String::new();
    }
    format!(
        "; reference HEDGW device faults: {}; reference HEDGW gateway faults: {}",
        DeviceFaults::NAMES.join(", "),
        GatewayFaults::NAMES.join(", ")
    )
}

/// The special paths beside the message's own fields.
const EXTRA_ROOTS: &[&str] = &["findings", "finding_codes"];

/// Is `path` something an `expect` can read?
pub fn check_path(path: &str) -> Result<(), String> {
    if EXTRA_ROOTS.contains(&path) {
        return Ok(());
    }
    if let Some(rest) = path.strip_prefix("msg.") {
        return if rest.is_empty() {
            Err("`msg.` needs a JSON path, e.g. msg.msgContent.subRequest".into())
        } else {
            Ok(())
        };
    }
    wire::check_path(path)
}

/// Shape checks of a HEDGW step, at load time.
pub fn check_step(role: Role, s: &StepInput) -> Result<(), String> {
    let ty = |name: &Option<String>, what: &str| -> Result<(), String> {
        match name {
            None => Err(format!("`{what}` in a HEDGW suite needs `message: TYPE`")),
            Some(n) if n.contains("${") => Ok(()),
            Some(n) => type_by_name(n).map(|_| ()).ok_or_else(|| {
                format!(
                    "unknown message {n:?}; expected DevLoginReq, DevLoginResp, DevEventCmd, DevServerCmd, DevAppCmd, DevIpCamCmd, PING, PONG or TDMediaPackage"
                )
            }),
        }
    };
    match s {
        StepInput::Connect(c) => {
            if role == Role::Platform {
                return Err("`connect` is for `role: device` (camcert as the TD)".into());
            }
            if let Some(t) = &c.transport {
                if !["tls", "tcp", "tls1.1"].contains(&t.as_str()) {
                    return Err(format!(
                        "connect transport {t:?}: expected tls, tcp or tls1.1"
                    ));
                }
            }
            if let Some(e) = &c.expect {
                if !["accepted", "refused"].contains(&e.as_str()) {
                    return Err(format!(
                        "connect expect {e:?}: expected accepted or refused"
                    ));
                }
            }
        }
        StepInput::Send(x) => {
            if x.raw.is_none() {
                ty(&x.message, "send")?;
            }
            for p in x.fields.keys() {
                wire::check_path(p).map_err(|e| format!("field {p:?}: {e}"))?;
            }
        }
        StepInput::Expect(x) => {
            if x.closed {
                if x.message.is_some() || x.absent {
                    return Err("`expect: { closed: true }` waits for the close only; no `message` or `absent`".into());
                }
                return Ok(());
            }
            ty(&x.message, "expect")?;
            for (path, _) in x.matches.iter().chain(&x.when) {
                check_path(path).map_err(|e| format!("match {path:?}: {e}"))?;
            }
            for (var, path) in &x.capture {
                check_path(path).map_err(|e| format!("capture {var:?}: {e}"))?;
            }
            if let Some(g) = &x.golden {
                if x.absent {
                    return Err(
                        "`golden` compares the message taken; an `absent` step takes none".into(),
                    );
                }
                if g.file.trim().is_empty() {
                    return Err("`golden.file` is empty".into());
                }
                for path in &g.redact {
                    check_path(path).map_err(|e| format!("golden redact {path:?}: {e}"))?;
                }
            }
        }
        StepInput::Media(m) => {
            if role != Role::Platform {
                return Err("`media` counts what the TD uploads: `role: platform`".into());
            }
            if m.frames.is_none() {
                return Err("`media` in a HEDGW suite needs `frames`".into());
            }
        }
        StepInput::Stream(st) => {
            for path in st.matches.keys() {
                if !STREAM_FIELDS.contains(&path.as_str()) {
                    return Err(format!(
                        "stream match {path:?}: expected one of {}",
                        STREAM_FIELDS.join(", ")
                    ));
                }
            }
        }
        StepInput::Wait(_) | StepInput::Trigger(_) => {}
        _ => return Err(
            "this step is not one of HEDGW: connect, send, expect, media, stream, trigger, wait"
                .into(),
        ),
    }
    Ok(())
}

const STREAM_FIELDS: &[&str] = &[
    "packages",
    "video_frames",
    "key_frames",
    "sps_pps",
    "audio_packages",
    "thumbnails",
    "bytes",
    "seq_gaps",
    "frame_rate",
    "findings",
];

/// One unit per HEDGW suite with selected cases, its cases in order,
/// their results in slots from `first_slot` on.
pub(crate) fn units<'a>(
    suites: &'a [Suite],
    opts: &'a RunOptions,
    first_slot: usize,
    sink: &Finished,
    stop: &Arc<AtomicBool>,
) -> Vec<UnitFuture<'a>> {
    let mut slot = first_slot;
    let mut out: Vec<UnitFuture<'a>> = Vec::new();
    for suite in suites.iter().filter(|s| s.protocol == Protocol::Hedgw) {
        let cases: Vec<(&Case, usize)> = suite
            .cases
            .iter()
            .filter(|c| opts.selects(c))
            .map(|c| {
                slot += 1;
                (c, slot - 1)
            })
            .collect();
        if cases.is_empty() {
            continue;
        }
        let (sink, stop) = (sink.clone(), stop.clone());
        out.push(Box::pin(async move {
            let mut unit = Unit::new(suite, opts);
            for (case, slot) in cases {
                if stop.load(Ordering::SeqCst) {
                    return Ok(true);
                }
                let r = unit.run_case(case).await;
                sink.send((slot, r))
                    .map_err(|_| anyhow::anyhow!("the results writer stopped"))?;
            }
            unit.close().await;
            Ok(false)
        }));
    }
    out
}

/// A received or sent message, a finding, or a change of the connection.
#[derive(Debug)]
enum Ev {
    Received(Box<Decoded>),
    Sent(Box<HedgwMessage>),
    Finding(Finding),
    Connected,
    LoggedIn,
    Refused(u32),
    Closed(String),
}

impl From<GatewayEvent> for Ev {
    fn from(e: GatewayEvent) -> Ev {
        match e {
            GatewayEvent::Received(d) => Ev::Received(Box::new(d)),
            GatewayEvent::Sent(m) => Ev::Sent(Box::new(m)),
            GatewayEvent::LoggedIn(_) => Ev::LoggedIn,
            GatewayEvent::Finding(f) => Ev::Finding(f),
            GatewayEvent::Closed(s) => Ev::Closed(s),
        }
    }
}

impl From<DeviceEvent> for Ev {
    fn from(e: DeviceEvent) -> Ev {
        match e {
            DeviceEvent::Connected => Ev::Connected,
            DeviceEvent::Received(d) => Ev::Received(Box::new(d)),
            DeviceEvent::Sent(m) => Ev::Sent(Box::new(m)),
            DeviceEvent::LoggedIn(_) => Ev::LoggedIn,
            DeviceEvent::LoginRefused(r) => Ev::Refused(r),
            DeviceEvent::RetryLogin => Ev::Connected,
            DeviceEvent::Finding(f) => Ev::Finding(f),
            DeviceEvent::Closed(s) => Ev::Closed(s),
        }
    }
}

/// camcert's side of the connection with the DUT.
enum Conn {
    /// camcert is the gateway.
    Gw(GatewaySession),
    /// camcert is the TD.
    Td(DeviceClient),
}

impl Conn {
    async fn recv(&mut self) -> Option<Ev> {
        match self {
            Conn::Gw(s) => s.events.recv().await.map(Ev::from),
            Conn::Td(c) => c.events.recv().await.map(Ev::from),
        }
    }

    /// An event already queued, without waiting.
    fn try_recv(&mut self) -> Option<Ev> {
        match self {
            Conn::Gw(s) => s.events.try_recv().ok().map(Ev::from),
            Conn::Td(c) => c.events.try_recv().ok().map(Ev::from),
        }
    }

    async fn send(&self, m: HedgwMessage) {
        match self {
            Conn::Gw(s) => s.command(move |g, _| g.send(m)).await,
            Conn::Td(c) => c.command(move |d, _| d.send(m)).await,
        }
    }

    async fn send_raw(&self, b: Vec<u8>) {
        match self {
            Conn::Gw(s) => s.command(move |g, _| g.send_raw(b)).await,
            Conn::Td(c) => c.command(move |d, _| d.send_raw(b)).await,
        }
    }

    async fn stop(self) {
        match self {
            Conn::Gw(s) => {
                s.stop().await;
            }
            Conn::Td(c) => {
                c.stop().await;
            }
        }
    }
}

/// The cases of one suite: the listener (camcert as gateway) outlives
/// cases; a live connection to a real DUT is kept for the next case.
struct Unit<'a> {
    suite: &'a Suite,
    opts: &'a RunOptions,
    server: Option<(edge::GatewayServer, tls::Identity)>,
    conn: Option<Conn>,
    logged_in: bool,
}

impl<'a> Unit<'a> {
    fn new(suite: &'a Suite, opts: &'a RunOptions) -> Unit<'a> {
        Unit {
            suite,
            opts,
            server: None,
            conn: None,
            logged_in: false,
        }
    }

    async fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.stop().await;
        }
        if let Some((s, _)) = self.server.take() {
            s.close().await;
        }
    }

    async fn run_case(&mut self, case: &'a Case) -> CaseResult {
        let t0 = Instant::now();
        let (suite, opts) = (self.suite, self.opts);
        let mut vars = base_vars(self.suite, self.opts);
        for (k, v) in &case.vars {
            vars.set(k, v.clone());
        }
        let mut run = CaseRun {
            unit: self,
            case,
            vars,
            t0,
            last_step_end: t0,
            log: Vec::new(),
            findings: Vec::new(),
            step_findings: Vec::new(),
            video_frames: 0,
            peer_device: None,
            backlog: Default::default(),
        };
        let mut failures = Vec::new();
        let mut status = Status::Passed;
        let operator = case
            .steps
            .iter()
            .any(|s| matches!(s.input, StepInput::Trigger(_)));
        let builtin =
            opts.target.is_none() && (suite.role != Role::Platform || opts.listen.is_none());
        let skip = operator && opts.no_operator && !builtin && opts.operator_hook.is_none();
        if skip {
            status = Status::Skipped;
            failures.push(Failure {
                step: 0,
                location: case.loc.to_string(),
                check: "operator".into(),
                message: "the case needs an operator action and --no-operator was given".into(),
                expected: None,
                received: None,
                bytes: None,
                candidates: vec![],
            });
        }
        match if skip { Ok(()) } else { run.setup().await } {
            _ if skip => {}
            Err(e) => {
                status = Status::Error;
                failures.push(Failure {
                    step: 0,
                    location: case.loc.to_string(),
                    check: "setup".into(),
                    message: e,
                    expected: None,
                    received: None,
                    bytes: None,
                    candidates: vec![],
                });
            }
            Ok(()) => {
                for (i, step) in case.steps.iter().enumerate() {
                    run.step_findings.clear();
                    let r = run.step(step).await;
                    run.last_step_end = Instant::now();
                    // What the machine found on the message just taken is
                    // queued right behind it.
                    run.drain_ready();
                    let mut fails = match r {
                        Ok(()) => vec![],
                        Err(f) => vec![f],
                    };
                    if !step_allows(step) {
                        // `--strict`: warnings fail a step too.
                        let floor = if run.unit.opts.strict {
                            Severity::Warning
                        } else {
                            Severity::Error
                        };
                        for f in &run.step_findings {
                            if f.severity >= floor && !run.allowed(f.code) {
                                fails.push(Fail::new(&format!("finding {}", f.code), f.describe()));
                            }
                        }
                    }
                    if !fails.is_empty() {
                        status = Status::Failed;
                        for f in fails {
                            failures.push(f.into_failure(i + 1, &step.loc.to_string()));
                        }
                        break;
                    }
                }
            }
        }
        run.teardown().await;
        let secrets = run.vars.secrets();
        let mut r = CaseResult {
            status,
            duration_ms: t0.elapsed().as_millis() as u64,
            failures,
            findings: run.findings.iter().map(FindingOut::from).collect(),
            messages: std::mem::take(&mut run.log),
            ..super::outcome::case_result(suite, case, "tls")
        };
        mask_result(&mut r, &secrets);
        r
    }
}

fn step_allows(s: &Step) -> bool {
    matches!(&s.input, StepInput::Expect(e) if e.allow_findings)
}

struct CaseRun<'u, 'a> {
    unit: &'u mut Unit<'a>,
    case: &'a Case,
    vars: Vars,
    t0: Instant,
    last_step_end: Instant,
    log: Vec<MessageLog>,
    /// Every finding of the case.
    findings: Vec<Finding>,
    /// Findings of the messages that arrived during the running step.
    step_findings: Vec<Finding>,
    /// Video pictures received so far (camcert as gateway).
    video_frames: u64,
    /// The reference device of this case (camcert as gateway, built-in).
    peer_device: Option<DeviceClient>,
    /// Messages noted after a step, not yet handed to one.
    backlog: std::collections::VecDeque<Ev>,
}

impl CaseRun<'_, '_> {
    fn x(&self, s: &str) -> Result<String, Fail> {
        self.vars.expand(s).map_err(|e| Fail::new("variables", e))
    }

    fn var(&self, name: &str, default: &str) -> String {
        self.vars
            .get(name)
            .and_then(|v| self.vars.expand(v).ok())
            .unwrap_or_else(|| default.to_string())
    }

    fn num(&self, name: &str, default: u32) -> u32 {
        self.var(name, "").trim().parse().unwrap_or(default)
    }

    fn allowed(&self, code: &str) -> bool {
        self.unit.suite.allow_findings.iter().any(|a| {
            a == "*"
                || match a.strip_suffix('*') {
                    Some(p) => code.starts_with(p),
                    None => a == code,
                }
        })
    }

    /// Whether camcert starts the DUT's stand-in: not with `--target`, and
    /// not with `--listen` where the DUT is a TD that connects to camcert.
    fn builtin(&self) -> bool {
        self.unit.opts.target.is_none()
            && (self.unit.suite.role != Role::Platform || self.unit.opts.listen.is_none())
    }

    fn faults(&self) -> Vec<String> {
        let mut f = self.unit.opts.peer_faults.clone();
        for k in ["fault", "faults"] {
            if let Some(v) = self
                .case
                .peer
                .get(k)
                .or_else(|| self.unit.suite.peer.get(k))
            {
                f.extend(v.split(',').map(|s| s.trim().to_string()));
            }
        }
        f
    }

    /// The TD configuration, from the suite's variables.
    fn device_config(&self) -> DeviceConfig {
        let d = DeviceConfig::default();
        let l = &d.login;
        DeviceConfig {
            login: DevLoginReq {
                access_key: self.var("access_key", &l.access_key),
                access_secret: self.var("access_secret", &l.access_secret),
                user_name: self.var("user_name", &l.user_name),
                device_token: self.var("device_token", &l.device_token),
                unified_id: self.var("unified_id", &l.unified_id),
                device_mac: self.var("device_mac", &l.device_mac),
                channel_id: self.num("channel_id", l.channel_id),
                ..l.clone()
            },
            device_id: self.var("device_id", &d.device_id),
            max_frame: self.num("max_frame", d.max_frame as u32) as usize,
            ..d
        }
    }

    /// The gateway configuration, from the suite's variables.
    fn gateway_config(&self) -> GatewayConfig {
        let d = GatewayConfig::default();
        let opt = |n: &str| self.vars.get(n).and_then(|v| self.vars.expand(v).ok());
        GatewayConfig {
            access_key: opt("access_key"),
            access_secret: opt("access_secret"),
            device_token: opt("device_token"),
            login_result: self.num("login_result", 0),
            ping_pong_span: self.num("ping_pong_span", d.ping_pong_span),
            device_status: self.num("device_status", d.device_status),
            max_frame: self.num("max_frame", d.max_frame as u32) as usize,
            ..d
        }
    }

    fn timeout(&self, t: Option<Dur>) -> Duration {
        t.map(|d| d.0)
            .or(self.unit.suite.timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// Log an event and keep its findings.
    fn note(&mut self, e: &Ev) {
        let peer = "dut".to_string();
        match e {
            Ev::Received(d) => {
                self.log.push(MessageLog {
                    at_ms: self.ms(),
                    direction: "received",
                    peer,
                    summary: d.summary(),
                    text: shown_view(&d.view),
                });
                if d.message
                    .td_media_package
                    .as_ref()
                    .is_some_and(|p| p.package_type == VIDEO)
                {
                    self.video_frames += 1;
                }
                for f in &d.findings {
                    self.keep(f.clone());
                }
            }
            Ev::Sent(m) => {
                let d = wire::decode(&wire::encode(m));
                self.log.push(MessageLog {
                    at_ms: self.ms(),
                    direction: "sent",
                    peer,
                    summary: d.summary(),
                    text: shown_view(&d.view),
                });
            }
            Ev::Finding(f) => self.keep(f.clone()),
            _ => {}
        }
    }

    fn keep(&mut self, f: Finding) {
        self.step_findings.push(f.clone());
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    /// The next event within `deadline`, noted.
    async fn next(&mut self, deadline: Instant) -> Option<Ev> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        let conn = self.unit.conn.as_mut()?;
        let e = tokio::time::timeout_at(deadline.into(), conn.recv())
            .await
            .ok()?;
        match e {
            Some(e) => {
                self.note(&e);
                match e {
                    Ev::Closed(_) => self.unit.logged_in = false,
                    Ev::LoggedIn => self.unit.logged_in = true,
                    _ => {}
                }
                Some(e)
            }
            None => {
                // The connection's loop ended.
                self.unit.conn = None;
                self.unit.logged_in = false;
                Some(Ev::Closed("the connection ended".into()))
            }
        }
    }

    /// Note the events already queued (their findings count for the step
    /// that just ran); the messages among them wait for the next step.
    fn drain_ready(&mut self) {
        while let Some(e) = self.unit.conn.as_mut().and_then(Conn::try_recv) {
            self.note(&e);
            if matches!(e, Ev::LoggedIn) {
                self.unit.logged_in = true;
            }
            if matches!(e, Ev::Received(_) | Ev::Closed(_)) {
                self.backlog.push_back(e);
            }
        }
    }

    /// Note everything that arrives until `until`.
    async fn idle(&mut self, until: Instant) {
        while Instant::now() < until {
            if self.unit.conn.is_none() {
                tokio::time::sleep_until(until.into()).await;
                break;
            }
            if self.next(until).await.is_none() {
                break;
            }
        }
    }

    async fn setup(&mut self) -> Result<(), String> {
        let needs = self.case.needs;
        match self.unit.suite.role {
            Role::Platform => {
                if self.unit.server.is_none() {
                    let id = tls::Identity::self_signed(&["localhost", "camcert-hedgw"])
                        .map_err(|e| e.to_string())?;
                    let listen = self
                        .unit
                        .opts
                        .listen
                        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
                    let cfg = tls::server_config(&id).map_err(|e| e.to_string())?;
                    let s = edge::serve_gateway(listen, self.gateway_config(), cfg)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    self.unit.server = Some((s, id));
                }
                // New connections take this case's gateway settings.
                if let Some((s, _)) = &self.unit.server {
                    s.set_config(self.gateway_config());
                }
                if self.builtin() {
                    // Each case has a reference device of its own, with its faults.
                    if let Some(c) = self.unit.conn.take() {
                        c.stop().await;
                    }
                    self.unit.logged_in = false;
                    let mut cfg = self.device_config();
                    for f in self.faults() {
                        cfg.faults.set(&f);
                    }
                    cfg.video = Some(
                        include_bytes!("../../captures/sample-h264-320x240-25fps.h264").to_vec(),
                    );
                    cfg.audio = true;
                    let (server, id) = self.unit.server.as_ref().expect("started above");
                    let client = edge::run_device(
                        Device::new(cfg),
                        server.addr,
                        Some(tls::client_config(Some(&id.cert)).map_err(|e| e.to_string())?),
                        "localhost".into(),
                    );
                    self.peer_device = Some(client);
                }
                if needs != Needs::Registered && !self.builtin() {
                    // A case about the login starts from a new connection:
                    // closing this one makes the TD come back.
                    if let Some(c) = self.unit.conn.take() {
                        c.stop().await;
                    }
                    self.unit.logged_in = false;
                }
                if needs == Needs::Registered || needs == Needs::None {
                    // The gateway settings of this case apply to new connections.
                    self.accept(self.timeout(None)).await?;
                }
                if needs == Needs::Registered && !self.unit.logged_in {
                    let deadline = Instant::now() + self.timeout(None);
                    while !self.unit.logged_in {
                        match self.next(deadline).await {
                            Some(Ev::LoggedIn) => self.unit.logged_in = true,
                            Some(Ev::Closed(why)) => {
                                return Err(format!(
                                    "the TD's connection closed before it logged in: {why}"
                                ))
                            }
                            Some(_) => {}
                            None => return Err("the TD did not log in".into()),
                        }
                    }
                }
            }
            _ => {
                if needs == Needs::Registered {
                    self.connect_td(true).await.map_err(|f| f.message)?;
                    let deadline = Instant::now() + self.timeout(None);
                    while !self.unit.logged_in {
                        match self.next(deadline).await {
                            Some(Ev::LoggedIn) => self.unit.logged_in = true,
                            Some(Ev::Refused(r)) => {
                                return Err(format!(
                                    "the gateway refused the login with result {r}"
                                ))
                            }
                            Some(Ev::Closed(why)) => return Err(why),
                            Some(_) => {}
                            None => return Err("no DevLoginResp to the login".into()),
                        }
                    }
                }
            }
        }
        // What setup exchanged is the case's log, not any step's fault.
        self.step_findings.clear();
        Ok(())
    }

    /// Camcert as gateway: take the DUT's next connection, when none is up.
    async fn accept(&mut self, wait: Duration) -> Result<(), String> {
        if self.unit.conn.is_some() {
            return Ok(());
        }
        let Some((server, _)) = self.unit.server.as_mut() else {
            return Err("no listener".into());
        };
        match server.next_session_or_refusals(wait).await {
            Ok(s) => {
                self.unit.conn = Some(Conn::Gw(s));
                Ok(())
            }
            Err(refused) if refused.is_empty() => Err(format!(
                "no TD connected to {} within {} s",
                server.addr,
                wait.as_secs()
            )),
            Err(refused) => Err(format!(
                "no TD connected to {} over TLS 1.2 within {} s; refused: {} ({})",
                server.addr,
                wait.as_secs(),
                refused.join("; "),
                clause::TLS
            )),
        }
    }

    /// Camcert as TD: connect over TLS to the DUT (or the case's reference
    /// gateway), logging in when `login`.
    async fn connect_td(&mut self, login: bool) -> Result<(), Fail> {
        if let Some(c) = self.unit.conn.take() {
            c.stop().await;
        }
        self.backlog.clear();
        self.unit.logged_in = false;
        let (addr, root) = self.gateway_addr().await?;
        let mut cfg = self.device_config();
        cfg.login_on_start = login;
        let tls_cfg =
            tls::client_config(root.as_ref()).map_err(|e| Fail::new("tls", e.to_string()))?;
        let name = self.var("server_name", "localhost");
        let client = edge::run_device(Device::new(cfg), addr, Some(tls_cfg), name);
        self.unit.conn = Some(Conn::Td(client));
        let deadline = Instant::now() + self.timeout(None);
        loop {
            match self.next(deadline).await {
                Some(Ev::Connected) => return Ok(()),
                Some(Ev::Closed(why)) => {
                    return Err(
                        Fail::new("connect", format!("TLS 1.2 connection failed: {why}"))
                            .exp("a TLS 1.2 connection", why),
                    )
                }
                Some(_) => {}
                None => return Err(Fail::new("connect", "no TLS connection within the timeout")),
            }
        }
    }

    /// Where the gateway is: `--target`, or a reference gateway started
    /// for this case (with its certificate).
    async fn gateway_addr(
        &mut self,
    ) -> Result<
        (
            SocketAddr,
            Option<rustls::pki_types::CertificateDer<'static>>,
        ),
        Fail,
    > {
        if let Some(t) = self.unit.opts.target {
            return Ok((t.addr, None));
        }
        if let Some((s, id)) = &self.unit.server {
            return Ok((s.addr, Some(id.cert.clone())));
        }
        let mut cfg = self.gateway_config();
        for f in self.faults() {
            cfg.faults.set(&f);
        }
        let id = tls::Identity::self_signed(&["localhost"])
            .map_err(|e| Fail::new("tls", e.to_string()))?;
        let tls_cfg = tls::server_config(&id).map_err(|e| Fail::new("tls", e.to_string()))?;
        let s = edge::serve_gateway(SocketAddr::from(([127, 0, 0, 1], 0)), cfg, tls_cfg)
            .await
            .map_err(|e| Fail::new("reference gateway", format!("{e:#}")))?;
        let out = (s.addr, Some(id.cert.clone()));
        self.unit.server = Some((s, id));
        Ok(out)
    }

    async fn teardown(&mut self) {
        if let Some(d) = self.peer_device.take() {
            d.stop().await;
        }
        let keep = !self.builtin() && self.unit.suite.role == Role::Platform;
        if !keep {
            if let Some(c) = self.unit.conn.take() {
                c.stop().await;
            }
            self.unit.logged_in = false;
            if self.unit.suite.role != Role::Platform {
                // A reference gateway per case, with the case's faults.
                self.unit.server = None;
            }
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), Fail> {
        match &step.input {
            StepInput::Connect(c) => self.connect(c).await,
            StepInput::Send(s) => self.send(s).await,
            StepInput::Expect(e) => self.expect(e).await,
            StepInput::Wait(d) => {
                self.idle(Instant::now() + d.0).await;
                Ok(())
            }
            StepInput::Media(m) => self.media(m).await,
            StepInput::Stream(s) => self.stream(s).await,
            StepInput::Trigger(t) => self.trigger(t).await,
            _ => Err(Fail::new("step", "not a HEDGW step")),
        }
    }

    async fn connect(&mut self, c: &ConnectInput) -> Result<(), Fail> {
        let want_refused = c.expect.as_deref() == Some("refused");
        let wait = self.timeout(c.timeout).min(Duration::from_secs(5));
        let transport = c.transport.as_deref().unwrap_or("tls");
        let (refused, answer) = match transport {
            "tcp" | "tls1.1" => {
                let (addr, _) = self.gateway_addr().await?;
                let p = if transport == "tcp" {
                    edge::probe_plain_tcp(addr, wait).await
                } else {
                    edge::probe_tls11(addr, wait).await
                }
                .map_err(|e| Fail::new("connect", format!("{e:#}")))?;
                (p.refused, p.answer)
            }
            _ => match self.connect_td(c.login.unwrap_or(true)).await {
                Ok(()) => (false, "a TLS 1.2 connection".to_string()),
                Err(f) if want_refused => (true, f.message),
                Err(f) => return Err(f),
            },
        };
        let what = match transport {
            "tcp" => "plain TCP",
            "tls1.1" => "a TLS 1.1 ClientHello",
            _ => "TLS 1.2",
        };
        match (want_refused, refused) {
            (true, true) | (false, false) => Ok(()),
            (true, false) => Err(Fail::new(
                "connect",
                format!(
                    "{what}: the gateway must refuse it ({}), but {answer}",
                    clause::TLS
                ),
            )
            .exp("refused (closed or TLS alert)", answer)),
            (false, true) => Err(
                Fail::new("connect", format!("{what} was refused: {answer}"))
                    .exp("accepted", answer),
            ),
        }
    }

    /// The template a `send` starts from.
    fn template(&self, t: MessageType) -> HedgwMessage {
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        match t {
            MessageType::DevLoginReq => msg::login_req(self.device_config().login),
            MessageType::DevLoginResp => msg::login_resp(DevLoginResp {
                result: self.num("login_result", 0),
                server_time: Some(now_ms.to_string()),
                device_status: Some(self.num("device_status", 1)),
                ping_pong_span: Some(self.num("ping_pong_span", 30)),
                ..Default::default()
            }),
            MessageType::Ping => msg::ping(0),
            MessageType::Pong => msg::pong(0),
            MessageType::DevEventCmd => msg::event(DevEventCmd {
                r#type: 1,
                status: 1,
                ipcam_time: now_ms,
                msg: None,
            }),
            MessageType::DevServerCmd => msg::server_cmd(DevServerCmd {
                r#type: 7,
                device_status: Some(1),
                ..Default::default()
            }),
            MessageType::DevAppCmd => msg::app_cmd(DevAppCmd {
                r#type: 33,
                src_device_id: self.var("app_id", "camcert-app"),
                ..Default::default()
            }),
            MessageType::DevIpCamCmd => msg::ipcam_cmd(DevIpCamCmd {
                r#type: 2,
                src_device_id: self.device_config().device_id,
                ..Default::default()
            }),
            MessageType::TdMediaPackage => {
                // 20 ms of G.711A silence.
                let data = vec![0xd5; 160];
                msg::media(TdMediaPackage {
                    package_type: 1,
                    sync: 0,
                    data_size: data.len() as u32,
                    data,
                    start_time: 0,
                    seq_num: 0,
                    ipcam_time: Some(now_ms),
                    control_flag: None,
                })
            }
        }
    }

    async fn send(&mut self, s: &SendInput) -> Result<(), Fail> {
        if self.unit.suite.role == Role::Platform {
            self.accept(self.timeout(None))
                .await
                .map_err(|e| Fail::new("send", e))?;
        }
        if self.unit.conn.is_none() {
            return Err(Fail::new("send", "no connection to send on"));
        }
        if let Some(raw) = &s.raw {
            let hex_text: String = self.x(raw)?.split_whitespace().collect();
            let b = hex::decode(&hex_text)
                .map_err(|e| Fail::new("send", format!("raw is not hex: {e}")))?;
            let mut framed = crate::proto::hedgw::frame::frame_bytes(&b);
            // `content_length` announces another length than the bytes have.
            if let Some(n) = s.content_length {
                let n = u32::try_from(n).map_err(|_| {
                    Fail::new("send", format!("content_length {n} does not fit 4 bytes"))
                })?;
                framed[..4].copy_from_slice(&n.to_be_bytes());
            }
            self.log.push(MessageLog {
                at_ms: self.ms(),
                direction: "sent",
                peer: "dut".into(),
                summary: format!("raw {} bytes", b.len()),
                text: hex_text,
            });
            self.unit
                .conn
                .as_ref()
                .expect("checked")
                .send_raw(framed)
                .await;
            return Ok(());
        }
        let name = self.x(s.message.as_deref().unwrap_or(""))?;
        let t = type_by_name(&name)
            .ok_or_else(|| Fail::new("send", format!("unknown message {name:?}")))?;
        let mut m = self.template(t);
        for (path, v) in &s.fields {
            let v = self.x(v)?;
            wire::set_field(&mut m, path, &v).map_err(|e| Fail::new("send", e))?;
        }
        self.unit.conn.as_ref().expect("checked").send(m).await;
        Ok(())
    }

    /// The value at `path` of a received message.
    fn resolve(d: &Decoded, path: &str) -> Option<String> {
        match path {
            "findings" => return Some(d.findings.len().to_string()),
            "finding_codes" => {
                return Some(
                    d.findings
                        .iter()
                        .map(|f| f.code)
                        .collect::<Vec<_>>()
                        .join(","),
                )
            }
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("msg.") {
            let text = ["dev_app_cmd", "dev_ipcam_cmd", "dev_event_cmd"]
                .iter()
                .find_map(|p| d.field(&format!("{p}.msg")))?;
            let j = json::parse(&text, clause::APP_CMD);
            return json::lookup(j.value.as_ref()?, rest);
        }
        d.field(path)
    }

    /// The conditions of `conds` that `d` misses.
    /// `expect: { golden }`: the decoded message as its summary line and
    /// its fields as indented JSON, the `redact` paths replaced by
    /// `<PATH>` and secrets masked, compared with the file (written with
    /// `--update-golden`); a difference fails with a unified diff.
    fn golden(&mut self, g: &crate::suite::model::GoldenInput, d: &Decoded) -> Result<(), Fail> {
        let file = std::path::PathBuf::from(self.x(&g.file)?);
        let mut view = d.view.clone();
        for path in &g.redact {
            let parts: Vec<&str> = path.split('.').collect();
            let mut v = &mut view;
            for (i, part) in parts.iter().enumerate() {
                let Some(next) = v.get_mut(*part) else { break };
                if i + 1 == parts.len() {
                    *next = serde_json::Value::String(format!("<{path}>"));
                    break;
                }
                v = next;
            }
        }
        mask_secrets(&mut view);
        let text = format!(
            "{}\n{}\n",
            d.message_type()
                .and_then(|t| crate::proto::hedgw::type_name(t as i32))
                .unwrap_or("unknown message"),
            serde_json::to_string_pretty(&view).unwrap_or_default()
        );
        match crate::capture::golden::hold(&file, &text, self.unit.opts.update_golden, &d.summary())
        {
            Ok(_) => Ok(()),
            Err(e) => Err(Fail::new("golden", e.message).exp(e.expected, e.received)),
        }
    }

    fn misses(
        &self,
        d: &Decoded,
        conds: &indexmap::IndexMap<String, MatcherInput>,
    ) -> Result<Vec<PredicateMiss>, Fail> {
        let mut out = Vec::new();
        for (path, m) in conds {
            let mut m = m.clone();
            if let Some(other) = m.equals_field.take() {
                m.equals = Some(Self::resolve(d, &other).unwrap_or_default());
            }
            let v = Self::resolve(d, path);
            out.extend(
                matcher_misses(&self.vars, path, &m, v.as_deref())
                    .map_err(|e| Fail::new("match", e))?,
            );
        }
        Ok(out)
    }

    /// Wait for the DUT to close the connection.
    async fn expect_closed(&mut self, e: &ExpectInput) -> Result<(), Fail> {
        let timeout = self.timeout(e.timeout);
        let deadline = Instant::now() + timeout;
        loop {
            if self.unit.conn.is_none() {
                return Ok(());
            }
            match self.next(deadline).await {
                Some(Ev::Closed(_)) => return Ok(()),
                Some(_) => {}
                None => {
                    return Err(Fail::new(
                        "closed",
                        format!(
                            "the connection is still open after {:.1} s",
                            timeout.as_secs_f64()
                        ),
                    )
                    .exp("closed", "open"))
                }
            }
        }
    }

    async fn expect(&mut self, e: &ExpectInput) -> Result<(), Fail> {
        if e.closed {
            return self.expect_closed(e).await;
        }
        let name = self.x(e.message.as_deref().unwrap_or(""))?;
        let want = type_by_name(&name)
            .ok_or_else(|| Fail::new("expect", format!("unknown message {name:?}")))?;
        let timeout = self.timeout(e.timeout);
        let start = Instant::now();
        let deadline = start + timeout;
        if self.unit.suite.role == Role::Platform {
            if let Err(m) = self.accept(timeout).await {
                return if e.absent {
                    Ok(())
                } else {
                    Err(Fail::new("expect", m))
                };
            }
        }
        let window = match &e.after {
            Some(a) => a
                .window(&|s| self.vars.expand(s))
                .map_err(|m| Fail::new("after", m))?,
            None => (None, None),
        };
        let mut candidates: Vec<(usize, Candidate)> = Vec::new();
        let mut others = 0usize;
        loop {
            let ev = self.next(deadline).await;
            let d = match ev {
                None => break,
                Some(Ev::Received(d)) => d,
                Some(Ev::Closed(why)) => {
                    if self.unit.suite.role == Role::Platform {
                        // The TD comes back on a new connection (after a
                        // refused login, a lost heartbeat): keep waiting.
                        if let Some(c) = self.unit.conn.take() {
                            c.stop().await;
                        }
                        let left = deadline.saturating_duration_since(Instant::now());
                        if self.accept(left).await.is_ok() {
                            continue;
                        }
                    }
                    if e.absent {
                        return Ok(());
                    }
                    let mut f = Fail::new(
                        "expect",
                        format!("the connection closed while waiting for {name}: {why}"),
                    )
                    .exp(name.clone(), format!("closed: {why}"));
                    f.candidates = finish(candidates);
                    return Err(f);
                }
                Some(_) => {
                    if self.unit.conn.is_none() {
                        break;
                    }
                    continue;
                }
            };
            if d.message_type() != Some(want) {
                others += 1;
                // Background traffic (PINGs, media) is not a candidate.
                if !matches!(
                    d.message_type(),
                    Some(MessageType::Ping | MessageType::Pong | MessageType::TdMediaPackage)
                ) && candidates.len() < 16
                {
                    candidates.push((
                        0,
                        Candidate {
                            summary: d.summary(),
                            at_ms: self.ms(),
                            reasons: vec![PredicateMiss {
                                field: "message_type".into(),
                                expected: name.clone(),
                                actual: d.field("message_type").unwrap_or_else(|| "absent".into()),
                            }],
                            findings: d.findings.iter().map(FindingOut::from).collect(),
                            ..Default::default()
                        },
                    ));
                }
                continue;
            }
            let when = self.misses(&d, &e.when)?;
            if !when.is_empty() {
                candidates.push((
                    1,
                    Candidate {
                        summary: d.summary(),
                        at_ms: self.ms(),
                        reasons: when,
                        findings: d.findings.iter().map(FindingOut::from).collect(),
                        ..Default::default()
                    },
                ));
                continue;
            }
            // Taken.
            if e.absent {
                return Err(Fail::new(
                    "absent",
                    format!("{name} arrived where none may: {}", d.summary()),
                )
                .exp(format!("no {name}"), d.summary()));
            }
            let since = self.last_step_end.elapsed();
            let (lo, hi) = window;
            if lo.is_some_and(|lo| since < lo.0) || hi.is_some_and(|hi| since > hi.0) {
                return Err(Fail::new(
                    "after",
                    format!(
                        "{name} arrived {:.3} s after the previous step; expected {}..{}",
                        since.as_secs_f64(),
                        lo.map(|d| d.to_string()).unwrap_or_else(|| "0s".into()),
                        hi.map(|d| d.to_string()).unwrap_or_else(|| "∞".into()),
                    ),
                )
                .exp(
                    format!(
                        "between {} and {}",
                        lo.map(|d| d.to_string()).unwrap_or_else(|| "0s".into()),
                        hi.map(|d| d.to_string()).unwrap_or_else(|| "∞".into())
                    ),
                    format!("{:.3}s", since.as_secs_f64()),
                ));
            }
            let misses = self.misses(&d, &e.matches)?;
            if let Some(first) = misses.first() {
                let all: Vec<String> = misses.iter().map(|m| m.to_string()).collect();
                let mut f = Fail::new(&format!("match {}", first.field), all.join("; "))
                    .exp(first.expected.clone(), first.actual.clone());
                f.candidates = vec![Candidate {
                    summary: d.summary(),
                    at_ms: self.ms(),
                    closest: true,
                    reasons: misses,
                    findings: d.findings.iter().map(FindingOut::from).collect(),
                    ..Default::default()
                }];
                return Err(f);
            }
            if let Some(g) = &e.golden {
                self.golden(g, &d)?;
            }
            for (var, path) in &e.capture {
                match Self::resolve(&d, path) {
                    Some(v) => self.vars.set(var, v),
                    None => {
                        return Err(Fail::new(
                            "capture",
                            format!("capture {var}: {path} is absent in {}", d.summary()),
                        ))
                    }
                }
            }
            return Ok(());
        }
        if e.absent {
            return Ok(());
        }
        let conds: Vec<String> = e
            .when
            .iter()
            .map(|(p, m)| format!("{p} {}", matcher_text(&self.vars, m)))
            .collect();
        let mut f = Fail::new(
            "expect",
            format!(
                "no {name}{} within {:.1} s ({} other message(s) arrived)",
                if conds.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", conds.join(" and "))
                },
                timeout.as_secs_f64(),
                others
            ),
        )
        .exp(name, "nothing");
        f.candidates = finish(candidates);
        Err(f)
    }

    async fn media(&mut self, m: &MediaInput) -> Result<(), Fail> {
        let want = m.frames.unwrap_or(0);
        let timeout = m.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
        self.accept(timeout)
            .await
            .map_err(|e| Fail::new("media", e))?;
        let target = self.video_frames + want;
        let deadline = Instant::now() + timeout;
        while self.video_frames < target {
            match self.next(deadline).await {
                None => break,
                Some(Ev::Closed(why)) => {
                    return Err(Fail::new("media", format!("the connection closed: {why}")))
                }
                Some(_) => {}
            }
        }
        if self.video_frames < target {
            let got = want - (target - self.video_frames);
            return Err(Fail::new(
                "media",
                format!(
                    "{got} video frames within {:.1} s; expected {want} (§6.2: the TD uploads while its plan says so)",
                    timeout.as_secs_f64()
                ),
            )
            .exp(format!("{want} frames"), format!("{got} frames")));
        }
        Ok(())
    }

    async fn stats(&self) -> Option<(MediaStats, usize)> {
        let Some(Conn::Gw(s)) = &self.unit.conn else {
            return None;
        };
        let (tx, rx) = oneshot::channel();
        s.command(move |g, _| {
            let errors = g
                .media
                .findings()
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let _ = tx.send((g.media.stats.clone(), errors));
        })
        .await;
        rx.await.ok()
    }

    async fn stream(&mut self, st: &StreamInput) -> Result<(), Fail> {
        let Some((s, errors)) = self.stats().await else {
            return Err(Fail::new("stream", "no connection from a TD"));
        };
        let value = |f: &str| -> Option<String> {
            Some(match f {
                "packages" => s.packages.to_string(),
                "video_frames" => s.video_frames.to_string(),
                "key_frames" => s.key_frames.to_string(),
                "sps_pps" => s.sps_pps.to_string(),
                "audio_packages" => s.audio_packages.to_string(),
                "thumbnails" => s.thumbnails.to_string(),
                "bytes" => s.bytes.to_string(),
                "seq_gaps" => s.seq_gaps.to_string(),
                "frame_rate" => format!("{:.2}", s.frame_rate?),
                "findings" => errors.to_string(),
                _ => return None,
            })
        };
        let mut misses = Vec::new();
        for (path, m) in &st.matches {
            let v = value(path);
            misses.extend(
                matcher_misses(&self.vars, path, m, v.as_deref())
                    .map_err(|e| Fail::new("match", e))?,
            );
        }
        if let Some(first) = misses.first() {
            let all: Vec<String> = misses.iter().map(|m| m.to_string()).collect();
            return Err(
                Fail::new(&format!("stream {}", first.field), all.join("; "))
                    .exp(first.expected.clone(), first.actual.clone()),
            );
        }
        Ok(())
    }

    async fn trigger(&mut self, t: &TriggerInput) -> Result<(), Fail> {
        let Some(dev) = &self.peer_device else {
            // A real DUT: the lab's hook acts, or a person does.
            let note = match &t.note {
                Some(n) => self.x(n)?,
                None => format!("make the device do `{}`", t.action),
            };
            if let Some(hook) = &self.unit.opts.operator_hook {
                let device = self.device_config().device_id;
                let mut cmd = tokio::process::Command::new(hook);
                cmd.arg(&t.action)
                    .arg(&device)
                    .env("CAMCERT_ACTION", &t.action)
                    .env("CAMCERT_DEVICE_ID", &device)
                    .env("CAMCERT_NOTE", &note)
                    .kill_on_drop(true);
                for (k, v) in &t.args {
                    cmd.env(
                        format!("CAMCERT_ARG_{}", k.to_ascii_uppercase()),
                        self.x(v)?,
                    );
                }
                let status = tokio::time::timeout(Duration::from_secs(600), cmd.status())
                    .await
                    .map_err(|_| {
                        Fail::new(
                            "operator",
                            format!("--operator-hook {hook} did not finish within 600 s"),
                        )
                    })?
                    .map_err(|e| {
                        Fail::new(
                            "operator",
                            format!("--operator-hook {hook} could not be run: {e}"),
                        )
                    })?;
                if !status.success() {
                    return Err(Fail::new(
                        "operator",
                        format!(
                            "--operator-hook {hook} {} {device} failed: {status}",
                            t.action
                        ),
                    ));
                }
                return Ok(());
            }
            eprintln!("ACTION REQUIRED [{}]: {note}", self.case.id);
            return Ok(());
        };
        let arg = |k: &str, d: u32| -> Result<u32, Fail> {
            match t.args.get(k) {
                Some(v) => self
                    .x(v)?
                    .trim()
                    .parse()
                    .map_err(|_| Fail::new("trigger", format!("arg {k}: not a number"))),
                None => Ok(d),
            }
        };
        match t.action.as_str() {
            "event" => {
                let (kind, status) = (arg("type", 1)?, arg("status", 1)?);
                dev.command(move |d, now| d.raise_event(now, kind, status, None))
                    .await;
            }
            "resolution" => {
                let text = t
                    .args
                    .get("value")
                    .map(|v| self.x(v))
                    .transpose()?
                    .unwrap_or_else(|| "1280x720".into());
                dev.command(move |d, _| d.report_resolution(text)).await;
            }
            other => {
                return Err(Fail::new(
                    "trigger",
                    format!(
                        "the reference HEDGW device knows no action {other:?} (event, resolution)"
                    ),
                ))
            }
        }
        Ok(())
    }
}

/// The candidates, the closest (most conditions met, latest) first.
fn finish(mut c: Vec<(usize, Candidate)>) -> Vec<Candidate> {
    let best = c
        .iter()
        .enumerate()
        .max_by_key(|(i, (s, _))| (*s, *i))
        .map(|(i, _)| i);
    let mut out = Vec::new();
    if let Some(i) = best {
        let (_, mut first) = c.remove(i);
        first.closest = true;
        out.push(first);
    }
    out.extend(c.into_iter().map(|(_, x)| x));
    out
}

fn shown_view(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Secrets in a decoded view (`access_secret`, passwords) shown as `******`.
fn mask_secrets(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let k = k.to_ascii_lowercase();
                if (k.contains("secret") || k.contains("password")) && x.is_string() {
                    *x = serde_json::Value::String("******".into());
                } else {
                    mask_secrets(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}
