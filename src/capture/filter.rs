//! `camcert decode --filter EXPR`: which messages (or, with `--flows`,
//! which flows) to show.
//!
//! ```text
//! expr  := and ("or" and)*
//! and   := unary ("and" unary)*
//! unary := "not" unary | "(" expr ")" | FIELD [OP VALUE]
//! OP    := "==" | "!=" | "~"            (~: contains)
//! VALUE := a word, or "quoted text"
//! ```
//!
//! `||`, `&&` and `!` are accepted for `or`, `and` and `not`. A FIELD alone
//! is true when the message has it. Fields of a message are the suite's
//! field paths (`method`, `status`, `call_id`, `from.user`, `xml.CmdType`,
//! `sdp.y`, `header.User-Agent`, ...; a `sip.` prefix is allowed), and
//! `src`, `dst` (`IP:PORT`), `transport` (`UDP`, `TCP`), `frame` and `ssrc`
//! (the SDP `y=` of the message). Fields of a flow are `src`, `dst`,
//! `transport`, `proto` (`SIP`, `RTP`, `RTP/TCP`, ...) and `ssrc` (true
//! when any SSRC the flow carried compares so). Two values that both read
//! as numbers (decimal or `0x` hex) compare as numbers: `ssrc == 0x0bebc201`
//! matches `y=0200000001`. Text compares case-sensitively, except methods,
//! transports and protocols.

use crate::suite::fields::resolve;

/// Expressions nest at most this deep.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Has(String),
    Cmp(String, Op, String),
}

/// A parsed `--filter` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter(Node);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
    And,
    Or,
    Not,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two: String = b[i..(i + 2).min(b.len())].iter().collect();
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            '~' => {
                out.push(Tok::Op(Op::Contains));
                i += 1
            }
            _ if two == "==" => {
                out.push(Tok::Op(Op::Eq));
                i += 2
            }
            _ if two == "!=" => {
                out.push(Tok::Op(Op::Ne));
                i += 2
            }
            _ if two == "&&" => {
                out.push(Tok::And);
                i += 2
            }
            _ if two == "||" => {
                out.push(Tok::Or);
                i += 2
            }
            '!' => {
                out.push(Tok::Not);
                i += 1
            }
            '"' => {
                let mut t = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(format!("unterminated quote in {s:?}")),
                        Some('"') => break,
                        Some('\\') if b.get(i + 1).is_some() => {
                            t.push(b[i + 1]);
                            i += 2;
                            continue;
                        }
                        Some(&ch) => t.push(ch),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Quoted(t));
            }
            _ => {
                let start = i;
                let ends_word = |i: usize| {
                    let c = b[i];
                    let next_eq = b.get(i + 1) == Some(&'=');
                    c.is_whitespace()
                        || matches!(c, '(' | ')' | '~' | '"')
                        || (matches!(c, '=' | '!') && next_eq)
                };
                while i < b.len() && !ends_word(i) {
                    i += 1;
                }
                let w: String = b[start..i].iter().collect();
                out.push(match w.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Word(w),
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn expr(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let mut v = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            v.push(self.and(depth)?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Node::Or(v)
        })
    }
    fn and(&mut self, depth: usize) -> Result<Node, String> {
        let mut v = vec![self.unary(depth)?];
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            v.push(self.unary(depth)?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Node::And(v)
        })
    }
    fn unary(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        match self.next() {
            Some(Tok::Not) => Ok(Node::Not(Box::new(self.unary(depth + 1)?))),
            Some(Tok::Open) => {
                let e = self.expr(depth + 1)?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("expected `)`".into()),
                }
            }
            Some(Tok::Word(field)) => {
                let field = field
                    .strip_prefix("sip.")
                    .map(str::to_string)
                    .unwrap_or(field);
                match self.peek() {
                    Some(Tok::Op(op)) => {
                        let op = *op;
                        self.at += 1;
                        match self.next() {
                            Some(Tok::Word(v)) | Some(Tok::Quoted(v)) => {
                                Ok(Node::Cmp(field, op, v))
                            }
                            _ => Err(format!("expected a value after `{field}` and its operator")),
                        }
                    }
                    _ => Ok(Node::Has(field)),
                }
            }
            Some(t) => Err(format!("expected a field, `not` or `(`, found {t:?}")),
            None => Err("the expression ends too early".into()),
        }
    }
}

/// A number written in decimal or `0x` hex.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn compare(field: &str, actual: &str, op: Op, want: &str) -> bool {
    let same = match (number(actual), number(want)) {
        (Some(a), Some(b)) => a == b,
        _ if matches!(field, "method" | "cseq.method" | "transport" | "proto") => {
            actual.eq_ignore_ascii_case(want)
        }
        _ => actual == want,
    };
    match op {
        Op::Eq => same,
        Op::Ne => !same,
        Op::Contains => actual.contains(want),
    }
}

/// Values of a field: none when absent; several for a flow's SSRCs.
fn eval(n: &Node, get: &dyn Fn(&str) -> Vec<String>) -> bool {
    match n {
        Node::Or(v) => v.iter().any(|x| eval(x, get)),
        Node::And(v) => v.iter().all(|x| eval(x, get)),
        Node::Not(x) => !eval(x, get),
        Node::Has(f) => !get(f).is_empty(),
        Node::Cmp(f, op, want) => {
            let vals = get(f);
            match op {
                // An absent field is unequal to anything.
                Op::Ne => vals.is_empty() || vals.iter().all(|v| compare(f, v, Op::Ne, want)),
                _ => vals.iter().any(|v| compare(f, v, *op, want)),
            }
        }
    }
}

const FLOW_FIELDS: &[&str] = &["src", "dst", "transport", "proto", "ssrc"];

impl Filter {
    /// Parse `s`; `Err` says what is wrong where.
    pub fn parse(s: &str) -> Result<Filter, String> {
        let mut p = Parser {
            toks: lex(s)?,
            at: 0,
        };
        let e = p.expr(0)?;
        if p.at < p.toks.len() {
            return Err(format!(
                "unexpected {:?} after a whole expression",
                p.toks[p.at]
            ));
        }
        let mut bad = None;
        e.fields(&mut |f| {
            let ok = FLOW_FIELDS.contains(&f)
                || f == "frame"
                || crate::suite::fields::check_path(f).is_ok();
            if !ok && bad.is_none() {
                bad = Some(f.to_string());
            }
        });
        if let Some(f) = bad {
            return Err(format!(
                "unknown field {f:?}: use a suite field path (method, status, call_id, xml.CmdType, sdp.y, ...) or src, dst, transport, frame, ssrc"
            ));
        }
        Ok(Filter(e))
    }

    /// The fields it names that a flow row does not have (`--flows`).
    pub fn non_flow_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.0.fields(&mut |f| {
            if !FLOW_FIELDS.contains(&f) && !out.iter().any(|o| o == f) {
                out.push(f.to_string());
            }
        });
        out
    }

    /// Does the SIP message of `e` pass?
    pub fn message(&self, e: &super::decode::SipEvent) -> bool {
        let m = &e.message;
        let get = |f: &str| -> Vec<String> {
            let v = match f {
                "src" => Some(e.flow.src.to_string()),
                "dst" => Some(e.flow.dst.to_string()),
                "transport" => Some(e.flow.transport.to_string().to_ascii_uppercase()),
                "frame" => Some(e.frame.to_string()),
                "ssrc" => resolve(m, "sdp.y"),
                _ => resolve(m, f),
            };
            v.map(|v| v.trim().to_string()).into_iter().collect()
        };
        eval(&self.0, &get)
    }

    /// Does a flow row pass?
    pub fn flow(&self, k: &super::decode::FlowKey, st: &super::decode::FlowStats) -> bool {
        let get = |f: &str| -> Vec<String> {
            match f {
                "src" => vec![k.src.to_string()],
                "dst" => vec![k.dst.to_string()],
                "transport" => vec![k.transport.to_string().to_ascii_uppercase()],
                "proto" => vec![st.protocol(k.transport).to_string()],
                "ssrc" => st.ssrc.keys().map(|s| s.to_string()).collect(),
                _ => Vec::new(),
            }
        };
        eval(&self.0, &get)
    }
}

impl Node {
    fn fields(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Node::Or(v) | Node::And(v) => v.iter().for_each(|x| x.fields(f)),
            Node::Not(x) => x.fields(f),
            Node::Has(n) | Node::Cmp(n, _, _) => f(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::decode::{FlowKey, FlowStats, SipEvent};
    use crate::proto::sip::SipMessage;
    use crate::proto::Transport;

    fn event(text: &str) -> SipEvent {
        SipEvent {
            frame: 7,
            time: std::time::Duration::ZERO,
            flow: FlowKey {
                transport: Transport::Udp,
                src: "192.0.2.1:5060".parse().unwrap(),
                dst: "192.0.2.2:5060".parse().unwrap(),
            },
            message: SipMessage::parse(text.replace('\n', "\r\n").as_bytes())
                .unwrap()
                .message,
            findings: Vec::new(),
        }
    }

    fn invite() -> SipEvent {
        let body = "v=0\no=x 0 0 IN IP4 192.0.2.1\ns=Play\nc=IN IP4 192.0.2.1\nt=0 0\nm=video 6000 RTP/AVP 96\ny=0200000001\n";
        event(&format!(
            "INVITE sip:34020000001320000001@192.0.2.2 SIP/2.0\nCall-ID: abc-1\nCSeq: 20 INVITE\nContent-Type: application/sdp\nContent-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        ))
    }

    fn pass(expr: &str, e: &SipEvent) -> bool {
        Filter::parse(expr).unwrap().message(e)
    }

    #[test]
    fn messages_are_picked_by_their_fields() {
        let e = invite();
        assert!(pass("sip.method == INVITE", &e));
        assert!(pass("method == invite", &e));
        assert!(!pass("sip.method == MESSAGE", &e));
        assert!(pass("call_id == abc-1 and cseq.seq == 20", &e));
        assert!(pass("call_id == \"abc-1\"", &e));
        assert!(pass("ssrc == 0x0bebc201", &e));
        assert!(pass("ssrc == 200000001", &e));
        assert!(!pass("ssrc == 0x0bebc202", &e));
        assert!(pass("method == MESSAGE or (ssrc && not status)", &e));
        assert!(pass("!(method == MESSAGE) && src == 192.0.2.1:5060", &e));
        assert!(pass("transport == UDP and frame == 7", &e));
        assert!(pass("sdp.s ~ Pla", &e));
        // An absent field is unequal to anything, and equal to nothing.
        assert!(pass("status != 200", &e));
        assert!(!pass("status == 200", &e));
    }

    #[test]
    fn flows_are_picked_by_ssrc_and_address() {
        let k = FlowKey {
            transport: Transport::Udp,
            src: "192.0.2.1:6000".parse().unwrap(),
            dst: "192.0.2.2:7000".parse().unwrap(),
        };
        let mut st = FlowStats::default();
        st.ssrc.insert(0xdeadbeef, 10);
        st.rtp = 10;
        st.packets = 10;
        let f = |x: &str| Filter::parse(x).unwrap().flow(&k, &st);
        assert!(f("ssrc == 0xdeadbeef"));
        assert!(!f("ssrc == 0x1"));
        assert!(f("proto == RTP and dst ~ :7000"));
        assert_eq!(
            Filter::parse("ssrc && method == INVITE")
                .unwrap()
                .non_flow_fields(),
            vec!["method".to_string()]
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (e, says) in [
            ("", "too early"),
            ("method ==", "expected a value"),
            ("(method == A", "expected `)`"),
            ("method == A B", "unexpected"),
            ("nosuch == 1", "unknown field"),
            ("call_id == \"x", "unterminated"),
        ] {
            let err = Filter::parse(e).unwrap_err();
            assert!(err.contains(says), "{e:?}: {err}");
        }
        let deep = format!("{}method{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&deep).unwrap_err().contains("deeper"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(s in ".{0,80}") {
            if let Ok(f) = Filter::parse(&s) {
                let _ = f.message(&invite());
            }
        }
    }
}
