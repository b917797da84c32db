//! What both ends of a media session share: the dialog (RFC 3261 §12) and how an
//! in-dialog request is built, the non-INVITE client transactions with their UDP
//! retransmissions (§17.1.2), and the cache that answers a retransmitted request with
//! the same response (§17.2.2).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::gb28181::message::{build_request, RequestParams};
use crate::proto::gb28181::register::host_port;
use crate::proto::sip::{self, NameAddr, SipMessage, Via};
use crate::proto::{Now, Transmit, Transport};

use super::Timers;

/// The top Via's branch.
pub(crate) fn branch_of(m: &SipMessage) -> Option<String> {
    m.headers
        .get("Via")
        .and_then(Via::parse)
        .and_then(|v| v.branch().map(str::to_string))
}

/// The tag of a From/To value.
pub(crate) fn tag_of(v: Option<&str>) -> Option<String> {
    v.and_then(NameAddr::parse)
        .and_then(|n| n.tag().map(str::to_string))
}

/// A From/To value without its `tag` parameter, kept as written otherwise.
pub(crate) fn strip_tag(v: &str) -> String {
    let v = v.trim();
    let (head, params) = match v.rfind('>') {
        Some(i) => (&v[..=i], &v[i + 1..]),
        None => match v.find(';') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        },
    };
    let mut out = head.to_string();
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let name = p.split('=').next().unwrap_or(p).trim();
        if !name.eq_ignore_ascii_case("tag") {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

/// The URI inside a Contact (or From) value.
pub(crate) fn uri_of(v: &str) -> String {
    let v = v.trim();
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].trim().to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}

/// One SIP dialog, seen from this side.
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub call_id: String,
    /// Our From/To value without tag (`<sip:id@domain>`).
    pub local_uri: String,
    pub local_tag: String,
    /// The peer's From/To value without tag.
    pub remote_uri: String,
    pub remote_tag: Option<String>,
    /// Request-URI of our in-dialog requests (the peer's Contact).
    pub remote_target: String,
    /// CSeq of our last request.
    pub local_cseq: u32,
    /// CSeq of the peer's last request.
    pub remote_cseq: Option<u32>,
    /// Where our requests and responses go.
    pub peer: SocketAddr,
    /// Our SIP address (Via, Contact).
    pub local: SocketAddr,
    pub transport: Transport,
    /// Our ID (Contact user).
    pub local_id: String,
    pub user_agent: String,
}

impl Dialog {
    /// `<sip:<id>@<host:port>>`.
    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.local_id, host_port(self.local))
    }

    /// An in-dialog request (RFC 3261 §12.2.1.1): Request-URI the remote target,
    /// From/To the dialog's URIs and tags. `cseq: None` takes the next number.
    pub fn request(&mut self, method: &str, branch: &str, cseq: Option<u32>) -> SipMessage {
        let cseq = cseq.unwrap_or_else(|| {
            self.local_cseq += 1;
            self.local_cseq
        });
        let mut m = build_request(&RequestParams {
            method,
            from_id: &self.local_id,
            to_id: "",
            domain: "",
            local: self.local,
            remote: self.peer,
            transport: self.transport,
            call_id: &self.call_id,
            from_tag: &self.local_tag,
            to_tag: self.remote_tag.as_deref(),
            cseq,
            branch,
            user_agent: &self.user_agent,
        });
        if let sip::StartLine::Request { uri, .. } = &mut m.start {
            *uri = self.remote_target.clone();
        }
        m.headers
            .set("From", format!("{};tag={}", self.local_uri, self.local_tag));
        m.headers.set(
            "To",
            match &self.remote_tag {
                Some(t) => format!("{};tag={t}", self.remote_uri),
                None => self.remote_uri.clone(),
            },
        );
        m
    }

    /// Whether an incoming request belongs to this dialog (Call-ID and both tags).
    pub fn matches_request(&self, m: &SipMessage) -> bool {
        m.call_id() == Some(self.call_id.as_str())
            && tag_of(m.headers.get("To")).as_deref() == Some(self.local_tag.as_str())
            && tag_of(m.headers.get("From")) == self.remote_tag
    }
}

/// A response to `req`, with our tag on To when given.
pub(crate) fn respond(
    req: &SipMessage,
    code: u16,
    to_tag: Option<&str>,
    user_agent: &str,
) -> SipMessage {
    let mut r = sip::response_to(req, code, to_tag);
    r.headers.push("User-Agent", user_agent);
    r
}

/// A non-INVITE client transaction (RFC 3261 §17.1.2): Timer E retransmits over
/// UDP, Timer F gives up.
#[derive(Debug, Clone)]
pub(crate) struct ClientTxn<P> {
    pub branch: String,
    pub method: String,
    pub to: SocketAddr,
    bytes: Vec<u8>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    deadline: Instant,
    pub purpose: P,
}

/// The open client transactions of one machine.
#[derive(Debug, Clone)]
pub(crate) struct ClientTxns<P> {
    list: Vec<ClientTxn<P>>,
    transport: Transport,
    timers: Timers,
}

impl<P: Clone> ClientTxns<P> {
    pub fn new(transport: Transport, timers: Timers) -> Self {
        ClientTxns {
            list: Vec::new(),
            transport,
            timers,
        }
    }

    /// Sends `msg` and tracks it.
    pub fn start(
        &mut self,
        now: Now,
        to: SocketAddr,
        msg: &SipMessage,
        purpose: P,
        out: &mut VecDeque<Transmit>,
    ) {
        let (transport, timers) = (self.transport, self.timers);
        let bytes = msg.to_bytes();
        out.push_back(Transmit {
            to,
            bytes: bytes.clone(),
        });
        self.list.push(ClientTxn {
            branch: branch_of(msg).unwrap_or_default(),
            method: msg.method().unwrap_or_default().to_string(),
            to,
            bytes,
            retransmit_at: (transport == Transport::Udp).then(|| now.mono + timers.t1),
            interval: timers.t1,
            deadline: now.mono + timers.t1 * 64,
            purpose,
        });
    }

    /// Matches a response by branch and CSeq method. A final response closes the
    /// transaction and returns its purpose; a provisional one only slows Timer E.
    pub fn on_response(&mut self, m: &SipMessage) -> Option<(P, u16)> {
        let timers = self.timers;
        let code = m.status()?;
        let branch = branch_of(m)?;
        let method = m.cseq()?.method;
        let i = self
            .list
            .iter()
            .position(|t| t.branch == branch && t.method == method)?;
        if code < 200 {
            // §17.1.2.2: after a provisional response, retransmit every T2.
            let t = &mut self.list[i];
            t.interval = timers.t2;
            return None;
        }
        let t = self.list.remove(i);
        Some((t.purpose, code))
    }

    /// Retransmits what is due and returns the purposes of transactions that timed out.
    pub fn on_timeout(&mut self, now: Now, out: &mut VecDeque<Transmit>) -> Vec<P> {
        let timers = self.timers;
        let mut expired = Vec::new();
        self.list.retain_mut(|t| {
            if now.mono >= t.deadline {
                expired.push(t.purpose.clone());
                return false;
            }
            if let Some(at) = t.retransmit_at {
                if now.mono >= at {
                    out.push_back(Transmit {
                        to: t.to,
                        bytes: t.bytes.clone(),
                    });
                    t.interval = (t.interval * 2).min(timers.t2);
                    t.retransmit_at = Some(now.mono + t.interval);
                }
            }
            true
        });
        expired
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.list
            .iter()
            .map(|t| t.retransmit_at.map_or(t.deadline, |r| r.min(t.deadline)))
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `m` is a response to one of the open transactions.
    pub fn owns_response(&self, m: &SipMessage) -> bool {
        let (Some(branch), Some(c)) = (branch_of(m), m.cseq()) else {
            return false;
        };
        m.status().is_some()
            && self
                .list
                .iter()
                .any(|t| t.branch == branch && t.method == c.method)
    }
}

/// Responses already sent, so a retransmitted request gets the same answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct SentResponses {
    list: VecDeque<(String, String, u32, Transmit)>,
}

impl SentResponses {
    const KEEP: usize = 16;

    fn key(m: &SipMessage) -> Option<(String, String, u32)> {
        let c = m.cseq()?;
        Some((branch_of(m)?, c.method, c.seq))
    }

    /// Remembers the response sent to `req`.
    pub fn remember(&mut self, req: &SipMessage, t: &Transmit) {
        if let Some((b, m, s)) = Self::key(req) {
            self.list
                .retain(|(b2, m2, s2, _)| !(b2 == &b && m2 == &m && *s2 == s));
            self.list.push_back((b, m, s, t.clone()));
            while self.list.len() > Self::KEEP {
                self.list.pop_front();
            }
        }
    }

    /// The response already sent to this request, if it is a retransmission.
    pub fn replay(&self, req: &SipMessage) -> Option<Transmit> {
        let (b, m, s) = Self::key(req)?;
        self.list
            .iter()
            .find(|(b2, m2, s2, _)| b2 == &b && m2 == &m && *s2 == s)
            .map(|(.., t)| t.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stripped_and_kept() {
        assert_eq!(
            strip_tag("<sip:a@b:5060>;tag=123"),
            "<sip:a@b:5060>".to_string()
        );
        assert_eq!(
            strip_tag("\"x\" <sip:a@b>;foo=1;tag=9;bar"),
            "\"x\" <sip:a@b>;foo=1;bar"
        );
        assert_eq!(strip_tag("sip:a@b;tag=9"), "sip:a@b");
        assert_eq!(
            uri_of("<sip:a@1.2.3.4:5060>;expires=3"),
            "sip:a@1.2.3.4:5060"
        );
        assert_eq!(uri_of("sip:a@b;x"), "sip:a@b");
        assert_eq!(tag_of(Some("sip:a@b;tag=9")).as_deref(), Some("9"));
    }
}
