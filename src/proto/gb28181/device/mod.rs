//! A GB/T 28181 device (camera) as a sans-IO state machine.
//!
//! It covers the device side of the signalling in `gb28181-features.txt`:
//! §注册 (digest registration, refresh, the ≥60 s retry rule, §注销) and
//! §注册重定向 (302 to another server and back), §保活 (keepalive and
//! offline detection), §设备查询 (Catalog, DeviceInfo, DeviceStatus,
//! RecordInfo, ConfigDownload, PresetQuery), §设备控制 (PTZ, TeleBoot,
//! record, guard, alarm reset, key frame, drag zoom, home position,
//! DeviceConfig with §图像抓拍), §报警事件通知, MediaStatus, §语音广播 and
//! §订阅与取订 (catalog and alarm subscriptions). It hosts the media
//! sessions of 实时预览, 录像回放 and 文件下载 and the audio INVITE of
//! §语音广播 (see `media`): their events come as [`DeviceEvent::Session`],
//! the media side answers through [`Device::apply_session`].
//!
//! Drive it like this: call [`Device::start`], then loop — send everything
//! [`Device::poll_transmit`] returns, feed received messages to
//! [`Device::handle_message_from`], and call [`Device::handle_timeout`]
//! when the instant from [`Device::poll_timeout`] has passed.
//! [`Device::poll_event`] says what happened; [`Device::trigger`] makes the
//! device act on its own (an alarm, a catalog change, a reboot). The same
//! machine is the reference camera, the simulated camera of a load run,
//! and the device camcert plays against a platform.
//!
//! Protocol intervals (keepalive, retry, subscription expiry, boot time)
//! are multiplied by `time_scale`; SIP transaction timers are not.

mod config;
mod control;
mod keepalive;
mod media;
mod model;
mod notify;
mod queries;
mod registration;
mod subscribe;
mod txn;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use config::{DeviceConfig, DeviceFaults, Text, OPTION_NAMES};
pub use model::{alarm_input_id, channel_id};

use crate::proto::gb28181::manscdp::{self, Message};
use crate::proto::gb28181::message::{build_request, with_body, RequestParams};
use crate::proto::gb28181::session::SessionEvent;
use crate::proto::sip::{self, Finding, SipMessage};
use crate::proto::{scaled, Now, Transmit, Transport};
use txn::{ClientTxn, ClientTxns, Purpose, Retransmit, ServerCache};

// `Session` carries the session's event unboxed, as the session drivers match it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEvent {
    /// The platform accepted the registration.
    Registered {
        expires: u32,
        /// The platform's `Date:` (time sync), if it sent one.
        date: Option<String>,
        findings: Vec<Finding>,
    },
    Unregistered,
    /// The platform refused (final status other than 401/2xx/3xx).
    Rejected {
        status: u16,
    },
    /// No final answer arrived (RFC 3261 Timer F).
    TimedOut,
    /// A message from the platform could not be used.
    BadMessage {
        reason: String,
    },
    /// A 302 sent the device to another server (§注册重定向).
    Redirected {
        server_id: String,
        server: SocketAddr,
        expires: Option<u32>,
    },
    /// The configured number of keepalives in a row went unanswered
    /// (§保活); the device registers again.
    PlatformOffline {
        missed: u32,
    },
    /// A control was carried out (`PTZCmd`, `RecordCmd`, `BasicParam`, ...).
    Controlled {
        command: String,
    },
    /// A control was not carried out, and why (e.g. a PTZCmd checksum).
    ControlRejected {
        reason: String,
    },
    /// The device is restarting (TeleBoot or the `reboot` action).
    Rebooting,
    Subscribed {
        event: String,
        expires: u32,
    },
    SubscriptionEnded {
        event: String,
        reason: String,
    },
    /// The platform answered an alarm with its Response (报警流程 step 3).
    AlarmAcknowledged {
        sn: Option<u64>,
        result: Option<String>,
    },
    /// A request the device sent (other than REGISTER or a keepalive) was
    /// refused or never answered.
    RequestFailed {
        method: String,
        status: Option<u16>,
    },
    /// An event of a media session the device hosts (an INVITE it answers, or
    /// its broadcast audio INVITE), with the session's Call-ID. Answer
    /// [`SessionEvent::Offer`] and [`SessionEvent::Prepare`] through
    /// [`Device::apply_session`].
    Session {
        call_id: String,
        event: SessionEvent,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    /// A REGISTER is outstanding.
    Pending {
        unregister: bool,
        authed: bool,
        branch: String,
        cseq: u32,
        retx: Retransmit,
    },
    Registered {
        refresh_at: Option<Instant>,
    },
    WaitingRetry {
        at: Instant,
    },
    /// Restarting after TeleBoot; registers again at `at`.
    Booting {
        at: Instant,
    },
    Unregistered,
}

/// A SIP server the device registers to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Server {
    id: Text,
    addr: SocketAddr,
}

/// Work the device has promised to do later.
#[derive(Debug, Clone)]
enum Later {
    /// §图像抓拍: report the pictures of this configuration.
    SnapshotFinished {
        target: String,
        session_id: String,
        count: u32,
    },
}

pub struct Device {
    cfg: DeviceConfig,
    state: State,
    /// Where registrations go now: the configured server, or the one a 302 named.
    server: Server,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// CSeq of requests outside a dialog (MESSAGE).
    msg_cseq: u32,
    /// Last MANSCDP SN the device used.
    sn: u64,
    ka: keepalive::Keepalive,
    /// What the camera has (channels, presets, alarm inputs), built the
    /// first time a request or an event looks at it: a camera that only
    /// registers and keeps alive (most of a load fleet) never needs it.
    cam: model::Model,
    txns: ClientTxns,
    answered: ServerCache,
    subs: subscribe::Subscriptions,
    later: Vec<(Instant, Later)>,
    rng: Xoshiro256PlusPlus,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DeviceEvent>,
    first_sent: bool,
    /// Media sessions, oldest first.
    sessions: Vec<media::Hosted>,
    /// Why a robustness fault made the device stop answering (until a reboot).
    hung: Option<String>,
}

impl Device {
    pub fn new(cfg: DeviceConfig) -> Device {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
        // RFC 3261 §10.2.4: one Call-ID for all registrations of a boot cycle.
        let call_id = sip::new_call_id(&mut rng);
        let from_tag = sip::new_tag(&mut rng);
        Device {
            server: Server {
                id: cfg.platform_id.clone(),
                addr: cfg.server,
            },
            cam: model::Model::default(),
            cfg,
            state: State::Idle,
            call_id,
            from_tag,
            cseq: 0,
            msg_cseq: 0,
            sn: 0,
            ka: keepalive::Keepalive::default(),
            txns: ClientTxns::default(),
            answered: ServerCache::default(),
            subs: subscribe::Subscriptions::default(),
            later: Vec::new(),
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            first_sent: false,
            sessions: Vec::new(),
            hung: None,
        }
    }

    /// Why the device stopped answering, if a robustness fault made it.
    pub fn hung(&self) -> Option<&str> {
        self.hung.as_deref()
    }

    fn hang(&mut self, why: String) {
        self.events.push_back(DeviceEvent::BadMessage {
            reason: format!("stopped answering: {why}"),
        });
        self.hung = Some(why);
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// The ID and address of the server the device registers to now.
    pub fn server(&self) -> (&str, SocketAddr) {
        (&self.server.id, self.server.addr)
    }

    /// Number of live subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Begin registering.
    pub fn start(&mut self, now: Now) {
        self.send_register(now, false, None);
    }

    /// Carry out a named action (suite `trigger` steps). See [`ACTIONS`].
    pub fn trigger(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        match action {
            "register" | "restart" => self.start(now),
            "unregister" => self.unregister(now),
            "reboot" => self.reboot(now),
            "keepalive" => self.send_keepalive(now),
            "alarm" => self.raise_alarm(now, args)?,
            "media-status" => self.media_status(now, args)?,
            "catalog-change" => self.catalog_change(now, args)?,
            "subdevice-fault" => self.subdevice_fault(now, args, true)?,
            "subdevice-recover" => self.subdevice_fault(now, args, false)?,
            "bye" => self.hangup_session(now, args)?,
            "end-of-file" => self.session_end_of_file(now, args)?,
            other => return Err(format!("unknown action {other:?} ({})", ACTIONS.join(", "))),
        }
        Ok(())
    }

    /// Feed a message that came from the server the device registers to.
    pub fn handle_message(&mut self, now: Now, msg: &SipMessage) {
        let from = self.server.addr;
        self.handle_message_from(now, from, msg)
    }

    /// Feed a message received from `from`; answers to requests go back there.
    pub fn handle_message_from(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        if self.hung.is_some() {
            return;
        }
        if self.route_to_session(now, from, msg) {
            return;
        }
        if msg.is_request() {
            self.on_request(now, from, msg);
        } else {
            self.on_response(now, msg);
        }
    }

    fn on_response(&mut self, now: Now, msg: &SipMessage) {
        if self.on_register_response(now, msg) {
            return;
        }
        let Some((purpose, code)) = self.txns.answer(now.mono, msg) else {
            return;
        };
        if let (Purpose::Alarm { .. }, true) = (&purpose, (200..300).contains(&code)) {
            self.alarm_ack_in_200(msg);
        }
        self.on_txn_done(now, purpose, Some(code));
    }

    /// A client transaction ended with `code` (`None`: Timer F).
    fn on_txn_done(&mut self, now: Now, purpose: Purpose, code: Option<u16>) {
        let ok = code.is_some_and(|c| (200..300).contains(&c));
        match purpose {
            Purpose::Keepalive { nth } => self.keepalive_answered(nth, ok),
            Purpose::Notify { call_id } => {
                if !ok {
                    // RFC 6665 §4.2.2: a 481 (or a timeout) ends the subscription.
                    if matches!(code, Some(481) | None) {
                        self.subs.end(&call_id, "notify refused", &mut self.events);
                    }
                    self.events.push_back(DeviceEvent::RequestFailed {
                        method: "NOTIFY".into(),
                        status: code,
                    });
                }
            }
            // §语音广播: the platform took the Response; the audio INVITE follows.
            Purpose::BroadcastResponse { source_id } if ok => {
                if let Some(source) = source_id {
                    self.start_broadcast_audio(now, &source);
                }
            }
            Purpose::Response
            | Purpose::BroadcastResponse { .. }
            | Purpose::Alarm { .. }
            | Purpose::Report => {
                if !ok {
                    self.events.push_back(DeviceEvent::RequestFailed {
                        method: "MESSAGE".into(),
                        status: code,
                    });
                }
            }
        }
    }

    fn on_request(&mut self, now: Now, from: SocketAddr, req: &SipMessage) {
        if matches!(self.state, State::Booting { .. }) {
            return; // restarting: nothing listens
        }
        // RFC 3261 §8.1.1 makes these mandatory in every request; §8.2 has
        // the UAS refuse a request it cannot process with 400. Without Via
        // there is nowhere to send the answer.
        let missing = ["Via", "From", "To", "Call-ID", "CSeq"]
            .into_iter()
            .find(|h| req.headers.get(h).is_none());
        if let Some(h) = missing {
            if !self.cfg.faults.robust_accept_garbage {
                self.events.push_back(DeviceEvent::BadMessage {
                    reason: format!("{} request without {h}", req.method().unwrap_or("?")),
                });
                if h != "Via" {
                    self.respond(now, from, req, 400, &[]);
                }
                return;
            }
        }
        if self.cfg.faults.robust_crash_no_y
            && req.method() == Some("INVITE")
            && !req
                .body
                .split(|b| *b == b'\n')
                .any(|l| l.starts_with(b"y="))
        {
            return self.hang("an INVITE whose SDP has no y= line".into());
        }
        let key = ServerCache::key(req);
        if let Some(k) = &key {
            if let Some(t) = self.answered.lookup(now.mono, k) {
                // A retransmission: answer again, do not act again.
                self.transmits.push_back(t);
                return;
            }
        }
        match req.method().unwrap_or("") {
            "ACK" => {}
            "INVITE" => self.on_invite(now, from, req),
            "MESSAGE" => self.on_message_request(now, from, req),
            "SUBSCRIBE" => self.on_subscribe(now, from, req),
            "OPTIONS" => self.respond(now, from, req, 200, &[]),
            _ => self.respond(now, from, req, 501, &[]),
        }
    }

    /// Answer `req` with `code` and `headers`; remembered for retransmissions.
    fn respond(
        &mut self,
        now: Now,
        to: SocketAddr,
        req: &SipMessage,
        code: u16,
        headers: &[(&str, String)],
    ) {
        let tag = sip::new_tag(&mut self.rng);
        self.respond_tagged(now, to, req, code, &tag, headers);
    }

    fn respond_tagged(
        &mut self,
        now: Now,
        to: SocketAddr,
        req: &SipMessage,
        code: u16,
        tag: &str,
        headers: &[(&str, String)],
    ) {
        let mut r = sip::response_to(req, code, Some(tag));
        for (k, v) in headers {
            r.headers.push(k, v.clone());
        }
        r.headers
            .push("User-Agent", self.cfg.user_agent.to_string());
        let t = Transmit {
            to,
            bytes: r.with_content_length().to_bytes(),
        };
        if let Some(k) = ServerCache::key(req) {
            self.answered.store(now.mono, k, t.clone());
        }
        self.transmits.push_back(t);
    }

    fn next_sn(&mut self) -> u64 {
        self.sn += 1;
        self.sn
    }

    /// Every MANSCDP body the device's signalling sends goes through here, so
    /// the MANSCDP quirk faults apply to all of them.
    fn encode(&self, m: &Message) -> Vec<u8> {
        let f = &self.cfg.faults;
        let quirks = manscdp::Quirks {
            attribute_fields: f.attribute_fields,
            lower_case_names: f.element_case,
            no_declaration: f.no_xml_declaration,
            wrong_encoding_declared: f.wrong_encoding_declared,
        };
        m.encode_with_quirks(self.cfg.charset, quirks)
    }

    fn udp(&self) -> bool {
        self.cfg.transport == Transport::Udp
    }

    fn protocol(&self, d: Duration) -> Duration {
        scaled(d, self.cfg.time_scale)
    }

    /// Send a MANSCDP MESSAGE to the server, outside any dialog.
    fn send_message(&mut self, now: Now, body: &Message, purpose: Purpose) {
        let bytes = self.encode(body);
        self.msg_cseq += 1;
        let call_id = sip::new_call_id(&mut self.rng);
        let from_tag = sip::new_tag(&mut self.rng);
        let branch = sip::new_branch(&mut self.rng);
        let server = self.server.clone();
        let m = build_request(&RequestParams {
            method: "MESSAGE",
            from_id: &self.cfg.device_id,
            to_id: &server.id,
            domain: &self.cfg.domain,
            local: self.cfg.local,
            remote: server.addr,
            transport: self.cfg.transport,
            call_id: &call_id,
            from_tag: &from_tag,
            to_tag: None,
            cseq: self.msg_cseq,
            branch: &branch,
            user_agent: &self.cfg.user_agent,
        });
        let m = with_body(m, manscdp::CONTENT_TYPE, bytes);
        self.start_txn(now, m, server.addr, branch, purpose);
    }

    fn start_txn(
        &mut self,
        now: Now,
        m: SipMessage,
        to: SocketAddr,
        branch: String,
        purpose: Purpose,
    ) {
        let bytes = m.to_bytes();
        let cseq = m.cseq().map(|c| c.seq).unwrap_or(0);
        let method = m.method().unwrap_or("MESSAGE").to_string();
        self.transmits.push_back(Transmit {
            to,
            bytes: bytes.clone(),
        });
        self.txns.push(ClientTxn {
            branch,
            cseq,
            method,
            retx: Retransmit::new(now.mono, to, bytes),
            purpose,
        });
    }

    /// Restart: drop dialogs and transactions, register again after `boot_time`.
    fn reboot(&mut self, now: Now) {
        self.events.push_back(DeviceEvent::Rebooting);
        self.hung = None;
        self.answered = ServerCache::default();
        self.keepalive_stop();
        self.subs.clear();
        self.txns.clear();
        self.later.clear();
        if let Some(cam) = self.cam.built_mut() {
            cam.alarming = false;
        }
        self.server = Server {
            id: self.cfg.platform_id.clone(),
            addr: self.cfg.server,
        };
        self.new_call();
        self.state = State::Booting {
            at: now.mono + self.protocol(self.cfg.boot_time),
        };
    }

    /// A new boot cycle or registrar: fresh Call-ID and From tag.
    fn new_call(&mut self) {
        self.call_id = sip::new_call_id(&mut self.rng);
        self.from_tag = sip::new_tag(&mut self.rng);
    }

    /// Call when the instant from [`Device::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.hung.is_some() {
            return;
        }
        self.registration_timeout(now);
        let udp = self.udp();
        for t in self.txns.poll(now.mono, udp, &mut self.transmits) {
            self.on_txn_done(now, t.purpose, None);
        }
        self.keepalive_timeout(now);
        let expired = self
            .subs
            .expire(now.mono, self.cfg.faults.subscription_never_expires);
        for e in expired {
            self.events.push_back(DeviceEvent::SubscriptionEnded {
                event: e,
                reason: "expired".into(),
            });
        }
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|(at, _)| *at <= now.mono);
        self.later = keep;
        for (_, l) in due {
            self.do_later(now, l);
        }
        self.sessions_timeout(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.hung.is_some() {
            return None;
        }
        let udp = self.udp();
        let reg = match &self.state {
            State::Pending { retx, .. } => Some(retx.deadline(udp)),
            State::Registered { refresh_at } => *refresh_at,
            State::WaitingRetry { at } | State::Booting { at } => Some(*at),
            State::Idle | State::Unregistered => None,
        };
        [
            reg,
            self.txns.deadline(udp),
            self.ka.next_due,
            self.subs
                .deadline()
                .filter(|_| !self.cfg.faults.subscription_never_expires),
            self.later.iter().map(|(at, _)| *at).min(),
            self.sessions_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        if self.transmits.is_empty() {
            // An idle device holds no queue: a fleet of thousands would
            // otherwise keep each one's high-water mark.
            self.transmits = VecDeque::new();
        }
        Some(self.header_faults(t))
    }

    /// The SIP header faults, applied to everything on its way out (first
    /// sends and retransmissions alike).
    fn header_faults(&self, mut t: Transmit) -> Transmit {
        let f = &self.cfg.faults;
        if !(f.via_udp_on_tcp
            || f.no_to_tag
            || f.no_from_tag
            || f.no_content_type
            || f.request_uri_domain
            || f.ssrc_9_digits)
        {
            return t;
        }
        let Ok(p) = SipMessage::parse(&t.bytes) else {
            return t;
        };
        let mut m = p.message;
        let untag = |v: &str| -> String {
            v.split(';')
                .filter(|p| !p.trim().to_ascii_lowercase().starts_with("tag="))
                .collect::<Vec<_>>()
                .join(";")
        };
        let method = m.cseq().map(|c| c.method).unwrap_or_default();
        if m.is_request() {
            if f.via_udp_on_tcp && self.cfg.transport == Transport::Tcp {
                if let Some(v) = m.headers.get("Via") {
                    let v = v.replacen("SIP/2.0/TCP", "SIP/2.0/UDP", 1);
                    m.headers.set("Via", v);
                }
            }
            let outside_dialog = m
                .headers
                .get("To")
                .and_then(sip::NameAddr::parse)
                .is_some_and(|n| n.tag().is_none());
            if f.no_content_type && method == "MESSAGE" && !m.body.is_empty() {
                m.headers.remove("Content-Type");
            }
            if f.no_from_tag && method == "MESSAGE" && outside_dialog {
                if let Some(v) = m.headers.get("From") {
                    let v = untag(v);
                    m.headers.set("From", v);
                }
            }
            if f.request_uri_domain && method == "MESSAGE" {
                address_by_domain(&mut m);
            }
        } else {
            if f.no_to_tag && method == "MESSAGE" && m.status().is_some_and(|s| s >= 200) {
                if let Some(v) = m.headers.get("To") {
                    let v = untag(v);
                    m.headers.set("To", v);
                }
            }
            if f.ssrc_9_digits && method == "INVITE" {
                unpad_ssrc(&mut m);
            }
        }
        t.bytes = m.to_bytes();
        t
    }

    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        let e = self.events.pop_front()?;
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        Some(e)
    }
}

/// `request-uri-domain`: the Request-URI and To users that are a 20-digit
/// ID become its first 10 digits, the SIP domain.
fn address_by_domain(m: &mut SipMessage) {
    let domain_of = |text: &str| -> Option<String> {
        let user = sip::NameAddr::parse(text)
            .map(|n| n.uri)
            .or_else(|| sip::SipUri::parse(text))?
            .user?;
        if user.len() != 20 || !user.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(text.replacen(&format!("{user}@"), &format!("{}@", &user[..10]), 1))
    };
    if let sip::StartLine::Request { uri, .. } = &mut m.start {
        if let Some(u) = domain_of(uri) {
            *uri = u;
        }
    }
    if let Some(to) = m.headers.get("To").and_then(domain_of) {
        m.headers.set("To", to);
    }
}

/// `ssrc-9-digits`: an SDP body's `y=` written as a number without its
/// leading zero (a live stream's SSRC then has 9 digits).
fn unpad_ssrc(m: &mut SipMessage) {
    let Ok(text) = std::str::from_utf8(&m.body) else {
        return;
    };
    if !text.contains("y=0") {
        return;
    }
    let body: String = text
        .split_inclusive('\n')
        .map(|l| match l.strip_prefix("y=0") {
            Some(rest) => format!("y={rest}"),
            None => l.to_string(),
        })
        .collect();
    m.body = body.into_bytes();
    m.headers.set("Content-Length", m.body.len().to_string());
}

/// Actions [`Device::trigger`] knows, with their arguments.
pub const ACTIONS: &[&str] = &[
    "register",
    "unregister",
    "restart",
    "reboot",
    "keepalive",
    "alarm (priority, method, type, description, device)",
    "media-status (device, notify_type)",
    "catalog-change (event: ADD|DEL|ON|OFF|VLOST|DEFECT|UPDATE, channel)",
    "subdevice-fault (channel or id)",
    "subdevice-recover (channel or id)",
    "bye (call_id; default the newest media session)",
    "end-of-file (call_id; default the newest media session)",
];
