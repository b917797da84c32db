//! The request signature and form body (§5 TD 与平台协议).
//!
//! §5: "对 accessSecret + accessKey+等号+参数值+jsonObject+等号+参数值进行
//! MD5 32bit 加密. 如上示例为：ADtuchbM8TBPhQdSi8U4accessKey=5e2abe86-6aajsonObject={a:1,b:2,c:3}.
//! 然后获取到签名 signature:1661d0fa85d325c27030af5783f63998". The text and
//! the example agree, and the example's MD5 checks out: the signature is
//! the lower-case hex MD5 of `secret + "accessKey=" + key + "jsonObject="
//! + json`, the parameters in name order (`[accessKey,jsonObject]`).
//!
//! Where §5 and §5.1.1 disagree:
//! - §5 puts the three parameters in the URL's query; §5.1.1's 请求示例
//!   posts them as a form body `accessKey=..&signature=..&jsonObject=..`.
//!   Decision: the body, as every §5.1 message says `请求方法 POST`;
//!   parameters in the query are read too.
//! - §5.1.1 prints `jsonObject` unencoded; a form body decodes `%XX` and
//!   `+`. Decision: camcert percent-encodes what it sends and signs the
//!   decoded value; a signature that matches only the undecoded text is
//!   taken with a warning (`openapi.signature-form`).
//! - §5.1.1's 请求示例 signs its body `0ba53e90b829efe05c6c0c420375f21a`,
//!   which verifies with §5's secret in no order camcert knows: it was
//!   made with another secret. It is a `openapi.signature-mismatch`.
//! - A signature computed with the parts in another order (the secret
//!   last, or `jsonObject` first) is refused (`openapi.signature-order`,
//!   naming the order it matched).

use md5::{Digest, Md5};

use super::{clause, FindingCode as C};
use crate::finding::Finding;

/// `MD5(secret + "accessKey=" + key + "jsonObject=" + json)`, lower-case hex.
pub fn signature(secret: &str, access_key: &str, json_object: &str) -> String {
    md5_hex(&[secret, "accessKey=", access_key, "jsonObject=", json_object])
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Orders of the parts a TD might use by mistake, each with its name.
pub fn wrong_orders(secret: &str, key: &str, json: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "jsonObject before accessKey",
            md5_hex(&[secret, "jsonObject=", json, "accessKey=", key]),
        ),
        (
            "accessSecret last",
            md5_hex(&["accessKey=", key, "jsonObject=", json, secret]),
        ),
        (
            "without the `=` separators",
            md5_hex(&[secret, "accessKey", key, "jsonObject", json]),
        ),
    ]
}

/// The signature a TD with the `wrong-signature-order` fault sends.
pub fn signature_wrong_order(secret: &str, access_key: &str, json_object: &str) -> String {
    md5_hex(&[secret, "jsonObject=", json_object, "accessKey=", access_key])
}

/// The three parameters of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub access_key: String,
    pub signature: String,
    pub json_object: String,
    /// `jsonObject` as it was written, before percent-decoding.
    pub json_raw: String,
}

impl Form {
    /// A signed form for `json`.
    pub fn signed(secret: &str, access_key: &str, json: &str) -> Form {
        Form {
            access_key: access_key.into(),
            signature: signature(secret, access_key, json),
            json_object: json.into(),
            json_raw: json.into(),
        }
    }

    /// `application/x-www-form-urlencoded`, in §5.1.1's order.
    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("accessKey", &self.access_key)
            .append_pair("signature", &self.signature)
            .append_pair("jsonObject", &self.json_object)
            .finish()
    }

    /// Read the body (and the query, for §5's URL form). Missing
    /// parameters are findings; the form is there whenever `jsonObject` is.
    pub fn parse(body: &[u8], query: &str) -> (Option<Form>, Vec<Finding>) {
        let mut f = Vec::new();
        let get = |name: &str| -> Option<(String, String)> {
            for src in [body, query.as_bytes()] {
                if let Some(v) = form_urlencoded::parse(src).find(|(k, _)| k == name) {
                    let raw = src
                        .split(|b| *b == b'&')
                        .find_map(|kv| kv.strip_prefix(format!("{name}=").as_bytes()))
                        .map(|r| String::from_utf8_lossy(r).into_owned())
                        .unwrap_or_default();
                    return Some((v.1.into_owned(), raw));
                }
            }
            None
        };
        let key = get("accessKey");
        let sig = get("signature");
        let json = get("jsonObject");
        for (n, v) in [
            ("accessKey", &key),
            ("signature", &sig),
            ("jsonObject", &json),
        ] {
            if v.is_none() {
                f.push(C::FormField.finding(
                    clause::SIGNATURE,
                    format!("form body: expected parameter {n}, absent"),
                ));
            }
        }
        let Some((json_object, json_raw)) = json else {
            return (None, f);
        };
        (
            Some(Form {
                access_key: key.map(|k| k.0).unwrap_or_default(),
                signature: sig.map(|s| s.0).unwrap_or_default(),
                json_object,
                json_raw,
            }),
            f,
        )
    }

    /// Judge the signature with `secret`. `Ok` with warnings when it is
    /// accepted, `Err` with the findings when not.
    pub fn verify(&self, secret: &str) -> Result<Vec<Finding>, Vec<Finding>> {
        let mut warn = Vec::new();
        let sig = self.signature.trim();
        let lower = sig.to_ascii_lowercase();
        if sig.len() != 32 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) || lower != sig {
            warn.push(C::SignatureForm.finding(
                clause::SIGNATURE,
                format!("signature: expected 32 lower-case hex digits, got {sig:?}"),
            ));
        }
        let want = signature(secret, &self.access_key, &self.json_object);
        if lower == want {
            return Ok(warn);
        }
        if self.json_raw != self.json_object
            && lower == signature(secret, &self.access_key, &self.json_raw)
        {
            warn.push(C::SignatureForm.finding(
                clause::SIGNATURE,
                "signature: computed over jsonObject before form-decoding, expected over the decoded value",
            ));
            return Ok(warn);
        }
        let mut f = warn;
        match wrong_orders(secret, &self.access_key, &self.json_object)
            .into_iter()
            .find(|(_, s)| *s == lower)
        {
            Some((how, _)) => f.push(C::SignatureOrder.finding(
                clause::SIGNATURE,
                format!(
                    "signature: expected MD5(accessSecret + accessKey=.. + jsonObject=..) = {want}, got {lower} (it matches {how})"
                ),
            )),
            None => f.push(C::SignatureMismatch.finding(
                clause::SIGNATURE,
                format!(
                    "signature: expected MD5(accessSecret + accessKey=.. + jsonObject=..) = {want}, got {lower:?}"
                ),
            )),
        }
        Err(f)
    }
}
