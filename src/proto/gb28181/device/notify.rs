//! What the device reports on its own: §报警事件通知 (alarm), MediaStatus,
//! catalog changes (§目录订阅) and §图像抓拍's UploadSnapShotFinished.
//!
//! 报警流程: "1. 设备端主动发送报警 2. 服务端返回200 OK. 3. 服务端返回Result
//! 为OK 4. 设备端返回200 OK" — the alarm goes to the server as a MESSAGE;
//! the server's Response MESSAGE is answered 200 (see `queries`).
//! "事件源接受事件订阅后，在事件触发后应立即通知事件观察者...事件通知使用
//! NOTIFY方法": alarm subscribers also get the alarm as a NOTIFY in their
//! subscription dialog. Decision: the MESSAGE to the server is sent whether
//! or not someone subscribed (报警上告), the NOTIFY only to subscribers
//! whose filter matches (报警通知).

use std::collections::BTreeMap;

use super::control::arg;
use super::model::XML_TIME;
use super::subscribe::SubKind;
use super::txn::Purpose;
use super::{Device, Later};
use crate::proto::gb28181::manscdp::{
    AlarmInfo, AlarmNotify, AlarmTypeParam, Body, CatalogEvent, CatalogItem, CatalogList,
    MediaStatusNotify, Message, SnapShotList, UploadSnapShotFinished,
};
use crate::proto::Now;

impl Device {
    /// The `alarm` action: args `priority` (1-4, default 1), `method` (1-7,
    /// default 5 video), `type` (default 2), `description`, `device` (the
    /// alarm source, default this device).
    pub(super) fn raise_alarm(
        &mut self,
        now: Now,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let priority: u32 = arg(args, "priority", 1)?;
        let method: u32 = arg(args, "method", 5)?;
        let alarm_type: u32 = arg(args, "type", 2)?;
        let source = args
            .get("device")
            .cloned()
            .unwrap_or_else(|| self.cfg.device_id.clone());
        let body = AlarmNotify {
            alarm_priority: (!self.cfg.faults.alarm_missing_priority).then_some(priority),
            alarm_method: Some(method),
            alarm_time: Some(now.wall.format(XML_TIME).to_string()),
            alarm_description: Some(
                args.get("description")
                    .cloned()
                    .unwrap_or_else(|| "视频动检".into()),
            ),
            info: Some(AlarmInfo {
                alarm_type: Some(alarm_type),
                alarm_type_param: Some(AlarmTypeParam {
                    event_type: Some(1),
                    ..AlarmTypeParam::default()
                }),
                ..AlarmInfo::default()
            }),
            ..AlarmNotify::default()
        };
        self.cam.get_mut(&self.cfg).alarming = true;
        let sn = self.next_sn();
        let m = Message::new(sn, source, Body::AlarmNotify(body));
        self.send_message(now, &m, Purpose::Alarm { sn });
        self.notify_subscribers(now, &m, |k| match k {
            SubKind::Alarm(q) => alarm_matches(q, priority, method),
            SubKind::Catalog => false,
        });
        Ok(())
    }

    /// The `media-status` action: Notify/MediaStatus with NotifyType 121
    /// ("文件下载: <CmdType>MediaStatus</CmdType> ... <NotifyType>121</NotifyType>").
    /// Args: `device` (the channel whose file stream ended), `notify_type`.
    pub(super) fn media_status(
        &mut self,
        now: Now,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let default = if self.cfg.faults.media_status_wrong_type {
            122
        } else {
            121
        };
        let t: u32 = arg(args, "notify_type", default)?;
        let device = args.get("device").cloned().unwrap_or_else(|| {
            self.cam
                .get(&self.cfg)
                .channels
                .first()
                .map(|c| c.id.clone())
                .unwrap_or_else(|| self.cfg.device_id.clone())
        });
        let sn = self.next_sn();
        let body = MediaStatusNotify {
            notify_type: Some(t),
            ..MediaStatusNotify::default()
        };
        let m = Message::new(sn, device, Body::MediaStatus(body));
        self.send_message(now, &m, Purpose::Report);
        Ok(())
    }

    /// The `catalog-change` action: args `event` (ADD, DEL, ON, OFF, VLOST,
    /// DEFECT, UPDATE; default OFF) and `channel` (1-based; default 1, or a
    /// new channel for ADD). The catalog changes, and catalog subscribers
    /// get a Notify/Catalog with the changed item.
    pub(super) fn catalog_change(
        &mut self,
        now: Now,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let event = CatalogEvent::from(args.get("event").map(String::as_str).unwrap_or("OFF"));
        if let CatalogEvent::Other(e) = &event {
            return Err(format!(
                "unknown catalog event {e:?} (ADD, DEL, ON, OFF, VLOST, DEFECT, UPDATE)"
            ));
        }
        let next = self
            .cam
            .get(&self.cfg)
            .channels
            .iter()
            .map(|c| c.index)
            .max()
            .unwrap_or(0)
            + 1;
        let default = if event == CatalogEvent::Add { next } else { 1 };
        let k: u32 = arg(args, "channel", default)?;
        if k == 0 || k > 999 {
            return Err(format!("channel {k} is not 1..=999"));
        }
        let id = super::model::channel_id(&self.cfg.device_id, k);
        let item = match event {
            CatalogEvent::Add => {
                let ch = self
                    .cam
                    .get_mut(&self.cfg)
                    .add_channel(&self.cfg.device_id, k)
                    .clone();
                self.cam.get(&self.cfg).catalog_item(&self.cfg, &ch)
            }
            CatalogEvent::Delete => {
                self.cam
                    .get_mut(&self.cfg)
                    .channels
                    .retain(|c| c.index != k);
                CatalogItem {
                    device_id: Some(id),
                    ..CatalogItem::default()
                }
            }
            _ => {
                let Some(ch) = self
                    .cam
                    .get_mut(&self.cfg)
                    .channels
                    .iter_mut()
                    .find(|c| c.index == k)
                else {
                    return Err(format!("there is no channel {k}"));
                };
                match event {
                    CatalogEvent::On => ch.on = true,
                    CatalogEvent::Off | CatalogEvent::VideoLost | CatalogEvent::Defect => {
                        ch.on = false
                    }
                    _ => {}
                }
                let ch = ch.clone();
                if event == CatalogEvent::Update {
                    self.cam.get(&self.cfg).catalog_item(&self.cfg, &ch)
                } else {
                    CatalogItem {
                        device_id: Some(ch.id),
                        ..CatalogItem::default()
                    }
                }
            }
        };
        let item = CatalogItem {
            event: Some(event),
            ..item
        };
        let sn = self.next_sn();
        let m = Message::new(
            sn,
            self.cfg.device_id.clone(),
            Body::CatalogNotify(CatalogList::page(1, vec![item])),
        );
        self.notify_subscribers(now, &m, |k| matches!(k, SubKind::Catalog));
        Ok(())
    }

    pub(super) fn do_later(&mut self, now: Now, l: Later) {
        match l {
            Later::SnapshotFinished {
                target,
                session_id,
                count,
            } => {
                let mut session_id = session_id;
                if self.cfg.faults.snapshot_wrong_session {
                    let last = session_id.pop();
                    session_id.push(if last == Some('x') { 'y' } else { 'x' });
                }
                let stamp = now.wall.format("%Y%m%d%H%M%S");
                let body = UploadSnapShotFinished {
                    session_id: Some(session_id),
                    snap_shot_list: Some(SnapShotList {
                        file_ids: (1..=count)
                            .map(|i| format!("{target}{stamp}{i:02}"))
                            .collect(),
                        ..SnapShotList::default()
                    }),
                    ..UploadSnapShotFinished::default()
                };
                let sn = self.next_sn();
                let m = Message::new(sn, target, Body::UploadSnapShotFinished(body));
                self.send_message(now, &m, Purpose::Report);
            }
        }
    }
}

impl Device {
    /// 报警格式 shows the server's `200 OK` to the alarm carrying the
    /// `<Response>…<Result>OK</Result>` body itself, while 报警流程 has it
    /// come as a separate MESSAGE ("2. 服务端返回200 OK. 3. 服务端返回Result
    /// 为OK 4. 设备端返回200 OK"). Decision: both are taken as the
    /// acknowledgement; the separate MESSAGE is the strict reading.
    pub(super) fn alarm_ack_in_200(&mut self, resp: &crate::proto::sip::SipMessage) {
        if resp.body.is_empty() {
            return;
        }
        let Ok(m) = Message::parse(&resp.body) else {
            return;
        };
        if let Body::AlarmResponse(r) = &m.body {
            self.events
                .push_back(super::DeviceEvent::AlarmAcknowledged {
                    sn: m.sn,
                    result: r.result.as_ref().map(|v| v.as_str().to_string()),
                });
        }
    }
}

/// Whether an alarm of `priority` and `method` passes an alarm
/// subscription's filter. 订阅格式 sends `0` for "any" in both priority
/// bounds and in AlarmMethod; AlarmMethod may list methods separated by `/`.
fn alarm_matches(
    q: &crate::proto::gb28181::manscdp::AlarmQuery,
    priority: u32,
    method: u32,
) -> bool {
    let lo = q.start_alarm_priority.unwrap_or(0);
    let hi = q.end_alarm_priority.unwrap_or(0);
    let prio_ok = (lo == 0 || priority >= lo) && (hi == 0 || priority <= hi);
    let method_ok = match q.alarm_method.as_deref().map(str::trim) {
        None | Some("") | Some("0") => true,
        Some(list) => list
            .split('/')
            .any(|m| m.trim().parse::<u32>() == Ok(method)),
    };
    prio_ok && method_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gb28181::manscdp::AlarmQuery;

    #[test]
    fn alarm_filters() {
        let any = AlarmQuery {
            start_alarm_priority: Some(0),
            end_alarm_priority: Some(0),
            alarm_method: Some("0".into()),
            ..AlarmQuery::default()
        };
        assert!(alarm_matches(&any, 4, 7));
        let narrow = AlarmQuery {
            start_alarm_priority: Some(1),
            end_alarm_priority: Some(2),
            alarm_method: Some("2/5".into()),
            ..AlarmQuery::default()
        };
        assert!(alarm_matches(&narrow, 1, 5));
        assert!(!alarm_matches(&narrow, 3, 5));
        assert!(!alarm_matches(&narrow, 1, 6));
    }
}
