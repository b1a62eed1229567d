//! Access statistics: per-entry recency and frequency, and per-shard operation counters.
//!
//! What an access records depends on the policy ([`Tracking`]), so that the policies that
//! do not need it pay nothing for it:
//! - the last-access time (`OBJECT IDLETIME`, sampled LRU) is always recorded: it is one
//!   store into the entry, which the lookup has just brought into cache anyway;
//! - the logarithmic frequency counter (LFU, `OBJECT FREQ`), with its random draw, only
//!   under `allkeys-lfu` and `volatile-lfu`. Under other policies it keeps its last value
//!   and keeps decaying with time, so after a switch to an LFU policy counters start from
//!   that stale (low) value and adjust as keys are read: Redis's caveat that LRU and LFU
//!   data "take some time to adjust" after a switch, in a milder form;
//! - the exact LRU list (`crate::shard::lru`) only under `allkeys-lru`, the one policy
//!   that evicts from it; switching into that policy rebuilds it from the last-access
//!   times ([`Cache::set_policy`](crate::Cache::set_policy)).

mod sketch;

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

pub(crate) use sketch::FrequencySketch;

use crate::shard::tiny_lfu::Segment;

/// The counter a new entry starts with, so a fresh key is not the first LFU victim before it
/// had a chance to be read again. Redis calls it `LFU_INIT_VAL` and uses 5.
pub(crate) const LFU_INITIAL_COUNTER: u8 = 5;

/// Redis's default `lfu-log-factor`: about a million hits saturate the 8-bit counter.
pub(crate) const DEFAULT_LFU_LOG_FACTOR: u32 = 10;

/// Redis's default `lfu-decay-time`: the counter loses one point per idle minute.
pub(crate) const DEFAULT_LFU_DECAY_MINUTES: u32 = 1;

/// Milliseconds in the LFU decay unit.
const MILLIS_PER_MINUTE: u64 = 60_000;

/// The LFU knobs, with Redis's names and meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LfuConfig {
    /// `lfu-log-factor`: higher means slower counter growth.
    pub(crate) log_factor: u32,
    /// `lfu-decay-time` in minutes: idle periods after which the counter drops by one;
    /// 0 disables decay.
    pub(crate) decay_minutes: u32,
}

impl Default for LfuConfig {
    fn default() -> Self {
        Self {
            log_factor: DEFAULT_LFU_LOG_FACTOR,
            decay_minutes: DEFAULT_LFU_DECAY_MINUTES,
        }
    }
}

/// Which access statistics the shards keep up to date, derived from the policy
/// ([`Policy::tracking`](crate::Policy)). Each shard holds its own copy, changed under its
/// lock by `set_policy`, so a shard's LRU list and its flag never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tracking {
    /// Keep the shard's exact LRU list (`allkeys-lru`).
    pub(crate) lru_list: bool,
    /// Count accesses in the LFU counter (`allkeys-lfu`, `volatile-lfu`).
    pub(crate) frequency: bool,
    /// Keep the W-TinyLFU segments and frequency sketch (`allkeys-tinylfu`).
    pub(crate) tiny_lfu: bool,
}

impl Tracking {
    /// Everything the LRU and LFU policies keep: what unit tests of victim selection use.
    /// (The TinyLFU segments reuse the LRU list's links, so they are never on with it.)
    #[cfg(test)]
    pub(crate) const ALL: Tracking = Tracking {
        lru_list: true,
        frequency: true,
        tiny_lfu: false,
    };
}

/// One entry's access record: last access and a Morris-style logarithmic counter.
///
/// The counter follows Redis's LFU design (`evict.c`, "LFU (Least Frequently Used)
/// implementation"): an 8-bit counter incremented with probability
/// `1 / ((counter - LFU_INIT_VAL) * lfu_log_factor + 1)` and decremented by one for every
/// `lfu_decay_time` minutes since the last access. The code is ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    /// Unix millis of the last recorded access (or of the write that created the entry).
    last_millis: u64,
    /// Unix minutes at which `counter` was last decayed/incremented.
    lfu_minutes: u32,
    /// The logarithmic access counter, before decay since `lfu_minutes`.
    counter: u8,
    /// The W-TinyLFU segment the entry is in (meaningful only under `allkeys-tinylfu`).
    /// Kept here, in what would be padding, so it costs no byte per entry.
    pub(crate) segment: Segment,
}

impl Access {
    /// The record of an entry written at `now_millis`.
    pub(crate) fn new(now_millis: u64) -> Self {
        Self {
            last_millis: now_millis,
            lfu_minutes: minutes(now_millis),
            counter: LFU_INITIAL_COUNTER,
            segment: Segment::Window,
        }
    }

    /// Records one access in full: recency and the LFU counter.
    #[cfg(test)]
    pub(crate) fn touch(&mut self, now_millis: u64, lfu: LfuConfig, rng: &mut impl Rng) {
        self.record_recency(now_millis);
        self.record_frequency(now_millis, lfu, rng);
    }

    /// Records the time of an access (never moving it backwards).
    pub(crate) fn record_recency(&mut self, now_millis: u64) {
        self.last_millis = self.last_millis.max(now_millis);
    }

    /// Counts an access in the LFU counter: decays it for the idle time, then maybe
    /// increments it.
    pub(crate) fn record_frequency(&mut self, now_millis: u64, lfu: LfuConfig, rng: &mut impl Rng) {
        let mut counter = self.frequency(now_millis, lfu);
        if counter < u8::MAX {
            let base = f64::from(counter.saturating_sub(LFU_INITIAL_COUNTER));
            let p = 1.0 / (base * f64::from(lfu.log_factor) + 1.0);
            if rng.gen::<f64>() < p {
                counter += 1;
            }
        }
        self.counter = counter;
        self.lfu_minutes = minutes(now_millis);
    }

    /// The counter as of `now_millis`, decayed but not written back (`OBJECT FREQ`). Under a
    /// policy that does not count frequency, the value last counted, decayed since.
    pub(crate) fn frequency(&self, now_millis: u64, lfu: LfuConfig) -> u8 {
        if lfu.decay_minutes == 0 {
            return self.counter;
        }
        let idle = minutes(now_millis).saturating_sub(self.lfu_minutes);
        let periods = idle / lfu.decay_minutes;
        let periods = u8::try_from(periods).unwrap_or(u8::MAX);
        self.counter.saturating_sub(periods)
    }

    /// Unix millis of the last access.
    pub(crate) fn last_millis(&self) -> u64 {
        self.last_millis
    }

    /// Milliseconds since the last access (`OBJECT IDLETIME`, in ms).
    pub(crate) fn idle_millis(&self, now_millis: u64) -> u64 {
        now_millis.saturating_sub(self.last_millis)
    }
}

/// Unix minutes, saturating at `u32::MAX` (year 10136).
fn minutes(millis: u64) -> u32 {
    u32::try_from(millis / MILLIS_PER_MINUTE).unwrap_or(u32::MAX)
}

/// Totals over the cache's life, from [`Cache::stats`](crate::Cache::stats).
///
/// Hits and misses count [`get`](crate::Cache::get) and [`get_with`](crate::Cache::get_with)
/// only (Redis's `keyspace_hits`/`keyspace_misses`); `inserts` counts values stored by
/// `insert*` and by [`Entry::insert`](crate::Entry::insert); `evictions` and `expirations`
/// count entries removed with those causes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (or only an expired entry).
    pub misses: u64,
    /// Values stored.
    pub inserts: u64,
    /// Entries removed to respect a bound.
    pub evictions: u64,
    /// Entries removed because their expiry time passed.
    pub expirations: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits.saturating_add(self.misses);
        if reads == 0 {
            0.0
        } else {
            // Precision loss above 2^53 reads is irrelevant for a ratio.
            #[allow(clippy::cast_precision_loss)]
            let ratio = self.hits as f64 / reads as f64;
            ratio
        }
    }
}

/// One shard's counters, on their own cache lines so that shards never share one.
///
/// Written only by the holder of the owning shard's lock (so relaxed increments never
/// race with each other); read without the lock by [`Cache::stats`](crate::Cache::stats),
/// `len` estimates and `expiring_len`.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ShardStats {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    /// Live entries in the shard (expired-but-not-yet-removed included).
    len: AtomicU64,
    /// Entries in the shard that have an expiry time.
    expiring: AtomicU64,
}

/// Adds `n` to a counter only the shard's lock holder writes. Holders are serialized by the
/// lock (which orders each holder's store before the next holder's load), so a plain load
/// and store suffice: no read-modify-write instruction on the hot path. Lock-free readers
/// see some recent value, as with `fetch_add`.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl ShardStats {
    pub(crate) fn record_hit(&self) {
        bump(&self.hits, 1);
    }
    pub(crate) fn record_miss(&self) {
        bump(&self.misses, 1);
    }
    pub(crate) fn record_insert(&self) {
        bump(&self.inserts, 1);
    }
    pub(crate) fn record_eviction(&self) {
        bump(&self.evictions, 1);
    }
    pub(crate) fn record_expiration(&self) {
        bump(&self.expirations, 1);
    }
    /// Publishes the shard's current entry count and expiring-entry count.
    pub(crate) fn publish_sizes(&self, len: u64, expiring: u64) {
        self.len.store(len, Ordering::Relaxed);
        self.expiring.store(expiring, Ordering::Relaxed);
    }
    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }
    pub(crate) fn expiring(&self) -> u64 {
        self.expiring.load(Ordering::Relaxed)
    }

    /// Adds this shard's counters to `total`.
    pub(crate) fn add_to(&self, total: &mut CacheStats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        total.hits = total.hits.saturating_add(get(&self.hits));
        total.misses = total.misses.saturating_add(get(&self.misses));
        total.inserts = total.inserts.saturating_add(get(&self.inserts));
        total.evictions = total.evictions.saturating_add(get(&self.evictions));
        total.expirations = total.expirations.saturating_add(get(&self.expirations));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn a_new_entry_starts_at_the_initial_counter() {
        let a = Access::new(1_000);
        assert_eq!(
            a.frequency(1_000, LfuConfig::default()),
            LFU_INITIAL_COUNTER
        );
        assert_eq!(a.idle_millis(1_500), 500);
    }

    #[test]
    fn the_first_access_above_the_initial_value_always_counts() {
        let mut a = Access::new(0);
        a.touch(1, LfuConfig::default(), &mut rng());
        assert_eq!(
            a.frequency(1, LfuConfig::default()),
            LFU_INITIAL_COUNTER + 1
        );
    }

    #[test]
    fn the_counter_grows_logarithmically_and_saturates() {
        let lfu = LfuConfig::default();
        let mut a = Access::new(0);
        let mut r = rng();
        for _ in 0..1_000 {
            a.touch(0, lfu, &mut r);
        }
        let after_1k = a.frequency(0, lfu);
        // With factor 10, a thousand hits land well below saturation (Redis's table: ~18).
        assert!((10..40).contains(&after_1k), "{after_1k}");

        let fast = LfuConfig {
            log_factor: 0,
            decay_minutes: 0,
        };
        let mut b = Access::new(0);
        for _ in 0..300 {
            b.touch(0, fast, &mut r);
        }
        assert_eq!(b.frequency(0, fast), u8::MAX);
    }

    #[test]
    fn the_counter_decays_one_point_per_idle_period() {
        let lfu = LfuConfig {
            log_factor: 10,
            decay_minutes: 2,
        };
        let a = Access::new(0);
        assert_eq!(a.frequency(MILLIS_PER_MINUTE, lfu), 5);
        assert_eq!(a.frequency(2 * MILLIS_PER_MINUTE, lfu), 4);
        assert_eq!(a.frequency(10 * MILLIS_PER_MINUTE, lfu), 0);
        assert_eq!(a.frequency(u64::MAX, lfu), 0);
        let no_decay = LfuConfig {
            log_factor: 10,
            decay_minutes: 0,
        };
        assert_eq!(a.frequency(u64::MAX, no_decay), 5);
    }

    #[test]
    fn touching_records_the_access_time() {
        let mut a = Access::new(10);
        a.touch(99, LfuConfig::default(), &mut rng());
        assert_eq!(a.last_millis(), 99);
        assert_eq!(a.idle_millis(50), 0);
    }

    #[test]
    fn shard_counters_sum_into_cache_stats() {
        let s = ShardStats::default();
        s.record_hit();
        s.record_hit();
        s.record_miss();
        s.record_insert();
        s.record_eviction();
        s.record_expiration();
        let mut total = CacheStats::default();
        s.add_to(&mut total);
        s.add_to(&mut total);
        assert_eq!(
            total,
            CacheStats {
                hits: 4,
                misses: 2,
                inserts: 2,
                evictions: 2,
                expirations: 2
            }
        );
        assert!((total.hit_ratio() - 4.0 / 6.0).abs() < 1e-9);
        assert_eq!(CacheStats::default().hit_ratio(), 0.0);
    }
}
