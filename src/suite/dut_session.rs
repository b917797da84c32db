//! The session with the device under test. A lab runs one session with a
//! camera, not one per case: the runner keeps the endpoint (and the
//! reference camera, when there is no target) for every case of a suite and
//! transport, tracks whether the camera is registered, and before each case
//! brings the session into the state the case `needs`, the least disruptive
//! way the protocol allows:
//!
//! - `registered`: reuse the registration. A camera that registered before
//!   the run is adopted on its first REGISTER refresh or keepalive (a
//!   keepalive from the provisioned device is answered 200 unless
//!   `adopt_keepalive` is `false`, so it does not go offline).
//! - `fresh-registration`: refuse keepalives (403, as a platform does for a
//!   device it holds offline) until the camera registers again, after at
//!   most `keepalive_timeout_count` misses; then an operator action.
//! - `reboot`: DeviceControl TeleBoot, then wait for the REGISTER; then an
//!   operator action.
//!
//! The REGISTER that a fresh registration brings is left for the case's
//! first step. Operator actions are the reference camera's own `trigger`s
//! when there is no target, `--operator-hook` with one, or a prompt; with
//! `--no-operator` a case that would need one is skipped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::proto::gb28181::register::register_uri;

/// Timing variables every suite has, with the spec's defaults (seconds of
/// protocol time). A suite's `vars` and `--var` override them; the session
/// layer bounds its waits with them and the report lists them.
pub const TIMING_VARS: &[(&str, &str, &str)] = &[
    ("keepalive_interval", "60", "§保活: keepalive interval"),
    (
        "keepalive_timeout_count",
        "3",
        "§保活: missed keepalives before the other side is offline",
    ),
    (
        "register_expires",
        "3600",
        "§注册: registration expiry granted",
    ),
    (
        "register_retry_interval",
        "60",
        "§注册: wait before a failed registration is retried",
    ),
    (
        "subscription_expires",
        "3600",
        "§订阅: subscription expiry asked for (the spec's examples leave it open)",
    ),
    (
        "media_timeout",
        "30",
        "media: seconds without packets before a stream is gone (the spec sets none)",
    ),
    (
        "reboot_time",
        "300",
        "longest a device takes to register again after TeleBoot",
    ),
];

/// Whether the device under test is registered, as far as camcert knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reg {
    /// Nothing seen yet (the start of a session with a real camera), or a
    /// registration attempt that ended without a 2xx.
    Unknown,
    Registered,
    /// The device unregistered (REGISTER with Expires 0 answered 2xx).
    Unregistered,
}

/// What is kept from one case to the next.
pub(super) struct DutSession {
    pub ep: Option<Endpoint>,
    pub peer: Option<Peer>,
    pub reg: Reg,
    /// Where the device was last heard from.
    pub device_addr: Option<SocketAddr>,
    /// Where camcert is the device: the Call-ID, From tag and last CSeq of
    /// its registration, kept across cases as a camera keeps them.
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    /// Transactions already handled, so that a retransmission of a request
    /// an earlier case took (or left unanswered on purpose) is not taken
    /// for a new one.
    pub seen: std::collections::HashSet<String>,
}

impl DutSession {
    pub fn new() -> DutSession {
        let mut rng = rand::thread_rng();
        DutSession {
            ep: None,
            peer: None,
            reg: Reg::Unknown,
            device_addr: None,
            call_id: sip::new_call_id(&mut rng),
            from_tag: sip::new_tag(&mut rng),
            cseq: 0,
            seen: Default::default(),
        }
    }

    /// Stop the reference peer and close the endpoint.
    pub async fn close(&mut self) {
        if let Some(p) = self.peer.take() {
            match p {
                Peer::Camera(h) => {
                    let _ = h.stop().await;
                }
                Peer::Platform(h) => {
                    let _ = h.stop().await;
                }
            }
        }
        self.ep = None;
    }
}

/// Why a case could not start from the state it needs.
pub(super) enum Prep {
    /// Not run: `reason`.
    Skip(String),
    Fail(StepFail),
}

impl From<StepFail> for Prep {
    fn from(f: StepFail) -> Prep {
        Prep::Fail(f)
    }
}

/// How disruptive a case is to the session: cases run in this order within
/// a suite and transport (stable), so the ones that break the registration
/// come last.
pub(super) fn disruption(case: &Case) -> u8 {
    let breaks = case.steps.iter().any(|s| match &s.input {
        StepInput::Trigger(t) => matches!(
            t.action.as_str(),
            "unregister" | "reboot" | "restart" | "teleboot"
        ),
        StepInput::Send(s) => s.body.as_deref().is_some_and(|b| b.contains("<TeleBoot>")),
        _ => false,
    });
    match case.needs {
        Needs::Reboot => 3,
        _ if breaks => 3,
        Needs::FreshRegistration => 2,
        Needs::None => 1,
        Needs::Registered => 0,
    }
}

/// The registration state a case left the device in, read from the
/// messages it exchanged: the last REGISTER camcert answered decides.
pub(super) fn reg_after(messages: &[MessageLog], before: Reg) -> Reg {
    reg_after_as(messages, before, "received", "sent")
}

/// [`reg_after`] where camcert is the device: the REGISTERs are sent and
/// the answers received.
pub(super) fn reg_after_device(messages: &[MessageLog], before: Reg) -> Reg {
    reg_after_as(messages, before, "sent", "received")
}

fn reg_after_as(messages: &[MessageLog], before: Reg, requests: &str, answers: &str) -> Reg {
    let mut state = before;
    let mut pending: Vec<(String, bool)> = Vec::new();
    for m in messages {
        let Ok(p) = SipMessage::parse(m.text.as_bytes()) else {
            continue;
        };
        let msg = p.message;
        if msg.cseq().is_none_or(|c| c.method != "REGISTER") {
            continue;
        }
        let call = format!(
            "{}|{}",
            msg.call_id().unwrap_or(""),
            msg.cseq().map(|c| c.seq).unwrap_or(0)
        );
        match (m.direction, msg.is_request(), msg.status()) {
            (d, true, _) if d == requests => {
                let unregister = resolve(&msg, "expires").as_deref() == Some("0");
                pending.push((call, unregister));
                // Until it is answered, the device is registering.
                state = Reg::Unknown;
            }
            (d, false, Some(code)) if d == answers && code >= 200 => {
                let unregister = pending
                    .iter()
                    .find(|(c, _)| *c == call)
                    .map(|(_, u)| *u)
                    .unwrap_or(false);
                state = match (code, unregister) {
                    (200..=299, false) => Reg::Registered,
                    (200..=299, true) => Reg::Unregistered,
                    // A challenge is answered by a new REGISTER; a refusal
                    // leaves the device retrying.
                    _ => Reg::Unknown,
                };
            }
            _ => {}
        }
    }
    state
}

/// Protocol seconds from a timing variable.
fn secs(v: &Vars, name: &str) -> Duration {
    let default = TIMING_VARS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, d, _)| *d)
        .unwrap_or("60");
    let raw = v.get(name).and_then(|r| v.expand(r).ok());
    let n: f64 = raw
        .as_deref()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or(60.0));
    Duration::from_secs_f64(n.max(0.0))
}

/// An operator action, by the reference peer, the lab's hook, or a person.
pub(super) async fn operator_action(
    peer: Option<&Peer>,
    opts: &RunOptions,
    action: &str,
    args: &std::collections::BTreeMap<String, String>,
    device_id: &str,
    note: &str,
) -> Result<(), Prep> {
    if let Some(p) = peer {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let action_s = action.to_string();
        let args = args.clone();
        match p {
            Peer::Camera(h) => {
                h.command(move |d, now| {
                    let _ = tx.send(d.trigger(now, &action_s, &args));
                })
                .await
            }
            Peer::Platform(h) => {
                h.command(move |p, now| {
                    let _ = tx.send(p.trigger(now, &action_s, &args));
                })
                .await
            }
        }
        return match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Prep::Fail(err(format!(
                "the reference peer cannot `{action}`: {e}"
            )))),
            Err(_) => Err(Prep::Fail(err("the reference peer stopped"))),
        };
    }
    if let Some(hook) = &opts.operator_hook {
        return run_hook(hook, action, args, device_id, note)
            .await
            .map_err(Prep::Fail);
    }
    if opts.no_operator {
        return Err(Prep::Skip(format!(
            "needs an operator to {note} (action `{action}`), and --no-operator was given"
        )));
    }
    eprintln!("ACTION REQUIRED: {note}");
    Ok(())
}

/// Longest a lab's operator hook may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(600);

/// Run `--operator-hook CMD ACTION DEVICE_ID`, with the action, device ID,
/// note and arguments also in `CAMCERT_ACTION`, `CAMCERT_DEVICE_ID`,
/// `CAMCERT_NOTE` and `CAMCERT_ARG_<NAME>`. A non-zero exit fails the step.
pub(super) async fn run_hook(
    hook: &str,
    action: &str,
    args: &std::collections::BTreeMap<String, String>,
    device_id: &str,
    note: &str,
) -> Result<(), StepFail> {
    let mut cmd = tokio::process::Command::new(hook);
    cmd.arg(action)
        .arg(device_id)
        .env("CAMCERT_ACTION", action)
        .env("CAMCERT_DEVICE_ID", device_id)
        .env("CAMCERT_NOTE", note)
        .kill_on_drop(true);
    for (k, v) in args {
        let name: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        cmd.env(format!("CAMCERT_ARG_{name}"), v);
    }
    let status = tokio::time::timeout(HOOK_TIMEOUT, cmd.status())
        .await
        .map_err(|_| {
            StepFail::new(
                "operator",
                format!("--operator-hook {hook} {action} did not finish within 600 s"),
            )
        })?
        .map_err(|e| {
            StepFail::new(
                "operator",
                format!("--operator-hook {hook} could not be run: {e}"),
            )
        })?;
    if !status.success() {
        return Err(StepFail::new(
            "operator",
            format!("--operator-hook {hook} {action} {device_id} failed: {status}"),
        )
        .exp("exit status 0", status.to_string()));
    }
    Ok(())
}

/// What one message seen by the session layer was.
enum Seen {
    Register {
        unregister: bool,
    },
    Keepalive,
    /// Something else from the device (answered when it is a MESSAGE).
    Other,
    /// Bytes that are not SIP, or a request the case must judge.
    ForCase,
    /// A retransmission of something already handled: left alone.
    Retransmission,
}

impl CaseRun<'_> {
    /// Bring the session into the state `needs` asks for. Messages that
    /// belong to the case (the REGISTER of a fresh registration) are left in
    /// the backlog for its first step.
    pub(super) async fn reach(
        &mut self,
        needs: Needs,
        sess: &mut DutSession,
        opts: &RunOptions,
    ) -> Result<(), Prep> {
        if self.suite.role == Role::Device && needs == Needs::Registered {
            return self.stay_registered(sess).await;
        }
        if self.suite.role != Role::Platform {
            return Ok(());
        }
        // What arrived between cases is no case's business.
        let fresh = matches!(needs, Needs::FreshRegistration | Needs::Reboot);
        if sess.reg == Reg::Registered {
            self.settle(
                sess,
                Duration::from_millis(1),
                Duration::from_secs(1),
                fresh,
            )
            .await?;
            if fresh && !self.backlog.is_empty() {
                return Ok(());
            }
        }
        let ka = secs(&self.vars, "keepalive_interval");
        let count = secs(&self.vars, "keepalive_timeout_count").as_secs_f64() as u32;
        let retry = secs(&self.vars, "register_retry_interval");
        // A camera that is up sends a keepalive within an interval, one that
        // is registering retries within the retry interval.
        let first_wait = ka.max(retry) + ka.max(retry) / 2;
        match needs {
            Needs::None => Ok(()),
            Needs::Registered => {
                if sess.reg == Reg::Registered {
                    return Ok(());
                }
                if sess.reg == Reg::Unregistered {
                    self.ask_register(opts).await?;
                }
                for attempt in 0..2 {
                    if self.adopt(sess, first_wait).await? {
                        return Ok(());
                    }
                    if attempt == 0 {
                        self.ask_register(opts).await?;
                    }
                }
                Err(Prep::Fail(
                    StepFail::new(
                        "session",
                        "the device neither registered nor sent a keepalive",
                    )
                    .exp(
                        format!(
                            "a REGISTER or keepalive from ${{device_id}} within {}",
                            Dur(first_wait)
                        ),
                        "nothing",
                    ),
                ))
            }
            Needs::FreshRegistration | Needs::Reboot => {
                if sess.reg == Reg::Unregistered {
                    self.ask_register(opts).await?;
                    sess.reg = Reg::Unknown;
                }
                if needs == Needs::Reboot && self.ep.default_peer.is_some() {
                    self.send_teleboot().await?;
                    let wait = secs(&self.vars, "reboot_time");
                    if self.await_register(sess, wait, false).await? {
                        return Ok(());
                    }
                } else {
                    // Unknown: a camera that is registering hands its
                    // REGISTER to the case; one already registered shows
                    // itself with a keepalive, which is refused.
                    let refuse = sess.reg == Reg::Registered;
                    let wait = if refuse {
                        ka * (count + 1) + ka / 2
                    } else {
                        first_wait + ka * (count + 1)
                    };
                    if self.await_register(sess, wait, true).await? {
                        return Ok(());
                    }
                }
                // The least disruptive ways did not bring a REGISTER: a
                // restart (which also brings the camera back to the server
                // it is configured with).
                let device_id = self.remote_id.clone();
                operator_action(
                    self.peer.as_ref(),
                    opts,
                    "reboot",
                    &Default::default(),
                    &device_id,
                    &format!("restart the camera {device_id} so that it registers again"),
                )
                .await?;
                let first_wait = first_wait.max(secs(&self.vars, "reboot_time"));
                if self.await_register(sess, first_wait, true).await? {
                    return Ok(());
                }
                Err(Prep::Fail(
                    StepFail::new("session", "the device did not register again")
                        .exp("a REGISTER", "nothing"),
                ))
            }
        }
    }

    /// Take what the device sent that belongs to no case: answer it the way
    /// a platform would (a refresh or keepalive 200, a notification 200)
    /// until nothing has come for `quiet` (at most `cap` in all). With
    /// `stop_at_register`, a REGISTER is left for the case and ends it.
    pub(super) async fn settle(
        &mut self,
        sess: &mut DutSession,
        quiet: Duration,
        cap: Duration,
        stop_at_register: bool,
    ) -> Result<(), Prep> {
        let end = Instant::now() + cap;
        loop {
            let deadline = (Instant::now() + quiet).min(end);
            let Some(inc) = self.session_recv(deadline).await? else {
                return Ok(());
            };
            let (seen, m) = self.classify(&inc.raw, stop_at_register);
            if stop_at_register && matches!(seen, Seen::Register { .. } | Seen::ForCase) {
                self.backlog.push_back(inc);
                return Ok(());
            }
            self.log("received", inc.from, &inc.raw);
            let Some(m) = m else { continue };
            match seen {
                Seen::Register { unregister } => {
                    self.session_reply(&m, inc.from, 200, !unregister).await?;
                    sess.reg = if unregister {
                        Reg::Unregistered
                    } else {
                        Reg::Registered
                    };
                }
                Seen::Keepalive => self.session_reply(&m, inc.from, 200, false).await?,
                Seen::Retransmission => {}
                Seen::Other | Seen::ForCase => {
                    if m.method() == Some("NOTIFY") {
                        self.session_reply(&m, inc.from, 200, false).await?;
                    } else {
                        self.answer_stray(&m, inc.from).await?;
                    }
                }
            }
            if Instant::now() >= end {
                return Ok(());
            }
        }
    }

    /// End the subscriptions the case left running (SUBSCRIBE with
    /// `Expires: 0` in each dialog that got a 2xx and was not ended), so
    /// that their NOTIFYs do not reach later cases. `true` when one was sent.
    pub(super) async fn end_subscriptions(&mut self) -> Result<bool, StepFail> {
        let mut dialogs: Vec<(SipMessage, Option<String>, bool)> = Vec::new();
        for m in &self.messages {
            let Ok(p) = SipMessage::parse(m.text.as_bytes()) else {
                continue;
            };
            let msg = p.message;
            if msg.cseq().is_none_or(|c| c.method != "SUBSCRIBE") {
                continue;
            }
            let call = msg.call_id().unwrap_or("").to_string();
            let at = dialogs
                .iter()
                .position(|(d, _, _)| d.call_id() == Some(call.as_str()));
            match (m.direction, msg.is_request()) {
                ("sent", true) => {
                    let ended = resolve(&msg, "expires").as_deref() == Some("0");
                    match at {
                        Some(i) => {
                            dialogs[i].0 = msg;
                            dialogs[i].2 = ended;
                        }
                        None => dialogs.push((msg, None, ended)),
                    }
                }
                ("received", false) => {
                    if let (Some(i), Some(200..=299)) = (at, msg.status()) {
                        dialogs[i].1 = msg.headers.get("To").map(str::to_string);
                    }
                }
                _ => {}
            }
        }
        let mut sent = false;
        for (mut req, to, ended) in dialogs {
            let Some(to) = to else { continue };
            if ended {
                continue;
            }
            let seq = req.cseq().map(|c| c.seq).unwrap_or(1) + 1;
            let branch = sip::new_branch(&mut rand::thread_rng());
            if let Some(via) = req.headers.get("Via") {
                let via = match via.find(";branch=") {
                    Some(i) => {
                        let rest = &via[i + 8..];
                        let end = rest.find(';').map(|e| i + 8 + e).unwrap_or(via.len());
                        format!("{};branch={branch}{}", &via[..i], &via[end..])
                    }
                    None => format!("{via};branch={branch}"),
                };
                req.headers.set("Via", via);
            }
            req.headers.set("To", to);
            req.headers.set("CSeq", format!("{seq} SUBSCRIBE"));
            req.headers.set("Expires", "0");
            req.headers.remove("Content-Length");
            let req = req.with_content_length();
            self.send_bytes(None, req.to_bytes()).await?;
            sent = true;
        }
        Ok(sent)
    }

    /// Where camcert is the device: register once (answering the digest
    /// challenge), and at the start of each later case send a keepalive, so
    /// that the platform holds the device online; a refused keepalive means
    /// the platform dropped the registration, and camcert registers again.
    async fn stay_registered(&mut self, sess: &mut DutSession) -> Result<(), Prep> {
        if sess.reg == Reg::Registered {
            // An unanswered keepalive, like a refused one, leaves the
            // registration in doubt: register again.
            if let Ok(200..=299) = self.session_keepalive(sess).await {
                return Ok(());
            }
            sess.reg = Reg::Unknown;
        }
        let mut authorization = None;
        for _ in 0..2 {
            let code = self.session_register(sess, authorization.as_ref()).await?;
            match code {
                200..=299 => {
                    sess.reg = Reg::Registered;
                    return Ok(());
                }
                401 | 407 if authorization.is_none() => {
                    let ch = self.last_challenge_received.clone().ok_or_else(|| {
                        StepFail::new("session", "the platform's challenge is unusable")
                    })?;
                    let username = self.local_id.clone();
                    let password = self.x("${password}")?;
                    let uri = register_uri(&self.remote_id, self.ep.default_peer.expect("sent"));
                    let cnonce = format!("{:08x}", rand::thread_rng().gen::<u32>());
                    authorization = Some(Credentials::answer(
                        &ch, &username, &password, "REGISTER", &uri, &cnonce,
                    ));
                }
                _ => break,
            }
        }
        Err(Prep::Fail(
            StepFail::new("session", "the platform did not accept the registration")
                .exp("200 to REGISTER", "a refusal (see the messages)"),
        ))
    }

    /// Send the session's REGISTER; the final status that answered it.
    async fn session_register(
        &mut self,
        sess: &mut DutSession,
        authorization: Option<&Credentials>,
    ) -> Result<u16, Prep> {
        let target = self
            .ep
            .default_peer
            .ok_or_else(|| Prep::Fail(err("no platform to register to")))?;
        let local = self.ep.local_addr_for(target);
        let domain = match self.vars.get("domain") {
            Some(d) => self.x(d)?,
            None => self.remote_id.get(..10).unwrap_or("").to_string(),
        };
        let expires = secs(&self.vars, "register_expires").as_secs() as u32;
        sess.cseq += 1;
        let branch = sip::new_branch(&mut rand::thread_rng());
        let m = build_register(&RegisterParams {
            device_id: &self.local_id,
            platform_id: &self.remote_id,
            domain: &domain,
            local,
            server: target,
            transport: self.ep.transport(),
            call_id: &sess.call_id,
            from_tag: &sess.from_tag,
            branch: &branch,
            cseq: sess.cseq,
            expires,
            authorization,
            user_agent: "camcert",
        });
        self.session_request(m, sess.cseq).await
    }

    /// A MANSCDP MESSAGE of the session layer's own (not a case's) to
    /// `target`, in a new dialog, its body made by `body` from a fresh SN.
    fn manscdp_message(
        &self,
        target: SocketAddr,
        body: impl FnOnce(u32) -> String,
    ) -> Result<SipMessage, StepFail> {
        let local = self.ep.local_addr_for(target);
        let domain = match self.vars.get("domain") {
            Some(d) => self.x(d)?,
            None => self.remote_id.get(..10).unwrap_or("").to_string(),
        };
        let (call_id, tag, branch, sn) = {
            let mut rng = rand::thread_rng();
            let sn: u32 = rng.gen_range(1..1_000_000);
            (
                sip::new_call_id(&mut rng),
                sip::new_tag(&mut rng),
                sip::new_branch(&mut rng),
                sn,
            )
        };
        let mut m = build_request(&RequestParams {
            method: "MESSAGE",
            from_id: &self.local_id,
            to_id: &self.remote_id,
            domain: &domain,
            local,
            remote: target,
            transport: self.ep.transport(),
            call_id: &call_id,
            from_tag: &tag,
            to_tag: None,
            cseq: 1,
            branch: &branch,
            user_agent: "camcert",
        });
        m.body = body(sn).into_bytes();
        m.headers.push("Content-Type", manscdp::CONTENT_TYPE);
        m.headers.remove("Content-Length");
        Ok(m.with_content_length())
    }

    /// A §保活 keepalive; the final status that answered it.
    async fn session_keepalive(&mut self, sess: &mut DutSession) -> Result<u16, Prep> {
        let target = self
            .ep
            .default_peer
            .ok_or_else(|| Prep::Fail(err("no platform to keep alive with")))?;
        sess.cseq += 1;
        let local_id = self.local_id.clone();
        let m = self.manscdp_message(target, |sn| {
            format!(
                "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{local_id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
            )
        })?;
        self.session_request(m, 1).await
    }

    /// Send `m` and wait for its final answer (matched by Call-ID and
    /// CSeq), answering a MESSAGE from the platform meanwhile with 200.
    async fn session_request(&mut self, m: SipMessage, cseq: u32) -> Result<u16, Prep> {
        let call_id = m.call_id().unwrap_or("").to_string();
        self.send_bytes(None, m.to_bytes()).await?;
        let deadline = self.deadline(DEFAULT_TIMEOUT);
        while let Some(inc) = self.session_recv(deadline).await? {
            self.log("received", inc.from, &inc.raw);
            let Ok(p) = SipMessage::parse(&inc.raw) else {
                continue;
            };
            let r = p.message;
            match r.status() {
                Some(code)
                    if code >= 200
                        && r.call_id() == Some(call_id.as_str())
                        && r.cseq().is_some_and(|c| c.seq == cseq) =>
                {
                    if matches!(code, 401 | 407) {
                        let h = if code == 401 {
                            "WWW-Authenticate"
                        } else {
                            "Proxy-Authenticate"
                        };
                        self.last_challenge_received =
                            r.headers.get(h).and_then(|v| Challenge::parse(v).ok());
                    }
                    return Ok(code);
                }
                Some(_) => {}
                None => self.answer_stray(&r, inc.from).await?,
            }
        }
        Err(Prep::Fail(
            StepFail::new("session", "the platform did not answer")
                .exp("a final response", "nothing"),
        ))
    }

    /// Ask for a registration by an operator action.
    async fn ask_register(&mut self, opts: &RunOptions) -> Result<(), Prep> {
        let device_id = self.remote_id.clone();
        operator_action(
            self.peer.as_ref(),
            opts,
            "register",
            &Default::default(),
            &device_id,
            &format!("make the camera {device_id} register to the platform again"),
        )
        .await
    }

    /// Tell one message from the device apart. A retransmission of a
    /// request already handled is `Retransmission` unless `peek`.
    fn classify(&mut self, raw: &[u8], peek: bool) -> (Seen, Option<SipMessage>) {
        let Ok(p) = SipMessage::parse(raw) else {
            return (Seen::ForCase, None);
        };
        let m = p.message;
        if let Some(k) = Self::transaction_key(&m) {
            if self.seen.contains(&k) {
                return (Seen::Retransmission, Some(m));
            }
            let registering = m.method() == Some("REGISTER");
            if !(peek && registering) {
                self.seen.insert(k);
            }
        }
        let seen = match m.method() {
            Some("REGISTER") => Seen::Register {
                unregister: resolve(&m, "expires").as_deref() == Some("0"),
            },
            Some("MESSAGE") if resolve(&m, "xml.CmdType").is_some_and(|t| t == "Keepalive") => {
                Seen::Keepalive
            }
            Some(_) => Seen::Other,
            // Responses (to a TeleBoot, or late ones) are not the case's.
            None => Seen::Other,
        };
        (seen, Some(m))
    }

    /// Wait for a REGISTER or keepalive and take the camera as registered
    /// (answering either with 200). `false` when neither came in `wait`.
    async fn adopt(&mut self, sess: &mut DutSession, wait: Duration) -> Result<bool, Prep> {
        let adopt_keepalive = self
            .vars
            .get("adopt_keepalive")
            .and_then(|v| self.vars.expand(v).ok())
            .is_none_or(|v| v != "false");
        let deadline = self.deadline(wait);
        while let Some(inc) = self.session_recv(deadline).await? {
            let (seen, m) = self.classify(&inc.raw, false);
            self.log("received", inc.from, &inc.raw);
            sess.device_addr = Some(inc.from);
            let Some(m) = m else { continue };
            match seen {
                Seen::Register { unregister } => {
                    self.session_reply(&m, inc.from, 200, !unregister).await?;
                    if unregister {
                        sess.reg = Reg::Unregistered;
                        continue;
                    }
                    sess.reg = Reg::Registered;
                    return Ok(true);
                }
                Seen::Keepalive if adopt_keepalive => {
                    self.session_reply(&m, inc.from, 200, false).await?;
                    sess.reg = Reg::Registered;
                    return Ok(true);
                }
                Seen::Keepalive => self.session_reply(&m, inc.from, 403, false).await?,
                Seen::Retransmission => {}
                Seen::Other | Seen::ForCase => self.answer_stray(&m, inc.from).await?,
            }
        }
        Ok(false)
    }

    /// Wait for the device's next REGISTER and leave it for the case;
    /// keepalives meanwhile are refused when `refuse` (so that the device
    /// takes this platform as offline and registers again) and answered
    /// otherwise. `false` when no REGISTER came in `wait`.
    async fn await_register(
        &mut self,
        sess: &mut DutSession,
        wait: Duration,
        refuse: bool,
    ) -> Result<bool, Prep> {
        let deadline = self.deadline(wait);
        let mut refusing = refuse;
        while let Some(inc) = self.session_recv(deadline).await? {
            let (seen, m) = self.classify(&inc.raw, true);
            sess.device_addr = Some(inc.from);
            match (seen, m) {
                (Seen::Retransmission, _) => self.log("received", inc.from, &inc.raw),
                (Seen::Register { .. } | Seen::ForCase, _) | (_, None) => {
                    // The case's first step takes it (and logs it).
                    self.backlog.push_back(inc);
                    sess.reg = Reg::Unknown;
                    return Ok(true);
                }
                (Seen::Keepalive, Some(m)) => {
                    self.log("received", inc.from, &inc.raw);
                    // A keepalive from a session not known to be registered
                    // shows the camera is up: refuse from now on.
                    refusing = refusing || sess.reg == Reg::Unknown;
                    let code = if refusing { 403 } else { 200 };
                    self.session_reply(&m, inc.from, code, false).await?;
                }
                (Seen::Other, Some(m)) => {
                    self.log("received", inc.from, &inc.raw);
                    self.answer_stray(&m, inc.from).await?;
                }
            }
        }
        Ok(false)
    }

    /// DeviceControl TeleBoot (§设备控制), answered by the device with 200.
    async fn send_teleboot(&mut self) -> Result<(), Prep> {
        let Some(target) = self.ep.default_peer else {
            return Err(Prep::Fail(err(
                "cannot reboot the device: nothing has been received from it",
            )));
        };
        let remote_id = self.remote_id.clone();
        let m = self.manscdp_message(target, |sn| {
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{remote_id}</DeviceID>\r\n<TeleBoot>Boot</TeleBoot>\r\n</Control>\r\n"
            )
        })?;
        // Its answer is the session's, not the case's: one that comes late
        // is skipped like a retransmission.
        if let Some(k) = Self::transaction_key(&sip::response_to(&m, 200, None)) {
            self.seen.insert(k);
        }
        self.send_bytes(Some(target), m.to_bytes()).await?;
        Ok(())
    }

    /// Receive for the session layer: the backlog first, then the wire.
    async fn session_recv(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<crate::transport::Incoming>, Prep> {
        if let Some(i) = self.backlog.pop_front() {
            return Ok(Some(i));
        }
        match self.ep.recv(deadline).await {
            Ok(i) => Ok(i),
            Err(e) => Err(Prep::Fail(StepFail::new("transport", format!("{e:#}")))),
        }
    }

    /// Answer a request that is no business of the session layer: a MESSAGE
    /// (a notification) with 200, an INVITE no case took (the audio call a
    /// camera places after a Broadcast, once its case has ended) with 603,
    /// so that the device does not retransmit it into later cases; anything
    /// else is left alone.
    async fn answer_stray(&mut self, m: &SipMessage, from: SocketAddr) -> Result<(), StepFail> {
        match m.method() {
            Some("MESSAGE") => self.session_reply(m, from, 200, false).await?,
            Some("INVITE") => self.session_reply(m, from, 603, false).await?,
            _ => {}
        }
        Ok(())
    }

    /// Answer `req`; a 2xx to a registering REGISTER carries Contact, the
    /// Expires granted (`register_expires`, or less when the device asked
    /// for less) and a `Date:` (§校时).
    async fn session_reply(
        &mut self,
        req: &SipMessage,
        from: SocketAddr,
        code: u16,
        registering: bool,
    ) -> Result<(), StepFail> {
        let mut r = sip::response_to(req, code, Some(&self.to_tag));
        if registering && (200..300).contains(&code) {
            if let Some(c) = req.headers.get("Contact") {
                r.headers.push("Contact", c.to_string());
            }
            let most = secs(&self.vars, "register_expires").as_secs();
            let asked = resolve(req, "expires")
                .and_then(|e| e.trim().parse::<u64>().ok())
                .unwrap_or(most);
            r.headers.push("Expires", asked.min(most).to_string());
            r.headers
                .push("Date", format_date(chrono::Local::now().naive_local()));
        }
        r.headers.push("User-Agent", "camcert");
        let r = r.with_content_length();
        self.send_bytes(Some(from), r.to_bytes()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(direction: &'static str, text: &str) -> MessageLog {
        MessageLog {
            at_ms: 0,
            direction,
            peer: "127.0.0.1:5060".into(),
            summary: String::new(),
            text: text.replace('\n', "\r\n"),
        }
    }

    const REG: &str = "REGISTER sip:34020000002000000001@3402000000 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\nFrom: <sip:34020000001320000001@3402000000>;tag=a\nTo: <sip:34020000001320000001@3402000000>\nCall-ID: c1\nCSeq: 1 REGISTER\nMax-Forwards: 70\nExpires: EXP\nContent-Length: 0\n\n";

    fn answer(code: u16, seq: u32) -> String {
        format!("SIP/2.0 {code} X\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\nFrom: <sip:34020000001320000001@3402000000>;tag=a\nTo: <sip:34020000001320000001@3402000000>;tag=b\nCall-ID: c1\nCSeq: {seq} REGISTER\nContent-Length: 0\n\n")
    }

    #[test]
    fn the_last_answered_register_decides_the_state() {
        let reg = REG.replace("EXP", "3600");
        let unreg = REG.replace("EXP", "0").replace("CSeq: 1", "CSeq: 2");
        let ok1 = answer(200, 1);
        let ok2 = answer(200, 2);
        let refused = answer(403, 1);
        let s = |msgs: &[(&'static str, &str)], before| {
            let logs: Vec<_> = msgs.iter().map(|(d, t)| log(d, t)).collect();
            reg_after(&logs, before)
        };
        assert_eq!(s(&[], Reg::Registered), Reg::Registered);
        assert_eq!(
            s(&[("received", &reg), ("sent", &ok1)], Reg::Unknown),
            Reg::Registered
        );
        assert_eq!(
            s(&[("received", &reg), ("sent", &refused)], Reg::Registered),
            Reg::Unknown
        );
        assert_eq!(s(&[("received", &reg)], Reg::Registered), Reg::Unknown);
        assert_eq!(
            s(
                &[
                    ("received", &reg),
                    ("sent", &ok1),
                    ("received", &unreg),
                    ("sent", &ok2)
                ],
                Reg::Unknown
            ),
            Reg::Unregistered
        );
    }

    #[tokio::test]
    async fn the_operator_hook_gets_the_action_and_device_and_its_exit_counts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        let hook = dir.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\necho \"$1 $2 $CAMCERT_ACTION $CAMCERT_DEVICE_ID $CAMCERT_ARG_CHANNEL|$CAMCERT_NOTE\" > {}\n[ \"$1\" != fail ]\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hook = hook.display().to_string();
        let mut args = std::collections::BTreeMap::new();
        args.insert("channel".to_string(), "1".to_string());
        run_hook(
            &hook,
            "subdevice-fault",
            &args,
            "34020000001320000001",
            "unplug it",
        )
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap().trim(),
            "subdevice-fault 34020000001320000001 subdevice-fault 34020000001320000001 1|unplug it"
        );
        let f = run_hook(&hook, "fail", &args, "34020000001320000001", "x")
            .await
            .expect_err("a failing hook fails the step");
        assert_eq!(f.check, "operator");
        assert!(
            f.message.contains("fail 34020000001320000001"),
            "{}",
            f.message
        );
    }

    #[test]
    fn timing_variables_fall_back_to_the_spec_defaults() {
        let mut v = Vars::new(&[]);
        assert_eq!(secs(&v, "keepalive_interval"), Duration::from_secs(60));
        assert_eq!(secs(&v, "keepalive_timeout_count"), Duration::from_secs(3));
        v.set("keepalive_interval", "5");
        assert_eq!(secs(&v, "keepalive_interval"), Duration::from_secs(5));
    }
}
