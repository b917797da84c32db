//! The evidence tap: every packet an endpoint sends or receives, kept in a
//! ring bounded by bytes so a long-running peer stays flat, and optionally
//! written through to a pcap file as it is recorded.

use std::collections::VecDeque;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::Packet;
use crate::capture::pcap::PcapSink;
use crate::proto::Transport;

/// What a [`Tap`] keeps in memory unless told otherwise.
pub const DEFAULT_TAP_BYTES: usize = 16 * 1024 * 1024;

/// What one retained packet costs besides its bytes.
const PACKET_OVERHEAD: usize = std::mem::size_of::<Packet>();

/// What a tap holds and has let go of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Packets in memory now.
    pub packets: usize,
    /// Bytes those packets cost (payload plus bookkeeping).
    pub bytes: usize,
    /// The bound on `bytes`.
    pub capacity: usize,
    /// Packets dropped from memory to stay within the bound.
    pub evicted_packets: u64,
    pub evicted_bytes: u64,
    /// Packets written to the spill file.
    pub spilled_packets: u64,
}

struct Inner {
    ring: VecDeque<Packet>,
    bytes: usize,
    capacity: usize,
    evicted_packets: u64,
    evicted_bytes: u64,
    spill: Option<PcapSink<File>>,
    spilled_packets: u64,
}

impl Inner {
    fn make_room(&mut self, need: usize) {
        while self.bytes + need > self.capacity {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            self.bytes -= old.bytes.len() + PACKET_OVERHEAD;
            self.evicted_packets += 1;
            self.evicted_bytes += old.bytes.len() as u64;
        }
    }
}

/// A shared packet log, bounded by bytes: when full, the oldest packets go
/// first. Cloning shares the log.
#[derive(Clone)]
pub struct Tap(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tap").field(&self.stats()).finish()
    }
}

impl Default for Tap {
    fn default() -> Self {
        Tap::with_capacity(DEFAULT_TAP_BYTES)
    }
}

impl Tap {
    /// A tap that keeps at most `bytes` of packets in memory.
    pub fn with_capacity(bytes: usize) -> Tap {
        Tap(Arc::new(Mutex::new(Inner {
            ring: VecDeque::new(),
            bytes: 0,
            capacity: bytes,
            evicted_packets: 0,
            evicted_bytes: 0,
            spill: None,
            spilled_packets: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the bound; packets over it are dropped at once, oldest first.
    pub fn set_capacity(&self, bytes: usize) {
        let mut t = self.lock();
        t.capacity = bytes;
        t.make_room(0);
    }

    /// Write the packets still in memory, and every packet recorded from
    /// now on, to a pcap file at `path` as well (memory stays bounded; the
    /// file holds everything from the oldest packet kept).
    pub fn spill_to(&self, path: &Path) -> Result<()> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut sink = PcapSink::new(f)?;
        let mut t = self.lock();
        for p in &t.ring {
            sink.write(p)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        t.spilled_packets += t.ring.len() as u64;
        t.spill = Some(sink);
        Ok(())
    }

    pub fn record(&self, src: SocketAddr, dst: SocketAddr, transport: Transport, bytes: &[u8]) {
        self.record_at(SystemTime::now(), src, dst, transport, bytes)
    }

    /// [`Self::record`] with the time the packet left or arrived: a send
    /// is stamped before it starts, so an answer the peer sends back at
    /// once cannot come before it in the evidence.
    pub fn record_at(
        &self,
        time: SystemTime,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) {
        let p = Packet {
            time,
            src,
            dst,
            transport,
            bytes: bytes.to_vec(),
        };
        let mut t = self.lock();
        if let Some(sink) = &mut t.spill {
            match sink.write(&p) {
                Ok(()) => t.spilled_packets += 1,
                Err(e) => {
                    eprintln!("camcert: evidence spill stopped: {e:#}");
                    t.spill = None;
                }
            }
        }
        let cost = p.bytes.len() + PACKET_OVERHEAD;
        if cost > t.capacity {
            t.evicted_packets += 1;
            t.evicted_bytes += p.bytes.len() as u64;
            return;
        }
        t.make_room(cost);
        t.bytes += cost;
        t.ring.push_back(p);
    }

    /// The packets in memory, oldest first.
    pub fn packets(&self) -> Vec<Packet> {
        self.lock().ring.iter().cloned().collect()
    }

    pub fn stats(&self) -> TapStats {
        let t = self.lock();
        TapStats {
            packets: t.ring.len(),
            bytes: t.bytes,
            capacity: t.capacity,
            evicted_packets: t.evicted_packets,
            evicted_bytes: t.evicted_bytes,
            spilled_packets: t.spilled_packets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn ring_stays_within_its_bound_and_keeps_the_newest() {
        let tap = Tap::with_capacity(64 * 1024);
        for i in 0..100_000u32 {
            tap.record(
                addr(1),
                addr(2),
                Transport::Udp,
                &i.to_be_bytes().repeat(64),
            );
        }
        let s = tap.stats();
        assert!(s.bytes <= 64 * 1024, "{s:?}");
        assert!(s.packets > 100, "{s:?}");
        assert_eq!(s.evicted_packets as usize + s.packets, 100_000);
        let last = tap.packets().pop().unwrap();
        assert_eq!(&last.bytes[..4], &99_999u32.to_be_bytes());
    }

    #[test]
    fn default_tap_is_bounded() {
        let tap = Tap::default();
        let chunk = vec![0u8; 60_000];
        for _ in 0..1000 {
            tap.record(addr(1), addr(2), Transport::Tcp, &chunk);
        }
        let s = tap.stats();
        assert!(s.bytes <= DEFAULT_TAP_BYTES, "{s:?}");
        assert!(s.evicted_packets > 0);
    }

    #[test]
    fn shrinking_drops_oldest() {
        let tap = Tap::default();
        for i in 0..10u8 {
            tap.record(addr(1), addr(2), Transport::Udp, &[i; 1000]);
        }
        tap.set_capacity(2 * (1000 + PACKET_OVERHEAD));
        let p = tap.packets();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].bytes[0], 8);
    }

    #[test]
    fn spill_file_holds_every_packet_while_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.pcap");
        let tap = Tap::with_capacity(8 * 1024);
        // What was recorded before the spill started goes first.
        for i in 0..3u32 {
            tap.record(addr(1), addr(2), Transport::Udp, &i.to_be_bytes());
        }
        tap.spill_to(&path).unwrap();
        for i in 3..2000u32 {
            tap.record(addr(1), addr(2), Transport::Udp, &i.to_be_bytes());
        }
        let s = tap.stats();
        assert_eq!(s.spilled_packets, 2000);
        assert!(s.bytes <= 8 * 1024);
        drop(tap);
        let data = std::fs::read(&path).unwrap();
        let mut r = pcap_file::pcap::PcapReader::new(&data[..]).unwrap();
        let mut n = 0u32;
        while let Some(p) = r.next_packet() {
            assert!(p.unwrap().data.ends_with(&n.to_be_bytes()));
            n += 1;
        }
        assert_eq!(n, 2000);
    }
}
