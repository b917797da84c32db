//! The OpenAPI platform as a sans-IO state machine: one request in with
//! the platform's wall time, one response out, and what it found.
//!
//! Besides answering, the server judges the TD it talks to (camcert as
//! the platform testing a device): the credentials (§2.1), the clock
//! (§2.2), the signature (§5), every field (§5.1), the order of the flow
//! (§6.1), whether it re-fetches a HEDGW address it should have cached
//! (§5.1.4), and whether it moved its clock after a 401 (§2.2).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::msg::{self, Kind, Rsp, RspBody};
use super::wsse::{self, Guard, Leniency};
use super::{clause, errors, http, rfc3339, sign, FindingCode as C, WallTime, BATCH_PATH};
use crate::finding::Finding;

/// Faults of the reference server, each breaking one rule on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerFaults {
    /// Take a `Created` outside the 5-minute window (§2.2).
    pub accept_stale_created: bool,
    /// Take a nonce seen before (§2.2).
    pub accept_reused_nonce: bool,
    /// Answer 401 without `Date` (§2.1).
    pub no_date_on_401: bool,
    /// Write the 401's `Date` as an HTTP-date, not RFC 3339.
    pub http_date_on_401: bool,
    /// Answer a bad signature as if it were good (§5).
    pub accept_bad_signature: bool,
    /// Answer with the request's `msgType` instead of its `_RSP`.
    pub echo_msg_type: bool,
    /// Answer a JSON parse error with errorCode 0.
    pub ok_on_bad_json: bool,
}

impl ServerFaults {
    pub const NAMES: &'static [&'static str] = &[
        "accept-stale-created",
        "accept-reused-nonce",
        "no-date-on-401",
        "http-date-on-401",
        "accept-bad-signature",
        "echo-msg-type",
        "ok-on-bad-json",
    ];

    /// Switch on the fault `name`; `false` if there is none.
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "accept-stale-created" => &mut self.accept_stale_created,
            "accept-reused-nonce" => &mut self.accept_reused_nonce,
            "no-date-on-401" => &mut self.no_date_on_401,
            "http-date-on-401" => &mut self.http_date_on_401,
            "accept-bad-signature" => &mut self.accept_bad_signature,
            "echo-msg-type" => &mut self.echo_msg_type,
            "ok-on-bad-json" => &mut self.ok_on_bad_json,
            _ => return false,
        };
        *f = true;
        true
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub access_key: String,
    /// The access secret: the WSSE password and the signature key.
    pub access_secret: String,
    /// HEDGW addresses handed out in turn (§5.1.4).
    pub hedgw: Vec<(String, u16)>,
    /// `camRW` of §5.1.5.
    pub settings: Map<String, Value>,
    /// Answer the first request of each TD with 401 (to see it take the
    /// `Date`), even when its credentials are good.
    pub challenge_first: bool,
    pub faults: ServerFaults,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let settings = serde_json::json!({
            "HDVideo": "On", "antiFlicker": "50", "cameraImageRotate": "Off",
            "cameraMicrophone": "Off", "motionSensitivity": "80", "nightVision": "Auto",
            "soundSensitivity": "90", "status": "On", "statusLight": "On",
            "title": "my office", "motionRegions": "1;2;3;25"
        });
        ServerConfig {
            access_key: "5e2abe86-6aa".into(),
            access_secret: "ADtuchbM8TBPhQdSi8U4".into(),
            hedgw: vec![("127.0.0.1".into(), 50922)],
            settings: settings.as_object().cloned().unwrap_or_default(),
            challenge_first: false,
            faults: ServerFaults::default(),
        }
    }
}

/// One request handled.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub at: WallTime,
    pub request: http::Request,
    /// The credentials, when readable.
    pub wsse: Option<wsse::Credentials>,
    /// The form, when readable.
    pub form: Option<sign::Form>,
    /// The request's `jsonObject`.
    pub decoded: msg::Decoded,
    pub response: http::Response,
    /// Every rule the TD broke in this request.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Default)]
struct DeviceState {
    token: Option<String>,
    done: Vec<Kind>,
    /// When a HEDGW address was last handed out.
    address_at: Option<WallTime>,
    /// The platform time of the last 401 with `Date`.
    challenged_at: Option<WallTime>,
    requests: u32,
}

/// The platform.
#[derive(Debug)]
pub struct Server {
    pub cfg: ServerConfig,
    guard: Guard,
    devices: HashMap<String, DeviceState>,
    next_addr: usize,
    tokens: u64,
}

impl Server {
    pub fn new(cfg: ServerConfig) -> Server {
        let guard = Guard::new(Leniency {
            accept_stale: cfg.faults.accept_stale_created,
            accept_reused_nonce: cfg.faults.accept_reused_nonce,
        });
        Server {
            cfg,
            guard,
            devices: HashMap::new(),
            next_addr: 0,
            tokens: 0,
        }
    }

    fn unauthorized(&self, now: WallTime) -> http::Response {
        let mut r = wsse::unauthorized(now);
        if self.cfg.faults.no_date_on_401 {
            r.headers.remove("Date");
        } else if self.cfg.faults.http_date_on_401 {
            r.headers
                .set("Date", now.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
        }
        r
    }

    fn answer(&self, k: Kind, code: u32, body: RspBody) -> http::Response {
        let mut rsp = Rsp::new(k, code, body);
        if self.cfg.faults.echo_msg_type {
            rsp.msg_type = k.req();
        }
        http::Response::json(200, &rsp.to_value())
    }

    /// Answer `req` at the platform's time `now`.
    pub fn handle(&mut self, now: WallTime, req: &http::Request) -> Exchange {
        let mut ex = Exchange {
            at: now,
            request: req.clone(),
            wsse: None,
            form: None,
            decoded: msg::Decoded::default(),
            response: http::Response::new(404),
            findings: Vec::new(),
        };
        if req.path() != BATCH_PATH {
            return ex;
        }
        if req.method != "POST" {
            ex.response = http::Response::new(405);
            return ex;
        }
        let (key, secret) = (self.cfg.access_key.clone(), self.cfg.access_secret.clone());
        let (auth, f) = self
            .guard
            .check(now, &req.headers, |k| (k == key).then(|| secret.clone()));
        ex.findings.extend(f);
        let device_of = |c: &wsse::Credentials| c.split_username().map(|(_, d)| d.to_string());
        let cr = match auth {
            Ok(c) => c,
            Err(why) => {
                let cr = req
                    .headers
                    .get("x-wsse")
                    .and_then(|x| wsse::Credentials::parse(x).0);
                ex.findings.push(why.finding(cr.as_ref(), now));
                if let Some(d) = cr.as_ref().and_then(device_of) {
                    self.devices.entry(d).or_default().challenged_at = Some(now);
                }
                ex.wsse = cr;
                ex.response = self.unauthorized(now);
                peek(&mut ex);
                return ex;
            }
        };
        let device = device_of(&cr).unwrap_or_default();
        // §2.2: after a 401 the TD takes the platform's time from `Date`.
        let st = self.devices.entry(device.clone()).or_default();
        if let (Some(at), Some(created)) =
            (st.challenged_at.take(), super::parse_rfc3339(&cr.created))
        {
            let lag = now.signed_duration_since(at);
            let off = created.signed_duration_since(at) - lag;
            if off.num_seconds().abs() > 60 {
                ex.findings.push(C::ClockNotUpdated.finding(
                    clause::CLOCK,
                    format!(
                        "Created {} is {} s from the 401's Date {} (plus the {} s since): expected the TD to take the platform's time",
                        cr.created,
                        off.num_seconds(),
                        rfc3339(at),
                        lag.num_seconds()
                    ),
                ));
            }
        }
        st.requests += 1;
        if self.cfg.challenge_first && st.requests == 1 {
            st.challenged_at = Some(now);
            ex.wsse = Some(cr);
            ex.response = self.unauthorized(now);
            peek(&mut ex);
            return ex;
        }
        ex.wsse = Some(cr);
        let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let (form, f) = sign::Form::parse(&req.body, query);
        ex.findings.extend(f);
        let Some(form) = form else {
            ex.response = http::Response::json(200, &error_body(errors::JSON_EMPTY, None));
            return ex;
        };
        let sig_ok = match form.verify(&self.cfg.access_secret) {
            Ok(w) => {
                ex.findings.extend(w);
                true
            }
            Err(f) => {
                ex.findings.extend(f);
                self.cfg.faults.accept_bad_signature
            }
        };
        if form.access_key != self.cfg.access_key {
            ex.findings.push(C::FormField.finding(
                clause::SIGNATURE,
                format!(
                    "accessKey: expected {:?}, got {:?}",
                    self.cfg.access_key, form.access_key
                ),
            ));
        }
        ex.decoded = msg::decode(form.json_object.as_bytes(), false);
        ex.findings.extend(ex.decoded.findings.iter().cloned());
        ex.form = Some(form);
        let Some(json) = ex.decoded.json.clone() else {
            let code = if ex.request.body.is_empty()
                || ex
                    .form
                    .as_ref()
                    .is_some_and(|f| f.json_object.trim().is_empty())
            {
                errors::JSON_EMPTY
            } else {
                errors::JSON_PARSE
            };
            let code = if self.cfg.faults.ok_on_bad_json {
                0
            } else {
                code
            };
            ex.response = http::Response::json(200, &error_body(code, None));
            return ex;
        };
        let Some((kind, false)) = ex.decoded.kind else {
            ex.response = http::Response::json(200, &error_body(errors::BAD_REQUEST, None));
            return ex;
        };
        if !sig_ok {
            ex.response = self.answer(kind, errors::BAD_PASSWORD, RspBody::Empty {});
            return ex;
        }
        let field = |n: &str| msg::lookup(&json, n).unwrap_or_default();
        let body_device = field("deviceId");
        if body_device != device {
            ex.findings.push(C::WsseUsername.finding(
                clause::WSSE,
                format!("Username's deviceId {device:?} differs from the body's deviceId {body_device:?}"),
            ));
        }
        if ex
            .decoded
            .findings
            .iter()
            .any(|f| f.code == C::FieldMissing.as_str())
        {
            ex.response = self.answer(kind, errors::PARAM_EMPTY, RspBody::Empty {});
            return ex;
        }
        if body_device.len() != 15 || !body_device.bytes().all(|b| b.is_ascii_digit()) {
            ex.response = self.answer(kind, errors::DEVICE_ID, RspBody::Empty {});
            return ex;
        }
        let st = self.devices.entry(device).or_default();
        // §6.1: 注册, then the rest; §5.1.3: capabilities after registering.
        let registered = st.token.is_some();
        if kind.needs_token() {
            if !registered {
                ex.findings.push(C::FlowOrder.finding(
                    clause::FLOW,
                    format!(
                        "{}: expected after MSG_P_THD_ADD_CAMERA_REQ, got before it",
                        kind.req()
                    ),
                ));
                ex.response = self.answer(kind, errors::DEVICE_ID, RspBody::Empty {});
                return ex;
            }
            if field("deviceToken") != st.token.clone().unwrap_or_default() {
                ex.findings.push(
                    C::FieldValue.finding(
                        kind.clause(),
                        "deviceToken: expected the token registration returned, got another"
                            .to_string(),
                    ),
                );
                ex.response = self.answer(kind, errors::BAD_PASSWORD, RspBody::Empty {});
                return ex;
            }
        }
        let body = match kind {
            Kind::AddCamera => {
                self.tokens += 1;
                let token = format!("T{:024X}", self.tokens ^ 0x5A5A_5A5A);
                st.token = Some(token.clone());
                st.done.clear();
                RspBody::Registered {
                    device_token: token,
                    unified_id: format!("U{}", body_device),
                }
            }
            Kind::BindInfo => RspBody::Bind {
                user_mobile: "13888888888".into(),
                user_token: "e10adc3949ba59abbe56e057f20f883e".into(),
            },
            Kind::GetChnAddr => {
                if let Some(at) = st.address_at {
                    let age = now.signed_duration_since(at);
                    if age < chrono::Duration::hours(12) {
                        ex.findings.push(C::AddressCache.finding(
                            clause::ADDRESS_CACHE,
                            format!(
                                "MSG_P_THD_GET_CAMERA_CHN_ADDR_REQ again {} s after the last answer: expected the cached address (valid 12 h) to be used",
                                age.num_seconds()
                            ),
                        ));
                    }
                }
                if !st.done.contains(&Kind::SetCapacity) {
                    ex.findings.push(C::FlowOrder.finding(
                        clause::CAPACITY,
                        "MSG_P_THD_GET_CAMERA_CHN_ADDR_REQ: expected after MSG_P_THD_SET_CAMERA_CAPACITY_REQ (§5.1.3: 注册成功之后，需要主动上报可变能力集), got before it",
                    ));
                }
                st.address_at = Some(now);
                let Some((host, port)) = self
                    .cfg
                    .hedgw
                    .get(self.next_addr % self.cfg.hedgw.len().max(1))
                    .cloned()
                else {
                    ex.response = http::Response::new(404);
                    return ex;
                };
                self.next_addr += 1;
                RspBody::Address {
                    server_addr: host,
                    server_port: port.to_string(),
                }
            }
            Kind::GetSettings => RspBody::Settings {
                cam_r_w: self.cfg.settings.clone(),
            },
            Kind::SetCapacity | Kind::SetSettings | Kind::SetInfo => RspBody::Empty {},
        };
        let st = self.devices.entry(body_device).or_default();
        if !st.done.contains(&kind) {
            st.done.push(kind);
        }
        ex.response = self.answer(kind, errors::SUCCESS, body);
        ex
    }
}

/// Read the body of a refused request for the log, without judging it.
fn peek(ex: &mut Exchange) {
    let query = ex
        .request
        .target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("");
    if let (Some(form), _) = sign::Form::parse(&ex.request.body, query) {
        let mut d = msg::decode(form.json_object.as_bytes(), false);
        d.findings.clear();
        ex.decoded = d;
        ex.form = Some(form);
    }
}

/// A response to a request whose kind is unknown.
fn error_body(code: u32, kind: Option<Kind>) -> Value {
    let mut v = serde_json::json!({
        "errorCode": code.to_string(),
        "description": errors::describe(code).unwrap_or(""),
    });
    if let (Some(k), Some(o)) = (kind, v.as_object_mut()) {
        o.insert("msgType".into(), Value::String(k.rsp()));
    }
    v
}
