//! Access statistics: per-entry recency and frequency, and per-shard operation counters.
//!
//! What an access records depends on the policy ([`Tracking`]), so that the policies that
//! do not need it pay nothing for it. Each entry has one 32-bit [`Access`] word, as Redis
//! has one 24-bit field:
//! - under `allkeys-lfu` and `volatile-lfu`, the logarithmic frequency counter (LFU,
//!   `OBJECT FREQ`) and the minute it was last decayed;
//! - under every other policy, the second of the last access (`OBJECT IDLETIME`, sampled
//!   LRU). Redis answers `OBJECT FREQ` only under an LFU policy and `OBJECT IDLETIME` only
//!   under the others, for the same reason. Switching between the two families resets every
//!   entry's word to "accessed now" (a fresh counter, or the current second);
//! - the exact LRU list (`crate::shard::lru`) only under `allkeys-lru`, the one policy
//!   that evicts from it; switching into that policy rebuilds it from the last-access
//!   times ([`Cache::set_policy`](crate::Cache::set_policy)).

mod sketch;

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

pub(crate) use sketch::{FrequencySketch, SketchGate};

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

/// One entry's access record, in one 32-bit word whose meaning depends on the policy, as in
/// Redis (whose `lru` field holds either an LRU clock or LFU data):
/// - under the LFU policies (`count_frequency`): the minute of the last decay (16 bits,
///   wrapping) and a Morris-style logarithmic counter (8 bits);
/// - under every other policy: the unix second of the last access (`OBJECT IDLETIME`,
///   sampled LRU, the order an LRU list is rebuilt in), good until 2106.
///
/// The counter follows Redis's LFU design (`evict.c`, "LFU (Least Frequently Used)
/// implementation"): an 8-bit counter incremented with probability
/// `1 / ((counter - LFU_INIT_VAL) * lfu_log_factor + 1)` and decremented by one for every
/// `lfu_decay_time` minutes since the last access. The code is ours. Redis keeps 24 bits;
/// the same in one word keeps the entry's bookkeeping to 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access(u32);

/// Bits of the counter in LFU form; the minutes sit above them.
const COUNTER_BITS: u32 = 8;

impl Access {
    /// The record of an entry written at `now_millis`, in LFU form if `lfu_form`.
    pub(crate) fn new(now_millis: u64, lfu_form: bool) -> Self {
        if lfu_form {
            Self::lfu(minutes(now_millis), LFU_INITIAL_COUNTER)
        } else {
            Self(seconds(now_millis))
        }
    }

    fn lfu(minutes: u16, counter: u8) -> Self {
        Self((u32::from(minutes) << COUNTER_BITS) | u32::from(counter))
    }

    /// Records the time of an access (LRU form; never moving it backwards). Stores only when
    /// the second changed: a key read often within one second then leaves its entry's cache
    /// line clean, so other cores reading it keep their copies.
    pub(crate) fn record_recency(&mut self, now_millis: u64) {
        let second = seconds(now_millis);
        if second > self.0 {
            self.0 = second;
        }
    }

    /// Counts an access in the LFU counter (LFU form): decays it for the idle time, then
    /// maybe increments it.
    pub(crate) fn record_frequency(&mut self, now_millis: u64, lfu: LfuConfig, rng: &mut impl Rng) {
        let mut counter = self.frequency(now_millis, lfu);
        if counter < u8::MAX {
            let base = f64::from(counter.saturating_sub(LFU_INITIAL_COUNTER));
            let p = 1.0 / (base * f64::from(lfu.log_factor) + 1.0);
            if rng.gen::<f64>() < p {
                counter += 1;
            }
        }
        // Never move the stamp back (see `frequency`).
        let (stamped, now) = (self.stamped_minute(), minutes(now_millis));
        let minute = if is_at_most_a_minute_ahead(stamped, now) {
            stamped
        } else {
            now
        };
        *self = Self::lfu(minute, counter);
    }

    /// The minute stamped in LFU form.
    fn stamped_minute(&self) -> u16 {
        (self.0 >> COUNTER_BITS) as u16
    }

    /// The counter as of `now_millis`, decayed but not written back (`OBJECT FREQ`; LFU
    /// form). Minutes wrap every 45 days, as Redis's do: a key idle longer decays less.
    pub(crate) fn frequency(&self, now_millis: u64, lfu: LfuConfig) -> u8 {
        let counter = (self.0 & 0xFF) as u8;
        if lfu.decay_minutes == 0 {
            return counter;
        }
        let stamped = self.stamped_minute();
        let now = minutes(now_millis);
        // A time a little behind the stamp is not 45 days of idleness: a write reads its
        // time before it locks, eviction reuses one time over many shards, and reads record
        // at the coarse clock, a few milliseconds behind the precise one.
        let idle = if is_at_most_a_minute_ahead(stamped, now) {
            0
        } else {
            u32::from(now.wrapping_sub(stamped))
        };
        let periods = u8::try_from(idle / lfu.decay_minutes).unwrap_or(u8::MAX);
        counter.saturating_sub(periods)
    }

    /// Unix second of the last access (LRU form).
    pub(crate) fn last_second(&self) -> u32 {
        self.0
    }

    /// Whole seconds since the last access (`OBJECT IDLETIME`; LRU form).
    pub(crate) fn idle_seconds(&self, now_millis: u64) -> u64 {
        u64::from(seconds(now_millis).saturating_sub(self.0))
    }
}

/// Unix seconds, saturating at `u32::MAX` (year 2106).
pub(crate) fn seconds(millis: u64) -> u32 {
    u32::try_from(millis / 1_000).unwrap_or(u32::MAX)
}

/// Whether the wrapping minute `stamped` is `now` or the minute after it.
fn is_at_most_a_minute_ahead(stamped: u16, now: u16) -> bool {
    stamped.wrapping_sub(now) <= 1
}

/// Unix minutes, wrapping at 16 bits like Redis's LFU clock.
fn minutes(millis: u64) -> u16 {
    (millis / MILLIS_PER_MINUTE) as u16
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
        let a = Access::new(1_000, true);
        assert_eq!(
            a.frequency(1_000, LfuConfig::default()),
            LFU_INITIAL_COUNTER
        );
        assert_eq!(Access::new(1_000, false).idle_seconds(3_500), 2);
    }

    #[test]
    fn the_first_access_above_the_initial_value_always_counts() {
        let mut a = Access::new(0, true);
        a.record_frequency(1, LfuConfig::default(), &mut rng());
        assert_eq!(
            a.frequency(1, LfuConfig::default()),
            LFU_INITIAL_COUNTER + 1
        );
    }

    #[test]
    fn the_counter_grows_logarithmically_and_saturates() {
        let lfu = LfuConfig::default();
        let mut a = Access::new(0, true);
        let mut r = rng();
        for _ in 0..1_000 {
            a.record_frequency(0, lfu, &mut r);
        }
        let after_1k = a.frequency(0, lfu);
        // With factor 10, a thousand hits land well below saturation (Redis's table: ~18).
        assert!((10..40).contains(&after_1k), "{after_1k}");

        let fast = LfuConfig {
            log_factor: 0,
            decay_minutes: 0,
        };
        let mut b = Access::new(0, true);
        for _ in 0..300 {
            b.record_frequency(0, fast, &mut r);
        }
        assert_eq!(b.frequency(0, fast), u8::MAX);
    }

    #[test]
    fn the_counter_decays_one_point_per_idle_period() {
        let lfu = LfuConfig {
            log_factor: 10,
            decay_minutes: 2,
        };
        let a = Access::new(0, true);
        assert_eq!(a.frequency(MILLIS_PER_MINUTE, lfu), 5);
        assert_eq!(a.frequency(2 * MILLIS_PER_MINUTE, lfu), 4);
        assert_eq!(a.frequency(10 * MILLIS_PER_MINUTE, lfu), 0);
        // 2^16 minutes later the clock has wrapped to the same minute: no decay (Redis's
        // LFU clock wraps the same way).
        assert_eq!(a.frequency((1 << 16) * MILLIS_PER_MINUTE, lfu), 5);
        let no_decay = LfuConfig {
            log_factor: 10,
            decay_minutes: 0,
        };
        assert_eq!(a.frequency(u64::MAX, no_decay), 5);
    }

    #[test]
    fn a_stamp_a_minute_ahead_is_not_read_as_a_wrapped_idle_time() {
        let lfu = LfuConfig {
            log_factor: 10,
            decay_minutes: 1,
        };
        // Stamped at minute 10 by one thread; another judges it with a time read just
        // before, in minute 9.
        let mut a = Access::new(10 * MILLIS_PER_MINUTE, true);
        let before = 10 * MILLIS_PER_MINUTE - 1;
        assert_eq!(a.frequency(before, lfu), LFU_INITIAL_COUNTER);
        // Two minutes behind is a wrapped clock again: almost 2^16 minutes idle.
        assert_eq!(a.frequency(8 * MILLIS_PER_MINUTE, lfu), 0);
        // Recording the access with the earlier time keeps the later stamp.
        a.record_frequency(before, lfu, &mut rand::thread_rng());
        assert_eq!(a.stamped_minute(), 10);
        assert!(a.frequency(10 * MILLIS_PER_MINUTE, lfu) >= LFU_INITIAL_COUNTER);
    }

    #[test]
    fn touching_records_the_access_time() {
        let mut a = Access::new(10_000, false);
        a.record_recency(99_999);
        assert_eq!(a.last_second(), 99);
        assert_eq!(a.idle_seconds(50_000), 0);
        a.record_recency(5_000);
        assert_eq!(a.last_second(), 99, "never moves backwards");
        assert_eq!(Access::new(u64::MAX, false).last_second(), u32::MAX);
    }

    #[test]
    fn shard_counters_sum_into_cache_stats() {
        let s = ShardStats::default();
        s.record_insert();
        s.record_eviction();
        s.record_expiration();
        let mut total = CacheStats::default();
        s.add_to(&mut total);
        s.add_to(&mut total);
        assert_eq!(
            total,
            CacheStats {
                hits: 0,
                misses: 0,
                inserts: 2,
                evictions: 2,
                expirations: 2
            }
        );
        let reads = CacheStats {
            hits: 4,
            misses: 2,
            ..total
        };
        assert!((reads.hit_ratio() - 4.0 / 6.0).abs() < 1e-9);
        assert_eq!(CacheStats::default().hit_ratio(), 0.0);
    }
}
