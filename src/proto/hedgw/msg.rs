//! Building HEDGW messages and judging their fields (§5.2.1-§5.2.12).

use serde_json::json;

use super::{
    clause, DevAppCmd, DevEventCmd, DevIpCamCmd, DevLoginReq, DevLoginResp, DevServerCmd,
    FindingCode, HedgwMessage, MessageType, Ping, Pong, TdMediaPackage,
};
use crate::finding::{Evidence, Finding};

/// DevLoginResp.result values (§5.2.1).
pub mod result {
    pub const OK: u32 = 0;
    /// 请求认证失败或者 token 失效.
    pub const AUTH_FAILED: u32 = 2001;
    /// 服务器限制 TD 上线，TD 需要等待一段时间再尝试（90 秒）.
    pub const LIMITED: u32 = 2008;
    /// 设备已经被删除.
    pub const DELETED: u32 = 2026;
    pub const ALL: [u32; 4] = [OK, AUTH_FAILED, LIMITED, DELETED];
}

/// How long a TD waits after result 2008 before it tries again (§5.2.1).
pub const LIMITED_RETRY_SECS: u64 = 90;

/// JSON request codes of §5.2.9 / §5.2.10.
pub mod request {
    /// 查询设备命令.
    pub const QUERY: u32 = 1792;
    /// 配置设备命令.
    pub const CONFIGURE: u32 = 1793;
    /// 设备开关命令.
    pub const SWITCH: u32 = 1815;
    /// 设备升级命令.
    pub const UPGRADE: u32 = 4097;
    /// 固件更新进度反馈.
    pub const UPGRADE_PROGRESS: u32 = 2049;
}

pub fn wrap(t: MessageType) -> HedgwMessage {
    HedgwMessage {
        message_type: t as i32,
        ..Default::default()
    }
}

pub fn login_req(r: DevLoginReq) -> HedgwMessage {
    HedgwMessage {
        dev_login_req: Some(r),
        ..wrap(MessageType::DevLoginReq)
    }
}

pub fn login_resp(r: DevLoginResp) -> HedgwMessage {
    HedgwMessage {
        dev_login_resp: Some(r),
        ..wrap(MessageType::DevLoginResp)
    }
}

/// 附录E sends `id` 0.
pub fn ping(id: u32) -> HedgwMessage {
    HedgwMessage {
        ping: Some(Ping { id }),
        ..wrap(MessageType::Ping)
    }
}

pub fn pong(id: u32) -> HedgwMessage {
    HedgwMessage {
        pong: Some(Pong { id }),
        ..wrap(MessageType::Pong)
    }
}

pub fn media(p: TdMediaPackage) -> HedgwMessage {
    HedgwMessage {
        td_media_package: Some(p),
        ..wrap(MessageType::TdMediaPackage)
    }
}

pub fn event(e: DevEventCmd) -> HedgwMessage {
    HedgwMessage {
        dev_event_cmd: Some(e),
        ..wrap(MessageType::DevEventCmd)
    }
}

pub fn server_cmd(c: DevServerCmd) -> HedgwMessage {
    HedgwMessage {
        dev_server_cmd: Some(c),
        ..wrap(MessageType::DevServerCmd)
    }
}

pub fn app_cmd(c: DevAppCmd) -> HedgwMessage {
    HedgwMessage {
        dev_app_cmd: Some(c),
        ..wrap(MessageType::DevAppCmd)
    }
}

pub fn ipcam_cmd(c: DevIpCamCmd) -> HedgwMessage {
    HedgwMessage {
        dev_ipcam_cmd: Some(c),
        ..wrap(MessageType::DevIpCamCmd)
    }
}

/// The JSON `msg` of an app command (§5.2.9): `msgContent` with `request`,
/// `subRequest` (when given) and `requestParams`.
pub fn app_msg(session: u32, request: u32, sub: Option<i64>, params: serde_json::Value) -> String {
    let mut content = json!({ "request": request, "requestParams": params });
    if let Some(s) = sub {
        content["subRequest"] = json!(s);
    }
    json!({
        "msgSession": session,
        "msgSequence": 0,
        "msgTimeStamp": 1_403_494_504_362u64,
        "msgCategory": "camera",
        "msgContent": content,
    })
    .to_string()
}

/// The JSON `msg` of a TD reply (§5.2.11, type 2): the request's
/// `msgSession`, `responseRequest`/`responseSubRequest` echoing it.
pub fn reply_msg(
    session: u64,
    request: i64,
    sub: Option<i64>,
    response: i64,
    params: Option<serde_json::Value>,
) -> String {
    let mut content = json!({ "response": response, "responseRequest": request });
    if let Some(s) = sub {
        content["responseSubRequest"] = json!(s);
    }
    if let Some(p) = params {
        content["responseParams"] = p;
    }
    json!({
        "msgCategory": "camera",
        "msgContent": content,
        "msgSequence": 1,
        "msgSession": session,
        "msgTimeStamp": 1_484_541_696u64,
    })
    .to_string()
}

fn bad(field: &str, message: String) -> Finding {
    FindingCode::BadValue
        .error(clause::LOGIN, message)
        .with_evidence(Evidence::Path(format!("dev_login_req.{field}")))
}

/// Whether `s` reads as a MAC address: 12 hex digits, optionally in
/// pairs separated by `:` or `-`.
pub fn looks_like_mac(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    hex.len() == 12
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && (s.len() == 12 || s.len() == 17)
}

/// The field rules of DevLoginReq (§5.2.1 请求备注), beyond presence.
pub fn check_login_req(r: &DevLoginReq) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, v) in [
        ("access_key", &r.access_key),
        ("access_secret", &r.access_secret),
        ("user_name", &r.user_name),
        ("device_token", &r.device_token),
        ("unified_id", &r.unified_id),
        ("device_mac", &r.device_mac),
    ] {
        if v.trim().is_empty() {
            out.push(bad(
                name,
                format!("{name} is empty; §5.2.1 requires a value"),
            ));
        }
    }
    if !r.device_mac.is_empty() && !looks_like_mac(&r.device_mac) {
        out.push(
            FindingCode::BadValue
                .warning(
                    clause::LOGIN,
                    format!(
                        "device_mac {:?} does not read as a MAC address (TD 的 MAC 地址)",
                        r.device_mac
                    ),
                )
                .with_evidence(Evidence::Path("dev_login_req.device_mac".into())),
        );
    }
    // §1.2.2.3: the vendor key has no hyphen; 附录E's own example key
    // "27d7296f-101" has one. Reported as a warning.
    if r.access_key.contains('-') {
        out.push(
            FindingCode::BadValue
                .warning(
                    "hemu §1.2.2.3: Key 不含中划线",
                    format!("access_key {:?} contains a hyphen", r.access_key),
                )
                .with_evidence(Evidence::Path("dev_login_req.access_key".into())),
        );
    }
    if r.channel_id > 1 {
        out.push(bad(
            "channel_id",
            format!(
                "channel_id {}: expected 0 (实时流) or 1 (SD 卡数据流)",
                r.channel_id
            ),
        ));
    }
    if let Some(t) = r.video_type {
        if !(1..=2).contains(&t) {
            out.push(bad(
                "video_type",
                format!("video_type {t}: expected 1 (h264) or 2 (h265)"),
            ));
        }
    }
    if r.video_width == 0 || r.video_height == 0 {
        out.push(bad(
            "video_width",
            format!(
                "resolution {}x{}: width and height must be positive",
                r.video_width, r.video_height
            ),
        ));
    }
    if !(1..=2).contains(&r.audio_type) {
        out.push(bad(
            "audio_type",
            format!(
                "audio_type {}: expected 1 (G726) or 2 (G711A)",
                r.audio_type
            ),
        ));
    }
    if r.audio_khz == 0 || r.audio_khz > 192 {
        out.push(bad(
            "audio_khz",
            format!("audio_khz {}: expected kHz, e.g. 8", r.audio_khz),
        ));
    }
    if r.audio_channel == 0 {
        out.push(bad(
            "audio_channel",
            "audio_channel 0: at least one channel".into(),
        ));
    }
    out
}

/// The field rules of DevEventCmd (§5.2.6): type 1-5, status 0 or 1,
/// `ipcam_time` in milliseconds, and for people counting (type 4) status 1
/// and a JSON `msg` with `start`, `stop` and `count`.
pub fn check_event(e: &DevEventCmd) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |f: &str| Evidence::Path(format!("dev_event_cmd.{f}"));
    if !(1..=5).contains(&e.r#type) {
        out.push(
            FindingCode::BadValue
                .error(
                    clause::EVENT,
                    format!("type {}: expected 1 (motion), 2 (sound), 3 (face), 4 (people count) or 5 (human shape)", e.r#type),
                )
                .with_evidence(at("type")),
        );
    }
    if e.status > 1 {
        out.push(
            FindingCode::BadValue
                .error(
                    clause::EVENT,
                    format!("status {}: expected 0 (end) or 1 (start)", e.status),
                )
                .with_evidence(at("status")),
        );
    }
    // Milliseconds since 1970 passed 10^12 in 2001.
    if e.ipcam_time < 1_000_000_000_000 {
        out.push(
            FindingCode::BadValue
                .error(
                    clause::EVENT,
                    format!(
                        "ipcam_time {} is not UTC milliseconds (seconds?)",
                        e.ipcam_time
                    ),
                )
                .with_evidence(at("ipcam_time")),
        );
    }
    if e.r#type == 4 {
        if e.status != 1 {
            out.push(
                FindingCode::BadValue
                    .error(
                        clause::EVENT,
                        format!("people count with status {}: status 值始终为 1", e.status),
                    )
                    .with_evidence(at("status")),
            );
        }
        let j = super::json::parse(e.msg.as_deref().unwrap_or(""), clause::EVENT);
        match j.value {
            None => out.push(
                FindingCode::BadValue
                    .error(
                        clause::EVENT,
                        "people count without a JSON msg (上报时需要把客流信息填写到字段 msg 中)",
                    )
                    .with_evidence(at("msg")),
            ),
            Some(v) => {
                for k in ["start", "stop", "count"] {
                    if !v.get(k).is_some_and(|x| x.is_u64()) {
                        out.push(
                            FindingCode::BadValue
                                .error(
                                    clause::EVENT,
                                    format!("people count msg without a number {k:?}"),
                                )
                                .with_evidence(at("msg")),
                        );
                    }
                }
            }
        }
    }
    out
}

/// The field rules of DevLoginResp (§5.2.1 响应备注).
pub fn check_login_resp(r: &DevLoginResp) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |f: &str| Evidence::Path(format!("dev_login_resp.{f}"));
    if !result::ALL.contains(&r.result) {
        out.push(
            FindingCode::BadValue
                .error(
                    clause::LOGIN,
                    format!("result {}: expected 0, 2001, 2008 or 2026", r.result),
                )
                .with_evidence(at("result")),
        );
    }
    if r.result == result::OK {
        if r.ping_pong_span.unwrap_or(0) == 0 {
            out.push(
                FindingCode::BadValue
                    .error(
                        clause::LOGIN,
                        "a successful login without ping_pong_span: the TD cannot know its heartbeat interval (心跳间隔，在登录请求时返回)",
                    )
                    .with_evidence(at("ping_pong_span")),
            );
        }
        if let Some(t) = &r.server_time {
            if t.parse::<u64>().is_err() {
                out.push(
                    FindingCode::BadValue
                        .error(
                            clause::LOGIN,
                            format!("server_time {t:?}: expected UTC milliseconds"),
                        )
                        .with_evidence(at("server_time")),
                );
            }
        }
        if let Some(s) = r.device_status {
            if ![0, 1, 2, 3, 44].contains(&s) {
                out.push(
                    FindingCode::BadValue
                        .warning(
                            clause::LOGIN,
                            format!("device_status {s}: expected 0, 1, 2, 3 or 44"),
                        )
                        .with_evidence(at("device_status")),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn good_req() -> DevLoginReq {
        DevLoginReq {
            access_key: "camcert".into(),
            access_secret: "s3cret".into(),
            user_name: "13800000000".into(),
            device_token: "token".into(),
            unified_id: "uid".into(),
            device_mac: "00:11:22:33:44:55".into(),
            channel_id: 0,
            video_type: Some(1),
            video_width: 320,
            video_height: 240,
            audio_type: 2,
            audio_khz: 8,
            audio_channel: 1,
        }
    }

    #[test]
    fn a_good_login_has_no_findings() {
        assert!(check_login_req(&good_req()).is_empty());
    }

    #[test]
    fn each_login_rule_can_fail() {
        type Break = fn(&mut DevLoginReq);
        let cases: Vec<(Break, &str)> = vec![
            (|r| r.device_mac.clear(), "device_mac"),
            (|r| r.device_mac = "camera-1".into(), "device_mac"),
            (|r| r.access_key = "27d7296f-101".into(), "access_key"),
            (|r| r.channel_id = 7, "channel_id"),
            (|r| r.video_type = Some(3), "video_type"),
            (|r| r.video_height = 0, "video_width"),
            (|r| r.audio_type = 0, "audio_type"),
            (|r| r.audio_khz = 8000, "audio_khz"),
            (|r| r.audio_channel = 0, "audio_channel"),
        ];
        for (break_it, field) in cases {
            let mut r = good_req();
            break_it(&mut r);
            let f = check_login_req(&r);
            assert_eq!(f.len(), 1, "{field}: {f:?}");
            assert_eq!(f[0].path(), format!("dev_login_req.{field}"));
        }
    }

    #[test]
    fn event_rules() {
        let ok = DevEventCmd {
            r#type: 1,
            status: 1,
            ipcam_time: 1_700_000_000_000,
            msg: None,
        };
        assert!(check_event(&ok).is_empty());
        let f = check_event(&DevEventCmd {
            ipcam_time: 1_700_000_000,
            ..ok.clone()
        });
        assert_eq!(f[0].path(), "dev_event_cmd.ipcam_time");
        let count = DevEventCmd {
            r#type: 4,
            msg: Some(r#"{ "start":1500631027, "stop":1500631627, "count":100 }"#.into()),
            ..ok.clone()
        };
        assert!(check_event(&count).is_empty());
        let f = check_event(&DevEventCmd {
            msg: Some(r#"{"start":1}"#.into()),
            status: 0,
            ..count
        });
        assert_eq!(f.len(), 3, "{f:?}");
    }

    #[test]
    fn login_response_rules() {
        let ok = DevLoginResp {
            result: 0,
            server_time: Some("1700000000000".into()),
            ping_pong_span: Some(30),
            device_status: Some(1),
            ..Default::default()
        };
        assert!(check_login_resp(&ok).is_empty());
        let f = check_login_resp(&DevLoginResp {
            ping_pong_span: None,
            ..ok.clone()
        });
        assert_eq!(f[0].path(), "dev_login_resp.ping_pong_span");
        let f = check_login_resp(&DevLoginResp {
            result: 1,
            ..ok.clone()
        });
        assert!(f[0].message.contains("2001"));
        // A refusal needs no span.
        assert!(check_login_resp(&DevLoginResp {
            result: 2008,
            ..Default::default()
        })
        .is_empty());
    }
}
