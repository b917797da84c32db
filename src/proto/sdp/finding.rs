//! Findings of the SDP decoder: each rule a description broke, the severity it
//! carries for a conformance verdict, and the clause of the source documents it is
//! measured against. The decoder never fails on a deviation it can read past.

use std::fmt;

use serde::Serialize;

pub use crate::finding::{Evidence, Finding, Severity};

/// Quoted for the `y=` rules. The strict format comes from GB/T 28181-2016 附录F (SDP
/// 定义): "y字段:为十进制整数字符串,表示SSRC值。格式如下:dddddddddd。其中,第1位为历史或
/// 实时媒体流的标识位,0为实时,1为历史".
const CLAUSE_Y: &str = "§实时预览: 增加`y`字段描述 `SSRC `值; GB/T 28181-2016 附录F: y字段为十进制整数字符串 dddddddddd, 第1位 0为实时, 1为历史";
const CLAUSE_F: &str =
    "§语音对讲: <!--\"f=v/编码格式/分辨率/帧率/码率/码率大小a/编码格式/码率大小/采样率\"-->";
const CLAUSE_S: &str = "§实时预览: s 字段为Play 代表实时点播; 录像回放: s=Playback; 文件下载: s 字段为“Download” 代表文件下载; 语音对讲: 请求媒体流的操作类型:Talk";
const CLAUSE_TCP: &str = "§媒体传输方式 TCP被动: m字段指定传输方式为TCP/RTP/AVP; sdp信息中增加\"a=setup:passive\"; TCP主动: sdp信息中增加\"a=setup:active\"";
const CLAUSE_T: &str =
    "§文件下载: t 字段代表下载时间段 (t=1697955233 1697958114 # 下载的文件开始时间和结束时间)";
const CLAUSE_U: &str = "§文件下载: u 字段代表下载通道 ID 和下载类型";
const CLAUSE_RFC_LINES: &str =
    "RFC 4566 §5: <type>=<value>, one field per line, lines end with CRLF";
const CLAUSE_RFC_SESSION: &str =
    "RFC 4566 §5: v=, o=, s=, t= are mandatory; c= at session level or in every media";
const CLAUSE_RFC_RTPMAP: &str =
    "RFC 4566 §6: a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]";

macro_rules! finding_codes {
    ($( $(#[$m:meta])* $code:ident => $sev:ident, $name:literal, $clause:expr; )*) => {
        /// Machine-readable kind of a [`Finding`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum FindingCode {
            $( $(#[$m])* $code, )*
        }

        impl FindingCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [FindingCode] = &[$(FindingCode::$code),*];

            /// The code with this stable identifier.
            pub fn from_code(code: &str) -> Option<FindingCode> {
                FindingCode::ALL.iter().copied().find(|c| c.as_str() == code)
            }

            /// Stable identifier.
            pub fn as_str(self) -> &'static str {
                match self { $(FindingCode::$code => $name,)* }
            }

            /// Severity of the strict reading.
            pub fn severity(self) -> Severity {
                match self { $(FindingCode::$code => Severity::$sev,)* }
            }

            /// The clause the rule comes from.
            pub fn clause(self) -> &'static str {
                match self { $(FindingCode::$code => $clause,)* }
            }
        }
    };
}

finding_codes! {
    /// The body is not UTF-8; it was decoded lossily.
    NotUtf8 => Error, "sdp.not-utf8", "RFC 4566 §5: the default character set is UTF-8";
    /// A line is not `<letter>=<value>` (blank lines included).
    MalformedLine => Error, "sdp.malformed-line", CLAUSE_RFC_LINES;
    /// A line ends with a bare LF. The notes' own builders write `"v=0\n"`.
    LfLineEnding => Warning, "sdp.lf-line-ending", "RFC 4566 §5: lines end with CRLF (parsers SHOULD accept LF); the notes' CreateRealStreamSDP writes \"\\n\"";
    /// A line type letter RFC 4566 and GB/T 28181 do not define.
    UnknownLineType => Warning, "sdp.unknown-line-type", CLAUSE_RFC_LINES;
    /// `v=` missing or not `0`.
    Version => Error, "sdp.version", "RFC 4566 §5.1: v=0";
    /// A mandatory session-level line (`o=`, `s=`, `t=`) is missing.
    MissingSessionField => Error, "sdp.missing-session-field", CLAUSE_RFC_SESSION;
    /// `o=` does not have six fields.
    Origin => Error, "sdp.origin", "RFC 4566 §5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>";
    /// `c=` is malformed or missing where media needs it.
    Connection => Error, "sdp.connection", "RFC 4566 §5.7: c=<nettype> <addrtype> <connection-address>, at session level or in every media";
    /// `t=` is not two decimal numbers.
    Timing => Error, "sdp.timing", "RFC 4566 §5.9: t=<start-time> <stop-time>";
    /// `m=` is malformed.
    MediaLine => Error, "sdp.media-line", "RFC 4566 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...";
    /// An `a=rtpmap` is malformed or has no clock rate (the cascade example's
    /// `a=rtpmap:100 G711U`).
    Rtpmap => Error, "sdp.rtpmap", CLAUSE_RFC_RTPMAP;
    /// A dynamic payload type (96-127) of `m=` has no `a=rtpmap`.
    RtpmapMissing => Error, "sdp.rtpmap-missing", "RFC 4566 §6: dynamic payload types need an a=rtpmap";
    /// An `a=rtpmap` names a payload type that `m=` does not list.
    RtpmapUnlisted => Warning, "sdp.rtpmap-unlisted", CLAUSE_RFC_RTPMAP;
    /// A clock rate other than the one the encoding has (PS/H264/MPEG4 90000, PCMA 8000).
    ClockRate => Error, "sdp.clock-rate", "§实时预览: a=rtpmap:96 PS/90000, a=rtpmap:98 H264/90000, a=rtpmap:97 MPEG4/90000; 语音广播: a=rtpmap:8 PCMA/8000";
    /// More than one direction attribute in a media.
    DirectionConflict => Error, "sdp.direction-conflict", "RFC 3264 §5.1: one of sendrecv, sendonly, recvonly, inactive";
    /// No direction attribute; RFC 4566 defaults to sendrecv, every GB example states one.
    DirectionMissing => Warning, "sdp.direction-missing", "§实时预览: a=recvonly (offer) / a=sendonly (answer)";
    /// No `y=` line.
    SsrcMissing => Warning, "gb.sdp.y-missing", CLAUSE_Y;
    /// More than one `y=` line.
    SsrcDuplicate => Error, "gb.sdp.y-duplicate", CLAUSE_Y;
    /// `y=` is decimal but not ten digits (the notes' `y=001`).
    SsrcNotTenDigits => Error, "gb.sdp.y-not-10-digits", CLAUSE_Y;
    /// `y=` is not a decimal number that fits 32 bits.
    SsrcMalformed => Error, "gb.sdp.y-malformed", CLAUSE_Y;
    /// First digit of `y=` is neither 0 (live) nor 1 (history).
    SsrcFlagDigit => Error, "gb.sdp.y-flag-digit", CLAUSE_Y;
    /// First digit of `y=` disagrees with `s=`: 1 (history) for Play/Talk, 0 (live) for
    /// Playback/Download (the spec's own Playback example sends `y=0100000001`).
    SsrcHistoryFlag => Warning, "gb.sdp.y-history-flag", CLAUSE_Y;
    /// `s=` is not Play, Playback, Download or Talk.
    SessionName => Error, "gb.sdp.session-name", CLAUSE_S;
    /// `s=` names a GB operation in other letter case.
    SessionNameCase => Warning, "gb.sdp.session-name-case", CLAUSE_S;
    /// `TCP/RTP/AVP` media without `a=setup`.
    SetupMissing => Error, "gb.sdp.setup-missing", CLAUSE_TCP;
    /// `a=setup` value is not active, passive, actpass or holdconn.
    SetupInvalid => Error, "gb.sdp.setup-invalid", "RFC 4145 §4: setup-attr = \"a=setup:\" role; role = \"active\" / \"passive\" / \"actpass\" / \"holdconn\"";
    /// `a=setup` on UDP media.
    SetupOnUdp => Warning, "gb.sdp.setup-on-udp", CLAUSE_TCP;
    /// A TCP transport spelled other than `TCP/RTP/AVP` (e.g. `RTP/AVP/TCP`).
    TransportSpelling => Warning, "gb.sdp.transport-spelling", CLAUSE_TCP;
    /// A transport that is neither `RTP/AVP` nor `TCP/RTP/AVP`.
    TransportUnknown => Error, "gb.sdp.transport-unknown", "§媒体传输方式: UDP (RTP/AVP), TCP被动, TCP主动 (TCP/RTP/AVP)";
    /// Video media without PS (`a=rtpmap:<pt> PS/90000`).
    PsMissing => Warning, "gb.sdp.ps-missing", "§实时预览: a=rtpmap:96 PS/90000 (Annex C: video is carried as PS)";
    /// Playback/Download without a time range, or a range that ends before it starts
    /// (the spec's own Playback and Download answers carry `t=0 0`).
    TimeRange => Warning, "gb.sdp.time-range", CLAUSE_T;
    /// Play/Talk with a `t=` other than `0 0`.
    LiveTiming => Warning, "gb.sdp.live-timing", "§实时预览: t=0 0";
    /// `t=` values beyond 2036 as Unix time: they look like NTP time (RFC 4566), while
    /// GB/T 28181 writes Unix seconds (t=1697264152 is 2023-10-14).
    NtpTime => Warning, "gb.sdp.t-ntp-time", CLAUSE_T;
    /// Playback/Download without `u=` (the spec's own Download example has none).
    UriMissing => Warning, "gb.sdp.u-missing", CLAUSE_U;
    /// `u=` is not `<20-digit channel ID>:<download type>`.
    UriFormat => Warning, "gb.sdp.u-format", CLAUSE_U;
    /// `a=downloadspeed` is not a positive integer.
    DownloadSpeed => Error, "gb.sdp.downloadspeed", "§文件下载: 可扩展a 字段携带下载倍速参数 (a=downloadspeed:8 # 8倍速下载)";
    /// `a=filesize` is not a non-negative integer.
    FileSize => Error, "gb.sdp.filesize", "§文件下载: 可扩展 a 字段携带文件大小参数 (a=filesize:62224924)";
    /// `f=` does not start with `v/`.
    ParamsMalformed => Error, "gb.sdp.f-malformed", CLAUSE_F;
    /// `f=` video part does not have 5 fields (the Talk example's `f=v/a/1/8/1` has none).
    ParamsVideoFields => Warning, "gb.sdp.f-video-fields", CLAUSE_F;
    /// `f=` audio part is missing or does not have 3 fields (the cascade example's
    /// `f=v/2/1/0/1/0a///` has 3 empty ones, which is fine).
    ParamsAudioFields => Warning, "gb.sdp.f-audio-fields", CLAUSE_F;
    /// More than one `f=` line.
    ParamsDuplicate => Error, "gb.sdp.f-duplicate", CLAUSE_F;
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::finding::code_eq!(FindingCode);

impl FindingCode {
    /// A finding of this code with its default severity and clause, at a
    /// 1-based line when one line is at fault.
    pub fn at(self, line: Option<usize>, message: impl Into<String>) -> Finding {
        let f = Finding::new(self.as_str(), self.severity(), self.clause(), message);
        match line {
            Some(l) => f.with_evidence(Evidence::Line(l)),
            None => f,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut names: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.starts_with("sdp.") || n.starts_with("gb.sdp.")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FindingCode::ALL.len());
    }

    #[test]
    fn every_clause_names_a_section_that_exists() {
        for c in FindingCode::ALL {
            assert!(
                crate::finding::resolves(c.clause()),
                "{c}: {:?}",
                c.clause()
            );
        }
    }
}
