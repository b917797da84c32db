//! Byte-literal tests from the SDP examples of `gb28181-features.txt` and
//! `platform-cascade-sip.txt`, and property tests of both layers.
//!
//! The examples are copied with their markdown annotations removed (`# 36000为SIP服务
//! 数据接收端口`, `<!--...-->` lines) and with CRLF line ends, which RFC 4566 requires
//! and the markdown cannot show.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn crlf(s: &str) -> Vec<u8> {
    s.lines()
        .flat_map(|l| l.bytes().chain(*b"\r\n"))
        .collect::<Vec<u8>>()
}

fn parse(s: &str) -> Parsed {
    let bytes = crlf(s);
    let p = SessionDescription::parse(&bytes).unwrap();
    assert_eq!(p.sdp.to_bytes(), bytes, "wire round trip");
    p
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const PLAY_OFFER: &str = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Play
c=IN IP4 192.168.0.107
t=0 0
m=video 36000 RTP/AVP 96 98 97
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
y=0100000001";

const PLAY_ANSWER: &str = "v=0
o=34020000001310000002 0 0 IN IP4 192.168.0.111
s=Play
i=VCam Live Video
c=IN IP4 192.168.0.111
t=0 0
m=video 9712 RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=streamprofile:0
y=0100000001
f=v/0/0/0/0/0a/0/0/0";

const TCP_PASSIVE_ANSWER: &str = "v=0
o=xxx 0 0 IN IP4 192.168.0.111
s=Play
i=VCam Live Video
c=IN IP4 192.168.0.111
t=0 0
m=video 9724 TCP/RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=streamprofile:0
a=setup:active
a=connection:new
y=0100000001
f=v/0/0/0/0/0a/0/0/0";

#[test]
fn play_offer_udp_is_clean_and_builds_byte_exact() {
    let p = parse(PLAY_OFFER);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    let sdp = &p.sdp;
    assert_eq!(sdp.kind(), Some(SessionKind::Play));
    assert_eq!(sdp.ssrc(), Some(Ssrc(100_000_001)));
    assert_eq!(sdp.connection().unwrap().ip(), Some(ip("192.168.0.107")));
    let m = sdp.media();
    assert_eq!(m.len(), 1);
    let ml = m[0].media_line().unwrap();
    assert_eq!(
        (ml.kind, ml.port, ml.proto),
        (MediaKind::Video, 36000, MediaProto::RtpAvp)
    );
    assert_eq!(m[0].direction(), Some(Direction::RecvOnly));
    assert_eq!(
        m[0].rtpmaps(),
        vec![Rtpmap::ps(96), Rtpmap::h264(98), Rtpmap::mpeg4(97)]
    );

    let mut g = GbSession::new(SessionKind::Play, "xxx", ip("192.168.0.107"));
    g.media
        .push(GbMedia::video_offer(36000, None, Direction::RecvOnly));
    g.ssrc = Some(Ssrc(100_000_001));
    assert_eq!(
        String::from_utf8(g.encode()).unwrap(),
        String::from_utf8(crlf(PLAY_OFFER)).unwrap()
    );
    assert_eq!(GbSession::from_sdp(sdp), g);
    // The INVITE says Content-Length: 211; the body is 205 bytes with CRLF
    // (194 with LF), so the example's header does not match its own body.
    assert_eq!(crlf(PLAY_OFFER).len(), 205);
    assert_eq!(PLAY_OFFER.len() + 1, 194);
}

#[test]
fn lf_line_endings_are_read_and_reported() {
    let p = SessionDescription::parse(PLAY_OFFER.as_bytes()).unwrap();
    assert_eq!(p.codes(), vec![FindingCode::LfLineEnding]);
    assert_eq!(p.sdp.to_bytes(), PLAY_OFFER.as_bytes());
    assert_eq!(p.sdp.ssrc(), Some(Ssrc(100_000_001)));
}

#[test]
fn play_answer_keeps_y_and_f() {
    let p = parse(PLAY_ANSWER);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert_eq!(p.sdp.ssrc_value(), Some("0100000001"));
    let f = p.sdp.media_params().unwrap();
    assert_eq!(f.to_string(), "v/0/0/0/0/0a/0/0/0");
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.info.as_deref(), Some("VCam Live Video"));
    assert_eq!(
        g.media[0].attributes,
        vec![Attribute::value("streamprofile", 0)]
    );
    assert_eq!(g.encode(), crlf(PLAY_ANSWER));
}

#[test]
fn tcp_passive_offer_and_active_answer() {
    // 媒体传输方式 TCP被动: the SIP server listens (a=setup:passive), the device
    // connects (a=setup:active, a=connection:new). The spec's m= line ends with a
    // space, kept here.
    let offer = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Play
c=IN IP4 192.168.0.107
t=0 0
m=video 36000 TCP/RTP/AVP 96 98 97 
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
a=setup:passive
y=0100000001";
    let p = parse(offer);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    let m = p.sdp.media();
    assert_eq!(m[0].setup(), Some(Setup::Passive));
    assert!(m[0].media_line().unwrap().proto.is_tcp());
    let mut g = GbSession::new(SessionKind::Play, "xxx", ip("192.168.0.107"));
    g.media.push(GbMedia::video_offer(
        36000,
        Some(Setup::Passive),
        Direction::RecvOnly,
    ));
    g.ssrc = Some(Ssrc(100_000_001));
    assert_eq!(GbSession::from_sdp(&p.sdp), g);
    assert_eq!(g.encode(), crlf(&offer.replace("97 \n", "97\n")));

    let p = parse(TCP_PASSIVE_ANSWER);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.media[0].setup, Some(Setup::Passive.answer()));
    assert_eq!(g.media[0].connection_mode, Some(ConnectionMode::New));
    assert_eq!(g.encode(), crlf(TCP_PASSIVE_ANSWER));
}

#[test]
fn tcp_active_offer_and_passive_answer() {
    let offer = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Play
c=IN IP4 192.168.0.107
t=0 0
m=video 38000 TCP/RTP/AVP 96 98 97
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
a=setup:active
y=0100000001";
    let answer = "v=0
o=xxx 0 0 IN IP4 192.168.0.111
s=Play
i=VCam Live Video
c=IN IP4 192.168.0.111
t=0 0
m=video 9704 TCP/RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=streamprofile:0
a=setup:passive
a=connection:new
y=0100000001
f=v/0/0/0/0/0a/0/0/0";
    let o = parse(offer);
    let a = parse(answer);
    assert!(o.findings.is_empty() && a.findings.is_empty());
    let (os, as_) = (
        o.sdp.media()[0].setup().unwrap(),
        a.sdp.media()[0].setup().unwrap(),
    );
    assert_eq!((os, as_), (Setup::Active, Setup::Passive));
    assert_eq!(os.answer(), as_);
    assert_eq!(a.sdp.media()[0].media_line().unwrap().port, 9704);
}

#[test]
fn tcp_without_setup_is_a_finding() {
    let s = PLAY_OFFER.replace("RTP/AVP", "TCP/RTP/AVP");
    assert_eq!(parse(&s).codes(), vec![FindingCode::SetupMissing]);
    let s = PLAY_OFFER.replace("RTP/AVP", "RTP/AVP/TCP");
    assert_eq!(
        parse(&s).codes(),
        vec![FindingCode::TransportSpelling, FindingCode::SetupMissing]
    );
    let s = PLAY_OFFER.replace("a=recvonly", "a=recvonly\na=setup:passive");
    assert_eq!(parse(&s).codes(), vec![FindingCode::SetupOnUdp]);
    let s = PLAY_OFFER
        .replace("RTP/AVP", "TCP/RTP/AVP")
        .replace("a=recvonly", "a=recvonly\na=setup:server");
    assert_eq!(parse(&s).codes(), vec![FindingCode::SetupInvalid]);
}

#[test]
fn media_server_answer_with_filesize() {
    let s = "v=0
o=xxx 2243 2243 IN IP4 192.168.0.111
s=Play
c=IN IP4 192.168.0.111
t=0 0
m=video 15060 RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=filesize:0
y=0100000001";
    let p = parse(s);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert_eq!(p.sdp.media()[0].file_size(), Some(0));
    assert_eq!(GbSession::from_sdp(&p.sdp).encode(), crlf(s));
}

#[test]
fn download_offer_from_the_spec() {
    // 文件下载 step 1: no u= although the text says "u 字段代表下载通道 ID 和下载类型",
    // and the notes' y=001.
    let s = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Download
c=IN IP4 192.168.0.107
t=1697955233 1697958114
m=video 36000 RTP/AVP 96 98 97
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
a=downloadspeed:8
y=001";
    let p = parse(s);
    assert_eq!(
        p.codes(),
        vec![FindingCode::UriMissing, FindingCode::SsrcNotTenDigits]
    );
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.kind(), Some(SessionKind::Download));
    assert_eq!(g.timing, Timing::range(1_697_955_233, 1_697_958_114));
    assert_eq!(g.media[0].download_speed, Some(8));
    assert_eq!(g.ssrc, Some(Ssrc(1)));
    assert_eq!(p.sdp.ssrc_value(), Some("001"));
    // Built strictly: u=, ten-digit history SSRC.
    let mut b = GbSession::new(
        SessionKind::Download,
        "34020000002000000001",
        ip("192.168.0.107"),
    );
    b.uri = Some("34020000001320000001:0".into());
    b.timing = Timing::range(1_697_955_233, 1_697_958_114);
    let mut m = GbMedia::video_offer(36000, None, Direction::RecvOnly);
    m.download_speed = Some(8);
    b.media.push(m);
    b.ssrc = Some(Ssrc::gb(true, "20000", 1).unwrap());
    let built = SessionDescription::parse(&b.encode()).unwrap();
    assert!(built.findings.is_empty(), "{:#?}", built.findings);
    assert_eq!(built.sdp.ssrc_value(), Some("1200000001"));
}

#[test]
fn download_answer_from_the_spec() {
    let s = "v=0
o=xxx 2131 2131 IN IP4 192.168.0.111
s=Download
c=IN IP4 192.168.0.111
t=0 0
m=video 15060 RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=filesize:62224924
y=001";
    let p = parse(s);
    assert_eq!(
        p.codes(),
        vec![
            FindingCode::UriMissing,
            FindingCode::TimeRange,
            FindingCode::SsrcNotTenDigits
        ]
    );
    assert_eq!(p.sdp.media()[0].file_size(), Some(62_224_924));
}

#[test]
fn playback_offer_and_answer_from_the_spec() {
    // 录像回放: s=Playback with the live flag digit (y=0100000001).
    let offer = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Playback
c=IN IP4 192.168.0.107
t=1697264152 1697266715
m=video 36000 RTP/AVP 96 98 97
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
y=0100000001";
    let p = parse(offer);
    assert_eq!(
        p.codes(),
        vec![FindingCode::UriMissing, FindingCode::SsrcHistoryFlag]
    );
    assert_eq!(p.sdp.timing().unwrap().start, 1_697_264_152);
    let answer = "v=0
o=xxx 1080 1080 IN IP4 192.168.0.111
s=Playback
c=IN IP4 192.168.0.111
t=0 0
m=video 15060 RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=filesize:0
y=0100000001";
    assert_eq!(
        parse(answer).codes(),
        vec![
            FindingCode::UriMissing,
            FindingCode::TimeRange,
            FindingCode::SsrcHistoryFlag
        ]
    );
}

#[test]
fn broadcast_audio_offer_and_answer() {
    let offer = "v=0
o=xxx 0 0 IN IP4 192.168.0.111
s=Play
i=VCam BroadCast Session
c=IN IP4 192.168.0.111
t=0 0
m=audio 9712 RTP/AVP 8 96
a=recvonly
a=rtpmap:8 PCMA/8000/1
a=rtpmap:96 PS/90000
y=0022371912
f=v/0/0/0/0/0a/1/8/1";
    let p = parse(offer);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.ssrc, Some(Ssrc(22_371_912)));
    assert_eq!(g.media[0].kind, MediaKind::Audio);
    assert_eq!(g.media[0].rtpmaps[0].channels, Some(1));
    let a = g.media_params.as_ref().unwrap().audio.as_ref().unwrap();
    assert_eq!(a.codec, Param::Num(1));
    assert_eq!(g.encode(), crlf(offer));
    // 200 OK of the broadcast: rtpmap before the direction.
    let answer = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Play
c=IN IP4 192.168.0.107
t=0 0
m=audio 40000 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendonly
y=0022371912";
    let p = parse(answer);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert_eq!(p.sdp.media()[0].direction(), Some(Direction::SendOnly));
}

#[test]
fn talk_offer_and_answer() {
    // 语音对讲: f=v/a/1/8/1 has no video fields; f= before y=.
    let offer = "v=0
o=xxx 0 0 IN IP4 192.168.0.107
s=Talk
c=IN IP4 192.168.0.107
t=0 0
m=audio 38000 RTP/AVP 8
a=sendrecv
a=rtpmap:8 PCMA/8000
f=v/a/1/8/1
y=0100000001";
    let p = parse(offer);
    assert_eq!(p.codes(), vec![FindingCode::ParamsVideoFields]);
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.kind(), Some(SessionKind::Talk));
    assert!(g.media_params.as_ref().unwrap().video.is_none());
    assert_eq!(g.media[0].direction, Some(Direction::SendRecv));
    let answer = "v=0
o=xxx 0 0 IN IP4 192.168.0.111
s=Talk
i=VCam Talk Session
c=IN IP4 192.168.0.111
t=0 0
m=audio 9712 RTP/AVP 8
a=recvonly
a=rtpmap:8 PCMA/8000/1
m=audio 9712 RTP/AVP 8
a=sendonly
a=rtpmap:8 PCMA/8000/1
y=0100000001
f=v/0/0/0/0/0a/0/0/0";
    let p = parse(answer);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.media.len(), 2);
    assert_eq!(
        g.media.iter().map(|m| m.direction).collect::<Vec<_>>(),
        vec![Some(Direction::RecvOnly), Some(Direction::SendOnly)]
    );
    assert_eq!(g.encode(), crlf(answer));
}

#[test]
fn cascade_live_answer_reconstructed() {
    // platform-cascade-sip 实时视频, 200 OK, with the whitespace the extraction lost
    // put back and the stripped address replaced by 192.0.2.1: "o=huawei0INIP4" has
    // five fields, "a=rtpmap:100G711U" no clock rate, and there is no y=.
    let s = "v=0
o=huawei 0 IN IP4 192.0.2.1
s=Play
c=IN IP4 192.0.2.1
t=0 0
m=video 6016 RTP/AVP 96
a=rtpmap:96 PS/90000
a=sendonly
m=audio 6018 RTP/AVP 100
a=rtpmap:100 G711U
a=sendonly
a=username:admin
a=password:123456
f=v/2/1/0/1/0a///";
    let p = parse(s);
    assert_eq!(
        p.codes(),
        vec![
            FindingCode::SsrcMissing,
            FindingCode::Origin,
            FindingCode::Rtpmap
        ]
    );
    let g = GbSession::from_sdp(&p.sdp);
    assert_eq!(g.media.len(), 2);
    assert_eq!(g.media[1].rtpmaps[0].clock_rate, None);
    assert_eq!(g.media[1].attributes.len(), 2);
    let f = g.media_params.unwrap();
    assert_eq!(f.video.unwrap().codec, Param::Num(2));
}

#[test]
fn y_and_s_findings() {
    let cases: &[(&str, &str, FindingCode)] = &[
        ("y=0100000001", "y=01000000", FindingCode::SsrcNotTenDigits),
        ("y=0100000001", "y=01000x0001", FindingCode::SsrcMalformed),
        ("y=0100000001", "y=3100000001", FindingCode::SsrcFlagDigit),
        ("y=0100000001", "y=1100000001", FindingCode::SsrcHistoryFlag),
        (
            "y=0100000001",
            "y=0100000001\ny=0100000002",
            FindingCode::SsrcDuplicate,
        ),
        ("s=Play", "s=Live", FindingCode::SessionName),
        ("s=Play", "s=play", FindingCode::SessionNameCase),
        ("t=0 0", "t=5 6", FindingCode::LiveTiming),
        ("t=0 0", "t=now", FindingCode::Timing),
        ("v=0", "v=1", FindingCode::Version),
        (
            "a=recvonly",
            "a=recvonly\na=sendonly",
            FindingCode::DirectionConflict,
        ),
        ("a=recvonly\n", "", FindingCode::DirectionMissing),
        (
            "a=rtpmap:98 H264/90000",
            "a=rtpmap:98 H264/8000",
            FindingCode::ClockRate,
        ),
        ("a=rtpmap:98 H264/90000\n", "", FindingCode::RtpmapMissing),
        ("a=rtpmap:96 PS/90000\n", "", FindingCode::PsMissing),
        (
            "y=0100000001",
            "y=0100000001\nf=x",
            FindingCode::ParamsMalformed,
        ),
        (
            "y=0100000001",
            "y=0100000001\nf=v/1/2/3/4/5",
            FindingCode::ParamsAudioFields,
        ),
        (
            "y=0100000001",
            "y=0100000001\nX=1",
            FindingCode::UnknownLineType,
        ),
        (
            "y=0100000001",
            "y=0100000001\n\n",
            FindingCode::MalformedLine,
        ),
        ("c=IN IP4 192.168.0.107\n", "", FindingCode::Connection),
        (
            "a=recvonly",
            "a=recvonly\na=downloadspeed:0",
            FindingCode::DownloadSpeed,
        ),
        (
            "a=recvonly",
            "a=recvonly\na=filesize:-1",
            FindingCode::FileSize,
        ),
        (
            "o=xxx 0 0 IN IP4 192.168.0.107\n",
            "",
            FindingCode::MissingSessionField,
        ),
        (
            "m=video 36000 RTP/AVP 96 98 97",
            "m=video x RTP/AVP",
            FindingCode::MediaLine,
        ),
        ("a=rtpmap:98 H264/90000", "a=rtpmap:98", FindingCode::Rtpmap),
        (
            "a=rtpmap:98 H264/90000",
            "a=rtpmap:98 H264/90000\na=rtpmap:99 H265/90000",
            FindingCode::RtpmapUnlisted,
        ),
        (
            "y=0100000001",
            "y=0100000001\nf=v/1/2/3/4/5a/1\nf=v/",
            FindingCode::ParamsDuplicate,
        ),
        ("RTP/AVP", "RTP/SAVP", FindingCode::TransportUnknown),
    ];
    for (from, to, code) in cases {
        let s = PLAY_OFFER.replacen(from, to, 1);
        let p = parse(&s);
        assert!(p.has(*code), "{to:?}: expected {code}, got {:?}", p.codes());
    }
    let mut sdp = parse(PLAY_OFFER).sdp;
    sdp.remove('y');
    assert_eq!(
        sdp.check().iter().map(|f| f.code).collect::<Vec<_>>(),
        vec![FindingCode::SsrcMissing]
    );
    sdp.set('y', Ssrc(1_100_000_001));
    sdp.set('s', "Playback");
    assert_eq!(sdp.ssrc_value(), Some("1100000001"));
    assert!(sdp.check().iter().any(|f| f.code == FindingCode::TimeRange));
    assert!(SessionDescription::parse(b" \r\n").is_err());
    let p = SessionDescription::parse(b"v=0\r\n\xff\r\n").unwrap();
    assert!(p.has(FindingCode::NotUtf8));
}

#[test]
fn history_ranges_and_ntp_time() {
    let s = "v=0
o=x 0 0 IN IP4 10.0.0.1
s=Playback
u=34020000001320000001:0
c=IN IP4 10.0.0.1
t=3906253952 3906254952
m=video 5000 RTP/AVP 96
a=recvonly
a=rtpmap:96 PS/90000
y=1200000001";
    assert_eq!(parse(s).codes(), vec![FindingCode::NtpTime]);
    let s2 = s.replace("t=3906253952 3906254952", "t=1697266715 1697264152");
    assert_eq!(parse(&s2).codes(), vec![FindingCode::TimeRange]);
    let s3 = s.replace("u=34020000001320000001:0", "u=channel");
    assert!(parse(&s3).has(FindingCode::UriFormat));
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,12}"
}

fn param() -> impl Strategy<Value = Param> {
    prop_oneof![
        Just(Param::Empty),
        any::<u32>().prop_map(Param::Num),
        // No '/', no 'a' (the part separator), not a canonical number.
        "[0-9]{0,3}[xX.b-z][0-9xX]{0,4}".prop_map(Param::Text),
    ]
}

fn media_params() -> impl Strategy<Value = MediaParams> {
    let video = (
        param(),
        param(),
        param(),
        param(),
        param(),
        prop::collection::vec(param(), 0..2),
    )
        .prop_map(
            |(codec, resolution, frame_rate, rate_type, bitrate, extra)| VideoParams {
                codec,
                resolution,
                frame_rate,
                rate_type,
                bitrate,
                extra,
            },
        );
    let audio = (
        param(),
        param(),
        param(),
        prop::collection::vec(param(), 0..2),
    )
        .prop_map(|(codec, bitrate, sample_rate, extra)| AudioParams {
            codec,
            bitrate,
            sample_rate,
            extra,
        });
    (prop::option::of(video), prop::option::of(audio))
        .prop_map(|(video, audio)| MediaParams { video, audio })
}

fn gb_media() -> impl Strategy<Value = GbMedia> {
    (
        prop_oneof![Just(MediaKind::Video), Just(MediaKind::Audio)],
        any::<u16>(),
        prop::option::of(prop_oneof![
            Just(Setup::Active),
            Just(Setup::Passive),
            Just(Setup::ActPass)
        ]),
        prop_oneof![
            Just(Direction::RecvOnly),
            Just(Direction::SendOnly),
            Just(Direction::SendRecv),
            Just(Direction::Inactive)
        ],
        prop::collection::vec((96u8..128, token(), prop::option::of(1u32..200_000)), 0..3),
        prop::collection::vec(("x-[a-z]{1,8}", prop::option::of("[ -~]{0,12}")), 0..3),
        prop::option::of(prop_oneof![
            Just(ConnectionMode::New),
            Just(ConnectionMode::Existing)
        ]),
        prop::option::of(1u32..64),
        prop::option::of(any::<u64>()),
        prop::option::of(Just(Connection::new("10.1.2.3".parse().unwrap()))),
    )
        .prop_map(
            |(kind, port, tcp, direction, maps, attrs, cm, speed, size, conn)| {
                let mut m = GbMedia::new(kind, port, tcp, direction);
                m.formats = maps.iter().map(|(pt, _, _)| pt.to_string()).collect();
                m.rtpmaps = maps
                    .into_iter()
                    .map(|(pt, enc, clock)| Rtpmap {
                        payload_type: pt,
                        encoding: enc,
                        clock_rate: clock,
                        channels: None,
                    })
                    .collect();
                m.attributes = attrs
                    .into_iter()
                    .map(|(name, value)| Attribute { name, value })
                    .collect();
                m.connection_mode = cm;
                m.download_speed = speed;
                m.file_size = size;
                m.connection = conn;
                m
            },
        )
}

fn gb_session() -> impl Strategy<Value = GbSession> {
    (
        prop_oneof![
            Just(SessionKind::Play),
            Just(SessionKind::Playback),
            Just(SessionKind::Download),
            Just(SessionKind::Talk)
        ],
        "[0-9]{20}",
        prop::option::of("[^\r\n]{0,20}"),
        prop::option::of("[0-9]{20}:[0-9]"),
        (any::<u32>(), any::<u32>()),
        prop::collection::vec(gb_media(), 0..3),
        prop::option::of(any::<u32>()),
        prop::option::of(media_params()),
    )
        .prop_map(|(kind, id, info, uri, (a, b), media, ssrc, f)| {
            let mut g = GbSession::new(kind, &id, "192.168.1.20".parse().unwrap());
            g.info = info;
            g.uri = uri;
            g.timing = Timing::range(u64::from(a), u64::from(b));
            g.media = media;
            g.ssrc = ssrc.map(Ssrc);
            g.media_params = f;
            g
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gb_session_round_trips(g in gb_session()) {
        let bytes = g.encode();
        let p = SessionDescription::parse(&bytes).unwrap();
        prop_assert_eq!(p.sdp.to_bytes(), bytes);
        prop_assert_eq!(GbSession::from_sdp(&p.sdp), g);
    }

    #[test]
    fn media_params_round_trip(f in media_params()) {
        prop_assert_eq!(MediaParams::parse(&f.to_string()), Some(f));
    }

    #[test]
    fn any_text_round_trips_and_never_panics(s in "(([a-z]=[ -~]{0,20}|[ -~]{0,6})(\r\n|\n|\r)?){0,12}") {
        if let Ok(p) = SessionDescription::parse(s.as_bytes()) {
            prop_assert_eq!(p.sdp.to_bytes(), s.as_bytes());
            let _ = GbSession::from_sdp(&p.sdp);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(p) = SessionDescription::parse(&b) {
            let _ = GbSession::from_sdp(&p.sdp);
        }
    }
}

#[test]
fn a_short_ssrc_is_recovered_as_its_ten_digit_form() {
    let text = "v=0\r\no=x 0 0 IN IP4 10.0.0.2\r\ns=Play\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
m=video 6000 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\na=sendonly\r\ny=100000001\r\n";
    let p = SessionDescription::parse(text.as_bytes()).unwrap();
    assert!(p.has(FindingCode::SsrcNotTenDigits), "{:?}", p.findings);
    let mut sdp = p.sdp;
    assert!(sdp.recover_ssrc());
    assert_eq!(sdp.ssrc_value(), Some("0100000001"));
    let again = SessionDescription::parse(&sdp.to_bytes()).unwrap();
    assert!(
        !again.has(FindingCode::SsrcNotTenDigits),
        "{:?}",
        again.findings
    );
    // Nothing to recover: ten digits already, or not a number at all.
    let mut sdp = again.sdp;
    assert!(!sdp.recover_ssrc());
    sdp.set('y', "12ab");
    assert!(!sdp.recover_ssrc());
    assert_eq!(sdp.ssrc_value(), Some("12ab"));
    sdp.remove('y');
    assert!(!sdp.recover_ssrc());
}
