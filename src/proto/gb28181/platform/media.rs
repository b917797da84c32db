//! The platform's media sessions (`gb28181-features.txt` 实时预览, 录像回放,
//! 文件下载, 语音对讲, 语音广播, 断流; `platform-cascade-sip.txt` 实时视频).
//!
//! The platform places calls to a registered device as [`MediaUac`]s (the
//! `play`, `playback`, `download` and `talk` trigger actions), controls them
//! (`pause`, `resume`, `scale`, `seek`, `teardown`, `bye`), and runs 语音广播 as
//! the voice source with a [`BroadcastSource`] (`broadcast`), whose audio
//! INVITE from the device a hosted [`MediaUas`](crate::proto::gb28181::session::MediaUas)
//! answers. Each session is known by its Call-ID: every message with that
//! Call-ID goes to it, its events come out as [`PlatformEvent::Session`], and
//! the media side of the driver answers through [`Platform::apply_session`].
//!
//! A calling session's receiving media has port 0 in the request, so the
//! session asks for a socket first
//! ([`SessionEvent::Prepare`](crate::proto::gb28181::session::SessionEvent::Prepare));
//! the driver's media worker opens it and answers [`SessionCommand::Accept`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::Rng;

use super::{from_user, Platform, PlatformEvent};
use crate::proto::gb28181::manscdp::{self, Body};
use crate::proto::gb28181::session::finding::BROADCAST_FLOW;
use crate::proto::gb28181::session::mansrtsp::Range;
use crate::proto::gb28181::session::{
    BroadcastEvent, BroadcastSource, BroadcastSourceConfig, CallRequest, MediaUac, SessionCommand,
    UacConfig,
};
use crate::proto::sdp::{Direction, Setup, Ssrc, Timing};
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transmit};

/// The trigger actions of media sessions.
pub const MEDIA_ACTIONS: &[&str] = &[
    "play",
    "playback",
    "download",
    "talk",
    "broadcast",
    "bye",
    "pause",
    "resume",
    "scale",
    "seek",
    "teardown",
];

/// One session (or broadcast) the platform runs.
pub(super) enum Hosted {
    /// A call this platform placed.
    Call(Box<MediaUac>),
    /// 语音广播 to `device_id`; `deadline`: drop it unless the device's audio
    /// INVITE came by then.
    Broadcast {
        source: Box<BroadcastSource>,
        device_id: String,
        deadline: Instant,
        /// The Broadcast Response MESSAGE arrived.
        responded: bool,
    },
}

impl Hosted {
    fn call_id(&self) -> Option<&str> {
        match self {
            Hosted::Call(u) => Some(u.call_id()),
            Hosted::Broadcast { source, .. } => source.call_id(),
        }
    }

    fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        match self {
            Hosted::Call(u) => u.handle_message(now, from, msg),
            Hosted::Broadcast { source, .. } => source.handle_message(now, from, msg),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Hosted::Call(u) => u.poll_timeout(),
            Hosted::Broadcast {
                source, deadline, ..
            } => {
                let d = source.call_id().is_none().then_some(*deadline);
                [source.poll_timeout(), d].into_iter().flatten().min()
            }
        }
    }

    fn handle_timeout(&mut self, now: Now) {
        match self {
            Hosted::Call(u) => u.handle_timeout(now),
            Hosted::Broadcast { source, .. } => source.handle_timeout(now),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Hosted::Call(u) => u.poll_transmit(),
            Hosted::Broadcast { source, .. } => source.poll_transmit(),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Hosted::Call(u) => u.is_finished(),
            Hosted::Broadcast { source, .. } => source.is_finished(),
        }
    }
}

/// The sessions under way, so that a message, a command or a timer reaches
/// its session without looking at the others: calls by Call-ID (a
/// [`MediaUac`] matches only its own), broadcasts by a scan (a platform
/// runs few), deadlines in a heap. With thousands of calls (a load run's
/// platform) each message costs O(log n).
#[derive(Default)]
pub(super) struct MediaTable {
    next_id: u64,
    /// By age: the oldest first.
    slots: BTreeMap<u64, Slot>,
    calls: HashMap<String, u64>,
    broadcasts: BTreeSet<u64>,
    /// Each slot's wake-up. An entry whose slot has since moved its wake-up
    /// is skipped when it comes due (lazy invalidation).
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Slots that may have something to send or report.
    touched: Vec<u64>,
}

struct Slot {
    hosted: Hosted,
    wake: Option<Instant>,
}

impl MediaTable {
    fn insert(&mut self, h: Hosted) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        match &h {
            Hosted::Call(u) => {
                self.calls.insert(u.call_id().to_string(), id);
            }
            Hosted::Broadcast { .. } => {
                self.broadcasts.insert(id);
            }
        }
        self.slots.insert(
            id,
            Slot {
                hosted: h,
                wake: None,
            },
        );
        self.touched.push(id);
        id
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Hosted> {
        self.slots.get_mut(&id).map(|s| &mut s.hosted)
    }

    fn get(&self, id: u64) -> Option<&Hosted> {
        self.slots.get(&id).map(|s| &s.hosted)
    }

    fn remove(&mut self, id: u64) -> Option<Hosted> {
        let s = self.slots.remove(&id)?;
        match &s.hosted {
            Hosted::Call(u) => {
                self.calls.remove(u.call_id());
            }
            Hosted::Broadcast { .. } => {
                self.broadcasts.remove(&id);
            }
        }
        Some(s.hosted)
    }

    /// The session with this Call-ID.
    fn by_call_id(&self, call_id: &str) -> Option<u64> {
        if let Some(&id) = self.calls.get(call_id) {
            return Some(id);
        }
        self.broadcasts
            .iter()
            .copied()
            .find(|id| self.get(*id).and_then(Hosted::call_id) == Some(call_id))
    }

    /// Put slot `id`'s current wake-up in the heap.
    fn reschedule(&mut self, id: u64) {
        let Some(s) = self.slots.get_mut(&id) else {
            return;
        };
        let wake = s.hosted.poll_timeout();
        if wake == s.wake {
            return;
        }
        s.wake = wake;
        if let Some(at) = wake {
            self.deadlines.push(Reverse((at, id)));
        }
        if self.deadlines.len() > 4 * self.slots.len() + 1024 {
            self.deadlines = self
                .slots
                .iter()
                .filter_map(|(id, s)| s.wake.map(|at| Reverse((at, *id))))
                .collect();
        }
    }

    /// The next slot whose wake-up has come by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                return None;
            }
            self.deadlines.pop();
            if let Some(s) = self.slots.get_mut(&id) {
                if s.wake == Some(at) {
                    s.wake = None;
                    return Some(id);
                }
            }
        }
        None
    }

    /// The earliest wake-up (possibly a stale, earlier one: waking early
    /// is harmless).
    fn next_wake(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }
}

/// A Unix-seconds argument.
fn seconds(args: &BTreeMap<String, String>, key: &str, default: u64) -> Result<u64, String> {
    match args.get(key) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{key}: {v:?} is not Unix seconds")),
        None => Ok(default),
    }
}

fn number(args: &BTreeMap<String, String>, key: &str) -> Result<f64, String> {
    let v = args.get(key).ok_or_else(|| format!("{key} is needed"))?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("{key}: {v:?} is not a number"))
}

impl Platform {
    /// The address this platform announces and receives media on.
    fn media_ip(&self) -> IpAddr {
        self.cfg.media_ip.unwrap_or(self.cfg.local.ip())
    }

    /// The device a media action goes to and its address: the owner of
    /// `channel` when the catalog named it, else `device_id`, else the device
    /// that registered last.
    fn media_destination(
        &self,
        args: &BTreeMap<String, String>,
    ) -> Result<(String, SocketAddr), String> {
        if let Some((addr, owner)) = args.get("channel").and_then(|c| self.route(c)) {
            return Ok((owner, addr));
        }
        let device = match args.get("device_id") {
            Some(d) => d.clone(),
            None => self
                .last_registered
                .clone()
                .ok_or("no device is registered and no device_id was given")?,
        };
        let r = self
            .registrations
            .get(&device)
            .ok_or_else(|| format!("device {device} is not registered"))?;
        Ok((device, r.addr))
    }

    /// Carry out a media action; `None` when `action` is not one.
    pub(super) fn media_trigger(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Option<Result<(), String>> {
        let r = match action {
            "play" | "playback" | "download" | "talk" => self.place_call(now, action, args),
            "broadcast" => self.start_broadcast(now, args),
            "bye" | "hangup" | "pause" | "resume" | "scale" | "seek" | "teardown" => {
                self.control_session(now, action, args)
            }
            _ => return None,
        };
        self.pump_media();
        Some(r)
    }

    /// 实时预览, 录像回放, 文件下载, 语音对讲: INVITE the device. Args: `channel`
    /// (default: the device), `media` (`udp`, `tcp-active`: the device connects,
    /// `tcp-passive`: the platform connects), `start`/`end` (Unix seconds;
    /// default: the last hour), `speed` (download).
    fn place_call(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let (device, dest) = self.media_destination(args)?;
        let channel = args.get("channel").cloned().unwrap_or(device);
        // 媒体传输方式: TCP主动 is the device connecting, so the platform offers
        // a=setup:passive; TCP被动 the other way round.
        let tcp = match args.get("media").map(String::as_str) {
            None | Some("udp") => None,
            Some("tcp-active") => Some(Setup::Passive),
            Some("tcp-passive") => Some(Setup::Active),
            Some(o) => return Err(format!("media {o:?}: udp, tcp-active or tcp-passive")),
        };
        let now_s = now.wall.and_utc().timestamp().max(0) as u64;
        let end = seconds(args, "end", now_s)?;
        let start = seconds(args, "start", end.saturating_sub(3600))?;
        if start > end {
            return Err(format!("start {start} is after end {end}"));
        }
        let speed = match args.get("speed") {
            Some(s) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("speed {s:?} is not a whole number"))?,
            ),
            None => None,
        };
        let f = &self.cfg.faults;
        let speed = speed.filter(|_| !f.no_downloadspeed);
        let mut request = match action {
            "play" => CallRequest::live(&channel, 0, tcp),
            "playback" => CallRequest::playback(&channel, 0, tcp, start, end),
            "download" => CallRequest::download(&channel, 0, tcp, start, end, speed),
            _ => CallRequest::talk(&channel, 0, tcp),
        };
        // A caller that runs many sessions at once (a load run's platform)
        // chooses each SSRC itself, so that none repeats.
        if let Some(v) = args.get("ssrc") {
            let ssrc = v
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("ssrc {v:?} is not a 32-bit number"))?;
            request.ssrc = Some(Ssrc(ssrc));
        }
        if f.live_history_ssrc && action == "play" {
            let stream = self.rng.gen_range(1..10_000);
            request.ssrc = Some(Ssrc::for_caller(true, &self.cfg.platform_id, stream));
        }
        if f.history_no_range && request.kind.is_history() {
            request.timing = Timing::LIVE;
            request.uri = None;
        }
        for m in &mut request.media {
            if f.tcp_no_setup {
                m.setup = None;
            }
            if f.talk_sendonly && action == "talk" {
                m.direction = Some(Direction::SendOnly);
            }
        }
        let mut cfg = UacConfig::new(&self.cfg.platform_id, self.cfg.local, dest, self.media_ip());
        cfg.domain = self.cfg.domain.clone();
        cfg.transport = self.cfg.transport;
        cfg.user_agent = self.cfg.user_agent.clone();
        cfg.hangup_on_end_of_file = !f.no_eof_bye;
        cfg.seed = self.rng.gen();
        let mut uac = MediaUac::new(cfg, request);
        uac.start(now);
        self.media.insert(Hosted::Call(Box::new(uac)));
        Ok(())
    }

    /// 语音广播: notify the device. Args: `channel` (TargetID, the device's
    /// voice output; default: the device), `source` (SourceID, default: this
    /// platform's ID).
    fn start_broadcast(&mut self, now: Now, args: &BTreeMap<String, String>) -> Result<(), String> {
        let (device, dest) = self.media_destination(args)?;
        let target = args
            .get("channel")
            .or_else(|| args.get("target"))
            .cloned()
            .unwrap_or_else(|| device.clone());
        let source_id = args
            .get("source")
            .cloned()
            .unwrap_or_else(|| self.cfg.platform_id.clone());
        let mut cfg = BroadcastSourceConfig::new(
            &self.cfg.platform_id,
            &source_id,
            &device,
            &target,
            self.cfg.local,
            dest,
            self.media_ip(),
        );
        cfg.domain = self.cfg.domain.clone();
        cfg.transport = self.cfg.transport;
        cfg.user_agent = self.cfg.user_agent.clone();
        cfg.charset = self.cfg.charset;
        cfg.seed = self.rng.gen();
        cfg.uas.transport = self.cfg.transport;
        cfg.uas.user_agent = self.cfg.user_agent.clone();
        cfg.uas.seed = self.rng.gen();
        let give_up = cfg.timers.t1 * 64 * 2;
        let mut source = BroadcastSource::new(cfg);
        source.start(now);
        self.media.insert(Hosted::Broadcast {
            source: Box::new(source),
            device_id: device,
            deadline: now.mono + give_up,
            responded: false,
        });
        Ok(())
    }

    /// Session control on the session with the `call_id` arg, or the newest.
    fn control_session(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let i = match args.get("call_id") {
            Some(c) => self
                .media
                .by_call_id(c)
                .ok_or_else(|| format!("no media session with Call-ID {c}"))?,
            None => self
                .media
                .slots
                .iter()
                .rev()
                .find(|(_, s)| s.hosted.call_id().is_some())
                .map(|(id, _)| *id)
                .ok_or("no media session")?,
        };
        let not_up = || format!("{action}: the session is not established");
        self.media.touched.push(i);
        let Some(h) = self.media.get_mut(i) else {
            return Err("no media session".into());
        };
        match h {
            Hosted::Call(u) => match action {
                "bye" | "hangup" => u.hangup(now),
                "pause" => {
                    u.pause(now).ok_or_else(not_up)?;
                }
                "resume" => {
                    u.play(now, None, Some(Range::RESUME)).ok_or_else(not_up)?;
                }
                "scale" => {
                    let v = number(args, "value")?;
                    u.play(now, Some(v), None).ok_or_else(not_up)?;
                }
                "seek" => {
                    let s = number(args, "seconds")?;
                    u.play(now, None, Some(Range::from_seconds(s)))
                        .ok_or_else(not_up)?;
                }
                _ => {
                    u.teardown(now).ok_or_else(not_up)?;
                }
            },
            Hosted::Broadcast { source, .. } => match action {
                "bye" | "hangup" => source.hangup(now),
                _ => return Err(format!("{action}: a broadcast session takes only bye")),
            },
        }
        Ok(())
    }

    /// The session (or broadcast) `msg` belongs to.
    pub(super) fn media_route(&self, msg: &SipMessage) -> Option<u64> {
        let t = &self.media;
        if let Some(&id) = msg.call_id().and_then(|c| t.calls.get(c)) {
            return Some(id);
        }
        let broadcasts = || {
            t.broadcasts
                .iter()
                .filter_map(|id| Some((*id, t.get(*id)?)))
        };
        if let Some((id, _)) = broadcasts().find(|(_, h)| match h {
            Hosted::Broadcast { source, .. } => source.matches(msg),
            Hosted::Call(u) => u.matches(msg),
        }) {
            return Some(id);
        }
        // 语音广播 3: the device's Broadcast Response, outside any dialog.
        if msg.method() != Some("MESSAGE") || t.broadcasts.is_empty() {
            return None;
        }
        let sender = from_user(msg)?;
        let (id, _) = broadcasts().find(|(_, h)| {
            matches!(h, Hosted::Broadcast { device_id, responded: false, .. } if *device_id == sender)
        })?;
        let d = manscdp::Message::decode(&msg.body).ok()?;
        matches!(d.message.body, Body::BroadcastResponse(_)).then_some(id)
    }

    /// Feed a message to the session `i` ([`Platform::media_route`]).
    pub(super) fn media_message(&mut self, now: Now, i: u64, from: SocketAddr, msg: &SipMessage) {
        let f = &self.cfg.faults;
        let Some(h) = self.media.get(i) else {
            return;
        };
        match (h, msg.method()) {
            (Hosted::Call(_), Some("BYE")) if f.ignore_device_bye => return,
            (Hosted::Broadcast { .. }, Some("INVITE")) if f.refuse_broadcast_audio => {
                return self.respond(from, msg, 488);
            }
            _ => {}
        }
        let Some(h) = self.media.get_mut(i) else {
            return;
        };
        if let Hosted::Broadcast { responded, .. } = h {
            if msg.method() == Some("MESSAGE") {
                *responded = true;
            }
        }
        h.handle_message(now, from, msg);
        self.media.touched.push(i);
        self.pump_media();
    }

    /// A device's INVITE that no broadcast waits for: refused.
    pub(super) fn refuse_invite(&mut self, from: SocketAddr, msg: &SipMessage) {
        let sender = from_user(msg);
        let registered = sender
            .as_ref()
            .is_some_and(|s| self.registrations.contains_key(s));
        // An unregistered device gets 403, as its other requests do (§注册); a
        // registered one asked for something this platform does not offer:
        // only a pending 语音广播's voice source takes calls.
        let (status, reason) = if registered {
            (404, "INVITE for no voice source of a pending broadcast")
        } else {
            (403, "INVITE from a device that is not registered")
        };
        self.events.push_back(PlatformEvent::Rejected {
            device_id: sender,
            status,
            reason: format!("{}: {reason}", msg.summary()),
        });
        self.respond(from, msg, status);
    }

    /// Hand a media command to the session with this Call-ID.
    pub fn apply_session(&mut self, now: Now, call_id: &str, cmd: SessionCommand) {
        let Some(id) = self.media.by_call_id(call_id) else {
            return;
        };
        let Some(h) = self.media.get_mut(id) else {
            return;
        };
        match h {
            Hosted::Call(u) => u.apply(now, cmd),
            Hosted::Broadcast { source, .. } => source.apply(now, cmd),
        }
        self.media.touched.push(id);
        self.pump_media();
    }

    /// The media sessions under way, with their Call-IDs (a broadcast before
    /// the device's INVITE has none).
    pub fn media_sessions(&self) -> Vec<Option<String>> {
        self.media
            .slots
            .values()
            .map(|s| s.hosted.call_id().map(str::to_string))
            .collect()
    }

    pub(super) fn media_timeout(&self) -> Option<Instant> {
        self.media.next_wake()
    }

    pub(super) fn tick_media(&mut self, now: Now) {
        while let Some(id) = self.media.pop_due(now.mono) {
            if let Some(h) = self.media.get_mut(id) {
                h.handle_timeout(now);
            }
            self.media.touched.push(id);
        }
        // A broadcast whose device never asked for the audio is given up.
        let ids: Vec<u64> = self.media.broadcasts.iter().copied().collect();
        for i in ids {
            match self.media.get(i) {
                Some(Hosted::Broadcast {
                    source,
                    device_id,
                    deadline,
                    ..
                }) if source.call_id().is_none() && *deadline <= now.mono => {
                    let device_id = device_id.clone();
                    self.media.remove(i);
                    self.events.push_back(PlatformEvent::Broadcast {
                        device_id,
                        event: BroadcastEvent::Failed {
                            findings: vec![
                                BROADCAST_FLOW.finding("the device never sent the audio INVITE")
                            ],
                        },
                    });
                }
                _ => {}
            }
        }
        self.pump_media();
    }

    /// Move the messages and events of the sessions touched since the last
    /// pump out; drop the finished ones; put the others' next wake-ups in
    /// the heap.
    pub(super) fn pump_media(&mut self) {
        let mut touched = std::mem::take(&mut self.media.touched);
        touched.sort_unstable();
        touched.dedup();
        for id in touched {
            let Some(h) = self.media.get_mut(id) else {
                continue;
            };
            while let Some(t) = h.poll_transmit() {
                self.transmits.push_back(t);
            }
            match h {
                Hosted::Call(u) => {
                    while let Some(event) = u.poll_event() {
                        self.events.push_back(PlatformEvent::Session {
                            call_id: u.call_id().to_string(),
                            event,
                        });
                    }
                }
                Hosted::Broadcast {
                    source, device_id, ..
                } => {
                    while let Some(e) = source.poll_event() {
                        let e = match e {
                            BroadcastEvent::Session(event) => PlatformEvent::Session {
                                call_id: source.call_id().unwrap_or_default().to_string(),
                                event: *event,
                            },
                            event => PlatformEvent::Broadcast {
                                device_id: device_id.clone(),
                                event,
                            },
                        };
                        self.events.push_back(e);
                    }
                }
            }
            if h.is_finished() {
                self.media.remove(id);
            } else {
                self.media.reschedule(id);
            }
        }
    }
}
