//! Two parties wired together in virtual time: the calling and the answering side of
//! each media session, and the two halves of a broadcast. The driver moves time to
//! the next wake-up, so 64*T1 of waiting runs in microseconds; a filter drops chosen
//! messages to show retransmission and timeout behaviour.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::mansrtsp::{Method, Range};
use super::*;
use crate::proto::gb28181::manscdp::ResultType;
use crate::proto::sdp::{Direction, MediaKind, SessionKind, Setup};
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transmit};

const PLAT: &str = "34020000002000000001";
const CAM: &str = "34020000001320000001";
const SOURCE: &str = "34020000001370000001";

fn plat_addr() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}

fn cam_addr() -> SocketAddr {
    "192.0.2.10:5060".parse().unwrap()
}

/// What the world needs from a machine.
trait Party {
    type Event: std::fmt::Debug + Clone;
    fn handle(&mut self, now: Now, from: SocketAddr, msg: &SipMessage);
    fn timeout(&mut self, now: Now);
    fn next_timeout(&self) -> Option<Instant>;
    fn transmit(&mut self) -> Option<Transmit>;
    fn event(&mut self) -> Option<Self::Event>;
}

macro_rules! party {
    ($t:ty, $e:ty) => {
        impl Party for $t {
            type Event = $e;
            fn handle(&mut self, now: Now, from: SocketAddr, msg: &SipMessage) {
                self.handle_message(now, from, msg)
            }
            fn timeout(&mut self, now: Now) {
                self.handle_timeout(now)
            }
            fn next_timeout(&self) -> Option<Instant> {
                self.poll_timeout()
            }
            fn transmit(&mut self) -> Option<Transmit> {
                self.poll_transmit()
            }
            fn event(&mut self) -> Option<$e> {
                self.poll_event()
            }
        }
    };
}

party!(MediaUac, SessionEvent);
party!(MediaUas, SessionEvent);
party!(BroadcastSource, BroadcastEvent);
party!(BroadcastTarget, BroadcastEvent);

type Filter = Box<dyn FnMut(&SipMessage) -> bool>;

/// `a` at [`plat_addr`], `b` at [`cam_addr`].
struct World<A: Party, B: Party> {
    start: Instant,
    now: Now,
    a: A,
    b: B,
    a_events: Vec<(Duration, A::Event)>,
    b_events: Vec<(Duration, B::Event)>,
    /// Every message that crossed, with its time and whether `a` sent it.
    trace: Vec<(Duration, bool, SipMessage)>,
    /// Return `true` to drop a message.
    drop: Filter,
}

impl<A: Party, B: Party> World<A, B> {
    fn new(now: Now, a: A, b: B) -> Self {
        World {
            start: now.mono,
            now,
            a,
            b,
            a_events: Vec::new(),
            b_events: Vec::new(),
            trace: Vec::new(),
            drop: Box::new(|_| false),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now.mono - self.start
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.a.transmit() {
                moved = true;
                assert_eq!(t.to, cam_addr(), "a sends to b");
                let m = SipMessage::parse(&t.bytes).expect("a sends SIP").message;
                self.trace.push((self.elapsed(), true, m.clone()));
                if !(self.drop)(&m) {
                    self.b.handle(self.now, plat_addr(), &m);
                }
            }
            while let Some(t) = self.b.transmit() {
                moved = true;
                assert_eq!(t.to, plat_addr(), "b sends to a");
                let m = SipMessage::parse(&t.bytes).expect("b sends SIP").message;
                self.trace.push((self.elapsed(), false, m.clone()));
                if !(self.drop)(&m) {
                    self.a.handle(self.now, cam_addr(), &m);
                }
            }
            let el = self.elapsed();
            while let Some(e) = self.a.event() {
                self.a_events.push((el, e));
            }
            while let Some(e) = self.b.event() {
                self.b_events.push((el, e));
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs until `until` of virtual time has passed since the start.
    fn run(&mut self, until: Duration) {
        self.pump();
        loop {
            let next = [self.a.next_timeout(), self.b.next_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|n| *n <= self.start + until) else {
                break;
            };
            let d = next.saturating_duration_since(self.now.mono);
            self.now = self.now.after(d);
            self.a.timeout(self.now);
            self.b.timeout(self.now);
            self.pump();
        }
        if self.start + until > self.now.mono {
            let d = self.start + until - self.now.mono;
            self.now = self.now.after(d);
        }
    }

    /// The messages that crossed, as `> INVITE` (from a) / `< 200 OK` (from b).
    fn summary(&self) -> Vec<String> {
        self.trace
            .iter()
            .map(|(_, from_a, m)| {
                let s = match m.method() {
                    Some(meth) => meth.to_string(),
                    None => format!(
                        "{} {}",
                        m.status().unwrap_or(0),
                        m.cseq().map(|c| c.method).unwrap_or_default()
                    ),
                };
                format!("{}{s}", if *from_a { "> " } else { "< " })
            })
            .collect()
    }

    fn count(&self, what: &str) -> usize {
        self.summary().iter().filter(|s| s.as_str() == what).count()
    }
}

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap(),
    }
}

fn uac(req: CallRequest) -> MediaUac {
    let mut cfg = UacConfig::new(PLAT, plat_addr(), cam_addr(), "192.0.2.1".parse().unwrap());
    cfg.seed = 11;
    MediaUac::new(cfg, req)
}

fn uas_cfg() -> UasConfig {
    let mut cfg = UasConfig::new(CAM, cam_addr(), "192.0.2.10".parse().unwrap());
    cfg.seed = 22;
    cfg.file_size = Some(62_224_924);
    cfg
}

type Call = World<MediaUac, MediaUas>;

fn call(req: CallRequest, cfg: UasConfig) -> Call {
    let now = t0();
    let mut w = World::new(now, uac(req), MediaUas::new(cfg));
    w.a.start(now);
    w
}

fn offer_of(events: &[(Duration, SessionEvent)]) -> Option<(&Negotiated, &[Finding])> {
    events.iter().find_map(|(_, e)| match e {
        SessionEvent::Offer {
            negotiated,
            findings,
        } => Some((negotiated.as_ref(), findings.as_slice())),
        _ => None,
    })
}

fn started(events: &[(Duration, SessionEvent)]) -> Option<(Duration, &Negotiated, &[Finding])> {
    events.iter().find_map(|(t, e)| match e {
        SessionEvent::Started {
            negotiated,
            findings,
        } => Some((*t, negotiated.as_ref(), findings.as_slice())),
        _ => None,
    })
}

fn ended(events: &[(Duration, SessionEvent)]) -> Option<(Duration, EndReason, Vec<&'static str>)> {
    events.iter().find_map(|(t, e)| match e {
        SessionEvent::Ended { reason, findings } => {
            Some((*t, *reason, findings.iter().map(|f| f.code).collect()))
        }
        _ => None,
    })
}

/// The audio session's events of a broadcast party.
fn sessions(events: &[(Duration, BroadcastEvent)]) -> Vec<(Duration, SessionEvent)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            BroadcastEvent::Session(s) => Some((*t, s.as_ref().clone())),
            _ => None,
        })
        .collect()
}

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

/// Runs the INVITE up to the answer, accepting on `port`.
fn establish(req: CallRequest, cfg: UasConfig, port: u16) -> Call {
    let mut w = call(req, cfg);
    w.run(Duration::from_millis(1));
    assert!(offer_of(&w.b_events).is_some(), "{:?}", w.b_events);
    let now = w.now;
    w.b.accept(now, port).unwrap();
    w.run(Duration::from_millis(2));
    w
}

#[test]
fn live_over_udp_from_invite_to_bye() {
    let mut w = establish(CallRequest::live(CAM, 36000, None), uas_cfg(), 9712);
    let (_, offer_findings) = offer_of(&w.b_events).unwrap();
    assert!(offer_findings.is_empty(), "{offer_findings:?}");
    let (_, plat, f) = started(&w.a_events).expect("platform started");
    assert!(f.is_empty(), "{f:?}");
    let (_, cam, _) = started(&w.b_events).expect("camera started");
    assert_eq!(plat.ssrc, cam.ssrc);
    assert_eq!(plat.ssrc.is_history(), Some(false));
    assert_eq!(
        plat.ssrc.0 / 10_000 % 100_000,
        20000,
        "domain digits of the platform ID"
    );
    let (p, c) = (&plat.media[0], &cam.media[0]);
    assert_eq!(
        (p.transport, c.transport),
        (MediaTransport::Udp, MediaTransport::Udp)
    );
    assert!(p.receives() && !p.sends() && c.sends() && !c.receives());
    assert_eq!(p.local, c.remote);
    assert_eq!(c.local, p.remote);
    assert_eq!(c.local, "192.0.2.10:9712".parse().unwrap());
    assert_eq!((p.payload_type, p.encoding.as_str()), (96, "PS"));
    assert_eq!(p.kind, MediaKind::Video);

    let now = w.now;
    w.a.hangup(now);
    w.run(Duration::from_millis(3));
    assert_eq!(
        w.summary(),
        [
            "> INVITE",
            "< 100 INVITE",
            "< 200 INVITE",
            "> ACK",
            "> BYE",
            "< 200 BYE"
        ]
    );
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::ByeSent);
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::ByeReceived);
    assert!(w.a_events.iter().any(|(_, e)| matches!(
        e,
        SessionEvent::ByeAnswered { status: Some(200), findings } if findings.is_empty()
    )));
    assert!(w.a.is_finished() && w.b.is_finished());
}

#[test]
fn the_messages_have_the_spec_shape() {
    let w = establish(
        CallRequest::live(CAM, 36000, Some(Setup::Passive)),
        uas_cfg(),
        9,
    );
    let invite = &w.trace[0].2;
    assert_eq!(
        invite.uri(),
        Some("sip:34020000001320000001@192.0.2.10:5060")
    );
    assert_eq!(invite.headers.get("Content-Type"), Some("application/sdp"));
    let subject = invite.headers.get("Subject").unwrap();
    let y = plat_ssrc(&w);
    assert_eq!(subject, format!("{CAM}:{y},{PLAT}:0"));
    assert!(invite.headers.get("Contact").is_some());
    let offer = String::from_utf8(invite.body.clone()).unwrap();
    assert_eq!(
        offer,
        format!(
            "v=0\r\no={PLAT} 0 0 IN IP4 192.0.2.1\r\ns=Play\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=video 36000 TCP/RTP/AVP 96 98 97\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\n\
a=rtpmap:97 MPEG4/90000\r\na=setup:passive\r\ny={y}\r\n"
        )
    );
    let ok = &w.trace[2].2;
    assert_eq!(ok.status(), Some(200));
    assert!(ok.headers.get("To").unwrap().contains(";tag="));
    assert!(ok.headers.get("Contact").is_some());
    let answer = String::from_utf8(ok.body.clone()).unwrap();
    assert_eq!(
        answer,
        format!(
            "v=0\r\no={CAM} 0 0 IN IP4 192.0.2.10\r\ns=Play\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=video 9 TCP/RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\na=setup:active\r\n\
a=connection:new\r\ny={y}\r\nf=v/2/2/25/1/512a///\r\n"
        )
    );
    let ack = &w.trace[3].2;
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(ack.uri(), Some("sip:34020000001320000001@192.0.2.10:5060"));
    assert_eq!(ack.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    assert_eq!(ack.headers.get("To"), ok.headers.get("To"));
}

fn plat_ssrc(w: &Call) -> String {
    w.a.offer().unwrap().ssrc.unwrap().to_string()
}

#[test]
fn tcp_passive_and_active_roles_mirror() {
    for (offer, plat_t, cam_t) in [
        (
            Setup::Passive,
            MediaTransport::TcpPassive,
            MediaTransport::TcpActive,
        ),
        (
            Setup::Active,
            MediaTransport::TcpActive,
            MediaTransport::TcpPassive,
        ),
    ] {
        let w = establish(CallRequest::live(CAM, 38000, Some(offer)), uas_cfg(), 9704);
        let (_, p, f) = started(&w.a_events).unwrap();
        assert!(f.is_empty(), "{f:?}");
        let (_, c, _) = started(&w.b_events).unwrap();
        assert_eq!(p.media[0].transport, plat_t);
        assert_eq!(c.media[0].transport, cam_t);
        // Whoever connects goes to the other side's announced port.
        assert_eq!(p.media[0].remote.port(), 9704);
        assert_eq!(c.media[0].remote.port(), 38000);
    }
}

#[test]
fn playback_with_play_pause_scale_seek_and_teardown() {
    let req = CallRequest::playback(CAM, 36000, None, 1_697_264_152, 1_697_266_715);
    let mut w = establish(req, uas_cfg(), 15060);
    let (n, offer_findings) = offer_of(&w.b_events).unwrap();
    assert!(offer_findings.is_empty(), "{offer_findings:?}");
    assert_eq!(n.kind, SessionKind::Playback);
    assert_eq!(n.time_range(), Some((1_697_264_152, 1_697_266_715)));
    assert_eq!(n.offer.uri.as_deref(), Some("34020000001320000001:0"));
    let (_, p, f) = started(&w.a_events).unwrap();
    assert!(f.is_empty(), "{f:?}");
    assert_eq!(p.ssrc.is_history(), Some(true));
    assert_eq!(p.file_size(), Some(62_224_924));

    let now = w.now;
    w.a.play(now, Some(2.0), None).unwrap();
    w.a.pause(now).unwrap();
    w.a.play(now, None, Some(Range::RESUME)).unwrap();
    w.a.play(now, None, Some(Range::from_seconds(100.0)))
        .unwrap();
    w.a.play(now, Some(0.5), None).unwrap();
    w.a.teardown(now).unwrap();
    w.run(Duration::from_millis(5));

    let controls: Vec<_> = w
        .b_events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Control { request, findings } => {
                assert!(findings.is_empty(), "{findings:?}");
                Some(request.clone())
            }
            _ => None,
        })
        .collect();
    let methods: Vec<_> = controls.iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        methods,
        [
            Method::Play,
            Method::Pause,
            Method::Play,
            Method::Play,
            Method::Play,
            Method::Teardown
        ]
    );
    assert_eq!(controls[0].scale, Some(2.0));
    assert_eq!(controls[2].range, Some(Range::RESUME));
    assert_eq!(
        controls[3].range.as_ref().unwrap().start_seconds(),
        Some(100.0)
    );
    assert_eq!(controls[4].scale, Some(0.5));
    let cseqs: Vec<_> = controls.iter().map(|r| r.cseq.unwrap()).collect();
    assert_eq!(cseqs, [1, 2, 3, 4, 5, 6]);
    let answered: Vec<_> = w
        .a_events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::ControlAnswered {
                status,
                response,
                findings,
                request,
            } => {
                assert!(findings.is_empty(), "{findings:?}");
                assert_eq!(response.as_ref().unwrap().cseq, request.cseq);
                *status
            }
            _ => None,
        })
        .collect();
    assert_eq!(answered, [200; 6]);
    let info = w
        .trace
        .iter()
        .find(|(_, _, m)| m.method() == Some("INFO"))
        .unwrap();
    assert_eq!(
        info.2.headers.get("Content-Type"),
        Some("Application/MANSRTSP")
    );
    assert_eq!(info.2.body, b"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: 2.0\r\n");
}

#[test]
fn download_ends_with_media_status_121_and_bye() {
    let req = CallRequest::download(CAM, 36000, None, 1_697_955_233, 1_697_958_114, Some(8));
    let mut w = establish(req, uas_cfg(), 15060);
    let (n, _) = offer_of(&w.b_events).unwrap();
    assert_eq!(n.kind, SessionKind::Download);
    assert_eq!(n.download_speed(), Some(8));
    let now = w.now;
    assert!(w.b.end_of_file(now));
    w.run(Duration::from_millis(5));
    let status = w
        .a_events
        .iter()
        .find_map(|(_, e)| match e {
            SessionEvent::MediaStatus {
                notify_type,
                findings,
            } => Some((*notify_type, findings.clone())),
            _ => None,
        })
        .expect("MediaStatus");
    assert_eq!(status.0, Some(121));
    assert!(status.1.is_empty(), "{:?}", status.1);
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::EndOfFile);
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::ByeReceived);
    assert!(w
        .b_events
        .iter()
        .any(|(_, e)| matches!(e, SessionEvent::MediaStatusAnswered { status: Some(200) })));
    let summary = w.summary();
    assert_eq!(
        summary[4..],
        ["< MESSAGE", "> 200 MESSAGE", "> BYE", "< 200 BYE"]
    );
    let msg = &w.trace[4].2;
    assert_eq!(
        msg.headers.get("Content-Type"),
        Some("Application/MANSCDP+xml")
    );
    let body = String::from_utf8_lossy(&msg.body);
    assert!(body.contains("<CmdType>MediaStatus</CmdType>"), "{body}");
    assert!(body.contains("<NotifyType>121</NotifyType>"), "{body}");
    assert!(body.contains("encoding=\"GB2312\""), "{body}");
    // In the dialog: the camera's tag in From, the platform's in To.
    assert_eq!(
        super::dialog::tag_of(msg.headers.get("To")),
        super::dialog::tag_of(w.trace[0].2.headers.get("From"))
    );
}

#[test]
fn talk_is_sendrecv_audio_on_both_sides() {
    let w = establish(CallRequest::talk(CAM, 38000, None), uas_cfg(), 9712);
    let (n, f) = offer_of(&w.b_events).unwrap();
    assert!(f.is_empty(), "{f:?}");
    assert_eq!(n.kind, SessionKind::Talk);
    let (_, p, f) = started(&w.a_events).unwrap();
    assert!(f.is_empty(), "{f:?}");
    let (_, c, _) = started(&w.b_events).unwrap();
    for m in [&p.media[0], &c.media[0]] {
        assert_eq!(m.kind, MediaKind::Audio);
        assert_eq!(m.direction, Direction::SendRecv);
        assert_eq!((m.payload_type, m.encoding.as_str()), (8, "PCMA"));
    }
    let offer = String::from_utf8(w.trace[0].2.body.clone()).unwrap();
    assert!(
        offer.contains("s=Talk\r\n") && offer.contains("f=v/////a/1/8/1\r\n"),
        "{offer}"
    );
}

#[test]
fn camera_hangs_up() {
    let mut w = establish(CallRequest::live(CAM, 36000, None), uas_cfg(), 9712);
    let now = w.now;
    w.b.trigger(now, "bye").unwrap();
    w.run(Duration::from_millis(5));
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::ByeSent);
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::ByeReceived);
    assert_eq!(w.summary()[4..], ["< BYE", "> 200 BYE"]);
    assert!(w.b_events.iter().any(|(_, e)| matches!(
        e,
        SessionEvent::ByeAnswered {
            status: Some(200),
            ..
        }
    )));
    // The camera's BYE is in the dialog: its CSeq space, the platform's tag in To.
    let bye = &w.trace[4].2;
    assert_eq!(bye.uri(), Some("sip:34020000002000000001@192.0.2.1:5060"));
}

#[test]
fn broadcast_notify_response_and_audio_invite_from_the_device() {
    let now = t0();
    let plat_ip = "192.0.2.1".parse().unwrap();
    let cam_ip = "192.0.2.10".parse().unwrap();
    let source = BroadcastSource::new(BroadcastSourceConfig::new(
        PLAT,
        SOURCE,
        CAM,
        CAM,
        plat_addr(),
        cam_addr(),
        plat_ip,
    ));
    let target = BroadcastTarget::new(BroadcastTargetConfig::new(
        CAM,
        PLAT,
        cam_addr(),
        plat_addr(),
        cam_ip,
    ));
    let mut w = World::new(now, source, target);
    w.a.start(now);
    w.run(Duration::from_millis(1));
    let notified = w.b_events.iter().find_map(|(_, e)| match e {
        BroadcastEvent::Notified {
            source_id,
            target_id,
            findings,
        } => Some((source_id.clone(), target_id.clone(), findings.clone())),
        _ => None,
    });
    let (source_id, target_id, findings) = notified.expect("notified");
    assert_eq!(source_id.as_deref(), Some(SOURCE));
    assert_eq!(target_id.as_deref(), Some(CAM));
    assert!(findings.is_empty(), "{findings:?}");
    assert!(w.a_events.iter().any(|(_, e)| matches!(
        e,
        BroadcastEvent::Response { result: Some(ResultType::Ok), findings } if findings.is_empty()
    )));
    let now = w.now;
    w.b.start_audio(now, 9712, None);
    w.run(Duration::from_millis(2));
    let (n, f) = offer_of(&sessions(&w.a_events))
        .map(|(n, f)| (n.clone(), f.to_vec()))
        .expect("the device's INVITE reached the platform");
    assert!(f.is_empty(), "{f:?}");
    assert_eq!(n.media[0].kind, MediaKind::Audio);
    let now = w.now;
    w.a.accept(now, 40000).unwrap();
    w.run(Duration::from_millis(3));
    let dev_events = sessions(&w.b_events);
    let (_, dev, f) = started(&dev_events).expect("device started");
    assert!(f.is_empty(), "{f:?}");
    assert!(dev.media[0].receives() && !dev.media[0].sends());
    assert_eq!(dev.media[0].remote, "192.0.2.1:40000".parse().unwrap());
    assert_eq!(dev.media[0].encoding, "PCMA");
    let plat_events = sessions(&w.a_events);
    let (_, plat, _) = started(&plat_events).expect("platform started");
    assert!(plat.media[0].sends() && !plat.media[0].receives());
    // 语音广播 17: the platform ends it.
    let now = w.now;
    w.a.hangup(now);
    w.run(Duration::from_millis(4));
    assert_eq!(
        ended(&sessions(&w.b_events)).unwrap().1,
        EndReason::ByeReceived
    );
    assert_eq!(
        w.summary(),
        [
            "> MESSAGE",
            "< 200 MESSAGE",
            "< MESSAGE",
            "> 200 MESSAGE",
            "< INVITE",
            "> 100 INVITE",
            "> 200 INVITE",
            "< ACK",
            "> BYE",
            "< 200 BYE"
        ]
    );
    let invite = &w.trace[4].2;
    assert_eq!(
        invite.uri(),
        Some("sip:34020000001370000001@192.0.2.1:5060")
    );
    let body = String::from_utf8_lossy(&invite.body);
    assert!(
        body.contains("m=audio 9712 RTP/AVP 8 96\r\na=recvonly"),
        "{body}"
    );
}

#[test]
fn the_200_is_retransmitted_until_the_ack() {
    // Drop the first ACK: the camera repeats its 200 after T1, the platform
    // acknowledges again, and the session starts then.
    let mut w = call(CallRequest::live(CAM, 36000, None), uas_cfg());
    let mut acks = 0;
    w.drop = Box::new(move |m| {
        if m.method() == Some("ACK") {
            acks += 1;
            return acks == 1;
        }
        false
    });
    w.run(Duration::from_millis(1));
    let now = w.now;
    w.b.accept(now, 9712).unwrap();
    w.run(Duration::from_secs(10));
    assert_eq!(w.count("< 200 INVITE"), 2);
    assert_eq!(w.count("> ACK"), 2);
    let (t, _, _) = started(&w.b_events).unwrap();
    assert_eq!(t, Duration::from_millis(500) + Duration::from_millis(1));
}

#[test]
fn no_ack_ends_the_session_after_64_t1() {
    let mut w = call(CallRequest::live(CAM, 36000, None), uas_cfg());
    w.drop = Box::new(|m| m.method() == Some("ACK"));
    w.run(Duration::from_millis(1));
    let now = w.now;
    w.b.accept(now, 9712).unwrap();
    w.run(Duration::from_secs(40));
    // T1, 2T1, 4T1, then every T2 up to 64*T1: 0.5 1.5 3.5 7.5 11.5 ... 31.5.
    assert_eq!(w.count("< 200 INVITE"), 11);
    assert!(started(&w.b_events).is_none());
    let (t, reason, findings) = ended(&w.b_events).unwrap();
    assert_eq!(reason, EndReason::NoAck);
    assert_eq!(findings, ["gb.session.no-ack"]);
    assert_eq!(t, Duration::from_secs(32) + Duration::from_millis(1));
    assert_eq!(w.count("< BYE"), 1);
}

#[test]
fn fault_no_ack_wait_starts_before_the_ack() {
    let mut cfg = uas_cfg();
    cfg.faults.no_ack_wait = true;
    let mut w = call(CallRequest::live(CAM, 36000, None), cfg);
    w.drop = Box::new(|m| m.method() == Some("ACK"));
    w.run(Duration::from_millis(1));
    let now = w.now;
    w.b.accept(now, 9712).unwrap();
    w.run(Duration::from_secs(40));
    // Streaming started with the 200, no ACK ever arrived, and the 200 was never
    // repeated: the two things the clean camera does differently above.
    assert!(started(&w.b_events).is_some());
    assert_eq!(w.count("< 200 INVITE"), 1);
    assert!(ended(&w.b_events).is_none());
}

#[test]
fn fault_wrong_ssrc_and_answer_without_y_are_findings_of_the_platform() {
    let cases: [(&str, &[&str]); 2] = [
        ("wrong-ssrc", &["gb.session.ssrc-mismatch"]),
        // The SDP reader's warning, then the session's error.
        (
            "answer-without-y",
            &["gb.sdp.y-missing", "gb.session.answer-without-y"],
        ),
    ];
    for (fault, expected) in cases {
        let mut cfg = uas_cfg();
        assert!(cfg.faults.set(fault));
        let w = establish(CallRequest::live(CAM, 36000, None), cfg, 9712);
        let (_, p, f) = started(&w.a_events).expect(fault);
        assert_eq!(codes(f), expected, "{fault}");
        // The stream is expected with what the camera says it sends.
        let (_, c, _) = started(&w.b_events).unwrap();
        assert_eq!(p.ssrc, c.ssrc, "{fault}");
        if fault == "answer-without-y" {
            let body = String::from_utf8_lossy(&w.trace[2].2.body).to_string();
            assert!(!body.contains("y="), "{body}");
        }
    }
}

#[test]
fn fault_wrong_setup_makes_the_platform_ack_and_bye() {
    let mut cfg = uas_cfg();
    cfg.faults.wrong_setup = true;
    let w = establish(
        CallRequest::live(CAM, 36000, Some(Setup::Passive)),
        cfg,
        9724,
    );
    let (_, reason, findings) = ended(&w.a_events).unwrap();
    assert_eq!(reason, EndReason::AnswerUnusable);
    assert_eq!(findings, ["gb.session.setup-conflict"]);
    assert!(started(&w.a_events).is_none());
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::ByeReceived);
    assert_eq!(w.summary()[3..], ["> ACK", "> BYE", "< 200 BYE"]);
}

#[test]
fn fault_ignore_bye_leaves_the_bye_unanswered() {
    let mut cfg = uas_cfg();
    cfg.faults.ignore_bye = true;
    let mut w = establish(CallRequest::live(CAM, 36000, None), cfg, 9712);
    let now = w.now;
    w.a.hangup(now);
    w.run(Duration::from_secs(40));
    let bye = w.a_events.iter().find_map(|(t, e)| match e {
        SessionEvent::ByeAnswered { status, findings } => Some((*t, *status, codes(findings))),
        _ => None,
    });
    let (t, status, findings) = bye.unwrap();
    assert_eq!(status, None);
    assert_eq!(findings, ["gb.session.bye-unanswered"]);
    assert!(t >= Duration::from_secs(32));
    assert!(w.count("> BYE") > 5, "BYE is retransmitted over UDP");
    assert!(ended(&w.b_events).is_none(), "the camera keeps streaming");
}

#[test]
fn fault_no_media_status_leaves_the_download_open_until_the_media_timeout() {
    let mut cfg = uas_cfg();
    cfg.faults.no_media_status = true;
    let req = CallRequest::download(CAM, 36000, None, 1, 2, None);
    let mut w = establish(req, cfg, 15060);
    let now = w.now;
    assert!(!w.b.end_of_file(now));
    w.run(Duration::from_secs(5));
    assert!(!w
        .a_events
        .iter()
        .any(|(_, e)| matches!(e, SessionEvent::MediaStatus { .. })));
    assert!(w.a.is_confirmed());
    // The receiver's media-timeout hook ends it from the platform's side.
    let now = w.now;
    w.a.media_timeout(now);
    w.run(Duration::from_secs(6));
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::MediaTimeout);
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::ByeReceived);
}

#[test]
fn silent_camera_times_out_the_invite() {
    let mut w = call(CallRequest::live(CAM, 36000, None), uas_cfg());
    w.drop = Box::new(|m| m.status().is_some());
    w.run(Duration::from_secs(40));
    // Timer A doubles without cap: 0.5 1.5 3.5 7.5 15.5 31.5, then Timer B at 32 s.
    assert_eq!(w.count("> INVITE"), 7);
    let (t, reason, _) = ended(&w.a_events).unwrap();
    assert_eq!((t, reason), (Duration::from_secs(32), EndReason::TimedOut));
}

#[test]
fn rejected_and_cancelled_invites() {
    let mut w = call(CallRequest::live(CAM, 36000, None), uas_cfg());
    w.run(Duration::from_millis(1));
    let now = w.now;
    w.b.reject(now, 486).unwrap();
    w.run(Duration::from_millis(2));
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::Rejected(486));
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::Rejected(486));
    assert_eq!(w.summary()[2..], ["< 486 INVITE", "> ACK"]);
    let ack = &w.trace[3].2;
    assert_eq!(
        super::dialog::branch_of(ack),
        super::dialog::branch_of(&w.trace[0].2),
        "the ACK of a non-2xx answer is in the INVITE's transaction"
    );

    let mut w = call(CallRequest::live(CAM, 36000, None), uas_cfg());
    w.run(Duration::from_millis(1));
    let now = w.now;
    w.a.hangup(now);
    w.run(Duration::from_millis(2));
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::Cancelled);
    assert_eq!(ended(&w.b_events).unwrap().1, EndReason::Cancelled);
    assert_eq!(
        w.summary()[2..],
        ["> CANCEL", "< 200 CANCEL", "< 487 INVITE", "> ACK"]
    );
}

#[test]
fn unusable_offer_is_refused_488() {
    let mut req = CallRequest::live(CAM, 36000, None);
    req.media[0].formats = vec!["98".into()];
    req.media[0].rtpmaps.retain(|r| !r.is_ps());
    let mut w = call(req, uas_cfg());
    w.run(Duration::from_millis(1));
    assert!(offer_of(&w.b_events).is_none());
    let (_, reason, findings) = ended(&w.b_events).unwrap();
    assert_eq!(reason, EndReason::Rejected(488));
    assert!(
        findings.contains(&"gb.session.offer-unusable"),
        "{findings:?}"
    );
    assert_eq!(ended(&w.a_events).unwrap().1, EndReason::Rejected(488));
}

#[test]
fn info_in_a_live_session_is_refused() {
    let mut w = establish(CallRequest::live(CAM, 36000, None), uas_cfg(), 9712);
    let now = w.now;
    w.a.pause(now).unwrap();
    w.run(Duration::from_millis(5));
    let answered = w.a_events.iter().find_map(|(_, e)| match e {
        SessionEvent::ControlAnswered {
            status, findings, ..
        } => Some((*status, codes(findings))),
        _ => None,
    });
    assert_eq!(answered, Some((Some(488), vec!["gb.session.info-failed"])));
    assert!(w.b_events.iter().any(|(_, e)| matches!(
        e,
        SessionEvent::Finding(f) if f.code == "gb.session.info-outside-playback"
    )));
}

#[test]
fn a_stray_bye_gets_481_and_a_retransmitted_bye_the_same_200() {
    let mut w = establish(CallRequest::live(CAM, 36000, None), uas_cfg(), 9712);
    // A BYE with the right Call-ID but a wrong From tag.
    let mut bye = w
        .trace
        .iter()
        .find(|(_, _, m)| m.method() == Some("ACK"))
        .unwrap()
        .2
        .clone();
    if let crate::proto::sip::StartLine::Request { method, .. } = &mut bye.start {
        *method = "BYE".into();
    }
    bye.headers.set("CSeq", "99999 BYE");
    let from = bye.headers.get("From").unwrap().replace(";tag=", ";tag=x");
    bye.headers.set("From", from);
    let now = w.now;
    w.b.handle_message(now, plat_addr(), &bye);
    w.pump();
    assert!(w.b_events.iter().any(|(_, e)| matches!(
        e,
        SessionEvent::Finding(f) if f.code == "gb.session.dialog-mismatch"
    )));
    assert!(ended(&w.b_events).is_none());
    let t = w.b.poll_transmit();
    assert!(t.is_none());
    // The real BYE, then its retransmission: one Ended, two identical 200s.
    let now = w.now;
    w.a.hangup(now);
    w.pump();
    let real = w
        .trace
        .iter()
        .rev()
        .find(|(_, _, m)| m.method() == Some("BYE"))
        .unwrap()
        .2
        .clone();
    w.b.handle_message(now, plat_addr(), &real);
    let again = w.b.poll_transmit().unwrap();
    let first = w
        .trace
        .iter()
        .rev()
        .find(|(_, _, m)| m.status() == Some(200) && m.cseq().unwrap().method == "BYE")
        .unwrap()
        .2
        .to_bytes();
    assert_eq!(again.bytes, first);
    w.pump();
    let ends = w
        .b_events
        .iter()
        .filter(|(_, e)| matches!(e, SessionEvent::Ended { .. }))
        .count();
    assert_eq!(ends, 1);
}

#[test]
fn spec_tcp_passive_invite_is_answered_like_the_spec() {
    // 媒体传输方式 TCP被动: the INVITE as printed (placeholders filled in).
    let body = "v=0\r\no=34020000002000000001 0 0 IN IP4 192.168.0.107\r\ns=Play\r\n\
c=IN IP4 192.168.0.107\r\nt=0 0\r\nm=video 36000 TCP/RTP/AVP 96 98 97\r\na=recvonly\r\n\
a=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\na=setup:passive\r\n\
y=0100000001\r\n";
    // The printed Content-Length (211) does not match the printed body; use the real one.
    let raw = format!(
        "INVITE sip:34020000001320000001@192.168.0.111:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.0.107:5060;rport;branch=z9hG4bK18480\r\n\
Max-Forwards: 70\r\n\
From: sip:34020000002000000001@192.168.0.107:5060;tag=180\r\n\
To: sip:34020000001320000001@192.168.0.111:5060\r\n\
Contact: <sip:34020000002000000001@192.168.0.107:5060>\r\n\
Call-ID: 18480\r\n\
CSeq: 18480 INVITE\r\n\
Allow: INVITE, ACK, BYE, CANCEL, UPDATE, PRACK\r\n\
Supported: 100rel\r\n\
Subject: 34020000001320000001:0100000001,34020000002000000001:0\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   {}\r\n\r\n{body}",
        body.len()
    );
    let p = SipMessage::parse(raw.as_bytes()).unwrap();
    let mut cfg = UasConfig::new(
        CAM,
        "192.168.0.111:5060".parse().unwrap(),
        "192.168.0.111".parse().unwrap(),
    );
    cfg.info = Some("VCam Live Video".into());
    cfg.media_params = crate::proto::sdp::MediaParams::parse("v/0/0/0/0/0a/0/0/0");
    let mut uas = MediaUas::new(cfg);
    let now = t0();
    let from = "192.168.0.107:5060".parse().unwrap();
    uas.handle_message(now, from, &p.message);
    let trying = SipMessage::parse(&uas.poll_transmit().unwrap().bytes)
        .unwrap()
        .message;
    assert_eq!(trying.status(), Some(100));
    assert_eq!(trying.headers.get("To"), p.message.headers.get("To"));
    match uas.poll_event() {
        Some(SessionEvent::Offer {
            negotiated,
            findings,
        }) => {
            assert!(findings.is_empty(), "{findings:?}");
            assert_eq!(negotiated.media[0].transport, MediaTransport::TcpActive);
            assert_eq!(
                negotiated.media[0].remote,
                "192.168.0.107:36000".parse().unwrap()
            );
        }
        e => panic!("{e:?}"),
    }
    uas.accept(now, 9724).unwrap();
    let ok = SipMessage::parse(&uas.poll_transmit().unwrap().bytes).unwrap();
    assert!(ok.findings.is_empty(), "{:?}", ok.findings);
    assert_eq!(
        String::from_utf8(ok.message.body).unwrap(),
        "v=0\r\no=34020000001320000001 0 0 IN IP4 192.168.0.111\r\ns=Play\r\ni=VCam Live Video\r\n\
c=IN IP4 192.168.0.111\r\nt=0 0\r\nm=video 9724 TCP/RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n\
a=setup:active\r\na=connection:new\r\ny=0100000001\r\nf=v/0/0/0/0/0a/0/0/0\r\n"
    );
    // The dialog's requests go to the platform's Contact, with its From tag in To.
    uas.hangup(now);
    let bye = SipMessage::parse(&uas.poll_transmit().unwrap().bytes)
        .unwrap()
        .message;
    assert_eq!(
        bye.uri(),
        Some("sip:34020000002000000001@192.168.0.107:5060")
    );
    assert_eq!(
        bye.headers.get("To"),
        Some("sip:34020000002000000001@192.168.0.107:5060;tag=180")
    );
}

#[test]
fn fault_names_round_trip() {
    for n in UasFaults::NAMES {
        let mut f = UasFaults::default();
        assert!(f.set(n), "{n}");
        assert_ne!(f, UasFaults::default());
    }
    assert!(!UasFaults::default().set("nonsense"));
}
