//! A GB/T 28181 platform (SIP server, registrar side) as a sans-IO state
//! machine: challenges REGISTER with digest, checks the platform ID in the
//! Request-URI and the device ID against the provisioned list (spec §注册),
//! answers 200 with `Date:` for time sync (§校时), tracks expiry, and handles
//! unregistration (`Expires: 0`, §注销).
//!
//! Feed each received message with its source to [`Platform::handle_message`];
//! send what [`Platform::poll_transmit`] returns; call
//! [`Platform::handle_timeout`] at [`Platform::poll_timeout`]. This is the
//! reference platform and the platform camcert plays against a camera.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::register::{format_date, register_ids, requested_expires, Rejection};
use crate::proto::sip::digest::{Algorithm, Challenge, Credentials};
use crate::proto::sip::{self, SipMessage};
use crate::proto::{scaled, Now, Transmit};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformFaults {
    /// Accept REGISTER without asking for credentials.
    pub no_challenge: bool,
    /// Accept a digest computed over any password.
    pub accept_wrong_password: bool,
    /// Accept devices that are not provisioned.
    pub accept_unknown_device: bool,
    /// Accept a Request-URI naming another platform.
    pub ignore_platform_id: bool,
    /// Leave `Date:` out of the final 200.
    pub no_date: bool,
    /// Answer unregistration with 403.
    pub refuse_unregister: bool,
    /// Answer the first REGISTER with a garbage datagram.
    pub garbage: bool,
}

impl PlatformFaults {
    pub const NAMES: &'static [&'static str] = &[
        "no-challenge",
        "accept-wrong-password",
        "accept-unknown-device",
        "ignore-platform-id",
        "no-date",
        "refuse-unregister",
        "garbage",
    ];
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "no-challenge" => &mut self.no_challenge,
            "accept-wrong-password" => &mut self.accept_wrong_password,
            "accept-unknown-device" => &mut self.accept_unknown_device,
            "ignore-platform-id" => &mut self.ignore_platform_id,
            "no-date" => &mut self.no_date,
            "refuse-unregister" => &mut self.refuse_unregister,
            "garbage" => &mut self.garbage,
            _ => return false,
        };
        *f = true;
        true
    }
}

#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub platform_id: String,
    /// Digest realm; GB platforms use their 10-digit domain.
    pub realm: String,
    /// Provisioned devices and their passwords.
    pub devices: HashMap<String, String>,
    pub algorithm: Algorithm,
    pub qop_auth: bool,
    /// Largest expiry granted; a longer request is shortened to this.
    pub max_expires: u32,
    pub time_scale: f64,
    pub user_agent: String,
    pub faults: PlatformFaults,
    pub seed: u64,
}

impl PlatformConfig {
    pub fn new(platform_id: &str) -> Self {
        PlatformConfig {
            platform_id: platform_id.into(),
            realm: platform_id.get(..10).unwrap_or(platform_id).into(),
            devices: HashMap::new(),
            algorithm: Algorithm::Md5,
            qop_auth: false,
            max_expires: 86400,
            time_scale: 1.0,
            user_agent: "camcert reference platform".into(),
            faults: PlatformFaults::default(),
            seed: 2,
        }
    }
}

impl PlatformConfig {
    /// Set one option by name (suite `peer:` settings). Keys: `realm`,
    /// `algorithm` (`MD5`/`SHA-256`), `qop` (`true`/`false`), `max_expires`,
    /// `user_agent`, `fault` (see [`PlatformFaults::NAMES`]).
    pub fn apply_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "realm" => self.realm = value.to_string(),
            "algorithm" => {
                self.algorithm = Algorithm::from_param(Some(value))
                    .ok_or_else(|| format!("unknown algorithm {value:?}"))?
            }
            "qop" => self.qop_auth = value.trim() == "true",
            "max_expires" => {
                self.max_expires = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{value:?} is not a number"))?
            }
            "user_agent" => self.user_agent = value.to_string(),
            "fault" => {
                if !self.faults.set(value) {
                    return Err(format!("unknown fault {value:?}"));
                }
            }
            _ => {
                return Err(format!(
                    "unknown setting {key:?} for the reference platform"
                ))
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformEvent {
    Registered {
        device_id: String,
        from: SocketAddr,
        expires: u32,
        refresh: bool,
    },
    Unregistered {
        device_id: String,
    },
    Expired {
        device_id: String,
    },
    Rejected {
        device_id: Option<String>,
        status: u16,
        reason: String,
    },
    /// The message was not a request this machine understands.
    Ignored {
        from: SocketAddr,
        summary: String,
    },
}

#[derive(Debug, Clone)]
pub struct Registration {
    pub addr: SocketAddr,
    pub expires_at: Instant,
}

pub struct Platform {
    cfg: PlatformConfig,
    /// Nonces issued, by device ID.
    nonces: HashMap<String, String>,
    registrations: HashMap<String, Registration>,
    rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PlatformEvent>,
    answered_garbage: bool,
}

impl Platform {
    pub fn new(cfg: PlatformConfig) -> Platform {
        let rng = StdRng::seed_from_u64(cfg.seed);
        Platform {
            cfg,
            nonces: HashMap::new(),
            registrations: HashMap::new(),
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            answered_garbage: false,
        }
    }

    pub fn config(&self) -> &PlatformConfig {
        &self.cfg
    }

    pub fn registration(&self, device_id: &str) -> Option<&Registration> {
        self.registrations.get(device_id)
    }

    pub fn registered_count(&self) -> usize {
        self.registrations.len()
    }

    fn reply(&mut self, to: SocketAddr, msg: SipMessage) {
        let mut bytes = msg.with_content_length().to_bytes();
        if self.cfg.faults.garbage && !self.answered_garbage {
            self.answered_garbage = true;
            bytes = b"\x16\x03\x01 garbage from a broken platform \x00\xff".to_vec();
        }
        self.transmits.push_back(Transmit { to, bytes });
    }

    pub fn handle_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        match msg.method() {
            Some("REGISTER") => self.handle_register(now, from, msg),
            Some("ACK") | None => {}
            Some(other) => {
                self.events.push_back(PlatformEvent::Ignored {
                    from,
                    summary: msg.summary(),
                });
                let tag = sip::new_tag(&mut self.rng);
                let r = sip::response_to(msg, 501, Some(&tag));
                let _ = other;
                self.reply(from, r);
            }
        }
    }

    fn reject(
        &mut self,
        from: SocketAddr,
        msg: &SipMessage,
        why: Rejection,
        device: Option<String>,
    ) {
        let tag = sip::new_tag(&mut self.rng);
        let mut r = sip::response_to(msg, why.status(), Some(&tag));
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        self.events.push_back(PlatformEvent::Rejected {
            device_id: device,
            status: why.status(),
            reason: why.describe(),
        });
        self.reply(from, r);
    }

    fn handle_register(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
        let ids = match register_ids(msg) {
            Ok(i) => i,
            Err(e) => return self.reject(from, msg, Rejection::Malformed(e), None),
        };
        let f = self.cfg.faults.clone();
        if ids.platform_id != self.cfg.platform_id && !f.ignore_platform_id {
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
        if !f.no_challenge {
            let creds = msg.headers.get("Authorization").map(Credentials::parse);
            let issued = self.nonces.get(&ids.device_id).cloned();
            match (creds, issued) {
                (Some(Ok(c)), Some(nonce)) if c.nonce == nonce => {
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
        let expires = requested_expires(msg)
            .unwrap_or(3600)
            .min(self.cfg.max_expires);
        let tag = sip::new_tag(&mut self.rng);
        if expires == 0 {
            if f.refuse_unregister {
                let r = sip::response_to(msg, 403, Some(&tag));
                return self.reply(from, r);
            }
            self.registrations.remove(&ids.device_id);
            self.nonces.remove(&ids.device_id);
            let mut r = sip::response_to(msg, 200, Some(&tag));
            self.finish_ok(now, &mut r);
            r.headers.push("Expires", "0");
            self.events.push_back(PlatformEvent::Unregistered {
                device_id: ids.device_id,
            });
            return self.reply(from, r);
        }
        let refresh = self.registrations.contains_key(&ids.device_id);
        self.registrations.insert(
            ids.device_id.clone(),
            Registration {
                addr: from,
                expires_at: now.mono
                    + scaled(Duration::from_secs(expires as u64), self.cfg.time_scale),
            },
        );
        let mut r = sip::response_to(msg, 200, Some(&tag));
        if let Some(c) = msg.headers.get("Contact") {
            r.headers.push("Contact", c.to_string());
        }
        self.finish_ok(now, &mut r);
        r.headers.push("Expires", expires.to_string());
        self.events.push_back(PlatformEvent::Registered {
            device_id: ids.device_id,
            from,
            expires,
            refresh,
        });
        self.reply(from, r);
    }

    fn finish_ok(&self, now: Now, r: &mut SipMessage) {
        r.headers.push("User-Agent", self.cfg.user_agent.clone());
        if !self.cfg.faults.no_date {
            r.headers.push("Date", format_date(now.wall));
        }
    }

    fn challenge(&mut self, from: SocketAddr, msg: &SipMessage, device_id: &str) {
        let nonce = format!("{:032x}", self.rng.gen::<u128>());
        let opaque = format!("{:032x}", self.rng.gen::<u128>());
        self.nonces.insert(device_id.to_string(), nonce.clone());
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

    /// Carry out a named action (suite `trigger` steps). The registrar
    /// alone has none; later behaviours add theirs here.
    pub fn trigger(
        &mut self,
        _now: Now,
        action: &str,
        _args: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        Err(format!("unknown action {action:?}"))
    }

    pub fn handle_timeout(&mut self, now: Now) {
        let expired: Vec<String> = self
            .registrations
            .iter()
            .filter(|(_, r)| r.expires_at <= now.mono)
            .map(|(d, _)| d.clone())
            .collect();
        for d in expired {
            self.registrations.remove(&d);
            self.events
                .push_back(PlatformEvent::Expired { device_id: d });
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.registrations.values().map(|r| r.expires_at).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<PlatformEvent> {
        self.events.pop_front()
    }
}
