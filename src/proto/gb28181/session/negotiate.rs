//! The SDP offer/answer of a GB/T 28181 media session (RFC 3264, RFC 4145, spec
//! 媒体传输方式 and 实时预览): how the answerer builds its answer, how the offerer judges
//! it, and what both sides take from the pair — per media, who sends, who opens the
//! TCP connection, to which address, with which payload type and SSRC.

use std::net::{IpAddr, SocketAddr};

use crate::proto::sdp::{
    ConnectionMode, Direction, GbMedia, GbSession, MediaKind, MediaParams, Rtpmap, SessionKind,
    Setup, Ssrc, Timing,
};

use super::finding::{self as rules, Finding};

/// How one negotiated media travels, named from this side as RFC 4145 names
/// `a=setup`: `TcpActive` connects, `TcpPassive` listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaTransport {
    /// `RTP/AVP` over UDP.
    Udp,
    /// `TCP/RTP/AVP`, this side connects to the peer's port.
    TcpActive,
    /// `TCP/RTP/AVP`, this side listens on its own port.
    TcpPassive,
}

impl MediaTransport {
    /// Whether the media runs over TCP.
    pub fn is_tcp(self) -> bool {
        !matches!(self, MediaTransport::Udp)
    }

    /// The `a=setup` this side announces (`None` for UDP).
    pub fn setup(self) -> Option<Setup> {
        match self {
            MediaTransport::Udp => None,
            MediaTransport::TcpActive => Some(Setup::Active),
            MediaTransport::TcpPassive => Some(Setup::Passive),
        }
    }

    /// The transport of an offerer that announces `setup` (`None`: UDP).
    pub fn from_setup(setup: Option<Setup>) -> Self {
        match setup {
            None => MediaTransport::Udp,
            Some(Setup::Passive) => MediaTransport::TcpPassive,
            Some(_) => MediaTransport::TcpActive,
        }
    }
}

/// One media stream both sides agreed on, seen from this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// `video` or `audio`.
    pub kind: MediaKind,
    /// What this side does: `SendOnly` sends, `RecvOnly` receives, `SendRecv` both.
    pub direction: Direction,
    /// UDP, or who opens the TCP connection.
    pub transport: MediaTransport,
    /// This side's media address as announced (`c=` and `m=` port).
    pub local: SocketAddr,
    /// The peer's media address as announced.
    pub remote: SocketAddr,
    /// The RTP payload type in use.
    pub payload_type: u8,
    /// Its encoding name (`PS`, `PCMA`).
    pub encoding: String,
}

impl NegotiatedMedia {
    /// Whether this side sends on it.
    pub fn sends(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::SendRecv)
    }

    /// Whether this side receives on it.
    pub fn receives(&self) -> bool {
        matches!(self.direction, Direction::RecvOnly | Direction::SendRecv)
    }
}

/// A concluded offer/answer: what to stream, and the two descriptions it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `s=` of the offer.
    pub kind: SessionKind,
    /// The SSRC the media sender writes: the answer's `y=`, else the offer's.
    pub ssrc: Ssrc,
    /// The media streams in use (refused ones are left out).
    pub media: Vec<NegotiatedMedia>,
    /// The offer as read (or sent).
    pub offer: GbSession,
    /// The answer as read (or sent).
    pub answer: GbSession,
}

impl Negotiated {
    /// The first media of a kind.
    pub fn media_of(&self, kind: &MediaKind) -> Option<&NegotiatedMedia> {
        self.media.iter().find(|m| &m.kind == kind)
    }

    /// History time range (`t=` of the offer), `None` for live.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        let t = self.offer.timing;
        (!t.is_live()).then_some((t.start, t.stop))
    }

    /// `a=downloadspeed` of the offer.
    pub fn download_speed(&self) -> Option<u32> {
        self.offer.media.iter().find_map(|m| m.download_speed)
    }

    /// `a=filesize` of the answer.
    pub fn file_size(&self) -> Option<u64> {
        self.answer.media.iter().find_map(|m| m.file_size)
    }

    /// `f=` of the offer (what the receiver asked for).
    pub fn media_params(&self) -> Option<&MediaParams> {
        self.offer.media_params.as_ref()
    }
}

/// The payload type and encoding this stack can carry for an offered media: PS for
/// video; PCMA, else PS, for audio.
pub(crate) fn usable_format(m: &GbMedia) -> Option<(u8, &'static str)> {
    let listed = |pt: u8| m.formats.iter().any(|f| f.trim() == pt.to_string());
    let mapped = |name: &str| {
        m.rtpmaps
            .iter()
            .find(|r| r.encoding.eq_ignore_ascii_case(name))
            .map(|r| r.payload_type)
    };
    let ps = m.ps_payload_type().or_else(|| {
        // A listed 96 without any rtpmap: read as PS, the GB default.
        (listed(96) && !m.rtpmaps.iter().any(|r| r.payload_type == 96)).then_some(96)
    });
    match m.kind {
        MediaKind::Video => ps.map(|pt| (pt, "PS")),
        MediaKind::Audio => mapped("PCMA")
            .or_else(|| listed(8).then_some(8))
            .map(|pt| (pt, "PCMA"))
            .or_else(|| ps.map(|pt| (pt, "PS"))),
        _ => None,
    }
}

fn rtpmap_for(pt: u8, encoding: &str) -> Rtpmap {
    if encoding == "PCMA" && pt == 8 {
        Rtpmap::pcma()
    } else if encoding == "PCMA" {
        Rtpmap::new(pt, "PCMA", 8000)
    } else {
        Rtpmap::ps(pt)
    }
}

/// RFC 4145 §4.1: "The default value of the setup attribute in an offer/answer
/// exchange is 'active' in the offer and 'passive' in the answer."
fn offered_setup(m: &GbMedia) -> Setup {
    m.setup.unwrap_or(Setup::Active)
}

fn answered_setup(m: &GbMedia) -> Setup {
    m.setup.unwrap_or(Setup::Passive)
}

/// The deliberate deviations an answerer can make (negative tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AnswerFaults {
    pub wrong_ssrc: bool,
    pub no_y: bool,
    pub wrong_setup: bool,
    /// Leave the direction attribute out of every answered media.
    pub no_direction: bool,
}

/// What the answerer puts in its description besides what the offer dictates.
#[derive(Debug, Clone)]
pub(crate) struct AnswerSpec<'a> {
    pub local_id: &'a str,
    pub media_ip: IpAddr,
    pub port: u16,
    pub info: Option<&'a str>,
    pub media_params: Option<&'a MediaParams>,
    pub file_size: Option<u64>,
    /// Used when the offer has no `y=`.
    pub fallback_ssrc: Ssrc,
    pub faults: AnswerFaults,
}

/// Checks an offer the answerer is about to take: `s=` known, at least one media it
/// can carry. The error is the reason to refuse it (488).
pub(crate) fn check_offer(offer: &GbSession) -> Result<SessionKind, Finding> {
    let kind = offer.kind().ok_or_else(|| {
        rules::OFFER_UNUSABLE.finding(format!(
            "s={} is not Play, Playback, Download or Talk",
            offer.session_name
        ))
    })?;
    if !offer
        .media
        .iter()
        .any(|m| m.port != 0 && usable_format(m).is_some())
    {
        return Err(rules::OFFER_UNUSABLE
            .finding("no offered media this side can carry (video needs PS, audio PCMA or PS)"));
    }
    Ok(kind)
}

/// Builds the answer (RFC 3264 §6): one `m=` per offered media, refused ones with
/// port 0; the direction reversed, the TCP role per RFC 4145 §4.1, `t=` echoed, `y=`
/// echoed, `f=` from the spec.
pub(crate) fn build_answer(offer: &GbSession, spec: &AnswerSpec<'_>) -> GbSession {
    let kind = offer.kind().unwrap_or(SessionKind::Play);
    let mut answer = GbSession::new(kind, spec.local_id, spec.media_ip);
    // Keep the offer's spelling of s= (its case) so the pair reads the same.
    answer.session_name = offer.session_name.clone();
    answer.info = spec.info.map(str::to_string);
    // RFC 3264 §6: "The "t=" line in the answer MUST equal that of the offer."
    // The spec's own Playback and Download answers write t=0 0; the checker reports
    // that (gb.sdp.time-range) when it reads such an answer.
    answer.timing = offer.timing;
    // 文件下载: "u 字段代表下载通道 ID 和下载类型". The spec's answers leave u= out; the
    // answer repeats the offer's so a strict reader finds the channel on both sides.
    if kind.is_history() {
        answer.uri = offer.uri.clone();
    }
    for o in &offer.media {
        let Some((pt, encoding)) = usable_format(o).filter(|_| o.port != 0) else {
            let mut refused = GbMedia::new(o.kind.clone(), 0, None, Direction::Inactive);
            refused.proto = o.proto.clone();
            refused.formats = o.formats.clone();
            refused.direction = None;
            answer.media.push(refused);
            continue;
        };
        let setup = o.is_tcp().then(|| {
            if spec.faults.wrong_setup {
                offered_setup(o)
            } else {
                offered_setup(o).answer()
            }
        });
        let direction = o.direction.unwrap_or(Direction::SendRecv).reverse();
        let mut m = GbMedia::new(o.kind.clone(), spec.port, setup, direction);
        if spec.faults.no_direction {
            m.direction = None;
        }
        m.proto = o.proto.clone();
        m.formats = vec![pt.to_string()];
        m.rtpmaps = vec![rtpmap_for(pt, encoding)];
        if o.is_tcp() {
            m.connection_mode = Some(ConnectionMode::New);
        }
        if kind.is_history() {
            m.file_size = spec.file_size;
        }
        answer.media.push(m);
    }
    let ssrc = offer.ssrc.unwrap_or(spec.fallback_ssrc);
    answer.ssrc = if spec.faults.no_y {
        None
    } else if spec.faults.wrong_ssrc {
        // Same flag digit and domain, another stream number.
        Some(Ssrc(if ssrc.0 % 10_000 == 9_999 {
            ssrc.0 - 1
        } else {
            ssrc.0 + 1
        }))
    } else {
        Some(ssrc)
    };
    answer.media_params = spec.media_params.cloned();
    answer
}

/// How an answer's direction is read. RFC 3264 §6: "If a stream is offered as
/// sendonly, the corresponding stream MUST be marked as recvonly or inactive in the
/// answer. [...] If a stream is offered as recvonly, the corresponding stream MUST be
/// marked as sendonly or inactive in the answer." An answer without a direction
/// attribute would mean sendrecv by RFC 4566 §6, which the answerer may not give to a
/// recvonly or sendonly offer; decision: read it as the one answer the offer allows
/// with media flowing (recvonly -> sendonly, sendonly -> recvonly, sendrecv ->
/// sendrecv), and report the missing attribute ([`direction_finding`]).
pub(crate) fn answered_direction(offer: Direction, answer: Option<Direction>) -> Direction {
    answer.unwrap_or(offer.reverse())
}

/// What both descriptions allow: a side sends when `a` says it sends and `b` (the
/// other side's description, reversed) says so too; likewise for receiving.
fn both(a: Direction, b: Direction) -> Direction {
    let sends = |d: Direction| matches!(d, Direction::SendOnly | Direction::SendRecv);
    let receives = |d: Direction| matches!(d, Direction::RecvOnly | Direction::SendRecv);
    match (sends(a) && sends(b), receives(a) && receives(b)) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// The offerer's judgement of an answer's direction attribute: missing
/// ([`rules::DIRECTION_MISSING`]), or one RFC 3264 §6 does not allow for the offer
/// ([`rules::DIRECTION`]; `inactive`, which RFC 3264 allows, still stops the
/// stream the case asked for, so it is reported too).
pub(crate) fn direction_finding(offer: Direction, answer: Option<Direction>) -> Option<Finding> {
    let expected = offer.reverse();
    match answer {
        None => Some(rules::DIRECTION_MISSING.finding(format!(
            "the answer to a={} has no direction attribute (expected a={}); read as a={}, so {}",
            offer.as_str(),
            expected.as_str(),
            expected.as_str(),
            match expected {
                Direction::SendOnly => "the offerer sends nothing",
                Direction::RecvOnly => "the answerer sends nothing",
                _ => "both sides send",
            }
        ))),
        Some(a) if a != expected => Some(rules::DIRECTION.finding(format!(
            "a={} offered, a={} answered (expected a={}); media flows only as both allow",
            offer.as_str(),
            a.as_str(),
            expected.as_str()
        ))),
        Some(_) => None,
    }
}

fn merge_direction(a: Direction, b: Direction) -> Direction {
    match (a, b) {
        (Direction::SendOnly, Direction::RecvOnly) | (Direction::RecvOnly, Direction::SendOnly) => {
            Direction::SendRecv
        }
        (a, _) => a,
    }
}

/// Pairs each offered media with its answer (by position, else the first unused of
/// the same kind). An answer that splits one offered media into several of the same
/// kind (the 语音对讲 example answers one sendrecv audio with a recvonly and a
/// sendonly one) is merged into one with the combined direction.
fn pair(
    offer: &GbSession,
    answer: &GbSession,
    findings: &mut Vec<Finding>,
) -> Vec<Option<GbMedia>> {
    if offer.media.len() != answer.media.len() {
        findings.push(rules::MEDIA_COUNT.finding(format!(
            "the offer has {} m= lines, the answer {}",
            offer.media.len(),
            answer.media.len()
        )));
    }
    let mut used = vec![false; answer.media.len()];
    let mut out: Vec<Option<GbMedia>> = Vec::new();
    for (i, o) in offer.media.iter().enumerate() {
        let j = (i < answer.media.len() && !used[i] && answer.media[i].kind == o.kind)
            .then_some(i)
            .or_else(|| {
                answer
                    .media
                    .iter()
                    .enumerate()
                    .position(|(j, a)| !used[j] && a.kind == o.kind)
            });
        out.push(j.map(|j| {
            used[j] = true;
            answer.media[j].clone()
        }));
    }
    for (j, a) in answer.media.iter().enumerate() {
        if used[j] {
            continue;
        }
        let same_kind: Vec<usize> = offer
            .media
            .iter()
            .enumerate()
            .filter(|(_, o)| o.kind == a.kind)
            .map(|(i, _)| i)
            .collect();
        if let [i] = same_kind[..] {
            if let Some(Some(m)) = out.get_mut(i) {
                let d = merge_direction(
                    m.direction.unwrap_or(Direction::SendRecv),
                    a.direction.unwrap_or(Direction::SendRecv),
                );
                m.direction = Some(d);
            }
        }
    }
    out
}

fn media_ip(s: &GbSession, i: usize) -> Option<IpAddr> {
    s.media_connection(i).and_then(|c| c.ip())
}

/// Which side we are in an offer/answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Offerer,
    Answerer,
}

/// Concludes an offer/answer for `side`. The offerer judges the answer (findings);
/// media that cannot be used are left out. `peer_ip` stands in for a missing `c=`.
pub(crate) fn conclude(
    offer: &GbSession,
    answer: &GbSession,
    side: Side,
    peer_ip: IpAddr,
) -> (Negotiated, Vec<Finding>) {
    let mut findings = Vec::new();
    let judge = side == Side::Offerer;
    let mut local_findings = Vec::new();
    let pairs = pair(offer, answer, &mut local_findings);
    if judge {
        findings.append(&mut local_findings);
        if offer.session_name != answer.session_name {
            findings.push(rules::SESSION_NAME.finding(format!(
                "answer s={}, offer s={}",
                answer.session_name, offer.session_name
            )));
        }
    }
    let mut media = Vec::new();
    for (i, (o, a)) in offer.media.iter().zip(pairs).enumerate() {
        let Some(a) = a else {
            if judge {
                findings.push(rules::MEDIA_REFUSED.finding(format!(
                    "no {} media in the answer for offered m= #{}",
                    o.kind,
                    i + 1
                )));
            }
            continue;
        };
        if a.port == 0 {
            if judge {
                findings.push(
                    rules::MEDIA_REFUSED.finding(format!("{} media answered with port 0", a.kind)),
                );
            }
            continue;
        }
        if o.is_tcp() != a.is_tcp() {
            if judge {
                findings.push(
                    rules::TRANSPORT_MISMATCH
                        .finding(format!("offered {} answered {}", o.proto, a.proto)),
                );
            }
            continue;
        }
        // Payload: the answer's first format that the offer listed.
        let offered = |f: &str| o.formats.iter().any(|x| x.trim() == f.trim());
        if judge {
            for f in a.formats.iter().filter(|f| !offered(f)) {
                findings.push(
                    rules::PAYLOAD_NOT_OFFERED
                        .finding(format!("answer lists payload type {f}, not offered")),
                );
            }
        }
        let Some(pt) = a
            .formats
            .iter()
            .filter(|f| offered(f))
            .find_map(|f| f.trim().parse::<u8>().ok())
        else {
            continue;
        };
        let encoding = a
            .rtpmaps
            .iter()
            .chain(o.rtpmaps.iter())
            .find(|r| r.payload_type == pt)
            .map(|r| r.encoding.to_ascii_uppercase())
            .unwrap_or_else(|| match pt {
                8 => "PCMA".into(),
                0 => "PCMU".into(),
                _ => "PS".into(),
            });
        let offer_dir = o.direction.unwrap_or(Direction::SendRecv);
        let answer_dir = answered_direction(offer_dir, a.direction);
        if judge {
            if let Some(f) = direction_finding(offer_dir, a.direction) {
                findings.push(f);
            }
        }
        // RFC 4145 §4.1 roles, with the defaults for a missing a=setup.
        let transport = if o.is_tcp() {
            let (os, asu) = (offered_setup(o), answered_setup(&a));
            let roles = match (os, asu) {
                (_, Setup::ActPass) | (_, Setup::HoldConn) | (Setup::HoldConn, _) => None,
                (Setup::ActPass, x) => Some((x.answer(), x)),
                (x, y) if x == y => None,
                (x, y) => Some((x, y)),
            };
            let Some((offerer_role, answerer_role)) = roles else {
                if judge {
                    findings.push(rules::SETUP_CONFLICT.finding(format!(
                        "offered a=setup:{}, answered a=setup:{}: no side opens the connection, or both do",
                        os.as_str(),
                        asu.as_str()
                    )));
                }
                continue;
            };
            let role = if judge { offerer_role } else { answerer_role };
            if role == Setup::Active {
                MediaTransport::TcpActive
            } else {
                MediaTransport::TcpPassive
            }
        } else {
            MediaTransport::Udp
        };
        let (ours, theirs, ours_s, theirs_s, j) = match side {
            Side::Offerer => (o, &a, offer, answer, i),
            Side::Answerer => (&a, o, answer, offer, i),
        };
        let our_ip = media_ip(ours_s, j).unwrap_or(peer_ip);
        let their_ip = match media_ip(theirs_s, j) {
            Some(ip) => ip,
            None => {
                if judge {
                    findings.push(rules::CONNECTION_MISSING.finding(format!(
                        "no c= for the answered {} media; using the SIP peer {peer_ip}",
                        a.kind
                    )));
                }
                peer_ip
            }
        };
        // RFC 3264 §6: a side sends only what its own description offers to send
        // and the other side's description accepts to receive, whatever the other
        // side wrote.
        let direction = match side {
            Side::Offerer => both(offer_dir, answer_dir.reverse()),
            Side::Answerer => both(answer_dir, offer_dir.reverse()),
        };
        media.push(NegotiatedMedia {
            kind: o.kind.clone(),
            direction,
            transport,
            local: SocketAddr::new(our_ip, ours.port),
            remote: SocketAddr::new(their_ip, theirs.port),
            payload_type: pt,
            encoding,
        });
    }
    let ssrc = match (offer.ssrc, answer.ssrc) {
        (Some(o), Some(a)) => {
            if judge && o != a {
                findings.push(rules::SSRC_MISMATCH.finding(format!(
                    "offered y={o}, answered y={a}; the stream is expected with the answered value"
                )));
            }
            a
        }
        (Some(o), None) => {
            if judge {
                findings.push(rules::SSRC_MISSING_IN_ANSWER.finding(format!(
                    "the answer has no y=; the stream is expected with the offered y={o}"
                )));
            }
            o
        }
        (None, Some(a)) => a,
        (None, None) => Ssrc(0),
    };
    let kind = offer.kind().unwrap_or(SessionKind::Play);
    (
        Negotiated {
            kind,
            ssrc,
            media,
            offer: offer.clone(),
            answer: answer.clone(),
        },
        findings,
    )
}

/// Whether the findings of [`conclude`] leave nothing to stream (the offerer then
/// acknowledges the 2xx and ends the session with BYE).
pub(crate) fn unusable(n: &Negotiated) -> bool {
    n.media.is_empty()
}

/// A live or history timing for an offer.
pub(crate) fn timing_for(range: Option<(u64, u64)>) -> Timing {
    match range {
        Some((a, b)) => Timing::range(a, b),
        None => Timing::LIVE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sdp::SessionDescription;

    fn parse(s: &str) -> GbSession {
        GbSession::from_sdp(&SessionDescription::parse(s.as_bytes()).unwrap().sdp)
    }

    const OFFER_TCP_PASSIVE: &str = "v=0\r\no=34020000002000000001 0 0 IN IP4 192.168.0.107\r\ns=Play\r\nc=IN IP4 192.168.0.107\r\nt=0 0\r\nm=video 36000 TCP/RTP/AVP 96 98 97\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\na=setup:passive\r\ny=0100000001\r\n";

    fn spec(port: u16) -> AnswerSpec<'static> {
        AnswerSpec {
            local_id: "34020000001320000001",
            media_ip: "192.168.0.111".parse().unwrap(),
            port,
            info: None,
            media_params: None,
            file_size: None,
            fallback_ssrc: Ssrc(1),
            faults: AnswerFaults::default(),
        }
    }

    #[test]
    fn spec_tcp_passive_offer_is_answered_active_and_both_sides_agree() {
        let offer = parse(OFFER_TCP_PASSIVE);
        assert_eq!(check_offer(&offer), Ok(SessionKind::Play));
        let answer = build_answer(&offer, &spec(9724));
        assert_eq!(answer.media[0].setup, Some(Setup::Active));
        assert_eq!(answer.media[0].direction, Some(Direction::SendOnly));
        assert_eq!(answer.ssrc, Some(Ssrc(100000001)));
        let ip = "10.0.0.1".parse().unwrap();
        let (cam, f) = conclude(&offer, &answer, Side::Answerer, ip);
        assert!(f.is_empty());
        let m = &cam.media[0];
        assert_eq!(m.transport, MediaTransport::TcpActive);
        assert_eq!(m.remote, "192.168.0.107:36000".parse().unwrap());
        assert!(m.sends() && !m.receives());
        assert_eq!((m.payload_type, m.encoding.as_str()), (96, "PS"));
        let (plat, f) = conclude(&offer, &answer, Side::Offerer, ip);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(plat.media[0].transport, MediaTransport::TcpPassive);
        assert_eq!(plat.media[0].local, "192.168.0.107:36000".parse().unwrap());
        assert!(plat.media[0].receives());
    }

    #[test]
    fn spec_talk_answer_with_two_audio_lines_is_merged() {
        let offer = parse("v=0\r\no=x 0 0 IN IP4 192.168.0.107\r\ns=Talk\r\nc=IN IP4 192.168.0.107\r\nt=0 0\r\nm=audio 38000 RTP/AVP 8\r\na=sendrecv\r\na=rtpmap:8 PCMA/8000\r\nf=v/a/1/8/1\r\ny=0100000001\r\n");
        let answer = parse("v=0\r\no=x 0 0 IN IP4 192.168.0.111\r\ns=Talk\r\ni=VCam Talk Session\r\nc=IN IP4 192.168.0.111\r\nt=0 0\r\nm=audio 9712 RTP/AVP 8\r\na=recvonly\r\na=rtpmap:8 PCMA/8000/1\r\nm=audio 9712 RTP/AVP 8\r\na=sendonly\r\na=rtpmap:8 PCMA/8000/1\r\ny=0100000001\r\nf=v/0/0/0/0/0a/0/0/0\r\n");
        let (n, f) = conclude(&offer, &answer, Side::Offerer, "1.1.1.1".parse().unwrap());
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec!["gb.session.media-count"]);
        assert_eq!(n.media.len(), 1);
        assert_eq!(n.media[0].direction, Direction::SendRecv);
        assert_eq!(n.media[0].encoding, "PCMA");
        assert_eq!(n.media[0].remote, "192.168.0.111:9712".parse().unwrap());
    }

    #[test]
    fn answer_faults_are_caught_by_the_offerer() {
        let offer = parse(OFFER_TCP_PASSIVE);
        let ip = "10.0.0.1".parse().unwrap();
        let cases = [
            (
                AnswerFaults {
                    wrong_ssrc: true,
                    ..Default::default()
                },
                "gb.session.ssrc-mismatch",
            ),
            (
                AnswerFaults {
                    no_y: true,
                    ..Default::default()
                },
                "gb.session.answer-without-y",
            ),
            (
                AnswerFaults {
                    wrong_setup: true,
                    ..Default::default()
                },
                "gb.session.setup-conflict",
            ),
        ];
        for (faults, code) in cases {
            let answer = build_answer(&offer, &AnswerSpec { faults, ..spec(9) });
            let (n, f) = conclude(&offer, &answer, Side::Offerer, ip);
            let codes: Vec<_> = f.iter().map(|f| f.code).collect();
            assert_eq!(codes, vec![code]);
            assert_eq!(unusable(&n), code == "gb.session.setup-conflict");
        }
    }

    #[test]
    fn unusable_offers_and_refused_media() {
        let mut offer = parse(OFFER_TCP_PASSIVE);
        offer.session_name = "Watch".into();
        assert_eq!(
            check_offer(&offer).unwrap_err().code,
            "gb.session.offer-unusable"
        );
        let mut offer = parse(OFFER_TCP_PASSIVE);
        offer.media[0].rtpmaps.retain(|r| !r.is_ps());
        offer.media[0].formats = vec!["98".into()];
        assert!(check_offer(&offer).is_err());
        let answer = build_answer(&offer, &spec(9));
        assert_eq!(answer.media[0].port, 0);
        let (n, f) = conclude(&offer, &answer, Side::Offerer, "1.1.1.1".parse().unwrap());
        assert!(unusable(&n));
        assert_eq!(f[0].code, "gb.session.media-refused");
    }

    #[test]
    fn missing_setup_takes_the_rfc_4145_defaults() {
        let mut offer = parse(OFFER_TCP_PASSIVE);
        offer.media[0].setup = None; // offer default: active
        let answer = build_answer(&offer, &spec(9));
        assert_eq!(answer.media[0].setup, Some(Setup::Passive));
        let mut answer2 = answer.clone();
        answer2.media[0].setup = None; // answer default: passive
        let ip = "1.1.1.1".parse().unwrap();
        let (n, f) = conclude(&offer, &answer2, Side::Offerer, ip);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(n.media[0].transport, MediaTransport::TcpActive);
        let mut actpass = parse(OFFER_TCP_PASSIVE);
        actpass.media[0].setup = Some(Setup::ActPass);
        let answer = build_answer(&actpass, &spec(9));
        assert_eq!(answer.media[0].setup, Some(Setup::Active));
        let (n, _) = conclude(&actpass, &answer, Side::Offerer, ip);
        assert_eq!(n.media[0].transport, MediaTransport::TcpPassive);
    }

    #[test]
    fn cascade_answer_is_read_with_findings() {
        // platform-cascade-sip.txt 实时视频, whitespace restored: video and an audio
        // the offer never asked for, a five-field o=, G711U without a clock rate, no y=.
        let answer =
            "v=0\r\no=huawei 0 IN IP4 10.0.0.2\r\ns=Play\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
m=video 6016 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\na=sendonly\r\nm=audio 6018 RTP/AVP 100\r\n\
a=rtpmap:100 G711U\r\na=sendonly\r\na=username:admin\r\na=password:123456\r\nf=v/2/1/0/1/0a///\r\n";
        let parsed = SessionDescription::parse(answer.as_bytes()).unwrap();
        let sdp_codes = parsed.codes();
        assert!(
            sdp_codes.iter().any(|c| c.as_str() == "sdp.origin"),
            "{sdp_codes:?}"
        );
        assert!(
            sdp_codes.iter().any(|c| c.as_str() == "sdp.rtpmap"),
            "{sdp_codes:?}"
        );
        let answer = GbSession::from_sdp(&parsed.sdp);
        let offer = parse("v=0\r\no=x 0 0 IN IP4 10.0.0.1\r\ns=Play\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5400 RTP/AVP 96 97 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:97 MPEG4/90000\r\na=rtpmap:98 H264/90000\r\ny=0200000001\r\n");
        let (n, f) = conclude(&offer, &answer, Side::Offerer, "10.0.0.2".parse().unwrap());
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            ["gb.session.media-count", "gb.session.answer-without-y"]
        );
        assert_eq!(n.media.len(), 1);
        assert_eq!(n.media[0].remote, "10.0.0.2:6016".parse().unwrap());
        assert_eq!(n.ssrc, Ssrc(200000001));
    }

    /// The offerer's and the answerer's directions and the offerer's finding codes
    /// for one offered and one answered direction attribute.
    fn directions(
        offer: Direction,
        answer: Option<Direction>,
    ) -> (Direction, Direction, Vec<&'static str>) {
        let mut o = parse(OFFER_TCP_PASSIVE);
        o.media[0].direction = Some(offer);
        let mut a = build_answer(&o, &spec(9));
        a.media[0].direction = answer;
        let ip = "10.0.0.1".parse().unwrap();
        let (plat, f) = conclude(&o, &a, Side::Offerer, ip);
        let (cam, _) = conclude(&o, &a, Side::Answerer, ip);
        let codes = f.iter().map(|f| f.code).collect();
        (plat.media[0].direction, cam.media[0].direction, codes)
    }

    #[test]
    fn answer_without_direction_to_recvonly_is_read_as_sendonly() {
        // The measured defect: the offerer took the bare answer as sendrecv and sent.
        let (plat, cam, codes) = directions(Direction::RecvOnly, None);
        assert_eq!(plat, Direction::RecvOnly);
        assert_eq!(cam, Direction::SendOnly);
        assert_eq!(codes, ["gb.session.answer-without-direction"]);
        let f = direction_finding(Direction::RecvOnly, None).unwrap();
        assert_eq!(f.severity, crate::proto::sdp::Severity::Warning);
        assert!(f.message.contains("expected a=sendonly"), "{}", f.message);
        assert!(f.clause.contains("RFC 3264 §6"));
    }

    #[test]
    fn answer_without_direction_to_sendonly_is_read_as_recvonly() {
        let (plat, cam, codes) = directions(Direction::SendOnly, None);
        assert_eq!((plat, cam), (Direction::SendOnly, Direction::RecvOnly));
        assert_eq!(codes, ["gb.session.answer-without-direction"]);
    }

    #[test]
    fn answer_without_direction_to_sendrecv_is_sendrecv() {
        let (plat, cam, codes) = directions(Direction::SendRecv, None);
        assert_eq!((plat, cam), (Direction::SendRecv, Direction::SendRecv));
        assert_eq!(codes, ["gb.session.answer-without-direction"]);
    }

    #[test]
    fn sendrecv_answer_to_recvonly_sends_nothing_the_offer_did_not_ask_for() {
        let (plat, cam, codes) = directions(Direction::RecvOnly, Some(Direction::SendRecv));
        assert_eq!(plat, Direction::RecvOnly);
        assert_eq!(cam, Direction::SendOnly);
        assert_eq!(codes, ["gb.session.direction"]);
    }

    #[test]
    fn recvonly_answer_to_recvonly_leaves_the_media_idle() {
        // Both want to receive: nobody sends.
        let (plat, cam, codes) = directions(Direction::RecvOnly, Some(Direction::RecvOnly));
        assert_eq!((plat, cam), (Direction::Inactive, Direction::Inactive));
        assert_eq!(codes, ["gb.session.direction"]);
    }

    #[test]
    fn inactive_answer_is_reported_and_nobody_sends() {
        let (plat, cam, codes) = directions(Direction::RecvOnly, Some(Direction::Inactive));
        assert_eq!((plat, cam), (Direction::Inactive, Direction::Inactive));
        assert_eq!(codes, ["gb.session.direction"]);
    }

    #[test]
    fn the_expected_answer_has_no_direction_finding() {
        let (plat, cam, codes) = directions(Direction::RecvOnly, Some(Direction::SendOnly));
        assert_eq!((plat, cam), (Direction::RecvOnly, Direction::SendOnly));
        assert!(codes.is_empty(), "{codes:?}");
        assert_eq!(
            direction_finding(Direction::SendRecv, Some(Direction::SendRecv)),
            None
        );
    }

    #[test]
    fn the_no_direction_fault_leaves_the_attribute_out() {
        let offer = parse(OFFER_TCP_PASSIVE);
        let faults = AnswerFaults {
            no_direction: true,
            ..Default::default()
        };
        let answer = build_answer(&offer, &AnswerSpec { faults, ..spec(9) });
        assert_eq!(answer.media[0].direction, None);
        let text = String::from_utf8(answer.encode()).unwrap();
        assert!(
            !text.contains("a=sendonly") && !text.contains("a=sendrecv"),
            "{text}"
        );
    }
}
