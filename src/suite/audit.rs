//! The rules every message the device under test sends is held to, whatever
//! the step that receives it checks: SIP framing and well-formedness, the
//! top Via against the connection's transport, the From tag of a request
//! and the To tag of a response, the MANSCDP Content-Type and body, SDP
//! bodies, and the GB/T 28181 codes in From and To.
//!
//! [`audit`] is pure: bytes and the transport in, findings out. The runner
//! calls it once for each distinct message it receives, attaches the
//! findings to the case, and fails the step a message arrived in on an
//! error-severity finding the suite does not allow.
//!
//! The per-protocol finding types (SIP, MANSCDP, SDP, media session) meet
//! here, in [`Deviation`] and its conversions, and leave as the report's
//! [`FindingOut`].

use crate::finding::{Finding, Severity};
use crate::proto::gb28181::id::GbId;
use crate::proto::gb28181::manscdp::{self, ContentTypeMatch};
use crate::proto::sdp::SessionDescription;
use crate::proto::sip::{NameAddr, SipMessage, Via};
use crate::proto::Transport;
use crate::report::FindingOut;

/// RFC 3261 §8.1.1.7, the rule `sip.via-transport` enforces.
pub const CLAUSE_VIA: &str = "RFC 3261 §8.1.1.7: the Via header field indicates the transport used for the transaction (§18.1.1: sent-protocol names it)";
/// RFC 3261 §8.2.6.2, the rule `sip.to-tag-missing` enforces.
pub const CLAUSE_TO_TAG: &str = "RFC 3261 §8.2.6.2: if a request contained no To tag, the UAS core MUST add a tag to the To header field in the response (except 100 Trying)";
/// RFC 3261 §8.1.1.3, the rule `sip.from-tag-missing` enforces.
pub const CLAUSE_FROM_TAG: &str =
    "RFC 3261 §8.1.1.3: the From field MUST contain a new \"tag\" parameter, chosen by the UAC";
/// RFC 3261 §20.14 / §18.3, for a missing Content-Length on a stream.
pub const CLAUSE_CONTENT_LENGTH_STREAM: &str =
    "RFC 3261 §18.3: Content-Length MUST be used with stream oriented transports";
/// The SIP URI user part is the 20-digit national code.
pub const CLAUSE_SIP_ID: &str = "GB/T 28181 编码规则: SIP URI 的 user 部分为 20 位统一编码 (deviceIDType); the standard's own message samples use shorter codes, so this is a warning";

/// One rule a message broke: the shape every protocol's finding is turned
/// into before it reaches the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    /// Stable, namespaced code (`sip.via-transport`).
    pub code: String,
    pub severity: Severity,
    /// The clause the rule comes from.
    pub clause: String,
    /// The field at fault (`Via`, `To`, `xml.SN`), when one is.
    pub field: String,
    /// What the rule asks for; empty when the finding's message says it.
    pub expected: String,
    /// What the message had; empty when the finding's message says it.
    pub actual: String,
    /// Free text from the decoder, used when `expected` is empty.
    pub detail: String,
}

impl Deviation {
    fn rule(
        code: &str,
        severity: Severity,
        clause: &str,
        field: &str,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Deviation {
        Deviation {
            code: code.into(),
            severity,
            clause: clause.into(),
            field: field.into(),
            expected: expected.into(),
            actual: actual.into(),
            detail: String::new(),
        }
    }

    /// The finding's text: `field: expected X, got Y`, or the decoder's words.
    pub fn message(&self) -> String {
        if self.expected.is_empty() {
            if self.field.is_empty() {
                self.detail.clone()
            } else {
                format!("{}: {}", self.field, self.detail)
            }
        } else {
            format!(
                "{}: expected {}, got {}",
                self.field, self.expected, self.actual
            )
        }
    }

    /// The report's form.
    pub fn to_finding(&self) -> FindingOut {
        FindingOut {
            code: self.code.clone(),
            severity: self.severity,
            clause: self.clause.clone(),
            message: self.message(),
            evidence: None,
        }
    }
}

impl From<&Finding> for Deviation {
    /// Any protocol's finding (SIP framing, MANSCDP, session rules), with
    /// the element path of its evidence as the field at fault.
    fn from(f: &Finding) -> Deviation {
        Deviation {
            code: f.code.into(),
            severity: f.severity,
            clause: f.clause.to_string(),
            field: f.path().to_string(),
            expected: String::new(),
            actual: String::new(),
            detail: match f.line() {
                Some(l) => format!("SDP line {l}: {}", f.message),
                None => f.message.clone(),
            },
        }
    }
}

/// The findings the lenient reading recovers from: the message is still
/// read as meant (and its case judged on the rest), the finding fails its
/// case. A strict run does not recover them (`--strict`): the message is
/// judged as written.
pub const RECOVERED: &[&str] = &[
    crate::proto::sip::quirks::REQUEST_URI_DOMAIN,
    crate::proto::sip::quirks::TO_DOMAIN,
    "gb.sdp.y-not-10-digits",
];

/// Whether `code` (with or without a media session's `session.` prefix) is
/// one the lenient reading recovers from.
pub fn is_recovered(code: &str) -> bool {
    let code = code.strip_prefix("session.").unwrap_or(code);
    RECOVERED.contains(&code)
}

/// The rules on a request the DUT addressed to camcert, whose own GB/T 28181
/// ID is `addressee`: the Request-URI and To name the ID, not its domain.
pub fn audit_addressee(raw: &[u8], addressee: &str) -> Vec<Deviation> {
    let Ok(p) = SipMessage::parse(raw) else {
        return Vec::new();
    };
    crate::proto::sip::quirks::addressing_findings(&p.message, addressee)
        .iter()
        .map(|f| {
            let mut d = Deviation::from(f);
            // The field is named in the message already.
            d.field = String::new();
            d
        })
        .collect()
}

/// Is the body XML (a MANSCDP body whatever its Content-Type says)?
fn looks_like_xml(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

/// Every rule `raw`, one whole message the DUT sent over `transport`,
/// breaks. Bytes that are not SIP at all give one `sip.unparseable`.
pub fn audit(raw: &[u8], transport: Transport) -> Vec<Deviation> {
    let parsed = match SipMessage::parse(raw) {
        Ok(p) => p,
        Err(e) => {
            return vec![Deviation {
                code: "sip.unparseable".into(),
                severity: Severity::Error,
                clause: "RFC 3261 §7: a SIP message is a start line, headers, an empty line and an optional body".into(),
                field: String::new(),
                expected: String::new(),
                actual: String::new(),
                detail: format!("{} bytes that are not a SIP message: {e}", raw.len()),
            }]
        }
    };
    let mut out = Vec::new();
    for f in &parsed.findings {
        let mut d = Deviation::from(f);
        if transport == Transport::Tcp && f.code == "sip.no-content-length" {
            d.code = "sip.no-content-length-on-stream".into();
            d.clause = CLAUSE_CONTENT_LENGTH_STREAM.into();
        }
        out.push(d);
    }
    audit_message(&parsed.message, transport, &mut out);
    out
}

/// The rules on a decoded message (everything but framing).
pub fn audit_message(m: &SipMessage, transport: Transport, out: &mut Vec<Deviation>) {
    if m.is_request() {
        // RFC 3261 §8.1.1.7: the top Via names the transport the request
        // travels over.
        if let Some(v) = m.headers.get("Via").and_then(Via::parse) {
            let want = transport.via_name();
            if !v.transport.eq_ignore_ascii_case(want) {
                out.push(Deviation::rule(
                    "sip.via-transport",
                    Severity::Error,
                    CLAUSE_VIA,
                    "Via",
                    format!("SIP/2.0/{want} (the request came over {want})"),
                    format!("SIP/2.0/{}", v.transport),
                ));
            }
        }
        // RFC 3261 §8.1.1.3: every request's From carries a tag.
        if let Some(from) = m.headers.get("From") {
            if NameAddr::parse(from).is_some_and(|n| n.tag().is_none()) {
                out.push(Deviation::rule(
                    "sip.from-tag-missing",
                    Severity::Error,
                    CLAUSE_FROM_TAG,
                    "From",
                    "a tag parameter",
                    format!("none ({from})"),
                ));
            }
        }
        for h in ["From", "To"] {
            let Some(n) = m.headers.get(h).and_then(NameAddr::parse) else {
                continue;
            };
            let user = n.uri.user.clone().unwrap_or_default();
            if GbId::parse(&user).is_err() {
                out.push(Deviation::rule(
                    "gb.sip-uri-id",
                    Severity::Warning,
                    CLAUSE_SIP_ID,
                    &format!("{h} user"),
                    "a 20-digit GB/T 28181 code",
                    if user.is_empty() {
                        "none".to_string()
                    } else {
                        format!("{user:?}")
                    },
                ));
            }
        }
    } else if let Some(code) = m.status() {
        // RFC 3261 §8.2.6.2: a response names the UAS's dialog half with a
        // To tag. An in-dialog request already carried one, so a response
        // without a tag answers a request outside a dialog.
        if code >= 200 {
            if let Some(to) = m.headers.get("To") {
                if NameAddr::parse(to).is_some_and(|n| n.tag().is_none()) {
                    let method = m.cseq().map(|c| c.method).unwrap_or_default();
                    out.push(Deviation::rule(
                        "sip.to-tag-missing",
                        Severity::Error,
                        CLAUSE_TO_TAG,
                        "To",
                        format!("a tag parameter in the {code} to {method}"),
                        format!("none ({to})"),
                    ));
                }
            }
        }
    }
    audit_body(m, out);
}

fn audit_body(m: &SipMessage, out: &mut Vec<Deviation>) {
    if m.body.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let ct = m.headers.get("Content-Type");
    let is_sdp = ct.is_some_and(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/sdp")
    });
    if is_sdp {
        if let Ok(p) = SessionDescription::parse(&m.body) {
            for f in p.findings {
                out.push(Deviation::from(&f));
            }
        }
        return;
    }
    let manscdp_type = ct.map(manscdp::match_content_type);
    let xml = looks_like_xml(&m.body);
    match (&manscdp_type, xml) {
        (None, true) => out.push(Deviation::rule(
            "gb.content-type-missing",
            Severity::Error,
            manscdp::FindingCode::ContentTypeCase.clause(),
            "Content-Type",
            manscdp::CONTENT_TYPE,
            "absent",
        )),
        (Some(ContentTypeMatch::NotManscdp), true) => out.push(Deviation::rule(
            "gb.content-type",
            Severity::Error,
            manscdp::FindingCode::ContentTypeCase.clause(),
            "Content-Type",
            manscdp::CONTENT_TYPE,
            format!("{:?}", ct.unwrap_or_default()),
        )),
        (Some(ContentTypeMatch::Lenient(fs)), _) => {
            out.extend(fs.iter().map(Deviation::from));
        }
        _ => {}
    }
    let is_manscdp = manscdp_type.as_ref().is_some_and(|t| t.is_manscdp());
    if !(is_manscdp || xml) {
        return;
    }
    match manscdp::Message::decode(&m.body) {
        Ok(d) => out.extend(d.findings.iter().map(Deviation::from)),
        Err(e) => out.push(Deviation {
            code: "manscdp.undecodable".into(),
            severity: Severity::Error,
            clause: manscdp::FindingCode::ContentTypeCase.clause().into(),
            field: "body".into(),
            expected: String::new(),
            actual: String::new(),
            detail: format!("the MANSCDP body cannot be read: {e}"),
        }),
    }
}

/// Does finding `f` explain why `field` did not hold on its message? A
/// finding explains a field it names: the header for SIP fields, the
/// element for `xml.*`, the line or attribute for `sdp.*`; a body that
/// could not be read explains every field in it.
pub fn explains(f: &FindingOut, field: &str) -> bool {
    let (root, rest) = field.split_once('.').unwrap_or((field, ""));
    let code = f.code.to_ascii_lowercase();
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let msg_words = words(&f.message);
    match root {
        "from" | "to" | "contact" | "via" | "call_id" | "cseq" => {
            let header = match root {
                "from" => "From",
                "to" => "To",
                "contact" => "Contact",
                "via" => "Via",
                "call_id" => "Call-ID",
                _ => "CSeq",
            };
            let tag = root.replace('_', "-");
            msg_words.iter().any(|w| w == header)
                || code.contains(&format!(".{tag}-"))
                || code.ends_with(&format!("-{tag}"))
        }
        "xml" | "xml_count" | "body" => {
            if code == "manscdp.undecodable" || code.starts_with("gb.content-type") {
                return true;
            }
            let leaf = rest
                .rsplit(['/', '@'])
                .next()
                .unwrap_or(rest)
                .split('[')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            !leaf.is_empty()
                && (msg_words.iter().any(|w| w.eq_ignore_ascii_case(&leaf))
                    || code.replace('_', "").contains(&leaf))
        }
        "sdp" => {
            let leaf = rest.rsplit('.').next().unwrap_or(rest).to_ascii_lowercase();
            let line = format!("{leaf}=");
            !leaf.is_empty()
                && (code.contains(&leaf)
                    || f.message.contains(&line)
                    || msg_words.iter().any(|w| w.eq_ignore_ascii_case(&leaf)))
        }
        "uri" => code.contains("request-uri"),
        "content_length" => code.contains("content-length"),
        "content_type" => code.contains("content-type") || code.contains("content_type"),
        _ => false,
    }
}

/// Does the suite's `allow_findings` list cover `code`? An entry ending in
/// `*` is a prefix; `*` alone allows every code.
pub fn allowed(list: &[String], code: &str) -> bool {
    list.iter().any(|a| match a.strip_suffix('*') {
        Some(p) => code.starts_with(p),
        None => a == code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(raw: &str, t: Transport) -> Vec<String> {
        audit(raw.as_bytes(), t)
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    const KEEPALIVE: &str = "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1\r\n\
From: <sip:34020000001320000001@3402000000>;tag=7\r\n\
To: <sip:34020000002000000001@3402000000>\r\n\
Call-ID: c\r\nCSeq: 2 MESSAGE\r\nMax-Forwards: 70\r\n\
Content-Type: Application/MANSCDP+xml\r\nContent-Length: 150\r\n\r\n\
<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n";

    const BODY: &str = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n";

    /// The keepalive with a Content-Length that is right for its body.
    fn keepalive() -> String {
        KEEPALIVE.replace(
            "Content-Length: 150",
            &format!("Content-Length: {}", BODY.len()),
        )
    }

    #[test]
    fn a_clean_keepalive_breaks_nothing() {
        let raw = keepalive();
        let d = audit(raw.as_bytes(), Transport::Udp);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn via_transport_must_match_the_connection() {
        let raw = keepalive();
        let d = audit(raw.as_bytes(), Transport::Tcp);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "sip.via-transport");
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(
            d[0].message(),
            "Via: expected SIP/2.0/TCP (the request came over TCP), got SIP/2.0/UDP"
        );
        assert!(d[0].clause.contains("§8.1.1.7"));
    }

    #[test]
    fn requests_need_a_from_tag_and_responses_a_to_tag() {
        let raw = keepalive().replace(">;tag=7", ">");
        assert_eq!(codes(&raw, Transport::Udp), ["sip.from-tag-missing"]);
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
From: <sip:34020000002000000001@3402000000>;tag=1\r\nTo: <sip:34020000001320000001@3402000000>\r\n\
Call-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
        let d = audit(ok.as_bytes(), Transport::Udp);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "sip.to-tag-missing");
        assert!(d[0]
            .message()
            .starts_with("To: expected a tag parameter in the 200 to MESSAGE, got none (<sip:"));
        assert!(d[0].clause.contains("§8.2.6.2"));
        let trying = ok.replace("200 OK", "100 Trying");
        assert!(audit(trying.as_bytes(), Transport::Udp).is_empty());
    }

    #[test]
    fn manscdp_bodies_need_their_content_type() {
        let raw = keepalive().replace("Content-Type: Application/MANSCDP+xml\r\n", "");
        assert_eq!(codes(&raw, Transport::Udp), ["gb.content-type-missing"]);
        let raw = keepalive().replace("Application/MANSCDP+xml", "text/plain");
        let d = audit(raw.as_bytes(), Transport::Udp);
        assert_eq!(d[0].code, "gb.content-type");
        assert_eq!(
            d[0].message(),
            "Content-Type: expected Application/MANSCDP+xml, got \"text/plain\""
        );
    }

    #[test]
    fn framing_findings_and_garbage_are_errors() {
        let raw = keepalive().replace(&format!("Content-Length: {}\r\n", BODY.len()), "");
        let d = audit(raw.as_bytes(), Transport::Tcp);
        assert!(d
            .iter()
            .any(|d| d.code == "sip.no-content-length-on-stream" && d.severity == Severity::Error));
        let d = audit(b"\x00\x01garbage", Transport::Udp);
        assert_eq!(d[0].code, "sip.unparseable");
    }

    #[test]
    fn short_codes_in_from_are_warnings() {
        let raw = keepalive().replace(
            "From: <sip:34020000001320000001@",
            "From: <sip:130909113319427420@",
        );
        let d = audit(raw.as_bytes(), Transport::Udp);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "gb.sip-uri-id");
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(
            d[0].message(),
            "From user: expected a 20-digit GB/T 28181 code, got \"130909113319427420\""
        );
    }

    #[test]
    fn a_request_to_the_domain_breaks_the_addressee_rule() {
        let id = "34020000002000000001";
        let raw = keepalive();
        assert!(audit_addressee(raw.as_bytes(), id).is_empty());
        let raw = raw.replace("sip:34020000002000000001@", "sip:3402000000@");
        let d = audit_addressee(raw.as_bytes(), id);
        let codes: Vec<&str> = d.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["sip.request-uri-domain", "sip.to-domain"]);
        assert!(d.iter().all(|d| d.severity == Severity::Error));
        assert_eq!(
            d[1].message(),
            "To user of the MESSAGE: expected the server ID 34020000002000000001, got its SIP domain 3402000000"
        );
        // Not this side's domain: nothing.
        assert!(audit_addressee(raw.as_bytes(), "51000000002000000001").is_empty());
        assert!(audit_addressee(b"garbage", id).is_empty());
        // Recovered codes, with or without a media session's prefix.
        assert!(is_recovered("sip.to-domain"));
        assert!(is_recovered("session.gb.sdp.y-not-10-digits"));
        assert!(!is_recovered("sip.via-transport"));
        // A finding on the Request-URI explains a miss on uri.user.
        assert!(explains(&d[0].to_finding(), "uri.user"));
        assert!(explains(&d[1].to_finding(), "to.user"));
    }

    #[test]
    fn findings_explain_the_fields_they_name() {
        let f = |code: &str, message: &str| FindingOut {
            code: code.into(),
            message: message.into(),
            clause: String::new(),
            severity: Severity::Error,
            evidence: None,
        };
        assert!(explains(
            &f("MISSING_SN", "Notify: SN is missing"),
            "xml.SN"
        ));
        assert!(!explains(
            &f("MISSING_SN", "Notify: SN is missing"),
            "xml.CmdType"
        ));
        assert!(explains(
            &f("sip.to-tag-missing", "To: expected a tag"),
            "to.tag"
        ));
        assert!(!explains(
            &f("sip.to-tag-missing", "To: expected a tag"),
            "from.tag"
        ));
        assert!(explains(
            &f("sdp.direction-missing", "no direction attribute"),
            "sdp.direction"
        ));
        assert!(explains(
            &f("manscdp.undecodable", "body: cannot be read"),
            "xml.DeviceList@Num"
        ));
        assert!(allowed(&["sip.*".into()], "sip.via-transport"));
        assert!(allowed(&["*".into()], "gb.content-type"));
        assert!(!allowed(&["sip.via".into()], "sip.via-transport"));
    }
}
