//! 保活 (Keepalive notify), 设备信息 (DeviceInfo), 设备状态 (DeviceStatus),
//! preset query, configuration download (ConfigDownload) and device
//! configuration (DeviceConfig, including 图像抓拍's SnapShotConfig).
//!
//! Queries that carry nothing but the header use [`PlainQuery`].

use super::check::{check_device_id, require, Validate};
use super::fields::{record, ItemList};
use super::finding::{Finding, FindingCode, CLAUSE_SNAPSHOT};
use super::values::{DutyStatus, OnOff, Online, ResultType};

pub(super) const CLAUSE_KEEPALIVE: &str =
    "§保活信令xml格式: <! -- 是否正常工作(必选)--> <elementname=\"Status\"type=\"tg:resultType\"/>";
pub(super) const CLAUSE_DEVICE_STATUS: &str =
    "§设备状态响应格式: <Result>OK</Result> <Online>ONLINE</Online> <Status>OK</Status> (GB/T 28181 A.2.6.7: Result, Online, Status mandatory)";
pub(super) const CLAUSE_DEVICE_INFO: &str =
    "§设备信息查询响应格式 (GB/T 28181 A.2.6.5: Result mandatory; DeviceName, Manufacturer, Model, Firmware, Channel optional)";
pub(super) const CLAUSE_CONFIG: &str =
    "§设备控制: 设备配置的内容 基本参数 ... 图像抓拍配置 (ConfigType names the blocks requested)";

record! {
    /// A query with nothing beyond CmdType/SN/DeviceID (DeviceInfo, DeviceStatus, PresetQuery).
    pub struct PlainQuery {
    }
}

record! {
    /// Faulty sub-devices of a keepalive (`Info`).
    pub struct KeepaliveInfo {
        "DeviceID" => many device_ids: Vec<String>;
    }
}

record! {
    /// Keepalive notification (保活信令xml格式).
    pub struct KeepaliveNotify {
        /// Whether the device works normally.
        "Status" => leaf status: Option<ResultType>;
        /// Faulty sub-device list.
        "Info" => rec info: Option<KeepaliveInfo>;
    }
}

record! {
    /// DeviceInfo response.
    pub struct DeviceInfoResponse {
        "DeviceName" => leaf device_name: Option<String>;
        "Result" => leaf result: Option<ResultType>;
        "DeviceType" => leaf device_type: Option<String>;
        "Manufacturer" => leaf manufacturer: Option<String>;
        "Model" => leaf model: Option<String>;
        "Firmware" => leaf firmware: Option<String>;
        /// Number of video input channels.
        "Channel" => leaf channel: Option<u32>;
    }
}

record! {
    /// One alarm input state of a DeviceStatus response.
    pub struct AlarmStatusItem {
        "DeviceID" => leaf device_id: Option<String>;
        "DutyStatus" => leaf duty_status: Option<DutyStatus>;
    }
}

record! {
    /// DeviceStatus response (设备状态响应格式), in schema order.
    pub struct DeviceStatusResponse {
        "Result" => leaf result: Option<ResultType>;
        "Online" => leaf online: Option<Online>;
        "Status" => leaf status: Option<ResultType>;
        "Reason" => leaf reason: Option<String>;
        "Encode" => leaf encode: Option<OnOff>;
        "Record" => leaf record: Option<OnOff>;
        "DeviceTime" => leaf device_time: Option<String>;
        /// Spelled `Alarmstatus` by the standard; `AlarmStatus` is read with a finding.
        "Alarmstatus" | "AlarmStatus" => list alarm_status: Option<ItemList<AlarmStatusItem>>;
    }
}

record! {
    /// One preset of a PresetQuery response.
    pub struct PresetItem {
        "PresetID" => leaf preset_id: Option<u32>;
        "PresetName" => leaf preset_name: Option<String>;
    }
}

record! {
    /// PresetQuery response.
    pub struct PresetQueryResponse {
        "PresetList" => list preset_list: Option<ItemList<PresetItem>>;
    }
}

record! {
    /// Basic parameters (BasicParam) of DeviceConfig and ConfigDownload.
    pub struct BasicParam {
        "Name" => leaf name: Option<String>;
        "DeviceID" => leaf device_id: Option<String>;
        "SIPServerID" => leaf sip_server_id: Option<String>;
        "SIPServerIP" => leaf sip_server_ip: Option<String>;
        "SIPServerPort" => leaf sip_server_port: Option<u16>;
        "DomainName" => leaf domain_name: Option<String>;
        /// Registration expiry, seconds.
        "Expiration" => leaf expiration: Option<u32>;
        "Password" => leaf password: Option<String>;
        /// Keepalive interval, seconds (保活: 默认心跳间隔`60s`).
        "HeartBeatInterval" => leaf heart_beat_interval: Option<u32>;
        /// Missed keepalives before offline (保活: 默认超时次数`3`次).
        "HeartBeatCount" => leaf heart_beat_count: Option<u32>;
        "PositionCapability" => leaf position_capability: Option<u32>;
        "Longitude" => leaf longitude: Option<String>;
        "Latitude" => leaf latitude: Option<String>;
    }
}

record! {
    /// Snapshot configuration (图像抓拍: SnapShotConfig).
    pub struct SnapShotConfig {
        /// Burst size, 1..=10 (1 for a manual snapshot).
        "SnapNum" => leaf snap_num: Option<u32>;
        /// Seconds between shots, at least 1.
        "Interval" => leaf interval: Option<u32>;
        "UploadURL" => leaf upload_url: Option<String>;
        /// Platform-chosen id, `[A-Za-z0-9-]{32,128}`.
        "SessionID" => leaf session_id: Option<String>;
    }
}

record! {
    /// ConfigDownload query: `ConfigType` lists the blocks wanted, `/`-separated.
    pub struct ConfigDownloadQuery {
        "ConfigType" => leaf config_type: Option<String>;
    }
}

record! {
    /// ConfigDownload response.
    pub struct ConfigDownloadResponse {
        "Result" => leaf result: Option<ResultType>;
        "BasicParam" => rec basic_param: Option<BasicParam>;
        "SnapShotConfig" => rec snap_shot_config: Option<SnapShotConfig>;
    }
}

record! {
    /// DeviceConfig control body.
    pub struct DeviceConfig {
        "BasicParam" => rec basic_param: Option<BasicParam>;
        "SnapShotConfig" => rec snap_shot_config: Option<SnapShotConfig>;
    }
}

impl KeepaliveNotify {
    /// A keepalive reporting `status` and no faulty sub-devices.
    pub fn new(status: ResultType) -> Self {
        KeepaliveNotify {
            status: Some(status),
            ..KeepaliveNotify::default()
        }
    }
}

impl SnapShotConfig {
    /// True when `id` is 32..=128 characters of `[A-Za-z0-9-]`.
    pub fn session_id_is_valid(id: &str) -> bool {
        (32..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }
}

impl Validate for PlainQuery {
    fn validate(&self, _path: &str, _out: &mut Vec<Finding>) {}
}

impl Validate for KeepaliveNotify {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(out, path, "Status", self.status.is_some(), CLAUSE_KEEPALIVE);
        if let Some(info) = &self.info {
            for (i, id) in info.device_ids.iter().enumerate() {
                let p = if i == 0 {
                    format!("{path}/Info/DeviceID")
                } else {
                    format!("{path}/Info/DeviceID[{i}]")
                };
                check_device_id(out, &p, id);
            }
        }
    }
}

impl Validate for DeviceInfoResponse {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "Result",
            self.result.is_some(),
            CLAUSE_DEVICE_INFO,
        );
    }
}

impl Validate for DeviceStatusResponse {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "Result",
            self.result.is_some(),
            CLAUSE_DEVICE_STATUS,
        );
        require(
            out,
            path,
            "Online",
            self.online.is_some(),
            CLAUSE_DEVICE_STATUS,
        );
        require(
            out,
            path,
            "Status",
            self.status.is_some(),
            CLAUSE_DEVICE_STATUS,
        );
    }
}

impl Validate for PresetQueryResponse {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "PresetList",
            self.preset_list.is_some(),
            "GB/T 28181 A.2.6.9: PresetList Num=\"...\" (mandatory in a PresetQuery response)",
        );
    }
}

impl Validate for ConfigDownloadQuery {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "ConfigType",
            self.config_type.is_some(),
            CLAUSE_CONFIG,
        );
    }
}

impl Validate for ConfigDownloadResponse {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(out, path, "Result", self.result.is_some(), CLAUSE_CONFIG);
        if let Some(s) = &self.snap_shot_config {
            s.validate(&format!("{path}/SnapShotConfig"), out);
        }
    }
}

impl Validate for DeviceConfig {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        if let Some(s) = &self.snap_shot_config {
            s.validate(&format!("{path}/SnapShotConfig"), out);
        }
    }
}

impl Validate for SnapShotConfig {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        for (name, present) in [
            ("SnapNum", self.snap_num.is_some()),
            ("Interval", self.interval.is_some()),
            ("UploadURL", self.upload_url.is_some()),
            ("SessionID", self.session_id.is_some()),
        ] {
            require(out, path, name, present, CLAUSE_SNAPSHOT);
        }
        if let Some(n) = self.snap_num {
            if !(1..=10).contains(&n) {
                out.push(FindingCode::SnapNumRange.at(
                    format!("{path}/SnapNum"),
                    format!("SnapNum {n} outside 1..=10"),
                ));
            }
        }
        if self.interval == Some(0) {
            out.push(FindingCode::SnapIntervalRange.at(
                format!("{path}/Interval"),
                "Interval 0 is below the 1 second minimum",
            ));
        }
        if let Some(id) = &self.session_id {
            if !Self::session_id_is_valid(id) {
                out.push(FindingCode::SessionIdFormat.at(
                    format!("{path}/SessionID"),
                    format!(
                        "SessionID of {} byte(s) must be 32..=128 of [A-Za-z0-9-]",
                        id.len()
                    ),
                ));
            }
        }
    }
}
