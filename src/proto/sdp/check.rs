//! The checks behind [`SessionDescription::check`]: RFC 4566 structure, then the
//! GB/T 28181 rules, each reported as a [`Finding`] with the line at fault.

use super::fields::NTP_UNIX_OFFSET;
use super::{
    Direction, Finding, FindingCode as C, MediaParams, MediaProto, MediaSection, Rtpmap,
    SessionDescription, SessionKind, Setup, Ssrc, Timing,
};
use crate::proto::sdp::{Eol, MediaKind};

/// Line types of RFC 4566 §5 plus the GB/T 28181 `y=` and `f=`.
const KNOWN_TYPES: &str = "vosiuepcbtrzkamyf";

struct Checker {
    out: Vec<Finding>,
}

impl Checker {
    fn add(&mut self, code: C, line: Option<usize>, msg: impl Into<String>) {
        self.out.push(code.at(line.map(|i| i + 1), msg));
    }
}

pub(super) fn check(sdp: &SessionDescription) -> Vec<Finding> {
    let mut c = Checker { out: Vec::new() };
    lines(sdp, &mut c);
    session(sdp, &mut c);
    let kind = sdp.kind();
    timing(sdp, kind, &mut c);
    ssrc(sdp, kind, &mut c);
    params(sdp, &mut c);
    let session_c = sdp.session_value('c').is_some();
    for m in sdp.media() {
        media(&m, session_c, &mut c);
    }
    c.out.sort_by_key(|f| f.line().unwrap_or(0));
    c.out
}

fn lines(sdp: &SessionDescription, c: &mut Checker) {
    let mut lf_reported = false;
    for (i, l) in sdp.lines.iter().enumerate() {
        match l.key() {
            None => c.add(
                C::MalformedLine,
                Some(i),
                format!("{:?} is not <type>=<value>", l.text),
            ),
            Some(k) if !KNOWN_TYPES.contains(k) => c.add(
                C::UnknownLineType,
                Some(i),
                format!("line type {k:?} is not defined by RFC 4566 or GB/T 28181"),
            ),
            Some(_) => {}
        }
        if l.eol == Eol::Lf && !lf_reported {
            lf_reported = true;
            c.add(
                C::LfLineEnding,
                Some(i),
                "lines end with LF instead of CRLF",
            );
        }
    }
}

fn position(sdp: &SessionDescription, key: char) -> Option<usize> {
    sdp.session_lines()
        .iter()
        .position(|l| l.key() == Some(key))
}

fn session(sdp: &SessionDescription, c: &mut Checker) {
    match sdp.lines.first() {
        Some(l) if l.key() == Some('v') && l.value() == "0" => {}
        Some(l) if l.key() == Some('v') => c.add(
            C::Version,
            Some(0),
            format!("v={} instead of v=0", l.value()),
        ),
        _ => c.add(
            C::Version,
            Some(0),
            "the description does not start with v=0",
        ),
    }
    for key in ['o', 's', 't'] {
        if position(sdp, key).is_none() {
            c.add(
                C::MissingSessionField,
                None,
                format!("no session-level {key}= line"),
            );
        }
    }
    if let Some(i) = position(sdp, 'o') {
        if sdp.origin().is_none() {
            c.add(
                C::Origin,
                Some(i),
                format!("o={} does not have six fields", sdp.lines[i].value()),
            );
        }
    }
    if let Some(i) = position(sdp, 'c') {
        if sdp.connection().is_none() {
            c.add(
                C::Connection,
                Some(i),
                format!("c={} does not have three fields", sdp.lines[i].value()),
            );
        }
    }
    if let Some(i) = position(sdp, 's') {
        let s = sdp.lines[i].value();
        match SessionKind::parse(s) {
            Some(k) if k.as_str() == s => {}
            Some(k) => c.add(
                C::SessionNameCase,
                Some(i),
                format!("s={s} instead of s={k}"),
            ),
            None => c.add(
                C::SessionName,
                Some(i),
                format!("s={s} is not Play, Playback, Download or Talk"),
            ),
        }
    }
    if let Some(k) = sdp.kind().filter(|k| k.is_history()) {
        match position(sdp, 'u') {
            None => c.add(
                C::UriMissing,
                None,
                format!("s={k} without u=<channel ID>:<download type>"),
            ),
            Some(i) => {
                let u = sdp.lines[i].value();
                let ok = u.split_once(':').is_some_and(|(id, t)| {
                    id.len() == 20
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !t.is_empty()
                        && t.bytes().all(|b| b.is_ascii_digit())
                });
                if !ok {
                    c.add(
                        C::UriFormat,
                        Some(i),
                        format!("u={u} is not <20-digit channel ID>:<download type>"),
                    );
                }
            }
        }
    }
}

fn timing(sdp: &SessionDescription, kind: Option<SessionKind>, c: &mut Checker) {
    let Some(i) = position(sdp, 't') else { return };
    let v = sdp.lines[i].value();
    let Some(t) = Timing::parse(v) else {
        c.add(
            C::Timing,
            Some(i),
            format!("t={v} is not two decimal numbers"),
        );
        return;
    };
    if t.start > NTP_UNIX_OFFSET || t.stop > NTP_UNIX_OFFSET {
        c.add(
            C::NtpTime,
            Some(i),
            format!("t={v} looks like NTP time; GB/T 28181 writes Unix seconds"),
        );
    }
    match kind {
        Some(k) if k.is_history() => {
            let ranged = t.start != 0 && t.stop != 0 && t.start < t.stop;
            if !ranged {
                c.add(
                    C::TimeRange,
                    Some(i),
                    format!("s={k} needs t=<start> <stop> with start < stop, got t={v}"),
                );
            }
        }
        Some(k) if !t.is_live() => c.add(
            C::LiveTiming,
            Some(i),
            format!("s={k} with t={v} instead of t=0 0"),
        ),
        _ => {}
    }
}

fn ssrc(sdp: &SessionDescription, kind: Option<SessionKind>, c: &mut Checker) {
    let ys: Vec<usize> = (0..sdp.lines.len())
        .filter(|&i| sdp.lines[i].key() == Some('y'))
        .collect();
    let Some(&i) = ys.first() else {
        c.add(C::SsrcMissing, None, "no y= line (SSRC)");
        return;
    };
    for &j in &ys[1..] {
        c.add(C::SsrcDuplicate, Some(j), "a second y= line");
    }
    let v = sdp.lines[i].value();
    let Some(s) = Ssrc::parse(v) else {
        c.add(
            C::SsrcMalformed,
            Some(i),
            format!("y={v} is not a decimal SSRC"),
        );
        return;
    };
    if !Ssrc::is_strict(v) {
        c.add(
            C::SsrcNotTenDigits,
            Some(i),
            format!("y={v} has {} digits instead of 10", v.len()),
        );
        return;
    }
    match (s.is_history(), kind) {
        (None, _) => c.add(
            C::SsrcFlagDigit,
            Some(i),
            format!(
                "y={v}: first digit {} is neither 0 (live) nor 1 (history)",
                s.flag_digit()
            ),
        ),
        (Some(h), Some(k)) if h != k.is_history() => c.add(
            C::SsrcHistoryFlag,
            Some(i),
            format!(
                "y={v}: first digit {} with s={k}, which needs {}",
                s.flag_digit(),
                u8::from(k.is_history())
            ),
        ),
        _ => {}
    }
}

fn params(sdp: &SessionDescription, c: &mut Checker) {
    let fs: Vec<usize> = (0..sdp.lines.len())
        .filter(|&i| sdp.lines[i].key() == Some('f'))
        .collect();
    let Some(&i) = fs.first() else { return };
    for &j in &fs[1..] {
        c.add(C::ParamsDuplicate, Some(j), "a second f= line");
    }
    let v = sdp.lines[i].value();
    let Some((_, n)) = MediaParams::parse_counted(v) else {
        c.add(
            C::ParamsMalformed,
            Some(i),
            format!("f={v} does not start with v/"),
        );
        return;
    };
    if n.video != 5 {
        c.add(
            C::ParamsVideoFields,
            Some(i),
            format!("f={v}: video part has {} fields instead of 5", n.video),
        );
    }
    match n.audio {
        None => c.add(C::ParamsAudioFields, Some(i), format!("f={v}: no a part")),
        Some(3) => {}
        Some(k) => c.add(
            C::ParamsAudioFields,
            Some(i),
            format!("f={v}: audio part has {k} fields instead of 3"),
        ),
    }
}

fn media(m: &MediaSection<'_>, session_c: bool, c: &mut Checker) {
    let at = |k: usize| Some(m.index + k);
    let Some(ml) = m.media_line() else {
        c.add(
            C::MediaLine,
            at(0),
            format!(
                "m={} is not <media> <port> <proto> <fmt>...",
                m.lines[0].value()
            ),
        );
        return;
    };
    if ml.formats.is_empty() {
        c.add(C::MediaLine, at(0), "m= lists no format");
    }
    match &ml.proto {
        MediaProto::RtpAvp | MediaProto::TcpRtpAvp => {}
        p if p.is_tcp() => c.add(
            C::TransportSpelling,
            at(0),
            format!("transport {p} instead of TCP/RTP/AVP"),
        ),
        p => c.add(
            C::TransportUnknown,
            at(0),
            format!("transport {p} is neither RTP/AVP nor TCP/RTP/AVP"),
        ),
    }
    let has_c = m.lines[1..].iter().any(|l| l.key() == Some('c'));
    if !session_c && !has_c {
        c.add(
            C::Connection,
            at(0),
            "media without c= and no session-level c=",
        );
    }
    if let Some(k) = m.lines[1..].iter().position(|l| l.key() == Some('c')) {
        if m.connection().is_none() {
            c.add(
                C::Connection,
                at(k + 1),
                format!("c={} does not have three fields", m.lines[k + 1].value()),
            );
        }
    }
    let pts = ml.payload_types();
    let mut mapped = Vec::new();
    let mut directions = Vec::new();
    let mut setup_line = None;
    for (k, l) in m.lines.iter().enumerate().skip(1) {
        if l.key() != Some('a') {
            continue;
        }
        let a = super::Attribute::parse(l.value());
        let val = a.value.as_deref().unwrap_or("");
        match a.name.as_str() {
            "rtpmap" => match Rtpmap::parse(val) {
                None => c.add(
                    C::Rtpmap,
                    at(k),
                    format!("a=rtpmap:{val} is not <pt> <encoding>/<clock>"),
                ),
                Some(r) => {
                    mapped.push(r.payload_type);
                    match (r.clock_rate, r.expected_clock_rate()) {
                        (None, _) => c.add(
                            C::Rtpmap,
                            at(k),
                            format!("a=rtpmap:{val} has no clock rate"),
                        ),
                        (Some(got), Some(want)) if got != want => c.add(
                            C::ClockRate,
                            at(k),
                            format!("{} at {got} Hz instead of {want} Hz", r.encoding),
                        ),
                        _ => {}
                    }
                    if !pts.contains(&r.payload_type) {
                        c.add(
                            C::RtpmapUnlisted,
                            at(k),
                            format!(
                                "a=rtpmap for payload type {} that m= does not list",
                                r.payload_type
                            ),
                        );
                    }
                }
            },
            "setup" => {
                setup_line = Some(k);
                if Setup::parse(val).is_none() {
                    c.add(C::SetupInvalid, at(k), format!("a=setup:{val}"));
                }
            }
            "downloadspeed" if !val.trim().parse::<u32>().is_ok_and(|n| n > 0) => {
                c.add(C::DownloadSpeed, at(k), format!("a=downloadspeed:{val}"));
            }
            "filesize" if val.trim().parse::<u64>().is_err() => {
                c.add(C::FileSize, at(k), format!("a=filesize:{val}"));
            }
            name if a.value.is_none() && Direction::parse(name).is_some() => directions.push(k),
            _ => {}
        }
    }
    for pt in pts.iter().filter(|&&p| p >= 96 && !mapped.contains(&p)) {
        c.add(
            C::RtpmapMissing,
            at(0),
            format!("dynamic payload type {pt} has no a=rtpmap"),
        );
    }
    match directions.as_slice() {
        [] => c.add(
            C::DirectionMissing,
            at(0),
            "no sendrecv/sendonly/recvonly/inactive attribute",
        ),
        [_] => {}
        [_, rest @ ..] => {
            for &k in rest {
                c.add(C::DirectionConflict, at(k), "a second direction attribute");
            }
        }
    }
    match (ml.proto.is_tcp(), setup_line) {
        (true, None) => c.add(
            C::SetupMissing,
            at(0),
            format!("{} media without a=setup", ml.proto),
        ),
        (false, Some(k)) => c.add(C::SetupOnUdp, at(k), "a=setup on RTP/AVP (UDP) media"),
        _ => {}
    }
    if ml.kind == MediaKind::Video && !m.rtpmaps().iter().any(Rtpmap::is_ps) {
        c.add(
            C::PsMissing,
            at(0),
            "video media without a=rtpmap:<pt> PS/90000",
        );
    }
}
