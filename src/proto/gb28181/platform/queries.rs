//! The platform as the source of §设备查询 queries and §设备控制 controls
//! (the [`Platform::trigger`] actions), collecting their answers, and the
//! alarm acknowledgement of §报警事件通知.
//!
//! §设备查询流程: the platform sends a query MESSAGE; the device answers
//! 200, then sends the answer in its own MESSAGE, which the platform
//! answers with 200. Catalog and RecordInfo answers may span several
//! messages ("目录查询应答命令支持多响应消息传输"); they are collected with
//! the codec's [`PageCollector`] until SumNum items arrived (cascade 平台设备
//! 共享: "当累计数量和SumNum字段值相等时,则说明查询结束").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::transaction::Purpose;
use super::{Channel, Platform, PlatformEvent};
use crate::proto::gb28181::manscdp::{
    self, AlarmQuery, Body, CatalogCollector, CatalogQuery, CmdType, ConfigDownloadQuery,
    DeviceControl, Finding, FindingCode, GuardCmd, IFrameCmd, Message, PageCollector, Progress,
    RecordCmd, RecordInfoCollector, RecordInfoQuery, RecordType, ResultType, TeleBoot,
};
use crate::proto::gb28181::ptz::{Direction, Focus, Iris, PresetOp, PtzCmd, Zoom};
use crate::proto::sip::SipMessage;
use crate::proto::Now;

/// A multi-message answer being collected.
#[derive(Debug, Clone)]
pub(super) enum Collector {
    Catalog(CatalogCollector),
    RecordInfo(RecordInfoCollector),
}

/// A query (or control with an answer) waiting for its answer.
#[derive(Debug, Clone)]
pub(super) struct PendingQuery {
    /// The device or channel the query names.
    pub target: String,
    /// The registered device it went through.
    pub owner: String,
    pub cmd: CmdType,
    pub collector: Option<Collector>,
    /// Give up on the answer then.
    pub deadline: Instant,
}

/// A request from the upper platform passed on to a device: its answer goes
/// back up with the upper platform's SN.
#[derive(Debug, Clone)]
pub(super) struct Forward {
    pub up_sn: Option<u64>,
    pub cmd: CmdType,
    pub collector: Option<Collector>,
    pub deadline: Instant,
}

/// The trigger actions the reference platform knows.
pub const ACTIONS: &[&str] = &[
    "query-catalog",
    "query-deviceinfo",
    "query-devicestatus",
    "query-recordinfo",
    "query-config",
    "query-preset",
    "ptz",
    "teleboot",
    "record",
    "guard",
    "alarm-reset",
    "iframe",
    "subscribe-catalog",
    "subscribe-alarm",
    "unsubscribe",
    "register",
    "unregister",
];

const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

fn direction(s: &str) -> Result<Direction, String> {
    Ok(match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "stop" => Direction::Stop,
        "up" => Direction::Up,
        "down" => Direction::Down,
        "left" => Direction::Left,
        "right" => Direction::Right,
        "upleft" | "leftup" => Direction::UpLeft,
        "upright" | "rightup" => Direction::UpRight,
        "downleft" | "leftdown" => Direction::DownLeft,
        "downright" | "rightdown" => Direction::DownRight,
        _ => {
            return Err(format!(
                "unknown direction {s:?} (stop, up, down, left, right, upleft, upright, downleft, downright)"
            ))
        }
    })
}

/// The PTZ command a `ptz` trigger asks for.
fn ptz_command(args: &BTreeMap<String, String>) -> Result<PtzCmd, String> {
    let speed = |default: u8| -> Result<u8, String> {
        match args.get("speed") {
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("speed {s:?} is not 0..=255")),
            None => Ok(default),
        }
    };
    if let Some(z) = args.get("zoom") {
        let zoom = match z.as_str() {
            "in" => Zoom::In,
            "out" => Zoom::Out,
            "stop" => Zoom::Stop,
            _ => return Err(format!("zoom {z:?}: in, out or stop")),
        };
        return Ok(PtzCmd::zoom(zoom, speed(8)?.min(15)));
    }
    if let Some(v) = args.get("iris") {
        let iris = match v.as_str() {
            "open" => Iris::Open,
            "close" => Iris::Close,
            "stop" => Iris::Stop,
            _ => return Err(format!("iris {v:?}: open, close or stop")),
        };
        return Ok(PtzCmd::iris(iris, speed(128)?));
    }
    if let Some(v) = args.get("focus") {
        let focus = match v.as_str() {
            "near" => Focus::Near,
            "far" => Focus::Far,
            "stop" => Focus::Stop,
            _ => return Err(format!("focus {v:?}: near, far or stop")),
        };
        return Ok(PtzCmd::focus(focus, speed(128)?));
    }
    if let Some(p) = args.get("preset") {
        let index: u8 = p
            .trim()
            .parse()
            .map_err(|_| format!("preset {p:?} is not 1..=255"))?;
        let op = match args.get("op").map(String::as_str).unwrap_or("call") {
            "set" => PresetOp::Set,
            "call" => PresetOp::Call,
            "delete" => PresetOp::Delete,
            o => return Err(format!("op {o:?}: set, call or delete")),
        };
        return Ok(PtzCmd::preset(op, index));
    }
    let d = direction(args.get("direction").map(String::as_str).unwrap_or("stop"))?;
    Ok(PtzCmd::motion(d, speed(128)?))
}

impl Platform {
    /// Carry out a named action (suite `trigger` steps; see [`ACTIONS`]).
    /// Queries and controls take `device_id` (default: the device that
    /// registered last); `query-recordinfo` takes `start_time`, `end_time`
    /// (default: the last 24 hours) and `type`; `query-config` takes
    /// `config_type` (default `BasicParam`); `ptz` takes `direction` and
    /// `speed`, or `zoom` (`in`/`out`), `iris`, `focus`, or `preset` with
    /// `op`; `record` takes `cmd` (`start`/`stop`); `guard` takes `cmd`
    /// (`set`/`reset`); subscriptions take `expires`; `unsubscribe` takes
    /// `event` (`catalog`/`alarm`). A lower platform's `register` and
    /// `unregister` act on its registration to the upper platform.
    ///
    /// Media sessions ([`super::MEDIA_ACTIONS`]): `play`, `playback`,
    /// `download`, `talk` call the device with `channel` (default: the
    /// device), `media` (`udp`, `tcp-active`, `tcp-passive`), `start`/`end`
    /// (Unix seconds) and `speed`; `broadcast` notifies it with `channel`
    /// (TargetID) and `source` (SourceID); `bye`, `pause`, `resume`, `scale`
    /// (`value`), `seek` (`seconds`), `teardown` act on the newest session or
    /// the one with `call_id`.
    pub fn trigger(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let r = self.run_trigger(now, action, args);
        self.drain_upstream(now);
        r
    }

    fn run_trigger(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        if let Some(r) = self.media_trigger(now, action, args) {
            return r;
        }
        match action {
            "register" | "unregister" => {
                let u = self
                    .upstream
                    .as_mut()
                    .ok_or("this platform has no upper platform to register to")?;
                if action == "register" {
                    u.dev.start(now);
                } else {
                    u.dev.unregister(now);
                }
                return Ok(());
            }
            "subscribe-catalog" | "subscribe-alarm" | "unsubscribe" => {
                return self.subscribe_trigger(now, action, args)
            }
            // A restart that keeps the registration database, as platforms
            // that store it do: what a fault wedged works again, and no
            // answer is replayed from before.
            "reboot" => {
                self.restart();
                return Ok(());
            }
            _ if !ACTIONS.contains(&action) => {
                return Err(format!(
                    "unknown action {action:?} ({}, {})",
                    ACTIONS.join(", "),
                    super::MEDIA_ACTIONS.join(", ")
                ))
            }
            _ => {}
        }
        let target = self.trigger_target(args)?;
        let sn = self.next_sn();
        let body = match action {
            "query-catalog" => Body::CatalogQuery(CatalogQuery {
                start_time: args.get("start_time").cloned(),
                end_time: args.get("end_time").cloned(),
                ..Default::default()
            }),
            "query-deviceinfo" => Body::DeviceInfoQuery(Default::default()),
            "query-devicestatus" => Body::DeviceStatusQuery(Default::default()),
            "query-preset" => Body::PresetQuery(Default::default()),
            "query-config" => Body::ConfigDownloadQuery(ConfigDownloadQuery {
                config_type: Some(
                    args.get("config_type")
                        .cloned()
                        .unwrap_or_else(|| "BasicParam".into()),
                ),
                ..Default::default()
            }),
            "query-recordinfo" => {
                let (start, end) = if self.cfg.faults.recordinfo_no_time {
                    (None, None)
                } else {
                    let end = args
                        .get("end_time")
                        .cloned()
                        .unwrap_or_else(|| now.wall.format(TIME_FORMAT).to_string());
                    let start = args.get("start_time").cloned().unwrap_or_else(|| {
                        (now.wall - chrono::Duration::days(1))
                            .format(TIME_FORMAT)
                            .to_string()
                    });
                    (Some(start), Some(end))
                };
                let record_type = match args.get("type") {
                    Some(t) => match RecordType::parse_lenient(t).0 {
                        RecordType::Other(_) => {
                            return Err(format!("type {t:?}: time, alarm, manual or all"))
                        }
                        r => Some(r),
                    },
                    None => Some(RecordType::All),
                };
                Body::RecordInfoQuery(RecordInfoQuery {
                    start_time: start,
                    end_time: end,
                    secrecy: Some(0),
                    record_type,
                    ..Default::default()
                })
            }
            "ptz" => {
                let cmd = ptz_command(args)?;
                let mut hex = cmd.to_hex().map_err(|e| e.to_string())?;
                if self.cfg.faults.bad_ptzcmd {
                    // Break the checksum byte (bytes 1-7 summed modulo 256).
                    let last = u8::from_str_radix(&hex[14..16], 16).unwrap_or(0);
                    hex.replace_range(14..16, &format!("{:02X}", last.wrapping_add(1)));
                }
                Body::DeviceControl(DeviceControl {
                    ptz_cmd: Some(hex),
                    ..Default::default()
                })
            }
            "teleboot" => Body::DeviceControl(DeviceControl {
                tele_boot: Some(TeleBoot::Boot),
                ..Default::default()
            }),
            "record" => Body::DeviceControl(DeviceControl {
                record_cmd: Some(match args.get("cmd").map(String::as_str) {
                    None | Some("start" | "Record") => RecordCmd::Record,
                    Some("stop" | "StopRecord") => RecordCmd::StopRecord,
                    Some(o) => return Err(format!("cmd {o:?}: start or stop")),
                }),
                ..Default::default()
            }),
            "guard" => Body::DeviceControl(DeviceControl {
                guard_cmd: Some(match args.get("cmd").map(String::as_str) {
                    None | Some("set" | "SetGuard") => GuardCmd::SetGuard,
                    Some("reset" | "ResetGuard") => GuardCmd::ResetGuard,
                    Some(o) => return Err(format!("cmd {o:?}: set or reset")),
                }),
                ..Default::default()
            }),
            "alarm-reset" => Body::DeviceControl(DeviceControl {
                alarm_cmd: Some(manscdp::AlarmCmd::ResetAlarm),
                ..Default::default()
            }),
            "iframe" => Body::DeviceControl(DeviceControl {
                i_frame_cmd: Some(IFrameCmd::Send),
                ..Default::default()
            }),
            _ => unreachable!("checked against ACTIONS"),
        };
        let mut m = Message::new(sn, target.clone(), body);
        if action == "query-catalog" && self.cfg.faults.catalog_query_bad_sn {
            m.sn = Some(0);
        }
        self.send_query(now, &target, m)
    }

    /// The `device_id` argument, or the device that registered last.
    fn trigger_target(&self, args: &BTreeMap<String, String>) -> Result<String, String> {
        match args.get("device_id") {
            Some(d) => Ok(d.clone()),
            None => self
                .last_registered
                .clone()
                .ok_or_else(|| "no device is registered and no device_id was given".into()),
        }
    }

    /// Send a query or control MESSAGE to `target` and wait for its answer
    /// when it has one (§设备控制: record, guard, alarm reset and home
    /// position controls are answered; PTZ, TeleBoot, IFameCmd are not).
    pub(super) fn send_query(&mut self, now: Now, target: &str, m: Message) -> Result<(), String> {
        let (dest, owner) = self.route(target).ok_or_else(|| {
            format!("{target} is neither a registered device nor a channel of one")
        })?;
        let answered = match &m.body {
            Body::DeviceControl(c) => c.expects_reply(),
            _ => true,
        };
        let sn = m.sn.unwrap_or(0);
        let cmd = m.cmd_type.clone().unwrap_or(CmdType::Catalog);
        let req = self.new_request("MESSAGE", target, dest);
        let req = self.with_manscdp(req, &m);
        let purpose = if answered {
            let collector = match cmd {
                CmdType::Catalog => Some(Collector::Catalog(PageCollector::for_query(&m))),
                CmdType::RecordInfo => Some(Collector::RecordInfo(PageCollector::for_query(&m))),
                _ => None,
            };
            self.pending.insert(
                sn,
                PendingQuery {
                    target: target.to_string(),
                    owner,
                    cmd,
                    collector,
                    deadline: now.mono + self.protocol(self.cfg.collect_timeout),
                },
            );
            Purpose::Query { sn }
        } else {
            Purpose::Control
        };
        self.send_request(now, req, dest, target, purpose);
        Ok(())
    }

    /// A Response MESSAGE from a registered device (already answered 200).
    pub(super) fn handle_answer(
        &mut self,
        now: Now,
        sender: &str,
        m: Message,
        mut findings: Vec<Finding>,
    ) {
        let sn = m.sn.unwrap_or(0);
        if self.forwards.contains_key(&sn) {
            return self.forward_up(now, sn, m);
        }
        let cmd = m.cmd_type.clone();
        // An answer with the SN of a one-message query but another CmdType
        // (a DeviceInfo query answered with CmdType Catalog, as the spec's
        // own sample does): the SN says which query it answers, so it is
        // taken as that answer, with the finding.
        if let Some(p) = self
            .pending
            .get(&sn)
            .filter(|p| p.collector.is_none() && Some(&p.cmd) != cmd.as_ref())
        {
            let f = FindingCode::AnswerCmdType.at(
                format!("{}/CmdType", m.root.as_str()),
                format!(
                    "the answer to the {} query with SN {sn} carries CmdType {}, expected {}",
                    p.cmd,
                    cmd.as_ref().map_or("(none)", |c| c.as_str()),
                    p.cmd
                ),
            );
            findings.extend(self.keep_findings(sender, std::slice::from_ref(&f)));
            let p = self.pending.remove(&sn).expect("pending");
            self.events.push_back(PlatformEvent::Answer {
                device_id: p.target,
                cmd: p.cmd.as_str().to_string(),
                sn,
                result: m.get("Result"),
                findings,
            });
            return;
        }
        let Some(p) = self
            .pending
            .get_mut(&sn)
            .filter(|p| Some(&p.cmd) == cmd.as_ref())
        else {
            self.events.push_back(PlatformEvent::Answer {
                device_id: sender.to_string(),
                cmd: cmd_name(&m),
                sn,
                result: m.get("Result"),
                findings,
            });
            return;
        };
        let stop_early = self.cfg.faults.collect_stops_early;
        let done = match &mut p.collector {
            None => true,
            Some(Collector::Catalog(c)) => {
                matches!(c.push(&m), Progress::Complete { .. }) || stop_early
            }
            Some(Collector::RecordInfo(c)) => {
                matches!(c.push(&m), Progress::Complete { .. }) || stop_early
            }
        };
        if !done {
            return;
        }
        let p = self.pending.remove(&sn).expect("pending");
        match p.collector {
            None => self.events.push_back(PlatformEvent::Answer {
                device_id: p.target,
                cmd: cmd_name(&m),
                sn,
                result: m.get("Result"),
                findings,
            }),
            Some(c) => self.finish_collection(sn, p.target, p.owner, c),
        }
    }

    /// End a collection: learn the catalog's channels, report the result.
    fn finish_collection(&mut self, sn: u64, target: String, owner: String, c: Collector) {
        let (cmd, messages, complete, items, findings) = match c {
            Collector::Catalog(c) => {
                let (messages, complete) = (c.messages(), c.is_complete());
                let (items, findings) = c.finish();
                for it in &items {
                    if let Some(id) = &it.device_id {
                        if *id == owner {
                            continue;
                        }
                        self.channels.insert(
                            id.clone(),
                            Channel {
                                owner: owner.clone(),
                                name: it.name.clone(),
                                status: it.status.as_ref().map(|s| s.as_str().to_string()),
                            },
                        );
                    }
                }
                ("Catalog", messages, complete, items.len(), findings)
            }
            Collector::RecordInfo(c) => {
                let (messages, complete) = (c.messages(), c.is_complete());
                let (items, findings) = c.finish();
                ("RecordInfo", messages, complete, items.len(), findings)
            }
        };
        self.events.push_back(PlatformEvent::Collected {
            device_id: target,
            cmd: cmd.into(),
            sn,
            items,
            messages,
            complete,
            findings,
        });
    }

    pub(super) fn tick_queries(&mut self, now: Now) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now.mono)
            .map(|(sn, _)| *sn)
            .collect();
        for sn in late {
            let p = self.pending.remove(&sn).expect("pending");
            match p.collector {
                Some(c) => self.finish_collection(sn, p.target, p.owner, c),
                None => self.events.push_back(PlatformEvent::RequestFailed {
                    target: p.target,
                    method: "MESSAGE".into(),
                    status: None,
                }),
            }
        }
        self.forwards.retain(|_, f| f.deadline > now.mono);
    }

    /// §报警事件通知, 报警流程: "1. 设备端主动发送报警 2. 服务端返回200 OK.
    /// 3. 服务端返回Result为OK 4. 设备端返回200 OK".
    ///
    /// The 报警格式 sample instead shows the `<Response>...<Result>OK</Result>`
    /// body inside the `SIP/2.0 200 OK` itself. Decision: follow the flow —
    /// a plain 200, then the Response in a MESSAGE of its own, which the
    /// device answers with 200 (step 4 only makes sense that way).
    pub(super) fn handle_alarm(
        &mut self,
        now: Now,
        from: SocketAddr,
        msg: &SipMessage,
        sender: &str,
        m: Message,
    ) {
        self.respond(from, msg, 200);
        let (priority, method) = match &m.body {
            Body::AlarmNotify(a) => (a.alarm_priority, a.alarm_method),
            _ => (None, None),
        };
        self.events.push_back(PlatformEvent::Alarm {
            device_id: sender.to_string(),
            sn: m.sn,
            priority,
            method,
        });
        if self.cfg.faults.no_alarm_response {
            return;
        }
        let result = if self.cfg.faults.alarm_result_error {
            ResultType::Error
        } else {
            ResultType::Ok
        };
        let answer = m.reply_result(result);
        let req = self.new_request("MESSAGE", sender, from);
        let req = self.with_manscdp(req, &answer);
        self.send_request(now, req, from, sender, Purpose::AlarmAck);
    }
}

pub(super) fn cmd_name(m: &Message) -> String {
    m.cmd_type
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

/// An alarm subscription body (订阅格式): every priority and method, over
/// the given window.
pub(super) fn alarm_query(sn: u64, device_id: &str, start: String, end: String) -> Message {
    Message::new(
        sn,
        device_id,
        Body::AlarmQuery(AlarmQuery {
            start_alarm_priority: Some(1),
            end_alarm_priority: Some(4),
            alarm_method: Some("0".into()),
            start_time: Some(start),
            end_time: Some(end),
            ..Default::default()
        }),
    )
}

pub(super) fn window(now: Now, days: i64) -> (String, String) {
    (
        now.wall.format(TIME_FORMAT).to_string(),
        (now.wall + chrono::Duration::days(days))
            .format(TIME_FORMAT)
            .to_string(),
    )
}

/// Seconds as a protocol-time duration.
pub(super) fn secs(s: u32) -> Duration {
    Duration::from_secs(s as u64)
}
