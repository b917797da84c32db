//! The transport against a hostile peer, on loopback, with the reference
//! platform: forged message boundaries, absurd lengths, a client that never
//! reads, trickled and oversized messages, too many connections, floods of
//! bad datagrams, running out of file descriptors. After each attack a
//! normal client's REGISTER must still be answered. Every loop here is
//! bounded in count and in time.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camcert::peers::{start_platform_with, PeerHandle};
use camcert::proto::gb28181::platform::{Platform, PlatformConfig};
use camcert::proto::sip::{Framed, SipMessage, StreamFramer};
use camcert::proto::Transport;
use camcert::transport::{Endpoint, Limits, PeerAddr};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const DEV: &str = "34020000001320000001";
const PLAT: &str = "34020000002000000001";

fn lo() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// A REGISTER from the provisioned device; the platform answers it (401).
fn register(call_id: &str, via_pad: usize) -> Vec<u8> {
    let pad = "p".repeat(via_pad);
    format!(
        "REGISTER sip:{PLAT}@3402000000 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5070;rport;branch=z9hG4bK{call_id};x={pad}\r\n\
         From: <sip:{DEV}@3402000000>;tag=1\r\n\
         To: <sip:{DEV}@3402000000>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{DEV}@127.0.0.1:5070>\r\n\
         Max-Forwards: 70\r\n\
         Expires: 3600\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A MESSAGE whose text/plain body is `body`.
fn message(call_id: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "MESSAGE sip:{PLAT}@3402000000 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5070;rport;branch=z9hG4bK{call_id}\r\n\
         From: <sip:{DEV}@3402000000>;tag=1\r\n\
         To: <sip:{PLAT}@3402000000>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 2 MESSAGE\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn platform(transport: Transport, limits: Limits) -> PeerHandle<Platform> {
    let mut cfg = PlatformConfig::new(PLAT);
    cfg.devices.insert(DEV.into(), "12345678".into());
    let listen = PeerAddr {
        transport,
        addr: SocketAddr::new(lo(), 0),
    };
    start_platform_with(cfg, listen, limits).await.unwrap()
}

/// Reads SIP messages from a stream until `until` or the stream ends.
/// Returns the messages and whether the peer closed the connection.
async fn read_messages(s: &mut TcpStream, until: Instant) -> (Vec<SipMessage>, bool) {
    let mut f = StreamFramer::new(16 << 20);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let r = tokio::time::timeout_at(until.into(), s.read(&mut buf)).await;
        match r {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => {
                f.push(&buf[..n]);
                while let Some(x) = f.next_item() {
                    if let Framed::Message(_, p) = x {
                        if let Ok(p) = *p {
                            out.push(p.message);
                        }
                    }
                }
            }
        }
    }
}

/// Waits until the peer closes `s` (or `within` passes). True if it closed.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    read_messages(s, Instant::now() + within).await.1
}

/// A normal client's REGISTER over a fresh TCP connection from `src` is
/// answered within `within`; returns how long the answer took.
async fn probe_tcp(addr: SocketAddr, src: IpAddr, within: Duration) -> Duration {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src, 0)).unwrap();
    let mut s = tokio::time::timeout(within, sock.connect(addr))
        .await
        .expect("probe connect timed out")
        .expect("probe connect");
    let id = format!("probe-{}", rand::random::<u32>());
    let t0 = Instant::now();
    s.write_all(&register(&id, 0)).await.unwrap();
    let until = t0 + within;
    let mut f = StreamFramer::default();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match tokio::time::timeout_at(until.into(), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            other => panic!("probe {id} from {src} not answered within {within:?}: {other:?}"),
        };
        f.push(&buf[..n]);
        while let Some(x) = f.next_item() {
            if let Framed::Message(_, p) = x {
                if p.as_ref().as_ref().ok().and_then(|p| p.message.call_id()) == Some(&id) {
                    return t0.elapsed();
                }
            }
        }
    }
}

/// A REGISTER over UDP is answered within `within`.
async fn probe_udp(addr: SocketAddr, within: Duration) -> Duration {
    let s = UdpSocket::bind(SocketAddr::new(lo(), 0)).await.unwrap();
    let id = format!("probe-{}", rand::random::<u32>());
    let t0 = Instant::now();
    let until = t0 + within;
    let mut buf = vec![0u8; 65536];
    // Resend every 200 ms (UDP may drop under a flood), bounded by `within`.
    loop {
        s.send_to(&register(&id, 0), addr).await.unwrap();
        let step = (Instant::now() + Duration::from_millis(200)).min(until);
        while let Ok(r) = tokio::time::timeout_at(step.into(), s.recv_from(&mut buf)).await {
            let (n, _) = r.unwrap();
            if let Ok(p) = SipMessage::parse(&buf[..n]) {
                if p.message.call_id() == Some(&id) {
                    return t0.elapsed();
                }
            }
        }
        assert!(
            Instant::now() < until,
            "UDP probe not answered within {within:?}"
        );
    }
}

const HIDDEN: &str = "hidden-register";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_boundary_in_a_padded_body_is_not_acted_on() {
    let h = platform(Transport::Tcp, Limits::default()).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    // 300 KB of padding, a blank line, then a whole request, all inside
    // one text/plain body.
    let mut body = vec![b'x'; 300 * 1000];
    body.extend_from_slice(b"\r\n\r\n");
    body.extend_from_slice(&register(HIDDEN, 0));
    // Sent in two parts with a pause, so the receiver has more than 256 KiB
    // of an unfinished message buffered at one point.
    let wire = message("outer-message", &body);
    s.write_all(&wire[..270_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(&wire[270_000..]).await.unwrap();
    let (got, _) = read_messages(&mut s, Instant::now() + Duration::from_millis(1500)).await;
    let ids: Vec<_> = got.iter().filter_map(|m| m.call_id()).collect();
    assert!(
        !ids.contains(&HIDDEN),
        "the platform answered the request hidden in a body: {ids:?}"
    );
    probe_tcp(h.addr, lo(), Duration::from_secs(3)).await;
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_near_2_pow_64_closes_the_connection() {
    let h = platform(Transport::Tcp, Limits::default()).await;
    for declared in [u64::MAX, u64::MAX - 200, 1 << 63] {
        let mut s = TcpStream::connect(h.addr).await.unwrap();
        let mut wire = format!(
            "MESSAGE sip:{PLAT}@3402000000 SIP/2.0\r\nCall-ID: outer\r\nContent-Length: {declared}\r\n\r\n"
        )
        .into_bytes();
        wire.extend_from_slice(&register(HIDDEN, 0));
        s.write_all(&wire).await.unwrap();
        let (got, closed) = read_messages(&mut s, Instant::now() + Duration::from_secs(3)).await;
        assert!(
            got.iter().all(|m| m.call_id() != Some(HIDDEN)),
            "Content-Length {declared}: the hidden request was answered"
        );
        assert!(closed, "Content-Length {declared}: connection left open");
    }
    probe_tcp(h.addr, lo(), Duration::from_secs(3)).await;
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_delay_other_devices() {
    let h = platform(Transport::Tcp, Limits::default()).await;
    // The stalled client: a tiny receive buffer, requests whose answers
    // (they echo a 2 KB Via) fill it, and it never reads.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stalled = sock.connect(h.addr).await.unwrap();
    let (mut stalled_rd, mut stalled_wr) = stalled.into_split();
    let flood = tokio::spawn(async move {
        for i in 0..6000 {
            if stalled_wr
                .write_all(&register(&format!("stalled-{i}"), 2048))
                .await
                .is_err()
            {
                break;
            }
        }
        stalled_wr
    });
    // Meanwhile another device keeps getting prompt answers.
    let mut worst = Duration::ZERO;
    let t0 = Instant::now();
    for _ in 0..30 {
        let took = probe_tcp(h.addr, lo(), Duration::from_secs(2)).await;
        worst = worst.max(took);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        worst < Duration::from_millis(1500),
        "answers took up to {worst:?}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), flood).await;
    assert!(t0.elapsed() < Duration::from_secs(30));
    // The stalled connection was dropped, not kept waiting for ever: reading
    // what it had buffered ends in a close.
    let mut sink = vec![0u8; 65536];
    let until = Instant::now() + Duration::from_secs(40);
    let mut closed = false;
    while Instant::now() < until {
        match tokio::time::timeout_at(until.into(), stalled_rd.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => break,
        }
    }
    assert!(closed, "the connection that never read was not dropped");
    h.stop().await.unwrap();
}

fn short_limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_millis(1500),
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_declared_body_is_refused_at_once() {
    // Default timeouts (30 s): a close within seconds comes from the size check.
    let h = platform(Transport::Tcp, Limits::default()).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let t0 = Instant::now();
    s.write_all(
        format!("MESSAGE sip:{PLAT}@3402000000 SIP/2.0\r\nCall-ID: big\r\nContent-Length: 4000000000\r\n\r\nabc")
            .as_bytes(),
    )
    .await
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        t0.elapsed()
    );
    probe_tcp(h.addr, lo(), Duration::from_secs(3)).await;
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_messages_are_closed_after_their_timeouts() {
    let h = platform(Transport::Tcp, short_limits()).await;
    // A body within the size limit, a few bytes at a time.
    let trickle = |head: Vec<u8>| {
        let addr = h.addr;
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let t0 = Instant::now();
            s.write_all(&head).await.unwrap();
            let (mut rd, mut wr) = s.into_split();
            let writer = tokio::spawn(async move {
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if wr.write_all(b"aaaa").await.is_err() {
                        break;
                    }
                }
            });
            let mut buf = [0u8; 4096];
            let closed = loop {
                match tokio::time::timeout(Duration::from_secs(5), rd.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break true,
                    Ok(Ok(_)) => {}
                    Err(_) => break false,
                }
            };
            writer.abort();
            (closed, t0.elapsed())
        }
    };
    let body = format!(
        "MESSAGE sip:{PLAT}@3402000000 SIP/2.0\r\nCall-ID: slow\r\nContent-Length: 100000\r\n\r\n"
    );
    let (closed, after) = trickle(body.into_bytes()).await;
    assert!(closed, "a trickled body kept its connection open");
    assert!(
        after >= Duration::from_millis(700) && after < Duration::from_millis(4000),
        "body timeout 800 ms; closed after {after:?}"
    );
    // A header section that never ends.
    let (closed, after) = trickle(b"MESSAGE sip:a@b SIP/2.0\r\nX-Slow: ".to_vec()).await;
    assert!(closed, "a trickled header kept its connection open");
    assert!(
        after >= Duration::from_millis(700) && after < Duration::from_millis(4000),
        "header timeout 800 ms; closed after {after:?}"
    );
    // A connection that says nothing.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let t0 = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    let after = t0.elapsed();
    assert!(
        after >= Duration::from_millis(1300),
        "idle timeout 1.5 s; closed after {after:?}"
    );
    probe_tcp(h.addr, lo(), Duration::from_secs(3)).await;
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_source_cap_are_closed_while_service_goes_on() {
    let limits = Limits {
        max_connections_per_ip: 8,
        ..Limits::default()
    };
    let h = platform(Transport::Tcp, limits).await;
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(TcpStream::connect(h.addr).await.unwrap());
    }
    let mut closed = 0;
    let mut open = Vec::new();
    for mut c in conns {
        if closed_within(&mut c, Duration::from_millis(150)).await {
            closed += 1;
        } else {
            open.push(c);
        }
    }
    assert_eq!((open.len(), closed), (8, 12));
    // Another source is still served while 127.0.0.1 is at its cap.
    probe_tcp(h.addr, "127.0.0.2".parse().unwrap(), Duration::from_secs(3)).await;
    // Connections held at the cap still work.
    open[0].write_all(&register("held", 0)).await.unwrap();
    let (got, _) = read_messages(&mut open[0], Instant::now() + Duration::from_secs(2)).await;
    assert!(got.iter().any(|m| m.call_id() == Some("held")));
    // Once they close, the source gets in again.
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe_tcp(h.addr, lo(), Duration::from_secs(3)).await;
    h.stop().await.unwrap();
}

/// Hostile datagrams: random bytes, a real REGISTER with bytes changed or
/// cut, absurd lengths, headers without end.
fn hostile_datagram(rng: &mut impl Rng, i: usize) -> Vec<u8> {
    match i % 5 {
        0 => {
            let n = rng.gen_range(0..1400);
            (0..n).map(|_| rng.gen()).collect()
        }
        1 => {
            let mut m = register(&format!("m{i}"), rng.gen_range(0..600));
            for _ in 0..rng.gen_range(1..8) {
                let p = rng.gen_range(0..m.len());
                m[p] = rng.gen();
            }
            let cut = rng.gen_range(1..=m.len());
            m.truncate(cut);
            m
        }
        2 => format!(
            "MESSAGE sip:{PLAT}@3402000000 SIP/2.0\r\nCall-ID: d{i}\r\nContent-Length: {}\r\n\r\n{}",
            rng.gen::<u64>(),
            "b".repeat(rng.gen_range(0..1000))
        )
        .into_bytes(),
        3 => {
            let mut m = b"INVITE sip:x SIP/2.0\r\n".to_vec();
            m.extend(std::iter::repeat_n(b'X', rng.gen_range(0..1300)));
            m
        }
        _ => {
            let mut m = message(&format!("mm{i}"), &vec![b'q'; rng.gen_range(0..1000)]);
            let p = rng.gen_range(0..m.len());
            m[p] ^= 0x20;
            m
        }
    }
}

async fn flood(target: SocketAddr, count: usize, seed: u64) -> usize {
    let s = UdpSocket::bind(SocketAddr::new(lo(), 0)).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sent = 0;
    let t0 = Instant::now();
    for i in 0..count {
        let d = hostile_datagram(&mut rng, i);
        if s.send_to(&d, target).await.is_ok() {
            sent += 1;
        }
        if i % 128 == 127 {
            // Let the receiver keep up (a datagram the kernel drops tests
            // nothing); bounded in time anyway.
            tokio::time::sleep(Duration::from_millis(1)).await;
            if t0.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_datagrams_at_rate() {
    let h = platform(Transport::Udp, Limits::default()).await;
    h.tap.set_capacity(2 * 1024 * 1024);
    let sent = flood(h.addr, 20_000, 7).await;
    assert!(sent > 15_000, "only {sent} datagrams went out");
    probe_udp(h.addr, Duration::from_secs(5)).await;
    let s = h.tap.stats();
    assert!(s.bytes <= 2 * 1024 * 1024, "{s:?}");
    assert!(s.evicted_packets > 0, "{s:?}");
    h.stop().await.unwrap();
}

/// The transport's own view: a 10 MB message arrives whole under a limit
/// that allows it, and is refused with a finding naming the declared length
/// and the limit under the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_message_arrives_whole_or_is_refused_by_name() {
    let body = vec![b'z'; 10 * 1024 * 1024];
    let wire = message("big", &body);
    let big = Limits {
        max_message: 16 << 20,
        ..Limits::default()
    };
    for (limits, whole) in [(big, true), (Limits::default(), false)] {
        let mut ep = Endpoint::bind_with(Transport::Tcp, SocketAddr::new(lo(), 0), limits)
            .await
            .unwrap();
        let mut s = TcpStream::connect(ep.local_addr()).await.unwrap();
        let w = wire.clone();
        let writer = tokio::spawn(async move {
            let _ = s.write_all(&w).await;
            s
        });
        let got = ep
            .recv(Instant::now() + Duration::from_secs(10))
            .await
            .unwrap();
        if whole {
            let inc = got.expect("the 10 MB message");
            let p = SipMessage::parse(&inc.raw).expect("whole, not truncated");
            assert_eq!(p.message.body.len(), body.len());
            assert_eq!(ep.stats().framing_faults, 0);
        } else {
            assert!(got.is_none());
            let f = ep.take_findings();
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].1.code, "sip.stream-message-too-large");
            assert!(f[0].1.message.contains(&body.len().to_string()), "{f:?}");
            assert!(f[0].1.message.contains("1048576"), "{f:?}");
            assert_eq!(ep.stats().framing_faults, 1);
        }
        writer.abort();
    }
}

/// The listener cap and the per-source cap are counted where a caller can
/// see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_are_counted() {
    let limits = Limits {
        max_connections: 4,
        ..Limits::default()
    };
    let ep = Endpoint::bind_with(Transport::Tcp, SocketAddr::new(lo(), 0), limits)
        .await
        .unwrap();
    let mut conns = Vec::new();
    for _ in 0..10 {
        conns.push(TcpStream::connect(ep.local_addr()).await.unwrap());
    }
    let until = Instant::now() + Duration::from_secs(3);
    while ep.stats().accepted < 10 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = ep.stats();
    assert_eq!(s.accepted, 10, "{s:?}");
    assert_eq!(s.open_connections, 4, "{s:?}");
    assert_eq!(s.refused_listener_cap, 6, "{s:?}");
    drop(conns);
    let until = Instant::now() + Duration::from_secs(3);
    while ep.stats().open_connections > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ep.stats().open_connections, 0);
}

/// Kills the process it holds when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_does_not_end_the_accept_loop() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = env!("CARGO_BIN_EXE_camcert");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec '{bin}' serve gb28181-platform --listen tcp://127.0.0.1:{port} --duration 60"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let log = Arc::new(Mutex::new(String::new()));
    let l2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            l2.lock().unwrap().push_str(&line);
            l2.lock().unwrap().push('\n');
        }
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("camcert serve did not start");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // More connections than the process has descriptors for.
    let mut conns = Vec::new();
    for _ in 0..60 {
        if let Ok(Ok(c)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
        {
            conns.push(c);
        }
    }
    let until = Instant::now() + Duration::from_secs(5);
    while !log.lock().unwrap().contains("accept failed") && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        log.lock().unwrap().contains("accept failed"),
        "no accept error was logged: {}",
        log.lock().unwrap()
    );
    drop(conns);
    // Descriptors are free again: a new device is served.
    probe_tcp(addr, lo(), Duration::from_secs(8)).await;
    drop(child);
}

/// The sender of `ci/bench/hostile.sh`: mixed hostile datagrams at the UDP
/// address in CAMCERT_FLOOD_TARGET (CAMCERT_FLOOD_COUNT of them, 100,000 by
/// default), then a REGISTER that must be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark sender; ci/bench/hostile.sh runs it"]
async fn flood_sender() {
    let target: SocketAddr = std::env::var("CAMCERT_FLOOD_TARGET")
        .expect("CAMCERT_FLOOD_TARGET=IP:PORT")
        .parse()
        .expect("CAMCERT_FLOOD_TARGET=IP:PORT");
    assert!(target.ip().is_loopback(), "loopback targets only");
    let count: usize = std::env::var("CAMCERT_FLOOD_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100_000)
        .min(1_000_000);
    let t0 = Instant::now();
    let sent = flood(target, count, 11).await;
    println!("sent {sent} hostile datagrams in {:?}", t0.elapsed());
    let took = probe_udp(target, Duration::from_secs(10)).await;
    println!("liveness REGISTER answered in {took:?}");
}

/// A peer that does not read fills its own queue and is dropped; sending
/// to it never waits, and the drop is counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_drops_the_connection_without_waiting() {
    let limits = Limits {
        write_queue: 8,
        ..Limits::default()
    };
    let mut ep = Endpoint::bind_with(Transport::Tcp, SocketAddr::new(lo(), 0), limits)
        .await
        .unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(ep.local_addr()).await.unwrap();
    s.write_all(&register("hello", 0)).await.unwrap();
    let inc = ep
        .recv(Instant::now() + Duration::from_secs(3))
        .await
        .unwrap()
        .expect("the request");
    let big = vec![b'r'; 64 * 1024];
    let t0 = Instant::now();
    let mut refused = None;
    for i in 0..10_000 {
        let started = Instant::now();
        let r = ep.send(Some(inc.from), &big).await;
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "send {i} waited"
        );
        if r.is_err() {
            refused = Some(i);
            break;
        }
    }
    assert!(refused.is_some(), "the queue never filled");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(ep.stats().write_queue_full, 1);
    let f = ep.take_findings();
    assert!(
        f.iter()
            .any(|(p, f)| *p == inc.from && f.code == "transport.write-queue-full"),
        "{f:?}"
    );
    // The connection is gone: what the peer reads ends in a close.
    let mut closed = false;
    let mut buf = vec![0u8; 65536];
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        match tokio::time::timeout_at(until.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => break,
        }
    }
    assert!(closed);
}

/// A listener that must reach a peer it has no connection to connects in
/// the background: sending never waits for the connect, and a refused one
/// is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_new_peer_connects_in_the_background() {
    let mut ep = Endpoint::bind(Transport::Tcp, SocketAddr::new(lo(), 0))
        .await
        .unwrap();
    let upper = tokio::net::TcpListener::bind(SocketAddr::new(lo(), 0))
        .await
        .unwrap();
    let t0 = Instant::now();
    let req = register("upward", 0);
    ep.send(Some(upper.local_addr().unwrap()), &req)
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_millis(200));
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(3), upper.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = vec![0u8; req.len()];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, req);
    // Nobody listens here: the send still returns at once, and the failed
    // connect is counted.
    let refused = std::net::TcpListener::bind(SocketAddr::new(lo(), 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let t0 = Instant::now();
    ep.send(Some(refused), &req).await.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(200));
    let until = Instant::now() + Duration::from_secs(3);
    while ep.stats().write_failures == 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ep.stats().write_failures, 1);
}
