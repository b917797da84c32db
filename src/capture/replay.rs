//! `camcert replay`: play one side of a captured session against a live
//! peer and compare each of its answers with the captured one.
//!
//! [`Script::from_events`] takes the SIP messages of a capture (from
//! [`super::decode::Decoder`]) between the device (the sender of the first
//! REGISTER) and its platform, drops retransmissions, and keeps them in
//! order as messages to send (the played side's: the device's, or with
//! [`Script::platform_side`] the platform's) and messages to expect. [`Player`] is the sans-IO half of a replay: it is handed
//! what arrives ([`Player::received`]) and says what to send next
//! ([`Player::next_send`]), rewriting as it goes everything that belongs to
//! one run: addresses and ports, Call-IDs, tags and branches (fresh for
//! each run), the headers of a response from the live request it answers,
//! the SN of a MANSCDP answer from the live query, the digest response
//! computed for the live nonce with the password (a played platform gives
//! fresh nonces, the driver's Date, and verifies the device's responses).
//!
//! Answers are compared by their [`shape`]: the start line, CSeq method and
//! the headers and body fields that carry meaning, with the volatile values
//! (nonces, tags, Call-IDs, times, ports) redacted; a difference is shown as
//! a diff of those lines.

use std::collections::HashMap;
use std::time::Duration;

use crate::capture::decode::SipEvent;
use crate::proto::sip::digest::{Challenge, Credentials};
use crate::proto::sip::{SipMessage, StartLine};

/// One step of a captured session.
#[derive(Debug, Clone)]
pub struct Step {
    /// Sent by the side being played (else expected from the live peer).
    pub send: bool,
    /// Since the first message of the capture.
    pub at: Duration,
    pub message: SipMessage,
}

/// The session to play, in capture order.
#[derive(Debug, Clone)]
pub struct Script {
    pub steps: Vec<Step>,
    /// The played side's address in the capture.
    pub local: std::net::SocketAddr,
    /// The peer's address in the capture.
    pub peer: std::net::SocketAddr,
}

fn key(m: &SipMessage) -> (String, String, String) {
    let what = match &m.start {
        StartLine::Request { method, .. } => method.clone(),
        StartLine::Response { code, .. } => code.to_string(),
    };
    (
        m.call_id().unwrap_or("").trim().to_string(),
        m.headers.get("CSeq").unwrap_or("").trim().to_string(),
        what,
    )
}

impl Script {
    /// The device side of a capture: the messages between the sender of
    /// the first REGISTER and the address it went to.
    pub fn device_side(events: &[SipEvent]) -> Result<Script, String> {
        Script::side(events, true)
    }

    /// The platform side: the messages between the address the first
    /// REGISTER went to and its sender.
    pub fn platform_side(events: &[SipEvent]) -> Result<Script, String> {
        Script::side(events, false)
    }

    fn side(events: &[SipEvent], device: bool) -> Result<Script, String> {
        let first = events
            .iter()
            .find(|e| e.message.method() == Some("REGISTER"))
            .ok_or("the capture holds no REGISTER: no device and platform to tell apart")?;
        let (local, peer) = if device {
            (first.flow.src, first.flow.dst)
        } else {
            (first.flow.dst, first.flow.src)
        };
        let t0 = first.time;
        let mut seen = std::collections::HashSet::new();
        let mut steps = Vec::new();
        for e in events {
            let send = (e.flow.src, e.flow.dst) == (local, peer);
            if !send && (e.flow.src, e.flow.dst) != (peer, local) {
                continue;
            }
            if e.time < t0 || !seen.insert((send, key(&e.message))) {
                continue; // before the registration, or a retransmission
            }
            if e.message.status().is_some_and(|s| s < 200) {
                continue; // provisional responses come and go
            }
            steps.push(Step {
                send,
                at: e.time - t0,
                message: e.message.clone(),
            });
        }
        Ok(Script { steps, local, peer })
    }
}

/// A random token for Call-IDs, tags and branches.
fn token(seed: &mut u64) -> String {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    format!("{:016x}", *seed)
}

/// The lines an answer is compared on.
pub fn shape(m: &SipMessage) -> Vec<String> {
    let mut v = Vec::new();
    match &m.start {
        StartLine::Request { method, .. } => v.push(format!("{method} <uri>")),
        StartLine::Response { code, .. } => v.push(format!("SIP/2.0 {code}")),
    }
    if let Some(c) = m.cseq() {
        v.push(format!("CSeq: <n> {}", c.method));
    }
    if let Some(w) = m.headers.get("WWW-Authenticate") {
        match Challenge::parse(w) {
            Ok(c) => v.push(format!(
                "WWW-Authenticate: Digest realm=\"{}\" nonce=<nonce> algorithm={}{}{}",
                c.realm,
                c.algorithm.name(),
                if c.opaque.is_some() {
                    " opaque=<opaque>"
                } else {
                    ""
                },
                if c.qop_auth { " qop=auth" } else { "" }
            )),
            Err(e) => v.push(format!("WWW-Authenticate: unreadable ({e})")),
        }
    }
    if let Some(d) = m.headers.get("Date") {
        let shape: String = d
            .trim()
            .chars()
            .map(|c| if c.is_ascii_digit() { 'n' } else { c })
            .collect();
        v.push(format!("Date: <{shape}>"));
    }
    for h in ["Expires", "Content-Type", "Event", "Subscription-State"] {
        if let Some(x) = m.headers.get(h) {
            v.push(format!("{h}: {}", x.trim().to_ascii_lowercase()));
        }
    }
    if m.headers.get("Authorization").is_some() {
        v.push("Authorization: Digest <credentials>".into());
    }
    if !m.body.is_empty() {
        match crate::proto::gb28181::manscdp::Message::decode(&m.body) {
            Ok(d) => {
                v.push(format!("body: MANSCDP <{}>", d.message.root.as_str()));
                for f in ["CmdType", "Result", "Status", "SumNum", "DeviceList@Num"] {
                    if let Some(x) = d.get(f) {
                        v.push(format!("body: {f} = {}", x.trim()));
                    }
                }
                if d.get("SN").is_some() {
                    v.push("body: SN = <sn>".into());
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(&m.body);
                if text.starts_with("v=") {
                    for line in text.lines() {
                        let line = line.trim();
                        if ["s=", "m=", "a=", "y=", "f="]
                            .iter()
                            .any(|p| line.starts_with(p))
                        {
                            let line = match line.strip_prefix("m=") {
                                Some(r) => {
                                    let mut parts: Vec<&str> = r.split_whitespace().collect();
                                    if parts.len() > 1 {
                                        parts[1] = "<port>";
                                    }
                                    format!("m={}", parts.join(" "))
                                }
                                None if line.starts_with("y=") => "y=<ssrc>".into(),
                                None => line.to_string(),
                            };
                            v.push(format!("body: {line}"));
                        }
                    }
                } else {
                    v.push(format!("body: {} bytes", m.body.len()));
                }
            }
        }
    }
    v
}

/// `- captured` / `+ live` lines where the shapes differ (`None`: same).
pub fn diff(captured: &[String], live: &[String]) -> Option<String> {
    if captured == live {
        return None;
    }
    let mut out = String::new();
    for l in captured {
        if live.contains(l) {
            out.push_str(&format!("      {l}\n"));
        } else {
            out.push_str(&format!("    - {l}\n"));
        }
    }
    for l in live {
        if !captured.contains(l) {
            out.push_str(&format!("    + {l}\n"));
        }
    }
    Some(out)
}

/// What the live peer sent that answered a captured step.
#[derive(Debug, Clone)]
pub struct Matched {
    pub step: usize,
    pub live: SipMessage,
    /// The shapes differ: the diff.
    pub diff: Option<String>,
}

/// The sans-IO replay of a [`Script`].
#[derive(Debug)]
pub struct Player {
    script: Script,
    next: usize,
    /// Strings of the capture replaced by this run's (Call-IDs, tags,
    /// branches, addresses).
    map: Vec<(String, String)>,
    transport: &'static str,
    password: String,
    seed: u64,
    /// Live messages not yet matched to a step.
    pending: Vec<SipMessage>,
    /// Keys of live messages already taken (their retransmissions are ignored).
    taken: std::collections::HashSet<(String, String, String)>,
    /// Captured (Call-ID, CSeq) of a peer request -> the live request.
    requests: HashMap<(String, String), SipMessage>,
    /// Captured SN of a peer query -> the live one.
    sns: HashMap<String, String>,
    /// The live challenge per live Call-ID.
    challenges: HashMap<String, Challenge>,
}

fn header_value(m: &SipMessage, name: &str) -> String {
    m.headers.get(name).unwrap_or("").trim().to_string()
}

fn tag_of(v: &str) -> Option<String> {
    v.split(';')
        .skip(1)
        .find_map(|p| p.trim().strip_prefix("tag=").map(|t| t.trim().to_string()))
}

fn branch_of(v: &str) -> Option<String> {
    v.split(';').skip(1).find_map(|p| {
        p.trim()
            .strip_prefix("branch=")
            .map(|t| t.trim().to_string())
    })
}

fn sn_of(body: &[u8]) -> Option<String> {
    let t = String::from_utf8_lossy(body);
    let s = t.find("<SN>")? + 4;
    let e = s + t[s..].find("</SN>")?;
    Some(t[s..e].trim().to_string())
}

impl Player {
    /// A replay from `local` (this run's address) to `target`.
    pub fn new(
        script: Script,
        local: std::net::SocketAddr,
        target: std::net::SocketAddr,
        transport: crate::proto::Transport,
        password: String,
        seed: u64,
    ) -> Player {
        let mut map = vec![
            (script.local.to_string(), local.to_string()),
            (script.peer.to_string(), target.to_string()),
        ];
        let mut seed = seed | 1;
        // Fresh Call-IDs, From tags and branches of the played side.
        for s in script
            .steps
            .iter()
            .filter(|s| s.send && s.message.is_request())
        {
            let m = &s.message;
            let mut olds = vec![header_value(m, "Call-ID")];
            olds.extend(tag_of(&header_value(m, "From")));
            olds.extend(m.headers.get_all("Via").filter_map(branch_of));
            for old in olds {
                if !old.is_empty() && !map.iter().any(|(o, _)| *o == old) {
                    let new = if old.starts_with("z9hG4bK") {
                        format!("z9hG4bK{}", token(&mut seed))
                    } else {
                        token(&mut seed)
                    };
                    map.push((old, new));
                }
            }
        }
        // To tags the played side gave in its responses.
        for s in script
            .steps
            .iter()
            .filter(|s| s.send && !s.message.is_request())
        {
            if let Some(t) = tag_of(&header_value(&s.message, "To")) {
                if !map.iter().any(|(o, _)| *o == t) {
                    let new = token(&mut seed);
                    map.push((t, new));
                }
            }
        }
        Player {
            script,
            next: 0,
            map,
            transport: match transport {
                crate::proto::Transport::Udp => "UDP",
                crate::proto::Transport::Tcp => "TCP",
            },
            password,
            seed,
            pending: Vec::new(),
            taken: Default::default(),
            requests: HashMap::new(),
            sns: HashMap::new(),
            challenges: HashMap::new(),
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.script.steps
    }

    /// The live peer's address, once known (a platform learns its device's
    /// from the first REGISTER).
    pub fn set_peer(&mut self, addr: std::net::SocketAddr) {
        let captured = self.script.peer.to_string();
        if let Some(slot) = self.map.iter_mut().find(|(o, _)| *o == captured) {
            slot.1 = addr.to_string();
        }
    }

    /// The index of the next step, or `None` when the script is done.
    pub fn position(&self) -> Option<usize> {
        (self.next < self.script.steps.len()).then_some(self.next)
    }

    fn rewrite(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (old, new) in &self.map {
            s = s.replace(old.as_str(), new);
        }
        s
    }

    /// [`Player::rewrite`] on bytes (a GB2312 body stays GB2312).
    fn rewrite_bytes(&self, b: &[u8]) -> Vec<u8> {
        let mut b = b.to_vec();
        for (old, new) in &self.map {
            b = replace_bytes(&b, old.as_bytes(), new.as_bytes());
        }
        b
    }

    /// What arrived from the live peer. Returns the step it answered when
    /// that is the step being waited for (retransmissions are dropped).
    pub fn received(&mut self, m: SipMessage) -> Option<Matched> {
        if self.taken.contains(&key(&m)) || self.pending.iter().any(|p| key(p) == key(&m)) {
            return None;
        }
        self.pending.push(m);
        self.try_match()
    }

    /// The live message that answers the step being waited for, if one has
    /// arrived.
    fn try_match(&mut self) -> Option<Matched> {
        let i = self.next;
        let step = self.script.steps.get(i)?;
        if step.send {
            return None;
        }
        let want = &step.message;
        let pos = self.pending.iter().position(|live| {
            if want.is_request() {
                live.method() == want.method() && cmd_type(&live.body) == cmd_type(&want.body)
            } else {
                !live.is_request()
                    && header_value(live, "Call-ID") == self.rewrite(&header_value(want, "Call-ID"))
                    && live.cseq() == want.cseq()
            }
        })?;
        let live = self.pending.remove(pos);
        self.taken.insert(key(&live));
        let want = want.clone();
        if want.is_request() {
            let ck = (header_value(&want, "Call-ID"), header_value(&want, "CSeq"));
            self.requests.insert(ck, live.clone());
            if let (Some(a), Some(b)) = (sn_of(&want.body), sn_of(&live.body)) {
                self.sns.insert(a, b);
            }
            // The peer's own tag and Call-ID: its later in-dialog messages
            // are matched on the live values.
            if let (Some(a), Some(b)) = (
                tag_of(&header_value(&want, "From")),
                tag_of(&header_value(&live, "From")),
            ) {
                self.map.push((a, b));
            }
        } else if let Some(w) = live.headers.get("WWW-Authenticate") {
            if let Ok(c) = Challenge::parse(w) {
                self.challenges.insert(header_value(&live, "Call-ID"), c);
            }
        }
        self.next += 1;
        let mut live_shape = shape(&live);
        // Credentials the live device computed for this run's nonce.
        if let (Some(a), false) = (live.headers.get("Authorization"), self.password.is_empty()) {
            let method = live.method().unwrap_or("REGISTER");
            match Credentials::parse(a) {
                Ok(c) if c.verify(&self.password, method) => {}
                Ok(c) => {
                    let i = live_shape
                        .iter()
                        .position(|l| l.starts_with("Authorization:"))
                        .unwrap_or(0);
                    live_shape[i] = format!(
                        "Authorization: Digest response=\"{}\" (the password gives \"{}\")",
                        c.response,
                        c.expected_response(&self.password, method)
                    );
                }
                Err(e) => live_shape.push(format!("Authorization: unreadable ({e})")),
            }
        }
        let diff = diff(&shape(&want), &live_shape);
        Some(Matched {
            step: i,
            live,
            diff,
        })
    }

    /// The next message to send, when the script is at a step of the
    /// played side; `Err` when it cannot be built (no challenge to answer).
    /// `date` replaces a Date header (the driver's clock, GB format).
    pub fn next_send(&mut self, date: &str) -> Option<Result<(usize, Vec<u8>), String>> {
        let i = self.next;
        let step = self.script.steps.get(i)?;
        if !step.send {
            return None;
        }
        let out = self.build(&step.message.clone(), date);
        self.next += 1;
        Some(out.map(|b| (i, b)))
    }

    fn build(&mut self, captured: &SipMessage, date: &str) -> Result<Vec<u8>, String> {
        let parsed = SipMessage::parse(&self.rewrite_bytes(&captured.to_bytes()))
            .map_err(|e| format!("the rewritten message does not parse: {e}"))?;
        let mut m = parsed.message;
        // The transport of this run.
        let vias: Vec<String> = m
            .headers
            .get_all("Via")
            .map(|v| {
                let v = v.trim();
                match v.split_once(char::is_whitespace) {
                    Some((proto, rest)) if proto.to_ascii_uppercase().starts_with("SIP/2.0/") => {
                        format!("SIP/2.0/{} {}", self.transport, rest.trim())
                    }
                    _ => v.to_string(),
                }
            })
            .collect();
        if m.is_request() {
            if !vias.is_empty() {
                m.headers.remove("Via");
                for v in vias {
                    m.headers.push("Via", v);
                }
            }
        } else {
            // A response copies the live request it answers.
            let ck = (
                header_value(captured, "Call-ID"),
                header_value(captured, "CSeq"),
            );
            let Some(req) = self.requests.get(&ck) else {
                return Err(format!(
                    "no live request for the captured response to Call-ID {} CSeq {}",
                    ck.0, ck.1
                ));
            };
            m.headers.remove("Via");
            for v in req.headers.get_all("Via") {
                m.headers.push("Via", v.to_string());
            }
            for h in ["From", "Call-ID", "CSeq"] {
                m.headers.set(h, header_value(req, h));
            }
            let to = header_value(req, "To");
            let tag = tag_of(&header_value(&m, "To"));
            m.headers.set(
                "To",
                match (tag_of(&to), tag) {
                    (None, Some(t)) => format!("{to};tag={t}"),
                    _ => to,
                },
            );
        }
        // A MANSCDP answer carries the live query's SN.
        if let Some(sn) = sn_of(&m.body) {
            if let Some(live) = self.sns.get(&sn) {
                m.body = replace_bytes(
                    &m.body,
                    format!("<SN>{sn}</SN>").as_bytes(),
                    format!("<SN>{live}</SN>").as_bytes(),
                );
            }
        }
        // Credentials for the live nonce.
        if let Some(a) = m.headers.get("Authorization").map(str::to_string) {
            let old = Credentials::parse(&a).map_err(|e| format!("captured Authorization: {e}"))?;
            let call = header_value(&m, "Call-ID");
            let ch = self.challenges.get(&call).ok_or_else(|| {
                "the captured request carries credentials, but the live peer sent no challenge for them".to_string()
            })?;
            let cnonce = old
                .qop
                .as_ref()
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| token(&mut self.seed));
            let method = m.method().unwrap_or("REGISTER").to_string();
            let c = Credentials::answer(
                ch,
                &old.username,
                &self.password,
                &method,
                &old.uri,
                &cnonce,
            );
            m.headers.set("Authorization", c.to_header());
        }
        if m.headers.contains("Date") {
            m.headers.set("Date", date);
        }
        m.headers.remove("Content-Length");
        Ok(m.with_content_length().to_bytes())
    }
}

/// Every `from` in `b` replaced by `to`.
fn replace_bytes(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The CmdType of a MANSCDP body, if it is one.
fn cmd_type(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    crate::proto::gb28181::manscdp::Message::decode(body)
        .ok()
        .and_then(|d| d.message.cmd_type.map(|c| c.as_str().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> SipMessage {
        SipMessage::parse(s.replace('\n', "\r\n").as_bytes())
            .unwrap()
            .message
    }

    /// Play both sides of a recording against each other, offline: each
    /// side's messages are the other's expectations.
    fn self_play(data: &[u8], password: &str) -> (usize, usize) {
        let Ok(cap) = crate::capture::read::read_capture(data) else {
            return (0, 0);
        };
        let mut dec = crate::capture::decode::Decoder::new();
        let mut events = Vec::new();
        for f in &cap.frames {
            dec.push(f, &mut |e| events.push(e));
        }
        let (Ok(dev), Ok(plat)) = (Script::device_side(&events), Script::platform_side(&events))
        else {
            return (0, 0);
        };
        let a: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: std::net::SocketAddr = "192.0.2.2:5060".parse().unwrap();
        let udp = crate::proto::Transport::Udp;
        let mut d = Player::new(dev, a, b, udp, password.into(), 1);
        let mut p = Player::new(plat, b, a, udp, password.into(), 2);
        let mut tally = (0, 0);
        for _ in 0..10_000 {
            let a = pump(&mut d, &mut p, &mut tally);
            let b = pump(&mut p, &mut d, &mut tally);
            if !(a || b) {
                break;
            }
        }
        tally
    }

    /// Hand everything `from` has to send to `to`; (matched, differed).
    fn pump(from: &mut Player, to: &mut Player, tally: &mut (usize, usize)) -> bool {
        let mut moved = false;
        while let Some(r) = from.next_send("2026-12-04T01:02:03.456") {
            moved = true;
            let Ok((_, bytes)) = r else { continue };
            if let Ok(m) = SipMessage::parse(&bytes) {
                if let Some(hit) = to.received(m.message) {
                    if hit.diff.is_some() {
                        tally.1 += 1;
                    } else {
                        tally.0 += 1;
                    }
                }
            }
        }
        moved
    }

    #[test]
    fn a_recording_plays_against_itself() {
        let data = include_bytes!("../../captures/gb28181-camcert-device-platform-udp.pcapng");
        let (matched, differed) = self_play(data, "capture-pw-1");
        assert_eq!(differed, 0);
        // Every message but the INVITE's 100 Trying, each side's expectation.
        assert_eq!(matched, 27);
    }

    proptest::proptest! {
        #[test]
        fn a_damaged_recording_replays_without_panicking(hits in proptest::collection::vec((0usize..1_000_000, proptest::prelude::any::<u8>()), 1..40)) {
            let mut v = include_bytes!("../../captures/gb28181-camcert-device-platform-tcp.pcap").to_vec();
            let n = v.len() - 24;
            for (at, b) in hits {
                v[24 + at % n] = b;
            }
            let _ = self_play(&v, "x");
        }
    }

    #[test]
    fn shapes_redact_what_changes_and_keep_what_matters() {
        let a = msg("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 1.2.3.4:5;branch=z9hG4bKa\nCall-ID: x\nCSeq: 2 REGISTER\nDate: 2026-12-04T01:02:03.456\nExpires: 3600\nContent-Length: 0\n\n");
        let b = msg("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 5.6.7.8:9;branch=z9hG4bKb\nCall-ID: y\nCSeq: 7 REGISTER\nDate: 2027-01-01T00:00:00.000\nExpires: 3600\nContent-Length: 0\n\n");
        assert_eq!(shape(&a), shape(&b));
        let c = msg("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 5.6.7.8:9;branch=z9hG4bKb\nCall-ID: y\nCSeq: 7 REGISTER\nExpires: 3600\nContent-Length: 0\n\n");
        let d = diff(&shape(&a), &shape(&c)).unwrap();
        assert!(d.contains("    - Date: <nnnn-nn-nnTnn:nn:nn.nnn>"), "{d}");
    }
}
