//! 报警事件通知 (Alarm notify, its reply and the alarm subscription query),
//! MediaStatus (NotifyType 121, end of a file download/playback), 语音广播
//! (Broadcast notify), 图像抓拍 transfer completion (UploadSnapShotFinished)
//! and the plain `Result` reply shared by controls, alarms and broadcasts.

use super::check::{check_opt_device_id, require, Validate};
use super::fields::record;
use super::finding::{Finding, FindingCode};
use super::values::ResultType;

pub(super) const CLAUSE_ALARM: &str = "§报警格式: <AlarmPriority>1</AlarmPriority> 报警级别 <AlarmMethod>5</AlarmMethod> 报警方式 <AlarmTime>2023-10-20T09:19:12</AlarmTime> 报警时间 (GB/T 28181 A.2.5.3: all three mandatory)";
pub(super) const CLAUSE_RESULT: &str = "§报警格式 (reply): <Response><CmdType>Alarm</CmdType>...<Result>OK</Result></Response>; §有应答: 目标设备应发送应答命令表示执行的结果";
pub(super) const CLAUSE_BROADCAST: &str =
    "§语音广播: <!--语音输入设备的设备编码--> <SourceID>; <!--语音输出设备的设备编码--> <TargetID>";
pub(super) const CLAUSE_MEDIA_STATUS: &str =
    "§文件下载: <CmdType>MediaStatus</CmdType> ... <NotifyType>121</NotifyType>";
pub(super) const CLAUSE_UPLOAD: &str = "§图像抓拍: CmdType:固定为字符串\"UploadSnapShotFinished\" SessionID:会话ID SnapShotList:抓拍图像标识列表 SnapShotFileID:抓拍图像唯一标识";

record! {
    /// Parameters of an alarm type (`AlarmTypeParam`).
    pub struct AlarmTypeParam {
        "EventType" => leaf event_type: Option<u32>;
    }
}

record! {
    /// `Info` of an alarm notification.
    pub struct AlarmInfo {
        "AlarmType" => leaf alarm_type: Option<u32>;
        "AlarmTypeParam" => rec alarm_type_param: Option<AlarmTypeParam>;
    }
}

record! {
    /// Alarm notification (报警格式).
    pub struct AlarmNotify {
        /// 1 (highest) ..= 4.
        "AlarmPriority" => leaf alarm_priority: Option<u32>;
        /// 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 fault, 7 other.
        "AlarmMethod" => leaf alarm_method: Option<u32>;
        "AlarmTime" => leaf alarm_time: Option<String>;
        "AlarmDescription" => leaf alarm_description: Option<String>;
        "Longitude" => leaf longitude: Option<String>;
        "Latitude" => leaf latitude: Option<String>;
        "Info" => rec info: Option<AlarmInfo>;
    }
}

record! {
    /// Alarm subscription query (订阅格式).
    pub struct AlarmQuery {
        /// The spec's sample spells it `StartAlarmPrority`; read with a finding.
        "StartAlarmPriority" | "StartAlarmPrority" => leaf start_alarm_priority: Option<u32>;
        "EndAlarmPriority" | "EndAlarmPrority" => leaf end_alarm_priority: Option<u32>;
        /// `0` for all, or `/`-separated methods.
        "AlarmMethod" => leaf alarm_method: Option<String>;
        "AlarmType" => leaf alarm_type: Option<String>;
        "StartTime" => leaf start_time: Option<String>;
        "EndTime" => leaf end_time: Option<String>;
    }
}

record! {
    /// Reply carrying only `Result` (DeviceControl, DeviceConfig, Alarm, Broadcast).
    pub struct ResultResponse {
        "Result" => leaf result: Option<ResultType>;
    }
}

record! {
    /// MediaStatus notification; `NotifyType` 121 means the file stream ended.
    pub struct MediaStatusNotify {
        "NotifyType" => leaf notify_type: Option<u32>;
    }
}

record! {
    /// Broadcast notification (语音广播); carries no DeviceID.
    pub struct BroadcastNotify {
        "SourceID" => leaf source_id: Option<String>;
        "TargetID" => leaf target_id: Option<String>;
    }
}

record! {
    /// Snapshot identifiers of an UploadSnapShotFinished.
    pub struct SnapShotList {
        "SnapShotFileID" => many file_ids: Vec<String>;
    }
}

record! {
    /// Snapshot transfer completion (图像抓拍传输完成).
    pub struct UploadSnapShotFinished {
        /// Must equal the SessionID of the SnapShotConfig that asked for the pictures.
        "SessionID" => leaf session_id: Option<String>;
        "SnapShotList" => rec snap_shot_list: Option<SnapShotList>;
    }
}

impl ResultResponse {
    /// A reply with `Result` set.
    pub fn new(result: ResultType) -> Self {
        ResultResponse {
            result: Some(result),
            extras: Vec::new(),
        }
    }
}

impl MediaStatusNotify {
    /// The end-of-file notification (NotifyType 121).
    pub fn end_of_file() -> Self {
        MediaStatusNotify {
            notify_type: Some(121),
            extras: Vec::new(),
        }
    }
}

impl Validate for AlarmTypeParam {
    fn validate(&self, _path: &str, _out: &mut Vec<Finding>) {}
}

impl Validate for AlarmNotify {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "AlarmPriority",
            self.alarm_priority.is_some(),
            CLAUSE_ALARM,
        );
        require(
            out,
            path,
            "AlarmMethod",
            self.alarm_method.is_some(),
            CLAUSE_ALARM,
        );
        require(
            out,
            path,
            "AlarmTime",
            self.alarm_time.is_some(),
            CLAUSE_ALARM,
        );
    }
}

impl Validate for AlarmQuery {
    fn validate(&self, _path: &str, _out: &mut Vec<Finding>) {}
}

impl Validate for ResultResponse {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(out, path, "Result", self.result.is_some(), CLAUSE_RESULT);
    }
}

impl Validate for MediaStatusNotify {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "NotifyType",
            self.notify_type.is_some(),
            CLAUSE_MEDIA_STATUS,
        );
        if let Some(t) = self.notify_type {
            if t != 121 {
                out.push(
                    FindingCode::ValueOutOfSet
                        .at(
                            format!("{path}/NotifyType"),
                            format!("NotifyType {t}; 121 is the only defined value"),
                        )
                        .with_clause(CLAUSE_MEDIA_STATUS),
                );
            }
        }
    }
}

impl Validate for BroadcastNotify {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "SourceID",
            self.source_id.is_some(),
            CLAUSE_BROADCAST,
        );
        require(
            out,
            path,
            "TargetID",
            self.target_id.is_some(),
            CLAUSE_BROADCAST,
        );
        check_opt_device_id(out, &format!("{path}/SourceID"), &self.source_id);
        check_opt_device_id(out, &format!("{path}/TargetID"), &self.target_id);
    }
}

impl Validate for UploadSnapShotFinished {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "SessionID",
            self.session_id.is_some(),
            CLAUSE_UPLOAD,
        );
        require(
            out,
            path,
            "SnapShotList",
            self.snap_shot_list.is_some(),
            CLAUSE_UPLOAD,
        );
        if let Some(id) = &self.session_id {
            if !super::device::SnapShotConfig::session_id_is_valid(id) {
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

/// Decision (erratum snapshot-list-json): a `SnapShotList` holding JSON text
/// such as `[{"SnapShotFileID":"a"}]` instead of elements is read leniently.
/// Called after decoding; replaces the generic stray-text finding.
pub(crate) fn repair_snapshot_json(
    body: &mut UploadSnapShotFinished,
    path: &str,
    findings: &mut Vec<Finding>,
) {
    let Some(list) = body.snap_shot_list.as_mut() else {
        return;
    };
    let Some(pos) = list.extras.iter().position(|e| e.name == "#text") else {
        return;
    };
    let text = list.extras[pos].text.clone();
    let ids = json_string_members(&text, "SnapShotFileID");
    if ids.is_empty() || !list.file_ids.is_empty() {
        return;
    }
    list.extras.remove(pos);
    list.file_ids = ids;
    let list_path = format!("{path}/SnapShotList");
    findings.retain(|f| !(f.code == FindingCode::StrayText && f.path() == list_path));
    findings.push(FindingCode::SnapShotListJson.at(
        list_path,
        format!(
            "{} SnapShotFileID value(s) read from JSON text",
            list.file_ids.len()
        ),
    ));
}

/// Values of every `"key": "value"` member in JSON-ish text (no nesting awareness needed).
fn json_string_members(text: &str, key: &str) -> Vec<String> {
    let needle = format!("\"{key}\"");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        let r = rest.trim_start();
        let Some(r) = r.strip_prefix(':') else {
            continue;
        };
        let r = r.trim_start();
        let Some(r) = r.strip_prefix('"') else {
            continue;
        };
        let mut value = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((j, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = Some(j);
                    break;
                }
                c => value.push(c),
            }
        }
        let Some(end) = end else { break };
        out.push(value);
        rest = &r[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_members() {
        assert_eq!(
            json_string_members(
                r#"[{"SnapShotFileID":"a1"},{ "SnapShotFileID" : "b\"2" }]"#,
                "SnapShotFileID"
            ),
            vec!["a1".to_owned(), "b\"2".to_owned()]
        );
        assert!(json_string_members("nothing", "SnapShotFileID").is_empty());
        assert!(
            json_string_members(r#""SnapShotFileID":"unterminated"#, "SnapShotFileID").is_empty()
        );
    }

    #[test]
    fn check_ids_in_broadcast() {
        let mut out = Vec::new();
        BroadcastNotify {
            source_id: Some("xxx".into()),
            target_id: Some("34020000001370000001".into()),
            extras: vec![],
        }
        .validate("Notify", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path(), "Notify/SourceID");
    }
}
