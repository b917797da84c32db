//! The MANSCDP `Content-Type` (保活信令流程: `Content-type: Application/MANSCDP+xml`).
//!
//! Call [`match_content_type`] on the SIP header value before decoding a
//! MESSAGE/NOTIFY body: `Exact` and `Lenient` bodies are MANSCDP, the latter
//! with a finding to report.

use super::finding::{Finding, FindingCode};

/// The strict form of the content type.
pub const CONTENT_TYPE: &str = "Application/MANSCDP+xml";

/// How a Content-Type value relates to MANSCDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentTypeMatch {
    /// Exactly `Application/MANSCDP+xml`.
    Exact,
    /// MANSCDP in another spelling (case, parameters, generic XML type).
    Lenient(Vec<Finding>),
    /// Not a MANSCDP body.
    NotManscdp,
}

impl ContentTypeMatch {
    /// True for `Exact` and `Lenient`.
    pub fn is_manscdp(&self) -> bool {
        !matches!(self, ContentTypeMatch::NotManscdp)
    }
}

/// Classify a Content-Type header value.
pub fn match_content_type(value: &str) -> ContentTypeMatch {
    let (media, params) = match value.split_once(';') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (value.trim(), None),
    };
    let mut findings = Vec::new();
    if media == CONTENT_TYPE {
        // strict spelling
    } else if media.eq_ignore_ascii_case(CONTENT_TYPE) {
        findings.push(FindingCode::ContentTypeCase.at(
            "Content-Type",
            format!("{media:?} differs in case from {CONTENT_TYPE:?}"),
        ));
    } else if media.eq_ignore_ascii_case("application/xml")
        || media.eq_ignore_ascii_case("text/xml")
    {
        findings.push(FindingCode::ContentTypeGenericXml.at(
            "Content-Type",
            format!("{media:?} used for a MANSCDP body instead of {CONTENT_TYPE:?}"),
        ));
    } else {
        return ContentTypeMatch::NotManscdp;
    }
    if let Some(p) = params.filter(|p| !p.is_empty()) {
        findings.push(FindingCode::ContentTypeParameters.at("Content-Type",
            format!("parameters {p:?} are not part of the MANSCDP content type; the XML declaration decides the charset"),
        ));
    }
    if findings.is_empty() {
        ContentTypeMatch::Exact
    } else {
        ContentTypeMatch::Lenient(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(v: &str) -> Vec<FindingCode> {
        match match_content_type(v) {
            ContentTypeMatch::Lenient(f) => f
                .iter()
                .map(|f| FindingCode::from_code(f.code).expect("a known code"))
                .collect(),
            other => panic!("{v:?} gave {other:?}"),
        }
    }

    #[test]
    fn strict_form() {
        assert_eq!(
            match_content_type("Application/MANSCDP+xml"),
            ContentTypeMatch::Exact
        );
        assert_eq!(
            match_content_type("  Application/MANSCDP+xml "),
            ContentTypeMatch::Exact
        );
    }

    #[test]
    fn spellings_from_the_documents() {
        assert_eq!(
            codes("application/MANSCDP+xml"),
            vec![FindingCode::ContentTypeCase]
        );
        assert_eq!(
            codes("application/MANSCDP+XML"),
            vec![FindingCode::ContentTypeCase]
        );
        assert_eq!(
            codes("application/manscdp+xml"),
            vec![FindingCode::ContentTypeCase]
        );
        assert_eq!(
            codes("application/Xml"),
            vec![FindingCode::ContentTypeGenericXml]
        );
        assert_eq!(
            codes("Application/MANSCDP+xml; charset=GB2312"),
            vec![FindingCode::ContentTypeParameters]
        );
    }

    #[test]
    fn other_types() {
        assert_eq!(
            match_content_type("application/sdp"),
            ContentTypeMatch::NotManscdp
        );
        assert_eq!(match_content_type(""), ContentTypeMatch::NotManscdp);
        assert!(!match_content_type("Application/MANSRTSP").is_manscdp());
    }
}
