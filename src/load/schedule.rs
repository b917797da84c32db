//! When each simulated camera next needs the CPU: one deadline heap for the
//! whole fleet, and the ramp that spaces out first registrations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Deadlines of many machines in one heap, with at most one live entry
/// per machine. A machine whose deadline moves later keeps its entry:
/// when that comes up, the entry goes back in at the current deadline. One
/// that moves earlier gets a new entry, and the old one is skipped when it
/// comes up (lazy invalidation). A camera's deadline mostly moves later
/// (a request's retransmission timer, then its answer's refresh), so most
/// reschedules touch no heap at all; every operation is O(log n).
///
/// An entry is one `u128`: the deadline in nanoseconds from the heap's
/// base above the machine's index. Entries of 16 bytes (an
/// `(Instant, u32)` pair takes 24), compared in one step, keep a heap of
/// tens of thousands of deadlines in cache.
#[derive(Debug)]
pub struct Timers {
    base: Instant,
    heap: BinaryHeap<Reverse<u128>>,
    /// Each machine's deadline as a key's upper half ([`NONE`]: none).
    due: Vec<u64>,
    /// The key of each machine's live heap entry ([`NONE`]: none); never
    /// later than its deadline.
    queued: Vec<u64>,
}

/// No deadline.
const NONE: u64 = u64::MAX;

fn entry(key: u64, i: u32) -> Reverse<u128> {
    Reverse(u128::from(key) << 32 | u128::from(i))
}

impl Timers {
    pub fn new(n: usize) -> Timers {
        Timers {
            base: Instant::now(),
            heap: BinaryHeap::with_capacity(n * 2),
            due: vec![NONE; n],
            queued: vec![NONE; n],
        }
    }

    /// Nanoseconds from the base (a deadline before the base counts as
    /// the base: it is due at once either way). 2^64 ns is 584 years.
    fn offset(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.base).as_nanos();
        ns.min(u128::from(NONE - 1)) as u64
    }

    fn instant(&self, offset: u64) -> Instant {
        self.base + Duration::from_nanos(offset)
    }

    /// Set machine `i`'s deadline (`None`: it needs no wake-up).
    pub fn schedule(&mut self, i: u32, at: Option<Instant>) {
        let key = at.map_or(NONE, |at| self.offset(at));
        self.due[i as usize] = key;
        // An entry at or before the deadline is already in: it serves.
        if key == NONE || key >= self.queued[i as usize] {
            return;
        }
        self.queued[i as usize] = key;
        self.heap.push(entry(key, i));
        // Superseded entries are dropped as they come due; rebuild when
        // they would outnumber live ones by far.
        if self.heap.len() > 4 * self.due.len() + 1024 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.queued.clone_from(&self.due);
        let live: Vec<_> = self
            .due
            .iter()
            .enumerate()
            .filter(|(_, d)| **d != NONE)
            .map(|(i, d)| entry(*d, i as u32))
            .collect();
        self.heap = BinaryHeap::from(live);
    }

    /// The next machine whose deadline is at or before `now`, with that
    /// deadline; it is unscheduled until scheduled again.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32)> {
        let now = self.offset(now);
        while let Some(Reverse(top)) = self.heap.peek().copied() {
            let (key, i) = ((top >> 32) as u64, top as u32);
            if key > now {
                return None;
            }
            self.heap.pop();
            let k = i as usize;
            if self.queued[k] != key {
                // Superseded by an earlier entry.
                continue;
            }
            self.queued[k] = NONE;
            let due = self.due[k];
            if due == key {
                self.due[k] = NONE;
                return Some((self.instant(key), i));
            }
            if due != NONE {
                // Moved later meanwhile: back in at its deadline.
                self.queued[k] = due;
                self.heap.push(entry(due, i));
            }
        }
        None
    }

    /// The earliest deadline (possibly an earlier one than any machine
    /// has now: waking early is harmless).
    pub fn next(&self) -> Option<Instant> {
        self.heap
            .peek()
            .map(|Reverse(top)| self.instant((top >> 32) as u64))
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
    fn random_schedules_fire_as_a_plain_model_says() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 50;
        let mut t = Timers::new(n);
        let t0 = Instant::now();
        // The model: each machine's one current deadline.
        let mut model: Vec<Option<Instant>> = vec![None; n];
        let mut now = t0;
        for _ in 0..20_000 {
            let i = rng.gen_range(0..n);
            if rng.gen_bool(0.8) {
                let at = now + Duration::from_nanos(rng.gen_range(0..5_000_000));
                t.schedule(i as u32, Some(at));
                model[i] = Some(at);
            } else {
                t.schedule(i as u32, None);
                model[i] = None;
            }
            if rng.gen_bool(0.3) {
                now += Duration::from_nanos(rng.gen_range(0..2_000_000));
                let mut fired = Vec::new();
                while let Some((at, i)) = t.pop_due(now) {
                    assert_eq!(model[i as usize], Some(at), "machine {i}");
                    model[i as usize] = None;
                    fired.push(at);
                }
                assert!(fired.windows(2).all(|w| w[0] <= w[1]), "in deadline order");
                assert!(model.iter().flatten().all(|at| *at > now), "all due fired");
            }
        }
    }

    #[test]
    fn a_deadline_moved_later_keeps_its_entry_and_fires_at_the_new_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::new(1);
        t.schedule(0, Some(t0 + ms(500)));
        t.schedule(0, Some(t0 + ms(900)));
        t.schedule(0, Some(t0 + ms(1_800_000)));
        assert_eq!(t.len(), 1, "moving later pushes nothing");
        assert_eq!(t.pop_due(t0 + ms(600)), None, "the old time does not fire");
        assert_eq!(t.len(), 1, "the entry went back in at the new time");
        assert_eq!(t.next(), Some(t0 + ms(1_800_000)));
        t.schedule(0, Some(t0 + ms(700)));
        assert_eq!(t.len(), 2, "moving earlier pushes a new entry");
        assert_eq!(t.pop_due(t0 + ms(700)), Some((t0 + ms(700), 0)));
        assert_eq!(
            t.pop_due(t0 + ms(3_600_000)),
            None,
            "the superseded one is skipped"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn a_deadline_before_the_heap_was_made_is_due_at_once() {
        let early = Instant::now();
        let mut t = Timers::new(1);
        t.schedule(0, Some(early));
        assert!(t.pop_due(Instant::now()).is_some());
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
