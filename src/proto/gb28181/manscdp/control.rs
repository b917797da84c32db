//! 设备控制 (DeviceControl): PTZ (`PTZCmd`, see `ptz`), remote boot, record,
//! guard, alarm reset, forced key frame, drag zoom, home position, plus the
//! `Info/ControlPriority` block.
//!
//! Commands without a reply (云台控制, 远程启动, 强制关键帧, 拉框放大/缩小) are
//! fire-and-forget; record, guard, alarm reset and home position expect a
//! [`super::ResultResponse`] under `<Response>`.

use super::super::ptz::PtzCmd;
use super::check::{require, Validate};
use super::fields::record;
use super::finding::{Evidence, Finding, FindingCode};
use super::values::{AlarmCmd, GuardCmd, IFrameCmd, RecordCmd, TeleBoot};

record! {
    /// Drag-zoom rectangle (拉框放大/缩小), in pixels of the displayed picture.
    pub struct DragZoom {
        "Length" => leaf length: Option<u32>;
        "Width" => leaf width: Option<u32>;
        "MidPointX" => leaf mid_point_x: Option<u32>;
        "MidPointY" => leaf mid_point_y: Option<u32>;
        "LengthX" => leaf length_x: Option<u32>;
        "LengthY" => leaf length_y: Option<u32>;
    }
}

record! {
    /// Home position (看守位控制).
    pub struct HomePosition {
        /// 1 enable, 0 disable.
        "Enabled" => leaf enabled: Option<u32>;
        /// Seconds of idleness before returning.
        "ResetTime" => leaf reset_time: Option<u32>;
        "PresetIndex" => leaf preset_index: Option<u32>;
    }
}

record! {
    /// `Info` of a control: control priority, or the alarm an AlarmCmd resets.
    pub struct ControlInfo {
        /// 1 (lowest) ..= 5 (highest).
        "ControlPriority" => leaf control_priority: Option<u32>;
        "AlarmMethod" => leaf alarm_method: Option<String>;
        "AlarmType" => leaf alarm_type: Option<String>;
    }
}

record! {
    /// DeviceControl body. Exactly one command is expected per message.
    pub struct DeviceControl {
        /// 16 hex characters; decode with [`DeviceControl::ptz`].
        "PTZCmd" => leaf ptz_cmd: Option<String>;
        "TeleBoot" => leaf tele_boot: Option<TeleBoot>;
        "RecordCmd" => leaf record_cmd: Option<RecordCmd>;
        "GuardCmd" => leaf guard_cmd: Option<GuardCmd>;
        "AlarmCmd" => leaf alarm_cmd: Option<AlarmCmd>;
        /// The standard's spelling is `IFameCmd`; `IFrameCmd` is read with a finding.
        "IFameCmd" | "IFrameCmd" => leaf i_frame_cmd: Option<IFrameCmd>;
        "DragZoomIn" => rec drag_zoom_in: Option<DragZoom>;
        "DragZoomOut" => rec drag_zoom_out: Option<DragZoom>;
        "HomePosition" => rec home_position: Option<HomePosition>;
        "Info" => rec info: Option<ControlInfo>;
    }
}

impl DeviceControl {
    /// A PTZ control carrying `cmd`.
    pub fn ptz_command(cmd: &PtzCmd) -> Result<Self, super::super::ptz::PtzError> {
        Ok(DeviceControl {
            ptz_cmd: Some(cmd.to_hex()?),
            ..DeviceControl::default()
        })
    }

    /// The decoded `PTZCmd`, if present.
    pub fn ptz(&self) -> Option<Result<PtzCmd, super::super::ptz::PtzError>> {
        self.ptz_cmd.as_deref().map(PtzCmd::from_hex)
    }

    /// True if the command expects a `<Response>` with `Result`
    /// (录像控制, 报警布防/撤防, 报警复位, 看守位控制).
    pub fn expects_reply(&self) -> bool {
        self.record_cmd.is_some()
            || self.guard_cmd.is_some()
            || self.alarm_cmd.is_some()
            || self.home_position.is_some()
    }

    fn command_count(&self) -> usize {
        [
            self.ptz_cmd.is_some(),
            self.tele_boot.is_some(),
            self.record_cmd.is_some(),
            self.guard_cmd.is_some(),
            self.alarm_cmd.is_some(),
            self.i_frame_cmd.is_some(),
            self.drag_zoom_in.is_some(),
            self.drag_zoom_out.is_some(),
            self.home_position.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

impl Validate for DeviceControl {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        // Commands outside the model (PTZPreciseCtrl, FormatSDCard, ...) live in extras.
        let has_other = !self.extras.is_empty();
        require(
            out,
            path,
            "PTZCmd|TeleBoot|RecordCmd|GuardCmd|AlarmCmd|IFameCmd|DragZoomIn|DragZoomOut|HomePosition",
            self.command_count() > 0 || has_other,
            "§设备控制: 摄像机云台控制、远程启动、录像控制报警布防/撤防、报警复位、强制关键顿、拉框放大、拉框缩小、看守位控制 ...",
        );
        if let Some(hex) = &self.ptz_cmd {
            let p = format!("{path}/PTZCmd");
            match PtzCmd::decode_lenient(hex) {
                Ok((_, notes)) => out.extend(notes.into_iter().map(|mut f| {
                    f.evidence = Some(Evidence::Path(p.clone()));
                    f
                })),
                Err(e) => out.push(FindingCode::InvalidPtzCmd.at(p, format!("{hex:?}: {e}"))),
            }
        }
    }
}
