//! MESSAGE requests the device receives, and §设备查询.
//!
//! §设备查询流程: "目标设备收到命令后返回200OK", then "目标设备向SIP服务器
//! 发送设备查询响应命令" in a separate MESSAGE. The Response echoes the
//! query's SN ("响应命令中的SN值应使用请求命令中的SN值") and DeviceID
//! ("取值与目录查询请求相同"). Catalog and RecordInfo answers are split over
//! several MESSAGEs ("目录查询应答命令支持多响应消息传输"), each carrying
//! SumNum and a list whose Num counts its own items.
//!
//! Decision: the query's DeviceID names the target ("目标设备的设备编码");
//! when it is neither this device nor one of its channels or alarm inputs
//! the device is not the target, and it answers SIP 404 with no Response.
//! The spec does not say what a device must do here.

use std::net::SocketAddr;

use super::model::{self, recordings, secs, XML_TIME};
use super::txn::Purpose;
use super::{Device, DeviceEvent};
use crate::proto::gb28181::manscdp::{
    catalog_pages, record_info_pages, AlarmStatusItem, BasicParam, Body, CmdType,
    ConfigDownloadResponse, DeviceInfoResponse, DeviceStatusResponse, ItemList, Message, OnOff,
    Online, PresetQueryResponse, ResultType, Root,
};
use crate::proto::sip::SipMessage;
use crate::proto::Now;

impl Device {
    pub(super) fn on_message_request(&mut self, now: Now, from: SocketAddr, req: &SipMessage) {
        let decoded = match Message::decode(&req.body) {
            Ok(d) => d,
            Err(e) => {
                self.events.push_back(DeviceEvent::BadMessage {
                    reason: format!("MESSAGE body is not MANSCDP: {e}"),
                });
                let code = if self.cfg.faults.robust_accept_garbage {
                    200
                } else {
                    400
                };
                return self.respond(now, from, req, code, &[]);
            }
        };
        let m = decoded.message;
        if self.cfg.faults.robust_hang_long_id
            && m.device_id.as_ref().is_some_and(|id| id.len() > 1024)
        {
            return self.hang("a MESSAGE with a DeviceID over 1,024 characters".into());
        }
        match (m.root, m.cmd_type.clone()) {
            (Root::Query, _) | (Root::Control, _) => {
                let target = m.device_id.clone().unwrap_or_default();
                if !self.is_target(&target) {
                    return self.respond(now, from, req, 404, &[]);
                }
                if m.root == Root::Control {
                    if let Err(reason) = self.check_controller(from, req) {
                        self.events
                            .push_back(DeviceEvent::ControlRejected { reason });
                        return self.respond(now, from, req, 403, &[]);
                    }
                }
                self.respond(now, from, req, 200, &[]);
                if m.root == Root::Query {
                    self.answer_query(now, &m);
                } else {
                    self.control(now, &m);
                }
            }
            (Root::Notify, Some(CmdType::Broadcast)) => self.on_broadcast(now, from, req, &m),
            (Root::Response, cmd) => {
                if cmd == Some(CmdType::Alarm) && self.cfg.faults.alarm_ignore_response {
                    return;
                }
                self.respond(now, from, req, 200, &[]);
                if cmd == Some(CmdType::Alarm) {
                    let result = match &m.body {
                        Body::AlarmResponse(r) => r.result.as_ref().map(|v| v.as_str().to_string()),
                        _ => None,
                    };
                    self.events
                        .push_back(DeviceEvent::AlarmAcknowledged { sn: m.sn, result });
                }
            }
            (root, cmd) => {
                // Not something a camera is asked: accept the MESSAGE, do nothing.
                self.respond(now, from, req, 200, &[]);
                self.events.push_back(DeviceEvent::BadMessage {
                    reason: format!(
                        "unsupported {} {}",
                        root.as_str(),
                        cmd.as_ref().map(|c| c.as_str()).unwrap_or("(no CmdType)")
                    ),
                });
            }
        }
    }

    /// True when `id` is this device, one of its channels or alarm inputs
    /// (or any code at all under the `answer-unknown-device` fault).
    pub(super) fn is_target(&self, id: &str) -> bool {
        self.cfg.faults.answer_unknown_device
            || self.cam.get(&self.cfg).owns(&self.cfg.device_id, id)
    }

    /// Send `m` as a Response MESSAGE (applying the SN-echo fault).
    pub(super) fn send_response(&mut self, now: Now, m: Message) {
        self.send_response_for(now, m, Purpose::Response)
    }

    fn send_response_for(&mut self, now: Now, mut m: Message, purpose: Purpose) {
        if self.cfg.faults.wrong_sn_echo {
            m.sn = m.sn.map(|s| s + 1);
        }
        self.send_message(now, &m, purpose);
    }

    fn answer_query(&mut self, now: Now, q: &Message) {
        let target = q.device_id.clone().unwrap_or_default();
        let replies = match (&q.cmd_type, &q.body) {
            (Some(CmdType::Catalog), _) => self.catalog_answer(q, &target),
            (Some(CmdType::DeviceInfo), _) => {
                if self.cfg.faults.no_deviceinfo {
                    Vec::new()
                } else {
                    vec![q.reply(Body::DeviceInfoResponse(DeviceInfoResponse {
                        device_name: Some(self.cfg.device_name.to_string()),
                        result: Some(ResultType::Ok),
                        device_type: Some("IPC".into()),
                        manufacturer: Some(self.cfg.manufacturer.to_string()),
                        model: Some(self.cfg.model.to_string()),
                        firmware: Some(self.cfg.firmware.to_string()),
                        channel: Some(self.cam.get(&self.cfg).channels.len() as u32),
                        ..DeviceInfoResponse::default()
                    }))]
                }
            }
            (Some(CmdType::DeviceStatus), _) => vec![q.reply(self.device_status(now))],
            (Some(CmdType::RecordInfo), Body::RecordInfoQuery(r)) => {
                let window = r
                    .start_time
                    .as_deref()
                    .and_then(model::parse_xml_time)
                    .zip(r.end_time.as_deref().and_then(model::parse_xml_time));
                let mut items = match window {
                    Some((s, e)) => recordings(&self.cfg, &target, s, e, r.record_type.as_ref()),
                    None => Vec::new(),
                };
                if let (Some((s, _)), true) = (window, self.cfg.faults.record_outside_window) {
                    let a = s.and_utc().timestamp() - 2 * self.cfg.record_interval.as_secs() as i64;
                    let b = a + self.cfg.record_duration.as_secs().max(1) as i64;
                    items.insert(0, model::record_item(&self.cfg, &target, a, b));
                }
                record_info_pages(
                    q,
                    Some(&self.cfg.device_name),
                    &items,
                    self.cfg.record_page_size,
                )
            }
            (Some(CmdType::ConfigDownload), Body::ConfigDownloadQuery(c)) => {
                let wants_basic = c
                    .config_type
                    .as_deref()
                    .is_some_and(|t| t.split('/').any(|b| b.trim() == "BasicParam"));
                let body = ConfigDownloadResponse {
                    result: Some(if wants_basic {
                        ResultType::Ok
                    } else {
                        ResultType::Error
                    }),
                    basic_param: wants_basic.then(|| self.basic_param()),
                    ..ConfigDownloadResponse::default()
                };
                vec![q.reply(Body::ConfigDownloadResponse(body))]
            }
            (Some(CmdType::PresetQuery), _) => {
                let mut list = ItemList::new(self.cam.get(&self.cfg).preset_items());
                if self.cfg.faults.preset_wrong_num {
                    list.num = list.num.map(|n| n + 1);
                }
                vec![q.reply(Body::PresetQueryResponse(PresetQueryResponse {
                    preset_list: Some(list),
                    ..PresetQueryResponse::default()
                }))]
            }
            (cmd, _) => {
                self.events.push_back(DeviceEvent::BadMessage {
                    reason: format!(
                        "unsupported query {}",
                        cmd.as_ref().map(|c| c.as_str()).unwrap_or("(no CmdType)")
                    ),
                });
                Vec::new()
            }
        };
        for r in replies {
            self.send_response(now, r);
        }
    }

    fn catalog_answer(&self, q: &Message, target: &str) -> Vec<Message> {
        let f = &self.cfg.faults;
        let mut items: Vec<_> = self
            .cam
            .get(&self.cfg)
            .channels
            .iter()
            .filter(|c| target == self.cfg.device_id || c.id == target)
            .map(|c| self.cam.get(&self.cfg).catalog_item(&self.cfg, c))
            .collect();
        if f.catalog_incomplete_items {
            for i in &mut items {
                *i = crate::proto::gb28181::manscdp::CatalogItem::new(
                    i.device_id.clone().unwrap_or_default(),
                    i.name.clone().unwrap_or_default(),
                );
            }
        }
        let first = items.first().cloned();
        let mut pages = catalog_pages(q, &items, self.cfg.catalog_page_size);
        for (i, p) in pages.iter_mut().enumerate() {
            let Body::CatalogResponse(list) = &mut p.body else {
                continue;
            };
            if f.catalog_wrong_sumnum {
                list.sum_num = list.sum_num.map(|n| n + 1);
            }
            if f.catalog_wrong_num && i == 0 {
                if let Some(l) = &mut list.device_list {
                    l.num = l.num.map(|n| n + 1);
                }
            }
        }
        if let (true, Some(dup)) = (f.catalog_duplicate, first) {
            if let Some(Body::CatalogResponse(list)) = pages.last_mut().map(|p| &mut p.body) {
                if let Some(l) = &mut list.device_list {
                    l.items.push(dup);
                    l.num = Some(l.items.len() as u32);
                }
            }
        }
        pages
    }

    fn device_status(&self, now: Now) -> Body {
        let faulty = !self.cfg.faulty_subdevices.is_empty();
        let onoff = |b: bool| if b { OnOff::On } else { OnOff::Off };
        let alarms = self
            .cam
            .get(&self.cfg)
            .alarm_inputs
            .iter()
            .map(|id| AlarmStatusItem {
                device_id: Some(id.clone()),
                duty_status: Some(self.cam.get(&self.cfg).duty_status()),
                ..AlarmStatusItem::default()
            })
            .collect();
        Body::DeviceStatusResponse(DeviceStatusResponse {
            result: Some(ResultType::Ok),
            online: (!self.cfg.faults.devicestatus_incomplete).then_some(Online::Online),
            status: Some(if faulty {
                ResultType::Error
            } else {
                ResultType::Ok
            }),
            reason: faulty.then(|| format!("faulty: {}", self.cfg.faulty_subdevices.join(","))),
            encode: Some(OnOff::On),
            record: Some(onoff(self.cam.get(&self.cfg).recording)),
            device_time: Some(now.wall.format(XML_TIME).to_string()),
            alarm_status: Some(ItemList::new(alarms)),
            ..DeviceStatusResponse::default()
        })
    }

    pub(super) fn basic_param(&self) -> BasicParam {
        BasicParam {
            name: Some(self.cfg.device_name.to_string()),
            device_id: Some(self.cfg.device_id.clone()),
            sip_server_id: Some(self.server.id.to_string()),
            sip_server_ip: Some(self.server.addr.ip().to_string()),
            sip_server_port: Some(self.server.addr.port()),
            domain_name: Some(self.cfg.domain.to_string()),
            expiration: Some(self.cfg.expires),
            heart_beat_interval: Some(secs(self.cfg.keepalive_interval)),
            heart_beat_count: Some(self.cfg.keepalive_timeout_count),
            ..BasicParam::default()
        }
    }

    /// §语音广播: "语音流接收者收到语音广播通知消息后,向SIP服务器发送200OK
    /// 响应", then a Broadcast Response. The notify has no DeviceID; its
    /// TargetID names the receiver, which must be this device or a channel.
    fn on_broadcast(&mut self, now: Now, from: SocketAddr, req: &SipMessage, m: &Message) {
        let (target, source_id) = match &m.body {
            Body::BroadcastNotify(b) => {
                (b.target_id.clone().unwrap_or_default(), b.source_id.clone())
            }
            _ => (String::new(), None),
        };
        if !self.is_target(&target) {
            return self.respond(now, from, req, 404, &[]);
        }
        self.respond(now, from, req, 200, &[]);
        if !self.cfg.faults.no_broadcast_response {
            let r = m.reply_result(ResultType::Ok);
            self.send_response_for(now, r, Purpose::BroadcastResponse { source_id });
        }
    }
}
