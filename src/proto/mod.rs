//! Pure protocol code: codecs and state machines. Nothing here reads a
//! clock, sleeps, spawns or touches a socket; time comes in as [`Now`] and
//! what to send goes out as [`Transmit`].

pub mod g711;
pub mod gb28181;
pub mod hedgw;
pub mod openapi;
pub mod ps;
pub mod rtp;
pub mod sdp;
pub mod sip;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The current time, handed to a state machine by its driver.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time for timers.
    pub mono: Instant,
    /// Wall-clock time (Beijing time for GB/T 28181 `Date:` headers is the
    /// driver's business: it passes whatever local time it wants to announce).
    pub wall: chrono::NaiveDateTime,
}

impl Now {
    pub fn after(self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            wall: self.wall + chrono::Duration::from_std(d).unwrap_or_default(),
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// Bytes a state machine wants sent to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Scale a protocol-time duration to driver time (`scale` 0.01 runs a 60 s
/// protocol interval in 600 ms).
pub fn scaled(d: Duration, scale: f64) -> Duration {
    Duration::from_secs_f64((d.as_secs_f64() * scale).max(0.0))
}
