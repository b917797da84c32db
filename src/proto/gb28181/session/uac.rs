//! The calling side of a media session: the platform for 实时预览, 录像回放, 文件下载 and
//! 语音对讲, the device for the audio INVITE of 语音广播. See the module docs of
//! [`super`] for how to drive it.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::dialog::{branch_of, respond, tag_of, uri_of, ClientTxns, Dialog, SentResponses};
use super::finding::{self as rules, Finding};
use super::mansrtsp::{self, Range};
use super::negotiate::{self, Negotiated, Side};
use super::{EndReason, SessionCommand, SessionEvent, Timers};
use crate::proto::gb28181::manscdp::{self, Body};
use crate::proto::gb28181::message::{build_request, with_body, RequestParams};
use crate::proto::sdp::{
    AudioParams, Direction, GbMedia, GbSession, MediaParams, Param, Rtpmap, SessionKind, Setup,
    Ssrc, Timing,
};
use crate::proto::sip::{self, SipMessage};
use crate::proto::{Now, Transmit, Transport};

/// What the calling side needs.
#[derive(Debug, Clone)]
pub struct UacConfig {
    /// This side's 20-digit ID (From user, `o=` user, Subject receiver).
    pub local_id: String,
    /// SIP domain of From/To (the first 10 digits of `local_id` by default).
    pub domain: String,
    /// This side's SIP address (Via, Contact).
    pub local: SocketAddr,
    /// The peer's SIP address (where the INVITE goes).
    pub remote: SocketAddr,
    pub transport: Transport,
    /// The address announced in `c=`.
    pub media_ip: IpAddr,
    pub user_agent: String,
    pub timers: Timers,
    /// Send BYE as soon as a MediaStatus 121 arrives (文件下载 15: "媒体流接收者收到
    /// 消息后回复200 OK 响应，进行链路断开过程").
    pub hangup_on_end_of_file: bool,
    pub seed: u64,
}

impl UacConfig {
    /// UDP signalling, RFC 3261 timers, BYE after MediaStatus 121.
    pub fn new(local_id: &str, local: SocketAddr, remote: SocketAddr, media_ip: IpAddr) -> Self {
        UacConfig {
            local_id: local_id.to_string(),
            domain: local_id.get(..10).unwrap_or(local_id).to_string(),
            local,
            remote,
            transport: Transport::Udp,
            media_ip,
            user_agent: "camcert".into(),
            timers: Timers::default(),
            hangup_on_end_of_file: true,
            seed: 1,
        }
    }
}

/// What to ask for: the INVITE's target and the offer's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// `s=`.
    pub kind: SessionKind,
    /// The channel (or voice source) asked for: Request-URI and To user.
    pub target_id: String,
    /// The offered media, this side's port in each.
    pub media: Vec<GbMedia>,
    /// `t=`.
    pub timing: Timing,
    /// `u=`.
    pub uri: Option<String>,
    /// `y=`; `None`: generated from this side's domain and a stream number, with the
    /// history digit `s=` needs.
    pub ssrc: Option<Ssrc>,
    /// `f=`.
    pub media_params: Option<MediaParams>,
    /// `i=`.
    pub info: Option<String>,
    /// `Subject:`; `None`: `<target>:<y>,<local ID>:0`.
    pub subject: Option<String>,
}

impl CallRequest {
    fn video(kind: SessionKind, target: &str, port: u16, tcp: Option<Setup>) -> Self {
        CallRequest {
            kind,
            target_id: target.to_string(),
            media: vec![GbMedia::video_offer(port, tcp, Direction::RecvOnly)],
            timing: Timing::LIVE,
            uri: None,
            ssrc: None,
            media_params: None,
            info: None,
            subject: None,
        }
    }

    /// 实时预览: `s=Play`, video 96 98 97 recvonly on `port`. `tcp`: `None` UDP,
    /// `Some(Passive)` TCP被动 (this side listens), `Some(Active)` TCP主动.
    pub fn live(target: &str, port: u16, tcp: Option<Setup>) -> Self {
        Self::video(SessionKind::Play, target, port, tcp)
    }

    /// 录像回放: `s=Playback`, `u=<target>:0`, `t=<start> <stop>` (Unix seconds).
    pub fn playback(target: &str, port: u16, tcp: Option<Setup>, start: u64, stop: u64) -> Self {
        CallRequest {
            uri: Some(format!("{target}:0")),
            timing: negotiate::timing_for(Some((start, stop))),
            ..Self::video(SessionKind::Playback, target, port, tcp)
        }
    }

    /// 文件下载: `s=Download`, `u=`, `t=`, and `a=downloadspeed` when given.
    pub fn download(
        target: &str,
        port: u16,
        tcp: Option<Setup>,
        start: u64,
        stop: u64,
        speed: Option<u32>,
    ) -> Self {
        let mut r = CallRequest {
            uri: Some(format!("{target}:0")),
            timing: negotiate::timing_for(Some((start, stop))),
            ..Self::video(SessionKind::Download, target, port, tcp)
        };
        r.media[0].download_speed = speed;
        r
    }

    /// `f=` with no video fields and G.711 audio (`v/////a/1/8/1`): the strict form of
    /// the 语音对讲 example's `f=v/a/1/8/1`.
    fn g711_params() -> MediaParams {
        let mut p = MediaParams::video(0, 0, 0, 0, 0);
        if let Some(v) = &mut p.video {
            v.codec = Param::Empty;
            v.resolution = Param::Empty;
            v.frame_rate = Param::Empty;
            v.rate_type = Param::Empty;
            v.bitrate = Param::Empty;
        }
        p.audio = Some(AudioParams {
            codec: Param::Num(1),
            bitrate: Param::Num(8),
            sample_rate: Param::Num(1),
            extra: Vec::new(),
        });
        p
    }

    /// 语音对讲: `s=Talk`, audio `8 PCMA/8000` sendrecv.
    pub fn talk(target: &str, port: u16, tcp: Option<Setup>) -> Self {
        CallRequest {
            kind: SessionKind::Talk,
            target_id: target.to_string(),
            media: vec![GbMedia::audio_pcma(port, tcp, Direction::SendRecv)],
            timing: Timing::LIVE,
            uri: None,
            ssrc: None,
            media_params: Some(Self::g711_params()),
            info: None,
            subject: None,
        }
    }

    /// 语音广播 5: the device asks the voice source for audio: `s=Play`, audio
    /// `8 96` (PCMA, PS) recvonly, as in the spec's example.
    pub fn broadcast_audio(source_id: &str, port: u16, tcp: Option<Setup>) -> Self {
        let mut m = GbMedia::audio_pcma(port, tcp, Direction::RecvOnly);
        m.formats.push("96".into());
        m.rtpmaps.push(Rtpmap::ps(96));
        CallRequest {
            kind: SessionKind::Play,
            target_id: source_id.to_string(),
            media: vec![m],
            timing: Timing::LIVE,
            uri: None,
            ssrc: None,
            media_params: Some(Self::g711_params()),
            info: Some("Broadcast Session".into()),
            subject: None,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    /// INVITE sent, no final answer yet.
    Calling {
        retransmit_at: Option<Instant>,
        interval: Duration,
        give_up_at: Instant,
        /// `hangup` was called: CANCEL sent; a 2xx still gets ACK and BYE.
        cancelled: bool,
    },
    Confirmed,
    /// Over; `ack` answers a retransmitted final response.
    Done {
        ack: Option<Transmit>,
    },
}

#[derive(Debug, Clone)]
enum Purpose {
    Bye,
    Cancel,
    Info(mansrtsp::Request),
}

/// The calling side of one media session.
pub struct MediaUac {
    cfg: UacConfig,
    request: CallRequest,
    state: State,
    dialog: Dialog,
    invite: Option<SipMessage>,
    invite_branch: String,
    invite_cseq: u32,
    invite_bytes: Vec<u8>,
    offer: Option<GbSession>,
    ack: Option<Transmit>,
    negotiated: Option<Box<Negotiated>>,
    rtsp_cseq: u32,
    /// `start` found a receiving media without a port and asked for one.
    awaiting_port: Option<usize>,
    rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
    txns: ClientTxns<Purpose>,
    sent: SentResponses,
}

impl MediaUac {
    pub fn new(cfg: UacConfig, request: CallRequest) -> MediaUac {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let txns = ClientTxns::new(cfg.transport, cfg.timers);
        let dialog = Dialog {
            call_id: sip::new_call_id(&mut rng),
            local_uri: format!("<sip:{}@{}>", cfg.local_id, cfg.domain),
            local_tag: sip::new_tag(&mut rng),
            remote_uri: format!("<sip:{}@{}>", request.target_id, cfg.domain),
            remote_tag: None,
            remote_target: format!(
                "sip:{}@{}",
                request.target_id,
                crate::proto::gb28181::register::host_port(cfg.remote)
            ),
            local_cseq: rng.gen_range(1..10_000),
            remote_cseq: None,
            peer: cfg.remote,
            local: cfg.local,
            transport: cfg.transport,
            local_id: cfg.local_id.clone(),
            user_agent: cfg.user_agent.clone(),
        };
        MediaUac {
            cfg,
            request,
            state: State::Idle,
            dialog,
            invite: None,
            invite_branch: String::new(),
            invite_cseq: 0,
            invite_bytes: Vec::new(),
            offer: None,
            ack: None,
            negotiated: None,
            rtsp_cseq: 0,
            awaiting_port: None,
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            txns,
            sent: SentResponses::default(),
        }
    }

    pub fn config(&self) -> &UacConfig {
        &self.cfg
    }

    /// The Call-ID of the session.
    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// Whether `msg` belongs to this session (its Call-ID).
    pub fn matches(&self, msg: &SipMessage) -> bool {
        msg.call_id() == Some(self.dialog.call_id.as_str())
    }

    /// The offer sent, once started.
    pub fn offer(&self) -> Option<&GbSession> {
        self.offer.as_ref()
    }

    /// What was agreed, once the 2xx arrived.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_deref()
    }

    pub fn is_confirmed(&self) -> bool {
        matches!(self.state, State::Confirmed)
    }

    /// Whether the session is over and nothing is outstanding.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done { .. }) && self.txns.is_empty()
    }

    fn build_offer(&mut self) -> GbSession {
        let r = &self.request;
        let mut s = GbSession::new(r.kind, &self.cfg.local_id, self.cfg.media_ip);
        s.info = r.info.clone();
        s.uri = r.uri.clone();
        s.timing = r.timing;
        s.media = r.media.clone();
        s.media_params = r.media_params.clone();
        // 附录F: y= is <0 live | 1 history><5-digit domain><4-digit stream>.
        let stream = self.rng.gen_range(1..10_000);
        s.ssrc =
            Some(r.ssrc.unwrap_or_else(|| {
                Ssrc::for_caller(r.kind.is_history(), &self.cfg.local_id, stream)
            }));
        s
    }

    /// Send the INVITE with the offer. When the offer's receiving media has port 0,
    /// ask the driver for one first ([`SessionEvent::Prepare`]); the INVITE goes out
    /// on [`SessionCommand::Accept`].
    pub fn start(&mut self, now: Now) {
        if !matches!(self.state, State::Idle) || self.awaiting_port.is_some() {
            return;
        }
        let unported = self.request.media.iter().position(|m| {
            m.port == 0
                && matches!(
                    m.direction.unwrap_or(Direction::SendRecv),
                    Direction::RecvOnly | Direction::SendRecv
                )
        });
        if let Some(i) = unported {
            self.awaiting_port = Some(i);
            self.events.push_back(SessionEvent::Prepare {
                media: Box::new(self.request.media[i].clone()),
            });
            return;
        }
        let offer = self.build_offer();
        self.invite_branch = sip::new_branch(&mut self.rng);
        self.dialog.local_cseq += 1;
        self.invite_cseq = self.dialog.local_cseq;
        let mut m = build_request(&RequestParams {
            method: "INVITE",
            from_id: &self.cfg.local_id,
            to_id: &self.request.target_id,
            domain: &self.cfg.domain,
            local: self.cfg.local,
            remote: self.cfg.remote,
            transport: self.cfg.transport,
            call_id: &self.dialog.call_id,
            from_tag: &self.dialog.local_tag,
            to_tag: None,
            cseq: self.invite_cseq,
            branch: &self.invite_branch,
            user_agent: &self.cfg.user_agent,
        });
        m.headers.push("Contact", self.dialog.contact());
        let subject = self.request.subject.clone().unwrap_or_else(|| {
            format!(
                "{}:{},{}:0",
                self.request.target_id,
                offer.ssrc.unwrap_or(Ssrc(0)),
                self.cfg.local_id
            )
        });
        m.headers.push("Subject", subject);
        let m = with_body(m, "application/sdp", offer.encode());
        self.invite_bytes = m.to_bytes();
        self.transmits.push_back(Transmit {
            to: self.cfg.remote,
            bytes: self.invite_bytes.clone(),
        });
        self.invite = Some(m);
        self.offer = Some(offer);
        let t = self.cfg.timers;
        self.state = State::Calling {
            retransmit_at: (self.cfg.transport == Transport::Udp).then(|| now.mono + t.t1),
            interval: t.t1,
            give_up_at: now.mono + t.t1 * 64,
            cancelled: false,
        };
    }

    /// Feed a message from the peer; `from` is where it came from.
    pub fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if !self.matches(msg) {
            return;
        }
        if let Some(code) = msg.status() {
            let is_invite = msg.cseq().is_some_and(|c| c.method == "INVITE")
                && branch_of(msg).as_deref() == Some(self.invite_branch.as_str());
            if is_invite {
                self.on_invite_response(now, from, msg, code);
            } else {
                self.on_response(now, msg);
            }
            return;
        }
        let Some(method) = msg.method().map(str::to_string) else {
            return;
        };
        if method == "ACK" {
            return;
        }
        if let Some(t) = self.sent.replay(msg) {
            self.transmits.push_back(t);
            return;
        }
        match method.as_str() {
            "BYE" => {
                if self.in_dialog(from, msg) {
                    self.answer(from, msg, 200);
                    if !matches!(self.state, State::Done { .. }) {
                        self.state = State::Done {
                            ack: self.ack.clone(),
                        };
                        self.events.push_back(SessionEvent::Ended {
                            reason: EndReason::ByeReceived,
                            findings: Vec::new(),
                        });
                    }
                }
            }
            "MESSAGE" => self.on_message(now, from, msg),
            _ => {
                let mut r = respond(msg, 405, Some(&self.dialog.local_tag), &self.cfg.user_agent);
                r.headers.push("Allow", "ACK, BYE, MESSAGE");
                let r = r.with_content_length();
                let t = self.push(from, &r);
                self.sent.remember(msg, &t);
            }
        }
    }

    fn push(&mut self, to: SocketAddr, m: &SipMessage) -> Transmit {
        let t = Transmit {
            to,
            bytes: m.to_bytes(),
        };
        self.transmits.push_back(t.clone());
        t
    }

    fn answer(&mut self, from: SocketAddr, req: &SipMessage, code: u16) {
        let r = respond(
            req,
            code,
            Some(&self.dialog.local_tag),
            &self.cfg.user_agent,
        )
        .with_content_length();
        let t = self.push(from, &r);
        self.sent.remember(req, &t);
    }

    fn in_dialog(&mut self, from: SocketAddr, msg: &SipMessage) -> bool {
        let established = self.dialog.remote_tag.is_some();
        if !established || !self.dialog.matches_request(msg) {
            self.answer(from, msg, 481);
            self.events
                .push_back(SessionEvent::Finding(rules::DIALOG_MISMATCH.finding(
                    format!(
                        "{} matches no established dialog (Call-ID, From tag, To tag)",
                        msg.summary()
                    ),
                )));
            return false;
        }
        let seq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        if self.dialog.remote_cseq.is_some_and(|r| seq < r) {
            self.answer(from, msg, 500);
            self.events
                .push_back(SessionEvent::Finding(rules::DIALOG_MISMATCH.finding(
                    format!("CSeq {seq} is lower than the previous request's"),
                )));
            return false;
        }
        self.dialog.remote_cseq = Some(seq);
        true
    }

    /// ACK for a non-2xx final response (§17.1.1.3): same branch and Request-URI, To
    /// from the response.
    fn non_2xx_ack(&self, resp: &SipMessage) -> Option<Transmit> {
        let invite = self.invite.as_ref()?;
        let mut ack = SipMessage::request("ACK", invite.uri().unwrap_or_default().to_string());
        for h in ["Via", "From"] {
            if let Some(v) = invite.headers.get(h) {
                ack.headers.push(h, v);
            }
        }
        ack.headers
            .push("To", resp.headers.get("To").unwrap_or_default());
        ack.headers.push("Call-ID", &self.dialog.call_id);
        ack.headers
            .push("CSeq", format!("{} ACK", self.invite_cseq));
        ack.headers.push("Max-Forwards", "70");
        let ack = ack.with_content_length();
        Some(Transmit {
            to: self.cfg.remote,
            bytes: ack.to_bytes(),
        })
    }

    fn on_invite_response(&mut self, now: Now, from: SocketAddr, msg: &SipMessage, code: u16) {
        let State::Calling { cancelled, .. } = self.state else {
            // A retransmitted final response: acknowledge it again.
            if code >= 200 {
                if let State::Done { ack: Some(a) } = &self.state {
                    self.transmits.push_back(a.clone());
                } else if let (State::Confirmed, Some(a)) = (&self.state, &self.ack) {
                    self.transmits.push_back(a.clone());
                }
            }
            return;
        };
        match code {
            100..=199 => {
                if let State::Calling { retransmit_at, .. } = &mut self.state {
                    // §17.1.1.2: a provisional response stops the retransmissions.
                    *retransmit_at = None;
                }
                self.events
                    .push_back(SessionEvent::Provisional { status: code });
            }
            200..=299 => self.on_2xx(now, from, msg, cancelled),
            _ => {
                let ack = self.non_2xx_ack(msg);
                if let Some(a) = &ack {
                    self.transmits.push_back(a.clone());
                }
                self.state = State::Done { ack };
                if !cancelled {
                    self.events.push_back(SessionEvent::Ended {
                        reason: EndReason::Rejected(code),
                        findings: Vec::new(),
                    });
                }
            }
        }
    }

    fn on_2xx(&mut self, now: Now, from: SocketAddr, msg: &SipMessage, cancelled: bool) {
        let mut findings: Vec<Finding> = Vec::new();
        self.dialog.remote_tag = tag_of(msg.headers.get("To"));
        if self.dialog.remote_tag.is_none() {
            findings
                .push(rules::DIALOG_MISMATCH.finding("the 2xx has no To tag (RFC 3261 §8.2.6.2)"));
        }
        match msg.headers.get("Contact") {
            Some(c) => self.dialog.remote_target = uri_of(c),
            None => findings.push(rules::CONTACT_MISSING.finding("2xx to INVITE without Contact")),
        }
        // §13.2.2.4: the ACK for a 2xx is a new transaction with the INVITE's CSeq.
        let branch = sip::new_branch(&mut self.rng);
        let ack = self
            .dialog
            .request("ACK", &branch, Some(self.invite_cseq))
            .with_content_length();
        let ack = Transmit {
            to: self.dialog.peer,
            bytes: ack.to_bytes(),
        };
        self.transmits.push_back(ack.clone());
        self.ack = Some(ack.clone());
        if cancelled {
            // The CANCEL crossed the 2xx: the session exists and is ended at once.
            self.send_bye(now);
            self.state = State::Done { ack: Some(ack) };
            return;
        }
        let offer = self.offer.clone().unwrap_or_else(|| self.build_offer());
        let ct_ok = msg
            .headers
            .get("Content-Type")
            .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
        let answer = if msg.body.iter().all(u8::is_ascii_whitespace) {
            findings.push(rules::MEDIA_REFUSED.finding("2xx to INVITE without an SDP answer"));
            None
        } else {
            if !ct_ok {
                findings.push(rules::CONTENT_TYPE.finding(format!(
                    "answer with Content-Type {:?}",
                    msg.headers.get("Content-Type").unwrap_or("(none)")
                )));
            }
            match GbSession::parse(&msg.body) {
                Ok((a, f)) => {
                    findings.extend(f);
                    Some(a)
                }
                Err(e) => {
                    findings.push(rules::MEDIA_REFUSED.finding(e.to_string()));
                    None
                }
            }
        };
        let usable = answer.map(|a| {
            let (n, f) = negotiate::conclude(&offer, &a, Side::Offerer, from.ip());
            findings.extend(f);
            n
        });
        match usable.filter(|n| !negotiate::unusable(n)) {
            Some(n) => {
                let n = Box::new(n);
                self.negotiated = Some(n.clone());
                self.state = State::Confirmed;
                self.events.push_back(SessionEvent::Started {
                    negotiated: n,
                    findings,
                });
            }
            None => {
                // RFC 3261 §13.2.2.4 / RFC 3264: an unusable answer is still
                // acknowledged; the session is then ended with BYE.
                self.send_bye(now);
                self.state = State::Done { ack: Some(ack) };
                self.events.push_back(SessionEvent::Ended {
                    reason: EndReason::AnswerUnusable,
                    findings,
                });
            }
        }
    }

    fn on_response(&mut self, _now: Now, msg: &SipMessage) {
        let Some((purpose, code)) = self.txns.on_response(msg) else {
            return;
        };
        match purpose {
            Purpose::Cancel => {}
            Purpose::Bye => {
                let findings = if (200..300).contains(&code) {
                    Vec::new()
                } else {
                    vec![rules::BYE_REJECTED.finding(format!("BYE answered {code}"))]
                };
                self.events.push_back(SessionEvent::ByeAnswered {
                    status: Some(code),
                    findings,
                });
            }
            Purpose::Info(request) => {
                let mut findings = Vec::new();
                if !(200..300).contains(&code) {
                    findings.push(
                        rules::INFO_FAILED.finding(format!("{} answered {code}", request.method)),
                    );
                }
                let response = if msg.body.iter().all(u8::is_ascii_whitespace) {
                    None
                } else {
                    match mansrtsp::Response::parse(&msg.body) {
                        Ok((r, f)) => {
                            findings.extend(f);
                            if r.cseq != request.cseq {
                                findings.push(rules::RTSP_CSEQ_ECHO.finding(format!(
                                    "request CSeq {:?}, answer CSeq {:?}",
                                    request.cseq, r.cseq
                                )));
                            }
                            Some(r)
                        }
                        Err(e) => {
                            findings.push(
                                rules::INFO_FAILED
                                    .finding(format!("unreadable MANSRTSP answer: {e}")),
                            );
                            None
                        }
                    }
                };
                self.events.push_back(SessionEvent::ControlAnswered {
                    request,
                    status: Some(code),
                    response,
                    findings,
                });
            }
        }
    }

    fn on_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if !self.in_dialog(from, msg) {
            return;
        }
        let mut findings: Vec<Finding> = Vec::new();
        let decoded = match manscdp::Message::decode(&msg.body) {
            Ok(d) => d,
            Err(e) => {
                self.answer(from, msg, 400);
                self.events.push_back(SessionEvent::Finding(
                    rules::MEDIA_STATUS_BODY
                        .finding(format!("unreadable MANSCDP body in the session: {e}")),
                ));
                return;
            }
        };
        findings.extend(decoded.findings);
        let Body::MediaStatus(ms) = &decoded.message.body else {
            self.answer(from, msg, 200);
            findings.push(rules::MEDIA_STATUS_BODY.finding(format!(
                "in-dialog MESSAGE with CmdType {:?}, not MediaStatus",
                decoded.message.cmd_type.as_ref().map(|c| c.as_str())
            )));
            for f in findings {
                self.events.push_back(SessionEvent::Finding(f));
            }
            return;
        };
        let notify_type = ms.notify_type;
        if notify_type != Some(121) {
            findings.push(rules::MEDIA_STATUS_TYPE.finding(format!(
                "NotifyType {notify_type:?}; 121 means the file ended"
            )));
        }
        let live = self
            .negotiated
            .as_ref()
            .is_some_and(|n| !n.kind.is_history());
        if live {
            findings.push(rules::MEDIA_STATUS_LIVE.finding("MediaStatus in a live session"));
        }
        self.answer(from, msg, 200);
        self.events.push_back(SessionEvent::MediaStatus {
            notify_type,
            findings,
        });
        if notify_type == Some(121) && self.cfg.hangup_on_end_of_file {
            self.end(now, EndReason::EndOfFile);
        }
    }

    fn send_bye(&mut self, now: Now) {
        let branch = sip::new_branch(&mut self.rng);
        let bye = self
            .dialog
            .request("BYE", &branch, None)
            .with_content_length();
        self.txns.start(
            now,
            self.dialog.peer,
            &bye,
            Purpose::Bye,
            &mut self.transmits,
        );
    }

    fn end(&mut self, now: Now, reason: EndReason) {
        match &mut self.state {
            State::Calling { cancelled, .. } => {
                if *cancelled {
                    return;
                }
                *cancelled = true;
                // §9.1: CANCEL copies the INVITE's Request-URI, Via, From, To, Call-ID
                // and CSeq number.
                if let Some(invite) = &self.invite {
                    let mut c = SipMessage::request("CANCEL", invite.uri().unwrap_or_default());
                    for h in ["Via", "From", "To", "Call-ID"] {
                        if let Some(v) = invite.headers.get(h) {
                            c.headers.push(h, v);
                        }
                    }
                    c.headers
                        .push("CSeq", format!("{} CANCEL", self.invite_cseq));
                    c.headers.push("Max-Forwards", "70");
                    let c = c.with_content_length();
                    self.txns.start(
                        now,
                        self.cfg.remote,
                        &c,
                        Purpose::Cancel,
                        &mut self.transmits,
                    );
                }
                self.events.push_back(SessionEvent::Ended {
                    reason: EndReason::Cancelled,
                    findings: Vec::new(),
                });
            }
            State::Confirmed => {
                self.send_bye(now);
                self.state = State::Done {
                    ack: self.ack.clone(),
                };
                self.events.push_back(SessionEvent::Ended {
                    reason,
                    findings: Vec::new(),
                });
            }
            State::Idle | State::Done { .. } => {}
        }
    }

    /// Carry out what the media side of the driver says.
    pub fn apply(&mut self, now: Now, cmd: SessionCommand) {
        match cmd {
            SessionCommand::Accept(port) => {
                if let Some(i) = self.awaiting_port.take() {
                    self.request.media[i].port = port;
                    self.start(now);
                }
            }
            SessionCommand::Refuse => {
                if self.awaiting_port.take().is_some() {
                    self.state = State::Done { ack: None };
                    self.events.push_back(SessionEvent::Ended {
                        reason: EndReason::NoMedia,
                        findings: Vec::new(),
                    });
                } else {
                    self.hangup(now);
                }
            }
            SessionCommand::HangUp => self.hangup(now),
            SessionCommand::MediaFailed => self.media_timeout(now),
            SessionCommand::FileEnded => {}
        }
    }

    /// End the session from this side (SIP服务侧断流): BYE once answered, CANCEL before.
    pub fn hangup(&mut self, now: Now) {
        self.end(now, EndReason::ByeSent);
    }

    /// The driver saw the media stop (receiver timeout): end with BYE.
    pub fn media_timeout(&mut self, now: Now) {
        self.end(now, EndReason::MediaTimeout);
    }

    /// Send a MANSRTSP request in an INFO; its CSeq is set here. Returns the request
    /// sent, or `None` when the session is not established.
    pub fn control(
        &mut self,
        now: Now,
        mut request: mansrtsp::Request,
    ) -> Option<mansrtsp::Request> {
        if !matches!(self.state, State::Confirmed) {
            return None;
        }
        self.rtsp_cseq += 1;
        request.cseq = Some(self.rtsp_cseq);
        let branch = sip::new_branch(&mut self.rng);
        let info = self.dialog.request("INFO", &branch, None);
        let info = with_body(info, mansrtsp::CONTENT_TYPE, request.to_bytes());
        self.txns.start(
            now,
            self.dialog.peer,
            &info,
            Purpose::Info(request.clone()),
            &mut self.transmits,
        );
        Some(request)
    }

    /// `PLAY` with optional Scale and Range (resume: `Range::RESUME`; seek:
    /// `Range::from_seconds`).
    pub fn play(
        &mut self,
        now: Now,
        scale: Option<f64>,
        range: Option<Range>,
    ) -> Option<mansrtsp::Request> {
        self.control(now, mansrtsp::Request::play(0, scale, range))
    }

    /// `PAUSE` with `PauseTime: now`.
    pub fn pause(&mut self, now: Now) -> Option<mansrtsp::Request> {
        self.control(now, mansrtsp::Request::pause(0))
    }

    /// `TEARDOWN`.
    pub fn teardown(&mut self, now: Now) -> Option<mansrtsp::Request> {
        self.control(now, mansrtsp::Request::teardown(0))
    }

    /// Carry out a named action: `bye`, `play`, `pause`, `teardown`, `scale` (with
    /// `value`).
    pub fn trigger(&mut self, now: Now, action: &str, value: Option<&str>) -> Result<(), String> {
        match action {
            "bye" | "hangup" => self.hangup(now),
            "play" => {
                self.play(now, None, Some(Range::RESUME));
            }
            "pause" => {
                self.pause(now);
            }
            "teardown" => {
                self.teardown(now);
            }
            "scale" => {
                let v: f64 = value
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or("scale needs a number")?;
                self.play(now, Some(v), None);
            }
            other => {
                return Err(format!(
                    "unknown action {other:?} (bye, play, pause, teardown, scale)"
                ))
            }
        }
        Ok(())
    }

    /// Call when the instant from [`MediaUac::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Now) {
        let timers = self.cfg.timers;
        if let State::Calling {
            retransmit_at,
            interval,
            give_up_at,
            cancelled,
        } = &mut self.state
        {
            if now.mono >= *give_up_at {
                let cancelled = *cancelled;
                self.state = State::Done { ack: None };
                if !cancelled {
                    self.events.push_back(SessionEvent::Ended {
                        reason: EndReason::TimedOut,
                        findings: Vec::new(),
                    });
                }
            } else if retransmit_at.is_some_and(|at| now.mono >= at) {
                // Timer A: the INVITE is retransmitted, doubling each time.
                self.transmits.push_back(Transmit {
                    to: self.cfg.remote,
                    bytes: self.invite_bytes.clone(),
                });
                *interval *= 2;
                *retransmit_at = Some(now.mono + *interval);
            }
        }
        for p in self.txns.on_timeout(now, &mut self.transmits) {
            match p {
                Purpose::Cancel => {}
                Purpose::Bye => self.events.push_back(SessionEvent::ByeAnswered {
                    status: None,
                    findings: vec![rules::BYE_TIMEOUT
                        .finding(format!("no answer to BYE within {:?}", timers.t1 * 64))],
                }),
                Purpose::Info(request) => {
                    let f = rules::INFO_FAILED.finding(format!(
                        "no answer to the INFO carrying {} within {:?}",
                        request.method,
                        timers.t1 * 64
                    ));
                    self.events.push_back(SessionEvent::ControlAnswered {
                        request,
                        status: None,
                        response: None,
                        findings: vec![f],
                    });
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Calling {
                retransmit_at,
                give_up_at,
                ..
            } => Some(retransmit_at.map_or(*give_up_at, |r| r.min(*give_up_at))),
            _ => None,
        };
        [state, self.txns.next_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
}
