//! Addressing quirks of GB/T 28181 requests that a reader can recover from.
//!
//! A device configured with the SIP domain where the server ID belongs sends
//! `MESSAGE sip:3402000000@...` and `To: <sip:3402000000@...>` to the server
//! `34020000002000000001`. The domain is the ID's first ten digits
//! (§设备配置: "SIP服务域：SIP服务器ID的前10位"), so the intended addressee is
//! unambiguous: [`addressing_findings`] names the rule broken, and
//! [`recover_addressing`] hands up the request as it was meant, so the rest of
//! it is judged as if written correctly. A strict reader does neither.

use super::{NameAddr, SipMessage, SipUri};
use crate::finding::{Evidence, Finding};

/// The Request-URI user is the server's domain, not its ID.
pub const REQUEST_URI_DOMAIN: &str = "sip.request-uri-domain";
/// The To user is the server's domain, not its ID.
pub const TO_DOMAIN: &str = "sip.to-domain";

/// The rule both codes enforce. The spec's MESSAGE samples address the
/// server by its 20-digit ID in both places, and the domain is a different
/// thing: the ID's first ten digits.
pub const CLAUSE_ADDRESSEE_ID: &str = "§保活信令流程: MESSAGE sip:51000000002000000001@5100000000, To: <sip:51000000002000000001@5100000000> (the user part is the SIP server's 20-digit ID, the host the domain); §设备配置: SIP服务域：SIP服务器ID的前10位; §注册: 携带上级平台和自己的国标ID";

/// Whether `user` is the SIP domain of the 20-digit GB ID `id` (its first
/// ten digits) rather than the ID itself.
pub fn is_domain_of(user: &str, id: &str) -> bool {
    id.len() == 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && user.len() == 10
        && id.starts_with(user)
}

/// The user part of the Request-URI and of To of a request.
fn users(m: &SipMessage) -> (Option<String>, Option<String>) {
    let ruri = m.uri().and_then(SipUri::parse).and_then(|u| u.user);
    let to = m
        .headers
        .get("To")
        .and_then(NameAddr::parse)
        .and_then(|n| n.uri.user);
    (ruri, to)
}

/// The findings on a request meant for `addressee` (a 20-digit GB ID) whose
/// Request-URI or To names that ID's domain instead. Nothing for responses,
/// or when `addressee` is not a GB ID.
pub fn addressing_findings(m: &SipMessage, addressee: &str) -> Vec<Finding> {
    if !m.is_request() {
        return Vec::new();
    }
    let (ruri, to) = users(m);
    let mut out = Vec::new();
    let method = m.method().unwrap_or_default();
    if let Some(u) = ruri.filter(|u| is_domain_of(u, addressee)) {
        out.push(
            Finding::error(
                REQUEST_URI_DOMAIN,
                CLAUSE_ADDRESSEE_ID,
                format!(
                    "Request-URI user of the {method}: expected the server ID {addressee}, got its SIP domain {u}"
                ),
            )
            .with_evidence(Evidence::Path("Request-URI".into())),
        );
    }
    if let Some(u) = to.filter(|u| is_domain_of(u, addressee)) {
        out.push(
            Finding::error(
                TO_DOMAIN,
                CLAUSE_ADDRESSEE_ID,
                format!(
                    "To user of the {method}: expected the server ID {addressee}, got its SIP domain {u}"
                ),
            )
            .with_evidence(Evidence::Path("To".into())),
        );
    }
    out
}

/// The request as it was meant: the Request-URI and To users that name the
/// domain of `addressee` replaced by `addressee`. `None` when there is
/// nothing to recover.
pub fn recover_addressing(m: &SipMessage, addressee: &str) -> Option<SipMessage> {
    if !m.is_request() {
        return None;
    }
    let (ruri, to) = users(m);
    let ruri = ruri.filter(|u| is_domain_of(u, addressee));
    let to = to.filter(|u| is_domain_of(u, addressee));
    if ruri.is_none() && to.is_none() {
        return None;
    }
    let mut out = m.clone();
    if let (Some(u), super::StartLine::Request { uri, .. }) = (&ruri, &mut out.start) {
        if let Some(fixed) = replace_user(uri, u, addressee) {
            *uri = fixed;
        }
    }
    if let Some(u) = &to {
        if let Some(fixed) = m
            .headers
            .get("To")
            .and_then(|v| replace_user(v, u, addressee))
        {
            out.headers.set("To", fixed);
        }
    }
    Some(out)
}

/// `text` (a URI, or a header holding one) with the user `user` of its
/// `sip:`/`sips:` URI replaced by `with`.
fn replace_user(text: &str, user: &str, with: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower
        .find("sips:")
        .map(|i| i + 5)
        .or_else(|| lower.find("sip:").map(|i| i + 4))?;
    let rest = text.get(start..)?;
    let after = rest.strip_prefix(user)?.strip_prefix('@')?;
    Some(format!("{}{with}@{after}", &text[..start]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "34020000002000000001";

    fn keepalive(ruri_user: &str, to_user: &str) -> SipMessage {
        let raw = format!(
            "MESSAGE sip:{ruri_user}@3402000000 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1\r\n\
From: <sip:34020000001320000001@3402000000>;tag=7\r\n\
To: <sip:{to_user}@3402000000>\r\n\
Call-ID: c\r\nCSeq: 2 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(raw.as_bytes()).unwrap().message
    }

    #[test]
    fn the_domain_is_the_ids_first_ten_digits() {
        assert!(is_domain_of("3402000000", ID));
        assert!(!is_domain_of(ID, ID));
        assert!(!is_domain_of("3402000001", ID));
        assert!(!is_domain_of("340200000", ID), "nine digits");
        assert!(!is_domain_of("3402000000", "3402000000"), "not a GB ID");
        assert!(!is_domain_of("", ""));
    }

    #[test]
    fn a_request_to_the_id_has_no_findings() {
        let m = keepalive(ID, ID);
        assert!(addressing_findings(&m, ID).is_empty());
        assert!(recover_addressing(&m, ID).is_none());
        // Another full ID is not a domain: that is a different fault.
        let m = keepalive("34020000002000000002", ID);
        assert!(addressing_findings(&m, ID).is_empty());
    }

    #[test]
    fn the_domain_in_request_uri_and_to_is_named_with_the_clause() {
        let m = keepalive("3402000000", "3402000000");
        let fs = addressing_findings(&m, ID);
        let codes: Vec<&str> = fs.iter().map(|f| f.code).collect();
        assert_eq!(codes, [REQUEST_URI_DOMAIN, TO_DOMAIN]);
        assert!(fs
            .iter()
            .all(|f| f.severity == crate::finding::Severity::Error));
        assert_eq!(
            fs[0].message,
            "Request-URI user of the MESSAGE: expected the server ID 34020000002000000001, got its SIP domain 3402000000"
        );
        assert_eq!(fs[1].path(), "To");
        assert!(crate::finding::resolves(&fs[0].clause), "{}", fs[0].clause);
        // Only the Request-URI.
        let m = keepalive("3402000000", ID);
        let fs = addressing_findings(&m, ID);
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].code, REQUEST_URI_DOMAIN);
    }

    #[test]
    fn recovery_hands_up_the_request_as_meant() {
        let m = keepalive("3402000000", "3402000000");
        let r = recover_addressing(&m, ID).unwrap();
        assert_eq!(r.uri(), Some("sip:34020000002000000001@3402000000"));
        assert_eq!(
            r.headers.get("To"),
            Some("<sip:34020000002000000001@3402000000>")
        );
        assert!(addressing_findings(&r, ID).is_empty());
        // Everything else is as received.
        assert_eq!(r.headers.get("From"), m.headers.get("From"));
        assert_eq!(r.body, m.body);
    }

    #[test]
    fn responses_and_odd_uris_are_left_alone() {
        let resp = SipMessage::parse(
            b"SIP/2.0 200 OK\r\nTo: <sip:3402000000@3402000000>\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap()
        .message;
        assert!(addressing_findings(&resp, ID).is_empty());
        assert!(recover_addressing(&resp, ID).is_none());
        assert_eq!(
            replace_user("<SIP:3402000000@h>;tag=1", "3402000000", ID).as_deref(),
            Some("<SIP:34020000002000000001@h>;tag=1")
        );
        assert_eq!(replace_user("tel:3402000000", "3402000000", ID), None);
        assert_eq!(replace_user("sip:x@h", "3402000000", ID), None);
    }
}
