//! Building GB/T 28181 requests other than REGISTER: MESSAGE (MANSCDP
//! bodies, §保活, §设备查询, §设备控制, §报警事件通知), SUBSCRIBE/NOTIFY
//! (§订阅与取订), and in-dialog requests. The state machines and the suite
//! runner build them here so every side writes them the same way, e.g.
//! the §保活 example:
//!
//! ```text
//! MESSAGE sip:130909115229300920@10.64.49.44:7100 SIP/2.0
//! Via: SIP/2.0/UDP 10.64.49.218:7100;rport;branch=z9hG4bK2672759896
//! From: <sip:130909113319427420@10.64.49.218:7100>;tag=308835751
//! To: <sip:130909115229300920@10.64.49.44:7100>
//! Call-ID: 63810466
//! CSeq: 20 MESSAGE
//! Content-Type: Application/MANSCDP+xml
//! Max-Forwards: 70
//! ```

use std::net::SocketAddr;

use super::register::host_port;
use crate::proto::sip::SipMessage;
use crate::proto::Transport;

/// Everything a request line and its mandatory headers need.
#[derive(Debug, Clone)]
pub struct RequestParams<'a> {
    pub method: &'a str,
    /// The sender's 20-digit ID (From user).
    pub from_id: &'a str,
    /// The receiver's 20-digit ID (To and Request-URI user).
    pub to_id: &'a str,
    /// SIP domain for From/To hosts.
    pub domain: &'a str,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub transport: Transport,
    pub call_id: &'a str,
    pub from_tag: &'a str,
    /// The remote tag, for requests inside a dialog.
    pub to_tag: Option<&'a str>,
    pub cseq: u32,
    pub branch: &'a str,
    pub user_agent: &'a str,
}

/// Build a request with Via, From, To, Call-ID, CSeq, Max-Forwards and
/// User-Agent; add the body with [`with_body`].
pub fn build_request(p: &RequestParams<'_>) -> SipMessage {
    let mut m = SipMessage::request(p.method, format!("sip:{}@{}", p.to_id, host_port(p.remote)));
    let h = &mut m.headers;
    h.push(
        "Via",
        format!(
            "SIP/2.0/{} {};rport;branch={}",
            p.transport.via_name(),
            host_port(p.local),
            p.branch
        ),
    );
    h.push(
        "From",
        format!("<sip:{}@{}>;tag={}", p.from_id, p.domain, p.from_tag),
    );
    match p.to_tag {
        Some(t) => h.push("To", format!("<sip:{}@{}>;tag={t}", p.to_id, p.domain)),
        None => h.push("To", format!("<sip:{}@{}>", p.to_id, p.domain)),
    }
    h.push("Call-ID", p.call_id);
    h.push("CSeq", format!("{} {}", p.cseq, p.method));
    h.push("Max-Forwards", "70");
    h.push("User-Agent", p.user_agent);
    m
}

/// Attach `body` with `content_type` and set Content-Length.
pub fn with_body(mut m: SipMessage, content_type: &str, body: Vec<u8>) -> SipMessage {
    m.headers.set("Content-Type", content_type);
    m.body = body;
    m.with_content_length()
}

/// A MESSAGE carrying a MANSCDP body.
pub fn manscdp_message(p: &RequestParams<'_>, body: Vec<u8>) -> SipMessage {
    debug_assert_eq!(p.method, "MESSAGE");
    with_body(build_request(p), super::manscdp::CONTENT_TYPE, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gb28181::manscdp::{Charset, Message, ResultType};

    #[test]
    fn keepalive_message_matches_the_spec_shape() {
        let body = Message::keepalive(2749, "34020000001320000001", ResultType::Ok)
            .encode(Charset::Gb2312);
        let m = manscdp_message(
            &RequestParams {
                method: "MESSAGE",
                from_id: "34020000001320000001",
                to_id: "34020000002000000001",
                domain: "3402000000",
                local: "10.64.49.218:7100".parse().unwrap(),
                remote: "10.64.49.44:7100".parse().unwrap(),
                transport: Transport::Udp,
                call_id: "63810466",
                from_tag: "308835751",
                to_tag: None,
                cseq: 20,
                branch: "z9hG4bK2672759896",
                user_agent: "camcert",
            },
            body.clone(),
        );
        let p = SipMessage::parse(&m.to_bytes()).unwrap();
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        assert_eq!(
            p.message.uri(),
            Some("sip:34020000002000000001@10.64.49.44:7100")
        );
        assert_eq!(
            p.message.headers.get("Content-Type"),
            Some("Application/MANSCDP+xml")
        );
        assert_eq!(p.message.body, body);
        let d = Message::decode(&p.message.body).unwrap();
        assert_eq!(d.message.sn, Some(2749));
    }
}
