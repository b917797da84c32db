//! Hemu OpenAPI, the video cloud's HTTPS interface for TDs (cameras)
//! (hemu-openapi-hedgw.txt §2.1 WSSE 认证介绍, §2.2 防重放攻击, §5 and
//! §5.1 OpenAPI 接入, §6.1 TD 注册登录, 附录C OpenAPI HTTPS 错误码).
//!
//! Every request is an HTTP/1.1 POST to `/andmu/v2/service/batch` over TLS
//! 1.2 carrying WSSE credentials in `Authorization` and `X-WSSE`
//! ([`wsse`]) and a form body `accessKey`, `signature`, `jsonObject`
//! ([`sign`]); the JSON object is one of the `MSG_P_THD_*` messages
//! ([`msg`]), answered with JSON that carries an 附录C error code
//! ([`errors`]). [`http`] frames the HTTP/1.1 messages.
//!
//! [`server::Server`] and [`client::Client`] are the two roles as sans-IO
//! state machines. The server takes one request with the current wall
//! time (`handle(now, &request)`) and hands back the response and its
//! findings; the client hands out its next request (`poll_request(now)`)
//! and takes the answer (`handle_response(now, &response)`). Neither reads
//! a clock or touches a socket; `crate::peers::openapi` runs them on TLS.

pub mod client;
pub mod errors;
pub mod http;
pub mod msg;
pub mod server;
pub mod sign;
pub mod wsse;

#[cfg(test)]
mod tests;

use crate::finding::{Finding, Severity};

/// The path every OpenAPI request is posted to (§5.1.1 请求示例).
pub const BATCH_PATH: &str = "/andmu/v2/service/batch";

/// Clauses, written `hemu §<section>` so [`crate::finding::section`]
/// resolves them into the spec text.
pub mod clause {
    pub const WSSE: &str = "hemu §2.1 WSSE 认证介绍";
    pub const WSSE_401: &str =
        "hemu §2.1: 云平台返回 401 响应, 响应头部中需携带 Date 字段, Date 字段时间格式遵从 RFC3339 标准规范";
    pub const REPLAY: &str = "hemu §2.2: 云平台能够过滤与平台时间差值超过 5 分钟请求的报文";
    pub const CLOCK: &str = "hemu §2.2: TD 应根据 Date 字段时间更新 TD 设备本地时间";
    pub const HTTPS: &str = "hemu §5: 针对 HTTPS 接入，只支持 TLS 1.2";
    pub const SIGNATURE: &str = "hemu §5: signature 生成规则";
    pub const COMMON: &str = "hemu §5.1 OpenAPI 接入";
    pub const REGISTER: &str = "hemu §5.1.1 TD 注册";
    pub const BIND: &str = "hemu §5.1.2 有线绑定";
    pub const CAPACITY: &str = "hemu §5.1.3 TD 上报能力集";
    pub const ADDRESS: &str = "hemu §5.1.4 获取 HEDGW 服务";
    pub const ADDRESS_CACHE: &str = "hemu §5.1.4: TD 获取 HEDGW 服务地址之后，需要缓存地址信息";
    pub const GET_SETTINGS: &str = "hemu §5.1.5 获取在线配置";
    pub const SET_SETTINGS: &str = "hemu §5.1.6 更新在线配置";
    pub const INFO: &str = "hemu §5.1.7 更新 TD 版本信息";
    pub const FLOW: &str = "hemu §6.1 TD 注册登录";
    pub const TIME: &str = "hemu §1.2.2.2 时间格式定义";
    pub const JSON: &str = "hemu §1.2.2.1 Json 规则";
    pub const ERRORS: &str = "hemu 附录C: OpenAPI HTTPS 错误码";
}

/// The OpenAPI finding codes. Each becomes a [`Finding`] of the one
/// finding model; the code strings are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingCode {
    /// An HTTP/1.1 message that cannot be framed (bad start line, header,
    /// Content-Length, or over the size bounds).
    HttpMalformed,
    /// Neither `Authorization` nor `X-WSSE` is present.
    WsseMissing,
    /// `Authorization` is not `WSSE profile="UsernamePwd"`.
    WsseAuthorization,
    /// `X-WSSE` cannot be read, or lacks one of its four attributes.
    WsseMalformed,
    /// Whitespace or a line break inside a quoted `X-WSSE` value.
    WsseWhitespace,
    /// `Username` is not `accessKey-deviceId`.
    WsseUsername,
    /// `Nonce` is not 16 bytes long.
    WsseNonce,
    /// `Created` is not an RFC 3339 timestamp.
    WsseCreated,
    /// `PasswordDigest` is not the Base64 of a 20-byte SHA-1 digest.
    WsseDigestForm,
    /// `PasswordDigest` is not Base64(SHA1(nonce + created + password)).
    WsseDigest,
    /// `Created` is more than 5 minutes from the platform's time.
    ReplayStale,
    /// A `Nonce` seen before within the anti-replay window.
    ReplayNonce,
    /// A refusal of credentials that is not 401, or a 401 with bad headers.
    Unauthorized,
    /// The 401 has no `Date`, or one not in RFC 3339.
    UnauthorizedDate,
    /// The 401 has no `WWW-Authenticate: WSSE ... profile="UsernamePwd"`.
    UnauthorizedChallenge,
    /// A request the platform should have refused with 401 was answered.
    AcceptedReplay,
    /// The form body lacks `accessKey`, `signature` or `jsonObject`.
    FormField,
    /// The signature matches no reading of the rule.
    SignatureMismatch,
    /// The signature matches only with the parts in another order.
    SignatureOrder,
    /// The signature is not 32 lower-case hex digits.
    SignatureForm,
    /// `jsonObject` is not JSON.
    JsonMalformed,
    /// `jsonObject` is empty.
    JsonEmpty,
    /// `msgType` is absent.
    MsgTypeMissing,
    /// `msgType` names no message of §5.1.
    MsgTypeUnknown,
    /// A response's `msgType` is not the `_RSP` of the request.
    MsgTypeMismatch,
    /// A required field is absent or empty.
    FieldMissing,
    /// A field of the wrong JSON type (a number where the spec has a
    /// string).
    FieldType,
    /// A value outside the field's range or pattern.
    FieldValue,
    /// A key with whitespace in it (`"startTime "`), or one the message
    /// does not define.
    FieldName,
    /// An `errorCode` 附录C does not list.
    ErrorCodeUnknown,
    /// An error code other than the one the case calls for.
    ErrorCodeWrong,
    /// The TD's requests out of §6.1's order.
    FlowOrder,
    /// The TD asked for the HEDGW address again while a cached one was valid.
    AddressCache,
    /// After a 401 with `Date`, the TD's next `Created` still ignores it.
    ClockNotUpdated,
    /// A non-200 answer to a request that should have been answered.
    HttpStatus,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        use FindingCode::*;
        match self {
            HttpMalformed => "openapi.http-malformed",
            WsseMissing => "openapi.wsse-missing",
            WsseAuthorization => "openapi.wsse-authorization",
            WsseMalformed => "openapi.wsse-malformed",
            WsseWhitespace => "openapi.wsse-whitespace",
            WsseUsername => "openapi.wsse-username",
            WsseNonce => "openapi.wsse-nonce",
            WsseCreated => "openapi.wsse-created",
            WsseDigestForm => "openapi.wsse-digest-form",
            WsseDigest => "openapi.wsse-digest",
            ReplayStale => "openapi.replay-stale",
            ReplayNonce => "openapi.replay-nonce",
            Unauthorized => "openapi.unauthorized",
            UnauthorizedDate => "openapi.unauthorized-date",
            UnauthorizedChallenge => "openapi.unauthorized-challenge",
            AcceptedReplay => "openapi.accepted-replay",
            FormField => "openapi.form-field",
            SignatureMismatch => "openapi.signature-mismatch",
            SignatureOrder => "openapi.signature-order",
            SignatureForm => "openapi.signature-form",
            JsonMalformed => "openapi.json-malformed",
            JsonEmpty => "openapi.json-empty",
            MsgTypeMissing => "openapi.msg-type-missing",
            MsgTypeUnknown => "openapi.msg-type-unknown",
            MsgTypeMismatch => "openapi.msg-type-mismatch",
            FieldMissing => "openapi.field-missing",
            FieldType => "openapi.field-type",
            FieldValue => "openapi.field-value",
            FieldName => "openapi.field-name",
            ErrorCodeUnknown => "openapi.error-code-unknown",
            ErrorCodeWrong => "openapi.error-code-wrong",
            FlowOrder => "openapi.flow-order",
            AddressCache => "openapi.address-cache",
            ClockNotUpdated => "openapi.clock-not-updated",
            HttpStatus => "openapi.http-status",
        }
    }

    /// The default severity: lenient readings the spec's own examples use
    /// are warnings, broken rules errors.
    pub fn severity(self) -> Severity {
        use FindingCode::*;
        match self {
            WsseWhitespace | FieldType | FieldName | ErrorCodeUnknown | SignatureForm => {
                Severity::Warning
            }
            _ => Severity::Error,
        }
    }

    /// A finding of this code.
    pub fn finding(self, clause: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(self.as_str(), self.severity(), clause, message)
    }

    /// Every code, for documentation and the fault table.
    pub const ALL: &'static [FindingCode] = &[
        FindingCode::HttpMalformed,
        FindingCode::WsseMissing,
        FindingCode::WsseAuthorization,
        FindingCode::WsseMalformed,
        FindingCode::WsseWhitespace,
        FindingCode::WsseUsername,
        FindingCode::WsseNonce,
        FindingCode::WsseCreated,
        FindingCode::WsseDigestForm,
        FindingCode::WsseDigest,
        FindingCode::ReplayStale,
        FindingCode::ReplayNonce,
        FindingCode::Unauthorized,
        FindingCode::UnauthorizedDate,
        FindingCode::UnauthorizedChallenge,
        FindingCode::AcceptedReplay,
        FindingCode::FormField,
        FindingCode::SignatureMismatch,
        FindingCode::SignatureOrder,
        FindingCode::SignatureForm,
        FindingCode::JsonMalformed,
        FindingCode::JsonEmpty,
        FindingCode::MsgTypeMissing,
        FindingCode::MsgTypeUnknown,
        FindingCode::MsgTypeMismatch,
        FindingCode::FieldMissing,
        FindingCode::FieldType,
        FindingCode::FieldValue,
        FindingCode::FieldName,
        FindingCode::ErrorCodeUnknown,
        FindingCode::ErrorCodeWrong,
        FindingCode::FlowOrder,
        FindingCode::AddressCache,
        FindingCode::ClockNotUpdated,
        FindingCode::HttpStatus,
    ];
}

/// Wall-clock time as OpenAPI writes it (RFC 3339 with an offset).
pub type WallTime = chrono::DateTime<chrono::FixedOffset>;

/// `t` as RFC 3339 with seconds and its offset: `2017-01-01T15:00:00+08:00`.
pub fn rfc3339(t: WallTime) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Read an RFC 3339 timestamp (§1.2.2.2).
pub fn parse_rfc3339(s: &str) -> Option<WallTime> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok()
}
