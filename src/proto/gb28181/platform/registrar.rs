//! REGISTER (§注册, §注销, §校时) and the 2022 register redirect (§注册重定向).

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use super::{Platform, PlatformEvent, Registration};
use crate::proto::gb28181::register::{
    format_date, host_port, parse_requested_expires, register_ids, Rejection,
};
use crate::proto::sip::digest::{Challenge, Credentials};
use crate::proto::sip::{self, SipMessage};
use crate::proto::Now;

/// Challenges outstanding per device: a device that lost a 401 and asked
/// again may answer either; an endless stream of unanswered requests does
/// not grow the table.
const MAX_NONCES_PER_DEVICE: usize = 4;

/// A challenge nonce and the REGISTER it was issued to.
#[derive(Debug, Clone)]
pub(super) struct IssuedNonce {
    nonce: String,
    from: SocketAddr,
    call_id: String,
}

/// What a digest response's nonce turned out to be.
enum NonceUse {
    /// Issued to this source and Call-ID, now retired.
    Fresh,
    /// Issued to another source or Call-ID.
    Elsewhere { from: SocketAddr, call_id: String },
    /// Never issued, or already used.
    Unknown,
}

impl Platform {
    fn reject(
        &mut self,
        from: SocketAddr,
        msg: &SipMessage,
        why: Rejection,
        device: Option<String>,
    ) {
        let tag = sip::new_tag(&mut self.rng);
        let mut r = sip::response_to(msg, why.status(), Some(&tag));
        if let Rejection::Malformed(m) = &why {
            // RFC 3261 §20.43: 399 is a miscellaneous warning; say what was wrong.
            let text = m.replace('\\', "\\\\").replace('"', "\\\"");
            r.headers.push("Warning", format!("399 camcert \"{text}\""));
        }
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        self.events.push_back(PlatformEvent::Rejected {
            device_id: device,
            status: why.status(),
            reason: why.describe(),
        });
        self.reply(from, r);
    }

    pub(super) fn handle_register(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        let ids = match register_ids(msg) {
            Ok(i) => i,
            Err(e) => return self.reject(from, msg, Rejection::Malformed(e), None),
        };
        let f = self.cfg.faults.clone();
        // The domain instead of the ID is read as meant unless `strict_sip`
        // (the findings were kept when the request arrived).
        let by_domain = !self.cfg.strict_sip
            && sip::quirks::is_domain_of(&ids.platform_id, &self.cfg.platform_id);
        if ids.platform_id != self.cfg.platform_id && !f.ignore_platform_id && !by_domain {
            return self.reject(
                from,
                msg,
                Rejection::WrongPlatformId {
                    got: ids.platform_id,
                },
                Some(ids.device_id),
            );
        }
        let password = match self.cfg.devices.get(&ids.device_id) {
            Some(p) => Some(p.clone()),
            None if f.accept_unknown_device => None,
            None => {
                let device_id = ids.device_id.clone();
                return self.reject(
                    from,
                    msg,
                    Rejection::UnknownDevice { device_id },
                    Some(ids.device_id),
                );
            }
        };
        // An Expires that is not a number is a malformed request, not a
        // request for the default: say which value was wrong.
        let requested = match parse_requested_expires(msg) {
            Ok(e) => e,
            Err(e) => return self.reject(from, msg, Rejection::Malformed(e), Some(ids.device_id)),
        };
        if !f.no_challenge {
            let creds = msg.headers.get("Authorization").map(Credentials::parse);
            let call_id = msg.headers.get("Call-ID").unwrap_or("").trim();
            // A nonce answers only the REGISTER it was issued to (source
            // address and Call-ID), and only once: a digest response copied
            // from elsewhere, or replayed, gets a fresh challenge.
            let issued = match &creds {
                Some(Ok(c)) => self.take_nonce(&ids.device_id, &c.nonce, from, call_id),
                _ => NonceUse::Unknown,
            };
            if let NonceUse::Elsewhere {
                from: was,
                call_id: was_call,
            } = &issued
            {
                self.events.push_back(PlatformEvent::Rejected {
                    device_id: Some(ids.device_id.clone()),
                    status: 401,
                    reason: format!(
                        "digest nonce issued to {was} (Call-ID {was_call:?}) replayed from {from} (Call-ID {call_id:?}); challenged afresh"
                    ),
                });
            }
            match (creds, issued) {
                (Some(Ok(c)), NonceUse::Fresh) => {
                    let ok = match &password {
                        Some(p) => c.verify(p, "REGISTER"),
                        None => true,
                    };
                    if !ok && !f.accept_wrong_password {
                        let device_id = ids.device_id.clone();
                        return self.reject(
                            from,
                            msg,
                            Rejection::BadCredentials { device_id },
                            Some(ids.device_id),
                        );
                    }
                }
                (Some(Err(e)), _) => {
                    return self.reject(
                        from,
                        msg,
                        Rejection::Malformed(format!("Authorization: {e}")),
                        Some(ids.device_id),
                    )
                }
                // No credentials, or credentials for a nonce we did not issue
                // (or no longer hold): challenge afresh.
                _ => return self.challenge(from, msg, &ids.device_id),
            }
        }
        let expires = requested.unwrap_or(3600).min(self.cfg.max_expires);
        let tag = sip::new_tag(&mut self.rng);
        if expires == 0 {
            if f.refuse_unregister {
                let r = sip::response_to(msg, 403, Some(&tag));
                return self.reply(from, r);
            }
            let was = self.registrations.remove(&ids.device_id).is_some();
            self.nonces.remove(&ids.device_id);
            let mut r = sip::response_to(msg, 200, Some(&tag));
            self.finish_ok(now, &mut r);
            r.headers.push("Expires", "0");
            self.events.push_back(PlatformEvent::Unregistered {
                device_id: ids.device_id.clone(),
            });
            self.reply(from, r);
            if was {
                self.device_gone(now, &ids.device_id);
            }
            return;
        }
        if let Some((server_id, server_addr)) = self.cfg.redirect_to.clone() {
            if !f.no_redirect {
                return self.redirect(from, msg, &ids.device_id, &server_id, server_addr, expires);
            }
        }
        let refresh = self.registrations.contains_key(&ids.device_id);
        let keepalive_deadline = now.mono
            + self.protocol(self.cfg.keepalive_interval * self.cfg.keepalive_timeout_count.max(1));
        let last_keepalive = self
            .registrations
            .get(&ids.device_id)
            .and_then(|r| r.last_keepalive);
        self.registrations.insert(
            ids.device_id.clone(),
            Registration {
                addr: from,
                expires_at: now.mono + self.protocol(Duration::from_secs(expires as u64)),
                contact: msg.headers.get("Contact").map(str::to_string),
                keepalive_deadline,
                last_keepalive,
            },
        );
        self.last_registered = Some(ids.device_id.clone());
        let mut r = sip::response_to(msg, 200, Some(&tag));
        if let Some(c) = msg.headers.get("Contact") {
            r.headers.push("Contact", c.to_string());
        }
        self.finish_ok(now, &mut r);
        r.headers.push("Expires", expires.to_string());
        self.events.push_back(PlatformEvent::Registered {
            device_id: ids.device_id.clone(),
            from,
            expires,
            refresh,
        });
        self.reply(from, r);
        if !refresh {
            self.notify_upstream_status(now, &ids.device_id, true);
        }
    }

    /// §重定向流程 4: "SIP重定向服务器验证请求，如检测SIP代理身份合法，...
    /// 回复注册请求响应302，响应消息携带Contact头域和Expires，Contact格式为
    /// sip:SIP服务器A编码@目的IP地址端口". The redirect server keeps no
    /// registration of its own.
    fn redirect(
        &mut self,
        from: SocketAddr,
        msg: &SipMessage,
        device_id: &str,
        server_id: &str,
        server: SocketAddr,
        expires: u32,
    ) {
        let tag = sip::new_tag(&mut self.rng);
        let mut r = sip::response_to(msg, 302, Some(&tag));
        let contact = format!("<sip:{server_id}@{}>", host_port(server));
        if !self.cfg.faults.redirect_no_contact {
            r.headers.push("Contact", contact.clone());
        }
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        r.headers.push("Expires", expires.to_string());
        self.nonces.remove(device_id);
        self.events.push_back(PlatformEvent::Redirected {
            device_id: device_id.to_string(),
            contact,
            expires,
        });
        self.reply(from, r);
    }

    fn finish_ok(&self, now: Now, r: &mut SipMessage) {
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        if !self.cfg.faults.no_date {
            r.headers.push("Date", format_date(now.wall));
        }
    }

    /// Look up and retire the nonce a digest response names.
    fn take_nonce(
        &mut self,
        device_id: &str,
        nonce: &str,
        from: SocketAddr,
        call_id: &str,
    ) -> NonceUse {
        let Some(list) = self.nonces.get_mut(device_id) else {
            return NonceUse::Unknown;
        };
        let Some(i) = list.iter().position(|n| n.nonce == nonce) else {
            return NonceUse::Unknown;
        };
        let n = &list[i];
        if n.from != from || n.call_id != call_id {
            // Left in place: the device it was issued to may still use it.
            return NonceUse::Elsewhere {
                from: n.from,
                call_id: n.call_id.clone(),
            };
        }
        list.remove(i);
        NonceUse::Fresh
    }

    fn challenge(&mut self, from: SocketAddr, msg: &SipMessage, device_id: &str) {
        let nonce = format!("{:032x}", self.rng.gen::<u128>());
        let opaque = format!("{:032x}", self.rng.gen::<u128>());
        let list = self.nonces.entry(device_id.to_string()).or_default();
        if list.len() >= MAX_NONCES_PER_DEVICE {
            list.remove(0);
        }
        list.push(IssuedNonce {
            nonce: nonce.clone(),
            from,
            call_id: msg.headers.get("Call-ID").unwrap_or("").trim().to_string(),
        });
        let ch = Challenge {
            realm: self.cfg.realm.clone(),
            nonce,
            opaque: Some(opaque),
            algorithm: self.cfg.algorithm,
            qop_auth: self.cfg.qop_auth,
        };
        let tag = sip::new_tag(&mut self.rng);
        let mut r = sip::response_to(msg, 401, Some(&tag));
        r.headers.push("WWW-Authenticate", ch.to_header());
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        self.reply(from, r);
    }
}
