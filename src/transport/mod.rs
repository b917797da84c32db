//! The only code that touches sockets or reads the clock. An [`Endpoint`]
//! sends and receives whole SIP messages over UDP or TCP (framed by
//! Content-Length) and records every packet in a [`Tap`] for evidence;
//! [`driver`] runs a sans-IO state machine on an endpoint.

pub mod clock;
pub mod driver;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::proto::sip::{Framed, StreamFramer};
use crate::proto::Transport;

/// One packet as it crossed the wire, for evidence captures.
#[derive(Debug, Clone)]
pub struct Packet {
    pub time: SystemTime,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// A shared packet log. Cloning shares the log.
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<Vec<Packet>>>);

impl Tap {
    pub fn record(&self, src: SocketAddr, dst: SocketAddr, transport: Transport, bytes: &[u8]) {
        self.0.lock().expect("tap").push(Packet {
            time: SystemTime::now(),
            src,
            dst,
            transport,
            bytes: bytes.to_vec(),
        });
    }
    pub fn packets(&self) -> Vec<Packet> {
        self.0.lock().expect("tap").clone()
    }
}

/// What arrived: one datagram, or one framed message from a stream.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub from: SocketAddr,
    pub raw: Vec<u8>,
    pub at: Instant,
}

/// Where to reach a peer: `udp://host:port` or `tcp://host:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl std::str::FromStr for PeerAddr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| anyhow!("{s:?}: expected udp://HOST:PORT or tcp://HOST:PORT"))?;
        let transport = match scheme {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => bail!("{s:?}: unknown scheme {other:?} (expected udp or tcp)"),
        };
        let addr = rest
            .parse()
            .with_context(|| format!("{s:?}: {rest:?} is not an IP:PORT address"))?;
        Ok(PeerAddr { transport, addr })
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.transport, self.addr)
    }
}

/// The local IP the OS routes to `peer` from (a connected UDP socket sends nothing).
fn route_local_ip(peer: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = if peer.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(peer).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

enum Kind {
    Udp(UdpSocket),
    /// Listening or connected stream endpoint: readers push framed messages
    /// into `rx`; `writers` holds one write half per connection.
    Tcp {
        rx: mpsc::Receiver<Incoming>,
        /// A listener's feed of `rx`: readers of connections it opens later
        /// get a clone. A client endpoint keeps none, so `rx` ends when its
        /// one connection closes.
        tx: Option<mpsc::Sender<Incoming>>,
        writers: Arc<tokio::sync::Mutex<HashMap<SocketAddr, OwnedWriteHalf>>>,
        local_of: Arc<Mutex<HashMap<SocketAddr, SocketAddr>>>,
    },
}

/// A SIP endpoint: UDP socket, TCP listener, or TCP client connection.
pub struct Endpoint {
    kind: Kind,
    local: SocketAddr,
    transport: Transport,
    /// Where `send(None, ..)` goes: the connected server, or the last peer heard from.
    pub default_peer: Option<SocketAddr>,
    pub tap: Tap,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn spawn_reader(
    stream: TcpStream,
    tx: mpsc::Sender<Incoming>,
    writers: Arc<tokio::sync::Mutex<HashMap<SocketAddr, OwnedWriteHalf>>>,
    local_of: Arc<Mutex<HashMap<SocketAddr, SocketAddr>>>,
    tap: Tap,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(peer) = stream.peer_addr() else { return };
        let local = stream.local_addr().unwrap_or(peer);
        let (mut rd, wr) = stream.into_split();
        writers.lock().await.insert(peer, wr);
        local_of.lock().expect("local_of").insert(peer, local);
        let mut framer = StreamFramer::default();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            tap.record(peer, local, Transport::Tcp, &buf[..n]);
            framer.push(&buf[..n]);
            while let Some(f) = framer.next_item() {
                if let Framed::Message(raw, _) = f {
                    if tx
                        .send(Incoming {
                            from: peer,
                            raw,
                            at: Instant::now(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            // A peer that sends a header section that never ends would grow
            // the buffer without bound; hand the bytes up as one message.
            if framer.buffered().len() > 256 * 1024 {
                let raw = framer.buffered().to_vec();
                framer = StreamFramer::default();
                let _ = tx
                    .send(Incoming {
                        from: peer,
                        raw,
                        at: Instant::now(),
                    })
                    .await;
            }
        }
        writers.lock().await.remove(&peer);
    })
}

impl Endpoint {
    pub async fn bind(transport: Transport, local: SocketAddr) -> Result<Endpoint> {
        match transport {
            Transport::Udp => {
                let s = UdpSocket::bind(local)
                    .await
                    .with_context(|| format!("binding UDP {local}"))?;
                let local = s.local_addr()?;
                Ok(Endpoint {
                    kind: Kind::Udp(s),
                    local,
                    transport,
                    default_peer: None,
                    tap: Tap::default(),
                    tasks: vec![],
                })
            }
            Transport::Tcp => {
                let l = TcpListener::bind(local)
                    .await
                    .with_context(|| format!("listening on TCP {local}"))?;
                let local = l.local_addr()?;
                let (tx, rx) = mpsc::channel(1024);
                let writers = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
                let local_of = Arc::new(Mutex::new(HashMap::new()));
                let tap = Tap::default();
                let (w, lo, t, atx) = (writers.clone(), local_of.clone(), tap.clone(), tx.clone());
                let accept = tokio::spawn(async move {
                    let mut readers = Vec::new();
                    while let Ok((s, _)) = l.accept().await {
                        readers.push(spawn_reader(
                            s,
                            atx.clone(),
                            w.clone(),
                            lo.clone(),
                            t.clone(),
                        ));
                    }
                    for r in readers {
                        r.abort();
                    }
                });
                Ok(Endpoint {
                    kind: Kind::Tcp {
                        rx,
                        tx: Some(tx),
                        writers,
                        local_of,
                    },
                    local,
                    transport,
                    default_peer: None,
                    tap,
                    tasks: vec![accept],
                })
            }
        }
    }

    /// A UDP socket aimed at `remote`, or a TCP connection to it.
    pub async fn connect(remote: PeerAddr, local: SocketAddr) -> Result<Endpoint> {
        match remote.transport {
            Transport::Udp => {
                let mut e = Endpoint::bind(Transport::Udp, local).await?;
                e.default_peer = Some(remote.addr);
                Ok(e)
            }
            Transport::Tcp => {
                let s = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    TcpStream::connect(remote.addr),
                )
                .await
                .map_err(|_| anyhow!("connecting to {remote}: timed out"))?
                .with_context(|| format!("connecting to {remote}"))?;
                let local = s.local_addr()?;
                let (tx, rx) = mpsc::channel(1024);
                let writers = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
                let local_of = Arc::new(Mutex::new(HashMap::new()));
                let tap = Tap::default();
                let reader = spawn_reader(s, tx, writers.clone(), local_of.clone(), tap.clone());
                // Wait until the reader has registered the write half.
                for _ in 0..100 {
                    if writers.lock().await.contains_key(&remote.addr) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                Ok(Endpoint {
                    kind: Kind::Tcp {
                        rx,
                        tx: None,
                        writers,
                        local_of,
                    },
                    local,
                    transport: Transport::Tcp,
                    default_peer: Some(remote.addr),
                    tap,
                    tasks: vec![reader],
                })
            }
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The local address of the connection to `peer` (TCP) or the socket
    /// (UDP). For a socket bound to 0.0.0.0 or ::, the address the OS would
    /// send from to reach `peer`, so Via and Contact name a reachable host.
    pub fn local_addr_for(&self, peer: SocketAddr) -> SocketAddr {
        let local = match &self.kind {
            Kind::Udp(_) => self.local,
            Kind::Tcp { local_of, .. } => local_of
                .lock()
                .expect("local_of")
                .get(&peer)
                .copied()
                .unwrap_or(self.local),
        };
        if local.ip().is_unspecified() {
            if let Some(ip) = route_local_ip(peer) {
                return SocketAddr::new(ip, local.port());
            }
        }
        local
    }

    pub async fn send(&mut self, to: Option<SocketAddr>, bytes: &[u8]) -> Result<()> {
        let to = to
            .or(self.default_peer)
            .ok_or_else(|| anyhow!("no peer to send to yet: nothing has been received"))?;
        match &mut self.kind {
            Kind::Udp(s) => {
                s.send_to(bytes, to)
                    .await
                    .with_context(|| format!("sending to udp://{to}"))?;
                let local = self.local_addr_for(to);
                self.tap.record(local, to, Transport::Udp, bytes);
            }
            Kind::Tcp {
                writers,
                local_of,
                tx,
                ..
            } => {
                let missing = !writers.lock().await.contains_key(&to);
                if let (true, Some(tx)) = (missing, tx.as_ref()) {
                    // RFC 3261 §18.1.1: open a connection to a peer we must
                    // reach and have none to (a platform registering upward).
                    let s = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        TcpStream::connect(to),
                    )
                    .await
                    .map_err(|_| anyhow!("connecting to tcp://{to}: timed out"))?
                    .with_context(|| format!("connecting to tcp://{to}"))?;
                    self.tasks.push(spawn_reader(
                        s,
                        tx.clone(),
                        writers.clone(),
                        local_of.clone(),
                        self.tap.clone(),
                    ));
                    for _ in 0..100 {
                        if writers.lock().await.contains_key(&to) {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
                let mut w = writers.lock().await;
                let conn = w
                    .get_mut(&to)
                    .ok_or_else(|| anyhow!("no TCP connection to {to}"))?;
                conn.write_all(bytes)
                    .await
                    .with_context(|| format!("sending to tcp://{to}"))?;
                let local = local_of
                    .lock()
                    .expect("local_of")
                    .get(&to)
                    .copied()
                    .unwrap_or(self.local);
                self.tap.record(local, to, Transport::Tcp, bytes);
            }
        }
        Ok(())
    }

    /// Next message, or `None` once `deadline` passes.
    pub async fn recv(&mut self, deadline: Instant) -> Result<Option<Incoming>> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let got = match &mut self.kind {
            Kind::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                match tokio::time::timeout_at(deadline, s.recv_from(&mut buf)).await {
                    Err(_) => None,
                    Ok(r) => {
                        let (n, from) = r.context("receiving")?;
                        buf.truncate(n);
                        let local = if self.local.ip().is_unspecified() {
                            SocketAddr::new(
                                route_local_ip(from).unwrap_or(self.local.ip()),
                                self.local.port(),
                            )
                        } else {
                            self.local
                        };
                        self.tap.record(from, local, Transport::Udp, &buf);
                        Some(Incoming {
                            from,
                            raw: buf,
                            at: Instant::now(),
                        })
                    }
                }
            }
            Kind::Tcp { rx, .. } => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => None,
                Ok(None) => bail!("connection closed"),
                Ok(Some(i)) => Some(i),
            },
        };
        if let Some(i) = &got {
            if self.default_peer.is_none()
                || self.transport == Transport::Tcp && !self.is_connected(self.default_peer).await
            {
                self.default_peer = Some(i.from);
            }
        }
        Ok(got)
    }

    async fn is_connected(&self, peer: Option<SocketAddr>) -> bool {
        match (&self.kind, peer) {
            (Kind::Tcp { writers, .. }, Some(p)) => writers.lock().await.contains_key(&p),
            _ => true,
        }
    }
}
