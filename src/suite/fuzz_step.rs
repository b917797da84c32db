//! The `fuzz` step: a seeded stream of unusual and broken requests sent to
//! a camera under test, with a liveness probe after each batch (a DeviceInfo
//! query that must still get its 200 and its Response, as the PROTOS suites
//! probe). The step fails when the probe goes unanswered, or when the
//! camera answers 2xx to a request it must refuse. A failure is then shrunk
//! against a freshly rebooted camera to the fewest inputs that still break
//! it, and written out as a suite that reproduces it with `camcert run`.
//!
//! Fuzz inputs and the camera's answers to them stay out of the case's
//! message ladder (the case's pcap has them all); the probes are in it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;

use super::{err, CaseRun, Peer, StepFail};
use crate::proto::gb28181::manscdp::{CmdType, Message as Manscdp};
use crate::proto::gb28181::register::host_port;
use crate::proto::gb28181::robust::{self, Addressing, Dut, Generator, Input, Inputs, Layer};
use crate::proto::sip::digest::Challenge;
use crate::proto::sip::{self, SipMessage};
use crate::suite::model::{AuthorizeInput, FuzzInput, NumberOrVar, Role, SendInput};

const DEFAULT_BATCH: u64 = 10;
const DEFAULT_RATE: f64 = 50.0;
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_SHRINK_ATTEMPTS: u32 = 40;
/// How long a rebooted camera may take to register again.
const REREGISTER_WAIT: Duration = Duration::from_secs(30);
/// Inputs named in a failure message.
const LAST_SHOWN: usize = 5;

/// How the DUT broke.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Broke {
    /// The liveness probe failed: `why`.
    Probe(String),
    /// It answered `status` to input `index`, which it must refuse.
    Accepted { index: u64, status: u16 },
}

impl Broke {
    fn same_kind(&self, other: &Broke) -> bool {
        matches!(
            (self, other),
            (Broke::Probe(_), Broke::Probe(_)) | (Broke::Accepted { .. }, Broke::Accepted { .. })
        )
    }
}

/// What a run of inputs saw.
#[derive(Default)]
struct Watch {
    /// Call-ID of each input sent, to its position in `sent`.
    by_call_id: HashMap<String, usize>,
    accepted: Option<(u64, u16)>,
    /// A REGISTER with a Call-ID not seen before arrived (the camera
    /// rebooted), after this input.
    registered_anew: Option<(String, u64)>,
    register_call_ids: Vec<String>,
}

impl CaseRun<'_> {
    fn fuzz_addressing(&self) -> Result<Addressing, StepFail> {
        let remote = self.ep.default_peer.ok_or_else(|| {
            err("fuzz: nothing has been received from the DUT yet, so there is nowhere to send")
        })?;
        let local = self.ep.local_addr_for(remote);
        let domain = match self.vars.get("domain") {
            Some(d) => self.x(d)?,
            None => self
                .remote_id
                .get(..10)
                .unwrap_or(&self.remote_id)
                .to_string(),
        };
        Ok(Addressing {
            dut: match self.suite.role {
                Role::Device => Dut::Platform,
                _ => Dut::Camera,
            },
            dut_id: self.remote_id.clone(),
            own_id: self.local_id.clone(),
            domain,
            local: host_port(local),
            remote: host_port(remote),
            transport: self.ep.transport().to_string().to_ascii_uppercase(),
        })
    }

    pub(super) async fn fuzz(&mut self, f: &FuzzInput) -> Result<(), StepFail> {
        if self.suite.role == Role::UpperPlatform {
            return Err(err(
                "fuzz: against a camera (role platform) or a platform (role device)",
            ));
        }
        let seed: u64 = match &f.seed {
            Some(s) => self.x(s)?,
            None => self
                .vars
                .get("fuzz_seed")
                .map(|s| self.x(s))
                .transpose()?
                .unwrap_or_else(|| "1".into()),
        }
        .trim()
        .parse()
        .map_err(|e| err(format!("fuzz seed: {e}")))?;
        let count: u64 = match &f.count {
            NumberOrVar::Number(n) => *n,
            NumberOrVar::Text(t) => self
                .x(t)?
                .trim()
                .parse()
                .map_err(|e| err(format!("fuzz count {t:?}: {e}")))?,
        };
        if count == 0 || count > 100_000 {
            return Err(err(format!("fuzz count {count}: expected 1 to 100000")));
        }
        let generators: Vec<Generator> = f
            .generators
            .iter()
            .map(|g| match g.as_str() {
                "unusual" => Generator::Unusual,
                _ => Generator::Mutate,
            })
            .collect();
        let layers: Vec<Layer> = f.layers.iter().filter_map(|l| Layer::parse(l)).collect();
        let batch = f.batch.unwrap_or(DEFAULT_BATCH).max(1);
        let pace = Duration::from_secs_f64(1.0 / f.rate.unwrap_or(DEFAULT_RATE));
        let probe_wait = f
            .probe_timeout
            .map(|d| d.0)
            .unwrap_or(DEFAULT_PROBE_TIMEOUT)
            .max(MIN_PROBE_TIMEOUT);
        let to = self.fuzz_addressing()?;
        let mut inputs = Inputs::new(seed, to.clone(), &generators, &layers);
        let mut sent: Vec<Input> = Vec::new();
        let mut watch = Watch::default();
        let mut window_start = 0usize;
        let mut window_since = SystemTime::now();
        let mut probes = 0u64;
        let mut broke: Option<Broke> = None;
        let stream = self.ep.transport() == crate::proto::Transport::Tcp;
        for n in 0..count {
            let input = if stream {
                inputs.next_stream_input()
            } else {
                inputs.next_input()
            };
            watch.by_call_id.insert(input.call_id.clone(), sent.len());
            self.fuzz_send(&input.bytes).await?;
            sent.push(input);
            let next = Instant::now() + pace;
            self.fuzz_drain(next, &mut watch, &sent).await?;
            if let Some((index, status)) = watch.accepted {
                broke = Some(Broke::Accepted { index, status });
                break;
            }
            if (n + 1) % batch == 0 || n + 1 == count {
                probes += 1;
                if let Err(why) = self
                    .fuzz_probe(&to, seed, probes, probe_wait, &mut watch, &sent)
                    .await?
                {
                    broke = Some(Broke::Probe(why));
                    break;
                }
                window_start = sent.len();
                window_since = SystemTime::now();
            }
        }
        let Some(broke) = broke else {
            self.vars.set("fuzz_sent", sent.len().to_string());
            self.vars.set("fuzz_probes", probes.to_string());
            return Ok(());
        };

        self.fuzz_repro_window = Some((window_since, SystemTime::now()));
        // The inputs that may have done it: those since the last probe that
        // passed, or the one input answered 2xx.
        let window: Vec<Input> = match &broke {
            Broke::Accepted { index, .. } => {
                sent.iter().filter(|i| i.index == *index).cloned().collect()
            }
            Broke::Probe(_) => sent[window_start..].to_vec(),
        };
        let mut notes = Vec::new();
        if let Some((cid, after)) = &watch.registered_anew {
            notes.push(format!(
                "the DUT registered anew (Call-ID {cid}) after input #{after}: it restarted"
            ));
        }
        let can_reset = self.peer.is_some() || self.operator_hook.is_some();
        let (minimal, shrink_note) = if !f.shrink.unwrap_or(true) {
            (window.clone(), "not shrunk (shrink: false)".to_string())
        } else if !can_reset {
            (
                window.clone(),
                "not shrunk: shrinking reboots the DUT between attempts, which needs --operator-hook"
                    .to_string(),
            )
        } else if window.len() == 1 {
            (window.clone(), "a single input".to_string())
        } else {
            let budget = f.shrink_attempts.unwrap_or(DEFAULT_SHRINK_ATTEMPTS);
            self.fuzz_shrink(&to, seed, &window, &broke, budget, pace, probe_wait)
                .await?
        };
        notes.push(shrink_note);
        // Leave the built-in peer as it was before the step, for the cases
        // that follow.
        if self.peer.is_some() {
            let _ = self.fuzz_reset().await;
        }
        let repro = self.fuzz_write_reproducer(seed, &broke, &minimal, probe_wait);

        let shown: Vec<String> = sent
            .iter()
            .rev()
            .take(LAST_SHOWN)
            .rev()
            .map(|i| format!("#{} {}", i.index, i.what))
            .collect();
        let (check, what, expected, received) = match &broke {
            Broke::Probe(why) => (
                "fuzz.probe",
                format!(
                    "the liveness probe ({}) after input #{} failed: {why}",
                    match to.dut {
                        Dut::Camera => "a DeviceInfo query",
                        Dut::Platform => "a keepalive",
                    },
                    sent.len()
                ),
                match to.dut {
                    Dut::Camera => "200 to the probe's MESSAGE, then its DeviceInfo Response",
                    Dut::Platform => "200 to the keepalive",
                }
                .to_string(),
                why.clone(),
            ),
            Broke::Accepted { index, status } => {
                let i = &sent[(*index - 1) as usize];
                (
                    "fuzz.accepted-malformed",
                    format!(
                        "input #{index} ({}) must be refused (RFC 3261 §8.1.1, §8.2, §18.3; GB/T 28181 §MESSAGE 400 for a body it cannot read), and the DUT answered {status}",
                        i.what
                    ),
                    "no 2xx (4xx, or no answer)".to_string(),
                    format!("{status}"),
                )
            }
        };
        let mut message = format!(
            "{what}. Seed {seed}, {} input(s) sent, {probes} probe(s); last inputs: {}. Reproducer ({} input{}, {}): {}",
            sent.len(),
            shown.join("; "),
            minimal.len(),
            if minimal.len() == 1 { "" } else { "s" },
            notes.join("; "),
            match &repro {
                Ok(p) => p.display().to_string(),
                Err(e) => format!("not written: {e}"),
            }
        );
        if let Some(last) = minimal.last() {
            let _ = write!(message, ". Its last input: #{} {}", last.index, last.what);
        }
        let mut fail = StepFail::new(check, message).exp(expected, received);
        if let Some(last) = minimal.last().or(sent.last()) {
            fail.extra().bytes = Some(last.bytes.clone());
        }
        Err(fail)
    }

    async fn fuzz_send(&mut self, bytes: &[u8]) -> Result<(), StepFail> {
        self.last_send = Some(Instant::now());
        self.ep
            .send(None, bytes)
            .await
            .map_err(|e| StepFail::new("transport", format!("{e:#}")))
    }

    /// Take what the DUT sends until `until`: answers to inputs (judged),
    /// its own requests (answered).
    async fn fuzz_drain(
        &mut self,
        until: Instant,
        watch: &mut Watch,
        sent: &[Input],
    ) -> Result<(), StepFail> {
        while let Some(inc) = self.fuzz_recv(until).await? {
            let Ok(p) = SipMessage::parse(&inc.raw) else {
                continue;
            };
            let m = p.message;
            if let Some(status) = m.status() {
                let pos = m.call_id().and_then(|c| watch.by_call_id.get(c)).copied();
                if let Some(i) = pos.map(|p| &sent[p]) {
                    if (200..300).contains(&status) {
                        if i.must_refuse && watch.accepted.is_none() {
                            watch.accepted = Some((i.index, status));
                        }
                        if m.cseq().is_some_and(|c| c.method == "INVITE") {
                            self.fuzz_end_call(&m, inc.from).await?;
                        }
                    }
                }
                continue;
            }
            self.fuzz_answer_request(&m, inc.from, watch, sent.len() as u64)
                .await?;
        }
        Ok(())
    }

    async fn fuzz_recv(
        &mut self,
        until: Instant,
    ) -> Result<Option<crate::transport::Incoming>, StepFail> {
        if Instant::now() >= until {
            return Ok(None);
        }
        self.recv_routed(until, true)
            .await
            .map_err(|e| StepFail::new("transport", format!("{e:#}")))
    }

    /// Answer a request from the DUT during the step: background rules
    /// first (keepalives), then 200 to REGISTER and anything else.
    async fn fuzz_answer_request(
        &mut self,
        m: &SipMessage,
        from: SocketAddr,
        watch: &mut Watch,
        after: u64,
    ) -> Result<(), StepFail> {
        if m.method() == Some("ACK") {
            return Ok(());
        }
        if m.method() == Some("REGISTER") {
            if let Some(cid) = m.call_id() {
                if !watch.register_call_ids.iter().any(|c| c == cid) {
                    if !watch.register_call_ids.is_empty() && watch.registered_anew.is_none() {
                        watch.registered_anew = Some((cid.to_string(), after));
                    }
                    watch.register_call_ids.push(cid.to_string());
                }
            }
            let mut r = sip::response_to(m, 200, Some(&self.to_tag));
            if let Some(e) = m.headers.get("Expires") {
                r.headers.set("Expires", e.to_string());
            }
            let bytes = r.with_content_length().to_bytes();
            self.ep
                .send(Some(from), &bytes)
                .await
                .map_err(|e| StepFail::new("transport", format!("{e:#}")))?;
            return Ok(());
        }
        if self.background_rule(m, from).await?.is_some() {
            return Ok(());
        }
        let r = sip::response_to(m, 200, Some(&self.to_tag));
        let bytes = r.with_content_length().to_bytes();
        self.ep
            .send(Some(from), &bytes)
            .await
            .map_err(|e| StepFail::new("transport", format!("{e:#}")))
    }

    /// ACK a 2xx to an INVITE input, then end the call with BYE.
    async fn fuzz_end_call(&mut self, ok: &SipMessage, to: SocketAddr) -> Result<(), StepFail> {
        let (Some(call_id), Some(cseq), Some(from), Some(to_h)) = (
            ok.call_id(),
            ok.cseq(),
            ok.headers.get("From"),
            ok.headers.get("To"),
        ) else {
            return Ok(());
        };
        let uri = ok
            .headers
            .get("Contact")
            .and_then(sip::NameAddr::parse)
            .map(|n| n.uri.to_string())
            .unwrap_or_else(|| format!("sip:{}@{}", self.remote_id, host_port(to)));
        let local = host_port(self.ep.local_addr_for(to));
        let transport = self.ep.transport().to_string().to_ascii_uppercase();
        for (method, seq) in [("ACK", cseq.seq), ("BYE", cseq.seq + 1)] {
            let branch = sip::new_branch(&mut rand::thread_rng());
            let text = format!(
                "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};rport;branch={branch}\r\nFrom: {from}\r\nTo: {to_h}\r\nCall-ID: {call_id}\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            self.ep
                .send(Some(to), text.as_bytes())
                .await
                .map_err(|e| StepFail::new("transport", format!("{e:#}")))?;
        }
        Ok(())
    }

    /// Send the probe; `Ok(Err(why))` when it failed.
    async fn fuzz_probe(
        &mut self,
        to: &Addressing,
        seed: u64,
        n: u64,
        wait: Duration,
        watch: &mut Watch,
        sent: &[Input],
    ) -> Result<Result<(), String>, StepFail> {
        let sn = 1_000_000 + n;
        let probe = robust::probe(to, seed ^ n.wrapping_mul(0x9E37_79B9), sn);
        self.send_bytes(None, probe.bytes.clone()).await?;
        let deadline = Instant::now() + wait;
        let mut answered: Option<u16> = None;
        let mut response = false;
        while let Some(inc) = self.fuzz_recv(deadline).await? {
            let Ok(p) = SipMessage::parse(&inc.raw) else {
                continue;
            };
            let m = p.message;
            if m.call_id() == Some(probe.call_id.as_str()) {
                self.log("received", inc.from, &inc.raw);
                if let Some(s) = m.status().filter(|s| *s >= 200) {
                    answered = Some(s);
                    if s != 200 {
                        return Ok(Err(format!("the probe's MESSAGE was answered {s}")));
                    }
                    // A platform only answers the keepalive.
                    if to.dut == Dut::Platform {
                        return Ok(Ok(()));
                    }
                }
                continue;
            }
            if m.is_request() && m.method() == Some("MESSAGE") {
                let d = Manscdp::decode(&m.body).ok().map(|d| d.message);
                if d.as_ref()
                    .is_some_and(|d| d.cmd_type == Some(CmdType::DeviceInfo) && d.sn == Some(sn))
                {
                    self.log("received", inc.from, &inc.raw);
                    let r = sip::response_to(&m, 200, Some(&self.to_tag));
                    self.send_bytes(Some(inc.from), r.with_content_length().to_bytes())
                        .await?;
                    response = true;
                    if answered == Some(200) {
                        return Ok(Ok(()));
                    }
                    continue;
                }
            }
            if m.status().is_some() {
                // Late answers to inputs.
                let pos = m.call_id().and_then(|c| watch.by_call_id.get(c)).copied();
                if let (Some(i), Some(s)) = (pos.map(|p| &sent[p]), m.status()) {
                    if (200..300).contains(&s) && i.must_refuse && watch.accepted.is_none() {
                        watch.accepted = Some((i.index, s));
                    }
                }
                continue;
            }
            self.fuzz_answer_request(&m, inc.from, watch, sent.len() as u64)
                .await?;
            if answered == Some(200) && response {
                return Ok(Ok(()));
            }
        }
        Ok(Err(match (answered, response) {
            (None, false) => format!("no answer at all within {} ms", wait.as_millis()),
            (None, true) => format!(
                "the DeviceInfo Response came, but no final answer to the MESSAGE within {} ms",
                wait.as_millis()
            ),
            (Some(_), _) => format!(
                "200 to the MESSAGE, but no DeviceInfo Response with SN {sn} within {} ms",
                wait.as_millis()
            ),
        }))
    }

    /// Reboot the DUT and wait until it registers again.
    async fn fuzz_reset(&mut self) -> Result<(), StepFail> {
        // Wait until the peer has rebooted before sending anything more.
        let (tx, rx) = tokio::sync::oneshot::channel();
        match &self.peer {
            Some(Peer::Camera(h)) => {
                h.command(move |d, now| {
                    let _ = tx.send(d.trigger(now, "reboot", &BTreeMap::new()));
                })
                .await;
                let _ = rx.await;
            }
            Some(Peer::Platform(h)) => {
                h.command(move |p, now| {
                    let _ = tx.send(p.trigger(now, "reboot", &BTreeMap::new()));
                })
                .await;
                let _ = rx.await;
            }
            _ => {
                let Some(hook) = self.operator_hook.clone() else {
                    return Err(err("no way to reboot the DUT"));
                };
                let device = self.remote_id.clone();
                super::dut_session::run_hook(
                    &hook,
                    "reboot",
                    &BTreeMap::new(),
                    &device,
                    "reboot the device under test",
                )
                .await?;
            }
        }
        if self.suite.role == Role::Device {
            return self.fuzz_register().await;
        }
        let deadline = Instant::now() + REREGISTER_WAIT;
        let mut watch = Watch::default();
        while let Some(inc) = self.fuzz_recv(deadline).await? {
            let Ok(p) = SipMessage::parse(&inc.raw) else {
                continue;
            };
            let m = p.message;
            if m.is_request() {
                let register = m.method() == Some("REGISTER");
                self.fuzz_answer_request(&m, inc.from, &mut watch, 0)
                    .await?;
                if register {
                    return Ok(());
                }
            }
        }
        Err(err(format!(
            "the DUT did not register within {} s of its reboot",
            REREGISTER_WAIT.as_secs()
        )))
    }

    /// Register to the platform under test again (after its reboot), with
    /// digest credentials from `${password}`.
    async fn fuzz_register(&mut self) -> Result<(), StepFail> {
        let mut authorize = None;
        for _ in 0..2 {
            let send = SendInput {
                request: Some("REGISTER".into()),
                authorize: authorize.take(),
                ..Default::default()
            };
            self.send(&send).await?;
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut watch = Watch::default();
            let mut status = None;
            while let Some(inc) = self.fuzz_recv(deadline).await? {
                let Ok(p) = SipMessage::parse(&inc.raw) else {
                    continue;
                };
                let m = p.message;
                if m.is_request() {
                    self.fuzz_answer_request(&m, inc.from, &mut watch, 0)
                        .await?;
                    continue;
                }
                if m.cseq().is_some_and(|c| c.method == "REGISTER")
                    && m.status().is_some_and(|s| s >= 200)
                {
                    if let Some(v) = m.headers.get("WWW-Authenticate") {
                        self.last_challenge_received = Challenge::parse(v).ok();
                    }
                    status = m.status();
                    break;
                }
            }
            match status {
                Some(200) => return Ok(()),
                Some(401) => {
                    authorize = Some(AuthorizeInput {
                        username: None,
                        password: "${password}".into(),
                    });
                }
                other => {
                    return Err(err(format!(
                        "registering again after the platform's reboot: {}",
                        other.map_or("no answer".to_string(), |s| format!("answered {s}"))
                    )))
                }
            }
        }
        Err(err(
            "registering again after the platform's reboot: still challenged",
        ))
    }

    /// One attempt: reboot, send `inputs` (renamed so that nothing is taken
    /// for a retransmission), probe. Whether it broke the same way.
    #[allow(clippy::too_many_arguments)]
    async fn fuzz_attempt(
        &mut self,
        to: &Addressing,
        seed: u64,
        inputs: &[Input],
        broke: &Broke,
        attempt: u64,
        pace: Duration,
        probe_wait: Duration,
    ) -> Result<bool, StepFail> {
        self.fuzz_reset().await?;
        let began = SystemTime::now();
        let mut watch = Watch::default();
        let mut renamed = Vec::with_capacity(inputs.len());
        for i in inputs {
            let mut r = i.clone();
            r.bytes = i.renamed(attempt);
            let salted = Input {
                bytes: r.bytes.clone(),
                ..i.clone()
            };
            // Answers come back under the renamed Call-ID.
            let cid = String::from_utf8_lossy(&salted.bytes)
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: ").map(str::to_string));
            if let Some(c) = cid {
                watch.by_call_id.insert(c, renamed.len());
            }
            renamed.push(r);
        }
        for (k, i) in renamed.iter().enumerate() {
            self.fuzz_send(&i.bytes).await?;
            self.fuzz_drain(Instant::now() + pace, &mut watch, &renamed[..=k])
                .await?;
        }
        let outcome = match watch.accepted {
            Some((index, status)) => Broke::Accepted { index, status },
            None => match self
                .fuzz_probe(
                    to,
                    seed,
                    500_000 + attempt,
                    probe_wait,
                    &mut watch,
                    &renamed,
                )
                .await?
            {
                Err(why) => Broke::Probe(why),
                Ok(()) => return Ok(false),
            },
        };
        let same = outcome.same_kind(broke);
        if same {
            self.fuzz_repro_window = Some((began, SystemTime::now()));
        }
        Ok(same)
    }

    /// Delta debugging (ddmin) over `window`, within `budget` attempts.
    #[allow(clippy::too_many_arguments)]
    async fn fuzz_shrink(
        &mut self,
        to: &Addressing,
        seed: u64,
        window: &[Input],
        broke: &Broke,
        budget: u32,
        pace: Duration,
        probe_wait: Duration,
    ) -> Result<(Vec<Input>, String), StepFail> {
        let mut attempts = 0u32;
        let attempt = |n: &mut u32| {
            *n += 1;
            *n as u64
        };
        let a = attempt(&mut attempts);
        if !self
            .fuzz_attempt(to, seed, window, broke, a, pace, probe_wait)
            .await?
        {
            return Ok((
                window.to_vec(),
                format!(
                    "not shrunk: the {} input(s) since the last passing probe did not break a freshly rebooted DUT again",
                    window.len()
                ),
            ));
        }
        let mut items: Vec<Input> = window.to_vec();
        let mut n = 2usize;
        'outer: while items.len() >= 2 && attempts < budget {
            let chunk = items.len().div_ceil(n);
            let parts: Vec<Vec<Input>> = items.chunks(chunk).map(|c| c.to_vec()).collect();
            for p in &parts {
                if attempts >= budget {
                    break 'outer;
                }
                let a = attempt(&mut attempts);
                if self
                    .fuzz_attempt(to, seed, p, broke, a, pace, probe_wait)
                    .await?
                {
                    items = p.clone();
                    n = 2;
                    continue 'outer;
                }
            }
            if parts.len() > 2 {
                for k in 0..parts.len() {
                    if attempts >= budget {
                        break 'outer;
                    }
                    let rest: Vec<Input> = parts
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != k)
                        .flat_map(|(_, p)| p.iter().cloned())
                        .collect();
                    let a = attempt(&mut attempts);
                    if self
                        .fuzz_attempt(to, seed, &rest, broke, a, pace, probe_wait)
                        .await?
                    {
                        items = rest;
                        n = (n - 1).max(2);
                        continue 'outer;
                    }
                }
            }
            if n >= items.len() {
                break;
            }
            n = (n * 2).min(items.len());
        }
        Ok((
            items.clone(),
            format!(
                "shrunk from {} to {} input(s) in {attempts} attempt(s) against a rebooted DUT",
                window.len(),
                items.len()
            ),
        ))
    }

    /// Write `inputs` and the check that caught the failure as a suite
    /// that `camcert run` runs, with a catalog of the case's requirements.
    fn fuzz_write_reproducer(
        &self,
        seed: u64,
        broke: &Broke,
        inputs: &[Input],
        probe_wait: Duration,
    ) -> anyhow::Result<PathBuf> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let name = format!(
            "{}-{}-seed{seed}",
            super::sanitize(&self.case_id),
            self.ep.transport()
        );
        let dir = self.report_dir.join("fuzz").join(&name);
        std::fs::create_dir_all(&dir)?;
        let mut cat = format!(
            "# Requirements of {} (from {}).\nspec: {}\nrequirements:\n",
            self.case_id,
            self.suite.catalog.file.display(),
            q(&self.suite.catalog.spec)
        );
        for r in &self.case_requirements {
            let _ = write!(
                cat,
                "  - id: {}\n    clause: {}\n    level: {}\n    text: {}\n",
                q(&r.id),
                q(&r.clause),
                r.level,
                q(&r.text)
            );
        }
        std::fs::write(dir.join("requirements.yaml"), cat)?;

        let mut y = String::new();
        let _ = writeln!(
            y,
            "# Reproduces a failure `fuzz` found in {} ({}), seed {seed}.\n# Run: camcert run {}",
            self.case_id,
            self.suite.file.display(),
            dir.join("reproducer.yaml").display()
        );
        let _ = writeln!(
            y,
            "suite: {}",
            q(&format!("Reproducer of {} seed {seed}", self.case_id))
        );
        let platform = self.suite.role == Role::Device;
        let _ = writeln!(
            y,
            "protocol: gb28181\nrole: {}",
            if platform { "device" } else { "platform" }
        );
        if platform {
            let _ = writeln!(y, "needs: none");
        }
        let _ = writeln!(y, "transports: [{}]", self.ep.transport());
        if !self.suite.vars.is_empty() {
            let _ = writeln!(y, "vars:");
            for (k, v) in &self.suite.vars {
                let _ = writeln!(y, "  {}: {}", q(k), q(v));
            }
        }
        let mut peer: BTreeMap<String, String> = self.suite.peer.clone();
        peer.extend(self.case_peer.clone());
        if let Some(f) = self.peer_faults.first() {
            peer.insert("fault".into(), f.clone());
        }
        if !peer.is_empty() {
            let _ = writeln!(y, "peer:");
            for (k, v) in &peer {
                let _ = writeln!(y, "  {}: {}", q(k), q(v));
            }
        }
        if platform {
            let _ = writeln!(y, "background:\n  - request: MESSAGE\n    reply: 200");
        } else {
            let _ = writeln!(
                y,
                "background:\n  - request: MESSAGE\n    when: {{ xml.CmdType: {{ equals: Keepalive }} }}\n    reply: 200"
            );
        }
        let reqs: Vec<String> = self
            .case_requirements
            .iter()
            .map(|r| r.id.clone())
            .collect();
        let _ = writeln!(
            y,
            "cases:\n  - id: {}\n    title: {}\n    requirements: [{}]\n    steps:",
            q(&format!("REPRO-{}", self.case_id)),
            q(&format!(
                "{} input(s) from fuzz seed {seed} still break the DUT",
                inputs.len()
            )),
            reqs.join(", ")
        );
        if platform {
            let _ = writeln!(
                y,
                "      # Register, as the case did before its fuzz step.\n      - send: {{ request: REGISTER }}\n      - expect: {{ response: 401 }}\n      - send: {{ request: REGISTER, authorize: {{ password: \"${{password}}\" }} }}\n      - expect: {{ response: 200 }}"
            );
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        for i in inputs {
            let _ = writeln!(
                y,
                "      # input #{}: {}",
                i.index,
                i.what.replace('\n', " ")
            );
            let _ = writeln!(
                y,
                "      - send: {{ raw_base64: {} }}",
                q(&b64.encode(&i.bytes))
            );
            let _ = writeln!(y, "      - wait: 100ms");
        }
        let secs = probe_wait.as_secs_f64().max(2.0);
        match broke {
            Broke::Accepted { .. } => {
                let _ = writeln!(
                    y,
                    "      # A correct device does not answer the last input 2xx (what its\n      # refusal lacks, copied from a broken request, is not judged here).\n      - expect: {{ when: {{ status: {{ min: 200, max: 299 }} }}, absent: true, allow_findings: true, timeout: {secs}s }}"
                );
            }
            Broke::Probe(_) if platform => {
                let _ = writeln!(
                    y,
                    "      # The liveness probe: a keepalive still answered.\n      - send:\n          request: MESSAGE\n          headers: {{ Content-Type: Application/MANSCDP+xml }}\n          body: |\n            <?xml version=\"1.0\" encoding=\"GB2312\"?>\n            <Notify>\n            <CmdType>Keepalive</CmdType>\n            <SN>7</SN>\n            <DeviceID>${{device_id}}</DeviceID>\n            <Status>OK</Status>\n            </Notify>\n      - expect: {{ response: 200, timeout: {secs}s }}"
                );
            }
            Broke::Probe(_) => {
                let _ = writeln!(
                    y,
                    "      # The liveness probe: a DeviceInfo query still answered.\n      - send:\n          request: MESSAGE\n          headers: {{ Content-Type: Application/MANSCDP+xml }}\n          body: |\n            <?xml version=\"1.0\" encoding=\"GB2312\"?>\n            <Query>\n            <CmdType>DeviceInfo</CmdType>\n            <SN>7</SN>\n            <DeviceID>${{device_id}}</DeviceID>\n            </Query>\n      - expect: {{ response: 200, timeout: {secs}s }}\n      - expect:\n          request: MESSAGE\n          when: {{ xml.CmdType: {{ equals: DeviceInfo }} }}\n          reply: 200\n          timeout: {secs}s"
                );
            }
        }
        let path = dir.join("reproducer.yaml");
        std::fs::write(&path, y)?;
        // What was exchanged when these inputs last broke the DUT.
        if let Some((from, until)) = self.fuzz_repro_window {
            let packets: Vec<_> = self
                .ep
                .tap
                .packets()
                .into_iter()
                .filter(|p| p.time >= from && p.time <= until)
                .collect();
            crate::capture::pcap::write_pcap(&dir.join("reproducer.pcap"), &packets)?;
        }
        Ok(path)
    }
}
