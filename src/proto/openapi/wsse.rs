//! WSSE credentials (§2.1 WSSE 认证介绍) and the anti-replay window
//! (§2.2 防重放攻击).
//!
//! ```text
//! Authorization: WSSE profile="UsernamePwd"
//! X-WSSE: UsernamePwd Username="Zhejiang-110234567894562",
//!   PasswordDigest="...",Nonce="6FQHGU7M01ZMIA5G",Created="2017-01-01T15:00:00+08:00"
//! ```
//!
//! Decisions where the spec is loose:
//! - §2.1: "TD 创建随机字符串 nonce；协议规范 nonce 长度为 16 字节". The
//!   nonce is the 16-character string sent in `Nonce`, concatenated as it
//!   is (its examples are 16 ASCII letters and digits); it is not Base64
//!   decoded first as the OASIS UsernameToken profile does.
//! - §2.1's example `PasswordDigest` decodes to 58 bytes of text, not to a
//!   20-byte SHA-1 digest; a digest of another length is a finding
//!   (`openapi.wsse-digest-form`), and it cannot match anyway.
//! - §2.1 and §5.1.3 print the header wrapped across lines and with a
//!   space after `PasswordDigest="`. Whitespace inside a quoted value is
//!   dropped, with a warning (`openapi.wsse-whitespace`).
//! - The password is the vendor's access secret ("password 认证密码，见
//!   TD 厂家申请信息说明").
//! - "Username，生成方式是 accesskey+中划线+deviceId" while §1.2.2.3 says
//!   "Key 不含中划线" and §5's example key `5e2abe86-6aa` has one: the
//!   username splits at its last `-`.
//! - The 401's realm is printed `"authcenter "` with a trailing space;
//!   camcert sends `authcenter` and reads either.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::{clause, http, parse_rfc3339, rfc3339, FindingCode as C, WallTime};
use crate::finding::Finding;

/// The one `Authorization` value §2.1 allows.
pub const AUTHORIZATION: &str = "WSSE profile=\"UsernamePwd\"";
/// The challenge camcert sends with a 401.
pub const WWW_AUTHENTICATE: &str = "WSSE realm=\"authcenter\", profile=\"UsernamePwd\"";
/// §2.2: "与平台时间差值超过 5 分钟".
pub const WINDOW: chrono::Duration = chrono::Duration::minutes(5);
/// §2.1: "nonce 长度为 16 字节".
pub const NONCE_LEN: usize = 16;
/// Nonces remembered at most (the oldest are forgotten first; they are
/// outside the window by then in any realistic load).
pub const MAX_NONCES: usize = 100_000;

/// `Base64(SHA1(nonce + created + password))`.
pub fn password_digest(nonce: &str, created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce.as_bytes());
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A 16-character nonce of upper-case letters and digits from 16 random
/// bytes (the caller owns the randomness).
pub fn nonce_from(random: [u8; NONCE_LEN]) -> String {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    random
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The four attributes of `X-WSSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password_digest: String,
    pub nonce: String,
    pub created: String,
}

impl Credentials {
    /// Credentials for `access_key-device_id` at `created`.
    pub fn new(username: &str, password: &str, nonce: &str, created: WallTime) -> Credentials {
        let created = rfc3339(created);
        Credentials {
            username: username.into(),
            password_digest: password_digest(nonce, &created, password),
            nonce: nonce.into(),
            created,
        }
    }

    /// The `X-WSSE` value.
    pub fn header(&self) -> String {
        format!(
            "UsernamePwd Username=\"{}\",PasswordDigest=\"{}\",Nonce=\"{}\",Created=\"{}\"",
            self.username, self.password_digest, self.nonce, self.created
        )
    }

    /// Put both headers on `r`.
    pub fn apply(&self, r: &mut http::Request) {
        r.headers.set("Authorization", AUTHORIZATION);
        r.headers.set("X-WSSE", self.header());
    }

    /// `(access key, device ID)` of the username.
    pub fn split_username(&self) -> Option<(&str, &str)> {
        self.username.rsplit_once('-')
    }

    /// Does the digest match `password`?
    pub fn verify(&self, password: &str) -> bool {
        password_digest(&self.nonce, &self.created, password) == self.password_digest
    }

    /// Read an `X-WSSE` value leniently: the credentials when all four
    /// attributes are there, and the findings on the way.
    pub fn parse(value: &str) -> (Option<Credentials>, Vec<Finding>) {
        let mut findings = Vec::new();
        let v = value.trim();
        let rest = match v.split_once(char::is_whitespace) {
            Some(("UsernamePwd", rest)) => rest,
            _ => {
                findings.push(C::WsseMalformed.finding(
                    clause::WSSE,
                    format!("X-WSSE: expected `UsernamePwd Username=\"...\",...`, got {v:?}"),
                ));
                v.strip_prefix("UsernamePwd").unwrap_or(v)
            }
        };
        let mut attrs: HashMap<String, String> = HashMap::new();
        let mut s = rest;
        loop {
            s = s.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            if s.is_empty() {
                break;
            }
            let Some((name, after)) = s.split_once('=') else {
                findings.push(C::WsseMalformed.finding(
                    clause::WSSE,
                    format!("X-WSSE: attribute without a value: {s:?}"),
                ));
                break;
            };
            let name = name.trim().to_string();
            let after = after.trim_start();
            let (raw, next) = match after.strip_prefix('"') {
                Some(q) => match q.find('"') {
                    Some(end) => (&q[..end], &q[end + 1..]),
                    None => {
                        findings.push(C::WsseMalformed.finding(
                            clause::WSSE,
                            format!("X-WSSE: {name}: unterminated quoted value"),
                        ));
                        (q, "")
                    }
                },
                None => {
                    findings.push(C::WsseMalformed.finding(
                        clause::WSSE,
                        format!("X-WSSE: {name}: expected a quoted value"),
                    ));
                    let end = after.find(',').unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            let clean: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            if clean.len() != raw.len() {
                findings.push(C::WsseWhitespace.finding(
                    clause::WSSE,
                    format!("X-WSSE: {name}: whitespace inside the quoted value {raw:?}"),
                ));
            }
            attrs.insert(name, clean);
            s = next;
        }
        let mut take = |n: &str| {
            let v = attrs.remove(n);
            if v.is_none() {
                findings.push(C::WsseMalformed.finding(
                    clause::WSSE,
                    format!("X-WSSE: expected attribute {n}, absent"),
                ));
            }
            v
        };
        let (u, d, n, c) = (
            take("Username"),
            take("PasswordDigest"),
            take("Nonce"),
            take("Created"),
        );
        let (Some(username), Some(password_digest), Some(nonce), Some(created)) = (u, d, n, c)
        else {
            return (None, findings);
        };
        let cr = Credentials {
            username,
            password_digest,
            nonce,
            created,
        };
        findings.extend(cr.check_form());
        (Some(cr), findings)
    }

    /// The rules on the attributes' form.
    pub fn check_form(&self) -> Vec<Finding> {
        let mut f = Vec::new();
        match self.split_username() {
            Some((key, id))
                if !key.is_empty() && id.len() == 15 && id.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => f.push(C::WsseUsername.finding(
                clause::WSSE,
                format!(
                    "Username: expected accesskey-deviceId with a 15-digit deviceId, got {:?}",
                    self.username
                ),
            )),
        }
        if self.nonce.len() != NONCE_LEN {
            f.push(C::WsseNonce.finding(
                clause::WSSE,
                format!(
                    "Nonce: expected {NONCE_LEN} bytes, got {} ({:?})",
                    self.nonce.len(),
                    self.nonce
                ),
            ));
        }
        if parse_rfc3339(&self.created).is_none() {
            f.push(C::WsseCreated.finding(
                clause::TIME,
                format!(
                    "Created: expected an RFC 3339 timestamp, got {:?}",
                    self.created
                ),
            ));
        }
        match base64::engine::general_purpose::STANDARD.decode(&self.password_digest) {
            Ok(b) if b.len() == 20 => {}
            Ok(b) => f.push(C::WsseDigestForm.finding(
                clause::WSSE,
                format!(
                    "PasswordDigest: expected Base64 of a 20-byte SHA-1 digest, got {} bytes",
                    b.len()
                ),
            )),
            Err(_) => f.push(C::WsseDigestForm.finding(
                clause::WSSE,
                format!("PasswordDigest: not Base64: {:?}", self.password_digest),
            )),
        }
        f
    }
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-WSSE` (or no usable one).
    Missing,
    Malformed,
    /// No such user (the access key is unknown).
    UnknownUser,
    BadDigest,
    /// `Created` is this far from the platform's time.
    Stale(chrono::Duration),
    NonceReused,
}

impl Refusal {
    /// The finding a request refused for this reason carries.
    pub fn finding(&self, cr: Option<&Credentials>, now: WallTime) -> Finding {
        match self {
            Refusal::Missing => C::WsseMissing.finding(
                clause::WSSE,
                "expected Authorization and X-WSSE credentials, absent",
            ),
            Refusal::Malformed => {
                C::WsseMalformed.finding(clause::WSSE, "X-WSSE credentials unreadable")
            }
            Refusal::UnknownUser => C::WsseUsername.finding(
                clause::WSSE,
                format!(
                    "Username {:?}: access key unknown",
                    cr.map(|c| c.username.as_str()).unwrap_or("")
                ),
            ),
            Refusal::BadDigest => C::WsseDigest.finding(
                clause::WSSE,
                "PasswordDigest: expected Base64(SHA1(nonce + created + password)), got another value",
            ),
            Refusal::Stale(d) => C::ReplayStale.finding(
                clause::REPLAY,
                format!(
                    "Created {} is {} s from the platform's time {} (window: {} s)",
                    cr.map(|c| c.created.as_str()).unwrap_or(""),
                    d.num_seconds(),
                    rfc3339(now),
                    WINDOW.num_seconds()
                ),
            ),
            Refusal::NonceReused => C::ReplayNonce.finding(
                clause::REPLAY,
                format!(
                    "Nonce {:?} was used before within the window",
                    cr.map(|c| c.nonce.as_str()).unwrap_or("")
                ),
            ),
        }
    }
}

/// What the platform lets through, for the reference server's faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leniency {
    pub accept_stale: bool,
    pub accept_reused_nonce: bool,
}

/// The platform's side of §2.1 and §2.2: checks credentials and
/// remembers nonces for the window.
#[derive(Debug, Default)]
pub struct Guard {
    seen: HashMap<String, WallTime>,
    order: VecDeque<String>,
    pub leniency: Leniency,
}

impl Guard {
    pub fn new(leniency: Leniency) -> Guard {
        Guard {
            leniency,
            ..Guard::default()
        }
    }

    /// Check the request's credentials at `now` against the password of
    /// its access key (`password(access_key)`). The credentials when
    /// accepted; the findings either way.
    pub fn check(
        &mut self,
        now: WallTime,
        headers: &http::Headers,
        password: impl Fn(&str) -> Option<String>,
    ) -> (Result<Credentials, Refusal>, Vec<Finding>) {
        let mut findings = Vec::new();
        let auth = headers.get("authorization");
        let Some(x) = headers.get("x-wsse") else {
            return (Err(Refusal::Missing), findings);
        };
        if auth.map(|a| a.split_whitespace().collect::<Vec<_>>().join(" "))
            != Some(AUTHORIZATION.to_string())
        {
            findings.push(C::WsseAuthorization.finding(
                clause::WSSE,
                format!("Authorization: expected {AUTHORIZATION:?}, got {auth:?}"),
            ));
        }
        let (cr, f) = Credentials::parse(x);
        findings.extend(f);
        let Some(cr) = cr else {
            return (Err(Refusal::Malformed), findings);
        };
        let Some(pw) = cr.split_username().and_then(|(k, _)| password(k)) else {
            return (Err(Refusal::UnknownUser), findings);
        };
        if !cr.verify(&pw) {
            return (Err(Refusal::BadDigest), findings);
        }
        let Some(created) = parse_rfc3339(&cr.created) else {
            return (Err(Refusal::Malformed), findings);
        };
        let skew = created.signed_duration_since(now);
        if skew.abs() > WINDOW && !self.leniency.accept_stale {
            return (Err(Refusal::Stale(skew)), findings);
        }
        self.forget_before(now);
        if self.seen.contains_key(&cr.nonce) && !self.leniency.accept_reused_nonce {
            return (Err(Refusal::NonceReused), findings);
        }
        if !self.seen.contains_key(&cr.nonce) {
            if self.order.len() >= MAX_NONCES {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
            self.seen.insert(cr.nonce.clone(), now);
            self.order.push_back(cr.nonce.clone());
        }
        (Ok(cr), findings)
    }

    /// Drop nonces older than twice the window: a request that reuses one
    /// is stale by then anyway.
    fn forget_before(&mut self, now: WallTime) {
        while let Some(n) = self.order.front() {
            match self.seen.get(n) {
                Some(t) if now.signed_duration_since(*t) <= WINDOW * 2 => break,
                _ => {
                    if let Some(n) = self.order.pop_front() {
                        self.seen.remove(&n);
                    }
                }
            }
        }
    }
}

/// The 401 of §2.1/§2.2: `Date` (RFC 3339) and the WSSE challenge.
pub fn unauthorized(now: WallTime) -> http::Response {
    let mut r = http::Response::new(401);
    r.headers.set("Date", rfc3339(now));
    r.headers.set("WWW-Authenticate", WWW_AUTHENTICATE);
    r
}

/// Judge a 401 against §2.1/§2.2: the platform's time from `Date` when it
/// is there and readable, and the findings.
pub fn check_unauthorized(r: &http::Response) -> (Option<WallTime>, Vec<Finding>) {
    let mut f = Vec::new();
    let date = match r.headers.get("date") {
        None => {
            f.push(C::UnauthorizedDate.finding(
                clause::WSSE_401,
                "401: expected a Date header with the platform's time (RFC 3339), absent",
            ));
            None
        }
        Some(d) => {
            let t = parse_rfc3339(d);
            if t.is_none() {
                f.push(C::UnauthorizedDate.finding(
                    clause::WSSE_401,
                    format!("401 Date: expected RFC 3339 (2017-01-01T15:00:00+08:00), got {d:?}"),
                ));
            }
            t
        }
    };
    let ok = r.headers.get("www-authenticate").is_some_and(|c| {
        let c = c.trim();
        c.starts_with("WSSE") && c.contains("profile=\"UsernamePwd\"")
    });
    if !ok {
        f.push(C::UnauthorizedChallenge.finding(
            clause::WSSE_401,
            format!(
                "401 WWW-Authenticate: expected {WWW_AUTHENTICATE:?}, got {:?}",
                r.headers.get("www-authenticate")
            ),
        ));
    }
    (date, f)
}
