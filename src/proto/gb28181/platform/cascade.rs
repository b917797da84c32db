//! Platform cascade (`platform-cascade-sip.txt`), lower platform side:
//!
//! - 平台注册: "下级平台主动向上级平台注册; 注册鉴权信息(用户名和密码)由上级提供".
//!   A [`Device`] state machine, composed here, does the registration with
//!   the platform's own ID, so refresh, digest answer and the 60 s retry
//!   rule are the reference camera's.
//! - 平台心跳保活: keepalives every `keepalive_interval`; "下级平台连续三次
//!   未收到心跳响应,则认为上级平台离线" — then it registers again.
//! - 平台设备共享: a Catalog query from the upper platform is answered with
//!   the shared devices, `catalog_page_size` items a message, each with SumNum.
//! - 共享设备状态变更通知: a shared device going on or off line is sent up as
//!   a NOTIFY with a catalog notification body.
//! - 云台控制, 录像查询: requests for a shared device are passed down to it,
//!   and its answers passed back up with the upper platform's SN.
//!
//! As upper platform nothing extra is needed: a lower platform registers
//! like a device, and its catalog is queried and collected like a device's.

use std::time::Instant;

use super::config::UpstreamConfig;
use super::queries::{cmd_name, Collector, Forward};
use super::transaction::Purpose;
use super::{Platform, PlatformConfig, PlatformEvent};
use crate::proto::gb28181::device::{Device, DeviceConfig, DeviceEvent};
use crate::proto::gb28181::manscdp::{
    catalog_pages, Body, CatalogEvent, CatalogItem, CatalogList, CmdType, DeviceInfoResponse,
    DeviceStatusResponse, Message, OnOff, Online, PageCollector, Progress, ResultType, Root,
};
use crate::proto::sip::SipMessage;
use crate::proto::Now;

/// The registration to the upper platform and its keepalive.
pub(super) struct Upstream {
    pub cfg: UpstreamConfig,
    pub dev: Device,
    /// The upper platform holds us registered.
    pub online: bool,
    /// When the next keepalive is due.
    pub keepalive_at: Option<Instant>,
    /// The last keepalive has had no final answer yet.
    pub outstanding: bool,
    /// Keepalives in a row without an answer.
    pub misses: u32,
}

impl Upstream {
    pub fn new(pc: &PlatformConfig, u: &UpstreamConfig) -> Upstream {
        let mut dc = DeviceConfig::new(
            &pc.platform_id,
            &u.platform_id,
            &u.password,
            pc.local,
            u.addr,
        );
        dc.username = u.username.clone().unwrap_or_else(|| pc.platform_id.clone());
        dc.transport = pc.transport;
        dc.expires = u.expires;
        dc.time_scale = pc.time_scale;
        dc.user_agent = pc.user_agent.as_str().into();
        dc.seed = pc.seed ^ 0x5eed;
        // The upstream `Device` only registers: the lower platform sends its
        // own keepalives upward (it counts their misses and reacts to a
        // refusal as the cascade document describes), so the device's are off.
        dc.keepalive_interval = std::time::Duration::from_secs(10 * 365 * 86400);
        Upstream {
            cfg: u.clone(),
            dev: Device::new(dc),
            online: false,
            keepalive_at: None,
            outstanding: false,
            misses: 0,
        }
    }
}

impl Platform {
    /// Move what the upstream registration produced into the platform's
    /// queues and react to its events.
    pub(super) fn drain_upstream(&mut self, now: Now) {
        let Some(u) = &mut self.upstream else { return };
        while let Some(t) = u.dev.poll_transmit() {
            self.transmits.push_back(t);
        }
        let mut evs = Vec::new();
        while let Some(e) = u.dev.poll_event() {
            evs.push(e);
        }
        for e in evs {
            let Some(u) = &mut self.upstream else { return };
            match e {
                DeviceEvent::Registered { expires, .. } => {
                    let was = std::mem::replace(&mut u.online, true);
                    self.events
                        .push_back(PlatformEvent::UpstreamRegistered { expires });
                    if !was {
                        u.misses = 0;
                        u.outstanding = false;
                        u.keepalive_at = None;
                        if !self.cfg.faults.cascade_no_keepalive {
                            self.send_keepalive(now);
                        }
                    }
                }
                other => {
                    let reason = match other {
                        DeviceEvent::Unregistered => "unregistered".to_string(),
                        DeviceEvent::Rejected { status } => {
                            format!("registration refused with {status}")
                        }
                        DeviceEvent::TimedOut => "registration not answered".to_string(),
                        DeviceEvent::BadMessage { reason } => reason,
                        DeviceEvent::PlatformOffline { .. } => "upper platform offline".to_string(),
                        // The rest concern device behaviours the upstream
                        // registration does not use.
                        _ => continue,
                    };
                    u.online = false;
                    u.keepalive_at = None;
                    self.events
                        .push_back(PlatformEvent::UpstreamOffline { reason });
                }
            }
        }
        let Some(u) = &mut self.upstream else { return };
        while let Some(t) = u.dev.poll_transmit() {
            self.transmits.push_back(t);
        }
    }

    /// A Notify/Keepalive to the upper platform (§保活信令流程).
    fn send_keepalive(&mut self, now: Now) {
        let Some(u) = &self.upstream else { return };
        let (upper, addr) = (u.cfg.platform_id.clone(), u.cfg.addr);
        let sn = self.next_sn();
        let body = Message::keepalive(sn, self.cfg.platform_id.clone(), ResultType::Ok);
        let req = self.new_request("MESSAGE", &upper, addr);
        let req = self.with_manscdp(req, &body);
        self.send_request(now, req, addr, &upper, Purpose::Keepalive);
        let next = now.mono + self.protocol(self.cfg.keepalive_interval);
        if let Some(u) = &mut self.upstream {
            u.outstanding = true;
            u.keepalive_at = Some(next);
        }
    }

    pub(super) fn tick_upstream(&mut self, now: Now) {
        let count = self.cfg.keepalive_timeout_count.max(1);
        let no_reregister = self.cfg.faults.cascade_no_reregister;
        let Some(u) = &mut self.upstream else { return };
        u.dev.handle_timeout(now);
        if !u.online || u.keepalive_at.is_none_or(|t| t > now.mono) {
            return;
        }
        if std::mem::take(&mut u.outstanding) {
            u.misses += 1;
        }
        if u.misses >= count && !no_reregister {
            // cascade 平台心跳保活: "下级平台连续三次未收到心跳响应,则认为上级平台离线".
            let misses = u.misses;
            self.upstream_lost(now, format!("{misses} keepalives unanswered"));
            return;
        }
        self.send_keepalive(now);
    }

    /// The upper platform is taken offline: register again (§注册 "重新发起注册").
    fn upstream_lost(&mut self, now: Now, reason: String) {
        let Some(u) = &mut self.upstream else { return };
        u.online = false;
        u.keepalive_at = None;
        u.outstanding = false;
        u.misses = 0;
        u.dev.start(now);
        self.txs.retain(|t| t.purpose != Purpose::Keepalive);
        self.events
            .push_back(PlatformEvent::UpstreamOffline { reason });
    }

    /// The final answer to a keepalive. A refusal means the upper platform
    /// does not hold us registered (the rule this platform applies itself,
    /// see `handle_keepalive`): register again at once.
    pub(super) fn on_keepalive_answer(&mut self, now: Now, code: u16) {
        let no_reregister = self.cfg.faults.cascade_no_reregister;
        let Some(u) = &mut self.upstream else { return };
        if (200..300).contains(&code) {
            u.outstanding = false;
            u.misses = 0;
        } else if !no_reregister {
            self.upstream_lost(now, format!("keepalive refused with {code}"));
        }
    }

    /// Devices this platform shares upward, as catalog items (目录检索响应格式).
    fn shared_items(&self) -> Vec<CatalogItem> {
        self.cfg
            .shared_devices()
            .into_iter()
            .map(|id| {
                let serial = id.get(16..).unwrap_or(&id).to_string();
                CatalogItem {
                    name: Some(format!("摄像机{serial}")),
                    manufacturer: Some("camcert".into()),
                    model: Some("reference camera".into()),
                    owner: Some("camcert".into()),
                    civil_code: Some(id.get(..6).unwrap_or(&id).into()),
                    address: Some("camcert".into()),
                    parental: Some(0),
                    parent_id: Some(self.cfg.platform_id.clone()),
                    safety_way: Some(0),
                    register_way: Some(1),
                    secrecy: Some(0),
                    status: Some(if self.registrations.contains_key(&id) {
                        OnOff::On
                    } else {
                        OnOff::Off
                    }),
                    ..CatalogItem::new(id.clone(), String::new())
                }
            })
            .collect()
    }

    fn is_shared(&self, id: &str) -> bool {
        let shared = self.cfg.shared_devices();
        shared.iter().any(|d| d == id)
            || self
                .channels
                .get(id)
                .is_some_and(|c| shared.contains(&c.owner))
    }

    /// A request whose From is the upper platform.
    pub(super) fn handle_upstream_request(
        &mut self,
        now: Now,
        from: std::net::SocketAddr,
        msg: &SipMessage,
        m: Message,
    ) {
        let target = m.device_id.clone().unwrap_or_default();
        match (m.root, &m.cmd_type) {
            // 平台设备共享: "下级平台收到上级平台的目录查询消息时,返回共享给该上级平台的所有共享设备信息".
            (Root::Query, Some(CmdType::Catalog)) if target == self.cfg.platform_id => {
                self.respond(from, msg, 200);
                self.send_shared_catalog(now, &m);
            }
            (Root::Query | Root::Control, Some(_)) if target == self.cfg.platform_id => {
                self.respond(from, msg, 200);
                self.answer_about_self(now, &m);
            }
            (Root::Query | Root::Control, Some(cmd)) => {
                if !self.is_shared(&target) || self.route(&target).is_none() {
                    self.events.push_back(PlatformEvent::Ignored {
                        from,
                        summary: format!("{} for {target}, which is not shared", cmd.as_str()),
                    });
                    return self.respond(from, msg, 404);
                }
                self.respond(from, msg, 200);
                let f = &self.cfg.faults;
                let dropped = match &m.body {
                    Body::DeviceControl(c) => c.ptz_cmd.is_some() && f.no_forward_ptz,
                    Body::RecordInfoQuery(_) => f.no_forward_recordinfo,
                    _ => false,
                };
                if !dropped {
                    self.forward_down(now, &target, m);
                }
            }
            _ => self.respond(from, msg, 200),
        }
    }

    fn upstream_target(&self) -> Option<(String, std::net::SocketAddr)> {
        self.upstream
            .as_ref()
            .map(|u| (u.cfg.platform_id.clone(), u.cfg.addr))
    }

    /// Send `body` to the upper platform in a MESSAGE.
    fn send_up(&mut self, now: Now, method: &str, body: &Message) {
        let Some((upper, addr)) = self.upstream_target() else {
            return;
        };
        let mut req = self.new_request(method, &upper, addr);
        if method == "NOTIFY" {
            req.headers.push("Event", "Catalog");
        }
        let req = self.with_manscdp(req, body);
        self.send_request(now, req, addr, &upper, Purpose::Upstream);
    }

    fn send_shared_catalog(&mut self, now: Now, q: &Message) {
        let items = self.shared_items();
        let mut pages = catalog_pages(q, &items, self.cfg.catalog_page_size);
        if self.cfg.faults.cascade_wrong_sumnum {
            for p in &mut pages {
                if let Body::CatalogResponse(c) = &mut p.body {
                    c.sum_num = Some(items.len() as u32 + 1);
                }
            }
        }
        for p in pages {
            self.send_up(now, "MESSAGE", &p);
        }
    }

    /// DeviceInfo and DeviceStatus about the platform itself.
    fn answer_about_self(&mut self, now: Now, q: &Message) {
        let body = match q.cmd_type {
            Some(CmdType::DeviceInfo) => Body::DeviceInfoResponse(DeviceInfoResponse {
                device_name: Some(self.cfg.user_agent.clone()),
                result: Some(ResultType::Ok),
                manufacturer: Some("camcert".into()),
                model: Some("reference platform".into()),
                firmware: Some(env!("CARGO_PKG_VERSION").into()),
                channel: Some(self.cfg.shared_devices().len() as u32),
                ..Default::default()
            }),
            Some(CmdType::DeviceStatus) => Body::DeviceStatusResponse(DeviceStatusResponse {
                result: Some(ResultType::Ok),
                online: Some(Online::Online),
                status: Some(ResultType::Ok),
                ..Default::default()
            }),
            _ => return,
        };
        let answer = q.reply(body);
        self.send_up(now, "MESSAGE", &answer);
    }

    /// Pass a request from the upper platform to the device, under an SN of
    /// this platform's (the device answers with it; [`Platform::forward_up`]
    /// puts the upper platform's back).
    fn forward_down(&mut self, now: Now, target: &str, m: Message) {
        let Some((dest, _)) = self.route(target) else {
            return;
        };
        let down_sn = self.next_sn();
        let mut down = m.clone();
        down.sn = Some(down_sn);
        let answered = match &m.body {
            Body::DeviceControl(c) => c.expects_reply(),
            _ => m.root == Root::Query || m.cmd_type == Some(CmdType::DeviceConfig),
        };
        let cmd = m.cmd_type.clone().unwrap_or(CmdType::Catalog);
        if answered {
            let collector = match cmd {
                CmdType::Catalog => Some(Collector::Catalog(PageCollector::for_query(&down))),
                CmdType::RecordInfo => Some(Collector::RecordInfo(PageCollector::for_query(&down))),
                _ => None,
            };
            self.forwards.insert(
                down_sn,
                Forward {
                    up_sn: m.sn,
                    cmd: cmd.clone(),
                    collector,
                    deadline: now.mono + self.protocol(self.cfg.collect_timeout),
                },
            );
        }
        let req = self.new_request("MESSAGE", target, dest);
        let req = self.with_manscdp(req, &down);
        self.send_request(now, req, dest, target, Purpose::Forward);
        self.events.push_back(PlatformEvent::Forwarded {
            device_id: target.to_string(),
            cmd: cmd.as_str().to_string(),
        });
    }

    /// An answer to a forwarded request: send it up with the upper
    /// platform's SN. A Catalog or RecordInfo answer is followed until SumNum.
    pub(super) fn forward_up(&mut self, now: Now, down_sn: u64, m: Message) {
        let Some(f) = self.forwards.get_mut(&down_sn) else {
            return;
        };
        if f.cmd.as_str() != cmd_name(&m) {
            return;
        }
        let done = match &mut f.collector {
            Some(Collector::Catalog(c)) => matches!(c.push(&m), Progress::Complete { .. }),
            Some(Collector::RecordInfo(c)) => matches!(c.push(&m), Progress::Complete { .. }),
            None => true,
        };
        let mut up = m;
        up.sn = f.up_sn;
        if done {
            self.forwards.remove(&down_sn);
        }
        self.send_up(now, "MESSAGE", &up);
    }

    /// 共享设备状态变更通知: "下级平台共享设备状态变更时通知给上级平台".
    ///
    /// The cascade example shows the NOTIFY with no Event header, outside
    /// any subscription. Decision: send `Event: Catalog` (RFC 6665 §8.2.1
    /// requires an Event header in NOTIFY) and a catalog notification body
    /// naming the device with Event ON or OFF.
    pub(super) fn notify_upstream_status(&mut self, now: Now, device_id: &str, on: bool) {
        if !self.upstream_online()
            || self.cfg.faults.cascade_no_status_notify
            || !self.cfg.shared_devices().iter().any(|d| d == device_id)
        {
            return;
        }
        let sn = self.next_sn();
        let item = CatalogItem {
            device_id: Some(device_id.to_string()),
            event: Some(if on {
                CatalogEvent::On
            } else {
                CatalogEvent::Off
            }),
            ..Default::default()
        };
        let body = Message::new(
            sn,
            self.cfg.platform_id.clone(),
            Body::CatalogNotify(CatalogList::page(1, vec![item])),
        );
        self.send_up(now, "NOTIFY", &body);
    }
}
