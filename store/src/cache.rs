//! The cache handle: [`Cache`], cheap to clone, and its reads and writes.
//!
//! Every operation hashes the key once (outside any lock), locks the one shard the hash
//! picks, works, unlocks, and only then calls the removal listener for whatever left the
//! cache. Reads are in [`read`], writes (with bound enforcement) in [`write`](mod@write), the builder in
//! [`builder`], whole-keyspace operations (SCAN, sweep, random key, clear) in [`keyspace`].

pub(crate) mod builder;
mod keyspace;
mod read;
mod write;

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use foldhash::quality::SeedableRandomState;
use parking_lot::{Mutex, MutexGuard};

use crate::clock::Clock;
use crate::expiry;
use crate::memory::{Change, Limits, Usage};
use crate::policy::{Policy, RemovalCause};
use crate::shard::{Removals, Shard};
use crate::stats::{CacheStats, LfuConfig, ShardStats, SketchGate};

pub use builder::CacheBuilder;
pub use keyspace::ExpiredUsage;

pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u64 + Send + Sync>;
pub(crate) type Listener<K, V> = Box<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;

/// One shard behind its lock, alone on its cache lines.
#[repr(align(128))]
pub(crate) struct ShardCell<K, V> {
    pub(crate) lock: Mutex<Shard<K, V>>,
}

/// State shared by every clone of a [`Cache`]. Fields are fixed at build time unless their
/// comment says who writes them.
pub(crate) struct Inner<K, V> {
    /// The shards; each `Shard` is guarded by its own cell's lock.
    pub(crate) shards: Box<[ShardCell<K, V>]>,
    /// Each shard's counters, also reachable from the shard (which writes them under its lock).
    pub(crate) stats: Box<[Arc<ShardStats>]>,
    /// Cache-wide totals, written by shard-lock holders.
    pub(crate) usage: Arc<Usage>,
    pub(crate) limits: Limits,
    /// The current [`Policy`] as `Policy::to_u8`; written by `set_policy`.
    pub(crate) policy: AtomicU8,
    /// Held by `set_policy` for its whole switch (policy and every shard's tracking), so
    /// concurrent switches cannot leave shards tracking for a policy no longer in force.
    /// Never taken while a shard lock is held.
    pub(crate) policy_switch: Mutex<()>,
    /// Whether W-TinyLFU sketches count (shared with every shard): only while the cache
    /// has a bound; see `update_sketching`.
    pub(crate) sketching: Arc<SketchGate>,
    /// The key hasher, secretly seeded (see `builder::key_hasher`).
    pub(crate) hasher: SeedableRandomState,
    /// `shards.len() - 1`; shard of a key = low bits of its hash.
    pub(crate) shard_mask: u64,
    /// `log2(shards.len())`, for SCAN cursors.
    pub(crate) shard_bits: u32,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) lfu: LfuConfig,
    /// `entry_overhead::<K, V>()`, computed once.
    pub(crate) overhead: u64,
    /// Round-robin position of the active sweep (a shard index, modulo the shard count);
    /// every lock hold of the sweep takes one and advances it.
    pub(crate) sweep_shard: AtomicUsize,
    /// Where the next [`Cache::sample_expired`] starts (a shard index, modulo the shard
    /// count): each call moves it on by the shards it means to visit.
    pub(crate) sample_shard: AtomicUsize,
}

impl<K, V> Inner<K, V> {
    pub(crate) fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// Hands removed entries to the listener. Call with no shard lock held.
    pub(crate) fn notify(&self, out: &mut Removals<K, V>) {
        match &self.listener {
            Some(listener) => {
                for (key, value, cause) in out.drain() {
                    listener(&key, &value, cause);
                }
            }
            None => out.clear(),
        }
    }

    pub(crate) fn report(&self, key: &K, value: &V, cause: RemovalCause) {
        if let Some(listener) = &self.listener {
            listener(key, value, cause);
        }
    }

    /// Opens the sketches' gate while the cache has a bound (by weight or by entries) and
    /// closes it while it has none.
    pub(crate) fn update_sketching(&self) {
        let bounded = self.limits.max_weight().is_some() || self.limits.max_entries().is_some();
        self.sketching.set(bounded);
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_millis()
    }

    /// [`Clock::coarse_millis`]: for access records only.
    pub(crate) fn coarse_now(&self) -> u64 {
        self.clock.coarse_millis()
    }

    pub(crate) fn lock(&self, i: usize) -> MutexGuard<'_, Shard<K, V>> {
        let i = i & self.shard_mask as usize;
        self.shards
            .get(i)
            .expect("invariant: a masked shard index is below the shard count")
            .lock
            .lock()
    }

    pub(crate) fn weigh(&self, key: &K, value: &V) -> u64 {
        let own = self.weigher.as_ref().map_or(0, |w| w(key, value));
        own.saturating_add(self.overhead)
    }
}

/// A sharded, bounded, concurrent cache with Redis's eviction policies and TTLs.
///
/// Cloning is cheap (an `Arc`); clones share the same entries. See the
/// [crate documentation](crate) for an example and the concurrency model.
///
/// Closures given to [`get_with`](Self::get_with), [`peek_with`](Self::peek_with),
/// [`compute`](Self::compute) and [`scan`](Self::scan), and the weigher, run while the key's
/// shard is locked: they must be short and must not call back into the same cache (that
/// would deadlock). The removal listener runs after the lock is released.
pub struct Cache<K, V> {
    pub(crate) inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// A handle on a [`Cache`] that does not keep it alive ([`Cache::downgrade`]): for a
/// removal listener that must read the cache it belongs to without a reference cycle.
pub struct WeakCache<K, V> {
    inner: std::sync::Weak<Inner<K, V>>,
}

impl<K, V> Clone for WeakCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: std::sync::Weak::clone(&self.inner),
        }
    }
}

impl<K, V> fmt::Debug for WeakCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakCache")
    }
}

impl<K, V> WeakCache<K, V> {
    /// The cache, unless every [`Cache`] handle on it was dropped.
    pub fn upgrade(&self) -> Option<Cache<K, V>> {
        self.inner.upgrade().map(|inner| Cache { inner })
    }
}

impl<K, V> Cache<K, V> {
    /// A handle that does not keep the cache alive.
    pub fn downgrade(&self) -> WeakCache<K, V> {
        WeakCache {
            inner: Arc::downgrade(&self.inner),
        }
    }
}

impl<K, V> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.inner.usage.len())
            .field("weighted_size", &self.inner.usage.weight())
            .field("max_weight", &self.inner.limits.max_weight())
            .field("max_entries", &self.inner.limits.max_entries())
            .field("policy", &self.inner.policy())
            .field("shards", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A builder with the defaults: unbounded, `allkeys-tinylfu`, no TTL, system clock.
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::new()
    }

    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, usize) {
        let hash = self.inner.hasher.hash_one(key);
        (hash, (hash & self.inner.shard_mask) as usize)
    }

    /// Locks `key`'s shard, runs `f` with the shard, the key's hash and a removal list, then
    /// unlocks and reports the removals to the listener.
    pub(crate) fn with_shard<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&mut Shard<K, V>, u64, &mut Removals<K, V>) -> R,
    ) -> R
    where
        Q: Hash + ?Sized,
    {
        let (hash, i) = self.locate(key);
        let mut out = Removals::new();
        let result = f(&mut self.inner.lock(i), hash, &mut out);
        self.inner.notify(&mut out);
        result
    }

    /// Like [`with_shard`](Self::with_shard), with `key`'s live position (an expired entry
    /// is removed into the removal list) and the time, read before locking.
    fn with_located<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&mut Shard<K, V>, Option<u32>, u64, &mut Removals<K, V>) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.inner.now();
        self.with_shard(key, |shard, hash, out| {
            let pos = self.find_live(shard, hash, key, now, out);
            f(shard, pos, now, out)
        })
    }

    /// Removes the entry at `pos` into `out` if it has expired by `now`; its position if not.
    pub(crate) fn live_at(
        shard: &mut Shard<K, V>,
        pos: u32,
        now: u64,
        out: &mut Removals<K, V>,
    ) -> Option<u32> {
        let expired = shard
            .node(pos)
            .is_some_and(|n| expiry::is_expired(n.expire_at, now));
        if !expired {
            return Some(pos);
        }
        if let Some(node) = shard.remove(pos) {
            shard.stats().record_expiration();
            out.push((node.key, node.value, RemovalCause::Expired));
        }
        None
    }

    /// Position of a live `key` in `shard`; an expired entry is removed into `out`.
    fn find_live<Q>(
        &self,
        shard: &mut Shard<K, V>,
        hash: u64,
        key: &Q,
        now: u64,
        out: &mut Removals<K, V>,
    ) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let pos = shard.find(hash, key)?;
        Self::live_at(shard, pos, now, out)
    }

    /// Entries in the cache (expired ones not yet removed included, as Redis's `DBSIZE`).
    pub fn len(&self) -> u64 {
        self.inner.usage.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of all entry weights (weigher's numbers plus per-entry overhead).
    pub fn weighted_size(&self) -> u64 {
        self.inner.usage.weight()
    }

    /// Entries that have an expiry (`INFO keyspace`'s `expires=`).
    pub fn expiring_len(&self) -> u64 {
        self.inner.stats.iter().map(|s| s.expiring()).sum()
    }

    /// The weight bound, if any.
    pub fn max_weight(&self) -> Option<u64> {
        self.inner.limits.max_weight()
    }

    /// The entry-count bound, if any.
    pub fn max_entries(&self) -> Option<u64> {
        self.inner.limits.max_entries()
    }

    /// Bytes the engine adds to the weigher's number for every entry: the entry's slab slot
    /// (key, value and bookkeeping inline), its hash-table word and control byte, and its
    /// expiring-index slot. Table and slab spare capacity is not included.
    pub fn entry_overhead_bytes(&self) -> u64 {
        self.inner.overhead
    }

    /// Hits, misses, inserts, evictions and expirations so far, summed over the shards.
    /// Takes each shard's lock in turn, briefly (hits and misses are counted under it).
    pub fn stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for s in self.inner.stats.iter() {
            s.add_to(&mut total);
        }
        // Hits and misses are counted under each shard's lock (see `Shard::record_hit`).
        for i in 0..self.inner.shards.len() {
            let (hits, misses) = self.inner.lock(i).reads();
            total.hits = total.hits.saturating_add(hits);
            total.misses = total.misses.saturating_add(misses);
        }
        total
    }

    /// The eviction policy in force.
    pub fn policy(&self) -> Policy {
        self.inner.policy()
    }

    /// Switches the eviction policy (`CONFIG SET maxmemory-policy`); applies from the next
    /// eviction.
    ///
    /// Shards keep only the access statistics the policy in force needs (see
    /// [`EntryInfo::frequency`](crate::EntryInfo::frequency) for the LFU counter), so a
    /// switch visits every shard, one lock at a time. Switching **into `allkeys-lru`**
    /// rebuilds each shard's LRU list, ordered by the entries' last-access times (kept under
    /// every policy): O(n log n) in the shard's entries while holding its lock, with a
    /// temporary 8 bytes per entry; a shard whose list is not rebuilt yet samples by
    /// last-access time when it must evict meanwhile. Other switches take each lock only
    /// briefly. Switching **into `allkeys-tinylfu`** likewise rebuilds each shard's segments
    /// (every entry in probation, by last-access time) with an empty frequency sketch.
    /// Concurrent calls are serialized; the last one wins.
    pub fn set_policy(&self, policy: Policy) {
        let inner = &*self.inner;
        let _switching = inner.policy_switch.lock();
        inner.policy.store(policy.to_u8(), Ordering::Relaxed);
        let tracking = policy.tracking();
        let now = inner.clock.now_millis();
        for cell in inner.shards.iter() {
            cell.lock.lock().set_tracking(tracking, now);
        }
    }

    /// Changes the weight bound (`CONFIG SET maxmemory`; `None` removes it) and evicts right
    /// away, under the current policy, until the cache fits (or nothing is evictable).
    pub fn set_max_weight(&self, max: Option<u64>) {
        self.inner.limits.set_max_weight(max);
        self.inner.update_sketching();
        let home = rand::random::<usize>() % self.inner.shards.len().max(1);
        self.inner
            .evict_across(home, None, Change::NONE, self.inner.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn caches_can_be_shared_across_threads() {
        shareable::<Cache<String, Vec<u8>>>();
        shareable::<Cache<u64, std::sync::Arc<str>>>();
    }

    /// The sketch estimate of `key` in its shard, every buffered access counted.
    fn sketched(cache: &Cache<u32, u32>, key: u32) -> u8 {
        let (hash, i) = cache.locate(&key);
        let mut shard = cache.inner.lock(i);
        let pos = shard.find(hash, &key).expect("present");
        shard.flush_sketch();
        shard.sketch_frequency(pos)
    }

    #[test]
    fn the_sketch_counts_only_in_a_bounded_cache() {
        let cache: Cache<u32, u32> = Cache::builder()
            .shards(1)
            .policy(Policy::tiny_lfu())
            .weigher(|_, _| 100)
            .build()
            .expect("valid");
        let overhead = cache.entry_overhead_bytes();
        for k in 0..4 {
            cache.insert(k, k).expect("unbounded");
        }
        for _ in 0..5 {
            cache.get(&0);
        }
        assert_eq!(sketched(&cache, 0), 0, "no bound: nothing counted");
        cache.set_max_weight(Some(10 * (100 + overhead)));
        for _ in 0..3 {
            cache.get(&0);
        }
        assert_eq!(sketched(&cache, 0), 3, "bounded: every hit counted");
        cache.set_max_weight(None);
        cache.get(&0);
        assert_eq!(sketched(&cache, 0), 3, "bound removed: counting stops");
    }

    #[test]
    fn clones_share_their_entries() {
        let a: Cache<u32, u32> = Cache::builder().shards(2).build().expect("valid");
        let b = a.clone();
        a.insert(1, 10).expect("unbounded");
        assert_eq!(b.get(&1), Some(10));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn debug_output_shows_the_totals_not_the_entries() {
        let cache: Cache<u32, u32> = Cache::builder()
            .shards(2)
            .max_entries(5)
            .build()
            .expect("valid");
        cache.insert(1, 1).expect("fits");
        let shown = format!("{cache:?}");
        assert!(shown.contains("len: 1"), "{shown}");
        assert!(shown.contains("max_entries: Some(5)"), "{shown}");
        assert!(shown.contains("shards: 2"), "{shown}");
    }

    #[test]
    fn keys_spread_over_all_shards() {
        let cache: Cache<u32, u32> = Cache::builder().shards(8).build().expect("valid");
        for k in 0..800 {
            cache.insert(k, k).expect("unbounded");
        }
        for stats in cache.inner.stats.iter() {
            assert!((50..150).contains(&stats.len()), "{}", stats.len());
        }
    }
}
