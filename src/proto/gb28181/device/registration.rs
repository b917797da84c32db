//! §注册 / §注销 / §注册重定向 on the device side: REGISTER, the digest
//! answer, refresh before expiry, the retry rule ("若注册失败，应在不短于
//! 60s的时间间隔内重新发起注册"), and redirection.
//!
//! §重定向流程 4-5: the redirect server answers 302 with "Contact头域和
//! Expires，Contact格式为sip:SIP服务器A编码@目的IP地址端口"; the device then
//! registers to server A. Step 7: "如果SIP代理检测SIP服务器A离线或注册被
//! SIP服务器拒绝，SIP代理应重新执行注册重定向流程，向SIP重定向服务器发起注册
//! 请求". Decisions: the Expires of the 302 is read as how long the Contact
//! stays valid (RFC 3261 §20.19) and only reported; after server A refuses
//! or does not answer, the device waits the retry interval (the §注册 rule
//! for any failed registration) and then registers to the redirect server;
//! when keepalives show server A offline it goes back to the redirect
//! server at once.

use super::txn::{matches, Retransmit};
use super::{Device, DeviceEvent, Server, State};
use crate::proto::gb28181::register::{
    build_register, encode_register, parse_date, register_uri, RegisterParams,
};
use crate::proto::sip::digest::{Challenge, Credentials};
use crate::proto::sip::{self, Finding, NameAddr, SipMessage};
use crate::proto::{Now, Transmit};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

impl Device {
    /// Unregister (`Expires: 0`, spec §注销).
    pub fn unregister(&mut self, now: Now) {
        if self.cfg.faults.no_unregister {
            return;
        }
        self.keepalive_stop();
        self.send_register(now, true, None);
    }

    fn ids(&self) -> (Cow<'_, str>, Cow<'_, str>) {
        let dev = if self.cfg.faults.wrong_device_id {
            // Same shape, different serial: a device that reports the wrong identity.
            let mut d = self.cfg.device_id.clone();
            d.replace_range(14.min(d.len()).., "999999");
            Cow::Owned(d)
        } else {
            Cow::Borrowed(self.cfg.device_id.as_str())
        };
        let plat = if self.cfg.faults.wrong_platform_id {
            let mut p = self.server.id.to_string();
            p.replace_range(14.min(p.len()).., "999999");
            Cow::Owned(p)
        } else {
            Cow::Borrowed(&*self.server.id)
        };
        (dev, plat)
    }

    pub(super) fn send_register(&mut self, now: Now, unregister: bool, auth: Option<Credentials>) {
        self.cseq += 1;
        let branch = sip::new_branch(&mut self.rng);
        let (device_id, platform_id) = self.ids();
        let params = RegisterParams {
            device_id: &device_id,
            platform_id: &platform_id,
            domain: &self.cfg.domain,
            local: self.cfg.local,
            server: self.server.addr,
            transport: self.cfg.transport,
            call_id: &self.call_id,
            from_tag: &self.from_tag,
            branch: &branch,
            cseq: self.cseq,
            expires: if unregister { 0 } else { self.cfg.expires },
            authorization: auth.as_ref(),
            user_agent: &self.cfg.user_agent,
        };
        let f = &self.cfg.faults;
        let faulty_first = !self.first_sent
            && (f.garbage || f.truncated || f.overlong_body || f.oversize_content_length);
        let mut bytes = Vec::new();
        if faulty_first {
            let msg = build_register(&params);
            bytes = if f.garbage {
                b"\x00\x01\x02garbage\xff\xfe not SIP at all".to_vec()
            } else if f.truncated {
                let mut m = msg;
                m.headers.set("Content-Length", "120");
                m.to_bytes()
            } else if f.overlong_body {
                let mut b = msg.to_bytes();
                b.extend_from_slice(b"EXTRA-BYTES-BEYOND-CONTENT-LENGTH");
                b
            } else {
                let mut m = msg;
                m.headers.set("Content-Length", "2000000");
                m.to_bytes()
            };
        } else {
            // The same bytes as `build_register(..).to_bytes()`, written
            // without the message value.
            bytes.reserve(512);
            encode_register(&params, &mut bytes);
        }
        drop((device_id, platform_id));
        self.first_sent = true;
        self.transmits.push_back(Transmit {
            to: self.server.addr,
            bytes: bytes.clone(),
        });
        self.state = State::Pending {
            unregister,
            authed: auth.is_some(),
            branch,
            cseq: self.cseq,
            retx: Retransmit::new(now.mono, self.server.addr, bytes),
        };
    }

    /// The registration failed: wait the retry interval, then register
    /// again (to the redirect server if server A was the one that failed).
    fn fail(&mut self, now: Now, event: DeviceEvent) {
        self.events.push_back(event);
        self.keepalive_stop();
        self.leave_redirect();
        let wait = if self.cfg.faults.fast_retry {
            Duration::from_secs(1)
        } else {
            self.cfg.retry_interval
        };
        self.state = State::WaitingRetry {
            at: now.mono + self.protocol(wait),
        };
    }

    /// Go back to the configured (redirect) server, unless a fault says not to.
    pub(super) fn leave_redirect(&mut self) {
        let home = Server {
            id: self.cfg.platform_id.clone(),
            addr: self.cfg.server,
        };
        if self.server != home && !self.cfg.faults.no_redirect_fallback {
            self.server = home;
            self.new_call();
        }
    }

    /// The platform stopped answering keepalives: register afresh at once.
    pub(super) fn platform_lost(&mut self, now: Now) {
        self.keepalive_stop();
        self.leave_redirect();
        self.send_register(now, false, None);
    }

    /// Handle `msg` if it answers the outstanding REGISTER.
    pub(super) fn on_register_response(&mut self, now: Now, msg: &SipMessage) -> bool {
        let State::Pending {
            unregister,
            authed,
            cseq,
            ref branch,
            ..
        } = self.state
        else {
            return false;
        };
        let Some(code) = msg.status() else {
            return false;
        };
        // Match the response to the transaction (RFC 3261 §17.1.3).
        if !matches(msg, branch, cseq, "REGISTER") {
            return false;
        }
        match code {
            100..=199 => {
                if let State::Pending { retx, .. } = &mut self.state {
                    retx.proceeding(now.mono);
                }
            }
            200..=299 => self.registered(now, msg, unregister),
            300..=399 if !unregister => self.redirected(now, msg, code),
            401 | 407 if !authed => self.answer_challenge(now, msg, code, unregister),
            _ => self.fail(now, DeviceEvent::Rejected { status: code }),
        }
        true
    }

    fn registered(&mut self, now: Now, msg: &SipMessage, unregister: bool) {
        if unregister {
            self.state = State::Unregistered;
            self.events.push_back(DeviceEvent::Unregistered);
            return;
        }
        let mut findings = Vec::new();
        let expires = match msg.headers.get("Expires").map(|e| (e, e.trim().parse())) {
            Some((_, Ok(e))) => e,
            Some((raw, Err(_))) => {
                // Not the same as no Expires: say what was there.
                findings.push(Finding::error(
                    "sip.expires-malformed",
                    "RFC 3261 §20.19: Expires = \"Expires\" HCOLON delta-seconds",
                    format!(
                        "Expires {raw:?} in the 200 to REGISTER is not a number of seconds; refreshing as if {} s were granted",
                        self.cfg.expires
                    ),
                ));
                self.cfg.expires
            }
            None => self.cfg.expires,
        };
        let date = msg.headers.get("Date").map(str::to_string);
        if let Some(d) = &date {
            match parse_date(d) {
                Ok((_, f)) => findings.extend(f),
                Err(e) => findings.push(Finding::error(
                    "gb.date-format",
                    "§校时 (200 OK中的Date头域, yyyy-MM-ddTHH:mm:ss.SSS)",
                    e,
                )),
            }
        }
        let refresh_at = (!self.cfg.faults.no_refresh).then(|| {
            now.mono
                + self.protocol(Duration::from_secs_f64(
                    expires as f64 * self.cfg.refresh_ratio,
                ))
        });
        self.state = State::Registered { refresh_at };
        self.events.push_back(DeviceEvent::Registered {
            expires,
            date,
            findings,
        });
        self.keepalive_start(now);
    }

    fn redirected(&mut self, now: Now, msg: &SipMessage, code: u16) {
        if self.cfg.faults.ignore_redirect {
            return self.fail(now, DeviceEvent::Rejected { status: code });
        }
        let Some(target) = msg.headers.get("Contact").and_then(redirect_target) else {
            let reason = format!("{code} without a Contact sip:ID@IP:port");
            self.events.push_back(DeviceEvent::BadMessage { reason });
            return self.fail(now, DeviceEvent::Rejected { status: code });
        };
        let expires = msg
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse().ok());
        self.events.push_back(DeviceEvent::Redirected {
            server_id: target.id.to_string(),
            server: target.addr,
            expires,
        });
        self.server = target;
        self.new_call();
        self.send_register(now, false, None);
    }

    fn answer_challenge(&mut self, now: Now, msg: &SipMessage, code: u16, unregister: bool) {
        let hdr = if code == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let challenge = match msg.headers.get(hdr).map(Challenge::parse) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return self.fail(now, DeviceEvent::BadMessage { reason: e }),
            None => {
                return self.fail(
                    now,
                    DeviceEvent::BadMessage {
                        reason: format!("{code} without {hdr}"),
                    },
                )
            }
        };
        let password = if self.cfg.faults.wrong_digest {
            Cow::Owned(format!("{}-wrong", self.cfg.password))
        } else {
            Cow::Borrowed(&*self.cfg.password)
        };
        let uri = register_uri(&self.ids().1, self.server.addr);
        // Eight lower-case hex digits (`{:08x}` of a random u32).
        let mut cnonce = String::with_capacity(8);
        sip::push_hex(
            &mut cnonce,
            &rand::Rng::gen::<u32>(&mut self.rng).to_be_bytes(),
        );
        let creds = Credentials::answer(
            &challenge,
            &self.cfg.username,
            &password,
            "REGISTER",
            &uri,
            &cnonce,
        );
        self.send_register(now, unregister, Some(creds));
    }

    pub(super) fn registration_timeout(&mut self, now: Now) {
        let udp = self.udp();
        match &mut self.state {
            State::Pending { retx, .. } => match retx.poll(now.mono, udp) {
                super::txn::Due::GiveUp => self.fail(now, DeviceEvent::TimedOut),
                super::txn::Due::Resend(t) => self.transmits.push_back(t),
                super::txn::Due::Nothing => {}
            },
            State::Registered {
                refresh_at: Some(at),
            } if now.mono >= *at => self.send_register(now, false, None),
            State::WaitingRetry { at } | State::Booting { at } if now.mono >= *at => {
                self.send_register(now, false, None)
            }
            _ => {}
        }
    }
}

/// Server A from a 302 Contact `sip:<A's ID>@<IP>:<port>` (port 5060 when absent).
fn redirect_target(contact: &str) -> Option<Server> {
    let c = NameAddr::parse(contact)?;
    let id = c.uri.user.clone().filter(|u| !u.is_empty())?;
    let ip: IpAddr = c
        .uri
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(Server {
        id: id.into(),
        addr: SocketAddr::new(ip, c.uri.port.unwrap_or(5060)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_contacts() {
        let s = redirect_target("<sip:34020000002000000002@192.0.2.7:5080>").unwrap();
        assert_eq!(&*s.id, "34020000002000000002");
        assert_eq!(s.addr, "192.0.2.7:5080".parse().unwrap());
        let s = redirect_target("sip:34020000002000000002@192.0.2.7").unwrap();
        assert_eq!(s.addr.port(), 5060);
        assert!(redirect_target("<sip:192.0.2.7:5080>").is_none());
        assert!(redirect_target("<sip:x@example.com:5080>").is_none());
        assert!(redirect_target("garbage").is_none());
    }
}
