//! The reference OpenAPI peers on real sockets: the platform
//! ([`serve`], an HTTPS listener running [`Server`]) and the TD
//! ([`run_device`], running [`Client`]'s §6.1 flow). TLS is 1.2 only
//! (§5: "针对 HTTPS 接入，只支持 TLS 1.2"), with the same AEAD suites
//! and run-time rcgen certificates as the HEDGW peers
//! ([`crate::peers::hedgw::tls`]). Each connection carries one request
//! and its answer (§5.1: 连接方式 短连接). The TD logs in to the HEDGW
//! address the platform gave it as the reference HEDGW TD
//! ([`crate::peers::hedgw::run_device`]), so §6.1's flow runs end to end.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use chrono::TimeZone as _;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::finding::Finding;
use crate::proto::openapi::client::{Client, ClientConfig, ClientEvent};
use crate::proto::openapi::server::{Exchange, Server, ServerConfig};
use crate::proto::openapi::{http, FindingCode, WallTime};
use crate::transport::clock::{Clock, SystemClock};

/// How long a connection may take to deliver its request or answer.
pub const IO_WAIT: Duration = Duration::from_secs(10);

/// Wall time with its offset, `skew` from the system clock's. The one
/// place the OpenAPI peers read time.
pub fn wall_now(skew: chrono::Duration) -> WallTime {
    let n = SystemClock.now().wall;
    let t = chrono::Local
        .from_local_datetime(&n)
        .earliest()
        .map(|t| t.fixed_offset())
        .unwrap_or_else(|| chrono::Utc.from_utc_datetime(&n).fixed_offset());
    t + skew
}

/// What the platform's listener saw.
#[derive(Debug)]
pub enum ServerEvent {
    /// A request and its answer.
    Exchange(Box<Exchange>),
    /// A connection that delivered no request: TLS refused (not 1.2),
    /// unframeable HTTP, or nothing at all.
    Refused {
        peer: SocketAddr,
        reason: String,
        finding: Option<Finding>,
    },
}

/// The reference platform.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<ServerEvent>,
    state: Arc<Mutex<Server>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// Run `f` on the platform's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut Server) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Listen on `listen` as the platform; `tls` from
/// [`crate::peers::hedgw::tls::server_config`]; the platform's clock runs
/// `skew` from the system's.
pub async fn serve(
    listen: SocketAddr,
    cfg: ServerConfig,
    tls: Arc<rustls::ServerConfig>,
    skew: chrono::Duration,
) -> Result<ApiServer> {
    let l = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = l.local_addr()?;
    let state = Arc::new(Mutex::new(Server::new(cfg)));
    let (tx, events) = mpsc::unbounded_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let st = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = l.accept().await else {
                continue;
            };
            let (acceptor, st, tx) = (acceptor.clone(), st.clone(), tx.clone());
            tokio::spawn(async move {
                let ev = match tokio::time::timeout(IO_WAIT, acceptor.accept(tcp)).await {
                    Err(_) => refused(peer, "no TLS handshake in time".into(), None),
                    Ok(Err(e)) => refused(peer, format!("TLS refused: {e}"), None),
                    Ok(Ok(mut s)) => match read_request(&mut s).await {
                        Err(e) => {
                            let f = FindingCode::HttpMalformed
                                .finding(crate::proto::openapi::clause::COMMON, e.to_string());
                            let r = http::Response::new(400);
                            let _ = s.write_all(&r.encode()).await;
                            let _ = s.shutdown().await;
                            refused(peer, e.to_string(), Some(f))
                        }
                        Ok(req) => {
                            let skew_now = wall_now(skew);
                            let mut ex = st
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .handle(skew_now, &req);
                            ex.response.headers.set("Connection", "close");
                            let _ = s.write_all(&ex.response.encode()).await;
                            let _ = s.shutdown().await;
                            ServerEvent::Exchange(Box::new(ex))
                        }
                    },
                };
                let _ = tx.send(ev);
            });
        }
    });
    Ok(ApiServer {
        addr,
        events,
        state,
        task,
    })
}

fn refused(peer: SocketAddr, reason: String, finding: Option<Finding>) -> ServerEvent {
    ServerEvent::Refused {
        peer,
        reason,
        finding,
    }
}

/// Read one request, bounded by [`http::MAX_HEAD`], [`http::MAX_BODY`] and
/// [`IO_WAIT`].
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Result<http::Request> {
    let mut buf = Vec::with_capacity(4096);
    let end = tokio::time::Instant::now() + IO_WAIT;
    loop {
        if let Some((r, _)) = http::Request::parse(&buf)? {
            return Ok(r);
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(end, s.read(&mut chunk))
            .await
            .map_err(|_| anyhow!("no complete request within {IO_WAIT:?}"))??;
        if n == 0 {
            return Err(anyhow!(
                "the connection closed after {} bytes, before a complete request",
                buf.len()
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Send `req` to `target` over TLS 1.2 and read the answer.
pub async fn request(
    target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    req: &http::Request,
    wait: Duration,
) -> Result<http::Response> {
    let connector = tokio_rustls::TlsConnector::from(tls);
    let name = ServerName::try_from("localhost").map_err(|e| anyhow!("{e}"))?;
    let fut = async {
        let tcp = TcpStream::connect(target)
            .await
            .with_context(|| format!("connecting to {target}"))?;
        let mut s = connector
            .connect(name, tcp)
            .await
            .context("TLS 1.2 handshake")?;
        s.write_all(&req.encode()).await?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            if let Some((r, _)) = http::Response::parse(&buf, false)? {
                return Ok(r);
            }
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return match http::Response::parse(&buf, true)? {
                    Some((r, _)) => Ok(r),
                    None => Err(anyhow!(
                        "the connection closed after {} bytes, before an answer",
                        buf.len()
                    )),
                };
            }
            if buf.len() > http::MAX_HEAD + http::MAX_BODY {
                return Err(anyhow!(
                    "answer over {} bytes",
                    http::MAX_HEAD + http::MAX_BODY
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(wait, fut)
        .await
        .map_err(|_| anyhow!("no answer from {target} within {wait:?}"))?
}

/// Control of a running reference TD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCommand {
    /// Restart: the flow runs again, with the address cache kept.
    Reboot,
}

/// A running reference TD.
pub struct DeviceRun {
    pub events: mpsc::UnboundedReceiver<ClientEvent>,
    pub ctl: mpsc::Sender<DeviceCommand>,
    task: tokio::task::JoinHandle<Client>,
}

impl Drop for DeviceRun {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DeviceRun {
    pub async fn reboot(&self) {
        let _ = self.ctl.send(DeviceCommand::Reboot).await;
    }
}

/// Run the reference TD against the platform at `target`, its clock
/// `cfg.clock_skew` off. After the settings it logs in to HEDGW at the
/// addresses it has, freshest first ([`hedgw_login`]), reporting failures
/// back to the flow; it then reports its version and waits for commands,
/// keeping the HEDGW connection until a reboot.
pub fn run_device(
    target: SocketAddr,
    cfg: ClientConfig,
    tls: Arc<rustls::ClientConfig>,
    seed: u64,
) -> DeviceRun {
    let (tx, events) = mpsc::unbounded_channel();
    let (ctl, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(async move {
        let mut c = Client::new(cfg, seed);
        let mut hedgw: Vec<(String, u16)> = Vec::new();
        let mut failed_rounds = 0u32;
        // The HEDGW connection of the last login, kept while the TD runs.
        let mut hedgw_session: Option<crate::peers::hedgw::DeviceClient> = None;
        loop {
            let mut next = c.poll_request(wall_now(chrono::Duration::zero()));
            while let Some(req) = next.take() {
                match request(target, tls.clone(), &req, IO_WAIT).await {
                    Ok(r) => next = c.handle_response(wall_now(chrono::Duration::zero()), &r),
                    Err(e) => {
                        let _ = tx.send(ClientEvent::Failed(format!("{e:#}")));
                        c.reboot();
                        break;
                    }
                }
                let mut login = false;
                while let Some(e) = c.poll_event() {
                    match &e {
                        ClientEvent::Hedgw(list) => hedgw = list.clone(),
                        ClientEvent::Settings(_) => login = true,
                        _ => {}
                    }
                    let _ = tx.send(e);
                }
                if login {
                    let mut ok = false;
                    hedgw_session = None;
                    for (h, p) in &hedgw {
                        if let Some(s) = hedgw_login(&c, h, *p).await {
                            let _ = tx.send(ClientEvent::HedgwLoggedIn(h.clone(), *p));
                            hedgw_session = Some(s);
                            ok = true;
                            break;
                        }
                        c.address_failed(h, *p);
                    }
                    if ok {
                        failed_rounds = 0;
                        c.hedgw_connected();
                    } else {
                        failed_rounds += 1;
                        if failed_rounds >= 2 {
                            let _ = tx.send(ClientEvent::Failed(
                                "no HEDGW address took a connection".into(),
                            ));
                            break;
                        }
                    }
                }
                if next.is_none() {
                    next = c.poll_request(wall_now(chrono::Duration::zero()));
                }
            }
            match rx.recv().await {
                Some(DeviceCommand::Reboot) => {
                    hedgw_session = None;
                    c.reboot()
                }
                None => {
                    drop(hedgw_session);
                    return c;
                }
            }
        }
    });
    DeviceRun { events, ctl, task }
}

/// How long a HEDGW login may take.
pub const HEDGW_LOGIN_WAIT: Duration = Duration::from_secs(5);

/// Log in to the HEDGW gateway at `host:port` as the reference HEDGW TD
/// (TLS 1.2, any certificate: a lab peer), with the TD's OpenAPI
/// credentials and the token registration returned. The running
/// connection when the gateway accepted the login within
/// [`HEDGW_LOGIN_WAIT`].
pub async fn hedgw_login(
    c: &Client,
    host: &str,
    port: u16,
) -> Option<crate::peers::hedgw::DeviceClient> {
    use crate::proto::hedgw::device::{Device, DeviceConfig, DeviceEvent};
    let addr = tokio::time::timeout(HEDGW_LOGIN_WAIT, tokio::net::lookup_host((host, port)))
        .await
        .ok()?
        .ok()?
        .next()?;
    let d = DeviceConfig::default();
    let mut login = d.login.clone();
    login.access_key = c.cfg.access_key.clone();
    login.access_secret = c.cfg.access_secret.clone();
    login.device_token = c.token().unwrap_or_default().to_string();
    let cfg = DeviceConfig {
        login,
        device_id: c.cfg.device_id.clone(),
        ..d
    };
    let tls = crate::peers::hedgw::tls::client_config(None).ok()?;
    let mut dc =
        crate::peers::hedgw::run_device(Device::new(cfg), addr, Some(tls), "localhost".into());
    let end = tokio::time::Instant::now() + HEDGW_LOGIN_WAIT;
    loop {
        match tokio::time::timeout_at(end, dc.events.recv()).await {
            Ok(Some(DeviceEvent::LoggedIn(_))) => return Some(dc),
            Ok(Some(DeviceEvent::LoginRefused(_) | DeviceEvent::Closed(_))) | Ok(None) | Err(_) => {
                dc.stop().await;
                return None;
            }
            Ok(Some(_)) => {}
        }
    }
}
