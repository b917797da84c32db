//! Runs one GB/T 28181 media session end to end: the sans-IO session machine
//! ([`MediaUas`] or [`MediaUac`]) on a SIP [`Endpoint`] through
//! [`crate::transport::driver`], and the PS/RTP media it negotiates through
//! [`crate::media`].
//!
//! - [`answer`] is the camera: it waits for an INVITE, opens the sending socket the
//!   offer calls for (UDP, or a TCP listener when the platform asked for
//!   `a=setup:active`), answers with its port, streams once the ACK arrives, stops on
//!   BYE, and at the end of a Playback/Download file sends MediaStatus 121.
//! - [`call`] is the platform: it opens the receiving socket (UDP, or a TCP listener
//!   for `a=setup:passive`), sends the INVITE, receives once answered (connecting
//!   first for `a=setup:active`), and hangs up when the receiver stops: on its frame
//!   or time limit with BYE, on a media timeout through the machine's hook.
//!
//! The driver carries the PS video media of a session, or its G.711 audio (PCMA or
//! PCMU: talk, broadcast): the sending side streams [`MediaPlan::audio`]'s tone, the
//! receiving side checks what arrives, and a sendrecv talk does both on the one
//! negotiated port or connection. Audio carried as PS (broadcast's `96`) is not
//! streamed. MANSRTSP on the answering side steers the video sender: PAUSE stops it,
//! PLAY resumes it, `Scale` sets its speed, `Range: npt=<s>-` seeks, TEARDOWN stops it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::media::{
    AudioReceiveReport, AudioReceiverConfig, AudioSendReport, AudioSenderConfig, AudioSocket,
    Cancel, Link, MediaReceiver, MediaSender, MediaSource, PaceControl, ReceiveReport,
    ReceiverConfig, SendReport, SenderConfig, StopReason, Tone,
};
use crate::proto::g711::Law;
use crate::proto::gb28181::session::mansrtsp;
use crate::proto::gb28181::session::{
    CallRequest, EndReason, MediaTransport, MediaUac, MediaUas, Negotiated, NegotiatedMedia,
    SessionCommand, SessionEvent, UacConfig, UasConfig,
};
use crate::proto::ps::annexb::VideoCodec;
use crate::proto::sdp::{GbMedia, MediaKind, Setup};
use crate::proto::Now;
use crate::transport::clock::{Clock, SystemClock};
use crate::transport::driver::{self, Command, SipMachine};
use crate::transport::Endpoint;

crate::sip_machine!(MediaUas, SessionEvent, handle_message);
crate::sip_machine!(MediaUac, SessionEvent, handle_message);

/// What the driver asks of either session machine.
pub trait MediaSession: SipMachine<Event = SessionEvent> {
    /// Carry out what the media side says.
    fn apply(&mut self, now: Now, cmd: SessionCommand);
    /// Over, with nothing outstanding.
    fn finished(&self) -> bool;
}

impl MediaSession for MediaUas {
    fn apply(&mut self, now: Now, cmd: SessionCommand) {
        MediaUas::apply(self, now, cmd)
    }
    fn finished(&self) -> bool {
        self.is_finished()
    }
}

impl MediaSession for MediaUac {
    fn apply(&mut self, now: Now, cmd: SessionCommand) {
        MediaUac::apply(self, now, cmd)
    }
    fn finished(&self) -> bool {
        self.is_finished()
    }
}

/// How the media of a session is carried.
#[derive(Debug, Clone)]
pub struct MediaPlan {
    /// The IP media sockets bind to, announced in `c=`: a concrete address, not the
    /// wildcard.
    pub bind_ip: IpAddr,
    /// What the sending side streams; without it the sending side sends nothing.
    pub source: Option<Arc<MediaSource>>,
    /// Sender settings; the SSRC and payload type come from the negotiation.
    pub sender: SenderConfig,
    /// Receiver settings; the expected SSRC and payload type come from the
    /// negotiation.
    pub receiver: ReceiverConfig,
    /// How long connecting or binding a media socket may take.
    pub open_timeout: Duration,
    /// After the session ends, keep receiving this long for packets in flight.
    pub drain: Duration,
    /// After the session and its media end, wait this long at most for outstanding
    /// SIP transactions (the answer to our BYE).
    pub linger: Duration,
    /// Calling side: hang up when the receiver stops on its frame or time limit.
    pub hangup_when_received: bool,
    /// Answering side: when the receiver closes the TCP connection, wait this long
    /// for its BYE before ending the session from this side.
    pub peer_closed_grace: Duration,
    /// Give up on the whole session after this long.
    pub max_session: Duration,
    /// Sending side: stream Playback/Download sessions for this much media time
    /// (looping the source), a Download at `a=downloadspeed:N` N times faster;
    /// `None`: the sender's own settings.
    pub history: Option<Duration>,
    /// Sending side (a deliberate fault): after a BYE from the peer, keep
    /// streaming this long.
    pub stream_after_bye: Option<Duration>,
    /// How G.711 audio (talk, broadcast) is sent and checked.
    pub audio: AudioPlan,
    /// Steers the video sender from outside as well as by MANSRTSP (a driver that
    /// runs one session keeps a clone); `None`: each session gets its own.
    pub pace: Option<PaceControl>,
    /// End the session (BYE) when the received media stops for the receiver's
    /// `media_timeout`; `false` (a deliberate fault) leaves it up.
    pub end_on_media_timeout: bool,
}

/// The audio part of a [`MediaPlan`].
#[derive(Debug, Clone)]
pub struct AudioPlan {
    /// What the sending side sends; without it the sending side sends nothing.
    pub source: Option<Tone>,
    /// Sender settings; the SSRC, payload type and law come from the negotiation.
    pub sender: AudioSenderConfig,
    /// Receiver settings; the expected SSRC and payload type come from the
    /// negotiation.
    pub receiver: AudioReceiverConfig,
}

impl Default for AudioPlan {
    /// The default tone, sent and received with the defaults.
    fn default() -> Self {
        AudioPlan {
            source: Some(Tone::default()),
            sender: AudioSenderConfig::new(0),
            receiver: AudioReceiverConfig::new(0),
        }
    }
}

impl MediaPlan {
    /// Media on `bind_ip`, streaming `source` (when given) as `codec`, with the
    /// sender and receiver defaults.
    pub fn new(bind_ip: IpAddr, source: Option<Arc<MediaSource>>, codec: VideoCodec) -> Self {
        MediaPlan {
            bind_ip,
            source,
            sender: SenderConfig::new(0),
            receiver: ReceiverConfig::new(0, codec),
            open_timeout: Duration::from_secs(5),
            drain: Duration::from_millis(300),
            linger: Duration::from_secs(5),
            hangup_when_received: true,
            peer_closed_grace: Duration::from_secs(1),
            max_session: Duration::from_secs(120),
            history: None,
            stream_after_bye: None,
            audio: AudioPlan::default(),
            pace: None,
            end_on_media_timeout: true,
        }
    }
}

/// What happened in one session.
#[derive(Debug, Clone, Default)]
pub struct SessionReport {
    /// Every event of the session machine, in order.
    pub events: Vec<SessionEvent>,
    /// What was agreed.
    pub negotiated: Option<Negotiated>,
    /// The sender's report, when this side sent.
    pub sent: Option<SendReport>,
    /// The receiver's report, when this side received.
    pub received: Option<ReceiveReport>,
    /// The audio sender's report, when this side sent audio.
    pub audio_sent: Option<AudioSendReport>,
    /// The audio receiver's report, when this side received audio.
    pub audio_received: Option<AudioReceiveReport>,
    /// Media errors (sockets that would not open, streams that failed).
    pub errors: Vec<String>,
}

/// The PS video media this driver carries.
fn video(n: &Negotiated) -> Option<&NegotiatedMedia> {
    n.media
        .iter()
        .find(|m| m.kind == MediaKind::Video && m.encoding == "PS")
}

/// The G.711 audio media this driver carries, and its law.
fn audio(n: &Negotiated) -> Option<(&NegotiatedMedia, Law)> {
    n.media
        .iter()
        .filter(|m| m.kind == MediaKind::Audio)
        .find_map(|m| Law::from_encoding(&m.encoding).map(|law| (m, law)))
}

/// The media half of one session, run as a task by [`spawn_worker`]: it is fed the
/// session machine's events and answers with [`SessionCommand`]s. The standalone
/// [`drive`] and the peers that host several sessions ([`super::spawn_hosting`])
/// both use it.
pub struct Worker {
    /// Feed every event of the session machine here; closing it ends the worker.
    pub events: mpsc::UnboundedSender<SessionEvent>,
    /// The worker's report once the session and its media are over.
    pub task: JoinHandle<SessionReport>,
}

/// Start the media half of a session; `commands` carries what it asks of the
/// session machine.
pub fn spawn_worker(
    plan: MediaPlan,
    pending_receiver: Option<MediaReceiver>,
    commands: impl Fn(SessionCommand) + Send + 'static,
) -> Worker {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run_worker(plan, pending_receiver, rx, Box::new(commands)));
    Worker { events: tx, task }
}

struct Run {
    plan: MediaPlan,
    commands: Box<dyn Fn(SessionCommand) + Send>,
    report: SessionReport,
    pending_sender: Option<MediaSender>,
    pending_receiver: Option<MediaReceiver>,
    sender: Option<JoinHandle<Result<SendReport>>>,
    receiver: Option<JoinHandle<Result<ReceiveReport>>>,
    pending_audio: Option<AudioSocket>,
    audio_sender: Option<JoinHandle<Result<AudioSendReport>>>,
    audio_receiver: Option<JoinHandle<Result<AudioReceiveReport>>>,
    /// Steers the video sender (MANSRTSP PLAY/PAUSE/Scale/Range).
    pace: PaceControl,
    tx_cancel: Cancel,
    rx_cancel: Cancel,
    ended: bool,
    /// When to end the session after the peer closed the media connection.
    grace: Option<tokio::time::Instant>,
}

impl Run {
    fn command(&self, c: SessionCommand) {
        (self.commands)(c)
    }

    fn local(&self) -> SocketAddr {
        SocketAddr::new(self.plan.bind_ip, 0)
    }

    /// Opens what must exist before the answer: a UDP or listening socket; returns
    /// the port to announce (9, the discard port, when this side will connect:
    /// RFC 4145 §4 leaves the active side's port meaningless).
    async fn prepare(&mut self, m: &NegotiatedMedia) -> Result<u16> {
        let t = self.plan.open_timeout;
        if m.kind == MediaKind::Audio {
            // One socket for both directions (talk is sendrecv).
            let link = match m.transport {
                MediaTransport::TcpActive => return Ok(9),
                MediaTransport::Udp => Link::udp_to(self.local(), m.remote),
                MediaTransport::TcpPassive => Link::TcpPassive {
                    local: self.local(),
                },
            };
            let a = AudioSocket::open(link, t).await?;
            let port = a.local_addr().port();
            self.pending_audio = Some(a);
            return Ok(port);
        }
        if m.sends() && self.plan.source.is_some() {
            let link = match m.transport {
                MediaTransport::TcpActive => return Ok(9),
                _ => Link::for_negotiated(self.local(), m),
            };
            let s = MediaSender::open(link, t).await?;
            let port = s.local_addr().port();
            self.pending_sender = Some(s);
            return Ok(port);
        }
        if m.receives() {
            let link = match m.transport {
                MediaTransport::TcpActive => return Ok(9),
                _ => Link::for_negotiated(self.local(), m),
            };
            let r = MediaReceiver::open(link, t).await?;
            let port = r.local_addr().port();
            self.pending_receiver = Some(r);
            return Ok(port);
        }
        Ok(9)
    }

    /// The calling side's receiving socket for an offered media: a bound UDP port,
    /// a listening port for `a=setup:passive`, or port 9 for `a=setup:active`.
    async fn prepare_offer(&mut self, m: &GbMedia) -> Result<u16> {
        let local = self.local();
        let link = if m.is_tcp() {
            match MediaTransport::from_setup(m.setup.or(Some(Setup::Active))) {
                MediaTransport::TcpPassive => Link::TcpPassive { local },
                _ => return Ok(9),
            }
        } else {
            Link::udp(local)
        };
        if m.kind == MediaKind::Audio {
            let a = AudioSocket::open(link, self.plan.open_timeout).await?;
            let port = a.local_addr().port();
            self.pending_audio = Some(a);
            return Ok(port);
        }
        let r = MediaReceiver::open(link, self.plan.open_timeout).await?;
        let port = r.local_addr().port();
        self.pending_receiver = Some(r);
        Ok(port)
    }

    async fn start_media(&mut self, n: &Negotiated) {
        if video(n).is_none() {
            if let Some((m, law)) = audio(n) {
                let m = m.clone();
                self.start_audio(n, &m, law).await;
            }
            return;
        }
        let Some(m) = video(n).cloned() else { return };
        let t = self.plan.open_timeout;
        if m.sends() {
            if let Some(source) = self.plan.source.clone() {
                let sender = match self.pending_sender.take() {
                    Some(s) => Ok(s),
                    None => MediaSender::open(Link::for_negotiated(self.local(), &m), t).await,
                };
                match sender {
                    Ok(s) => {
                        let mut cfg = SenderConfig {
                            ssrc: n.ssrc.0,
                            payload_type: m.payload_type,
                            ..self.plan.sender.clone()
                        };
                        if let (Some(d), true) = (self.plan.history, n.kind.is_history()) {
                            cfg.looping = true;
                            cfg.max_duration = Some(d);
                            if let Some(speed) = n.download_speed().filter(|s| *s > 1) {
                                cfg.time_scale /= f64::from(speed);
                            }
                        }
                        let (cancel, pace) = (self.tx_cancel.clone(), self.pace.clone());
                        self.sender = Some(tokio::spawn(async move {
                            s.run_paced(&source, &cfg, &cancel, Some(&pace)).await
                        }));
                    }
                    Err(e) => self.media_error(format!("opening the media sender: {e:#}")),
                }
            }
        }
        if m.receives() {
            let receiver = match self.pending_receiver.take() {
                Some(r) => Ok(r),
                None => MediaReceiver::open(Link::for_negotiated(self.local(), &m), t).await,
            };
            match receiver {
                Ok(r) => {
                    let mut cfg = self.plan.receiver.clone();
                    cfg.validator.expected_ssrc = n.ssrc.0;
                    cfg.validator.expected_payload_type = Some(m.payload_type);
                    let cancel = self.rx_cancel.clone();
                    self.receiver = Some(tokio::spawn(async move { r.run(&cfg, &cancel).await }));
                }
                Err(e) => self.media_error(format!("opening the media receiver: {e:#}")),
            }
        }
    }

    /// Starts the audio sender (this side sends and has a tone) and receiver (this
    /// side receives) on the one socket of the negotiated audio.
    async fn start_audio(&mut self, n: &Negotiated, m: &NegotiatedMedia, law: Law) {
        let send = m.sends() && self.plan.audio.source.is_some();
        if !send && !m.receives() {
            return;
        }
        let socket = match self.pending_audio.take() {
            Some(mut a) => {
                if m.transport == MediaTransport::Udp {
                    a.set_remote(m.remote);
                }
                Ok(a)
            }
            None => {
                let link = match m.transport {
                    MediaTransport::Udp => Link::udp_to(self.local(), m.remote),
                    _ => Link::for_negotiated(self.local(), m),
                };
                AudioSocket::open(link, self.plan.open_timeout).await
            }
        };
        let socket = match socket {
            Ok(a) => a,
            Err(e) => return self.media_error(format!("opening the audio socket: {e:#}")),
        };
        let plan = &self.plan.audio;
        let tx = plan.source.filter(|_| send).map(|tone| {
            let cfg = AudioSenderConfig {
                ssrc: n.ssrc.0,
                payload_type: m.payload_type,
                law,
                ..plan.sender.clone()
            };
            (tone, cfg)
        });
        let rx = m.receives().then(|| {
            let mut cfg = plan.receiver.clone();
            cfg.check.expected_ssrc = n.ssrc.0;
            cfg.check.expected_payload_type = Some(m.payload_type);
            cfg
        });
        let tasks = socket.spawn(tx, rx, &self.tx_cancel, &self.rx_cancel);
        self.audio_sender = tasks.sender;
        self.audio_receiver = tasks.receiver;
    }

    /// 录像回放: a MANSRTSP request steers the running video sender.
    fn control(&mut self, request: &mansrtsp::Request) {
        match request.method {
            // The dialog ends with the BYE that follows.
            mansrtsp::Method::Teardown => self.tx_cancel.cancel(),
            mansrtsp::Method::Pause => self.pace.pause(),
            mansrtsp::Method::Play => {
                if let Some(scale) = request.scale {
                    if !self.pace.set_scale(scale) {
                        self.report.errors.push(format!(
                            "Scale {scale} is not carried (only forward speeds)"
                        ));
                    }
                }
                if let Some(secs) = request.range.as_ref().and_then(|r| r.start_seconds()) {
                    if secs >= 0.0 {
                        self.pace.seek(Duration::from_secs_f64(secs));
                    }
                }
                self.pace.play();
            }
            mansrtsp::Method::Other(_) => {}
        }
    }

    fn on_audio_sent(&mut self, r: Result<AudioSendReport>) {
        match r {
            Ok(rep) => {
                if !self.ended {
                    match rep.stop {
                        StopReason::PeerClosed => {
                            self.grace =
                                Some(tokio::time::Instant::now() + self.plan.peer_closed_grace)
                        }
                        StopReason::MediaTimeout => self.command(SessionCommand::MediaFailed),
                        _ => {}
                    }
                }
                self.report.audio_sent = Some(rep);
            }
            Err(e) => self.media_error(format!("sending audio: {e:#}")),
        }
    }

    fn on_audio_received(&mut self, r: Result<AudioReceiveReport>) {
        match r {
            Ok(rep) => {
                if !self.ended {
                    match rep.stop {
                        _ if rep.media_timeout => self.media_timed_out(),
                        // The peer closed the shared connection: its BYE is probably
                        // on the way.
                        StopReason::PeerClosed => {
                            self.grace =
                                Some(tokio::time::Instant::now() + self.plan.peer_closed_grace)
                        }
                        StopReason::Cancelled => {}
                        _ if self.plan.hangup_when_received => self.command(SessionCommand::HangUp),
                        _ => {}
                    }
                }
                self.report.audio_received = Some(rep);
            }
            Err(e) => self.media_error(format!("receiving audio: {e:#}")),
        }
    }

    /// The received media stopped without a BYE.
    fn media_timed_out(&self) {
        if self.plan.end_on_media_timeout {
            self.command(SessionCommand::MediaFailed);
        }
    }

    fn media_error(&mut self, e: String) {
        self.report.errors.push(e);
        self.command(SessionCommand::MediaFailed);
    }

    async fn on_event(&mut self, e: SessionEvent) {
        self.report.events.push(e.clone());
        match e {
            SessionEvent::Prepare { media } => match self.prepare_offer(&media).await {
                Ok(port) => self.command(SessionCommand::Accept(port)),
                Err(e) => {
                    self.report
                        .errors
                        .push(format!("opening the media socket: {e:#}"));
                    self.command(SessionCommand::Refuse);
                }
            },
            SessionEvent::Offer { negotiated, .. } => {
                // Audio this side only sends (the voice source of 语音广播) is
                // answered too; nothing carries it yet.
                let audio_out = || {
                    negotiated
                        .media
                        .iter()
                        .find(|m| m.kind == MediaKind::Audio && m.sends() && !m.receives())
                };
                let m = video(&negotiated)
                    .or_else(|| audio(&negotiated).map(|(m, _)| m))
                    .or_else(audio_out);
                let Some(m) = m.cloned() else {
                    self.command(SessionCommand::Refuse);
                    return;
                };
                match self.prepare(&m).await {
                    Ok(port) => self.command(SessionCommand::Accept(port)),
                    Err(e) => {
                        self.report
                            .errors
                            .push(format!("opening the media socket: {e:#}"));
                        self.command(SessionCommand::Refuse);
                    }
                }
            }
            SessionEvent::Started { negotiated, .. } => {
                self.start_media(&negotiated).await;
                self.report.negotiated = Some(*negotiated);
            }
            SessionEvent::Control { request, .. } => self.control(&request),
            SessionEvent::Ended { reason, .. } => {
                self.ended = true;
                self.pending_sender = None;
                self.pending_receiver = None;
                // 断流: the sender stops at once; the receiver keeps what is in flight.
                match self.plan.stream_after_bye {
                    Some(late) if reason == EndReason::ByeReceived => {
                        let c = self.tx_cancel.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(late).await;
                            c.cancel();
                        });
                    }
                    _ => self.tx_cancel.cancel(),
                }
                let (c, drain) = (self.rx_cancel.clone(), self.plan.drain);
                tokio::spawn(async move {
                    tokio::time::sleep(drain).await;
                    c.cancel();
                });
            }
            _ => {}
        }
    }

    fn on_sent(&mut self, r: Result<SendReport>) {
        match r {
            Ok(rep) => {
                let history = self
                    .report
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.kind.is_history());
                if !self.ended {
                    match rep.stop {
                        StopReason::EndOfSource | StopReason::Frames | StopReason::Duration
                            if history =>
                        {
                            self.command(SessionCommand::FileEnded)
                        }
                        // The receiver closed the connection: its BYE is probably on
                        // the way; end from this side only if it does not come.
                        StopReason::PeerClosed => {
                            self.grace =
                                Some(tokio::time::Instant::now() + self.plan.peer_closed_grace)
                        }
                        // 设备侧断流: nobody connected to the listening port.
                        StopReason::MediaTimeout => self.command(SessionCommand::MediaFailed),
                        _ => {}
                    }
                }
                self.report.sent = Some(rep);
            }
            Err(e) => self.media_error(format!("sending media: {e:#}")),
        }
    }

    fn on_received(&mut self, r: Result<ReceiveReport>) {
        match r {
            Ok(rep) => {
                if !self.ended {
                    if rep.media_timeout {
                        self.media_timed_out();
                    } else if self.plan.hangup_when_received && rep.stop != StopReason::Cancelled {
                        self.command(SessionCommand::HangUp);
                    }
                }
                self.report.received = Some(rep);
            }
            Err(e) => self.media_error(format!("receiving media: {e:#}")),
        }
    }
}

async fn join<T>(h: &mut Option<JoinHandle<Result<T>>>) -> Result<T> {
    match h.as_mut() {
        Some(h) => h.await.map_err(|e| anyhow!("media task failed: {e}"))?,
        None => std::future::pending().await,
    }
}

async fn run_worker(
    plan: MediaPlan,
    pending_receiver: Option<MediaReceiver>,
    mut events: mpsc::UnboundedReceiver<SessionEvent>,
    commands: Box<dyn Fn(SessionCommand) + Send>,
) -> SessionReport {
    let deadline = tokio::time::Instant::now() + plan.max_session;
    let pace = plan.pace.clone().unwrap_or_default();
    let mut run = Run {
        plan,
        commands,
        report: SessionReport::default(),
        pending_sender: None,
        pending_receiver,
        sender: None,
        receiver: None,
        pending_audio: None,
        audio_sender: None,
        audio_receiver: None,
        pace,
        tx_cancel: Cancel::new(),
        rx_cancel: Cancel::new(),
        ended: false,
        grace: None,
    };
    loop {
        if run.ended
            && run.sender.is_none()
            && run.receiver.is_none()
            && run.audio_sender.is_none()
            && run.audio_receiver.is_none()
        {
            break;
        }
        let grace = run.grace;
        tokio::select! {
            e = events.recv() => match e {
                Some(e) => run.on_event(e).await,
                None => {
                    // The session machine is gone: stop the media.
                    run.tx_cancel.cancel();
                    run.rx_cancel.cancel();
                    run.ended = true;
                }
            },
            r = join(&mut run.sender) => {
                run.sender = None;
                run.on_sent(r);
            }
            r = join(&mut run.receiver) => {
                run.receiver = None;
                run.on_received(r);
            }
            r = join(&mut run.audio_sender) => {
                run.audio_sender = None;
                run.on_audio_sent(r);
            }
            r = join(&mut run.audio_receiver) => {
                run.audio_receiver = None;
                run.on_audio_received(r);
            }
            _ = tokio::time::sleep_until(grace.unwrap_or(deadline)), if grace.is_some() => {
                run.grace = None;
                if !run.ended {
                    run.command(SessionCommand::MediaFailed);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                run.report.errors.push(format!("the session did not end within {:?}", run.plan.max_session));
                run.tx_cancel.cancel();
                run.rx_cancel.cancel();
                break;
            }
        }
    }
    run.report
}

/// Runs `machine` on `ep` with its media until the session and its media are over.
pub async fn drive<M: MediaSession>(
    machine: M,
    ep: Endpoint,
    plan: &MediaPlan,
    pending_receiver: Option<MediaReceiver>,
) -> Result<SessionReport> {
    let (ctl, ctl_rx) = mpsc::channel::<Command<M>>(16);
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let sip = tokio::spawn(driver::run(machine, ep, SystemClock, ctl_rx, ev_tx));
    let (cmd_tx, mut cmds) = mpsc::unbounded_channel();
    let mut worker = spawn_worker(plan.clone(), pending_receiver, move |c| {
        let _ = cmd_tx.send(c);
    });
    let mut report = loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(e) => { let _ = worker.events.send(e); }
                None => break worker.task.await.map_err(|e| anyhow!("media task failed: {e}"))?,
            },
            Some(c) = cmds.recv() => {
                let _ = ctl.send(Box::new(move |m: &mut M, now| m.apply(now, c))).await;
            }
            r = &mut worker.task => break r.map_err(|e| anyhow!("media task failed: {e}"))?,
        }
    };
    // Outstanding transactions (the answer to our BYE) get `linger` to finish.
    let linger = tokio::time::Instant::now() + plan.linger;
    while tokio::time::Instant::now() < linger && !finished(&ctl).await {
        tokio::select! {
            e = events.recv() => if let Some(e) = e { report.events.push(e) },
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    drop(ctl);
    sip.await.map_err(|e| anyhow!("SIP driver failed: {e}"))??;
    while let Ok(e) = events.try_recv() {
        report.events.push(e);
    }
    Ok(report)
}

async fn finished<M: MediaSession>(ctl: &mpsc::Sender<Command<M>>) -> bool {
    let (tx, rx) = oneshot::channel();
    let _ = ctl
        .send(Box::new(move |m: &mut M, _| {
            let _ = tx.send(m.finished());
        }))
        .await;
    rx.await.unwrap_or(true)
}

/// The camera side: answer one INVITE arriving on `ep` and stream `plan.source`.
pub async fn answer(ep: Endpoint, mut cfg: UasConfig, plan: &MediaPlan) -> Result<SessionReport> {
    // Contact must name a reachable host: a wildcard bind announces the media IP.
    cfg.local = ep.local_addr();
    if cfg.local.ip().is_unspecified() {
        cfg.local.set_ip(plan.bind_ip);
    }
    cfg.media_ip = plan.bind_ip;
    drive(MediaUas::new(cfg), ep, plan, None).await
}

/// The platform side: place `request` from `ep` and receive the video it negotiates
/// (or, without video, exchange its G.711 audio). The first video media of the
/// request, else its first audio, gets its port here (through
/// [`SessionEvent::Prepare`]): a bound UDP port, a listening port for
/// `a=setup:passive`, or 9 for `a=setup:active`.
pub async fn call(
    ep: Endpoint,
    mut cfg: UacConfig,
    mut request: CallRequest,
    plan: &MediaPlan,
) -> Result<SessionReport> {
    cfg.local = ep.local_addr_for(cfg.remote);
    cfg.media_ip = plan.bind_ip;
    let first = |kind: MediaKind| request.media.iter().position(|m| m.kind == kind);
    if let Some(i) = first(MediaKind::Video).or_else(|| first(MediaKind::Audio)) {
        request.media[i].port = 0;
    }
    let mut uac = MediaUac::new(cfg, request);
    uac.start(SystemClock.now());
    drive(uac, ep, plan, None).await
}
