//! The HeavyKeeper sketch: `rows × width` buckets of (fingerprint, count) that keep the
//! counts of heavy keys nearly exact while light keys wear each other out.
//!
//! The algorithm is from Yang et al., "HeavyKeeper: An Accurate Algorithm for Finding Top-k
//! Elephant Flows" (USENIX ATC 2018); this code is ours. Each key hashes to one bucket per
//! row. A bucket that is empty or holds the key's fingerprint counts it; a bucket held by
//! another key is weakened instead: its count drops by one with probability `b^-count`
//! (exponential-weakening decay), and the key takes the bucket over when it reaches zero.
//! A key with a large count is thus almost never displaced, and a key's estimate (the
//! largest count among its buckets that carry its fingerprint) never exceeds its true count
//! by more than fingerprint collisions allow.

/// The paper's decay base `b`: a bucket holding count `c` loses one with probability
/// `b^-c` when another key lands on it. 1.08 is the value the paper found best.
const DECAY_BASE: f64 = 1.08;
/// Counts at and above this are never decayed: `1.08^-288 < 2^-32`, below what the
/// 32-bit random draw can resolve anyway.
const DECAY_TABLE_LEN: usize = 288;

/// One bucket; `count == 0` means empty (the fingerprint is then meaningless).
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    fingerprint: u32,
    count: u32,
}

/// A HeavyKeeper sketch over 64-bit key hashes. Its memory is fixed at construction:
/// `rows × width` buckets of 8 bytes plus a 1 KiB decay table.
#[derive(Debug)]
pub struct HeavyKeeper {
    width_mask: usize,
    rows: usize,
    buckets: Box<[Bucket]>,
    /// `DECAY_BASE^-c` scaled to `u32::MAX`, for `c` below `DECAY_TABLE_LEN`.
    decay_threshold: Box<[u32]>,
    /// xorshift64* state for the decay draws; seeded, so runs repeat exactly.
    rng: u64,
}

impl HeavyKeeper {
    /// A sketch of `rows` rows of `width` buckets (rounded up to a power of two, at least 1).
    pub fn new(rows: usize, width: usize, seed: u64) -> HeavyKeeper {
        let rows = rows.max(1);
        let width = width.max(1).next_power_of_two();
        let decay_threshold = (0..DECAY_TABLE_LEN)
            .map(|c| {
                let p = DECAY_BASE.powi(-i32::try_from(c).unwrap_or(i32::MAX));
                (p * f64::from(u32::MAX)) as u32
            })
            .collect();
        HeavyKeeper {
            width_mask: width - 1,
            rows,
            buckets: vec![Bucket::default(); rows * width].into_boxed_slice(),
            decay_threshold,
            // xorshift needs a non-zero state.
            rng: seed | 1,
        }
    }

    /// Buckets in the sketch (fixed).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Counts one occurrence of the key with this hash and returns its estimated count.
    pub fn insert(&mut self, hash: u64) -> u32 {
        let fingerprint = fingerprint(hash);
        let mut estimate = 0;
        for row in 0..self.rows {
            let i = self.index(hash, row);
            let bucket = self.buckets[i];
            let count = if bucket.count == 0 {
                self.buckets[i] = Bucket {
                    fingerprint,
                    count: 1,
                };
                1
            } else if bucket.fingerprint == fingerprint {
                let count = bucket.count.saturating_add(1);
                self.buckets[i].count = count;
                count
            } else {
                self.weaken(i);
                continue;
            };
            estimate = estimate.max(count);
        }
        estimate
    }

    /// The estimated count of the key with this hash (0 if no bucket holds it).
    pub fn estimate(&self, hash: u64) -> u32 {
        let fingerprint = fingerprint(hash);
        (0..self.rows)
            .map(|row| self.buckets[self.index(hash, row)])
            .filter(|b| b.count > 0 && b.fingerprint == fingerprint)
            .map(|b| b.count)
            .max()
            .unwrap_or(0)
    }

    /// Halves every count (time decay); buckets that reach zero become empty.
    pub fn halve(&mut self) {
        for b in self.buckets.iter_mut() {
            b.count >>= 1;
        }
    }

    /// Decays bucket `i`, held by another key, with probability `b^-count`; a bucket
    /// worn down to zero goes to the next key that lands on it.
    fn weaken(&mut self, i: usize) {
        let count = self.buckets[i].count;
        let Some(&threshold) = self.decay_threshold.get(count as usize) else {
            return;
        };
        if self.next_u32() < threshold {
            self.buckets[i].count = count - 1;
        }
    }

    fn index(&self, hash: u64, row: usize) -> usize {
        // One multiply-xorshift per row gives independent-enough positions from one hash.
        let h = (hash ^ ROW_SALT[row % ROW_SALT.len()]).wrapping_mul(MIX_MULTIPLIER);
        let h = h ^ (h >> 29);
        row * (self.width_mask + 1) + (h as usize & self.width_mask)
    }

    fn next_u32(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// Odd 64-bit constant (from SplitMix64) that spreads the salted hash's bits.
const MIX_MULTIPLIER: u64 = 0xbf58_476d_1ce4_e5b9;
/// Per-row salts (digits of pi); rows beyond eight reuse them, which only matters for
/// sketches far deeper than the paper recommends (2 to 4 rows).
const ROW_SALT: [u64; 8] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6c,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
];

/// The fingerprint kept in a bucket: the hash's high half, which the bucket index
/// (computed from the salted whole) does not determine.
fn fingerprint(hash: u64) -> u32 {
    (hash >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_alone_is_counted_exactly() {
        let mut s = HeavyKeeper::new(2, 64, 7);
        for i in 1..=1000 {
            assert_eq!(s.insert(42), i);
        }
        assert_eq!(s.estimate(42), 1000);
        assert_eq!(s.estimate(43), 0);
    }

    #[test]
    fn a_heavy_key_survives_a_flood_of_light_ones() {
        let mut s = HeavyKeeper::new(2, 16, 7);
        for _ in 0..500 {
            s.insert(1);
        }
        for k in 2..100_000u64 {
            s.insert(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(s.estimate(1) >= 490, "{}", s.estimate(1));
    }

    #[test]
    fn halving_halves_and_empties() {
        let mut s = HeavyKeeper::new(2, 64, 7);
        for _ in 0..10 {
            s.insert(5);
        }
        s.insert(6);
        s.halve();
        assert_eq!(s.estimate(5), 5);
        assert_eq!(s.estimate(6), 0);
    }
}
