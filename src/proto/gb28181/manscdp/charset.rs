//! Character encodings of MANSCDP bodies (目录检索请求格式:
//! `<?xml version="1.0" encoding="GB2312"?>`): reading the declaration,
//! choosing the encoding the bytes are really in, and writing text in
//! GB2312, GBK, GB18030 or UTF-8.
//!
//! Decoding trusts a declaration the bytes agree with. GB2312 is decoded with
//! the GB18030 decoder (a superset). Because UTF-8 Chinese text is often also
//! well-formed GBK, a body declared GB2312/GBK/GB18030 whose bytes are valid
//! UTF-8 as well is read in whichever interpretation yields more GB2312
//! characters; the declared one wins ties.

use super::finding::{Finding, FindingCode};
use serde::{Deserialize, Serialize};

/// Encoding of a MANSCDP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Charset {
    /// `UTF-8`.
    Utf8,
    /// `GB2312`; read as GB18030, written restricted to the GB2312 repertoire
    /// (other characters become `&#x..;` references).
    #[default]
    Gb2312,
    /// `GBK`; written with the GBK repertoire, other characters as references.
    Gbk,
    /// `GB18030`; every character is representable.
    Gb18030,
}

impl Charset {
    /// The label written in the XML declaration.
    pub fn label(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Gb2312 => "GB2312",
            Charset::Gbk => "GBK",
            Charset::Gb18030 => "GB18030",
        }
    }

    /// Recognise a declaration label, case-insensitively, including common aliases.
    pub fn from_label(label: &str) -> Option<Charset> {
        let l = label.trim().to_ascii_lowercase();
        match l.as_str() {
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "gb2312" | "gb_2312" | "gb-2312" | "gb_2312-80" | "euc-cn" | "csgb2312" => {
                Some(Charset::Gb2312)
            }
            "gbk" | "cp936" | "ms936" | "windows-936" | "x-gbk" => Some(Charset::Gbk),
            "gb18030" | "gb-18030" => Some(Charset::Gb18030),
            _ => None,
        }
    }

    /// True for the GB family.
    pub fn is_gb(self) -> bool {
        !matches!(self, Charset::Utf8)
    }
}

/// The `<?xml ...?>` declaration as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Declaration {
    pub version: Option<String>,
    pub encoding: Option<String>,
    pub standalone: Option<String>,
    /// Byte offset of `<?xml`.
    pub offset: usize,
}

/// Find and parse the XML declaration. Only ASCII matters, so this works on
/// the raw bytes of any ASCII-compatible encoding.
pub(crate) fn find_declaration(bytes: &[u8]) -> Option<Declaration> {
    let start = find_sub(bytes, b"<?xml")?;
    let after = bytes.get(start + 5).copied()?;
    if !after.is_ascii_whitespace() && after != b'?' {
        return None;
    }
    let rel_end = find_sub(&bytes[start..], b"?>")?;
    let inner = &bytes[start + 5..start + rel_end];
    let mut decl = Declaration {
        offset: start,
        ..Declaration::default()
    };
    let mut i = 0;
    while i < inner.len() {
        while i < inner.len() && inner[i].is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        while i < inner.len() && (inner[i].is_ascii_alphanumeric() || inner[i] == b'_') {
            i += 1;
        }
        let name = String::from_utf8_lossy(&inner[name_start..i]).to_ascii_lowercase();
        while i < inner.len() && inner[i].is_ascii_whitespace() {
            i += 1;
        }
        if name.is_empty() || i >= inner.len() || inner[i] != b'=' {
            // Not a pseudo-attribute; skip one byte to make progress.
            i = i.max(name_start + 1);
            continue;
        }
        i += 1;
        while i < inner.len() && inner[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&quote) = inner.get(i) else { break };
        let value = if quote == b'"' || quote == b'\'' {
            i += 1;
            let v_start = i;
            while i < inner.len() && inner[i] != quote {
                i += 1;
            }
            let v = String::from_utf8_lossy(&inner[v_start..i]).into_owned();
            i += 1;
            v
        } else {
            let v_start = i;
            while i < inner.len() && !inner[i].is_ascii_whitespace() {
                i += 1;
            }
            String::from_utf8_lossy(&inner[v_start..i]).into_owned()
        };
        match name.as_str() {
            "version" => decl.version = Some(value),
            "encoding" => decl.encoding = Some(value),
            "standalone" => decl.standalone = Some(value),
            _ => {}
        }
    }
    Some(decl)
}

fn find_sub(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Result of turning body bytes into text.
#[derive(Debug, Clone)]
pub(crate) struct DecodedText {
    pub text: String,
    /// The encoding the text was read in.
    pub charset: Charset,
    /// The `encoding` pseudo-attribute as written, if any.
    pub declared: Option<String>,
}

fn strict_gb(bytes: &[u8]) -> Option<String> {
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
}

fn strict_utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// Fraction (numerator, denominator) of non-ASCII characters that belong to GB2312.
fn gb2312_score(text: &str) -> (usize, usize) {
    let mut enc = encoding_rs::GBK.new_encoder();
    let mut hits = 0;
    let mut total = 0;
    for c in text.chars().filter(|c| !c.is_ascii()) {
        total += 1;
        if gb2312_code(&mut enc, c).is_some() {
            hits += 1;
        }
    }
    (hits, total)
}

/// The two-byte GB2312 code of `c`, if it has one.
fn gb2312_code(enc: &mut encoding_rs::Encoder, c: char) -> Option<[u8; 2]> {
    let [a, b] = gbk_code(enc, c)?;
    let lead_ok = (0xA1..=0xA9).contains(&a) || (0xB0..=0xF7).contains(&a);
    let trail_ok = (0xA1..=0xFE).contains(&b);
    (lead_ok && trail_ok).then_some([a, b])
}

/// The two-byte GBK code of `c`, if it has one.
fn gbk_code(enc: &mut encoding_rs::Encoder, c: char) -> Option<[u8; 2]> {
    let mut src = [0u8; 4];
    let s = c.encode_utf8(&mut src);
    let mut dst = [0u8; 8];
    let (res, _read, written) = enc.encode_from_utf8_without_replacement(s, &mut dst, false);
    match (res, written) {
        (encoding_rs::EncoderResult::InputEmpty, 2) => Some([dst[0], dst[1]]),
        _ => None,
    }
}

/// Decode body bytes to text, recording findings about the prolog and encoding.
pub(crate) fn decode_bytes(bytes: &[u8], findings: &mut Vec<Finding>) -> DecodedText {
    let (bom, body) = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let decl = find_declaration(body);
    match &decl {
        None => findings.push(FindingCode::MissingDeclaration.at(
            "",
            "no <?xml ...?> declaration, expected <?xml version=\"1.0\" encoding=\"...\"?>; read as UTF-8, else GB18030",
        )),
        Some(d) => {
            if d.offset != 0 {
                findings.push(FindingCode::DeclarationNotAtStart.at(
                    "",
                    format!("{} byte(s) precede the XML declaration", d.offset),
                ));
            }
            if let Some(sa) = &d.standalone {
                if sa != "yes" && sa != "no" {
                    findings.push(
                        FindingCode::InvalidStandalone
                            .at("", format!("standalone=\"{sa}\" is neither yes nor no")),
                    );
                }
            }
            match d.version.as_deref() {
                Some("1.0") => {}
                Some(v) => findings.push(FindingCode::DeclarationVersion.at(
                    "",
                    format!("the XML declaration says version=\"{v}\", expected version=\"1.0\""),
                )),
                None => findings.push(FindingCode::DeclarationVersion.at(
                    "",
                    "the XML declaration has no version, expected version=\"1.0\"",
                )),
            }
            if d.encoding.is_none() {
                findings.push(FindingCode::DeclarationWithoutEncoding.at(
                    "",
                    "XML declaration has no encoding; read as UTF-8, else GB18030",
                ));
            }
        }
    }
    let declared_label = decl.as_ref().and_then(|d| d.encoding.clone());
    let declared = match &declared_label {
        Some(label) => match Charset::from_label(label) {
            Some(cs) => Some(cs),
            None => {
                findings.push(FindingCode::UnsupportedEncoding.at(
                    "",
                    format!("declared encoding \"{label}\" is not GB2312, GBK, GB18030 or UTF-8"),
                ));
                None
            }
        },
        None => None,
    };
    let (text, charset) = match declared {
        Some(cs) if bom && cs.is_gb() => {
            findings.push(FindingCode::EncodingMismatch.at(
                "",
                format!(
                    "declared {} but the body starts with a UTF-8 byte order mark",
                    cs.label()
                ),
            ));
            read_utf8_or_lossy(body, findings)
        }
        Some(Charset::Utf8) => match strict_utf8(body) {
            Some(t) => (t, Charset::Utf8),
            None => match strict_gb(body) {
                Some(t) => {
                    findings.push(
                        FindingCode::EncodingMismatch
                            .at("", "declared UTF-8 but the bytes are GB18030/GBK"),
                    );
                    (t, Charset::Gb18030)
                }
                None => lossy(body, Charset::Utf8, findings),
            },
        },
        Some(cs) => match strict_gb(body) {
            Some(gb_text) => {
                let has_non_ascii = body.iter().any(|b| !b.is_ascii());
                match strict_utf8(body).filter(|_| has_non_ascii) {
                    Some(utf_text) => {
                        let (gh, gt) = gb2312_score(&gb_text);
                        let (uh, ut) = gb2312_score(&utf_text);
                        // uh/ut > gh/gt, compared without division.
                        if uh * gt > gh * ut {
                            findings.push(FindingCode::EncodingMismatch.at(
                                "",
                                format!("declared {} but the bytes are UTF-8", cs.label()),
                            ));
                            (utf_text, Charset::Utf8)
                        } else {
                            (gb_text, cs)
                        }
                    }
                    None => (gb_text, cs),
                }
            }
            None => match strict_utf8(body) {
                Some(t) => {
                    findings.push(FindingCode::EncodingMismatch.at(
                        "",
                        format!("declared {} but the bytes are UTF-8", cs.label()),
                    ));
                    (t, Charset::Utf8)
                }
                None => lossy(body, cs, findings),
            },
        },
        None => match strict_utf8(body) {
            Some(t) => (t, Charset::Utf8),
            None => match strict_gb(body) {
                Some(t) => {
                    findings.push(FindingCode::UndeclaredNonUtf8.at(
                        "",
                        "no encoding declared and the bytes are not UTF-8; read as GB18030",
                    ));
                    (t, Charset::Gb18030)
                }
                None => lossy(body, Charset::Utf8, findings),
            },
        },
    };
    DecodedText {
        text,
        charset,
        declared: declared_label,
    }
}

fn read_utf8_or_lossy(body: &[u8], findings: &mut Vec<Finding>) -> (String, Charset) {
    match strict_utf8(body) {
        Some(t) => (t, Charset::Utf8),
        None => lossy(body, Charset::Utf8, findings),
    }
}

fn lossy(body: &[u8], cs: Charset, findings: &mut Vec<Finding>) -> (String, Charset) {
    findings.push(FindingCode::InvalidBytes.at(
        "",
        format!(
            "bytes are valid in no supported encoding; read as {} with replacement characters",
            cs.label()
        ),
    ));
    let text = if cs.is_gb() {
        encoding_rs::GB18030
            .decode_without_bom_handling(body)
            .0
            .into_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    (text, cs)
}

/// Writes XML text in a target charset.
///
/// Markup (names, punctuation) goes through [`TextSink::markup`]: ASCII in
/// practice, and written in the full charset (GB18030 for the GB family).
/// Character data goes through [`TextSink::text`]: characters outside the
/// charset's repertoire become `&#x..;` references, which every XML parser
/// resolves.
pub(crate) struct TextSink<'a> {
    out: &'a mut Vec<u8>,
    charset: Charset,
    encoder: Option<encoding_rs::Encoder>,
}

impl<'a> TextSink<'a> {
    pub fn new(out: &'a mut Vec<u8>, charset: Charset) -> Self {
        let encoder = match charset {
            Charset::Utf8 => None,
            Charset::Gb2312 | Charset::Gbk => Some(encoding_rs::GBK.new_encoder()),
            Charset::Gb18030 => Some(encoding_rs::GB18030.new_encoder()),
        };
        TextSink {
            out,
            charset,
            encoder,
        }
    }

    /// Markup: written as-is in the charset (GB18030 bytes for non-ASCII in the GB family).
    pub fn markup(&mut self, s: &str) {
        if s.is_ascii() || self.charset == Charset::Utf8 {
            self.out.extend_from_slice(s.as_bytes());
        } else {
            let (bytes, _, _) = encoding_rs::GB18030.encode(s);
            self.out.extend_from_slice(&bytes);
        }
    }

    /// Character data, already escaped for XML; unrepresentable characters become references.
    pub fn text(&mut self, s: &str) {
        let Some(enc) = self.encoder.as_mut() else {
            self.out.extend_from_slice(s.as_bytes());
            return;
        };
        for c in s.chars() {
            if c.is_ascii() {
                self.out.push(c as u8);
                continue;
            }
            let code = match self.charset {
                Charset::Gb2312 => gb2312_code(enc, c).map(|b| b.to_vec()),
                Charset::Gbk => gbk_code(enc, c).map(|b| b.to_vec()),
                _ => {
                    let mut src = [0u8; 4];
                    let s = c.encode_utf8(&mut src);
                    let mut dst = [0u8; 8];
                    let (res, _, written) =
                        enc.encode_from_utf8_without_replacement(s, &mut dst, false);
                    match res {
                        encoding_rs::EncoderResult::InputEmpty if written > 0 => {
                            Some(dst[..written].to_vec())
                        }
                        _ => None,
                    }
                }
            };
            match code {
                Some(bytes) => self.out.extend_from_slice(&bytes),
                None => self
                    .out
                    .extend_from_slice(format!("&#x{:X};", c as u32).as_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_is_parsed() {
        let d =
            find_declaration(b"<?xml version=\"1.0\" encoding='gb2312' standalone=\"yes\" ?><a/>")
                .unwrap();
        assert_eq!(d.version.as_deref(), Some("1.0"));
        assert_eq!(d.encoding.as_deref(), Some("gb2312"));
        assert_eq!(d.standalone.as_deref(), Some("yes"));
        assert_eq!(d.offset, 0);
        assert!(find_declaration(b"<Query/>").is_none());
        assert!(find_declaration(b"<?xml-stylesheet href='a'?>").is_none());
    }

    #[test]
    fn labels() {
        assert_eq!(Charset::from_label("GB2312"), Some(Charset::Gb2312));
        assert_eq!(Charset::from_label("gb2312"), Some(Charset::Gb2312));
        assert_eq!(Charset::from_label("Utf-8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_label("gbk"), Some(Charset::Gbk));
        assert_eq!(Charset::from_label("latin1"), None);
    }

    #[test]
    fn gb2312_bytes_decode_as_declared() {
        let (gb, _, _) = encoding_rs::GBK.encode("前门摄像机");
        let mut body = b"<?xml version=\"1.0\" encoding=\"GB2312\"?><a>".to_vec();
        body.extend_from_slice(&gb);
        body.extend_from_slice(b"</a>");
        let mut f = Vec::new();
        let d = decode_bytes(&body, &mut f);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(d.charset, Charset::Gb2312);
        assert!(d.text.contains("前门摄像机"));
    }

    #[test]
    fn utf8_bytes_declared_gb2312_are_detected() {
        let body = "<?xml version=\"1.0\" encoding=\"GB2312\"?><a>前门摄像机</a>".as_bytes();
        let mut f = Vec::new();
        let d = decode_bytes(body, &mut f);
        assert_eq!(d.charset, Charset::Utf8);
        assert!(d.text.contains("前门摄像机"));
        assert_eq!(f[0].code, FindingCode::EncodingMismatch);
    }

    #[test]
    fn gb_bytes_declared_utf8_are_detected() {
        let (gb, _, _) =
            encoding_rs::GBK.encode("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>前门摄像机</a>");
        let mut f = Vec::new();
        let d = decode_bytes(&gb, &mut f);
        assert!(d.text.contains("前门摄像机"));
        assert_eq!(f[0].code, FindingCode::EncodingMismatch);
    }

    #[test]
    fn undeclared_falls_back_to_gb18030() {
        let (gb, _, _) = encoding_rs::GBK.encode("<a>前门摄像机</a>");
        let mut f = Vec::new();
        let d = decode_bytes(&gb, &mut f);
        assert_eq!(d.charset, Charset::Gb18030);
        assert!(d.text.contains("前门摄像机"));
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            vec![
                FindingCode::MissingDeclaration,
                FindingCode::UndeclaredNonUtf8
            ]
        );
    }

    #[test]
    fn sink_uses_references_outside_gb2312() {
        let mut out = Vec::new();
        let mut sink = TextSink::new(&mut out, Charset::Gb2312);
        sink.text("前€😀");
        let (gb, _, _) = encoding_rs::GBK.encode("前");
        let mut expected = gb.to_vec();
        expected.extend_from_slice(b"&#x20AC;&#x1F600;");
        assert_eq!(out, expected);
    }
}
