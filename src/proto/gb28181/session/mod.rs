//! GB/T 28181 media sessions as sans-IO INVITE dialogs: 实时预览, 录像回放 (INFO +
//! MANSRTSP), 文件下载 (ending with MediaStatus 121), 语音对讲, 语音广播, and 断流 from
//! either side (spec `gb28181-features.txt`; `platform-cascade-sip.txt` 实时视频).
//!
//! - [`MediaUas`] answers an INVITE: it reads the offer (findings), tells its driver
//!   ([`SessionEvent::Offer`]), answers 100 and, once the driver has a media port,
//!   200 with its SDP; it retransmits the 200 over UDP until the ACK (RFC 3261
//!   §13.3.1.4), then says "stream now" ([`SessionEvent::Started`]). It answers INFO
//!   (MANSRTSP PLAY/PAUSE/TEARDOWN) and BYE, sends BYE itself, and sends the
//!   MediaStatus 121 MESSAGE at the end of a file. The reference camera is a
//!   `MediaUas`; so is the platform answering a device's broadcast INVITE.
//! - [`MediaUac`] places an INVITE ([`CallRequest`]: live, playback, download, talk,
//!   broadcast audio; UDP, TCP active, TCP passive), judges the answer (SSRC echo,
//!   TCP roles, port, payload), acknowledges it and says "receive now"; it sends
//!   INFO and BYE, and answers the MediaStatus MESSAGE.
//! - [`BroadcastSource`] (platform) and [`BroadcastTarget`] (device) run 语音广播:
//!   the Broadcast notification, its Response, then the device's audio INVITE.
//! - [`mansrtsp`] is the codec of the INFO bodies.
//!
//! Drive every machine like [`super::device::Device`]: feed received messages to
//! `handle_message(now, from, msg)`, send what `poll_transmit` returns, call
//! `handle_timeout` when the instant from `poll_timeout` has passed, and act on
//! `poll_event`. A machine owns one dialog; [`MediaUas::matches`] /
//! [`MediaUac::matches`] say whether a message is its business.
//!
//! Decisions where the documents disagree are quoted beside the code; the strict
//! reading becomes a [`Finding`].

mod broadcast;
mod dialog;
pub mod finding;
pub mod mansrtsp;
mod negotiate;
mod uac;
mod uas;

#[cfg(test)]
mod tests;

pub use broadcast::{
    BroadcastEvent, BroadcastSource, BroadcastSourceConfig, BroadcastTarget, BroadcastTargetConfig,
};
pub use finding::{Finding, Rule, Severity};
pub use negotiate::{MediaTransport, Negotiated, NegotiatedMedia};
pub use uac::{CallRequest, MediaUac, UacConfig};
pub use uas::{MediaUas, UasConfig, UasFaults};

use std::time::Duration;

/// RFC 3261 §17.1.1.1 timer values. T1 is the round-trip estimate; 64*T1 bounds
/// every transaction and the wait for an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (500 ms).
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and 2xx (4 s).
    pub t2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE (断流 from the other side).
    ByeReceived,
    /// This side sent BYE ([`MediaUas::hangup`] / [`MediaUac::hangup`]).
    ByeSent,
    /// The INVITE got this final status (sent by the UAS, received by the UAC).
    Rejected(u16),
    /// The INVITE was cancelled before it was answered.
    Cancelled,
    /// No final answer to the INVITE within 64*T1.
    TimedOut,
    /// The UAS got no ACK within 64*T1 and sent BYE (RFC 3261 §13.3.1.4).
    NoAck,
    /// The answer left nothing to stream; the UAC acknowledged it and sent BYE.
    AnswerUnusable,
    /// The driver reported the media stopped; this side sent BYE.
    MediaTimeout,
    /// The file ended (MediaStatus 121); the UAC sent BYE.
    EndOfFile,
    /// No media socket could be opened; the INVITE was never sent.
    NoMedia,
}

/// What the media side of a driver tells a session machine (see
/// [`MediaUas::apply`], [`MediaUac::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    /// The media socket is open on this port: the answering side answers 200
    /// with it ([`SessionEvent::Offer`]), the calling side sends its INVITE with
    /// it ([`SessionEvent::Prepare`]).
    Accept(u16),
    /// No media socket could be opened: the answering side refuses with 488, the
    /// calling side gives up (or hangs up).
    Refuse,
    /// End the session with BYE.
    HangUp,
    /// The media failed (nothing arrived, the connection dropped): end with BYE.
    MediaFailed,
    /// The file of a Playback/Download session was sent: the answering side
    /// notifies MediaStatus 121.
    FileEnded,
}

/// What a session machine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// UAC: the offer's receiving media has no port yet. Open the socket it calls
    /// for (UDP, or a TCP listener for `a=setup:passive`; nothing for
    /// `a=setup:active`, port 9) and answer [`SessionCommand::Accept`]; the INVITE
    /// goes out then.
    Prepare {
        media: Box<crate::proto::sdp::GbMedia>,
    },
    /// UAS: an INVITE with a usable offer arrived. Open the media (for TCP passive
    /// or UDP, bind the port) and call [`MediaUas::accept`], or [`MediaUas::reject`].
    /// `negotiated` shows what the answer will say, with port 0 for this side.
    Offer {
        negotiated: Box<Negotiated>,
        findings: Vec<Finding>,
    },
    /// UAC: a provisional response.
    Provisional { status: u16 },
    /// Both sides agreed; start the media now (UAS: the ACK arrived; UAC: the 2xx
    /// arrived and was acknowledged). `findings` judge the peer's part.
    Started {
        negotiated: Box<Negotiated>,
        findings: Vec<Finding>,
    },
    /// UAS: a MANSRTSP request arrived in an INFO and was answered 200.
    Control {
        request: mansrtsp::Request,
        findings: Vec<Finding>,
    },
    /// UAC: the INFO carrying `request` was answered (`status` `None`: no answer).
    ControlAnswered {
        request: mansrtsp::Request,
        status: Option<u16>,
        response: Option<mansrtsp::Response>,
        findings: Vec<Finding>,
    },
    /// UAC: a MediaStatus notification arrived in the dialog and was answered 200.
    MediaStatus {
        notify_type: Option<u32>,
        findings: Vec<Finding>,
    },
    /// UAS: the MediaStatus MESSAGE was answered (`None`: no answer).
    MediaStatusAnswered { status: Option<u16> },
    /// The session is over: stop the media now.
    Ended {
        reason: EndReason,
        findings: Vec<Finding>,
    },
    /// The BYE this side sent was answered (`None`: no answer within 64*T1).
    ByeAnswered {
        status: Option<u16>,
        findings: Vec<Finding>,
    },
    /// Something the peer got wrong outside the exchanges above (a request for no
    /// dialog, a CSeq out of order, an unreadable body).
    Finding(Finding),
}
