//! Hot-key detection: which keys take a large share of this node's key accesses right now.
//!
//! # Design
//! - [`HotKeyDetector`] (this file, sans-IO) owns a [`heavy_keeper::HeavyKeeper`] sketch
//!   (Yang et al., "HeavyKeeper: An Accurate Algorithm for Finding Top-k Elephant Flows",
//!   USENIX ATC 2018) and a [`top_k::TopK`] list of the keys with the largest estimates.
//!   Both have fixed sizes, so memory is constant whatever the keyspace. Time is a
//!   parameter (`now_millis`), so tests drive it.
//! - **Time decay**: every [`DECAY_PERIOD_MILLIS`] all counts (sketch, top-k and the
//!   total) are halved, so a count weighs recent accesses with a half-life of one period.
//!   In steady state a key accessed `r` times a second holds `r·P·(1 + f)` at a fraction
//!   `f` of the way through the period `P`, which is how [`HotKeyDetector::rates`] turns
//!   counts back into operations per second.
//! - A key is **hot** when its rate is at least `min_share` of all key accesses the
//!   detector saw (decayed the same way, so a key that just became hot is compared with a
//!   total of the same age) and at least `min_rate` operations per second ([`is_hot`]).
//! - Feeding ([`monitor`], [`sampler`]): each connection samples the keys of its keyed
//!   commands into a fixed batch and hands full batches to one background task through a
//!   bounded channel; a full channel drops the batch and counts the dropped samples. No
//!   lock is shared by the connections.

pub mod heavy_keeper;
pub mod monitor;
pub mod sampler;
pub mod top_k;

use bytes::Bytes;

use heavy_keeper::HeavyKeeper;
use top_k::{TopK, MAX_TRACKED_KEY_BYTES};

/// Counts halve once per period: rates reflect roughly the last one to two seconds, and a
/// key that stops being accessed falls below a 10× smaller threshold in about four periods.
pub const DECAY_PERIOD_MILLIS: u64 = 1_000;
/// Sketch rows. The paper finds 2 enough; more rows cost a bucket visit each per sample.
const SKETCH_ROWS: usize = 2;
/// Sketch buckets per row at the least; 2 × 2048 × 8 bytes = 32 KiB. Measured on Zipf
/// workloads (the tests below) this finds the exact top-10 at α 0.8..1.2 over 100k keys.
const MIN_SKETCH_WIDTH: usize = 2048;
/// Buckets per row per top-k slot, so a larger `hotkeys-top-k` gets a wider sketch.
const SKETCH_WIDTH_PER_TRACKED_KEY: usize = 64;
/// Seed of the sketch's decay draws (fixed: the detector's behaviour repeats exactly).
const SKETCH_SEED: u64 = 0x5eed_cac4_a107;

/// One key with its estimated rate.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRate {
    /// The key.
    pub key: Bytes,
    /// Estimated accesses per second.
    pub rate: u64,
}

/// The detector's view at one moment: tracked keys hottest first, and the total rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Estimated key accesses per second over all keys.
    pub total: u64,
    /// Tracked keys, highest rate first.
    pub keys: Vec<KeyRate>,
}

impl Rates {
    /// The keys that are hot under these thresholds, hottest first.
    pub fn hot(&self, min_share: f64, min_rate: u64) -> impl Iterator<Item = &KeyRate> {
        let total = self.total;
        self.keys
            .iter()
            .filter(move |k| is_hot(k.rate, total, min_share, min_rate))
    }
}

/// Whether a key at `rate` is hot on a node doing `total` key accesses a second.
pub fn is_hot(rate: u64, total: u64, min_share: f64, min_rate: u64) -> bool {
    rate >= min_rate && rate as f64 >= min_share * total as f64
}

/// The sans-IO hot-key estimator: feed it keys with the time, ask it for rates.
#[derive(Debug)]
pub struct HotKeyDetector {
    sketch: HeavyKeeper,
    top: TopK,
    /// Key accesses seen, decayed like the counts.
    total: u64,
    /// When counts were last halved.
    last_decay_millis: u64,
}

impl HotKeyDetector {
    /// A detector tracking up to `top_k` keys, starting at `now_millis`.
    pub fn new(top_k: usize, now_millis: u64) -> HotKeyDetector {
        let width = MIN_SKETCH_WIDTH.max(top_k.saturating_mul(SKETCH_WIDTH_PER_TRACKED_KEY));
        HotKeyDetector {
            sketch: HeavyKeeper::new(SKETCH_ROWS, width, SKETCH_SEED),
            top: TopK::new(top_k),
            total: 0,
            last_decay_millis: now_millis,
        }
    }

    /// Records one access to `key` at `now_millis`. A key longer than
    /// [`MAX_TRACKED_KEY_BYTES`] counts towards the total but is not tracked.
    pub fn record(&mut self, key: &[u8], now_millis: u64) {
        self.advance(now_millis);
        self.total += 1;
        if key.len() > MAX_TRACKED_KEY_BYTES {
            return;
        }
        let hash = xxhash_rust::xxh3::xxh3_64(key);
        let estimate = self.sketch.insert(hash);
        self.top.offer(hash, key, estimate);
    }

    /// Records `n` accesses to keys that are not tracked (too long to store).
    pub fn record_untracked(&mut self, n: u64, now_millis: u64) {
        self.advance(now_millis);
        self.total += n;
    }

    /// Applies the halvings due by `now_millis`. Time that goes backwards changes nothing.
    pub fn advance(&mut self, now_millis: u64) {
        // After 32 halvings every count is zero; skip the rest of a long gap at once.
        const MAX_HALVINGS: u32 = 32;
        let periods = now_millis.saturating_sub(self.last_decay_millis) / DECAY_PERIOD_MILLIS;
        if periods == 0 {
            return;
        }
        for _ in 0..periods.min(u64::from(MAX_HALVINGS)) {
            self.sketch.halve();
            self.top.halve();
            self.total >>= 1;
        }
        self.last_decay_millis += periods * DECAY_PERIOD_MILLIS;
    }

    /// Tracked keys and the total as accesses per second at `now_millis`, each count
    /// multiplied by `scale` (how many accesses one recorded access stands for: the
    /// sampling interval, times a correction for dropped samples).
    pub fn rates(&mut self, now_millis: u64, scale: f64) -> Rates {
        self.advance(now_millis);
        let into_period = now_millis.saturating_sub(self.last_decay_millis) as f64;
        // Steady state: count = rate × P × (1 + f); see the module docs.
        let seconds =
            DECAY_PERIOD_MILLIS as f64 / 1000.0 * (1.0 + into_period / DECAY_PERIOD_MILLIS as f64);
        let per_sec = |count: u64| (count as f64 * scale / seconds).round() as u64;
        Rates {
            total: per_sec(self.total),
            keys: self
                .top
                .sorted()
                .into_iter()
                .map(|e| KeyRate {
                    key: e.key,
                    rate: per_sec(u64::from(e.count)),
                })
                .collect(),
        }
    }

    /// Keys tracked now (at most `top_k`).
    pub fn tracked(&self) -> usize {
        self.top.len()
    }

    /// Sketch buckets (fixed at construction).
    pub fn sketch_buckets(&self) -> usize {
        self.sketch.bucket_count()
    }

    /// The top-k's capacity (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.top.capacity()
    }
}

#[cfg(test)]
mod tests;
