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
    })
}

impl Calibration {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        format!(
            "calibration: {:.0} datagrams/s of {} bytes over loopback ({:.2} s, {} per system call)",
            self.packets_per_s, self.packet_bytes, self.seconds, self.per_syscall
        )
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
}
