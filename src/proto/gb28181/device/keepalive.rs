//! §保活: a registered device sends `MESSAGE` with a Notify/Keepalive body
//! every keepalive interval ("默认心跳间隔60s"), and "心跳发送方在心跳接收方
//! 上线状态下，检测到心跳响应消息连续超时达到超时次数认为心跳接收方离线"
//! ("默认超时次数3次").
//!
//! Decision: a keepalive counts as missed when no 2xx for it has arrived by
//! the time the next one is due (a 4xx answer is a miss too: the platform
//! did not take the device's status). After `keepalive_timeout_count`
//! misses in a row the device reports [`DeviceEvent::PlatformOffline`] and
//! registers afresh, at once. With the defaults that is 240 s after the
//! last answered keepalive was sent: misses are counted at 120, 180 and
//! 240 s.
//!
//! "当UA发现工作异常时，应立即向本SIP监控域的SIP服务器发送状态信息": a
//! sub-device fault (the `subdevice-fault` action) sends a keepalive at
//! once, with Status ERROR and the faulty codes under Info ("SIP设备宜在
//! 状态信息中携带故障子设备描述信息").

use std::collections::BTreeMap;
use std::time::Instant;

use super::txn::Purpose;
use super::{Device, DeviceEvent};
use crate::proto::gb28181::manscdp::{KeepaliveInfo, Message, ResultType};
use crate::proto::Now;

#[derive(Debug, Default)]
pub(super) struct Keepalive {
    /// When the next keepalive is due; `None` while not registered.
    pub next_due: Option<Instant>,
    /// Keepalives sent so far.
    pub sent: u64,
    /// Which keepalive went last (its count in `sent`), and whether a 2xx
    /// answered it. Answers are told apart by this count, not by SN: with
    /// the `keepalive-same-sn` fault every SN is the same, and a late 2xx
    /// to an earlier keepalive must not count for the current one.
    pub last: Option<(u64, bool)>,
    pub misses: u32,
    /// SN reused by the `keepalive-same-sn` fault.
    pub fixed_sn: Option<u64>,
}

impl Device {
    pub(super) fn keepalive_start(&mut self, now: Now) {
        if self.ka.next_due.is_some() || self.cfg.faults.no_keepalive {
            return;
        }
        self.ka.misses = 0;
        self.ka.last = None;
        self.ka.next_due = Some(now.mono + self.keepalive_interval());
    }

    pub(super) fn keepalive_stop(&mut self) {
        self.ka.next_due = None;
        self.ka.last = None;
        self.ka.misses = 0;
    }

    fn keepalive_interval(&self) -> std::time::Duration {
        let mut d = self.cfg.keepalive_interval;
        if self.cfg.faults.slow_keepalive {
            d *= 2;
        }
        self.protocol(d)
    }

    pub(super) fn keepalive_answered(&mut self, nth: u64, ok: bool) {
        if let Some((last, answered)) = &mut self.ka.last {
            if *last == nth && ok {
                *answered = true;
            }
        }
    }

    pub(super) fn keepalive_timeout(&mut self, now: Now) {
        let Some(due) = self.ka.next_due else { return };
        if now.mono < due {
            return;
        }
        match self.ka.last {
            Some((_, true)) => self.ka.misses = 0,
            Some((_, false)) => self.ka.misses += 1,
            None => {}
        }
        if self.ka.misses >= self.cfg.keepalive_timeout_count
            && !self.cfg.faults.no_offline_detection
        {
            self.events.push_back(DeviceEvent::PlatformOffline {
                missed: self.ka.misses,
            });
            return self.platform_lost(now);
        }
        self.ka.next_due = Some(due + self.keepalive_interval());
        self.send_keepalive(now);
    }

    /// Send a keepalive now (the `keepalive` action, or when one is due).
    pub(super) fn send_keepalive(&mut self, now: Now) {
        let sn = match self.ka.fixed_sn {
            Some(sn) => sn,
            None => {
                let sn = self.next_sn();
                if self.cfg.faults.keepalive_same_sn {
                    self.ka.fixed_sn = Some(sn);
                }
                sn
            }
        };
        let faulty = &self.cfg.faulty_subdevices;
        let hide = self.cfg.faults.keepalive_hide_faults;
        let status = if faulty.is_empty() || hide {
            ResultType::Ok
        } else {
            ResultType::Error
        };
        let mut m = Message::keepalive(sn, self.cfg.device_id.clone(), status);
        if let crate::proto::gb28181::manscdp::Body::Keepalive(k) = &mut m.body {
            if !faulty.is_empty() && !hide {
                k.info = Some(KeepaliveInfo {
                    device_ids: faulty.clone(),
                    ..KeepaliveInfo::default()
                });
            }
        }
        self.ka.sent += 1;
        let nth = self.ka.sent;
        self.ka.last = Some((nth, false));
        self.send_message(now, &m, Purpose::Keepalive { nth });
    }

    /// `subdevice-fault` / `subdevice-recover`: change the faulty list and
    /// report it at once.
    pub(super) fn subdevice_fault(
        &mut self,
        now: Now,
        args: &BTreeMap<String, String>,
        faulty: bool,
    ) -> Result<(), String> {
        let id = match (args.get("id"), args.get("channel")) {
            (Some(id), _) => id.clone(),
            (None, Some(k)) => {
                let k: u32 = k
                    .trim()
                    .parse()
                    .map_err(|_| format!("channel {k:?} is not a number"))?;
                super::model::channel_id(&self.cfg.device_id, k)
            }
            (None, None) => super::model::channel_id(&self.cfg.device_id, 1),
        };
        self.cfg.faulty_subdevices.retain(|d| *d != id);
        if faulty {
            self.cfg.faulty_subdevices.push(id);
        }
        self.send_keepalive(now);
        Ok(())
    }
}
