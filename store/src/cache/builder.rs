//! [`CacheBuilder`]: bounds, policy, TTL, clock, listener and shard count of a new cache.

use std::hash::Hash;
use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use foldhash::quality::SeedableRandomState;
use foldhash::SharedSeed;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Cache, Inner, Listener, ShardCell, Weigher};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::memory::{entry_overhead, Limits, Usage};
use crate::policy::{Policy, RemovalCause};
use crate::shard::Shard;
use crate::stats::{LfuConfig, ShardStats, SketchGate};

/// Default shards per available CPU: enough that threads rarely meet on one lock. Skewed
/// reads send most threads to the few shards holding the hottest keys; at 2 threads on 2
/// CPUs, bounded `allkeys-tinylfu` reads (`benches/src/bin/getratio.rs --shards N`, two
/// runs) rose from 1.71 and 1.76× moka's throughput at 4 per CPU to 1.88 and 1.87× at 16.
const SHARDS_PER_CPU: usize = 16;

/// Fewest entries per shard the default shard count leaves a cache built with an entry
/// bound: each shard evicts by its own policy state, so a cache of a few hundred entries
/// split 32 ways keeps a handful per shard and evicts far from its policy's order.
const MIN_DEFAULT_SHARD_ENTRIES: u64 = 1024;

/// Cap on the default shard count: more shards past this add memory, not throughput.
const MAX_DEFAULT_SHARDS: usize = 256;

/// Largest shard count accepted: SCAN cursors keep `log2(shards)` bits for the shard.
const MAX_SHARDS: usize = 1 << 16;

/// Configures and builds a [`Cache`].
///
/// ```
/// use std::time::Duration;
/// use cachalot_store::{Cache, Policy};
///
/// let cache: Cache<String, Vec<u8>> = Cache::builder()
///     .max_weight(64 * 1024 * 1024)
///     .weigher(|k: &String, v: &Vec<u8>| (k.len() + v.len()) as u64)
///     .policy(Policy::allkeys_lfu())
///     .default_ttl(Duration::from_secs(300))
///     .build()
///     .expect("valid configuration");
/// assert_eq!(cache.max_weight(), Some(64 * 1024 * 1024));
/// ```
pub struct CacheBuilder<K, V> {
    max_entries: Option<u64>,
    max_weight: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    shards: Option<usize>,
    policy: Policy,
    default_ttl: Option<Duration>,
    clock: Option<Arc<dyn Clock>>,
    listener: Option<Listener<K, V>>,
    lfu: LfuConfig,
    seed: Option<u64>,
}

impl<K, V> Default for CacheBuilder<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Unbounded, `allkeys-tinylfu`, no default TTL, the system clock, no listener.
    pub fn new() -> Self {
        Self {
            max_entries: None,
            max_weight: None,
            weigher: None,
            shards: None,
            policy: Policy::tiny_lfu(),
            default_ttl: None,
            clock: None,
            listener: None,
            lfu: LfuConfig::default(),
            seed: None,
        }
    }

    /// Bounds the number of entries.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Bounds the total weight: per entry, `weigher(key, value)` plus
    /// [`Cache::entry_overhead_bytes`].
    pub fn max_weight(mut self, bytes: u64) -> Self {
        self.max_weight = Some(bytes);
        self
    }

    /// How many bytes an entry's key and value own (heap included). Without a weigher an
    /// entry weighs only the engine's overhead. Called with the shard locked; keep it cheap.
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(f));
        self
    }

    /// Number of shards: a power of two, at most 65536. Default: the next power of two of
    /// 16 × available parallelism, capped at 256, and with an entry bound set on this
    /// builder ([`max_entries`](Self::max_entries)) at most one shard per 1024 entries (so a
    /// cache of under 2048 entries has one lock). A weight bound, or a bound set after
    /// building, does not change the count: set it here for a small cache bounded by weight.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Eviction policy; default `allkeys-tinylfu` (W-TinyLFU, see [`Policy::tiny_lfu`]), the
    /// policy that kept the most of the right keys on the trace harness.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// TTL given to entries written by [`Cache::insert`] and by
    /// [`Entry::insert`](crate::Entry::insert) into a vacant key. At least 1 ms.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Time source; default [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Called once for every entry that leaves the cache, with the cause, after the shard
    /// lock is released (so it may use the cache). A panic in it propagates to the caller
    /// of the operation and drops the rest of that operation's notifications.
    pub fn removal_listener(
        mut self,
        f: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Box::new(f));
        self
    }

    /// Redis's `lfu-log-factor` (default 10): higher makes the LFU counter grow slower.
    pub fn lfu_log_factor(mut self, factor: u32) -> Self {
        self.lfu.log_factor = factor;
        self
    }

    /// Redis's `lfu-decay-time` in minutes (default 1): the LFU counter drops by one per this
    /// many idle minutes; 0 disables decay.
    pub fn lfu_decay_minutes(mut self, minutes: u32) -> Self {
        self.lfu.decay_minutes = minutes;
        self
    }

    /// Seeds the key hasher and each shard's random numbers (random eviction samples, LFU
    /// counter increments, expiry samples) from `seed` instead of the OS's randomness, so
    /// that a benchmark can make the store do exactly the same work in two processes
    /// ([`Cache::random_key`]'s pick of a shard stays random). Not for production: whoever
    /// knows the seed can compute keys that all land in one shard (hash flooding).
    #[doc(hidden)]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the shard count is 0, not a power of two or above
    /// 65536, or the default TTL is under 1 ms.
    pub fn build(self) -> Result<Cache<K, V>, Error> {
        let n = self
            .shards
            .unwrap_or_else(|| default_shards(self.max_entries));
        if n == 0 || !n.is_power_of_two() {
            return Err(Error::InvalidConfig(
                "shards must be a non-zero power of two",
            ));
        }
        if n > MAX_SHARDS {
            return Err(Error::InvalidConfig("shards must be at most 65536"));
        }
        if self
            .default_ttl
            .is_some_and(|t| t < Duration::from_millis(1))
        {
            return Err(Error::InvalidConfig("default_ttl must be at least 1 ms"));
        }
        let usage = Arc::new(Usage::default());
        let stats: Box<[Arc<ShardStats>]> =
            (0..n).map(|_| Arc::new(ShardStats::default())).collect();
        let mut seeds = StdRng::seed_from_u64(self.seed.unwrap_or_else(rand::random));
        // Each shard's share of the entry bound, rounded up (sizes the W-TinyLFU sketch).
        let per_shard = self
            .max_entries
            .map(|m| u32::try_from(m.div_ceil(n as u64)).unwrap_or(u32::MAX));
        // Opened below if the cache has a bound (`Inner::update_sketching`).
        let sketching = Arc::new(SketchGate::new(false));
        let shards = stats
            .iter()
            .map(|s| {
                let mut shard = Shard::new(
                    Arc::clone(&usage),
                    Arc::clone(s),
                    StdRng::seed_from_u64(seeds.gen()),
                    self.policy.tracking(),
                );
                if let Some(capacity) = per_shard {
                    shard.set_entry_capacity(capacity);
                }
                shard.share_sketch_gate(Arc::clone(&sketching));
                ShardCell {
                    lock: Mutex::new(shard),
                }
            })
            .collect();
        let inner = Inner {
            shards,
            stats,
            usage,
            limits: Limits::new(self.max_weight, self.max_entries),
            policy: AtomicU8::new(self.policy.to_u8()),
            policy_switch: Mutex::new(()),
            sketching,
            hasher: match self.seed {
                Some(seed) => seeded_key_hasher(seed),
                None => key_hasher(),
            },
            shard_mask: (n - 1) as u64,
            shard_bits: n.trailing_zeros(),
            weigher: self.weigher,
            listener: self.listener,
            default_ttl: self.default_ttl,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            lfu: self.lfu,
            overhead: entry_overhead::<K, V>(),
            sweep_shard: AtomicUsize::new(0),
            sample_shard: AtomicUsize::new(0),
        };
        inner.update_sketching();
        Ok(Cache {
            inner: Arc::new(inner),
        })
    }
}

/// A new cache's key hasher: foldhash, several times cheaper than SipHash on short keys,
/// keyed by secrets from the OS's randomness: a process-wide shared seed drawn once, and a
/// per-cache seed. (`hashbrown::DefaultHashBuilder` seeds foldhash from the address-space
/// layout alone.) Its `quality` variant, not hashbrown's `fast` one: shards are picked by
/// the hash's low bits, and with some seeds `fast` spreads similar keys (small integers)
/// very unevenly there, up to leaving a shard empty; `quality` costs one more multiply.
///
/// Secret seeds mean no list of keys collides in every process (the precomputed-collision
/// HashDoS); foldhash does not claim to withstand an attacker who learns the seeds by
/// timing the server, where SipHash (std's `RandomState`, Redis's choice) would.
fn key_hasher() -> SeedableRandomState {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(rand::random()));
    SeedableRandomState::with_seed(rand::random(), shared)
}

/// The key hasher of a cache built with [`CacheBuilder::seed`]: the same for the same seed
/// in every process.
fn seeded_key_hasher(seed: u64) -> SeedableRandomState {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(0));
    SeedableRandomState::with_seed(seed, shared)
}

/// `next_pow2(16 × available_parallelism)`, capped at [`MAX_DEFAULT_SHARDS`] and, for a
/// cache of `max_entries`, at one shard per [`MIN_DEFAULT_SHARD_ENTRIES`].
fn default_shards(max_entries: Option<u64>) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_cpus = cpus
        .saturating_mul(SHARDS_PER_CPU)
        .checked_next_power_of_two()
        .unwrap_or(MAX_DEFAULT_SHARDS)
        .min(MAX_DEFAULT_SHARDS);
    match max_entries.map(|m| m / MIN_DEFAULT_SHARD_ENTRIES) {
        // The largest power of two not above the bound's share (1 for under 2048 entries).
        Some(share) => by_cpus.min(prev_power_of_two(share)),
        None => by_cpus,
    }
}

/// The largest power of two not above `n` (1 for 0 and 1), as a shard count.
fn prev_power_of_two(n: u64) -> usize {
    let p = if n <= 1 { 1 } else { 1u64 << n.ilog2() };
    usize::try_from(p).unwrap_or(MAX_DEFAULT_SHARDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_counts_must_be_powers_of_two() {
        for bad in [0, 3, 6, 1 << 17] {
            let built = CacheBuilder::<u64, u64>::new().shards(bad).build();
            assert!(matches!(built, Err(Error::InvalidConfig(_))), "{bad}");
        }
        for good in [1, 2, 64, 1 << 16] {
            assert!(CacheBuilder::<u64, u64>::new().shards(good).build().is_ok());
        }
    }

    #[test]
    fn the_default_shard_count_is_a_capped_power_of_two() {
        let n = default_shards(None);
        assert!(n.is_power_of_two() && (SHARDS_PER_CPU..=MAX_DEFAULT_SHARDS).contains(&n));
    }

    #[test]
    fn a_small_entry_bound_gets_fewer_default_shards() {
        let unbounded = default_shards(None);
        assert_eq!(default_shards(Some(0)), 1);
        assert_eq!(default_shards(Some(100)), 1);
        assert_eq!(default_shards(Some(2047)), 1);
        assert_eq!(default_shards(Some(2048)), 2.min(unbounded));
        assert_eq!(default_shards(Some(5 * 1024)), 4.min(unbounded));
        assert_eq!(default_shards(Some(u64::MAX)), unbounded);
        let built = CacheBuilder::<u64, u64>::new().max_entries(300).build();
        assert_eq!(built.map(|c| c.inner.shards.len()).ok(), Some(1));
        let explicit = CacheBuilder::<u64, u64>::new()
            .max_entries(300)
            .shards(8)
            .build();
        assert_eq!(explicit.map(|c| c.inner.shards.len()).ok(), Some(8));
    }

    #[test]
    fn caches_built_with_one_seed_place_and_sample_keys_alike() {
        use crate::ManualClock;
        use std::hash::BuildHasher;
        let build = |seed| {
            let clock = Arc::new(ManualClock::new(1_000));
            let cache = CacheBuilder::<u64, u64>::new()
                .shards(8)
                .seed(seed)
                .clock(clock.clone())
                .build()
                .expect("valid");
            for k in 0..2_000u64 {
                cache
                    .insert_with_ttl(k, k, Duration::from_millis(1 + k % 100))
                    .expect("unbounded");
            }
            clock.advance(Duration::from_millis(50));
            let removed: Vec<usize> = (0..20).map(|_| cache.sample_expired(64)).collect();
            (cache, removed)
        };
        let ((a, a_removed), (b, b_removed)) = (build(7), build(7));
        let hashes = |c: &Cache<u64, u64>| -> Vec<u64> {
            (0..64u64).map(|k| c.inner.hasher.hash_one(k)).collect()
        };
        assert_eq!(hashes(&a), hashes(&b));
        assert_eq!(a_removed, b_removed);
        assert!(a_removed.iter().sum::<usize>() > 0);
        let (c, _) = build(8);
        assert_ne!(hashes(&a), hashes(&c));
    }

    #[test]
    fn each_cache_hashes_with_its_own_seed() {
        use std::hash::BuildHasher;
        let (a, b) = (key_hasher(), key_hasher());
        let differ = (0..8u64).filter(|k| a.hash_one(k) != b.hash_one(k)).count();
        assert_eq!(differ, 8);
    }

    #[test]
    fn the_hash_low_bits_spread_small_integers_under_any_seed() {
        use std::hash::BuildHasher;
        for seed in 0..64u64 {
            let shared: &'static SharedSeed = Box::leak(Box::new(SharedSeed::from_u64(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )));
            let hasher = SeedableRandomState::with_seed(seed, shared);
            let mut shards = [0u32; 8];
            for k in 0..800u32 {
                shards[(hasher.hash_one(k) & 7) as usize] += 1;
            }
            assert!(
                shards.iter().all(|n| (50..150).contains(n)),
                "{seed}: {shards:?}"
            );
        }
    }

    #[test]
    fn a_zero_default_ttl_is_rejected() {
        let built = CacheBuilder::<u64, u64>::new()
            .default_ttl(Duration::ZERO)
            .build();
        assert!(matches!(built, Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn builder_settings_reach_the_cache() {
        let cache = CacheBuilder::<u64, u64>::new()
            .max_entries(10)
            .max_weight(1_000)
            .policy(Policy::volatile_ttl())
            .build();
        let cache = cache.ok();
        assert_eq!(cache.as_ref().and_then(Cache::max_entries), Some(10));
        assert_eq!(cache.as_ref().and_then(Cache::max_weight), Some(1_000));
        assert_eq!(cache.map(|c| c.policy()), Some(Policy::volatile_ttl()));
    }
}
