//! Golden messages: a SIP message as canonical text (start line, one header
//! a line, the body as text) with the values that change from run to run
//! replaced by placeholders, and a unified diff of two such texts. A suite's
//! `expect: { golden: { file, redact } }` compares the message it took with
//! a committed file this way.
//!
//! Redaction is scoped: a field path (the suite's field language, see
//! `suite::fields`) names where its value is replaced. `call_id` touches
//! the Call-ID header only, `from.tag` the From header, `xml.SN` the text of
//! `SN` elements in the body, `sdp.y` the `y=` line, and so on; the value
//! becomes `<PATH>`. The two ends' addresses (`IP:PORT`) are replaced
//! everywhere, before the fields, by the names the caller gives them. When a
//! redaction changed the body, Content-Length becomes `<length>`.

use std::net::SocketAddr;

use crate::proto::sip::message::canonical_name;
use crate::proto::sip::{SipMessage, StartLine};
use crate::suite::fields::{decode_text, resolve};

/// Lines beyond which the diff compares the changed middle as one block
/// (the table of a line-by-line comparison grows as the product).
const MAX_DIFF_CELLS: usize = 4_000_000;

/// Whether `path` is a field [`canonical`] can redact; `Err` says why not.
pub fn check_redact_path(path: &str) -> Result<(), String> {
    crate::suite::fields::check_path(path)?;
    let (root, rest) = path.split_once('.').unwrap_or((path, ""));
    match root {
        "xml_count" | "header_count" => Err(format!(
            "{path:?} is a count, not a value in the message; it cannot be redacted"
        )),
        "body" if !rest.is_empty() => Err(format!(
            "{path:?} is not text of the message; redact `body` (the whole body) or an `xml.`/`sdp.` field"
        )),
        _ => Ok(()),
    }
}

/// The header a field path lives in, for the roots that have one.
fn header_of(root: &str) -> Option<&'static str> {
    Some(match root {
        "from" => "From",
        "to" => "To",
        "contact" => "Contact",
        "call_id" => "Call-ID",
        "cseq" => "CSeq",
        "via" => "Via",
        "auth" => "Authorization",
        "challenge" => "WWW-Authenticate",
        "content_type" => "Content-Type",
        "content_length" => "Content-Length",
        "expires" => "Expires",
        _ => return None,
    })
}

fn same_header(a: &str, b: &str) -> bool {
    canonical_name(a.trim()).eq_ignore_ascii_case(canonical_name(b))
}

/// `s` with every `value` replaced by `with` (nothing when `value` is empty).
fn replace_value(s: &str, value: &str, with: &str) -> String {
    if value.is_empty() {
        s.to_string()
    } else {
        s.replace(value, with)
    }
}

/// The text of every element named `name` (any case) holding `value`
/// (surrounding blanks allowed) replaced by `with`.
fn redact_element(body: &str, name: &str, value: &str, with: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let open = format!("<{}>", name.to_ascii_lowercase());
    let close = format!("</{}>", name.to_ascii_lowercase());
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while let Some(o) = lower[i..].find(&open) {
        let start = i + o + open.len();
        let Some(c) = lower[start..].find(&close) else {
            break;
        };
        let end = start + c;
        out.push_str(&body[i..start]);
        if body[start..end].trim() == value {
            out.push_str(with);
        } else {
            out.push_str(&body[start..end]);
        }
        i = end;
    }
    out.push_str(&body[i..]);
    out
}

/// Every `name="value"` (or `'value'`) attribute replaced.
fn redact_attribute(body: &str, name: &str, value: &str, with: &str) -> String {
    let mut s = body.to_string();
    for q in ['"', '\''] {
        s = s.replace(
            &format!("{name}={q}{value}{q}"),
            &format!("{name}={q}{with}{q}"),
        );
    }
    s
}

/// The canonical text of `m` with `redact` applied; `addrs` are replaced
/// (as `IP:PORT` and `[IP]:PORT`) by their names first.
pub fn canonical(m: &SipMessage, redact: &[String], addrs: &[(SocketAddr, &str)]) -> String {
    let mut start = match &m.start {
        StartLine::Request { method, uri } => format!("{method} {uri} {}", m.version),
        StartLine::Response { code, reason } => format!("{} {code} {reason}", m.version),
    };
    let mut headers: Vec<(String, String)> = m
        .headers
        .0
        .iter()
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let original_body = decode_text(&m.body).replace("\r\n", "\n");
    let mut body = original_body.clone();
    for (a, name) in addrs {
        let forms = [a.to_string(), format!("{}:{}", a.ip(), a.port())];
        for f in forms {
            start = start.replace(&f, name);
            for (_, v) in headers.iter_mut() {
                *v = v.replace(&f, name);
            }
            body = body.replace(&f, name);
        }
    }
    for path in redact {
        let Some(value) = resolve(m, path) else {
            continue;
        };
        let value = value.trim().to_string();
        let with = format!("<{path}>");
        let (root, rest) = path.split_once('.').unwrap_or((path, ""));
        match root {
            "method" | "status" | "reason" | "uri" => {
                start = replace_value(&start, &value, &with);
            }
            "header" => {
                for (_, v) in headers.iter_mut().filter(|(n, _)| same_header(n, rest)) {
                    *v = replace_value(v, &value, &with);
                }
            }
            "body" => {
                if !body.is_empty() {
                    body = with.clone();
                }
            }
            "xml" => {
                let last = rest.rsplit('/').next().unwrap_or(rest);
                match last.split_once('@') {
                    Some((_, attr)) => body = redact_attribute(&body, attr, &value, &with),
                    None => {
                        let name = last.split('[').next().unwrap_or(last);
                        body = redact_element(&body, name, &value, &with);
                    }
                }
            }
            "sdp" => {
                let prefix = if let Some(a) = rest.strip_prefix("a.") {
                    format!("a={a}")
                } else if rest.len() == 1 {
                    format!("{rest}=")
                } else if rest == "direction" {
                    "a=".to_string()
                } else {
                    "m=".to_string()
                };
                body = body
                    .split('\n')
                    .map(|l| {
                        if l.starts_with(&prefix) {
                            let (head, tail) = l.split_at(prefix.len());
                            format!("{head}{}", replace_value(tail, &value, &with))
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            _ => {
                let names: Vec<&str> = match root {
                    // The Contact `expires` parameter counts too.
                    "expires" => vec!["Expires", "Contact"],
                    _ => header_of(root).into_iter().collect(),
                };
                for (n, v) in headers.iter_mut() {
                    if names.iter().any(|h| same_header(n, h)) {
                        *v = replace_value(v, &value, &with);
                    }
                }
            }
        }
    }
    if body != original_body {
        for (n, v) in headers.iter_mut() {
            if same_header(n, "Content-Length") {
                *v = "<length>".into();
            }
        }
    }
    let mut out = start;
    out.push('\n');
    for (n, v) in &headers {
        out.push_str(&format!("{n}: {v}\n"));
    }
    out.push('\n');
    if !body.is_empty() {
        out.push_str(&body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// One line of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Same(usize, usize),
    Del(usize),
    Add(usize),
}

/// The edit script from `a` to `b` (a longest common subsequence of lines;
/// past [`MAX_DIFF_CELLS`] the changed middle is one deletion and one
/// insertion).
fn edits(a: &[&str], b: &[&str]) -> Vec<Edit> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut out: Vec<Edit> = (0..pre).map(|i| Edit::Same(i, i)).collect();
    let (n, m) = (am.len(), bm.len());
    if n.saturating_mul(m) > MAX_DIFF_CELLS {
        out.extend((0..n).map(|i| Edit::Del(pre + i)));
        out.extend((0..m).map(|j| Edit::Add(pre + j)));
    } else {
        // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                out.push(Edit::Same(pre + i, pre + j));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                out.push(Edit::Del(pre + i));
                i += 1;
            } else {
                out.push(Edit::Add(pre + j));
                j += 1;
            }
        }
    }
    out.extend((0..suf).map(|k| Edit::Same(a.len() - suf + k, b.len() - suf + k)));
    out
}

/// A unified diff (3 lines of context) from `old` to `new`, headed by the
/// two names; `None` when the texts are the same.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let script = edits(&a, &b);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    if a == b {
        // Only the line ends differ.
        out.push_str("@@ line ends differ @@\n");
        return Some(out);
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = script
        .iter()
        .enumerate()
        .filter(|(_, e)| !matches!(e, Edit::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let lo = first.saturating_sub(CONTEXT);
        let hi = (last + CONTEXT + 1).min(script.len());
        let hunk = &script[lo..hi];
        // Where the hunk starts in each text (1-based), and its lengths.
        let (mut a0, mut b0) = (None, None);
        let (mut an, mut bn) = (0, 0);
        for e in hunk {
            match *e {
                Edit::Same(i, j) => {
                    a0.get_or_insert(i);
                    b0.get_or_insert(j);
                    an += 1;
                    bn += 1;
                }
                Edit::Del(i) => {
                    a0.get_or_insert(i);
                    an += 1;
                }
                Edit::Add(j) => {
                    b0.get_or_insert(j);
                    bn += 1;
                }
            }
        }
        let a_start = match a0 {
            Some(s) => s + 1,
            None => preceding(&script[..lo], true),
        };
        let b_start = match b0 {
            Some(s) => s + 1,
            None => preceding(&script[..lo], false),
        };
        out.push_str(&format!("@@ -{a_start},{an} +{b_start},{bn} @@\n"));
        for e in hunk {
            match *e {
                Edit::Same(i, _) => out.push_str(&format!(" {}\n", a[i])),
                Edit::Del(i) => out.push_str(&format!("-{}\n", a[i])),
                Edit::Add(j) => out.push_str(&format!("+{}\n", b[j])),
            }
        }
    }
    Some(out)
}

/// The line number a hunk with no line of one side follows (unified diff
/// convention: the line before, 0 at the top).
fn preceding(before: &[Edit], old: bool) -> usize {
    before
        .iter()
        .rev()
        .find_map(|e| match (*e, old) {
            (Edit::Same(i, _), true) | (Edit::Del(i), true) => Some(i + 1),
            (Edit::Same(_, j), false) | (Edit::Add(j), false) => Some(j + 1),
            _ => None,
        })
        .unwrap_or(0)
}

/// The first line where `old` and `new` differ: its number (1-based) and
/// the two lines (`None` past the end of one of them).
pub fn first_difference(old: &str, new: &str) -> Option<(usize, Option<String>, Option<String>)> {
    let mut a = old.lines();
    let mut b = new.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => return Some((n, x.map(str::to_string), y.map(str::to_string))),
        }
    }
}

/// What holding a message to its golden file came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    /// `--update-golden`: the file was written.
    Written,
    /// The text is the file's.
    Same,
}

/// Why a message does not hold to its golden file: the failure's message,
/// and its expected and received values.
#[derive(Debug, PartialEq, Eq)]
pub struct NotHeld {
    pub message: String,
    pub expected: String,
    pub received: String,
}

/// Hold `text` (the message `what`, redacted) to the golden `file`, or
/// write it there when `update`. A difference is a unified diff (`-`
/// golden, `+` received) naming its first differing line.
pub fn hold(file: &std::path::Path, text: &str, update: bool, what: &str) -> Result<Held, NotHeld> {
    let fail = |message: String, expected: String, received: String| NotHeld {
        message,
        expected,
        received,
    };
    if update {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                fail(
                    format!("cannot create {}: {e}", dir.display()),
                    format!("the folder {}", dir.display()),
                    e.to_string(),
                )
            })?;
        }
        std::fs::write(file, text).map_err(|e| {
            fail(
                format!("cannot write {}: {e}", file.display()),
                format!("the golden file {}", file.display()),
                e.to_string(),
            )
        })?;
        return Ok(Held::Written);
    }
    let golden = match std::fs::read(file) {
        Ok(b) => String::from_utf8_lossy(&b).replace("\r\n", "\n"),
        Err(e) => {
            return Err(fail(
                format!(
                    "cannot read the golden file {}: {e}; `camcert run --update-golden` writes it",
                    file.display()
                ),
                format!("the golden file {}", file.display()),
                "no file".into(),
            ))
        }
    };
    let Some(diff) = unified_diff(
        &golden,
        text,
        &file.display().to_string(),
        &format!("received {what}"),
    ) else {
        return Ok(Held::Same);
    };
    let (line, want, got) = first_difference(&golden, text).unwrap_or((0, None, None));
    let shown = |l: Option<String>| l.unwrap_or_else(|| "(no line)".into());
    Err(fail(
        format!(
            "{what} differs from the golden file {} at line {line} (- golden, + received; `--update-golden` rewrites it):\n{diff}",
            file.display()
        ),
        format!("line {line}: {}", shown(want)),
        format!("line {line}: {}", shown(got)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with its Content-Length set from its body.
    fn msg(s: &str) -> SipMessage {
        let (head, body) = s.split_once("\n\n").unwrap();
        let head = head.replace(
            "Content-Length: 0",
            &format!("Content-Length: {}", body.len()),
        );
        let text = format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n"));
        SipMessage::parse(text.as_bytes()).unwrap().message
    }

    const RESPONSE: &str = "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK77\n\
From: <sip:34020000001320000001@3402000000>;tag=abc\n\
To: <sip:34020000002000000001@3402000000>\n\
Call-ID: c-1\n\
CSeq: 7 MESSAGE\n\
Content-Type: Application/MANSCDP+xml\n\
Content-Length: 0\n\
\n\
<?xml version=\"1.0\"?>\n<Response>\n<CmdType>Catalog</CmdType>\n<SN>17</SN>\n<DeviceList Num=\"1\">\n</DeviceList>\n</Response>\n";

    #[test]
    fn redaction_is_scoped_to_where_the_field_lives() {
        let m = msg(RESPONSE);
        let redact: Vec<String> = ["call_id", "from.tag", "via.branch", "xml.SN", "cseq.seq"]
            .map(String::from)
            .to_vec();
        let dut: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let t = canonical(&m, &redact, &[(dut, "<dut>")]);
        assert!(
            t.starts_with("MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\n"),
            "{t}"
        );
        assert!(
            t.contains("Via: SIP/2.0/UDP <dut>;rport;branch=<via.branch>\n"),
            "{t}"
        );
        assert!(
            t.contains("From: <sip:34020000001320000001@3402000000>;tag=<from.tag>\n"),
            "{t}"
        );
        assert!(t.contains("Call-ID: <call_id>\n"), "{t}");
        assert!(t.contains("CSeq: <cseq.seq> MESSAGE\n"), "{t}");
        assert!(t.contains("<SN><xml.SN></SN>\n"), "{t}");
        // The body changed: its length is no longer a fact of the message.
        assert!(t.contains("Content-Length: <length>\n"), "{t}");
        // Scoped: the SN's value elsewhere (here the CSeq was 7, the SN 17)
        // and other elements keep their text.
        assert!(t.contains("<DeviceList Num=\"1\">"), "{t}");
        let attr = canonical(&m, &["xml.DeviceList@Num".to_string()], &[]);
        assert!(
            attr.contains("<DeviceList Num=\"<xml.DeviceList@Num>\">"),
            "{attr}"
        );
        assert!(attr.contains("Via: SIP/2.0/UDP 127.0.0.1:40000;"), "{attr}");
    }

    #[test]
    fn redact_paths_are_checked() {
        assert!(check_redact_path("xml.SN").is_ok());
        assert!(check_redact_path("header.User-Agent").is_ok());
        assert!(check_redact_path("xml_count.Item").is_err());
        assert!(check_redact_path("body.length").is_err());
        assert!(check_redact_path("nonsense").is_err());
    }

    #[test]
    fn the_diff_names_the_changed_line_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let d = unified_diff(old, new, "golden", "received").unwrap();
        assert_eq!(
            d,
            "--- golden\n+++ received\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(
            first_difference(old, new),
            Some((5, Some("e".into()), Some("E".into())))
        );
        assert!(unified_diff(old, old, "a", "b").is_none());
        // Two changes far apart make two hunks; a line only added anchors
        // after the line before it.
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let mut lines: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        lines[2] = "two".into();
        lines.insert(16, "extra".into());
        let new: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let d = unified_diff(&old, &new, "o", "n").unwrap();
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("-2\n+two\n"), "{d}");
        assert!(
            d.contains("@@ -14,6 +14,7 @@\n 13\n 14\n 15\n+extra\n 16\n"),
            "{d}"
        );
    }

    #[test]
    fn a_huge_diff_stays_bounded() {
        let old: String = (0..5000).map(|i| format!("{i}\n")).collect();
        let new: String = (0..5000).map(|i| format!("x{i}\n")).collect();
        let d = unified_diff(&old, &new, "o", "n").unwrap();
        assert_eq!(d.lines().filter(|l| l.starts_with('-')).count(), 5001);
    }
}
