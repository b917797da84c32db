//! Built-in reference peers: a reference camera (the [`Device`] state
//! machine) and a reference platform (the [`Platform`] state machine), run
//! on real sockets by [`crate::transport::driver`]. `camcert run` starts one
//! per case when no `--target` is given; `camcert serve` runs one in the
//! foreground.

pub mod hedgw;
pub mod openapi;
pub mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

use crate::media::{MediaSource, SenderConfig};
use crate::proto::gb28181::device::{Device, DeviceConfig, DeviceEvent};
use crate::proto::gb28181::platform::{Platform, PlatformConfig, PlatformEvent, PlatformFaults};
use crate::proto::gb28181::session::{SessionCommand, SessionEvent};
use crate::proto::ps::annexb::VideoCodec;
use crate::proto::ps::mux::MuxFaults;
use crate::proto::rtp::PacketizerFaults;
use crate::proto::Now;
use crate::transport::clock::{Clock, SystemClock};
use crate::transport::driver::{self, Command, SipMachine};
use crate::transport::{Endpoint, Limits, PeerAddr, Tap};
use session::{MediaPlan, SessionReport};

/// A running peer. Dropping it stops it.
pub struct PeerHandle<M: SipMachine> {
    ctl: mpsc::Sender<Command<M>>,
    pub events: mpsc::UnboundedReceiver<M::Event>,
    task: tokio::task::JoinHandle<Result<M>>,
    /// The address the peer's socket is bound to.
    pub addr: SocketAddr,
    pub tap: Tap,
    /// Media sessions of a peer that hosts them ([`spawn_hosting`]), each with its
    /// Call-ID, once over.
    pub sessions: SessionLog,
}

/// Reports of finished media sessions, with their Call-IDs.
pub type SessionLog = Arc<Mutex<Vec<(String, SessionReport)>>>;

/// A SIP machine that hosts media sessions (the reference camera answering INVITEs,
/// the reference platform placing them): its events carry each session's events
/// with the session's Call-ID, and it takes each session's media commands.
pub trait SessionHost: SipMachine {
    /// A hosted session's event with its Call-ID, or the event back when it is not one.
    fn session_event(e: Self::Event) -> std::result::Result<(String, SessionEvent), Self::Event>;
    /// Hand `cmd` to the session with this Call-ID.
    fn apply_session(&mut self, now: Now, call_id: &str, cmd: SessionCommand);
}

impl<M: SipMachine> PeerHandle<M> {
    /// Run `f` on the machine inside its loop.
    pub async fn command(&self, f: impl FnOnce(&mut M, crate::proto::Now) + Send + 'static) {
        let _ = self.ctl.send(Box::new(f)).await;
    }

    /// Stop the loop and hand back the machine.
    pub async fn stop(self) -> Result<M> {
        drop(self.ctl);
        self.task.await?
    }
}

impl SessionHost for Device {
    fn session_event(e: DeviceEvent) -> std::result::Result<(String, SessionEvent), DeviceEvent> {
        match e {
            DeviceEvent::Session { call_id, event } => Ok((call_id, event)),
            other => Err(other),
        }
    }

    fn apply_session(&mut self, now: Now, call_id: &str, cmd: SessionCommand) {
        Device::apply_session(self, now, call_id, cmd)
    }
}

/// Runs `m` on `ep` by [`driver::run`], with a media worker ([`session::spawn_worker`]) for each session
/// the machine hosts. The workers' commands reach the machine through its control
/// channel; the other events reach [`PeerHandle::events`].
fn spawn_hosting<M: SessionHost>(m: M, ep: Endpoint, plan: MediaPlan) -> PeerHandle<M> {
    let (ctl, ctl_rx) = mpsc::channel::<Command<M>>(64);
    let (ev_tx, mut machine_events) = mpsc::unbounded_channel();
    let (pub_tx, events) = mpsc::unbounded_channel();
    let addr = ep.local_addr();
    let tap = ep.tap.clone();
    let sessions = SessionLog::default();
    let task = tokio::spawn(driver::run(m, ep, SystemClock, ctl_rx, ev_tx));
    // The dispatcher holds the control channel weakly: dropping the handle still
    // stops the machine.
    let weak = ctl.downgrade();
    let log = sessions.clone();
    tokio::spawn(async move {
        let (cmd_tx, mut cmds) = mpsc::unbounded_channel::<(String, SessionCommand)>();
        let mut workers: HashMap<String, mpsc::UnboundedSender<SessionEvent>> = HashMap::new();
        loop {
            tokio::select! {
                e = machine_events.recv() => {
                    let Some(e) = e else { break };
                    match M::session_event(e) {
                        Err(e) => {
                            let _ = pub_tx.send(e);
                        }
                        Ok((call_id, se)) => {
                            workers.retain(|_, w| !w.is_closed());
                            let opens = matches!(
                                se,
                                SessionEvent::Offer { .. } | SessionEvent::Prepare { .. }
                            );
                            if !opens && !workers.contains_key(&call_id) {
                                // A late event (the answer to our BYE) of a session
                                // whose media is over joins its report.
                                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                                if let Some((_, r)) = log.iter_mut().rev().find(|(id, _)| *id == call_id) {
                                    r.events.push(se);
                                }
                                continue;
                            }
                            let w = workers.entry(call_id.clone()).or_insert_with(|| {
                                let tx = cmd_tx.clone();
                                let id = call_id.clone();
                                let w = session::spawn_worker(plan.clone(), None, move |c| {
                                    let _ = tx.send((id.clone(), c));
                                });
                                let (log, id) = (log.clone(), call_id.clone());
                                let task = w.task;
                                tokio::spawn(async move {
                                    if let Ok(r) = task.await {
                                        log.lock().unwrap_or_else(|e| e.into_inner()).push((id, r));
                                    }
                                });
                                w.events
                            });
                            let _ = w.send(se);
                        }
                    }
                }
                Some((call_id, c)) = cmds.recv() => {
                    let Some(ctl) = weak.upgrade() else { break };
                    let _ = ctl
                        .send(Box::new(move |m: &mut M, now| m.apply_session(now, &call_id, c)))
                        .await;
                }
            }
        }
    });
    PeerHandle {
        ctl,
        events,
        task,
        addr,
        tap,
        sessions,
    }
}

/// The sample stream the reference camera sends unless `media_file` names another:
/// 50 H.264 pictures, 320x240, 25 fps.
const SAMPLE_H264: &[u8] = include_bytes!("../../captures/sample-h264-320x240-25fps.h264");

/// RTP SSRC of the `rtp-wrong-ssrc` fault: not a GB SSRC (those start with 0 or 1),
/// so never the negotiated one.
const WRONG_RTP_SSRC: u32 = 0xDEAD_BEEF;

/// Frames the `stream-stall` fault sends before it stalls: 1.6 s at 25 fps, more
/// than the live cases wait for and less than the long-stream case does.
const STALL_AFTER_FRAMES: u64 = 40;

/// How long the `stream-after-bye` fault keeps streaming after the BYE.
const STREAM_AFTER_BYE: Duration = Duration::from_secs(1);

/// The media of the reference camera: `cfg.media_file` (else the built-in sample)
/// from `bind_ip` in real time, looping for live, `history_seconds` of media for
/// Playback/Download, with the media faults of `cfg.faults`.
pub fn camera_plan(cfg: &DeviceConfig, bind_ip: IpAddr) -> Result<MediaPlan> {
    let source = match &cfg.media_file {
        Some(path) => MediaSource::from_file(path, None)?,
        None => MediaSource::from_annexb(VideoCodec::H264, SAMPLE_H264)?,
    };
    let codec = source.codec();
    let f = &cfg.faults;
    let mut plan = MediaPlan::new(bind_ip, Some(Arc::new(source)), codec);
    plan.sender = SenderConfig {
        time_scale: 1.0,
        looping: true,
        mux_faults: MuxFaults {
            omit_psm: f.missing_psm,
            psm_under_system_header: f.psm_bb,
            psm_crc_byte_swapped: f.psm_crc_byte_swapped,
            psm_crc_zero: f.psm_crc_zero,
            psm_descriptor_overrun: f.psm_descriptor_overrun,
            ..MuxFaults::default()
        },
        rtp_faults: PacketizerFaults {
            ssrc: f.rtp_wrong_ssrc.then_some(WRONG_RTP_SSRC),
            no_marker: f.no_marker,
            timestamp_clock_hz: f.ms_timestamps.then_some(1000),
        },
        stall_after_frames: f.stream_stall.then_some(STALL_AFTER_FRAMES),
        rtsp_interleaved: f.rtsp_interleaved,
        drop_first_packets: usize::from(f.drop_first_packet),
        ..SenderConfig::new(0)
    };
    plan.history = Some(cfg.history_seconds);
    plan.stream_after_bye = f.stream_after_bye.then_some(STREAM_AFTER_BYE);
    // A live view lasts as long as the platform wants it.
    plan.max_session = Duration::from_secs(24 * 3600);
    Ok(plan)
}

/// Start the reference camera registering to `cfg.server` over `cfg.transport`,
/// from an ephemeral port on `bind_ip`. It answers INVITEs for itself and its
/// channels with the media of [`camera_plan`], and INVITEs the voice source
/// after a Broadcast notification; finished sessions reach
/// [`PeerHandle::sessions`].
pub async fn start_camera(mut cfg: DeviceConfig, bind_ip: IpAddr) -> Result<PeerHandle<Device>> {
    let server = PeerAddr {
        transport: cfg.transport,
        addr: cfg.server,
    };
    let ep = Endpoint::connect(server, SocketAddr::new(bind_ip, 0)).await?;
    cfg.local = ep.local_addr();
    // Media binds a concrete address: the one the SIP socket reaches the server from.
    let media_ip = cfg
        .media_ip
        .unwrap_or_else(|| ep.local_addr_for(cfg.server).ip());
    cfg.media_ip = Some(media_ip);
    let plan = camera_plan(&cfg, media_ip)?;
    let mut device = Device::new(cfg);
    device.start(SystemClock.now());
    Ok(spawn_hosting(device, ep, plan))
}

impl SessionHost for Platform {
    fn session_event(
        e: PlatformEvent,
    ) -> std::result::Result<(String, SessionEvent), PlatformEvent> {
        match e {
            PlatformEvent::Session { call_id, event } => Ok((call_id, event)),
            e => Err(e),
        }
    }

    fn apply_session(&mut self, now: Now, call_id: &str, cmd: SessionCommand) {
        Platform::apply_session(self, now, call_id, cmd)
    }
}

/// How the reference platform receives the media of the sessions it places:
/// on `ip`, until the session ends (it never hangs up on a frame count), and a
/// stream that stops for a few seconds is ended with BYE.
fn platform_media_plan(ip: IpAddr, faults: &PlatformFaults) -> MediaPlan {
    let mut plan = MediaPlan::new(ip, None, VideoCodec::H264);
    plan.end_on_media_timeout = !faults.no_media_timeout;
    plan.hangup_when_received = false;
    plan.receiver.max_frames = None;
    plan.receiver.max_duration = Duration::from_secs(6 * 3600);
    plan.receiver.media_timeout = Duration::from_secs(5);
    plan.max_session = Duration::from_secs(6 * 3600 + 60);
    plan
}

/// Start the reference platform listening on `listen`. A lower platform
/// (with `cfg.upstream`) starts registering to its upper platform. The media
/// sessions it places (and the audio of its broadcasts) run on the listening
/// IP, or `cfg.media_ip` when set; a wildcard listener uses the address the
/// host routes to the outside from, loopback when it has none.
pub async fn start_platform(cfg: PlatformConfig, listen: PeerAddr) -> Result<PeerHandle<Platform>> {
    start_platform_with(cfg, listen, Limits::default()).await
}

/// [`start_platform`] with transport limits of its own (a test shortens the
/// timeouts, a lab raises the connection caps).
pub async fn start_platform_with(
    mut cfg: PlatformConfig,
    listen: PeerAddr,
    limits: Limits,
) -> Result<PeerHandle<Platform>> {
    let ep = Endpoint::bind_with(listen.transport, listen.addr, limits).await?;
    cfg.local = ep.local_addr();
    cfg.transport = listen.transport;
    let ip = cfg.media_ip.unwrap_or(cfg.local.ip());
    let ip = if ip.is_unspecified() {
        outward_ip(ip)
    } else {
        ip
    };
    cfg.media_ip = Some(ip);
    let plan = platform_media_plan(ip, &cfg.faults);
    let mut platform = Platform::new(cfg);
    platform.start(SystemClock.now());
    Ok(spawn_hosting(platform, ep, plan))
}

/// The local address a wildcard of this family stands for: the one routed to
/// a public address (a connected UDP socket sends nothing), else loopback.
fn outward_ip(wildcard: IpAddr) -> IpAddr {
    let (any, public, lo): (SocketAddr, SocketAddr, IpAddr) = if wildcard.is_ipv6() {
        (
            "[::]:0".parse().expect("addr"),
            "[2001:db8::1]:9".parse().expect("addr"),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        )
    } else {
        (
            "0.0.0.0:0".parse().expect("addr"),
            "192.0.2.1:9".parse().expect("addr"),
            IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
        )
    };
    std::net::UdpSocket::bind(any)
        .and_then(|s| {
            s.connect(public)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(lo)
}
