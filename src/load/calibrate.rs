//! How fast this machine sends bare datagrams over loopback: the ceiling a
//! load run's send rate is read against. A sender with the fleet's socket
//! setup (one non-blocking UDP socket) sends one of the fleet's own
//! REGISTER requests (or, for media, RTP datagrams of the fleet's size,
//! batched as the fleet batches them) again and again for a fixed time to
//! a loopback socket that a second thread reads, as a target would: a
//! socket nobody reads drops datagrams once its buffer is full, before the
//! kernel does the work of delivering them, and so measures a cheaper path
//! than any run whose target takes its traffic in.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// How long the calibration sends.
pub const CALIBRATION_TIME: Duration = Duration::from_secs(1);

/// Batches sent between two looks at the clock.
const CHUNK: u32 = 16;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Datagrams sent per second by the bare sender.
    pub packets_per_s: f64,
    pub packets: u64,
    pub packet_bytes: usize,
    pub seconds: f64,
    /// Datagrams per system call (`sendmmsg`, as the fleet batches).
    pub per_syscall: u32,
    /// Sends the kernel refused (a full socket buffer) and that were tried again.
    pub would_block: u64,
    /// With `--streams`: media-sized RTP datagrams a bare sender gets out a
    /// second, batched as the fleet batches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaCalibration>,
}

/// The bare batched send rate of media datagrams.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaCalibration {
    pub packets_per_s: f64,
    pub packet_bytes: usize,
    pub per_syscall: u32,
    pub seconds: f64,
}

/// A loopback socket read by a thread of its own until dropped, as a
/// target reads what is sent to it.
struct Sink {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Datagrams read so far.
    read: Arc<std::sync::atomic::AtomicU64>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    fn open(lo: IpAddr) -> Result<Sink> {
        let sock =
            UdpSocket::bind(SocketAddr::new(lo, 0)).context("binding the calibration sink")?;
        super::media::set_buffer(&sock, true, 8 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        let addr = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (flag, count) = (stop.clone(), read.clone());
        let reader = std::thread::Builder::new()
            .name("calibration sink".into())
            .spawn(move || {
                let mut rx = super::udp::RecvMany::default();
                while !flag.load(Ordering::Relaxed) {
                    // A timeout or an error: look at the flag and read on.
                    if let Ok(n) = rx.recv_std(&sock) {
                        count.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            })
            .context("starting the calibration sink's reader")?;
        Ok(Sink {
            addr,
            stop,
            read,
            reader: Some(reader),
        })
    }

    /// Stop reading; how many datagrams were read.
    fn close(self) -> u64 {
        let read = self.read.clone();
        drop(self);
        read.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Send `packet_bytes`-byte datagrams in batches of
/// [`BATCH`](super::media::BATCH) per system call from a fresh socket on
/// loopback to a socket another thread reads, for `time`.
#[cfg(target_os = "linux")]
pub fn calibrate_media(
    family: IpAddr,
    packet_bytes: usize,
    time: Duration,
) -> Result<MediaCalibration> {
    use super::media::{rtp_header, send_many, BATCH};
    let lo: IpAddr = if family.is_ipv6() {
        Ipv6Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    };
    let sink = Sink::open(lo)?;
    let to = sink.addr;
    let sock = UdpSocket::bind(SocketAddr::new(lo, 0)).context("binding the calibration sender")?;
    sock.set_nonblocking(true)?;
    let payload = bytes::Bytes::from(vec![0u8; packet_bytes.saturating_sub(12).max(1)]);
    let headers: Vec<_> = (0..BATCH as u16)
        .map(|k| rtp_header(false, 96, k, 0, 1))
        .collect();
    let payloads = vec![payload; BATCH];
    let dests = vec![to; BATCH];
    let t0 = Instant::now();
    let end = t0 + time;
    let mut packets = 0u64;
    let mut now = t0;
    while now < end {
        for _ in 0..16 {
            match send_many(&sock, &headers, &payloads, &dests) {
                Ok(n) => packets += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("sending calibration datagrams"),
            }
        }
        now = Instant::now();
    }
    let seconds = (now - t0).as_secs_f64();
    sink.close();
    Ok(MediaCalibration {
        packets_per_s: packets as f64 / seconds,
        packet_bytes,
        per_syscall: BATCH as u32,
        seconds,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn calibrate_media(_: IpAddr, _: usize, _: Duration) -> Result<MediaCalibration> {
    anyhow::bail!("the media calibration needs sendmmsg (Linux)")
}

/// Send `packet` from a fresh socket on the loopback address of `family`'s
/// kind for `time`.
pub fn calibrate(family: IpAddr, packet: &[u8], time: Duration) -> Result<Calibration> {
    let lo: IpAddr = if family.is_ipv6() {
        Ipv6Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    };
    let sink = Sink::open(lo)?;
    let to = sink.addr;
    let sock = UdpSocket::bind(SocketAddr::new(lo, 0)).context("binding the calibration sender")?;
    // The fleet's sockets are non-blocking and try a send first.
    sock.set_nonblocking(true)?;
    let batch: Vec<(SocketAddr, Vec<u8>)> = (0..super::udp::BATCH)
        .map(|_| (to, packet.to_vec()))
        .collect();
    let t0 = Instant::now();
    let end = t0 + time;
    let (mut packets, mut would_block) = (0u64, 0u64);
    let mut now = t0;
    while now < end {
        for _ in 0..CHUNK {
            match super::udp::send_batch(&sock, &batch) {
                Ok(n) => packets += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => would_block += 1,
                Err(e) => return Err(e).context("sending calibration datagrams"),
            }
        }
        now = Instant::now();
    }
    let seconds = (now - t0).as_secs_f64();
    sink.close();
    Ok(Calibration {
        packets_per_s: packets as f64 / seconds,
        packets,
        packet_bytes: packet.len(),
        seconds,
        per_syscall: super::udp::BATCH as u32,
        would_block,
        media: None,
    })
}

impl Calibration {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        let mut l = format!(
            "calibration: {:.0} datagrams/s of {} bytes over loopback ({:.2} s, {} per system call)",
            self.packets_per_s, self.packet_bytes, self.seconds, self.per_syscall
        );
        if let Some(m) = &self.media {
            l += &format!(
                "; media {:.0} datagrams/s of {} bytes ({} per system call)",
                m.packets_per_s, m.packet_bytes, m.per_syscall
            );
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_sender_has_a_positive_rate() {
        let c = calibrate(
            Ipv4Addr::LOCALHOST.into(),
            &[b'x'; 400],
            Duration::from_millis(50),
        )
        .unwrap();
        assert!(c.packets > 0, "{c:?}");
        assert!(c.packets_per_s > 0.0, "{c:?}");
        assert_eq!(c.packet_bytes, 400);
        assert!(c.seconds >= 0.05, "{c:?}");
        assert!(c.line().contains("400 bytes"), "{}", c.line());
    }

    #[test]
    fn the_sink_takes_in_what_is_sent() {
        let sink = Sink::open(Ipv4Addr::LOCALHOST.into()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            tx.send_to(b"x", sink.addr).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.read.load(Ordering::Relaxed) < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.close(), 10, "a target reads what it is sent");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_bare_batched_media_sender_has_a_positive_rate() {
        let m =
            calibrate_media(Ipv4Addr::LOCALHOST.into(), 1400, Duration::from_millis(50)).unwrap();
        assert!(m.packets_per_s > 0.0, "{m:?}");
        assert_eq!(m.per_syscall, 64);
    }
}
