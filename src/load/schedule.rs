//! When each simulated camera next needs the CPU: one deadline heap for the
//! whole fleet, and the ramp that spaces out first registrations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Deadlines of many machines in one heap. Rescheduling pushes a new entry
/// and leaves the old one in place; an entry that no longer matches its
/// machine's current deadline is skipped when it comes up (lazy
/// invalidation), so every operation is O(log n).
#[derive(Debug)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
    due: Vec<Option<Instant>>,
}

impl Timers {
    pub fn new(n: usize) -> Timers {
        Timers {
            heap: BinaryHeap::with_capacity(n * 2),
            due: vec![None; n],
        }
    }

    /// Set machine `i`'s deadline (`None`: it needs no wake-up).
    pub fn schedule(&mut self, i: u32, at: Option<Instant>) {
        let slot = &mut self.due[i as usize];
        if *slot == at {
            return;
        }
        *slot = at;
        if let Some(at) = at {
            self.heap.push(Reverse((at, i)));
        }
        // Stale entries are dropped as they come due; rebuild when they
        // would outnumber live ones by far.
        if self.heap.len() > 4 * self.due.len() + 1024 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let live: Vec<_> = self
            .due
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|at| Reverse((at, i as u32))))
            .collect();
        self.heap = BinaryHeap::from(live);
    }

    /// The next machine whose deadline is at or before `now`, with that
    /// deadline; it is unscheduled until scheduled again.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32)> {
        while let Some(Reverse((at, i))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if self.due[i as usize] == Some(at) {
                self.due[i as usize] = None;
                return Some((at, i));
            }
        }
        None
    }

    /// The earliest deadline (possibly a stale, earlier one: waking early
    /// is harmless).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// First registrations at a constant rate: camera `k` starts at
/// `t0 + k / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Ramp {
    pub t0: Instant,
    pub per_second: f64,
    pub count: u32,
}

impl Ramp {
    pub fn start_of(&self, k: u32) -> Instant {
        self.t0 + Duration::from_secs_f64(k as f64 / self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescheduled_entries_fire_once_at_their_latest_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Timers::new(3);
        t.schedule(0, Some(t0 + s(5)));
        t.schedule(1, Some(t0 + s(1)));
        t.schedule(1, Some(t0 + s(3))); // moved later: the 1 s entry is stale
        t.schedule(2, Some(t0 + s(2)));
        t.schedule(2, None); // cancelled
        assert_eq!(t.next(), Some(t0 + s(1)));
        assert_eq!(
            t.pop_due(t0 + s(2)),
            None,
            "stale and cancelled entries do not fire"
        );
        assert_eq!(t.pop_due(t0 + s(4)), Some((t0 + s(3), 1)));
        assert_eq!(t.pop_due(t0 + s(4)), None);
        assert_eq!(t.pop_due(t0 + s(9)), Some((t0 + s(5), 0)));
        assert!(t.is_empty());
    }

    #[test]
    fn the_heap_stays_bounded_under_constant_rescheduling() {
        let t0 = Instant::now();
        let mut t = Timers::new(10);
        for k in 0..100_000u64 {
            t.schedule((k % 10) as u32, Some(t0 + Duration::from_micros(k)));
        }
        assert!(t.len() <= 4 * 10 + 1024 + 1, "{}", t.len());
        let mut fired = 0;
        while t.pop_due(t0 + Duration::from_secs(1)).is_some() {
            fired += 1;
        }
        assert_eq!(fired, 10);
    }

    #[test]
    fn the_ramp_spaces_starts_evenly() {
        let t0 = Instant::now();
        let r = Ramp {
            t0,
            per_second: 2000.0,
            count: 10_000,
        };
        assert_eq!(r.start_of(0), t0);
        assert_eq!(r.start_of(2000), t0 + Duration::from_secs(1));
        assert_eq!(
            r.start_of(9_999) - r.start_of(9_998),
            Duration::from_micros(500)
        );
    }
}
