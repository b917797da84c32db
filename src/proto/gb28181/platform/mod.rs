//! A GB/T 28181 platform (SIP server) as a sans-IO state machine.
//!
//! - Registrar (§注册, §校时, §注销): digest challenge, platform-ID and
//!   device checks, `Date:` in the final 200, expiry, unregistration; in
//!   redirect server mode (§注册重定向) a 302 naming server A instead.
//! - Keepalive receiver (§保活): 200 to each keepalive; a device silent for
//!   `keepalive_timeout_count` intervals is taken offline.
//! - Source of queries and controls (§设备查询, §设备控制, §订阅与取订): the
//!   [`Platform::trigger`] actions; multi-message answers are collected up
//!   to SumNum; alarms (§报警事件通知) are acknowledged.
//! - Platform cascade (`platform-cascade-sip.txt`): as lower platform it
//!   registers to an upper platform, keeps alive, shares its devices'
//!   catalog, reports their status and passes PTZ and record queries down;
//!   as upper platform it is the registrar of its lower platforms.
//!
//! Feed each received message with its source to [`Platform::handle_message`];
//! send what [`Platform::poll_transmit`] returns; call
//! [`Platform::handle_timeout`] at [`Platform::poll_timeout`]; call
//! [`Platform::start`] once so a lower platform begins registering. This is
//! the reference platform and the platform camcert plays against a camera.

mod cascade;
mod config;
mod media;
mod queries;
mod registrar;
mod subscribe;
mod transaction;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use config::{PlatformConfig, PlatformFaults, UpstreamConfig};
pub use media::MEDIA_ACTIONS;
pub use queries::ACTIONS;

use super::manscdp::{self, CmdType, Root};
use super::message::{build_request, with_body, RequestParams};
use super::session::{BroadcastEvent, SessionEvent};
use crate::proto::sip::{self, NameAddr, SipMessage};
use crate::proto::{scaled, Now, Transmit, Transport};
use cascade::Upstream;
use media::MediaTable;
use queries::{Forward, PendingQuery};
use subscribe::Subscription;
use transaction::{ClientTx, Purpose, Tick};

// `Session` carries a SessionEvent as it is (320 bytes): events are few, and
// hosts match on them directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformEvent {
    Registered {
        device_id: String,
        from: SocketAddr,
        expires: u32,
        refresh: bool,
    },
    Unregistered {
        device_id: String,
    },
    Expired {
        device_id: String,
    },
    Rejected {
        device_id: Option<String>,
        status: u16,
        reason: String,
    },
    /// Redirect server mode: the device was sent to server A.
    Redirected {
        device_id: String,
        contact: String,
        expires: u32,
    },
    /// A keepalive from a registered device was accepted.
    Keepalive {
        device_id: String,
        status: Option<String>,
        /// What the body got wrong (warnings and errors); it was still read.
        findings: Vec<manscdp::Finding>,
    },
    /// A keepalive from a device that is not registered was refused.
    KeepaliveRefused {
        device_id: String,
        status: u16,
    },
    /// §保活: no keepalive for `keepalive_timeout_count` intervals.
    Offline {
        device_id: String,
    },
    /// A one-message answer to a query or control.
    Answer {
        device_id: String,
        cmd: String,
        sn: u64,
        result: Option<String>,
        /// What the body got wrong (warnings and errors), including an answer
        /// whose CmdType is not the query's (`manscdp.answer-cmd-type`).
        findings: Vec<manscdp::Finding>,
    },
    /// A multi-message answer ended: SumNum reached, or it timed out.
    Collected {
        device_id: String,
        cmd: String,
        sn: u64,
        items: usize,
        messages: usize,
        complete: bool,
        findings: Vec<manscdp::Finding>,
    },
    Alarm {
        device_id: String,
        sn: Option<u64>,
        priority: Option<u32>,
        method: Option<u32>,
    },
    /// A NOTIFY in a subscription, or a lower platform's status notification.
    Notified {
        device_id: String,
        event: Option<String>,
        cmd: Option<String>,
    },
    Subscribed {
        device_id: String,
        event: String,
        expires: u32,
    },
    SubscriptionEnded {
        device_id: String,
        event: String,
    },
    /// A request this platform sent was refused or never answered.
    RequestFailed {
        target: String,
        method: String,
        status: Option<u16>,
    },
    /// Lower platform mode: the upper platform accepted the registration.
    UpstreamRegistered {
        expires: u32,
    },
    /// Lower platform mode: the upper platform is taken to be offline
    /// (refused registration, unanswered keepalives).
    UpstreamOffline {
        reason: String,
    },
    /// Lower platform mode: a request from the upper platform went to a device.
    Forwarded {
        device_id: String,
        cmd: String,
    },
    /// An event of a media session this platform runs (a call it placed, or
    /// the audio session of a broadcast), with the session's Call-ID.
    Session {
        call_id: String,
        event: SessionEvent,
    },
    /// 语音广播 to `device_id`: the notification's answer, the device's
    /// Broadcast response, or the flow failing (the audio session's events come
    /// as [`PlatformEvent::Session`]).
    Broadcast {
        device_id: String,
        event: BroadcastEvent,
    },
    /// The message was not a request this machine understands.
    Ignored {
        from: SocketAddr,
        summary: String,
    },
}

#[derive(Debug, Clone)]
pub struct Registration {
    /// Where the device's requests come from; requests to it go here.
    pub addr: SocketAddr,
    pub expires_at: Instant,
    pub contact: Option<String>,
    /// §保活: when the device is taken offline unless a keepalive arrives.
    pub keepalive_deadline: Instant,
    pub last_keepalive: Option<Instant>,
}

/// A channel learnt from a collected catalog, reached through `owner`.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The registered device or lower platform that listed it.
    pub owner: String,
    pub name: Option<String>,
    pub status: Option<String>,
}

pub struct Platform {
    cfg: PlatformConfig,
    /// Nonces issued and not yet used, by device ID.
    nonces: HashMap<String, Vec<registrar::IssuedNonce>>,
    registrations: HashMap<String, Registration>,
    /// The device that registered last: the default target of triggers.
    last_registered: Option<String>,
    channels: BTreeMap<String, Channel>,
    rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PlatformEvent>,
    answered_garbage: bool,
    /// Set by the `wedge-on-garbage` fault once a non-SIP datagram arrived.
    wedged: bool,
    txs: Vec<ClientTx>,
    cseq: u32,
    sn: u64,
    pending: HashMap<u64, PendingQuery>,
    forwards: HashMap<u64, Forward>,
    subscriptions: Vec<Subscription>,
    next_subscription: u32,
    upstream: Option<Upstream>,
    /// Responses sent, by server transaction, kept for retransmissions.
    answered: HashMap<String, (Vec<u8>, Instant)>,
    /// The keys of `answered` in the order they expire.
    answered_expiry: BTreeMap<(Instant, u64), String>,
    answered_seq: u64,
    /// Registration deadlines (expiry, keepalive), earliest first. An entry
    /// may be early (the deadline moved later since): it is checked when it
    /// comes due and pushed again with the current deadline.
    reg_deadlines: BinaryHeap<Reverse<(Instant, String)>>,
    /// The earliest entry `reg_deadlines` holds for each device.
    reg_scheduled: HashMap<String, Instant>,
    /// Media sessions and broadcasts under way, oldest first, with their
    /// Call-IDs and deadlines indexed.
    media: MediaTable,
    /// Findings of the MANSCDP bodies read leniently, with their sender;
    /// the last [`KEPT_FINDINGS`].
    findings: VecDeque<(String, manscdp::Finding)>,
    /// Findings recorded in all.
    finding_count: u64,
}

/// How many MANSCDP findings the platform keeps for reports.
pub const KEPT_FINDINGS: usize = 256;

impl Platform {
    pub fn new(cfg: PlatformConfig) -> Platform {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let upstream = cfg.upstream.as_ref().map(|u| Upstream::new(&cfg, u));
        // Room for every provisioned device up front: a registration storm
        // then never waits on a table growing (cost flat in the count held).
        let provisioned = cfg.devices.len();
        Platform {
            cfg,
            nonces: HashMap::with_capacity(provisioned),
            registrations: HashMap::with_capacity(provisioned),
            last_registered: None,
            channels: BTreeMap::new(),
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            answered_garbage: false,
            wedged: false,
            txs: Vec::new(),
            cseq: 0,
            sn: 0,
            pending: HashMap::new(),
            forwards: HashMap::new(),
            subscriptions: Vec::new(),
            next_subscription: 0,
            upstream,
            answered: HashMap::new(),
            answered_expiry: BTreeMap::new(),
            answered_seq: 0,
            reg_deadlines: BinaryHeap::new(),
            reg_scheduled: HashMap::with_capacity(provisioned),
            media: MediaTable::default(),
            findings: VecDeque::new(),
            finding_count: 0,
        }
    }

    /// Findings (warnings and errors) of the MANSCDP bodies this platform
    /// read leniently, and of requests addressed to its domain instead of
    /// its ID, oldest first, with the device that sent each: the last
    /// [`KEPT_FINDINGS`].
    pub fn findings(&self) -> impl Iterator<Item = (&str, &manscdp::Finding)> {
        self.findings.iter().map(|(d, f)| (d.as_str(), f))
    }

    /// How many findings were recorded, including those no longer kept.
    pub fn finding_count(&self) -> u64 {
        self.finding_count
    }

    /// Keep the findings of a body from `sender` that matter for a verdict.
    fn keep_findings(
        &mut self,
        sender: &str,
        findings: &[manscdp::Finding],
    ) -> Vec<manscdp::Finding> {
        let kept: Vec<manscdp::Finding> = findings
            .iter()
            .filter(|f| f.severity >= manscdp::Severity::Warning)
            .cloned()
            .collect();
        for f in &kept {
            self.finding_count += 1;
            if self.findings.len() == KEPT_FINDINGS {
                self.findings.pop_front();
            }
            self.findings.push_back((sender.to_string(), f.clone()));
        }
        kept
    }

    /// Decode a MANSCDP body as configured (lenient unless `strict_manscdp`).
    fn decode_manscdp(&self, body: &[u8]) -> Result<manscdp::Decoded, manscdp::DecodeError> {
        let opts = manscdp::DecodeOptions {
            strict: self.cfg.strict_manscdp,
        };
        manscdp::Message::decode_with(body, opts)
    }

    /// Begin what the platform does on its own: a lower platform registers
    /// to its upper platform. Call once, before the first message.
    pub fn start(&mut self, now: Now) {
        if let Some(u) = &mut self.upstream {
            u.dev.start(now);
        }
        self.drain_upstream(now);
    }

    pub fn config(&self) -> &PlatformConfig {
        &self.cfg
    }

    pub fn registration(&self, device_id: &str) -> Option<&Registration> {
        self.registrations.get(device_id)
    }

    pub fn registered_count(&self) -> usize {
        self.registrations.len()
    }

    /// Channels learnt from collected catalogs.
    pub fn channels(&self) -> &BTreeMap<String, Channel> {
        &self.channels
    }

    /// Lower platform mode: whether the upper platform holds us registered.
    pub fn upstream_online(&self) -> bool {
        self.upstream.as_ref().is_some_and(|u| u.online)
    }

    fn protocol(&self, d: Duration) -> Duration {
        scaled(d, self.cfg.time_scale)
    }

    fn reply(&mut self, to: SocketAddr, msg: SipMessage) {
        let mut bytes = msg.with_content_length().to_bytes();
        if self.cfg.faults.garbage && !self.answered_garbage {
            self.answered_garbage = true;
            bytes = b"\x16\x03\x01 garbage from a broken platform \x00\xff".to_vec();
        }
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// A plain response to `msg`.
    fn respond(&mut self, from: SocketAddr, msg: &SipMessage, code: u16) {
        let tag = sip::new_tag(&mut self.rng);
        let mut r = sip::response_to(msg, code, Some(&tag));
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        self.reply(from, r);
    }

    fn next_sn(&mut self) -> u64 {
        self.sn += 1;
        self.sn
    }

    /// A new out-of-dialog request from this platform to `to_id` at `dest`.
    fn new_request(&mut self, method: &str, to_id: &str, dest: SocketAddr) -> SipMessage {
        let call_id = sip::new_call_id(&mut self.rng);
        let from_tag = sip::new_tag(&mut self.rng);
        self.cseq += 1;
        self.request_in(method, to_id, dest, &call_id, &from_tag, None, self.cseq)
    }

    #[allow(clippy::too_many_arguments)]
    fn request_in(
        &mut self,
        method: &str,
        to_id: &str,
        dest: SocketAddr,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        cseq: u32,
    ) -> SipMessage {
        let branch = sip::new_branch(&mut self.rng);
        build_request(&RequestParams {
            method,
            from_id: &self.cfg.platform_id,
            to_id,
            domain: &self.cfg.domain,
            local: self.cfg.local,
            remote: dest,
            transport: self.cfg.transport,
            call_id,
            from_tag,
            to_tag,
            cseq,
            branch: &branch,
            user_agent: &self.cfg.user_agent,
        })
    }

    /// Attach a MANSCDP body written in the configured charset.
    fn with_manscdp(&self, m: SipMessage, body: &manscdp::Message) -> SipMessage {
        with_body(m, manscdp::CONTENT_TYPE, body.encode(self.cfg.charset))
    }

    /// Send `msg` as a client transaction.
    fn send_request(
        &mut self,
        now: Now,
        msg: SipMessage,
        dest: SocketAddr,
        target: &str,
        purpose: Purpose,
    ) {
        let msg = msg.with_content_length();
        let bytes = msg.to_bytes();
        let tx = ClientTx::new(
            now.mono,
            self.cfg.transport == Transport::Udp,
            &msg,
            bytes.clone(),
            dest,
            target,
            purpose,
        );
        self.txs.push(tx);
        self.transmits.push_back(Transmit { to: dest, bytes });
    }

    /// Where to send a request for `id`: a registered device, or a channel
    /// of one learnt from its catalog. Returns the address and the
    /// registered device it goes through.
    fn route(&self, id: &str) -> Option<(SocketAddr, String)> {
        if let Some(r) = self.registrations.get(id) {
            return Some((r.addr, id.to_string()));
        }
        let c = self.channels.get(id)?;
        let r = self.registrations.get(&c.owner)?;
        Some((r.addr, c.owner.clone()))
    }

    /// Feed bytes that arrived but are not a SIP message. A platform must
    /// drop them and carry on (RFC 3261 §18.3); the `wedge-on-garbage`
    /// fault makes it stop answering instead.
    /// The `reboot` action: see [`Platform::trigger`].
    fn restart(&mut self) {
        self.wedged = false;
        self.answered_garbage = false;
        self.answered.clear();
        self.answered_expiry.clear();
    }

    pub fn handle_unparseable(&mut self, _now: Now, _from: SocketAddr, _bytes: &[u8]) {
        if self.cfg.faults.wedge_on_garbage {
            self.wedged = true;
        }
    }

    pub fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if self.wedged {
            return;
        }
        // RFC 3261 §8.1.1 makes these mandatory in every request; §8.2 has
        // the UAS refuse a request it cannot process with 400. Without Via
        // there is nowhere to send the answer.
        if msg.is_request() {
            let missing = ["Via", "From", "To", "Call-ID", "CSeq"]
                .into_iter()
                .find(|h| msg.headers.get(h).is_none());
            if let Some(h) = missing {
                if h != "Via" && msg.method() != Some("ACK") {
                    self.respond(from, msg, 400);
                }
                return;
            }
        }
        // Media sessions keep their own transactions and retransmissions.
        if let Some(i) = self.media_route(msg) {
            return self.media_message(now, i, from, msg);
        }
        // RFC 3261 §17.2.2: a retransmitted request gets the response it
        // had, and is not acted on twice (an alarm acknowledged twice, a
        // catalog sent twice). Only from where the request first came: the
        // same bytes from another host are a replay, judged afresh.
        let key = server_key(msg).map(|k| format!("{k}|{from}"));
        if let Some(k) = &key {
            self.expire_answered(now.mono);
            if let Some((resp, _)) = self.answered.get(k) {
                let bytes = resp.clone();
                self.transmits.push_back(Transmit { to: from, bytes });
                return;
            }
        }
        let before = self.transmits.len();
        self.dispatch(now, from, msg);
        if msg.is_request() {
            if let Some(id) = from_user(msg) {
                self.schedule_registration(&id);
            }
        }
        if let Some(k) = key {
            let resp = self
                .transmits
                .iter()
                .skip(before)
                .find(|t| t.to == from && t.bytes.starts_with(b"SIP/2.0 "))
                .map(|t| t.bytes.clone());
            if let Some(r) = resp {
                let until = now.mono + transaction::TIMER_F;
                self.answered_seq += 1;
                self.answered_expiry
                    .insert((until, self.answered_seq), k.clone());
                self.answered.insert(k, (r, until));
            }
        }
    }

    /// Drop cached responses whose time has passed, oldest first: the cost
    /// is the number dropped, not the size of the cache.
    fn expire_answered(&mut self, now: Instant) {
        while let Some(entry) = self.answered_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (until, k) = (entry.key().0, entry.remove());
            if self.answered.get(&k).is_some_and(|(_, u)| *u == until) {
                self.answered.remove(&k);
            }
        }
    }

    /// The earliest time `device_id`'s registration needs looking at.
    fn registration_deadline(&self, device_id: &str) -> Option<Instant> {
        let r = self.registrations.get(device_id)?;
        Some(if self.cfg.faults.no_offline_detection {
            r.expires_at
        } else {
            r.expires_at.min(r.keepalive_deadline)
        })
    }

    /// Make sure the deadline index wakes the platform no later than
    /// `device_id`'s registration needs it (after a message that may have
    /// created or changed it). O(log n).
    fn schedule_registration(&mut self, device_id: &str) {
        let Some(at) = self.registration_deadline(device_id) else {
            return;
        };
        match self.reg_scheduled.get(device_id) {
            Some(s) if *s <= at => {}
            _ => {
                self.reg_scheduled.insert(device_id.to_string(), at);
                self.reg_deadlines
                    .push(Reverse((at, device_id.to_string())));
            }
        }
    }

    fn dispatch(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if !self.cfg.strict_sip && msg.method().is_some_and(|m| m != "ACK") {
            let fs = sip::quirks::addressing_findings(msg, &self.cfg.platform_id);
            if !fs.is_empty() {
                let sender = from_user(msg).unwrap_or_else(|| from.to_string());
                self.keep_findings(&sender, &fs);
            }
        }
        match msg.method() {
            None => self.handle_response(now, msg),
            Some("REGISTER") => self.handle_register(now, from, msg),
            Some("MESSAGE") => self.handle_manscdp_request(now, from, msg),
            Some("NOTIFY") => self.handle_notify(now, from, msg),
            Some("ACK") => {}
            Some("INVITE") => self.refuse_invite(from, msg),
            // A request in a dialog this platform does not hold (RFC 3261 §12.2.2).
            Some("BYE" | "INFO" | "CANCEL") => {
                self.events.push_back(PlatformEvent::Ignored {
                    from,
                    summary: msg.summary(),
                });
                self.respond(from, msg, 481);
            }
            Some(_) => {
                self.events.push_back(PlatformEvent::Ignored {
                    from,
                    summary: msg.summary(),
                });
                self.respond(from, msg, 501);
            }
        }
        self.drain_upstream(now);
    }

    fn handle_response(&mut self, now: Now, msg: &SipMessage) {
        let Some(code) = msg.status() else { return };
        let Some(i) = self.txs.iter().position(|t| t.matches(msg)) else {
            // Not ours: the upstream registration's, or a stray.
            if let Some(u) = &mut self.upstream {
                u.dev.handle_message(now, msg);
            }
            return;
        };
        if code < 200 {
            self.txs[i].proceeding(now.mono);
            return;
        }
        let tx = self.txs.remove(i);
        let ok = (200..300).contains(&code);
        match tx.purpose {
            Purpose::Subscribe { id, expires } => self.on_subscribe_answer(now, id, expires, msg),
            Purpose::Keepalive => self.on_keepalive_answer(now, code),
            Purpose::Query { sn } if !ok => {
                self.pending.remove(&sn);
                self.failed(&tx, Some(code));
            }
            _ if !ok => self.failed(&tx, Some(code)),
            _ => {}
        }
    }

    fn failed(&mut self, tx: &ClientTx, status: Option<u16>) {
        self.events.push_back(PlatformEvent::RequestFailed {
            target: tx.target.clone(),
            method: tx.method.clone(),
            status,
        });
    }

    /// MESSAGE: keepalives, answers, alarms; from the upper platform,
    /// queries and controls.
    fn handle_manscdp_request(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        let sender = from_user(msg).unwrap_or_default();
        let decoded = match self.decode_manscdp(&msg.body) {
            Ok(d) => d,
            Err(e) => {
                self.events.push_back(PlatformEvent::Ignored {
                    from,
                    summary: format!("{}: body is not MANSCDP: {e}", msg.summary()),
                });
                return self.respond(from, msg, 400);
            }
        };
        let findings = self.keep_findings(&sender, &decoded.findings);
        let m = decoded.message;
        if self
            .upstream
            .as_ref()
            .is_some_and(|u| u.cfg.platform_id == sender)
        {
            return self.handle_upstream_request(now, from, msg, m);
        }
        if m.root == Root::Notify && m.cmd_type == Some(CmdType::Keepalive) {
            return self.handle_keepalive(now, from, msg, &sender, &m, findings);
        }
        if !self.registrations.contains_key(&sender) {
            // A device must register before anything else (§注册).
            self.events.push_back(PlatformEvent::Rejected {
                device_id: Some(sender.clone()),
                status: 403,
                reason: format!("{} from a device that is not registered", msg.summary()),
            });
            return self.respond(from, msg, 403);
        }
        match (m.root, &m.cmd_type) {
            (Root::Response, _) => {
                if !self.cfg.faults.no_response_200 {
                    self.respond(from, msg, 200);
                }
                self.handle_answer(now, &sender, m, findings);
            }
            (Root::Notify, Some(CmdType::Alarm)) => self.handle_alarm(now, from, msg, &sender, m),
            _ => {
                self.respond(from, msg, 200);
                self.events.push_back(PlatformEvent::Ignored {
                    from,
                    summary: format!(
                        "{} {:?} from {sender}",
                        m.root.as_str(),
                        m.cmd_type.as_ref().map(|c| c.as_str())
                    ),
                });
            }
        }
    }

    /// §保活信令流程: "SIP服务器收到命令后返回200 OK".
    ///
    /// The spec says nothing about a keepalive from a device the platform
    /// does not hold registered (never registered, expired, or taken
    /// offline for missed keepalives). Decision: refuse it with 403, the
    /// code §注册 refusals use here, so the device learns at once that it
    /// must register again (§注册 "重新发起注册") instead of only after
    /// `超时次数` unanswered keepalives. A platform that answers 200 keeps
    /// a device it holds offline believing it is online.
    fn handle_keepalive(
        &mut self,
        now: Now,
        from: SocketAddr,
        msg: &SipMessage,
        sender: &str,
        m: &manscdp::Message,
        findings: Vec<manscdp::Finding>,
    ) {
        let deadline = now.mono
            + self.protocol(self.cfg.keepalive_interval * self.cfg.keepalive_timeout_count.max(1));
        match self.registrations.get_mut(sender) {
            Some(r) => {
                r.keepalive_deadline = deadline;
                r.last_keepalive = Some(now.mono);
                let status = match &m.body {
                    manscdp::Body::Keepalive(k) => {
                        k.status.as_ref().map(|s| s.as_str().to_string())
                    }
                    _ => None,
                };
                self.events.push_back(PlatformEvent::Keepalive {
                    device_id: sender.to_string(),
                    status,
                    findings,
                });
                if !self.cfg.faults.no_keepalive_answer {
                    self.respond(from, msg, 200);
                }
            }
            None if self.cfg.faults.accept_unregistered_keepalive => {
                self.respond(from, msg, 200);
            }
            None => {
                self.events.push_back(PlatformEvent::KeepaliveRefused {
                    device_id: sender.to_string(),
                    status: 403,
                });
                self.respond(from, msg, 403);
            }
        }
    }

    /// A device left (unregistered, expired, offline): tell the upper platform.
    fn device_gone(&mut self, now: Now, device_id: &str) {
        self.notify_upstream_status(now, device_id, false);
    }

    pub fn handle_timeout(&mut self, now: Now) {
        // Registrations in deadline order; an entry whose deadline has moved
        // later is put back with the new one.
        while let Some(Reverse((at, _))) = self.reg_deadlines.peek() {
            if *at > now.mono {
                break;
            }
            let Some(Reverse((at, d))) = self.reg_deadlines.pop() else {
                break;
            };
            if self.reg_scheduled.get(&d) != Some(&at) {
                continue; // superseded by an earlier entry for the same device
            }
            self.reg_scheduled.remove(&d);
            let Some(r) = self.registrations.get(&d) else {
                continue;
            };
            if r.expires_at <= now.mono {
                self.registrations.remove(&d);
                self.events.push_back(PlatformEvent::Expired {
                    device_id: d.clone(),
                });
                self.device_gone(now, &d);
            } else if r.keepalive_deadline <= now.mono && !self.cfg.faults.no_offline_detection {
                // §保活: "心跳接收方在心跳发送方上线状态下，检测到连续超时达到超时次数认为心跳发送方离线".
                self.registrations.remove(&d);
                self.nonces.remove(&d);
                self.events.push_back(PlatformEvent::Offline {
                    device_id: d.clone(),
                });
                self.device_gone(now, &d);
            } else {
                self.schedule_registration(&d);
            }
        }
        self.tick_transactions(now);
        self.tick_queries(now);
        self.tick_subscriptions(now);
        self.tick_upstream(now);
        self.drain_upstream(now);
        self.tick_media(now);
    }

    fn tick_transactions(&mut self, now: Now) {
        let mut i = 0;
        while i < self.txs.len() {
            match self.txs[i].tick(now.mono) {
                Tick::Nothing => i += 1,
                Tick::Retransmit => {
                    let t = &self.txs[i];
                    self.transmits.push_back(Transmit {
                        to: t.to,
                        bytes: t.bytes.clone(),
                    });
                    i += 1;
                }
                Tick::TimedOut => {
                    let tx = self.txs.remove(i);
                    match tx.purpose {
                        // A missed keepalive is counted when the next one is due.
                        Purpose::Keepalive => {}
                        Purpose::Query { sn } => {
                            self.pending.remove(&sn);
                            self.failed(&tx, None);
                        }
                        Purpose::Subscribe { id, .. } => {
                            self.drop_subscription(id);
                            self.failed(&tx, None);
                        }
                        _ => self.failed(&tx, None),
                    }
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let regs = self.reg_deadlines.peek().map(|Reverse((at, _))| Some(*at));
        let txs = self.txs.iter().map(|t| Some(t.wake()));
        let pending = self.pending.values().map(|p| Some(p.deadline));
        let forwards = self.forwards.values().map(|f| Some(f.deadline));
        let subs = self.subscriptions.iter().map(|s| s.wake());
        let up = self
            .upstream
            .iter()
            .flat_map(|u| [u.dev.poll_timeout(), u.keepalive_at]);
        regs.into_iter()
            .chain(txs)
            .chain(pending)
            .chain(forwards)
            .chain(subs)
            .chain(up)
            .chain([self.media_timeout()])
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<PlatformEvent> {
        self.events.pop_front()
    }
}

/// What identifies a request's server transaction: top Via branch, CSeq,
/// Call-ID. `None` for responses and ACK.
fn server_key(m: &SipMessage) -> Option<String> {
    let method = m.method().filter(|m| *m != "ACK")?;
    let branch = m
        .headers
        .get("Via")
        .and_then(sip::Via::parse)
        .and_then(|v| v.branch().map(str::to_string))?;
    Some(format!(
        "{branch}|{}|{method}|{}",
        m.headers.get("CSeq").unwrap_or(""),
        m.call_id().unwrap_or("")
    ))
}

/// The user part of From: who sent a request.
fn from_user(m: &SipMessage) -> Option<String> {
    m.headers
        .get("From")
        .and_then(NameAddr::parse)
        .and_then(|n| n.uri.user)
}
