//! How fast this machine sends bare datagrams over loopback: the ceiling a
//! load run's send rate is read against. A sender with the fleet's socket
//! setup (one non-blocking UDP socket, one `send_to` per datagram, as the
//! fleet is not batched) sends one of the fleet's own REGISTER requests
//! again and again to a loopback socket nobody reads, for a fixed time.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// How long the calibration sends.
pub const CALIBRATION_TIME: Duration = Duration::from_secs(1);

/// Sends between two looks at the clock.
const CHUNK: u32 = 64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Datagrams sent per second by the bare sender.
    pub packets_per_s: f64,
    pub packets: u64,
    pub packet_bytes: usize,
    pub seconds: f64,
    /// Datagrams per system call (1: one `send_to` each, as the fleet).
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

/// Send `packet_bytes`-byte datagrams in batches of
/// [`BATCH`](super::media::BATCH) per system call from a fresh socket on
/// loopback to a socket nobody reads, for `time`.
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
    let sink = UdpSocket::bind(SocketAddr::new(lo, 0)).context("binding the calibration sink")?;
    let to = sink.local_addr()?;
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
    drop(sink);
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
    let sink = UdpSocket::bind(SocketAddr::new(lo, 0)).context("binding the calibration sink")?;
    let to = sink.local_addr()?;
    let sock = UdpSocket::bind(SocketAddr::new(lo, 0)).context("binding the calibration sender")?;
    // The fleet's sockets are non-blocking (tokio) and try a send first.
    sock.set_nonblocking(true)?;
    let t0 = Instant::now();
    let end = t0 + time;
    let (mut packets, mut would_block) = (0u64, 0u64);
    let mut now = t0;
    while now < end {
        for _ in 0..CHUNK {
            match sock.send_to(packet, to) {
                Ok(_) => packets += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => would_block += 1,
                Err(e) => return Err(e).context("sending a calibration datagram"),
            }
        }
        now = Instant::now();
    }
    let seconds = (now - t0).as_secs_f64();
    drop(sink);
    Ok(Calibration {
        packets_per_s: packets as f64 / seconds,
        packets,
        packet_bytes: packet.len(),
        seconds,
        per_syscall: 1,
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

    #[cfg(target_os = "linux")]
    #[test]
    fn a_bare_batched_media_sender_has_a_positive_rate() {
        let m =
            calibrate_media(Ipv4Addr::LOCALHOST.into(), 1400, Duration::from_millis(50)).unwrap();
        assert!(m.packets_per_s > 0.0, "{m:?}");
        assert_eq!(m.per_syscall, 64);
    }
}
