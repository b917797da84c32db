//! Findings of the media-session layer: one shape for what the SIP dialog, the SDP
//! offer/answer, the MANSRTSP bodies and the MANSCDP notifications of a session got
//! wrong. Each [`Rule`] carries its stable code, its severity and the clause it is
//! measured against, so the check that raises it and the report that shows it agree.

pub use crate::finding::{has_code, has_errors, Finding, Severity};

/// A named rule: code, severity and clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable code.
    pub code: &'static str,
    /// Severity of the strict reading.
    pub severity: Severity,
    /// Where the rule comes from.
    pub clause: &'static str,
}

impl Rule {
    /// A finding of this rule.
    pub fn finding(&self, message: impl Into<String>) -> Finding {
        Finding::new(self.code, self.severity, self.clause, message)
    }
}

macro_rules! rules {
    ($( $(#[$m:meta])* $name:ident => $sev:ident, $code:literal, $clause:expr; )*) => {
        $( $(#[$m])* pub const $name: Rule = Rule {
            code: $code,
            severity: Severity::$sev,
            clause: $clause,
        }; )*

        /// Every session rule, for listings and uniqueness tests.
        pub const ALL: &[Rule] = &[$($name),*];
    };
}

const CLAUSE_SSRC: &str = "§实时预览 4/5: SIP服务器向媒体流发送者发送Invite请求, 增加y字段描述SSRC值; 媒体流发送者以200 OK响应, 描述了媒体流发送者发送媒体流的IP、端口、媒体格式、SSRC字段 (every example answer echoes the offered y=)";
const CLAUSE_SETUP: &str = "RFC 4145 §4.1: the answerer takes the opposite role (active <-> passive, actpass -> active) and MUST NOT answer actpass; 媒体传输方式 TCP被动: a=setup:passive offered, a=setup:active answered; TCP主动: the reverse";
const CLAUSE_ANSWER: &str = "RFC 3264 §6: the answer has the same number of m= lines as the offer, uses only offered formats, and a recvonly offer is answered sendonly";
const CLAUSE_DIRECTION_MISSING: &str = "RFC 3264 §6: a stream offered recvonly MUST be marked sendonly or inactive in the answer (sendonly: recvonly or inactive); 实时预览 / 媒体传输方式: the offer carries a=recvonly and every 200 OK example a=sendonly";
const CLAUSE_CONTACT: &str =
    "RFC 3261 §8.1.1.8 / §13.3.1.4: INVITE and its 2xx response MUST contain a Contact";
const CLAUSE_SUBJECT: &str = "§文件下载 1: 携带 Subject 字段, 表明点播的视频源 ID、发送方媒体流序列号、媒体流接收者 ID、接收端媒体流序列号 (Subject: <sender ID>:<seq>,<receiver ID>:<seq>)";
const CLAUSE_ACK: &str = "RFC 3261 §13.3.1.4: a UAS that gets no ACK for its 2xx within 64*T1 SHOULD end the session with BYE";
const CLAUSE_BYE: &str = "§断流: 设备侧收到SIP服务发送的BYE消息后, 设备会立即停止正在进行的视频流推送, 并向SIP服务回复一个200OK消息";
const CLAUSE_INFO: &str = "§录像回放: 采用INFO消息体携带MANSRTSP进行录像回放的请求; 使用 MANSRTSP 协议中的 Play、Pause、Teardown 的请求和应答控制回放";
const CLAUSE_MEDIA_STATUS: &str = "§文件下载 13: 媒体流发送者在文件下载结束后发送会话内 Message 消息, 通知 SIP 服务器回放已结束 (<CmdType>MediaStatus</CmdType>, <NotifyType>121</NotifyType>)";
const CLAUSE_DIALOG: &str = "RFC 3261 §12.2.2: a request whose Call-ID, From tag and To tag match no dialog is answered 481; a CSeq lower than the last one is answered 500";
const CLAUSE_BROADCAST: &str = "§语音广播 2/3: 语音流接收者收到语音广播通知消息后, 向SIP服务器发送200OK响应; 向SIP服务器发送语音广播应答消息 (<Response><CmdType>Broadcast</CmdType>...<Result>OK</Result>)";

rules! {
    /// The answer's `y=` differs from the offered one.
    SSRC_MISMATCH => Error, "gb.session.ssrc-mismatch", CLAUSE_SSRC;
    /// The answer has no `y=`.
    SSRC_MISSING_IN_ANSWER => Error, "gb.session.answer-without-y", CLAUSE_SSRC;
    /// The offer has no `y=`; the answerer chose one.
    SSRC_MISSING_IN_OFFER => Warning, "gb.session.offer-without-y", CLAUSE_SSRC;
    /// Both sides took the same TCP role, or the answer said actpass.
    SETUP_CONFLICT => Error, "gb.session.setup-conflict", CLAUSE_SETUP;
    /// One side is UDP (`RTP/AVP`), the other TCP.
    TRANSPORT_MISMATCH => Error, "gb.session.transport-mismatch", CLAUSE_ANSWER;
    /// The answer refused the media (port 0) or has none of the offered kind.
    MEDIA_REFUSED => Error, "gb.session.media-refused", CLAUSE_ANSWER;
    /// The answer uses a payload type the offer did not list.
    PAYLOAD_NOT_OFFERED => Error, "gb.session.payload-not-offered", CLAUSE_ANSWER;
    /// The answer's direction does not fit the offer's.
    DIRECTION => Warning, "gb.session.direction", CLAUSE_ANSWER;
    /// The answer has no direction attribute; it is read as the reverse of the offer's.
    DIRECTION_MISSING => Warning, "gb.session.answer-without-direction", CLAUSE_DIRECTION_MISSING;
    /// The answer has a different number of `m=` lines (the 语音对讲 example answers one
    /// sendrecv audio with a recvonly and a sendonly one).
    MEDIA_COUNT => Warning, "gb.session.media-count", CLAUSE_ANSWER;
    /// The answer's `s=` differs from the offer's.
    SESSION_NAME => Warning, "gb.session.session-name", CLAUSE_ANSWER;
    /// No `c=` applies to the media; the SIP peer's address was used.
    CONNECTION_MISSING => Error, "gb.session.connection-missing", "RFC 4566 §5.7: c= at session level or in every media";
    /// The INVITE carries no SDP offer.
    NO_OFFER => Error, "gb.session.invite-without-sdp", "§实时预览 4 / 文件下载 4: the INVITE to the media sender carries the SDP of the receiving side (第三方呼叫: only the INVITE to the media server has no SDP)";
    /// The body is not `application/sdp`.
    CONTENT_TYPE => Error, "gb.session.content-type", "RFC 3261 §20.15 / 实时预览: Content-Type: application/sdp";
    /// The offer cannot be answered (no usable media, unknown `s=`).
    OFFER_UNUSABLE => Error, "gb.session.offer-unusable", CLAUSE_ANSWER;
    /// INVITE or 2xx without Contact.
    CONTACT_MISSING => Error, "gb.session.contact-missing", CLAUSE_CONTACT;
    /// INVITE without Subject.
    SUBJECT_MISSING => Warning, "gb.session.subject-missing", CLAUSE_SUBJECT;
    /// Subject not `<id>:<seq>,<id>:<seq>`.
    SUBJECT_FORMAT => Warning, "gb.session.subject-format", CLAUSE_SUBJECT;
    /// No ACK for the 2xx within 64*T1.
    NO_ACK => Error, "gb.session.no-ack", CLAUSE_ACK;
    /// No final answer to BYE.
    BYE_TIMEOUT => Error, "gb.session.bye-unanswered", CLAUSE_BYE;
    /// BYE answered with a non-2xx status.
    BYE_REJECTED => Error, "gb.session.bye-rejected", CLAUSE_BYE;
    /// INFO (MANSRTSP) answered with a non-2xx status, or not at all.
    INFO_FAILED => Error, "gb.session.info-failed", CLAUSE_INFO;
    /// INFO in a session that is not Playback or Download.
    INFO_OUTSIDE_PLAYBACK => Warning, "gb.session.info-outside-playback", CLAUSE_INFO;
    /// INFO whose Content-Type is not `Application/MANSRTSP`.
    INFO_CONTENT_TYPE => Warning, "gb.session.info-content-type", "§录像回放: INFO 消息体携带 MANSRTSP (Content-Type: Application/MANSRTSP)";
    /// The MANSRTSP answer's CSeq is not the request's.
    RTSP_CSEQ_ECHO => Error, "gb.session.rtsp-cseq-echo", "RFC 2326 §12.17: the CSeq of a response equals the request's";
    /// The in-dialog MESSAGE of a session is not a MediaStatus notification.
    MEDIA_STATUS_BODY => Error, "gb.session.media-status-body", CLAUSE_MEDIA_STATUS;
    /// MediaStatus NotifyType other than 121.
    MEDIA_STATUS_TYPE => Warning, "gb.session.media-status-type", CLAUSE_MEDIA_STATUS;
    /// MediaStatus in a live (Play/Talk) session.
    MEDIA_STATUS_LIVE => Warning, "gb.session.media-status-in-live", CLAUSE_MEDIA_STATUS;
    /// The MediaStatus MESSAGE was answered with a non-2xx status, or not at all.
    MEDIA_STATUS_FAILED => Error, "gb.session.media-status-failed", CLAUSE_MEDIA_STATUS;
    /// A request that matches no dialog (481) or arrives out of CSeq order (500).
    DIALOG_MISMATCH => Error, "gb.session.dialog-mismatch", CLAUSE_DIALOG;
    /// The Broadcast notification was not answered 200, or no Broadcast response followed.
    BROADCAST_FLOW => Error, "gb.session.broadcast-flow", CLAUSE_BROADCAST;
    /// The Broadcast response's Result is not OK.
    BROADCAST_REFUSED => Error, "gb.session.broadcast-refused", CLAUSE_BROADCAST;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut codes: Vec<&str> = ALL.iter().map(|r| r.code).collect();
        assert!(codes.iter().all(|c| c.starts_with("gb.session.")));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }

    #[test]
    fn every_clause_names_a_section_that_exists() {
        let rtsp = crate::proto::gb28181::session::mansrtsp::RULES;
        for r in ALL.iter().chain(rtsp) {
            assert!(
                crate::finding::resolves(r.clause),
                "{}: {:?}",
                r.code,
                r.clause
            );
        }
    }
}
