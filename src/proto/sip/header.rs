//! Typed views of the SIP header values the harness asserts on
//! (RFC 3261 §19.1 SIP-URI, §20.10 From/To name-addr, §20.16 CSeq, §20.42 Via,
//! §25.1 auth-params). Each view parses leniently from the raw header text
//! and returns `None` when the value is not of that shape.

use std::fmt;

/// `sip:user@host:port;params` (RFC 3261 §19.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl SipUri {
    pub fn parse(s: &str) -> Option<SipUri> {
        let s = s.trim();
        let (scheme, rest) = s.split_once(':')?;
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return None;
        }
        let (rest, _headers) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parts = rest.split(';');
        let addr = parts.next()?;
        let params = parse_params(parts);
        let (user, hostport) = match addr.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or(u).to_string()), h),
            None => (None, addr),
        };
        let (host, port) = split_host_port(hostport)?;
        Some(SipUri {
            scheme: scheme.to_string(),
            user,
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None if !s.is_empty() => Some((s.to_string(), None)),
        None => None,
    }
}

fn parse_params<'a>(it: impl Iterator<Item = &'a str>) -> Vec<(String, Option<String>)> {
    it.filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (p.trim().to_string(), None),
        })
        .collect()
}

fn find_param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// A From / To / Contact value: `"Name" <sip:...>;tag=x` or `sip:...;tag=x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: SipUri,
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn parse(s: &str) -> Option<NameAddr> {
        let s = s.trim();
        if let Some(lt) = s.find('<') {
            let gt = s[lt..].find('>')? + lt;
            let display = s[..lt].trim().trim_matches('"').to_string();
            let uri = SipUri::parse(&s[lt + 1..gt])?;
            let params = parse_params(s[gt + 1..].split(';'));
            Some(NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri,
                params,
            })
        } else {
            // addr-spec form: header params follow the URI (RFC 3261 §20.10).
            let mut parts = s.split(';');
            let uri = SipUri::parse(parts.next()?)?;
            Some(NameAddr {
                display: None,
                uri,
                params: parse_params(parts),
            })
        }
    }
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag")
    }
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }
}

/// `CSeq: 2 REGISTER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: String,
}

impl CSeq {
    pub fn parse(s: &str) -> Option<CSeq> {
        let mut it = s.split_whitespace();
        let seq = it.next()?.parse().ok()?;
        let method = it.next()?.to_string();
        if it.next().is_some() {
            return None;
        }
        Some(CSeq { seq, method })
    }
}

/// `Via: SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(s: &str) -> Option<Via> {
        // Only the first via-parm of a comma-joined value.
        let s = s.split(',').next()?.trim();
        let (proto, rest) = s.split_once(char::is_whitespace)?;
        let transport = proto.rsplit('/').next()?.to_string();
        let mut parts = rest.trim().split(';');
        let (host, port) = split_host_port(parts.next()?.trim())?;
        Some(Via {
            transport,
            host,
            port,
            params: parse_params(parts),
        })
    }
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch")
    }
    /// The `branch` parameter of the first via-parm of a Via value, read
    /// in place: what `Via::parse(s)?.branch()` gives for a well-formed
    /// value, without building the Via. Matching a response to its
    /// transaction needs only this.
    pub fn branch_in(s: &str) -> Option<&str> {
        let s = s.split(',').next()?.trim();
        let (_proto, rest) = s.split_once(char::is_whitespace)?;
        rest.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
        })
    }
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }
}

/// `Digest realm="x", nonce="y", algorithm=MD5` (RFC 3261 §25.1 challenge /
/// credentials; RFC 7616 for SHA-256). Parameter names are matched
/// case-insensitively, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    pub fn parse(s: &str) -> Option<AuthParams> {
        let s = s.trim();
        let (scheme, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        if scheme.is_empty() {
            return None;
        }
        // A digest challenge or answer carries four to ten parameters.
        let mut params = Vec::with_capacity(8);
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let eq = rest.find('=')?;
            let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
            let after = rest[eq + 1..].trim_start();
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                // The closing quote is the first one not escaped by a
                // backslash; only a value that holds a backslash needs
                // unescaping.
                let b = q.as_bytes();
                let mut at = 0;
                let mut escapes = false;
                let end = loop {
                    let k = at + memchr::memchr2(b'"', b'\\', &b[at..])?;
                    if b[k] == b'"' {
                        break k;
                    }
                    escapes = true;
                    // A backslash takes the byte after it, whatever it is.
                    at = k + 2;
                    if at > b.len() {
                        return None;
                    }
                };
                let raw = &q[..end];
                let value = if escapes {
                    raw.replace("\\\"", "\"")
                } else {
                    raw.to_string()
                };
                (value, &q[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            if name.is_empty() {
                return None;
            }
            params.push((name, value));
            rest = next.trim_start().trim_start_matches(',').trim_start();
        }
        Some(AuthParams {
            scheme: scheme.to_string(),
            params,
        })
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_branch_read_in_place_is_the_parsed_via_branch() {
        for v in [
            "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK776",
            "SIP/2.0/UDP 10.0.0.1:5060;BRANCH = z9hG4bKabc ;received=1.2.3.4",
            "SIP/2.0/TCP [::1]:5061;branch=z9hG4bK1, SIP/2.0/UDP h;branch=z9hG4bK2",
            "SIP/2.0/UDP 10.0.0.1:5060;rport",
            "SIP/2.0/UDP 10.0.0.1;branch",
        ] {
            let parsed = Via::parse(v).and_then(|p| p.branch().map(str::to_string));
            let fast = Via::branch_in(v).map(str::to_string);
            if parsed.as_deref() == Some("") {
                // A valueless `branch` names no transaction either way.
                assert_eq!(fast, None, "{v}");
            } else {
                assert_eq!(fast, parsed, "{v}");
            }
        }
        assert_eq!(Via::branch_in("garbage"), None);
    }

    use super::*;

    #[test]
    fn name_addr_forms() {
        let n =
            NameAddr::parse("<sip:130909113319427420@10.64.49.218:7100>;tag=382068091").unwrap();
        assert_eq!(n.uri.user.as_deref(), Some("130909113319427420"));
        assert_eq!(n.uri.port, Some(7100));
        assert_eq!(n.tag(), Some("382068091"));
        let n = NameAddr::parse("\"cam\" <sip:34020000001320000001@3402000000>").unwrap();
        assert_eq!(n.display.as_deref(), Some("cam"));
        assert_eq!(n.uri.host, "3402000000");
        let n = NameAddr::parse("sip:a@[::1]:5060;tag=9").unwrap();
        assert_eq!(n.uri.host, "::1");
        assert_eq!(n.tag(), Some("9"));
        assert!(NameAddr::parse("garbage").is_none());
    }

    #[test]
    fn via_and_cseq() {
        let v = Via::parse("SIP/2.0/UDP 10.64.49.218:7100;rport;branch=z9hG4bK4162288924").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("z9hG4bK4162288924"));
        assert_eq!(v.param("rport"), Some(""));
        assert_eq!(CSeq::parse("2 REGISTER").unwrap().seq, 2);
        assert!(CSeq::parse("x REGISTER").is_none());
    }

    #[test]
    fn auth_params_from_spec() {
        let a = AuthParams::parse(
            "Digest realm=\"hik\", nonce=\"a8afe6fcbee6331d89d3eb0d3d19ce39\", opaque=\"a853e4f25298413f9bf3a9aa6767857d\", algorithm=MD5",
        )
        .unwrap();
        assert_eq!(a.scheme, "Digest");
        assert_eq!(a.get("REALM"), Some("hik"));
        assert_eq!(a.get("algorithm"), Some("MD5"));
        let a = AuthParams::parse("Digest qop=\"auth,auth-int\",nonce=\"a,b\"").unwrap();
        assert_eq!(a.get("qop"), Some("auth,auth-int"));
        assert_eq!(a.get("nonce"), Some("a,b"));
    }

    #[test]
    fn quoted_auth_values_end_at_the_first_unescaped_quote() {
        let a =
            AuthParams::parse(r#"Digest realm="a \"b\" c", nonce="x\\", opaque="é\"""#).unwrap();
        assert_eq!(a.get("realm"), Some(r#"a "b" c"#));
        // An escaped backslash is left as it was written; only \" is undone.
        assert_eq!(a.get("nonce"), Some(r"x\\"));
        assert_eq!(a.get("opaque"), Some(r#"é""#));
        for broken in [
            r#"Digest realm="open"#,
            r#"Digest realm="ends in a backslash\"#,
            r#"Digest realm="escaped close\""#,
        ] {
            assert!(AuthParams::parse(broken).is_none(), "{broken}");
        }
    }
}
