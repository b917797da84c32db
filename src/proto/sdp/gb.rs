//! The typed GB/T 28181 session a driver builds offers and answers from.
//!
//! [`GbSession::to_sdp`] writes lines in the order the spec's examples use: `v o s i u
//! c t`, then per media `m c`, direction, rtpmaps, other attributes, `setup`,
//! `connection`, `downloadspeed`, `filesize`; then `y=` and `f=` last. Lines end with
//! CRLF (RFC 4566 §5). [`GbSession::from_sdp`] reads any description leniently; what it
//! has no field for (other line types, a second `y=`) is left out.

use std::net::IpAddr;

use super::{
    Attribute, Connection, ConnectionMode, Direction, Finding, Line, MediaKind, MediaLine,
    MediaParams, MediaProto, MediaSection, Origin, ParseError, Rtpmap, SessionDescription,
    SessionKind, Setup, Ssrc, Timing,
};

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GbMedia {
    /// `video` / `audio`.
    pub kind: MediaKind,
    /// Port.
    pub port: u16,
    /// `RTP/AVP` (UDP) or `TCP/RTP/AVP`.
    pub proto: MediaProto,
    /// Formats of `m=`, as written (payload type numbers).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Direction attribute.
    pub direction: Option<Direction>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<Rtpmap>,
    /// Other attributes, in order (e.g. `a=streamprofile:0`).
    pub attributes: Vec<Attribute>,
    /// `a=setup` (TCP).
    pub setup: Option<Setup>,
    /// `a=connection` (TCP).
    pub connection_mode: Option<ConnectionMode>,
    /// `a=downloadspeed` (Download).
    pub download_speed: Option<u32>,
    /// `a=filesize` (Playback/Download answers).
    pub file_size: Option<u64>,
}

impl GbMedia {
    /// Video offered the way the spec's INVITEs do: `96 98 97` with PS/90000,
    /// H264/90000 and MPEG4/90000. `setup` is required for TCP and ignored for UDP.
    pub fn video_offer(port: u16, tcp: Option<Setup>, direction: Direction) -> Self {
        GbMedia {
            formats: vec!["96".into(), "98".into(), "97".into()],
            rtpmaps: vec![Rtpmap::ps(96), Rtpmap::h264(98), Rtpmap::mpeg4(97)],
            ..Self::new(MediaKind::Video, port, tcp, direction)
        }
    }

    /// Video answered with PS only (`96 PS/90000`), as cameras do.
    pub fn video_ps(port: u16, tcp: Option<Setup>, direction: Direction) -> Self {
        GbMedia {
            formats: vec!["96".into()],
            rtpmaps: vec![Rtpmap::ps(96)],
            ..Self::new(MediaKind::Video, port, tcp, direction)
        }
    }

    /// G.711 A-law audio (`8 PCMA/8000`) for broadcast and talk.
    pub fn audio_pcma(port: u16, tcp: Option<Setup>, direction: Direction) -> Self {
        GbMedia {
            formats: vec!["8".into()],
            rtpmaps: vec![Rtpmap::pcma()],
            ..Self::new(MediaKind::Audio, port, tcp, direction)
        }
    }

    /// Empty media of a kind; `tcp: Some(setup)` selects `TCP/RTP/AVP`.
    pub fn new(kind: MediaKind, port: u16, tcp: Option<Setup>, direction: Direction) -> Self {
        GbMedia {
            kind,
            port,
            proto: if tcp.is_some() {
                MediaProto::TcpRtpAvp
            } else {
                MediaProto::RtpAvp
            },
            formats: Vec::new(),
            connection: None,
            direction: Some(direction),
            rtpmaps: Vec::new(),
            attributes: Vec::new(),
            setup: tcp,
            connection_mode: None,
            download_speed: None,
            file_size: None,
        }
    }

    fn from_section(m: &MediaSection<'_>) -> Option<Self> {
        let ml = m.media_line()?;
        let mut g = GbMedia {
            kind: ml.kind,
            port: ml.port,
            proto: ml.proto,
            formats: ml.formats,
            connection: m.connection(),
            direction: None,
            rtpmaps: Vec::new(),
            attributes: Vec::new(),
            setup: None,
            connection_mode: None,
            download_speed: None,
            file_size: None,
        };
        for a in m.attributes() {
            let v = a.value.as_deref();
            match (a.name.as_str(), v) {
                (n, None) if g.direction.is_none() && Direction::parse(n).is_some() => {
                    g.direction = Direction::parse(n);
                }
                ("rtpmap", Some(v)) if Rtpmap::parse(v).is_some() => {
                    g.rtpmaps.extend(Rtpmap::parse(v));
                }
                ("setup", Some(v)) if g.setup.is_none() && Setup::parse(v).is_some() => {
                    g.setup = Setup::parse(v);
                }
                ("connection", Some(v))
                    if g.connection_mode.is_none() && ConnectionMode::parse(v).is_some() =>
                {
                    g.connection_mode = ConnectionMode::parse(v);
                }
                ("downloadspeed", Some(v))
                    if g.download_speed.is_none() && v.parse::<u32>().is_ok() =>
                {
                    g.download_speed = v.parse().ok();
                }
                ("filesize", Some(v)) if g.file_size.is_none() && v.parse::<u64>().is_ok() => {
                    g.file_size = v.parse().ok();
                }
                _ => g.attributes.push(a),
            }
        }
        Some(g)
    }

    fn write(&self, lines: &mut Vec<Line>) {
        lines.push(Line::new(
            'm',
            MediaLine {
                kind: self.kind.clone(),
                port: self.port,
                port_count: None,
                proto: self.proto.clone(),
                formats: self.formats.clone(),
            },
        ));
        if let Some(c) = &self.connection {
            lines.push(Line::new('c', c));
        }
        if let Some(d) = self.direction {
            lines.push(Line::new('a', d.as_str()));
        }
        for r in &self.rtpmaps {
            lines.push(Line::new('a', format_args!("rtpmap:{r}")));
        }
        for a in &self.attributes {
            lines.push(Line::new('a', a));
        }
        if let Some(s) = self.setup {
            lines.push(Line::new('a', format_args!("setup:{}", s.as_str())));
        }
        if let Some(c) = self.connection_mode {
            lines.push(Line::new('a', format_args!("connection:{}", c.as_str())));
        }
        if let Some(s) = self.download_speed {
            lines.push(Line::new('a', format_args!("downloadspeed:{s}")));
        }
        if let Some(s) = self.file_size {
            lines.push(Line::new('a', format_args!("filesize:{s}")));
        }
    }

    /// The payload type mapped to PS, if any.
    pub fn ps_payload_type(&self) -> Option<u8> {
        self.rtpmaps
            .iter()
            .find(|r| r.is_ps())
            .map(|r| r.payload_type)
    }

    /// Whether the media runs over TCP.
    pub fn is_tcp(&self) -> bool {
        self.proto.is_tcp()
    }
}

/// A GB/T 28181 session description. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GbSession {
    /// `o=`.
    pub origin: Origin,
    /// `s=` as written (`Play`, `Playback`, `Download`, `Talk`).
    pub session_name: String,
    /// `i=`.
    pub info: Option<String>,
    /// `u=` (`<channel ID>:<download type>` for history).
    pub uri: Option<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// `t=` (Unix seconds; `0 0` live).
    pub timing: Timing,
    /// Media sections.
    pub media: Vec<GbMedia>,
    /// `y=`.
    pub ssrc: Option<Ssrc>,
    /// `f=`.
    pub media_params: Option<MediaParams>,
}

impl GbSession {
    /// A session of `kind` from `id` at `address`: `o=<id> 0 0 IN IP4 <address>`,
    /// `c=IN IP4 <address>`, `t=0 0`, no media, no `y=`.
    pub fn new(kind: SessionKind, id: &str, address: IpAddr) -> Self {
        GbSession {
            origin: Origin::new(id, address),
            session_name: kind.as_str().to_string(),
            info: None,
            uri: None,
            connection: Some(Connection::new(address)),
            timing: Timing::LIVE,
            media: Vec::new(),
            ssrc: None,
            media_params: None,
        }
    }

    /// The operation `s=` names.
    pub fn kind(&self) -> Option<SessionKind> {
        SessionKind::parse(&self.session_name)
    }

    /// The connection that applies to media `i`: its own `c=`, else the session's.
    pub fn media_connection(&self, i: usize) -> Option<&Connection> {
        self.media
            .get(i)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// Builds the wire form.
    pub fn to_sdp(&self) -> SessionDescription {
        let mut lines = vec![
            Line::new('v', "0"),
            Line::new('o', &self.origin),
            Line::new('s', &self.session_name),
        ];
        if let Some(i) = &self.info {
            lines.push(Line::new('i', i));
        }
        if let Some(u) = &self.uri {
            lines.push(Line::new('u', u));
        }
        if let Some(c) = &self.connection {
            lines.push(Line::new('c', c));
        }
        lines.push(Line::new('t', self.timing));
        for m in &self.media {
            m.write(&mut lines);
        }
        if let Some(y) = self.ssrc {
            lines.push(Line::new('y', y));
        }
        if let Some(f) = &self.media_params {
            lines.push(Line::new('f', f));
        }
        SessionDescription { lines }
    }

    /// The encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_sdp().to_bytes()
    }

    /// Reads a description leniently: missing or unparsable fields become empty
    /// values, `y=` is read with [`Ssrc::parse`].
    pub fn from_sdp(sdp: &SessionDescription) -> Self {
        let empty_origin = || Origin {
            username: String::new(),
            session_id: String::new(),
            session_version: String::new(),
            net_type: String::new(),
            addr_type: String::new(),
            address: String::new(),
        };
        GbSession {
            origin: sdp.origin().unwrap_or_else(empty_origin),
            session_name: sdp.session_name().unwrap_or_default().to_string(),
            info: sdp.session_value('i').map(str::to_string),
            uri: sdp.uri().map(str::to_string),
            connection: sdp.connection(),
            timing: sdp.timing().unwrap_or_default(),
            media: sdp
                .media()
                .iter()
                .filter_map(GbMedia::from_section)
                .collect(),
            ssrc: sdp.ssrc(),
            media_params: sdp.media_params(),
        }
    }

    /// Parses bytes into the typed session and the findings of the wire form.
    pub fn parse(data: &[u8]) -> Result<(GbSession, Vec<Finding>), ParseError> {
        let p = SessionDescription::parse(data)?;
        Ok((GbSession::from_sdp(&p.sdp), p.findings))
    }
}
