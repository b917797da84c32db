//! The media-session steps of the runner: `invite`, `answer`, `media`, `control`,
//! `hangup`, `session_event` and `stream`.
//!
//! The harness runs a session with the same machines the reference peers use: a
//! [`MediaUac`] when it calls, a [`MediaUas`] when it answers, fed from the case's
//! SIP endpoint, and the same media worker ([`crate::peers::session::spawn_worker`])
//! opening sockets, streaming the built-in sample and validating what arrives.
//! While a session runs, every message of its dialog goes to its machine; other
//! messages wait in a backlog for the steps that expect them, or are answered by
//! the suite's background rules.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{err, CaseRun, StepFail};
use crate::media::{sample_h264, PaceControl, Progress};
use crate::peers::session::{spawn_worker, MediaPlan, SessionReport, Worker};
use crate::proto::gb28181::session::mansrtsp::{self, Range};
use crate::proto::gb28181::session::{
    CallRequest, EndReason, Finding, MediaUac, MediaUas, Negotiated, SessionCommand, SessionEvent,
    Severity, UacConfig, UasConfig,
};
use crate::proto::ps::annexb::VideoCodec;
use crate::proto::ps::validate::Severity as StreamSeverity;
use crate::proto::sdp::{MediaKind, Setup, Ssrc};
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transmit};
use crate::report::{FindingOut, MediaSummary};
use crate::suite::model::*;
use crate::transport::clock::{Clock, SystemClock};
use crate::transport::Incoming;

/// How often a waiting step looks at the session's timers and media worker.
const TICK: Duration = Duration::from_millis(20);
/// Media still in flight when a BYE crosses it: packets arriving within this
/// long after the session ended are not counted as streaming after BYE.
const BYE_GRACE: Duration = Duration::from_millis(250);
/// How long the receiver keeps listening after the session ended, so that a
/// stream that goes on after BYE is seen.
const DRAIN: Duration = Duration::from_millis(1500);

enum Machine {
    Uac(Box<MediaUac>),
    Uas(Box<MediaUas>),
}

impl Machine {
    fn matches(&self, m: &SipMessage) -> bool {
        match self {
            Machine::Uac(u) => u.matches(m),
            Machine::Uas(u) => u.matches(m),
        }
    }
    fn handle(&mut self, now: Now, from: SocketAddr, m: &SipMessage) {
        match self {
            Machine::Uac(u) => u.handle_message(now, from, m),
            Machine::Uas(u) => u.handle_message(now, from, m),
        }
    }
    fn timeout(&self) -> Option<Instant> {
        match self {
            Machine::Uac(u) => u.poll_timeout(),
            Machine::Uas(u) => u.poll_timeout(),
        }
    }
    fn on_timeout(&mut self, now: Now) {
        match self {
            Machine::Uac(u) => u.handle_timeout(now),
            Machine::Uas(u) => u.handle_timeout(now),
        }
    }
    fn transmit(&mut self) -> Option<Transmit> {
        match self {
            Machine::Uac(u) => u.poll_transmit(),
            Machine::Uas(u) => u.poll_transmit(),
        }
    }
    fn event(&mut self) -> Option<SessionEvent> {
        match self {
            Machine::Uac(u) => u.poll_event(),
            Machine::Uas(u) => u.poll_event(),
        }
    }
    fn apply(&mut self, now: Now, c: SessionCommand) {
        match self {
            Machine::Uac(u) => u.apply(now, c),
            Machine::Uas(u) => u.apply(now, c),
        }
    }
}

/// The session a case is running.
pub(super) struct LiveSession {
    machine: Machine,
    worker: Option<Worker>,
    task: Option<JoinHandle<SessionReport>>,
    commands: mpsc::UnboundedReceiver<SessionCommand>,
    /// Events no step has looked at yet.
    pending: VecDeque<SessionEvent>,
    /// Packets and frames received (camcert calling) or sent (camcert answering).
    progress: Progress,
    /// The other direction (sent when calling, received when answering).
    other: Progress,
    /// The final response to the INVITE (calling side).
    final_response: Option<SipMessage>,
    negotiated: Option<Negotiated>,
    /// When the session ended (BYE sent or received), wall clock.
    ended_at: Option<SystemTime>,
    report: Option<SessionReport>,
    /// Steers the video camcert sends (the `stop` of a `media` step).
    pace: PaceControl,
    /// 1-based number of the session within the case.
    number: usize,
    /// A `stream` step already put the stream's findings in the case.
    stream_findings_reported: bool,
}

impl LiveSession {
    fn new(
        machine: Machine,
        mut plan: MediaPlan,
        progress: Progress,
        other: Progress,
        number: usize,
    ) -> LiveSession {
        let pace = plan.pace.get_or_insert_with(PaceControl::new).clone();
        let (tx, commands) = mpsc::unbounded_channel();
        let mut worker = spawn_worker(plan, None, move |c| {
            let _ = tx.send(c);
        });
        let task = Some(std::mem::replace(
            &mut worker.task,
            tokio::spawn(async { SessionReport::default() }),
        ));
        LiveSession {
            machine,
            worker: Some(worker),
            task,
            commands,
            pending: VecDeque::new(),
            progress,
            other,
            final_response: None,
            negotiated: None,
            ended_at: None,
            report: None,
            pace,
            number,
            stream_findings_reported: false,
        }
    }

    fn is_ended(&self) -> bool {
        self.ended_at.is_some()
    }
}

fn now() -> Now {
    SystemClock.now()
}

fn finding_fail(f: &Finding) -> StepFail {
    StepFail::new(
        &format!("session.{}", f.code),
        format!("{} ({})", f.message, f.clause),
    )
}

fn reason_name(r: &EndReason) -> String {
    match r {
        EndReason::ByeReceived => "bye_received".into(),
        EndReason::ByeSent => "bye_sent".into(),
        EndReason::Rejected(s) => format!("rejected_{s}"),
        EndReason::Cancelled => "cancelled".into(),
        EndReason::TimedOut => "timed_out".into(),
        EndReason::NoAck => "no_ack".into(),
        EndReason::AnswerUnusable => "answer_unusable".into(),
        EndReason::MediaTimeout => "media_timeout".into(),
        EndReason::EndOfFile => "end_of_file".into(),
        EndReason::NoMedia => "no_media".into(),
    }
}

fn event_findings(e: &SessionEvent) -> &[Finding] {
    match e {
        SessionEvent::Offer { findings, .. }
        | SessionEvent::Started { findings, .. }
        | SessionEvent::Control { findings, .. }
        | SessionEvent::ControlAnswered { findings, .. }
        | SessionEvent::MediaStatus { findings, .. }
        | SessionEvent::Ended { findings, .. }
        | SessionEvent::ByeAnswered { findings, .. } => findings,
        SessionEvent::Finding(f) => std::slice::from_ref(f),
        _ => &[],
    }
}

/// The answer to a request camcert sent in the session has the status expected.
fn answered(what: &str, status: Option<u16>, expected: u16) -> Result<(), StepFail> {
    match status {
        Some(s) if s == expected => Ok(()),
        Some(s) => Err(StepFail::new(
            "status",
            format!("the {what} was answered {s}, expected {expected}"),
        )
        .exp(expected.to_string(), s.to_string())),
        None => Err(
            StepFail::new("timeout", format!("the {what} got no answer"))
                .exp(expected.to_string(), "nothing"),
        ),
    }
}

/// Every error-severity finding, unless allowed: the first carries the rest.
fn first_error(fs: &[Finding], allow: bool) -> Result<(), StepFail> {
    if allow {
        return Ok(());
    }
    let errors = fs
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(finding_fail)
        .collect();
    match StepFail::join(errors) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

impl CaseRun<'_> {
    /// The session findings a step fails on itself: all, under `--strict`;
    /// otherwise those the lenient reading did not recover from (the
    /// per-message checks charge those, and the case goes on).
    fn unrecovered(&self, fs: &[Finding]) -> Vec<Finding> {
        fs.iter()
            .filter(|f| self.strict || !super::audit::is_recovered(f.code))
            .cloned()
            .collect()
    }

    fn media_plan(&self, local_ip: std::net::IpAddr, rx: &Progress, tx: &Progress) -> MediaPlan {
        let mut plan = MediaPlan::new(local_ip, Some(sample_h264()), VideoCodec::H264);
        plan.hangup_when_received = false;
        plan.drain = DRAIN;
        plan.linger = Duration::from_secs(2);
        plan.max_session = Duration::from_secs(300);
        plan.receiver.max_duration = Duration::from_secs(300);
        plan.receiver.media_timeout = Duration::from_secs(10);
        plan.receiver.capture_bytes = 16 << 20;
        plan.receiver.progress = rx.clone();
        plan.sender.capture_bytes = 16 << 20;
        plan.sender.progress = tx.clone();
        plan.audio.receiver.max_duration = Duration::from_secs(300);
        plan.audio.receiver.media_timeout = Duration::from_secs(10);
        plan.audio.receiver.progress = rx.clone();
        plan.audio.sender.capture_bytes = 8 << 20;
        plan.audio.sender.progress = tx.clone();
        plan
    }

    /// Give the session machine what the worker said, send what it transmits, and
    /// hand its events to the worker and the pending queue.
    async fn pump(&mut self) -> Result<(), StepFail> {
        loop {
            let Some(s) = self.session.as_mut() else {
                return Ok(());
            };
            let mut progressed = false;
            while let Ok(c) = s.commands.try_recv() {
                s.machine.apply(now(), c);
                progressed = true;
            }
            if s.machine.timeout().is_some_and(|t| t <= Instant::now()) {
                s.machine.on_timeout(now());
                progressed = true;
            }
            let mut out = Vec::new();
            while let Some(t) = s.machine.transmit() {
                out.push(t);
            }
            let mut findings = Vec::new();
            while let Some(e) = s.machine.event() {
                progressed = true;
                findings.extend(event_findings(&e).iter().cloned());
                match &e {
                    SessionEvent::Started { negotiated, .. } => {
                        s.negotiated = Some((**negotiated).clone())
                    }
                    SessionEvent::Ended { .. } => {
                        s.ended_at.get_or_insert_with(SystemTime::now);
                    }
                    _ => {}
                }
                if let Some(w) = &s.worker {
                    let _ = w.events.send(e.clone());
                }
                s.pending.push_back(e);
            }
            for f in findings {
                self.findings
                    .push(FindingOut::from(&f).with_code_prefix("session."));
            }
            for t in out {
                progressed = true;
                self.send_bytes(Some(t.to), t.bytes).await?;
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    /// The next message that is not the session's, before `deadline`; messages of
    /// the session go to its machine. With `backlog`, earlier set-aside messages
    /// come first.
    pub(super) async fn recv_routed(
        &mut self,
        deadline: Instant,
        backlog: bool,
    ) -> anyhow::Result<Option<Incoming>> {
        loop {
            if backlog {
                if let Some(i) = self.backlog.pop_front() {
                    return Ok(Some(i));
                }
            }
            self.pump().await.map_err(|f| anyhow::anyhow!(f.message))?;
            let wake = match &self.session {
                Some(s) => {
                    let t = (Instant::now() + TICK).min(deadline);
                    s.machine.timeout().map_or(t, |x| x.min(t))
                }
                None => deadline,
            };
            match self.ep.recv(wake).await? {
                Some(inc) => {
                    let parsed = SipMessage::parse(&inc.raw).ok().map(|p| p.message);
                    let mine = match (&self.session, &parsed) {
                        (Some(s), Some(m)) => s.machine.matches(m),
                        _ => false,
                    };
                    if !mine {
                        return Ok(Some(inc));
                    }
                    self.log("received", inc.from, &inc.raw);
                    let m = parsed.expect("parsed above");
                    let s = self.session.as_mut().expect("a session");
                    if m.status().is_some_and(|c| c >= 200)
                        && m.cseq().is_some_and(|c| c.method == "INVITE")
                    {
                        s.final_response = Some(m.clone());
                    }
                    s.machine.handle(now(), inc.from, &m);
                }
                None if Instant::now() >= deadline => return Ok(None),
                None => {}
            }
        }
    }

    /// Keep the session going until `deadline`, setting aside other messages
    /// (answering those a background rule covers).
    pub(super) async fn idle_until(&mut self, deadline: Instant) -> Result<(), StepFail> {
        while Instant::now() < deadline {
            match self.recv_routed(deadline, false).await {
                Ok(Some(inc)) => self.set_aside(inc).await?,
                Ok(None) => break,
                Err(e) => return Err(StepFail::new("transport", format!("{e:#}"))),
            }
            if self.session.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// A message that arrived while a session step waited: background rules
    /// answer it, or it waits for a later step.
    async fn set_aside(&mut self, inc: Incoming) -> Result<(), StepFail> {
        if !self.answer_in_background(&inc).await? {
            self.backlog.push_back(inc);
        }
        Ok(())
    }

    /// Answer `inc` by the suite's background rules; `true` when one applied.
    async fn answer_in_background(&mut self, inc: &Incoming) -> Result<bool, StepFail> {
        let Ok(p) = SipMessage::parse(&inc.raw) else {
            return Ok(false);
        };
        if !p.message.is_request() {
            return Ok(false);
        }
        self.log("received", inc.from, &inc.raw);
        if self.background(&p.message, inc.from).await? {
            return Ok(true);
        }
        // The step that takes it logs it.
        self.messages.pop();
        Ok(false)
    }

    /// Wait for a pending session event that `pick` accepts; the events before it
    /// are dropped from the queue (they stay in the session's report).
    async fn wait_event(
        &mut self,
        deadline: Instant,
        what: &str,
        mut pick: impl FnMut(&SessionEvent) -> bool,
    ) -> Result<SessionEvent, StepFail> {
        loop {
            if let Some(s) = self.session.as_mut() {
                while let Some(e) = s.pending.pop_front() {
                    if pick(&e) {
                        return Ok(e);
                    }
                }
            } else {
                return Err(err(
                    "no media session is running (use `invite` or `answer` first)",
                ));
            }
            if Instant::now() >= deadline {
                return Err(StepFail::new("timeout", format!("no {what} in time"))
                    .exp(what.to_string(), "nothing"));
            }
            let until = (Instant::now() + TICK).min(deadline);
            self.idle_until(until).await?;
        }
    }

    /// Nothing in a media session runs on protocol time (media is real time, and
    /// so are SIP transaction timers), so a `timeout` the suite gives is real
    /// time. Without one the default is scaled like any other wait, with its
    /// floor, so that a scaled run against a peer that never answers stays short.
    fn session_deadline(&self, t: Option<Dur>, default: Duration) -> Instant {
        match t {
            Some(t) => Instant::now() + t.0,
            None => self.deadline(default),
        }
    }

    /// Ends the running session politely (BYE when established) and keeps its
    /// media capture for the case's evidence.
    pub(super) async fn close_session(&mut self) -> Vec<crate::transport::Packet> {
        let Some(s) = self.session.as_mut() else {
            return Vec::new();
        };
        if !s.is_ended() {
            s.machine.apply(now(), SessionCommand::HangUp);
            let _ = self
                .idle_until(Instant::now() + Duration::from_millis(500))
                .await;
        }
        let Some(mut s) = self.session.take() else {
            return Vec::new();
        };
        s.worker = None; // the worker stops its media when its events end
        let report = match s.report.take() {
            Some(r) => Some(r),
            None => match s.task.take() {
                Some(t) => tokio::time::timeout(Duration::from_secs(5), t)
                    .await
                    .ok()
                    .and_then(Result::ok),
                None => None,
            },
        };
        let mut packets = Vec::new();
        if let Some(r) = report {
            self.media.extend(media_summaries(s.number, &r));
            if !s.stream_findings_reported {
                self.stream_findings(&r);
            }
            if let Some(rx) = &r.received {
                packets.extend(rx.capture.iter().map(|p| p.to_packet()));
            }
            if let Some(tx) = &r.sent {
                packets.extend(tx.capture.iter().map(|p| p.to_packet()));
            }
            for e in r.errors {
                self.findings
                    .push(Finding::warning("camcert.media", "", e).into());
            }
        }
        packets
    }

    pub(super) async fn invite(&mut self, i: &InviteInput) -> Result<(), StepFail> {
        if self.session.as_ref().is_some_and(|s| !s.is_ended()) {
            return Err(err("a media session is already running; end it first"));
        }
        let _ = self.close_session().await;
        let remote = self
            .ep
            .default_peer
            .ok_or_else(|| err("the DUT's address is not known yet (it has sent nothing)"))?;
        let local = self.ep.local_addr_for(remote);
        let target = match &i.channel {
            Some(c) => self.x(c)?,
            None => self.remote_id.clone(),
        };
        let tcp = match i.media.unwrap_or(MediaMode::Udp) {
            MediaMode::Udp => None,
            // The device (sender) connects: camcert listens.
            MediaMode::TcpActive => Some(Setup::Passive),
            MediaMode::TcpPassive => Some(Setup::Active),
        };
        let num = |v: &Option<String>, d: u64| -> Result<u64, StepFail> {
            match v {
                Some(v) => self
                    .x(v)?
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("{v:?} is not a number of Unix seconds"))),
                None => Ok(d),
            }
        };
        // History defaults: the hour before the run.
        let hour_ago = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .saturating_sub(3600);
        let (start, end) = (num(&i.start, hour_ago)?, num(&i.end, hour_ago + 600)?);
        let mut request = match i.session.unwrap_or(SessionKindInput::Play) {
            SessionKindInput::Play => CallRequest::live(&target, 0, tcp),
            SessionKindInput::Playback => CallRequest::playback(&target, 0, tcp, start, end),
            SessionKindInput::Download => {
                CallRequest::download(&target, 0, tcp, start, end, i.speed)
            }
            SessionKindInput::Talk => CallRequest::talk(&target, 0, tcp),
            SessionKindInput::Broadcast => CallRequest::broadcast_audio(&target, 0, tcp),
        };
        if let Some(y) = &i.ssrc {
            let y = self.x(y)?;
            request.ssrc =
                Some(Ssrc::parse(&y).ok_or_else(|| err(format!("{y:?} is not a 10-digit SSRC")))?);
        }
        let mut cfg = UacConfig::new(&self.local_id, local, remote, local.ip());
        cfg.transport = self.ep.transport();
        cfg.user_agent = "camcert".into();
        cfg.hangup_on_end_of_file = false;
        cfg.seed = rand::thread_rng().gen();
        if let Some(d) = self.vars.get("domain") {
            cfg.domain = self.x(d)?;
        }
        let mut uac = MediaUac::new(cfg, request);
        uac.start(now());
        let (rx, tx) = (Progress::default(), Progress::default());
        let plan = self.media_plan(local.ip(), &rx, &tx);
        self.sessions_started += 1;
        self.session = Some(LiveSession::new(
            Machine::Uac(Box::new(uac)),
            plan,
            rx,
            tx,
            self.sessions_started,
        ));
        let expected = i.status.unwrap_or(200);
        let deadline = self.session_deadline(i.timeout, Duration::from_secs(32));
        let e = self
            .wait_event(deadline, "answer to the INVITE", |e| {
                matches!(e, SessionEvent::Started { .. } | SessionEvent::Ended { .. })
            })
            .await?;
        let (status, findings) = match &e {
            SessionEvent::Started { findings, .. } => (200u16, findings.clone()),
            SessionEvent::Ended {
                reason: EndReason::Rejected(code),
                findings,
            } => (*code, findings.clone()),
            SessionEvent::Ended { reason, .. } => {
                return Err(StepFail::new(
                    "session",
                    format!(
                        "the session ended before it was established ({})",
                        reason_name(reason)
                    ),
                )
                .exp(format!("{expected}"), reason_name(reason)))
            }
            _ => unreachable!("picked above"),
        };
        let got = self
            .session
            .as_ref()
            .and_then(|s| s.final_response.as_ref())
            .and_then(|r| r.status())
            .unwrap_or(status);
        let ok = if (200..300).contains(&expected) {
            (200..300).contains(&got)
        } else {
            got == expected
        };
        if !ok {
            return Err(StepFail::new(
                "status",
                format!("the INVITE was answered {got}, expected {expected}"),
            )
            .exp(expected.to_string(), got.to_string()));
        }
        first_error(&self.unrecovered(&findings), i.allow_findings)?;
        if let Some(resp) = self.session.as_ref().and_then(|s| s.final_response.clone()) {
            let resp = self.lenient_view(&resp);
            self.check_matchers(&i.matches, |p| super::resolve(&resp, p), Some(&resp))?;
        }
        if let Some(n) = self.session.as_ref().and_then(|s| s.negotiated.clone()) {
            self.vars.set("session_ssrc", n.ssrc.to_string());
        }
        Ok(())
    }

    pub(super) async fn answer_invite(&mut self, a: &AnswerInput) -> Result<(), StepFail> {
        if self.session.as_ref().is_some_and(|s| !s.is_ended()) {
            return Err(err("a media session is already running; end it first"));
        }
        let _ = self.close_session().await;
        let deadline = self.session_deadline(a.timeout, Duration::from_secs(32));
        // Wait for the INVITE; other messages are answered by background rules
        // or kept for later steps.
        let mut kept = Vec::new();
        let found = loop {
            let inc = match self.backlog.pop_front() {
                Some(i) => i,
                None => match self.recv_routed(deadline, false).await {
                    Ok(Some(i)) => i,
                    Ok(None) => break None,
                    Err(e) => {
                        self.backlog.extend(kept);
                        return Err(StepFail::new("transport", format!("{e:#}")));
                    }
                },
            };
            match SipMessage::parse(&inc.raw) {
                Ok(p) if p.message.method() == Some("INVITE") => {
                    self.log("received", inc.from, &inc.raw);
                    break Some((p.message, inc.from));
                }
                _ => {
                    if !self.answer_in_background(&inc).await? {
                        kept.push(inc);
                    }
                }
            }
        };
        for k in kept.into_iter().rev() {
            self.backlog.push_front(k);
        }
        let Some((invite, from)) = found else {
            return Err(StepFail::new("timeout", "no INVITE in time").exp("INVITE", "nothing"));
        };
        let view = self.lenient_view(&invite);
        self.check_matchers(&a.matches, |p| super::resolve(&view, p), Some(&view))?;
        let local = self.ep.local_addr_for(from);
        let mut cfg = UasConfig::new(&self.local_id, local, local.ip());
        cfg.transport = self.ep.transport();
        cfg.user_agent = "camcert".into();
        cfg.seed = rand::thread_rng().gen();
        let history = matches!(
            super::resolve(&invite, "sdp.s").as_deref(),
            Some("Playback" | "Download")
        );
        let (rx, tx) = (Progress::default(), Progress::default());
        let mut plan = self.media_plan(local.ip(), &rx, &tx);
        if history {
            // A recording of a few seconds, so the file ends and MediaStatus 121 follows.
            plan.sender.looping = false;
            plan.sender.max_duration = Some(Duration::from_secs(3));
        }
        if let Some(d) = &a.damage {
            let seed = match &d.seed {
                Some(s) => self.x(s)?,
                None => match self.vars.get("fuzz_seed") {
                    Some(s) => self.x(s)?,
                    None => "1".into(),
                },
            };
            let seed = seed
                .trim()
                .parse()
                .map_err(|e| StepFail::new("answer", format!("damage seed {seed:?}: {e}")))?;
            plan.sender.damage =
                Some(crate::proto::rtp::damage::DamageConfig { seed, rate: d.rate });
        }
        let mut uas = MediaUas::new(cfg);
        uas.handle_message(now(), from, &invite);
        self.sessions_started += 1;
        self.session = Some(LiveSession::new(
            Machine::Uas(Box::new(uas)),
            plan,
            tx,
            rx,
            self.sessions_started,
        ));
        let status = a.status.unwrap_or(200);
        let offer = self
            .wait_event(deadline, "usable offer", |e| {
                matches!(e, SessionEvent::Offer { .. } | SessionEvent::Ended { .. })
            })
            .await?;
        match &offer {
            SessionEvent::Offer { findings, .. } => {
                first_error(&self.unrecovered(findings), a.allow_findings)?
            }
            SessionEvent::Ended { reason, findings } => {
                first_error(findings, false)?;
                return Err(StepFail::new(
                    "session",
                    format!("the offer could not be answered ({})", reason_name(reason)),
                ));
            }
            _ => unreachable!("picked above"),
        }
        if status != 200 {
            if let Some(LiveSession {
                machine: Machine::Uas(u),
                ..
            }) = self.session.as_mut()
            {
                u.reject(now(), status).map_err(err)?;
            }
            self.pump().await?;
            return Ok(());
        }
        let e = self
            .wait_event(deadline, "ACK", |e| {
                matches!(e, SessionEvent::Started { .. } | SessionEvent::Ended { .. })
            })
            .await?;
        match e {
            SessionEvent::Started { findings, .. } => {
                first_error(&self.unrecovered(&findings), a.allow_findings)
            }
            SessionEvent::Ended { reason, .. } => Err(StepFail::new(
                "session",
                format!(
                    "the session ended before the ACK ({})",
                    reason_name(&reason)
                ),
            )),
            _ => unreachable!("picked above"),
        }
    }

    pub(super) async fn media(&mut self, m: &MediaInput) -> Result<(), StepFail> {
        let Some(s) = &self.session else {
            return Err(err("no media session is running"));
        };
        if m.stop {
            let sends_video = s.negotiated.as_ref().is_some_and(|n| {
                n.media
                    .iter()
                    .any(|m| m.kind == MediaKind::Video && m.sends())
            });
            if !sends_video {
                return Err(err(
                    "`stop` needs an established session in which camcert sends video",
                ));
            }
            // The session stays up; only the pictures stop, as from a stalled
            // encoder (a TCP connection stays open).
            s.pace.pause();
        }
        let progress = if m.other_direction {
            s.other.clone()
        } else {
            s.progress.clone()
        };
        let deadline = Instant::now() + m.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10));
        if m.frames.is_some() || m.packets.is_some() {
            let (f0, p0) = (progress.frames(), progress.packets());
            let done = |p: &Progress| {
                m.frames.is_none_or(|n| p.frames() >= f0 + n)
                    && m.packets.is_none_or(|n| p.packets() >= p0 + n)
            };
            while !done(&progress) {
                if Instant::now() >= deadline {
                    let want = match (m.frames, m.packets) {
                        (Some(f), _) => format!("{f} frames"),
                        (_, Some(p)) => format!("{p} packets"),
                        _ => unreachable!(),
                    };
                    return Err(StepFail::new(
                        "media.timeout",
                        format!("the media did not bring {want} in time"),
                    )
                    .exp(
                        want,
                        format!(
                            "{} frames, {} packets",
                            progress.frames() - f0,
                            progress.packets() - p0
                        ),
                    ));
                }
                self.idle_until((Instant::now() + TICK).min(deadline))
                    .await?;
            }
        }
        if let Some(q) = m.quiet {
            let settle = m.settle.map(|d| d.0).unwrap_or(Duration::from_millis(200));
            self.idle_until(Instant::now() + settle).await?;
            let p0 = progress.packets();
            self.idle_until(Instant::now() + q.0).await?;
            let n = progress.packets() - p0;
            if n > 0 {
                return Err(StepFail::new(
                    "media.quiet",
                    format!("{n} media packets arrived in {q} that should have been quiet"),
                )
                .exp("no packets", format!("{n} packets")));
            }
        }
        Ok(())
    }

    pub(super) async fn control(&mut self, c: &ControlInput) -> Result<(), StepFail> {
        let range = match c.range.as_deref().map(str::trim) {
            None => None,
            Some("now") => Some(Range::RESUME),
            Some(v) => {
                Some(Range::from_seconds(v.parse().map_err(|_| {
                    err(format!("range {v:?}: expected seconds or `now`"))
                })?))
            }
        };
        let request = match c.method.to_ascii_uppercase().as_str() {
            "PLAY" => mansrtsp::Request::play(0, c.scale, range),
            "PAUSE" => mansrtsp::Request::pause(0),
            "TEARDOWN" => mansrtsp::Request::teardown(0),
            other => {
                return Err(err(format!(
                    "unknown MANSRTSP method {other:?} (PLAY, PAUSE, TEARDOWN)"
                )))
            }
        };
        let sent = match self.session.as_mut().map(|s| &mut s.machine) {
            Some(Machine::Uac(u)) => u.control(now(), request),
            _ => {
                return Err(err(
                    "`control` needs a session camcert placed with `invite`",
                ))
            }
        };
        let Some(sent) = sent else {
            return Err(err("the session is not established"));
        };
        self.pump().await?;
        let deadline = self.session_deadline(c.timeout, Duration::from_secs(32));
        let e = self
            .wait_event(deadline, "answer to the INFO", |e| {
                matches!(e, SessionEvent::ControlAnswered { request, .. } if request.cseq == sent.cseq)
            })
            .await?;
        let SessionEvent::ControlAnswered {
            status, findings, ..
        } = e
        else {
            unreachable!("picked above")
        };
        answered("INFO", status, c.status.unwrap_or(200))?;
        first_error(&findings, false)
    }

    pub(super) async fn hangup(&mut self, h: &HangupInput) -> Result<(), StepFail> {
        let Some(s) = self.session.as_mut() else {
            return Err(err("no media session is running"));
        };
        if s.is_ended() {
            return Err(err("the session has already ended"));
        }
        s.machine.apply(now(), SessionCommand::HangUp);
        self.pump().await?;
        let deadline = self.session_deadline(h.timeout, Duration::from_secs(32));
        let e = self
            .wait_event(deadline, "answer to the BYE", |e| {
                matches!(e, SessionEvent::ByeAnswered { .. })
            })
            .await?;
        let SessionEvent::ByeAnswered { status, findings } = e else {
            unreachable!("picked above")
        };
        answered("BYE", status, h.status.unwrap_or(200))?;
        first_error(&findings, false)
    }

    pub(super) async fn session_event(&mut self, w: &SessionEventInput) -> Result<(), StepFail> {
        let deadline = self.session_deadline(w.timeout, Duration::from_secs(32));
        let what = match w.event {
            SessionEventKind::Ended => format!(
                "end of the session{}",
                w.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            SessionEventKind::MediaStatus => format!(
                "MediaStatus{}",
                w.notify_type.map(|n| format!(" {n}")).unwrap_or_default()
            ),
            SessionEventKind::Control => format!(
                "MANSRTSP {}",
                w.method.clone().unwrap_or_else(|| "request".into())
            ),
            SessionEventKind::MediaStatusAnswered => {
                "answer to the MediaStatus notification".into()
            }
        };
        let mut seen = Vec::new();
        let r = self
            .wait_event(deadline, &what, |e| {
                let hit = match (w.event, e) {
                    (SessionEventKind::Ended, SessionEvent::Ended { reason, .. }) => {
                        seen.push(reason_name(reason));
                        w.reason.as_deref().is_none_or(|r| r == reason_name(reason))
                    }
                    (
                        SessionEventKind::MediaStatus,
                        SessionEvent::MediaStatus { notify_type, .. },
                    ) => w.notify_type.is_none_or(|n| Some(n) == *notify_type),
                    (
                        SessionEventKind::MediaStatusAnswered,
                        SessionEvent::MediaStatusAnswered { .. },
                    ) => true,
                    (SessionEventKind::Control, SessionEvent::Control { request, .. }) => w
                        .method
                        .as_deref()
                        .is_none_or(|m| request.method.as_str().eq_ignore_ascii_case(m)),
                    _ => false,
                };
                // An end that is not the one awaited ends the wait too.
                hit || matches!(e, SessionEvent::Ended { .. })
            })
            .await;
        let e = match r {
            Ok(e) => e,
            Err(mut f) => {
                if let Some(last) = seen.last() {
                    f.received = Some(format!("the session ended ({last})"));
                }
                return Err(f);
            }
        };
        let ok = match (&w.event, &e) {
            (SessionEventKind::Ended, SessionEvent::Ended { reason, .. }) => {
                w.reason.as_deref().is_none_or(|r| r == reason_name(reason))
            }
            (SessionEventKind::Ended, _) => false,
            (_, SessionEvent::Ended { .. }) => false,
            _ => true,
        };
        if !ok {
            let got = match &e {
                SessionEvent::Ended { reason, .. } => {
                    format!("the session ended ({})", reason_name(reason))
                }
                other => format!("{other:?}"),
            };
            return Err(
                StepFail::new("session", format!("expected {what}, but {got}")).exp(what, got),
            );
        }
        if let SessionEvent::MediaStatusAnswered { status } = e {
            answered("MediaStatus notification", status, w.status.unwrap_or(200))?;
        }
        first_error(event_findings(&e), w.allow_findings)
    }

    pub(super) async fn stream(&mut self, st: &StreamInput) -> Result<(), StepFail> {
        let wait = st.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10));
        let deadline = Instant::now() + wait.max(DRAIN * 2);
        // The session must end first; its media follows.
        while self.session.as_ref().is_some_and(|s| !s.is_ended()) {
            if Instant::now() >= deadline {
                return Err(err(
                    "the session is still running: end it (hangup, or wait for its end) before `stream`",
                ));
            }
            self.idle_until((Instant::now() + TICK).min(deadline))
                .await?;
        }
        let Some(s) = self.session.as_mut() else {
            return Err(err("no media session has run"));
        };
        if s.report.is_none() {
            // The worker ends by itself once the drain after the end is over;
            // dropping it now would cut the drain short.
            let Some(task) = s.task.take() else {
                return Err(err("the session's media report is gone"));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let r = tokio::time::timeout(left, task)
                .await
                .map_err(|_| err("the session's media did not finish in time"))?
                .map_err(|e| err(format!("media task failed: {e}")))?;
            s.report = Some(r);
        }
        let report = s.report.clone().expect("set above");
        let ended_at = s.ended_at;
        for e in &report.errors {
            self.findings
                .push(Finding::warning("camcert.media", "", e.clone()).into());
        }
        s.stream_findings_reported = true;
        self.stream_findings(&report);
        if let Some(rx) = &report.received {
            if let Some(f) = rx.validation.findings.iter().find(|f| {
                f.severity == StreamSeverity::Error && !st.allow.iter().any(|a| a == f.code)
            }) {
                return Err(StepFail::new(
                    f.code,
                    format!("the stream broke a rule: {} (×{})", f.message, f.count()),
                ));
            }
        }
        if let Some(a) = &report.audio_received {
            if let Some(f) = a.check.findings.iter().find(|f| {
                f.severity == StreamSeverity::Error && !st.allow.iter().any(|x| x == f.code)
            }) {
                return Err(StepFail::new(
                    &format!("audio.{}", f.code),
                    format!(
                        "the audio stream broke a rule: {} (×{})",
                        f.message,
                        f.count()
                    ),
                ));
            }
        }
        self.check_matchers(&st.matches, |p| stream_field(&report, p, ended_at), None)?;
        Ok(())
    }
}

impl CaseRun<'_> {
    /// The findings of the streams camcert received, into the case's findings.
    fn stream_findings(&mut self, report: &SessionReport) {
        if let Some(rx) = &report.received {
            for f in &rx.validation.findings {
                let mut out = FindingOut::from(f);
                out.message = format!("{} (×{})", f.message, f.count());
                self.findings.push(out);
            }
        }
        if let Some(a) = &report.audio_received {
            for f in &a.check.findings {
                let mut out = FindingOut::from(f).with_code_prefix("audio.");
                out.message = format!("{} (×{})", f.message, f.count());
                self.findings.push(out);
            }
        }
    }
}

/// The media figures of one session's streams, as the report shows them.
fn media_summaries(session: usize, r: &SessionReport) -> Vec<MediaSummary> {
    let mut out = Vec::new();
    if let Some(rx) = &r.received {
        let v = &rx.validation;
        let errors = v
            .findings
            .iter()
            .filter(|f| f.severity == StreamSeverity::Error)
            .count();
        out.push(MediaSummary {
            session,
            kind: "video".into(),
            direction: "received".into(),
            packets: v.packets,
            frames: Some(v.video_frames),
            key_frames: Some(v.key_frames),
            frame_rate: v.frame_rate,
            bitrate_kbps: v.bitrate_bps.map(|b| b / 1000.0),
            lost_packets: Some(v.lost_packets),
            loss_ratio: Some(v.loss_ratio),
            jitter_ms: (v.packets > 1).then_some(v.jitter_ms),
            first_key_frame_ms: v.time_to_first_key_frame.map(|d| d.as_millis() as u64),
            errors,
            warnings: v.findings.len() - errors,
        });
    }
    if let Some(tx) = &r.sent {
        let secs = tx.elapsed.as_secs_f64();
        out.push(MediaSummary {
            session,
            kind: "video".into(),
            direction: "sent".into(),
            packets: tx.packets,
            frames: Some(tx.frames),
            key_frames: Some(tx.key_frames),
            bitrate_kbps: (secs > 0.0).then(|| tx.ps_bytes as f64 * 8.0 / secs / 1000.0),
            ..MediaSummary::default()
        });
    }
    if let Some(a) = &r.audio_received {
        let c = &a.check;
        let errors = c
            .findings
            .iter()
            .filter(|f| f.severity == StreamSeverity::Error)
            .count();
        let secs = a.elapsed.as_secs_f64();
        out.push(MediaSummary {
            session,
            kind: "audio".into(),
            direction: "received".into(),
            packets: c.packets,
            bitrate_kbps: (secs > 0.0 && c.packets > 0)
                .then(|| c.payload_bytes as f64 * 8.0 / secs / 1000.0),
            lost_packets: Some(c.lost_packets),
            loss_ratio: Some(c.loss_ratio),
            errors,
            warnings: c.findings.len() - errors,
            ..MediaSummary::default()
        });
    }
    if let Some(a) = &r.audio_sent {
        out.push(MediaSummary {
            session,
            kind: "audio".into(),
            direction: "sent".into(),
            packets: a.packets,
            ..MediaSummary::default()
        });
    }
    out
}

/// A field of a session's media report, for `stream` matchers.
fn stream_field(r: &SessionReport, path: &str, ended_at: Option<SystemTime>) -> Option<String> {
    if let Some(rest) = path.strip_prefix("audio_sent.") {
        let a = r.audio_sent.as_ref()?;
        return match rest {
            "packets" => Some(a.packets.to_string()),
            "samples" => Some(a.samples.to_string()),
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("audio.") {
        let a = r.audio_received.as_ref()?;
        let c = &a.check;
        return match rest {
            "packets" => Some(a.packets.to_string()),
            "ssrc" => c.ssrc.map(|x| Ssrc(x).to_string()),
            "payload_type" => c.payload_type.map(|x| x.to_string()),
            "lost_packets" => Some(c.lost_packets.to_string()),
            "timestamp_step" => c.timestamp_step.map(|x| x.to_string()),
            "clock_hz" => c.estimated_clock_hz.map(|x| format!("{x:.0}")),
            "findings" => Some(
                c.findings
                    .iter()
                    .filter(|f| f.severity == StreamSeverity::Error)
                    .count()
                    .to_string(),
            ),
            "packets_after_bye" => {
                let end = ended_at? + BYE_GRACE;
                Some(
                    a.capture
                        .iter()
                        .filter(|p| p.time > end)
                        .count()
                        .to_string(),
                )
            }
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("sent.") {
        let s = r.sent.as_ref()?;
        return match rest {
            "frames" => Some(s.frames.to_string()),
            "packets" => Some(s.packets.to_string()),
            "key_frames" => Some(s.key_frames.to_string()),
            "damaged" => Some(s.damaged.values().sum::<u64>().to_string()),
            _ => None,
        };
    }
    let rx = r.received.as_ref()?;
    let v = &rx.validation;
    let f = |x: f64| format!("{x:.3}");
    Some(match path {
        "frames" => rx.frames.to_string(),
        "packets" => rx.packets.to_string(),
        "video_frames" => v.video_frames.to_string(),
        "key_frames" => v.key_frames.to_string(),
        "ssrc" => Ssrc(v.ssrc?).to_string(),
        "lost_packets" => v.lost_packets.to_string(),
        "loss_ratio" => f(v.loss_ratio),
        "jitter_ms" => f(v.jitter_ms),
        "frame_rate" => f(v.frame_rate?),
        "bitrate_kbps" => f(v.bitrate_bps? / 1000.0),
        "first_key_frame_ms" => v.time_to_first_key_frame?.as_millis().to_string(),
        "psm_count" => v.psm_count.to_string(),
        "video_stream_type" => {
            let t = v
                .stream_types
                .iter()
                .find(|(id, _)| crate::proto::ps::is_video_stream_id(*id))?;
            format!("0x{:02x}", t.1)
        }
        "clock_hz" => f(v.estimated_clock_hz?),
        "findings" => v
            .findings
            .iter()
            .filter(|f| f.severity == StreamSeverity::Error)
            .count()
            .to_string(),
        "packets_after_bye" => {
            let end = ended_at? + BYE_GRACE;
            rx.capture
                .iter()
                .filter(|p| p.time > end)
                .count()
                .to_string()
        }
        _ => return None,
    })
}
