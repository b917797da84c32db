//! Typed values of the SDP lines GB/T 28181 uses. Each has a lenient `parse` of the
//! line's value (after `x=`) and a `Display` that writes the canonical form, so
//! `parse(v.to_string()) == v` for every value these types can hold.

use std::fmt;
use std::net::IpAddr;

/// `o=` (RFC 4566 §5.2). GB/T 28181 puts the 20-digit device or platform ID in the
/// username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (the GB ID).
    pub username: String,
    /// Session ID.
    pub session_id: String,
    /// Session version.
    pub session_version: String,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Unicast address.
    pub address: String,
}

impl Origin {
    /// `o=<username> 0 0 IN IP4|IP6 <address>`, as every GB example writes it.
    pub fn new(username: impl Into<String>, address: IpAddr) -> Self {
        Origin {
            username: username.into(),
            session_id: "0".into(),
            session_version: "0".into(),
            net_type: "IN".into(),
            addr_type: addr_type(address).into(),
            address: address.to_string(),
        }
    }

    /// Six whitespace-separated fields, or `None`.
    pub fn parse(v: &str) -> Option<Self> {
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let [u, id, ver, nt, at, addr] = f.as_slice() else {
            return None;
        };
        Some(Origin {
            username: u.to_string(),
            session_id: id.to_string(),
            session_version: ver.to_string(),
            net_type: nt.to_string(),
            addr_type: at.to_string(),
            address: addr.to_string(),
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

fn addr_type(a: IpAddr) -> &'static str {
    match a {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// `c=` (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Address (with `/ttl` for multicast, as written).
    pub address: String,
}

impl Connection {
    /// `c=IN IP4|IP6 <address>`.
    pub fn new(address: IpAddr) -> Self {
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type(address).into(),
            address: address.to_string(),
        }
    }

    /// Three whitespace-separated fields, or `None`.
    pub fn parse(v: &str) -> Option<Self> {
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let [nt, at, addr] = f.as_slice() else {
            return None;
        };
        Some(Connection {
            net_type: nt.to_string(),
            addr_type: at.to_string(),
            address: addr.to_string(),
        })
    }

    /// The address as an IP, ignoring a multicast `/ttl` suffix.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// `t=`. GB/T 28181 writes **Unix** seconds here (the Playback example's
/// `t=1697264152 1697266715` is 2023-10-14, the day its RecordInfo query asks for),
/// not the NTP seconds of RFC 4566 §5.9; `0 0` means live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// Start, Unix seconds (0: unbounded).
    pub start: u64,
    /// Stop, Unix seconds (0: unbounded).
    pub stop: u64,
}

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl Timing {
    /// `t=0 0`.
    pub const LIVE: Timing = Timing { start: 0, stop: 0 };

    /// A history range in Unix seconds.
    pub fn range(start: u64, stop: u64) -> Self {
        Timing { start, stop }
    }

    /// Two decimal numbers, or `None`.
    pub fn parse(v: &str) -> Option<Self> {
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let [a, b] = f.as_slice() else {
            return None;
        };
        Some(Timing {
            start: parse_digits(a)?,
            stop: parse_digits(b)?,
        })
    }

    /// `0 0`.
    pub fn is_live(&self) -> bool {
        self.start == 0 && self.stop == 0
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.start, self.stop)
    }
}

fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The GB/T 28181 operation an `s=` line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// 实时点播 (live).
    Play,
    /// 录像回放 (history playback, controlled by MANSRTSP).
    Playback,
    /// 文件下载.
    Download,
    /// 语音对讲.
    Talk,
}

impl SessionKind {
    /// Every kind.
    pub const ALL: [SessionKind; 4] = [
        SessionKind::Play,
        SessionKind::Playback,
        SessionKind::Download,
        SessionKind::Talk,
    ];

    /// The `s=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Play => "Play",
            SessionKind::Playback => "Playback",
            SessionKind::Download => "Download",
            SessionKind::Talk => "Talk",
        }
    }

    /// The kind an `s=` value names, ignoring letter case.
    pub fn parse(v: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(v.trim()))
    }

    /// Playback and Download carry recorded media: the `y=` flag digit is 1.
    pub fn is_history(self) -> bool {
        matches!(self, SessionKind::Playback | SessionKind::Download)
    }
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `<media>` of `m=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `video`.
    Video,
    /// `audio`.
    Audio,
    /// Anything else, as written.
    Other(String),
}

impl MediaKind {
    /// Lenient: `video` and `audio` in any case; anything else kept.
    pub fn parse(v: &str) -> Self {
        if v.eq_ignore_ascii_case("video") {
            MediaKind::Video
        } else if v.eq_ignore_ascii_case("audio") {
            MediaKind::Audio
        } else {
            MediaKind::Other(v.to_string())
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaKind::Video => f.write_str("video"),
            MediaKind::Audio => f.write_str("audio"),
            MediaKind::Other(s) => f.write_str(s),
        }
    }
}

/// The `<proto>` of `m=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaProto {
    /// `RTP/AVP`: RTP over UDP.
    RtpAvp,
    /// `TCP/RTP/AVP`: RTP over TCP with RFC 4571 framing.
    TcpRtpAvp,
    /// Anything else, as written (e.g. `RTP/AVP/TCP`).
    Other(String),
}

impl MediaProto {
    /// Exact spellings; anything else kept.
    pub fn parse(v: &str) -> Self {
        match v {
            "RTP/AVP" => MediaProto::RtpAvp,
            "TCP/RTP/AVP" => MediaProto::TcpRtpAvp,
            other => MediaProto::Other(other.to_string()),
        }
    }

    /// Whether the media runs over TCP (any spelling that names TCP).
    pub fn is_tcp(&self) -> bool {
        match self {
            MediaProto::RtpAvp => false,
            MediaProto::TcpRtpAvp => true,
            MediaProto::Other(s) => s.to_ascii_uppercase().split('/').any(|p| p == "TCP"),
        }
    }
}

impl fmt::Display for MediaProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaProto::RtpAvp => f.write_str("RTP/AVP"),
            MediaProto::TcpRtpAvp => f.write_str("TCP/RTP/AVP"),
            MediaProto::Other(s) => f.write_str(s),
        }
    }
}

/// `m=` (RFC 4566 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// `video` / `audio`.
    pub kind: MediaKind,
    /// Transport port (for TCP passive: the port that listens; for TCP active: 9 or
    /// any, per RFC 4145 §4).
    pub port: u16,
    /// `/<number of ports>`, when written.
    pub port_count: Option<u16>,
    /// Transport.
    pub proto: MediaProto,
    /// Formats (payload type numbers for RTP), as written.
    pub formats: Vec<String>,
}

impl MediaLine {
    /// At least media, port and proto; `None` otherwise or when the port is not a number.
    pub fn parse(v: &str) -> Option<Self> {
        let mut f = v.split_ascii_whitespace();
        let kind = MediaKind::parse(f.next()?);
        let port_field = f.next()?;
        let (port, port_count) = match port_field.split_once('/') {
            Some((p, n)) => (parse_digits(p)?, Some(parse_digits(n)?)),
            None => (parse_digits(port_field)?, None),
        };
        let proto = MediaProto::parse(f.next()?);
        Some(MediaLine {
            kind,
            port,
            port_count,
            proto,
            formats: f.map(str::to_string).collect(),
        })
    }

    /// The formats that are RTP payload type numbers (0..=127).
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats
            .iter()
            .filter_map(|f| parse_digits::<u8>(f))
            .filter(|&p| p <= 127)
            .collect()
    }
}

impl fmt::Display for MediaLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt_ in &self.formats {
            write!(f, " {fmt_}")?;
        }
        Ok(())
    }
}

/// `a=<name>[:<value>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value after the first `:`, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=recvonly`).
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// A value attribute (`a=setup:passive`).
    pub fn value(name: impl Into<String>, value: impl fmt::Display) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.to_string()),
        }
    }

    /// Splits at the first `:`.
    pub fn parse(v: &str) -> Self {
        match v.split_once(':') {
            Some((n, val)) => Attribute {
                name: n.to_string(),
                value: Some(val.to_string()),
            },
            None => Attribute {
                name: v.to_string(),
                value: None,
            },
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name (`PS`, `H264`, `MPEG4`, `PCMA`, ...).
    pub encoding: String,
    /// Clock rate; `None` when missing (a finding).
    pub clock_rate: Option<u32>,
    /// Encoding parameters (audio channels).
    pub channels: Option<u16>,
}

impl Rtpmap {
    /// `96 PS/90000`: GB/T 28181 Annex C program stream.
    pub fn ps(payload_type: u8) -> Self {
        Self::new(payload_type, "PS", 90_000)
    }

    /// `98 H264/90000`.
    pub fn h264(payload_type: u8) -> Self {
        Self::new(payload_type, "H264", 90_000)
    }

    /// `97 MPEG4/90000`.
    pub fn mpeg4(payload_type: u8) -> Self {
        Self::new(payload_type, "MPEG4", 90_000)
    }

    /// `8 PCMA/8000`.
    pub fn pcma() -> Self {
        Self::new(8, "PCMA", 8_000)
    }

    /// A mapping without channel count.
    pub fn new(payload_type: u8, encoding: impl Into<String>, clock_rate: u32) -> Self {
        Rtpmap {
            payload_type,
            encoding: encoding.into(),
            clock_rate: Some(clock_rate),
            channels: None,
        }
    }

    /// Lenient: the clock rate may be missing; `None` when the payload type or the
    /// encoding is.
    pub fn parse(v: &str) -> Option<Self> {
        let (pt, rest) = v.trim().split_once(|c: char| c.is_ascii_whitespace())?;
        let payload_type: u8 = parse_digits(pt)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?.to_string();
        let clock_rate = match parts.next() {
            Some(c) => Some(parse_digits(c)?),
            None => None,
        };
        let channels = match parts.next() {
            Some(c) => Some(parse_digits(c)?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Rtpmap {
            payload_type,
            encoding,
            clock_rate,
            channels,
        })
    }

    /// The clock rate the encoding is registered with, for the names GB/T 28181 uses.
    pub fn expected_clock_rate(&self) -> Option<u32> {
        match self.encoding.to_ascii_uppercase().as_str() {
            "PS" | "H264" | "H265" | "MPEG4" | "SVAC" => Some(90_000),
            "PCMA" | "PCMU" | "G711A" | "G711U" => Some(8_000),
            _ => None,
        }
    }

    /// Whether this maps the GB program stream.
    pub fn is_ps(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("PS")
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.payload_type, self.encoding)?;
        if let Some(c) = self.clock_rate {
            write!(f, "/{c}")?;
            if let Some(ch) = self.channels {
                write!(f, "/{ch}")?;
            }
        }
        Ok(())
    }
}

/// Media direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (Talk).
    SendRecv,
    /// `a=sendonly` (the media sender's answer).
    SendOnly,
    /// `a=recvonly` (the receiver's offer).
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute name names (exact, lower case).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str() == name)
    }

    /// The direction the other side answers with.
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// `a=setup` (RFC 4145 §4): who opens the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// This side connects.
    Active,
    /// This side listens.
    Passive,
    /// Either.
    ActPass,
    /// Not yet.
    HoldConn,
}

impl Setup {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// Exact (lower-case) values only.
    pub fn parse(v: &str) -> Option<Self> {
        [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ]
        .into_iter()
        .find(|s| s.as_str() == v)
    }

    /// The role the answerer takes for an offered role (RFC 4145 §4.1):
    /// active ↔ passive, actpass → active.
    pub fn answer(self) -> Self {
        match self {
            Setup::Active => Setup::Passive,
            Setup::Passive | Setup::ActPass => Setup::Active,
            Setup::HoldConn => Setup::HoldConn,
        }
    }
}

/// `a=connection` (RFC 4145 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionMode {
    /// `new`: open a new TCP connection.
    New,
    /// `existing`: reuse one.
    Existing,
}

impl ConnectionMode {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionMode::New => "new",
            ConnectionMode::Existing => "existing",
        }
    }

    /// Exact values only.
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "new" => Some(ConnectionMode::New),
            "existing" => Some(ConnectionMode::Existing),
            _ => None,
        }
    }
}

/// The SSRC carried by `y=`: a 10-digit decimal string `dddddddddd` whose first digit
/// is 0 for live and 1 for history, digits 2-6 the domain part (digits 4-8 of the
/// 20-digit SIP domain ID) and digits 7-10 a stream number inside the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// Why [`Ssrc::gb`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrcError {
    /// The domain part is not 5 decimal digits.
    #[error("domain part {0:?} is not 5 decimal digits")]
    Domain(String),
    /// The stream number does not fit 4 digits.
    #[error("stream number {0} exceeds 9999")]
    Stream(u32),
}

impl Ssrc {
    /// Builds `<0|1><5-digit domain><4-digit stream>`.
    pub fn gb(history: bool, domain: &str, stream: u32) -> Result<Self, SsrcError> {
        if domain.len() != 5 || !domain.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SsrcError::Domain(domain.to_string()));
        }
        if stream > 9999 {
            return Err(SsrcError::Stream(stream));
        }
        let d: u32 = domain
            .parse()
            .map_err(|_| SsrcError::Domain(domain.into()))?;
        Ok(Ssrc(
            u32::from(history) * 1_000_000_000 + d * 10_000 + stream,
        ))
    }

    /// 附录F `y=` of a caller whose GB ID is `caller_id`: the history flag, the ID's
    /// domain part (`00000` when it has none), and a stream number below 10000.
    pub fn for_caller(history: bool, caller_id: &str, stream: u32) -> Self {
        let domain = Self::domain_of(caller_id)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or("00000");
        let stream = stream % 10_000;
        Self::gb(history, domain, stream)
            .unwrap_or(Ssrc(u32::from(history) * 1_000_000_000 + stream))
    }

    /// The domain part of a 20-digit GB ID (its digits 4-8), for [`Ssrc::gb`].
    pub fn domain_of(gb_id: &str) -> Option<&str> {
        gb_id.get(3..8)
    }

    /// Lenient: 1 to 10 decimal digits that fit 32 bits (`y=001` gives 1).
    pub fn parse(v: &str) -> Option<Self> {
        let v = v.trim();
        if v.len() > 10 {
            return None;
        }
        parse_digits::<u32>(v).map(Ssrc)
    }

    /// Whether a `y=` value has the strict form: exactly ten decimal digits.
    pub fn is_strict(v: &str) -> bool {
        v.len() == 10 && v.bytes().all(|b| b.is_ascii_digit())
    }

    /// First of the ten digits: 0 live, 1 history (2..=4 for values no GB SSRC has).
    pub fn flag_digit(self) -> u8 {
        (self.0 / 1_000_000_000) as u8
    }

    /// `Some(true)` for history, `Some(false)` for live, `None` for other flag digits.
    pub fn is_history(self) -> Option<bool> {
        match self.flag_digit() {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl fmt::Display for Ssrc {
    /// Ten digits, zero-padded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

/// One `/`-separated field of `f=`: empty, a decimal number, or anything else as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Param {
    /// Nothing between the separators ("unknown" in GB terms).
    Empty,
    /// A canonical decimal number.
    Num(u32),
    /// Anything else (e.g. a `1920x1080` resolution), kept as written.
    Text(String),
}

impl Param {
    /// Empty, a canonical number (no leading zero) or text.
    pub fn parse(v: &str) -> Self {
        if v.is_empty() {
            return Param::Empty;
        }
        match parse_digits::<u32>(v) {
            Some(n) if n.to_string() == v => Param::Num(n),
            _ => Param::Text(v.to_string()),
        }
    }

    /// The number, when it is one.
    pub fn num(&self) -> Option<u32> {
        match self {
            Param::Num(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Empty => Ok(()),
            Param::Num(n) => write!(f, "{n}"),
            Param::Text(s) => f.write_str(s),
        }
    }
}

/// Video part of `f=`: `编码格式/分辨率/帧率/码率类型/码率大小`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VideoParams {
    /// 编码格式 (GB/T 28181-2016 附录F: 1 MPEG-4, 2 H.264, 3 SVAC, 4 3GP).
    pub codec: Param,
    /// 分辨率 (1 QCIF, 2 CIF, 3 4CIF, 4 D1, 5 720P, 6 1080P/I).
    pub resolution: Param,
    /// 帧率 (0-99).
    pub frame_rate: Param,
    /// 码率类型 (1 CBR, 2 VBR).
    pub rate_type: Param,
    /// 码率大小, kbit/s.
    pub bitrate: Param,
    /// Fields after the fifth, kept.
    pub extra: Vec<Param>,
}

/// Audio part of `f=`: `编码格式/码率大小/采样率`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AudioParams {
    /// 编码格式 (1 G.711, 2 G.723.1, 3 G.729, 4 G.722.1).
    pub codec: Param,
    /// 码率大小 (code: 1 5.3 kbit/s ... 8 64 kbit/s).
    pub bitrate: Param,
    /// 采样率 (1 8 kHz, 2 14 kHz, 3 16 kHz, 4 32 kHz).
    pub sample_rate: Param,
    /// Fields after the third, kept.
    pub extra: Vec<Param>,
}

/// `f=v/<video fields>a/<audio fields>`: the media parameters GB/T 28181 adds to the
/// INVITE sent to the media sender.
///
/// The `a` follows the last video field with no `/` before it (`f=v/0/0/0/0/0a/0/0/0`).
/// `video: None` is the Talk example's `f=v/a/1/8/1` (no video part at all);
/// `audio: None` is a value with no `a` part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MediaParams {
    /// Video part.
    pub video: Option<VideoParams>,
    /// Audio part.
    pub audio: Option<AudioParams>,
}

/// Field counts found by [`MediaParams::parse_counted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCounts {
    /// Fields in the video part (0 when it is absent).
    pub video: usize,
    /// Fields in the audio part, `None` when there is no `a`.
    pub audio: Option<usize>,
}

fn take<const N: usize>(fields: Vec<Param>) -> ([Param; N], Vec<Param>) {
    let mut it = fields.into_iter();
    let head = std::array::from_fn(|_| it.next().unwrap_or(Param::Empty));
    (head, it.collect())
}

impl MediaParams {
    /// Video only, audio fields empty (`a///`).
    pub fn video(
        codec: u32,
        resolution: u32,
        frame_rate: u32,
        rate_type: u32,
        bitrate: u32,
    ) -> Self {
        MediaParams {
            video: Some(VideoParams {
                codec: Param::Num(codec),
                resolution: Param::Num(resolution),
                frame_rate: Param::Num(frame_rate),
                rate_type: Param::Num(rate_type),
                bitrate: Param::Num(bitrate),
                extra: Vec::new(),
            }),
            audio: Some(AudioParams {
                codec: Param::Empty,
                bitrate: Param::Empty,
                sample_rate: Param::Empty,
                extra: Vec::new(),
            }),
        }
    }

    /// `None` when the value does not start with `v/`.
    pub fn parse(v: &str) -> Option<Self> {
        Self::parse_counted(v).map(|(p, _)| p)
    }

    /// Like [`MediaParams::parse`], also returning how many fields each part had.
    pub fn parse_counted(v: &str) -> Option<(Self, ParamCounts)> {
        let rest = v.trim().strip_prefix("v/")?;
        let (video_s, audio_s) = match rest.find('a') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let split = |s: &str| -> Vec<Param> { s.split('/').map(Param::parse).collect() };
        let (video, vn) = if video_s.is_empty() {
            (None, 0)
        } else {
            let f = split(video_s);
            let n = f.len();
            let ([codec, resolution, frame_rate, rate_type, bitrate], extra) = take::<5>(f);
            (
                Some(VideoParams {
                    codec,
                    resolution,
                    frame_rate,
                    rate_type,
                    bitrate,
                    extra,
                }),
                n,
            )
        };
        let (audio, an) = match audio_s {
            None => (None, None),
            Some(a) => {
                let a = a.strip_prefix('/').unwrap_or(a);
                let f = split(a);
                let n = f.len();
                let ([codec, bitrate, sample_rate], extra) = take::<3>(f);
                (
                    Some(AudioParams {
                        codec,
                        bitrate,
                        sample_rate,
                        extra,
                    }),
                    Some(n),
                )
            }
        };
        Some((
            MediaParams { video, audio },
            ParamCounts {
                video: vn,
                audio: an,
            },
        ))
    }
}

impl fmt::Display for MediaParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v/")?;
        let join = |f: &mut fmt::Formatter<'_>, ps: &[&Param]| -> fmt::Result {
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    f.write_str("/")?;
                }
                write!(f, "{p}")?;
            }
            Ok(())
        };
        if let Some(v) = &self.video {
            let mut ps = vec![
                &v.codec,
                &v.resolution,
                &v.frame_rate,
                &v.rate_type,
                &v.bitrate,
            ];
            ps.extend(v.extra.iter());
            join(f, &ps)?;
        }
        if let Some(a) = &self.audio {
            f.write_str("a/")?;
            let mut ps = vec![&a.codec, &a.bitrate, &a.sample_rate];
            ps.extend(a.extra.iter());
            join(f, &ps)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_params_spec_forms() {
        // 实时预览 200 OK: f=v/0/0/0/0/0a/0/0/0
        let (p, n) = MediaParams::parse_counted("v/0/0/0/0/0a/0/0/0").unwrap();
        assert_eq!(
            n,
            ParamCounts {
                video: 5,
                audio: Some(3)
            }
        );
        assert_eq!(p.video.as_ref().unwrap().bitrate, Param::Num(0));
        assert_eq!(p.to_string(), "v/0/0/0/0/0a/0/0/0");
        // 语音对讲: f=v/a/1/8/1 (no video part)
        let (p, n) = MediaParams::parse_counted("v/a/1/8/1").unwrap();
        assert_eq!(
            n,
            ParamCounts {
                video: 0,
                audio: Some(3)
            }
        );
        assert!(p.video.is_none());
        let a = p.audio.as_ref().unwrap();
        assert_eq!(
            (a.codec.num(), a.bitrate.num(), a.sample_rate.num()),
            (Some(1), Some(8), Some(1))
        );
        assert_eq!(p.to_string(), "v/a/1/8/1");
        // platform cascade 实时视频: f=v/2/1/0/1/0a/// (audio fields empty)
        let (p, n) = MediaParams::parse_counted("v/2/1/0/1/0a///").unwrap();
        assert_eq!(n.audio, Some(3));
        assert_eq!(p.video.as_ref().unwrap().codec, Param::Num(2));
        assert_eq!(p.audio.as_ref().unwrap().codec, Param::Empty);
        assert_eq!(p.to_string(), "v/2/1/0/1/0a///");
        // A resolution as WxH and a non-canonical number are kept as text.
        let p = MediaParams::parse("v/2/1920x1080/25/1/04096a/1/8/1").unwrap();
        let v = p.video.as_ref().unwrap();
        assert_eq!(v.resolution, Param::Text("1920x1080".into()));
        assert_eq!(v.bitrate, Param::Text("04096".into()));
        assert_eq!(p.to_string(), "v/2/1920x1080/25/1/04096a/1/8/1");
        assert!(MediaParams::parse("x/1").is_none());
    }

    #[test]
    fn ssrc_forms() {
        assert_eq!(Ssrc::parse("0100000001"), Some(Ssrc(100_000_001)));
        assert_eq!(Ssrc::parse("001"), Some(Ssrc(1)));
        assert!(Ssrc::is_strict("0100000001") && !Ssrc::is_strict("001"));
        assert_eq!(Ssrc::parse("9999999999"), None);
        assert_eq!(Ssrc::parse("01000000011"), None);
        assert_eq!(Ssrc::parse("0x10"), None);
        let s = Ssrc::gb(true, "20000", 1).unwrap();
        assert_eq!(s.to_string(), "1200000001");
        assert_eq!(s.is_history(), Some(true));
        assert_eq!(Ssrc(22_371_912).to_string(), "0022371912");
        assert_eq!(Ssrc::domain_of("34020000001320000001"), Some("20000"));
        assert!(Ssrc::gb(false, "2000", 1).is_err());
        assert!(Ssrc::gb(false, "20000", 10_000).is_err());
        assert_eq!(Ssrc(3_000_000_000).is_history(), None);
        assert_eq!(
            Ssrc::for_caller(true, "34020000002000000001", 42).to_string(),
            "1200000042"
        );
        assert_eq!(Ssrc::for_caller(false, "abc", 7).to_string(), "0000000007");
    }

    #[test]
    fn rtpmap_forms() {
        assert_eq!(Rtpmap::parse("96 PS/90000"), Some(Rtpmap::ps(96)));
        let r = Rtpmap::parse("8 PCMA/8000/1").unwrap();
        assert_eq!((r.clock_rate, r.channels), (Some(8000), Some(1)));
        assert_eq!(r.to_string(), "8 PCMA/8000/1");
        let r = Rtpmap::parse("100 G711U").unwrap();
        assert_eq!(r.clock_rate, None);
        assert_eq!(r.to_string(), "100 G711U");
        assert!(Rtpmap::parse("x PS/90000").is_none());
        assert!(Rtpmap::parse("96").is_none());
    }

    #[test]
    fn media_line_forms() {
        let m = MediaLine::parse("video 36000 RTP/AVP 96 98 97").unwrap();
        assert_eq!(m.payload_types(), vec![96, 98, 97]);
        assert_eq!(m.to_string(), "video 36000 RTP/AVP 96 98 97");
        let m = MediaLine::parse("video 9/2 TCP/RTP/AVP 96").unwrap();
        assert_eq!((m.port, m.port_count), (9, Some(2)));
        assert!(m.proto.is_tcp());
        assert!(MediaProto::parse("RTP/AVP/TCP").is_tcp());
        assert!(MediaLine::parse("video x RTP/AVP").is_none());
    }
}
