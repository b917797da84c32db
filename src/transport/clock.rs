//! The one place time is read. State machines get it as [`Now`].

use std::time::Instant;

use crate::proto::Now;

pub trait Clock: Send + Sync {
    fn now(&self) -> Now;
}

/// Monotonic time from the OS; wall time in the local zone (GB/T 28181
/// §校时 announces local, i.e. Beijing, time).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now {
            mono: Instant::now(),
            wall: chrono::Local::now().naive_local(),
        }
    }
}
