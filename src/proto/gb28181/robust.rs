//! Robustness inputs for a GB/T 28181 device under test: a seeded stream of
//! requests a platform could send it, some valid but unusual, some broken
//! on purpose at one layer (SIP, MANSCDP XML, PTZCmd, SDP).
//!
//! Pure: the same seed and [`Addressing`] give the same bytes. The driver
//! sends them, probes the device between batches and judges the answers.
//!
//! Each input says whether a correct device must refuse it
//! ([`Input::must_refuse`]): a request that lacks a header RFC 3261 §8.1.1
//! makes mandatory, whose body is shorter than its Content-Length
//! (§18.3), or whose MANSCDP body is not XML at all. Answering such a
//! request 2xx is accepting garbage as if it were valid. Every other input
//! may be answered any way the device likes, as long as it keeps answering.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ptz::checksum;

/// What the device under test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dut {
    /// A camera: camcert sends it what a platform sends (queries, controls,
    /// INVITEs).
    #[default]
    Camera,
    /// A platform: camcert sends it what a registered camera sends
    /// (keepalives and other notifications); the PTZCmd and SDP layers
    /// become MANSCDP ones.
    Platform,
}

/// Who talks to whom: enough to address a request to the device under test.
#[derive(Debug, Clone)]
pub struct Addressing {
    pub dut: Dut,
    /// The device under test's ID (Request-URI, To; a camera's also in the
    /// body's DeviceID).
    pub dut_id: String,
    /// camcert's own ID (From; as a camera, also the body's DeviceID).
    pub own_id: String,
    /// SIP domain of From and To.
    pub domain: String,
    /// `host:port` camcert sends from (Via, Contact, SDP).
    pub local: String,
    /// `host:port` of the device (Request-URI host).
    pub remote: String,
    /// `UDP` or `TCP`, for Via.
    pub transport: String,
}

/// Which kind of input to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// Valid requests with unusual values: long fields, GBK text, extreme
    /// SN, many headers, every optional element.
    Unusual,
    /// A valid request broken at one layer.
    Mutate,
}

/// The protocol layer a mutation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Sip,
    Manscdp,
    Ptz,
    Sdp,
}

impl Layer {
    pub const ALL: [Layer; 4] = [Layer::Sip, Layer::Manscdp, Layer::Ptz, Layer::Sdp];

    pub fn parse(s: &str) -> Option<Layer> {
        match s.to_ascii_lowercase().as_str() {
            "sip" => Some(Layer::Sip),
            "manscdp" | "xml" => Some(Layer::Manscdp),
            "ptz" | "ptzcmd" => Some(Layer::Ptz),
            "sdp" => Some(Layer::Sdp),
            _ => None,
        }
    }
}

/// One generated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// 1-based position in the stream.
    pub index: u64,
    /// What was done, e.g. `mutate/sip: drop Call-ID`.
    pub what: String,
    pub bytes: Vec<u8>,
    /// The method of the request before it was broken.
    pub method: &'static str,
    /// Its Call-ID and branch as generated (they may have been damaged).
    pub call_id: String,
    pub branch: String,
    /// A correct device must not answer it 2xx.
    pub must_refuse: bool,
}

impl Input {
    /// The bytes with the Call-ID and branch replaced by fresh values of
    /// the same length, so that a replay is not taken for a retransmission
    /// of what an earlier attempt sent.
    pub fn renamed(&self, salt: u64) -> Vec<u8> {
        let mut out = self.bytes.clone();
        for id in [&self.call_id, &self.branch] {
            let fresh = salted(id, salt);
            replace_all(&mut out, id.as_bytes(), fresh.as_bytes());
        }
        out
    }
}

fn salted(id: &str, salt: u64) -> String {
    let digits = format!("{:016x}", salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // IDs are ASCII: keep all but the last (up to) eight characters.
    let keep = id.len().saturating_sub(8);
    let mut s = id.get(..keep).unwrap_or("").to_string();
    s.push_str(&digits[16 - (id.len() - s.len()).min(16)..]);
    s
}

fn replace_all(buf: &mut Vec<u8>, from: &[u8], to: &[u8]) {
    if from.is_empty() || from == to {
        return;
    }
    let mut i = 0;
    while i + from.len() <= buf.len() {
        if &buf[i..i + from.len()] == from {
            buf.splice(i..i + from.len(), to.iter().copied());
            i += to.len();
        } else {
            i += 1;
        }
    }
}

/// The seeded stream of inputs.
pub struct Inputs {
    rng: StdRng,
    to: Addressing,
    generators: Vec<Generator>,
    layers: Vec<Layer>,
    count: u64,
    sn: u64,
}

/// The largest input sent on a stream: a longer message may be refused by
/// closing the connection (a device's message limit), which ends the run
/// rather than testing anything behind the framer.
const MAX_STREAM_INPUT: usize = 8 * 1024;

/// Headers RFC 3261 §8.1.1 makes mandatory in every request.
const MANDATORY: [&str; 6] = ["Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"];

impl Inputs {
    pub fn new(seed: u64, to: Addressing, generators: &[Generator], layers: &[Layer]) -> Inputs {
        Inputs {
            rng: StdRng::seed_from_u64(seed),
            to,
            generators: if generators.is_empty() {
                vec![Generator::Unusual, Generator::Mutate]
            } else {
                generators.to_vec()
            },
            layers: if layers.is_empty() {
                Layer::ALL.to_vec()
            } else {
                layers.to_vec()
            },
            count: 0,
            sn: 0,
        }
    }

    /// The next input that leaves a stream's framing intact (SIP over
    /// TCP): it parses as one whole message whose Content-Length is its
    /// body's. Breaking the framing only makes the device close the
    /// connection, as RFC 3261 §18.3 has it; what lies behind the framer
    /// is what a stream's inputs test.
    pub fn next_stream_input(&mut self) -> Input {
        for _ in 0..64 {
            let i = self.next_input();
            if frames_whole(&i.bytes) && i.bytes.len() <= MAX_STREAM_INPUT {
                return i;
            }
            self.count -= 1;
        }
        self.count += 1;
        let mut i = self
            .base(Layer::Manscdp)
            .into_input("valid query".into(), false);
        i.index = self.count;
        i
    }

    /// The next input.
    pub fn next_input(&mut self) -> Input {
        self.count += 1;
        let g = self.generators[self.rng.gen_range(0..self.generators.len())];
        let mut layer = self.layers[self.rng.gen_range(0..self.layers.len())];
        if self.to.dut == Dut::Platform && matches!(layer, Layer::Ptz | Layer::Sdp) {
            layer = Layer::Manscdp;
        }
        let mut input = match g {
            Generator::Unusual => self.unusual(layer),
            Generator::Mutate => self.mutate(layer),
        };
        input.index = self.count;
        input
    }

    fn token(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.gen_range(0..16)]))
            .collect()
    }

    /// The DeviceID a body names: the camera asked about, or camcert as
    /// the camera a platform holds.
    fn body_id(&self) -> String {
        match self.to.dut {
            Dut::Camera => self.to.dut_id.clone(),
            Dut::Platform => self.to.own_id.clone(),
        }
    }

    fn next_sn(&mut self) -> u64 {
        self.sn += 1;
        self.sn
    }

    /// A request with `headers` (name, value) after the standard ones and
    /// `body` of `content_type`.
    fn request(
        &mut self,
        method: &'static str,
        extra: &[(String, String)],
        content_type: Option<&str>,
        body: &[u8],
    ) -> Draft {
        let call_id = format!("{}@camcert", self.token(16));
        let branch = format!("z9hG4bK{}", self.token(12));
        let tag = self.token(8);
        let t = &self.to;
        let mut headers: Vec<(String, String)> = vec![
            (
                "Via".into(),
                format!("SIP/2.0/{} {};rport;branch={branch}", t.transport, t.local),
            ),
            (
                "From".into(),
                format!("<sip:{}@{}>;tag={tag}", t.own_id, t.domain),
            ),
            ("To".into(), format!("<sip:{}@{}>", t.dut_id, t.domain)),
            ("Call-ID".into(), call_id.clone()),
            (
                "CSeq".into(),
                format!("{} {method}", self.rng.gen_range(1..1000)),
            ),
            ("Max-Forwards".into(), "70".into()),
        ];
        if method == "INVITE" {
            headers.push(("Contact".into(), format!("<sip:{}@{}>", t.own_id, t.local)));
            headers.push(("Subject".into(), format!("{}:0,{}:0", t.dut_id, t.own_id)));
        }
        if let Some(ct) = content_type {
            headers.push(("Content-Type".into(), ct.into()));
        }
        headers.extend(extra.iter().cloned());
        Draft {
            start: format!("{method} sip:{}@{} SIP/2.0", t.dut_id, t.remote),
            headers,
            body: body.to_vec(),
            content_length: None,
            method,
            call_id,
            branch,
        }
    }

    /// A MANSCDP body about `device_id`: to a camera a `cmd` Query; to a
    /// platform the camera's Keepalive Notify, whatever `cmd` says.
    fn query_body(&mut self, cmd: &str, device_id: &str, sn: u64, extra: &str) -> String {
        if self.to.dut == Dut::Platform {
            return format!(
                "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n<Status>OK</Status>\r\n{extra}</Notify>\r\n"
            );
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Query>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n{extra}</Query>\r\n"
        )
    }

    fn ptz_body(&mut self, ptz: &str, sn: u64) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<PTZCmd>{ptz}</PTZCmd>\r\n</Control>\r\n",
            self.to.dut_id
        )
    }

    fn ptz_hex(&mut self, valid_checksum: bool) -> String {
        let mut b = [0xA5u8, 0x0F, 0x01, 0, 0, 0, 0, 0];
        b[3] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x00][self.rng.gen_range(0..7)];
        b[4] = self.rng.gen();
        b[5] = self.rng.gen();
        b[6] = self.rng.gen_range(0..16) << 4;
        b[7] = checksum(&b[..7]);
        if !valid_checksum {
            b[7] = b[7].wrapping_add(self.rng.gen_range(1..=255));
        }
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    fn sdp(&mut self, with_y: bool) -> String {
        let (host, port) = self
            .to
            .local
            .rsplit_once(':')
            .map(|(h, _)| (h.trim_matches(['[', ']']).to_string(), 9))
            .unwrap_or_else(|| ("127.0.0.1".into(), 9));
        let ip = if host.contains(':') { "IP6" } else { "IP4" };
        let mut s = format!(
            "v=0\r\no={} 0 0 IN {ip} {host}\r\ns=Play\r\nc=IN {ip} {host}\r\nt=0 0\r\nm=video {port} RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n",
            self.to.own_id
        );
        if with_y {
            s.push_str(&format!(
                "y=0{:09}\r\n",
                self.rng.gen_range(0..1_000_000_000u32)
            ));
        }
        s
    }

    /// A valid request for `layer`.
    fn base(&mut self, layer: Layer) -> Draft {
        let sn = self.next_sn();
        match layer {
            Layer::Sip | Layer::Manscdp => {
                let cmd = ["DeviceInfo", "DeviceStatus", "Catalog"][self.rng.gen_range(0..3)];
                let id = self.body_id();
                let body = self.query_body(cmd, &id, sn, "");
                self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                )
            }
            Layer::Ptz => {
                let ptz = self.ptz_hex(true);
                let body = self.ptz_body(&ptz, sn);
                self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                )
            }
            Layer::Sdp => {
                let sdp = self.sdp(true);
                self.request("INVITE", &[], Some("APPLICATION/SDP"), sdp.as_bytes())
            }
        }
    }

    fn unusual(&mut self, layer: Layer) -> Input {
        let sn = self.next_sn();
        let id = self.body_id();
        let (what, mut d) = match (layer, self.rng.gen_range(0..4)) {
            (Layer::Sip, 0) => {
                let n = self.rng.gen_range(50..200);
                let extra: Vec<(String, String)> = (0..n)
                    .map(|i| (format!("X-Camcert-{i}"), "x".repeat(i % 40 + 1)))
                    .collect();
                let body = self.query_body("DeviceInfo", &id, sn, "");
                let d = self.request(
                    "MESSAGE",
                    &extra,
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                (format!("{n} extension headers"), d)
            }
            (Layer::Sip, 1) => {
                let len = self.rng.gen_range(1024..8192);
                let extra = vec![("Subject".to_string(), "S".repeat(len))];
                let body = self.query_body("DeviceStatus", &id, sn, "");
                let d = self.request(
                    "MESSAGE",
                    &extra,
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                (format!("a {len}-byte header value"), d)
            }
            (Layer::Sip, _) => {
                let body = self.query_body("DeviceInfo", &id, sn, "");
                let mut d = self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                let hops = self.rng.gen_range(2..20);
                for h in 0..hops {
                    d.headers.insert(
                        0,
                        (
                            "Via".into(),
                            format!("SIP/2.0/UDP 192.0.2.{}:5060;branch=z9hG4bK{h:08}", h + 1),
                        ),
                    );
                }
                (format!("{} Via headers", hops + 1), d)
            }
            (Layer::Manscdp, 0) => {
                let len = [21, 64, 1024, 4096][self.rng.gen_range(0..4)];
                let long: String = (0..len)
                    .map(|i| char::from(b'0' + (i % 10) as u8))
                    .collect();
                let body = self.query_body("DeviceInfo", &long, sn, "");
                let d = self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                (format!("a {len}-digit DeviceID"), d)
            }
            (Layer::Manscdp, 1) => {
                let big = [0u64, u32::MAX as u64, u64::MAX, 1 << 53][self.rng.gen_range(0..4)];
                let body = self.query_body("Catalog", &id, big, "");
                let d = self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                (format!("SN {big}"), d)
            }
            (Layer::Manscdp, 2) => {
                // 中文名称 in GB2312, as a platform's Info text.
                let gbk: &[u8] = b"\xd6\xd0\xce\xc4\xc3\xfb\xb3\xc6";
                let mut body = self
                    .query_body("DeviceStatus", &id, sn, "<Info>")
                    .into_bytes();
                let at = body.windows(6).position(|w| w == b"<Info>").unwrap_or(0) + 6;
                let mut tail = gbk.repeat(self.rng.gen_range(1..64));
                tail.extend_from_slice(b"</Info>\r\n");
                body.splice(at..at, tail);
                let d = self.request("MESSAGE", &[], Some("Application/MANSCDP+xml"), &body);
                ("GB2312 text in an Info element".into(), d)
            }
            (Layer::Manscdp, _) => {
                let extra = "<StartTime>2026-01-01T00:00:00</StartTime>\r\n<EndTime>2026-01-01T00:10:00</EndTime>\r\n<FilePath>/</FilePath>\r\n<Address>Address</Address>\r\n<Secrecy>0</Secrecy>\r\n<Type>all</Type>\r\n<RecorderID>34020000001320000001</RecorderID>\r\n<IndistinctQuery>0</IndistinctQuery>\r\n";
                let body = self.query_body("RecordInfo", &id, sn, extra);
                let d = self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                ("RecordInfo with every optional element".into(), d)
            }
            (Layer::Ptz, _) => {
                let ptz = self.ptz_hex(true);
                let ptz = if self.rng.gen() {
                    ptz.to_ascii_lowercase()
                } else {
                    ptz
                };
                let body = self.ptz_body(&ptz, sn);
                let d = self.request(
                    "MESSAGE",
                    &[],
                    Some("Application/MANSCDP+xml"),
                    body.as_bytes(),
                );
                (format!("PTZCmd {ptz}"), d)
            }
            (Layer::Sdp, _) => {
                let mut sdp = self.sdp(true);
                let n = self.rng.gen_range(10..80);
                for i in 0..n {
                    sdp.push_str(&format!("a=x-camcert-{i}:{}\r\n", "v".repeat(i)));
                }
                let d = self.request("INVITE", &[], Some("APPLICATION/SDP"), sdp.as_bytes());
                (format!("SDP with {n} extra attributes"), d)
            }
        };
        d.content_length = None;
        d.into_input(format!("unusual/{}: {what}", layer_name(layer)), false)
    }

    fn mutate(&mut self, layer: Layer) -> Input {
        let mut d = self.base(layer);
        let (what, must_refuse) = match layer {
            Layer::Sip => match self.rng.gen_range(0..7) {
                0 => {
                    let name = MANDATORY[self.rng.gen_range(0..MANDATORY.len())];
                    d.headers.retain(|(n, _)| n != name);
                    (format!("drop {name}"), name != "Max-Forwards")
                }
                1 => {
                    let i = self.rng.gen_range(0..d.headers.len());
                    let h = d.headers[i].clone();
                    d.headers.insert(i, h.clone());
                    (format!("duplicate {}", h.0), false)
                }
                2 => {
                    let extra = self.rng.gen_range(1..2000);
                    d.content_length = Some(d.body.len() + extra);
                    (format!("Content-Length {extra} over the body"), true)
                }
                3 => {
                    let short = self.rng.gen_range(1..=d.body.len().max(1));
                    d.content_length = Some(d.body.len().saturating_sub(short));
                    (format!("Content-Length {short} under the body"), false)
                }
                4 => {
                    let mut bytes = d.render();
                    let cut = self.rng.gen_range(1..bytes.len());
                    bytes.truncate(cut);
                    return d.raw_input(
                        format!("mutate/sip: truncated at byte {cut}"),
                        bytes,
                        true,
                    );
                }
                5 => {
                    let mut bytes = d.render();
                    let flips = self.rng.gen_range(1..=8);
                    for _ in 0..flips {
                        let i = self.rng.gen_range(0..bytes.len());
                        bytes[i] ^= 1 << self.rng.gen_range(0..8);
                    }
                    return d.raw_input(format!("mutate/sip: {flips} bit flips"), bytes, false);
                }
                _ => {
                    let mut bytes = d.render();
                    bytes.retain(|b| *b != b'\r');
                    return d.raw_input("mutate/sip: bare LF line ends".into(), bytes, false);
                }
            },
            Layer::Manscdp => match self.rng.gen_range(0..5) {
                0 => {
                    let n = self.rng.gen_range(16..4096);
                    d.body = (0..n).map(|_| self.rng.gen()).collect();
                    (format!("{n} random bytes as the body"), true)
                }
                1 => {
                    let depth = self.rng.gen_range(100..2000);
                    let mut body = b"<?xml version=\"1.0\"?>\r\n<Query>".to_vec();
                    body.extend(b"<a>".repeat(depth));
                    body.extend(b"</a>".repeat(depth));
                    body.extend_from_slice(b"</Query>\r\n");
                    d.body = body;
                    (format!("elements nested {depth} deep"), false)
                }
                2 => {
                    let cut = self.rng.gen_range(1..d.body.len());
                    d.body.truncate(cut);
                    (format!("XML cut at byte {cut}"), false)
                }
                3 => {
                    let at = self.rng.gen_range(0..d.body.len());
                    d.body.splice(at..at, [0xFF, 0xFE, 0x80, 0xC0]);
                    (format!("invalid GB2312 bytes at {at}"), false)
                }
                _ => {
                    let n = self.rng.gen_range(16_000..60_000);
                    let at = d
                        .body
                        .windows(8)
                        .position(|w| w == b"</Query>")
                        .unwrap_or(0);
                    let pad = format!("<Pad>{}</Pad>\r\n", "P".repeat(n));
                    d.body.splice(at..at, pad.into_bytes());
                    (format!("a {n}-byte element"), false)
                }
            },
            Layer::Ptz => {
                let sn = self.next_sn();
                let (what, ptz) = match self.rng.gen_range(0..3) {
                    0 => ("wrong checksum".to_string(), self.ptz_hex(false)),
                    1 => {
                        let n = self.rng.gen_range(0..16);
                        let s = self.token(n);
                        (format!("{n} hex digits"), s)
                    }
                    _ => ("not hex".to_string(), "ZZ0F01080000000Z".to_string()),
                };
                d.body = self.ptz_body(&ptz, sn).into_bytes();
                (format!("PTZCmd {what}"), false)
            }
            Layer::Sdp => match self.rng.gen_range(0..4) {
                0 => {
                    d.body = self.sdp(false).into_bytes();
                    ("SDP without y=".into(), false)
                }
                1 => {
                    let mut s = self.sdp(false);
                    s.push_str("y=not-a-ssrc\r\n");
                    d.body = s.into_bytes();
                    ("SDP with y=not-a-ssrc".into(), false)
                }
                2 => {
                    let s = self
                        .sdp(true)
                        .replace("m=video 9 RTP/AVP 96", "m=video 99999999 RTP/AVP");
                    d.body = s.into_bytes();
                    ("SDP with an impossible port and no format".into(), false)
                }
                _ => {
                    let cut = self.rng.gen_range(1..d.body.len());
                    d.body.truncate(cut);
                    (format!("SDP cut at byte {cut}"), false)
                }
            },
        };
        d.into_input(format!("mutate/{}: {what}", layer_name(layer)), must_refuse)
    }
}

fn frames_whole(bytes: &[u8]) -> bool {
    let Ok(p) = crate::proto::sip::SipMessage::parse(bytes) else {
        return false;
    };
    p.consumed == bytes.len()
        && p.message
            .headers
            .get("Content-Length")
            .and_then(|v| v.trim().parse::<usize>().ok())
            == Some(p.message.body.len())
}

fn layer_name(l: Layer) -> &'static str {
    match l {
        Layer::Sip => "sip",
        Layer::Manscdp => "manscdp",
        Layer::Ptz => "ptz",
        Layer::Sdp => "sdp",
    }
}

/// A request on its way to bytes.
struct Draft {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Overrides the body's length.
    content_length: Option<usize>,
    method: &'static str,
    call_id: String,
    branch: String,
}

impl Draft {
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(self.start.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        let len = self.content_length.unwrap_or(self.body.len());
        out.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    fn into_input(self, what: String, must_refuse: bool) -> Input {
        let bytes = self.render();
        self.raw_input(what, bytes, must_refuse)
    }

    fn raw_input(self, what: String, bytes: Vec<u8>, must_refuse: bool) -> Input {
        Input {
            index: 0,
            what,
            bytes,
            method: self.method,
            call_id: self.call_id,
            branch: self.branch,
            must_refuse,
        }
    }
}

/// The valid request a probe sends between batches: a DeviceInfo query to
/// a camera, a keepalive to a platform.
pub fn probe(to: &Addressing, seed: u64, sn: u64) -> Input {
    let mut g = Inputs::new(seed, to.clone(), &[], &[]);
    let id = g.body_id();
    let body = g.query_body("DeviceInfo", &id, sn, "");
    let what = match to.dut {
        Dut::Camera => "probe: DeviceInfo query",
        Dut::Platform => "probe: keepalive",
    };
    g.request(
        "MESSAGE",
        &[],
        Some("Application/MANSCDP+xml"),
        body.as_bytes(),
    )
    .into_input(what.into(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sip::SipMessage;

    fn to() -> Addressing {
        Addressing {
            dut: Dut::Camera,
            dut_id: "34020000001320000001".into(),
            own_id: "34020000002000000001".into(),
            domain: "3402000000".into(),
            local: "127.0.0.1:5060".into(),
            remote: "127.0.0.1:5062".into(),
            transport: "UDP".into(),
        }
    }

    fn stream(seed: u64, n: usize) -> Vec<Input> {
        let mut g = Inputs::new(seed, to(), &[], &[]);
        (0..n).map(|_| g.next_input()).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        assert_eq!(stream(7, 300), stream(7, 300));
        assert_ne!(stream(7, 50), stream(8, 50));
    }

    #[test]
    fn every_layer_and_generator_is_used() {
        let all = stream(1, 2000);
        for prefix in [
            "unusual/sip",
            "unusual/manscdp",
            "unusual/ptz",
            "unusual/sdp",
            "mutate/sip",
            "mutate/manscdp",
            "mutate/ptz",
            "mutate/sdp",
        ] {
            assert!(all.iter().any(|i| i.what.starts_with(prefix)), "{prefix}");
        }
        assert!(all.iter().any(|i| i.must_refuse));
        assert!(all
            .iter()
            .any(|i| !i.must_refuse && i.what.starts_with("mutate")));
    }

    #[test]
    fn unusual_inputs_are_valid_sip_addressed_to_the_device() {
        let mut g = Inputs::new(3, to(), &[Generator::Unusual], &[]);
        for _ in 0..300 {
            let i = g.next_input();
            let p = SipMessage::parse(&i.bytes).unwrap_or_else(|e| panic!("{}: {e}", i.what));
            assert_eq!(p.message.method(), Some(i.method), "{}", i.what);
            assert!(p.message.uri().unwrap().contains("34020000001320000001"));
            assert_eq!(p.message.call_id(), Some(i.call_id.as_str()));
            assert!(!i.must_refuse);
        }
    }

    #[test]
    fn a_dropped_mandatory_header_is_to_be_refused() {
        let mut g = Inputs::new(5, to(), &[Generator::Mutate], &[Layer::Sip]);
        let mut seen = 0;
        for _ in 0..400 {
            let i = g.next_input();
            if let Some(name) = i.what.strip_prefix("mutate/sip: drop ") {
                seen += 1;
                let text = String::from_utf8_lossy(&i.bytes);
                assert!(!text.contains(&format!("\r\n{name}:")), "{}", i.what);
                assert_eq!(i.must_refuse, name != "Max-Forwards");
            }
        }
        assert!(seen > 0);
    }

    #[test]
    fn stream_inputs_keep_the_framing() {
        let mut g = Inputs::new(4, to(), &[], &[]);
        let all: Vec<Input> = (0..300).map(|_| g.next_stream_input()).collect();
        for (k, i) in all.iter().enumerate() {
            assert_eq!(i.index, k as u64 + 1);
            assert!(frames_whole(&i.bytes), "{}", i.what);
        }
        assert!(all.iter().any(|i| i.what.starts_with("mutate")));
    }

    #[test]
    fn ptz_mutations_break_the_checksum() {
        let mut g = Inputs::new(9, to(), &[Generator::Mutate], &[Layer::Ptz]);
        let i = (0..100)
            .map(|_| g.next_input())
            .find(|i| i.what.contains("wrong checksum"))
            .expect("a wrong checksum");
        let text = String::from_utf8_lossy(&i.bytes);
        let hex = text
            .split("<PTZCmd>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let b: Vec<u8> = (0..8)
            .map(|k| u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap())
            .collect();
        assert_ne!(b[7], checksum(&b[..7]));
    }

    #[test]
    fn renaming_keeps_lengths_and_changes_the_ids() {
        for i in stream(11, 100) {
            let r = i.renamed(42);
            assert_eq!(r.len(), i.bytes.len(), "{}", i.what);
            let text = String::from_utf8_lossy(&i.bytes);
            if text.contains(&i.call_id) {
                assert!(
                    !String::from_utf8_lossy(&r).contains(&i.call_id),
                    "{}",
                    i.what
                );
            }
            if text.contains(&i.call_id) || text.contains(&i.branch) {
                assert_ne!(i.renamed(1), i.renamed(2), "{}", i.what);
            }
        }
    }

    #[test]
    fn a_platform_gets_what_a_camera_sends() {
        let to = Addressing {
            dut: Dut::Platform,
            ..to()
        };
        let mut g = Inputs::new(2, to.clone(), &[Generator::Unusual], &[]);
        for _ in 0..200 {
            let i = g.next_input();
            let m = SipMessage::parse(&i.bytes).unwrap().message;
            assert_eq!(m.method(), Some("MESSAGE"), "{}", i.what);
            let body = String::from_utf8_lossy(&m.body);
            assert!(body.contains("<Notify>"), "{}: {body}", i.what);
        }
        let p = probe(&to, 1, 5);
        let body =
            String::from_utf8_lossy(&SipMessage::parse(&p.bytes).unwrap().message.body).to_string();
        assert!(body.contains("<CmdType>Keepalive</CmdType>"));
        assert!(body.contains("<DeviceID>34020000002000000001</DeviceID>"));
    }

    #[test]
    fn the_probe_is_a_valid_deviceinfo_query() {
        let p = probe(&to(), 1, 77);
        let m = SipMessage::parse(&p.bytes).unwrap().message;
        assert_eq!(m.method(), Some("MESSAGE"));
        let body = String::from_utf8_lossy(&m.body);
        assert!(body.contains("<CmdType>DeviceInfo</CmdType>") && body.contains("<SN>77</SN>"));
    }
}
