//! §设备控制 on the device: DeviceControl and DeviceConfig.
//!
//! "源设备向目标设备发送摄像机云台控制、远程启动、强制关键帧、拉框放大、拉框
//! 缩小...命令后,目标设备不发送应答命令"; after "录像控制、报警布防/撤防、报警
//! 复位、看守位控制、软件升级、设备配置命令后 目标设备应发送应答命令表示执行的
//! 结果". Every control MESSAGE is first answered 200 (§无应答 step 4).
//!
//! Decision on a PTZCmd whose checksum (byte 8) is wrong: the MESSAGE is
//! well-formed SIP and MANSCDP, so it is still answered 200, but the device
//! does not act on it, since a command whose check fails cannot be trusted
//! (annex A.3 defines byte 8 so that the receiver can verify the command).
//! §无应答 gives PTZ no reply channel, so the rejection is reported only as
//! [`DeviceEvent::ControlRejected`]; on the wire it shows as a preset that
//! was not set (PresetQuery).
//!
//! Controls are obeyed only from the registrar (its address and platform
//! ID); anyone else gets 403 and the command is ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Device, DeviceEvent, Later};
use crate::proto::gb28181::manscdp::{
    AlarmCmd, Body, CmdType, DeviceConfig as ConfigBody, DeviceControl, GuardCmd, Message,
    RecordCmd, ResultType, SnapShotConfig,
};
use crate::proto::gb28181::ptz::{checksum, Instruction, PresetOp, PtzCmd, PtzError};
use crate::proto::sip::{NameAddr, SipMessage};
use crate::proto::{Now, Transport};

impl Device {
    /// A control (TeleBoot, PTZ, guard, configuration...) is obeyed only
    /// from the platform the device is registered to: from its address
    /// (its IP over TCP, where it may open a connection from any port) and
    /// with its platform ID as the From user. Anyone else who can reach the
    /// camera could otherwise reboot it.
    pub(super) fn check_controller(
        &self,
        from: SocketAddr,
        req: &SipMessage,
    ) -> Result<(), String> {
        let user = req
            .headers
            .get("From")
            .and_then(NameAddr::parse)
            .and_then(|n| n.uri.user)
            .unwrap_or_default();
        let same_host = match self.cfg.transport {
            Transport::Udp => from == self.server.addr,
            Transport::Tcp => from.ip() == self.server.addr.ip(),
        };
        if !same_host {
            return Err(format!(
                "control from {from}, not from the registrar {}: refused with 403",
                self.server.addr
            ));
        }
        if *user != *self.server.id {
            return Err(format!(
                "control from user {user:?}, not the registrar's platform ID {}: refused with 403",
                self.server.id
            ));
        }
        Ok(())
    }

    pub(super) fn control(&mut self, now: Now, m: &Message) {
        match (&m.cmd_type, &m.body) {
            (Some(CmdType::DeviceControl), Body::DeviceControl(c)) => {
                self.device_control(now, m, c)
            }
            (Some(CmdType::DeviceConfig), Body::DeviceConfig(c)) => self.device_config(now, m, c),
            (cmd, _) => self.events.push_back(DeviceEvent::BadMessage {
                reason: format!(
                    "unsupported control {}",
                    cmd.as_ref().map(|c| c.as_str()).unwrap_or("(no CmdType)")
                ),
            }),
        }
    }

    fn acted(&mut self, command: impl Into<String>) {
        self.events.push_back(DeviceEvent::Controlled {
            command: command.into(),
        });
    }

    fn device_control(&mut self, now: Now, m: &Message, c: &DeviceControl) {
        let f = self.cfg.faults.clone();
        if let Some(hex) = &c.ptz_cmd {
            match PtzCmd::from_hex(hex) {
                Ok(cmd) => self.ptz(cmd),
                Err(PtzError::BadChecksum { .. }) if f.ptz_accept_bad_checksum => {
                    if let Some(cmd) = repair_checksum(hex) {
                        self.ptz(cmd);
                    }
                }
                Err(e) => self.events.push_back(DeviceEvent::ControlRejected {
                    reason: format!("PTZCmd {hex}: {e}"),
                }),
            }
            if f.ptz_reply {
                self.send_response(now, m.reply_result(ResultType::Ok));
            }
        }
        if c.tele_boot.is_some() {
            if f.no_teleboot {
                self.events.push_back(DeviceEvent::ControlRejected {
                    reason: "TeleBoot ignored".into(),
                });
            } else {
                self.acted("TeleBoot");
                self.reboot(now);
                return;
            }
        }
        if c.i_frame_cmd.is_some() {
            self.acted("IFameCmd");
        }
        if c.drag_zoom_in.is_some() {
            self.acted("DragZoomIn");
        }
        if c.drag_zoom_out.is_some() {
            self.acted("DragZoomOut");
        }
        let mut reply = None;
        if let Some(r) = &c.record_cmd {
            let ok = !matches!(r, RecordCmd::Other(_));
            if ok {
                self.cam.get_mut(&self.cfg).recording = *r == RecordCmd::Record;
                self.acted(format!("RecordCmd {}", r.as_str()));
            }
            reply = Some(ok);
        }
        if let Some(g) = &c.guard_cmd {
            let ok = !matches!(g, GuardCmd::Other(_));
            if ok {
                let cam = self.cam.get_mut(&self.cfg);
                cam.guard = *g == GuardCmd::SetGuard;
                if !cam.guard {
                    cam.alarming = false;
                }
                self.acted(format!("GuardCmd {}", g.as_str()));
            }
            reply = Some(reply.unwrap_or(true) && ok);
        }
        if let Some(a) = &c.alarm_cmd {
            let ok = *a == AlarmCmd::ResetAlarm;
            if ok {
                self.cam.get_mut(&self.cfg).alarming = false;
                self.acted("AlarmCmd ResetAlarm");
            }
            reply = Some(reply.unwrap_or(true) && ok);
        }
        if let Some(h) = &c.home_position {
            let ok = h.enabled.is_some();
            if ok {
                self.cam.get_mut(&self.cfg).home_position = Some((
                    h.enabled.unwrap_or(0),
                    h.reset_time.unwrap_or(0),
                    h.preset_index.unwrap_or(0),
                ));
                self.acted("HomePosition");
            }
            reply = Some(reply.unwrap_or(true) && ok);
        }
        if let (Some(ok), false) = (reply, f.no_control_response) {
            let result = if ok {
                ResultType::Ok
            } else {
                ResultType::Error
            };
            self.send_response(now, m.reply_result(result));
        }
    }

    fn ptz(&mut self, cmd: PtzCmd) {
        if let Instruction::Preset { op, index } = cmd.instruction {
            match op {
                PresetOp::Set => {
                    self.cam
                        .get_mut(&self.cfg)
                        .presets
                        .insert(index, format!("预置点{index}"));
                }
                PresetOp::Delete => {
                    self.cam.get_mut(&self.cfg).presets.remove(&index);
                }
                PresetOp::Call => {}
            }
        }
        let hex = cmd.to_hex().unwrap_or_default();
        self.acted(format!("PTZCmd {hex}"));
    }

    fn device_config(&mut self, now: Now, m: &Message, c: &ConfigBody) {
        let mut ok = c.basic_param.is_some() || c.snap_shot_config.is_some();
        if let Some(b) = &c.basic_param {
            let valid = b.heart_beat_interval != Some(0)
                && b.heart_beat_count != Some(0)
                && b.expiration != Some(0);
            if valid && !self.cfg.faults.config_not_applied {
                if let Some(n) = &b.name {
                    self.cfg.device_name = n.as_str().into();
                }
                if let Some(e) = b.expiration {
                    self.cfg.expires = e;
                }
                if let Some(i) = b.heart_beat_interval {
                    self.cfg.keepalive_interval = std::time::Duration::from_secs(i.into());
                }
                if let Some(n) = b.heart_beat_count {
                    self.cfg.keepalive_timeout_count = n;
                }
                self.acted("DeviceConfig BasicParam");
            }
            ok &= valid;
        }
        if let Some(s) = &c.snap_shot_config {
            let valid = snapshot_valid(s);
            if valid {
                let session = s.session_id.clone().unwrap_or_default();
                let count = s.snap_num.unwrap_or(1);
                let wait =
                    std::time::Duration::from_secs(u64::from(count * s.interval.unwrap_or(1)));
                self.later.push((
                    now.mono + self.protocol(wait),
                    Later::SnapshotFinished {
                        target: m.device_id.clone().unwrap_or_default(),
                        session_id: session,
                        count,
                    },
                ));
                self.acted("DeviceConfig SnapShotConfig");
            }
            ok &= valid;
        }
        let result = if ok {
            ResultType::Ok
        } else {
            ResultType::Error
        };
        self.send_response(now, m.reply_result(result));
    }
}

/// §图像抓拍: "SnapNum:连拍张数,最多10张", "Interval:...最短为1秒",
/// "SessionID...由大小写英文字母、数字、短划线组成，长度32~128字节".
fn snapshot_valid(s: &SnapShotConfig) -> bool {
    matches!(s.snap_num, Some(1..=10))
        && s.interval.is_some_and(|i| i >= 1)
        && s.upload_url.as_deref().is_some_and(|u| !u.is_empty())
        && s.session_id
            .as_deref()
            .is_some_and(SnapShotConfig::session_id_is_valid)
}

/// The command `hex` would be with a correct checksum (for the
/// `ptz-accept-bad-checksum` fault).
fn repair_checksum(hex: &str) -> Option<PtzCmd> {
    let hex = hex.trim();
    let mut b = [0u8; 8];
    for (i, out) in b.iter_mut().enumerate() {
        *out = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    b[7] = checksum(&b[..7]);
    PtzCmd::from_bytes(&b).ok()
}

/// Parse an optional numeric trigger argument.
pub(super) fn arg<T: std::str::FromStr>(
    args: &BTreeMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}: {v:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_repair() {
        let good = PtzCmd::preset(PresetOp::Set, 5).to_hex().unwrap();
        let mut bad = good.clone();
        bad.replace_range(14..16, "00");
        assert!(matches!(
            PtzCmd::from_hex(&bad),
            Err(PtzError::BadChecksum { .. })
        ));
        assert_eq!(repair_checksum(&bad).unwrap().to_hex().unwrap(), good);
        assert!(repair_checksum("zz").is_none());
    }
}
