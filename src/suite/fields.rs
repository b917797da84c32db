//! Field paths: how a suite names a part of a received message.
//!
//! | path | value |
//! | --- | --- |
//! | `method`, `status`, `reason`, `uri` | start line |
//! | `uri.user`, `uri.host`, `uri.port` | Request-URI parts |
//! | `from.user` `from.host` `from.port` `from.tag` `from.uri` `from.display` | same for `to`, `contact` |
//! | `call_id`, `cseq`, `cseq.seq`, `cseq.method` | |
//! | `via.transport` `via.host` `via.port` `via.branch` `via.rport` `via.received` | first Via |
//! | `expires` | Expires header, else the Contact `expires` parameter |
//! | `header.NAME` | raw value of the first header NAME (compact forms understood) |
//! | `header_count.NAME` | how many NAME headers there are |
//! | `auth.PARAM` | parameter of `Authorization` (`auth.scheme` for the scheme) |
//! | `challenge.PARAM` | parameter of `WWW-Authenticate` (`challenge.scheme`) |
//! | `body`, `body.length`, `content_length`, `content_type` | |
//! | `body.charset`, `body.declared_encoding` | how a MANSCDP body was read |
//! | `xml.PATH` | MANSCDP element text or attribute: `xml.CmdType`, `xml.DeviceList/Item[0]/Name`, `xml.DeviceList@Num` |
//! | `xml_count.PATH` | how many elements match: `xml_count.DeviceList/Item` |
//! | `sdp.X` | value of the first SDP line `X=` (`sdp.s`, `sdp.y`, `sdp.f`, `sdp.u`, `sdp.t`, `sdp.c`, `sdp.m`) |
//! | `sdp.a.NAME` | value of the first `a=NAME:value` (empty for a flag such as `a=recvonly`) |
//! | `sdp.media`, `sdp.port`, `sdp.proto`, `sdp.formats` | parts of the first `m=` line |
//! | `sdp.direction` | the first of `a=sendrecv`/`sendonly`/`recvonly`/`inactive` |

use crate::proto::gb28181::manscdp;
use crate::proto::gb28181::register::{expires_text, parse_requested_expires};

/// A body as text: UTF-8 when it is, else read as GB18030 (GB2312/GBK bodies).
pub fn decode_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030.decode(b).0.into_owned(),
    }
}
use crate::proto::sip::{AuthParams, NameAddr, SipMessage, SipUri, StartLine, Via};

const ROOTS: &[&str] = &[
    "method",
    "status",
    "reason",
    "uri",
    "from",
    "to",
    "contact",
    "call_id",
    "cseq",
    "via",
    "expires",
    "header",
    "header_count",
    "auth",
    "challenge",
    "body",
    "content_length",
    "content_type",
    "xml",
    "xml_count",
    "sdp",
];

/// Is `path` a path [`resolve`] understands? Run at load time.
pub fn check_path(path: &str) -> Result<(), String> {
    let (root, rest) = path.split_once('.').unwrap_or((path, ""));
    if !ROOTS.contains(&root) {
        return Err(format!(
            "unknown field {root:?}; expected one of {}",
            ROOTS.join(", ")
        ));
    }
    let ok = match root {
        "uri" => matches!(rest, "" | "user" | "host" | "port" | "scheme"),
        "from" | "to" | "contact" => matches!(
            rest,
            "" | "user" | "host" | "port" | "tag" | "uri" | "display"
        ),
        "cseq" => matches!(rest, "" | "seq" | "method"),
        "via" => matches!(
            rest,
            "" | "transport" | "host" | "port" | "branch" | "rport" | "received"
        ),
        "body" => matches!(rest, "" | "length" | "charset" | "declared_encoding"),
        "sdp" => {
            (rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_lowercase()))
                || matches!(rest, "media" | "port" | "proto" | "formats" | "direction")
                || rest.strip_prefix("a.").is_some_and(|n| !n.is_empty())
        }
        "header" | "header_count" | "auth" | "challenge" | "xml" | "xml_count" => !rest.is_empty(),
        _ => rest.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{path:?} is not a field of {root:?}"))
    }
}

fn uri_part(u: &SipUri, part: &str) -> Option<String> {
    match part {
        "" => Some(u.to_string()),
        "user" => u.user.clone(),
        "host" => Some(u.host.clone()),
        "port" => u.port.map(|p| p.to_string()),
        "scheme" => Some(u.scheme.clone()),
        _ => None,
    }
}

/// The value at `path` in `m`, or `None` when the message has no such field.
pub fn resolve(m: &SipMessage, path: &str) -> Option<String> {
    let (root, rest) = path.split_once('.').unwrap_or((path, ""));
    match root {
        "method" => m.method().map(str::to_string),
        "status" => m.status().map(|s| s.to_string()),
        "reason" => match &m.start {
            StartLine::Response { reason, .. } => Some(reason.clone()),
            _ => None,
        },
        "uri" => {
            let u = m.uri()?;
            if rest.is_empty() {
                Some(u.to_string())
            } else {
                uri_part(&SipUri::parse(u)?, rest)
            }
        }
        "from" | "to" | "contact" => {
            let raw = m.headers.get(root)?;
            if rest.is_empty() {
                return Some(raw.to_string());
            }
            let n = NameAddr::parse(raw)?;
            match rest {
                "tag" => n.tag().map(str::to_string),
                "uri" => Some(n.uri.to_string()),
                "display" => n.display.clone(),
                p => uri_part(&n.uri, p),
            }
        }
        "call_id" => m.call_id().map(str::to_string),
        "cseq" => match rest {
            "" => m.headers.get("CSeq").map(str::to_string),
            "seq" => m.cseq().map(|c| c.seq.to_string()),
            _ => m.cseq().map(|c| c.method),
        },
        "via" => {
            let raw = m.headers.get("Via")?;
            if rest.is_empty() {
                return Some(raw.to_string());
            }
            let v = Via::parse(raw)?;
            match rest {
                "transport" => Some(v.transport.clone()),
                "host" => Some(v.host.clone()),
                "port" => v.port.map(|p| p.to_string()),
                p => v.param(p).map(str::to_string),
            }
        }
        // A value that is not a number is shown as written, never as absent.
        "expires" => match parse_requested_expires(m) {
            Ok(e) => e.map(|e| e.to_string()),
            Err(_) => expires_text(m),
        },
        "header" => m.headers.get(rest).map(str::to_string),
        "header_count" => Some(m.headers.get_all(rest).count().to_string()),
        "auth" | "challenge" => {
            let h = if root == "auth" {
                "Authorization"
            } else {
                "WWW-Authenticate"
            };
            let p = AuthParams::parse(m.headers.get(h)?)?;
            if rest == "scheme" {
                Some(p.scheme.clone())
            } else {
                p.get(rest).map(str::to_string)
            }
        }
        "body" => match rest {
            "length" => Some(m.body.len().to_string()),
            "charset" => manscdp::Message::decode(&m.body)
                .ok()
                .map(|d| d.charset.label().to_string()),
            "declared_encoding" => manscdp::Message::decode(&m.body)
                .ok()
                .and_then(|d| d.declared_encoding),
            _ => Some(decode_text(&m.body)),
        },
        "xml" => {
            let d = manscdp::Message::decode(&m.body).ok()?;
            // A leading root name is optional (`xml.Notify/SN` = `xml.SN`),
            // but only as a whole segment: `NotifyType` is a child of `Notify`.
            let path = match rest.strip_prefix(d.tree.name.as_str()) {
                Some("") => "",
                Some(r) if r.starts_with('/') || r.starts_with('@') => r.trim_start_matches('/'),
                _ => rest,
            };
            d.get(path)
        }
        "xml_count" => {
            let d = manscdp::Message::decode(&m.body).ok()?;
            Some(d.count(rest).to_string())
        }
        "sdp" => sdp_field(&decode_text(&m.body), rest),
        "content_length" => m.headers.get("Content-Length").map(str::to_string),
        "content_type" => m.headers.get("Content-Type").map(str::to_string),
        _ => None,
    }
}

/// A field of an SDP body read line by line, so that a malformed offer can
/// still be checked.
fn sdp_field(body: &str, path: &str) -> Option<String> {
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
    };
    let m_line = || value("m");
    match path {
        "media" => m_line()?.split_whitespace().next().map(str::to_string),
        "port" => m_line()?.split_whitespace().nth(1).map(str::to_string),
        "proto" => m_line()?.split_whitespace().nth(2).map(str::to_string),
        "formats" => Some(
            m_line()?
                .split_whitespace()
                .skip(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "direction" => lines.iter().find_map(|l| {
            let a = l.strip_prefix("a=")?;
            ["sendrecv", "sendonly", "recvonly", "inactive"]
                .contains(&a)
                .then(|| a.to_string())
        }),
        p => match p.strip_prefix("a.") {
            Some(name) => lines.iter().find_map(|l| {
                let a = l.strip_prefix("a=")?;
                match a.split_once(':') {
                    Some((n, v)) if n == name => Some(v.to_string()),
                    None if a == name => Some(String::new()),
                    _ => None,
                }
            }),
            None => value(p),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_register_fields() {
        let raw = b"REGISTER sip:34020000002000000001@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1\r\n\
From: <sip:34020000001320000001@3402000000>;tag=7\r\n\
To: <sip:34020000001320000001@3402000000>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\n\
Authorization: Digest username=\"34020000001320000001\", realm=\"3402000000\", nonce=\"n\", uri=\"sip:x\", response=\"r\"\r\n\
Expires: 3600\r\nContent-Length: 0\r\n\r\n";
        let m = SipMessage::parse(raw).unwrap().message;
        assert_eq!(
            resolve(&m, "uri.user").as_deref(),
            Some("34020000002000000001")
        );
        assert_eq!(resolve(&m, "from.tag").as_deref(), Some("7"));
        assert_eq!(resolve(&m, "to.tag"), None);
        assert_eq!(resolve(&m, "via.branch").as_deref(), Some("z9hG4bK1"));
        assert_eq!(resolve(&m, "cseq.seq").as_deref(), Some("2"));
        assert_eq!(resolve(&m, "auth.realm").as_deref(), Some("3402000000"));
        assert_eq!(resolve(&m, "challenge.realm"), None);
        assert_eq!(resolve(&m, "expires").as_deref(), Some("3600"));
        let odd = String::from_utf8_lossy(raw).replace("Expires: 3600", "Expires: 36OO");
        let odd = SipMessage::parse(odd.as_bytes()).unwrap().message;
        assert_eq!(resolve(&odd, "expires").as_deref(), Some("36OO"));
        assert_eq!(resolve(&m, "header_count.Via").as_deref(), Some("1"));
        let notify = b"MESSAGE sip:x@y SIP/2.0\r\nContent-Length: 96\r\n\r\n\
<?xml version=\"1.0\"?><Notify><CmdType>MediaStatus</CmdType><NotifyType>121</NotifyType></Notify>";
        let n = SipMessage::parse(notify).unwrap().message;
        assert_eq!(resolve(&n, "xml.NotifyType").as_deref(), Some("121"));
        assert_eq!(resolve(&n, "xml.Notify/NotifyType").as_deref(), Some("121"));
        assert_eq!(resolve(&n, "xml.CmdType").as_deref(), Some("MediaStatus"));
        let body =
            "v=0\r\ns=Play\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 6000 TCP/RTP/AVP 96 98\r\n\
a=recvonly\r\na=setup:passive\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n";
        let sdp = format!(
            "INVITE sip:x@y SIP/2.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let i = SipMessage::parse(sdp.as_bytes()).unwrap().message;
        assert_eq!(resolve(&i, "sdp.s").as_deref(), Some("Play"));
        assert_eq!(resolve(&i, "sdp.y").as_deref(), Some("0100000001"));
        assert_eq!(resolve(&i, "sdp.port").as_deref(), Some("6000"));
        assert_eq!(resolve(&i, "sdp.proto").as_deref(), Some("TCP/RTP/AVP"));
        assert_eq!(resolve(&i, "sdp.formats").as_deref(), Some("96 98"));
        assert_eq!(resolve(&i, "sdp.a.setup").as_deref(), Some("passive"));
        assert_eq!(resolve(&i, "sdp.a.rtpmap").as_deref(), Some("96 PS/90000"));
        assert_eq!(resolve(&i, "sdp.a.recvonly").as_deref(), Some(""));
        assert_eq!(resolve(&i, "sdp.direction").as_deref(), Some("recvonly"));
        assert_eq!(resolve(&i, "sdp.f"), None);
        assert!(check_path("sdp.a.setup").is_ok());
        assert!(check_path("sdp.yy").is_err());
        assert!(check_path("from.tag").is_ok());
        assert!(check_path("frm.tag").is_err());
        assert!(check_path("cseq.nope").is_err());
    }
}
