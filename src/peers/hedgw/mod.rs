//! HEDGW at the edge: the sans-IO [`Gateway`] and [`Device`] run on TCP
//! with TLS 1.2 ([`tls`]). One driver loop ([`drive`]) reads the stream,
//! wakes the machine at its deadline, runs control commands and writes
//! what it hands back; it waits on those three and nothing else.
//!
//! [`serve_gateway`] is the reference gateway (one [`Gateway`] per
//! connection; it refuses plain TCP and anything but TLS 1.2 unless the
//! `plain-tcp` fault is on); [`run_device`] is the reference device (or
//! camcert testing a gateway), reconnecting after a refused login when the
//! device allows it. Time is UTC wall time and real time: media is paced
//! as it would be on a camera.

pub mod serve;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::proto::hedgw::device::{Device, DeviceEvent};
use crate::proto::hedgw::gateway::{Gateway, GatewayConfig, GatewayEvent};
use crate::proto::hedgw::{frame, msg, wire, MessageType};
use crate::proto::Now;
use crate::transport::clock::Clock;

/// UTC wall time: HEDGW stamps are UTC milliseconds (§5.2.1 server_time).
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcClock;

impl Clock for UtcClock {
    fn now(&self) -> Now {
        Now {
            mono: Instant::now(),
            wall: chrono::Utc::now().naive_utc(),
        }
    }
}

/// What the driver needs of a HEDGW machine.
pub trait Machine: Send + 'static {
    type Event: Send + std::fmt::Debug + 'static;
    fn handle_input(&mut self, now: Now, data: &[u8]);
    fn handle_eof(&mut self, now: Now);
    fn handle_timeout(&mut self, now: Now);
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_closed(&self) -> bool;
    /// The machine wants a new connection (a device after a refused login).
    fn reconnect(&self, _e: &Self::Event) -> bool {
        false
    }
}

impl Machine for Gateway {
    type Event = GatewayEvent;
    fn handle_input(&mut self, now: Now, data: &[u8]) {
        Gateway::handle_input(self, now, data)
    }
    fn handle_eof(&mut self, _now: Now) {
        Gateway::handle_eof(self)
    }
    fn handle_timeout(&mut self, now: Now) {
        Gateway::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Gateway::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<GatewayEvent> {
        Gateway::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Gateway::poll_timeout(self)
    }
    fn is_closed(&self) -> bool {
        Gateway::is_closed(self)
    }
}

impl Machine for Device {
    type Event = DeviceEvent;
    fn handle_input(&mut self, now: Now, data: &[u8]) {
        Device::handle_input(self, now, data)
    }
    fn handle_eof(&mut self, now: Now) {
        Device::handle_eof(self, now)
    }
    fn handle_timeout(&mut self, now: Now) {
        Device::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Device::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<DeviceEvent> {
        Device::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Device::poll_timeout(self)
    }
    fn is_closed(&self) -> bool {
        Device::is_closed(self)
    }
    fn reconnect(&self, e: &DeviceEvent) -> bool {
        matches!(e, DeviceEvent::RetryLogin)
    }
}

/// Work to do on a machine inside its loop.
pub type Command<M> = Box<dyn FnOnce(&mut M, Now) + Send>;

/// How a drive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Closed,
    Reconnect,
    /// The control side went away.
    Dropped,
}

/// Run `m` on `stream` until it closes, asks for a new connection, or
/// the control channel closes.
pub async fn drive<M: Machine, S: AsyncRead + AsyncWrite + Unpin>(
    m: &mut M,
    stream: S,
    clock: &dyn Clock,
    ctl: &mut mpsc::Receiver<Command<M>>,
    events: &mpsc::UnboundedSender<M::Event>,
) -> Ended {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    let ended = loop {
        let mut reconnect = false;
        let mut wrote = false;
        while let Some(b) = m.poll_transmit() {
            if wr.write_all(&b).await.is_err() {
                m.handle_eof(clock.now());
                eof = true;
                break;
            }
            wrote = true;
        }
        if wrote && wr.flush().await.is_err() && !eof {
            m.handle_eof(clock.now());
            eof = true;
        }
        while let Some(e) = m.poll_event() {
            reconnect |= m.reconnect(&e);
            let _ = events.send(e);
        }
        if m.is_closed() {
            break Ended::Closed;
        }
        if reconnect {
            break Ended::Reconnect;
        }
        let deadline = m.poll_timeout();
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rd.read(&mut buf), if !eof => match r {
                Ok(0) | Err(_) => {
                    eof = true;
                    m.handle_eof(clock.now());
                }
                Ok(n) => m.handle_input(clock.now(), &buf[..n]),
            },
            _ = sleep => m.handle_timeout(clock.now()),
            c = ctl.recv() => match c {
                Some(f) => f(m, clock.now()),
                None => break Ended::Dropped,
            },
        }
    };
    while let Some(e) = m.poll_event() {
        let _ = events.send(e);
    }
    let _ = wr.shutdown().await;
    ended
}

/// One connection to the reference gateway.
pub struct GatewaySession {
    pub peer: SocketAddr,
    pub ctl: mpsc::Sender<Command<Gateway>>,
    pub events: mpsc::UnboundedReceiver<GatewayEvent>,
    task: tokio::task::JoinHandle<Gateway>,
}

impl GatewaySession {
    /// Run `f` on the gateway inside its loop.
    pub async fn command(&self, f: impl FnOnce(&mut Gateway, Now) + Send + 'static) {
        let _ = self.ctl.send(Box::new(f)).await;
    }

    /// Stop the session and hand back its machine.
    pub async fn stop(self) -> Option<Gateway> {
        drop(self.ctl);
        self.task.await.ok()
    }
}

/// What the gateway's listener saw.
pub enum ServerEvent {
    Session(GatewaySession),
    /// A connection refused before any HEDGW message: not TLS 1.2 (or not
    /// TLS), with the reason.
    Refused {
        peer: SocketAddr,
        reason: String,
    },
}

/// The reference gateway: a listener handing out a session per connection.
pub struct GatewayServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<ServerEvent>,
    config: Arc<std::sync::Mutex<GatewayConfig>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for GatewayServer {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl GatewayServer {
    /// Stop listening, and wait until the port is free again.
    pub async fn close(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            // The listener goes with the task.
            let _ = t.await;
        }
    }

    /// The configuration of the gateways of connections from now on.
    pub fn set_config(&self, cfg: GatewayConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    /// The next session, skipping refused connections, within `wait`.
    pub async fn next_session(&mut self, wait: Duration) -> Option<GatewaySession> {
        self.next_session_or_refusals(wait).await.ok()
    }

    /// The next session within `wait`, or why the connections that came
    /// meanwhile were refused (`peer: reason`; none when none came).
    pub async fn next_session_or_refusals(
        &mut self,
        wait: Duration,
    ) -> std::result::Result<GatewaySession, Vec<String>> {
        let end = tokio::time::Instant::now() + wait;
        let mut refused = Vec::new();
        loop {
            match tokio::time::timeout_at(end, self.events.recv()).await {
                Ok(Some(ServerEvent::Session(s))) => return Ok(s),
                Ok(Some(ServerEvent::Refused { peer, reason })) => {
                    if refused.len() < 8 {
                        refused.push(format!("{peer}: {reason}"));
                    }
                }
                _ => return Err(refused),
            }
        }
    }
}

/// Listen on `listen` as a gateway with `cfg` for every connection;
/// `tls` is the gateway's TLS (from [`tls::server_config`]).
pub async fn serve_gateway(
    listen: SocketAddr,
    cfg: GatewayConfig,
    tls: Arc<rustls::ServerConfig>,
) -> Result<GatewayServer> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, events) = mpsc::unbounded_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let config = Arc::new(std::sync::Mutex::new(cfg));
    let shared = config.clone();
    let task = tokio::spawn(async move {
        while let Ok((sock, peer)) = listener.accept().await {
            let cfg = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let (ctl_tx, mut ctl) = mpsc::channel::<Command<Gateway>>(64);
                let (ev_tx, ev_rx) = mpsc::unbounded_channel();
                let plain = cfg.faults.plain_tcp && {
                    let mut first = [0u8; 1];
                    matches!(sock.peek(&mut first).await, Ok(1) if first[0] != 0x16)
                };
                let mut gw = Gateway::new(cfg);
                let task = if plain {
                    tokio::spawn(async move {
                        drive(&mut gw, sock, &UtcClock, &mut ctl, &ev_tx).await;
                        gw
                    })
                } else {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await;
                    let stream = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            let _ = tx.send(ServerEvent::Refused {
                                peer,
                                reason: format!("TLS handshake failed: {e}"),
                            });
                            return;
                        }
                        Err(_) => {
                            let _ = tx.send(ServerEvent::Refused {
                                peer,
                                reason: "no TLS handshake within 10 s".into(),
                            });
                            return;
                        }
                    };
                    tokio::spawn(async move {
                        drive(&mut gw, stream, &UtcClock, &mut ctl, &ev_tx).await;
                        gw
                    })
                };
                let _ = tx.send(ServerEvent::Session(GatewaySession {
                    peer,
                    ctl: ctl_tx,
                    events: ev_rx,
                    task,
                }));
            });
        }
    });
    Ok(GatewayServer {
        addr,
        events,
        config,
        task: Some(task),
    })
}

/// A running device.
pub struct DeviceClient {
    pub ctl: mpsc::Sender<Command<Device>>,
    pub events: mpsc::UnboundedReceiver<DeviceEvent>,
    task: tokio::task::JoinHandle<Device>,
}

impl DeviceClient {
    pub async fn command(&self, f: impl FnOnce(&mut Device, Now) + Send + 'static) {
        let _ = self.ctl.send(Box::new(f)).await;
    }

    pub async fn stop(self) -> Option<Device> {
        drop(self.ctl);
        self.task.await.ok()
    }
}

/// Connect `device` to the gateway at `target` over TLS (`tls`; `None`
/// for plain TCP) and keep it connected as long as it wants; `server_name`
/// is the name its certificate is checked against.
pub fn run_device(
    mut device: Device,
    target: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    server_name: String,
) -> DeviceClient {
    let (ctl_tx, mut ctl) = mpsc::channel::<Command<Device>>(64);
    let (ev_tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let sock = match TcpStream::connect(target).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = ev_tx.send(DeviceEvent::Closed(format!("connecting {target}: {e}")));
                    break;
                }
            };
            let _ = sock.set_nodelay(true);
            let ended = match &tls {
                None => {
                    device.start(UtcClock.now());
                    drive(&mut device, sock, &UtcClock, &mut ctl, &ev_tx).await
                }
                Some(cfg) => {
                    let name = match rustls::pki_types::ServerName::try_from(server_name.clone()) {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = ev_tx.send(DeviceEvent::Closed(format!(
                                "bad server name {server_name:?}: {e}"
                            )));
                            break;
                        }
                    };
                    let c = tokio_rustls::TlsConnector::from(cfg.clone());
                    match c.connect(name, sock).await {
                        Ok(s) => {
                            device.start(UtcClock.now());
                            drive(&mut device, s, &UtcClock, &mut ctl, &ev_tx).await
                        }
                        Err(e) => {
                            let _ = ev_tx
                                .send(DeviceEvent::Closed(format!("TLS handshake failed: {e}")));
                            break;
                        }
                    }
                }
            };
            if ended != Ended::Reconnect {
                break;
            }
        }
        device
    });
    DeviceClient {
        ctl: ctl_tx,
        events,
        task,
    }
}

/// How a gateway answered a connection that should be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Whether the gateway refused (closed, or a TLS alert, and no HEDGW answer).
    pub refused: bool,
    /// What came back, in words.
    pub answer: String,
}

/// Connect over plain TCP, send a framed DevLoginReq, and see whether a
/// HEDGW answer comes back within `wait`.
pub async fn probe_plain_tcp(target: SocketAddr, wait: Duration) -> Result<Probe> {
    let mut sock = TcpStream::connect(target)
        .await
        .with_context(|| format!("connecting {target}"))?;
    let login = msg::login_req(crate::proto::hedgw::device::DeviceConfig::default().login);
    sock.write_all(&frame::encode(&login)).await?;
    let got = read_some(&mut sock, wait).await;
    let mut d = frame::FrameDecoder::new(64 * 1024);
    d.push(&got);
    let hedgw = match d.next_frame() {
        Ok(Some(f)) => {
            let m = wire::decode(&f);
            (m.message_type() == Some(MessageType::DevLoginResp)).then(|| m.summary())
        }
        _ => None,
    };
    Ok(match hedgw {
        Some(s) => Probe {
            refused: false,
            answer: format!("answered in plain TCP: {s}"),
        },
        None => Probe {
            refused: true,
            answer: describe_refusal(&got),
        },
    })
}

/// Send a ClientHello offering TLS 1.1 only and see what comes back.
pub async fn probe_tls11(target: SocketAddr, wait: Duration) -> Result<Probe> {
    let mut sock = TcpStream::connect(target)
        .await
        .with_context(|| format!("connecting {target}"))?;
    sock.write_all(&tls::tls11_client_hello()).await?;
    let got = read_some(&mut sock, wait).await;
    let a = tls::HelloAnswer::parse(&got);
    Ok(Probe {
        refused: a.refused(),
        answer: match a {
            tls::HelloAnswer::Handshake { version } => {
                format!("went on with a handshake record (version 0x{version:04x})")
            }
            _ => describe_refusal(&got),
        },
    })
}

fn describe_refusal(got: &[u8]) -> String {
    match tls::HelloAnswer::parse(got) {
        tls::HelloAnswer::Closed => "closed without an answer".into(),
        tls::HelloAnswer::Alert { level, description } => {
            format!("TLS alert (level {level}, description {description})")
        }
        _ => format!("{} bytes that are no HEDGW answer", got.len()),
    }
}

/// What arrives within `wait`, up to 4 KiB, until the peer closes.
async fn read_some(sock: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + wait;
    while out.len() < 4096 {
        match tokio::time::timeout_at(end, sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    out
}
