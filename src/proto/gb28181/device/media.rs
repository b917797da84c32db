//! The media sessions the device hosts: 实时预览, 录像回放 and 文件下载 answered as
//! [`MediaUas`] machines, and the audio INVITE of §语音广播 placed as a
//! [`MediaUac`]. Each is keyed by its Call-ID; every message with that Call-ID
//! (ACK, BYE, INFO, CANCEL, the answers to the session's BYE and MediaStatus)
//! goes to it, not to the rest of the device. Its transmits join the device's,
//! its events surface as [`DeviceEvent::Session`]; the driver's media side
//! answers with [`Device::apply_session`].
//!
//! Decision: an INVITE names its target in the Request-URI user ("INVITE
//! sip:媒体流发送者设备编码@..."): this device or one of its video channels.
//! Any other ID is answered 404, like a query for an ID the device does not have.
//! A finished session stays 64*T1 to answer retransmissions, then is dropped.
//! A reboot does not end the sessions (their media workers end them).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::{Device, DeviceEvent};
use crate::proto::gb28181::manscdp::ResultType;
use crate::proto::gb28181::session::{
    BroadcastTargetConfig, MediaUac, MediaUas, SessionCommand, SessionEvent, Timers, UasConfig,
    UasFaults,
};
use crate::proto::sip::{SipMessage, SipUri};
use crate::proto::{Now, Transmit};

/// How long a finished session is kept for retransmissions (64*T1).
const LINGER: Duration = Duration::from_secs(32);

enum Machine {
    /// A session the platform placed (live, playback, download).
    Answer(Box<MediaUas>),
    /// The device's broadcast audio INVITE.
    Call(Box<MediaUac>),
}

impl Machine {
    fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        match self {
            Machine::Answer(m) => m.handle_message(now, from, msg),
            Machine::Call(m) => m.handle_message(now, from, msg),
        }
    }

    fn handle_timeout(&mut self, now: Now) {
        match self {
            Machine::Answer(m) => m.handle_timeout(now),
            Machine::Call(m) => m.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Answer(m) => m.poll_timeout(),
            Machine::Call(m) => m.poll_timeout(),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Machine::Answer(m) => m.poll_transmit(),
            Machine::Call(m) => m.poll_transmit(),
        }
    }

    fn poll_event(&mut self) -> Option<SessionEvent> {
        match self {
            Machine::Answer(m) => m.poll_event(),
            Machine::Call(m) => m.poll_event(),
        }
    }

    fn apply(&mut self, now: Now, cmd: SessionCommand) {
        match self {
            Machine::Answer(m) => m.apply(now, cmd),
            Machine::Call(m) => m.apply(now, cmd),
        }
    }

    fn hangup(&mut self, now: Now) {
        match self {
            Machine::Answer(m) => m.hangup(now),
            Machine::Call(m) => m.hangup(now),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Machine::Answer(m) => m.is_finished(),
            Machine::Call(m) => m.is_finished(),
        }
    }
}

/// One hosted session.
pub(super) struct Hosted {
    call_id: String,
    machine: Machine,
    /// When it finished; it is dropped `LINGER` later.
    finished_at: Option<Instant>,
}

impl Device {
    /// Hand `msg` to the session whose Call-ID it carries; `false` if none has it.
    pub(super) fn route_to_session(
        &mut self,
        now: Now,
        from: SocketAddr,
        msg: &SipMessage,
    ) -> bool {
        let Some(call_id) = msg.call_id() else {
            return false;
        };
        let Some(i) = self.sessions.iter().position(|s| s.call_id == call_id) else {
            return false;
        };
        self.sessions[i].machine.handle_message(now, from, msg);
        self.pump(now, i);
        true
    }

    /// An INVITE outside any session: answer it as a [`MediaUas`] when it is for
    /// this device or one of its video channels, 404 otherwise.
    pub(super) fn on_invite(&mut self, now: Now, from: SocketAddr, req: &SipMessage) {
        let target = req
            .uri()
            .and_then(SipUri::parse)
            .and_then(|u| u.user)
            .unwrap_or_default();
        let ours = target == self.cfg.device_id
            || self
                .cam
                .get(&self.cfg)
                .channels
                .iter()
                .any(|c| c.id == target)
            || self.cfg.faults.answer_unknown_device;
        let Some(call_id) = req.call_id().map(str::to_string).filter(|_| ours) else {
            return self.respond(now, from, req, 404, &[]);
        };
        let live = self
            .sessions
            .iter()
            .filter(|s| s.finished_at.is_none())
            .count();
        if live >= self.cfg.max_sessions {
            // RFC 3261 §21.4.24 486 Busy Here: reachable, but not now.
            self.events.push_back(DeviceEvent::BadMessage {
                reason: format!(
                    "INVITE {call_id}: {live} media sessions already under way (max_sessions {}); answered 486",
                    self.cfg.max_sessions
                ),
            });
            return self.respond(now, from, req, 486, &[]);
        }
        let mut cfg = UasConfig::new(&self.cfg.device_id, self.cfg.local, self.media_ip());
        cfg.transport = self.cfg.transport;
        cfg.user_agent = self.cfg.user_agent.to_string();
        cfg.faults = UasFaults {
            wrong_ssrc: self.cfg.faults.wrong_ssrc,
            ignore_bye: self.cfg.faults.ignore_bye,
            answer_without_direction: self.cfg.faults.no_direction,
            ..UasFaults::default()
        };
        cfg.seed = self.rng.gen();
        let mut uas = MediaUas::new(cfg);
        uas.handle_message(now, from, req);
        self.sessions.push(Hosted {
            call_id,
            machine: Machine::Answer(Box::new(uas)),
            finished_at: None,
        });
        self.pump(now, self.sessions.len() - 1);
    }

    /// §语音广播 5: the platform took the Broadcast Response; INVITE the voice
    /// source for audio. The port is 0: the driver opens the receiving socket
    /// ([`SessionEvent::Prepare`]) and the INVITE goes out on its answer.
    pub(super) fn start_broadcast_audio(&mut self, now: Now, source_id: &str) {
        let mut b = BroadcastTargetConfig::new(
            &self.cfg.device_id,
            &self.server.id,
            self.cfg.local,
            self.server.addr,
            self.media_ip(),
        );
        b.domain = self.cfg.domain.to_string();
        b.transport = self.cfg.transport;
        b.user_agent = self.cfg.user_agent.to_string();
        b.result = ResultType::Ok;
        b.charset = self.cfg.charset;
        b.timers = Timers::default();
        let seed = self.rng.gen();
        let mut uac = b.audio_call(source_id, 0, self.cfg.broadcast_setup, seed);
        uac.start(now);
        self.sessions.push(Hosted {
            call_id: uac.call_id().to_string(),
            machine: Machine::Call(Box::new(uac)),
            finished_at: None,
        });
        self.pump(now, self.sessions.len() - 1);
    }

    fn media_ip(&self) -> std::net::IpAddr {
        self.cfg.media_ip.unwrap_or(self.cfg.local.ip())
    }

    /// Move what session `i` has to send and report to the device's queues.
    fn pump(&mut self, now: Now, i: usize) {
        let s = &mut self.sessions[i];
        while let Some(t) = s.machine.poll_transmit() {
            self.transmits.push_back(t);
        }
        while let Some(event) = s.machine.poll_event() {
            self.events.push_back(DeviceEvent::Session {
                call_id: s.call_id.clone(),
                event,
            });
        }
        if s.finished_at.is_none() && s.machine.is_finished() {
            s.finished_at = Some(now.mono);
        }
    }

    /// Hand a media command to the session with this Call-ID (the media side of
    /// the driver answering a [`DeviceEvent::Session`]); ignored when there is none.
    pub fn apply_session(&mut self, now: Now, call_id: &str, cmd: SessionCommand) {
        if let Some(i) = self.sessions.iter().position(|s| s.call_id == call_id) {
            self.sessions[i].machine.apply(now, cmd);
            self.pump(now, i);
        }
    }

    /// Call-IDs of the media sessions not yet over, oldest first.
    pub fn media_sessions(&self) -> Vec<&str> {
        self.sessions
            .iter()
            .filter(|s| s.finished_at.is_none())
            .map(|s| s.call_id.as_str())
            .collect()
    }

    /// The session named by arg `call_id`, else the newest one not yet over.
    fn chosen_session(&self, args: &BTreeMap<String, String>) -> Result<usize, String> {
        match args.get("call_id") {
            Some(c) => self
                .sessions
                .iter()
                .position(|s| &s.call_id == c)
                .ok_or_else(|| format!("no media session with Call-ID {c:?}")),
            None => self
                .sessions
                .iter()
                .rposition(|s| s.finished_at.is_none())
                .ok_or_else(|| "no media session".to_string()),
        }
    }

    /// The `bye` action: end a media session with BYE (设备侧断流).
    pub(super) fn hangup_session(
        &mut self,
        now: Now,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let i = self.chosen_session(args)?;
        self.sessions[i].machine.hangup(now);
        self.pump(now, i);
        Ok(())
    }

    /// The `end-of-file` action: the file of a Playback/Download session was sent;
    /// notify MediaStatus 121 in its dialog.
    pub(super) fn session_end_of_file(
        &mut self,
        now: Now,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let i = self.chosen_session(args)?;
        let Machine::Answer(uas) = &mut self.sessions[i].machine else {
            return Err("end-of-file is for a session the device answered".into());
        };
        if !uas.end_of_file(now) {
            return Err("the session is not established (or never notifies)".into());
        }
        self.pump(now, i);
        Ok(())
    }

    pub(super) fn sessions_timeout(&mut self, now: Now) {
        for i in 0..self.sessions.len() {
            let due = self.sessions[i]
                .machine
                .poll_timeout()
                .is_some_and(|t| t <= now.mono);
            if due {
                self.sessions[i].machine.handle_timeout(now);
                self.pump(now, i);
            }
        }
        self.sessions
            .retain(|s| s.finished_at.is_none_or(|at| at + LINGER > now.mono));
    }

    pub(super) fn sessions_deadline(&self) -> Option<Instant> {
        self.sessions
            .iter()
            .filter_map(|s| match s.finished_at {
                Some(at) => Some(at + LINGER),
                None => s.machine.poll_timeout(),
            })
            .min()
    }
}
