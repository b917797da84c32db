//! 附录C: OpenAPI HTTPS 错误码. `errorCode` is a decimal string in every
//! §5.1 response (`"errorCode": "0"`).

pub const SUCCESS: u32 = 0;
pub const BAD_REQUEST: u32 = 400;
pub const INTERNAL: u32 = 500;
pub const BAD_PASSWORD: u32 = 10005;
pub const SYSTEM: u32 = 20000;
pub const JSON_EMPTY: u32 = 20005;
pub const PARAM_EMPTY: u32 = 20008;
pub const JSON_PARSE: u32 = 21001;
pub const ALREADY_REGISTERED: u32 = 21113;
pub const MODEL_ID: u32 = 70002;
pub const DEVICE_ID: u32 = 70004;
pub const UNDEFINED: u32 = 80000;

/// The table of 附录C.
pub const TABLE: &[(u32, &str)] = &[
    (SUCCESS, "成功"),
    (BAD_REQUEST, "请求错误"),
    (INTERNAL, "服务器内部错误"),
    (BAD_PASSWORD, "密码错误"),
    (SYSTEM, "服务器系统异常"),
    (JSON_EMPTY, "请求的 json 字符串为空"),
    (PARAM_EMPTY, "请求的 json 字符串参数值为空"),
    (JSON_PARSE, "json 解析错误"),
    (ALREADY_REGISTERED, "设备已被其他账号注册"),
    (MODEL_ID, "Model ID 未初始化"),
    (DEVICE_ID, "Deviceid 无效"),
    (UNDEFINED, "未定义错误，详情见返回的错误描述"),
];

/// The description 附录C gives `code`.
pub fn describe(code: u32) -> Option<&'static str> {
    TABLE.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}
