//! SDP (RFC 4566) as GB/T 28181 uses it to set up media (spec sections 媒体传输方式,
//! 实时预览, 录像回放, 文件下载, 语音广播, 语音对讲): `s=Play|Playback|Download|Talk`,
//! `u=` and `t=` for history, `m=video|audio <port> RTP/AVP|TCP/RTP/AVP`, `a=rtpmap` for
//! PS/96, H264/98, MPEG4/97 and PCMA/8, direction, `a=setup` / `a=connection`
//! (RFC 4145) for the TCP modes, `a=downloadspeed`, `a=filesize`, and the two GB lines
//! `y=` (SSRC) and `f=` (media parameters).
//!
//! Two layers:
//!
//! - [`SessionDescription`] is the wire form: the lines exactly as received, each with
//!   its own line ending, so `parse(b).to_bytes() == b` for any UTF-8 input. Typed
//!   accessors ([`SessionDescription::ssrc`], [`SessionDescription::media`], ...) read
//!   it; [`SessionDescription::parse`] also returns every [`Finding`] (missing `y=`,
//!   `y=` not ten digits, `s=` not one of the four, TCP media without `a=setup`, ...).
//! - [`GbSession`] is the typed description a driver builds an offer or answer from
//!   ([`GbSession::to_sdp`]) and reads one into ([`GbSession::from_sdp`]).
//!
//! The codec is written here rather than wrapping the `sdp-types` crate. That crate
//! re-encodes from its typed session, so it drops the GB `y=` and `f=` lines (not
//! RFC 4566 line types), normalises line endings and order, and stops at the first
//! syntax error. A conformance harness must keep the peer's bytes, read past
//! deviations while reporting them, and be able to send a deliberately broken
//! description; carrying `y=`/`f=` beside sdp-types would have left the other two
//! unmet.

mod check;
pub mod fields;
pub mod finding;
mod gb;

#[cfg(test)]
mod tests;

pub use fields::{
    Attribute, AudioParams, Connection, ConnectionMode, Direction, MediaKind, MediaLine,
    MediaParams, MediaProto, Origin, Param, ParamCounts, Rtpmap, SessionKind, Setup, Ssrc,
    SsrcError, Timing, VideoParams,
};
pub use finding::{Finding, FindingCode, Severity};
pub use gb::{GbMedia, GbSession};

use std::fmt;

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eol {
    /// `\r\n` (RFC 4566).
    CrLf,
    /// `\n` alone.
    Lf,
    /// The last line had no terminator.
    None,
}

impl Eol {
    fn as_str(self) -> &'static str {
        match self {
            Eol::CrLf => "\r\n",
            Eol::Lf => "\n",
            Eol::None => "",
        }
    }
}

/// One line as received: its text without the terminator, and the terminator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    /// The text, e.g. `y=0100000001`.
    pub text: String,
    /// How it ended.
    pub eol: Eol,
}

impl Line {
    /// `<key>=<value>` ended by CRLF.
    pub fn new(key: char, value: impl fmt::Display) -> Self {
        Line {
            text: format!("{key}={value}"),
            eol: Eol::CrLf,
        }
    }

    /// The type letter, when the line has the `<letter>=` form.
    pub fn key(&self) -> Option<char> {
        let mut c = self.text.chars();
        match (c.next(), c.next()) {
            (Some(k), Some('=')) if k.is_ascii_alphabetic() => Some(k),
            _ => None,
        }
    }

    /// The text after `<letter>=`; empty for a malformed line.
    pub fn value(&self) -> &str {
        if self.key().is_some() {
            &self.text[2..]
        } else {
            ""
        }
    }

    fn is(&self, key: char) -> bool {
        self.key() == Some(key)
    }
}

/// A description as lines, in wire order. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// Every line, `m=` lines included.
    pub lines: Vec<Line>,
}

/// What [`SessionDescription::parse`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The description.
    pub sdp: SessionDescription,
    /// Every rule it broke, in line order.
    pub findings: Vec<Finding>,
}

impl Parsed {
    /// Whether a finding with this code was reported.
    pub fn has(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// The codes reported, in order.
    pub fn codes(&self) -> Vec<FindingCode> {
        self.findings
            .iter()
            .filter_map(|f| FindingCode::from_code(f.code))
            .collect()
    }
}

/// One `m=` section: the `m=` line and the lines after it up to the next `m=`.
#[derive(Debug, Clone, Copy)]
pub struct MediaSection<'a> {
    /// Index of the `m=` line in [`SessionDescription::lines`].
    pub index: usize,
    /// The `m=` line and its section.
    pub lines: &'a [Line],
}

impl<'a> MediaSection<'a> {
    /// The parsed `m=` line.
    pub fn media_line(&self) -> Option<MediaLine> {
        MediaLine::parse(self.lines.first()?.value())
    }

    /// Media-level `c=`.
    pub fn connection(&self) -> Option<Connection> {
        self.value('c').and_then(Connection::parse)
    }

    /// The first value of a line type within the section.
    pub fn value(&self, key: char) -> Option<&'a str> {
        self.lines[1..].iter().find(|l| l.is(key)).map(Line::value)
    }

    /// Every `a=` line of the section, parsed.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute> + 'a {
        self.lines[1..]
            .iter()
            .filter(|l| l.is('a'))
            .map(|l| Attribute::parse(l.value()))
    }

    /// The first attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<Attribute> {
        self.attributes().find(|a| a.name == name)
    }

    /// Every parsable `a=rtpmap`.
    pub fn rtpmaps(&self) -> Vec<Rtpmap> {
        self.attributes()
            .filter(|a| a.name == "rtpmap")
            .filter_map(|a| Rtpmap::parse(a.value.as_deref()?))
            .collect()
    }

    /// The first direction attribute.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .find_map(|a| a.value.is_none().then(|| Direction::parse(&a.name))?)
    }

    /// `a=setup`, when its value is valid.
    pub fn setup(&self) -> Option<Setup> {
        Setup::parse(self.attribute("setup")?.value.as_deref()?)
    }

    /// `a=connection`, when its value is valid.
    pub fn connection_mode(&self) -> Option<ConnectionMode> {
        ConnectionMode::parse(self.attribute("connection")?.value.as_deref()?)
    }

    /// `a=downloadspeed`, when it is a number.
    pub fn download_speed(&self) -> Option<u32> {
        self.attribute("downloadspeed")?.value?.trim().parse().ok()
    }

    /// `a=filesize`, when it is a number.
    pub fn file_size(&self) -> Option<u64> {
        self.attribute("filesize")?.value?.trim().parse().ok()
    }
}

/// Decoding failures that leave nothing to report findings on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No bytes, or only whitespace.
    #[error("SDP body is empty")]
    Empty,
}

impl SessionDescription {
    /// Splits the body into lines (any UTF-8 is kept byte for byte; other bytes are
    /// replaced) and runs every check. Fails only on an empty body.
    pub fn parse(data: &[u8]) -> Result<Parsed, ParseError> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Empty);
        }
        let (text, utf8) = match std::str::from_utf8(data) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), true),
            Err(_) => (String::from_utf8_lossy(data), false),
        };
        let sdp = Self::from_text(&text);
        let mut findings = Vec::new();
        if !utf8 {
            findings.push(
                FindingCode::NotUtf8
                    .at(None, "body is not valid UTF-8; invalid bytes were replaced"),
            );
        }
        findings.extend(sdp.check());
        Ok(Parsed { sdp, findings })
    }

    /// Splits text into lines without checking anything.
    pub fn from_text(text: &str) -> Self {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('\n') {
                Some(i) => {
                    let (body, eol) = match rest[..i].strip_suffix('\r') {
                        Some(b) => (b, Eol::CrLf),
                        None => (&rest[..i], Eol::Lf),
                    };
                    lines.push(Line {
                        text: body.to_string(),
                        eol,
                    });
                    rest = &rest[i + 1..];
                }
                None => {
                    lines.push(Line {
                        text: rest.to_string(),
                        eol: Eol::None,
                    });
                    rest = "";
                }
            }
        }
        SessionDescription { lines }
    }

    /// Runs every RFC 4566 and GB/T 28181 check.
    pub fn check(&self) -> Vec<Finding> {
        check::check(self)
    }

    /// Appends the lines, each with its own terminator.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for l in &self.lines {
            out.extend_from_slice(l.text.as_bytes());
            out.extend_from_slice(l.eol.as_str().as_bytes());
        }
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    fn first_media(&self) -> usize {
        self.lines
            .iter()
            .position(|l| l.is('m'))
            .unwrap_or(self.lines.len())
    }

    /// The lines before the first `m=`.
    pub fn session_lines(&self) -> &[Line] {
        &self.lines[..self.first_media()]
    }

    /// The first session-level value of a line type.
    pub fn session_value(&self, key: char) -> Option<&str> {
        self.session_lines()
            .iter()
            .find(|l| l.is(key))
            .map(Line::value)
    }

    /// The first value of a line type anywhere (for `y=` and `f=`, which GB/T 28181
    /// writes after the media lines).
    pub fn any_value(&self, key: char) -> Option<&str> {
        self.lines.iter().find(|l| l.is(key)).map(Line::value)
    }

    /// The media sections in order.
    pub fn media(&self) -> Vec<MediaSection<'_>> {
        let starts: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is('m'))
            .map(|(i, _)| i)
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let end = starts.get(k + 1).copied().unwrap_or(self.lines.len());
                MediaSection {
                    index: i,
                    lines: &self.lines[i..end],
                }
            })
            .collect()
    }

    /// `o=`.
    pub fn origin(&self) -> Option<Origin> {
        Origin::parse(self.session_value('o')?)
    }

    /// `s=` as written.
    pub fn session_name(&self) -> Option<&str> {
        self.session_value('s')
    }

    /// The GB operation `s=` names (any letter case).
    pub fn kind(&self) -> Option<SessionKind> {
        SessionKind::parse(self.session_name()?)
    }

    /// `u=`.
    pub fn uri(&self) -> Option<&str> {
        self.session_value('u')
    }

    /// Session-level `c=`.
    pub fn connection(&self) -> Option<Connection> {
        Connection::parse(self.session_value('c')?)
    }

    /// `t=`.
    pub fn timing(&self) -> Option<Timing> {
        Timing::parse(self.session_value('t')?)
    }

    /// `y=` as written.
    pub fn ssrc_value(&self) -> Option<&str> {
        self.any_value('y')
    }

    /// `y=` read leniently (1 to 10 digits).
    pub fn ssrc(&self) -> Option<Ssrc> {
        Ssrc::parse(self.ssrc_value()?)
    }

    /// `f=` parsed.
    pub fn media_params(&self) -> Option<MediaParams> {
        MediaParams::parse(self.any_value('f')?)
    }

    /// Replaces the value of the first line of this type, or appends one at the end
    /// (for building deliberately different descriptions in negative tests).
    pub fn set(&mut self, key: char, value: impl fmt::Display) {
        let eol = self.lines.first().map_or(Eol::CrLf, |l| l.eol);
        let eol = if eol == Eol::None { Eol::CrLf } else { eol };
        match self.lines.iter_mut().find(|l| l.is(key)) {
            Some(l) => l.text = format!("{key}={value}"),
            None => {
                if let Some(last) = self.lines.last_mut().filter(|l| l.eol == Eol::None) {
                    last.eol = eol;
                }
                self.lines.push(Line {
                    text: format!("{key}={value}"),
                    eol,
                });
            }
        }
    }

    /// Removes every line of this type.
    pub fn remove(&mut self, key: char) {
        self.lines.retain(|l| !l.is(key));
    }

    /// The lenient reading of a `y=` with fewer than ten digits
    /// ([`FindingCode::SsrcNotTenDigits`]): the same SSRC in its ten-digit
    /// form (附录F: dddddddddd), as the writer meant it when it dropped the
    /// leading zeros. `true` when the line was rewritten; a `y=` that is not
    /// a decimal SSRC, or already ten digits, is left as it is.
    pub fn recover_ssrc(&mut self) -> bool {
        let Some(line) = self.lines.iter_mut().find(|l| l.is('y')) else {
            return false;
        };
        let v = line.value();
        if Ssrc::is_strict(v) {
            return false;
        }
        let Some(s) = Ssrc::parse(v).filter(|_| !v.is_empty()) else {
            return false;
        };
        line.text = format!("y={s}");
        true
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            write!(f, "{}{}", l.text, l.eol.as_str())?;
        }
        Ok(())
    }
}
