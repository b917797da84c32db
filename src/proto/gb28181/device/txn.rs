//! RFC 3261 §17 non-INVITE transactions as the device needs them.
//!
//! Client side (REGISTER, MESSAGE, NOTIFY the device sends): retransmit over
//! UDP at T1, doubling up to T2 (Timer E), give up after Timer F, match a
//! response by the top Via branch and CSeq (§17.1.3).
//!
//! Server side (requests the device answers): a retransmitted request is
//! answered with the response already sent, without acting again (§17.2.2).
//!
//! These are network timers, not protocol intervals: they are not scaled
//! by `time_scale` (the registration code always worked this way).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::sip::{SipMessage, Via};
use crate::proto::Transmit;

/// RFC 3261 §17.1.2.2 timers.
pub(super) const T1: Duration = Duration::from_millis(500);
pub(super) const T2: Duration = Duration::from_secs(4);
pub(super) const TIMER_F: Duration = Duration::from_secs(32);
/// Timer J (64·T1): how long a server transaction remembers its answer.
const TIMER_J: Duration = Duration::from_secs(32);

/// The retransmission schedule of one request.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Retransmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
    pub next: Instant,
    pub interval: Duration,
    pub give_up: Instant,
}

/// What a retransmission timer asks for.
pub(super) enum Due {
    Nothing,
    Resend(Transmit),
    GiveUp,
}

impl Retransmit {
    pub fn new(now: Instant, to: SocketAddr, bytes: Vec<u8>) -> Retransmit {
        Retransmit {
            to,
            bytes,
            next: now + T1,
            interval: T1,
            give_up: now + TIMER_F,
        }
    }

    /// When this needs attention; only Timer F applies over a reliable transport.
    pub fn deadline(&self, udp: bool) -> Instant {
        if udp {
            self.next.min(self.give_up)
        } else {
            self.give_up
        }
    }

    pub fn poll(&mut self, now: Instant, udp: bool) -> Due {
        if now >= self.give_up {
            Due::GiveUp
        } else if udp && now >= self.next {
            self.interval = (self.interval * 2).min(T2);
            self.next = now + self.interval;
            Due::Resend(Transmit {
                to: self.to,
                bytes: self.bytes.clone(),
            })
        } else {
            Due::Nothing
        }
    }

    /// A provisional response arrived: keep going at T2 (§17.1.2.2, Proceeding).
    pub fn proceeding(&mut self, now: Instant) {
        self.interval = T2;
        self.next = now + T2;
    }
}

/// Why the device sent a request; decides what its answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The `nth` keepalive the device sent (not its SN, which the
    /// `keepalive-same-sn` fault repeats).
    Keepalive {
        nth: u64,
    },
    /// A Response MESSAGE to a query or control.
    Response,
    /// The Broadcast Response (§语音广播); once answered 2xx the device INVITEs
    /// the voice source.
    BroadcastResponse {
        source_id: Option<String>,
    },
    Alarm {
        sn: u64,
    },
    /// MediaStatus, UploadSnapShotFinished and other device reports.
    Report,
    /// A NOTIFY in the subscription dialog with this Call-ID.
    Notify {
        call_id: String,
    },
}

#[derive(Debug, Clone)]
pub(super) struct ClientTxn {
    pub branch: String,
    pub cseq: u32,
    pub method: String,
    pub retx: Retransmit,
    pub purpose: Purpose,
}

/// The top Via branch of a message.
pub(super) fn branch_of(m: &SipMessage) -> Option<String> {
    m.headers
        .get("Via")
        .and_then(Via::parse)
        .and_then(|v| v.branch().map(str::to_string))
}

/// True when `resp` answers the request sent with `branch`, `cseq`, `method`.
pub(super) fn matches(resp: &SipMessage, branch: &str, cseq: u32, method: &str) -> bool {
    resp.headers.get("Via").and_then(Via::branch_in) == Some(branch)
        && resp
            .cseq()
            .is_some_and(|c| c.seq == cseq && c.method.eq_ignore_ascii_case(method))
}

/// Outstanding client transactions other than REGISTER.
#[derive(Debug, Default)]
pub(super) struct ClientTxns(Vec<ClientTxn>);

impl ClientTxns {
    pub fn push(&mut self, t: ClientTxn) {
        self.0.push(t);
    }

    /// The transaction `resp` answers. A final response ends it; a
    /// provisional one only slows its retransmissions.
    pub fn answer(&mut self, now: Instant, resp: &SipMessage) -> Option<(Purpose, u16)> {
        let code = resp.status()?;
        let i = self
            .0
            .iter()
            .position(|t| matches(resp, &t.branch, t.cseq, &t.method))?;
        if code < 200 {
            self.0[i].retx.proceeding(now);
            return None;
        }
        Some((self.0.remove(i).purpose, code))
    }

    pub fn deadline(&self, udp: bool) -> Option<Instant> {
        self.0.iter().map(|t| t.retx.deadline(udp)).min()
    }

    /// Retransmit what is due; hand back the transactions that timed out.
    pub fn poll(
        &mut self,
        now: Instant,
        udp: bool,
        out: &mut VecDeque<Transmit>,
    ) -> Vec<ClientTxn> {
        let mut dead = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            match self.0[i].retx.poll(now, udp) {
                Due::GiveUp => dead.push(self.0.remove(i)),
                Due::Resend(t) => {
                    out.push_back(t);
                    i += 1;
                }
                Due::Nothing => i += 1,
            }
        }
        dead
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Answers already given, by request identity, for request retransmissions.
#[derive(Debug, Default)]
pub(super) struct ServerCache {
    entries: VecDeque<(String, Transmit, Instant)>,
}

impl ServerCache {
    /// Identity of a request: top Via branch, CSeq and Call-ID.
    pub fn key(req: &SipMessage) -> Option<String> {
        Some(format!(
            "{}|{}|{}",
            branch_of(req)?,
            req.headers.get("CSeq")?.trim(),
            req.call_id()?
        ))
    }

    /// The answer already sent for `key`, if it is still remembered.
    pub fn lookup(&mut self, now: Instant, key: &str) -> Option<Transmit> {
        self.entries.retain(|(_, _, until)| *until > now);
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, t, _)| t.clone())
    }

    pub fn store(&mut self, now: Instant, key: String, answer: Transmit) {
        self.entries.push_back((key, answer, now + TIMER_J));
        // Bound the memory a flood of distinct requests can take.
        while self.entries.len() > 256 {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_retransmits_double_up_to_t2_then_give_up() {
        let t0 = Instant::now();
        let to: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let mut r = Retransmit::new(t0, to, b"x".to_vec());
        let mut sent = Vec::new();
        let now = loop {
            let now = r.deadline(true);
            match r.poll(now, true) {
                Due::Resend(_) => sent.push(now - t0),
                Due::GiveUp => break now,
                Due::Nothing => {}
            }
        };
        assert_eq!(now - t0, TIMER_F);
        let secs: Vec<f64> = sent.iter().map(|d| d.as_secs_f64()).collect();
        assert_eq!(&secs[..5], &[0.5, 1.5, 3.5, 7.5, 11.5]);
        // Over TCP only Timer F applies.
        let mut r = Retransmit::new(t0, to, b"x".to_vec());
        assert_eq!(r.deadline(false), t0 + TIMER_F);
        assert!(matches!(r.poll(t0 + T1, false), Due::Nothing));
    }

    #[test]
    fn server_cache_forgets_after_timer_j() {
        let t0 = Instant::now();
        let mut c = ServerCache::default();
        let t = Transmit {
            to: "127.0.0.1:1".parse().unwrap(),
            bytes: b"SIP/2.0 200 OK".to_vec(),
        };
        c.store(t0, "k".into(), t.clone());
        assert_eq!(c.lookup(t0 + Duration::from_secs(1), "k"), Some(t));
        assert_eq!(c.lookup(t0 + TIMER_J, "k"), None);
    }
}
