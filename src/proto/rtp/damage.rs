//! Seeded damage to an outgoing RTP/PS stream, for robustness runs: each
//! packet is, with probability `rate`, broken in one way a faulty encoder,
//! network or attacker breaks it. Pure: the same seed and packets give the
//! same damage.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// RTP fixed header length (RFC 3550 §5.1).
const HEADER: usize = 12;

/// What a robustness run asks of the sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DamageConfig {
    pub seed: u64,
    /// Share of packets damaged, 0 to 1.
    pub rate: f64,
}

/// The ways a packet is damaged, by the name reports count them under.
pub const KINDS: [&str; 8] = [
    "bit-flips",
    "truncated",
    "sequence-jump",
    "timestamp-jump",
    "payload-type",
    "duplicated",
    "dropped",
    "psm-length",
];

pub struct Damage {
    rng: StdRng,
    rate: f64,
    counts: BTreeMap<&'static str, u64>,
}

impl Damage {
    pub fn new(cfg: DamageConfig) -> Damage {
        Damage {
            rng: StdRng::seed_from_u64(cfg.seed),
            rate: cfg.rate.clamp(0.0, 1.0),
            counts: BTreeMap::new(),
        }
    }

    /// Packets damaged so far, by kind.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Damage some of one frame's packets, in place.
    pub fn apply(&mut self, packets: &mut Vec<Bytes>) {
        let mut out = Vec::with_capacity(packets.len() + 1);
        for p in packets.drain(..) {
            if p.len() <= HEADER || !self.rng.gen_bool(self.rate) {
                out.push(p);
                continue;
            }
            let kind = KINDS[self.rng.gen_range(0..KINDS.len())];
            let mut b = BytesMut::from(&p[..]);
            match kind {
                "bit-flips" => {
                    for _ in 0..self.rng.gen_range(1..=8) {
                        let i = self.rng.gen_range(HEADER..b.len());
                        b[i] ^= 1 << self.rng.gen_range(0..8);
                    }
                }
                "truncated" => {
                    let keep = self.rng.gen_range(HEADER..b.len());
                    b.truncate(keep);
                }
                "sequence-jump" => {
                    let seq = u16::from_be_bytes([b[2], b[3]])
                        .wrapping_add(self.rng.gen_range(100..30_000));
                    b[2..4].copy_from_slice(&seq.to_be_bytes());
                }
                "timestamp-jump" => {
                    let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]])
                        .wrapping_add(self.rng.gen_range(90_000..90_000 * 3600));
                    b[4..8].copy_from_slice(&ts.to_be_bytes());
                }
                "payload-type" => {
                    b[1] = (b[1] & 0x80) | self.rng.gen_range(0..=127u8);
                }
                "duplicated" => {
                    out.push(p.clone());
                }
                "dropped" => {
                    *self.counts.entry(kind).or_default() += 1;
                    continue;
                }
                _ => {
                    // The PSM's length field (ISO/IEC 13818-1 §2.5.4.1),
                    // where this packet carries one; else flip a bit.
                    match b.windows(4).position(|w| w == [0, 0, 1, 0xBC]) {
                        Some(i) if i + 6 <= b.len() => {
                            let v: u16 = self.rng.gen();
                            b[i + 4..i + 6].copy_from_slice(&v.to_be_bytes());
                        }
                        _ => {
                            let i = self.rng.gen_range(HEADER..b.len());
                            b[i] ^= 0x80;
                        }
                    }
                }
            }
            *self.counts.entry(kind).or_default() += 1;
            out.push(b.freeze());
        }
        *packets = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| {
                let mut p = vec![0x80, 96, 0, i as u8, 0, 0, 0, 0, 1, 2, 3, 4];
                p.extend_from_slice(&[0, 0, 1, 0xBC, 0, 20]);
                p.extend(std::iter::repeat_n(i as u8, 200));
                Bytes::from(p)
            })
            .collect()
    }

    fn run(seed: u64, rate: f64) -> (Vec<Bytes>, BTreeMap<&'static str, u64>) {
        let mut d = Damage::new(DamageConfig { seed, rate });
        let mut all = Vec::new();
        for _ in 0..50 {
            let mut p = packets(20);
            d.apply(&mut p);
            all.extend(p);
        }
        (all, d.counts().clone())
    }

    #[test]
    fn the_same_seed_damages_the_same_way() {
        assert_eq!(run(3, 0.3), run(3, 0.3));
        assert_ne!(run(3, 0.3).0, run(4, 0.3).0);
    }

    #[test]
    fn the_rate_is_kept_and_every_kind_happens() {
        let (_, counts) = run(1, 0.25);
        let total: u64 = counts.values().sum();
        assert!((200..300).contains(&total), "{total} of 1000");
        for k in KINDS {
            assert!(counts.get(k).copied().unwrap_or(0) > 0, "{k}: {counts:?}");
        }
        let (clean, none) = run(1, 0.0);
        assert!(none.is_empty());
        assert_eq!(clean, (0..50).flat_map(|_| packets(20)).collect::<Vec<_>>());
    }

    #[test]
    fn damage_keeps_the_rtp_header() {
        let (all, _) = run(9, 1.0);
        assert!(all.iter().all(|p| p.len() >= HEADER && p[0] == 0x80));
    }
}
