//! The JSON `msg` of DevAppCmd, DevIpCamCmd and DevEventCmd (§5.2.9-5.2.12).
//!
//! The spec's own examples are not JSON: §5.2.9 writes `"msgSession":
//! 0x12345678`, §5.2.9.17 leaves trailing commas, §5.2.12 leaves out
//! commas between members. [`parse`] reads hex numbers and trailing
//! commas (each a `hedgw.json-lenient` warning) and gives up on the rest
//! (`hedgw.json-invalid`).

use serde_json::Value;

use super::FindingCode;
use crate::finding::Finding;

/// Nesting and size bounds for a `msg` read from the wire.
const MAX_JSON: usize = 256 * 1024;

/// A `msg` read leniently.
#[derive(Debug, Clone, Default)]
pub struct JsonMsg {
    pub value: Option<Value>,
    pub findings: Vec<Finding>,
}

/// Read a `msg` string; `clause` is the section its message comes from.
pub fn parse(text: &str, clause: &'static str) -> JsonMsg {
    let mut findings = Vec::new();
    if text.len() > MAX_JSON {
        findings.push(FindingCode::JsonInvalid.error(
            clause,
            format!(
                "msg is {} bytes, over the {MAX_JSON}-byte limit; not read",
                text.len()
            ),
        ));
        return JsonMsg {
            value: None,
            findings,
        };
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return JsonMsg {
            value: Some(v),
            findings,
        };
    }
    let (fixed, hex, commas) = normalize(text);
    match serde_json::from_str::<Value>(&fixed) {
        Ok(v) => {
            let mut what = Vec::new();
            if hex > 0 {
                what.push(format!("{hex} hexadecimal number(s)"));
            }
            if commas > 0 {
                what.push(format!("{commas} trailing comma(s)"));
            }
            findings.push(FindingCode::JsonLenient.warning(
                clause,
                format!(
                    "msg is not JSON as written: {} (read leniently)",
                    what.join(", ")
                ),
            ));
            JsonMsg {
                value: Some(v),
                findings,
            }
        }
        Err(e) => {
            findings.push(
                FindingCode::JsonInvalid
                    .error(clause, format!("msg is not JSON: {e}"))
                    .with_bytes(text.as_bytes()[..text.len().min(256)].to_vec()),
            );
            JsonMsg {
                value: None,
                findings,
            }
        }
    }
}

/// Hex numbers to decimal and trailing commas removed, outside strings;
/// with how many of each.
fn normalize(text: &str) -> (String, usize, usize) {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut hex, mut commas) = (0, 0);
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' && i + 1 < b.len() {
                // The escaped character may be multi-byte.
                out.push('\\');
                i += 1;
                let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                out.push(ch);
                i += ch.len_utf8();
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                out.push('"');
                i += 1;
            }
            b'0' if matches!(b.get(i + 1), Some(b'x' | b'X'))
                && !b
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p.is_ascii_alphanumeric()) =>
            {
                let start = i + 2;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_hexdigit() {
                    end += 1;
                }
                match u64::from_str_radix(&text[start..end], 16) {
                    Ok(v) if end > start => {
                        out.push_str(&v.to_string());
                        hex += 1;
                        i = end;
                    }
                    _ => {
                        out.push('0');
                        i += 1;
                    }
                }
            }
            b',' => {
                let next = b[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
                if matches!(next, Some(b'}' | b']')) {
                    commas += 1;
                } else {
                    out.push(',');
                }
                i += 1;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    (out, hex, commas)
}

/// The value at `path` (`msgContent.subRequest`, `msgContent.responseParams[0].ssid`)
/// as text: strings as they are, other values as JSON.
pub fn lookup(v: &Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.strip_suffix(']')?.parse::<usize>().ok()),
            None => (part, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(match cur {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAUSE: &str = "hemu §5.2.9";

    #[test]
    fn the_spec_s_hex_example_reads_with_a_warning() {
        let text = r#"{ "msgSession": 0x12345678, "msgSequence": 0, "msgTimeStamp": 1381313133,
            "msgCategory": "camera", "msgContent": { "request": 0x0700, "subRequest": 0x0010,
            "requestParams": { }, } }"#;
        let j = parse(text, CLAUSE);
        let v = j.value.unwrap();
        assert_eq!(lookup(&v, "msgContent.request").as_deref(), Some("1792"));
        assert_eq!(lookup(&v, "msgContent.subRequest").as_deref(), Some("16"));
        assert_eq!(lookup(&v, "msgSession").as_deref(), Some("305419896"));
        assert_eq!(j.findings.len(), 1);
        assert_eq!(j.findings[0].code, "hedgw.json-lenient");
        assert!(j.findings[0].message.contains("3 hexadecimal"));
        assert!(j.findings[0].message.contains("1 trailing"));
    }

    #[test]
    fn strings_are_left_alone_and_arrays_indexed() {
        let j = parse(
            r#"{"msgContent":{"responseParams":[{"ssid":"0x12, ]"}]}}"#,
            CLAUSE,
        );
        assert!(j.findings.is_empty());
        let v = j.value.unwrap();
        assert_eq!(
            lookup(&v, "msgContent.responseParams[0].ssid").as_deref(),
            Some("0x12, ]")
        );
        assert_eq!(lookup(&v, "msgContent.responseParams[1].ssid"), None);
    }

    #[test]
    fn not_json_is_an_error_finding() {
        let j = parse("{\"a\": 1 \"b\": 2}", CLAUSE);
        assert!(j.value.is_none());
        assert_eq!(j.findings[0].code, "hedgw.json-invalid");
        assert_eq!(j.findings[0].severity, crate::finding::Severity::Error);
    }
}
