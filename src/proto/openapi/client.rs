//! The TD's side of §6.1 as a sans-IO state machine: registration
//! (§5.1.1), capabilities (§5.1.3), the HEDGW address (§5.1.4, cached),
//! online settings (§5.1.5), then, once the driver has logged in to
//! HEDGW, the version report (§5.1.7).
//!
//! Drive it with `poll_request(now)` (the next request, credentials made
//! for the TD's own clock: `now` plus the offset it learnt from a 401's
//! `Date`), `handle_response(now, &response)`, and `poll_event()`. The
//! driver reports HEDGW connection results with `address_failed` and
//! `hedgw_connected`, and a reboot with `reboot`.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use super::msg::{self, Kind};
use super::wsse::{self, Credentials};
use super::{http, sign, FindingCode as C, WallTime, BATCH_PATH};
use crate::finding::Finding;

/// §5.1.4: "建议最多缓存 3 组 IP/端口".
pub const CACHE_MAX: usize = 3;
/// §5.1.4: "每组 IP/端口的有效期 12 小时".
pub const CACHE_VALID: chrono::Duration = chrono::Duration::hours(12);
/// Tries of one request refused with 401 before the TD gives up.
pub const MAX_TRIES: u32 = 3;

/// Faults of the reference TD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientFaults {
    /// Sign with `jsonObject` before `accessKey` (§5).
    pub wrong_signature_order: bool,
    /// Send `Created` 10 minutes old (§2.2).
    pub stale_created: bool,
    /// Send the same nonce every time (§2.2).
    pub reuse_nonce: bool,
    /// Ask for the HEDGW address every time (§5.1.4).
    pub ignore_address_cache: bool,
    /// Keep its clock after a 401's `Date` (§2.2).
    pub ignore_401_date: bool,
    /// Send no WSSE headers (§2.1).
    pub no_wsse: bool,
    /// Skip the capability report (§5.1.3).
    pub skip_capacity: bool,
    /// A wrong PasswordDigest (another password).
    pub bad_digest: bool,
}

impl ClientFaults {
    pub const NAMES: &'static [&'static str] = &[
        "wrong-signature-order",
        "stale-created",
        "reuse-nonce",
        "ignore-address-cache",
        "ignore-401-date",
        "no-wsse",
        "skip-capacity",
        "bad-digest",
    ];

    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "wrong-signature-order" => &mut self.wrong_signature_order,
            "stale-created" => &mut self.stale_created,
            "reuse-nonce" => &mut self.reuse_nonce,
            "ignore-address-cache" => &mut self.ignore_address_cache,
            "ignore-401-date" => &mut self.ignore_401_date,
            "no-wsse" => &mut self.no_wsse,
            "skip-capacity" => &mut self.skip_capacity,
            "bad-digest" => &mut self.bad_digest,
            _ => return false,
        };
        *f = true;
        true
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub access_key: String,
    pub access_secret: String,
    pub host: String,
    pub device_id: String,
    pub mac: String,
    pub model_id: String,
    pub user_mobile: String,
    pub user_token: String,
    pub hw: String,
    /// §5.1.1 FEATURE bits (fixed capabilities).
    pub feature: u32,
    /// §5.1.3 variable capabilities.
    pub support: msg::SupportKey,
    pub firmware_version: String,
    pub app_version: String,
    /// How far the TD's clock is from the truth at start.
    pub clock_skew: chrono::Duration,
    pub faults: ClientFaults,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            access_key: "5e2abe86-6aa".into(),
            access_secret: "ADtuchbM8TBPhQdSi8U4".into(),
            host: "openapi.camcert.test".into(),
            device_id: "110234567894562".into(),
            mac: "2059a074e0bc".into(),
            model_id: "Zhejiang_zj_cnmobile_001".into(),
            user_mobile: "13888888888".into(),
            user_token: "e10adc3949ba59abbe56e057f20f883e".into(),
            hw: "3RD-X01".into(),
            feature: 0x11,
            support: msg::SupportKey {
                duplex_audio_talk: 1,
                sdcard: 1,
                event_record: 1,
                ..Default::default()
            },
            firmware_version: "1.2.300".into(),
            app_version: "2.15.200".into(),
            clock_skew: chrono::Duration::zero(),
            faults: ClientFaults::default(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Registration answered with this token.
    Registered(String),
    /// Connect to HEDGW at one of these (cached, freshest first).
    Hedgw(Vec<(String, u16)>),
    /// §5.1.5's settings.
    Settings(Map<String, Value>),
    /// The flow finished (version reported).
    Done,
    /// A request was refused; the flow stopped.
    Failed(String),
    /// A rule the platform broke in an answer.
    Finding(Finding),
    /// Sent by the driver, not the machine: the TD logged in to HEDGW at
    /// this address.
    HedgwLoggedIn(String, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Register,
    Capacity,
    Address,
    Settings,
    /// Waiting for the driver's HEDGW login.
    Login,
    Info,
    Idle,
}

/// A cached HEDGW address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub host: String,
    pub port: u16,
    pub at: WallTime,
    pub failed: bool,
}

/// The TD.
#[derive(Debug)]
pub struct Client {
    pub cfg: ClientConfig,
    step: Step,
    token: Option<String>,
    /// The TD's clock minus the true time.
    offset: chrono::Duration,
    cache: Vec<Cached>,
    inflight: Option<(Kind, u32)>,
    nonce_seq: u64,
    events: VecDeque<ClientEvent>,
    /// Randomness for nonces, from the driver.
    seed: u64,
}

impl Client {
    pub fn new(cfg: ClientConfig, seed: u64) -> Client {
        Client {
            offset: cfg.clock_skew,
            cfg,
            step: Step::Register,
            token: None,
            cache: Vec::new(),
            inflight: None,
            nonce_seq: 0,
            events: VecDeque::new(),
            seed,
        }
    }

    /// Take a token registration returned elsewhere (a driver that sends
    /// the registration itself).
    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// The token registration returned.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The cached HEDGW addresses.
    pub fn cache(&self) -> &[Cached] {
        &self.cache
    }

    /// A restart: the flow starts again from the settings (registered TDs
    /// do not register again), keeping the address cache.
    pub fn reboot(&mut self) {
        self.inflight = None;
        self.step = if self.token.is_some() {
            Step::Address
        } else {
            Step::Register
        };
    }

    /// The driver could not connect to `host:port`.
    pub fn address_failed(&mut self, host: &str, port: u16) {
        for c in &mut self.cache {
            if c.host == host && c.port == port {
                c.failed = true;
            }
        }
        if self.step == Step::Login {
            self.step = Step::Address;
        }
    }

    /// The driver logged in to HEDGW: report the version next.
    pub fn hedgw_connected(&mut self) {
        if self.step == Step::Login {
            self.step = Step::Info;
        }
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn valid_cache(&self, now: WallTime) -> Vec<(String, u16)> {
        let mut v: Vec<&Cached> = self
            .cache
            .iter()
            .filter(|c| !c.failed && now.signed_duration_since(c.at) < CACHE_VALID)
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.at));
        v.into_iter().map(|c| (c.host.clone(), c.port)).collect()
    }

    fn nonce(&mut self) -> String {
        if !self.cfg.faults.reuse_nonce {
            self.nonce_seq += 1;
        }
        // SplitMix64 over the seed: distinct nonces without a clock.
        let mut x = self
            .seed
            .wrapping_add(self.nonce_seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut out = [0u8; wsse::NONCE_LEN];
        for chunk in out.chunks_mut(8) {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        wsse::nonce_from(out)
    }

    /// The JSON of a request of `kind`.
    pub fn body(&self, kind: Kind) -> Value {
        let c = &self.cfg;
        let token = self.token.clone().unwrap_or_default();
        let base = json!({
            "msgType": kind.req(),
            "deviceMacAddress": c.mac,
            "deviceId": c.device_id,
        });
        let mut o = base.as_object().cloned().unwrap_or_default();
        let mut add = |k: &str, v: Value| {
            o.insert(k.into(), v);
        };
        match kind {
            Kind::AddCamera => {
                add("userMobile", json!(c.user_mobile));
                add("userToken", json!(c.user_token));
                add("deviceModelId", json!(c.model_id));
                add("comment", json!(msg::comment(&c.hw, c.feature)));
                add("registMode", json!("0"));
            }
            Kind::BindInfo => {}
            Kind::SetCapacity => {
                add("deviceToken", json!(token));
                add(
                    "supportKey",
                    serde_json::to_value(c.support).unwrap_or_default(),
                );
            }
            Kind::GetChnAddr | Kind::GetSettings => add("deviceToken", json!(token)),
            Kind::SetSettings => {
                add("deviceToken", json!(token));
                add("camParam", json!({"status": "On", "sdcardStatus": 3}));
            }
            Kind::SetInfo => {
                add("deviceModelId", json!(c.model_id));
                add("firmwareVersion", json!(c.firmware_version));
                add("cameraAppVersion", json!(c.app_version));
                add("deviceToken", json!(token));
            }
        }
        Value::Object(o)
    }

    /// A complete request of `kind` at true time `now`: WSSE for the TD's
    /// clock, signed form body.
    pub fn build(&mut self, now: WallTime, kind: Kind) -> http::Request {
        let json = serde_json::to_string(&self.body(kind)).unwrap_or_default();
        let c = self.cfg.clone();
        let mut form = sign::Form::signed(&c.access_secret, &c.access_key, &json);
        if c.faults.wrong_signature_order {
            form.signature = sign::signature_wrong_order(&c.access_secret, &c.access_key, &json);
        }
        let mut r = http::Request::post(
            BATCH_PATH,
            &c.host,
            "application/x-www-form-urlencoded",
            form.encode().into_bytes(),
        );
        if !c.faults.no_wsse {
            let mut created = now + self.offset;
            if c.faults.stale_created {
                created -= chrono::Duration::minutes(10);
            }
            let password = if c.faults.bad_digest {
                "not-the-secret"
            } else {
                c.access_secret.as_str()
            };
            let nonce = self.nonce();
            let username = format!("{}-{}", c.access_key, c.device_id);
            Credentials::new(&username, password, &nonce, created).apply(&mut r);
        }
        r
    }

    /// The next request to send, if any.
    pub fn poll_request(&mut self, now: WallTime) -> Option<http::Request> {
        if self.inflight.is_some() {
            return None;
        }
        let kind = loop {
            match self.step {
                Step::Register => break Kind::AddCamera,
                Step::Capacity => break Kind::SetCapacity,
                Step::Address => {
                    let cached = self.valid_cache(now);
                    if !cached.is_empty() && !self.cfg.faults.ignore_address_cache {
                        self.events.push_back(ClientEvent::Hedgw(cached));
                        self.step = Step::Settings;
                        continue;
                    }
                    break Kind::GetChnAddr;
                }
                Step::Settings => break Kind::GetSettings,
                Step::Info => break Kind::SetInfo,
                Step::Login | Step::Idle => return None,
            }
        };
        self.inflight = Some((kind, 1));
        Some(self.build(now, kind))
    }

    /// Take the answer to the request in flight.
    pub fn handle_response(&mut self, now: WallTime, r: &http::Response) -> Option<http::Request> {
        let (kind, tries) = self.inflight.take()?;
        if r.status == 401 {
            let (date, f) = wsse::check_unauthorized(r);
            for x in f {
                self.events.push_back(ClientEvent::Finding(x));
            }
            // §2.2: take the platform's time from Date.
            if let (Some(d), false) = (date, self.cfg.faults.ignore_401_date) {
                self.offset = d.signed_duration_since(now);
            }
            if tries >= MAX_TRIES {
                self.events.push_back(ClientEvent::Failed(format!(
                    "{}: 401 {} times",
                    kind.req(),
                    tries
                )));
                self.step = Step::Idle;
                return None;
            }
            self.inflight = Some((kind, tries + 1));
            return Some(self.build(now, kind));
        }
        if r.status != 200 {
            self.events.push_back(ClientEvent::Failed(format!(
                "{}: HTTP {}",
                kind.req(),
                r.status
            )));
            self.step = Step::Idle;
            return None;
        }
        let d = msg::decode(&r.body, true);
        for x in &d.findings {
            self.events.push_back(ClientEvent::Finding(x.clone()));
        }
        if let Some((k, true)) = d.kind {
            if k != kind {
                self.events
                    .push_back(ClientEvent::Finding(C::MsgTypeMismatch.finding(
                        kind.clause(),
                        format!("msgType: expected {}, got {}", kind.rsp(), k.rsp()),
                    )));
            }
        }
        if d.error_code() != Some(0) {
            self.events.push_back(ClientEvent::Failed(format!(
                "{}: errorCode {}",
                kind.req(),
                d.field("errorCode").unwrap_or_default()
            )));
            self.step = Step::Idle;
            return None;
        }
        match kind {
            Kind::AddCamera => {
                let t = d.field("deviceToken").unwrap_or_default();
                self.token = Some(t.clone());
                self.events.push_back(ClientEvent::Registered(t));
                self.step = if self.cfg.faults.skip_capacity {
                    Step::Address
                } else {
                    Step::Capacity
                };
            }
            Kind::SetCapacity => self.step = Step::Address,
            Kind::GetChnAddr => {
                let host = d.field("serverAddr").unwrap_or_default();
                let port = d
                    .field("serverPort")
                    .and_then(|p| p.trim().parse::<u16>().ok());
                let Some(port) = port else {
                    self.events
                        .push_back(ClientEvent::Failed("serverPort unreadable".into()));
                    self.step = Step::Idle;
                    return None;
                };
                self.cache.retain(|c| !(c.host == host && c.port == port));
                self.cache.push(Cached {
                    host,
                    port,
                    at: now,
                    failed: false,
                });
                if self.cache.len() > CACHE_MAX {
                    self.cache.remove(0);
                }
                self.events
                    .push_back(ClientEvent::Hedgw(self.valid_cache(now)));
                self.step = Step::Settings;
            }
            Kind::GetSettings => {
                let s = d
                    .json
                    .as_ref()
                    .and_then(|j| j.get("camRW"))
                    .and_then(|v| v.as_object())
                    .cloned()
                    .unwrap_or_default();
                self.events.push_back(ClientEvent::Settings(s));
                self.step = Step::Login;
            }
            Kind::SetInfo => {
                self.events.push_back(ClientEvent::Done);
                self.step = Step::Idle;
            }
            Kind::BindInfo | Kind::SetSettings => {}
        }
        None
    }
}
