//! Non-INVITE client transactions (RFC 3261 §17.1.2) for the requests the
//! platform sends: retransmission over UDP (Timer E: T1 doubling up to T2),
//! giving up after Timer F, and matching a response to its request by the
//! top Via branch and the CSeq (§17.1.3).
//!
//! These timers run in real time, not protocol time: they belong to the
//! transport, like the device's REGISTER timers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::sip::{self, SipMessage};

pub(super) const T1: Duration = Duration::from_millis(500);
pub(super) const T2: Duration = Duration::from_secs(4);
pub(super) const TIMER_F: Duration = Duration::from_secs(32);

/// What a request was sent for; decides what its answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A query or control whose answer comes as a separate MESSAGE.
    Query { sn: u64 },
    /// A control that needs no answer beyond 200.
    Control,
    /// The Response MESSAGE that acknowledges an alarm.
    AlarmAck,
    /// A SUBSCRIBE (refresh or end with `expires` 0) of subscription `id`.
    Subscribe { id: u32, expires: u32 },
    /// A keepalive to the upper platform.
    Keepalive,
    /// Anything else sent to the upper platform (catalog pages, status
    /// notifications, forwarded answers).
    Upstream,
    /// A request passed on to a device for the upper platform.
    Forward,
}

#[derive(Debug, Clone)]
pub(super) struct ClientTx {
    pub branch: String,
    pub method: String,
    pub cseq: u32,
    pub to: SocketAddr,
    /// The ID the request is addressed to.
    pub target: String,
    pub bytes: Vec<u8>,
    /// Next retransmission (UDP only).
    pub retransmit_at: Option<Instant>,
    pub interval: Duration,
    pub give_up_at: Instant,
    pub purpose: Purpose,
}

/// What a timer did to a transaction.
pub(super) enum Tick {
    Nothing,
    Retransmit,
    TimedOut,
}

impl ClientTx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        udp: bool,
        msg: &SipMessage,
        bytes: Vec<u8>,
        to: SocketAddr,
        target: &str,
        purpose: Purpose,
    ) -> ClientTx {
        let branch = msg
            .headers
            .get("Via")
            .and_then(sip::Via::parse)
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let cseq = msg.cseq();
        ClientTx {
            branch,
            method: cseq.as_ref().map(|c| c.method.clone()).unwrap_or_default(),
            cseq: cseq.map(|c| c.seq).unwrap_or(0),
            to,
            target: target.to_string(),
            bytes,
            retransmit_at: udp.then(|| now + T1),
            interval: T1,
            give_up_at: now + TIMER_F,
            purpose,
        }
    }

    /// RFC 3261 §17.1.3: same top Via branch and same CSeq method (and number).
    pub fn matches(&self, resp: &SipMessage) -> bool {
        let branch = resp
            .headers
            .get("Via")
            .and_then(sip::Via::parse)
            .and_then(|v| v.branch().map(str::to_string));
        let cseq = resp.cseq();
        branch.as_deref() == Some(self.branch.as_str())
            && cseq
                .as_ref()
                .is_some_and(|c| c.seq == self.cseq && c.method.eq_ignore_ascii_case(&self.method))
    }

    /// A provisional response: stop retransmitting at T1 pace (§17.1.2.2:
    /// in Proceeding, retransmit at T2).
    pub fn proceeding(&mut self, now: Instant) {
        if self.retransmit_at.is_some() {
            self.interval = T2;
            self.retransmit_at = Some(now + T2);
        }
    }

    pub fn wake(&self) -> Instant {
        match self.retransmit_at {
            Some(r) => r.min(self.give_up_at),
            None => self.give_up_at,
        }
    }

    pub fn tick(&mut self, now: Instant) -> Tick {
        if now >= self.give_up_at {
            return Tick::TimedOut;
        }
        match self.retransmit_at {
            Some(at) if now >= at => {
                self.interval = (self.interval * 2).min(T2);
                self.retransmit_at = Some(now + self.interval);
                Tick::Retransmit
            }
            _ => Tick::Nothing,
        }
    }
}
