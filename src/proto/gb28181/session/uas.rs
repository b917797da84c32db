//! The answering side of a media session: the camera for 实时预览, 录像回放, 文件下载 and
//! 语音对讲, the platform for the audio INVITE of 语音广播. See the module docs of
//! [`super`] for how to drive it.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::dialog::{
    branch_of, respond, strip_tag, tag_of, uri_of, ClientTxns, Dialog, SentResponses,
};
use super::finding::{self as rules, Finding};
use super::mansrtsp;
use super::negotiate::{self, AnswerFaults, AnswerSpec, Negotiated, Side};
use super::{EndReason, SessionCommand, SessionEvent, Timers};
use crate::proto::gb28181::manscdp::{self, Body, Charset, MediaStatusNotify};
use crate::proto::gb28181::message::with_body;
use crate::proto::sdp::{GbSession, MediaParams, Ssrc};
use crate::proto::sip::{self, SipMessage};
use crate::proto::{Now, Transmit, Transport};

/// Deliberate misbehaviour of the answering side, so each check of the calling side
/// can be shown failing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UasFaults {
    /// Answer with a `y=` other than the offered one.
    pub wrong_ssrc: bool,
    /// Start streaming as soon as the 200 is sent, without waiting for the ACK, and
    /// never retransmit the 200.
    pub no_ack_wait: bool,
    /// Neither answer nor obey a BYE: keep streaming.
    pub ignore_bye: bool,
    /// Never send the MediaStatus 121 notification at the end of a file.
    pub no_media_status: bool,
    /// Answer without `y=`.
    pub answer_without_y: bool,
    /// Answer a TCP offer with the offered `a=setup` role instead of its opposite.
    pub wrong_setup: bool,
    /// Answer without a direction attribute (`a=sendonly`) in the media.
    pub answer_without_direction: bool,
}

impl UasFaults {
    /// Names accepted by [`UasFaults::set`].
    pub const NAMES: &'static [&'static str] = &[
        "wrong-ssrc",
        "no-ack-wait",
        "ignore-bye",
        "no-media-status",
        "answer-without-y",
        "wrong-setup",
        "answer-without-direction",
    ];

    /// Switches on a fault by name; `false` for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "wrong-ssrc" => &mut self.wrong_ssrc,
            "no-ack-wait" => &mut self.no_ack_wait,
            "ignore-bye" => &mut self.ignore_bye,
            "no-media-status" => &mut self.no_media_status,
            "answer-without-y" => &mut self.answer_without_y,
            "wrong-setup" => &mut self.wrong_setup,
            "answer-without-direction" => &mut self.answer_without_direction,
            _ => return false,
        };
        *f = true;
        true
    }
}

/// What the answering side needs.
#[derive(Debug, Clone)]
pub struct UasConfig {
    /// This side's 20-digit ID (`o=` user, Contact user, MediaStatus DeviceID).
    pub local_id: String,
    /// This side's SIP address (Via, Contact).
    pub local: SocketAddr,
    pub transport: Transport,
    /// The address announced in `c=`.
    pub media_ip: IpAddr,
    pub user_agent: String,
    /// `i=` of the answer (the spec's camera writes `VCam Live Video`).
    pub info: Option<String>,
    /// `f=` of the answer.
    pub media_params: Option<MediaParams>,
    /// `a=filesize` of Playback/Download answers.
    pub file_size: Option<u64>,
    /// Charset of the MediaStatus body (the spec's example is GB2312).
    pub charset: Charset,
    pub timers: Timers,
    pub faults: UasFaults,
    pub seed: u64,
}

impl UasConfig {
    /// Defaults: UDP, `f=v/2/2/25/1/512a///` (H.264, CIF, 25 fps, CBR, 512 kbit/s),
    /// GB2312 notifications, RFC 3261 timers.
    pub fn new(local_id: &str, local: SocketAddr, media_ip: IpAddr) -> Self {
        UasConfig {
            local_id: local_id.to_string(),
            local,
            transport: Transport::Udp,
            media_ip,
            user_agent: "camcert reference camera".into(),
            info: None,
            media_params: Some(MediaParams::video(2, 2, 25, 1, 512)),
            file_size: None,
            charset: Charset::Gb2312,
            timers: Timers::default(),
            faults: UasFaults::default(),
            seed: 1,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    /// The INVITE is answered 100; the driver has to accept or reject.
    Offered {
        invite: Box<SipMessage>,
        offer: Box<GbSession>,
    },
    /// 200 sent, waiting for the ACK.
    Answered {
        ok: Transmit,
        retransmit_at: Option<Instant>,
        interval: Duration,
        give_up_at: Instant,
        negotiated: Box<Negotiated>,
    },
    Confirmed,
    Done,
}

#[derive(Debug, Clone)]
enum Purpose {
    Bye,
    MediaStatus,
}

/// The answering side of one media session.
pub struct MediaUas {
    cfg: UasConfig,
    state: State,
    call_id: Option<String>,
    invite_branch: Option<String>,
    invite_cseq: u32,
    last_invite_response: Option<Transmit>,
    dialog: Option<Dialog>,
    negotiated: Option<Box<Negotiated>>,
    rng: StdRng,
    sn: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
    txns: ClientTxns<Purpose>,
    sent: SentResponses,
}

impl MediaUas {
    pub fn new(cfg: UasConfig) -> MediaUas {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let txns = ClientTxns::new(cfg.transport, cfg.timers);
        MediaUas {
            cfg,
            state: State::Idle,
            call_id: None,
            invite_branch: None,
            invite_cseq: 0,
            last_invite_response: None,
            dialog: None,
            negotiated: None,
            rng,
            sn: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            txns,
            sent: SentResponses::default(),
        }
    }

    pub fn config(&self) -> &UasConfig {
        &self.cfg
    }

    /// Whether `msg` belongs to this session: before the first INVITE, any INVITE;
    /// afterwards, anything with its Call-ID.
    pub fn matches(&self, msg: &SipMessage) -> bool {
        match &self.call_id {
            None => msg.method() == Some("INVITE"),
            Some(c) => msg.call_id() == Some(c.as_str()),
        }
    }

    /// The Call-ID, once the INVITE arrived.
    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_deref()
    }

    /// What was agreed, once accepted.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_deref()
    }

    /// Whether the session is established (ACK received, or sent 200 with
    /// `no-ack-wait`).
    pub fn is_confirmed(&self) -> bool {
        matches!(self.state, State::Confirmed)
    }

    /// Whether the session is over and nothing is outstanding.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done) && self.txns.is_empty()
    }

    fn push(&mut self, to: SocketAddr, m: &SipMessage) -> Transmit {
        let t = Transmit {
            to,
            bytes: m.to_bytes(),
        };
        self.transmits.push_back(t.clone());
        t
    }

    fn local_tag(&self) -> Option<String> {
        self.dialog.as_ref().map(|d| d.local_tag.clone())
    }

    /// Answers `req` with `code` (our tag on To) and remembers it for retransmissions.
    fn answer(&mut self, from: SocketAddr, req: &SipMessage, code: u16) {
        let tag = self.local_tag();
        let r = respond(req, code, tag.as_deref(), &self.cfg.user_agent).with_content_length();
        let t = self.push(from, &r);
        self.sent.remember(req, &t);
    }

    /// Feed a message from the peer; `from` is where it came from.
    pub fn handle_message(&mut self, _now: Now, from: SocketAddr, msg: &SipMessage) {
        if msg.status().is_some() {
            return self.on_response(msg);
        }
        let Some(method) = msg.method().map(str::to_string) else {
            return;
        };
        if !self.matches(msg) {
            return;
        }
        if method == "INVITE"
            && branch_of(msg) == self.invite_branch
            && msg.cseq().map(|c| c.seq) == Some(self.invite_cseq)
        {
            // A retransmitted INVITE gets the last response again (§17.2.1).
            if let Some(t) = self.last_invite_response.clone() {
                self.transmits.push_back(t);
            }
            return;
        }
        if method != "ACK" {
            if let Some(t) = self.sent.replay(msg) {
                self.transmits.push_back(t);
                return;
            }
        }
        match method.as_str() {
            "INVITE" if matches!(self.state, State::Idle) => self.on_invite(from, msg),
            // Re-INVITE: GB/T 28181 sessions are never modified.
            "INVITE" => self.answer(from, msg, 488),
            "ACK" => self.on_ack(msg),
            "CANCEL" => self.on_cancel(from, msg),
            "BYE" => self.on_bye(from, msg),
            "INFO" => self.on_info(from, msg),
            _ => {
                let tag = self.local_tag();
                let mut r = respond(msg, 405, tag.as_deref(), &self.cfg.user_agent);
                r.headers.push("Allow", "INVITE, ACK, CANCEL, BYE, INFO");
                let t = self.push(from, &r.with_content_length());
                self.sent.remember(msg, &t);
            }
        }
    }

    fn on_invite(&mut self, from: SocketAddr, msg: &SipMessage) {
        self.call_id = msg.call_id().map(str::to_string);
        self.invite_branch = branch_of(msg);
        self.invite_cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        let mut findings: Vec<Finding> = Vec::new();
        let contact = msg.headers.get("Contact");
        if contact.is_none() {
            findings.push(rules::CONTACT_MISSING.finding("INVITE without Contact"));
        }
        match msg.headers.get("Subject") {
            None => findings.push(rules::SUBJECT_MISSING.finding("INVITE without Subject")),
            Some(s) if !subject_ok(s) => findings.push(rules::SUBJECT_FORMAT.finding(format!(
                "Subject {s:?} is not <sender ID>:<seq>,<receiver ID>:<seq>"
            ))),
            Some(_) => {}
        }
        let from_hdr = msg.headers.get("From").unwrap_or_default();
        self.dialog = Some(Dialog {
            call_id: self.call_id.clone().unwrap_or_default(),
            local_uri: strip_tag(msg.headers.get("To").unwrap_or_default()),
            local_tag: sip::new_tag(&mut self.rng),
            remote_uri: strip_tag(from_hdr),
            remote_tag: tag_of(Some(from_hdr)),
            remote_target: uri_of(contact.unwrap_or(from_hdr)),
            local_cseq: self.rng.gen_range(1..1000),
            remote_cseq: Some(self.invite_cseq),
            peer: from,
            local: self.cfg.local,
            transport: self.cfg.transport,
            local_id: self.cfg.local_id.clone(),
            user_agent: self.cfg.user_agent.clone(),
        });
        // §8.2.6.2: the 100 may go without a tag; the spec's 100 Trying has none.
        let trying = respond(msg, 100, None, &self.cfg.user_agent).with_content_length();
        let t = self.push(from, &trying);
        self.last_invite_response = Some(t);

        let sdp = msg
            .headers
            .get("Content-Type")
            .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
        if msg.body.iter().all(u8::is_ascii_whitespace) {
            findings.push(rules::NO_OFFER.finding("INVITE without an SDP body"));
            return self.refuse(from, msg, 488, findings);
        }
        if !sdp {
            findings.push(rules::CONTENT_TYPE.finding(format!(
                "INVITE body with Content-Type {:?}",
                msg.headers.get("Content-Type").unwrap_or("(none)")
            )));
        }
        let offer = match GbSession::parse(&msg.body) {
            Ok((offer, f)) => {
                findings.extend(f);
                offer
            }
            Err(e) => {
                findings.push(rules::NO_OFFER.finding(e.to_string()));
                return self.refuse(from, msg, 488, findings);
            }
        };
        if let Err(f) = negotiate::check_offer(&offer) {
            findings.push(f);
            return self.refuse(from, msg, 488, findings);
        }
        if offer.ssrc.is_none() {
            findings.push(rules::SSRC_MISSING_IN_OFFER.finding(format!(
                "the offer has no y=; answering with y={}",
                self.fallback_ssrc(&offer)
            )));
        }
        let (mut preview, _) = self.conclude(&offer, 9, from);
        for m in &mut preview.media {
            m.local.set_port(0);
        }
        self.state = State::Offered {
            invite: Box::new(msg.clone()),
            offer: Box::new(offer),
        };
        self.events.push_back(SessionEvent::Offer {
            negotiated: Box::new(preview),
            findings,
        });
    }

    fn fallback_ssrc(&self, offer: &GbSession) -> Ssrc {
        let history = offer.kind().is_some_and(|k| k.is_history());
        let domain = Ssrc::domain_of(&self.cfg.local_id).unwrap_or("00000");
        Ssrc::gb(history, domain, (self.invite_cseq % 10_000).max(1))
            .unwrap_or(Ssrc(u32::from(history) * 1_000_000_000 + 1))
    }

    fn conclude(&self, offer: &GbSession, port: u16, from: SocketAddr) -> (Negotiated, GbSession) {
        let f = &self.cfg.faults;
        let answer = negotiate::build_answer(
            offer,
            &AnswerSpec {
                local_id: &self.cfg.local_id,
                media_ip: self.cfg.media_ip,
                port,
                info: self.cfg.info.as_deref(),
                media_params: self.cfg.media_params.as_ref(),
                file_size: self.cfg.file_size,
                fallback_ssrc: self.fallback_ssrc(offer),
                faults: AnswerFaults {
                    wrong_ssrc: f.wrong_ssrc,
                    no_y: f.answer_without_y,
                    wrong_setup: f.wrong_setup,
                    no_direction: f.answer_without_direction,
                },
            },
        );
        let (n, _) = negotiate::conclude(offer, &answer, Side::Answerer, from.ip());
        (n, answer)
    }

    fn refuse(&mut self, from: SocketAddr, invite: &SipMessage, code: u16, findings: Vec<Finding>) {
        let tag = self.local_tag();
        let r = respond(invite, code, tag.as_deref(), &self.cfg.user_agent).with_content_length();
        let t = self.push(from, &r);
        self.last_invite_response = Some(t);
        self.state = State::Done;
        self.events.push_back(SessionEvent::Ended {
            reason: if code == 487 {
                EndReason::Cancelled
            } else {
                EndReason::Rejected(code)
            },
            findings,
        });
    }

    /// Answer the offer with 200 and this side's media on `media_port` (the UDP
    /// port media is sent from, the TCP port listened on, or the discard port 9 when
    /// this side connects: RFC 4145 §4 leaves the active side's port meaningless).
    pub fn accept(&mut self, now: Now, media_port: u16) -> Result<(), String> {
        let State::Offered { invite, offer } = &self.state else {
            return Err("no offer is waiting for an answer".into());
        };
        let (invite, offer) = (invite.as_ref().clone(), offer.as_ref().clone());
        let peer = self.dialog.as_ref().map(|d| d.peer).ok_or("no dialog")?;
        let (negotiated, answer) = self.conclude(&offer, media_port, peer);
        let tag = self.local_tag();
        let mut ok = respond(&invite, 200, tag.as_deref(), &self.cfg.user_agent);
        let contact = self
            .dialog
            .as_ref()
            .map(Dialog::contact)
            .unwrap_or_default();
        ok.headers.push("Contact", contact);
        let ok = with_body(ok, "application/sdp", answer.encode());
        let t = self.push(peer, &ok);
        self.last_invite_response = Some(t.clone());
        let negotiated = Box::new(negotiated);
        self.negotiated = Some(negotiated.clone());
        if self.cfg.faults.no_ack_wait {
            self.state = State::Confirmed;
            self.events.push_back(SessionEvent::Started {
                negotiated,
                findings: Vec::new(),
            });
            return Ok(());
        }
        self.state = State::Answered {
            ok: t,
            retransmit_at: (self.cfg.transport == Transport::Udp)
                .then(|| now.mono + self.cfg.timers.t1),
            interval: self.cfg.timers.t1,
            give_up_at: now.mono + self.cfg.timers.t1 * 64,
            negotiated,
        };
        Ok(())
    }

    /// Refuse the offer with a final status (e.g. 486, 488).
    pub fn reject(&mut self, _now: Now, status: u16) -> Result<(), String> {
        let State::Offered { invite, .. } = &self.state else {
            return Err("no offer is waiting for an answer".into());
        };
        let invite = invite.as_ref().clone();
        let peer = self.dialog.as_ref().map(|d| d.peer).ok_or("no dialog")?;
        self.refuse(peer, &invite, status, Vec::new());
        Ok(())
    }

    fn on_ack(&mut self, msg: &SipMessage) {
        if let State::Answered { negotiated, .. } = &self.state {
            if msg.cseq().map(|c| c.seq) == Some(self.invite_cseq) {
                let negotiated = negotiated.clone();
                self.state = State::Confirmed;
                self.events.push_back(SessionEvent::Started {
                    negotiated,
                    findings: Vec::new(),
                });
            }
        }
    }

    fn on_cancel(&mut self, from: SocketAddr, msg: &SipMessage) {
        // §9.2: the CANCEL itself is answered 200; a pending INVITE then gets 487.
        self.answer(from, msg, 200);
        if let State::Offered { invite, .. } = &self.state {
            if branch_of(msg) == self.invite_branch {
                let invite = invite.as_ref().clone();
                self.refuse(from, &invite, 487, Vec::new());
            }
        }
    }

    /// Checks that an in-dialog request belongs to the dialog and comes in CSeq order;
    /// answers 481 or 500 and reports it otherwise.
    fn in_dialog(&mut self, from: SocketAddr, msg: &SipMessage) -> bool {
        let Some(d) = &self.dialog else {
            self.answer(from, msg, 481);
            return false;
        };
        let established = !matches!(self.state, State::Idle | State::Offered { .. });
        if !established || !d.matches_request(msg) {
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
        if d.remote_cseq.is_some_and(|r| seq < r) {
            self.answer(from, msg, 500);
            self.events
                .push_back(SessionEvent::Finding(rules::DIALOG_MISMATCH.finding(
                    format!("CSeq {seq} is lower than the previous request's"),
                )));
            return false;
        }
        if let Some(d) = &mut self.dialog {
            d.remote_cseq = Some(seq);
        }
        true
    }

    fn on_bye(&mut self, from: SocketAddr, msg: &SipMessage) {
        if self.cfg.faults.ignore_bye {
            return;
        }
        if !self.in_dialog(from, msg) {
            return;
        }
        self.answer(from, msg, 200);
        if !matches!(self.state, State::Done) {
            self.state = State::Done;
            self.events.push_back(SessionEvent::Ended {
                reason: EndReason::ByeReceived,
                findings: Vec::new(),
            });
        }
    }

    fn on_info(&mut self, from: SocketAddr, msg: &SipMessage) {
        if !self.in_dialog(from, msg) {
            return;
        }
        let mut findings = Vec::new();
        let ct = msg.headers.get("Content-Type").unwrap_or_default();
        if !ct.trim().eq_ignore_ascii_case(mansrtsp::CONTENT_TYPE) {
            findings.push(rules::INFO_CONTENT_TYPE.finding(format!(
                "INFO with Content-Type {ct:?}, not {}",
                mansrtsp::CONTENT_TYPE
            )));
        }
        let (request, f) = match mansrtsp::Request::parse(&msg.body) {
            Ok(r) => r,
            Err(e) => {
                findings.push(rules::INFO_FAILED.finding(format!("unreadable MANSRTSP: {e}")));
                self.answer(from, msg, 400);
                for f in findings {
                    self.events.push_back(SessionEvent::Finding(f));
                }
                return;
            }
        };
        findings.extend(f);
        let history = self
            .negotiated
            .as_ref()
            .is_some_and(|n| n.kind.is_history());
        if !history {
            findings.push(rules::INFO_OUTSIDE_PLAYBACK.finding(format!(
                "{} in a {} session",
                request.method,
                self.negotiated
                    .as_ref()
                    .map_or("live".to_string(), |n| n.kind.to_string())
            )));
            self.answer(from, msg, 488);
            for f in findings {
                self.events.push_back(SessionEvent::Finding(f));
            }
            return;
        }
        let tag = self.local_tag();
        let ok = respond(msg, 200, tag.as_deref(), &self.cfg.user_agent);
        let ok = with_body(
            ok,
            mansrtsp::CONTENT_TYPE,
            mansrtsp::Response::ok(request.cseq).to_bytes(),
        );
        let t = self.push(from, &ok);
        self.sent.remember(msg, &t);
        self.events
            .push_back(SessionEvent::Control { request, findings });
    }

    fn on_response(&mut self, msg: &SipMessage) {
        let Some((purpose, code)) = self.txns.on_response(msg) else {
            return;
        };
        match purpose {
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
            Purpose::MediaStatus => self
                .events
                .push_back(SessionEvent::MediaStatusAnswered { status: Some(code) }),
        }
    }

    fn send_bye(&mut self, now: Now) {
        let branch = sip::new_branch(&mut self.rng);
        let Some(d) = &mut self.dialog else { return };
        let bye = d.request("BYE", &branch, None).with_content_length();
        let peer = d.peer;
        self.txns
            .start(now, peer, &bye, Purpose::Bye, &mut self.transmits);
    }

    fn end(&mut self, now: Now, reason: EndReason, findings: Vec<Finding>) {
        match self.state {
            State::Offered { .. } => {
                let _ = self.reject(now, 486);
            }
            State::Answered { .. } | State::Confirmed => {
                self.send_bye(now);
                self.state = State::Done;
                self.events
                    .push_back(SessionEvent::Ended { reason, findings });
            }
            State::Idle | State::Done => {}
        }
    }

    /// Carry out what the media side of the driver says.
    pub fn apply(&mut self, now: Now, cmd: SessionCommand) {
        match cmd {
            SessionCommand::Accept(port) => {
                let _ = self.accept(now, port);
            }
            SessionCommand::Refuse => {
                let _ = self.reject(now, 488);
            }
            SessionCommand::HangUp => self.hangup(now),
            SessionCommand::MediaFailed => self.media_timeout(now),
            SessionCommand::FileEnded => {
                self.end_of_file(now);
            }
        }
    }

    /// End the session from this side (设备侧断流): BYE once established; before the
    /// answer, the offer is refused with 486.
    pub fn hangup(&mut self, now: Now) {
        self.end(now, EndReason::ByeSent, Vec::new());
    }

    /// The driver saw the media fail (the peer never connected, the connection
    /// dropped, nothing arrived): end the session with BYE.
    pub fn media_timeout(&mut self, now: Now) {
        self.end(now, EndReason::MediaTimeout, Vec::new());
    }

    /// The file of a Playback/Download session has been sent: notify the peer with an
    /// in-dialog MESSAGE carrying MediaStatus NotifyType 121 (文件下载 13). Returns
    /// whether it was sent.
    pub fn end_of_file(&mut self, now: Now) -> bool {
        if !matches!(self.state, State::Confirmed) || self.cfg.faults.no_media_status {
            return false;
        }
        self.sn += 1;
        let body = manscdp::Message::new(
            self.sn,
            self.cfg.local_id.clone(),
            Body::MediaStatus(MediaStatusNotify::end_of_file()),
        )
        .encode(self.cfg.charset);
        let branch = sip::new_branch(&mut self.rng);
        let Some(d) = &mut self.dialog else {
            return false;
        };
        let mut m = d.request("MESSAGE", &branch, None);
        m.headers.push("Contact", d.contact());
        let m = with_body(m, manscdp::CONTENT_TYPE, body);
        let peer = d.peer;
        self.txns
            .start(now, peer, &m, Purpose::MediaStatus, &mut self.transmits);
        true
    }

    /// Carry out a named action (suite `trigger` steps): `bye`, `end-of-file`.
    pub fn trigger(&mut self, now: Now, action: &str) -> Result<(), String> {
        match action {
            "bye" | "hangup" => self.hangup(now),
            "end-of-file" | "media-status" => {
                self.end_of_file(now);
            }
            other => return Err(format!("unknown action {other:?} (bye, end-of-file)")),
        }
        Ok(())
    }

    /// Call when the instant from [`MediaUas::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Now) {
        let timers = self.cfg.timers;
        if let State::Answered {
            ok,
            retransmit_at,
            interval,
            give_up_at,
            ..
        } = &mut self.state
        {
            if now.mono >= *give_up_at {
                let f = rules::NO_ACK
                    .finding(format!("no ACK for the 200 within {:?}", timers.t1 * 64));
                self.end(now, EndReason::NoAck, vec![f]);
            } else if retransmit_at.is_some_and(|at| now.mono >= at) {
                // §13.3.1.4: the 2xx is retransmitted, doubling up to T2.
                self.transmits.push_back(ok.clone());
                *interval = (*interval * 2).min(timers.t2);
                *retransmit_at = Some(now.mono + *interval);
            }
        }
        for p in self.txns.on_timeout(now, &mut self.transmits) {
            match p {
                Purpose::Bye => self.events.push_back(SessionEvent::ByeAnswered {
                    status: None,
                    findings: vec![rules::BYE_TIMEOUT
                        .finding(format!("no answer to BYE within {:?}", timers.t1 * 64))],
                }),
                Purpose::MediaStatus => self
                    .events
                    .push_back(SessionEvent::MediaStatusAnswered { status: None }),
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Answered {
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

/// `Subject: <id>:<seq>,<id>:<seq>` (文件下载 1; the notes' code writes
/// `deviceId + ":" + serial + "," + code + ":" + serial`).
pub(crate) fn subject_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.split(',').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            p.split_once(':').is_some_and(|(id, seq)| {
                !id.trim().is_empty()
                    && !seq.trim().is_empty()
                    && seq.trim().bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
}
