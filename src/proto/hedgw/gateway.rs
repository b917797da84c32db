//! The gateway side of a HEDGW connection (HEDGW in §5.2): answers
//! DevLoginReq (§5.2.1), PING (§5.2.2), judges media (§5.2.3), and sends
//! server and app commands (§5.2.8-5.2.10). The reference gateway and
//! camcert testing a camera both run it.
//!
//! Drive it with [`Gateway::handle_input`] (stream bytes as read, the
//! time with them) and [`Gateway::handle_timeout`] at
//! [`Gateway::poll_timeout`]; drain [`Gateway::poll_transmit`] and
//! [`Gateway::poll_event`] after each call.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::frame::{self, FrameDecoder};
use super::media::MediaCheck;
use super::msg::{self, result};
use super::wire::{self, Decoded};
use super::{clause, DevLoginReq, DevLoginResp, FindingCode, HedgwMessage, MessageType};
use crate::finding::Finding;
use crate::proto::Now;

/// Deliberate faults of the reference gateway, each breaking one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayFaults {
    /// Never answers DevLoginReq.
    pub no_login_response: bool,
    /// Answers a correct login with result 2001.
    pub refuse_login: bool,
    /// Leaves ping_pong_span out of a successful DevLoginResp.
    pub no_ping_pong_span: bool,
    /// Never answers PING.
    pub no_pong: bool,
    /// Adds field 15 (not in 附录D) to DevLoginResp.
    pub unknown_field: bool,
    /// Accepts plain TCP without TLS (the edge reads it).
    pub plain_tcp: bool,
    /// Waits for any announced frame length, up to 4 GiB.
    pub no_frame_limit: bool,
}

impl GatewayFaults {
    pub const NAMES: &'static [&'static str] = &[
        "no-login-response",
        "refuse-login",
        "no-ping-pong-span",
        "no-pong",
        "unknown-field",
        "plain-tcp",
        "no-frame-limit",
    ];

    /// Switch a fault on by name; false for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "no-login-response" => &mut self.no_login_response,
            "refuse-login" => &mut self.refuse_login,
            "no-ping-pong-span" => &mut self.no_ping_pong_span,
            "no-pong" => &mut self.no_pong,
            "unknown-field" => &mut self.unknown_field,
            "plain-tcp" => &mut self.plain_tcp,
            "no-frame-limit" => &mut self.no_frame_limit,
            _ => return false,
        };
        *f = true;
        true
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Credentials a login must carry; `None` accepts any.
    pub access_key: Option<String>,
    pub access_secret: Option<String>,
    pub device_token: Option<String>,
    /// Result for a login with the right credentials: 0, or 2008/2026 to
    /// see how the TD handles a refusal.
    pub login_result: u32,
    pub ping_pong_span: u32,
    /// 0 trial, 1 cloud plan, 2 expired, 3 event recording.
    pub device_status: u32,
    pub sd_upload_mode: Option<u32>,
    pub person_count_span: Option<u32>,
    /// Missed spans before the gateway gives a TD up.
    pub missed_pings_to_close: u32,
    pub max_frame: usize,
    pub faults: GatewayFaults,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            access_key: None,
            access_secret: None,
            device_token: None,
            login_result: result::OK,
            ping_pong_span: 30,
            device_status: 1,
            sd_upload_mode: Some(1),
            person_count_span: None,
            missed_pings_to_close: 3,
            max_frame: frame::DEFAULT_MAX_FRAME,
            faults: GatewayFaults::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum GatewayEvent {
    /// A message from the TD, with what decoding found.
    Received(Decoded),
    /// A message this side sent.
    Sent(HedgwMessage),
    /// The TD logged in.
    LoggedIn(DevLoginReq),
    /// A rule of the exchange broken (not of one message's encoding).
    Finding(Finding),
    /// The connection is to be closed.
    Closed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitLogin,
    Online,
    Closed,
}

pub struct Gateway {
    pub cfg: GatewayConfig,
    decoder: FrameDecoder,
    state: State,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<GatewayEvent>,
    ping_deadline: Option<Instant>,
    missed: u32,
    pub media: MediaCheck,
    media_reported: usize,
    pub login: Option<DevLoginReq>,
}

impl Gateway {
    pub fn new(cfg: GatewayConfig) -> Gateway {
        let max = if cfg.faults.no_frame_limit {
            u32::MAX as usize
        } else {
            cfg.max_frame
        };
        Gateway {
            decoder: FrameDecoder::new(max),
            cfg,
            state: State::AwaitLogin,
            out: VecDeque::new(),
            events: VecDeque::new(),
            ping_deadline: None,
            missed: 0,
            media: MediaCheck::default(),
            media_reported: 0,
            login: None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn is_online(&self) -> bool {
        self.state == State::Online
    }

    fn close(&mut self, why: String) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.ping_deadline = None;
            self.events.push_back(GatewayEvent::Closed(why));
        }
    }

    /// Queue a message to the TD.
    pub fn send(&mut self, m: HedgwMessage) {
        if self.state == State::Closed {
            return;
        }
        if let Some(c) = m.dev_server_cmd.as_ref().filter(|c| c.r#type == 7) {
            self.media.event_plan = c.device_status == Some(3);
        }
        self.out.push_back(frame::encode(&m));
        self.events.push_back(GatewayEvent::Sent(m));
    }

    /// Queue bytes as they are (a suite's deliberately broken message).
    pub fn send_raw(&mut self, framed: Vec<u8>) {
        self.out.push_back(framed);
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Now, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.decoder.push(data);
        loop {
            match self.decoder.next_frame() {
                Ok(Some(f)) => self.handle_frame(now, &f),
                Ok(None) => break,
                Err(e) => {
                    self.events.push_back(GatewayEvent::Finding(e.finding()));
                    self.close(e.to_string());
                    break;
                }
            }
            if self.state == State::Closed {
                break;
            }
        }
    }

    /// The connection ended.
    pub fn handle_eof(&mut self) {
        if let Some(f) = self.decoder.finish() {
            self.events.push_back(GatewayEvent::Finding(f));
        }
        self.close("the TD closed the connection".into());
    }

    fn handle_frame(&mut self, now: Now, payload: &[u8]) {
        let d = wire::decode(payload);
        let t = d.message_type();
        let m = d.message.clone();
        self.events.push_back(GatewayEvent::Received(d));
        match (self.state, t) {
            (State::AwaitLogin, Some(MessageType::DevLoginReq)) => {
                let req = m.dev_login_req.unwrap_or_default();
                for f in msg::check_login_req(&req) {
                    self.events.push_back(GatewayEvent::Finding(f));
                }
                self.answer_login(now, req);
            }
            (State::AwaitLogin, _) => {
                self.events
                    .push_back(GatewayEvent::Finding(FindingCode::UnexpectedMessage.error(
                        clause::LOGIN,
                        format!(
                            "{} before DevLoginReq: a TD logs in first",
                            t.map(|t| t.as_str_name()).unwrap_or("an unknown message")
                        ),
                    )));
            }
            (State::Online, Some(MessageType::Ping)) => {
                self.missed = 0;
                self.ping_deadline = Some(now.mono + self.ping_window());
                if !self.cfg.faults.no_pong {
                    let id = m.ping.map(|p| p.id).unwrap_or(0);
                    self.send(msg::pong(id));
                }
            }
            (State::Online, Some(MessageType::TdMediaPackage)) => {
                if let Some(p) = &m.td_media_package {
                    self.media.push(p);
                    let new: Vec<Finding> = self.media.findings()[self.media_reported..].to_vec();
                    self.media_reported = self.media.findings().len();
                    for f in new {
                        self.events.push_back(GatewayEvent::Finding(f));
                    }
                }
            }
            (State::Online, Some(MessageType::DevEventCmd)) => {
                if let Some(e) = &m.dev_event_cmd {
                    for f in msg::check_event(e) {
                        self.events.push_back(GatewayEvent::Finding(f));
                    }
                }
            }
            (State::Online, Some(MessageType::DevLoginReq)) => {
                self.events.push_back(GatewayEvent::Finding(
                    FindingCode::UnexpectedMessage.warning(
                        clause::LOGIN,
                        "a second DevLoginReq on a connection already logged in",
                    ),
                ));
            }
            (
                State::Online,
                Some(
                    MessageType::DevLoginResp
                    | MessageType::DevServerCmd
                    | MessageType::DevAppCmd
                    | MessageType::Pong,
                ),
            ) => {
                self.events
                    .push_back(GatewayEvent::Finding(FindingCode::UnexpectedMessage.error(
                        clause::CHANNEL,
                        format!(
                            "{} goes from HEDGW to the TD, not from the TD",
                            t.map(|t| t.as_str_name()).unwrap_or("?")
                        ),
                    )));
            }
            _ => {}
        }
    }

    /// How long after a PING (or the login) the next one may come: the
    /// span and half of it again.
    fn ping_window(&self) -> Duration {
        let span = Duration::from_secs(u64::from(self.cfg.ping_pong_span.max(1)));
        span + span / 2
    }

    fn answer_login(&mut self, now: Now, req: DevLoginReq) {
        if self.cfg.faults.no_login_response {
            return;
        }
        let creds_ok = self
            .cfg
            .access_key
            .as_ref()
            .is_none_or(|k| *k == req.access_key)
            && self
                .cfg
                .access_secret
                .as_ref()
                .is_none_or(|k| *k == req.access_secret)
            && self
                .cfg
                .device_token
                .as_ref()
                .is_none_or(|k| *k == req.device_token);
        let result = if !creds_ok || self.cfg.faults.refuse_login {
            result::AUTH_FAILED
        } else {
            self.cfg.login_result
        };
        let mut resp = DevLoginResp {
            result,
            ..Default::default()
        };
        if result == result::OK {
            let ms = now.wall.and_utc().timestamp_millis().max(0);
            resp.server_time = Some(ms.to_string());
            resp.device_status = Some(self.cfg.device_status);
            resp.ping_pong_span =
                (!self.cfg.faults.no_ping_pong_span).then_some(self.cfg.ping_pong_span);
            resp.sd_upload_mode = self.cfg.sd_upload_mode;
            resp.person_count_span = self.cfg.person_count_span;
        }
        let m = msg::login_resp(resp);
        if self.cfg.faults.unknown_field {
            // Field 15 of HEDGWMessage, varint 1: not in 附录D.
            let mut b = wire::encode(&m);
            b.extend_from_slice(&[0x78, 0x01]);
            self.out.push_back(frame::frame_bytes(&b));
            self.events.push_back(GatewayEvent::Sent(m));
        } else {
            self.send(m);
        }
        if result == result::OK {
            self.media.event_plan = self.cfg.device_status == 3;
            self.media.sd_channel = req.channel_id == 1;
            self.state = State::Online;
            self.ping_deadline = Some(now.mono + self.ping_window());
            self.login = Some(req.clone());
            self.events.push_back(GatewayEvent::LoggedIn(req));
        } else {
            self.close(format!("login refused with result {result}"));
        }
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if let Some(d) = self.ping_deadline {
            if now.mono >= d {
                self.missed += 1;
                self.events
                    .push_back(GatewayEvent::Finding(FindingCode::PingMissed.error(
                        clause::PING,
                        format!(
                        "no PING within {} s of the last (ping_pong_span {} s); {} span(s) missed",
                        self.ping_window().as_secs_f32(),
                        self.cfg.ping_pong_span,
                        self.missed
                    ),
                    )));
                if self.missed >= self.cfg.missed_pings_to_close {
                    self.close(format!("{} heartbeats missed", self.missed));
                } else {
                    self.ping_deadline =
                        Some(d + Duration::from_secs(u64::from(self.cfg.ping_pong_span.max(1))));
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ping_deadline
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }
}
