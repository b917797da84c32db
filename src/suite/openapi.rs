//! The OpenAPI runner: suites with `protocol: openapi` (README "Hemu
//! OpenAPI").
//!
//! `role: platform`: camcert is the OpenAPI platform ([`Server`] behind an
//! HTTPS listener, TLS 1.2) and the DUT a TD posting to it; without
//! `--target` each case starts the reference TD ([`run_device`]) with the
//! case's faults, and a reference HEDGW gateway whose address the platform
//! hands out (§5.1.4). The platform answers by itself and judges every
//! request (credentials, clock, signature, fields, flow order, address
//! cache); steps `expect` requests by `message` and check their fields.
//!
//! `role: device`: camcert is the TD and the DUT the platform (without
//! `--target`, the reference platform with the case's faults). `send`
//! builds a request from `message` and `fields` (or `json`), with the
//! credentials `auth` and the signature `signature` say; the answer is
//! judged (a 401's `Date` and challenge, the body's fields, a refusal
//! that should have come) and `expect` checks it.
//!
//! Field paths: a bare path is a JSON field of the DUT's message (the
//! request's `jsonObject` or the platform's answer); `request.PATH` and
//! `response.PATH` name a side; `status`, `message` (the request's
//! msgType), `header.NAME` (of the DUT's message), `wsse.username`,
//! `wsse.nonce`, `wsse.created`, `form.accessKey`, `form.signature`,
//! `findings` (how many) and `finding_codes`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::model::*;
use super::outcome::Fail;
use super::runner::{base_vars, mask_result, matcher_misses, Finished, RunOptions, UnitFuture};
use super::vars::Vars;
use super::{Case, Step, Suite};
use crate::finding::{Finding, Severity};
use crate::peers::hedgw::tls;
use crate::peers::openapi::{self as api, ApiServer, DeviceRun, ServerEvent};
use crate::proto::openapi::client::{Client, ClientConfig, ClientFaults};
use crate::proto::openapi::msg::{self, Kind};
use crate::proto::openapi::server::{Exchange, ServerConfig, ServerFaults};
use crate::proto::openapi::{clause, http, sign, wsse, FindingCode as C, WallTime, BATCH_PATH};
use crate::report::{
    Candidate, CaseResult, Failure, FindingOut, MessageLog, PredicateMiss, Status,
};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `f` names a fault of the reference peer a suite of `role` starts.
pub fn knows_fault(role: Role, f: &str) -> bool {
    match role {
        Role::Platform => ClientFaults::default().set(f),
        _ => ServerFaults::default().set(f),
    }
}

/// The OpenAPI fault names, for the error about an unknown one.
pub fn fault_help(suites: &[Suite]) -> String {
    if !suites.iter().any(|s| s.protocol == Protocol::Openapi) {
        return String::new();
    }
    format!(
        "; reference OpenAPI TD faults: {}; reference OpenAPI platform faults: {}",
        ClientFaults::NAMES.join(", "),
        ServerFaults::NAMES.join(", ")
    )
}

const ROOTS: &[&str] = &[
    "status",
    "message",
    "findings",
    "finding_codes",
    "wsse.username",
    "wsse.nonce",
    "wsse.created",
    "wsse.password_digest",
    "form.accessKey",
    "form.signature",
];

fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('.') || p.ends_with('.') {
        return Err("expected a field path such as errorCode, header.Date or wsse.nonce".into());
    }
    if (p.starts_with("wsse.") || p.starts_with("form.")) && !ROOTS.contains(&p) {
        return Err(format!("expected one of {}", ROOTS.join(", ")));
    }
    if p == "header." || p == "request." || p == "response." {
        return Err("a name must follow the dot".into());
    }
    Ok(())
}

const AUTH: &[&str] = &[
    "valid",
    "none",
    "stale",
    "future",
    "bad-digest",
    "reuse-nonce",
    "replay",
];
const SIGNATURE: &[&str] = &["valid", "wrong-order", "bad", "none"];

fn req_kind(name: &str) -> Option<Kind> {
    match Kind::from_msg_type(name) {
        Some((k, false)) => Some(k),
        _ => None,
    }
}

/// Shape checks of an OpenAPI step, at load time.
pub fn check_step(role: Role, s: &StepInput) -> Result<(), String> {
    let kind = |n: &Option<String>, what: &str| -> Result<(), String> {
        match n {
            None => Err(format!(
                "`{what}` in an OpenAPI suite needs `message: MSG_P_THD_..._REQ`"
            )),
            Some(n) if n.contains("${") => Ok(()),
            Some(n) => req_kind(n).map(|_| ()).ok_or_else(|| {
                format!(
                    "unknown message {n:?}; expected one of {}",
                    Kind::ALL.map(|k| k.req()).join(", ")
                )
            }),
        }
    };
    match s {
        StepInput::Send(x) => {
            if role != Role::Device {
                return Err("`send` is for `role: device` (camcert as the TD)".into());
            }
            if x.json.is_none() && x.auth.as_deref() != Some("replay") {
                kind(&x.message, "send")?;
            }
            if let Some(a) = &x.auth {
                if !AUTH.contains(&a.as_str()) {
                    return Err(format!("auth {a:?}: expected one of {}", AUTH.join(", ")));
                }
            }
            if let Some(a) = &x.signature {
                if !SIGNATURE.contains(&a.as_str()) {
                    return Err(format!(
                        "signature {a:?}: expected one of {}",
                        SIGNATURE.join(", ")
                    ));
                }
            }
        }
        StepInput::Expect(x) => {
            if role == Role::Platform {
                kind(&x.message, "expect")?;
            }
            for (p, _) in x.matches.iter().chain(&x.when) {
                check_path(p).map_err(|e| format!("match {p:?}: {e}"))?;
            }
            for (v, p) in &x.capture {
                check_path(p).map_err(|e| format!("capture {v:?}: {e}"))?;
            }
        }
        StepInput::Trigger(t) => {
            if role != Role::Platform {
                return Err("`trigger` asks the TD to act: `role: platform`".into());
            }
            if t.action != "reboot" {
                return Err(format!(
                    "trigger {:?}: the reference TD knows `reboot`",
                    t.action
                ));
            }
        }
        StepInput::Wait(_) => {}
        _ => return Err("this step is not one of OpenAPI: send, expect, trigger, wait".into()),
    }
    Ok(())
}

/// One unit per OpenAPI suite with selected cases, their results in the
/// slots after the HEDGW suites' (which start at `first_slot`).
pub(crate) fn units<'a>(
    suites: &'a [Suite],
    opts: &'a RunOptions,
    first_slot: usize,
    sink: &Finished,
    stop: &Arc<AtomicBool>,
) -> Vec<UnitFuture<'a>> {
    let mut slot = first_slot
        + suites
            .iter()
            .filter(|s| s.protocol == Protocol::Hedgw)
            .flat_map(|s| s.cases.iter())
            .filter(|c| opts.selects(c))
            .count();
    let mut out: Vec<UnitFuture<'a>> = Vec::new();
    for suite in suites.iter().filter(|s| s.protocol == Protocol::Openapi) {
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
            Ok(false)
        }));
    }
    out
}

/// One request and its answer, from either side.
#[derive(Debug, Clone)]
struct Seen {
    at_ms: u64,
    request: http::Request,
    response: http::Response,
    /// The request's `jsonObject`.
    req: msg::Decoded,
    /// The answer's body.
    rsp: msg::Decoded,
    wsse: Option<wsse::Credentials>,
    form: Option<sign::Form>,
    /// What the DUT got wrong in this exchange.
    findings: Vec<Finding>,
}

impl Seen {
    fn from_exchange(at_ms: u64, e: Exchange) -> Seen {
        let rsp = msg::decode(&e.response.body, true);
        Seen {
            at_ms,
            request: e.request,
            rsp,
            response: e.response,
            req: e.decoded,
            wsse: e.wsse,
            form: e.form,
            findings: e.findings,
        }
    }

    fn kind(&self) -> Option<Kind> {
        self.req.kind.map(|k| k.0)
    }

    fn summary(&self) -> String {
        format!(
            "{} → {} {}{}",
            self.kind()
                .map(|k| k.req())
                .unwrap_or_else(|| format!("{} {}", self.request.method, self.request.target)),
            self.response.status,
            self.response.reason,
            self.rsp
                .field("errorCode")
                .map(|c| format!(" errorCode {c}"))
                .unwrap_or_default()
        )
    }

    /// The value at `path`; `dut_request`: the DUT sent the request
    /// (camcert is the platform).
    fn field(&self, path: &str, dut_request: bool) -> Option<String> {
        match path {
            "status" => return Some(self.response.status.to_string()),
            "message" => return self.req.field("msgType"),
            "findings" => return Some(self.findings.len().to_string()),
            "finding_codes" => {
                return Some(
                    self.findings
                        .iter()
                        .map(|f| f.code)
                        .collect::<Vec<_>>()
                        .join(","),
                )
            }
            _ => {}
        }
        if let Some(w) = path.strip_prefix("wsse.") {
            let c = self.wsse.as_ref()?;
            return Some(match w {
                "username" => c.username.clone(),
                "nonce" => c.nonce.clone(),
                "created" => c.created.clone(),
                "password_digest" => c.password_digest.clone(),
                _ => return None,
            });
        }
        if let Some(w) = path.strip_prefix("form.") {
            let f = self.form.as_ref()?;
            return Some(match w {
                "accessKey" => f.access_key.clone(),
                "signature" => f.signature.clone(),
                _ => return None,
            });
        }
        if let Some(h) = path.strip_prefix("header.") {
            let headers = if dut_request {
                &self.request.headers
            } else {
                &self.response.headers
            };
            return headers.get(h).map(str::to_string);
        }
        if let Some(p) = path.strip_prefix("request.") {
            return self.req.field(p);
        }
        if let Some(p) = path.strip_prefix("response.") {
            return self.rsp.field(p);
        }
        if dut_request {
            self.req.field(path)
        } else {
            self.rsp.field(path)
        }
    }
}

/// The cases of one suite. Against a real DUT the listener (camcert as
/// the platform) lives across cases; against the built-in peers each case
/// has peers of its own, so every case sees the flow from its start.
struct Unit<'a> {
    suite: &'a Suite,
    opts: &'a RunOptions,
    server: Option<ApiServer>,
    /// A reference HEDGW gateway whose address the platform hands out.
    gateway: Option<crate::peers::hedgw::GatewayServer>,
    /// camcert as the TD: the request builder (keeps the device token).
    td: Option<Client>,
    /// The last request camcert sent and what came of it.
    last: Option<Seen>,
}

impl<'a> Unit<'a> {
    fn new(suite: &'a Suite, opts: &'a RunOptions) -> Unit<'a> {
        Unit {
            suite,
            opts,
            server: None,
            gateway: None,
            td: None,
            last: None,
        }
    }

    async fn run_case(&mut self, case: &'a Case) -> CaseResult {
        let t0 = Instant::now();
        let suite = self.suite;
        let mut vars = base_vars(suite, self.opts);
        for (k, v) in &case.vars {
            vars.set(k, v.clone());
        }
        let mut run = CaseRun {
            unit: self,
            case,
            vars,
            t0,
            log: Vec::new(),
            findings: Vec::new(),
            step_findings: Vec::new(),
            device: None,
            peer_server: None,
        };
        let mut failures = Vec::new();
        let mut status = Status::Passed;
        match run.setup().await {
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
                    let mut fails = match r {
                        Ok(()) => vec![],
                        Err(f) => vec![f],
                    };
                    if !step_allows(step) {
                        for f in &run.step_findings {
                            if f.severity == Severity::Error && !run.allowed(f.code) {
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
        run.teardown();
        let secrets = run.vars.secrets();
        let mut r = CaseResult {
            status,
            duration_ms: t0.elapsed().as_millis() as u64,
            failures,
            findings: run.findings.iter().map(FindingOut::from).collect(),
            messages: std::mem::take(&mut run.log),
            ..super::outcome::case_result(suite, case, "https")
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
    log: Vec<MessageLog>,
    findings: Vec<Finding>,
    step_findings: Vec<Finding>,
    /// The reference TD of this case (camcert as the platform, built-in).
    device: Option<DeviceRun>,
    /// The reference platform of this case (camcert as the TD, built-in).
    peer_server: Option<ApiServer>,
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

    fn setting(&self, name: &str) -> Option<String> {
        self.case
            .peer
            .get(name)
            .or_else(|| self.unit.suite.peer.get(name))
            .cloned()
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

    fn builtin(&self) -> bool {
        self.unit.opts.target.is_none()
    }

    /// The faults of this case's reference peer: `--peer-fault` names
    /// that peer knows (others are for other suites' peers), and every
    /// fault the case or suite names.
    fn faults(&self) -> Vec<String> {
        let role = self.unit.suite.role;
        let mut f: Vec<String> = self
            .unit
            .opts
            .peer_faults
            .iter()
            .filter(|n| knows_fault(role, n))
            .cloned()
            .collect();
        for k in ["fault", "faults"] {
            if let Some(v) = self.setting(k) {
                f.extend(
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty()),
                );
            }
        }
        f
    }

    fn timeout(&self, t: Option<Dur>) -> Duration {
        t.map(|d| d.0)
            .or(self.unit.suite.timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn client_config(&self) -> ClientConfig {
        let d = ClientConfig::default();
        ClientConfig {
            access_key: self.var("access_key", &d.access_key),
            access_secret: self.var("access_secret", &d.access_secret),
            device_id: self.var("device_id", &d.device_id),
            mac: self.var("device_mac", &d.mac),
            model_id: self.var("model_id", &d.model_id),
            ..d
        }
    }

    fn server_config(&self) -> ServerConfig {
        let d = ServerConfig::default();
        ServerConfig {
            access_key: self.var("access_key", &d.access_key),
            access_secret: self.var("access_secret", &d.access_secret),
            challenge_first: self.var("challenge_first", "false") == "true",
            ..d
        }
    }

    fn keep(&mut self, f: Finding) {
        self.step_findings.push(f.clone());
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    /// Log an exchange and keep what the DUT got wrong.
    fn note(&mut self, s: &Seen, camcert_sent_request: bool) {
        let (req_dir, rsp_dir) = if camcert_sent_request {
            ("sent", "received")
        } else {
            ("received", "sent")
        };
        self.log.push(MessageLog {
            at_ms: s.at_ms,
            direction: req_dir,
            peer: "dut".into(),
            summary: s
                .kind()
                .map(|k| k.req())
                .unwrap_or_else(|| format!("{} {}", s.request.method, s.request.target)),
            text: String::from_utf8_lossy(&s.request.encode()).into_owned(),
        });
        self.log.push(MessageLog {
            at_ms: s.at_ms,
            direction: rsp_dir,
            peer: "dut".into(),
            summary: format!("{} {}", s.response.status, s.response.reason),
            text: String::from_utf8_lossy(&s.response.encode()).into_owned(),
        });
        for f in &s.findings {
            self.keep(f.clone());
        }
    }

    async fn setup(&mut self) -> Result<(), String> {
        match self.unit.suite.role {
            Role::Platform => {
                if self.builtin() {
                    // Fresh peers: the flow starts over in every case.
                    self.unit.server = None;
                }
                if self.unit.gateway.is_none() {
                    let id = tls::Identity::self_signed(&["localhost", "camcert-hedgw"])
                        .map_err(|e| e.to_string())?;
                    let cfg = tls::server_config(&id).map_err(|e| e.to_string())?;
                    let g = crate::peers::hedgw::serve_gateway(
                        SocketAddr::from(([127, 0, 0, 1], 0)),
                        Default::default(),
                        cfg,
                    )
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                    self.unit.gateway = Some(g);
                }
                if self.unit.server.is_none() {
                    let id = tls::Identity::self_signed(&["localhost", "camcert-openapi"])
                        .map_err(|e| e.to_string())?;
                    let listen = self
                        .unit
                        .opts
                        .listen
                        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
                    let mut cfg = self.server_config();
                    let gw = self.unit.gateway.as_ref().map(|g| g.addr);
                    let hedgw = self.var("hedgw_address", "");
                    cfg.hedgw = match hedgw.rsplit_once(':') {
                        Some((h, p)) if p.parse::<u16>().is_ok() => {
                            vec![(h.to_string(), p.parse().unwrap_or(0))]
                        }
                        _ => gw
                            .map(|a| vec![(a.ip().to_string(), a.port())])
                            .unwrap_or_default(),
                    };
                    let s = api::serve(
                        listen,
                        cfg,
                        tls::server_config(&id).map_err(|e| e.to_string())?,
                        chrono::Duration::zero(),
                    )
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                    self.unit.server = Some(s);
                }
                if self.builtin() {
                    let mut cfg = self.client_config();
                    for f in self.faults() {
                        if !cfg.faults.set(&f) {
                            return Err(format!(
                                "unknown reference TD fault {f:?}; known: {}",
                                ClientFaults::NAMES.join(", ")
                            ));
                        }
                    }
                    if let Some(s) = self.setting("clock_skew") {
                        let secs: i64 = s
                            .trim()
                            .trim_end_matches('s')
                            .parse()
                            .map_err(|_| format!("peer clock_skew {s:?}: expected seconds"))?;
                        cfg.clock_skew = chrono::Duration::seconds(secs);
                    }
                    let addr = self
                        .unit
                        .server
                        .as_ref()
                        .map(|s| s.addr)
                        .ok_or("no listener")?;
                    let ctls = tls::client_config(None).map_err(|e| e.to_string())?;
                    self.device = Some(api::run_device(
                        addr,
                        cfg,
                        ctls,
                        self.t0.elapsed().as_nanos() as u64 ^ 0x0A11,
                    ));
                }
            }
            _ => {
                if self.builtin() {
                    let mut cfg = self.server_config();
                    for f in self.faults() {
                        if !cfg.faults.set(&f) {
                            return Err(format!(
                                "unknown reference platform fault {f:?}; known: {}",
                                ServerFaults::NAMES.join(", ")
                            ));
                        }
                    }
                    let id =
                        tls::Identity::self_signed(&["localhost"]).map_err(|e| e.to_string())?;
                    let s = api::serve(
                        SocketAddr::from(([127, 0, 0, 1], 0)),
                        cfg,
                        tls::server_config(&id).map_err(|e| e.to_string())?,
                        chrono::Duration::zero(),
                    )
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                    self.peer_server = Some(s);
                    // A fresh platform knows no token: start the TD over.
                    self.unit.td = None;
                }
                if self.unit.td.is_none() {
                    self.unit.td = Some(Client::new(self.client_config(), rand::random()));
                }
                self.unit.last = None;
            }
        }
        Ok(())
    }

    fn teardown(&mut self) {
        self.device = None;
        self.peer_server = None;
    }

    async fn step(&mut self, step: &Step) -> Result<(), Fail> {
        match &step.input {
            StepInput::Send(s) => self.send(s).await,
            StepInput::Expect(e) => match self.unit.suite.role {
                Role::Platform => self.expect_request(e).await,
                _ => self.expect_response(e),
            },
            StepInput::Trigger(t) => {
                match &self.device {
                    Some(d) if t.action == "reboot" => d.reboot().await,
                    Some(_) => {
                        return Err(Fail::new(
                            "trigger",
                            format!("unknown action {:?}", t.action),
                        ))
                    }
                    None => {
                        if let Some(n) = &t.note {
                            eprintln!("[{}] operator: {}", self.case.id, self.x(n)?);
                        }
                    }
                }
                Ok(())
            }
            StepInput::Wait(d) => {
                let until = Instant::now() + d.0;
                self.idle(until).await;
                Ok(())
            }
            _ => Err(Fail::new("step", "not an OpenAPI step")),
        }
    }

    /// Take what the platform saw until `until` (camcert as the platform).
    async fn idle(&mut self, until: Instant) {
        while let Some(s) = self.next_exchange(until).await {
            self.note(&s, false);
        }
    }

    async fn next_exchange(&mut self, until: Instant) -> Option<Seen> {
        loop {
            let at_ms = self.ms();
            let server = self.unit.server.as_mut()?;
            let ev = tokio::time::timeout_at(until.into(), server.events.recv())
                .await
                .ok()??;
            match ev {
                ServerEvent::Exchange(e) => return Some(Seen::from_exchange(at_ms, *e)),
                ServerEvent::Refused {
                    finding, reason, ..
                } => {
                    self.log.push(MessageLog {
                        at_ms,
                        direction: "received",
                        peer: "dut".into(),
                        summary: "connection refused".into(),
                        text: reason,
                    });
                    if let Some(f) = finding {
                        self.keep(f);
                    }
                }
            }
        }
    }

    fn misses(
        &self,
        s: &Seen,
        conds: &indexmap::IndexMap<String, MatcherInput>,
        dut_request: bool,
    ) -> Result<Vec<PredicateMiss>, Fail> {
        let mut out = Vec::new();
        for (path, m) in conds {
            let mut m = m.clone();
            if let Some(other) = m.equals_field.take() {
                m.equals = Some(s.field(&other, dut_request).unwrap_or_default());
            }
            let v = s.field(path, dut_request);
            out.extend(
                matcher_misses(&self.vars, path, &m, v.as_deref())
                    .map_err(|e| Fail::new("match", e))?,
            );
        }
        Ok(out)
    }

    fn judge(&mut self, s: &Seen, e: &ExpectInput, dut_request: bool) -> Result<(), Fail> {
        let misses = self.misses(s, &e.matches, dut_request)?;
        if let Some(first) = misses.first() {
            let all: Vec<String> = misses.iter().map(|m| m.to_string()).collect();
            let mut f = Fail::new(&format!("match {}", first.field), all.join("; "))
                .exp(first.expected.clone(), first.actual.clone());
            f.candidates = vec![Candidate {
                summary: s.summary(),
                at_ms: s.at_ms,
                closest: true,
                reasons: misses,
                findings: s.findings.iter().map(FindingOut::from).collect(),
                ..Default::default()
            }];
            return Err(f);
        }
        for (var, path) in &e.capture {
            let v = s.field(path, dut_request).ok_or_else(|| {
                Fail::new("capture", format!("capture {var}: {path} is absent"))
                    .exp(path.clone(), "absent")
            })?;
            self.vars.set(var, v);
        }
        Ok(())
    }

    /// camcert as the platform: wait for a request of `message`.
    async fn expect_request(&mut self, e: &ExpectInput) -> Result<(), Fail> {
        let name = self.x(e.message.as_deref().unwrap_or(""))?;
        let want = req_kind(&name)
            .ok_or_else(|| Fail::new("expect", format!("unknown message {name:?}")))?;
        let until = Instant::now() + self.timeout(e.timeout);
        let mut candidates: Vec<Candidate> = Vec::new();
        while let Some(s) = self.next_exchange(until).await {
            self.note(&s, false);
            let mut reasons = Vec::new();
            if s.kind() != Some(want) {
                reasons.push(PredicateMiss {
                    field: "message".into(),
                    expected: name.clone(),
                    actual: s.req.field("msgType").unwrap_or_else(|| "absent".into()),
                });
            } else {
                reasons = self.misses(&s, &e.when, true)?;
            }
            if let Some(r) = e.response {
                if s.response.status != r && reasons.is_empty() {
                    reasons.push(PredicateMiss {
                        field: "status".into(),
                        expected: r.to_string(),
                        actual: s.response.status.to_string(),
                    });
                }
            }
            if !reasons.is_empty() {
                if candidates.len() < 16 {
                    candidates.push(Candidate {
                        summary: s.summary(),
                        at_ms: s.at_ms,
                        reasons,
                        findings: s.findings.iter().map(FindingOut::from).collect(),
                        ..Default::default()
                    });
                }
                continue;
            }
            if e.absent {
                return Err(Fail::new(
                    "absent",
                    format!("{name} arrived where none may: {}", s.summary()),
                )
                .exp(format!("no {name}"), s.summary()));
            }
            return self.judge(&s, e, true);
        }
        if e.absent {
            return Ok(());
        }
        let mut f = Fail::new(
            "expect",
            format!(
                "no {name} within {:?}{}",
                self.timeout(e.timeout),
                if candidates.is_empty() {
                    String::new()
                } else {
                    format!(" ({} other requests)", candidates.len())
                }
            ),
        )
        .exp(name, "nothing");
        if let Some(c) = candidates.last_mut() {
            c.closest = true;
        }
        f.candidates = candidates;
        Err(f)
    }

    /// camcert as the TD: check the answer to the last `send`.
    fn expect_response(&mut self, e: &ExpectInput) -> Result<(), Fail> {
        let Some(s) = self.unit.last.clone() else {
            return Err(Fail::new("expect", "no request sent yet: `send` first"));
        };
        if let Some(r) = e.response {
            if s.response.status != r {
                let mut f = Fail::new(
                    "status",
                    format!(
                        "status: expected {r}, got {} ({})",
                        s.response.status,
                        s.summary()
                    ),
                )
                .exp(r.to_string(), s.response.status.to_string());
                f.candidates = vec![Candidate {
                    summary: s.summary(),
                    at_ms: s.at_ms,
                    closest: true,
                    reasons: vec![PredicateMiss {
                        field: "status".into(),
                        expected: r.to_string(),
                        actual: s.response.status.to_string(),
                    }],
                    findings: s.findings.iter().map(FindingOut::from).collect(),
                    ..Default::default()
                }];
                return Err(f);
            }
        }
        self.judge(&s, e, false)
    }

    /// camcert as the TD: build, send and judge one request.
    async fn send(&mut self, x: &SendInput) -> Result<(), Fail> {
        let target = match (self.unit.opts.target, &self.peer_server) {
            (Some(t), _) => t.addr,
            (None, Some(s)) => s.addr,
            (None, None) => return Err(Fail::new("send", "no platform to send to")),
        };
        let auth = x.auth.as_deref().unwrap_or("valid");
        let now = api::wall_now(chrono::Duration::zero());
        let req = if auth == "replay" {
            self.unit
                .last
                .as_ref()
                .map(|s| s.request.clone())
                .ok_or_else(|| Fail::new("send", "auth: replay needs an earlier request"))?
        } else {
            self.build(x, auth, now)?
        };
        let kind = Kind::from_msg_type(
            &sign::Form::parse(&req.body, "")
                .0
                .and_then(|f| msg::decode(f.json_object.as_bytes(), false).field("msgType"))
                .unwrap_or_default(),
        )
        .map(|k| k.0);
        let ctls = tls::client_config(None).map_err(|e| Fail::new("send", e.to_string()))?;
        let at_ms = self.ms();
        let response = api::request(target, ctls, &req, self.timeout(None))
            .await
            .map_err(|e| Fail::new("send", format!("{e:#}")))?;
        let mut findings = Vec::new();
        let rsp = msg::decode(&response.body, true);
        if response.status == 401 {
            findings.extend(wsse::check_unauthorized(&response).1);
        } else if response.status == 200 {
            findings.extend(rsp.findings.iter().cloned());
            if let (Some(k), Some((got, _))) = (kind, rsp.kind) {
                if k != got {
                    findings.push(C::MsgTypeMismatch.finding(
                        k.clause(),
                        format!("msgType: expected {}, got {}", k.rsp(), got.rsp()),
                    ));
                }
            }
        }
        // A request the platform must refuse (§2.1, §2.2).
        let must_401 = match auth {
            "stale" | "future" | "replay" | "reuse-nonce" => {
                Some((C::AcceptedReplay, clause::REPLAY))
            }
            "none" | "bad-digest" => Some((C::Unauthorized, clause::WSSE)),
            _ => None,
        };
        if let Some((code, cl)) = must_401 {
            if response.status != 401 {
                findings.push(code.finding(
                    cl,
                    format!(
                        "credentials `{auth}`: expected 401 Unauthorized, got {} {}",
                        response.status, response.reason
                    ),
                ));
            }
        }
        let bad_sig = matches!(x.signature.as_deref(), Some("wrong-order" | "bad" | "none"));
        if response.status == 200 && (bad_sig || x.json.is_some()) && rsp.error_code() == Some(0) {
            findings.push(C::ErrorCodeWrong.finding(
                if bad_sig {
                    clause::SIGNATURE
                } else {
                    clause::ERRORS
                },
                format!(
                    "errorCode: expected an 附录C error ({}), got 0 (success)",
                    if bad_sig {
                        "a refused signature"
                    } else {
                        "json 解析错误 21001, 20005 or 400"
                    }
                ),
            ));
        }
        if response.status == 200 && rsp.error_code() == Some(0) {
            if let (Some(Kind::AddCamera), Some(t)) = (kind, rsp.field("deviceToken")) {
                if let Some(td) = self.unit.td.as_mut() {
                    td.set_token(t);
                }
            }
        }
        let (wsse_c, _) = match req.headers.get("x-wsse") {
            Some(h) => wsse::Credentials::parse(h),
            None => (None, vec![]),
        };
        let (form, _) = sign::Form::parse(&req.body, "");
        let req_dec = form
            .as_ref()
            .map(|f| msg::decode(f.json_object.as_bytes(), false))
            .unwrap_or_default();
        let seen = Seen {
            at_ms,
            request: req,
            response,
            req: req_dec,
            rsp,
            wsse: wsse_c,
            form,
            findings,
        };
        self.note(&seen, true);
        self.unit.last = Some(seen);
        Ok(())
    }

    fn build(&mut self, x: &SendInput, auth: &str, now: WallTime) -> Result<http::Request, Fail> {
        let json_text = match &x.json {
            Some(j) => self.x(j)?,
            None => {
                let name = self.x(x.message.as_deref().unwrap_or(""))?;
                let kind = req_kind(&name)
                    .ok_or_else(|| Fail::new("send", format!("unknown message {name:?}")))?;
                let td = self
                    .unit
                    .td
                    .as_ref()
                    .ok_or_else(|| Fail::new("send", "no TD"))?;
                let mut v = td.body(kind);
                for (path, raw) in &x.fields {
                    let val = self.x(raw)?;
                    set_path(&mut v, path, &val).map_err(|e| Fail::new("fields", e))?;
                }
                serde_json::to_string(&v).unwrap_or_default()
            }
        };
        let cfg = self.client_config();
        let mut form = sign::Form::signed(&cfg.access_secret, &cfg.access_key, &json_text);
        match x.signature.as_deref() {
            Some("wrong-order") => {
                form.signature =
                    sign::signature_wrong_order(&cfg.access_secret, &cfg.access_key, &json_text)
            }
            Some("bad") => {
                form.signature = sign::signature("not-the-secret", &cfg.access_key, &json_text)
            }
            Some("none") => form.signature = String::new(),
            _ => {}
        }
        let mut body = form.encode();
        if x.signature.as_deref() == Some("none") {
            body = body.replace("signature=&", "");
        }
        let mut r = http::Request::post(
            BATCH_PATH,
            "openapi",
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        );
        let username = format!("{}-{}", cfg.access_key, cfg.device_id);
        let last_nonce = self
            .unit
            .last
            .as_ref()
            .and_then(|s| s.wsse.as_ref())
            .map(|c| c.nonce.clone());
        let fresh = wsse::nonce_from(rand::random());
        let (password, nonce, created) = match auth {
            "none" => return Ok(r),
            "stale" => (
                cfg.access_secret.as_str(),
                fresh,
                now - chrono::Duration::minutes(6),
            ),
            "future" => (
                cfg.access_secret.as_str(),
                fresh,
                now + chrono::Duration::minutes(6),
            ),
            "bad-digest" => ("not-the-secret", fresh, now),
            "reuse-nonce" => (
                cfg.access_secret.as_str(),
                last_nonce.ok_or_else(|| {
                    Fail::new("send", "auth: reuse-nonce needs an earlier request")
                })?,
                now,
            ),
            _ => (cfg.access_secret.as_str(), fresh, now),
        };
        wsse::Credentials::new(&username, password, &nonce, created).apply(&mut r);
        Ok(r)
    }
}

/// Set `path` (dotted) in `v` to `val`: `json:...` is raw JSON,
/// `(absent)` removes the field, anything else is a string.
fn set_path(v: &mut Value, path: &str, val: &str) -> Result<(), String> {
    let new = if val == "(absent)" {
        None
    } else if let Some(j) = val.strip_prefix("json:") {
        Some(serde_json::from_str(j).map_err(|e| format!("{path}: json: {e}"))?)
    } else {
        Some(Value::String(val.to_string()))
    };
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = v;
    for p in &parts[..parts.len() - 1] {
        let o = cur
            .as_object_mut()
            .ok_or_else(|| format!("{path}: {p} is not an object"))?;
        cur = o
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    let o = cur
        .as_object_mut()
        .ok_or_else(|| format!("{path}: not inside an object"))?;
    let last = parts[parts.len() - 1].to_string();
    match new {
        Some(n) => {
            o.insert(last, n);
        }
        None => {
            o.remove(&last);
        }
    }
    Ok(())
}
