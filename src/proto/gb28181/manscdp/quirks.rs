//! Writing a body the way quirky devices do, so the lenient decoder and
//! everything built on it (the reference platform, the suite runner's field
//! lookups) can be tested against them. The reference camera switches these
//! on with its MANSCDP faults (`attribute-fields`, `element-case`,
//! `no-xml-declaration`, `wrong-encoding-declared`).
//!
//! Each quirk breaks one rule the decoder recovers from with an
//! error-severity finding:
//!
//! | quirk | finding |
//! | --- | --- |
//! | `attribute_fields` | `manscdp.field-as-attribute` |
//! | `lower_case_names` | `manscdp.root-name-case`, `manscdp.element-name-case` |
//! | `no_declaration` | `manscdp.missing-declaration` |
//! | `wrong_encoding_declared` | `manscdp.encoding-mismatch` (once the text is not ASCII) |

use super::charset::Charset;
use super::element::Element;
use super::Message;

/// Deviations a sender makes when it writes a MANSCDP body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// `CmdType` and `SN` as attributes of the root element
    /// (`<Notify CmdType="Keepalive" SN="5">`) instead of child elements.
    pub attribute_fields: bool,
    /// Every element name in lower case (`<notify>`, `<cmdtype>`).
    pub lower_case_names: bool,
    /// No `<?xml ...?>` declaration.
    pub no_declaration: bool,
    /// The declaration names the charset asked for, the bytes are in the
    /// other family: UTF-8 bytes under a GB declaration, GB2312 bytes under
    /// a UTF-8 one.
    pub wrong_encoding_declared: bool,
}

impl Quirks {
    /// No quirk at all: [`Message::encode`] output.
    pub fn is_none(&self) -> bool {
        *self == Quirks::default()
    }
}

impl Message {
    /// Encode as [`Message::encode`] does, then apply `quirks`.
    pub fn encode_with_quirks(&self, charset: Charset, quirks: Quirks) -> Vec<u8> {
        if quirks.is_none() {
            return self.encode(charset);
        }
        let mut el = self.to_element();
        if quirks.attribute_fields {
            let mut attrs = Vec::new();
            for name in ["CmdType", "SN"] {
                if let Some(i) = el.children.iter().position(|c| c.name == name) {
                    let c = el.children.remove(i);
                    attrs.push((c.name, c.text));
                }
            }
            attrs.append(&mut el.attrs);
            el.attrs = attrs;
        }
        if quirks.lower_case_names {
            lower_case(&mut el);
        }
        let written = match (quirks.wrong_encoding_declared, charset.is_gb()) {
            (false, _) => charset,
            (true, true) => Charset::Utf8,
            (true, false) => Charset::Gb2312,
        };
        let mut out = Vec::new();
        el.write_document(written, &mut out);
        // The declaration is the first line, ASCII in every charset.
        let decl_end = out
            .windows(3)
            .position(|w| w == b"?>\n")
            .map_or(0, |i| i + 3);
        if quirks.no_declaration {
            out.drain(..decl_end);
        } else if written != charset {
            let decl = String::from_utf8_lossy(&out[..decl_end]).replace(
                &format!("encoding=\"{}\"", written.label()),
                &format!("encoding=\"{}\"", charset.label()),
            );
            out.splice(..decl_end, decl.into_bytes());
        }
        out
    }
}

fn lower_case(el: &mut Element) {
    el.name = el.name.to_ascii_lowercase();
    for c in &mut el.children {
        lower_case(c);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Body, DecodeError, DecodeOptions, FindingCode, ResultType, Severity};
    use super::*;

    const DEV: &str = "34020000001320000001";

    fn keepalive() -> Message {
        Message::keepalive(5, DEV, ResultType::Ok)
    }

    fn codes(bytes: &[u8]) -> Vec<FindingCode> {
        Message::decode(bytes)
            .unwrap()
            .findings
            .iter()
            .map(|f| FindingCode::from_code(f.code).expect("a known code"))
            .collect()
    }

    #[test]
    fn attribute_fields_are_written_on_the_root() {
        let q = Quirks {
            attribute_fields: true,
            ..Quirks::default()
        };
        let b = keepalive().encode_with_quirks(Charset::Utf8, q);
        assert_eq!(
            String::from_utf8(b.clone()).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Notify CmdType=\"Keepalive\" SN=\"5\">\n    <DeviceID>34020000001320000001</DeviceID>\n    <Status>OK</Status>\n</Notify>\n"
        );
        let d = Message::decode(&b).unwrap();
        assert_eq!(d.message, keepalive(), "recovered to the same message");
        assert_eq!(
            codes(&b),
            vec![FindingCode::FieldAsAttribute, FindingCode::FieldAsAttribute]
        );
    }

    #[test]
    fn lower_case_names_and_no_declaration() {
        let q = Quirks {
            lower_case_names: true,
            no_declaration: true,
            ..Quirks::default()
        };
        let b = keepalive().encode_with_quirks(Charset::Gb2312, q);
        assert!(b.starts_with(b"<notify>\n    <cmdtype>Keepalive</cmdtype>\n    <sn>5</sn>"));
        let d = Message::decode(&b).unwrap();
        assert_eq!(d.message, keepalive());
        let c = codes(&b);
        assert!(c.contains(&FindingCode::MissingDeclaration), "{c:?}");
        assert!(c.contains(&FindingCode::RootNameCase), "{c:?}");
        assert!(c.contains(&FindingCode::ElementNameCase), "{c:?}");
        assert!(d.findings.iter().all(|f| f.severity == Severity::Error));
    }

    #[test]
    fn wrong_encoding_declared_both_ways() {
        let mut m = Message::new(
            9,
            DEV,
            Body::DeviceInfoResponse(super::super::DeviceInfoResponse {
                device_name: Some("东门摄像机".into()),
                result: Some(ResultType::Ok),
                ..Default::default()
            }),
        );
        m.root = super::super::Root::Response;
        let q = Quirks {
            wrong_encoding_declared: true,
            ..Quirks::default()
        };
        for cs in [Charset::Gb2312, Charset::Utf8] {
            let b = m.encode_with_quirks(cs, q);
            let decl = format!("encoding=\"{}\"", cs.label());
            assert!(b.windows(decl.len()).any(|w| w == decl.as_bytes()));
            assert_eq!(std::str::from_utf8(&b).is_ok(), cs.is_gb(), "{cs:?}");
            let d = Message::decode(&b).unwrap();
            assert_eq!(d.message, m, "{cs:?}: the text is recovered");
            assert_eq!(codes(&b), vec![FindingCode::EncodingMismatch], "{cs:?}");
        }
    }

    #[test]
    fn no_quirk_is_the_plain_encoding() {
        let m = keepalive();
        assert_eq!(
            m.encode_with_quirks(Charset::Gb2312, Quirks::default()),
            m.encode(Charset::Gb2312)
        );
        assert!(codes(&m.encode(Charset::Gb2312)).is_empty());
    }

    #[test]
    fn strict_decoding_refuses_each_quirk() {
        let all = [
            Quirks {
                attribute_fields: true,
                ..Quirks::default()
            },
            Quirks {
                lower_case_names: true,
                ..Quirks::default()
            },
            Quirks {
                no_declaration: true,
                ..Quirks::default()
            },
        ];
        for q in all {
            let b = keepalive().encode_with_quirks(Charset::Gb2312, q);
            match Message::decode_with(&b, DecodeOptions::STRICT) {
                Err(DecodeError::Strict(f)) => {
                    assert_eq!(f.severity, Severity::Error);
                    assert!(FindingCode::RECOVERED.iter().any(|c| f.code == *c));
                }
                other => panic!("{q:?}: {other:?}"),
            }
        }
        let clean = keepalive().encode(Charset::Gb2312);
        assert!(Message::decode_with(&clean, DecodeOptions::STRICT).is_ok());
    }
}
