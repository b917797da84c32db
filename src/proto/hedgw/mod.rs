//! HEDGW, the Hemu video cloud's device gateway (hemu-openapi-hedgw.txt
//! §5.2 HEDGW 信令通道接入方式, §5.3 HEDGW 码流接入方式, 附录D, 附录E).
//!
//! A TD (camera) keeps one TLS 1.2 connection to the gateway; each message
//! is a 4-byte big-endian length and a protobuf 2 `HEDGWMessage`
//! ([`frame`]). [`wire`] decodes leniently: the typed message
//! ([`pb::HedgwMessage`], generated from `proto/hedgw.proto` by build.rs)
//! plus the findings of a wire-level walk (unknown fields, wrong wire
//! types, missing required fields) and a JSON view that suites name fields
//! in. [`json`] reads the JSON `msg` of app commands and device replies.
//!
//! [`gateway::Gateway`] and [`device::Device`] are the two roles as sans-IO
//! state machines: feed them frames with the current time
//! (`handle_frame(now, bytes)`), drain `poll_transmit()` and
//! `poll_event()`, and wake them at `poll_timeout()`. They never read a
//! clock or touch a socket; `crate::peers::hedgw` runs them on TLS.

pub mod device;
pub mod frame;
pub mod gateway;
pub mod json;
pub mod media;
pub mod msg;
pub mod wire;

#[cfg(test)]
mod tests;

/// Messages generated from `proto/hedgw.proto` (附录D).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/hedgw.rs"));
}

pub use pb::hedgw_message::MessageType;
pub use pb::{
    DevAppCmd, DevEventCmd, DevIpCamCmd, DevLoginReq, DevLoginResp, DevServerCmd, HedgwMessage,
    Ping, Pong, TdMediaPackage,
};

use crate::finding::{code_eq, Finding, Severity};

/// Clauses, written `hemu §<section>` so [`crate::finding::section`]
/// resolves them into the spec text.
pub mod clause {
    pub const CHANNEL: &str =
        "hemu §5.2: 数据包长度（4 字节）+数据包内容（序列化后的 Protobuf 数据）";
    pub const TLS: &str =
        "hemu §5.2: TD 必须采用 TLS1.2 协议中 AEAD 模式与 HEDGW 建立加密的通信管道";
    pub const LOGIN: &str = "hemu §5.2.1 登录 HEDGW 平台";
    pub const PING: &str = "hemu §5.2.2 TD 心跳保活";
    pub const MEDIA: &str = "hemu §5.2.3 TD 上传音视频数据";
    pub const EVENT: &str = "hemu §5.2.6 TD 事件上传";
    pub const SERVER_CMD: &str = "hemu §5.2.8 TD 接收 HEDGW 通知";
    pub const APP_CMD: &str = "hemu §5.2.9 客户端控制 TD 命令";
    pub const QUERY: &str = "hemu §5.2.10 客户端查询 TD 命令";
    pub const IPCAM_CMD: &str = "hemu §5.2.11 TD 消息上报";
    pub const TALK: &str = "hemu §5.2.5 TD 接收客户端音频数据（语音对讲）";
    pub const APPENDIX_D: &str = "hemu 附录D: Protobuf 文件";
    pub const ENCODING: &str = "hemu §5.3.2 TD 编码要求";
}

/// The HEDGW finding codes. Every one becomes a [`Finding`] of the one
/// finding model; the code string is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingCode {
    /// A frame announces more bytes than the receiver allows.
    FrameTooLarge,
    /// The connection ended inside a frame.
    FrameTruncated,
    /// Bytes that are not a protobuf message (bad varint, length past the end).
    Malformed,
    /// A field number the message does not define.
    UnknownField,
    /// A known field sent with another wire type than its type needs.
    WrongWireType,
    /// A `required` field is absent.
    MissingRequired,
    /// A non-repeated field appears more than once.
    DuplicateField,
    /// A uint32 field holds a value over 2^32-1.
    ValueOutOfRange,
    /// A string field is not UTF-8.
    InvalidUtf8,
    /// `message_type` is not one of the enum's values.
    UnknownMessageType,
    /// `message_type` names a payload the message does not carry.
    PayloadMissing,
    /// The message carries a payload `message_type` does not name.
    UnexpectedPayload,
    /// A field the section tables define but 附录D does not.
    FieldNotInAppendix,
    /// A field's value is not one the spec lists.
    BadValue,
    /// The JSON `msg` is not JSON, even read leniently.
    JsonInvalid,
    /// The JSON `msg` needs lenient reading (hex numbers, trailing commas),
    /// as the spec's own examples do.
    JsonLenient,
    /// A message the other side sends in the wrong state or direction.
    UnexpectedMessage,
    /// No ping within the negotiated span.
    PingMissed,
    /// A key frame without SPS/PPS right before it.
    KeyFrameWithoutSpsPps,
    /// A media sequence number that does not follow the previous one.
    SequenceGap,
    /// Timestamps that go backwards or do not follow the frame rate.
    TimestampJump,
    /// `data_size` differs from the length of `data`.
    DataSizeMismatch,
    /// A login refused or an answer missing.
    LoginRefused,
    /// Talk audio (§5.2.5) that starts with an RTP header.
    TalkRtpHeader,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        use FindingCode::*;
        match self {
            FrameTooLarge => "hedgw.frame-too-large",
            FrameTruncated => "hedgw.frame-truncated",
            Malformed => "hedgw.malformed",
            UnknownField => "hedgw.unknown-field",
            WrongWireType => "hedgw.wrong-wire-type",
            MissingRequired => "hedgw.missing-required",
            DuplicateField => "hedgw.duplicate-field",
            ValueOutOfRange => "hedgw.value-out-of-range",
            InvalidUtf8 => "hedgw.invalid-utf8",
            UnknownMessageType => "hedgw.unknown-message-type",
            PayloadMissing => "hedgw.payload-missing",
            UnexpectedPayload => "hedgw.unexpected-payload",
            FieldNotInAppendix => "hedgw.field-not-in-appendix",
            BadValue => "hedgw.bad-value",
            JsonInvalid => "hedgw.json-invalid",
            JsonLenient => "hedgw.json-lenient",
            UnexpectedMessage => "hedgw.unexpected-message",
            PingMissed => "hedgw.ping-missed",
            KeyFrameWithoutSpsPps => "hedgw.key-frame-without-sps-pps",
            SequenceGap => "hedgw.sequence-gap",
            TimestampJump => "hedgw.timestamp-jump",
            DataSizeMismatch => "hedgw.data-size-mismatch",
            LoginRefused => "hedgw.login-refused",
            TalkRtpHeader => "hedgw.talk-rtp-header",
        }
    }

    /// A finding with this code.
    pub fn finding(
        self,
        severity: Severity,
        clause: &'static str,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(self.as_str(), severity, clause, message)
    }

    pub fn error(self, clause: &'static str, message: impl Into<String>) -> Finding {
        self.finding(Severity::Error, clause, message)
    }

    pub fn warning(self, clause: &'static str, message: impl Into<String>) -> Finding {
        self.finding(Severity::Warning, clause, message)
    }
}

code_eq!(FindingCode);

/// The name of a message type value, as 附录D writes it.
pub fn type_name(t: i32) -> Option<&'static str> {
    MessageType::try_from(t).ok().map(|t| t.as_str_name())
}

/// The message type value of a name (`PING`, `DevLoginResp`, also `Ping`).
pub fn type_by_name(name: &str) -> Option<MessageType> {
    MessageType::from_str_name(name).or_else(|| {
        [MessageType::Ping, MessageType::Pong]
            .into_iter()
            .find(|t| t.as_str_name().eq_ignore_ascii_case(name))
    })
}
