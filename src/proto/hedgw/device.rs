//! The TD (camera) side of a HEDGW connection: logs in (§5.2.1), sends
//! PING every `ping_pong_span` and watches for PONG (§5.2.2), uploads
//! media while its plan or a client asks for it (§5.2.3, §6.2), raises
//! events (§5.2.6) and answers app commands with DevIpCamCmd
//! (§5.2.9-§5.2.11). The reference device and camcert testing a gateway
//! both run it.
//!
//! Call [`Device::start`] once the connection is up, then feed it as the
//! gateway is fed. After a refused login it emits
//! [`DeviceEvent::RetryLogin`] when it may try again: the driver opens a
//! new connection (§5.2.1 备注: 登录失败后，需要重新请求 HEDGW 服务地址).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::json;

use super::frame::{self, FrameDecoder};
use super::json;
use super::media::{self, MediaFaults, Packager};
use super::msg::{self, request, result};
use super::wire::{self, Decoded};
use super::{
    clause, DevAppCmd, DevEventCmd, DevIpCamCmd, DevLoginReq, DevLoginResp, FindingCode,
    HedgwMessage, MessageType,
};
use crate::finding::Finding;
use crate::proto::Now;

/// Deliberate faults of the reference device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceFaults {
    /// Never sends PING.
    pub no_ping: bool,
    /// Leaves device_mac (required) out of DevLoginReq.
    pub missing_device_mac: bool,
    /// Sends channel_id 7.
    pub bad_channel_id: bool,
    /// Tries again at once after result 2008 (instead of waiting 90 s) and
    /// after 2026 (instead of staying away).
    pub ignore_limit: bool,
    /// Does not answer app queries.
    pub no_reply: bool,
    /// Stamps events in seconds, not milliseconds.
    pub event_seconds: bool,
    /// Answers with the wrong responseSubRequest.
    pub wrong_sub_request: bool,
    /// Ignores DevServerCmd (plan changes, thumbnail requests).
    pub ignore_server_cmd: bool,
    pub media: MediaFaults,
}

impl DeviceFaults {
    pub const NAMES: &'static [&'static str] = &[
        "no-ping",
        "missing-device-mac",
        "bad-channel-id",
        "ignore-limit",
        "no-reply",
        "event-seconds",
        "wrong-sub-request",
        "ignore-server-cmd",
        "audio-30ms",
        "no-control-flag",
        "no-ipcam-time",
        "no-sps-pps",
        "seq-gap",
        "seconds-timestamps",
    ];

    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "no-ping" => &mut self.no_ping,
            "missing-device-mac" => &mut self.missing_device_mac,
            "bad-channel-id" => &mut self.bad_channel_id,
            "ignore-limit" => &mut self.ignore_limit,
            "no-reply" => &mut self.no_reply,
            "event-seconds" => &mut self.event_seconds,
            "wrong-sub-request" => &mut self.wrong_sub_request,
            "ignore-server-cmd" => &mut self.ignore_server_cmd,
            "audio-30ms" => &mut self.media.audio_30ms,
            "no-control-flag" => &mut self.media.no_control_flag,
            "no-ipcam-time" => &mut self.media.no_ipcam_time,
            "no-sps-pps" => &mut self.media.no_sps_pps,
            "seq-gap" => &mut self.media.seq_gap,
            "seconds-timestamps" => &mut self.media.seconds,
            _ => return false,
        };
        *f = true;
        true
    }
}

#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub login: DevLoginReq,
    /// `src_device_id` of its DevIpCamCmd.
    pub device_id: String,
    /// H.264 Annex B to upload, looping; none uploads nothing.
    pub video: Option<Vec<u8>>,
    pub fps: u32,
    /// Upload G.711A audio beside the video.
    pub audio: bool,
    /// PONGs missed in a row before the device gives the connection up.
    pub missed_pongs_to_close: u32,
    pub max_frame: usize,
    /// After the connection is lost, ask for a new one this much later (a
    /// camera keeps trying); `None` stops the device.
    pub reconnect_after: Option<Duration>,
    /// Send DevLoginReq as soon as the connection is up (default); `false`
    /// leaves the login to whoever drives the device.
    pub login_on_start: bool,
    pub faults: DeviceFaults,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            login: DevLoginReq {
                access_key: "camcert".into(),
                access_secret: "camcert-secret".into(),
                user_name: "13800000000".into(),
                device_token: "camcert-token".into(),
                unified_id: "camcert-unified".into(),
                device_mac: "02:00:00:00:00:01".into(),
                channel_id: 0,
                video_type: Some(1),
                video_width: 320,
                video_height: 240,
                audio_type: 2,
                audio_khz: 8,
                audio_channel: 1,
            },
            device_id: "020000000001".into(),
            video: None,
            fps: 25,
            audio: false,
            missed_pongs_to_close: 3,
            max_frame: frame::DEFAULT_MAX_FRAME,
            reconnect_after: None,
            login_on_start: true,
            faults: DeviceFaults::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum DeviceEvent {
    /// The connection is up (TLS done).
    Connected,
    Received(Decoded),
    Sent(HedgwMessage),
    LoggedIn(DevLoginResp),
    /// The login was refused with this result; a retry follows when allowed.
    LoginRefused(u32),
    /// Open a new connection and call [`Device::start`].
    RetryLogin,
    Finding(Finding),
    Closed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    AwaitLoginResp,
    Online,
    Refused,
    Closed,
}

pub struct Device {
    pub cfg: DeviceConfig,
    decoder: FrameDecoder,
    state: State,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<DeviceEvent>,
    span: Duration,
    next_ping: Option<Instant>,
    pong_due: Option<Instant>,
    missed: u32,
    retry_at: Option<Instant>,
    packager: Option<Packager>,
    stream_start: Option<Instant>,
    /// The device's plan (device_status): 0 and 1 upload all the time.
    pub device_status: Option<u32>,
    /// Clients watching live (DevAppCmd type 8 minus type 9).
    pub live_clients: u32,
    pub login_resp: Option<DevLoginResp>,
    /// Talk audio packages received (§5.2.5).
    pub talk_packages: u64,
    /// When the device started (thumbnail `start_time` counts from it).
    started: Option<Instant>,
    /// Event-recording plan: an event is on, or its 10 s after it (§5.2.3).
    event_on: bool,
    event_until: Option<Instant>,
    thumb_span: Option<Duration>,
    next_thumb: Option<Instant>,
    thumb_seq: u32,
}

impl Device {
    pub fn new(cfg: DeviceConfig) -> Device {
        let mut packager = cfg
            .video
            .as_deref()
            .and_then(|v| Packager::h264(v, cfg.fps));
        if let Some(p) = &mut packager {
            p.faults = cfg.faults.media;
        }
        Device {
            decoder: FrameDecoder::new(cfg.max_frame),
            cfg,
            state: State::Idle,
            out: VecDeque::new(),
            events: VecDeque::new(),
            span: Duration::from_secs(30),
            next_ping: None,
            pong_due: None,
            missed: 0,
            retry_at: None,
            packager,
            stream_start: None,
            device_status: None,
            live_clients: 0,
            login_resp: None,
            talk_packages: 0,
            started: None,
            event_on: false,
            event_until: None,
            thumb_span: None,
            next_thumb: None,
            thumb_seq: 0,
        }
    }

    pub fn is_online(&self) -> bool {
        self.state == State::Online
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn is_streaming(&self) -> bool {
        self.stream_start.is_some()
    }

    /// The DevLoginReq this device sends.
    pub fn login_request(&self) -> DevLoginReq {
        let mut r = self.cfg.login.clone();
        if self.cfg.faults.bad_channel_id {
            r.channel_id = 7;
        }
        r
    }

    /// The connection is up: log in.
    pub fn start(&mut self, now: Now) {
        self.started.get_or_insert(now.mono);
        self.decoder = FrameDecoder::new(self.cfg.max_frame);
        self.state = State::AwaitLoginResp;
        self.retry_at = None;
        self.events.push_back(DeviceEvent::Connected);
        if !self.cfg.login_on_start {
            return;
        }
        let m = msg::login_req(self.login_request());
        if self.cfg.faults.missing_device_mac {
            // Encode, then drop field 6 of DevLoginReq by rebuilding the
            // request without it.
            let mut r = self.login_request();
            r.device_mac.clear();
            let mut inner = Vec::new();
            for (n, s) in [
                (1u8, &r.access_key),
                (2, &r.access_secret),
                (3, &r.user_name),
                (4, &r.device_token),
                (5, &r.unified_id),
            ] {
                inner.push(n << 3 | 2);
                inner.push(s.len() as u8);
                inner.extend_from_slice(s.as_bytes());
            }
            for (n, v) in [
                (9u8, r.channel_id),
                (10, r.video_type.unwrap_or(1)),
                (11, r.video_width),
                (12, r.video_height),
                (13, r.audio_type),
                (14, r.audio_khz),
                (15, r.audio_channel),
            ] {
                inner.push(n << 3);
                let mut v = u64::from(v);
                while v >= 0x80 {
                    inner.push(v as u8 | 0x80);
                    v >>= 7;
                }
                inner.push(v as u8);
            }
            let mut b = vec![0x08, 0x01, 0x12];
            let mut l = inner.len() as u64;
            while l >= 0x80 {
                b.push(l as u8 | 0x80);
                l >>= 7;
            }
            b.push(l as u8);
            b.extend_from_slice(&inner);
            self.out.push_back(frame::frame_bytes(&b));
            self.events.push_back(DeviceEvent::Sent(m));
        } else {
            self.send(m);
        }
    }

    pub fn send(&mut self, m: HedgwMessage) {
        if self.state == State::Closed {
            return;
        }
        self.out.push_back(frame::encode(&m));
        self.events.push_back(DeviceEvent::Sent(m));
    }

    pub fn send_raw(&mut self, framed: Vec<u8>) {
        self.out.push_back(framed);
    }

    fn close(&mut self, why: String) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.next_ping = None;
            self.pong_due = None;
            self.stream_start = None;
            self.next_thumb = None;
            self.events.push_back(DeviceEvent::Closed(why));
        }
    }

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
                    self.events.push_back(DeviceEvent::Finding(e.finding()));
                    self.close(e.to_string());
                    break;
                }
            }
        }
    }

    /// The connection ended. With `reconnect_after`, the device asks for
    /// a new connection after that long, as a camera does; else it stops.
    pub fn handle_eof(&mut self, now: Now) {
        if let Some(f) = self.decoder.finish() {
            self.events.push_back(DeviceEvent::Finding(f));
        }
        match (self.state, self.cfg.reconnect_after) {
            (State::Refused | State::Closed, _) => {}
            (_, Some(d)) => {
                self.state = State::Refused;
                self.next_ping = None;
                self.pong_due = None;
                self.stream_start = None;
                self.next_thumb = None;
                self.retry_at = Some(now.mono + d);
            }
            (_, None) => self.close("the gateway closed the connection".into()),
        }
    }

    fn handle_frame(&mut self, now: Now, payload: &[u8]) {
        let d = wire::decode(payload);
        let t = d.message_type();
        let m = d.message.clone();
        self.events.push_back(DeviceEvent::Received(d));
        match (self.state, t) {
            (State::AwaitLoginResp, Some(MessageType::DevLoginResp)) => {
                let r = m.dev_login_resp.unwrap_or_default();
                for f in msg::check_login_resp(&r) {
                    self.events.push_back(DeviceEvent::Finding(f));
                }
                self.on_login(now, r);
            }
            (State::Online, Some(MessageType::Pong)) => {
                self.pong_due = None;
                self.missed = 0;
            }
            (State::Online, Some(MessageType::Ping)) => {
                // 附录E: 收到 ping 消息之后，需要发送 pong 响应.
                let id = m.ping.map(|p| p.id).unwrap_or(0);
                self.send(msg::pong(id));
            }
            (State::Online, Some(MessageType::DevServerCmd))
                if !self.cfg.faults.ignore_server_cmd =>
            {
                let c = m.dev_server_cmd.unwrap_or_default();
                match c.r#type {
                    7 => {
                        self.device_status = c.device_status;
                        self.update_stream(now);
                    }
                    // §5.2.8: thumbnails every thumbnail_span s; 0 stops.
                    9 => {
                        let span = c.thumbnail_span.unwrap_or(0);
                        self.thumb_span = (span > 0).then(|| Duration::from_secs(u64::from(span)));
                        self.next_thumb = self.thumb_span.map(|_| now.mono);
                    }
                    _ => {}
                }
            }
            (State::Online, Some(MessageType::DevAppCmd)) => {
                let c = m.dev_app_cmd.unwrap_or_default();
                self.on_app_cmd(now, c);
            }
            (State::Online, Some(MessageType::TdMediaPackage)) => {
                if let Some(p) = &m.td_media_package {
                    self.on_talk(p);
                }
            }
            (State::AwaitLoginResp, _) | (State::Online, Some(MessageType::DevLoginResp)) => {
                self.events
                    .push_back(DeviceEvent::Finding(FindingCode::UnexpectedMessage.error(
                        clause::LOGIN,
                        format!(
                            "{} where a DevLoginResp was (or was not) expected",
                            t.map(|t| t.as_str_name()).unwrap_or("an unknown message")
                        ),
                    )));
            }
            (
                State::Online,
                Some(
                    MessageType::DevLoginReq | MessageType::DevEventCmd | MessageType::DevIpCamCmd,
                ),
            ) => {
                self.events
                    .push_back(DeviceEvent::Finding(FindingCode::UnexpectedMessage.error(
                        clause::CHANNEL,
                        format!(
                            "{} goes from the TD to HEDGW, not to the TD",
                            t.map(|t| t.as_str_name()).unwrap_or("?")
                        ),
                    )));
            }
            _ => {}
        }
    }

    /// Talk audio from a client (§5.2.5): package_type 1, sync 0, G.711A.
    /// 附录E's ReadHedgwMsg strips a 12-byte RTP header from it
    /// ("去掉 12 字节的 RTP 包头"); §5.2.5 says data is the audio. Decision:
    /// both are taken; a header is reported (info), and not played.
    fn on_talk(&mut self, p: &super::TdMediaPackage) {
        self.talk_packages += 1;
        if p.package_type != media::AUDIO || p.sync != 0 {
            self.events
                .push_back(DeviceEvent::Finding(FindingCode::BadValue.error(
                    clause::TALK,
                    format!(
                        "talk package_type {} sync {}: expected 1 (audio) and 0",
                        p.package_type, p.sync
                    ),
                )));
        }
        if p.data_size as usize != p.data.len() {
            self.events
                .push_back(DeviceEvent::Finding(FindingCode::DataSizeMismatch.error(
                    clause::TALK,
                    format!(
                        "talk data_size {} but data holds {} bytes",
                        p.data_size,
                        p.data.len()
                    ),
                )));
        }
        // RTP version 2, payload type 8 (PCMA).
        if p.data.len() >= 12 && p.data[0] & 0xc0 == 0x80 && p.data[1] & 0x7f == 8 {
            self.events.push_back(DeviceEvent::Finding(FindingCode::TalkRtpHeader.finding(
                crate::finding::Severity::Info,
                clause::TALK,
                "talk audio starts with an RTP header (附录E strips 12 bytes; §5.2.5 says data is the audio)",
            )));
        }
    }

    fn on_login(&mut self, now: Now, r: DevLoginResp) {
        self.login_resp = Some(r.clone());
        if r.result != result::OK {
            self.events.push_back(DeviceEvent::LoginRefused(r.result));
            self.state = State::Refused;
            let wait = match r.result {
                result::LIMITED if !self.cfg.faults.ignore_limit => {
                    Duration::from_secs(msg::LIMITED_RETRY_SECS)
                }
                // 2026: the device is deleted; it does not come back.
                result::DELETED if !self.cfg.faults.ignore_limit => {
                    self.close("the device is deleted (2026)".into());
                    return;
                }
                _ => Duration::from_secs(if self.cfg.faults.ignore_limit { 0 } else { 5 }),
            };
            self.retry_at = Some(now.mono + wait);
            return;
        }
        self.state = State::Online;
        self.span = Duration::from_secs(u64::from(r.ping_pong_span.unwrap_or(30).max(1)));
        self.device_status = r.device_status;
        if !self.cfg.faults.no_ping {
            self.next_ping = Some(now.mono + self.span);
        }
        self.events.push_back(DeviceEvent::LoggedIn(r));
        self.update_stream(now);
    }

    /// Upload while the plan says so (0 trial, 1 cloud) or a client watches
    /// (§6.2).
    fn update_stream(&mut self, now: Now) {
        // §5.2.3: on the event-recording plan (3), events and watching
        // clients start the upload, control_flag 1 and 2.
        let event_plan = self.device_status == Some(3);
        let event = event_plan && (self.event_on || self.event_until.is_some());
        let want = matches!(self.device_status, Some(0 | 1)) || self.live_clients > 0 || event;
        let flag = event_plan.then_some(if event { 1 } else { 2 });
        if want && self.stream_start.is_none() && self.packager.is_some() {
            self.stream_start = Some(now.mono);
            if let Some(p) = &self.packager {
                // Start over at a key frame with fresh counters.
                let mut fresh =
                    Packager::h264(self.cfg.video.as_deref().unwrap_or(&[]), self.cfg.fps)
                        .unwrap_or_else(|| p.clone());
                if self.cfg.audio {
                    fresh = fresh.with_audio();
                }
                fresh.faults = self.cfg.faults.media;
                self.packager = Some(fresh);
            }
        } else if !want {
            self.stream_start = None;
        }
        if let Some(p) = &mut self.packager {
            p.control_flag = flag;
        }
    }

    fn on_app_cmd(&mut self, now: Now, c: DevAppCmd) {
        match c.r#type {
            8 => {
                self.live_clients += 1;
                self.update_stream(now);
            }
            9 => {
                self.live_clients = self.live_clients.saturating_sub(1);
                self.update_stream(now);
            }
            33 => {
                let Some(text) = c.msg.as_deref() else {
                    self.events.push_back(DeviceEvent::Finding(
                        FindingCode::MissingRequired.error(
                            clause::APP_CMD,
                            "DevAppCmd type 33 without msg (当为此值时, TD 需要解析 msg 字段)",
                        ),
                    ));
                    return;
                };
                let j = json::parse(text, clause::APP_CMD);
                for f in j.findings {
                    self.events.push_back(DeviceEvent::Finding(f));
                }
                if let Some(v) = j.value {
                    self.answer(&c, &v);
                }
            }
            _ => {}
        }
    }

    /// Replies the spec asks for (§5.2.11): queries and some settings.
    fn answer(&mut self, c: &DevAppCmd, v: &serde_json::Value) {
        if self.cfg.faults.no_reply {
            return;
        }
        let num = |p: &str| json::lookup(v, p).and_then(|s| s.parse::<i64>().ok());
        let session = num("msgSession").unwrap_or(0).max(0) as u64;
        let req = num("msgContent.request").unwrap_or(0);
        let sub = num("msgContent.subRequest");
        let params = match (req as u32, sub) {
            (request::QUERY, Some(16)) => Some(json!([{
                "bConnected": 1, "bssid": "02:00:00:00:00:02", "encryption": "WPA2",
                "signal": 5, "ssid": "camcert"
            }])),
            (request::QUERY, Some(85)) => Some(json!([{
                "name": "/dev/mmcblk0p1", "fs": "vfat", "total": 2147483648u64, "remain": 2147480000u64
            }])),
            (request::QUERY, Some(81)) => Some(json!({"pan": 0, "tilt": 0})),
            (request::CONFIGURE, Some(17 | 87 | 153)) => None,
            (request::UPGRADE, _) => {
                let progress = json!({
                    "msgSession": session, "msgSequence": 0, "msgTimeStamp": 0,
                    "msgCategory": "camera",
                    "msgContent": {"request": request::UPGRADE_PROGRESS, "requestParams": {
                        "firmwareversion": "1.0.0", "cameraappversion": "1.0.0",
                        "status": "1", "currentSize": "0", "totalSize": "0", "comment": ""}}
                });
                self.send(msg::ipcam_cmd(DevIpCamCmd {
                    r#type: 1,
                    src_device_id: self.cfg.device_id.clone(),
                    dst_device_id: Some(c.src_device_id.clone()),
                    msg: Some(progress.to_string()),
                    ..Default::default()
                }));
                return;
            }
            _ => return,
        };
        let sub = sub.map(|s| {
            if self.cfg.faults.wrong_sub_request {
                s + 1
            } else {
                s
            }
        });
        let text = msg::reply_msg(session, req, sub, 0, params);
        self.send(msg::ipcam_cmd(DevIpCamCmd {
            r#type: 2,
            src_device_id: self.cfg.device_id.clone(),
            dst_device_id: Some(c.src_device_id.clone()),
            msg: Some(text),
            ..Default::default()
        }));
    }

    /// Tell the gateway the resolution changed (§5.2.11.3, DevIpCamCmd
    /// type 3, `msg` e.g. `1280x720`).
    pub fn report_resolution(&mut self, text: String) {
        let id = self.cfg.device_id.clone();
        self.send(msg::ipcam_cmd(DevIpCamCmd {
            r#type: 3,
            src_device_id: id,
            msg: Some(text),
            ..Default::default()
        }));
    }

    /// Report an event (§5.2.6).
    pub fn raise_event(&mut self, now: Now, kind: u32, status: u32, msg_json: Option<String>) {
        let mut ms = now.wall.and_utc().timestamp_millis().max(0) as u64;
        if self.cfg.faults.event_seconds {
            ms /= 1000;
        }
        // §5.2.6: a people count carries its figures in msg.
        let msg_json = msg_json.or_else(|| {
            (kind == 4).then(|| {
                let stop = ms / 1000;
                serde_json::json!({"start": stop.saturating_sub(600), "stop": stop, "count": 0x0003_0005})
                    .to_string()
            })
        });
        self.send(msg::event(DevEventCmd {
            r#type: kind,
            status,
            ipcam_time: ms,
            msg: msg_json,
        }));
        if kind != 4 {
            // 事件后面补录 10 秒.
            self.event_on = status == 1;
            self.event_until = (status == 0).then(|| now.mono + Duration::from_secs(10));
            self.update_stream(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if let Some(t) = self.retry_at {
            if now.mono >= t {
                self.retry_at = None;
                self.events.push_back(DeviceEvent::RetryLogin);
            }
        }
        if let Some(d) = self.pong_due {
            if now.mono >= d {
                self.pong_due = None;
                self.missed += 1;
                self.events
                    .push_back(DeviceEvent::Finding(FindingCode::PingMissed.error(
                        clause::PING,
                        format!(
                            "no PONG within {} s of PING ({} in a row)",
                            self.span.as_secs(),
                            self.missed
                        ),
                    )));
                if self.missed >= self.cfg.missed_pongs_to_close {
                    self.close(format!("{} PONGs missed", self.missed));
                    return;
                }
            }
        }
        if let Some(t) = self.next_ping {
            if now.mono >= t && self.state == State::Online {
                self.send(msg::ping(0));
                self.pong_due = Some(now.mono + self.span);
                self.next_ping = Some(t + self.span);
            }
        }
        let wall_ms = now.wall.and_utc().timestamp_millis().max(0) as u64;
        if self.event_until.is_some_and(|t| now.mono >= t) {
            self.event_until = None;
            self.update_stream(now);
        }
        if let (Some(t), Some(span)) = (self.next_thumb, self.thumb_span) {
            if now.mono >= t && self.state == State::Online {
                let since = self.started.map_or(0, |s| {
                    now.mono.saturating_duration_since(s).as_millis() as u32
                });
                let seq = self.thumb_seq;
                self.thumb_seq = self.thumb_seq.wrapping_add(1);
                self.send(msg::media(media::thumbnail(since, seq, wall_ms)));
                self.next_thumb = Some(t + span);
            }
        }
        if let (Some(start), Some(_)) = (self.stream_start, self.packager.as_ref()) {
            // Audio due by now, at most a second's worth at once.
            for _ in 0..50 {
                let p = self.packager.as_mut().expect("checked");
                match p.audio_due() {
                    Some(d) if start + d <= now.mono => {}
                    _ => break,
                }
                if let Some(a) = p.next_audio(wall_ms) {
                    self.send(msg::media(a));
                }
            }
            // Every picture due by now, at most a second's worth at once.
            for _ in 0..self.cfg.fps.max(1) {
                let p = self.packager.as_mut().expect("checked");
                if start + p.due() > now.mono {
                    break;
                }
                for pkg in p.next_packages(wall_ms) {
                    self.send(msg::media(pkg));
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let media = match (self.stream_start, &self.packager) {
            (Some(s), Some(p)) => Some(s + p.due()),
            _ => None,
        };
        let audio = match (self.stream_start, &self.packager) {
            (Some(s), Some(p)) => p.audio_due().map(|d| s + d),
            _ => None,
        };
        [
            self.retry_at,
            self.pong_due,
            self.next_ping,
            media,
            audio,
            self.next_thumb,
            self.event_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    /// Pictures uploaded so far.
    pub fn pictures_sent(&self) -> u64 {
        self.packager.as_ref().map_or(0, |p| p.pictures_sent())
    }
}
