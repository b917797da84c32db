//! 语音广播: the platform notifies the device (MESSAGE, Notify/Broadcast with SourceID
//! and TargetID), the device answers 200 and then a Broadcast Response MESSAGE
//! (Result OK), and the device — the UAC here — INVITEs the voice source for audio
//! (`s=Play`, `m=audio ... 8 96`, recvonly). The platform answers that INVITE as a
//! [`MediaUas`] (sendonly audio), the device runs it as a [`MediaUac`]; the platform
//! ends it with BYE (语音广播 17).
//!
//! [`BroadcastSource`] is the platform's part, [`BroadcastTarget`] the device's.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::dialog::{respond, ClientTxns, SentResponses};
use super::finding::{self as rules, Finding};
use super::uac::{CallRequest, MediaUac, UacConfig};
use super::uas::{MediaUas, UasConfig};
use super::{SessionCommand, SessionEvent, Timers};
use crate::proto::gb28181::manscdp::{self, Body, Charset, ResultType};
use crate::proto::gb28181::message::{manscdp_message, RequestParams};
use crate::proto::sdp::Setup;
use crate::proto::sip::{self, SipMessage};
use crate::proto::{Now, Transmit, Transport};

/// What the broadcast flow reports.
#[derive(Debug, Clone, PartialEq)]
pub enum BroadcastEvent {
    /// Source: the notification was answered (`None`: no answer within 64*T1).
    NotifyAnswered { status: Option<u16> },
    /// Source: the device's Broadcast response arrived and was answered 200.
    Response {
        result: Option<ResultType>,
        findings: Vec<Finding>,
    },
    /// Target: a Broadcast notification arrived and was answered 200; the Response
    /// is on its way. Call [`BroadcastTarget::start_audio`] with a receive port.
    Notified {
        source_id: Option<String>,
        target_id: Option<String>,
        findings: Vec<Finding>,
    },
    /// Target: the Response MESSAGE was answered (`None`: no answer).
    ResponseAnswered { status: Option<u16> },
    /// An event of the audio session.
    Session(Box<SessionEvent>),
    /// The flow cannot go on.
    Failed { findings: Vec<Finding> },
}

/// A non-dialog MESSAGE (the notify and the response are outside any dialog).
#[allow(clippy::too_many_arguments)]
fn message(
    rng: &mut StdRng,
    from_id: &str,
    to_id: &str,
    domain: &str,
    local: SocketAddr,
    remote: SocketAddr,
    transport: Transport,
    user_agent: &str,
    body: Vec<u8>,
) -> SipMessage {
    let call_id = sip::new_call_id(rng);
    let from_tag = sip::new_tag(rng);
    let branch = sip::new_branch(rng);
    manscdp_message(
        &RequestParams {
            method: "MESSAGE",
            from_id,
            to_id,
            domain,
            local,
            remote,
            transport,
            call_id: &call_id,
            from_tag: &from_tag,
            to_tag: None,
            cseq: rng.gen_range(1..10_000),
            branch: &branch,
            user_agent,
        },
        body,
    )
}

/// The platform's side of a broadcast.
#[derive(Debug, Clone)]
pub struct BroadcastSourceConfig {
    /// The platform's ID (From user of the notification).
    pub platform_id: String,
    pub domain: String,
    /// SourceID: the voice input the device will INVITE.
    pub source_id: String,
    /// TargetID: the device's voice output channel.
    pub target_id: String,
    /// The device (To user and Request-URI of the notification).
    pub device_id: String,
    pub local: SocketAddr,
    pub device: SocketAddr,
    pub transport: Transport,
    pub user_agent: String,
    pub charset: Charset,
    pub timers: Timers,
    pub seed: u64,
    /// How the audio INVITE is answered (`local_id` is the voice source).
    pub uas: UasConfig,
}

impl BroadcastSourceConfig {
    /// A platform at `local` broadcasting from `source_id` to the device's
    /// `target_id` output; the audio answer announces `media_ip`.
    pub fn new(
        platform_id: &str,
        source_id: &str,
        device_id: &str,
        target_id: &str,
        local: SocketAddr,
        device: SocketAddr,
        media_ip: IpAddr,
    ) -> Self {
        let mut uas = UasConfig::new(source_id, local, media_ip);
        uas.user_agent = "camcert".into();
        uas.media_params = None;
        BroadcastSourceConfig {
            platform_id: platform_id.into(),
            domain: platform_id.get(..10).unwrap_or(platform_id).into(),
            source_id: source_id.into(),
            target_id: target_id.into(),
            device_id: device_id.into(),
            local,
            device,
            transport: Transport::Udp,
            user_agent: "camcert".into(),
            charset: Charset::Utf8,
            timers: Timers::default(),
            seed: 1,
            uas,
        }
    }
}

#[derive(Debug, Clone)]
enum NotifyPurpose {
    Notify,
}

/// The platform's part of 语音广播.
pub struct BroadcastSource {
    cfg: BroadcastSourceConfig,
    rng: StdRng,
    sn: u64,
    response_ok: bool,
    /// The notification was refused or never answered, or the device said no.
    notify_failed: bool,
    session: Option<MediaUas>,
    txns: ClientTxns<NotifyPurpose>,
    sent: SentResponses,
    transmits: VecDeque<Transmit>,
    events: VecDeque<BroadcastEvent>,
}

impl BroadcastSource {
    pub fn new(cfg: BroadcastSourceConfig) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let txns = ClientTxns::new(cfg.transport, cfg.timers);
        BroadcastSource {
            cfg,
            rng,
            sn: 0,
            response_ok: false,
            notify_failed: false,
            session: None,
            txns,
            sent: SentResponses::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The audio session, once the device's INVITE arrived.
    pub fn session(&self) -> Option<&MediaUas> {
        self.session.as_ref()
    }

    /// Whether the device's Broadcast response said OK.
    pub fn response_ok(&self) -> bool {
        self.response_ok
    }

    pub fn config(&self) -> &BroadcastSourceConfig {
        &self.cfg
    }

    /// Whether `msg` is this broadcast's business: an answer to its notification,
    /// the device's audio INVITE to the voice source (before the session exists;
    /// Request-URI or To user is the SourceID), or a message of the audio session.
    /// The device's Broadcast Response MESSAGE is out of any dialog; its sender
    /// decides whether it belongs here.
    pub fn matches(&self, msg: &SipMessage) -> bool {
        if self.txns.owns_response(msg) {
            return true;
        }
        match &self.session {
            Some(s) if s.call_id().is_some() => s.matches(msg),
            _ => {
                let source = Some(self.cfg.source_id.as_str());
                let ruri = msg.uri().and_then(sip::SipUri::parse).and_then(|u| u.user);
                let to = msg
                    .headers
                    .get("To")
                    .and_then(sip::NameAddr::parse)
                    .and_then(|n| n.uri.user);
                msg.method() == Some("INVITE")
                    && (ruri.as_deref() == source || to.as_deref() == source)
            }
        }
    }

    /// The Call-ID of the audio session, once its INVITE arrived.
    pub fn call_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(MediaUas::call_id)
    }

    /// Hand a media command to the audio session.
    pub fn apply(&mut self, now: Now, cmd: SessionCommand) {
        if let Some(s) = &mut self.session {
            s.apply(now, cmd);
        }
    }

    /// Whether nothing is left to do: the audio session is over, or the
    /// notification failed before one began.
    pub fn is_finished(&self) -> bool {
        match &self.session {
            Some(s) => s.is_finished(),
            None => self.txns.is_empty() && self.events.is_empty() && self.notify_failed,
        }
    }

    /// Send the Broadcast notification (语音广播 1).
    pub fn start(&mut self, now: Now) {
        self.sn += 1;
        let body = manscdp::Message::broadcast(
            self.sn,
            self.cfg.source_id.clone(),
            self.cfg.target_id.clone(),
        )
        .encode(self.cfg.charset);
        let m = message(
            &mut self.rng,
            &self.cfg.platform_id,
            &self.cfg.device_id,
            &self.cfg.domain,
            self.cfg.local,
            self.cfg.device,
            self.cfg.transport,
            &self.cfg.user_agent,
            body,
        );
        self.txns.start(
            now,
            self.cfg.device,
            &m,
            NotifyPurpose::Notify,
            &mut self.transmits,
        );
    }

    /// Answer the device's audio INVITE with this side's sending port.
    pub fn accept(&mut self, now: Now, media_port: u16) -> Result<(), String> {
        self.session
            .as_mut()
            .ok_or("no audio INVITE yet")?
            .accept(now, media_port)
    }

    /// End the audio session (语音广播 17: the platform sends BYE).
    pub fn hangup(&mut self, now: Now) {
        if let Some(s) = &mut self.session {
            s.hangup(now);
        }
    }

    /// Feed a message from the device.
    pub fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if let Some(s) = &mut self.session {
            if s.matches(msg) {
                s.handle_message(now, from, msg);
                return;
            }
        }
        if msg.status().is_some() {
            if let Some((NotifyPurpose::Notify, code)) = self.txns.on_response(msg) {
                self.events
                    .push_back(BroadcastEvent::NotifyAnswered { status: Some(code) });
                if !(200..300).contains(&code) {
                    self.notify_failed = true;
                    self.events.push_back(BroadcastEvent::Failed {
                        findings: vec![rules::BROADCAST_FLOW
                            .finding(format!("Broadcast notification answered {code}"))],
                    });
                }
            }
            return;
        }
        match msg.method() {
            Some("INVITE") if self.session.is_none() => {
                let mut uas = MediaUas::new(self.cfg.uas.clone());
                uas.handle_message(now, from, msg);
                self.session = Some(uas);
            }
            Some("MESSAGE") => {
                if let Some(t) = self.sent.replay(msg) {
                    self.transmits.push_back(t);
                    return;
                }
                let decoded = manscdp::Message::decode(&msg.body);
                let code = if decoded.is_ok() { 200 } else { 400 };
                let r = respond(
                    msg,
                    code,
                    Some(&sip::new_tag(&mut self.rng)),
                    &self.cfg.user_agent,
                )
                .with_content_length();
                let t = Transmit {
                    to: from,
                    bytes: r.to_bytes(),
                };
                self.transmits.push_back(t.clone());
                self.sent.remember(msg, &t);
                let Ok(d) = decoded else { return };
                let Body::BroadcastResponse(resp) = &d.message.body else {
                    return;
                };
                let mut findings: Vec<Finding> = d.findings;
                self.response_ok = resp.result == Some(ResultType::Ok);
                if !self.response_ok {
                    self.notify_failed = true;
                    findings.push(
                        rules::BROADCAST_REFUSED
                            .finding(format!("Broadcast response Result {:?}", resp.result)),
                    );
                }
                self.events.push_back(BroadcastEvent::Response {
                    result: resp.result.clone(),
                    findings,
                });
            }
            _ => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Now) {
        for NotifyPurpose::Notify in self.txns.on_timeout(now, &mut self.transmits) {
            self.notify_failed = true;
            self.events
                .push_back(BroadcastEvent::NotifyAnswered { status: None });
            self.events.push_back(BroadcastEvent::Failed {
                findings: vec![rules::BROADCAST_FLOW.finding("no answer to the notification")],
            });
        }
        if let Some(s) = &mut self.session {
            if s.poll_timeout().is_some_and(|t| t <= now.mono) {
                s.handle_timeout(now);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txns.next_timeout(),
            self.session.as_ref().and_then(MediaUas::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        self.session.as_mut().and_then(MediaUas::poll_transmit)
    }

    pub fn poll_event(&mut self) -> Option<BroadcastEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.session
            .as_mut()
            .and_then(MediaUas::poll_event)
            .map(|e| BroadcastEvent::Session(Box::new(e)))
    }
}

/// The device's side of a broadcast.
#[derive(Debug, Clone)]
pub struct BroadcastTargetConfig {
    /// The device's ID (From of the response and the INVITE).
    pub device_id: String,
    /// The platform's ID (To of the response).
    pub platform_id: String,
    pub domain: String,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
    /// The address announced in the audio offer.
    pub media_ip: IpAddr,
    pub user_agent: String,
    /// The Result the device answers with.
    pub result: ResultType,
    pub charset: Charset,
    pub timers: Timers,
    pub seed: u64,
}

impl BroadcastTargetConfig {
    pub fn new(
        device_id: &str,
        platform_id: &str,
        local: SocketAddr,
        server: SocketAddr,
        media_ip: IpAddr,
    ) -> Self {
        BroadcastTargetConfig {
            device_id: device_id.into(),
            platform_id: platform_id.into(),
            domain: platform_id.get(..10).unwrap_or(platform_id).into(),
            local,
            server,
            transport: Transport::Udp,
            media_ip,
            user_agent: "camcert reference camera".into(),
            result: ResultType::Ok,
            charset: Charset::Gb2312,
            timers: Timers::default(),
            seed: 1,
        }
    }
}

impl BroadcastTargetConfig {
    /// The device's audio INVITE to the voice source `source_id` (语音广播 5),
    /// receiving on `port` (`tcp` as for [`CallRequest::live`]; port 0: the machine
    /// asks its driver for a port first, [`SessionEvent::Prepare`]). Call
    /// [`MediaUac::start`] to send it.
    pub fn audio_call(
        &self,
        source_id: &str,
        port: u16,
        tcp: Option<Setup>,
        seed: u64,
    ) -> MediaUac {
        let mut cfg = UacConfig::new(&self.device_id, self.local, self.server, self.media_ip);
        cfg.domain = self.domain.clone();
        cfg.transport = self.transport;
        cfg.user_agent = self.user_agent.clone();
        cfg.timers = self.timers;
        cfg.seed = seed;
        MediaUac::new(cfg, CallRequest::broadcast_audio(source_id, port, tcp))
    }
}

#[derive(Debug, Clone)]
enum ResponsePurpose {
    Response,
}

/// The device's part of 语音广播.
pub struct BroadcastTarget {
    cfg: BroadcastTargetConfig,
    rng: StdRng,
    source_id: Option<String>,
    response_answered: Option<u16>,
    audio: Option<(u16, Option<Setup>)>,
    session: Option<MediaUac>,
    txns: ClientTxns<ResponsePurpose>,
    sent: SentResponses,
    transmits: VecDeque<Transmit>,
    events: VecDeque<BroadcastEvent>,
}

impl BroadcastTarget {
    pub fn new(cfg: BroadcastTargetConfig) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let txns = ClientTxns::new(cfg.transport, cfg.timers);
        BroadcastTarget {
            cfg,
            rng,
            source_id: None,
            response_answered: None,
            audio: None,
            session: None,
            txns,
            sent: SentResponses::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The audio session, once the INVITE went out.
    pub fn session(&self) -> Option<&MediaUac> {
        self.session.as_ref()
    }

    /// Receive the broadcast audio on `port` (`tcp` as for [`CallRequest::live`]).
    /// The INVITE goes out once the platform answered the Broadcast response.
    pub fn start_audio(&mut self, now: Now, port: u16, tcp: Option<Setup>) {
        self.audio = Some((port, tcp));
        self.maybe_invite(now);
    }

    /// End the audio session from the device's side.
    pub fn hangup(&mut self, now: Now) {
        if let Some(s) = &mut self.session {
            s.hangup(now);
        }
    }

    fn maybe_invite(&mut self, now: Now) {
        let ready = self
            .response_answered
            .is_some_and(|c| (200..300).contains(&c));
        let (Some((port, tcp)), Some(source), true, None) =
            (self.audio, self.source_id.clone(), ready, &self.session)
        else {
            return;
        };
        let seed = self.rng.gen();
        let mut uac = self.cfg.audio_call(&source, port, tcp, seed);
        uac.start(now);
        self.session = Some(uac);
    }

    /// Feed a message from the platform.
    pub fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if let Some(s) = &mut self.session {
            if s.matches(msg) {
                s.handle_message(now, from, msg);
                return;
            }
        }
        if msg.status().is_some() {
            if let Some((ResponsePurpose::Response, code)) = self.txns.on_response(msg) {
                self.response_answered = Some(code);
                self.events
                    .push_back(BroadcastEvent::ResponseAnswered { status: Some(code) });
                if (200..300).contains(&code) {
                    self.maybe_invite(now);
                } else {
                    self.events.push_back(BroadcastEvent::Failed {
                        findings: vec![rules::BROADCAST_FLOW
                            .finding(format!("Broadcast response answered {code}"))],
                    });
                }
            }
            return;
        }
        if msg.method() != Some("MESSAGE") {
            return;
        }
        if let Some(t) = self.sent.replay(msg) {
            self.transmits.push_back(t);
            return;
        }
        let decoded = manscdp::Message::decode(&msg.body);
        let notify = match &decoded {
            Ok(d) => matches!(d.message.body, Body::BroadcastNotify(_)),
            Err(_) => false,
        };
        if !notify {
            return; // not a broadcast: someone else's business
        }
        // 语音广播 2: 200 OK first.
        let r = respond(
            msg,
            200,
            Some(&sip::new_tag(&mut self.rng)),
            &self.cfg.user_agent,
        )
        .with_content_length();
        let t = Transmit {
            to: from,
            bytes: r.to_bytes(),
        };
        self.transmits.push_back(t.clone());
        self.sent.remember(msg, &t);
        let Ok(d) = decoded else { return };
        let Body::BroadcastNotify(n) = &d.message.body else {
            return;
        };
        self.source_id = n.source_id.clone();
        self.events.push_back(BroadcastEvent::Notified {
            source_id: n.source_id.clone(),
            target_id: n.target_id.clone(),
            findings: d.findings.clone(),
        });
        // 语音广播 3: the Response, Result OK.
        let body = d
            .message
            .reply_result(self.cfg.result.clone())
            .encode(self.cfg.charset);
        let m = message(
            &mut self.rng,
            &self.cfg.device_id,
            &self.cfg.platform_id,
            &self.cfg.domain,
            self.cfg.local,
            self.cfg.server,
            self.cfg.transport,
            &self.cfg.user_agent,
            body,
        );
        self.txns.start(
            now,
            self.cfg.server,
            &m,
            ResponsePurpose::Response,
            &mut self.transmits,
        );
    }

    pub fn handle_timeout(&mut self, now: Now) {
        for ResponsePurpose::Response in self.txns.on_timeout(now, &mut self.transmits) {
            self.events
                .push_back(BroadcastEvent::ResponseAnswered { status: None });
            self.events.push_back(BroadcastEvent::Failed {
                findings: vec![rules::BROADCAST_FLOW.finding("no answer to the Broadcast response")],
            });
        }
        if let Some(s) = &mut self.session {
            if s.poll_timeout().is_some_and(|t| t <= now.mono) {
                s.handle_timeout(now);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txns.next_timeout(),
            self.session.as_ref().and_then(MediaUac::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        self.session.as_mut().and_then(MediaUac::poll_transmit)
    }

    pub fn poll_event(&mut self) -> Option<BroadcastEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.session
            .as_mut()
            .and_then(MediaUac::poll_event)
            .map(|e| BroadcastEvent::Session(Box::new(e)))
    }
}
