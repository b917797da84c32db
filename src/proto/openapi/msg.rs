//! The `MSG_P_THD_*` messages of §5.1, typed with serde, and their field
//! rules. [`decode`] reads any `jsonObject` or response body leniently:
//! the JSON, the message kind, and findings for every rule broken.
//!
//! Decisions where the spec disagrees with itself:
//! - §5.1.1's 请求格式 writes `comment` as a string, its 请求示例 as an array
//!   of one string, its 请求备注 as `['HW':'3RD-X01','FEATURE':0]`. The
//!   string form is the rule; an array of one string is read with a
//!   warning (`openapi.field-type`).
//! - `errorCode` and `serverPort` are strings in every example; a number
//!   is read with a warning.
//! - §5.1.5's table gives `antiFlicker` On/Off, its example `"50"`: both
//!   readings (On, Off, 50, 60) are taken.
//! - Keys printed with stray spaces (`"startTime "`, `" personSchedules"`,
//!   `"deviceMacAddress "`) are read trimmed, with a warning.
//! - 5.1.2 有线绑定 (`MSG_P_THD_GET_CAMERA_BIND_INFO_REQ`) is missing from
//!   表 5.2 but defined in §5.1.2: it is a message like the others.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{clause, errors, FindingCode as C};
use crate::finding::{Evidence, Finding};

/// The message kinds of §5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    AddCamera,
    BindInfo,
    SetCapacity,
    GetChnAddr,
    GetSettings,
    SetSettings,
    SetInfo,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::AddCamera,
        Kind::BindInfo,
        Kind::SetCapacity,
        Kind::GetChnAddr,
        Kind::GetSettings,
        Kind::SetSettings,
        Kind::SetInfo,
    ];

    fn stem(self) -> &'static str {
        match self {
            Kind::AddCamera => "MSG_P_THD_ADD_CAMERA",
            Kind::BindInfo => "MSG_P_THD_GET_CAMERA_BIND_INFO",
            Kind::SetCapacity => "MSG_P_THD_SET_CAMERA_CAPACITY",
            Kind::GetChnAddr => "MSG_P_THD_GET_CAMERA_CHN_ADDR",
            Kind::GetSettings => "MSG_P_THD_GET_CAMERA_SETTINGS",
            Kind::SetSettings => "MSG_P_THD_SET_CAMERA_SETTINGS",
            Kind::SetInfo => "MSG_P_THD_SET_CAMERA_INFO",
        }
    }

    pub fn req(self) -> String {
        format!("{}_REQ", self.stem())
    }

    pub fn rsp(self) -> String {
        format!("{}_RSP", self.stem())
    }

    pub fn clause(self) -> &'static str {
        match self {
            Kind::AddCamera => clause::REGISTER,
            Kind::BindInfo => clause::BIND,
            Kind::SetCapacity => clause::CAPACITY,
            Kind::GetChnAddr => clause::ADDRESS,
            Kind::GetSettings => clause::GET_SETTINGS,
            Kind::SetSettings => clause::SET_SETTINGS,
            Kind::SetInfo => clause::INFO,
        }
    }

    /// The kind and direction (`true`: response) of a `msgType`.
    pub fn from_msg_type(t: &str) -> Option<(Kind, bool)> {
        let t = t.trim();
        Kind::ALL.into_iter().find_map(|k| {
            if t == k.req() {
                Some((k, false))
            } else if t == k.rsp() {
                Some((k, true))
            } else {
                None
            }
        })
    }

    /// Whether the request needs the `deviceToken` registration returned.
    pub fn needs_token(self) -> bool {
        !matches!(self, Kind::AddCamera | Kind::BindInfo)
    }
}

/// §5.1.1 TD 注册.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddCameraReq {
    pub msg_type: String,
    pub user_mobile: String,
    pub user_token: String,
    pub device_mac_address: String,
    pub device_id: String,
    pub device_model_id: String,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regist_mode: Option<String>,
}

/// The devices' common identification (§5.1.2, §5.1.4, §5.1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReq {
    pub msg_type: String,
    pub device_mac_address: String,
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

/// §5.1.3 TD 上报能力集.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetCapacityReq {
    pub msg_type: String,
    pub device_mac_address: String,
    pub device_id: String,
    pub device_token: String,
    pub support_key: SupportKey,
}

/// §5.1.3 `supportKey`: 1 supported, 0 not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportKey {
    pub motion_region: u8,
    pub duplex_audio_talk: u8,
    pub face_detect: u8,
    pub person_statistic: u8,
    pub sdcard: u8,
    pub event_record: u8,
    pub bino_cam: u8,
    pub motion_track: u8,
    pub people_detection: u8,
    pub ptz_pano: u8,
}

/// The keys of `supportKey` (表 4.1's variable set).
pub const SUPPORT_KEYS: [&str; 10] = [
    "motionRegion",
    "duplexAudioTalk",
    "faceDetect",
    "personStatistic",
    "sdcard",
    "eventRecord",
    "binoCam",
    "motionTrack",
    "peopleDetection",
    "ptzPano",
];

/// §5.1.6 更新在线配置.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSettingsReq {
    pub msg_type: String,
    pub device_mac_address: String,
    pub device_id: String,
    pub device_token: String,
    pub cam_param: Map<String, Value>,
}

/// §5.1.7 更新 TD 版本信息.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetInfoReq {
    pub msg_type: String,
    pub device_mac_address: String,
    pub device_id: String,
    pub device_model_id: String,
    pub firmware_version: String,
    pub camera_app_version: String,
    pub device_token: String,
}

/// Every response: `errorCode`, `description`, `msgType`, and the
/// message's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rsp {
    pub error_code: String,
    #[serde(default)]
    pub description: String,
    pub msg_type: String,
    #[serde(flatten)]
    pub body: RspBody,
}

/// The fields a response adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RspBody {
    /// §5.1.1.
    #[serde(rename_all = "camelCase")]
    Registered {
        device_token: String,
        unified_id: String,
    },
    /// §5.1.2.
    #[serde(rename_all = "camelCase")]
    Bind {
        user_mobile: String,
        user_token: String,
    },
    /// §5.1.4.
    #[serde(rename_all = "camelCase")]
    Address {
        server_addr: String,
        server_port: String,
    },
    /// §5.1.5.
    #[serde(rename_all = "camelCase")]
    Settings { cam_r_w: Map<String, Value> },
    /// Nothing more.
    Empty {},
}

impl Rsp {
    pub fn new(kind: Kind, code: u32, body: RspBody) -> Rsp {
        Rsp {
            error_code: code.to_string(),
            description: if code == 0 {
                String::new()
            } else {
                errors::describe(code).unwrap_or("").to_string()
            },
            msg_type: kind.rsp(),
            body,
        }
    }

    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        // serde's camelCase of `cam_r_w` is `camRW` only by luck; spell it.
        if let Some(o) = v.as_object_mut() {
            if let Some(x) = o.remove("camRW").or_else(|| o.remove("camRw")) {
                o.insert("camRW".into(), x);
            }
        }
        v
    }
}

/// A decoded `jsonObject` or response body.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// The JSON, with keys trimmed of stray whitespace; `None` when the
    /// text is not JSON.
    pub json: Option<Value>,
    /// The kind and direction `msgType` names.
    pub kind: Option<(Kind, bool)>,
    pub findings: Vec<Finding>,
}

impl Decoded {
    /// A field by dotted path (`camRW.nightVision`, `supportKey.sdcard`,
    /// `a.0.b` for array items); strings without their quotes.
    pub fn field(&self, path: &str) -> Option<String> {
        lookup(self.json.as_ref()?, path)
    }

    /// `errorCode` as a number.
    pub fn error_code(&self) -> Option<u32> {
        self.field("errorCode")?.trim().parse().ok()
    }
}

/// A field of `v` by dotted path.
pub fn lookup(v: &Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(match cur {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Read a message leniently. `expect_response`: the body of an answer
/// (its `msgType` must be an `_RSP`); `clause_of_empty`: where an empty
/// text is judged.
pub fn decode(text: &[u8], expect_response: bool) -> Decoded {
    let mut d = Decoded::default();
    let s = String::from_utf8_lossy(text);
    if s.trim().is_empty() {
        d.findings.push(C::JsonEmpty.finding(
            clause::ERRORS,
            "jsonObject: expected a JSON object, got an empty string",
        ));
        return d;
    }
    let v: Value = match serde_json::from_str(&s) {
        Ok(v) => v,
        Err(e) => {
            d.findings.push(
                C::JsonMalformed
                    .finding(clause::JSON, format!("expected a JSON object: {e}"))
                    .with_bytes(text.iter().take(4096).copied().collect::<Vec<u8>>()),
            );
            return d;
        }
    };
    let Value::Object(_) = &v else {
        d.findings.push(
            C::JsonMalformed
                .finding(
                    clause::JSON,
                    format!("expected a JSON object, got {}", kind_of(&v)),
                )
                .with_bytes(text.iter().take(4096).copied().collect::<Vec<u8>>()),
        );
        d.json = Some(v);
        return d;
    };
    let v = trim_keys(v, "", 0, &mut d.findings);
    // §5.1 gives every answer its _RSP msgType; an answer to a request
    // whose type could not be read has none to give. Decision: such an
    // answer may leave msgType out when its errorCode is not 0.
    let refused = expect_response
        && v.get("errorCode")
            .and_then(|c| match c {
                Value::String(s) => s.trim().parse::<u32>().ok(),
                other => other.as_u64().map(|n| n as u32),
            })
            .is_some_and(|c| c != 0);
    match v.get("msgType") {
        None | Some(Value::String(_))
            if refused
                && v.get("msgType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty() =>
        {
            let o = v.as_object().cloned().unwrap_or_default();
            check_rule(
                Kind::AddCamera,
                "errorCode",
                Rule::ErrorCode,
                o.get("errorCode"),
                true,
                &mut d.findings,
            );
        }
        None => d.findings.push(
            C::MsgTypeMissing
                .finding(clause::COMMON, "msgType: expected the message type, absent")
                .with_bytes(text.iter().take(4096).copied().collect::<Vec<u8>>()),
        ),
        Some(t) => {
            let t = t.as_str().unwrap_or("");
            match Kind::from_msg_type(t) {
                None => d.findings.push(
                    C::MsgTypeUnknown
                        .finding(
                            clause::COMMON,
                            format!("msgType: expected one of §5.1's MSG_P_THD_* types, got {t:?}"),
                        )
                        .with_bytes(text.iter().take(4096).copied().collect::<Vec<u8>>()),
                ),
                Some((k, rsp)) => {
                    if t != t.trim() {
                        d.findings.push(
                            C::FieldValue
                                .finding(k.clause(), format!("msgType: whitespace around {t:?}"))
                                .with_severity(crate::finding::Severity::Warning),
                        );
                    }
                    if rsp != expect_response {
                        d.findings.push(C::MsgTypeMismatch.finding(
                            k.clause(),
                            format!(
                                "msgType: expected a{} message, got {t}",
                                if expect_response { " _RSP" } else { " _REQ" }
                            ),
                        ));
                    }
                    d.kind = Some((k, rsp));
                    let o = v.as_object().cloned().unwrap_or_default();
                    // Judged as what it was sent as, whatever msgType says.
                    if expect_response {
                        check_response(k, &o, &mut d.findings);
                    } else {
                        check_request(k, &o, &mut d.findings);
                    }
                }
            }
        }
    }
    d.json = Some(v);
    d
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Trim stray whitespace from keys (a warning each), bounded in depth.
fn trim_keys(v: Value, at: &str, depth: usize, f: &mut Vec<Finding>) -> Value {
    if depth > 16 {
        return v;
    }
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let t = k.trim().to_string();
                    let path = if at.is_empty() {
                        t.clone()
                    } else {
                        format!("{at}.{t}")
                    };
                    if t != k {
                        f.push(
                            C::FieldName
                                .finding(clause::JSON, format!("key {k:?}: whitespace in the name"))
                                .with_evidence(Evidence::Path(path.clone())),
                        );
                    }
                    let v = trim_keys(v, &path, depth + 1, f);
                    (t, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .enumerate()
                .map(|(i, v)| trim_keys(v, &format!("{at}.{i}"), depth + 1, f))
                .collect(),
        ),
        other => other,
    }
}

/// What a field must hold.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Any non-empty string.
    Text,
    /// §5.1: "15 位数字串".
    DeviceId,
    /// §5.1: MAC without separators.
    Mac,
    /// §1.2.2.4: `accesskey_` + up to 16 letters, digits, underscores.
    ModelId,
    /// 11-digit mobile number.
    Mobile,
    /// "0" or "1" (§5.1.1 registMode).
    ZeroOne,
    /// §5.1.1 comment.
    Comment,
    /// §5.1.3 supportKey.
    SupportKey,
    /// §5.1.6 camParam.
    CamParam,
    /// §5.1.5 camRW.
    CamRw,
    /// 附录C code.
    ErrorCode,
    /// Port 1-65535 as a string.
    Port,
    /// `1.2.300` (§5.1.7).
    Version,
    /// A string, possibly empty.
    AnyText,
}

fn request_rules(k: Kind) -> &'static [(&'static str, Rule, bool)] {
    use Rule::*;
    match k {
        Kind::AddCamera => &[
            ("userMobile", Mobile, true),
            ("userToken", Text, true),
            ("deviceMacAddress", Mac, true),
            ("deviceId", DeviceId, true),
            ("deviceModelId", ModelId, true),
            ("comment", Comment, true),
            ("registMode", ZeroOne, false),
        ],
        Kind::BindInfo => &[
            ("deviceMacAddress", Mac, true),
            ("deviceId", DeviceId, true),
        ],
        Kind::SetCapacity => &[
            ("deviceMacAddress", Mac, true),
            ("deviceId", DeviceId, true),
            ("deviceToken", Text, true),
            ("supportKey", SupportKey, true),
        ],
        Kind::GetChnAddr | Kind::GetSettings => &[
            ("deviceMacAddress", Mac, true),
            ("deviceId", DeviceId, true),
            ("deviceToken", Text, true),
        ],
        Kind::SetSettings => &[
            ("deviceMacAddress", Mac, true),
            ("deviceId", DeviceId, true),
            ("deviceToken", Text, true),
            ("camParam", CamParam, true),
        ],
        Kind::SetInfo => &[
            ("deviceMacAddress", Mac, true),
            ("deviceId", DeviceId, true),
            ("deviceModelId", ModelId, true),
            ("firmwareVersion", Version, true),
            ("cameraAppVersion", Version, true),
            ("deviceToken", Text, true),
        ],
    }
}

fn response_rules(k: Kind) -> &'static [(&'static str, Rule, bool)] {
    use Rule::*;
    match k {
        Kind::AddCamera => &[("deviceToken", Text, true), ("unifiedId", Text, true)],
        Kind::BindInfo => &[("userMobile", AnyText, true), ("userToken", AnyText, true)],
        Kind::GetChnAddr => &[("serverAddr", Text, true), ("serverPort", Port, true)],
        Kind::GetSettings => &[("camRW", CamRw, true)],
        _ => &[],
    }
}

fn check_request(k: Kind, o: &Map<String, Value>, f: &mut Vec<Finding>) {
    check_rules(k, request_rules(k), o, f);
}

fn check_response(k: Kind, o: &Map<String, Value>, f: &mut Vec<Finding>) {
    check_rule(k, "errorCode", Rule::ErrorCode, o.get("errorCode"), true, f);
    // The message's own fields are there only on success.
    let ok = o
        .get("errorCode")
        .map(|v| v.as_str().map(str::trim) == Some("0") || v.as_u64() == Some(0))
        .unwrap_or(false);
    if ok {
        check_rules(k, response_rules(k), o, f);
    }
}

fn check_rules(
    k: Kind,
    rules: &[(&'static str, Rule, bool)],
    o: &Map<String, Value>,
    f: &mut Vec<Finding>,
) {
    for (name, rule, required) in rules {
        check_rule(k, name, *rule, o.get(*name), *required, f);
    }
}

fn fv(k: Kind, path: &str, msg: String) -> Finding {
    C::FieldValue
        .finding(k.clause(), format!("{path}: {msg}"))
        .with_evidence(Evidence::Path(path.into()))
}

fn check_rule(
    k: Kind,
    name: &str,
    rule: Rule,
    v: Option<&Value>,
    required: bool,
    f: &mut Vec<Finding>,
) {
    let Some(v) = v else {
        if required {
            f.push(
                C::FieldMissing
                    .finding(
                        k.clause(),
                        format!("{name}: expected in {}, absent", k.req()),
                    )
                    .with_evidence(Evidence::Path(name.into())),
            );
        }
        return;
    };
    let wrong_type = |want: &str, f: &mut Vec<Finding>| {
        f.push(
            C::FieldType
                .finding(
                    k.clause(),
                    format!("{name}: expected {want}, got {}", kind_of(v)),
                )
                .with_evidence(Evidence::Path(name.into())),
        )
    };
    // Strings in every rule but the objects; a number in their place is
    // read with a warning.
    let text: Option<String> = match (rule, v) {
        (Rule::SupportKey | Rule::CamParam | Rule::CamRw, _) => None,
        (Rule::Comment, Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            wrong_type("a string", f);
            a[0].as_str().map(str::to_string)
        }
        (_, Value::String(s)) => Some(s.clone()),
        (_, Value::Number(n)) => {
            wrong_type("a string", f);
            Some(n.to_string())
        }
        _ => {
            f.push(
                C::FieldValue
                    .finding(
                        k.clause(),
                        format!("{name}: expected a string, got {}", kind_of(v)),
                    )
                    .with_evidence(Evidence::Path(name.into())),
            );
            return;
        }
    };
    if let Some(t) = &text {
        if t.len() > 1023 {
            f.push(fv(
                k,
                name,
                format!(
                    "{} bytes, over the 1024-byte string bound of §1.2.2.1",
                    t.len()
                ),
            ));
            return;
        }
        if t.trim().is_empty() && !matches!(rule, Rule::AnyText) {
            if required {
                f.push(
                    C::FieldMissing
                        .finding(
                            k.clause(),
                            format!("{name}: expected a value, got an empty string"),
                        )
                        .with_evidence(Evidence::Path(name.into())),
                );
            }
            return;
        }
    }
    let t = text.as_deref().unwrap_or("");
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match rule {
        Rule::Text | Rule::AnyText => {}
        Rule::DeviceId if !digits(t, 15) => {
            f.push(fv(k, name, format!("expected 15 digits, got {t:?}")))
        }
        Rule::Mac if !(t.len() == 12 && t.bytes().all(|b| b.is_ascii_hexdigit())) => f.push(fv(
            k,
            name,
            format!("expected 12 hex digits without separators, got {t:?}"),
        )),
        Rule::ModelId => {
            let ok = t.split_once('_').is_some_and(|(key, rest)| {
                !key.is_empty()
                    && !rest.is_empty()
                    && rest.len() <= 16
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if !ok {
                f.push(fv(
                    k,
                    name,
                    format!("expected accesskey_ and up to 16 letters, digits or underscores, got {t:?}"),
                ));
            }
        }
        Rule::Mobile if !digits(t, 11) => f.push(fv(
            k,
            name,
            format!("expected an 11-digit mobile number, got {t:?}"),
        )),
        Rule::ZeroOne if t != "0" && t != "1" => {
            f.push(fv(k, name, format!("expected \"0\" or \"1\", got {t:?}")))
        }
        Rule::Comment => match comment_feature(t) {
            Some(bits) if bits & !FEATURE_BITS != 0 => f.push(fv(
                k,
                name,
                format!(
                    "FEATURE {bits:#x} sets bits §5.1.1 does not define (known: {FEATURE_BITS:#x})"
                ),
            )),
            Some(_) => {}
            None => f.push(fv(
                k,
                name,
                format!("expected ['HW':'<model>','FEATURE':<decimal>], got {t:?}"),
            )),
        },
        Rule::ErrorCode => match t.trim().parse::<u32>() {
            Ok(c) if errors::describe(c).is_none() => f.push(
                C::ErrorCodeUnknown
                    .finding(clause::ERRORS, format!("errorCode {c}: not in 附录C"))
                    .with_evidence(Evidence::Path(name.into())),
            ),
            Ok(_) => {}
            Err(_) => f.push(fv(k, name, format!("expected a decimal code, got {t:?}"))),
        },
        Rule::Port => match t.trim().parse::<u32>() {
            Ok(p) if (1..=65535).contains(&p) => {}
            _ => f.push(fv(k, name, format!("expected a port 1-65535, got {t:?}"))),
        },
        Rule::Version => {
            let ok = t.split('.').count() == 3
                && t.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                f.push(fv(
                    k,
                    name,
                    format!("expected MAJOR.MINOR.PATCH such as 1.2.300, got {t:?}"),
                ));
            }
        }
        Rule::SupportKey => check_support_key(k, v, f),
        Rule::CamParam => check_object(k, name, v, CAM_PARAM, f),
        Rule::CamRw => check_object(k, name, v, CAM_RW, f),
        _ => {}
    }
}

/// Bits §5.1.1 gives `FEATURE`: WIFI 0x1, PTZ 0x10, no microphone 0x200,
/// fisheye 0x800.
pub const FEATURE_BITS: u32 = 0x1 | 0x10 | 0x200 | 0x800;

/// The `FEATURE` of a comment `['HW':'3RD-X01','FEATURE':17]`.
pub fn comment_feature(c: &str) -> Option<u32> {
    let c = c.trim();
    let inner = c.strip_prefix('[')?.strip_suffix(']')?;
    let mut hw = false;
    let mut feature = None;
    for part in inner.split(',') {
        let (k, v) = part.split_once(':')?;
        match k.trim().trim_matches('\'') {
            "HW" => hw = !v.trim().trim_matches('\'').is_empty(),
            "FEATURE" => feature = v.trim().parse::<u32>().ok(),
            _ => {}
        }
    }
    if hw {
        feature
    } else {
        None
    }
}

/// The comment for a model and its fixed capabilities.
pub fn comment(hw: &str, feature: u32) -> String {
    format!("['HW':'{hw}','FEATURE':{feature}]")
}

fn check_support_key(k: Kind, v: &Value, f: &mut Vec<Finding>) {
    let Some(o) = v.as_object() else {
        f.push(fv(
            k,
            "supportKey",
            format!("expected an object, got {}", kind_of(v)),
        ));
        return;
    };
    for key in SUPPORT_KEYS {
        let path = format!("supportKey.{key}");
        match o.get(key) {
            None => f.push(
                C::FieldMissing
                    .finding(k.clause(), format!("{path}: expected 0 or 1, absent"))
                    .with_evidence(Evidence::Path(path)),
            ),
            Some(x) if x.as_u64() == Some(0) || x.as_u64() == Some(1) => {}
            Some(x) => f.push(fv(k, &path, format!("expected 0 or 1, got {x}"))),
        }
    }
    for key in o.keys() {
        if !SUPPORT_KEYS.contains(&key.as_str()) {
            let path = format!("supportKey.{key}");
            f.push(
                C::FieldName
                    .finding(k.clause(), format!("{path}: not a capability of 表 4.1"))
                    .with_evidence(Evidence::Path(path)),
            );
        }
    }
}

/// A value rule of a settings key.
type ValueRule = fn(&Value) -> bool;

fn on_off(v: &Value) -> bool {
    matches!(v.as_str(), Some("On" | "Off"))
}

fn one_of(v: &Value, set: &[&str]) -> bool {
    match v {
        Value::String(s) => set.contains(&s.as_str()),
        Value::Number(n) => set.contains(&n.to_string().as_str()),
        _ => false,
    }
}

const CAM_PARAM: &[(&str, ValueRule, &str)] = &[
    ("status", on_off, "On or Off"),
    ("personStatus", on_off, "On or Off"),
    ("wifiSSID", |v| v.is_string(), "a string"),
    ("sdcardStatus", |v| one_of(v, &["1", "2", "3"]), "1, 2 or 3"),
    ("binoParam", |v| v.is_string(), "a string"),
    (
        "deviceAngle",
        |v| {
            v.as_str().is_some_and(|s| {
                s.split(':').count() == 6 && s.split(':').all(|p| p.trim().parse::<f64>().is_ok())
            })
        },
        "six numbers separated by colons",
    ),
];

const CAM_RW: &[(&str, ValueRule, &str)] = &[
    ("HDVideo", on_off, "On or Off"),
    (
        "antiFlicker",
        |v| one_of(v, &["On", "Off", "50", "60"]),
        "On, Off, 50 or 60",
    ),
    ("cameraImageRotate", on_off, "On or Off"),
    ("cameraMicrophone", on_off, "On or Off"),
    (
        "motionSensitivity",
        |v| one_of(v, &["30", "50", "80", "90", "100"]),
        "30, 50, 80, 90 or 100",
    ),
    (
        "nightVision",
        |v| one_of(v, &["Auto", "On", "Off"]),
        "Auto, On or Off",
    ),
    (
        "soundSensitivity",
        |v| one_of(v, &["80", "85", "90", "95", "100"]),
        "80, 85, 90, 95 or 100",
    ),
    ("status", on_off, "On or Off"),
    ("statusLight", on_off, "On or Off"),
    ("title", |v| v.is_string(), "a string"),
    (
        "motionRegions",
        |v| {
            v.as_str().is_some_and(|s| {
                s.is_empty()
                    || s.split(';')
                        .all(|p| p.trim().parse::<u32>().is_ok_and(|n| (1..=25).contains(&n)))
            })
        },
        "block numbers 1-25 separated by ';'",
    ),
    ("motionNotification", on_off, "On or Off"),
    ("soundNotification", on_off, "On or Off"),
    ("motionTrack", on_off, "On or Off"),
    (
        "motionTrackBackTime",
        |v| v.as_str().is_some_and(|s| s.parse::<u32>().is_ok()) || v.is_u64(),
        "a number of seconds",
    ),
    ("cameraOffSchedule", |v| v.is_object(), "an object"),
    ("alarmAlertOffSchedule", |v| v.is_object(), "an object"),
    ("personStatus", on_off, "On or Off"),
    ("personRegion", |v| v.is_object(), "an object"),
    ("personSchedules", |v| v.is_object(), "an object"),
];

fn check_object(
    k: Kind,
    name: &str,
    v: &Value,
    rules: &[(&str, ValueRule, &str)],
    f: &mut Vec<Finding>,
) {
    let Some(o) = v.as_object() else {
        f.push(fv(
            k,
            name,
            format!("expected an object, got {}", kind_of(v)),
        ));
        return;
    };
    for (key, x) in o {
        let path = format!("{name}.{key}");
        match rules.iter().find(|(n, _, _)| n == key) {
            Some((_, ok, want)) => {
                if !ok(x) {
                    f.push(fv(k, &path, format!("expected {want}, got {x}")));
                }
            }
            None => f.push(
                C::FieldName
                    .finding(k.clause(), format!("{path}: a key §5.1 does not define"))
                    .with_evidence(Evidence::Path(path)),
            ),
        }
    }
}
