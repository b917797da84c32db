//! Digest access authentication for SIP (RFC 3261 §22.4, RFC 2617 §3.2.2,
//! RFC 7616 for SHA-256, RFC 8760 for its use in SIP).
//!
//! GB/T 28181 §注册 requires "数字摘要" (digest) authentication for
//! REGISTER; the platform sends `401` with `WWW-Authenticate: Digest realm,
//! nonce, opaque, algorithm=MD5` and the device answers with `Authorization`.
//! Call [`Challenge::to_header`] to build the challenge, [`Credentials::answer`]
//! on the device side, and [`Credentials::verify`] on the platform side.

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::header::AuthParams;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA-256")]
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    /// RFC 2617 §3.2.1: an absent algorithm means MD5.
    pub fn from_param(v: Option<&str>) -> Option<Algorithm> {
        match v {
            None => Some(Algorithm::Md5),
            Some(s) if s.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(s) if s.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            _ => None,
        }
    }
    /// [`Self::hash`] of the parts joined, without joining them first.
    pub fn hash_parts(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 => {
                let mut h = Md5::new();
                for p in parts {
                    h.update(p.as_bytes());
                }
                super::hex(&h.finalize())
            }
            Algorithm::Sha256 => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p.as_bytes());
                }
                super::hex(&h.finalize())
            }
        }
    }
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => super::hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => super::hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// `qop="auth"` offered.
    pub qop_auth: bool,
}

impl Challenge {
    pub fn to_header(&self) -> String {
        let mut s = format!("Digest realm=\"{}\", nonce=\"{}\"", self.realm, self.nonce);
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{o}\""));
        }
        s.push_str(&format!(", algorithm={}", self.algorithm.name()));
        if self.qop_auth {
            s.push_str(", qop=\"auth\"");
        }
        s
    }

    pub fn parse(value: &str) -> Result<Challenge, String> {
        let p = AuthParams::parse(value).ok_or("not an auth-params list")?;
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            return Err(format!("scheme is {:?}, not Digest", p.scheme));
        }
        let algorithm = Algorithm::from_param(p.get("algorithm"))
            .ok_or_else(|| format!("unsupported algorithm {:?}", p.get("algorithm")))?;
        Ok(Challenge {
            realm: p.get("realm").ok_or("no realm")?.to_string(),
            nonce: p.get("nonce").ok_or("no nonce")?.to_string(),
            opaque: p.get("opaque").map(str::to_string),
            algorithm,
            qop_auth: p
                .get("qop")
                .map(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")))
                .unwrap_or(false),
        })
    }
}

/// An `Authorization: Digest ...` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    /// Whether the value named `algorithm=` at all (the GB examples always do).
    pub algorithm_explicit: bool,
    pub opaque: Option<String>,
    /// `(nc, cnonce)` when `qop=auth` was used.
    pub qop: Option<(String, String)>,
}

/// RFC 2617 §3.2.2.1 request-digest.
#[allow(clippy::too_many_arguments)]
pub fn request_digest(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash_parts(&[username, ":", realm, ":", password]);
    let ha2 = alg.hash_parts(&[method, ":", uri]);
    match qop {
        Some((nc, cnonce)) => {
            alg.hash_parts(&[&ha1, ":", nonce, ":", nc, ":", cnonce, ":auth:", &ha2])
        }
        None => alg.hash_parts(&[&ha1, ":", nonce, ":", &ha2]),
    }
}

impl Credentials {
    /// Answer `challenge` for a request with `method` to `uri`. `cnonce` is
    /// only used when the challenge offers `qop=auth`.
    pub fn answer(
        challenge: &Challenge,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Credentials {
        let qop = challenge
            .qop_auth
            .then(|| ("00000001".to_string(), cnonce.to_string()));
        let response = request_digest(
            challenge.algorithm,
            username,
            &challenge.realm,
            password,
            method,
            uri,
            &challenge.nonce,
            qop.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        );
        Credentials {
            username: username.to_string(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_string(),
            response,
            algorithm: challenge.algorithm,
            algorithm_explicit: true,
            opaque: challenge.opaque.clone(),
            qop,
        }
    }

    /// [`Self::to_header`] appended to `out`, the same bytes.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        for (part, value) in [
            ("Digest username=\"", &self.username),
            ("\", realm=\"", &self.realm),
            ("\", nonce=\"", &self.nonce),
            ("\", uri=\"", &self.uri),
            ("\", response=\"", &self.response),
        ] {
            out.extend_from_slice(part.as_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'"');
        if self.algorithm_explicit {
            out.extend_from_slice(b", algorithm=");
            out.extend_from_slice(self.algorithm.name().as_bytes());
        }
        if let Some(o) = &self.opaque {
            let _ = write!(out, ", opaque=\"{o}\"");
        }
        if let Some((nc, cnonce)) = &self.qop {
            let _ = write!(out, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
        }
    }

    pub fn to_header(&self) -> String {
        let mut s = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\"",
            self.username, self.realm, self.nonce, self.uri, self.response
        );
        if self.algorithm_explicit {
            s.push_str(&format!(", algorithm={}", self.algorithm.name()));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{o}\""));
        }
        if let Some((nc, cnonce)) = &self.qop {
            s.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        s
    }

    pub fn parse(value: &str) -> Result<Credentials, String> {
        let p = AuthParams::parse(value).ok_or("not an auth-params list")?;
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            return Err(format!("scheme is {:?}, not Digest", p.scheme));
        }
        let need = |k: &str| {
            p.get(k)
                .map(str::to_string)
                .ok_or_else(|| format!("no {k} parameter"))
        };
        let algorithm = Algorithm::from_param(p.get("algorithm"))
            .ok_or_else(|| format!("unsupported algorithm {:?}", p.get("algorithm")))?;
        let qop = match p.get("qop") {
            Some(q) if q.eq_ignore_ascii_case("auth") => Some((need("nc")?, need("cnonce")?)),
            Some(q) => return Err(format!("unsupported qop {q:?}")),
            None => None,
        };
        Ok(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm,
            algorithm_explicit: p.get("algorithm").is_some(),
            opaque: p.get("opaque").map(str::to_string),
            qop,
        })
    }

    /// The response this request should carry for `password`.
    pub fn expected_response(&self, password: &str, method: &str) -> String {
        request_digest(
            self.algorithm,
            &self.username,
            &self.realm,
            password,
            method,
            &self.uri,
            &self.nonce,
            self.qop.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        )
    }

    pub fn verify(&self, password: &str, method: &str) -> bool {
        self.expected_response(password, method)
            .eq_ignore_ascii_case(&self.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1 vectors (HTTP, but the digest arithmetic is the same).
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_md5_and_sha256_vectors() {
        let md5 = request_digest(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            NONCE,
            Some(("00000001", CNONCE)),
        );
        assert_eq!(md5, "8ca523f5e9506fed4657c9700eebdbec");
        let sha = request_digest(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            NONCE,
            Some(("00000001", CNONCE)),
        );
        assert_eq!(
            sha,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_vector_without_qop_shape() {
        // RFC 2617 §3.5 with qop; recomputed here without qop to pin the
        // legacy (RFC 2069) form GB devices use: HA1:nonce:HA2.
        let ha1 = Algorithm::Md5.hash("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
    }

    #[test]
    fn answer_then_verify_roundtrip_and_wrong_password_fails() {
        for (alg, qop) in [
            (Algorithm::Md5, false),
            (Algorithm::Md5, true),
            (Algorithm::Sha256, true),
        ] {
            let ch = Challenge {
                realm: "3402000000".into(),
                nonce: "abc".into(),
                opaque: Some("op".into()),
                algorithm: alg,
                qop_auth: qop,
            };
            let parsed = Challenge::parse(&ch.to_header()).unwrap();
            assert_eq!(parsed, ch);
            let c = Credentials::answer(&ch, "dev", "pw", "REGISTER", "sip:x@y", "cn");
            let back = Credentials::parse(&c.to_header()).unwrap();
            assert_eq!(back, c);
            assert!(back.verify("pw", "REGISTER"));
            assert!(!back.verify("wrong", "REGISTER"));
        }
    }
}
