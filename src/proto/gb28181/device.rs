//! A GB/T 28181 device (camera) as a sans-IO state machine: registration,
//! digest answer, refresh before expiry, unregistration, and the retry rule
//! of spec §注册 ("若注册失败，应在不短于60s的时间间隔内重新发起注册").
//!
//! Drive it like this: call [`Device::start`], then loop — send everything
//! [`Device::poll_transmit`] returns, feed received messages to
//! [`Device::handle_message`], and call [`Device::handle_timeout`] when the
//! instant from [`Device::poll_timeout`] has passed. [`Device::poll_event`]
//! says what happened. The same machine is the reference camera, the
//! simulated camera of a load run, and the device camcert plays against a
//! platform.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::register::{build_register, parse_date, RegisterParams};
use crate::proto::sip::digest::{Challenge, Credentials};
use crate::proto::sip::{self, Finding, SipMessage};
use crate::proto::{scaled, Now, Transmit, Transport};

/// Deliberate misbehaviour, so a test can show each platform-side check failing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceFaults {
    /// Answer the challenge with a digest over the wrong password.
    pub wrong_digest: bool,
    /// Put a different device ID in From/To.
    pub wrong_device_id: bool,
    /// Register to a different platform ID in the Request-URI.
    pub wrong_platform_id: bool,
    /// Never refresh the registration.
    pub no_refresh: bool,
    /// Retry a failed registration after 1 s instead of the configured interval.
    pub fast_retry: bool,
    /// Ignore a request to unregister.
    pub no_unregister: bool,
    /// Send a garbage datagram instead of the first REGISTER.
    pub garbage: bool,
    /// Send the first REGISTER with a Content-Length larger than its body.
    pub truncated: bool,
    /// Send the first REGISTER with bytes after the declared body.
    pub overlong_body: bool,
}

impl DeviceFaults {
    /// Names accepted by [`DeviceFaults::set`], for `--peer-fault`.
    pub const NAMES: &'static [&'static str] = &[
        "wrong-digest",
        "wrong-device-id",
        "wrong-platform-id",
        "no-refresh",
        "fast-retry",
        "no-unregister",
        "garbage",
        "truncated",
        "overlong-body",
    ];
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "wrong-digest" => &mut self.wrong_digest,
            "wrong-device-id" => &mut self.wrong_device_id,
            "wrong-platform-id" => &mut self.wrong_platform_id,
            "no-refresh" => &mut self.no_refresh,
            "fast-retry" => &mut self.fast_retry,
            "no-unregister" => &mut self.no_unregister,
            "garbage" => &mut self.garbage,
            "truncated" => &mut self.truncated,
            "overlong-body" => &mut self.overlong_body,
            _ => return false,
        };
        *f = true;
        true
    }
}

#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub device_id: String,
    pub platform_id: String,
    /// SIP domain for From/To; defaults to the platform ID's first 10 digits.
    pub domain: String,
    /// Digest username; GB devices commonly use their device ID.
    pub username: String,
    pub password: String,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
    /// Registration expiry requested, in seconds.
    pub expires: u32,
    /// Refresh when this fraction of the granted expiry has passed.
    pub refresh_ratio: f64,
    /// Wait after a failed registration (spec: not shorter than 60 s).
    pub retry_interval: Duration,
    /// Protocol-to-driver time factor; 1.0 in the field, e.g. 0.01 in suites.
    pub time_scale: f64,
    pub user_agent: String,
    pub faults: DeviceFaults,
    pub seed: u64,
}

impl DeviceConfig {
    pub fn new(
        device_id: &str,
        platform_id: &str,
        password: &str,
        local: SocketAddr,
        server: SocketAddr,
    ) -> Self {
        DeviceConfig {
            device_id: device_id.into(),
            platform_id: platform_id.into(),
            domain: platform_id.get(..10).unwrap_or(platform_id).into(),
            username: device_id.into(),
            password: password.into(),
            local,
            server,
            transport: Transport::Udp,
            expires: 3600,
            refresh_ratio: 0.5,
            retry_interval: Duration::from_secs(60),
            time_scale: 1.0,
            user_agent: "camcert reference camera".into(),
            faults: DeviceFaults::default(),
            seed: 1,
        }
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{key}: {v:?} is not a number"))
}

impl DeviceConfig {
    /// Set one option by name (suite `peer:` settings). Keys: `expires`,
    /// `refresh_ratio`, `retry_interval` (seconds), `username`,
    /// `user_agent`, `fault` (a fault name, see [`DeviceFaults::NAMES`]).
    pub fn apply_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "expires" => self.expires = parse_num(key, value)?,
            "refresh_ratio" => self.refresh_ratio = parse_num(key, value)?,
            "retry_interval" => {
                self.retry_interval = Duration::from_secs_f64(parse_num(key, value)?)
            }
            "username" => self.username = value.to_string(),
            "user_agent" => self.user_agent = value.to_string(),
            "fault" => {
                if !self.faults.set(value) {
                    return Err(format!("unknown fault {value:?}"));
                }
            }
            _ => return Err(format!("unknown setting {key:?} for the reference camera")),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEvent {
    /// The platform accepted the registration.
    Registered {
        expires: u32,
        /// The platform's `Date:` (time sync), if it sent one.
        date: Option<String>,
        findings: Vec<Finding>,
    },
    Unregistered,
    /// The platform refused (final status other than 401/2xx).
    Rejected {
        status: u16,
    },
    /// No final answer arrived (RFC 3261 Timer F).
    TimedOut,
    /// A message from the platform could not be used.
    BadMessage {
        reason: String,
    },
}

/// RFC 3261 §17.1.2.2 non-INVITE client transaction timers over UDP.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_F: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    /// A REGISTER is outstanding.
    Pending {
        unregister: bool,
        authed: bool,
        sent: Vec<u8>,
        branch: String,
        cseq: u32,
        retransmit_at: Instant,
        interval: Duration,
        give_up_at: Instant,
    },
    Registered {
        refresh_at: Option<Instant>,
    },
    WaitingRetry {
        at: Instant,
    },
    Unregistered,
}

pub struct Device {
    cfg: DeviceConfig,
    state: State,
    call_id: String,
    from_tag: String,
    cseq: u32,
    rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DeviceEvent>,
    first_sent: bool,
}

impl Device {
    pub fn new(cfg: DeviceConfig) -> Device {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        // RFC 3261 §10.2.4: one Call-ID for all registrations of a boot cycle.
        let call_id = sip::new_call_id(&mut rng);
        let from_tag = sip::new_tag(&mut rng);
        Device {
            cfg,
            state: State::Idle,
            call_id,
            from_tag,
            cseq: 0,
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            first_sent: false,
        }
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Begin registering.
    pub fn start(&mut self, now: Now) {
        self.send_register(now, false, None);
    }

    /// Carry out a named action (suite `trigger` steps): `register`,
    /// `unregister`, `restart`.
    pub fn trigger(
        &mut self,
        now: Now,
        action: &str,
        _args: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        match action {
            "register" | "restart" => self.start(now),
            "unregister" => self.unregister(now),
            other => {
                return Err(format!(
                    "unknown action {other:?} (register, unregister, restart)"
                ))
            }
        }
        Ok(())
    }

    /// Unregister (`Expires: 0`, spec §注销).
    pub fn unregister(&mut self, now: Now) {
        if self.cfg.faults.no_unregister {
            return;
        }
        self.send_register(now, true, None);
    }

    fn ids(&self) -> (String, String) {
        let dev = if self.cfg.faults.wrong_device_id {
            // Same shape, different serial: a device that reports the wrong identity.
            let mut d = self.cfg.device_id.clone();
            d.replace_range(14.min(d.len()).., "999999");
            d
        } else {
            self.cfg.device_id.clone()
        };
        let plat = if self.cfg.faults.wrong_platform_id {
            let mut p = self.cfg.platform_id.clone();
            p.replace_range(14.min(p.len()).., "999999");
            p
        } else {
            self.cfg.platform_id.clone()
        };
        (dev, plat)
    }

    fn send_register(&mut self, now: Now, unregister: bool, auth: Option<Credentials>) {
        self.cseq += 1;
        let branch = sip::new_branch(&mut self.rng);
        let (device_id, platform_id) = self.ids();
        let msg = build_register(&RegisterParams {
            device_id: &device_id,
            platform_id: &platform_id,
            domain: &self.cfg.domain,
            local: self.cfg.local,
            server: self.cfg.server,
            transport: self.cfg.transport,
            call_id: &self.call_id,
            from_tag: &self.from_tag,
            branch: &branch,
            cseq: self.cseq,
            expires: if unregister { 0 } else { self.cfg.expires },
            authorization: auth.as_ref(),
            user_agent: &self.cfg.user_agent,
        });
        let mut bytes = msg.to_bytes();
        if !self.first_sent {
            self.first_sent = true;
            let f = &self.cfg.faults;
            if f.garbage {
                bytes = b"\x00\x01\x02garbage\xff\xfe not SIP at all".to_vec();
            } else if f.truncated {
                let mut m = msg.clone();
                m.headers.set("Content-Length", "120");
                bytes = m.to_bytes();
            } else if f.overlong_body {
                bytes.extend_from_slice(b"EXTRA-BYTES-BEYOND-CONTENT-LENGTH");
            }
        }
        self.transmits.push_back(Transmit {
            to: self.cfg.server,
            bytes: bytes.clone(),
        });
        self.state = State::Pending {
            unregister,
            authed: auth.is_some(),
            sent: bytes,
            branch,
            cseq: self.cseq,
            retransmit_at: now.mono + T1,
            interval: T1,
            give_up_at: now.mono + TIMER_F,
        };
    }

    fn fail(&mut self, now: Now, event: DeviceEvent) {
        self.events.push_back(event);
        let wait = if self.cfg.faults.fast_retry {
            Duration::from_secs(1)
        } else {
            self.cfg.retry_interval
        };
        self.state = State::WaitingRetry {
            at: now.mono + scaled(wait, self.cfg.time_scale),
        };
    }

    /// Feed a message received from the platform.
    pub fn handle_message(&mut self, now: Now, msg: &SipMessage) {
        let State::Pending {
            unregister,
            authed,
            cseq,
            ref branch,
            ..
        } = self.state
        else {
            return;
        };
        let Some(code) = msg.status() else {
            return; // requests to the device are outside registration
        };
        // Match the response to the transaction (RFC 3261 §17.1.3).
        let branch_ok = msg
            .headers
            .get("Via")
            .and_then(sip::Via::parse)
            .and_then(|v| v.branch().map(|b| b == branch))
            .unwrap_or(false);
        if !branch_ok || msg.cseq().map(|c| c.seq) != Some(cseq) {
            return;
        }
        match code {
            100..=199 => {}
            200..=299 => {
                if unregister {
                    self.state = State::Unregistered;
                    self.events.push_back(DeviceEvent::Unregistered);
                    return;
                }
                let expires = msg
                    .headers
                    .get("Expires")
                    .and_then(|e| e.trim().parse().ok())
                    .unwrap_or(self.cfg.expires);
                let mut findings = Vec::new();
                let date = msg.headers.get("Date").map(str::to_string);
                if let Some(d) = &date {
                    match parse_date(d) {
                        Ok((_, f)) => findings.extend(f),
                        Err(e) => findings.push(Finding {
                            code: "gb.date-format",
                            message: e,
                            clause: "GB/T 28181 §校时",
                        }),
                    }
                }
                let refresh_at = (!self.cfg.faults.no_refresh).then(|| {
                    now.mono
                        + scaled(
                            Duration::from_secs_f64(expires as f64 * self.cfg.refresh_ratio),
                            self.cfg.time_scale,
                        )
                });
                self.state = State::Registered { refresh_at };
                self.events.push_back(DeviceEvent::Registered {
                    expires,
                    date,
                    findings,
                });
            }
            401 | 407 if !authed => {
                let hdr = if code == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let challenge = match msg.headers.get(hdr).map(Challenge::parse) {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => {
                        return self.fail(now, DeviceEvent::BadMessage { reason: e });
                    }
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
                    format!("{}-wrong", self.cfg.password)
                } else {
                    self.cfg.password.clone()
                };
                let (_, platform_id) = self.ids();
                let uri = super::register::register_uri(&platform_id, self.cfg.server);
                let cnonce = format!("{:08x}", rand::Rng::gen::<u32>(&mut self.rng));
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
            _ => self.fail(now, DeviceEvent::Rejected { status: code }),
        }
    }

    /// Call when the instant from [`Device::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Now) {
        match &mut self.state {
            State::Pending {
                sent,
                retransmit_at,
                interval,
                give_up_at,
                ..
            } => {
                if now.mono >= *give_up_at {
                    self.fail(now, DeviceEvent::TimedOut);
                } else if now.mono >= *retransmit_at && self.cfg.transport == Transport::Udp {
                    // Timer E: retransmit, doubling up to T2.
                    self.transmits.push_back(Transmit {
                        to: self.cfg.server,
                        bytes: sent.clone(),
                    });
                    *interval = (*interval * 2).min(T2);
                    *retransmit_at = now.mono + *interval;
                }
            }
            State::Registered {
                refresh_at: Some(at),
            } if now.mono >= *at => self.send_register(now, false, None),
            State::WaitingRetry { at } if now.mono >= *at => self.send_register(now, false, None),
            _ => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Pending {
                retransmit_at,
                give_up_at,
                ..
            } => Some(if self.cfg.transport == Transport::Udp {
                (*retransmit_at).min(*give_up_at)
            } else {
                *give_up_at
            }),
            State::Registered { refresh_at } => *refresh_at,
            State::WaitingRetry { at } => Some(*at),
            State::Idle | State::Unregistered => None,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }
}
