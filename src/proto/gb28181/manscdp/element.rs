//! Generic XML element tree under every MANSCDP message: the parser that
//! builds it from text (lenient about the mistakes found in the spec's own
//! samples), the canonical writer, and path lookup for assertions
//! (`DeviceList/Item[0]/Name`, `DeviceList@Num`).
//!
//! Canonical layout, used by every encoder so golden files stay stable:
//! declaration, then one element per line, four spaces of indentation per
//! level, `\n` line ends, leaf text verbatim, an element with no children
//! and no text written as `<Name></Name>`.

use super::charset::{Charset, TextSink};
use super::finding::{Finding, FindingCode};
use super::DecodeError;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

/// Deepest element nesting accepted from the wire.
pub const MAX_DEPTH: usize = 64;

/// One XML element: name, attributes in document order, text, children.
///
/// For an element with children, `text` holds any non-whitespace text found
/// between them, trimmed (the decoder reports it as `manscdp.stray-text`). For an
/// element without children, `text` is the character data verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Element {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Element>,
}

impl Element {
    /// An element with text and nothing else.
    pub fn leaf(name: impl Into<String>, text: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            text: text.into(),
            ..Element::default()
        }
    }

    /// An element with children and nothing else.
    pub fn parent(name: impl Into<String>, children: Vec<Element>) -> Self {
        Element {
            name: name.into(),
            children,
            ..Element::default()
        }
    }

    /// Value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First child with exactly this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The element at `path`, relative to this one.
    ///
    /// A path is `/`-separated names; `Name[i]` picks the i-th (0-based)
    /// child of that name, plain `Name` the first. An empty path is `self`.
    pub fn find(&self, path: &str) -> Option<&Element> {
        let (elems, _) = split_attr(path);
        let mut cur = self;
        for seg in elems.split('/').filter(|s| !s.is_empty()) {
            let (name, idx) = parse_segment(seg)?;
            cur = cur
                .children
                .iter()
                .filter(|c| c.name == name)
                .nth(idx.unwrap_or(0))?;
        }
        Some(cur)
    }

    /// Every element matching `path`; the last segment without an index
    /// matches all children of that name (`DeviceList/Item`).
    pub fn find_all(&self, path: &str) -> Vec<&Element> {
        let (elems, _) = split_attr(path);
        let segs: Vec<&str> = elems.split('/').filter(|s| !s.is_empty()).collect();
        let Some((last, init)) = segs.split_last() else {
            return vec![self];
        };
        let parent = if init.is_empty() {
            Some(self)
        } else {
            self.find(&init.join("/"))
        };
        let Some(parent) = parent else {
            return Vec::new();
        };
        let Some((name, idx)) = parse_segment(last) else {
            return Vec::new();
        };
        let all = parent.children.iter().filter(|c| c.name == name);
        match idx {
            Some(i) => all.skip(i).take(1).collect(),
            None => all.collect(),
        }
    }

    /// How many elements match `path` (see [`Element::find_all`]).
    pub fn count(&self, path: &str) -> usize {
        self.find_all(path).len()
    }

    /// Text of the element at `path`, or an attribute when the path ends in
    /// `@Attr` (`DeviceList@Num`, `DeviceList/@Num`).
    pub fn get(&self, path: &str) -> Option<&str> {
        let (elems, attr) = split_attr(path);
        let el = self.find(elems)?;
        match attr {
            Some(a) => el.attr(a),
            None => Some(el.text.as_str()),
        }
    }

    /// Write this element as a whole document in canonical layout.
    pub fn write_document(&self, charset: Charset, out: &mut Vec<u8>) {
        let mut sink = TextSink::new(out, charset);
        sink.markup("<?xml version=\"1.0\" encoding=\"");
        sink.markup(charset.label());
        sink.markup("\"?>\n");
        write_element(self, 0, &mut sink);
    }
}

fn split_attr(path: &str) -> (&str, Option<&str>) {
    match path.rfind('@') {
        Some(i) => (path[..i].trim_end_matches('/'), Some(&path[i + 1..])),
        None => (path, None),
    }
}

fn parse_segment(seg: &str) -> Option<(&str, Option<usize>)> {
    match seg.find('[') {
        Some(i) => {
            let idx = seg[i + 1..].strip_suffix(']')?.trim().parse().ok()?;
            Some((&seg[..i], Some(idx)))
        }
        None => Some((seg, None)),
    }
}

fn escape_text(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' | '\n' if attr => out.push_str(&format!("&#x{:X};", c as u32)),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7F}' => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn write_element(el: &Element, depth: usize, sink: &mut TextSink<'_>) {
    let indent = "    ".repeat(depth);
    sink.markup(&indent);
    sink.markup("<");
    sink.markup(&el.name);
    for (k, v) in &el.attrs {
        sink.markup(" ");
        sink.markup(k);
        sink.markup("=\"");
        sink.text(&escape_text(v, true));
        sink.markup("\"");
    }
    sink.markup(">");
    if el.children.is_empty() {
        sink.text(&escape_text(&el.text, false));
    } else {
        sink.markup("\n");
        let text = el.text.trim();
        if !text.is_empty() {
            sink.markup(&indent);
            sink.markup("    ");
            sink.text(&escape_text(text, false));
            sink.markup("\n");
        }
        for c in &el.children {
            write_element(c, depth + 1, sink);
        }
        sink.markup(&indent);
    }
    sink.markup("</");
    sink.markup(&el.name);
    sink.markup(">\n");
}

/// Replace the spec samples' `<! --` comment openers with `<!--`.
fn repair_comments(text: &str, findings: &mut Vec<Finding>) -> Option<String> {
    if !text.contains("<! --") {
        return None;
    }
    let n = text.matches("<! --").count();
    findings.push(FindingCode::MalformedComment.at(
        "",
        format!("{n} comment(s) open with `<! --`; read as `<!--`"),
    ));
    Some(text.replace("<! --", "<!--"))
}

struct Open {
    el: Element,
}

/// Parse decoded text into an element tree.
pub(crate) fn parse_tree(text: &str, findings: &mut Vec<Finding>) -> Result<Element, DecodeError> {
    let repaired = repair_comments(text, findings);
    let text = repaired.as_deref().unwrap_or(text);
    if text.trim().is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader = quick_xml::Reader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.allow_dangling_amp = true;
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Element> = None;
    let mut outside_text = String::new();
    let mut saw_amp = false;
    let xml_err = |reader: &quick_xml::Reader<&[u8]>, e: &dyn std::fmt::Display| DecodeError::Xml {
        offset: reader.error_position(),
        message: e.to_string(),
    };
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => return Err(xml_err(&reader, &e)),
        };
        match ev {
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
                return Err(DecodeError::Xml {
                    offset: reader.buffer_position(),
                    message: format!("second root element <{name}>"),
                });
            }
            Event::Start(s) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep { limit: MAX_DEPTH });
                }
                let el = start_element(&s, &reader)?;
                stack.push(Open { el });
            }
            Event::Empty(s) => {
                let el = start_element(&s, &reader)?;
                match stack.last_mut() {
                    Some(p) => p.el.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let needs_path = stack
                    .last()
                    .is_some_and(|o| !o.el.children.is_empty() && !o.el.text.trim().is_empty());
                let path = if needs_path {
                    stack_path(&stack)
                } else {
                    String::new()
                };
                let Some(open) = stack.pop() else {
                    return Err(DecodeError::Xml {
                        offset: reader.buffer_position(),
                        message: "end tag without start tag".into(),
                    });
                };
                let mut el = open.el;
                if !el.children.is_empty() {
                    let t = el.text.trim();
                    if t.is_empty() {
                        el.text.clear();
                    } else {
                        findings.push(FindingCode::StrayText.at(
                            path,
                            format!("text {:?} mixed between child elements", truncate(t)),
                        ));
                        el.text = t.to_owned();
                    }
                }
                match stack.last_mut() {
                    Some(p) => p.el.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|e| xml_err(&reader, &e))?
                    .into_owned();
                if s.contains('&') {
                    saw_amp = true;
                }
                push_text(&mut stack, &mut outside_text, &s);
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| xml_err(&reader, &e))?.into_owned();
                push_text(&mut stack, &mut outside_text, &s);
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => String::new(),
                        Err(e) => return Err(xml_err(&reader, &e)),
                    }
                } else {
                    let name = r.decode().map_err(|e| xml_err(&reader, &e))?.into_owned();
                    match name.as_str() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => {
                            findings.push(FindingCode::UnknownEntity.at(
                                stack_path(&stack),
                                format!("entity &{other}; kept literally"),
                            ));
                            format!("&{other};")
                        }
                    }
                };
                push_text(&mut stack, &mut outside_text, &resolved);
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(DecodeError::Truncated {
            open: stack_path(&stack),
        });
    }
    let Some(root) = root else {
        return Err(DecodeError::NoRootElement);
    };
    if saw_amp {
        findings.push(
            FindingCode::UnescapedAmpersand
                .at("", "a bare `&` in character data was kept literally"),
        );
    }
    let outside = outside_text.trim();
    if !outside.is_empty() {
        findings.push(FindingCode::TrailingContent.at(
            "",
            format!("text outside the root element: {:?}", truncate(outside)),
        ));
    }
    Ok(root)
}

fn truncate(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Path of the innermost open element, `Root/Child[i]/...` (index only when > 0).
/// Computed on demand: only findings and errors need it.
fn stack_path(stack: &[Open]) -> String {
    let mut path = String::new();
    for (i, open) in stack.iter().enumerate() {
        let name = &open.el.name;
        if i == 0 {
            path.push_str(name);
            continue;
        }
        let idx = stack[i - 1]
            .el
            .children
            .iter()
            .filter(|c| &c.name == name)
            .count();
        if idx == 0 {
            path.push_str(&format!("/{name}"));
        } else {
            path.push_str(&format!("/{name}[{idx}]"));
        }
    }
    path
}

fn push_text(stack: &mut [Open], outside: &mut String, s: &str) {
    match stack.last_mut() {
        Some(open) => open.el.text.push_str(s),
        None => outside.push_str(s),
    }
}

fn start_element(
    s: &quick_xml::events::BytesStart<'_>,
    reader: &quick_xml::Reader<&[u8]>,
) -> Result<Element, DecodeError> {
    let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| DecodeError::Xml {
            offset: reader.buffer_position(),
            message: e.to_string(),
        })?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| DecodeError::Xml {
                offset: reader.buffer_position(),
                message: e.to_string(),
            })?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (Result<Element, DecodeError>, Vec<Finding>) {
        let mut f = Vec::new();
        (parse_tree(s, &mut f), f)
    }

    #[test]
    fn tree_and_paths() {
        let (t, f) = parse(
            "<Response><SN>1</SN><DeviceList Num=\"2\"><Item><Name>a &amp; b</Name></Item><Item><Name>c</Name></Item></DeviceList></Response>",
        );
        let t = t.unwrap();
        assert!(f.is_empty());
        assert_eq!(t.get("SN"), Some("1"));
        assert_eq!(t.get("DeviceList@Num"), Some("2"));
        assert_eq!(t.get("DeviceList/@Num"), Some("2"));
        assert_eq!(t.get("DeviceList/Item[0]/Name"), Some("a & b"));
        assert_eq!(t.get("DeviceList/Item[1]/Name"), Some("c"));
        assert_eq!(t.get("DeviceList/Item[2]/Name"), None);
        assert_eq!(t.count("DeviceList/Item"), 2);
        assert_eq!(t.find_all("DeviceList/Item[1]").len(), 1);
        assert_eq!(t.get("DeviceList/Item[x]"), None);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            "",
            "   ",
            "<Query><SN>1</SN>",
            "<Query><SN>1</Query>",
            "not xml at all",
            "<a/><b/>",
            "<Query attr=noquote/>",
            "</Query>",
        ] {
            assert!(parse(bad).0.is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let s = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(parse(&s).0, Err(DecodeError::TooDeep { .. })));
    }

    #[test]
    fn lenient_pieces_give_findings() {
        let (t, f) = parse("<! -- c --><Notify>x<A>1 & 2</A><B>&nbsp;</B></Notify>tail");
        let t = t.unwrap();
        assert_eq!(t.text, "x");
        assert_eq!(t.get("A"), Some("1 & 2"));
        assert_eq!(t.get("B"), Some("&nbsp;"));
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        let codes: Vec<FindingCode> = codes
            .into_iter()
            .map(|c| FindingCode::from_code(c).expect("a known code"))
            .collect();
        assert!(codes.contains(&FindingCode::MalformedComment));
        assert!(codes.contains(&FindingCode::StrayText));
        assert!(codes.contains(&FindingCode::UnknownEntity));
        assert!(codes.contains(&FindingCode::UnescapedAmpersand));
        assert!(codes.contains(&FindingCode::TrailingContent));
    }

    #[test]
    fn writer_layout() {
        let el = Element::parent(
            "Notify",
            vec![
                Element::leaf("CmdType", "Keepalive"),
                Element {
                    name: "L".into(),
                    attrs: vec![("Num".into(), "0".into())],
                    ..Element::default()
                },
                Element::parent("Info", vec![Element::leaf("DeviceID", "a<b")]),
            ],
        );
        let mut out = Vec::new();
        el.write_document(Charset::Utf8, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Notify>\n    <CmdType>Keepalive</CmdType>\n    <L Num=\"0\"></L>\n    <Info>\n        <DeviceID>a&lt;b</DeviceID>\n    </Info>\n</Notify>\n"
        );
    }

    #[test]
    fn control_characters_round_trip() {
        let el = Element::parent("R", vec![Element::leaf("T", "a\r\nb\tc\u{1}")]);
        let mut out = Vec::new();
        el.write_document(Charset::Utf8, &mut out);
        let (t, _) = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(t.unwrap(), el);
    }
}
