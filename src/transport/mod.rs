//! The only code that touches sockets or reads the clock. An [`Endpoint`]
//! sends and receives whole SIP messages over UDP or TCP (framed strictly by
//! Content-Length) and records every packet in a bounded [`Tap`] for
//! evidence; [`driver`] runs a sans-IO state machine on an endpoint.
//!
//! Everything a peer can make an endpoint hold is bounded by [`Limits`]:
//! message size, connections per listener and per source address, the time
//! a connection may stay silent or take to finish a message, and what may
//! wait to be written to a peer that does not read. Each TCP connection has
//! its own reader and writer task; [`Endpoint::send`] only queues, so a
//! slow peer slows only itself. Limits that are hit are counted in
//! [`Endpoint::stats`], logged, and (for faults of the peer) kept as
//! findings in [`Endpoint::take_findings`].

pub mod clock;
pub mod driver;
pub mod tap;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::proto::sip::{Finding, Framed, StreamFramer, DEFAULT_MAX_MESSAGE};
use crate::proto::Transport;

pub use tap::{Tap, TapStats, DEFAULT_TAP_BYTES};

/// One packet as it crossed the wire, for evidence captures.
#[derive(Debug, Clone)]
pub struct Packet {
    pub time: SystemTime,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// Bounds on what a peer can make an endpoint hold or wait for. The
/// defaults suit a platform serving a few thousand cameras; tests shorten
/// the timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest SIP message (header section and body) accepted on a stream;
    /// a larger one closes the connection with a finding.
    pub max_message: usize,
    /// Open TCP connections a listener accepts; more are closed at once.
    pub max_connections: usize,
    /// Open TCP connections a listener accepts from one source address.
    pub max_connections_per_ip: usize,
    /// A connection a listener accepted that sends nothing for this long is
    /// closed (connections this side opened are kept).
    pub idle_timeout: Duration,
    /// Once a message has begun, its header section must be complete within this.
    pub header_timeout: Duration,
    /// Once a message has begun, it must be complete within this.
    pub body_timeout: Duration,
    /// Messages that may wait to be written to one connection.
    pub write_queue: usize,
    /// Bytes that may wait to be written to one connection.
    pub write_queue_bytes: usize,
    /// A write that makes no progress for this long closes the connection.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: DEFAULT_MAX_MESSAGE,
            max_connections: 4096,
            max_connections_per_ip: 256,
            idle_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            write_queue: 256,
            write_queue_bytes: 4 * 1024 * 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// How often each limit was hit, and the connections open now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub open_connections: u64,
    pub refused_listener_cap: u64,
    pub refused_per_ip_cap: u64,
    pub accept_errors: u64,
    pub idle_timeouts: u64,
    pub header_timeouts: u64,
    pub body_timeouts: u64,
    pub framing_faults: u64,
    pub write_queue_full: u64,
    pub write_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open_connections: AtomicU64,
    refused_listener_cap: AtomicU64,
    refused_per_ip_cap: AtomicU64,
    accept_errors: AtomicU64,
    idle_timeouts: AtomicU64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    framing_faults: AtomicU64,
    write_queue_full: AtomicU64,
    write_failures: AtomicU64,
}

/// Findings kept for [`Endpoint::take_findings`]; older ones are dropped.
const MAX_FINDINGS: usize = 256;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Accept errors (out of file descriptors) back off up to this long.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// An established connection, as the endpoint sees it.
struct Conn {
    id: u64,
    local: SocketAddr,
    queue: mpsc::Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    tasks: Vec<AbortHandle>,
}

/// State shared by an endpoint and its connection tasks.
struct Shared {
    local: SocketAddr,
    limits: Limits,
    tap: Tap,
    counters: Counters,
    conns: Mutex<HashMap<SocketAddr, Conn>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    findings: Mutex<VecDeque<(SocketAddr, Finding)>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(local: SocketAddr, limits: Limits, tap: Tap) -> Arc<Shared> {
        Arc::new(Shared {
            local,
            limits,
            tap,
            counters: Counters::default(),
            conns: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            findings: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Count a limit hit and log it: the first few, then at powers of two.
    fn hit(&self, counter: &AtomicU64, what: std::fmt::Arguments<'_>) {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 4 || n.is_power_of_two() {
            eprintln!("camcert transport {}: {what} ({n} so far)", self.local);
        }
    }

    fn finding(&self, peer: SocketAddr, f: Finding) {
        let mut q = lock(&self.findings);
        if q.len() >= MAX_FINDINGS {
            q.pop_front();
        }
        q.push_back((peer, f));
    }

    /// Forget connection `id` to `peer` (if it is still the current one) and
    /// stop its tasks: its socket closes.
    fn drop_conn(&self, peer: SocketAddr, id: u64, abort_writer: bool) {
        let conn = {
            let mut conns = lock(&self.conns);
            match conns.get(&peer) {
                Some(c) if c.id == id => conns.remove(&peer),
                _ => None,
            }
        };
        if let Some(c) = conn {
            // The reader is first; the writer may drain what was queued.
            let n = if abort_writer { c.tasks.len() } else { 1 };
            for t in c.tasks.iter().take(n) {
                t.abort();
            }
        }
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            accepted: g(&c.accepted),
            open_connections: g(&c.open_connections),
            refused_listener_cap: g(&c.refused_listener_cap),
            refused_per_ip_cap: g(&c.refused_per_ip_cap),
            accept_errors: g(&c.accept_errors),
            idle_timeouts: g(&c.idle_timeouts),
            header_timeouts: g(&c.header_timeouts),
            body_timeouts: g(&c.body_timeouts),
            framing_faults: g(&c.framing_faults),
            write_queue_full: g(&c.write_queue_full),
            write_failures: g(&c.write_failures),
        }
    }
}

/// Held by a connection's reader for as long as the connection counts
/// against the caps.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Slot {
    /// Take a slot for a connection from `ip`, or `None` when a cap is hit
    /// (`capped` only for connections a listener accepted).
    fn take(shared: &Arc<Shared>, ip: IpAddr, capped: bool) -> Option<Slot> {
        let l = &shared.limits;
        let c = &shared.counters;
        let mut per_ip = lock(&shared.per_ip);
        if capped {
            if c.open_connections.load(Ordering::Relaxed) as usize >= l.max_connections {
                drop(per_ip);
                shared.hit(
                    &c.refused_listener_cap,
                    format_args!(
                        "connection from {ip} refused: {} connections open (max_connections)",
                        l.max_connections
                    ),
                );
                return None;
            }
            if per_ip.get(&ip).copied().unwrap_or(0) >= l.max_connections_per_ip {
                drop(per_ip);
                shared.hit(
                    &c.refused_per_ip_cap,
                    format_args!(
                        "connection from {ip} refused: {} connections open from it (max_connections_per_ip)",
                        l.max_connections_per_ip
                    ),
                );
                return None;
            }
        }
        *per_ip.entry(ip).or_insert(0) += 1;
        c.open_connections.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_ip = lock(&self.shared.per_ip);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.shared
            .counters
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's place in [`Shared::conns`], before its tasks run.
struct Registered {
    id: u64,
    queue: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
}

/// Give the connection to `peer` its entry and write queue (replacing, and
/// stopping, any older one), so messages can be queued for it at once.
fn register_conn(shared: &Arc<Shared>, peer: SocketAddr, local: SocketAddr) -> Registered {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (qtx, queue) = mpsc::channel(shared.limits.write_queue.max(1));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let old = lock(&shared.conns).insert(
        peer,
        Conn {
            id,
            local,
            queue: qtx,
            queued_bytes: queued_bytes.clone(),
            tasks: Vec::new(),
        },
    );
    if let Some(old) = old {
        for t in old.tasks {
            t.abort();
        }
    }
    Registered {
        id,
        queue,
        queued_bytes,
    }
}

/// Start the reader and writer of an established connection registered as
/// `reg`; a connection whose entry is gone by now is closed instead.
fn run_conn(
    shared: &Arc<Shared>,
    stream: TcpStream,
    reg: Registered,
    slot: Slot,
    tx: mpsc::Sender<Incoming>,
    accepted: bool,
) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let local = stream.local_addr().unwrap_or(shared.local);
    let _ = stream.set_nodelay(true);
    let id = reg.id;
    match lock(&shared.conns).get_mut(&peer) {
        Some(c) if c.id == id => c.local = local,
        _ => return,
    }
    let (rd, wr) = stream.into_split();
    let conn = ConnInfo {
        shared: shared.clone(),
        peer,
        local,
        id,
        accepted,
    };
    let reader = tokio::spawn(read_loop(conn, rd, tx, slot));
    let writer = tokio::spawn(write_loop(
        shared.clone(),
        wr,
        reg.queue,
        reg.queued_bytes,
        peer,
        id,
    ));
    match lock(&shared.conns).get_mut(&peer) {
        Some(c) if c.id == id => c.tasks = vec![reader.abort_handle(), writer.abort_handle()],
        // Already over: the reader has ended, and the writer ends once it
        // has written what was queued.
        _ => {}
    }
}

/// Register an established connection and start its reader and writer.
fn start_conn(
    shared: &Arc<Shared>,
    stream: TcpStream,
    slot: Slot,
    tx: mpsc::Sender<Incoming>,
    accepted: bool,
) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let local = stream.local_addr().unwrap_or(shared.local);
    // Registered before its tasks start, so a reader that ends at once
    // finds (and removes) it.
    let reg = register_conn(shared, peer, local);
    run_conn(shared, stream, reg, slot, tx, accepted);
}

#[derive(Clone, Copy)]
enum Wait {
    Idle,
    Header,
    Body,
}

/// Who a connection's reader reads for.
struct ConnInfo {
    shared: Arc<Shared>,
    peer: SocketAddr,
    local: SocketAddr,
    id: u64,
    /// Accepted by a listener (not opened by this side).
    accepted: bool,
}

async fn read_loop(conn: ConnInfo, mut rd: OwnedReadHalf, tx: mpsc::Sender<Incoming>, _slot: Slot) {
    let ConnInfo {
        shared,
        peer,
        local,
        id,
        accepted,
    } = conn;
    let l = shared.limits.clone();
    // Only a connection a listener accepted is closed for silence: one we
    // opened is ours to keep, however quiet the peer.
    let idle = if accepted {
        l.idle_timeout
    } else {
        Duration::from_secs(365 * 24 * 3600)
    };
    let c = &shared.counters;
    let mut framer = StreamFramer::new(l.max_message);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut last_byte = Instant::now();
    // When the message now arriving began.
    let mut began: Option<Instant> = None;
    'conn: loop {
        let (deadline, wait) = match began {
            Some(b) if framer.header_complete() => (b + l.body_timeout, Wait::Body),
            Some(b) => (b + l.header_timeout, Wait::Header),
            None => (last_byte + idle, Wait::Idle),
        };
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                let (counter, code, what, limit) = match wait {
                    Wait::Idle => (&c.idle_timeouts, "transport.idle-timeout", "sent nothing", l.idle_timeout),
                    Wait::Header => (&c.header_timeouts, "transport.header-timeout", "did not finish a header section it began", l.header_timeout),
                    Wait::Body => (&c.body_timeouts, "transport.body-timeout", "did not finish a message it began", l.body_timeout),
                };
                shared.hit(counter, format_args!("tcp://{peer} {what} within {limit:?}; closed"));
                let message = format!("tcp://{peer} {what} within {limit:?}; connection closed");
                // A silent connection closed by policy is no fault of the peer.
                let f = if matches!(wait, Wait::Idle) {
                    Finding::warning(code, "camcert transport limits", message)
                } else {
                    Finding::error(code, "camcert transport limits", message)
                };
                shared.finding(peer, f);
                break;
            }
        };
        let now = Instant::now();
        last_byte = now;
        shared.tap.record(peer, local, Transport::Tcp, &buf[..n]);
        framer.push(&buf[..n]);
        let mut completed = false;
        while let Some(item) = framer.next_item() {
            match item {
                Framed::Message(raw, _) => {
                    completed = true;
                    let inc = Incoming {
                        from: peer,
                        raw,
                        at: Instant::now(),
                    };
                    if tx.send(inc).await.is_err() {
                        break 'conn;
                    }
                }
                Framed::Keepalive => completed = true,
                Framed::Broken(fault) => {
                    let f = fault.finding();
                    shared.hit(
                        &c.framing_faults,
                        format_args!("tcp://{peer}: {}", f.message),
                    );
                    shared.finding(peer, f);
                    break 'conn;
                }
            }
        }
        began = match (framer.in_message(), completed) {
            (false, _) => None,
            (true, true) => Some(now),
            (true, false) => began.or(Some(now)),
        };
    }
    shared.drop_conn(peer, id, false);
}

async fn write_loop(
    shared: Arc<Shared>,
    mut wr: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    peer: SocketAddr,
    id: u64,
) {
    let limit = shared.limits.write_timeout;
    while let Some(bytes) = queue.recv().await {
        let r = tokio::time::timeout(limit, wr.write_all(&bytes)).await;
        queued_bytes.fetch_sub(bytes.len(), Ordering::Relaxed);
        let why = match r {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no progress for {limit:?}"),
        };
        shared.hit(
            &shared.counters.write_failures,
            format_args!("writing to tcp://{peer} failed ({why}); closed"),
        );
        shared.drop_conn(peer, id, false);
        return;
    }
    let _ = wr.shutdown().await;
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
    /// Listening or connected stream endpoint: connection readers push
    /// framed messages into `rx`.
    Tcp {
        rx: mpsc::Receiver<Incoming>,
        /// A listener's feed of `rx`: readers of connections it opens later
        /// get a clone. A client endpoint keeps none, so `rx` ends when its
        /// one connection closes.
        tx: Option<mpsc::Sender<Incoming>>,
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
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    udp_buf: Vec<u8>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Readers stop now; writers drain what was queued (each write
        // bounded by the write timeout) and close.
        let conns: Vec<Conn> = lock(&self.shared.conns).drain().map(|(_, c)| c).collect();
        for c in conns {
            if let Some(r) = c.tasks.first() {
                r.abort();
            }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tx: mpsc::Sender<Incoming>) {
    let c = &shared.counters;
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                c.accepted.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = Slot::take(&shared, peer.ip(), true) else {
                    drop(stream);
                    continue;
                };
                start_conn(&shared, stream, slot, tx.clone(), true);
            }
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE) or a connection
                // that died in the backlog: wait and keep accepting.
                shared.hit(
                    &c.accept_errors,
                    format_args!("accept failed: {e}; retrying in {backoff:?}"),
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

async fn connect_tcp(to: SocketAddr) -> Result<TcpStream> {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(to))
        .await
        .map_err(|_| anyhow!("connecting to tcp://{to}: timed out"))?
        .with_context(|| format!("connecting to tcp://{to}"))
}

impl Endpoint {
    pub async fn bind(transport: Transport, local: SocketAddr) -> Result<Endpoint> {
        Endpoint::bind_with(transport, local, Limits::default()).await
    }

    /// [`Endpoint::bind`] with the given limits.
    pub async fn bind_with(
        transport: Transport,
        local: SocketAddr,
        limits: Limits,
    ) -> Result<Endpoint> {
        let tap = Tap::default();
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
                    shared: Shared::new(local, limits, tap.clone()),
                    tap,
                    tasks: vec![],
                    udp_buf: vec![0u8; 65536],
                })
            }
            Transport::Tcp => {
                let l = TcpListener::bind(local)
                    .await
                    .with_context(|| format!("listening on TCP {local}"))?;
                let local = l.local_addr()?;
                let (tx, rx) = mpsc::channel(1024);
                let shared = Shared::new(local, limits, tap.clone());
                let accept = tokio::spawn(accept_loop(shared.clone(), l, tx.clone()));
                Ok(Endpoint {
                    kind: Kind::Tcp { rx, tx: Some(tx) },
                    local,
                    transport,
                    default_peer: None,
                    tap,
                    shared,
                    tasks: vec![accept],
                    udp_buf: Vec::new(),
                })
            }
        }
    }

    /// A UDP socket aimed at `remote`, or a TCP connection to it.
    pub async fn connect(remote: PeerAddr, local: SocketAddr) -> Result<Endpoint> {
        Endpoint::connect_with(remote, local, Limits::default()).await
    }

    /// [`Endpoint::connect`] with the given limits.
    pub async fn connect_with(
        remote: PeerAddr,
        local: SocketAddr,
        limits: Limits,
    ) -> Result<Endpoint> {
        match remote.transport {
            Transport::Udp => {
                let mut e = Endpoint::bind_with(Transport::Udp, local, limits).await?;
                e.default_peer = Some(remote.addr);
                Ok(e)
            }
            Transport::Tcp => {
                let s = connect_tcp(remote.addr).await?;
                let local = s.local_addr()?;
                let (tx, rx) = mpsc::channel(1024);
                let tap = Tap::default();
                let shared = Shared::new(local, limits, tap.clone());
                let slot = Slot::take(&shared, remote.addr.ip(), false)
                    .ok_or_else(|| anyhow!("no connection slot"))?;
                start_conn(&shared, s, slot, tx, false);
                Ok(Endpoint {
                    kind: Kind::Tcp { rx, tx: None },
                    local,
                    transport: Transport::Tcp,
                    default_peer: Some(remote.addr),
                    tap,
                    shared,
                    tasks: vec![],
                    udp_buf: Vec::new(),
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

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// How often each limit was hit so far, and the connections open now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Faults of peers found by the transport (a stream that could not be
    /// framed, a message not finished in time, a peer that does not read),
    /// each with the peer's address, oldest first; taking them clears them.
    pub fn take_findings(&self) -> Vec<(SocketAddr, Finding)> {
        lock(&self.shared.findings).drain(..).collect()
    }

    /// Close the connection to `peer`, if there is one.
    pub fn disconnect(&self, peer: SocketAddr) {
        let id = lock(&self.shared.conns).get(&peer).map(|c| c.id);
        if let Some(id) = id {
            self.shared.drop_conn(peer, id, true);
        }
    }

    /// The local address of the connection to `peer` (TCP) or the socket
    /// (UDP). For a socket bound to 0.0.0.0 or ::, the address the OS would
    /// send from to reach `peer`, so Via and Contact name a reachable host.
    pub fn local_addr_for(&self, peer: SocketAddr) -> SocketAddr {
        let local = match &self.kind {
            Kind::Udp(_) => self.local,
            Kind::Tcp { .. } => lock(&self.shared.conns)
                .get(&peer)
                .map(|c| c.local)
                .unwrap_or(self.local),
        };
        if local.ip().is_unspecified() {
            if let Some(ip) = route_local_ip(peer) {
                return SocketAddr::new(ip, local.port());
            }
        }
        local
    }

    /// Send one message. On TCP this only queues it for the connection's
    /// writer: a peer that does not read never delays the caller. When the
    /// queue is full the connection is dropped and an error returned.
    pub async fn send(&mut self, to: Option<SocketAddr>, bytes: &[u8]) -> Result<()> {
        let to = to
            .or(self.default_peer)
            .ok_or_else(|| anyhow!("no peer to send to yet: nothing has been received"))?;
        match &mut self.kind {
            Kind::Udp(s) => {
                let at = std::time::SystemTime::now();
                s.send_to(bytes, to)
                    .await
                    .with_context(|| format!("sending to udp://{to}"))?;
                let local = self.local_addr_for(to);
                self.tap.record_at(at, local, to, Transport::Udp, bytes);
            }
            Kind::Tcp { tx, .. } => {
                let missing = !lock(&self.shared.conns).contains_key(&to);
                // RFC 3261 §18.1.1: open a connection to a peer we must reach
                // and have none to (a platform registering upward). The entry
                // and its queue exist before the connect starts, so this
                // message is queued even when the connect fails at once.
                let pending = match (missing, tx.as_ref()) {
                    (true, Some(tx)) => {
                        Some((register_conn(&self.shared, to, self.local), tx.clone()))
                    }
                    _ => None,
                };
                let (id, local, queue, queued) = {
                    let conns = lock(&self.shared.conns);
                    let c = conns
                        .get(&to)
                        .ok_or_else(|| anyhow!("no TCP connection to {to}"))?;
                    (c.id, c.local, c.queue.clone(), c.queued_bytes.clone())
                };
                let l = &self.shared.limits;
                let before = queued.fetch_add(bytes.len(), Ordering::Relaxed);
                let over_budget = before > 0 && before + bytes.len() > l.write_queue_bytes;
                let sent = if over_budget {
                    Err(mpsc::error::TrySendError::Full(Vec::new()))
                } else {
                    queue.try_send(bytes.to_vec())
                };
                match sent {
                    Ok(()) => self.tap.record(local, to, Transport::Tcp, bytes),
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                        let msg = format!(
                            "tcp://{to} is not reading: {} bytes in {} messages wait to be written \
                             (write_queue {}, write_queue_bytes {}); connection dropped",
                            before,
                            queue.max_capacity() - queue.capacity(),
                            l.write_queue,
                            l.write_queue_bytes
                        );
                        self.shared.hit(
                            &self.shared.counters.write_queue_full,
                            format_args!("{msg}"),
                        );
                        self.shared.finding(
                            to,
                            Finding::error(
                                "transport.write-queue-full",
                                "camcert transport limits",
                                msg.clone(),
                            ),
                        );
                        self.shared.drop_conn(to, id, true);
                        bail!("{msg}");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                        self.shared.drop_conn(to, id, true);
                        bail!("sending to tcp://{to}: connection closed");
                    }
                }
                if let Some((reg, tx)) = pending {
                    self.connect_in_background(to, reg, tx);
                }
            }
        }
        Ok(())
    }

    /// Connect to `to` for the entry `reg` registered for it; a failed
    /// connect is counted and drops what was queued.
    fn connect_in_background(&self, to: SocketAddr, reg: Registered, tx: mpsc::Sender<Incoming>) {
        let id = reg.id;
        let shared = self.shared.clone();
        let connector = tokio::spawn(async move {
            let s = match connect_tcp(to).await {
                Ok(s) => s,
                Err(e) => {
                    shared.hit(
                        &shared.counters.write_failures,
                        format_args!("{e:#}; what was queued for it is dropped"),
                    );
                    shared.drop_conn(to, id, true);
                    return;
                }
            };
            match Slot::take(&shared, to.ip(), false) {
                Some(slot) => run_conn(&shared, s, reg, slot, tx, false),
                None => shared.drop_conn(to, id, true),
            }
        });
        if let Some(c) = lock(&self.shared.conns).get_mut(&to) {
            if c.id == id && c.tasks.is_empty() {
                c.tasks = vec![connector.abort_handle()];
            }
        }
    }

    /// Next message, or `None` once `deadline` passes.
    pub async fn recv(&mut self, deadline: Instant) -> Result<Option<Incoming>> {
        let deadline = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(deadline, self.recv_next()).await {
            Err(_) => Ok(None),
            Ok(r) => r.map(Some),
        }
    }

    /// Next message, however long it takes. Cancel-safe: dropping the
    /// future loses nothing, so it can sit in a `select!`. An error means
    /// the stream is over (a client's connection closed) or the socket failed.
    pub async fn recv_next(&mut self) -> Result<Incoming> {
        let inc = match &mut self.kind {
            Kind::Udp(s) => {
                let (n, from) = s.recv_from(&mut self.udp_buf).await.context("receiving")?;
                let raw = self.udp_buf[..n].to_vec();
                let local = if self.local.ip().is_unspecified() {
                    SocketAddr::new(
                        route_local_ip(from).unwrap_or(self.local.ip()),
                        self.local.port(),
                    )
                } else {
                    self.local
                };
                self.tap.record(from, local, Transport::Udp, &raw);
                Incoming {
                    from,
                    raw,
                    at: Instant::now(),
                }
            }
            Kind::Tcp { rx, .. } => match rx.recv().await {
                None => bail!("connection closed"),
                Some(i) => i,
            },
        };
        if self.default_peer.is_none()
            || self.transport == Transport::Tcp && !self.is_connected(self.default_peer)
        {
            self.default_peer = Some(inc.from);
        }
        Ok(inc)
    }

    fn is_connected(&self, peer: Option<SocketAddr>) -> bool {
        match (&self.kind, peer) {
            (Kind::Tcp { .. }, Some(p)) => lock(&self.shared.conns).contains_key(&p),
            _ => true,
        }
    }
}
